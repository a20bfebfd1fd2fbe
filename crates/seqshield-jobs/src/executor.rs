//! Where workers run: `local` (a child process on the gateway's host) or
//! `slurm` (an sbatch job in the partition placement chose, tracked with
//! squeue/scontrol and cancelled with scancel).
//!
//! Either way the step is `seqshield worker run MANIFEST`: the executor
//! only starts it, watches it and stops it. The worker reports its own
//! progress; the executor's view catches what a worker cannot report (a job
//! cancelled, killed, timed out or lost).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::manifest::Spec;
use crate::placement::{ClusterLoad, JobLoad, Partition};
use crate::slurm::{JobStatus, SbatchJob, Slurm, SlurmJobId};
use crate::tes::TesState;

/// Which executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Child processes on this host.
    #[default]
    Local,
    /// Slurm through its command-line tools.
    Slurm,
}

/// The `[jobs.executor]` table.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// `local` (child processes on the gateway's host) or `slurm` (sbatch
    /// jobs).
    pub kind: Kind,
    /// Local: workers at once (default: the host's cores).
    #[schemars(extend("x-default-text" = "the host's cores"))]
    pub local_slots: usize,
    /// Local: the cores placement counts as on-prem capacity (default: the
    /// host's cores).
    #[schemars(extend("x-default-text" = "the host's cores"))]
    pub local_cores: u32,
    /// Slurm: `SLURM_CONF` for the client commands (default: theirs).
    pub slurm_conf: Option<PathBuf>,
    /// Slurm: the partition for `onprem`.
    pub onprem_partition: String,
    /// Slurm: the partition for `cloud`.
    pub cloud_partition: String,
    /// Seconds between looks at the executor's view of started tasks.
    pub poll_secs: u64,
}

fn host_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            kind: Kind::Local,
            local_slots: host_cores(),
            local_cores: u32::try_from(host_cores()).unwrap_or(1),
            slurm_conf: None,
            onprem_partition: "onprem".into(),
            cloud_partition: "cloud".into(),
            poll_secs: 2,
        }
    }
}

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The `seqshield` binary.
    pub program: PathBuf,
    /// The gateway's base URL, as workers reach it.
    pub server: String,
    /// The gateway's certificate, which workers pin.
    pub ca_cert: PathBuf,
    /// The worker's OAuth client secret file.
    pub secret_file: PathBuf,
    /// The image policy file, when not the embedded one (workers must use
    /// the gateway's).
    pub images: Option<PathBuf>,
}

impl Launch {
    fn argv(&self, manifest: &Path) -> Vec<String> {
        let mut argv = vec![
            self.program.display().to_string(),
            "worker".into(),
            "run".into(),
            manifest.display().to_string(),
            "--server".into(),
            self.server.clone(),
            "--ca-cert".into(),
            self.ca_cert.display().to_string(),
            "--client-secret-file".into(),
            self.secret_file.display().to_string(),
        ];
        if let Some(p) = &self.images {
            argv.extend(["--images".to_owned(), p.display().to_string()]);
        }
        argv
    }
}

/// What the executor says about one started task.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Its state in TES terms.
    pub state: TesState,
    /// What it said (Slurm state and reason, exit status).
    pub detail: String,
}

/// A worker started by the local executor.
#[derive(Debug)]
pub struct LocalChild {
    pid: u32,
    exit: Option<String>,
    ok: bool,
}

/// An executor.
pub enum Executor {
    /// Local children.
    Local {
        /// Slots.
        slots: Arc<Semaphore>,
        /// Children by reference.
        children: Arc<Mutex<HashMap<String, LocalChild>>>,
        /// Capacity for placement.
        cores: u32,
        /// Worker logs.
        logs: PathBuf,
    },
    /// Slurm.
    Slurm {
        /// The driver.
        slurm: Slurm,
        /// Partition names.
        onprem: String,
        /// Partition names.
        cloud: String,
        /// Scripts and job output.
        dir: PathBuf,
    },
}

/// What a job without a time limit counts as in the wait estimate (a week).
const UNLIMITED_SECS: u64 = 7 * 86_400;

