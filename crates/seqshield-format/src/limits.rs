//! Every length an attacker controls, bounded by a named constant.
//!
//! A parser rejects a value above its bound before allocating for it.

/// Magic bytes that open every seqshield object (PNG-style: a high-bit byte,
/// CR LF and ^Z catch text-mode and 7-bit transfer damage).
pub const MAGIC: [u8; 8] = [0x89, b'S', b'Q', b'S', b'\r', b'\n', 0x1a, b'\n'];

/// Magic bytes that open the trailer.
pub const TRAILER_MAGIC: [u8; 8] = [0x89, b'S', b'Q', b'T', b'\r', b'\n', 0x1a, b'\n'];

/// The only format version this crate reads and writes.
pub const VERSION: u16 = 1;

/// Default plaintext bytes per segment (64 KiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;

/// Smallest plaintext segment size accepted (1 KiB): smaller segments waste
/// more than 1.5 % on tags.
pub const MIN_SEGMENT_SIZE: u32 = 1024;

/// Largest plaintext segment size accepted (16 MiB): bounds the memory a
/// reader must allocate for one segment.
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;

/// Largest header body (everything between the fixed prefix and the checksum).
pub const MAX_HEADER_BODY_LEN: u32 = 64 * 1024;

/// Most key-wrapping entries (recipients) in one header.
pub const MAX_RECIPIENTS: usize = 32;

/// Longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 128;

/// Longest key-wrapping algorithm name, in bytes.
pub const MAX_ALGORITHM_LEN: usize = 32;

/// Longest wrapped data key (an RSA-8192 OAEP block is 1024 bytes).
pub const MAX_WRAPPED_KEY_LEN: usize = 2048;

/// Longest content type (a media type such as `application/x-fasta`).
pub const MAX_CONTENT_TYPE_LEN: usize = 128;

/// Most metadata entries in one header.
pub const MAX_METADATA_ENTRIES: usize = 32;

/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_LEN: usize = 64;

/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE_LEN: usize = 1024;

/// Most segments in one object (2^48): far below the 2^64 nonce counter, and
/// 16 EiB at the default segment size.
pub const MAX_SEGMENTS: u64 = 1 << 48;

/// AES-256-GCM tag length.
pub const TAG_LEN: usize = 16;

/// Length of the fixed header prefix: magic, version, body length.
pub const HEADER_PREFIX_LEN: usize = 8 + 2 + 4;

/// Length of the header checksum and of the header MAC (each SHA-256 sized).
pub const HEADER_DIGEST_LEN: usize = 32;

/// Length of the per-object random salt.
pub const SALT_LEN: usize = 32;

/// Length of the fixed trailer: magic, count, plaintext length, root, MAC.
pub const TRAILER_LEN: usize = 8 + 8 + 8 + 32 + 32;
