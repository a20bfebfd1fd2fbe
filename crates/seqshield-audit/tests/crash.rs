//! kill -9 at random points: an acknowledged event is never dropped.
//!
//! Each iteration starts `audit-appender` (1 to 8 threads, appending until
//! killed; now and then in big `append_all` batches, whose long writes a
//! kill can tear) on the same log directory and SIGKILLs it: mostly 0 to
//! 40 ms after it reported the log open, sometimes at once or 0 to 40 ms
//! after it was started (so kills also land in start-up and in `open`).
//! In about one iteration in four a second appender follows straight away
//! and is killed within 3 ms, while its own `open` recovers what the
//! first left. Then this process opens the log (which cuts any torn tail)
//! and checks:
//!
//! - every event the appenders acknowledged, in every iteration so far, is
//!   at the index it was acknowledged with, under the same id, and the log
//!   is at least that long;
//! - no index was acknowledged twice and no id is in the log twice;
//! - the entries checked in earlier iterations are unchanged (the head at
//!   the earlier size is the earlier head, and a consistency proof links
//!   it to the new one), and every new entry decodes as an event;
//! - `verify_file` accepts the whole file (decoding every entry every
//!   [`FULL_VERIFY_EVERY`] iterations and at the end) and finds the log's
//!   own head.
//!
//! `SEQSHIELD_CRASH_ITERATIONS` (default 200) sets the number of iterations;
//! `SEQSHIELD_CRASH_SEED` replays the random choices of an earlier run (the
//! timing of each kill still differs). `scripts/crash-audit` runs 1,000 in
//! a release build. Logs live under the target directory's `tmp/`; a failed
//! run leaves them there (the first line printed says where).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use seqshield_audit::log::LOG_FILE;
use seqshield_audit::merkle::verify_consistency;
use seqshield_audit::{verify_file, AuditLog, TreeHead};

const APPENDER: &str = env!("CARGO_BIN_EXE_audit-appender");

/// Iterations when `SEQSHIELD_CRASH_ITERATIONS` is unset.
const DEFAULT_ITERATIONS: u64 = 200;

/// Longest an appender runs before it is killed.
const MAX_RUN: Duration = Duration::from_millis(40);

/// Longest a second appender, started on a torn log, runs.
const MAX_RECOVERY_RUN: Duration = Duration::from_millis(3);

/// Largest `--batch` of the big-batch runs (about 225 KB per `append_all`).
const MAX_BIG_BATCH: u64 = 1024;

/// A log that has grown past this size (32 MiB) is closed and the next
/// iteration starts a new one, so that the checks (which read the whole
/// log) stay linear in a long release run. In the default debug run no log
/// gets there.
const MAX_LOG_BYTES: u64 = 32 << 20;

/// A full `verify_file(path, true)` every this many iterations (and after
/// the last); the others verify every record and the head, and decode only
/// the new entries (a full decode each time makes the test quadratic).
const FULL_VERIFY_EVERY: u64 = 16;

/// splitmix64: small, seedable, good enough to pick kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..=max` for these small ranges.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }

    fn duration_upto(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.upto(max.as_micros() as u64))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// When to kill an appender.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after it was started (0: during start-up; a little
    /// later: while `open` scans and recovers the log).
    AfterStart(Duration),
    /// This long after it said, on stderr, that the log is open (while it
    /// appends).
    AfterOpen(Duration),
}

/// What one killed appender left behind.
struct Killed {
    /// `(index, id)` of every complete `ack` line.
    acks: Vec<(u64, String)>,
    status: ExitStatus,
    stderr: String,
    /// Whether it got as far as saying the log was open.
    opened: bool,
}

/// How long to wait for an appender to open the log before giving up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts an appender on `dir`, SIGKILLs it at `kill`, and reads
/// everything it wrote (the acks written before the kill are still in the
/// pipe).
fn run_and_kill(dir: &Path, threads: u64, batch: u64, tag: &str, kill: Kill) -> Killed {
    let mut child = Command::new(APPENDER)
        .arg("--dir")
        .arg(dir)
        .args(["--threads", &threads.to_string(), "--count", "0", "--batch", &batch.to_string(), "--tag", tag])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start audit-appender");
    // Read while it runs, so a full pipe never slows it down.
    let mut stdout = child.stdout.take().expect("piped");
    let out = thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).expect("read the appender's stdout");
        bytes
    });
    // Its first stderr line says the log is open.
    let (opened_tx, opened_rx) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    let err = thread::spawn(move || {
        let mut text = Vec::new();
        for line in stderr.split(b'\n') {
            text.extend(line.expect("read the appender's stderr"));
            text.push(b'\n');
            let _ = opened_tx.send(());
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let opened = match kill {
        Kill::AfterStart(after) => {
            thread::sleep(after);
            opened_rx.try_recv().is_ok()
        }
        // Gone or stuck: the status check says why.
        Kill::AfterOpen(after) => opened_rx.recv_timeout(OPEN_TIMEOUT).is_ok_and(|()| {
            thread::sleep(after);
            true
        }),
    };
    child.kill().expect("SIGKILL"); // std sends SIGKILL on unix
    let status = child.wait().expect("reap");
    let (out, stderr) = (out.join().expect("stdout reader"), err.join().expect("stderr reader"));

    // Only whole lines count: the kill may land inside a write.
    let whole = &out[..out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)];
    let acks = std::str::from_utf8(whole)
        .expect("acks are ASCII")
        .lines()
        .map(|line| match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["ack", index, id] => (index.parse().expect("index"), (*id).to_owned()),
            _ => panic!("not an ack line: {line:?} (stderr: {stderr})"),
        })
        .collect();
    Killed { acks, status, stderr, opened }
}

