//! The secure pool: size-class caching that never hands out unwiped memory.
//!
//! Life of a block:
//!
//! 1. **Acquire.** A cached block (zeroed and synchronised when it was
//!    freed) or a fresh driver allocation is filled with random bytes from a
//!    fresh seed and synchronised; only then is it wrapped in a
//!    [`SecureBuffer`]. A fill failure poisons the block: it goes back to the
//!    driver and the caller gets [`PoolError::Randomise`].
//! 2. **Use.** The buffer owns the block; it cannot be cloned or freed twice.
//! 3. **Release.** Dropping the buffer (or [`SecureBuffer::release`]) zeroes
//!    the block and synchronises; only after that succeeds is the block
//!    cached (if the cap allows) or freed. A failed wipe poisons the block:
//!    it is freed to the driver, never cached.
//!
//! So a cached block is always zeroed-and-synchronised, and a handed-out
//! block was always randomised after its last wipe (or is fresh from the
//! driver and randomised).

mod config;
mod seed;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use crate::buffer::SecureBuffer;
pub use config::{PoolConfig, MAX_ALLOCATION_BYTES};

use crate::device::{Block, Device};
use crate::error::PoolError;
use seed::SeedSource;

/// Counters kept by a [`SecurePool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Buffers handed out.
    pub acquired: u64,
    /// Blocks allocated from the driver.
    pub fresh_allocs: u64,
    /// Blocks served from the cache.
    pub reused: u64,
    /// Blocks zeroed and synchronised after use.
    pub wiped: u64,
    /// Blocks whose randomise or wipe failed (released, never reused).
    pub poisoned: u64,
    /// Blocks returned to the driver.
    pub released: u64,
    /// Blocks the driver refused to take back.
    pub leaked: u64,
    /// Bytes of wiped blocks now cached.
    pub cached_bytes: usize,
    /// Buffers now handed out.
    pub outstanding: usize,
}

struct State<B> {
    free: BTreeMap<usize, Vec<B>>,
    stats: PoolStats,
}

/// A wipe-on-free pool over a [`Device`].
pub struct SecurePool<D: Device> {
    device: D,
    config: PoolConfig,
    seeds: SeedSource,
    state: Mutex<State<D::Block>>,
}

impl<D: Device> std::fmt::Debug for SecurePool<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurePool").field("config", &self.config).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl<D: Device> SecurePool<D> {
    /// A pool over `device`. Draws the seed key from the operating system.
    pub fn new(device: D, config: PoolConfig) -> Result<Self, PoolError> {
        config.validate()?;
        Ok(Self {
            device,
            config,
            seeds: SeedSource::from_os()?,
            state: Mutex::new(State { free: BTreeMap::new(), stats: PoolStats::default() }),
        })
    }

    /// The device the pool allocates from.
    pub fn device(&self) -> &D {
        &self.device
    }

    pub(crate) fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// A copy of the pool's counters.
    pub fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    /// Hands out a buffer of at least `bytes`, filled with fresh random bytes.
    pub fn acquire(&self, bytes: usize) -> Result<SecureBuffer<'_, D>, PoolError> {
        if bytes == 0 {
            return Err(PoolError::ZeroSize);
        }
        if bytes > MAX_ALLOCATION_BYTES {
            return Err(PoolError::TooLarge { requested: bytes, limit: MAX_ALLOCATION_BYTES });
        }
        let size = self.config.class_for(bytes).unwrap_or(bytes);
        let cached = self.take_cached(size);
        let reused = cached.is_some();
        let block = match cached {
            Some(block) => block,
            None => self.device.alloc(size).map_err(PoolError::Alloc)?,
        };
        let seed = self.seeds.next();
        let filled = self.device.fill_random(&block, seed).and_then(|()| self.device.synchronize());
        if let Err(err) = filled {
            tracing::error!(error = %err, "randomising a GPU block failed; discarding it");
            self.lock().stats.poisoned += 1;
            // The fill error is what the caller needs; a release failure is
            // counted and logged by `discard`.
            let _ = self.discard(block);
            return Err(PoolError::Randomise(err));
        }
        let mut state = self.lock();
        state.stats.acquired += 1;
        state.stats.outstanding += 1;
        if reused {
            state.stats.reused += 1;
        } else {
            state.stats.fresh_allocs += 1;
        }
        drop(state);
        Ok(SecureBuffer::new(self, block, bytes))
    }

    /// Returns every cached block to the driver. Cached blocks are already
    /// wiped; this gives the memory back (e.g. before the context goes).
    pub fn drain(&self) -> Result<(), PoolError> {
        let blocks: Vec<D::Block> = {
            let mut state = self.lock();
            state.stats.cached_bytes = 0;
            std::mem::take(&mut state.free).into_values().flatten().collect()
        };
        let mut first_err = None;
        for block in blocks {
            if let Err(err) = self.discard(block) {
                first_err.get_or_insert(err);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Wipes a block coming back from a buffer, then caches or frees it.
    pub(crate) fn recycle(&self, block: D::Block) -> Result<(), PoolError> {
        {
            let mut state = self.lock();
            state.stats.outstanding = state.stats.outstanding.saturating_sub(1);
        }
        let wiped = self.device.zero(&block).and_then(|()| self.device.synchronize());
        if let Err(err) = wiped {
            tracing::error!(error = %err, "wiping a freed GPU block failed; discarding it");
            self.lock().stats.poisoned += 1;
            let _ = self.discard(block);
            return Err(PoolError::Wipe(err));
        }
        let size = block.len();
        let mut state = self.lock();
        state.stats.wiped += 1;
        let poolable = self.config.class_for(size) == Some(size);
        let fits =
            state.stats.cached_bytes.checked_add(size).is_some_and(|total| total <= self.config.max_cached_bytes);
        if poolable && fits {
            state.stats.cached_bytes += size;
            state.free.entry(size).or_default().push(block);
            return Ok(());
        }
        drop(state);
        self.discard(block)
    }

    fn take_cached(&self, size: usize) -> Option<D::Block> {
        let mut state = self.lock();
        let block = state.free.get_mut(&size)?.pop()?;
        state.stats.cached_bytes = state.stats.cached_bytes.saturating_sub(size);
        Some(block)
    }

    fn discard(&self, block: D::Block) -> Result<(), PoolError> {
        let result = self.device.free(block);
        let mut state = self.lock();
        match result {
            Ok(()) => {
                state.stats.released += 1;
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "the driver refused to free a GPU block");
                state.stats.leaked += 1;
                Err(PoolError::Release(err))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<D::Block>> {
        // The state is counters and lists, consistent after every statement
        // that can panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<D: Device> Drop for SecurePool<D> {
    fn drop(&mut self) {
        if let Err(err) = self.drain() {
            tracing::error!(error = %err, "returning cached GPU blocks failed");
        }
    }
}

#[cfg(test)]
mod tests;
