//! Every system call the sandbox makes that std does not wrap: the only
//! module with unsafe code. Each block says why it is sound.
//!
//! The step is started with a fork-like `clone(2)` from a process that may
//! have other threads, so everything the child does between `clone` and
//! `execve` is async-signal-safe: raw system calls on data prepared before
//! the clone, no allocation, no locks, no unwinding. Failures in the child
//! are written to a pipe as a fixed-size record and the child `_exit`s.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::seccomp::Filter;

// ---------------------------------------------------------------- constants

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;

/// `MOUNT_ATTR_*` bits for mount_setattr(2).
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

const SECCOMP_SET_MODE_FILTER: u32 = 1;
const SECCOMP_GET_NOTIF_SIZES: u32 = 3;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;

const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

#[repr(C)]
struct LandlockRulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct LandlockPathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const libc::sock_filter,
}

#[repr(C)]
struct SeccompNotifSizes {
    seccomp_notif: u16,
    seccomp_notif_resp: u16,
    seccomp_data: u16,
}

#[repr(C)]
#[derive(Default)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// ----------------------------------------------------------- capabilities

const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability name (`CAP_CHOWN` or `chown`).
pub(crate) fn capability_number(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    CAP_NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The highest capability this kernel knows.
pub(crate) fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

// ------------------------------------------------------------ the plan

/// One step of building the new root, run by the init process.
#[derive(Debug)]
pub(crate) enum MountOp {
    /// mount a tmpfs at `target` with options `data`, then (after the ops
    /// that fill it) nothing: read-only is applied by `SetAttr`.
    Tmpfs { target: CString, data: CString, flags: u64 },
    /// mkdir(path, 0755)
    Mkdir { path: CString },
    /// create an empty file to mount over
    Touch { path: CString },
    /// symlink(target, link)
    Symlink { target: CString, link: CString },
    /// write a small file (mode 0644)
    WriteFile { path: CString, contents: Vec<u8> },
    /// attach the detached mount in `slot` at `dst`
    Attach { slot: usize, dst: CString },
    /// mount a new procfs
    Proc { target: CString },
    /// mount_setattr on a mounted path
    SetAttr { path: CString, set: u64 },
}

/// A bind source the init process clones itself (read-only system paths
/// and devices), or one the parent already cloned (idmapped work mounts).
#[derive(Debug)]
pub(crate) enum BindSource {
    /// open_tree + mount_setattr in the child
    Path { src: CString, attr: u64 },
    /// a detached mount fd the parent made (inherited across clone)
    Fd(RawFd),
}

/// Landlock rules to apply in the tool process after the pivot.
#[derive(Debug)]
pub(crate) struct LandlockPlan {
    pub(crate) attr_size: usize,
    pub(crate) handled_fs: u64,
    pub(crate) handled_net: u64,
    pub(crate) scoped: u64,
    pub(crate) rules: Vec<(CString, u64)>,
}

/// Everything the child needs, prepared before the clone.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    /// Descriptors the child keeps (sorted, all >= 3); every other one
    /// above 2 is closed first thing.
    pub(crate) keep_fds: Vec<RawFd>,
    pub(crate) sync_rd: RawFd,
    pub(crate) err_wr: RawFd,
    pub(crate) status_wr: RawFd,
    pub(crate) notif_sock: RawFd,
    /// Descriptors to install as the tool's stdin, stdout, stderr (-1: keep).
    pub(crate) stdio: [RawFd; 3],
    pub(crate) binds: Vec<BindSource>,
    pub(crate) base: CString,
    pub(crate) base_data: CString,
    pub(crate) ops: Vec<MountOp>,
    pub(crate) hostname: CString,
    pub(crate) setgroups: bool,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) rlimits: Vec<(u32, u64)>,
    pub(crate) cap_last: u32,
    pub(crate) keep_caps: u64,
    pub(crate) cwd: CString,
    pub(crate) landlock: Option<LandlockPlan>,
    pub(crate) filter: Option<Filter>,
    pub(crate) exec_paths: Vec<CString>,
    pub(crate) argv: Vec<*const libc::c_char>,
    pub(crate) envp: Vec<*const libc::c_char>,
    /// Keeps the strings behind argv/envp alive.
    pub(crate) _strings: Vec<CString>,
}

