//! Durable appends with N concurrent appenders (group commit), and
//! verifying a 1,000,000-entry log from its file.
//!
//! Targets (issue 4): ≥ 50,000 durable events/s with group commit; verify
//! 1,000,000 entries in < 2 s (the million-entry log is signed, with a head
//! every 1,000 entries, so `verify_log` also checks 1,000 signatures);
//! proofs O(log n) (their sizes are printed).
//!
//!     cargo bench -p seqshield-audit --bench append
//!
//! Files go under the target directory (a real disk: `/tmp` may be tmpfs,
//! where `fdatasync` costs nothing).

#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seqshield_audit::{verify_file, verify_log, AuditLog, Decision, Event, HeadPolicy, Timestamp, VerifyOptions};
use seqshield_keys::sign::{FileSigner, Signer};

/// A typical policy decision (about 330 bytes of entry).
fn event(i: u64) -> Event {
    Event::builder(Timestamp::from_unix(1_700_000_000 + i).unwrap(), "policy.decision", Decision::Deny)
        .subject(format!("user-{}", i % 1000))
        .client("seqshield-cli")
        .source(Some([10, 1, (i >> 8) as u8, i as u8].into()))
        .request_id(format!("req-{i:016x}"))
        .rule("restricted-data-needs-mfa")
        .reason("MFA required for restricted data")
        .detail("stage", "token")
        .detail("audience", "gateway")
        .detail("scopes", "data:read jobs:submit")
        .detail("classification", "restricted")
        .build()
        .unwrap()
}

fn bench_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_durable");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1));
    // One event per appender, built outside the timing: this measures the
    // log (encoding, hashing, checksum, group commit), not the caller.
    let events: Vec<Event> = (0..1024).map(event).collect();
    for threads in [1u64, 16, 64, 128, 256, 1024] {
        let dir = bench_dir(&format!("audit-bench-append-{threads}"));
        let _ = std::fs::remove_dir_all(&dir);
        let log = Arc::new(AuditLog::open(&dir).unwrap());
        g.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(threads);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let (log, event) = (&log, &events[t as usize]);
                        s.spawn(move || {
                            for _ in 0..per {
                                log.append(event).unwrap();
                            }
                        });
                    }
                });
                // Report per requested iteration (the extra appends of the
                // rounding are at most threads - 1).
                start.elapsed().mul_f64(iters as f64 / (per * threads) as f64)
            });
        });
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

const VERIFY_ENTRIES: u64 = 1_000_000;

const PASS: &[u8] = b"bench passphrase";

/// The head-signing key of the bench logs, kept beside them.
fn signer() -> Arc<dyn Signer> {
    let path = bench_dir("audit-bench-sth-key.pem");
    if path.exists() {
        return Arc::new(FileSigner::open(&path, PASS).unwrap());
    }
    let _ = std::fs::remove_file(FileSigner::public_path(&path));
    Arc::new(FileSigner::init(&path, PASS).unwrap())
}

/// A signed log of [`VERIFY_ENTRIES`] events with a head every 1,000,
/// built once and kept in the target directory.
fn million_log() -> PathBuf {
    let dir = bench_dir("audit-bench-1m");
    let path = dir.join(seqshield_audit::log::LOG_FILE);
    let ok = verify_log(&dir, &VerifyOptions::default())
        .is_ok_and(|r| r.ok() && r.size == VERIFY_ENTRIES && r.heads_ok >= 1000);
    if ok {
        return path;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let log = AuditLog::open_signed(&dir, signer(), HeadPolicy::default()).unwrap();
    let chunk = 1_000;
    for start in (0..VERIFY_ENTRIES).step_by(chunk) {
        let events: Vec<Event> = (start..start + chunk as u64).map(event).collect();
        log.append_all(&events).unwrap();
        log.sign_head().unwrap();
    }
    assert_eq!(log.len(), VERIFY_ENTRIES);
    path
}

fn verify(c: &mut Criterion) {
    let path = million_log();
    let bytes = std::fs::metadata(&path).unwrap().len();
    eprintln!("verify: {VERIFY_ENTRIES} entries, {bytes} bytes");
    let mut g = c.benchmark_group("verify_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(VERIFY_ENTRIES));
    let dir = path.parent().unwrap();
    g.bench_function("head_from_file", |b| b.iter(|| verify_file(&path, false).unwrap()));
    g.bench_function("head_and_events_from_file", |b| b.iter(|| verify_file(&path, true).unwrap()));
    let full = VerifyOptions { check_events: true, ..VerifyOptions::default() };
    g.bench_function("verify_log_heads_and_events", |b| {
        b.iter(|| assert!(verify_log(dir, &full).unwrap().ok()));
    });
    g.bench_function("verify_log_heads_only", |b| {
        b.iter(|| assert!(verify_log(dir, &VerifyOptions::default()).unwrap().ok()));
    });
    g.bench_function("open_and_rebuild", |b| b.iter(|| AuditLog::open(path.parent().unwrap()).unwrap().root()));
    g.finish();

    let log = AuditLog::open(path.parent().unwrap()).unwrap();
    let n = log.len();
    for size in [1_000u64, 10_000, 100_000, 1_000_000] {
        let inc = (0..size).step_by((size / 97) as usize).map(|i| log.inclusion_proof(i, size).unwrap().len()).max();
        let con = (1..size).step_by((size / 97) as usize).map(|m| log.consistency_proof(m, size).unwrap().len()).max();
        eprintln!(
            "proof sizes at n = {size}: inclusion ≤ {} hashes, consistency ≤ {} hashes (log2 n = {:.1})",
            inc.unwrap(),
            con.unwrap(),
            (size as f64).log2()
        );
    }
    let mut g = c.benchmark_group("proofs_1m");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("inclusion", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            log.inclusion_proof(i, n).unwrap()
        })
    });
    g.bench_function("consistency", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            log.consistency_proof(i, n).unwrap()
        })
    });
    g.finish();
}

fn sign(c: &mut Criterion) {
    let dir = bench_dir("audit-bench-sign");
    let _ = std::fs::remove_dir_all(&dir);
    let log = AuditLog::open_signed(&dir, signer(), HeadPolicy::default()).unwrap();
    let mut g = c.benchmark_group("sign_head");
    g.sample_size(20).throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("file_key", |b| {
        b.iter(|| {
            i += 1;
            log.append(&event(i)).unwrap();
            log.sign_head().unwrap()
        })
    });
    g.finish();
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, append, verify, sign);
criterion_main!(benches);
