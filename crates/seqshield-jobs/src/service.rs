//! The job service: accepts TES tasks, checks them against the image and
//! placement policies and the store, records them, and hands them to the
//! executor with a signed manifest; keeps their state from the workers'
//! reports and the scheduler; cancels them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use seqshield_auth::audit::{AuditEvent, AuditSink, Outcome};
use seqshield_auth::jwt::TaskBinding;
use seqshield_auth::service::{AuthService, TaskGate};
use seqshield_auth::{Clearance, ScopeSet};
use seqshield_format::Classification;
use seqshield_store::store::{Principal, Store};
use seqshield_store::{names, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::db::{Db, Op, Row};
use crate::executor::{Executor, ExecutorConfig, Launch};
use crate::images::ImagePolicy;
use crate::manifest::{self, Claims, ManifestFile, Spec, SpecInput, SpecOutput, WORKER_AUDIENCE};
use crate::placement::{ClusterLoad, Partition, Placement, PlacementPolicy, PlacementRequest};
use crate::tes::{self, ExecutorLog, OutputFileLog, Task, TaskLog, TesState, View};

/// Scope to submit and cancel tasks.
pub const SCOPE_SUBMIT: &str = "jobs:submit";
/// Scope to read tasks.
pub const SCOPE_READ: &str = "jobs:read";
/// Scope to see and cancel everyone's tasks.
pub const SCOPE_ADMIN: &str = "jobs:admin";
/// Scope of a worker's token to report on its task.
pub const SCOPE_REPORT: &str = "jobs:report";
/// Default page size of ListTasks (TES: 256).
pub const DEFAULT_PAGE_SIZE: usize = 256;
/// Largest page size (TES: less than 2048).
pub const MAX_PAGE_SIZE: usize = 2047;
/// Metadata keys seqshield sets in `logs[0].metadata`.
pub const META_PARTITION: &str = "seqshield.partition";
/// The placement reasons, joined by `; `.
pub const META_REASONS: &str = "seqshield.placement_reasons";
/// The estimated on-prem queue wait at submission, seconds.
pub const META_WAIT: &str = "seqshield.estimated_wait_secs";
/// The executor's reference (`local:PID`, `slurm:JOBID`).
pub const META_EXECUTOR: &str = "seqshield.executor";
/// The highest classification the task touches.
pub const META_CLASSIFICATION: &str = "seqshield.classification";

/// The `[jobs]` table of the gateway configuration.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Refuse (400, naming it) a task member TES 1.1 does not define.
    pub strict: bool,
    /// Approved images and their commands; none: the embedded
    /// `policy/images.toml`.
    pub images: Option<PathBuf>,
    /// Placement policy (on-prem or cloud by classification, queue wait,
    /// budget); none: the embedded `policy/placement.toml`.
    pub placement: Option<PathBuf>,
    /// How long a signed manifest stays usable, in seconds (the worker must
    /// start before then).
    pub manifest_ttl_secs: u64,
    /// Where workers run (`[jobs.executor]`).
    pub executor: ExecutorConfig,
    /// Most tasks queued or running at once (more are refused with 503).
    pub max_active: usize,
    /// `[jobs.timing]`: completion-time padding for classified tasks.
    pub timing: TimingConfig,
}

/// `[jobs.timing]`: pad the completion time of tasks whose data is at or
/// above a classification, so their runtime leaks less about their input.
/// Off by default: every padded task holds its slot up to one bucket longer
/// (up to twice its runtime with `power_of_two`). See `docs/gpu.md` for
/// what it hides and what it does not.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// Pad tasks whose classification is at least this (`public`,
    /// `internal`, `restricted`, `controlled`); absent: never pad.
    #[schemars(with = "Option<String>")]
    pub pad_from: Option<Classification>,
    /// `power_of_two` or `multiple`.
    pub rounding: crate::manifest::Rounding,
    /// Smallest bucket (`power_of_two`) or bucket width (`multiple`),
    /// seconds (1 to 86400).
    pub base_secs: u64,
}

impl Default for TimingConfig {
    fn default() -> Self {
        Self { pad_from: None, rounding: crate::manifest::Rounding::PowerOfTwo, base_secs: 60 }
    }
}

impl TimingConfig {
    /// Checks `base_secs`.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.base_secs) {
            return Err(format!("jobs.timing.base_secs: {} is out of range 1..=86400", self.base_secs));
        }
        Ok(())
    }

    /// The padding a task of `class` gets, if any.
    pub fn padding_for(&self, class: Classification) -> Option<crate::manifest::Padding> {
        let from = self.pad_from?;
        (class >= from).then_some(crate::manifest::Padding { rounding: self.rounding, base_secs: self.base_secs })
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            strict: true,
            images: None,
            placement: None,
            manifest_ttl_secs: 3 * 24 * 3600,
            executor: ExecutorConfig::default(),
            max_active: 100_000,
            timing: TimingConfig::default(),
        }
    }
}

/// Who is calling, from their verified token.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Subject.
    pub subject: String,
    /// OAuth client.
    pub client: String,
    /// Scopes.
    pub scopes: ScopeSet,
    /// Clearance.
    pub clearance: Clearance,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// Authentication context.
    pub acr: String,
    /// Source address.
    pub source: Option<IpAddr>,
    /// A worker's task binding.
    pub task: Option<TaskBinding>,
}

