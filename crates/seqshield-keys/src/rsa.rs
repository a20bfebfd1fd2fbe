//! RSA-OAEP public-key recipients (RFC 8017 §7.1) and the key id scheme
//! shared by file and PKCS#11 RSA keys.
//!
//! An [`RsaRecipient`] holds only a public key: it wraps data keys but can
//! never unwrap them. Its public-key file is a plain SPKI PEM
//! (`-----BEGIN PUBLIC KEY-----`). The OAEP hash is not part of an RSA
//! public key, so a PEM file may name it in one line of explanatory text
//! before the PEM block (RFC 7468 §5.2 lets parsers skip such text;
//! OpenSSL does):
//!
//! ```text
//! seqshield-oaep-hash: sha1
//! -----BEGIN PUBLIC KEY-----
//! ...
//! ```
//!
//! Without that line the hash is SHA-256. [`RsaRecipient::to_pem`] writes the
//! line only for SHA-1, so default files stay plain SPKI.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{OaepAlgorithm, OaepPublicEncryptingKey, PublicEncryptingKey};
use seqshield_format::{DataKey, WrappedKey};
use spki::der::asn1::{AnyRef, BitStringRef, UintRef};
use spki::der::pem::LineEnding;
use spki::der::Encode;
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};

use crate::{KeyError, Recipient};

mod info;

pub use info::KeyInfo;

/// Smallest RSA modulus we wrap for, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest public-key file [`RsaRecipient::read`] reads. An RSA-16384 SPKI
/// PEM is about 3 KiB; anything far larger is not a public key.
pub const MAX_PUBLIC_KEY_FILE_LEN: u64 = 64 * 1024;

/// The explanatory-text line that names the OAEP hash in a public-key PEM.
pub const OAEP_HASH_HEADER: &str = "seqshield-oaep-hash:";

const PEM_PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// `rsaEncryption` (RFC 8017 Appendix C).
const RSA_ENCRYPTION_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The hash used for both OAEP and its MGF1 mask (the label is always empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OaepHash {
    /// SHA-1, for tokens that support nothing else (SoftHSM2 2.6).
    Sha1,
    /// SHA-256: the default.
    #[default]
    Sha256,
}

impl OaepHash {
    /// The algorithm id recorded in each [`WrappedKey`]:
    /// `rsa-oaep-sha1` or `rsa-oaep-sha256`.
    pub fn algorithm_id(self) -> &'static str {
        match self {
            Self::Sha1 => "rsa-oaep-sha1",
            Self::Sha256 => "rsa-oaep-sha256",
        }
    }

    /// The hash named by an algorithm id, if it is an RSA-OAEP one.
    pub fn from_algorithm_id(id: &str) -> Option<Self> {
        match id {
            "rsa-oaep-sha1" => Some(Self::Sha1),
            "rsa-oaep-sha256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// The short name, `sha1` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    pub(crate) fn aws_lc(self) -> &'static OaepAlgorithm {
        match self {
            Self::Sha1 => &aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1,
            Self::Sha256 => &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
        }
    }
}

impl fmt::Display for OaepHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `sha1` / `sha256` (also `sha-1` / `sha-256`, any case).
impl FromStr for OaepHash {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" | "sha-1" => Ok(Self::Sha1),
            "sha256" | "sha-256" => Ok(Self::Sha256),
            _ => Err(KeyError::InvalidPublicKey { reason: "unknown OAEP hash (expected sha1 or sha256)" }),
        }
    }
}

/// The key id of an RSA public key: `rsa-` and the first 16 hex digits of
/// SHA-256 over its SubjectPublicKeyInfo DER.
///
/// Pass the canonical DER (rsaEncryption with NULL parameters, minimal
/// integers), as aws-lc and OpenSSL write it; [`RsaRecipient`] always does,
/// so a file key and a token key with the same public key get the same id.
pub fn key_id_for_spki(spki_der: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, spki_der);
    format!("rsa-{}", &hex::encode(hash.as_ref())[..16])
}

/// An RSA public key that wraps data keys with RSA-OAEP.
#[derive(Clone)]
pub struct RsaRecipient {
    key: PublicEncryptingKey,
    spki_der: Vec<u8>,
    key_id: String,
    hash: OaepHash,
}

