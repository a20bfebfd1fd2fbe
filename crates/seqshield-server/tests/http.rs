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

/// An HTTP/1.1 connection to `running` over pinned TLS, as a client that
/// writes requests byte by byte would make it.
async fn raw_http1(running: &common::Running) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut cfg = seqshield_server::tls::client_config(&running.cert).unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)).connect(name, tcp).await.unwrap()
}

/// Reads one response: its head (lower-cased) and its body. `None` if the
/// connection ends first.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await.expect("response in time") {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

/// A request answered from its head alone (a 405 here) whose body is still
/// on its way must not leave a connection that closes under the client's
/// next request: the small body is drained and the connection stays
/// usable; a large one gets `Connection: close` said out loud.
#[tokio::test]
async fn a_body_left_unread_never_breaks_the_next_request_on_the_connection() {
    use tokio::io::AsyncWriteExt;
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;

    let mut tls = raw_http1(&running).await;
    for _ in 0..3 {
        tls.write_all(b"PUT /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\n").await.unwrap();
        tls.flush().await.unwrap();
        // The handler answers before the body arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tls.write_all(b"0123456789").await.unwrap();
        tls.flush().await.unwrap();
        let (head, _) = read_response(&mut tls).await.expect("a response to the PUT");
        assert!(head.starts_with("http/1.1 405"), "{head}");
        assert!(!head.contains("connection: close"), "a small body should be drained: {head}");
    }
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
    tls.flush().await.unwrap();
    let (head, body) = read_response(&mut tls).await.expect("the connection was closed under the next request");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, br#"{"status":"ok"}"#);

    // Too much to drain first: the response says the connection ends, and
    // the server reads the rest meanwhile (a lingering close), so a client
    // that writes its whole body before reading still gets the answer.
    let mut tls = raw_http1(&running).await;
    let big = 32 * 1024 * 1024;
    assert!(big > seqshield_server::unread_body::DRAIN_LIMIT);
    let head = format!("PUT /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: {big}\r\n\r\n");
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&vec![b'x'; usize::try_from(big).unwrap()]).await.expect("the server stopped reading the body");
    tls.flush().await.unwrap();
    let (head, _) = read_response(&mut tls).await.expect("a response to the large PUT");
    assert!(head.starts_with("http/1.1 405") && head.contains("connection: close"), "{head}");
    assert!(read_response(&mut tls).await.is_none(), "the connection ends after the answer");
    running.stop().await;
}
