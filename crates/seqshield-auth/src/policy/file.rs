//! The TOML file format and its checks. Each `[[rule]]` and `[[audience]]`
//! table is read on its own so an error names the table it is in.

use std::collections::HashMap;

use ipnet::IpNet;
use serde::Deserialize;

use super::rule::{Conditions, Rule, ScopePattern};
use super::window::{parse_hhmm, TimeWindow, Weekday};
use super::{
    AudiencePolicy, Effect, Policy, PolicyError, RuleError, Stage, MAX_AUDIENCES, MAX_AUDIENCE_LEN, MAX_ID_LEN,
    MAX_LIST_LEN, MAX_REASON_LEN, MAX_RULES, POLICY_VERSION,
};
use crate::{Clearance, ScopeSet};

/// Reason used when a file has no `[default]` table.
const IMPLICIT_DEFAULT_REASON: &str = "no policy rule matched (default deny)";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<u32>,
    default: Option<toml::Table>,
    #[serde(default)]
    rule: Vec<toml::Table>,
    #[serde(default)]
    audience: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    effect: Effect,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    effect: Effect,
    reason: String,
    stages: Option<Vec<Stage>>,
    subjects: Option<Vec<String>>,
    clients: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    scopes_any: Option<Vec<String>>,
    classification_at_least: Option<Clearance>,
    amr_lacks: Option<Vec<String>>,
    networks: Option<Vec<String>>,
    not_networks: Option<Vec<String>>,
    time: Option<RawTime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    days: Option<Vec<String>>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudience {
    name: String,
    scopes: Vec<String>,
    max_clearance: Clearance,
    description: Option<String>,
}

pub(super) fn parse(text: &str) -> Result<Policy, PolicyError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| PolicyError::Syntax(Box::new(e)))?;
    if let Some(v) = raw.version.filter(|v| *v != POLICY_VERSION) {
        return Err(PolicyError::Version(v));
    }
    if raw.rule.len() > MAX_RULES || raw.audience.len() > MAX_AUDIENCES {
        return Err(PolicyError::TooMany);
    }
    let (default_effect, default_reason) = match raw.default {
        None => (Effect::Deny, IMPLICIT_DEFAULT_REASON.to_owned()),
        Some(t) => {
            let d: RawDefault =
                toml::Value::Table(t).try_into().map_err(|e| PolicyError::Default(RuleError::Field(Box::new(e))))?;
            check_reason(&d.reason).map_err(PolicyError::Default)?;
            (d.effect, d.reason)
        }
    };

    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, table) in raw.rule.into_iter().enumerate() {
        let index = i + 1;
        let id = table.get("id").and_then(toml::Value::as_str).map(str::to_owned);
        let fail = |source| PolicyError::Rule { index, id: id.clone(), source };
        let r: RawRule = toml::Value::Table(table).try_into().map_err(|e| fail(RuleError::Field(Box::new(e))))?;
        let rule = compile_rule(r).map_err(fail)?;
        if let Some(first) = seen.insert(rule.id.clone(), index) {
            return Err(fail(RuleError::DuplicateId(first)));
        }
        rules.push(rule);
    }

    let mut audiences: Vec<AudiencePolicy> = Vec::with_capacity(raw.audience.len());
    for (i, table) in raw.audience.into_iter().enumerate() {
        let index = i + 1;
        let name = table.get("name").and_then(toml::Value::as_str).map(str::to_owned);
        let fail = |source| PolicyError::Audience { index, name: name.clone(), source };
        let a: RawAudience = toml::Value::Table(table).try_into().map_err(|e| fail(RuleError::Field(Box::new(e))))?;
        if a.name.is_empty() || a.name.len() > MAX_AUDIENCE_LEN || a.name.chars().any(|c| c.is_control() || c == ' ') {
            return Err(fail(RuleError::BadName));
        }
        if let Some(first) = audiences.iter().position(|x| x.name == a.name) {
            return Err(fail(RuleError::DuplicateAudience(first + 1)));
        }
        if a.scopes.len() > MAX_LIST_LEN {
            return Err(fail(RuleError::BadList("scopes")));
        }
        let scopes = ScopeSet::try_from_iter(a.scopes.iter().map(String::as_str))
            .map_err(|_| fail(RuleError::BadScope(first_bad_scope(&a.scopes))))?;
        if let Some(d) = &a.description {
            check_reason(d).map_err(fail)?;
        }
        audiences.push(AudiencePolicy {
            name: a.name,
            scopes,
            max_clearance: a.max_clearance,
            description: a.description,
        });
    }

    Ok(Policy { rules, default_effect, default_reason, audiences })
}

fn first_bad_scope(scopes: &[String]) -> String {
    scopes.iter().find(|s| ScopeSet::parse(s).map_or(true, |p| p.len() != 1)).cloned().unwrap_or_default()
}

fn check_reason(reason: &str) -> Result<(), RuleError> {
    if reason.trim().is_empty() || reason.len() > MAX_REASON_LEN || reason.chars().any(char::is_control) {
        return Err(RuleError::BadReason);
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), RuleError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RuleError::BadId)
    }
}

