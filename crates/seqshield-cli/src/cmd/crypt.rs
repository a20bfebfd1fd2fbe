//! `encrypt`, `decrypt`, `verify`, `rewrap`, `inspect`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use seqshield_format::{parallel, Classification, DataKey, Header, SealedHeader, StreamReader, Summary, Writer};
use seqshield_keys::pkcs11::Pkcs11Kek;
use seqshield_keys::rsa::RsaRecipient;
use seqshield_keys::{unlock, Recipient};

use crate::io::{copy_large, open_input, progress, regular_file, Output};
use crate::kek::KekArgs;
use crate::{data_on_stdout, Ctx, InOut};

/// `seqshield encrypt`.
#[derive(Args, Debug)]
pub struct EncryptArgs {
    #[command(flatten)]
    kek: KekArgs,
    /// Data classification label: public, internal, restricted or controlled.
    #[arg(long, default_value = "internal")]
    classification: Classification,
    /// Also wrap the data key for this RSA public key (PEM, from `keys export-public`). Repeatable.
    #[arg(long = "recipient", value_name = "PUBKEY")]
    recipients: Vec<PathBuf>,
    /// Content type recorded in the header.
    #[arg(long, default_value = "application/octet-stream")]
    content_type: String,
    /// Plaintext bytes per segment (1 KiB to 16 MiB).
    #[arg(long, default_value_t = seqshield_format::limits::DEFAULT_SEGMENT_SIZE)]
    segment_size: u32,
    /// Authenticated (not encrypted) metadata entry. Repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
    #[command(flatten)]
    io: InOut,
}

/// Everyone an object is encrypted for: the KEK given (if any) plus `--recipient`s.
pub fn encryption_recipients(kek: &KekArgs, extra: &[PathBuf]) -> Result<Vec<Box<dyn Recipient>>> {
    let mut out: Vec<Box<dyn Recipient>> = Vec::new();
    if let Some(cfg) = kek.pkcs11_config()? {
        out.push(Box::new(Pkcs11Kek::open(&cfg).context("cannot open the PKCS#11 KEK")?));
    } else if let Some(dir) = &kek.kek_dir {
        // Encrypting needs only the public half: no passphrase.
        let pubkey = dir.join("kek.pub.pem");
        out.push(Box::new(RsaRecipient::read(&pubkey).with_context(|| format!("cannot read {}", pubkey.display()))?));
    }
    for p in extra {
        out.push(Box::new(
            RsaRecipient::read(p).with_context(|| format!("cannot read recipient key {}", p.display()))?,
        ));
    }
    if out.is_empty() {
        bail!("nobody to encrypt for: pass --kek-dir DIR, --pkcs11-module …, or --recipient PUBKEY");
    }
    Ok(out)
}

/// Builds a header wrapping `key` for every recipient.
pub fn build_header(
    key: &DataKey,
    recipients: &[Box<dyn Recipient>],
    classification: Classification,
    content_type: &str,
    segment_size: u32,
    meta: &[String],
) -> Result<Header> {
    let mut entries = Vec::with_capacity(recipients.len());
    for r in recipients {
        entries.push(r.wrap(key).with_context(|| format!("cannot wrap the data key for {}", r.key_id()))?);
    }
    let mut header = Header::new(classification, content_type, entries)?.with_segment_size(segment_size)?;
    for m in meta {
        let (k, v) = m.split_once('=').with_context(|| format!("--meta {m:?} is not KEY=VALUE"))?;
        header = header.with_metadata(k, v)?;
    }
    Ok(header)
}

/// The KEK's own recipient entry only.
pub fn recipients_for(kek: &KekArgs) -> Result<Vec<Box<dyn Recipient>>> {
    encryption_recipients(kek, &[])
}

pub fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    let recipients = encryption_recipients(&a.kek, &a.recipients)?;
    let key = DataKey::generate();
    let header = build_header(&key, &recipients, a.classification, &a.content_type, a.segment_size, &a.meta)?;
    data_on_stdout(&a.io.output);
    let summary = if let Some((file, len)) = regular_file(&a.io.input)? {
        // A regular file: workers read and seal batches in parallel.
        let mut out = Output::create(&a.io.output, a.io.force)?;
        let pb = progress(Some(len), "encrypt", ctx.quiet);
        let (_, summary) = parallel::encrypt_from(&file, len, pb.wrap_write(&mut out), &header, &key, ctx.options())
            .context("encryption failed")?;
        if file.metadata()?.len() != len {
            bail!("{} changed size while it was being encrypted", a.io.input.display());
        }
        pb.finish_and_clear();
        out.commit()?;
        summary
    } else {
        let (input, len) = open_input(&a.io.input)?;
        let mut out = Output::create(&a.io.output, a.io.force)?;
        let pb = progress(len, "encrypt", ctx.quiet);
        let mut w = Writer::with_options(&mut out, &header, &key, ctx.options())?;
        copy_large(&mut pb.wrap_read(input), &mut w).context("encryption failed")?;
        let summary = w.finish()?.summary;
        pb.finish_and_clear();
        out.commit()?;
        summary
    };
    let ids: Vec<&str> = recipients.iter().map(|r| r.key_id()).collect();
    ctx.report(
        serde_json::json!({
            "ok": true, "command": "encrypt", "output": a.io.output, "classification": a.classification,
            "recipients": ids, "segments": summary.segment_count, "plaintext_bytes": summary.plaintext_len,
            "merkle_root": hex::encode(summary.merkle_root),
        }),
        || {
            format!(
                "encrypted {} bytes in {} segments for {} ({}), Merkle root {}",
                summary.plaintext_len,
                summary.segment_count,
                ids.join(", "),
                a.classification,
                hex::encode(summary.merkle_root)
            )
        },
    );
    Ok(())
}