macro_rules! stages {
    ($($name:ident),* $(,)?) => {
        /// Where in the child a failure happened (written to the error pipe).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub(crate) enum Stage { $($name),* }

        impl Stage {
            pub(crate) fn from_u32(v: u32) -> Option<Stage> {
                [$(Stage::$name),*].into_iter().find(|s| *s as u32 == v)
            }
        }
    };
}

stages!(
    Sync,
    Setgroups,
    MakePrivate,
    CloneBind,
    BindAttr,
    BaseTmpfs,
    MountOp,
    Pivot,
    Hostname,
    ForkTool,
    Setsid,
    Rlimit,
    CapBound,
    Setgid,
    Setuid,
    Capset,
    Ambient,
    Chdir,
    NoNewPrivs,
    LandlockCreate,
    LandlockRule,
    LandlockRestrict,
    SeccompInstall,
    SeccompHandover,
    Exec,
);

/// The most bind mounts one step may have (profile paths, devices and
/// declared mounts together).
pub(crate) const MAX_BINDS: usize = 128;

/// The record a failing child writes: stage, index (op or rule), errno.
pub(crate) const ERR_RECORD: usize = 12;

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Writes the failure record and exits. Async-signal-safe.
fn fail(fd: RawFd, stage: Stage, index: usize, err: i32) -> ! {
    let mut rec = [0u8; ERR_RECORD];
    rec[0..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    rec[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
    rec[8..12].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: rec is a live local buffer of ERR_RECORD bytes; _exit never returns.
    unsafe {
        libc::write(fd, rec.as_ptr().cast(), ERR_RECORD);
        libc::_exit(127)
    }
}

macro_rules! check {
    ($plan:expr, $stage:expr, $idx:expr, $call:expr) => {{
        let r = $call;
        if r < 0 {
            fail($plan.err_wr, $stage, $idx, errno());
        }
        r
    }};
}

// ------------------------------------------------------------ spawning

/// The pid and pidfd of the step's init process.
pub(crate) struct Spawned {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
}

/// Clones the init process with `flags` (namespace flags); the child runs
/// `plan` and never returns.
pub(crate) fn spawn(plan: &ChildPlan, flags: i32) -> io::Result<Spawned> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: a fork-like clone (no new stack: the child continues on a
    // copy of this stack). CLONE_PIDFD stores the pidfd in `pidfd`, a live
    // local. The child only runs `child_init`, which is async-signal-safe
    // and ends in _exit or execve, so it never returns into Rust code that
    // could observe the duplicated state of other threads.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        child_init(plan);
    }
    // SAFETY: the kernel returned a new pidfd owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Spawned { pid: pid as i32, pidfd })
}

static TOOL_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_to_tool(sig: libc::c_int) {
    let pid = TOOL_PID.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

const FORWARDED: [libc::c_int; 6] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: sigaction with a zeroed struct and a valid handler value
    // (SIG_DFL or an extern "C" fn(c_int)); async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Installs handlers in this process that forward SIGTERM, SIGINT, SIGHUP,
/// SIGQUIT, SIGUSR1 and SIGUSR2 to `pid` (the step's init, which passes them
/// on to the tool).
pub(crate) fn forward_signals_to(pid: i32) {
    TOOL_PID.store(pid, std::sync::atomic::Ordering::Relaxed);
    for s in FORWARDED {
        set_handler(s, forward_to_tool as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

/// Restores the default disposition of `sig` and raises it on this process
/// (to die the way the tool died).
pub(crate) fn reraise(sig: i32) {
    set_handler(sig, libc::SIG_DFL);
    // SAFETY: raise with a valid signal number.
    unsafe { libc::raise(sig) };
}

fn child_init(plan: &ChildPlan) -> ! {
    // SAFETY: (whole function) only async-signal-safe raw system calls on
    // pointers into `plan`, which the parent keeps alive and unchanged (the
    // child has its own copy of the address space).
    unsafe {
        // Keep only what this step needs: stdio, its own pipes, its bind
        // descriptors. Anything else open in the parent (another step's
        // pipes, started from another thread) must not be held by us.
        let mut lo: u32 = 3;
        for fd in &plan.keep_fds {
            let fd = *fd as u32;
            if fd > lo {
                libc::syscall(libc::SYS_close_range, lo, fd - 1, 0u32);
            }
            lo = lo.max(fd + 1);
        }
        libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        for s in FORWARDED {
            set_handler(s, forward_to_tool as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
        // Wait for the parent: uid/gid maps and cgroups are in place.
        let mut b = [0u8; 1];
        if libc::read(plan.sync_rd, b.as_mut_ptr().cast(), 1) != 1 {
            fail(plan.err_wr, Stage::Sync, 0, errno());
        }
        libc::close(plan.sync_rd);
        if plan.setgroups {
            check!(
                plan,
                Stage::Setgroups,
                0,
                libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>())
            );
        }
        // Become the step's (mapped) uid now: files the set-up creates need
        // an owner the namespace can represent. The capabilities this
        // process holds in its new user namespace survive the change, since
        // its old uid is not the namespace's root.
        check!(plan, Stage::Setgid, 0, libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid));
        check!(plan, Stage::Setuid, 0, libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid));
        check!(
            plan,
            Stage::MakePrivate,
            0,
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            )
        );
        // Clone every bind source before the base tmpfs hides anything.
        let mut slots: [RawFd; MAX_BINDS] = [-1; MAX_BINDS];
        for (i, b) in plan.binds.iter().enumerate().take(MAX_BINDS) {
            match b {
                BindSource::Fd(fd) => slots[i] = *fd,
                BindSource::Path { src, attr } => {
                    let fd = libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        src.as_ptr(),
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
                    ) as i32;
                    if fd < 0 {
                        fail(plan.err_wr, Stage::CloneBind, i, errno());
                    }
                    let ma = MountAttr { attr_set: *attr, attr_clr: 0, propagation: libc::MS_PRIVATE, userns_fd: 0 };
                    check!(
                        plan,
                        Stage::BindAttr,
                        i,
                        libc::syscall(
                            libc::SYS_mount_setattr,
                            fd,
                            c"".as_ptr(),
                            libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE,
                            &ma as *const MountAttr,
                            std::mem::size_of::<MountAttr>()
                        )
                    );
                    slots[i] = fd;
                }
            }
        }
        check!(
            plan,
            Stage::BaseTmpfs,
            0,
            libc::mount(
                c"tmpfs".as_ptr(),
                plan.base.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                plan.base_data.as_ptr().cast()
            )
        );
        for (i, op) in plan.ops.iter().enumerate() {
            let r: i64 = match op {
                MountOp::Tmpfs { target, data, flags } => {
                    libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), *flags, data.as_ptr().cast())
                        as i64
                }
                MountOp::Mkdir { path } => {
                    let r = libc::mkdir(path.as_ptr(), 0o755);
                    if r < 0 && errno() == libc::EEXIST {
                        0
                    } else {
                        r as i64
                    }
                }
                MountOp::Touch { path } => {
                    let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    fd as i64
                }
                MountOp::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()) as i64,
                MountOp::WriteFile { path, contents } => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_EXCL,
                        0o644,
                    );
                    if fd >= 0 {
                        let w = libc::write(fd, contents.as_ptr().cast(), contents.len());
                        libc::close(fd);
                        if w != contents.len() as isize {
                            -1
                        } else {
                            0
                        }
                    } else {
                        -1
                    }
                }
                MountOp::Attach { slot, dst } => {
                    let fd = slots[*slot % MAX_BINDS];
                    let r = libc::syscall(
                        libc::SYS_move_mount,
                        fd,
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        dst.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    );
                    libc::close(fd);
                    r
                }
                MountOp::Proc { target } => libc::mount(
                    c"proc".as_ptr(),
                    target.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) as i64,
                MountOp::SetAttr { path, set } => {
                    let ma = MountAttr { attr_set: *set, attr_clr: 0, propagation: 0, userns_fd: 0 };
                    libc::syscall(
                        libc::SYS_mount_setattr,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        0u32,
                        &ma as *const MountAttr,
                        std::mem::size_of::<MountAttr>(),
                    )
                }
            };
            if r < 0 {
                fail(plan.err_wr, Stage::MountOp, i, errno());
            }
        }
        // Pivot into the new root and drop the old one.
        check!(plan, Stage::Pivot, 0, libc::chdir(plan.base.as_ptr()));
        check!(plan, Stage::Pivot, 1, libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()));
        check!(plan, Stage::Pivot, 2, libc::umount2(c".".as_ptr(), libc::MNT_DETACH));
        check!(plan, Stage::Pivot, 3, libc::chdir(c"/".as_ptr()));
        let ma = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        check!(
            plan,
            Stage::Pivot,
            4,
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                0u32,
                &ma as *const MountAttr,
                std::mem::size_of::<MountAttr>()
            )
        );
        check!(plan, Stage::Hostname, 0, libc::sethostname(plan.hostname.as_ptr(), plan.hostname.as_bytes().len()));

        // A raw clone, not fork(3): glibc's fork takes locks (malloc, stdio)
        // that another thread of our parent may have held when we were
        // cloned, and would wait for them forever. For the same reason the
        // id changes above are raw system calls, not glibc's set*id, which
        // signal every thread glibc believes exists.
        let tool = raw_clone(0).unwrap_or(-1);
        if tool < 0 {
            fail(plan.err_wr, Stage::ForkTool, 0, errno());
        }
        if tool == 0 {
            tool_exec(plan);
        }
        TOOL_PID.store(tool, std::sync::atomic::Ordering::Relaxed);
        // The init keeps nothing it does not need, and no privilege.
        libc::close(plan.err_wr);
        libc::close(plan.notif_sock);
        if libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) < 0
            || libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) < 0
        {
            libc::kill(tool, libc::SIGKILL);
            libc::_exit(126);
        }
        for cap in 0..=plan.cap_last {
            libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
        }
        let hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
        libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr());
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        // Reap everything; when the tool ends, report its status and leave
        // (the kernel then kills whatever else is left in the namespace).
        loop {
            let mut status: libc::c_int = 0;
            let r = libc::waitpid(-1, &mut status, 0);
            if r == tool {
                let bytes = status.to_ne_bytes();
                libc::write(plan.status_wr, bytes.as_ptr().cast(), 4);
                libc::_exit(0);
            }
            if r < 0 && errno() != libc::EINTR {
                libc::_exit(126);
            }
        }
    }
}