fn list<T>(field: &'static str, v: Option<Vec<T>>) -> Result<Option<Vec<T>>, RuleError> {
    match v {
        Some(v) if v.is_empty() || v.len() > MAX_LIST_LEN => Err(RuleError::BadList(field)),
        v => Ok(v),
    }
}

fn networks(field: &'static str, v: Option<Vec<String>>) -> Result<Option<Vec<IpNet>>, RuleError> {
    let Some(v) = list(field, v)? else { return Ok(None) };
    v.into_iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| RuleError::BadNetwork { field, value: s })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn scope_pattern(s: String) -> Result<ScopePattern, RuleError> {
    let (body, prefix) = match s.strip_suffix('*') {
        Some(p) => (p, true),
        None => (s.as_str(), false),
    };
    let valid = if body.is_empty() { prefix } else { ScopeSet::parse(body).is_ok_and(|p| p.len() == 1) };
    if !valid {
        return Err(RuleError::BadScope(s));
    }
    let body = body.to_owned();
    Ok(if prefix { ScopePattern::Prefix(body) } else { ScopePattern::Exact(body) })
}

fn time_window(t: RawTime) -> Result<TimeWindow, RuleError> {
    let days = match list("time.days", t.days)? {
        None => Vec::new(),
        Some(v) => v.into_iter().map(|d| Weekday::parse(&d).ok_or(RuleError::BadDay(d))).collect::<Result<_, _>>()?,
    };
    let minutes = match (t.from, t.to) {
        (None, None) => None,
        (Some(from), Some(to)) => {
            let f = parse_hhmm(&from).filter(|m| *m < 24 * 60).ok_or(RuleError::BadTime(from))?;
            let t = parse_hhmm(&to).ok_or(RuleError::BadTime(to))?;
            // 24:00 as an end is midnight; 00:00–24:00 is the whole day.
            let t = if t == 24 * 60 && f > 0 { 0 } else { t };
            if f == t {
                return Err(RuleError::BadWindow);
            }
            Some((f, t))
        }
        _ => return Err(RuleError::BadWindow),
    };
    if days.is_empty() && minutes.is_none() {
        return Err(RuleError::BadWindow);
    }
    Ok(TimeWindow { days, minutes })
}

