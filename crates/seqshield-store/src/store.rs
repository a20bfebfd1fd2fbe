//! The store engine: uploads in verified parts with an atomic commit,
//! authorised and audited reads, crypto-shredding deletes, verification,
//! and replication to another store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, PutPayload};
use seqshield_auth::audit::{AuditEvent, AuditSink, Outcome};
use seqshield_auth::Clock;
use seqshield_format::part::{merkle_root, part_leaves, PartCodec};
use seqshield_format::trailer::Trailer;
use seqshield_format::{Classification, DataKey, Header, SealedHeader};
use seqshield_keys::{Kek, Recipient};
use serde::{Deserialize, Serialize};

use crate::blobs::{self, Backend, BackendConfig};
use crate::error::StoreError;
use crate::geometry::{combine_part_roots, Geometry};
use crate::meta::{Meta, ObjectRow, ReplicaRow, State};
use crate::names::{self, DEFAULT_DATASET};
use crate::policy::{KekRequirement, StoragePolicy};

/// Scope to read objects.
pub const SCOPE_READ: &str = "data:read";
/// Scope to upload and delete one's objects.
pub const SCOPE_WRITE: &str = "data:write";
/// Scope to delete others' objects and to replicate the store.
pub const SCOPE_ADMIN: &str = "data:admin";

/// How far ahead of the first missing part an upload may run.
pub const PART_WINDOW: u64 = 64;
/// Default plaintext bytes per segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Default segments per part (8 MiB parts with the default segment size).
pub const DEFAULT_PART_SEGMENTS: u32 = 128;
/// Largest object accepted (1 TiB); a site can lower it.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1 << 40;
/// Data keys kept unwrapped in memory for active objects.
const CODEC_CACHE: usize = 256;

fn default_segment_size() -> u32 {
    DEFAULT_SEGMENT_SIZE
}
fn default_part_segments() -> u32 {
    DEFAULT_PART_SEGMENTS
}
fn default_max_object_bytes() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}
fn default_upload_expiry_hours() -> u64 {
    24
}
fn default_backend() -> BackendConfig {
    BackendConfig::Local { path: PathBuf::from("objects") }
}

/// A replica store (for cloud bursting).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// Where its bytes go: a backend table as for `store.backend`.
    pub backend: BackendConfig,
    /// An RSA public key (PEM, SPKI) of the replica side's KEK: copies are
    /// re-wrapped for it and made self-contained (header and trailer blobs).
    /// Without it a copy holds ciphertext only and its keys stay here.
    #[serde(default)]
    pub kek_public_key: Option<PathBuf>,
}

/// The `[store]` section of the gateway's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The metadata database: `sqlite://PATH` or `postgres://USER@HOST/DB`;
    /// none: `sqlite://DATA/store.db`. Migrations run at start.
    #[serde(default)]
    pub database: Option<String>,
    /// A storage policy file (per classification: encrypted or not, KEK
    /// custody, replication); none: the embedded policy. A relative path is
    /// taken from the data directory.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Where object bytes go (`kind` = `local`, `azure` or `s3`); relative
    /// local paths are taken from the data directory.
    #[serde(default = "default_backend")]
    pub backend: BackendConfig,
    /// Plaintext bytes per segment, 1024 to 16777216 (16 MiB).
    #[serde(default = "default_segment_size")]
    pub segment_size: u32,
    /// Segments per transfer part: a power of two, 1 to 4096, with at most
    /// 256 MiB per part.
    #[serde(default = "default_part_segments")]
    pub part_segments: u32,
    /// Largest object accepted, in plaintext bytes.
    #[serde(default = "default_max_object_bytes")]
    pub max_object_bytes: u64,
    /// Uploads idle this many hours are shredded (at least 1).
    #[serde(default = "default_upload_expiry_hours")]
    pub upload_expiry_hours: u64,
    /// Named replica stores (`[store.replicas.NAME]`, for `seqshield sync
    /// --to NAME`); names are 1 to 64 of A-Z a-z 0-9 . _ -.
    #[serde(default)]
    pub replicas: BTreeMap<String, ReplicaConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database: None,
            policy: None,
            backend: default_backend(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            part_segments: DEFAULT_PART_SEGMENTS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            upload_expiry_hours: default_upload_expiry_hours(),
            replicas: BTreeMap::new(),
        }
    }
}

impl StoreConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !(1024..=16 * 1024 * 1024).contains(&self.segment_size) {
            return Err(StoreError::invalid("store.segment_size", "must be 1024 to 16777216"));
        }
        if !self.part_segments.is_power_of_two() || self.part_segments > 4096 {
            return Err(StoreError::invalid("store.part_segments", "must be a power of two up to 4096"));
        }
        if u64::from(self.segment_size) * u64::from(self.part_segments) > 256 * 1024 * 1024 {
            return Err(StoreError::invalid("store.part_segments", "parts may hold at most 256 MiB"));
        }
        if self.upload_expiry_hours == 0 {
            return Err(StoreError::invalid("store.upload_expiry_hours", "must be at least 1"));
        }
        for name in self.replicas.keys() {
            names::check_dataset(name)
                .map_err(|_| StoreError::invalid("store.replicas", "names are 1 to 64 of A-Z a-z 0-9 . _ -"))?;
        }
        Ok(())
    }

    /// The database URL for a data directory.
    pub fn database_url(&self, data_dir: &Path) -> String {
        self.database.clone().unwrap_or_else(|| format!("sqlite://{}", data_dir.join("store.db").display()))
    }
}

/// Who is asking: the verified token's claims that matter here.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Subject.
    pub subject: String,
    /// OAuth client.
    pub client: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Clearance.
    pub clearance: Classification,
    /// Source address.
    pub source: Option<IpAddr>,
    /// A worker's token is bound to one task: only its inputs may be read
    /// and only its outputs (by name) written; nothing else is allowed.
    pub task: Option<seqshield_auth::jwt::TaskBinding>,
}

