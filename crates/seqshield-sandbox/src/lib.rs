//! seqshield-sandbox: runs one untrusted pipeline step under
//! - a new user namespace mapping the step to a uid taken from a range,
//! - mount (read-only root of bind mounts, declared mounts, private tmpfs),
//!   pid, network (no interfaces), IPC, UTS and cgroup namespaces,
//! - landlock (read-only everywhere, writable only where declared),
//! - no capabilities and `no_new_privs`,
//! - rlimits and, where writable, cgroup limits,
//! - a default-deny seccomp filter compiled from a checked-in profile whose
//!   blocked calls are answered EPERM and counted by name (or kill the step).
//!
//! Linux x86_64 only. FFI is confined to `sys`.
//!
//! ```no_run
//! use seqshield_sandbox::{Profile, Sandbox, Stdio};
//! let mut sb = Sandbox::new(Profile::load("genomics-tools")?);
//! sb.mounts.push("/data/run1:/work:rw".parse()?);
//! let report = sb.run(&["bwa".into(), "mem".into(), "ref.fa".into(), "r1.fq".into()], Stdio::default())?;
//! assert!(report.status.success());
//! # Ok::<(), seqshield_sandbox::Error>(())
//! ```

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("seqshield-sandbox supports Linux on x86_64 only");

mod check;
mod landlock;
mod learn;
mod limits;
mod profile;
mod report;
mod run;
mod seccomp;
mod sys;

pub use check::{probe as check_features, Feature, Features};
pub use landlock::LandlockReport;
pub use learn::draft_profile;
pub use limits::{parse_size, CgroupReport, Limits, LIMIT_KEYS};
pub use profile::{builtin_names, AllowRule, ArgCondition, DenyAction, ErrnoRule, Profile, DEFAULT_PROFILE};
pub use report::{signal_name, Controls, ExitStatus, Report};
pub use run::{Mount, Running, Sandbox, Stdio, INSIDE_ID, SANDBOX_PATH, UID_RANGE_BASE, UID_RANGE_LEN};
pub use seccomp::syscall_name;

/// Gives the calling process a mount namespace of its own and mounts a
/// fresh tmpfs of at most `size` bytes on the existing directory `dir`
/// (mode 0700, `nosuid,nodev,noexec`): scratch space no other process on
/// the host can see, gone when the process exits. Call it before starting
/// any thread; it needs `CAP_SYS_ADMIN`.
pub fn private_tmpfs(dir: &std::path::Path, size: u64) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::private_tmpfs(&c, size)
}

/// Unmounts what [`private_tmpfs`] mounted on `dir` (its pages are freed).
pub fn unmount(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::unmount(&c)
}

/// Every x86_64 syscall name the filter knows, by number.
pub fn syscall_names() -> Vec<&'static str> {
    syscalls::x86_64::Sysno::iter().map(|s| s.name()).collect()
}

/// Re-raises a signal on this process with its default action (so that a
/// wrapper dies the way the tool died).
pub fn reraise(signal: i32) {
    sys::reraise(signal);
}

/// Sandbox errors. None of them carries file contents or secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required kernel feature is missing.
    #[error("{feature} unavailable: {detail}. {remedy}")]
    MissingFeature {
        /// Which feature.
        feature: String,
        /// What was found.
        detail: String,
        /// What the operator can do.
        remedy: String,
    },
    /// A bad profile.
    #[error("profile: {0}")]
    Profile(String),
    /// A bad request (mount, limit, command).
    #[error("{0}")]
    Usage(String),
    /// Setting up the sandbox failed.
    #[error("{0}")]
    Setup(String),
    /// An I/O error in the supervisor.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl Fn(std::io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}
