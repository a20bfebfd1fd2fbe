//! The sandbox science check: a real variant-calling pipeline run twice on
//! the `scripts/truthset` data (the first 1 Mbp of E. coli 536 with planted
//! SNPs and indels, ART 2x150 reads at 30x), once bare and once with every
//! step under `seqshield sandbox run --profile genomics-tools`, must give
//! the same bytes, and the calls must recover the planted variants.
//!
//! Steps (sequential, 2 threads, each timed): `bwa mem`, then `samtools
//! sort` and `samtools index`; `bcftools mpileup | bcftools call --ploidy 1
//! -mv` (two processes joined by a host pipe); `minimap2 -ax sr`, then
//! `samtools sort`; `freebayes -p 1`.
//!
//! Same bytes. Both runs see the same paths: the tools run with the output
//! directory as cwd and reach the data through `../data/…`. Bare, the
//! layout is `TMP/{data -> truth set, bare/}`; sandboxed, the truth set is
//! mounted read-only at `/data` and the output directory read-write at
//! `/out` (the cwd), so `../data` is `/data`. The command lines the tools
//! embed in their output (SAM `@PG CL:`, `##bcftoolsCommand`,
//! `##commandline`, `##reference`) are therefore identical and compared
//! too; only what embeds the date is left out:
//!   * `##fileDate=` (freebayes) is dropped;
//!   * the `; Date=…` tail of `##bcftools_…Command=` lines (bcftools call)
//!     is cut, the command itself still compared.
//!
//! SAMs (`aln.sam`, `mm2.sam`) and VCFs are compared as files; BAMs as
//! `samtools view -h --no-PG` (the viewer's own `@PG` left out; those of
//! bwa, minimap2 and sort are in the BAM and compared). `bwa mem` gets
//! `-K 10000000` (a fixed batch size), which makes its output independent
//! of the thread count; with a fixed `-t` it is deterministic anyway.
//!
//! Science. Calls and truth are normalised with `bcftools norm -f ref.fa
//! -m -any` (plus `-a`, atomise, for freebayes' complex alleles) and
//! compared on CHROM/POS/REF/ALT. Recall and precision are reported for all
//! calls and for QUAL ≥ 20; the asserts (≥ 0.95 each) are on QUAL ≥ 20,
//! since unfiltered freebayes emits hundreds of low-quality calls.
//!
//! Skips (with a note) when a tool or the genome is missing, unless `CI` is
//! set, where that is a failure. Run it with `-- --nocapture` to see the
//! timings and the recall table; `SEQSHIELD_SCIENCE_KEEP=1` keeps the
//! output directories.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

#[path = "common/science.rs"]
mod science;
use science::*;

/// The sandbox profile every step runs under.
const PROFILE: &str = "genomics-tools";
const TOOLS: &[&str] =
    &["bwa", "samtools", "bcftools", "minimap2", "freebayes", "art_illumina", "bgzip", "tabix", "python3"];
/// Recall and precision floors (on QUAL ≥ 20 calls).
const FLOOR: f64 = 0.95;

/// The data as both runs see it, relative to the output directory.
const REF: &str = "../data/ref.fa";
const R1: &str = "../data/reads_1.fq";
const R2: &str = "../data/reads_2.fq";

/// The one place that builds a sandboxed command line: `args` (the tool
/// and its arguments) under the genomics profile, `data_dir` read-only at
/// `/data`, `out_dir` read-write at `/out`, which is the cwd.
fn sandboxed(exe: &Path, data_dir: &Path, out_dir: &Path, args: &[&str]) -> Command {
    for p in [data_dir, out_dir] {
        assert!(!p.to_string_lossy().contains(':'), "a ':' in {} would break --mount", p.display());
    }
    let mut c = Command::new(exe);
    c.args(["sandbox", "run", "--profile", PROFILE])
        .arg("--mount")
        .arg(format!("{}:/data:ro", data_dir.display()))
        .arg("--mount")
        .arg(format!("{}:/out:rw", out_dir.display()))
        .args(["--cwd", "/out", "--"])
        .args(args);
    c
}

