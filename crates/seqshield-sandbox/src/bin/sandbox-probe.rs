//! `sandbox-probe`: the attacker binary of the sandbox escape tests.
//!
//! Every run performs one named escape attempt and reports how far it got.
//! The escape test runs each attempt twice: bare (directly on the host, as
//! root) where it must get `escaped` or `reached`, and inside the sandbox
//! where it must get `blocked`.
//!
//! # Interface
//!
//! * `sandbox-probe list` prints every attempt name, one per line, in a
//!   stable order.
//! * `sandbox-probe describe` prints a JSON array of
//!   `{"name", "category", "what", "bare_note"}` objects.
//! * `sandbox-probe ATTEMPT` performs one attempt and prints exactly one JSON
//!   line `{"attempt", "outcome", "detail"}` on stdout. Exit status: 0
//!   escaped, 10 reached, 20 blocked, 2 unknown attempt or missing context,
//!   3 probe error (setup failure or an errno that is neither success nor a
//!   recognised refusal; the message goes to stderr and stdout stays empty).
//!
//! Outcomes: `escaped` means the forbidden thing fully happened; `reached`
//! means the call got past every permission check and then failed for
//! another reason (deliberately invalid arguments are used for anything that
//! would be destructive on the host); `blocked` means it was refused.
//!
//! Context comes from the environment: `PROBE_WORK`, `PROBE_RO`,
//! `PROBE_OUTSIDE`, `PROBE_PID`, `PROBE_PORT`, `PROBE_UNIX`,
//! `PROBE_ABSTRACT`, `PROBE_SETUID` and `PROBE_SYMLINK` (see the crate's
//! escape test). The hidden subcommand `whoami-euid` prints the effective uid
//! and exits 0; the setuid and argument-list attempts exec it.
//!
//! Every attempt is safe to run bare as root: scratch files are removed,
//! mounts unmounted, children killed and reaped, the clock and hostname set
//! to their current values, and dangerous calls (module loading, kexec,
//! reboot, swapon, acct, pivot_root, quotactl) get arguments the kernel
//! rejects only after its permission checks.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::{Path, PathBuf};
use std::ptr;

use libc::{c_char, c_int, c_long, c_void};

// ---------------------------------------------------------------------------
// Outcomes and errors
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Escaped,
    Reached,
    Blocked,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Escaped => "escaped",
            Outcome::Reached => "reached",
            Outcome::Blocked => "blocked",
        }
    }

    fn code(self) -> i32 {
        match self {
            Outcome::Escaped => 0,
            Outcome::Reached => 10,
            Outcome::Blocked => 20,
        }
    }
}

struct Report {
    outcome: Outcome,
    detail: String,
}

enum Fail {
    /// Exit 2: a context variable is missing or malformed.
    Usage(String),
    /// Exit 3: the probe itself failed, or an errno was not understood.
    Probe(String),
}

type Res = Result<Report, Fail>;

fn escaped(detail: impl Into<String>) -> Res {
    Ok(Report { outcome: Outcome::Escaped, detail: detail.into() })
}

fn reached(detail: impl Into<String>) -> Res {
    Ok(Report { outcome: Outcome::Reached, detail: detail.into() })
}

fn blocked(detail: impl Into<String>) -> Res {
    Ok(Report { outcome: Outcome::Blocked, detail: detail.into() })
}

fn probe(detail: impl Into<String>) -> Fail {
    Fail::Probe(detail.into())
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The errno of an `io::Error`; 0 (never a refusal) for non-OS errors.
fn os(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn ename(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::ENOTBLK => "ENOTBLK",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::EDEADLK => "EDEADLK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOLCK => "ENOLCK",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENOMSG => "ENOMSG",
        libc::ENODATA => "ENODATA",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EBADMSG => "EBADMSG",
        libc::EUSERS => "EUSERS",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ESTALE => "ESTALE",
        libc::EDQUOT => "EDQUOT",
        libc::ENOMEDIUM => "ENOMEDIUM",
        libc::ECANCELED => "ECANCELED",
        libc::ENOKEY => "ENOKEY",
        libc::EKEYEXPIRED => "EKEYEXPIRED",
        libc::EKEYREVOKED => "EKEYREVOKED",
        libc::EKEYREJECTED => "EKEYREJECTED",
        0 => "not an OS error",
        _ => "E?",
    }
}

fn etext(op: &str, e: i32) -> String {
    format!("{op}: {} ({e})", ename(e))
}

/// Refusals for every attempt.
const REFUSED: &[i32] = &[libc::EPERM, libc::EACCES, libc::EROFS];
/// The target is not visible (not mounted, other pid namespace...).
const HIDDEN: &[i32] = &[libc::ENOENT, libc::ESRCH, libc::ENOTDIR];
/// A resource limit (rlimit, cgroup, quota, size of a mount) said no.
const LIMITS: &[i32] = &[
    libc::EAGAIN,
    libc::ENOMEM,
    libc::EFBIG,
    libc::ENOSPC,
    libc::EDQUOT,
    libc::E2BIG,
    libc::EMFILE,
    libc::ENFILE,
    libc::EUSERS,
];
/// The network target is not reachable from this network namespace.
const NET: &[i32] = &[libc::ENETUNREACH, libc::ENETDOWN, libc::EHOSTUNREACH, libc::ECONNREFUSED, libc::EADDRNOTAVAIL];

/// Whether a seccomp filter is installed on this thread. When one is, an
/// ENOSYS or EAFNOSUPPORT may be its answer; without one, such an errno
/// means the kernel itself lacks the feature.
fn seccomp_filtered() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers; it only reports this
    // thread's seccomp mode (an error, e.g. from a filter, counts as one).
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    mode != 0
}

/// Classifies a failed call. `reached_on` lists errnos that the kernel only
/// returns after the permission checks passed (for the deliberately invalid
/// arguments of that attempt); `blocked_on` adds errnos that are refusals
/// for this attempt on top of EPERM, EACCES and EROFS. Everything else is a
/// probe error, never a silent "blocked".
fn judge(op: &str, e: i32, reached_on: &[i32], blocked_on: &[&[i32]]) -> Res {
    let text = etext(op, e);
    if reached_on.contains(&e) {
        return reached(format!("{text}, after the permission checks passed"));
    }
    if e == libc::ENOSYS || e == libc::EAFNOSUPPORT {
        if seccomp_filtered() {
            return blocked(format!("{text} (a seccomp filter is active)"));
        }
        return reached(format!(
            "{text}: the running kernel lacks this feature (no seccomp filter is active, so \
             nothing refused the call)"
        ));
    }
    if REFUSED.contains(&e) || blocked_on.iter().any(|set| set.contains(&e)) {
        return blocked(text);
    }
    Err(probe(format!("{text}: unexpected errno")))
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn env_path(var: &'static str) -> Result<PathBuf, Fail> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(Fail::Usage(format!("missing context: {var} is not set"))),
    }
}

fn env_string(var: &'static str) -> Result<String, Fail> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(Fail::Usage(format!("missing context: {var} is not set (or not UTF-8)"))),
    }
}

fn env_pid() -> Result<libc::pid_t, Fail> {
    let text = env_string("PROBE_PID")?;
    match text.trim().parse::<libc::pid_t>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(Fail::Usage(format!("PROBE_PID is not a pid above 1: {text:?}"))),
    }
}

fn env_port() -> Result<u16, Fail> {
    let text = env_string("PROBE_PORT")?;
    match text.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(Fail::Usage(format!("PROBE_PORT is not a TCP port: {text:?}"))),
    }
}

fn cpath(p: &Path) -> Result<CString, Fail> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| probe(format!("path has a NUL byte: {}", p.display())))
}

fn cstring(s: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|_| probe(format!("string has a NUL byte: {s:?}")))
}

/// A per-run scratch name, so parallel runs do not collide.
fn scratch(tag: &str) -> String {
    format!(".sandbox-probe-{tag}-{}", std::process::id())
}

/// Removes a scratch file (or empty directory) when dropped.
struct Cleanup {
    path: PathBuf,
    dir: bool,
}

impl Cleanup {
    fn file(path: &Path) -> Self {
        Cleanup { path: path.to_path_buf(), dir: false }
    }

    fn dir(path: &Path) -> Self {
        Cleanup { path: path.to_path_buf(), dir: true }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = if self.dir { fs::remove_dir(&self.path) } else { fs::remove_file(&self.path) };
    }
}

/// Wraps a raw syscall return: -1 becomes the errno.
fn sys(ret: c_long) -> Result<c_long, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

fn sysi(ret: c_int) -> Result<c_int, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a descriptor a syscall just returned.
fn own_fd(fd: c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall that creates a
    // new descriptor, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Fail> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r < 0 {
        return Err(probe(etext("pipe2", errno())));
    }
    Ok((own_fd(fds[0] as c_long), own_fd(fds[1] as c_long)))
}

fn raw_write(fd: RawFd, bytes: &[u8]) -> isize {
    // SAFETY: `bytes` is a valid readable buffer of the given length.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) }
}

fn raw_read(fd: RawFd, buf: &mut [u8]) -> isize {
    loop {
        // SAFETY: `buf` is a valid writable buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return n;
    }
}

/// Forks; the child (with a parent-death SIGKILL, so nothing outlives the
/// probe) runs `f` and `_exit`s with its result.
fn fork_child(f: impl FnOnce() -> i32) -> Result<libc::pid_t, i32> {
    // SAFETY: the probe is single-threaded (nothing spawns threads), so the
    // child may run ordinary code; it never returns from this function.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: PR_SET_PDEATHSIG takes a signal number, no pointers.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        let code = f();
        // SAFETY: ends the child at once, without running the parent's
        // destructors or flushing buffers it shares with the parent.
        unsafe { libc::_exit(code) }
    }
    Ok(pid)
}

/// Waits for a child; returns its wait status.
fn wait_pid(pid: libc::pid_t) -> Result<c_int, i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for waitpid to fill.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(status);
    }
}

fn kill_reap(pid: libc::pid_t) {
    // SAFETY: `pid` is a child this probe forked and has not reaped yet.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = wait_pid(pid);
}

fn describe_status(status: c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

fn short_text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(cut).trim().escape_default().to_string()
}

/// Reads up to `limit` bytes from `path`.
fn read_some(path: &Path, limit: usize) -> Result<Vec<u8>, i32> {
    let mut f = File::open(path).map_err(|e| os(&e))?;
    let mut buf = vec![0u8; limit];
    let mut total = 0;
    while total < limit {
        match f.read(&mut buf[total..]) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(os(&e)),
        }
    }
    buf.truncate(total);
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Running another program
// ---------------------------------------------------------------------------

enum ExecTarget<'a> {
    Path(&'a CStr),
    Fd(RawFd),
}

struct Spawned {
    /// The child's own failure before or at exec: (stage, errno).
    failure: Option<(&'static str, i32)>,
    status: c_int,
    stdout: Vec<u8>,
}

const STAGES: [&str; 5] = ["dup2", "setgroups", "setresgid", "setresuid", "execve"];

/// Forks, optionally drops the child to `drop_to` (uid = gid), and execs
/// `target` with `argv` and an empty environment, capturing its stdout.
fn spawn(target: ExecTarget<'_>, argv: &[CString], drop_to: Option<u32>) -> Result<Spawned, Fail> {
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(ptr::null());
    let envp: [*const c_char; 1] = [ptr::null()];
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ow, ew) = (out_w.as_raw_fd(), err_w.as_raw_fd());
    let pid = fork_child(|| {
        let fail = |stage: u32| -> i32 {
            let e = errno();
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&stage.to_le_bytes());
            msg[4..].copy_from_slice(&e.to_le_bytes());
            raw_write(ew, &msg);
            127
        };
        // SAFETY: both descriptors are open in the child.
        if unsafe { libc::dup2(ow, 1) } < 0 {
            return fail(0);
        }
        if let Some(id) = drop_to {
            // SAFETY: an empty group list needs no buffer.
            if unsafe { libc::setgroups(0, ptr::null()) } < 0 {
                return fail(1);
            }
            // SAFETY: plain id arguments.
            if unsafe { libc::setresgid(id, id, id) } < 0 {
                return fail(2);
            }
            // SAFETY: plain id arguments.
            if unsafe { libc::setresuid(id, id, id) } < 0 {
                return fail(3);
            }
        }
        match target {
            ExecTarget::Path(path) => {
                // SAFETY: path, argv and envp are NUL-terminated strings in
                // NULL-terminated arrays that live until exec or exit.
                unsafe { libc::execve(path.as_ptr(), ptrs.as_ptr(), envp.as_ptr()) };
            }
            ExecTarget::Fd(fd) => {
                // SAFETY: as above; AT_EMPTY_PATH execs the descriptor itself.
                unsafe {
                    libc::syscall(
                        libc::SYS_execveat,
                        fd,
                        c"".as_ptr(),
                        ptrs.as_ptr(),
                        envp.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    )
                };
            }
        }
        fail(4)
    })
    .map_err(|e| probe(etext("fork", e)))?;
    drop(out_w);
    drop(err_w);
    let mut stdout = Vec::new();
    let _ = File::from(out_r).read_to_end(&mut stdout);
    let mut err = Vec::new();
    let _ = File::from(err_r).read_to_end(&mut err);
    let status = wait_pid(pid).map_err(|e| probe(etext("waitpid", e)))?;
    let failure = if err.len() >= 8 {
        let stage = u32::from_le_bytes([err[0], err[1], err[2], err[3]]) as usize;
        let e = i32::from_le_bytes([err[4], err[5], err[6], err[7]]);
        Some((STAGES.get(stage).copied().unwrap_or("child"), e))
    } else {
        None
    };
    Ok(Spawned { failure, status, stdout })
}

