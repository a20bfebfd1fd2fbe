//! Settings from environment variables: the generic
//! `SEQSHIELD_<TABLE>__<KEY>[__<SUBKEY>…]` form for every key, and the
//! older named variables ([`super::ENV_VARS`]) for the `[server]` keys and
//! `auth.issuer`.
//!
//! Each variable becomes a key path and a TOML value that is merged into
//! the file's table before the table is deserialised once, so an unknown
//! key is refused as it would be in the file, and every error names the
//! variable.

use std::ffi::OsString;

use super::{keys, ConfigError};

/// Prefix of every variable read here.
pub const ENV_PREFIX: &str = "SEQSHIELD_";
/// Separates the levels of a key path in a generic variable:
/// `SEQSHIELD_JOBS__EXECUTOR__KIND` is `jobs.executor.kind`.
pub const ENV_SEPARATOR: &str = "__";
/// Most levels in a generic variable's key path.
pub const MAX_ENV_DEPTH: usize = 8;
/// Largest value read from one variable (64 KiB).
pub const MAX_ENV_VALUE_BYTES: usize = 64 << 10;

/// One setting taken from the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvOverride {
    /// The variable, e.g. `SEQSHIELD_SERVER__MAX_CONNECTIONS`.
    pub var: String,
    /// The key path, lower-case: `["server", "max_connections"]`.
    pub path: Vec<String>,
    /// The value.
    pub value: toml::Value,
}

/// How a named variable's text becomes a value.
#[derive(Clone, Copy, Debug)]
enum Named {
    /// Taken as given.
    Text,
    /// A socket address, checked here so the error names the variable.
    Addr,
    /// A non-negative integer.
    Integer,
    /// A comma-separated list of strings.
    List,
}

/// The named variables, each with the key it sets.
const NAMED: &[(&str, &str, &str, Named)] = &[
    (super::ENV_LISTEN, "server", "listen", Named::Addr),
    (super::ENV_PUBLIC_HOSTS, "server", "public_hosts", Named::List),
    (super::ENV_TLS_CERT, "server", "tls_cert", Named::Text),
    (super::ENV_TLS_KEY, "server", "tls_key", Named::Text),
    (super::ENV_MAX_BODY_BYTES, "server", "max_body_bytes", Named::Integer),
    (super::ENV_MAX_HEADER_BYTES, "server", "max_header_bytes", Named::Integer),
    (super::ENV_REQUEST_TIMEOUT_SECS, "server", "request_timeout_secs", Named::Integer),
    (super::ENV_MAX_CONNECTIONS, "server", "max_connections", Named::Integer),
    (super::ENV_ISSUER, "auth", "issuer", Named::Text),
];

/// Every named variable with the key it sets (`server.listen`).
pub fn named_vars() -> impl Iterator<Item = (&'static str, String)> {
    NAMED.iter().map(|(var, table, key, _)| (*var, format!("{table}.{key}")))
}

/// The named variable that sets `table.key`, if there is one.
pub fn named_var(path: &[&str]) -> Option<&'static str> {
    match path {
        [table, key] => NAMED.iter().find(|(_, t, k, _)| t == table && k == key).map(|(v, ..)| *v),
        _ => None,
    }
}

/// The generic variable for a key path: `SEQSHIELD_` and the keys,
/// upper-case, joined by `__`.
pub fn generic_var(path: &[&str]) -> String {
    let keys: Vec<String> = path.iter().map(|k| k.to_ascii_uppercase()).collect();
    format!("{ENV_PREFIX}{}", keys.join(ENV_SEPARATOR))
}

