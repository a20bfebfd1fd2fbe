//! The job service on a real Slurm (`scripts/slurm`: slurmctld, two
//! slurmds, partitions `onprem` and `cloud`):
//! - the science check: `bwa mem`, `samtools sort`, `bcftools mpileup`,
//!   `bcftools call` on the 1 Mbp truth set, run bare on the host and as a
//!   TES task through seqshield on Slurm with encrypted inputs; the VCF
//!   records are identical and recall against the planted truth ≥ 0.98;
//! - placement: restricted data stays on-prem, a public task may ask for
//!   the cloud partition, a restricted one may not;
//! - cancel reaches Slurm; a gateway killed mid-task and restarted picks
//!   the task up again and it completes.
//!
//! Needs `SEQSHIELD_TEST_SLURM` (set by `scripts/test`); without it the
//! tests skip with a note, or fail when `CI` is set.

mod common;
#[path = "common/science.rs"]
mod science;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::site::*;
use common::tes::{get, put, user, Api};
use serde_json::{json, Value};

/// The two tests share the cluster's four cores: one at a time.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn slurm_conf() -> Option<PathBuf> {
    match std::env::var_os("SEQSHIELD_TEST_SLURM") {
        Some(d) => Some(PathBuf::from(d).join("slurm.conf")),
        None => {
            assert!(std::env::var_os("CI").is_none(), "CI is set but no Slurm: run through scripts/test");
            eprintln!("note: SEQSHIELD_TEST_SLURM is not set (scripts/test starts Slurm); Slurm job tests not run");
            None
        }
    }
}

fn config(conf: &Path) -> String {
    format!("[jobs.executor]\nkind = \"slurm\"\nslurm_conf = \"{}\"\npoll_secs = 1\n", conf.display())
}

fn slurm_job(task: &Value) -> String {
    let ex = task["logs"][0]["metadata"]["seqshield.executor"].as_str().unwrap_or_default();
    ex.strip_prefix("slurm:").unwrap_or_else(|| panic!("not a Slurm task: {task}")).to_owned()
}

