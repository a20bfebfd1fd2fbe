//! `seqshield worker run MANIFEST`: the step an executor starts for one
//! task. It
//! 1. verifies the manifest's signature against the gateway's published
//!    keys (over the pinned TLS connection), its expiry, and that its spec
//!    is the one signed;
//! 2. exchanges the manifest (RFC 8693) for a token bound to this task's
//!    objects, authenticating as the workers' OAuth client;
//! 3. stages inputs into a private tmpfs (its own mount namespace), each
//!    checked against the Merkle root recorded at submission;
//! 4. runs each executor in the sandbox, the scratch directories mounted at
//!    their paths;
//! 5. stores outputs, encrypted per their classification;
//! 6. overwrites and removes everything it staged;
//! 7. reports each state, with filtered log tails, to the gateway.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seqshield_gpu::timing::PaddingPolicy;
use seqshield_jobs::images::{ImageKind, ImagePolicy};
use seqshield_jobs::logs;
use seqshield_jobs::manifest::{ManifestFile, Padding, Rounding, Spec, TOKEN_TYPE_TASK_MANIFEST, WORKER_AUDIENCE};
use seqshield_jobs::tes::{ExecutorLog, OutputFileLog, TesState};
use seqshield_sandbox::{Mount, Profile, Sandbox, Stdio};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::client::{self, Client, GatewayArgs, TokenSource};
use crate::Ctx;

/// Worker commands.
#[derive(Subcommand, Debug)]
pub enum WorkerCommand {
    /// Run one task from its signed manifest (what executors start).
    Run(RunArgs),
}

/// `worker run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The manifest file the gateway wrote.
    pub manifest: PathBuf,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The workers' OAuth client.
    #[arg(long, default_value = "seqshield-worker", value_name = "ID")]
    pub client_id: String,
    /// File holding the workers' client secret.
    #[arg(long, env = "SEQSHIELD_WORKER_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: PathBuf,
    /// Where the private scratch tmpfs is mounted (a directory per task).
    #[arg(long, default_value = "/run/seqshield/scratch", value_name = "DIR")]
    pub scratch_root: PathBuf,
    /// Approved images (must match the gateway's; default: the embedded policy).
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
}

/// Runs `worker`.
pub fn run(ctx: &Ctx, c: WorkerCommand) -> Result<()> {
    match c {
        WorkerCommand::Run(a) => run_task(ctx, a),
    }
}

/// `O_NOFOLLOW`: outputs and staged files are never reached through a link.
const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// Default scratch size when the task gives no `disk_gb`: 4 GiB.
const DEFAULT_SCRATCH_BYTES: u64 = 4 << 30;

fn run_task(ctx: &Ctx, a: RunArgs) -> Result<()> {
    let bytes = std::fs::read(&a.manifest).with_context(|| format!("cannot read {}", a.manifest.display()))?;
    let file = ManifestFile::parse(&bytes)?;
    // The spec is only trusted once the signature is checked (below); the
    // task id and size here only name and size the scratch directory.
    let unverified: Spec = serde_json::from_str(&file.spec).context("the manifest's spec is malformed")?;
    if !seqshield_jobs::service::is_task_id(&unverified.task) {
        bail!("the manifest's task id is malformed");
    }
    let scratch = a.scratch_root.join(&unverified.task);
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let size = if unverified.scratch_mb > 0 { unverified.scratch_mb << 20 } else { DEFAULT_SCRATCH_BYTES };
    // Before any thread exists: a mount namespace of our own and a tmpfs.
    let private = match seqshield_sandbox::private_tmpfs(&scratch, size) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "seqshield worker: WARNING: no private tmpfs ({e}); staging in {} with mode 0700 instead (run workers as root for a private tmpfs)",
                scratch.display()
            );
            false
        }
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o700))?;
    let result = client::block_on(async { work(ctx, &a, &file, &scratch, private).await });
    // Normally done before the last report; again here for early failures.
    let wiped = clear_scratch(&scratch, private);
    result.and(wiped.map(|_| ()))
}

/// Overwrites and removes what was staged, unmounts the private tmpfs and
/// removes its directory; returns how many files were overwritten.
fn clear_scratch(scratch: &Path, private: bool) -> Result<usize> {
    if !scratch.exists() {
        return Ok(0);
    }
    let n = wipe(scratch).context("the scratch space could not be wiped")?;
    if private {
        seqshield_sandbox::unmount(scratch).with_context(|| format!("cannot unmount {}", scratch.display()))?;
    }
    std::fs::remove_dir(scratch).with_context(|| format!("cannot remove {}", scratch.display()))?;
    Ok(n)
}

