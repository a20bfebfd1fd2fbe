//! Store errors: each has a stable code, an HTTP status, and a message that
//! never quotes data, keys or tokens.

use seqshield_format::FormatError;

/// Why a store operation was refused or failed. Nothing changed unless the
/// variant says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such object (or one the caller may not know of).
    #[error("no object with id {0}")]
    NotFound(String),
    /// An id that is not an object id at all.
    #[error("not an object id (expected \"obj_\" and 32 lowercase hex digits)")]
    BadId,
    /// A request field is invalid.
    #[error("{field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The token lacks a scope.
    #[error("the token lacks the {0} scope")]
    Scope(&'static str),
    /// The token's clearance is below the object's classification.
    #[error("the token's clearance ({clearance}) is below the object's classification ({classification})")]
    Clearance {
        /// The token's clearance.
        clearance: &'static str,
        /// The object's classification.
        classification: &'static str,
    },
    /// Only the object's owner (or an admin) may do this.
    #[error("only the object's owner may {0}")]
    NotOwner(&'static str),
    /// A worker's token is bound to one task, and this is outside it.
    #[error("this token is bound to task {task}: {what}")]
    OutsideTask {
        /// The task.
        task: String,
        /// What was refused.
        what: String,
    },
    /// The storage policy forbids this (e.g. controlled data on a file KEK).
    #[error("refused by the storage policy: {0}")]
    Policy(String),
    /// The object is not in a state that allows this.
    #[error("the object is {state}; {what}")]
    State {
        /// The object's state.
        state: String,
        /// What was attempted.
        what: &'static str,
    },
    /// A part outside `0..part_count`.
    #[error("part {part} is out of range (the object has {count} parts)")]
    PartOutOfRange {
        /// The part.
        part: u64,
        /// The object's part count.
        count: u64,
    },
    /// A part too far ahead of the first missing one.
    #[error("part {part} is out of order: parts are accepted from {first_missing} to {window_end} (the first missing part plus the window)")]
    PartOutOfOrder {
        /// The part.
        part: u64,
        /// The first part not yet received.
        first_missing: u64,
        /// One past the last acceptable part.
        window_end: u64,
    },
    /// A part that was already received (or is being received).
    #[error("part {0} was already received")]
    PartDuplicate(u64),
    /// A part of the wrong length.
    #[error("part {part} has {got} bytes; it must have exactly {expected}")]
    PartLength {
        /// The part.
        part: u64,
        /// Bytes received.
        got: u64,
        /// Bytes expected.
        expected: u64,
    },
    /// A part larger than the object's part size allows.
    #[error("part {part} is larger than {limit} bytes")]
    PartTooLarge {
        /// The part.
        part: u64,
        /// The limit.
        limit: u64,
    },
    /// A part that does not authenticate at its position.
    #[error("part {part} failed verification: {source}")]
    PartRejected {
        /// The part.
        part: u64,
        /// The segment-level finding.
        source: FormatError,
    },
    /// A part whose Merkle subtree root differs from the one the sender claims.
    #[error("part {0} does not match the Merkle root the sender declared for it")]
    PartRootMismatch(u64),
    /// Some parts are missing at commit.
    #[error("{missing} of {count} parts are missing (first: {first})")]
    Incomplete {
        /// How many.
        missing: u64,
        /// Of how many.
        count: u64,
        /// The first missing part.
        first: u64,
    },
    /// The sender's Merkle root differs from the received object's.
    #[error("the object's Merkle root does not match the one the sender declared")]
    RootMismatch,
    /// Stored bytes failed verification.
    #[error("stored object {id} is damaged: {why}")]
    Damaged {
        /// The object.
        id: String,
        /// The finding.
        why: String,
    },
    /// The backend ran out of space.
    #[error("the store is out of space: {0}")]
    NoSpace(String),
    /// A key operation failed.
    #[error("key operation failed: {0}")]
    Key(#[from] seqshield_keys::KeyError),
    /// The audit sink refused (fail closed: the operation did not happen).
    #[error("the audit log refused the event; the operation was not carried out: {0}")]
    Audit(String),
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Db(String),
    /// The blob backend failed.
    #[error("object storage: {0}")]
    Blob(String),
}

impl StoreError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::BadId => "invalid_id",
            Self::Invalid { .. } => "invalid_request",
            Self::Scope(_) => "insufficient_scope",
            Self::Clearance { .. } => "insufficient_clearance",
            Self::NotOwner(_) => "not_owner",
            Self::OutsideTask { .. } => "outside_task",
            Self::Policy(_) => "policy_refused",
            Self::State { .. } => "wrong_state",
            Self::PartOutOfRange { .. } => "part_out_of_range",
            Self::PartOutOfOrder { .. } => "part_out_of_order",
            Self::PartDuplicate(_) => "part_duplicate",
            Self::PartLength { .. } => "part_length",
            Self::PartTooLarge { .. } => "part_too_large",
            Self::PartRejected { .. } => "part_rejected",
            Self::PartRootMismatch(_) => "part_root_mismatch",
            Self::Incomplete { .. } => "incomplete",
            Self::RootMismatch => "root_mismatch",
            Self::Damaged { .. } => "object_damaged",
            Self::NoSpace(_) => "no_space",
            Self::Key(_) => "key_error",
            Self::Audit(_) => "audit_unavailable",
            Self::Db(_) => "server_error",
            Self::Blob(_) => "server_error",
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::BadId | Self::Invalid { .. } | Self::PartLength { .. } => 400,
            Self::Scope(_)
            | Self::Clearance { .. }
            | Self::NotOwner(_)
            | Self::OutsideTask { .. }
            | Self::Policy(_) => 403,
            Self::State { .. }
            | Self::PartOutOfOrder { .. }
            | Self::PartDuplicate(_)
            | Self::Incomplete { .. }
            | Self::PartOutOfRange { .. } => 409,
            Self::PartTooLarge { .. } => 413,
            Self::PartRejected { .. } | Self::PartRootMismatch(_) | Self::RootMismatch => 422,
            Self::NoSpace(_) => 507,
            Self::Audit(_) => 503,
            Self::Damaged { .. } | Self::Key(_) | Self::Db(_) | Self::Blob(_) => 500,
        }
    }

    /// Whether the message may be shown to the client. Server-side faults
    /// are logged and answered with their code only.
    pub fn is_client_facing(&self) -> bool {
        self.status() < 500 || matches!(self, Self::NoSpace(_) | Self::Audit(_))
    }

    pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> Self {
        Self::Invalid { field, why: why.into() }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.to_string())
    }
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        if is_no_space(&e) {
            return Self::NoSpace(e.to_string());
        }
        Self::Blob(e.to_string())
    }
}

fn is_no_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
                return true;
            }
        }
        cur = err.source();
    }
    e.to_string().contains("No space left on device")
}