/// A small program to copy and exec: /bin/true, or this probe itself (run
/// as `whoami-euid`) where /bin/true is not readable.
fn exec_payload() -> Result<(Vec<u8>, Vec<CString>, &'static str), Fail> {
    if let Ok(bytes) = fs::read("/bin/true") {
        return Ok((bytes, vec![cstring("true")?], "/bin/true"));
    }
    match fs::read("/proc/self/exe") {
        Ok(bytes) => Ok((bytes, vec![cstring("sandbox-probe")?, cstring("whoami-euid")?], "/proc/self/exe")),
        Err(e) => {
            Err(probe(format!("no program to copy: /bin/true and /proc/self/exe unreadable ({})", ename(os(&e)))))
        }
    }
}

/// Judges a spawn whose success criterion is "the program ran and exited 0".
fn judge_ran(what: &str, s: &Spawned) -> Res {
    if let Some((stage, e)) = s.failure {
        if stage != "execve" {
            return Err(probe(etext(&format!("{what}: child {stage}"), e)));
        }
        return judge(&format!("{what}: execve"), e, &[], &[HIDDEN, LIMITS]);
    }
    if libc::WIFEXITED(s.status) && libc::WEXITSTATUS(s.status) == 0 {
        return escaped(format!("{what}: the program ran and exited 0"));
    }
    if libc::WIFSIGNALED(s.status) && libc::WTERMSIG(s.status) == libc::SIGSYS {
        return blocked(format!("{what}: the program was killed by SIGSYS (seccomp)"));
    }
    Err(probe(format!("{what}: the program ran but ended with {}", describe_status(s.status))))
}

// ---------------------------------------------------------------------------
// The attempts
// ---------------------------------------------------------------------------

struct Attempt {
    name: &'static str,
    category: &'static str,
    what: &'static str,
    bare_note: Option<&'static str>,
    run: fn() -> Res,
}

const fn a(name: &'static str, category: &'static str, what: &'static str, run: fn() -> Res) -> Attempt {
    Attempt { name, category, what, bare_note: None, run }
}

const fn an(
    name: &'static str,
    category: &'static str,
    what: &'static str,
    note: &'static str,
    run: fn() -> Res,
) -> Attempt {
    Attempt { name, category, what, bare_note: Some(note), run }
}

const NOTE_KERNEL_LACKS: &str = "where the running kernel lacks this syscall or socket family \
    (ENOSYS/EAFNOSUPPORT with no seccomp filter active) the outcome is reached: nothing refused \
    the call, and the sandbox cannot be escaped through it either";

const ATTEMPTS: &[Attempt] = &[
    // Filesystem: writing outside the declared mounts.
    a("write-outside-dir", "filesystem", "create and write a file in $PROBE_OUTSIDE, a host directory not mounted into the sandbox", write_outside_dir),
    a("write-root-dir", "filesystem", "create and write a file in /", write_root_dir),
    a("write-usr-bin", "filesystem", "create and write a file in /usr/bin", write_usr_bin),
    a("write-etc", "filesystem", "create and write a file in /etc", write_etc),
    a("write-ro-mount", "filesystem", "create and write a file in $PROBE_RO, the read-only mount", write_ro_mount),
    a("modify-ro-data", "filesystem", "append a byte to $PROBE_RO/data (then truncate it back)", modify_ro_data),
    // Reading host data.
    a("read-etc-shadow", "read", "read /etc/shadow", read_etc_shadow),
    a("list-root-home", "read", "list the host home directory /root", list_root_home),
    a("read-root-home-file", "read", "read a file in /root", read_root_home_file),
    a("read-outside-secret", "read", "read $PROBE_OUTSIDE/secret", read_outside_secret),
    a("symlink-escape", "read", "read through $PROBE_SYMLINK, a symlink in the rw mount pointing at $PROBE_OUTSIDE/secret", symlink_escape),
    a("dotdot-escape", "read", "read $PROBE_OUTSIDE/secret by a path of 64 '..' components under $PROBE_WORK", dotdot_escape),
    a("proc-pid-root-escape", "read", "read $PROBE_OUTSIDE/secret through /proc/$PROBE_PID/root", proc_pid_root_escape),
    a("read-victim-environ", "read", "read /proc/$PROBE_PID/environ of the host victim", read_victim_environ),
    // Tracing and other processes' memory.
    a("ptrace-attach-victim", "ptrace", "PTRACE_ATTACH to the host victim $PROBE_PID (then detach)", ptrace_attach_victim),
    a("ptrace-traceme", "ptrace", "a forked child calls PTRACE_TRACEME and stops; the probe sees the trace stop", ptrace_traceme),
    a("ptrace-attach-child", "ptrace", "PTRACE_ATTACH to the probe's own forked child", ptrace_attach_child),
    a("proc-self-mem-write", "memory", "write into the probe's own buffer through /proc/self/mem and see it change", proc_self_mem_write),
    a("process-vm-writev-child", "memory", "process_vm_writev into a forked child, which confirms the change over a pipe", process_vm_writev_child),
    a("process-vm-readv-child", "memory", "process_vm_readv a buffer of a forked child", process_vm_readv_child),
    a("process-vm-readv-victim", "memory", "process_vm_readv the memory of the host victim $PROBE_PID", process_vm_readv_victim),
    // Mounts and namespaces.
    a("mount-tmpfs", "mount", "mount a tmpfs on a scratch directory in $PROBE_WORK (unmounted again)", mount_tmpfs),
    a("umount", "mount", "umount2: unmount a tmpfs just mounted, or where mounting is refused, umount2(\"/proc\", MNT_EXPIRE) (never unmounts)", umount_attempt),
    an("pivot-root", "mount", "pivot_root onto a fresh non-mount-point directory (EINVAL or EBUSY once permitted)", "reached by design: the directory is never a mount point, so the kernel refuses to pivot after CAP_SYS_ADMIN passed", pivot_root),
    a("fsopen-tmpfs", "mount", "fsopen(\"tmpfs\") of the new mount API (then create and fsmount it detached)", fsopen_tmpfs),
    a("open-tree-clone", "mount", "open_tree(\"/\", OPEN_TREE_CLONE): a detached copy of the root mount", open_tree_clone),
    a("unshare-mnt", "namespace", "unshare(CLONE_NEWNS)", unshare_mnt),
    a("unshare-user", "namespace", "unshare(CLONE_NEWUSER)", unshare_user),
    a("unshare-net", "namespace", "unshare(CLONE_NEWNET)", unshare_net),
    a("unshare-pid", "namespace", "unshare(CLONE_NEWPID)", unshare_pid),
    a("unshare-uts", "namespace", "unshare(CLONE_NEWUTS)", unshare_uts),
    a("setns-mnt", "namespace", "setns into the mount namespace of /proc/1 (or, where that cannot be opened, of $PROBE_PID when set)", setns_mnt),
    a("clone-newuser", "namespace", "raw clone(CLONE_NEWUSER|SIGCHLD)", clone_newuser),
    a("clone3-newuser-newns", "namespace", "clone3 with CLONE_NEWUSER|CLONE_NEWNS", clone3_newuser_newns),
    // Kernel interfaces.
    an("init-module", "kernel", "init_module with a garbage image (rejected after CAP_SYS_MODULE)", "without module support (CONFIG_MODULES off, as on the dev VM) the kernel answers ENOSYS: reached, nothing refused it", init_module),
    an("finit-module", "kernel", "finit_module of the probe's own executable (not a module: rejected after CAP_SYS_MODULE)", "without module support (CONFIG_MODULES off, as on the dev VM) the kernel answers ENOSYS: reached, nothing refused it", finit_module),
    an("kexec-load", "kernel", "kexec_load with invalid flags and segment count (EINVAL after CAP_SYS_BOOT)", "without kexec (CONFIG_KEXEC off, as on the dev VM) the kernel answers ENOSYS: reached, nothing refused it", kexec_load),
    an("kexec-file-load", "kernel", "kexec_file_load with invalid flags (EINVAL after CAP_SYS_BOOT)", "without kexec (CONFIG_KEXEC_FILE off, as on the dev VM) the kernel answers ENOSYS: reached, nothing refused it", kexec_file_load),
    a("bpf-map-create", "kernel", "bpf(BPF_MAP_CREATE) of a one-entry array map", bpf_map_create),
    a("bpf-prog-load", "kernel", "bpf(BPF_PROG_LOAD) of a two-instruction socket filter", bpf_prog_load),
    a("perf-event-open", "kernel", "perf_event_open of a software cpu-clock counter on self, kernel included", perf_event_open),
    a("keyctl-add-key", "kernel", "add_key a user key to the session keyring (then invalidate it)", keyctl_add_key),
    an("io-uring-setup", "kernel", "io_uring_setup with 4 entries", "blocked even bare where the host sets kernel.io_uring_disabled=2", io_uring_setup),
    a("userfaultfd", "kernel", "userfaultfd without UFFD_USER_MODE_ONLY", userfaultfd),
    a("fanotify-init", "kernel", "fanotify_init(FAN_CLASS_NOTIF) (needs CAP_SYS_ADMIN)", fanotify_init),
    an("iopl", "kernel", "iopl(3) (then back to 0)", "without CONFIG_X86_IOPL_IOPERM (as on the dev VM) the kernel answers ENOSYS: reached, nothing refused it", iopl),
    an("ioperm", "kernel", "ioperm on port 0x80 (then released)", "without CONFIG_X86_IOPL_IOPERM (as on the dev VM) the kernel answers ENOSYS: reached, nothing refused it", ioperm),
    a("open-by-handle-at", "kernel", "the shocker escape: name_to_handle_at(/etc/hostname) then open_by_handle_at", open_by_handle_at),
    a("syslog-read", "kernel", "syslog(SYSLOG_ACTION_SIZE_BUFFER), then read the kernel log", syslog_read),
    a("read-dev-kmsg", "kernel", "read a record from /dev/kmsg", read_dev_kmsg),
    a("read-kallsyms-addresses", "kernel", "read real kernel symbol addresses from /proc/kallsyms", read_kallsyms_addresses),
    a("personality-no-aslr", "kernel", "personality(ADDR_NO_RANDOMIZE) (then restored)", personality_no_aslr),
    // Network.
    a("socket-raw-inet", "network", "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", socket_raw_inet),
    a("socket-packet", "network", "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)", socket_packet),
    a("socket-netlink", "network", "socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)", socket_netlink),
    an("socket-vsock", "network", "socket(AF_VSOCK, SOCK_STREAM)", NOTE_KERNEL_LACKS, socket_vsock),
    an("socket-alg", "network", "socket(AF_ALG, SOCK_SEQPACKET) (then bind hash/sha256)", "without CONFIG_CRYPTO_USER_API (as on the dev VM) the kernel answers EAFNOSUPPORT: reached, nothing refused it", socket_alg),
    a("tcp-connect-host", "network", "connect to the host listener on 127.0.0.1:$PROBE_PORT", tcp_connect_host),
    a("tcp-listen", "network", "bind and listen on 127.0.0.1, an ephemeral port", tcp_listen),
    a("udp-sendto", "network", "sendto a UDP datagram to 127.0.0.1:9", udp_sendto),
    a("unix-connect-path", "network", "connect to the host UNIX socket $PROBE_UNIX", unix_connect_path),
    a("unix-connect-abstract", "network", "connect to the host abstract UNIX socket @$PROBE_ABSTRACT", unix_connect_abstract),
    // Exec and privilege.
    a("exec-setuid-binary", "exec", "drop to uid 65534 if root, then exec $PROBE_SETUID (root-owned, mode 4755) and see whether euid became 0", exec_setuid_binary),
    a("memfd-exec", "exec", "fileless exec: copy /bin/true into a memfd and execveat it", memfd_exec),
    a("exec-from-work", "exec", "copy /bin/true into $PROBE_WORK, chmod 755, exec it", exec_from_work),
    a("exec-huge-args", "resource", "raise RLIMIT_STACK soft to hard, exec self with 3 MiB of arguments (48 x 64 KiB)", exec_huge_args),
    a("chmod-setuid", "metadata", "chmod u+s an own file in $PROBE_WORK and see S_ISUID set", chmod_setuid),
    a("mknod-char-dev", "metadata", "mknod a char device 1:3 in $PROBE_WORK", mknod_char_dev),
    a("setxattr-file-caps", "metadata", "setxattr security.capability (cap_sys_admin+ep) on a file in $PROBE_WORK", setxattr_file_caps),
    a("chown-root", "metadata", "chown an own file in $PROBE_WORK to 0:0", chown_root),
    a("setuid-root", "identity", "setuid(0)", setuid_root),
    a("setresuid-root", "identity", "setresuid(0, 0, 0)", setresuid_root),
    a("setgroups-root", "identity", "setgroups([0])", setgroups_root),
    a("capset-sys-admin", "identity", "capset adding CAP_SYS_ADMIN to the permitted and effective sets", capset_sys_admin),
    a("chroot", "identity", "chroot(\"/\")", chroot_attempt),
    // TTY.
    an("tiocsti-inject", "tty", "TIOCSTI: push a byte into the input of the tty on fd 0 (then flush it)", "needs a tty (e.g. a pty slave) on fd 0: exit 3 otherwise", tiocsti_inject),
    // Resources.
    a("fork-bomb", "resource", "fork 600 children that block in pause() (all killed after)", fork_bomb),
    a("memory-bomb", "resource", "mmap 1.5 GiB anonymous memory and touch every page (freed after)", memory_bomb),
    a("disk-fill", "resource", "write 64 MiB to $PROBE_WORK (deleted after; SIGXFSZ ignored)", disk_fill),
    a("tmp-fill", "resource", "write 600 MiB to /tmp (deleted after; SIGXFSZ ignored)", tmp_fill),
    an("setrlimit-nproc-raise", "resource", "raise the RLIMIT_NPROC hard limit by one", "needs CAP_SYS_RESOURCE: blocked even bare where root lacks it (the dev VM drops it from every bounding set)", setrlimit_nproc_raise),
    a("raise-priority", "resource", "setpriority to a lower nice value than the current one (then restored)", raise_priority),
    a("sched-fifo", "resource", "sched_setscheduler(SCHED_FIFO, 1) (then back to SCHED_OTHER)", sched_fifo),
    // Signals to processes outside.
    a("kill-victim-sig0", "signal", "kill($PROBE_PID, 0)", kill_victim_sig0),
    a("kill-victim-sigcont", "signal", "kill($PROBE_PID, SIGCONT)", kill_victim_sigcont),
    a("pidfd-signal-victim", "signal", "pidfd_open($PROBE_PID) then pidfd_send_signal(SIGCONT)", pidfd_signal_victim),
    a("tgkill-victim", "signal", "tgkill($PROBE_PID, $PROBE_PID, SIGCONT)", tgkill_victim),
    a("rt-sigqueueinfo-victim", "signal", "rt_sigqueueinfo($PROBE_PID, SIGCONT, SI_QUEUE)", rt_sigqueueinfo_victim),
    a("pidfd-getfd-victim", "signal", "pidfd_getfd: steal a descriptor (0, 1 or 2) of $PROBE_PID", pidfd_getfd_victim),
    // System state.
    a("sethostname", "system", "sethostname to the current hostname", sethostname),
    a("settimeofday", "system", "settimeofday to the current time", settimeofday),
    a("clock-settime", "system", "clock_settime(CLOCK_REALTIME) to the current time", clock_settime),
    an("reboot-bad-magic", "system", "reboot with bad magic numbers (EINVAL after CAP_SYS_BOOT)", "reached by design: the bad magic is rejected right after the CAP_SYS_BOOT check; nothing reboots", reboot_bad_magic),
    an("swapon-missing", "system", "swapon of a nonexistent path (ENOENT after CAP_SYS_ADMIN)", "reached by design: ENOENT for the missing path after the CAP_SYS_ADMIN check", swapon_missing),
    an("acct-missing", "system", "acct of a path in a nonexistent directory (ENOENT after CAP_SYS_PACCT)", "reached by design: ENOENT for the missing path after the CAP_SYS_PACCT check", acct_missing),
    an("quotactl-invalid", "system", "quotactl_fd on / with an unknown command (EINVAL after CAP_SYS_ADMIN)", "reached by design: the unknown command is rejected after the CAP_SYS_ADMIN check", quotactl_invalid),
    a("write-drop-caches", "system", "write \"1\" to /proc/sys/vm/drop_caches", write_drop_caches),
    a("write-core-pattern", "system", "write /proc/sys/kernel/core_pattern with its current value", write_core_pattern),
    an("open-sysrq-trigger", "system", "open /proc/sysrq-trigger for writing (closed without writing)", "on kernels without CONFIG_MAGIC_SYSRQ (as on the dev VM) the attempt opens the write-only trigger /proc/sys/vm/compact_memory for writing instead", open_sysrq_trigger),
    an("read-proc-kcore", "device", "read 1 byte of /proc/kcore", "on kernels without CONFIG_PROC_KCORE (as on the dev VM) the attempt reads /proc/kpageflags (physical page state, root only) instead", read_proc_kcore),
    a("list-sys-kernel", "device", "list /sys/kernel/mm", list_sys_kernel),
    an("open-dev-mem-or-block", "device", "open /dev/mem, or else a block device (the root filesystem's first), and read from it", "on kernels without /dev/mem (CONFIG_DEVMEM off, as on the dev VM) the root filesystem's block device is read instead", open_dev_mem_or_block),
    a("cgroup-mkdir", "system", "create a child cgroup in the cgroup2 root (removed after)", cgroup_mkdir),
];

