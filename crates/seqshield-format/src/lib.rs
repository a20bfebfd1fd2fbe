//! The seqshield encrypted container format.
//!
//! An object is a header (recipients, classification, salt; checksummed and
//! MACed), a sequence of AES-256-GCM segments in the STREAM construction
//! (segment index and final-segment flag bound into each nonce), and a
//! trailer holding the segment count, plaintext length and the RFC 9162
//! Merkle root over the segments, MACed with HMAC-SHA256. The full
//! specification is `docs/format.md`.
//!
//! For data that is public anyway, an object can be *integrity-only*
//! ([`Header::with_integrity_only`]): each segment holds its plaintext in the
//! clear followed by a GMAC tag under the same STREAM nonce, with the same
//! layout, Merkle tree, trailer and tamper detection. Every reader and
//! writer here handles both modes.
//!
//! [`part`] seals and checks runs of whole segments on their own, for an
//! object store that moves objects in parts.
//!
//! This crate is pure: no network, no async runtime, no key management.
//! Key-encryption keys live in `seqshield-keys`.
//!
//! ```
//! use std::io::{Read, Write};
//! use seqshield_format::{Classification, DataKey, Header, StreamReader, WrappedKey, Writer, SealedHeader};
//!
//! let key = DataKey::generate();
//! // A real caller wraps `key` with a KEK from seqshield-keys.
//! let recipient = WrappedKey { key_id: "demo".into(), algorithm: "none".into(), wrapped: vec![0] };
//! let header = Header::new(Classification::Internal, "text/plain", vec![recipient])?;
//! let mut w = Writer::new(Vec::new(), &header, &key)?;
//! w.write_all(b"ACGTACGT")?;
//! let object = w.finish()?.inner;   // finish() MUST be called
//!
//! let mut input = object.as_slice();
//! let sealed = SealedHeader::read_from(&mut input)?;
//! let header = sealed.authenticate(&key)?;
//! let mut plain = Vec::new();
//! StreamReader::new(input, &header, &key).read_to_end(&mut plain)?;
//! assert_eq!(plain, b"ACGTACGT");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod c4gh;
pub mod classification;
pub mod error;
pub mod header;
pub mod key;
pub mod limits;
pub mod merkle;
pub mod oneshot;
pub mod parallel;
pub mod part;
pub mod seek;
mod segment;
pub mod stream;
pub mod trailer;
pub mod writer;

pub use classification::Classification;
pub use error::{classify_io_error, FormatError};
pub use header::{Header, SealedHeader, WrappedKey};
pub use key::DataKey;
pub use oneshot::{encrypt_into, encrypted_len};
pub use part::PartCodec;
pub use seek::Reader;
pub use stream::StreamReader;
pub use writer::{Sealed, Summary, Writer, WriterOptions};
