//! Graceful shutdown: once asked to stop, the gateway refuses new
//! connections at once, and a request already in flight, streaming its
//! body either way, still completes within `SHUTDOWN_GRACE`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use rustls::pki_types::ServerName;
use seqshield_server::serve::SHUTDOWN_GRACE;
use seqshield_server::Operations;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Chunks of the slow download, 200 ms apart.
const CHUNKS: usize = 8;
const CHUNK: usize = 1024;
/// Size of the slow upload.
const UPLOAD: usize = 64 * 1024;

fn slow_routes() -> Router {
    Router::new()
        .route(
            "/stream",
            get(|| async {
                let chunks = futures::stream::iter(0..CHUNKS).then(|i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; CHUNK]))
                });
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/upload",
            post(|body: Body| async move {
                let mut n = 0;
                let mut stream = body.into_data_stream();
                while let Some(chunk) = stream.next().await {
                    n += chunk.map_err(|_| axum::http::StatusCode::BAD_REQUEST)?.len();
                }
                Ok::<_, axum::http::StatusCode>(n.to_string())
            }),
        )
}

/// Waits (at most 2 s) until nothing accepts connections at `addr`.
async fn listener_closed(addr: std::net::SocketAddr) -> bool {
    for _ in 0..40 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn in_flight_download_completes_and_new_connections_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let mut running = common::start_with(data.path(), common::settings(), slow_routes(), Operations::new()).await;
    let http = common::client(&running.cert);
    let mut res = http.get(running.url("/stream")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut got = res.chunk().await.unwrap().unwrap().len();

    running.begin_stop();
    assert!(listener_closed(running.addr).await, "still accepting connections after shutdown began");
    while let Some(chunk) = res.chunk().await.unwrap() {
        got += chunk.len();
    }
    assert_eq!(got, CHUNKS * CHUNK, "the in-flight download was cut");
    tokio::time::timeout(SHUTDOWN_GRACE, running.join()).await.expect("the gateway stopped within the grace");
}

#[tokio::test]
async fn in_flight_upload_completes_after_shutdown_begins() {
    let data = tempfile::tempdir().unwrap();
    let mut running = common::start_with(data.path(), common::settings(), slow_routes(), Operations::new()).await;
    let tls = TlsConnector::from(Arc::new(seqshield_server::tls::client_config(&running.cert).unwrap()));
    let tcp = TcpStream::connect(running.addr).await.unwrap();
    let mut conn = tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let head = format!("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {UPLOAD}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&[b'y'; UPLOAD / 2]).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    running.begin_stop();
    assert!(listener_closed(running.addr).await, "still accepting connections after shutdown began");
    conn.write_all(&[b'y'; UPLOAD / 2]).await.unwrap();
    conn.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(SHUTDOWN_GRACE, conn.read_to_end(&mut answer)).await.expect("answered within the grace").ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&UPLOAD.to_string()), "the whole body was read: {answer}");
    tokio::time::timeout(SHUTDOWN_GRACE, running.join()).await.expect("the gateway stopped within the grace");
}
