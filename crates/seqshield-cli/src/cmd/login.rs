//! `seqshield login`, `seqshield logout` and `seqshield whoami`: getting,
//! dropping and checking the token every client command uses
//! ([`crate::client`]).
//!
//! `login` is the OAuth 2.0 authorization-code flow with PKCE for a native
//! app (RFC 8252): it reads the gateway's discovery document, listens on
//! `127.0.0.1` on a port the system picks, prints (and, on a desktop,
//! opens) the sign-in URL, and waits for the browser to come back to
//! `http://127.0.0.1:PORT/callback` with the code. The gateway accepts any
//! port for a registered loopback redirect URI (RFC 8252 §7.3), so the
//! client must be registered once with
//! `seqshield client add NAME --redirect-uri http://127.0.0.1/callback`.
//!
//! The listener answers only `GET /callback` carrying the `state` of this
//! login (compared in constant time); anything else gets a 404 or 400 and
//! is otherwise ignored, so a stray or forged request cannot end the login.
//! An `iss` parameter must name the discovered issuer (RFC 9207). The code
//! is exchanged with the S256 verifier (43 characters from 32 random
//! bytes), and the token saved by [`client::TokenFile`].

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Args;
use reqwest::Url;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::client::{self, Client, GatewayArgs, SavedToken, TokenFile, TokenSource};
use crate::exit;
use crate::Ctx;

/// The client id `login` uses unless told otherwise.
pub const DEFAULT_CLIENT_ID: &str = "seqshield-cli";
/// The scopes `login` asks for unless told otherwise.
pub const DEFAULT_SCOPE: &str = "openid data:read data:write jobs:submit jobs:read";
/// The redirect path; the registered redirect URI is
/// `http://127.0.0.1/callback`.
pub const CALLBACK_PATH: &str = "/callback";
/// Longest request head the loopback listener reads.
const MAX_REQUEST_HEAD: usize = 8 << 10;
/// Longest a browser connection may take to send its request head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// `seqshield login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The public OAuth client to log in as; it must be registered with the
    /// redirect URI http://127.0.0.1/callback (any port is then accepted).
    #[arg(long, value_name = "ID", default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// Scopes to ask for, space-separated; they must include openid and be
    /// within the client's registration. The token carries those of them
    /// the user holds.
    #[arg(long, value_name = "SCOPES", default_value = DEFAULT_SCOPE)]
    pub scope: String,
    /// Only print the sign-in URL; do not start a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the sign-in to come back from the browser.
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// `seqshield logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// `seqshield whoami`.
#[derive(Args, Debug)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// What the browser's request to the loopback listener turned out to be.
#[derive(Debug)]
enum Verdict {
    /// Another path (`/favicon.ico`, …): 404.
    NotFound,
    /// Not a GET: 405.
    MethodNotAllowed,
    /// Malformed: 400.
    BadRequest(&'static str),
    /// The callback path without this login's `state`: 400, and noted.
    WrongState,
    /// The authorization response of this login.
    Callback(CallbackParams),
}

/// The authorization response (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207).
/// `Debug` redacts the code.
struct CallbackParams {
    code: Option<Zeroizing<String>>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("iss", &self.iss)
            .finish()
    }
}

/// Judges one request head against the expected `state`.
fn judge(head: &[u8], state: &str) -> Verdict {
    let Ok(text) = std::str::from_utf8(head) else { return Verdict::BadRequest("the request is not text") };
    let line = text.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Verdict::BadRequest("malformed request line");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Verdict::BadRequest("malformed request line");
    }
    let Ok(url) = Url::parse(&format!("http://127.0.0.1{target}")) else {
        return Verdict::BadRequest("malformed request target");
    };
    if url.path() != CALLBACK_PATH {
        return Verdict::NotFound;
    }
    if method != "GET" {
        return Verdict::MethodNotAllowed;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut p = CallbackParams { code: None, error: None, error_description: None, iss: None };
    let mut got_state = None;
    for (k, v) in url.query_pairs() {
        if !seen.insert(k.clone().into_owned()) {
            return Verdict::BadRequest("a parameter is repeated");
        }
        match &*k {
            "state" => got_state = Some(v.into_owned()),
            "code" => p.code = Some(Zeroizing::new(v.into_owned())),
            "error" => p.error = Some(v.into_owned()),
            "error_description" => p.error_description = Some(v.into_owned()),
            "iss" => p.iss = Some(v.into_owned()),
            _ => {}
        }
    }
    match got_state {
        Some(s) if aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), state.as_bytes()).is_ok() => {
            Verdict::Callback(p)
        }
        _ => Verdict::WrongState,
    }
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A page for the browser: status, title, text.
struct Page(u16, &'static str, String);

impl Page {
    fn done() -> Self {
        Self(200, "Login complete", "You are logged in. You can close this window and return to the terminal.".into())
    }

    fn failed(why: &str) -> Self {
        Self(400, "Login failed", format!("{why}. Return to the terminal for details."))
    }

    fn bytes(&self) -> Vec<u8> {
        let Page(status, title, text) = self;
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            _ => "Bad Request",
        };
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · seqshield</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}</style></head>\
<body><h1>{t}</h1><p id=\"message\">{m}</p></body></html>",
            t = escape(title),
            m = escape(text)
        );
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\n\
Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// A callback with this login's state, handed to the login task, which
/// answers the page once it knows the outcome.
struct Hit {
    params: CallbackParams,
    reply: oneshot::Sender<Page>,
    written: oneshot::Receiver<()>,
}

