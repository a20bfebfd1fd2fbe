//! What of an executor's stdout and stderr reaches the task's logs: the
//! tail, with anything that looks like data removed, so that no input
//! content leaks through the logs of a task on sensitive data.
//!
//! Rules, applied line by line to the last [`LOG_TAIL_BYTES`]:
//! - a line that looks like a data record is replaced by a marker: SAM
//!   records (11 or more tab-separated fields), VCF records (8 or more
//!   tab-separated fields, not a `#` header), FASTA/FASTQ records
//!   (sequence, `+` separator or `@read` lines);
//! - any run of 12 or more nucleotide letters (`ACGTN`, either case) left in
//!   a line is replaced by `[sequence]`;
//! - a line that repeats a line of one of the task's inputs (literal
//!   contents, and the first [`INPUT_SCAN_BYTES`] of each staged file) is
//!   removed: the worker keeps 64-bit hashes of those lines, not the lines;
//! - control characters other than tab are dropped and invalid UTF-8 is
//!   replaced.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, Read};
use std::path::Path;

/// Bytes of each stream's end that are kept.
pub const LOG_TAIL_BYTES: usize = 16 * 1024;
/// Shortest nucleotide run that is redacted.
pub const MIN_SEQUENCE_RUN: usize = 12;
/// How much of each staged input file is scanned for lines to suppress.
pub const INPUT_SCAN_BYTES: u64 = 64 << 20;
/// Shortest input line worth suppressing.
pub const MIN_KNOWN_LINE: usize = 8;

/// Hashes of the task's input lines: a log line equal to one is dropped.
#[derive(Default)]
pub struct KnownLines {
    hashes: HashSet<u64>,
    state: std::hash::RandomState,
}

impl KnownLines {
    fn hash(&self, line: &str) -> u64 {
        let mut h = self.state.build_hasher();
        h.write(line.as_bytes());
        h.finish()
    }

    /// Adds the lines of a text (a literal input).
    pub fn add_text(&mut self, text: &str) {
        for l in text.lines().map(str::trim).filter(|l| l.len() >= MIN_KNOWN_LINE) {
            let h = self.hash(l);
            self.hashes.insert(h);
        }
    }

    /// Adds the lines of the first [`INPUT_SCAN_BYTES`] of a file (binary
    /// files add little: their "lines" rarely match printed ones).
    pub fn add_file(&mut self, path: &Path) -> std::io::Result<()> {
        let f = std::fs::File::open(path)?;
        let mut r = std::io::BufReader::new(f.take(INPUT_SCAN_BYTES));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            let line = String::from_utf8_lossy(&buf);
            let t = line.trim();
            if t.len() >= MIN_KNOWN_LINE {
                let h = self.hash(t);
                self.hashes.insert(h);
            }
        }
    }

    fn contains(&self, line: &str) -> bool {
        !self.hashes.is_empty() && self.hashes.contains(&self.hash(line))
    }
}

/// The marker that replaces a data line.
pub const REDACTED_LINE: &str = "[data line redacted]";

fn is_nucleotide(b: u8) -> bool {
    matches!(b, b'A' | b'C' | b'G' | b'T' | b'N' | b'a' | b'c' | b'g' | b't' | b'n')
}

fn looks_like_record(line: &str) -> bool {
    let fields = line.split('\t').count();
    if fields >= 11 || (fields >= 8 && !line.starts_with('#')) {
        return true;
    }
    let t = line.trim();
    if t.len() >= MIN_SEQUENCE_RUN && t.bytes().all(|b| is_nucleotide(b) || b == b'-' || b == b'.') {
        return true;
    }
    // FASTQ: `@name` with no spaces before the first, then `+` lines.
    (t.starts_with('@') && !t.starts_with("@HD") && !t.contains(' ') && t.len() > 1 && !t.contains(':')) || t == "+"
}

