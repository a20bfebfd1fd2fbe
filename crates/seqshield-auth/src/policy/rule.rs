//! One checked rule and its conditions. A condition left out always holds;
//! a rule holds when every condition it has holds.

use ipnet::IpNet;

use super::window::TimeWindow;
use super::{Effect, Request, Stage};
use crate::Clearance;

/// A rule: conditions, and what to do when they all hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Unique id, quoted in audit events.
    pub id: String,
    /// What the rule decides.
    pub effect: Effect,
    /// Why, in one line, quoted in audit events and error responses.
    pub reason: String,
    /// When the rule applies.
    pub when: Conditions,
}

/// A `scopes_any` entry: one scope, or every scope with a prefix (`data:*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopePattern {
    /// Exactly this scope.
    Exact(String),
    /// Any scope starting with this (the text before the `*`; empty for `*`).
    Prefix(String),
}

impl ScopePattern {
    /// Whether `scope` matches.
    pub fn matches(&self, scope: &str) -> bool {
        match self {
            Self::Exact(s) => s == scope,
            Self::Prefix(p) => scope.starts_with(p.as_str()),
        }
    }
}

/// The conditions of a rule; `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The stage is one of these.
    pub stages: Option<Vec<Stage>>,
    /// The subject is one of these.
    pub subjects: Option<Vec<String>>,
    /// The client is one of these.
    pub clients: Option<Vec<String>>,
    /// The audience is one of these (a request without an audience never matches).
    pub audiences: Option<Vec<String>>,
    /// At least one requested scope matches one of these.
    pub scopes_any: Option<Vec<ScopePattern>>,
    /// The classification is at least this sensitive.
    pub classification_at_least: Option<Clearance>,
    /// At least one of these authentication methods (RFC 8176) is missing from `amr`.
    pub amr_lacks: Option<Vec<String>>,
    /// The source address is in one of these networks (unknown source: no).
    pub networks: Option<Vec<IpNet>>,
    /// The source address is in none of these networks (unknown source: yes).
    pub not_networks: Option<Vec<IpNet>>,
    /// The request time is inside this window (UTC).
    pub time: Option<TimeWindow>,
}

