//! Signed tree heads, witness checkpoints and the tamper suite: every way
//! of changing a log must make `verify_log` fail and name the first bad
//! index.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use seqshield_audit::head::{read_heads, HEADS_FILE, KEY_FILE};
use seqshield_audit::merkle::leaf_hash;
use seqshield_audit::record::{self, Scanner, Step, GENESIS, MAGIC};
use seqshield_audit::{
    verify_log, AuditLog, Checkpoint, Decision, Error, Event, HeadPolicy, Problem, Report, SignedTreeHead, Timestamp,
    VerifyOptions,
};
use seqshield_keys::sign::{FileSigner, Signer};

const PASS: &[u8] = b"correct horse battery staple";

/// Key generation costs a scrypt run: two keys for the whole file.
fn keys() -> &'static (Arc<FileSigner>, Arc<FileSigner>, tempfile::TempDir) {
    static KEYS: OnceLock<(Arc<FileSigner>, Arc<FileSigner>, tempfile::TempDir)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let a = FileSigner::init(&dir.path().join("a.pem"), PASS).unwrap();
        let b = FileSigner::init(&dir.path().join("b.pem"), PASS).unwrap();
        (Arc::new(a), Arc::new(b), dir)
    })
}

fn signer() -> Arc<dyn Signer> {
    keys().0.clone()
}

fn other_signer() -> Arc<dyn Signer> {
    keys().1.clone()
}

fn event(i: u64, tag: &str) -> Event {
    Event::builder(Timestamp::from_unix(1_750_000_000 + i).unwrap(), "policy.decision", Decision::Allow)
        .subject(format!("user-{i}"))
        .object(format!("obj-{tag}-{i}"))
        .rule("default")
        .build()
        .unwrap()
}

fn policy(every_entries: u64) -> HeadPolicy {
    HeadPolicy { every_entries, every: Duration::from_secs(3600), ..HeadPolicy::default() }
}

/// A signed log of `n` events with a head every 10 entries, closed.
fn signed_log(dir: &Path, n: u64, signer: Arc<dyn Signer>, tag: &str) {
    let log = AuditLog::open_signed(dir, signer, policy(10)).unwrap();
    for i in 0..n {
        log.append(&event(i, tag)).unwrap();
        if (i + 1) % 10 == 0 {
            log.sign_head().unwrap();
        }
    }
    log.sign_head().unwrap();
}

fn log_file(dir: &Path) -> PathBuf {
    dir.join(seqshield_audit::log::LOG_FILE)
}

/// Each record of the file: (entry, stored chain value).
fn records(dir: &Path) -> Vec<(Vec<u8>, [u8; 32])> {
    let bytes = std::fs::read(log_file(dir)).unwrap();
    let mut s = Scanner::new(&bytes[MAGIC.len()..], MAGIC.len() as u64);
    let mut out = Vec::new();
    loop {
        match s.next_record().unwrap() {
            Step::Record { entry, chain, .. } => out.push((entry.to_vec(), chain)),
            Step::End => return out,
            Step::Damaged { .. } => panic!("damaged"),
        }
    }
}

/// Writes records back, keeping their stored chain values (a careless
/// editor) or recomputing them all (one who knows the format).
fn write_records(dir: &Path, recs: &[(Vec<u8>, [u8; 32])], recompute_chain: bool) {
    let mut out = MAGIC.to_vec();
    let mut chain = GENESIS;
    for (entry, stored) in recs {
        chain = record::chain_hash(&chain, &leaf_hash(entry));
        record::encode(entry, if recompute_chain { &chain } else { stored }, &mut out);
    }
    std::fs::write(log_file(dir), out).unwrap();
}

fn verify(dir: &Path, witness: Option<&Checkpoint>) -> Report {
    verify_log(dir, &VerifyOptions { check_events: true, witness: witness.cloned(), ..VerifyOptions::default() })
        .unwrap()
}

fn first_bad(report: &Report) -> (u64, Option<u64>, Problem) {
    let f = report.first_bad().unwrap_or_else(|| panic!("verify passed: {report:?}"));
    (f.index, f.until, f.problem.clone())
}

