//! The text form of a variant, built by rule.
//!
//! WordPiece splits `p.Ala41Val` into meaningless pieces; abstracts say
//! "alanine to valine", "A41V", "frameshift", "nonsense". So HGVS is parsed
//! here (HGVS nomenclature, varnomen.hgvs.org: substitution, deletion,
//! duplication, insertion, deletion-insertion, frameshift, extension) and
//! spelled out in words next to the original notation.

use super::bert::cut;

/// Bytes kept of each input field.
pub const MAX_FIELD_BYTES: usize = 256;

/// Amino acids: three-letter code, one-letter code, name.
const AMINO_ACIDS: [(&str, char, &str); 25] = [
    ("Ala", 'A', "alanine"),
    ("Arg", 'R', "arginine"),
    ("Asn", 'N', "asparagine"),
    ("Asp", 'D', "aspartate"),
    ("Cys", 'C', "cysteine"),
    ("Gln", 'Q', "glutamine"),
    ("Glu", 'E', "glutamate"),
    ("Gly", 'G', "glycine"),
    ("His", 'H', "histidine"),
    ("Ile", 'I', "isoleucine"),
    ("Leu", 'L', "leucine"),
    ("Lys", 'K', "lysine"),
    ("Met", 'M', "methionine"),
    ("Phe", 'F', "phenylalanine"),
    ("Pro", 'P', "proline"),
    ("Ser", 'S', "serine"),
    ("Thr", 'T', "threonine"),
    ("Trp", 'W', "tryptophan"),
    ("Tyr", 'Y', "tyrosine"),
    ("Val", 'V', "valine"),
    ("Sec", 'U', "selenocysteine"),
    ("Pyl", 'O', "pyrrolysine"),
    ("Ter", '*', "stop"),
    ("Xaa", 'X', "unknown amino acid"),
    ("Asx", 'B', "asparagine or aspartate"),
];

/// The text embedded for a variant: `gene SYMBOL product consequence
/// c.HGVS words p.HGVS words`. Empty or absent fields are left out; each
/// field is cut to [`MAX_FIELD_BYTES`] and control characters dropped.
///
/// ```
/// use seqshield_annotate::evidence::query::variant_text;
/// assert_eq!(
///     variant_text(Some("pla"), Some("plasminogen activator"), "missense_variant", None, Some("p.Ala41Val")),
///     "gene pla plasminogen activator missense variant p.Ala41Val Ala41Val A41V alanine to valine substitution",
/// );
/// ```
pub fn variant_text(
    gene: Option<&str>,
    product: Option<&str>,
    consequence: &str,
    hgvs_c: Option<&str>,
    hgvs_p: Option<&str>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(g) = gene.map(clean).filter(|g| !g.is_empty()) {
        parts.push(format!("gene {g}"));
    }
    if let Some(p) = product.map(clean).filter(|p| !p.is_empty()) {
        parts.push(p);
    }
    let consequence: Vec<String> =
        clean(consequence).split(['&', ',', ';', ' ']).filter(|t| !t.is_empty()).map(|t| t.replace('_', " ")).collect();
    if !consequence.is_empty() {
        parts.push(consequence.join(" "));
    }
    if let Some(c) = hgvs_c.map(clean).filter(|c| !c.is_empty()) {
        parts.push(expand_c(&c));
    }
    if let Some(p) = hgvs_p.map(clean).filter(|p| !p.is_empty()) {
        parts.push(expand_p(&p));
    }
    parts.join(" ")
}

fn clean(s: &str) -> String {
    cut(s, MAX_FIELD_BYTES)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Strips an optional reference prefix (`NP_000050.3:`) and `p.`/`c.`.
fn body<'a>(hgvs: &'a str, kind: &str) -> Option<&'a str> {
    let s = hgvs.rsplit(':').next().unwrap_or(hgvs);
    s.strip_prefix(kind)
}

/// A protein HGVS change spelled out: `p.Arg97Ter` → `p.Arg97Ter Arg97Ter R97* arginine to stop nonsense`.
fn expand_p(hgvs: &str) -> String {
    let Some(raw) = body(hgvs, "p.") else {
        return hgvs.to_owned();
    };
    let inner = raw.trim_start_matches('(').trim_end_matches(')');
    let mut out = vec![hgvs.to_owned()];
    if inner.is_empty() {
        return hgvs.to_owned();
    }
    out.push(inner.to_owned());
    let toks = protein_tokens(inner);
    if let Some(short) = one_letter(&toks) {
        if short != inner {
            out.push(short);
        }
    }
    out.push(describe_p(&toks));
    out.retain(|s| !s.is_empty());
    out.join(" ")
}

