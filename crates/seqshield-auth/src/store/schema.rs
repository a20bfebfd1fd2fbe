//! The schema and its migrations, versioned by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema version this build writes.
pub(super) const VERSION: i64 = 1;

/// Version 1. `STRICT` tables: SQLite refuses values of the wrong type.
const V1: &str = "
CREATE TABLE users (
    name           TEXT PRIMARY KEY NOT NULL,
    password_hash  TEXT NOT NULL,               -- argon2id PHC string
    totp_secret    BLOB NOT NULL,               -- never in Debug output
    totp_confirmed INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER,                     -- RFC 6238 §5.2 replay refusal
    scopes         TEXT NOT NULL,
    clearance      TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE clients (
    id            TEXT PRIMARY KEY NOT NULL,
    redirect_uris TEXT NOT NULL,                -- JSON array of strings
    secret_hash   TEXT,                         -- argon2id PHC string
    jwks          TEXT,                         -- private_key_jwt public keys
    scopes        TEXT NOT NULL,
    clearance     TEXT NOT NULL
) STRICT;

-- Authorization codes by SHA-256. `record` is NULL once used: the row
-- stays as a tombstone until expiry so a replay is recognised.
CREATE TABLE codes (
    hash       BLOB PRIMARY KEY NOT NULL,
    record     TEXT,
    family     TEXT,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    family     TEXT NOT NULL,
    record     TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE revoked_families (
    family     TEXT PRIMARY KEY NOT NULL,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL                 -- kept until its last token expires
) STRICT;

-- Access tokens issued, so a revoked family can revoke them too.
CREATE TABLE issued (
    jti    TEXT PRIMARY KEY NOT NULL,
    family TEXT,
    exp    INTEGER NOT NULL
) STRICT;
CREATE INDEX issued_family ON issued (family);

CREATE TABLE revoked_jtis (
    jti TEXT PRIMARY KEY NOT NULL,
    exp INTEGER NOT NULL
) STRICT;
";

/// Brings the schema up to [`VERSION`], in one transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sqlite { path: path.to_owned(), source };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
    match found {
        VERSION => return Ok(()),
        0 => tx.execute_batch(V1).map_err(sql)?,
        v if v > VERSION => return Err(StoreError::SchemaTooNew { path: path.to_owned(), found: v }),
        _ => return Err(StoreError::Corrupt { path: path.to_owned(), what: "schema version" }),
    }
    tx.pragma_update(None, "user_version", VERSION).map_err(sql)?;
    tx.commit().map_err(sql)
}
