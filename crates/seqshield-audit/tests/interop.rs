//! The log file and its entries against an independent reader:
//! `tests/interop_check.py` (python, hashlib only) parses the file from the
//! format description in `record.rs`, checks every CRC-32C, re-encodes each
//! entry as RFC 8785 canonical JSON (`sort_keys`, no whitespace, no ASCII
//! escaping), re-derives the RFC 3339 time from the Unix time, and computes
//! the RFC 9162 tree head.

use std::path::PathBuf;
use std::process::Command;

use seqshield_audit::{AuditLog, Decision, Event, Timestamp};

/// `python3`, or `None` (skip) outside CI. Under `CI` a missing reference
/// tool is a failure, never a skip.
fn python() -> Option<PathBuf> {
    for p in ["/usr/bin/python3", "/usr/local/bin/python3"] {
        if std::path::Path::new(p).exists() {
            return Some(p.into());
        }
    }
    assert!(std::env::var_os("CI").is_none(), "CI: python3 is missing");
    eprintln!("note: python3 missing; the independent check was not run");
    None
}

#[test]
fn the_file_agrees_with_an_independent_python_reader() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let times = [0, 68_255_999, 951_782_400, 1_700_000_000, 4_107_542_400, 253_402_300_799];
    for (i, unix) in times.iter().enumerate() {
        let mut b = Event::builder(Timestamp::from_unix(*unix).unwrap(), "policy.decision", Decision::StepUp)
            .subject(format!("ünïcødé-用户-{i}"))
            .client("cli \"quoted\" \\ back/slash")
            .source(Some(if i % 2 == 0 { "10.0.0.1".parse().unwrap() } else { "2001:db8::7".parse().unwrap() }))
            .reason("MFA required — 🔐")
            .detail("n", -(i as i64) * 9_007_199_254_740)
            .detail("ok", i % 2 == 0)
            .detail("none", None::<&str>)
            .detail("z_last", "tab-free text");
        if i % 3 == 0 {
            b = b.object(format!("task:{i}")).request_id("req-1").rule("r");
        }
        log.append(&b.build().unwrap()).unwrap();
    }
    for i in 0..100 {
        log.append(&Event::builder(Timestamp::from_unix(i).unwrap(), "a", Decision::Allow).build().unwrap()).unwrap();
    }
    let head = log.tree_head();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop_check.py");
    let out = Command::new(py).arg(script).arg(log.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.trim(), format!("{} {}", head.size, hex::encode(head.root)));
}
