//! Placement: does a task run on the on-prem Slurm partition or burst to
//! the cloud partition?
//!
//! The rules are data (`policy/placement.toml`, format in
//! `docs/jobs-placement.md`), each with a `reason` that is copied into the
//! decision. [`PlacementPolicy::decide`] weighs, in this order:
//!
//! 1. a per-task override, honoured only where the class allows it;
//! 2. the data classification: only classes with `burst = true` may leave;
//! 3. the estimated on-prem queue wait ([`estimate_wait`]): burst only when
//!    it is longer than `burst_after_wait_secs`;
//! 4. the cloud budget: a task whose `cores × runtime` does not fit in what
//!    is left of today's core-hours stays on-prem.
//!
//! ```
//! use seqshield_format::Classification;
//! use seqshield_jobs::placement::{ClusterLoad, JobLoad, Partition, PlacementPolicy, PlacementRequest};
//!
//! let policy = PlacementPolicy::embedded();
//! // 64 on-prem cores, all busy for another two hours.
//! let load = ClusterLoad {
//!     onprem_cores: 64,
//!     running: vec![JobLoad { cores: 64, remaining_secs: 7200 }],
//!     pending: vec![],
//!     cloud_core_hours_used_today: 0.0,
//! };
//! let mut req = PlacementRequest {
//!     classification: Classification::Internal,
//!     cores: 8,
//!     runtime_secs: 3600,
//!     override_partition: None,
//! };
//! let p = policy.decide(&req, &load).unwrap();
//! assert_eq!(p.partition, Partition::Cloud);
//! assert_eq!(p.estimated_wait_secs, Some(7200));
//!
//! // Restricted data waits on-prem, whatever the queue.
//! req.classification = Classification::Restricted;
//! assert_eq!(policy.decide(&req, &load).unwrap().partition, Partition::Onprem);
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use seqshield_format::Classification;
use serde::{Deserialize, Serialize};

/// Largest placement policy read, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Longest `reason`, in bytes.
pub const MAX_REASON_LEN: usize = 512;
/// Longest `default_runtime_secs` accepted (30 days).
pub const MAX_DEFAULT_RUNTIME_SECS: u64 = 30 * 86_400;
/// The only policy file `version` understood.
pub const POLICY_VERSION: u32 = 1;

/// The policy compiled into the binary.
const EMBEDDED: &str = include_str!("../policy/placement.toml");
/// The origin named in errors about the embedded policy.
const EMBEDDED_ORIGIN: &str = "<embedded policy/placement.toml>";

/// Where a task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// The institution's own Slurm partition.
    Onprem,
    /// The cloud partition the cluster bursts to.
    Cloud,
}

impl Partition {
    /// `onprem` or `cloud`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onprem => "onprem",
            Self::Cloud => "cloud",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A partition name other than `onprem` or `cloud`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown partition {0:?}: expected onprem or cloud")]
pub struct UnknownPartition(pub String);

impl FromStr for Partition {
    type Err = UnknownPartition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "onprem" => Ok(Self::Onprem),
            "cloud" => Ok(Self::Cloud),
            _ => Err(UnknownPartition(s.to_owned())),
        }
    }
}

/// What the policy says about one data classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassRule {
    /// Tasks of this class may run on the cloud partition.
    pub burst: bool,
    /// A task of this class may ask for the cloud partition explicitly
    /// (only meaningful with `burst`; an override to on-prem is always
    /// honoured).
    pub allow_override: bool,
    /// Why, for people and the audit log.
    pub reason: String,
}

/// A checked placement policy. Build it with [`PlacementPolicy::embedded`],
/// [`PlacementPolicy::load`] or [`PlacementPolicy::parse`].
#[derive(Clone, Debug, PartialEq)]
pub struct PlacementPolicy {
    origin: String,
    burst_after_wait_secs: u64,
    wait_reason: String,
    cloud_core_hours_per_day: f64,
    budget_reason: String,
    default_runtime_secs: u64,
    runtime_reason: String,
    /// Indexed by [`Classification::code`].
    classes: [ClassRule; 4],
}

