//! Kernel features the sandbox needs, probed without side effects on the
//! host (`seqshield sandbox check`).

use serde::Serialize;

use crate::{sys, Error};

/// One feature and what it means.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    /// Name.
    pub name: String,
    /// Present and usable.
    pub ok: bool,
    /// Whether the sandbox refuses to run without it.
    pub required: bool,
    /// What was found.
    pub detail: String,
    /// What it means / what to do.
    pub meaning: String,
}

/// What the kernel offers.
#[derive(Debug, Clone, Serialize)]
pub struct Features {
    /// Kernel release.
    pub kernel: String,
    /// Each feature.
    pub features: Vec<Feature>,
    /// Landlock ABI (0 when absent).
    pub landlock_abi: i32,
}

impl Features {
    /// Whether every required feature is present.
    pub fn ready(&self) -> bool {
        self.features.iter().all(|f| f.ok || !f.required)
    }
}

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Probes every feature.
pub fn probe() -> Features {
    let (f, abi) = required(true);
    Features {
        kernel: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
        features: optional(f),
        landlock_abi: abi,
    }
}

fn required(try_userns: bool) -> (Vec<Feature>, i32) {
    let mut f = Vec::new();
    let (euid, _) = sys::euid_egid();
    let max_userns = read("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok());
    let unpriv = read("/proc/sys/kernel/unprivileged_userns_clone");
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    // `check` tries one; `spawn` learns it from its own clone's error.
    let live = if try_userns { sys::userns_works() } else { Ok(()) };
    let userns_ok = live.is_ok() && max_userns.unwrap_or(0) > 0;
    f.push(Feature {
        name: "user namespaces".into(),
        ok: userns_ok,
        required: true,
        detail: format!(
            "{}; user.max_user_namespaces={}{}{}; running as {}",
            match live {
                Ok(()) => "creating one works".to_string(),
                Err(e) => format!("creating one fails: {}", std::io::Error::from_raw_os_error(e)),
            },
            max_userns.map_or("absent".into(), |n| n.to_string()),
            unpriv.map(|u| format!(", kernel.unprivileged_userns_clone={u}")).unwrap_or_default(),
            apparmor.map(|a| format!(", kernel.apparmor_restrict_unprivileged_userns={a}")).unwrap_or_default(),
            if euid == 0 { "root (steps get uids from a range, idmapped work mounts)" } else { "a normal user (steps keep your uid)" }
        ),
        meaning: if userns_ok {
            "each step gets its own user, mount, pid, network, IPC, UTS and cgroup namespaces".into()
        } else {
            "steps cannot be isolated: raise user.max_user_namespaces (and kernel.unprivileged_userns_clone=1 on older Debian kernels, or kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)".into()
        },
    });
    let abi = sys::landlock_abi();
    f.push(Feature {
        name: "landlock".into(),
        ok: matches!(abi, Ok(v) if v >= 1),
        required: true,
        detail: match abi {
            Ok(v) => format!("ABI {v}"),
            Err(e) => format!("unavailable ({})", std::io::Error::from_raw_os_error(e)),
        },
        meaning: match abi {
            Ok(v) if v >= 6 => "file-system rules, TCP bind/connect rules and signal/abstract-socket scoping".into(),
            Ok(v) if v >= 4 => "file-system and TCP rules; no signal scoping (ABI 6, Linux 6.12)".into(),
            Ok(_) => "file-system rules only; no TCP rules (ABI 4, Linux 6.7)".into(),
            Err(_) => "no file-system sandboxing: build the kernel with CONFIG_SECURITY_LANDLOCK=y and boot with `lsm=landlock,...`".into(),
        },
    });
    let abi_v = abi.unwrap_or(0);
    let seccomp = sys::seccomp_filter_available();
    let notif = sys::seccomp_notif_supported();
    f.push(Feature {
        name: "seccomp filters with user notification".into(),
        ok: seccomp && notif,
        required: true,
        detail: format!("filters: {}, user notification: {}", yes(seccomp), yes(notif)),
        meaning: if seccomp && notif {
            "default-deny syscall filter; blocked calls are answered and counted by the supervisor".into()
        } else {
            "needs CONFIG_SECCOMP_FILTER and Linux 5.0+ (5.9+ for the notification sizes query)".into()
        },
    });
    (f, abi_v)
}

fn optional(mut f: Vec<Feature>) -> Vec<Feature> {
    let (euid, _) = sys::euid_egid();
    let cg = cgroup_summary();
    f.push(Feature {
        name: "cgroups".into(),
        ok: cg.0,
        required: false,
        detail: cg.1,
        meaning: if cg.0 {
            "memory, pids and CPU limits are applied per step when asked for".into()
        } else {
            "no writable cgroup hierarchy: only rlimits limit a step (run as root with /sys/fs/cgroup mounted read-write)".into()
        },
    });
    let idmap = euid == 0;
    f.push(Feature {
        name: "idmapped mounts".into(),
        ok: idmap,
        required: false,
        detail: if idmap {
            "running as root: read-write mounts are idmapped to the step's uid".into()
        } else {
            "not root: steps run as your uid, no idmapping needed".into()
        },
        meaning: "lets a step from the uid range write into a directory the operator owns".into(),
    });
    f
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn cgroup_summary() -> (bool, String) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let v2 =
        mounts.lines().any(|l| l.split(' ').nth(1) == Some("/sys/fs/cgroup") && l.split(' ').nth(2) == Some("cgroup2"));
    let v1: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| {
            mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(&format!("/sys/fs/cgroup/{c}")[..]) && l.contains(" rw,"))
        })
        .collect();
    let writable = |p: &str| {
        // Writable if we can create (and remove) a directory.
        let d = format!("{p}/seqshield-probe-{}", std::process::id());
        let ok = std::fs::create_dir(&d).is_ok();
        let _ = std::fs::remove_dir(&d);
        ok
    };
    if v2 {
        let ok = writable("/sys/fs/cgroup");
        (ok, format!("cgroup v2 at /sys/fs/cgroup ({})", if ok { "writable" } else { "read-only" }))
    } else if !v1.is_empty() {
        let ok = v1.iter().all(|c| writable(&format!("/sys/fs/cgroup/{c}")));
        (ok, format!("cgroup v1 controllers {} ({})", v1.join(", "), if ok { "writable" } else { "read-only" }))
    } else {
        (false, "no cgroup hierarchy mounted".into())
    }
}

/// What `spawn` needs: errors name the missing feature and the remedy.
pub(crate) fn probe_required() -> Result<Features, Error> {
    let (features, landlock_abi) = required(false);
    let f = Features { kernel: String::new(), features, landlock_abi };
    for feat in &f.features {
        if feat.required && !feat.ok {
            return Err(Error::MissingFeature {
                feature: feat.name.clone(),
                detail: feat.detail.clone(),
                remedy: feat.meaning.clone(),
            });
        }
    }
    Ok(f)
}