fn tool_exec(plan: &ChildPlan) -> ! {
    // SAFETY: (whole function) as in child_init: raw, async-signal-safe
    // system calls on data prepared by the parent; ends in execve or _exit.
    unsafe {
        check!(plan, Stage::Setsid, 0, libc::setsid());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::close(plan.status_wr);
        for (target, fd) in plan.stdio.iter().enumerate() {
            if *fd >= 0 && libc::dup2(*fd, target as i32) < 0 {
                fail(plan.err_wr, Stage::Setsid, 1, errno());
            }
        }
        // Signals: default dispositions (the parent may ignore SIGPIPE) and
        // an empty mask, as a freshly started program expects.
        for s in 1..=64 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                set_handler(s, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());

        for (i, (res, v)) in plan.rlimits.iter().enumerate() {
            let rl = libc::rlimit { rlim_cur: *v, rlim_max: *v };
            check!(plan, Stage::Rlimit, i, libc::setrlimit(*res, &rl));
        }
        for cap in 0..=plan.cap_last {
            if plan.keep_caps & (1u64 << cap) == 0 {
                check!(
                    plan,
                    Stage::CapBound,
                    cap as usize,
                    libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
                );
            }
        }
        check!(plan, Stage::Setgid, 0, libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid));
        check!(plan, Stage::Setuid, 0, libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid));
        let keep_lo = (plan.keep_caps & 0xffff_ffff) as u32;
        let keep_hi = (plan.keep_caps >> 32) as u32;
        let hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let data = [
            CapData { effective: keep_lo, permitted: keep_lo, inheritable: keep_lo },
            CapData { effective: keep_hi, permitted: keep_hi, inheritable: keep_hi },
        ];
        check!(plan, Stage::Capset, 0, libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()));
        check!(plan, Stage::Ambient, 0, libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
        for cap in 0..=plan.cap_last {
            if plan.keep_caps & (1u64 << cap) != 0 {
                check!(
                    plan,
                    Stage::Ambient,
                    cap as usize,
                    libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap as libc::c_ulong, 0, 0)
                );
            }
        }
        check!(plan, Stage::Chdir, 0, libc::chdir(plan.cwd.as_ptr()));
        check!(plan, Stage::NoNewPrivs, 0, libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));

        if let Some(ll) = &plan.landlock {
            let attr = LandlockRulesetAttr {
                handled_access_fs: ll.handled_fs,
                handled_access_net: ll.handled_net,
                scoped: ll.scoped,
            };
            let rs = libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const LandlockRulesetAttr,
                ll.attr_size,
                0u32,
            ) as i32;
            if rs < 0 {
                fail(plan.err_wr, Stage::LandlockCreate, 0, errno());
            }
            for (i, (path, access)) in ll.rules.iter().enumerate() {
                let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                if fd < 0 {
                    fail(plan.err_wr, Stage::LandlockRule, i, errno());
                }
                let pb = LandlockPathBeneathAttr { allowed_access: *access, parent_fd: fd };
                check!(
                    plan,
                    Stage::LandlockRule,
                    i,
                    libc::syscall(
                        libc::SYS_landlock_add_rule,
                        rs,
                        LANDLOCK_RULE_PATH_BENEATH,
                        &pb as *const LandlockPathBeneathAttr,
                        0u32
                    )
                );
                libc::close(fd);
            }
            check!(plan, Stage::LandlockRestrict, 0, libc::syscall(libc::SYS_landlock_restrict_self, rs, 0u32));
            libc::close(rs);
        }
        // No descriptor of the host survives exec except stdio.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);

        if let Some(f) = &plan.filter {
            let prog = SockFprog { len: f.insns.len() as u16, filter: f.insns.as_ptr() };
            let listener = libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const SockFprog,
            ) as i32;
            if listener < 0 {
                fail(plan.err_wr, Stage::SeccompInstall, 0, errno());
            }
            // Hand the listener to the supervisor: it takes it with
            // pidfd_getfd (finding us by the credentials the kernel attaches
            // to this message) and acknowledges. Only write, read and execve
            // run under the filter before the tool starts.
            let n = listener.to_ne_bytes();
            if libc::write(plan.notif_sock, n.as_ptr().cast(), 4) != 4 {
                fail(plan.err_wr, Stage::SeccompHandover, 0, errno());
            }
            let mut ack = [0u8; 1];
            if libc::read(plan.notif_sock, ack.as_mut_ptr().cast(), 1) != 1 {
                fail(plan.err_wr, Stage::SeccompHandover, 1, errno());
            }
        }
        let mut last = libc::ENOENT;
        for p in &plan.exec_paths {
            libc::execve(p.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
            let e = errno();
            if e != libc::ENOENT && e != libc::ENOTDIR {
                last = e;
                break;
            }
        }
        fail(plan.err_wr, Stage::Exec, 0, last)
    }
}