impl Caller {
    fn principal(&self) -> Principal {
        Principal {
            subject: self.subject.clone(),
            client: self.client.clone(),
            scopes: self.scopes.iter().map(str::to_owned).collect(),
            clearance: self.clearance,
            source: self.source,
            task: self.task.clone(),
        }
    }

    fn has(&self, s: &str) -> bool {
        self.scopes.contains(s)
    }
}

/// A refusal or failure, with its TES-shaped answer.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The task does not pass the checks.
    #[error("{0}")]
    Invalid(#[from] tes::Invalid),
    /// Policy forbids it (image, command, placement, clearance).
    #[error("{0}")]
    Policy(String),
    /// The token lacks a scope.
    #[error("this needs the {0} scope")]
    Scope(&'static str),
    /// No such task (or not the caller's).
    #[error("no task {0}")]
    NotFound(String),
    /// A store refusal about an input or output.
    #[error("{what}: {err}")]
    Store {
        /// Which field.
        what: String,
        /// The store's error.
        err: StoreError,
    },
    /// The request conflicts with the task's state.
    #[error("{0}")]
    Conflict(String),
    /// Too many tasks.
    #[error("{0}")]
    Busy(String),
    /// Something failed inside.
    #[error("{0}")]
    Internal(String),
}

impl JobError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(i) if i.field == "body" && i.why.starts_with("larger") => 413,
            Self::Invalid(_) => 400,
            Self::Policy(_) | Self::Scope(_) => 403,
            Self::NotFound(_) => 404,
            Self::Store { err, .. } => err.status(),
            Self::Conflict(_) => 409,
            Self::Busy(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(i) if i.field == "body" && i.why.starts_with("larger") => "payload_too_large",
            Self::Invalid(_) => "invalid_task",
            Self::Policy(_) => "policy_refused",
            Self::Scope(_) => "insufficient_scope",
            Self::NotFound(_) => "not_found",
            Self::Store { err, .. } => err.code(),
            Self::Conflict(_) => "wrong_state",
            Self::Busy(_) => "busy",
            Self::Internal(_) => "server_error",
        }
    }
}

/// What the token exchange needs about the owner, kept with the task.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GrantRecord {
    scope: ScopeSet,
    clearance: Clearance,
    amr: Vec<String>,
    acr: String,
    client: String,
}

/// A worker's report.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The new state: INITIALIZING, RUNNING, COMPLETE, EXECUTOR_ERROR or
    /// SYSTEM_ERROR.
    pub state: TesState,
    /// Executor logs so far (replaces what was there).
    #[serde(default)]
    pub logs: Vec<ExecutorLog>,
    /// Outputs stored.
    #[serde(default)]
    pub outputs: Vec<OutputFileLog>,
    /// System messages to append.
    #[serde(default)]
    pub system_logs: Vec<String>,
}

/// The job service.
pub struct JobService {
    cfg: JobsConfig,
    db: Db,
    images: ImagePolicy,
    placement: PlacementPolicy,
    auth: Arc<AuthService>,
    store: Arc<Store>,
    audit: Arc<dyn AuditSink>,
    /// States of the tasks not yet terminal (the gate's fast path).
    active: RwLock<HashMap<String, TesState>>,
    queue: mpsc::UnboundedSender<String>,
    queue_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    executor: Executor,
    launch: Launch,
    load: tokio::sync::Mutex<Option<(Instant, ClusterLoad)>>,
    /// Cloud core-hours placed today: (UTC day, hours).
    cloud_spent: Mutex<(u64, f64)>,
    spool: PathBuf,
}

impl std::fmt::Debug for JobService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobService").field("executor", &self.executor.kind()).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    seqshield_audit::Timestamp::from_unix(secs).map_or_else(|_| secs.to_string(), |t| t.rfc3339())
}

fn new_task_id() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    format!("task_{}", hex::encode(b))
}

