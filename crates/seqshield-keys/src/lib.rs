//! Key-encryption keys (KEKs) for seqshield.
//!
//! A KEK wraps each object's [`DataKey`] into a [`WrappedKey`] header entry
//! and unwraps it again. Two backends: an RSA-4096 key pair in a
//! passphrase-encrypted file ([`mod@file`]), and a key held in a PKCS#11 token
//! ([`pkcs11`]). Public-key recipients ([`Recipient`] without [`Kek`]) can
//! wrap but never unwrap.
//!
//! Signing keys ([`sign`]): ECDSA P-384 keys behind the [`Signer`] trait,
//! in the same two places, for the audit log's signed tree heads.

#![forbid(unsafe_code)]

pub mod error;
pub mod file;
pub mod pkcs11;
pub mod rewrap;
pub mod rsa;
pub mod sign;

pub use error::KeyError;
pub use rsa::KeyInfo;
use seqshield_format::{DataKey, Header, SealedHeader, WrappedKey};
pub use sign::{FileSigner, Pkcs11Signer, SignatureAlgorithm, Signer, VerifyingKey};

/// Anything that can wrap a data key for one recipient.
pub trait Recipient: Send + Sync {
    /// The key id written into the header entry.
    fn key_id(&self) -> &str;
    /// Wraps `key` into a header entry for this recipient.
    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError>;
}

/// A key-encryption key: wraps and unwraps data keys.
pub trait Kek: Recipient {
    /// Unwraps a header entry that names this KEK's key id.
    fn unwrap(&self, entry: &WrappedKey) -> Result<DataKey, KeyError>;
}

/// Finds the entry in `sealed` that one of `keks` can unwrap, unwraps the
/// data key and authenticates the header with it.
pub fn unlock(sealed: SealedHeader, keks: &[&dyn Kek]) -> Result<(DataKey, Header), KeyError> {
    let mut last_err = None;
    for kek in keks {
        for entry in sealed.recipients().iter().filter(|e| e.key_id == kek.key_id()) {
            match kek.unwrap(entry) {
                Ok(key) => {
                    let header = sealed.authenticate(&key)?;
                    return Ok((key, header));
                }
                Err(e) => last_err = Some(e),
            }
        }
    }
    Err(last_err.unwrap_or_else(|| KeyError::NoMatchingRecipient {
        available: keks.iter().map(|k| k.key_id().to_owned()).collect(),
        in_object: sealed.recipients().iter().map(|e| e.key_id.clone()).collect(),
    }))
}
