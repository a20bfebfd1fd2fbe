//! The two hash functions of RFC 9162 §2.1.1.
//!
//! Leaves and interior nodes are hashed with different one-byte prefixes so
//! that a leaf can never be passed off as a node (second-preimage defence).

use aws_lc_rs::digest;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Domain-separation prefix of leaf hashes (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 ‖ data)`: the hash of one leaf's entry (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[LEAF_PREFIX]);
    ctx.update(data);
    to_hash(ctx.finish())
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    to_hash(digest::digest(&digest::SHA256, &buf))
}

/// The root of an empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    to_hash(digest::digest(&digest::SHA256, b""))
}

fn to_hash(d: digest::Digest) -> Hash {
    d.as_ref().try_into().expect("SHA-256 digests are 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // Why: a 64-byte leaf equal to two child hashes must not hash like
        // their parent node.
        let (l, r) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut both = l.to_vec();
        both.extend_from_slice(&r);
        assert_ne!(leaf_hash(&both), node_hash(&l, &r));
    }
}
