//! Validation of object names, dataset names and ids.
//!
//! Names are metadata only (blobs are keyed by id), but downstream tools
//! turn them into file names, shell arguments and report cells, so a name
//! that could traverse a path, hide its real text, or break a line is
//! refused rather than cleaned.

use crate::error::StoreError;

/// Longest object name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest dataset name, in bytes.
pub const MAX_DATASET_LEN: usize = 64;
/// The dataset used when none is given.
pub const DEFAULT_DATASET: &str = "default";

/// Checks an object name: 1–255 bytes; no control, bidirectional or other
/// invisible formatting characters; no backslash; relative, `/`-separated,
/// with no empty, `.` or `..` component.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let bad = |why: &str| Err(StoreError::invalid("name", why));
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad("must be 1 to 255 bytes");
    }
    if let Some(c) = name.chars().find(|&c| is_hidden_or_control(c)) {
        return Err(StoreError::invalid(
            "name",
            format!("contains the control or formatting character U+{:04X}", c as u32),
        ));
    }
    if name.contains('\\') {
        return bad("contains a backslash");
    }
    if name.starts_with('/') {
        return bad("must be relative (it starts with /)");
    }
    if name.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return bad("has an empty, \".\" or \"..\" path component");
    }
    Ok(())
}

/// Checks a dataset name: 1–64 of `A–Z a–z 0–9 . _ -`, not starting with `.`.
pub fn check_dataset(d: &str) -> Result<(), StoreError> {
    let ok = !d.is_empty()
        && d.len() <= MAX_DATASET_LEN
        && !d.starts_with('.')
        && d.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid("dataset", "must be 1 to 64 of A-Z a-z 0-9 . _ - and not start with ."))
    }
}

/// Checks an object id: `obj_` and 32 lowercase hex digits.
pub fn check_id(id: &str) -> Result<(), StoreError> {
    match id.strip_prefix("obj_") {
        Some(hex) if hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => Ok(()),
        _ => Err(StoreError::BadId),
    }
}

/// A fresh random object id.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    seqshield_format::key::fill_random(&mut b);
    format!("obj_{}", hex::encode(b))
}

/// Control characters (C0, DEL, C1), and the invisible formatting
/// characters used to disguise text: bidirectional controls, zero-width
/// characters, line/paragraph separators, the BOM and interlinear marks.
fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_hidden_characters_are_refused() {
        for ok in ["reads.fq.gz", "run1/sample 1.bam", "E. coli 536.fa", "données.vcf"] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            "../etc/passwd",
            "a/../b",
            "/abs",
            "a//b",
            "./a",
            "a/.",
            "a\\b",
            "a\nb",
            "a\rb",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}",
            "bidi\u{202e}gpj.exe",
            "zw\u{200b}j",
            "bom\u{feff}",
            "ls\u{2028}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"x".repeat(256)).is_err());
        check_name(&"x".repeat(255)).unwrap();
    }

    #[test]
    fn datasets_and_ids() {
        check_dataset("ecoli-536_v1.2").unwrap();
        for bad in ["", ".hidden", "a b", "a/b", "ü", &"d".repeat(65)] {
            assert!(check_dataset(bad).is_err(), "{bad:?}");
        }
        let id = new_id();
        check_id(&id).unwrap();
        assert_ne!(id, new_id());
        for bad in ["obj_", "obj_XYZ", "../obj", &id.to_uppercase(), &format!("{id}0")] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