impl Principal {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// For a task-bound caller: refuses what the task does not cover.
    fn task_allows(&self, what: TaskUse<'_>) -> Result<(), StoreError> {
        let Some(t) = &self.task else { return Ok(()) };
        let refuse = |what: String| Err(StoreError::OutsideTask { task: t.id.clone(), what });
        match what {
            TaskUse::Read(id) if t.read.iter().any(|r| r == id) => Ok(()),
            TaskUse::Read(id) => refuse(format!("{id} is not one of its inputs")),
            TaskUse::Write(name) if t.write.iter().any(|w| w == name) => Ok(()),
            TaskUse::Write(name) => refuse(format!("{name:?} is not one of its outputs")),
            TaskUse::Other(op) => refuse(format!("{op} is not part of running a task")),
        }
    }
}

/// What a task-bound caller wants to do.
enum TaskUse<'a> {
    Read(&'a str),
    Write(&'a str),
    Other(&'static str),
}

/// What an uploader declares.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewObject {
    /// Object name.
    pub name: String,
    /// Dataset (default `default`).
    #[serde(default)]
    pub dataset: Option<String>,
    /// Classification.
    pub classification: Classification,
    /// Plaintext bytes.
    pub size: u64,
    /// Content type (printable ASCII, ≤ 128); default `application/octet-stream`.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// Public metadata of an object.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Dataset.
    pub dataset: String,
    /// Classification.
    pub classification: Classification,
    /// Uploader.
    pub owner: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Encrypted (else integrity-only).
    pub encrypted: bool,
    /// Content type.
    pub content_type: String,
    /// `uploading`, `available` or `shredded`.
    pub state: &'static str,
    /// Hex Merkle root (once committed).
    pub merkle_root: Option<String>,
    /// KEK ids.
    pub key_ids: Vec<String>,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// Segments per part.
    pub part_segments: u32,
    /// Number of parts.
    pub part_count: u64,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// Seconds since the epoch.
    pub committed_at: Option<i64>,
}

impl ObjectInfo {
    fn of(r: &ObjectRow) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            dataset: r.dataset.clone(),
            classification: r.classification,
            owner: r.owner.clone(),
            size: r.size,
            encrypted: r.encrypted,
            content_type: r.content_type.clone(),
            state: r.state.as_str(),
            merkle_root: r.merkle_root.clone(),
            key_ids: r.key_ids.clone(),
            segment_size: r.segment_size,
            part_segments: r.part_segments,
            part_count: geometry(r).parts(),
            created_at: r.created_at,
            committed_at: r.committed_at,
        }
    }
}

/// What an uploader needs to send parts: the sealed header, the data key
/// (sent only over TLS, to the uploader) and the parts already received.
pub struct UploadTicket {
    /// The object as registered.
    pub info: ObjectInfo,
    /// The sealed header.
    pub header: Vec<u8>,
    /// The data key.
    pub data_key: DataKey,
    /// Parts received so far, ascending.
    pub received: Vec<u64>,
}

/// What a reader needs: header, data key, trailer and the part roots.
pub struct DownloadTicket {
    /// The object.
    pub info: ObjectInfo,
    /// The sealed header.
    pub header: Vec<u8>,
    /// The data key.
    pub data_key: DataKey,
    /// The sealed trailer (its MAC authenticates the Merkle root).
    pub trailer: Vec<u8>,
    /// Each part's subtree root; they combine to the Merkle root.
    pub part_roots: Vec<[u8; 32]>,
}

/// An accepted part.
#[derive(Clone, Debug, Serialize)]
pub struct PartReceipt {
    /// The part.
    pub part: u64,
    /// Its subtree root (hex).
    pub root: String,
    /// Parts received so far.
    pub received: u64,
    /// Parts in the object.
    pub part_count: u64,
}

/// The result of re-checking a stored object.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The object.
    pub id: String,
    /// Whether every check passed.
    pub ok: bool,
    /// Parts checked.
    pub parts: u64,
    /// Segments authenticated.
    pub segments: u64,
    /// Stored bytes read.
    pub bytes: u64,
    /// The recorded Merkle root (hex).
    pub merkle_root: String,
    /// What failed, if anything.
    pub problems: Vec<String>,
}

/// What a delete destroyed.
#[derive(Clone, Debug, Serialize)]
pub struct ShredReport {
    /// The object.
    pub id: String,
    /// Wrapped data keys destroyed (object and replica headers).
    pub wrapped_keys_destroyed: u64,
    /// Blobs deleted, all stores together.
    pub blobs_deleted: u64,
}

/// One step of a replication, for progress reporting.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SyncEvent {
    /// The run's plan.
    Plan {
        /// Objects to copy.
        objects: u64,
        /// Stored bytes to copy.
        bytes: u64,
        /// Objects the policy keeps here.
        skipped: u64,
    },
    /// An object is skipped.
    Skipped {
        /// The object.
        id: String,
        /// Why.
        reason: String,
    },
    /// Bytes copied and checked.
    Progress {
        /// The object.
        id: String,
        /// Stored bytes of it done.
        done: u64,
        /// Its stored bytes.
        total: u64,
    },
    /// An object's copy matched its Merkle root end to end.
    Copied {
        /// The object.
        id: String,
        /// The root both sides have.
        merkle_root: String,
        /// Re-wrapped for the replica's KEK.
        rewrapped: bool,
    },
    /// An object failed; its partial copy was removed.
    Failed {
        /// The object.
        id: String,
        /// Why.
        error: String,
    },
}

/// An opened replica.
struct Replica {
    backend: Backend,
    recipient: Option<Arc<dyn Recipient>>,
}

/// An object's unwrapped keys, cached while it is active.
struct Unlocked {
    data_key: DataKey,
    header: Header,
    codec: PartCodec,
}

/// The store.
pub struct Store {
    meta: Meta,
    primary: Backend,
    replicas: BTreeMap<String, Replica>,
    policy: StoragePolicy,
    kek: Arc<dyn Kek>,
    kek_in_hsm: bool,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    cfg: StoreConfig,
    unlocked: Mutex<HashMap<String, Arc<Unlocked>>>,
    in_flight: Mutex<HashSet<(String, u64)>>,
}

/// Removes a part from the in-flight set however the request ends.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<(String, u64)>>,
    key: (String, u64),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

