//! `seqshield login`, `logout` and `whoami` end to end, and through them
//! the client convention (`--server`, `--ca-cert`, `SEQSHIELD_TOKEN`, the
//! saved token): a real `seqshield serve`, real users with password and
//! TOTP, and the login pages driven over HTTPS the way a browser does —
//! the forms read from the HTML the gateway returns, the cookie kept, the
//! redirect followed to the CLI's own loopback listener.

mod common;

use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::site::*;
use seqshield_auth::totp;
use serde_json::Value;

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
