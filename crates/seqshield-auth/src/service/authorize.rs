//! The authorization endpoint and the two login steps (RFC 6749 §4.1,
//! RFC 7636, OIDC Core §3.1.2).
//!
//! The validated request is kept on the server under a random login id, so
//! the login forms carry nothing but that id (bound to a cookie by the HTTP
//! layer), the credentials and the code.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{random_token, token_hash, AuthService, Origin, MAX_PENDING_LOGINS, PENDING_LOGIN_TTL_SECS};
use crate::audit::{AuditEvent, Outcome};
use crate::error::{ErrorCode, OAuthError};
use crate::policy::{Effect, Request, Stage};
use crate::store::{CodeRecord, StoreError};
use crate::{password, pkce, totp, Clearance, ScopeSet};

/// Most logins in progress from one source address at once.
pub const MAX_PENDING_LOGINS_PER_SOURCE: usize = 32;
/// Longest `state` or `nonce` accepted, in bytes.
pub const MAX_STATE_LEN: usize = 512;
/// Longest redirect URI accepted, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Longest user name accepted in the login form, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// `amr` of a password + TOTP login (RFC 8176).
pub const AMR_MFA: [&str; 3] = ["pwd", "otp", "mfa"];
/// `acr` of a password + TOTP login.
pub const ACR_MFA: &str = "urn:seqshield:acr:mfa";

/// Query parameters of the authorization request, as received.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[allow(missing_docs)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// A validated authorization request.
#[derive(Clone, Debug)]
pub struct AuthzRequest {
    /// The client.
    pub client_id: String,
    /// The redirect URI as presented (it matched a registered one).
    pub redirect_uri: String,
    /// The scopes asked for (a subset of the client's).
    pub scope: ScopeSet,
    /// Opaque client state, returned unchanged.
    pub state: String,
    /// OIDC nonce, copied into the ID token.
    pub nonce: String,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
}

/// A login between its steps.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    req: AuthzRequest,
    created: u64,
    user: Option<String>,
    source: Option<std::net::IpAddr>,
    /// Order of creation (timestamps tie within a second).
    seq: u64,
}

impl Pending {
    /// Whether the login is still within [`PENDING_LOGIN_TTL_SECS`].
    pub(crate) fn fresh(&self, now: u64) -> bool {
        now.saturating_sub(self.created) < PENDING_LOGIN_TTL_SECS
    }
}

/// Why an authorization request failed.
#[derive(Debug)]
pub enum AuthorizeFailure {
    /// The client or redirect URI is bad: never redirect, show the error
    /// (RFC 6749 §4.1.2.1).
    Page(OAuthError),
    /// Send the error back to the client's redirect URI.
    Redirect(String),
}

/// What the login page shows next.
#[derive(Debug)]
pub enum LoginStep {
    /// The password form, with a message.
    Password {
        /// The login id.
        pending: String,
        /// Why the form is shown again.
        message: &'static str,
        /// 401, or 429 when throttled.
        status: u16,
    },
    /// The TOTP form.
    Totp {
        /// The login id.
        pending: String,
        /// A message, after a wrong code.
        message: Option<&'static str>,
    },
    /// First login: enrol the authenticator, then enter a code.
    Enroll {
        /// The login id.
        pending: String,
        /// The `otpauth://` URI.
        uri: Zeroizing<String>,
        /// The URI as an SVG QR code.
        qr_svg: Zeroizing<String>,
        /// A message, after a wrong code.
        message: Option<&'static str>,
    },
    /// Done: redirect the browser here (code or error).
    Redirect(String),
    /// The login id is unknown or expired, or the step is out of order.
    Failed(OAuthError),
}

/// RFC 8252 §7.3: a loopback redirect may use any port; everything else must
/// match the registered URI exactly.
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    r.scheme() == "http"
        && p.scheme() == "http"
        && loopback(&r)
        && r.host() == p.host()
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && p.username().is_empty()
        && p.password().is_none()
}

/// Builds `redirect_uri?k=v&…`, keeping any query the URI already has.
pub(crate) fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

impl AuthService {
    fn redirect_error(&self, req_uri: &str, state: Option<&str>, e: OAuthError) -> AuthorizeFailure {
        let iss = self.cfg.issuer.clone();
        let mut pairs = vec![("error", e.code.as_str()), ("error_description", e.description), ("iss", iss.as_str())];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        AuthorizeFailure::Redirect(redirect_with(req_uri, &pairs))
    }

