//! An RSA-4096 key-encryption key kept in a passphrase-encrypted file.
//!
//! A key directory holds two files, both mode 0600:
//!
//! | file          | content                                                  |
//! |---------------|----------------------------------------------------------|
//! | `kek.pem`     | PKCS#8 `ENCRYPTED PRIVATE KEY`: PBES2, scrypt, AES-256-CBC |
//! | `kek.pub.pem` | the SPKI public key, for [`RsaRecipient::read`]          |
//!
//! `openssl pkey -in kek.pem -passin pass:...` reads the private key. New
//! entries are wrapped with RSA-OAEP-SHA-256; entries wrapped with
//! OAEP-SHA-1 (e.g. for a token-held twin of the key) unwrap too.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use seqshield_format::{DataKey, WrappedKey};
use zeroize::Zeroizing;

use crate::rsa::{KeyInfo, OaepHash, RsaRecipient};
use crate::{Kek, KeyError, Recipient};

pub(crate) mod fs;
pub(crate) mod keyfile;

pub use fs::MAX_KEY_FILE_LEN;
pub use keyfile::{MAX_SCRYPT_LOG_N, MAX_SCRYPT_MEMORY, MAX_SCRYPT_P, MAX_SCRYPT_R, SCRYPT_LOG_N, SCRYPT_P, SCRYPT_R};

/// File name of the encrypted private key in a key directory.
pub const PRIVATE_KEY_FILE: &str = "kek.pem";
/// File name of the public key in a key directory.
pub const PUBLIC_KEY_FILE: &str = "kek.pub.pem";

/// An RSA-4096 key pair loaded from a key directory.
pub struct FileKek {
    private: OaepPrivateDecryptingKey,
    public: RsaRecipient,
    dir: PathBuf,
}

impl FileKek {
    /// Generates a new RSA-4096 key pair and writes it to `dir`, which is
    /// created with mode 0700 if missing.
    ///
    /// Refuses ([`KeyError::KeyExists`]) if either key file exists, and an
    /// empty passphrase. Each file is written under a temporary name
    /// (created `O_EXCL`, mode 0600), synced, then moved into place; the
    /// private key's move never replaces an existing file.
    pub fn init(dir: &Path, passphrase: &[u8]) -> Result<Self, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        let private_path = dir.join(PRIVATE_KEY_FILE);
        let public_path = dir.join(PUBLIC_KEY_FILE);
        for path in [&private_path, &public_path] {
            if path.symlink_metadata().is_ok() {
                return Err(KeyError::KeyExists { location: path.display().to_string() });
            }
        }
        fs::create_private_dir(dir)?;

        let key = PrivateDecryptingKey::generate(KeySize::Rsa4096)
            .map_err(|_| KeyError::Crypto { op: "RSA-4096 key generation" })?;
        let public = RsaRecipient::from_key(key.public_key(), OaepHash::Sha256)?;
        let pem: Zeroizing<String> = keyfile::encrypt(&key, passphrase)?;

        let staged_private = fs::Staged::write(dir, PRIVATE_KEY_FILE, pem.as_bytes())?;
        let staged_public = fs::Staged::write(dir, PUBLIC_KEY_FILE, public.to_pem().as_bytes())?;
        staged_private.commit_no_replace(&private_path)?;
        staged_public.commit(&public_path)?;
        fs::sync_dir(dir)?;
        Self::from_key(key, public, dir)
    }

    /// Loads the key pair from `dir`, decrypting `kek.pem` with
    /// `passphrase`.
    ///
    /// Refuses a `kek.pem` whose mode lets group or others in
    /// ([`KeyError::InsecurePermissions`]) and scrypt parameters above the
    /// `MAX_SCRYPT_*` bounds ([`KeyError::KdfTooCostly`]), both before any
    /// key derivation. A wrong passphrase gives [`KeyError::WrongPassphrase`].
    pub fn open(dir: &Path, passphrase: &[u8]) -> Result<Self, KeyError> {
        let path = dir.join(PRIVATE_KEY_FILE);
        let pem = fs::read_private(&path)?;
        let key = keyfile::decrypt(&path, &pem, passphrase)?;
        let public = RsaRecipient::from_key(key.public_key(), OaepHash::Sha256)?;
        Self::from_key(key, public, dir)
    }

    fn from_key(key: PrivateDecryptingKey, public: RsaRecipient, dir: &Path) -> Result<Self, KeyError> {
        let private = OaepPrivateDecryptingKey::new(key).map_err(|_| KeyError::Crypto { op: "RSA-OAEP key setup" })?;
        Ok(Self { private, public, dir: dir.to_owned() })
    }

    /// The public half, wrapping with RSA-OAEP-SHA-256.
    pub fn public(&self) -> RsaRecipient {
        self.public.clone()
    }

    /// A description of the key for display.
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            key_id: self.public.key_id().to_owned(),
            backend: "file",
            algorithm: self.public.oaep_hash().algorithm_id().to_owned(),
            bits: u32::try_from(self.public.bits()).unwrap_or(u32::MAX),
            location: self.dir.display().to_string(),
        }
    }
}

impl Recipient for FileKek {
    fn key_id(&self) -> &str {
        self.public.key_id()
    }

    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        self.public.wrap(key)
    }
}

impl Kek for FileKek {
    fn unwrap(&self, entry: &WrappedKey) -> Result<DataKey, KeyError> {
        if entry.key_id != self.key_id() {
            return Err(KeyError::NoMatchingRecipient {
                available: vec![self.key_id().to_owned()],
                in_object: vec![entry.key_id.clone()],
            });
        }
        let hash = OaepHash::from_algorithm_id(&entry.algorithm).ok_or_else(|| KeyError::UnsupportedAlgorithm {
            key_id: entry.key_id.clone(),
            algorithm: entry.algorithm.clone(),
        })?;
        let failed = || KeyError::UnwrapFailed { key_id: entry.key_id.clone() };
        if entry.wrapped.len() != self.private.key_size_bytes() {
            return Err(failed());
        }
        let mut out = Zeroizing::new(vec![0u8; self.private.min_output_size()]);
        let plain = self.private.decrypt(hash.aws_lc(), &entry.wrapped, &mut out, None).map_err(|_| failed())?;
        DataKey::from_slice(plain).ok_or_else(failed)
    }
}

impl fmt::Debug for FileKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKek").field("key_id", &self.public.key_id()).field("dir", &self.dir).finish_non_exhaustive()
    }
}
