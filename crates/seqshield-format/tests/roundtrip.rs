//! Round trips through every writer and reader configuration.

mod common;

use common::*;
use proptest::prelude::*;
use seqshield_format::limits::{TAG_LEN, TRAILER_LEN};
use seqshield_format::{DataKey, WriterOptions};

const S: usize = SEG as usize;

#[test]
fn boundary_sizes_round_trip_on_every_path() {
    let key = DataKey::generate();
    for mode in MODES {
        let h = header_mode(SEG, mode);
        for len in [0, 1, S - 1, S, S + 1, 2 * S, 7 * S + 3, 40 * S] {
            let plain = pattern(len, len as u64);
            for opts in [WriterOptions::default(), WriterOptions { threads: 2, batch_segments: 4 }] {
                let object = encrypt(&key, &h, &plain, opts);
                assert_eq!(decrypt_all_paths(&key, &object).unwrap(), plain, "{} len {len} {opts:?}", mode_name(mode));
            }
        }
    }
}

#[test]
fn single_and_parallel_writers_produce_identical_bytes() {
    // Why: the parallel path must be a pure speed-up, never a format change.
    let key = DataKey::generate();
    for mode in MODES {
        let h = header_mode(SEG, mode);
        let plain = pattern(33 * S + 17, 3);
        let a = encrypt(&key, &h, &plain, WriterOptions::default());
        let b = encrypt(&key, &h, &plain, WriterOptions { threads: 2, batch_segments: 5 });
        assert_eq!(a, b, "{}", mode_name(mode));
    }
}

#[test]
fn integrity_only_objects_hold_the_plaintext_verbatim() {
    // Why: the mode exists so public data stays readable as is; each
    // segment must be exactly `plaintext ‖ tag`, at the encrypted layout.
    let key = DataKey::generate();
    let clear = header_mode(SEG, true);
    let sealed = header_mode(SEG, false);
    for len in [0, 1, S, 3 * S + 17] {
        let plain = pattern(len, 5);
        let object = encrypt(&key, &clear, &plain, WriterOptions::default());
        let hlen = clear.encoded_len();
        assert_eq!(object.len() as u64, seqshield_format::encrypted_len(&clear, len as u64), "same size as encrypted");
        let wire = &object[hlen..object.len() - TRAILER_LEN];
        let segments: Vec<&[u8]> = wire.chunks(S + TAG_LEN).collect();
        assert_eq!(segments.len(), len.div_ceil(S).max(1));
        for (i, seg) in segments.iter().enumerate() {
            let body = &seg[..seg.len() - TAG_LEN];
            assert_eq!(body, &plain[i * S..(i * S + S).min(len)], "len {len} segment {i}");
        }
        // The encrypted twin hides the plaintext (the first segment's body
        // differs; an empty body has nothing to hide).
        let hidden = encrypt(&key, &sealed, &plain, WriterOptions::default());
        assert_eq!(hidden.len(), object.len());
        if len > 0 {
            let h2 = sealed.encoded_len();
            assert_ne!(&hidden[h2..h2 + len.min(S)], &plain[..len.min(S)]);
        }
    }
}

#[test]
fn integrity_only_objects_export_to_crypt4gh() {
    // `seqshield c4gh export` streams an object through StreamReader into
    // the Crypt4GH encryptor; the mode must make no difference to it.
    use seqshield_format::c4gh::{Decryptor, Encryptor, SecretKey};
    use std::io::{Read, Write};
    let key = DataKey::generate();
    let plain = pattern(5 * S + 9, 8);
    let object = encrypt(&key, &header_mode(SEG, true), &plain, WriterOptions::default());
    let mut input = object.as_slice();
    let h = seqshield_format::SealedHeader::read_from(&mut input).unwrap().authenticate(&key).unwrap();
    let mut r = seqshield_format::StreamReader::new(input, &h, &key);
    let (alice, bob) = (SecretKey::generate(), SecretKey::generate());
    let mut enc = Encryptor::new(Vec::new(), &alice, &[bob.public_key()]).unwrap();
    std::io::copy(&mut r, &mut enc).unwrap();
    enc.flush().unwrap();
    let file = enc.finish().unwrap();
    let mut back = Vec::new();
    Decryptor::new(file.as_slice(), &bob).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, plain);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_size_round_trips(len in prop_oneof![0usize..3 * S, Just(S - 1), Just(S), Just(S + 1), (10 * S)..(12 * S)], seed: u64, batch in 1usize..6, integrity_only: bool) {
        let key = DataKey::generate();
        let h = header_mode(SEG, integrity_only);
        let plain = pattern(len, seed);
        let object = encrypt(&key, &h, &plain, WriterOptions { threads: 2, batch_segments: batch });
        prop_assert_eq!(decrypt_all_paths(&key, &object).unwrap(), plain);
    }

    #[test]
    fn any_single_byte_change_is_rejected(len in 0usize..4 * S, seed: u64, pos_frac in 0.0f64..1.0, delta in 1u8..=255, integrity_only: bool) {
        // Why: tamper evidence must hold for every byte of the file —
        // header, every segment, tag and trailer — in both modes.
        let key = DataKey::generate();
        let h = header_mode(SEG, integrity_only);
        let plain = pattern(len, seed);
        let mut object = encrypt(&key, &h, &plain, WriterOptions::default());
        let pos = ((object.len() as f64) * pos_frac) as usize % object.len();
        object[pos] = object[pos].wrapping_add(delta);
        prop_assert!(decrypt_all_paths(&key, &object).is_err(), "change at byte {} of {} accepted", pos, object.len());
    }
}

#[test]
fn one_shot_encryption_matches_the_writer_byte_for_byte() {
    // Why: encrypt_into is a faster path to the same format, never a variant of it.
    let key = DataKey::generate();
    for h in MODES.map(|mode| header_mode(SEG, mode)) {
        for len in [0, 1, S - 1, S, S + 1, 9 * S + 7] {
            let plain = pattern(len, 11);
            let streamed = encrypt(&key, &h, &plain, WriterOptions::default());
            for opts in [WriterOptions::default(), WriterOptions { threads: 2, batch_segments: 1 }] {
                let mut out = vec![0u8; seqshield_format::encrypted_len(&h, len as u64) as usize];
                seqshield_format::encrypt_into(&h, &key, &plain, &mut out, opts).unwrap();
                assert_eq!(out, streamed, "{} len {len}", mode_name(h.integrity_only()));
            }
        }
    }
    let h = header(SEG);
    let mut short = vec![0u8; 10];
    assert!(seqshield_format::encrypt_into(&h, &key, b"x", &mut short, WriterOptions::default()).is_err());
}

#[test]
fn batch_memory_is_bounded_whatever_the_segment_size() {
    // Why: a reader's segment size comes from the object, i.e. from whoever
    // wrote it; 16 segments of 16 MiB per batch would be 512 MiB per buffer.
    let opts = WriterOptions { threads: 2, batch_segments: 16 };
    assert_eq!(opts.effective_batch(64 * 1024), 16);
    assert_eq!(opts.effective_batch(16 * 1024 * 1024), 1);
    let big = seqshield_format::limits::MAX_SEGMENT_SIZE as usize;
    assert!(opts.effective_batch(big) * big <= seqshield_format::writer::MAX_BATCH_BYTES.max(big));
}
