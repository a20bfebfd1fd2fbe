//! `seqshield bench token` end to end: a real `seqshield serve` on a free
//! port, a confidential client added by `seqshield client add`, and the
//! load generator run against it over the gateway's strict TLS 1.3.

mod common;

use std::path::Path;
use std::process::{Command as StdCommand, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

const PASS: &str = "bench test passphrase";
const CLIENT: &str = "loadgen";
const SECRET: &str = "0123456789abcdef0123456789abcdef-bench-secret";

fn sq() -> StdCommand {
    let mut c = StdCommand::cargo_bin("seqshield").unwrap();
    c.env("SEQSHIELD_PASSPHRASE", PASS);
    c
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Adds the confidential client, then starts `seqshield serve` on a free
/// port and waits for its ready line.
fn start(data: &Path) -> common::Gateway {
    let secret = data.join("client.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let out = sq()
        .args(["client", "add", "--data-dir"])
        .arg(data)
        .args([CLIENT, "--secret-file"])
        .arg(&secret)
        .args(["--scopes", "data:read,jobs:submit", "--clearance", "internal"])
        .output()
        .unwrap();
    assert!(out.status.success(), "client add: {}", show(&out));

    common::serve(data, PASS)
}

fn bench(gw: &common::Gateway, secret_file: &Path, extra: &[&str]) -> Output {
    StdCommand::cargo_bin("seqshield")
        .unwrap()
        .args(["--json", "bench", "token", "--url", &gw.url, "--ca-cert"])
        .arg(&gw.cert)
        .args(["--client-id", CLIENT, "--secret-file"])
        .arg(secret_file)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

#[test]
fn bench_token_reports_latency_percentiles_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let out =
        bench(&gw, &dir.path().join("client.secret"), &["--duration", "2", "--warmup", "0", "--concurrency", "4"]);
    assert!(out.status.success(), "bench: {}", show(&out));
    let v = json(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["concurrency"], 4, "{v}");
    let requests = v["requests"].as_u64().unwrap();
    assert!(requests > 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["ok_requests"].as_u64(), Some(requests), "{v}");
    assert!(v["throughput_rps"].as_f64().unwrap() > 0.0, "{v}");
    let lat = &v["latency_ms"];
    let p = |k: &str| lat[k].as_f64().unwrap_or_else(|| panic!("no latency_ms.{k} in {v}"));
    assert!(p("p50") > 0.0, "{v}");
    assert!(p("p90") >= p("p50"), "{v}");
    assert!(p("p99") >= p("p90"), "{v}");
    assert!(p("p99_9") >= p("p99"), "{v}");
    assert!(p("max") >= p("p99_9"), "{v}");
    // The secret never appears in the output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
}

#[test]
fn bench_token_with_a_wrong_secret_fails() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let wrong = dir.path().join("wrong.secret");
    let wrong_secret = "ffffffffffffffffffffffffffffffff-not-the-secret";
    std::fs::write(&wrong, wrong_secret).unwrap();
    let out = bench(&gw, &wrong, &["--duration", "1", "--warmup", "0", "--concurrency", "2"]);
    assert!(!out.status.success(), "a wrong secret must fail the run: {}", show(&out));
    let v = json(&out);
    assert_eq!(v["ok"], false, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("error rate 100.00%"), "{msg}");
    assert!(msg.contains("exceeds --max-error-rate"), "{msg}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(wrong_secret));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(wrong_secret));
}

#[test]
fn bench_token_refuses_plain_http_and_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, SECRET).unwrap();
    let cert = dir.path().join("none.pem");
    let base = |url: &str, extra: &[&str]| {
        StdCommand::cargo_bin("seqshield")
            .unwrap()
            .args(["--json", "bench", "token", "--url", url, "--ca-cert"])
            .arg(&cert)
            .args(["--client-id", CLIENT, "--secret-file"])
            .arg(&secret)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = base("http://127.0.0.1:1", &[]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(json(&out)["error"]["message"].as_str().unwrap().contains("https"));
    for bad in [["--concurrency", "0"], ["--duration", "0"], ["--max-error-rate", "2"]] {
        let out = base("https://127.0.0.1:1", &bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", show(&out));
    }
}
