//! The client convention: how every command that talks to a gateway finds
//! it, trusts it and proves who it is.
//!
//! - **Where**: `--server URL` or `$SEQSHIELD_SERVER`, an `https` URL (the
//!   gateway's base URL, as in `seqshield serve`'s ready line).
//! - **Trust**: `--ca-cert FILE` or `$SEQSHIELD_CA_CERT`, one PEM
//!   certificate: the CA that issued the gateway's certificate, or the
//!   gateway's own self-signed certificate (`DATA/tls/cert.pem`), pinned.
//!   It is the only root of trust, and the connection follows the gateway's
//!   own policy (TLS 1.3, AES-256-GCM, P-384; [`seqshield_server::tls`]).
//!   There is no way to turn verification off.
//! - **Who**: the bearer token in `$SEQSHIELD_TOKEN` when set, else the one
//!   `seqshield login` saved for that server's origin (see [`TokenFile`]),
//!   refreshed with its refresh token when it is within
//!   [`REFRESH_MARGIN_SECS`] of expiry.
//!
//! A command embeds [`GatewayArgs`] (`#[command(flatten)]`), and inside
//! [`block_on`] calls [`GatewayArgs::connect`] (a token is required) or
//! [`GatewayArgs::connect_anonymous`], then [`Client::get_json`],
//! [`Client::post_json`], or for streaming and parallel transfers
//! [`Client::http`] + [`Client::send`]:
//!
//! ```ignore
//! pub fn run(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
//!     let list: serde_json::Value = client::block_on(async {
//!         let c = a.gateway.connect().await?;
//!         c.get_json("/api/v1/objects").await
//!     })?;
//!     ctx.report(list, || String::new());
//!     Ok(())
//! }
//! ```
//!
//! Every failure on the way is an [`exit::Remote`] error carrying a stable
//! code: the gateway's own OAuth error code (`invalid_token`,
//! `insufficient_scope`, …; exit code 6 for refusals of who or what), or
//! `tls`, `connect`, `timeout`, `transport`, `http_NNN`, `not_logged_in`,
//! `token_expired`. No token, code, verifier or password is ever part of an
//! error, a log line or a `Debug` output.

use std::fmt;
use std::fs::{self, File};
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Args;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, Url};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::exit::{self, Remote};

/// Environment variable naming the gateway (like `--server`).
pub const ENV_SERVER: &str = "SEQSHIELD_SERVER";
/// Environment variable naming the certificate to trust (like `--ca-cert`).
pub const ENV_CA_CERT: &str = "SEQSHIELD_CA_CERT";
/// Environment variable holding a bearer token; it overrides the saved one.
pub const ENV_TOKEN: &str = "SEQSHIELD_TOKEN";
/// A saved token this close to expiry (seconds) is refreshed first.
pub const REFRESH_MARGIN_SECS: u64 = 60;
/// Longest a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a [`Client::get_json`] / [`Client::post_json`] exchange (or a
/// token-endpoint call) may take.
pub const JSON_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest JSON answer read by [`Client::get_json`] / [`Client::post_json`].
pub const MAX_JSON_BYTES: usize = 16 << 20;
/// Largest error body read when mapping an error answer.
const MAX_ERROR_BYTES: usize = 64 << 10;
/// Longest token accepted (the gateway's own limit is 8 KiB).
const MAX_TOKEN_BYTES: usize = 16 << 10;
/// Longest piece of server-supplied text shown in a message.
const MAX_SERVER_TEXT: usize = 300;
/// `after_help` for every client command: where the gateway, the trust
/// anchor and the token come from.
pub const CONVENTION_HELP: &str = "\
The gateway comes from --server or $SEQSHIELD_SERVER, the certificate to
trust from --ca-cert or $SEQSHIELD_CA_CERT, and the bearer token from
$SEQSHIELD_TOKEN, else from the token `seqshield login` saved in
$XDG_CONFIG_HOME/seqshield/tokens/HOST_PORT.json (~/.config/seqshield/...
without XDG_CONFIG_HOME), renewed with its refresh token when it expires.

Exit code 6: the gateway refused who you are or what you asked
(not_logged_in, token_expired, invalid_token, insufficient_scope, ...).";
/// The token file format version.
const TOKEN_FILE_VERSION: u32 = 1;

/// Where the gateway is and which certificate to trust for it. Flatten it
/// into a command's arguments; both flags fall back to their environment
/// variables, and both are required.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// The gateway's base URL, e.g. https://gateway.example.org:8443 (https
    /// only).
    #[arg(long, env = ENV_SERVER, value_name = "URL", value_parser = parse_server)]
    pub server: Url,
    /// The one certificate (PEM) to trust for the gateway: its CA's
    /// certificate, or the gateway's own self-signed certificate
    /// (DATA/tls/cert.pem), pinned.
    #[arg(long, env = ENV_CA_CERT, value_name = "FILE")]
    pub ca_cert: PathBuf,
}

