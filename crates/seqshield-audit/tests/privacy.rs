//! The privacy rule end to end: a real-looking access token, a password and
//! a DNA read, pushed through every field that must not carry them, never
//! reach the log file.
//!
//! Rule (see `seqshield_audit::event::privacy`): events carry identifiers
//! and decisions only. The builder refuses a value shaped like a token, a
//! secret assignment, key material or nucleotide sequence, and any detail
//! key naming a secret; the token-service mapping (`AuditSink`) redacts the
//! same values instead, so the decision is still recorded.

use proptest::prelude::*;
use seqshield_audit::event::privacy::Leak;
use seqshield_audit::{AuditLog, Decision, Event, EventError, Timestamp};
use seqshield_auth::audit::{AuditEvent, AuditSink, Outcome};

/// An RS256 access token as the token service issues them (header
/// `{"alg":"RS256","kid":"gw-2024-01","typ":"at+jwt"}`; the signature is
/// random bytes).
const ACCESS_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imd3LTIwMjQtMDEiLCJ0eXAiOiJhdCtqd3QifQ.eyJpc3MiOiJodHRwczovL2d3LmV4YW1wbGUub3JnIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJnYXRld2F5IiwiZXhwIjoxNzAwMDAzNjAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjNmWGtRMnpMIiwic2NvcGUiOiJkYXRhOnJlYWQifQ.QmVhcmVyLXNpZ25hdHVyZS1ieXRlcy10aGF0LWxvb2stcmFuZG9tLWVub3VnaC1mb3ItYS10ZXN0LW9mLTI1Ni1ieXRlcw";
const PASSWORD: &str = "correct-horse-battery-staple-42";
/// 60 bases of E. coli 536 (the demo genome), as a read would carry them.
const READ: &str = "AGCTTTTCATTCTGACTGCAACGGGCAATATGTCTCTGTGTGGATTAAAAAAAGAGTGTC";

fn t() -> Timestamp {
    Timestamp::from_unix(1_700_000_000).unwrap()
}

fn b() -> seqshield_audit::EventBuilder {
    Event::builder(t(), "login.password", Decision::Deny)
}

fn refused(r: Result<Event, EventError>) -> (String, Leak) {
    match r {
        Err(e @ EventError::Private { .. }) => {
            let msg = e.to_string();
            for secret in [ACCESS_TOKEN, PASSWORD, READ, "hunter2"] {
                assert!(!msg.contains(secret), "the error must not echo the value: {msg}");
            }
            let EventError::Private { field, leak } = e else { unreachable!() };
            (field, leak)
        }
        other => panic!("expected a privacy refusal, got {other:?}"),
    }
}

#[test]
fn the_builder_refuses_tokens_passwords_and_sequence_in_every_field() {
    assert_eq!(refused(b().detail("note", ACCESS_TOKEN).build()), ("details.note".into(), Leak::Jwt));
    assert_eq!(refused(b().subject(ACCESS_TOKEN).build()), ("who.subject".into(), Leak::Jwt));
    assert_eq!(refused(b().client(format!("Bearer {ACCESS_TOKEN}")).build()).1, Leak::Jwt);
    assert_eq!(refused(b().reason(format!("Bearer {}", &ACCESS_TOKEN[..40])).build()).1, Leak::BearerCredential);
    assert_eq!(refused(b().object(ACCESS_TOKEN).build()).0, "object");
    assert_eq!(refused(b().request_id(ACCESS_TOKEN).build()).0, "request_id");
    assert_eq!(refused(b().rule(ACCESS_TOKEN).build()).0, "rule");

    for key in ["password", "secret", "token", "client_secret", "refresh_token", "user_password", "totp", "code"] {
        assert_eq!(refused(b().detail(key, PASSWORD).build()), (format!("details.{key}"), Leak::SecretName), "{key}");
    }
    assert_eq!(refused(b().reason(format!("bad login, password={PASSWORD}")).build()).1, Leak::SecretAssignment);
    assert_eq!(
        refused(b().detail("query", format!("grant_type=password&password={PASSWORD}")).build()).1,
        Leak::SecretAssignment
    );

    assert_eq!(refused(b().detail("sample", READ).build()), ("details.sample".into(), Leak::Sequence));
    assert_eq!(refused(b().reason(format!("could not align {READ}")).build()).1, Leak::Sequence);
    assert_eq!(refused(b().object(READ.to_lowercase()).build()).1, Leak::Sequence);

    // Identifiers and decisions still go through.
    b().subject("alice").client("cli").detail("jti", "3fXkQ2zL").detail("amr", "pwd otp mfa").build().unwrap();
}

fn file_text(log: &AuditLog) -> String {
    String::from_utf8_lossy(&std::fs::read(log.path()).unwrap()).into_owned()
}

