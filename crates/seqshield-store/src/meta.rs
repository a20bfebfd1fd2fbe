//! Object metadata in SQLite or PostgreSQL, through `sqlx` (the `Any`
//! driver, so one set of queries serves both) with versioned migrations
//! (`migrations/sqlite`, `migrations/postgres`: the same schema in each
//! dialect, applied and checksummed by `sqlx::migrate`).
//!
//! SQLite runs in WAL mode with `secure_delete` on, so a shredded header's
//! wrapped key is overwritten in the database file, and the WAL is
//! checkpointed and truncated after every shred ([`Meta::scrub`]).

use std::borrow::Cow;
use std::str::FromStr;

use seqshield_format::Classification;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, Row};

use crate::error::StoreError;

/// Where an object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Parts are arriving; invisible to readers.
    Uploading,
    /// Committed: complete and verified.
    Available,
    /// Keys destroyed; blobs being deleted.
    Shredded,
}

impl State {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Available => "available",
            Self::Shredded => "shredded",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "uploading" => Ok(Self::Uploading),
            "available" => Ok(Self::Available),
            "shredded" => Ok(Self::Shredded),
            other => Err(StoreError::Db(format!("unknown object state {other:?} in the database"))),
        }
    }
}

/// One object's metadata row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    /// `obj_` + 32 hex digits.
    pub id: String,
    /// The name the uploader gave.
    pub name: String,
    /// The dataset it belongs to.
    pub dataset: String,
    /// Its classification.
    pub classification: Classification,
    /// The uploader's subject.
    pub owner: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// Segments per part (a power of two).
    pub part_segments: u32,
    /// Encrypted, or integrity-only.
    pub encrypted: bool,
    /// The content type recorded in the header.
    pub content_type: String,
    /// Ids of the KEKs its data key is wrapped for.
    pub key_ids: Vec<String>,
    /// The sealed header (wrapped data key); `None` once shredded.
    pub header: Option<Vec<u8>>,
    /// The sealed trailer; set at commit.
    pub trailer: Option<Vec<u8>>,
    /// Hex Merkle root; set at commit.
    pub merkle_root: Option<String>,
    /// Life-cycle state.
    pub state: State,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// Seconds since the epoch.
    pub updated_at: i64,
    /// Seconds since the epoch; set at commit.
    pub committed_at: Option<i64>,
}

/// A copy of an object in another store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRow {
    /// The object.
    pub object_id: String,
    /// The store's name.
    pub store: String,
    /// The header re-wrapped for that store's KEK, if any.
    pub header: Option<Vec<u8>>,
    /// Ids of the KEKs that header is wrapped for.
    pub key_ids: Vec<String>,
    /// Hex Merkle root checked over the copy.
    pub merkle_root: String,
    /// Seconds since the epoch.
    pub synced_at: i64,
}

/// The database's dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The metadata database.
#[derive(Clone, Debug)]
pub struct Meta {
    pool: AnyPool,
    dialect: Dialect,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "objects", include_str!("../migrations/sqlite/0001_objects.sql"))];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "objects", include_str!("../migrations/postgres/0001_objects.sql"))];

