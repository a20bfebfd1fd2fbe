//! The part codec: a store's view of an object as header, parts of wire
//! bytes, and trailer, in both modes.

mod common;

use common::*;
use proptest::prelude::*;
use seqshield_format::limits::{MAX_SEGMENTS, TAG_LEN, TRAILER_LEN};
use seqshield_format::part::{merkle_root, part_leaves, split_object, wire_range, write_object, PartCodec};
use seqshield_format::trailer::Trailer;
use seqshield_format::{DataKey, FormatError, Header, WriterOptions};

const S: usize = SEG as usize;
const STRIDE: usize = S + TAG_LEN;

/// An object written by `Writer`, and what the store keeps of it.
struct Stored {
    key: DataKey,
    header: Header,
    plain: Vec<u8>,
    object: Vec<u8>,
    codec: PartCodec,
    total: u64,
}

impl Stored {
    fn new(len: usize, integrity_only: bool, seed: u64) -> Self {
        let key = DataKey::generate();
        let header = header_mode(SEG, integrity_only);
        let plain = pattern(len, seed);
        let object = encrypt(&key, &header, &plain, WriterOptions::default());
        let codec = PartCodec::new(&header, &key);
        let total = codec.segment_count(len as u64);
        Self { key, header, plain, object, codec, total }
    }
    fn wire(&self) -> &[u8] {
        split_object(&self.object).unwrap().wire
    }
    fn trailer(&self) -> Trailer {
        self.codec.open_trailer(split_object(&self.object).unwrap().trailer).unwrap()
    }
    /// Wire bytes of segments `first..first + count`.
    fn part(&self, first: u64, count: u64) -> &[u8] {
        let r = wire_range(S, self.plain.len() as u64, first, count);
        &self.wire()[r.start as usize..r.end as usize]
    }
    fn check(&self, first: u64, wire: &[u8]) -> Result<Vec<[u8; 32]>, FormatError> {
        self.codec.check_part(first, self.total, wire)
    }
}

/// Cuts `total` segments into runs of 1..=max segments, from `seed`.
fn splits(total: u64, max: u64, seed: u64) -> Vec<(u64, u64)> {
    let mut x = seed | 1;
    let mut out = Vec::new();
    let mut first = 0;
    while first < total {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (1 + x % max).min(total - first);
        out.push((first, n));
        first += n;
    }
    out
}

/// Checks a `Writer` object part by part along `split`; returns the leaves.
fn recheck(s: &Stored, split: &[(u64, u64)]) -> Vec<[u8; 32]> {
    let mut leaves = Vec::new();
    let mut plain = Vec::new();
    for &(first, n) in split {
        let part = s.part(first, n);
        let checked = s.check(first, part).unwrap();
        assert_eq!(checked.len() as u64, n);
        let keyless = part_leaves(S, first, s.total, s.plain.len() as u64, part).unwrap();
        assert_eq!(keyless, checked, "keyless leaves of part at {first}");
        let before = plain.len();
        assert_eq!(s.codec.open_part(first, s.total, part, &mut plain).unwrap(), checked);
        assert!(plain.len() > before || s.plain.is_empty());
        leaves.extend(checked);
    }
    assert_eq!(plain, s.plain, "open_part plaintext");
    leaves
}

/// Seals `plain` along `split`; returns the wire bytes per part and the leaves.
fn seal(codec: &PartCodec, plain: &[u8], split: &[(u64, u64)]) -> (Vec<Vec<u8>>, Vec<[u8; 32]>) {
    let total = codec.segment_count(plain.len() as u64);
    let mut parts = Vec::new();
    let mut leaves = Vec::new();
    for &(first, n) in split {
        let start = first as usize * S;
        let end = ((first + n) as usize * S).min(plain.len());
        let mut wire = Vec::new();
        leaves.extend(codec.seal_part(first, total, &plain[start..end], &mut wire).unwrap());
        let r = wire_range(S, plain.len() as u64, first, n);
        assert_eq!(wire.len() as u64, r.end - r.start);
        parts.push(wire);
    }
    (parts, leaves)
}

#[test]
fn writer_objects_recheck_part_by_part_to_the_trailers_root() {
    for mode in MODES {
        for len in [0, 1, S - 1, S, S + 1, 5 * S + 3, 24 * S] {
            let s = Stored::new(len, mode, len as u64);
            let t = s.trailer();
            assert_eq!((t.segment_count, t.plaintext_len), (s.total, len as u64));
            assert_eq!(s.codec.wire_len(len as u64), s.wire().len() as u64);
            for seed in 1..4 {
                let leaves = recheck(&s, &splits(s.total, 7, seed));
                assert_eq!(merkle_root(&leaves), t.merkle_root, "{} len {len}", mode_name(mode));
            }
        }
    }
}

