//! The encrypted private-key file: PKCS#8 `EncryptedPrivateKeyInfo`
//! (RFC 5958 §3) with PBES2 (RFC 8018 §6.2), scrypt (RFC 7914 §7) and
//! AES-256-CBC, in PEM as `ENCRYPTED PRIVATE KEY` (RFC 7468 §11).
//!
//! The same scheme holds RSA key-encryption keys ([`encrypt`], [`decrypt`])
//! and ECDSA signing keys ([`encrypt_pkcs8`], [`decrypt_pkcs8`]).
//!
//! `openssl pkey -in kek.pem -passin ...` reads these files. OpenSSL caps
//! scrypt memory at 32 MiB when it decrypts a key, which is why the work
//! factor we write is N = 2^14, r = 8 (16 MiB): a larger N would make the
//! file unreadable to OpenSSL.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PrivateDecryptingKey;
use pkcs8::pkcs5::{pbes2, scrypt};
use pkcs8::{EncryptedPrivateKeyInfo, LineEnding, PrivateKeyInfo, SecretDocument};
use seqshield_format::key::fill_random;
use zeroize::Zeroizing;

use crate::KeyError;

/// scrypt log2(N) written into new key files.
pub const SCRYPT_LOG_N: u8 = 14;
/// scrypt block size r written into new key files.
pub const SCRYPT_R: u32 = 8;
/// scrypt parallelism p written into new key files.
pub const SCRYPT_P: u32 = 1;

/// Largest scrypt log2(N) accepted from a key file: the file chooses the
/// work factor, so an attacker who can plant one could otherwise make us
/// spend unbounded time and memory before the passphrase is even checked.
pub const MAX_SCRYPT_LOG_N: u32 = 20;
/// Largest scrypt block size r accepted from a key file.
pub const MAX_SCRYPT_R: u64 = 16;
/// Largest scrypt parallelism p accepted from a key file.
pub const MAX_SCRYPT_P: u64 = 4;
/// Largest scrypt memory (128 · r · N bytes) accepted from a key file: 1 GiB.
pub const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// The PEM label of an encrypted PKCS#8 key.
pub(crate) const PEM_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Encrypts `key` under `passphrase` and returns the PEM text.
pub(crate) fn encrypt(key: &PrivateDecryptingKey, passphrase: &[u8]) -> Result<Zeroizing<String>, KeyError> {
    let der = key.as_der().map_err(fail("encoding the private key"))?;
    encrypt_pkcs8(der.as_ref(), passphrase)
}

/// Encrypts a PKCS#8 `PrivateKeyInfo` (DER) under `passphrase` and returns
/// the PEM text. Used for every kind of private key we keep in a file.
pub(crate) fn encrypt_pkcs8(pkcs8_der: &[u8], passphrase: &[u8]) -> Result<Zeroizing<String>, KeyError> {
    let info = PrivateKeyInfo::try_from(pkcs8_der).map_err(fail("encoding the private key"))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    fill_random(&mut salt);
    fill_random(&mut iv);
    let params = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32).map_err(fail("scrypt parameters"))?;
    let pbes2 = pbes2::Parameters::scrypt_aes256cbc(params, &salt, &iv).map_err(fail("PBES2 parameters"))?;
    let doc = info.encrypt_with_params(pbes2, passphrase).map_err(fail("encrypting the private key"))?;
    doc.to_pem(PEM_LABEL, LineEnding::LF).map_err(fail("PEM encoding"))
}

fn fail<E>(op: &'static str) -> impl FnOnce(E) -> KeyError {
    move |_| KeyError::Crypto { op }
}

/// Decrypts the PEM text of `path` into an RSA private key. The scrypt
/// parameters are checked against the `MAX_SCRYPT_*` bounds before any key
/// derivation.
pub(crate) fn decrypt(path: &Path, pem: &str, passphrase: &[u8]) -> Result<PrivateDecryptingKey, KeyError> {
    let plain = decrypt_pkcs8(path, pem, passphrase)?;
    PrivateDecryptingKey::from_pkcs8(plain.as_bytes())
        .map_err(|_| KeyError::KeyFileInvalid { path: path.to_owned(), reason: "not an RSA private key" })
}

