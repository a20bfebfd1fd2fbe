//! GenBank flat files (via `gb-io`) into a [`Genome`].

use gb_io::seq::{Location, Seq, Topology};

use super::{
    build_cds, clean_sequence, CdsNames, ContigBuilder, Genome, GenomeError, Segment, SkipReason, SkippedCds, Strand,
    MAX_CDS, MAX_CONTIGS, MAX_SEGMENTS,
};

/// Deepest nesting of `complement()`/`join()` followed.
const MAX_LOCATION_DEPTH: usize = 16;

/// Parses every record of a GenBank file.
pub(super) fn parse(data: &[u8]) -> Result<Genome, GenomeError> {
    let mut builders = Vec::new();
    let mut skipped = Vec::new();
    let mut n_cds = 0;
    for (i, rec) in gb_io::reader::SeqReader::new(data).enumerate() {
        let record = i + 1;
        let seq = rec.map_err(|source| GenomeError::GenBank { record, source })?;
        if builders.len() >= MAX_CONTIGS {
            return Err(GenomeError::TooManyContigs { limit: MAX_CONTIGS });
        }
        builders.push(record_to_contig(seq, record, &mut skipped, &mut n_cds)?);
    }
    Genome::assemble(builders, skipped, "GenBank file")
}

fn record_to_contig(
    seq: Seq,
    record: usize,
    skipped: &mut Vec<SkippedCds>,
    n_cds: &mut usize,
) -> Result<ContigBuilder, GenomeError> {
    let first_word = |s: &Option<String>| s.as_deref().and_then(|v| v.split_whitespace().next()).map(str::to_owned);
    let version = first_word(&seq.version);
    let accession = first_word(&seq.accession);
    let locus = seq.name.clone().filter(|n| !n.is_empty());
    let name = version
        .clone()
        .or_else(|| accession.clone())
        .or_else(|| locus.clone())
        .unwrap_or_else(|| format!("record{record}"));
    let mut bases = seq.seq;
    if bases.is_empty() {
        return Err(GenomeError::NoSequence { record, name });
    }
    if !clean_sequence(&mut bases) {
        return Err(GenomeError::Syntax {
            what: "GenBank",
            line: 0,
            reason: "sequence holds a byte that is not an IUPAC nucleotide",
        });
    }
    let mut cds = Vec::new();
    for f in seq.features.iter().filter(|f| f.kind == "CDS") {
        *n_cds += 1;
        if *n_cds > MAX_CDS {
            return Err(GenomeError::TooManyCds { limit: MAX_CDS });
        }
        let q = |key: &str| f.qualifier_values(key).next().map(str::to_owned);
        let names =
            CdsNames { gene: q("gene"), locus_tag: q("locus_tag"), product: q("product"), protein_id: q("protein_id") };
        let built = segments(&f.location).and_then(|(strand, segs)| {
            build_cds(names.clone(), strand, segs, q("transl_table").as_deref(), q("codon_start").as_deref(), &bases)
        });
        match built {
            Ok(c) => cds.push(c),
            Err(reason) => {
                tracing::debug!(contig = %name, cds = %names.label(), %reason, "CDS skipped");
                let span = f
                    .location
                    .find_bounds()
                    .ok()
                    .and_then(|(a, b)| Some((u64::try_from(a).ok()?, u64::try_from(b).ok()?)));
                skipped.push(SkippedCds { contig: name.clone(), label: names.label(), reason, span });
            }
        }
    }
    let noncoding = noncoding_genes(&seq.features, &cds, skipped, &name, bases.len() as u64);
    Ok(ContigBuilder {
        noncoding,
        aliases: [accession, locus].into_iter().flatten().collect(),
        name,
        seq: bases,
        circular: seq.topology == Topology::Circular,
        cds,
    })
}

