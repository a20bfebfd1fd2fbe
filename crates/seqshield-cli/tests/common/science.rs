//! Truth-set science shared by the pipeline tests: normalised variant
//! sets and recall/precision against the planted truth.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The E. coli 536 genome from Debian's `bowtie-examples`.
pub const GENOME: &str = "/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz";
/// PATH of the tools, inside the sandbox and bare.
pub const TOOL_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Recall and precision floors (on QUAL ≥ 20 calls).
pub const MIN_QUAL: f64 = 20.0;

/// Builds (or reuses) the `scripts/truthset` data at its default place (or
/// `$SEQSHIELD_TRUTHSET`) and returns its directory.
pub fn truthset() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = PathBuf::from(
        std::env::var("SEQSHIELD_TRUTHSET").unwrap_or_else(|_| "/var/tmp/seqshield-truthset/1mbp".into()),
    );
    let ts = output(Command::new("bash").arg(root.join("scripts/truthset")).arg("--out").arg(&data));
    print!("{}", String::from_utf8_lossy(&ts.stdout));
    data.canonicalize().unwrap()
}

pub fn wait(mut child: Child) -> std::process::ExitStatus {
    child.wait().unwrap()
}

pub fn on_path(tool: &str) -> bool {
    TOOL_PATH.split(':').any(|d| Path::new(d).join(tool).is_file())
}

/// What of a line takes part in the comparison: `None` drops it.
pub fn output(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// (CHROM, POS, REF, ALT) of a VCF's records after normalisation against
/// `reference`, with QUAL (`bcftools norm … | bcftools query`).
pub fn variants(reference: &Path, vcf: &Path, atomise: bool) -> Vec<(Key, f64)> {
    let mut norm = Command::new("bcftools");
    norm.args(["norm", "-f"]).arg(reference).args(["-m", "-any"]);
    if atomise {
        norm.arg("-a");
    }
    let mut norm = norm.args(["-Ou"]).arg(vcf).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let q = output(
        Command::new("bcftools")
            .args(["query", "-f", "%CHROM\t%POS\t%REF\t%ALT\t%QUAL\n", "-"])
            .stdin(norm.stdout.take().unwrap()),
    );
    assert!(wait(norm).success(), "bcftools norm {} failed", vcf.display());
    String::from_utf8(q.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let qual = f[4].parse().unwrap_or(f64::INFINITY); // "." (truth): no QUAL
            ((f[0].into(), f[1].parse().unwrap(), f[2].into(), f[3].into()), qual)
        })
        .collect()
}

pub type Key = (String, u64, String, String);

pub struct Score {
    pub calls: usize,
    pub tp: usize,
    pub recall: f64,
    pub precision: f64,
    pub missed: Vec<Key>,
}

pub fn score(truth: &BTreeSet<Key>, calls: &[(Key, f64)], min_qual: f64) -> Score {
    let called: BTreeSet<Key> = calls.iter().filter(|(_, q)| *q >= min_qual).map(|(k, _)| k.clone()).collect();
    let tp = called.intersection(truth).count();
    Score {
        calls: called.len(),
        tp,
        recall: tp as f64 / truth.len() as f64,
        precision: if called.is_empty() { 0.0 } else { tp as f64 / called.len() as f64 },
        missed: truth.difference(&called).cloned().collect(),
    }
}
