//! Each kind of damage gets its own, specific error on every read path.

mod common;

use aws_lc_rs::digest;
use common::*;
use seqshield_format::limits::{TAG_LEN, TRAILER_LEN};
use seqshield_format::{DataKey, FormatError, Header, WriterOptions};

const S: usize = SEG as usize;
const STRIDE: usize = S + TAG_LEN;

struct Fixture {
    key: DataKey,
    header: Header,
    plain: Vec<u8>,
    object: Vec<u8>,
}

impl Fixture {
    fn new(segments: usize, integrity_only: bool) -> Self {
        let key = DataKey::generate();
        let header = header_mode(SEG, integrity_only);
        let plain = pattern(segments * S - 100, 9);
        let object = encrypt(&key, &header, &plain, WriterOptions::default());
        Self { key, header, plain, object }
    }
    fn hlen(&self) -> usize {
        self.header.encoded_len()
    }
    fn seg(&self, i: usize) -> std::ops::Range<usize> {
        let start = self.hlen() + i * STRIDE;
        start..(start + STRIDE).min(self.object.len() - TRAILER_LEN)
    }
    fn err(&self, object: &[u8]) -> FormatError {
        decrypt_all_paths(&self.key, object).expect_err("damage went undetected")
    }
}

#[test]
fn intact_object_decrypts() {
    for mode in MODES {
        let f = Fixture::new(6, mode);
        assert_eq!(decrypt_all_paths(&f.key, &f.object).unwrap(), f.plain);
    }
}

#[test]
fn wrong_key_is_a_header_authentication_failure() {
    for mode in MODES {
        let f = Fixture::new(2, mode);
        let e = decrypt_all_paths(&DataKey::generate(), &f.object).unwrap_err();
        assert!(matches!(e, FormatError::HeaderAuthFailed), "{e}");
    }
}

#[test]
fn flipped_bits_name_the_damaged_part() {
    for mode in MODES {
        let f = Fixture::new(6, mode);
        let mut o = f.object.clone();
        o[20] ^= 4;
        assert!(matches!(f.err(&o), FormatError::HeaderCorrupt));
        for i in 0..6 {
            for at in [f.seg(i).start, f.seg(i).end - 1] {
                let mut o = f.object.clone();
                o[at] ^= 0x80;
                match f.err(&o) {
                    FormatError::SegmentAuthFailed { index } => assert_eq!(index, i as u64),
                    e => panic!("segment {i}: {e}"),
                }
            }
        }
        let mut o = f.object.clone();
        let n = o.len();
        o[n - 40] ^= 1;
        assert!(matches!(f.err(&o), FormatError::TrailerAuthFailed));
    }
}

#[test]
fn truncation_is_detected_at_any_cut() {
    for mode in MODES {
        let f = Fixture::new(4, mode);
        for cut in
            [1, TRAILER_LEN, TRAILER_LEN + 1, TRAILER_LEN + STRIDE, f.object.len() - f.hlen(), f.object.len() - 3]
        {
            let o = &f.object[..f.object.len() - cut];
            let e = f.err(o);
            assert!(matches!(e, FormatError::Truncated { .. } | FormatError::TrailerAuthFailed), "cut {cut}: {e}");
        }
        // Cut exactly at a segment boundary, trailer dropped: names the segment.
        let o = &f.object[..f.seg(2).start];
        assert!(matches!(
            decrypt_stream(&f.key, o, WriterOptions::default()),
            Err(FormatError::Truncated { after_segment: Some(1) })
        ));
    }
}

#[test]
fn swapped_segments_are_named_as_misplaced() {
    for mode in MODES {
        let f = Fixture::new(6, mode);
        let mut o = f.object.clone();
        let (a, b) = (f.seg(1), f.seg(3));
        let sa = f.object[a.clone()].to_vec();
        o[a.clone()].copy_from_slice(&f.object[b.clone()]);
        o[b].copy_from_slice(&sa);
        match f.err(&o) {
            FormatError::SegmentMisplaced { index: 1, original: 3 } => {}
            e => panic!("{e}"),
        }
    }
}

#[test]
fn duplicated_segment_is_named_as_misplaced() {
    for mode in MODES {
        let f = Fixture::new(5, mode);
        let mut o = f.object[..f.seg(2).end].to_vec();
        o.extend_from_slice(&f.object[f.seg(2)]);
        o.extend_from_slice(&f.object[f.seg(3).start..]);
        match f.err(&o) {
            FormatError::SegmentMisplaced { index: 3, original: 2 } => {}
            e => panic!("{e}"),
        }
    }
}

#[test]
fn segment_spliced_from_another_object_is_refused() {
    for mode in MODES {
        for other in MODES {
            let f = Fixture::new(5, mode);
            let g = Fixture::new(5, other);
            let mut o = f.object.clone();
            o[f.seg(2)].copy_from_slice(&g.object[g.seg(2)]);
            match f.err(&o) {
                FormatError::SegmentAuthFailed { index: 2 } => {}
                e => panic!("{e}"),
            }
            // Header of one, body of the other.
            let mut o = f.object[..f.hlen()].to_vec();
            o.extend_from_slice(&g.object[g.hlen()..]);
            assert!(matches!(f.err(&o), FormatError::SegmentAuthFailed { index: 0 }));
        }
    }
}

