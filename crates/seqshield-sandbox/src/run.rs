//! Building the plan for one step, starting it, supervising its seccomp
//! notifications and collecting the report.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use crate::landlock;
use crate::limits::{Cgroup, Limits};
use crate::profile::{DenyAction, Profile};
use crate::report::{Controls, ExitStatus, MountReport, Report, SeccompReport, UserReport};
use crate::seccomp::{self, syscall_name};
use crate::sys::{
    self, BindSource, ChildPlan, MountOp, Stage, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY,
};
use crate::Error;

/// The uid and gid the step has inside its user namespace.
pub const INSIDE_ID: u32 = 1000;
/// First host uid/gid of the range steps are mapped to (root operator).
pub const UID_RANGE_BASE: u32 = 600_000_000;
/// Number of uids in the range (concurrent steps).
pub const UID_RANGE_LEN: u32 = 65_536;
/// The PATH a step gets unless it sets one.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A declared mount: `SRC:DST:ro|rw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Host path (canonicalised when the step starts).
    pub src: PathBuf,
    /// Path inside the sandbox.
    pub dst: PathBuf,
    /// Read-write (`rw`) or read-only (`ro`).
    pub writable: bool,
}

impl FromStr for Mount {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Usage(format!("--mount `{s}`: {why} (expected SRC:DST:ro or SRC:DST:rw)"));
        let mut parts = s.rsplitn(3, ':');
        let mode = parts.next().ok_or_else(|| bad("empty"))?;
        let dst = parts.next().ok_or_else(|| bad("no DST"))?;
        let src = parts.next().ok_or_else(|| bad("no SRC"))?;
        let writable = match mode {
            "ro" => false,
            "rw" => true,
            _ => return Err(bad(&format!("mode `{mode}` is neither ro nor rw"))),
        };
        if src.is_empty() || dst.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(Mount { src: src.into(), dst: dst.into(), writable })
    }
}

/// Standard streams for the tool: inherit ours, or use these descriptors.
#[derive(Debug, Default)]
pub struct Stdio {
    /// stdin
    pub stdin: Option<OwnedFd>,
    /// stdout
    pub stdout: Option<OwnedFd>,
    /// stderr
    pub stderr: Option<OwnedFd>,
}

/// What to run and under which controls.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The profile.
    pub profile: Profile,
    /// Declared mounts.
    pub mounts: Vec<Mount>,
    /// Limits over the profile's (`--limit`).
    pub limits: Limits,
    /// Working directory inside (default: the first rw mount, else `/`).
    pub cwd: Option<PathBuf>,
    /// Extra environment (`--env K=V`); the host environment is not passed.
    pub env: Vec<(String, String)>,
    /// Allow the host network (explicit policy switch; off by default).
    pub network: bool,
    /// Override the profile's action for blocked calls.
    pub action: Option<DenyAction>,
    /// Learning mode: every call is allowed and recorded.
    pub learn: bool,
}

impl Sandbox {
    /// A sandbox for `profile` with no mounts and its default limits.
    pub fn new(profile: Profile) -> Self {
        Sandbox {
            profile,
            mounts: Vec::new(),
            limits: Limits::default(),
            cwd: None,
            env: Vec::new(),
            network: false,
            action: None,
            learn: false,
        }
    }

    fn effective_limits(&self) -> Limits {
        let mut l = self.profile.limits.clone();
        let o = &self.limits;
        macro_rules! over {
            ($($f:ident),*) => { $( if o.$f.is_some() { l.$f = o.$f; } )* };
        }
        over!(cpu, address_space, nofile, nproc, fsize, stack, tmpfs, args, memory, pids, cpus);
        l
    }

    /// Runs `argv` in the sandbox and waits for it.
    pub fn run(&self, argv: &[OsString], stdio: Stdio) -> Result<Report, Error> {
        self.spawn(argv, stdio)?.wait()
    }

