//! File handling for the identity: bounded reads, private directories and
//! atomic writes (temporary file, fsync, rename, directory fsync).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::{CertError, MAX_PEM_BYTES};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.to_owned(), source }
}

/// Reads at most [`MAX_PEM_BYTES`] of `path`; larger files are refused.
pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>, CertError> {
    let mut buf = Vec::new();
    File::open(path).and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut buf)).map_err(io_err(path))?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(CertError::TooLarge { path: path.to_owned() });
    }
    Ok(buf)
}

/// Creates `dir` and its missing parents with mode 0700.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io_err(dir))
}

/// Writes `bytes` to `dest` with `mode`: a temporary file in the same
/// directory (created 0600), synced, then renamed over `dest`.
pub(super) fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::Builder::new().prefix(".seqshield-").suffix(".tmp").tempfile_in(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io_err(dest))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.as_file().sync_all().map_err(io_err(dest))?;
    tmp.persist(dest).map_err(|e| CertError::Io { path: dest.to_owned(), source: e.error })?;
    sync_dir(dir)
}

/// Makes renames in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), CertError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Logs a warning when a private key file is readable by group or others.
pub(super) fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(key = %path.display(), mode = format!("{:o}", m.permissions().mode() & 0o777), "the TLS private key is readable by group or others; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
