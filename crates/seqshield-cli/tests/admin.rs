//! End-to-end tests of `seqshield user …` and `seqshield client …`, run as
//! an administrator would. The flags are a contract checked from outside.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use seqshield_auth::password::verify_password;
use seqshield_auth::store::Store;
use seqshield_auth::totp::{self, TotpSecret};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "0123456789abcdef0123456789abcdef-client";

fn sq() -> Command {
    Command::cargo_bin("seqshield").unwrap()
}

fn run(args: &[&str]) -> Output {
    sq().args(args).output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json(out)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn user_add(&self, name: &str, pw_file: &Path, extra: &[&str]) -> Output {
        let data = self.data();
        let mut args = vec!["--json", "user", "add", "--data-dir", s(&data), name, "--password-file", s(pw_file)];
        args.extend_from_slice(extra);
        run(&args)
    }

    fn client_add(&self, name: &str, extra: &[&str]) -> Output {
        let data = self.data();
        let mut args = vec!["--json", "client", "add", "--data-dir", s(&data), name];
        args.extend_from_slice(extra);
        run(&args)
    }

    fn list(&self, what: &str) -> Value {
        ok(&run(&["--json", what, "list", "--data-dir", s(&self.data())]))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The `secret` parameter of an otpauth URI.
fn uri_secret(uri: &str) -> TotpSecret {
    let query = uri.split_once('?').unwrap().1;
    let b32 = query.split('&').find_map(|kv| kv.strip_prefix("secret=")).unwrap();
    TotpSecret::from_base32(b32).unwrap()
}

/// Asserts a refusal: exit code 2, a JSON `bad_input` error naming `needle`.
fn refused(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let v = json(out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "bad_input");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
}

#[test]
fn user_add_prints_an_enrolment_uri_whose_codes_verify() {
    let env = Env::new();
    let pw = env.file("pw", &format!("{PASSWORD}\n"));
    let v = ok(&env.user_add("alice", &pw, &[]));
    assert_eq!(v["user"], "alice");
    assert_eq!(v["scopes"], "openid", "default scopes");
    assert_eq!(v["clearance"], "internal", "default clearance");
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/seqshield:alice?"), "{uri}");
    for p in ["issuer=seqshield", "algorithm=SHA1", "digits=6", "period=30"] {
        assert!(uri.contains(p), "{uri} lacks {p}");
    }

    // An authenticator app fed this URI produces codes the server accepts.
    let secret = uri_secret(uri);
    let t = now();
    let code = totp::code_at(&secret, totp::step_at(t));
    assert_eq!(totp::verify(&secret, &code, t), Some(totp::step_at(t)));

    // What was stored: argon2id of the password (the newline dropped) and the same secret.
    let store = Store::open_existing(&env.data().join("auth.db")).unwrap();
    let u = store.user("alice").unwrap().unwrap();
    assert!(u.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(verify_password(&u.password_hash, PASSWORD.as_bytes()));
    assert_eq!(u.totp_secret, secret);
    assert!(!u.totp_confirmed);
}

#[test]
fn user_add_with_scopes_and_clearance_then_list_shows_no_secrets() {
    let env = Env::new();
    let pw = env.file("pw", PASSWORD);
    let v =
        ok(&env.user_add("bob.smith@example.org", &pw, &["--scopes", "openid,data:read", "--clearance", "controlled"]));
    assert_eq!(v["scopes"], "data:read openid");
    assert_eq!(v["clearance"], "controlled");
    let secret = uri_secret(v["otpauth_uri"].as_str().unwrap()).expose_base32();
    ok(&env.user_add("carol", &pw, &[]));

    let out = run(&["--json", "user", "list", "--data-dir", s(&env.data())]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains(secret.as_str()) && !text.contains("argon2"), "{text}");
    let users = ok(&out)["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["name"], "bob.smith@example.org");
    assert_eq!(users[0]["clearance"], "controlled");
    assert_eq!(users[0]["scopes"], "data:read openid");
    assert_eq!(users[0]["totp_confirmed"], false);
    assert_eq!(users[1]["name"], "carol");

    let human = run(&["user", "list", "--data-dir", s(&env.data())]);
    assert!(human.status.success());
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("carol") && human.contains("clearance=internal"), "{human}");
}

#[cfg(unix)]
#[test]
fn the_database_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let pw = env.file("pw", PASSWORD);
    ok(&env.user_add("alice", &pw, &[]));
    assert_eq!(std::fs::metadata(env.data()).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(env.data().join("auth.db")).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn human_output_shows_the_uri() {
    let env = Env::new();
    let pw = env.file("pw", PASSWORD);
    let out = run(&["user", "add", "--data-dir", s(&env.data()), "alice", "--password-file", s(&pw)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("added user alice"), "{text}");
    let uri = text.lines().find(|l| l.starts_with("otpauth://totp/")).expect("a URI line");
    let secret = uri_secret(uri);
    let t = now();
    assert!(totp::verify(&secret, &totp::code_at(&secret, totp::step_at(t)), t).is_some());
    // Never the password.
    assert!(!text.contains(PASSWORD) && !String::from_utf8_lossy(&out.stderr).contains(PASSWORD));
}

#[test]
fn bad_user_input_is_refused_and_nothing_is_written() {
    let env = Env::new();
    let pw = env.file("pw", PASSWORD);
    let short = env.file("short", "elevenchars\n");
    let empty = env.file("empty", "");
    refused(&env.user_add("alice", &short, &[]), "shorter than 12");
    refused(&env.user_add("alice", &empty, &[]), "empty");
    refused(&env.user_add("al ice", &pw, &[]), "user name");
    refused(&env.user_add("../etc", &pw, &[]), "user name");
    refused(&env.user_add("alice", &pw, &["--scopes", "data\"read"]), "--scopes");
    refused(&env.user_add("alice", &pw, &["--scopes", ""]), "--scopes");
    refused(&env.user_add("alice", &pw, &["--clearance", "secret"]), "--clearance");
    assert!(!env.data().exists(), "a refused command must not create the data directory");

    // A missing password file is an I/O error (exit 3), also writing nothing.
    let out = env.user_add("alice", &env.dir.path().join("missing"), &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!env.data().exists());
}

#[test]
fn an_existing_user_is_not_replaced() {
    let env = Env::new();
    let pw = env.file("pw", PASSWORD);
    let other = env.file("pw2", "a different password entirely");
    let first = ok(&env.user_add("alice", &pw, &[]));
    refused(&env.user_add("alice", &other, &["--clearance", "controlled"]), "already exists");
    let store = Store::open_existing(&env.data().join("auth.db")).unwrap();
    let u = store.user("alice").unwrap().unwrap();
    assert!(verify_password(&u.password_hash, PASSWORD.as_bytes()), "the original password still works");
    assert_eq!(u.clearance, seqshield_auth::Clearance::Internal);
    assert_eq!(u.totp_secret, uri_secret(first["otpauth_uri"].as_str().unwrap()));
    assert_eq!(env.list("user")["users"].as_array().unwrap().len(), 1);
}

#[test]
fn public_and_confidential_clients() {
    let env = Env::new();
    let v = ok(&env.client_add(
        "portal",
        &[
            "--redirect-uri",
            "https://portal.example.org/cb",
            "--redirect-uri",
            "http://127.0.0.1:8400/cb",
            "--redirect-uri",
            "org.example.genomics:/oauth2redirect",
            "--scopes",
            "openid,data:read",
        ],
    ));
    assert_eq!((v["type"].as_str(), v["auth_method"].as_str()), (Some("public"), Some("none")));
    assert_eq!(v["redirect_uris"].as_array().unwrap().len(), 3);

    let secret = env.file("secret", &format!("{SECRET}\n"));
    let v = ok(&env.client_add("pipeline", &["--secret-file", s(&secret), "--clearance", "restricted"]));
    assert_eq!((v["type"].as_str(), v["auth_method"].as_str()), (Some("confidential"), Some("client_secret_basic")));
    assert_eq!(v["clearance"], "restricted");

    let jwks = env.file("jwks.json", r#"{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}"#);
    let v = ok(&env.client_add("signer", &["--jwks-file", s(&jwks)]));
    assert_eq!(v["auth_method"], "private_key_jwt");

    let out = run(&["--json", "client", "list", "--data-dir", s(&env.data())]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains(SECRET) && !text.contains("argon2") && !text.contains("AQAB"), "{text}");
    let clients = ok(&out)["clients"].as_array().unwrap().clone();
    let ids: Vec<&str> = clients.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["pipeline", "portal", "signer"]);

    // The stored secret is an argon2id hash of the file's content (newline dropped).
    let store = Store::open_existing(&env.data().join("auth.db")).unwrap();
    let c = store.client("pipeline").unwrap().unwrap();
    assert!(c.confidential());
    assert!(verify_password(c.secret_hash.as_deref().unwrap(), SECRET.as_bytes()));
    assert!(!store.client("portal").unwrap().unwrap().confidential());
}

#[test]
fn bad_client_input_is_refused_and_nothing_is_written() {
    let env = Env::new();
    let short = env.file("short", "too-short-secret");
    let secret = env.file("secret", SECRET);
    let jwks_bad = env.file("jwks.json", r#"{"keys":[]}"#);
    let jwks = env.file("jwks-ok.json", r#"{"keys":[{"kty":"RSA"}]}"#);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "needs at least one --redirect-uri"),
        (vec!["--redirect-uri", "http://portal.example.org/cb"], "loopback"),
        (vec!["--redirect-uri", "https://portal.example.org/cb#x"], "fragment"),
        (vec!["--redirect-uri", "myapp:/cb"], "reverse-DNS"),
        (vec!["--redirect-uri", "javascript:alert(1)"], "reverse-DNS"),
        (vec!["--redirect-uri", "/relative"], "absolute"),
        (vec!["--secret-file", s(&short)], "32"),
        (vec!["--jwks-file", s(&jwks_bad)], "at least one key"),
        (vec!["--secret-file", s(&secret), "--jwks-file", s(&jwks)], "not both"),
        (vec!["--redirect-uri", "https://a.example/cb", "--scopes", "bad\\scope"], "--scopes"),
        (vec!["--redirect-uri", "https://a.example/cb", "--clearance", "top"], "--clearance"),
    ];
    for (extra, needle) in cases {
        refused(&env.client_add("portal", &extra), needle);
    }
    refused(&env.client_add("bad/name", &["--redirect-uri", "https://a.example/cb"]), "client name");
    assert!(!env.data().exists(), "a refused command must not create the data directory");

    ok(&env.client_add("portal", &["--redirect-uri", "https://a.example/cb"]));
    refused(&env.client_add("portal", &["--redirect-uri", "https://b.example/cb"]), "already exists");
    let clients = env.list("client")["clients"].as_array().unwrap().clone();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["redirect_uris"][0], "https://a.example/cb");
}

#[test]
fn listing_a_missing_data_directory_fails_without_creating_it() {
    let env = Env::new();
    for what in ["user", "client"] {
        let out = run(&["--json", what, "list", "--data-dir", s(&env.data())]);
        assert_eq!(out.status.code(), Some(3), "{what}");
        assert!(json(&out)["error"]["message"].as_str().unwrap().contains("auth database"));
    }
    assert!(!env.data().exists());
}
