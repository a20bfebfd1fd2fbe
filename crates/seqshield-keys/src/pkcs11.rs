//! A key-encryption key held in a PKCS#11 token (an HSM, or SoftHSM2 for
//! tests).
//!
//! Two kinds of key, both generated inside the token as private, sensitive,
//! non-extractable token objects:
//!
//! | kind                       | objects                         | algorithm id              |
//! |----------------------------|---------------------------------|---------------------------|
//! | [`Pkcs11KeyKind::RsaOaep`] | RSA-4096 pair (`CKA_WRAP` on the public key, `CKA_UNWRAP` on the private key) | `rsa-oaep-sha1` / `rsa-oaep-sha256` |
//! | [`Pkcs11KeyKind::AesKeyWrap`] | AES-256 key (`CKA_WRAP`, `CKA_UNWRAP`) | `aes256-kw` (RFC 3394) |
//!
//! Key objects carry the key label as `CKA_LABEL` and a random 8-byte
//! `CKA_ID`. The kind is kept in a `CKO_DATA` record labelled
//! `<key label>.seqshield` (see [`record`]).
//!
//! Key ids: an RSA key has the id of its public key,
//! [`key_id_for_spki`](crate::rsa::key_id_for_spki), the same as a file key
//! with that public key would have; an AES key has `p11-aes-` and the hex
//! of its `CKA_ID` (or, for an id longer than 32 bytes or none at all,
//! 16 hex digits of SHA-256 over the token serial and key label).
//!
//! SoftHSM2 2.6 does RSA-OAEP only with SHA-1; [`Pkcs11Kek::init`] tries a
//! wrap and unwrap with the new key and, when the token rejects the
//! parameters, removes the key again and returns
//! [`KeyError::Pkcs11Unsupported`].

use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_lc_rs::digest;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use seqshield_format::key::fill_random;
use seqshield_format::{DataKey, WrappedKey};
use zeroize::Zeroizing;

use crate::rsa::{KeyInfo, OaepHash, RsaRecipient};
use crate::{Kek, KeyError, Recipient};

pub(crate) mod keygen;
pub(crate) mod module;
pub mod record;
mod wrapping;

pub use cryptoki;
pub use keygen::{AES_KEY_LEN, KEY_ID_LEN, RSA_BITS};
pub use module::context;

/// The key label used when none is given.
pub const DEFAULT_KEY_LABEL: &str = "seqshield-kek";

/// Longest key label we accept, in bytes.
pub const MAX_KEY_LABEL_LEN: usize = 64;

/// Where the key lives and how to log in.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (shared library).
    pub module: PathBuf,
    /// Label of the token (slot ids can change; labels do not).
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// `CKA_LABEL` of the key objects, [`DEFAULT_KEY_LABEL`] by default.
    pub key_label: String,
}

impl Pkcs11Config {
    /// A config with the default key label.
    pub fn new(module: impl Into<PathBuf>, token_label: impl Into<String>, pin: Zeroizing<String>) -> Self {
        Self { module: module.into(), token_label: token_label.into(), pin, key_label: DEFAULT_KEY_LABEL.to_owned() }
    }

    /// The same config with another key label.
    pub fn with_key_label(mut self, key_label: impl Into<String>) -> Self {
        self.key_label = key_label.into();
        self
    }

    pub(crate) fn key_error(&self, reason: &'static str) -> KeyError {
        KeyError::Pkcs11Key { token: self.token_label.clone(), key: self.key_label.clone(), reason }
    }

    /// Key labels are printable ASCII, so that they, and the record label
    /// made from them, are safe in messages and within [`MAX_KEY_LABEL_LEN`].
    pub(crate) fn check_key_label(&self) -> Result<(), KeyError> {
        let label = &self.key_label;
        if label.is_empty() || label.len() > MAX_KEY_LABEL_LEN || !label.bytes().all(|c| (0x20..0x7f).contains(&c)) {
            return Err(self.key_error("key label must be 1 to 64 printable ASCII characters"));
        }
        Ok(())
    }

    pub(crate) fn location(&self) -> String {
        format!("token={} key={} module={}", self.token_label, self.key_label, self.module.display())
    }
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .finish()
    }
}

/// What kind of key the token holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pkcs11KeyKind {
    /// An RSA-4096 pair, wrapping with `CKM_RSA_PKCS_OAEP` and this hash.
    RsaOaep(OaepHash),
    /// An AES-256 key, wrapping with `CKM_AES_KEY_WRAP` (RFC 3394).
    AesKeyWrap,
}

