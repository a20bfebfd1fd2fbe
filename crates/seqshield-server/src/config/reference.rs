//! `docs/configuration.md`: every key of the configuration, generated from
//! the JSON schema of [`Config`] (so from the structs' doc comments) and
//! the values of [`Config::default()`]. A test fails when the committed
//! file differs from [`reference_markdown`]; `SEQSHIELD_BLESS=1` rewrites it.

use serde_json::Value;

use super::{env, keys, Config};

/// Where the reference lives, relative to the workspace root.
pub const REFERENCE_PATH: &str = "docs/configuration.md";
/// Set to `1` to make the docs test rewrite [`REFERENCE_PATH`].
pub const BLESS_VAR: &str = "SEQSHIELD_BLESS";
/// The command that regenerates the reference.
const REGENERATE: &str = "SEQSHIELD_BLESS=1 cargo test -p seqshield-server --lib config::reference";

/// The top-level tables in the order the reference lists them; a test
/// checks that this is every table [`Config`] has.
const TABLES: [&str; 6] = ["server", "auth", "store", "jobs", "annotate", "gpu"];

/// One step of a key path.
#[derive(Clone, Debug)]
enum Seg {
    /// A named key.
    Key(String),
    /// Any key of a map (`store.replicas.NAME`).
    Name,
    /// Any entry of an array of tables (`auth.federation[]`).
    Item,
}

fn dotted(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Name => s.push_str(".NAME"),
            Seg::Item => s.push_str("[]"),
        }
    }
    s
}

/// The table header a path opens: `[store.replicas.NAME]`, `[[auth.federation]]`.
fn header(path: &[Seg]) -> String {
    let name = dotted(path).replace("[]", "");
    if matches!(path.last(), Some(Seg::Item)) {
        format!("[[{name}]]")
    } else {
        format!("[{name}]")
    }
}

/// The variables that set a key: its generic form (none inside an array,
/// which is set whole) and its named alias.
fn env_vars(path: &[Seg]) -> Vec<String> {
    let mut keys = Vec::new();
    for seg in path {
        match seg {
            Seg::Key(k) => keys.push(k.as_str()),
            Seg::Name => keys.push("<name>"),
            Seg::Item => return Vec::new(),
        }
    }
    let mut vars = vec![env::generic_var(&keys)];
    vars.extend(env::named_var(&keys).map(str::to_owned));
    vars
}

/// One key.
#[derive(Debug)]
struct Row {
    key: String,
    ty: String,
    default: String,
    env: Vec<String>,
    description: String,
}

/// One table and its keys.
#[derive(Debug)]
struct Section {
    header: String,
    intro: String,
    rows: Vec<Row>,
}

/// The reference, as committed in [`REFERENCE_PATH`].
pub fn reference_markdown() -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "<!-- Generated from the configuration structs by seqshield_server::config::reference_markdown(); \
         do not edit. Regenerate: {REGENERATE} -->\n\n"
    ));
    out.push_str(PREAMBLE);
    out.push_str("\n| variable | key |\n|---|---|\n");
    for (var, key) in env::named_vars() {
        out.push_str(&format!("| `{var}` | `{key}` |\n"));
    }
    for section in sections() {
        out.push_str(&format!("\n## `{}`\n\n", section.header));
        if !section.intro.is_empty() {
            out.push_str(&section.intro);
            out.push_str("\n\n");
        }
        out.push_str("| key | type | default | environment | description |\n|---|---|---|---|---|\n");
        for r in &section.rows {
            let env = if r.env.is_empty() {
                "—".to_owned()
            } else {
                r.env.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join("<br>")
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                r.key,
                cell(&r.ty),
                cell(&r.default),
                env,
                cell(&r.description)
            ));
        }
    }
    out
}

const PREAMBLE: &str = "# Configuration reference

Every key of the gateway's configuration: its type, its default, the
environment variables that set it, and what it does. Every key is optional
unless it says `required`; unknown keys are refused (a typo is an error,
never a setting silently ignored).

## Where settings come from

Lowest first:

1. built-in defaults (the `default` column);
2. one TOML file: `--config FILE` (or `$SEQSHIELD_CONFIG`), else
   `DATA/seqshield.toml` when it exists;
3. environment variables;
4. command-line flags (`seqshield serve --listen`).

