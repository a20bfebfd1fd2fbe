//! Reading [`GpuSnapshot`]s through NVML (feature `cuda`). libnvidia-ml is
//! loaded at run time; without it every call is a [`GpuError::Nvml`].

use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

use crate::error::GpuError;
use crate::monitor::{EccCounts, GpuProcess, GpuSnapshot, MAX_PROCESSES};

/// An open NVML session.
pub struct Monitor {
    nvml: Nvml,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

impl Monitor {
    /// Loads and initialises NVML.
    pub fn open() -> Result<Self, GpuError> {
        Nvml::init().map(|nvml| Self { nvml }).map_err(|_| GpuError::Nvml("cannot load or initialise libnvidia-ml"))
    }

    /// How many devices NVML sees.
    pub fn device_count(&self) -> Result<u32, GpuError> {
        self.nvml.device_count().map_err(|_| GpuError::Nvml("counting devices failed"))
    }

    /// A snapshot of device `index`: compute processes, memory in use and
    /// volatile ECC counts (`None` where ECC is off or unsupported).
    pub fn snapshot(&self, index: u32) -> Result<GpuSnapshot, GpuError> {
        let device = self.nvml.device_by_index(index).map_err(|_| GpuError::Nvml("no such NVML device"))?;
        let processes = device
            .running_compute_processes()
            .map_err(|_| GpuError::Nvml("listing compute processes failed"))?
            .into_iter()
            .take(MAX_PROCESSES)
            .map(|p| {
                let used = match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes),
                    UsedGpuMemory::Unavailable => None,
                };
                GpuProcess::new(p.pid, used)
            })
            .collect();
        let memory = device.memory_info().map_err(|_| GpuError::Nvml("reading memory use failed"))?;
        let corrected = device.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile);
        let uncorrected = device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile);
        let ecc = match (corrected, uncorrected) {
            (Ok(c), Ok(u)) => Some(EccCounts::new(c, u)),
            _ => None,
        };
        Ok(GpuSnapshot::new(index, processes, memory.used, ecc))
    }
}
