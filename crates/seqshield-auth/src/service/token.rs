//! The token endpoint (RFC 6749 §3.2): client authentication and the
//! authorization-code, refresh-token and client-credentials grants. Token
//! exchange is in [`super::exchange`].

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::mint::{store_err, Grant, TokenResponse};
use super::{random_token, token_hash, AuthService, Origin};
use crate::audit::{AuditEvent, Outcome};
use crate::error::{ErrorCode, OAuthError};
use crate::jwt::{self, KeySet, Validation};
use crate::policy::{Effect, Request, Stage};
use crate::store::{Client, CodeTake, RefreshRecord, RefreshUse};
use crate::{password, pkce, ScopeSet};

/// RFC 7523 §2.2 client assertion type.
pub const ASSERTION_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 8693 grant type.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Longest lifetime of a client assertion we accept (5 minutes).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;
/// `acr` of a token issued to a client authenticating as itself.
pub const ACR_CLIENT: &str = "urn:seqshield:acr:client";

/// The token endpoint's form parameters. A repeated parameter is refused
/// when the form is parsed (RFC 6749 §3.2).
#[derive(Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Zeroizing<String>>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub requested_token_type: Option<String>,
    /// seqshield extension: ask an exchanged token for a lower clearance.
    pub clearance: Option<String>,
}

impl std::fmt::Debug for TokenParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenParams")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Credentials from an `Authorization: Basic` header (RFC 6749 §2.3.1).
pub struct BasicAuth {
    /// The client id.
    pub client_id: String,
    /// The secret.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("client_id", &self.client_id).field("secret", &"[redacted]").finish()
    }
}

impl BasicAuth {
    /// Parses the header value; `None` when it is not Basic.
    /// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
    pub fn parse(value: &str) -> Result<Option<Self>, OAuthError> {
        let Some(b64) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
            return Ok(None);
        };
        let bad = || OAuthError::invalid_client("malformed Basic credentials");
        let raw = Zeroizing::new(STANDARD.decode(b64.trim()).map_err(|_| bad())?);
        let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let dec =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        Ok(Some(Self { client_id: dec(id).ok_or_else(bad)?, secret: Zeroizing::new(dec(secret).ok_or_else(bad)?) }))
    }
}

/// A client that proved who it is (or a public client that named itself).
#[derive(Debug)]
pub(crate) struct AuthenticatedClient {
    pub(crate) client: Client,
    pub(crate) method: &'static str,
}

#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: u64,
    jti: String,
}