#[test]
fn the_token_service_sink_redacts_instead_of_losing_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let leaky = AuditEvent::new(1_700_000_000, "login.password", Outcome::Deny, format!("bad password={PASSWORD}"))
        .subject(ACCESS_TOKEN)
        .client("cli")
        .source(Some("192.0.2.7".parse().unwrap()))
        .with("password", PASSWORD)
        .with("client_secret", PASSWORD)
        .with("access_token", ACCESS_TOKEN)
        .with("note", format!("token {ACCESS_TOKEN}"))
        .with("sample", READ)
        .with("jti", "3fXkQ2zL");
    log.record(&leaky).unwrap();

    let text = file_text(&log);
    for secret in [ACCESS_TOKEN, &ACCESS_TOKEN[..40], PASSWORD, READ, &READ[..30]] {
        assert!(!text.contains(secret), "{secret} reached the log file");
    }
    let e = log.event(0).unwrap();
    assert_eq!((e.action(), e.decision()), ("login.password", Decision::Deny), "the decision is recorded");
    assert_eq!(e.who().subject.as_deref(), Some("[redacted:jwt]"));
    assert_eq!(e.who().client.as_deref(), Some("cli"));
    assert_eq!(e.reason(), Some("[redacted:secret]"));
    let details: Vec<(&str, String)> = e.details().iter().map(|(k, v)| (k, format!("{v:?}"))).collect();
    assert_eq!(
        details,
        [
            ("jti", "Str(\"3fXkQ2zL\")".into()),
            ("note", "Str(\"[redacted:jwt]\")".into()),
            ("redacted", "Int(7)".into()),
            ("sample", "Str(\"[redacted:sequence]\")".into()),
        ],
        "secret-named keys dropped, values redacted, and counted"
    );
}

#[test]
fn every_event_the_token_service_sends_today_goes_through_unchanged() {
    // Why: redaction must bite on secrets, not on the ordinary events of
    // seqshield-auth (their detail keys: grant_type, jti, aud, scope, …).
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let issue = AuditEvent::new(1_700_000_000, "token.issue", Outcome::Allow, "token issued")
        .subject("alice")
        .client("cli")
        .source(Some("::1".parse().unwrap()))
        .with("grant_type", "authorization_code")
        .with("jti", "x3Jd9_kQ-2mZpL0aB7cYtE4fWvN1sH6uG8iO5rKaaaa")
        .with("aud", "gateway")
        .with("scope", "openid data:read")
        .with("clearance", "restricted")
        .with("exp", 1_700_003_600u64);
    let policy = AuditEvent::new(1_700_000_001, "policy.decision", Outcome::StepUp, "MFA required")
        .subject("bob")
        .rule("mfa-for-restricted")
        .with("stage", "token")
        .with("audience", serde_json::Value::Null)
        .with("scopes", "data:read")
        .with("classification", "restricted");
    let reuse = AuditEvent::new(1_700_000_002, "token.refresh_reuse", Outcome::Deny, "refresh token reused")
        .with("family", "fam-7")
        .with("family_revoked", true);
    for (i, a) in [issue, policy, reuse].iter().enumerate() {
        log.record(a).unwrap();
        let e = log.event(i as u64).unwrap();
        assert_eq!(e.action(), a.kind);
        assert_eq!(e.time().unix(), a.time);
        assert_eq!(e.who().subject, a.subject);
        assert_eq!(e.who().source, a.source);
        assert_eq!(e.rule(), a.rule.as_deref());
        assert_eq!(e.reason(), Some(a.reason.as_str()));
        assert_eq!(e.details().len(), a.detail.len());
        assert!(e.details().get("redacted").is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_token_service_event_is_recorded_in_canonical_form(
        subject in proptest::option::of("\\PC{0,300}"),
        reason in "(\\PC|\n|\u{202e}){0,1200}",
        keys in proptest::collection::vec("[A-Za-z_.-]{0,70}", 0..24),
        value in "\\PC{0,40}",
        n in any::<i64>(),
        time in any::<u64>(),
    ) {
        // Why: `from_auth` must never fail (a failed record makes the caller
        // refuse, and leaves no trace); whatever comes in, a valid event
        // comes out.
        let mut a = AuditEvent::new(time, "policy.decision", Outcome::Deny, reason);
        if let Some(s) = subject {
            a = a.subject(s);
        }
        for (i, k) in keys.iter().enumerate() {
            a = if i % 2 == 0 { a.with(k, value.clone()) } else { a.with(k, n) };
        }
        let e = Event::from_auth(&a);
        let entry = e.to_entry();
        prop_assert_eq!(Event::from_entry(&entry).unwrap(), e);
        prop_assert!(entry.len() <= seqshield_audit::record::MAX_ENTRY_LEN);
    }
}