/// Reads a request head (up to the blank line), at most [`MAX_REQUEST_HEAD`].
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(buf);
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return None;
        }
    }
}

async fn write_page(mut stream: TcpStream, page: &Page) {
    let _ = stream.write_all(&page.bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serves one browser connection.
async fn serve_connection(mut stream: TcpStream, state: Arc<str>, tx: mpsc::Sender<Hit>) {
    let Ok(Some(head)) = tokio::time::timeout(REQUEST_HEAD_TIMEOUT, read_head(&mut stream)).await else { return };
    let page = match judge(&head, &state) {
        Verdict::NotFound => Page(404, "Not found", "Nothing here.".into()),
        Verdict::MethodNotAllowed => Page(405, "Not allowed", "Only GET is answered here.".into()),
        Verdict::BadRequest(why) => Page(400, "Bad request", why.into()),
        Verdict::WrongState => {
            eprintln!("seqshield: ignored a request to the login callback without this login's state");
            Page(400, "Login not recognised", "This response does not belong to the login in progress.".into())
        }
        Verdict::Callback(params) => {
            let (reply, page) = oneshot::channel();
            let (written_tx, written) = oneshot::channel();
            if tx.send(Hit { params, reply, written }).await.is_err() {
                Page(409, "Already done", "This login has already finished. You can close this window.".into())
            } else {
                let page = page.await.unwrap_or_else(|_| Page::failed("The login stopped"));
                write_page(stream, &page).await;
                let _ = written_tx.send(());
                return;
            }
        }
    };
    write_page(stream, &page).await;
}

async fn accept_loop(listener: TcpListener, state: Arc<str>, tx: mpsc::Sender<Hit>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, state.clone(), tx.clone()));
            }
            // Out of file descriptors or similar: pause, try again.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `n` random bytes, base64url without padding.
fn random_b64(n: usize) -> Result<String> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(&*b))
}

/// Starts the desktop's browser on `url` when there is a desktop; failure
/// is only a note (the URL is printed either way).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    if !cfg!(target_os = "macos")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return;
    }
    match Command::new(opener).arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(_) => eprintln!("seqshield: could not start {opener}; open the URL above yourself"),
    }
}

/// The outcome of a login, for the report.
struct LoggedIn {
    saved: SavedToken,
    file: TokenFile,
    claims: Value,
}

/// Runs `seqshield login`.
pub fn login(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    if !a.scope.split(' ').any(|s| s == "openid") {
        return Err(exit::bad_input("--scope must include openid"));
    }
    if a.client_id.is_empty() {
        return Err(exit::bad_input("--client-id must not be empty"));
    }
    let server = a.gateway.origin();
    let done = client::block_on(run_login(&a))?;
    if std::env::var_os(client::ENV_TOKEN).is_some() {
        eprintln!(
            "seqshield: note: ${} is set and takes precedence over the token just saved; unset it to use this login",
            client::ENV_TOKEN
        );
    }
    let sub = done.claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
    let value = json!({
        "ok": true,
        "server": server,
        "subject": sub,
        "client_id": done.saved.client_id,
        "scope": done.saved.scope,
        "expires_at": done.saved.expires_at,
        "refresh_token": done.saved.refresh_token.is_some(),
        "token_file": done.file.path(),
    });
    ctx.report(value, || {
        format!(
            "logged in to {server} as {} (scope: {}); token saved in {}, valid until {}{}",
            printable(&sub),
            printable(&done.saved.scope),
            done.file.path().display(),
            client::rfc3339(done.saved.expires_at),
            if done.saved.refresh_token.is_some() { ", renewed automatically with its refresh token" } else { "" }
        )
    });
    Ok(())
}

