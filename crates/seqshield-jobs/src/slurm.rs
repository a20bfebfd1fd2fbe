//! Slurm driven through its command-line tools (`sbatch`, `squeue`,
//! `scontrol`, `scancel`, `sinfo`), as GA4GH Funnel drives it.
//!
//! No `slurmrestd`: with Debian's Slurm 22.05 it runs only with local auth
//! on a UNIX socket, runs jobs as its own user, and has no JWT plugin.
//!
//! Every command runs with a cleared environment (only `SLURM_CONF`,
//! `SLURM_TIME_FORMAT=standard`, `LC_ALL=C` and `TZ`), so `SBATCH_*` or
//! `SQUEUE_*` variables in the gateway's environment cannot change what is
//! submitted or how output is parsed, and with a time limit
//! ([`DEFAULT_COMMAND_TIMEOUT`]), so a hung controller cannot hang us.
//!
//! A job is one argv, run by a generated bash script ([`batch_script`]):
//! it `exec`s the argv through `env -i` with Slurm's `SLURM_*` and
//! `SLURMD_*` variables and the ones we pass, nothing else (Slurm 22.05
//! loads the user's login environment even with `--export=NONE`), each
//! word quoted by [`shell_quote`].
//!
//! Slurm states map to TES states by [`tes_state`]; the table is there.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::tes::TesState;

/// How long one Slurm command may run before it is killed
/// ([`Slurm::with_command_timeout`] changes it). `sbatch` retries a busy
/// controller for a while; a minute is far past a healthy answer.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest batch script [`Slurm::submit`] writes. Slurm's own default
/// limit (`max_script_size`) is 4 MiB; an argv this large is a bug.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;

/// Longest job name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Longest partition name, in bytes.
pub const MAX_PARTITION_LEN: usize = 64;

/// Longest job comment, in bytes (the job service puts
/// `seqshield:<task id>` there).
pub const MAX_COMMENT_LEN: usize = 256;

/// Most CPUs one job may ask for.
pub const MAX_CPUS: u32 = 4096;

/// Most memory one job may ask for, in MiB (64 TiB).
pub const MAX_MEM_MB: u64 = 64 << 20;

/// Longest time limit, in seconds (one year).
pub const MAX_TIME_LIMIT_SECS: u64 = 365 * 24 * 3600;

/// Most bytes of a failing command's stderr kept in [`SlurmError::Failed`].
const STDERR_TAIL_BYTES: usize = 2048;

/// `squeue -O` fields for [`JobStatus`]; `:0` means no padding and no
/// truncation, `|` ends each field. The comment comes last, so a `|` in a
/// comment (another user's job) cannot shift the other fields.
const STATUS_FORMAT: &str =
    "JobID:0|,State:0|,Reason:0|,Partition:0|,NodeList:0|,exit_code:0|,StartTime:0|,EndTime:0|,Comment:0";

/// Number of `|`-separated fields in a [`STATUS_FORMAT`] line.
const STATUS_FIELDS: usize = 9;

/// `squeue -O` fields for [`PartitionLoad`].
const LOAD_FORMAT: &str = "State:0|,NumCPUs:0|,TimeLimit:0|,TimeLeft:0";

/// Errors from the Slurm driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// A Slurm command is not installed where we looked.
    #[error("`{binary}` not found in {searched}: scripts/setup installs Slurm's commands (Debian packages slurm-client, slurm-wlm)")]
    MissingBinary {
        /// The command, e.g. `sbatch`.
        binary: &'static str,
        /// Where we looked (the bin dir, or `PATH`).
        searched: String,
    },
    /// A command could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A command ran past the time limit and was killed.
    #[error("`{command}` did not finish within {timeout:?}; it was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// A command exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The tail of its stderr.
        stderr: String,
    },
    /// A command printed something we cannot parse.
    #[error("cannot parse the output of `{command}`: {detail}: {line:?}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: &'static str,
        /// The offending text.
        line: String,
    },
    /// A Slurm time value we cannot parse.
    #[error("not a Slurm time value: {0:?}")]
    Time(String),
    /// A job description we refuse to submit.
    #[error("invalid {field}: {reason}")]
    InvalidJob {
        /// The field, e.g. `partition` or `argv[2]`.
        field: String,
        /// Why.
        reason: &'static str,
    },
    /// The batch script could not be written.
    #[error("cannot write the batch script {path}")]
    WriteScript {
        /// The script's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `sinfo` knows no such partition.
    #[error("Slurm has no partition {0:?}")]
    UnknownPartition(String),
}

/// A Slurm job id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlurmJobId(pub u64);

impl fmt::Display for SlurmJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SlurmJobId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// One batch job: a single argv on one node.
///
/// The script file and Slurm's copy of it (in its state directory) hold
/// `env` and `argv` in clear text: pass no secrets here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SbatchJob {
    /// Job name (`--job-name`): `[A-Za-z0-9._-]`, not starting with `-`.
    pub name: String,
    /// Partition (`--partition`): `[A-Za-z0-9._-]`, not starting with `-`.
    pub partition: String,
    /// CPUs for the one task (`--cpus-per-task`), 1..=[`MAX_CPUS`].
    pub cpus: u32,
    /// Memory in MiB (`--mem`), 1..=[`MAX_MEM_MB`].
    pub mem_mb: u64,
    /// Time limit in seconds (`--time`), 1..=[`MAX_TIME_LIMIT_SECS`];
    /// Slurm counts in minutes, so this is rounded up to one.
    pub time_limit_secs: u64,
    /// Working directory on the node (`--chdir`), absolute.
    pub workdir: PathBuf,
    /// File for the job's stdout (`--output`), absolute, without `%` or `\`
    /// (Slurm expands those).
    pub stdout: PathBuf,
    /// File for the job's stderr (`--error`), same rules as `stdout`.
    pub stderr: PathBuf,
    /// Job comment (`--comment`), `[A-Za-z0-9._:@/+=-]`, may be empty;
    /// the job service puts `seqshield:<task id>` here and finds its jobs
    /// by it ([`Slurm::list_by_comment_prefix`]).
    pub comment: String,
    /// The job's whole environment besides Slurm's `SLURM_*` and
    /// `SLURMD_*` variables.
    /// Names are `[A-Za-z_][A-Za-z0-9_]*`, not starting with `SLURM_` or
    /// `SLURMD_`.
    pub env: BTreeMap<String, String>,
    /// What runs: `argv[0]` is an absolute path without `=` (the job has
    /// no `PATH` unless `env` gives one); no argument may contain NUL.
    pub argv: Vec<String>,
}

