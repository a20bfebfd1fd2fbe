//! Escape tests: every attempt of `sandbox-probe` runs twice, bare (as the
//! test's user, root in CI) and inside the sandbox with the default
//! `genomics-tools` profile. Bare it must succeed ("escaped") or at least
//! pass the kernel's permission checks ("reached", e.g. `init_module` with a
//! garbage image), so that no attempt passes vacuously; sandboxed it must be
//! blocked. The test prints the table and fails on any row that breaks
//! either rule.
//!
//! Needs root (setuid copies, a uid range, idmapped mounts) and a kernel
//! with user namespaces, landlock and seccomp; without them it fails under
//! `CI` and is skipped (with the reason) otherwise.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio as PStdio};

use seqshield_sandbox::{Limits, Mount, Profile, Sandbox, Stdio};
use serde::Deserialize;

const PROBE: &str = env!("CARGO_BIN_EXE_sandbox-probe");

#[derive(Deserialize)]
struct Described {
    name: String,
    category: String,
    bare_note: Option<String>,
}

#[derive(Deserialize)]
struct Outcome {
    outcome: String,
    detail: String,
}

struct Context {
    _dir: tempfile::TempDir,
    base: PathBuf,
    victim: Child,
    port: u16,
    unix: PathBuf,
    abstract_name: String,
    probe_in_sandbox: String,
}

fn skip_or_fail(why: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("escape tests cannot run: {why}");
    }
    eprintln!("SKIPPED escape tests: {why}");
    true
}

fn euid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// A pseudo-terminal pair (master, slave) for the TIOCSTI attempt.
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name/termios/winsize
    // pointers may be null.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two new descriptors that we now own.
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

