//! [`Pkcs11Signer`]: an EC P-384 signing key held in a PKCS#11 token.
//!
//! The pair is generated inside the token (`CKM_EC_KEY_PAIR_GEN`, PKCS#11
//! v2.40 §2.3.6) as token objects labelled with the key label and sharing a
//! random 8-byte `CKA_ID`:
//!
//! | object      | attributes                                                       |
//! |-------------|------------------------------------------------------------------|
//! | private key | `CKA_SIGN` only; private, sensitive, never extractable            |
//! | public key  | `CKA_VERIFY` only; `CKA_EC_POINT` gives the [`VerifyingKey`]      |
//!
//! Signing hashes the message with SHA-384 in software and has the token
//! sign the digest with `CKM_ECDSA` (§2.3.7), which answers `r || s`, 48
//! bytes each; that becomes the ASN.1 DER `Ecdsa-Sig-Value` (RFC 3279
//! §2.2.3) that [`VerifyingKey::verify`] and OpenSSL check.
//!
//! A signing key and a [`Pkcs11Kek`](crate::pkcs11::Pkcs11Kek) cannot share a
//! label: each `init` refuses a label any object carries. Signing keys
//! default to [`DEFAULT_SIGNING_KEY_LABEL`], KEKs to
//! [`DEFAULT_KEY_LABEL`](crate::pkcs11::DEFAULT_KEY_LABEL); opening one
//! kind under the other's label fails on the key type.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_lc_rs::digest;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use seqshield_format::key::fill_random;
use spki::der::asn1::{OctetStringRef, UintRef};
use spki::der::{Decode, Encode};

use super::verifying::{P384_POINT_LEN, SECP384R1};
use super::{Signer, VerifyingKey};
use crate::pkcs11::keygen::{destroy_all, KEY_ID_LEN};
use crate::pkcs11::module::pkcs11_err;
use crate::pkcs11::{bytes, find, key_type, record, Pkcs11Config, Pkcs11Kek};
use crate::KeyError;

/// The key label for a signing key when none is given. Set it with
/// [`Pkcs11Config::with_key_label`]; [`Pkcs11Config::new`] defaults to the
/// KEK label.
pub const DEFAULT_SIGNING_KEY_LABEL: &str = "seqshield-audit-sth";

/// Length of a P-384 scalar, and of each of `r` and `s`.
const P384_SCALAR_LEN: usize = 48;

/// An EC P-384 signing key in a PKCS#11 token.
pub struct Pkcs11Signer {
    session: Mutex<Session>,
    private: ObjectHandle,
    public: VerifyingKey,
    token: String,
    key_label: String,
    location: String,
}

impl Pkcs11Signer {
    /// Generates an EC P-384 key pair in the token, labelled
    /// `cfg.key_label`: the private key may only sign, and is private,
    /// sensitive and never extractable.
    ///
    /// Refuses ([`KeyError::KeyExists`]) if any object carries the key label
    /// (or a KEK's kind-record label made from it). The new key is tried
    /// with one signature; if that fails, the pair is destroyed again.
    pub fn init(cfg: &Pkcs11Config) -> Result<Self, KeyError> {
        let (session, _serial) = Pkcs11Kek::session(cfg, true)?;
        for label in [cfg.key_label.clone(), record::label(&cfg.key_label)] {
            let found =
                session.find_objects(&[Attribute::Label(label.into_bytes())]).map_err(pkcs11_err("C_FindObjects"))?;
            if !found.is_empty() {
                return Err(KeyError::KeyExists { location: cfg.location() });
            }
        }
        let (public, private) = generate(&session, &cfg.key_label)?;
        match Self::load(cfg, session, private, public) {
            Ok(signer) => Ok(signer),
            Err((session, e)) => {
                destroy_all(&session, &[private, public]);
                Err(e)
            }
        }
    }

