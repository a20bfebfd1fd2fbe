//! A gateway on a free loopback port serving a small test router.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::Router;
use rustls::pki_types::CertificateDer;
use seqshield_server::cert::CertInfo;
use seqshield_server::config::ServerSettings;
use seqshield_server::{Gateway, Operations, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Routes that exercise the middleware.
pub fn test_routes() -> Router {
    Router::new()
        .route("/echo", post(|b: axum::body::Bytes| async move { b.len().to_string() }))
        .route("/panic", get(panicking))
        .route("/ip", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }))
}

async fn panicking() -> &'static str {
    let secret = std::hint::black_box("secret detail 42");
    panic!("handler blew up: {secret}");
}

/// Settings for a test gateway: loopback, port 0.
pub fn settings() -> ServerSettings {
    ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() }
}

/// A running gateway; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub cert: CertificateDer<'static>,
    pub info: CertInfo,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Asks for a graceful shutdown and waits for it.
    pub async fn stop(mut self) {
        self.begin_stop();
        self.join().await;
    }

    /// Asks for a graceful shutdown without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the gateway to stop (after [`Running::begin_stop`]).
    pub async fn join(mut self) {
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Binds and serves [`test_routes`] in the background.
pub async fn start(data_dir: &Path, settings: ServerSettings) -> Running {
    start_with(data_dir, settings, test_routes(), Operations::new()).await
}

/// Binds and serves `routes` with `ops` in the background.
pub async fn start_with(data_dir: &Path, settings: ServerSettings, routes: Router, ops: Operations) -> Running {
    let gw = Gateway::bind(&settings, data_dir).expect("gateway binds").with_operations(ops);
    let (addr, cert, info) = (gw.local_addr(), gw.cert_der().clone(), gw.certificate().clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gw.serve(routes, async move {
        let _ = rx.await;
    }));
    Running { addr, cert, info, stop: Some(tx), task: Some(task) }
}

/// A reqwest client that trusts exactly `cert`.
pub fn client(cert: &CertificateDer<'_>) -> reqwest::Client {
    let tls = seqshield_server::tls::client_config(cert).unwrap();
    reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap()
}