    /// Validates an authorization request and starts a login; returns the
    /// login id.
    pub fn start_authorization(&self, p: &AuthorizeParams, origin: Origin) -> Result<String, AuthorizeFailure> {
        let page = |d| AuthorizeFailure::Page(OAuthError::invalid_request(d));
        let client_id = p.client_id.as_deref().filter(|c| !c.is_empty()).ok_or(page("client_id is required"))?;
        let client = match self.store.client(client_id) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(AuthorizeFailure::Page(OAuthError::invalid_client("unknown client"))),
            Err(e) => {
                tracing::error!(error = %e, "store");
                return Err(AuthorizeFailure::Page(OAuthError::server_error()));
            }
        };
        let redirect_uri =
            p.redirect_uri.as_deref().filter(|r| !r.is_empty()).ok_or(page("redirect_uri is required"))?;
        if redirect_uri.len() > MAX_REDIRECT_URI_LEN
            || !client.redirect_uris.iter().any(|r| redirect_matches(r, redirect_uri))
        {
            return Err(page("redirect_uri does not match a registered redirect URI"));
        }
        // From here on, errors go back to the client.
        let state = p.state.as_deref();
        let back = |e| self.redirect_error(redirect_uri, state.filter(|s| s.len() <= MAX_STATE_LEN), e);
        if p.response_type.as_deref() != Some("code") {
            return Err(back(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
        let state = match state {
            Some(s) if !s.is_empty() && s.len() <= MAX_STATE_LEN => s,
            _ => return Err(back(OAuthError::invalid_request("state is required (at most 512 bytes)"))),
        };
        let nonce = match p.nonce.as_deref() {
            Some(n) if !n.is_empty() && n.len() <= MAX_STATE_LEN => n,
            _ => return Err(back(OAuthError::invalid_request("nonce is required (at most 512 bytes)"))),
        };
        if let Err(e) = pkce::check_challenge(p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
            return Err(back(OAuthError::invalid_request(match e {
                pkce::PkceError::MissingChallenge => "code_challenge is required (PKCE)",
                pkce::PkceError::UnsupportedMethod => "code_challenge_method must be S256",
                _ => "code_challenge is malformed",
            })));
        }
        let scope = match ScopeSet::parse(p.scope.as_deref().unwrap_or("")) {
            Ok(s) if s.contains("openid") => s,
            Ok(_) => return Err(back(OAuthError::new(ErrorCode::InvalidScope, "scope must include openid"))),
            Err(_) => return Err(back(OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))),
        };
        if !scope.is_subset(&client.scopes) {
            return Err(back(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope exceeds what the client is registered for",
            )));
        }
        let req = AuthzRequest {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope,
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            code_challenge: p.code_challenge.clone().unwrap_or_default(),
        };
        let id = random_token();
        let now = self.now();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, v| v.fresh(now));
        // One source cannot push out everyone else's logins: past its own
        // cap, it loses its own oldest login first.
        let mine = pending.values().filter(|v| v.source == origin.ip).count();
        let evict = if mine >= MAX_PENDING_LOGINS_PER_SOURCE {
            pending.iter().filter(|(_, v)| v.source == origin.ip).min_by_key(|(_, v)| v.seq).map(|(k, _)| k.clone())
        } else if pending.len() >= MAX_PENDING_LOGINS {
            pending.iter().min_by_key(|(_, v)| v.seq).map(|(k, _)| k.clone())
        } else {
            None
        };
        if let Some(k) = evict {
            pending.remove(&k);
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        pending.insert(id.clone(), Pending { req, created: now, user: None, source: origin.ip, seq });
        Ok(id)
    }

    /// The client a login is for (to show on the page), if the login is live.
    pub fn pending_client(&self, pending: &str) -> Option<String> {
        self.pending_get(pending).map(|p| p.req.client_id)
    }