// -- Filesystem writes ------------------------------------------------------

fn create_in(dir: &Path, tag: &str) -> Res {
    let path = dir.join(scratch(tag));
    let op = format!("open {} O_CREAT|O_EXCL|O_WRONLY", path.display());
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut f) => {
            let _cleanup = Cleanup::file(&path);
            match f.write_all(b"sandbox-probe was here\n") {
                Ok(()) => escaped(format!("created and wrote {} (removed)", path.display())),
                Err(e) => escaped(format!(
                    "created {} (removed); the write then failed with {}",
                    path.display(),
                    ename(os(&e))
                )),
            }
        }
        Err(e) => judge(&op, os(&e), &[], &[HIDDEN, LIMITS]),
    }
}

fn write_outside_dir() -> Res {
    create_in(&env_path("PROBE_OUTSIDE")?, "outside")
}

fn write_root_dir() -> Res {
    create_in(Path::new("/"), "root")
}

fn write_usr_bin() -> Res {
    create_in(Path::new("/usr/bin"), "usrbin")
}

fn write_etc() -> Res {
    create_in(Path::new("/etc"), "etc")
}

fn write_ro_mount() -> Res {
    create_in(&env_path("PROBE_RO")?, "ro")
}

fn modify_ro_data() -> Res {
    let path = env_path("PROBE_RO")?.join("data");
    let op = format!("open {} O_WRONLY|O_APPEND", path.display());
    let mut f = match OpenOptions::new().append(true).open(&path) {
        Ok(f) => f,
        Err(e) => return judge(&op, os(&e), &[], &[HIDDEN]),
    };
    let len = f.metadata().map_err(|e| probe(etext("fstat data", os(&e))))?.len();
    match f.write(b"x") {
        Ok(1) => {
            let restored = f.set_len(len).is_ok();
            escaped(format!(
                "appended a byte to {} ({})",
                path.display(),
                if restored { "truncated back" } else { "could not truncate back" }
            ))
        }
        Ok(n) => Err(probe(format!("write to {} wrote {n} bytes", path.display()))),
        Err(e) => judge(&format!("write {}", path.display()), os(&e), &[], &[LIMITS]),
    }
}

// -- Reading host data ------------------------------------------------------

fn read_file_attempt(path: &Path, show: bool) -> Res {
    match read_some(path, 4096) {
        Ok(data) if show => {
            escaped(format!("read {} bytes of {}: \"{}\"", data.len(), path.display(), short_text(&data)))
        }
        Ok(data) => escaped(format!("read {} bytes of {}", data.len(), path.display())),
        Err(e) => judge(&format!("open+read {}", path.display()), e, &[], &[HIDDEN, &[libc::ELOOP, libc::EXDEV]]),
    }
}

fn read_etc_shadow() -> Res {
    read_file_attempt(Path::new("/etc/shadow"), false)
}

fn list_root_home() -> Res {
    let entries = match fs::read_dir("/root") {
        Ok(it) => it,
        Err(e) => return judge("opendir /root", os(&e), &[], &[HIDDEN]),
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => names.push(entry.file_name().to_string_lossy().into_owned()),
            Err(e) => return judge("readdir /root", os(&e), &[], &[HIDDEN]),
        }
    }
    if names.is_empty() {
        return blocked("listed /root but it is empty: not the host home directory");
    }
    names.sort();
    names.truncate(5);
    escaped(format!("listed /root: {} ...", names.join(", ")))
}

fn read_root_home_file() -> Res {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = fs::read_dir("/root") {
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        files.sort();
        candidates.extend(files);
    }
    for name in [".bashrc", ".profile"] {
        let p = Path::new("/root").join(name);
        if !candidates.contains(&p) {
            candidates.push(p);
        }
    }
    let mut first_err: Option<(PathBuf, i32)> = None;
    for path in &candidates {
        match read_some(path, 4096) {
            Ok(data) => return escaped(format!("read {} bytes of {}", data.len(), path.display())),
            Err(e) => {
                // Prefer a refusal over "not there" for the report.
                let better = match &first_err {
                    None => true,
                    Some((_, prev)) => *prev == libc::ENOENT && e != libc::ENOENT,
                };
                if better {
                    first_err = Some((path.clone(), e));
                }
            }
        }
    }
    match first_err {
        Some((path, e)) => judge(&format!("open+read {}", path.display()), e, &[], &[HIDDEN]),
        None => Err(probe("no candidate file in /root")),
    }
}

fn read_outside_secret() -> Res {
    read_file_attempt(&env_path("PROBE_OUTSIDE")?.join("secret"), true)
}

fn symlink_escape() -> Res {
    let link = env_path("PROBE_SYMLINK")?;
    let target = fs::read_link(&link)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|e| format!("unreadable link: {}", ename(os(&e))));
    match read_some(&link, 4096) {
        Ok(data) => escaped(format!(
            "read {} bytes through {} -> {target}: \"{}\"",
            data.len(),
            link.display(),
            short_text(&data)
        )),
        Err(e) => {
            judge(&format!("open+read {} -> {target}", link.display()), e, &[], &[HIDDEN, &[libc::ELOOP, libc::EXDEV]])
        }
    }
}

fn dotdot_escape() -> Res {
    let work = env_path("PROBE_WORK")?;
    let outside = env_path("PROBE_OUTSIDE")?;
    let mut up: OsString = work.into_os_string();
    for _ in 0..64 {
        up.push("/..");
    }
    let up = PathBuf::from(up);
    let listing = match fs::read_dir(&up) {
        Ok(it) => format!("{} entries", it.count()),
        Err(e) => format!("unlistable: {}", ename(os(&e))),
    };
    let rel = outside.strip_prefix("/").unwrap_or(&outside);
    let target = up.join(rel).join("secret");
    match read_some(&target, 4096) {
        Ok(data) => escaped(format!(
            "read {} bytes of $PROBE_WORK/..(x64)/{}/secret: \"{}\" (the directory 64 levels up: {listing})",
            data.len(),
            rel.display(),
            short_text(&data)
        )),
        Err(e) => judge(
            &format!("open+read $PROBE_WORK/..(x64)/{}/secret (64 levels up: {listing})", rel.display()),
            e,
            &[],
            &[HIDDEN, &[libc::EXDEV]],
        ),
    }
}

fn proc_pid_root_escape() -> Res {
    let pid = env_pid()?;
    let outside = env_path("PROBE_OUTSIDE")?;
    let rel = outside.strip_prefix("/").unwrap_or(&outside);
    let target = PathBuf::from(format!("/proc/{pid}/root")).join(rel).join("secret");
    read_file_attempt(&target, true)
}

fn read_victim_environ() -> Res {
    let pid = env_pid()?;
    let path = PathBuf::from(format!("/proc/{pid}/environ"));
    match read_some(&path, 4096) {
        Ok(data) => escaped(format!("read {} bytes of {}", data.len(), path.display())),
        Err(e) => judge(&format!("open+read {}", path.display()), e, &[], &[HIDDEN]),
    }
}

// -- ptrace and memory ------------------------------------------------------

fn ptrace_attach_victim() -> Res {
    let pid = env_pid()?;
    // SAFETY: PTRACE_ATTACH takes no pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, ptr::null_mut::<c_void>(), ptr::null_mut::<c_void>()) };
    if r < 0 {
        return judge(&format!("ptrace(PTRACE_ATTACH, {pid})"), errno(), &[], &[HIDDEN]);
    }
    let stop = wait_pid(pid);
    // SAFETY: PTRACE_DETACH with signal 0 resumes the tracee without
    // delivering the attach SIGSTOP; no pointers.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, ptr::null_mut::<c_void>(), ptr::null_mut::<c_void>()) };
    match stop {
        Ok(status) => escaped(format!(
            "attached to host pid {pid} ({}), then detached",
            if libc::WIFSTOPPED(status) { "saw its attach stop" } else { "no stop seen" }
        )),
        Err(e) => escaped(format!("attached to host pid {pid}; waitpid then failed: {}", ename(e))),
    }
}

fn ptrace_traceme() -> Res {
    let (r, w) = pipe()?;
    let wfd = w.as_raw_fd();
    let pid = fork_child(|| {
        // SAFETY: PTRACE_TRACEME takes no pointers.
        let t = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, ptr::null_mut::<c_void>(), ptr::null_mut::<c_void>()) };
        if t < 0 {
            raw_write(wfd, &errno().to_le_bytes());
            return 1;
        }
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
        0
    })
    .map_err(|e| probe(etext("fork", e)))?;
    drop(w);
    let status = wait_pid(pid).map_err(|e| probe(etext("waitpid", e)))?;
    if libc::WIFSTOPPED(status) {
        kill_reap(pid);
        return escaped("child called PTRACE_TRACEME and the probe saw its trace stop (child killed)");
    }
    let mut buf = [0u8; 4];
    if raw_read(r.as_raw_fd(), &mut buf) == 4 {
        return judge("ptrace(PTRACE_TRACEME) in a child", i32::from_le_bytes(buf), &[], &[]);
    }
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS {
        return blocked("ptrace(PTRACE_TRACEME) in a child: killed by SIGSYS (seccomp)");
    }
    Err(probe(format!("traceme child ended with {}", describe_status(status))))
}

