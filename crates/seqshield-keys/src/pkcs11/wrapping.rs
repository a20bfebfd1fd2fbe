//! `C_WrapKey` / `C_UnwrapKey` of a data key through short-lived session
//! objects.
//!
//! Wrapping: the data key becomes a session secret key (`CKA_TOKEN` false,
//! extractable, sensitive), is wrapped, and is destroyed at once.
//! Unwrapping: the entry is unwrapped into a session secret key that is
//! not sensitive, its `CKA_VALUE` is read into a zeroizing buffer, and it
//! is destroyed at once. Session objects are visible only to this process
//! and vanish with the session in any case.

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use seqshield_format::{DataKey, WrappedKey};
use zeroize::{Zeroize, Zeroizing};

use super::module::pkcs11_err;
use super::Pkcs11KeyKind;
use crate::rsa::OaepHash;
use crate::KeyError;

/// The mechanism for a kind: RSA-OAEP with the hash for both OAEP and
/// MGF1, source `CKZ_DATA_SPECIFIED` and an empty label (PKCS#11 v2.40
/// §2.1.8), or RFC 3394 AES key wrap.
pub(crate) fn mechanism(kind: Pkcs11KeyKind) -> Mechanism<'static> {
    match kind {
        Pkcs11KeyKind::RsaOaep(hash) => {
            let (hash, mgf) = match hash {
                OaepHash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
                OaepHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            };
            Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
        }
        Pkcs11KeyKind::AesKeyWrap => Mechanism::AesKeyWrap,
    }
}

/// A session object destroyed on drop.
struct Ephemeral<'a> {
    session: &'a Session,
    handle: ObjectHandle,
}

impl Drop for Ephemeral<'_> {
    fn drop(&mut self) {
        // Nothing more to do if this fails: a session object dies with
        // the session at the latest.
        let _ = self.session.destroy_object(self.handle);
    }
}

/// A template that may hold key bytes in `CKA_VALUE`; zeroed on drop.
struct SecretTemplate(Vec<Attribute>);

impl Drop for SecretTemplate {
    fn drop(&mut self) {
        for attribute in &mut self.0 {
            if let Attribute::Value(bytes) = attribute {
                bytes.zeroize();
            }
        }
    }
}

/// Session secret key attributes; `sensitive` for the wrap source.
fn session_secret(sensitive: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(sensitive),
        Attribute::Extractable(true),
    ]
}

/// Wraps `key` with `wrapping_key` and returns the wrapped bytes.
pub(crate) fn wrap(
    session: &Session,
    kind: Pkcs11KeyKind,
    wrapping_key: ObjectHandle,
    key: &DataKey,
    token: &str,
) -> Result<Vec<u8>, KeyError> {
    let mut template = SecretTemplate(session_secret(true));
    template.0.push(Attribute::Value(key.expose_secret().to_vec()));
    let handle = session.create_object(&template.0).map_err(pkcs11_err("C_CreateObject (session key)"))?;
    drop(template);
    let object = Ephemeral { session, handle };
    session
        .wrap_key(&mechanism(kind), wrapping_key, object.handle)
        .map_err(|e| unsupported_or(kind, token, e, "C_WrapKey"))
}

/// Unwraps `entry` with `unwrapping_key`.
pub(crate) fn unwrap(
    session: &Session,
    kind: Pkcs11KeyKind,
    unwrapping_key: ObjectHandle,
    entry: &WrappedKey,
    token: &str,
) -> Result<DataKey, KeyError> {
    let failed = || KeyError::UnwrapFailed { key_id: entry.key_id.clone() };
    let handle =
        session.unwrap_key(&mechanism(kind), unwrapping_key, &entry.wrapped, &session_secret(false)).map_err(|e| {
            match e {
            Error::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange
                // SoftHSM2 reports a failed OAEP decryption as
                // CKR_GENERAL_ERROR; the length was checked by the caller,
                // so that is the entry, not the token.
                | RvError::GeneralError
                | RvError::FunctionFailed,
                _,
            ) => failed(),
            e => unsupported_or(kind, token, e, "C_UnwrapKey"),
        }
        })?;
    let object = Ephemeral { session, handle };
    let value = session
        .get_attributes(object.handle, &[AttributeType::Value])
        .map_err(pkcs11_err("C_GetAttributeValue (unwrapped key)"))?
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::Value(bytes) => Some(Zeroizing::new(bytes)),
            _ => None,
        })
        .ok_or_else(failed)?;
    drop(object);
    DataKey::from_slice(&value).ok_or_else(failed)
}

/// A token that rejects our OAEP parameters does not implement them:
/// SoftHSM2 2.6 answers `CKR_ARGUMENTS_BAD` to OAEP with SHA-256.
fn unsupported_or(kind: Pkcs11KeyKind, token: &str, e: Error, op: &'static str) -> KeyError {
    match e {
        Error::Pkcs11(RvError::ArgumentsBad | RvError::MechanismInvalid | RvError::MechanismParamInvalid, _) => {
            KeyError::Pkcs11Unsupported { token: token.to_owned(), algorithm: kind.algorithm_id(), source: e }
        }
        e => KeyError::Pkcs11 { op, source: e },
    }
}
