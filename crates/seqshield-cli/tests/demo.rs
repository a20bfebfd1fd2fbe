//! `seqshield demo`, the README's main job, end to end on the small truth
//! set (the first 1 Mbp of E. coli 536 with planted variants): a real
//! `seqshield serve` on embedded defaults, a TOTP login through PKCE, the
//! encrypted upload, the TES task, the fetched call set and the verified
//! audit log. The report's figures are checked against the truth set,
//! scored here independently of the demo's own scoring.

#[path = "common/science.rs"]
mod science;

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn tools_ready() -> bool {
    let missing: Vec<&str> = ["bwa", "samtools", "bcftools", "art_illumina", "bgzip", "tabix"]
        .into_iter()
        .filter(|t| !science::on_path(t))
        .collect();
    if missing.is_empty() && Path::new(science::GENOME).exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI: missing {missing:?} or the genome; run scripts/setup");
    eprintln!("note: missing {missing:?} or the genome; demo not run");
    false
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn demo_plays_the_whole_story_and_its_figures_match_the_truth() {
    if !tools_ready() {
        return;
    }
    let truth_dir = science::truthset();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("demo");
    let out = std::process::Command::cargo_bin("seqshield")
        .unwrap()
        .args(["--json", "demo", "--data"])
        .arg(&truth_dir)
        .arg("--work-dir")
        .arg(&work)
        .env_remove("SEQSHIELD_PASSPHRASE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert_eq!(r["ok"], true);

    // The figures, recomputed here from the truth set and the call set the
    // demo fetched back from the store.
    let reference = truth_dir.join("ref.fa");
    let truth: BTreeSet<science::Key> =
        science::variants(&reference, &truth_dir.join("truth.vcf.gz"), false).into_iter().map(|(k, _)| k).collect();
    let calls = work.join("calls.vcf");
    let s = science::score(&truth, &science::variants(&reference, &calls, false), science::MIN_QUAL);
    let v = &r["variants"];
    assert_eq!(v["truth"].as_u64().unwrap() as usize, truth.len());
    assert_eq!(v["calls"].as_u64().unwrap() as usize, s.calls);
    assert_eq!(v["true_positives"].as_u64().unwrap() as usize, s.tp);
    assert!((v["recall"].as_f64().unwrap() - s.recall).abs() < 1e-9, "{v}");
    assert!((v["precision"].as_f64().unwrap() - s.precision).abs() < 1e-9, "{v}");
    assert!(s.recall >= 0.98 && s.precision >= 0.95, "recall {} precision {}", s.recall, s.precision);
    assert_eq!(v["snps"].as_u64().unwrap() + v["indels"].as_u64().unwrap(), s.calls as u64);

    // Bare and protected call sets are the same records.
    let records = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p).unwrap().lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
    };
    assert_eq!(records(&calls), records(&work.join("bare/out/calls.vcf")));
    assert_eq!(r["records"].as_u64().unwrap() as usize, records(&calls).len());

    // Times are real measurements, and the overhead follows from them.
    let p = &r["pipeline"];
    let (bare, prot) = (p["bare_seconds"].as_f64().unwrap(), p["seqshield_seconds"].as_f64().unwrap());
    assert!(bare > 0.5 && prot > 0.5, "{p}");
    assert!((p["overhead_percent"].as_f64().unwrap() - (prot / bare - 1.0) * 100.0).abs() < 1e-6);

    // The audit log verified, and it saw the story.
    assert_eq!(r["audit"]["ok"], true, "{}", r["audit"]);
    assert!(r["audit"]["size"].as_u64().unwrap() > 10, "{}", r["audit"]);
    let actions = &r["audit_actions"];
    for a in ["store.read", "jobs.task.create"] {
        assert!(actions[a].as_u64().is_some_and(|n| n > 0), "no {a} in the audit log: {actions}");
    }

    // Embedded defaults: the gateway said what is weaker than production.
    let weak: Vec<&str> = r["weak_defaults"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    for id in ["file_kek", "self_signed_certificate"] {
        assert!(weak.contains(&id), "{id} not reported: {weak:?}");
    }
    for c in ["transport", "login", "storage", "job", "audit"] {
        assert!(r["controls"][c].as_str().is_some_and(|s| !s.is_empty()), "{c}");
    }
    assert!(r["controls"]["login"].as_str().unwrap().contains("RS256"), "{}", r["controls"]["login"]);

    // Where things live is where they are; the store holds no plaintext.
    let data = work.join("data");
    assert_eq!(Path::new(r["where"]["data_dir"].as_str().unwrap()), data);
    assert!(data.join("tls/cert.pem").is_file() && data.join("kek").is_dir());
    let read = std::fs::read_to_string(truth_dir.join("reads_1.fq")).unwrap();
    let seq = read.lines().nth(1).unwrap();
    assert!(seq.len() >= 100);
    let objects = files(&data.join("objects"));
    assert!(!objects.is_empty());
    for f in objects {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(seq.len()).any(|w| w == seq.as_bytes()), "plaintext read in {}", f.display());
    }
}

#[test]
fn demo_refuses_a_missing_truth_set_and_a_busy_work_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::cargo_bin("seqshield")
        .unwrap()
        .args(["demo", "--data"])
        .arg(tmp.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/truthset") && err.contains("ref.fa"), "{err}");

    if tools_ready() {
        let truth_dir = science::truthset();
        std::fs::write(tmp.path().join("x"), "x").unwrap();
        let out = std::process::Command::cargo_bin("seqshield")
            .unwrap()
            .args(["demo", "--data"])
            .arg(&truth_dir)
            .arg("--work-dir")
            .arg(tmp.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "the demo wrote into a busy directory");
    }
}
