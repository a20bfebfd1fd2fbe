//! Authorization codes (RFC 6749 §4.1.2): single use, short-lived, stored
//! by SHA-256.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{to_i64, Store, StoreError};
use crate::{Clearance, ScopeSet};

/// What an authorization code stands for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeRecord {
    /// The client the code was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request (must match at the token endpoint).
    pub redirect_uri: String,
    /// The authenticated user.
    pub user: String,
    /// The granted scopes.
    pub scope: ScopeSet,
    /// The OIDC `nonce` of the request, if any.
    pub nonce: Option<String>,
    /// The PKCE S256 code challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// Authentication methods used (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: String,
    /// Clearance the tokens will carry.
    pub clearance: Clearance,
    /// Unix time after which the code is invalid.
    pub expires_at: u64,
}

/// The result of [`Store::take_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeTake {
    /// First use: here is what the code stands for.
    Fresh(CodeRecord),
    /// The code was used before. RFC 6749 §4.1.2: refuse, and revoke what
    /// the first use produced — the store has already revoked `family` (if
    /// one was linked with [`Store::set_code_family`]); it is returned for
    /// the audit log.
    Replayed {
        /// The refresh-token family the first use produced, if linked.
        family: Option<String>,
    },
    /// No such code, or it expired.
    Unknown,
}

