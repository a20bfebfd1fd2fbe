//! Resource limits: rlimits set in the step, and cgroup limits where a
//! writable cgroup hierarchy exists (v1 controllers or the unified v2 tree).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Limits for one step. Sizes accept `K`, `M`, `G`, `T` suffixes (powers of
/// 1024) in profiles and on the command line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// RLIMIT_CPU: CPU seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u64>,
    /// RLIMIT_AS: address space, bytes.
    #[serde(default, rename = "as", with = "size_opt", skip_serializing_if = "Option::is_none")]
    pub address_space: Option<u64>,
    /// RLIMIT_NOFILE: open files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nofile: Option<u64>,
    /// RLIMIT_NPROC: processes and threads of the step's uid (unique per step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nproc: Option<u64>,
    /// RLIMIT_FSIZE: largest file the step may write, bytes.
    #[serde(default, with = "size_opt", skip_serializing_if = "Option::is_none")]
    pub fsize: Option<u64>,
    /// RLIMIT_STACK: stack size, bytes (also caps exec arguments at a quarter).
    #[serde(default, with = "size_opt", skip_serializing_if = "Option::is_none")]
    pub stack: Option<u64>,
    /// Size of the private /tmp tmpfs, bytes.
    #[serde(default, with = "size_opt", skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<u64>,
    /// Largest command line (arguments plus environment) the sandbox accepts.
    #[serde(default, with = "size_opt", skip_serializing_if = "Option::is_none")]
    pub args: Option<u64>,
    /// cgroup memory limit, bytes.
    #[serde(default, with = "size_opt", skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// cgroup pids limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// cgroup CPU quota in CPUs (e.g. 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
}

/// The names `--limit` takes.
pub const LIMIT_KEYS: &[&str] =
    &["cpu", "as", "nofile", "nproc", "fsize", "stack", "tmpfs", "args", "memory", "pids", "cpus"];

impl Limits {
    /// Applies `KEY=VALUE` (or several, comma-separated) over these limits.
    pub fn set(&mut self, spec: &str) -> Result<(), Error> {
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                Error::Usage(format!("--limit `{item}`: expected KEY=VALUE (keys: {})", LIMIT_KEYS.join(", ")))
            })?;
            let bad = |what: &str| Error::Usage(format!("--limit {k}={v}: {what}"));
            let num = || v.parse::<u64>().map_err(|_| bad("not a whole number"));
            let size = || parse_size(v).map_err(|e| bad(&e));
            match k {
                "cpu" => self.cpu = Some(num()?),
                "as" => self.address_space = Some(size()?),
                "nofile" => self.nofile = Some(num()?),
                "nproc" => self.nproc = Some(num()?),
                "fsize" => self.fsize = Some(size()?),
                "stack" => self.stack = Some(size()?),
                "tmpfs" => self.tmpfs = Some(size()?),
                "args" => self.args = Some(size()?),
                "memory" => self.memory = Some(size()?),
                "pids" => self.pids = Some(num()?),
                "cpus" => {
                    let c: f64 = v.parse().map_err(|_| bad("not a number of CPUs"))?;
                    if !(c > 0.0 && c <= 4096.0) {
                        return Err(bad("CPUs must be > 0"));
                    }
                    self.cpus = Some(c);
                }
                _ => return Err(Error::Usage(format!("--limit: unknown key `{k}` (keys: {})", LIMIT_KEYS.join(", ")))),
            }
        }
        Ok(())
    }

    /// The rlimits to set, as (resource, name, value).
    pub(crate) fn rlimits(&self) -> Vec<(u32, &'static str, u64)> {
        let mut v = vec![(libc::RLIMIT_CORE, "core", 0)];
        let pairs = [
            (libc::RLIMIT_CPU, "cpu", self.cpu),
            (libc::RLIMIT_AS, "as", self.address_space),
            (libc::RLIMIT_NOFILE, "nofile", self.nofile),
            (libc::RLIMIT_NPROC, "nproc", self.nproc),
            (libc::RLIMIT_FSIZE, "fsize", self.fsize),
            (libc::RLIMIT_STACK, "stack", self.stack),
        ];
        v.extend(pairs.into_iter().filter_map(|(r, n, val)| val.map(|x| (r, n, x))));
        v
    }
}

/// Parses `123`, `64K`, `512M`, `16G`, `1T` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("`{s}`: unknown size suffix `{c}` (K, M, G, T)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size"))?;
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

mod size_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }

    pub(super) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Some(n)),
            Raw::S(s) => super::parse_size(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// What the cgroup part applied, for the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CgroupReport {
    /// `v1`, `v2`, or `none`.
    pub version: String,
    /// Directories created for the step.
    pub paths: Vec<String>,
    /// Settings written, as `file=value`.
    pub applied: Vec<String>,
    /// Why nothing (or not everything) was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A step's cgroups, removed on drop.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    pub(crate) report: CgroupReport,
}

const CG_ROOT: &str = "/sys/fs/cgroup";

