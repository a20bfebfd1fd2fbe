//! Validated input: VCF 4.x bodies (parsed with `noodles`) and single
//! variants (`CONTIG:POS:REF:ALT` or HGVS genomic `CONTIG:g.…`).
//!
//! Everything a caller sends is bounded before it is parsed (body size,
//! line length, record count, allele length), and checked against the
//! reference: the contig must be known, the position inside it and REF
//! equal to the reference bases there. A failure names the line (or list
//! item) and the field, and never says what the reference base *is*: an
//! error must not turn the API into an oracle for the reference sequence.
//!
//! Sample columns, genotypes, IDs, QUAL, FILTER and INFO are read past and
//! dropped here: nothing below this module ever sees them.

mod hgvs;
mod vcf;

use serde::Serialize;

use crate::consequence::Variant;
use crate::genome::Genome;

pub use self::hgvs::parse_variant;
pub use self::vcf::parse_vcf;

/// Largest request body, VCF or JSON (bytes).
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Longest VCF line (bytes), sample columns included.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Most VCF header lines.
pub const MAX_HEADER_LINES: usize = 4096;
/// Most VCF records in one request.
pub const MAX_RECORDS: usize = 10_000;
/// Most variants (VCF ALT alleles, or list items) in one request.
pub const MAX_VARIANTS: usize = 20_000;
/// Most single variants in one JSON request.
pub const MAX_LIST_ITEMS: usize = 1_000;
/// Longest REF or ALT allele (bases).
pub const MAX_ALLELE_LEN: usize = 1_000;
/// Longest single-variant string (bytes).
pub const MAX_VARIANT_TEXT: usize = 2_100;
/// Longest contig name (bytes).
pub const MAX_CONTIG_NAME: usize = 64;

/// Where a variant came from in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A VCF line (1-based, header lines counted).
    Line(usize),
    /// An item of a JSON `variants` list (0-based).
    Item(usize),
}

/// A variant that passed every check, with where it came from.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Its line or list item.
    pub source: Source,
    /// The variant, REF equal to the reference, bases upper-case.
    pub variant: Variant,
    /// For an HGVS `del`, `dup`, `ins` or `delins` (whose alleles were
    /// filled in from the reference, not sent): the description as sent.
    /// Answers echo this instead of the alleles, so they never return
    /// reference bases the caller did not send.
    pub described: Option<String>,
}

/// Why a request's input was refused: the line (or item), the field and
/// the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{}{field}: {why}", match .at { Some(Source::Line(n)) => format!("line {n}: "), Some(Source::Item(i)) => format!("variants[{i}]: "), None => String::new() })]
pub struct InputError {
    /// The line or list item, when the error is about one.
    pub at: Option<Source>,
    /// The field (`CHROM`, `POS`, `REF`, `ALT`, `header`, `body`, `variant`).
    pub field: &'static str,
    /// The rule it broke.
    pub why: String,
    /// The HTTP status: 413 for a bound, 422 for a variant that does not
    /// fit the reference, 400 for the rest.
    #[serde(skip)]
    pub status: u16,
}

impl InputError {
    pub(crate) fn bad(source: Option<Source>, field: &'static str, why: impl Into<String>) -> Self {
        Self { at: source, field, why: why.into(), status: 400 }
    }

    pub(crate) fn too_large(field: &'static str, why: impl Into<String>) -> Self {
        Self { at: None, field, why: why.into(), status: 413 }
    }

    pub(crate) fn unfit(source: Option<Source>, field: &'static str, why: impl Into<String>) -> Self {
        Self { at: source, field, why: why.into(), status: 422 }
    }

    /// Whether the input was well-formed but does not fit the reference
    /// (unknown contig, position out of range, REF mismatch): what an
    /// enumeration of the reference looks like.
    pub fn is_reference_probe(&self) -> bool {
        self.status == 422
    }
}

