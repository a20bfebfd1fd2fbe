//! Single variants: `CONTIG:POS:REF:ALT`, or HGVS genomic notation on a
//! contig of the reference (HGVS nomenclature 21.0, `g.` descriptions).
//!
//! ```text
//! variant    = colon-form | hgvs
//! colon-form = contig ":" pos ":" bases ":" bases
//! hgvs       = contig ":g." ( pos base ">" base
//!                           | range "del" [bases]
//!                           | range "dup" [bases]
//!                           | pos "_" pos "ins" bases
//!                           | range "delins" bases )
//! range      = pos [ "_" pos ]
//! pos        = 1*10DIGIT (no leading zero)
//! ```
//!
//! HGVS forms are turned into VCF-style alleles with the reference: a
//! deletion, duplication or insertion gets the base before it as anchor.

use super::{check_against, check_bases, check_contig_name, InputError, Source, MAX_VARIANT_TEXT};
use crate::consequence::Variant;
use crate::genome::Genome;

/// Parses and checks one variant string against `genome`. `item` is its
/// index in the request's list, for error messages.
pub fn parse_variant(s: &str, genome: &Genome, item: usize) -> Result<Variant, InputError> {
    let src = Some(Source::Item(item));
    if s.len() > MAX_VARIANT_TEXT {
        return Err(InputError::too_large(
            "variant",
            format!("variants[{item}] is longer than {MAX_VARIANT_TEXT} bytes"),
        ));
    }
    let s = s.trim();
    if s.chars().any(char::is_control) {
        return Err(InputError::bad(src, "variant", "holds a control character"));
    }
    let Some((contig, rest)) = s.split_once(':') else {
        return Err(InputError::bad(src, "variant", "expected CONTIG:POS:REF:ALT or CONTIG:g.<HGVS>"));
    };
    check_contig_name(contig, src, "contig")?;
    let v = match rest.strip_prefix("g.") {
        Some(desc) => hgvs_g(contig, desc, genome, src)?,
        None => colon_form(contig, rest, src)?,
    };
    check_against(genome, v, src)
}

fn colon_form(contig: &str, rest: &str, src: Option<Source>) -> Result<Variant, InputError> {
    let parts: Vec<&str> = rest.split(':').collect();
    let [pos, reference, alternate] = parts[..] else {
        return Err(InputError::bad(src, "variant", "expected CONTIG:POS:REF:ALT or CONTIG:g.<HGVS>"));
    };
    let pos = parse_pos(pos, src, "POS")?;
    let reference = check_bases(reference, src, "REF", true)?;
    let alternate = check_bases(alternate, src, "ALT", false)?;
    if reference == alternate {
        return Err(InputError::bad(src, "ALT", "equals REF"));
    }
    Ok(Variant { contig: contig.to_owned(), pos, reference, alternate })
}

fn parse_pos(s: &str, src: Option<Source>, field: &'static str) -> Result<u64, InputError> {
    let ok = !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    match ok.then(|| s.parse::<u64>().ok()).flatten() {
        Some(p) => Ok(p),
        None => Err(InputError::bad(src, field, "must be a position from 1 (at most 10 digits)")),
    }
}

/// Splits `desc` at the first ASCII letter: the position part and the rest.
fn split_range(desc: &str) -> (&str, &str) {
    let at = desc.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(desc.len());
    desc.split_at(at)
}

fn reference(genome: &Genome, contig: &str, start1: u64, end1: u64, src: Option<Source>) -> Result<String, InputError> {
    let Some(len) = genome.contig_len(contig) else {
        return Err(InputError::unfit(src, "contig", "is not a contig of the reference"));
    };
    if start1 == 0 || end1 < start1 || end1 > len {
        return Err(InputError::unfit(src, "variant", format!("the range is outside the contig (1 to {len})")));
    }
    if end1 - start1 >= super::MAX_ALLELE_LEN as u64 {
        return Err(InputError::too_large("variant", format!("spans more than {} bases", super::MAX_ALLELE_LEN)));
    }
    match genome.sequence(contig, start1 - 1, end1) {
        Some(b) => Ok(String::from_utf8_lossy(b).to_ascii_uppercase()),
        None => Err(InputError::unfit(src, "variant", "the range is outside the contig")),
    }
}

