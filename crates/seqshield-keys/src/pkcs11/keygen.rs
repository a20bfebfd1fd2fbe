//! Key generation inside the token. Every key is a token object that is
//! private (login needed), sensitive and never extractable, so its secret
//! never leaves the token, not even wrapped.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::module::pkcs11_err;
use super::{record, Pkcs11KeyKind};
use crate::KeyError;

/// RSA modulus length of generated keys.
pub const RSA_BITS: u64 = 4096;
/// AES key length of generated keys, in bytes.
pub const AES_KEY_LEN: u64 = 32;
/// Length of the random `CKA_ID` shared by a key's objects.
pub const KEY_ID_LEN: usize = 8;

/// Generates the key (pair) for `kind` and its kind record; returns every
/// object created, the key objects first.
pub(crate) fn generate(
    session: &Session,
    kind: Pkcs11KeyKind,
    label: &str,
    id: &[u8],
) -> Result<Vec<ObjectHandle>, KeyError> {
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(label.into()),
            Attribute::Id(id.into()),
        ]
    };
    let mut created = match kind {
        Pkcs11KeyKind::RsaOaep(_) => {
            let mut public = common(false);
            public.extend([
                Attribute::ModulusBits(RSA_BITS.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                Attribute::Wrap(true),
                Attribute::Encrypt(false),
                Attribute::Verify(false),
            ]);
            let mut private = common(true);
            private.extend(secret_key_attributes());
            private.extend([Attribute::Unwrap(true), Attribute::Decrypt(false), Attribute::Sign(false)]);
            let (public, private) = session
                .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                .map_err(pkcs11_err("C_GenerateKeyPair (RSA-4096)"))?;
            vec![private, public]
        }
        Pkcs11KeyKind::AesKeyWrap => {
            let mut template = common(true);
            template.extend(secret_key_attributes());
            template.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(AES_KEY_LEN.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
            ]);
            let key = session
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map_err(pkcs11_err("C_GenerateKey (AES-256)"))?;
            vec![key]
        }
    };
    let record = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(record::label(label).into_bytes()),
        Attribute::Application(record::RECORD_APPLICATION.into()),
        Attribute::Value(record::encode(kind)),
    ];
    match session.create_object(&record) {
        Ok(handle) => created.push(handle),
        Err(e) => {
            destroy_all(session, &created);
            return Err(pkcs11_err("C_CreateObject (kind record)")(e));
        }
    }
    Ok(created)
}

/// Attributes that keep a secret inside the token.
fn secret_key_attributes() -> [Attribute; 2] {
    [Attribute::Sensitive(true), Attribute::Extractable(false)]
}

/// Destroys objects, best effort (used to undo a failed init).
pub(crate) fn destroy_all(session: &Session, objects: &[ObjectHandle]) {
    for &object in objects {
        let _ = session.destroy_object(object);
    }
}