/// A placement policy could not be read or is not valid. Every variant
/// names the file (or origin) it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Reading the file failed.
    #[error("placement policy {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("placement policy {origin}: larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge {
        /// Where the text came from.
        origin: String,
    },
    /// Not valid TOML, or a missing, unknown or mistyped field.
    #[error("placement policy {origin}{}: {}", fmt_line(*.line), .source.message())]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// The TOML error.
        source: Box<toml::de::Error>,
    },
    /// `version` is not [`POLICY_VERSION`].
    #[error("placement policy {origin}: version {found} is not supported (expected {POLICY_VERSION})")]
    Version {
        /// Where the text came from.
        origin: String,
        /// The version in the file.
        found: u32,
    },
    /// A field has a value the policy cannot use.
    #[error("placement policy {origin}: `{field}` {problem}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// The field, as a dotted TOML path (`class.restricted.reason`).
        field: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
}

fn fmt_line(line: Option<usize>) -> String {
    line.map(|l| format!(" line {l}")).unwrap_or_default()
}

/// What is wrong with one policy field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// A reason is empty, longer than [`MAX_REASON_LEN`] or not one line.
    #[error("must be one non-empty line of at most {MAX_REASON_LEN} bytes")]
    BadReason,
    /// The budget is negative, NaN or infinite.
    #[error("must be a finite number of core-hours >= 0, found {0}")]
    BadBudget(f64),
    /// The default runtime is 0 or longer than [`MAX_DEFAULT_RUNTIME_SECS`].
    #[error("must be between 1 and {MAX_DEFAULT_RUNTIME_SECS} seconds, found {0}")]
    BadRuntime(u64),
    /// `allow_override = true` on a class that may not burst.
    #[error("is true but `burst` is false: an override to cloud could never be honoured")]
    OverrideWithoutBurst,
    /// A class may burst while a less sensitive one may not (likely a typo).
    #[error("is true but the less sensitive class `{0}` may not burst")]
    NotMonotone(Classification),
}

/// The facts about one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacementRequest {
    /// The most sensitive classification among the task's inputs.
    pub classification: Classification,
    /// Cores requested (at least 1).
    pub cores: u32,
    /// Runtime estimate, used for the wait estimate of later tasks and the
    /// budget check. A task that gives none should use
    /// [`PlacementPolicy::default_runtime_secs`].
    pub runtime_secs: u64,
    /// A partition the submitter asked for, if any.
    pub override_partition: Option<Partition>,
}

/// A job the on-prem queue already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobLoad {
    /// Cores it holds (running) or asks for (pending).
    pub cores: u32,
    /// Running: seconds left until its time limit. Pending: its requested
    /// time limit.
    pub remaining_secs: u64,
}

/// The state of the cluster when a task is placed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterLoad {
    /// Cores in the on-prem partition.
    pub onprem_cores: u32,
    /// Jobs running on-prem.
    pub running: Vec<JobLoad>,
    /// Jobs waiting on-prem, first in line first.
    pub pending: Vec<JobLoad>,
    /// Cloud core-hours already committed today (UTC day).
    pub cloud_core_hours_used_today: f64,
}

/// Which rule decided a placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Basis {
    /// The submitter's override was honoured.
    Override,
    /// The classification may not leave the on-prem cluster.
    ClassStaysOnprem,
    /// The estimated on-prem wait is within the threshold.
    WaitWithinThreshold,
    /// The estimated on-prem wait is over the threshold: burst.
    Burst,
    /// The wait is over the threshold but today's cloud budget cannot
    /// cover the task.
    BudgetExhausted,
    /// The task needs more cores than the on-prem partition has.
    TooLargeForOnprem,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    /// Where the task runs.
    pub partition: Partition,
    /// Which rule decided.
    pub basis: Basis,
    /// The estimated on-prem queue wait ([`estimate_wait`]); `None` when
    /// the task does not fit on-prem at all.
    pub estimated_wait_secs: Option<u64>,
    /// Cloud core-hours this placement commits (`cores × runtime`; 0 on
    /// premises). The caller adds it to today's total.
    pub cloud_core_hours: f64,
    /// Short sentences saying why, for the task record and the audit log.
    pub reasons: Vec<String>,
}

