//! GPU anomaly rules over NVML snapshots, as pure functions.
//!
//! The caller takes a [`GpuSnapshot`] (with the `cuda` feature,
//! `crate::nvml::snapshot` reads one through NVML), applies the rules and
//! writes each [`GpuEvent`] to the audit log.

use std::collections::BTreeSet;

/// The most processes a snapshot keeps: a bound on what one NVML answer can
/// make us allocate and audit.
pub const MAX_PROCESSES: usize = 1024;

/// A process NVML lists as using the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GpuProcess {
    /// Operating-system process id.
    pub pid: u32,
    /// Device memory it uses, where NVML can tell.
    pub used_bytes: Option<u64>,
}

impl GpuProcess {
    /// A process entry.
    pub fn new(pid: u32, used_bytes: Option<u64>) -> Self {
        Self { pid, used_bytes }
    }
}

/// Volatile ECC error counts (since the driver loaded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EccCounts {
    /// Single-bit, corrected errors.
    pub corrected: u64,
    /// Double-bit, uncorrected errors.
    pub uncorrected: u64,
}

impl EccCounts {
    /// Counts.
    pub fn new(corrected: u64, uncorrected: u64) -> Self {
        Self { corrected, uncorrected }
    }
}

/// One device's state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GpuSnapshot {
    /// NVML device index.
    pub device: u32,
    /// Compute processes on the device (at most [`MAX_PROCESSES`]).
    pub processes: Vec<GpuProcess>,
    /// Device memory in use, bytes.
    pub memory_used_bytes: u64,
    /// ECC counts, or `None` where ECC is off or unsupported.
    pub ecc: Option<EccCounts>,
}

impl GpuSnapshot {
    /// A snapshot; `processes` is cut to [`MAX_PROCESSES`].
    pub fn new(device: u32, mut processes: Vec<GpuProcess>, memory_used_bytes: u64, ecc: Option<EccCounts>) -> Self {
        processes.truncate(MAX_PROCESSES);
        Self { device, processes, memory_used_bytes, ecc }
    }
}

/// Which ECC counter rose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EccKind {
    /// Corrected (single-bit).
    Corrected,
    /// Uncorrected (double-bit): data on the device may be corrupt.
    Uncorrected,
}

/// An anomaly to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GpuEvent {
    /// A process that is not a known seqshield job uses the GPU.
    ForeignProcess {
        /// Device index.
        device: u32,
        /// Its process id.
        pid: u32,
        /// Its device memory, where known.
        used_bytes: Option<u64>,
    },
    /// After a job ended, more memory is in use than before it began.
    MemoryNotReleased {
        /// Device index.
        device: u32,
        /// In use before the job.
        before_bytes: u64,
        /// In use after the job.
        after_bytes: u64,
        /// Growth tolerated.
        threshold_bytes: u64,
    },
    /// An ECC counter rose between two snapshots.
    EccErrors {
        /// Device index.
        device: u32,
        /// Which counter.
        ecc: EccKind,
        /// Count before.
        before: u64,
        /// Count after.
        after: u64,
    },
}

/// Processes on the GPU whose pid is not in `known_jobs`.
pub fn foreign_processes(snapshot: &GpuSnapshot, known_jobs: &BTreeSet<u32>) -> Vec<GpuEvent> {
    snapshot
        .processes
        .iter()
        .filter(|p| !known_jobs.contains(&p.pid))
        .map(|p| GpuEvent::ForeignProcess { device: snapshot.device, pid: p.pid, used_bytes: p.used_bytes })
        .collect()
}

/// Memory not released: usage after a job exceeds usage before it by more
/// than `threshold_bytes` (the driver's own bookkeeping varies a little).
pub fn memory_not_released(before: &GpuSnapshot, after: &GpuSnapshot, threshold_bytes: u64) -> Option<GpuEvent> {
    let growth = after.memory_used_bytes.saturating_sub(before.memory_used_bytes);
    (growth > threshold_bytes).then_some(GpuEvent::MemoryNotReleased {
        device: after.device,
        before_bytes: before.memory_used_bytes,
        after_bytes: after.memory_used_bytes,
        threshold_bytes,
    })
}

