//! The gateway's certificate and key.
//!
//! With `server.tls_cert` and `server.tls_key` set, the operator's files are
//! used; they are refused when the key is not ECDSA P-384/P-256 or RSA of
//! at least [`MIN_RSA_BITS`], when it does not match the certificate, and
//! when the certificate is expired or not yet valid.
//!
//! Otherwise the first start generates a self-signed ECDSA P-384 (SHA-384)
//! certificate under `DATA/tls/`:
//!
//! | file              | content                                          |
//! |-------------------|--------------------------------------------------|
//! | `cert.pem`        | the certificate (mode 0644)                      |
//! | `key.pem`         | its PKCS#8 private key (mode 0600)               |
//! | `spki-sha256.txt` | base64 SHA-256 of the SubjectPublicKeyInfo, for `--ignore-certificate-errors-spki-list` style pinning |
//!
//! Later starts reuse it; it is replaced (and a warning logged, since pins
//! change) only when it expires within [`RENEW_BEFORE_SECS`] or does not
//! name a host the gateway now answers to.

mod fs;
mod x509;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use crate::config::ServerSettings;
pub use x509::KeyKind;

/// Directory under the data directory holding the generated identity.
pub const TLS_DIR: &str = "tls";
/// Certificate file name in [`TLS_DIR`].
pub const CERT_FILE: &str = "cert.pem";
/// Private key file name in [`TLS_DIR`].
pub const KEY_FILE: &str = "key.pem";
/// SPKI pin file name in [`TLS_DIR`].
pub const SPKI_FILE: &str = "spki-sha256.txt";
/// Largest certificate-chain or key file read (1 MiB).
pub const MAX_PEM_BYTES: u64 = 1 << 20;
/// Smallest RSA modulus accepted in an operator's certificate.
pub const MIN_RSA_BITS: usize = 2048;
/// Lifetime of a generated certificate: 397 days, the longest that
/// browsers accept (CA/Browser Forum Baseline Requirements §6.3.2).
pub const SELF_SIGNED_VALIDITY_SECS: u64 = 397 * 24 * 3600;
/// A generated certificate closer than this to expiry is replaced (30 days).
pub const RENEW_BEFORE_SECS: u64 = 30 * 24 * 3600;
/// How far back a generated certificate's notBefore is set, for client clock skew (1 h).
pub const BACKDATE_SECS: u64 = 3600;

/// What clients need to know about the certificate in use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertInfo {
    /// The certificate chain file.
    pub cert_path: PathBuf,
    /// The private key file.
    pub key_path: PathBuf,
    /// Lowercase hex SHA-256 of the leaf certificate's DER.
    pub cert_sha256: String,
    /// Base64 (standard, padded) SHA-256 of the leaf's DER
    /// SubjectPublicKeyInfo: the form Chromium's
    /// `--ignore-certificate-errors-spki-list` and HPKP use.
    pub spki_sha256: String,
    /// True when the gateway generated the certificate itself.
    pub self_signed: bool,
    /// The leaf's public-key type.
    pub key_kind: KeyKind,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: u64,
    /// DNS names and IP addresses the leaf names.
    pub names: Vec<String>,
}

/// A certificate chain, its private key and their [`CertInfo`]. The key
/// never appears in `Debug` output.
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    info: CertInfo,
}

impl TlsIdentity {
    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate: what a client pins with
    /// [`crate::tls::client_config`].
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // `load_pair` refuses an empty chain.
        &self.chain[0]
    }

    /// The public facts about the certificate.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// A copy of the private key, for building a TLS configuration.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity").field("info", &self.info).finish_non_exhaustive()
    }
}

