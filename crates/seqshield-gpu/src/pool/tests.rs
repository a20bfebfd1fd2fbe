use proptest::prelude::*;

use super::*;
use crate::error::DeviceOp;
use crate::fake::{FakeBlock, FakeDevice};

fn pool(max_cached: usize) -> (FakeDevice, SecurePool<FakeDevice>) {
    let device = FakeDevice::new();
    let pool = SecurePool::new(device.clone(), PoolConfig::new(512, 4096, max_cached)).unwrap();
    (device, pool)
}

fn id(buffer: &SecureBuffer<'_, FakeDevice>) -> u64 {
    buffer.block().map(FakeBlock::id).unwrap()
}

#[test]
fn hands_out_randomised_memory_never_remnants() {
    let (device, pool) = pool(1 << 20);
    let buffer = pool.acquire(1000).unwrap();
    assert_eq!((buffer.len(), buffer.capacity()), (1000, 1024));
    let data = device.read(id(&buffer));
    assert!(device.ready_for_use(id(&buffer)));
    assert!(!data.iter().all(|&b| b == FakeDevice::REMNANT_BYTE));
}

/// The seed's bug: a job's secret must not be readable by the next user of
/// the same block.
#[test]
fn reused_block_holds_nothing_of_the_previous_job() {
    let (device, pool) = pool(1 << 20);
    let secret = b"ACGTTGCAACGTTGCAACGTTGCAACGTTGCA";
    let first = pool.acquire(600).unwrap();
    let block = id(&first);
    device.write(first.block().unwrap(), secret);
    drop(first);
    assert!(device.is_wiped(block), "freed block is zeroed and synchronised");
    let second = pool.acquire(700).unwrap();
    assert_eq!(id(&second), block, "same size class reuses the block");
    assert!(device.ready_for_use(block));
    let data = device.read(block);
    assert!(!data.windows(secret.len()).any(|w| w == secret));
    assert_eq!(pool.stats().reused, 1);
}

#[test]
fn wipe_happens_before_the_block_is_cached() {
    let (device, pool) = pool(1 << 20);
    drop(pool.acquire(512).unwrap());
    let ops = device.ops();
    let tail = &ops[ops.len() - 2..];
    assert_eq!(tail, [DeviceOp::Zero, DeviceOp::Synchronize]);
}

#[test]
fn failed_wipe_poisons_and_releases_the_block() {
    let (device, pool) = pool(1 << 20);
    let buffer = pool.acquire(512).unwrap();
    let block = id(&buffer);
    device.fail_next(DeviceOp::Zero);
    assert!(matches!(buffer.release(), Err(PoolError::Wipe(_))));
    assert!(!device.is_live(block), "poisoned block went back to the driver");
    let stats = pool.stats();
    assert_eq!((stats.poisoned, stats.cached_bytes, stats.outstanding), (1, 0, 0));
    let next = pool.acquire(512).unwrap();
    assert_ne!(id(&next), block);
}

#[test]
fn failed_synchronise_after_zero_also_poisons() {
    let (device, pool) = pool(1 << 20);
    let buffer = pool.acquire(512).unwrap();
    device.fail_next(DeviceOp::Synchronize);
    drop(buffer);
    assert_eq!(pool.stats().poisoned, 1);
    assert_eq!(device.live_blocks(), 0);
}

#[test]
fn failed_randomise_is_an_error_and_discards() {
    let (device, pool) = pool(1 << 20);
    device.fail_next(DeviceOp::FillRandom);
    assert!(matches!(pool.acquire(512), Err(PoolError::Randomise(_))));
    assert_eq!(device.live_blocks(), 0);
    assert_eq!(pool.stats().outstanding, 0);
}

#[test]
fn cache_is_capped() {
    let (device, pool) = pool(1024);
    let a = pool.acquire(512).unwrap();
    let b = pool.acquire(512).unwrap();
    let c = pool.acquire(512).unwrap();
    drop((a, b, c));
    let stats = pool.stats();
    assert_eq!(stats.cached_bytes, 1024);
    assert_eq!(stats.released, 1);
    assert_eq!(device.live_blocks(), 2);
}

#[test]
fn oversized_requests_are_exact_and_never_cached() {
    let (device, pool) = pool(1 << 30);
    let big = pool.acquire(5000).unwrap();
    assert_eq!(big.capacity(), 5000);
    drop(big);
    assert_eq!(device.live_blocks(), 0);
    assert_eq!(pool.stats().wiped, 1);
}

#[test]
fn rejects_zero_and_huge_requests() {
    let (_, pool) = pool(0);
    assert!(matches!(pool.acquire(0), Err(PoolError::ZeroSize)));
    assert!(matches!(pool.acquire(MAX_ALLOCATION_BYTES + 1), Err(PoolError::TooLarge { .. })));
}

#[test]
fn drain_and_drop_release_everything() {
    let (device, pool) = pool(1 << 20);
    drop(pool.acquire(512).unwrap());
    assert_eq!(device.live_blocks(), 1);
    drop(pool);
    assert_eq!(device.live_blocks(), 0);
}

#[derive(Debug, Clone)]
enum Step {
    Acquire(usize),
    Release(usize),
    Fail(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..6000).prop_map(Step::Acquire),
        4 => any::<usize>().prop_map(Step::Release),
        1 => (0u8..4).prop_map(Step::Fail),
    ]
}

proptest! {
    /// Whatever the sequence of requests, releases and device failures:
    /// every hand-out sees randomised-after-wipe memory, every cached block
    /// is wiped, the cap holds and no seed repeats.
    #[test]
    fn invariants_hold_under_any_schedule(steps in proptest::collection::vec(step(), 1..80)) {
        let (device, pool) = pool(4096);
        let mut live: Vec<SecureBuffer<'_, FakeDevice>> = Vec::new();
        for s in steps {
            match s {
                Step::Acquire(n) => {
                    if let Ok(buffer) = pool.acquire(n) {
                        prop_assert!(device.ready_for_use(id(&buffer)));
                        device.write(buffer.block().unwrap(), b"secret");
                        live.push(buffer);
                    }
                }
                Step::Release(i) if !live.is_empty() => {
                    let buffer = live.swap_remove(i % live.len());
                    let block = id(&buffer);
                    if buffer.release().is_ok() && device.is_live(block) {
                        prop_assert!(device.is_wiped(block));
                    }
                }
                Step::Release(_) => {}
                Step::Fail(op) => device.fail_next(match op {
                    0 => DeviceOp::Zero,
                    1 => DeviceOp::Synchronize,
                    2 => DeviceOp::FillRandom,
                    _ => DeviceOp::Free,
                }),
            }
            let stats = pool.stats();
            prop_assert!(stats.cached_bytes <= 4096);
            prop_assert_eq!(stats.outstanding, live.len());
        }
        prop_assert!(!device.seed_reused());
    }
}
