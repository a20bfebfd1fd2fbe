//! End-to-end tests of `seqshield doctor` and `seqshield config`, run as an
//! operator would, in a clean environment (no `SEQSHIELD_*` variables but
//! the ones a test sets).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assert_cmd::cargo::CommandCargoExt;
use assert_cmd::Command;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

/// `seqshield` with only `PATH` and `HOME` from the test's environment.
fn sq() -> Command {
    let mut c = Command::cargo_bin("seqshield").unwrap();
    c.env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            c.env(var, v);
        }
    }
    c
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `seqshield --json doctor --data-dir DATA ARGS…`, which must succeed.
fn doctor(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out =
        sq().envs(env.iter().copied()).args(["--json", "doctor", "--data-dir", s(data)]).args(args).output().unwrap();
    ok_json(&out)
}

fn ids(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

fn finding<'a>(v: &'a Value, id: &str) -> Vec<&'a Value> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["id"] == id).collect()
}

/// Every file and directory under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().to_owned());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// On a data directory that does not exist yet, doctor reports what `serve`
/// would generate (file KEK, embedded passphrase, self-signed certificate)
/// and creates nothing: not the directory, not a KEK, not a database.
#[test]
fn fresh_dir_reports_the_generated_defaults_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let v = doctor(&data, &[], &[]);
    assert_eq!(v["ok"], true);
    let ids = ids(&v);
    for id in ["file_kek", "embedded_passphrase", "self_signed_certificate"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    for f in v["findings"].as_array().unwrap() {
        assert!(f["severity"] == "warn" || f["severity"] == "info", "{f}");
        assert!(!f["summary"].as_str().unwrap().is_empty() && !f["fix"].as_str().unwrap().is_empty(), "{f}");
    }
    let kek = &finding(&v, "file_kek")[0];
    assert!(kek["summary"].as_str().unwrap().contains("not there yet"), "{kek}");
    assert_eq!(v["config_source"]["file"], Value::Null);
    assert!(!data.exists(), "doctor created the data directory");

    // An existing, empty data directory stays empty.
    std::fs::create_dir(&data).unwrap();
    doctor(&data, &[], &[]);
    assert!(tree(&data).is_empty(), "doctor created {:?}", tree(&data));
}

/// The operator's passphrase and an HSM each remove their finding.
#[test]
fn operator_passphrase_and_hsm_remove_their_findings() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let v = doctor(&data, &[], &[("SEQSHIELD_PASSPHRASE", "an operator passphrase")]);
    assert!(ids(&v).contains(&"file_kek".to_owned()));
    assert!(!ids(&v).contains(&"embedded_passphrase".to_owned()), "{v}");
    let pin = root.path().join("pin");
    std::fs::write(&pin, "1234").unwrap();
    let v =
        doctor(&data, &["--pkcs11-module", "/nonexistent/module.so", "--token-label", "t", "--pin-file", s(&pin)], &[]);
    assert!(!ids(&v).iter().any(|i| i == "file_kek" || i == "embedded_passphrase"), "{v}");
}

/// An enabled user with an administrative scope and no confirmed TOTP
/// authenticator is reported by name; users without such scopes are not,
/// and the finding goes once the authenticator is confirmed.
#[test]
fn admins_without_mfa_are_reported() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let pw = root.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    for (name, scopes) in [("root-admin", "openid,data:admin"), ("analyst", "openid,data:read,jobs:submit")] {
        let out = sq()
            .args([
                "--json",
                "user",
                "add",
                "--data-dir",
                s(&data),
                name,
                "--password-file",
                s(&pw),
                "--scopes",
                scopes,
            ])
            .output()
            .unwrap();
        ok_json(&out);
    }
    let before = tree(&data);
    let v = doctor(&data, &[], &[]);
    let admins = finding(&v, "admin_without_mfa");
    assert_eq!(admins.len(), 1, "{v}");
    let summary = admins[0]["summary"].as_str().unwrap();
    assert!(summary.contains("root-admin") && summary.contains("data:admin"), "{summary}");
    assert_eq!(admins[0]["severity"], "warn");
    assert!(!v.to_string().contains("analyst"), "{v}");
    assert_eq!(tree(&data), before, "doctor changed the data directory");

    let store = seqshield_auth::store::Store::open(&data.join(seqshield_auth::store::DB_FILE)).unwrap();
    store.confirm_totp("root-admin").unwrap();
    drop(store);
    let v = doctor(&data, &[], &[]);
    assert!(finding(&v, "admin_without_mfa").is_empty(), "{v}");
}