fn compile_rule(r: RawRule) -> Result<Rule, RuleError> {
    check_id(&r.id)?;
    check_reason(&r.reason)?;
    let scopes_any = match list("scopes_any", r.scopes_any)? {
        None => None,
        Some(v) => Some(v.into_iter().map(scope_pattern).collect::<Result<_, _>>()?),
    };
    let when = Conditions {
        stages: list("stages", r.stages)?,
        subjects: list("subjects", r.subjects)?,
        clients: list("clients", r.clients)?,
        audiences: list("audiences", r.audiences)?,
        scopes_any,
        classification_at_least: r.classification_at_least,
        amr_lacks: list("amr_lacks", r.amr_lacks)?,
        networks: networks("networks", r.networks)?,
        not_networks: networks("not_networks", r.not_networks)?,
        time: r.time.map(time_window).transpose()?,
    };
    Ok(Rule { id: r.id, effect: r.effect, reason: r.reason, when })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Policy::from_toml(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const OK_RULE: &str = "id = \"r\"\neffect = \"allow\"\nreason = \"because\"\n";

    #[test]
    fn every_field_parses() {
        let p = Policy::from_toml(
            r#"
            version = 1
            [default]
            effect = "step_up"
            reason = "be sure"

            [[rule]]
            id = "everything"
            effect = "deny"
            reason = "all the conditions"
            stages = ["login", "issue", "exchange"]
            subjects = ["alice"]
            clients = ["portal"]
            audiences = ["seqshield"]
            scopes_any = ["data:*", "openid", "*"]
            classification_at_least = "restricted"
            amr_lacks = ["mfa"]
            networks = ["10.0.0.0/8", "192.0.2.1"]
            not_networks = ["10.9.0.0/16"]
            time = { days = ["sat", "sun"], from = "22:00", to = "06:00" }

            [[audience]]
            name = "seqshield"
            scopes = ["openid", "data:read"]
            max_clearance = "controlled"
            description = "the gateway"
            "#,
        )
        .unwrap();
        assert_eq!(p.default_effect(), Effect::StepUp);
        let r = &p.rules()[0];
        assert_eq!(r.when.scopes_any.as_ref().unwrap().len(), 3);
        assert_eq!(r.when.networks.as_ref().unwrap()[1], "192.0.2.1/32".parse::<IpNet>().unwrap());
        assert_eq!(r.when.time.as_ref().unwrap().minutes, Some((22 * 60, 6 * 60)));
        let a = p.audience("seqshield").unwrap();
        assert_eq!(a.max_clearance, Clearance::Controlled);
        assert_eq!(a.scopes.to_string(), "data:read openid");
    }

    #[test]
    fn unknown_fields_are_refused_and_the_rule_named() {
        let e = err(&format!("[[rule]]\n{OK_RULE}netwrks = [\"10.0.0.0/8\"]\n"));
        assert!(e.contains("rule #1 (\"r\")") && e.contains("netwrks"), "{e}");
        let e = err("unknown_top_level = 1\n");
        assert!(e.contains("unknown_top_level"), "{e}");
        let e = err("[[audience]]\nname = \"a\"\nscopes = []\nmax_clearance = \"public\"\nextra = 1\n");
        assert!(e.contains("audience #1 (\"a\")") && e.contains("extra"), "{e}");
        let e = err("[default]\neffect = \"allow\"\nreason = \"x\"\nwhy = 1\n");
        assert!(e.contains("[default]") && e.contains("why"), "{e}");
        let e = err(&format!("[[rule]]\n{OK_RULE}time = {{ days = [\"mon\"], at = \"1\" }}\n"));
        assert!(e.contains("rule #1") && e.contains("at"), "{e}");
    }

    #[test]
    fn id_effect_and_reason_are_required() {
        let e = err("[[rule]]\neffect = \"allow\"\nreason = \"r\"\n");
        assert!(e.contains("rule #1:") && e.contains("id"), "{e}");
        let e = err("[[rule]]\nid = \"x\"\nreason = \"r\"\n");
        assert!(e.contains("rule #1 (\"x\")") && e.contains("effect"), "{e}");
        let e = err("[[rule]]\nid = \"x\"\neffect = \"allow\"\n");
        assert!(e.contains("reason"), "{e}");
        let e = err("[[rule]]\nid = \"x\"\neffect = \"permit\"\nreason = \"r\"\n");
        assert!(e.contains("permit"), "{e}");
        let e = err("[[rule]]\nid = \"x\"\neffect = \"allow\"\nreason = \"  \"\n");
        assert!(e.contains("reason must be one non-empty line"), "{e}");
        let e = err("[[rule]]\nid = \"x\"\neffect = \"allow\"\nreason = \"two\\nlines\"\n");
        assert!(e.contains("one non-empty line"), "{e}");
        let e = err("[[rule]]\nid = \"Bad Id\"\neffect = \"allow\"\nreason = \"r\"\n");
        assert!(e.contains("id must be"), "{e}");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let e = err(&format!("[[rule]]\n{OK_RULE}\n[[rule]]\n{OK_RULE}"));
        assert!(e.contains("rule #2 (\"r\")") && e.contains("rule #1"), "{e}");
        let a = "[[audience]]\nname = \"a\"\nscopes = [\"x\"]\nmax_clearance = \"public\"\n";
        let e = err(&format!("{a}{a}"));
        assert!(e.contains("audience #2"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("networks = [\"10.0.0.0/33\"]", "10.0.0.0/33"),
            ("not_networks = [\"internal\"]", "internal"),
            ("networks = []", "`networks` must list"),
            ("stages = [\"logout\"]", "logout"),
            ("scopes_any = [\"bad\\\"scope\"]", "bad\\\"scope"),
            ("scopes_any = [\"a b\"]", "a b"),
            ("classification_at_least = \"secret\"", "secret"),
            ("time = { days = [\"monday\"] }", "monday"),
            ("time = { from = \"8:00\", to = \"17:00\" }", "8:00"),
            ("time = { from = \"08:00\" }", "both"),
            ("time = { from = \"08:00\", to = \"08:00\" }", "differ"),
            ("time = {}", "both"),
        ];
        for (line, needle) in cases {
            let e = err(&format!("[[rule]]\n{OK_RULE}{line}\n"));
            assert!(e.contains("rule #1 (\"r\")") && e.contains(needle), "{line}: {e}");
        }
    }

    #[test]
    fn whole_day_and_midnight_ends() {
        let p =
            Policy::from_toml(&format!("[[rule]]\n{OK_RULE}time = {{ from = \"18:00\", to = \"24:00\" }}\n")).unwrap();
        assert_eq!(p.rules()[0].when.time.as_ref().unwrap().minutes, Some((18 * 60, 0)));
        let p =
            Policy::from_toml(&format!("[[rule]]\n{OK_RULE}time = {{ from = \"00:00\", to = \"24:00\" }}\n")).unwrap();
        assert_eq!(p.rules()[0].when.time.as_ref().unwrap().minutes, Some((0, 24 * 60)));
    }

    #[test]
    fn versions_and_counts() {
        assert!(err("version = 2\n").contains("version 2"));
        let many: String =
            (0..=MAX_RULES).map(|i| format!("[[rule]]\nid = \"r{i}\"\neffect = \"allow\"\nreason = \"x\"\n")).collect();
        assert!(matches!(Policy::from_toml(&many), Err(PolicyError::TooMany)));
        assert!(matches!(Policy::from_toml("= broken"), Err(PolicyError::Syntax(_))));
    }

    #[test]
    fn audience_scopes_must_be_valid() {
        let e = err("[[audience]]\nname = \"a\"\nscopes = [\"ok\", \"no\\\\pe\"]\nmax_clearance = \"public\"\n");
        assert!(e.contains("audience #1 (\"a\")") && e.contains("no\\\\pe"), "{e}");
        let e = err("[[audience]]\nname = \"a\"\nscopes = [\"x\"]\nmax_clearance = \"top\"\n");
        assert!(e.contains("top"), "{e}");
    }
}
