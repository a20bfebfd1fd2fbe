//! What the gateway's middleware needs beyond its settings: the audit log
//! for rate-limit trips, the metrics registry, the scrape token that opens
//! `/metrics`, and the clock of the rate limiter.
//!
//! ```
//! use std::sync::Arc;
//! use seqshield_server::metrics::{Metrics, ScrapeToken};
//! use seqshield_server::Operations;
//!
//! let metrics = Metrics::new(); // keep a clone to register more metrics
//! let ops = Operations::new().metrics(metrics.clone()).scrape_token(ScrapeToken::generate()?);
//! let app = seqshield_server::app::app_with_operations(axum::Router::new(), &Default::default(), ops);
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use seqshield_auth::audit::AuditSink;

use crate::metrics::{Metrics, ScrapeToken};
use crate::ratelimit::Clock;

/// The gateway's operational plumbing; every part optional. Without an
/// audit sink, trips are only logged; without metrics, a private registry
/// is used; without a scrape token there is no `/metrics` route; without
/// a clock, the real monotonic one.
#[derive(Clone, Default)]
pub struct Operations {
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    pub(crate) metrics: Option<Metrics>,
    pub(crate) scrape_token: Option<Arc<ScrapeToken>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field("audit", &self.audit.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("scrape_token", &self.scrape_token.is_some())
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

impl Operations {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rate-limit trips and recoveries go to `sink` (the audit log).
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The registry the gateway's metrics go into.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves `GET /metrics` to requests bearing `token`.
    pub fn scrape_token(mut self, token: ScrapeToken) -> Self {
        self.scrape_token = Some(Arc::new(token));
        self
    }

    /// The rate limiter's time source (tests move a
    /// [`crate::ratelimit::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}