impl RsaRecipient {
    /// Parses an SPKI PEM (`-----BEGIN PUBLIC KEY-----`). Explanatory text
    /// before the block is skipped; `hash` is used whatever it says.
    pub fn from_pem(pem: &str, hash: OaepHash) -> Result<Self, KeyError> {
        let start = pem.find("-----BEGIN ").ok_or(KeyError::InvalidPublicKey { reason: "no PEM block" })?;
        let (label, der) = spki::der::pem::decode_vec(&pem.as_bytes()[start..])
            .map_err(|_| KeyError::InvalidPublicKey { reason: "malformed PEM" })?;
        if label != PEM_PUBLIC_KEY_LABEL {
            return Err(KeyError::InvalidPublicKey { reason: "PEM label is not PUBLIC KEY" });
        }
        Self::from_spki_der(&der, hash)
    }

    /// Parses a SubjectPublicKeyInfo DER holding an RSA key.
    pub fn from_spki_der(der: &[u8], hash: OaepHash) -> Result<Self, KeyError> {
        let key = PublicEncryptingKey::from_der(der)
            .map_err(|_| KeyError::InvalidPublicKey { reason: "not an RSA SubjectPublicKeyInfo aws-lc accepts" })?;
        Self::from_key(key, hash)
    }

    /// Builds the key from its modulus and public exponent (unsigned
    /// big-endian), as a PKCS#11 token reports them.
    pub fn from_components(modulus: &[u8], exponent: &[u8], hash: OaepHash) -> Result<Self, KeyError> {
        let bad = |_| KeyError::InvalidPublicKey { reason: "modulus or exponent does not encode" };
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1)
        let rsa_public_key =
            vec![UintRef::new(modulus).map_err(bad)?, UintRef::new(exponent).map_err(bad)?].to_der().map_err(bad)?;
        let spki = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef { oid: RSA_ENCRYPTION_OID, parameters: Some(AnyRef::NULL) },
            subject_public_key: BitStringRef::from_bytes(&rsa_public_key).map_err(bad)?,
        };
        Self::from_spki_der(&spki.to_der().map_err(bad)?, hash)
    }

    pub(crate) fn from_key(key: PublicEncryptingKey, hash: OaepHash) -> Result<Self, KeyError> {
        if key.key_size_bits() < MIN_RSA_BITS {
            return Err(KeyError::InvalidPublicKey { reason: "RSA modulus shorter than 2048 bits" });
        }
        // Re-encode so the key id is computed over canonical DER.
        let spki_der =
            key.as_der().map_err(|_| KeyError::Crypto { op: "encoding an RSA public key" })?.as_ref().to_vec();
        let key_id = key_id_for_spki(&spki_der);
        Ok(Self { key, spki_der, key_id, hash })
    }

    /// Reads an SPKI PEM file. The OAEP hash comes from a
    /// `seqshield-oaep-hash: sha1|sha256` line before the PEM block, and is
    /// SHA-256 without one.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = crate::file::fs::read_public(path, MAX_PUBLIC_KEY_FILE_LEN)?;
        let invalid = |reason| KeyError::KeyFileInvalid { path: path.to_owned(), reason };
        let hash = hash_from_header(&text).map_err(invalid)?;
        Self::from_pem(&text, hash).map_err(|e| match e {
            KeyError::InvalidPublicKey { reason } => invalid(reason),
            other => other,
        })
    }

    /// The SPKI PEM, preceded by the `seqshield-oaep-hash` line when the
    /// hash is not the default.
    pub fn to_pem(&self) -> String {
        let pem = spki::der::pem::encode_string(PEM_PUBLIC_KEY_LABEL, LineEnding::LF, &self.spki_der)
            .expect("PEM encoding of a DER buffer cannot fail");
        match self.hash {
            OaepHash::Sha256 => pem,
            OaepHash::Sha1 => format!("{OAEP_HASH_HEADER} {}\n{pem}", self.hash),
        }
    }

    /// The key id written into header entries.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The OAEP hash this recipient wraps with.
    pub fn oaep_hash(&self) -> OaepHash {
        self.hash
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// The canonical SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The same key with another OAEP hash.
    pub fn with_oaep_hash(mut self, hash: OaepHash) -> Self {
        self.hash = hash;
        self
    }
}

