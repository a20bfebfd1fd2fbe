//! Single-threaded throughput of the part codec on 8 MiB parts (128
//! segments of the default 64 KiB), for encrypted and integrity-only
//! objects: `seal_part` (plaintext to wire bytes), `check_part`
//! (authenticate wire bytes, no plaintext out) and `open_part`.
//!
//! `cargo bench -p seqshield-format --bench part` (about a minute). A store
//! runs one part per core; multiply by the cores to get its throughput.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seqshield_format::part::PartCodec;
use seqshield_format::{Classification, DataKey, Header, WrappedKey};

/// Plaintext bytes per part.
const PART: usize = 8 << 20;

/// Segments in the benchmark object: the part sits in the middle of it.
const TOTAL: u64 = 1024;

fn part(c: &mut Criterion) {
    let key = DataKey::generate();
    let recipient = WrappedKey { key_id: "bench".into(), algorithm: "none".into(), wrapped: vec![0; 32] };
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let plain: Vec<u8> = (0..PART)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"ACGT"[(x & 3) as usize]
        })
        .collect();
    let mut g = c.benchmark_group("part_8MiB");
    g.throughput(Throughput::Bytes(PART as u64));
    for (mode, integrity_only) in [("encrypted", false), ("integrity", true)] {
        let header = Header::new(Classification::Public, "application/octet-stream", vec![recipient.clone()])
            .expect("valid header")
            .with_integrity_only(integrity_only);
        let codec = PartCodec::new(&header, &key);
        let first = 256;
        let mut wire = Vec::with_capacity(codec.wire_len(PART as u64) as usize);
        let leaves = codec.seal_part(first, TOTAL, &plain, &mut wire).expect("whole segments");
        g.bench_function(format!("seal_part/{mode}"), |b| {
            let mut out = Vec::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                black_box(codec.seal_part(first, TOTAL, black_box(&plain), &mut out).expect("whole segments"));
            })
        });
        g.bench_function(format!("check_part/{mode}"), |b| {
            b.iter(|| {
                let l = codec.check_part(first, TOTAL, black_box(&wire)).expect("authentic part");
                assert_eq!(l.len(), leaves.len());
            })
        });
        g.bench_function(format!("open_part/{mode}"), |b| {
            let mut out = Vec::with_capacity(PART);
            b.iter(|| {
                out.clear();
                black_box(codec.open_part(first, TOTAL, black_box(&wire), &mut out).expect("authentic part"));
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = part
}
criterion_main!(benches);