Every key can be set from the environment as
`SEQSHIELD_<TABLE>__<KEY>[__<SUBKEY>…]`: the key path in capitals, its
levels joined by a double underscore (`SEQSHIELD_SERVER__MAX_CONNECTIONS=10`,
`SEQSHIELD_JOBS__EXECUTOR__KIND=slurm`,
`SEQSHIELD_SERVER__RATE_LIMIT__CLIENT_RPS=5`); names are lower-cased to find
the key. The value is read as a TOML value (an integer, float, boolean,
array such as `[\"a\", \"b\"]`, inline table such as
`{ kind = \"s3\", bucket = \"b\", region = \"eu\" }`, or quoted string) and
otherwise taken as a string; a key whose type is `string` always takes the
text as given. An empty value counts as unset. An unknown key is refused
with an error naming the variable, as it would be in the file. An array of
tables is set whole (`SEQSHIELD_AUTH__FEDERATION='[{ … }]'`). Variables
without a double underscore (`SEQSHIELD_PASSPHRASE`, `SEQSHIELD_TOKEN`,
`SEQSHIELD_DATA_DIR`, `SEQSHIELD_LOG`, …) are not settings.

`seqshield config check --data-dir DIR` loads and validates the settings
exactly as `seqshield serve` would and prints the effective configuration
(secrets in URLs omitted); `seqshield config schema` prints the JSON schema
this page is generated from; `seqshield doctor` lists the settings and
defaults that are weaker than production.

The older named variables below set the same keys, and win over the
double-underscore form of the same key:
";