    /// Starts `argv` in the sandbox. The returned handle's [`Running::wait`]
    /// collects the report.
    pub fn spawn(&self, argv: &[OsString], stdio: Stdio) -> Result<Running, Error> {
        let t0 = Instant::now();
        if argv.is_empty() {
            return Err(Error::Usage("no command to run".into()));
        }
        let limits = self.effective_limits();
        let features = crate::check::probe_required()?;

        // Identity: a uid from the range when we are root, else our own.
        let (euid, egid) = sys::euid_egid();
        let root = euid == 0;
        let lease = if root { Some(UidLease::acquire()?) } else { None };
        let (host_uid, host_gid) = match &lease {
            Some(l) => (l.uid, l.uid),
            None => (euid, egid),
        };

        // Environment and command line.
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PATH".into(), SANDBOX_PATH.into());
        env.insert("HOME".into(), "/tmp".into());
        env.insert("TMPDIR".into(), "/tmp".into());
        env.insert("USER".into(), "seqshield".into());
        env.insert("LOGNAME".into(), "seqshield".into());
        env.insert("LANG".into(), "C.UTF-8".into());
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(Error::Usage(format!("--env `{k}`: invalid name or value")));
            }
            env.insert(k.clone(), v.clone());
        }
        let mut strings = Vec::new();
        for a in argv {
            strings.push(cstring(a.as_bytes(), "argument")?);
        }
        let nargs = strings.len();
        for (k, v) in &env {
            strings.push(cstring(format!("{k}={v}").as_bytes(), "environment")?);
        }
        let cmdline_bytes: u64 = strings.iter().map(|s| s.as_bytes().len() as u64 + 1 + 8).sum();
        if let Some(max) = limits.args {
            if cmdline_bytes > max {
                return Err(Error::Usage(format!(
                    "the command line and environment take {cmdline_bytes} bytes; the limit is {max} (--limit args=...)"
                )));
            }
        }
        let mut argvp: Vec<*const libc::c_char> = strings[..nargs].iter().map(|s| s.as_ptr()).collect();
        argvp.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = strings[nargs..].iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        let program = argv[0].as_bytes();
        let exec_paths: Vec<CString> = if program.contains(&b'/') {
            vec![cstring(program, "program")?]
        } else {
            let path = env.get("PATH").cloned().unwrap_or_default();
            path.split(':')
                .filter(|d| d.starts_with('/'))
                .map(|d| cstring(&[d.as_bytes(), b"/", program].concat(), "program"))
                .collect::<Result<_, _>>()?
        };

        // The mount plan.
        let mut fsplan = FsPlan::new(&self.profile)?;
        let mut idmapped = Vec::new();
        let mut mount_reports = Vec::new();
        for m in &self.mounts {
            let src = m.src.canonicalize().map_err(|e| {
                Error::Usage(format!("--mount {}: cannot use {}: {e}", m.dst.display(), m.src.display()))
            })?;
            let dst = clean_dst(&m.dst)?;
            fsplan.check_user_dst(&dst)?;
            let is_dir = src.is_dir();
            let attr = if m.writable {
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
            } else {
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
            };
            let mut report = MountReport {
                src: src.display().to_string(),
                dst: dst.display().to_string(),
                mode: if m.writable { "rw" } else { "ro" }.into(),
                options: mount_options(attr),
                idmapped: None,
            };
            let source = if m.writable && root {
                let meta =
                    std::fs::metadata(&src).map_err(|e| Error::Usage(format!("--mount {}: {e}", src.display())))?;
                use std::os::unix::fs::MetadataExt;
                let fd = sys::idmapped_clone(&cstring(src.as_os_str().as_bytes(), "path")?, (meta.uid(), meta.gid()), (host_uid, host_gid), attr)
                    .map_err(|e| Error::Setup(format!(
                        "--mount {}: cannot make an idmapped mount of {} ({e}); the step runs as uid {host_uid} and writes through an idmapped mount, which needs a file system that supports them (ext4, xfs, btrfs; tmpfs from Linux 6.3)",
                        dst.display(), src.display()
                    )))?;
                report.idmapped =
                    Some(format!("owner {}:{} appears as the step's {INSIDE_ID}:{INSIDE_ID}", meta.uid(), meta.gid()));
                let raw = fd.as_raw_fd();
                idmapped.push(fd);
                BindSource::Fd(raw)
            } else {
                BindSource::Path { src: cstring(src.as_os_str().as_bytes(), "path")?, attr }
            };
            fsplan.add_bind(source, &dst, is_dir, format!("--mount {}:{}", src.display(), dst.display()));
            if m.writable {
                fsplan.rw.push(dst.clone());
            }
            mount_reports.push(report);
        }
        fsplan.finish(&limits)?;

        let cwd = match &self.cwd {
            Some(c) => clean_dst(c)?,
            None => self
                .mounts
                .iter()
                .find(|m| m.writable)
                .map(|m| clean_dst(&m.dst))
                .transpose()?
                .unwrap_or_else(|| PathBuf::from("/")),
        };

        // Landlock and seccomp.
        let ll = landlock::plan(
            features.landlock_abi,
            &fsplan.rw,
            &fsplan.writable_devices,
            self.network || self.profile.network,
        );
        let action = self.action.unwrap_or(self.profile.seccomp.action);
        let filter = if self.learn {
            seccomp::learn_filter()
        } else {
            seccomp::compile(&self.profile, seccomp::RET_USER_NOTIF).map_err(Error::Profile)?
        };
        let mut keep_caps = 0u64;
        for c in &self.profile.capabilities {
            keep_caps |= 1 << sys::capability_number(c).unwrap_or(0);
        }
        let cap_last = sys::cap_last_cap();

        // Pipes and the hand-over socket.
        let (sync_rd, sync_wr) = sys::pipe().map_err(Error::io("pipe"))?;
        let (err_rd, err_wr) = sys::pipe().map_err(Error::io("pipe"))?;
        let (status_rd, status_wr) = sys::pipe().map_err(Error::io("pipe"))?;
        let (sock_parent, sock_child) = sys::cred_socketpair().map_err(Error::io("socketpair"))?;

        let stdio_fds = [
            stdio.stdin.as_ref().map_or(-1, |f| f.as_raw_fd()),
            stdio.stdout.as_ref().map_or(-1, |f| f.as_raw_fd()),
            stdio.stderr.as_ref().map_or(-1, |f| f.as_raw_fd()),
        ];
        let rlimits = limits.rlimits();
        let cgroup_name = format!("step-{}-{}", std::process::id(), host_uid);
        let cgroup = Cgroup::create(&cgroup_name, &limits)?;

        let mut keep_fds: Vec<i32> =
            [sync_rd.as_raw_fd(), err_wr.as_raw_fd(), status_wr.as_raw_fd(), sock_child.as_raw_fd()]
                .into_iter()
                .chain(stdio_fds)
                .chain(fsplan.binds.iter().filter_map(|b| match b {
                    BindSource::Fd(fd) => Some(*fd),
                    BindSource::Path { .. } => None,
                }))
                .filter(|fd| *fd > 2)
                .collect();
        keep_fds.sort_unstable();
        keep_fds.dedup();
        let plan = ChildPlan {
            keep_fds,
            sync_rd: sync_rd.as_raw_fd(),
            err_wr: err_wr.as_raw_fd(),
            status_wr: status_wr.as_raw_fd(),
            notif_sock: sock_child.as_raw_fd(),
            stdio: stdio_fds,
            binds: fsplan.binds,
            base: c"/tmp".to_owned(),
            base_data: c"mode=0755,size=4m,nr_inodes=4096".to_owned(),
            ops: fsplan.ops,
            hostname: c"seqshield-sandbox".to_owned(),
            setgroups: root,
            uid: INSIDE_ID,
            gid: INSIDE_ID,
            rlimits: rlimits.iter().map(|(r, _, v)| (*r, *v)).collect(),
            cap_last,
            keep_caps,
            cwd: cstring(cwd.as_os_str().as_bytes(), "cwd")?,
            landlock: Some(ll.plan),
            filter: Some(filter),
            exec_paths,
            argv: argvp,
            envp,
            _strings: strings,
        };
        let mut flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWCGROUP;
        let network = self.network || self.profile.network;
        if !network {
            flags |= libc::CLONE_NEWNET;
        }
        let spawned = sys::spawn(&plan, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::ENOSPC) | Some(libc::EUSERS) | Some(libc::EINVAL) => Error::MissingFeature {
                feature: "user namespaces".into(),
                detail: format!("clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|...) failed: {e}"),
                remedy: "allow them: `sysctl -w user.max_user_namespaces=15000`, and on Debian kernels before 6.x `sysctl -w kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor profile for seqshield".into(),
            },
            _ => Error::Setup(format!("cannot start the step: {e}")),
        })?;
        drop((sync_rd, err_wr, status_wr, sock_child));
        drop(idmapped);
        drop(stdio);

        let ok = (|| -> Result<(), Error> {
            sys::write_id_maps(
                spawned.pid,
                &format!("{INSIDE_ID} {host_uid} 1\n"),
                &format!("{INSIDE_ID} {host_gid} 1\n"),
                !root,
            )
            .map_err(|e| Error::Setup(format!("cannot write the step's uid/gid maps: {e}")))?;
            cgroup.add(spawned.pid)?;
            let mut w = File::from(sync_wr.try_clone().map_err(Error::io("dup"))?);
            std::io::Write::write_all(&mut w, b"g").map_err(Error::io("sync pipe"))?;
            Ok(())
        })();
        if let Err(e) = ok {
            sys::kill(spawned.pid, libc::SIGKILL);
            let _ = sys::wait_pidfd(&spawned.pidfd);
            return Err(e);
        }
        drop(sync_wr);

        // Supervisor: takes the tool's listener and answers every blocked call.
        let init_pid = spawned.pid;
        let learn = self.learn;
        let supervisor = std::thread::Builder::new()
            .name("seccomp-supervisor".into())
            .spawn(move || supervise(sock_parent, init_pid, action, learn))
            .map_err(Error::io("supervisor thread"))?;

        // Start-up ends at exec: EOF on the error pipe, or a failure record.
        let mut rec = Vec::new();
        let _ = File::from(err_rd).read_to_end(&mut rec);
        let start_ms = t0.elapsed().as_secs_f64() * 1e3;
        if rec.len() >= sys::ERR_RECORD {
            let stage = u32::from_ne_bytes(rec[0..4].try_into().unwrap_or_default());
            let index = u32::from_ne_bytes(rec[4..8].try_into().unwrap_or_default()) as usize;
            let err = i32::from_ne_bytes(rec[8..12].try_into().unwrap_or_default());
            let _ = sys::wait_pidfd(&spawned.pidfd);
            let _ = supervisor.join();
            return Err(describe_child_failure(stage, index, err, &fsplan.descriptions, &argv[0], &ll.rules_desc));
        }

        let controls = Controls {
            user_namespace: UserReport {
                uid: INSIDE_ID,
                gid: INSIDE_ID,
                host_uid,
                host_gid,
                source: if root {
                    format!("allocated from the range {UID_RANGE_BASE}..{}", UID_RANGE_BASE + UID_RANGE_LEN)
                } else {
                    "the operator's own uid (not root: no uid range, supplementary groups kept)".into()
                },
            },
            mount_namespace: crate::report::MountNs {
                root: "private tmpfs, read-only after set-up; old root detached".into(),
                ro: fsplan.ro_bound,
                symlinks: fsplan.symlinks,
                skipped: fsplan.skipped,
                mounts: mount_reports,
                tmp: format!("tmpfs {} bytes, nosuid,nodev,noexec", limits.tmpfs.unwrap_or(DEFAULT_TMPFS)),
                dev: fsplan.devices,
                proc: "new procfs for the step's pid namespace".into(),
            },
            pid_namespace: "new; the step's init is pid 1, the tool pid 2".into(),
            network: if network {
                "host network (policy switch)".into()
            } else {
                "new network namespace with no interfaces up".into()
            },
            ipc_namespace: true,
            uts_namespace: "hostname seqshield-sandbox".into(),
            cgroup_namespace: true,
            landlock: ll.report,
            capabilities: crate::report::CapReport {
                kept: self.profile.capabilities.clone(),
                bounding: if keep_caps == 0 { "empty".into() } else { "only the kept ones".into() },
                ambient: if keep_caps == 0 { "empty".into() } else { "the kept ones".into() },
                effective_permitted_inheritable: if keep_caps == 0 { "empty".into() } else { "the kept ones".into() },
            },
            no_new_privs: true,
            rlimits: rlimits.iter().map(|(_, n, v)| (n.to_string(), *v)).collect(),
            cgroup: cgroup.report.clone(),
            seccomp: SeccompReport {
                profile: self.profile.name.clone(),
                mode: if self.learn { "learn (every call allowed and recorded)".into() } else { "default deny".into() },
                action: match action {
                    DenyAction::Errno => "errno: blocked calls fail with EPERM and are counted".into(),
                    DenyAction::Kill => "kill: the first blocked call kills the step".into(),
                },
                allowed: self.profile.allowed().len(),
                blocked: self.profile.blocked_count(),
                total: syscalls::x86_64::Sysno::iter().count(),
                errno_rules: self
                    .profile
                    .seccomp
                    .errno
                    .iter()
                    .map(|r| format!("{} → {}", r.syscall, r.errno))
                    .collect(),
                instructions: plan.filter.as_ref().map_or(0, |f| f.insns.len()),
                // (the child has its own copy of the plan; ours can go)
            },
            fds: "every descriptor but stdin, stdout and stderr closed at exec".into(),
        };
        Ok(Running {
            t0,
            start_ms,
            init_pid,
            pidfd: spawned.pidfd,
            status_rd,
            supervisor: Some(supervisor),
            cgroup,
            _lease: lease,
            profile: self.profile.name.clone(),
            program: argv[0].to_string_lossy().into_owned(),
            nargs: argv.len() - 1,
            controls: Some(controls),
        })
    }
}

