//! The listener's TLS policy, checked from the client side: only TLS 1.3
//! with TLS13_AES_256_GCM_SHA384 over secp384r1 gets through. Every refused
//! client trusts the gateway's certificate, so the refusal is the policy's.

mod common;

use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CipherSuite, ClientConfig, NamedGroup, RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Negotiated {
    suite: CipherSuite,
    group: NamedGroup,
    alpn: Option<Vec<u8>>,
}

async fn handshake(cfg: ClientConfig, running: &common::Running) -> std::io::Result<Negotiated> {
    let tcp = TcpStream::connect(running.addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
    let (_, conn) = tls.get_ref();
    Ok(Negotiated {
        suite: conn.negotiated_cipher_suite().unwrap().suite(),
        group: conn.negotiated_key_exchange_group().unwrap().name(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    })
}

/// A client trusting `cert` with the given suites, groups and versions.
fn custom(
    cert: &CertificateDer<'_>,
    suites: Option<Vec<SupportedCipherSuite>>,
    groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let base = aws_lc_rs::default_provider();
    let provider = CryptoProvider {
        cipher_suites: suites.unwrap_or(aws_lc_rs::ALL_CIPHER_SUITES.to_vec()),
        kx_groups: groups.unwrap_or(aws_lc_rs::ALL_KX_GROUPS.to_vec()),
        ..base
    };
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone().into_owned()).unwrap();
    ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

async fn refused(running: &common::Running, cfg: ClientConfig, what: &str) {
    match handshake(cfg, running).await {
        Ok(n) => panic!("{what}: handshake succeeded with {:?} over {:?}", n.suite, n.group),
        Err(e) => {
            let msg = e.to_string();
            // HandshakeFailure for suites and groups, ProtocolVersion for TLS 1.2.
            assert!(msg.contains("received fatal alert"), "{what}: {msg}");
        }
    }
}

#[tokio::test]
async fn policy_client_gets_aes256_over_p384() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let cfg = seqshield_server::tls::client_config(&running.cert).unwrap();
    let n = handshake(cfg, &running).await.unwrap();
    assert_eq!(n.suite, CipherSuite::TLS13_AES_256_GCM_SHA384);
    assert_eq!(n.group, NamedGroup::secp384r1);
    assert_eq!(n.alpn, None);
    running.stop().await;
}

/// A stock client offers X25519 first; the server must steer it to P-384
/// (HelloRetryRequest, RFC 8446 §4.1.4) and pick the AES-256 suite.
#[tokio::test]
async fn default_client_is_steered_to_p384_and_h2() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let mut cfg = custom(&running.cert, None, None, TLS13);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let n = handshake(cfg, &running).await.unwrap();
    assert_eq!(n.suite, CipherSuite::TLS13_AES_256_GCM_SHA384);
    assert_eq!(n.group, NamedGroup::secp384r1);
    assert_eq!(n.alpn.as_deref(), Some(&b"h2"[..]));
    running.stop().await;
}

#[tokio::test]
async fn tls12_client_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let cfg = custom(&running.cert, None, None, &[&rustls::version::TLS12]);
    refused(&running, cfg, "TLS 1.2 only").await;
}

#[tokio::test]
async fn weaker_tls13_suites_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    for suite in [cipher_suite::TLS13_AES_128_GCM_SHA256, cipher_suite::TLS13_CHACHA20_POLY1305_SHA256] {
        let cfg = custom(&running.cert, Some(vec![suite]), None, TLS13);
        refused(&running, cfg, &format!("{:?} only", suite.suite())).await;
    }
}

#[tokio::test]
async fn other_key_exchange_groups_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let aes256 = Some(vec![cipher_suite::TLS13_AES_256_GCM_SHA384]);
    for group in [kx_group::X25519, kx_group::SECP256R1, kx_group::X25519MLKEM768] {
        let cfg = custom(&running.cert, aes256.clone(), Some(vec![group]), TLS13);
        refused(&running, cfg, &format!("{:?} only", group.name())).await;
    }
}

/// The pinned client config does not fall back to trusting anything else.
#[tokio::test]
async fn pinned_client_refuses_another_certificate() {
    let data = tempfile::tempdir().unwrap();
    let running = common::start(data.path(), common::settings()).await;
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cfg = seqshield_server::tls::client_config(other.cert.der()).unwrap();
    let err = handshake(cfg, &running).await.err().expect("unknown certificate refused");
    assert!(err.to_string().contains("certificate"), "{err}");
}
