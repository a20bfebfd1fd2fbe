//! NCBI genetic codes ("translation tables") used to translate a CDS.
//!
//! Each table is written in the NCBI `gc.prt` layout: 64 amino acids (and a
//! start mask) for codons ordered with bases `TCAG` at each position, so
//! `TTT, TTC, TTA, TTG, TCT, ...`. Source:
//! <https://www.ncbi.nlm.nih.gov/Taxonomy/Utils/wprintgc.cgi>.

/// The amino acids of the standard code (table 1), also used by table 11.
const STANDARD_AAS: &[u8; 64] = b"FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG";

/// A genetic code: amino acids, stops and alternative start codons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CodonTable {
    id: u8,
    aas: &'static [u8; 64],
    starts: &'static [u8; 64],
}

impl CodonTable {
    /// The standard code (table 1), GenBank's default when a CDS names none.
    pub(crate) const STANDARD: CodonTable = CodonTable {
        id: 1,
        aas: STANDARD_AAS,
        starts: b"---M------**--*----M---------------M----------------------------",
    };

    /// The bacterial, archaeal and plant plastid code (table 11): the
    /// standard amino acids with more start codons (ATT, ATC, ATA, GTG).
    pub(crate) const BACTERIAL: CodonTable = CodonTable {
        id: 11,
        aas: STANDARD_AAS,
        starts: b"---M------**--*----M------------MMMM---------------M------------",
    };

    /// The vertebrate mitochondrial code (table 2).
    pub(crate) const VERTEBRATE_MITOCHONDRIAL: CodonTable = CodonTable {
        id: 2,
        aas: b"FFLLSSSSYY**CCWWLLLLPPPPHHQQRRRRIIMMTTTTNNKKSS**VVVVAAAADDEEGGGG",
        starts: b"----------**--------------------MMMM----------**---M------------",
    };

    /// The mold, protozoan and coelenterate mitochondrial and the
    /// mycoplasma/spiroplasma code (table 4).
    pub(crate) const MYCOPLASMA: CodonTable = CodonTable {
        id: 4,
        aas: b"FFLLSSSSYY**CCWWLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
        starts: b"--MM------**-------M------------MMMM---------------M------------",
    };

    /// The table with NCBI number `id`, where supported (1, 2, 4, 11).
    pub(crate) fn by_id(id: u32) -> Option<CodonTable> {
        match id {
            1 => Some(Self::STANDARD),
            2 => Some(Self::VERTEBRATE_MITOCHONDRIAL),
            4 => Some(Self::MYCOPLASMA),
            11 => Some(Self::BACTERIAL),
            _ => None,
        }
    }

    /// The NCBI table number.
    pub(crate) fn id(&self) -> u8 {
        self.id
    }

    fn index(codon: &[u8]) -> Option<usize> {
        let [a, b, c] = codon else { return None };
        let base = |x: u8| match x {
            b'T' | b'U' => Some(0),
            b'C' => Some(1),
            b'A' => Some(2),
            b'G' => Some(3),
            _ => None,
        };
        Some(base(*a)? * 16 + base(*b)? * 4 + base(*c)?)
    }

    /// The one-letter amino acid of an uppercase codon; `*` for a stop and
    /// `X` for a codon with an ambiguous base or of the wrong length.
    pub(crate) fn translate(&self, codon: &[u8]) -> u8 {
        Self::index(codon).map_or(b'X', |i| self.aas[i])
    }

    /// Whether `codon` may start a protein in this code.
    pub(crate) fn is_start(&self, codon: &[u8]) -> bool {
        Self::index(codon).is_some_and(|i| self.starts[i] == b'M')
    }

    /// Translates whole codons of `seq` (a trailing partial codon is
    /// dropped).
    pub(crate) fn translate_seq(&self, seq: &[u8]) -> Vec<u8> {
        seq.chunks_exact(3).map(|c| self.translate(c)).collect()
    }
}

/// The three-letter code of a one-letter amino acid (`*` becomes `Ter`).
pub(crate) fn three_letter(aa: u8) -> &'static str {
    match aa {
        b'A' => "Ala",
        b'R' => "Arg",
        b'N' => "Asn",
        b'D' => "Asp",
        b'C' => "Cys",
        b'Q' => "Gln",
        b'E' => "Glu",
        b'G' => "Gly",
        b'H' => "His",
        b'I' => "Ile",
        b'L' => "Leu",
        b'K' => "Lys",
        b'M' => "Met",
        b'F' => "Phe",
        b'P' => "Pro",
        b'S' => "Ser",
        b'T' => "Thr",
        b'W' => "Trp",
        b'Y' => "Tyr",
        b'V' => "Val",
        b'*' => "Ter",
        _ => "Xaa",
    }
}

/// The reverse complement of an uppercase IUPAC sequence.
pub(crate) fn revcomp(seq: &[u8]) -> Vec<u8> {
    seq.iter().rev().map(|&b| complement(b)).collect()
}

fn complement(b: u8) -> u8 {
    match b {
        b'A' => b'T',
        b'T' | b'U' => b'A',
        b'C' => b'G',
        b'G' => b'C',
        b'R' => b'Y',
        b'Y' => b'R',
        b'K' => b'M',
        b'M' => b'K',
        b'B' => b'V',
        b'V' => b'B',
        b'D' => b'H',
        b'H' => b'D',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_code_basics() {
        let t = CodonTable::STANDARD;
        assert_eq!(t.translate(b"ATG"), b'M');
        assert_eq!(t.translate(b"TGG"), b'W');
        assert_eq!(t.translate(b"TAA"), b'*');
        assert_eq!(t.translate(b"TGA"), b'*');
        assert_eq!(t.translate(b"GCN"), b'X');
        assert_eq!(t.translate(b"GC"), b'X');
        assert!(t.is_start(b"ATG"));
        assert!(!t.is_start(b"GTG"), "GTG starts only in table 11 among these");
        assert!(!t.is_start(b"ATA"));
    }

    #[test]
    fn table_11_has_alternative_starts() {
        let t = CodonTable::by_id(11).unwrap();
        for c in [&b"ATG"[..], b"GTG", b"TTG", b"CTG", b"ATT", b"ATC", b"ATA"] {
            assert!(t.is_start(c), "{}", String::from_utf8_lossy(c));
        }
        assert!(!t.is_start(b"AAA"));
        assert_eq!(t.translate(b"GTG"), b'V');
    }

    #[test]
    fn mitochondrial_tables_differ_where_expected() {
        let t2 = CodonTable::by_id(2).unwrap();
        assert_eq!(t2.translate(b"TGA"), b'W');
        assert_eq!(t2.translate(b"AGA"), b'*');
        assert_eq!(t2.translate(b"ATA"), b'M');
        let t4 = CodonTable::by_id(4).unwrap();
        assert_eq!(t4.translate(b"TGA"), b'W');
        assert_eq!(t4.translate(b"AGA"), b'R');
        assert!(CodonTable::by_id(99).is_none());
    }

    #[test]
    fn revcomp_and_three_letter() {
        assert_eq!(revcomp(b"ATGCN"), b"NGCAT");
        assert_eq!(three_letter(b'*'), "Ter");
        assert_eq!(three_letter(b'W'), "Trp");
    }
}
