//! Error types, one per layer: device operations, the pool, the job state
//! machine and the crate boundary ([`GpuError`]).

use crate::job::JobState;

/// Which device operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceOp {
    /// Allocating device memory (`cuMemAlloc`).
    Alloc,
    /// Returning device memory to the driver (`cuMemFree`).
    Free,
    /// Filling memory with random bytes (the fill kernel).
    FillRandom,
    /// Zeroing memory (`cuMemsetD8Async`).
    Zero,
    /// Waiting for queued work (`cuStreamSynchronize`).
    Synchronize,
    /// Destroying the job's context (`cuCtxDestroy`).
    DestroyContext,
    /// Creating the job's context, stream or module.
    CreateContext,
    /// Copying device memory to or from the host.
    Copy,
}

/// A device operation failed.
///
/// `code` is the driver's numeric result (for CUDA a `CUresult`); it carries
/// no data from device memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GPU {op:?} failed (driver code {code}): {detail}")]
#[non_exhaustive]
pub struct DeviceError {
    /// The operation that failed.
    pub op: DeviceOp,
    /// The driver's result code, or 0 where there is none.
    pub code: i64,
    /// The driver's name for the code, or a fixed description.
    pub detail: &'static str,
}

impl DeviceError {
    /// A device error for `op` with the driver's `code` and a fixed `detail`.
    pub fn new(op: DeviceOp, code: i64, detail: &'static str) -> Self {
        Self { op, code, detail }
    }
}

/// The secure pool refused or failed a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A zero-byte allocation was requested.
    #[error("a zero-byte GPU allocation was requested")]
    ZeroSize,
    /// The request exceeds [`crate::pool::MAX_ALLOCATION_BYTES`].
    #[error("GPU allocation of {requested} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes requested.
        requested: usize,
        /// The limit.
        limit: usize,
    },
    /// The operating system's random source failed.
    #[error("drawing a seed from the operating system failed")]
    Entropy,
    /// The pool configuration is inconsistent.
    #[error("invalid pool configuration: {0}")]
    InvalidConfig(&'static str),
    /// Allocating fresh memory from the driver failed.
    #[error("allocating GPU memory failed")]
    Alloc(#[source] DeviceError),
    /// Filling a block with random bytes before handing it out failed; the
    /// block was poisoned and released to the driver.
    #[error("randomising GPU memory before use failed; the block was discarded")]
    Randomise(#[source] DeviceError),
    /// Zeroing or synchronising a freed block failed; the block was poisoned
    /// and released to the driver rather than reused.
    #[error("wiping freed GPU memory failed; the block was discarded")]
    Wipe(#[source] DeviceError),
    /// Returning memory to the driver failed; the memory is leaked until
    /// the context is destroyed.
    #[error("returning GPU memory to the driver failed")]
    Release(#[source] DeviceError),
}

/// An illegal job state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job context cannot go from {from:?} on {event:?}")]
#[non_exhaustive]
pub struct TransitionError {
    /// The state the job was in.
    pub from: JobState,
    /// The event that was refused.
    pub event: crate::job::JobEvent,
}

/// A per-job context failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The state machine refused the transition.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Setting up the job's pool failed.
    #[error("setting up the job's GPU pool failed")]
    Setup(#[source] PoolError),
    /// Wiping or releasing the job's memory failed; the context was still
    /// destroyed (destroying it frees its memory) and the job is `Failed`.
    #[error("wiping the job's GPU memory failed")]
    Wipe(#[source] PoolError),
    /// The final synchronise or destroying the context failed; the job is
    /// `Failed`.
    #[error("synchronising or destroying the job's GPU context failed")]
    Destroy(#[source] DeviceError),
}

/// Errors at the crate boundary: checking for and opening a GPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// This build has no CUDA support (the `cuda` feature is off).
    #[error("seqshield was built without CUDA support (feature `cuda`)")]
    NotBuilt,
    /// The CUDA driver library (libcuda) could not be loaded.
    #[error("no CUDA driver")]
    NoDriver,
    /// The driver loaded but reports no device at the requested index.
    #[error("no CUDA device at index {index} ({count} present)")]
    NoDevice {
        /// Requested device ordinal.
        index: u32,
        /// Devices the driver reports.
        count: u32,
    },
    /// A driver call failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The NVML library could not be loaded or queried.
    #[error("NVML query failed: {0}")]
    Nvml(&'static str),
}

/// A timing-padding policy is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimingError {
    /// A bucket width or bound is zero.
    #[error("a padding bucket must be longer than zero")]
    ZeroBucket,
    /// Fixed bucket bounds must strictly increase.
    #[error("padding bucket bounds must strictly increase")]
    NotIncreasing,
    /// Too few or too many fixed buckets.
    #[error("{0} padding buckets given; 1 to 64 are allowed")]
    BucketCount(usize),
}