/// An edited entry that is still a valid event.
fn edited(entry: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(entry.to_vec()).unwrap().replace("\"allow\"", "\"deny\"");
    assert_ne!(s.as_bytes(), entry);
    Event::from_entry(s.as_bytes()).expect("still a canonical event");
    s.into_bytes()
}

#[test]
fn a_clean_signed_log_verifies_with_every_head() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 95, signer(), "a");
    let r = verify(dir.path(), None);
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.size, 95);
    assert_eq!(r.heads, 11, "one at open, nine by count, one at the end");
    assert_eq!(r.heads_ok, 11);
    assert_eq!(r.latest_ok.as_ref().unwrap().size, 95);
    assert_eq!(r.unsigned_tail, 0);
    assert_eq!(r.key.as_ref().unwrap().0, signer().verifying_key().key_id());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
        signer().verifying_key().to_pem(),
        "the key is published beside the log"
    );
    // Reopening with the same key checks the latest head and goes on.
    let log = AuditLog::open_signed(dir.path(), signer(), policy(10)).unwrap();
    assert_eq!(log.latest_head().unwrap().size, 95);
    log.append(&event(95, "a")).unwrap();
    let head = log.sign_head().unwrap();
    assert_eq!(head.size, 96);
    head.verify(signer().verifying_key()).unwrap();
}

#[test]
fn heads_are_signed_text_that_an_other_key_or_any_change_breaks() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 3, signer(), "a");
    let heads = read_heads(&dir.path().join(HEADS_FILE)).unwrap();
    let head: SignedTreeHead = heads.heads.last().unwrap().clone().unwrap();
    let body = head.body();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "seqshield-audit");
    assert_eq!(lines[1], "3");
    assert!(lines[3].starts_with("timestamp "));
    assert_eq!(lines[4], format!("key {} ecdsa-p384-sha384", head.key_id));
    head.verify(signer().verifying_key()).unwrap();
    assert!(head.verify(other_signer().verifying_key()).is_err());
    for change in 0..4 {
        let mut h = head.clone();
        match change {
            0 => h.size += 1,
            1 => h.root[0] ^= 1,
            2 => h.timestamp_ms += 1,
            _ => h.origin.push('x'),
        }
        assert!(h.verify(signer().verifying_key()).is_err(), "change {change}");
    }
    // A key that signed is refused for a log another key signs.
    assert!(matches!(AuditLog::open_signed(dir.path(), other_signer(), policy(10)), Err(Error::BadHead { .. })));
}

#[test]
fn the_timer_signs_by_count_by_time_and_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        AuditLog::open_signed(
            dir.path(),
            signer(),
            HeadPolicy { every_entries: 50, every: Duration::from_millis(200), ..HeadPolicy::default() },
        )
        .unwrap(),
    );
    let timer = log.start_head_timer().unwrap();
    for i in 0..120 {
        log.append(&event(i, "t")).unwrap();
    }
    // By count: at least 100 covered soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.latest_head().unwrap().size < 100 {
        assert!(std::time::Instant::now() < deadline, "no head by count");
        std::thread::sleep(Duration::from_millis(10));
    }
    // By time: all 120 covered within a few ticks.
    while log.latest_head().unwrap().size < 120 {
        assert!(std::time::Instant::now() < deadline, "no head by time");
        std::thread::sleep(Duration::from_millis(20));
    }
    log.append(&event(120, "t")).unwrap();
    assert_eq!(timer.stop(), None);
    assert_eq!(log.latest_head().unwrap().size, 121, "a last head on stop");
    drop(log);
    let r = verify(dir.path(), None);
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.unsigned_tail, 0);
}