fn unverified_subject(assertion: &str) -> Option<String> {
    if assertion.len() > jwt::MAX_TOKEN_BYTES {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

fn invalid_scope(d: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidScope, d)
}

impl AuthService {
    /// Runs one token request.
    pub async fn token(
        self: &Arc<Self>,
        p: TokenParams,
        basic: Option<BasicAuth>,
        origin: Origin,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = p.grant_type.clone().ok_or(OAuthError::invalid_request("grant_type is required"))?;
        let client = self.authenticate_client(&p, basic, origin).await?;
        let result = match grant.as_str() {
            "authorization_code" => self.grant_code(&p, &client, origin),
            "refresh_token" => self.grant_refresh(&p, &client, origin),
            "client_credentials" => self.grant_client_credentials(&p, &client, origin),
            GRANT_TOKEN_EXCHANGE => self.grant_exchange(&p, &client, origin).await,
            _ => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type")),
        };
        if let Err(e) = &result {
            self.audit_best_effort(
                AuditEvent::new(self.now(), "token.refused", Outcome::Deny, e.description)
                    .client(&client.client.id)
                    .source(origin.ip)
                    .with("grant_type", grant.as_str())
                    .with("error", e.code.as_str()),
            );
        }
        result
    }

    /// RFC 6749 §2.3: exactly one way of authenticating.
    pub(crate) async fn authenticate_client(
        self: &Arc<Self>,
        p: &TokenParams,
        basic: Option<BasicAuth>,
        origin: Origin,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let methods = usize::from(basic.is_some())
            + usize::from(p.client_secret.is_some())
            + usize::from(p.client_assertion.is_some());
        if methods > 1 {
            return Err(OAuthError::invalid_request("use exactly one client authentication method"));
        }
        let (claimed, method) = if let Some(b) = &basic {
            if p.client_id.as_deref().is_some_and(|id| id != b.client_id) {
                return Err(OAuthError::invalid_request("client_id does not match the Basic credentials"));
            }
            (b.client_id.clone(), "client_secret_basic")
        } else if p.client_secret.is_some() {
            (p.client_id.clone().ok_or(OAuthError::invalid_request("client_id is required"))?, "client_secret_post")
        } else if let Some(a) = &p.client_assertion {
            if p.client_assertion_type.as_deref() != Some(ASSERTION_TYPE_JWT_BEARER) {
                return Err(OAuthError::invalid_request("client_assertion_type must be jwt-bearer"));
            }
            let sub = unverified_subject(a).ok_or(OAuthError::invalid_client("malformed client assertion"))?;
            if p.client_id.as_deref().is_some_and(|id| id != sub) {
                return Err(OAuthError::invalid_request("client_id does not match the client assertion"));
            }
            (sub, "private_key_jwt")
        } else {
            (p.client_id.clone().ok_or(OAuthError::invalid_client("client authentication is required"))?, "none")
        };
        let now = self.now();
        let ip = origin.ip_or_unspecified();
        let throttle_key = format!("client:{claimed}");
        if let Err(wait) = self.throttle.check(&throttle_key, ip, now) {
            return Err(OAuthError::slow_down(wait.0));
        }
        let fail = |this: &Self, why: &'static str| {
            this.throttle.failure(&throttle_key, ip, now);
            this.audit_best_effort(
                AuditEvent::new(now, "client.auth", Outcome::Deny, why)
                    .client(&claimed)
                    .source(origin.ip)
                    .with("method", method),
            );
            let mut e = OAuthError::invalid_client("client authentication failed");
            e.basic_challenge = method == "client_secret_basic";
            e
        };
        let client = match self.store.client(&claimed).map_err(store_err)? {
            Some(c) => c,
            None => {
                if method.starts_with("client_secret") {
                    // Same cost as a real check: unknown ids are not revealed by timing.
                    let secret =
                        basic.as_ref().map(|b| b.secret.clone()).or(p.client_secret.clone()).unwrap_or_default();
                    let _ = tokio::task::spawn_blocking(move || password::dummy_verify(secret.as_bytes())).await;
                }
                return Err(fail(self, "unknown client"));
            }
        };
        let ok = match method {
            "client_secret_basic" | "client_secret_post" => {
                let secret = basic.map(|b| b.secret).or(p.client_secret.clone()).unwrap_or_default();
                match &client.secret_hash {
                    Some(phc) => self.check_secret(&client.id, phc, secret).await,
                    None => false,
                }
            }
            "private_key_jwt" => self.check_assertion(&client, p.client_assertion.as_deref().unwrap_or(""), now),
            _ => !client.confidential(),
        };
        if !ok {
            return Err(fail(self, "bad client credentials"));
        }
        self.throttle.success(&throttle_key, ip);
        Ok(AuthenticatedClient { client, method })
    }

    async fn check_secret(self: &Arc<Self>, id: &str, phc: &str, secret: Zeroizing<String>) -> bool {
        // Secrets are ≥ 32 random bytes, so after one argon2id check a
        // SHA-256 of the secret is kept to make later checks cheap.
        let cache_key = format!("{id}\n{phc}");
        let fast = super::token_hash(&secret);
        let cached = self.secret_cache.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key).copied();
        if let Some(c) = cached {
            return aws_lc_rs::constant_time::verify_slices_are_equal(&c, &fast).is_ok();
        }
        let phc_owned = phc.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify_password(&phc_owned, secret.as_bytes()))
            .await
            .unwrap_or(false);
        if ok {
            let mut cache = self.secret_cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(cache_key, fast);
        }
        ok
    }

    /// RFC 7523 §3 with OIDC Core §9 `private_key_jwt`: signed by a key in
    /// the client's registered JWKS, `iss` = `sub` = client id, audience the
    /// token endpoint (or the issuer), short-lived, single-use `jti`.
    fn check_assertion(&self, client: &Client, assertion: &str, now: u64) -> bool {
        let Some(jwks) = &client.jwks else { return false };
        let Ok(keys) = KeySet::from_jwks(jwks.as_bytes()) else { return false };
        let mut v = Validation {
            issuer: client.id.clone(),
            audience: self.endpoint("/token"),
            leeway_secs: jwt::MAX_CLOCK_SKEW_SECS,
            typ: None,
        };
        let claims: AssertionClaims = match jwt::verify(assertion, &keys, &v, now) {
            Ok(c) => c,
            Err(jwt::JwtError::WrongAudience) => {
                v.audience = self.cfg.issuer.clone();
                match jwt::verify(assertion, &keys, &v, now) {
                    Ok(c) => c,
                    Err(_) => return false,
                }
            }
            Err(_) => return false,
        };
        if claims.sub != client.id || claims.exp > now + MAX_ASSERTION_LIFETIME_SECS || claims.jti.is_empty() {
            return false;
        }
        let jti = format!("assertion:{}:{}", client.id, claims.jti);
        if self.store.is_revoked(&jti) {
            return false;
        }
        self.store.revoke_jti(&jti, claims.exp + jwt::MAX_CLOCK_SKEW_SECS).is_ok()
    }

    fn grant_code(
        &self,
        p: &TokenParams,
        c: &AuthenticatedClient,
        origin: Origin,
    ) -> Result<TokenResponse, OAuthError> {
        let code = p.code.as_deref().ok_or(OAuthError::invalid_request("code is required"))?;
        let redirect_uri = p.redirect_uri.as_deref().ok_or(OAuthError::invalid_request("redirect_uri is required"))?;
        let verifier =
            p.code_verifier.as_deref().ok_or(OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
        let now = self.now();
        let hash = token_hash(code);
        let rec = match self.store.take_code(hash, now).map_err(store_err)? {
            CodeTake::Fresh(rec) => rec,
            CodeTake::Replayed { family } => {
                // RFC 6749 §4.1.2: a replayed code revokes what it produced.
                if let Some(f) = &family {
                    self.store.revoke_family(f, now).map_err(store_err)?;
                }
                self.audit_best_effort(
                    AuditEvent::new(now, "token.code_replay", Outcome::Deny, "authorization code used twice")
                        .client(&c.client.id)
                        .source(origin.ip)
                        .with("family_revoked", family.is_some()),
                );
                return Err(OAuthError::invalid_grant("the authorization code was already used"));
            }
            CodeTake::Unknown => return Err(OAuthError::invalid_grant("the authorization code is invalid or expired")),
        };
        if rec.client_id != c.client.id {
            return Err(OAuthError::invalid_grant("the authorization code was issued to another client"));
        }
        if rec.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
        }
        if pkce::verify(verifier, &rec.code_challenge).is_err() {
            return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
        }
        self.issue_decision(&rec.user, &c.client.id, &rec.scope, rec.clearance, &rec.amr, origin, &self.cfg.audience)?;
        let family = random_token();
        let grant = Grant {
            subject: rec.user.clone(),
            audience: self.cfg.audience.clone(),
            scope: rec.scope.clone(),
            clearance: rec.clearance,
            amr: rec.amr.clone(),
            acr: rec.acr.clone(),
            client_id: c.client.id.clone(),
            act: None,
            not_after: None,
            family: Some(family.clone()),
            task: None,
        };
        let (access, claims) = self.mint_access(&grant)?;
        let refresh = self.mint_refresh(&RefreshRecord {
            family: family.clone(),
            user: rec.user.clone(),
            client_id: c.client.id.clone(),
            scope: rec.scope.clone(),
            clearance: rec.clearance,
            amr: rec.amr.clone(),
            acr: rec.acr.clone(),
            audience: self.cfg.audience.clone(),
            auth_time: rec.auth_time,
            expires_at: now + self.cfg.refresh_ttl_secs,
        })?;
        self.store.set_code_family(hash, &family).map_err(store_err)?;
        let id_token = if rec.scope.contains("openid") {
            Some(self.mint_id(
                &rec.user,
                &c.client.id,
                rec.nonce.as_deref().unwrap_or(""),
                rec.auth_time,
                &rec.amr,
                &rec.acr,
            )?)
        } else {
            None
        };
        self.audit_issue(&claims, "authorization_code", origin)?;
        Ok(TokenResponse { refresh_token: Some(refresh), id_token, ..TokenResponse::bearer(access, &claims, now) })
    }

    fn grant_refresh(
        &self,
        p: &TokenParams,
        c: &AuthenticatedClient,
        origin: Origin,
    ) -> Result<TokenResponse, OAuthError> {
        let token = p.refresh_token.as_deref().ok_or(OAuthError::invalid_request("refresh_token is required"))?;
        let now = self.now();
        let rec = match self.store.use_refresh(token_hash(token), now).map_err(store_err)? {
            RefreshUse::Fresh(rec) => rec,
            RefreshUse::Reused { family } => {
                self.audit_best_effort(
                    AuditEvent::new(now, "token.refresh_reuse", Outcome::Deny, "refresh token reused; family revoked")
                        .client(&c.client.id)
                        .source(origin.ip)
                        .with("family", family.as_str()),
                );
                return Err(OAuthError::invalid_grant("the refresh token was already used; its family is revoked"));
            }
            RefreshUse::Revoked => return Err(OAuthError::invalid_grant("the refresh token was revoked")),
            RefreshUse::Expired => return Err(OAuthError::invalid_grant("the refresh token has expired")),
            RefreshUse::Unknown => return Err(OAuthError::invalid_grant("the refresh token is invalid")),
        };
        if rec.client_id != c.client.id {
            // A token presented by the wrong client is treated as stolen.
            self.store.revoke_family(&rec.family, now).map_err(store_err)?;
            return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
        }
        let scope = match &p.scope {
            Some(s) => {
                let s = ScopeSet::parse(s).map_err(|_| invalid_scope("scope is malformed"))?;
                if !s.is_subset(&rec.scope) {
                    return Err(invalid_scope("a refresh cannot widen the scope"));
                }
                s
            }
            None => rec.scope.clone(),
        };
        self.issue_decision(&rec.user, &c.client.id, &scope, rec.clearance, &rec.amr, origin, &rec.audience)?;
        let grant = Grant {
            subject: rec.user.clone(),
            audience: rec.audience.clone(),
            scope: scope.clone(),
            clearance: rec.clearance,
            amr: rec.amr.clone(),
            acr: rec.acr.clone(),
            client_id: c.client.id.clone(),
            act: None,
            not_after: None,
            family: Some(rec.family.clone()),
            task: None,
        };
        let (access, claims) = self.mint_access(&grant)?;
        // The family keeps its original expiry: rotation never extends it.
        let refresh = self.mint_refresh(&RefreshRecord { scope, ..rec })?;
        self.audit_issue(&claims, "refresh_token", origin)?;
        Ok(TokenResponse { refresh_token: Some(refresh), ..TokenResponse::bearer(access, &claims, now) })
    }

    fn grant_client_credentials(
        &self,
        p: &TokenParams,
        c: &AuthenticatedClient,
        origin: Origin,
    ) -> Result<TokenResponse, OAuthError> {
        if c.method == "none" {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "client_credentials needs a confidential client",
            ));
        }
        let scope = match &p.scope {
            Some(s) => ScopeSet::parse(s).map_err(|_| invalid_scope("scope is malformed"))?,
            None => c.client.scopes.clone(),
        };
        if !scope.is_subset(&c.client.scopes) {
            return Err(invalid_scope("scope exceeds what the client is registered for"));
        }
        let amr: Vec<String> = Vec::new();
        self.issue_decision(&c.client.id, &c.client.id, &scope, c.client.clearance, &amr, origin, &self.cfg.audience)?;
        let grant = Grant {
            subject: c.client.id.clone(),
            audience: self.cfg.audience.clone(),
            scope,
            clearance: c.client.clearance,
            amr,
            acr: ACR_CLIENT.to_owned(),
            client_id: c.client.id.clone(),
            act: None,
            not_after: None,
            family: None,
            task: None,
        };
        let (access, claims) = self.mint_access(&grant)?;
        self.audit_issue(&claims, "client_credentials", origin)?;
        Ok(TokenResponse::bearer(access, &claims, self.now()))
    }

    /// RFC 7009 revocation by the client the token was issued to: a refresh
    /// token revokes its whole family, an access token its `jti`. Unknown
    /// tokens and other clients' tokens are ignored (§2.2: always 200).
    pub async fn revoke(
        self: &Arc<Self>,
        token: &str,
        p: &TokenParams,
        basic: Option<BasicAuth>,
        origin: Origin,
    ) -> Result<(), OAuthError> {
        let c = self.authenticate_client(p, basic, origin).await?;
        let now = self.now();
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return Ok(());
        }
        if let Some(rec) = self.store.refresh_record(token_hash(token), now).map_err(store_err)? {
            if rec.client_id == c.client.id {
                self.store.revoke_family(&rec.family, now).map_err(store_err)?;
                self.audit(
                    AuditEvent::new(now, "token.revoke", Outcome::Allow, "refresh-token family revoked by its client")
                        .subject(&rec.user)
                        .client(&c.client.id)
                        .source(origin.ip),
                )?;
            }
            return Ok(());
        }
        if let Ok(claims) = self.verify_own_any_audience(token) {
            if claims.client_id == c.client.id {
                self.store.revoke_jti(&claims.jti, claims.exp).map_err(store_err)?;
                self.audit(
                    AuditEvent::new(now, "token.revoke", Outcome::Allow, "access token revoked by its client")
                        .subject(&claims.sub)
                        .client(&c.client.id)
                        .source(origin.ip)
                        .with("jti", claims.jti.as_str()),
                )?;
            }
        }
        Ok(())
    }

    /// Conditional access at token issue: deny → `access_denied`, step-up
    /// without MFA → `insufficient_user_authentication`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn issue_decision(
        &self,
        subject: &str,
        client: &str,
        scope: &ScopeSet,
        clearance: crate::Clearance,
        amr: &[String],
        origin: Origin,
        audience: &str,
    ) -> Result<(), OAuthError> {
        self.stage_decision(Stage::Issue, subject, client, scope, clearance, amr, origin, audience)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stage_decision(
        &self,
        stage: Stage,
        subject: &str,
        client: &str,
        scope: &ScopeSet,
        clearance: crate::Clearance,
        amr: &[String],
        origin: Origin,
        audience: &str,
    ) -> Result<(), OAuthError> {
        let d = self.decide(&Request {
            stage,
            subject,
            client,
            scopes: scope,
            classification: clearance,
            amr,
            source: origin.ip,
            now: self.now(),
            audience: Some(audience),
        })?;
        match d.effect {
            Effect::Allow => Ok(()),
            Effect::StepUp if amr.iter().any(|m| m == "mfa") => Ok(()),
            Effect::StepUp => Err(OAuthError::new(
                ErrorCode::InsufficientUserAuthentication,
                "the access policy requires multi-factor authentication",
            )),
            Effect::Deny => Err(OAuthError::new(ErrorCode::AccessDenied, "refused by the access policy")),
        }
    }

    fn audit_issue(&self, c: &jwt::AccessClaims, grant: &str, origin: Origin) -> Result<(), OAuthError> {
        self.audit(
            AuditEvent::new(self.now(), "token.issue", Outcome::Allow, "token issued")
                .subject(&c.sub)
                .client(&c.client_id)
                .source(origin.ip)
                .with("grant_type", grant)
                .with("jti", c.jti.as_str())
                .with("aud", c.aud.as_str())
                .with("scope", c.scope.to_string())
                .with("clearance", c.clearance.as_str())
                .with("exp", c.exp),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_form_decoded() {
        let v = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss+word"));
        let b = BasicAuth::parse(&v).unwrap().unwrap();
        assert_eq!(b.client_id, "my:client");
        assert_eq!(b.secret.as_str(), "p@ss word");
        assert!(BasicAuth::parse("Bearer x").unwrap().is_none());
        assert!(BasicAuth::parse("Basic !!!").is_err());
        assert!(BasicAuth::parse(&format!("Basic {}", STANDARD.encode("nocolon"))).is_err());
        assert!(!format!("{b:?}").contains("p@ss"));
    }
}