/// `seqshield decrypt`.
#[derive(Args, Debug)]
pub struct DecryptArgs {
    #[command(flatten)]
    kek: KekArgs,
    #[command(flatten)]
    io: InOut,
}

/// Where an opened object's segments come from.
enum Source {
    /// A regular file: decrypted by the parallel pipeline.
    File(std::fs::File, u64),
    /// Anything else, positioned after the header: the streaming reader.
    Stream(Box<dyn Read>, Option<u64>),
}

/// An object whose header has authenticated.
struct Opened {
    source: Source,
    key: DataKey,
    header: Header,
}

/// Opens an object: reads its header and unwraps the data key.
fn open_object(kek: &KekArgs, input: &std::path::Path) -> Result<Opened> {
    let kek = kek.load()?;
    let (source, sealed) = if let Some((file, len)) = regular_file(input)? {
        let sealed = SealedHeader::read_from(&mut &file).with_context(|| format!("cannot read {}", input.display()))?;
        (Source::File(file, len), sealed)
    } else {
        let (mut r, len) = open_input(input)?;
        let sealed = SealedHeader::read_from(&mut r).with_context(|| format!("cannot read {}", input.display()))?;
        (Source::Stream(r, len), sealed)
    };
    let (key, header) = unlock(sealed, &[kek.as_kek()])?;
    Ok(Opened { source, key, header })
}

impl Opened {
    /// Decrypts every segment into `out`, releasing only authenticated data.
    fn decrypt_into(self, ctx: &Ctx, label: &str, out: &mut dyn Write) -> Result<Summary> {
        match self.source {
            Source::File(file, len) => {
                let pb = progress(Some(len), label, ctx.quiet);
                let (_, s) =
                    parallel::decrypt_to(&file, len, &self.header, &self.key, pb.wrap_write(out), ctx.options())?;
                pb.finish_and_clear();
                Ok(s)
            }
            Source::Stream(r, len) => {
                let pb = progress(len, label, ctx.quiet);
                let mut reader = StreamReader::with_options(pb.wrap_read(r), &self.header, &self.key, ctx.options());
                while let Some(chunk) = reader.next_chunk()? {
                    out.write_all(chunk).context("cannot write output")?;
                }
                pb.finish_and_clear();
                reader.summary().context("object ended before its trailer")
            }
        }
    }
}

fn summary_json(command: &str, header: &Header, s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "ok": true, "command": command, "classification": header.classification(),
        "content_type": header.content_type(), "segments": s.segment_count,
        "plaintext_bytes": s.plaintext_len, "merkle_root": hex::encode(s.merkle_root),
    })
}

pub fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    let opened = open_object(&a.kek, &a.io.input)?;
    data_on_stdout(&a.io.output);
    let mut out = Output::create(&a.io.output, a.io.force)?;
    let header = opened.header.clone();
    // Each batch has authenticated before it is written; a regular-file
    // output is renamed into place only after the whole object verified.
    let summary = opened.decrypt_into(ctx, "decrypt", &mut out).context("decryption failed")?;
    out.commit()?;
    ctx.report(summary_json("decrypt", &header, &summary), || {
        if a.io.output == std::path::Path::new("-") {
            String::new()
        } else {
            format!("decrypted {} bytes ({} segments, authenticated)", summary.plaintext_len, summary.segment_count)
        }
    });
    Ok(())
}

/// `seqshield verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    kek: KekArgs,
    /// With an object id: the gateway's base URL (as for every client command).
    #[arg(long, env = crate::client::ENV_SERVER, value_name = "URL", value_parser = crate::client::parse_server)]
    server: Option<reqwest::Url>,
    /// With an object id: the certificate to trust for the gateway.
    #[arg(long, env = crate::client::ENV_CA_CERT, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Object file to verify, or - for stdin; or the id of an object in the
    /// gateway's store (`obj_` and 32 hex digits), which the gateway re-reads
    /// and checks (write ./obj_… for a local file of that name).
    #[arg(value_name = "IN|ID")]
    input: PathBuf,
}