/// ECC counters that rose between `before` and `after`. A counter that went
/// down (driver reload) is not an event.
pub fn ecc_increases(before: &GpuSnapshot, after: &GpuSnapshot) -> Vec<GpuEvent> {
    let (Some(b), Some(a)) = (before.ecc, after.ecc) else {
        return Vec::new();
    };
    [(EccKind::Corrected, b.corrected, a.corrected), (EccKind::Uncorrected, b.uncorrected, a.uncorrected)]
        .into_iter()
        .filter(|&(_, was, now)| now > was)
        .map(|(ecc, was, now)| GpuEvent::EccErrors { device: after.device, ecc, before: was, after: now })
        .collect()
}

/// Every rule at once: foreign processes in `after`, memory not released
/// and ECC increases between `before` and `after`.
pub fn evaluate(
    before: &GpuSnapshot,
    after: &GpuSnapshot,
    known_jobs: &BTreeSet<u32>,
    threshold_bytes: u64,
) -> Vec<GpuEvent> {
    let mut events = foreign_processes(after, known_jobs);
    events.extend(memory_not_released(before, after, threshold_bytes));
    events.extend(ecc_increases(before, after));
    events
}

/// Follows one device across snapshots and turns changes into events:
///
/// * a foreign process (not a job by `is_job`) is reported when it first
///   appears, and again only after it has been gone;
/// * an ECC counter that rose since the previous snapshot;
/// * memory not released: when the last job process leaves the device,
///   memory in use is compared with the use before the first job arrived
///   (only if the same foreign processes were present both times, since
///   their memory would otherwise be blamed on the jobs).
#[derive(Debug, Clone)]
pub struct Watch {
    slack_bytes: u64,
    last: Option<GpuSnapshot>,
    foreign_seen: BTreeSet<u32>,
    /// Memory in use, and the foreign pids, when no job was on the device.
    idle: Option<(u64, BTreeSet<u32>)>,
    jobs_present: bool,
}

impl Watch {
    /// A watch that tolerates `slack_bytes` of growth after jobs.
    pub fn new(slack_bytes: u64) -> Self {
        Self { slack_bytes, last: None, foreign_seen: BTreeSet::new(), idle: None, jobs_present: false }
    }

