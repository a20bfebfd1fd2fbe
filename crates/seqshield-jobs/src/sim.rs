//! `seqshield burst-sim TRACE`: replays a job trace through the placement
//! policy against a simulated cluster, to see what bursting buys.
//!
//! The simulation is discrete-event: events are job arrivals and job ends.
//! Each partition keeps a strict first-in-first-out queue; whenever cores
//! are freed or a job arrives, jobs are started from the head of the queue
//! while the head fits (no backfill). At the same instant, ends are handled
//! first, then arrivals in trace order. Every arrival is placed by the same
//! [`PlacementPolicy::decide`] the job service uses, given the on-prem
//! running jobs and queue at that instant and the cloud core-hours
//! committed so far that day (the budget resets every [`DAY_SECS`] of
//! simulated time). A job's requested time is its true runtime, so the
//! wait estimate the policy sees is exact in the simulation.
//!
//! The cloud partition is unbounded unless [`SimConfig::cloud_cores`] is
//! set; each cloud job first spends [`SimConfig::cloud_startup_secs`]
//! holding its cores while a node boots, counted as wait. The same trace is
//! run a second time with everything on-prem, for comparison.
//!
//! Trace format (`docs/jobs-placement.md`): CSV with the header
//! `arrival_s,cores,runtime_s,classification`, `#` comment lines and blank
//! lines allowed, arrivals in non-decreasing order.
//!
//! ```
//! use seqshield_jobs::placement::PlacementPolicy;
//! use seqshield_jobs::sim::{parse_trace, simulate, SimConfig};
//!
//! let trace = parse_trace(
//!     "arrival_s,cores,runtime_s,classification\n0,8,3600,public\n0,8,3600,public\n",
//!     "example",
//! )
//! .unwrap();
//! let report = simulate(&trace, &PlacementPolicy::embedded(), &SimConfig::new(8));
//! // Without bursting the second job waits an hour; with it, it bursts.
//! assert_eq!(report.without_bursting.max_wait_secs, 3600);
//! assert_eq!(report.jobs_burst, 1);
//! assert_eq!(report.with_bursting.max_wait_secs, 0);
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use seqshield_format::classification::UnknownClassification;
use seqshield_format::Classification;
use serde::Serialize;

use crate::placement::{
    fmt_duration, fmt_hours, Basis, ClusterLoad, JobLoad, Partition, PlacementPolicy, PlacementRequest,
};

/// Length of a simulated day, after which the cloud budget resets.
pub const DAY_SECS: u64 = 86_400;
/// Largest trace read, in bytes.
pub const MAX_TRACE_BYTES: usize = 64 << 20;
/// Most jobs in one trace.
pub const MAX_TRACE_JOBS: usize = 1_000_000;
/// Most cores one trace job may ask for.
pub const MAX_JOB_CORES: u32 = 1 << 16;
/// Longest runtime of one trace job (a year).
pub const MAX_JOB_RUNTIME_SECS: u64 = 365 * DAY_SECS;
/// Latest arrival in a trace (ten years).
pub const MAX_ARRIVAL_SECS: u64 = 3650 * DAY_SECS;
/// The trace's header line.
pub const TRACE_HEADER: &str = "arrival_s,cores,runtime_s,classification";

/// One job of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceJob {
    /// Submission time, seconds from the start of the trace.
    pub arrival_secs: u64,
    /// Cores it needs.
    pub cores: u32,
    /// How long it runs once started (also its requested time).
    pub runtime_secs: u64,
    /// Its data classification.
    pub classification: Classification,
}

/// A parsed trace, arrivals in non-decreasing order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The jobs, in arrival order.
    pub jobs: Vec<TraceJob>,
}

/// A trace could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Reading the file failed.
    #[error("trace {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The trace is larger than [`MAX_TRACE_BYTES`].
    #[error("trace {origin}: larger than {MAX_TRACE_BYTES} bytes")]
    TooLarge {
        /// Where the text came from.
        origin: String,
    },
    /// The trace has no header line.
    #[error("trace {origin}: empty (expected the header {TRACE_HEADER:?})")]
    Empty {
        /// Where the text came from.
        origin: String,
    },
    /// One line is wrong.
    #[error("trace {origin} line {line}: {problem}")]
    Line {
        /// Where the text came from.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
}

