//! The audit event schema, version 1, and its canonical encoding.
//!
//! An event says who (subject, client, source address) did or asked for
//! what (action) on which object or task, what was decided (allow, deny,
//! step-up), by which rule and why, under which request id, when, plus a
//! few event-specific [`Details`]. It carries identifiers and decisions
//! only: see [`privacy`] for the rule and how it is enforced.
//!
//! # Encoding
//!
//! The leaf entry of an event is one JSON object in canonical form: keys
//! sorted, no whitespace, absent fields left out, integers only, strings
//! escaped as RFC 8785 (JCS) and `serde_json` both do. That is the RFC 8785
//! canonical form of the object, so anyone can re-derive an entry's bytes,
//! and [`Event::from_entry`] refuses any other spelling of the same object.
//!
//! ```json
//! {"action":"policy.decision","decision":"deny","details":{"stage":"token"},
//!  "reason":"MFA required","rule":"mfa-for-restricted","time":"2023-11-14T22:13:20Z",
//!  "unix":1700000000,"v":1,"who":{"client":"cli","source":"10.0.0.7","subject":"alice"}}
//! ```
//! (one line in the log; wrapped here).

pub mod details;
pub mod privacy;
pub mod timestamp;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use self::details::{DetailValue, Details, MAX_DETAILS, MAX_DETAIL_KEY_LEN, MAX_SAFE_INTEGER};
pub use self::privacy::Leak;
pub use self::timestamp::{Timestamp, MAX_UNIX_SECONDS};
use crate::error::EventError;

/// The schema version this build writes and reads (the `v` field).
pub const VERSION: u64 = 1;

/// Longest action name, in bytes.
pub const MAX_ACTION_LEN: usize = 64;

/// Longest identifier (subject, client, object, request id, rule), in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Longest free text (reason, string detail), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// What was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Refused.
    Deny,
    /// Allowed only after a second factor.
    StepUp,
}

/// Who the decision is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {
    /// The OAuth client (application) involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The request's source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// The user or service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Who {
    /// Whether nothing is known about who.
    pub fn is_empty(&self) -> bool {
        self.client.is_none() && self.source.is_none() && self.subject.is_none()
    }
}

/// One security decision. Built with [`Event::builder`], which checks every
/// bound and the privacy rule; immutable afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    time: Timestamp,
    action: String,
    decision: Decision,
    who: Who,
    object: Option<String>,
    request_id: Option<String>,
    rule: Option<String>,
    reason: Option<String>,
    details: Details,
}

/// The wire form, fields in key order (serde writes them in declaration
/// order, so this order *is* the canonical key order).
#[derive(Serialize)]
struct WireOut<'a> {
    action: &'a str,
    decision: Decision,
    #[serde(skip_serializing_if = "Details::is_empty")]
    details: &'a Details,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    time: String,
    unix: u64,
    v: u64,
    #[serde(skip_serializing_if = "Who::is_empty")]
    who: &'a Who,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    action: String,
    decision: Decision,
    #[serde(default)]
    details: Details,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    time: String,
    unix: u64,
    v: u64,
    #[serde(default)]
    who: Who,
}

impl Event {
    /// Starts an event: when, what, and the decision.
    pub fn builder(time: Timestamp, action: &str, decision: Decision) -> EventBuilder {
        EventBuilder {
            event: Event {
                time,
                action: action.to_owned(),
                decision,
                who: Who::default(),
                object: None,
                request_id: None,
                rule: None,
                reason: None,
                details: Details::new(),
            },
        }
    }

    /// When it happened.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// What happened, dotted lower case: `policy.decision`, `token.issue`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// Allow, deny or step-up.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Who it is about.
    pub fn who(&self) -> &Who {
        &self.who
    }

    /// The object or task acted on.
    pub fn object(&self) -> Option<&str> {
        self.object.as_deref()
    }

    /// The request it was decided in.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The policy rule that decided.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// Why, in words.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Event-specific fields.
    pub fn details(&self) -> &Details {
        &self.details
    }

    /// The canonical JSON encoding: the bytes of this event's leaf entry.
    pub fn to_entry(&self) -> Vec<u8> {
        let wire = WireOut {
            action: &self.action,
            decision: self.decision,
            details: &self.details,
            object: self.object.as_deref(),
            reason: self.reason.as_deref(),
            request_id: self.request_id.as_deref(),
            rule: self.rule.as_deref(),
            time: self.time.rfc3339(),
            unix: self.time.unix(),
            v: VERSION,
            who: &self.who,
        };
        serde_json::to_vec(&wire).expect("events always serialise")
    }