/// Decrypts the PEM text of `path` into the PKCS#8 `PrivateKeyInfo` DER,
/// which is zeroed when dropped. The scrypt parameters are checked against
/// the `MAX_SCRYPT_*` bounds before any key derivation; a wrong passphrase
/// gives [`KeyError::WrongPassphrase`].
pub(crate) fn decrypt_pkcs8(path: &Path, pem: &str, passphrase: &[u8]) -> Result<SecretDocument, KeyError> {
    let invalid = |reason| KeyError::KeyFileInvalid { path: path.to_owned(), reason };
    let (label, doc) = pkcs8::Document::from_pem(pem).map_err(|_| invalid("not a PEM file"))?;
    match label {
        PEM_LABEL => {}
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
            return Err(invalid("the private key is not encrypted; refusing it"))
        }
        _ => return Err(invalid("PEM label is not ENCRYPTED PRIVATE KEY")),
    }
    let info =
        EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|_| invalid("malformed EncryptedPrivateKeyInfo"))?;
    let pbes2 = info.encryption_algorithm.pbes2().ok_or_else(|| invalid("key file encryption is not PBES2"))?;
    let scrypt = pbes2.kdf.scrypt().ok_or_else(|| invalid("key file KDF is not scrypt"))?;
    if !matches!(pbes2.encryption, pbes2::EncryptionScheme::Aes256Cbc { .. }) {
        return Err(invalid("key file cipher is not AES-256-CBC"));
    }
    check_scrypt(path, scrypt.cost_parameter, scrypt.block_size.into(), scrypt.parallelization.into())?;

    let plain = info.decrypt(passphrase).map_err(|e| match e {
        // A wrong passphrase shows up as bad CBC padding, or, rarely, as
        // padding that happens to check out over garbage DER. (pkcs5 0.7
        // reports bad padding as `EncryptFailed`.)
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed)
        | pkcs8::Error::Asn1(_) => KeyError::WrongPassphrase { path: path.to_owned() },
        _ => invalid("unsupported key file encryption parameters"),
    })?;
    if PrivateKeyInfo::try_from(plain.as_bytes()).is_err() {
        return Err(KeyError::WrongPassphrase { path: path.to_owned() });
    }
    Ok(plain)
}

/// Bounds the scrypt work factor read from a key file.
pub(crate) fn check_scrypt(path: &Path, n: u64, r: u64, p: u64) -> Result<(), KeyError> {
    let too_costly = |param, value, max| Err(KeyError::KdfTooCostly { path: path.to_owned(), param, value, max });
    if !n.is_power_of_two() || n < 2 {
        return Err(KeyError::KeyFileInvalid { path: path.to_owned(), reason: "scrypt N is not a power of two" });
    }
    let log_n = n.trailing_zeros();
    if log_n > MAX_SCRYPT_LOG_N {
        return too_costly("log_n", log_n.into(), MAX_SCRYPT_LOG_N.into());
    }
    if r > MAX_SCRYPT_R {
        return too_costly("r", r, MAX_SCRYPT_R);
    }
    if p > MAX_SCRYPT_P {
        return too_costly("p", p, MAX_SCRYPT_P);
    }
    let memory = 128 * r * n;
    if memory > MAX_SCRYPT_MEMORY {
        return too_costly("memory", memory, MAX_SCRYPT_MEMORY);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrypt_bounds() {
        let p = Path::new("kek.pem");
        assert!(check_scrypt(p, 1 << SCRYPT_LOG_N, SCRYPT_R.into(), SCRYPT_P.into()).is_ok());
        assert!(check_scrypt(p, 1 << 20, 8, 1).is_ok());
        assert!(matches!(check_scrypt(p, 1 << 21, 8, 1), Err(KeyError::KdfTooCostly { param: "log_n", .. })));
        assert!(matches!(check_scrypt(p, 1 << 14, 17, 1), Err(KeyError::KdfTooCostly { param: "r", .. })));
        assert!(matches!(check_scrypt(p, 1 << 14, 8, 5), Err(KeyError::KdfTooCostly { param: "p", .. })));
        assert!(matches!(check_scrypt(p, 1 << 20, 16, 1), Err(KeyError::KdfTooCostly { param: "memory", .. })));
        assert!(matches!(check_scrypt(p, 3, 8, 1), Err(KeyError::KeyFileInvalid { .. })));
        assert!(matches!(check_scrypt(p, 1, 8, 1), Err(KeyError::KeyFileInvalid { .. })));
    }
}
