//! `seqshield audit …` end to end: logs built with the `seqshield-audit`
//! library, then damaged, edited, forked or re-signed the ways an operator
//! could, and the real binary run over them. Proofs are re-checked here
//! with `seqshield_merkle` against the signed head (whose signature is
//! checked too), and python `cryptography` judges a checkpoint's signature.
//!
//! Under `CI` the python judge must be present; elsewhere a missing one
//! skips its part with a note.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use seqshield_audit::head::HEADS_FILE;
use seqshield_audit::log::LOG_FILE;
use seqshield_audit::merkle::{leaf_hash, root_of, verify_consistency, verify_inclusion, Hash};
use seqshield_audit::record::{self, Scanner, Step, GENESIS, MAGIC};
use seqshield_audit::{AuditLog, Decision, Event, HeadPolicy, SignedTreeHead, Timestamp};
use seqshield_keys::sign::{FileSigner, Signer};
use serde_json::Value;

const PASS: &[u8] = b"audit cli test passphrase";

struct Keys {
    a: Arc<FileSigner>,
    b: Arc<FileSigner>,
    /// `a`'s public key, PEM.
    a_pem: PathBuf,
    _dir: tempfile::TempDir,
}

/// Key generation costs a scrypt run: two keys for the whole file.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let a = FileSigner::init(&dir.path().join("a.pem"), PASS).unwrap();
        let b = FileSigner::init(&dir.path().join("b.pem"), PASS).unwrap();
        let a_pem = dir.path().join("a.pub.pem");
        std::fs::write(&a_pem, a.verifying_key().to_pem()).unwrap();
        Keys { a: Arc::new(a), b: Arc::new(b), a_pem, _dir: dir }
    })
}

fn signer() -> Arc<dyn Signer> {
    keys().a.clone()
}

fn other_signer() -> Arc<dyn Signer> {
    keys().b.clone()
}

fn event(i: u64, tag: &str) -> Event {
    Event::builder(Timestamp::from_unix(1_750_000_000 + i).unwrap(), "policy.decision", Decision::Allow)
        .subject(format!("user-{i}"))
        .object(format!("obj-{tag}-{i}"))
        .rule("default")
        .build()
        .unwrap()
}

fn policy() -> HeadPolicy {
    HeadPolicy { every_entries: 10, every: Duration::from_secs(3600), ..HeadPolicy::default() }
}

/// A signed log of `n` events in `dir` with a head every 10 entries and
/// one at the end, closed.
fn signed_log(dir: &Path, n: u64, signer: Arc<dyn Signer>, tag: &str) {
    let log = AuditLog::open_signed(dir, signer, policy()).unwrap();
    for i in 0..n {
        log.append(&event(i, tag)).unwrap();
        if (i + 1) % 10 == 0 {
            log.sign_head().unwrap();
        }
    }
    log.sign_head().unwrap();
}

/// A gateway data directory whose `audit/` holds a signed log of `n` events.
struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new(n: u64) -> Self {
        let f = Self { tmp: tempfile::tempdir().unwrap() };
        signed_log(&f.log(), n, signer(), "a");
        f
    }
    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
    fn log(&self) -> PathBuf {
        self.data().join("audit")
    }
    fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Each record of the log in `dir`: (entry, stored chain value).