#[derive(Clone, Debug, PartialEq)]
enum PTok<'a> {
    Aa(&'a str, char, &'static str),
    Num(&'a str),
    Word(&'static str),
    Other(&'a str),
}

fn protein_tokens(s: &str) -> Vec<PTok<'_>> {
    const WORDS: [(&str, &str); 9] = [
        ("delins", "deletion insertion"),
        ("del", "deletion"),
        ("dup", "duplication"),
        ("ins", "insertion"),
        ("fs", "frameshift"),
        ("ext", "extension"),
        ("=", "synonymous"),
        ("?", "unknown"),
        ("_", "to"),
    ];
    let mut toks = Vec::new();
    let mut rest = s;
    'outer: while !rest.is_empty() {
        for (code, one, name) in AMINO_ACIDS {
            if let Some(r) = rest.strip_prefix(code) {
                toks.push(PTok::Aa(code, one, name));
                rest = r;
                continue 'outer;
            }
        }
        if let Some(r) = rest.strip_prefix('*') {
            toks.push(PTok::Aa("Ter", '*', "stop"));
            rest = r;
            continue;
        }
        for (code, word) in WORDS {
            if let Some(r) = rest.strip_prefix(code) {
                toks.push(PTok::Word(word));
                rest = r;
                continue 'outer;
            }
        }
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'-').count();
        if digits > 0 {
            toks.push(PTok::Num(&rest[..digits]));
            rest = &rest[digits..];
            continue;
        }
        let n = rest.chars().next().map_or(1, char::len_utf8);
        toks.push(PTok::Other(&rest[..n]));
        rest = &rest[n..];
    }
    toks
}

