//! `seqshield demo`: an end-to-end tour on the real E. coli 536 genome.

use std::fs::{self, File};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aws_lc_rs::digest;
use clap::Args;
use seqshield_format::{classify_io_error, Classification, DataKey, FormatError, SealedHeader, StreamReader, Writer};
use seqshield_keys::file::FileKek;
use seqshield_keys::{unlock, Kek, Recipient};

use crate::Ctx;

/// Where Debian's `bowtie-examples` puts the E. coli 536 genome (NC_008253.1).
const DEFAULT_GENOME: &str = "/usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz";

/// `seqshield demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// FASTA genome to use (gzip or plain).
    #[arg(long, default_value = DEFAULT_GENOME)]
    genome: PathBuf,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

struct Step {
    name: &'static str,
    detail: String,
    secs: f64,
}

fn sha256_of(r: impl Read) -> Result<[u8; 32]> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut r = r;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx.finish().as_ref().try_into().expect("32 bytes"))
}

fn open_genome(path: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(path).with_context(|| {
        format!("cannot open the genome {} (install Debian's bowtie-examples: scripts/setup)", path.display())
    })?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(f)))
    } else {
        Box::new(BufReader::new(f))
    })
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let v = f()?;
    Ok((v, t.elapsed().as_secs_f64()))
}