#[test]
fn sealed_parts_are_the_writers_bytes_and_assemble_into_a_readable_object() {
    // Why: nonces are deterministic, so a store can resume an interrupted
    // upload by sealing only the missing parts; that only works if any
    // split gives exactly the writer's bytes.
    for mode in MODES {
        for len in [0, 1, S, 3 * S + 5, 17 * S + 100] {
            let s = Stored::new(len, mode, 7);
            let header_bytes = s.header.encode(&s.key);
            for seed in 1..4 {
                let split = splits(s.total, 5, seed);
                let (parts, leaves) = seal(&s.codec, &s.plain, &split);
                assert_eq!(parts.concat(), s.wire(), "{} len {len} split {split:?}", mode_name(mode));
                let trailer =
                    Trailer { segment_count: s.total, plaintext_len: len as u64, merkle_root: merkle_root(&leaves) };
                let sealed_trailer = s.codec.seal_trailer(&trailer);
                assert_eq!(sealed_trailer, *split_object(&s.object).unwrap().trailer);
                let object = write_object(Vec::new(), &header_bytes, &parts, &sealed_trailer).unwrap();
                assert_eq!(object, s.object);
                assert_eq!(decrypt_all_paths(&s.key, &object).unwrap(), s.plain);
            }
        }
    }
}

