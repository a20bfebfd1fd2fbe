//! The gateway's certificate: generated once and reused, replaced when it
//! no longer names the gateway, and operator-supplied pairs checked before
//! use.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use seqshield_server::cert::{CertError, KeyKind, CERT_FILE, KEY_FILE, SPKI_FILE, TLS_DIR};
use seqshield_server::config::ServerSettings;
use seqshield_server::{Gateway, ServerError};

fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref().to_vec()
}

/// Writes a self-signed certificate and its key made with `alg` and
/// `edit`, returning the two paths.
fn write_pair(
    dir: &Path,
    name: &str,
    alg: &'static rcgen::SignatureAlgorithm,
    edit: impl FnOnce(&mut rcgen::CertificateParams),
) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    edit(&mut params);
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, cert.der().to_vec())
}

fn supplied(cert: PathBuf, key: PathBuf) -> ServerSettings {
    ServerSettings { tls_cert: Some(cert), tls_key: Some(key), ..common::settings() }
}

fn bind_err(data: &Path, settings: &ServerSettings) -> CertError {
    match Gateway::bind(settings, data) {
        Err(ServerError::Cert(e)) => e,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("bind accepted the certificate"),
    }
}

#[test]
fn first_start_generates_p384_and_second_start_reuses_it() {
    let data = tempfile::tempdir().unwrap();
    let first = Gateway::bind(&common::settings(), data.path()).unwrap();
    let info = first.certificate().clone();
    drop(first);
    assert!(info.self_signed);
    assert_eq!(info.key_kind, KeyKind::EcP384);
    for n in ["localhost", "127.0.0.1", "::1"] {
        assert!(info.names.iter().any(|x| x == n), "{n} missing from {:?}", info.names);
    }
    let tls = data.path().join(TLS_DIR);
    assert_eq!(info.cert_path, tls.join(CERT_FILE));
    let spki_file = std::fs::read_to_string(tls.join(SPKI_FILE)).unwrap();
    assert_eq!(spki_file.trim_end(), info.spki_sha256);
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(&info.spki_sha256).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(tls.join(KEY_FILE)), 0o600);
        assert_eq!(mode(tls.clone()), 0o700);
    }

    let second = Gateway::bind(&common::settings(), data.path()).unwrap();
    assert_eq!(second.certificate().cert_sha256, info.cert_sha256, "certificate regenerated on restart");
    assert_eq!(hex::encode(sha256(second.cert_der())), info.cert_sha256);
}

/// Pins change when the certificate does, so it is replaced only when it
/// must be: here, a newly configured public host it does not name.
#[test]
fn new_public_host_replaces_the_generated_certificate() {
    let data = tempfile::tempdir().unwrap();
    let before = Gateway::bind(&common::settings(), data.path()).unwrap().certificate().clone();
    let settings = ServerSettings { public_hosts: vec!["gw.example.org".into()], ..common::settings() };
    let after = Gateway::bind(&settings, data.path()).unwrap().certificate().clone();
    assert_ne!(after.cert_sha256, before.cert_sha256);
    assert!(after.names.iter().any(|n| n == "gw.example.org"));
    let again = Gateway::bind(&settings, data.path()).unwrap().certificate().clone();
    assert_eq!(again.cert_sha256, after.cert_sha256);
}

#[test]
fn half_a_generated_identity_is_refused_not_overwritten() {
    let data = tempfile::tempdir().unwrap();
    drop(Gateway::bind(&common::settings(), data.path()).unwrap());
    let cert = data.path().join(TLS_DIR).join(CERT_FILE);
    std::fs::remove_file(&cert).unwrap();
    assert!(matches!(bind_err(data.path(), &common::settings()), CertError::Incomplete { .. }));
    assert!(!cert.exists());
}

#[tokio::test]
async fn supplied_certificate_is_served() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (c, k, der) = write_pair(files.path(), "p256", &rcgen::PKCS_ECDSA_P256_SHA256, |_| {});
    let running = common::start(data.path(), supplied(c.clone(), k)).await;
    assert!(!running.info.self_signed);
    assert_eq!(running.info.cert_path, c);
    assert_eq!(running.info.key_kind, KeyKind::EcP256);
    assert_eq!(running.info.cert_sha256, hex::encode(sha256(&der)));
    assert!(!data.path().join(TLS_DIR).exists(), "no self-signed certificate generated");

    let res = common::client(&running.cert).get(running.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    running.stop().await;
}

#[test]
fn supplied_rsa_2048_is_accepted() {
    let data = tempfile::tempdir().unwrap();
    let (c, k, _) = write_pair(data.path(), "rsa", &rcgen::PKCS_RSA_SHA256, |_| {});
    let gw = Gateway::bind(&supplied(c, k), data.path()).unwrap();
    assert_eq!(gw.certificate().key_kind, KeyKind::Rsa { bits: 2048 });
}

#[test]
fn wrong_key_types_are_refused() {
    let data = tempfile::tempdir().unwrap();
    for (name, alg, kind) in
        [("ed25519", &rcgen::PKCS_ED25519, KeyKind::Ed25519), ("p521", &rcgen::PKCS_ECDSA_P521_SHA512, KeyKind::EcP521)]
    {
        let (c, k, _) = write_pair(data.path(), name, alg, |_| {});
        match bind_err(data.path(), &supplied(c, k)) {
            CertError::UnsupportedKey { found, .. } => assert_eq!(found, kind),
            e => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn key_of_another_certificate_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let (c, _, _) = write_pair(data.path(), "a", &rcgen::PKCS_ECDSA_P384_SHA384, |_| {});
    let (_, k, _) = write_pair(data.path(), "b", &rcgen::PKCS_ECDSA_P384_SHA384, |_| {});
    assert!(matches!(bind_err(data.path(), &supplied(c, k)), CertError::KeyMismatch { .. }));
}

#[test]
fn expired_and_future_certificates_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let (c, k, _) = write_pair(data.path(), "old", &rcgen::PKCS_ECDSA_P384_SHA384, |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let e = bind_err(data.path(), &supplied(c, k));
    assert!(matches!(e, CertError::Expired { .. }), "{e}");
    assert!(e.to_string().contains("2002-01-01T00:00:00Z"), "{e}");

    let (c, k, _) = write_pair(data.path(), "new", &rcgen::PKCS_ECDSA_P384_SHA384, |p| {
        p.not_before = rcgen::date_time_ymd(2090, 1, 1);
        p.not_after = rcgen::date_time_ymd(2091, 1, 1);
    });
    assert!(matches!(bind_err(data.path(), &supplied(c, k)), CertError::NotYetValid { .. }));
}

/// Operator files are input too: garbage gives an error, never a panic.
#[test]
fn garbage_files_are_clean_errors() {
    let data = tempfile::tempdir().unwrap();
    let (c, k, _) = write_pair(data.path(), "ok", &rcgen::PKCS_ECDSA_P384_SHA384, |_| {});
    let junk = data.path().join("junk.pem");
    std::fs::write(&junk, "not pem at all\n").unwrap();
    assert!(matches!(bind_err(data.path(), &supplied(junk.clone(), k.clone())), CertError::NoCertificate { .. }));
    assert!(matches!(bind_err(data.path(), &supplied(c.clone(), junk)), CertError::NoPrivateKey { .. }));
    let bad = data.path().join("bad.pem");
    std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n").unwrap();
    assert!(matches!(bind_err(data.path(), &supplied(bad, k.clone())), CertError::Malformed { .. }));
    let missing = data.path().join("missing.pem");
    assert!(matches!(bind_err(data.path(), &supplied(missing, k)), CertError::Io { .. }));
    let _ = c;
}
