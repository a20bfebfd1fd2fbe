//! Input validation against the real pPCP1 plasmid: VCF 4.x through
//! noodles, single variants (colon and HGVS g. forms), every refusal naming
//! its line or item and field, no oracle for the reference base, and no
//! panic on arbitrary bytes.

use std::path::Path;

use proptest::prelude::*;
use seqshield_annotate::genome::Genome;
use seqshield_annotate::input::{parse_variant, parse_vcf, InputError, Source, MAX_RECORDS};

const PPCP1: &str = "/usr/share/doc/python-biopython-doc/Tests/GenBank/NC_005816.gb.gz";

fn genome() -> Option<&'static Genome> {
    static G: std::sync::OnceLock<Option<Genome>> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        if !Path::new(PPCP1).exists() {
            assert!(std::env::var_os("CI").is_none(), "{PPCP1} missing in CI");
            eprintln!("skipping: {PPCP1} not installed (python-biopython-doc)");
            return None;
        }
        Some(Genome::from_genbank_path(Path::new(PPCP1)).unwrap())
    })
    .as_ref()
}

fn base(g: &Genome, pos: u64) -> char {
    g.sequence("NC_005816.1", pos - 1, pos).unwrap()[0] as char
}

fn other(b: char) -> char {
    if b == 'A' {
        'G'
    } else {
        'A'
    }
}

/// A base that is neither `a` nor `b`.
fn third(a: char, b: char) -> char {
    ['A', 'C', 'G', 'T'].into_iter().find(|&c| c != a && c != b).unwrap()
}

const HEAD: &str = "##fileformat=VCFv4.2\n##contig=<ID=NC_005816.1,length=9609>\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tPATIENT_4711\n";

