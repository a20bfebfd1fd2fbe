//! Errors: one enum for events, one for the log (which wraps the first).
//!
//! No message ever quotes a refused value: only field names, sizes and
//! offsets, since the value may be exactly what must not leak.

use std::io;
use std::path::PathBuf;

use crate::event::Leak;
use crate::record::Damage;

/// Why an event could not be built or decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A field that must not be empty is.
    #[error("event field {field} is empty")]
    Empty {
        /// The field.
        field: String,
    },
    /// A field is longer than its bound.
    #[error("event field {field} is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// The field.
        field: String,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A field holds a control, line-separator or bidirectional-override
    /// character (which could forge how a log line reads).
    #[error("event field {field} contains a control, line-separator or bidirectional-override character")]
    ForbiddenCharacter {
        /// The field.
        field: String,
    },
    /// A field breaks its syntax.
    #[error("event field {field} is malformed: {why}")]
    Malformed {
        /// The field.
        field: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A field failed the privacy rule.
    #[error("event field {field} refused: it {leak}")]
    Private {
        /// The field (a detail's is `details.<key>`).
        field: String,
        /// What it looked like.
        leak: Leak,
    },
    /// More details than allowed.
    #[error("event has {count} details, more than the {max} allowed")]
    TooManyDetails {
        /// How many.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// An integer detail beyond ±(2^53 − 1).
    #[error("event field {field} is outside the safe integer range")]
    IntegerOutOfRange {
        /// The field.
        field: String,
    },
    /// A time after 9999-12-31T23:59:59Z.
    #[error("time {unix} is after 9999-12-31T23:59:59Z")]
    TimeOutOfRange {
        /// The Unix time given.
        unix: u64,
    },
    /// An entry that is not an event's JSON.
    #[error("entry is not an audit event ({class}, line {line} column {column})")]
    NotAnEvent {
        /// Where, 1-based.
        line: usize,
        /// Where, 1-based.
        column: usize,
        /// What kind of problem.
        class: &'static str,
    },
    /// An entry of a schema version this build does not read.
    #[error("entry has event version {0}; this build reads version 1")]
    UnsupportedVersion(u64),
    /// An entry whose `time` and `unix` fields name different times.
    #[error("entry's time and unix fields disagree")]
    TimeMismatch,
    /// An entry that decodes but is not in canonical form.
    #[error("entry is not in canonical form")]
    NotCanonical,
}

/// What is wrong with one signed tree head.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The line is not a head.
    #[error("not a signed tree head: {0}")]
    Malformed(String),
    /// The origin is empty, too long or not printable ASCII.
    #[error("bad origin line")]
    BadOrigin,
    /// Signed by another key than the one expected.
    #[error("signed by key {signed_by}, not the expected key {expected}")]
    OtherKey {
        /// The key the head names.
        signed_by: String,
        /// The key it should name.
        expected: String,
    },
    /// An algorithm the key does not use.
    #[error("signature algorithm {0:?} does not match the key")]
    Algorithm(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// Why the log could not be opened, appended to or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating the log directory failed.
    #[error("audit log directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Opening a file failed.
    #[error("audit log {path}: open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Another process (or another `AuditLog` in this one) holds the log.
    #[error("audit log {path} is already open elsewhere: {source}")]
    Locked {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading failed.
    #[error("audit log {path}: read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Writing failed. The log refuses appends from then on.
    #[error("audit log {path}: write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `fdatasync`/`fsync` failed. The log refuses appends from then on.
    #[error("audit log {path}: sync: {source}")]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Cutting a torn tail failed.
    #[error("audit log {path}: truncate: {source}")]
    Truncate {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An earlier write or sync failed; the log refuses appends until it is
    /// reopened (a gap in an audit log must not be papered over).
    #[error("audit log {path} refuses appends after an earlier failure: {kind}")]
    Poisoned {
        /// The file.
        path: PathBuf,
        /// The kind of the first failure.
        kind: io::ErrorKind,
    },
    /// The file does not start with the audit log magic bytes.
    #[error("{path} is not a seqshield audit log (bad magic bytes)")]
    NotAuditLog {
        /// The file.
        path: PathBuf,
    },
    /// A damaged record further from the end than a crash can leave: the
    /// log is not cut, a person must look.
    #[error("audit log {path} is damaged at byte {offset} ({damage}), {tail} bytes before its end")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the first damaged record starts.
        offset: u64,
        /// Bytes from there to the end of the file.
        tail: u64,
        /// What is wrong with it.
        damage: Damage,
    },
    /// An entry larger than [`MAX_ENTRY_LEN`](crate::record::MAX_ENTRY_LEN).
    #[error("entry of {len} bytes exceeds the {max}-byte bound")]
    EntryTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// No entry at that index (yet).
    #[error("no entry {index}: the log has {len}")]
    NoSuchEntry {
        /// The index asked for.
        index: u64,
        /// The log's size.
        len: u64,
    },
    /// A tree size beyond the log's.
    #[error("tree size {size} is beyond the log's {len} entries")]
    SizeBeyondLog {
        /// The size asked for.
        size: u64,
        /// The log's size.
        len: u64,
    },
    /// An entry of the file is not a canonical event.
    #[error("entry {index} is not a valid event: {source}")]
    BadEntry {
        /// Its index.
        index: u64,
        /// Why.
        source: EventError,
    },
    /// An event could not be built or decoded.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Signing a tree head failed.
    #[error("signing the tree head failed: {0}")]
    Sign(String),
    /// An origin that is not one line of printable ASCII (at most 128 bytes).
    #[error("bad log origin {0:?}: one line of printable ASCII, at most 128 bytes")]
    BadOrigin(String),
    /// A witness checkpoint that cannot be used.
    #[error("bad witness checkpoint {0}")]
    BadCheckpoint(String),
    /// The log has no signing key.
    #[error("this audit log was opened without a signing key")]
    Unsigned,
    /// A line of the heads file is not a valid head.
    #[error("heads file {path}, head {number}: {problem}")]
    BadHead {
        /// The heads file.
        path: PathBuf,
        /// Which head (1-based line).
        number: usize,
        /// What is wrong.
        problem: HeadError,
    },
    /// The latest signed head is beyond the log: acknowledged entries are
    /// missing (the file was cut or replaced). Refused, nothing changed.
    #[error(
        "audit log {path} has {len} entries but a signed tree head covers {size}: entries {len}..{size} are missing"
    )]
    HeadBeyondLog {
        /// The log file.
        path: PathBuf,
        /// The head's size.
        size: u64,
        /// The log's size.
        len: u64,
    },
    /// The log's tree at a signed head's size has another root: the log
    /// was changed after it was signed. Refused, nothing changed.
    #[error("audit log {path} does not match its signed tree head at size {size}: run `seqshield audit verify`")]
    HeadMismatch {
        /// The log file.
        path: PathBuf,
        /// The head's size.
        size: u64,
    },
    /// A proof was asked for with arguments that name no proof.
    #[error(transparent)]
    Proof(#[from] seqshield_merkle::ProofError),
}