    fn pending_get(&self, id: &str) -> Option<Pending> {
        let now = self.now();
        let map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|p| p.fresh(now)).cloned()
    }

    fn expired_login() -> LoginStep {
        LoginStep::Failed(OAuthError::invalid_request(
            "the login expired or is unknown; start again from the application",
        ))
    }

    /// The password step. Costs one argon2id verification whether or not
    /// the user exists, and answers the same text either way.
    pub async fn login_password(
        self: &Arc<Self>,
        pending_id: &str,
        username: &str,
        password: Zeroizing<String>,
        origin: Origin,
    ) -> LoginStep {
        let Some(p) = self.pending_get(pending_id) else { return Self::expired_login() };
        let now = self.now();
        let ip = origin.ip_or_unspecified();
        let again = |message, status| LoginStep::Password { pending: pending_id.to_owned(), message, status };
        if let Err(wait) = self.throttle.check(username, ip, now) {
            self.audit_best_effort(
                AuditEvent::new(now, "login.throttled", Outcome::Deny, "too many failed attempts")
                    .client(&p.req.client_id)
                    .source(origin.ip)
                    .with("retry_after", wait.0),
            );
            return again("Too many attempts. Wait a while and try again.", 429);
        }
        let user = if username.len() <= MAX_USERNAME_LEN { self.store.user(username) } else { Ok(None) };
        let user = match user {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "store");
                return LoginStep::Failed(OAuthError::server_error());
            }
        };
        let ok = tokio::task::spawn_blocking(move || match &user {
            Some(u) if !u.disabled => {
                password::verify_password(&u.password_hash, password.as_bytes()).then(|| u.clone())
            }
            Some(u) => {
                // A disabled account costs the same and answers the same.
                let _ = password::verify_password(&u.password_hash, password.as_bytes());
                None
            }
            None => {
                password::dummy_verify(password.as_bytes());
                None
            }
        })
        .await
        .ok()
        .flatten();
        let Some(user) = ok else {
            self.throttle.failure(username, ip, now);
            self.audit_best_effort(
                AuditEvent::new(now, "login.password", Outcome::Deny, "invalid username or password")
                    .client(&p.req.client_id)
                    .source(origin.ip),
            );
            return again("Invalid username or password.", 401);
        };
        self.throttle.success(username, ip);
        let granted = p.req.scope.intersection(&user.scopes);
        let amr = vec!["pwd".to_owned()];
        let decision = match self.decide(&Request {
            stage: Stage::Login,
            subject: &user.name,
            client: &p.req.client_id,
            scopes: &granted,
            classification: user.clearance,
            amr: &amr,
            source: origin.ip,
            now,
            audience: None,
        }) {
            Ok(d) => d,
            Err(e) => return LoginStep::Failed(e),
        };
        if decision.effect == Effect::Deny {
            self.pending_remove(pending_id);
            let iss = self.cfg.issuer.clone();
            return LoginStep::Redirect(redirect_with(
                &p.req.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "refused by the access policy"),
                    ("state", &p.req.state),
                    ("iss", &iss),
                ],
            ));
        }
        // Allow and step-up both continue: the login always ends with TOTP.
        self.pending_set_user(pending_id, &user.name);
        if user.totp_confirmed {
            LoginStep::Totp { pending: pending_id.to_owned(), message: None }
        } else {
            self.enroll_step(pending_id, &user.name, &user.totp_secret, None)
        }
    }

    fn enroll_step(
        &self,
        pending: &str,
        name: &str,
        secret: &totp::TotpSecret,
        message: Option<&'static str>,
    ) -> LoginStep {
        let uri = Zeroizing::new(totp::otpauth_uri(secret, "seqshield", name));
        let qr_svg = Zeroizing::new(totp::qr_svg(&uri).unwrap_or_else(|e| {
            tracing::error!(error = %e, "QR code");
            String::new()
        }));
        LoginStep::Enroll { pending: pending.to_owned(), uri, qr_svg, message }
    }

    fn pending_set_user(&self, id: &str, user: &str) {
        if let Some(p) = self.pending.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id) {
            p.user = Some(user.to_owned());
        }
    }

    fn pending_remove(&self, id: &str) -> Option<Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// The TOTP step (RFC 6238: ±1 step, a used step is refused). On
    /// success the login ends with a redirect carrying a single-use code.
    pub fn login_totp(&self, pending_id: &str, code: &str, origin: Origin) -> LoginStep {
        let Some(p) = self.pending_get(pending_id) else { return Self::expired_login() };
        let Some(name) = p.user.clone() else { return Self::expired_login() };
        let now = self.now();
        let ip = origin.ip_or_unspecified();
        let user = match self.store.user(&name) {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => return Self::expired_login(),
            Err(e) => {
                tracing::error!(error = %e, "store");
                return LoginStep::Failed(OAuthError::server_error());
            }
        };
        let retry = |message| {
            if user.totp_confirmed {
                LoginStep::Totp { pending: pending_id.to_owned(), message: Some(message) }
            } else {
                self.enroll_step(pending_id, &name, &user.totp_secret, Some(message))
            }
        };
        let totp_key = format!("totp:{name}");
        if self.throttle.check(&totp_key, ip, now).is_err() {
            return retry("Too many attempts. Wait a while and try again.");
        }
        let code = code.trim();
        let Some(step) = totp::verify(&user.totp_secret, code, now) else {
            self.throttle.failure(&totp_key, ip, now);
            self.audit_best_effort(
                AuditEvent::new(now, "login.totp", Outcome::Deny, "wrong one-time code")
                    .subject(&name)
                    .client(&p.req.client_id)
                    .source(origin.ip),
            );
            return retry("That code is not right. Check the clock of your device and try again.");
        };
        match self.store.use_totp_step(&name, step) {
            Ok(true) => {}
            Ok(false) => {
                self.audit_best_effort(
                    AuditEvent::new(now, "login.totp", Outcome::Deny, "one-time code already used")
                        .subject(&name)
                        .client(&p.req.client_id)
                        .source(origin.ip),
                );
                return retry("That code was already used. Wait for the next one.");
            }
            Err(e) => {
                tracing::error!(error = %e, "store");
                return LoginStep::Failed(OAuthError::server_error());
            }
        }
        self.throttle.success(&totp_key, ip);
        if !user.totp_confirmed {
            if let Err(e) = self.store.confirm_totp(&name) {
                tracing::error!(error = %e, "store");
                return LoginStep::Failed(OAuthError::server_error());
            }
        }
        let Some(p) = self.pending_remove(pending_id) else { return Self::expired_login() };
        match self.issue_code(&p.req, &name, user.scopes.intersection(&p.req.scope), user.clearance, origin) {
            Ok(url) => LoginStep::Redirect(url),
            Err(e) => LoginStep::Failed(e),
        }
    }

    fn issue_code(
        &self,
        req: &AuthzRequest,
        user: &str,
        scope: ScopeSet,
        clearance: Clearance,
        origin: Origin,
    ) -> Result<String, OAuthError> {
        let now = self.now();
        let code = random_token();
        let rec = CodeRecord {
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            user: user.to_owned(),
            scope,
            nonce: Some(req.nonce.clone()),
            code_challenge: req.code_challenge.clone(),
            auth_time: now,
            amr: AMR_MFA.iter().map(|s| (*s).to_owned()).collect(),
            acr: ACR_MFA.to_owned(),
            clearance,
            expires_at: now + self.cfg.code_ttl_secs,
        };
        self.store.put_code(token_hash(&code), &rec).map_err(|e: StoreError| {
            tracing::error!(error = %e, "store");
            OAuthError::server_error()
        })?;
        self.audit(
            AuditEvent::new(now, "login.success", Outcome::Allow, "password and TOTP verified")
                .subject(user)
                .client(&req.client_id)
                .source(origin.ip)
                .with("amr", "pwd otp mfa"),
        )?;
        let iss = self.cfg.issuer.clone();
        Ok(redirect_with(&req.redirect_uri, &[("code", &code), ("state", &req.state), ("iss", &iss)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_may_change_port_only() {
        let reg = "http://127.0.0.1/callback";
        assert!(redirect_matches(reg, "http://127.0.0.1:53127/callback"));
        assert!(redirect_matches("http://[::1]:80/cb", "http://[::1]:8080/cb"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:53127/other"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:1/callback?x=1"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:1/callback#frag"));
        // `localhost` is a name, not a loopback literal (RFC 8252 §8.3).
        assert!(!redirect_matches("http://localhost/cb", "http://localhost:9/cb"));
        // Non-loopback URIs must match exactly.
        assert!(!redirect_matches("https://app.example/cb", "https://app.example:444/cb"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example/cb/"));
        assert!(redirect_matches("https://app.example/cb", "https://app.example/cb"));
    }

    #[test]
    fn redirect_keeps_existing_query_and_encodes_values() {
        let u = redirect_with("https://a.example/cb?x=1", &[("code", "a b"), ("state", "s&t")]);
        assert_eq!(u, "https://a.example/cb?x=1&code=a+b&state=s%26t");
    }
}