    /// Decodes a leaf entry. Refuses anything that is not exactly the
    /// canonical encoding of a well-formed version-1 event. It does not
    /// re-apply the privacy rule, which governs what may be written.
    pub fn from_entry(entry: &[u8]) -> Result<Self, EventError> {
        let wire: WireIn = serde_json::from_slice(entry).map_err(|e| EventError::NotAnEvent {
            line: e.line(),
            column: e.column(),
            // The message of a data error can quote the input; keep only its class.
            class: match e.classify() {
                serde_json::error::Category::Io => "i/o",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "wrong fields or types",
                serde_json::error::Category::Eof => "truncated",
            },
        })?;
        if wire.v != VERSION {
            return Err(EventError::UnsupportedVersion(wire.v));
        }
        let time = Timestamp::from_unix(wire.unix)?;
        if wire.time != time.rfc3339() {
            return Err(EventError::TimeMismatch);
        }
        let event = Event {
            time,
            action: wire.action,
            decision: wire.decision,
            who: wire.who,
            object: wire.object,
            request_id: wire.request_id,
            rule: wire.rule,
            reason: wire.reason,
            details: wire.details,
        };
        event.check_shape()?;
        if event.to_entry() != entry {
            return Err(EventError::NotCanonical);
        }
        Ok(event)
    }

    /// Every bound, character and charset rule; not the privacy rule.
    fn check_shape(&self) -> Result<(), EventError> {
        check_action(&self.action)?;
        for (field, value) in self.ids() {
            if let Some(v) = value {
                check_text("", field, v, MAX_ID_LEN, false)?;
            }
        }
        if let Some(r) = &self.reason {
            check_text("", "reason", r, MAX_TEXT_LEN, false)?;
        }
        if self.details.len() > MAX_DETAILS {
            return Err(EventError::TooManyDetails { count: self.details.len(), max: MAX_DETAILS });
        }
        for (key, value) in self.details.iter() {
            check_detail_key(key)?;
            match value {
                DetailValue::Int(i) if i.unsigned_abs() > MAX_SAFE_INTEGER.unsigned_abs() => {
                    return Err(EventError::IntegerOutOfRange { field: format!("details.{key}") });
                }
                DetailValue::Str(s) => check_text("details.", key, s, MAX_TEXT_LEN, true)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The privacy rule (module [`privacy`]) over every string field.
    fn check_privacy(&self) -> Result<(), EventError> {
        let private = |field: String, leak| EventError::Private { field, leak };
        for (field, value) in self.ids() {
            if let Some(v) = value {
                privacy::check_value(v).map_err(|leak| private(field.to_owned(), leak))?;
            }
        }
        if let Some(r) = &self.reason {
            privacy::check_value(r).map_err(|leak| private("reason".to_owned(), leak))?;
        }
        for (key, value) in self.details.iter() {
            privacy::check_key(key).map_err(|leak| private(format!("details.{key}"), leak))?;
            if let DetailValue::Str(s) = value {
                privacy::check_value(s).map_err(|leak| private(format!("details.{key}"), leak))?;
            }
        }
        Ok(())
    }

    fn ids(&self) -> [(&'static str, Option<&String>); 5] {
        [
            ("who.subject", self.who.subject.as_ref()),
            ("who.client", self.who.client.as_ref()),
            ("object", self.object.as_ref()),
            ("request_id", self.request_id.as_ref()),
            ("rule", self.rule.as_ref()),
        ]
    }
}

/// Builds an [`Event`]; [`build`](EventBuilder::build) checks it.
#[derive(Clone, Debug)]
#[must_use = "an event is only checked by build()"]
pub struct EventBuilder {
    event: Event,
}

impl EventBuilder {
    /// The user or service account.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.event.who.subject = Some(subject.into());
        self
    }

    /// The OAuth client.
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.event.who.client = Some(client.into());
        self
    }

    /// The request's source address.
    pub fn source(mut self, source: Option<IpAddr>) -> Self {
        self.event.who.source = source;
        self
    }

    /// The object or task acted on (`object:…`, `task:…`).
    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.event.object = Some(object.into());
        self
    }

    /// The request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.event.request_id = Some(id.into());
        self
    }

    /// The policy rule that decided.
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.event.rule = Some(rule.into());
        self
    }

    /// Why, in words.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.event.reason = Some(reason.into());
        self
    }

    /// Adds (or replaces) a detail.
    pub fn detail(mut self, key: &str, value: impl Into<DetailValue>) -> Self {
        self.event.details.0.insert(key.to_owned(), value.into());
        self
    }

    /// Checks the privacy rule (first, so a token that is also too long is
    /// reported as a token) and every bound.
    pub fn build(self) -> Result<Event, EventError> {
        self.event.check_privacy()?;
        self.event.check_shape()?;
        Ok(self.event)
    }
}