    /// Opens the key pair labelled `cfg.key_label` in the token labelled
    /// `cfg.token_label`, logging in with the user PIN; reads the public
    /// point and checks with one signature that the pair belongs together.
    ///
    /// A label that names no EC P-384 pair (none, several, an RSA KEK, or a
    /// private key that may not sign) gives [`KeyError::Pkcs11Key`].
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, KeyError> {
        let (session, _serial) = Pkcs11Kek::session(cfg, false)?;
        let exactly_one = |class, kind: &'static str, several: &'static str| match find(
            &session,
            class,
            &cfg.key_label,
        )?
        .as_slice()
        {
            [] => Err(cfg.key_error(kind)),
            [handle] => Ok(*handle),
            _ => Err(cfg.key_error(several)),
        };
        let private = exactly_one(ObjectClass::PRIVATE_KEY, "no private key", "more than one private key")?;
        let public = exactly_one(
            ObjectClass::PUBLIC_KEY,
            "no public key object (the signer reads the EC point from it)",
            "more than one public key",
        )?;
        Self::load(cfg, session, private, public).map_err(|(_, e)| e)
    }

    /// Checks the objects, reads the public key and runs the self-test;
    /// hands the session back on error so `init` can clean up.
    fn load(
        cfg: &Pkcs11Config,
        session: Session,
        private: ObjectHandle,
        public: ObjectHandle,
    ) -> Result<Self, (Session, KeyError)> {
        match describe(cfg, &session, private, public) {
            Ok(verifying_key) => {
                let signer = Self {
                    session: Mutex::new(session),
                    private,
                    public: verifying_key,
                    token: cfg.token_label.clone(),
                    key_label: cfg.key_label.clone(),
                    location: cfg.location(),
                };
                match signer.self_test() {
                    Ok(()) => Ok(signer),
                    Err(e) => Err((signer.session.into_inner().unwrap_or_else(PoisonError::into_inner), e)),
                }
            }
            Err(e) => Err((session, e)),
        }
    }

    /// Signs a random message and verifies it with the public key: proves
    /// now, not at the first tree head, that the token signs and that the
    /// public object belongs to the private one.
    fn self_test(&self) -> Result<(), KeyError> {
        let mut msg = *b"seqshield signer self-test ................";
        fill_random(&mut msg[27..]);
        let signature = self.sign(&msg)?;
        self.public
            .verify(&msg, &signature)
            .map_err(|_| self.key_error("the private key does not match the public key"))
    }

    fn key_error(&self, reason: &'static str) -> KeyError {
        KeyError::Pkcs11Key { token: self.token.clone(), key: self.key_label.clone(), reason }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock leaves no half-done state in the
        // session: signing is one PKCS#11 call.
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the key lives: `token=LABEL key=LABEL module=PATH`.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl Signer for Pkcs11Signer {
    fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let digest = digest::digest(&digest::SHA384, msg);
        let raw =
            self.lock().sign(&Mechanism::Ecdsa, self.private, digest.as_ref()).map_err(pkcs11_err("C_Sign (ECDSA)"))?;
        raw_signature_to_der(&raw).ok_or_else(|| self.key_error("the token's ECDSA signature is not 96 bytes"))
    }
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key_id", &self.public.key_id())
            .field("token", &self.token)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

/// `CKA_EC_PARAMS` for P-384: the DER of the named-curve OID (PKCS#11
/// v2.40 §2.3.3, RFC 5480 §2.1.1).
fn p384_params() -> Vec<u8> {
    SECP384R1.to_der().expect("an OID encodes")
}

/// Generates the pair; returns (public, private).
fn generate(session: &Session, label: &str) -> Result<(ObjectHandle, ObjectHandle), KeyError> {
    let mut id = [0u8; KEY_ID_LEN];
    fill_random(&mut id);
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(label.into()),
            Attribute::Id(id.to_vec()),
        ]
    };
    let mut public = common(false);
    public.extend([
        Attribute::EcParams(p384_params()),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
    ]);
    let mut private = common(true);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .map_err(pkcs11_err("C_GenerateKeyPair (EC P-384)"))
}