/// `Ala41Val` → `A41V`, where every token has a one-letter form.
fn one_letter(toks: &[PTok<'_>]) -> Option<String> {
    let mut s = String::new();
    for t in toks {
        match t {
            PTok::Aa(_, c, _) => s.push(*c),
            PTok::Num(n) => s.push_str(n),
            PTok::Word("frameshift") => s.push_str("fs"),
            PTok::Word("deletion") => s.push_str("del"),
            PTok::Word("duplication") => s.push_str("dup"),
            PTok::Word("insertion") => s.push_str("ins"),
            PTok::Word("deletion insertion") => s.push_str("delins"),
            PTok::Word("to") => s.push('_'),
            PTok::Word("synonymous") => s.push('='),
            PTok::Word("extension") => s.push_str("ext"),
            PTok::Word("unknown") => s.push('?'),
            _ => return None,
        }
    }
    Some(s)
}

fn describe_p(toks: &[PTok<'_>]) -> String {
    let words: Vec<&str> = toks
        .iter()
        .filter_map(|t| match t {
            PTok::Word(w) => Some(*w),
            _ => None,
        })
        .collect();
    let aas: Vec<&str> = toks
        .iter()
        .filter_map(|t| match t {
            PTok::Aa(_, _, name) => Some(*name),
            _ => None,
        })
        .collect();
    match (toks, words.as_slice()) {
        // Ala41Val, Arg97Ter, Ter110Gln (stop lost without ext).
        ([PTok::Aa(..), PTok::Num(_), PTok::Aa(..)], []) => {
            let (from, to) = (aas[0], aas[1]);
            if to == "stop" {
                format!("{from} to stop nonsense")
            } else if from == "stop" {
                format!("stop to {to} stop lost")
            } else if from == to {
                format!("{from} synonymous")
            } else {
                format!("{from} to {to} substitution")
            }
        }
        ([PTok::Aa(..), PTok::Num(_), PTok::Word("synonymous")], _) => format!("{} synonymous", aas[0]),
        ([PTok::Aa(_, 'M', _), PTok::Num("1"), PTok::Word("unknown")], _) => "methionine start lost".to_owned(),
        _ if words.contains(&"frameshift") => match aas.as_slice() {
            [from, to, ..] if *to != "stop" => format!("{from} to {to} frameshift"),
            [from, ..] => format!("{from} frameshift"),
            [] => "frameshift".to_owned(),
        },
        _ if words.contains(&"extension") => match aas.as_slice() {
            ["stop", to, ..] => format!("stop to {to} extension stop lost"),
            [from, ..] => format!("{from} extension"),
            [] => "extension".to_owned(),
        },
        _ => {
            // Spell every token: amino acids by name, keywords as words.
            let mut out: Vec<&str> = Vec::new();
            for t in toks {
                match t {
                    PTok::Aa(_, _, name) => out.push(name),
                    PTok::Word(w) => out.push(w),
                    PTok::Num(_) | PTok::Other(_) => {}
                }
            }
            out.join(" ")
        }
    }
}

/// A coding DNA HGVS change spelled out: `c.122C>T` → `c.122C>T 122C>T cytosine to thymine transition`.
fn expand_c(hgvs: &str) -> String {
    let Some(inner) = body(hgvs, "c.") else {
        return hgvs.to_owned();
    };
    let mut out = vec![hgvs.to_owned(), inner.to_owned()];
    let pos_end =
        inner.find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '*' | '_'))).unwrap_or(inner.len());
    let (pos, change) = inner.split_at(pos_end);
    if pos.contains(['+', '-']) {
        out.push("intronic splice region".to_owned());
    }
    if pos.starts_with('*') {
        out.push("three prime UTR".to_owned());
    } else if pos.starts_with('-') {
        out.push("five prime UTR".to_owned());
    }
    let base = |b: char| match b {
        'A' => Some(("adenine", true)),
        'G' => Some(("guanine", true)),
        'C' => Some(("cytosine", false)),
        'T' => Some(("thymine", false)),
        _ => None,
    };
    let mut chars = change.chars();
    match (chars.next(), chars.next(), chars.next(), chars.next()) {
        (Some(r), Some('>'), Some(a), None) => {
            if let (Some((rn, rp)), Some((an, ap))) = (base(r), base(a)) {
                let kind = if rp == ap { "transition" } else { "transversion" };
                out.push(format!("{rn} to {an} {kind}"));
            }
        }
        _ => {
            for (code, word) in [
                ("delins", "deletion insertion"),
                ("del", "deletion"),
                ("dup", "duplication"),
                ("ins", "insertion"),
                ("inv", "inversion"),
            ] {
                if change.starts_with(code) {
                    out.push(word.to_owned());
                    break;
                }
            }
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example() {
        assert_eq!(
            variant_text(Some("pla"), Some("plasminogen activator"), "missense_variant", None, Some("p.Ala41Val")),
            "gene pla plasminogen activator missense variant p.Ala41Val Ala41Val A41V alanine to valine substitution"
        );
    }

    #[test]
    fn protein_changes_are_spelled_out() {
        let p = |s| expand_p(s);
        assert_eq!(p("p.Arg97Ter"), "p.Arg97Ter Arg97Ter R97* arginine to stop nonsense");
        assert_eq!(p("p.Arg97*"), "p.Arg97* Arg97* R97* arginine to stop nonsense");
        assert_eq!(p("p.(Gly12Asp)"), "p.(Gly12Asp) Gly12Asp G12D glycine to aspartate substitution");
        assert_eq!(p("p.Leu5="), "p.Leu5= Leu5= L5= leucine synonymous");
        assert_eq!(p("p.Met1?"), "p.Met1? Met1? M1? methionine start lost");
        assert_eq!(p("p.Lys23fsTer12"), "p.Lys23fsTer12 Lys23fsTer12 K23fs*12 lysine frameshift");
        assert_eq!(p("p.Gln8del"), "p.Gln8del Gln8del Q8del glutamine deletion");
        assert_eq!(p("p.Ala3_Ser5dup"), "p.Ala3_Ser5dup Ala3_Ser5dup A3_S5dup alanine to serine duplication");
        assert_eq!(
            p("p.Cys28delinsTrpVal"),
            "p.Cys28delinsTrpVal Cys28delinsTrpVal C28delinsWV cysteine deletion insertion tryptophan valine"
        );
        assert_eq!(
            p("p.Ter110GlnextTer17"),
            "p.Ter110GlnextTer17 Ter110GlnextTer17 *110Qext*17 stop to glutamine extension stop lost"
        );
        assert_eq!(p("NP_000050.3:p.Ala41Val"), "NP_000050.3:p.Ala41Val Ala41Val A41V alanine to valine substitution");
        assert_eq!(p("weird"), "weird");
    }

    #[test]
    fn coding_changes_are_spelled_out() {
        assert_eq!(expand_c("c.122C>T"), "c.122C>T 122C>T cytosine to thymine transition");
        assert_eq!(expand_c("c.35G>T"), "c.35G>T 35G>T guanine to thymine transversion");
        assert_eq!(expand_c("c.68_69delAG"), "c.68_69delAG 68_69delAG deletion");
        assert_eq!(expand_c("c.5266dupC"), "c.5266dupC 5266dupC duplication");
        assert_eq!(expand_c("c.123+1G>A"), "c.123+1G>A 123+1G>A intronic splice region guanine to adenine transition");
        assert_eq!(expand_c("c.*5del"), "c.*5del *5del three prime UTR deletion");
    }

    #[test]
    fn fields_are_optional_cleaned_and_bounded() {
        assert_eq!(
            variant_text(None, None, "frameshift_variant&splice_region_variant", None, None),
            "frameshift variant splice region variant"
        );
        assert_eq!(variant_text(Some(" BRCA1\n"), Some(""), "", None, None), "gene BRCA1");
        let long = "x".repeat(10_000);
        assert!(variant_text(Some(&long), Some(&long), &long, Some(&long), Some(&long)).len() < 6 * MAX_FIELD_BYTES);
    }
}