/// Characters that would let a value rewrite how a log line looks:
/// controls, line and paragraph separators, bidirectional overrides.
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn check_text(prefix: &str, field: &str, value: &str, max: usize, may_be_empty: bool) -> Result<(), EventError> {
    let name = || format!("{prefix}{field}");
    if value.is_empty() && !may_be_empty {
        return Err(EventError::Empty { field: name() });
    }
    if value.len() > max {
        return Err(EventError::TooLong { field: name(), len: value.len(), max });
    }
    if value.chars().any(is_forbidden_char) {
        return Err(EventError::ForbiddenCharacter { field: name() });
    }
    Ok(())
}

/// `[a-z][a-z0-9_]*` segments joined by dots, at most [`MAX_ACTION_LEN`].
fn check_action(action: &str) -> Result<(), EventError> {
    if action.len() > MAX_ACTION_LEN {
        return Err(EventError::TooLong { field: "action".into(), len: action.len(), max: MAX_ACTION_LEN });
    }
    if !action.split('.').all(is_word) {
        return Err(EventError::Malformed { field: "action".into(), why: "not dotted lower-case words" });
    }
    Ok(())
}

/// `[a-z][a-z0-9_]*`, at most [`MAX_DETAIL_KEY_LEN`].
fn check_detail_key(key: &str) -> Result<(), EventError> {
    if key.len() > MAX_DETAIL_KEY_LEN || !is_word(key) {
        return Err(EventError::Malformed {
            field: "details".into(),
            why: "a key is not a lower-case word of at most 64 bytes",
        });
    }
    Ok(())
}