/// The settings in `vars` (the process environment in
/// [`super::Config::load`]): every `SEQSHIELD_…__…` variable, by name,
/// then the named variables, which win over the generic form of the same
/// key. Other variables, and empty values, are ignored.
pub fn env_overrides<I, K, V>(vars: I) -> Result<Vec<EnvOverride>, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let mut ours: Vec<(String, OsString)> = vars
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.into().into_string().ok()?;
            name.starts_with(ENV_PREFIX).then(|| (name, v.into()))
        })
        .collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    let text = |var: &str, value: &OsString| -> Result<Option<String>, ConfigError> {
        let value = value.to_str().ok_or_else(|| env_err(var, "the value is not valid UTF-8"))?;
        if value.len() > MAX_ENV_VALUE_BYTES {
            return Err(env_err(var, &format!("the value is longer than {MAX_ENV_VALUE_BYTES} bytes")));
        }
        Ok((!value.trim().is_empty()).then(|| value.to_owned()))
    };
    let root = keys::root();
    let mut out = Vec::new();
    for (var, value) in &ours {
        let rest = &var[ENV_PREFIX.len()..];
        if !rest.contains(ENV_SEPARATOR) {
            continue;
        }
        let path: Vec<String> = rest.split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(env_err(var, "empty key name (three or more underscores in a row, or `__` at the end)"));
        }
        if path.len() > MAX_ENV_DEPTH {
            return Err(env_err(var, &format!("more than {MAX_ENV_DEPTH} levels")));
        }
        let schema = keys::resolve(root, &path).map_err(|e| env_err(var, &e.0))?;
        let Some(text) = text(var, value)? else { continue };
        let value = if keys::takes_string(root, schema) { toml::Value::String(text) } else { parse_value(&text) };
        out.push(EnvOverride { var: var.clone(), path, value });
    }
    for (var, table, key, kind) in NAMED {
        let Some((_, value)) = ours.iter().find(|(v, _)| v == var) else { continue };
        let Some(text) = text(var, value)? else { continue };
        let text = text.trim();
        let value = match kind {
            Named::Text => toml::Value::String(text.to_owned()),
            Named::Addr => {
                text.parse::<std::net::SocketAddr>().map_err(|e| env_err(var, &e.to_string()))?;
                toml::Value::String(text.to_owned())
            }
            Named::Integer => {
                let n: u64 = text.parse().map_err(|e: std::num::ParseIntError| env_err(var, &e.to_string()))?;
                let n = i64::try_from(n).map_err(|_| env_err(var, "number too large"))?;
                toml::Value::Integer(n)
            }
            Named::List => toml::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(|h| toml::Value::String(h.to_owned()))
                    .collect(),
            ),
        };
        out.push(EnvOverride { var: (*var).to_owned(), path: vec![(*table).to_owned(), (*key).to_owned()], value });
    }
    Ok(out)
}

/// A value as TOML (integer, float, boolean, array, inline table, quoted
/// string); anything else, a date included, as the string it is.
fn parse_value(text: &str) -> toml::Value {
    #[derive(serde::Deserialize)]
    struct One {
        v: toml::Value,
    }
    match toml::from_str::<One>(&format!("v = {text}")) {
        Ok(One { v }) if !matches!(v, toml::Value::Datetime(_)) => v,
        _ => toml::Value::String(text.to_owned()),
    }
}

fn env_err(var: &str, reason: &str) -> ConfigError {
    ConfigError::Env { var: var.to_owned(), reason: reason.to_owned() }
}