/// The same step unsandboxed: cwd `out_dir`, whose sibling `data` links to
/// the truth set, and the sandbox's PATH.
fn bare(out_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]).current_dir(out_dir).env("PATH", TOOL_PATH);
    c
}

/// One run of the pipeline: bare or sandboxed, into its own directory.
struct Run {
    name: &'static str,
    out: PathBuf,
    /// `Some((seqshield, truth set))` for the sandboxed run.
    sandbox: Option<(PathBuf, PathBuf)>,
    /// (step, seconds).
    times: Vec<(&'static str, f64)>,
}

impl Run {
    fn cmd(&self, args: &[&str]) -> Command {
        match &self.sandbox {
            None => bare(&self.out, args),
            Some((exe, data)) => sandboxed(exe, data, &self.out, args),
        }
    }

    /// Spawns a step; stderr goes to `<log>.log` in the output directory,
    /// stdout to `stdout` (a file there) when given.
    /// Returns the child and its command line (for messages).
    fn spawn(&self, log: &str, args: &[&str], stdin: Stdio, stdout: Option<&str>) -> (Child, String) {
        let err = File::create(self.out.join(format!("{log}.log"))).unwrap();
        let out = match stdout {
            Some(f) => Stdio::from(File::create(self.out.join(f)).unwrap()),
            None => Stdio::piped(),
        };
        let mut cmd = self.cmd(args);
        let line = format!("{cmd:?}");
        let child = cmd
            .stdin(stdin)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start {line}: {e}", self.name));
        (child, line)
    }

    fn check(&self, log: &str, (child, line): (Child, String)) {
        let status = wait(child);
        if !status.success() {
            let text = std::fs::read_to_string(self.out.join(format!("{log}.log"))).unwrap_or_default();
            panic!("{} run: {line}\nexited with {status}; its stderr:\n{}", self.name, tail(&text, 4000));
        }
    }

    /// Runs one step to completion (stdout to `stdout`, a file, if given).
    fn step(&mut self, label: &'static str, args: &[&str], stdout: Option<&str>) {
        let t = Instant::now();
        let log = args[0];
        let child = self.spawn(log, args, Stdio::null(), Some(stdout.unwrap_or("/dev/null")));
        self.check(log, child);
        self.times.push((label, t.elapsed().as_secs_f64()));
    }

    /// `a | b`: two processes (two sandboxes) joined by a host pipe.
    fn pipe(&mut self, label: &'static str, a: &[&str], b: &[&str]) {
        let t = Instant::now();
        let (la, lb) = (format!("{}-1", a[0]), format!("{}-2", b[0]));
        let mut first = self.spawn(&la, a, Stdio::null(), None);
        let pipe = Stdio::from(first.0.stdout.take().unwrap());
        let second = self.spawn(&lb, b, pipe, Some("/dev/null"));
        self.check(&lb, second);
        self.check(&la, first);
        self.times.push((label, t.elapsed().as_secs_f64()));
    }