impl Pkcs11KeyKind {
    /// The algorithm id recorded in each [`WrappedKey`].
    pub fn algorithm_id(self) -> &'static str {
        match self {
            Self::RsaOaep(hash) => hash.algorithm_id(),
            Self::AesKeyWrap => "aes256-kw",
        }
    }
}

/// A key-encryption key in a PKCS#11 token.
pub struct Pkcs11Kek {
    session: Mutex<Session>,
    kind: Pkcs11KeyKind,
    /// The private key (RSA) or the secret key (AES).
    unwrap_key: ObjectHandle,
    /// The public key (RSA; `None` if the token keeps none) or the secret key.
    wrap_key: Option<ObjectHandle>,
    public: Option<RsaRecipient>,
    key_id: String,
    bits: u32,
    token: String,
    key_label: String,
    location: String,
}

impl Pkcs11Kek {
    /// Generates a new key of `kind` in the token, with its kind record.
    ///
    /// Refuses ([`KeyError::KeyExists`]) if any object carries the key
    /// label or the record label. The new key is tried with one wrap and
    /// unwrap; if that fails, the key is destroyed again and the error
    /// returned ([`KeyError::Pkcs11Unsupported`] when the token rejects
    /// the mechanism parameters).
    pub fn init(cfg: &Pkcs11Config, kind: Pkcs11KeyKind) -> Result<Self, KeyError> {
        let (session, serial) = Self::session(cfg, true)?;
        for label in [cfg.key_label.clone(), record::label(&cfg.key_label)] {
            let found = session
                .find_objects(&[Attribute::Label(label.into_bytes())])
                .map_err(module::pkcs11_err("C_FindObjects"))?;
            if !found.is_empty() {
                return Err(KeyError::KeyExists { location: cfg.location() });
            }
        }
        let mut id = [0u8; KEY_ID_LEN];
        fill_random(&mut id);
        let created = keygen::generate(&session, kind, &cfg.key_label, &id)?;
        let handles = match kind {
            Pkcs11KeyKind::RsaOaep(_) => (created[0], Some(created[1])),
            Pkcs11KeyKind::AesKeyWrap => (created[0], Some(created[0])),
        };
        let kek = match Self::load(cfg, session, &serial, kind, Some(handles)) {
            Ok(kek) => kek,
            Err((session, e)) => {
                keygen::destroy_all(&session, &created);
                return Err(e);
            }
        };
        if let Err(e) = kek.self_test() {
            keygen::destroy_all(&kek.lock(), &created);
            return Err(e);
        }
        Ok(kek)
    }

    /// Opens the key labelled `cfg.key_label` in the token labelled
    /// `cfg.token_label`, logging in with the user PIN.
    ///
    /// PKCS#11 login state belongs to the process, not the session: if
    /// this process is already logged in to the token (another open KEK),
    /// the token does not check the PIN again.
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, KeyError> {
        let (session, serial) = Self::session(cfg, false)?;
        let kind = Self::stored_kind(cfg, &session)?;
        Self::load(cfg, session, &serial, kind, None).map_err(|(_, e)| e)
    }

    /// The public key of an RSA KEK, wrapping with the KEK's OAEP hash
    /// (so its PEM names the hash when it is SHA-1). `None` for AES.
    pub fn public(&self) -> Option<RsaRecipient> {
        self.public.clone()
    }

