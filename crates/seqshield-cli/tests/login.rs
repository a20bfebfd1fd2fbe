//! `seqshield login`, `logout` and `whoami` end to end, and through them
//! the client convention (`--server`, `--ca-cert`, `SEQSHIELD_TOKEN`, the
//! saved token): a real `seqshield serve`, real users with password and
//! TOTP, and the login pages driven over HTTPS the way a browser does —
//! the forms read from the HTML the gateway returns, the cookie kept, the
//! redirect followed to the CLI's own loopback listener.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command as StdCommand, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use assert_cmd::cargo::CommandCargoExt;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use seqshield_auth::totp::{self, TotpSecret};
use serde_json::Value;

const PASS: &str = "login test passphrase";
const USER_PASSWORD: &str = "a long enough password, really";
const CLIENT: &str = "seqshield-cli";
const SCOPES: &str = "openid,data:read,data:write,jobs:submit";

/// A gateway with users, and the public client `seqshield login` uses.
struct Site {
    _dir: tempfile::TempDir,
    gw: common::Gateway,
}

/// Provisions `users` and the CLI's client in a fresh data directory
/// (with `config` as `seqshield.toml` when given), then starts the
/// gateway. Returns each user's TOTP secret.
fn site(users: &[&str], config: Option<&str>) -> (Site, Vec<TotpSecret>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if let Some(cfg) = config {
        std::fs::write(data.join("seqshield.toml"), cfg).unwrap();
    }
    let pw = dir.path().join("pw");
    std::fs::write(&pw, USER_PASSWORD).unwrap();
    let mut secrets = Vec::new();
    for u in users {
        let out = run_ok(
            admin()
                .args(["--json", "user", "add", "--data-dir"])
                .arg(&data)
                .arg(u)
                .arg("--password-file")
                .arg(&pw)
                .args(["--scopes", SCOPES, "--clearance", "restricted"]),
        );
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        secrets.push(uri_secret(v["otpauth_uri"].as_str().unwrap()));
    }
    run_ok(admin().args(["client", "add", "--data-dir"]).arg(&data).args([
        CLIENT,
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--scopes",
        SCOPES,
    ]));
    let gw = common::serve(&data, PASS);
    (Site { _dir: dir, gw }, secrets)
}

fn uri_secret(uri: &str) -> TotpSecret {
    let query = uri.split_once('?').unwrap().1;
    let b32 = query.split('&').find_map(|kv| kv.strip_prefix("secret=")).unwrap();
    TotpSecret::from_base32(b32).unwrap()
}

fn admin() -> StdCommand {
    let mut c = StdCommand::cargo_bin("seqshield").unwrap();
    c.env("SEQSHIELD_PASSPHRASE", PASS);
    c
}

fn run_ok(cmd: &mut StdCommand) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `seqshield` as a user runs it: its own config home, and none of the
/// convention's variables unless a test sets them.
fn sq(home: &Path) -> StdCommand {
    let mut c = StdCommand::cargo_bin("seqshield").unwrap();
    c.env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env_remove("SEQSHIELD_TOKEN")
        .env_remove("SEQSHIELD_SERVER")
        .env_remove("SEQSHIELD_CA_CERT")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null());
    c
}

/// `seqshield --json CMD --server URL --ca-cert CERT` for `site`.
fn client_cmd(home: &Path, gw: &common::Gateway, cmd: &str, cert: &Path) -> StdCommand {
    let mut c = sq(home);
    c.args(["--json", cmd, "--server", &gw.url, "--ca-cert"]).arg(cert);
    c
}

fn whoami(home: &Path, gw: &common::Gateway, token: Option<&str>) -> Output {
    let mut c = client_cmd(home, gw, "whoami", &gw.cert);
    if let Some(t) = token {
        c.env("SEQSHIELD_TOKEN", t);
    }
    c.output().unwrap()
}

/// The JSON object on stdout.
fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