fn ptrace_attach_child() -> Res {
    let pid = fork_child(|| loop {
        // SAFETY: pause only waits for a signal.
        unsafe { libc::pause() };
    })
    .map_err(|e| probe(etext("fork", e)))?;
    // SAFETY: PTRACE_ATTACH takes no pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, ptr::null_mut::<c_void>(), ptr::null_mut::<c_void>()) };
    let e = errno();
    if r < 0 {
        kill_reap(pid);
        return judge(&format!("ptrace(PTRACE_ATTACH, own child {pid})"), e, &[], &[]);
    }
    let stopped = wait_pid(pid).map(|st| libc::WIFSTOPPED(st)).unwrap_or(false);
    kill_reap(pid);
    escaped(format!(
        "attached to own child {pid} ({}; child killed)",
        if stopped { "saw its attach stop" } else { "no stop seen" }
    ))
}

const PATTERN: [u8; 32] = *b"sandbox-probe wrote this pattern";

fn proc_self_mem_write() -> Res {
    let buf: Box<[u8; 32]> = Box::new([0u8; 32]);
    let addr = buf.as_ptr() as u64;
    let mut f = match OpenOptions::new().read(true).write(true).open("/proc/self/mem") {
        Ok(f) => f,
        Err(e) => return judge("open /proc/self/mem O_RDWR", os(&e), &[], &[HIDDEN]),
    };
    use std::os::unix::fs::FileExt;
    let r = f.write_at(&PATTERN, addr);
    let _ = f.flush();
    match r {
        Ok(n) if n == PATTERN.len() => {
            // SAFETY: `buf` is a live, aligned 32-byte allocation; the
            // volatile read makes the compiler reload what the kernel wrote.
            let now = unsafe { ptr::read_volatile(buf.as_ptr().cast::<[u8; 32]>()) };
            if now == PATTERN {
                escaped("wrote 32 bytes into the probe's own heap through /proc/self/mem and saw them")
            } else {
                blocked("pwrite on /proc/self/mem reported success but memory did not change")
            }
        }
        Ok(n) => Err(probe(format!("pwrite /proc/self/mem wrote {n} of 32 bytes"))),
        Err(e) => judge("pwrite /proc/self/mem", os(&e), &[], &[&[libc::EIO]]),
    }
}

fn process_vm_writev_child() -> Res {
    let buf: Box<[u8; 32]> = Box::new([0u8; 32]);
    let addr = buf.as_ptr() as usize;
    let (go_r, go_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    let (gr, rw) = (go_r.as_raw_fd(), res_w.as_raw_fd());
    let pid = fork_child(|| {
        let mut b = [0u8; 1];
        raw_read(gr, &mut b);
        // SAFETY: `addr` is the child's copy of the live 32-byte buffer.
        let seen = unsafe { ptr::read_volatile(addr as *const [u8; 32]) };
        raw_write(rw, &[u8::from(seen == PATTERN)]);
        0
    })
    .map_err(|e| probe(etext("fork", e)))?;
    drop(go_r);
    drop(res_w);
    let local = libc::iovec { iov_base: PATTERN.as_ptr() as *mut c_void, iov_len: 32 };
    let remote = libc::iovec { iov_base: addr as *mut c_void, iov_len: 32 };
    // SAFETY: the iovecs describe 32 readable bytes here and the child's
    // buffer of the same size at the same address.
    let r = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    let e = errno();
    raw_write(go_w.as_raw_fd(), b"g");
    let mut seen = [0u8; 1];
    let got = raw_read(res_r.as_raw_fd(), &mut seen);
    kill_reap(pid);
    drop(buf);
    if r < 0 {
        return judge(&format!("process_vm_writev(own child {pid})"), e, &[], &[]);
    }
    if got == 1 && seen[0] == 1 {
        escaped(format!("wrote {r} bytes into own child {pid}, which saw them"))
    } else {
        Err(probe(format!("process_vm_writev returned {r} but the child did not see the bytes")))
    }
}

fn process_vm_readv_child() -> Res {
    let mut buf: Box<[u8; 32]> = Box::new([0u8; 32]);
    let addr = buf.as_mut_ptr() as usize;
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (rw, gr) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
    let pid = fork_child(|| {
        // SAFETY: `addr` is the child's copy of the live 32-byte buffer.
        unsafe { ptr::write_volatile(addr as *mut [u8; 32], PATTERN) };
        raw_write(rw, b"r");
        let mut b = [0u8; 1];
        raw_read(gr, &mut b);
        0
    })
    .map_err(|e| probe(etext("fork", e)))?;
    drop(ready_w);
    drop(go_r);
    let mut b = [0u8; 1];
    raw_read(ready_r.as_raw_fd(), &mut b);
    let mut got = [0u8; 32];
    let local = libc::iovec { iov_base: got.as_mut_ptr().cast(), iov_len: 32 };
    let remote = libc::iovec { iov_base: addr as *mut c_void, iov_len: 32 };
    // SAFETY: the iovecs describe 32 writable bytes here and the child's
    // buffer of the same size.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    let e = errno();
    raw_write(go_w.as_raw_fd(), b"g");
    kill_reap(pid);
    drop(buf);
    if r < 0 {
        return judge(&format!("process_vm_readv(own child {pid})"), e, &[], &[]);
    }
    if got == PATTERN {
        escaped(format!("read {r} bytes of own child {pid}'s memory"))
    } else {
        Err(probe(format!("process_vm_readv returned {r} but not the child's bytes")))
    }
}

fn process_vm_readv_victim() -> Res {
    let pid = env_pid()?;
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok();
    let addr = maps
        .as_deref()
        .and_then(|m| {
            m.lines().find_map(|line| {
                let mut it = line.split_whitespace();
                let range = it.next()?;
                let perms = it.next()?;
                if !perms.starts_with('r') {
                    return None;
                }
                usize::from_str_radix(range.split('-').next()?, 16).ok()
            })
        })
        .unwrap_or(0x40_0000);
    let mut got = [0u8; 16];
    let local = libc::iovec { iov_base: got.as_mut_ptr().cast(), iov_len: 16 };
    let remote = libc::iovec { iov_base: addr as *mut c_void, iov_len: 16 };
    // SAFETY: the local iovec describes 16 writable bytes; the remote one is
    // only interpreted by the kernel in the other process.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if r < 0 {
        return judge(&format!("process_vm_readv(host pid {pid}, {addr:#x})"), errno(), &[libc::EFAULT], &[HIDDEN]);
    }
    escaped(format!("read {r} bytes at {addr:#x} of host pid {pid}"))
}

// -- Mounts and namespaces --------------------------------------------------

fn make_scratch_dir(tag: &str) -> Result<(PathBuf, Cleanup), Fail> {
    let dir = env_path("PROBE_WORK")?.join(scratch(tag));
    fs::create_dir(&dir).map_err(|e| probe(etext(&format!("mkdir {}", dir.display()), os(&e))))?;
    let guard = Cleanup::dir(&dir);
    Ok((dir, guard))
}

fn mount_scratch_tmpfs(dir: &CStr) -> Result<(), i32> {
    // SAFETY: all strings are NUL-terminated and live across the call.
    let r = unsafe {
        libc::mount(
            c"sandbox-probe".as_ptr(),
            dir.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=1m".as_ptr().cast(),
        )
    };
    sysi(r).map(|_| ())
}

fn unmount(dir: &CStr, flags: c_int) -> Result<(), i32> {
    // SAFETY: `dir` is NUL-terminated.
    sysi(unsafe { libc::umount2(dir.as_ptr(), flags) }).map(|_| ())
}

fn mount_tmpfs() -> Res {
    let (dir, _guard) = make_scratch_dir("mnt")?;
    let c = cpath(&dir)?;
    if let Err(e) = mount_scratch_tmpfs(&c) {
        return judge(&format!("mount tmpfs on {}", dir.display()), e, &[], &[HIDDEN, &[libc::ENODEV]]);
    }
    // SAFETY: an all-zero statfs is a valid value for statfs to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is writable.
    let is_tmpfs = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type == libc::TMPFS_MAGIC;
    let unmounted = unmount(&c, 0).or_else(|_| unmount(&c, libc::MNT_DETACH));
    escaped(format!(
        "mounted a tmpfs on {} ({}), then {}",
        dir.display(),
        if is_tmpfs { "statfs saw tmpfs" } else { "statfs did not confirm it" },
        if unmounted.is_ok() { "unmounted it" } else { "could NOT unmount it" }
    ))
}

fn umount_attempt() -> Res {
    let (dir, _guard) = make_scratch_dir("umnt")?;
    let c = cpath(&dir)?;
    match mount_scratch_tmpfs(&c) {
        Ok(()) => match unmount(&c, libc::UMOUNT_NOFOLLOW) {
            Ok(()) => escaped(format!("mounted a tmpfs on {} and unmounted it with umount2", dir.display())),
            Err(e) => {
                let _ = unmount(&c, libc::MNT_DETACH);
                judge(&format!("umount2 {}", dir.display()), e, &[], &[])
            }
        },
        Err(mount_err) => {
            // Mounting was refused, so try the sandbox's /proc. MNT_EXPIRE
            // only marks an idle mount on the first call and never unmounts
            // it, so this is harmless even where it is permitted.
            match unmount(c"/proc", libc::MNT_EXPIRE | libc::UMOUNT_NOFOLLOW) {
                Ok(()) => escaped(format!(
                    "mount was refused ({}), but umount2(\"/proc\", MNT_EXPIRE) unmounted /proc",
                    ename(mount_err)
                )),
                Err(e) => judge(
                    &format!("(mount refused: {}) umount2 /proc MNT_EXPIRE", ename(mount_err)),
                    e,
                    &[libc::EAGAIN, libc::EBUSY, libc::EINVAL],
                    &[HIDDEN],
                ),
            }
        }
    }
}

fn pivot_root() -> Res {
    let (dir, _guard) = make_scratch_dir("pivot")?;
    let c = cpath(&dir)?;
    // SAFETY: both paths are the same NUL-terminated string; a freshly made
    // directory is never a mount point, so the kernel must answer EINVAL.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, c.as_ptr(), c.as_ptr()) };
    match sys(r) {
        Ok(_) => escaped(format!("pivot_root({0}, {0}) succeeded", dir.display())),
        Err(e) => judge(&format!("pivot_root({0}, {0})", dir.display()), e, &[libc::EINVAL, libc::EBUSY], &[HIDDEN]),
    }
}

fn fsopen_tmpfs() -> Res {
    // SAFETY: a NUL-terminated fs name and a flag.
    let fd = unsafe {
        libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1 /* FSOPEN_CLOEXEC */)
    };
    let fd = match sys(fd) {
        Ok(fd) => own_fd(fd),
        Err(e) => return judge("fsopen(\"tmpfs\")", e, &[], &[&[libc::ENODEV]]),
    };
    // SAFETY: FSCONFIG_CMD_CREATE (6) takes no key or value.
    let created = unsafe {
        libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), 6, ptr::null::<c_char>(), ptr::null::<c_void>(), 0)
    };
    let mounted = if created == 0 {
        // SAFETY: FSMOUNT_CLOEXEC (1), no attribute flags.
        sys(unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), 1, 0) }).map(own_fd)
    } else {
        Err(errno())
    };
    escaped(match mounted {
        Ok(_) => {
            "fsopen(\"tmpfs\") gave a context fd; created and fsmounted it as a detached mount (closed)".to_string()
        }
        Err(e) => format!("fsopen(\"tmpfs\") gave a context fd; create/fsmount then failed with {}", ename(e)),
    })
}

fn open_tree_clone() -> Res {
    // SAFETY: a NUL-terminated path and flags (OPEN_TREE_CLONE = 1).
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c"/".as_ptr(), 1 | libc::O_CLOEXEC) };
    match sys(fd) {
        Ok(fd) => {
            drop(own_fd(fd));
            escaped("open_tree(\"/\", OPEN_TREE_CLONE) gave a detached clone of the root mount (closed)")
        }
        Err(e) => judge("open_tree(\"/\", OPEN_TREE_CLONE)", e, &[], &[HIDDEN]),
    }
}

fn unshare_flag(flag: c_int, name: &str) -> Res {
    // SAFETY: unshare takes flags only; the probe is single-threaded.
    let r = unsafe { libc::unshare(flag) };
    match sysi(r) {
        Ok(_) => escaped(format!("unshare({name}) succeeded")),
        Err(e) => judge(&format!("unshare({name})"), e, &[], &[LIMITS]),
    }
}

fn unshare_mnt() -> Res {
    unshare_flag(libc::CLONE_NEWNS, "CLONE_NEWNS")
}

fn unshare_user() -> Res {
    unshare_flag(libc::CLONE_NEWUSER, "CLONE_NEWUSER")
}

fn unshare_net() -> Res {
    unshare_flag(libc::CLONE_NEWNET, "CLONE_NEWNET")
}

fn unshare_pid() -> Res {
    unshare_flag(libc::CLONE_NEWPID, "CLONE_NEWPID")
}

fn unshare_uts() -> Res {
    unshare_flag(libc::CLONE_NEWUTS, "CLONE_NEWUTS")
}

fn setns_mnt() -> Res {
    let mut candidates = vec![PathBuf::from("/proc/1/ns/mnt")];
    if std::env::var_os("PROBE_PID").is_some() {
        candidates.push(PathBuf::from(format!("/proc/{}/ns/mnt", env_pid()?)));
    }
    let mut errors: Vec<(String, i32)> = Vec::new();
    for path in &candidates {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                errors.push((format!("open {}", path.display()), os(&e)));
                continue;
            }
        };
        // SAFETY: `f` is an open namespace file.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNS) };
        return match sysi(r) {
            Ok(_) => escaped(format!("setns into the mount namespace of {}", path.display())),
            Err(e) => judge(&format!("setns({}, CLONE_NEWNS)", path.display()), e, &[], &[]),
        };
    }
    let text: Vec<String> = errors.iter().map(|(op, e)| format!("{op}: {}", ename(*e))).collect();
    // Judge by the last candidate's errno, naming all of them.
    let e = errors.last().map(|(_, e)| *e).unwrap_or(0);
    judge(&text.join("; "), e, &[], &[HIDDEN])
}