/// Why a certificate or key was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A file or directory could not be read or created.
    #[error("cannot access {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_PEM_BYTES`].
    #[error("{path} is larger than {MAX_PEM_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A file is not PEM.
    #[error("{path} is not valid PEM")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: std::io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("{path} holds no PEM CERTIFICATE")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("{path} holds no PEM private key (PKCS#8, SEC1 or PKCS#1)")]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The leaf certificate is not well-formed X.509.
    #[error("{path}: malformed certificate")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The DER parser's error.
        source: spki::der::Error,
    },
    /// The key type is not one we serve.
    #[error(
        "{path}: {found} key refused; use ECDSA P-384 (preferred), ECDSA P-256 or RSA of at least {MIN_RSA_BITS} bits"
    )]
    UnsupportedKey {
        /// The certificate file.
        path: PathBuf,
        /// The key type found.
        found: KeyKind,
    },
    /// The key file could not be loaded as a signing key.
    #[error("{path}: private key refused")]
    KeyRejected {
        /// The key file.
        path: PathBuf,
        /// rustls' error.
        source: rustls::Error,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key {key} does not match the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate has expired.
    #[error("{path}: certificate expired at {}", rfc3339(*not_after))]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// notAfter, seconds since the Unix epoch.
        not_after: u64,
    },
    /// The certificate is not valid yet.
    #[error("{path}: certificate is not valid before {}", rfc3339(*not_before))]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// notBefore, seconds since the Unix epoch.
        not_before: u64,
    },
    /// Only one of `cert.pem` and `key.pem` exists in the generated-identity directory.
    #[error("{dir} holds only one of {CERT_FILE} and {KEY_FILE}; remove the directory to generate a new certificate")]
    Incomplete {
        /// The directory.
        dir: PathBuf,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate")]
    Generate(#[from] rcgen::Error),
}

/// The names a gateway listening on `listen` answers to: `localhost`,
/// `127.0.0.1`, `::1`, the listen address unless it is a wildcard, and
/// `public_hosts`, lowercased and without duplicates.
pub fn required_names(listen: SocketAddr, public_hosts: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let ip = listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    names.extend(public_hosts.iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The identity for a gateway listening on `listen`: the operator's files
/// when `settings` names them, else the generated one under `DATA/tls/`
/// (created on first start). Logs a warning when self-signed.
pub fn load_or_create(
    data_dir: &Path,
    settings: &ServerSettings,
    listen: SocketAddr,
) -> Result<TlsIdentity, CertError> {
    let names = required_names(listen, &settings.public_hosts);
    let now = now();
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        let id = load(cert, key, now)?;
        let missing = missing_names(&id.info.names, &names[3..]);
        if !missing.is_empty() {
            tracing::warn!(cert = %cert.display(), missing = ?missing, "the certificate does not name every host the gateway answers to; clients using those names will refuse it");
        }
        return Ok(id);
    }
    let id = self_signed(&data_dir.join(TLS_DIR), &names, now)?;
    // The weakness itself is one of `seqshield doctor`'s findings, which
    // `serve` logs at start; this says what to pin.
    crate::logging::notice(&format!(
        "serving the self-signed certificate {}: clients pin spki sha256 {}",
        id.info.cert_path.display(),
        id.info.spki_sha256
    ));
    Ok(id)
}

/// Loads and checks an operator's certificate chain and key.
pub fn load(cert_path: &Path, key_path: &Path, now: u64) -> Result<TlsIdentity, CertError> {
    let id = load_pair(cert_path, key_path, false)?;
    let s = &id.1;
    if s.not_after <= now {
        return Err(CertError::Expired { path: cert_path.to_owned(), not_after: s.not_after });
    }
    if s.not_before > now {
        return Err(CertError::NotYetValid { path: cert_path.to_owned(), not_before: s.not_before });
    }
    Ok(id.0)
}

fn self_signed(dir: &Path, names: &[String], now: u64) -> Result<TlsIdentity, CertError> {
    fs::create_private_dir(dir)?;
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    let id = match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let (id, s) = load_pair(&cert_path, &key_path, true)?;
            let missing = missing_names(&id.info.names, names);
            if s.not_after > now.saturating_add(RENEW_BEFORE_SECS) && s.not_before <= now && missing.is_empty() {
                Some(id)
            } else {
                tracing::warn!(
                    old_cert_sha256 = %id.info.cert_sha256,
                    not_after = %rfc3339(s.not_after),
                    missing = ?missing,
                    "replacing the self-signed certificate (expiring, or missing a host name): clients must re-pin it"
                );
                None
            }
        }
        (false, false) => None,
        _ => return Err(CertError::Incomplete { dir: dir.to_owned() }),
    };
    let id = match id {
        Some(id) => id,
        None => {
            let (cert_pem, key_pem) = generate_self_signed(names, now)?;
            fs::write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
            fs::write_atomic(&cert_path, cert_pem.as_bytes(), 0o644)?;
            fs::sync_dir(dir)?;
            load_pair(&cert_path, &key_path, true)?.0
        }
    };
    fs::write_atomic(&dir.join(SPKI_FILE), format!("{}\n", id.info.spki_sha256).as_bytes(), 0o644)?;
    Ok(id)
}

