//! The effect of a change inside the exons of a CDS, worked out on the
//! spliced coding-strand sequence.

use super::hgvs::{coding_c, frameshift_p, protein_p};
use super::Consequence;
use crate::genome::Cds;

/// A change on the coding strand: `ref_len` bases at 0-based CDS index
/// `start` become `alt` (for an insertion `ref_len` is 0 and the bases go
/// before `start`).
#[derive(Debug)]
pub(super) struct CodingChange {
    pub(super) start: usize,
    pub(super) ref_len: usize,
    pub(super) alt: Vec<u8>,
}

/// What [`coding_effect`] found.
#[derive(Debug)]
pub(super) struct CodingEffect {
    pub(super) consequence: Consequence,
    pub(super) codon_change: Option<String>,
    pub(super) aa_change: Option<String>,
    pub(super) hgvs_c: String,
    pub(super) hgvs_p: Option<String>,
}

/// Works out the consequence, codons and HGVS of `ch` on `cds`.
pub(super) fn coding_effect(cds: &Cds, ch: &CodingChange) -> CodingEffect {
    let s = &cds.spliced;
    let n = s.len();
    let f = cds.phase as usize;
    let hgvs_c = coding_c(s, ch.start, ch.ref_len, &ch.alt);
    let mut out = CodingEffect {
        consequence: Consequence::CodingSequenceVariant,
        codon_change: None,
        aa_change: None,
        hgvs_c,
        hgvs_p: None,
    };
    if ch.start < f || ch.start + ch.ref_len > n {
        return out;
    }
    let mut new = Vec::with_capacity(n + ch.alt.len());
    new.extend_from_slice(&s[..ch.start]);
    new.extend_from_slice(&ch.alt);
    new.extend_from_slice(&s[ch.start + ch.ref_len..]);
    let t = cds.table;
    let codon = |seq: &[u8], k: usize| seq.get(f + 3 * k..f + 3 * k + 3).map(<[u8]>::to_vec);

    // Codons touched: k0..k1 (empty when an insertion falls between codons).
    let k0 = (ch.start - f) / 3;
    let k1 = if ch.ref_len > 0 {
        (ch.start + ch.ref_len - 1 - f) / 3 + 1
    } else if (ch.start - f) % 3 == 0 {
        k0
    } else {
        k0 + 1
    };

    if k0 == 0 && k1 > 0 {
        let (old1, new1) = (codon(s, 0), codon(&new, 0));
        // A CDS whose first codon is no start codon of its code (plastid
        // ACG starts, edited to AUG in the RNA) has no start to lose.
        if old1 != new1 && old1.as_deref().is_some_and(|c| t.is_start(c)) {
            let starts = new1.as_deref().is_some_and(|c| t.is_start(c));
            if !starts || ch.alt.len() == ch.ref_len {
                out.consequence = if starts { Consequence::StartRetainedVariant } else { Consequence::StartLost };
                out.hgvs_p = Some("p.Met1?".to_owned());
                out.codon_change = codons_changed(s, &new, f, 0, 1);
                return out;
            }
        }
    }

    let protein = t.translate_seq(&s[f..]);
    let d = ch.alt.len() as i64 - ch.ref_len as i64;
    if d % 3 != 0 {
        out.consequence = Consequence::FrameshiftVariant;
        let mut k = k0;
        while let (Some(o), Some(nw)) = (codon(s, k), codon(&new, k)) {
            if t.translate(&o) != t.translate(&nw) {
                break;
            }
            k += 1;
        }
        let k = if codon(s, k).is_some() { k } else { k0 };
        out.hgvs_p = Some(frameshift_p(protein.get(k).copied().unwrap_or(b'X'), k));
        return out;
    }

    let old_end = (f + 3 * k1).min(n);
    let new_end = (old_end as i64 + d).max(0) as usize;
    let old_region = &s[f + 3 * k0..old_end];
    let new_region = new.get(f + 3 * k0..new_end).unwrap_or_default();
    let old_aa = t.translate_seq(old_region);
    let new_aa = t.translate_seq(new_region);
    let old_stop = old_aa.contains(&b'*');
    let new_stop = new_aa.contains(&b'*');
    out.consequence = if d == 0 {
        let pairs: Vec<(u8, u8)> = old_aa.iter().copied().zip(new_aa.iter().copied()).collect();
        if pairs.iter().any(|&(o, nw)| o != b'*' && nw == b'*') {
            Consequence::StopGained
        } else if pairs.iter().any(|&(o, nw)| o == b'*' && nw != b'*') {
            Consequence::StopLost
        } else if pairs.iter().any(|&(o, nw)| o != nw) {
            Consequence::MissenseVariant
        } else if old_stop {
            Consequence::StopRetainedVariant
        } else {
            Consequence::SynonymousVariant
        }
    } else if old_stop && !new_stop {
        Consequence::StopLost
    } else if new_stop && !old_stop {
        Consequence::StopGained
    } else if d > 0 {
        Consequence::InframeInsertion
    } else {
        Consequence::InframeDeletion
    };
    out.hgvs_p = Some(protein_p(&protein, k0, &old_aa, &new_aa));
    if d == 0 {
        out.codon_change = codons_changed(s, &new, f, k0, k1);
        out.aa_change =
            Some(format!("{}{}{}", String::from_utf8_lossy(&old_aa), k0 + 1, String::from_utf8_lossy(&new_aa)));
    } else {
        out.codon_change =
            Some(format!("{}/{}", String::from_utf8_lossy(old_region), String::from_utf8_lossy(new_region)));
    }
    out
}

/// `gCt/gTt`: codons `k0..k1` before and after, changed bases in capitals
/// (SnpEff's style). Only for changes that keep the length.
fn codons_changed(old: &[u8], new: &[u8], f: usize, k0: usize, k1: usize) -> Option<String> {
    let a = old.get(f + 3 * k0..f + 3 * k1)?;
    let b = new.get(f + 3 * k0..f + 3 * k1)?;
    let mark = |x: &[u8], y: &[u8]| -> String {
        x.iter().zip(y).map(|(&p, &q)| if p == q { p.to_ascii_lowercase() as char } else { p as char }).collect()
    };
    Some(format!("{}/{}", mark(a, b), mark(b, a)))
}
