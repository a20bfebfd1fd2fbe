//! The privacy rule: events carry identifiers and decisions, never secrets
//! or genomic data.
//!
//! An audit log is kept for years and read by many people, so it must not
//! become a second copy of what it protects. Every string that enters an
//! [`Event`](crate::Event) passes [`check_value`] and every detail key
//! passes [`check_key`]; an event that fails is refused when it is built
//! (and the token-service mapping redacts the value instead, so the
//! decision itself is still recorded). Refused:
//!
//! - **tokens**: anything shaped like a compact JWS/JWE (three or more
//!   dot-separated base64url parts whose header starts `eyJ`, or whose first
//!   two parts are each at least 16 characters), `Bearer <token>`, and
//!   `Basic <base64 of user:password>`;
//! - **secret assignments**: `password=…`, `secret=…`, `token=…`, `pwd=…`,
//!   `passphrase=…`, `api_key=…` and their JSON form `"password":"…"`,
//!   anywhere in a value (an error message that echoes a query string);
//! - **key material**: PEM blocks (`-----BEGIN`);
//! - **sequence**: a run of [`MIN_SEQUENCE_RUN`] or more nucleotide letters
//!   (`ACGTUN`, either case);
//! - **secret-named details**: a detail key with a part (split at `_`) in
//!   [`SECRET_WORDS`], or equal to one of [`SECRET_KEYS`].
//!
//! What the rule cannot catch: a password typed where a user name belongs
//! looks like any other word. So no field of an event takes a credential,
//! callers pass ids (`jti`, token family, key id) instead of values, and a
//! login event's subject is the account the server resolved, not the raw
//! input. Error messages never echo the refused value, only the field name
//! and the [`Leak`] kind.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Shortest run of nucleotide letters treated as sequence data. English
/// words, hex digests and random base64 ids practically never contain 20
/// letters in a row from `ACGTUN`; a read fragment does.
pub const MIN_SEQUENCE_RUN: usize = 20;

/// Words that make a detail key secret when they are one of its
/// `_`-separated parts (`refresh_token`, `client_secret`, `totp`, `dna_seq`).
pub const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "otp",
    "totp",
    "pin",
    "cookie",
    "authorization",
    "bearer",
    "credential",
    "credentials",
    "private",
    "apikey",
    "sequence",
    "seq",
    "dna",
    "rna",
    "genotype",
    "genotypes",
];

/// Whole detail keys that name a secret although none of their parts is in
/// [`SECRET_WORDS`] (`code` alone is an OAuth authorization code; `error_code`
/// is fine).
pub const SECRET_KEYS: &[&str] =
    &["code", "auth_code", "authorization_code", "device_code", "code_verifier", "api_key"];

/// Words that, followed by `=` (or `":` in JSON), mean a secret follows.
const ASSIGNED_WORDS: &[&str] = &["password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "api_key"];

/// What a refused value looked like. Never carries the value itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leak {
    /// A compact JWS or JWE.
    Jwt,
    /// `Bearer <token>`.
    BearerCredential,
    /// `Basic <base64(user:password)>`.
    BasicCredential,
    /// `password=…` and the like.
    SecretAssignment,
    /// A PEM block.
    PemBlock,
    /// A run of nucleotide letters.
    Sequence,
    /// A detail key that names a secret.
    SecretName,
}

impl Leak {
    /// A stable lower-case name, used in redaction markers.
    pub fn as_str(self) -> &'static str {
        match self {
            Leak::Jwt => "jwt",
            Leak::BearerCredential => "bearer",
            Leak::BasicCredential => "basic",
            Leak::SecretAssignment => "secret",
            Leak::PemBlock => "pem",
            Leak::Sequence => "sequence",
            Leak::SecretName => "secret_name",
        }
    }
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Leak::Jwt => "looks like a JWT",
            Leak::BearerCredential => "looks like a bearer credential",
            Leak::BasicCredential => "looks like HTTP Basic credentials",
            Leak::SecretAssignment => "looks like a password or secret assignment",
            Leak::PemBlock => "looks like a PEM key or certificate",
            Leak::Sequence => "looks like nucleotide sequence",
            Leak::SecretName => "names a secret",
        })
    }
}

/// Checks a detail key's name against [`SECRET_WORDS`] and [`SECRET_KEYS`].
pub fn check_key(key: &str) -> Result<(), Leak> {
    let lower = key.to_ascii_lowercase();
    if SECRET_KEYS.contains(&lower.as_str()) || lower.split(['_', '.', '-']).any(|part| SECRET_WORDS.contains(&part)) {
        return Err(Leak::SecretName);
    }
    Ok(())
}