async fn run_login(a: &LoginArgs) -> Result<LoggedIn> {
    let anon = a.gateway.connect_anonymous()?;
    let d = anon.discover().await?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot open a loopback port for the browser to come back to")?;
    let port = listener.local_addr().context("cannot read the loopback port")?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let verifier = Zeroizing::new(random_b64(32)?);
    let challenge = seqshield_auth::pkce::s256(&verifier);
    let state: Arc<str> = random_b64(32)?.into();
    let nonce = random_b64(16)?;
    let mut auth_url = d.authorization_endpoint.clone();
    auth_url
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &a.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &a.scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    eprintln!("seqshield: open this URL in a browser to sign in to {}:\n\n  {auth_url}\n", a.gateway.origin());
    eprintln!("seqshield: waiting up to {} s for the browser to come back to {redirect_uri}", a.timeout);
    if !a.no_browser {
        open_browser(auth_url.as_str());
    }

    let (tx, mut rx) = mpsc::channel(1);
    let acceptor = tokio::spawn(accept_loop(listener, state.clone(), tx));
    let hit = tokio::time::timeout(Duration::from_secs(a.timeout), rx.recv()).await;
    // One answer only: later callbacks are told the login is over.
    rx.close();
    let outcome = match hit {
        Ok(Some(hit)) => {
            let result = finish(a, &anon, &d, &redirect_uri, &verifier, hit.params).await;
            let page = match &result {
                Ok(_) => Page::done(),
                Err(e) => Page::failed(&format!("{e:#}")),
            };
            if hit.reply.send(page).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), hit.written).await;
            }
            result
        }
        Ok(None) => Err(anyhow::anyhow!("the loopback listener stopped")),
        Err(_) => Err(exit::remote(
            "login_timeout",
            format!(
                "no sign-in came back within {} s (the browser never reached {redirect_uri}); run `seqshield login` again",
                a.timeout
            ),
        )),
    };
    acceptor.abort();
    outcome
}

/// Checks the authorization response, exchanges the code, saves the token
/// and reads the claims back through the gateway.
async fn finish(
    a: &LoginArgs,
    anon: &Client,
    d: &client::Discovery,
    redirect_uri: &str,
    verifier: &str,
    p: CallbackParams,
) -> Result<LoggedIn> {
    if let Some(iss) = &p.iss {
        if iss != &d.issuer {
            return Err(exit::remote(
                "issuer_mismatch",
                format!(
                    "the sign-in came back from issuer {:?}, not the gateway's {:?} (RFC 9207); login refused",
                    printable(iss),
                    printable(&d.issuer)
                ),
            ));
        }
    }
    if let Some(err) = &p.error {
        let code = if !err.is_empty() && err.len() <= 64 && err.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            err.clone()
        } else {
            "authorization_error".to_owned()
        };
        let desc = p.error_description.as_deref().map(|d| format!(": {}", printable(d))).unwrap_or_default();
        return Err(exit::remote(&code, format!("the gateway refused the sign-in ({code}{desc})")));
    }
    let Some(code) = &p.code else {
        bail!("the sign-in came back with neither a code nor an error");
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("client_id", a.client_id.as_str()),
    ];
    let t = anon.token_request(d, &form).await.context("cannot exchange the sign-in code for a token")?;
    let saved = SavedToken::from_response(&a.gateway.server, &a.client_id, t, client::now());
    let file = TokenFile::for_server(&a.gateway.server)?;
    {
        let lock = file.lock().await?;
        file.save(&lock, &saved)?;
    }
    let authed = anon.clone().with_bearer(&saved.access_token, TokenSource::Saved(file.path().to_owned()))?;
    let claims: Value = authed.get_json("/api/v1/whoami").await.context("the new token does not work")?;
    Ok(LoggedIn { saved, file, claims })
}