#[test]
fn editing_an_entry_is_caught_at_its_index() {
    for i in [0u64, 17, 59] {
        let dir = tempfile::tempdir().unwrap();
        signed_log(dir.path(), 60, signer(), "a");
        let mut recs = records(dir.path());

        // A careless edit (checksum not fixed).
        let mut bytes = std::fs::read(log_file(dir.path())).unwrap();
        let pos = MAGIC.len() + recs[..i as usize].iter().map(|(e, _)| e.len() + 40).sum::<usize>() + 10;
        bytes[pos] ^= 0x20;
        std::fs::write(log_file(dir.path()), &bytes).unwrap();
        assert_eq!(first_bad(&verify(dir.path(), None)).0, i, "flipped byte in {i}");

        // A valid event, checksum fixed, chain not.
        recs[i as usize].0 = edited(&recs[i as usize].0);
        write_records(dir.path(), &recs, false);
        let (index, until, problem) = first_bad(&verify(dir.path(), None));
        assert_eq!((index, until, problem), (i, None, Problem::BrokenChain), "edit {i}");

        // Chain recomputed too: only the signed heads catch it, and the
        // first head after it names the range.
        write_records(dir.path(), &recs, true);
        let (index, until, problem) = first_bad(&verify(dir.path(), None));
        assert!(matches!(problem, Problem::HeadMismatch { .. }), "{problem:?}");
        assert!(index <= i && i < until.unwrap(), "{i} in {index}..{until:?}");
        assert_eq!(index, i / 10 * 10, "the last head that still matches");
    }
}

#[test]
fn deleting_reordering_and_inserting_are_caught_at_their_index() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 40, signer(), "a");
    let orig = records(dir.path());

    let mut recs = orig.clone();
    recs.remove(12);
    write_records(dir.path(), &recs, false);
    assert_eq!(first_bad(&verify(dir.path(), None)).0, 12, "delete");

    let mut recs = orig.clone();
    recs.swap(21, 22);
    write_records(dir.path(), &recs, false);
    assert_eq!(first_bad(&verify(dir.path(), None)).0, 21, "swap");

    let mut recs = orig.clone();
    recs.insert(30, (event(999, "x").to_entry(), [7; 32]));
    write_records(dir.path(), &recs, false);
    assert_eq!(first_bad(&verify(dir.path(), None)).0, 30, "insert");

    // The same with every chain value recomputed: the heads still object.
    for (name, recs) in [
        ("delete", {
            let mut r = orig.clone();
            r.remove(12);
            r
        }),
        ("swap", {
            let mut r = orig.clone();
            r.swap(21, 22);
            r
        }),
        ("insert", {
            let mut r = orig.clone();
            r.insert(30, (event(999, "x").to_entry(), [0; 32]));
            r
        }),
    ] {
        write_records(dir.path(), &recs, true);
        let r = verify(dir.path(), None);
        let (index, until, _) = first_bad(&r);
        let at = match name {
            "delete" => 12,
            "swap" => 21,
            _ => 30,
        };
        assert!(index <= at && at < until.unwrap(), "{name}: {at} in {index}..{until:?}");
    }
}

#[test]
fn truncating_the_log_is_caught_at_the_first_missing_index() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 50, signer(), "a");
    let recs = records(dir.path());
    write_records(dir.path(), &recs[..33], false);
    let (index, until, problem) = first_bad(&verify(dir.path(), None));
    assert_eq!((index, until), (33, Some(40)), "{problem:?}");
    assert!(matches!(problem, Problem::Missing { size: 40 }));
    // Cut inside a record: the torn bytes are the first bad index.
    let mut bytes = std::fs::read(log_file(dir.path())).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(log_file(dir.path()), &bytes).unwrap();
    assert_eq!(first_bad(&verify(dir.path(), None)).0, 32);
    // And a signed log does not reopen short of its latest head.
    write_records(dir.path(), &recs[..33], false);
    assert!(matches!(
        AuditLog::open_signed(dir.path(), signer(), policy(10)),
        Err(Error::HeadBeyondLog { size: 50, len: 33, .. })
    ));
}