fn geometry(r: &ObjectRow) -> Geometry {
    Geometry::new(r.size, r.segment_size, r.part_segments)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("a blocking store task panicked")
}

impl Store {
    /// Opens the store: database (migrated), backends, policy; finishes
    /// deletes a crash interrupted.
    pub async fn open(
        cfg: StoreConfig,
        data_dir: &Path,
        kek: Arc<dyn Kek>,
        kek_in_hsm: bool,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        cfg.validate()?;
        let policy = match &cfg.policy {
            Some(p) => StoragePolicy::load(&data_dir.join(p))
                .map_err(|e| StoreError::invalid("store.policy", e.to_string()))?,
            None => StoragePolicy::embedded_default(),
        };
        let meta = Meta::open(&cfg.database_url(data_dir)).await?;
        let primary = Backend::open(&cfg.backend, data_dir)?;
        let mut replicas = BTreeMap::new();
        for (name, r) in &cfg.replicas {
            let recipient: Option<Arc<dyn Recipient>> = match &r.kek_public_key {
                Some(p) => {
                    let path = data_dir.join(p);
                    let pem = std::fs::read_to_string(&path).map_err(|e| {
                        StoreError::invalid("kek_public_key", format!("cannot read {}: {}", path.display(), e.kind()))
                    })?;
                    let rec = seqshield_keys::rsa::RsaRecipient::from_pem(&pem, seqshield_keys::rsa::OaepHash::Sha256)?;
                    Some(Arc::new(rec))
                }
                None => None,
            };
            replicas.insert(name.clone(), Replica { backend: Backend::open(&r.backend, data_dir)?, recipient });
        }
        let store = Self {
            meta,
            primary,
            replicas,
            policy,
            kek,
            kek_in_hsm,
            audit,
            clock,
            cfg,
            unlocked: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
        };
        for (name, r) in &store.replicas {
            if r.backend.description().contains("emulator") {
                store
                    .record(
                        AuditEvent::new(
                            store.now_u(),
                            "store.insecure_backend",
                            Outcome::Allow,
                            "insecure_emulator is on: plain HTTP and the emulator's public key",
                        )
                        .with("replica", name.clone()),
                    )
                    .await?;
            }
        }
        store.recover().await?;
        Ok(store)
    }

    /// The storage policy in force.
    pub fn policy(&self) -> &StoragePolicy {
        &self.policy
    }

    /// The metadata database.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The primary backend.
    pub fn primary(&self) -> &Backend {
        &self.primary
    }

    /// Names of the configured replica stores.
    pub fn replica_names(&self) -> Vec<String> {
        self.replicas.keys().cloned().collect()
    }

    fn now(&self) -> i64 {
        i64::try_from(self.clock.now()).unwrap_or(i64::MAX)
    }

    fn now_u(&self) -> u64 {
        self.clock.now()
    }

    async fn record(&self, ev: AuditEvent) -> Result<(), StoreError> {
        let sink = self.audit.clone();
        blocking(move || sink.record(&ev)).await.map_err(|e| StoreError::Audit(e.to_string()))
    }

    fn event(&self, p: &Principal, kind: &'static str, outcome: Outcome, reason: impl Into<String>) -> AuditEvent {
        AuditEvent::new(self.now_u(), kind, outcome, reason)
            .subject(p.subject.clone())
            .client(p.client.clone())
            .source(p.source)
    }

    /// Records a refusal and returns the error (or the audit failure).
    async fn deny<T>(
        &self,
        p: &Principal,
        kind: &'static str,
        id: Option<&str>,
        e: StoreError,
    ) -> Result<T, StoreError> {
        let mut ev = self.event(p, kind, Outcome::Deny, format!("{}: {e}", e.code()));
        if let Some(id) = id {
            ev = ev.with("object", id.to_owned());
        }
        self.record(ev).await?;
        Err(e)
    }