fn judge_clone_child(op: &str, r: c_long) -> Res {
    if r == 0 {
        // SAFETY: this is the cloned child: leave at once.
        unsafe { libc::_exit(0) }
    }
    if r < 0 {
        return judge(op, errno(), &[], &[LIMITS]);
    }
    let pid = r as libc::pid_t;
    let status = wait_pid(pid).map(describe_status).unwrap_or_else(|e| ename(e).to_string());
    escaped(format!("{op} created child {pid} in new namespaces ({status})"))
}

fn clone_newuser() -> Res {
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as c_long;
    // SAFETY: without CLONE_VM and with a null stack this is a fork; the
    // child only calls _exit.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    judge_clone_child("clone(CLONE_NEWUSER|SIGCHLD)", r)
}

fn clone3_newuser_newns() -> Res {
    // struct clone_args, CLONE_ARGS_SIZE_VER0: flags, pidfd, child_tid,
    // parent_tid, exit_signal, stack, stack_size, tls.
    let mut args = [0u64; 8];
    args[0] = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
    args[4] = libc::SIGCHLD as u64;
    // SAFETY: `args` is a valid 64-byte clone_args; without CLONE_VM and a
    // stack this is a fork; the child only calls _exit.
    let r = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 64usize) };
    judge_clone_child("clone3(CLONE_NEWUSER|CLONE_NEWNS)", r)
}

// -- Kernel interfaces ------------------------------------------------------

const MODULE_REJECTS: &[i32] =
    &[libc::EINVAL, libc::ENOEXEC, libc::EBADMSG, libc::EKEYREJECTED, libc::ENOKEY, libc::EFBIG];

fn init_module() -> Res {
    let image = [0xA5u8; 64];
    // SAFETY: a readable 64-byte buffer and an empty NUL-terminated string.
    let r = unsafe { libc::syscall(libc::SYS_init_module, image.as_ptr(), image.len(), c"".as_ptr()) };
    match sys(r) {
        Ok(_) => escaped("init_module accepted a garbage image"),
        Err(e) => judge("init_module(64 garbage bytes)", e, MODULE_REJECTS, &[]),
    }
}

fn finit_module() -> Res {
    let exe = File::open("/proc/self/exe").map_err(|e| probe(etext("open /proc/self/exe", os(&e))))?;
    // SAFETY: an open fd, an empty NUL-terminated string and no flags.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, exe.as_raw_fd(), c"".as_ptr(), 0) };
    match sys(r) {
        Ok(_) => escaped("finit_module accepted the probe executable"),
        Err(e) => judge("finit_module(/proc/self/exe)", e, MODULE_REJECTS, &[]),
    }
}

fn kexec_load() -> Res {
    // Invalid three ways: an unknown flag bit, an unknown architecture and
    // more segments than KEXEC_SEGMENT_MAX (16). nr_segments = 0 would mean
    // "unload", so it is never used.
    let flags: c_long = 0x4000 | (0x7ABC << 16);
    // SAFETY: with these arguments the kernel never reads the null pointer.
    let r = unsafe { libc::syscall(libc::SYS_kexec_load, 0usize, 17usize, ptr::null::<c_void>(), flags) };
    match sys(r) {
        Ok(_) => escaped("kexec_load accepted invalid arguments"),
        Err(e) => judge("kexec_load(invalid flags, 17 segments)", e, &[libc::EINVAL], &[]),
    }
}

fn kexec_file_load() -> Res {
    // SAFETY: with an unknown flag the kernel stops at EINVAL, right after
    // its permission check, and never reads the null command line.
    let r = unsafe {
        libc::syscall(libc::SYS_kexec_file_load, -1, -1, 0usize, ptr::null::<c_char>(), 0x8000_0000u64 as c_long)
    };
    match sys(r) {
        Ok(_) => escaped("kexec_file_load accepted invalid arguments"),
        Err(e) => judge("kexec_file_load(invalid flags)", e, &[libc::EINVAL, libc::EBADF], &[]),
    }
}

fn bpf_map_create() -> Res {
    // union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size,
    // max_entries; the rest zero.
    let mut attr = [0u32; 32];
    attr[0] = 2; // BPF_MAP_TYPE_ARRAY
    attr[1] = 4;
    attr[2] = 4;
    attr[3] = 1;
    // SAFETY: `attr` is a readable, zero-padded 128-byte bpf_attr.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, 0 /* BPF_MAP_CREATE */, attr.as_ptr(), 128usize)
    };
    match sys(r) {
        Ok(fd) => {
            drop(own_fd(fd));
            escaped("bpf(BPF_MAP_CREATE) made an array map (closed)")
        }
        Err(e) => judge("bpf(BPF_MAP_CREATE)", e, &[], &[LIMITS]),
    }
}

fn bpf_prog_load() -> Res {
    // r0 = 0; exit
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    let mut attr = [0u64; 16];
    attr[0] = 1 | (2u64 << 32); // BPF_PROG_TYPE_SOCKET_FILTER, insn_cnt 2
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    // SAFETY: `attr` is a readable 128-byte bpf_attr whose pointers refer to
    // live data.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, 5 /* BPF_PROG_LOAD */, attr.as_ptr(), 128usize)
    };
    match sys(r) {
        Ok(fd) => {
            drop(own_fd(fd));
            escaped("bpf(BPF_PROG_LOAD) loaded a socket filter (closed)")
        }
        Err(e) => judge("bpf(BPF_PROG_LOAD)", e, &[], &[LIMITS]),
    }
}

fn perf_event_open() -> Res {
    // struct perf_event_attr (128 bytes): type, size, config, ..., flags.
    let mut attr = [0u64; 16];
    attr[0] = 1 | (128u64 << 32); // PERF_TYPE_SOFTWARE, size 128
    attr[1] = 0; // PERF_COUNT_SW_CPU_CLOCK
    attr[5] = 1; // disabled; kernel and hypervisor not excluded
                 // SAFETY: `attr` is a readable 128-byte perf_event_attr.
    let r = unsafe {
        libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 8 /* PERF_FLAG_FD_CLOEXEC */)
    };
    match sys(r) {
        Ok(fd) => {
            drop(own_fd(fd));
            escaped("perf_event_open(cpu-clock, self, kernel included) gave a counter (closed)")
        }
        Err(e) => judge("perf_event_open(cpu-clock, self, kernel included)", e, &[], &[LIMITS]),
    }
}

fn keyctl_add_key() -> Res {
    let desc = cstring(&format!("sandbox-probe-{}", std::process::id()))?;
    let payload = b"x";
    // SAFETY: NUL-terminated type and description, a readable payload.
    let r = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            desc.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            -3 as c_long, // KEY_SPEC_SESSION_KEYRING
        )
    };
    match sys(r) {
        Ok(id) => {
            // SAFETY: KEYCTL_INVALIDATE (21) takes a key serial only.
            unsafe { libc::syscall(libc::SYS_keyctl, 21, id) };
            escaped(format!("add_key made key {id} in the session keyring (invalidated)"))
        }
        Err(e) => judge("add_key(user, session keyring)", e, &[], &[LIMITS]),
    }
}

fn io_uring_setup() -> Res {
    let mut params = [0u8; 120];
    // SAFETY: `params` is a writable, zeroed 120-byte io_uring_params.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
    match sys(r) {
        Ok(fd) => {
            drop(own_fd(fd));
            escaped("io_uring_setup(4) gave a ring (closed)")
        }
        Err(e) => judge("io_uring_setup(4)", e, &[], &[LIMITS]),
    }
}

fn userfaultfd() -> Res {
    // SAFETY: flags only.
    let r = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    match sys(r) {
        Ok(fd) => {
            drop(own_fd(fd));
            escaped("userfaultfd (kernel faults included) gave a descriptor (closed)")
        }
        Err(e) => judge("userfaultfd(O_CLOEXEC|O_NONBLOCK)", e, &[], &[LIMITS]),
    }
}

fn fanotify_init() -> Res {
    // SAFETY: flags only.
    let r = unsafe { libc::fanotify_init(libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC, libc::O_RDONLY as u32) };
    match sysi(r) {
        Ok(fd) => {
            drop(own_fd(fd as c_long));
            escaped("fanotify_init(FAN_CLASS_NOTIF) gave a descriptor (closed)")
        }
        Err(e) => judge("fanotify_init(FAN_CLASS_NOTIF)", e, &[], &[LIMITS]),
    }
}

fn iopl() -> Res {
    // SAFETY: a level argument only.
    let r = unsafe { libc::syscall(libc::SYS_iopl, 3) };
    match sys(r) {
        Ok(_) => {
            // SAFETY: as above; back to level 0.
            unsafe { libc::syscall(libc::SYS_iopl, 0) };
            escaped("iopl(3) succeeded (reset to 0)")
        }
        Err(e) => judge("iopl(3)", e, &[], &[]),
    }
}

fn ioperm() -> Res {
    // SAFETY: port range and a flag only; no port is accessed.
    let r = unsafe { libc::syscall(libc::SYS_ioperm, 0x80, 1, 1) };
    match sys(r) {
        Ok(_) => {
            // SAFETY: as above; gives the port back.
            unsafe { libc::syscall(libc::SYS_ioperm, 0x80, 1, 0) };
            escaped("ioperm(0x80, 1, on) succeeded (released)")
        }
        Err(e) => judge("ioperm(0x80, 1, on)", e, &[], &[]),
    }
}

#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 128],
}

fn open_by_handle(mount_fd: RawFd, handle: &mut FileHandle) -> Result<OwnedFd, i32> {
    // SAFETY: `handle` is a valid file_handle with 128 bytes of payload.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd,
            handle as *mut FileHandle,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    sys(r).map(own_fd)
}

fn open_by_handle_at() -> Res {
    let mut errors = Vec::new();
    for path in ["/etc/hostname", "/etc/passwd", "/"] {
        let c = cstring(path)?;
        let mut handle = FileHandle { handle_bytes: 128, handle_type: 0, f_handle: [0; 128] };
        let mut mount_id: c_int = 0;
        // SAFETY: a NUL-terminated path, a writable handle with 128 payload
        // bytes and a writable mount id.
        let r = unsafe {
            libc::syscall(
                libc::SYS_name_to_handle_at,
                libc::AT_FDCWD,
                c.as_ptr(),
                &mut handle as *mut FileHandle,
                &mut mount_id as *mut c_int,
                0,
            )
        };
        if r < 0 {
            errors.push(format!("name_to_handle_at {path}: {}", ename(errno())));
            continue;
        }
        // The handle is decoded on the mount of `mount_fd`: use the file
        // itself (its own mount, even when it is bind-mounted).
        let mount = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("open {path} as mount fd: {}", ename(os(&e))));
                continue;
            }
        };
        return match open_by_handle(mount.as_raw_fd(), &mut handle) {
            Ok(fd) => {
                let mut f = File::from(fd);
                let mut buf = [0u8; 256];
                let n = f
                    .read(&mut buf)
                    .map(|n| format!("read {n} bytes"))
                    .unwrap_or_else(|e| format!("read: {}", ename(os(&e))));
                escaped(format!("open_by_handle_at opened {path} from its handle ({n})"))
            }
            Err(e) => judge(&format!("open_by_handle_at({path})"), e, &[libc::ESTALE], &[]),
        };
    }
    // No real handle: forge one for the root inode of the root filesystem
    // (ext4-style FILEID_INO32_GEN, inode 2), as the shocker exploit does.
    let root = File::open("/").map_err(|e| probe(etext("open /", os(&e))))?;
    let mut handle = FileHandle { handle_bytes: 8, handle_type: 1, f_handle: [0; 128] };
    handle.f_handle[..4].copy_from_slice(&2u32.to_le_bytes());
    let prefix = errors.join("; ");
    match open_by_handle(root.as_raw_fd(), &mut handle) {
        Ok(_) => escaped(format!("{prefix}; open_by_handle_at opened a forged handle for inode 2")),
        Err(e) => judge(
            &format!("{prefix}; open_by_handle_at(forged inode-2 handle)"),
            e,
            &[libc::ESTALE, libc::EINVAL, libc::EOPNOTSUPP],
            &[],
        ),
    }
}

fn syslog_read() -> Res {
    // SAFETY: SYSLOG_ACTION_SIZE_BUFFER (10) uses no buffer.
    let size = unsafe { libc::klogctl(10, ptr::null_mut(), 0) };
    let size = match sysi(size) {
        Ok(s) => s,
        Err(e) => return judge("syslog(SYSLOG_ACTION_SIZE_BUFFER)", e, &[], &[]),
    };
    let mut buf = vec![0u8; size.clamp(1, 1 << 22) as usize];
    // SAFETY: SYSLOG_ACTION_READ_ALL (3) writes at most `len` bytes to `buf`.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as c_int) };
    escaped(format!(
        "syslog(SYSLOG_ACTION_SIZE_BUFFER) = {size}; SYSLOG_ACTION_READ_ALL {}",
        if n >= 0 { format!("read {n} bytes") } else { format!("failed: {}", ename(errno())) }
    ))
}

