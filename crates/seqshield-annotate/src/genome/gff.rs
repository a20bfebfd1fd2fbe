//! GFF3 features with a FASTA reference into a [`Genome`].
//!
//! Only what consequence prediction needs is read: `CDS` lines, grouped by
//! their `ID` (or, lacking one, their `Parent`), with names taken from the
//! CDS or, failing that, from its parent and grandparent (mRNA, gene).
//! GFF3 spec: <https://github.com/The-Sequence-Ontology/Specifications/blob/master/gff3.md>.

use std::collections::HashMap;

use super::{
    build_cds, clean_sequence, CdsNames, ContigBuilder, Genome, GenomeError, Segment, SkippedCds, Strand, MAX_CDS,
    MAX_CONTIGS, MAX_LINE_BYTES,
};

/// A FASTA file (or a GFF3 `##FASTA` section) into named sequences.
fn parse_fasta(data: &[u8], out: &mut Vec<ContigBuilder>) -> Result<(), GenomeError> {
    let what = "FASTA";
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            return Err(GenomeError::Syntax { what, line: i + 1, reason: "line too long" });
        }
        if let Some(header) = line.strip_prefix(b">") {
            if out.len() >= MAX_CONTIGS {
                return Err(GenomeError::TooManyContigs { limit: MAX_CONTIGS });
            }
            let header = std::str::from_utf8(header).map_err(|_| GenomeError::Syntax {
                what,
                line: i + 1,
                reason: "header is not UTF-8",
            })?;
            let id = header.split_whitespace().next().unwrap_or_default();
            if id.is_empty() {
                return Err(GenomeError::Syntax { what, line: i + 1, reason: "header without a name" });
            }
            out.push(ContigBuilder {
                name: id.to_owned(),
                aliases: ncbi_aliases(id),
                seq: Vec::new(),
                circular: false,
                cds: Vec::new(),
                noncoding: Vec::new(),
            });
        } else if line.first() == Some(&b';') || line.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            let Some(cur) = out.last_mut() else {
                return Err(GenomeError::Syntax { what, line: i + 1, reason: "sequence before the first header" });
            };
            let start = cur.seq.len();
            cur.seq.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
            if !clean_sequence(&mut cur.seq[start..]) {
                return Err(GenomeError::Syntax { what, line: i + 1, reason: "byte that is not an IUPAC nucleotide" });
            }
        }
    }
    Ok(())
}

/// Accessions inside NCBI-style ids: `gi|45478711|ref|NC_005816.1|` gives
/// `NC_005816.1`.
fn ncbi_aliases(id: &str) -> Vec<String> {
    let parts: Vec<&str> = id.split('|').collect();
    parts
        .windows(2)
        .filter(|w| matches!(w[0], "ref" | "gb" | "emb" | "dbj" | "lcl"))
        .map(|w| w[1].to_owned())
        .filter(|a| !a.is_empty())
        .collect()
}

/// Decodes `%XX` escapes (GFF3 §"Description of the format").
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |x: u8| (x as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One GFF3 feature line, the fields we use.
struct Line {
    seqid: String,
    start: u64,
    end: u64,
    strand: Option<Strand>,
    phase: Option<String>,
    attrs: HashMap<String, String>,
}

fn parse_line(line: &str, n: usize) -> Result<Option<(String, Line)>, GenomeError> {
    let err = |reason| GenomeError::Syntax { what: "GFF3", line: n, reason };
    let cols: Vec<&str> = line.split('\t').collect();
    if cols.len() != 9 {
        return Err(err("a feature line needs 9 tab-separated columns"));
    }
    let start: u64 = cols[3].parse().map_err(|_| err("start is not a number"))?;
    let end: u64 = cols[4].parse().map_err(|_| err("end is not a number"))?;
    if start == 0 || end < start {
        return Err(err("start must be at least 1 and not after end"));
    }
    let strand = match cols[6] {
        "+" => Some(Strand::Plus),
        "-" => Some(Strand::Minus),
        "." | "?" => None,
        _ => return Err(err("strand must be +, -, . or ?")),
    };
    let mut attrs = HashMap::new();
    for kv in cols[8].split(';').filter(|s| !s.trim().is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| err("attribute without '='"))?;
        attrs.insert(unescape(k.trim()), unescape(v.trim()));
    }
    let phase = (cols[7] != ".").then(|| cols[7].to_owned());
    Ok(Some((cols[2].to_owned(), Line { seqid: unescape(cols[0]), start: start - 1, end, strand, phase, attrs })))
}

