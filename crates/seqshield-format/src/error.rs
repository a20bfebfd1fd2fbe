//! Errors of the container format.

use std::io;

/// Why an object could not be parsed, authenticated or written.
///
/// Every variant has a stable machine-readable [`code`](FormatError::code),
/// and those that concern one segment name it through
/// [`segment`](FormatError::segment). No variant ever carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input does not start with the seqshield magic bytes.
    #[error("not a seqshield object (bad magic bytes)")]
    NotSeqshield,
    /// The version field names a version this build cannot read.
    #[error("unsupported format version {0} (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// A header field is outside its documented bound.
    #[error("header field {field} is out of bounds: {value} (allowed {min}..={max})")]
    HeaderOutOfBounds {
        /// The field's name in the spec.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// The header is structurally invalid.
    #[error("malformed header: {0}")]
    HeaderMalformed(&'static str),
    /// The header checksum does not match: the header was damaged.
    #[error("header is damaged (checksum mismatch)")]
    HeaderCorrupt,
    /// The header MAC does not verify: the header was altered, or the data
    /// key is wrong.
    #[error("header authentication failed: the header was altered or the key is wrong")]
    HeaderAuthFailed,
    /// The object ends before its trailer.
    #[error("object is truncated{}", after_segment.map(|i| format!(" after segment {i}")).unwrap_or_default())]
    Truncated {
        /// The last segment that was read intact, if any.
        after_segment: Option<u64>,
    },
    /// A segment failed authentication and does not belong anywhere in this
    /// object: it was damaged, or spliced in from another object.
    #[error("segment {index} failed authentication (damaged, or spliced from another object)")]
    SegmentAuthFailed {
        /// Position of the segment in the file, from 0.
        index: u64,
    },
    /// The segment at `index` is an authentic segment of this object, but it
    /// belongs at `original` (segments were reordered or duplicated).
    #[error("segment at position {index} is segment {original} of this object (segments reordered or duplicated)")]
    SegmentMisplaced {
        /// Position in the file.
        index: u64,
        /// Position the segment was written at.
        original: u64,
    },
    /// Segment `index` is the object's final segment but more data follows.
    #[error("object was extended: segment {index} is the final segment but more data follows")]
    Extended {
        /// Position of the real final segment.
        index: u64,
    },
    /// A non-final segment is empty, or a final segment is empty in a
    /// non-empty object.
    #[error("segment {index} is empty but is not the only segment")]
    EmptySegment {
        /// Position in the file.
        index: u64,
    },
    /// The trailer MAC does not verify.
    #[error("trailer authentication failed (damaged or forged trailer)")]
    TrailerAuthFailed,
    /// The trailer is authentic but disagrees with the segments read.
    #[error("trailer does not match the segments: {0}")]
    TrailerMismatch(&'static str),
    /// The object has more segments than [`MAX_SEGMENTS`](crate::limits::MAX_SEGMENTS).
    #[error("object exceeds the maximum of 2^48 segments")]
    TooManySegments,
    /// A part (see [`part`](crate::part)) claims a position its object does
    /// not have: `first_index` is not below `total_segments`, or
    /// `total_segments` is 0.
    #[error("part starts at segment {first_index}, but the object has {total_segments} segments")]
    PartOutOfRange {
        /// The segment the part claims to start at.
        first_index: u64,
        /// The object's segment count as given.
        total_segments: u64,
    },
    /// A part's bytes are not a run of whole segments at its position: a
    /// segment is cut short, or the part runs past the object's final
    /// segment. (A part cut exactly at a segment boundary is a shorter valid
    /// part; see [`part`](crate::part).)
    #[error("part starting at segment {first_index} has a wrong length ({len} bytes): segment {index} is cut short or lies past the end of the object")]
    PartLength {
        /// The segment the part starts at.
        first_index: u64,
        /// The part's length in bytes (wire bytes, or plaintext when sealing).
        len: u64,
        /// The first segment position the bytes do not fit.
        index: u64,
    },
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl FormatError {
    /// A stable identifier for scripts and JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotSeqshield => "not_seqshield",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::HeaderOutOfBounds { .. } => "header_out_of_bounds",
            Self::HeaderMalformed(_) => "header_malformed",
            Self::HeaderCorrupt => "header_corrupt",
            Self::HeaderAuthFailed => "header_auth_failed",
            Self::Truncated { .. } => "truncated",
            Self::SegmentAuthFailed { .. } => "segment_auth_failed",
            Self::SegmentMisplaced { .. } => "segment_misplaced",
            Self::Extended { .. } => "extended",
            Self::EmptySegment { .. } => "empty_segment",
            Self::TrailerAuthFailed => "trailer_auth_failed",
            Self::TrailerMismatch(_) => "trailer_mismatch",
            Self::TooManySegments => "too_many_segments",
            Self::PartOutOfRange { .. } => "part_out_of_range",
            Self::PartLength { .. } => "part_length",
            Self::Io(_) => "io",
        }
    }

    /// The first bad segment, when the error concerns one.
    pub fn segment(&self) -> Option<u64> {
        match self {
            Self::SegmentAuthFailed { index }
            | Self::SegmentMisplaced { index, .. }
            | Self::Extended { index }
            | Self::EmptySegment { index }
            | Self::PartLength { index, .. } => Some(*index),
            Self::PartOutOfRange { first_index, .. } => Some(*first_index),
            Self::Truncated { after_segment } => after_segment.map(|i| i + 1),
            _ => None,
        }
    }

    /// Finds a `FormatError` inside an `io::Error` produced by this crate's
    /// `Read` adapters.
    pub fn from_io(err: &io::Error) -> Option<&FormatError> {
        err.get_ref().and_then(|inner| inner.downcast_ref::<FormatError>())
    }

    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Self::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Turns an `io::Error` from a reader of this crate back into a
/// `FormatError` when it carries one.
pub fn classify_io_error(err: io::Error) -> FormatError {
    if FormatError::from_io(&err).is_some() {
        let inner = err.into_inner().expect("checked above");
        match inner.downcast::<FormatError>() {
            Ok(fe) => *fe,
            Err(other) => FormatError::Io(io::Error::new(io::ErrorKind::InvalidData, other)),
        }
    } else {
        FormatError::Io(err)
    }
}