const DEFAULT_TMPFS: u64 = 1 << 30;

/// A started step.
pub struct Running {
    t0: Instant,
    start_ms: f64,
    init_pid: i32,
    pidfd: OwnedFd,
    status_rd: OwnedFd,
    supervisor: Option<std::thread::JoinHandle<Supervised>>,
    cgroup: Cgroup,
    _lease: Option<UidLease>,
    profile: String,
    program: String,
    nargs: usize,
    controls: Option<Controls>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("init_pid", &self.init_pid).field("program", &self.program).finish()
    }
}

impl Running {
    /// Host pid of the step's init (signals sent to it reach the tool).
    pub fn pid(&self) -> i32 {
        self.init_pid
    }

    /// Forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to
    /// this process to the step (for a CLI wrapping one step).
    pub fn forward_signals(&self) {
        sys::forward_signals_to(self.init_pid);
    }

    /// Waits for the step and returns its report.
    pub fn wait(mut self) -> Result<Report, Error> {
        let _ = sys::wait_pidfd(&self.pidfd).map_err(Error::io("waitid"))?;
        let mut buf = Vec::new();
        let _ = File::from(self.status_rd.try_clone().map_err(Error::io("dup"))?).read_to_end(&mut buf);
        let sup = self.supervisor.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let wall_ms = self.t0.elapsed().as_secs_f64() * 1e3;
        let oom = self.cgroup.oom_killed();
        let mut warnings = Vec::new();
        if let Some(e) = &sup.error {
            warnings.push(format!("seccomp supervisor: {e}"));
        }
        let status = if buf.len() >= 4 {
            ExitStatus::from_wait(i32::from_ne_bytes(buf[0..4].try_into().unwrap_or_default()))
        } else {
            // The init died without reporting: killed by us (kill action) or
            // from outside.
            ExitStatus { code: None, signal: Some(libc::SIGKILL), signal_name: Some("SIGKILL".into()) }
        };
        let killed_by = match (&sup.killed_for, oom) {
            (Some(name), _) => Some(format!("seccomp: blocked call `{name}` with action kill")),
            (None, true) => Some("cgroup memory limit (OOM kill)".into()),
            _ => None,
        };
        let total_blocked = sup.counts.values().sum();
        Ok(Report {
            profile: self.profile.clone(),
            program: self.program.clone(),
            args: self.nargs,
            insecure: false,
            status,
            start_ms: self.start_ms,
            wall_ms,
            controls: self.controls.take(),
            blocked: if sup.learned { BTreeMap::new() } else { sup.counts.clone() },
            blocked_total: if sup.learned { 0 } else { total_blocked },
            learned: if sup.learned { Some(sup.counts) } else { None },
            killed_by,
            warnings,
        })
    }
}