/// Checks a `--server` value: an absolute `https` URL with a host, no user
/// name, password, query or fragment. The path (usually empty) becomes the
/// base every request path is joined to, so it is made to end with `/`.
pub fn parse_server(s: &str) -> Result<Url, String> {
    let mut u = Url::parse(s.trim()).map_err(|e| format!("not an absolute URL ({e})"))?;
    if u.scheme() != "https" {
        return Err(format!("the gateway is reached over https only, not {}", u.scheme()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the URL must not contain a user name or password".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// `https://host:port` of `u`, with the port always written: the key under
/// which a token is saved.
pub fn origin(u: &Url) -> String {
    let host = u.host_str().unwrap_or_default();
    match u.port_or_known_default() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `secs` (Unix) as RFC 3339 UTC, e.g. `2025-01-31T12:00:00Z`.
pub fn rfc3339(secs: u64) -> String {
    seqshield_audit::Timestamp::from_unix(secs).map_or_else(|_| format!("@{secs}"), |t| t.rfc3339())
}

/// Runs `fut` to completion on a new multi-thread tokio runtime: the bridge
/// from a command's synchronous `run` to the async client.
pub fn block_on<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(fut)
}

/// The one certificate in a PEM file (`--ca-cert`). A file with no
/// certificate or with several is refused: the trust anchor is explicit.
pub fn load_cert(path: &Path) -> Result<CertificateDer<'static>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot read the certificate file {}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    match certs.len() {
        1 => Ok(certs.into_iter().next().expect("one element")),
        0 => bail!("no PEM CERTIFICATE in {} (--ca-cert / ${ENV_CA_CERT})", path.display()),
        n => bail!(
            "{} holds {n} certificates; --ca-cert / ${ENV_CA_CERT} takes exactly one: the CA's certificate or the gateway's own",
            path.display()
        ),
    }
}

/// A `reqwest` client builder with the strict TLS of the convention:
/// `ca_cert` as the only root, TLS 1.3 / AES-256-GCM / P-384 only, HTTP/1.1,
/// https only, no redirects followed, [`CONNECT_TIMEOUT`]. Callers may add
/// pool and timeout settings; nothing here can be loosened.
pub fn http_builder(ca_cert: &Path) -> Result<reqwest::ClientBuilder> {
    let cert = load_cert(ca_cert)?;
    let mut tls = seqshield_server::tls::client_config(&cert)
        .with_context(|| format!("cannot trust the certificate in {}", ca_cert.display()))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("seqshield/", env!("CARGO_PKG_VERSION"))))
}

impl GatewayArgs {
    /// The origin (`https://host:port`) of `--server`.
    pub fn origin(&self) -> String {
        origin(&self.server)
    }

    /// A client without a token, for public endpoints (discovery, the
    /// token endpoint). Reads the certificate; makes no request.
    pub fn connect_anonymous(&self) -> Result<Client> {
        let http = http_builder(&self.ca_cert)?.build().context("cannot build the HTTP client")?;
        Ok(Client { base: self.server.clone(), http, token: None })
    }

    /// A client with a bearer token: `$SEQSHIELD_TOKEN` when set and not
    /// empty, else the token `seqshield login` saved for this server,
    /// refreshed first when it is within [`REFRESH_MARGIN_SECS`] of expiry
    /// (under a lock, so parallel commands do not race the single-use
    /// refresh token). Fails with `not_logged_in` when there is neither,
    /// and `token_expired` when the saved token expired and cannot be
    /// refreshed. The token is not checked here; the first request is.
    pub async fn connect(&self) -> Result<Client> {
        let mut c = self.connect_anonymous()?;
        if let Some(t) = env_token()? {
            c.token = Some(Credential::new(&t, TokenSource::Env)?);
            return Ok(c);
        }
        let file = TokenFile::for_server(&self.server)?;
        let saved = fresh_saved_token(&c, &file).await?;
        c.token = Some(Credential::new(&saved.access_token, TokenSource::Saved(file.path().to_owned()))?);
        Ok(c)
    }
}

/// `$SEQSHIELD_TOKEN`, trimmed, when set and not empty.
fn env_token() -> Result<Option<Zeroizing<String>>> {
    match std::env::var_os(ENV_TOKEN) {
        None => Ok(None),
        Some(v) => {
            let v = Zeroizing::new(v.into_string().map_err(|_| {
                exit::remote("invalid_token", format!("{ENV_TOKEN} is not valid UTF-8, so it cannot be a token"))
            })?);
            let t = v.trim();
            Ok((!t.is_empty()).then(|| Zeroizing::new(t.to_owned())))
        }
    }
}

/// Where a client's token came from (for messages; never the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `$SEQSHIELD_TOKEN`.
    Env,
    /// The token file `seqshield login` wrote.
    Saved(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env => write!(f, "${ENV_TOKEN}"),
            Self::Saved(p) => write!(f, "the token saved by `seqshield login` ({})", p.display()),
        }
    }
}

/// A bearer token as a ready `Authorization` header, marked sensitive.
#[derive(Clone)]
struct Credential {
    header: HeaderValue,
    source: TokenSource,
}

