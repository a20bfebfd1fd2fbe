//! Why a proof could not be produced.

/// A proof was asked for with arguments that name no proof.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// An inclusion proof for a leaf the tree does not have.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size larger than the tree.
    #[error("tree size {size} is beyond the tree's {len} leaves")]
    SizeBeyondTree {
        /// The size asked for.
        size: u64,
        /// The tree's size.
        len: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("tree size {first} is larger than tree size {second}")]
    SizesOutOfOrder {
        /// The earlier tree size.
        first: u64,
        /// The later tree size.
        second: u64,
    },
}
