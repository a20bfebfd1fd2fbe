//! The token service over HTTP (axum), and the [`Authenticated`] extractor
//! every protected route uses.
//!
//! Routes: OIDC discovery, JWKS, `/authorize` (+ the two login steps),
//! `/token`, `/userinfo`, `/revoke` (RFC 7009). Every failure is an RFC 6749
//! §5.2 / RFC 6750 §3.1 JSON error, or for the browser-facing login, an
//! error page; never a stack trace.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use zeroize::Zeroizing;

use crate::error::{ErrorCode, OAuthError};
use crate::jwt::{self, AccessClaims};
use crate::service::authorize::{AuthorizeFailure, AuthorizeParams, LoginStep};
use crate::service::token::{BasicAuth, TokenParams};
use crate::service::{AuthService, Origin};
use crate::Clearance;

pub mod pages;

/// The cookie that binds a login to the browser that started it.
pub const LOGIN_COOKIE: &str = "__Host-seqshield-login";
/// Longest `Authorization` header value accepted, checked before parsing.
pub const MAX_AUTHORIZATION_HEADER_BYTES: usize = jwt::MAX_TOKEN_BYTES + 16;

/// The token service's routes, with the service attached for
/// [`Authenticated`].
pub fn router(svc: Arc<AuthService>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/authorize/password", post(login_password))
        .route("/authorize/totp", post(login_totp))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/revoke", post(revoke))
        .merge(whoami_route())
        .layer(Extension(svc))
}

/// `GET /api/v1/whoami`: the verified claims of the caller's token; a
/// protected route for clients and tests. Needs the service as an
/// `Extension` (as [`router`] adds).
pub fn whoami_route() -> Router {
    Router::new().route("/api/v1/whoami", get(whoami))
}

/// The source address of a request, when the server provides it.
pub fn origin(parts_ext: &axum::http::Extensions) -> Origin {
    Origin { ip: parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) }
}

/// The caller's verified access token (RS256, our issuer and audience,
/// not expired, not revoked). Rejects with RFC 6750 `invalid_token`.
#[derive(Clone, Debug)]
pub struct Authenticated(pub AccessClaims);

impl Authenticated {
    /// The claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.0
    }

    /// Refuses with `insufficient_scope` unless the token has `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), OAuthError> {
        if self.0.scope.contains(scope) {
            Ok(())
        } else {
            Err(OAuthError::new(ErrorCode::InsufficientScope, "the token lacks the scope this route needs"))
        }
    }

    /// Refuses with `insufficient_scope` unless the token's clearance is at
    /// least `needed`.
    pub fn require_clearance(&self, needed: Clearance) -> Result<(), OAuthError> {
        if self.0.clearance >= needed {
            Ok(())
        } else {
            Err(OAuthError::new(
                ErrorCode::InsufficientScope,
                "the token's clearance is below the data's classification",
            ))
        }
    }
}

fn token_error(e: &jwt::JwtError) -> OAuthError {
    let d = match e.code() {
        "expired" => "the access token has expired",
        "revoked" => "the access token was revoked",
        "not_yet_valid" => "the access token is not valid yet",
        "too_large" => "the access token is too large",
        "wrong_audience" => "the access token is for another audience",
        _ => "the access token is invalid",
    };
    OAuthError::new(ErrorCode::InvalidToken, d)
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, OAuthError> {
        let svc = parts.extensions.get::<Arc<AuthService>>().cloned().ok_or_else(OAuthError::server_error)?;
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(OAuthError::new(ErrorCode::InvalidToken, "exactly one Bearer token is required"));
        };
        if value.len() > MAX_AUTHORIZATION_HEADER_BYTES {
            return Err(OAuthError::new(ErrorCode::InvalidToken, "the access token is too large"));
        }
        let value =
            value.to_str().map_err(|_| OAuthError::new(ErrorCode::InvalidToken, "malformed Authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Err(OAuthError::new(ErrorCode::InvalidToken, "the Authorization scheme must be Bearer")),
        };
        svc.verify_access(token).map(Authenticated).map_err(|e| token_error(&e))
    }
}

async fn discovery(Extension(svc): Extension<Arc<AuthService>>) -> Response {
    let e = |p: &str| svc.endpoint(p);
    let scopes: std::collections::BTreeSet<&str> =
        svc.policy().audiences().iter().flat_map(|a| a.scopes.iter()).chain(["openid"]).collect();
    let doc = serde_json::json!({
        "issuer": svc.config().issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "jwks_uri": e("/jwks"),
        "userinfo_endpoint": e("/userinfo"),
        "revocation_endpoint": e("/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "amr", "acr", "clearance", "client_id", "act", "auth_time", "nonce"],
        "acr_values_supported": [crate::service::authorize::ACR_MFA, crate::service::token::ACR_CLIENT, crate::service::exchange::ACR_FEDERATED],
        "authorization_response_iss_parameter_supported": true,
        "require_pushed_authorization_requests": false,
    });
    public_json(doc)
}

fn public_json(v: serde_json::Value) -> Response {
    let mut r = Json(v).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}

async fn jwks(Extension(svc): Extension<Arc<AuthService>>) -> Response {
    public_json(svc.jwks())
}

fn login_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        crate::service::PENDING_LOGIN_TTL_SECS
    ))
    .expect("login ids are base64url")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn authorize(
    Extension(svc): Extension<Arc<AuthService>>,
    parts: axum::http::Extensions,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the authorization request is malformed (a parameter may be repeated)",
        );
    };
    match svc.start_authorization(&params, origin(&parts)) {
        Ok(id) => {
            let client = svc.pending_client(&id).unwrap_or_default();
            let mut resp = pages::password_form(StatusCode::OK, &id, &client, None);
            resp.headers_mut().insert(header::SET_COOKIE, login_cookie(&id));
            resp
        }
        Err(AuthorizeFailure::Page(e)) => pages::error_page(StatusCode::BAD_REQUEST, e.code.as_str(), e.description),
        Err(AuthorizeFailure::Redirect(url)) => Redirect::to(&url).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    login: String,
    username: String,
    password: Zeroizing<String>,
}