/// The policy refused to place a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// The task asked for a partition the policy does not allow it (a
    /// client error: answer 4xx).
    #[error("override refused: {reason}")]
    OverrideRefused {
        /// Why.
        reason: String,
    },
    /// The task needs more cores than on-prem has, and may not (or cannot
    /// today) burst.
    #[error("task needs {cores} cores, the on-prem partition has {onprem_cores}: {reason}")]
    TooLarge {
        /// Cores requested.
        cores: u32,
        /// Cores on-prem.
        onprem_cores: u32,
        /// Why the cloud is not an option.
        reason: String,
    },
    /// The request or the load is malformed.
    #[error("invalid placement request: {0}")]
    InvalidRequest(&'static str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: u32,
    wait: RawWait,
    budget: RawBudget,
    runtime: RawRuntime,
    class: RawClasses,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    burst_after_wait_secs: u64,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    cloud_core_hours_per_day: f64,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    default_runtime_secs: u64,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClasses {
    public: RawClass,
    internal: RawClass,
    restricted: RawClass,
    controlled: RawClass,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    burst: bool,
    #[serde(default)]
    allow_override: bool,
    reason: String,
}

impl PlacementPolicy {
    /// The policy shipped in the binary (`policy/placement.toml`).
    pub fn embedded() -> Self {
        Self::parse(EMBEDDED, EMBEDDED_ORIGIN).expect("the embedded placement policy is valid (checked by a unit test)")
    }

    /// The text of the embedded policy, to start a site policy from.
    pub fn embedded_text() -> &'static str {
        EMBEDDED
    }

    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let io = |source| PolicyError::Io { path: path.to_owned(), source };
        let origin = path.display().to_string();
        if std::fs::metadata(path).map_err(io)?.len() > MAX_POLICY_BYTES as u64 {
            return Err(PolicyError::TooLarge { origin });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::parse(&text, &origin)
    }

    /// Parses and checks a policy; `origin` (a path, usually) is named in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { origin: origin.to_owned() });
        }
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            origin: origin.to_owned(),
            line: e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            source: Box::new(e),
        })?;
        let invalid =
            |field: &str, problem| PolicyError::Invalid { origin: origin.to_owned(), field: field.to_owned(), problem };
        if raw.version != POLICY_VERSION {
            return Err(PolicyError::Version { origin: origin.to_owned(), found: raw.version });
        }
        for (field, reason) in [
            ("wait.reason", &raw.wait.reason),
            ("budget.reason", &raw.budget.reason),
            ("runtime.reason", &raw.runtime.reason),
        ] {
            if !reason_ok(reason) {
                return Err(invalid(field, FieldProblem::BadReason));
            }
        }
        let budget = raw.budget.cloud_core_hours_per_day;
        if !budget.is_finite() || budget < 0.0 {
            return Err(invalid("budget.cloud_core_hours_per_day", FieldProblem::BadBudget(budget)));
        }
        let runtime = raw.runtime.default_runtime_secs;
        if runtime == 0 || runtime > MAX_DEFAULT_RUNTIME_SECS {
            return Err(invalid("runtime.default_runtime_secs", FieldProblem::BadRuntime(runtime)));
        }
        let c = raw.class;
        let classes = [c.public, c.internal, c.restricted, c.controlled].map(|r| ClassRule {
            burst: r.burst,
            allow_override: r.allow_override,
            reason: r.reason,
        });
        for class in Classification::ALL {
            let rule = &classes[usize::from(class.code())];
            if !reason_ok(&rule.reason) {
                return Err(invalid(&format!("class.{class}.reason"), FieldProblem::BadReason));
            }
            if rule.allow_override && !rule.burst {
                return Err(invalid(&format!("class.{class}.allow_override"), FieldProblem::OverrideWithoutBurst));
            }
            if rule.burst {
                if let Some(less) =
                    Classification::ALL.into_iter().find(|l| *l < class && !classes[usize::from(l.code())].burst)
                {
                    return Err(invalid(&format!("class.{class}.burst"), FieldProblem::NotMonotone(less)));
                }
            }
        }
        Ok(Self {
            origin: origin.to_owned(),
            burst_after_wait_secs: raw.wait.burst_after_wait_secs,
            wait_reason: raw.wait.reason,
            cloud_core_hours_per_day: budget,
            budget_reason: raw.budget.reason,
            default_runtime_secs: runtime,
            runtime_reason: raw.runtime.reason,
            classes,
        })
    }

    /// Where the policy came from (a path, or the embedded default).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Burst only when the estimated on-prem wait is longer than this.
    pub fn burst_after_wait_secs(&self) -> u64 {
        self.burst_after_wait_secs
    }

    /// Cloud core-hours that may be committed per day.
    pub fn cloud_core_hours_per_day(&self) -> f64 {
        self.cloud_core_hours_per_day
    }

    /// The runtime to assume for a task that gives no estimate.
    pub fn default_runtime_secs(&self) -> u64 {
        self.default_runtime_secs
    }

    /// Why the default runtime is what it is.
    pub fn default_runtime_reason(&self) -> &str {
        &self.runtime_reason
    }

    /// The rule for one classification.
    pub fn class_rule(&self, class: Classification) -> &ClassRule {
        &self.classes[usize::from(class.code())]
    }

    /// A copy with another daily cloud budget (for `burst-sim` what-ifs).
    /// A negative, NaN or infinite budget is refused.
    pub fn with_cloud_budget(&self, core_hours_per_day: f64) -> Result<Self, PolicyError> {
        if !core_hours_per_day.is_finite() || core_hours_per_day < 0.0 {
            return Err(PolicyError::Invalid {
                origin: self.origin.clone(),
                field: "budget.cloud_core_hours_per_day".to_owned(),
                problem: FieldProblem::BadBudget(core_hours_per_day),
            });
        }
        Ok(Self { cloud_core_hours_per_day: core_hours_per_day, ..self.clone() })
    }

    /// Decides where a task runs. See the module docs for the order of the
    /// rules; every [`Placement`] says why in `reasons`.
    pub fn decide(&self, req: &PlacementRequest, load: &ClusterLoad) -> Result<Placement, PlacementError> {
        if req.cores == 0 {
            return Err(PlacementError::InvalidRequest("a task needs at least one core"));
        }
        let used = load.cloud_core_hours_used_today;
        if !used.is_finite() || used < 0.0 {
            return Err(PlacementError::InvalidRequest("cloud core-hours used today must be a finite number >= 0"));
        }
        let class = req.classification;
        let rule = self.class_rule(class);
        let wait = estimate_wait(load.onprem_cores, &load.running, &load.pending, req.cores);
        let threshold = self.burst_after_wait_secs;
        let need = core_hours(req.cores, req.runtime_secs);
        let budget = self.cloud_core_hours_per_day;
        let fits_budget = used + need <= budget;
        let budget_line = format!(
            "cloud budget: {} of {} core-hours left today, task needs {}",
            fmt_hours((budget - used).max(0.0)),
            fmt_hours(budget),
            fmt_hours(need)
        );
        let stays = || format!("{class} data stays on-prem (policy: {})", rule.reason);
        let may = || format!("{class} data may burst to cloud (policy: {})", rule.reason);
        let wait_line = |verdict: &str| match wait {
            Some(w) => format!("estimated on-prem wait {}{verdict}", fmt_duration(w)),
            None => format!("task needs {} cores, on-prem has {}{verdict}", req.cores, load.onprem_cores),
        };
        let too_large =
            |reason: String| PlacementError::TooLarge { cores: req.cores, onprem_cores: load.onprem_cores, reason };
        let onprem = |basis, reasons| Placement {
            partition: Partition::Onprem,
            basis,
            estimated_wait_secs: wait,
            cloud_core_hours: 0.0,
            reasons,
        };
        let cloud = |basis, reasons| Placement {
            partition: Partition::Cloud,
            basis,
            estimated_wait_secs: wait,
            cloud_core_hours: need,
            reasons,
        };

        match req.override_partition {
            Some(Partition::Onprem) => {
                if wait.is_none() {
                    return Err(too_large("an on-prem override cannot be honoured".to_owned()));
                }
                return Ok(onprem(
                    Basis::Override,
                    vec!["override: on-prem requested (always permitted)".to_owned(), wait_line("")],
                ));
            }
            Some(Partition::Cloud) => {
                if !rule.burst {
                    return Err(PlacementError::OverrideRefused { reason: stays() });
                }
                if !rule.allow_override {
                    return Err(PlacementError::OverrideRefused {
                        reason: format!(
                            "{class} data may burst only when the on-prem queue is long (policy: {})",
                            rule.reason
                        ),
                    });
                }
                if !fits_budget {
                    return Err(PlacementError::OverrideRefused { reason: budget_line });
                }
                return Ok(cloud(
                    Basis::Override,
                    vec!["override: cloud requested".to_owned(), may(), wait_line(""), budget_line],
                ));
            }
            None => {}
        }

        if !rule.burst {
            return match wait {
                Some(_) => Ok(onprem(Basis::ClassStaysOnprem, vec![stays(), wait_line("")])),
                None => Err(too_large(stays())),
            };
        }
        match wait {
            None if fits_budget => Ok(cloud(Basis::TooLargeForOnprem, vec![may(), wait_line(": cloud"), budget_line])),
            None => Err(too_large(budget_line)),
            Some(w) if w <= threshold => Ok(onprem(
                Basis::WaitWithinThreshold,
                vec![wait_line(&format!(" is within {}: on-prem", fmt_duration(threshold)))],
            )),
            Some(_) => {
                let over = wait_line(&format!(" exceeds {}", fmt_duration(threshold)));
                if fits_budget {
                    Ok(cloud(
                        Basis::Burst,
                        vec![format!("{over}: burst (policy: {})", self.wait_reason), may(), budget_line],
                    ))
                } else {
                    Ok(onprem(
                        Basis::BudgetExhausted,
                        vec![over, format!("{budget_line}: stays on-prem (policy: {})", self.budget_reason)],
                    ))
                }
            }
        }
    }
}

