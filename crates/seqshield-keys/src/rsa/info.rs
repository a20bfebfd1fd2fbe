//! [`KeyInfo`]: what `seqshield key info` shows about a KEK.

/// A printable description of a key-encryption key. Holds no key material.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// The key id written into header entries.
    pub key_id: String,
    /// `file` or `pkcs11`.
    pub backend: &'static str,
    /// The wrapping algorithm id, e.g. `rsa-oaep-sha256` or `aes256-kw`.
    pub algorithm: String,
    /// Key size in bits (RSA modulus or AES key).
    pub bits: u32,
    /// Where the key lives: the key directory, or
    /// `token=LABEL key=LABEL module=PATH`.
    pub location: String,
}
