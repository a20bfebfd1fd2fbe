//! The seqshield gateway: one axum application behind a strict TLS 1.3
//! listener. Every service (auth today; TES, data, annotate and audit later)
//! hands its routes to [`app()`] and [`serve()`].
//!
//! - [`tls`]: the TLS policy as code: rustls with the aws-lc-rs provider cut
//!   down to TLS 1.3, `TLS13_AES_256_GCM_SHA384` and `secp384r1`, for the
//!   server and for our own clients ([`tls::client_config`] pins one
//!   certificate; nothing here turns verification off).
//! - [`cert`]: the gateway's certificate: the operator's, or a self-signed
//!   ECDSA P-384 one generated on first start under `DATA/tls/`, with the
//!   fingerprints clients pin.
//! - [`config`]: the TOML file (`[server]`, `[auth]`) layered with
//!   `SEQSHIELD_*` environment variables, unknown keys refused.
//! - [`app()`]: the middleware every route runs behind: body limit, timeout,
//!   panic catcher, security headers, JSON errors, `GET /healthz`.
//! - [`serve()`] and [`Gateway`]: binding, connection limit, header limits,
//!   graceful shutdown.
//! - [`ratelimit`]: global and per-client token buckets that tighten for
//!   clients with repeated 401/403 answers; trips go to the audit log.
//! - [`metrics`]: the Prometheus registry and `GET /metrics`, opened by the
//!   scrape token in `DATA/metrics.token`.
//! - [`request_id`] and [`access`]: an `X-Request-Id` and a tracing span
//!   per request, one access-log event per answer.
//! - [`Operations`]: what the middleware needs beyond the settings (audit
//!   sink, metrics, scrape token, clock), given to
//!   [`Gateway::with_operations`].
//!
//! # Example
//!
//! ```
//! use axum::routing::get;
//! use seqshield_server::config::Config;
//! use seqshield_server::Gateway;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = tempfile::tempdir()?;
//! let mut cfg = Config::default();
//! cfg.server.listen = "127.0.0.1:0".parse()?;
//! // First start: generates DATA/tls/cert.pem and key.pem (P-384).
//! let gateway = Gateway::bind(&cfg.server, data.path())?;
//! println!("{} pins {}", gateway.url(), gateway.certificate().spki_sha256);
//! let routes = axum::Router::new().route("/hello", get(|| async { "hi" }));
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! // Serve until the future resolves (here: at once).
//! rt.block_on(gateway.serve(routes, async {}))?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod access;
pub mod annotate;
pub mod app;
pub mod cert;
pub mod config;
pub mod data;
pub mod error;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod ratelimit;
pub mod request_id;
pub mod serve;
pub mod tls;
pub mod unread_body;

pub use app::{app, app_with, app_with_operations};
pub use error::ServerError;
pub use operations::Operations;
pub use serve::{serve, shutdown_signal, Gateway};