/// A Slurm job state (`squeue %T`, `scontrol` `JobState`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlurmState {
    /// `PENDING`: waiting for resources.
    Pending,
    /// `CONFIGURING`: resources allocated, nodes getting ready.
    Configuring,
    /// `RUNNING`.
    Running,
    /// `COMPLETING`: finished, processes being cleaned up.
    Completing,
    /// `COMPLETED`: every process exited 0.
    Completed,
    /// `FAILED`: non-zero exit or other failure.
    Failed,
    /// `CANCELLED`: by a user or an administrator.
    Cancelled,
    /// `TIMEOUT`: ran past its time limit.
    Timeout,
    /// `NODE_FAIL`: its node failed.
    NodeFail,
    /// `PREEMPTED`.
    Preempted,
    /// `OUT_OF_MEMORY`.
    OutOfMemory,
    /// `BOOT_FAIL`: its node failed to boot.
    BootFail,
    /// `DEADLINE`: missed its deadline.
    Deadline,
    /// `SUSPENDED`.
    Suspended,
    /// `REQUEUED`.
    Requeued,
    /// `REQUEUE_HOLD`.
    RequeueHold,
    /// `REQUEUE_FED`.
    RequeueFed,
    /// `RESV_DEL_HOLD`: held because its reservation was deleted.
    ResvDelHold,
    /// `RESIZING`.
    Resizing,
    /// `SIGNALING`.
    Signaling,
    /// `STAGE_OUT`.
    StageOut,
    /// `STOPPED`.
    Stopped,
    /// `SPECIAL_EXIT`.
    SpecialExit,
    /// `REVOKED`: a federated sibling ran elsewhere.
    Revoked,
    /// A state this driver does not know, as Slurm printed it.
    Other(String),
}

impl SlurmState {
    /// Parses a state as `squeue`, `scontrol` or `sacct` print it
    /// (`CANCELLED`, `CANCELLED+`, `CANCELLED by 0`, `CA` is not accepted).
    pub fn parse(s: &str) -> Self {
        let word = s.split(|c: char| c.is_whitespace() || c == '+').next().unwrap_or("");
        match word {
            "PENDING" => Self::Pending,
            "CONFIGURING" => Self::Configuring,
            "RUNNING" => Self::Running,
            "COMPLETING" => Self::Completing,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            "TIMEOUT" => Self::Timeout,
            "NODE_FAIL" => Self::NodeFail,
            "PREEMPTED" => Self::Preempted,
            "OUT_OF_MEMORY" => Self::OutOfMemory,
            "BOOT_FAIL" => Self::BootFail,
            "DEADLINE" => Self::Deadline,
            "SUSPENDED" => Self::Suspended,
            "REQUEUED" => Self::Requeued,
            "REQUEUE_HOLD" => Self::RequeueHold,
            "REQUEUE_FED" => Self::RequeueFed,
            "RESV_DEL_HOLD" => Self::ResvDelHold,
            "RESIZING" => Self::Resizing,
            "SIGNALING" => Self::Signaling,
            "STAGE_OUT" => Self::StageOut,
            "STOPPED" => Self::Stopped,
            "SPECIAL_EXIT" => Self::SpecialExit,
            "REVOKED" => Self::Revoked,
            _ => Self::Other(word.to_owned()),
        }
    }

    /// Whether the job has ended and holds no resources any more.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::Cancelled
                | Self::Timeout
                | Self::NodeFail
                | Self::Preempted
                | Self::OutOfMemory
                | Self::BootFail
                | Self::Deadline
                | Self::SpecialExit
                | Self::Revoked
        )
    }
}

/// The TES state the job service reports for a Slurm job whose worker has
/// not reported a more precise one.
///
/// | Slurm | TES | why |
/// |---|---|---|
/// | `PENDING`, `CONFIGURING`, `REQUEUED`, `REQUEUE_HOLD`, `REQUEUE_FED`, `RESV_DEL_HOLD` | `QUEUED` | waiting for resources (again) |
/// | `RUNNING`, `COMPLETING`, `RESIZING`, `SIGNALING`, `STAGE_OUT` | `RUNNING` | the worker itself reports `INITIALIZING` while it stages inputs |
/// | `COMPLETED` | `COMPLETE` | |
/// | `FAILED`, `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`, `BOOT_FAIL`, `DEADLINE`, `SPECIAL_EXIT` | `SYSTEM_ERROR` | an executor's non-zero exit is reported by the worker as `EXECUTOR_ERROR`; a job that failed without its worker saying so is a system error |
/// | `CANCELLED` | `CANCELED` | |
/// | `PREEMPTED` | `PREEMPTED` | |
/// | `SUSPENDED`, `STOPPED` | `PAUSED` | |
/// | `REVOKED`, anything else | `UNKNOWN` | |
pub fn tes_state(state: &SlurmState) -> TesState {
    use SlurmState as S;
    match state {
        S::Pending | S::Configuring | S::Requeued | S::RequeueHold | S::RequeueFed | S::ResvDelHold => TesState::Queued,
        S::Running | S::Completing | S::Resizing | S::Signaling | S::StageOut => TesState::Running,
        S::Completed => TesState::Complete,
        S::Failed | S::Timeout | S::OutOfMemory | S::NodeFail | S::BootFail | S::Deadline | S::SpecialExit => {
            TesState::SystemError
        }
        S::Cancelled => TesState::Canceled,
        S::Preempted => TesState::Preempted,
        S::Suspended | S::Stopped => TesState::Paused,
        S::Revoked | S::Other(_) => TesState::Unknown,
    }
}

