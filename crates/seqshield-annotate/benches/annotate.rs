//! The annotation service's benchmark (`scripts/bench-annotate`, release
//! build). Prints one JSON object on stdout and a summary on stderr:
//!
//! - model load: plain files from disk vs decrypt-and-verify from a signed
//!   bundle (target <= 1.1x), median of `LOAD_RUNS`, interleaved;
//! - the evidence index build (abstracts/s);
//! - variants/s for consequence annotation alone, and with evidence;
//! - the overhead of validation, limiting and filtering over bare inference
//!   on the same variants (target <= 2 %), interleaved pairs, the median
//!   of the `OVERHEAD_RUNS` pair ratios.
//!
//! Inputs: `.work/annotate` (scripts/annotate-data) and the Arabidopsis
//! chloroplast GenBank of python-biopython-doc. Environment:
//! `BENCH_ABSTRACTS` (default 2000), `BENCH_VARIANTS` (default 2000).

use std::path::{Path, PathBuf};
use std::time::Instant;

use seqshield_annotate::bundle::{self, PackOptions, SignedBundle};
use seqshield_annotate::consequence::{self, Variant};
use seqshield_annotate::evidence::Encoder;
use seqshield_annotate::genome::Genome;
use seqshield_annotate::guard::{Guard, Limits};
use seqshield_annotate::service::{evidence_text, Annotator, Evidence, View, MAX_EVIDENCE_VARIANTS};
use seqshield_keys::file::FileKek;
use seqshield_keys::sign::{FileSigner, Signer};
use serde_json::json;
use zeroize::Zeroizing;

const CHLOROPLAST: &str = "/usr/share/doc/python-biopython-doc/Tests/GenBank/NC_000932.gb.gz";
const LOAD_RUNS: usize = 5;
const OVERHEAD_RUNS: usize = 21;
const K: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A seeded planted variant set: SNVs (90 %) and 1-3 bp deletions.
fn plant(g: &Genome, n: usize) -> Vec<Variant> {
    let (contig, len) = g.contigs().next().map(|(c, l)| (c.to_owned(), l)).unwrap();
    let mut x: u64 = 0x5eed_5eed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let pos = 2 + next() % (len - 10);
        let r = g.sequence(&contig, pos - 1, pos).unwrap()[0];
        if !b"ACGT".contains(&r) {
            continue;
        }
        if next() % 10 == 0 {
            let l = 1 + (next() % 3);
            let refs = String::from_utf8(g.sequence(&contig, pos - 1, pos + l).unwrap().to_vec()).unwrap();
            out.push(Variant { contig: contig.clone(), pos, alternate: refs[..1].to_owned(), reference: refs });
        } else {
            let a = b"ACGT"[(next() % 4) as usize];
            if a == r {
                continue;
            }
            out.push(Variant {
                contig: contig.clone(),
                pos,
                reference: (r as char).to_string(),
                alternate: (a as char).to_string(),
            });
        }
    }
    out
}

