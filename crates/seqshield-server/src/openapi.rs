//! `GET /openapi.json`: one OpenAPI 3.0 document for every route the
//! gateway serves.
//!
//! Two hand-written documents are kept beside the code: `openapi/gateway.json`
//! (token service, object store and DRS, worker reports, operations) and
//! `openapi/tes.json` (GA4GH TES 1.1, also served alone at
//! `/ga4gh/tes/v1/openapi.json`). [`document`] merges them: the TES paths
//! under `/ga4gh/tes/v1`, its schemas beside the gateway's (its `Error`
//! renamed `TesError`). A test reads the routers' sources and fails when a
//! route is missing from the document or the document names a route that
//! does not exist.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

/// The gateway's own part of the document.
const GATEWAY: &str = include_str!("../openapi/gateway.json");
/// Where the TES routes are mounted.
const TES_PREFIX: &str = "/ga4gh/tes/v1";

/// The merged document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| merge(GATEWAY, crate::jobs::OPENAPI))
}

fn merge(gateway: &str, tes: &str) -> Value {
    let mut doc: Value = serde_json::from_str(gateway).expect("openapi/gateway.json is valid JSON");
    // The TES document's references, pointed at the renamed error schema.
    let tes = tes.replace("\"#/components/schemas/Error\"", "\"#/components/schemas/TesError\"");
    let tes: Value = serde_json::from_str(&tes).expect("openapi/tes.json is valid JSON");
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (p, item) in tes["paths"].as_object().expect("TES paths") {
        paths.insert(format!("{TES_PREFIX}{p}"), item.clone());
    }
    let schemas = doc["components"]["schemas"].as_object_mut().expect("schemas");
    for (name, s) in tes["components"]["schemas"].as_object().expect("TES schemas") {
        let name = if name == "Error" { "TesError".to_owned() } else { name.clone() };
        schemas.insert(name, s.clone());
    }
    doc
}

/// The route serving [`document`].
pub fn router() -> Router {
    Router::new().route("/openapi.json", get(serve))
}

async fn serve() -> Response {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let body = BYTES.get_or_init(|| serde_json::to_vec(document()).expect("serialisable"));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.as_slice()).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The routers' sources: every `.route(...)` the gateway mounts.
    const SOURCES: &[(&str, &str)] = &[
        ("auth http.rs", include_str!("../../seqshield-auth/src/http.rs")),
        ("data.rs", include_str!("data.rs")),
        ("jobs.rs", include_str!("jobs.rs")),
        ("annotate.rs", include_str!("annotate.rs")),
        ("app.rs", include_str!("app.rs")),
        ("openapi.rs", include_str!("openapi.rs")),
        ("metrics.rs", include_str!("metrics.rs")),
    ];

    /// (METHOD, path) of every `.route("PATH", get(..).post(..))` in `src`,
    /// test modules excluded.
    fn routes(src: &str) -> Vec<(String, String)> {
        let src = src.split("#[cfg(test)]").next().unwrap_or(src);
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find(".route(") {
            rest = rest[i + 7..].trim_start();
            let Some(r) = rest.strip_prefix('"') else { continue };
            rest = r;
            let end = rest.find('"').unwrap();
            let path = rest[..end].to_owned();
            // The handler expression: up to the parenthesis closing `.route(`.
            let mut depth = 1;
            let mut j = 0;
            for (k, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    j = k;
                    break;
                }
            }
            let expr = &rest[end..j];
            for m in ["get", "post", "put", "delete", "patch"] {
                let at_start = expr.contains(&format!(", {m}(")) || expr.contains(&format!(",\n{m}("));
                let chained = expr.contains(&format!(".{m}("));
                let bare = expr.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == m)
                    && expr.contains(&format!("{m}("));
                if at_start || chained || bare {
                    out.push((m.to_uppercase(), path.clone()));
                }
            }
            rest = &rest[j..];
        }
        out
    }

    fn documented() -> BTreeSet<(String, String)> {
        let mut set = BTreeSet::new();
        for (path, item) in document()["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
                set.insert((m.to_uppercase(), path.clone()));
            }
        }
        set
    }

    /// `POST /tasks/{id}` is how axum sees TES's `/tasks/{id}:cancel`.
    fn as_documented(m: &str, p: &str) -> String {
        if m == "POST" && p == "/ga4gh/tes/v1/tasks/{id}" {
            "/ga4gh/tes/v1/tasks/{id}:cancel".to_owned()
        } else {
            p.to_owned()
        }
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let mut mounted = BTreeSet::new();
        for (name, src) in SOURCES {
            let r = routes(src);
            assert!(!r.is_empty() || *name == "app.rs", "no routes found in {name}: the parser is stale");
            for (m, p) in r {
                mounted.insert((m.clone(), as_documented(&m, &p)));
            }
        }
        // /healthz is mounted by app() itself.
        mounted.insert(("GET".into(), "/healthz".into()));
        let doc = documented();
        let missing: Vec<_> = mounted.difference(&doc).collect();
        let stale: Vec<_> = doc.difference(&mounted).collect();
        assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
        assert!(stale.is_empty(), "documented routes that no router mounts: {stale:?}");
        assert!(mounted.len() >= 30, "{mounted:?}");
    }

    #[test]
    fn the_parser_sees_methods() {
        let src = "Router::new().route(\"/a\", get(x).post(y)).route(\n    \"/b/{id}\",\n    put(p).get(g).layer(L::max(3)),\n)";
        let r = routes(src);
        assert!(r.contains(&("GET".into(), "/a".into())) && r.contains(&("POST".into(), "/a".into())));
        assert!(r.contains(&("PUT".into(), "/b/{id}".into())) && r.contains(&("GET".into(), "/b/{id}".into())));
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn references_resolve_and_operation_ids_are_unique() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#/components/schemas/") {
            rest = &rest[i + 21..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling reference to {name}");
        }
        let mut ids = BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for (k, op) in item.as_object().unwrap() {
                if k != "parameters" {
                    let id = op["operationId"].as_str().unwrap_or_else(|| panic!("operation without id: {op}"));
                    assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
                }
            }
        }
    }
}
