//! The consequence of a variant on each gene near it: coding effect with
//! codon, amino-acid and HGVS c./p. changes, splice and intron effects,
//! upstream/downstream within [`UPSTREAM_WINDOW`] and intergenic.
//!
//! Conventions follow SnpEff (the outside judge, `tests/snpeff.rs`):
//!
//! - one [`Effect`] per CDS that the variant touches or lies within
//!   [`UPSTREAM_WINDOW`] bases of (upstream or downstream), both strands,
//!   overlapping genes each on their own; plus one
//!   [`Consequence::IntergenicVariant`] effect (no gene) when the variant
//!   touches no gene body (exons and the introns between them);
//! - a change of the first codon to another start codon of the CDS's
//!   genetic code is [`Consequence::StartRetainedVariant`] (SnpEff's
//!   `initiator_codon_variant`), to a non-start codon
//!   [`Consequence::StartLost`]; both read `p.Met1?`;
//! - the first two and last two intron bases are splice donor / acceptor;
//! - HGVS positions count from the A of the start codon (`c.1`) on the
//!   gene's strand; indels are shifted 3' on the coding strand; the
//!   synonymous form is `p.Leu5=` (SnpEff writes `p.Leu5Leu`).
//!
//! Input alleles may be VCF-anchored (`A`→`AT`) or not (`-`-free minimal
//! forms like REF `T`, ALT `TT`); common leading and trailing bases are
//! trimmed first.

mod coding;
mod hgvs;

use serde::Serialize;

use crate::genome::codon::revcomp;
use crate::genome::{Cds, Genome, Place, Strand};
use coding::{coding_effect, CodingChange};

/// How far from a gene (bases) a variant is reported upstream or
/// downstream of it; SnpEff's default (`-upDownStreamLen 5000`).
pub const UPSTREAM_WINDOW: u64 = 5_000;
/// Longest REF or ALT allele accepted.
pub const MAX_ALLELE_LEN: usize = 10_000;
/// Intron bases at each end that count as splice donor / acceptor.
pub const SPLICE_SITE_LEN: u64 = 2;

/// A variant in VCF terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Variant {
    /// Contig name (any name the genome answers to).
    pub contig: String,
    /// 1-based position of the first REF base.
    pub pos: u64,
    /// Reference allele (must match the genome, case-insensitive).
    pub reference: String,
    /// Alternate allele.
    pub alternate: String,
}

/// Sequence Ontology consequence terms.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Consequence {
    /// A codon changed to one for the same amino acid.
    SynonymousVariant,
    /// A codon changed to one for another amino acid.
    MissenseVariant,
    /// A codon changed to a stop codon.
    StopGained,
    /// The stop codon changed to an amino-acid codon.
    StopLost,
    /// The stop codon changed to another stop codon.
    StopRetainedVariant,
    /// The start codon changed to a codon that cannot start.
    StartLost,
    /// The start codon changed to another start codon of the genetic code
    /// (SnpEff: `initiator_codon_variant`).
    StartRetainedVariant,
    /// An indel whose length is not a multiple of three.
    FrameshiftVariant,
    /// An in-frame insertion.
    InframeInsertion,
    /// An in-frame deletion.
    InframeDeletion,
    /// A change in the CDS whose protein effect is not worked out (a
    /// partial first codon, an indel across an exon edge).
    CodingSequenceVariant,
    /// Within the first [`SPLICE_SITE_LEN`] bases of an intron.
    SpliceDonorVariant,
    /// Within the last [`SPLICE_SITE_LEN`] bases of an intron.
    SpliceAcceptorVariant,
    /// In an intron.
    IntronVariant,
    /// Within [`UPSTREAM_WINDOW`] bases 5' of a gene.
    UpstreamGeneVariant,
    /// Within [`UPSTREAM_WINDOW`] bases 3' of a gene.
    DownstreamGeneVariant,
    /// In a gene that has no CDS (a tRNA or rRNA gene), as SnpEff reports it.
    IntragenicVariant,
    /// Outside every gene body (SnpEff: `intergenic_region`).
    IntergenicVariant,
}