fn redact_runs(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        if is_nucleotide(b[i]) {
            let start = i;
            while i < b.len() && is_nucleotide(b[i]) {
                i += 1;
            }
            let word_edge = |j: usize| j >= b.len() || !b[j].is_ascii_alphanumeric();
            if i - start >= MIN_SEQUENCE_RUN && (start == 0 || !b[start - 1].is_ascii_alphanumeric()) && word_edge(i) {
                out.push_str("[sequence]");
            } else {
                out.push_str(&line[start..i]);
            }
        } else {
            let start = i;
            while i < b.len() && !is_nucleotide(b[i]) {
                i += 1;
            }
            out.push_str(&line[start..i]);
        }
    }
    out
}

/// Filters one stream's captured bytes (the whole capture; only the tail is
/// kept). `known`: the task's input lines.
pub fn filter(captured: &[u8], known: &KnownLines) -> String {
    let tail = &captured[captured.len().saturating_sub(LOG_TAIL_BYTES)..];
    let text = String::from_utf8_lossy(tail);
    let cut = captured.len() > LOG_TAIL_BYTES;
    let mut out = String::new();
    if cut {
        out.push_str(&format!("[{} earlier bytes not kept]\n", captured.len() - LOG_TAIL_BYTES));
    }
    // The first line of a cut tail is partial: drop it.
    for (n, raw) in text.lines().enumerate() {
        if cut && n == 0 {
            continue;
        }
        let line: String = raw.chars().filter(|c| !c.is_control() || *c == '\t').collect();
        if known.contains(line.trim()) {
            continue;
        }
        if looks_like_record(&line) {
            out.push_str(REDACTED_LINE);
        } else {
            out.push_str(&redact_runs(&line));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_messages_stay_and_data_goes() {
        let none = KnownLines::default();
        let log = "[M::bwa_idx_load_from_disk] read 0 ALT contigs\n\
                   read1\t0\tchr\t100\t60\t10M\t*\t0\t0\tACGTACGTAC\tIIIIIIIIII\n\
                   chr\t100\t.\tA\tG\t50\tPASS\tDP=10\n\
                   ACGTACGTACGTACGTTTGA\n\
                   warning: odd base in ACGTTGCAACGTGGCA near 12\n\
                   [main] Real time: 0.4 sec\n";
        let f = filter(log.as_bytes(), &none);
        assert!(f.contains("read 0 ALT contigs"), "{f}");
        assert!(f.contains("Real time: 0.4 sec"));
        assert!(!f.contains("ACGTACGTAC") && !f.contains("ACGTTGCAACGTGGCA") && !f.contains("TTGA"), "{f}");
        assert_eq!(f.matches(REDACTED_LINE).count(), 3, "{f}");
        assert!(f.contains("odd base in [sequence] near 12"), "{f}");
        // Words that happen to be made of nucleotide letters are kept.
        assert!(filter(b"can a cat get data\n", &none).contains("can a cat get data"));
    }

    #[test]
    fn only_the_tail_is_kept_and_literal_lines_are_dropped() {
        let big = "x".repeat(100) + "\n";
        let log = big.repeat(1000) + "patient ID 4711 sample\nend\n";
        let mut lit = KnownLines::default();
        lit.add_text("patient ID 4711 sample\n");
        let f = filter(log.as_bytes(), &lit);
        assert!(f.len() <= LOG_TAIL_BYTES + 64);
        assert!(f.starts_with('['), "{}", &f[..40]);
        assert!(!f.contains("4711") && f.ends_with("end\n"));
        assert!(filter(b"\xff\x1b[31mred\n", &KnownLines::default()).contains("[31mred"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.txt");
        std::fs::write(&p, "header\nsample S1 from ward 7\n").unwrap();
        let mut known = KnownLines::default();
        known.add_file(&p).unwrap();
        assert_eq!(filter(b"sample S1 from ward 7\ndone\n", &known), "done\n");
    }
}