/// `gene` features whose locus tag (or name) no CDS has: tRNA and rRNA
/// genes. Mixed-strand or odd locations are left out.
fn noncoding_genes(
    features: &[gb_io::seq::Feature],
    cds: &[super::Cds],
    skipped: &[SkippedCds],
    contig: &str,
    len: u64,
) -> Vec<super::NoncodingGene> {
    let has_cds = |label: &str| {
        cds.iter().any(|c| c.names.label() == label) || skipped.iter().any(|s| s.contig == contig && s.label == label)
    };
    let mut out = Vec::new();
    for f in features.iter().filter(|f| f.kind == "gene") {
        let q = |key: &str| f.qualifier_values(key).next().map(str::to_owned);
        let names = CdsNames { gene: q("gene"), locus_tag: q("locus_tag"), product: None, protein_id: None };
        if names.gene.is_none() && names.locus_tag.is_none() || has_cds(&names.label()) {
            continue;
        }
        let Ok((strand, segs)) = segments(&f.location) else { continue };
        let lo = segs.iter().map(|s| s.start).min().unwrap_or(0);
        let hi = segs.iter().map(|s| s.end).max().unwrap_or(0);
        if hi <= len && lo < hi && out.len() < MAX_CDS {
            out.push(super::NoncodingGene { names, strand, lo, hi });
        }
    }
    out
}

/// Flattens a location into segments in transcript order on one strand.
fn segments(loc: &Location) -> Result<(Strand, Vec<Segment>), SkipReason> {
    let mut out = Vec::new();
    flatten(loc, false, 0, &mut out)?;
    let minus = out.first().map(|s| s.1).ok_or(SkipReason::Empty)?;
    if out.iter().any(|s| s.1 != minus) {
        return Err(SkipReason::MixedStrand);
    }
    let strand = if minus { Strand::Minus } else { Strand::Plus };
    Ok((strand, out.into_iter().map(|s| s.0).collect()))
}

fn flatten(loc: &Location, minus: bool, depth: usize, out: &mut Vec<(Segment, bool)>) -> Result<(), SkipReason> {
    if depth > MAX_LOCATION_DEPTH {
        return Err(SkipReason::UnsupportedLocation);
    }
    if out.len() > MAX_SEGMENTS {
        return Err(SkipReason::TooManySegments);
    }
    match loc {
        Location::Range((a, _), (b, _)) => {
            let (start, end) = (u64::try_from(*a), u64::try_from(*b));
            match (start, end) {
                (Ok(start), Ok(end)) if start < end => {
                    out.push((Segment { start, end }, minus));
                    Ok(())
                }
                _ => Err(SkipReason::OutOfRange),
            }
        }
        Location::Complement(inner) => {
            let mut part = Vec::new();
            flatten(inner, !minus, depth + 1, &mut part)?;
            out.extend(part.into_iter().rev());
            Ok(())
        }
        Location::Join(parts) | Location::Order(parts) => {
            for p in parts {
                flatten(p, minus, depth + 1, out)?;
            }
            Ok(())
        }
        _ => Err(SkipReason::UnsupportedLocation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Location {
        Location::from_gb_format(s).unwrap()
    }

    #[test]
    fn complement_of_join_reverses_the_parts() {
        let (strand, segs) = segments(&loc("complement(join(1..3,10..12))")).unwrap();
        assert_eq!(strand, Strand::Minus);
        assert_eq!(segs, vec![Segment { start: 9, end: 12 }, Segment { start: 0, end: 3 }]);
    }

    #[test]
    fn join_of_complements_keeps_the_given_order() {
        let (_, segs) = segments(&loc("join(complement(10..12),complement(1..3))")).unwrap();
        assert_eq!(segs[0], Segment { start: 9, end: 12 });
    }

    #[test]
    fn mixed_strands_and_odd_kinds_are_refused() {
        assert_eq!(segments(&loc("join(complement(1..3),5..9)")), Err(SkipReason::MixedStrand));
        assert_eq!(segments(&loc("5^6")), Err(SkipReason::UnsupportedLocation));
    }
}