impl Consequence {
    /// The Sequence Ontology term, e.g. `"missense_variant"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Consequence::SynonymousVariant => "synonymous_variant",
            Consequence::MissenseVariant => "missense_variant",
            Consequence::StopGained => "stop_gained",
            Consequence::StopLost => "stop_lost",
            Consequence::StopRetainedVariant => "stop_retained_variant",
            Consequence::StartLost => "start_lost",
            Consequence::StartRetainedVariant => "start_retained_variant",
            Consequence::FrameshiftVariant => "frameshift_variant",
            Consequence::InframeInsertion => "inframe_insertion",
            Consequence::InframeDeletion => "inframe_deletion",
            Consequence::CodingSequenceVariant => "coding_sequence_variant",
            Consequence::SpliceDonorVariant => "splice_donor_variant",
            Consequence::SpliceAcceptorVariant => "splice_acceptor_variant",
            Consequence::IntronVariant => "intron_variant",
            Consequence::UpstreamGeneVariant => "upstream_gene_variant",
            Consequence::DownstreamGeneVariant => "downstream_gene_variant",
            Consequence::IntragenicVariant => "intragenic_variant",
            Consequence::IntergenicVariant => "intergenic_variant",
        }
    }
}

impl std::fmt::Display for Consequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effect of a variant on one gene (or on none, for intergenic).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Gene name (`/gene`).
    pub gene: Option<String>,
    /// Locus tag (`/locus_tag`).
    pub locus_tag: Option<String>,
    /// Product (`/product`).
    pub product: Option<String>,
    /// Protein id (`/protein_id`).
    pub protein_id: Option<String>,
    /// The gene's strand, `'+'` or `'-'` (`'.'` for intergenic).
    pub strand: char,
    /// The consequence.
    pub consequence: Consequence,
    /// 1-based CDS position of the first changed base (coding effects).
    pub cds_pos: Option<u64>,
    /// Codons before/after, changed bases in capitals: `gCt/gTt`.
    pub codon_change: Option<String>,
    /// One-letter amino-acid change: `A123V`, `Q12*`, `L5L`.
    pub aa_change: Option<String>,
    /// HGVS c. (`c.123A>G`, `c.123_124del`, `c.-37A>G`).
    pub hgvs_c: Option<String>,
    /// HGVS p. (`p.Ala41Val`, `p.Gln12*`, `p.Met1?`, `p.Lys3fs`).
    pub hgvs_p: Option<String>,
    /// Distance to the gene for upstream/downstream effects.
    pub distance: Option<u64>,
}

/// Why a variant could not be annotated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsequenceError {
    /// The genome has no contig of that name.
    #[error("contig {0:?} is not in the genome")]
    UnknownContig(String),
    /// The variant does not fit in its contig.
    #[error("{contig}:{pos} with a {len}-base REF does not fit in the contig ({contig_len} bases)")]
    OutOfRange {
        /// The contig.
        contig: String,
        /// The 1-based position.
        pos: u64,
        /// REF length.
        len: usize,
        /// Contig length.
        contig_len: u64,
    },
    /// An allele is empty or holds something other than A, C, G, T, N
    /// (symbolic and breakend alleles are not annotated).
    #[error("{which} allele {allele:?} is not a plain nucleotide sequence")]
    BadAllele {
        /// `"REF"` or `"ALT"`.
        which: &'static str,
        /// The allele (cut to 40 characters).
        allele: String,
    },
    /// An allele is longer than [`MAX_ALLELE_LEN`].
    #[error("{which} allele longer than {limit} bases")]
    AlleleTooLong {
        /// `"REF"` or `"ALT"`.
        which: &'static str,
        /// The limit.
        limit: usize,
    },
    /// REF differs from the genome.
    #[error("REF {given:?} at {contig}:{pos} does not match the genome ({genome:?})")]
    RefMismatch {
        /// The contig.
        contig: String,
        /// The 1-based position.
        pos: u64,
        /// REF as given (cut to 40 characters).
        given: String,
        /// The genome's bases there (cut to 40 characters).
        genome: String,
    },
    /// REF and ALT are the same.
    #[error("REF and ALT are the same at {contig}:{pos}")]
    NoChange {
        /// The contig.
        contig: String,
        /// The 1-based position.
        pos: u64,
    },
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

