//! The middleware every route runs behind.
//!
//! From the outside in:
//!
//! 0. unread request bodies ([`crate::unread_body`]): an HTTP/1.1 body a
//!    handler answered without reading is drained when small, else the
//!    response says `Connection: close`;
//! 1. request id ([`crate::request_id`]): `X-Request-Id` kept or made,
//!    echoed, and a `request` tracing span around the rest;
//! 2. access log and HTTP metrics ([`crate::access`]), which see the final
//!    status;
//! 3. rate limiting ([`crate::ratelimit`]): 429 with `Retry-After` from an
//!    empty global or per-client bucket; a 401 or 403 answer tightens the
//!    client's limits; `/healthz` is exempt;
//! 4. security headers: `Strict-Transport-Security: max-age=31536000`,
//!    `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (always);
//!    `Referrer-Policy: no-referrer`, `Cache-Control: no-store` and
//!    `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`
//!    unless the route set its own;
//! 5. JSON errors: a 404, 405, 408, 413 or 500 whose body is empty or plain
//!    text (axum's and tower-http's defaults) gets a stable JSON body;
//! 6. a panic catcher: a panicking handler answers 500
//!    `{"error":"server_error"}`, never the panic text (release builds
//!    abort on panic instead, see the workspace profile);
//! 7. a request timeout (408);
//! 8. a body limit for extractors (`Json`, `Bytes`, `Form`, `String`): 413.
//!    A route that must take more sets its own
//!    [`axum::extract::DefaultBodyLimit`]; one that streams
//!    [`axum::body::Body`] itself must bound what it reads.
//!
//! The client's address is available to handlers as
//! `axum::extract::ConnectInfo<std::net::SocketAddr>` when served by
//! [`crate::serve()`].
//!
//! With a scrape token in its [`Operations`], the app also serves
//! `GET /metrics` ([`crate::metrics`]).

use std::any::Any;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Response, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::ServerSettings;
use crate::metrics;
use crate::operations::Operations;
use crate::ratelimit::{self, MonotonicClock, RateLimiter};

/// `Strict-Transport-Security` value: one year (RFC 6797 §6.1.1).
pub const HSTS: &str = "max-age=31536000";
/// Default `Content-Security-Policy`: the API serves no active content.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// The liveness route (never rate limited).
pub const HEALTHZ_PATH: &str = "/healthz";

/// [`app_with`] with the default [`ServerSettings`] limits.
pub fn app(routes: Router) -> Router {
    app_with(routes, &ServerSettings::default())
}

/// [`app_with_operations`] with no audit sink, a private metrics registry
/// and no `/metrics` route.
pub fn app_with(routes: Router, settings: &ServerSettings) -> Router {
    app_with_operations(routes, settings, Operations::default())
}

/// Wraps `routes` in the gateway's middleware (see the module docs), adds
/// `GET /healthz` → `{"status":"ok"}`, `GET /metrics` when `ops` has a
/// scrape token, and a JSON 404 fallback.
///
/// # Panics
///
/// If `routes` already has a `/healthz` route, or a `/metrics` route and
/// `ops` a scrape token (a programming error, at start-up, like any axum
/// route overlap).
pub fn app_with_operations(routes: Router, settings: &ServerSettings, ops: Operations) -> Router {
    let body_limit = usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX);
    let metrics = ops.metrics.unwrap_or_default();
    let clock = ops.clock.unwrap_or_else(|| Arc::new(MonotonicClock::new()));
    let mut limiter = RateLimiter::new(settings.rate_limit.clone(), clock).with_metrics(&metrics);
    if let Some(sink) = ops.audit {
        limiter = limiter.with_audit(sink);
    }
    let mut routes = routes.route(HEALTHZ_PATH, get(healthz));
    if let Some(token) = ops.scrape_token {
        routes = routes.merge(metrics::router(metrics.clone(), token));
    }
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, settings.request_timeout()))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::map_response(json_errors))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS)))
        .layer(axum::middleware::from_fn_with_state(Arc::new(limiter), ratelimit::middleware))
        .layer(axum::middleware::from_fn_with_state(metrics, crate::access::middleware))
        .layer(axum::middleware::from_fn(crate::request_id::middleware))
        .layer(axum::middleware::from_fn(crate::unread_body::middleware))
}