impl Credential {
    fn new(token: &str, source: TokenSource) -> Result<Self> {
        let bad = |why: &str| exit::remote("invalid_token", format!("the token from {source} {why}"));
        if token.len() > MAX_TOKEN_BYTES {
            return Err(bad("is too long to be a token"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("has characters a bearer token cannot have"));
        }
        let value = Zeroizing::new(format!("Bearer {token}"));
        let mut header = HeaderValue::from_str(&value).map_err(|_| bad("cannot be sent in a header"))?;
        header.set_sensitive(true);
        Ok(Self { header, source })
    }
}

/// A connection to one gateway: its base URL, a strict HTTP client and,
/// from [`GatewayArgs::connect`], a bearer token. Cheap to clone (share it
/// across tasks for parallel requests). `Debug` shows where the token came
/// from, never the token.
#[derive(Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    token: Option<Credential>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|c| format!("<redacted, from {}>", c.source)))
            .finish()
    }
}

impl Client {
    /// The gateway's base URL (`--server`, ending in `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `path` (e.g. `/api/v1/whoami`, already percent-encoded, may carry a
    /// `?query`) resolved against the base URL. Refuses a path that would
    /// leave the gateway's origin. To add user-supplied path segments, use
    /// `url.path_segments_mut()` on the result, which encodes them.
    pub fn url(&self, path: &str) -> Result<Url> {
        let u = self.base.join(path.trim_start_matches('/')).with_context(|| format!("bad request path {path:?}"))?;
        if origin(&u) != origin(&self.base) {
            bail!("request path {path:?} leaves the gateway {}", origin(&self.base));
        }
        Ok(u)
    }

    /// The underlying HTTP client (strict TLS, no redirects), for requests
    /// [`Client::get_json`] and [`Client::post_json`] do not cover:
    /// streaming bodies, downloads, parallel part uploads. Build the
    /// request here, then pass it to [`Client::send`] (which adds the
    /// token and maps errors), or to [`Client::auth`] and send it yourself.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The `Authorization: Bearer …` header value (marked sensitive, so the
    /// HTTP stack never logs it), or `None` for an anonymous client.
    pub fn bearer(&self) -> Option<&HeaderValue> {
        self.token.as_ref().map(|c| &c.header)
    }

    /// Where the token came from, or `None` for an anonymous client.
    pub fn token_source(&self) -> Option<&TokenSource> {
        self.token.as_ref().map(|c| &c.source)
    }

    /// This client with `token` as its bearer token (e.g. one just issued
    /// by the token endpoint); refused like a bad `$SEQSHIELD_TOKEN`.
    pub fn with_bearer(mut self, token: &str, source: TokenSource) -> Result<Self> {
        self.token = Some(Credential::new(token, source)?);
        Ok(self)
    }

    /// `rb` with the bearer token added (unchanged for an anonymous client).
    pub fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        match self.bearer() {
            Some(h) => rb.header(AUTHORIZATION, h.clone()),
            None => rb,
        }
    }

    /// Adds the token, sends, and returns the response if its status is
    /// 2xx; otherwise the error from [`Client::check`]. Transport failures
    /// become [`transport_error`]s. No timeout is set here beyond the
    /// connect timeout: set one on `rb` if the request should have one.
    pub async fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let resp = self.auth(rb).send().await.map_err(transport_error)?;
        self.check(resp).await
    }

    /// `resp` itself when its status is 2xx; else an [`exit::Remote`]
    /// error carrying the gateway's `error` code (from the JSON body
    /// `{"error": …, "error_description": …}`, else the `WWW-Authenticate`
    /// challenge, else `http_NNN`), its status and description, and a hint
    /// that fits where the token came from.
    pub async fn check(&self, resp: Response) -> Result<Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.error_from(resp).await)
    }

    /// GET `path` with the token and parse the JSON answer (at most
    /// [`MAX_JSON_BYTES`], within [`JSON_TIMEOUT`]).
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path)?;
        let rb = self.http().get(url.clone()).header(ACCEPT, "application/json").timeout(JSON_TIMEOUT);
        read_json(self.send(rb).await?, &url).await
    }

    /// POST `body` as JSON to `path` with the token and parse the JSON
    /// answer (at most [`MAX_JSON_BYTES`], within [`JSON_TIMEOUT`]).
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = self.url(path)?;
        let rb = self.http.post(url.clone()).header(ACCEPT, "application/json").json(body).timeout(JSON_TIMEOUT);
        read_json(self.send(rb).await?, &url).await
    }

    async fn error_from(&self, resp: Response) -> anyhow::Error {
        let status = resp.status();
        let place = display_url(resp.url());
        let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(bearer_challenge_error);
        let body = read_limited(resp, MAX_ERROR_BYTES).await.unwrap_or_default();
        let (code, description) = oauth_error_body(&body);
        let code = code
            .or(challenge.flatten())
            .filter(|c| valid_code(c))
            .unwrap_or_else(|| format!("http_{}", status.as_u16()));
        let mut message = format!("{place} answered {} {code}", status.as_u16());
        if let Some(d) = description {
            message.push_str(": ");
            message.push_str(&d);
        }
        if let Some(hint) = self.hint(&code) {
            message.push_str(" (");
            message.push_str(&hint);
            message.push(')');
        }
        anyhow::Error::new(Remote { code, status: Some(status.as_u16()), message, source: None })
    }

    fn hint(&self, code: &str) -> Option<String> {
        let server = origin(self.base());
        match (code, &self.token) {
            ("invalid_token", Some(Credential { source: TokenSource::Env, .. })) => Some(format!(
                "the token came from ${ENV_TOKEN}: get a new one, or unset it to use the one `seqshield login` saved"
            )),
            ("invalid_token", Some(Credential { source: TokenSource::Saved(_), .. })) => {
                Some(format!("the saved token was refused; run `seqshield login --server {server}`"))
            }
            ("invalid_token", None) => {
                Some(format!("this needs a token: run `seqshield login --server {server}` or set ${ENV_TOKEN}"))
            }
            ("insufficient_scope", _) => Some(
                "the token lacks the scope or clearance this needs; log in with that scope (`seqshield login --scope …`) or ask the gateway's administrator"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// A transport failure (no usable answer) as an [`exit::Remote`] error:
/// `tls` when the TLS handshake failed (the certificate is not the one
/// trusted, or the gateway's TLS policy was not met), `timeout`, `connect`,
/// or `transport`. Use it for errors of a hand-sent request or of reading
/// a streamed body.
pub fn transport_error(e: reqwest::Error) -> anyhow::Error {
    let place = e.url().map(display_url).unwrap_or_else(|| "the gateway".into());
    let tls = find_tls_error(&e);
    let (code, what) = if let Some(t) = &tls {
        ("tls", format!("the TLS handshake with {place} failed ({t}); is --ca-cert / ${ENV_CA_CERT} the gateway's certificate or its CA's?"))
    } else if e.is_timeout() {
        ("timeout", format!("{place} did not answer in time"))
    } else if e.is_connect() {
        ("connect", format!("cannot connect to {place}"))
    } else {
        ("transport", format!("the exchange with {place} failed"))
    };
    anyhow::Error::new(Remote { code: code.into(), status: None, message: what, source: Some(Box::new(e)) })
}

/// The rustls error somewhere in `e`'s source chain. rustls reports
/// through a `std::io::Error`, possibly wrapped in another one, whose
/// `source()` skips the wrapped error itself, so those are opened with
/// `get_ref()`.
fn find_tls_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t.to_string());
    }
    if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        return find_tls_error(inner);
    }
    e.source().and_then(find_tls_error)
}

