//! Errors: [`OAuthError`] is what a client sees (RFC 6749 §5.2, RFC 6750
//! §3.1, RFC 8693 §2.2.2, RFC 9470 §3), [`AuthError`] is why the service
//! could not start.
//!
//! An [`OAuthError`] has a stable `error` code and a fixed description; it
//! never carries a token, password, code or internal detail.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The `error` codes a client can receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6749 §5.2: missing, repeated or malformed parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed or unknown client.
    InvalidClient,
    /// RFC 6749 §5.2: bad, expired, revoked or replayed grant, or PKCE mismatch.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant.
    UnauthorizedClient,
    /// RFC 6749 §5.2: unknown grant type.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1: unknown response type.
    UnsupportedResponseType,
    /// RFC 6749 §5.2: scope unknown or wider than allowed.
    InvalidScope,
    /// RFC 8693 §2.2.2: the target audience is not acceptable.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: the policy or the user refused.
    AccessDenied,
    /// RFC 9470 §3: a stronger authentication (MFA) is required.
    InsufficientUserAuthentication,
    /// RFC 6750 §3.1: the bearer token is missing, malformed, expired or revoked.
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the scope or clearance.
    InsufficientScope,
    /// Too many attempts; retry later.
    SlowDown,
    /// Internal failure (storage, audit); details are only in the server log.
    ServerError,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::SlowDown => "slow_down",
            Self::ServerError => "server_error",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::InsufficientUserAuthentication => StatusCode::UNAUTHORIZED,
            Self::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// A fixed, human-readable description (never user input or secrets).
    pub description: &'static str,
    /// Seconds to wait, for [`ErrorCode::SlowDown`].
    pub retry_after: Option<u64>,
    /// Add `WWW-Authenticate: Basic` (client authentication by HTTP Basic failed).
    pub basic_challenge: bool,
}

impl OAuthError {
    /// An error with a code and fixed description.
    pub const fn new(code: ErrorCode, description: &'static str) -> Self {
        Self { code, description, retry_after: None, basic_challenge: false }
    }

    /// `invalid_request`.
    pub const fn invalid_request(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub const fn invalid_grant(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_client`.
    pub const fn invalid_client(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `server_error` (the cause goes to the server log, not the client).
    pub const fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "the server could not complete the request")
    }

    /// `slow_down` with a retry delay.
    pub const fn slow_down(secs: u64) -> Self {
        Self {
            code: ErrorCode::SlowDown,
            description: "too many attempts",
            retry_after: Some(secs),
            basic_challenge: false,
        }
    }

    /// The JSON body `{"error": …, "error_description": …}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (self.code.status(), axum::Json(self.body())).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match self.code {
            // RFC 6750 §3: bearer-token failures carry a challenge.
            ErrorCode::InvalidToken | ErrorCode::InsufficientScope | ErrorCode::InsufficientUserAuthentication => {
                let v = format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    self.code.as_str(),
                    self.description.replace('"', "'")
                );
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ErrorCode::InvalidClient if self.basic_challenge => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"seqshield\""));
            }
            _ => {}
        }
        resp
    }
}

/// Why the token service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A setting is out of bounds.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The signing keys could not be loaded or created.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// The policy file is invalid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// A federation setting is invalid.
    #[error(transparent)]
    Federation(#[from] crate::federation::FederationError),
}
