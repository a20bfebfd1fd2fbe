//! Consequences on real genomes from Debian's `python-biopython-doc`:
//! Yersinia pestis plasmid pPCP1 (both strands, GenBank and GFF3+FASTA),
//! phiX174 (genes inside genes, in other frames, and genes across the
//! origin) and the Arabidopsis chloroplast (spliced and trans-spliced CDS).
//! Positions were worked out by hand from the GenBank feature tables.

use std::path::{Path, PathBuf};

use seqshield_annotate::consequence::{annotate, Consequence, Effect, Variant};
use seqshield_annotate::genome::{Genome, SkipReason};

const TESTS: &str = "/usr/share/doc/python-biopython-doc/Tests";

/// The genome, or `None` (test skipped; a failure under `CI`) when the
/// Debian test data is not installed.
fn load(rel: &str) -> Option<Genome> {
    let p = PathBuf::from(TESTS).join(rel);
    if !p.exists() {
        assert!(std::env::var_os("CI").is_none(), "{} missing in CI", p.display());
        eprintln!("skipping: {} not installed (python-biopython-doc)", p.display());
        return None;
    }
    Some(Genome::from_genbank_path(&p).unwrap())
}

fn comp(b: u8) -> char {
    match b {
        b'A' => 'T',
        b'C' => 'G',
        b'G' => 'C',
        _ => 'A',
    }
}

/// An SNV to a base other than the reference at 1-based `pos`.
fn snv(g: &Genome, contig: &str, pos: u64) -> (Variant, u8, u8) {
    let r = g.sequence(contig, pos - 1, pos).unwrap()[0];
    let a = if r == b'A' { b'G' } else { b'A' };
    let v =
        Variant { contig: contig.into(), pos, reference: (r as char).to_string(), alternate: (a as char).to_string() };
    (v, r, a)
}

fn by<'a>(effects: &'a [Effect], key: &str) -> &'a Effect {
    effects
        .iter()
        .find(|e| {
            e.locus_tag.as_deref() == Some(key)
                || e.protein_id.as_deref() == Some(key)
                || e.gene.as_deref() == Some(key)
        })
        .unwrap_or_else(|| panic!("no effect on {key}: {effects:#?}"))
}

#[test]
fn genomes_load_with_names_lengths_and_gene_counts() {
    let (Some(pp), Some(phix), Some(chl)) =
        (load("GenBank/NC_005816.gb.gz"), load("GFF/NC_001422.gbk.gz"), load("GenBank/NC_000932.gb.gz"))
    else {
        return;
    };
    assert_eq!(pp.contigs().collect::<Vec<_>>(), vec![("NC_005816.1", 9609)]);
    assert_eq!(pp.contig_len("NC_005816"), Some(9609));
    assert_eq!(pp.genes(), 10);
    assert_eq!(phix.contig_len("NC_001422"), Some(5386));
    assert_eq!(phix.genes(), 11);
    assert_eq!(chl.contig_len("NC_000932.1"), Some(154_478));
    // rps12's second CDS joins parts on both strands: skipped, with reason.
    assert_eq!(chl.genes(), 84);
    let skipped = chl.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].label, "ArthCp047");
    assert_eq!(skipped[0].reason, SkipReason::MixedStrand);
    assert_eq!(chl.is_circular("NC_000932"), Some(true));
}

#[test]
fn pla_plus_strand_and_pst_minus_strand_in_ppcp1() {
    let Some(g) = load("GenBank/NC_005816.gb.gz") else { return };
    let c = "NC_005816.1";
    // pla: 6664..7602 (+), table 11. c.4 is 6667 (codon 2).
    let (v, r, a) = snv(&g, c, 6667);
    let all = annotate(&g, &v).unwrap();
    let pla = by(&all, "pla");
    assert_eq!(pla.strand, '+');
    assert_eq!(pla.cds_pos, Some(4));
    assert_eq!(pla.hgvs_c.as_deref(), Some(format!("c.4{}>{}", r as char, a as char).as_str()));
    assert!(pla.hgvs_p.as_deref().unwrap().contains('2'), "{pla:?}");
    assert!(!all.iter().any(|e| e.consequence == Consequence::IntergenicVariant));
    // pla starts ATG; ATG>GTG keeps a table-11 start.
    assert_eq!(g.sequence(c, 6663, 6666), Some(&b"ATG"[..]));
    let v = Variant { contig: c.into(), pos: 6664, reference: "A".into(), alternate: "G".into() };
    let e = annotate(&g, &v).unwrap();
    assert_eq!(by(&e, "pla").consequence, Consequence::StartRetainedVariant);
    assert_eq!(by(&e, "pla").hgvs_p.as_deref(), Some("p.Met1?"));

    // pst: complement(4815..5888). c.1 is 5888, read as its complement.
    let (v, r, a) = snv(&g, c, 5888);
    let pst = annotate(&g, &v).unwrap();
    let pst = by(&pst, "pst");
    assert_eq!(pst.strand, '-');
    assert_eq!(pst.hgvs_c.as_deref(), Some(format!("c.1{}>{}", comp(r), comp(a)).as_str()));
    assert!(matches!(pst.consequence, Consequence::StartLost | Consequence::StartRetainedVariant));
    // The last base, 4815, is c.1074, in the stop codon.
    let (v, _, _) = snv(&g, c, 4815);
    let last = annotate(&g, &v).unwrap();
    let last = by(&last, "pst");
    assert_eq!(last.cds_pos, Some(1074));
    assert!(matches!(last.consequence, Consequence::StopLost | Consequence::StopRetainedVariant));
}

