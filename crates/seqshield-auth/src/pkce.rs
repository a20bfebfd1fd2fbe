//! Proof Key for Code Exchange (RFC 7636), S256 only.
//!
//! `plain` is refused: it protects nothing once the authorization request
//! leaks (RFC 9700 §2.1.1), and a missing challenge is refused too.

use aws_lc_rs::{constant_time, digest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Shortest code verifier (RFC 7636 §4.1).
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest code verifier (RFC 7636 §4.1).
pub const MAX_VERIFIER_LEN: usize = 128;
/// Length of an S256 challenge: base64url of 32 bytes, unpadded.
pub const CHALLENGE_LEN: usize = 43;

/// Why a PKCE parameter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// No `code_challenge` in the authorization request.
    #[error("code_challenge is required (PKCE)")]
    MissingChallenge,
    /// `code_challenge_method` is not `S256`.
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    /// The challenge is not 43 base64url characters.
    #[error("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")]
    MalformedChallenge,
    /// The verifier has the wrong length or characters (RFC 7636 §4.1).
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
    /// The verifier does not hash to the challenge.
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Checks an authorization request's `code_challenge` and
/// `code_challenge_method` (absent method means `plain`, so it is refused).
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<(), PkceError> {
    let challenge = challenge.filter(|c| !c.is_empty()).ok_or(PkceError::MissingChallenge)?;
    if method != Some("S256") {
        return Err(PkceError::UnsupportedMethod);
    }
    let well_formed = challenge.len() == CHALLENGE_LEN
        && URL_SAFE_NO_PAD.decode(challenge).is_ok_and(|d| d.len() == 32)
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(PkceError::MalformedChallenge);
    }
    Ok(())
}

/// The S256 challenge of `verifier`: `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Checks `verifier` against the stored S256 `challenge`, in constant time.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    let ok_chars = verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&verifier.len()) || !ok_chars {
        return Err(PkceError::MalformedVerifier);
    }
    constant_time::verify_slices_are_equal(s256(verifier).as_bytes(), challenge.as_bytes())
        .map_err(|_| PkceError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        assert_eq!(verify(VERIFIER, CHALLENGE), Ok(()));
        assert_eq!(check_challenge(Some(CHALLENGE), Some("S256")), Ok(()));
    }

    #[test]
    fn plain_and_missing_challenges_are_refused() {
        assert_eq!(check_challenge(Some(CHALLENGE), Some("plain")), Err(PkceError::UnsupportedMethod));
        // No method means plain (RFC 7636 §4.3).
        assert_eq!(check_challenge(Some(CHALLENGE), None), Err(PkceError::UnsupportedMethod));
        assert_eq!(check_challenge(None, Some("S256")), Err(PkceError::MissingChallenge));
        assert_eq!(check_challenge(Some(""), Some("S256")), Err(PkceError::MissingChallenge));
        assert_eq!(check_challenge(Some("short"), Some("S256")), Err(PkceError::MalformedChallenge));
    }

    #[test]
    fn wrong_or_malformed_verifiers_are_refused() {
        let other = "x".repeat(43);
        assert_eq!(verify(&other, CHALLENGE), Err(PkceError::Mismatch));
        assert_eq!(verify("short", CHALLENGE), Err(PkceError::MalformedVerifier));
        assert_eq!(verify(&"a".repeat(129), CHALLENGE), Err(PkceError::MalformedVerifier));
        assert_eq!(verify(&format!("{}!", &VERIFIER[1..]), CHALLENGE), Err(PkceError::MalformedVerifier));
        // A verifier equal to the challenge (the `plain` method) is a mismatch.
        assert_eq!(verify(CHALLENGE, CHALLENGE), Err(PkceError::Mismatch));
    }
}
