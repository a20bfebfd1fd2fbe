//! HGVS c. and p. strings (HGVS nomenclature, <https://hgvs-nomenclature.org>),
//! with indels shifted to their 3'-most position on the coding strand
//! ("3' rule").

use crate::genome::codon::three_letter;

/// `c.` for a change of `ref_len` bases at 0-based CDS index `start` to
/// `alt` (coding strand), on the spliced CDS `s`.
pub(super) fn coding_c(s: &[u8], start: usize, ref_len: usize, alt: &[u8]) -> String {
    let n = s.len();
    match (ref_len, alt.len()) {
        (1, 1) => format!("c.{}{}>{}", start + 1, s[start] as char, alt[0] as char),
        (0, _) => {
            let (ip, ins) = shift_insertion(s, start, alt);
            let m = ins.len();
            if ip >= m && s[ip - m..ip] == ins[..] {
                format!("c.{}dup", range(ip - m + 1, ip))
            } else {
                format!("c.{}_{}ins{}", ip, ip + 1, text(&ins))
            }
        }
        (m, 0) => {
            let mut a = start;
            while a + m < n && s[a] == s[a + m] {
                a += 1;
            }
            format!("c.{}del", range(a + 1, a + m))
        }
        (m, _) => format!("c.{}delins{}", range(start + 1, start + m), text(alt)),
    }
}

/// Shifts an insertion before index `ip` of `s` 3' while the sequence
/// allows, rotating the inserted bases.
pub(super) fn shift_insertion(s: &[u8], mut ip: usize, ins: &[u8]) -> (usize, Vec<u8>) {
    let mut ins = ins.to_vec();
    while !ins.is_empty() && ip < s.len() && ins[0] == s[ip] {
        ins.rotate_left(1);
        ip += 1;
    }
    (ip, ins)
}

/// `a` or `a_b` (1-based positions).
fn range(a: usize, b: usize) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}_{b}")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `c.` of a substitution outside the CDS exons: in an intron
/// (`c.87+3A>G`, `c.88-2A>G`), upstream (`c.-37A>G`) or downstream
/// (`c.*12A>G`). `pos` is the already formatted position.
pub(super) fn noncoding_snv(pos: &str, r: u8, a: u8) -> String {
    format!("c.{pos}{}>{}", r as char, a as char)
}

/// Three-letter amino acids, a stop as `Ter` (`p.Lys58delinsAsnThrTer`).
fn aa3(aas: &[u8]) -> String {
    aas.iter().map(|&a| three_letter(a)).collect()
}

fn aa1(a: u8) -> &'static str {
    if a == b'*' {
        "Ter"
    } else {
        three_letter(a)
    }
}

/// `p.` for an in-frame change: `old` amino acids starting at 0-based
/// protein position `k0` become `new`; `protein` is the whole reference
/// protein (for the 3' rule and `dup`).
pub(super) fn protein_p(protein: &[u8], k0: usize, old: &[u8], new: &[u8]) -> String {
    let pre = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (old, new) = (&old[pre..], &new[pre..]);
    let suf = old.iter().rev().zip(new.iter().rev()).take_while(|(a, b)| a == b).count();
    let (del, ins) = (&old[..old.len() - suf], &new[..new.len() - suf]);
    let a = k0 + pre;
    match (del.len(), ins.len()) {
        (0, 0) => {
            let aa = protein.get(k0).copied().unwrap_or(b'X');
            format!("p.{}{}=", aa1(aa), k0 + 1)
        }
        (1, 1) if del[0] == b'*' => format!("p.Ter{}{}ext*?", a + 1, aa1(ins[0])),
        // A stop gained by substitution is written `p.Gln12*`.
        (1, 1) if ins[0] == b'*' => format!("p.{}{}*", aa1(del[0]), a + 1),
        (1, 1) => format!("p.{}{}{}", aa1(del[0]), a + 1, aa3(ins)),
        (m, 0) => {
            let mut a = a;
            while a + m < protein.len() && protein[a] == protein[a + m] {
                a += 1;
            }
            format!("p.{}del", span(protein, a, a + m - 1))
        }
        (0, m) => {
            let (ip, ins) = shift_insertion(protein, a, ins);
            if ip >= m && protein[ip - m..ip] == ins[..] {
                format!("p.{}dup", span(protein, ip - m, ip - 1))
            } else if ip >= 1 && ip < protein.len() {
                format!("p.{}ins{}", span(protein, ip - 1, ip), aa3(&ins))
            } else {
                format!("p.{}{}delins{}", aa1(protein.get(a).copied().unwrap_or(b'X')), a + 1, aa3(&ins))
            }
        }
        (m, _) => format!("p.{}delins{}", span(protein, a, a + m - 1), aa3(ins)),
    }
}

/// `Lys3` or `Lys3_Leu5` for 0-based protein positions `a..=b`.
fn span(protein: &[u8], a: usize, b: usize) -> String {
    let name = |i: usize| format!("{}{}", aa1(protein.get(i).copied().unwrap_or(b'X')), i + 1);
    if a == b {
        name(a)
    } else {
        format!("{}_{}", name(a), name(b))
    }
}

/// `p.Lys3fs` for a frameshift whose first changed amino acid is `aa` at
/// 0-based position `k`.
pub(super) fn frameshift_p(aa: u8, k: usize) -> String {
    format!("p.{}{}fs", aa1(aa), k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_dot_forms() {
        let s = b"ATGAAAGCTTAA";
        assert_eq!(coding_c(s, 7, 1, b"T"), "c.8C>T");
        assert_eq!(coding_c(s, 3, 1, b""), "c.6del", "deletion in a run moves 3'");
        assert_eq!(coding_c(s, 3, 2, b""), "c.5_6del");
        assert_eq!(coding_c(s, 4, 0, b"A"), "c.6dup");
        assert_eq!(coding_c(s, 4, 0, b"G"), "c.4_5insG");
        assert_eq!(coding_c(s, 6, 2, b"TT"), "c.7_8delinsTT");
        assert_eq!(noncoding_snv("-37", b'A', b'G'), "c.-37A>G");
    }

    #[test]
    fn p_dot_forms() {
        let p = b"MKKAL*";
        assert_eq!(protein_p(p, 3, b"A", b"V"), "p.Ala4Val");
        assert_eq!(protein_p(p, 3, b"A", b"*"), "p.Ala4*");
        assert_eq!(protein_p(p, 3, b"A", b"A"), "p.Ala4=");
        assert_eq!(protein_p(p, 5, b"*", b"Q"), "p.Ter6Glnext*?");
        assert_eq!(protein_p(p, 1, b"K", b""), "p.Lys3del");
        assert_eq!(protein_p(p, 1, b"KK", b"K"), "p.Lys3del");
        assert_eq!(protein_p(p, 1, b"K", b"KK"), "p.Lys3dup");
        assert_eq!(protein_p(p, 3, b"A", b"AG"), "p.Ala4_Leu5insGly");
        assert_eq!(protein_p(p, 3, b"AL", b"G"), "p.Ala4_Leu5delinsGly");
        assert_eq!(frameshift_p(b'K', 2), "p.Lys3fs");
    }
}
