//! The configuration's key tree, read from its JSON schema: which keys
//! exist and what kind of value each takes. The environment layer uses it
//! to refuse unknown keys by name and to type values; the reference
//! generator walks it to list every key.

use std::sync::OnceLock;

use serde_json::Value;

/// Deepest `$ref` chain followed (the schema has none longer than 2).
const MAX_REF_DEPTH: usize = 16;

/// The JSON schema of [`super::Config`] as a JSON value, generated once.
pub(super) fn root() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| super::schema().to_value())
}

/// `s` with `$ref`s to `#/$defs/NAME` followed.
pub(super) fn deref<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_DEPTH {
        let target = s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name));
        match target {
            Some(t) => s = t,
            None => break,
        }
    }
    s
}

/// The alternatives a value may take: the members of `anyOf`/`oneOf`
/// (recursively, dereferenced), or `s` itself; `null` dropped.
pub(super) fn alternatives<'a>(root: &'a Value, s: &'a Value) -> Vec<&'a Value> {
    let s = deref(root, s);
    let members = ["anyOf", "oneOf"].iter().find_map(|k| s.get(*k).and_then(Value::as_array));
    match members {
        Some(ms) => ms.iter().flat_map(|m| alternatives(root, m)).collect(),
        None if is_null(s) => Vec::new(),
        None => vec![s],
    }
}

fn is_null(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("null")
}

/// The JSON types a schema names (`type` as a string or an array), `null`
/// left out.
pub(super) fn types(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|t| *t != "null")
    .collect()
}

/// Whether `s` (one alternative) is a table with named keys (a struct or
/// a tagged enum's variant).
pub(super) fn is_struct(s: &Value) -> bool {
    s.get("properties").is_some_and(Value::is_object)
}

/// The schema of a map's values, when `s` (one alternative) is a table
/// with keys of the operator's choosing.
pub(super) fn map_values(s: &Value) -> Option<&Value> {
    if is_struct(s) {
        return None;
    }
    s.get("additionalProperties").filter(|v| v.is_object())
}

/// The schema of an array's items, when `s` (one alternative) is an array.
pub(super) fn array_items(s: &Value) -> Option<&Value> {
    (types(s) == ["array"]).then(|| s.get("items")).flatten()
}

/// Whether every alternative of `s` is a string: a value for it is taken
/// as given, never parsed as TOML.
pub(super) fn takes_string(root: &Value, s: &Value) -> bool {
    let alts = alternatives(root, s);
    !alts.is_empty() && alts.iter().all(|a| types(a) == ["string"])
}

/// A key path that does not lead to a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unknown(pub(super) String);

/// The schema of the value at `path` (lower-case key names), or why no
/// setting is there.
pub(super) fn resolve<'a>(root: &'a Value, path: &[String]) -> Result<&'a Value, Unknown> {
    let mut cur = root;
    for (depth, key) in path.iter().enumerate() {
        let here = &path[..depth];
        let alts = alternatives(root, cur);
        let tables: Vec<&Value> = alts.iter().copied().filter(|a| is_struct(a) || map_values(a).is_some()).collect();
        if tables.is_empty() {
            let what = if alts.iter().any(|a| array_items(a).is_some()) {
                "an array: give the whole array as one TOML value"
            } else {
                "a single value, not a table"
            };
            return Err(Unknown(format!("`{}` is {what}", here.join("."))));
        }
        let found =
            tables.iter().find_map(|t| t.get("properties").and_then(|p| p.get(key.as_str())).or_else(|| map_values(t)));
        match found {
            Some(next) => cur = next,
            None => return Err(Unknown(unknown_key(here, key, &tables))),
        }
    }
    Ok(cur)
}

fn unknown_key(here: &[String], key: &str, tables: &[&Value]) -> String {
    let mut known: Vec<&str> = tables
        .iter()
        .filter_map(|t| t.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().map(String::as_str))
        .collect();
    known.sort_unstable();
    known.dedup();
    let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    if here.is_empty() {
        format!("unknown table `{key}`; the tables are {list}")
    } else {
        format!("unknown key `{key}` in [{}]; the keys there are {list}", here.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn known_keys_resolve_through_refs_options_maps_and_variants() {
        let root = root();
        for ok in [
            "server.listen",
            "server.tls_cert",
            "auth.signing.bits",
            "auth.federation",
            "store.backend.kind",
            "store.backend.account",
            "store.replicas.cloud.backend.bucket",
            "jobs.executor.kind",
        ] {
            resolve(root, &path(ok)).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
    }

    #[test]
    fn unknown_keys_are_named_with_what_exists() {
        let root = root();
        let e = resolve(root, &path("sever.listen")).unwrap_err().0;
        assert!(
            e.starts_with("unknown table `sever`; the tables are `annotate`, `auth`, `gpu`, `jobs`, `server`, `store`"),
            "{e}"
        );
        let e = resolve(root, &path("server.listen_addr")).unwrap_err().0;
        assert!(e.starts_with("unknown key `listen_addr` in [server]"), "{e}");
        assert!(e.contains("`listen`"), "{e}");
        let e = resolve(root, &path("server.listen.port")).unwrap_err().0;
        assert_eq!(e, "`server.listen` is a single value, not a table");
        let e = resolve(root, &path("auth.federation.issuer")).unwrap_err().0;
        assert!(e.starts_with("`auth.federation` is an array"), "{e}");
    }

    #[test]
    fn string_keys_are_told_apart() {
        let root = root();
        let is_string = |p: &str| takes_string(root, resolve(root, &path(p)).unwrap());
        assert!(is_string("server.listen"));
        assert!(is_string("server.tls_cert"), "an optional path");
        assert!(is_string("jobs.executor.onprem_partition"));
        assert!(!is_string("server.max_connections"));
        assert!(!is_string("server.public_hosts"));
        assert!(!is_string("jobs.strict"));
    }
}
