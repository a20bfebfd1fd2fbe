//! How entries sit in the log file.
//!
//! ```text
//! file   = MAGIC record*
//! record = len:u32be entry[len] chain[32] crc:u32be
//! chain  = SHA-256(0x02 ‖ chain of the previous record ‖ leaf hash of entry)
//!          (the previous chain of the first record is 32 zero bytes)
//! crc    = CRC-32C(len ‖ entry ‖ chain)
//! ```
//!
//! The checksum (CRC-32C, Castagnoli, RFC 3720 §B.4) finds torn and damaged
//! records. The chain binds each record to everything before it, so an
//! edited, deleted, moved or inserted record shows at its own index even
//! when whoever did it fixed the checksum. Neither is what makes the log
//! tamper-evident against someone who recomputes both: that is the Merkle
//! tree over the entries and its signed heads. `len` is bounded by
//! [`MAX_ENTRY_LEN`] before anything is allocated for it.

use std::fmt;
use std::io::{self, Read};

use aws_lc_rs::digest;
use seqshield_merkle::Hash;

/// Magic bytes that open every audit log file (PNG-style, like the
/// container format's: a high-bit byte, CR LF and ^Z catch text-mode and
/// 7-bit transfer damage).
pub const MAGIC: [u8; 8] = [0x89, b'S', b'Q', b'A', b'\r', b'\n', 0x1a, b'\n'];

/// Largest entry, in bytes (64 KiB). Every event the builder accepts is
/// smaller (a test pins that); a reader refuses larger lengths unread.
pub const MAX_ENTRY_LEN: usize = 64 * 1024;

/// Bytes a record adds to its entry: the length, the chain and the checksum.
pub const RECORD_OVERHEAD: usize = 4 + CHAIN_LEN + 4;

/// Length of the chain hash.
pub const CHAIN_LEN: usize = 32;

/// Domain-separation prefix of chain hashes (RFC 9162 uses 0x00 and 0x01).
pub const CHAIN_PREFIX: u8 = 0x02;

/// The chain value before the first record.
pub const GENESIS: Hash = [0; 32];

/// `SHA-256(0x02 ‖ prev ‖ leaf)`: the chain value of a record whose entry
/// has leaf hash `leaf`, after a record with chain value `prev`.
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = CHAIN_PREFIX;
    buf[1..33].copy_from_slice(prev);
    buf[33..].copy_from_slice(leaf);
    digest::digest(&digest::SHA256, &buf).as_ref().try_into().expect("SHA-256 digests are 32 bytes")
}

/// Appends the first part of a record (length and entry) to `out`;
/// returns the checksum so far, for [`encode_tail`]. The appender does this
/// part; the chain value is only known once the record has its place.
///
/// # Panics
///
/// If `entry` is longer than [`MAX_ENTRY_LEN`]; callers check.
pub fn encode_head(entry: &[u8], out: &mut Vec<u8>) -> u32 {
    assert!(entry.len() <= MAX_ENTRY_LEN, "entry longer than MAX_ENTRY_LEN");
    let len = (entry.len() as u32).to_be_bytes();
    out.reserve(entry.len() + RECORD_OVERHEAD);
    out.extend_from_slice(&len);
    out.extend_from_slice(entry);
    crc32c::crc32c_append(crc32c::crc32c(&len), entry)
}

/// Appends the rest of a record (chain value and checksum) to `out`.
pub fn encode_tail(crc_so_far: u32, chain: &Hash, out: &mut Vec<u8>) {
    let crc = crc32c::crc32c_append(crc_so_far, chain);
    out.extend_from_slice(chain);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Appends the whole record for `entry`, with chain value `chain`, to `out`.
pub fn encode(entry: &[u8], chain: &Hash, out: &mut Vec<u8>) {
    let crc = encode_head(entry, out);
    encode_tail(crc, chain, out);
}

/// What is wrong with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The file ends inside the record.
    Truncated,
    /// The length field is above [`MAX_ENTRY_LEN`].
    BadLength(u32),
    /// The checksum does not match.
    BadChecksum,
    /// The record is intact but its chain value does not follow from the
    /// record before it: something was edited, removed, moved or inserted.
    /// Never a crash.
    BrokenChain,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Truncated => f.write_str("record cut short"),
            Damage::BadLength(n) => write!(f, "impossible record length {n}"),
            Damage::BadChecksum => f.write_str("checksum mismatch"),
            Damage::BrokenChain => f.write_str("chain value does not follow from the record before"),
        }
    }
}

/// One step of a [`Scanner`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// An intact record starting at `offset`.
    Record {
        /// File offset of the record (its length field).
        offset: u64,
        /// The entry.
        entry: &'a [u8],
        /// The chain value the record carries (not checked here).
        chain: Hash,
    },
    /// The clean end of the file.
    End,
    /// A damaged record starting at `offset`. Scanning stops here.
    Damaged {
        /// File offset of the record.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
}

