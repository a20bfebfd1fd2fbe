//! seqshield's front door: the OIDC token service and the token verifier.
//!
//! - [`jwt`]: compact RS256 JWS signing and verification (algorithm pinned,
//!   sizes bounded before parsing), access-token and ID-token claims.
//! - [`signing`]: the rotating RSA signing key ring, stored encrypted under a
//!   seqshield KEK (file or PKCS#11), and its JWKS.
//! - [`store`]: users, clients, codes, refresh-token families and revoked
//!   token ids in SQLite.
//! - [`password`], [`totp`], [`throttle`]: argon2id passwords, RFC 6238
//!   one-time codes with replay refusal, and brute-force slowing.
//! - [`policy`]: conditional access as data (TOML); every decision goes to an
//!   [`audit::AuditSink`].
//! - [`federation`]: trusted external issuers (e.g. Entra ID) whose tokens are
//!   exchanged for local ones.
//! - [`service`] and [`http`]: the OAuth 2.0 / OIDC endpoints as an axum
//!   router, and the [`http::Authenticated`] extractor every other route uses.

#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod config;
pub mod error;
pub mod federation;
pub mod http;
pub mod jwt;
pub mod password;
pub mod pkce;
pub mod policy;
pub mod scope;
pub mod service;
pub mod signing;
pub mod store;
pub mod throttle;
pub mod totp;

pub use clock::{Clock, ManualClock, SystemClock};
pub use scope::ScopeSet;
/// A token holder's data clearance: the most sensitive classification it may read.
pub use seqshield_format::Classification as Clearance;