#[derive(serde::Deserialize)]
struct TotpForm {
    login: String,
    code: String,
}

fn bad_form() -> Response {
    pages::error_page(StatusCode::BAD_REQUEST, "invalid_request", "the form is malformed")
}

/// The login id, if the cookie set by `/authorize` matches the form.
fn bound_login<'a>(headers: &HeaderMap, form_login: &'a str) -> Option<&'a str> {
    let cookie = cookie_value(headers, LOGIN_COOKIE)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form_login.as_bytes())
        .ok()
        .map(|()| form_login)
}

/// The page for a login form posted without its cookie.
fn other_browser() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "this sign-in was started in another browser; start again",
    )
}

fn render(svc: &AuthService, step: LoginStep) -> Response {
    match step {
        LoginStep::Password { pending, message, status } => {
            let client = svc.pending_client(&pending).unwrap_or_default();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
            pages::password_form(status, &pending, &client, Some(message))
        }
        LoginStep::Totp { pending, message } => pages::totp_form(&pending, message),
        LoginStep::Enroll { pending, uri, qr_svg, message } => pages::enroll_form(&pending, &uri, &qr_svg, message),
        LoginStep::Redirect(url) => {
            let mut r = Redirect::to(&url).into_response();
            // The login is over: drop its cookie.
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static("__Host-seqshield-login=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
            );
            r
        }
        LoginStep::Failed(e) => pages::error_page(StatusCode::BAD_REQUEST, e.code.as_str(), e.description),
    }
}

async fn login_password(
    Extension(svc): Extension<Arc<AuthService>>,
    parts: axum::http::Extensions,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else { return bad_form() };
    let Some(login) = bound_login(&headers, &f.login) else { return other_browser() };
    let step = svc.login_password(login, &f.username, f.password, origin(&parts)).await;
    render(&svc, step)
}

async fn login_totp(
    Extension(svc): Extension<Arc<AuthService>>,
    parts: axum::http::Extensions,
    headers: HeaderMap,
    form: Result<Form<TotpForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else { return bad_form() };
    let Some(login) = bound_login(&headers, &f.login) else { return other_browser() };
    let step = svc.login_totp(login, &f.code, origin(&parts));
    render(&svc, step)
}

fn basic_from(headers: &HeaderMap) -> Result<Option<BasicAuth>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) if v.len() <= MAX_AUTHORIZATION_HEADER_BYTES => {
            BasicAuth::parse(v.to_str().map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?)
        }
        _ => Err(OAuthError::invalid_request("malformed Authorization header")),
    }
}

async fn token(
    Extension(svc): Extension<Arc<AuthService>>,
    parts: axum::http::Extensions,
    headers: HeaderMap,
    form: Result<Form<TokenParams>, FormRejection>,
) -> Response {
    let Ok(Form(params)) = form else {
        return OAuthError::invalid_request(
            "the request must be application/x-www-form-urlencoded, each parameter at most once",
        )
        .into_response();
    };
    let basic = match basic_from(&headers) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match svc.token(params, basic, origin(&parts)).await {
        Ok(resp) => {
            let mut r = Json(resp).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn userinfo(auth: Result<Authenticated, OAuthError>) -> Response {
    let a = match auth {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = a.require_scope("openid") {
        return e.into_response();
    }
    let c = a.claims();
    Json(serde_json::json!({
        "sub": c.sub,
        "preferred_username": c.sub,
        "clearance": c.clearance,
        "scope": c.scope,
        "amr": c.amr,
        "acr": c.acr,
    }))
    .into_response()
}

async fn whoami(auth: Result<Authenticated, OAuthError>) -> Response {
    match auth {
        Ok(a) => Json(a.0).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    #[serde(flatten)]
    client: TokenParams,
}

/// RFC 7009: revoke a refresh token (its whole family) or an access token
/// (its `jti`). Answers 200 for unknown tokens too (§2.2).
async fn revoke(
    Extension(svc): Extension<Arc<AuthService>>,
    parts: axum::http::Extensions,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return OAuthError::invalid_request("the request must be a form, each parameter at most once").into_response();
    };
    let basic = match basic_from(&headers) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(token) = f.token else { return OAuthError::invalid_request("token is required").into_response() };
    let _ = f.token_type_hint;
    match svc.revoke(&token, &f.client, basic, origin(&parts)).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}