fn setup() -> Context {
    let dir = tempfile::Builder::new().prefix("seqshield-escape-").tempdir_in("/var/tmp").unwrap();
    let base = dir.path().to_path_buf();
    // uid 65534 must reach the setuid copy bare.
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["outside", "work", "ro", "bin"] {
        std::fs::create_dir(base.join(d)).unwrap();
        std::fs::set_permissions(base.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(base.join("outside/secret"), "host secret\n").unwrap();
    std::fs::write(base.join("ro/data"), "read-only data\n").unwrap();
    std::fs::copy(PROBE, base.join("bin/sandbox-probe")).unwrap();
    std::fs::copy(PROBE, base.join("ro/probe-suid")).unwrap();
    std::fs::set_permissions(base.join("ro/probe-suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink(base.join("outside/secret"), base.join("work/link")).unwrap();

    let victim = Command::new("sleep")
        .arg("1000")
        .stdin(PStdio::null())
        .stdout(PStdio::null())
        .stderr(PStdio::null())
        .spawn()
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in tcp.incoming().flatten() {
            drop(c);
        }
    });
    let unix = base.join("outside/sock");
    let ul = UnixListener::bind(&unix).unwrap();
    std::thread::spawn(move || {
        for c in ul.incoming().flatten() {
            drop(c);
        }
    });
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let abstract_name = format!("seqshield-escape-{}-{n}", std::process::id());
    {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        let al = UnixListener::bind_addr(&addr).unwrap();
        std::thread::spawn(move || {
            for c in al.incoming().flatten() {
                drop(c);
            }
        });
    }
    Context { _dir: dir, base, victim, port, unix, abstract_name, probe_in_sandbox: "/probe/sandbox-probe".into() }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = self.victim.kill();
        let _ = self.victim.wait();
    }
}

fn env_for(ctx: &Context, sandboxed: bool) -> Vec<(String, String)> {
    let b = &ctx.base;
    let (work, ro, setuid, symlink) = if sandboxed {
        ("/work".to_string(), "/ro".to_string(), "/ro/probe-suid".to_string(), "/work/link".to_string())
    } else {
        (
            b.join("work").display().to_string(),
            b.join("ro").display().to_string(),
            b.join("ro/probe-suid").display().to_string(),
            b.join("work/link").display().to_string(),
        )
    };
    vec![
        ("PROBE_WORK".into(), work),
        ("PROBE_RO".into(), ro),
        ("PROBE_OUTSIDE".into(), b.join("outside").display().to_string()),
        ("PROBE_PID".into(), ctx.victim.id().to_string()),
        ("PROBE_PORT".into(), ctx.port.to_string()),
        ("PROBE_UNIX".into(), ctx.unix.display().to_string()),
        ("PROBE_ABSTRACT".into(), ctx.abstract_name.clone()),
        ("PROBE_SETUID".into(), setuid),
        ("PROBE_SYMLINK".into(), symlink),
    ]
}

fn parse(stdout: &[u8]) -> Option<Outcome> {
    let line = String::from_utf8_lossy(stdout);
    serde_json::from_str(line.lines().last()?).ok()
}

fn bare(ctx: &Context, attempt: &str) -> (Option<i32>, Option<Outcome>, String) {
    let (_master, slave) = openpty();
    let out = Command::new(ctx.base.join("bin/sandbox-probe"))
        .arg(attempt)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env_for(ctx, false))
        .stdin(PStdio::from(slave))
        .output()
        .unwrap();
    (out.status.code(), parse(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn sandboxed(ctx: &Context, profile: &Profile, attempt: &str) -> (seqshield_sandbox::Report, Option<Outcome>, String) {
    let mut sb = Sandbox::new(profile.clone());
    let b = &ctx.base;
    sb.mounts = vec![
        Mount { src: b.join("bin"), dst: "/probe".into(), writable: false },
        Mount { src: b.join("ro"), dst: "/ro".into(), writable: false },
        Mount { src: b.join("work"), dst: "/work".into(), writable: true },
    ];
    let mut limits = Limits::default();
    limits.set("nproc=64,as=1G,fsize=16M,tmpfs=64M,stack=8M,memory=1G,pids=128").unwrap();
    sb.limits = limits;
    sb.env = env_for(ctx, true);
    let (_master, slave) = openpty();
    let out_path = b.join(format!("out-{attempt}"));
    let err_path = b.join(format!("err-{attempt}"));
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    let report = sb
        .run(
            &[ctx.probe_in_sandbox.clone().into(), attempt.into()],
            Stdio { stdin: Some(slave), stdout: Some(out.into()), stderr: Some(err.into()) },
        )
        .unwrap_or_else(|e| panic!("{attempt}: the sandbox failed to run the probe: {e}"));
    let mut stdout = Vec::new();
    std::fs::File::open(&out_path).unwrap().read_to_end(&mut stdout).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (report, parse(&stdout), stderr)
}

#[test]
fn escape_attempts_succeed_bare_and_are_blocked_in_the_sandbox() {
    if euid() != 0 && skip_or_fail("needs root (setuid copies, a uid range, idmapped mounts)") {
        return;
    }
    let features = seqshield_sandbox::check_features();
    if !features.ready() && skip_or_fail(&format!("kernel features missing: {:?}", features.features)) {
        return;
    }
    let described: Vec<Described> =
        serde_json::from_slice(&Command::new(PROBE).arg("describe").output().unwrap().stdout).unwrap();
    assert!(described.len() >= 50, "only {} attempts", described.len());

    let ctx = setup();
    let profile = Profile::load("genomics-tools").unwrap();
    // Bare root without CAP_SYS_RESOURCE (some VMs drop it from every
    // bounding set) cannot raise a hard rlimit either (CAP_SYS_RESOURCE is 24).
    let bare_lacks_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .is_some_and(|b| b & (1 << 24) == 0);

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut blocked_by_seccomp = BTreeMap::new();
    for (i, d) in described.iter().enumerate() {
        let (bcode, bout, berr) = bare(&ctx, &d.name);
        let bare_outcome =
            bout.as_ref().map_or_else(|| format!("error ({bcode:?}): {}", berr.trim()), |o| o.outcome.clone());
        let bare_ok = matches!(bcode, Some(0) | Some(10));
        let mut note = d.bare_note.clone().unwrap_or_default();
        if !bare_ok {
            if d.name == "setrlimit-nproc-raise" && bare_lacks_sys_resource && bcode == Some(20) {
                note = "cannot succeed bare here: this host's root lacks CAP_SYS_RESOURCE in every bounding set".into();
            } else {
                failures.push(format!(
                    "{}: bare run did not succeed: {bare_outcome} {}",
                    d.name,
                    bout.as_ref().map_or("", |o| &o.detail)
                ));
            }
        }
        let (report, sout, serr) = sandboxed(&ctx, &profile, &d.name);
        let how = match (report.status.code, &report.status.signal_name, &sout) {
            (Some(20), _, Some(o)) => o.detail.clone(),
            // A signal counts as blocked only when the sandbox killed the
            // step (kill action, OOM) or a limit did (resource attempts);
            // any other crash is a failure of the test, not a block.
            (None, Some(sig), _)
                if report.killed_by.is_some()
                    || (d.category == "resource"
                        && matches!(sig.as_str(), "SIGKILL" | "SIGXFSZ" | "SIGSEGV" | "SIGXCPU")) =>
            {
                format!("killed by {sig}{}", report.killed_by.as_ref().map(|k| format!(" ({k})")).unwrap_or_default())
            }
            (code, _, o) => {
                failures.push(format!(
                    "{}: NOT blocked in the sandbox: exit {code:?}, {} {}",
                    d.name,
                    o.as_ref().map_or("no outcome", |o| &o.outcome),
                    o.as_ref().map_or(serr.trim(), |o| &o.detail)
                ));
                "NOT BLOCKED".into()
            }
        };
        let seccomp: Vec<String> = report.blocked.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        for k in report.blocked.keys() {
            *blocked_by_seccomp.entry(k.clone()).or_insert(0) += 1;
        }
        rows.push(format!(
            "| {:>3} | {} | {} | {}{} | {} | {} |",
            i + 1,
            d.name,
            d.category,
            bare_outcome,
            if note.is_empty() { String::new() } else { format!(" ({note})") },
            how.replace('|', "/"),
            if seccomp.is_empty() { "-".into() } else { seccomp.join(" ") }
        ));
    }
    drop(ctx);
    let mut table = String::new();
    table.push_str(
        "| # | attempt | category | bare | sandboxed: blocked how | seccomp counted |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        table.push_str(r);
        table.push('\n');
    }
    println!("{table}");
    std::io::stdout().flush().unwrap();
    assert!(failures.is_empty(), "{} of {} attempts failed:\n{}", failures.len(), described.len(), failures.join("\n"));
    assert!(blocked_by_seccomp.len() > 10, "seccomp should have refused many distinct calls: {blocked_by_seccomp:?}");
}

/// The same probe, killed at the first blocked call with `--action kill`,
/// and the kill is named in the report.
#[test]
fn kill_action_kills_the_step_and_names_the_call() {
    if euid() != 0 && skip_or_fail("needs root") {
        return;
    }
    let ctx = setup();
    let mut profile = Profile::load("genomics-tools").unwrap();
    profile.seccomp.action = seqshield_sandbox::DenyAction::Kill;
    let (report, out, _) = sandboxed(&ctx, &profile, "ptrace-attach-victim");
    assert_eq!(report.status.signal, Some(libc::SIGKILL), "{:?}", report.status);
    assert!(out.is_none());
    assert_eq!(report.killed_by.as_deref(), Some("seccomp: blocked call `ptrace` with action kill"));
    assert_eq!(report.blocked.get("ptrace"), Some(&1));
}