fn describe(st: &JobStatus) -> String {
    let mut s = format!("Slurm job {} {:?}", st.id, st.state);
    if let Some(c) = st.exit_code {
        s.push_str(&format!(", exit code {c}"));
    }
    if let Some(sig) = st.signal {
        s.push_str(&format!(", signal {sig}"));
    }
    if let Some(r) = st.reason.as_deref().filter(|r| *r != "None") {
        s.push_str(&format!(", reason {r}"));
    }
    s
}

/// The comment prefix that marks our Slurm jobs.
pub const SLURM_COMMENT_PREFIX: &str = "seqshield:";

impl Executor {
    /// Builds the executor; worker logs and scripts go under `spool`.
    pub fn new(cfg: &ExecutorConfig, spool: &Path) -> Result<Self, String> {
        match cfg.kind {
            Kind::Local => {
                let logs = spool.join("local");
                std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
                Ok(Self::Local {
                    slots: Arc::new(Semaphore::new(cfg.local_slots.max(1))),
                    children: Arc::new(Mutex::new(HashMap::new())),
                    cores: cfg.local_cores.max(1),
                    logs,
                })
            }
            Kind::Slurm => {
                let dir = spool.join("slurm");
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let mut slurm = Slurm::new(dir.clone());
                if let Some(conf) = &cfg.slurm_conf {
                    slurm = slurm.with_conf(conf.clone());
                }
                Ok(Self::Slurm { slurm, onprem: cfg.onprem_partition.clone(), cloud: cfg.cloud_partition.clone(), dir })
            }
        }
    }