/// `scheme://host:port/path` of `u`: no query, which may carry names.
fn display_url(u: &Url) -> String {
    format!("{}{}", origin(u), u.path())
}

/// Reads at most `max` bytes of a body; more is an error.
async fn read_limited(mut resp: Response, max: usize) -> Result<Vec<u8>> {
    let url = display_url(resp.url());
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if out.len() + chunk.len() > max {
            bail!("the answer from {url} is larger than {max} bytes");
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn read_json<T: DeserializeOwned>(resp: Response, url: &Url) -> Result<T> {
    let body = read_limited(resp, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&body)
        .with_context(|| format!("{} answered something that is not the JSON expected", display_url(url)))
}

/// An OAuth error code: what the gateway sends, and what is safe to echo.
fn valid_code(c: &str) -> bool {
    !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Server text made safe for a terminal: control characters dropped,
/// at most [`MAX_SERVER_TEXT`] characters.
fn sanitize(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(MAX_SERVER_TEXT).collect();
    if s.chars().filter(|c| !c.is_control()).count() > MAX_SERVER_TEXT {
        out.push('…');
    }
    out
}

/// `error` and `error_description` of an RFC 6749 §5.2 JSON body.
fn oauth_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Body {
        error: Option<String>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => (b.error, b.error_description.map(|d| sanitize(&d)).filter(|d| !d.is_empty())),
        Err(_) => (None, None),
    }
}

/// The `error="…"` of a `Bearer` challenge (RFC 6750 §3).
fn bearer_challenge_error(h: &str) -> Option<String> {
    let rest = h.trim().strip_prefix("Bearer").or_else(|| h.trim().strip_prefix("bearer"))?;
    let i = rest.find("error=\"")?;
    let v = &rest[i + 7..];
    Some(v[..v.find('"')?].to_owned())
}

// ---------------------------------------------------------------------------
// Discovery and the token endpoint

/// What the gateway's OIDC discovery document
/// (`/.well-known/openid-configuration`) says that the client needs.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// The issuer (RFC 9207: an authorization response's `iss` must equal it).
    pub issuer: String,
    /// Where the browser signs in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: Url,
    /// RFC 7009 revocation, if offered.
    pub revocation_endpoint: Option<Url>,
}

/// The discovery document as sent.
#[derive(Deserialize)]
struct RawDiscovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// An endpoint of the discovery document: an absolute `https` URL.
fn endpoint(name: &str, s: &str) -> Result<Url> {
    match Url::parse(s) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(u),
        _ => bail!("the gateway's discovery document gives {name} {:?}, not an https URL", sanitize(s)),
    }
}

