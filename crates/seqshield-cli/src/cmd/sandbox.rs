//! `seqshield sandbox run|check|learn|profile`: one pipeline step under
//! namespaces, landlock, no capabilities, rlimits/cgroups and a
//! default-deny seccomp filter.
//!
//! `run` is transparent: the tool's stdin, stdout, stderr and exit status
//! are its own. A sandbox failure exits 125 (126: cannot execute, 127: not
//! found), like `env` and container runtimes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seqshield_sandbox::{DenyAction, Limits, Mount, Profile, Report, Sandbox, Stdio};

use crate::Ctx;

/// Exit status for a failure of the sandbox itself (not of the tool).
pub const EXIT_SANDBOX: u8 = 125;
const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

const RUN_HELP: &str = "\
The tool's stdin, stdout, stderr and exit status are passed through. A step
killed by a signal makes this command die by the same signal. Failures of the
sandbox itself exit 125 (126: cannot execute, 127: command not found).

Defaults: a uid from a range (root) or your uid, a read-only root built from
the profile's paths, a private /tmp tmpfs, /dev with null/zero/full/random/
urandom, a new /proc, no network, landlock (read-only everywhere, writable
only on rw mounts and /tmp), no capabilities, no_new_privs, the profile's
rlimits, and its default-deny seccomp filter (blocked calls fail with EPERM
and are counted by name; --action kill kills the step instead).

Limit keys: cpu (s), as, nofile, nproc, fsize, stack, tmpfs, args, memory
(cgroup), pids (cgroup), cpus (cgroup); sizes take K, M, G, T.

Examples:
  seqshield sandbox run --mount ref:/ref:ro --mount run1:/work:rw -- \\
      bwa mem -t 2 /ref/ref.fa r1.fq r2.fq > aln.sam
  seqshield sandbox run --json --limit nproc=64,as=2G -- samtools --version";

/// Sandbox commands.
#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Run one command under every control of a profile.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Report the kernel features the sandbox uses and what their absence means.
    Check,
    /// Run a command with every syscall allowed and recorded; write a profile draft.
    Learn(LearnArgs),
    /// Print a profile (built-in name or file) and what its filter blocks.
    Profile {
        /// Built-in profile name or path to a profile file.
        #[arg(default_value = seqshield_sandbox::DEFAULT_PROFILE)]
        profile: String,
    },
}