fn is_word(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timestamp {
        Timestamp::from_unix(1_700_000_000).unwrap()
    }

    fn full() -> Event {
        Event::builder(t(), "policy.decision", Decision::Deny)
            .subject("alice")
            .client("cli")
            .source(Some("10.0.0.7".parse().unwrap()))
            .object("task:42")
            .request_id("req-7f3a")
            .rule("mfa-for-restricted")
            .reason("MFA required")
            .detail("stage", "token")
            .detail("exp", 1_700_003_600u64)
            .detail("mfa", false)
            .detail("audience", None::<&str>)
            .build()
            .unwrap()
    }

    #[test]
    fn canonical_encoding_is_stable() {
        // Why: entry bytes are hashed into the tree; any change to them
        // (field order, escaping, spelling) breaks every old proof.
        let text = String::from_utf8(full().to_entry()).unwrap();
        assert_eq!(
            text,
            r#"{"action":"policy.decision","decision":"deny","details":{"audience":null,"exp":1700003600,"mfa":false,"stage":"token"},"object":"task:42","reason":"MFA required","request_id":"req-7f3a","rule":"mfa-for-restricted","time":"2023-11-14T22:13:20Z","unix":1700000000,"v":1,"who":{"client":"cli","source":"10.0.0.7","subject":"alice"}}"#
        );
        let minimal = Event::builder(t(), "token.issue", Decision::StepUp).build().unwrap();
        assert_eq!(
            String::from_utf8(minimal.to_entry()).unwrap(),
            r#"{"action":"token.issue","decision":"step_up","time":"2023-11-14T22:13:20Z","unix":1700000000,"v":1}"#
        );
    }

    #[test]
    fn entries_round_trip() {
        for e in
            [full(), Event::builder(t(), "a", Decision::Allow).source(Some("::1".parse().unwrap())).build().unwrap()]
        {
            assert_eq!(Event::from_entry(&e.to_entry()).unwrap(), e);
        }
    }

    #[test]
    fn other_spellings_of_an_event_are_refused() {
        let good = String::from_utf8(full().to_entry()).unwrap();
        for (bad, why) in [
            (good.replacen("{\"action\"", "{ \"action\"", 1), "whitespace"),
            (good.replacen("\"v\":1", "\"v\":1.0", 1), "float version"),
            (good.replacen("\"exp\":1700003600", "\"exp\":1.7000036e9", 1), "float detail"),
            (good.replacen("\"object\":\"task:42\"", "\"object\":\"task:\\u0034\\u0032\"", 1), "escaped letters"),
            (good.replacen("\"10.0.0.7\"", "\"0:0:0:0:0:ffff:a00:7\"", 1), "other address spelling"),
        ] {
            assert!(
                matches!(
                    Event::from_entry(bad.as_bytes()),
                    Err(EventError::NotCanonical | EventError::NotAnEvent { .. })
                ),
                "{why}"
            );
        }
        let reordered = r#"{"decision":"deny","action":"a","time":"2023-11-14T22:13:20Z","unix":1700000000,"v":1}"#;
        assert_eq!(Event::from_entry(reordered.as_bytes()), Err(EventError::NotCanonical));
        let with_null =
            r#"{"action":"a","decision":"deny","object":null,"time":"2023-11-14T22:13:20Z","unix":1700000000,"v":1}"#;
        assert_eq!(Event::from_entry(with_null.as_bytes()), Err(EventError::NotCanonical));
        let v2 = r#"{"action":"a","decision":"deny","time":"2023-11-14T22:13:20Z","unix":1700000000,"v":2}"#;
        assert_eq!(Event::from_entry(v2.as_bytes()), Err(EventError::UnsupportedVersion(2)));
        let skewed = r#"{"action":"a","decision":"deny","time":"2023-11-14T22:13:21Z","unix":1700000000,"v":1}"#;
        assert_eq!(Event::from_entry(skewed.as_bytes()), Err(EventError::TimeMismatch));
        let extra =
            r#"{"action":"a","decision":"deny","password":"x","time":"2023-11-14T22:13:20Z","unix":1700000000,"v":1}"#;
        assert!(matches!(Event::from_entry(extra.as_bytes()), Err(EventError::NotAnEvent { .. })));
    }

    #[test]
    fn decode_errors_never_quote_the_input() {
        // Why: a malformed entry may hold exactly what must not leak.
        let bad = br#"{"action":"a","decision":"hunter2-secret","time":"x","unix":1,"v":1}"#;
        let msg = Event::from_entry(bad).unwrap_err().to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn bounds_and_characters() {
        let b = || Event::builder(t(), "a.b", Decision::Allow);
        assert!(matches!(b().subject("x".repeat(MAX_ID_LEN + 1)).build(), Err(EventError::TooLong { .. })));
        assert!(b().subject("x".repeat(MAX_ID_LEN)).build().is_ok());
        assert!(matches!(b().reason("x".repeat(MAX_TEXT_LEN + 1)).build(), Err(EventError::TooLong { .. })));
        assert!(matches!(b().subject("").build(), Err(EventError::Empty { .. })));
        for evil in ["alice\nFAKE ENTRY", "bob\u{202E}nimda", "x\u{2028}y", "nul\0"] {
            assert!(matches!(b().subject(evil).build(), Err(EventError::ForbiddenCharacter { .. })), "{evil:?}");
        }
        for action in ["", "A", "a..b", "a.", "1a", "a-b", "a b"] {
            assert!(Event::builder(t(), action, Decision::Allow).build().is_err(), "{action:?}");
        }
        assert!(Event::builder(t(), &"a".repeat(MAX_ACTION_LEN + 1), Decision::Allow).build().is_err());
        assert!(matches!(b().detail("Bad-Key", 1).build(), Err(EventError::Malformed { .. })));
        assert!(matches!(b().detail("n", MAX_SAFE_INTEGER + 1).build(), Err(EventError::IntegerOutOfRange { .. })));
        assert!(b().detail("n", -MAX_SAFE_INTEGER).build().is_ok());
        assert!(matches!(b().detail("n", u64::MAX).build(), Err(EventError::IntegerOutOfRange { .. })));
        let many = (0..=MAX_DETAILS).fold(b(), |b, i| b.detail(&format!("k{i}"), 1));
        assert!(matches!(many.build(), Err(EventError::TooManyDetails { .. })));
    }

    #[test]
    fn the_largest_event_fits_in_one_record() {
        // Why: every event the builder accepts must be appendable.
        let id = "\"".repeat(MAX_ID_LEN);
        let text = "\\".repeat(MAX_TEXT_LEN);
        let mut b = Event::builder(
            Timestamp::from_unix(MAX_UNIX_SECONDS).unwrap(),
            &"a".repeat(MAX_ACTION_LEN),
            Decision::StepUp,
        )
        .subject(&id)
        .client(&id)
        .source(Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()))
        .object(&id)
        .request_id(&id)
        .rule(&id)
        .reason(&text);
        for i in 0..MAX_DETAILS {
            b = b.detail(&format!("{}{i:02}", "k".repeat(MAX_DETAIL_KEY_LEN - 2)), text.as_str());
        }
        let entry = b.build().unwrap().to_entry();
        assert!(entry.len() <= crate::record::MAX_ENTRY_LEN, "{} bytes", entry.len());
    }
}