/// Everything checked so far, across iterations.
#[derive(Default)]
struct Seen {
    /// The id of every entry, by index, up to the last checked size.
    ids: Vec<String>,
    by_id: HashMap<String, u64>,
    /// Every acknowledged index, and its id.
    acked: HashMap<u64, String>,
    /// The head at the last check.
    head: Option<TreeHead>,
}

impl Seen {
    fn ack(&mut self, index: u64, id: String) {
        if let Some(old) = self.acked.insert(index, id.clone()) {
            panic!("index {index} acknowledged twice: {old} and {id}");
        }
    }

    /// Opens the log (recovering it) and checks it against everything
    /// acknowledged so far. Returns whether opening cut a torn tail.
    fn check(&mut self, dir: &Path, decode_all: bool) -> bool {
        let log = AuditLog::open(dir).unwrap_or_else(|e| panic!("open after a kill: {e}"));
        let torn = log.torn_tail().is_some();
        let head = log.tree_head();

        // Entries checked before are unchanged.
        if let Some(old) = self.head {
            assert!(head.size >= old.size, "the log shrank from {} to {} entries", old.size, head.size);
            assert_eq!(log.root_at(old.size).unwrap(), old.root, "the first {} entries changed", old.size);
            let proof = log.consistency_proof(old.size, head.size).unwrap();
            assert!(verify_consistency(old.size, head.size, &old.root, &head.root, &proof));
        }
        // New entries: each a well-formed event with an id never seen.
        for index in self.ids.len() as u64..head.size {
            let event = log.event(index).unwrap_or_else(|e| panic!("entry {index}: {e}"));
            let id = event.object().expect("appender events have an object").to_owned();
            assert_eq!(event.request_id(), Some(id.as_str()), "entry {index}");
            if let Some(first) = self.by_id.insert(id.clone(), index) {
                panic!("id {id} is in the log twice: at {first} and {index}");
            }
            self.ids.push(id);
        }
        // Every acknowledgement, old and new. `ids` stands for the file:
        // its older part was read from entries that the root check above
        // just showed unchanged.
        for (&index, id) in &self.acked {
            match self.ids.get(index as usize) {
                Some(found) => assert_eq!(found, id, "entry {index} is not the acknowledged event"),
                None => panic!("acknowledged entry {index} ({id}) is gone: the log has {} entries", head.size),
            }
        }
        drop(log);

        let v = verify_file(&dir.join(LOG_FILE), decode_all).unwrap_or_else(|e| panic!("verify: {e}"));
        assert_eq!((v.size, v.root), (head.size, head.root), "verify_file and the log disagree");
        self.head = Some(head);
        torn
    }
}