/// Options shared by `run` and `learn`.
#[derive(Args, Debug, Clone)]
pub struct StepArgs {
    /// Profile: a built-in name (genomics-tools) or a path to a profile file.
    #[arg(long, value_name = "P", default_value = seqshield_sandbox::DEFAULT_PROFILE)]
    pub profile: String,
    /// Bind a host path into the sandbox, read-only or read-write (repeatable).
    #[arg(long = "mount", value_name = "SRC:DST:ro|rw")]
    pub mounts: Vec<String>,
    /// Override a limit, KEY=VALUE[,KEY=VALUE...] (repeatable; keys below).
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    pub limits: Vec<String>,
    /// Working directory inside the sandbox (default: the first rw mount, else /).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable for the step (repeatable; the host environment is not passed).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Give the step the host network (policy switch; off by default).
    #[arg(long)]
    pub allow_network: bool,
    /// What a blocked syscall gets: errno (EPERM, counted) or kill (the step dies).
    #[arg(long, value_name = "ACTION", value_parser = ["errno", "kill"])]
    pub action: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `sandbox run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub step: StepArgs,
    /// Write the report (controls applied, blocked calls, timings) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Run the command WITHOUT any sandbox (benchmarks only): warns and marks the report.
    #[arg(long)]
    pub insecure_no_sandbox: bool,
}

/// `sandbox learn`.
#[derive(Args, Debug)]
pub struct LearnArgs {
    #[command(flatten)]
    pub step: StepArgs,
    /// Where to write the profile draft (TOML).
    #[arg(short, long, value_name = "FILE", default_value = "learned-profile.toml")]
    pub output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// A sandbox failure with the exit status it maps to.
#[derive(Debug)]
struct Failure {
    status: u8,
    code: &'static str,
    message: String,
}

fn failure(e: seqshield_sandbox::Error) -> Failure {
    use seqshield_sandbox::Error as E;
    let message = e.to_string();
    let (status, code) = match &e {
        E::Usage(m) if m.contains("command not found") => (EXIT_NOT_FOUND, "command_not_found"),
        E::Usage(m) if m.contains("cannot execute") => (EXIT_CANNOT_EXECUTE, "cannot_execute"),
        E::Usage(_) => (EXIT_SANDBOX, "bad_request"),
        E::Profile(_) => (EXIT_SANDBOX, "bad_profile"),
        E::MissingFeature { .. } => (EXIT_SANDBOX, "missing_kernel_feature"),
        E::Setup(_) | E::Io { .. } => (EXIT_SANDBOX, "sandbox_setup_failed"),
    };
    Failure { status, code, message }
}

fn emit_failure(ctx: &Ctx, f: &Failure) -> ExitCode {
    if ctx.json {
        let v =
            serde_json::json!({"ok": false, "error": {"code": f.code, "message": f.message, "exit_code": f.status}});
        eprintln!("{v}");
    } else {
        eprintln!("seqshield sandbox: error: {}", f.message);
    }
    ExitCode::from(f.status)
}

/// Entry point; returns the process exit code itself (run passes the
/// tool's through).
pub fn run(ctx: &Ctx, c: SandboxCommand) -> ExitCode {
    match c {
        SandboxCommand::Run(a) => run_step(ctx, a),
        SandboxCommand::Check => check(ctx),
        SandboxCommand::Learn(a) => learn(ctx, a),
        SandboxCommand::Profile { profile } => show_profile(ctx, &profile),
    }
}

fn build(step: &StepArgs) -> Result<Sandbox, seqshield_sandbox::Error> {
    let profile = Profile::load(&step.profile)?;
    let mut sb = Sandbox::new(profile);
    for m in &step.mounts {
        sb.mounts.push(m.parse::<Mount>()?);
    }
    let mut limits = Limits::default();
    for l in &step.limits {
        limits.set(l)?;
    }
    sb.limits = limits;
    sb.cwd = step.cwd.clone();
    for e in &step.env {
        let (k, v) =
            e.split_once('=').ok_or_else(|| seqshield_sandbox::Error::Usage(format!("--env `{e}`: expected K=V")))?;
        sb.env.push((k.to_string(), v.to_string()));
    }
    sb.network = step.allow_network;
    sb.action = step.action.as_deref().map(DenyAction::parse).transpose()?;
    Ok(sb)
}

fn run_step(ctx: &Ctx, a: RunArgs) -> ExitCode {
    if a.insecure_no_sandbox {
        return run_insecure(ctx, a);
    }
    let sb = match build(&a.step) {
        Ok(sb) => sb,
        Err(e) => return emit_failure(ctx, &failure(e)),
    };
    let running = match sb.spawn(&a.step.command, Stdio::default()) {
        Ok(r) => r,
        Err(e) => return emit_failure(ctx, &failure(e)),
    };
    running.forward_signals();
    let report = match running.wait() {
        Ok(r) => r,
        Err(e) => return emit_failure(ctx, &failure(e)),
    };
    finish(ctx, &report, a.report.as_deref())
}

/// Writes the report, then exits the way the tool did.
fn finish(ctx: &Ctx, report: &Report, file: Option<&Path>) -> ExitCode {
    if let Some(path) = file {
        if let Err(e) = write_json_atomically(path, report) {
            eprintln!("seqshield sandbox: error: cannot write the report to {}: {e:#}", path.display());
            return ExitCode::from(EXIT_SANDBOX);
        }
    }
    if ctx.json {
        match serde_json::to_string(report) {
            Ok(s) => eprintln!("{s}"),
            Err(e) => eprintln!("seqshield sandbox: error: report: {e}"),
        }
    }
    if let Some(k) = &report.killed_by {
        eprintln!("seqshield sandbox: the step was killed by the sandbox: {k}");
    }
    match (report.status.code, report.status.signal) {
        (Some(c), _) => ExitCode::from(c as u8),
        (None, Some(sig)) => {
            let _ = std::io::stdout().flush();
            seqshield_sandbox::reraise(sig);
            ExitCode::from(128 + sig as u8)
        }
        _ => ExitCode::from(EXIT_SANDBOX),
    }
}

fn write_json_atomically(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).context("temporary file")?;
    serde_json::to_writer_pretty(&mut tmp, value)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn run_insecure(ctx: &Ctx, a: RunArgs) -> ExitCode {
    eprintln!(
        "seqshield sandbox: WARNING: --insecure-no-sandbox: `{}` runs with NO isolation (no namespaces, landlock, seccomp, limits); for benchmarks only. The report records it.",
        a.step.command[0].to_string_lossy()
    );
    // Same environment as a sandboxed step, so timings compare like for like.
    let mut cmd = std::process::Command::new(&a.step.command[0]);
    cmd.args(&a.step.command[1..]).env_clear();
    cmd.env("PATH", seqshield_sandbox::SANDBOX_PATH).env("HOME", "/tmp").env("TMPDIR", "/tmp").env("LANG", "C.UTF-8");
    for e in &a.step.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    if let Some(c) = &a.step.cwd {
        cmd.current_dir(c);
    }
    let t0 = std::time::Instant::now();
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => {
            let f = if e.kind() == std::io::ErrorKind::NotFound {
                Failure {
                    status: EXIT_NOT_FOUND,
                    code: "command_not_found",
                    message: format!("{}: command not found", a.step.command[0].to_string_lossy()),
                }
            } else {
                Failure {
                    status: EXIT_CANNOT_EXECUTE,
                    code: "cannot_execute",
                    message: format!("{}: {e}", a.step.command[0].to_string_lossy()),
                }
            };
            return emit_failure(ctx, &f);
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    let report = Report {
        profile: "none (--insecure-no-sandbox)".into(),
        program: a.step.command[0].to_string_lossy().into_owned(),
        args: a.step.command.len() - 1,
        insecure: true,
        status: seqshield_sandbox::ExitStatus::from_wait(status.into_raw()),
        start_ms: 0.0,
        wall_ms,
        controls: None,
        blocked: BTreeMap::new(),
        blocked_total: 0,
        learned: None,
        killed_by: None,
        warnings: vec!["--insecure-no-sandbox: no control was applied".into()],
    };
    finish(ctx, &report, a.report.as_deref())
}

fn check(ctx: &Ctx) -> ExitCode {
    let f = seqshield_sandbox::check_features();
    if ctx.json {
        println!("{}", serde_json::to_string(&f).unwrap_or_default());
    } else {
        println!("kernel {}", f.kernel);
        for feat in &f.features {
            let mark = if feat.ok {
                "ok     "
            } else if feat.required {
                "MISSING"
            } else {
                "absent "
            };
            println!("{mark} {:<40} {}", feat.name, feat.detail);
            println!("        {}", feat.meaning);
        }
        println!(
            "{}",
            if f.ready() {
                "ready: steps run with every control"
            } else {
                "NOT READY: `seqshield sandbox run` refuses to start steps"
            }
        );
    }
    if f.ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SANDBOX)
    }
}

fn learn(ctx: &Ctx, a: LearnArgs) -> ExitCode {
    if a.output.exists() && !a.force {
        return emit_failure(
            ctx,
            &Failure {
                status: 2,
                code: "output_exists",
                message: format!("{} exists (use --force)", a.output.display()),
            },
        );
    }
    let mut sb = match build(&a.step) {
        Ok(sb) => sb,
        Err(e) => return emit_failure(ctx, &failure(e)),
    };
    sb.learn = true;
    let report = match sb.spawn(&a.step.command, Stdio::default()).and_then(|r| {
        r.forward_signals();
        r.wait()
    }) {
        Ok(r) => r,
        Err(e) => return emit_failure(ctx, &failure(e)),
    };
    let seen = report.learned.clone().unwrap_or_default();
    let command: Vec<String> = a.step.command.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let draft = seqshield_sandbox::draft_profile(&sb.profile, &seen, &command.join(" "));
    let text = match toml::to_string(&draft) {
        Ok(t) => format!(
            "# DRAFT written by `seqshield sandbox learn` from `{}`.\n# Every LEARNED entry needs a reason (or removal) before this profile is used.\n{t}",
            command.join(" ")
        ),
        Err(e) => return emit_failure(ctx, &Failure { status: EXIT_SANDBOX, code: "draft", message: e.to_string() }),
    };
    let write = (|| -> Result<()> {
        let dir = a.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&a.output).map_err(|e| e.error)?;
        Ok(())
    })();
    if let Err(e) = write {
        return emit_failure(
            ctx,
            &Failure { status: 3, code: "io", message: format!("{}: {e:#}", a.output.display()) },
        );
    }
    let calls: u64 = seen.values().sum();
    if ctx.json {
        eprintln!(
            "{}",
            serde_json::json!({"ok": true, "draft": a.output, "syscalls": seen.len(), "calls": calls, "status": report.status})
        );
    } else {
        eprintln!(
            "seqshield sandbox: learned {} distinct syscalls ({calls} calls); draft written to {}",
            seen.len(),
            a.output.display()
        );
    }
    match report.status.code {
        Some(c) => ExitCode::from(c as u8),
        None => ExitCode::from(EXIT_SANDBOX),
    }
}

fn show_profile(ctx: &Ctx, name: &str) -> ExitCode {
    let p = match Profile::load(name) {
        Ok(p) => p,
        Err(e) => return emit_failure(ctx, &failure(e)),
    };
    let total = seqshield_sandbox::syscall_names().len();
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"profile": p, "allowed": p.allowed().len(), "blocked": p.blocked_count(), "total": total})
        );
    } else {
        println!("{} — {}", p.name, p.description);
        println!("seccomp: {} of {total} x86_64 syscalls allowed, {} blocked", p.allowed().len(), p.blocked_count());
        for r in &p.seccomp.allow {
            let cond = if r.when.is_empty() { String::new() } else { " (argument conditions)".into() };
            println!("  allow {:<18} {}{cond}", r.syscall, r.reason);
        }
        for r in &p.seccomp.errno {
            println!("  {:<5} {:<18} {}", r.errno, r.syscall, r.reason);
        }
    }
    ExitCode::SUCCESS
}
