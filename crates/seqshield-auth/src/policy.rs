//! Conditional access as data: an ordered list of rules in a TOML file
//! (format in `docs/policy.md`), first match wins.
//!
//! The token service asks the policy at three [`Stage`]s — after a login,
//! before issuing tokens, and before an RFC 8693 token exchange — and acts
//! on the [`Effect`]: allow, deny, or ask for a second factor first. Every
//! decision can be written to an [`AuditSink`] with [`Policy::evaluate_audited`];
//! if the sink fails the caller must refuse (fail closed).
//!
//! ```
//! use seqshield_auth::policy::{Effect, Policy, Request, Stage};
//! use seqshield_auth::{Clearance, ScopeSet};
//!
//! let policy = Policy::embedded_default();
//! let scopes = ScopeSet::parse("openid data:read").unwrap();
//! let amr = vec!["pwd".to_owned()];
//! let req = Request {
//!     stage: Stage::Issue,
//!     subject: "alice",
//!     client: "portal",
//!     scopes: &scopes,
//!     classification: Clearance::Controlled,
//!     amr: &amr,
//!     source: Some("10.1.2.3".parse().unwrap()),
//!     now: 1_700_000_000,
//!     audience: Some("seqshield"),
//! };
//! // Controlled data without a second factor: step up first.
//! assert_eq!(policy.evaluate(&req).effect, Effect::StepUp);
//! ```

mod file;
pub mod rule;
pub mod window;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::audit::{AuditError, AuditEvent, AuditSink, Outcome};
use crate::{Clearance, ScopeSet};

pub use rule::{Conditions, Rule, ScopePattern};
pub use window::{TimeWindow, Weekday};

/// Largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Most rules in one policy.
pub const MAX_RULES: usize = 1024;
/// Most entries in one condition list (networks, clients, scopes…).
pub const MAX_LIST_LEN: usize = 1024;
/// Most `[[audience]]` tables.
pub const MAX_AUDIENCES: usize = 256;
/// Longest audience name, in bytes.
pub const MAX_AUDIENCE_LEN: usize = 256;
/// Longest rule id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest rule reason, in bytes.
pub const MAX_REASON_LEN: usize = 512;
/// The only policy file `version` understood.
pub const POLICY_VERSION: u32 = 1;

/// The policy compiled into the binary.
const DEFAULT_TOML: &str = include_str!("../policy/default.toml");

/// What a rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Go ahead.
    Allow,
    /// Refuse.
    Deny,
    /// Go ahead only after a second factor (callers that cannot prompt —
    /// token exchange, client credentials — must treat this as deny).
    StepUp,
}

impl Effect {
    /// `allow`, `deny` or `step_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::StepUp => "step_up",
        }
    }

    /// The matching audit outcome.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::Allow => Outcome::Allow,
            Self::Deny => Outcome::Deny,
            Self::StepUp => Outcome::StepUp,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the token service the policy is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// After the password (and, if given, the second factor) checked out.
    Login,
    /// Before an access token is issued (code, refresh or client-credentials grant).
    Issue,
    /// Before an RFC 8693 token exchange.
    Exchange,
}

impl Stage {
    /// `login`, `issue` or `exchange`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Issue => "issue",
            Self::Exchange => "exchange",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts a decision is made on.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Where the question is asked.
    pub stage: Stage,
    /// The user or service the token is for.
    pub subject: &'a str,
    /// The OAuth client asking.
    pub client: &'a str,
    /// The scopes requested.
    pub scopes: &'a ScopeSet,
    /// The most sensitive classification the token would reach (its clearance).
    pub classification: Clearance,
    /// Authentication methods used (RFC 8176 values: `pwd`, `otp`, `mfa`…).
    pub amr: &'a [String],
    /// The request's source address, if known (unknown never matches
    /// `networks` and always matches `not_networks`: fail closed).
    pub source: Option<IpAddr>,
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// The audience the token is for, if any.
    pub audience: Option<&'a str>,
}

/// The answer: the effect and the rule that gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub effect: Effect,
    /// The deciding rule's id, or `None` when the default applied.
    pub rule: Option<String>,
    /// The rule's (or the default's) reason.
    pub reason: String,
}

/// What an audience (resource server) may be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudiencePolicy {
    /// The `aud` value.
    pub name: String,
    /// The scopes a token for this audience may carry (requests are
    /// intersected with this).
    pub scopes: ScopeSet,
    /// The highest clearance a token for this audience may carry.
    pub max_clearance: Clearance,
    /// What the audience is, for people.
    pub description: Option<String>,
}

