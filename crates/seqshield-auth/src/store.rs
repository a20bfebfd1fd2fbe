//! Persistent state of the token service in SQLite (`DATA/auth.db`):
//! users, clients, authorization codes, refresh-token families, and issued
//! and revoked access-token ids.
//!
//! - The file is created mode 0600 (its WAL and shared-memory files inherit
//!   that mode), journalled in WAL mode with `synchronous = FULL`, and with
//!   `secure_delete` so removed rows are overwritten.
//! - The schema version lives in `PRAGMA user_version`; a newer schema than
//!   this build knows is refused rather than guessed at.
//! - Codes and tokens are stored only as SHA-256 hashes ([`token_hash`]);
//!   passwords and client secrets only as argon2id PHC strings.
//! - Every change of more than one statement is one `BEGIN IMMEDIATE`
//!   transaction, so two processes (the server and `seqshield user add`)
//!   can share the file.
//! - Revoked access-token ids are held in memory (loaded at open, updated on
//!   every revocation) so checking a token costs no SQL
//!   ([`Store::is_revoked`]). Revocations made by another process are seen
//!   after [`Store::reload_revoked`].

mod clients;
mod codes;
mod schema;
mod tokens;
mod users;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use clients::{
    validate_redirect_uri, Client, ClientInfo, NewClient, MAX_JWKS_BYTES, MAX_REDIRECT_URIS, MAX_REDIRECT_URI_LEN,
};
pub use codes::{CodeRecord, CodeTake};
pub use tokens::{RefreshRecord, RefreshUse};
pub use users::{NewUser, User, UserInfo};

/// Longest user name or client id, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// How long a writer waits for another process's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Revoked token ids are kept this long past their expiry, covering the
/// verifiers' clock-skew leeway (the jwt module's `MAX_CLOCK_SKEW_SECS`).
pub const REVOCATION_GRACE_SECS: u64 = 60;
/// The database file name inside a data directory.
pub const DB_FILE: &str = "auth.db";

/// A store operation failed. Never carries a secret: no passwords, codes,
/// tokens or hashes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("auth database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer seqshield.
    #[error("auth database {path} has schema version {found}; this build knows up to {}", schema::VERSION)]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// A row could not be decoded (damaged or hand-edited database).
    #[error("auth database {path}: a stored {what} could not be decoded")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What kind of value.
        what: &'static str,
    },
    /// The user name or client id is taken.
    #[error("the name is already taken")]
    Exists,
    /// No such user or client.
    #[error("no such user or client")]
    NotFound,
    /// A user name or client id outside `[A-Za-z0-9._@-]{1,64}`.
    #[error("names must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '.', '_', '@' or '-'")]
    BadName,
    /// A redirect URI that RFC 6749 §3.1.2 / RFC 8252 §7 do not allow.
    #[error("redirect URI {uri:?} refused: {why}")]
    BadRedirectUri {
        /// The URI (not a secret), cut to [`MAX_REDIRECT_URI_LEN`] characters.
        uri: String,
        /// Why.
        why: &'static str,
    },
    /// A client registration that cannot work.
    #[error("invalid client: {0}")]
    InvalidClient(&'static str),
    /// A refresh token was offered for a family already revoked.
    #[error("the refresh-token family is revoked")]
    FamilyRevoked,
}

/// Checks a user name or client id: 1 to [`MAX_NAME_LEN`] characters of
/// `[A-Za-z0-9._@-]`.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadName)
    }
}

/// SHA-256 of a code or token: the only form in which they are stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut h = [0u8; 32];
    h.copy_from_slice(d.as_ref());
    h
}

