//! Refresh-token families with rotation and reuse detection (RFC 9700
//! §4.14.2), and the issued / revoked access-token ids.
//!
//! Every refresh token belongs to a family started by one login. Each use
//! retires the token (the caller issues a successor in the same family); a
//! second use of a retired token means it was stolen, so the whole family
//! is revoked, together with every access token recorded for it.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::{to_i64, Store, StoreError};
use crate::{Clearance, ScopeSet};

/// What a refresh token stands for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshRecord {
    /// The family (one per login), an opaque random id.
    pub family: String,
    /// The user.
    pub user: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scopes (a refresh may narrow, never widen them).
    pub scope: ScopeSet,
    /// Clearance the access tokens carry.
    pub clearance: Clearance,
    /// Authentication methods of the original login (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class of the original login.
    pub acr: String,
    /// The audience of the access tokens.
    pub audience: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// Unix time after which the token is invalid.
    pub expires_at: u64,
}

/// The result of [`Store::use_refresh`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// First use: issue a successor in `record.family`.
    Fresh(RefreshRecord),
    /// The token was used before: the family has just been revoked
    /// (RFC 9700 §4.14.2). Refuse and audit.
    Reused {
        /// The revoked family.
        family: String,
    },
    /// The token's family was revoked earlier.
    Revoked,
    /// The token expired.
    Expired,
    /// No such token.
    Unknown,
}

