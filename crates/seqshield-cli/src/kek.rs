//! Choosing the key-encryption key: a key directory or a PKCS#11 token.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use seqshield_keys::file::FileKek;
use seqshield_keys::pkcs11::{Pkcs11Config, Pkcs11Kek};
use seqshield_keys::rsa::RsaRecipient;
use seqshield_keys::{Kek, KeyInfo};
use zeroize::Zeroizing;

use crate::io::read_secret_file;

/// Where the KEK lives. Exactly one of `--kek-dir` or `--pkcs11-module`.
#[derive(Args, Debug, Clone)]
pub struct KekArgs {
    /// Directory holding a file KEK (kek.pem, kek.pub.pem).
    #[arg(long, value_name = "DIR", env = "SEQSHIELD_KEK_DIR", conflicts_with = "pkcs11_module")]
    pub kek_dir: Option<PathBuf>,
    /// File with the passphrase of the file KEK (else $SEQSHIELD_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so) holding the KEK.
    #[arg(long, value_name = "PATH", requires_all = ["token_label", "pin_file"])]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    #[arg(long, value_name = "L")]
    pub token_label: Option<String>,
    /// File with the user PIN of the PKCS#11 token.
    #[arg(long, value_name = "F")]
    pub pin_file: Option<PathBuf>,
    /// Label of the KEK inside the token.
    #[arg(long, value_name = "K", default_value = "seqshield-kek")]
    pub key_label: String,
}

/// A loaded KEK of either kind.
pub enum LoadedKek {
    /// RSA-4096 key files.
    File(FileKek),
    /// A key in a PKCS#11 token.
    Pkcs11(Pkcs11Kek),
}

impl LoadedKek {
    pub fn as_kek(&self) -> &dyn Kek {
        match self {
            Self::File(k) => k,
            Self::Pkcs11(k) => k,
        }
    }

    pub fn info(&self) -> KeyInfo {
        match self {
            Self::File(k) => k.info(),
            Self::Pkcs11(k) => k.info(),
        }
    }

    pub fn public(&self) -> Option<RsaRecipient> {
        match self {
            Self::File(k) => Some(k.public()),
            Self::Pkcs11(k) => k.public(),
        }
    }

    /// Whether the key lives in a PKCS#11 token (an HSM).
    pub fn in_hsm(&self) -> bool {
        matches!(self, Self::Pkcs11(_))
    }
}

impl seqshield_keys::Recipient for LoadedKek {
    fn key_id(&self) -> &str {
        self.as_kek().key_id()
    }

    fn wrap(&self, key: &seqshield_format::DataKey) -> Result<seqshield_format::WrappedKey, seqshield_keys::KeyError> {
        self.as_kek().wrap(key)
    }
}

impl Kek for LoadedKek {
    fn unwrap(
        &self,
        entry: &seqshield_format::WrappedKey,
    ) -> Result<seqshield_format::DataKey, seqshield_keys::KeyError> {
        self.as_kek().unwrap(entry)
    }
}

impl KekArgs {
    pub fn passphrase(&self) -> Result<Zeroizing<String>> {
        if let Some(f) = &self.passphrase_file {
            return read_secret_file(f);
        }
        match std::env::var("SEQSHIELD_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(Zeroizing::new(p)),
            _ => bail!("no passphrase: set SEQSHIELD_PASSPHRASE or pass --passphrase-file"),
        }
    }

    pub fn pkcs11_config(&self) -> Result<Option<Pkcs11Config>> {
        let Some(module) = &self.pkcs11_module else { return Ok(None) };
        let token_label = self.token_label.clone().context("--token-label is required with --pkcs11-module")?;
        let pin_file = self.pin_file.as_ref().context("--pin-file is required with --pkcs11-module")?;
        Ok(Some(Pkcs11Config {
            module: module.clone(),
            token_label,
            pin: read_secret_file(pin_file)?,
            key_label: self.key_label.clone(),
        }))
    }

    /// Opens the KEK named by the arguments.
    pub fn load(&self) -> Result<LoadedKek> {
        if let Some(cfg) = self.pkcs11_config()? {
            let k = Pkcs11Kek::open(&cfg).context("cannot open the PKCS#11 KEK")?;
            return Ok(LoadedKek::Pkcs11(k));
        }
        let dir = self
            .kek_dir
            .as_ref()
            .context("no KEK given: pass --kek-dir DIR or --pkcs11-module PATH --token-label L --pin-file F")?;
        let pass = self.passphrase()?;
        let k =
            FileKek::open(dir, pass.as_bytes()).with_context(|| format!("cannot open the KEK in {}", dir.display()))?;
        Ok(LoadedKek::File(k))
    }
}