fn check_allele(a: &str, which: &'static str) -> Result<Vec<u8>, ConsequenceError> {
    if a.len() > MAX_ALLELE_LEN {
        return Err(ConsequenceError::AlleleTooLong { which, limit: MAX_ALLELE_LEN });
    }
    let up = a.to_ascii_uppercase().into_bytes();
    if up.is_empty() || !up.iter().all(|b| b"ACGTN".contains(b)) {
        return Err(ConsequenceError::BadAllele { which, allele: cut(a) });
    }
    Ok(up)
}

/// A variant trimmed to its minimal form: `del` bases from 0-based
/// `start` replaced by `ins` (an insertion goes before `start`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Minimal {
    start: u64,
    del: Vec<u8>,
    ins: Vec<u8>,
}

impl Minimal {
    /// First and last (inclusive) contig base the variant touches; for an
    /// insertion, the base before it.
    fn span(&self) -> (u64, u64) {
        if self.del.is_empty() {
            let left = self.start.saturating_sub(1);
            (left, left)
        } else {
            (self.start, self.start + self.del.len() as u64 - 1)
        }
    }
}

fn minimal(pos0: u64, r: &[u8], a: &[u8]) -> Minimal {
    let suf = r.iter().rev().zip(a.iter().rev()).take_while(|(x, y)| x == y).count().min(r.len().min(a.len()));
    let (r, a) = (&r[..r.len() - suf], &a[..a.len() - suf]);
    let pre = r.iter().zip(a).take_while(|(x, y)| x == y).count();
    Minimal { start: pos0 + pre as u64, del: r[pre..].to_vec(), ins: a[pre..].to_vec() }
}

/// The effects of `v` on the genes of `genome`: one per CDS touched or
/// within [`UPSTREAM_WINDOW`], plus an intergenic effect when no gene body
/// is touched. Errors only when `v` does not fit the genome.
pub fn annotate(genome: &Genome, v: &Variant) -> Result<Vec<Effect>, ConsequenceError> {
    let contig = genome.contig(&v.contig).ok_or_else(|| ConsequenceError::UnknownContig(cut(&v.contig)))?;
    let r = check_allele(&v.reference, "REF")?;
    let a = check_allele(&v.alternate, "ALT")?;
    let contig_len = contig.seq.len() as u64;
    let pos0 = v.pos.checked_sub(1);
    let fits = pos0.and_then(|p| p.checked_add(r.len() as u64)).is_some_and(|e| e <= contig_len);
    let (Some(pos0), true) = (pos0, fits) else {
        return Err(ConsequenceError::OutOfRange { contig: contig.name.clone(), pos: v.pos, len: r.len(), contig_len });
    };
    let here = &contig.seq[pos0 as usize..pos0 as usize + r.len()];
    if here != r.as_slice() {
        return Err(ConsequenceError::RefMismatch {
            contig: contig.name.clone(),
            pos: v.pos,
            given: cut(&v.reference),
            genome: cut(&String::from_utf8_lossy(here)),
        });
    }
    let m = minimal(pos0, &r, &a);
    if m.del.is_empty() && m.ins.is_empty() {
        return Err(ConsequenceError::NoChange { contig: contig.name.clone(), pos: v.pos });
    }
    let (lo, hi) = m.span();
    let mut effects = Vec::new();
    let mut in_gene = false;
    for cds in contig.cds_near(lo, hi + 1, UPSTREAM_WINDOW) {
        if let Some((e, body)) = effect_on(cds, &m) {
            in_gene |= body;
            effects.push(e);
        }
    }
    for gene in contig.noncoding.iter().filter(|n| n.lo <= hi && lo < n.hi) {
        in_gene = true;
        effects.push(Effect {
            gene: gene.names.gene.clone(),
            locus_tag: gene.names.locus_tag.clone(),
            product: None,
            protein_id: None,
            strand: gene.strand.as_char(),
            consequence: Consequence::IntragenicVariant,
            cds_pos: None,
            codon_change: None,
            aa_change: None,
            hgvs_c: None,
            hgvs_p: None,
            distance: None,
        });
    }
    if !in_gene {
        effects.push(Effect {
            gene: None,
            locus_tag: None,
            product: None,
            protein_id: None,
            strand: '.',
            consequence: Consequence::IntergenicVariant,
            cds_pos: None,
            codon_change: None,
            aa_change: None,
            hgvs_c: None,
            hgvs_p: None,
            distance: None,
        });
    }
    Ok(effects)
}

