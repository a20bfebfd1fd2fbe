//! The TLS policy, in one place: TLS 1.3 only, one cipher suite
//! (`TLS13_AES_256_GCM_SHA384`), one key-exchange group (`secp384r1`), all
//! from rustls' aws-lc-rs provider. A client that cannot meet it gets a
//! handshake failure, not a weaker connection.
//!
//! No early data (0-RTT, RFC 8446 §2.3) is accepted: it is replayable.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::cert::TlsIdentity;

/// The only protocol version offered: TLS 1.3 (RFC 8446).
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// ALPN protocols the server offers, in preference order (RFC 7301).
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// rustls' aws-lc-rs provider cut down to `TLS13_AES_256_GCM_SHA384` and
/// `secp384r1`; its signature verification and key loading are unchanged.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![cipher_suite::TLS13_AES_256_GCM_SHA384],
        kx_groups: vec![kx_group::SECP384R1],
        ..aws_lc_rs::default_provider()
    }
}

/// The server configuration for `identity`: [`provider`], TLS 1.3 only, no
/// client certificates, ALPN `h2` then `http/1.1`, no 0-RTT.
pub fn server_config(identity: &TlsIdentity) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(identity.chain().to_vec(), identity.private_key())?;
    cfg.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    cfg.max_early_data_size = 0;
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}

/// A client configuration for talking to a gateway: the same provider
/// restrictions, and `trusted_cert` as the only root of trust, so a
/// self-signed gateway certificate is pinned, never "accepted anyway".
/// Host names are still checked against the certificate.
///
/// ALPN is left empty (HTTP/1.1); set `alpn_protocols` if the client
/// speaks HTTP/2.
pub fn client_config(trusted_cert: &CertificateDer<'_>) -> Result<ClientConfig, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted_cert.clone().into_owned())?;
    Ok(ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_is_cut_down() {
        let p = provider();
        let suites: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites, [rustls::CipherSuite::TLS13_AES_256_GCM_SHA384]);
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [rustls::NamedGroup::secp384r1]);
    }

    #[test]
    fn client_config_refuses_garbage_as_root() {
        assert!(client_config(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])).is_err());
    }
}