fn torn_files(dir: &Path) -> usize {
    let prefix = format!("{LOG_FILE}.torn-");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

/// Counts for the summary.
#[derive(Default)]
struct Tally {
    runs: u64,
    /// Killed before the log was open.
    in_open: u64,
    /// Killed before their first ack.
    silent: u64,
    acks: u64,
    /// Iterations whose check cut a torn tail.
    torn_iterations: u64,
    /// Torn tails cut by an appender's own open (after an earlier kill).
    torn_by_appender: u64,
}

#[test]
fn kill_9_never_drops_an_acknowledged_event() {
    let iterations = env_u64("SEQSHIELD_CRASH_ITERATIONS").unwrap_or(DEFAULT_ITERATIONS);
    let seed = env_u64("SEQSHIELD_CRASH_SEED").unwrap_or_else(fresh_seed);
    let base: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("audit-crash-{seed:016x}"));
    let _ = std::fs::remove_dir_all(&base);
    println!(
        "crash test: {iterations} iterations, seed {seed} (replay: SEQSHIELD_CRASH_SEED={seed}), logs in {}",
        base.display()
    );

    let start = Instant::now();
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let (mut logs, mut entries, mut bytes, mut torn_saved) = (0u64, 0u64, 0u64, 0usize);
    let mut dir = base.join("log-0");
    let mut seen = Seen::default();
    for i in 0..iterations {
        // Mostly while appending; sometimes at once (start-up) or while
        // open reads the log.
        let kill = match rng.upto(7) {
            0 => Kill::AfterStart(Duration::ZERO),
            1 => Kill::AfterStart(rng.duration_upto(MAX_RUN)),
            _ => Kill::AfterOpen(rng.duration_upto(MAX_RUN)),
        };
        let mut plan = vec![kill];
        if rng.upto(3) == 0 {
            // Straight on, before this process recovers the log.
            plan.push(Kill::AfterStart(rng.duration_upto(MAX_RECOVERY_RUN)));
        }
        for (r, kill) in plan.into_iter().enumerate() {
            let threads = 1 + rng.upto(7);
            // Now and then big batches, whose long writes a kill can tear.
            let batch = if rng.upto(3) == 0 { 64 + rng.upto(MAX_BIG_BATCH - 64) } else { 1 + rng.upto(15) };
            let killed = run_and_kill(&dir, threads, batch, &format!("i{i}r{r}"), kill);
            assert_eq!(
                killed.status.signal(),
                Some(9),
                "iteration {i}: the appender was to die by SIGKILL, not {:?}; its stderr:\n{}",
                killed.status,
                killed.stderr
            );
            tally.runs += 1;
            tally.in_open += u64::from(!killed.opened);
            tally.silent += u64::from(killed.acks.is_empty());
            tally.torn_by_appender += u64::from(killed.stderr.contains("cut a torn tail"));
            tally.acks += killed.acks.len() as u64;
            for (index, id) in killed.acks {
                seen.ack(index, id);
            }
        }
        let size = std::fs::metadata(dir.join(LOG_FILE)).map_or(0, |m| m.len());
        let last = i + 1 == iterations || size > MAX_LOG_BYTES;
        let full = last || i % FULL_VERIFY_EVERY == FULL_VERIFY_EVERY - 1;
        tally.torn_iterations += u64::from(seen.check(&dir, full));
        if last {
            logs += 1;
            entries += seen.head.expect("checked").size;
            bytes += std::fs::metadata(dir.join(LOG_FILE)).unwrap().len();
            torn_saved += torn_files(&dir);
            dir = base.join(format!("log-{logs}"));
            seen = Seen::default();
        }
    }

    let Tally { runs, in_open, silent, acks, torn_iterations, torn_by_appender } = tally;
    println!(
        "crash test: {iterations} iterations in {:.1} s: {runs} appenders killed, {in_open} of them before the log was open \
         and {silent} before their first ack",
        start.elapsed().as_secs_f64()
    );
    println!(
        "crash test: {acks} acknowledged events, all present; {logs} logs, {entries} entries, {bytes} bytes; torn tail \
         cut in {torn_iterations} iterations (and by {torn_by_appender} appenders), {torn_saved} torn tails saved"
    );
    // Not vacuous: the appenders got well past opening the log.
    assert!(acks > iterations, "only {acks} acks in {iterations} iterations: the kills proved nothing");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn the_appender_refuses_bad_usage_with_status_2() {
    let help = Command::new(APPENDER).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8(help.stdout).unwrap().starts_with("usage: audit-appender --dir DIR"));
    for bad in
        [&[][..], &["--threads", "2"], &["--dir"], &["--dir", "d", "--threads", "0"], &["--dir", "d", "--tag", "a.b"]]
    {
        let out = Command::new(APPENDER).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "usage errors go to stderr");
        assert!(String::from_utf8(out.stderr).unwrap().contains("usage:"), "{bad:?}");
    }
}

#[test]
fn the_appender_acknowledges_exactly_what_it_appended() {
    // Why: the crash test trusts every ack line to name a durable event.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(APPENDER)
        .arg("--dir")
        .arg(dir.path())
        .args(["--threads", "3", "--count", "10", "--batch", "4"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut acks: Vec<(u64, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let [ack, index, id] = l.split(' ').collect::<Vec<_>>()[..] else { panic!("{l:?}") };
            assert_eq!(ack, "ack");
            (index.parse().unwrap(), id.to_owned())
        })
        .collect();
    acks.sort();
    assert_eq!(acks.len(), 30);
    let log = AuditLog::open(dir.path()).unwrap();
    assert_eq!(log.len(), 30);
    for (i, (index, id)) in acks.iter().enumerate() {
        assert_eq!(*index, i as u64);
        assert_eq!(log.event(*index).unwrap().object(), Some(id.as_str()));
    }
    let mut ids: Vec<&String> = acks.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "ids are unique");
    assert!(ids.contains(&&"t2-9".to_owned()));
}