/// What is wrong with one trace line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The first line that is not a comment is not [`TRACE_HEADER`].
    #[error("expected the header {TRACE_HEADER:?}, found {0:?}")]
    Header(String),
    /// Not four comma-separated fields.
    #[error("expected 4 comma-separated fields, found {0}")]
    FieldCount(usize),
    /// A number field is not a non-negative integer.
    #[error("`{field}` is not a non-negative integer: {value:?}")]
    BadNumber {
        /// The column.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// Unknown classification.
    #[error("`classification`: {0}")]
    BadClass(UnknownClassification),
    /// A number is out of its range.
    #[error("`{field}` must be between {min} and {max}, found {value}")]
    OutOfRange {
        /// The column.
        field: &'static str,
        /// Smallest value allowed.
        min: u64,
        /// Largest value allowed.
        max: u64,
        /// The value found.
        value: u64,
    },
    /// The arrival is earlier than the previous job's.
    #[error("`arrival_s` {arrival} is earlier than the previous job's {previous}: sort the trace by arrival")]
    Unsorted {
        /// This job's arrival.
        arrival: u64,
        /// The previous job's arrival.
        previous: u64,
    },
    /// More than [`MAX_TRACE_JOBS`] jobs.
    #[error("more than {MAX_TRACE_JOBS} jobs")]
    TooManyJobs,
}

/// Parses a trace; `origin` (a path, usually) is named in errors, with the
/// 1-based line number.
pub fn parse_trace(text: &str, origin: &str) -> Result<Trace, SimError> {
    if text.len() > MAX_TRACE_BYTES {
        return Err(SimError::TooLarge { origin: origin.to_owned() });
    }
    let line_err = |line, problem| SimError::Line { origin: origin.to_owned(), line, problem };
    let mut lines =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((n, header)) = lines.next() else {
        return Err(SimError::Empty { origin: origin.to_owned() });
    };
    if header.split(',').map(str::trim).ne(TRACE_HEADER.split(',')) {
        return Err(line_err(n, LineProblem::Header(header.to_owned())));
    }
    let mut jobs: Vec<TraceJob> = Vec::new();
    for (n, line) in lines {
        if jobs.len() == MAX_TRACE_JOBS {
            return Err(line_err(n, LineProblem::TooManyJobs));
        }
        let job = parse_line(line).map_err(|p| line_err(n, p))?;
        if let Some(prev) = jobs.last().filter(|p| p.arrival_secs > job.arrival_secs) {
            return Err(line_err(n, LineProblem::Unsorted { arrival: job.arrival_secs, previous: prev.arrival_secs }));
        }
        jobs.push(job);
    }
    Ok(Trace { jobs })
}

/// Reads and parses a trace file.
pub fn load_trace(path: &Path) -> Result<Trace, SimError> {
    let io = |source| SimError::Io { path: path.to_owned(), source };
    let origin = path.display().to_string();
    if std::fs::metadata(path).map_err(io)?.len() > MAX_TRACE_BYTES as u64 {
        return Err(SimError::TooLarge { origin });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse_trace(&text, &origin)
}

fn parse_line(line: &str) -> Result<TraceJob, LineProblem> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [arrival, cores, runtime, class] = fields[..] else {
        return Err(LineProblem::FieldCount(fields.len()));
    };
    let number = |field: &'static str, value: &str, min: u64, max: u64| {
        let v: u64 = value
            .parse()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| LineProblem::BadNumber { field, value: value.to_owned() })?;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(LineProblem::OutOfRange { field, min, max, value: v })
        }
    };
    let arrival_secs = number("arrival_s", arrival, 0, MAX_ARRIVAL_SECS)?;
    let cores = number("cores", cores, 1, u64::from(MAX_JOB_CORES))?;
    let runtime_secs = number("runtime_s", runtime, 1, MAX_JOB_RUNTIME_SECS)?;
    let classification = class.parse().map_err(LineProblem::BadClass)?;
    let cores = u32::try_from(cores).expect("bounded by MAX_JOB_CORES");
    Ok(TraceJob { arrival_secs, cores, runtime_secs, classification })
}

/// The simulated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SimConfig {
    /// Cores in the on-prem partition.
    pub onprem_cores: u32,
    /// Cores in the cloud partition; `None` for unbounded.
    pub cloud_cores: Option<u32>,
    /// Seconds a cloud job waits for its node to boot (0: instant).
    pub cloud_startup_secs: u64,
}

impl SimConfig {
    /// `onprem_cores` on-prem, an unbounded cloud partition, instant nodes.
    pub fn new(onprem_cores: u32) -> Self {
        Self { onprem_cores, cloud_cores: None, cloud_startup_secs: 0 }
    }
}

