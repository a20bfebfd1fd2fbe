//! `seqshield gpu` and the gateway's GPU monitor, from outside.
//!
//! CI has no GPU: there, `gpu check` and `gpu scan` must end cleanly with
//! exit 7 and a stable code, never a panic, and the gateway must note in
//! its audit log that GPU monitoring is off (or refuse to start when
//! `[gpu] monitor = "on"`). On a machine with a driver, `gpu check` must
//! describe the device and a short scan must find no secure remnant.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn sq(args: &[&str]) -> Output {
    Command::cargo_bin("seqshield").unwrap().args(args).stdin(Stdio::null()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn check_describes_the_gpu_or_says_there_is_none() {
    let out = sq(&["--json", "gpu", "check"]);
    let v = json(&out);
    if seqshield_gpu::is_driver_present() {
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(v["device"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{v}");
        return;
    }
    assert_eq!(out.status.code(), Some(7), "{v}");
    assert_eq!(v["error"]["code"], "no_cuda_driver");
    assert_eq!(v["error"]["message"], "no CUDA driver");
    // Human form: one line on stderr, no panic, no backtrace.
    let out = sq(&["gpu", "check"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out).trim(), "seqshield: error: no CUDA driver");
    assert!(out.stdout.is_empty());
}

#[test]
fn scan_without_a_driver_is_a_clean_refusal() {
    if seqshield_gpu::is_driver_present() {
        let out = sq(&["--json", "gpu", "scan", "--cycles", "3", "--write-mib", "4", "--read-mib", "64"]);
        let v = json(&out);
        assert!(out.status.success(), "{v} {}", stderr(&out));
        let secure = v["reports"].as_array().unwrap().iter().find(|r| r["allocator"] == "secure").unwrap();
        assert_eq!(secure["cycles_with_remnants"], 0, "{v}");
        return;
    }
    for args in [
        &["--json", "gpu", "scan", "--cycles", "2"][..],
        &[
            "--json",
            "gpu",
            "scan-writer",
            "--device",
            "0",
            "--run-id",
            "1",
            "--cycle",
            "0",
            "--allocator",
            "plain",
            "--bytes",
            "4096",
        ],
        &["--json", "gpu", "scan-reader", "--device", "0", "--run-id", "1", "--max-bytes", "0"],
    ] {
        let out = sq(args);
        assert_eq!(out.status.code(), Some(7), "{args:?}: {}", stderr(&out));
        assert_eq!(json(&out)["error"]["code"], "no_cuda_driver", "{args:?}");
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
}

#[test]
fn bad_scan_arguments_are_refused_before_anything_runs() {
    for args in [
        &["gpu", "scan", "--cycles", "0"][..],
        &["gpu", "scan", "--allocator", "fast"],
        &["gpu", "scan", "--write-mib", "0"],
        &["gpu", "check", "--device", "-1"],
    ] {
        let out = sq(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn gpu_settings_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, field) in [
        ("[gpu]\ninterval_secs = 0\n", "gpu.interval_secs"),
        ("[gpu]\ndevices = [0, 0]\n", "gpu.devices"),
        ("[gpu]\nmonitor = \"sometimes\"\n", "monitor"),
    ] {
        std::fs::write(dir.path().join("seqshield.toml"), toml).unwrap();
        let out = Command::cargo_bin("seqshield")
            .unwrap()
            .args(["config", "check", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml}");
        assert!(stderr(&out).contains(field), "{toml}: {}", stderr(&out));
    }
}

fn audit_text(data: &Path) -> String {
    let log = data.join("audit").join("events.sqa");
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

fn nvml_present() -> bool {
    #[cfg(feature = "cuda")]
    {
        seqshield_gpu::nvml::Monitor::open().is_ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// `monitor = "auto"` (the default) on a machine without NVML: the gateway
/// starts and its audit log says once that GPU monitoring is off, and why.
#[test]
fn gateway_audits_that_gpu_monitoring_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gw");
    let gw = common::serve(&data, "gpu monitor test passphrase");
    gw.stop();
    let text = audit_text(&data);
    if nvml_present() {
        assert!(text.contains("GPU monitoring started"), "no gpu.monitor start event");
    } else {
        assert!(text.contains("gpu.monitor") && text.contains("GPU monitoring is off"), "no gpu.monitor event");
    }
    let out =
        Command::cargo_bin("seqshield").unwrap().args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `monitor = "on"` without NVML: the gateway refuses to start, naming the
/// setting, rather than run unwatched.
#[test]
fn gateway_refuses_to_start_when_monitoring_is_required_but_impossible() {
    if nvml_present() {
        eprintln!("NVML present: the refusal cannot be provoked here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gw");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("seqshield.toml"), "[gpu]\nmonitor = \"on\"\n").unwrap();
    let mut child = Command::cargo_bin("seqshield")
        .unwrap()
        .env("SEQSHIELD_PASSPHRASE", "gpu monitor test passphrase")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "serve started although monitoring is impossible");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "serve announced itself: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr(&out).contains("gpu.monitor = \"on\" but GPU monitoring cannot start"), "{}", stderr(&out));
}