impl Cgroup {
    /// Creates `seqshield/<name>` cgroups with the limits that are set. No
    /// writable hierarchy, or no cgroup limit asked for, gives an empty
    /// cgroup set and a note.
    pub(crate) fn create(name: &str, limits: &Limits) -> Result<Self, Error> {
        let mut cg = Cgroup { dirs: Vec::new(), report: CgroupReport::default() };
        let wanted = limits.memory.is_some() || limits.pids.is_some() || limits.cpus.is_some();
        let v2 = fs::read_to_string("/proc/self/mounts")
            .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(CG_ROOT) && l.split(' ').nth(2) == Some("cgroup2")))
            .unwrap_or(false);
        let v1 = Path::new(CG_ROOT).join("memory/memory.limit_in_bytes").exists()
            || Path::new(CG_ROOT).join("pids").is_dir();
        if !wanted {
            cg.report.version = "none".into();
            cg.report.note = Some("no cgroup limit asked for (memory, pids, cpus)".into());
            return Ok(cg);
        }
        let mut ok = true;
        if v2 {
            cg.report.version = "v2".into();
            let parent = Path::new(CG_ROOT).join("seqshield");
            let dir = parent.join(name);
            if fs::create_dir_all(&dir).is_err() {
                ok = false;
            } else {
                // Enable the controllers for the child group where possible.
                let _ = fs::write(Path::new(CG_ROOT).join("cgroup.subtree_control"), "+memory +pids +cpu");
                let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory +pids +cpu");
                cg.dirs.push(dir.clone());
                cg.report.paths.push(dir.display().to_string());
                if let Some(m) = limits.memory {
                    cg.write(&dir, "memory.max", &m.to_string())?;
                    cg.write(&dir, "memory.swap.max", "0").ok();
                }
                if let Some(p) = limits.pids {
                    cg.write(&dir, "pids.max", &p.to_string())?;
                }
                if let Some(c) = limits.cpus {
                    cg.write(&dir, "cpu.max", &format!("{} 100000", (c * 100_000.0) as u64))?;
                }
            }
        } else if v1 {
            cg.report.version = "v1".into();
            let sets: [(&str, Vec<(&str, String)>); 3] = [
                (
                    "memory",
                    limits
                        .memory
                        .map(|m| {
                            vec![
                                ("memory.limit_in_bytes", m.to_string()),
                                ("memory.memsw.limit_in_bytes", m.to_string()),
                            ]
                        })
                        .unwrap_or_default(),
                ),
                ("pids", limits.pids.map(|p| vec![("pids.max", p.to_string())]).unwrap_or_default()),
                (
                    "cpu",
                    limits
                        .cpus
                        .map(|c| {
                            vec![
                                ("cpu.cfs_period_us", "100000".into()),
                                ("cpu.cfs_quota_us", ((c * 100_000.0) as u64).to_string()),
                            ]
                        })
                        .unwrap_or_default(),
                ),
            ];
            for (controller, files) in sets {
                if files.is_empty() {
                    continue;
                }
                let dir = Path::new(CG_ROOT).join(controller).join("seqshield").join(name);
                if fs::create_dir_all(&dir).is_err() {
                    ok = false;
                    continue;
                }
                cg.dirs.push(dir.clone());
                cg.report.paths.push(dir.display().to_string());
                for (file, value) in files {
                    // memsw exists only with swap accounting: optional.
                    if file == "memory.memsw.limit_in_bytes" {
                        cg.write(&dir, file, &value).ok();
                    } else {
                        cg.write(&dir, file, &value)?;
                    }
                }
            }
        } else {
            cg.report.version = "none".into();
            ok = false;
        }
        if !ok {
            cg.report.note = Some(format!(
                "no writable cgroup hierarchy under {CG_ROOT} for every requested controller; the rlimits still apply"
            ));
        }
        Ok(cg)
    }

    fn write(&mut self, dir: &Path, file: &str, value: &str) -> Result<(), Error> {
        fs::write(dir.join(file), value)
            .map_err(|e| Error::Setup(format!("cgroup: cannot write {value} to {}: {e}", dir.join(file).display())))?;
        self.report.applied.push(format!("{file}={value}"));
        Ok(())
    }

    /// Moves `pid` into every cgroup of the step.
    pub(crate) fn add(&self, pid: i32) -> Result<(), Error> {
        for d in &self.dirs {
            fs::write(d.join("cgroup.procs"), pid.to_string())
                .map_err(|e| Error::Setup(format!("cgroup: cannot add pid {pid} to {}: {e}", d.display())))?;
        }
        Ok(())
    }

    /// Whether the memory cgroup recorded an OOM kill.
    pub(crate) fn oom_killed(&self) -> bool {
        self.dirs.iter().any(|d| {
            fs::read_to_string(d.join("memory.events"))
                .or_else(|_| fs::read_to_string(d.join("memory.oom_control")))
                .map(|s| {
                    s.lines().any(|l| {
                        let mut it = l.split_whitespace();
                        it.next() == Some("oom_kill") && it.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
                    })
                })
                .unwrap_or(false)
        })
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            // The step's processes are gone (the pid namespace died with its
            // init); an empty cgroup can be removed.
            for _ in 0..50 {
                if fs::remove_dir(d).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_limit_specs() {
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("17").unwrap(), 17);
        assert!(parse_size("12Q").unwrap_err().contains("unknown size suffix"));
        assert!(parse_size("99999999999T").unwrap_err().contains("too large"));
        let mut l = Limits::default();
        l.set("nproc=64,as=512M").unwrap();
        l.set("cpus=1.5").unwrap();
        assert_eq!((l.nproc, l.address_space, l.cpus), (Some(64), Some(512 << 20), Some(1.5)));
        assert!(l.set("bogus=1").unwrap_err().to_string().contains("unknown key `bogus`"));
        assert!(l.set("nproc").unwrap_err().to_string().contains("KEY=VALUE"));
        assert!(l.set("nproc=lots").unwrap_err().to_string().contains("not a whole number"));
        let rl = l.rlimits();
        assert!(rl.iter().any(|(r, _, v)| *r == libc::RLIMIT_NPROC && *v == 64));
        assert!(rl.iter().any(|(r, _, v)| *r == libc::RLIMIT_CORE && *v == 0));
    }
}