#[test]
fn intergenic_with_upstream_and_downstream_in_ppcp1() {
    let Some(g) = load("GenBank/NC_005816.gb.gz") else { return };
    let (v, _, _) = snv(&g, "NC_005816", 2500);
    let all = annotate(&g, &v).unwrap();
    let rop = by(&all, "rop");
    assert_eq!(rop.consequence, Consequence::UpstreamGeneVariant);
    assert_eq!(rop.distance, Some(2925 - 2500));
    let up = by(&all, "YP_pPCP02");
    assert_eq!(up.consequence, Consequence::DownstreamGeneVariant);
    assert_eq!(up.distance, Some(2500 - 1888));
    assert!(all.iter().any(|e| e.consequence == Consequence::IntergenicVariant));
}

#[test]
fn phix174_overlapping_genes_each_get_an_effect() {
    let Some(g) = load("GFF/NC_001422.gbk.gz") else { return };
    let c = "NC_001422.1";
    // 600 lies in D (390..848) and in E (568..843), another frame.
    let (v, _, _) = snv(&g, c, 600);
    let all = annotate(&g, &v).unwrap();
    let d = by(&all, "NP_040708.1");
    let e = by(&all, "NP_040709.1");
    assert_eq!(d.cds_pos, Some(211));
    assert_eq!(e.cds_pos, Some(33));
    assert!(d.hgvs_p.as_deref().unwrap().contains("71"), "{d:?}");
    assert!(e.hgvs_p.as_deref().unwrap().contains("11"), "{e:?}");
    // 100 lies in A and A* across the origin (join(3981..5386,1..136)),
    // and in K (51..221); C starts at 133.
    let (v, _, _) = snv(&g, c, 100);
    let all = annotate(&g, &v).unwrap();
    assert_eq!(by(&all, "NP_040703.1").cds_pos, Some(1406 + 100));
    assert_eq!(by(&all, "NP_040704.1").cds_pos, Some(890 + 100));
    assert_eq!(by(&all, "NP_040706.1").cds_pos, Some(50));
    // B (join(5075..5386,1..51)) wraps the origin: in linear coordinates
    // its extent is the whole genome, so no upstream/downstream effect is
    // reported for it (a known limitation for origin-spanning genes).
    assert!(!all.iter().any(|e| e.protein_id.as_deref() == Some("NP_040705.1")));
    let cc = by(&all, "NP_040707.1");
    assert_eq!((cc.consequence, cc.distance), (Consequence::UpstreamGeneVariant, Some(33)));
}

#[test]
fn chloroplast_clpp_is_spliced_across_two_introns() {
    let Some(g) = load("GenBank/NC_000932.gb.gz") else { return };
    let c = "NC_000932";
    // clpP: complement(join(69910..70137,70653..70944,71812..71882)).
    // Exon 1 is 71882..71812 (c.1-71), exon 2 70944..70653 (c.72-363).
    let at = |pos| {
        let (v, r, a) = snv(&g, c, pos);
        let all = annotate(&g, &v).unwrap();
        (by(&all, "clpP").clone(), comp(r), comp(a))
    };
    let (e, r, a) = at(71811);
    assert_eq!(e.consequence, Consequence::SpliceDonorVariant);
    assert_eq!(e.hgvs_c, Some(format!("c.71+1{r}>{a}")));
    let (e, r, a) = at(70945);
    assert_eq!(e.consequence, Consequence::SpliceAcceptorVariant);
    assert_eq!(e.hgvs_c, Some(format!("c.72-1{r}>{a}")));
    let (e, _, _) = at(71200);
    assert_eq!(e.consequence, Consequence::IntronVariant);
    let (e, r, a) = at(70944);
    assert_eq!(e.cds_pos, Some(72));
    assert_eq!(e.hgvs_c, Some(format!("c.72{r}>{a}")));
    assert!(e.hgvs_p.as_deref().unwrap().contains("24"), "{e:?}");
}

#[test]
fn gff3_with_fasta_gives_the_same_effects_as_genbank() {
    let fna = Path::new(TESTS).join("GenBank/NC_005816.fna.gz");
    let Some(gb) = load("GenBank/NC_005816.gb.gz") else { return };
    let gff = "##gff-version 3\n\
NC_005816.1\tRefSeq\tgene\t6664\t7602\t.\t+\t.\tID=gene-pla;Name=pla;locus_tag=YP_pPCP08\n\
NC_005816.1\tRefSeq\tCDS\t6664\t7602\t.\t+\t0\tID=cds-pla;Parent=gene-pla;transl_table=11\n\
NC_005816.1\tRefSeq\tCDS\t4815\t5888\t.\t-\t0\tID=cds-pst;gene=pst;locus_tag=YP_pPCP06;transl_table=11\n";
    let g = Genome::from_gff3_fasta(gff.as_bytes(), std::fs::File::open(fna).unwrap()).unwrap();
    assert_eq!(g.genes(), 2);
    assert_eq!(g.contig_len("NC_005816"), Some(9609));
    for pos in [6664, 6667, 7000, 7600, 4815, 5000, 5888] {
        let (v, _, _) = snv(&gb, "NC_005816.1", pos);
        let key = if pos > 6000 { "pla" } else { "pst" };
        let (a, b) = (annotate(&gb, &v).unwrap(), annotate(&g, &v).unwrap());
        let (a, b) = (by(&a, key), by(&b, key));
        assert_eq!((a.consequence, &a.hgvs_c, &a.hgvs_p), (b.consequence, &b.hgvs_c, &b.hgvs_p), "{pos}");
    }
}
