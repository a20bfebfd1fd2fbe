//! [`FileSigner`]: an EC P-384 signing key in a passphrase-encrypted file.
//!
//! | file               | content                                                    |
//! |--------------------|------------------------------------------------------------|
//! | `PATH`             | PKCS#8 `ENCRYPTED PRIVATE KEY`: PBES2, scrypt, AES-256-CBC, the [`FileKek`](crate::file::FileKek) scheme |
//! | `PATH.pub`         | the SPKI public key, for [`VerifyingKey::read`]            |
//!
//! Both are written mode 0600. `openssl pkey -in PATH -passin pass:...`
//! reads the private key.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_ASN1_SIGNING};

use super::{Signer, VerifyingKey};
use crate::file::{fs, keyfile};
use crate::KeyError;

/// Suffix that [`FileSigner::public_path`] appends to the key file name.
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";

/// An EC P-384 signing key loaded from a passphrase-encrypted file.
pub struct FileSigner {
    key: EcdsaKeyPair,
    public: VerifyingKey,
    path: PathBuf,
}

impl FileSigner {
    /// Generates a new P-384 key, writes it encrypted under `passphrase`
    /// to `path`, and its public key to [`public_path`](Self::public_path).
    /// The directory is created with mode 0700 if missing.
    ///
    /// Refuses ([`KeyError::KeyExists`]) if either file exists, and an
    /// empty passphrase ([`KeyError::EmptyPassphrase`]). Each file is
    /// written under a temporary name (created `O_EXCL`, mode 0600),
    /// synced, then moved into place; the private key's move never
    /// replaces an existing file.
    pub fn init(path: &Path, passphrase: &[u8]) -> Result<Self, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        let (Some(name), Some(dir)) = (path.file_name(), path.parent()) else {
            return Err(KeyError::KeyFileInvalid { path: path.to_owned(), reason: "the key path names no file" });
        };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let public_path = Self::public_path(path);
        for path in [path, &public_path] {
            if path.symlink_metadata().is_ok() {
                return Err(KeyError::KeyExists { location: path.display().to_string() });
            }
        }
        fs::create_private_dir(dir)?;

        let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)
            .map_err(|_| KeyError::Crypto { op: "EC P-384 key generation" })?;
        let public = VerifyingKey::from_point(key.public_key().as_ref())?;
        let pem = {
            // aws-lc's PKCS#8 document zeroes itself on drop.
            let pkcs8 = key.to_pkcs8v1().map_err(|_| KeyError::Crypto { op: "encoding the private key" })?;
            keyfile::encrypt_pkcs8(pkcs8.as_ref(), passphrase)?
        };

        let name = name.to_string_lossy();
        let staged_private = fs::Staged::write(dir, &name, pem.as_bytes())?;
        let staged_public = fs::Staged::write(dir, &format!("{name}{PUBLIC_KEY_SUFFIX}"), public.to_pem().as_bytes())?;
        staged_private.commit_no_replace(path)?;
        staged_public.commit(&public_path)?;
        fs::sync_dir(dir)?;
        Ok(Self { key, public, path: path.to_owned() })
    }

    /// Loads the key from `path`, decrypting it with `passphrase`.
    ///
    /// Refuses a file whose mode lets group or others in
    /// ([`KeyError::InsecurePermissions`]) and scrypt parameters above the
    /// `MAX_SCRYPT_*` bounds ([`KeyError::KdfTooCostly`]), both before any
    /// key derivation. A wrong passphrase gives
    /// [`KeyError::WrongPassphrase`]; a key file of another kind (an RSA
    /// KEK, another curve) [`KeyError::KeyFileInvalid`].
    pub fn open(path: &Path, passphrase: &[u8]) -> Result<Self, KeyError> {
        let pem = fs::read_private(path)?;
        let pkcs8 = keyfile::decrypt_pkcs8(path, &pem, passphrase)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8.as_bytes())
            .map_err(|_| KeyError::KeyFileInvalid { path: path.to_owned(), reason: "not an EC P-384 private key" })?;
        drop(pkcs8);
        let public = VerifyingKey::from_point(key.public_key().as_ref())?;
        Ok(Self { key, public, path: path.to_owned() })
    }

    /// Where [`init`](Self::init) writes the public key for `path`: the
    /// same directory, the file name with `.pub` appended
    /// (`sth-key.pem` → `sth-key.pem.pub`).
    pub fn public_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(PUBLIC_KEY_SUFFIX);
        path.with_file_name(name)
    }

    /// The private key file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Signer for FileSigner {
    fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        // aws-lc draws the nonce itself and ignores this argument.
        let signature =
            self.key.sign(&SystemRandom::new(), msg).map_err(|_| KeyError::Crypto { op: "ECDSA signing" })?;
        Ok(signature.as_ref().to_vec())
    }
}

impl fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSigner")
            .field("key_id", &self.public.key_id())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_path_appends_pub() {
        assert_eq!(FileSigner::public_path(Path::new("/k/sth-key.pem")), Path::new("/k/sth-key.pem.pub"));
        assert_eq!(FileSigner::public_path(Path::new("sth")), Path::new("sth.pub"));
    }

    #[test]
    fn path_without_a_file_name_is_refused() {
        for path in ["/", "keys/.."] {
            let err = FileSigner::init(Path::new(path), b"pass").unwrap_err();
            assert!(matches!(err, KeyError::KeyFileInvalid { .. }), "{path}: {err:?}");
        }
    }
}