/// A policy file could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Reading the file failed.
    #[error("policy file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("policy is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    /// Not valid TOML, or a top-level key that does not belong.
    #[error("policy is not valid: {0}")]
    Syntax(Box<toml::de::Error>),
    /// `version` is not [`POLICY_VERSION`].
    #[error("policy version {0} is not supported (expected {POLICY_VERSION})")]
    Version(u32),
    /// More than [`MAX_RULES`] rules or [`MAX_AUDIENCES`] audiences.
    #[error("policy has more than {MAX_RULES} rules or {MAX_AUDIENCES} audiences")]
    TooMany,
    /// A rule is not valid.
    #[error("policy rule #{index}{}: {source}", fmt_id(.id))]
    Rule {
        /// 1-based position of the rule in the file.
        index: usize,
        /// The rule's id, if it has one.
        id: Option<String>,
        /// What is wrong.
        source: RuleError,
    },
    /// The `[default]` table is not valid.
    #[error("policy [default]: {0}")]
    Default(RuleError),
    /// An `[[audience]]` table is not valid.
    #[error("policy audience #{index}{}: {source}", fmt_id(.name))]
    Audience {
        /// 1-based position of the table in the file.
        index: usize,
        /// The audience's name, if it has one.
        name: Option<String>,
        /// What is wrong.
        source: RuleError,
    },
}

/// A table-level TOML error on one line ("unknown field `x` … in `time`").
fn one_line(e: &toml::de::Error) -> String {
    e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn fmt_id(id: &Option<String>) -> String {
    id.as_ref().map(|i| format!(" ({i:?})")).unwrap_or_default()
}

/// What is wrong with one rule, default or audience.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A missing, unknown or mistyped field.
    #[error("{}", one_line(.0))]
    Field(Box<toml::de::Error>),
    /// The id is empty, too long, or has characters outside `[a-z0-9._-]`.
    #[error("id must be 1 to {MAX_ID_LEN} characters of a-z, 0-9, '.', '_' or '-'")]
    BadId,
    /// An audience name is empty, longer than [`MAX_AUDIENCE_LEN`], or has spaces or control characters.
    #[error("name must be 1 to {MAX_AUDIENCE_LEN} bytes without spaces or control characters")]
    BadName,
    /// Another rule already has this id.
    #[error("id is used by rule #{0} already")]
    DuplicateId(usize),
    /// Another audience already has this name.
    #[error("audience name is used by audience #{0} already")]
    DuplicateAudience(usize),
    /// The reason is empty, longer than [`MAX_REASON_LEN`], or not one line.
    #[error("reason must be one non-empty line of at most {MAX_REASON_LEN} bytes")]
    BadReason,
    /// A condition list is empty (it could never match) or too long.
    #[error("`{0}` must list 1 to {MAX_LIST_LEN} entries")]
    BadList(&'static str),
    /// An entry of `networks` / `not_networks` is not a CIDR or address.
    #[error("`{field}`: {value:?} is not a CIDR block or IP address")]
    BadNetwork {
        /// The field.
        field: &'static str,
        /// The entry.
        value: String,
    },
    /// A `scopes_any` or audience scope entry is not a valid scope.
    #[error("scope {0:?} is not a valid scope (or scope prefix ending in '*')")]
    BadScope(String),
    /// A day name other than `mon` … `sun`.
    #[error("`time.days`: {0:?} is not one of mon, tue, wed, thu, fri, sat, sun")]
    BadDay(String),
    /// A time that is not `HH:MM` between 00:00 and 24:00.
    #[error("`time`: {0:?} is not HH:MM between 00:00 and 24:00")]
    BadTime(String),
    /// `from` without `to`, or the other way round, or `from == to`.
    #[error("`time` needs both `from` and `to`, and they must differ")]
    BadWindow,
}

impl Policy {
    /// Parses and checks a policy.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        file::parse(text)
    }

    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let io = |source| PolicyError::Io { path: path.to_owned(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_POLICY_BYTES as u64 {
            return Err(PolicyError::TooLarge);
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_toml(&text)
    }

    /// The policy shipped in the binary (`policy/default.toml`).
    pub fn embedded_default() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the embedded default policy is valid (checked by a unit test)")
    }

    /// The text of the embedded default policy, to start a site policy from.
    pub fn embedded_default_text() -> &'static str {
        DEFAULT_TOML
    }

    /// Decides: the first rule whose conditions all hold, else the default.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        match self.rules.iter().find(|r| r.when.matches(req)) {
            Some(r) => Decision { effect: r.effect, rule: Some(r.id.clone()), reason: r.reason.clone() },
            None => Decision { effect: self.default_effect, rule: None, reason: self.default_reason.clone() },
        }
    }

    /// [`Policy::evaluate`], then records a `policy.decision` event. An
    /// error means the decision could not be recorded: the caller must
    /// refuse the request.
    pub fn evaluate_audited(&self, req: &Request<'_>, sink: &dyn AuditSink) -> Result<Decision, AuditError> {
        let d = self.evaluate(req);
        let mut event = AuditEvent::new(req.now, "policy.decision", d.effect.outcome(), d.reason.clone())
            .subject(req.subject)
            .client(req.client)
            .source(req.source)
            .with("stage", req.stage.as_str())
            .with("audience", req.audience.map_or(serde_json::Value::Null, Into::into))
            .with("scopes", req.scopes.to_string())
            .with("classification", req.classification.as_str());
        if let Some(rule) = &d.rule {
            event = event.rule(rule.clone());
        }
        sink.record(&event)?;
        Ok(d)
    }

    /// The audience policy for `name`, if configured.
    pub fn audience(&self, name: &str) -> Option<&AudiencePolicy> {
        self.audiences.iter().find(|a| a.name == name)
    }

    /// All configured audiences, in file order.
    pub fn audiences(&self) -> &[AudiencePolicy] {
        &self.audiences
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The effect when no rule matches.
    pub fn default_effect(&self) -> Effect {
        self.default_effect
    }
}