    /// A description of the key for display.
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            key_id: self.key_id.clone(),
            backend: "pkcs11",
            algorithm: self.kind.algorithm_id().to_owned(),
            bits: self.bits,
            location: self.location.clone(),
        }
    }

    /// What kind of key this is.
    pub fn kind(&self) -> Pkcs11KeyKind {
        self.kind
    }

    /// A logged-in session (read-write only to create keys) and the
    /// token's serial number.
    pub(crate) fn session(cfg: &Pkcs11Config, read_write: bool) -> Result<(Session, String), KeyError> {
        cfg.check_key_label()?;
        let ctx = module::context(&cfg.module)?;
        let (slot, serial) = module::find_token(&ctx, &cfg.module, &cfg.token_label)?;
        let session = module::login(&ctx, slot, &cfg.token_label, &cfg.pin, read_write)?;
        Ok((session, serial))
    }

    /// The kind from the record, or from the key type without one.
    fn stored_kind(cfg: &Pkcs11Config, session: &Session) -> Result<Pkcs11KeyKind, KeyError> {
        let invalid = |reason| cfg.key_error(reason);
        let records = find(session, ObjectClass::DATA, &record::label(&cfg.key_label))?;
        match records.as_slice() {
            [] => {}
            [handle] => {
                let value = bytes(session, *handle, AttributeType::Value)?.unwrap_or_default();
                return record::decode(&value).ok_or_else(|| invalid("unknown seqshield kind record"));
            }
            _ => return Err(invalid("more than one seqshield kind record")),
        }
        if !find(session, ObjectClass::PRIVATE_KEY, &cfg.key_label)?.is_empty() {
            return Ok(Pkcs11KeyKind::RsaOaep(OaepHash::default()));
        }
        if !find(session, ObjectClass::SECRET_KEY, &cfg.key_label)?.is_empty() {
            return Ok(Pkcs11KeyKind::AesKeyWrap);
        }
        Err(invalid("no key with this label"))
    }

    /// Builds the KEK from the key objects, found by label unless `init`
    /// passes the handles it just made; hands the session back on error so
    /// `init` can clean up.
    fn load(
        cfg: &Pkcs11Config,
        session: Session,
        serial: &str,
        kind: Pkcs11KeyKind,
        handles: Option<(ObjectHandle, Option<ObjectHandle>)>,
    ) -> Result<Self, (Session, KeyError)> {
        let keys = match handles {
            Some(handles) => Ok(handles),
            None => Self::find_handles(cfg, &session, kind),
        }
        .and_then(|handles| Self::describe(cfg, &session, serial, kind, handles));
        match keys {
            Ok(keys) => Ok(Self {
                session: Mutex::new(session),
                kind,
                unwrap_key: keys.unwrap_key,
                wrap_key: keys.wrap_key,
                public: keys.public,
                key_id: keys.key_id,
                bits: keys.bits,
                token: cfg.token_label.clone(),
                key_label: cfg.key_label.clone(),
                location: cfg.location(),
            }),
            Err(e) => Err((session, e)),
        }
    }

    /// The key objects labelled `cfg.key_label`: (unwrapping key,
    /// wrapping key). An RSA token may keep no public-key object.
    fn find_handles(
        cfg: &Pkcs11Config,
        session: &Session,
        kind: Pkcs11KeyKind,
    ) -> Result<(ObjectHandle, Option<ObjectHandle>), KeyError> {
        let invalid = |reason| cfg.key_error(reason);
        let at_most_one = |class, several| match find(session, class, &cfg.key_label)?.as_slice() {
            [] => Ok(None),
            [handle] => Ok(Some(*handle)),
            _ => Err(invalid(several)),
        };
        match kind {
            Pkcs11KeyKind::RsaOaep(_) => {
                let private = at_most_one(ObjectClass::PRIVATE_KEY, "more than one private key")?
                    .ok_or_else(|| invalid("no RSA private key"))?;
                let public = at_most_one(ObjectClass::PUBLIC_KEY, "more than one public key")?;
                Ok((private, public))
            }
            Pkcs11KeyKind::AesKeyWrap => {
                let key = at_most_one(ObjectClass::SECRET_KEY, "more than one secret key")?
                    .ok_or_else(|| invalid("no AES key"))?;
                Ok((key, Some(key)))
            }
        }
    }

    /// Reads what we need to know about the key objects.
    fn describe(
        cfg: &Pkcs11Config,
        session: &Session,
        serial: &str,
        kind: Pkcs11KeyKind,
        (unwrap_key, wrap_key): (ObjectHandle, Option<ObjectHandle>),
    ) -> Result<Keys, KeyError> {
        let invalid = |reason| cfg.key_error(reason);
        match kind {
            Pkcs11KeyKind::RsaOaep(hash) => {
                if key_type(session, unwrap_key)? != Some(KeyType::RSA) {
                    return Err(invalid("the private key is not an RSA key"));
                }
                // The modulus and exponent are public attributes of the
                // private key too, for tokens that keep no public object.
                let source = wrap_key.unwrap_or(unwrap_key);
                let modulus = bytes(session, source, AttributeType::Modulus)?;
                let exponent = bytes(session, source, AttributeType::PublicExponent)?;
                let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
                    return Err(invalid("the token does not show the RSA public key"));
                };
                let recipient = RsaRecipient::from_components(&modulus, &exponent, hash)?;
                Ok(Keys {
                    unwrap_key,
                    wrap_key,
                    key_id: recipient.key_id().to_owned(),
                    bits: u32::try_from(recipient.bits()).unwrap_or(u32::MAX),
                    public: Some(recipient),
                })
            }
            Pkcs11KeyKind::AesKeyWrap => {
                if key_type(session, unwrap_key)? != Some(KeyType::AES) {
                    return Err(invalid("the secret key is not an AES key"));
                }
                let len = session
                    .get_attributes(unwrap_key, &[AttributeType::ValueLen])
                    .map_err(module::pkcs11_err("C_GetAttributeValue"))?
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::ValueLen(len) => Some(u64::from(len)),
                        _ => None,
                    });
                if len != Some(AES_KEY_LEN) {
                    return Err(invalid("the AES key is not 256 bits"));
                }
                let id = bytes(session, unwrap_key, AttributeType::Id)?.unwrap_or_default();
                let key_id = if (1..=32).contains(&id.len()) {
                    format!("p11-aes-{}", hex::encode(&id))
                } else {
                    let mut input = serial.as_bytes().to_vec();
                    input.push(0);
                    input.extend_from_slice(cfg.key_label.as_bytes());
                    let hash = digest::digest(&digest::SHA256, &input);
                    format!("p11-aes-{}", &hex::encode(hash.as_ref())[..16])
                };
                Ok(Keys { unwrap_key, wrap_key, public: None, key_id, bits: 256 })
            }
        }
    }

    /// One wrap and unwrap of a random key, to find out now rather than at
    /// the first real object whether the token supports the mechanism.
    fn self_test(&self) -> Result<(), KeyError> {
        let key = DataKey::generate();
        let entry = self.wrap(&key)?;
        let back = self.unwrap(&entry)?;
        if back.expose_secret() != key.expose_secret() {
            return Err(KeyError::UnwrapFailed { key_id: self.key_id.clone() });
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock leaves no half-done state in the
        // session: each operation is one PKCS#11 call plus cleanup.
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Keys {
    unwrap_key: ObjectHandle,
    wrap_key: Option<ObjectHandle>,
    public: Option<RsaRecipient>,
    key_id: String,
    bits: u32,
}

/// Objects of `class` labelled `label`.
pub(crate) fn find(session: &Session, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>, KeyError> {
    session
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
        .map_err(module::pkcs11_err("C_FindObjects"))
}

/// A byte-string attribute, `None` if the object lacks it or hides it.
pub(crate) fn bytes(
    session: &Session,
    object: ObjectHandle,
    which: AttributeType,
) -> Result<Option<Vec<u8>>, KeyError> {
    let attributes = session.get_attributes(object, &[which]).map_err(module::pkcs11_err("C_GetAttributeValue"))?;
    Ok(attributes.into_iter().find_map(|a| match a {
        Attribute::Value(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::Id(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v) => Some(v),
        _ => None,
    }))
}

pub(crate) fn key_type(session: &Session, object: ObjectHandle) -> Result<Option<KeyType>, KeyError> {
    let attributes =
        session.get_attributes(object, &[AttributeType::KeyType]).map_err(module::pkcs11_err("C_GetAttributeValue"))?;
    Ok(attributes.into_iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(t),
        _ => None,
    }))
}

impl Recipient for Pkcs11Kek {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        let wrapped = match (self.wrap_key, &self.public) {
            (Some(handle), _) => wrapping::wrap(&self.lock(), self.kind, handle, key, &self.token)?,
            // No public key object in the token: wrap in software.
            (None, Some(public)) => return public.wrap(key),
            (None, None) => {
                return Err(KeyError::Pkcs11Key {
                    token: self.token.clone(),
                    key: self.key_label.clone(),
                    reason: "no wrapping key",
                })
            }
        };
        Ok(WrappedKey { key_id: self.key_id.clone(), algorithm: self.kind.algorithm_id().to_owned(), wrapped })
    }
}

impl Kek for Pkcs11Kek {
    fn unwrap(&self, entry: &WrappedKey) -> Result<DataKey, KeyError> {
        if entry.key_id != self.key_id {
            return Err(KeyError::NoMatchingRecipient {
                available: vec![self.key_id.clone()],
                in_object: vec![entry.key_id.clone()],
            });
        }
        if entry.algorithm != self.kind.algorithm_id() {
            return Err(KeyError::UnsupportedAlgorithm {
                key_id: entry.key_id.clone(),
                algorithm: entry.algorithm.clone(),
            });
        }
        let expected_len = match self.kind {
            Pkcs11KeyKind::RsaOaep(_) => self.bits.div_ceil(8) as usize,
            // RFC 3394 §2.2.1: n 64-bit blocks in, n + 1 out.
            Pkcs11KeyKind::AesKeyWrap => seqshield_format::key::DATA_KEY_LEN + 8,
        };
        if entry.wrapped.len() != expected_len {
            return Err(KeyError::UnwrapFailed { key_id: entry.key_id.clone() });
        }
        wrapping::unwrap(&self.lock(), self.kind, self.unwrap_key, entry, &self.token)
    }
}

impl fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kek")
            .field("key_id", &self.key_id)
            .field("kind", &self.kind)
            .field("token", &self.token)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}
