//! A genome annotation with its reference sequence: contigs, and on each the
//! coding sequences (CDS) that consequence prediction needs.
//!
//! Load it from GenBank ([`Genome::from_genbank`], `join()`/`complement()`
//! locations included) or from GFF3 with FASTA ([`Genome::from_gff3_fasta`]).
//! Inputs may be uploaded by anyone, so every size is bounded
//! ([`MAX_INPUT_BYTES`], [`MAX_CONTIGS`], [`MAX_CDS`], [`MAX_SEGMENTS`],
//! [`MAX_LINE_BYTES`]) and a CDS that cannot be used (a mixed-strand
//! trans-spliced join, an unknown genetic code, a location outside its
//! contig) is skipped with a reason ([`Genome::skipped`]) instead of failing
//! the whole load.
//!
//! Contig names: a contig answers to its primary name (GenBank
//! `accession.version`, or the FASTA/GFF3 sequence id), to the accession
//! without its version (`NC_005816` for `NC_005816.1`), to the GenBank LOCUS
//! name, and for NCBI FASTA ids like `gi|45478711|ref|NC_005816.1|` to the
//! accession inside. An alias that two contigs share resolves to neither.
//!
//! A [`Genome`] is immutable once built; share it behind an `Arc`.

mod cds;
pub(crate) mod codon;
mod genbank;
mod gff;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use cds::Strand;
pub(crate) use cds::{Cds, CdsNames, Place, Segment};
use codon::CodonTable;

