//! `check()` must answer cleanly on machines without a GPU: CI and most
//! developer machines. With a driver it must describe the device.

use seqshield_gpu::{check, is_driver_present, GpuError};

#[test]
fn check_reports_absence_cleanly_or_describes_the_device() {
    let result = check(0);
    if cfg!(not(feature = "cuda")) {
        assert!(!is_driver_present());
        assert!(matches!(result, Err(GpuError::NotBuilt)), "{result:?}");
        return;
    }
    if !is_driver_present() {
        assert!(matches!(result, Err(GpuError::NoDriver)), "{result:?}");
        assert_eq!(GpuError::NoDriver.to_string(), "no CUDA driver");
        return;
    }
    match result {
        Ok(info) => {
            assert_eq!(info.ordinal, 0);
            assert!(!info.name.is_empty());
            assert!(info.total_memory_bytes > 0);
            assert!(info.driver_version >= 12000, "{info:?}");
        }
        // A driver without a device (e.g. a container without the GPU
        // passed through) is a clean error too.
        Err(GpuError::NoDevice { .. } | GpuError::Device(_)) => {}
        Err(other) => panic!("unexpected: {other:?}"),
    }
}

#[test]
fn check_of_a_missing_ordinal_is_an_error_not_a_panic() {
    assert!(check(u32::MAX).is_err());
}