/// Queue waits of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Jobs that ran on-prem.
    pub onprem_jobs: usize,
    /// Jobs that ran on the cloud partition.
    pub cloud_jobs: usize,
    /// Jobs that could not be placed (too large for every partition they
    /// may use); not counted in the waits.
    pub rejected: usize,
    /// Mean queue wait (start − arrival, plus cloud node start-up).
    pub mean_wait_secs: f64,
    /// 95th percentile wait (nearest rank).
    pub p95_wait_secs: u64,
    /// Longest wait.
    pub max_wait_secs: u64,
    /// When the last job ended, from the start of the trace.
    pub makespan_secs: u64,
}

/// Counts for one classification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassStats {
    /// The classification.
    pub classification: Classification,
    /// Jobs of this class in the trace.
    pub jobs: usize,
    /// Jobs that burst to cloud.
    pub burst: usize,
    /// Jobs whose wait was over the threshold but stayed on-prem for lack
    /// of budget.
    pub budget_refused: usize,
    /// Mean wait with bursting.
    pub mean_wait_secs: f64,
    /// Mean wait with everything on-prem.
    pub mean_wait_secs_without_bursting: f64,
}

/// What `burst-sim` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// Jobs in the trace.
    pub jobs: usize,
    /// Simulated days covered by arrivals (budget periods).
    pub days: u64,
    /// The cluster simulated.
    pub config: SimConfig,
    /// The policy's wait threshold.
    pub burst_after_wait_secs: u64,
    /// The policy's daily cloud budget.
    pub cloud_core_hours_per_day: f64,
    /// Everything placed by the policy.
    pub with_bursting: RunStats,
    /// Everything on-prem.
    pub without_bursting: RunStats,
    /// Jobs placed on cloud.
    pub jobs_burst: usize,
    /// Cloud core-hours committed (`cores × runtime` of cloud jobs).
    pub cloud_core_hours: f64,
    /// Placements where the wait was over the threshold but the budget
    /// kept the job on-prem.
    pub budget_refused: usize,
    /// Per classification, least sensitive first.
    pub by_class: Vec<ClassStats>,
}

/// Runs the trace with bursting (placed by `policy`) and without
/// (everything on-prem), and compares them.
pub fn simulate(trace: &Trace, policy: &PlacementPolicy, cfg: &SimConfig) -> SimReport {
    let with = run(trace, Some(policy), cfg);
    let without = run(trace, None, cfg);
    let by_class = Classification::ALL
        .into_iter()
        .map(|c| {
            let of = |r: &Run| -> Vec<u64> {
                trace
                    .jobs
                    .iter()
                    .zip(&r.jobs)
                    .filter(|(j, _)| j.classification == c)
                    .filter_map(|(_, o)| o.wait)
                    .collect()
            };
            let in_class = || trace.jobs.iter().zip(&with.jobs).filter(move |(j, _)| j.classification == c);
            ClassStats {
                classification: c,
                jobs: in_class().count(),
                burst: in_class().filter(|(_, o)| o.partition == Some(Partition::Cloud)).count(),
                budget_refused: in_class().filter(|(_, o)| o.basis == Some(Basis::BudgetExhausted)).count(),
                mean_wait_secs: mean(&of(&with)),
                mean_wait_secs_without_bursting: mean(&of(&without)),
            }
        })
        .collect();
    SimReport {
        jobs: trace.jobs.len(),
        days: trace.jobs.last().map_or(0, |j| j.arrival_secs / DAY_SECS + 1),
        config: *cfg,
        burst_after_wait_secs: policy.burst_after_wait_secs(),
        cloud_core_hours_per_day: policy.cloud_core_hours_per_day(),
        jobs_burst: with.jobs.iter().filter(|o| o.partition == Some(Partition::Cloud)).count(),
        cloud_core_hours: with.cloud_core_hours_by_day.iter().sum(),
        budget_refused: with.jobs.iter().filter(|o| o.basis == Some(Basis::BudgetExhausted)).count(),
        with_bursting: with.stats(),
        without_bursting: without.stats(),
        by_class,
    }
}