// ------------------------------------------------------- parent-side calls

/// A pipe, both ends close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid [c_int; 2].
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A SOCK_SEQPACKET socket pair, close-on-exec; `first` gets SO_PASSCRED.
pub(crate) fn cred_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid [c_int; 2].
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two new descriptors we own.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a valid int option value.
    if unsafe {
        libc::setsockopt(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PASSCRED, (&one as *const libc::c_int).cast(), 4)
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((a, b))
}

/// Receives the tool's seccomp listener: reads the descriptor number and
/// the sender's pid (from SCM_CREDENTIALS), duplicates the descriptor with
/// pidfd_getfd, and acknowledges.
pub(crate) fn receive_listener(sock: &OwnedFd) -> io::Result<OwnedFd> {
    let mut num = [0u8; 4];
    let mut iov = libc::iovec { iov_base: num.as_mut_ptr().cast(), iov_len: 4 };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr zeroed then pointed at live local buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: recvmsg into the buffers above.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n != 4 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the step ended before handing over its seccomp listener",
        ));
    }
    let mut pid = 0;
    // SAFETY: walking the control messages the kernel wrote into cbuf with
    // the CMSG_* helpers, reading a ucred only from an SCM_CREDENTIALS one.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                pid = cred.pid;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if pid <= 0 {
        return Err(io::Error::other("no sender credentials on the seccomp hand-over"));
    }
    let fdnum = i32::from_ne_bytes(num);
    // SAFETY: pidfd_open on a pid; returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) } as i32;
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pidfd is new and ours.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: pidfd_getfd duplicates the target's descriptor into ours.
    let l = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fdnum, 0u32) } as i32;
    if l < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let listener = unsafe { OwnedFd::from_raw_fd(l) };
    // SAFETY: write one byte from a live buffer.
    if unsafe { libc::write(sock.as_raw_fd(), [1u8].as_ptr().cast(), 1) } != 1 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// One user notification: its id and syscall number.
