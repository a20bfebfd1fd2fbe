//! Per-fill seeds: an OS-drawn key mixed with a counter, so no two fills of
//! one pool share a seed and no seed is predictable from outside.

use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::{OsRng, RngCore};

use crate::error::PoolError;
use crate::prng;

pub(super) struct SeedSource {
    key: u64,
    counter: AtomicU64,
}

impl SeedSource {
    pub(super) fn from_os() -> Result<Self, PoolError> {
        let mut key = [0u8; 8];
        OsRng.try_fill_bytes(&mut key).map_err(|_| PoolError::Entropy)?;
        Ok(Self { key: u64::from_le_bytes(key), counter: AtomicU64::new(0) })
    }

    /// A seed never returned before by this source (until the counter
    /// wraps after 2^64 fills).
    pub(super) fn next(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        prng::word(self.key, n)
    }
}
