//! Exit codes and the error boundary: every failure becomes one line (or,
//! with `--json`, one stable object) and a documented exit code.

use seqshield_format::FormatError;
use seqshield_keys::KeyError;

/// Documented exit codes (also in `seqshield --help` and the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Anything not covered below.
    Failure = 1,
    /// Bad command line or bad input values (clap returns 2 itself for
    /// syntax errors; commands return [`BadInput`] for invalid values).
    Usage = 2,
    /// A file could not be read or written.
    Io = 3,
    /// Wrong key, wrong passphrase or PIN, no matching recipient, key store problem.
    Key = 4,
    /// The object is damaged, tampered with or malformed.
    Integrity = 5,
    /// A gateway refused the caller: not logged in, token expired, revoked
    /// or invalid, scope or clearance too low, access denied ([`Remote`]
    /// errors with an [`AUTH_CODES`] code).
    Auth = 6,
    /// No usable GPU: no CUDA driver, no device at that index, or a build
    /// without CUDA ([`NoGpu`] errors).
    NoGpu = 7,
}

/// No usable GPU: exit code 7 with a stable code (`no_cuda_driver`,
/// `no_cuda_device`, `cuda_not_built`).
#[derive(Debug)]
pub struct NoGpu {
    /// Stable error code.
    pub code: &'static str,
    /// What is missing, in words.
    pub message: String,
}

impl std::fmt::Display for NoGpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NoGpu {}

/// Input a command refuses before changing anything: exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// A [`BadInput`] error.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// An integrity failure outside the container format (an audit log that
/// does not verify): exit code 5 with its own stable code. With `--json`,
/// `fields` go into the error object's top level beside `ok` and `error`
/// (so a failed `audit verify --json` prints one object: its report).
#[derive(Debug)]
pub struct Integrity {
    /// Stable error code, e.g. `audit_verify_failed`.
    pub code: &'static str,
    /// What is wrong, in words.
    pub message: String,
    /// Extra top-level fields of the `--json` error object.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Display for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Integrity {}

/// An [`Integrity`] error without extra fields.
pub fn integrity(code: &'static str, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Integrity { code, message: msg.into(), fields: serde_json::Map::new() })
}

/// Error codes of a [`Remote`] failure that mean "who you are or what you
/// may do was refused": exit code 6 ([`Exit::Auth`]). The OAuth 2.0 codes
/// a gateway answers (RFC 6749 §5.2, RFC 6750 §3.1, RFC 9470) and the
/// client's own `not_logged_in` and `token_expired`, and the data API's
/// `insufficient_clearance` and `not_owner`.
pub const AUTH_CODES: [&str; 11] = [
    "invalid_token",
    "insufficient_scope",
    "insufficient_clearance",
    "not_owner",
    "access_denied",
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "insufficient_user_authentication",
    "not_logged_in",
    "token_expired",
];

/// A failure talking to a gateway: the gateway's own error answer (its
/// `error` code, e.g. `invalid_token`), a transport failure (`tls`,
/// `connect`, `timeout`, `transport`), or a client-side credential problem
/// (`not_logged_in`, `token_expired`). Exit code 6 for [`AUTH_CODES`],
/// else 1; with `--json` the code is the error object's `code` and the
/// HTTP status its `http_status`.
///
/// `message` is built by the client from fixed text and sanitised server
/// text; it never holds a token, code, verifier or password.
#[derive(Debug)]
pub struct Remote {
    /// Stable error code (`[a-z0-9_]`, at most 64 bytes).
    pub code: String,
    /// The HTTP status, when the gateway answered.
    pub status: Option<u16>,
    /// What happened, in words.
    pub message: String,
    /// The underlying transport error, if any.
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Remote {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Remote {
    /// Whether the code is one of [`AUTH_CODES`].
    pub fn is_auth(&self) -> bool {
        AUTH_CODES.contains(&self.code.as_str())
    }
}

/// A [`Remote`] error without an HTTP status or source.
pub fn remote(code: &str, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Remote { code: code.to_owned(), status: None, message: msg.into(), source: None })
}

/// Maps an error chain to an exit code and a stable JSON error object.
pub fn classify(err: &anyhow::Error) -> (Exit, serde_json::Value) {
    let mut code = std::borrow::Cow::Borrowed("error");
    let mut exit = Exit::Failure;
    let mut segment = None;
    let mut fields = None;
    let mut http_status = None;
    for cause in err.chain() {
        if let Some(r) = cause.downcast_ref::<Remote>() {
            exit = if r.is_auth() { Exit::Auth } else { Exit::Failure };
            code = std::borrow::Cow::Owned(r.code.clone());
            http_status = r.status;
            break;
        }
        if cause.downcast_ref::<BadInput>().is_some() {
            exit = Exit::Usage;
            code = "bad_input".into();
            break;
        }
        if let Some(g) = cause.downcast_ref::<NoGpu>() {
            exit = Exit::NoGpu;
            code = g.code.into();
            break;
        }
        if let Some(i) = cause.downcast_ref::<Integrity>() {
            exit = Exit::Integrity;
            code = i.code.into();
            fields = Some(&i.fields);
            break;
        }
        if let Some(fe) = find_format(cause) {
            exit = if matches!(fe, FormatError::Io(_)) { Exit::Io } else { Exit::Integrity };
            code = fe.code().into();
            segment = fe.segment();
            break;
        }
        if let Some(ke) = cause.downcast_ref::<KeyError>() {
            if let KeyError::Format(fe) = ke {
                exit = Exit::Integrity;
                code = fe.code().into();
                segment = fe.segment();
            } else {
                exit = Exit::Key;
                code = key_code(ke).into();
            }
            break;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            exit = Exit::Io;
            code = "io".into();
            break;
        }
    }
    let message = format!("{err:#}");
    let mut value = serde_json::json!({
        "ok": false,
        "error": { "code": code, "message": message, "segment": segment, "exit_code": exit as u8 },
    });
    if let (Some(status), Some(e)) = (http_status, value.get_mut("error").and_then(|e| e.as_object_mut())) {
        e.insert("http_status".into(), status.into());
    }
    if let (Some(fields), Some(obj)) = (fields, value.as_object_mut()) {
        for (k, v) in fields {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    (exit, value)
}

fn find_format<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a FormatError> {
    cause
        .downcast_ref::<FormatError>()
        .or_else(|| cause.downcast_ref::<std::io::Error>().and_then(FormatError::from_io))
}

fn key_code(e: &KeyError) -> &'static str {
    match e {
        KeyError::NoMatchingRecipient { .. } | KeyError::UnwrapFailed { .. } => "wrong_key",
        KeyError::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
        KeyError::UnknownRecipient { .. } => "unknown_recipient",
        KeyError::NoRecipientsLeft => "no_recipients_left",
        KeyError::Io { .. } => "key_io",
        _ => "key_error",
    }
}