fn records(dir: &Path) -> Vec<(Vec<u8>, Hash)> {
    let bytes = std::fs::read(dir.join(LOG_FILE)).unwrap();
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

/// Writes records back with every checksum and chain value recomputed (an
/// editor who knows the format).
fn write_records(dir: &Path, recs: &[(Vec<u8>, Hash)]) {
    let mut out = MAGIC.to_vec();
    let mut chain = GENESIS;
    for (entry, _) in recs {
        chain = record::chain_hash(&chain, &leaf_hash(entry));
        record::encode(entry, &chain, &mut out);
    }
    std::fs::write(dir.join(LOG_FILE), out).unwrap();
}

/// Flips one byte inside entry `i`'s JSON, checksum left as it is.
fn flip_byte_in_entry(dir: &Path, i: usize) {
    let recs = records(dir);
    let mut bytes = std::fs::read(dir.join(LOG_FILE)).unwrap();
    let pos = MAGIC.len() + recs[..i].iter().map(|(e, _)| e.len() + record::RECORD_OVERHEAD).sum::<usize>() + 4 + 10;
    bytes[pos] ^= 0x20;
    std::fs::write(dir.join(LOG_FILE), &bytes).unwrap();
}

/// Entry `i` edited into another valid event, checksum and chain recomputed.
fn edit_entry(dir: &Path, i: usize) {
    let mut recs = records(dir);
    recs[i].0 = edited(&recs[i].0);
    write_records(dir, &recs);
}

fn edited(entry: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(entry.to_vec()).unwrap().replace("\"allow\"", "\"deny\"");
    assert_ne!(s.as_bytes(), entry);
    Event::from_entry(s.as_bytes()).expect("still a canonical event");
    s.into_bytes()
}

fn sq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seqshield"))
}

fn run(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut c = sq();
    c.args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "exit {}\n{}\n{}", code(out), text(&out.stdout), text(&out.stderr));
}

/// The one JSON object on stdout.
fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

fn hex32(v: &Value) -> Hash {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap().try_into().unwrap()
}

fn hex_list(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hex32).collect()
}

/// `seqshield --json audit verify --log DIR [more]`.
fn verify_json(log: &Path, more: &[(&str, &Path)]) -> (i32, Value) {
    let mut paths = vec![("--log", log)];
    paths.extend_from_slice(more);
    let out = run(&["--json", "audit", "verify"], &paths);
    (code(&out), json(&out))
}

fn checkpoint(log: &Path, out_file: &Path) -> Value {
    let out = run(&["--json", "audit", "checkpoint"], &[("--log", log), ("-o", out_file)]);
    assert_ok(&out);
    json(&out)
}

#[test]
fn verify_passes_a_clean_log_in_words_and_json() {
    let f = Fixture::new(40);
    let lib = seqshield_audit::verify_log(&f.log(), &Default::default()).unwrap();
    assert!(lib.ok());

    // --data-dir DIR reads DIR/audit.
    let out = run(&["audit", "verify"], &[("--data-dir", &f.data())]);
    assert_ok(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains("entries: 40"), "{stdout}");
    assert!(stdout.contains(&format!("root: {}", hex::encode(lib.root))), "{stdout}");
    assert!(stdout.contains(signer().verifying_key().key_id()), "{stdout}");
    // The key came from the log directory: the operator could replace it.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning") && stderr.contains("--witness"), "{stderr}");

    let (rc, v) = verify_json(&f.log(), &[]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["size"], 40);
    assert_eq!(v["root"], hex::encode(lib.root));
    assert_eq!(v["heads"], lib.heads as u64);
    assert_eq!(v["heads_ok"], lib.heads_ok as u64);
    assert!(lib.heads >= 5, "a head every 10 entries");
    assert_eq!(v["key_id"], signer().verifying_key().key_id());
    assert_eq!(v["key_source"], "log_directory");
    assert_eq!(v["unsigned_tail"], 0);
    assert_eq!(v["first_bad_index"], Value::Null);
    assert_eq!(v["findings"], serde_json::json!([]));

    // Entries after the latest head are reported as not yet signed; a
    // pinned key needs no warning.
    let log = AuditLog::open_signed(&f.log(), signer(), policy()).unwrap();
    for i in 40..43 {
        log.append(&event(i, "a")).unwrap();
    }
    drop(log);
    let out = run(&["--json", "audit", "verify"], &[("--log", &f.log().join(LOG_FILE)), ("--key", &keys().a_pem)]);
    assert_ok(&out);
    let v = json(&out);
    assert_eq!((v["size"].as_u64(), v["unsigned_tail"].as_u64()), (Some(43), Some(3)), "{v}");
    assert_eq!(v["key_source"], "given");
    assert!(!text(&out.stderr).contains("warning"), "{}", text(&out.stderr));
}

