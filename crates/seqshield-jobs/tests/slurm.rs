//! The Slurm driver against a real Slurm 22.05 (`scripts/slurm`, started
//! by `scripts/services` under `scripts/test`): partitions `onprem` (node
//! `onprem1`) and `cloud` (node `cloud1`).
//!
//! `SEQSHIELD_TEST_SLURM` names the state directory (`SLURM_CONF` is
//! `$dir/slurm.conf`). Without it the tests skip, or fail when `CI` is set.
//! By hand:
//!
//! ```text
//! scripts/slurm start /tmp/slurm-t && SEQSHIELD_TEST_SLURM=/tmp/slurm-t \
//!   cargo test -p seqshield-jobs --test slurm; scripts/slurm stop /tmp/slurm-t
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use seqshield_jobs::slurm::{tes_state, JobStatus, SbatchJob, Slurm, SlurmError, SlurmJobId, SlurmState};
use seqshield_jobs::tes::TesState;
use tempfile::TempDir;
use tokio::sync::{RwLock, RwLockReadGuard};

/// How long a test waits for a job to reach a state; jobs take ~3 s.
const WAIT: Duration = Duration::from_secs(90);

/// The saturation test needs the `cloud` partition to itself: it takes
/// this for writing, every other test for reading.
static PARTITIONS: RwLock<()> = RwLock::const_new(());

/// A Slurm handle and a scratch directory for scripts and job output.
struct Cluster {
    slurm: Slurm,
    dir: TempDir,
}

