//! Building and signing tokens, and the token response (RFC 6749 §5.1).

use serde::Serialize;

use super::{random_token, token_hash, AuthService};
use crate::error::OAuthError;
use crate::jwt::{AccessClaims, Actor, IdClaims, TYP_ACCESS, TYP_ID};
use crate::store::RefreshRecord;
use crate::{Clearance, ScopeSet};

/// RFC 8693 §3 token type of our access tokens.
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What goes into an access token.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The subject (`sub`).
    pub subject: String,
    /// The audience (`aud`).
    pub audience: String,
    /// The scopes.
    pub scope: ScopeSet,
    /// The data clearance.
    pub clearance: Clearance,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: String,
    /// The client the token is issued to.
    pub client_id: String,
    /// Delegation chain (RFC 8693 §4.1).
    pub act: Option<Actor>,
    /// The token may not outlive this (e.g. the subject token's `exp`).
    pub not_after: Option<u64>,
    /// The refresh-token family, so a revoked family revokes this token.
    pub family: Option<String>,
    /// The task a worker's token is bound to (manifest exchange only).
    pub task: Option<crate::jwt::TaskBinding>,
}

/// The token endpoint's success body (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The granted scopes.
    pub scope: String,
    /// A new refresh token (code and refresh grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token (code grant with `openid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693: the type of the issued token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl TokenResponse {
    /// The response for a freshly signed access token, without refresh
    /// token, ID token or exchange type (set those fields as needed).
    pub fn bearer(access_token: String, claims: &AccessClaims, now: u64) -> Self {
        Self {
            access_token,
            token_type: "Bearer",
            expires_in: claims.exp.saturating_sub(now),
            scope: claims.scope.to_string(),
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        }
    }
}

impl AuthService {
    /// Signs an access token for `g`; returns it with its claims.
    pub(crate) fn mint_access(&self, g: &Grant) -> Result<(String, AccessClaims), OAuthError> {
        let now = self.now();
        let mut exp = now + self.cfg.access_ttl_secs;
        if let Some(cap) = g.not_after {
            exp = exp.min(cap);
        }
        if exp <= now {
            return Err(OAuthError::invalid_grant("the subject token has expired"));
        }
        let claims = AccessClaims {
            iss: self.cfg.issuer.clone(),
            sub: g.subject.clone(),
            aud: g.audience.clone(),
            exp,
            iat: now,
            nbf: now,
            jti: random_token(),
            scope: g.scope.clone(),
            amr: g.amr.clone(),
            acr: g.acr.clone(),
            clearance: g.clearance,
            client_id: g.client_id.clone(),
            act: g.act.clone(),
            tsk: g.task.clone(),
        };
        // Tokens of a refresh family are recorded so that revoking the
        // family revokes them; others can still be revoked by `jti`.
        if let Some(f) = &g.family {
            self.store.record_issued(&claims.jti, Some(f), exp).map_err(store_err)?;
        }
        let token = self.keys().sign(TYP_ACCESS, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            OAuthError::server_error()
        })?;
        Ok((token, claims))
    }

    /// Signs an ID token (OIDC Core §2) for a code-flow login.
    pub(crate) fn mint_id(
        &self,
        subject: &str,
        client_id: &str,
        nonce: &str,
        auth_time: u64,
        amr: &[String],
        acr: &str,
    ) -> Result<String, OAuthError> {
        let now = self.now();
        let claims = IdClaims {
            iss: self.cfg.issuer.clone(),
            sub: subject.to_owned(),
            aud: client_id.to_owned(),
            exp: now + self.cfg.access_ttl_secs,
            iat: now,
            nbf: Some(now),
            auth_time,
            nonce: nonce.to_owned(),
            amr: amr.to_vec(),
            acr: acr.to_owned(),
            jti: random_token(),
        };
        self.keys().sign(TYP_ID, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            OAuthError::server_error()
        })
    }

    /// Stores a new refresh token of `rec.family`; returns the token.
    pub(crate) fn mint_refresh(&self, rec: &RefreshRecord) -> Result<String, OAuthError> {
        let token = random_token();
        self.store.put_refresh(token_hash(&token), rec).map_err(store_err)?;
        Ok(token)
    }
}

pub(crate) fn store_err(e: crate::store::StoreError) -> OAuthError {
    tracing::error!(error = %e, "store");
    OAuthError::server_error()
}
