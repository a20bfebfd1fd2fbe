//! File-system steps of the key ring: a private directory, atomic writes
//! (temporary file created `O_EXCL` mode 0600, fsync, rename, fsync of the
//! directory) and bounded reads that refuse loose permissions.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::SigningError;

/// Mode of every file we create.
const FILE_MODE: u32 = 0o600;
/// Mode of the key-ring directory when we create it.
const DIR_MODE: u32 = 0o700;
/// Suffix of temporary files.
pub(super) const TMP_SUFFIX: &str = ".tmp";

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SigningError + 'a {
    move |source| SigningError::Io { op, path: path.to_owned(), source }
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), SigningError> {
    match DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io("create directory", dir)(e)),
    }
}

/// Replaces `dir/name` with `contents` atomically: readers see the old file
/// or the new one, never a mix, even across a crash.
pub(super) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<(), SigningError> {
    let mut nonce = [0u8; 8];
    seqshield_format::key::fill_random(&mut nonce);
    let tmp = dir.join(format!(".{name}.{}{TMP_SUFFIX}", hex::encode(nonce)));
    let result = (|| {
        let mut f =
            OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&tmp).map_err(io("create", &tmp))?;
        f.write_all(contents).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        let path = dir.join(name);
        fs::rename(&tmp, &path).map_err(io("rename", &path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Flushes a directory's entries (renames, removals) to disk.
pub(super) fn sync_dir(dir: &Path) -> Result<(), SigningError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync", dir))
}

/// Reads a file of at most `max` bytes. With `private`, refuses a file
/// whose mode lets group or others in, before reading it.
pub(super) fn read_bounded(path: &Path, max: u64, private: bool) -> Result<Zeroizing<Vec<u8>>, SigningError> {
    let f = File::open(path).map_err(io("open", path))?;
    let meta = f.metadata().map_err(io("stat", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if private && mode & 0o077 != 0 {
        return Err(SigningError::InsecurePermissions { path: path.to_owned(), mode });
    }
    if meta.len() > max {
        return Err(SigningError::TooLarge { path: path.to_owned(), max });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    f.take(max + 1).read_to_end(&mut buf).map_err(io("read", path))?;
    if buf.len() as u64 > max {
        return Err(SigningError::TooLarge { path: path.to_owned(), max });
    }
    Ok(buf)
}

/// Removes a file; a file already gone is not an error.
pub(super) fn remove(path: &Path) -> Result<(), SigningError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", path)(e)),
    }
}

/// The names of the plain files in `dir`.
pub(super) fn file_names(dir: &Path) -> Result<Vec<(String, PathBuf)>, SigningError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let is_file = entry.file_type().map_err(io("stat", &entry.path()))?.is_file();
        if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
            out.push((name.to_owned(), entry.path()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("signing");
        create_private_dir(&sub).unwrap();
        assert_eq!(fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
        write_atomic(&sub, "keys.json", b"one").unwrap();
        write_atomic(&sub, "keys.json", b"two").unwrap();
        let path = sub.join("keys.json");
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(file_names(&sub).unwrap().len(), 1);
    }

    #[test]
    fn bounded_read_refuses_large_and_loose_files() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f", b"12345").unwrap();
        let path = dir.path().join("f");
        assert_eq!(&*read_bounded(&path, 5, true).unwrap(), b"12345");
        assert!(matches!(read_bounded(&path, 4, true), Err(SigningError::TooLarge { .. })));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(read_bounded(&path, 5, true), Err(SigningError::InsecurePermissions { mode: 0o640, .. })));
        assert!(read_bounded(&path, 5, false).is_ok());
        assert!(matches!(read_bounded(&dir.path().join("missing"), 5, true), Err(SigningError::Io { op: "open", .. })));
        remove(&path).unwrap();
        remove(&path).unwrap();
    }
}