/// A checked policy: rules in order, a default, and audiences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    default_effect: Effect,
    default_reason: String,
    audiences: Vec<AudiencePolicy>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MemorySink;

    // 2024-01-01T12:00:00Z, a Monday.
    const NOW: u64 = 1_704_110_400;

    fn req<'a>(stage: Stage, scopes: &'a ScopeSet, amr: &'a [String], class: Clearance) -> Request<'a> {
        Request {
            stage,
            subject: "alice",
            client: "portal",
            scopes,
            classification: class,
            amr,
            source: Some("10.0.0.5".parse().unwrap()),
            now: NOW,
            audience: Some("seqshield"),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn embedded_default_is_valid_and_sensible() {
        let p = Policy::embedded_default();
        assert_eq!(p.default_effect(), Effect::Deny, "fail closed");
        assert!(p.rules().len() >= 5);
        let gw = p.audience("seqshield").unwrap();
        for s in ["openid", "data:read", "data:write", "jobs:submit", "jobs:read", "annotate", "audit:read"] {
            assert!(gw.scopes.contains(s), "{s}");
        }
        assert!(p.audience("seqshield-worker").is_some());
        assert!(p.audience("elsewhere").is_none());

        let read = ScopeSet::parse("openid data:read").unwrap();
        let pwd = strings(&["pwd"]);
        let mfa = strings(&["pwd", "otp", "mfa"]);
        // Internal data with a password: fine.
        assert_eq!(p.evaluate(&req(Stage::Issue, &read, &pwd, Clearance::Internal)).effect, Effect::Allow);
        // Controlled data: needs MFA …
        let d = p.evaluate(&req(Stage::Issue, &read, &pwd, Clearance::Controlled));
        assert_eq!((d.effect, d.rule.as_deref()), (Effect::StepUp, Some("controlled-requires-mfa")));
        assert_eq!(p.evaluate(&req(Stage::Issue, &read, &mfa, Clearance::Controlled)).effect, Effect::Allow);
        // … and a private network, whatever the factors.
        let mut r = req(Stage::Issue, &read, &mfa, Clearance::Controlled);
        r.source = Some("203.0.113.7".parse().unwrap());
        assert_eq!(p.evaluate(&r).effect, Effect::Deny);
        r.source = None;
        assert_eq!(p.evaluate(&r).effect, Effect::Deny, "unknown source fails closed");
        // Exchange: never admin scopes; controlled without MFA is a deny (no prompt possible).
        let admin = ScopeSet::parse("admin").unwrap();
        assert_eq!(p.evaluate(&req(Stage::Exchange, &admin, &mfa, Clearance::Public)).effect, Effect::Deny);
        assert_eq!(p.evaluate(&req(Stage::Exchange, &read, &pwd, Clearance::Controlled)).effect, Effect::Deny);
        assert_eq!(p.evaluate(&req(Stage::Exchange, &read, &mfa, Clearance::Controlled)).effect, Effect::Allow);
        let mut r = req(Stage::Exchange, &read, &mfa, Clearance::Internal);
        r.audience = Some("somewhere-else");
        let d = p.evaluate(&r);
        assert_eq!((d.effect, d.rule), (Effect::Deny, None), "unknown audience falls to the default");
    }

    #[test]
    fn first_match_wins_and_default_applies_otherwise() {
        let p = Policy::from_toml(
            r#"
            [default]
            effect = "allow"
            reason = "nothing against it"

            [[rule]]
            id = "first"
            effect = "deny"
            reason = "first rule"
            scopes_any = ["x"]

            [[rule]]
            id = "second"
            effect = "step_up"
            reason = "second rule"
            scopes_any = ["x", "y"]
            "#,
        )
        .unwrap();
        let amr = strings(&[]);
        let x = ScopeSet::parse("x y").unwrap();
        let y = ScopeSet::parse("y").unwrap();
        let z = ScopeSet::parse("z").unwrap();
        let d = p.evaluate(&req(Stage::Login, &x, &amr, Clearance::Public));
        assert_eq!(d, Decision { effect: Effect::Deny, rule: Some("first".into()), reason: "first rule".into() });
        assert_eq!(p.evaluate(&req(Stage::Login, &y, &amr, Clearance::Public)).rule.as_deref(), Some("second"));
        let d = p.evaluate(&req(Stage::Login, &z, &amr, Clearance::Public));
        assert_eq!(d, Decision { effect: Effect::Allow, rule: None, reason: "nothing against it".into() });
    }

    #[test]
    fn missing_default_denies() {
        let p = Policy::from_toml("").unwrap();
        let s = ScopeSet::new();
        assert_eq!(p.evaluate(&req(Stage::Login, &s, &[], Clearance::Public)).effect, Effect::Deny);
    }

    #[test]
    fn audited_decisions_record_an_event() {
        let p = Policy::embedded_default();
        let sink = MemorySink::new();
        let read = ScopeSet::parse("data:read openid").unwrap();
        let pwd = strings(&["pwd"]);
        let d = p.evaluate_audited(&req(Stage::Issue, &read, &pwd, Clearance::Controlled), &sink).unwrap();
        let events = sink.events();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, "policy.decision");
        assert_eq!(e.outcome, Outcome::StepUp);
        assert_eq!(e.rule, d.rule);
        assert_eq!(e.reason, d.reason);
        assert_eq!(e.subject.as_deref(), Some("alice"));
        assert_eq!(e.client.as_deref(), Some("portal"));
        assert_eq!(e.source, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(e.time, NOW);
        assert_eq!(e.detail["stage"], "issue");
        assert_eq!(e.detail["audience"], "seqshield");
        assert_eq!(e.detail["scopes"], "data:read openid");
        assert_eq!(e.detail["classification"], "controlled");
    }

    #[test]
    fn audited_decisions_fail_closed_when_the_sink_fails() {
        struct Broken;
        impl AuditSink for Broken {
            fn record(&self, _: &AuditEvent) -> Result<(), AuditError> {
                Err(AuditError::Io { path: "/dev/full".into(), source: std::io::Error::other("disk full") })
            }
        }
        let p = Policy::embedded_default();
        let s = ScopeSet::parse("openid").unwrap();
        assert!(p.evaluate_audited(&req(Stage::Login, &s, &[], Clearance::Public), &Broken).is_err());
    }

    /// The examples in docs/policy.md are real: each TOML block parses.
    #[test]
    fn documentation_examples_parse() {
        let doc = include_str!("../../../docs/policy.md");
        let blocks: Vec<&str> = doc.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
        assert!(blocks.len() >= 4);
        for b in blocks {
            // Inline `time = …` fragments need a rule around them.
            let text = if b.trim_start().starts_with("time") {
                format!("[[rule]]\nid = \"t\"\neffect = \"deny\"\nreason = \"r\"\n{b}")
            } else {
                b.to_owned()
            };
            Policy::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
        let e = Policy::from_toml("[[rule]]\nid = \"x\"\neffect = \"deny\"\nreason = \"r\"\ntime = { dayz = [] }\n");
        assert!(e.unwrap_err().to_string().contains("unknown field `dayz`"));
    }

    #[test]
    fn load_reads_files_and_names_the_path_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, Policy::embedded_default_text()).unwrap();
        assert_eq!(Policy::load(&path).unwrap(), Policy::embedded_default());
        let missing = dir.path().join("missing.toml");
        let e = Policy::load(&missing).unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
        assert!(matches!(Policy::from_toml(&"#".repeat(MAX_POLICY_BYTES + 1)), Err(PolicyError::TooLarge)));
    }
}