#[test]
fn extension_is_detected() {
    for mode in MODES {
        let f = Fixture::new(3, mode);
        let mut o = f.object.clone();
        o.extend_from_slice(b"appended");
        let e = f.err(&o);
        assert!(matches!(e, FormatError::Extended { index: 2 }), "{e}");
        let mut o = f.object.clone();
        o.extend_from_slice(&f.object[f.seg(0)]);
        let e = f.err(&o);
        assert!(matches!(e, FormatError::Extended { .. } | FormatError::TrailerAuthFailed), "{e}");
    }
}

/// Rewrites a header field and fixes the checksum, as an attacker would.
fn with_field(f: &Fixture, offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut o = f.object.clone();
    o[offset..offset + bytes.len()].copy_from_slice(bytes);
    let signed = f.hlen() - 64;
    let sum = digest::digest(&digest::SHA256, &o[..signed]);
    o[signed..signed + 32].copy_from_slice(sum.as_ref());
    o
}

#[test]
fn header_fields_out_of_bounds_are_named() {
    for mode in MODES {
        let f = Fixture::new(1, mode);
        let body = 14;
        let e = f.err(&with_field(&f, body, &100u32.to_be_bytes()));
        assert!(matches!(e, FormatError::HeaderOutOfBounds { field: "segment_size", value: 100, .. }), "{e}");
        let e = f.err(&with_field(&f, body + 4, &[9]));
        assert!(matches!(e, FormatError::HeaderOutOfBounds { field: "classification", value: 9, .. }), "{e}");
        // A field rewritten with a valid value still fails the MAC.
        let e = f.err(&with_field(&f, body + 4, &[0]));
        assert!(matches!(e, FormatError::HeaderAuthFailed), "{e}");
    }
}

#[test]
fn one_mode_cannot_be_passed_off_as_the_other() {
    // Why: the mode decides whether a reader decrypts or only checks; the
    // flag is in the MACed header, so flipping it (even with the checksum
    // fixed up, as an attacker would) must fail authentication.
    let flags = 14 + 5;
    for mode in MODES {
        let f = Fixture::new(3, mode);
        assert_eq!(f.object[flags], u8::from(mode));
        let mut o = f.object.clone();
        o[flags] ^= 1;
        assert!(matches!(f.err(&o), FormatError::HeaderCorrupt), "{}", mode_name(mode));
        let e = f.err(&with_field(&f, flags, &[u8::from(!mode)]));
        assert!(matches!(e, FormatError::HeaderAuthFailed), "{}: {e}", mode_name(mode));
        // Unknown bits are refused by name, whatever the checksum says.
        for bad in [0x02, 0x81, 0xfe] {
            let e = f.err(&with_field(&f, flags, &[bad | u8::from(mode)]));
            assert!(matches!(e, FormatError::HeaderOutOfBounds { field: "flags", .. }), "{bad:#x}: {e}");
        }
    }
}

#[test]
fn unknown_version_and_foreign_files_are_named() {
    for mode in MODES {
        let f = Fixture::new(1, mode);
        let mut o = f.object.clone();
        o[8..10].copy_from_slice(&7u16.to_be_bytes());
        assert!(matches!(f.err(&o), FormatError::UnsupportedVersion(7)));
        assert!(matches!(f.err(b"crypt4gh\x01\x00\x00\x00 and some more bytes"), FormatError::NotSeqshield));
    }
}

#[test]
fn error_codes_and_segments_are_stable() {
    // Why: scripts parse `--json` errors; these strings are an interface.
    let e = FormatError::SegmentMisplaced { index: 4, original: 2 };
    assert_eq!((e.code(), e.segment()), ("segment_misplaced", Some(4)));
    let e = FormatError::Truncated { after_segment: Some(3) };
    assert_eq!((e.code(), e.segment()), ("truncated", Some(4)));
}

#[test]
fn diagnosis_of_planted_trailer_magic_stays_cheap() {
    // Why: the error path once re-tried decryption at every planted trailer
    // magic, quadratic in the buffered size (found in review, 7 s per object).
    let key = DataKey::generate();
    let h = header(16 * 1024);
    let plain = pattern(40 * 16 * 1024, 5);
    let mut o = encrypt(&key, &h, &plain, WriterOptions::default());
    let magic = seqshield_format::limits::TRAILER_MAGIC;
    let start = h.encoded_len() + 100;
    let end = o.len() - 200;
    for chunk in o[start..end].chunks_mut(magic.len()) {
        let n = chunk.len();
        chunk.copy_from_slice(&magic[..n]);
    }
    let t = std::time::Instant::now();
    for opts in [WriterOptions::default(), WriterOptions { threads: 2, batch_segments: 16 }] {
        assert!(decrypt_stream(&key, &o, opts).is_err());
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
}
