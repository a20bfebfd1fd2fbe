//! The CUDA driver API backend (feature `cuda`): [`CudaDevice`] implements
//! [`crate::device::Device`] over a dedicated context per job.
//!
//! libcuda is opened with `dlopen` on first use; [`driver_present`] checks
//! for it first, so a machine without a driver gets
//! [`crate::GpuError::NoDriver`] rather than a panic. All unsafe code is in
//! [`driver`].

pub mod driver;

pub use driver::{driver_present, CudaBlock, CudaDevice};

/// The random-fill kernel, NUL-terminated for `cuModuleLoadData`.
pub(crate) const FILL_RANDOM_PTX: &str = concat!(include_str!("cuda/fill_random.ptx"), "\0");

/// The kernel's entry point in [`FILL_RANDOM_PTX`].
pub(crate) const FILL_RANDOM_ENTRY: &str = "seqshield_fill_random";

#[cfg(test)]
mod tests {
    use super::*;

    /// cuModuleLoadData reads the image up to its NUL; a PTX without the
    /// entry point or terminator would fail only on a GPU.
    #[test]
    fn ptx_is_terminated_and_declares_the_entry() {
        assert!(FILL_RANDOM_PTX.ends_with('\0'));
        assert_eq!(FILL_RANDOM_PTX.matches('\0').count(), 1);
        assert!(FILL_RANDOM_PTX.contains(&format!(".visible .entry {FILL_RANDOM_ENTRY}(")));
        assert!(FILL_RANDOM_PTX.contains(".target sm_52"));
    }

    /// The kernel repeats the generator's constants; keep them in step.
    #[test]
    fn ptx_constants_match_the_cpu_reference() {
        assert!(FILL_RANDOM_PTX.contains(&format!("{:#X}U", crate::prng::GOLDEN).replace("0X", "0x")));
        assert!(FILL_RANDOM_PTX.contains("0xBF58476D1CE4E5B9U"));
        assert!(FILL_RANDOM_PTX.contains("0x94D049BB133111EBU"));
        for shift in ["30;", "27;", "31;"] {
            assert!(FILL_RANDOM_PTX.contains(shift));
        }
    }

    #[test]
    fn absent_driver_is_reported_not_panicked() {
        if !driver_present() {
            assert!(matches!(CudaDevice::create_for_job(0), Err(crate::GpuError::NoDriver)));
        }
    }
}
