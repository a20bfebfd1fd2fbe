//! Where security decisions go: the [`AuditSink`] trait.
//!
//! Every conditional-access decision, login outcome, token issue, exchange
//! and revocation becomes one [`AuditEvent`]. The tamper-evident log (the
//! audit crate) implements [`AuditSink`]; until it is plugged in,
//! [`JsonlSink`] appends one JSON object per line and syncs it to disk.
//!
//! Sinks fail closed: when [`AuditSink::record`] returns an error the caller
//! refuses the operation it was about to allow.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde::Serialize;

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed.
    Allow,
    /// Refused.
    Deny,
    /// Allowed only after a second factor.
    StepUp,
}

/// One security decision or event. Never carries a secret: no passwords,
/// codes, tokens or keys, only their ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// What happened, dotted: `policy.decision`, `login.password`,
    /// `login.totp`, `token.issue`, `token.exchange`, `token.refresh_reuse`…
    pub kind: &'static str,
    /// Allow, deny or step-up.
    pub outcome: Outcome,
    /// The user or service the decision is about, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The OAuth client involved, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The source address of the request, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// The policy rule that decided, if a rule did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in words (the rule's reason, or the error code).
    pub reason: String,
    /// Event-specific fields (token id, audience, scopes…).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    /// An event with only the required fields set.
    pub fn new(time: u64, kind: &'static str, outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            time,
            kind,
            outcome,
            subject: None,
            client: None,
            source: None,
            rule: None,
            reason: reason.into(),
            detail: serde_json::Map::new(),
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }

    /// Sets the client.
    pub fn client(mut self, c: impl Into<String>) -> Self {
        self.client = Some(c.into());
        self
    }

    /// Sets the source address.
    pub fn source(mut self, ip: Option<IpAddr>) -> Self {
        self.source = ip;
        self
    }

    /// Sets the deciding rule.
    pub fn rule(mut self, r: impl Into<String>) -> Self {
        self.rule = Some(r.into());
        self
    }

    /// Adds a detail field.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Writing or syncing the log failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Receives audit events. Implementations must be durable before they
/// return `Ok`: the caller acts on the decision only afterwards.
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;
}

/// Appends events as JSON lines to a file. `record` returns only once its
/// line is on disk (`fdatasync`), but concurrent callers share syncs (group
/// commit): the first caller writes and syncs every line queued so far while
/// the others wait, so throughput does not stop at one sync per event.
///
/// After a failed write or sync the sink refuses every later event (fail
/// closed) until the server is restarted: a gap in an audit log must not be
/// papered over.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    file: Mutex<File>,
    state: Mutex<GroupState>,
    synced: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Lines queued and not yet written.
    queued: Vec<u8>,
    /// Sequence number of the last queued event.
    appended: u64,
    /// Every event up to this sequence number is durable.
    durable: u64,
    /// A caller is writing and syncing a batch.
    writing: bool,
    /// A write or sync failed: the error, for every later caller.
    poisoned: Option<(std::io::ErrorKind, String)>,
}

impl JsonlSink {
    /// Opens (creating, mode 0600) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io { path: path.to_owned(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(io)?;
        Ok(Self { path: path.to_owned(), file: Mutex::new(file), state: Mutex::default(), synced: Condvar::new() })
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AuditSink for JsonlSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(event).expect("audit events always serialise");
        line.push(b'\n');
        let mut st = self.lock_state();
        if let Some((kind, msg)) = &st.poisoned {
            return Err(AuditError::Io { path: self.path.clone(), source: std::io::Error::new(*kind, msg.clone()) });
        }
        st.queued.extend_from_slice(&line);
        st.appended += 1;
        let mine = st.appended;
        loop {
            if st.durable >= mine {
                return Ok(());
            }
            if let Some((kind, msg)) = &st.poisoned {
                return Err(AuditError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::new(*kind, msg.clone()),
                });
            }
            if st.writing {
                st = self.synced.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Become the writer for everything queued so far.
            st.writing = true;
            let batch = std::mem::take(&mut st.queued);
            let upto = st.appended;
            drop(st);
            let result = {
                let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
                f.write_all(&batch).and_then(|()| f.sync_data())
            };
            st = self.lock_state();
            st.writing = false;
            match result {
                Ok(()) => st.durable = upto,
                Err(e) => st.poisoned = Some((e.kind(), e.to_string())),
            }
            self.synced.notify_all();
        }
    }
}

/// Keeps events in memory; for tests and for embedding in another log.
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<AuditEvent>>);

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_sink_appends_one_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/auth.jsonl");
        let sink = JsonlSink::open(&path).unwrap();
        let e = AuditEvent::new(7, "policy.decision", Outcome::Deny, "no MFA").subject("alice").rule("mfa");
        sink.record(&e).unwrap();
        sink.record(&e.clone().with("aud", "gateway")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["outcome"], "deny");
        assert_eq!(lines[0]["rule"], "mfa");
        assert!(lines[0].get("detail").is_none());
        assert_eq!(lines[1]["detail"]["aud"], "gateway");
    }

    #[test]
    fn concurrent_records_are_all_durable_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.jsonl");
        let sink = std::sync::Arc::new(JsonlSink::open(&path).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let e = AuditEvent::new(i, "token.issue", Outcome::Allow, "x").with("t", t).with("i", i);
                        sink.record(&e).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen: Vec<(u64, u64)> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["detail"]["t"].as_u64().unwrap(), v["detail"]["i"].as_u64().unwrap())
            })
            .collect();
        seen.sort_unstable();
        let want: Vec<(u64, u64)> = (0..8).flat_map(|t| (0..50).map(move |i| (t, i))).collect();
        assert_eq!(seen, want, "every event exactly once, none torn");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_poisons_the_sink() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let sink = JsonlSink::open(Path::new("/dev/full")).unwrap();
        let e = AuditEvent::new(1, "token.issue", Outcome::Allow, "x");
        assert!(sink.record(&e).is_err());
        assert!(sink.record(&e).is_err(), "stays refused");
    }
}