/// Largest annotation (or FASTA) accepted, after decompression: 64 MiB.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;
/// Most contigs (records or FASTA sequences) in one genome.
pub const MAX_CONTIGS: usize = 10_000;
/// Most CDS features in one genome.
pub const MAX_CDS: usize = 200_000;
/// Most exon segments in one CDS location.
pub const MAX_SEGMENTS: usize = 1_000;
/// Longest line in a GFF3 or FASTA file.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why a genome could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenomeError {
    /// Opening or reading a file failed.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Reading from a stream failed (or a gzip stream was corrupt).
    #[error("cannot read the {what}: {source}")]
    Read {
        /// Which input ("GenBank", "GFF3", "FASTA").
        what: &'static str,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The input is larger than [`MAX_INPUT_BYTES`] (after decompression).
    #[error("the {what} is larger than {limit} bytes")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The GenBank parser rejected a record.
    #[error("GenBank record {record}: {source}")]
    GenBank {
        /// 1-based record number.
        record: usize,
        /// The parser's error.
        #[source]
        source: gb_io::reader::GbParserError,
    },
    /// A GenBank record has no sequence (no ORIGIN section).
    #[error("GenBank record {record} ({name}) has no sequence")]
    NoSequence {
        /// 1-based record number.
        record: usize,
        /// Its name.
        name: String,
    },
    /// A GFF3 or FASTA line is malformed.
    #[error("{what} line {line}: {reason}")]
    Syntax {
        /// Which input.
        what: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A GFF3 feature names a sequence that the FASTA does not have.
    #[error("GFF3 line {line}: sequence {seqid:?} is not in the FASTA")]
    UnknownSeqid {
        /// 1-based line number.
        line: usize,
        /// The sequence id.
        seqid: String,
    },
    /// Two contigs have the same name.
    #[error("contig {0:?} appears twice")]
    DuplicateContig(String),
    /// More than [`MAX_CONTIGS`] contigs.
    #[error("more than {limit} contigs")]
    TooManyContigs {
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_CDS`] CDS features.
    #[error("more than {limit} CDS features")]
    TooManyCds {
        /// The limit.
        limit: usize,
    },
    /// The input has no sequence at all.
    #[error("the {what} holds no sequence")]
    Empty {
        /// Which input.
        what: &'static str,
    },
}

/// Why a CDS feature was left out of a genome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A `join()` whose parts lie on both strands (trans-splicing, e.g.
    /// chloroplast `rps12`); the consequence engine does not model it.
    MixedStrand,
    /// A location kind other than ranges, `join`, `order` and `complement`
    /// (`one-of`, `bond`, a between-bases site, a reference to another entry).
    UnsupportedLocation,
    /// A part of the location lies outside its contig.
    OutOfRange,
    /// More than [`MAX_SEGMENTS`] parts.
    TooManySegments,
    /// A `/transl_table` (GFF3 `transl_table=`) that is not supported
    /// (supported: 1, 2, 4, 11).
    UnknownCodonTable(String),
    /// A `/codon_start` (or GFF3 phase) that is not 1, 2 or 3.
    BadCodonStart(String),
    /// An empty location.
    Empty,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::MixedStrand => f.write_str("join() with parts on both strands (trans-spliced)"),
            SkipReason::UnsupportedLocation => f.write_str("unsupported location kind"),
            SkipReason::OutOfRange => f.write_str("location outside the contig"),
            SkipReason::TooManySegments => write!(f, "more than {MAX_SEGMENTS} location parts"),
            SkipReason::UnknownCodonTable(t) => write!(f, "unsupported genetic code {t:?}"),
            SkipReason::BadCodonStart(c) => write!(f, "codon start {c:?} is not 1, 2 or 3"),
            SkipReason::Empty => f.write_str("empty location"),
        }
    }
}

/// A CDS feature that was left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCds {
    /// The contig.
    pub contig: String,
    /// The feature's locus tag, gene name or protein id.
    pub label: String,
    /// Why.
    pub reason: SkipReason,
    /// Its extent as 0-based half-open `(start, end)`, where known.
    pub span: Option<(u64, u64)>,
}

/// A read-only view of one CDS ([`Genome::cds`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdsSummary<'a> {
    /// Primary name of its contig.
    pub contig: &'a str,
    /// Gene name.
    pub gene: Option<&'a str>,
    /// Locus tag.
    pub locus_tag: Option<&'a str>,
    /// Strand.
    pub strand: Strand,
    /// Exons as 0-based half-open `(start, end)`, in transcript order.
    pub exons: Vec<(u64, u64)>,
    /// NCBI genetic code number.
    pub transl_table: u8,
}

/// One sequence of a genome with its CDS.
#[derive(Debug)]
pub(crate) struct Contig {
    pub(crate) name: String,
    pub(crate) seq: Vec<u8>,
    pub(crate) circular: bool,
    /// Sorted by `lo`.
    pub(crate) cds: Vec<Cds>,
    /// Genes without a CDS (tRNA, rRNA), sorted by `lo`.
    pub(crate) noncoding: Vec<NoncodingGene>,
    /// Largest `hi - lo` of any CDS, to bound lookups.
    max_span: u64,
}

impl Contig {
    /// CDS whose extent comes within `window` bases of `[lo, hi)`.
    pub(crate) fn cds_near(&self, lo: u64, hi: u64, window: u64) -> impl Iterator<Item = &Cds> {
        let min_lo = lo.saturating_sub(window + self.max_span);
        let max_lo = hi.saturating_add(window);
        let first = self.cds.partition_point(|c| c.lo < min_lo);
        self.cds[first..].iter().take_while(move |c| c.lo <= max_lo).filter(move |c| c.hi.saturating_add(window) >= lo)
    }
}

/// A gene with no CDS (a tRNA or rRNA gene): variants in it are
/// `intragenic_variant`, as SnpEff calls them.
#[derive(Debug, Clone)]
pub(crate) struct NoncodingGene {
    pub(crate) names: CdsNames,
    pub(crate) strand: Strand,
    /// Extent, 0-based half-open.
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

/// A contig under construction: its sequence and raw CDS.
#[derive(Debug)]
pub(crate) struct ContigBuilder {
    pub(crate) name: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) seq: Vec<u8>,
    pub(crate) circular: bool,
    pub(crate) cds: Vec<Cds>,
    pub(crate) noncoding: Vec<NoncodingGene>,
}

/// A genome annotation with its reference sequence.
#[derive(Debug)]
pub struct Genome {
    contigs: Vec<Contig>,
    names: HashMap<String, usize>,
    skipped: Vec<SkippedCds>,
    cds_count: usize,
}

impl Genome {
    /// Parses a plain-text GenBank flat file (one or more records). The
    /// caller handles compression (or use [`Genome::from_genbank_path`]).
    pub fn from_genbank<R: Read>(r: R) -> Result<Genome, GenomeError> {
        let data = read_bounded(r, "GenBank")?;
        genbank::parse(&data)
    }

    /// Reads a GenBank file, gzip-compressed or plain (told apart by its
    /// magic bytes).
    pub fn from_genbank_path(p: &Path) -> Result<Genome, GenomeError> {
        let file = std::fs::File::open(p).map_err(|source| GenomeError::File { path: p.to_owned(), source })?;
        let data = read_maybe_gzip(file, "GenBank").map_err(|e| match e {
            GenomeError::Read { source, .. } => GenomeError::File { path: p.to_owned(), source },
            other => other,
        })?;
        genbank::parse(&data)
    }

    /// Parses GFF3 features with the FASTA reference they describe (both
    /// plain text, or gzip told apart by magic bytes). A `##FASTA` section
    /// at the end of the GFF3 is read too.
    pub fn from_gff3_fasta<G: Read, F: Read>(gff: G, fasta: F) -> Result<Genome, GenomeError> {
        let gff = read_maybe_gzip(gff, "GFF3")?;
        let fasta = read_maybe_gzip(fasta, "FASTA")?;
        gff::parse(&gff, &fasta)
    }

    /// Contig names (primary) and lengths, in input order.
    pub fn contigs(&self) -> impl Iterator<Item = (&str, u64)> {
        self.contigs.iter().map(|c| (c.name.as_str(), c.seq.len() as u64))
    }

    /// The length of a contig, by any of its names (see the module docs).
    pub fn contig_len(&self, name: &str) -> Option<u64> {
        self.contig(name).map(|c| c.seq.len() as u64)
    }

    /// The primary name of a contig given any of its names.
    pub fn canonical_name(&self, name: &str) -> Option<&str> {
        self.contig(name).map(|c| c.name.as_str())
    }

    /// Whether a contig is circular (GenBank LOCUS topology; GFF3/FASTA
    /// contigs are taken as linear unless `Is_circular=true`).
    pub fn is_circular(&self, name: &str) -> Option<bool> {
        self.contig(name).map(|c| c.circular)
    }

    /// Reference bases `[start0, end0)` (0-based, half-open) as uppercase
    /// ASCII; `None` for an unknown contig or a range outside it.
    pub fn sequence(&self, contig: &str, start0: u64, end0: u64) -> Option<&[u8]> {
        let c = self.contig(contig)?;
        if start0 > end0 {
            return None;
        }
        c.seq.get(usize::try_from(start0).ok()?..usize::try_from(end0).ok()?)
    }

    /// Number of CDS-bearing genes (CDS features kept), for reports.
    pub fn genes(&self) -> usize {
        self.cds_count
    }

    /// Every CDS kept, contig by contig in input order, for reports and
    /// test planning.
    pub fn cds(&self) -> impl Iterator<Item = CdsSummary<'_>> {
        self.contigs.iter().flat_map(|c| {
            c.cds.iter().map(move |x| CdsSummary {
                contig: &c.name,
                gene: x.names.gene.as_deref(),
                locus_tag: x.names.locus_tag.as_deref(),
                strand: x.strand,
                exons: x.segments.iter().map(|s| (s.start, s.end)).collect(),
                transl_table: x.table.id(),
            })
        })
    }

    /// CDS features left out while loading, with the reason for each.
    pub fn skipped(&self) -> &[SkippedCds] {
        &self.skipped
    }

    pub(crate) fn contig(&self, name: &str) -> Option<&Contig> {
        self.names.get(name).map(|&i| &self.contigs[i])
    }

    /// Assembles a genome: sorts CDS, builds the name table.
    pub(crate) fn assemble(
        builders: Vec<ContigBuilder>,
        skipped: Vec<SkippedCds>,
        what: &'static str,
    ) -> Result<Genome, GenomeError> {
        if builders.is_empty() {
            return Err(GenomeError::Empty { what });
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut ambiguous: Vec<String> = Vec::new();
        for (i, b) in builders.iter().enumerate() {
            if names.insert(b.name.clone(), i).is_some() {
                return Err(GenomeError::DuplicateContig(b.name.clone()));
            }
        }
        for (i, b) in builders.iter().enumerate() {
            let mut aliases: Vec<String> = Vec::new();
            for a in b.aliases.iter().chain(std::iter::once(&b.name)) {
                aliases.push(a.clone());
                if let Some((acc, ver)) = a.rsplit_once('.') {
                    if !acc.is_empty() && !ver.is_empty() && ver.bytes().all(|x| x.is_ascii_digit()) {
                        aliases.push(acc.to_owned());
                    }
                }
            }
            for a in aliases {
                if a.is_empty() || builders.iter().any(|o| o.name == a) {
                    continue;
                }
                match names.get(&a) {
                    Some(&j) if j != i => ambiguous.push(a),
                    _ => {
                        names.insert(a, i);
                    }
                }
            }
        }
        for a in ambiguous {
            names.remove(&a);
        }
        let mut cds_count = 0;
        let contigs = builders
            .into_iter()
            .map(|mut b| {
                b.cds.sort_by_key(|c| (c.lo, c.hi));
                b.noncoding.sort_by_key(|c| (c.lo, c.hi));
                cds_count += b.cds.len();
                let max_span = b.cds.iter().map(|c| c.hi - c.lo).max().unwrap_or(0);
                Contig { name: b.name, seq: b.seq, circular: b.circular, cds: b.cds, noncoding: b.noncoding, max_span }
            })
            .collect();
        Ok(Genome { contigs, names, skipped, cds_count })
    }
}

/// Checks a CDS location (segments in transcript order, one strand) and
/// builds the CDS, or says why it cannot be used.
pub(crate) fn build_cds(
    names: CdsNames,
    strand: Strand,
    segments: Vec<Segment>,
    table: Option<&str>,
    codon_start: Option<&str>,
    contig: &[u8],
) -> Result<Cds, SkipReason> {
    if segments.is_empty() {
        return Err(SkipReason::Empty);
    }
    if segments.len() > MAX_SEGMENTS {
        return Err(SkipReason::TooManySegments);
    }
    let len = contig.len() as u64;
    if segments.iter().any(|s| s.start >= s.end || s.end > len) {
        return Err(SkipReason::OutOfRange);
    }
    let table = match table.map(str::trim) {
        None => CodonTable::STANDARD,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .and_then(CodonTable::by_id)
            .ok_or_else(|| SkipReason::UnknownCodonTable(t.chars().take(32).collect()))?,
    };
    let phase = match codon_start.map(str::trim) {
        None | Some("1") => 0,
        Some("2") => 1,
        Some("3") => 2,
        Some(other) => return Err(SkipReason::BadCodonStart(other.chars().take(32).collect())),
    };
    Ok(Cds::new(names, strand, segments, table, phase, contig))
}

/// Reads at most [`MAX_INPUT_BYTES`] from `r`.
fn read_bounded<R: Read>(r: R, what: &'static str) -> Result<Vec<u8>, GenomeError> {
    let mut data = Vec::new();
    r.take(MAX_INPUT_BYTES + 1).read_to_end(&mut data).map_err(|source| GenomeError::Read { what, source })?;
    if data.len() as u64 > MAX_INPUT_BYTES {
        return Err(GenomeError::TooLarge { what, limit: MAX_INPUT_BYTES });
    }
    Ok(data)
}

/// Reads a stream that may be gzip-compressed (magic `1f 8b`), bounding
/// the decompressed size.
fn read_maybe_gzip<R: Read>(r: R, what: &'static str) -> Result<Vec<u8>, GenomeError> {
    let mut r = std::io::BufReader::new(r);
    let head = std::io::BufRead::fill_buf(&mut r).map_err(|source| GenomeError::Read { what, source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        read_bounded(flate2::bufread::MultiGzDecoder::new(r), what)
    } else {
        read_bounded(r, what)
    }
}

/// Uppercases a sequence and checks it holds only IUPAC letters.
pub(crate) fn clean_sequence(seq: &mut [u8]) -> bool {
    for b in seq.iter_mut() {
        b.make_ascii_uppercase();
        if !b"ACGTURYSWKMBDHVN".contains(b) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: &str = "\
LOCUS       TOY                       30 bp    DNA     linear   BCT 01-JAN-2000
DEFINITION  toy.
ACCESSION   TOY1
VERSION     TOY1.2
FEATURES             Location/Qualifiers
     source          1..30
     CDS             4..12
                     /gene=\"abc\"
                     /transl_table=11
     CDS             complement(join(14..16,20..25))
                     /locus_tag=\"T_2\"
     CDS             join(complement(1..3),27..29)
                     /locus_tag=\"T_3\"
     CDS             5..10
                     /locus_tag=\"T_4\"
                     /transl_table=99
ORIGIN
        1 ccaatgaaat aaccgaatgt tacatgcccc
//
";

    #[test]
    fn loads_genbank_and_skips_what_it_cannot_use() {
        let g = Genome::from_genbank(GB.as_bytes()).unwrap();
        assert_eq!(g.contigs().collect::<Vec<_>>(), vec![("TOY1.2", 30)]);
        assert_eq!(g.genes(), 2);
        assert_eq!(g.contig_len("TOY1"), Some(30));
        assert_eq!(g.contig_len("TOY"), Some(30));
        assert_eq!(g.contig_len("TOY2"), None);
        assert_eq!(g.sequence("TOY1.2", 3, 6), Some(&b"ATG"[..]));
        assert_eq!(g.sequence("TOY1.2", 28, 31), None);
        let reasons: Vec<_> = g.skipped().iter().map(|s| s.reason.clone()).collect();
        assert_eq!(reasons, vec![SkipReason::MixedStrand, SkipReason::UnknownCodonTable("99".into())]);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for input in ["", "LOCUS", "hello\nworld\n", "LOCUS x 5 bp DNA\nORIGIN\n 1 acgtz\n//\n"] {
            assert!(Genome::from_genbank(input.as_bytes()).is_err(), "{input:?}");
        }
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(GB.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("toy.gb.gz");
        std::fs::write(&p, gz).unwrap();
        assert_eq!(Genome::from_genbank_path(&p).unwrap().genes(), 2);
        let missing = Genome::from_genbank_path(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, GenomeError::File { .. }));
    }

    #[test]
    fn ambiguous_aliases_resolve_to_nothing() {
        let b = |name: &str| ContigBuilder {
            name: name.into(),
            aliases: vec![],
            seq: b"ACGT".to_vec(),
            circular: false,
            cds: vec![],
            noncoding: vec![],
        };
        let g = Genome::assemble(vec![b("X.1"), b("X.2")], vec![], "test").unwrap();
        assert_eq!(g.contig_len("X.1"), Some(4));
        assert_eq!(g.contig_len("X"), None);
    }
}
