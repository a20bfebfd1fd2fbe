//! Inputs, outputs and progress.
//!
//! Outputs to a regular file are written to a temporary file in the same
//! directory and renamed into place only once the command has succeeded, so
//! a failure never leaves a partial or unauthenticated file behind.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// Opens `path` for reading (`-` is stdin). Returns the reader and its
/// length when known.
pub fn open_input(path: &Path) -> Result<(Box<dyn Read>, Option<u64>)> {
    if path == Path::new("-") {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok((Box::new(f), len))
}

/// `path` opened as a regular file with its length, or `None` for stdin,
/// pipes and devices (which take the streaming path).
pub fn regular_file(path: &Path) -> Result<Option<(File, u64)>> {
    if path == Path::new("-") {
        return Ok(None);
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let m = f.metadata().with_context(|| format!("cannot stat {}", path.display()))?;
    Ok(m.is_file().then_some((f, m.len())))
}

/// Where a command's data goes.
pub enum Output {
    /// Standard output.
    Stdout(io::StdoutLock<'static>),
    /// A temporary file renamed to `dest` on [`Output::commit`].
    Atomic { tmp: tempfile::NamedTempFile, dest: PathBuf },
    /// A device or pipe (e.g. `/dev/null`): written in place.
    Special(File),
}

impl Output {
    /// Prepares `path` (`-` is stdout). Refuses to replace an existing
    /// regular file unless `force`.
    pub fn create(path: &Path, force: bool) -> Result<Self> {
        if path == Path::new("-") {
            return Ok(Self::Stdout(io::stdout().lock()));
        }
        match fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                return Ok(Self::Special(f));
            }
            Ok(m) if m.is_dir() => bail!("output {} is a directory", path.display()),
            Ok(_) if !force => bail!("output {} exists (use --force to replace it)", path.display()),
            _ => {}
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".seqshield-")
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Self::Atomic { tmp, dest: path.to_owned() })
    }

    /// Makes the output durable and visible. Without this call a temporary
    /// file is deleted on drop.
    pub fn commit(self) -> Result<()> {
        match self {
            Self::Stdout(mut s) => s.flush().context("cannot flush stdout"),
            Self::Special(mut f) => f.flush().context("cannot flush output"),
            Self::Atomic { tmp, dest } => {
                tmp.as_file().sync_all().context("cannot sync output")?;
                tmp.persist(&dest).with_context(|| format!("cannot rename output into {}", dest.display()))?;
                if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                    // Make the rename itself durable.
                    File::open(dir).and_then(|d| d.sync_all()).ok();
                }
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(s) => s.write(buf),
            Self::Atomic { tmp, .. } => tmp.write(buf),
            Self::Special(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(s) => s.flush(),
            Self::Atomic { tmp, .. } => tmp.flush(),
            Self::Special(f) => f.flush(),
        }
    }
}

/// A progress bar on stderr when stderr is a terminal and output is for
/// people; hidden otherwise.
pub fn progress(len: Option<u64>, label: &str, quiet: bool) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg:>10} {spinner} {bytes} {binary_bytes_per_sec}").expect("valid template"),
        ),
    };
    pb.set_message(label.to_owned());
    pb
}

/// Reads a secret from a file, dropping one trailing newline.
pub fn read_secret_file(path: &Path) -> Result<zeroize::Zeroizing<String>> {
    let mut s = zeroize::Zeroizing::new(String::new());
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .with_context(|| format!("cannot read secret file {}", path.display()))?;
    let trimmed_len = s.trim_end_matches(['\n', '\r']).len();
    s.truncate(trimmed_len);
    if s.is_empty() {
        bail!("secret file {} is empty", path.display());
    }
    Ok(s)
}

/// Copies `r` into `w` through a 1 MiB buffer (`std::io::copy` uses 8 KiB,
/// which costs ~130 000 read calls per GiB). Returns the bytes copied.
pub fn copy_large(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}
