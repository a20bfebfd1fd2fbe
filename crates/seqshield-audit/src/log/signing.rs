//! Signing tree heads: on demand, every N entries, every T seconds.
//!
//! [`AuditLog::open_signed`] opens the log with a [`Signer`] and checks the
//! latest head of the heads file against the log (a log shorter than its
//! latest head, or with another root at that size, is refused: entries
//! were lost or changed). [`AuditLog::sign_head`] signs the current head
//! and appends it to the heads file, synced. [`AuditLog::start_head_timer`]
//! starts a thread that signs when [`HeadPolicy::every_entries`] entries
//! have arrived since the last head, or [`HeadPolicy::every`] has passed
//! with new entries, and once more when it is stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use seqshield_keys::sign::Signer;

use super::AuditLog;
use crate::error::Error;
use crate::head::{check_origin, HeadFile, SignedTreeHead, DEFAULT_ORIGIN};

/// When heads are signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadPolicy {
    /// The origin line of every head (which log this is).
    pub origin: String,
    /// Sign once this many entries arrived since the last head.
    pub every_entries: u64,
    /// Sign once this long passed since the last head, if entries arrived.
    pub every: Duration,
}

impl Default for HeadPolicy {
    /// `seqshield-audit`, every 1,000 entries or 10 seconds.
    fn default() -> Self {
        Self { origin: DEFAULT_ORIGIN.to_owned(), every_entries: 1000, every: Duration::from_secs(10) }
    }
}

/// The latest head and the file it went to.
#[derive(Debug)]
struct Heads {
    file: HeadFile,
    latest: Option<SignedTreeHead>,
    signed_at: Instant,
}

#[derive(Debug, Default)]
struct Wake {
    kick: bool,
    stop: bool,
}