impl Store {
    /// Stores a new refresh token under its SHA-256 `hash`. Refused with
    /// [`StoreError::FamilyRevoked`] if its family is revoked (a rotation
    /// racing a revocation loses).
    pub fn put_refresh(&self, hash: [u8; 32], rec: &RefreshRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(rec).expect("refresh records always serialise");
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        if family_revoked(&tx, &rec.family).map_err(self.sql())? {
            return Err(StoreError::FamilyRevoked);
        }
        tx.execute(
            "INSERT INTO refresh_tokens (hash, family, record, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![&hash[..], rec.family, json, to_i64(rec.expires_at)],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    /// Redeems a refresh token, atomically: single use; a second use
    /// revokes its family and every access token recorded for it.
    pub fn use_refresh(&self, hash: [u8; 32], now: u64) -> Result<RefreshUse, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        let row: Option<(String, String, bool, i64)> = tx
            .query_row(
                "SELECT family, record, used, expires_at FROM refresh_tokens WHERE hash = ?1",
                [&hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.sql())?;
        let Some((family, json, used, expires_at)) = row else { return Ok(RefreshUse::Unknown) };
        if family_revoked(&tx, &family).map_err(self.sql())? {
            return Ok(RefreshUse::Revoked);
        }
        if used {
            // Reuse, even of an expired token, is evidence of theft.
            let jtis = self.revoke_family_in(&tx, &family, now)?;
            self.mark_revoked(jtis);
            tx.commit().map_err(self.sql())?;
            return Ok(RefreshUse::Reused { family });
        }
        if expires_at <= to_i64(now) {
            return Ok(RefreshUse::Expired);
        }
        let rec: RefreshRecord = serde_json::from_str(&json).map_err(|_| self.corrupt("refresh token record"))?;
        tx.execute("UPDATE refresh_tokens SET used = 1 WHERE hash = ?1", [&hash[..]]).map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(RefreshUse::Fresh(rec))
    }

    /// The record of a live (unused, unexpired, unrevoked) refresh token,
    /// without using it; for revocation by its client (RFC 7009).
    pub fn refresh_record(&self, hash: [u8; 32], now: u64) -> Result<Option<RefreshRecord>, StoreError> {
        let conn = self.conn();
        let row: Option<(String, String, bool, i64)> = conn
            .query_row(
                "SELECT family, record, used, expires_at FROM refresh_tokens WHERE hash = ?1",
                [&hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.sql())?;
        let Some((_family, json, used, expires_at)) = row else { return Ok(None) };
        if used || expires_at <= to_i64(now) {
            return Ok(None);
        }
        let rec: RefreshRecord = serde_json::from_str(&json).map_err(|_| self.corrupt("refresh token record"))?;
        Ok(Some(rec))
    }

    /// Records an issued access token so that revoking `family` revokes it
    /// too. If the family is already revoked, the token is revoked at once.
    pub fn record_issued(&self, jti: &str, family: Option<&str>, exp: u64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        tx.execute(
            "INSERT INTO issued (jti, family, exp) VALUES (?1, ?2, ?3) ON CONFLICT (jti) DO NOTHING",
            params![jti, family, to_i64(exp)],
        )
        .map_err(self.sql())?;
        if let Some(f) = family {
            if family_revoked(&tx, f).map_err(self.sql())? {
                self.mark_revoked([jti.to_owned()]);
                tx.execute(
                    "INSERT INTO revoked_jtis (jti, exp) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                    params![jti, to_i64(exp)],
                )
                .map_err(self.sql())?;
            }
        }
        tx.commit().map_err(self.sql())
    }

    /// Revokes a family (logout, code replay, admin action): its refresh
    /// tokens stop working and its recorded access tokens are revoked.
    pub fn revoke_family(&self, family: &str, now: u64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        let jtis = self.revoke_family_in(&tx, family, now)?;
        self.mark_revoked(jtis);
        tx.commit().map_err(self.sql())
    }

    /// Revokes one access token until `exp` (plus the grace period).
    pub fn revoke_jti(&self, jti: &str, exp: u64) -> Result<(), StoreError> {
        // Memory first: if the write fails, the token is still refused here.
        self.mark_revoked([jti.to_owned()]);
        self.conn()
            .execute(
                "INSERT INTO revoked_jtis (jti, exp) VALUES (?1, ?2)
                 ON CONFLICT (jti) DO UPDATE SET exp = max(exp, excluded.exp)",
                params![jti, to_i64(exp)],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Whether `family` is revoked.
    pub fn family_revoked(&self, family: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        family_revoked(&conn, family).map_err(self.sql())
    }

    /// Inside `tx`: marks the family revoked and its access tokens revoked;
    /// returns their ids so the caller can add them to the in-memory set.
    pub(super) fn revoke_family_in(
        &self,
        tx: &Transaction<'_>,
        family: &str,
        now: u64,
    ) -> Result<Vec<String>, StoreError> {
        let now_i = to_i64(now);
        // Remember the revocation until every token of the family has expired.
        let last: i64 = tx
            .query_row(
                "SELECT max(?2, coalesce((SELECT max(expires_at) FROM refresh_tokens WHERE family = ?1), 0),
                                coalesce((SELECT max(exp) FROM issued WHERE family = ?1), 0))",
                params![family, now_i],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        tx.execute(
            "INSERT INTO revoked_families (family, revoked_at, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (family) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            params![family, now_i, last],
        )
        .map_err(self.sql())?;
        tx.execute(
            "INSERT INTO revoked_jtis (jti, exp) SELECT jti, exp FROM issued WHERE family = ?1
             ON CONFLICT (jti) DO NOTHING",
            [family],
        )
        .map_err(self.sql())?;
        let mut stmt = tx.prepare("SELECT jti FROM issued WHERE family = ?1").map_err(self.sql())?;
        let rows = stmt.query_map([family], |r| r.get(0)).map_err(self.sql())?;
        rows.collect::<Result<Vec<String>, _>>().map_err(self.sql())
    }
}

fn family_revoked(conn: &rusqlite::Connection, family: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM revoked_families WHERE family = ?1)", [family], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::store;
    use super::super::token_hash;
    use super::*;

    fn rt(family: &str, expires_at: u64) -> RefreshRecord {
        RefreshRecord {
            family: family.into(),
            user: "alice".into(),
            client_id: "portal".into(),
            scope: ScopeSet::parse("openid data:read").unwrap(),
            clearance: Clearance::Restricted,
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            acr: "urn:seqshield:aal2".into(),
            audience: "seqshield".into(),
            auth_time: 1_000,
            expires_at,
        }
    }

    #[test]
    fn rotation_is_single_use() {
        let (_d, s) = store();
        let (t1, t2) = (token_hash("rt-1"), token_hash("rt-2"));
        s.put_refresh(t1, &rt("f", 10_000)).unwrap();
        let RefreshUse::Fresh(rec) = s.use_refresh(t1, 2_000).unwrap() else { panic!() };
        assert_eq!(rec, rt("f", 10_000));
        // The successor works once.
        s.put_refresh(t2, &rt("f", 10_000)).unwrap();
        assert!(matches!(s.use_refresh(t2, 2_100).unwrap(), RefreshUse::Fresh(_)));
        assert_eq!(s.use_refresh(token_hash("never"), 2_100).unwrap(), RefreshUse::Unknown);
    }

    /// RFC 9700 §4.14.2: reuse of a rotated token revokes the whole family,
    /// its unused successor, and its access tokens.
    #[test]
    fn reuse_revokes_the_family_and_its_access_tokens() {
        let (_d, s) = store();
        let (t1, t2) = (token_hash("rt-1"), token_hash("rt-2"));
        s.put_refresh(t1, &rt("f", 10_000)).unwrap();
        s.record_issued("at-1", Some("f"), 3_000).unwrap();
        s.record_issued("other", Some("g"), 3_000).unwrap();
        s.record_issued("no-family", None, 3_000).unwrap();
        assert!(matches!(s.use_refresh(t1, 2_000).unwrap(), RefreshUse::Fresh(_)));
        s.put_refresh(t2, &rt("f", 10_000)).unwrap();
        s.record_issued("at-2", Some("f"), 5_600).unwrap();
        // The attacker replays rt-1.
        assert_eq!(s.use_refresh(t1, 2_500).unwrap(), RefreshUse::Reused { family: "f".into() });
        assert!(s.is_revoked("at-1") && s.is_revoked("at-2"));
        assert!(!s.is_revoked("other") && !s.is_revoked("no-family"));
        assert!(s.family_revoked("f").unwrap());
        // The legitimate successor is dead too, and so is any later one.
        assert_eq!(s.use_refresh(t2, 2_600).unwrap(), RefreshUse::Revoked);
        assert!(matches!(s.put_refresh(token_hash("rt-3"), &rt("f", 10_000)), Err(StoreError::FamilyRevoked)));
        // An access token recorded after the revocation is revoked at once.
        s.record_issued("at-late", Some("f"), 6_000).unwrap();
        assert!(s.is_revoked("at-late"));
    }

    #[test]
    fn revocations_survive_reopen() {
        let (dir, s) = store();
        s.put_refresh(token_hash("rt"), &rt("f", 10_000)).unwrap();
        s.record_issued("at", Some("f"), 3_000).unwrap();
        s.revoke_family("f", 2_000).unwrap();
        drop(s);
        let s = Store::open(&dir.path().join("data").join(super::super::DB_FILE)).unwrap();
        assert!(s.is_revoked("at"));
        assert_eq!(s.use_refresh(token_hash("rt"), 2_100).unwrap(), RefreshUse::Revoked);
    }

    #[test]
    fn expiry_and_prune() {
        let (_d, s) = store();
        let t = token_hash("rt");
        s.put_refresh(t, &rt("f", 10_000)).unwrap();
        assert_eq!(s.use_refresh(t, 10_000).unwrap(), RefreshUse::Expired);
        s.record_issued("at", Some("f"), 3_000).unwrap();
        s.revoke_family("f", 2_000).unwrap();
        // Nothing prunable yet.
        assert_eq!(s.prune(2_000).unwrap(), 0);
        assert!(s.is_revoked("at"));
        // After the access token (plus grace) and the refresh token expire,
        // everything goes, and the family record with them.
        let n = s.prune(10_000).unwrap();
        assert_eq!(n, 4, "refresh token, family, issued id, revoked id");
        assert!(!s.is_revoked("at"));
        assert!(!s.family_revoked("f").unwrap());
        assert_eq!(s.use_refresh(t, 10_001).unwrap(), RefreshUse::Unknown);
    }

    #[test]
    fn reuse_of_an_expired_rotated_token_still_revokes() {
        let (_d, s) = store();
        let t = token_hash("rt");
        s.put_refresh(t, &rt("f", 3_000)).unwrap();
        assert!(matches!(s.use_refresh(t, 2_000).unwrap(), RefreshUse::Fresh(_)));
        assert_eq!(s.use_refresh(t, 3_500).unwrap(), RefreshUse::Reused { family: "f".into() });
    }
}