#[test]
fn a_rewrite_re_signed_with_a_fresh_key_fails_against_the_witness() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 30, signer(), "a");
    let witness_path = dir.path().join("witness.json");
    Checkpoint::of_log(dir.path(), &VerifyOptions::default()).unwrap().write(&witness_path).unwrap();
    let witness = Checkpoint::read(&witness_path).unwrap();
    assert_eq!(witness.head().size, 30);
    assert!(verify(dir.path(), Some(&witness)).ok());

    // The operator rewrites everything from entry 7 on, with a fresh key, a
    // fresh key file and fresh heads: consistent in itself.
    let forged = tempfile::tempdir().unwrap();
    let log = AuditLog::open_signed(forged.path(), other_signer(), policy(10)).unwrap();
    for i in 0..30 {
        log.append(&event(i, if i < 7 { "a" } else { "forged" })).unwrap();
    }
    log.sign_head().unwrap();
    drop(log);
    assert!(verify(forged.path(), None).ok(), "self-consistent without a witness");

    let r = verify(forged.path(), Some(&witness));
    assert!(r.findings.iter().any(|f| matches!(f.problem, Problem::WitnessKey { .. })), "{:?}", r.findings);
    assert!(r.findings.iter().any(|f| f.index == 7 && matches!(f.problem, Problem::WitnessMismatch { .. })));
    // With the old key pinned instead, every head is refused.
    let pinned = verify_log(
        forged.path(),
        &VerifyOptions { key: Some(signer().verifying_key().clone()), ..VerifyOptions::default() },
    )
    .unwrap();
    assert_eq!(first_bad(&pinned).0, 0);
    assert!(matches!(first_bad(&pinned).2, Problem::BadHead { number: 1, .. }));
}

#[test]
fn a_fork_after_the_witness_checkpoint_is_caught_at_the_fork() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 25, signer(), "a");
    let witness = Checkpoint::of_log(dir.path(), &VerifyOptions::default()).unwrap();

    // Same key (the operator has it), same first 18 entries, then another
    // history, longer than the one the witness saw; every head re-signed.
    let fork = tempfile::tempdir().unwrap();
    signed_log(fork.path(), 40, signer(), "a");
    let mut recs = records(fork.path());
    for r in recs.iter_mut().skip(18) {
        r.0 = edited(&r.0);
    }
    std::fs::remove_file(fork.path().join(HEADS_FILE)).unwrap();
    write_records(fork.path(), &recs, true);
    let log = AuditLog::open_signed(fork.path(), signer(), policy(10)).unwrap();
    log.sign_head().unwrap();
    drop(log);
    assert!(verify(fork.path(), None).ok(), "the fork is consistent in itself");

    let r = verify(fork.path(), Some(&witness));
    let (index, until, problem) = first_bad(&r);
    assert_eq!((index, until), (18, None));
    assert!(matches!(problem, Problem::WitnessMismatch { size: 25 }), "{problem:?}");

    // A log that only grew since the checkpoint passes.
    let log = AuditLog::open_signed(dir.path(), signer(), policy(10)).unwrap();
    log.append(&event(25, "a")).unwrap();
    log.sign_head().unwrap();
    drop(log);
    assert!(verify(dir.path(), Some(&witness)).ok());
}

#[test]
fn witness_files_are_checked_when_read() {
    let dir = tempfile::tempdir().unwrap();
    signed_log(dir.path(), 12, signer(), "a");
    let path = dir.path().join("w.json");
    Checkpoint::of_log(dir.path(), &VerifyOptions::default()).unwrap().write(&path).unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    for (from, to) in
        [("\"size\": 12", "\"size\": 13"), ("seqshield-audit-checkpoint/v1", "v2"), ("\"span\": 1", "\"span\": 2")]
    {
        assert!(good.contains(from), "{from}");
        std::fs::write(&path, good.replace(from, to)).unwrap();
        assert!(matches!(Checkpoint::read(&path), Err(Error::BadCheckpoint(_))), "{from} -> {to}");
    }
    std::fs::write(&path, "x".repeat(2 << 20)).unwrap();
    assert!(matches!(Checkpoint::read(&path), Err(Error::BadCheckpoint(_))));
}

#[test]
fn spans_grow_so_witness_files_stay_small() {
    use seqshield_audit::witness::{span_for, MAX_SPANS};
    assert_eq!(span_for(0), 1);
    assert_eq!(span_for(MAX_SPANS), 1);
    assert_eq!(span_for(MAX_SPANS + 1), 2);
    assert_eq!(span_for(1_000_000), 256);
    assert!(1_000_000 / span_for(1_000_000) <= MAX_SPANS);
}
