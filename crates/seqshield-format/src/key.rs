//! The per-object data key and the subkeys derived from it.
//!
//! Every object gets a fresh random 256-bit data key. Three independent
//! subkeys are derived from it with HKDF-SHA256 (RFC 5869), salted with the
//! object's random salt:
//!
//! | info                      | use                                   |
//! |---------------------------|---------------------------------------|
//! | `seqshield/v1/payload`    | AES-256-GCM key for the segments      |
//! | `seqshield/v1/header`     | HMAC-SHA256 key for the header MAC    |
//! | `seqshield/v1/merkle`     | HMAC-SHA256 key for the trailer MAC   |

use aws_lc_rs::{aead, hkdf, hmac};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::header::Header;
use crate::limits::SALT_LEN;
use crate::segment::SegmentKey;

/// Length of a data key in bytes.
pub const DATA_KEY_LEN: usize = 32;

/// A 256-bit data key. Zeroed on drop, never printed.
///
/// The bytes leave this type only through [`DataKey::expose_secret`], which
/// key-wrapping code calls to hand the key to a KEK.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl DataKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = Self([0; DATA_KEY_LEN]);
        fill_random(&mut key.0);
        key
    }

    /// Takes ownership of unwrapped key bytes, zeroing the source.
    pub fn from_bytes(bytes: &mut [u8; DATA_KEY_LEN]) -> Self {
        let key = Self(*bytes);
        bytes.zeroize();
        key
    }

    /// Builds a key from a slice (e.g. the output of an unwrap operation).
    /// Returns `None` when the slice is not exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; DATA_KEY_LEN] = bytes.try_into().ok()?;
        let mut arr = Zeroizing::new(arr);
        Some(Self::from_bytes(&mut arr))
    }

    /// The raw key bytes. Call only to wrap the key for a recipient.
    pub fn expose_secret(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // aws-lc's RNG fails only if the OS entropy source is gone; nothing
    // cryptographic can continue then, so abort loudly rather than use a
    // weak key.
    aws_lc_rs::rand::fill(buf).expect("operating system CSPRNG failed");
}

struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(data_key: &DataKey, salt: &[u8; SALT_LEN], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&data_key.0);
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(&[info], OkmLen(32))
        .and_then(|okm| okm.fill(out.as_mut()))
        .expect("HKDF-SHA256 expand of 32 bytes cannot fail");
    out
}

/// The subkeys of one object.
pub(crate) struct ObjectKeys {
    pub(crate) payload: SegmentKey,
    pub(crate) header_mac: hmac::Key,
    pub(crate) trailer_mac: hmac::Key,
}

impl ObjectKeys {
    /// The subkeys for `salt`; the segments are GMAC-only when
    /// `integrity_only` (the header's `INTEGRITY_ONLY` flag).
    pub(crate) fn derive(data_key: &DataKey, salt: &[u8; SALT_LEN], integrity_only: bool) -> Self {
        let payload = derive(data_key, salt, b"seqshield/v1/payload");
        let header = derive(data_key, salt, b"seqshield/v1/header");
        let merkle = derive(data_key, salt, b"seqshield/v1/merkle");
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, payload.as_ref())
            .expect("a 32-byte key is valid for AES-256-GCM");
        Self {
            payload: SegmentKey::new(aead::LessSafeKey::new(unbound), integrity_only),
            header_mac: hmac::Key::new(hmac::HMAC_SHA256, header.as_ref()),
            trailer_mac: hmac::Key::new(hmac::HMAC_SHA256, merkle.as_ref()),
        }
    }

    /// The subkeys of the object described by `header`.
    pub(crate) fn for_header(header: &Header, data_key: &DataKey) -> Self {
        Self::derive(data_key, header.salt(), header.integrity_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = DataKey::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    }

    #[test]
    fn from_bytes_zeroes_the_source() {
        let mut raw = [7u8; 32];
        let key = DataKey::from_bytes(&mut raw);
        assert_eq!(raw, [0; 32]);
        assert_eq!(key.expose_secret(), &[7; 32]);
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(DataKey::generate().expose_secret(), DataKey::generate().expose_secret());
    }

    #[test]
    fn from_slice_rejects_wrong_length() {
        assert!(DataKey::from_slice(&[0; 31]).is_none());
        assert!(DataKey::from_slice(&[0; 33]).is_none());
    }
}
