//! Where the bytes go: `object_store` backends (local disk, Azure Blob, S3)
//! and the layout of an object in them.
//!
//! An object's segment bytes are stored as one blob per part,
//! `data/<id>/<part, 10 digits>`. Headers (wrapped keys) and trailers stay
//! in the metadata database, so the blob store never holds a key: deleting
//! the database row crypto-shreds every copy. A replica made for a cloud KEK
//! also gets `data/<id>/header` and `data/<id>/trailer`, so that it is a
//! self-contained object for the cloud side.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::StoreError;

/// One backend, as written in the gateway's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendConfig {
    /// A directory on a local (or mounted) file system.
    Local {
        /// The directory (created 0700 if missing).
        path: PathBuf,
    },
    /// An Azure Blob Storage container.
    Azure {
        /// The storage account (`devstoreaccount1` for the emulator).
        account: String,
        /// The container (must exist).
        container: String,
        /// A file holding the account's shared key (base64), read at start.
        #[serde(default)]
        access_key_file: Option<PathBuf>,
        /// A non-default endpoint (`https://…`; with `insecure_emulator`, a
        /// loopback `http://` one, default the local Azurite).
        #[serde(default)]
        endpoint: Option<String>,
        /// The Azurite emulator: its well-known, public account key and
        /// plain HTTP to a loopback address. Never for real data; warned
        /// about and audited.
        #[serde(default)]
        insecure_emulator: bool,
    },
    /// An S3 bucket (or an S3-compatible service).
    S3 {
        /// The bucket (must exist).
        bucket: String,
        /// The region.
        region: String,
        /// A non-default endpoint (`https://…`), e.g. an S3-compatible service.
        #[serde(default)]
        endpoint: Option<String>,
        /// A file holding `ACCESS_KEY_ID:SECRET_ACCESS_KEY`; without it the
        /// standard AWS environment and instance credentials are used.
        #[serde(default)]
        credentials_file: Option<PathBuf>,
    },
}

/// The Azurite emulator's blob endpoint (../shared/HARNESS.md).
pub const AZURITE_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

impl BackendConfig {
    /// A short description without secrets, for logs and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Self::Local { path } => format!("local directory {}", path.display()),
            Self::Azure { account, container, insecure_emulator, .. } => {
                let emu = if *insecure_emulator { " (Azurite emulator, plain HTTP)" } else { "" };
                format!("Azure Blob {account}/{container}{emu}")
            }
            Self::S3 { bucket, region, .. } => format!("S3 bucket {bucket} ({region})"),
        }
    }

    /// Whether this backend switches a control off (plain HTTP, a public key).
    pub fn is_insecure(&self) -> bool {
        matches!(self, Self::Azure { insecure_emulator: true, .. })
    }
}

/// An opened backend.
#[derive(Clone, Debug)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    description: String,
}

impl Backend {
    /// Opens a backend. Relative local paths are taken from `base`.
    pub fn open(cfg: &BackendConfig, base: &FsPath) -> Result<Self, StoreError> {
        let description = cfg.describe();
        match cfg {
            BackendConfig::Local { path } => {
                let root = base.join(path);
                create_private_dir(&root)?;
                let fs = LocalFileSystem::new_with_prefix(&root)?;
                Ok(Self { store: Arc::new(fs), local_root: Some(root), description })
            }
            BackendConfig::Azure { account, container, access_key_file, endpoint, insecure_emulator } => {
                let mut b = MicrosoftAzureBuilder::new().with_container_name(container);
                if *insecure_emulator {
                    let ep = endpoint.clone().unwrap_or_else(|| AZURITE_ENDPOINT.to_owned());
                    if !is_loopback_http(&ep) {
                        return Err(StoreError::invalid(
                            "insecure_emulator",
                            "the emulator is only allowed on a loopback http:// endpoint",
                        ));
                    }
                    tracing::warn!(target: "seqshield", "store backend {description}: the Azurite emulator's public key over plain HTTP (insecure_emulator); never for real data");
                    b = b.with_use_emulator(true).with_allow_http(true).with_endpoint(ep);
                    if account != "devstoreaccount1" {
                        return Err(StoreError::invalid("account", "the emulator's account is devstoreaccount1"));
                    }
                } else {
                    b = b.with_account(account);
                    if let Some(ep) = endpoint {
                        require_https(ep)?;
                        b = b.with_endpoint(ep.clone());
                    }
                    if let Some(f) = access_key_file {
                        let key = read_secret(f)?;
                        b = b.with_access_key(key.trim());
                    }
                }
                Ok(Self { store: Arc::new(b.build()?), local_root: None, description })
            }
            BackendConfig::S3 { bucket, region, endpoint, credentials_file } => {
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(region);
                if let Some(ep) = endpoint {
                    require_https(ep)?;
                    b = b.with_endpoint(ep);
                }
                if let Some(f) = credentials_file {
                    let text = read_secret(f)?;
                    let (id, secret) = text.trim().split_once(':').ok_or_else(|| {
                        StoreError::invalid("credentials_file", "expected ACCESS_KEY_ID:SECRET_ACCESS_KEY")
                    })?;
                    b = b.with_access_key_id(id).with_secret_access_key(secret);
                }
                Ok(Self { store: Arc::new(b.build()?), local_root: None, description })
            }
        }
    }