fn read_dev_kmsg() -> Res {
    let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg") {
        Ok(f) => f,
        Err(e) => return judge("open /dev/kmsg", os(&e), &[], &[HIDDEN]),
    };
    let mut buf = [0u8; 8192];
    for _ in 0..4 {
        match f.read(&mut buf) {
            Ok(n) => return escaped(format!("read a {n}-byte kernel log record from /dev/kmsg")),
            Err(e) if os(&e) == libc::EPIPE => continue, // record overwritten; next one
            Err(e) => return judge("read /dev/kmsg", os(&e), &[], &[]),
        }
    }
    Err(probe("read /dev/kmsg: EPIPE four times"))
}

fn read_kallsyms_addresses() -> Res {
    let data = match read_some(Path::new("/proc/kallsyms"), 16384) {
        Ok(d) => d,
        Err(e) => return judge("open+read /proc/kallsyms", e, &[], &[HIDDEN]),
    };
    let text = String::from_utf8_lossy(&data);
    let mut lines = 0;
    for line in text.lines().take(200) {
        lines += 1;
        let addr = line.split_whitespace().next().unwrap_or("0");
        if u64::from_str_radix(addr, 16).map(|a| a != 0).unwrap_or(false) {
            return escaped(format!("/proc/kallsyms shows real addresses, e.g. \"{}\"", line.escape_default()));
        }
    }
    if lines == 0 {
        return blocked("/proc/kallsyms is empty");
    }
    blocked(format!("/proc/kallsyms shows only zero addresses ({lines} lines checked): kptr_restrict hides them"))
}

fn personality_no_aslr() -> Res {
    // SAFETY: 0xffffffff only queries the persona.
    let current = unsafe { libc::personality(0xffff_ffff) };
    if current < 0 {
        return judge("personality(query)", errno(), &[], &[]);
    }
    let wanted = (current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong;
    // SAFETY: sets a persona value; no pointers.
    let r = unsafe { libc::personality(wanted) };
    if r < 0 {
        return judge("personality(ADDR_NO_RANDOMIZE)", errno(), &[], &[]);
    }
    // SAFETY: as above, query only.
    let now = unsafe { libc::personality(0xffff_ffff) };
    // SAFETY: restores the original persona.
    unsafe { libc::personality(current as libc::c_ulong) };
    if now >= 0 && now & libc::ADDR_NO_RANDOMIZE != 0 {
        escaped("personality(ADDR_NO_RANDOMIZE) took effect (restored)")
    } else {
        blocked(format!("personality(ADDR_NO_RANDOMIZE) returned {r} but the persona is {now:#x}"))
    }
}

// -- Network ----------------------------------------------------------------

fn socket_attempt(domain: c_int, ty: c_int, proto: c_int, name: &str) -> Result<Result<OwnedFd, Report>, Fail> {
    // SAFETY: plain integer arguments.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    match sysi(fd) {
        Ok(fd) => Ok(Ok(own_fd(fd as c_long))),
        Err(e) => match judge(&format!("socket({name})"), e, &[], &[&[libc::EPROTONOSUPPORT, libc::ESOCKTNOSUPPORT]]) {
            Ok(report) => Ok(Err(report)),
            Err(f) => Err(f),
        },
    }
}

fn socket_simple(domain: c_int, ty: c_int, proto: c_int, name: &str) -> Res {
    match socket_attempt(domain, ty, proto, name)? {
        Ok(_) => escaped(format!("socket({name}) created (closed)")),
        Err(report) => Ok(report),
    }
}

fn socket_raw_inet() -> Res {
    socket_simple(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP, "AF_INET, SOCK_RAW, IPPROTO_ICMP")
}

fn socket_packet() -> Res {
    let proto = (libc::ETH_P_ALL as u16).to_be() as c_int;
    socket_simple(libc::AF_PACKET, libc::SOCK_RAW, proto, "AF_PACKET, SOCK_RAW, ETH_P_ALL")
}

fn socket_netlink() -> Res {
    socket_simple(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE, "AF_NETLINK, SOCK_RAW, NETLINK_ROUTE")
}

fn socket_vsock() -> Res {
    socket_simple(libc::AF_VSOCK, libc::SOCK_STREAM, 0, "AF_VSOCK, SOCK_STREAM")
}

fn socket_alg() -> Res {
    let fd = match socket_attempt(libc::AF_ALG, libc::SOCK_SEQPACKET, 0, "AF_ALG, SOCK_SEQPACKET")? {
        Ok(fd) => fd,
        Err(report) => return Ok(report),
    };
    // SAFETY: an all-zero sockaddr_alg is valid; the fields are filled next.
    let mut sa: libc::sockaddr_alg = unsafe { std::mem::zeroed() };
    sa.salg_family = libc::AF_ALG as u16;
    sa.salg_type[..4].copy_from_slice(b"hash");
    sa.salg_name[..6].copy_from_slice(b"sha256");
    // SAFETY: `sa` is a valid sockaddr_alg of the given size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_alg).cast(),
            std::mem::size_of::<libc::sockaddr_alg>() as u32,
        )
    };
    escaped(format!(
        "socket(AF_ALG) created; bind hash/sha256 {}",
        if r == 0 { "succeeded".to_string() } else { format!("failed: {}", ename(errno())) }
    ))
}

fn tcp_connect_host() -> Res {
    let port = env_port()?;
    match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => escaped(format!(
            "connected to the host listener 127.0.0.1:{port} (local {})",
            s.local_addr().map(|a| a.to_string()).unwrap_or_default()
        )),
        Err(e) => judge(&format!("connect 127.0.0.1:{port}"), os(&e), &[], &[NET]),
    }
}

fn tcp_listen() -> Res {
    match std::net::TcpListener::bind(("127.0.0.1", 0)) {
        Ok(l) => {
            escaped(format!("listening on {} (closed)", l.local_addr().map(|a| a.to_string()).unwrap_or_default()))
        }
        Err(e) => judge("bind+listen 127.0.0.1:0", os(&e), &[], &[NET]),
    }
}

fn udp_sendto() -> Res {
    let sock = match std::net::UdpSocket::bind(("0.0.0.0", 0)) {
        Ok(s) => s,
        Err(e) => return judge("socket+bind UDP 0.0.0.0:0", os(&e), &[], &[NET]),
    };
    match sock.send_to(b"sandbox-probe", ("127.0.0.1", 9)) {
        Ok(n) => escaped(format!("sent a {n}-byte UDP datagram to 127.0.0.1:9")),
        Err(e) => judge("sendto 127.0.0.1:9", os(&e), &[], &[NET]),
    }
}

fn unix_connect_path() -> Res {
    let path = env_path("PROBE_UNIX")?;
    match UnixStream::connect(&path) {
        Ok(_) => escaped(format!("connected to the host UNIX socket {}", path.display())),
        Err(e) => judge(&format!("connect {}", path.display()), os(&e), &[], &[HIDDEN, NET]),
    }
}

fn unix_connect_abstract() -> Res {
    let name = env_string("PROBE_ABSTRACT")?;
    let addr =
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| probe(format!("abstract address @{name}: {e}")))?;
    match UnixStream::connect_addr(&addr) {
        Ok(_) => escaped(format!("connected to the host abstract socket @{name}")),
        Err(e) => judge(&format!("connect @{name}"), os(&e), &[], &[HIDDEN, NET]),
    }
}

// -- Exec and privilege -----------------------------------------------------

fn exec_setuid_binary() -> Res {
    let path = env_path("PROBE_SETUID")?;
    let c = cpath(&path)?;
    // SAFETY: getuid/geteuid cannot fail.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    let drop_to = if uid == 0 || euid == 0 { Some(65534) } else { None };
    let ruid = drop_to.unwrap_or(uid);
    let argv = [cstring("sandbox-probe")?, cstring("whoami-euid")?];
    let s = spawn(ExecTarget::Path(&c), &argv, drop_to)?;
    let what = format!("exec {} as uid {ruid}", path.display());
    if let Some((stage, e)) = s.failure {
        if stage != "execve" {
            return Err(probe(etext(
                &format!(
                    "running as uid {uid} (euid {euid}) but cannot drop to uid {ruid} before the \
                     exec, so no escalation could be shown: {stage}"
                ),
                e,
            )));
        }
        let hint = if drop_to.is_some() && e == libc::EACCES {
            " (bare, every directory on the path must be searchable by uid 65534)"
        } else {
            ""
        };
        return judge(&format!("{what}{hint}"), e, &[], &[HIDDEN]);
    }
    if !(libc::WIFEXITED(s.status) && libc::WEXITSTATUS(s.status) == 0) {
        if libc::WIFSIGNALED(s.status) && libc::WTERMSIG(s.status) == libc::SIGSYS {
            return blocked(format!("{what}: killed by SIGSYS (seccomp)"));
        }
        return Err(probe(format!("{what}: ended with {}", describe_status(s.status))));
    }
    let text = String::from_utf8_lossy(&s.stdout);
    let child_euid: u32 =
        text.trim().parse().map_err(|_| probe(format!("{what}: whoami-euid printed {:?}", text.trim())))?;
    if child_euid == 0 && ruid != 0 {
        escaped(format!("{what}: the setuid binary ran with euid 0"))
    } else {
        blocked(format!("{what}: the setuid exec did not raise euid (euid {child_euid})"))
    }
}

fn memfd_exec() -> Res {
    let (bytes, argv, source) = exec_payload()?;
    let name = c"sandbox-probe";
    // MFD_CLOEXEC | MFD_EXEC; kernels before 6.3 do not know MFD_EXEC.
    // SAFETY: a NUL-terminated name and flags.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | 0x0010) };
    if fd < 0 && errno() == libc::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    }
    let fd = match sysi(fd) {
        Ok(fd) => own_fd(fd as c_long),
        Err(e) => return judge("memfd_create", e, &[], &[LIMITS]),
    };
    let mut f = File::from(fd);
    if let Err(e) = f.write_all(&bytes) {
        return judge(&format!("write {source} into the memfd"), os(&e), &[], &[LIMITS]);
    }
    let s = spawn(ExecTarget::Fd(f.as_raw_fd()), &argv, None)?;
    judge_ran(&format!("execveat(memfd holding {source})"), &s)
}

fn exec_from_work() -> Res {
    let (bytes, argv, source) = exec_payload()?;
    let path = env_path("PROBE_WORK")?.join(scratch("exec"));
    let mut f = match OpenOptions::new().write(true).create_new(true).mode(0o700).open(&path) {
        Ok(f) => f,
        Err(e) => return judge(&format!("create {}", path.display()), os(&e), &[], &[LIMITS]),
    };
    let _cleanup = Cleanup::file(&path);
    if let Err(e) = f.write_all(&bytes) {
        return judge(&format!("write {}", path.display()), os(&e), &[], &[LIMITS]);
    }
    // Close the writer before exec, or the kernel answers ETXTBSY.
    drop(f);
    if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(0o755)) {
        return judge(&format!("chmod 755 {}", path.display()), os(&e), &[], &[]);
    }
    let c = cpath(&path)?;
    let s = spawn(ExecTarget::Path(&c), &argv, None)?;
    judge_ran(&format!("exec {} (a copy of {source})", path.display()), &s)
}

fn exec_huge_args() -> Res {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is writable.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut rl) } < 0 {
        return Err(probe(etext("getrlimit(RLIMIT_STACK)", errno())));
    }
    let raised = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
    // SAFETY: `raised` is a valid rlimit; soft = hard is always permitted.
    if unsafe { libc::setrlimit(libc::RLIMIT_STACK, &raised) } < 0 {
        return Err(probe(etext("setrlimit(RLIMIT_STACK soft=hard)", errno())));
    }
    let exe: PathBuf = if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::args_os().next().map(PathBuf::from).unwrap_or_default()
    };
    let c = cpath(&exe)?;
    let mut argv = vec![cstring("sandbox-probe")?, cstring("whoami-euid")?];
    let chunk = "A".repeat(64 * 1024 - 1);
    for _ in 0..48 {
        argv.push(cstring(&chunk)?);
    }
    let s = spawn(ExecTarget::Path(&c), &argv, None)?;
    let limit = if rl.rlim_max == libc::RLIM_INFINITY { "unlimited".to_string() } else { rl.rlim_max.to_string() };
    judge_ran(&format!("exec self with 3 MiB of arguments (RLIMIT_STACK hard {limit})"), &s)
}

fn own_scratch_file(tag: &str) -> Result<Result<(PathBuf, Cleanup), Report>, Fail> {
    let path = env_path("PROBE_WORK")?.join(scratch(tag));
    match OpenOptions::new().write(true).create_new(true).mode(0o755).open(&path) {
        Ok(_) => {
            let guard = Cleanup::file(&path);
            Ok(Ok((path, guard)))
        }
        Err(e) => match judge(&format!("create {}", path.display()), os(&e), &[], &[LIMITS]) {
            Ok(_) => Err(probe(etext(&format!("create scratch file {}", path.display()), os(&e)))),
            Err(f) => Err(f),
        },
    }
}

fn chmod_setuid() -> Res {
    let (path, _guard) = match own_scratch_file("suid")? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(0o4755)) {
        return judge(&format!("chmod 4755 {}", path.display()), os(&e), &[], &[]);
    }
    let mode = fs::metadata(&path).map_err(|e| probe(etext("stat", os(&e))))?.mode();
    if mode & libc::S_ISUID != 0 {
        escaped(format!("chmod u+s {}: mode is now {:o}", path.display(), mode & 0o7777))
    } else {
        blocked(format!("chmod 4755 {} reported success but mode is {:o}", path.display(), mode & 0o7777))
    }
}

