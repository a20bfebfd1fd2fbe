//! The gateway's settings: one TOML file, layered with environment
//! variables, parsed into typed structs that refuse unknown keys.
//!
//! Precedence, lowest first: embedded defaults, the file (`--config FILE`,
//! else `DATA/seqshield.toml` when present), `SEQSHIELD_*` variables (see
//! [`ENV_VARS`]), then command-line flags (applied by the caller).
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:8443"
//! public_hosts = ["gateway.example.org"]
//! tls_cert = "/etc/seqshield/fullchain.pem"   # with tls_key; else self-signed
//! tls_key = "/etc/seqshield/key.pem"
//! max_body_bytes = 1048576
//! max_header_bytes = 16384
//! request_timeout_secs = 30
//! max_connections = 1024
//!
//! [auth]
//! issuer = "https://gateway.example.org:8443"
//! ```

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use seqshield_auth::config::AuthConfig;
use serde::Deserialize;

/// Name of the configuration file looked for in the data directory.
pub const CONFIG_FILE_NAME: &str = "seqshield.toml";
/// Largest configuration file read (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Default listen address: loopback only, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default cap on a request body read by an extractor (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// Highest `max_body_bytes` accepted (1 GiB); bulk data streams through
/// routes that bound themselves.
pub const MAX_MAX_BODY_BYTES: u64 = 1 << 30;
/// Default cap on a request head: request line and headers (16 KiB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
/// Lowest `max_header_bytes` accepted: hyper's smallest read buffer (8 KiB).
pub const MIN_MAX_HEADER_BYTES: usize = 8 << 10;
/// Highest `max_header_bytes` accepted (1 MiB).
pub const MAX_MAX_HEADER_BYTES: usize = 1 << 20;
/// Default time a request may take, headers read to response started (30 s).
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Highest `request_timeout_secs` accepted (1 h).
pub const MAX_REQUEST_TIMEOUT_SECS: u64 = 3600;
/// Default cap on simultaneously open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Highest `max_connections` accepted.
pub const MAX_MAX_CONNECTIONS: usize = 100_000;
/// Most `public_hosts` entries.
pub const MAX_PUBLIC_HOSTS: usize = 32;
/// Longest host name (RFC 1035 §2.3.4).
pub const MAX_HOST_LEN: usize = 253;

/// `server.listen`.
pub const ENV_LISTEN: &str = "SEQSHIELD_LISTEN";
/// `server.public_hosts`, comma-separated.
pub const ENV_PUBLIC_HOSTS: &str = "SEQSHIELD_PUBLIC_HOSTS";
/// `server.tls_cert`.
pub const ENV_TLS_CERT: &str = "SEQSHIELD_TLS_CERT";
/// `server.tls_key`.
pub const ENV_TLS_KEY: &str = "SEQSHIELD_TLS_KEY";
/// `server.max_body_bytes`.
pub const ENV_MAX_BODY_BYTES: &str = "SEQSHIELD_MAX_BODY_BYTES";
/// `server.max_header_bytes`.
pub const ENV_MAX_HEADER_BYTES: &str = "SEQSHIELD_MAX_HEADER_BYTES";
/// `server.request_timeout_secs`.
pub const ENV_REQUEST_TIMEOUT_SECS: &str = "SEQSHIELD_REQUEST_TIMEOUT_SECS";
/// `server.max_connections`.
pub const ENV_MAX_CONNECTIONS: &str = "SEQSHIELD_MAX_CONNECTIONS";
/// `auth.issuer`.
pub const ENV_ISSUER: &str = "SEQSHIELD_ISSUER";

