//! The access-token verifier every route uses: keys, expectations,
//! revocation and the clock in one place.

use std::fmt;
use std::sync::{Arc, RwLock};

use super::{verify, AccessClaims, JwtError, KeySet, Validation, MAX_ACCESS_TOKEN_LIFETIME_SECS, TYP_ACCESS};
use crate::Clock;

/// Revoked token ids. Implementations answer from memory: this is asked on
/// every request.
pub trait RevocationList: Send + Sync {
    /// Whether the token with id `jti` has been revoked.
    fn is_revoked(&self, jti: &str) -> bool;
}

/// A revocation list that revokes nothing (for tools and tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl RevocationList for NoRevocations {
    fn is_revoked(&self, _jti: &str) -> bool {
        false
    }
}

/// Verifies access tokens (RFC 9068) against a shared, replaceable key set.
pub struct Verifier {
    keys: Arc<RwLock<KeySet>>,
    validation: Validation,
    revoked: Arc<dyn RevocationList>,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// A verifier. `validation`'s `typ` is replaced by [`TYP_ACCESS`]: this
    /// verifier accepts access tokens only, never ID tokens.
    pub fn new(
        keys: Arc<RwLock<KeySet>>,
        validation: Validation,
        revoked: Arc<dyn RevocationList>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { keys, validation: Validation { typ: Some(TYP_ACCESS), ..validation }, revoked, clock }
    }

    /// The shared key set (write to it to rotate keys in).
    pub fn keys(&self) -> &Arc<RwLock<KeySet>> {
        &self.keys
    }

    /// What tokens must say.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Verifies an access token: everything [`verify`] checks with `typ`
    /// `at+jwt`, then a non-empty `jti`, a lifetime (`exp - iat`) of at
    /// most [`MAX_ACCESS_TOKEN_LIFETIME_SECS`], and that `jti` is not
    /// revoked.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, JwtError> {
        let now = self.clock.now();
        let claims: AccessClaims = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            verify(token, &keys, &self.validation, now)?
        };
        if claims.jti.is_empty() {
            return Err(JwtError::BadClaims { reason: "empty jti" });
        }
        if claims.exp.saturating_sub(claims.iat) > MAX_ACCESS_TOKEN_LIFETIME_SECS {
            return Err(JwtError::BadClaims { reason: "lifetime longer than allowed" });
        }
        if self.revoked.is_revoked(&claims.jti) {
            return Err(JwtError::Revoked);
        }
        Ok(claims)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("validation", &self.validation).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::testkit::*;
    use super::*;
    use crate::ManualClock;

    struct Revoked(HashSet<String>);

    impl RevocationList for Revoked {
        fn is_revoked(&self, jti: &str) -> bool {
            self.0.contains(jti)
        }
    }

    fn verifier(revoked: &[&str]) -> Verifier {
        Verifier::new(
            Arc::new(RwLock::new(keyset())),
            Validation::new(ISS, AUD),
            Arc::new(Revoked(revoked.iter().map(|s| s.to_string()).collect())),
            Arc::new(ManualClock::new(NOW)),
        )
    }

    #[test]
    fn accepts_a_good_access_token() {
        let c = access_claims();
        assert_eq!(verifier(&[]).verify_access(&access_token(&c)), Ok(c));
    }

    #[test]
    fn revoked_jti_is_refused() {
        // Logout and refresh-token reuse revoke access tokens by jti.
        let c = access_claims();
        assert_eq!(verifier(&[c.jti.as_str()]).verify_access(&access_token(&c)), Err(JwtError::Revoked));
    }

    #[test]
    fn typ_is_forced_to_at_jwt() {
        // A Validation without typ must not let ID tokens through.
        let v = verifier(&[]);
        assert_eq!(v.validation().typ, Some(TYP_ACCESS));
        let (k, kid) = &keys()[0];
        let id_typed = super::super::sign(k, kid, super::super::TYP_ID, &access_claims()).unwrap();
        assert_eq!(v.verify_access(&id_typed), Err(JwtError::BadTyp));
    }

    #[test]
    fn overlong_lifetime_and_empty_jti_are_refused() {
        let mut c = access_claims();
        c.exp = c.iat + MAX_ACCESS_TOKEN_LIFETIME_SECS + 1;
        assert_eq!(verifier(&[]).verify_access(&access_token(&c)).err().map(|e| e.code()), Some("bad_claims"));
        let mut c = access_claims();
        c.jti.clear();
        assert_eq!(verifier(&[]).verify_access(&access_token(&c)).err().map(|e| e.code()), Some("bad_claims"));
    }

    #[test]
    fn key_set_can_be_swapped_in_place() {
        let v = verifier(&[]);
        let t = access_token(&access_claims());
        *v.keys().write().unwrap() = KeySet::new();
        assert_eq!(v.verify_access(&t).err().map(|e| e.code()), Some("unknown_kid"));
    }
}
