//! [`SecureBuffer`]: a pool block that is wiped when it goes out of scope.

use crate::device::{Block, Device};
use crate::error::PoolError;
use crate::pool::SecurePool;

/// Device memory handed out by a [`SecurePool`]; wipes on `Drop`.
///
/// The buffer owns its block and borrows its pool, so the block cannot be
/// freed twice, outlive its pool, or be reused before it is wiped. Dropping
/// it zeroes the block, synchronises, and only then caches or frees it; a
/// wipe error in `Drop` is logged and counted in
/// [`crate::pool::PoolStats::poisoned`]. Call [`SecureBuffer::release`] to
/// see the error instead.
pub struct SecureBuffer<'pool, D: Device> {
    pool: &'pool SecurePool<D>,
    // `Some` from construction until `release` or `drop` takes it.
    block: Option<D::Block>,
    requested: usize,
}

impl<D: Device> std::fmt::Debug for SecureBuffer<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureBuffer")
            .field("len", &self.requested)
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<'pool, D: Device> SecureBuffer<'pool, D> {
    pub(crate) fn new(pool: &'pool SecurePool<D>, block: D::Block, requested: usize) -> Self {
        Self { pool, block: Some(block), requested }
    }

    /// Bytes requested (the block may be larger: see
    /// [`SecureBuffer::capacity`]).
    pub fn len(&self) -> usize {
        self.requested
    }

    /// Always false: the pool refuses zero-byte requests.
    pub fn is_empty(&self) -> bool {
        self.requested == 0
    }

    /// The size of the underlying block, all of it randomised on hand-out
    /// and zeroed on release.
    pub fn capacity(&self) -> usize {
        self.block.as_ref().map_or(0, Block::len)
    }

    /// The underlying device block, for launching work on it.
    ///
    /// Returns `None` only while the buffer is being released, which safe
    /// code cannot observe.
    pub fn block(&self) -> Option<&D::Block> {
        self.block.as_ref()
    }

    /// Wipes and returns the block now, reporting a wipe failure instead of
    /// only logging it. The block is never reused if the wipe failed.
    pub fn release(mut self) -> Result<(), PoolError> {
        match self.block.take() {
            Some(block) => self.pool.recycle(block),
            None => Ok(()),
        }
    }
}

impl<D: Device> Drop for SecureBuffer<'_, D> {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            if let Err(err) = self.pool.recycle(block) {
                tracing::error!(error = %err, "wiping a GPU buffer on drop failed");
            }
        }
    }
}
