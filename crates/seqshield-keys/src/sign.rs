//! Signing keys, for the audit log's signed tree heads.
//!
//! One algorithm for now, [`SignatureAlgorithm::EcdsaP384Sha384`]: ECDSA
//! (FIPS 186-5 §6.4) on P-384 over SHA-384, each signature an ASN.1 DER
//! `Ecdsa-Sig-Value` (RFC 3279 §2.2.3), public keys SPKI with
//! `id-ecPublicKey` and the named curve `secp384r1` (RFC 5480 §2). Two places
//! to keep the private key, both behind the [`Signer`] trait:
//!
//! | signer            | private key                                                     |
//! |-------------------|-----------------------------------------------------------------|
//! | [`FileSigner`]    | a PKCS#8 `ENCRYPTED PRIVATE KEY` file, the scrypt/PBES2 scheme of [`FileKek`](crate::file::FileKek) |
//! | [`Pkcs11Signer`]  | a P-384 pair generated in a PKCS#11 token, sensitive and never extractable |
//!
//! Verifiers need only the public half, a [`VerifyingKey`], kept as an SPKI
//! PEM (`-----BEGIN PUBLIC KEY-----`). Its key id, `ec-` and 16 hex digits
//! of SHA-256 over the canonical SPKI DER, is the same whichever backend
//! holds the private key.
//!
//! ```
//! use seqshield_keys::sign::{FileSigner, Signer, VerifyingKey};
//!
//! # fn main() -> Result<(), seqshield_keys::KeyError> {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("sth-key.pem");
//! let signer = FileSigner::init(&path, b"a long passphrase")?;
//! let signature = signer.sign(b"tree head")?;
//!
//! let public = VerifyingKey::read(&FileSigner::public_path(&path))?;
//! assert_eq!(public.key_id(), signer.verifying_key().key_id());
//! public.verify(b"tree head", &signature)?;
//! assert!(public.verify(b"another tree head", &signature).is_err());
//! # Ok(())
//! # }
//! ```

use std::fmt;

use crate::KeyError;

mod file;
mod pkcs11;
mod verifying;

pub use file::{FileSigner, PUBLIC_KEY_SUFFIX};
pub use pkcs11::{Pkcs11Signer, DEFAULT_SIGNING_KEY_LABEL};
pub use verifying::{VerifyingKey, MAX_SIGNATURE_LEN, MAX_VERIFYING_KEY_FILE_LEN};

/// A signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ECDSA on NIST P-384 with SHA-384, ASN.1 DER signatures.
    EcdsaP384Sha384,
}

impl SignatureAlgorithm {
    /// The stable name, as written into signed records:
    /// `ecdsa-p384-sha384`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP384Sha384 => "ecdsa-p384-sha384",
        }
    }

    /// The algorithm with this exact [`name`](Self::name), if any.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "ecdsa-p384-sha384" => Some(Self::EcdsaP384Sha384),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that signs with a private key it may never reveal.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public half, which verifies this signer's signatures.
    fn verifying_key(&self) -> &VerifyingKey;

    /// An ASN.1 DER-encoded ECDSA signature over SHA-384(`msg`).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        let alg = SignatureAlgorithm::EcdsaP384Sha384;
        assert_eq!(alg.name(), "ecdsa-p384-sha384");
        assert_eq!(alg.to_string(), "ecdsa-p384-sha384");
        assert_eq!(SignatureAlgorithm::from_name("ecdsa-p384-sha384"), Some(alg));
        for other in ["", "ECDSA-P384-SHA384", "ecdsa-p256-sha256", "ecdsa-p384-sha384 "] {
            assert_eq!(SignatureAlgorithm::from_name(other), None, "{other:?}");
        }
    }
}
