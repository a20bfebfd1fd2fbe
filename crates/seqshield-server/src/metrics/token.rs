//! The scrape token: the bearer secret Prometheus presents at `/metrics`.
//!
//! It lives in `DATA/metrics.token` (mode 0600): on first start
//! [`ScrapeToken::load_or_create`] writes 32 random bytes as 64 hex
//! digits; later starts reuse the file. An operator may put a token of
//! their own there (from a secret manager, say): 32 to 512 characters of
//! RFC 6750's `b64token` alphabet. A file that group or others can read is
//! refused, as is one that is not a regular file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};
use zeroize::Zeroizing;

/// The token's file name in the data directory.
pub const SCRAPE_TOKEN_FILE: &str = "metrics.token";
/// Random bytes in a generated token (hex-encoded: 64 characters).
const SCRAPE_TOKEN_BYTES: usize = 32;
/// Shortest token accepted from the file.
pub const MIN_SCRAPE_TOKEN_LEN: usize = 32;
/// Longest token accepted from the file; also bounds what is read.
pub const MAX_SCRAPE_TOKEN_LEN: usize = 512;
/// Longest `Authorization` header value looked at.
const MAX_AUTHORIZATION_BYTES: usize = MAX_SCRAPE_TOKEN_LEN + 16;

/// Why the scrape token could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeTokenError {
    /// The file exists but could not be read.
    #[error("cannot read the metrics scrape token {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A new token could not be written.
    #[error("cannot create the metrics scrape token {path}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Group or others may read the file.
    #[error("the metrics scrape token {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    Shared {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file.
    #[error("the metrics scrape token {path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file's content is not a token.
    #[error(
        "the metrics scrape token {path} must hold {MIN_SCRAPE_TOKEN_LEN} to {MAX_SCRAPE_TOKEN_LEN} characters of A-Z a-z 0-9 - . _ ~ + / ="
    )]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// The bearer secret of `/metrics`. Zeroised on drop; never printed
/// ([`std::fmt::Debug`] shows nothing of it).
#[derive(Clone)]
pub struct ScrapeToken(Zeroizing<String>);

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken([redacted])")
    }
}

impl ScrapeToken {
    /// A fresh random token (not saved anywhere).
    pub fn generate() -> Result<Self, ScrapeTokenError> {
        let mut raw = Zeroizing::new([0u8; SCRAPE_TOKEN_BYTES]);
        aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| ScrapeTokenError::Random)?;
        Ok(Self(Zeroizing::new(hex::encode(raw.as_ref()))))
    }

    /// Reads `data_dir/metrics.token`, or creates it (mode 0600) with a
    /// fresh token if it does not exist. Never replaces a file another
    /// process created meanwhile.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, ScrapeTokenError> {
        let path = data_dir.join(SCRAPE_TOKEN_FILE);
        match Self::load(&path) {
            Err(ScrapeTokenError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let token = Self::generate()?;
        match write_new(data_dir, &path, token.expose_secret()) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created the metrics scrape token");
                Ok(token)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(&path),
            Err(source) => Err(ScrapeTokenError::Create { path, source }),
        }
    }

    /// Reads a token file: private, regular, well-formed (trailing
    /// whitespace ignored).
    pub fn load(path: &Path) -> Result<Self, ScrapeTokenError> {
        let read_err = |source| ScrapeTokenError::Read { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(ScrapeTokenError::NotAFile { path: path.to_owned() });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(ScrapeTokenError::Shared { path: path.to_owned(), mode });
            }
        }
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_SCRAPE_TOKEN_LEN as u64 + 8).read_to_string(&mut text).map_err(read_err)?;
        let token = text.trim_end();
        if !is_valid_token(token) {
            return Err(ScrapeTokenError::Malformed { path: path.to_owned() });
        }
        Ok(Self(Zeroizing::new(token.to_owned())))
    }

    /// The secret itself, to hand to a scraper. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// True if `headers` hold exactly one `Authorization: Bearer` with
    /// this token (compared in constant time).
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return false;
        }
        let Some((scheme, presented)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && aws_lc_rs::constant_time::verify_slices_are_equal(presented.trim().as_bytes(), self.0.as_bytes()).is_ok()
    }
}

/// RFC 6750 §2.1 `b64token`, within the length bounds.
fn is_valid_token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    (MIN_SCRAPE_TOKEN_LEN..=MAX_SCRAPE_TOKEN_LEN).contains(&t.len())
        && !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Writes `token` to a private temporary file in `dir`, syncs it, and
/// links it at `path` unless something is there already (`AlreadyExists`).
fn write_new(dir: &Path, path: &Path, token: &str) -> std::io::Result<()> {
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::Builder::new().prefix(".metrics.token-").tempfile_in(dir)?;
    tmp.write_all(token.as_bytes())?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn created_once_private_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = ScrapeToken::load_or_create(dir.path()).unwrap();
        assert_eq!(first.expose_secret().len(), 64);
        assert!(first.expose_secret().bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SCRAPE_TOKEN_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = ScrapeToken::load_or_create(dir.path()).unwrap();
        assert_eq!(first.expose_secret(), again.expose_secret());
        assert!(!format!("{first:?}").contains(first.expose_secret()));
    }

    /// A token others can read is no secret: refuse to start with it.
    #[cfg(unix)]
    #[test]
    fn shared_or_malformed_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SCRAPE_TOKEN_FILE);
        std::fs::write(&path, "a".repeat(64)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(ScrapeToken::load_or_create(dir.path()), Err(ScrapeTokenError::Shared { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ScrapeToken::load_or_create(dir.path()).is_ok());
        for bad in ["short", "has space in the middle of it, long enough", &"x".repeat(MAX_SCRAPE_TOKEN_LEN + 1)] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(ScrapeToken::load(&path), Err(ScrapeTokenError::Malformed { .. })), "{bad}");
        }
        std::fs::write(&path, format!("{}\n", "Z".repeat(40))).unwrap();
        assert_eq!(ScrapeToken::load(&path).unwrap().expose_secret(), "Z".repeat(40), "an operator's token");
    }

    #[test]
    fn only_the_exact_bearer_token_authorizes() {
        let t = ScrapeToken::generate().unwrap();
        let secret = t.expose_secret().to_owned();
        assert!(t.authorizes(&bearer(&format!("Bearer {secret}"))));
        assert!(t.authorizes(&bearer(&format!("bearer {secret}"))));
        assert!(!t.authorizes(&HeaderMap::new()));
        assert!(!t.authorizes(&bearer(&format!("Basic {secret}"))));
        assert!(!t.authorizes(&bearer(&format!("Bearer {}", &secret[1..]))));
        assert!(!t.authorizes(&bearer(&format!("Bearer {secret}x"))));
        let mut two = bearer(&format!("Bearer {secret}"));
        two.append(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {secret}")).unwrap());
        assert!(!t.authorizes(&two), "two Authorization headers");
    }
}
