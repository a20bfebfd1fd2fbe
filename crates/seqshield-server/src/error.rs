//! The gateway's error: what can stop it from starting or serving.

use std::net::SocketAddr;

use crate::cert::CertError;
use crate::config::ConfigError;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The certificate or key could not be loaded, made or accepted.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// rustls refused the TLS configuration.
    #[error("TLS configuration refused")]
    Tls(#[from] rustls::Error),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The accept loop failed.
    #[error("serving failed")]
    Serve(#[source] std::io::Error),
}
