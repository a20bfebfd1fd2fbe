//! `export-c4gh` and `import-c4gh`: conversion to and from GA4GH Crypt4GH
//! v1, streaming, so plaintext never touches the disk.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use seqshield_format::{c4gh, Classification, DataKey, SealedHeader, StreamReader, Writer};
use seqshield_keys::unlock;

use crate::cmd::crypt::build_header;
use crate::io::{open_input, progress, read_secret_file, Output};
use crate::kek::KekArgs;
use crate::{data_on_stdout, Ctx, InOut};

/// `seqshield export-c4gh`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    kek: KekArgs,
    /// The Crypt4GH recipient's public key file.
    #[arg(long, value_name = "C4GH.pub")]
    recipient_pk: PathBuf,
    #[command(flatten)]
    io: InOut,
}

/// `seqshield import-c4gh`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Our Crypt4GH secret key (the file's recipient).
    #[arg(long, value_name = "C4GH.sec")]
    c4gh_sk: PathBuf,
    /// Passphrase file for C4GH.sec (else $C4GH_PASSPHRASE, if the key is protected).
    #[arg(long, value_name = "FILE")]
    c4gh_passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    kek: KekArgs,
    /// Classification of the new object.
    #[arg(long, default_value = "controlled")]
    classification: Classification,
    /// Content type recorded in the header.
    #[arg(long, default_value = "application/octet-stream")]
    content_type: String,
    #[command(flatten)]
    io: InOut,
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.recipient_pk)
        .with_context(|| format!("cannot read {}", a.recipient_pk.display()))?;
    let pk = c4gh::read_public_key(&text)
        .with_context(|| format!("bad Crypt4GH public key {}", a.recipient_pk.display()))?;
    let kek = a.kek.load()?;
    let (mut r, len) = open_input(&a.io.input)?;
    let sealed = SealedHeader::read_from(&mut r)?;
    let (key, header) = unlock(sealed, &[kek.as_kek()])?;
    data_on_stdout(&a.io.output);
    let mut out = Output::create(&a.io.output, a.io.force)?;
    let pb = progress(len, "export", ctx.quiet);
    let mut reader = StreamReader::with_options(pb.wrap_read(r), &header, &key, ctx.options());
    // An ephemeral writer key: the recipient needs only its own secret key.
    let sender = c4gh::SecretKey::generate();
    let mut enc = c4gh::Encryptor::new(&mut out, &sender, &[pk])?;
    while let Some(chunk) = reader.next_chunk().context("the seqshield object failed to authenticate")? {
        std::io::Write::write_all(&mut enc, chunk)?;
    }
    let summary = reader.summary().context("object ended before its trailer")?;
    enc.finish()?;
    pb.finish_and_clear();
    out.commit()?;
    ctx.report(
        serde_json::json!({ "ok": true, "command": "export-c4gh", "plaintext_bytes": summary.plaintext_len }),
        || format!("exported {} bytes to Crypt4GH v1", summary.plaintext_len),
    );
    Ok(())
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.c4gh_sk).with_context(|| format!("cannot read {}", a.c4gh_sk.display()))?;
    let pass = match &a.c4gh_passphrase_file {
        Some(f) => Some(read_secret_file(f)?),
        None => std::env::var("C4GH_PASSPHRASE").ok().map(zeroize::Zeroizing::new),
    };
    let sk = c4gh::read_secret_key(&text, pass.as_ref().map(|p| p.as_bytes()))
        .with_context(|| format!("cannot load Crypt4GH secret key {}", a.c4gh_sk.display()))?;
    let recipients = crate::cmd::crypt::recipients_for(&a.kek)?;
    let key = DataKey::generate();
    let header = build_header(
        &key,
        &recipients,
        a.classification,
        &a.content_type,
        seqshield_format::limits::DEFAULT_SEGMENT_SIZE,
        &[],
    )?;
    let (input, len) = open_input(&a.io.input)?;
    data_on_stdout(&a.io.output);
    let mut out = Output::create(&a.io.output, a.io.force)?;
    let pb = progress(len, "import", ctx.quiet);
    let mut dec = c4gh::Decryptor::new(pb.wrap_read(input), &sk).context("cannot open the Crypt4GH file")?;
    let mut w = Writer::with_options(&mut out, &header, &key, ctx.options())?;
    crate::io::copy_large(&mut dec, &mut w).context("the Crypt4GH file failed to decrypt")?;
    let summary = w.finish()?.summary;
    pb.finish_and_clear();
    out.commit()?;
    ctx.report(
        serde_json::json!({ "ok": true, "command": "import-c4gh", "segments": summary.segment_count,
                            "plaintext_bytes": summary.plaintext_len, "merkle_root": hex::encode(summary.merkle_root) }),
        || format!("imported {} bytes into a seqshield object ({} segments)", summary.plaintext_len, summary.segment_count),
    );
    Ok(())
}
