//! The trailer: segment count, plaintext length and Merkle root, MACed.
//!
//! `magic[8] segment_count:u64 plaintext_len:u64 merkle_root[32] mac[32]`,
//! where `mac = HMAC-SHA256(merkle_key, magic ‖ count ‖ length ‖ root)`.

use aws_lc_rs::hmac;

use crate::error::FormatError;
use crate::key::ObjectKeys;
use crate::limits::{TRAILER_LEN, TRAILER_MAGIC};
use crate::merkle::Hash;

/// The authenticated summary at the end of every object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Number of segments.
    pub segment_count: u64,
    /// Total plaintext bytes.
    pub plaintext_len: u64,
    /// RFC 9162 tree head over the segment leaves.
    pub merkle_root: Hash,
}

const SIGNED_LEN: usize = TRAILER_LEN - 32;

impl Trailer {
    pub(crate) fn encode(&self, keys: &ObjectKeys) -> [u8; TRAILER_LEN] {
        let mut out = [0u8; TRAILER_LEN];
        out[..8].copy_from_slice(&TRAILER_MAGIC);
        out[8..16].copy_from_slice(&self.segment_count.to_be_bytes());
        out[16..24].copy_from_slice(&self.plaintext_len.to_be_bytes());
        out[24..56].copy_from_slice(&self.merkle_root);
        let mac = hmac::sign(&keys.trailer_mac, &out[..SIGNED_LEN]);
        out[SIGNED_LEN..].copy_from_slice(mac.as_ref());
        out
    }

    pub(crate) fn decode(bytes: &[u8], keys: &ObjectKeys) -> Result<Self, FormatError> {
        if bytes.len() != TRAILER_LEN {
            return Err(FormatError::Truncated { after_segment: None });
        }
        hmac::verify(&keys.trailer_mac, &bytes[..SIGNED_LEN], &bytes[SIGNED_LEN..])
            .map_err(|_| FormatError::TrailerAuthFailed)?;
        let u64_at = |o: usize| u64::from_be_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        Ok(Self {
            segment_count: u64_at(8),
            plaintext_len: u64_at(16),
            merkle_root: bytes[24..56].try_into().expect("32 bytes"),
        })
    }
}
