//! Why the signing key ring could not be opened, rotated or saved.

use std::path::PathBuf;

/// Why a key-ring operation failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A [`super::SigningConfig`] value is out of range.
    #[error("signing config: {field} {reason}")]
    BadConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A system call on a key-ring file or directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation (`open`, `write`, `fsync`, `rename`…).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is larger than we read.
    #[error("{path}: larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: u64,
    },
    /// A private-key file lets group or others in.
    #[error("{path}: mode {mode:04o} lets group or others access a private signing key; `chmod 600` it")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `keys.json` does not parse.
    #[error("{path}: {source}")]
    MetadataParse {
        /// The file.
        path: PathBuf,
        /// The parse error (the file holds public keys only).
        source: serde_json::Error,
    },
    /// `keys.json` parses but is not a valid key ring.
    #[error("{path}: {reason}")]
    MetadataInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in fixed words.
        reason: &'static str,
    },
    /// The KEK could not wrap or unwrap a private key's data key (wrong
    /// KEK, unreachable token…).
    #[error("{path}: {source}")]
    Kek {
        /// The private-key file.
        path: PathBuf,
        /// The KEK's error.
        source: seqshield_keys::KeyError,
    },
    /// A private-key container is damaged or not one of ours.
    #[error("{path}: {source}")]
    Container {
        /// The private-key file.
        path: PathBuf,
        /// The container error.
        source: seqshield_format::FormatError,
    },
    /// A private-key file decrypted, but does not hold the key its name
    /// and `keys.json` promise.
    #[error("{path}: the private key does not match key id {kid}")]
    KeyMismatch {
        /// The private-key file.
        path: PathBuf,
        /// The key id expected.
        kid: String,
    },
    /// The ring already holds the most keys it may; wait for retired keys'
    /// publish window to pass (and prune) before rotating again.
    #[error("the key ring holds {max} keys already; prune retired keys before rotating")]
    TooManyKeys {
        /// The bound ([`super::MAX_KEYS`]).
        max: usize,
    },
    /// aws-lc failed (key generation, encoding).
    #[error("crypto failure: {op}")]
    Crypto {
        /// The operation.
        op: &'static str,
    },
}