#[test]
fn a_missing_part_is_resealed_identically() {
    let s = Stored::new(9 * S + 9, false, 3);
    let split = splits(s.total, 3, 5);
    let (parts, _) = seal(&s.codec, &s.plain, &split);
    // A fresh codec (another process, later) re-seals part 1 alone.
    let again = PartCodec::new(&s.header, &s.key);
    let (first, n) = split[1];
    let mut wire = Vec::new();
    let start = first as usize * S;
    again.seal_part(first, s.total, &s.plain[start..start + n as usize * S], &mut wire).unwrap();
    assert_eq!(wire, parts[1]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_split_rechecks_and_reseals(len in 0usize..20 * S, seed: u64, max in 1u64..8, integrity_only: bool) {
        let s = Stored::new(len, integrity_only, seed);
        let split = splits(s.total, max, seed);
        let leaves = recheck(&s, &split);
        prop_assert_eq!(merkle_root(&leaves), s.trailer().merkle_root);
        let (parts, sealed) = seal(&s.codec, &s.plain, &split);
        prop_assert_eq!(sealed, leaves);
        prop_assert_eq!(parts.concat(), s.wire());
    }

    #[test]
    fn any_changed_byte_in_a_part_is_named(len in 1usize..8 * S, seed: u64, at_frac in 0.0f64..1.0, delta in 1u8..=255, integrity_only: bool) {
        let s = Stored::new(len, integrity_only, seed);
        let mut wire = s.wire().to_vec();
        let at = ((wire.len() as f64 * at_frac) as usize).min(wire.len() - 1);
        wire[at] = wire[at].wrapping_add(delta);
        let e = s.check(0, &wire).unwrap_err();
        prop_assert!(matches!(e, FormatError::SegmentAuthFailed { index } if index == (at / STRIDE) as u64), "{}", e);
        let mut out = b"kept".to_vec();
        prop_assert!(s.codec.open_part(0, s.total, &wire, &mut out).is_err());
        prop_assert_eq!(out, b"kept".to_vec(), "open_part appended on error");
    }
}

#[test]
fn check_part_names_every_kind_of_bad_part() {
    for mode in MODES {
        let name = mode_name(mode);
        let s = Stored::new(10 * S + 300, mode, 1); // 11 segments, the last one short
        assert_eq!(s.total, 11);
        // Misplaced: a good part presented at another index.
        let e = s.check(6, s.part(2, 3)).unwrap_err();
        assert!(matches!(e, FormatError::SegmentMisplaced { index: 6, original: 2 }), "{name}: {e}");
        // Foreign: the same positions of another object (either mode).
        for other in MODES {
            let g = Stored::new(10 * S + 300, other, 1);
            let e = s.check(2, g.part(2, 3)).unwrap_err();
            assert!(matches!(e, FormatError::SegmentAuthFailed { index: 2 }), "{name}: {e}");
            let e = s.check(8, g.part(8, 3)).unwrap_err();
            assert!(matches!(e, FormatError::SegmentAuthFailed { index: 8 }), "{name}: {e}");
        }
        // Truncated inside a segment, and cut inside a tag.
        for cut in [1, TAG_LEN, S] {
            let p = s.part(2, 3);
            let e = s.check(2, &p[..p.len() - cut]).unwrap_err();
            assert!(matches!(e, FormatError::PartLength { first_index: 2, index: 4, .. }), "{name} cut {cut}: {e}");
        }
        // Truncated at a segment boundary: a valid shorter part, one leaf
        // short, and the object's root no longer matches.
        let p = s.part(2, 3);
        let leaves = s.check(2, &p[..2 * STRIDE]).unwrap();
        assert_eq!(leaves.len(), 2);
        let mut all = s.check(0, s.part(0, 2)).unwrap();
        all.extend(leaves);
        all.extend(s.check(5, s.part(5, 6)).unwrap());
        assert_ne!(merkle_root(&all), s.trailer().merkle_root);
        // The final part cut at its last boundary: its new last segment is
        // presented as final and was not sealed as final.
        let p = s.part(8, 3);
        let cut = s.check(8, &p[..2 * STRIDE]).unwrap();
        assert_eq!(cut.len(), 2, "a cut final part is a valid non-final part");
        // Oversize: bytes after the final segment. Within a segment's room
        // they lengthen the final segment, which then fails; beyond it they
        // are past the object's end.
        let mut big = s.part(8, 3).to_vec();
        big.extend_from_slice(&[0; 5]);
        let e = s.check(8, &big).unwrap_err();
        assert!(matches!(e, FormatError::SegmentAuthFailed { index: 10 }), "{name}: {e}");
        big.extend_from_slice(&[0; STRIDE]);
        let e = s.check(8, &big).unwrap_err();
        assert!(matches!(e, FormatError::PartLength { index: 11, .. }), "{name}: {e}");
        // More whole segments than the object has from this index.
        let e = s.check(9, s.part(0, 3)).unwrap_err();
        assert!(matches!(e, FormatError::PartLength { index: 11, .. }), "{name}: {e}");
        let e = s.check(11, s.part(0, 1)).unwrap_err();
        assert!(matches!(e, FormatError::PartOutOfRange { first_index: 11, total_segments: 11 }), "{name}: {e}");
        // Empty part.
        let e = s.check(3, &[]).unwrap_err();
        assert!(matches!(e, FormatError::PartLength { index: 3, .. }), "{name}: {e}");
        // A non-final segment presented as the final one.
        let e = s.codec.check_part(3, 4, s.part(3, 1)).unwrap_err();
        assert!(matches!(e, FormatError::Truncated { after_segment: Some(3) }), "{name}: {e}");
        // Too many segments is refused before anything else.
        let e = s.codec.check_part(0, MAX_SEGMENTS + 1, s.part(0, 1)).unwrap_err();
        assert!(matches!(e, FormatError::TooManySegments), "{name}: {e}");
    }
}

#[test]
fn a_final_segment_presented_as_non_final_is_named() {
    for mode in MODES {
        // Full-size final segment: authenticates only as final.
        let s = Stored::new(4 * S, mode, 2);
        let e = s.codec.check_part(3, 5, s.part(3, 1)).unwrap_err();
        assert!(matches!(e, FormatError::Extended { index: 3 }), "{}: {e}", mode_name(mode));
        // Short final segment: cannot even be a whole non-final segment.
        let s = Stored::new(4 * S + 10, mode, 2);
        let e = s.codec.check_part(4, 6, s.part(4, 1)).unwrap_err();
        assert!(matches!(e, FormatError::PartLength { index: 4, .. }), "{}: {e}", mode_name(mode));
    }
}

#[test]
fn seal_part_refuses_misuse_and_appends_nothing() {
    for mode in MODES {
        let codec = PartCodec::new(&header_mode(SEG, mode), &DataKey::generate());
        let plain = pattern(4 * S, 1);
        let mut out = b"x".to_vec();
        let cases: [(u64, u64, &[u8], &str); 8] = [
            (0, 4, &plain[..S + 1], "part_length"), // a short segment that is not the final one
            (0, 2, &plain[..3 * S], "part_length"), // past the final segment
            (1, 2, &plain[..S + 1], "part_length"), // past the final segment, short
            (0, 2, &[], "part_length"),             // empty, not the empty object
            (2, 2, &plain[..S], "part_out_of_range"),
            (5, 2, &plain[..S], "part_out_of_range"),
            (0, 0, &[], "part_out_of_range"),
            (0, MAX_SEGMENTS + 1, &plain[..S], "too_many_segments"),
        ];
        for (first, total, pt, code) in cases {
            let e = codec.seal_part(first, total, pt, &mut out).unwrap_err();
            assert_eq!(e.code(), code, "{} ({first}, {total}, {} bytes): {e}", mode_name(mode), pt.len());
        }
        assert_eq!(out, b"x");
        // The empty object is one empty (final) segment.
        let leaves = codec.seal_part(0, 1, &[], &mut out).unwrap();
        assert_eq!((leaves.len(), out.len()), (1, 1 + TAG_LEN));
        assert_eq!(codec.check_part(0, 1, &out[1..]).unwrap(), leaves);
    }
}

#[test]
fn trailers_authenticate_per_object() {
    let s = Stored::new(3 * S, true, 4);
    let g = Stored::new(3 * S, true, 4);
    let own = split_object(&s.object).unwrap().trailer;
    let foreign = split_object(&g.object).unwrap().trailer;
    assert!(matches!(s.codec.open_trailer(foreign), Err(FormatError::TrailerAuthFailed)));
    assert!(matches!(s.codec.open_trailer(&own[..TRAILER_LEN - 1]), Err(FormatError::Truncated { .. })));
    let mut bad = *own;
    bad[20] ^= 1;
    assert!(matches!(s.codec.open_trailer(&bad), Err(FormatError::TrailerAuthFailed)));
}

#[test]
fn keyless_leaves_cover_tags_and_lengths_not_bodies() {
    // Why: documented limit of part_leaves — a store without the key can
    // recompute the root, but a damaged body under an intact tag keeps it;
    // only check_part (with the key) sees that.
    let s = Stored::new(3 * S + 7, false, 6);
    let len = s.plain.len() as u64;
    let mut wire = s.wire().to_vec();
    let good = part_leaves(S, 0, s.total, len, &wire).unwrap();
    wire[5] ^= 1;
    assert_eq!(part_leaves(S, 0, s.total, len, &wire).unwrap(), good);
    assert!(s.check(0, &wire).is_err());
    wire[S + 3] ^= 1; // segment 0's tag
    assert_ne!(part_leaves(S, 0, s.total, len, &wire).unwrap()[0], good[0]);
    // Layout errors, without a key.
    let w = s.wire();
    let e = part_leaves(S, 0, s.total, len + 1, w).unwrap_err();
    assert!(matches!(e, FormatError::PartLength { index: 3, .. }), "{e}");
    let e = part_leaves(S, 0, s.total + 1, len, w).unwrap_err();
    assert!(matches!(e, FormatError::TrailerMismatch(_)), "{e}");
    let e = part_leaves(100, 0, s.total, len, w).unwrap_err();
    assert!(matches!(e, FormatError::HeaderOutOfBounds { field: "segment_size", .. }), "{e}");
    let e = part_leaves(S, 1, s.total, len, &w[..STRIDE + 1]).unwrap_err();
    assert!(matches!(e, FormatError::PartLength { index: 2, .. }), "{e}");
}

#[test]
fn wire_range_matches_the_layout_and_clamps() {
    let len = 5 * S as u64 + 10;
    let wire = 5 * STRIDE as u64 + 10 + TAG_LEN as u64;
    assert_eq!(wire_range(S, len, 0, 1), 0..STRIDE as u64);
    assert_eq!(wire_range(S, len, 2, 2), 2 * STRIDE as u64..4 * STRIDE as u64);
    assert_eq!(wire_range(S, len, 4, 2), 4 * STRIDE as u64..wire);
    assert_eq!(wire_range(S, len, 4, 100), 4 * STRIDE as u64..wire);
    assert_eq!(wire_range(S, len, 6, 1), wire..wire);
    assert_eq!(wire_range(S, len, u64::MAX, u64::MAX), wire..wire);
    assert_eq!(wire_range(S, 0, 0, 1), 0..TAG_LEN as u64);
    assert_eq!(wire_range(0, 3, 0, 1), 0..1 + TAG_LEN as u64, "segment size 0 does not panic");
}

#[test]
fn parts_check_in_parallel_and_codecs_keep_keys_out_of_debug() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let s = Stored::new(40 * S + 1, false, 9);
    send_sync(&s.codec);
    let split = splits(s.total, 4, 11);
    let serial: Vec<_> = split.iter().map(|&(f, n)| s.check(f, s.part(f, n)).unwrap()).collect();
    let parallel: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = split
            .iter()
            .map(|&(f, n)| {
                let s = &s;
                scope.spawn(move || s.check(f, s.part(f, n)).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(parallel, serial);
    let shown = format!("{:?}", s.codec);
    assert!(shown.contains("segment_size: 1024") && shown.contains("integrity_only: false"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert_eq!(s.codec.segment_size(), S);
    assert!(!s.codec.integrity_only());
    assert!(Stored::new(1, true, 1).codec.integrity_only());
    assert_eq!(s.codec.segment_wire_len(S), STRIDE);
    assert_eq!(
        (s.codec.segment_count(0), s.codec.segment_count(S as u64), s.codec.segment_count(S as u64 + 1)),
        (1, 1, 2)
    );
}