/// The token service's database.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    revoked: RwLock<HashSet<String>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `path`, creating it (mode 0600, parent
    /// directories 0700) and its schema if needed. An existing file readable
    /// by others is narrowed to 0600.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| StoreError::Io { path: p, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                let mut b = std::fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
                b.create(dir).map_err(io(dir))?;
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(path).map_err(io(path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = file.metadata().map_err(io(path))?;
            if meta.permissions().mode() & 0o077 != 0 {
                file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
            }
        }
        drop(file);
        Self::open_existing(path)
    }

    /// Opens an existing database; a missing file is an
    /// [`StoreError::Io`] with kind `NotFound` (for read-only commands that
    /// must not create one).
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        std::fs::metadata(path).map_err(|source| StoreError::Io { path: path.to_owned(), source })?;
        let sql = |source| StoreError::Sqlite { path: path.to_owned(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt { path: path.to_owned(), what: "journal mode (WAL unavailable)" });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        conn.pragma_update(None, "secure_delete", "ON").map_err(sql)?;
        schema::migrate(&mut conn, path)?;
        let store = Self { path: path.to_owned(), conn: Mutex::new(conn), revoked: RwLock::new(HashSet::new()) };
        store.reload_revoked()?;
        Ok(store)
    }

    /// Opens an existing database read-only, for inspection (`seqshield
    /// doctor`): nothing is created, migrated or written, and a schema
    /// other than this build's is refused. A missing file is an
    /// [`StoreError::Io`] with kind `NotFound`.
    ///
    /// While no writer has the database open (no `-wal` file beside it),
    /// it is read as immutable, so not even the `-wal` and `-shm` files a
    /// WAL reader needs are created; otherwise it shares the writer's.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        std::fs::metadata(path).map_err(|source| StoreError::Io { path: path.to_owned(), source })?;
        let sql = |source| StoreError::Sqlite { path: path.to_owned(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let immutable = path.to_str().filter(|_| !Path::new(&wal).exists()).map(|p| {
            // RFC 3986 escapes for the characters SQLite's URI parser treats specially.
            let escaped: String = p
                .chars()
                .map(|c| match c {
                    '%' | '?' | '#' => format!("%{:02X}", c as u32),
                    c => c.to_string(),
                })
                .collect();
            format!("file:{escaped}?immutable=1")
        });
        let conn = match immutable {
            Some(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI),
            None => Connection::open_with_flags(path, flags),
        }
        .map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
        match found {
            schema::VERSION => {}
            v if v > schema::VERSION => return Err(StoreError::SchemaTooNew { path: path.to_owned(), found: v }),
            _ => return Err(StoreError::Corrupt { path: path.to_owned(), what: "schema version" }),
        }
        let store = Self { path: path.to_owned(), conn: Mutex::new(conn), revoked: RwLock::new(HashSet::new()) };
        store.reload_revoked()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the access token `jti` is revoked. Reads memory only.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.read().unwrap_or_else(PoisonError::into_inner).contains(jti)
    }

    /// Re-reads the revoked token ids from the database (to pick up
    /// revocations made by another process).
    pub fn reload_revoked(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT jti FROM revoked_jtis").map_err(self.sql())?;
        let set = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<HashSet<_>, _>>())
            .map_err(self.sql())?;
        // Merge, never replace: ids revoked in memory whose write failed stay revoked.
        self.revoked.write().unwrap_or_else(PoisonError::into_inner).extend(set);
        Ok(())
    }

    /// Deletes everything expired: codes and their tombstones, refresh
    /// tokens, revoked families whose tokens have all expired, and issued
    /// or revoked token ids past expiry plus [`REVOCATION_GRACE_SECS`].
    /// Returns the number of rows deleted.
    pub fn prune(&self, now: u64) -> Result<usize, StoreError> {
        let now_i = to_i64(now);
        let jti_cutoff = to_i64(now.saturating_sub(REVOCATION_GRACE_SECS));
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        let mut n = 0;
        n += tx.execute("DELETE FROM codes WHERE expires_at <= ?1", [now_i]).map_err(self.sql())?;
        n += tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?1", [now_i]).map_err(self.sql())?;
        n += tx.execute("DELETE FROM revoked_families WHERE expires_at <= ?1", [now_i]).map_err(self.sql())?;
        n += tx.execute("DELETE FROM issued WHERE exp <= ?1", [jti_cutoff]).map_err(self.sql())?;
        let gone: Vec<String> = {
            let mut stmt = tx.prepare("DELETE FROM revoked_jtis WHERE exp <= ?1 RETURNING jti").map_err(self.sql())?;
            let rows = stmt.query_map([jti_cutoff], |r| r.get(0)).map_err(self.sql())?;
            rows.collect::<Result<_, _>>().map_err(self.sql())?
        };
        tx.commit().map_err(self.sql())?;
        n += gone.len();
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        for jti in &gone {
            revoked.remove(jti);
        }
        Ok(n)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction rolls the transaction back on drop, so the
        // connection is consistent even if the lock is poisoned.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    fn corrupt(&self, what: &'static str) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), what }
    }

    fn mark_revoked(&self, jtis: impl IntoIterator<Item = String>) {
        self.revoked.write().unwrap_or_else(PoisonError::into_inner).extend(jtis);
    }
}