/// Whether `id` has the shape of a task id (`task_` + 32 hex).
pub fn is_task_id(id: &str) -> bool {
    id.len() == 37 && id.starts_with("task_") && id[5..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An input URL's object id: `seqshield://obj_…`, `drs://HOST/obj_…` or a
/// bare `obj_…`.
fn input_object(url: &str) -> Option<&str> {
    let id = if let Some(rest) = url.strip_prefix("seqshield://") {
        rest
    } else if let Some(rest) = url.strip_prefix("drs://") {
        rest.split_once('/')?.1
    } else {
        url
    };
    names::check_id(id).ok().map(|()| id)
}

/// An output URL's dataset and name: `seqshield://DATASET/NAME`.
fn output_target(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("seqshield://").ok_or("must be seqshield://DATASET/NAME")?;
    let (dataset, name) = rest.split_once('/').ok_or("must be seqshield://DATASET/NAME")?;
    names::check_dataset(dataset).map_err(|e| e.to_string())?;
    names::check_name(name).map_err(|e| e.to_string())?;
    Ok((dataset.to_owned(), name.to_owned()))
}

impl JobService {
    /// Opens the service's state in `data_dir/jobs` and its policies.
    pub fn open(
        cfg: JobsConfig,
        data_dir: &Path,
        auth: Arc<AuthService>,
        store: Arc<Store>,
        audit: Arc<dyn AuditSink>,
        launch: Launch,
    ) -> Result<Arc<Self>, String> {
        cfg.timing.validate()?;
        let spool = data_dir.join("jobs");
        std::fs::create_dir_all(spool.join("manifests")).map_err(|e| format!("{}: {e}", spool.display()))?;
        restrict(&spool)?;
        restrict(&spool.join("manifests"))?;
        let images = match &cfg.images {
            Some(p) => ImagePolicy::load(p).map_err(|e| e.to_string())?,
            None => ImagePolicy::embedded(),
        };
        let placement = match &cfg.placement {
            Some(p) => PlacementPolicy::load(p).map_err(|e| e.to_string())?,
            None => PlacementPolicy::embedded(),
        };
        let db = Db::open(&spool.join("tasks.db"))?;
        let executor = Executor::new(&cfg.executor, &spool)?;
        let (queue, rx) = mpsc::unbounded_channel();
        let svc = Arc::new(Self {
            cfg,
            db,
            images,
            placement,
            auth: auth.clone(),
            store,
            audit,
            active: RwLock::new(HashMap::new()),
            queue,
            queue_rx: Mutex::new(Some(rx)),
            executor,
            launch,
            load: tokio::sync::Mutex::new(None),
            cloud_spent: Mutex::new((0, 0.0)),
            spool,
        });
        for r in svc.db.active()? {
            svc.active.write().unwrap_or_else(|p| p.into_inner()).insert(r.id.clone(), r.state);
        }
        auth.set_task_gate(Arc::new(Gate(Arc::downgrade(&svc))));
        Ok(svc)
    }

    /// Starts the dispatcher and the state poller (call once, inside the
    /// runtime). Tasks found queued and never started are dispatched;
    /// tasks the executor had are reconciled with what it reports.
    pub fn start(self: &Arc<Self>) {
        let rx = self.queue_rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut rx) = rx else { return };
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                if let Err(e) = me.dispatch(&id).await {
                    tracing::error!(task = %id, error = %e, "dispatch failed");
                    let _ = me.finish(&id, TesState::SystemError, &format!("the task could not be started: {e}")).await;
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.reconcile().await {
                tracing::error!(error = %e, "reconciliation with the executor failed");
            }
            let mut tick = tokio::time::interval(Duration::from_secs(me.cfg.executor.poll_secs.max(1)));
            loop {
                tick.tick().await;
                if let Err(e) = me.poll().await {
                    tracing::warn!(error = %e, "polling the executor failed");
                }
            }
        });
    }

    /// The executor kind (`local` or `slurm`).
    pub fn executor_kind(&self) -> &'static str {
        self.executor.kind()
    }

    fn audit_event(&self, c: &Caller, kind: &'static str, outcome: Outcome, reason: impl Into<String>) -> AuditEvent {
        AuditEvent::new(now(), kind, outcome, reason)
            .subject(c.subject.clone())
            .client(c.client.clone())
            .source(c.source)
    }

    async fn record(&self, ev: AuditEvent) -> Result<(), JobError> {
        let sink = self.audit.clone();
        tokio::task::spawn_blocking(move || sink.record(&ev))
            .await
            .map_err(|e| JobError::Internal(e.to_string()))?
            .map_err(|e| JobError::Internal(format!("the audit log refused the event; nothing was done: {e}")))
    }

    async fn deny<T>(&self, c: &Caller, kind: &'static str, task: Option<&str>, e: JobError) -> Result<T, JobError> {
        let mut ev = self.audit_event(c, kind, Outcome::Deny, e.to_string()).with("error", e.code());
        if let Some(t) = task {
            ev = ev.with("task", t.to_owned());
        }
        self.record(ev).await?;
        Err(e)
    }

    fn need(c: &Caller, scope: &'static str) -> Result<(), JobError> {
        if c.task.is_some() && scope != SCOPE_REPORT {
            return Err(JobError::Policy("a worker's token cannot manage tasks".into()));
        }
        if c.has(scope) {
            Ok(())
        } else {
            Err(JobError::Scope(scope))
        }
    }

    async fn cluster_load(&self) -> Result<ClusterLoad, JobError> {
        let mut cache = self.load.lock().await;
        if let Some((at, l)) = cache.as_ref() {
            if at.elapsed() < Duration::from_secs(1) {
                return Ok(l.clone());
            }
        }
        let running = self.active.read().unwrap_or_else(|p| p.into_inner()).len();
        let l = self
            .executor
            .load(running, self.cloud_core_hours_today())
            .await
            .map_err(|e| JobError::Internal(format!("cannot read the cluster's load: {e}")))?;
        *cache = Some((Instant::now(), l.clone()));
        Ok(l)
    }

    fn cloud_core_hours_today(&self) -> f64 {
        let day = now() / 86_400;
        let spent = self.cloud_spent.lock().unwrap_or_else(|p| p.into_inner());
        if spent.0 == day {
            spent.1
        } else {
            0.0
        }
    }

    fn spend_cloud(&self, core_hours: f64) {
        let day = now() / 86_400;
        let mut spent = self.cloud_spent.lock().unwrap_or_else(|p| p.into_inner());
        if spent.0 != day {
            *spent = (day, 0.0);
        }
        spent.1 += core_hours;
    }

    // ---- create ----------------------------------------------------------

    /// CreateTask: checks, places, records and queues a task; returns its id.
    pub async fn create(&self, c: &Caller, body: &[u8]) -> Result<String, JobError> {
        const KIND: &str = "jobs.task.create";
        let prepared = self.prepare(c, body).await;
        let (row, placement) = match prepared {
            Ok(v) => v,
            Err(e) => return self.deny(c, KIND, None, e).await,
        };
        let full = self.active.read().unwrap_or_else(|p| p.into_inner()).len() >= self.cfg.max_active;
        if full {
            let e = JobError::Busy(format!("{} tasks are queued or running; try again later", self.cfg.max_active));
            return self.deny(c, KIND, None, e).await;
        }
        let id = row.id.clone();
        let inputs: Vec<String> = serde_json::from_str::<Spec>(&row.spec)
            .map(|s| s.inputs.into_iter().filter_map(|i| i.object).collect())
            .unwrap_or_default();
        let event = self
            .audit_event(c, KIND, Outcome::Allow, "task accepted and placed; its inputs may be read by the caller")
            .with("task", id.clone())
            .with("inputs", inputs.join(" "))
            .with("partition", placement.partition.to_string())
            .with("reasons", placement.reasons.join("; "));
        // Audited first: a task is never recorded (and so never run)
        // without its event on disk.
        self.record(event).await?;
        self.db.write(Op::Insert(Box::new(row))).await.map_err(JobError::Internal)?;
        self.active.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), TesState::Queued);
        let _ = self.queue.send(id.clone());
        Ok(id)
    }

    async fn prepare(&self, c: &Caller, body: &[u8]) -> Result<(Row, Placement), JobError> {
        Self::need(c, SCOPE_SUBMIT)?;
        let mut task = tes::parse_task(body, self.cfg.strict)?;
        task.check()?;
        for (i, e) in task.executors.iter().enumerate() {
            self.images
                .check(&e.image, &e.command[0])
                .map_err(|err| JobError::Policy(format!("executors[{i}]: {err}")))?;
        }
        let p = c.principal();
        let inputs = task.inputs.clone().unwrap_or_default();
        let outputs = task.outputs.clone().unwrap_or_default();
        let mut class = Classification::Public;
        let mut spec_inputs = Vec::with_capacity(inputs.len());
        if inputs.iter().any(|i| i.content.is_none()) && !c.has(seqshield_store::store::SCOPE_READ) {
            return Err(JobError::Scope(seqshield_store::store::SCOPE_READ));
        }
        for (i, input) in inputs.iter().enumerate() {
            if let Some(content) = &input.content {
                spec_inputs.push(SpecInput {
                    path: input.path.clone(),
                    object: None,
                    merkle_root: None,
                    size: content.len() as u64,
                    content: Some(content.clone()),
                });
                continue;
            }
            let url = input.url.as_deref().unwrap_or_default();
            let id = input_object(url).ok_or_else(|| {
                JobError::Invalid(tes::Invalid {
                    field: format!("inputs[{i}].url"),
                    why: format!("{url:?} is not seqshield://obj_…, drs://HOST/obj_… or a DRS id obj_…"),
                })
            })?;
            let info = self
                .store
                .check_readable(&p, id)
                .await
                .map_err(|err| JobError::Store { what: format!("inputs[{i}] ({id})"), err })?;
            if info.state != "available" {
                return Err(JobError::Conflict(format!("inputs[{i}]: {id} is not available yet")));
            }
            class = class.max(info.classification);
            spec_inputs.push(SpecInput {
                path: input.path.clone(),
                object: Some(id.to_owned()),
                merkle_root: info.merkle_root.clone(),
                size: info.size,
                content: None,
            });
        }
        if let Some(asked) = task.tags.as_ref().and_then(|t| t.get(META_CLASSIFICATION)) {
            let asked: Classification = asked.parse().map_err(|_| {
                JobError::Invalid(tes::Invalid {
                    field: format!("tags.{META_CLASSIFICATION}"),
                    why: format!("{asked:?} is not public, internal, restricted or controlled"),
                })
            })?;
            class = class.max(asked);
        }
        if !outputs.is_empty() && !c.has(seqshield_store::store::SCOPE_WRITE) {
            return Err(JobError::Scope(seqshield_store::store::SCOPE_WRITE));
        }
        if class > c.clearance {
            return Err(JobError::Policy(format!("the task's outputs would be {class}, above the caller's clearance")));
        }
        let mut spec_outputs = Vec::with_capacity(outputs.len());
        let mut write = Vec::new();
        for (i, o) in outputs.iter().enumerate() {
            let (dataset, name) = output_target(&o.url).map_err(|why| {
                JobError::Invalid(tes::Invalid {
                    field: format!("outputs[{i}].url"),
                    why: format!("{:?} {why}", o.url),
                })
            })?;
            if write.contains(&name) {
                return Err(JobError::Invalid(tes::Invalid {
                    field: format!("outputs[{i}].url"),
                    why: format!("the name {name:?} is used twice"),
                }));
            }
            write.push(name.clone());
            spec_outputs.push(SpecOutput { path: o.path.clone(), name, dataset, classification: class });
        }
        // A worker's token is capped by policy; refuse now what it could
        // never read or write.
        let worker_max = self.auth.policy().audience(WORKER_AUDIENCE).map(|a| a.max_clearance);
        match worker_max {
            Some(max) if class <= max => {}
            Some(max) => {
                return Err(JobError::Policy(format!(
                "the task touches {class} data, and policy caps compute workers at {max} (audience {WORKER_AUDIENCE})"
            )))
            }
            None => return Err(JobError::Policy(format!("policy has no {WORKER_AUDIENCE} audience: no task can run"))),
        }
        let resources = task.resources.clone().unwrap_or_default();
        let params = resources.backend_parameters.clone().unwrap_or_default();
        let cores = u32::try_from(resources.cpu_cores.unwrap_or(1)).unwrap_or(u32::MAX);
        let runtime_secs = match params.get(tes::PARAM_RUNTIME) {
            Some(v) => v.parse::<u64>().ok().filter(|s| (1..=30 * 86_400).contains(s)).ok_or_else(|| {
                JobError::Invalid(tes::Invalid {
                    field: format!("resources.backend_parameters.{}", tes::PARAM_RUNTIME),
                    why: "must be whole seconds between 1 and 2592000".into(),
                })
            })?,
            None => self.placement.default_runtime_secs(),
        };
        let override_partition = match params.get(tes::PARAM_PARTITION).map(String::as_str) {
            None => None,
            Some("onprem") => Some(Partition::Onprem),
            Some("cloud") => Some(Partition::Cloud),
            Some(other) => {
                return Err(JobError::Invalid(tes::Invalid {
                    field: format!("resources.backend_parameters.{}", tes::PARAM_PARTITION),
                    why: format!("{other:?} is neither onprem nor cloud"),
                }))
            }
        };
        let load = self.cluster_load().await?;
        let req = PlacementRequest { classification: class, cores, runtime_secs, override_partition };
        let placement = self.placement.decide(&req, &load).map_err(|e| JobError::Policy(e.to_string()))?;
        if placement.cloud_core_hours > 0.0 {
            self.spend_cloud(placement.cloud_core_hours);
            self.load.lock().await.take();
        }

        let id = new_task_id();
        let created = now();
        task.id = Some(id.clone());
        task.state = Some(TesState::Queued);
        task.creation_time = Some(rfc3339(created));
        let mut meta = BTreeMap::new();
        meta.insert(META_PARTITION.to_owned(), placement.partition.to_string());
        meta.insert(META_REASONS.to_owned(), placement.reasons.join("; "));
        if let Some(w) = placement.estimated_wait_secs {
            meta.insert(META_WAIT.to_owned(), w.to_string());
        }
        meta.insert(META_CLASSIFICATION.to_owned(), class.to_string());
        task.logs = Some(vec![TaskLog { metadata: meta, ..TaskLog::default() }]);
        let ram_mb = resources.ram_gb.map_or(0, |g| (g * 1024.0).ceil() as u64);
        let scratch_mb = resources.disk_gb.map_or(0, |g| (g * 1024.0).ceil() as u64);
        let spec = Spec {
            task: id.clone(),
            executors: task.executors.clone(),
            inputs: spec_inputs,
            outputs: spec_outputs,
            volumes: task.volumes.clone().unwrap_or_default(),
            cpu_cores: cores,
            runtime_secs,
            ram_mb,
            scratch_mb,
            pad_completion: self.cfg.timing.padding_for(class),
        };
        let mut scopes = vec![SCOPE_REPORT];
        scopes.extend(
            [seqshield_store::store::SCOPE_READ, seqshield_store::store::SCOPE_WRITE].into_iter().filter(|s| c.has(s)),
        );
        let grant = GrantRecord {
            scope: ScopeSet::try_from_iter(scopes).map_err(|e| JobError::Internal(e.to_string()))?,
            clearance: class,
            amr: c.amr.clone(),
            acr: c.acr.clone(),
            client: c.client.clone(),
        };
        let row = Row {
            seq: 0,
            id: id.clone(),
            owner: c.subject.clone(),
            name: task.name.clone().unwrap_or_default(),
            state: TesState::Queued,
            created: i64::try_from(created).unwrap_or(i64::MAX),
            doc: serde_json::to_string(&task).map_err(|e| JobError::Internal(e.to_string()))?,
            spec: serde_json::to_string(&spec).map_err(|e| JobError::Internal(e.to_string()))?,
            grant: serde_json::to_string(&grant).map_err(|e| JobError::Internal(e.to_string()))?,
            partition: placement.partition.to_string(),
            executor: None,
        };
        Ok((row, placement))
    }

    // ---- read ------------------------------------------------------------

    fn visible(&self, c: &Caller, row: &Row) -> bool {
        row.owner == c.subject || c.has(SCOPE_ADMIN)
    }

    /// GetTask.
    pub async fn get(&self, c: &Caller, id: &str, view: View) -> Result<Task, JobError> {
        const KIND: &str = "jobs.task.read";
        let r = async {
            Self::need(c, SCOPE_READ)?;
            let row = self.load_visible(c, id)?;
            let task: Task = serde_json::from_str(&row.doc).map_err(|e| JobError::Internal(e.to_string()))?;
            Ok(task.view(view))
        }
        .await;
        match r {
            Ok(t) => Ok(t),
            Err(e) => self.deny(c, KIND, Some(id), e).await,
        }
    }

    fn load_visible(&self, c: &Caller, id: &str) -> Result<Row, JobError> {
        if !is_task_id(id) {
            return Err(JobError::NotFound(id.chars().take(64).collect()));
        }
        match self.db.get(id).map_err(JobError::Internal)? {
            Some(r) if self.visible(c, &r) => Ok(r),
            // Someone else's task is reported as absent: ids are not probed.
            _ => Err(JobError::NotFound(id.to_owned())),
        }
    }

    /// ListTasks: newest first; filters by name prefix, state and tags.
    #[allow(clippy::too_many_arguments)]
    pub async fn list(
        &self,
        c: &Caller,
        name_prefix: Option<&str>,
        state: Option<TesState>,
        tags: &[(String, String)],
        page_size: Option<usize>,
        page_token: Option<&str>,
        view: View,
    ) -> Result<(Vec<Task>, Option<String>), JobError> {
        const KIND: &str = "jobs.task.list";
        if let Err(e) = Self::need(c, SCOPE_READ) {
            return self.deny(c, KIND, None, e).await;
        }
        let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
        let mut before = match page_token {
            None | Some("") => None,
            Some(t) => Some(t.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                JobError::Invalid(tes::Invalid {
                    field: "page_token".into(),
                    why: "not a token this server issued".into(),
                })
            })?),
        };
        let owner = if c.has(SCOPE_ADMIN) { None } else { Some(c.subject.as_str()) };
        let mut out = Vec::new();
        let mut next = None;
        'scan: loop {
            let rows = self.db.page(owner, before, size.max(64)).map_err(JobError::Internal)?;
            let Some(last) = rows.last() else { break };
            before = Some(last.seq);
            for r in rows {
                if name_prefix.is_some_and(|p| !r.name.starts_with(p)) || state.is_some_and(|s| r.state != s) {
                    continue;
                }
                let task: Task = serde_json::from_str(&r.doc).map_err(|e| JobError::Internal(e.to_string()))?;
                if !tags.is_empty() {
                    let t = task.tags.clone().unwrap_or_default();
                    if !tags.iter().all(|(k, v)| t.get(k).is_some_and(|tv| v.is_empty() || tv == v)) {
                        continue;
                    }
                }
                out.push(task.view(view));
                if out.len() == size {
                    next = Some(r.seq.to_string());
                    break 'scan;
                }
            }
        }
        self.record(
            self.audit_event(c, KIND, Outcome::Allow, "tasks listed")
                .with("count", i64::try_from(out.len()).unwrap_or(0)),
        )
        .await?;
        Ok((out, next))
    }

    // ---- cancel ----------------------------------------------------------

    /// CancelTask: CANCELING at once, CANCELED once the executor confirms.
    /// Cancelling a finished task is a no-op (as TES allows).
    pub async fn cancel(&self, c: &Caller, id: &str) -> Result<(), JobError> {
        const KIND: &str = "jobs.task.cancel";
        let row = match async {
            Self::need(c, SCOPE_SUBMIT)?;
            self.load_visible(c, id)
        }
        .await
        {
            Ok(r) => r,
            Err(e) => return self.deny(c, KIND, Some(id), e).await,
        };
        if row.state.is_terminal() || row.state == TesState::Canceling {
            return Ok(());
        }
        self.record(self.audit_event(c, KIND, Outcome::Allow, "task cancelled").with("task", id.to_owned())).await?;
        self.set_state(&row, TesState::Canceling, |l| l.system_logs.push(format!("cancel requested by {}", c.subject)))
            .await?;
        match &row.executor {
            Some(ex) => {
                if let Err(e) = self.executor.cancel(ex).await {
                    tracing::warn!(task = %id, error = %e, "cancel at the executor failed");
                }
            }
            None => {
                // Never started: nothing to stop.
                let row = self.db.get(id).map_err(JobError::Internal)?.ok_or_else(|| JobError::NotFound(id.into()))?;
                self.set_state(&row, TesState::Canceled, |_| {}).await?;
            }
        }
        Ok(())
    }

    // ---- state -------------------------------------------------------------

    async fn set_state(&self, row: &Row, state: TesState, f: impl FnOnce(&mut TaskLog)) -> Result<(), JobError> {
        self.update(row, state, None, f).await
    }

    async fn update(
        &self,
        row: &Row,
        state: TesState,
        executor: Option<String>,
        f: impl FnOnce(&mut TaskLog),
    ) -> Result<(), JobError> {
        let mut task: Task = serde_json::from_str(&row.doc).map_err(|e| JobError::Internal(e.to_string()))?;
        task.state = Some(state);
        let logs = task.logs.get_or_insert_with(Vec::new);
        if logs.is_empty() {
            logs.push(TaskLog::default());
        }
        let log = &mut logs[0];
        if let Some(e) = &executor {
            log.metadata.insert(META_EXECUTOR.to_owned(), e.clone());
        }
        if matches!(state, TesState::Initializing | TesState::Running) && log.start_time.is_none() {
            log.start_time = Some(rfc3339(now()));
        }
        if state.is_terminal() && log.end_time.is_none() {
            log.end_time = Some(rfc3339(now()));
        }
        f(log);
        let doc = serde_json::to_string(&task).map_err(|e| JobError::Internal(e.to_string()))?;
        self.db.write(Op::Update { id: row.id.clone(), state, doc, executor }).await.map_err(JobError::Internal)?;
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        if state.is_terminal() {
            active.remove(&row.id);
        } else {
            active.insert(row.id.clone(), state);
        }
        Ok(())
    }

    async fn finish(&self, id: &str, state: TesState, why: &str) -> Result<(), JobError> {
        let row = self.db.get(id).map_err(JobError::Internal)?.ok_or_else(|| JobError::NotFound(id.into()))?;
        if row.state.is_terminal() {
            return Ok(());
        }
        self.set_state(&row, state, |l| l.system_logs.push(why.to_owned())).await?;
        self.record(
            AuditEvent::new(now(), "jobs.task.state", Outcome::Allow, why.to_owned())
                .subject(row.owner.clone())
                .with("task", id.to_owned())
                .with("state", state.as_str()),
        )
        .await
    }

    /// A worker's report on its own task.
    pub async fn report(&self, c: &Caller, id: &str, r: Report) -> Result<(), JobError> {
        const KIND: &str = "jobs.task.report";
        let row = match async {
            match &c.task {
                Some(t) if t.id == id && c.has(SCOPE_REPORT) => {}
                _ => return Err(JobError::Policy("only the worker of this task may report on it".into())),
            }
            let row = self.db.get(id).map_err(JobError::Internal)?.ok_or_else(|| JobError::NotFound(id.into()))?;
            if row.state.is_terminal() || row.state == TesState::Canceling {
                return Err(JobError::Conflict(format!("the task is {}; stop", row.state.as_str())));
            }
            let allowed = matches!(
                r.state,
                TesState::Initializing
                    | TesState::Running
                    | TesState::Complete
                    | TesState::ExecutorError
                    | TesState::SystemError
            );
            if !allowed {
                return Err(JobError::Invalid(tes::Invalid {
                    field: "state".into(),
                    why: format!("a worker cannot set {}", r.state.as_str()),
                }));
            }
            if r.system_logs.len() > 64 || r.logs.len() > tes::MAX_EXECUTORS || r.outputs.len() > tes::MAX_FILES {
                return Err(JobError::Invalid(tes::Invalid { field: "logs".into(), why: "too many entries".into() }));
            }
            Ok(row)
        }
        .await
        {
            Ok(r) => r,
            Err(e) => return self.deny(c, KIND, Some(id), e).await,
        };
        let state = r.state;
        self.update(&row, state, None, |l| {
            if !r.logs.is_empty() {
                l.logs = r.logs;
            }
            if !r.outputs.is_empty() {
                l.outputs = r.outputs;
            }
            l.system_logs.extend(r.system_logs.into_iter().map(|s| s.chars().take(tes::MAX_FIELD_BYTES).collect()));
        })
        .await?;
        if state.is_terminal() {
            self.record(
                self.audit_event(c, "jobs.task.state", Outcome::Allow, "reported by the worker")
                    .with("task", id.to_owned())
                    .with("state", state.as_str()),
            )
            .await?;
        }
        Ok(())
    }

    /// Whether a task's worker may still act (the token gate).
    fn may_run(&self, id: &str) -> Result<(), String> {
        match self.active.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            Some(TesState::Queued | TesState::Initializing | TesState::Running) => Ok(()),
            Some(s) => Err(format!("the task is {}", s.as_str())),
            None => Err("the task is finished or unknown".into()),
        }
    }

    // ---- dispatch, poll, reconcile ----------------------------------------

    fn sign_manifest(&self, row: &Row) -> Result<ManifestFile, JobError> {
        let grant: GrantRecord = serde_json::from_str(&row.grant).map_err(|e| JobError::Internal(e.to_string()))?;
        let spec: Spec = serde_json::from_str(&row.spec).map_err(|e| JobError::Internal(e.to_string()))?;
        let t = now();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| JobError::Internal("no randomness".into()))?;
        let claims = Claims {
            iss: self.auth.config().issuer.clone(),
            aud: WORKER_AUDIENCE.to_owned(),
            sub: row.owner.clone(),
            iat: t,
            nbf: t,
            exp: t + self.cfg.manifest_ttl_secs,
            jti: hex::encode(jti),
            scope: grant.scope,
            clearance: grant.clearance,
            amr: grant.amr,
            acr: grant.acr,
            tsk: TaskBinding {
                id: row.id.clone(),
                read: spec.inputs.iter().filter_map(|i| i.object.clone()).collect(),
                write: spec.outputs.iter().map(|o| o.name.clone()).collect(),
            },
            spec_sha256: manifest::sha256_hex(row.spec.as_bytes()),
            gateway: self.launch.server.clone(),
            partition: row.partition.clone(),
        };
        let jws = self
            .auth
            .sign_document(manifest::TYP_TASK_MANIFEST, &claims)
            .map_err(|e| JobError::Internal(format!("cannot sign the manifest: {e}")))?;
        Ok(ManifestFile { jws, spec: row.spec.clone() })
    }

    async fn dispatch(self: &Arc<Self>, id: &str) -> Result<(), JobError> {
        let Some(row) = self.db.get(id).map_err(JobError::Internal)? else { return Ok(()) };
        if row.state != TesState::Queued || row.executor.is_some() {
            return Ok(());
        }
        let me = self.clone();
        let r2 = row.clone();
        let file = tokio::task::spawn_blocking(move || me.sign_manifest(&r2))
            .await
            .map_err(|e| JobError::Internal(e.to_string()))??;
        let path = self.spool.join("manifests").join(format!("{id}.json"));
        write_private(&path, &serde_json::to_vec(&file).map_err(|e| JobError::Internal(e.to_string()))?)
            .map_err(JobError::Internal)?;
        let spec: Spec = serde_json::from_str(&row.spec).map_err(|e| JobError::Internal(e.to_string()))?;
        let partition = if row.partition == "cloud" { Partition::Cloud } else { Partition::Onprem };
        let reference =
            self.executor.start(id, &path, partition, &spec, &self.launch).await.map_err(JobError::Internal)?;
        // A cancel may have come in meanwhile.
        let now_row = self.db.get(id).map_err(JobError::Internal)?.ok_or_else(|| JobError::NotFound(id.into()))?;
        self.update(&now_row, now_row.state, Some(reference.clone()), |l| {
            l.system_logs.push(format!("started by the {} executor as {reference}", self.executor.kind()));
        })
        .await?;
        if now_row.state == TesState::Canceling {
            let _ = self.executor.cancel(&reference).await;
        }
        Ok(())
    }

    /// After a restart: every task the executor should have is matched
    /// with what it reports; queued tasks never started are dispatched.
    async fn reconcile(self: &Arc<Self>) -> Result<(), JobError> {
        let rows = self.db.active().map_err(JobError::Internal)?;
        let known = self.executor.discover().await.map_err(JobError::Internal)?;
        for row in rows {
            match &row.executor {
                None if row.state == TesState::Queued => {
                    // Perhaps sbatch ran but the gateway stopped before it
                    // recorded the job: adopt it rather than run twice.
                    if let Some(reference) = known.get(&row.id) {
                        self.update(&row, row.state, Some(reference.clone()), |l| {
                            l.system_logs.push(format!("adopted {reference} after a gateway restart"));
                        })
                        .await?;
                    } else {
                        let _ = self.queue.send(row.id.clone());
                    }
                }
                None if row.state == TesState::Canceling => {
                    self.set_state(&row, TesState::Canceled, |_| {}).await?;
                }
                _ => {}
            }
        }
        self.poll().await
    }

    /// Asks the executor about every started task that is not finished and
    /// applies what it says. Workers report their own progress; this
    /// catches what they cannot: a job cancelled, killed or lost.
    async fn poll(&self) -> Result<(), JobError> {
        let rows: Vec<Row> =
            self.db.active().map_err(JobError::Internal)?.into_iter().filter(|r| r.executor.is_some()).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let refs: Vec<String> = rows.iter().filter_map(|r| r.executor.clone()).collect();
        let states = self.executor.states(&refs).await.map_err(JobError::Internal)?;
        for row in rows {
            let Some(reference) = &row.executor else { continue };
            let Some(seen) = states.get(reference) else { continue };
            let next = match (row.state, seen.state) {
                (TesState::Canceling, s) if s.is_terminal() => Some((TesState::Canceled, seen.detail.clone())),
                (_, TesState::Canceled) => Some((TesState::Canceled, seen.detail.clone())),
                (_, TesState::Complete) => Some((
                    TesState::SystemError,
                    format!("the worker ended without reporting the task finished ({})", seen.detail),
                )),
                (_, s) if s.is_terminal() => Some((s, seen.detail.clone())),
                // Running or queued there: the worker reports its own progress.
                _ => None,
            };
            if let Some((state, why)) = next {
                self.finish(&row.id, state, &why).await?;
            }
        }
        Ok(())
    }
}

