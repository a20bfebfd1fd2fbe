//! A coding sequence: its exon segments in transcript order, its genetic
//! code and its spliced sequence on the coding strand.

use super::codon::{revcomp, CodonTable};

/// The strand a gene is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strand {
    /// The forward (reference) strand.
    Plus,
    /// The reverse-complement strand.
    Minus,
}

impl Strand {
    /// `'+'` or `'-'`.
    pub fn as_char(self) -> char {
        match self {
            Strand::Plus => '+',
            Strand::Minus => '-',
        }
    }
}

/// A half-open 0-based interval `[start, end)` of the contig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Segment {
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// Names of a CDS, as given by the annotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CdsNames {
    pub(crate) gene: Option<String>,
    pub(crate) locus_tag: Option<String>,
    pub(crate) product: Option<String>,
    pub(crate) protein_id: Option<String>,
}

impl CdsNames {
    /// A label for logs and skip reports.
    pub(crate) fn label(&self) -> String {
        self.locus_tag
            .clone()
            .or_else(|| self.gene.clone())
            .or_else(|| self.protein_id.clone())
            .unwrap_or_else(|| "(unnamed CDS)".to_owned())
    }
}

/// Where a contig position falls relative to a CDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// In an exon, at this 0-based index of the spliced CDS.
    Exon(u64),
    /// In an intron (between two exons read in order on the same strand).
    Intron {
        /// 0-based CDS index of the last base of the exon before the intron.
        prev_exon_last: u64,
        /// Distance (1-based) from that exon's last base.
        after_prev: u64,
        /// Distance (1-based) to the next exon's first base.
        before_next: u64,
    },
    /// Neither (outside the CDS, or between trans-spliced parts).
    Outside,
}

/// A CDS ready for consequence prediction.
#[derive(Clone, Debug)]
pub(crate) struct Cds {
    pub(crate) names: CdsNames,
    pub(crate) strand: Strand,
    /// Exon segments in transcript (5' to 3') order.
    pub(crate) segments: Vec<Segment>,
    /// Cumulative CDS length before each segment.
    offsets: Vec<u64>,
    pub(crate) table: CodonTable,
    /// `codon_start - 1`: bases before the first whole codon.
    pub(crate) phase: u64,
    /// The spliced CDS on the coding strand, uppercase.
    pub(crate) spliced: Vec<u8>,
    /// Smallest and largest contig coordinate covered (half-open).
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

impl Cds {
    /// Builds a CDS from segments in transcript order. The caller has
    /// checked that every segment lies within `contig`.
    pub(crate) fn new(
        names: CdsNames,
        strand: Strand,
        segments: Vec<Segment>,
        table: CodonTable,
        phase: u64,
        contig: &[u8],
    ) -> Cds {
        let mut offsets = Vec::with_capacity(segments.len());
        let mut spliced = Vec::new();
        let mut total = 0;
        for s in &segments {
            offsets.push(total);
            total += s.len();
            let part = contig.get(s.start as usize..s.end as usize).unwrap_or_default();
            match strand {
                Strand::Plus => spliced.extend_from_slice(part),
                Strand::Minus => spliced.extend_from_slice(&revcomp(part)),
            }
        }
        let lo = segments.iter().map(|s| s.start).min().unwrap_or(0);
        let hi = segments.iter().map(|s| s.end).max().unwrap_or(0);
        Cds { names, strand, segments, offsets, table, phase, spliced, lo, hi }
    }

    /// Length of the spliced CDS.
    pub(crate) fn len(&self) -> u64 {
        self.spliced.len() as u64
    }

    /// Where contig position `g` (0-based) falls.
    pub(crate) fn place(&self, g: u64) -> Place {
        for (s, off) in self.segments.iter().zip(&self.offsets) {
            if s.start <= g && g < s.end {
                return Place::Exon(match self.strand {
                    Strand::Plus => off + (g - s.start),
                    Strand::Minus => off + (s.end - 1 - g),
                });
            }
        }
        for (i, pair) in self.segments.windows(2).enumerate() {
            let (prev, next) = (pair[0], pair[1]);
            let prev_exon_last = self.offsets[i] + prev.len() - 1;
            match self.strand {
                Strand::Plus if prev.end <= g && g < next.start => {
                    return Place::Intron { prev_exon_last, after_prev: g - prev.end + 1, before_next: next.start - g }
                }
                Strand::Minus if next.end <= g && g < prev.start => {
                    return Place::Intron { prev_exon_last, after_prev: prev.start - g, before_next: g - next.end + 1 }
                }
                _ => {}
            }
        }
        Place::Outside
    }

    /// Whether the CDS has exons out of order on its strand (trans-spliced
    /// or wrapping the origin of a circular contig).
    pub(crate) fn is_discontinuous(&self) -> bool {
        self.segments.windows(2).any(|p| match self.strand {
            Strand::Plus => p[1].start < p[0].end,
            Strand::Minus => p[1].end > p[0].start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cds(strand: Strand, segs: &[(u64, u64)], contig: &[u8]) -> Cds {
        let segments = segs.iter().map(|&(start, end)| Segment { start, end }).collect();
        Cds::new(CdsNames::default(), strand, segments, CodonTable::STANDARD, 0, contig)
    }

    #[test]
    fn plus_strand_join_maps_across_the_intron() {
        //            0123456789
        let contig = b"ATGAAACCCGGGTAA";
        let c = cds(Strand::Plus, &[(0, 4), (7, 15)], contig);
        assert_eq!(c.spliced, b"ATGACCGGGTAA");
        assert_eq!(c.place(3), Place::Exon(3));
        assert_eq!(c.place(7), Place::Exon(4));
        assert_eq!(c.place(4), Place::Intron { prev_exon_last: 3, after_prev: 1, before_next: 3 });
        assert_eq!(c.place(15), Place::Outside);
        assert!(!c.is_discontinuous());
    }

    #[test]
    fn minus_strand_counts_from_the_right() {
        let contig = b"TTACCCAAAGGGCAT";
        let c = cds(Strand::Minus, &[(9, 15), (0, 6)], contig);
        assert_eq!(&c.spliced[..3], b"ATG");
        assert_eq!(c.place(14), Place::Exon(0));
        assert_eq!(c.place(0), Place::Exon(11));
        assert!(matches!(c.place(8), Place::Intron { after_prev: 1, .. }));
    }

    #[test]
    fn trans_spliced_gap_is_not_an_intron() {
        let contig = vec![b'A'; 100];
        let c = cds(Strand::Plus, &[(60, 70), (10, 20)], &contig);
        assert!(c.is_discontinuous());
        assert_eq!(c.place(40), Place::Outside);
        assert_eq!(c.place(15), Place::Exon(15));
    }
}