fn in_any(nets: &[IpNet], ip: std::net::IpAddr) -> bool {
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it is.
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

fn any_of<T>(cond: &Option<Vec<T>>, pred: impl Fn(&T) -> bool) -> bool {
    cond.as_ref().is_none_or(|v| v.iter().any(pred))
}

impl Conditions {
    /// Whether every condition holds for `req`.
    pub fn matches(&self, req: &Request<'_>) -> bool {
        any_of(&self.stages, |s| *s == req.stage)
            && any_of(&self.subjects, |s| s == req.subject)
            && any_of(&self.clients, |c| c == req.client)
            && self.audiences.as_ref().is_none_or(|v| req.audience.is_some_and(|a| v.iter().any(|x| x == a)))
            && any_of(&self.scopes_any, |p| req.scopes.iter().any(|s| p.matches(s)))
            && self.classification_at_least.is_none_or(|c| req.classification >= c)
            && any_of(&self.amr_lacks, |m| !req.amr.contains(m))
            && self.networks.as_ref().is_none_or(|n| req.source.is_some_and(|ip| in_any(n, ip)))
            && self.not_networks.as_ref().is_none_or(|n| req.source.is_none_or(|ip| !in_any(n, ip)))
            && self.time.as_ref().is_none_or(|w| w.contains(req.now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::window::Weekday;
    use super::*;
    use crate::ScopeSet;

    // 2024-01-01T12:00:00Z, a Monday.
    const NOW: u64 = 1_704_110_400;

    struct Fixture {
        scopes: ScopeSet,
        amr: Vec<String>,
    }

    impl Fixture {
        fn new(scopes: &str, amr: &[&str]) -> Self {
            Self { scopes: ScopeSet::parse(scopes).unwrap(), amr: amr.iter().map(|s| (*s).to_owned()).collect() }
        }

        fn req(&self) -> Request<'_> {
            Request {
                stage: Stage::Issue,
                subject: "alice",
                client: "portal",
                scopes: &self.scopes,
                classification: Clearance::Restricted,
                amr: &self.amr,
                source: Some("10.1.2.3".parse().unwrap()),
                now: NOW,
                audience: Some("seqshield"),
            }
        }
    }

    fn owned(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| (*s).to_owned()).collect())
    }

    fn nets(v: &[&str]) -> Option<Vec<IpNet>> {
        Some(v.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn no_conditions_always_match() {
        let f = Fixture::new("", &[]);
        assert!(Conditions::default().matches(&f.req()));
    }

    #[test]
    fn stages() {
        let f = Fixture::new("openid", &[]);
        let c = Conditions { stages: Some(vec![Stage::Login, Stage::Issue]), ..Default::default() };
        assert!(c.matches(&f.req()));
        let c = Conditions { stages: Some(vec![Stage::Exchange]), ..Default::default() };
        assert!(!c.matches(&f.req()));
    }

    #[test]
    fn subjects_and_clients() {
        let f = Fixture::new("openid", &[]);
        assert!(Conditions { subjects: owned(&["bob", "alice"]), ..Default::default() }.matches(&f.req()));
        assert!(!Conditions { subjects: owned(&["bob"]), ..Default::default() }.matches(&f.req()));
        assert!(Conditions { clients: owned(&["portal"]), ..Default::default() }.matches(&f.req()));
        assert!(!Conditions { clients: owned(&["cli"]), ..Default::default() }.matches(&f.req()));
    }

    #[test]
    fn audiences() {
        let f = Fixture::new("openid", &[]);
        let c = Conditions { audiences: owned(&["seqshield"]), ..Default::default() };
        assert!(c.matches(&f.req()));
        let mut r = f.req();
        r.audience = Some("seqshield-worker");
        assert!(!c.matches(&r));
        r.audience = None;
        assert!(!c.matches(&r), "no audience never matches an audience list");
    }

    #[test]
    fn scopes_any_exact_and_prefix() {
        let f = Fixture::new("openid data:read", &[]);
        let exact = |v: &[&str]| Conditions {
            scopes_any: Some(v.iter().map(|s| ScopePattern::Exact((*s).to_owned())).collect()),
            ..Default::default()
        };
        assert!(exact(&["data:write", "data:read"]).matches(&f.req()));
        assert!(!exact(&["data:write"]).matches(&f.req()));
        assert!(!exact(&["data"]).matches(&f.req()), "exact means exact");
        let prefix = Conditions { scopes_any: Some(vec![ScopePattern::Prefix("data:".into())]), ..Default::default() };
        assert!(prefix.matches(&f.req()));
        let empty = Fixture::new("", &[]);
        assert!(!prefix.matches(&empty.req()));
        let any = Conditions { scopes_any: Some(vec![ScopePattern::Prefix(String::new())]), ..Default::default() };
        assert!(any.matches(&f.req()));
        assert!(!any.matches(&empty.req()), "`*` needs at least one scope");
    }

    #[test]
    fn classification_at_least() {
        let f = Fixture::new("openid", &[]);
        let at = |c| Conditions { classification_at_least: Some(c), ..Default::default() };
        assert!(at(Clearance::Internal).matches(&f.req()));
        assert!(at(Clearance::Restricted).matches(&f.req()), "inclusive");
        assert!(!at(Clearance::Controlled).matches(&f.req()));
    }

    #[test]
    fn amr_lacks() {
        let c = Conditions { amr_lacks: owned(&["mfa"]), ..Default::default() };
        assert!(c.matches(&Fixture::new("", &["pwd"]).req()));
        assert!(c.matches(&Fixture::new("", &[]).req()));
        assert!(!c.matches(&Fixture::new("", &["pwd", "otp", "mfa"]).req()));
        let either = Conditions { amr_lacks: owned(&["mfa", "hwk"]), ..Default::default() };
        assert!(either.matches(&Fixture::new("", &["mfa"]).req()), "lacking any one listed method is enough");
        assert!(!either.matches(&Fixture::new("", &["mfa", "hwk"]).req()));
    }

    #[test]
    fn networks_and_not_networks() {
        let f = Fixture::new("", &[]);
        let private = nets(&["10.0.0.0/8", "fc00::/7"]);
        let inside = Conditions { networks: private.clone(), ..Default::default() };
        let outside = Conditions { not_networks: private, ..Default::default() };
        let mut r = f.req();
        assert!(inside.matches(&r) && !outside.matches(&r));
        r.source = Some("192.0.2.1".parse().unwrap());
        assert!(!inside.matches(&r) && outside.matches(&r));
        r.source = Some("fd00::1".parse().unwrap());
        assert!(inside.matches(&r) && !outside.matches(&r));
        r.source = Some("::ffff:10.9.9.9".parse().unwrap());
        assert!(inside.matches(&r), "IPv4-mapped IPv6 is judged as IPv4");
        r.source = None;
        assert!(!inside.matches(&r), "unknown source is not inside");
        assert!(outside.matches(&r), "unknown source counts as outside (fail closed for deny rules)");
    }

    #[test]
    fn time_window() {
        let f = Fixture::new("", &[]);
        let office = Conditions {
            time: Some(TimeWindow { days: vec![Weekday::Mon], minutes: Some((9 * 60, 17 * 60)) }),
            ..Default::default()
        };
        let mut r = f.req();
        assert!(office.matches(&r));
        r.now = NOW + 6 * 3600;
        assert!(!office.matches(&r));
        r.now = NOW + 86_400;
        assert!(!office.matches(&r), "Tuesday");
    }

    #[test]
    fn all_conditions_must_hold() {
        let f = Fixture::new("data:read", &["pwd"]);
        let c = Conditions {
            stages: Some(vec![Stage::Issue]),
            classification_at_least: Some(Clearance::Restricted),
            amr_lacks: owned(&["mfa"]),
            networks: nets(&["10.0.0.0/8"]),
            ..Default::default()
        };
        assert!(c.matches(&f.req()));
        let mut r = f.req();
        r.classification = Clearance::Internal;
        assert!(!c.matches(&r));
        let mut r = f.req();
        r.stage = Stage::Login;
        assert!(!c.matches(&r));
        let g = Fixture::new("data:read", &["pwd", "mfa"]);
        assert!(!c.matches(&g.req()));
    }
}
