//! Durable appends with N concurrent appenders (group commit), and
//! verifying a 1,000,000-entry log from its file.
//!
//! Targets (issue 4): ≥ 50,000 durable events/s with group commit; verify
//! 1,000,000 entries (recompute the head from the file) in < 2 s.
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
use seqshield_audit::{verify_file, AuditLog, Decision, Event, Timestamp};

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

/// A log of [`VERIFY_ENTRIES`] events, built once and kept in the target
/// directory.
fn million_log() -> PathBuf {
    let dir = bench_dir("audit-bench-1m");
    let path = dir.join(seqshield_audit::log::LOG_FILE);
    if verify_file(&path, false).is_ok_and(|v| v.size == VERIFY_ENTRIES) {
        return path;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let log = AuditLog::open(&dir).unwrap();
    let chunk = 10_000;
    for start in (0..VERIFY_ENTRIES).step_by(chunk) {
        let events: Vec<Event> = (start..start + chunk as u64).map(event).collect();
        log.append_all(&events).unwrap();
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
    g.bench_function("head_from_file", |b| b.iter(|| verify_file(&path, false).unwrap()));
    g.bench_function("head_and_events_from_file", |b| b.iter(|| verify_file(&path, true).unwrap()));
    g.bench_function("open_and_rebuild", |b| b.iter(|| AuditLog::open(path.parent().unwrap()).unwrap().root()));
    g.finish();

    let log = AuditLog::open(path.parent().unwrap()).unwrap();
    let n = log.len();
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

criterion_group!(benches, append, verify);
criterion_main!(benches);