#[derive(Default)]
struct Supervised {
    counts: BTreeMap<String, u64>,
    killed_for: Option<String>,
    learned: bool,
    error: Option<String>,
}

fn supervise(sock: OwnedFd, init_pid: i32, action: DenyAction, learn: bool) -> Supervised {
    let mut out = Supervised { learned: learn, ..Default::default() };
    let listener = match sys::receive_listener(&sock) {
        Ok(l) => l,
        // The step ended (or failed) before installing its filter.
        Err(_) => return out,
    };
    drop(sock);
    loop {
        match sys::notif_recv(&listener) {
            Ok(Some(n)) => {
                let name = syscall_name(n.nr);
                *out.counts.entry(name.clone()).or_default() += 1;
                let _ = n.pid;
                if learn {
                    let _ = sys::notif_send(&listener, n.id, 0, true);
                } else {
                    if action == DenyAction::Kill {
                        // Never answer: the caller stays stopped in the call
                        // until the namespace's teardown kills it, so nothing
                        // runs after the blocked call.
                        if out.killed_for.is_none() {
                            out.killed_for = Some(name);
                        }
                        sys::kill(init_pid, libc::SIGKILL);
                        continue;
                    }
                    let _ = sys::notif_send(&listener, n.id, libc::EPERM, false);
                }
            }
            Ok(None) => break,
            Err(e) => {
                out.error = Some(e.to_string());
                // Without a supervisor every blocked call would hang: stop the step.
                sys::kill(init_pid, libc::SIGKILL);
                break;
            }
        }
    }
    out
}

