//! Literature evidence against the real model (all-MiniLM-L6-v2) and PubMed
//! baseline files fetched by `scripts/annotate-data` into `.work/annotate`.
//! Without that directory the tests skip, except under CI (`CI` set), where
//! they fail.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use seqshield_annotate::evidence::index::{fingerprint_corpus, BuildOptions};
use seqshield_annotate::evidence::{pubmed, query, Encoder, EvidenceError, EvidenceIndex};
use zeroize::Zeroizing;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.work/annotate");
const PUBMED_2020: &str = "pubmed/pubmed20n0014.xml.gz";
const PUBMED_2021: &str = "pubmed/pubmed21n1298.xml.gz";
/// Abstracts embedded by the index test (the full corpus takes minutes).
const INDEX_LIMIT: usize = 300;
/// Tokens per text for these tests: half the default 256, to keep the
/// index test within CI's time on two cores.
const TEST_MAX_TOKENS: usize = 128;

fn data() -> Option<&'static Path> {
    let dir = Path::new(DATA);
    if dir.join("model/model.safetensors").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{DATA} is missing: run scripts/annotate-data");
    }
    eprintln!("skipping: {DATA} is missing (run scripts/annotate-data)");
    None
}

fn load(dir: &Path) -> Encoder {
    let dir = dir.join("model");
    let config = std::fs::read(dir.join("config.json")).unwrap();
    let weights = Zeroizing::new(std::fs::read(dir.join("model.safetensors")).unwrap());
    let tokenizer = std::fs::read(dir.join("tokenizer.json")).unwrap();
    let t = Instant::now();
    let enc = Encoder::from_parts(&config, weights, &tokenizer).unwrap();
    eprintln!("model load from bytes: {:?}", t.elapsed());
    assert_eq!(enc.max_tokens(), 256, "the default");
    enc
}

fn encoder() -> Option<&'static Encoder> {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    let dir = data()?;
    Some(ENCODER.get_or_init(|| load(dir).with_max_tokens(TEST_MAX_TOKENS).unwrap()))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(worst <= tol, "max difference {worst} > {tol}");
}

#[test]
fn encoder_gives_unit_vectors_of_384_dimensions() {
    let Some(enc) = encoder() else { return };
    assert_eq!(enc.dim(), 384);
    assert_eq!(enc.max_tokens(), TEST_MAX_TOKENS);
    assert!(enc.model_id().starts_with("sha256:"));
    let v = enc.embed(&["BRCA1 mutation", "", "a much longer sentence about genes"]).unwrap();
    for row in &v {
        assert_eq!(row.len(), 384);
        assert!((dot(row, row).sqrt() - 1.0).abs() < 1e-5);
    }
}

/// Guards the attention mask: padding a short text to a long one's length
/// in the same batch must not change its embedding (the shipped
/// `tokenizer.json` pads every text to 128 tokens).
#[test]
fn padding_in_a_batch_does_not_change_an_embedding() {
    let Some(enc) = encoder() else { return };
    let short = "BRCA1 mutation";
    let long = "Germline mutations in the BRCA1 gene confer a high lifetime risk of breast and ovarian \
                cancer; we sequenced the coding exons and intron boundaries in 300 families and \
                report frameshift, nonsense and missense variants with their segregation data.";
    let alone = enc.embed(&[short]).unwrap();
    let batched = enc.embed(&[long, short, long]).unwrap();
    assert_close(&alone[0], &batched[1], 1e-5);
    assert_close(&batched[0], &batched[2], 1e-6);
}