impl SimReport {
    /// A table for the command line.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let cloud = match self.config.cloud_cores {
            Some(c) => format!("{c} cores"),
            None => "unbounded".to_owned(),
        };
        let _ = writeln!(
            s,
            "burst-sim: {} jobs over {} day(s); on-prem {} cores, cloud {cloud} (node start-up {})",
            self.jobs,
            self.days,
            self.config.onprem_cores,
            fmt_duration(self.config.cloud_startup_secs)
        );
        let _ = writeln!(
            s,
            "policy: burst when the on-prem wait exceeds {}; cloud budget {} core-hours/day\n",
            fmt_duration(self.burst_after_wait_secs),
            fmt_hours(self.cloud_core_hours_per_day)
        );
        let (a, b) = (&self.without_bursting, &self.with_bursting);
        let _ = writeln!(s, "{:<16}{:>18}{:>18}", "", "without bursting", "with bursting");
        let row = |s: &mut String, name: &str, x: String, y: String| {
            let _ = writeln!(s, "{name:<16}{x:>18}{y:>18}");
        };
        row(
            &mut s,
            "mean wait",
            fmt_duration(a.mean_wait_secs.round() as u64),
            fmt_duration(b.mean_wait_secs.round() as u64),
        );
        row(&mut s, "p95 wait", fmt_duration(a.p95_wait_secs), fmt_duration(b.p95_wait_secs));
        row(&mut s, "max wait", fmt_duration(a.max_wait_secs), fmt_duration(b.max_wait_secs));
        row(&mut s, "on-prem jobs", a.onprem_jobs.to_string(), b.onprem_jobs.to_string());
        row(&mut s, "cloud jobs", a.cloud_jobs.to_string(), b.cloud_jobs.to_string());
        row(&mut s, "rejected", a.rejected.to_string(), b.rejected.to_string());
        row(&mut s, "makespan", fmt_duration(a.makespan_secs), fmt_duration(b.makespan_secs));
        let _ = writeln!(
            s,
            "\nburst: {} jobs, {} cloud core-hours (budget {} over {} day(s)); {} bursts refused for budget\n",
            self.jobs_burst,
            fmt_hours(self.cloud_core_hours),
            fmt_hours(self.cloud_core_hours_per_day * self.days as f64),
            self.days,
            self.budget_refused
        );
        let _ = writeln!(
            s,
            "{:<12}{:>7}{:>7}{:>16}{:>18}{:>16}",
            "class", "jobs", "burst", "budget-refused", "mean wait without", "mean wait with"
        );
        for c in &self.by_class {
            let _ = writeln!(
                s,
                "{:<12}{:>7}{:>7}{:>16}{:>18}{:>16}",
                c.classification.as_str(),
                c.jobs,
                c.burst,
                c.budget_refused,
                fmt_duration(c.mean_wait_secs_without_bursting.round() as u64),
                fmt_duration(c.mean_wait_secs.round() as u64)
            );
        }
        s
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_text())
    }
}

/// What happened to one job in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Outcome {
    /// Where it ran; `None` if rejected.
    partition: Option<Partition>,
    /// Why it was placed there (bursting run only).
    basis: Option<Basis>,
    /// The policy's on-prem wait estimate (bursting run only).
    estimated_wait: Option<u64>,
    /// When it got its cores.
    start: Option<u64>,
    /// When it released them.
    end: Option<u64>,
    /// Its queue wait, including cloud node start-up.
    wait: Option<u64>,
}

/// One run's outcomes.
struct Run {
    jobs: Vec<Outcome>,
    cloud_core_hours_by_day: Vec<f64>,
}

impl Run {
    fn stats(&self) -> RunStats {
        let mut waits: Vec<u64> = self.jobs.iter().filter_map(|o| o.wait).collect();
        waits.sort_unstable();
        let on = |p| self.jobs.iter().filter(|o| o.partition == Some(p)).count();
        RunStats {
            onprem_jobs: on(Partition::Onprem),
            cloud_jobs: on(Partition::Cloud),
            rejected: self.jobs.iter().filter(|o| o.partition.is_none()).count(),
            mean_wait_secs: mean(&waits),
            p95_wait_secs: percentile(&waits, 95),
            max_wait_secs: waits.last().copied().unwrap_or(0),
            makespan_secs: self.jobs.iter().filter_map(|o| o.end).max().unwrap_or(0),
        }
    }
}

