//! A gateway with users and the CLI's public client, and a browser that
//! signs in on its pages: what the client-command tests share (login,
//! store). The login pages are driven over HTTPS the way a browser does,
//! the forms read from the HTML the gateway returns.

#![allow(dead_code)]

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

pub const PASS: &str = "login test passphrase";
pub const USER_PASSWORD: &str = "a long enough password, really";
pub const CLIENT: &str = "seqshield-cli";
pub const SCOPES: &str = "openid,data:read,data:write,jobs:submit,jobs:read,data:admin";

/// A gateway with users, and the public client `seqshield login` uses.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub gw: super::Gateway,
}

/// Provisions `users` and the CLI's client in a fresh data directory
/// (with `config` as `seqshield.toml` when given), then starts the
/// gateway. Returns each user's TOTP secret.
pub fn site(users: &[&str], config: Option<&str>) -> (Site, Vec<TotpSecret>) {
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
    let gw = super::serve(&data, PASS);
    (Site { dir, gw }, secrets)
}

pub fn uri_secret(uri: &str) -> TotpSecret {
    let query = uri.split_once('?').unwrap().1;
    let b32 = query.split('&').find_map(|kv| kv.strip_prefix("secret=")).unwrap();
    TotpSecret::from_base32(b32).unwrap()
}

pub fn admin() -> StdCommand {
    let mut c = StdCommand::cargo_bin("seqshield").unwrap();
    c.env("SEQSHIELD_PASSPHRASE", PASS);
    c
}

pub fn run_ok(cmd: &mut StdCommand) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `seqshield` as a user runs it: its own config home, and none of the
/// convention's variables unless a test sets them.
pub fn sq(home: &Path) -> StdCommand {
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
pub fn client_cmd(home: &Path, gw: &super::Gateway, cmd: &str, cert: &Path) -> StdCommand {
    let mut c = sq(home);
    c.args(["--json", cmd, "--server", &gw.url, "--ca-cert"]).arg(cert);
    c
}

pub fn whoami(home: &Path, gw: &super::Gateway, token: Option<&str>) -> Output {
    let mut c = client_cmd(home, gw, "whoami", &gw.cert);
    if let Some(t) = token {
        c.env("SEQSHIELD_TOKEN", t);
    }
    c.output().unwrap()
}

/// The JSON object on stdout.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

/// Asserts a failure with exit code `exit` and JSON error code `code`;
/// returns the error message.
pub fn failed(out: &Output, exit: i32, code: &str) -> String {
    assert_eq!(out.status.code(), Some(exit), "{}", show(out));
    let v = json(out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert_eq!(v["error"]["exit_code"], exit, "{v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Kills the child however the test ends.
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `seqshield login` in progress.
pub struct Login {
    pub child: Reap,
    pub stdout: ChildStdout,
    pub stderr: Arc<Mutex<String>>,
    /// The authorization URL it printed.
    pub url: Url,
}

impl Login {
    /// Starts `seqshield --json login --no-browser …` and waits for the
    /// authorization URL on its stderr.
    pub fn start(home: &Path, gw: &super::Gateway, extra: &[&str]) -> Self {
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

    pub fn param(&self, name: &str) -> String {
        self.url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap()
    }

    pub fn running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }

    /// Waits for the CLI to exit: its status, stdout and stderr.
    pub fn wait(mut self) -> Output {
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
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

pub fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let v = &tag[i..i + tag[i..].find('"')?];
    Some(
        v.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"),
    )
}

impl Form {
    /// The first form of a page, as a browser would see it.
    pub fn parse(html: &str) -> Self {
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

    pub fn set(&mut self, name: &str, value: &str) {
        let f = self.fields.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}"));
        f.1 = value.to_owned();
    }
}

/// A browser's HTTPS client: trusts the gateway's certificate only, follows
/// no redirects (the test follows the last one itself).
pub fn browser(gw: &super::Gateway) -> reqwest::Client {
    let pem = std::fs::read(&gw.cert).unwrap();
    let cert = CertificateDer::from_pem_slice(&pem).unwrap();
    let tls = seqshield_server::tls::client_config(&cert).unwrap();
    reqwest::Client::builder().use_preconfigured_tls(tls).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in on the gateway's pages as `user` (password, then TOTP) and
/// returns where the gateway redirects the browser: the CLI's callback.
pub fn sign_in(gw: &super::Gateway, authorize: &Url, user: &str, secret: &TotpSecret) -> Url {
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
pub fn loopback_get(url: &Url) -> (u16, String) {
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
pub fn callback(login: &Login, path_and_query: &str) -> Url {
    let redirect = Url::parse(&login.param("redirect_uri")).unwrap();
    redirect.join(path_and_query).unwrap()
}

/// Logs `user` in with `home` as config home; returns the CLI's output.
pub fn login(home: &Path, gw: &super::Gateway, user: &str, secret: &TotpSecret) -> Output {
    login_with(home, gw, user, secret, &[])
}

/// [`login`] with extra `seqshield login` arguments (e.g. `--scope`).
pub fn login_with(home: &Path, gw: &super::Gateway, user: &str, secret: &TotpSecret, extra: &[&str]) -> Output {
    let l = Login::start(home, gw, extra);
    let back = sign_in(gw, &l.url, user, secret);
    let (status, page) = loopback_get(&back);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Login complete"), "{page}");
    let out = l.wait();
    assert!(out.status.success(), "{}", show(&out));
    out
}

pub fn token_file(home: &Path, gw: &super::Gateway) -> PathBuf {
    let port = Url::parse(&gw.url).unwrap().port().unwrap();
    home.join("seqshield").join("tokens").join(format!("127.0.0.1_{port}.json"))
}

pub fn saved(home: &Path, gw: &super::Gateway) -> Value {
    serde_json::from_slice(&std::fs::read(token_file(home, gw)).unwrap()).unwrap()
}

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A certificate file the gateway does not use: valid, self-signed, for
/// the same address.
pub fn other_cert(dir: &Path) -> PathBuf {
    let (pem, _key) = seqshield_server::cert::generate_self_signed(&["127.0.0.1".into()], now()).unwrap();
    let p = dir.join("other.pem");
    std::fs::write(&p, pem).unwrap();
    p
}
