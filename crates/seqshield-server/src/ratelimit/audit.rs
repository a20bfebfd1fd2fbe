//! The rate limiter's audit events, written off the request path.
//!
//! A trip must never make the gateway wait for `fdatasync`, and a burst of
//! trips must never grow without bound: events go to a queue of at most
//! [`MAX_QUEUED_AUDIT_EVENTS`], drained in order by one blocking task at a
//! time (inline when there is no Tokio runtime, as in plain unit tests).
//! An event that does not fit is dropped, logged, and counted in the next
//! one (`audit_dropped`). A sink error is logged: the request was refused
//! already, so there is nothing to fail closed.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use seqshield_auth::audit::{AuditEvent, AuditSink, Outcome};

use super::state::Open;
use super::Scope;

/// Most rate-limit events waiting for the audit log.
pub const MAX_QUEUED_AUDIT_EVENTS: usize = 10_000;

/// Something the audit log must hear about.
#[derive(Clone, Copy, Debug)]
pub(super) enum Note {
    /// A party went from allowed to limited.
    Trip {
        /// Which bucket.
        scope: Scope,
        /// The client whose request found it empty.
        peer: IpAddr,
        /// The client's penalty score (0 for the global bucket).
        penalty: f64,
        /// Requests per second in force.
        rate: f64,
        /// Burst in force.
        burst: f64,
        /// The previous episode, if it ended without a `recovered` event.
        previous: Option<Open>,
    },
    /// An episode ended: no rejection for `EPISODE_QUIET`.
    Recovered {
        /// Which bucket.
        scope: Scope,
        /// The client last seen in it.
        peer: IpAddr,
        /// The episode.
        episode: Open,
    },
}

impl Note {
    pub(super) fn event(&self, time: u64) -> AuditEvent {
        let two = |v: f64| format!("{v:.2}");
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match *self {
            Note::Trip { scope, peer, penalty, rate, burst, previous } => {
                let mut e = AuditEvent::new(time, "ratelimit.trip", Outcome::Deny, "rate limit exceeded")
                    .source(Some(peer))
                    .with("scope", scope.as_str())
                    .with("penalty", two(penalty))
                    .with("rate_per_sec", two(rate))
                    .with("burst", two(burst));
                if let Some(p) = previous {
                    e = e
                        .with("previous_rejected", count(p.rejected))
                        .with("previous_limited_secs", count(p.last.saturating_sub(p.since).as_secs()));
                }
                e
            }
            Note::Recovered { scope, peer, episode } => {
                AuditEvent::new(time, "ratelimit.recovered", Outcome::Allow, "rate limit episode ended")
                    .source(Some(peer))
                    .with("scope", scope.as_str())
                    .with("rejected", count(episode.rejected))
                    .with("limited_secs", count(episode.last.saturating_sub(episode.since).as_secs()))
            }
        }
    }
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<AuditEvent>,
    draining: bool,
    dropped: u64,
}

/// An ordered, bounded queue in front of an [`AuditSink`].
pub(super) struct AuditQueue {
    sink: Arc<dyn AuditSink>,
    state: Mutex<QueueState>,
}

impl AuditQueue {
    pub(super) fn new(sink: Arc<dyn AuditSink>) -> Arc<Self> {
        Arc::new(Self { sink, state: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `notes` and makes sure a drainer runs.
    pub(super) fn push(self: &Arc<Self>, notes: &[Note]) {
        if notes.is_empty() {
            return;
        }
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let start = {
            let mut st = self.lock();
            for note in notes {
                if st.events.len() >= MAX_QUEUED_AUDIT_EVENTS {
                    st.dropped += 1;
                    tracing::error!(dropped = st.dropped, "rate-limit audit queue full: event dropped");
                    continue;
                }
                let mut event = note.event(time);
                if st.dropped > 0 {
                    event = event.with("audit_dropped", i64::try_from(st.dropped).unwrap_or(i64::MAX));
                    st.dropped = 0;
                }
                st.events.push_back(event);
            }
            !std::mem::replace(&mut st.draining, true)
        };
        if start {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let q = Arc::clone(self);
                    drop(rt.spawn_blocking(move || q.drain()));
                }
                Err(_) => self.drain(),
            }
        }
    }

    fn drain(&self) {
        loop {
            let Some(event) = ({
                let mut st = self.lock();
                let next = st.events.pop_front();
                if next.is_none() {
                    st.draining = false;
                }
                next
            }) else {
                return;
            };
            if let Err(e) = self.sink.record(&event) {
                tracing::error!(error = %e, kind = event.kind, "the audit log refused a rate-limit event");
            }
        }
    }
}