/// One line, not empty, not too long.
fn reason_ok(reason: &str) -> bool {
    !reason.trim().is_empty() && reason.len() <= MAX_REASON_LEN && !reason.chars().any(char::is_control)
}

/// `cores × runtime` in core-hours.
pub fn core_hours(cores: u32, runtime_secs: u64) -> f64 {
    f64::from(cores) * runtime_secs as f64 / 3600.0
}

/// Estimates how long a task asking for `cores` would wait in the on-prem
/// queue, in seconds; `None` when it needs more cores than the partition
/// has.
///
/// Method: strict first-in-first-out replay of the queue. Running jobs end
/// when their time limit runs out (`remaining_secs`); each pending job, in
/// queue order, then the new task, starts at the earliest moment — not
/// before the job ahead of it — when enough cores are free, and holds them
/// for its requested time. Pending jobs larger than the partition are
/// skipped (Slurm would never start them). Because jobs usually finish
/// before their time limit, and Slurm's backfill can start a small job
/// ahead of its turn, this overestimates real waits; it is exact for a
/// strict-FIFO cluster whose jobs run to their limits, which is what
/// `burst-sim` simulates.
pub fn estimate_wait(onprem_cores: u32, running: &[JobLoad], pending: &[JobLoad], cores: u32) -> Option<u64> {
    if cores > onprem_cores {
        return None;
    }
    let capacity = u64::from(onprem_cores);
    let mut used: u64 = running.iter().map(|j| u64::from(j.cores)).sum();
    // Min-heap of (end time, cores).
    let mut ends: BinaryHeap<Reverse<(u64, u64)>> =
        running.iter().map(|j| Reverse((j.remaining_secs, u64::from(j.cores)))).collect();
    let mut now = 0u64;
    let task = JobLoad { cores, remaining_secs: 0 };
    let queue = pending.iter().filter(|j| j.cores <= onprem_cores).chain(std::iter::once(&task));
    for job in queue {
        let want = u64::from(job.cores);
        while used + want > capacity {
            // Something is running whenever used > 0, and want <= capacity.
            let Some(Reverse((end, c))) = ends.pop() else { break };
            now = now.max(end);
            used -= c;
        }
        used += want;
        ends.push(Reverse((now.saturating_add(job.remaining_secs), want)));
    }
    Some(now)
}

