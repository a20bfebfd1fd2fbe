//! File system steps of the key directory: private directory creation,
//! atomic no-replace writes with mode 0600 from the start, and a private
//! key read that refuses loose permissions.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use seqshield_format::key::fill_random;

use crate::KeyError;

/// Largest private-key file we read. An encrypted RSA-16384 PKCS#8 PEM is
/// about 13 KiB.
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Mode of the files we create.
const FILE_MODE: u32 = 0o600;
/// Mode of a key directory we create.
const DIR_MODE: u32 = 0o700;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KeyError + 'a {
    move |source| KeyError::Io { op, path: path.to_owned(), source }
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    match DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io("create directory", dir)(e)),
    }
}

/// A file written under a temporary name next to its final path; removed
/// on drop unless committed.
pub(crate) struct Staged {
    tmp: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `contents` to a fresh temporary file in `dir`, created with
    /// `O_EXCL` and mode 0600, and flushes it to disk.
    pub(crate) fn write(dir: &Path, name: &str, contents: &[u8]) -> Result<Self, KeyError> {
        let mut nonce = [0u8; 8];
        fill_random(&mut nonce);
        let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&tmp).map_err(io("create", &tmp))?;
        let staged = Self { tmp, committed: false };
        file.write_all(contents).map_err(io("write", &staged.tmp))?;
        file.sync_all().map_err(io("fsync", &staged.tmp))?;
        Ok(staged)
    }

    /// Moves the file to `path`, failing with [`KeyError::KeyExists`] if
    /// `path` exists. A hard link is the portable rename that never
    /// replaces: `link(2)` fails with `EEXIST` atomically.
    pub(crate) fn commit_no_replace(mut self, path: &Path) -> Result<(), KeyError> {
        match fs::hard_link(&self.tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(KeyError::KeyExists { location: path.display().to_string() })
            }
            Err(e) => return Err(io("link", path)(e)),
        }
        self.committed = true;
        fs::remove_file(&self.tmp).map_err(io("remove", &self.tmp))
    }

    /// Renames the file to `path`, replacing what is there.
    pub(crate) fn commit(mut self, path: &Path) -> Result<(), KeyError> {
        fs::rename(&self.tmp, path).map_err(io("rename", path))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the temporary file holds only encrypted or
            // public data, and a leftover is harmless.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Flushes the directory entry changes of `dir` to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync", dir))
}

/// Reads a private-key file, refusing one whose mode lets group or others
/// read or write it. The mode is checked on the opened file, not the path.
pub(crate) fn read_private(path: &Path) -> Result<String, KeyError> {
    let file = File::open(path).map_err(io("open", path))?;
    let meta = file.metadata().map_err(io("stat", path))?;
    if !meta.is_file() {
        return Err(KeyError::KeyFileInvalid { path: path.to_owned(), reason: "not a regular file" });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions { path: path.to_owned(), mode });
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE_LEN + 1).read_to_string(&mut text).map_err(io("read", path))?;
    if text.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::KeyFileInvalid { path: path.to_owned(), reason: "key file is too large" });
    }
    Ok(text)
}

/// Reads a public-key file of at most `max` bytes; a larger one is
/// refused ([`KeyError::KeyFileInvalid`]) without reading further.
pub(crate) fn read_public(path: &Path, max: u64) -> Result<String, KeyError> {
    let file = File::open(path).map_err(io("open public key", path))?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).map_err(io("read public key", path))?;
    if text.len() as u64 > max {
        return Err(KeyError::KeyFileInvalid { path: path.to_owned(), reason: "public key file is too large" });
    }
    Ok(text)
}
