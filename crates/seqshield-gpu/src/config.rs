//! The `[gpu]` configuration table of `seqshield serve`.

use serde::{Deserialize, Serialize};

/// Whether the gateway watches its GPUs through NVML.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Watch when NVML loads; otherwise log and audit once that monitoring
    /// is off (a machine without a GPU).
    #[default]
    Auto,
    /// Watch, and refuse to start when NVML cannot be loaded.
    On,
    /// Do not watch.
    Off,
}

/// `[gpu]`: anomaly monitoring of the machine's GPUs. Each finding is an
/// audit event: a process on a GPU that is not a seqshield job, device
/// memory not released once the jobs on a device have ended, a rise in ECC
/// error counts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// `auto`, `on` or `off`.
    pub monitor: MonitorMode,
    /// NVML device indices to watch (at most 64); empty: every device.
    pub devices: Vec<u32>,
    /// Seconds between snapshots (1 to 3600).
    pub interval_secs: u64,
    /// Device memory growth tolerated once every job has left a device,
    /// against the use before they started, in bytes (at most 1 TiB): the
    /// driver's own bookkeeping moves a little.
    pub memory_slack_bytes: u64,
}

impl Default for GpuConfig {
    fn default() -> Self {
        Self { monitor: MonitorMode::Auto, devices: Vec::new(), interval_secs: 10, memory_slack_bytes: 64 << 20 }
    }
}

/// A `[gpu]` setting is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gpu.{field}: {reason}")]
pub struct GpuConfigError {
    /// The setting.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl GpuConfig {
    /// Checks the bounds serde cannot.
    pub fn validate(&self) -> Result<(), GpuConfigError> {
        let err = |field, reason: String| Err(GpuConfigError { field, reason });
        if !(1..=3600).contains(&self.interval_secs) {
            return err("interval_secs", format!("{} is out of range 1..=3600", self.interval_secs));
        }
        if self.memory_slack_bytes > 1 << 40 {
            return err("memory_slack_bytes", format!("{} is above 1 TiB", self.memory_slack_bytes));
        }
        if self.devices.len() > 64 {
            return err("devices", format!("{} devices listed; at most 64", self.devices.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.devices.iter().find(|d| !seen.insert(**d)) {
            return err("devices", format!("device {dup} is listed twice"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_hold() {
        assert!(GpuConfig::default().validate().is_ok());
        let bad = GpuConfig { interval_secs: 0, ..GpuConfig::default() };
        assert_eq!(bad.validate().unwrap_err().field, "interval_secs");
        let bad = GpuConfig { devices: vec![0, 1, 0], ..GpuConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("device 0 is listed twice"));
        let bad = GpuConfig { memory_slack_bytes: (1 << 40) + 1, ..GpuConfig::default() };
        assert!(bad.validate().is_err());
    }
}