/// Pooling invariants, in place of reference numbers (no torch here):
/// order and batch independence, determinism, and truncation at
/// `max_tokens` (words past it change nothing; words before it do).
#[test]
fn pooling_is_order_independent_deterministic_and_truncates() {
    let Some(enc) = encoder() else { return };
    let texts: Vec<String> = (0..40).map(|i| format!("sentence number {i} about {}", "cells ".repeat(i % 7))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let forward = enc.embed(&refs).unwrap();
    let mut reversed: Vec<&str> = refs.clone();
    reversed.reverse();
    let backward = enc.embed(&reversed).unwrap();
    for (i, row) in forward.iter().enumerate() {
        assert_close(row, &backward[texts.len() - 1 - i], 1e-5);
        assert_close(row, &enc.embed(&[refs[i]]).unwrap()[0], 1e-5);
    }
    let base = "protein ".repeat(TEST_MAX_TOKENS + 10);
    let a = enc.embed(&[&base, &format!("{base} kinase inhibitor")]).unwrap();
    assert_eq!(a[0], a[1], "text past max_tokens is cut");
    let b = enc.embed(&[&format!("kinase {base}")]).unwrap();
    assert!(dot(&a[0], &b[0]) < 0.99999, "text before max_tokens counts");
}

#[test]
fn similar_topics_are_closer() {
    let Some(enc) = encoder() else { return };
    let v = enc
        .embed(&[
            "BRCA1 mutation breast cancer",
            "Inherited BRCA1 variants raise the risk of breast tumours in women.",
            "Nitrogen-fixing bacteria in agricultural soil samples.",
        ])
        .unwrap();
    let (close, far) = (dot(&v[0], &v[1]), dot(&v[0], &v[2]));
    eprintln!("cos(query, breast cancer) = {close:.3}, cos(query, soil bacteria) = {far:.3}");
    assert!(close > far + 0.2);
}

/// Counts cross-checked with Python's `xml.etree.ElementTree.iterparse`
/// (records whose `Article/Abstract/AbstractText` hold non-blank text).
#[test]
fn pubmed_files_parse_with_the_expected_counts_and_records() {
    let Some(dir) = data() else { return };
    for (file, expected) in [(PUBMED_2020, 14_832usize), (PUBMED_2021, 18_445)] {
        let t = Instant::now();
        let articles: Vec<pubmed::Article> =
            pubmed::parse_path(dir.join(file)).unwrap().collect::<Result<_, _>>().unwrap();
        eprintln!("{file}: {} records with an abstract, parsed in {:?}", articles.len(), t.elapsed());
        assert_eq!(articles.len(), expected);
        let by_rank = |n: usize| &articles[n - 1];
        if file == PUBMED_2020 {
            assert_eq!(by_rank(1).pmid, 399_296);
            assert!(by_rank(1).title.starts_with("Monitoring of bacteriological contamination"));
            assert!(by_rank(1).abstract_text.starts_with("Two hundred and sixty nine beef"));
            assert_eq!(by_rank(1).year, Some(1979));
            assert_eq!(by_rank(1).journal.as_deref(), Some("Journal of the South African Veterinary Association"));
            assert_eq!(
                (by_rank(500).pmid, by_rank(500).title.as_str()),
                (400_778, "Genetic variation in prenatal survival and litter size.")
            );
            assert_eq!(by_rank(14_000).pmid, 427_658);
            let labelled = articles.iter().find(|a| a.pmid == 401_343).unwrap();
            assert!(labelled.abstract_text.starts_with("In this paper we discuss"));
            assert!(labelled.abstract_text.contains(" ABBREVIATIONS: Cerebral spinal fluid (CSF);"));
        } else {
            assert_eq!(by_rank(1).pmid, 10_704_411);
            assert_eq!(
                by_rank(5000).title,
                "Brevilin A inhibits NLRP3 inflammasome activation in vivo and in vitro by acting on the upstream of NLRP3-induced ASC oligomerization."
            );
            let tgf = articles.iter().find(|a| a.pmid == 30_640_966).unwrap();
            assert!(tgf.title.contains("TGF-β1"), "entities and UTF-8 survive");
        }
    }
}

#[test]
fn index_builds_round_trips_detects_corruption_and_finds_articles() {
    let Some(dir) = data() else { return };
    let Some(enc) = encoder() else { return };
    let files = vec![dir.join(PUBMED_2020)];
    let fingerprint = fingerprint_corpus(&files, enc.model_id(), Some(INDEX_LIMIT)).unwrap();
    let options = BuildOptions { fingerprint: fingerprint.clone(), limit: Some(INDEX_LIMIT), progress: true };
    let t = Instant::now();
    let index = EvidenceIndex::build(enc, pubmed::parse_path(&files[0]).unwrap(), &options).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("index of {} abstracts built in {secs:.1} s: {:.1} abstracts/s", index.len(), index.len() as f64 / secs);
    assert_eq!(index.len(), INDEX_LIMIT);
    assert!(index.is_current(&fingerprint, enc.model_id()));
    assert!(!index.is_current(&fingerprint_corpus(&files, enc.model_id(), None).unwrap(), enc.model_id()));

    let bytes = index.to_bytes();
    eprintln!("serialized index of {} abstracts: {} bytes", index.len(), bytes.len());
    let back = EvidenceIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back, index);
    assert_eq!(back.to_bytes(), bytes, "bit-exact");
    // Every byte of the header (through the first records), and a sample of
    // the rest, flipped one at a time, is detected.
    let header = 8 + 4 + 4 + 8 + 8 + 2 + fingerprint.len() + 2 + enc.model_id().len() + 64;
    let positions = (0..header).chain((header..bytes.len()).step_by(9973)).chain([bytes.len() - 1]);
    for pos in positions {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x20;
        assert!(
            matches!(EvidenceIndex::from_bytes(&bad), Err(EvidenceError::Index(_))),
            "corruption at byte {pos} not detected"
        );
    }

    let articles: Vec<pubmed::Article> =
        pubmed::parse_path(&files[0]).unwrap().take(INDEX_LIMIT).collect::<Result<_, _>>().unwrap();
    for a in [&articles[3], &articles[150], &articles[299]] {
        let hits = back.search_text(enc, &a.title, 3).unwrap();
        assert!(hits.iter().any(|h| h.pmid == a.pmid), "{} not in the top 3 for its own title: {hits:?}", a.pmid);
    }
}

#[test]
fn variant_text_finds_variant_literature_in_the_2021_file() {
    let Some(dir) = data() else { return };
    let Some(enc) = encoder() else { return };
    let text =
        query::variant_text(Some("KRAS"), Some("GTPase KRas"), "missense_variant", Some("c.35G>A"), Some("p.Gly12Asp"));
    assert!(text.contains("glycine to aspartate substitution"));
    let v = enc.embed(&[&text]).unwrap();
    assert_eq!(v[0].len(), 384);
    // The text is ranked against 50 abstracts of the 2021 file; whatever
    // ranks first must at least be a sensible cosine.
    let index = EvidenceIndex::build(
        enc,
        pubmed::parse_path(dir.join(PUBMED_2021)).unwrap().take(50),
        &BuildOptions { fingerprint: "test".into(), limit: None, progress: false },
    )
    .unwrap();
    let hits = index.search(&v[0], 5).unwrap();
    eprintln!("KRAS G12D: {hits:?}");
    assert_eq!(hits.len(), 5);
    assert!(hits[0].score > 0.0 && hits[0].score <= 1.0 + 1e-5);
}