/// Overwrites every regular file under `dir` with zeros and removes it.
fn wipe(dir: &Path) -> Result<usize> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    for e in entries {
        let e = e?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            n += wipe(&p)?;
            std::fs::remove_dir(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        } else {
            if t.is_file() {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(NOFOLLOW)
                    .open(&p)
                    .with_context(|| format!("cannot overwrite {}", p.display()))?;
                let len = f.metadata()?.len();
                let zeros = vec![0u8; 1 << 20];
                let mut left = len;
                while left > 0 {
                    let k = left.min(zeros.len() as u64) as usize;
                    f.write_all(&zeros[..k])?;
                    left -= k as u64;
                }
                f.sync_all()?;
                n += 1;
            }
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(n)
}

struct Reporter<'a> {
    client: &'a Client,
    task: &'a str,
}

impl Reporter<'_> {
    /// Sends a report. A gateway that cannot be reached (restarting) is
    /// retried for [`REPORT_RETRY`]; a refusal (the task was cancelled)
    /// is not.
    async fn send(
        &self,
        state: TesState,
        logs: &[ExecutorLog],
        outputs: &[OutputFileLog],
        system: &[String],
    ) -> Result<()> {
        let body = json!({"state": state, "logs": logs, "outputs": outputs, "system_logs": system});
        let path = format!("/api/v1/jobs/{}/report", self.task);
        let deadline = std::time::Instant::now() + REPORT_RETRY;
        let mut pause = std::time::Duration::from_millis(250);
        loop {
            let r: Result<Value> = self.client.post_json(&path, &body).await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if unreachable(&e) && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(e.context(format!("cannot report {} to the gateway", state.as_str()))),
            }
        }
    }
}

/// How long a worker keeps trying to reach a gateway that went away.
const REPORT_RETRY: std::time::Duration = std::time::Duration::from_secs(180);

/// Whether `e` is a transport failure (no answer), not a refusal.
fn unreachable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::exit::Remote>()
        .is_some_and(|r| r.status.is_none() && matches!(r.code.as_str(), "connect" | "timeout" | "transport"))
}

async fn work(ctx: &Ctx, a: &RunArgs, file: &ManifestFile, scratch: &Path, private: bool) -> Result<()> {
    let anon = a.gateway.connect_anonymous()?;
    let disco: Value = anon.get_json("/.well-known/openid-configuration").await?;
    let issuer = disco["issuer"].as_str().context("the gateway's discovery document has no issuer")?;
    let jwks = anon
        .send(anon.http().get(anon.url("/jwks")?))
        .await?
        .bytes()
        .await
        .context("cannot read the gateway's keys")?;
    let keys = seqshield_auth::jwt::KeySet::from_jwks(&jwks).context("the gateway's keys are malformed")?;
    let (claims, spec) = file.verify(&keys, issuer, client::now()).context("the manifest was refused")?;
    if !ctx.quiet {
        eprintln!(
            "seqshield worker: manifest for {} verified (signed by {issuer}, expires {})",
            spec.task,
            client::rfc3339(claims.exp)
        );
    }

    // RFC 8693: the manifest for a token bound to this task's objects.
    let secret = crate::io::read_secret_file(&a.client_secret_file)?;
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", file.jws.as_str()),
        ("subject_token_type", TOKEN_TYPE_TASK_MANIFEST),
        ("audience", WORKER_AUDIENCE),
        ("scope", "data:read data:write jobs:report"),
    ];
    let resp = anon
        .send(
            anon.http()
                .post(anon.url("/token")?)
                .basic_auth(&a.client_id, Some(secret.as_str()))
                .form(&form)
                .timeout(client::JSON_TIMEOUT),
        )
        .await
        .context("the token exchange was refused")?;
    let tok: Value = resp.json().await.context("malformed token response")?;
    let access =
        Zeroizing::new(tok["access_token"].as_str().context("no access_token in the exchange answer")?.to_owned());
    let client = anon.with_bearer(&access, TokenSource::Env)?;
    let rep = Reporter { client: &client, task: &spec.task };
    let mut system = vec![format!(
        "worker on {} with a token for task {} only; scratch is {}",
        hostname(),
        spec.task,
        if private { "a private tmpfs" } else { "a 0700 directory (no private tmpfs)" }
    )];
    // The runtime an observer sees starts here (the first report).
    let started = std::time::Instant::now();
    rep.send(TesState::Initializing, &[], &[], &system).await?;
    system.clear();
    let outcome = execute(ctx, a, &client, &rep, &spec, scratch).await;
    // Wiped before the last report: a finished task has left nothing.
    let outcome = match (outcome, clear_scratch(scratch, private)) {
        (Ok(done), Ok(n)) => {
            system.push(format!("{n} staged files overwritten and removed; scratch unmounted"));
            Ok(done)
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    };
    if let Some(padding) = spec.pad_completion {
        pad_completion(started, padding).await;
        system.push(format!(
            "completion time padded to a {} bucket of {} s ([jobs.timing]); executor times withheld",
            rounding_name(padding.rounding),
            padding.base_secs
        ));
    }
    match outcome {
        Ok((state, logs, outputs)) => rep.send(state, &logs, &outputs, &system).await,
        Err(e) => {
            let msg = format!("the worker failed: {e:#}");
            let _ = rep.send(TesState::SystemError, &[], &[], &[msg.chars().take(2000).collect()]).await;
            Err(e)
        }
    }
}

