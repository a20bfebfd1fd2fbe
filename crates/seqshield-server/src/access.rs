//! The access log and the HTTP metrics: one `info` event per answered
//! request, target `seqshield_server::access`, with `method`, `route` (the
//! matched template, never the raw path), `status`, `duration_ms`,
//! `client_ip` and `request_id`. Never the query string, headers or body:
//! they can hold codes and tokens. Silence it with
//! `SEQSHIELD_LOG=info,seqshield_server::access=off`.
//!
//! The duration runs to the response head. A request whose client went
//! away before its answer is not logged (it still leaves the in-flight
//! gauge).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Extensions, Response};
use axum::middleware::Next;

use crate::metrics::{method_label, Metrics};
use crate::request_id::RequestId;

/// The `route` label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The peer address of a request: the connection's, as served by
/// [`crate::serve()`], or a test's `MockConnectInfo`.
pub fn peer_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
}

/// The middleware (see the module docs).
pub async fn middleware(State(metrics): State<Metrics>, req: Request, next: Next) -> Response<Body> {
    let start = Instant::now();
    let method = method_label(req.method());
    let ext = req.extensions();
    let route = ext.get::<MatchedPath>().map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let client = peer_ip(ext);
    let request_id = ext.get::<RequestId>().map(|r| r.0.clone());
    let in_flight = metrics.in_flight();
    let res = next.run(req).await;
    drop(in_flight);
    let elapsed = start.elapsed();
    let status = res.status();
    metrics.observe(method, &route, status, elapsed.as_secs_f64());
    tracing::info!(
        method,
        route = %route,
        status = status.as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1e3,
        client_ip = client.map(tracing::field::display),
        request_id = request_id.as_deref(),
        "request"
    );
    res
}