impl Client {
    /// Fetches and checks the discovery document: every endpoint an
    /// `https` URL, and `S256` PKCE if methods are listed.
    pub async fn discover(&self) -> Result<Discovery> {
        let d: RawDiscovery = self
            .get_json("/.well-known/openid-configuration")
            .await
            .context("cannot read the gateway's OpenID Connect discovery document")?;
        if d.code_challenge_methods_supported.as_ref().is_some_and(|m| !m.iter().any(|m| m == "S256")) {
            bail!("the gateway does not offer S256 PKCE (RFC 7636), which login needs");
        }
        Ok(Discovery {
            authorization_endpoint: endpoint("authorization_endpoint", &d.authorization_endpoint)?,
            token_endpoint: endpoint("token_endpoint", &d.token_endpoint)?,
            revocation_endpoint: d.revocation_endpoint.map(|r| endpoint("revocation_endpoint", &r)).transpose()?,
            issuer: d.issuer,
        })
    }

    /// POSTs a form to the token endpoint (no bearer token) and parses a
    /// successful answer; an error answer is mapped by [`Client::check`].
    pub async fn token_request(&self, d: &Discovery, form: &[(&str, &str)]) -> Result<TokenResponse> {
        let rb = self
            .http
            .post(d.token_endpoint.clone())
            .header(ACCEPT, "application/json")
            .form(form)
            .timeout(JSON_TIMEOUT);
        let resp = rb.send().await.map_err(transport_error)?;
        let resp = self.check(resp).await?;
        let body = Zeroizing::new(read_limited(resp, MAX_ERROR_BYTES).await?);
        let t: TokenResponse = serde_json::from_slice(&body).context("the token endpoint answered malformed JSON")?;
        if !t.token_type.eq_ignore_ascii_case("bearer") {
            bail!("the token endpoint issued a {:?} token; only Bearer tokens are supported", sanitize(&t.token_type));
        }
        if t.access_token.is_empty() {
            bail!("the token endpoint answered without an access token");
        }
        Ok(t)
    }

    /// RFC 7009: asks the gateway to revoke `token` (as public client
    /// `client_id`). The gateway answers 200 even for unknown tokens.
    pub async fn revoke(&self, d: &Discovery, client_id: &str, token: &str, hint: &str) -> Result<()> {
        let endpoint = d.revocation_endpoint.clone().context("the gateway offers no revocation endpoint")?;
        let form = [("token", token), ("token_type_hint", hint), ("client_id", client_id)];
        let rb = self.http.post(endpoint).form(&form).timeout(JSON_TIMEOUT);
        let resp = rb.send().await.map_err(transport_error)?;
        self.check(resp).await.map(drop)
    }
}

/// A successful token-endpoint answer (RFC 6749 §5.1). `Debug` redacts
/// the tokens.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// A refresh token, when issued.
    #[serde(default)]
    pub refresh_token: Option<Zeroizing<String>>,
    /// The granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("scope", &self.scope)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// The saved token

/// What `seqshield login` saves for one gateway: the token file's JSON.
/// `Debug` redacts both tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct SavedToken {
    /// Format version (1).
    pub version: u32,
    /// The gateway's origin, `https://host:port`: the key.
    pub server: String,
    /// The public client that logged in (for refresh and revocation).
    pub client_id: String,
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// When the access token expires (Unix seconds).
    pub expires_at: u64,
    /// The refresh token, if the gateway issued one.
    #[serde(default)]
    pub refresh_token: Option<Zeroizing<String>>,
    /// The granted scopes (space-separated).
    #[serde(default)]
    pub scope: String,
    /// When this was written (Unix seconds).
    pub saved_at: u64,
}

impl fmt::Debug for SavedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedToken")
            .field("server", &self.server)
            .field("client_id", &self.client_id)
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("scope", &self.scope)
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

impl SavedToken {
    /// What to save from a token-endpoint answer.
    pub fn from_response(server: &Url, client_id: &str, t: TokenResponse, now: u64) -> Self {
        Self {
            version: TOKEN_FILE_VERSION,
            server: origin(server),
            client_id: client_id.to_owned(),
            access_token: t.access_token,
            expires_at: now.saturating_add(t.expires_in),
            refresh_token: t.refresh_token,
            scope: t.scope.unwrap_or_default(),
            saved_at: now,
        }
    }

    /// Whether the access token is still good `margin` seconds from `now`.
    pub fn fresh(&self, now: u64, margin: u64) -> bool {
        self.expires_at > now.saturating_add(margin)
    }
}

/// The token file for one gateway:
/// `$XDG_CONFIG_HOME/seqshield/tokens/HOST_PORT.json` (else
/// `$HOME/.config/…`), the directories mode 0700 and the file 0600, written
/// atomically (temporary file, fsync, rename, fsync of the directory).
/// Changes happen under an exclusive `flock` of the `tokens` directory.
#[derive(Clone, Debug)]
pub struct TokenFile {
    dir: PathBuf,
    path: PathBuf,
    origin: String,
}

/// Holds the token directory's exclusive lock until dropped.
#[derive(Debug)]
pub struct TokenLock(#[allow(dead_code)] File);

/// `$XDG_CONFIG_HOME/seqshield` (an absolute `XDG_CONFIG_HOME` only, per the
/// XDG base-directory spec), else `$HOME/.config/seqshield`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(x.join("seqshield"));
    }
    match std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(h) => Ok(h.join(".config").join("seqshield")),
        None => bail!("neither XDG_CONFIG_HOME nor HOME is set to an absolute path: nowhere to keep the login token"),
    }
}