/// Waits until the time since `started` reaches its padding bucket
/// (`seqshield_gpu::timing`), whatever the outcome, so success and failure
/// end on bucket bounds alike.
async fn pad_completion(started: std::time::Instant, padding: Padding) {
    let base = std::time::Duration::from_secs(padding.base_secs.max(1));
    let policy = match padding.rounding {
        Rounding::Multiple => PaddingPolicy::Multiple { base },
        Rounding::PowerOfTwo => PaddingPolicy::PowerOfTwo { base },
    };
    tokio::time::sleep(seqshield_gpu::timing::remaining(started.elapsed(), &policy)).await;
}

fn rounding_name(r: Rounding) -> &'static str {
    match r {
        Rounding::Multiple => "multiple",
        Rounding::PowerOfTwo => "power_of_two",
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "?".into())
}

/// The host path of a container path under the scratch directory.
fn host_path(scratch: &Path, container: &str) -> PathBuf {
    scratch.join(container.trim_start_matches('/'))
}

async fn execute(
    ctx: &Ctx,
    a: &RunArgs,
    client: &Client,
    rep: &Reporter<'_>,
    spec: &Spec,
    scratch: &Path,
) -> Result<(TesState, Vec<ExecutorLog>, Vec<OutputFileLog>)> {
    let images = match &a.images {
        Some(p) => ImagePolicy::load(p)?,
        None => ImagePolicy::embedded(),
    };
    // Every top directory the executors see is a scratch subdirectory.
    let mut tops = spec.top_dirs();
    if tops.is_empty() {
        tops.push("work".into());
    }
    for t in &tops {
        std::fs::create_dir_all(scratch.join(t))?;
    }
    for v in &spec.volumes {
        std::fs::create_dir_all(host_path(scratch, v))?;
    }
    for o in &spec.outputs {
        if let Some(parent) = host_path(scratch, &o.path).parent() {
            std::fs::create_dir_all(parent)?;
        }
    }
    // Inputs, each checked against the root recorded at submission.
    for i in &spec.inputs {
        let dest = host_path(scratch, &i.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match (&i.content, &i.object) {
            (Some(c), _) => std::fs::write(&dest, c.as_bytes())?,
            (None, Some(id)) => {
                let (_, root) = super::store::fetch(&Ctx { quiet: true, ..*ctx }, client, id, &dest, 4).await?;
                if i.merkle_root.as_deref().is_some_and(|r| r != root) {
                    bail!("input {id} changed since the task was submitted (Merkle root {root})");
                }
            }
            (None, None) => bail!("input {} has neither content nor object", i.path),
        }
    }
    // The sandbox's idmapped mounts show the scratch tree, owned by us, as
    // the step's own; what the step writes is ours again outside.
    let mut literal = logs::KnownLines::default();
    for i in &spec.inputs {
        match &i.content {
            Some(c) => literal.add_text(c),
            None => literal.add_file(&host_path(scratch, &i.path))?,
        }
    }
    let private = scratch.join(".seqshield");
    std::fs::create_dir_all(&private)?;
    // A padded task sends no progress: each report's time would show how
    // long staging or an executor took.
    let progress = spec.pad_completion.is_none();
    if progress {
        rep.send(TesState::Running, &[], &[], &[]).await?;
    }
    let mut exec_logs = Vec::new();
    let mut state = TesState::Complete;
    for (n, e) in spec.executors.iter().enumerate() {
        let image = images.check(&e.image, &e.command[0])?;
        let program = image.resolve(&e.command[0])?;
        let mut profile = Profile::load(&image.profile)?;
        let mut mounts: Vec<Mount> = tops
            .iter()
            .map(|t| Mount { src: scratch.join(t), dst: PathBuf::from(format!("/{t}")), writable: true })
            .collect();
        if image.kind == ImageKind::Rootfs {
            let root = image.root();
            profile.filesystem.ro.clear();
            for entry in std::fs::read_dir(root)
                .with_context(|| format!("image {}: cannot read {}", image.name, root.display()))?
            {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if ["usr", "bin", "sbin", "lib", "lib64", "etc", "opt"].contains(&name.as_str()) {
                    mounts.push(Mount { src: entry.path(), dst: PathBuf::from(format!("/{name}")), writable: false });
                }
            }
        }
        let mut sb = Sandbox::new(profile);
        sb.mounts = mounts;
        sb.cwd = Some(PathBuf::from(e.workdir.clone().unwrap_or_else(|| format!("/{}", tops[0]))));
        sb.env = e.env.clone().unwrap_or_default().into_iter().collect();
        let out_path = match &e.stdout {
            Some(p) => host_path(scratch, p),
            None => private.join(format!("{n}.out")),
        };
        let err_path = match &e.stderr {
            Some(p) => host_path(scratch, p),
            None => private.join(format!("{n}.err")),
        };
        let create = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .custom_flags(NOFOLLOW)
                .mode(0o600)
                .open(p)
        };
        let stdout = create(&out_path).with_context(|| format!("executor {n}: cannot create its stdout"))?;
        let stderr = create(&err_path).with_context(|| format!("executor {n}: cannot create its stderr"))?;
        let stdin = match &e.stdin {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(NOFOLLOW)
                    .open(host_path(scratch, p))
                    .with_context(|| format!("executor {n}: cannot open its stdin {p}"))?,
            ),
            None => None,
        };
        let mut argv: Vec<OsString> = e.command.iter().map(OsString::from).collect();
        argv[0] = program.into_os_string();
        let start = client::rfc3339(client::now());
        let stdio = Stdio { stdin: stdin.map(Into::into), stdout: Some(stdout.into()), stderr: Some(stderr.into()) };
        let report = tokio::task::spawn_blocking(move || sb.run(&argv, stdio)).await??;
        let code = report.status.code.unwrap_or_else(|| 128 + report.status.signal.unwrap_or(0));
        let (start_time, end_time) =
            if progress { (Some(start), Some(client::rfc3339(client::now()))) } else { (None, None) };
        let mut log = ExecutorLog {
            start_time,
            end_time,
            stdout: Some(logs::filter(&tail(&out_path)?, &literal)),
            stderr: Some(logs::filter(&tail(&err_path)?, &literal)),
            exit_code: code,
        };
        if report.blocked_total > 0 {
            let blocked: Vec<String> = report.blocked.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            log.stderr
                .get_or_insert_with(String::new)
                .push_str(&format!("[seqshield sandbox: blocked {}]\n", blocked.join(", ")));
        }
        exec_logs.push(log);
        if progress {
            rep.send(TesState::Running, &exec_logs, &[], &[]).await?;
        }
        if code != 0 && e.ignore_error != Some(true) {
            state = TesState::ExecutorError;
            break;
        }
    }
    let mut outputs = Vec::new();
    if state == TesState::Complete {
        let root = std::fs::canonicalize(scratch)?;
        for o in &spec.outputs {
            let p = host_path(scratch, &o.path);
            let real = std::fs::canonicalize(&p).with_context(|| format!("output {} was not written", o.path))?;
            if !real.starts_with(&root) {
                bail!("output {} leads outside the task's scratch space; refused", o.path);
            }
            let meta = std::fs::symlink_metadata(&real)?;
            if !meta.is_file() {
                bail!("output {} is not a regular file", o.path);
            }
            let info = super::store::put_file(
                &Ctx { quiet: true, ..*ctx },
                client,
                &real,
                &o.name,
                &o.dataset,
                o.classification.as_str(),
            )
            .await
            .with_context(|| format!("cannot store output {}", o.path))?;
            outputs.push(OutputFileLog {
                url: format!("seqshield://{}", info["id"].as_str().unwrap_or_default()),
                path: o.path.clone(),
                size_bytes: info["size"].to_string(),
            });
        }
    }
    Ok((state, exec_logs, outputs))
}

/// The last bytes of a capture file (what [`logs::filter`] keeps and a
/// little more, so it can see the cut).
fn tail(p: &Path) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(p)?;
    let len = f.metadata()?.len();
    let keep = (logs::LOG_TAIL_BYTES as u64 + 1).min(len);
    f.seek(SeekFrom::Start(len - keep))?;
    let mut buf = Vec::with_capacity(keep as usize);
    f.read_to_end(&mut buf)?;
    if len > keep {
        // Tell the filter the capture was longer than what it sees.
        let mut padded = vec![b'\n'; (len - keep).min(1) as usize];
        padded.extend(buf);
        return Ok(padded);
    }
    Ok(buf)
}
