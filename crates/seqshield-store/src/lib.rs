//! seqshield's encrypted object store.
//!
//! - **Metadata** ([`meta`]) in SQLite or PostgreSQL through `sqlx`, with
//!   versioned migrations: id, name, dataset, classification, owner, size,
//!   Merkle root, key ids, state, timestamps, and the sealed header (the
//!   wrapped data key) and trailer.
//! - **Bytes** ([`blobs`]) through the `object_store` crate: local disk by
//!   default, Azure Blob, S3; one blob per transfer part.
//! - **Selective encryption** ([`policy`]): per classification, encrypted
//!   or integrity-only, and whether the KEK must be in an HSM.
//! - **Transfers** ([`store`]): parts are power-of-two runs of segments,
//!   checked at their position as they arrive; an object becomes visible
//!   only at an atomic commit once every part is there and the Merkle root
//!   matches; deletes crypto-shred; every decision is an audit event.

#![forbid(unsafe_code)]

pub mod blobs;
pub mod error;
pub mod geometry;
pub mod meta;
pub mod names;
pub mod policy;
pub mod store;

pub use blobs::{Backend, BackendConfig};
pub use error::StoreError;
pub use geometry::{combine_part_roots, Geometry};
pub use policy::StoragePolicy;
pub use store::{
    DownloadTicket, NewObject, ObjectInfo, PartReceipt, Principal, ReplicaConfig, ShredReport, Store, StoreConfig,
    SyncEvent, SyncSummary, UploadTicket, VerifyReport,
};