/// What Slurm says about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    /// The job.
    pub id: SlurmJobId,
    /// Its state.
    pub state: SlurmState,
    /// Exit code of the batch script, once the job has finished and was
    /// not killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that ended the batch script, if one did.
    pub signal: Option<i32>,
    /// Why it is pending or how it ended (`Resources`, `NonZeroExitCode`,
    /// …), if Slurm gives a reason.
    pub reason: Option<String>,
    /// Its partition.
    pub partition: Option<String>,
    /// The node it runs or ran on (a node list for multi-node jobs).
    pub node: Option<String>,
    /// When it started (or is expected to), as Slurm prints it: local
    /// time, `YYYY-MM-DDTHH:MM:SS`.
    pub start_time: Option<String>,
    /// When it ended (or will at its time limit), same format.
    pub end_time: Option<String>,
}

/// How busy a partition is, for the placement policy's queue-wait
/// estimate.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PartitionLoad {
    /// Cores on the partition's nodes that can run jobs (`sinfo %C`:
    /// allocated + idle; down and drained nodes are not counted).
    pub total_cores: u32,
    /// Of those, idle now.
    pub idle_cores: u32,
    /// Running (or configuring, completing, suspended) jobs: their cores
    /// and the seconds left before their time limit (`None`: unlimited).
    pub running: Vec<(u32, Option<u64>)>,
    /// Pending jobs: the cores they ask for and their time limit in
    /// seconds (`None`: unlimited).
    pub pending: Vec<(u32, Option<u64>)>,
}

/// A handle on a Slurm cluster, driven through its commands.
#[derive(Clone, Debug)]
pub struct Slurm {
    conf: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    script_dir: PathBuf,
    timeout: Duration,
}

impl Slurm {
    /// A handle that writes batch scripts into `script_dir` (which should
    /// be private to the job service; scripts are created `0600` and
    /// removed once `sbatch` has read them). Commands come from `PATH`,
    /// and use `SLURM_CONF` from our environment if it is set.
    pub fn new(script_dir: impl Into<PathBuf>) -> Self {
        Self { conf: None, bin_dir: None, script_dir: script_dir.into(), timeout: DEFAULT_COMMAND_TIMEOUT }
    }

    /// Uses this `slurm.conf` (`SLURM_CONF`).
    pub fn with_conf(mut self, conf: impl Into<PathBuf>) -> Self {
        self.conf = Some(conf.into());
        self
    }