/// Parses GFF3 `gff` with its reference `fasta`.
pub(super) fn parse(gff: &[u8], fasta: &[u8]) -> Result<Genome, GenomeError> {
    let text = std::str::from_utf8(gff).map_err(|_| GenomeError::Syntax {
        what: "GFF3",
        line: 0,
        reason: "the file is not UTF-8",
    })?;
    let mut builders = Vec::new();
    parse_fasta(fasta, &mut builders)?;
    let mut parents: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut groups: Vec<(String, usize, Line, Vec<Segment>)> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    let mut circular: Vec<String> = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split('\n').enumerate() {
        offset += line.len() + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            return Err(GenomeError::Syntax { what: "GFF3", line: i + 1, reason: "line too long" });
        }
        if line.starts_with("##FASTA") {
            parse_fasta(gff.get(offset.min(gff.len())..).unwrap_or_default(), &mut builders)?;
            break;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((kind, l)) = parse_line(line, i + 1)? else { continue };
        if l.attrs.get("Is_circular").map(String::as_str) == Some("true") {
            circular.push(l.seqid.clone());
        }
        if kind != "CDS" {
            if let Some(id) = l.attrs.get("ID") {
                parents.insert(id.clone(), l.attrs.clone());
            }
            continue;
        }
        let key =
            l.attrs.get("ID").or_else(|| l.attrs.get("Parent")).cloned().unwrap_or_else(|| format!("line{}", i + 1));
        let seg = Segment { start: l.start, end: l.end };
        match group_of.get(&(l.seqid.clone() + "\t" + &key)) {
            Some(&g) => groups[g].3.push(seg),
            None => {
                if groups.len() >= MAX_CDS {
                    return Err(GenomeError::TooManyCds { limit: MAX_CDS });
                }
                group_of.insert(l.seqid.clone() + "\t" + &key, groups.len());
                groups.push((key, i + 1, l, vec![seg]));
            }
        }
    }
    let index: HashMap<String, usize> = builders
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.aliases.iter().chain(std::iter::once(&b.name)).map(move |n| (n.clone(), i)))
        .collect();
    for b in builders.iter_mut() {
        b.circular = circular.iter().any(|c| *c == b.name || b.aliases.contains(c));
    }
    let mut skipped = Vec::new();
    for (_, line_no, first, mut segs) in groups {
        let Some(&ci) = index.get(&first.seqid) else {
            return Err(GenomeError::UnknownSeqid { line: line_no, seqid: first.seqid });
        };
        let names = names_for(&first.attrs, &parents);
        let Some(strand) = first.strand else {
            skipped.push(SkippedCds {
                contig: builders[ci].name.clone(),
                label: names.label(),
                reason: super::SkipReason::UnsupportedLocation,
                span: None,
            });
            continue;
        };
        match strand {
            Strand::Plus => segs.sort_by_key(|s| s.start),
            Strand::Minus => segs.sort_by_key(|s| std::cmp::Reverse(s.start)),
        }
        // GFF3 phase of the 5'-most segment is codon_start - 1.
        let codon_start = first_phase(&first, &segs, strand).map(|p| match p.as_str() {
            "0" => "1".to_owned(),
            "1" => "2".to_owned(),
            "2" => "3".to_owned(),
            other => other.to_owned(),
        });
        let table = first.attrs.get("transl_table").cloned();
        let c = &mut builders[ci];
        match build_cds(names.clone(), strand, segs, table.as_deref(), codon_start.as_deref(), &c.seq) {
            Ok(cds) => c.cds.push(cds),
            Err(reason) => {
                skipped.push(SkippedCds { contig: c.name.clone(), label: names.label(), reason, span: None })
            }
        }
    }
    Genome::assemble(builders, skipped, "FASTA")
}