fn hgvs_g(contig: &str, desc: &str, genome: &Genome, src: Option<Source>) -> Result<Variant, InputError> {
    let bad = |why: &str| InputError::bad(src, "variant", format!("HGVS g.: {why}"));
    let (range, op) = split_range(desc);
    let (start, end) = match range.split_once('_') {
        Some((a, b)) => (parse_pos(a, src, "start")?, parse_pos(b, src, "end")?),
        None => {
            let p = parse_pos(range, src, "position")?;
            (p, p)
        }
    };
    if end < start {
        return Err(bad("the range ends before it starts"));
    }
    let v =
        |pos, reference: String, alternate: String| Variant { contig: contig.to_owned(), pos, reference, alternate };
    if let Some(bases) = op.strip_prefix("delins") {
        let alt = check_bases(bases, src, "ALT", false)?;
        let r = reference(genome, contig, start, end, src)?;
        if r == alt {
            return Err(bad("delins gives the reference back"));
        }
        return Ok(v(start, r, alt));
    }
    if let Some(stated) = op.strip_prefix("del") {
        let deleted = reference(genome, contig, start, end, src)?;
        if !stated.is_empty() {
            // `del` may state the deleted bases (deprecated but common); they must be the reference's.
            let stated = check_bases(stated, src, "REF", false)?;
            if stated != deleted {
                return Err(InputError::unfit(src, "REF", "does not match the reference at this position"));
            }
        }
        return Ok(anchor_left(genome, contig, start, end, deleted, String::new(), src)?.into_variant(contig));
    }
    if let Some(stated) = op.strip_prefix("dup") {
        let dup = reference(genome, contig, start, end, src)?;
        if !stated.is_empty() {
            let stated = check_bases(stated, src, "REF", false)?;
            if stated != dup {
                return Err(InputError::unfit(src, "REF", "does not match the reference at this position"));
            }
        }
        // The copy goes right after `end`: anchor on the last duplicated base.
        let last = reference(genome, contig, end, end, src)?;
        return Ok(v(end, last.clone(), format!("{last}{dup}")));
    }
    if let Some(bases) = op.strip_prefix("ins") {
        if end != start + 1 {
            return Err(bad("an insertion lies between two adjacent positions, like 123_124insA"));
        }
        let ins = check_bases(bases, src, "ALT", false)?;
        let anchor = reference(genome, contig, start, start, src)?;
        return Ok(v(start, anchor.clone(), format!("{anchor}{ins}")));
    }
    // Substitution: one position, REF>ALT.
    let Some((r, a)) = op.split_once('>') else {
        return Err(bad("expected a substitution (123A>G), del, dup, ins or delins"));
    };
    if start != end {
        return Err(bad("a substitution is one position; use delins for a range"));
    }
    let r = check_bases(r, src, "REF", false)?;
    let a = check_bases(a, src, "ALT", false)?;
    if r.len() != 1 || a.len() != 1 {
        return Err(bad("a substitution changes one base; use delins for more"));
    }
    if r == a {
        return Err(InputError::bad(src, "ALT", "equals REF"));
    }
    Ok(v(start, r, a))
}

struct Anchored {
    pos: u64,
    reference: String,
    alternate: String,
}

impl Anchored {
    fn into_variant(self, contig: &str) -> Variant {
        Variant { contig: contig.to_owned(), pos: self.pos, reference: self.reference, alternate: self.alternate }
    }
}

/// VCF's convention for an event that removes `removed` at `start..=end`:
/// REF and ALT share the base before it (or, at position 1, the base after).
fn anchor_left(
    genome: &Genome,
    contig: &str,
    start: u64,
    end: u64,
    removed: String,
    inserted: String,
    src: Option<Source>,
) -> Result<Anchored, InputError> {
    if start > 1 {
        let a = reference(genome, contig, start - 1, start - 1, src)?;
        Ok(Anchored { pos: start - 1, reference: format!("{a}{removed}"), alternate: format!("{a}{inserted}") })
    } else {
        let a = reference(genome, contig, end + 1, end + 1, src)?;
        Ok(Anchored { pos: start, reference: format!("{removed}{a}"), alternate: format!("{inserted}{a}") })
    }
}
