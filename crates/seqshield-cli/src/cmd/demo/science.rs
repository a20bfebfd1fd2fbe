//! The demo's pipeline and its science: the variant-calling steps (the same
//! argv bare and as TES executors), and recall and precision of a call set
//! against the planted truth, both normalised by `bcftools norm`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The tools the pipeline and the scoring run.
pub const TOOLS: &[&str] = &["bwa", "samtools", "bcftools"];
/// PATH of the tools, bare and inside the sandbox.
pub const TOOL_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Calls below this QUAL are not counted.
pub const MIN_QUAL: f64 = 20.0;

/// One step: its argv and the file its stdout goes to, if any.
pub struct Step {
    pub argv: Vec<String>,
    pub stdout: Option<String>,
}

/// The pipeline on paths under `root` (`/data` inside the task): index,
/// align (bwa mem), sort, pile up and call (bcftools, haploid).
pub fn steps(root: &str, threads: u16) -> Vec<Step> {
    let p = |s: &str| format!("{root}/{s}");
    let t = threads.to_string();
    let step = |a: &[&str], stdout: Option<String>| Step { argv: a.iter().map(|s| (*s).to_owned()).collect(), stdout };
    vec![
        step(&["bwa", "index", &p("ref/ref.fa")], None),
        step(&["samtools", "faidx", &p("ref/ref.fa")], None),
        step(
            &["bwa", "mem", "-t", &t, "-K", "10000000", &p("ref/ref.fa"), &p("reads/r1.fq"), &p("reads/r2.fq")],
            Some(p("work/aln.sam")),
        ),
        step(&["samtools", "sort", "-@", &t, "-o", &p("work/aln.bam"), &p("work/aln.sam")], None),
        step(
            &["bcftools", "mpileup", "-f", &p("ref/ref.fa"), "-Ou", "-o", &p("work/pile.bcf"), &p("work/aln.bam")],
            None,
        ),
        step(&["bcftools", "call", "--ploidy", "1", "-mv", "-o", &p("out/calls.vcf"), &p("work/pile.bcf")], None),
    ]
}

/// The input files the pipeline reads, as (file in the data set, path
/// under the root).
pub const INPUTS: &[(&str, &str)] =
    &[("ref.fa", "ref/ref.fa"), ("reads_1.fq", "reads/r1.fq"), ("reads_2.fq", "reads/r2.fq")];
/// The call set, under the root.
pub const OUTPUT: &str = "out/calls.vcf";

/// The TES task for the pipeline, on store objects `ids` (in [`INPUTS`]
/// order), writing the call set to the store.
pub fn tes_task(ids: &[String], threads: u16) -> Value {
    let inputs: Vec<Value> = INPUTS
        .iter()
        .zip(ids)
        .map(
            |((name, at), id)| json!({"name": name, "url": format!("seqshield://{id}"), "path": format!("/data/{at}")}),
        )
        .collect();
    let executors: Vec<Value> = steps("/data", threads)
        .into_iter()
        .map(|s| {
            let mut e = json!({"image": "debian:bookworm", "command": s.argv});
            if let Some(o) = s.stdout {
                e["stdout"] = o.into();
            }
            e
        })
        .collect();
    json!({
        "name": "seqshield-demo-variant-calling",
        "description": "bwa mem, samtools sort, bcftools mpileup | call (haploid) against the planted truth",
        "inputs": inputs,
        "outputs": [{"name": "calls.vcf", "url": "seqshield://demo/calls.vcf", "path": format!("/data/{OUTPUT}")}],
        "volumes": ["/data/work", "/data/out"],
        "resources": {"cpu_cores": threads, "backend_parameters": {"seqshield.runtime_secs": "3600"}},
        "executors": executors,
        "tags": {"seqshield.demo": "1"}
    })
}