/// The phase of the segment where translation starts (only the first
/// line's phase is kept, which is that segment's when lines are in order).
fn first_phase(first: &Line, segs: &[Segment], strand: Strand) -> Option<String> {
    let five_prime = segs.first()?;
    let is_first = match strand {
        Strand::Plus => five_prime.start == first.start,
        Strand::Minus => five_prime.end == first.end,
    };
    if is_first {
        first.phase.clone()
    } else {
        None
    }
}

fn names_for(attrs: &HashMap<String, String>, parents: &HashMap<String, HashMap<String, String>>) -> CdsNames {
    let mut chain = vec![attrs];
    let mut cur = attrs;
    for _ in 0..2 {
        match cur.get("Parent").and_then(|p| parents.get(p.split(',').next().unwrap_or_default())) {
            Some(p) => {
                chain.push(p);
                cur = p;
            }
            None => break,
        }
    }
    let find = |keys: &[&str]| chain.iter().find_map(|a| keys.iter().find_map(|k| a.get(*k)).cloned());
    CdsNames {
        gene: find(&["gene", "Name"]),
        locus_tag: find(&["locus_tag"]),
        product: find(&["product"]),
        protein_id: find(&["protein_id"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FASTA: &str = ">gi|1|ref|TOY.1| toy\nccaATGAAATAA\nccgaatgttacatgcccc\n";

    #[test]
    fn gff3_cds_with_parents_and_aliases() {
        let gff = "##gff-version 3\n\
TOY.1\t.\tgene\t4\t12\t.\t+\t.\tID=g1;Name=abc;locus_tag=T_1\n\
TOY.1\t.\tCDS\t4\t12\t.\t+\t0\tID=cds1;Parent=g1;transl_table=11;product=toy%20protein\n\
TOY.1\t.\tCDS\t20\t22\t.\t-\t0\tID=cds2\n\
TOY.1\t.\tCDS\t14\t16\t.\t-\t0\tID=cds2\n";
        let g = Genome::from_gff3_fasta(gff.as_bytes(), FASTA.as_bytes()).unwrap();
        assert_eq!(g.genes(), 2);
        assert_eq!(g.contig_len("TOY.1"), Some(30));
        assert_eq!(g.contig_len("TOY"), Some(30));
        let c = g.contig("TOY").unwrap();
        let first = &c.cds[0];
        assert_eq!(first.names.gene.as_deref(), Some("abc"));
        assert_eq!(first.names.locus_tag.as_deref(), Some("T_1"));
        assert_eq!(first.names.product.as_deref(), Some("toy protein"));
        assert_eq!(first.table.id(), 11);
        assert_eq!(c.cds[1].segments[0], Segment { start: 19, end: 22 });
    }

    #[test]
    fn bad_gff3_lines_are_errors_not_panics() {
        for gff in [
            "x\t1\n",
            "TOY.1\t.\tCDS\t0\t3\t.\t+\t0\tID=a\n",
            "TOY.1\t.\tCDS\t5\t3\t.\t+\t0\tID=a\n",
            "NOPE\t.\tCDS\t1\t3\t.\t+\t0\tID=a\n",
            "TOY.1\t.\tCDS\t1\t3\t.\t*\t0\tID=a\n",
        ] {
            assert!(Genome::from_gff3_fasta(gff.as_bytes(), FASTA.as_bytes()).is_err(), "{gff:?}");
        }
        assert!(Genome::from_gff3_fasta(&b""[..], &b"ACGT\n"[..]).is_err());
        assert!(Genome::from_gff3_fasta(&b""[..], &b">x\nAC-GT\n"[..]).is_err());
    }

    #[test]
    fn fasta_section_inside_gff3() {
        let gff = "##gff-version 3\nc1\t.\tCDS\t1\t6\t.\t+\t0\tID=a\n##FASTA\n>c1\nATGTAA\n";
        let g = Genome::from_gff3_fasta(gff.as_bytes(), &b""[..]).unwrap();
        assert_eq!(g.genes(), 1);
        assert_eq!(unescape("a%3Db%zz%4"), "a=b%zz%4");
    }
}
