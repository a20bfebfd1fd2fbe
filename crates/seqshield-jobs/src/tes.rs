//! The GA4GH TES 1.1 task model.

use serde::{Deserialize, Serialize};

/// TES 1.1 task states (`tesState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TesState {
    /// Unknown.
    Unknown,
    /// Queued: accepted, waiting for resources.
    Queued,
    /// Initializing: the worker is staging inputs.
    Initializing,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Complete (success).
    Complete,
    /// An executor failed.
    ExecutorError,
    /// The system failed.
    SystemError,
    /// Canceled.
    Canceled,
    /// Being canceled.
    Canceling,
    /// Preempted by the scheduler.
    Preempted,
}

impl TesState {
    /// Whether no further transition can happen.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::ExecutorError | Self::SystemError | Self::Canceled | Self::Preempted)
    }
}
