//! The token service's events, straight into the log (feature `auth`).
//!
//! `seqshield-auth` defines [`AuditSink`] and [`AuditEvent`]; this crate
//! depends on it (never the other way round) and implements the trait for
//! [`AuditLog`]. The mapping never refuses an event — refusing would make
//! the caller refuse the operation *and* leave no trace of it — so values
//! the privacy rule refuses are replaced with `[redacted:<kind>]`,
//! secret-named details are dropped, over-long values are cut, and the
//! event's `redacted` / `dropped` details count what was changed.

use seqshield_auth::audit::{AuditError, AuditEvent, AuditSink, Outcome};

use crate::event::privacy::{self, Leak};
use crate::event::{
    DetailValue, Event, Timestamp, MAX_ACTION_LEN, MAX_DETAILS, MAX_DETAIL_KEY_LEN, MAX_ID_LEN, MAX_SAFE_INTEGER,
    MAX_TEXT_LEN, MAX_UNIX_SECONDS,
};
use crate::{AuditLog, Decision};

impl From<Outcome> for Decision {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Allow => Decision::Allow,
            Outcome::Deny => Decision::Deny,
            Outcome::StepUp => Decision::StepUp,
        }
    }
}

/// Counts what the mapping changed.
#[derive(Default)]
struct Changes {
    redacted: i64,
    dropped: i64,
}

impl Changes {
    /// `value` made safe for a text field: forbidden characters replaced,
    /// redacted if the privacy rule refuses it (before and after cutting),
    /// cut to `max` bytes.
    fn text(&mut self, value: &str, max: usize) -> String {
        let redact = |leak: Leak| format!("[redacted:{}]", leak.as_str());
        if let Err(leak) = privacy::check_value(value) {
            self.redacted += 1;
            return redact(leak);
        }
        let mut s: String =
            value.chars().map(|c| if c.is_control() || is_format_trick(c) { '\u{FFFD}' } else { c }).collect();
        if s.len() > max {
            let mut cut = max;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            if let Err(leak) = privacy::check_value(&s) {
                self.redacted += 1;
                return redact(leak);
            }
        }
        s
    }

    fn id(&mut self, value: Option<&str>) -> Option<String> {
        value.filter(|v| !v.is_empty()).map(|v| self.text(v, MAX_ID_LEN))
    }

    fn value(&mut self, v: &serde_json::Value) -> DetailValue {
        match v {
            serde_json::Value::Null => DetailValue::Null,
            serde_json::Value::Bool(b) => DetailValue::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER.unsigned_abs() => DetailValue::Int(i),
                _ => DetailValue::Str(n.to_string()),
            },
            serde_json::Value::String(s) => DetailValue::Str(self.text(s, MAX_TEXT_LEN)),
            other => DetailValue::Str(self.text(&other.to_string(), MAX_TEXT_LEN)),
        }
    }
}

/// Line/paragraph separators and bidirectional controls (not `is_control`).
fn is_format_trick(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `key` as a detail key: `[a-z][a-z0-9_]*`, at most 64 bytes.
fn detail_key(key: &str) -> String {
    let mut k: String = key
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '_' })
        .collect();
    if !k.starts_with(|c: char| c.is_ascii_lowercase()) {
        k.insert_str(0, "k_");
    }
    k.truncate(MAX_DETAIL_KEY_LEN);
    k
}

/// `kind` as an action: kept if valid, else lower-cased with other
/// characters replaced, else `unknown`.
fn action(kind: &str) -> String {
    let valid = |a: &str| {
        a.len() <= MAX_ACTION_LEN
            && a.split('.').all(|w| {
                w.starts_with(|c: char| c.is_ascii_lowercase())
                    && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
    };
    if valid(kind) {
        return kind.to_owned();
    }
    let mapped: String = kind
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' { c } else { '_' })
        .collect();
    if valid(&mapped) {
        mapped
    } else {
        "unknown".to_owned()
    }
}

impl Event {
    /// The log's form of a token-service event. Never fails (see the
    /// module docs for what it changes, and how that is recorded).
    pub fn from_auth(e: &AuditEvent) -> Event {
        let mut c = Changes::default();
        let time = Timestamp::from_unix(e.time.min(MAX_UNIX_SECONDS)).expect("clamped into range");
        let mut b = Event::builder(time, &action(e.kind), e.outcome.into()).source(e.source);
        if let Some(s) = c.id(e.subject.as_deref()) {
            b = b.subject(s);
        }
        if let Some(s) = c.id(e.client.as_deref()) {
            b = b.client(s);
        }
        if let Some(s) = c.id(e.rule.as_deref()) {
            b = b.rule(s);
        }
        if !e.reason.is_empty() {
            b = b.reason(c.text(&e.reason, MAX_TEXT_LEN));
        }
        let mut kept = 0;
        for (key, value) in &e.detail {
            if privacy::check_key(key).is_err() {
                c.redacted += 1;
                continue;
            }
            let k = detail_key(key);
            if privacy::check_key(&k).is_err() {
                c.redacted += 1;
                continue;
            }
            if k == "redacted" || k == "dropped" || kept == MAX_DETAILS - 2 {
                c.dropped += 1;
                continue;
            }
            b = b.detail(&k, c.value(value));
            kept += 1;
        }
        if c.redacted > 0 {
            b = b.detail("redacted", c.redacted);
        }
        if c.dropped > 0 {
            b = b.detail("dropped", c.dropped);
        }
        b.build().unwrap_or_else(|_| {
            // Unreachable by construction (a property test tries hard);
            // still, record the decision rather than nothing.
            Event::builder(time, "unknown", e.outcome.into())
                .reason("[redacted:unrepresentable]")
                .build()
                .expect("a minimal event is valid")
        })
    }
}

impl AuditSink for AuditLog {
    /// Appends the event; returns once it is on disk. An error means it is
    /// not recorded, and the caller refuses what it was about to allow.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.append(&Event::from_auth(event))
            .map(drop)
            .map_err(|e| AuditError::Io { path: self.path().to_owned(), source: std::io::Error::other(e) })
    }
}
