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
}

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

/// Maps an error chain to an exit code and a stable JSON error object.
pub fn classify(err: &anyhow::Error) -> (Exit, serde_json::Value) {
    let mut code = "error";
    let mut exit = Exit::Failure;
    let mut segment = None;
    for cause in err.chain() {
        if cause.downcast_ref::<BadInput>().is_some() {
            exit = Exit::Usage;
            code = "bad_input";
            break;
        }
        if let Some(fe) = find_format(cause) {
            exit = if matches!(fe, FormatError::Io(_)) { Exit::Io } else { Exit::Integrity };
            code = fe.code();
            segment = fe.segment();
            break;
        }
        if let Some(ke) = cause.downcast_ref::<KeyError>() {
            if let KeyError::Format(fe) = ke {
                exit = Exit::Integrity;
                code = fe.code();
                segment = fe.segment();
            } else {
                exit = Exit::Key;
                code = key_code(ke);
            }
            break;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            exit = Exit::Io;
            code = "io";
            break;
        }
    }
    let message = format!("{err:#}");
    let value = serde_json::json!({
        "ok": false,
        "error": { "code": code, "message": message, "segment": segment, "exit_code": exit as u8 },
    });
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