    /// The `object_store` client.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// What it is, without secrets.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Makes the given blobs durable on a local backend (`object_store`
    /// writes local files with a rename but never `fsync`s them); a no-op
    /// for cloud backends, which acknowledge only durable writes.
    pub fn make_durable(&self, paths: &[Path]) -> Result<(), StoreError> {
        let Some(root) = &self.local_root else { return Ok(()) };
        let mut dirs = std::collections::BTreeSet::new();
        for p in paths {
            let file = root.join(p.as_ref());
            std::fs::File::open(&file)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::Blob(format!("cannot sync {}: {e}", file.display())))?;
            if let Some(d) = file.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        for d in dirs {
            std::fs::File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::Blob(format!("cannot sync {}: {e}", d.display())))?;
        }
        Ok(())
    }
}

impl Backend {
    /// Removes the directory a local backend leaves behind once every blob
    /// under `prefix` is deleted (`object_store` deletes files only).
    pub fn remove_empty_prefix(&self, prefix: &Path) {
        if let Some(root) = &self.local_root {
            let _ = std::fs::remove_dir(root.join(prefix.as_ref()));
        }
    }
}

/// The blob holding part `part` of object `id`.
pub fn part_path(id: &str, part: u64) -> Path {
    Path::from(format!("data/{id}/{part:010}"))
}

/// The prefix under which all of an object's blobs live.
pub fn object_prefix(id: &str) -> Path {
    Path::from(format!("data/{id}"))
}

/// A replica's header blob.
pub fn header_path(id: &str) -> Path {
    Path::from(format!("data/{id}/header"))
}

/// A replica's trailer blob.
pub fn trailer_path(id: &str) -> Path {
    Path::from(format!("data/{id}/trailer"))
}

fn read_secret(path: &FsPath) -> Result<Zeroizing<String>, StoreError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| StoreError::invalid("store credentials", format!("cannot read {}: {}", path.display(), e.kind())))
}

fn require_https(endpoint: &str) -> Result<(), StoreError> {
    if endpoint.starts_with("https://") {
        Ok(())
    } else {
        Err(StoreError::invalid("endpoint", "must be https:// (plain HTTP is only allowed for the Azurite emulator)"))
    }
}

fn is_loopback_http(endpoint: &str) -> bool {
    let Ok(u) = url::Url::parse(endpoint) else { return false };
    u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        }
}

/// Creates `dir` (and parents) with mode 0700 for the last component.
pub fn create_private_dir(dir: &FsPath) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Blob(format!("cannot create {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_only_on_loopback_and_endpoints_need_https() {
        assert!(is_loopback_http("http://127.0.0.1:10000/devstoreaccount1"));
        assert!(!is_loopback_http("http://10.0.0.1:10000/x"));
        assert!(!is_loopback_http("https://127.0.0.1/x"));
        assert!(require_https("http://s3.example").is_err());
        let cfg: BackendConfig = toml::from_str(
            "kind = \"azure\"\naccount = \"devstoreaccount1\"\ncontainer = \"c\"\ninsecure_emulator = true\nendpoint = \"http://10.1.1.1:10000/devstoreaccount1\"",
        )
        .unwrap();
        assert!(cfg.is_insecure());
        let err = Backend::open(&cfg, FsPath::new("/")).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        assert!(toml::from_str::<BackendConfig>("kind = \"local\"\npath = \"x\"\nextra = 1").is_err());
    }
}
