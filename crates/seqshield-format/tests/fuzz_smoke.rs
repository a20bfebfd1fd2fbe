//! Stable-toolchain stand-in for the cargo-fuzz targets in `fuzz/`.
//!
//! The target bodies are the fuzz crate's own (`fuzz/src/lib.rs`, included
//! below), driven here by a few thousand deterministic pseudo-random
//! inputs: noise, and single- and multi-byte changes, truncations,
//! extensions and structured edits of a valid object. The bodies panic on
//! any reader output that is not the original plaintext, and on success
//! for any object that is not byte-for-byte the original.
//!
//! `scripts/fuzz-smoke` runs the real fuzzers; it falls back to this file
//! where nightly or cargo-fuzz cannot be had.

#[allow(dead_code, missing_docs, unreachable_pub)]
#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use seqshield_format::limits::{
    HEADER_DIGEST_LEN, HEADER_PREFIX_LEN, MAX_HEADER_BODY_LEN, MAX_RECIPIENTS, MAX_WRAPPED_KEY_LEN, TRAILER_LEN,
};
use seqshield_format::{Classification, DataKey, Header, SealedHeader, WrappedKey, WriterOptions};
use targets::{fixture, STRIDE};

/// SplitMix64: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    /// Between `min` and `max` (exclusive) random bytes.
    fn noise(&mut self, min: usize, max: usize) -> Vec<u8> {
        let n = min + self.below(max - min);
        self.bytes(n)
    }
}

/// One damaged copy of `base`, and whether the damage was a no-op.
fn mutate(rng: &mut Rng, base: &[u8], case: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    match case % 6 {
        // Single-byte change; a zero mask (one case in 256) changes nothing.
        0 => {
            let at = rng.below(v.len());
            v[at] ^= rng.byte();
        }
        // Several bytes, anywhere.
        1 => {
            for _ in 0..2 + rng.below(7) {
                let at = rng.below(v.len());
                v[at] = rng.byte();
            }
        }
        // A burst inside one region.
        2 => {
            let at = rng.below(v.len());
            let n = (1 + rng.below(32)).min(v.len() - at);
            let burst = rng.bytes(n);
            v[at..at + n].copy_from_slice(&burst);
        }
        3 => v.truncate(rng.below(v.len())),
        4 => v.extend(rng.noise(1, 201)),
        // Bytes inserted in the middle.
        _ => {
            let at = rng.below(v.len());
            let ins = rng.noise(1, 41);
            v.splice(at..at, ins);
        }
    }
    v
}

/// A structured edit script for the reader targets (edit mode).
fn edit_script(rng: &mut Rng, flags: u8) -> Vec<u8> {
    let count = 1 + rng.below(3);
    let mut v = vec![flags | 1, count as u8];
    v.extend(rng.bytes(6 * count));
    v
}

#[test]
fn header_parser_survives_random_and_mutated_bytes() {
    let mut rng = Rng(1);
    let f = fixture();
    let base = &f.object[..f.header.encoded_len()];
    targets::header(base);
    for case in 0..1500 {
        let input = match case % 3 {
            0 => rng.noise(0, 300),
            // Noise behind a valid magic, version and a plausible length.
            1 => {
                let mut v = base[..10].to_vec();
                v.extend(((40 + rng.below(200)) as u32).to_be_bytes());
                v.extend(rng.noise(0, 300));
                v
            }
            _ => mutate(&mut rng, base, case / 3),
        };
        targets::header(&input);
    }
}

#[test]
fn header_builder_output_always_parses_back() {
    let mut rng = Rng(2);
    for _ in 0..400 {
        let input = rng.bytes(200);
        targets::header_build(&input);
    }
}

#[test]
fn header_new_refuses_headers_that_readers_would_refuse() {
    // Why: the writer must never produce an object no reader can open. 32
    // recipients with 2048-byte wrapped keys pass every per-field bound but
    // make a 65,769-byte body; readers refuse anything over 65,536.
    let recipients = (0..MAX_RECIPIENTS)
        .map(|_| WrappedKey { key_id: "k".into(), algorithm: "a".into(), wrapped: vec![0; MAX_WRAPPED_KEY_LEN] })
        .collect();
    let Ok(header) = Header::new(Classification::Public, "", recipients) else {
        return; // refused up front: the fix
    };
    let body_len = header.encoded_len() - HEADER_PREFIX_LEN - 2 * HEADER_DIGEST_LEN;
    assert!(body_len <= MAX_HEADER_BODY_LEN as usize, "{body_len}-byte body");
    let key = DataKey::generate();
    let bytes = header.encode(&key);
    SealedHeader::parse(&bytes).expect("a header Header::new accepted must parse");
}

