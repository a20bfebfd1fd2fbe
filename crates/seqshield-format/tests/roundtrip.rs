//! Round trips through every writer and reader configuration.

mod common;

use common::*;
use proptest::prelude::*;
use seqshield_format::{DataKey, WriterOptions};

const S: usize = SEG as usize;

#[test]
fn boundary_sizes_round_trip_on_every_path() {
    let key = DataKey::generate();
    let h = header(SEG);
    for len in [0, 1, S - 1, S, S + 1, 2 * S, 7 * S + 3, 40 * S] {
        let plain = pattern(len, len as u64);
        for opts in [WriterOptions::default(), WriterOptions { threads: 2, batch_segments: 4 }] {
            let object = encrypt(&key, &h, &plain, opts);
            assert_eq!(decrypt_all_paths(&key, &object).unwrap(), plain, "len {len} {opts:?}");
        }
    }
}

#[test]
fn single_and_parallel_writers_produce_identical_bytes() {
    // Why: the parallel path must be a pure speed-up, never a format change.
    let key = DataKey::generate();
    let h = header(SEG);
    let plain = pattern(33 * S + 17, 3);
    let a = encrypt(&key, &h, &plain, WriterOptions::default());
    let b = encrypt(&key, &h, &plain, WriterOptions { threads: 2, batch_segments: 5 });
    assert_eq!(a, b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_size_round_trips(len in prop_oneof![0usize..3 * S, Just(S - 1), Just(S), Just(S + 1), (10 * S)..(12 * S)], seed: u64, batch in 1usize..6) {
        let key = DataKey::generate();
        let h = header(SEG);
        let plain = pattern(len, seed);
        let object = encrypt(&key, &h, &plain, WriterOptions { threads: 2, batch_segments: batch });
        prop_assert_eq!(decrypt_all_paths(&key, &object).unwrap(), plain);
    }

    #[test]
    fn any_single_byte_change_is_rejected(len in 0usize..4 * S, seed: u64, pos_frac in 0.0f64..1.0, delta in 1u8..=255) {
        // Why: tamper evidence must hold for every byte of the file —
        // header, every segment, tag and trailer.
        let key = DataKey::generate();
        let h = header(SEG);
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
    let h = header(SEG);
    for len in [0, 1, S - 1, S, S + 1, 9 * S + 7] {
        let plain = pattern(len, 11);
        let streamed = encrypt(&key, &h, &plain, WriterOptions::default());
        for opts in [WriterOptions::default(), WriterOptions { threads: 2, batch_segments: 1 }] {
            let mut out = vec![0u8; seqshield_format::encrypted_len(&h, len as u64) as usize];
            seqshield_format::encrypt_into(&h, &key, &plain, &mut out, opts).unwrap();
            assert_eq!(out, streamed, "len {len}");
        }
    }
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
