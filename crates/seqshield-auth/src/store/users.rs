//! Login accounts.

use std::fmt;

use rusqlite::{params, OptionalExtension};

use super::{to_i64, validate_name, Store, StoreError};
use crate::totp::TotpSecret;
use crate::{Clearance, ScopeSet};

/// A user to add.
#[derive(Clone)]
pub struct NewUser {
    /// Login name ([`validate_name`]).
    pub name: String,
    /// argon2id PHC string from [`crate::password::hash_password`].
    pub password_hash: String,
    /// The TOTP secret, unconfirmed until the first good code.
    pub totp_secret: TotpSecret,
    /// The most the user's tokens may carry.
    pub scopes: ScopeSet,
    /// The most sensitive data the user may reach.
    pub clearance: Clearance,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("totp_secret", &self.totp_secret)
            .field("scopes", &self.scopes)
            .field("clearance", &self.clearance)
            .finish()
    }
}

/// A stored user. `Debug` shows neither the password hash nor the TOTP secret.
#[derive(Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The TOTP secret.
    pub totp_secret: TotpSecret,
    /// Whether a code from the secret has been accepted once.
    pub totp_confirmed: bool,
    /// The most the user's tokens may carry.
    pub scopes: ScopeSet,
    /// The most sensitive data the user may reach.
    pub clearance: Clearance,
    /// A disabled user cannot log in.
    pub disabled: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("totp_secret", &self.totp_secret)
            .field("totp_confirmed", &self.totp_confirmed)
            .field("scopes", &self.scopes)
            .field("clearance", &self.clearance)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// What `seqshield user list` shows: no secrets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// The most the user's tokens may carry.
    pub scopes: ScopeSet,
    /// The most sensitive data the user may reach.
    pub clearance: Clearance,
    /// Whether the authenticator has been confirmed.
    pub totp_confirmed: bool,
    /// Whether the account is disabled.
    pub disabled: bool,
}

