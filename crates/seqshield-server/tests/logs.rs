//! The JSON log format of `seqshield serve --json`: every event logged
//! while a request is handled carries its request id, and the access log
//! has one event per request without query strings or headers. A test
//! binary of its own, so that its scoped subscriber sees every event.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn every_event_of_a_request_carries_its_id() {
    let buf = Buffer::default();
    let filter = tracing_subscriber::EnvFilter::new("info");
    let _guard = tracing::subscriber::set_default(seqshield_server::logging::json_subscriber(buf.clone(), filter));

    let routes = Router::new().route(
        "/work/{id}",
        get(|| async {
            tracing::info!(step = "inside", "handler ran");
            StatusCode::ACCEPTED
        }),
    );
    let app = seqshield_server::app(routes);
    let mut req =
        Request::get("/work/7?code=sUpErSeCrEt").header("x-request-id", "trace-me-1").body(Body::empty()).unwrap();
    req.headers_mut().insert(header::AUTHORIZATION, "Bearer hunter2-token".parse().unwrap());
    req.extensions_mut().insert(ConnectInfo("203.0.113.4:5555".parse::<SocketAddr>().unwrap()));
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let handler = events.iter().find(|e| e["fields"]["message"] == "handler ran").expect("handler event");
    assert_eq!(handler["span"]["request_id"], "trace-me-1", "{handler}");
    assert_eq!(handler["span"]["name"], "request");
    let access: Vec<&Value> = events.iter().filter(|e| e["target"] == "seqshield_server::access").collect();
    assert_eq!(access.len(), 1, "one access event per request: {text}");
    let f = &access[0]["fields"];
    assert_eq!(access[0]["level"], "INFO");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["route"], "/work/{id}");
    assert_eq!(f["status"], 202);
    assert_eq!(f["client_ip"], "203.0.113.4");
    assert_eq!(f["request_id"], "trace-me-1");
    assert!(f["duration_ms"].as_f64().is_some(), "{f}");
    assert_eq!(access[0]["span"]["request_id"], "trace-me-1");
    for secret in ["sUpErSeCrEt", "hunter2", "/work/7"] {
        assert!(!text.contains(secret), "{secret} reached the log:\n{text}");
    }
}