/// With an operator certificate configured, the self-signed finding is gone.
#[test]
fn operator_certificate_removes_the_self_signed_finding() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (cert, key) = seqshield_server::cert::generate_self_signed(&["gw.example.org".to_owned()], now).unwrap();
    std::fs::write(root.path().join("fullchain.pem"), cert).unwrap();
    std::fs::write(root.path().join("key.pem"), key.as_bytes()).unwrap();
    let file = root.path().join("gateway.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"0.0.0.0:8443\"\npublic_hosts = [\"gw.example.org\"]\n\
         tls_cert = \"fullchain.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    let v = doctor(&data, &["--config", s(&file)], &[]);
    assert!(finding(&v, "self_signed_certificate").is_empty(), "{v}");
    assert!(finding(&v, "public_listen_without_hosts").is_empty(), "public_hosts is set: {v}");
    assert_eq!(v["config_source"]["file"], s(&file));

    // Without public_hosts, a wildcard listener is reported.
    let v = doctor(&data, &["--config", s(&file)], &[("SEQSHIELD_SERVER__PUBLIC_HOSTS", "[]")]);
    assert_eq!(finding(&v, "public_listen_without_hosts").len(), 1, "{v}");
    assert_eq!(v["config_source"]["env"][0], "SEQSHIELD_SERVER__PUBLIC_HOSTS");
}

/// An Azurite replica is reported as the insecure emulator.
#[test]
fn emulator_replica_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("seqshield.toml"),
        "[store.replicas.burst.backend]\nkind = \"azure\"\naccount = \"devstoreaccount1\"\ncontainer = \"c\"\n\
         insecure_emulator = true\n",
    )
    .unwrap();
    let v = doctor(&data, &[], &[]);
    let f = finding(&v, "insecure_emulator");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["summary"].as_str().unwrap().contains("replica store burst"), "{v}");
}

/// An invalid configuration is an error (exit 2) that names the key, for
/// `config check` and `doctor` alike; findings alone never fail doctor.
#[test]
fn a_bad_key_is_refused_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("seqshield.toml"), "[server]\nlisten_adr = \"127.0.0.1:1\"\n").unwrap();
    for cmd in [&["config", "check"][..], &["doctor"][..]] {
        let out = sq().args(cmd).args(["--data-dir", s(&data)]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("listen_adr") && err.contains("seqshield.toml"), "{cmd:?}: {err}");
    }
    // The same typo from the environment names the variable.
    std::fs::remove_file(data.join("seqshield.toml")).unwrap();
    let out = sq()
        .env("SEQSHIELD_SEVER__LISTEN", "127.0.0.1:1")
        .args(["--json", "config", "check", "--data-dir", s(&data)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "bad_input");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("SEQSHIELD_SEVER__LISTEN: unknown table `sever`"), "{msg}");
}

/// `SEQSHIELD_SERVER__MAX_CONNECTIONS=7` shows in the effective
/// configuration; `--listen` wins over the environment.
#[test]
fn config_check_prints_the_effective_configuration() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = sq()
        .env("SEQSHIELD_SERVER__MAX_CONNECTIONS", "7")
        .env("SEQSHIELD_LISTEN", "127.0.0.1:1111")
        .args(["config", "check", "--data-dir", s(&data), "--listen", "127.0.0.1:2222"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("max_connections = 7"), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:2222\""), "{text}");
    assert!(text.contains("SEQSHIELD_SERVER__MAX_CONNECTIONS"), "the header names the variable: {text}");
    assert!(!data.exists(), "config check created the data directory");

    let out = sq()
        .env("SEQSHIELD_SERVER__MAX_CONNECTIONS", "7")
        .env("SEQSHIELD_STORE__DATABASE", "postgres://seqshield:hunter2@db.example.org/seqshield")
        .args(["--json", "config", "check", "--data-dir", s(&data)])
        .output()
        .unwrap();
    let v = ok_json(&out);
    assert_eq!(v["config"]["server"]["max_connections"], 7);
    assert_eq!(v["config"]["store"]["database"], "postgres://seqshield:REDACTED@db.example.org/seqshield");
    assert!(!v.to_string().contains("hunter2"), "secrets are omitted");
}

#[test]
fn config_schema_is_json_schema_of_every_table() {
    let out = sq().args(["config", "schema"]).output().unwrap();
    let v = ok_json(&out);
    assert!(v["$schema"].as_str().unwrap().contains("json-schema.org"), "{v}");
    for table in ["server", "auth", "store", "jobs"] {
        assert!(v["properties"][table].is_object(), "{table}");
    }
}

/// `serve` logs each finding at start as a `weak_default` warning: the same
/// ids `doctor` lists.
#[test]
fn serve_logs_the_findings_at_start() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut child = std::process::Command::cargo_bin("seqshield")
        .unwrap()
        .env_remove("SEQSHIELD_PASSPHRASE")
        .args(["--json", "serve", "--data-dir", s(&data), "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if let Some(id) = v["fields"]["weak_default"].as_str() {
                    seen.push(id.to_owned());
                    let _ = tx.send(seen.clone());
                }
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !["file_kek", "embedded_passphrase", "self_signed_certificate"].iter().all(|id| seen.iter().any(|s| s == id))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) => seen = s,
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for id in ["file_kek", "embedded_passphrase", "self_signed_certificate"] {
        assert!(seen.iter().any(|s| s == id), "serve did not log {id}: {seen:?}");
    }
    let dup = seen.iter().filter(|s| *s == "file_kek").count();
    assert_eq!(dup, 1, "each finding once: {seen:?}");
}