/// Runs the pipeline bare in `root` (its inputs already there): no
/// gateway, no sandbox, plaintext files. Returns the wall time.
pub fn run_bare(root: &Path, threads: u16) -> Result<f64> {
    let root_s = root.to_str().context("the work directory is not UTF-8")?;
    let t0 = Instant::now();
    for s in steps(root_s, threads) {
        let mut c = Command::new(&s.argv[0]);
        c.args(&s.argv[1..]).env("PATH", TOOL_PATH).stdin(Stdio::null());
        c.stdout(match &s.stdout {
            Some(o) => Stdio::from(File::create(o).with_context(|| format!("cannot create {o}"))?),
            None => Stdio::null(),
        });
        let out = c.stderr(Stdio::piped()).output().with_context(|| format!("cannot run {}", s.argv[0]))?;
        if !out.status.success() {
            bail!("{} failed ({}): {}", s.argv.join(" "), out.status, tail(&out.stderr));
        }
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn tail(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let s = s.trim();
    s[s.len().saturating_sub(2000)..].to_owned()
}

/// A variant after normalisation: (CHROM, POS, REF, ALT).
pub type Key = (String, u64, String, String);

/// The records of `vcf` after `bcftools norm -f reference -m -any`, with
/// QUAL (`.` reads as infinite, as in the truth set).
pub fn variants(reference: &Path, vcf: &Path) -> Result<Vec<(Key, f64)>> {
    let mut norm = Command::new("bcftools")
        .args(["norm", "-f"])
        .arg(reference)
        .args(["-m", "-any", "-Ou"])
        .arg(vcf)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run bcftools norm")?;
    let q = Command::new("bcftools")
        .args(["query", "-f", "%CHROM\t%POS\t%REF\t%ALT\t%QUAL\n", "-"])
        .stdin(norm.stdout.take().context("no pipe")?)
        .output()
        .context("cannot run bcftools query")?;
    let st = norm.wait()?;
    if !st.success() || !q.status.success() {
        bail!("bcftools could not read {}: {}", vcf.display(), tail(&q.stderr));
    }
    let text = String::from_utf8(q.stdout).context("bcftools printed non-UTF-8")?;
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() != 5 {
                bail!("unexpected bcftools line {l:?}");
            }
            let pos = f[1].parse().with_context(|| format!("bad POS in {l:?}"))?;
            Ok(((f[0].to_owned(), pos, f[2].to_owned(), f[3].to_owned()), f[4].parse().unwrap_or(f64::INFINITY)))
        })
        .collect()
}

/// Counts of a call set against the truth.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Score {
    /// Planted variants.
    pub truth: usize,
    /// Calls at QUAL ≥ [`MIN_QUAL`].
    pub calls: usize,
    /// Of which SNPs and indels.
    pub snps: usize,
    pub indels: usize,
    /// Calls that match a planted variant exactly.
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub recall: f64,
    pub precision: f64,
}

/// Scores `calls` against `truth` (exact match after normalisation).
pub fn score(truth: &BTreeSet<Key>, calls: &[(Key, f64)]) -> Score {
    let called: BTreeSet<&Key> = calls.iter().filter(|(_, q)| *q >= MIN_QUAL).map(|(k, _)| k).collect();
    let tp = called.iter().filter(|k| truth.contains(**k)).count();
    let snps = called.iter().filter(|k| k.2.len() == 1 && k.3.len() == 1).count();
    Score {
        truth: truth.len(),
        calls: called.len(),
        snps,
        indels: called.len() - snps,
        true_positives: tp,
        false_positives: called.len() - tp,
        false_negatives: truth.len() - tp,
        recall: if truth.is_empty() { 0.0 } else { tp as f64 / truth.len() as f64 },
        precision: if called.is_empty() { 0.0 } else { tp as f64 / called.len() as f64 },
    }
}

/// The data lines of a VCF (headers carry dates and command lines).
pub fn records(vcf: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(vcf).with_context(|| format!("cannot read {}", vcf.display()))?;
    Ok(text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(pos: u64, r: &str, a: &str) -> Key {
        ("chr".into(), pos, r.into(), a.into())
    }

    #[test]
    fn scores_exact_matches_above_the_quality_floor() {
        let truth: BTreeSet<Key> = [k(10, "A", "G"), k(20, "AT", "A"), k(30, "C", "T")].into();
        let calls =
            vec![(k(10, "A", "G"), 99.0), (k(20, "AT", "A"), 50.0), (k(40, "G", "C"), 30.0), (k(30, "C", "T"), 5.0)];
        let s = score(&truth, &calls);
        assert_eq!((s.calls, s.true_positives, s.false_positives, s.false_negatives), (3, 2, 1, 1));
        assert_eq!((s.snps, s.indels), (2, 1));
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-9 && (s.precision - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_task_runs_the_bare_argv() {
        let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let t = tes_task(&ids, 2);
        let bare: Vec<Vec<String>> = steps("/data", 2).into_iter().map(|s| s.argv).collect();
        let tes: Vec<Vec<String>> = t["executors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect())
            .collect();
        assert_eq!(bare, tes);
        assert_eq!(t["inputs"][1]["url"], "seqshield://b");
        assert_eq!(t["inputs"][2]["path"], "/data/reads/r2.fq");
    }
}
