//! Errors of key handling. None carries key material or passphrases.

use std::path::PathBuf;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No header entry names a key we hold.
    #[error("wrong key: the object is wrapped for {in_object:?}, but the available key is {available:?}")]
    NoMatchingRecipient {
        /// Key ids we hold.
        available: Vec<String>,
        /// Key ids in the object.
        in_object: Vec<String>,
    },
    /// The entry names our key but does not unwrap with it.
    #[error("wrong key: the entry for key {key_id} does not unwrap (damaged entry or different key with the same id)")]
    UnwrapFailed {
        /// The key id of the entry.
        key_id: String,
    },
    /// The entry uses an algorithm this KEK does not implement.
    #[error("key {key_id}: unsupported wrapping algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The key id.
        key_id: String,
        /// The algorithm named in the entry.
        algorithm: String,
    },
    /// The container format rejected the header.
    #[error(transparent)]
    Format(#[from] seqshield_format::FormatError),
    /// A file system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
