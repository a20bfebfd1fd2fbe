//! Gateway operations through the whole middleware stack: rate limiting
//! (429 shape, /healthz exempt, 401/403 tightening one client only),
//! `/metrics` behind its scrape token, request ids. Router-level tests call
//! the app with `oneshot` and a peer address in `ConnectInfo`; the last
//! ones go through a real TLS gateway.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use seqshield_server::config::ServerSettings;
use seqshield_server::metrics::{Metrics, ScrapeToken, OPENMETRICS_CONTENT_TYPE};
use seqshield_server::ratelimit::{ManualClock, RateLimitSettings};
use seqshield_server::request_id::X_REQUEST_ID;
use seqshield_server::{app_with_operations, Operations};
use serde_json::Value;
use tower::ServiceExt;

fn routes() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/items/{id}", get(|| async { "item" }))
        .route("/deny", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/forbid", get(|| async { StatusCode::FORBIDDEN }))
        .route("/rid", get(|h: HeaderMap| async move { h.get(X_REQUEST_ID).unwrap().to_str().unwrap().to_owned() }))
}

fn limits(client_rps: u32, client_burst: u32) -> ServerSettings {
    ServerSettings {
        rate_limit: RateLimitSettings { client_rps, client_burst, ..Default::default() },
        ..Default::default()
    }
}

/// The app on a clock that stands still: buckets only refill when told.
fn app(settings: &ServerSettings, ops: Operations) -> Router {
    app_with_operations(routes(), settings, ops.clock(Arc::new(ManualClock::new())))
}

fn from(peer: &str, uri: &str) -> Request<Body> {
    let mut req = Request::get(uri).body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(format!("{peer}:40000").parse::<SocketAddr>().unwrap()));
    req
}

async fn status(app: &Router, req: Request<Body>) -> StatusCode {
    app.clone().oneshot(req).await.unwrap().status()
}

/// How many of `n` requests from `peer` to `uri` get `want`.
async fn count(app: &Router, peer: &str, uri: &str, n: usize, want: StatusCode) -> usize {
    let mut got = 0;
    for _ in 0..n {
        if status(app, from(peer, uri)).await == want {
            got += 1;
        }
    }
    got
}

#[tokio::test]
async fn rejected_request_is_json_429_with_retry_after() {
    let app = app_with_operations(routes(), &limits(1, 1), Operations::new())
        .layer(MockConnectInfo("192.0.2.10:1234".parse::<SocketAddr>().unwrap()));
    let get = || Request::get("/ok").body(Body::empty()).unwrap();
    assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), StatusCode::OK);
    let res = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = res.headers().clone();
    assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/json");
    for (name, value) in seqshield_server::app::security_headers() {
        assert_eq!(h.get(&name).unwrap(), value, "{name}");
    }
    assert!(h.get(X_REQUEST_ID).is_some(), "a 429 carries its request id too");
    let body: Value = serde_json::from_slice(&to_bytes(res.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["error_description"].as_str().unwrap().contains("Retry-After"));
}

/// Load balancers and supervisors poll /healthz; limiting it would take a
/// busy gateway out of rotation.
#[tokio::test]
async fn healthz_is_never_limited() {
    let app = app(&limits(1, 1), Operations::new());
    assert_eq!(count(&app, "192.0.2.1", "/healthz", 50, StatusCode::OK).await, 50);
    assert_eq!(count(&app, "192.0.2.1", "/ok", 50, StatusCode::OK).await, 1);
}

#[tokio::test]
async fn per_client_limit_trips_at_the_configured_burst() {
    let app = app(&limits(10, 25), Operations::new());
    assert_eq!(count(&app, "192.0.2.1", "/ok", 40, StatusCode::OK).await, 25);
    assert_eq!(count(&app, "192.0.2.2", "/ok", 40, StatusCode::OK).await, 25);
}