fn scontrol(conf: &Path, job: &str) -> String {
    let out = Command::new("scontrol").env("SLURM_CONF", conf).args(["show", "job", "-o", job]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pipeline's steps, as argv, on paths under `root` (`/data` in the task).
fn steps(root: &str) -> Vec<(Vec<String>, Option<String>)> {
    let p = |s: &str| format!("{root}/{s}");
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        (v(&["bwa", "index", &p("ref/ref.fa")]), None),
        (v(&["samtools", "faidx", &p("ref/ref.fa")]), None),
        (
            v(&["bwa", "mem", "-t", "2", "-K", "10000000", &p("ref/ref.fa"), &p("reads/r1.fq"), &p("reads/r2.fq")]),
            Some(p("work/aln.sam")),
        ),
        (v(&["samtools", "sort", "-@", "2", "-o", &p("work/aln.bam"), &p("work/aln.sam")]), None),
        (
            v(&["bcftools", "mpileup", "-f", &p("ref/ref.fa"), "-Ou", "-o", &p("work/pile.bcf"), &p("work/aln.bam")]),
            None,
        ),
        (v(&["bcftools", "call", "--ploidy", "1", "-mv", "-o", &p("out/calls.vcf"), &p("work/pile.bcf")]), None),
    ]
}

fn records(vcf: &Path) -> Vec<String> {
    std::fs::read_to_string(vcf).unwrap().lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

#[test]
fn science_check_bare_and_through_seqshield_on_slurm_agree() {
    let Some(conf) = slurm_conf() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let missing: Vec<&str> = ["bwa", "samtools", "bcftools", "art_illumina", "bgzip", "tabix"]
        .into_iter()
        .filter(|t| !science::on_path(t))
        .collect();
    if !missing.is_empty() || !Path::new(science::GENOME).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI: missing {missing:?} or the genome; run scripts/setup");
        eprintln!("note: missing {missing:?} or the genome; science check not run");
        return;
    }
    let truth_dir = science::truthset();
    let (site, secrets) = site(&["alice"], Some(&config(&conf)));
    let gw = &site.gw;
    let alice = user(&site, "alice", &secrets[0]);
    let api = Api::new(gw, alice.path());

    // Bare, on the host, with the same layout under a temporary root.
    let bare = tempfile::tempdir().unwrap();
    let root = bare.path().to_str().unwrap().to_owned();
    for d in ["ref", "reads", "work", "out"] {
        std::fs::create_dir(bare.path().join(d)).unwrap();
    }
    std::fs::copy(truth_dir.join("ref.fa"), bare.path().join("ref/ref.fa")).unwrap();
    std::fs::copy(truth_dir.join("reads_1.fq"), bare.path().join("reads/r1.fq")).unwrap();
    std::fs::copy(truth_dir.join("reads_2.fq"), bare.path().join("reads/r2.fq")).unwrap();
    let t0 = Instant::now();
    for (argv, stdout) in steps(&root) {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).env("PATH", science::TOOL_PATH);
        if let Some(o) = stdout {
            c.stdout(std::fs::File::create(o).unwrap());
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let bare_secs = t0.elapsed().as_secs_f64();

    // Through seqshield: inputs encrypted in the store, the task on Slurm.
    let r = put(alice.path(), gw, &truth_dir.join("ref.fa"), "ref.fa", "restricted");
    let r1 = put(alice.path(), gw, &truth_dir.join("reads_1.fq"), "reads_1.fq", "restricted");
    let r2 = put(alice.path(), gw, &truth_dir.join("reads_2.fq"), "reads_2.fq", "restricted");
    let executors: Vec<Value> = steps("/data")
        .into_iter()
        .map(|(argv, stdout)| {
            let mut e = json!({"image": "debian:bookworm", "command": argv});
            if let Some(o) = stdout {
                e["stdout"] = o.into();
            }
            e
        })
        .collect();
    let t0 = Instant::now();
    let id = api.submit(&json!({
        "name": "science-check",
        "inputs": [
            {"url": format!("seqshield://{r}"), "path": "/data/ref/ref.fa"},
            {"url": format!("drs://127.0.0.1/{r1}"), "path": "/data/reads/r1.fq"},
            {"url": r2, "path": "/data/reads/r2.fq"}
        ],
        "outputs": [{"url": "seqshield://science/calls.vcf", "path": "/data/out/calls.vcf"}],
        "volumes": ["/data/work", "/data/out"],
        "resources": {"cpu_cores": 2, "backend_parameters": {"seqshield.runtime_secs": "600"}},
        "executors": executors
    }));
    let done = api.finished(&id, 600);
    let task_secs = t0.elapsed().as_secs_f64();
    assert_eq!(done["state"], "COMPLETE", "{done}");
    let log = &done["logs"][0];
    println!("task {} → {}; system logs: {}", log["start_time"], log["end_time"], log["system_logs"]);
    for e in log["logs"].as_array().unwrap() {
        println!("  executor {} → {} exit {}", e["start_time"], e["end_time"], e["exit_code"]);
    }
    let meta = &done["logs"][0]["metadata"];
    assert_eq!(meta["seqshield.partition"], "onprem", "restricted data stays on-prem: {done}");
    let job = slurm_job(&done);
    let sc = scontrol(&conf, &job);
    assert!(sc.contains("Partition=onprem") && sc.contains("NodeList=onprem1"), "{sc}");
    let calls_id =
        done["logs"][0]["outputs"][0]["url"].as_str().unwrap().strip_prefix("seqshield://").unwrap().to_owned();
    let got = alice.path().join("calls.vcf");
    get(alice.path(), gw, &calls_id, &got);

    let (a, b) = (records(&bare.path().join("out/calls.vcf")), records(&got));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "record counts differ");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "VCF records differ");
    }
    let truth: BTreeSet<science::Key> =
        science::variants(&truth_dir.join("ref.fa"), &truth_dir.join("truth.vcf.gz"), false)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    let sc = science::score(&truth, &science::variants(&truth_dir.join("ref.fa"), &got, false), science::MIN_QUAL);
    println!(
        "science check: {} records identical; {} planted, recall {:.3}, precision {:.3} (QUAL ≥ {}); bare {bare_secs:.1} s, seqshield on Slurm {task_secs:.1} s (upload excluded)",
        a.len(),
        truth.len(),
        sc.recall,
        sc.precision,
        science::MIN_QUAL
    );
    assert!(sc.recall >= 0.98, "recall {:.3}; missed {:?}", sc.recall, sc.missed);
}

