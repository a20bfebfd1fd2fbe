//! Pool sizing: size classes and the cache cap.

use crate::error::PoolError;

/// The largest single allocation the pool accepts (64 GiB): a bound on what
/// a caller can ask the driver for in one request.
pub const MAX_ALLOCATION_BYTES: usize = 64 << 30;

/// How the pool rounds requests and how much wiped memory it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Smallest size class in bytes (a power of two).
    pub min_class_bytes: usize,
    /// Largest pooled size class in bytes (a power of two); larger requests
    /// are allocated at their exact size and never cached.
    pub max_class_bytes: usize,
    /// The most bytes of wiped blocks kept for reuse; beyond it freed blocks
    /// go back to the driver (after the wipe).
    pub max_cached_bytes: usize,
}

impl Default for PoolConfig {
    /// 512 B to 256 MiB classes, at most 1 GiB cached.
    fn default() -> Self {
        Self { min_class_bytes: 512, max_class_bytes: 256 << 20, max_cached_bytes: 1 << 30 }
    }
}

impl PoolConfig {
    /// A configuration; see the fields. Checked by [`PoolConfig::validate`].
    #[must_use]
    pub fn new(min_class_bytes: usize, max_class_bytes: usize, max_cached_bytes: usize) -> Self {
        Self { min_class_bytes, max_class_bytes, max_cached_bytes }
    }

    /// Checks that the classes are powers of two in order.
    pub fn validate(&self) -> Result<(), PoolError> {
        if !self.min_class_bytes.is_power_of_two() || !self.max_class_bytes.is_power_of_two() {
            return Err(PoolError::InvalidConfig("size classes must be powers of two"));
        }
        if self.min_class_bytes > self.max_class_bytes {
            return Err(PoolError::InvalidConfig("min_class_bytes exceeds max_class_bytes"));
        }
        if self.max_class_bytes > MAX_ALLOCATION_BYTES {
            return Err(PoolError::InvalidConfig("max_class_bytes exceeds MAX_ALLOCATION_BYTES"));
        }
        Ok(())
    }

    /// The size a request of `bytes` is served with: its size class, or
    /// `None` when it is larger than every class (allocated exactly, not
    /// cached).
    #[must_use]
    pub fn class_for(&self, bytes: usize) -> Option<usize> {
        if bytes > self.max_class_bytes {
            return None;
        }
        Some(bytes.max(self.min_class_bytes).next_power_of_two())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        let c = PoolConfig::new(512, 4096, 1 << 20);
        assert_eq!(c.class_for(1), Some(512));
        assert_eq!(c.class_for(512), Some(512));
        assert_eq!(c.class_for(513), Some(1024));
        assert_eq!(c.class_for(4096), Some(4096));
        assert_eq!(c.class_for(4097), None);
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(PoolConfig::new(500, 4096, 0).validate().is_err());
        assert!(PoolConfig::new(8192, 4096, 0).validate().is_err());
        assert!(PoolConfig::default().validate().is_ok());
    }
}
