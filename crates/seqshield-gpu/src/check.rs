//! Is there a usable GPU? Answers cleanly without a driver.

/// What `seqshield gpu check` reports about a device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// CUDA device ordinal.
    pub ordinal: u32,
    /// The device's name.
    pub name: String,
    /// Device memory, bytes.
    pub total_memory_bytes: u64,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// The driver's CUDA version, e.g. 12040 for 12.4.
    pub driver_version: i32,
}

/// Whether the CUDA driver library can be loaded. Always false without the
/// `cuda` feature. Never panics.
pub fn is_driver_present() -> bool {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::driver_present()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// Describes device `ordinal`: [`crate::GpuError::NoDriver`] without a
/// driver, [`crate::GpuError::NotBuilt`] without the `cuda` feature.
pub fn check(ordinal: u32) -> Result<DeviceInfo, crate::GpuError> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::driver::device_info(ordinal)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = ordinal;
        Err(crate::GpuError::NotBuilt)
    }
}