/// Finds the `seqshield-oaep-hash:` line in the text before the PEM block.
fn hash_from_header(text: &str) -> Result<OaepHash, &'static str> {
    let before = text.find("-----BEGIN ").map_or(text, |i| &text[..i]);
    let mut found = None;
    for line in before.lines() {
        if let Some(value) = line.trim().strip_prefix(OAEP_HASH_HEADER) {
            if found.is_some() {
                return Err("more than one seqshield-oaep-hash line");
            }
            found = Some(value.trim().parse().map_err(|_| "seqshield-oaep-hash must be sha1 or sha256")?);
        }
    }
    Ok(found.unwrap_or_default())
}

impl Recipient for RsaRecipient {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        let oaep = OaepPublicEncryptingKey::new(self.key.clone())
            .map_err(|_| KeyError::Crypto { op: "RSA-OAEP key setup" })?;
        let mut out = vec![0u8; oaep.ciphertext_size()];
        let len = oaep
            .encrypt(self.hash.aws_lc(), key.expose_secret(), &mut out, None)
            .map_err(|_| KeyError::Crypto { op: "RSA-OAEP encryption" })?
            .len();
        out.truncate(len);
        Ok(WrappedKey { key_id: self.key_id.clone(), algorithm: self.hash.algorithm_id().to_owned(), wrapped: out })
    }
}

impl fmt::Debug for RsaRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaRecipient")
            .field("key_id", &self.key_id)
            .field("bits", &self.bits())
            .field("oaep_hash", &self.hash)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_ids_round_trip() {
        for h in [OaepHash::Sha1, OaepHash::Sha256] {
            assert_eq!(OaepHash::from_algorithm_id(h.algorithm_id()), Some(h));
            assert_eq!(h.name().parse::<OaepHash>().unwrap(), h);
        }
        assert_eq!(OaepHash::default(), OaepHash::Sha256);
        assert_eq!(OaepHash::from_algorithm_id("aes256-kw"), None);
    }

    #[test]
    fn header_line_selects_the_hash() {
        let pem = "-----BEGIN PUBLIC KEY-----\n";
        assert_eq!(hash_from_header(pem), Ok(OaepHash::Sha256));
        assert_eq!(hash_from_header(&format!("note\n{OAEP_HASH_HEADER} sha1\n{pem}")), Ok(OaepHash::Sha1));
        assert!(hash_from_header(&format!("{OAEP_HASH_HEADER} md5\n{pem}")).is_err());
        assert!(hash_from_header(&format!("{OAEP_HASH_HEADER} sha1\n{OAEP_HASH_HEADER} sha1\n{pem}")).is_err());
        // A header line after the block is not ours to read.
        assert_eq!(hash_from_header(&format!("{pem}{OAEP_HASH_HEADER} sha1\n")), Ok(OaepHash::Sha256));
    }

    #[test]
    fn components_give_the_same_key_id_as_the_spki() {
        use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
        use spki::der::Decode;

        let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap().public_key();
        let from_key = RsaRecipient::from_key(key, OaepHash::Sha256).unwrap();
        let spki = SubjectPublicKeyInfoRef::from_der(from_key.spki_der()).unwrap();
        let ints = Vec::<UintRef<'_>>::from_der(spki.subject_public_key.raw_bytes()).unwrap();
        let from_parts = RsaRecipient::from_components(ints[0].as_bytes(), ints[1].as_bytes(), OaepHash::Sha1).unwrap();
        assert_eq!(from_parts.key_id(), from_key.key_id());
        assert_eq!(from_parts.bits(), 2048);
        let pem = from_parts.to_pem();
        assert!(pem.starts_with("seqshield-oaep-hash: sha1\n-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(from_key.to_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(RsaRecipient::from_pem(&pem, OaepHash::Sha256).unwrap().key_id(), from_key.key_id());
    }

    #[test]
    fn key_id_shape() {
        let id = key_id_for_spki(b"anything");
        assert!(id.starts_with("rsa-") && id.len() == 20, "{id}");
    }
}
