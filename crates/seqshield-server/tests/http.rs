//! The gateway over real TLS with a pinned reqwest client: health, JSON
//! errors, limits, panics, client address, connection cap.

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_404_405_with_security_headers() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let http = common::client(&running.cert);

    let res = http.get(running.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for (name, value) in seqshield_server::app::security_headers() {
        assert_eq!(res.headers().get(name.as_str()).unwrap(), value, "{name}");
    }
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status":"ok"}));

    let res = http.get(running.url("/no/such/path")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers().get("content-type").unwrap(), "application/json");
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"error":"not_found"}));

    let res = http.delete(running.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"error":"method_not_allowed"}));
    running.stop().await;
}

#[tokio::test]
async fn oversize_body_is_json_413() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let http = common::client(&running.cert);
    let limit = seqshield_server::config::DEFAULT_MAX_BODY_BYTES as usize;

    let res = http.post(running.url("/echo")).body(vec![b'a'; limit]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), limit.to_string());

    let res = http.post(running.url("/echo")).body(vec![b'a'; limit + 1]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error":"invalid_request","error_description":"request body too large"})
    );
    running.stop().await;
}

/// The panic message names a secret; the client must see only the code.
#[tokio::test]
async fn panicking_handler_is_opaque_500_and_server_lives_on() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let http = common::client(&running.cert);
    let res = http.get(running.url("/panic")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.text().await.unwrap();
    assert_eq!(body, r#"{"error":"server_error"}"#);
    assert!(!body.contains("secret") && !body.contains("panic"));
    let res = http.get(running.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    running.stop().await;
}

#[tokio::test]
async fn handlers_see_the_client_address() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let http = common::client(&running.cert);
    let res = http.get(running.url("/ip")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "127.0.0.1");
    running.stop().await;
}

/// hyper answers 431 (RFC 6585 §5) to a head over `max_header_bytes`.
#[tokio::test]
async fn oversize_headers_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let http = common::client(&running.cert);
    let big = "x".repeat(seqshield_server::config::DEFAULT_MAX_HEADER_BYTES + 1024);
    let res = http.get(running.url("/healthz")).header("x-big", big).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let small = "x".repeat(1024);
    let res = http.get(running.url("/healthz")).header("x-small", small).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    running.stop().await;
}

/// Connections over `max_connections` are closed at once; a freed slot is
/// usable again.
#[tokio::test]
async fn connection_cap_is_enforced() {
    let data = tempfile::tempdir().unwrap();
    let settings = seqshield_server::config::ServerSettings { max_connections: 1, ..common::settings() };
    let running = common::start(data.path(), settings).await;

    let hog = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = || common::client(&running.cert); // a new client: no pooled connection
    assert!(fresh().get(running.url("/healthz")).send().await.is_err(), "second connection admitted");

    drop(hog);
    let mut ok = false;
    for _ in 0..50 {
        if fresh().get(running.url("/healthz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "slot not freed after the first connection closed");
    running.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_stops_listening() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let addr = running.addr;
    running.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