/// Checks an allele: only A, C, G, T (and N in REF), at most
/// [`MAX_ALLELE_LEN`] bases; returns it upper-case.
pub(crate) fn check_bases(
    s: &str,
    source: Option<Source>,
    field: &'static str,
    allow_n: bool,
) -> Result<String, InputError> {
    if s.is_empty() {
        return Err(InputError::bad(source, field, "is empty"));
    }
    if s.len() > MAX_ALLELE_LEN {
        return Err(InputError::too_large(field, format!("is longer than {MAX_ALLELE_LEN} bases")));
    }
    let up = s.to_ascii_uppercase();
    if let Some(c) = up.chars().find(|&c| !(matches!(c, 'A' | 'C' | 'G' | 'T') || (allow_n && c == 'N'))) {
        let shown = if c.is_ascii_graphic() { format!("{c:?}") } else { format!("U+{:04X}", c as u32) };
        let allowed = if allow_n { "A, C, G, T or N" } else { "A, C, G or T" };
        return Err(InputError::bad(source, field, format!("has {shown}; only {allowed} are allowed")));
    }
    Ok(up)
}

/// Checks a contig name's shape (not whether it exists).
pub(crate) fn check_contig_name(s: &str, source: Option<Source>, field: &'static str) -> Result<(), InputError> {
    if s.is_empty() || s.len() > MAX_CONTIG_NAME {
        return Err(InputError::bad(source, field, format!("must be 1 to {MAX_CONTIG_NAME} characters")));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'|')) {
        return Err(InputError::bad(source, field, "may hold only letters, digits, '_', '.', '-' and '|'"));
    }
    Ok(())
}

/// Checks a variant against the reference: contig known, REF inside it and
/// equal to the reference (N matches anything). Returns it with the
/// genome's own contig name.
pub(crate) fn check_against(genome: &Genome, v: Variant, source: Option<Source>) -> Result<Variant, InputError> {
    let field = if matches!(source, Some(Source::Item(_))) { "contig" } else { "CHROM" };
    let Some(len) = genome.contig_len(&v.contig) else {
        return Err(InputError::unfit(source, field, "is not a contig of the reference"));
    };
    if v.pos == 0 || v.pos > len {
        return Err(InputError::unfit(source, "POS", format!("is outside the contig (1 to {len})")));
    }
    let start = v.pos - 1;
    let end = start + v.reference.len() as u64;
    let Some(reference) = genome.sequence(&v.contig, start, end).filter(|r| r.len() == v.reference.len()) else {
        return Err(InputError::unfit(source, "REF", "runs past the end of the contig"));
    };
    let same = v.reference.bytes().zip(reference).all(|(a, &b)| a == b'N' || a == b.to_ascii_uppercase());
    if !same {
        // Never say what the reference base is.
        return Err(InputError::unfit(source, "REF", "does not match the reference at this position"));
    }
    let contig = genome.canonical_name(&v.contig).unwrap_or(&v.contig).to_owned();
    Ok(Variant { contig, ..v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_checked_and_upper_cased() {
        assert_eq!(check_bases("acgT", None, "ALT", false).unwrap(), "ACGT");
        assert!(check_bases("N", None, "ALT", false).is_err());
        assert_eq!(check_bases("N", None, "REF", true).unwrap(), "N");
        let e = check_bases("A<script>", Some(Source::Line(3)), "ALT", false).unwrap_err();
        assert_eq!(e.to_string(), "line 3: ALT: has '<'; only A, C, G or T are allowed");
        let e = check_bases(&"A".repeat(MAX_ALLELE_LEN + 1), None, "REF", true).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(check_bases("", None, "REF", true).is_err());
        assert!(check_bases("A\u{0}", None, "REF", true).unwrap_err().why.contains("U+0000"));
    }

    #[test]
    fn contig_names_have_a_shape() {
        check_contig_name("NC_005816.1", None, "CHROM").unwrap();
        for bad in ["", "a b", "x;DROP", &"x".repeat(65), "é"] {
            assert!(check_contig_name(bad, None, "CHROM").is_err(), "{bad:?}");
        }
    }
}
