//! On a GPU (feature `cuda` and a driver present): the fill kernel's bytes
//! equal the CPU reference generator's for awkward lengths, a wipe leaves
//! zeros, and a job's context is created and destroyed. Without a driver
//! it says so and passes: CI has no GPU.

#![cfg(feature = "cuda")]

use seqshield_gpu::cuda::CudaDevice;
use seqshield_gpu::device::{Device, DeviceContext, HostCopy};

#[test]
fn the_kernel_matches_the_cpu_generator_and_wipes_leave_zeros() {
    if !seqshield_gpu::is_driver_present() {
        eprintln!("skipping: no CUDA driver");
        return;
    }
    let info = seqshield_gpu::check(0).expect("a driver but no usable device");
    eprintln!("device: {} ({:?}), driver {}", info.name, info.compute_capability, info.driver_version);
    let mut dev = CudaDevice::create_for_job(0).unwrap();
    for (i, len) in [1usize, 7, 8, 9, 4099, (1 << 20) + 5, 64 << 20].into_iter().enumerate() {
        let block = dev.alloc(len).unwrap();
        let seed = 0x5eed_0000 + i as u64;
        dev.fill_random(&block, seed).unwrap();
        dev.synchronize().unwrap();
        let mut got = vec![0u8; len];
        dev.copy_to_host(&block, 0, &mut got).unwrap();
        let mut want = vec![0u8; len];
        seqshield_gpu::prng::fill(seed, &mut want);
        assert!(got == want, "kernel bytes differ from the CPU generator at length {len}");
        dev.zero(&block).unwrap();
        dev.synchronize().unwrap();
        dev.copy_to_host(&block, 0, &mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0), "wipe left non-zero bytes at length {len}");
        dev.free(block).unwrap();
        eprintln!("length {len}: kernel = CPU reference, wipe = zeros");
    }
    dev.destroy().unwrap();
}