#[tokio::test]
async fn global_limit_trips_across_clients() {
    let mut settings = limits(100, 100);
    settings.rate_limit.global_rps = 10;
    settings.rate_limit.global_burst = 10;
    let app = app(&settings, Operations::new());
    let mut ok = 0;
    for i in 0..30 {
        if status(&app, from(&format!("192.0.2.{i}"), "/ok")).await == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
}

/// A client guessing credentials gets slower; its neighbours do not.
#[tokio::test]
async fn auth_failures_tighten_only_that_client() {
    let app = app(&limits(100, 100), Operations::new());
    assert_eq!(count(&app, "198.51.100.1", "/deny", 5, StatusCode::UNAUTHORIZED).await, 5);
    assert_eq!(count(&app, "198.51.100.1", "/forbid", 4, StatusCode::FORBIDDEN).await, 4);
    // Score 9: rate and burst 100 / (1 + 9) = 10.
    assert_eq!(count(&app, "198.51.100.1", "/ok", 100, StatusCode::OK).await, 10);
    assert_eq!(count(&app, "198.51.100.2", "/ok", 100, StatusCode::OK).await, 100);
}

async fn scrape(app: &Router, peer: &str, auth: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut req = from(peer, "/metrics");
    if let Some(a) = auth {
        req.headers_mut().insert(header::AUTHORIZATION, a.parse().unwrap());
    }
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts.status, parts.headers, String::from_utf8(to_bytes(body, 1 << 20).await.unwrap().to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_need_the_scrape_token_and_use_route_templates() {
    let token = ScrapeToken::generate().unwrap();
    let bearer = format!("Bearer {}", token.expose_secret());
    let app = app(&ServerSettings::default(), Operations::new().scrape_token(token));
    assert_eq!(status(&app, from("192.0.2.1", "/items/42")).await, StatusCode::OK);
    assert_eq!(status(&app, from("192.0.2.1", "/no/such/thing")).await, StatusCode::NOT_FOUND);

    let (st, h, body) = scrape(&app, "192.0.2.9", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap().starts_with("Bearer"));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"], "invalid_token");
    let (st, _, _) = scrape(&app, "192.0.2.9", Some("Bearer 0000")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let (st, h, text) = scrape(&app, "192.0.2.9", Some(&bearer)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), OPENMETRICS_CONTENT_TYPE);
    check_exposition_format(&text);
    for line in [
        r#"seqshield_http_requests_total{method="GET",route="/items/{id}",status="200"} 1"#,
        r#"seqshield_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"seqshield_http_requests_total{method="GET",route="/metrics",status="401"} 2"#,
        r#"seqshield_http_request_duration_seconds_count{route="/items/{id}"} 1"#,
        "seqshield_rate_limit_clients 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(!text.contains("/items/42") && !text.contains("/no/such"), "raw paths are never labels");
    assert!(!text.contains(&bearer[7..]), "the token is never exposed");
}

/// Checks the OpenMetrics text a Prometheus server parses: every sample
/// belongs to a family declared by a `# TYPE` line before it, samples are
/// `name{labels} value`, and the text ends with `# EOF`.
fn check_exposition_format(text: &str) {
    let mut families: Vec<(String, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram", "info", "unknown"].contains(&kind), "{line}");
            families.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "value {value:?} in {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "labels in {line}");
            }
        }
        let (family, kind) = families.last().unwrap_or_else(|| panic!("sample before any # TYPE: {line}"));
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        assert!(suffixes.iter().any(|s| name == format!("{family}{s}")), "{name} is not in family {family} ({kind})");
    }
    for name in [
        "seqshield_http_requests",
        "seqshield_http_request_duration_seconds",
        "seqshield_http_requests_in_flight",
        "seqshield_rate_limit_trips",
        "seqshield_rate_limited_requests",
        "seqshield_rate_limit_clients",
        "seqshield_build_info",
    ] {
        assert!(families.iter().any(|(f, _)| f == name), "# TYPE {name} missing in\n{text}");
    }
}

/// Guessing the scrape token is an authentication failure like any other.
#[tokio::test]
async fn a_wrong_scrape_token_counts_as_an_auth_failure() {
    let ops = Operations::new().scrape_token(ScrapeToken::generate().unwrap());
    let app = app(&limits(100, 100), ops);
    for _ in 0..9 {
        assert_eq!(scrape(&app, "192.0.2.66", Some("Bearer guess")).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(count(&app, "192.0.2.66", "/ok", 100, StatusCode::OK).await, 10);
}

#[tokio::test]
async fn without_a_scrape_token_there_is_no_metrics_route() {
    let app = app(&ServerSettings::default(), Operations::new());
    assert_eq!(status(&app, from("192.0.2.1", "/metrics")).await, StatusCode::NOT_FOUND);
}

/// Metrics registered by another service appear in the same scrape.
#[tokio::test]
async fn a_shared_registry_takes_other_metrics() {
    let metrics = Metrics::new();
    let jobs = seqshield_server::metrics::prometheus_client::metrics::counter::Counter::<u64>::default();
    metrics.register("seqshield_jobs_accepted", "Tasks accepted", jobs.clone());
    jobs.inc();
    let token = ScrapeToken::generate().unwrap();
    let bearer = format!("Bearer {}", token.expose_secret());
    let app = app(&ServerSettings::default(), Operations::new().metrics(metrics).scrape_token(token));
    let (_, _, text) = scrape(&app, "192.0.2.1", Some(&bearer)).await;
    assert!(text.lines().any(|l| l == "seqshield_jobs_accepted_total 1"), "{text}");
}

async fn request_id(app: &Router, given: &[&str]) -> (String, String) {
    let mut req = from("192.0.2.1", "/rid");
    for g in given {
        req.headers_mut().append(X_REQUEST_ID, g.parse().unwrap());
    }
    let res = app.clone().oneshot(req).await.unwrap();
    let echoed = res.headers().get(X_REQUEST_ID).unwrap().to_str().unwrap().to_owned();
    let seen = String::from_utf8(to_bytes(res.into_body(), 1024).await.unwrap().to_vec()).unwrap();
    (echoed, seen)
}

#[tokio::test]
async fn request_ids_are_kept_generated_or_replaced() {
    let app = app(&ServerSettings::default(), Operations::new());
    let (echoed, seen) = request_id(&app, &["abc-123_X.9"]).await;
    assert_eq!((echoed.as_str(), seen.as_str()), ("abc-123_X.9", "abc-123_X.9"));
    let generated = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let (echoed, seen) = request_id(&app, &[]).await;
    assert!(generated(&echoed), "{echoed}");
    assert_eq!(echoed, seen, "the handler sees the id in force");
    assert_ne!(request_id(&app, &[]).await.0, echoed, "a fresh id per request");
    let long = "x".repeat(65);
    for bad in [&["has space"][..], &["semi;colon"], &[long.as_str()], &["a", "b"]] {
        let (echoed, seen) = request_id(&app, bad).await;
        assert!(generated(&echoed), "{bad:?} kept as {echoed}");
        assert_eq!(echoed, seen);
    }
    assert_eq!(request_id(&app, &[&"y".repeat(64)]).await.0, "y".repeat(64));
}

/// Over real TLS: the peer address is the connection's, /metrics answers
/// with the token, and every answer carries a request id.
#[tokio::test]
async fn real_gateway_limits_and_serves_metrics() {
    let data = tempfile::tempdir().unwrap();
    let token = ScrapeToken::load_or_create(data.path()).unwrap();
    let bearer = format!("Bearer {}", token.expose_secret());
    let settings = ServerSettings { rate_limit: limits(1, 3).rate_limit, ..common::settings() };
    let running = common::start_with(data.path(), settings, routes(), Operations::new().scrape_token(token)).await;
    let http = common::client(&running.cert);

    let mut codes = Vec::new();
    for _ in 0..4 {
        let res = http.get(running.url("/ok")).send().await.unwrap();
        assert!(res.headers().get("x-request-id").is_some());
        codes.push(res.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 429]);
    let res = http.get(running.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // The client bucket is empty; the scrape waits for its token.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = http.get(running.url("/metrics")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"seqshield_http_requests_total{method="GET",route="/ok",status="429"} 1"#), "{text}");
    assert!(text.contains(r#"seqshield_rate_limit_trips_total{scope="client"} 1"#), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    running.stop().await;
}