fn mean(v: &[u64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least `p`% of the values at or below it.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// One partition: capacity, FIFO queue, running jobs by end time.
struct Pool {
    capacity: Option<u64>,
    startup: u64,
    used: u64,
    queue: VecDeque<usize>,
    running: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Pool {
    fn new(capacity: Option<u32>, startup: u64) -> Self {
        Self { capacity: capacity.map(u64::from), startup, used: 0, queue: VecDeque::new(), running: BinaryHeap::new() }
    }

    fn can_ever_run(&self, cores: u32) -> bool {
        self.capacity.is_none_or(|c| u64::from(cores) <= c)
    }

    fn next_end(&self) -> Option<u64> {
        self.running.peek().map(|Reverse((end, _))| *end)
    }

    /// Releases the cores of jobs that ended by `now`.
    fn complete(&mut self, now: u64, jobs: &[TraceJob]) {
        while let Some(&Reverse((end, i))) = self.running.peek() {
            if end > now {
                break;
            }
            self.running.pop();
            self.used -= u64::from(jobs[i].cores);
        }
    }

    /// Starts jobs from the head of the queue while the head fits.
    fn dispatch(&mut self, now: u64, jobs: &[TraceJob], out: &mut [Outcome]) {
        while let Some(&i) = self.queue.front() {
            let cores = u64::from(jobs[i].cores);
            if self.capacity.is_some_and(|c| self.used + cores > c) {
                break;
            }
            self.queue.pop_front();
            self.used += cores;
            let end = now + self.startup + jobs[i].runtime_secs;
            out[i].start = Some(now);
            out[i].end = Some(end);
            out[i].wait = Some(now - jobs[i].arrival_secs + self.startup);
            self.running.push(Reverse((end, i)));
        }
    }

    /// The on-prem load as the policy sees it.
    fn load(&self, now: u64, jobs: &[TraceJob]) -> (Vec<JobLoad>, Vec<JobLoad>) {
        let running = self
            .running
            .iter()
            .map(|Reverse((end, i))| JobLoad { cores: jobs[*i].cores, remaining_secs: end - now })
            .collect();
        let pending = self
            .queue
            .iter()
            .map(|&i| JobLoad { cores: jobs[i].cores, remaining_secs: jobs[i].runtime_secs })
            .collect();
        (running, pending)
    }
}

/// One discrete-event run. `policy: None` keeps everything on-prem.
fn run(trace: &Trace, policy: Option<&PlacementPolicy>, cfg: &SimConfig) -> Run {
    let jobs = &trace.jobs;
    let mut out = vec![Outcome::default(); jobs.len()];
    let mut onprem = Pool::new(Some(cfg.onprem_cores), 0);
    let mut cloud = Pool::new(cfg.cloud_cores, cfg.cloud_startup_secs);
    let days = jobs.last().map_or(0, |j| j.arrival_secs / DAY_SECS + 1);
    let mut by_day = vec![0.0f64; usize::try_from(days).unwrap_or(usize::MAX)];
    let mut next = 0;
    loop {
        let now = match (
            jobs.get(next).map(|j| j.arrival_secs),
            [onprem.next_end(), cloud.next_end()].into_iter().flatten().min(),
        ) {
            (None, None) => break,
            (Some(t), None) | (None, Some(t)) => t,
            (Some(a), Some(e)) => a.min(e),
        };
        onprem.complete(now, jobs);
        cloud.complete(now, jobs);
        onprem.dispatch(now, jobs, &mut out);
        cloud.dispatch(now, jobs, &mut out);
        while let Some(job) = jobs.get(next).filter(|j| j.arrival_secs == now) {
            let i = next;
            next += 1;
            let partition = match policy {
                None => Some(Partition::Onprem).filter(|_| onprem.can_ever_run(job.cores)),
                Some(policy) => {
                    let day = usize::try_from(now / DAY_SECS).expect("within the trace's days");
                    let (running, pending) = onprem.load(now, jobs);
                    let load = ClusterLoad {
                        onprem_cores: cfg.onprem_cores,
                        running,
                        pending,
                        cloud_core_hours_used_today: by_day[day],
                    };
                    let req = PlacementRequest {
                        classification: job.classification,
                        cores: job.cores,
                        runtime_secs: job.runtime_secs,
                        override_partition: None,
                    };
                    match policy.decide(&req, &load) {
                        Ok(p) if p.partition == Partition::Cloud && !cloud.can_ever_run(job.cores) => None,
                        Ok(p) => {
                            out[i].basis = Some(p.basis);
                            out[i].estimated_wait = p.estimated_wait_secs;
                            by_day[day] += p.cloud_core_hours;
                            Some(p.partition)
                        }
                        Err(_) => None,
                    }
                }
            };
            out[i].partition = partition;
            match partition {
                Some(Partition::Onprem) => {
                    onprem.queue.push_back(i);
                    onprem.dispatch(now, jobs, &mut out);
                }
                Some(Partition::Cloud) => {
                    cloud.queue.push_back(i);
                    cloud.dispatch(now, jobs, &mut out);
                }
                None => {}
            }
        }
    }
    debug_assert!(onprem.queue.is_empty() && cloud.queue.is_empty(), "every placed job ran");
    Run { jobs: out, cloud_core_hours_by_day: by_day }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace shipped in `traces/` (see its README).
    const SHIPPED: &str = include_str!("../traces/sequencing-week.csv");
    /// The on-prem size used in `docs/jobs-placement.md`.
    const DOC_ONPREM_CORES: u32 = 256;

    fn shipped() -> Trace {
        parse_trace(SHIPPED, "traces/sequencing-week.csv").unwrap()
    }

    fn policy_with_budget(core_hours: f64) -> PlacementPolicy {
        PlacementPolicy::embedded().with_cloud_budget(core_hours).unwrap()
    }

    fn err(text: &str) -> String {
        parse_trace(text, "t.csv").unwrap_err().to_string()
    }

    #[test]
    fn shipped_trace_parses() {
        let t = shipped();
        assert!((300..=5000).contains(&t.jobs.len()), "{}", t.jobs.len());
        assert!(SHIPPED.len() < 200 * 1024);
        for c in Classification::ALL {
            assert!(t.jobs.iter().any(|j| j.classification == c), "{c} present");
        }
    }

    #[test]
    fn trace_parses_comments_blank_lines_and_spaces() {
        let t = parse_trace(
            "# a comment\n\n arrival_s, cores ,runtime_s,classification\r\n0,4,60,public\n# mid\n10, 2 ,5,controlled\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            t.jobs,
            [
                TraceJob { arrival_secs: 0, cores: 4, runtime_secs: 60, classification: Classification::Public },
                TraceJob { arrival_secs: 10, cores: 2, runtime_secs: 5, classification: Classification::Controlled },
            ]
        );
    }

    #[test]
    fn trace_errors_carry_line_numbers() {
        let h = "# c\narrival_s,cores,runtime_s,classification\n";
        assert_eq!(err(""), format!("trace t.csv: empty (expected the header {TRACE_HEADER:?})"));
        assert_eq!(err("# only\n"), format!("trace t.csv: empty (expected the header {TRACE_HEADER:?})"));
        assert!(err("# c\narrival,cores\n").starts_with("trace t.csv line 2: expected the header"));
        assert_eq!(
            err(&format!("{h}0,1,1,public\n0,1,1\n")),
            "trace t.csv line 4: expected 4 comma-separated fields, found 3"
        );
        assert_eq!(
            err(&format!("{h}0,1,1,public\n\n1,x,1,public\n")),
            "trace t.csv line 5: `cores` is not a non-negative integer: \"x\""
        );
        assert_eq!(
            err(&format!("{h}-1,1,1,public\n")),
            "trace t.csv line 3: `arrival_s` is not a non-negative integer: \"-1\""
        );
        assert_eq!(
            err(&format!("{h}+1,1,1,public\n")),
            "trace t.csv line 3: `arrival_s` is not a non-negative integer: \"+1\""
        );
        assert_eq!(
            err(&format!("{h}0,0,1,public\n")),
            "trace t.csv line 3: `cores` must be between 1 and 65536, found 0"
        );
        assert!(err(&format!("{h}0,1,0,public\n")).starts_with("trace t.csv line 3: `runtime_s` must be between 1 and"));
        assert!(err(&format!("{h}0,1,1,secret\n"))
            .starts_with("trace t.csv line 3: `classification`: unknown classification \"secret\""));
        assert_eq!(
            err(&format!("{h}10,1,1,public\n9,1,1,public\n")),
            "trace t.csv line 4: `arrival_s` 9 is earlier than the previous job's 10: sort the trace by arrival"
        );
    }

    #[test]
    fn load_trace_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        assert!(load_trace(&path).unwrap_err().to_string().starts_with(&format!("trace {}: ", path.display())));
        std::fs::write(&path, "arrival_s,cores,runtime_s,classification\n0,1\n").unwrap();
        assert_eq!(
            load_trace(&path).unwrap_err().to_string(),
            format!("trace {} line 2: expected 4 comma-separated fields, found 2", path.display())
        );
    }

    /// Checks the invariants every run must keep, whatever the policy.
    fn check_invariants(trace: &Trace, run: &Run, cfg: &SimConfig) {
        for (j, o) in trace.jobs.iter().zip(&run.jobs) {
            match (o.partition, o.start, o.end) {
                (Some(_), Some(s), Some(e)) => {
                    assert!(s >= j.arrival_secs, "job started before it arrived: {j:?} {o:?}");
                    assert!(e >= s + j.runtime_secs);
                }
                (None, None, None) => {}
                _ => panic!("placed jobs run, rejected ones do not: {o:?}"),
            }
        }
        // No partition over capacity at any time: sweep start/end events.
        for (p, cap) in [(Partition::Onprem, Some(cfg.onprem_cores)), (Partition::Cloud, cfg.cloud_cores)] {
            let mut events: Vec<(u64, i64)> = Vec::new();
            for (j, o) in trace.jobs.iter().zip(&run.jobs).filter(|(_, o)| o.partition == Some(p)) {
                events.push((o.start.unwrap(), i64::from(j.cores)));
                events.push((o.end.unwrap(), -i64::from(j.cores)));
            }
            // Ends before starts at the same instant.
            events.sort_by_key(|&(t, d)| (t, d));
            let mut used = 0i64;
            for (t, d) in events {
                used += d;
                if let Some(c) = cap {
                    assert!(used <= i64::from(c), "{p} over capacity at t={t}: {used} > {c}");
                }
            }
        }
    }

    #[test]
    fn invariants_hold_on_the_shipped_trace() {
        let trace = shipped();
        for (budget, cfg) in [
            (PlacementPolicy::embedded().cloud_core_hours_per_day(), SimConfig::new(DOC_ONPREM_CORES)),
            (1e12, SimConfig::new(DOC_ONPREM_CORES)),
            (1e12, SimConfig { cloud_cores: Some(64), cloud_startup_secs: 300, ..SimConfig::new(128) }),
            (50.0, SimConfig::new(64)),
        ] {
            let policy = policy_with_budget(budget);
            let with = run(&trace, Some(&policy), &cfg);
            let without = run(&trace, None, &cfg);
            check_invariants(&trace, &with, &cfg);
            check_invariants(&trace, &without, &cfg);
            // Restricted and controlled jobs never burst.
            for (j, o) in trace.jobs.iter().zip(&with.jobs) {
                if j.classification >= Classification::Restricted {
                    assert_ne!(o.partition, Some(Partition::Cloud), "{j:?}");
                }
            }
            // The budget holds every day, so over the whole trace too.
            for (day, spent) in with.cloud_core_hours_by_day.iter().enumerate() {
                assert!(*spent <= budget + 1e-9, "day {day}: {spent} > {budget}");
            }
            let days = with.cloud_core_hours_by_day.len() as f64;
            assert!(with.cloud_core_hours_by_day.iter().sum::<f64>() <= budget * days + 1e-6);
            // The policy's estimate is exact in a strict-FIFO simulation
            // whose jobs run to their requested time.
            for o in with.jobs.iter().filter(|o| o.partition == Some(Partition::Onprem)) {
                assert_eq!(o.estimated_wait, o.wait, "{o:?}");
            }
        }
    }

    /// With an unbounded cloud that starts nodes no slower than the wait
    /// threshold, bursting takes jobs out of the on-prem FIFO, which can
    /// only start the rest earlier: no job waits longer, so neither does
    /// the mean.
    #[test]
    fn bursting_never_increases_waits_on_the_shipped_trace() {
        let trace = shipped();
        let cfg = SimConfig { cloud_startup_secs: 300, ..SimConfig::new(DOC_ONPREM_CORES) };
        for budget in [1e12, PlacementPolicy::embedded().cloud_core_hours_per_day()] {
            let policy = policy_with_budget(budget);
            let with = run(&trace, Some(&policy), &cfg);
            let without = run(&trace, None, &cfg);
            for (i, (w, wo)) in with.jobs.iter().zip(&without.jobs).enumerate() {
                assert!(w.wait <= wo.wait, "job {i}: {w:?} vs {wo:?}");
            }
            let report = simulate(&trace, &policy, &cfg);
            assert!(report.with_bursting.mean_wait_secs <= report.without_bursting.mean_wait_secs);
            assert!(report.jobs_burst > 0);
        }
    }

    #[test]
    fn a_zero_budget_is_the_same_as_no_bursting() {
        let trace = shipped();
        let cfg = SimConfig::new(DOC_ONPREM_CORES);
        let report = simulate(&trace, &policy_with_budget(0.0), &cfg);
        assert_eq!(report.jobs_burst, 0);
        assert_eq!(report.cloud_core_hours, 0.0);
        assert!(report.budget_refused > 0);
        assert_eq!(report.with_bursting, report.without_bursting);
    }

    #[test]
    fn hand_computed_small_trace() {
        // 8 on-prem cores. Job 0 fills them for 2 h. Job 1 (public) would
        // wait 2 h: burst. Job 2 (controlled) waits 2 h on-prem. Job 3
        // (public, 1 h later) would wait 1 h: burst, but the budget (10
        // core-hours) has 2 left: stays, waits until job 2 ends at 4h.
        let trace = parse_trace(
            "arrival_s,cores,runtime_s,classification\n\
             0,8,7200,internal\n\
             0,8,3600,public\n\
             0,8,7200,controlled\n\
             3600,4,3600,public\n\
             86400,4,3600,public\n\
             86400,8,3600,public\n",
            "t",
        )
        .unwrap();
        let r = simulate(&trace, &policy_with_budget(10.0), &SimConfig::new(8));
        assert_eq!(r.days, 2);
        assert_eq!(r.jobs_burst, 2); // job 1 on day 0; job 5 on day 1 (new budget)
        assert_eq!(r.budget_refused, 1); // job 3
        assert_eq!(r.cloud_core_hours, 16.0);
        // Waits with bursting: 0, 0 (cloud), 7200, 10800 (until 4h: 14400 - 3600), 0, 0 (cloud).
        assert_eq!(r.with_bursting.max_wait_secs, 10_800);
        assert_eq!(r.with_bursting.mean_wait_secs, (7200.0 + 10_800.0) / 6.0);
        assert_eq!(r.with_bursting.p95_wait_secs, 10_800);
        assert_eq!((r.with_bursting.onprem_jobs, r.with_bursting.cloud_jobs), (4, 2));
        // Without: 0, 7200, 10800 (after job 1), 14400 (after job 2 ends at
        // 18000, minus 3600), 0, 3600 (behind job 4 on day 1).
        assert_eq!(r.without_bursting.max_wait_secs, 14_400);
        assert_eq!(r.without_bursting.mean_wait_secs, (7200.0 + 10_800.0 + 14_400.0 + 3600.0) / 6.0);
        assert_eq!(r.without_bursting.makespan_secs, 86_400 + 7200);
        let public = &r.by_class[0];
        assert_eq!((public.jobs, public.burst, public.budget_refused), (4, 2, 1));
        let text = r.render_text();
        assert!(text.contains("max wait"), "{text}");
        assert!(text.contains("controlled"), "{text}");
    }

    #[test]
    fn jobs_too_large_for_every_partition_are_rejected() {
        let trace = parse_trace(
            "arrival_s,cores,runtime_s,classification\n0,16,60,public\n0,16,60,restricted\n0,4,60,restricted\n",
            "t",
        )
        .unwrap();
        let cfg = SimConfig { cloud_cores: Some(8), ..SimConfig::new(8) };
        let r = simulate(&trace, &PlacementPolicy::embedded(), &cfg);
        assert_eq!((r.with_bursting.rejected, r.without_bursting.rejected), (2, 2));
        let cfg = SimConfig::new(8); // unbounded cloud takes the public one
        let r = simulate(&trace, &PlacementPolicy::embedded(), &cfg);
        assert_eq!((r.with_bursting.rejected, r.jobs_burst), (1, 1));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&v, 95), 19);
        assert_eq!(percentile(&v, 100), 20);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[], 95), 0);
    }

    /// Prints the numbers quoted in docs/jobs-placement.md:
    /// `cargo test -p seqshield-jobs shipped_trace_report -- --nocapture`.
    #[test]
    fn shipped_trace_report() {
        let trace = shipped();
        let report = simulate(&trace, &PlacementPolicy::embedded(), &SimConfig::new(DOC_ONPREM_CORES));
        println!("{}", report.render_text());
        let unlimited = simulate(&trace, &policy_with_budget(1e12), &SimConfig::new(DOC_ONPREM_CORES));
        println!("with an unlimited budget:\n{}", unlimited.render_text());
        // The docs' sizing: bursting matters (hours of wait at peak without it).
        assert!(report.without_bursting.max_wait_secs >= 2 * 3600);
        assert!(report.with_bursting.mean_wait_secs < report.without_bursting.mean_wait_secs);
    }
}