impl Cluster {
    /// `None` (after a note) when no Slurm is configured outside CI.
    fn get() -> Option<Self> {
        let Some(state) = std::env::var_os("SEQSHIELD_TEST_SLURM") else {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but no Slurm: run through scripts/test (SEQSHIELD_TEST_SLURM is unset)");
            }
            eprintln!("skipping: SEQSHIELD_TEST_SLURM is unset (scripts/slurm start DIR, then set it to DIR)");
            return None;
        };
        let conf = PathBuf::from(state).join("slurm.conf");
        assert!(conf.is_file(), "SEQSHIELD_TEST_SLURM has no slurm.conf: {}", conf.display());
        let dir = tempfile::Builder::new().prefix("seqshield-slurm-test.").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scripts")).unwrap();
        let slurm = Slurm::new(dir.path().join("scripts")).with_conf(conf);
        Some(Self { slurm, dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A one-CPU, 100 MiB, two-minute job on `partition` with its output
    /// in the scratch directory.
    fn job(&self, name: &str, partition: &str, argv: &[&str]) -> SbatchJob {
        SbatchJob {
            name: name.to_owned(),
            partition: partition.to_owned(),
            cpus: 1,
            mem_mb: 100,
            time_limit_secs: 120,
            workdir: self.dir.path().to_owned(),
            stdout: self.path(&format!("{name}.out")),
            stderr: self.path(&format!("{name}.err")),
            comment: format!("seqshield:test_{name}"),
            env: BTreeMap::new(),
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Polls until the job's status satisfies `done`; panics after [`WAIT`].
    async fn wait_for(&self, id: SlurmJobId, what: &str, done: impl Fn(&JobStatus) -> bool) -> JobStatus {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < WAIT {
            let mut map = self.slurm.query(&[id]).await.unwrap();
            if let Some(status) = map.remove(&id) {
                if done(&status) {
                    return status;
                }
                last = Some(status);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("job {id} did not become {what} within {WAIT:?}; last: {last:?}");
    }

    async fn wait_finished(&self, id: SlurmJobId) -> JobStatus {
        self.wait_for(id, "finished", |s| s.state.is_finished()).await
    }
}

/// A comment prefix no other test run shares.
fn unique(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("seqshield:{tag}-{}-{nanos}", std::process::id())
}

async fn shared() -> RwLockReadGuard<'static, ()> {
    PARTITIONS.read().await
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs a successful job on `partition` and checks where it ran.
async fn completes_on(partition: &str, node: &str) {
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let name = format!("ok-{partition}");
    let id = c.slurm.submit(&c.job(&name, partition, &["/bin/sh", "-c", "echo on $SLURMD_NODENAME"])).await.unwrap();
    let s = c.wait_finished(id).await;
    assert_eq!(s.state, SlurmState::Completed, "{s:?}");
    assert_eq!(tes_state(&s.state), TesState::Complete);
    assert_eq!((s.exit_code, s.signal), (Some(0), None));
    assert_eq!(s.partition.as_deref(), Some(partition));
    assert_eq!(s.node.as_deref(), Some(node));
    assert!(s.start_time.is_some() && s.end_time.is_some(), "{s:?}");
    assert_eq!(read(&c.path(&format!("{name}.out"))), format!("on {node}\n"));
}

#[tokio::test]
async fn job_on_onprem_completes_on_onprem1() {
    completes_on("onprem", "onprem1").await;
}

#[tokio::test]
async fn job_on_cloud_completes_on_cloud1() {
    completes_on("cloud", "cloud1").await;
}

/// A non-zero exit is FAILED with its exit code; with no worker report,
/// the job service calls that a system error.
#[tokio::test]
async fn nonzero_exit_is_failed_with_its_exit_code() {
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let id = c.slurm.submit(&c.job("exit3", "onprem", &["/bin/sh", "-c", "echo bad >&2; exit 3"])).await.unwrap();
    let s = c.wait_finished(id).await;
    assert_eq!(s.state, SlurmState::Failed, "{s:?}");
    assert_eq!((s.exit_code, s.signal), (Some(3), None));
    assert_eq!(s.reason.as_deref(), Some("NonZeroExitCode"));
    assert_eq!(tes_state(&s.state), TesState::SystemError);
    assert_eq!(read(&c.path("exit3.err")), "bad\n");
}

#[tokio::test]
async fn scancel_cancels_a_running_job() {
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let id = c.slurm.submit(&c.job("sleeper", "cloud", &["/bin/sleep", "300"])).await.unwrap();
    let s = c.wait_for(id, "running", |s| s.state == SlurmState::Running).await;
    assert_eq!(tes_state(&s.state), TesState::Running);
    c.slurm.cancel(id).await.unwrap();
    let s = c.wait_finished(id).await;
    assert_eq!(s.state, SlurmState::Cancelled, "{s:?}");
    assert_eq!(tes_state(&s.state), TesState::Canceled);
    // Cancelling again, once it is over, is not an error.
    c.slurm.cancel(id).await.unwrap();
}

/// Every argument reaches the job byte for byte, whatever shell
/// metacharacters it holds (the job prints them with `printf '%s\0'`).
#[tokio::test]
async fn hostile_argv_round_trips_byte_exact() {
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let hostile = [
        "",
        "a b",
        "it's",
        "\"double\"",
        "$(touch /tmp/seqshield-slurm-pwned)",
        "`touch /tmp/seqshield-slurm-pwned`",
        "${HOME}",
        "\\",
        "line1\nline2",
        "\n#SBATCH --partition=cloud\n",
        "a\r\nb",
        "\t;|&><*?~!#",
        "--",
        "-n",
        "%j %s",
        "é 🧬",
    ];
    let mut argv = vec!["/usr/bin/printf", "%s\\0"];
    argv.extend_from_slice(&hostile);
    let id = c.slurm.submit(&c.job("hostile", "onprem", &argv)).await.unwrap();
    let s = c.wait_finished(id).await;
    assert_eq!(s.state, SlurmState::Completed, "{s:?}");
    let got = std::fs::read(c.path("hostile.out")).unwrap();
    let want: Vec<u8> = hostile.iter().flat_map(|a| a.bytes().chain([0])).collect();
    assert_eq!(got, want);
    assert!(!Path::new("/tmp/seqshield-slurm-pwned").exists());
}

/// Slurm 22.05 hands batch scripts the user's login environment even with
/// `--export=NONE`; the job must see only SLURM_* and what we pass.
#[tokio::test]
async fn job_environment_is_only_slurm_and_ours() {
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let mut job = c.job("env", "cloud", &["/usr/bin/env"]);
    job.env.insert("SEQSHIELD_X".into(), "a b 'c' $(d)".into());
    job.env.insert("PATH".into(), "/usr/bin:/bin".into());
    let id = c.slurm.submit(&job).await.unwrap();
    let s = c.wait_finished(id).await;
    assert_eq!(s.state, SlurmState::Completed, "{s:?}");
    let out = read(&c.path("env.out"));
    let others: Vec<&str> =
        out.lines().filter(|l| !l.starts_with("SLURM_") && !l.starts_with("SLURMD_NODENAME=")).collect();
    assert_eq!(others, ["PATH=/usr/bin:/bin", "SEQSHIELD_X=a b 'c' $(d)"], "{out}");
    assert!(out.contains(&format!("SLURM_JOB_ID={id}\n")), "{out}");
}

#[tokio::test]
async fn list_by_comment_prefix_finds_our_jobs() {
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let prefix = unique("list");
    let mut ids = Vec::new();
    for (i, partition) in ["onprem", "cloud"].iter().enumerate() {
        let mut job = c.job(&format!("list{i}"), partition, &["/bin/true"]);
        job.comment = format!("{prefix}:task_{i}");
        ids.push(c.slurm.submit(&job).await.unwrap());
    }
    let found = c.slurm.list_by_comment_prefix(&prefix).await.unwrap();
    let got: Vec<(SlurmJobId, String)> = found.iter().map(|(id, comment, _)| (*id, comment.clone())).collect();
    assert_eq!(got, vec![(ids[0], format!("{prefix}:task_0")), (ids[1], format!("{prefix}:task_1"))]);
    for (id, _, status) in &found {
        assert_eq!(status.id, *id);
    }
    // Still found once finished (MinJobAge keeps them).
    for id in &ids {
        c.wait_finished(*id).await;
    }
    let found = c.slurm.list_by_comment_prefix(&prefix).await.unwrap();
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|(_, _, s)| s.state == SlurmState::Completed), "{found:?}");
    assert!(c.slurm.list_by_comment_prefix(&unique("nothing")).await.unwrap().is_empty());
}

/// With every core of `cloud` taken, a further job is pending and the
/// load shows both.
#[tokio::test]
async fn partition_load_sees_a_pending_job_when_saturated() {
    let Some(c) = Cluster::get() else { return };
    let _g = PARTITIONS.write().await;
    let before = c.slurm.partition_load("cloud").await.unwrap();
    assert!(before.total_cores >= 1, "{before:?}");
    let mut blocker = c.job("blocker", "cloud", &["/bin/sleep", "300"]);
    blocker.cpus = before.total_cores;
    blocker.time_limit_secs = 180;
    let blocker = c.slurm.submit(&blocker).await.unwrap();
    c.wait_for(blocker, "running", |s| s.state == SlurmState::Running).await;
    let waiter = c.slurm.submit(&c.job("waiter", "cloud", &["/bin/true"])).await.unwrap();

    let start = Instant::now();
    let load = loop {
        let load = c.slurm.partition_load("cloud").await.unwrap();
        if load.pending.contains(&(1, Some(120))) || start.elapsed() > WAIT {
            break load;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(load.idle_cores, 0, "{load:?}");
    assert!(load.pending.contains(&(1, Some(120))), "{load:?}");
    assert!(
        load.running.iter().any(|&(cores, left)| cores == before.total_cores && left.is_some_and(|l| l <= 180)),
        "{load:?}"
    );
    // The reason is None until the scheduler has looked at the job.
    let s = c.wait_for(waiter, "pending with a reason", |s| s.reason.is_some()).await;
    assert_eq!(s.state, SlurmState::Pending, "{s:?}");
    assert_eq!(tes_state(&s.state), TesState::Queued);
    assert!(matches!(s.reason.as_deref(), Some("Resources" | "Priority")), "{s:?}");

    c.slurm.cancel(blocker).await.unwrap();
    c.slurm.cancel(waiter).await.unwrap();
    c.wait_finished(blocker).await;
    c.wait_finished(waiter).await;
}

#[tokio::test]
async fn partition_load_of_an_unknown_partition_is_an_error() {
    let Some(c) = Cluster::get() else { return };
    let e = c.slurm.partition_load("nosuchpartition").await.unwrap_err();
    assert!(matches!(e, SlurmError::UnknownPartition(_)), "{e}");
}

#[tokio::test]
async fn sbatch_refusing_a_bad_partition_is_a_clear_error() {
    let Some(c) = Cluster::get() else { return };
    let e = c.slurm.submit(&c.job("badpart", "nosuchpartition", &["/bin/true"])).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SlurmError::Failed { .. }), "{msg}");
    assert!(msg.contains("sbatch") && msg.contains("Invalid partition name"), "{msg}");
    // The script was removed even though sbatch refused it.
    assert_eq!(std::fs::read_dir(c.path("scripts")).unwrap().count(), 0);
}

#[tokio::test]
async fn invalid_job_is_refused_before_sbatch() {
    let Some(c) = Cluster::get() else { return };
    let e = c.slurm.submit(&c.job("bad name", "onprem", &["/bin/true"])).await.unwrap_err();
    assert!(matches!(e, SlurmError::InvalidJob { ref field, .. } if field == "name"), "{e}");
}

#[tokio::test]
async fn query_leaves_out_jobs_slurm_does_not_know() {
    let Some(c) = Cluster::get() else { return };
    let unknown = SlurmJobId(999_999_990);
    assert!(c.slurm.query(&[unknown]).await.unwrap().is_empty());
    assert!(c.slurm.query(&[]).await.unwrap().is_empty());
    // A known job next to an unknown one.
    let _g = shared().await;
    let id = c.slurm.submit(&c.job("known", "onprem", &["/bin/true"])).await.unwrap();
    let map = c.slurm.query(&[id, unknown]).await.unwrap();
    assert_eq!(map.keys().collect::<Vec<_>>(), [&id]);
    c.wait_finished(id).await;
}

#[tokio::test]
async fn missing_binary_says_which_and_how_to_install() {
    let Some(c) = Cluster::get() else { return };
    let empty = tempfile::tempdir().unwrap();
    let slurm = Slurm::new(c.path("scripts")).with_bin_dir(empty.path());
    let msg = slurm.query(&[SlurmJobId(1)]).await.unwrap_err().to_string();
    assert!(msg.contains("`squeue` not found") && msg.contains("scripts/setup"), "{msg}");
}

/// `squeue` may not list a job `scontrol` still knows; `query` then asks
/// `scontrol show job`. Here a stand-in `squeue` lists nothing.
#[tokio::test]
async fn query_falls_back_to_scontrol_show_job() {
    use std::os::unix::fs::PermissionsExt;
    let Some(c) = Cluster::get() else { return };
    let _g = shared().await;
    let id = c.slurm.submit(&c.job("fallback", "cloud", &["/bin/sh", "-c", "exit 4"])).await.unwrap();
    c.wait_finished(id).await;

    let bin = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap();
    let scontrol = std::env::split_paths(&path).map(|d| d.join("scontrol")).find(|p| p.is_file()).unwrap();
    std::os::unix::fs::symlink(scontrol, bin.path().join("scontrol")).unwrap();
    let squeue = bin.path().join("squeue");
    std::fs::write(&squeue, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&squeue, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = PathBuf::from(std::env::var_os("SEQSHIELD_TEST_SLURM").unwrap()).join("slurm.conf");
    let slurm = Slurm::new(c.path("scripts")).with_conf(conf).with_bin_dir(bin.path());

    let map = slurm.query(&[id, SlurmJobId(999_999_991)]).await.unwrap();
    assert_eq!(map.len(), 1, "{map:?}");
    let s = &map[&id];
    assert_eq!(s.state, SlurmState::Failed, "{s:?}");
    assert_eq!((s.exit_code, s.signal), (Some(4), None));
    assert_eq!(s.partition.as_deref(), Some("cloud"));
    assert_eq!(s.node.as_deref(), Some("cloud1"));
    // The same answer squeue gives.
    assert_eq!(c.slurm.query(&[id]).await.unwrap()[&id], *s);
}