fn mknod_char_dev() -> Res {
    let path = env_path("PROBE_WORK")?.join(scratch("null"));
    let c = cpath(&path)?;
    // SAFETY: a NUL-terminated path, a mode and a device number.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    match sysi(r) {
        Ok(_) => {
            let _cleanup = Cleanup::file(&path);
            let is_chr = fs::symlink_metadata(&path).map(|m| m.file_type().is_char_device()).unwrap_or(false);
            escaped(format!(
                "mknod {} c 1 3 succeeded ({}; removed)",
                path.display(),
                if is_chr { "a char device" } else { "stat did not confirm it" }
            ))
        }
        Err(e) => judge(&format!("mknod {} c 1 3", path.display()), e, &[], &[LIMITS]),
    }
}

fn setxattr_file_caps() -> Res {
    let (path, _guard) = match own_scratch_file("fcaps")? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let c = cpath(&path)?;
    // struct vfs_cap_data, revision 2, effective: permitted = CAP_SYS_ADMIN.
    let mut value = [0u8; 20];
    value[..4].copy_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    value[4..8].copy_from_slice(&(1u32 << 21).to_le_bytes());
    // SAFETY: NUL-terminated path and name, a readable 20-byte value.
    let r =
        unsafe { libc::setxattr(c.as_ptr(), c"security.capability".as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    match sysi(r) {
        Ok(_) => escaped(format!("set security.capability cap_sys_admin+ep on {} (removed)", path.display())),
        Err(e) => judge(&format!("setxattr security.capability {}", path.display()), e, &[], &[LIMITS]),
    }
}

fn chown_root() -> Res {
    let (path, _guard) = match own_scratch_file("chown")? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    match std::os::unix::fs::chown(&path, Some(0), Some(0)) {
        Ok(()) => escaped(format!("chown 0:0 {} succeeded (removed)", path.display())),
        // EINVAL: uid 0 does not exist in this user namespace.
        Err(e) => judge(&format!("chown 0:0 {}", path.display()), os(&e), &[], &[&[libc::EINVAL]]),
    }
}

fn setuid_root() -> Res {
    // SAFETY: getuid/geteuid cannot fail.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    // SAFETY: an id argument only; the probe is single-threaded.
    let r = unsafe { libc::setuid(0) };
    match sysi(r) {
        Ok(_) => {
            // SAFETY: getuid/geteuid cannot fail.
            let (now_uid, now_euid) = unsafe { (libc::getuid(), libc::geteuid()) };
            escaped(format!("setuid(0) succeeded (was uid {uid}, euid {euid}): now uid {now_uid}, euid {now_euid}"))
        }
        // EINVAL: uid 0 does not exist in this user namespace.
        Err(e) => judge("setuid(0)", e, &[], &[&[libc::EINVAL]]),
    }
}

fn setresuid_root() -> Res {
    // SAFETY: id arguments only.
    let r = unsafe { libc::setresuid(0, 0, 0) };
    match sysi(r) {
        Ok(_) => escaped("setresuid(0, 0, 0) succeeded"),
        Err(e) => judge("setresuid(0, 0, 0)", e, &[], &[&[libc::EINVAL]]),
    }
}

fn setgroups_root() -> Res {
    let groups: [libc::gid_t; 1] = [0];
    // SAFETY: a readable one-element group list.
    let r = unsafe { libc::setgroups(1, groups.as_ptr()) };
    match sysi(r) {
        Ok(_) => escaped("setgroups([0]) succeeded"),
        Err(e) => judge("setgroups([0])", e, &[], &[&[libc::EINVAL]]),
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn capget() -> Result<[CapData; 2], i32> {
    let mut header = CapHeader { version: 0x2008_0522, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid v3 header and two writable data structs.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) };
    sys(r).map(|_| data)
}

fn capset_sys_admin() -> Res {
    const SYS_ADMIN: u32 = 1 << 21;
    let mut data = match capget() {
        Ok(d) => d,
        Err(e) => return judge("capget", e, &[], &[]),
    };
    let before = if data[0].effective & SYS_ADMIN != 0 { "already effective" } else { "not held before" };
    data[0].effective |= SYS_ADMIN;
    data[0].permitted |= SYS_ADMIN;
    let mut header = CapHeader { version: 0x2008_0522, pid: 0 };
    // SAFETY: a valid v3 header and two readable data structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    if let Err(e) = sys(r) {
        return judge("capset(+CAP_SYS_ADMIN)", e, &[], &[]);
    }
    match capget() {
        Ok(now) if now[0].effective & SYS_ADMIN != 0 => {
            escaped(format!("capset put CAP_SYS_ADMIN into the effective set ({before})"))
        }
        _ => blocked("capset reported success but CAP_SYS_ADMIN is not effective"),
    }
}

fn chroot_attempt() -> Res {
    // SAFETY: a NUL-terminated path.
    let r = unsafe { libc::chroot(c"/".as_ptr()) };
    match sysi(r) {
        Ok(_) => escaped("chroot(\"/\") succeeded"),
        Err(e) => judge("chroot(\"/\")", e, &[], &[]),
    }
}

// -- TTY --------------------------------------------------------------------

fn tiocsti_inject() -> Res {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(0) } != 1 {
        return Err(probe("fd 0 is not a tty: TIOCSTI needs the test to pass a pty slave as stdin"));
    }
    let byte: c_char = b'#' as c_char;
    // SAFETY: TIOCSTI reads one byte from the given pointer.
    let r = unsafe { libc::ioctl(0, libc::TIOCSTI, &byte as *const c_char) };
    match sysi(r) {
        Ok(_) => {
            // SAFETY: discards the injected input again.
            unsafe { libc::tcflush(0, libc::TCIFLUSH) };
            escaped("TIOCSTI pushed a byte into the input of the tty on fd 0 (flushed)")
        }
        // EIO: dev.tty.legacy_tiocsti=0 refuses TIOCSTI without CAP_SYS_ADMIN.
        Err(e) => judge("ioctl(0, TIOCSTI)", e, &[], &[&[libc::EIO]]),
    }
}

// -- Resources --------------------------------------------------------------

fn fork_bomb() -> Res {
    const WANT: usize = 600;
    let mut kids = Vec::with_capacity(WANT);
    let mut failure = None;
    for _ in 0..WANT {
        match fork_child(|| loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }) {
            Ok(pid) => kids.push(pid),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    for &pid in &kids {
        // SAFETY: each pid is an unreaped child of this probe.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for &pid in &kids {
        let _ = wait_pid(pid);
    }
    match failure {
        None => escaped(format!("forked {WANT} children (all killed and reaped)")),
        Some(e) => judge(&format!("fork after {} children (all killed)", kids.len()), e, &[], &[LIMITS]),
    }
}

fn memory_bomb() -> Res {
    const SIZE: usize = 1536 << 20;
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return judge("mmap 1.5 GiB anonymous", errno(), &[], &[LIMITS]);
    }
    let base = p.cast::<u8>();
    for off in (0..SIZE).step_by(4096) {
        // SAFETY: `off` is inside the fresh SIZE-byte writable mapping.
        unsafe { ptr::write_volatile(base.add(off), 1) };
    }
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(p, SIZE) };
    escaped("mapped and touched 1.5 GiB of anonymous memory (freed)")
}

fn fill(path: &Path, total: usize) -> Res {
    // SAFETY: ignoring SIGXFSZ turns the file-size limit into EFBIG.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let mut f = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(f) => f,
        Err(e) => return judge(&format!("create {}", path.display()), os(&e), &[], &[HIDDEN, LIMITS]),
    };
    let _cleanup = Cleanup::file(path);
    let chunk = vec![0x5Au8; 1 << 20];
    let mut written = 0usize;
    while written < total {
        let want = chunk.len().min(total - written);
        match f.write(&chunk[..want]) {
            Ok(0) => return Err(probe(format!("write {} returned 0 after {written} bytes", path.display()))),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return judge(&format!("write {} after {} MiB", path.display(), written >> 20), os(&e), &[], &[LIMITS]);
            }
        }
    }
    escaped(format!("wrote {} MiB to {} (removed)", total >> 20, path.display()))
}

fn disk_fill() -> Res {
    fill(&env_path("PROBE_WORK")?.join(scratch("fill")), 64 << 20)
}

fn tmp_fill() -> Res {
    fill(&Path::new("/tmp").join(scratch("fill")), 600 << 20)
}

fn setrlimit_nproc_raise() -> Res {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is writable.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut rl) } < 0 {
        return Err(probe(etext("getrlimit(RLIMIT_NPROC)", errno())));
    }
    let (from, to) = if rl.rlim_max == libc::RLIM_INFINITY {
        // Nothing is above infinity: lower the hard limit first (always
        // allowed, and this process exits soon), then try to raise it again.
        let lowered = libc::rlimit { rlim_cur: rl.rlim_cur.min(1 << 20), rlim_max: 1 << 20 };
        // SAFETY: `lowered` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &lowered) } < 0 {
            return Err(probe(etext("setrlimit(RLIMIT_NPROC) lowering", errno())));
        }
        (lowered, libc::rlimit { rlim_cur: lowered.rlim_cur, rlim_max: (1 << 20) + 1 })
    } else {
        (rl, libc::rlimit { rlim_cur: rl.rlim_cur, rlim_max: rl.rlim_max + 1 })
    };
    // SAFETY: `to` is a valid rlimit.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &to) };
    let has_resource = capget().map(|d| d[0].effective & (1 << 24) != 0).unwrap_or(false);
    let op = format!(
        "setrlimit(RLIMIT_NPROC hard {} -> {}) (CAP_SYS_RESOURCE {})",
        from.rlim_max,
        to.rlim_max,
        if has_resource { "effective" } else { "not effective" }
    );
    match sysi(r) {
        Ok(_) => escaped(format!("{op} succeeded")),
        Err(e) => judge(&op, e, &[], &[]),
    }
}

fn raise_priority() -> Res {
    // SAFETY: resets errno so a legitimate -1 from getpriority is told apart.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: plain integer arguments.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if current == -1 && errno() != 0 {
        return judge("getpriority", errno(), &[], &[]);
    }
    if current <= -20 {
        return Err(probe("nice is already -20: nothing to raise"));
    }
    let target = current - 1;
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target) };
    match sysi(r) {
        Ok(_) => {
            // SAFETY: back to the original nice value (raising nice is always allowed).
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, current) };
            escaped(format!("setpriority lowered nice {current} -> {target} (restored)"))
        }
        Err(e) => judge(&format!("setpriority(nice {current} -> {target})"), e, &[], &[]),
    }
}

fn sched_fifo() -> Res {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: a readable sched_param.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    match sysi(r) {
        Ok(_) => {
            let other = libc::sched_param { sched_priority: 0 };
            // SAFETY: as above; back to the normal policy.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &other) };
            escaped("sched_setscheduler(SCHED_FIFO, 1) succeeded (back to SCHED_OTHER)")
        }
        Err(e) => judge("sched_setscheduler(SCHED_FIFO, 1)", e, &[], &[]),
    }
}

// -- Signals to processes outside -------------------------------------------

fn kill_victim(sig: c_int, name: &str) -> Res {
    let pid = env_pid()?;
    // SAFETY: `pid` is above 1 (never 0 or -1: no group or broadcast kill),
    // and the signal is 0 or SIGCONT, harmless to the victim.
    let r = unsafe { libc::kill(pid, sig) };
    match sysi(r) {
        Ok(_) => escaped(format!("kill({pid}, {name}) succeeded on the host victim")),
        Err(e) => judge(&format!("kill({pid}, {name})"), e, &[], &[HIDDEN]),
    }
}

fn kill_victim_sig0() -> Res {
    kill_victim(0, "0")
}

fn kill_victim_sigcont() -> Res {
    kill_victim(libc::SIGCONT, "SIGCONT")
}

fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, i32> {
    // SAFETY: integer arguments only.
    sys(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(own_fd)
}

fn pidfd_signal_victim() -> Res {
    let pid = env_pid()?;
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => return judge(&format!("pidfd_open({pid})"), e, &[], &[HIDDEN]),
    };
    // SAFETY: an open pidfd, SIGCONT, no siginfo.
    let r =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), libc::SIGCONT, ptr::null::<c_void>(), 0) };
    match sys(r) {
        Ok(_) => escaped(format!("pidfd_open({pid}) + pidfd_send_signal(SIGCONT) succeeded")),
        Err(e) => judge(&format!("pidfd_send_signal(pidfd of {pid}, SIGCONT)"), e, &[], &[HIDDEN]),
    }
}

fn tgkill_victim() -> Res {
    let pid = env_pid()?;
    // SAFETY: integer arguments; SIGCONT is harmless.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGCONT) };
    match sys(r) {
        Ok(_) => escaped(format!("tgkill({pid}, {pid}, SIGCONT) succeeded")),
        Err(e) => judge(&format!("tgkill({pid}, {pid}, SIGCONT)"), e, &[], &[HIDDEN]),
    }
}

fn rt_sigqueueinfo_victim() -> Res {
    let pid = env_pid()?;
    // siginfo_t: si_signo, si_errno, si_code, then (at 16) si_pid, si_uid.
    let mut info = [0i32; 32];
    info[0] = libc::SIGCONT;
    info[2] = -1; // SI_QUEUE: a negative code is required for other processes
    info[4] = std::process::id() as i32;
    // SAFETY: getuid cannot fail.
    info[5] = unsafe { libc::getuid() } as i32;
    // SAFETY: `info` is a readable 128-byte siginfo_t.
    let r = unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid, libc::SIGCONT, info.as_ptr()) };
    match sys(r) {
        Ok(_) => escaped(format!("rt_sigqueueinfo({pid}, SIGCONT) succeeded")),
        Err(e) => judge(&format!("rt_sigqueueinfo({pid}, SIGCONT)"), e, &[], &[HIDDEN]),
    }
}