#[test]
fn placement_cancel_and_a_gateway_restart_on_slurm() {
    let Some(conf) = slurm_conf() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let (site, secrets) = site(&["alice"], Some(&config(&conf)));
    let data = site.dir.path().join("data");
    let alice = user(&site, "alice", &secrets[0]);
    let mut gw = site.gw;
    let api = Api::new(&gw, alice.path());
    let file = alice.path().join("p.txt");
    std::fs::write(&file, "public data\n").unwrap();
    let public = put(alice.path(), &gw, &file, "p.txt", "public");
    let restricted = put(alice.path(), &gw, &file, "r.txt", "restricted");
    let cloud = json!({"seqshield.partition": "cloud"});

    // A public task may ask for the cloud partition; a restricted one may not.
    let id = api.submit(&json!({
        "inputs": [{"url": public, "path": "/data/p.txt"}],
        "resources": {"backend_parameters": cloud},
        "executors": [{"image": "debian:bookworm", "command": ["cat", "/data/p.txt"]}]
    }));
    let done = api.finished(&id, 120);
    assert_eq!(done["state"], "COMPLETE", "{done}");
    assert_eq!(done["logs"][0]["metadata"]["seqshield.partition"], "cloud", "{done}");
    let sc = scontrol(&conf, &slurm_job(&done));
    assert!(sc.contains("Partition=cloud") && sc.contains("NodeList=cloud1"), "{sc}");
    let (s, e) = api.post(
        "/ga4gh/tes/v1/tasks",
        &json!({
            "inputs": [{"url": restricted, "path": "/data/r.txt"}],
            "resources": {"backend_parameters": cloud},
            "executors": [{"image": "debian:bookworm", "command": ["cat", "/data/r.txt"]}]
        }),
    );
    assert_eq!((s, e["error"].as_str()), (403, Some("policy_refused")), "{e}");

    // Cancel reaches Slurm.
    let id = api.submit(&json!({"executors": [{"image": "debian:bookworm", "command": ["sleep", "120"]}]}));
    api.wait_for(&id, 120, |s| s == "RUNNING");
    let (s, _) = api.post(&format!("/ga4gh/tes/v1/tasks/{id}:cancel"), &json!({}));
    assert_eq!(s, 200);
    let done = api.finished(&id, 60);
    assert_eq!(done["state"], "CANCELED", "{done}");
    let sc = scontrol(&conf, &slurm_job(&done));
    assert!(sc.contains("JobState=CANCELLED"), "{sc}");

    // The gateway dies mid-task and comes back: the worker's reports wait
    // for it, and the task completes.
    let id = api.submit(&json!({"executors": [
        {"image": "debian:bookworm", "command": ["sleep", "6"]},
        {"image": "debian:bookworm", "command": ["echo", "after the restart"]}
    ]}));
    api.wait_for(&id, 120, |s| s == "RUNNING");
    let listen = gw.url.trim_start_matches("https://").to_owned();
    gw.kill();
    std::thread::sleep(Duration::from_secs(2));
    let gw = common::serve_on(&data, PASS, &listen);
    let api = api.reconnect(&gw);
    let done = api.finished(&id, 180);
    assert_eq!(done["state"], "COMPLETE", "{done}");
    assert!(done["logs"][0]["logs"][1]["stdout"].as_str().unwrap().contains("after the restart"), "{done}");
}