    /// Takes the next snapshot; returns the events it raises.
    pub fn observe(&mut self, snapshot: GpuSnapshot, is_job: impl Fn(u32) -> bool) -> Vec<GpuEvent> {
        let (jobs, foreign): (Vec<&GpuProcess>, Vec<&GpuProcess>) =
            snapshot.processes.iter().partition(|p| is_job(p.pid));
        let foreign_now: BTreeSet<u32> = foreign.iter().map(|p| p.pid).collect();
        let mut events: Vec<GpuEvent> = foreign
            .iter()
            .filter(|p| !self.foreign_seen.contains(&p.pid))
            .map(|p| GpuEvent::ForeignProcess { device: snapshot.device, pid: p.pid, used_bytes: p.used_bytes })
            .collect();
        if let Some(last) = &self.last {
            events.extend(ecc_increases(last, &snapshot));
        }
        if jobs.is_empty() {
            if self.jobs_present {
                if let Some((before, ref was_foreign)) = self.idle {
                    if *was_foreign == foreign_now {
                        let baseline = GpuSnapshot { memory_used_bytes: before, ..GpuSnapshot::default() };
                        events.extend(memory_not_released(&baseline, &snapshot, self.slack_bytes));
                    }
                }
            }
            self.idle = Some((snapshot.memory_used_bytes, foreign_now.clone()));
        }
        self.jobs_present = !jobs.is_empty();
        self.foreign_seen = foreign_now;
        self.last = Some(snapshot);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn snap(pids: &[u32], used: u64, ecc: Option<(u64, u64)>) -> GpuSnapshot {
        GpuSnapshot::new(
            0,
            pids.iter().map(|&p| GpuProcess::new(p, Some(MIB))).collect(),
            used,
            ecc.map(|(c, u)| EccCounts::new(c, u)),
        )
    }

    #[test]
    fn flags_only_unknown_processes() {
        let known = BTreeSet::from([100, 200]);
        let events = foreign_processes(&snap(&[100, 300, 200], 0, None), &known);
        assert_eq!(events, vec![GpuEvent::ForeignProcess { device: 0, pid: 300, used_bytes: Some(MIB) }]);
    }

    #[test]
    fn memory_growth_above_threshold_is_an_event() {
        let before = snap(&[], 100 * MIB, None);
        assert!(memory_not_released(&before, &snap(&[], 101 * MIB, None), 2 * MIB).is_none());
        assert!(memory_not_released(&before, &snap(&[], 103 * MIB, None), 2 * MIB).is_some());
        // Less memory in use afterwards is never an event.
        assert!(memory_not_released(&before, &snap(&[], 0, None), 0).is_none());
    }

    #[test]
    fn ecc_increase_per_counter() {
        let before = snap(&[], 0, Some((1, 0)));
        let after = snap(&[], 0, Some((1, 2)));
        assert_eq!(
            ecc_increases(&before, &after),
            vec![GpuEvent::EccErrors { device: 0, ecc: EccKind::Uncorrected, before: 0, after: 2 }]
        );
        assert!(ecc_increases(&after, &before).is_empty());
        assert!(ecc_increases(&snap(&[], 0, None), &after).is_empty());
    }

    #[test]
    fn evaluate_combines_rules_and_serialises_tagged() {
        let events =
            evaluate(&snap(&[1], 0, Some((0, 0))), &snap(&[1, 2], 10 * MIB, Some((3, 0))), &BTreeSet::from([1]), MIB);
        assert_eq!(events.len(), 3);
        let json = serde_json::to_string(&events[0]).unwrap();
        assert!(json.contains("\"kind\":\"foreign_process\""));
    }

    /// A job comes and goes leaving 100 MiB; a foreign process is reported
    /// once while it stays; ECC rises are reported once.
    #[test]
    fn watch_follows_jobs_and_reports_each_anomaly_once() {
        let job = |pid: u32| pid >= 1000;
        let mut watch = Watch::new(8 * MIB);
        assert!(watch.observe(snap(&[], 500 * MIB, Some((0, 0))), job).is_empty());
        assert!(watch.observe(snap(&[1000], 900 * MIB, Some((0, 0))), job).is_empty());
        let events = watch.observe(snap(&[], 600 * MIB, Some((0, 0))), job);
        assert_eq!(
            events,
            vec![GpuEvent::MemoryNotReleased {
                device: 0,
                before_bytes: 500 * MIB,
                after_bytes: 600 * MIB,
                threshold_bytes: 8 * MIB
            }]
        );
        // The next job starts from the new baseline and releases all of it.
        assert!(watch.observe(snap(&[1001], 700 * MIB, Some((0, 0))), job).is_empty());
        assert!(watch.observe(snap(&[], 604 * MIB, Some((0, 0))), job).is_empty());
        // A foreign process: one event while it stays, another when it returns.
        let events = watch.observe(snap(&[7], 700 * MIB, Some((0, 0))), job);
        assert!(matches!(events[..], [GpuEvent::ForeignProcess { pid: 7, .. }]), "{events:?}");
        assert!(watch.observe(snap(&[7], 700 * MIB, Some((0, 0))), job).is_empty());
        assert!(watch.observe(snap(&[], 604 * MIB, Some((0, 0))), job).is_empty());
        assert_eq!(watch.observe(snap(&[7], 700 * MIB, Some((0, 1))), job).len(), 2);
        assert!(watch.observe(snap(&[7], 700 * MIB, Some((0, 1))), job).is_empty());
    }

    /// A foreign process that arrives while a job runs makes the memory
    /// comparison meaningless: no memory event is raised for it.
    #[test]
    fn watch_does_not_blame_jobs_for_foreign_memory() {
        let job = |pid: u32| pid >= 1000;
        let mut watch = Watch::new(MIB);
        watch.observe(snap(&[], 100 * MIB, None), job);
        watch.observe(snap(&[1000, 5], 900 * MIB, None), job);
        let events = watch.observe(snap(&[5], 400 * MIB, None), job);
        assert!(events.iter().all(|e| !matches!(e, GpuEvent::MemoryNotReleased { .. })), "{events:?}");
    }

    #[test]
    fn process_list_is_bounded() {
        let many = vec![GpuProcess::new(1, None); MAX_PROCESSES + 10];
        assert_eq!(GpuSnapshot::new(0, many, 0, None).processes.len(), MAX_PROCESSES);
    }
}