/// Reads records one after the other from a reader positioned just after
/// the magic bytes. Wrap files in a `BufReader`.
#[derive(Debug)]
pub struct Scanner<R> {
    reader: R,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> Scanner<R> {
    /// A scanner whose first record starts at file offset `offset`.
    pub fn new(reader: R, offset: u64) -> Self {
        Self { reader, offset, buf: Vec::new() }
    }

    /// The file offset of the next record (after the last intact one).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record.
    pub fn next_record(&mut self) -> io::Result<Step<'_>> {
        let at = self.offset;
        let mut len = [0u8; 4];
        match read_full(&mut self.reader, &mut len)? {
            0 => return Ok(Step::End),
            4 => {}
            _ => return Ok(Step::Damaged { offset: at, damage: Damage::Truncated }),
        }
        let n = u32::from_be_bytes(len);
        if n as usize > MAX_ENTRY_LEN {
            return Ok(Step::Damaged { offset: at, damage: Damage::BadLength(n) });
        }
        let body = n as usize + CHAIN_LEN + 4;
        self.buf.resize(body, 0);
        if read_full(&mut self.reader, &mut self.buf)? < body {
            return Ok(Step::Damaged { offset: at, damage: Damage::Truncated });
        }
        let (covered, crc) = self.buf.split_at(n as usize + CHAIN_LEN);
        let want = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
        if crc32c::crc32c_append(crc32c::crc32c(&len), covered) != want {
            return Ok(Step::Damaged { offset: at, damage: Damage::BadChecksum });
        }
        let (entry, chain) = covered.split_at(n as usize);
        self.offset += body as u64 + 4;
        Ok(Step::Record { offset: at, entry, chain: chain.try_into().expect("CHAIN_LEN bytes") })
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Records = Vec<(u64, Vec<u8>, Hash)>;

    fn scan_all(bytes: &[u8]) -> (Records, Option<(u64, Damage)>) {
        let mut s = Scanner::new(bytes, 0);
        let mut out = Vec::new();
        loop {
            match s.next_record().unwrap() {
                Step::Record { offset, entry, chain } => out.push((offset, entry.to_vec(), chain)),
                Step::End => return (out, None),
                Step::Damaged { offset, damage } => return (out, Some((offset, damage))),
            }
        }
    }

    #[test]
    fn crc32c_check_value() {
        // RFC 3720 §B.4 / the Castagnoli check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn records_round_trip() {
        let mut file = Vec::new();
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        encode(b"one", &a, &mut file);
        encode(&[7u8; MAX_ENTRY_LEN], &b, &mut file);
        encode(b"", &c, &mut file);
        let (records, damage) = scan_all(&file);
        assert_eq!(damage, None);
        assert_eq!(records[0], (0, b"one".to_vec(), a));
        assert_eq!(records[1], (43, vec![7u8; MAX_ENTRY_LEN], b));
        assert_eq!(records[2], (43 + 40 + MAX_ENTRY_LEN as u64, Vec::new(), c));
    }

    #[test]
    fn every_cut_and_every_bit_flip_is_found() {
        // Why: recovery trusts the scanner to stop at the first bad byte.
        let mut file = Vec::new();
        encode(b"first", &GENESIS, &mut file);
        let second = file.len();
        encode(b"second entry", &[9; 32], &mut file);
        for cut in second + 1..file.len() {
            let (records, damage) = scan_all(&file[..cut]);
            assert_eq!(records.len(), 1);
            assert_eq!(damage, Some((second as u64, Damage::Truncated)), "cut at {cut}");
        }
        for byte in second..file.len() {
            for bit in 0..8 {
                let mut bad = file.clone();
                bad[byte] ^= 1 << bit;
                let (records, damage) = scan_all(&bad);
                assert_eq!(records.len(), 1, "flip {byte}.{bit}");
                assert_eq!(damage.map(|d| d.0), Some(second as u64), "flip {byte}.{bit}");
            }
        }
    }

    #[test]
    fn chain_hash_is_domain_separated_sha256() {
        // Independent value: python3 -c "import hashlib;
        // print(hashlib.sha256(b'\x02' + bytes(32) + bytes(range(32))).hexdigest())"
        let leaf: Hash = std::array::from_fn(|i| i as u8);
        assert_eq!(
            hex::encode(chain_hash(&GENESIS, &leaf)),
            "a11e5d0c5270f8f861568bd752cbfa55343971c0fdc54f3d48cbfc86ae982f8d"
        );
        assert_ne!(chain_hash(&GENESIS, &leaf), seqshield_merkle::node_hash(&GENESIS, &leaf));
    }

    #[test]
    fn impossible_lengths_are_refused_unread() {
        let mut file = (MAX_ENTRY_LEN as u32 + 1).to_be_bytes().to_vec();
        file.extend_from_slice(&[0; 16]);
        assert_eq!(scan_all(&file).1, Some((0, Damage::BadLength(MAX_ENTRY_LEN as u32 + 1))));
        // A zero-filled tail (a crash after the size grew, before the data
        // landed) reads as an empty entry with a wrong checksum.
        assert_eq!(scan_all(&[0; 64]).1, Some((0, Damage::BadChecksum)));
    }
}
