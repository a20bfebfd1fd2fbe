//! `seqshield keys …`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqshield_format::c4gh;
use seqshield_keys::file::FileKek;
use seqshield_keys::pkcs11::{Pkcs11Kek, Pkcs11KeyKind};
use seqshield_keys::rsa::{OaepHash, RsaRecipient};

use crate::io::{read_secret_file, Output};
use crate::kek::KekArgs;
use crate::Ctx;

/// Key management.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a KEK: RSA-4096 key files in --kek-dir, or a key generated inside a PKCS#11 token.
    Init(InitArgs),
    /// Show the KEK's id, algorithm and location.
    List(ListArgs),
    /// Print the KEK's public key (PEM), for others to encrypt to it with --recipient or rewrap --to.
    ExportPublic(ExportArgs),
    /// Generate a GA4GH Crypt4GH X25519 key pair in the crypt4gh key-file formats.
    C4ghKeygen(C4ghKeygenArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Algorithm {
    /// RSA-4096 with OAEP (file KEKs and tokens).
    RsaOaep,
    /// AES-256 key wrap, RFC 3394 (tokens only).
    AesKw,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Hash {
    /// SHA-1 with MGF1-SHA1 (for tokens such as SoftHSM2 that lack SHA-256 OAEP).
    Sha1,
    /// SHA-256 with MGF1-SHA256.
    Sha256,
}

/// `keys init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    kek: KekArgs,
    /// Key type (tokens); file KEKs are always RSA-4096 OAEP-SHA256.
    #[arg(long, value_enum, default_value = "rsa-oaep")]
    algorithm: Algorithm,
    /// OAEP hash for an RSA key in a token.
    #[arg(long, value_enum, default_value = "sha256")]
    oaep_hash: Hash,
}

/// `keys list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    kek: KekArgs,
}

/// `keys export-public`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    kek: KekArgs,
    /// Write the PEM here instead of stdout.
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// `keys c4gh-keygen`.
#[derive(Args, Debug)]
pub struct C4ghKeygenArgs {
    /// Secret key file to create.
    #[arg(long, value_name = "FILE")]
    sk: PathBuf,
    /// Public key file to create.
    #[arg(long, value_name = "FILE")]
    pk: PathBuf,
    /// Protect the secret key with the passphrase in this file (scrypt + ChaCha20-Poly1305).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, c: KeysCommand) -> Result<()> {
    match c {
        KeysCommand::Init(a) => init(ctx, a),
        KeysCommand::List(a) => list(ctx, a),
        KeysCommand::ExportPublic(a) => export_public(ctx, a),
        KeysCommand::C4ghKeygen(a) => c4gh_keygen(ctx, a),
    }
}

fn init(ctx: &Ctx, a: InitArgs) -> Result<()> {
    let info = if let Some(cfg) = a.kek.pkcs11_config()? {
        let kind = match (a.algorithm, a.oaep_hash) {
            (Algorithm::AesKw, _) => Pkcs11KeyKind::AesKeyWrap,
            (Algorithm::RsaOaep, Hash::Sha1) => Pkcs11KeyKind::RsaOaep(OaepHash::Sha1),
            (Algorithm::RsaOaep, Hash::Sha256) => Pkcs11KeyKind::RsaOaep(OaepHash::Sha256),
        };
        Pkcs11Kek::init(&cfg, kind).context("cannot create the KEK in the token")?.info()
    } else {
        let dir = a
            .kek
            .kek_dir
            .as_ref()
            .context("pass --kek-dir DIR or --pkcs11-module PATH --token-label L --pin-file F")?;
        if matches!(a.algorithm, Algorithm::AesKw) {
            bail!("AES key wrap needs a PKCS#11 token; a file KEK is RSA-4096");
        }
        let pass = a.kek.passphrase()?;
        FileKek::init(dir, pass.as_bytes()).with_context(|| format!("cannot create a KEK in {}", dir.display()))?.info()
    };
    ctx.report(serde_json::json!({ "ok": true, "command": "keys init", "key": info }), || {
        format!("created KEK {} ({}, {} bits) at {}", info.key_id, info.algorithm, info.bits, info.location)
    });
    Ok(())
}

fn list(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let info = if a.kek.pkcs11_module.is_none() {
        // The public half is enough to list a file KEK: no passphrase needed.
        let dir = a.kek.kek_dir.as_ref().context("pass --kek-dir DIR or --pkcs11-module …")?;
        let p = RsaRecipient::read(&dir.join("kek.pub.pem"))?;
        serde_json::json!({ "key_id": p.key_id(), "backend": "file", "algorithm": "rsa-oaep-sha256",
                            "bits": p.bits(), "location": dir })
    } else {
        serde_json::to_value(a.kek.load()?.info())?
    };
    ctx.report(serde_json::json!({ "ok": true, "command": "keys list", "keys": [info.clone()] }), || {
        format!(
            "{}  {}  {} bits  {}  {}",
            info["key_id"], info["algorithm"], info["bits"], info["backend"], info["location"]
        )
        .replace('"', "")
    });
    Ok(())
}

fn export_public(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    let pem = if a.kek.pkcs11_module.is_none() {
        let dir = a.kek.kek_dir.as_ref().context("pass --kek-dir DIR or --pkcs11-module …")?;
        RsaRecipient::read(&dir.join("kek.pub.pem"))?.to_pem()
    } else {
        let kek = a.kek.load()?;
        kek.public().context("this KEK is a symmetric key (AES key wrap): it has no public key")?.to_pem()
    };
    crate::data_on_stdout(&a.output);
    let mut out = Output::create(&a.output, a.force)?;
    out.write_all(pem.as_bytes())?;
    out.commit()?;
    if a.output != std::path::Path::new("-") {
        ctx.report(serde_json::json!({ "ok": true, "command": "keys export-public", "output": a.output }), || {
            format!("public key written to {}", a.output.display())
        });
    }
    Ok(())
}

fn c4gh_keygen(ctx: &Ctx, a: C4ghKeygenArgs) -> Result<()> {
    let pass = a.passphrase_file.as_deref().map(read_secret_file).transpose()?;
    let sk = c4gh::SecretKey::generate();
    let sk_text = c4gh::write_secret_key(&sk, pass.as_ref().map(|p| p.as_bytes()));
    let pk_text = c4gh::write_public_key(&sk.public_key());
    let mut sk_out = Output::create(&a.sk, false)?;
    sk_out.write_all(sk_text.as_bytes())?;
    if let Output::Atomic { tmp, .. } = &sk_out {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let mut pk_out = Output::create(&a.pk, false)?;
    pk_out.write_all(pk_text.as_bytes())?;
    sk_out.commit()?;
    pk_out.commit()?;
    ctx.report(serde_json::json!({ "ok": true, "command": "keys c4gh-keygen", "sk": a.sk, "pk": a.pk }), || {
        format!("Crypt4GH key pair written to {} and {}", a.sk.display(), a.pk.display())
    });
    Ok(())
}