/// Checks that both objects are P-384 keys and the private one may sign,
/// and reads the public key.
fn describe(
    cfg: &Pkcs11Config,
    session: &Session,
    private: ObjectHandle,
    public: ObjectHandle,
) -> Result<VerifyingKey, KeyError> {
    let invalid = |reason| cfg.key_error(reason);
    for object in [private, public] {
        if key_type(session, object)? != Some(KeyType::EC) {
            return Err(invalid("not an EC key (a KEK under this label?)"));
        }
        if bytes(session, object, AttributeType::EcParams)? != Some(p384_params()) {
            return Err(invalid("the EC key is not on the P-384 curve"));
        }
    }
    let may_sign = session
        .get_attributes(private, &[AttributeType::Sign])
        .map_err(pkcs11_err("C_GetAttributeValue"))?
        .into_iter()
        .any(|a| matches!(a, Attribute::Sign(true)));
    if !may_sign {
        return Err(invalid("the private key may not sign (CKA_SIGN is false)"));
    }
    let point = bytes(session, public, AttributeType::EcPoint)?.ok_or_else(|| invalid("no CKA_EC_POINT"))?;
    let point = ec_point(&point).ok_or_else(|| invalid("CKA_EC_POINT is not an uncompressed P-384 point"))?;
    VerifyingKey::from_point(point).map_err(|_| invalid("CKA_EC_POINT is not a point on P-384"))
}

/// The point in a `CKA_EC_POINT` value. PKCS#11 v2.40 §2.3.3 says "DER
/// encoding of ANSI X9.62 ECPoint value Q", an OCTET STRING around the
/// point, and that is what SoftHSM2 answers; some tokens give the bare
/// point. The two differ in length.
fn ec_point(value: &[u8]) -> Option<&[u8]> {
    let point = match value.len() {
        P384_POINT_LEN => value,
        _ => OctetStringRef::from_der(value).ok()?.as_bytes(),
    };
    (point.len() == P384_POINT_LEN && point[0] == 0x04).then_some(point)
}

/// `r || s` (48 bytes each, big-endian) to DER
/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279
/// §2.2.3); `None` for any other length.
fn raw_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 2 * P384_SCALAR_LEN {
        return None;
    }
    let (r, s) = raw.split_at(P384_SCALAR_LEN);
    // UintRef drops leading zeros and adds the sign byte where needed.
    vec![UintRef::new(r).ok()?, UintRef::new(s).ok()?].to_der().ok()
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};

    use super::*;

    /// The conversion must give what an independent verifier accepts, for
    /// r and s with and without a high bit or leading zeros.
    #[test]
    fn raw_signatures_convert_to_der_that_verifies() {
        let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        let public = VerifyingKey::from_point(key.public_key().as_ref()).unwrap();
        let mut seen_high_bit = false;
        for i in 0..64u32 {
            let msg = i.to_be_bytes();
            let raw = key.sign(&SystemRandom::new(), &msg).unwrap();
            let der = raw_signature_to_der(raw.as_ref()).unwrap();
            public.verify(&msg, &der).unwrap();
            assert!(public.verify(b"other", &der).is_err());
            seen_high_bit |= raw.as_ref()[0] & 0x80 != 0;
        }
        assert!(seen_high_bit, "64 signatures without one high-bit r: the sign byte went untested");
        assert_eq!(raw_signature_to_der(&[1; 95]), None);
        assert_eq!(raw_signature_to_der(&[1; 97]), None);
        // Leading zeros are dropped, a high bit gets a zero byte.
        let mut raw = [0u8; 96];
        raw[47] = 1;
        raw[48] = 0x80;
        let der = raw_signature_to_der(&raw).unwrap();
        assert_eq!(&der[..7], &[0x30, 0x36, 0x02, 0x01, 0x01, 0x02, 0x31]);
        assert_eq!(&der[7..9], &[0x00, 0x80]);
    }

    #[test]
    fn ec_point_unwraps_the_octet_string() {
        let key = EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        let point = key.public_key().as_ref();
        let wrapped = OctetStringRef::new(point).unwrap().to_der().unwrap();
        assert_eq!(wrapped.len(), 99);
        assert_eq!(ec_point(&wrapped), Some(point));
        assert_eq!(ec_point(point), Some(point));
        assert_eq!(ec_point(&wrapped[..98]), None);
        assert_eq!(ec_point(&point[1..]), None);
    }

    #[test]
    fn p384_params_are_the_named_curve_oid() {
        assert_eq!(p384_params(), [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
    }
}