/// Asserts a failure with exit code `exit` and JSON error code `code`;
/// returns the error message.
fn failed(out: &Output, exit: i32, code: &str) -> String {
    assert_eq!(out.status.code(), Some(exit), "{}", show(out));
    let v = json(out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert_eq!(v["error"]["exit_code"], exit, "{v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Kills the child however the test ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `seqshield login` in progress.
struct Login {
    child: Reap,
    stdout: ChildStdout,
    stderr: Arc<Mutex<String>>,
    /// The authorization URL it printed.
    url: Url,
}

impl Login {
    /// Starts `seqshield --json login --no-browser …` and waits for the
    /// authorization URL on its stderr.
    fn start(home: &Path, gw: &common::Gateway, extra: &[&str]) -> Self {
        let mut child = Reap(
            client_cmd(home, gw, "login", &gw.cert)
                .arg("--no-browser")
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let stderr = child.0.stderr.take().unwrap();
        let all = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&all);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
                let t = line.trim();
                if t.starts_with("https://") && t.contains("/authorize?") {
                    let _ = tx.send(t.to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => Url::parse(&u).unwrap(),
            Err(_) => panic!("login printed no authorization URL; stderr: {}", all.lock().unwrap()),
        };
        Self { child, stdout, stderr: all, url }
    }

    fn param(&self, name: &str) -> String {
        self.url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap()
    }

    fn running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }

    /// Waits for the CLI to exit: its status, stdout and stderr.
    fn wait(mut self) -> Output {
        let deadline = Instant::now() + Duration::from_secs(90);
        let status: ExitStatus = loop {
            if let Some(s) = self.child.0.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "login did not exit; stderr: {}", self.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stdout = Vec::new();
        self.stdout.read_to_end(&mut stdout).unwrap();
        // Let the reader thread drain what is left.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().unwrap().clone().into_bytes();
        Output { status, stdout, stderr }
    }
}

/// An HTML form: its action and its fields (name, value) in order.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let v = &tag[i..i + tag[i..].find('"')?];
    Some(
        v.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"),
    )
}

impl Form {
    /// The first form of a page, as a browser would see it.
    fn parse(html: &str) -> Self {
        let start = html.find("<form").unwrap_or_else(|| panic!("no form in {html}"));
        let end = start + html[start..].find("</form>").unwrap();
        let form = &html[start..end];
        let action = attr(&form[..form.find('>').unwrap()], "action").unwrap();
        let mut fields = Vec::new();
        let mut rest = form;
        while let Some(i) = rest.find("<input") {
            let tag = &rest[i..i + rest[i..].find('>').unwrap()];
            if let Some(name) = attr(tag, "name") {
                fields.push((name, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[i + tag.len()..];
        }
        Self { action, fields }
    }

    fn set(&mut self, name: &str, value: &str) {
        let f = self.fields.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}"));
        f.1 = value.to_owned();
    }
}

/// A browser's HTTPS client: trusts the gateway's certificate only, follows
/// no redirects (the test follows the last one itself).
fn browser(gw: &common::Gateway) -> reqwest::Client {
    let pem = std::fs::read(&gw.cert).unwrap();
    let cert = CertificateDer::from_pem_slice(&pem).unwrap();
    let tls = seqshield_server::tls::client_config(&cert).unwrap();
    reqwest::Client::builder().use_preconfigured_tls(tls).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in on the gateway's pages as `user` (password, then TOTP) and
/// returns where the gateway redirects the browser: the CLI's callback.
fn sign_in(gw: &common::Gateway, authorize: &Url, user: &str, secret: &TotpSecret) -> Url {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let http = browser(gw);
        let resp = http.get(authorize.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("; ");
        assert!(cookie.contains("seqshield-login="), "{cookie}");
        let mut form = Form::parse(&resp.text().await.unwrap());
        form.set("username", user);
        form.set("password", USER_PASSWORD);
        let base = Url::parse(&gw.url).unwrap();
        let resp = http
            .post(base.join(&form.action).unwrap())
            .header(COOKIE, &cookie)
            .form(&form.fields)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let html = resp.text().await.unwrap();
        assert_eq!(status, 200, "{html}");
        let mut form = Form::parse(&html);
        assert_eq!(form.action, "/authorize/totp", "{html}");
        form.set("code", &totp::code_at(secret, totp::step_at(now())));
        let resp = http
            .post(base.join(&form.action).unwrap())
            .header(COOKIE, &cookie)
            .form(&form.fields)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_redirection(), "{}: {}", resp.status(), resp.text().await.unwrap());
        Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap()
    })
}

/// A plain HTTP GET to the CLI's loopback listener: status and body.
fn loopback_get(url: &Url) -> (u16, String) {
    assert_eq!(url.host_str(), Some("127.0.0.1"), "{url}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", url.port().unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", url.port().unwrap()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

/// The CLI's callback URL with `path_and_query` instead of its own.
fn callback(login: &Login, path_and_query: &str) -> Url {
    let redirect = Url::parse(&login.param("redirect_uri")).unwrap();
    redirect.join(path_and_query).unwrap()
}

/// Logs `user` in with `home` as config home; returns the CLI's output.
fn login(home: &Path, gw: &common::Gateway, user: &str, secret: &TotpSecret) -> Output {
    let l = Login::start(home, gw, &[]);
    let back = sign_in(gw, &l.url, user, secret);
    let (status, page) = loopback_get(&back);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Login complete"), "{page}");
    let out = l.wait();
    assert!(out.status.success(), "{}", show(&out));
    out
}

fn token_file(home: &Path, gw: &common::Gateway) -> PathBuf {
    let port = Url::parse(&gw.url).unwrap().port().unwrap();
    home.join("seqshield").join("tokens").join(format!("127.0.0.1_{port}.json"))
}

fn saved(home: &Path, gw: &common::Gateway) -> Value {
    serde_json::from_slice(&std::fs::read(token_file(home, gw)).unwrap()).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A certificate file the gateway does not use: valid, self-signed, for
/// the same address.
fn other_cert(dir: &Path) -> PathBuf {
    let (pem, _key) = seqshield_server::cert::generate_self_signed(&["127.0.0.1".into()], now()).unwrap();
    let p = dir.join("other.pem");
    std::fs::write(&p, pem).unwrap();
    p
}

#[test]
fn login_saves_a_private_token_that_whoami_uses_and_logout_revokes() {
    let (site, secrets) = site(&["alice", "bob"], None);
    let gw = &site.gw;
    let alice = tempfile::tempdir().unwrap();
    let home = alice.path();

    // Log in: the CLI's listener gets the code, the token lands in a file.
    let l = Login::start(home, gw, &[]);
    assert_eq!(l.param("code_challenge_method"), "S256");
    assert_eq!(l.param("client_id"), CLIENT);
    assert!(l.param("code_challenge").len() >= 43 && l.param("state").len() >= 43);
    assert!(l.param("redirect_uri").starts_with("http://127.0.0.1:"));
    let back = sign_in(gw, &l.url, "alice", &secrets[0]);
    assert_eq!(back.path(), "/callback");
    let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (status, page) = loopback_get(&back);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Login complete") && page.contains("Referrer-Policy: no-referrer"), "{page}");
    let out = l.wait();
    assert!(out.status.success(), "{}", show(&out));
    let v = json(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["subject"], "alice", "{v}");
    assert_eq!(v["refresh_token"], true, "{v}");

    let file = token_file(home, gw);
    assert_eq!(v["token_file"], file.to_str().unwrap(), "{v}");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(mode(&home.join("seqshield")), 0o700);
    let t = saved(home, gw);
    assert_eq!(t["server"], gw.url.as_str(), "{t}");
    assert_eq!(t["client_id"], CLIENT);
    assert!(t["expires_at"].as_u64().unwrap() > now() + 600, "{t}");
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(access.len() > 100 && refresh.len() >= 32);
    for secret in [code.as_str(), &access, &refresh, USER_PASSWORD] {
        assert!(!contains(&out.stdout, secret) && !contains(&out.stderr, secret), "a secret reached the output");
    }

    // whoami uses the saved token; the gateway verifies it.
    let out = whoami(home, gw, None);
    assert!(out.status.success(), "{}", show(&out));
    let v = json(&out);
    assert_eq!(v["claims"]["sub"], "alice", "{v}");
    assert_eq!(v["token_source"], "saved", "{v}");
    assert!(v["claims"]["amr"].as_array().unwrap().iter().any(|m| m == "mfa"), "{v}");
    assert!(!contains(&out.stdout, &access));
    let human = run_ok(sq(home).args(["whoami", "--server", &gw.url, "--ca-cert"]).arg(&gw.cert));
    assert_eq!(human.lines().next(), Some("alice"), "{human}");
    // The flags may come from the environment instead.
    let out = sq(home)
        .args(["--json", "whoami"])
        .env("SEQSHIELD_SERVER", &gw.url)
        .env("SEQSHIELD_CA_CERT", &gw.cert)
        .output()
        .unwrap();
    assert_eq!(json(&out)["claims"]["sub"], "alice", "{}", show(&out));

    // SEQSHIELD_TOKEN overrides the saved token.
    let bob = tempfile::tempdir().unwrap();
    login(bob.path(), gw, "bob", &secrets[1]);
    let bob_token = saved(bob.path(), gw)["access_token"].as_str().unwrap().to_owned();
    let out = whoami(home, gw, Some(&bob_token));
    let v = json(&out);
    assert_eq!((v["claims"]["sub"].as_str(), v["token_source"].as_str()), (Some("bob"), Some("env")), "{v}");

    // A garbage token: a clear refusal, exit 6, the token not echoed.
    let garbage = "eyJnYXJiYWdl.eyJub3RoaW5n.c2lnbmF0dXJl";
    let out = whoami(home, gw, Some(garbage));
    let msg = failed(&out, 6, "invalid_token");
    assert!(msg.contains("401") && msg.contains("SEQSHIELD_TOKEN"), "{msg}");
    assert!(!contains(&out.stdout, garbage) && !contains(&out.stderr, garbage));
    let out = whoami(home, gw, Some("not a token"));
    assert!(failed(&out, 6, "invalid_token").contains("SEQSHIELD_TOKEN"));

    // Another certificate: the TLS handshake fails before any request.
    let other = other_cert(alice.path());
    let out = client_cmd(home, gw, "whoami", &other).output().unwrap();
    let msg = failed(&out, 1, "tls");
    assert!(msg.contains("TLS handshake") && msg.contains("--ca-cert"), "{msg}");
    let out = client_cmd(home, gw, "logout", &other).output().unwrap();
    failed(&out, 1, "tls");
    assert!(file.exists(), "a failed logout keeps the token");
    let scratch = tempfile::tempdir().unwrap();
    let out = client_cmd(scratch.path(), gw, "login", &other).arg("--no-browser").output().unwrap();
    failed(&out, 1, "tls");
    assert!(!contains(&out.stderr, "/authorize?"), "{}", show(&out));
    // Nothing was revoked by the logout that could not connect.
    assert!(whoami(home, gw, None).status.success());
    // Not https, or no certificate: refused on the command line.
    let out = sq(home).args(["whoami", "--server", "http://127.0.0.1:1", "--ca-cert"]).arg(&gw.cert).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = sq(home).args(["whoami", "--server", &gw.url]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // Logout revokes at the gateway and deletes the file.
    let out = client_cmd(home, gw, "logout", &gw.cert).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(json(&out)["revoked"], true);
    assert!(!file.exists());
    let msg = failed(&whoami(home, gw, None), 6, "not_logged_in");
    assert!(msg.contains("seqshield login --server"), "{msg}");
    let msg = failed(&whoami(home, gw, Some(&access)), 6, "invalid_token");
    assert!(msg.contains("revoked"), "{msg}");
    // Bob's session is his own.
    assert!(whoami(bob.path(), gw, None).status.success());
    // A second logout has nothing to do.
    let out = client_cmd(home, gw, "logout", &gw.cert).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(json(&out)["revoked"], false);
}

#[test]
fn forged_callbacks_are_ignored_and_sign_in_errors_reported() {
    let (site, secrets) = site(&["carol"], None);
    let gw = &site.gw;
    let home = tempfile::tempdir().unwrap();

    let mut l = Login::start(home.path(), gw, &[]);
    let state = l.param("state");
    assert_eq!(loopback_get(&callback(&l, "/favicon.ico")).0, 404);
    assert_eq!(loopback_get(&callback(&l, "/callback?code=forged")).0, 400);
    assert_eq!(loopback_get(&callback(&l, "/callback?code=forged&state=forged")).0, 400);
    let back = sign_in(gw, &l.url, "carol", &secrets[0]);
    // The real code with a tampered state: refused, the login goes on.
    let pairs: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { format!("{v}x") } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    let mut tampered = back.clone();
    tampered.query_pairs_mut().clear().extend_pairs(&pairs);
    let (status, page) = loopback_get(&tampered);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("does not belong"), "{page}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(l.running(), "a forged callback ended the login");
    // The real answer completes it (the code was not spent on the forgery).
    let (status, page) = loopback_get(&back);
    assert_eq!(status, 200, "{page}");
    let out = l.wait();
    assert!(out.status.success(), "{}", show(&out));
    assert!(contains(&out.stderr, "ignored a request"), "{}", show(&out));
    assert_eq!(json(&whoami(home.path(), gw, None))["claims"]["sub"], "carol");
    // The listener is gone with the login.
    assert!(std::net::TcpStream::connect(("127.0.0.1", back.port().unwrap())).is_err());

    // The gateway's refusal, with this login's state: a clear error, exit 6.
    let l = Login::start(home.path(), gw, &[]);
    let state2 = l.param("state");
    assert_ne!(state, state2);
    let (status, page) = loopback_get(&callback(
        &l,
        &format!("/callback?error=access_denied&error_description=refused+by+the+access+policy&state={state2}"),
    ));
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Login failed"), "{page}");
    let msg = failed(&l.wait(), 6, "access_denied");
    assert!(msg.contains("refused by the access policy"), "{msg}");

    // An answer naming another issuer (RFC 9207 mix-up defence).
    let l = Login::start(home.path(), gw, &[]);
    let s = l.param("state");
    loopback_get(&callback(&l, &format!("/callback?code=x&state={s}&iss=https%3A%2F%2Fevil.example")));
    let msg = failed(&l.wait(), 1, "issuer_mismatch");
    assert!(msg.contains("evil.example"), "{msg}");

    // Nobody comes back: a timeout.
    let l = Login::start(home.path(), gw, &["--timeout", "1"]);
    let msg = failed(&l.wait(), 1, "login_timeout");
    assert!(msg.contains("within 1 s"), "{msg}");
    // The saved token is still carol's.
    assert_eq!(json(&whoami(home.path(), gw, None))["claims"]["sub"], "carol");
}

#[test]
fn expired_tokens_are_refreshed_until_the_session_ends() {
    // Access tokens live 1 s, the refresh-token family 12 s.
    let (site, secrets) = site(&["dave"], Some("[auth]\naccess_ttl_secs = 1\nrefresh_ttl_secs = 12\n"));
    let gw = &site.gw;
    let home = tempfile::tempdir().unwrap();
    login(home.path(), gw, "dave", &secrets[0]);
    // The code was exchanged, and the family started, before this.
    let logged_in = Instant::now();
    let first = saved(home.path(), gw);
    let old_access = first["access_token"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(2500));

    // Expired: parallel commands each refresh it, one after the other (a
    // refresh token is single-use: a race would revoke the whole family).
    let children: Vec<_> = (0..3)
        .map(|_| {
            client_cmd(home.path(), gw, "whoami", &gw.cert)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        assert_eq!(json(&out)["claims"]["sub"], "dave");
    }
    let second = saved(home.path(), gw);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let file = token_file(home.path(), gw);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1, "no temporary file left");

    // Past the family's expiry: refresh fails, and the error says what to do.
    sleep_until(logged_in + Duration::from_millis(13_500));
    let msg = failed(&whoami(home.path(), gw, None), 6, "token_expired");
    assert!(msg.contains("expired at") && msg.contains("seqshield login --server"), "{msg}");
    assert!(msg.contains("invalid_grant"), "{msg}");

    // An expired token in SEQSHIELD_TOKEN, once past the gateway's 60 s
    // clock-skew leeway: refused, with a clear message.
    sleep_until(logged_in + Duration::from_secs(63));
    let out = whoami(home.path(), gw, Some(&old_access));
    let msg = failed(&out, 6, "invalid_token");
    assert!(msg.contains("expired") && msg.contains("SEQSHIELD_TOKEN"), "{msg}");
    assert!(!contains(&out.stdout, &old_access) && !contains(&out.stderr, &old_access));
}

fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

/// Chromium and chromedriver from Debian, or `None` (skip) outside CI.
fn chromium() -> bool {
    let ok = ["/usr/bin/chromium", "/usr/bin/chromedriver"].iter().all(|p| Path::new(p).exists());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI: chromium/chromium-driver missing; run scripts/setup");
        eprintln!("note: chromium missing; browser test of seqshield login not run");
    }
    ok
}

/// The W3C WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session through chromedriver, which runs in its own
/// process group and is stopped with it however the test ends.
struct Chromium {
    driver: Child,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    base: String,
    sid: String,
    profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver and a headless Chromium that trusts the gateway
    /// by its pinned SPKI hash (not by turning verification off).
    fn start(gw: &common::Gateway) -> Self {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = StdCommand::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut c = Self {
            driver,
            http: browser(gw),
            rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            sid: String::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.call("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", c.profile.path().display()),
                     format!("--ignore-certificate-errors-spki-list={}", gw.spki)]}}}});
        let v = c.call("POST", "/session", Some(caps)).unwrap();
        c.sid = v["sessionId"].as_str().unwrap().to_owned();
        c
    }

    /// One WebDriver command: its `value`, or the error answer.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let rb = match method {
                "GET" => self.http.get(&url),
                "DELETE" => self.http.delete(&url),
                _ => self.http.post(&url).json(&body.unwrap_or_else(|| serde_json::json!({}))),
            };
            let resp = rb.timeout(Duration::from_secs(60)).send().await.map_err(|e| e.to_string())?;
            let ok = resp.status().is_success();
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            if ok {
                Ok(v["value"].clone())
            } else {
                Err(v.to_string())
            }
        })
    }

    fn session(&self, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.call(if body.is_some() { "POST" } else { "GET" }, &format!("/session/{}{path}", self.sid), body)
    }

    /// The element for `css`, waiting for the page that shows it: a click
    /// returns before the navigation it starts has finished.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.session("/element", Some(serde_json::json!({"using": "css selector", "value": css})));
            if let Ok(v) = found {
                return v[ELEMENT].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no {css} in {}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.session(&format!("/element/{e}/value"), Some(serde_json::json!({ "text": text }))).unwrap();
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.session(&format!("/element/{e}/click"), Some(serde_json::json!({}))).unwrap();
    }

    fn source(&self) -> String {
        self.session("/source", None).map(|v| v.as_str().unwrap_or_default().to_owned()).unwrap_or_default()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if !self.sid.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.sid), None);
        }
        // The whole group: chromedriver and any browser it left.
        let _ = StdCommand::new("kill").args(["-TERM", "--", &format!("-{}", self.driver.id())]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.driver.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn headless_chromium_completes_seqshield_login() {
    if !chromium() {
        return;
    }
    let (site, secrets) = site(&["erin"], None);
    let gw = &site.gw;
    let home = tempfile::tempdir().unwrap();
    let browser = Chromium::start(gw);
    let l = Login::start(home.path(), gw, &[]);
    browser.session("/url", Some(serde_json::json!({ "url": l.url.as_str() }))).unwrap();
    browser.type_into("#username", "erin");
    browser.type_into("#password", USER_PASSWORD);
    browser.click("#submit");
    // First login: the enrolment page, then the code.
    browser.find("#otpauth");
    browser.type_into("#code", &totp::code_at(&secrets[0], totp::step_at(now())));
    browser.click("#submit");
    // The browser follows the redirect to the CLI's loopback listener.
    let out = l.wait();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(json(&out)["subject"], "erin");
    browser.find("#message");
    let page = browser.source();
    assert!(page.contains("Login complete"), "{page}");
    let url = browser.session("/url", None).unwrap();
    assert!(url.as_str().unwrap().starts_with("http://127.0.0.1:"), "{url}");
    drop(browser);
    assert_eq!(json(&whoami(home.path(), gw, None))["claims"]["sub"], "erin");
}