impl Store {
    /// Stores a new code under its SHA-256 `hash`.
    pub fn put_code(&self, hash: [u8; 32], rec: &CodeRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(rec).expect("code records always serialise");
        self.conn()
            .execute(
                "INSERT INTO codes (hash, record, expires_at) VALUES (?1, ?2, ?3)",
                params![&hash[..], json, to_i64(rec.expires_at)],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Redeems a code, atomically: the first call gets
    /// [`CodeTake::Fresh`], every later call before expiry
    /// [`CodeTake::Replayed`] (and the linked family is revoked).
    pub fn take_code(&self, hash: [u8; 32], now: u64) -> Result<CodeTake, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        let row: Option<(Option<String>, Option<String>, i64)> = tx
            .query_row("SELECT record, family, expires_at FROM codes WHERE hash = ?1", [&hash[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(self.sql())?;
        let Some((record, family, expires_at)) = row else { return Ok(CodeTake::Unknown) };
        if expires_at <= to_i64(now) {
            return Ok(CodeTake::Unknown);
        }
        let Some(json) = record else {
            if let Some(f) = &family {
                let jtis = self.revoke_family_in(&tx, f, now)?;
                self.mark_revoked(jtis);
            }
            tx.commit().map_err(self.sql())?;
            return Ok(CodeTake::Replayed { family });
        };
        let rec: CodeRecord = serde_json::from_str(&json).map_err(|_| self.corrupt("authorization code record"))?;
        tx.execute("UPDATE codes SET record = NULL WHERE hash = ?1", [&hash[..]]).map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(CodeTake::Fresh(rec))
    }

    /// Links a redeemed code to the refresh-token family it produced, so a
    /// replay of the code revokes that family.
    pub fn set_code_family(&self, hash: [u8; 32], family: &str) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute("UPDATE codes SET family = ?2 WHERE hash = ?1", params![&hash[..], family])
            .map_err(self.sql())?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::super::test_support::store;
    use super::super::{token_hash, RefreshRecord, RefreshUse, DB_FILE};
    use super::*;

    fn code(expires_at: u64) -> CodeRecord {
        CodeRecord {
            client_id: "portal".into(),
            redirect_uri: "https://portal.example.org/cb".into(),
            user: "alice".into(),
            scope: ScopeSet::parse("openid data:read").unwrap(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            auth_time: 900,
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            acr: "urn:seqshield:aal2".into(),
            clearance: Clearance::Controlled,
            expires_at,
        }
    }

    #[test]
    fn codes_are_single_use() {
        let (_d, s) = store();
        let h = token_hash("code-1");
        s.put_code(h, &code(1_060)).unwrap();
        assert_eq!(s.take_code(h, 1_000).unwrap(), CodeTake::Fresh(code(1_060)));
        assert_eq!(s.take_code(h, 1_001).unwrap(), CodeTake::Replayed { family: None });
        assert_eq!(s.take_code(token_hash("code-2"), 1_000).unwrap(), CodeTake::Unknown);
    }

    #[test]
    fn only_hashes_are_stored() {
        let (_d, s) = store();
        s.put_code(token_hash("the-secret-code"), &code(1_060)).unwrap();
        let raw: Vec<u8> = s.conn().query_row("SELECT hash FROM codes", [], |r| r.get(0)).unwrap();
        assert_eq!(raw, token_hash("the-secret-code"));
        let db = std::fs::read(s.path()).unwrap_or_default();
        let wal = std::fs::read(s.path().with_extension("db-wal")).unwrap_or_default();
        for bytes in [db, wal] {
            assert!(!bytes.windows(15).any(|w| w == b"the-secret-code"));
        }
    }

    #[test]
    fn expired_codes_are_unknown_and_pruned() {
        let (_d, s) = store();
        let h = token_hash("c");
        s.put_code(h, &code(1_060)).unwrap();
        assert_eq!(s.take_code(h, 1_060).unwrap(), CodeTake::Unknown);
        assert_eq!(s.prune(1_060).unwrap(), 1);
        let n: i64 = s.conn().query_row("SELECT count(*) FROM codes", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    /// RFC 6749 §4.1.2: replaying a code revokes the tokens its first use produced.
    #[test]
    fn replay_reports_and_revokes_the_family() {
        let (_d, s) = store();
        let h = token_hash("code");
        s.put_code(h, &code(1_060)).unwrap();
        let CodeTake::Fresh(rec) = s.take_code(h, 1_000).unwrap() else { panic!() };
        let refresh = RefreshRecord {
            family: "fam-1".into(),
            user: rec.user.clone(),
            client_id: rec.client_id.clone(),
            scope: rec.scope.clone(),
            clearance: rec.clearance,
            amr: rec.amr.clone(),
            acr: rec.acr.clone(),
            audience: "seqshield".into(),
            auth_time: rec.auth_time,
            expires_at: 90_000,
        };
        s.put_refresh(token_hash("rt-1"), &refresh).unwrap();
        s.record_issued("jti-1", Some("fam-1"), 4_600).unwrap();
        s.set_code_family(h, "fam-1").unwrap();
        assert!(!s.is_revoked("jti-1"));
        assert_eq!(s.take_code(h, 1_010).unwrap(), CodeTake::Replayed { family: Some("fam-1".into()) });
        assert!(s.is_revoked("jti-1"));
        assert_eq!(s.use_refresh(token_hash("rt-1"), 1_020).unwrap(), RefreshUse::Revoked);
        assert!(matches!(s.set_code_family(token_hash("nope"), "f"), Err(StoreError::NotFound)));
    }

    /// Two redeemers racing for one code: exactly one wins, through one
    /// connection and through two.
    #[test]
    fn concurrent_takes_give_exactly_one_fresh() {
        let (dir, s) = store();
        let s = Arc::new(s);
        let other = Arc::new(Store::open(&dir.path().join("data").join(DB_FILE)).unwrap());
        for round in 0..20u32 {
            let h = token_hash(&format!("code-{round}"));
            s.put_code(h, &code(1_060)).unwrap();
            let barrier = Arc::new(Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let st = if i % 2 == 0 { Arc::clone(&s) } else { Arc::clone(&other) };
                    let b = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        b.wait();
                        st.take_code(h, 1_000).unwrap()
                    })
                })
                .collect();
            let results: Vec<CodeTake> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let fresh = results.iter().filter(|r| matches!(r, CodeTake::Fresh(_))).count();
            let replayed = results.iter().filter(|r| matches!(r, CodeTake::Replayed { .. })).count();
            assert_eq!((fresh, replayed), (1, 3), "round {round}: {results:?}");
        }
    }
}