/// Holds one uid of the range for the life of a step.
struct UidLease {
    uid: u32,
    _file: File,
}

impl UidLease {
    fn acquire() -> Result<Self, Error> {
        let dir = Path::new("/run/seqshield");
        let dir = if std::fs::create_dir_all(dir).is_ok() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir().join("seqshield-run")
        };
        std::fs::create_dir_all(&dir).map_err(Error::io("uid lease directory"))?;
        let path = dir.join("sandbox-uids.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io("uid lease file"))?;
        // Start at a pseudo-random slot so concurrent starts rarely collide.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let start = ((u64::from(std::process::id()) * 2_654_435_761) ^ u64::from(nanos)) % u64::from(UID_RANGE_LEN);
        for i in 0..UID_RANGE_LEN as u64 {
            let slot = (start + i) % UID_RANGE_LEN as u64;
            if sys::try_lock_byte(&file, slot).map_err(Error::io("uid lease lock"))? {
                return Ok(UidLease { uid: UID_RANGE_BASE + slot as u32, _file: file });
            }
        }
        Err(Error::Setup(format!("all {UID_RANGE_LEN} sandbox uids are in use")))
    }
}

// ------------------------------------------------------------ the fs plan

struct FsPlan {
    binds: Vec<BindSource>,
    ops: Vec<MountOp>,
    descriptions: Vec<String>,
    bind_desc: Vec<String>,
    made: BTreeSet<PathBuf>,
    reserved: Vec<PathBuf>,
    rw: Vec<PathBuf>,
    writable_devices: Vec<PathBuf>,
    ro_bound: Vec<String>,
    symlinks: Vec<String>,
    skipped: Vec<String>,
    devices: Vec<String>,
    dev_names: Vec<String>,
}

