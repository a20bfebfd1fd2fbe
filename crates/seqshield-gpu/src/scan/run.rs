//! The two halves of a scan cycle, over any device that can copy to and
//! from the host. `seqshield gpu scan` runs each half in its own process
//! (its own CUDA context), so what the reader finds crossed a process
//! boundary through the driver; the tests run them over
//! [`crate::fake::FakeGpu`] contexts.

use crate::device::{Device, HostCopy};
use crate::error::{DeviceError, PoolError};
use crate::pool::{PoolConfig, SecurePool};

use super::{find_remnants_before, AllocatorMode, RemnantPattern, ScanHits, MARKER_LEN};

/// Length of the DNA body of each pattern copy: with its marker, one copy
/// is 4 KiB.
pub const BODY_LEN: usize = 4096 - MARKER_LEN;

/// Bytes copied between host and device at a time.
pub const WINDOW_BYTES: usize = 16 << 20;

/// The smallest block the reader tries before it stops allocating.
pub const MIN_READ_BLOCK: usize = 1 << 20;

/// A scan half failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A device operation failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The secure pool failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The writer was asked for fewer bytes than one pattern copy.
    #[error("the writer needs at least {min} bytes, got {got}")]
    TooSmall {
        /// Bytes asked for.
        got: usize,
        /// One pattern copy.
        min: usize,
    },
    /// The reader could not allocate even [`MIN_READ_BLOCK`] bytes.
    #[error("the reader could not allocate any device memory")]
    NoMemory(#[source] DeviceError),
}

/// What a writer leaves and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterPlan {
    /// The scan run, so that markers of other runs never count.
    pub run_id: u64,
    /// This cycle.
    pub cycle: u64,
    /// This writer.
    pub writer: u32,
    /// Device bytes to fill with pattern copies.
    pub bytes: usize,
    /// Plain alloc/free, or the secure pool.
    pub mode: AllocatorMode,
}

/// The writer: allocates `plan.bytes`, fills them with back-to-back copies
/// of the cycle's pattern, and gives the memory back. With
/// [`AllocatorMode::Plain`] that is `free` (whatever the driver then does
/// with the bytes); with [`AllocatorMode::Secure`] the buffer comes from a
/// [`SecurePool`] and is wiped on release, and the pool is drained.
pub fn write_pattern<D: HostCopy>(device: &D, plan: &WriterPlan) -> Result<(), ScanError> {
    let pattern = RemnantPattern::new(plan.run_id, plan.cycle, plan.writer, BODY_LEN)
        .ok_or(ScanError::TooSmall { got: plan.bytes, min: MARKER_LEN + BODY_LEN })?;
    if plan.bytes < pattern.len() {
        return Err(ScanError::TooSmall { got: plan.bytes, min: pattern.len() });
    }
    // One window of whole copies, reused for every window of the block.
    let window_len = WINDOW_BYTES.min(plan.bytes).div_ceil(pattern.len()) * pattern.len();
    let mut window = vec![0u8; window_len];
    pattern.fill_repeating(&mut window);
    match plan.mode {
        AllocatorMode::Plain => {
            let block = device.alloc(plan.bytes)?;
            let written = fill_block(device, &block, plan.bytes, &window);
            let freed = device.free(block);
            written?;
            freed?;
        }
        AllocatorMode::Secure => {
            let pool = SecurePool::new(device, PoolConfig::default())?;
            let buffer = pool.acquire(plan.bytes)?;
            if let Some(block) = buffer.block() {
                fill_block(device, block, plan.bytes, &window)?;
            }
            buffer.release()?;
            pool.drain()?;
        }
    }
    Ok(())
}

fn fill_block<D: HostCopy>(device: &D, block: &D::Block, len: usize, window: &[u8]) -> Result<(), DeviceError> {
    let mut offset = 0;
    while offset < len {
        let n = window.len().min(len - offset);
        device.copy_from_host(block, offset, &window[..n])?;
        offset += n;
    }
    device.synchronize()
}

/// How much the reader takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderPlan {
    /// The run whose markers count.
    pub run_id: u64,
    /// Stop allocating at this many bytes (`u64::MAX`: until the device
    /// refuses).
    pub max_bytes: u64,
    /// First block size tried; halved on each refusal down to
    /// [`MIN_READ_BLOCK`].
    pub block_bytes: usize,
}

/// What a reader found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ReadOutcome {
    /// Markers of the run found.
    pub hits: ScanHits,
    /// Device bytes allocated and searched.
    pub bytes_scanned: u64,
    /// Blocks allocated.
    pub blocks: u64,
}

/// The reader: allocates as much as it can (up to `plan.max_bytes`),
/// copies all of it to the host window by window, and counts the run's
/// markers. Windows overlap by one marker length, so a marker crossing a
/// window's end is found once. Every block is zeroed, so the scanner does
/// not itself pass remnants on to the next cycle, and freed before
/// returning.
pub fn read_remnants<D: HostCopy>(device: &D, plan: &ReaderPlan) -> Result<ReadOutcome, ScanError> {
    let blocks = allocate_all(device, plan)?;
    let searched = search_blocks(device, &blocks, plan.run_id);
    let mut cleaned = blocks.iter().try_for_each(|(block, _)| device.zero(block)).and_then(|()| device.synchronize());
    for (block, _) in blocks {
        if let Err(e) = device.free(block) {
            cleaned = cleaned.and(Err(e));
        }
    }
    let outcome = searched?;
    cleaned?;
    Ok(outcome)
}

