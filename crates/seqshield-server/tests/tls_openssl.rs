//! The listener's TLS policy as OpenSSL's `s_client` sees it: an outside
//! implementation, trusting the gateway's certificate (`-CAfile`,
//! `-verify_return_error`), offering one thing at a time. Only TLS 1.3 with
//! TLS_AES_256_GCM_SHA384 over P-384 gets a session.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn openssl() -> bool {
    let ok = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI: the openssl command is missing");
        eprintln!("skipped: no openssl command");
    }
    ok
}

/// Runs `openssl s_client` with `args` against the gateway; whether a TLS
/// session was established, and what it printed.
fn s_client(running: &common::Running, ca: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &running.addr.to_string(), "-servername", "localhost", "-verify_return_error"])
        .arg("-CAfile")
        .arg(ca)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close stdin at once: s_client then ends the session and exits.
    child.stdin.take().unwrap().write_all(b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Any session at all, whatever it negotiated.
    let established = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (established, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_clients_below_the_policy_are_refused() {
    if !openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let running = common::start(dir.path(), common::settings()).await;
    let ca2 = std::path::PathBuf::from(&running.info.cert_path);
    let probe = move |args: Vec<&'static str>| {
        let (running, ca) = (&running, &ca2);
        tokio::task::block_in_place(|| s_client(running, ca, &args))
    };

    let (ok, text) = probe(vec!["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", "-groups", "P-384"]);
    assert!(ok, "the policy's own suite and group must work:\n{text}");
    assert!(text.contains("Cipher is TLS_AES_256_GCM_SHA384"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "the pinned certificate must verify:\n{text}");

    for (what, args) in [
        ("TLS 1.2 only", vec!["-tls1_2"]),
        ("ChaCha20-Poly1305 only", vec!["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"]),
        ("AES-128-GCM only", vec!["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]),
        ("X25519 only", vec!["-tls1_3", "-groups", "X25519"]),
        ("P-256 only", vec!["-tls1_3", "-groups", "P-256"]),
    ] {
        let (ok, text) = probe(args);
        assert!(!ok, "{what}: a session was established:\n{text}");
        assert!(
            text.contains("alert") || text.contains("no protocols available") || text.contains("handshake failure"),
            "{what}: refused, but not by a TLS alert:\n{text}"
        );
    }
}
