//! One device context per job, destroyed only after the job's memory is
//! wiped.
//!
//! [`JobState`] is the pure state machine; [`Job`] drives it over a
//! [`DeviceContext`] (for CUDA, a dedicated context from `cuCtxCreate`, never
//! the shared primary context). Buffers borrow the job's pool and
//! [`Job::finish`] takes the job by value, so the compiler rejects finishing
//! a job while any of its buffers is alive: by the time the context is
//! destroyed, every buffer has been dropped, and so wiped.

use crate::device::DeviceContext;
use crate::error::{JobError, TransitionError};
use crate::pool::{PoolConfig, PoolStats, SecurePool};

/// Where a job's context is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Context created, no work yet.
    Created,
    /// The job may allocate and run work.
    Running,
    /// Cached memory is being returned; every buffer is already wiped.
    Wiping,
    /// Memory wiped and released, context destroyed.
    Destroyed,
    /// Wiping or destroying failed; the context was destroyed as far as the
    /// driver allowed. Audit it.
    Failed,
}

/// What happens to a job's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobEvent {
    /// The job starts running.
    Start,
    /// The job ended; its buffers are gone, the pool is draining.
    BeginWipe,
    /// Everything was wiped and released, and the context destroyed.
    ContextDestroyed,
    /// A wipe, release or destroy failed.
    Fail,
}

impl JobState {
    /// The state after `event`, or an error if the machine forbids it.
    ///
    /// `Destroyed` is reachable only from `Wiping`, so no context is
    /// destroyed before its memory is wiped.
    pub fn on(self, event: JobEvent) -> Result<Self, TransitionError> {
        use JobEvent as E;
        use JobState as S;
        match (self, event) {
            (S::Created, E::Start) => Ok(S::Running),
            (S::Created | S::Running, E::BeginWipe) => Ok(S::Wiping),
            (S::Wiping, E::ContextDestroyed) => Ok(S::Destroyed),
            (S::Created | S::Running | S::Wiping, E::Fail) => Ok(S::Failed),
            (from, event) => Err(TransitionError { from, event }),
        }
    }

    /// Whether the state is final.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Destroyed | Self::Failed)
    }
}

/// What a finished job leaves behind, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct JobReport {
    /// The job.
    pub job_id: String,
    /// `Destroyed` on success.
    pub state: JobState,
    /// The pool's counters at the end.
    pub stats: PoolStats,
}

/// A job's own device context and secure pool.
#[derive(Debug)]
pub struct Job<D: DeviceContext> {
    job_id: String,
    state: JobState,
    pool: SecurePool<D>,
}

impl<D: DeviceContext> Job<D> {
    /// A job over its own `context`; state `Created`.
    pub fn new(job_id: impl Into<String>, context: D, config: PoolConfig) -> Result<Self, JobError> {
        Ok(Self {
            job_id: job_id.into(),
            state: JobState::Created,
            pool: SecurePool::new(context, config).map_err(JobError::Setup)?,
        })
    }

    /// The job's identifier.
    pub fn id(&self) -> &str {
        &self.job_id
    }

    /// The current state.
    pub fn state(&self) -> JobState {
        self.state
    }

    /// Moves to `Running`.
    pub fn start(&mut self) -> Result<(), JobError> {
        self.state = self.state.on(JobEvent::Start)?;
        Ok(())
    }

    /// The job's pool; only while `Running`.
    pub fn pool(&self) -> Result<&SecurePool<D>, JobError> {
        match self.state {
            JobState::Running => Ok(&self.pool),
            from => Err(TransitionError { from, event: JobEvent::Start }.into()),
        }
    }

    /// Ends the job: returns the (already wiped) cached memory, synchronises,
    /// then destroys the context. On a wipe failure the context is still
    /// destroyed, since that frees the memory, and the job ends `Failed`.
    pub fn finish(mut self) -> Result<JobReport, JobError> {
        self.teardown()?;
        Ok(JobReport { job_id: self.job_id.clone(), state: self.state, stats: self.pool.stats() })
    }

    fn teardown(&mut self) -> Result<(), JobError> {
        self.state = self.state.on(JobEvent::BeginWipe)?;
        let drained = self.pool.drain();
        let synced = self.pool.device().synchronize();
        let destroyed = self.pool.device_mut().destroy();
        let result = match (drained, synced, destroyed) {
            (Ok(()), Ok(()), Ok(())) => Ok(()),
            (Err(err), _, _) => Err(JobError::Wipe(err)),
            (Ok(()), Err(err), _) | (Ok(()), Ok(()), Err(err)) => Err(JobError::Destroy(err)),
        };
        let event = if result.is_ok() { JobEvent::ContextDestroyed } else { JobEvent::Fail };
        self.state = self.state.on(event)?;
        result
    }
}

impl<D: DeviceContext> Drop for Job<D> {
    fn drop(&mut self) {
        if self.state.is_terminal() {
            return;
        }
        if let Err(err) = self.teardown() {
            tracing::error!(job = %self.job_id, error = %err, "tearing down a GPU job failed");
        }
    }
}

#[cfg(test)]
mod tests;