pub(crate) struct Notification {
    pub(crate) id: u64,
    pub(crate) nr: i32,
    pub(crate) pid: u32,
}

/// Waits for the next notification; `None` when every task using the
/// filter has gone.
pub(crate) fn notif_recv(listener: &OwnedFd) -> io::Result<Option<Notification>> {
    let size = notif_size();
    loop {
        let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        if pfd.revents & libc::POLLIN == 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return Ok(None);
        }
        // The kernel may use a larger struct than libc's; receive into a
        // zeroed buffer of the size it reports.
        let mut buf = vec![0u64; size.div_ceil(8)];
        // SAFETY: NOTIF_RECV writes at most `size` bytes into buf.
        let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, buf.as_mut_ptr()) };
        if r < 0 {
            match errno() {
                libc::EINTR | libc::ENOENT => continue, // the caller died meanwhile
                _ => return Err(io::Error::last_os_error()),
            }
        }
        // SAFETY: buf holds a seccomp_notif written by the kernel.
        let n: libc::seccomp_notif = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        return Ok(Some(Notification { id: n.id, nr: n.data.nr, pid: n.pid }));
    }
}

/// The kernel's `struct seccomp_notif` size (asked once), at least libc's.
fn notif_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let mut sizes = SeccompNotifSizes { seccomp_notif: 0, seccomp_notif_resp: 0, seccomp_data: 0 };
        // SAFETY: SECCOMP_GET_NOTIF_SIZES fills the struct.
        unsafe {
            libc::syscall(libc::SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0u32, &mut sizes as *mut SeccompNotifSizes)
        };
        (sizes.seccomp_notif as usize).max(std::mem::size_of::<libc::seccomp_notif>())
    })
}

