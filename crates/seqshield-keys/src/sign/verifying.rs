//! [`VerifyingKey`]: an EC P-384 public key (RFC 5480 §2) that checks
//! ECDSA-SHA-384 signatures, and its key id.

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P384_SHA384_ASN1};
use spki::der::asn1::{AnyRef, BitStringRef};
use spki::der::pem::LineEnding;
use spki::der::{Decode, Encode};
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};

use super::SignatureAlgorithm;
use crate::file::fs;
use crate::KeyError;

/// Largest public-key file [`VerifyingKey::read`] reads. A P-384 SPKI PEM
/// is about 215 bytes.
pub const MAX_VERIFYING_KEY_FILE_LEN: u64 = 16 * 1024;

/// Longest DER ECDSA P-384 signature: a SEQUENCE of two INTEGERs of at
/// most 49 content bytes each (48 plus a leading zero), 2 + 2 × 51 bytes.
/// Anything longer is refused before it reaches the parser.
pub const MAX_SIGNATURE_LEN: usize = 104;

/// Length of an uncompressed P-384 point, `04 || X || Y` (SEC 1 §2.3.3).
pub(crate) const P384_POINT_LEN: usize = 97;
/// Length of a compressed P-384 point, `02|03 || X`.
const P384_COMPRESSED_POINT_LEN: usize = 49;