/// Sets [`security_headers`] on a response made outside the header layers
/// (the rate limiter's 429).
pub(crate) fn insert_security_headers(headers: &mut HeaderMap) {
    for (name, value) in security_headers() {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A JSON error response `{"error": code}` plus `error_description` when
/// given, in the OAuth 2.0 style (RFC 6749 §5.2).
pub fn error_response(status: StatusCode, code: &'static str, description: Option<&'static str>) -> Response<Body> {
    let body = match description {
        Some(d) => serde_json::json!({ "error": code, "error_description": d }),
        None => serde_json::json!({ "error": code }),
    };
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> Response<Body> {
    error_response(StatusCode::NOT_FOUND, "not_found", None)
}

fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
    // The payload may hold request data; the default panic hook has already
    // reported it on the server's stderr.
    tracing::error!("a request handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
}

/// Gives framework-made error responses a JSON body. A route's own JSON (or
/// HTML, or any other typed) body is left alone.
async fn json_errors(res: Response<Body>) -> Response<Body> {
    let (code, description) = match res.status() {
        StatusCode::NOT_FOUND => ("not_found", None),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", None),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", None),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", Some("request body too large")),
        StatusCode::INTERNAL_SERVER_ERROR => ("server_error", None),
        _ => return res,
    };
    let replaceable = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.to_str().is_ok_and(|s| s.trim_start().to_ascii_lowercase().starts_with("text/plain")));
    if !replaceable {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let fresh = error_response(parts.status, code, description);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in fresh.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, fresh.into_body())
}

/// The headers [`app_with`] sets on every response, for tests and docs.
pub fn security_headers() -> [(HeaderName, &'static str); 6] {
    [
        (header::STRICT_TRANSPORT_SECURITY, HSTS),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, DEFAULT_CSP),
    ]
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::Request;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let res = app.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    fn get_req(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    fn routes() -> Router {
        Router::new()
            .route("/echo", post(|b: axum::body::Bytes| async move { b.len().to_string() }))
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("secret detail 42");
                    }
                    "unreachable"
                }),
            )
            .route("/own-cache", get(|| async { ([(header::CACHE_CONTROL, "max-age=60")], "x") }))
            .route(
                "/html-404",
                get(|| async { (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html")], "<p>no</p>") }),
            )
            .route("/slow", get(|| async { tokio::time::sleep(std::time::Duration::from_secs(5)).await }))
    }

    #[tokio::test]
    async fn healthz_and_headers() {
        let (status, headers, body) = call(app(routes()), get_req("/healthz")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"status":"ok"}));
        for (name, value) in security_headers() {
            assert_eq!(headers.get(&name).unwrap(), value, "{name}");
        }
    }

    #[tokio::test]
    async fn unknown_path_is_json_404() {
        let (status, headers, body) = call(app(routes()), get_req("/nope")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, serde_json::json!({"error":"not_found"}));
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }

    #[tokio::test]
    async fn wrong_method_is_json_405_with_allow() {
        let (status, headers, body) = call(app(routes()), get_req("/echo")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body, serde_json::json!({"error":"method_not_allowed"}));
        assert!(headers.get(header::ALLOW).is_some());
    }

    #[tokio::test]
    async fn oversize_body_is_json_413() {
        let settings = ServerSettings { max_body_bytes: 16, ..Default::default() };
        let req = Request::post("/echo").body(Body::from(vec![b'x'; 17])).unwrap();
        let (status, _, body) = call(app_with(routes(), &settings), req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body, serde_json::json!({"error":"invalid_request","error_description":"request body too large"}));
        let req = Request::post("/echo").body(Body::from(vec![b'x'; 16])).unwrap();
        assert_eq!(call(app_with(routes(), &settings), req).await.0, StatusCode::OK);
    }

    /// A panic message can carry request data or internals; it must never
    /// reach the client.
    #[tokio::test]
    async fn panic_is_opaque_500() {
        let res = app(routes()).oneshot(get_req("/panic")).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        assert_eq!(&bytes[..], br#"{"error":"server_error"}"#);
    }

    #[tokio::test]
    async fn route_choices_are_kept() {
        let (_, headers, _) = call(app(routes()), get_req("/own-cache")).await;
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "max-age=60");
        let res = app(routes()).oneshot(get_req("/html-404")).await.unwrap();
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), "text/html");
    }

    #[tokio::test]
    async fn slow_handler_times_out_as_json_408() {
        let settings = ServerSettings { request_timeout_secs: 1, ..Default::default() };
        let (status, _, body) = call(app_with(routes(), &settings), get_req("/slow")).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body, serde_json::json!({"error":"request_timeout"}));
    }
}