/// Every variable [`Config::apply_env`] reads. An empty value counts as unset.
pub const ENV_VARS: &[&str] = &[
    ENV_LISTEN,
    ENV_PUBLIC_HOSTS,
    ENV_TLS_CERT,
    ENV_TLS_KEY,
    ENV_MAX_BODY_BYTES,
    ENV_MAX_HEADER_BYTES,
    ENV_REQUEST_TIMEOUT_SECS,
    ENV_MAX_CONNECTIONS,
    ENV_ISSUER,
];

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: the listener and its limits.
    pub server: ServerSettings,
    /// `[auth]`: the token service.
    pub auth: AuthConfig,
    /// `[store]`: the object store.
    pub store: seqshield_store::StoreConfig,
    /// `[jobs]`: the TES job service.
    pub jobs: seqshield_jobs::JobsConfig,
    /// The file these settings came from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The `[server]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Names clients use to reach the gateway; added to a generated
    /// certificate, and the first one forms the default issuer URL.
    pub public_hosts: Vec<String>,
    /// PEM certificate chain, leaf first. With `tls_key`; neither: a
    /// self-signed certificate under `DATA/tls/`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest request body an extractor buffers, in bytes.
    pub max_body_bytes: u64,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Seconds a request may take before it gets 408.
    pub request_timeout_secs: u64,
    /// Most simultaneously open client connections; more are closed at once.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_hosts: Vec::new(),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("configuration {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid TOML for these structs (unknown keys included).
    #[error("invalid configuration {}", path.as_ref().map_or("(text)".into(), |p| p.display().to_string()))]
    Parse {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The parser's error.
        source: Box<toml::de::Error>,
    },
    /// An environment variable holds a value that does not parse.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A setting is out of range or inconsistent.
    #[error("server.{field}: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Loads the settings: `file` if given (it must exist), else
    /// `DATA/seqshield.toml` if present, else the defaults; then the
    /// process environment; then [`Config::validate`].
    pub fn load(data_dir: &Path, file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg = match file {
            Some(path) => Self::from_file(path)?,
            None => {
                let path = data_dir.join(CONFIG_FILE_NAME);
                if path.is_file() {
                    Self::from_file(&path)?
                } else {
                    Self::default()
                }
            }
        };
        cfg.apply_env(|name| std::env::var(name).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses one file. Relative `tls_cert` and `tls_key` paths
    /// are taken relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let read_err = |source| ConfigError::Read { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text).map_err(read_err)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: path.to_owned() });
        }
        let mut cfg: Self = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: Some(path.to_owned()), source: Box::new(e) })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.server.tls_cert, &mut cfg.server.tls_key].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        cfg.source = Some(path.to_owned());
        Ok(cfg)
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: None, source: Box::new(e) })
    }

    /// Overrides settings from the variables in [`ENV_VARS`], looked up
    /// through `lookup` (the process environment in [`Config::load`]).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty()).map(|v| (var, v));
        if let Some((var, v)) = get(ENV_LISTEN) {
            self.server.listen = parse_env(var, &v)?;
        }
        if let Some((_, v)) = get(ENV_PUBLIC_HOSTS) {
            self.server.public_hosts =
                v.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect();
        }
        if let Some((_, v)) = get(ENV_TLS_CERT) {
            self.server.tls_cert = Some(PathBuf::from(v));
        }
        if let Some((_, v)) = get(ENV_TLS_KEY) {
            self.server.tls_key = Some(PathBuf::from(v));
        }
        if let Some((var, v)) = get(ENV_MAX_BODY_BYTES) {
            self.server.max_body_bytes = parse_env(var, &v)?;
        }
        if let Some((var, v)) = get(ENV_MAX_HEADER_BYTES) {
            self.server.max_header_bytes = parse_env(var, &v)?;
        }
        if let Some((var, v)) = get(ENV_REQUEST_TIMEOUT_SECS) {
            self.server.request_timeout_secs = parse_env(var, &v)?;
        }
        if let Some((var, v)) = get(ENV_MAX_CONNECTIONS) {
            self.server.max_connections = parse_env(var, &v)?;
        }
        if let Some((_, v)) = get(ENV_ISSUER) {
            self.auth.issuer = v;
        }
        Ok(())
    }

    /// Checks the `[server]` table (the token service checks `[auth]`
    /// itself once the issuer is known).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()
    }
}

impl ServerSettings {
    /// Checks every bound and that `tls_cert` and `tls_key` come together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        range("max_body_bytes", self.max_body_bytes, 1, MAX_MAX_BODY_BYTES)?;
        range(
            "max_header_bytes",
            self.max_header_bytes as u64,
            MIN_MAX_HEADER_BYTES as u64,
            MAX_MAX_HEADER_BYTES as u64,
        )?;
        range("request_timeout_secs", self.request_timeout_secs, 1, MAX_REQUEST_TIMEOUT_SECS)?;
        range("max_connections", self.max_connections as u64, 1, MAX_MAX_CONNECTIONS as u64)?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert", "tls_cert and tls_key must be given together".into());
        }
        if self.public_hosts.len() > MAX_PUBLIC_HOSTS {
            return invalid("public_hosts", format!("at most {MAX_PUBLIC_HOSTS} entries"));
        }
        for h in &self.public_hosts {
            if !is_valid_host(h) {
                return invalid("public_hosts", format!("{h:?} is neither an IP address nor a DNS name"));
            }
        }
        Ok(())
    }

    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_secs)
    }
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid { field, reason: format!("{value} is out of range {min}..={max}") })
    }
}