fn blank(cds: &Cds, consequence: Consequence) -> Effect {
    Effect {
        gene: cds.names.gene.clone(),
        locus_tag: cds.names.locus_tag.clone(),
        product: cds.names.product.clone(),
        protein_id: cds.names.protein_id.clone(),
        strand: cds.strand.as_char(),
        consequence,
        cds_pos: None,
        codon_change: None,
        aa_change: None,
        hgvs_c: None,
        hgvs_p: None,
        distance: None,
    }
}

/// Alleles on the gene's coding strand.
fn stranded(cds: &Cds, seq: &[u8]) -> Vec<u8> {
    match cds.strand {
        Strand::Plus => seq.to_vec(),
        Strand::Minus => revcomp(seq),
    }
}

/// The effect on one CDS, and whether the variant touches its body.
fn effect_on(cds: &Cds, m: &Minimal) -> Option<(Effect, bool)> {
    let (lo, hi) = m.span();
    let places: Vec<Place> = if m.del.is_empty() {
        vec![cds.place(m.start.saturating_sub(1)), cds.place(m.start)]
    } else {
        (lo..=hi).map(|g| cds.place(g)).collect()
    };
    let exon: Vec<u64> = places
        .iter()
        .filter_map(|p| match p {
            Place::Exon(i) => Some(*i),
            _ => None,
        })
        .collect();
    let snv = m.del.len() == 1 && m.ins.len() == 1;

    // An insertion next to a CDS end (one flank outside) is outside it.
    let outside_flank = m.del.is_empty() && places.contains(&Place::Outside);

    // Wholly inside exons, contiguous on the CDS: a coding change.
    if exon.len() == places.len() && contiguous(&exon) {
        let first = *exon.iter().min()? as usize;
        let change = if m.del.is_empty() {
            CodingChange { start: first + 1, ref_len: 0, alt: stranded(cds, &m.ins) }
        } else {
            CodingChange { start: first, ref_len: m.del.len(), alt: stranded(cds, &m.ins) }
        };
        let c = coding_effect(cds, &change);
        let mut e = blank(cds, c.consequence);
        e.cds_pos = Some(change.start as u64 + 1);
        e.codon_change = c.codon_change;
        e.aa_change = c.aa_change;
        e.hgvs_c = Some(c.hgvs_c);
        e.hgvs_p = c.hgvs_p;
        return Some((e, true));
    }

    // Partly in the CDS: start or stop codon, else an exon edge.
    if !exon.is_empty() && !outside_flank {
        let last_codon = cds.len().saturating_sub(3);
        let consequence = if exon.iter().any(|&i| i < cds.phase + 3) {
            Consequence::StartLost
        } else if exon.iter().any(|&i| i >= last_codon) {
            Consequence::StopLost
        } else {
            splice_kind(&places).unwrap_or(Consequence::CodingSequenceVariant)
        };
        return Some((blank(cds, consequence), true));
    }

    // In an intron.
    if let Some(kind) = splice_kind(&places) {
        let mut e = blank(cds, kind);
        if let (true, Some(Place::Intron { prev_exon_last, after_prev, before_next })) = (snv, places.first()) {
            let pos = if after_prev <= before_next {
                format!("{}+{}", prev_exon_last + 1, after_prev)
            } else {
                format!("{}-{}", prev_exon_last + 2, before_next)
            };
            let (r, a) = (stranded(cds, &m.del), stranded(cds, &m.ins));
            e.hgvs_c = Some(hgvs::noncoding_snv(&pos, r[0], a[0]));
        }
        return Some((e, true));
    }

    // Outside: upstream or downstream, unless inside the gene's extent
    // (the gap between trans-spliced parts).
    if hi >= cds.lo && lo < cds.hi {
        return None;
    }
    // Distances are to the gene's extent, as SnpEff measures them; for a
    // trans-spliced or origin-wrapping CDS that is not c.1 or the stop.
    let (kind, distance, sign) = match cds.strand {
        Strand::Plus if hi < cds.lo => (Consequence::UpstreamGeneVariant, cds.lo - hi, "-"),
        Strand::Plus => (Consequence::DownstreamGeneVariant, lo - (cds.hi - 1), "*"),
        Strand::Minus if lo >= cds.hi => (Consequence::UpstreamGeneVariant, lo - (cds.hi - 1), "-"),
        Strand::Minus => (Consequence::DownstreamGeneVariant, cds.lo - hi, "*"),
    };
    if distance > UPSTREAM_WINDOW {
        return None;
    }
    let mut e = blank(cds, kind);
    e.distance = Some(distance);
    if snv && !cds.is_discontinuous() {
        let (r, a) = (stranded(cds, &m.del), stranded(cds, &m.ins));
        e.hgvs_c = Some(hgvs::noncoding_snv(&format!("{sign}{distance}"), r[0], a[0]));
    }
    Some((e, false))
}