#[test]
fn stream_reader_never_releases_altered_plaintext() {
    let mut rng = Rng(3);
    let f = fixture();
    for case in 0..900 {
        let flags = rng.byte() & !1;
        let input = match case % 5 {
            0 => edit_script(&mut rng, flags),
            1 if case % 10 == 1 => [&[flags][..], &rng.noise(0, 600)].concat(),
            // A valid header followed by noise.
            1 => {
                let body = rng.noise(0, 3 * STRIDE);
                [&[flags][..], &f.object[..f.header.encoded_len()], &body].concat()
            }
            _ => [&[flags][..], &mutate(&mut rng, &f.object, case)].concat(),
        };
        targets::stream_reader(&input);
    }
    // The parallel path, on a few damaged objects.
    let opts = WriterOptions { threads: 2, batch_segments: 3 };
    targets::check_stream(&f.object, opts, true, 1);
    for case in 0..12 {
        targets::check_stream(&mutate(&mut rng, &f.object, case), opts, case % 2 == 0, 4096);
    }
}

#[test]
fn seek_reader_never_releases_altered_plaintext() {
    let mut rng = Rng(4);
    let f = fixture();
    let len = (f.object.len() as u16).to_be_bytes();
    for case in 0..900 {
        let ops = rng.noise(3, 40);
        let input = match case % 4 {
            0 => [edit_script(&mut rng, 0), ops].concat(),
            // The fixture, or a same-length change to it: reaches past the
            // length check to the segments.
            1 => {
                let mut o = f.object.clone();
                if case % 8 == 1 {
                    let at = rng.below(o.len());
                    o[at] ^= 1 << rng.below(8);
                }
                [&[0][..], &len, &o, &ops].concat()
            }
            _ => {
                let o = mutate(&mut rng, &f.object, case);
                let n = (o.len() as u16).to_be_bytes();
                [&[0][..], &n, &o, &ops].concat()
            }
        };
        targets::seek_reader(&input);
    }
}

#[test]
fn part_codec_never_authenticates_an_altered_part() {
    let mut rng = Rng(5);
    let f = fixture();
    let wire = &f.object[f.header.encoded_len()..f.object.len() - TRAILER_LEN];
    for case in 0..900 {
        let (first, total) = (rng.byte(), rng.byte());
        let input = match case % 4 {
            0 => [&[1, first, total][..], &edit_script(&mut rng, 1)[1..]].concat(),
            1 => [&[0, first, total][..], &rng.noise(0, 3 * STRIDE)].concat(),
            // Whole segments of the fixture, maybe at the wrong place.
            2 => {
                let from = rng.below(4) * STRIDE;
                let n = rng.below(5) * STRIDE;
                [&[0, first, total][..], &wire[from.min(wire.len())..(from + n).min(wire.len())]].concat()
            }
            _ => [&[0, first, total][..], &mutate(&mut rng, wire, case)].concat(),
        };
        targets::part(&input);
    }
    // The fixture's own parts, every split at the right count.
    for first in 0..4u64 {
        for n in 1..=4 - first {
            let part = &wire[first as usize * STRIDE..((first + n) as usize * STRIDE).min(wire.len())];
            targets::check_part(first, 4, part);
        }
    }
}

#[test]
fn seed_corpora_pass_every_target() {
    // Why: a seed that crashes would make every fuzz run start with a crash.
    for target in targets::TARGETS {
        let seeds = targets::seeds(target);
        assert!(!seeds.is_empty(), "{target}");
        for seed in seeds {
            run(target, &seed);
        }
    }
}

fn run(target: &str, input: &[u8]) {
    match target {
        "header" => targets::header(input),
        "header_build" => targets::header_build(input),
        "stream_reader" => targets::stream_reader(input),
        "seek_reader" => targets::seek_reader(input),
        "part" => targets::part(input),
        other => panic!("unknown target {other}"),
    }
}

/// Writes the seed corpora for `fuzz/` (`fuzz/corpus/<target>/`, or under
/// `$SEQSHIELD_FUZZ_CORPUS`). Run by `scripts/fuzz-smoke`; ignored otherwise
/// because it writes files.
#[test]
#[ignore = "writes fuzz/corpus; run by scripts/fuzz-smoke"]
fn write_seed_corpus() {
    let root = std::env::var_os("SEQSHIELD_FUZZ_CORPUS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"),
        std::path::PathBuf::from,
    );
    for target in targets::TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus directory");
        for (n, seed) in targets::seeds(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n:02}")), seed).expect("write seed");
        }
    }
}