/// `5s`, `12m30s`, `1h20m`, `2d3h` (truncated to two units).
pub fn fmt_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (d, h, m, s) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m{s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h{m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d{h}h"),
    }
}

/// Core-hours with at most two decimals and no trailing zeros.
pub(crate) fn fmt_hours(h: f64) -> String {
    let s = format!("{h:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cores: u32, remaining_secs: u64) -> JobLoad {
        JobLoad { cores, remaining_secs }
    }

    fn req(classification: Classification, cores: u32, runtime_secs: u64) -> PlacementRequest {
        PlacementRequest { classification, cores, runtime_secs, override_partition: None }
    }

    /// 64 cores, all busy for two hours: any task waits 2h.
    fn busy() -> ClusterLoad {
        ClusterLoad {
            onprem_cores: 64,
            running: vec![job(64, 7200)],
            pending: vec![],
            cloud_core_hours_used_today: 0.0,
        }
    }

    fn idle() -> ClusterLoad {
        ClusterLoad { onprem_cores: 64, ..ClusterLoad::default() }
    }

    #[test]
    fn embedded_policy_parses_with_the_documented_defaults() {
        let p = PlacementPolicy::embedded();
        assert_eq!(p.burst_after_wait_secs(), 1800);
        assert!(p.cloud_core_hours_per_day() > 0.0);
        assert_eq!(p.default_runtime_secs(), 14_400);
        for c in Classification::ALL {
            let may = c <= Classification::Internal;
            assert_eq!(p.class_rule(c).burst, may, "{c}");
            assert_eq!(p.class_rule(c).allow_override, may, "{c}");
        }
        assert!(PlacementPolicy::embedded_text().contains("[class.controlled]"));
    }

    #[test]
    fn estimate_wait_hand_computed_cases() {
        // Idle partition: no wait.
        assert_eq!(estimate_wait(64, &[], &[], 8), Some(0));
        // 60 of 64 busy: 4 free now.
        assert_eq!(estimate_wait(64, &[job(60, 100)], &[], 4), Some(0));
        assert_eq!(estimate_wait(64, &[job(60, 100)], &[], 5), Some(100));
        // Two running jobs end at 100 (32 cores) and 300 (32 cores); a
        // 16-core task starts at 100.
        assert_eq!(estimate_wait(64, &[job(32, 300), job(32, 100)], &[], 16), Some(100));
        // Pending 48-core job (1000 s) starts at 300 when both have ended;
        // then 16 cores are free: our 16-core task starts at 300 too.
        assert_eq!(estimate_wait(64, &[job(32, 300), job(32, 100)], &[job(48, 1000)], 16), Some(300));
        // ...but a 17-core task must wait for the pending job to end: 1300.
        assert_eq!(estimate_wait(64, &[job(32, 300), job(32, 100)], &[job(48, 1000)], 17), Some(1300));
        // Strict FIFO: the pending 64-core job at the head blocks a 1-core
        // task even though a core is free now (no backfill).
        assert_eq!(estimate_wait(64, &[job(63, 50)], &[job(64, 10)], 1), Some(60));
        // Pending jobs larger than the partition are skipped.
        assert_eq!(estimate_wait(64, &[], &[job(65, 10)], 1), Some(0));
        // Too large for the partition: never.
        assert_eq!(estimate_wait(64, &[], &[], 65), None);
        assert_eq!(estimate_wait(0, &[], &[], 1), None);
    }

    #[test]
    fn classification_gates_bursting() {
        let p = PlacementPolicy::embedded();
        for c in Classification::ALL {
            let got = p.decide(&req(c, 8, 3600), &busy()).unwrap();
            if c <= Classification::Internal {
                assert_eq!((got.partition, got.basis), (Partition::Cloud, Basis::Burst), "{c}");
                assert_eq!(got.cloud_core_hours, 8.0);
                assert!(
                    got.reasons[0].starts_with("estimated on-prem wait 2h exceeds 30m: burst"),
                    "{:?}",
                    got.reasons
                );
            } else {
                assert_eq!((got.partition, got.basis), (Partition::Onprem, Basis::ClassStaysOnprem), "{c}");
                assert_eq!(got.cloud_core_hours, 0.0);
                assert!(got.reasons[0].starts_with(&format!("{c} data stays on-prem (policy: ")), "{:?}", got.reasons);
            }
            assert_eq!(got.estimated_wait_secs, Some(7200));
        }
    }

    #[test]
    fn short_wait_stays_onprem() {
        let p = PlacementPolicy::embedded();
        let mut load = busy();
        load.running[0].remaining_secs = 1800; // exactly the threshold: not over it
        let got = p.decide(&req(Classification::Public, 8, 3600), &load).unwrap();
        assert_eq!((got.partition, got.basis), (Partition::Onprem, Basis::WaitWithinThreshold));
        assert_eq!(got.reasons, ["estimated on-prem wait 30m is within 30m: on-prem"]);
        load.running[0].remaining_secs = 1801;
        assert_eq!(p.decide(&req(Classification::Public, 8, 3600), &load).unwrap().partition, Partition::Cloud);
    }

    #[test]
    fn exhausted_budget_keeps_tasks_onprem() {
        let p = PlacementPolicy::embedded().with_cloud_budget(200.0).unwrap();
        let mut load = busy();
        load.cloud_core_hours_used_today = 187.5;
        // 16 cores × 1 h = 16 core-hours > 12.5 left.
        let got = p.decide(&req(Classification::Public, 16, 3600), &load).unwrap();
        assert_eq!((got.partition, got.basis), (Partition::Onprem, Basis::BudgetExhausted));
        assert!(
            got.reasons[1].starts_with("cloud budget: 12.5 of 200 core-hours left today, task needs 16: stays on-prem")
        );
        // 12 cores × 1 h fits exactly... 12 <= 12.5.
        let got = p.decide(&req(Classification::Public, 12, 3600), &load).unwrap();
        assert_eq!(got.partition, Partition::Cloud);
        // Exactly the rest of the budget is allowed.
        load.cloud_core_hours_used_today = 184.0;
        assert_eq!(p.decide(&req(Classification::Public, 16, 3600), &load).unwrap().partition, Partition::Cloud);
        // A zero budget never bursts.
        let zero = p.with_cloud_budget(0.0).unwrap();
        assert_eq!(zero.decide(&req(Classification::Public, 1, 1), &busy()).unwrap().basis, Basis::BudgetExhausted);
        assert!(p.with_cloud_budget(-1.0).is_err());
        assert!(p.with_cloud_budget(f64::NAN).is_err());
    }

    #[test]
    fn override_permitted_or_refused() {
        let p = PlacementPolicy::embedded();
        let cloud = |c| PlacementRequest { override_partition: Some(Partition::Cloud), ..req(c, 4, 600) };
        // Public may ask for cloud on an idle cluster.
        let got = p.decide(&cloud(Classification::Public), &idle()).unwrap();
        assert_eq!((got.partition, got.basis), (Partition::Cloud, Basis::Override));
        // Restricted and controlled may not.
        for c in [Classification::Restricted, Classification::Controlled] {
            match p.decide(&cloud(c), &idle()) {
                Err(PlacementError::OverrideRefused { reason }) => {
                    assert!(reason.starts_with(&format!("{c} data stays on-prem")), "{reason}")
                }
                other => panic!("{c}: {other:?}"),
            }
        }
        // A class that may burst but not be overridden.
        let text = PlacementPolicy::embedded_text().replace(
            "burst = true\nallow_override = true\nreason = \"internal",
            "burst = true\nallow_override = false\nreason = \"internal",
        );
        let strict = PlacementPolicy::parse(&text, "t").unwrap();
        assert!(matches!(
            strict.decide(&cloud(Classification::Internal), &idle()),
            Err(PlacementError::OverrideRefused { .. })
        ));
        // An override to cloud still needs budget.
        let mut load = idle();
        load.cloud_core_hours_used_today = p.cloud_core_hours_per_day();
        assert!(matches!(p.decide(&cloud(Classification::Public), &load), Err(PlacementError::OverrideRefused { .. })));
        // An override to on-prem is always honoured, even for a long queue.
        let onprem =
            PlacementRequest { override_partition: Some(Partition::Onprem), ..req(Classification::Public, 4, 600) };
        let got = p.decide(&onprem, &busy()).unwrap();
        assert_eq!(
            (got.partition, got.basis, got.estimated_wait_secs),
            (Partition::Onprem, Basis::Override, Some(7200))
        );
    }

    #[test]
    fn too_large_for_onprem() {
        let p = PlacementPolicy::embedded();
        let big = |c| req(c, 128, 3600);
        let got = p.decide(&big(Classification::Internal), &idle()).unwrap();
        assert_eq!(
            (got.partition, got.basis, got.estimated_wait_secs),
            (Partition::Cloud, Basis::TooLargeForOnprem, None)
        );
        assert!(matches!(
            p.decide(&big(Classification::Controlled), &idle()),
            Err(PlacementError::TooLarge { cores: 128, onprem_cores: 64, .. })
        ));
        let zero = p.with_cloud_budget(0.0).unwrap();
        assert!(matches!(zero.decide(&big(Classification::Public), &idle()), Err(PlacementError::TooLarge { .. })));
        let onprem = PlacementRequest { override_partition: Some(Partition::Onprem), ..big(Classification::Public) };
        assert!(matches!(p.decide(&onprem, &idle()), Err(PlacementError::TooLarge { .. })));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let p = PlacementPolicy::embedded();
        assert!(matches!(
            p.decide(&req(Classification::Public, 0, 1), &idle()),
            Err(PlacementError::InvalidRequest(_))
        ));
        for used in [f64::NAN, -1.0, f64::INFINITY] {
            let load = ClusterLoad { cloud_core_hours_used_today: used, ..busy() };
            assert!(matches!(
                p.decide(&req(Classification::Public, 1, 1), &load),
                Err(PlacementError::InvalidRequest(_))
            ));
        }
    }

    /// Policy errors name the origin, the line or the field.
    #[test]
    fn policy_file_errors_name_the_file_and_field() {
        let base = PlacementPolicy::embedded_text();
        let err = |text: &str| PlacementPolicy::parse(text, "site.toml").unwrap_err().to_string();

        let e = err(&base.replace("burst_after_wait_secs", "burst_after_secs"));
        let line = base.lines().position(|l| l.starts_with("burst_after_wait_secs")).unwrap() + 1;
        let want = format!("placement policy site.toml line {line}: unknown field `burst_after_secs`");
        assert!(e.starts_with(&want), "{e}");
        let e = err(&base.replace("[class.controlled]\nburst = false\n", "[class.controlled]\n"));
        assert!(e.contains("site.toml") && e.contains("missing field `burst`"), "{e}");
        let e = err(&base.replace("[class.controlled]", "[class.secret]"));
        assert!(e.contains("unknown field `secret`"), "{e}");
        let e = err(&base.replace("version = 1", "version = 2"));
        assert_eq!(e, "placement policy site.toml: version 2 is not supported (expected 1)");
        let e = err(&base.replace("cloud_core_hours_per_day = 1000.0", "cloud_core_hours_per_day = -5"));
        assert_eq!(e, "placement policy site.toml: `budget.cloud_core_hours_per_day` must be a finite number of core-hours >= 0, found -5");
        let e = err(&base.replace("default_runtime_secs = 14400", "default_runtime_secs = 0"));
        assert!(e.contains("`runtime.default_runtime_secs` must be between 1 and"), "{e}");
        let e = err(&base.replace("reason = \"identifiable", "reason = \"\"\nx = \"identifiable"));
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = err(&base.replace("reason = \"identifiable human genomic data under a data-access agreement is processed only on the systems the agreement names: the on-prem cluster\"", "reason = \" \""));
        assert_eq!(
            e,
            "placement policy site.toml: `class.controlled.reason` must be one non-empty line of at most 512 bytes"
        );
        // allow_override without burst.
        let e = err(&base.replace(
            "burst = false\nallow_override = false\nreason = \"pseudo",
            "burst = false\nallow_override = true\nreason = \"pseudo",
        ));
        assert!(e.contains("`class.restricted.allow_override` is true but `burst` is false"), "{e}");
        // Controlled may burst while restricted may not.
        let e = err(&base.replace(
            "burst = false\nallow_override = false\nreason = \"identifiable",
            "burst = true\nallow_override = false\nreason = \"identifiable",
        ));
        assert!(
            e.contains("`class.controlled.burst` is true but the less sensitive class `restricted` may not burst"),
            "{e}"
        );
        // Size bound.
        let big = format!("{base}\n#{}", "x".repeat(MAX_POLICY_BYTES));
        assert!(matches!(PlacementPolicy::parse(&big, "site.toml"), Err(PolicyError::TooLarge { .. })));
    }

    #[test]
    fn load_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("placement.toml");
        let e = PlacementPolicy::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("placement policy {}: ", path.display())), "{e}");
        std::fs::write(&path, PlacementPolicy::embedded_text()).unwrap();
        let p = PlacementPolicy::load(&path).unwrap();
        assert_eq!(p.origin(), path.display().to_string());
        assert_eq!(p.burst_after_wait_secs(), PlacementPolicy::embedded().burst_after_wait_secs());
    }

    #[test]
    fn names_and_formats() {
        for p in [Partition::Onprem, Partition::Cloud] {
            assert_eq!(p.as_str().parse::<Partition>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert!("aws".parse::<Partition>().is_err());
        assert_eq!(fmt_duration(45), "45s");
        assert_eq!(fmt_duration(1800), "30m");
        assert_eq!(fmt_duration(750), "12m30s");
        assert_eq!(fmt_duration(4800), "1h20m");
        assert_eq!(fmt_duration(7200), "2h");
        assert_eq!(fmt_duration(86_400 * 2 + 3 * 3600 + 59), "2d3h");
        assert_eq!(fmt_hours(200.0), "200");
        assert_eq!(fmt_hours(12.5), "12.5");
        assert_eq!(fmt_hours(0.0), "0");
        let got = PlacementPolicy::embedded().decide(&req(Classification::Public, 8, 3600), &busy()).unwrap();
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["partition"], "cloud");
        assert_eq!(json["basis"], "burst");
        assert_eq!(json["estimated_wait_secs"], 7200);
    }
}