const BASE: &str = "/tmp";

fn inside(p: &Path) -> CString {
    let mut b = BASE.as_bytes().to_vec();
    b.extend_from_slice(p.as_os_str().as_bytes());
    CString::new(b).unwrap_or_default()
}

impl FsPlan {
    fn new(profile: &Profile) -> Result<Self, Error> {
        let mut p = FsPlan {
            binds: Vec::new(),
            ops: Vec::new(),
            descriptions: Vec::new(),
            bind_desc: Vec::new(),
            made: BTreeSet::new(),
            reserved: ["/proc", "/dev", "/tmp", "/etc/passwd", "/etc/group"].iter().map(PathBuf::from).collect(),
            rw: Vec::new(),
            writable_devices: Vec::new(),
            ro_bound: Vec::new(),
            symlinks: Vec::new(),
            skipped: Vec::new(),
            devices: Vec::new(),
            dev_names: profile.filesystem.dev.clone(),
        };
        p.made.insert(PathBuf::from("/"));
        let mut ro: Vec<&String> = profile.filesystem.ro.iter().collect();
        ro.sort_by_key(|s| s.matches('/').count());
        for path in ro {
            let host = Path::new(path);
            match std::fs::symlink_metadata(host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = std::fs::read_link(host).map_err(Error::io("readlink"))?;
                    p.mkdirs(host.parent().unwrap_or(Path::new("/")));
                    p.op(
                        MountOp::Symlink {
                            target: cstring(target.as_os_str().as_bytes(), "path")?,
                            link: inside(host),
                        },
                        format!("symlink {path} -> {}", target.display()),
                    );
                    p.symlinks.push(format!("{path} -> {}", target.display()));
                }
                Ok(meta) => {
                    p.add_bind(
                        BindSource::Path {
                            src: cstring(host.as_os_str().as_bytes(), "path")?,
                            attr: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                        },
                        host,
                        meta.is_dir(),
                        format!("read-only bind of {path}"),
                    );
                    p.ro_bound.push(path.clone());
                }
                Err(_) => p.skipped.push(path.clone()),
            }
            p.reserved.push(host.to_path_buf());
        }
        Ok(p)
    }

    fn op(&mut self, op: MountOp, desc: String) {
        self.ops.push(op);
        self.descriptions.push(desc);
    }

    fn mkdirs(&mut self, dir: &Path) {
        let mut cur = PathBuf::from("/");
        for c in dir.components().skip(1) {
            cur.push(c);
            if self.made.insert(cur.clone()) {
                let d = format!("mkdir {}", cur.display());
                self.op(MountOp::Mkdir { path: inside(&cur) }, d);
            }
        }
    }

    fn add_bind(&mut self, source: BindSource, dst: &Path, is_dir: bool, desc: String) {
        let slot = self.binds.len();
        self.binds.push(source);
        self.bind_desc.push(desc.clone());
        if is_dir {
            self.mkdirs(dst);
        } else {
            self.mkdirs(dst.parent().unwrap_or(Path::new("/")));
            self.op(MountOp::Touch { path: inside(dst) }, format!("create mount point {}", dst.display()));
        }
        self.op(MountOp::Attach { slot, dst: inside(dst) }, desc);
    }

    fn check_user_dst(&self, dst: &Path) -> Result<(), Error> {
        if dst == Path::new("/") {
            return Err(Error::Usage("--mount: DST may not be /".into()));
        }
        for r in &self.reserved {
            if dst.starts_with(r) || r.starts_with(dst) {
                return Err(Error::Usage(format!(
                    "--mount: DST {} overlaps {} which the sandbox provides; choose another path (e.g. /data, /work)",
                    dst.display(),
                    r.display()
                )));
            }
        }
        for m in &self.rw {
            if dst.starts_with(m) || m.starts_with(dst) {
                return Err(Error::Usage(format!("--mount: DST {} overlaps another mount", dst.display())));
            }
        }
        Ok(())
    }

    fn finish(&mut self, limits: &Limits) -> Result<(), Error> {
        if self.binds.len() + 8 > sys::MAX_BINDS {
            return Err(Error::Usage(format!("too many mounts (at most {})", sys::MAX_BINDS - 8)));
        }
        // /etc/passwd and /etc/group naming the step's user.
        self.mkdirs(Path::new("/etc"));
        self.op(
            MountOp::WriteFile {
                path: inside(Path::new("/etc/passwd")),
                contents: format!("seqshield:x:{INSIDE_ID}:{INSIDE_ID}:seqshield sandbox:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n").into_bytes(),
            },
            "write /etc/passwd".into(),
        );
        self.op(
            MountOp::WriteFile {
                path: inside(Path::new("/etc/group")),
                contents: format!("seqshield:x:{INSIDE_ID}:\nnogroup:x:65534:\n").into_bytes(),
            },
            "write /etc/group".into(),
        );
        // /dev: a small tmpfs with bound device nodes, read-only.
        let dev = Path::new("/dev");
        self.mkdirs(dev);
        self.op(
            MountOp::Tmpfs {
                target: inside(dev),
                data: c"mode=0755,size=64k,nr_inodes=64".to_owned(),
                flags: libc::MS_NOSUID | libc::MS_NOEXEC,
            },
            "mount tmpfs on /dev".into(),
        );
        let names = self.dev_names.clone();
        for name in names {
            let host = Path::new("/dev").join(&name);
            if !host.exists() {
                self.skipped.push(host.display().to_string());
                continue;
            }
            let slot = self.binds.len();
            self.binds.push(BindSource::Path {
                src: cstring(host.as_os_str().as_bytes(), "path")?,
                attr: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            });
            self.bind_desc.push(format!("device {}", host.display()));
            self.op(MountOp::Touch { path: inside(&host) }, format!("create {}", host.display()));
            self.op(MountOp::Attach { slot, dst: inside(&host) }, format!("bind device {}", host.display()));
            if matches!(name.as_str(), "null" | "zero" | "full") {
                self.writable_devices.push(host.clone());
            }
            self.devices.push(host.display().to_string());
        }
        for (l, t) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let link = dev.join(l);
            self.op(
                MountOp::Symlink { target: cstring(t.as_bytes(), "path")?, link: inside(&link) },
                format!("symlink {}", link.display()),
            );
        }
        self.op(
            MountOp::SetAttr { path: inside(dev), set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC },
            "make /dev read-only".into(),
        );
        // /proc
        self.mkdirs(Path::new("/proc"));
        self.op(MountOp::Proc { target: inside(Path::new("/proc")) }, "mount proc on /proc".into());
        // /tmp
        let tmp = Path::new("/tmp");
        self.mkdirs(tmp);
        let size = limits.tmpfs.unwrap_or(DEFAULT_TMPFS);
        self.op(
            MountOp::Tmpfs {
                target: inside(tmp),
                data: cstring(format!("mode=1777,size={size}").as_bytes(), "tmpfs")?,
                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            },
            "mount tmpfs on /tmp".into(),
        );
        self.rw.push(tmp.to_path_buf());
        Ok(())
    }
}