fn vcf(vs: &[Variant]) -> Vec<u8> {
    let mut s = String::from("##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"GT\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n");
    for v in vs {
        s.push_str(&format!("{}\t{}\t.\t{}\t{}\t50\tPASS\t.\tGT\t1\n", v.contig, v.pos, v.reference, v.alternate));
    }
    s.into_bytes()
}

fn load_plain(model: &Path) -> Encoder {
    let config = std::fs::read(model.join("config.json")).unwrap();
    let weights = Zeroizing::new(std::fs::read(model.join("model.safetensors")).unwrap());
    let tokenizer = std::fs::read(model.join("tokenizer.json")).unwrap();
    Encoder::from_parts(&config, weights, &tokenizer).unwrap()
}

fn load_bundle(path: &Path, signer: &dyn Signer, kek: &FileKek) -> Encoder {
    let mut files = SignedBundle::read(path).unwrap().open(signer.verifying_key(), kek, Some("1")).unwrap();
    let config = files.get("config.json").unwrap().to_vec();
    let tokenizer = files.get("tokenizer.json").unwrap().to_vec();
    let name = files.weights_name().unwrap();
    let digest = files.sha256(&name).unwrap();
    let weights = files.take(&name).unwrap();
    Encoder::from_parts_hashed(&config, weights, &tokenizer, &digest).unwrap()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: build only.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.work/annotate"));
    let model = data.join("model");
    assert!(model.join("model.safetensors").exists(), "run scripts/annotate-data first");
    let abstracts = env_usize("BENCH_ABSTRACTS", 2000);
    let n_variants = env_usize("BENCH_VARIANTS", 2000);
    let tmp = tempfile::tempdir().unwrap();
    let kek = FileKek::init(&tmp.path().join("kek"), b"annotate bench").unwrap();
    let signer = FileSigner::init(&tmp.path().join("sign.pem"), b"annotate bench").unwrap();
    let bundle_path = tmp.path().join("model.bundle");
    bundle::pack(
        &model,
        &bundle_path,
        &PackOptions { name: "all-minilm-l6-v2".into(), version: "1".into() },
        &signer,
        &[&kek.public()],
    )
    .unwrap();

    // Model load, plain vs decrypt-and-verify, interleaved.
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    drop(load_plain(&model)); // warm the page cache
    for _ in 0..LOAD_RUNS {
        let t = Instant::now();
        drop(load_plain(&model));
        plain.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        drop(load_bundle(&bundle_path, &signer, &kek));
        sealed.push(t.elapsed().as_secs_f64());
    }
    let (load_plain_s, load_bundle_s) = (median(plain.clone()), median(sealed.clone()));
    eprintln!(
        "model load: plain {load_plain_s:.3} s, decrypt-and-verify {load_bundle_s:.3} s, ratio {:.3} (median of {LOAD_RUNS})",
        load_bundle_s / load_plain_s
    );

    // The service with its index.
    let files = SignedBundle::read(&bundle_path).unwrap().open(signer.verifying_key(), &kek, None).unwrap();
    let corpus = vec![data.join("pubmed/pubmed20n0014.xml.gz"), data.join("pubmed/pubmed21n1298.xml.gz")];
    let t = Instant::now();
    let evidence =
        Evidence::load(files, &corpus, Some(abstracts), &tmp.path().join("index.sqsh"), &kek, false).unwrap();
    let index_s = t.elapsed().as_secs_f64();
    let indexed = evidence.model.abstracts;
    eprintln!("index: {indexed} abstracts in {index_s:.1} s = {:.1} abstracts/s", indexed as f64 / index_s);
    let genome = Genome::from_genbank_path(Path::new(CHLOROPLAST)).unwrap();
    let variants = plant(&genome, n_variants);
    let annotator = Annotator::new(vec![("chloroplast".into(), genome)]).with_evidence(evidence);
    let (name, g) = annotator.genome(None).unwrap();
    let view = View { detail: true, evidence: true, context: true };

    // Consequences alone: the whole VCF, parse + annotate + filter + JSON.
    let body = vcf(&variants);
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let checked = Annotator::parse_vcf(g, &body).unwrap();
        let report = annotator.annotate(name, g, &checked, view, 0).unwrap();
        std::hint::black_box(serde_json::to_vec(&report).unwrap());
        runs.push(t.elapsed().as_secs_f64());
    }
    let consequence_vps = variants.len() as f64 / median(runs);
    eprintln!("consequences alone: {consequence_vps:.0} variants/s ({} variants)", variants.len());

    // With evidence: requests of MAX_EVIDENCE_VARIANTS, bare vs protected.
    let batch = &variants[..MAX_EVIDENCE_VARIANTS.min(variants.len())];
    let batch_body = vcf(batch);
    let enc = annotator.evidence().unwrap().encoder();
    let index = annotator.evidence().unwrap().index();
    let bare = || {
        let mut texts = Vec::new();
        for v in batch {
            let effects = consequence::annotate(g, v).unwrap();
            texts.push(evidence_text(&effects));
        }
        let mut unique: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let vectors = enc.embed(&unique).unwrap();
        for q in &vectors {
            std::hint::black_box(index.search(q, K).unwrap());
        }
    };
    let mut guard = Guard::new(Limits { burst_variants: u32::MAX, variants_per_minute: u32::MAX, ..Limits::default() });
    // The controls' own time (validation, the guard, filtering into the
    // report and serialising it), measured inside each protected run.
    let mut controls = Vec::new();
    let mut protected = |i: usize| {
        let t = Instant::now();
        let checked = Annotator::parse_vcf(g, &batch_body).unwrap();
        let who = format!("bench-{i}");
        std::hint::black_box(guard.charge(
            &who,
            checked.iter().map(|c| (c.variant.contig.as_str(), c.variant.pos, c.variant.alternate.as_str())),
            checked.len(),
            Instant::now(),
        ));
        let before = t.elapsed();
        let report = annotator.annotate(name, g, &checked, view, K).unwrap();
        let t = Instant::now();
        std::hint::black_box(serde_json::to_vec(&report).unwrap());
        controls.push((before + t.elapsed()).as_secs_f64());
    };
    bare();
    protected(0);
    let (mut b, mut p) = (Vec::new(), Vec::new());
    for i in 0..OVERHEAD_RUNS {
        // Alternate the order so drift hits both.
        if i % 2 == 0 {
            let t = Instant::now();
            bare();
            b.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            protected(i);
            p.push(t.elapsed().as_secs_f64());
        } else {
            let t = Instant::now();
            protected(i);
            p.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            bare();
            b.push(t.elapsed().as_secs_f64());
        }
    }
    let controls_s = median(controls.clone());
    let (bare_s, prot_s) = (median(b.clone()), median(p.clone()));
    // The median of each pair's ratio: robust to drift in machine load.
    let overhead = (median(b.iter().zip(&p).map(|(b, p)| p / b).collect()) - 1.0) * 100.0;
    let evidence_vps = batch.len() as f64 / prot_s;
    eprintln!(
        "controls alone (validate + guard + serialise): {:.3} ms per {} variants = {:.3} % of bare inference",
        controls_s * 1e3,
        batch.len(),
        controls_s / bare_s * 100.0
    );
    eprintln!(
        "with evidence (k={K}): {evidence_vps:.1} variants/s; bare inference {bare_s:.3} s vs validated+limited+filtered {prot_s:.3} s per {} variants: overhead {overhead:+.2} % (median of {OVERHEAD_RUNS} paired ratios)",
        batch.len()
    );
    println!(
        "{}",
        json!({
            "model_load": { "plain_s": load_plain_s, "bundle_s": load_bundle_s, "ratio": load_bundle_s / load_plain_s,
                            "plain_runs": plain, "bundle_runs": sealed, "target_ratio": 1.1 },
            "index": { "abstracts": indexed, "seconds": index_s, "abstracts_per_s": indexed as f64 / index_s },
            "consequence_variants_per_s": consequence_vps,
            "evidence": { "k": K, "variants_per_request": batch.len(), "variants_per_s": evidence_vps },
            "overhead": { "bare_s": bare_s, "protected_s": prot_s, "percent": overhead, "bare_runs": b, "protected_runs": p,
                          "controls_s": controls_s, "controls_percent": controls_s / bare_s * 100.0,
                          "target_percent": 2.0 },
            "variants": variants.len(),
        })
    );
}