fn parse_env<T: std::str::FromStr>(var: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| ConfigError::Env { var, reason: e.to_string() })
}

/// True for an IP address or a DNS name of letters, digits and hyphens
/// (RFC 1123 §2.1), no wildcard.
pub fn is_valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= MAX_HOST_LEN
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let cfg = Config::default();
        cfg.validate().unwrap();
        assert!(cfg.server.listen.ip().is_loopback());
        assert_eq!(cfg.server.max_body_bytes, 1 << 20);
        assert_eq!(cfg.server.max_header_bytes, 16 << 10);
        assert_eq!(cfg.server.listen, DEFAULT_LISTEN.parse().unwrap());
    }

    #[test]
    fn parses_server_and_auth_tables() {
        let cfg = Config::from_toml(
            r#"
            [server]
            listen = "[::1]:9443"
            public_hosts = ["gw.example.org"]
            max_body_bytes = 4096
            [auth]
            issuer = "https://gw.example.org:9443"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.server.listen, "[::1]:9443".parse().unwrap());
        assert_eq!(cfg.server.public_hosts, ["gw.example.org"]);
        assert_eq!(cfg.server.max_body_bytes, 4096);
        assert_eq!(cfg.server.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(cfg.auth.issuer, "https://gw.example.org:9443");
    }

    /// A typo must not silently fall back to a default.
    #[test]
    fn unknown_keys_are_refused() {
        for text in ["[server]\nlisten_addr = \"127.0.0.1:1\"", "[sever]\n", "top = 1"] {
            assert!(matches!(Config::from_toml(text), Err(ConfigError::Parse { .. })), "{text}");
        }
    }

    #[test]
    fn env_overrides_file() {
        let mut cfg = Config::from_toml("[server]\nlisten = \"127.0.0.1:1\"\nmax_connections = 5").unwrap();
        cfg.apply_env(|v| match v {
            ENV_LISTEN => Some("127.0.0.1:2".into()),
            ENV_PUBLIC_HOSTS => Some(" a.example, b.example ,".into()),
            ENV_ISSUER => Some("https://a.example".into()),
            ENV_MAX_CONNECTIONS => Some(String::new()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.server.listen.port(), 2);
        assert_eq!(cfg.server.public_hosts, ["a.example", "b.example"]);
        assert_eq!(cfg.server.max_connections, 5, "an empty variable counts as unset");
        assert_eq!(cfg.auth.issuer, "https://a.example");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = Config::default()
            .apply_env(|v| (v == ENV_MAX_BODY_BYTES).then(|| "lots".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(ENV_MAX_BODY_BYTES), "{err}");
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let mut s = ServerSettings { max_header_bytes: 1024, ..Default::default() };
        assert!(s.validate().is_err(), "below hyper's minimum buffer");
        s = ServerSettings { max_body_bytes: 0, ..Default::default() };
        assert!(s.validate().is_err());
        s = ServerSettings { request_timeout_secs: 0, ..Default::default() };
        assert!(s.validate().is_err());
        s = ServerSettings { max_connections: 0, ..Default::default() };
        assert!(s.validate().is_err());
        s = ServerSettings { tls_cert: Some("c.pem".into()), ..Default::default() };
        assert!(s.validate().is_err(), "certificate without key");
        s = ServerSettings { public_hosts: vec!["*.example.org".into()], ..Default::default() };
        assert!(s.validate().is_err());
    }

    #[test]
    fn host_syntax() {
        for ok in ["localhost", "gw.example.org", "gw.example.org.", "10.0.0.1", "::1", "a-b.c"] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in ["", ".", "-a.b", "a..b", "a_b.c", "gw.example.org:443", "*.x", "[::1]"] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, "[server]\ntls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\n").unwrap();
        let cfg = Config::load(dir.path(), None).unwrap();
        assert_eq!(cfg.server.tls_cert.unwrap(), dir.path().join("c.pem"));
        assert_eq!(cfg.server.tls_key.unwrap(), PathBuf::from("/abs/k.pem"));
        assert_eq!(cfg.source.unwrap(), path);
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Config::load(dir.path(), Some(&dir.path().join("nope.toml"))), Err(ConfigError::Read { .. })));
    }
}