    /// Takes the commands from this directory instead of `PATH`.
    pub fn with_bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Kills a command that runs longer than this
    /// (default [`DEFAULT_COMMAND_TIMEOUT`]).
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Submits `job` with `sbatch --parsable` and returns its id.
    ///
    /// The job is checked first ([`SlurmError::InvalidJob`]); its script
    /// (see [`batch_script`]) is written to the script directory with mode
    /// `0600` and removed after `sbatch` returns (Slurm keeps a copy:
    /// `scontrol write batch_script ID`). Options: `--nodes=1 --ntasks=1`,
    /// `--export=NONE`, `--no-requeue`, and the job's name, partition,
    /// CPUs, memory, time limit, directories and comment.
    pub async fn submit(&self, job: &SbatchJob) -> Result<SlurmJobId, SlurmError> {
        validate(job)?;
        let script = batch_script(job)?;
        let path = self.write_script(&job.name, &script)?;
        let mut args: Vec<OsString> = vec![
            "--parsable".into(),
            format!("--job-name={}", job.name).into(),
            format!("--partition={}", job.partition).into(),
            "--nodes=1".into(),
            "--ntasks=1".into(),
            format!("--cpus-per-task={}", job.cpus).into(),
            format!("--mem={}M", job.mem_mb).into(),
            format!("--time={}", job.time_limit_secs.div_ceil(60)).into(),
            flag_path("--chdir=", &job.workdir),
            flag_path("--output=", &job.stdout),
            flag_path("--error=", &job.stderr),
            "--export=NONE".into(),
            "--no-requeue".into(),
        ];
        if !job.comment.is_empty() {
            args.push(format!("--comment={}", job.comment).into());
        }
        args.push(path.clone().into_os_string());
        let out = self.run("sbatch", &args).await;
        // Slurm has its own copy now (or refused the job); a leftover is
        // only clutter, so a failure to remove it is logged, not returned.
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove batch script");
        }
        let out = out?;
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let first = out.stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let id = first.split(';').next().unwrap_or("").trim();
        id.parse().map_err(|_| SlurmError::Parse {
            command: out.command,
            detail: "expected a job id",
            line: first.to_owned(),
        })
    }

    /// The status of each of `ids` that Slurm still knows (finished jobs
    /// stay for `MinJobAge`); an id missing from the map is unknown to
    /// Slurm. One `squeue` for all, then `scontrol show job` for any
    /// that `squeue` did not list.
    pub async fn query(&self, ids: &[SlurmJobId]) -> Result<HashMap<SlurmJobId, JobStatus>, SlurmError> {
        let mut found = HashMap::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let args: Vec<OsString> = vec![
            "-h".into(),
            "--states=all".into(),
            format!("--jobs={list}").into(),
            format!("--Format={STATUS_FORMAT}").into(),
        ];
        match self.run("squeue", &args).await {
            Ok(out) => {
                for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
                    let Some((status, _comment)) = parse_status_line(line) else {
                        return Err(SlurmError::Parse {
                            command: out.command,
                            detail: "unexpected squeue line",
                            line: line.to_owned(),
                        });
                    };
                    if ids.contains(&status.id) {
                        found.insert(status.id, status);
                    }
                }
            }
            // squeue fails when none of the ids is known.
            Err(SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => {}
            Err(e) => return Err(e),
        }
        for id in ids {
            if found.contains_key(id) {
                continue;
            }
            if let Some(status) = self.scontrol_show_job(*id).await? {
                found.insert(*id, status);
            }
        }
        Ok(found)
    }

    /// `scontrol show job -o ID`; `None` if Slurm does not know the job.
    async fn scontrol_show_job(&self, id: SlurmJobId) -> Result<Option<JobStatus>, SlurmError> {
        let args: Vec<OsString> = vec!["show".into(), "job".into(), "-o".into(), id.to_string().into()];
        let out = match self.run("scontrol", &args).await {
            Ok(out) => out,
            Err(SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => return Ok(None),
            Err(e) => return Err(e),
        };
        let line = out.stdout.lines().find(|l| l.starts_with("JobId=")).unwrap_or("");
        match parse_scontrol_job(line) {
            Some(status) if status.id == id => Ok(Some(status)),
            _ => Err(SlurmError::Parse {
                command: out.command,
                detail: "unexpected scontrol line",
                line: line.to_owned(),
            }),
        }
    }

    /// Cancels the job (`scancel ID`). Cancelling a job that has already
    /// finished, or that Slurm no longer knows, is not an error.
    pub async fn cancel(&self, id: SlurmJobId) -> Result<(), SlurmError> {
        let args: Vec<OsString> = vec![id.to_string().into()];
        match self.run("scancel", &args).await {
            Ok(_) => Ok(()),
            Err(SlurmError::Failed { stderr, .. })
                if stderr.contains("Invalid job id") || stderr.contains("already completing or completed") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Our jobs (those of the user we run as, `squeue --me`) whose comment
    /// starts with `prefix`, in every state Slurm still knows: how the job
    /// service finds its jobs again after a restart. Other users' jobs are
    /// never listed, whatever their comment says.
    pub async fn list_by_comment_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(SlurmJobId, String, JobStatus)>, SlurmError> {
        let args: Vec<OsString> =
            vec!["-h".into(), "--me".into(), "--states=all".into(), format!("--Format={STATUS_FORMAT}").into()];
        let out = self.run("squeue", &args).await?;
        let mut jobs = Vec::new();
        for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
            // Array and heterogeneous jobs (`12_3`, `12+1`) are not ours.
            let Some((status, comment)) = parse_status_line(line) else {
                tracing::debug!(line, "squeue: skipping a job we cannot parse");
                continue;
            };
            if comment.starts_with(prefix) {
                jobs.push((status.id, comment, status));
            }
        }
        jobs.sort_by_key(|(id, _, _)| *id);
        Ok(jobs)
    }

    /// How busy `partition` is: its usable cores (`sinfo %C`) and its
    /// running and pending jobs (`squeue`).
    pub async fn partition_load(&self, partition: &str) -> Result<PartitionLoad, SlurmError> {
        check_word("partition", partition, MAX_PARTITION_LEN)?;
        let args: Vec<OsString> = vec!["-h".into(), format!("--partition={partition}").into(), "--format=%C".into()];
        let out = self.run("sinfo", &args).await?;
        let mut load = PartitionLoad::default();
        let mut lines = 0;
        for line in out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            // allocated/idle/other/total
            let n: Vec<u32> = line.split('/').filter_map(|x| x.parse().ok()).collect();
            let [allocated, idle, _other, _total] = n[..] else {
                return Err(SlurmError::Parse {
                    command: out.command,
                    detail: "expected A/I/O/T",
                    line: line.to_owned(),
                });
            };
            load.total_cores += allocated + idle;
            load.idle_cores += idle;
            lines += 1;
        }
        if lines == 0 {
            return Err(SlurmError::UnknownPartition(partition.to_owned()));
        }
        let args: Vec<OsString> = vec![
            "-h".into(),
            format!("--partition={partition}").into(),
            "--states=PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED".into(),
            format!("--Format={LOAD_FORMAT}").into(),
        ];
        let out = self.run("squeue", &args).await?;
        for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
            let bad = |detail| SlurmError::Parse { command: out.command.clone(), detail, line: line.to_owned() };
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            let [state, cpus, limit, left] = f[..] else {
                return Err(bad("expected state|cpus|limit|left"));
            };
            let cpus: u32 = cpus.parse().map_err(|_| bad("CPU count"))?;
            match SlurmState::parse(state) {
                SlurmState::Pending => load.pending.push((cpus, parse_duration(limit)?)),
                _ => load.running.push((cpus, parse_duration(left)?)),
            }
        }
        Ok(load)
    }

    fn write_script(&self, name: &str, script: &str) -> Result<PathBuf, SlurmError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.script_dir.join(format!("{name}.{}.{nanos}.{n}.sbatch", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
            f.write_all(script.as_bytes())?;
            f.flush()
        };
        write().map_err(|source| SlurmError::WriteScript { path: path.clone(), source })?;
        Ok(path)
    }

    fn binary(&self, binary: &'static str) -> Result<PathBuf, SlurmError> {
        if let Some(dir) = &self.bin_dir {
            let p = dir.join(binary);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(SlurmError::MissingBinary { binary, searched: dir.display().to_string() })
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
            .ok_or_else(|| SlurmError::MissingBinary { binary, searched: "PATH".to_owned() })
    }

    /// Runs a Slurm command with a cleared environment and the time limit;
    /// a non-zero exit is [`SlurmError::Failed`].
    async fn run(&self, binary: &'static str, args: &[OsString]) -> Result<Output, SlurmError> {
        let program = self.binary(binary)?;
        let command = std::iter::once(binary.to_owned())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new(&program);
        cmd.args(args)
            .env_clear()
            .env("SLURM_TIME_FORMAT", "standard")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(conf) = self.conf.clone().or_else(|| std::env::var_os("SLURM_CONF").map(PathBuf::from)) {
            cmd.env("SLURM_CONF", conf);
        }
        if let Some(tz) = std::env::var_os("TZ") {
            cmd.env("TZ", tz);
        }
        let child = cmd.spawn().map_err(|source| SlurmError::Spawn { command: command.clone(), source })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|source| SlurmError::Spawn { command: command.clone(), source })?,
            // Dropping the future drops the child: kill_on_drop kills it.
            Err(_) => return Err(SlurmError::Timeout { command, timeout: self.timeout }),
        };
        if !output.status.success() {
            return Err(SlurmError::Failed { command, status: output.status, stderr: tail(&output.stderr) });
        }
        Ok(Output { command, stdout: String::from_utf8_lossy(&output.stdout).into_owned() })
    }
}

/// What a successful command printed.
struct Output {
    command: String,
    stdout: String,
}

/// The last [`STDERR_TAIL_BYTES`] of `bytes`, trimmed, lossily decoded.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL_BYTES);
    let s = String::from_utf8_lossy(&bytes[start..]);
    let s = s.trim();
    if s.is_empty() {
        "(no stderr)".to_owned()
    } else {
        s.to_owned()
    }
}

fn flag_path(flag: &str, path: &Path) -> OsString {
    let mut s = OsString::from(flag);
    s.push(path.as_os_str());
    s
}

