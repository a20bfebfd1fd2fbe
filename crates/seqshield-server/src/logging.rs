//! Log output: `tracing` events to stderr, so stdout stays for results.
//!
//! Every default that is weaker than production (self-signed certificate,
//! file KEK, generated passphrase) is reported through [`weak_default`], so
//! operators can grep for one field: `weak_default`.

/// Variable holding a `tracing` filter (e.g. `info`, `seqshield_server=debug`).
pub const ENV_LOG: &str = "SEQSHIELD_LOG";

/// Installs a stderr subscriber filtered by [`ENV_LOG`] (default `info`),
/// as JSON lines ([`json_subscriber`]) when `json`. Does nothing if one is
/// already installed.
pub fn init(json: bool) {
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env(ENV_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // An error means a subscriber exists already: keep it.
    if json {
        let _ = json_subscriber(std::io::stderr, filter).try_init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let _ =
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_env_filter(filter).try_init();
    }
}

/// The JSON-lines format of `init(true)`, writing to `writer`. Each event
/// carries the fields of the span it was emitted in (`span`) and of every
/// enclosing span (`spans`): an event logged while a request is handled
/// has `"span":{"request_id":…,"name":"request"}` (see
/// [`crate::request_id`]).
pub fn json_subscriber<W>(writer: W, filter: tracing_subscriber::EnvFilter) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(writer)
        .with_env_filter(filter)
        .finish()
}

/// Logs a WARNING that `what` (e.g. `self_signed_certificate`, `file_kek`)
/// runs on a default weaker than production, and why it matters.
pub fn weak_default(what: &'static str, message: &str) {
    tracing::warn!(weak_default = what, "{message}");
}

/// Logs an informational start-up event.
pub fn notice(message: &str) {
    tracing::info!("{message}");
}

/// Logs a warning about something that went wrong but did not stop the
/// server.
pub fn warn(message: &str) {
    tracing::warn!("{message}");
}