/// Server-supplied text without control characters, at most 200 characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Runs `seqshield logout`: revokes the saved refresh token (its whole
/// family, with every access token issued from it) and access token at the
/// gateway (RFC 7009), then deletes the token file. If the gateway cannot
/// be reached, the file is kept so that logout can be retried.
pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<()> {
    let server = a.gateway.origin();
    let outcome = client::block_on(async {
        let file = TokenFile::for_server(&a.gateway.server)?;
        let lock = file.lock().await?;
        let Some(saved) = file.load(&lock)? else { return Ok((file, false)) };
        let keep = || {
            format!(
                "cannot revoke the saved token at {server}; it was kept so `seqshield logout` can be retried (or delete {})",
                file.path().display()
            )
        };
        let c = a.gateway.connect_anonymous()?;
        let d = c.discover().await.with_context(keep)?;
        if let Some(rt) = &saved.refresh_token {
            c.revoke(&d, &saved.client_id, rt, "refresh_token").await.with_context(keep)?;
        }
        c.revoke(&d, &saved.client_id, &saved.access_token, "access_token").await.with_context(keep)?;
        file.remove(&lock)?;
        Ok((file, true))
    })?;
    let (file, was_logged_in) = outcome;
    let value = json!({ "ok": true, "server": server, "revoked": was_logged_in, "token_file": file.path() });
    ctx.report(value, || {
        if was_logged_in {
            format!("logged out of {server}: token revoked and {} deleted", file.path().display())
        } else {
            format!("not logged in to {server} (no {})", file.path().display())
        }
    });
    Ok(())
}

/// Runs `seqshield whoami`: the claims of the token the convention picks,
/// as the gateway verified them (`GET /api/v1/whoami`).
pub fn whoami(ctx: &Ctx, a: WhoamiArgs) -> Result<()> {
    let (claims, source) = client::block_on(async {
        let c = a.gateway.connect().await?;
        let claims: Value = c.get_json("/api/v1/whoami").await?;
        Ok((claims, c.token_source().cloned()))
    })?;
    let source_name = match &source {
        Some(TokenSource::Env) => "env",
        _ => "saved",
    };
    let value = json!({ "ok": true, "server": a.gateway.origin(), "token_source": source_name, "claims": claims });
    ctx.report(value, || {
        let field = |k: &str| match claims.get(k) {
            Some(Value::String(s)) => printable(s),
            Some(Value::Array(v)) => printable(&v.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")),
            Some(Value::Null) | None => "-".into(),
            Some(other) => printable(&other.to_string()),
        };
        let expires = claims.get("exp").and_then(Value::as_u64).map_or_else(|| "-".into(), client::rfc3339);
        format!(
            "{}\n  client     {}\n  scope      {}\n  clearance  {}\n  amr        {}\n  expires    {expires}\n  token      {}",
            field("sub"),
            field("client_id"),
            field("scope"),
            field("clearance"),
            field("amr"),
            source.map_or_else(|| "-".into(), |s| s.to_string()),
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n").into_bytes()
    }

    #[test]
    fn only_the_callback_with_this_state_counts() {
        let s = "S1";
        match judge(&head("/callback?code=C&state=S1&iss=https%3A%2F%2Fgw"), s) {
            Verdict::Callback(p) => {
                assert_eq!(p.code.as_deref().map(String::as_str), Some("C"));
                assert_eq!(p.iss.as_deref(), Some("https://gw"));
                assert!(!format!("{p:?}").contains("\"C\""));
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(judge(&head("/callback?code=C&state=S2"), s), Verdict::WrongState));
        assert!(matches!(judge(&head("/callback?code=C"), s), Verdict::WrongState));
        assert!(matches!(judge(&head("/callback?code=C&state=S1&state=S1"), s), Verdict::BadRequest(_)));
        assert!(matches!(judge(&head("/favicon.ico"), s), Verdict::NotFound));
        assert!(matches!(judge(&head("/callback/x?state=S1"), s), Verdict::NotFound));
        assert!(matches!(judge(b"POST /callback?state=S1 HTTP/1.1\r\n\r\n", s), Verdict::MethodNotAllowed));
        assert!(matches!(judge(b"GET http://evil/ HTTP/1.1\r\n\r\n", s), Verdict::BadRequest(_)));
        assert!(matches!(judge(b"garbage\r\n\r\n", s), Verdict::BadRequest(_)));
        match judge(&head("/callback?error=access_denied&error_description=no+way&state=S1"), s) {
            Verdict::Callback(p) => {
                assert_eq!(p.error.as_deref(), Some("access_denied"));
                assert_eq!(p.error_description.as_deref(), Some("no way"));
                assert!(p.code.is_none());
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn pages_escape_and_forbid_referrers() {
        let p = String::from_utf8(Page::failed("<script>x</script>").bytes()).unwrap();
        assert!(p.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{p}");
        assert!(p.contains("Referrer-Policy: no-referrer") && p.contains("Cache-Control: no-store"));
        assert!(p.contains("&lt;script&gt;") && !p.contains("<script>"));
        let (h, body) = p.split_once("\r\n\r\n").unwrap();
        assert!(h.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn verifier_and_state_are_long_random_base64url() {
        let a = random_b64(32).unwrap();
        assert_eq!(a.len(), 43);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, random_b64(32).unwrap());
    }
}