/// Quotes `arg` as one word for bash: inside single quotes, a `'` as
/// `'\''`, a carriage return as `$'\r'` (sbatch refuses scripts that
/// contain `\r\n`, taking them for DOS line breaks). Everything else,
/// newlines, `$()`, backticks and all, is literal inside single quotes.
///
/// Refuses NUL (no argv can carry it) and bytes that are not UTF-8.
pub fn shell_quote(arg: &OsStr) -> Result<String, SlurmError> {
    let Some(s) = arg.to_str() else {
        return Err(SlurmError::InvalidJob { field: "argument".to_owned(), reason: "not UTF-8" });
    };
    if s.contains('\0') {
        return Err(SlurmError::InvalidJob { field: "argument".to_owned(), reason: "contains NUL" });
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\r' => out.push_str("'$'\\r''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// The batch script for `job` (assumed [`validate`]d):
///
/// ```text
/// #!/bin/bash -p
/// umask 077
/// slurm_env=()
/// for v in $(compgen -e); do case "$v" in SLURM_* | SLURMD_*) slurm_env+=("$v=${!v}") ;; esac; done
/// exec /usr/bin/env -i -- "${slurm_env[@]}" 'NAME=value' … '/abs/argv0' 'arg1' …
/// ```
///
/// Slurm 22.05 hands the script the user's login environment even with
/// `--export=NONE`; `env -i` starts the argv with Slurm's `SLURM_*` and
/// `SLURMD_*` variables and ours only (bash alone cannot unset variables
/// whose names are not identifiers, such as exported functions). `-p` keeps bash from
/// reading `BASH_ENV` or importing functions (one named `exec` or `case`
/// would otherwise run instead). The first line after the shebang is a
/// command, so `sbatch` stops looking for `#SBATCH` lines there: no
/// argument can smuggle one in.
pub fn batch_script(job: &SbatchJob) -> Result<String, SlurmError> {
    let mut s = String::from(
        "#!/bin/bash -p\n\
         umask 077\n\
         # Slurm loads the user's login environment even with --export=NONE:\n\
         # the argv gets Slurm's SLURM_*/SLURMD_* variables and ours, nothing else.\n\
         slurm_env=()\n\
         for v in $(compgen -e); do case \"$v\" in SLURM_* | SLURMD_*) slurm_env+=(\"$v=${!v}\") ;; esac; done\n\
         exec /usr/bin/env -i -- \"${slurm_env[@]}\"",
    );
    for (name, value) in &job.env {
        let q = shell_quote(OsStr::new(&format!("{name}={value}"))).map_err(|e| relabel(e, format!("env {name}")))?;
        s.push(' ');
        s.push_str(&q);
    }
    for (i, arg) in job.argv.iter().enumerate() {
        let q = shell_quote(OsStr::new(arg)).map_err(|e| relabel(e, format!("argv[{i}]")))?;
        s.push(' ');
        s.push_str(&q);
    }
    s.push('\n');
    if s.len() > MAX_SCRIPT_BYTES {
        return Err(SlurmError::InvalidJob {
            field: "argv and env".to_owned(),
            reason: "batch script over MAX_SCRIPT_BYTES",
        });
    }
    Ok(s)
}

fn relabel(e: SlurmError, field: String) -> SlurmError {
    match e {
        SlurmError::InvalidJob { reason, .. } => SlurmError::InvalidJob { field, reason },
        e => e,
    }
}

fn invalid(field: &str, reason: &'static str) -> SlurmError {
    SlurmError::InvalidJob { field: field.to_owned(), reason }
}

/// `[A-Za-z0-9._-]{1,max}`, not starting with `-`.
fn check_word(field: &str, s: &str, max: usize) -> Result<(), SlurmError> {
    if s.is_empty() || s.len() > max {
        return Err(invalid(field, "empty or too long"));
    }
    if s.starts_with('-') {
        return Err(invalid(field, "starts with '-'"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(invalid(field, "only A-Z a-z 0-9 . _ - are allowed"));
    }
    Ok(())
}

/// An absolute UTF-8 path without control characters; with `no_patterns`,
/// also without `%` and `\` (Slurm expands them in `--output`/`--error`).
fn check_path(field: &str, p: &Path, no_patterns: bool) -> Result<(), SlurmError> {
    let Some(s) = p.to_str() else {
        return Err(invalid(field, "not UTF-8"));
    };
    if !p.is_absolute() {
        return Err(invalid(field, "not an absolute path"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    if no_patterns && (s.contains('%') || s.contains('\\')) {
        return Err(invalid(field, "contains '%' or '\\' (Slurm expands them)"));
    }
    Ok(())
}

/// Checks everything [`Slurm::submit`] puts on `sbatch`'s command line or
/// into the script.
pub fn validate(job: &SbatchJob) -> Result<(), SlurmError> {
    check_word("name", &job.name, MAX_NAME_LEN)?;
    check_word("partition", &job.partition, MAX_PARTITION_LEN)?;
    if !(1..=MAX_CPUS).contains(&job.cpus) {
        return Err(invalid("cpus", "must be 1..=MAX_CPUS"));
    }
    if !(1..=MAX_MEM_MB).contains(&job.mem_mb) {
        return Err(invalid("mem_mb", "must be 1..=MAX_MEM_MB"));
    }
    if !(1..=MAX_TIME_LIMIT_SECS).contains(&job.time_limit_secs) {
        return Err(invalid("time_limit_secs", "must be 1..=MAX_TIME_LIMIT_SECS"));
    }
    check_path("workdir", &job.workdir, false)?;
    check_path("stdout", &job.stdout, true)?;
    check_path("stderr", &job.stderr, true)?;
    if job.comment.len() > MAX_COMMENT_LEN {
        return Err(invalid("comment", "too long"));
    }
    if !job.comment.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@/+=-".contains(&b)) {
        return Err(invalid("comment", "only A-Z a-z 0-9 . _ : @ / + = - are allowed"));
    }
    for name in job.env.keys() {
        let mut bytes = name.bytes();
        let ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(invalid(&format!("env {name:?}"), "not a variable name"));
        }
        if name.starts_with("SLURM_") || name.starts_with("SLURMD_") {
            return Err(invalid(&format!("env {name}"), "SLURM_* and SLURMD_* belong to Slurm"));
        }
    }
    let Some(argv0) = job.argv.first() else {
        return Err(invalid("argv", "empty"));
    };
    if !Path::new(argv0).is_absolute() {
        return Err(invalid("argv[0]", "not an absolute path (the job has no PATH)"));
    }
    if argv0.contains('=') {
        return Err(invalid("argv[0]", "contains '=' (env(1) would take it for a variable)"));
    }
    Ok(())
}

/// Parses a Slurm duration: `D-HH:MM:SS`, `D-HH:MM`, `D-HH`, `HH:MM:SS`,
/// `MM:SS`, or `MM` (minutes), into seconds; `None` for the values that
/// mean "no limit" or "not known": `UNLIMITED`, `INFINITE`, `INVALID`,
/// `NOT_SET`, `N/A`, and the empty string.
pub fn parse_duration(s: &str) -> Result<Option<u64>, SlurmError> {
    let s = s.trim();
    if matches!(s, "" | "UNLIMITED" | "INFINITE" | "INVALID" | "NOT_SET" | "N/A") {
        return Ok(None);
    }
    let bad = || SlurmError::Time(s.to_owned());
    let num = |x: &str| -> Result<u64, SlurmError> {
        if x.is_empty() || x.len() > 9 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let (days, rest) = match s.split_once('-') {
        Some((d, rest)) => (num(d)?, Some(rest)),
        None => (0, None),
    };
    let secs = match rest {
        // days-hours[:minutes[:seconds]]
        Some(rest) => {
            let p: Vec<&str> = rest.split(':').collect();
            match p[..] {
                [h] => num(h)? * 3600,
                [h, m] => num(h)? * 3600 + num(m)? * 60,
                [h, m, sec] => num(h)? * 3600 + num(m)? * 60 + num(sec)?,
                _ => return Err(bad()),
            }
        }
        // minutes | minutes:seconds | hours:minutes:seconds
        None => {
            let p: Vec<&str> = s.split(':').collect();
            match p[..] {
                [m] => num(m)? * 60,
                [m, sec] => num(m)? * 60 + num(sec)?,
                [h, m, sec] => num(h)? * 3600 + num(m)? * 60 + num(sec)?,
                _ => return Err(bad()),
            }
        }
    };
    Ok(Some(days * 86_400 + secs))
}

/// `None` for the strings Slurm prints for "nothing".
fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    match s {
        "" | "(null)" | "N/A" | "None" | "Unknown" | "n/a" => None,
        s => Some(s.to_owned()),
    }
}

/// One [`STATUS_FORMAT`] line: the status and the comment.
fn parse_status_line(line: &str) -> Option<(JobStatus, String)> {
    let f: Vec<&str> = line.splitn(STATUS_FIELDS, '|').collect();
    let [id, state, reason, partition, node, exit, start, end, comment] = f[..] else {
        return None;
    };
    let id: SlurmJobId = id.trim().parse().ok()?;
    let state = SlurmState::parse(state.trim());
    // squeue's exit_code is the raw wait status.
    let wait: i32 = exit.trim().parse().ok()?;
    let (exit_code, signal) = if state.is_finished() { split_wait_status(wait) } else { (None, None) };
    let comment = match comment.trim() {
        "(null)" => String::new(),
        c => c.to_owned(),
    };
    let status = JobStatus {
        id,
        state,
        exit_code,
        signal,
        reason: non_empty(reason),
        partition: non_empty(partition),
        node: non_empty(node),
        start_time: non_empty(start),
        end_time: non_empty(end),
    };
    Some((status, comment))
}

/// A wait status as exit code or signal.
fn split_wait_status(wait: i32) -> (Option<i32>, Option<i32>) {
    let signal = wait & 0x7f;
    if signal == 0 {
        (Some((wait >> 8) & 0xff), None)
    } else {
        (None, Some(signal))
    }
}

/// One `scontrol show job -o` line.
fn parse_scontrol_job(line: &str) -> Option<JobStatus> {
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for token in line.split_whitespace() {
        if let Some((k, v)) = token.split_once('=') {
            fields.entry(k).or_insert(v);
        }
    }
    let id: SlurmJobId = fields.get("JobId")?.parse().ok()?;
    let state = SlurmState::parse(fields.get("JobState")?);
    // ExitCode=CODE:SIGNAL
    let (exit_code, signal) = match fields.get("ExitCode").and_then(|e| e.split_once(':')) {
        Some((code, sig)) if state.is_finished() => {
            let sig: i32 = sig.parse().ok()?;
            if sig != 0 {
                (None, Some(sig))
            } else {
                (Some(code.parse().ok()?), None)
            }
        }
        _ => (None, None),
    };
    let get = |k: &str| fields.get(k).and_then(|v| non_empty(v));
    Some(JobStatus {
        id,
        state,
        exit_code,
        signal,
        reason: get("Reason"),
        partition: get("Partition"),
        node: get("NodeList"),
        start_time: get("StartTime"),
        end_time: get("EndTime"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command as StdCommand;

    const HOSTILE: &[&str] = &[
        "",
        " ",
        "a b",
        "'",
        "''",
        "\"",
        "a'b\"c",
        "$(touch /tmp/seqshield-pwned)",
        "`id`",
        "${IFS}",
        "$HOME",
        "\\",
        "\\'",
        "\n",
        "line1\nline2",
        "\n#SBATCH --partition=evil\n",
        "\r",
        "\r\n",
        "a\r\nb",
        "\t",
        "!",
        "!!",
        "*",
        "~",
        "#",
        "-n",
        "--",
        "%s%n",
        ";",
        "&&",
        "|",
        ">",
        "é ünïcödé 🧬",
        "\u{7f}\u{1}\u{1b}[31m",
        "'$'\\r''",
    ];

    /// Runs `printf '%s\0' <quoted…>` through real bash.
    fn bash_roundtrip(args: &[&str]) -> Vec<u8> {
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(OsStr::new(a)).unwrap()).collect();
        let script = format!("printf '%s\\0' {}", quoted.join(" "));
        let out = StdCommand::new("bash").arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "bash failed on {script:?}");
        out.stdout
    }

    fn nul_joined(args: &[&str]) -> Vec<u8> {
        args.iter().flat_map(|a| a.bytes().chain([0])).collect()
    }

    #[test]
    fn shell_quote_round_trips_hostile_strings_through_bash() {
        for a in HOSTILE {
            assert_eq!(bash_roundtrip(&[a]), nul_joined(&[a]), "{a:?}");
        }
        assert_eq!(bash_roundtrip(HOSTILE), nul_joined(HOSTILE));
    }

    #[test]
    fn shell_quote_output_has_no_dos_line_break() {
        for a in HOSTILE {
            assert!(!shell_quote(OsStr::new(a)).unwrap().contains("\r\n"), "{a:?}");
        }
    }

    #[test]
    fn shell_quote_refuses_nul_and_non_utf8() {
        assert!(matches!(shell_quote(OsStr::new("a\0b")), Err(SlurmError::InvalidJob { reason: "contains NUL", .. })));
        assert!(matches!(
            shell_quote(OsStr::from_bytes(b"\xff\xfe")),
            Err(SlurmError::InvalidJob { reason: "not UTF-8", .. })
        ));
    }

    #[test]
    fn shell_quote_examples() {
        assert_eq!(shell_quote(OsStr::new("")).unwrap(), "''");
        assert_eq!(shell_quote(OsStr::new("a b")).unwrap(), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")).unwrap(), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::new("\r")).unwrap(), "''$'\\r'''");
    }

    fn job(argv: &[&str]) -> SbatchJob {
        SbatchJob {
            name: "t".into(),
            partition: "onprem".into(),
            cpus: 1,
            mem_mb: 100,
            time_limit_secs: 60,
            workdir: "/tmp".into(),
            stdout: "/tmp/o".into(),
            stderr: "/tmp/e".into(),
            comment: "seqshield:task_1".into(),
            env: BTreeMap::new(),
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The whole script, run by bash outside Slurm: the argv arrives
    /// byte-exact and the environment is only what we passed (plus
    /// SLURM_*), whatever the parent's environment holds.
    #[test]
    fn batch_script_runs_exactly_the_argv_with_only_our_env() {
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("s.sh");
        let mut argv = vec!["/usr/bin/printf", "%s\\0"];
        argv.extend_from_slice(HOSTILE);
        let write = |script: String| {
            std::fs::write(&script_path, script).unwrap();
            std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o700)).unwrap();
        };
        // Executed directly, as slurmstepd does, so the shebang's `-p` counts.
        write(batch_script(&job(&argv)).unwrap());
        // A clean parent (the test itself may run under a real Slurm's env).
        let out = StdCommand::new(&script_path).env_clear().env("LEAKED", "x").output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, nul_joined(HOSTILE));

        let mut j = job(&["/usr/bin/env"]);
        j.env.insert("SEQSHIELD_X".into(), "a b\n'c'".into());
        j.env.insert("_Y".into(), String::new());
        write(batch_script(&j).unwrap());
        let out = StdCommand::new(&script_path)
            .env_clear()
            .env("LEAKED", "x")
            .env("SLURM_JOB_ID", "42")
            .env("BASH_FUNC_exec%%", "() { echo hijacked; }")
            .output()
            .unwrap();
        let env = String::from_utf8(out.stdout).unwrap();
        let mut vars: Vec<&str> =
            env.split('\n').filter(|l| l.contains('=')).map(|l| l.split('=').next().unwrap()).collect();
        vars.sort_unstable();
        assert_eq!(vars, ["SEQSHIELD_X", "SLURM_JOB_ID", "_Y"], "{env}");
        assert!(env.contains("SEQSHIELD_X=a b\n'c'\n"), "{env}");
        assert!(!env.contains("hijacked"));
    }

    #[test]
    fn batch_script_has_a_command_before_any_argument() {
        // sbatch reads #SBATCH lines only up to the first command.
        let script = batch_script(&job(&["/bin/true", "\n#SBATCH --partition=evil"])).unwrap();
        let first_cmd = script.lines().skip(1).find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap();
        assert_eq!(first_cmd, "umask 077");
        assert!(script.ends_with(" '/bin/true' '\n#SBATCH --partition=evil'\n"), "{script}");
        assert!(!script.contains("\r\n"));
    }

    #[test]
    fn batch_script_is_bounded() {
        let big = "x".repeat(MAX_SCRIPT_BYTES);
        assert!(matches!(batch_script(&job(&["/bin/true", &big])), Err(SlurmError::InvalidJob { .. })));
    }

    #[test]
    fn validate_refuses_bad_fields() {
        let ok = job(&["/bin/true"]);
        validate(&ok).unwrap();
        let cases: Vec<(&str, SbatchJob)> = vec![
            ("name", SbatchJob { name: String::new(), ..ok.clone() }),
            ("name", SbatchJob { name: "a b".into(), ..ok.clone() }),
            ("name", SbatchJob { name: "-x".into(), ..ok.clone() }),
            ("partition", SbatchJob { partition: "on prem".into(), ..ok.clone() }),
            ("partition", SbatchJob { partition: "a,b".into(), ..ok.clone() }),
            ("partition", SbatchJob { partition: "p".repeat(MAX_PARTITION_LEN + 1), ..ok.clone() }),
            ("cpus", SbatchJob { cpus: 0, ..ok.clone() }),
            ("mem_mb", SbatchJob { mem_mb: 0, ..ok.clone() }),
            ("time_limit_secs", SbatchJob { time_limit_secs: 0, ..ok.clone() }),
            ("workdir", SbatchJob { workdir: "rel".into(), ..ok.clone() }),
            ("stdout", SbatchJob { stdout: "/tmp/%j.out".into(), ..ok.clone() }),
            ("stderr", SbatchJob { stderr: "/tmp/a\nb".into(), ..ok.clone() }),
            ("comment", SbatchJob { comment: "a|b".into(), ..ok.clone() }),
            ("comment", SbatchJob { comment: "a b".into(), ..ok.clone() }),
            ("comment", SbatchJob { comment: "c".repeat(MAX_COMMENT_LEN + 1), ..ok.clone() }),
            ("argv", SbatchJob { argv: vec![], ..ok.clone() }),
            ("argv[0]", SbatchJob { argv: vec!["true".into()], ..ok.clone() }),
            ("argv[0]", SbatchJob { argv: vec!["/a=b".into()], ..ok.clone() }),
        ];
        for (field, j) in cases {
            match validate(&j) {
                Err(SlurmError::InvalidJob { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut j = ok.clone();
        j.env.insert("1X".into(), String::new());
        assert!(validate(&j).is_err());
        let mut j = ok.clone();
        j.env.insert("SLURM_JOB_ID".into(), "1".into());
        assert!(validate(&j).is_err());
        let mut j = ok;
        j.env.insert("A=B".into(), String::new());
        assert!(validate(&j).is_err());
    }

    #[test]
    fn durations() {
        let cases = [
            ("0:00", Some(0)),
            ("0:30", Some(30)),
            ("59:59", Some(3599)),
            ("1:00:00", Some(3600)),
            ("12:34:56", Some(45_296)),
            ("1-00:00:00", Some(86_400)),
            ("365-00:00:00", Some(365 * 86_400)),
            ("2-03:04:05", Some(2 * 86_400 + 3 * 3600 + 4 * 60 + 5)),
            ("1-02", Some(86_400 + 7200)),
            ("1-02:03", Some(86_400 + 7200 + 180)),
            ("5", Some(300)),
            ("UNLIMITED", None),
            ("INFINITE", None),
            ("INVALID", None),
            ("NOT_SET", None),
            ("N/A", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s).unwrap(), want, "{s}");
        }
        for bad in ["x", "1:2:3:4", "-1", "1-", "1-2-3", ":", "1:", "+5", "1 2", "9999999999:00"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn states_parse_and_map() {
        use SlurmState as S;
        let cases = [
            ("PENDING", S::Pending, TesState::Queued),
            ("CONFIGURING", S::Configuring, TesState::Queued),
            ("RUNNING", S::Running, TesState::Running),
            ("COMPLETING", S::Completing, TesState::Running),
            ("COMPLETED", S::Completed, TesState::Complete),
            ("FAILED", S::Failed, TesState::SystemError),
            ("TIMEOUT", S::Timeout, TesState::SystemError),
            ("OUT_OF_MEMORY", S::OutOfMemory, TesState::SystemError),
            ("NODE_FAIL", S::NodeFail, TesState::SystemError),
            ("BOOT_FAIL", S::BootFail, TesState::SystemError),
            ("DEADLINE", S::Deadline, TesState::SystemError),
            ("CANCELLED", S::Cancelled, TesState::Canceled),
            ("CANCELLED by 0", S::Cancelled, TesState::Canceled),
            ("CANCELLED+", S::Cancelled, TesState::Canceled),
            ("PREEMPTED", S::Preempted, TesState::Preempted),
            ("SUSPENDED", S::Suspended, TesState::Paused),
            ("REQUEUED", S::Requeued, TesState::Queued),
            ("WEIRD", S::Other("WEIRD".into()), TesState::Unknown),
        ];
        for (s, state, tes) in cases {
            assert_eq!(SlurmState::parse(s), state, "{s}");
            assert_eq!(tes_state(&state), tes, "{s}");
        }
    }

    #[test]
    fn squeue_lines() {
        let (s, c) = parse_status_line(
            "2|FAILED|NonZeroExitCode|onprem|onprem1|768|2026-11-21T20:51:42|2026-11-21T20:51:43|seqshield:task_1",
        )
        .unwrap();
        assert_eq!(s.id, SlurmJobId(2));
        assert_eq!(s.state, SlurmState::Failed);
        assert_eq!((s.exit_code, s.signal), (Some(3), None));
        assert_eq!(s.reason.as_deref(), Some("NonZeroExitCode"));
        assert_eq!(s.partition.as_deref(), Some("onprem"));
        assert_eq!(s.node.as_deref(), Some("onprem1"));
        assert_eq!(s.start_time.as_deref(), Some("2026-11-21T20:51:42"));
        assert_eq!(c, "seqshield:task_1");

        let (s, c) = parse_status_line("3|PENDING|Resources|cloud||0|N/A|N/A|(null)").unwrap();
        assert_eq!((s.state, s.exit_code, s.node, s.start_time), (SlurmState::Pending, None, None, None));
        assert_eq!(c, "");

        // Killed by SIGKILL (wait status 9).
        let (s, _) = parse_status_line("4|CANCELLED|None|cloud|cloud1|9|a|b|x").unwrap();
        assert_eq!((s.exit_code, s.signal), (None, Some(9)));

        // A '|' in the comment stays in the comment.
        let (_, c) = parse_status_line("5|RUNNING|None|cloud|cloud1|0|a|b|x|y|z").unwrap();
        assert_eq!(c, "x|y|z");

        assert!(parse_status_line("12_3|RUNNING|None|cloud|cloud1|0|a|b|x").is_none());
        assert!(parse_status_line("garbage").is_none());
    }

    #[test]
    fn scontrol_lines() {
        let line = "JobId=7 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) \
                    ExitCode=3:0 StartTime=2026-11-21T20:51:42 EndTime=2026-11-21T20:51:43 Partition=cloud \
                    NodeList=cloud1 Comment=a b c";
        let s = parse_scontrol_job(line).unwrap();
        assert_eq!(s.id, SlurmJobId(7));
        assert_eq!(s.state, SlurmState::Failed);
        assert_eq!(s.exit_code, Some(3));
        assert_eq!(s.partition.as_deref(), Some("cloud"));
        assert_eq!(s.node.as_deref(), Some("cloud1"));
        let s = parse_scontrol_job("JobId=8 JobState=CANCELLED Reason=None ExitCode=0:15 NodeList=(null)").unwrap();
        assert_eq!((s.exit_code, s.signal, s.reason, s.node), (None, Some(15), None, None));
        let s = parse_scontrol_job("JobId=9 JobState=RUNNING ExitCode=0:0").unwrap();
        assert_eq!(s.exit_code, None);
    }

    #[test]
    fn missing_binary_names_it_and_scripts_setup() {
        let dir = tempfile::tempdir().unwrap();
        let slurm = Slurm::new(dir.path()).with_bin_dir(dir.path());
        let e = slurm.binary("sbatch").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`sbatch` not found") && msg.contains("scripts/setup"), "{msg}");
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let long = vec![b'x'; STDERR_TAIL_BYTES * 3];
        assert_eq!(tail(&long).len(), STDERR_TAIL_BYTES);
        assert_eq!(tail(b"  \n"), "(no stderr)");
    }
}