    fn pipeline(&mut self) {
        let rg = r"@RG\tID:s\tSM:s";
        self.step("bwa mem", &["bwa", "mem", "-t", "2", "-K", "10000000", "-R", rg, REF, R1, R2], Some("aln.sam"));
        self.step("samtools sort (bwa)", &["samtools", "sort", "-@2", "-o", "aln.bam", "aln.sam"], None);
        self.step("samtools index", &["samtools", "index", "aln.bam"], None);
        self.pipe(
            "bcftools mpileup → call",
            &["bcftools", "mpileup", "-f", REF, "aln.bam"],
            &["bcftools", "call", "--ploidy", "1", "-mv", "-Ov", "-o", "calls.vcf"],
        );
        self.step("minimap2 -ax sr", &["minimap2", "-ax", "sr", "-t", "2", REF, R1, R2], Some("mm2.sam"));
        self.step("samtools sort (mm2)", &["samtools", "sort", "-@2", "-o", "mm2.bam", "mm2.sam"], None);
        self.step("freebayes", &["freebayes", "-p", "1", "-f", REF, "aln.bam"], Some("fb.vcf"));
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn compared(line: &str) -> Option<&str> {
    if line.starts_with("##fileDate=") {
        return None;
    }
    if line.starts_with("##bcftools") && line.contains("Command=") {
        if let Some(i) = line.find("; Date=") {
            return Some(&line[..i]);
        }
    }
    Some(line)
}

/// Compares two texts line by line (after `compared`): the number of equal
/// lines, or the first difference.
fn same_lines(what: &str, a: impl Read, b: impl Read) -> Result<usize, String> {
    let (mut a, mut b) = (BufReader::with_capacity(1 << 20, a), BufReader::with_capacity(1 << 20, b));
    let (mut la, mut lb) = (String::new(), String::new());
    let mut n = 0;
    loop {
        let ea = next_compared(&mut a, &mut la);
        let eb = next_compared(&mut b, &mut lb);
        match (ea, eb) {
            (None, None) => return Ok(n),
            (Some(x), Some(y)) if x == y => n += 1,
            (x, y) => {
                return Err(format!(
                    "{what}: bare and sandboxed differ after {n} equal lines:\n  bare:      {}\n  sandboxed: {}",
                    x.map_or("(end)".into(), |s| tail(&s, 300).to_owned()),
                    y.map_or("(end)".into(), |s| tail(&s, 300).to_owned()),
                ))
            }
        }
    }
}

fn next_compared(r: &mut impl BufRead, buf: &mut String) -> Option<String> {
    loop {
        buf.clear();
        if r.read_line(buf).unwrap() == 0 {
            return None;
        }
        if let Some(l) = compared(buf.trim_end_matches('\n')) {
            return Some(l.to_owned());
        }
    }
}

fn same_file(what: &str, a: &Path, b: &Path) -> usize {
    same_lines(what, File::open(a).unwrap(), File::open(b).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

/// BAMs compared decoded: `samtools view -h --no-PG`.
fn same_bam(what: &str, a: &Path, b: &Path) -> usize {
    let view = |p: &Path| {
        Command::new("samtools").args(["view", "-h", "--no-PG"]).arg(p).stdout(Stdio::piped()).spawn().unwrap()
    };
    let (mut ca, mut cb) = (view(a), view(b));
    let n = same_lines(what, ca.stdout.take().unwrap(), cb.stdout.take().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait(ca).success() && wait(cb).success(), "{what}: samtools view failed");
    n
}

#[test]
fn comparison_leaves_out_only_dates() {
    let bare = "##fileformat=VCFv4.2\n##fileDate=20250101\n##bcftools_callCommand=call -mv; Date=Mon Jan  1 00:00:00 2025\nx\t1\n";
    let sand = "##fileformat=VCFv4.2\n##fileDate=20250102\n##bcftools_callCommand=call -mv; Date=Tue Jan  2 00:00:00 2025\nx\t1\n";
    assert_eq!(same_lines("vcf", bare.as_bytes(), sand.as_bytes()), Ok(3));
    for other in [
        "##fileformat=VCFv4.2\n##bcftools_callCommand=call -v; Date=X\nx\t1\n",
        "##fileformat=VCFv4.2\n##bcftools_callCommand=call -mv\nx\t2\n",
        "##fileformat=VCFv4.2\n##bcftools_callCommand=call -mv\nx\t1\ny\n",
        "@PG\tID:bwa\tCL:bwa mem /data/ref.fa\n",
    ] {
        assert!(same_lines("vcf", bare.as_bytes(), other.as_bytes()).is_err(), "{other:?} passed as equal");
    }
}

#[test]
fn pipeline_under_the_sandbox_matches_bare_and_recovers_planted_variants() {
    let ci = std::env::var_os("CI").is_some();
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() || !Path::new(GENOME).exists() {
        let why = format!("missing tools {missing:?} or genome {GENOME}; run scripts/setup");
        assert!(!ci, "CI: {why}");
        eprintln!("note: {why}; sandbox science check not run");
        return;
    }

    // The truth set, at the default place (or $SEQSHIELD_TRUTHSET).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = PathBuf::from(
        std::env::var("SEQSHIELD_TRUTHSET").unwrap_or_else(|_| "/var/tmp/seqshield-truthset/1mbp".into()),
    );
    let t = Instant::now();
    let ts = output(Command::new("bash").arg(root.join("scripts/truthset")).arg("--out").arg(&data));
    print!("{}", String::from_utf8_lossy(&ts.stdout));
    println!("truth set ready in {:.1} s", t.elapsed().as_secs_f64());
    let data = data.canonicalize().unwrap();

    let tmp = tempfile::Builder::new().prefix("seqshield-science-").tempdir().unwrap();
    std::os::unix::fs::symlink(&data, tmp.path().join("data")).unwrap();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_seqshield"));
    let mut runs = [
        Run { name: "bare", out: tmp.path().join("bare"), sandbox: None, times: vec![] },
        Run { name: "sandboxed", out: tmp.path().join("sandboxed"), sandbox: Some((exe, data.clone())), times: vec![] },
    ];
    for r in &mut runs {
        std::fs::create_dir(&r.out).unwrap();
        r.pipeline();
    }
    let [b, s] = &runs;

    println!("\n| step | bare (s) | sandboxed (s) | overhead |\n|---|---:|---:|---:|");
    let mut tot = (0.0, 0.0);
    for ((label, tb), (_, ts)) in b.times.iter().zip(&s.times) {
        println!("| {label} | {tb:.2} | {ts:.2} | {:+.1}% |", 100.0 * (ts - tb) / tb);
        tot = (tot.0 + tb, tot.1 + ts);
    }
    println!("| total | {:.2} | {:.2} | {:+.1}% |", tot.0, tot.1, 100.0 * (tot.1 - tot.0) / tot.0);

    // Same bytes.
    println!();
    for f in ["aln.sam", "mm2.sam", "calls.vcf", "fb.vcf"] {
        let n = same_file(f, &b.out.join(f), &s.out.join(f));
        println!("{f}: {n} lines identical");
    }
    for f in ["aln.bam", "mm2.bam"] {
        let n = same_bam(f, &b.out.join(f), &s.out.join(f));
        let raw = std::fs::read(b.out.join(f)).unwrap() == std::fs::read(s.out.join(f)).unwrap();
        println!("{f}: {n} records+header lines identical (raw bytes {})", if raw { "identical" } else { "differ" });
    }

    // Science, on the bare run (the sandboxed one is the same, checked above).
    let reference = data.join("ref.fa");
    let truth: BTreeSet<Key> =
        variants(&reference, &data.join("truth.vcf.gz"), false).into_iter().map(|(k, _)| k).collect();
    assert!(truth.len() >= 100, "truth set has only {} variants", truth.len());
    let bc = variants(&reference, &b.out.join("calls.vcf"), false);
    let fb = variants(&reference, &b.out.join("fb.vcf"), true);
    println!("\n{} planted variants\n| caller | QUAL ≥ | calls | TP | FP | FN | recall | precision |", truth.len());
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut checked = vec![];
    for (caller, calls) in [("bcftools call", &bc), ("freebayes", &fb)] {
        for q in [0.0, MIN_QUAL] {
            let sc = score(&truth, calls, q);
            println!(
                "| {caller} | {q} | {} | {} | {} | {} | {:.3} | {:.3} |",
                sc.calls,
                sc.tp,
                sc.calls - sc.tp,
                sc.missed.len(),
                sc.recall,
                sc.precision
            );
            if q == MIN_QUAL {
                checked.push((caller, sc));
            }
        }
    }
    for (caller, sc) in checked {
        assert!(sc.recall >= FLOOR, "{caller}: recall {:.3} < {FLOOR}; missed {:?}", sc.recall, sc.missed);
        assert!(sc.precision >= FLOOR, "{caller}: precision {:.3} < {FLOOR}", sc.precision);
    }

    if std::env::var_os("SEQSHIELD_SCIENCE_KEEP").is_some() {
        println!("kept {}", tmp.keep().display());
    }
}