fn allocate_all<D: Device>(device: &D, plan: &ReaderPlan) -> Result<Vec<(D::Block, usize)>, ScanError> {
    let mut blocks = Vec::new();
    let mut total = 0u64;
    let mut size = plan.block_bytes.max(MIN_READ_BLOCK);
    while total < plan.max_bytes {
        let want = usize::try_from(plan.max_bytes - total).map_or(size, |left| left.min(size));
        match device.alloc(want) {
            Ok(block) => {
                blocks.push((block, want));
                total += want as u64;
            }
            Err(_) if want > MIN_READ_BLOCK => size = want / 2,
            Err(e) if blocks.is_empty() => return Err(ScanError::NoMemory(e)),
            Err(_) => break,
        }
    }
    Ok(blocks)
}

fn search_blocks<D: HostCopy>(device: &D, blocks: &[(D::Block, usize)], run_id: u64) -> Result<ReadOutcome, ScanError> {
    let mut outcome = ReadOutcome::default();
    let mut host = vec![0u8; WINDOW_BYTES + MARKER_LEN];
    let mut base = 0usize;
    let result = (|| {
        for (block, len) in blocks {
            let mut offset = 0;
            while offset < *len {
                let core = WINDOW_BYTES.min(len - offset);
                let read = (core + MARKER_LEN).min(len - offset);
                device.copy_to_host(block, offset, &mut host[..read])?;
                let hits = find_remnants_before(&host[..read], run_id, core);
                outcome.hits.absorb(hits, base + offset);
                offset += core;
            }
            base += len;
            outcome.bytes_scanned += *len as u64;
            outcome.blocks += 1;
        }
        Ok::<(), ScanError>(())
    })();
    // The host copy held other processes' data: do not leave it in the heap.
    host.fill(0);
    std::hint::black_box(&host);
    result.map(|()| outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeGpu;
    use crate::scan::ScanReport;

    const MIB: usize = 1 << 20;

    fn cycle(gpu: &FakeGpu, mode: AllocatorMode, run_id: u64, cycle: u64, bytes: usize) -> ReadOutcome {
        let writer = gpu.context();
        write_pattern(&writer, &WriterPlan { run_id, cycle, writer: 1, bytes, mode }).unwrap();
        let reader = gpu.context();
        read_remnants(&reader, &ReaderPlan { run_id, max_bytes: bytes as u64 * 2, block_bytes: bytes }).unwrap()
    }

    /// Over a device that recycles memory without clearing it, every plain
    /// cycle leaves its own pattern for the next process, and no secure
    /// cycle leaves anything.
    #[test]
    fn plain_leaves_remnants_secure_leaves_none() {
        let gpu = FakeGpu::new();
        let mut plain = ScanReport::new(AllocatorMode::Plain);
        let mut secure = ScanReport::new(AllocatorMode::Secure);
        for c in 0..5 {
            let found = cycle(&gpu, AllocatorMode::Plain, 77, c, 2 * MIB + 100);
            plain.record(c, found.bytes_scanned, &found.hits);
            let found = cycle(&gpu, AllocatorMode::Secure, 77, c, 2 * MIB + 100);
            secure.record(c, found.bytes_scanned, &found.hits);
        }
        // Each plain cycle's remnant is its own writer's: the reader zeroes
        // what it read, so nothing carries over to the next cycle.
        assert_eq!((plain.cycles, plain.cycles_with_remnants, plain.cycles_with_own_remnant), (5, 5, 5));
        // Whole copies only: 2 MiB + 100 holds 512 copies and a partial one
        // whose marker is intact.
        assert_eq!(plain.total_hits, 5 * 513);
        assert_eq!((secure.cycles, secure.total_hits, secure.rate()), (5, 0, 0.0));
    }

    /// A marker that straddles two read windows is counted exactly once.
    #[test]
    fn windows_overlap_without_double_counting() {
        let gpu = FakeGpu::new();
        let bytes = WINDOW_BYTES + 3 * 4096;
        let found = cycle(&gpu, AllocatorMode::Plain, 5, 0, bytes);
        assert_eq!(found.hits.hits, (bytes / 4096) as u64);
        assert_eq!(found.bytes_scanned, bytes as u64 * 2);
        let offsets: Vec<usize> = found.hits.sample.iter().map(|r| r.offset).collect();
        assert!(offsets.windows(2).all(|w| w[1] - w[0] == 4096), "{offsets:?}");
    }

    #[test]
    fn writer_refuses_less_than_one_copy() {
        let gpu = FakeGpu::new();
        let plan = WriterPlan { run_id: 1, cycle: 0, writer: 0, bytes: 100, mode: AllocatorMode::Plain };
        assert!(matches!(write_pattern(&gpu.context(), &plan), Err(ScanError::TooSmall { got: 100, .. })));
    }

    /// The reader halves its block size when the device refuses, and
    /// reports a device that gives nothing as an error.
    #[test]
    fn reader_backs_off_and_reports_no_memory() {
        let gpu = FakeGpu::new();
        let dev = gpu.context();
        dev.fail_next(crate::error::DeviceOp::Alloc);
        let plan = ReaderPlan { run_id: 1, max_bytes: 4 * MIB as u64, block_bytes: 4 * MIB };
        let out = read_remnants(&dev, &plan).unwrap();
        assert_eq!(out.bytes_scanned, 4 * MIB as u64);
        assert_eq!(out.blocks, 2);
        assert_eq!(dev.live_blocks(), 0);
        let dev = gpu.context();
        dev.fail_next(crate::error::DeviceOp::Alloc);
        let plan = ReaderPlan { run_id: 1, max_bytes: MIB as u64, block_bytes: MIB };
        assert!(matches!(read_remnants(&dev, &plan), Err(ScanError::NoMemory(_))));
    }
}
