//! Why a token was refused, or could not be made.

/// Why a token was refused (or, for [`crate::signing::KeyRing::sign`],
/// could not be produced).
///
/// Display and Debug never contain token text: the only attacker-chosen
/// value carried is the `kid` of [`JwtError::UnknownKid`], which is bounded
/// by [`super::MAX_KID_LEN`] and shown escaped. Map a variant to an HTTP error body
/// with [`JwtError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is longer than [`super::MAX_TOKEN_BYTES`] (or a part of it longer
    /// than its own bound); refused before any parsing.
    #[error("token too large: {len} bytes (at most {max})")]
    TooLarge {
        /// Bytes in the token or part.
        len: usize,
        /// The bound it exceeds.
        max: usize,
    },
    /// Not a compact JWS (RFC 7515 §7.1): wrong number of parts, bad
    /// base64url, header JSON that does not parse, no `kid`…
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong, in fixed words.
        reason: &'static str,
    },
    /// `alg` is not exactly `RS256` (`none`, `HS256`, anything else).
    #[error("token algorithm is not RS256")]
    BadAlgorithm,
    /// The header carries a parameter we never honour (RFC 8725 §3.10:
    /// keys and key URLs supplied by the token itself).
    #[error("token header carries the forbidden parameter {name:?}")]
    ForbiddenHeader {
        /// The parameter name (one of [`super::FORBIDDEN_HEADERS`]).
        name: &'static str,
    },
    /// The `kid` is not in the key set.
    #[error("token signed with unknown key id {kid:?}")]
    UnknownKid {
        /// The key id from the token header (at most [`super::MAX_KID_LEN`] bytes).
        kid: String,
    },
    /// The RS256 signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// The `typ` header is missing or not the expected one (RFC 8725 §3.11).
    #[error("token type (typ header) is not the expected one")]
    BadTyp,
    /// `iss` is missing or not the expected issuer.
    #[error("token issuer is not the expected one")]
    WrongIssuer,
    /// `aud` is missing or does not name the expected audience.
    #[error("token audience is not the expected one")]
    WrongAudience,
    /// `exp` has passed (beyond the allowed clock skew).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the allowed clock skew).
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// The token's `jti` has been revoked.
    #[error("token has been revoked")]
    Revoked,
    /// The claims do not have the expected shape or values.
    #[error("token claims are invalid: {reason}")]
    BadClaims {
        /// What is wrong, in fixed words.
        reason: &'static str,
    },
    /// A JWKS document could not be used.
    #[error("unusable JWKS: {reason}")]
    BadJwks {
        /// What is wrong, in fixed words.
        reason: &'static str,
    },
    /// A public key is not an RSA key we accept (e.g. shorter than 2048 bits).
    #[error("unusable RSA public key: {reason}")]
    BadKey {
        /// What is wrong, in fixed words.
        reason: &'static str,
    },
    /// Making a token failed: claims that do not serialise, or the signer.
    #[error("could not sign a token: {reason}")]
    Sign {
        /// What failed, in fixed words.
        reason: &'static str,
    },
}

impl JwtError {
    /// A stable, machine-readable code for the error (for JSON error bodies,
    /// audit events and metrics). Codes never change meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::BadAlgorithm => "bad_algorithm",
            Self::ForbiddenHeader { .. } => "forbidden_header",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::BadTyp => "bad_typ",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::Revoked => "revoked",
            Self::BadClaims { .. } => "bad_claims",
            Self::BadJwks { .. } => "bad_jwks",
            Self::BadKey { .. } => "bad_key",
            Self::Sign { .. } => "sign_failed",
        }
    }

    pub(super) fn malformed(reason: &'static str) -> Self {
        Self::Malformed { reason }
    }

    pub(super) fn too_large(len: usize, max: usize) -> Self {
        Self::TooLarge { len, max }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let all = [
            JwtError::too_large(1, 0),
            JwtError::malformed("x"),
            JwtError::BadAlgorithm,
            JwtError::ForbiddenHeader { name: "jwk" },
            JwtError::UnknownKid { kid: "k".into() },
            JwtError::BadSignature,
            JwtError::BadTyp,
            JwtError::WrongIssuer,
            JwtError::WrongAudience,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::IssuedInFuture,
            JwtError::Revoked,
            JwtError::BadClaims { reason: "x" },
            JwtError::BadJwks { reason: "x" },
            JwtError::BadKey { reason: "x" },
            JwtError::Sign { reason: "x" },
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(JwtError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(JwtError::Expired.code(), "expired");
        assert_eq!(JwtError::BadAlgorithm.code(), "bad_algorithm");
    }

    #[test]
    fn unknown_kid_display_escapes_the_kid() {
        // The kid is attacker-chosen: it must not inject lines into logs.
        let e = JwtError::UnknownKid { kid: "a\nb".into() };
        assert!(!e.to_string().contains('\n'));
    }
}