pub fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    if let Some(id) = a.input.to_str().filter(|s| seqshield_store::names::check_id(s).is_ok()) {
        let (Some(server), Some(ca_cert)) = (a.server.clone(), a.ca_cert.clone()) else {
            return Err(crate::exit::bad_input(format!(
                "{id} is an object id: give the gateway with --server and --ca-cert (or SEQSHIELD_SERVER and SEQSHIELD_CA_CERT)"
            )));
        };
        return crate::cmd::store::verify_remote(ctx, &crate::client::GatewayArgs { server, ca_cert }, id);
    }
    let opened = open_object(&a.kek, &a.input)?;
    let header = opened.header.clone();
    let summary = opened.decrypt_into(ctx, "verify", &mut std::io::sink()).context("verification failed")?;
    ctx.report(summary_json("verify", &header, &summary), || {
        format!(
            "OK: {} segments, {} plaintext bytes, Merkle root {} ({})",
            summary.segment_count,
            summary.plaintext_len,
            hex::encode(summary.merkle_root),
            header.classification()
        )
    });
    Ok(())
}

/// `seqshield rewrap`.
#[derive(Args, Debug)]
pub struct RewrapArgs {
    #[command(flatten)]
    kek: KekArgs,
    /// New KEK's public key (PEM, from `keys export-public`). Repeatable.
    #[arg(long = "to", value_name = "NEWKEY", required_unless_present = "remove")]
    to: Vec<PathBuf>,
    /// Keep the current KEK's entry (add NEWKEY instead of rotating to it).
    #[arg(long)]
    keep_old: bool,
    /// Remove the entry with this key id. Repeatable.
    #[arg(long = "remove-recipient", value_name = "KEY_ID")]
    remove: Vec<String>,
    #[command(flatten)]
    io: InOut,
}

pub fn rewrap(ctx: &Ctx, a: RewrapArgs) -> Result<()> {
    let kek = a.kek.load()?;
    let new: Vec<RsaRecipient> =
        a.to.iter()
            .map(|p| RsaRecipient::read(p).with_context(|| format!("cannot read {}", p.display())))
            .collect::<Result<_>>()?;
    let add: Vec<&dyn Recipient> = new.iter().map(|r| r as &dyn Recipient).collect();
    let mut remove = a.remove.clone();
    let own = kek.as_kek().key_id().to_owned();
    if !a.keep_old && !a.to.is_empty() && !new.iter().any(|r| r.key_id() == own) {
        remove.push(own);
    }
    let (input, _) = open_input(&a.io.input)?;
    data_on_stdout(&a.io.output);
    let mut out = Output::create(&a.io.output, a.io.force)?;
    let report = seqshield_keys::rewrap::rewrap(input, &mut out, &[kek.as_kek()], &add, &remove)?;
    out.commit()?;
    ctx.report(serde_json::json!({ "ok": true, "command": "rewrap", "report": report }), || {
        format!(
            "rewrapped: recipients {:?} -> {:?}; {} body bytes copied unchanged",
            report.before, report.after, report.body_bytes
        )
    });
    Ok(())
}

/// `seqshield inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Object to inspect, or - for stdin.
    #[arg(value_name = "IN")]
    input: PathBuf,
}

pub fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<()> {
    let (mut r, len) = open_input(&a.input)?;
    let sealed = SealedHeader::read_from(&mut r).with_context(|| format!("cannot read {}", a.input.display()))?;
    let h = sealed.unverified();
    let header_len = sealed.encoded_len() as u64;
    let stride = u64::from(h.segment_size()) + 16;
    let body = len.and_then(|l| l.checked_sub(header_len + seqshield_format::limits::TRAILER_LEN as u64));
    let segments = body.map(|b| b.div_ceil(stride));
    ctx.report(
        serde_json::json!({
            "ok": true, "command": "inspect", "authenticated": false, "version": seqshield_format::limits::VERSION,
            "header_bytes": header_len, "file_bytes": len, "segments": segments, "header": h,
        }),
        || {
            let mut s = format!(
                "seqshield object, format version {}\n  (header fields below are not authenticated; run `verify`)\n  \
                 classification  {}\n  content type    {}\n  segment size    {} bytes\n  header          {} bytes\n",
                seqshield_format::limits::VERSION,
                h.classification(),
                h.content_type(),
                h.segment_size(),
                header_len
            );
            if let (Some(l), Some(n)) = (len, segments) {
                s += &format!("  file            {l} bytes, {n} segments\n");
            }
            s += &format!("  recipients      {}\n", h.recipients().len());
            for e in h.recipients() {
                s += &format!("    - {}  {}  ({} bytes wrapped)\n", e.key_id, e.algorithm, e.wrapped.len());
            }
            for (k, v) in h.metadata() {
                s += &format!("  meta            {k} = {v}\n");
            }
            s.trim_end().to_owned()
        },
    );
    Ok(())
}
