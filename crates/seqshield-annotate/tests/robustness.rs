//! No parser panics on damaged input: seeded mutations (byte flips,
//! insertions, deletions, truncations) of real inputs, a stable stand-in for
//! fuzzing. The VCF and HGVS parsers face every API caller; the GenBank and
//! PubMed parsers read files an operator configures.

use std::io::Read;
use std::path::Path;

use proptest::prelude::*;
use seqshield_annotate::evidence::pubmed;
use seqshield_annotate::genome::Genome;
use seqshield_annotate::input::{parse_variant, parse_vcf};

const PPCP1: &str = "/usr/share/doc/python-biopython-doc/Tests/GenBank/NC_005816.gb.gz";
const PUBMED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.work/annotate/pubmed/pubmed20n0014.xml.gz");

fn gunzip(path: &str, max: usize) -> Option<Vec<u8>> {
    if !Path::new(path).exists() {
        assert!(std::env::var_os("CI").is_none(), "{path} missing in CI (scripts/setup)");
        eprintln!("skipping: {path} missing");
        return None;
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).take(max as u64).read_to_end(&mut out).unwrap();
    Some(out)
}

fn genbank() -> Option<&'static [u8]> {
    static G: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    G.get_or_init(|| gunzip(PPCP1, 1 << 20)).as_deref()
}

fn genome() -> Option<&'static Genome> {
    static G: std::sync::OnceLock<Option<Genome>> = std::sync::OnceLock::new();
    G.get_or_init(|| genbank().map(|b| Genome::from_genbank(b).unwrap())).as_ref()
}

fn pubmed_head() -> Option<&'static [u8]> {
    static P: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    // The first records of a baseline file (about 60 KB).
    P.get_or_init(|| gunzip(PUBMED, 60_000)).as_deref()
}

/// One edit: flip, insert, delete or truncate at a position.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = base.to_vec();
    for e in edits {
        if v.is_empty() {
            break;
        }
        match *e {
            Edit::Flip(i, b) => {
                let i = i % v.len();
                v[i] ^= b | 1;
            }
            Edit::Insert(i, b) => {
                let i = i % (v.len() + 1);
                v.insert(i, b);
            }
            Edit::Delete(i, n) => {
                let i = i % v.len();
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Truncate(i) => v.truncate(i % (v.len() + 1)),
        }
    }
    v
}

fn sample_vcf(g: &Genome) -> Vec<u8> {
    let mut s = String::from(
        "##fileformat=VCFv4.2\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"d\">\n\
         ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"g\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n",
    );
    for pos in [10u64, 500, 6664, 6700, 9000] {
        let r = g.sequence("NC_005816.1", pos - 1, pos).unwrap()[0] as char;
        let a = if r == 'A' { 'G' } else { 'A' };
        s.push_str(&format!("NC_005816.1\t{pos}\t.\t{r}\t{a},T\t50\tPASS\tDP=9\tGT\t1\n"));
    }
    s.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn damaged_vcfs_are_refused_or_parsed_never_panic(edits in proptest::collection::vec(edit(), 1..6)) {
        if let Some(g) = genome() {
            let body = apply(&sample_vcf(g), &edits);
            let _ = parse_vcf(&body, g);
        }
    }

    #[test]
    fn damaged_hgvs_never_panics(edits in proptest::collection::vec(edit(), 1..4), which in 0usize..6) {
        if let Some(g) = genome() {
            let forms = ["NC_005816.1:g.6664A>G", "NC_005816.1:g.6665_6670del", "NC_005816.1:g.6665dup",
                "NC_005816.1:g.6664_6665insTTT", "NC_005816.1:g.6664_6666delinsAC", "NC_005816.1:6664:A:G"];
            let s = String::from_utf8_lossy(&apply(forms[which].as_bytes(), &edits)).into_owned();
            let _ = parse_variant(&s, g, 0);
        }
    }

    #[test]
    fn damaged_genbank_never_panics(edits in proptest::collection::vec(edit(), 1..4)) {
        if let Some(b) = genbank() {
            let _ = Genome::from_genbank(&apply(b, &edits)[..]);
        }
    }

    #[test]
    fn damaged_pubmed_never_panics(edits in proptest::collection::vec(edit(), 1..4)) {
        if let Some(b) = pubmed_head() {
            let damaged = apply(b, &edits);
            for a in pubmed::parse(&damaged[..]).take(200) {
                let _ = a;
            }
        }
    }
}
