//! The per-step report: which controls were applied and what was blocked.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::landlock::LandlockReport;
use crate::limits::CgroupReport;

/// How the tool ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
    /// Signal name (`SIGKILL`).
    pub signal_name: Option<String>,
}

impl ExitStatus {
    /// From a `waitpid` status.
    pub fn from_wait(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            ExitStatus { code: Some(libc::WEXITSTATUS(status)), signal: None, signal_name: None }
        } else {
            let s = libc::WTERMSIG(status);
            ExitStatus { code: None, signal: Some(s), signal_name: Some(signal_name(s)) }
        }
    }

    /// Whether the tool exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// `SIGKILL` for 9, etc.
pub fn signal_name(s: i32) -> String {
    let n = match s {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {s}"),
    };
    n.to_string()
}

/// The user namespace.
#[derive(Debug, Clone, Serialize)]
pub struct UserReport {
    /// uid inside.
    pub uid: u32,
    /// gid inside.
    pub gid: u32,
    /// The host uid it maps to.
    pub host_uid: u32,
    /// The host gid it maps to.
    pub host_gid: u32,
    /// Where the host id came from.
    pub source: String,
}

/// A declared mount.
#[derive(Debug, Clone, Serialize)]
pub struct MountReport {
    /// Host path.
    pub src: String,
    /// Path inside.
    pub dst: String,
    /// `ro` or `rw`.
    pub mode: String,
    /// Mount options applied.
    pub options: String,
    /// Idmapping, when the mount is idmapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idmapped: Option<String>,
}

/// The mount namespace.
#[derive(Debug, Clone, Serialize)]
pub struct MountNs {
    /// How the root is built.
    pub root: String,
    /// Host paths bound read-only.
    pub ro: Vec<String>,
    /// Host symlinks recreated.
    pub symlinks: Vec<String>,
    /// Profile paths absent on this host.
    pub skipped: Vec<String>,
    /// Declared mounts.
    pub mounts: Vec<MountReport>,
    /// The private /tmp.
    pub tmp: String,
    /// Device nodes.
    pub dev: Vec<String>,
    /// /proc.
    pub proc: String,
}

/// Capabilities.
#[derive(Debug, Clone, Serialize)]
pub struct CapReport {
    /// Kept by the profile.
    pub kept: Vec<String>,
    /// Bounding set.
    pub bounding: String,
    /// Ambient set.
    pub ambient: String,
    /// Effective, permitted and inheritable sets.
    pub effective_permitted_inheritable: String,
}

/// seccomp.
#[derive(Debug, Clone, Serialize)]
pub struct SeccompReport {
    /// Profile name.
    pub profile: String,
    /// default deny, or learning.
    pub mode: String,
    /// What a blocked call gets.
    pub action: String,
    /// Syscalls allowed (some with argument conditions).
    pub allowed: usize,
    /// Syscalls blocked.
    pub blocked: usize,
    /// x86_64 syscalls in the table.
    pub total: usize,
    /// Calls answered with a fixed errno.
    pub errno_rules: Vec<String>,
    /// BPF instructions.
    pub instructions: usize,
}

/// Every control applied to the step.
#[derive(Debug, Clone, Serialize)]
pub struct Controls {
    /// User namespace.
    pub user_namespace: UserReport,
    /// Mount namespace.
    pub mount_namespace: MountNs,
    /// PID namespace.
    pub pid_namespace: String,
    /// Network.
    pub network: String,
    /// IPC namespace.
    pub ipc_namespace: bool,
    /// UTS namespace.
    pub uts_namespace: String,
    /// cgroup namespace.
    pub cgroup_namespace: bool,
    /// Landlock.
    pub landlock: LandlockReport,
    /// Capabilities.
    pub capabilities: CapReport,
    /// no_new_privs.
    pub no_new_privs: bool,
    /// rlimits set (soft = hard).
    pub rlimits: BTreeMap<String, u64>,
    /// cgroup limits.
    pub cgroup: CgroupReport,
    /// seccomp.
    pub seccomp: SeccompReport,
    /// Inherited descriptors.
    pub fds: String,
}

/// The report for one step.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Profile name.
    pub profile: String,
    /// Program (argv\[0\]); arguments are not recorded, only counted.
    pub program: String,
    /// Number of arguments.
    pub args: usize,
    /// True when the step ran with `--insecure-no-sandbox`.
    pub insecure: bool,
    /// How the tool ended.
    pub status: ExitStatus,
    /// Milliseconds from the start request to the tool's exec.
    pub start_ms: f64,
    /// Milliseconds from the start request to the end.
    pub wall_ms: f64,
    /// Controls applied (absent when insecure).
    pub controls: Option<Controls>,
    /// Blocked calls by syscall name.
    pub blocked: BTreeMap<String, u64>,
    /// Sum of `blocked`.
    pub blocked_total: u64,
    /// Learning mode: every call seen, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<BTreeMap<String, u64>>,
    /// Why the step was killed by the sandbox, if it was.
    pub killed_by: Option<String>,
    /// Anything the operator should know.
    pub warnings: Vec<String>,
}
