//! A running `seqshield serve` for end-to-end tests, shared by the test
//! binaries that need one.

// Each test binary compiles its own copy of this module.
#![allow(unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

pub mod site;
pub mod tes;

/// The gateway process, killed however the test ends (a panic included).
pub struct Gateway {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The gateway's certificate (PEM), to pin.
    pub cert: PathBuf,
    /// Base64 SHA-256 of its SubjectPublicKeyInfo (Chromium's pin format).
    #[allow(dead_code)]
    pub spki: String,
}

impl Gateway {
    /// Stops the gateway with SIGTERM (a graceful stop: a last signed tree
    /// head) and waits for it to exit.
    #[allow(dead_code)]
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exited with {status}");
                return;
            }
            assert!(std::time::Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Gateway {
    /// SIGKILLs the gateway (a crash) and reaps it.
    #[allow(dead_code)]
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `seqshield serve` on a free loopback port over `data` (file KEK
/// under `passphrase`) and waits for its ready line.
pub fn serve(data: &Path, passphrase: &str) -> Gateway {
    serve_on(data, passphrase, "127.0.0.1:0")
}

/// [`serve`] on a given address (to restart a gateway where clients expect it).
pub fn serve_on(data: &Path, passphrase: &str, listen: &str) -> Gateway {
    let mut child = Command::cargo_bin("seqshield")
        .unwrap()
        .env("SEQSHIELD_PASSPHRASE", passphrase)
        .args(["--json", "serve", "--data-dir"])
        .arg(data)
        .args(["--listen", listen])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Own the child before anything can panic, so Drop reaps it.
    let mut gw = Gateway { child, url: String::new(), cert: PathBuf::new(), spki: String::new() };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(180)).expect("serve printed no ready line");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    gw.url = v["url"].as_str().unwrap().to_owned();
    gw.cert = PathBuf::from(v["cert_path"].as_str().unwrap());
    gw.spki = v["spki_sha256"].as_str().unwrap().to_owned();
    gw
}
