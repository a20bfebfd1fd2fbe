//! GPU memory hygiene for seqshield's genomic GPU workloads.
//!
//! * [`pool::SecurePool`] hands out [`SecureBuffer`]s filled with fresh
//!   random bytes and zeroes (and synchronises) every block on free before
//!   it can be reused; failed wipes poison the block.
//! * [`job::Job`] gives each job its own device context and destroys it only
//!   after the job's memory is wiped.
//! * [`scan`] holds the remnant scanner's pattern, search and report;
//!   [`timing`] pads completion times to buckets; [`monitor`] turns NVML
//!   snapshots into audit events.
//! * [`check()`] answers "is there a GPU?" without panicking when there is
//!   no driver. The CUDA backend is behind the `cuda` feature and loads
//!   libcuda at run time.
//!
//! ```
//! use seqshield_gpu::fake::FakeDevice;
//! use seqshield_gpu::pool::{PoolConfig, SecurePool};
//!
//! let device = FakeDevice::new();
//! let pool = SecurePool::new(device.clone(), PoolConfig::default())?;
//! let buffer = pool.acquire(1000)?;
//! let id = buffer.block().map(|b| b.id());
//! drop(buffer); // zeroed and synchronised before it is cached
//! assert!(id.is_some_and(|id| device.is_wiped(id)));
//! # Ok::<(), seqshield_gpu::PoolError>(())
//! ```
#![cfg_attr(not(feature = "cuda"), forbid(unsafe_code))]

pub mod buffer;
mod check;
pub mod config;
pub mod device;
pub mod error;
pub mod fake;
pub mod job;
pub mod monitor;
pub mod pool;
pub mod prng;
pub mod procs;
pub mod scan;
pub mod timing;

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod nvml;

pub use buffer::SecureBuffer;
pub use check::{check, is_driver_present, DeviceInfo};
pub use error::{DeviceError, GpuError, JobError, PoolError};
