//! Federation: tokens from trusted external issuers (an institution's Entra
//! ID / Azure AD, or any OIDC provider) turned into local claims.
//!
//! An issuer is trusted by URL and JWKS: fetched over TLS (and fetched again
//! when a token names a `kid` we do not know, at most once per
//! `jwks_min_refresh_secs`) or pinned from a file. Its tokens are verified
//! with the same RS256-only verifier as ours, and accepted only at the token
//! exchange endpoint. Mapping rules turn its `groups` into scopes and a
//! clearance; a token that matches no rule gets nothing.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jwt::{self, JwtError, KeySet, Validation};
use crate::{Clearance, ScopeSet};

/// Default for how often the JWKS may be fetched again for an unknown `kid`.
pub const MIN_JWKS_REFRESH_SECS: u64 = 10;
/// Largest JWKS document accepted from an issuer.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most groups read from one external token.
pub const MAX_GROUPS: usize = 256;
/// How long a JWKS fetch may take.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Trust anchors used for `jwks_uri` when no `ca_file` is given (Debian).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One trusted issuer (`[[auth.federation]]`).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// The issuer's `iss`, exactly (an `https` URL).
    pub issuer: String,
    /// The `aud` its tokens must carry (our application's id there); must
    /// not be empty.
    pub audience: String,
    /// Where to fetch its JWKS (`https`); exactly one of `jwks_uri` and
    /// `jwks_file`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A pinned JWKS file, read at start, instead of fetching.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// PEM trust anchors for `jwks_uri`; none: the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Required `tid` (Entra tenant id), if any.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The claim that identifies the person (`oid` for Entra, else `sub`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Prefix of local subjects, so they never collide with local users.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Fetch the JWKS again for an unknown `kid` at most this often, in
    /// seconds (at least 1).
    #[serde(default = "default_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// Group → scopes and clearance rules (`[[auth.federation.mappings]]`);
    /// an identity no rule matches is refused.
    #[serde(default)]
    pub mappings: Vec<GroupMapping>,
}

fn default_refresh() -> u64 {
    MIN_JWKS_REFRESH_SECS
}

fn default_subject_claim() -> String {
    "oid".to_owned()
}

fn default_subject_prefix() -> String {
    "fed:".to_owned()
}

/// Members of `group` get `scopes` and at least `clearance`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// The group id or name as it appears in the `groups` claim.
    pub group: String,
    /// Scopes granted to members.
    pub scopes: Vec<String>,
    /// Clearance granted to members: `public`, `internal`, `restricted`
    /// or `controlled`.
    #[schemars(schema_with = "crate::config::clearance_schema")]
    pub clearance: Clearance,
}

/// A verified external identity, mapped to local terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedIdentity {
    /// The external issuer.
    pub issuer: String,
    /// The local subject (`prefix` + tenant + subject claim).
    pub subject: String,
    /// Union of the scopes of every matching mapping.
    pub scopes: ScopeSet,
    /// Highest clearance of any matching mapping.
    pub clearance: Clearance,
    /// The external token's `amr`, if any.
    pub amr: Vec<String>,
    /// When the external token expires.
    pub exp: u64,
}

/// Why an external token or a federation setting was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The setting is invalid.
    #[error("federation issuer {issuer}: {why}")]
    Config {
        /// The issuer.
        issuer: String,
        /// What is wrong.
        why: String,
    },
    /// A pinned JWKS or CA file could not be read.
    #[error("federation issuer {issuer}: {path}: {source}")]
    File {
        /// The issuer.
        issuer: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The token's issuer is not trusted.
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    /// The token failed verification.
    #[error("the external token failed verification: {0}")]
    Token(#[from] JwtError),
    /// The JWKS could not be fetched.
    #[error("fetching the JWKS of {issuer} failed: {why}")]
    Fetch {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        why: String,
    },
    /// The token's tenant is not the configured one.
    #[error("the token is from another tenant")]
    WrongTenant,
    /// The token lacks the subject claim.
    #[error("the token has no {0} claim")]
    NoSubject(String),
    /// No mapping rule matched the token's groups.
    #[error("no mapping rule grants anything to this identity")]
    NoMapping,
}

struct Issuer {
    cfg: TrustedIssuerConfig,
    scopes: Vec<ScopeSet>,
    keys: RwLock<Arc<KeySet>>,
    last_fetch: Mutex<Option<u64>>,
    client: Option<reqwest::Client>,
}

/// The trusted issuers.
pub struct Federation {
    issuers: Vec<Issuer>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.issuers.iter().map(|i| &i.cfg.issuer)).finish()
    }
}

fn tls_client(issuer: &str, ca_file: &std::path::Path) -> Result<reqwest::Client, FederationError> {
    let file_err = |source| FederationError::File { issuer: issuer.to_owned(), path: ca_file.to_owned(), source };
    use rustls::pki_types::pem::PemObject as _;
    let f = std::fs::File::open(ca_file).map_err(file_err)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_reader_iter(BufReader::new(f)) {
        let cert = cert.map_err(|e| file_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())))?;
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(FederationError::Config { issuer: issuer.to_owned(), why: "no certificates in ca_file".into() });
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| FederationError::Config { issuer: issuer.to_owned(), why: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(JWKS_FETCH_TIMEOUT)
        .build()
        .map_err(|e| FederationError::Config { issuer: issuer.to_owned(), why: e.to_string() })
}