fn mbps(bytes: u64, secs: f64) -> String {
    format!("{:.0} MB/s", bytes as f64 / secs.max(1e-9) / 1e6)
}

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<()> {
    let tmp;
    let dir = match &a.work_dir {
        Some(d) => {
            fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("seqshield-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let mut steps = Vec::new();
    // A demo passphrase, random per run; real deployments use a file or the HSM.
    let mut pass = [0u8; 24];
    aws_lc_rs::rand::fill(&mut pass).context("CSPRNG")?;
    let pass = zeroize::Zeroizing::new(hex::encode(pass));

    let ((kek_a, kek_b), secs) = timed(|| {
        Ok((FileKek::init(&dir.join("kek-a"), pass.as_bytes())?, FileKek::init(&dir.join("kek-b"), pass.as_bytes())?))
    })?;
    steps.push(Step {
        name: "keys",
        detail: format!("two RSA-4096 file KEKs: A {} and B {}", kek_a.key_id(), kek_b.key_id()),
        secs,
    });

    let original = sha256_of(open_genome(&a.genome)?)?;
    let object = dir.join("genome.sqs");
    let ((summary, in_bytes), secs) = timed(|| {
        let key = DataKey::generate();
        let entry = kek_a.public().wrap(&key)?;
        let header = seqshield_format::Header::new(Classification::Controlled, "application/x-fasta", vec![entry])?
            .with_metadata("source", "NC_008253.1 Escherichia coli 536 (Debian bowtie-examples)")?;
        let mut w = Writer::with_options(File::create(&object)?, &header, &key, ctx.options())?;
        let n = std::io::copy(&mut open_genome(&a.genome)?, &mut w)?;
        let sealed = w.finish()?;
        sealed.inner.sync_all()?;
        Ok((sealed.summary, n))
    })?;
    let out_bytes = fs::metadata(&object)?.len();
    steps.push(Step {
        name: "encrypt",
        detail: format!(
            "{} → {} bytes (+{:.2}%), {} segments, classification controlled, Merkle root {}…, {} incl. gunzip",
            in_bytes,
            out_bytes,
            (out_bytes as f64 / in_bytes as f64 - 1.0) * 100.0,
            summary.segment_count,
            &hex::encode(summary.merkle_root)[..16],
            mbps(in_bytes, secs)
        ),
        secs,
    });

    let verify = |path: &Path, kek: &dyn Kek| -> Result<seqshield_format::Summary, anyhow::Error> {
        let mut f = BufReader::new(File::open(path)?);
        let sealed = SealedHeader::read_from(&mut f)?;
        let (key, header) = unlock(sealed, &[kek])?;
        Ok(StreamReader::with_options(f, &header, &key, ctx.options()).verify_to_end()?)
    };
    let (v, secs) = timed(|| verify(&object, &kek_a))?;
    if v != summary {
        bail!("verify returned a different summary");
    }
    steps.push(Step {
        name: "verify",
        detail: format!("OK: {} segments authenticated, Merkle root matches", v.segment_count),
        secs,
    });

    let tampered = dir.join("tampered.sqs");
    fs::copy(&object, &tampered)?;
    let header_len = SealedHeader::read_from(&mut File::open(&object)?)?.encoded_len() as u64;
    let target = 10.min(summary.segment_count - 1);
    let at = header_len + target * (u64::from(seqshield_format::limits::DEFAULT_SEGMENT_SIZE) + 16) + 1000;
    flip_bit(&tampered, at)?;
    let (err, secs) = timed(|| Ok(verify(&tampered, &kek_a).expect_err("tampering went undetected")))?;
    let fe = err.downcast_ref::<FormatError>().map(|e| e.to_string()).unwrap_or_else(|| format!("{err:#}"));
    steps.push(Step { name: "tamper", detail: format!("flipped 1 bit at byte {at} → rejected: {fe}"), secs });

    let rewrapped = dir.join("genome.rewrapped.sqs");
    let (report, secs) = timed(|| {
        let out = File::create(&rewrapped)?;
        let b = kek_b.public();
        Ok(seqshield_keys::rewrap::rewrap(
            BufReader::new(File::open(&object)?),
            out,
            &[&kek_a],
            &[&b],
            &[kek_a.key_id().to_owned()],
        )?)
    })?;
    let same = bodies_identical(&object, &rewrapped)?;
    if !same {
        bail!("rewrap changed the object body");
    }
    steps.push(Step {
        name: "rewrap",
        detail: format!("A → B by rewriting the header only; {} body bytes byte-identical", report.body_bytes),
        secs,
    });

    let (digest_b, secs) = timed(|| {
        let mut f = BufReader::new(File::open(&rewrapped)?);
        let (key, header) = unlock(SealedHeader::read_from(&mut f)?, &[&kek_b])?;
        let r = StreamReader::with_options(f, &header, &key, ctx.options());
        sha256_of(ReadOrFormat(r))
    })?;
    if digest_b != original {
        bail!("decrypted genome differs from the original");
    }
    let old_key_refused = verify(&rewrapped, &kek_a).is_err();
    steps.push(Step {
        name: "decrypt",
        detail: format!(
            "with B: SHA-256 {}… equals the original genome; A {}",
            &hex::encode(digest_b)[..16],
            if old_key_refused { "is refused (rotated out)" } else { "STILL WORKS (unexpected)" }
        ),
        secs,
    });
    if !old_key_refused {
        bail!("the rotated-out KEK can still decrypt");
    }

    let json = serde_json::json!({
        "ok": true, "command": "demo", "genome": a.genome, "work_dir": dir,
        "steps": steps.iter().map(|s| serde_json::json!({"step": s.name, "detail": s.detail, "seconds": s.secs})).collect::<Vec<_>>(),
    });
    ctx.report(json, || {
        let mut s = format!("seqshield demo: E. coli 536 genome ({})\n", a.genome.display());
        for st in &steps {
            s += &format!("  {:<8} {:>8.3} s  {}\n", st.name, st.secs, st.detail);
        }
        s += &format!("  files in {}{}", dir.display(), if a.work_dir.is_none() { " (removed on exit)" } else { "" });
        s
    });
    Ok(())
}

/// Adapts a `StreamReader`'s errors for `sha256_of`.
struct ReadOrFormat<R: Read>(StreamReader<R>);

impl<R: Read> Read for ReadOrFormat<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| std::io::Error::other(classify_io_error(e)))
    }
}

fn flip_bit(path: &Path, at: u64) -> Result<()> {
    let mut f = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(&mut b)?;
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&b)?;
    Ok(())
}

fn bodies_identical(a: &Path, b: &Path) -> Result<bool> {
    let body = |p: &Path| -> Result<[u8; 32]> {
        let mut f = File::open(p)?;
        let hl = SealedHeader::read_from(&mut f)?.encoded_len() as u64;
        f.seek(SeekFrom::Start(hl))?;
        sha256_of(BufReader::new(f))
    };
    Ok(body(a)? == body(b)?)
}
