//! Which processes on a GPU are seqshield jobs: those started, directly or
//! through their ancestors, by a `seqshield worker` (the step runner every
//! executor starts) or by the remnant scanner's own processes.
//!
//! The rule reads `/proc`: a process's ancestry by parent pid, and for each
//! ancestor the executable (`/proc/PID/exe`, which the process cannot
//! rewrite) and its first arguments. A process NVML lists but `/proc` does
//! not show (another PID namespace, or gone) is not a job.

use std::path::{Path, PathBuf};

/// Ancestors followed at most (pid 1 is reached long before on any real
/// system; the bound stops a loop in a corrupt or racing `/proc`).
pub const MAX_DEPTH: usize = 64;

/// One process in an ancestry: its executable and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: u32,
    /// The executable, when `/proc/PID/exe` could be read.
    pub exe: Option<PathBuf>,
    /// Arguments, `argv[0]` first.
    pub args: Vec<String>,
}

/// What makes an ancestor a seqshield job runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRule {
    /// The seqshield executable.
    pub exe: PathBuf,
}

impl JobRule {
    /// The rule for the running binary (`/proc/self/exe`).
    pub fn for_current_exe() -> std::io::Result<Self> {
        Ok(Self { exe: std::env::current_exe()?.canonicalize()? })
    }

    /// Whether `info` runs a job: our executable with `worker …`, or with
    /// `gpu scan-writer` / `gpu scan-reader`.
    pub fn runs_jobs(&self, info: &ProcInfo) -> bool {
        if info.exe.as_deref() != Some(self.exe.as_path()) {
            return false;
        }
        let arg = |i: usize| info.args.get(i).map(String::as_str);
        match arg(1) {
            Some("worker") => true,
            Some("gpu") => matches!(arg(2), Some("scan-writer" | "scan-reader")),
            _ => false,
        }
    }

    /// Whether `lineage` (a process, then its parent, and so on) contains a
    /// job runner.
    pub fn is_job(&self, lineage: &[ProcInfo]) -> bool {
        lineage.iter().any(|p| self.runs_jobs(p))
    }

    /// Whether process `pid` is a seqshield job, reading `/proc`.
    pub fn is_job_pid(&self, pid: u32) -> bool {
        self.is_job(&lineage(Path::new("/proc"), pid))
    }
}

/// `pid` and its ancestors, read from `proc` (normally `/proc`); stops at
/// pid 1, at a process it cannot read, or after [`MAX_DEPTH`].
pub fn lineage(proc: &Path, pid: u32) -> Vec<ProcInfo> {
    let mut out = Vec::new();
    let mut next = Some(pid);
    while let Some(pid) = next.filter(|&p| p != 0) {
        if out.len() == MAX_DEPTH {
            break;
        }
        let Some((info, parent)) = read_one(proc, pid) else { break };
        out.push(info);
        next = parent.filter(|&p| p != pid);
    }
    out
}

fn read_one(proc: &Path, pid: u32) -> Option<(ProcInfo, Option<u32>)> {
    let dir = proc.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let args = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned());
    let exe = std::fs::read_link(dir.join("exe")).ok();
    Some((ProcInfo { pid, exe, args: args.take(8).collect() }, parent_pid(&stat)))
}

/// The parent pid from `/proc/PID/stat`: the fourth field, after the
/// command name in parentheses (which may itself hold spaces and `)`).
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pid: u32, exe: &str, args: &[&str]) -> ProcInfo {
        ProcInfo { pid, exe: Some(exe.into()), args: args.iter().map(|s| (*s).to_owned()).collect() }
    }

    #[test]
    fn only_our_binary_running_worker_or_scan_counts() {
        let rule = JobRule { exe: "/usr/bin/seqshield".into() };
        let worker = info(10, "/usr/bin/seqshield", &["seqshield", "worker", "run", "m.json"]);
        let step = info(11, "/usr/bin/python3", &["python3", "train.py"]);
        assert!(rule.is_job(&[step.clone(), worker]));
        assert!(rule.is_job(&[info(12, "/usr/bin/seqshield", &["seqshield", "gpu", "scan-reader"])]));
        // The same arguments from another binary, or another subcommand of
        // ours, are not jobs.
        assert!(!rule.is_job(&[step.clone(), info(10, "/tmp/seqshield", &["seqshield", "worker", "run"])]));
        assert!(!rule.is_job(&[step.clone(), info(10, "/usr/bin/seqshield", &["seqshield", "sandbox", "run"])]));
        assert!(!rule.is_job(&[info(12, "/usr/bin/seqshield", &["seqshield", "gpu", "check"])]));
        assert!(!rule.is_job(&[step]));
        assert!(!rule.is_job(&[]));
    }

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_pid("123 (a) b) c) S 77 123 123 0"), Some(77));
        assert_eq!(parent_pid("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parent_pid("garbage"), None);
    }

    /// A real child's lineage reaches this test process, whose executable
    /// the rule can match.
    #[test]
    fn lineage_of_a_real_child_reaches_us() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let chain = lineage(Path::new("/proc"), child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(chain.first().map(|p| p.pid), Some(child.id()));
        assert_eq!(chain.get(1).map(|p| p.pid), Some(std::process::id()));
        let me = std::env::current_exe().unwrap().canonicalize().unwrap();
        assert_eq!(chain[1].exe.as_deref(), Some(me.as_path()));
        assert!(lineage(Path::new("/proc"), u32::MAX).is_empty());
    }
}