/// The file name for `server`'s token: `HOST_PORT.json`, any character of
/// the host other than `A-Z a-z 0-9 . -` written as `_`.
fn token_file_name(server: &Url) -> String {
    let host: String = server
        .host_str()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    format!("{host}_{}.json", server.port_or_known_default().unwrap_or(443))
}

impl TokenFile {
    /// The token file of `server` (nothing is created yet).
    pub fn for_server(server: &Url) -> Result<Self> {
        Ok(Self::under(&config_dir()?, server))
    }

    /// The token file of `server` under another client's configuration
    /// directory (what [`config_dir`] returns in its environment).
    pub fn under(config_dir: &Path, server: &Url) -> Self {
        let dir = config_dir.join("tokens");
        let path = dir.join(token_file_name(server));
        Self { dir, path, origin: origin(server) }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directories (0700; an existing one is tightened to 0700,
    /// a symbolic link is refused) and takes the exclusive lock, waiting
    /// for another seqshield process that holds it.
    pub async fn lock(&self) -> Result<TokenLock> {
        private_dir(self.dir.parent().unwrap_or(&self.dir))?;
        private_dir(&self.dir)?;
        let f = File::open(&self.dir).with_context(|| format!("cannot open {}", self.dir.display()))?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
                .map_err(std::io::Error::from)
                .with_context(|| format!("cannot lock {}", dir.display()))?;
            Ok(TokenLock(f))
        })
        .await
        .context("the lock task failed")?
    }

    /// The saved token, or `None` when there is no file. Refuses a file
    /// that others can read or write, one for another server, or a format
    /// it does not know.
    pub fn load(&self, _lock: &TokenLock) -> Result<Option<SavedToken>> {
        let meta = match fs::symlink_metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        };
        if !meta.is_file() {
            bail!("{} is not a regular file", self.path.display());
        }
        if meta.mode() & 0o077 != 0 {
            bail!(
                "{} has mode {:04o}: others may have read the token in it; delete it and run `seqshield login` again",
                self.path.display(),
                meta.mode() & 0o7777
            );
        }
        let bytes =
            Zeroizing::new(fs::read(&self.path).with_context(|| format!("cannot read {}", self.path.display()))?);
        let t: SavedToken = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("line {} column {}", e.line(), e.column()))
            .with_context(|| format!("{} is not a seqshield token file", self.path.display()))?;
        if t.version != TOKEN_FILE_VERSION {
            bail!(
                "{} has token file version {}, this seqshield reads {TOKEN_FILE_VERSION}",
                self.path.display(),
                t.version
            );
        }
        if t.server != self.origin {
            bail!("{} holds a token for {}, not {}", self.path.display(), sanitize(&t.server), self.origin);
        }
        Ok(Some(t))
    }

    /// Writes `t` atomically, mode 0600.
    pub fn save(&self, _lock: &TokenLock, t: &SavedToken) -> Result<()> {
        let bytes = Zeroizing::new(serde_json::to_vec_pretty(t).context("cannot encode the token file")?);
        let mut tmp = tempfile::Builder::new()
            .prefix(".token-")
            .suffix(".partial")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .with_context(|| format!("cannot create a temporary file in {}", self.dir.display()))?;
        let write = |f: &mut File| -> std::io::Result<()> {
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.sync_all()
        };
        write(tmp.as_file_mut()).with_context(|| format!("cannot write the token to {}", self.dir.display()))?;
        tmp.persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        sync_dir(&self.dir)
    }

    /// Deletes the file; `false` when there was none.
    pub fn remove(&self, _lock: &TokenLock) -> Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", self.path.display())),
        }
    }
}

/// Creates `dir` (mode 0700) if missing; tightens an existing one to 0700;
/// refuses a symbolic link or a non-directory.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let meta = fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (mode 0700)", dir.display()))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
}

