//! The token service's settings: the `[auth]` table of the server's TOML
//! file. Unknown keys are refused; limits that protect tokens are clamped
//! or refused, never silently raised.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::federation::TrustedIssuerConfig;
use crate::signing::SigningConfig;

/// Longest access-token lifetime any configuration may ask for (1 h).
pub const MAX_ACCESS_TTL_SECS: u64 = 3600;
/// Longest authorization-code lifetime (60 s).
pub const MAX_CODE_TTL_SECS: u64 = 60;
/// Longest refresh-token lifetime (30 days).
pub const MAX_REFRESH_TTL_SECS: u64 = 30 * 24 * 3600;

/// The `[auth]` table.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The issuer URL (`iss`): an absolute `https` URL without query or
    /// fragment, also the base of every endpoint URL. Empty (the default):
    /// the gateway uses `https://` + the first `server.public_hosts` entry
    /// (else the bound address, `localhost` on a wildcard address) + the
    /// bound port.
    pub issuer: String,
    /// The audience (`aud`) of tokens issued by the code and refresh
    /// grants: the gateway's own API. Must not be empty.
    pub audience: String,
    /// Access-token lifetime in seconds, 1 to 3600 ([`MAX_ACCESS_TTL_SECS`]).
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime in seconds, 1 to 2592000 (30 days,
    /// [`MAX_REFRESH_TTL_SECS`]).
    pub refresh_ttl_secs: u64,
    /// Authorization-code lifetime in seconds, 1 to 60 ([`MAX_CODE_TTL_SECS`]).
    pub code_ttl_secs: u64,
    /// The token-signing key ring (`[auth.signing]`): key size and rotation.
    pub signing: SigningConfig,
    /// Conditional-access policy file (docs/policy.md); none: the embedded
    /// default. A relative path is taken from the gateway's working
    /// directory.
    pub policy_file: Option<PathBuf>,
    /// Trusted external issuers (`[[auth.federation]]`) whose tokens can be
    /// exchanged for ours; none by default.
    pub federation: Vec<TrustedIssuerConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: "seqshield".to_owned(),
            access_ttl_secs: MAX_ACCESS_TTL_SECS,
            refresh_ttl_secs: 8 * 3600,
            code_ttl_secs: MAX_CODE_TTL_SECS,
            signing: SigningConfig::default(),
            policy_file: None,
            federation: Vec::new(),
        }
    }
}

/// A setting that is out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A lifetime is zero or above its cap.
    #[error("auth.{field} = {value} is out of range 1..={max}")]
    OutOfRange {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The cap.
        max: u64,
    },
    /// The issuer is not an absolute `https` URL without query or fragment.
    #[error("auth.issuer {0:?} must be an absolute https URL without query or fragment")]
    BadIssuer(String),
    /// The audience is empty.
    #[error("auth.audience must not be empty")]
    EmptyAudience,
}

/// The JSON schema of a clearance: one of the classification names.
pub(crate) fn clearance_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = crate::Clearance::ALL.iter().map(|c| c.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

impl AuthConfig {
    /// Checks every bound. Called by the service before it starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value, max) in [
            ("access_ttl_secs", self.access_ttl_secs, MAX_ACCESS_TTL_SECS),
            ("refresh_ttl_secs", self.refresh_ttl_secs, MAX_REFRESH_TTL_SECS),
            ("code_ttl_secs", self.code_ttl_secs, MAX_CODE_TTL_SECS),
        ] {
            if value == 0 || value > max {
                return Err(ConfigError::OutOfRange { field, value, max });
            }
        }
        let ok = url::Url::parse(&self.issuer).is_ok_and(|u| {
            u.scheme() == "https" && u.query().is_none() && u.fragment().is_none() && u.host().is_some()
        });
        if !ok {
            return Err(ConfigError::BadIssuer(self.issuer.clone()));
        }
        if self.audience.is_empty() {
            return Err(ConfigError::EmptyAudience);
        }
        Ok(())
    }

    /// The issuer without a trailing slash, for building endpoint URLs.
    pub fn base_url(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}