#[test]
fn verify_names_entry_7_after_a_flipped_byte() {
    let f = Fixture::new(40);
    flip_byte_in_entry(&f.log(), 7);

    let out = run(&["audit", "verify"], &[("--log", &f.log())]);
    assert_eq!(code(&out), 5, "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.lines().any(|l| l == "first bad index: 7"), "{stdout}");
    assert!(stdout.contains("entry 7"), "every finding's message: {stdout}");

    let (rc, v) = verify_json(&f.log(), &[]);
    assert_eq!(rc, 5);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_index"], 7);
    assert_eq!(v["findings"][0]["index"], 7);
    assert_eq!(v["findings"][0]["problem"], "damaged");
    assert_eq!(v["error"]["code"], "audit_verify_failed");
    assert_eq!(v["error"]["exit_code"], 5);
}

#[test]
fn verify_narrows_an_edit_with_fixed_chain_to_a_range_and_a_witness_to_the_entry() {
    let f = Fixture::new(40);
    let witness = f.p("witness.json");
    checkpoint(&f.log(), &witness);
    edit_entry(&f.log(), 7);

    // Checksums and chain recomputed: only the signed heads object, and the
    // first head after the edit names the range.
    let (rc, v) = verify_json(&f.log(), &[]);
    assert_eq!(rc, 5, "{v}");
    let (index, until) = (v["first_bad_index"].as_u64().unwrap(), v["findings"][0]["until"].as_u64());
    assert!(index <= 7 && until.is_some_and(|u| 7 < u), "7 in {index}..{until:?}: {v}");
    assert_eq!(v["findings"][0]["problem"], "head_mismatch");
    let out = run(&["audit", "verify"], &[("--log", &f.log())]);
    assert_eq!(code(&out), 5);
    let want = format!("first bad index: {index} (the bad entry is in {index}..{})", until.unwrap());
    assert!(text(&out.stdout).lines().any(|l| l == want), "{}", text(&out.stdout));

    // The witness's span heads pin it to the entry.
    let (rc, v) = verify_json(&f.log(), &[("--witness", &witness)]);
    assert_eq!(rc, 5);
    assert_eq!(v["first_bad_index"], 7, "{v}");
    assert_eq!(v["findings"][0]["until"], Value::Null);
    assert_eq!(v["key_source"], "witness");
}

#[test]
fn verify_with_a_witness_catches_a_same_key_fork_at_the_fork() {
    let f = Fixture::new(25);
    let witness = f.p("witness.json");
    assert_eq!(checkpoint(&f.log(), &witness)["size"], 25);

    // Same key, same first 18 entries, then another history, longer than
    // the one the witness saw; every head re-signed.
    let fork = f.p("fork");
    signed_log(&fork, 40, signer(), "a");
    let mut recs = records(&fork);
    for r in recs.iter_mut().skip(18) {
        r.0 = edited(&r.0);
    }
    std::fs::remove_file(fork.join(HEADS_FILE)).unwrap();
    write_records(&fork, &recs);
    let log = AuditLog::open_signed(&fork, signer(), policy()).unwrap();
    log.sign_head().unwrap();
    drop(log);

    let (rc, v) = verify_json(&fork, &[]);
    assert_eq!(rc, 0, "consistent in itself: {v}");
    let (rc, v) = verify_json(&fork, &[("--witness", &witness)]);
    assert_eq!(rc, 5, "{v}");
    assert_eq!(v["first_bad_index"], 18);
    assert_eq!(v["findings"][0]["until"], Value::Null);
    assert_eq!(v["findings"][0]["problem"], "witness_mismatch");

    // Replacing the checkpoint with one of the fork is refused too.
    let out = run(&["--json", "audit", "checkpoint"], &[("--log", &fork), ("-o", &witness)]);
    assert_eq!(code(&out), 5, "{}", text(&out.stdout));
    assert_eq!(json(&out)["first_bad_index"], 18);
    assert_eq!(seqshield_audit::Checkpoint::read(&witness).unwrap().head().size, 25, "old checkpoint kept");
}

#[test]
fn verify_with_a_witness_catches_a_rewrite_under_a_fresh_key() {
    let f = Fixture::new(30);
    let witness = f.p("witness.json");
    checkpoint(&f.log(), &witness);

    // Everything from entry 7 on rewritten, with a fresh key, key file and
    // heads: consistent in itself.
    let forged = f.p("forged");
    let log = AuditLog::open_signed(&forged, other_signer(), policy()).unwrap();
    for i in 0..30 {
        log.append(&event(i, if i < 7 { "a" } else { "forged" })).unwrap();
    }
    log.sign_head().unwrap();
    drop(log);
    let (rc, v) = verify_json(&forged, &[]);
    assert_eq!(rc, 0, "{v}");

    let (rc, v) = verify_json(&forged, &[("--witness", &witness)]);
    assert_eq!(rc, 5, "{v}");
    let findings = v["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["problem"] == "witness_key"), "{v}");
    assert!(findings.iter().any(|f| f["problem"] == "witness_mismatch" && f["index"] == 7), "{v}");
    // A pinned key refuses every head as well.
    let (rc, v) = verify_json(&forged, &[("--key", &keys().a_pem)]);
    assert_eq!(rc, 5);
    assert_eq!(v["findings"][0]["problem"], "bad_head", "{v}");
}

#[test]
fn prove_index_gives_a_proof_that_checks_against_the_signed_head() {
    let f = Fixture::new(40);
    let recs = records(&f.log());
    let out = run(&["--json", "audit", "prove", "--index", "7"], &[("--log", &f.log())]);
    assert_ok(&out);
    let v = json(&out);
    assert_eq!((v["index"].as_u64(), v["size"].as_u64()), (Some(7), Some(40)), "latest signed head: {v}");

    // The signed head: signature by the log's key, over this root.
    let sth: SignedTreeHead = serde_json::from_value(v["signed_head"].clone()).unwrap();
    sth.verify(signer().verifying_key()).expect("signed by the log's key");
    assert!(sth.verify(other_signer().verifying_key()).is_err());
    assert_eq!(sth.size, 40);
    assert_eq!(hex32(&v["root"]), sth.root);

    // The entry and its leaf, recomputed from the file.
    let entry = &recs[7].0;
    assert_eq!(hex32(&v["leaf_hash"]), leaf_hash(entry));
    assert_eq!(v["entry"], serde_json::from_slice::<Value>(entry).unwrap());
    let proof = hex_list(&v["proof"]);
    assert!(verify_inclusion(&leaf_hash(entry), 7, 40, &proof, &sth.root));
    assert!(!verify_inclusion(&leaf_hash(&recs[8].0), 7, 40, &proof, &sth.root), "another entry fails");
    assert!(!verify_inclusion(&leaf_hash(entry), 8, 40, &proof, &sth.root), "another index fails");

    // An explicit size that is not a head's: the proof is against that
    // tree's root, unsigned.
    let out = run(&["--json", "audit", "prove", "--index", "7", "--size", "13"], &[("--data-dir", &f.data())]);
    assert_ok(&out);
    let v = json(&out);
    let leaves: Vec<Hash> = recs.iter().map(|(e, _)| leaf_hash(e)).collect();
    assert_eq!(hex32(&v["root"]), root_of(&leaves[..13]));
    assert_eq!(v["signed_head"], Value::Null);
    assert!(verify_inclusion(&leaves[7], 7, 13, &hex_list(&v["proof"]), &root_of(&leaves[..13])));

    // The human form prints the same fields.
    let out = run(&["audit", "prove", "--index", "7"], &[("--log", &f.log())]);
    assert_ok(&out);
    let stdout = text(&out.stdout);
    for field in ["index: 7", "size: 40", "leaf_hash: ", "entry: {", "proof:", "root: ", "signed_head: {"] {
        assert!(stdout.contains(field), "{field}: {stdout}");
    }

    // Bad requests are usage errors.
    for args in [
        &["audit", "prove", "--index", "40"][..],
        &["audit", "prove", "--index", "1", "--size", "41"],
        &["audit", "prove"],
        &["audit", "prove", "--index", "1", "--from", "2"],
    ] {
        let out = run(args, &[("--log", &f.log())]);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn prove_without_a_signed_head_asks_for_a_size() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(tmp.path()).unwrap();
    for i in 0..5 {
        log.append(&event(i, "u")).unwrap();
    }
    drop(log);
    let out = run(&["audit", "prove", "--index", "1"], &[("--log", tmp.path())]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--size"), "{}", text(&out.stderr));
    let out = run(&["audit", "prove", "--index", "1", "--size", "5"], &[("--log", tmp.path())]);
    assert_ok(&out);
}

#[test]
fn prove_from_gives_a_consistency_proof_that_checks() {
    let f = Fixture::new(40);
    let leaves: Vec<Hash> = records(&f.log()).iter().map(|(e, _)| leaf_hash(e)).collect();
    for (from, size) in [(13u64, None), (16, Some(33u64)), (40, None), (0, Some(7))] {
        let mut args = vec!["--json".to_owned(), "audit".into(), "prove".into(), "--from".into(), from.to_string()];
        if let Some(s) = size {
            args.extend(["--size".into(), s.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, &[("--log", &f.log())]);
        assert_ok(&out);
        let v = json(&out);
        let to = size.unwrap_or(40);
        assert_eq!((v["from"].as_u64(), v["to"].as_u64()), (Some(from), Some(to)), "{v}");
        let (from_root, to_root) = (hex32(&v["from_root"]), hex32(&v["to_root"]));
        assert_eq!(from_root, root_of(&leaves[..from as usize]));
        assert_eq!(to_root, root_of(&leaves[..to as usize]));
        let proof = hex_list(&v["proof"]);
        assert!(verify_consistency(from, to, &from_root, &to_root, &proof), "{from} -> {to}");
        if size.is_none() {
            let sth: SignedTreeHead = serde_json::from_value(v["signed_head"].clone()).unwrap();
            sth.verify(signer().verifying_key()).unwrap();
            assert_eq!(sth.root, to_root);
        }
        if from > 0 && from < to {
            let mut wrong = from_root;
            wrong[0] ^= 1;
            assert!(!verify_consistency(from, to, &wrong, &to_root, &proof), "a wrong old root fails");
        }
    }
    let out = run(&["audit", "prove", "--from", "41"], &[("--log", &f.log())]);
    assert_eq!(code(&out), 2);
}

/// Parses JSON lines `{"index":…,"event":…}`.
fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn tail_prints_the_last_events() {
    let f = Fixture::new(40);
    let recs = records(&f.log());
    let out = run(&["audit", "tail", "-n", "3"], &[("--data-dir", &f.data())]);
    assert_ok(&out);
    let got = lines(&out.stdout);
    assert_eq!(got.len(), 3);
    for (line, i) in got.iter().zip(37..40) {
        assert_eq!(line["index"], i);
        assert_eq!(line["event"], serde_json::from_slice::<Value>(&recs[i as usize].0).unwrap());
    }
    let out = run(&["audit", "tail"], &[("--log", &f.log())]);
    assert_ok(&out);
    assert_eq!(lines(&out.stdout).len(), 10, "ten by default");
    let out = run(&["audit", "tail", "-n", "100"], &[("--log", &f.log())]);
    assert_eq!(lines(&out.stdout).len(), 40, "no more than there are");

    // A record being written (torn at the end) is not shown, and is no error
    // for tail or export.
    let (whole, _) = next_record(&f.log(), &event(40, "a"));
    append_raw(&f.log(), &whole[..whole.len() / 2]);
    let out = run(&["audit", "tail", "-n", "3"], &[("--log", &f.log())]);
    assert_ok(&out);
    let got: Vec<Value> = lines(&out.stdout).iter().map(|l| l["index"].clone()).collect();
    assert_eq!(got, [37, 38, 39]);
    assert!(text(&out.stderr).contains("incomplete record"), "{}", text(&out.stderr));
    let out = run(&["audit", "export", "--jsonl"], &[("--log", &f.log())]);
    assert_ok(&out);
    assert_eq!(lines(&out.stdout).len(), 40);
}

/// The record that would follow the log in `dir` for `event`, and its entry.
fn next_record(dir: &Path, event: &Event) -> (Vec<u8>, Vec<u8>) {
    let prev = records(dir).last().map_or(GENESIS, |r| r.1);
    let entry = event.to_entry();
    let mut out = Vec::new();
    record::encode(&entry, &record::chain_hash(&prev, &leaf_hash(&entry)), &mut out);
    (out, entry)
}

fn append_raw(dir: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.join(LOG_FILE)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_data().unwrap();
}

/// Kills a child however the test ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tail_follow_prints_an_event_appended_after_it_started() {
    let f = Fixture::new(20);
    let mut child = Reap(
        sq().args(["audit", "tail", "-n", "1", "--follow", "--log"])
            .arg(f.log())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let first: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(first["index"], 19, "the last event before it started");

    // Appended through the library while tail holds nothing open but a
    // read-only file.
    let log = AuditLog::open_signed(&f.log(), signer(), policy()).unwrap();
    let new = event(20, "new");
    assert_eq!(log.append(&new).unwrap(), 20);
    let line: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(line["index"], 20);
    assert_eq!(line["event"], serde_json::from_slice::<Value>(&new.to_entry()).unwrap());
    drop(log);

    // A record half written is not printed until it is whole.
    let (whole, entry) = next_record(&f.log(), &event(21, "raw"));
    let half = whole.len() / 2;
    append_raw(&f.log(), &whole[..half]);
    assert!(rx.recv_timeout(Duration::from_millis(800)).is_err(), "a torn record was printed");
    append_raw(&f.log(), &whole[half..]);
    let line: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(line["index"], 21);
    assert_eq!(line["event"], serde_json::from_slice::<Value>(&entry).unwrap());
    drop(child);
}

#[test]
fn export_writes_every_event_and_refuses_a_damaged_log() {
    let f = Fixture::new(40);
    let recs = records(&f.log());
    let out_file = f.p("events.jsonl");
    let out = run(&["--json", "audit", "export", "--jsonl"], &[("--log", &f.log()), ("-o", &out_file)]);
    assert_ok(&out);
    assert_eq!(json(&out)["entries"], 40);
    let got = lines(&std::fs::read(&out_file).unwrap());
    assert_eq!(got.len(), recs.len());
    for (i, (line, (entry, _))) in got.iter().zip(&recs).enumerate() {
        assert_eq!(line["index"], i as u64);
        assert_eq!(hex32(&line["leaf_hash"]), leaf_hash(entry));
        let decoded = Event::from_entry(entry).unwrap();
        assert_eq!(line["event"], serde_json::from_slice::<Value>(&decoded.to_entry()).unwrap(), "entry {i}");
    }
    // To stdout, the same lines.
    let out = run(&["audit", "export", "--jsonl"], &[("--data-dir", &f.data())]);
    assert_ok(&out);
    assert_eq!(lines(&out.stdout), got);

    // Without --jsonl: a usage error.
    let out = run(&["audit", "export"], &[("--log", &f.log())]);
    assert_eq!(code(&out), 2);

    // A damaged log: exit 5 naming the entry, and no output file, partial
    // or temporary.
    flip_byte_in_entry(&f.log(), 7);
    let bad_file = f.p("bad.jsonl");
    let out = run(&["--json", "audit", "export", "--jsonl"], &[("--log", &f.log()), ("-o", &bad_file)]);
    assert_eq!(code(&out), 5, "{}", text(&out.stdout));
    let v = json(&out);
    assert_eq!(v["first_bad_index"], 7, "{v}");
    assert_eq!(v["error"]["code"], "audit_log_damaged");
    assert!(!bad_file.exists());
    let left: Vec<String> =
        std::fs::read_dir(f.tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(left.iter().all(|n| n == "data" || n == "events.jsonl"), "{left:?}");

    // An edit with the chain left alone is caught by the chain.
    let f = Fixture::new(20);
    let mut recs = records(&f.log());
    recs[12].0 = edited(&recs[12].0);
    let mut out = MAGIC.to_vec();
    for (entry, chain) in &recs {
        record::encode(entry, chain, &mut out);
    }
    std::fs::write(f.log().join(LOG_FILE), out).unwrap();
    let out = run(&["--json", "audit", "export", "--jsonl"], &[("--log", &f.log()), ("-o", &f.p("x.jsonl"))]);
    assert_eq!(code(&out), 5);
    assert_eq!(json(&out)["first_bad_index"], 12);
    assert!(!f.p("x.jsonl").exists());
}

/// The venv python with `cryptography`, or `None` (skip) outside CI.
fn python() -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let ok = py.exists() && Command::new(&py).args(["-c", "import cryptography"]).status().is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    assert!(std::env::var_os("CI").is_none(), "CI: {} lacks cryptography; run scripts/setup", py.display());
    eprintln!("note: venv python with cryptography missing; outside STH judge not run");
    None
}

fn judge(py: &Path, args: &[&Path]) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/judges/sth_judge.py");
    Command::new(py).arg(script).args(args).output().unwrap()
}

#[test]
fn checkpoint_then_verify_with_it_passes_and_python_checks_its_signature() {
    let f = Fixture::new(33);
    let cp = f.p("witness.json");
    let v = checkpoint(&f.log(), &cp);
    let lib = seqshield_audit::verify_log(&f.log(), &Default::default()).unwrap();
    assert_eq!(v["size"], 33);
    assert_eq!(v["root"], hex::encode(lib.root));
    assert_eq!(v["key_id"], signer().verifying_key().key_id());
    assert_eq!(v["path"], cp.to_str().unwrap());

    let (rc, v) = verify_json(&f.log(), &[("--witness", &cp)]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["key_source"], "witness");

    // The log grows; the checkpoint is replaced by a later one.
    let log = AuditLog::open_signed(&f.log(), signer(), policy()).unwrap();
    log.append(&event(33, "a")).unwrap();
    log.sign_head().unwrap();
    drop(log);
    assert_eq!(checkpoint(&f.log(), &cp)["size"], 34);
    let (rc, _) = verify_json(&f.log(), &[("--witness", &cp)]);
    assert_eq!(rc, 0);

    if let Some(py) = python() {
        let out = judge(&py, &[&cp, &f.log().join(LOG_FILE)]);
        assert_ok(&out);
        let v: Value = serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
        assert_eq!((v["ok"].as_bool(), v["size"].as_u64()), (Some(true), Some(34)), "{v}");
        assert_eq!(v["root_recomputed"], true);
        // A head changed after signing: the judge says no.
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
        doc["head"]["timestamp_ms"] = (doc["head"]["timestamp_ms"].as_u64().unwrap() + 1).into();
        let bad = f.p("bad-witness.json");
        std::fs::write(&bad, doc.to_string()).unwrap();
        assert!(!judge(&py, &[&bad]).status.success(), "the judge accepted a changed head");
    }

    // A damaged log gets no checkpoint.
    flip_byte_in_entry(&f.log(), 7);
    let other = f.p("other.json");
    let out = run(&["--json", "audit", "checkpoint"], &[("--log", &f.log()), ("-o", &other)]);
    assert_eq!(code(&out), 5);
    assert_eq!(json(&out)["first_bad_index"], 7);
    assert!(!other.exists());
}

#[test]
fn where_the_log_is_must_be_said_exactly_once_and_exist() {
    let f = Fixture::new(3);
    let missing = f.p("nowhere");
    for (args, paths) in [
        (&["audit", "verify"][..], &[][..]),
        (&["audit", "verify"], &[("--log", f.log().as_path()), ("--data-dir", f.data().as_path())]),
        (&["audit", "tail"], &[]),
        (&["audit", "export", "--jsonl"], &[("--log", f.log().as_path()), ("--data-dir", f.data().as_path())]),
        (&["audit", "verify"], &[("--log", missing.as_path())]),
        (&["audit", "verify"], &[("--data-dir", f.log().as_path())]), // no audit/ inside
        (&["audit", "verify"], &[("--log", f.log().as_path()), ("--witness", missing.as_path())]),
        (&["audit", "verify"], &[("--log", f.log().as_path()), ("--key", missing.as_path())]),
    ] {
        let out = run(args, paths);
        assert_eq!(code(&out), 2, "{args:?} {paths:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).is_empty());
    }
    let out = run(&["--json", "audit", "verify"], &[("--log", &missing)]);
    assert_eq!(json(&out)["error"]["code"], "bad_input");
}