/// The saved token for `c`'s server, refreshed when within
/// [`REFRESH_MARGIN_SECS`] of expiry, all under the token lock.
async fn fresh_saved_token(c: &Client, file: &TokenFile) -> Result<SavedToken> {
    let server = origin(&c.base);
    let not_logged_in = || {
        exit::remote(
            "not_logged_in",
            format!("not logged in to {server}: run `seqshield login --server {server}`, or set ${ENV_TOKEN}"),
        )
    };
    // Without a file there is nothing to lock (or directories to create).
    if fs::symlink_metadata(file.path()).is_err() {
        return Err(not_logged_in());
    }
    let lock = file.lock().await?;
    let Some(saved) = file.load(&lock)? else { return Err(not_logged_in()) };
    let now = now();
    if saved.fresh(now, REFRESH_MARGIN_SECS) {
        return Ok(saved);
    }
    let expired = |why: String| {
        exit::remote(
            "token_expired",
            format!(
                "the saved token for {server} expired at {}{why}; run `seqshield login --server {server}`",
                rfc3339(saved.expires_at)
            ),
        )
    };
    let Some(refresh) = saved.refresh_token.clone() else {
        if saved.fresh(now, 0) {
            return Ok(saved);
        }
        return Err(expired(String::new()));
    };
    let refreshed = async {
        let d = c.discover().await?;
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", &saved.client_id)];
        c.token_request(&d, &form).await
    }
    .await;
    match refreshed {
        Ok(t) => {
            let mut new = SavedToken::from_response(&c.base, &saved.client_id, t, now);
            if new.refresh_token.is_none() {
                new.refresh_token = saved.refresh_token.clone();
            }
            file.save(&lock, &new)?;
            Ok(new)
        }
        // Still valid for a little while: use it rather than fail.
        Err(_) if saved.fresh(now, 0) => Ok(saved),
        // The gateway refused the refresh token (expired, revoked, reused)
        // or the client: only a new login helps.
        Err(e) => match e.downcast_ref::<Remote>() {
            Some(r) if matches!(r.code.as_str(), "invalid_grant" | "invalid_client" | "unauthorized_client") => {
                Err(expired(format!(" and could not be refreshed ({})", r.message)))
            }
            _ => Err(e.context(format!("the saved token for {server} expired and could not be refreshed"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        assert_eq!(parse_server("https://gw.example.org:8443").unwrap().as_str(), "https://gw.example.org:8443/");
        assert_eq!(parse_server("https://gw.example.org/base").unwrap().as_str(), "https://gw.example.org/base/");
        for bad in [
            "http://gw.example.org",
            "gw.example.org",
            "https://user:pw@gw.example.org",
            "https://gw.example.org/?x=1",
            "https://gw.example.org/#f",
            "file:///etc/passwd",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
        assert_eq!(origin(&parse_server("https://gw.example.org").unwrap()), "https://gw.example.org:443");
        assert_eq!(origin(&parse_server("https://[::1]:9/x").unwrap()), "https://[::1]:9");
    }

    #[test]
    fn token_file_names_are_safe() {
        assert_eq!(token_file_name(&parse_server("https://127.0.0.1:8443").unwrap()), "127.0.0.1_8443.json");
        assert_eq!(token_file_name(&parse_server("https://[::1]:8443").unwrap()), "___1__8443.json");
        assert_eq!(token_file_name(&parse_server("https://GW.Example.org").unwrap()), "gw.example.org_443.json");
    }

    fn client(base: &str, token: Option<TokenSource>) -> Client {
        let dir = tempfile::tempdir().unwrap();
        let (pem, _) = seqshield_server::cert::generate_self_signed(&["127.0.0.1".into()], now()).unwrap();
        let cert = dir.path().join("cert.pem");
        fs::write(&cert, pem).unwrap();
        let http = http_builder(&cert).unwrap().build().unwrap();
        let token = token.map(|s| Credential::new("header.payload.signature", s).unwrap());
        Client { base: parse_server(base).unwrap(), http, token }
    }

    #[test]
    fn token_files_are_private_atomic_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let server = parse_server("https://127.0.0.1:8443").unwrap();
        let tokens = dir.path().join("seqshield").join("tokens");
        let file =
            TokenFile { path: tokens.join(token_file_name(&server)), dir: tokens.clone(), origin: origin(&server) };
        let lock = block_on(async { file.lock().await }).unwrap();
        assert_eq!(fs::metadata(&tokens).unwrap().mode() & 0o777, 0o700);
        assert!(file.load(&lock).unwrap().is_none());
        let t = SavedToken {
            version: 1,
            server: origin(&server),
            client_id: "seqshield-cli".into(),
            access_token: Zeroizing::new("AT".into()),
            expires_at: 10,
            refresh_token: None,
            scope: "openid".into(),
            saved_at: 1,
        };
        file.save(&lock, &t).unwrap();
        assert_eq!(fs::metadata(file.path()).unwrap().mode() & 0o777, 0o600);
        assert_eq!(file.load(&lock).unwrap().unwrap().access_token.as_str(), "AT");
        // Only the token file is left: no temporary file.
        assert_eq!(fs::read_dir(&tokens).unwrap().count(), 1);
        // Readable by others: refused.
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(format!("{:#}", file.load(&lock).unwrap_err()).contains("mode 0644"));
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o600)).unwrap();
        // For another server: refused.
        let other = TokenFile { origin: "https://127.0.0.1:9".into(), ..file.clone() };
        assert!(format!("{:#}", other.load(&lock).unwrap_err()).contains("not https://127.0.0.1:9"));
        assert!(file.remove(&lock).unwrap());
        assert!(!file.remove(&lock).unwrap());
        assert!(file.load(&lock).unwrap().is_none());
    }

    #[test]
    fn paths_stay_on_the_gateway() {
        let c = client("https://gw.example.org:8443/base", None);
        assert_eq!(c.url("/api/v1/whoami").unwrap().as_str(), "https://gw.example.org:8443/base/api/v1/whoami");
        assert_eq!(c.url("x?y=1").unwrap().as_str(), "https://gw.example.org:8443/base/x?y=1");
        assert!(c.url("https://evil.example/x").is_err());
        assert!(c.url("//evil.example/x").unwrap().as_str().starts_with("https://gw.example.org:8443/base/"));
    }

    #[test]
    fn debug_never_shows_tokens() {
        let c = client("https://gw.example.org", Some(TokenSource::Env));
        let d = format!("{c:?}");
        assert!(!d.contains("header.payload.signature") && d.contains("redacted"), "{d}");
        assert!(c.bearer().unwrap().is_sensitive());
        let t = SavedToken {
            version: 1,
            server: "https://gw.example.org:443".into(),
            client_id: "seqshield-cli".into(),
            access_token: Zeroizing::new("AT-secret".into()),
            expires_at: 10,
            refresh_token: Some(Zeroizing::new("RT-secret".into())),
            scope: "openid".into(),
            saved_at: 1,
        };
        let d = format!("{t:?}");
        assert!(!d.contains("AT-secret") && !d.contains("RT-secret"), "{d}");
        let r: TokenResponse = serde_json::from_str(
            r#"{"access_token":"AT-x","token_type":"Bearer","expires_in":5,"refresh_token":"RT-x"}"#,
        )
        .unwrap();
        let d = format!("{r:?}");
        assert!(!d.contains("AT-x") && !d.contains("RT-x"), "{d}");
    }

    #[test]
    fn bad_tokens_are_refused_without_echo() {
        for bad in ["secret token", "s3cret\n", "sécret", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            let e = Credential::new(bad, TokenSource::Env).err().unwrap();
            let (code, v) = exit::classify(&e);
            assert_eq!(code, exit::Exit::Auth);
            assert_eq!(v["error"]["code"], "invalid_token");
            assert!(!v.to_string().contains(bad.trim()), "{v}");
        }
    }

    #[test]
    fn error_bodies_and_challenges_are_read_and_sanitised() {
        let (c, d) =
            oauth_error_body(br#"{"error":"invalid_token","error_description":"the access token has expired"}"#);
        assert_eq!(c.as_deref(), Some("invalid_token"));
        assert_eq!(d.as_deref(), Some("the access token has expired"));
        let (_, d) = oauth_error_body(br#"{"error":"x","error_description":"a\u001b[31mb"}"#);
        assert_eq!(d.as_deref(), Some("a[31mb"));
        assert_eq!(oauth_error_body(b"<html>"), (None, None));
        assert_eq!(
            bearer_challenge_error(r#"Bearer error="insufficient_scope", error_description="x""#).as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(bearer_challenge_error("Basic realm=\"x\""), None);
        assert!(valid_code("invalid_token") && !valid_code("Bad Code") && !valid_code(""));
        assert!(sanitize(&"y".repeat(1000)).chars().count() == MAX_SERVER_TEXT + 1);
    }

    #[test]
    fn tls_errors_are_found_inside_nested_io_errors() {
        use std::io::{Error, ErrorKind};
        let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let nested = Error::other(Error::new(ErrorKind::InvalidData, rustls_err));
        assert_eq!(find_tls_error(&nested).as_deref(), Some("invalid peer certificate: BadSignature"));
        assert_eq!(find_tls_error(&Error::other("plain")), None);
    }

    #[test]
    fn remote_errors_classify_by_code() {
        let (e, v) = exit::classify(&exit::remote("insufficient_scope", "no"));
        assert_eq!((e, v["error"]["code"].as_str()), (exit::Exit::Auth, Some("insufficient_scope")));
        let (e, v) = exit::classify(&exit::remote("tls", "bad cert").context("outer"));
        assert_eq!((e, v["error"]["code"].as_str()), (exit::Exit::Failure, Some("tls")));
        let r = Remote { code: "http_404".into(), status: Some(404), message: "m".into(), source: None };
        let (e, v) = exit::classify(&anyhow::Error::new(r));
        assert_eq!((e, v["error"]["http_status"].as_u64()), (exit::Exit::Failure, Some(404)));
    }

    #[test]
    fn freshness_uses_the_margin() {
        let mut t = SavedToken {
            version: 1,
            server: String::new(),
            client_id: String::new(),
            access_token: Zeroizing::new(String::new()),
            expires_at: 1000,
            refresh_token: None,
            scope: String::new(),
            saved_at: 0,
        };
        assert!(t.fresh(900, 60));
        assert!(!t.fresh(940, 60));
        assert!(t.fresh(999, 0) && !t.fresh(1000, 0));
        t.expires_at = 0;
        assert!(!t.fresh(0, 0));
    }

    #[test]
    fn certificate_files_must_hold_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, _) = seqshield_server::cert::generate_self_signed(&["127.0.0.1".into()], now()).unwrap();
        let one = dir.path().join("one.pem");
        fs::write(&one, &pem).unwrap();
        assert!(load_cert(&one).is_ok());
        let two = dir.path().join("two.pem");
        fs::write(&two, format!("{pem}{pem}")).unwrap();
        assert!(format!("{:#}", load_cert(&two).unwrap_err()).contains("2 certificates"));
        let none = dir.path().join("none.pem");
        fs::write(&none, "hello\n").unwrap();
        assert!(format!("{:#}", load_cert(&none).unwrap_err()).contains("no PEM CERTIFICATE"));
    }
}