    /// `r`, or, if it is a refusal, `r` after recording it.
    async fn or_deny<T>(
        &self,
        p: &Principal,
        kind: &'static str,
        id: Option<&str>,
        r: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => self.deny(p, kind, id, e).await,
        }
    }

    fn need_scope(p: &Principal, scope: &'static str) -> Result<(), StoreError> {
        if p.has(scope) {
            Ok(())
        } else {
            Err(StoreError::Scope(scope))
        }
    }

    fn need_clearance(p: &Principal, c: Classification) -> Result<(), StoreError> {
        if p.clearance >= c {
            Ok(())
        } else {
            Err(StoreError::Clearance { clearance: p.clearance.as_str(), classification: c.as_str() })
        }
    }

    /// Loads an object, treating an uploading object of someone else as absent.
    async fn load(&self, p: &Principal, id: &str) -> Result<ObjectRow, StoreError> {
        names::check_id(id)?;
        match self.meta.get(id).await? {
            Some(r) if r.state == State::Uploading && r.owner != p.subject => Err(StoreError::NotFound(id.to_owned())),
            Some(r) if r.state == State::Shredded => Err(StoreError::NotFound(id.to_owned())),
            Some(r) => Ok(r),
            None => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    async fn unlock(&self, row: &ObjectRow) -> Result<Arc<Unlocked>, StoreError> {
        if let Some(u) = self.unlocked.lock().unwrap_or_else(|p| p.into_inner()).get(&row.id) {
            return Ok(u.clone());
        }
        let header = row.header.clone().ok_or_else(|| StoreError::NotFound(row.id.clone()))?;
        let kek = self.kek.clone();
        let u = blocking(move || -> Result<Unlocked, StoreError> {
            let (sealed, _) =
                SealedHeader::parse(&header).map_err(|e| StoreError::Db(format!("stored header: {e}")))?;
            let (data_key, header) = seqshield_keys::unlock(sealed, &[kek.as_ref()])?;
            let codec = PartCodec::new(&header, &data_key);
            Ok(Unlocked { data_key, header, codec })
        })
        .await?;
        let u = Arc::new(u);
        let mut cache = self.unlocked.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CODEC_CACHE {
            cache.clear();
        }
        cache.insert(row.id.clone(), u.clone());
        Ok(u)
    }

    fn forget(&self, id: &str) {
        self.unlocked.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    // ---- uploads ---------------------------------------------------------

    /// Registers a new object and returns what the uploader needs.
    pub async fn create_upload(&self, p: &Principal, req: NewObject) -> Result<UploadTicket, StoreError> {
        const KIND: &str = "store.upload.create";
        let checked = self.check_new(p, &req);
        if let Err(e) = checked {
            return self.deny(p, KIND, None, e).await;
        }
        let rule = self.policy.rule(req.classification).clone();
        let data_key = DataKey::generate();
        let content_type = req.content_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
        let kek = self.kek.clone();
        let (seg, dk) = (self.cfg.segment_size, data_key.clone());
        let class = req.classification;
        let header = blocking(move || -> Result<(Header, Vec<u8>), StoreError> {
            let wrapped = kek.wrap(&dk)?;
            let header = Header::new(class, &content_type, vec![wrapped])
                .and_then(|h| h.with_segment_size(seg))
                .map_err(|e| StoreError::invalid("content_type", e.to_string()))?
                .with_integrity_only(!rule.encrypt);
            let bytes = header.encode(&dk);
            Ok((header, bytes))
        })
        .await;
        let (header, header_bytes) = self.or_deny(p, KIND, None, header).await?;
        let now = self.now();
        let row = ObjectRow {
            id: names::new_id(),
            name: req.name,
            dataset: req.dataset.unwrap_or_else(|| DEFAULT_DATASET.to_owned()),
            classification: req.classification,
            owner: p.subject.clone(),
            size: req.size,
            segment_size: self.cfg.segment_size,
            part_segments: self.cfg.part_segments,
            encrypted: rule.encrypt,
            content_type: header.content_type().to_owned(),
            key_ids: header.recipients().iter().map(|r| r.key_id.clone()).collect(),
            header: Some(header_bytes.clone()),
            trailer: None,
            merkle_root: None,
            state: State::Uploading,
            created_at: now,
            updated_at: now,
            committed_at: None,
        };
        let info = ObjectInfo::of(&row);
        self.record(
            self.event(p, KIND, Outcome::Allow, rule.reason.clone())
                .with("object", row.id.clone())
                .with("classification", row.classification.as_str())
                .with("dataset", row.dataset.clone())
                .with("size", i64::try_from(row.size).unwrap_or(i64::MAX))
                .with("encrypted", row.encrypted)
                .with("kek", row.key_ids.join(",")),
        )
        .await?;
        self.meta.insert(&row).await?;
        let codec = PartCodec::new(&header, &data_key);
        self.unlocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id.clone(), Arc::new(Unlocked { data_key: data_key.clone(), header, codec }));
        Ok(UploadTicket { info, header: header_bytes, data_key, received: Vec::new() })
    }

    fn check_new(&self, p: &Principal, req: &NewObject) -> Result<(), StoreError> {
        Self::need_scope(p, SCOPE_WRITE)?;
        Self::need_clearance(p, req.classification)?;
        names::check_name(&req.name)?;
        p.task_allows(TaskUse::Write(&req.name))?;
        if let Some(d) = &req.dataset {
            names::check_dataset(d)?;
        }
        if req.size > self.cfg.max_object_bytes {
            return Err(StoreError::invalid(
                "size",
                format!("larger than this store's limit of {} bytes", self.cfg.max_object_bytes),
            ));
        }
        let rule = self.policy.rule(req.classification);
        if rule.kek == KekRequirement::Hsm && !self.kek_in_hsm {
            return Err(StoreError::Policy(format!(
                "{} data needs a KEK held in an HSM, and this gateway runs on a file KEK ({})",
                req.classification, rule.reason
            )));
        }
        Ok(())
    }

    /// Resumes an upload: the same ticket, with the parts already received.
    pub async fn resume_upload(&self, p: &Principal, id: &str) -> Result<UploadTicket, StoreError> {
        const KIND: &str = "store.upload.resume";
        let row = self.or_deny(p, KIND, Some(id), self.writable(p, id).await).await?;
        let u = self.unlock(&row).await?;
        let received: Vec<u64> = self.meta.parts(id).await?.into_iter().map(|(n, _)| n).collect();
        self.record(
            self.event(p, KIND, Outcome::Allow, "the uploader resumes its upload")
                .with("object", id.to_owned())
                .with("received", i64::try_from(received.len()).unwrap_or(i64::MAX)),
        )
        .await?;
        Ok(UploadTicket {
            info: ObjectInfo::of(&row),
            header: row.header.clone().unwrap_or_default(),
            data_key: u.data_key.clone(),
            received,
        })
    }

    /// The object, if the caller has `scope` and the clearance for it.
    async fn authorized(&self, p: &Principal, id: &str, scope: &'static str) -> Result<ObjectRow, StoreError> {
        Self::need_scope(p, scope)?;
        if scope == SCOPE_READ {
            p.task_allows(TaskUse::Read(id))?;
        }
        let row = self.load(p, id).await?;
        if scope == SCOPE_WRITE {
            p.task_allows(TaskUse::Write(&row.name))?;
        }
        Self::need_clearance(p, row.classification)?;
        Ok(row)
    }

    async fn writable(&self, p: &Principal, id: &str) -> Result<ObjectRow, StoreError> {
        let row = self.authorized(p, id, SCOPE_WRITE).await?;
        if row.owner != p.subject {
            return Err(StoreError::NotOwner("upload to it"));
        }
        if row.state != State::Uploading {
            return Err(StoreError::State { state: row.state.as_str().to_owned(), what: "it accepts no more parts" });
        }
        Ok(row)
    }

    /// Receives one part: checked at its position against the data key
    /// (every segment's tag) and, if the sender declared one, against its
    /// Merkle subtree root; stored; recorded.
    pub async fn put_part(
        &self,
        p: &Principal,
        id: &str,
        part: u64,
        wire: Bytes,
        declared_root: Option<[u8; 32]>,
    ) -> Result<PartReceipt, StoreError> {
        const KIND: &str = "store.part.write";
        let checked = self.check_part(p, id, part, wire, declared_root).await;
        let (row, root, wire, count, _guard) = self.or_deny(p, KIND, Some(id), checked).await?;
        self.record(
            self.event(p, KIND, Outcome::Allow, "part verified at its position")
                .with("object", id.to_owned())
                .with("part", i64::try_from(part).unwrap_or(i64::MAX))
                .with("root", hex::encode(root)),
        )
        .await?;
        if let Err(e) = self.primary.store().put(&blobs::part_path(&row.id, part), PutPayload::from_bytes(wire)).await {
            let e = StoreError::from(e);
            if let StoreError::NoSpace(why) = e {
                // The upload cannot finish here: free what it holds now.
                let freed = self.shred(&row).await.map(|r| r.blobs_deleted);
                self.record(
                    self.event(p, KIND, Outcome::Deny, "no_space: the store is full; the upload was removed")
                        .with("object", id.to_owned())
                        .with("blobs_freed", i64::try_from(freed.as_ref().copied().unwrap_or(0)).unwrap_or(0)),
                )
                .await?;
                return Err(StoreError::NoSpace(format!(
                    "{why}; upload {id} was removed to free its {} stored parts",
                    freed.unwrap_or(0)
                )));
            }
            return Err(e);
        }
        if !self.meta.add_part(id, part, &root, self.now()).await? {
            return Err(StoreError::PartDuplicate(part));
        }
        Ok(PartReceipt { part, root: hex::encode(root), received: count + 1, part_count: geometry(&row).parts() })
    }

    #[allow(clippy::type_complexity)]
    async fn check_part(
        &self,
        p: &Principal,
        id: &str,
        part: u64,
        wire: Bytes,
        declared_root: Option<[u8; 32]>,
    ) -> Result<(ObjectRow, [u8; 32], Bytes, u64, InFlight<'_>), StoreError> {
        let row = self.writable(p, id).await?;
        let g = geometry(&row);
        if part >= g.parts() {
            return Err(StoreError::PartOutOfRange { part, count: g.parts() });
        }
        let got = wire.len() as u64;
        if got > g.max_part_wire_len() {
            return Err(StoreError::PartTooLarge { part, limit: g.max_part_wire_len() });
        }
        if got != g.part_wire_len(part) {
            return Err(StoreError::PartLength { part, got, expected: g.part_wire_len(part) });
        }
        let received: HashSet<u64> = self.meta.parts(id).await?.into_iter().map(|(n, _)| n).collect();
        if received.contains(&part) {
            return Err(StoreError::PartDuplicate(part));
        }
        let first_missing = (0..).find(|n| !received.contains(n)).unwrap_or(0);
        if part >= first_missing + PART_WINDOW {
            return Err(StoreError::PartOutOfOrder { part, first_missing, window_end: first_missing + PART_WINDOW });
        }
        let key = (id.to_owned(), part);
        if !self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return Err(StoreError::PartDuplicate(part));
        }
        let guard = InFlight { set: &self.in_flight, key };
        let u = self.unlock(&row).await?;
        let (first, _) = g.part_segments_of(part);
        let total = g.segments();
        let (leaves, wire) = blocking(move || {
            let r = u.codec.check_part(first, total, &wire);
            (r, wire)
        })
        .await;
        let leaves = leaves.map_err(|source| StoreError::PartRejected { part, source })?;
        let root = merkle_root(&leaves);
        if declared_root.is_some_and(|d| d != root) {
            return Err(StoreError::PartRootMismatch(part));
        }
        Ok((row, root, wire, received.len() as u64, guard))
    }

    /// Commits an upload: every part present, the Merkle root equal to the
    /// one the sender declares, the bytes durable; then, atomically, the
    /// object becomes visible.
    pub async fn commit(&self, p: &Principal, id: &str, declared_root: [u8; 32]) -> Result<ObjectInfo, StoreError> {
        const KIND: &str = "store.upload.commit";
        let ready = self.check_commit(p, id, declared_root).await;
        let (row, trailer, root) = self.or_deny(p, KIND, Some(id), ready).await?;
        let g = geometry(&row);
        let paths: Vec<_> = (0..g.parts()).map(|n| blobs::part_path(id, n)).collect();
        let primary = self.primary.clone();
        blocking(move || primary.make_durable(&paths)).await?;
        let root_hex = hex::encode(root);
        self.record(
            self.event(p, KIND, Outcome::Allow, "every part verified and the Merkle root matches")
                .with("object", id.to_owned())
                .with("root", root_hex.clone())
                .with("parts", i64::try_from(g.parts()).unwrap_or(i64::MAX)),
        )
        .await?;
        if !self.meta.commit(id, &trailer, &root_hex, self.now()).await? {
            return Err(StoreError::State {
                state: "not uploading".into(),
                what: "it was committed or deleted meanwhile",
            });
        }
        let row = self.meta.get(id).await?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        Ok(ObjectInfo::of(&row))
    }

    async fn check_commit(
        &self,
        p: &Principal,
        id: &str,
        declared: [u8; 32],
    ) -> Result<(ObjectRow, Vec<u8>, [u8; 32]), StoreError> {
        let row = self.writable(p, id).await?;
        let g = geometry(&row);
        let parts = self.meta.parts(id).await?;
        if parts.len() as u64 != g.parts() {
            let have: HashSet<u64> = parts.iter().map(|(n, _)| *n).collect();
            let first = (0..g.parts()).find(|n| !have.contains(n)).unwrap_or(0);
            return Err(StoreError::Incomplete { missing: g.parts() - parts.len() as u64, count: g.parts(), first });
        }
        let roots: Vec<[u8; 32]> = parts.iter().map(|(_, r)| *r).collect();
        let root = combine_part_roots(&roots);
        if root != declared {
            return Err(StoreError::RootMismatch);
        }
        let u = self.unlock(&row).await?;
        let trailer =
            u.codec.seal_trailer(&Trailer { segment_count: g.segments(), plaintext_len: row.size, merkle_root: root });
        Ok((row, trailer.to_vec(), root))
    }

    // ---- reads -----------------------------------------------------------

    async fn readable(&self, p: &Principal, id: &str) -> Result<ObjectRow, StoreError> {
        let row = self.authorized(p, id, SCOPE_READ).await?;
        if row.state != State::Available {
            return Err(StoreError::State {
                state: row.state.as_str().to_owned(),
                what: "it cannot be read until committed",
            });
        }
        Ok(row)
    }

    /// An object's metadata.
    pub async fn info(&self, p: &Principal, id: &str) -> Result<ObjectInfo, StoreError> {
        const KIND: &str = "store.info";
        match self.authorized(p, id, SCOPE_READ).await {
            Ok(r) => {
                self.record(self.event(p, KIND, Outcome::Allow, "metadata read").with("object", id.to_owned())).await?;
                Ok(ObjectInfo::of(&r))
            }
            Err(e) => self.deny(p, KIND, Some(id), e).await,
        }
    }

    /// What [`Store::info`] checks and returns, without recording an event:
    /// for a caller that records the decision in its own event (the job
    /// service's `jobs.task.create` names every input it checked this way,
    /// and its refusals name the object).
    pub async fn check_readable(&self, p: &Principal, id: &str) -> Result<ObjectInfo, StoreError> {
        self.authorized(p, id, SCOPE_READ).await.map(|r| ObjectInfo::of(&r))
    }

    /// Opens an object for reading: the keys and roots a reader needs to
    /// check every part as it arrives.
    pub async fn open_read(&self, p: &Principal, id: &str) -> Result<DownloadTicket, StoreError> {
        const KIND: &str = "store.read";
        let row = self.or_deny(p, KIND, Some(id), self.readable(p, id).await).await?;
        let u = self.unlock(&row).await?;
        let part_roots: Vec<[u8; 32]> = self.meta.parts(id).await?.into_iter().map(|(_, r)| r).collect();
        self.record(
            self.event(p, KIND, Outcome::Allow, "scope and clearance allow reading")
                .with("object", id.to_owned())
                .with("classification", row.classification.as_str()),
        )
        .await?;
        Ok(DownloadTicket {
            info: ObjectInfo::of(&row),
            header: row.header.clone().unwrap_or_default(),
            data_key: u.data_key.clone(),
            trailer: row.trailer.clone().unwrap_or_default(),
            part_roots,
        })
    }

    /// The stored bytes of one part (ciphertext or, for integrity-only
    /// objects, plaintext, with tags).
    pub async fn read_part(&self, p: &Principal, id: &str, part: u64) -> Result<Bytes, StoreError> {
        const KIND: &str = "store.part.read";
        let row = async {
            let row = self.readable(p, id).await?;
            let count = geometry(&row).parts();
            if part >= count {
                return Err(StoreError::PartOutOfRange { part, count });
            }
            Ok(row)
        }
        .await;
        let row = self.or_deny(p, KIND, Some(id), row).await?;
        self.record(
            self.event(p, KIND, Outcome::Allow, "scope and clearance allow reading")
                .with("object", id.to_owned())
                .with("part", i64::try_from(part).unwrap_or(i64::MAX)),
        )
        .await?;
        let bytes = self.primary.store().get(&blobs::part_path(&row.id, part)).await?.bytes().await?;
        let expected = geometry(&row).part_wire_len(part);
        if bytes.len() as u64 != expected {
            return Err(StoreError::Damaged {
                id: row.id,
                why: format!("part {part} has {} bytes, expected {expected}", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Objects the caller may see: committed ones within its clearance, and
    /// its own uploads in progress. Optionally one dataset.
    pub async fn list(&self, p: &Principal, dataset: Option<&str>) -> Result<Vec<ObjectInfo>, StoreError> {
        const KIND: &str = "store.list";
        if let Err(e) = Self::need_scope(p, SCOPE_READ).and_then(|()| dataset.map_or(Ok(()), names::check_dataset)) {
            return self.deny(p, KIND, None, e).await;
        }
        let mut rows = self.meta.list(State::Available, 100_000).await?;
        rows.extend(self.meta.list(State::Uploading, 100_000).await?.into_iter().filter(|r| r.owner == p.subject));
        let out: Vec<ObjectInfo> = rows
            .iter()
            .filter(|r| r.classification <= p.clearance && dataset.is_none_or(|d| r.dataset == d))
            .filter(|r| p.task_allows(TaskUse::Read(&r.id)).is_ok())
            .map(ObjectInfo::of)
            .collect();
        self.record(
            self.event(p, KIND, Outcome::Allow, "objects within the caller's clearance")
                .with("count", i64::try_from(out.len()).unwrap_or(i64::MAX)),
        )
        .await?;
        Ok(out)
    }

    /// Re-reads every stored part and checks it at its position, each part
    /// root against the recorded one, the Merkle root, and the trailer.
    pub async fn verify(&self, p: &Principal, id: &str) -> Result<VerifyReport, StoreError> {
        const KIND: &str = "store.verify";
        let row = self.or_deny(p, KIND, Some(id), self.readable(p, id).await).await?;
        self.record(
            self.event(p, KIND, Outcome::Allow, "scope and clearance allow reading").with("object", id.to_owned()),
        )
        .await?;
        let u = self.unlock(&row).await?;
        let g = geometry(&row);
        let recorded: Vec<[u8; 32]> = self.meta.parts(id).await?.into_iter().map(|(_, r)| r).collect();
        let mut report = VerifyReport {
            id: id.to_owned(),
            ok: true,
            parts: 0,
            segments: 0,
            bytes: 0,
            merkle_root: row.merkle_root.clone().unwrap_or_default(),
            problems: Vec::new(),
        };
        let mut roots = Vec::with_capacity(g.parts() as usize);
        for part in 0..g.parts() {
            let (first, count) = g.part_segments_of(part);
            let bytes = match self.primary.store().get(&blobs::part_path(id, part)).await {
                Ok(r) => r.bytes().await?,
                Err(object_store::Error::NotFound { .. }) => {
                    report.problems.push(format!("part {part} is missing from {}", self.primary.description()));
                    roots.push([0; 32]);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            report.bytes += bytes.len() as u64;
            let u2 = u.clone();
            let total = g.segments();
            let leaves = blocking(move || u2.codec.check_part(first, total, &bytes)).await;
            match leaves {
                Ok(leaves) => {
                    let r = merkle_root(&leaves);
                    if recorded.get(part as usize) != Some(&r) {
                        report.problems.push(format!("part {part} does not match its recorded subtree root"));
                    }
                    roots.push(r);
                    report.segments += count;
                }
                Err(e) => {
                    report.problems.push(format!("part {part}: {e}"));
                    roots.push([0; 32]);
                }
            }
            report.parts += 1;
        }
        let root = hex::encode(combine_part_roots(&roots));
        match u.codec.open_trailer(row.trailer.as_deref().unwrap_or_default()) {
            Ok(t) => {
                if hex::encode(t.merkle_root) != report.merkle_root {
                    report.problems.push("the trailer's Merkle root differs from the recorded one".into());
                }
                if t.segment_count != g.segments() || t.plaintext_len != row.size {
                    report.problems.push("the trailer's segment count or length differs from the recorded size".into());
                }
            }
            Err(e) => report.problems.push(format!("trailer: {e}")),
        }
        if report.problems.is_empty() && root != report.merkle_root {
            report.problems.push("the parts do not combine to the recorded Merkle root".into());
        }
        report.ok = report.problems.is_empty();
        if !report.ok {
            self.record(
                self.event(p, KIND, Outcome::Deny, "object_damaged: verification failed")
                    .with("object", id.to_owned())
                    .with("problems", report.problems.join("; ")),
            )
            .await?;
        }
        Ok(report)
    }

    // ---- delete ----------------------------------------------------------

    /// Crypto-shreds an object: destroys every wrapped copy of its data key
    /// (its header and every replica's) in one transaction and scrubs them
    /// from the database files, then deletes its blobs everywhere. A crash
    /// after the first step leaves an unreadable object whose blobs are
    /// deleted at the next start.
    pub async fn delete(&self, p: &Principal, id: &str) -> Result<ShredReport, StoreError> {
        const KIND: &str = "store.delete";
        let row = async {
            p.task_allows(TaskUse::Other("deleting"))?;
            let row = self.authorized(p, id, SCOPE_WRITE).await?;
            if row.owner != p.subject && !p.has(SCOPE_ADMIN) {
                return Err(StoreError::NotOwner("delete it (or a data:admin token)"));
            }
            Ok(row)
        }
        .await;
        let row = self.or_deny(p, KIND, Some(id), row).await?;
        self.record(
            self.event(p, KIND, Outcome::Allow, "crypto-shred: wrapped keys destroyed, then blobs deleted")
                .with("object", id.to_owned())
                .with("state", row.state.as_str()),
        )
        .await?;
        self.shred(&row).await
    }

    async fn shred(&self, row: &ObjectRow) -> Result<ShredReport, StoreError> {
        let replicas = self.meta.replicas(&row.id).await?;
        let keys = u64::from(row.header.is_some()) + replicas.iter().filter(|r| r.header.is_some()).count() as u64;
        self.forget(&row.id);
        self.meta.shred(&row.id, self.now()).await?;
        self.meta.scrub().await?;
        let blobs = self.delete_blobs(&row.id).await?;
        self.meta.remove(&row.id).await?;
        Ok(ShredReport { id: row.id.clone(), wrapped_keys_destroyed: keys, blobs_deleted: blobs })
    }

    async fn delete_blobs(&self, id: &str) -> Result<u64, StoreError> {
        let mut n = 0;
        let stores = std::iter::once(&self.primary).chain(self.replicas.values().map(|r| &r.backend));
        for b in stores {
            let prefix = blobs::object_prefix(id);
            let listed: Vec<_> = b.store().list(Some(&prefix)).map_ok(|m| m.location).try_collect().await?;
            for loc in listed {
                match b.store().delete(&loc).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            b.remove_empty_prefix(&prefix);
        }
        Ok(n)
    }

    /// Finishes interrupted deletes and shreds uploads idle past the expiry.
    pub async fn recover(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for id in self.meta.shredded().await? {
            self.delete_blobs(&id).await?;
            self.meta.remove(&id).await?;
            n += 1;
        }
        let expiry = i64::try_from(self.cfg.upload_expiry_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        for id in self.meta.stale_uploads(self.now().saturating_sub(expiry)).await? {
            if let Some(row) = self.meta.get(&id).await? {
                self.record(
                    AuditEvent::new(
                        self.now_u(),
                        "store.upload.expire",
                        Outcome::Deny,
                        "upload idle past the expiry: shredded",
                    )
                    .with("object", id.clone()),
                )
                .await?;
                self.shred(&row).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    // ---- replication ------------------------------------------------------

    /// Copies every committed object that the policy lets leave and that
    /// `to` lacks, checking each copy's Merkle root end to end from the
    /// bytes read back from `to` (keyless: the leaves come from the stored
    /// tags). With a KEK for `to`, the copy's header is re-wrapped for it
    /// and stored beside the parts.
    pub async fn sync(
        &self,
        p: &Principal,
        to: &str,
        progress: &(dyn Fn(SyncEvent) + Send + Sync),
    ) -> Result<SyncSummary, StoreError> {
        const KIND: &str = "store.sync";
        let checked =
            Self::need_scope(p, SCOPE_ADMIN).and_then(|()| p.task_allows(TaskUse::Other("sync"))).and_then(|()| {
                self.replicas
                    .get(to)
                    .ok_or_else(|| StoreError::invalid("to", format!("no replica store named {to:?} is configured")))
            });
        let replica = self.or_deny(p, KIND, None, checked).await?;
        let mut todo = Vec::new();
        let mut summary = SyncSummary::default();
        for row in self.meta.list(State::Available, 1_000_000).await? {
            let rule = self.policy.rule(row.classification);
            if !rule.replicate {
                summary.skipped += 1;
                progress(SyncEvent::Skipped {
                    id: row.id.clone(),
                    reason: format!("{} data stays here: {}", row.classification, rule.reason),
                });
                continue;
            }
            if p.clearance < row.classification {
                summary.skipped += 1;
                progress(SyncEvent::Skipped { id: row.id.clone(), reason: "above the caller's clearance".into() });
                continue;
            }
            if self.meta.replicas(&row.id).await?.iter().any(|r| r.store == to) {
                summary.already += 1;
                continue;
            }
            todo.push(row);
        }
        let bytes: u64 = todo.iter().map(|r| geometry(r).wire_len()).sum();
        progress(SyncEvent::Plan { objects: todo.len() as u64, bytes, skipped: summary.skipped });
        self.record(
            self.event(p, KIND, Outcome::Allow, "replication by a data:admin token")
                .with("to", to.to_owned())
                .with("objects", i64::try_from(todo.len()).unwrap_or(i64::MAX)),
        )
        .await?;
        for row in todo {
            match self.copy_one(p, &row, to, replica, progress).await {
                Ok(ev) => {
                    summary.copied += 1;
                    summary.bytes += geometry(&row).wire_len();
                    progress(ev);
                }
                Err(e) => {
                    summary.failed += 1;
                    let _ = self.clean_replica(replica, &row.id).await;
                    self.record(
                        self.event(p, KIND, Outcome::Deny, format!("{}: {e}", e.code()))
                            .with("object", row.id.clone())
                            .with("to", to.to_owned()),
                    )
                    .await?;
                    progress(SyncEvent::Failed { id: row.id.clone(), error: e.to_string() });
                }
            }
        }
        Ok(summary)
    }

    async fn clean_replica(&self, replica: &Replica, id: &str) -> Result<(), StoreError> {
        let listed: Vec<_> =
            replica.backend.store().list(Some(&blobs::object_prefix(id))).map_ok(|m| m.location).try_collect().await?;
        for loc in listed {
            let _ = replica.backend.store().delete(&loc).await;
        }
        Ok(())
    }

    async fn copy_one(
        &self,
        p: &Principal,
        row: &ObjectRow,
        to: &str,
        replica: &Replica,
        progress: &(dyn Fn(SyncEvent) + Send + Sync),
    ) -> Result<SyncEvent, StoreError> {
        let g = geometry(row);
        let recorded: Vec<[u8; 32]> = self.meta.parts(&row.id).await?.into_iter().map(|(_, r)| r).collect();
        let (src, dst) = (self.primary.store().clone(), replica.backend.store().clone());
        let mut roots = Vec::with_capacity(recorded.len());
        let mut done = 0;
        for part in 0..g.parts() {
            let path = blobs::part_path(&row.id, part);
            let bytes = src.get(&path).await?.bytes().await?;
            dst.put(&path, PutPayload::from_bytes(bytes.clone())).await?;
            let back = dst.get(&path).await?.bytes().await?;
            // The keyless leaves below see only tags: compare the bytes too.
            if back != bytes {
                return Err(StoreError::Damaged {
                    id: row.id.clone(),
                    why: format!("the copy of part {part} in {to} reads back different bytes"),
                });
            }
            let (first, _) = g.part_segments_of(part);
            let (seg, total, size) = (g.segment_size as usize, g.segments(), row.size);
            let n = back.len() as u64;
            let leaves = blocking(move || part_leaves(seg, first, total, size, &back))
                .await
                .map_err(|source| StoreError::PartRejected { part, source })?;
            let r = merkle_root(&leaves);
            if recorded.get(part as usize) != Some(&r) {
                return Err(StoreError::Damaged {
                    id: row.id.clone(),
                    why: format!("the copy of part {part} in {to} has another root"),
                });
            }
            roots.push(r);
            done += n;
            progress(SyncEvent::Progress { id: row.id.clone(), done, total: g.wire_len() });
        }
        let root = hex::encode(combine_part_roots(&roots));
        if Some(&root) != row.merkle_root.as_ref() {
            return Err(StoreError::Damaged {
                id: row.id.clone(),
                why: format!("the copy in {to} has another Merkle root"),
            });
        }
        let (header, key_ids) = match &replica.recipient {
            Some(rec) => {
                let u = self.unlock(row).await?;
                let (rec, u2) = (rec.clone(), u.clone());
                let (bytes, ids) = blocking(move || -> Result<(Vec<u8>, Vec<String>), StoreError> {
                    let mut h = u2.header.clone();
                    h.set_recipients(vec![rec.wrap(&u2.data_key)?]).map_err(|e| StoreError::Db(e.to_string()))?;
                    Ok((h.encode(&u2.data_key), vec![rec.key_id().to_owned()]))
                })
                .await?;
                dst.put(&blobs::header_path(&row.id), PutPayload::from(bytes.clone())).await?;
                dst.put(&blobs::trailer_path(&row.id), PutPayload::from(row.trailer.clone().unwrap_or_default()))
                    .await?;
                (Some(bytes), ids)
            }
            None => (None, Vec::new()),
        };
        let rewrapped = header.is_some();
        self.meta
            .put_replica(&ReplicaRow {
                object_id: row.id.clone(),
                store: to.to_owned(),
                header,
                key_ids,
                merkle_root: root.clone(),
                synced_at: self.now(),
            })
            .await?;
        self.record(
            self.event(p, "store.sync.copy", Outcome::Allow, "copy matches the Merkle root end to end")
                .with("object", row.id.clone())
                .with("to", to.to_owned())
                .with("root", root.clone())
                .with("rewrapped", rewrapped),
        )
        .await?;
        Ok(SyncEvent::Copied { id: row.id.clone(), merkle_root: root, rewrapped })
    }

    /// The replicas of an object (for `info` and tests).
    pub async fn replicas_of(&self, id: &str) -> Result<Vec<ReplicaRow>, StoreError> {
        self.meta.replicas(id).await
    }

    /// A replica store's `object_store` client (for tests and tools).
    pub fn replica_store(&self, name: &str) -> Option<Arc<dyn ObjectStore>> {
        self.replicas.get(name).map(|r| r.backend.store().clone())
    }
}

/// The outcome of a replication run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncSummary {
    /// Objects copied and checked.
    pub copied: u64,
    /// Objects that were already there.
    pub already: u64,
    /// Objects the policy (or clearance) kept here.
    pub skipped: u64,
    /// Objects that failed (their partial copies removed).
    pub failed: u64,
    /// Stored bytes copied.
    pub bytes: u64,
}