    /// `local` or `slurm`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local { .. } => "local",
            Self::Slurm { .. } => "slurm",
        }
    }

    /// Starts the worker for task `id`; returns the reference to track it.
    pub async fn start(
        &self,
        id: &str,
        manifest: &Path,
        partition: Partition,
        spec: &Spec,
        launch: &Launch,
    ) -> Result<String, String> {
        match self {
            Self::Local { slots, children, logs, .. } => {
                let permit = slots.clone().acquire_owned().await.map_err(|e| e.to_string())?;
                let argv = launch.argv(manifest);
                let log = std::fs::File::create(logs.join(format!("{id}.log"))).map_err(|e| e.to_string())?;
                let mut child = tokio::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .env_clear()
                    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                    .stdin(std::process::Stdio::null())
                    .stdout(log.try_clone().map_err(|e| e.to_string())?)
                    .stderr(log)
                    .spawn()
                    .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
                let pid = child.id().unwrap_or(0);
                let reference = format!("local:{pid}");
                children
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(reference.clone(), LocalChild { pid, exit: None, ok: false });
                let (children, r2) = (children.clone(), reference.clone());
                tokio::spawn(async move {
                    let status = child.wait().await;
                    drop(permit);
                    let (ok, exit) = match status {
                        Ok(s) if s.success() => (true, "the worker exited with 0".to_owned()),
                        Ok(s) => (false, format!("the worker exited with {s}")),
                        Err(e) => (false, format!("cannot wait for the worker: {e}")),
                    };
                    if let Some(c) = children.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&r2) {
                        c.exit = Some(exit);
                        c.ok = ok;
                    }
                });
                Ok(reference)
            }
            Self::Slurm { slurm, onprem, cloud, dir } => {
                let job = SbatchJob {
                    name: id.to_owned(),
                    partition: match partition {
                        Partition::Onprem => onprem.clone(),
                        Partition::Cloud => cloud.clone(),
                    },
                    cpus: spec.cpu_cores.max(1),
                    mem_mb: if spec.ram_mb > 0 { spec.ram_mb } else { 1024 * u64::from(spec.cpu_cores.max(1)) },
                    time_limit_secs: spec.runtime_secs.saturating_mul(2).max(600),
                    workdir: dir.clone(),
                    stdout: dir.join(format!("{id}.out")),
                    stderr: dir.join(format!("{id}.out")),
                    comment: format!("{SLURM_COMMENT_PREFIX}{id}"),
                    argv: launch.argv(manifest),
                    env: [("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned())].into(),
                };
                let jobid = slurm.submit(&job).await.map_err(|e| e.to_string())?;
                Ok(format!("slurm:{jobid}"))
            }
        }
    }

    /// What the executor says about these references.
    pub async fn states(&self, refs: &[String]) -> Result<HashMap<String, Seen>, String> {
        let mut out = HashMap::new();
        match self {
            Self::Local { children, .. } => {
                let map = children.lock().unwrap_or_else(|p| p.into_inner());
                for r in refs {
                    let seen = match map.get(r) {
                        Some(LocalChild { exit: Some(why), ok, .. }) => Seen {
                            state: if *ok { TesState::Complete } else { TesState::SystemError },
                            detail: why.clone(),
                        },
                        Some(_) => Seen { state: TesState::Running, detail: "running".into() },
                        // Started by an earlier gateway process: alive or lost.
                        None => {
                            let pid = r.strip_prefix("local:").and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
                            if pid > 0 && Path::new(&format!("/proc/{pid}")).exists() {
                                Seen { state: TesState::Running, detail: "running".into() }
                            } else {
                                Seen {
                                    state: TesState::SystemError,
                                    detail: "the worker was lost when the gateway restarted".into(),
                                }
                            }
                        }
                    };
                    out.insert(r.clone(), seen);
                }
            }
            Self::Slurm { slurm, .. } => {
                let ids: Vec<SlurmJobId> =
                    refs.iter().filter_map(|r| r.strip_prefix("slurm:").and_then(|i| i.parse().ok())).collect();
                if ids.is_empty() {
                    return Ok(out);
                }
                let states = slurm.query(&ids).await.map_err(|e| e.to_string())?;
                for (id, st) in states {
                    out.insert(
                        format!("slurm:{id}"),
                        Seen { state: crate::slurm::tes_state(&st.state), detail: describe(&st) },
                    );
                }
            }
        }
        Ok(out)
    }

    /// Stops a started task.
    pub async fn cancel(&self, reference: &str) -> Result<(), String> {
        match self {
            Self::Local { children, .. } => {
                let pid = children.lock().unwrap_or_else(|p| p.into_inner()).get(reference).map(|c| c.pid);
                if let Some(pid) = pid.filter(|p| *p > 0) {
                    let pid = rustix::process::Pid::from_raw(pid as i32).ok_or("bad pid")?;
                    rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Self::Slurm { slurm, .. } => {
                let id: SlurmJobId =
                    reference.strip_prefix("slurm:").and_then(|i| i.parse().ok()).ok_or("not a Slurm job")?;
                slurm.cancel(id).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Jobs of ours the executor knows about, by task id (Slurm: by the
    /// job comment; local children do not survive the gateway's state).
    pub async fn discover(&self) -> Result<HashMap<String, String>, String> {
        match self {
            Self::Local { .. } => Ok(HashMap::new()),
            Self::Slurm { slurm, .. } => {
                let jobs = slurm.list_by_comment_prefix(SLURM_COMMENT_PREFIX).await.map_err(|e| e.to_string())?;
                Ok(jobs
                    .into_iter()
                    .filter_map(|(id, comment, _)| {
                        comment.strip_prefix(SLURM_COMMENT_PREFIX).map(|t| (t.to_owned(), format!("slurm:{id}")))
                    })
                    .collect())
            }
        }
    }

    /// The on-prem load for placement. `active`: tasks not finished (local).
    pub async fn load(&self, active: usize, cloud_core_hours_used_today: f64) -> Result<ClusterLoad, String> {
        match self {
            Self::Local { cores, .. } => Ok(ClusterLoad {
                onprem_cores: *cores,
                // Each local worker is counted as one core for an hour.
                running: Vec::new(),
                pending: (0..active).map(|_| JobLoad { cores: 1, remaining_secs: 3600 }).collect(),
                cloud_core_hours_used_today,
            }),
            Self::Slurm { slurm, onprem, .. } => {
                let l = slurm.partition_load(onprem).await.map_err(|e| e.to_string())?;
                Ok(ClusterLoad {
                    onprem_cores: l.total_cores,
                    running: l
                        .running
                        .iter()
                        .map(|&(cores, left)| JobLoad { cores, remaining_secs: left.unwrap_or(UNLIMITED_SECS) })
                        .collect(),
                    pending: l
                        .pending
                        .iter()
                        .map(|&(cores, limit)| JobLoad { cores, remaining_secs: limit.unwrap_or(UNLIMITED_SECS) })
                        .collect(),
                    cloud_core_hours_used_today,
                })
            }
        }
    }
}
