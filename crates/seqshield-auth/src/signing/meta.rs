//! `keys.json`: the key ring's public metadata.
//!
//! ```json
//! {"version":1,"keys":[{"kid":"…","bits":3072,"created":1700000000,
//!   "retired_at":null,"n":"…","e":"AQAB"}]}
//! ```
//!
//! Exactly one key has `retired_at: null`: the active one. Every `kid` is
//! the RFC 7638 thumbprint of its `n` and `e`, which is checked on load (so
//! a `kid` is always 43 base64url characters, safe in a file name).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::jwt::{thumbprint, KeySet};

/// Format version of `keys.json`.
pub(super) const VERSION: u32 = 1;

/// The whole file.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Metadata {
    pub(super) version: u32,
    pub(super) keys: Vec<KeyMeta>,
}

/// One key.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyMeta {
    pub(super) kid: String,
    pub(super) bits: u32,
    pub(super) created: u64,
    pub(super) retired_at: Option<u64>,
    /// Modulus, base64url.
    pub(super) n: String,
    /// Public exponent, base64url.
    pub(super) e: String,
}

impl KeyMeta {
    /// Metadata for a new active key.
    pub(super) fn new(n: &[u8], e: &[u8], bits: u32, created: u64) -> Self {
        Self {
            kid: thumbprint(n, e),
            bits,
            created,
            retired_at: None,
            n: URL_SAFE_NO_PAD.encode(n),
            e: URL_SAFE_NO_PAD.encode(e),
        }
    }

    /// Whether the public key must still be published at `now`.
    pub(super) fn published(&self, now: u64, publish_after_retire: u64) -> bool {
        self.retired_at.is_none_or(|r| now < r.saturating_add(publish_after_retire))
    }
}

impl Metadata {
    /// Checks the invariants; returns the index of the active key.
    pub(super) fn validate(&self, max_keys: usize) -> Result<usize, &'static str> {
        if self.version != VERSION {
            return Err("unsupported version");
        }
        if self.keys.len() > max_keys {
            return Err("too many keys");
        }
        let mut active = None;
        for (i, k) in self.keys.iter().enumerate() {
            let n = URL_SAFE_NO_PAD.decode(&k.n).map_err(|_| "n is not base64url")?;
            let e = URL_SAFE_NO_PAD.decode(&k.e).map_err(|_| "e is not base64url")?;
            if thumbprint(&n, &e) != k.kid {
                return Err("a kid is not the RFC 7638 thumbprint of its key");
            }
            if self.keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err("a kid appears twice");
            }
            if k.retired_at.is_none() {
                if active.is_some() {
                    return Err("more than one active key");
                }
                active = Some(i);
            }
        }
        active.ok_or("no active key")
    }

    /// Every key's public half.
    pub(super) fn keyset(&self) -> Result<KeySet, &'static str> {
        let mut set = KeySet::new();
        for k in &self.keys {
            let n = URL_SAFE_NO_PAD.decode(&k.n).map_err(|_| "n is not base64url")?;
            let e = URL_SAFE_NO_PAD.decode(&k.e).map_err(|_| "e is not base64url")?;
            set.insert_components(k.kid.clone(), &n, &e).map_err(|_| "a public key is not usable")?;
        }
        Ok(set)
    }
}
