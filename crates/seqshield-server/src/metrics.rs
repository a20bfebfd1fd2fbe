//! Prometheus metrics: the registry, the gateway's own metrics, and the
//! token-protected `GET /metrics` route.
//!
//! The gateway registers:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `seqshield_http_requests_total` | counter | `method`, `route`, `status` |
//! | `seqshield_http_request_duration_seconds` | histogram | `route` |
//! | `seqshield_http_requests_in_flight` | gauge | |
//! | `seqshield_rate_limit_trips_total` | counter | `scope` |
//! | `seqshield_rate_limited_requests_total` | counter | `scope` |
//! | `seqshield_rate_limit_clients` | gauge | |
//! | `seqshield_build_info` | gauge (1) | `version` |
//!
//! `route` is the route template axum matched (`/objects/{id}`), or
//! `unmatched`; never the raw path, whose values an attacker chooses.
//! `method` is one of the nine standard methods or `OTHER`. The duration
//! runs from the request entering the gateway's middleware to its response
//! head (a streamed body may take longer).
//!
//! Other services add theirs through [`Metrics::register`] on the handle
//! they get from the operator (the crate re-exports [`prometheus_client`]).
//!
//! `GET /metrics` answers the OpenMetrics text format
//! (`application/openmetrics-text; version=1.0.0`, which Prometheus reads)
//! to a request with `Authorization: Bearer <token>`, the token being the
//! [`ScrapeToken`] in `DATA/metrics.token`; anything else is a 401 that
//! counts as an authentication failure for the rate limiter. Without a
//! scrape token the route does not exist.

mod token;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::ratelimit::Scope;

pub use self::token::{ScrapeToken, ScrapeTokenError, MAX_SCRAPE_TOKEN_LEN, MIN_SCRAPE_TOKEN_LEN, SCRAPE_TOKEN_FILE};
pub use prometheus_client;

/// Where the scrape route is mounted.
pub const METRICS_PATH: &str = "/metrics";
/// The content type of a scrape.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Upper bounds of the request-duration histogram's buckets, in seconds.
pub const DURATION_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

#[derive(Debug)]
struct Families {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    trips: Family<ScopeLabels, Counter>,
    rejected: Family<ScopeLabels, Counter>,
    clients: Gauge,
}

