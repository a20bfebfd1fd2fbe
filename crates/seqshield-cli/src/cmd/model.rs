//! `seqshield model pack` and `seqshield model verify`: encrypted, signed
//! model bundles for the annotation service (`seqshield_annotate::bundle`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seqshield_annotate::bundle::{self, PackOptions, SignedBundle};
use seqshield_keys::sign::{FileSigner, VerifyingKey};
use seqshield_keys::Recipient;
use serde_json::json;

use crate::exit::bad_input;
use crate::kek::KekArgs;
use crate::Ctx;

/// Where the annotation service keeps its files, under the data directory.
pub const ANNOTATE_DIR: &str = "annotate";
/// The model-signing key (P-384, encrypted with the KEK's passphrase).
pub const SIGNING_KEY_FILE: &str = "model-signing.pem";
/// The default bundle path.
pub const BUNDLE_FILE: &str = "model.bundle";

/// `seqshield model …`.
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Encrypt a model directory (config.json, tokenizer.json, one
    /// *.safetensors) into a bundle for the gateway's KEK, with a manifest
    /// of SHA-256 hashes signed with ECDSA P-384.
    Pack(PackArgs),
    /// Check a bundle: signature, signer, version, and (with the KEK) the
    /// decrypted payload and every file's hash. Nothing is written.
    Verify(VerifyArgs),
}

/// The data directory and KEK, as `serve` uses them.
#[derive(Args, Debug)]
pub struct KeyArgs {
    /// The gateway's data directory (KEK and model-signing key).
    #[arg(long, value_name = "DIR", env = "SEQSHIELD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The model-signing key [default: DATA/annotate/model-signing.pem
    /// under --data-dir, created on first pack; its public half next to
    /// it, *.pub.pem].
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    #[command(flatten)]
    pub kek: KekArgs,
}

impl KeyArgs {
    fn signing_key_path(&self) -> PathBuf {
        self.signing_key.clone().unwrap_or_else(|| self.data_dir.join(ANNOTATE_DIR).join(SIGNING_KEY_FILE))
    }
}

/// `seqshield model pack`.
#[derive(Args, Debug)]
pub struct PackArgs {
    /// The model directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The bundle to write [default: DATA/annotate/model.bundle].
    #[arg(short, long, value_name = "BUNDLE")]
    pub output: Option<PathBuf>,
    /// Model name in the manifest [default: the directory's name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Model version in the manifest.
    #[arg(long = "model-version", value_name = "V", default_value = "1")]
    pub model_version: String,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `seqshield model verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The bundle [default: DATA/annotate/model.bundle].
    #[arg(value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// The trusted signing key (SPKI PEM) [default: the data directory's].
    #[arg(long, value_name = "PEM")]
    pub public_key: Option<PathBuf>,
    /// Refuse another model version.
    #[arg(long = "model-version", value_name = "V")]
    pub model_version: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Runs a `model` subcommand.
pub fn run(ctx: &Ctx, cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Pack(a) => pack(ctx, a),
        ModelCommand::Verify(a) => verify(ctx, a),
    }
}

fn open_signer(keys: &KeyArgs, pass: Option<&str>) -> Result<FileSigner> {
    let path = keys.signing_key_path();
    let pass = match pass {
        Some(p) => zeroize::Zeroizing::new(p.to_owned()),
        None => keys.kek.passphrase().context("the model-signing key needs a passphrase (--passphrase-file)")?,
    };
    if path.exists() {
        FileSigner::open(&path, pass.as_bytes())
            .with_context(|| format!("cannot open the model-signing key {}", path.display()))
    } else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        eprintln!("seqshield: no model-signing key in {}: generating an EC P-384 key", path.display());
        FileSigner::init(&path, pass.as_bytes())
            .with_context(|| format!("cannot create the model-signing key {}", path.display()))
    }
}

/// The trusted public key of `keys`' data directory.
pub fn default_public_key(data_dir: &Path) -> PathBuf {
    FileSigner::public_path(&data_dir.join(ANNOTATE_DIR).join(SIGNING_KEY_FILE))
}

fn pack(ctx: &Ctx, a: PackArgs) -> Result<()> {
    let (kek, pass) = super::serve::open_kek_at(&a.keys.data_dir, &a.keys.kek)?;
    let signer = open_signer(&a.keys, pass.as_deref().map(String::as_str))?;
    let out = a.output.clone().unwrap_or_else(|| a.keys.data_dir.join(ANNOTATE_DIR).join(BUNDLE_FILE));
    let name = match &a.name {
        Some(n) => n.clone(),
        None => a.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()),
    };
    let recipient: &dyn Recipient = kek.as_kek();
    let manifest =
        bundle::pack(&a.dir, &out, &PackOptions { name, version: a.model_version.clone() }, &signer, &[recipient])
            .map_err(|e| match e {
                bundle::BundleError::Io { .. } | bundle::BundleError::Key(_) => anyhow::Error::new(e),
                other => bad_input(other.to_string()),
            })?;
    let v = json!({
        "bundle": out,
        "name": manifest.name,
        "version": manifest.version,
        "signer": manifest.signer,
        "files": manifest.files,
        "public_key": FileSigner::public_path(signer.path()),
    });
    ctx.report(v, || {
        let mut s = format!(
            "packed {} version {} into {} (signed by {})\n",
            manifest.name,
            manifest.version,
            out.display(),
            manifest.signer
        );
        for f in &manifest.files {
            s.push_str(&format!("  {:<24} {:>12}  sha256 {}\n", f.name, f.size, f.sha256));
        }
        s.push_str(&format!("trust it with the public key {}", FileSigner::public_path(signer.path()).display()));
        s
    });
    Ok(())
}

fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    let path = a.bundle.clone().unwrap_or_else(|| a.keys.data_dir.join(ANNOTATE_DIR).join(BUNDLE_FILE));
    let pk_path = a.public_key.clone().unwrap_or_else(|| match &a.keys.signing_key {
        Some(k) => FileSigner::public_path(k),
        None => default_public_key(&a.keys.data_dir),
    });
    let trusted =
        VerifyingKey::read(&pk_path).with_context(|| format!("cannot read the trusted key {}", pk_path.display()))?;
    let signed = SignedBundle::read(&path).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let (kek, _) = super::serve::open_kek_at(&a.keys.data_dir, &a.keys.kek)?;
    let files = signed
        .open(&trusted, kek.as_kek(), a.model_version.as_deref())
        .map_err(|e| crate::exit::integrity("model_bundle_invalid", format!("{}: {e}", path.display())))?;
    let m = &files.manifest;
    let v = json!({
        "bundle": path,
        "ok": true,
        "name": m.name,
        "version": m.version,
        "signer": m.signer,
        "files": m.files,
        "locked": files.all_locked(),
    });
    ctx.report(v, || {
        format!(
            "ok: {} version {}, signed by {}, {} files decrypted in memory and matching their SHA-256{}",
            m.name,
            m.version,
            m.signer,
            m.files.len(),
            if files.all_locked() { " (pages locked)" } else { "" }
        )
    });
    Ok(())
}
