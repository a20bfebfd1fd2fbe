//! seqshield's job service: GA4GH TES 1.1 tasks, signed manifests,
//! placement between the on-prem cluster and the cloud partition, and the
//! executors that run `seqshield worker` locally or through Slurm.

pub mod db;
pub mod executor;
pub mod images;
pub mod logs;
pub mod manifest;
pub mod placement;
pub mod service;
pub mod sim;
pub mod slurm;
pub mod tes;

pub use service::{Caller, JobError, JobService, JobsConfig};