impl Store {
    /// Adds a user; [`StoreError::Exists`] if the name is taken.
    pub fn add_user(&self, u: &NewUser) -> Result<(), StoreError> {
        validate_name(&u.name)?;
        let n = self
            .conn()
            .execute(
                "INSERT INTO users (name, password_hash, totp_secret, scopes, clearance)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                params![
                    u.name,
                    u.password_hash,
                    u.totp_secret.expose_bytes(),
                    u.scopes.to_string(),
                    u.clearance.as_str()
                ],
            )
            .map_err(self.sql())?;
        if n == 0 {
            return Err(StoreError::Exists);
        }
        Ok(())
    }

    /// The user called `name`, if any.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        type Row = (String, String, Vec<u8>, bool, String, String, bool);
        let row: Option<Row> = self
            .conn()
            .query_row(
                "SELECT name, password_hash, totp_secret, totp_confirmed, scopes, clearance, disabled
                 FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()
            .map_err(self.sql())?;
        let Some((name, password_hash, secret, totp_confirmed, scopes, clearance, disabled)) = row else {
            return Ok(None);
        };
        let secret = zeroize::Zeroizing::new(secret);
        Ok(Some(User {
            name,
            password_hash,
            totp_secret: TotpSecret::from_bytes(&secret).map_err(|_| self.corrupt("TOTP secret"))?,
            totp_confirmed,
            scopes: ScopeSet::parse(&scopes).map_err(|_| self.corrupt("scope set"))?,
            clearance: clearance.parse().map_err(|_| self.corrupt("clearance"))?,
            disabled,
        }))
    }

    /// All users, by name, without secrets.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, scopes, clearance, totp_confirmed, disabled FROM users ORDER BY name")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, scopes, clearance, totp_confirmed, disabled) = row.map_err(self.sql())?;
            out.push(UserInfo {
                name,
                scopes: ScopeSet::parse(&scopes).map_err(|_| self.corrupt("scope set"))?,
                clearance: clearance.parse().map_err(|_| self.corrupt("clearance"))?,
                totp_confirmed,
                disabled,
            });
        }
        Ok(out)
    }

    /// Marks the user's authenticator as confirmed.
    pub fn confirm_totp(&self, name: &str) -> Result<(), StoreError> {
        let n =
            self.conn().execute("UPDATE users SET totp_confirmed = 1 WHERE name = ?1", [name]).map_err(self.sql())?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Enables or disables the user.
    pub fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute("UPDATE users SET disabled = ?2 WHERE name = ?1", params![name, disabled])
            .map_err(self.sql())?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records that the TOTP code for `step` was used. True only if `step`
    /// is later than every step used before (one atomic statement), so a
    /// code — or an older one from the drift window — is accepted once
    /// (RFC 6238 §5.2). False for an unknown user.
    pub fn use_totp_step(&self, name: &str, step: u64) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE users SET totp_last_step = ?2
                 WHERE name = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![name, to_i64(step)],
            )
            .map_err(self.sql())?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::store;
    use super::*;
    use crate::totp;

    fn alice() -> NewUser {
        NewUser {
            name: "alice".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            totp_secret: TotpSecret::from_bytes(b"12345678901234567890").unwrap(),
            scopes: ScopeSet::parse("openid data:read").unwrap(),
            clearance: Clearance::Restricted,
        }
    }

    #[test]
    fn add_and_read_back() {
        let (_d, s) = store();
        s.add_user(&alice()).unwrap();
        let u = s.user("alice").unwrap().unwrap();
        assert_eq!(u.password_hash, alice().password_hash);
        assert_eq!(u.totp_secret, alice().totp_secret);
        assert_eq!(u.scopes.to_string(), "data:read openid");
        assert_eq!(u.clearance, Clearance::Restricted);
        assert!(!u.totp_confirmed && !u.disabled);
        assert!(s.user("bob").unwrap().is_none());
        s.confirm_totp("alice").unwrap();
        s.set_user_disabled("alice", true).unwrap();
        let u = s.user("alice").unwrap().unwrap();
        assert!(u.totp_confirmed && u.disabled);
        assert!(matches!(s.confirm_totp("bob"), Err(StoreError::NotFound)));
        let list = s.list_users().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "alice");
    }

    #[test]
    fn names_are_unique_and_checked() {
        let (_d, s) = store();
        s.add_user(&alice()).unwrap();
        assert!(matches!(s.add_user(&alice()), Err(StoreError::Exists)));
        let bad = NewUser { name: "al ice".into(), ..alice() };
        assert!(matches!(s.add_user(&bad), Err(StoreError::BadName)));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let (_d, s) = store();
        s.add_user(&alice()).unwrap();
        let u = s.user("alice").unwrap().unwrap();
        for text in [format!("{u:?}"), format!("{:?}", alice())] {
            assert!(!text.contains("argon2id"), "{text}");
            assert!(!text.contains("12345678901234567890") && !text.contains("49, 50, 51"), "{text}");
            assert!(text.contains("alice"));
        }
    }

    /// RFC 6238 §5.2: a verified code is accepted once; so is any code of an
    /// earlier step still inside the drift window.
    #[test]
    fn totp_steps_are_single_use() {
        let (_d, s) = store();
        s.add_user(&alice()).unwrap();
        let secret = alice().totp_secret;
        let now = 1_700_000_000;
        let code = totp::code_at(&secret, totp::step_at(now));
        let step = totp::verify(&secret, &code, now).unwrap();
        assert!(s.use_totp_step("alice", step).unwrap());
        // Replay of the same code, a moment later, still inside the window.
        let again = totp::verify(&secret, &code, now + 5).unwrap();
        assert!(!s.use_totp_step("alice", again).unwrap());
        assert!(!s.use_totp_step("alice", step - 1).unwrap(), "older step refused");
        assert!(s.use_totp_step("alice", step + 1).unwrap());
        assert!(!s.use_totp_step("nobody", step + 2).unwrap());
    }
}