/// Checks a string value for tokens, secret assignments, key material and
/// sequence.
pub fn check_value(value: &str) -> Result<(), Leak> {
    if looks_like_jwt(value) {
        return Err(Leak::Jwt);
    }
    let lower = value.to_ascii_lowercase();
    if let Some(t) = token_after(&lower, value, "bearer") {
        if t.len() >= 8 && t.bytes().any(|b| b.is_ascii_digit() || b"-._~+/=".contains(&b)) {
            return Err(Leak::BearerCredential);
        }
    }
    if let Some(t) = token_after(&lower, value, "basic") {
        if STANDARD.decode(t).is_ok_and(|d| d.contains(&b':')) {
            return Err(Leak::BasicCredential);
        }
    }
    if has_assignment(&lower) {
        return Err(Leak::SecretAssignment);
    }
    if value.contains("-----BEGIN") {
        return Err(Leak::PemBlock);
    }
    if has_sequence_run(value) {
        return Err(Leak::Sequence);
    }
    Ok(())
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn looks_like_jwt(value: &str) -> bool {
    value.split(|c: char| !(c.is_ascii() && (is_b64url(c as u8) || c == '.'))).any(|run| {
        let mut parts = run.split('.');
        let (Some(p0), Some(p1), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        (p0.len() >= 4 && p0.starts_with("eyJ") && !p1.is_empty()) || (p0.len() >= 16 && p1.len() >= 16)
    })
}

/// The whitespace-delimited word after the first `word` followed by
/// whitespace, in the original case. `lower` is `value` lower-cased (ASCII,
/// so byte offsets agree).
fn token_after<'a>(lower: &str, value: &'a str, word: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = lower[from..].find(word) {
        let end = from + at + word.len();
        let rest = &value[end..];
        let trimmed = rest.trim_start();
        if trimmed.len() < rest.len() {
            return trimmed.split_whitespace().next();
        }
        from = end;
    }
    None
}

fn has_assignment(lower: &str) -> bool {
    ASSIGNED_WORDS.iter().any(|word| {
        lower.match_indices(word).any(|(at, w)| {
            let mut rest = &lower[at + w.len()..];
            let json = rest.starts_with('"');
            if json {
                rest = &rest[1..];
            }
            rest = rest.trim_start();
            let Some(after) = rest.strip_prefix(if json { ':' } else { '=' }) else {
                return false;
            };
            let after = after.trim_start();
            let after = if json { after.strip_prefix('"').unwrap_or(after) } else { after };
            after.chars().next().is_some_and(|c| !c.is_whitespace() && !matches!(c, '&' | ';' | ',' | '"' | '}'))
        })
    })
}

fn has_sequence_run(value: &str) -> bool {
    let mut run = 0;
    for b in value.bytes() {
        if matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T' | b'U' | b'N') {
            run += 1;
            if run >= MIN_SEQUENCE_RUN {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real-looking RS256 access token (header `{"alg":"RS256","kid":"k1","typ":"JWT"}`).
    const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImF1ZCI6ImdhdGV3YXkiLCJleHAiOjE3MDAwMDM2MDB9.c2lnbmF0dXJlLWJ5dGVzLW5vdC1yZWFsbHktYS1zaWduYXR1cmU";

    #[test]
    fn refused_values() {
        for (value, leak) in [
            (JWT, Leak::Jwt),
            (&format!("token was {JWT}.") as &str, Leak::Jwt),
            ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", Leak::Jwt),
            ("Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA", Leak::BearerCredential),
            ("Basic YWxpY2U6aHVudGVyMg==", Leak::BasicCredential),
            ("login failed: password=hunter2", Leak::SecretAssignment),
            ("GET /cb?client_secret = s3cr3t&x=1", Leak::SecretAssignment),
            (r#"{"refresh_token":"abc"}"#, Leak::SecretAssignment),
            ("-----BEGIN PRIVATE KEY-----", Leak::PemBlock),
            ("read ACGTACGTACGTACGTACGTNNAC failed", Leak::Sequence),
            ("acgtacgtacgtacgtacgtacgt", Leak::Sequence),
        ] {
            assert_eq!(check_value(value), Err(leak), "{value}");
        }
    }

    #[test]
    fn allowed_values() {
        // Why: the rule must not refuse the identifiers and words that audit
        // events are made of.
        for value in [
            "alice",
            "policy.decision",
            "password and TOTP verified",
            "pwd otp mfa",
            "refresh token reuse detected",
            "invalid token: signature",
            "basic authentication is disabled",
            "bearer token missing",
            "login.microsoftonline.com",
            "https://login.microsoftonline.com/tenant/v2.0",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "x3Jd9_kQ-2mZpL0aB7cYtE4fWvN1sH6uG8iO5rK",
            "10.0.0.1",
            "task:0f4c-aa21",
            "password=",
            "GATTACA",
            "data:read jobs:submit",
        ] {
            assert_eq!(check_value(value), Ok(()), "{value}");
        }
    }

    #[test]
    fn secret_named_keys() {
        for key in ["password", "user_password", "client_secret", "refresh_token", "totp", "code", "api_key", "dna_seq"]
        {
            assert_eq!(check_key(key), Err(Leak::SecretName), "{key}");
        }
        for key in ["jti", "subject_jti", "kid", "aud", "scope", "family", "error_code", "status_code", "amr"] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
    }
}