/// Whether CDS indexes form one run (in either direction).
fn contiguous(idx: &[u64]) -> bool {
    idx.windows(2).all(|w| w[1] == w[0] + 1) || idx.windows(2).all(|w| w[0] == w[1] + 1)
}

/// Splice donor/acceptor or intron, from the intronic places touched.
fn splice_kind(places: &[Place]) -> Option<Consequence> {
    let mut kind = None;
    for p in places {
        if let Place::Intron { after_prev, before_next, .. } = *p {
            let k = if after_prev <= SPLICE_SITE_LEN {
                Consequence::SpliceDonorVariant
            } else if before_next <= SPLICE_SITE_LEN {
                Consequence::SpliceAcceptorVariant
            } else {
                Consequence::IntronVariant
            };
            kind = match (kind, k) {
                (Some(Consequence::SpliceDonorVariant | Consequence::SpliceAcceptorVariant), _) => kind,
                _ => Some(k),
            };
        }
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GenBank record around `seq` with the given feature lines.
    fn genbank(seq: &[u8], features: &str) -> Genome {
        let mut origin = String::new();
        for (i, line) in seq.chunks(60).enumerate() {
            origin.push_str(&format!("{:>9}", i * 60 + 1));
            for chunk in line.chunks(10) {
                origin.push(' ');
                origin.push_str(&String::from_utf8_lossy(chunk).to_ascii_lowercase());
            }
            origin.push('\n');
        }
        let text = format!(
            "LOCUS       SYN                     {} bp    DNA     linear   BCT 01-JAN-2000\n\
ACCESSION   SYN\nVERSION     SYN.1\nFEATURES             Location/Qualifiers\n{features}ORIGIN\n{origin}//\n",
            seq.len()
        );
        Genome::from_genbank(text.as_bytes()).unwrap()
    }

    /// A CDS feature block.
    fn feature(location: &str, qualifiers: &[(&str, &str)]) -> String {
        let mut f = format!("     CDS             {location}\n");
        for (k, v) in qualifiers {
            f.push_str(&format!("                     /{k}=\"{v}\"\n"));
        }
        f
    }

    /// P: plus, table 11, 101..118; M: minus, table 1, 201..212;
    /// J: plus, join(301..306,321..332) with a GT..AG intron.
    fn toy() -> Genome {
        let mut s = vec![b'C'; 6000];
        s[100..118].copy_from_slice(b"ATGAAAGCTTGGCAATAA");
        s[200..212].copy_from_slice(b"TCATTTAGCCAT");
        s[300..306].copy_from_slice(b"ATGAAA");
        s[306..320].copy_from_slice(b"GTAAGTCCCCCCAG");
        s[320..332].copy_from_slice(b"GCTTGGCAATAA");
        let f = [
            feature("101..118", &[("gene", "P"), ("transl_table", "11")]),
            feature("complement(201..212)", &[("gene", "M")]),
            feature("join(301..306,321..332)", &[("gene", "J")]),
        ]
        .concat();
        genbank(&s, &f)
    }

    fn ann(g: &Genome, pos: u64, r: &str, a: &str) -> Vec<Effect> {
        let v = Variant { contig: "SYN".into(), pos, reference: r.into(), alternate: a.into() };
        annotate(g, &v).unwrap()
    }

    fn on<'a>(effects: &'a [Effect], gene: &str) -> &'a Effect {
        effects
            .iter()
            .find(|e| e.gene.as_deref() == Some(gene))
            .unwrap_or_else(|| panic!("no effect on {gene}: {effects:#?}"))
    }

    fn check(g: &Genome, v: (u64, &str, &str), gene: &str, c: Consequence, hgvs: (&str, &str)) {
        let ((pos, r, a), (hc, hp)) = (v, hgvs);
        let all = ann(g, pos, r, a);
        let e = on(&all, gene);
        assert_eq!(e.consequence, c, "{pos} {r}>{a}: {e:#?}");
        assert_eq!(e.hgvs_c.as_deref().unwrap_or(""), hc, "{pos} {r}>{a}");
        assert_eq!(e.hgvs_p.as_deref().unwrap_or(""), hp, "{pos} {r}>{a}");
    }

    #[test]
    fn plus_strand_snvs() {
        use Consequence::*;
        let g = toy();
        check(&g, (107, "G", "A"), "P", MissenseVariant, ("c.7G>A", "p.Ala3Thr"));
        check(&g, (109, "T", "C"), "P", SynonymousVariant, ("c.9T>C", "p.Ala3="));
        check(&g, (111, "G", "A"), "P", StopGained, ("c.11G>A", "p.Trp4*"));
        check(&g, (116, "T", "C"), "P", StopLost, ("c.16T>C", "p.Ter6Glnext*?"));
        check(&g, (117, "A", "G"), "P", StopRetainedVariant, ("c.17A>G", "p.Ter6="));
        check(&g, (102, "T", "C"), "P", StartLost, ("c.2T>C", "p.Met1?"));
        let e = ann(&g, 107, "G", "A");
        let p = on(&e, "P");
        assert_eq!(p.codon_change.as_deref(), Some("Gct/Act"));
        assert_eq!(p.aa_change.as_deref(), Some("A3T"));
        assert_eq!(p.cds_pos, Some(7));
        assert_eq!(p.strand, '+');
    }

    #[test]
    fn table_11_alternative_start_is_retained_but_table_1_start_is_lost() {
        let g = toy();
        // P uses table 11: ATG -> GTG still starts.
        check(&g, (101, "A", "G"), "P", Consequence::StartRetainedVariant, ("c.1A>G", "p.Met1?"));
        // M uses the default table 1: ATG -> GTG (genome 212 T>C) cannot start.
        check(&g, (212, "T", "C"), "M", Consequence::StartLost, ("c.1A>G", "p.Met1?"));
    }

    #[test]
    fn minus_strand_snv_is_reverse_complemented() {
        check(&toy(), (209, "C", "T"), "M", Consequence::MissenseVariant, ("c.4G>A", "p.Ala2Thr"));
    }

    #[test]
    fn indels_frameshift_and_in_frame() {
        use Consequence::*;
        let g = toy();
        check(&g, (104, "AA", "A"), "P", FrameshiftVariant, ("c.6del", "p.Ala3fs"));
        check(&g, (103, "GAAA", "G"), "P", InframeDeletion, ("c.4_6del", "p.Lys2del"));
        check(&g, (106, "A", "AGCT"), "P", InframeInsertion, ("c.7_9dup", "p.Ala3dup"));
        check(&g, (106, "A", "ATAG"), "P", StopGained, ("c.6_7insTAG", "p.Lys2_Ala3insTer"));
        // Not anchored: the same deletion written without the VCF base.
        check(&g, (104, "AAAG", "G"), "P", InframeDeletion, ("c.4_6del", "p.Lys2del"));
    }

    #[test]
    fn spliced_cds_maps_across_the_intron() {
        use Consequence::*;
        let g = toy();
        check(&g, (321, "G", "A"), "J", MissenseVariant, ("c.7G>A", "p.Ala3Thr"));
        check(&g, (307, "G", "A"), "J", SpliceDonorVariant, ("c.6+1G>A", ""));
        check(&g, (320, "G", "A"), "J", SpliceAcceptorVariant, ("c.7-1G>A", ""));
        check(&g, (312, "T", "C"), "J", IntronVariant, ("c.6+6T>C", ""));
    }

    #[test]
    fn upstream_downstream_and_intergenic() {
        let g = toy();
        let e = ann(&g, 50, "C", "T");
        let p = on(&e, "P");
        assert_eq!(p.consequence, Consequence::UpstreamGeneVariant);
        assert_eq!(p.distance, Some(51));
        assert_eq!(p.hgvs_c.as_deref(), Some("c.-51C>T"));
        let m = on(&e, "M");
        assert_eq!(m.consequence, Consequence::DownstreamGeneVariant);
        assert_eq!(m.distance, Some(151));
        assert!(e.iter().any(|x| x.consequence == Consequence::IntergenicVariant));
        let far = ann(&g, 5900, "C", "T");
        assert_eq!(far.len(), 1);
        assert_eq!(far[0].consequence, Consequence::IntergenicVariant);
        assert_eq!(far[0].gene, None);
        // Inside P: no intergenic effect.
        assert!(!ann(&g, 107, "G", "A").iter().any(|x| x.consequence == Consequence::IntergenicVariant));
    }

    #[test]
    fn variants_that_do_not_fit_are_specific_errors() {
        let g = toy();
        let v = |contig: &str, pos, r: &str, a: &str| Variant {
            contig: contig.into(),
            pos,
            reference: r.into(),
            alternate: a.into(),
        };
        use ConsequenceError as E;
        assert!(matches!(annotate(&g, &v("chrZ", 1, "C", "T")), Err(E::UnknownContig(_))));
        assert!(matches!(annotate(&g, &v("SYN", 0, "C", "T")), Err(E::OutOfRange { .. })));
        assert!(matches!(annotate(&g, &v("SYN", 6000, "CC", "T")), Err(E::OutOfRange { .. })));
        assert!(matches!(annotate(&g, &v("SYN", u64::MAX, "C", "T")), Err(E::OutOfRange { .. })));
        assert!(matches!(annotate(&g, &v("SYN", 101, "C", "T")), Err(E::RefMismatch { .. })));
        assert!(matches!(annotate(&g, &v("SYN", 101, "A", "<DEL>")), Err(E::BadAllele { .. })));
        assert!(matches!(annotate(&g, &v("SYN", 101, "A", "a")), Err(E::NoChange { .. })));
        assert_eq!(annotate(&g, &v("SYN.1", 1, "c", "t")).unwrap().len(), 4);
    }
}