fn vcf(records: &[String]) -> Vec<u8> {
    let mut s = HEAD.to_owned();
    for r in records {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

#[test]
fn a_vcf_with_samples_gives_one_variant_per_alt_and_drops_the_rest() {
    let Some(g) = genome() else { return };
    let (b1, b2) = (base(g, 6664), base(g, 100));
    let recs = [
        format!("NC_005816.1\t6664\trs1\t{b1}\t{},T\t50\tPASS\tDP=10\tGT\t1/1", other(b1)),
        format!("NC_005816\t100\t.\t{}\t{}\t.\t.\t.\tGT\t0/1", b2.to_ascii_lowercase(), other(b2)),
        format!("NC_005816.1\t200\t.\t{}\t.\t.\t.\t.\tGT\t0/0", base(g, 200)),
    ];
    let out = parse_vcf(&vcf(&recs), g).unwrap();
    let alts: Vec<_> = out.iter().map(|c| (c.source, c.variant.pos, c.variant.alternate.clone())).collect();
    // Two ALTs on line 5, one on line 6, none for the `.` on line 7.
    assert_eq!(alts.len(), 3, "{alts:?}");
    assert_eq!(alts[0], (Source::Line(5), 6664, other(b1).to_string()));
    assert_eq!(alts[1], (Source::Line(5), 6664, "T".to_string()));
    assert_eq!(out.last().unwrap().source, Source::Line(6));
    // Accession without version resolves to the genome's own name.
    assert!(out.iter().all(|c| c.variant.contig == "NC_005816.1"));
    assert_eq!(out.last().unwrap().variant.reference, b2.to_string());
}

#[test]
fn refusals_name_the_line_and_field_and_never_the_reference_base() {
    let Some(g) = genome() else { return };
    let b = base(g, 6664);
    let cases: Vec<(String, u16, Option<Source>, &str)> = vec![
        (
            format!("NC_005816.1\t6664\t.\t{}\t{}\t.\t.\t.\tGT\t1", other(b), third(b, other(b))),
            422,
            Some(Source::Line(5)),
            "REF",
        ),
        ("chrUn\t5\t.\tA\tG\t.\t.\t.\tGT\t1".into(), 422, Some(Source::Line(5)), "CHROM"),
        ("NC_005816.1\t99999\t.\tA\tG\t.\t.\t.\tGT\t1".into(), 422, Some(Source::Line(5)), "POS"),
        (format!("NC_005816.1\t6664\t.\t{b}\t<DEL>\t.\t.\t.\tGT\t1"), 400, Some(Source::Line(5)), "ALT"),
        (format!("NC_005816.1\t6664\t.\t{b}\tX\t.\t.\t.\tGT\t1"), 400, Some(Source::Line(5)), "ALT"),
        (format!("NC_005816.1\t6664\t.\t{b}\t{b}\t.\t.\t.\tGT\t1"), 400, Some(Source::Line(5)), "ALT"),
        ("NC_005816.1\tabc\t.\tA\tG\t.\t.\t.\tGT\t1".into(), 400, Some(Source::Line(5)), "POS"),
        ("NC_005816.1;rm -rf\t5\t.\tA\tG\t.\t.\t.\tGT\t1".into(), 400, Some(Source::Line(5)), "CHROM"),
    ];
    for (rec, status, at, field) in cases {
        let e: InputError = parse_vcf(&vcf(std::slice::from_ref(&rec)), g).unwrap_err();
        assert_eq!((e.status, e.at, e.field), (status, at, field), "{rec}: {e}");
        if field == "REF" {
            assert!(!e.why.contains(b), "the reference base leaks: {e}");
        }
    }
    // Header problems.
    for (body, field) in [
        (b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n".to_vec(), "header"),
        (b"##fileformat=VCFv3.3\n".to_vec(), "header"),
        (b"##fileformat=VCFv4.2\nNC_005816.1\t5\t.\tA\tG\t.\t.\t.\n".to_vec(), "header"),
        (b"".to_vec(), "header"),
    ] {
        let e = parse_vcf(&body, g).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
    let e = parse_vcf(b"##fileformat=VCFv4.2\n\xff\n", g).unwrap_err();
    assert_eq!((e.field, e.at), ("body", Some(Source::Line(2))), "{e}");
    let mut blank = vcf(&[format!("NC_005816.1\t6664\t.\t{b}\tG\t.\t.\t.\tGT\t1")]);
    blank.extend_from_slice(b"\nNC_005816.1\t6664\t.\tA\tG\t.\t.\t.\tGT\t1\n");
    assert_eq!(parse_vcf(&blank, g).unwrap_err().why, "is blank");
}

#[test]
fn bounds_refuse_before_parsing() {
    let Some(g) = genome() else { return };
    let b = base(g, 10);
    let rec = format!("NC_005816.1\t10\t.\t{b}\t{}\t.\t.\t.\tGT\t1", other(b));
    let many: Vec<String> = (0..=MAX_RECORDS).map(|_| rec.clone()).collect();
    assert_eq!(parse_vcf(&vcf(&many), g).unwrap_err().status, 413);
    let long = format!("NC_005816.1\t10\t.\t{b}\t{}\t.\t.\t.\tGT\t{}", other(b), "1".repeat(70_000));
    assert_eq!(parse_vcf(&vcf(&[long]), g).unwrap_err().status, 413);
}

#[test]
fn single_variants_in_colon_and_hgvs_forms() {
    let Some(g) = genome() else { return };
    let b = base(g, 6664);
    let a = other(b);
    let v = parse_variant(&format!("NC_005816.1:6664:{b}:{a}"), g, 0).unwrap();
    assert_eq!(
        (v.pos, v.reference.as_str(), v.alternate.as_str()),
        (6664, b.to_string().as_str(), a.to_string().as_str())
    );
    let h = parse_variant(&format!("NC_005816.1:g.6664{b}>{a}"), g, 0).unwrap();
    assert_eq!(h, v);
    // Deletion of 6665..6666: anchored on 6664.
    let d = parse_variant("NC_005816.1:g.6665_6666del", g, 0).unwrap();
    let seq = std::str::from_utf8(g.sequence("NC_005816.1", 6663, 6666).unwrap()).unwrap();
    assert_eq!((d.pos, d.reference.as_str(), d.alternate.as_str()), (6664, seq, &seq[..1]));
    let i = parse_variant("NC_005816.1:g.6664_6665insTTT", g, 0).unwrap();
    assert_eq!((i.pos, i.alternate.len()), (6664, 4));
    let dup = parse_variant("NC_005816.1:g.6665dup", g, 0).unwrap();
    assert_eq!((dup.pos, dup.alternate.len()), (6665, 2));
    let di = parse_variant("NC_005816.1:g.6664_6665delinsA", g, 0).unwrap();
    assert_eq!((di.reference.len(), di.alternate.as_str()), (2, "A"));
    for (bad, field) in [
        ("NC_005816.1:6664", "variant"),
        ("NC_005816.1:g.6664_6670insA", "variant"),
        ("NC_005816.1:g.0A>G", "position"),
        ("NC_005816.1:g.6664A>GG", "variant"),
        ("NC_005816.1:c.12A>G", "variant"),
        ("nope:g.5A>G", "contig"),
        ("NC_005816.1:g.99999del", "variant"),
        ("' OR 1=1 --", "variant"),
    ] {
        let e = parse_variant(bad, g, 7).unwrap_err();
        assert_eq!((e.field, e.at), (field, Some(Source::Item(7))), "{bad}: {e}");
    }
    let e = parse_variant(&format!("NC_005816.1:g.6664{a}>{b}"), g, 0).unwrap_err();
    assert_eq!((e.status, e.field), (422, "REF"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn arbitrary_input_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), s in ".{0,80}") {
        if let Some(g) = genome() {
            let mut with_head = HEAD.as_bytes().to_vec();
            with_head.extend_from_slice(&body);
            let _ = parse_vcf(&with_head, g);
            let _ = parse_vcf(&body, g);
            let _ = parse_variant(&s, g, 0);
            let _ = parse_variant(&format!("NC_005816.1:g.{s}"), g, 0);
        }
    }
}