pub(super) struct Signing {
    signer: Arc<dyn Signer>,
    policy: HeadPolicy,
    heads: Mutex<Heads>,
    /// Size of the latest head, for the append path's cheap check.
    signed_size: AtomicU64,
    wake: Mutex<Wake>,
    cv: Condvar,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("key_id", &self.signer.verifying_key().key_id())
            .field("policy", &self.policy)
            .field("signed_size", &self.signed_size.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Signing {
    fn heads(&self) -> MutexGuard<'_, Heads> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called after each append: wake the timer when a head is due by count.
    pub(super) fn appended(&self, len: u64) {
        if len.saturating_sub(self.signed_size.load(Ordering::Relaxed)) >= self.policy.every_entries {
            let mut w = self.wake.lock().unwrap_or_else(|p| p.into_inner());
            if !w.kick {
                w.kick = true;
                self.cv.notify_one();
            }
        }
    }
}

/// Writes the verifying key beside the log unless the same key is there.
fn write_key_file(dir: &std::path::Path, key: &seqshield_keys::sign::VerifyingKey) -> Result<(), Error> {
    let path = dir.join(crate::head::KEY_FILE);
    let pem = key.to_pem();
    if std::fs::read_to_string(&path).is_ok_and(|have| have == pem) {
        return Ok(());
    }
    let tmp = dir.join(format!(".{}.tmp", crate::head::KEY_FILE));
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| Error::Write { path: path.clone(), source })?;
    super::recover::sync_dir(dir)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl AuditLog {
    /// Opens the log in `dir` like [`open`](Self::open), with `signer` for
    /// its tree heads.
    ///
    /// Refuses, changing nothing, when the heads file has a line that is not
    /// a head, when its latest head is signed by another key
    /// ([`Error::BadHead`]), is beyond the log ([`Error::HeadBeyondLog`]) or
    /// has another root than the log at its size ([`Error::HeadMismatch`]).
    /// Signs a head at once if the log has entries the latest head does not
    /// cover (after a crash, say).
    pub fn open_signed(dir: &std::path::Path, signer: Arc<dyn Signer>, policy: HeadPolicy) -> Result<Self, Error> {
        check_origin(&policy.origin)?;
        let mut log = Self::open(dir)?;
        let (file, read) = HeadFile::open(dir)?;
        let (mut latest, number) = (None, read.heads.len());
        for (i, head) in read.heads.into_iter().enumerate() {
            latest = Some(head.map_err(|problem| Error::BadHead {
                path: file.path().to_owned(),
                number: i + 1,
                problem,
            })?);
        }
        let count = if let Some(sth) = &latest {
            sth.verify(signer.verifying_key()).map_err(|problem| Error::BadHead {
                path: file.path().to_owned(),
                number,
                problem,
            })?;
            if sth.size > log.len() {
                return Err(Error::HeadBeyondLog { path: log.path.clone(), size: sth.size, len: log.len() });
            }
            if log.root_at(sth.size)? != sth.root {
                return Err(Error::HeadMismatch { path: log.path.clone(), size: sth.size });
            }
            sth.size
        } else {
            0
        };
        write_key_file(dir, signer.verifying_key())?;
        log.signing = Some(Signing {
            signer,
            policy,
            heads: Mutex::new(Heads { file, latest, signed_at: Instant::now() }),
            signed_size: AtomicU64::new(count),
            wake: Mutex::new(Wake::default()),
            cv: Condvar::new(),
        });
        if number == 0 || log.len() > count {
            log.sign_head()?;
        }
        Ok(log)
    }

    /// Signs the current tree head now, appends it to the heads file
    /// (synced) and returns it. Timestamps never go backwards, even if the
    /// clock does.
    pub fn sign_head(&self) -> Result<SignedTreeHead, Error> {
        let s = self.signing.as_ref().ok_or(Error::Unsigned)?;
        let mut heads = s.heads();
        let head = self.tree_head();
        let ts = now_ms().max(heads.latest.as_ref().map_or(0, |h| h.timestamp_ms));
        let sth = SignedTreeHead::sign(&s.policy.origin, head, ts, &*s.signer)?;
        heads.file.append(&sth)?;
        heads.latest = Some(sth.clone());
        heads.signed_at = Instant::now();
        s.signed_size.store(head.size, Ordering::Relaxed);
        Ok(sth)
    }

    /// A witness checkpoint of the latest signed head.
    pub fn checkpoint(&self) -> Result<crate::witness::Checkpoint, Error> {
        let s = self.signing.as_ref().ok_or(Error::Unsigned)?;
        let head = s.heads().latest.clone().ok_or(Error::Unsigned)?;
        let t = self.read_tree();
        crate::witness::Checkpoint::new(head, s.signer.verifying_key().clone(), t.hashes.leaves())
    }

    /// The latest signed head, if any.
    pub fn latest_head(&self) -> Option<SignedTreeHead> {
        self.signing.as_ref().and_then(|s| s.heads().latest.clone())
    }

    /// The signing policy, if the log signs.
    pub fn head_policy(&self) -> Option<&HeadPolicy> {
        self.signing.as_ref().map(|s| &s.policy)
    }

    /// Whether a head is due by the policy: entries arrived and either
    /// enough of them or enough time since the last head.
    fn head_due(&self, s: &Signing) -> bool {
        let len = self.len();
        let signed = s.signed_size.load(Ordering::Relaxed);
        len > signed && (len - signed >= s.policy.every_entries || s.heads().signed_at.elapsed() >= s.policy.every)
    }

    /// Starts the thread that signs heads by the policy. It keeps the log
    /// alive until the returned [`HeadTimer`] is stopped or dropped, which
    /// signs a last head for entries not yet covered.
    pub fn start_head_timer(self: &Arc<Self>) -> Result<HeadTimer, Error> {
        let every = self.signing.as_ref().ok_or(Error::Unsigned)?.policy.every;
        let log = self.clone();
        let errors = Arc::new(Mutex::new(None));
        let errors2 = errors.clone();
        let thread = std::thread::Builder::new()
            .name("audit-heads".into())
            .spawn(move || {
                let s = log.signing.as_ref().expect("checked above");
                loop {
                    let stop = {
                        let w = s.wake.lock().unwrap_or_else(|p| p.into_inner());
                        let tick = every.min(Duration::from_secs(1));
                        let (mut w, _) =
                            s.cv.wait_timeout_while(w, tick, |w| !w.kick && !w.stop).unwrap_or_else(|p| p.into_inner());
                        w.kick = false;
                        w.stop
                    };
                    if (stop || log.head_due(s)) && log.len() > s.signed_size.load(Ordering::Relaxed) {
                        let result = log.sign_head();
                        *errors2.lock().unwrap_or_else(|p| p.into_inner()) = result.err().map(|e| e.to_string());
                    }
                    if stop {
                        return;
                    }
                }
            })
            .map_err(|source| Error::Write { path: self.dir.clone(), source })?;
        Ok(HeadTimer { log: self.clone(), thread: Some(thread), errors })
    }
}

/// The running head-signing thread of [`AuditLog::start_head_timer`].
#[derive(Debug)]
pub struct HeadTimer {
    log: Arc<AuditLog>,
    thread: Option<JoinHandle<()>>,
    errors: Arc<Mutex<Option<String>>>,
}

impl HeadTimer {
    /// The error of the latest signing attempt, if it failed (the thread
    /// tries again at the next tick).
    pub fn last_error(&self) -> Option<String> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the thread after it signed a last head for entries not yet
    /// covered; returns that attempt's error, if any.
    pub fn stop(mut self) -> Option<String> {
        self.halt();
        self.last_error()
    }

    fn halt(&mut self) {
        if let Some(s) = &self.log.signing {
            s.wake.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            s.cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HeadTimer {
    fn drop(&mut self) {
        self.halt();
    }
}
