//! seqshield's audit log: every security decision, tamper-evident and
//! crash-safe.
//!
//! - [`event`]: the typed, versioned event schema (who, action, object,
//!   decision, rule, reason, request id, time, details), its canonical JSON
//!   encoding, and the [privacy rule](event::privacy) that keeps secrets
//!   and genomic data out;
//! - [`log`]: [`AuditLog`], an append-only file of checksummed records with
//!   group commit (an append returns once `fdatasync` covered it) and
//!   recovery that cuts a torn tail; its entries are the leaves of an
//!   RFC 9162 Merkle tree (`seqshield-merkle`), with inclusion and
//!   consistency proofs;
//! - [`verify`]: recompute a log file's tree head, read-only;
//! - with feature `auth`, `AuditLog` is the token service's
//!   `seqshield_auth::audit::AuditSink`.
//!
//! ```
//! use seqshield_audit::{AuditLog, Decision, Event, Timestamp};
//! use seqshield_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
//!
//! let dir = tempfile::tempdir()?;
//! let log = AuditLog::open(dir.path())?;
//! let deny = Event::builder(Timestamp::now(), "policy.decision", Decision::Deny)
//!     .subject("alice")
//!     .rule("mfa-for-restricted")
//!     .reason("MFA required")
//!     .detail("stage", "token")
//!     .build()?;
//! let i = log.append(&deny)?; // on disk when this returns
//! let old = log.tree_head();
//! log.append(&Event::builder(Timestamp::now(), "login.totp", Decision::Allow).subject("alice").build()?)?;
//!
//! let head = log.tree_head();
//! let leaf = leaf_hash(&log.entry(i)?);
//! assert!(verify_inclusion(&leaf, i, head.size, &log.inclusion_proof(i, head.size)?, &head.root));
//! let proof = log.consistency_proof(old.size, head.size)?;
//! assert!(verify_consistency(old.size, head.size, &old.root, &head.root, &proof));
//!
//! // Secrets never get in.
//! assert!(Event::builder(Timestamp::now(), "login.password", Decision::Deny).detail("password", "hunter2").build().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod error;
pub mod event;
pub mod head;
pub mod log;
pub mod record;
#[cfg(feature = "auth")]
mod sink;
pub mod verify;
pub mod witness;

/// The RFC 9162 tree, re-exported for verifiers.
pub use seqshield_merkle as merkle;

pub use error::{Error, EventError, HeadError};
pub use event::{Decision, DetailValue, Details, Event, EventBuilder, Timestamp, Who};
pub use head::SignedTreeHead;
pub use log::{AuditLog, HeadPolicy, HeadTimer, TornTail, TreeHead};
pub use verify::{verify_file, verify_log, Finding, Problem, Report, Verified, VerifyOptions};
pub use witness::Checkpoint;