impl Federation {
    /// Checks the settings and loads pinned key sets.
    pub fn new(cfgs: &[TrustedIssuerConfig]) -> Result<Self, FederationError> {
        let mut issuers = Vec::new();
        for cfg in cfgs {
            let bad = |why: &str| FederationError::Config { issuer: cfg.issuer.clone(), why: why.to_owned() };
            if !cfg.issuer.starts_with("https://") {
                return Err(bad("issuer must be an https URL"));
            }
            if cfg.audience.is_empty() {
                return Err(bad("audience must not be empty"));
            }
            let mut scopes = Vec::new();
            for m in &cfg.mappings {
                scopes.push(
                    ScopeSet::try_from_iter(m.scopes.iter().map(String::as_str))
                        .map_err(|e| bad(&format!("mapping for group {:?}: {e}", m.group)))?,
                );
            }
            let (keys, client) = match (&cfg.jwks_file, &cfg.jwks_uri) {
                (Some(path), None) => {
                    let bytes = std::fs::read(path).map_err(|source| FederationError::File {
                        issuer: cfg.issuer.clone(),
                        path: path.clone(),
                        source,
                    })?;
                    (KeySet::from_jwks(&bytes).map_err(|e| bad(&format!("jwks_file: {e}")))?, None)
                }
                (None, Some(uri)) => {
                    if !uri.starts_with("https://") {
                        return Err(bad("jwks_uri must be https"));
                    }
                    let ca = cfg.ca_file.clone().unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
                    (KeySet::default(), Some(tls_client(&cfg.issuer, &ca)?))
                }
                _ => return Err(bad("give exactly one of jwks_uri and jwks_file")),
            };
            issuers.push(Issuer {
                cfg: cfg.clone(),
                scopes,
                keys: RwLock::new(Arc::new(keys)),
                last_fetch: Mutex::new(None),
                client,
            });
        }
        Ok(Self { issuers })
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verifies an external token and maps it to a local identity.
    pub async fn verify(&self, token: &str, now: u64) -> Result<FederatedIdentity, FederationError> {
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return Err(FederationError::UntrustedIssuer);
        }
        let iss = unverified_issuer(token).ok_or(FederationError::UntrustedIssuer)?;
        let issuer = self.issuers.iter().find(|i| i.cfg.issuer == iss).ok_or(FederationError::UntrustedIssuer)?;
        let header = jwt::peek_header(token)?;
        let kid = header.kid;
        let have = issuer.keys.read().unwrap_or_else(|p| p.into_inner()).contains(&kid);
        if !have {
            issuer.refresh(now).await?;
        }
        let keys = issuer.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let v = Validation {
            issuer: issuer.cfg.issuer.clone(),
            audience: issuer.cfg.audience.clone(),
            leeway_secs: jwt::MAX_CLOCK_SKEW_SECS,
            typ: None,
        };
        let claims: serde_json::Map<String, serde_json::Value> = jwt::verify(token, &keys, &v, now)?;
        issuer.map(&claims)
    }
}

fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

impl Issuer {
    async fn refresh(&self, now: u64) -> Result<(), FederationError> {
        let Some(client) = &self.client else { return Ok(()) };
        let uri = self.cfg.jwks_uri.as_deref().unwrap_or_default();
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now.saturating_sub(t) < self.cfg.jwks_min_refresh_secs.max(1)) {
                return Ok(());
            }
            *last = Some(now);
        }
        let fetch_err = |why: String| FederationError::Fetch { issuer: self.cfg.issuer.clone(), why };
        let mut resp = client.get(uri).send().await.map_err(|e| fetch_err(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(fetch_err(format!("HTTP {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_err(e.without_url().to_string()))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(fetch_err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = KeySet::from_jwks(&body).map_err(|e| fetch_err(e.to_string()))?;
        tracing::info!(issuer = %self.cfg.issuer, keys = keys.len(), "fetched federation JWKS");
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn map(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Result<FederatedIdentity, FederationError> {
        let tid = claims.get("tid").and_then(|v| v.as_str());
        if let Some(want) = &self.cfg.tenant {
            if tid != Some(want.as_str()) {
                return Err(FederationError::WrongTenant);
            }
        }
        let who = claims
            .get(&self.cfg.subject_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| FederationError::NoSubject(self.cfg.subject_claim.clone()))?;
        let groups: BTreeSet<&str> = claims
            .get("groups")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().take(MAX_GROUPS).filter_map(|g| g.as_str()).collect())
            .unwrap_or_default();
        let mut scopes = ScopeSet::new();
        let mut clearance: Option<Clearance> = None;
        for (m, s) in self.cfg.mappings.iter().zip(&self.scopes) {
            if groups.contains(m.group.as_str()) {
                scopes = ScopeSet::try_from_iter(scopes.iter().chain(s.iter())).unwrap_or(scopes);
                clearance = Some(clearance.map_or(m.clearance, |c| c.max(m.clearance)));
            }
        }
        let clearance = clearance.ok_or(FederationError::NoMapping)?;
        let amr = claims
            .get("amr")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().take(16).filter_map(|g| g.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let exp = claims.get("exp").and_then(|v| v.as_u64()).unwrap_or(0);
        let subject = match tid {
            Some(t) => format!("{}{t}/{who}", self.cfg.subject_prefix),
            None => format!("{}{who}", self.cfg.subject_prefix),
        };
        Ok(FederatedIdentity { issuer: self.cfg.issuer.clone(), subject, scopes, clearance, amr, exp })
    }
}
