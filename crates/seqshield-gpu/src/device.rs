//! The [`Device`] trait: the few driver operations the secure pool needs.
//!
//! The pool is generic over it so its bookkeeping is tested with
//! [`crate::fake::FakeDevice`]; [`crate::cuda::CudaDevice`] (feature `cuda`)
//! implements it with the CUDA driver API.

use crate::error::DeviceError;

/// A device that allocates, wipes and frees memory blocks.
///
/// A [`Device::Block`] is an owned handle to one driver allocation: it is not
/// `Clone`, it is created only by [`Device::alloc`] and consumed by
/// [`Device::free`], so a block cannot be freed twice or used after free.
/// Operations may be queued (asynchronous); [`Device::synchronize`] waits for
/// all queued work and reports any error it raised.
pub trait Device {
    /// An owned handle to one allocation.
    type Block: Block;

    /// Allocates `bytes` of device memory. Contents are unspecified: they may
    /// hold another job's or process's data.
    fn alloc(&self, bytes: usize) -> Result<Self::Block, DeviceError>;

    /// Returns a block to the driver.
    fn free(&self, block: Self::Block) -> Result<(), DeviceError>;

    /// Queues a fill of the whole block with pseudo-random bytes derived from
    /// `seed` ([`crate::prng::fill`] is the reference).
    fn fill_random(&self, block: &Self::Block, seed: u64) -> Result<(), DeviceError>;

    /// Queues zeroing of the whole block.
    fn zero(&self, block: &Self::Block) -> Result<(), DeviceError>;

    /// Waits until all queued work has finished.
    fn synchronize(&self) -> Result<(), DeviceError>;
}

/// What the pool needs to know about a block.
pub trait Block {
    /// The block's size in bytes, as allocated.
    fn len(&self) -> usize;

    /// Whether the block is zero bytes long (never true for pool blocks).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A device whose context can be destroyed at the end of a job.
pub trait DeviceContext: Device {
    /// Destroys the context; later operations fail. Callers free every
    /// block first (the driver frees what is left, without wiping it).
    fn destroy(&mut self) -> Result<(), DeviceError>;
}

/// Copies between host memory and a block, for the remnant scanner: its
/// writer leaves a pattern in device memory and its reader searches it.
/// Both calls wait until the copy has finished.
pub trait HostCopy: Device {
    /// Copies `data` into `block` at byte `offset`.
    fn copy_from_host(&self, block: &Self::Block, offset: usize, data: &[u8]) -> Result<(), DeviceError>;

    /// Copies `out.len()` bytes of `block` from byte `offset` into `out`.
    fn copy_to_host(&self, block: &Self::Block, offset: usize, out: &mut [u8]) -> Result<(), DeviceError>;
}

/// A shared reference to a device is a device: a [`crate::pool::SecurePool`]
/// can borrow a context that the caller keeps (and destroys) itself.
impl<D: Device> Device for &D {
    type Block = D::Block;

    fn alloc(&self, bytes: usize) -> Result<Self::Block, DeviceError> {
        (**self).alloc(bytes)
    }

    fn free(&self, block: Self::Block) -> Result<(), DeviceError> {
        (**self).free(block)
    }

    fn fill_random(&self, block: &Self::Block, seed: u64) -> Result<(), DeviceError> {
        (**self).fill_random(block, seed)
    }

    fn zero(&self, block: &Self::Block) -> Result<(), DeviceError> {
        (**self).zero(block)
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        (**self).synchronize()
    }
}

impl<D: HostCopy> HostCopy for &D {
    fn copy_from_host(&self, block: &Self::Block, offset: usize, data: &[u8]) -> Result<(), DeviceError> {
        (**self).copy_from_host(block, offset, data)
    }

    fn copy_to_host(&self, block: &Self::Block, offset: usize, out: &mut [u8]) -> Result<(), DeviceError> {
        (**self).copy_to_host(block, offset, out)
    }
}

/// Checks that `offset .. offset + len` lies inside a block of `block_len`
/// bytes.
pub(crate) fn check_range(
    op: crate::error::DeviceOp,
    block_len: usize,
    offset: usize,
    len: usize,
) -> Result<(), DeviceError> {
    match offset.checked_add(len) {
        Some(end) if end <= block_len => Ok(()),
        _ => Err(DeviceError::new(op, 0, "copy range outside the block")),
    }
}