fn migrator(dialect: Dialect) -> Migrator {
    let list = match dialect {
        Dialect::Sqlite => SQLITE_MIGRATIONS,
        Dialect::Postgres => POSTGRES_MIGRATIONS,
    };
    let migrations: Vec<Migration> = list
        .iter()
        .map(|&(v, d, sql)| Migration::new(v, Cow::Borrowed(d), MigrationType::Simple, Cow::Borrowed(sql), false))
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

const COLUMNS: &str = "id, name, dataset, classification, owner, size, segment_size, part_segments, encrypted, \
                       content_type, key_ids, header, trailer, merkle_root, state, created_at, updated_at, committed_at";

impl Meta {
    /// Opens (creating if need be) the database at `url` (`sqlite://PATH`
    /// or `postgres://…`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::invalid("database", "expected a sqlite:// or postgres:// URL"));
        };
        let url = match dialect {
            // rwc: create the file if missing.
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let opts = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Db(redact_url(&e.to_string())))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 8 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA secure_delete = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Db(redact_url(&e.to_string())))?;
        migrator(dialect).run(&pool).await.map_err(|e| StoreError::Db(format!("migration failed: {e}")))?;
        Ok(Self { pool, dialect })
    }

    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Inserts a new object (state `uploading`).
    pub async fn insert(&self, o: &ObjectRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO objects ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18)"
        ))
        .bind(&o.id)
        .bind(&o.name)
        .bind(&o.dataset)
        .bind(o.classification.as_str())
        .bind(&o.owner)
        .bind(to_i64(o.size)?)
        .bind(i64::from(o.segment_size))
        .bind(i64::from(o.part_segments))
        .bind(i64::from(o.encrypted))
        .bind(&o.content_type)
        .bind(o.key_ids.join(","))
        .bind(o.header.clone())
        .bind(o.trailer.clone())
        .bind(o.merkle_root.clone())
        .bind(o.state.as_str())
        .bind(o.created_at)
        .bind(o.updated_at)
        .bind(o.committed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One object, in any state.
    pub async fn get(&self, id: &str) -> Result<Option<ObjectRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM objects WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| object_row(&r)).transpose()
    }

    /// Objects in `state`, oldest first, at most `limit`.
    pub async fn list(&self, state: State, limit: i64) -> Result<Vec<ObjectRow>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM objects WHERE state = $1 ORDER BY created_at, id LIMIT $2"))
                .bind(state.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(object_row).collect()
    }

    /// Objects still uploading that were created before `before`.
    pub async fn stale_uploads(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM objects WHERE state = 'uploading' AND updated_at < $1")
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).collect()
    }

    /// The received parts of an object with their subtree roots, in order.
    pub async fn parts(&self, id: &str) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let rows = sqlx::query("SELECT part, root FROM parts WHERE object_id = $1 ORDER BY part")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let part: i64 = r.try_get(0)?;
                let root: Vec<u8> = r.try_get(1)?;
                let root: [u8; 32] =
                    root.try_into().map_err(|_| StoreError::Db("a part root is not 32 bytes".into()))?;
                Ok((u64::try_from(part).map_err(|_| StoreError::Db("negative part index".into()))?, root))
            })
            .collect()
    }

    /// Records a received part. `Ok(false)` if it was already recorded.
    pub async fn add_part(&self, id: &str, part: u64, root: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO parts (object_id, part, root, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(to_i64(part)?)
        .bind(root.to_vec())
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query("UPDATE objects SET updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(done.rows_affected() == 1)
    }

    /// Makes an uploading object available. `Ok(false)` if it was not
    /// uploading any more (a concurrent commit or delete won).
    pub async fn commit(&self, id: &str, trailer: &[u8], root_hex: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE objects SET state = 'available', trailer = $1, merkle_root = $2, committed_at = $3, \
             updated_at = $3 WHERE id = $4 AND state = 'uploading'",
        )
        .bind(trailer.to_vec())
        .bind(root_hex)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Destroys every wrapped data key of an object (its header and every
    /// replica's), in one transaction, and marks it shredded.
    pub async fn shred(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE objects SET header = NULL, trailer = NULL, key_ids = '', state = 'shredded', updated_at = $1 \
             WHERE id = $2 AND state <> 'shredded'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE replicas SET header = NULL, key_ids = '' WHERE object_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes an object's rows (after its blobs are gone).
    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for table in ["parts", "replicas"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE object_id = $1")).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM objects WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Objects shredded but not yet removed (a crash mid-delete).
    pub async fn shredded(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM objects WHERE state = 'shredded'").fetch_all(&self.pool).await?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).collect()
    }

    /// Makes deleted data unrecoverable from the database files: SQLite's
    /// `secure_delete` zeroes freed pages in the main file, and this
    /// checkpoints and truncates the WAL, which still held the old pages.
    pub async fn scrub(&self) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Records a replica.
    pub async fn put_replica(&self, r: &ReplicaRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM replicas WHERE object_id = $1 AND store = $2")
            .bind(&r.object_id)
            .bind(&r.store)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO replicas (object_id, store, header, key_ids, merkle_root, synced_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.object_id)
        .bind(&r.store)
        .bind(r.header.clone())
        .bind(r.key_ids.join(","))
        .bind(&r.merkle_root)
        .bind(r.synced_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The replicas of an object.
    pub async fn replicas(&self, id: &str) -> Result<Vec<ReplicaRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT object_id, store, header, key_ids, merkle_root, synced_at FROM replicas WHERE object_id = $1 \
             ORDER BY store",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReplicaRow {
                    object_id: r.try_get(0)?,
                    store: r.try_get(1)?,
                    header: r.try_get(2)?,
                    key_ids: split_ids(&r.try_get::<String, _>(3)?),
                    merkle_root: r.try_get(4)?,
                    synced_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Runs one statement as is (administration: `CREATE DATABASE` and the
    /// like). Never with request data.
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn split_ids(s: &str) -> Vec<String> {
    s.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid("size", "too large"))
}

fn object_row(r: &AnyRow) -> Result<ObjectRow, StoreError> {
    let u = |i: usize| -> Result<u64, StoreError> {
        u64::try_from(r.try_get::<i64, _>(i)?).map_err(|_| StoreError::Db("negative value in the database".into()))
    };
    let classification: String = r.try_get(3)?;
    Ok(ObjectRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        dataset: r.try_get(2)?,
        classification: classification
            .parse()
            .map_err(|_| StoreError::Db(format!("unknown classification {classification:?} in the database")))?,
        owner: r.try_get(4)?,
        size: u(5)?,
        segment_size: u32::try_from(u(6)?).map_err(|_| StoreError::Db("segment size out of range".into()))?,
        part_segments: u32::try_from(u(7)?).map_err(|_| StoreError::Db("part size out of range".into()))?,
        encrypted: r.try_get::<i64, _>(8)? != 0,
        content_type: r.try_get(9)?,
        key_ids: split_ids(&r.try_get::<String, _>(10)?),
        header: r.try_get(11)?,
        trailer: r.try_get(12)?,
        merkle_root: r.try_get(13)?,
        state: State::parse(&r.try_get::<String, _>(14)?)?,
        created_at: r.try_get(15)?,
        updated_at: r.try_get(16)?,
        committed_at: r.try_get(17)?,
    })
}

/// A database error message with any `user:password@` removed.
fn redact_url(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for word in msg.split_inclusive(char::is_whitespace) {
        match (word.find("://"), word.find('@')) {
            (Some(s), Some(at)) if at > s => {
                out.push_str(&word[..s + 3]);
                out.push_str("[redacted]");
                out.push_str(&word[at..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("cannot reach postgres://u:secret@db:5432/x now"),
            "cannot reach postgres://[redacted]@db:5432/x now"
        );
        assert_eq!(redact_url("plain text"), "plain text");
    }
}