/// Sets `path` in `table` to `value`, making the tables on the way.
pub(super) fn set(table: &mut toml::Table, o: &EnvOverride) -> Result<(), ConfigError> {
    let (last, parents) = o.path.split_last().expect("a key path has at least two keys");
    let mut cur = table;
    for (i, key) in parents.iter().enumerate() {
        let entry = cur.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => {
                let at = o.path[..=i].join(".");
                return Err(env_err(&o.var, &format!("`{at}` is set to a single value in the file, not a table")));
            }
        };
    }
    cur.insert(last.clone(), o.value.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(var: &str, value: &str) -> Result<Vec<EnvOverride>, ConfigError> {
        env_overrides([(var, value)])
    }

    #[test]
    fn values_are_typed_as_toml_with_a_string_fallback() {
        let v = |var: &str, text: &str| one(var, text).unwrap().remove(0).value;
        assert_eq!(v("SEQSHIELD_SERVER__MAX_CONNECTIONS", "10"), toml::Value::Integer(10));
        assert_eq!(v("SEQSHIELD_JOBS__STRICT", "false"), toml::Value::Boolean(false));
        assert_eq!(
            v("SEQSHIELD_SERVER__PUBLIC_HOSTS", r#"["a.example", "b.example"]"#),
            toml::Value::Array(vec!["a.example".into(), "b.example".into()])
        );
        let table = v("SEQSHIELD_STORE__BACKEND", r#"{ kind = "s3", bucket = "b", region = "r" }"#);
        assert_eq!(table.get("bucket").and_then(toml::Value::as_str), Some("b"));
        // Not TOML: the text itself.
        assert_eq!(v("SEQSHIELD_STORE__DATABASE", "sqlite:///x.db"), "sqlite:///x.db".into());
        // String keys take the text as given, even when it looks like a number.
        assert_eq!(v("SEQSHIELD_JOBS__EXECUTOR__ONPREM_PARTITION", "2024"), "2024".into());
        assert_eq!(v("SEQSHIELD_JOBS__EXECUTOR__KIND", "slurm"), "slurm".into());
        assert_eq!(parse_value("1.5"), toml::Value::Float(1.5));
        assert_eq!(parse_value("\"quoted\""), "quoted".into());
        assert_eq!(parse_value("1979-05-27"), "1979-05-27".into(), "a date stays text");
    }

    #[test]
    fn names_are_lower_cased_and_split_on_double_underscores() {
        let o = one("SEQSHIELD_SERVER__RATE_LIMIT__CLIENT_RPS", "5").unwrap();
        assert_eq!(o[0].path, ["server", "rate_limit", "client_rps"]);
        assert_eq!(o[0].value, toml::Value::Integer(5));
        let o = one("SEQSHIELD_STORE__REPLICAS__CLOUD__BACKEND__KIND", "s3").unwrap();
        assert_eq!(o[0].path, ["store", "replicas", "cloud", "backend", "kind"]);
    }

    /// Variables without `__` are used for other things (passphrase, token,
    /// data directory, log filter) and must never be read as settings.
    #[test]
    fn other_variables_are_ignored() {
        let o = env_overrides([
            ("SEQSHIELD_PASSPHRASE", "x"),
            ("SEQSHIELD_DATA_DIR", "/d"),
            ("SEQSHIELD_LOG", "debug"),
            ("SEQSHIELD_TOKEN", "t"),
            ("SEQSHIELD_SERVER", "https://gw"),
            ("HOME", "/root"),
            ("OTHER__SERVER__LISTEN", "1"),
        ])
        .unwrap();
        assert!(o.is_empty(), "{o:?}");
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_variable() {
        let e = one("SEQSHIELD_SEVER__LISTEN", "127.0.0.1:1").unwrap_err().to_string();
        assert!(e.contains("SEQSHIELD_SEVER__LISTEN: unknown table `sever`"), "{e}");
        let e = one("SEQSHIELD_SERVER__LISTEN_ADDR", "127.0.0.1:1").unwrap_err().to_string();
        assert!(e.contains("SEQSHIELD_SERVER__LISTEN_ADDR: unknown key `listen_addr` in [server]"), "{e}");
        let e = one("SEQSHIELD_SERVER__", "1").unwrap_err().to_string();
        assert!(e.contains("SEQSHIELD_SERVER__: empty key name"), "{e}");
        let e = one("SEQSHIELD_SERVER__LISTEN__PORT", "1").unwrap_err().to_string();
        assert!(e.contains("`server.listen` is a single value"), "{e}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert!(one("SEQSHIELD_SERVER__MAX_CONNECTIONS", " ").unwrap().is_empty());
        assert!(one("SEQSHIELD_MAX_CONNECTIONS", "").unwrap().is_empty());
    }

    #[test]
    fn named_variables_come_last_and_are_checked() {
        let o =
            env_overrides([("SEQSHIELD_MAX_CONNECTIONS", "3"), ("SEQSHIELD_SERVER__MAX_CONNECTIONS", "4")]).unwrap();
        assert_eq!(
            o.iter().map(|o| o.var.as_str()).collect::<Vec<_>>(),
            ["SEQSHIELD_SERVER__MAX_CONNECTIONS", "SEQSHIELD_MAX_CONNECTIONS"]
        );
        let e = one("SEQSHIELD_LISTEN", "localhost:1").unwrap_err().to_string();
        assert!(e.contains("SEQSHIELD_LISTEN"), "{e}");
        assert_eq!(
            one("SEQSHIELD_PUBLIC_HOSTS", " a.example, b.example ,").unwrap()[0].value,
            toml::Value::Array(vec!["a.example".into(), "b.example".into()])
        );
    }

    #[test]
    fn variable_names_for_the_reference() {
        assert_eq!(generic_var(&["jobs", "executor", "kind"]), "SEQSHIELD_JOBS__EXECUTOR__KIND");
        assert_eq!(named_var(&["server", "listen"]), Some(super::super::ENV_LISTEN));
        assert_eq!(named_var(&["server", "tls_key", "x"]), None);
    }
}