/// Generates a self-signed ECDSA P-384 / SHA-384 certificate naming
/// `names` (DNS names or IP addresses), valid from an hour before `now` for
/// [`SELF_SIGNED_VALIDITY_SECS`]. Returns the certificate and key PEM.
pub fn generate_self_signed(names: &[String], now: u64) -> Result<(String, Zeroizing<String>), CertError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "seqshield gateway (self-signed)");
    params.not_before = datetime(now.saturating_sub(BACKDATE_SECS));
    params.not_after = datetime(now.saturating_add(SELF_SIGNED_VALIDITY_SECS));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| rcgen::Error::RingUnspecified)?;
    serial[0] &= 0x7f; // a positive INTEGER (RFC 5280 §4.1.2.2)
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Zeroizing::new(key.serialize_pem())))
}

/// Reads both files, checks the key type and that key and certificate
/// match. Validity dates are the caller's business.
fn load_pair(cert_path: &Path, key_path: &Path, self_signed: bool) -> Result<(TlsIdentity, x509::Summary), CertError> {
    let cert_pem = fs::read_bounded(cert_path)?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CertError::Pem { path: cert_path.to_owned(), source })?;
    let leaf = chain.first().ok_or_else(|| CertError::NoCertificate { path: cert_path.to_owned() })?;
    let summary = x509::inspect(leaf).map_err(|source| CertError::Malformed { path: cert_path.to_owned(), source })?;
    match summary.key {
        KeyKind::EcP384 | KeyKind::EcP256 => {}
        KeyKind::Rsa { bits } if bits >= MIN_RSA_BITS => {}
        ref found => return Err(CertError::UnsupportedKey { path: cert_path.to_owned(), found: found.clone() }),
    }

    fs::warn_if_shared(key_path);
    let key_pem = Zeroizing::new(fs::read_bounded(key_path)?);
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| CertError::Pem { path: key_path.to_owned(), source })?
        .ok_or_else(|| CertError::NoPrivateKey { path: key_path.to_owned() })?;
    let signing_key = crate::tls::provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|source| CertError::KeyRejected { path: key_path.to_owned(), source })?;
    // Compares the key's SubjectPublicKeyInfo with the certificate's;
    // aws-lc-rs keys always expose theirs, so "unknown" is a refusal too.
    CertifiedKey::new(chain.clone(), signing_key)
        .keys_match()
        .map_err(|_| CertError::KeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() })?;

    let digest = |b: &[u8]| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    let mut names = summary.dns_names.clone();
    names.extend(summary.ip_addrs.iter().map(IpAddr::to_string));
    let info = CertInfo {
        cert_path: cert_path.to_owned(),
        key_path: key_path.to_owned(),
        cert_sha256: hex::encode(digest(leaf)),
        spki_sha256: base64::engine::general_purpose::STANDARD.encode(digest(&summary.spki_der)),
        self_signed,
        key_kind: summary.key.clone(),
        not_after: summary.not_after,
        names,
    };
    Ok((TlsIdentity { chain, key, info }, summary))
}

/// The entries of `wanted` that `have` (a certificate's names) lacks.
/// IP addresses compare as addresses, DNS names without case; wildcards
/// (RFC 6125 §6.4.3) cover one label.
fn missing_names(have: &[String], wanted: &[String]) -> Vec<String> {
    let covers = |h: &String, w: &String| match (h.parse::<IpAddr>(), w.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => {
            let w = w.trim_end_matches('.').to_ascii_lowercase();
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(suffix) => w.split_once('.').is_some_and(|(_, rest)| rest == suffix),
                None => h == w,
            }
        }
        _ => false,
    };
    wanted.iter().filter(|w| !have.iter().any(|h| covers(h, w))).cloned().collect()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn datetime(unix: u64) -> time::OffsetDateTime {
    i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for messages.
fn rfc3339(unix: u64) -> String {
    let t = datetime(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_skip_wildcard_listen_and_duplicates() {
        let n = required_names("0.0.0.0:8443".parse().unwrap(), &["GW.example.org.".into(), "127.0.0.1".into()]);
        assert_eq!(n, ["localhost", "127.0.0.1", "::1", "gw.example.org"]);
        let n = required_names("10.1.2.3:8443".parse().unwrap(), &[]);
        assert_eq!(n, ["localhost", "127.0.0.1", "::1", "10.1.2.3"]);
    }

    #[test]
    fn name_coverage() {
        let have: Vec<String> = ["*.example.org", "localhost", "::1"].map(String::from).to_vec();
        let want: Vec<String> = ["gw.example.org", "a.b.example.org", "LOCALHOST", "0:0:0:0:0:0:0:1", "127.0.0.1"]
            .map(String::from)
            .to_vec();
        assert_eq!(missing_names(&have, &want), ["a.b.example.org", "127.0.0.1"]);
    }

    #[test]
    fn dates_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