fn pidfd_getfd_victim() -> Res {
    let pid = env_pid()?;
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => return judge(&format!("pidfd_open({pid})"), e, &[], &[HIDDEN]),
    };
    for target in 0..3 {
        // SAFETY: an open pidfd and integer arguments.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
        match sys(r) {
            Ok(fd) => {
                drop(own_fd(fd));
                return escaped(format!("pidfd_getfd took a copy of fd {target} of host pid {pid} (closed)"));
            }
            Err(libc::EBADF) => continue,
            Err(e) => return judge(&format!("pidfd_getfd(pidfd of {pid}, {target})"), e, &[], &[HIDDEN]),
        }
    }
    reached(format!("pidfd_getfd on host pid {pid}: got past the ptrace check, but it has no fd 0, 1 or 2 (EBADF)"))
}

// -- System state -----------------------------------------------------------

fn sethostname() -> Res {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its full length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } < 0 {
        return Err(probe(etext("gethostname", errno())));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    // SAFETY: `buf` holds `len` readable bytes.
    let r = unsafe { libc::sethostname(buf.as_ptr().cast(), len) };
    match sysi(r) {
        Ok(_) => escaped(format!("sethostname({name:?}) (its current value) succeeded")),
        Err(e) => judge(&format!("sethostname({name:?})"), e, &[], &[]),
    }
}

fn settimeofday() -> Res {
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    // SAFETY: `tv` is writable; no timezone.
    unsafe { libc::gettimeofday(&mut tv, ptr::null_mut()) };
    // SAFETY: `tv` is a valid timeval; no timezone.
    let r = unsafe { libc::settimeofday(&tv, ptr::null()) };
    match sysi(r) {
        Ok(_) => escaped("settimeofday to the current time succeeded"),
        Err(e) => judge("settimeofday(now)", e, &[], &[]),
    }
}

fn clock_settime() -> Res {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is writable.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    // SAFETY: `ts` is a valid timespec.
    let r = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) };
    match sysi(r) {
        Ok(_) => escaped("clock_settime(CLOCK_REALTIME) to the current time succeeded"),
        Err(e) => judge("clock_settime(CLOCK_REALTIME, now)", e, &[], &[]),
    }
}

fn reboot_bad_magic() -> Res {
    // Wrong magic numbers: the kernel answers EINVAL right after checking
    // CAP_SYS_BOOT. The command, were it ever reached, is CAD_OFF (0).
    // SAFETY: integer arguments and a null argument pointer.
    let r = unsafe { libc::syscall(libc::SYS_reboot, 0x0bad_f00d, 0x0bad_f00d, 0, ptr::null::<c_void>()) };
    match sys(r) {
        Ok(_) => escaped("reboot with bad magic returned success"),
        Err(e) => judge("reboot(bad magic, CAD_OFF)", e, &[libc::EINVAL], &[]),
    }
}

fn swapon_missing() -> Res {
    let path = c"/nonexistent-sandbox-probe/swap";
    // SAFETY: a NUL-terminated path and no flags.
    let r = unsafe { libc::swapon(path.as_ptr(), 0) };
    match sysi(r) {
        Ok(_) => escaped("swapon of a nonexistent path succeeded"),
        Err(e) => judge("swapon(/nonexistent-sandbox-probe/swap)", e, &[libc::ENOENT, libc::ENOTDIR], &[]),
    }
}

fn acct_missing() -> Res {
    let path = c"/nonexistent-sandbox-probe/acct";
    // SAFETY: a NUL-terminated path.
    let r = unsafe { libc::acct(path.as_ptr()) };
    match sysi(r) {
        Ok(_) => {
            // SAFETY: a null path turns accounting off again.
            unsafe { libc::acct(ptr::null()) };
            escaped("acct of a nonexistent path succeeded (turned off again)")
        }
        Err(e) => judge("acct(/nonexistent-sandbox-probe/acct)", e, &[libc::ENOENT, libc::ENOTDIR], &[]),
    }
}

fn quotactl_invalid() -> Res {
    let root = File::open("/").map_err(|e| probe(etext("open /", os(&e))))?;
    // QCMD(0x8000ff, USRQUOTA): an unknown command, which needs
    // CAP_SYS_ADMIN and then fails with EINVAL.
    let cmd: u32 = 0x8000_ff00;
    // SAFETY: an open fd, integer arguments and a null address.
    let r = unsafe { libc::syscall(libc::SYS_quotactl_fd, root.as_raw_fd(), cmd, 0, ptr::null_mut::<c_void>()) };
    match sys(r) {
        Ok(_) => escaped("quotactl_fd(/, unknown command) succeeded"),
        Err(e) => judge("quotactl_fd(/, unknown command)", e, &[libc::EINVAL], &[]),
    }
}

fn write_proc_file(path: &str, value: &[u8]) -> Result<(), (String, i32)> {
    let mut f = OpenOptions::new().write(true).open(path).map_err(|e| (format!("open {path} O_WRONLY"), os(&e)))?;
    f.write_all(value).map_err(|e| (format!("write {path}"), os(&e)))
}

fn write_drop_caches() -> Res {
    match write_proc_file("/proc/sys/vm/drop_caches", b"1") {
        Ok(()) => escaped("wrote \"1\" to /proc/sys/vm/drop_caches"),
        Err((op, e)) => judge(&op, e, &[], &[HIDDEN]),
    }
}

fn write_core_pattern() -> Res {
    let path = "/proc/sys/kernel/core_pattern";
    let current = match read_some(Path::new(path), 4096) {
        Ok(v) => v,
        Err(e) => return judge(&format!("read {path}"), e, &[], &[HIDDEN]),
    };
    match write_proc_file(path, &current) {
        Ok(()) => escaped(format!("rewrote {path} with its current value \"{}\"", short_text(&current))),
        Err((op, e)) => judge(&op, e, &[], &[HIDDEN]),
    }
}

fn open_sysrq_trigger() -> Res {
    let open_w = |p: &str| OpenOptions::new().write(true).open(p).map_err(|e| os(&e));
    match open_w("/proc/sysrq-trigger") {
        Ok(_) => escaped("opened /proc/sysrq-trigger for writing (closed without writing)"),
        Err(libc::ENOENT) if !Path::new("/proc/sys/kernel/sysrq").exists() => {
            // This kernel has no magic sysrq; use the other write-only
            // trigger in /proc instead, again without writing.
            match open_w("/proc/sys/vm/compact_memory") {
                Ok(_) => escaped(
                    "no sysrq in this kernel; opened the trigger /proc/sys/vm/compact_memory for writing \
                     instead (closed without writing)",
                ),
                Err(e) => {
                    judge("(no sysrq in this kernel) open /proc/sys/vm/compact_memory O_WRONLY", e, &[], &[HIDDEN])
                }
            }
        }
        Err(e) => judge("open /proc/sysrq-trigger O_WRONLY", e, &[], &[HIDDEN]),
    }
}

fn read_proc_kcore() -> Res {
    match read_some(Path::new("/proc/kcore"), 1) {
        Ok(d) if d.len() == 1 => escaped("read 1 byte of /proc/kcore"),
        Ok(_) => blocked("/proc/kcore reads empty: masked"),
        Err(libc::ENOENT) => match read_some(Path::new("/proc/kpageflags"), 8) {
            Ok(d) if !d.is_empty() => escaped(format!(
                "no /proc/kcore in this kernel; read {} bytes of /proc/kpageflags (physical page state) instead",
                d.len()
            )),
            Ok(_) => blocked("no /proc/kcore; /proc/kpageflags reads empty: masked"),
            Err(e) => judge("(no /proc/kcore) open+read /proc/kpageflags", e, &[], &[HIDDEN]),
        },
        Err(e) => judge("open+read /proc/kcore", e, &[], &[HIDDEN]),
    }
}

fn list_sys_kernel() -> Res {
    let entries = match fs::read_dir("/sys/kernel/mm") {
        Ok(it) => it,
        Err(e) => return judge("opendir /sys/kernel/mm", os(&e), &[], &[HIDDEN]),
    };
    let mut names: Vec<String> =
        entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    if names.is_empty() {
        return blocked("/sys/kernel/mm lists empty: masked");
    }
    names.sort();
    escaped(format!("listed /sys/kernel/mm: {}", names.join(", ")))
}

fn open_dev_mem_or_block() -> Res {
    let mut errors: Vec<(String, i32)> = Vec::new();
    // Opens and reads one device: Some((what happened, bytes read)).
    let mut read_dev = |path: &Path| -> Option<(String, usize)> {
        match File::open(path) {
            Ok(mut f) => {
                let mut buf = [0u8; 512];
                let (text, n) = match f.read(&mut buf) {
                    Ok(n) => (format!("read {n} bytes"), n),
                    Err(e) => (format!("read: {}", ename(os(&e))), 0),
                };
                Some((format!("opened {} ({text})", path.display()), n))
            }
            Err(e) => {
                errors.push((format!("open {}", path.display()), os(&e)));
                None
            }
        }
    };
    for p in ["/dev/mem", "/dev/kmem", "/dev/port"] {
        if let Some((done, _)) = read_dev(Path::new(p)) {
            return escaped(done);
        }
    }
    // Block devices, the root filesystem's first; the first one that yields
    // data wins, else the first one that opened at all.
    let root_dev = fs::metadata("/").map(|m| m.dev()).unwrap_or(0);
    let mut blocks: Vec<(bool, PathBuf)> = fs::read_dir("/dev")
        .map(|it| {
            it.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_block_device()).unwrap_or(false))
                .map(|e| {
                    let rdev = e.metadata().map(|m| m.rdev()).unwrap_or(u64::MAX);
                    (rdev != root_dev, e.path())
                })
                .collect()
        })
        .unwrap_or_default();
    blocks.sort();
    let mut opened_empty = None;
    for (_, path) in &blocks {
        match read_dev(path) {
            Some((done, n)) if n > 0 => {
                return escaped(format!("no readable /dev/mem; {done}, a block device"));
            }
            Some((done, _)) => {
                opened_empty.get_or_insert(done);
            }
            None => {}
        }
    }
    let text: Vec<String> = errors.iter().map(|(op, e)| format!("{op}: {}", ename(*e))).collect();
    if let Some(done) = opened_empty {
        return escaped(format!("{}; {done}, a block device", text.join("; ")));
    }
    if blocks.is_empty() && errors.iter().all(|(_, e)| *e == libc::ENOENT) {
        return blocked(format!("{}; no block device visible in /dev", text.join("; ")));
    }
    // Judge by the most telling errno: a refusal over "not there".
    let e = errors.iter().map(|(_, e)| *e).find(|e| *e != libc::ENOENT).unwrap_or(libc::ENOENT);
    judge(&text.join("; "), e, &[], &[HIDDEN])
}

fn cgroup_mkdir() -> Res {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v2 = None;
    let mut v1 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split_whitespace().nth(4);
        let fstype = right.split_whitespace().next();
        match (mount_point, fstype) {
            (Some(m), Some("cgroup2")) if v2.is_none() => v2 = Some(PathBuf::from(m)),
            (Some(m), Some("cgroup")) if v1.is_none() => v1 = Some(PathBuf::from(m)),
            _ => {}
        }
    }
    let Some(root) = v2.or(v1) else {
        return blocked("no cgroup filesystem is mounted here");
    };
    let dir = root.join(scratch("cg"));
    match fs::create_dir(&dir) {
        Ok(()) => {
            let removed = fs::remove_dir(&dir).is_ok();
            escaped(format!(
                "created cgroup {} ({})",
                dir.display(),
                if removed { "removed" } else { "could NOT remove it" }
            ))
        }
        Err(e) => judge(&format!("mkdir {}", dir.display()), os(&e), &[], &[HIDDEN, LIMITS]),
    }
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

fn usage() -> ! {
    eprintln!("usage: sandbox-probe list | describe | ATTEMPT");
    std::process::exit(2)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(cmd) = args.get(1) else { usage() };
    let cmd = String::from_utf8_lossy(&cmd.clone().into_vec()).into_owned();
    let mut out = io::stdout().lock();
    match cmd.as_str() {
        "list" => {
            for at in ATTEMPTS {
                let _ = writeln!(out, "{}", at.name);
            }
        }
        "describe" => {
            let items: Vec<serde_json::Value> = ATTEMPTS
                .iter()
                .map(|at| {
                    serde_json::json!({
                        "name": at.name,
                        "category": at.category,
                        "what": at.what,
                        "bare_note": at.bare_note,
                    })
                })
                .collect();
            let _ = writeln!(out, "{}", serde_json::Value::Array(items));
        }
        "whoami-euid" => {
            // SAFETY: geteuid cannot fail.
            let _ = writeln!(out, "{}", unsafe { libc::geteuid() });
        }
        name => {
            let Some(at) = ATTEMPTS.iter().find(|at| at.name == name) else {
                eprintln!("sandbox-probe: unknown attempt {name:?} (see `sandbox-probe list`)");
                std::process::exit(2)
            };
            match (at.run)() {
                Ok(report) => {
                    let line = serde_json::json!({
                        "attempt": at.name,
                        "outcome": report.outcome.word(),
                        "detail": report.detail,
                    });
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                    std::process::exit(report.outcome.code())
                }
                Err(Fail::Usage(msg)) => {
                    eprintln!("sandbox-probe: {name}: {msg}");
                    std::process::exit(2)
                }
                Err(Fail::Probe(msg)) => {
                    eprintln!("sandbox-probe: {name}: probe error: {msg}");
                    std::process::exit(3)
                }
            }
        }
    }
}