/// Text for a table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A doc comment as one line, intra-doc links (`` [`NAME`] ``) as code.
fn describe(s: &Value) -> String {
    let text = s.get("description").and_then(Value::as_str).unwrap_or_default();
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    let mut rest = joined.as_str();
    while let Some(i) = rest.find("[`") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find("`]") {
            Some(j) if !after[j + 2..].starts_with('(') => {
                out.push_str(&after[..=j]);
                rest = &after[j + 2..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A key's description: its own, else its type's.
fn description(root: &Value, prop: &Value) -> String {
    let own = describe(prop);
    if own.is_empty() {
        describe(keys::deref(root, prop))
    } else {
        own
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// A JSON value as inline TOML.
fn toml_inline(v: &Value) -> String {
    match toml::Value::try_from(v) {
        Ok(t) => t.to_string(),
        Err(_) => v.to_string(),
    }
}

fn type_name(root: &Value, prop: &Value) -> String {
    let alts = keys::alternatives(root, prop);
    let mut choices = Vec::new();
    let mut names = Vec::new();
    for a in &alts {
        if let Some(c) = a.get("const") {
            choices.push(format!("`{}`", toml_inline(c)));
        } else if let Some(e) = a.get("enum").and_then(Value::as_array) {
            choices.extend(e.iter().map(|c| format!("`{}`", toml_inline(c))));
        } else if let Some(items) = keys::array_items(a) {
            names.push(format!("array of {}", type_name(root, items)));
        } else if keys::map_values(a).is_some() || keys::is_struct(a) {
            names.push("table".to_owned());
        } else {
            names.extend(keys::types(a).iter().map(|t| match *t {
                "number" => "float".to_owned(),
                other => other.to_owned(),
            }));
        }
    }
    if !choices.is_empty() {
        names.push(format!("one of {}", choices.join(", ")));
    }
    names.join(" or ")
}

/// What a key holds, for the walk.
enum Shape<'a> {
    /// A table of named keys (a struct, or a tagged enum's variants).
    Table,
    /// A map whose values are tables.
    MapOfTables(&'a Value),
    /// An array whose entries are tables.
    ArrayOfTables(&'a Value),
    /// A single value.
    Leaf,
}

fn shape<'a>(root: &'a Value, prop: &'a Value) -> Shape<'a> {
    let alts = keys::alternatives(root, prop);
    if !alts.is_empty() && alts.iter().all(|a| keys::is_struct(a)) {
        return Shape::Table;
    }
    if let [one] = alts.as_slice() {
        let tables = |v: &Value| keys::alternatives(root, v).iter().all(|a| keys::is_struct(a));
        if let Some(values) = keys::map_values(one).filter(|v| tables(v)) {
            return Shape::MapOfTables(values);
        }
        if let Some(items) = keys::array_items(one).filter(|v| tables(v)) {
            return Shape::ArrayOfTables(items);
        }
    }
    Shape::Leaf
}

/// Every table, parents before children, top-level tables in [`TABLES`] order.
fn sections() -> Vec<Section> {
    let root = keys::root();
    let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for name in TABLES {
        let Some(prop) = root.get("properties").and_then(|p| p.get(name)) else { continue };
        table(root, prop, vec![Seg::Key(name.to_owned())], defaults.get(name), description(root, prop), &mut out);
    }
    out
}

/// The section for the table at `path` (schema `s`, default instance
/// `default` when there is one), then the sections of its sub-tables.
fn table(root: &Value, s: &Value, path: Vec<Seg>, default: Option<&Value>, intro: String, out: &mut Vec<Section>) {
    let variants: Vec<&Value> = keys::alternatives(root, s).into_iter().filter(|a| keys::is_struct(a)).collect();
    let tag = (variants.len() > 1).then(|| tag_key(&variants)).flatten();
    let header = header(&path);
    let intro = match intro.strip_prefix(&format!("`{header}`: ")) {
        Some(rest) => upper_first(rest),
        None => intro,
    };
    let mut section = Section { header, intro, rows: Vec::new() };
    let mut children = Vec::new();
    if let Some(tag) = &tag {
        let prop = &variants[0]["properties"][tag];
        let mut key = path.clone();
        key.push(Seg::Key(tag.clone()));
        let kinds: Vec<String> = variants
            .iter()
            .map(|v| format!("`{}`, {}", toml_inline(&v["properties"][tag]["const"]), lower_first(&describe(v))))
            .collect();
        section.rows.push(Row {
            key: dotted(&key),
            ty: format!(
                "one of {}",
                variants
                    .iter()
                    .map(|v| format!("`{}`", toml_inline(&v["properties"][tag]["const"])))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            default: default_text(prop, default.and_then(|d| d.get(tag)), true),
            env: env_vars(&key),
            description: format!("Which kind of `{}`: {}", dotted(&path), kinds.join(" ")),
        });
    }
    for v in &variants {
        let (condition, instance) = match &tag {
            Some(tag) => {
                let c = &v["properties"][tag.as_str()]["const"];
                let applies = default.and_then(|d| d.get(tag.as_str())) == Some(c);
                (format!("With {tag} = `{}`: ", toml_inline(c)), default.filter(|_| applies))
            }
            None => (String::new(), default),
        };
        let required: Vec<&str> = v
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(props) = v.get("properties").and_then(Value::as_object) else { continue };
        for (name, prop) in props {
            if Some(name) == tag.as_ref() {
                continue;
            }
            let mut key = path.clone();
            key.push(Seg::Key(name.clone()));
            let value = instance.and_then(|d| d.get(name));
            let desc = format!("{condition}{}", description(root, prop));
            match shape(root, prop) {
                Shape::Table => children.push((prop, key, value, desc)),
                Shape::MapOfTables(values) => {
                    section.rows.push(leaf_row(
                        root,
                        prop,
                        &key,
                        value,
                        required.contains(&name.as_str()),
                        desc.clone(),
                    ));
                    let mut entry = key.clone();
                    entry.push(Seg::Name);
                    let intro = format!(
                        "One entry of `{}`, named by its key (lower-case when set from the environment).",
                        dotted(&key)
                    );
                    children.push((values, entry, None, intro));
                }
                Shape::ArrayOfTables(items) => {
                    section.rows.push(leaf_row(
                        root,
                        prop,
                        &key,
                        value,
                        required.contains(&name.as_str()),
                        desc.clone(),
                    ));
                    let mut entry = key.clone();
                    entry.push(Seg::Item);
                    let outer: Vec<Seg> = key.iter().take_while(|s| !matches!(s, Seg::Item)).cloned().collect();
                    let intro = format!(
                        "One entry of `{}`. Keys inside an array have no variables of their own: set the \
                         whole `{}` array with `{}`.",
                        dotted(&key),
                        dotted(&outer),
                        env_vars(&outer).join("`, `")
                    );
                    children.push((items, entry, None, intro));
                }
                Shape::Leaf => {
                    section.rows.push(leaf_row(root, prop, &key, value, required.contains(&name.as_str()), desc));
                }
            }
        }
    }
    out.push(section);
    for (s, key, value, intro) in children {
        table(root, s, key, value, intro, out);
    }
}

/// The key every variant of a tagged enum fixes to a constant (`kind`).
fn tag_key(variants: &[&Value]) -> Option<String> {
    let first = variants.first()?.get("properties")?.as_object()?;
    first
        .keys()
        .find(|k| {
            variants
                .iter()
                .all(|v| v.get("properties").and_then(|p| p.get(k.as_str())).and_then(|p| p.get("const")).is_some())
        })
        .cloned()
}

fn leaf_row(
    root: &Value,
    prop: &Value,
    key: &[Seg],
    value: Option<&Value>,
    required: bool,
    description: String,
) -> Row {
    Row {
        key: dotted(key),
        ty: type_name(root, prop),
        default: default_text(prop, value, required),
        env: env_vars(key),
        description,
    }
}

/// The default: the host-dependent text the schema gives, else the value
/// in [`Config::default()`], else the schema's default, else `required` or
/// none.
fn default_text(prop: &Value, value: Option<&Value>, required: bool) -> String {
    if let Some(text) = prop.get("x-default-text").and_then(Value::as_str) {
        return text.to_owned();
    }
    match value.or_else(|| prop.get("default")) {
        Some(Value::Null) => "none".to_owned(),
        Some(v) => format!("`{}`", toml_inline(v)),
        None if required => "required".to_owned(),
        None => "none".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn reference_file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(REFERENCE_PATH)
    }

    /// The committed reference must be what the structs say today.
    #[test]
    fn docs_configuration_md_is_current() {
        let path = reference_file();
        let want = reference_markdown();
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have == want {
            return;
        }
        if std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1") {
            std::fs::write(&path, &want).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            return;
        }
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        panic!(
            "{REFERENCE_PATH} is out of date with the configuration structs (first difference at line {}):\n  \
             committed: {:?}\n  generated: {:?}\nRegenerate it with `{REGENERATE}` and commit it.",
            line + 1,
            have.lines().nth(line).unwrap_or("(end of file)"),
            want.lines().nth(line).unwrap_or("(end of file)"),
        );
    }

    #[test]
    fn every_table_is_listed() {
        let mut have: Vec<&str> = keys::root()["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        have.sort_unstable();
        let mut listed = TABLES.to_vec();
        listed.sort_unstable();
        assert_eq!(have, listed);
    }

    /// Every setting has a row with a description, and every default value
    /// is a row.
    #[test]
    fn every_key_is_described() {
        let sections = sections();
        let rows: Vec<&Row> = sections.iter().flat_map(|s| &s.rows).collect();
        for r in &rows {
            assert!(!r.description.trim().is_empty(), "{} has no description", r.key);
            assert!(!r.ty.is_empty(), "{} has no type", r.key);
        }
        fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
            match v.as_object() {
                Some(m) if !m.is_empty() && !prefix.ends_with("replicas") => {
                    for (k, v) in m {
                        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                        leaves(&p, v, out);
                    }
                }
                _ => out.push(prefix.to_owned()),
            }
        }
        let mut want = Vec::new();
        leaves("", &serde_json::to_value(Config::default()).unwrap(), &mut want);
        for key in want {
            assert!(rows.iter().any(|r| r.key == key), "no row for {key}");
        }
        for key in ["store.backend.account", "store.replicas.NAME.backend.kind", "auth.federation[].mappings[].group"] {
            assert!(rows.iter().any(|r| r.key == key), "no row for {key}");
        }
    }

    #[test]
    fn rows_carry_types_defaults_and_variables() {
        let sections = sections();
        let row = |key: &str| sections.iter().flat_map(|s| &s.rows).find(|r| r.key == key).unwrap();
        let r = row("server.listen");
        assert_eq!((r.ty.as_str(), r.default.as_str()), ("string", "`\"127.0.0.1:8443\"`"));
        assert_eq!(r.env, ["SEQSHIELD_SERVER__LISTEN", "SEQSHIELD_LISTEN"]);
        let r = row("jobs.executor.kind");
        assert_eq!(r.ty, "one of `\"local\"`, `\"slurm\"`");
        assert_eq!(r.env, ["SEQSHIELD_JOBS__EXECUTOR__KIND"]);
        assert_eq!(row("jobs.executor.local_slots").default, "the host's cores");
        assert_eq!(row("server.tls_cert").default, "none");
        assert_eq!(row("store.backend.kind").default, "`\"local\"`");
        assert_eq!(row("store.backend.account").default, "required");
        assert!(row("store.backend.account").description.starts_with("With kind = `\"azure\"`: "));
        assert_eq!(row("store.replicas.NAME.backend.kind").env, ["SEQSHIELD_STORE__REPLICAS__<NAME>__BACKEND__KIND"]);
        assert!(row("auth.federation[].issuer").env.is_empty());
        assert_eq!(row("auth.federation[].subject_claim").default, "`\"oid\"`");
        assert!(!row("auth.access_ttl_secs").description.contains("[`"), "intra-doc links are flattened");
    }

    #[test]
    fn headers_and_link_flattening() {
        assert_eq!(header(&[Seg::Key("auth".into()), Seg::Key("federation".into()), Seg::Item]), "[[auth.federation]]");
        assert_eq!(
            header(&[Seg::Key("store".into()), Seg::Key("replicas".into()), Seg::Name]),
            "[store.replicas.NAME]"
        );
        let d = describe(&serde_json::json!({"description": "at most [`MAX`]\n  (see [`x`](y))"}));
        assert_eq!(d, "at most `MAX` (see [`x`](y))");
    }
}