/// Unix times and steps as SQLite integers (saturating far in the future).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A store in a fresh temporary directory.
    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data").join(DB_FILE)).unwrap();
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::store;
    use super::*;

    #[test]
    fn names() {
        for ok in ["alice", "a", "alice.smith@example.org", "svc_1-x", &"a".repeat(MAX_NAME_LEN)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "al ice", "alice/..", "al:ice", "ålice", "a\n", &"a".repeat(MAX_NAME_LEN + 1)] {
            assert!(matches!(validate_name(bad), Err(StoreError::BadName)), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_wal_is_on() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, s) = store();
        s.revoke_jti("j1", 100).unwrap();
        let data = dir.path().join("data");
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
        for name in [DB_FILE, "auth.db-wal", "auth.db-shm"] {
            let mode = std::fs::metadata(data.join(name)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        let mode: String = s.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let v: i64 = s.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, schema::VERSION);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_world_readable_file_is_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// `seqshield doctor` must never create or migrate a database.
    #[test]
    fn read_only_open_reads_and_never_writes() {
        let (dir, s) = store();
        s.revoke_jti("j1", u64::MAX / 2).unwrap();
        drop(s);
        let data = dir.path().join("data");
        let ro = Store::open_read_only(&data.join(DB_FILE)).unwrap();
        assert!(ro.is_revoked("j1"));
        assert!(ro.list_users().unwrap().is_empty());
        assert!(ro.revoke_jti("j2", 1).is_err(), "a read-only store refuses writes");
        drop(ro);
        let files: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, [DB_FILE], "no -wal or -shm file is left behind");
        // Beside a writer, it reads what the writer committed.
        let writer = Store::open(&data.join(DB_FILE)).unwrap();
        writer.revoke_jti("j3", u64::MAX / 2).unwrap();
        let ro = Store::open_read_only(&data.join(DB_FILE)).unwrap();
        assert!(ro.is_revoked("j3"));
        drop((ro, writer));
        let missing = Store::open_read_only(&dir.path().join("nope.db")).unwrap_err();
        assert!(matches!(missing, StoreError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound));
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(Store::open_read_only(&empty), Err(StoreError::Corrupt { .. })), "no schema is created");
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (dir, s) = store();
        s.conn().pragma_update(None, "user_version", schema::VERSION + 1).unwrap();
        drop(s);
        let e = Store::open(&dir.path().join("data").join(DB_FILE)).unwrap_err();
        assert!(matches!(e, StoreError::SchemaTooNew { .. }), "{e}");
        assert!(e.to_string().contains("auth.db"), "errors carry the path: {e}");
    }

    #[test]
    fn open_existing_does_not_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let e = Store::open_existing(&path).unwrap_err();
        assert!(matches!(&e, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
        assert!(!path.exists());
    }

    #[test]
    fn revoked_ids_survive_reopen_and_prune_after_grace() {
        let (dir, s) = store();
        s.revoke_jti("a", 1_000).unwrap();
        s.revoke_jti("b", 5_000).unwrap();
        assert!(s.is_revoked("a") && s.is_revoked("b") && !s.is_revoked("c"));
        drop(s);
        let s = Store::open(&dir.path().join("data").join(DB_FILE)).unwrap();
        assert!(s.is_revoked("a") && s.is_revoked("b"), "loaded at open");
        s.prune(1_000 + REVOCATION_GRACE_SECS - 1).unwrap();
        assert!(s.is_revoked("a"), "kept through the clock-skew grace");
        assert_eq!(s.prune(1_000 + REVOCATION_GRACE_SECS).unwrap(), 1);
        assert!(!s.is_revoked("a") && s.is_revoked("b"));
    }

    #[test]
    fn token_hash_is_sha256() {
        assert_eq!(hex::encode(token_hash("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