/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp384r1`, NIST P-384 (RFC 5480 §2.1.1.1).
pub(crate) const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

const PEM_PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// A public key that verifies signatures. Holds the canonical SPKI DER
/// (named curve, uncompressed point) and the key id computed over it.
#[derive(Clone)]
pub struct VerifyingKey {
    key: ParsedPublicKey,
    spki_der: Vec<u8>,
    key_id: String,
    algorithm: SignatureAlgorithm,
}

impl VerifyingKey {
    /// Parses a SubjectPublicKeyInfo DER holding an EC P-384 key
    /// (`id-ecPublicKey` with the named curve `secp384r1`).
    ///
    /// Any other key, RSA, Ed25519, another curve, or explicit curve
    /// parameters, is refused with [`KeyError::UnsupportedSigningKey`]
    /// naming what it is; malformed DER and points not on the curve with
    /// [`KeyError::InvalidVerifyingKey`]. A compressed point is accepted
    /// and stored uncompressed, so the key id does not depend on the form.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |reason| KeyError::InvalidVerifyingKey { reason };
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| invalid("malformed SubjectPublicKeyInfo"))?;
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(KeyError::UnsupportedSigningKey { found: oid_name(spki.algorithm.oid) });
        }
        let curve = match spki.algorithm.parameters.map(|p| p.decode_as::<ObjectIdentifier>()) {
            Some(Ok(curve)) => curve,
            Some(Err(_)) => {
                return Err(KeyError::UnsupportedSigningKey {
                    found: "id-ecPublicKey with explicit curve parameters".into(),
                })
            }
            None => return Err(invalid("id-ecPublicKey without curve parameters")),
        };
        if curve != SECP384R1 {
            return Err(KeyError::UnsupportedSigningKey { found: format!("id-ecPublicKey on {}", oid_name(curve)) });
        }
        let point =
            spki.subject_public_key.as_bytes().ok_or_else(|| invalid("public key BIT STRING is not whole bytes"))?;
        match (point.len(), point.first()) {
            (P384_POINT_LEN, Some(0x04)) | (P384_COMPRESSED_POINT_LEN, Some(0x02 | 0x03)) => {}
            _ => return Err(invalid("not a P-384 point encoding")),
        }
        // aws-lc checks that the point is on the curve.
        let key = ParsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, point)
            .map_err(|_| invalid("the point is not on the P-384 curve"))?;
        let spki_der = if point.len() == P384_POINT_LEN {
            spki_for_point(point)?
        } else {
            // aws-lc re-encodes a decompressed key with the uncompressed point.
            let der = key.as_der().map_err(|_| KeyError::Crypto { op: "encoding an EC public key" })?;
            let canonical = spki_point(der.as_ref()).and_then(|p| spki_for_point(p).ok());
            canonical.ok_or(KeyError::Crypto { op: "decompressing an EC public key" })?
        };
        let key_id = key_id_for_spki(&spki_der);
        Ok(Self { key, spki_der, key_id, algorithm: SignatureAlgorithm::EcdsaP384Sha384 })
    }

    /// Builds the key from an uncompressed point, as aws-lc and PKCS#11
    /// tokens report it.
    pub(crate) fn from_point(point: &[u8]) -> Result<Self, KeyError> {
        if point.len() != P384_POINT_LEN || point[0] != 0x04 {
            return Err(KeyError::InvalidVerifyingKey { reason: "not an uncompressed P-384 point" });
        }
        Self::from_spki_der(&spki_for_point(point)?)
    }

    /// Parses an SPKI PEM (`-----BEGIN PUBLIC KEY-----`). Explanatory text
    /// before the block is skipped (RFC 7468 §5.2).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let invalid = |reason| KeyError::InvalidVerifyingKey { reason };
        let start = pem.find("-----BEGIN ").ok_or(invalid("no PEM block"))?;
        let (label, der) =
            spki::der::pem::decode_vec(&pem.as_bytes()[start..]).map_err(|_| invalid("malformed PEM"))?;
        match label {
            PEM_PUBLIC_KEY_LABEL => Self::from_spki_der(&der),
            "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "EC PRIVATE KEY" => {
                Err(invalid("this is a private key; give the public key (PUBLIC KEY PEM)"))
            }
            _ => Err(invalid("PEM label is not PUBLIC KEY")),
        }
    }

    /// Reads an SPKI PEM file of at most [`MAX_VERIFYING_KEY_FILE_LEN`]
    /// bytes. A malformed file gives [`KeyError::KeyFileInvalid`] with its
    /// path.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_public(path, MAX_VERIFYING_KEY_FILE_LEN)?;
        Self::from_pem(&text).map_err(|e| match e {
            KeyError::InvalidVerifyingKey { reason } => KeyError::KeyFileInvalid { path: path.to_owned(), reason },
            other => other,
        })
    }

    /// The SPKI PEM (`-----BEGIN PUBLIC KEY-----`, LF line ends).
    pub fn to_pem(&self) -> String {
        spki::der::pem::encode_string(PEM_PUBLIC_KEY_LABEL, LineEnding::LF, &self.spki_der)
            .expect("PEM encoding of a DER buffer cannot fail")
    }

    /// The canonical SubjectPublicKeyInfo DER: `id-ecPublicKey`, named curve
    /// `secp384r1`, uncompressed point.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// `ec-` and the first 16 hex digits of SHA-256 over
    /// [`spki_der`](Self::spki_der). The same for a file key and a token key
    /// with the same public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks an ASN.1 DER ECDSA signature over SHA-384(`msg`). A signature
    /// that does not verify, or is not strict DER, or is longer than
    /// [`MAX_SIGNATURE_LEN`], gives [`KeyError::BadSignature`].
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(self.bad_signature());
        }
        self.key.verify_sig(msg, signature).map_err(|_| self.bad_signature())
    }

    fn bad_signature(&self) -> KeyError {
        KeyError::BadSignature { key_id: self.key_id.clone() }
    }
}

/// Two keys are equal when their canonical SPKI DER is.
impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey").field("key_id", &self.key_id).field("algorithm", &self.algorithm).finish()
    }
}

/// The key id of a signing key's canonical SPKI DER.
fn key_id_for_spki(spki_der: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, spki_der);
    format!("ec-{}", &hex::encode(hash.as_ref())[..16])
}

/// The canonical SPKI DER for an uncompressed P-384 point.
fn spki_for_point(point: &[u8]) -> Result<Vec<u8>, KeyError> {
    let fail = |_| KeyError::Crypto { op: "encoding an EC public key" };
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid: ID_EC_PUBLIC_KEY, parameters: Some(AnyRef::from(&SECP384R1)) },
        subject_public_key: BitStringRef::from_bytes(point).map_err(fail)?,
    };
    spki.to_der().map_err(fail)
}

/// The point in an SPKI DER, if it is uncompressed.
fn spki_point(der: &[u8]) -> Option<&[u8]> {
    let point = SubjectPublicKeyInfoRef::from_der(der).ok()?.subject_public_key.as_bytes()?;
    (point.len() == P384_POINT_LEN && point[0] == 0x04).then_some(point)
}

/// A readable name for the key algorithms and curves people are likely to
/// hand us by mistake; the dotted OID for anything else.
fn oid_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.10045.3.1.7" => "secp256r1 (P-256)",
        "1.3.132.0.35" => "secp521r1 (P-521)",
        "1.3.132.0.10" => "secp256k1",
        other => return format!("OID {other}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-384 SPKI written by `openssl ec -pubout`.
    const OPENSSL_SPKI: &str = "3076301006072a8648ce3d020106052b810400220362000415771959d34237351fe39c95ace968e2f4aa96c1341e25770df9ba1d399e85a08470898511a2981ef14a20bfa6723fa52de14b3756dafce2887d2fc1fcb7410cc63d50a9a2c435cb9b2836d098391eaa6bd28a27f35876001f2d2b9c5bd7d657";
    /// The same key by `openssl ec -pubout -conv_form compressed`.
    const OPENSSL_SPKI_COMPRESSED: &str = "3046301006072a8648ce3d020106052b810400220332000315771959d34237351fe39c95ace968e2f4aa96c1341e25770df9ba1d399e85a08470898511a2981ef14a20bfa6723fa5";

    #[test]
    fn our_encoding_is_openssls() {
        let der = hex::decode(OPENSSL_SPKI).unwrap();
        let key = VerifyingKey::from_spki_der(&der).unwrap();
        assert_eq!(key.spki_der(), &der[..]);
        assert_eq!(spki_for_point(spki_point(&der).unwrap()).unwrap(), der);
        assert_eq!(key.key_id(), key_id_for_spki(&der));
        assert!(key.key_id().starts_with("ec-") && key.key_id().len() == 19, "{}", key.key_id());
    }

    /// A key id must not depend on the point form the key arrived in.
    #[test]
    fn compressed_point_gets_the_uncompressed_key_id() {
        let compressed = VerifyingKey::from_spki_der(&hex::decode(OPENSSL_SPKI_COMPRESSED).unwrap()).unwrap();
        let uncompressed = VerifyingKey::from_spki_der(&hex::decode(OPENSSL_SPKI).unwrap()).unwrap();
        assert_eq!(compressed.spki_der(), uncompressed.spki_der());
        assert_eq!(compressed.key_id(), uncompressed.key_id());
    }

    #[test]
    fn points_off_the_curve_and_bad_lengths_are_refused() {
        let der = hex::decode(OPENSSL_SPKI).unwrap();
        let mut point = spki_point(&der).unwrap().to_vec();
        point[96] ^= 1;
        let err = VerifyingKey::from_point(&point).unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidVerifyingKey { reason: "the point is not on the P-384 curve" }),
            "{err:?}"
        );
        for bad in [&point[..96], &[0u8; 97][..], &[]] {
            let spki = spki_for_point(bad).unwrap();
            let err = VerifyingKey::from_spki_der(&spki).unwrap_err();
            assert!(matches!(err, KeyError::InvalidVerifyingKey { .. }), "{err:?}");
        }
        // Trailing bytes after the SPKI.
        let mut long = der.clone();
        long.push(0);
        assert!(matches!(VerifyingKey::from_spki_der(&long), Err(KeyError::InvalidVerifyingKey { .. })));
    }

    #[test]
    fn oid_names() {
        assert_eq!(oid_name(SECP384R1), "OID 1.3.132.0.34");
        assert_eq!(oid_name(ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1")), "rsaEncryption");
    }
}