/// A handle on the gateway's metrics registry; clones share it.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    families: Arc<Families>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding the gateway's metrics (see the module docs).
    pub fn new() -> Self {
        let families = Families {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            in_flight: Gauge::default(),
            trips: Family::default(),
            rejected: Family::default(),
            clients: Gauge::default(),
        };
        let mut r = Registry::default();
        r.register("seqshield_http_requests", "HTTP requests answered", families.requests.clone());
        r.register_with_unit(
            "seqshield_http_request_duration",
            "Time from a request entering the gateway to its response head",
            Unit::Seconds,
            families.duration.clone(),
        );
        r.register("seqshield_http_requests_in_flight", "HTTP requests being handled", families.in_flight.clone());
        r.register(
            "seqshield_rate_limit_trips",
            "Rate-limit episodes begun (a party going from allowed to limited)",
            families.trips.clone(),
        );
        r.register("seqshield_rate_limited_requests", "Requests refused with 429", families.rejected.clone());
        r.register("seqshield_rate_limit_clients", "Clients tracked by the rate limiter", families.clients.clone());
        // Every scope from the start: a series that appears only on the
        // first trip breaks `rate()` and absence alerts.
        for scope in [Scope::Global, Scope::Client, Scope::Overflow] {
            let _ = families.trips.get_or_create(&ScopeLabels { scope: scope.as_str() });
            let _ = families.rejected.get_or_create(&ScopeLabels { scope: scope.as_str() });
        }
        let build: Family<BuildLabels, Gauge> = Family::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        r.register("seqshield_build_info", "The running build (value 1)", build);
        Self { registry: Arc::new(Mutex::new(r)), families: Arc::new(families) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers another metric (name without the `_total` a counter gets
    /// on output). Keep label values bounded: never raw paths, user names
    /// or ids.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// Runs `f` on the registry itself (units, sub-registries, collectors).
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.lock())
    }

    /// Every metric in the OpenMetrics text format, `# EOF` included.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.lock())?;
        Ok(out)
    }

    /// Counts one request in flight until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.families.in_flight.inc();
        InFlight(self.families.in_flight.clone())
    }

    /// Counts one answered request.
    pub(crate) fn observe(&self, method: &'static str, route: &str, status: StatusCode, secs: f64) {
        let f = &self.families;
        f.requests.get_or_create(&RequestLabels { method, route: route.to_owned(), status: status.as_u16() }).inc();
        f.duration.get_or_create(&RouteLabels { route: route.to_owned() }).observe(secs);
    }

    pub(crate) fn rate_limit_tripped(&self, scope: Scope) {
        self.families.trips.get_or_create(&ScopeLabels { scope: scope.as_str() }).inc();
    }

    pub(crate) fn rate_limit_rejected(&self, scope: Scope) {
        self.families.rejected.get_or_create(&ScopeLabels { scope: scope.as_str() }).inc();
    }

    pub(crate) fn rate_limit_clients(&self, n: usize) {
        self.families.clients.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Decrements the in-flight gauge when dropped (also when a request is
/// cancelled).
#[derive(Debug)]
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A metric label for `method`: a standard method's name, else `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// What the scrape route needs.
#[derive(Clone, Debug)]
struct Scrape {
    metrics: Metrics,
    token: Arc<ScrapeToken>,
}

/// `GET /metrics` ([`METRICS_PATH`]): `metrics` to requests bearing `token`.
pub fn router(metrics: Metrics, token: Arc<ScrapeToken>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(Scrape { metrics, token })
}

/// `GET /metrics`.
async fn scrape(State(s): State<Scrape>, headers: HeaderMap) -> Response<Body> {
    if !s.token.authorizes(&headers) {
        let mut res = crate::app::error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Some("the metrics scrape token is required (Authorization: Bearer, see DATA/metrics.token)"),
        );
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"metrics\""));
        return res;
    }
    match s.metrics.encode() {
        Ok(text) => {
            let mut res = Response::new(Body::from(text));
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE));
            res
        }
        Err(_) => crate::app::error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_gateway_metrics_with_types() {
        let m = Metrics::new();
        m.observe("GET", "/objects/{id}", StatusCode::OK, 0.003);
        m.rate_limit_tripped(crate::ratelimit::Scope::Client);
        let guard = m.in_flight();
        let text = m.encode().unwrap();
        drop(guard);
        for line in [
            "# TYPE seqshield_http_requests counter",
            "seqshield_http_requests_total{method=\"GET\",route=\"/objects/{id}\",status=\"200\"} 1",
            "# TYPE seqshield_http_request_duration_seconds histogram",
            "seqshield_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/objects/{id}\"} 1",
            "# TYPE seqshield_http_requests_in_flight gauge",
            "seqshield_http_requests_in_flight 1",
            "seqshield_rate_limit_trips_total{scope=\"client\"} 1",
            "# TYPE seqshield_rate_limited_requests counter",
            "# TYPE seqshield_rate_limit_clients gauge",
            &format!("seqshield_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
        }
        assert!(m.encode().unwrap().contains("seqshield_http_requests_in_flight 0"));
    }

    #[test]
    fn others_can_register() {
        let m = Metrics::new();
        let c: Counter = Counter::default();
        m.register("seqshield_store_parts", "Parts stored", c.clone());
        c.inc();
        assert!(m.encode().unwrap().contains("seqshield_store_parts_total 1"));
    }

    #[test]
    fn the_route_is_at_metrics_path() {
        let r = router(Metrics::new(), Arc::new(ScrapeToken::generate().unwrap()));
        assert!(r.has_routes());
        assert_eq!(METRICS_PATH, "/metrics");
    }

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