struct Gate(std::sync::Weak<JobService>);

impl TaskGate for Gate {
    fn may_run(&self, task_id: &str) -> Result<(), String> {
        match self.0.upgrade() {
            Some(s) => s.may_run(task_id),
            None => Err("the job service stopped".into()),
        }
    }
}

fn restrict(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes `bytes` to `path` (0600) by a temporary file and a rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_ids() {
        let id = "obj_0123456789abcdef0123456789abcdef";
        assert_eq!(input_object(&format!("seqshield://{id}")), Some(id));
        assert_eq!(input_object(&format!("drs://gw.example:8443/{id}")), Some(id));
        assert_eq!(input_object(id), Some(id));
        assert_eq!(input_object("s3://bucket/x"), None);
        assert_eq!(input_object("seqshield://obj_../x"), None);
        assert_eq!(output_target("seqshield://run1/calls.vcf").unwrap(), ("run1".into(), "calls.vcf".into()));
        assert!(output_target("s3://run1/calls.vcf").is_err());
        assert!(output_target("seqshield://run1/../x").is_err());
        assert!(is_task_id(&new_task_id()));
        assert!(!is_task_id("task_../../etc"));
    }
}

#[cfg(test)]
mod timing_tests {
    use super::*;
    use crate::manifest::{Padding, Rounding};

    #[test]
    fn only_tasks_at_or_above_pad_from_are_padded() {
        let off = TimingConfig::default();
        assert_eq!(off.padding_for(Classification::Controlled), None);
        let on = TimingConfig { pad_from: Some(Classification::Restricted), ..TimingConfig::default() };
        assert_eq!(on.padding_for(Classification::Internal), None);
        let want = Some(Padding { rounding: Rounding::PowerOfTwo, base_secs: 60 });
        assert_eq!(on.padding_for(Classification::Restricted), want);
        assert_eq!(on.padding_for(Classification::Controlled), want);
        assert!(TimingConfig { base_secs: 0, ..on.clone() }.validate().is_err());
        assert!(TimingConfig { base_secs: 86_401, ..on }.validate().is_err());
    }
}