/// Cleans a sandbox path: absolute, no `..`, no `.`.
fn clean_dst(p: &Path) -> Result<PathBuf, Error> {
    if !p.is_absolute() {
        return Err(Error::Usage(format!("sandbox path `{}` must be absolute", p.display())));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Usage(format!("sandbox path `{}` may not contain `..`", p.display())))
            }
        }
    }
    Ok(out)
}

fn cstring(b: &[u8], what: &str) -> Result<CString, Error> {
    CString::new(b).map_err(|_| Error::Usage(format!("{what} contains a NUL byte")))
}

fn mount_options(attr: u64) -> String {
    let mut v = Vec::new();
    if attr & MOUNT_ATTR_RDONLY != 0 {
        v.push("ro");
    } else {
        v.push("rw");
    }
    if attr & MOUNT_ATTR_NOSUID != 0 {
        v.push("nosuid");
    }
    if attr & MOUNT_ATTR_NODEV != 0 {
        v.push("nodev");
    }
    if attr & MOUNT_ATTR_NOEXEC != 0 {
        v.push("noexec");
    }
    v.join(",")
}

fn describe_child_failure(
    stage: u32,
    index: usize,
    err: i32,
    ops: &[String],
    program: &OsStr,
    rules: &[String],
) -> Error {
    let e = std::io::Error::from_raw_os_error(err);
    let stage = Stage::from_u32(stage);
    let what = match stage {
        Some(Stage::MountOp) => ops.get(index).cloned().unwrap_or_else(|| format!("mount step {index}")),
        Some(Stage::CloneBind) | Some(Stage::BindAttr) => format!("bind source {index}"),
        Some(Stage::LandlockRule) => {
            format!("landlock rule for {}", rules.get(index).map(String::as_str).unwrap_or("?"))
        }
        Some(Stage::Exec) => {
            return if err == libc::ENOENT {
                Error::Usage(format!(
                    "{}: command not found in the sandbox (PATH {SANDBOX_PATH}; is it under a mounted path?)",
                    program.to_string_lossy()
                ))
            } else {
                Error::Usage(format!("{}: cannot execute in the sandbox: {e}", program.to_string_lossy()))
            }
        }
        Some(Stage::Chdir) => "chdir to the working directory (is it mounted?)".into(),
        Some(s) => format!("{s:?}"),
        None => "unknown stage".into(),
    };
    Error::Setup(format!("setting up the sandbox failed at {what}: {e}"))
}
