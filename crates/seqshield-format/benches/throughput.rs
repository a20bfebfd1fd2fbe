//! In-memory throughput of the writer and readers on a 64 MiB buffer with
//! the default 64 KiB segments: encrypt and decrypt, single-threaded and
//! parallel, for encrypted objects and for integrity-only ones (cases
//! `integrity_*`: plaintext ‖ GMAC tag), and random 4 KiB reads through the
//! seekable reader.
//!
//! `cargo bench -p seqshield-format --bench throughput` (about three
//! minutes); `-- integrity` runs the integrity-only cases alone.
//! Target: at least 5 GB/s single-thread encrypt in release.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::hint::black_box;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seqshield_format::{
    Classification, DataKey, Header, Reader, SealedHeader, StreamReader, WrappedKey, Writer, WriterOptions,
};

/// Plaintext bytes per encrypt or decrypt iteration.
const LEN: usize = 64 << 20;

/// Bytes per random read, and reads per iteration of the seek benchmark.
const READ_LEN: usize = 4096;
const READS: usize = 1024;

struct Setup {
    key: DataKey,
    header: Header,
    plain: Vec<u8>,
    object: Vec<u8>,
    /// The same plaintext as an integrity-only object.
    clear_header: Header,
    clear_object: Vec<u8>,
}

fn setup() -> Setup {
    let key = DataKey::generate();
    let recipient = WrappedKey { key_id: "bench".into(), algorithm: "none".into(), wrapped: vec![0; 32] };
    let header = Header::new(Classification::Controlled, "application/x-fasta", vec![recipient]).expect("valid header");
    // Sequence-like bytes; AES-GCM speed does not depend on them.
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let plain: Vec<u8> = (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"ACGT"[(x & 3) as usize]
        })
        .collect();
    let object = encrypt(&key, &header, &plain, Vec::new(), WriterOptions::default());
    let clear_header = header.clone().with_integrity_only(true);
    let clear_object = encrypt(&key, &clear_header, &plain, Vec::new(), WriterOptions::default());
    Setup { key, header, plain, object, clear_header, clear_object }
}

fn encrypt<W: Write>(key: &DataKey, header: &Header, plain: &[u8], out: W, opts: WriterOptions) -> W {
    let mut w = Writer::with_options(out, header, key, opts).expect("header written");
    w.write_all(plain).expect("in-memory write");
    w.finish().expect("in-memory write").inner
}

/// Benchmark cases: (name, tuning, integrity-only).
fn cases() -> [(&'static str, WriterOptions, bool); 4] {
    [
        ("single", WriterOptions::default(), false),
        ("parallel", WriterOptions::parallel(), false),
        ("integrity_single", WriterOptions::default(), true),
        ("integrity_parallel", WriterOptions::parallel(), true),
    ]
}

impl Setup {
    /// Header and object of one mode.
    fn mode(&self, integrity_only: bool) -> (&Header, &[u8]) {
        if integrity_only {
            (&self.clear_header, &self.clear_object)
        } else {
            (&self.header, &self.object)
        }
    }
}

fn bench_encrypt(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("encrypt_64MiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    for (name, opts, integrity_only) in cases() {
        let (header, object) = s.mode(integrity_only);
        // One output buffer, reused: the benchmark measures the writer, not
        // the allocator.
        let mut out = Vec::with_capacity(object.len());
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encrypt(&s.key, header, black_box(&s.plain), &mut out, opts);
                black_box(&out);
            })
        });
        // Empty when a filter skipped this case.
        assert!(out.is_empty() || out == object, "{name} writer changed the bytes");
        // One-shot in-memory API: seals from the plaintext straight into the output.
        let mut buf = vec![0u8; seqshield_format::encrypted_len(header, LEN as u64) as usize];
        let mut ran = false;
        g.bench_function(format!("{name}_into"), |b| {
            ran = true;
            b.iter(|| {
                seqshield_format::encrypt_into(header, &s.key, black_box(&s.plain), &mut buf, opts)
                    .expect("sized buffer");
                black_box(&buf);
            })
        });
        assert!(!ran || buf == object, "{name} encrypt_into changed the bytes");
    }
    g.finish();
}

fn bench_decrypt(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("decrypt_64MiB_stream");
    g.throughput(Throughput::Bytes(LEN as u64));
    for (name, opts, integrity_only) in cases() {
        let (_, object) = s.mode(integrity_only);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut input = black_box(object);
                let header =
                    SealedHeader::read_from(&mut input).and_then(|h| h.authenticate(&s.key)).expect("authentic header");
                let mut r = StreamReader::with_options(input, &header, &s.key, opts);
                let mut n = 0;
                while let Some(chunk) = r.next_chunk().expect("authentic object") {
                    n += black_box(chunk).len();
                }
                assert_eq!(n, LEN);
            })
        });
    }
    g.finish();
}

fn bench_seek(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("seek_random_4KiB");
    g.throughput(Throughput::Bytes((READS * READ_LEN) as u64));
    let mut r = Reader::new(Cursor::new(s.object.as_slice()), &s.header, &s.key).expect("opens");
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    let offsets: Vec<u64> = (0..READS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % (LEN - READ_LEN) as u64
        })
        .collect();
    let mut buf = vec![0u8; READ_LEN];
    g.bench_function("single", |b| {
        b.iter(|| {
            for &off in &offsets {
                r.seek(SeekFrom::Start(off)).expect("seek");
                r.read_exact(&mut buf).expect("authentic segment");
                black_box(&buf);
            }
        })
    });
    let off = offsets[0] as usize;
    assert_eq!(buf.len(), READ_LEN);
    r.seek(SeekFrom::Start(off as u64)).expect("seek");
    r.read_exact(&mut buf).expect("authentic segment");
    assert_eq!(buf, s.plain[off..off + READ_LEN]);
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let s = setup();
    bench_encrypt(c, &s);
    bench_decrypt(c, &s);
    bench_seek(c, &s);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = throughput
}
criterion_main!(benches);
