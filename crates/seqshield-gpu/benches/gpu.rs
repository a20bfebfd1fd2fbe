//! On-GPU figures for issue 10 (`scripts/bench-gpu`): for typical buffer
//! sizes,
//!
//! * wipe bandwidth (a `SecureBuffer`'s release: zero, synchronise, cache)
//!   against bare `cuMemsetD8Async` + synchronise on the same block;
//! * random-fill bandwidth (the kernel, synchronised);
//! * allocation + free latency: plain `cuMemAlloc`/`cuMemFree` against the
//!   secure pool uncached (every acquire allocates and fills, every release
//!   wipes and frees) and cached (acquire fills, release wipes).
//!
//! Prints a Markdown table. Without a CUDA driver it says so and exits 0:
//! there is nothing to measure.

use std::time::{Duration, Instant};

use seqshield_gpu::cuda::CudaDevice;
use seqshield_gpu::device::{Device, DeviceContext};
use seqshield_gpu::pool::{PoolConfig, SecurePool};

const SIZES: [usize; 5] = [64 << 10, 1 << 20, 16 << 20, 256 << 20, 1 << 30];

/// Repetitions per measurement: enough for ~100 ms of work on the larger
/// sizes, more on the small ones.
fn reps(size: usize) -> u32 {
    match size {
        s if s <= 1 << 20 => 500,
        s if s <= 16 << 20 => 100,
        _ => 20,
    }
}

/// Median of `n` timings of `f`.
fn median(n: u32, mut f: impl FnMut() -> Duration) -> Duration {
    let mut t: Vec<Duration> = (0..n).map(|_| f()).collect();
    t.sort();
    t[t.len() / 2]
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    if !seqshield_gpu::is_driver_present() {
        println!("no CUDA driver: nothing to measure (the on-GPU figures need a GPU)");
        return;
    }
    let info = match seqshield_gpu::check(0) {
        Ok(info) => info,
        Err(e) => {
            println!("no usable GPU: {e}");
            return;
        }
    };
    println!("device: {} (compute {:?}), driver {}", info.name, info.compute_capability, info.driver_version);
    println!();
    println!("| size | memset GB/s | wipe GB/s | wipe / memset | fill GB/s | plain alloc+free µs | secure uncached µs | secure cached µs |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut dev = CudaDevice::create_for_job(0).expect("a context on device 0");
    for size in SIZES {
        let n = reps(size);
        let block = dev.alloc(size).expect("alloc");
        let memset = median(n, || {
            let t = Instant::now();
            dev.zero(&block).expect("memset");
            dev.synchronize().expect("sync");
            t.elapsed()
        });
        let fill = median(n, || {
            let t = Instant::now();
            dev.fill_random(&block, 7).expect("fill");
            dev.synchronize().expect("sync");
            t.elapsed()
        });
        dev.free(block).expect("free");
        let plain = median(n, || {
            let t = Instant::now();
            let b = dev.alloc(size).expect("alloc");
            dev.free(b).expect("free");
            t.elapsed()
        });
        let cached_pool = SecurePool::new(&dev, PoolConfig::new(512, 1 << 30, 2 << 30)).expect("pool");
        let mut wipe = Vec::new();
        let cached = median(n, || {
            let t = Instant::now();
            let buf = cached_pool.acquire(size).expect("acquire");
            let w = Instant::now();
            buf.release().expect("release");
            wipe.push(w.elapsed());
            t.elapsed()
        });
        drop(cached_pool);
        wipe.sort();
        let wipe = wipe[wipe.len() / 2];
        let uncached_pool = SecurePool::new(&dev, PoolConfig::new(512, 1 << 30, 0)).expect("pool");
        let uncached = median(n, || {
            let t = Instant::now();
            uncached_pool.acquire(size).expect("acquire").release().expect("release");
            t.elapsed()
        });
        drop(uncached_pool);
        println!(
            "| {} KiB | {:.0} | {:.0} | {:.1} % | {:.0} | {:.1} | {:.1} | {:.1} |",
            size >> 10,
            gbps(size, memset),
            gbps(size, wipe),
            100.0 * memset.as_secs_f64() / wipe.as_secs_f64(),
            gbps(size, fill),
            us(plain),
            us(uncached),
            us(cached)
        );
    }
    dev.destroy().expect("destroy");
}
