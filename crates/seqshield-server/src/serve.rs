//! Listening: bind, TLS, connection and header limits, graceful shutdown.
//!
//! [`Gateway::bind`] opens the socket and loads (or makes) the certificate
//! before anything is served, so the caller can learn the bound address
//! (port 0 picks a free one) and the certificate's pins, build its routes,
//! announce readiness, then call [`Gateway::serve`].

mod conn;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use hyper_util::rt::TokioTimer;
use rustls::pki_types::CertificateDer;

use crate::cert::{self, CertInfo, TlsIdentity};
use crate::config::{ServerSettings, MIN_MAX_HEADER_BYTES};
use crate::error::ServerError;
use crate::operations::Operations;

/// Time a client has to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an HTTP/1.1 client has to send a request head, including while a
/// kept-alive connection idles between requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection with no bytes moving either way for the request timeout
/// plus this long is closed (covers silent TLS and HTTP/2 connections).
pub const IDLE_GRACE: Duration = Duration::from_secs(30);
/// Most concurrent HTTP/2 streams per connection.
pub const MAX_H2_STREAMS: u32 = 100;
/// Time in-flight requests get to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, not yet serving, gateway.
#[derive(Debug)]
pub struct Gateway {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    settings: ServerSettings,
    identity: TlsIdentity,
    ops: Operations,
}

impl Gateway {
    /// Checks `settings`, binds `settings.listen`, and loads the operator's
    /// certificate or the generated one under `data_dir/tls/` (creating it
    /// on first start).
    pub fn bind(settings: &ServerSettings, data_dir: &Path) -> Result<Self, ServerError> {
        settings.validate()?;
        let bind_err = |source| ServerError::Bind { addr: settings.listen, source };
        let listener = std::net::TcpListener::bind(settings.listen).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let identity = cert::load_or_create(data_dir, settings, local_addr)?;
        // Fail here, not on the first handshake, if rustls refuses the pair.
        crate::tls::server_config(&identity)?;
        Ok(Self { listener, local_addr, settings: settings.clone(), identity, ops: Operations::default() })
    }

    /// Serves with `ops`: the audit sink for rate-limit trips, the metrics
    /// registry, the scrape token that opens `/metrics`.
    pub fn with_operations(mut self, ops: Operations) -> Self {
        self.ops = ops;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://` and the bound address (IPv6 in brackets).
    pub fn url(&self) -> String {
        format!("https://{}", self.local_addr)
    }

    /// The URL clients should use as the issuer and base URL: the first
    /// `public_hosts` entry with the bound port, else the bound address
    /// (`localhost` when bound to a wildcard address).
    pub fn public_url(&self) -> String {
        let port = self.local_addr.port();
        let host = match self.settings.public_hosts.first() {
            Some(h) => h.trim_end_matches('.').to_owned(),
            None if self.local_addr.ip().is_unspecified() => "localhost".to_owned(),
            None => self.local_addr.ip().to_string(),
        };
        if host.contains(':') {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        }
    }

    /// The certificate in use and its pins.
    pub fn certificate(&self) -> &CertInfo {
        self.identity.info()
    }

    /// The leaf certificate, for [`crate::tls::client_config`].
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        self.identity.leaf()
    }

    /// The settings the gateway was bound with.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// Serves `routes` wrapped in [`crate::app_with_operations`] until
    /// `shutdown` resolves, then stops accepting (the listening socket is
    /// closed: new connections are refused) and gives in-flight requests
    /// [`SHUTDOWN_GRACE`] to finish; connections still open then are
    /// closed, aborting what they carry.
    pub async fn serve<F>(self, routes: Router, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send,
    {
        let tls = crate::tls::server_config(&self.identity)?;
        let s = &self.settings;
        let app = crate::app::app_with_operations(routes, s, self.ops);
        let guard = conn::GuardAcceptor::new(s.max_connections, s.request_timeout() + IDLE_GRACE);
        let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(tls))
            .handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
            .acceptor(guard);
        let handle = Handle::new();
        let mut server = axum_server::from_tcp(self.listener).acceptor(acceptor).handle(handle.clone());
        let builder = server.http_builder();
        // hyper answers 431 to a head over this size (RFC 6585 §5).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(s.max_header_bytes.max(MIN_MAX_HEADER_BYTES));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(MAX_H2_STREAMS);

        let serving = server.serve(app.into_make_service_with_connect_info::<SocketAddr>());
        tokio::pin!(serving);
        let result = tokio::select! {
            r = &mut serving => r,
            () = shutdown => {
                tracing::info!(grace_secs = SHUTDOWN_GRACE.as_secs(), "shutting down");
                handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
                serving.await
            }
        };
        result.map_err(ServerError::Serve)
    }
}

/// Binds and serves in one call: [`Gateway::bind`] then [`Gateway::serve`].
pub async fn serve<F>(
    settings: &ServerSettings,
    data_dir: &Path,
    routes: Router,
    shutdown: F,
) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send,
{
    Gateway::bind(settings, data_dir)?.serve(routes, shutdown).await
}

/// Registers for SIGINT (Ctrl-C) and, on Unix, SIGTERM now, and returns a
/// future that resolves when either arrives.
///
/// The handlers are installed by this call, not when the future is first
/// polled, so a caller that registers before announcing readiness cannot
/// be killed by a signal sent right after the announcement. Must be called
/// within a Tokio runtime.
///
/// # Errors
/// The signal handlers cannot be installed.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let mut interrupt = tokio::signal::windows::ctrl_c()?;
        Ok(async move {
            interrupt.recv().await;
        })
    }
}