/// Answers a notification: fail with `error` (a positive errno), or let the
/// call run (`cont`, learning mode only).
pub(crate) fn notif_send(listener: &OwnedFd, id: u64, error: i32, cont: bool) -> io::Result<()> {
    let mut resp = SeccompNotifResp { id, ..Default::default() };
    if cont {
        resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
    } else {
        resp.error = -error;
    }
    // SAFETY: NOTIF_SEND reads the response struct.
    let r = unsafe {
        libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp as *mut SeccompNotifResp)
    };
    if r < 0 && errno() != libc::ENOENT {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sig` to a pid.
pub(crate) fn kill(pid: i32, sig: i32) {
    // SAFETY: kill with plain integers.
    unsafe { libc::kill(pid, sig) };
}

/// Waits for the process behind `pidfd` to exit; returns its wait status
/// in the `waitpid` encoding.
pub(crate) fn wait_pidfd(pidfd: &OwnedFd) -> io::Result<i32> {
    loop {
        // SAFETY: siginfo zeroed; waitid writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(P_PIDFD) on our pidfd.
        let r = unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED) };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        // SAFETY: si_code and si_status are valid after a WEXITED waitid.
        let (code, status) = unsafe { (info.si_code, info.si_status()) };
        return Ok(if code == libc::CLD_EXITED { (status & 0xff) << 8 } else { status & 0x7f });
    }
}

/// The landlock ABI version, or the errno that says why there is none.
pub(crate) fn landlock_abi() -> Result<i32, i32> {
    // SAFETY: the version query takes no pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as i32)
    }
}

/// Writes `/proc/PID/{uid_map,setgroups,gid_map}`.
pub(crate) fn write_id_maps(pid: i32, uid_map: &str, gid_map: &str, deny_setgroups: bool) -> io::Result<()> {
    let base = format!("/proc/{pid}");
    std::fs::write(format!("{base}/uid_map"), uid_map)?;
    if deny_setgroups {
        std::fs::write(format!("{base}/setgroups"), "deny")?;
    }
    std::fs::write(format!("{base}/gid_map"), gid_map)?;
    Ok(())
}

/// An open-file-description lock on one byte of `file`: taken without
/// waiting; released when the descriptor closes (also if we die).
pub(crate) fn try_lock_byte(file: &std::fs::File, offset: u64) -> io::Result<bool> {
    // SAFETY: a zeroed flock then filled in; F_OFD_SETLK reads it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = offset as i64;
    fl.l_len = 1;
    // SAFETY: fcntl on an open file with a valid flock.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if r == 0 {
        Ok(true)
    } else if matches!(errno(), libc::EAGAIN | libc::EACCES) {
        Ok(false)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A fork-like `clone(2)` with extra `flags` (SIGCHLD on exit), returning 0
/// in the child. Not fork(3): no atfork handlers, no glibc locks, so it is
/// safe in a child of a threaded process. The caller's child must only make
/// async-signal-safe calls and end in `_exit` or `execve`.
fn raw_clone(flags: i32) -> io::Result<libc::pid_t> {
    // SAFETY: no new stack (the child runs on a copy of this one) and no
    // pointers; what the child does is the caller's contract above.
    let pid = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid as libc::pid_t)
    }
}

/// Makes a detached, recursive clone of `src` whose files owned by
/// `owner_uid:owner_gid` appear (and are created) as `uid:gid`: an idmapped
/// mount, so that a step running as a uid from the range can write in a
/// directory the operator owns, and what it writes lands on disk owned by
/// the operator. Needs CAP_SYS_ADMIN (root) and a file system that supports
/// idmapped mounts.
pub(crate) fn idmapped_clone(src: &CStr, owner: (u32, u32), step: (u32, u32), attr: u64) -> io::Result<OwnedFd> {
    // A throw-away user namespace carrying the mapping: a child that waits
    // on a pipe while we write its maps and open its namespace.
    let (rd, wr) = pipe()?;
    let rd_raw = rd.as_raw_fd();
    let wr_raw = wr.as_raw_fd();
    let pid = raw_clone(libc::CLONE_NEWUSER)?;
    if pid == 0 {
        // SAFETY: async-signal-safe close, read and _exit only. Our copy of
        // the write end must go, or the read would never see EOF.
        unsafe {
            libc::close(wr_raw);
            let mut b = [0u8; 1];
            libc::read(rd_raw, b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    drop(rd);
    let result = (|| {
        write_id_maps(pid, &format!("{} {} 1\n", owner.0, step.0), &format!("{} {} 1\n", owner.1, step.1), true)?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        // SAFETY: open_tree on a valid C string path.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                src.as_ptr(),
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
            )
        } as i32;
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ma = MountAttr {
            attr_set: attr | MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: libc::MS_PRIVATE,
            userns_fd: ns.as_raw_fd() as u64,
        };
        // SAFETY: mount_setattr on our detached mount with a valid attr.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH as u32,
                &ma as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    })();
    drop(wr);
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    result
}

/// Whether this kernel has seccomp (`PR_GET_SECCOMP` answers).
pub(crate) fn seccomp_filter_available() -> bool {
    // SAFETY: prctl query without side effects.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// Whether the kernel supports seccomp user notification (it reports a
/// non-zero notification size).
pub(crate) fn seccomp_notif_supported() -> bool {
    let mut sizes = SeccompNotifSizes { seccomp_notif: 0, seccomp_notif_resp: 0, seccomp_data: 0 };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES fills the struct.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0u32, &mut sizes as *mut SeccompNotifSizes)
    };
    r == 0 && sizes.seccomp_notif > 0
}

/// The process's effective uid and gid.
pub(crate) fn euid_egid() -> (u32, u32) {
    // SAFETY: getters without arguments.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Whether this process can create a user namespace right now (a child
/// that is cloned into one and exits at once).
pub(crate) fn userns_works() -> Result<(), i32> {
    let pid = raw_clone(libc::CLONE_NEWUSER).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    if pid == 0 {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(0) };
    }
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    Ok(())
}

// ---------------------------------------------------------------- scratch

/// Moves the calling process into a mount namespace of its own (mounts made
/// afterwards are invisible to the rest of the host and vanish with it) and
/// mounts a fresh tmpfs on `dir` (mode 0700, `nosuid,nodev,noexec`, at
/// most `size` bytes). The process must not have other threads yet.
pub(crate) fn private_tmpfs(dir: &CStr, size: u64) -> io::Result<()> {
    // SAFETY: unshare takes only flags; it affects this (single-threaded)
    // process and fails cleanly otherwise.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: NUL-terminated literals; null source and data are allowed for
    // a propagation change.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let data =
        CString::new(format!("mode=0700,size={size}")).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            c"seqshield-scratch".as_ptr(),
            dir.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts `dir` (the private scratch tmpfs), detaching it if busy.
pub(crate) fn unmount(dir: &CStr) -> io::Result<()> {
    // SAFETY: a NUL-terminated path that outlives the call.
    if unsafe { libc::umount2(dir.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
