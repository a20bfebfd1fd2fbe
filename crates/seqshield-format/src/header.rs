//! The object header: wire encoding, bounds checks, checksum and MAC.
//!
//! Layout (all integers big-endian; see `docs/format.md` §3):
//!
//! ```text
//! magic[8] version:u16 body_len:u32 body[body_len] checksum[32] mac[32]
//! body = segment_size:u32 classification:u8 flags:u8 salt[32]
//!        content_type:str8
//!        recipient_count:u8 { key_id:str8 algorithm:str8 wrapped:bytes16 }*
//!        metadata_count:u8  { key:str8 value:str16 }*
//! ```
//!
//! `flags` has one defined bit, [`FLAG_INTEGRITY_ONLY`]; any other bit is
//! refused.
//!
//! `checksum` is an unkeyed SHA-256 of everything before it; it only tells
//! accidental damage apart from a wrong key. `mac` is HMAC-SHA256 under the
//! header subkey over the same bytes, and is what authenticates the header.

use std::io::Read;

use aws_lc_rs::{digest, hmac};

use crate::classification::Classification;
use crate::error::FormatError;
use crate::key::{fill_random, DataKey, ObjectKeys};
use crate::limits::*;

/// Header flag: the segments hold the plaintext in the clear, each followed
/// by a GMAC tag (`docs/format.md` §5.1). For data that is public anyway.
pub const FLAG_INTEGRITY_ONLY: u8 = 0x01;

/// Every header flag this version defines; a header with any other bit set
/// is refused (`header_out_of_bounds`, field `flags`).
pub const KNOWN_FLAGS: u8 = FLAG_INTEGRITY_ONLY;

/// One recipient's copy of the data key, wrapped by a key-encryption key.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct WrappedKey {
    /// Identifies the KEK that can unwrap this entry.
    pub key_id: String,
    /// Wrapping algorithm, e.g. `rsa-oaep-sha256` or `aes256-kw`.
    pub algorithm: String,
    /// The wrapped data key.
    #[serde(serialize_with = "hex_bytes")]
    pub wrapped: Vec<u8>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// The fields of a header. Build one with [`Header::new`] to write an object;
/// get one from [`SealedHeader::authenticate`] to read one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    segment_size: u32,
    classification: Classification,
    integrity_only: bool,
    content_type: String,
    #[serde(serialize_with = "hex_bytes")]
    salt: [u8; SALT_LEN],
    recipients: Vec<WrappedKey>,
    metadata: Vec<(String, String)>,
}

impl Header {
    /// A header with a fresh random salt and the default segment size.
    pub fn new(
        classification: Classification,
        content_type: &str,
        recipients: Vec<WrappedKey>,
    ) -> Result<Self, FormatError> {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt);
        let header = Self {
            segment_size: DEFAULT_SEGMENT_SIZE,
            classification,
            integrity_only: false,
            content_type: content_type.to_owned(),
            salt,
            recipients,
            metadata: Vec::new(),
        };
        header.validate()?;
        Ok(header)
    }

    /// Test-vector hook: a header with a caller-chosen salt.
    #[cfg(feature = "test-hooks")]
    pub fn with_salt_for_tests(mut self, salt: [u8; SALT_LEN]) -> Self {
        self.salt = salt;
        self
    }

    /// Sets the plaintext segment size (bounded by
    /// [`MIN_SEGMENT_SIZE`]..=[`MAX_SEGMENT_SIZE`]).
    pub fn with_segment_size(mut self, segment_size: u32) -> Result<Self, FormatError> {
        self.segment_size = segment_size;
        self.validate()?;
        Ok(self)
    }

    /// Makes the object integrity-only (`true`) or encrypted (`false`, the
    /// default).
    ///
    /// An integrity-only object stores every plaintext byte in the clear:
    /// each segment is `plaintext ‖ GMAC tag` instead of `ciphertext ‖ GCM
    /// tag`. Layout, sizes, Merkle tree, trailer and the detection of every
    /// kind of tampering are those of an encrypted object; only
    /// confidentiality is gone. Use it only for data that may be published
    /// (classification `public`): the format does not tie the flag to the
    /// classification, that policy belongs to the caller. The flag is
    /// covered by the header checksum and MAC, so it cannot be flipped
    /// without the data key.
    pub fn with_integrity_only(mut self, integrity_only: bool) -> Self {
        self.integrity_only = integrity_only;
        self
    }

    /// Adds an authenticated, unencrypted metadata entry. Never put secrets
    /// or genomic content here: metadata is readable without a key.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Result<Self, FormatError> {
        self.metadata.push((key.to_owned(), value.to_owned()));
        self.validate()?;
        Ok(self)
    }

    /// Replaces the recipients (used when re-wrapping an object).
    pub fn set_recipients(&mut self, recipients: Vec<WrappedKey>) -> Result<(), FormatError> {
        let old = std::mem::replace(&mut self.recipients, recipients);
        if let Err(e) = self.validate() {
            self.recipients = old;
            return Err(e);
        }
        Ok(())
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    /// The data classification label.
    pub fn classification(&self) -> Classification {
        self.classification
    }

    /// Whether the segments hold the plaintext in the clear, authenticated
    /// by GMAC tags only (see [`with_integrity_only`](Header::with_integrity_only)).
    /// On a [`SealedHeader::unverified`] header this is unauthenticated, like
    /// every other field there.
    pub fn integrity_only(&self) -> bool {
        self.integrity_only
    }

    /// The header's `flags` byte.
    fn flags(&self) -> u8 {
        if self.integrity_only {
            FLAG_INTEGRITY_ONLY
        } else {
            0
        }
    }

    /// The content type.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The per-object random salt.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// The key-wrapping entries.
    pub fn recipients(&self) -> &[WrappedKey] {
        &self.recipients
    }

    /// Authenticated, unencrypted metadata entries.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// Length of the encoded header in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_PREFIX_LEN + self.body().len() + 2 * HEADER_DIGEST_LEN
    }

    fn validate(&self) -> Result<(), FormatError> {
        bound("segment_size", self.segment_size as usize, MIN_SEGMENT_SIZE as usize, MAX_SEGMENT_SIZE as usize)?;
        check_text("content_type", &self.content_type, 0, MAX_CONTENT_TYPE_LEN)?;
        bound("recipient_count", self.recipients.len(), 1, MAX_RECIPIENTS)?;
        for r in &self.recipients {
            check_text("key_id", &r.key_id, 1, MAX_KEY_ID_LEN)?;
            check_text("algorithm", &r.algorithm, 1, MAX_ALGORITHM_LEN)?;
            bound("wrapped_key_len", r.wrapped.len(), 1, MAX_WRAPPED_KEY_LEN)?;
        }
        bound("metadata_count", self.metadata.len(), 0, MAX_METADATA_ENTRIES)?;
        for (k, v) in &self.metadata {
            check_text("metadata_key", k, 1, MAX_METADATA_KEY_LEN)?;
            check_utf8_value("metadata_value", v, MAX_METADATA_VALUE_LEN)?;
        }
        // Each field may be within its bound while the sum is not; a reader
        // would refuse such a header, so a writer must never produce one.
        bound("header_body_len", self.body_len(), 1, MAX_HEADER_BODY_LEN as usize)?;
        Ok(())
    }

    fn body_len(&self) -> usize {
        let recipients: usize =
            self.recipients.iter().map(|r| 1 + r.key_id.len() + 1 + r.algorithm.len() + 2 + r.wrapped.len()).sum();
        let metadata: usize = self.metadata.iter().map(|(k, v)| 1 + k.len() + 2 + v.len()).sum();
        4 + 1 + 1 + SALT_LEN + 1 + self.content_type.len() + 1 + recipients + 1 + metadata
    }

    fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128 + self.recipients.len() * 600);
        b.extend_from_slice(&self.segment_size.to_be_bytes());
        b.push(self.classification.code());
        b.push(self.flags());
        b.extend_from_slice(&self.salt);
        put_str8(&mut b, &self.content_type);
        b.push(self.recipients.len() as u8);
        for r in &self.recipients {
            put_str8(&mut b, &r.key_id);
            put_str8(&mut b, &r.algorithm);
            b.extend_from_slice(&(r.wrapped.len() as u16).to_be_bytes());
            b.extend_from_slice(&r.wrapped);
        }
        b.push(self.metadata.len() as u8);
        for (k, v) in &self.metadata {
            put_str8(&mut b, k);
            b.extend_from_slice(&(v.len() as u16).to_be_bytes());
            b.extend_from_slice(v.as_bytes());
        }
        b
    }

    /// Encodes the header, with its checksum and its MAC under `data_key`.
    pub fn encode(&self, data_key: &DataKey) -> Vec<u8> {
        let keys = ObjectKeys::for_header(self, data_key);
        self.encode_with(&keys)
    }

    pub(crate) fn encode_with(&self, keys: &ObjectKeys) -> Vec<u8> {
        let body = self.body();
        debug_assert_eq!(body.len(), self.body_len());
        debug_assert!(body.len() <= MAX_HEADER_BODY_LEN as usize);
        let mut out = Vec::with_capacity(HEADER_PREFIX_LEN + body.len() + 2 * HEADER_DIGEST_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        let checksum = digest::digest(&digest::SHA256, &out);
        let mac = hmac::sign(&keys.header_mac, &out);
        out.extend_from_slice(checksum.as_ref());
        out.extend_from_slice(mac.as_ref());
        out
    }
}

fn bound(field: &'static str, value: usize, min: usize, max: usize) -> Result<(), FormatError> {
    if value < min || value > max {
        return Err(FormatError::HeaderOutOfBounds { field, value: value as u64, min: min as u64, max: max as u64 });
    }
    Ok(())
}

/// Identifiers and labels: printable ASCII only, so they are safe to print
/// in a terminal or a log line.
fn check_text(field: &'static str, s: &str, min: usize, max: usize) -> Result<(), FormatError> {
    bound(field, s.len(), min, max)?;
    if !s.bytes().all(|c| (0x20..0x7f).contains(&c)) {
        return Err(FormatError::HeaderMalformed(match field {
            "key_id" => "key_id must be printable ASCII",
            "algorithm" => "algorithm must be printable ASCII",
            "content_type" => "content_type must be printable ASCII",
            _ => "metadata_key must be printable ASCII",
        }));
    }
    Ok(())
}

fn check_utf8_value(field: &'static str, s: &str, max: usize) -> Result<(), FormatError> {
    bound(field, s.len(), 0, max)?;
    if s.chars().any(char::is_control) {
        return Err(FormatError::HeaderMalformed("metadata_value must not contain control characters"));
    }
    Ok(())
}

fn put_str8(b: &mut Vec<u8>, s: &str) {
    b.push(s.len() as u8);
    b.extend_from_slice(s.as_bytes());
}

/// A header read from an object, not yet authenticated.
///
/// Its fields may be shown (e.g. by `inspect`) but must not be trusted
/// until [`authenticate`](SealedHeader::authenticate) succeeds.
#[derive(Clone, Debug)]
pub struct SealedHeader {
    header: Header,
    signed: Vec<u8>,
    mac: [u8; HEADER_DIGEST_LEN],
}

impl SealedHeader {
    /// Reads and parses a header from the start of `r`, consuming exactly
    /// its bytes. Checks magic, version, every bound and the checksum.
    pub fn read_from<R: Read>(r: &mut R) -> Result<Self, FormatError> {
        let mut prefix = [0u8; HEADER_PREFIX_LEN];
        read_exact_or_truncated(r, &mut prefix)?;
        let (_, body_len) = parse_prefix(&prefix)?;
        let mut rest = vec![0u8; body_len as usize + 2 * HEADER_DIGEST_LEN];
        read_exact_or_truncated(r, &mut rest)?;
        let mut all = prefix.to_vec();
        all.extend_from_slice(&rest);
        Self::parse(&all).map(|(h, _)| h)
    }

    /// Parses a header at the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), FormatError> {
        let prefix: &[u8; HEADER_PREFIX_LEN] = bytes
            .get(..HEADER_PREFIX_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or(FormatError::Truncated { after_segment: None })?;
        let (_, body_len) = parse_prefix(prefix)?;
        let signed_len = HEADER_PREFIX_LEN + body_len as usize;
        let total = signed_len + 2 * HEADER_DIGEST_LEN;
        if bytes.len() < total {
            return Err(FormatError::Truncated { after_segment: None });
        }
        let signed = &bytes[..signed_len];
        let checksum = &bytes[signed_len..signed_len + HEADER_DIGEST_LEN];
        if digest::digest(&digest::SHA256, signed).as_ref() != checksum {
            return Err(FormatError::HeaderCorrupt);
        }
        let header = parse_body(&signed[HEADER_PREFIX_LEN..])?;
        let mut mac = [0u8; HEADER_DIGEST_LEN];
        mac.copy_from_slice(&bytes[signed_len + HEADER_DIGEST_LEN..total]);
        Ok((Self { header, signed: signed.to_vec(), mac }, total))
    }

    /// The recipients, to find one whose KEK can unwrap the data key.
    pub fn recipients(&self) -> &[WrappedKey] {
        &self.header.recipients
    }

    /// The parsed fields, unauthenticated. For display only.
    pub fn unverified(&self) -> &Header {
        &self.header
    }

    /// Length of the header on the wire.
    pub fn encoded_len(&self) -> usize {
        self.signed.len() + 2 * HEADER_DIGEST_LEN
    }

    /// Verifies the header MAC with the data key.
    pub fn authenticate(self, data_key: &DataKey) -> Result<Header, FormatError> {
        let keys = ObjectKeys::for_header(&self.header, data_key);
        hmac::verify(&keys.header_mac, &self.signed, &self.mac).map_err(|_| FormatError::HeaderAuthFailed)?;
        Ok(self.header)
    }
}

fn read_exact_or_truncated<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), FormatError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FormatError::Truncated { after_segment: None },
        _ => FormatError::Io(e),
    })
}

fn parse_prefix(prefix: &[u8; HEADER_PREFIX_LEN]) -> Result<(u16, u32), FormatError> {
    if prefix[..8] != MAGIC {
        return Err(FormatError::NotSeqshield);
    }
    let version = u16::from_be_bytes([prefix[8], prefix[9]]);
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let body_len = u32::from_be_bytes([prefix[10], prefix[11], prefix[12], prefix[13]]);
    bound("header_body_len", body_len as usize, 1, MAX_HEADER_BODY_LEN as usize)?;
    Ok((version, body_len))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.0.len() < n {
            return Err(FormatError::HeaderMalformed("a field runs past the end of the header body"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn str8(&mut self, field: &'static str, max: usize) -> Result<String, FormatError> {
        let len = self.u8()? as usize;
        bound(field, len, 0, max)?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| FormatError::HeaderMalformed("text field is not UTF-8"))
    }
}

fn parse_body(body: &[u8]) -> Result<Header, FormatError> {
    let mut c = Cursor(body);
    let segment_size = c.u32()?;
    let class_code = c.u8()?;
    let classification = Classification::from_code(class_code).ok_or(FormatError::HeaderOutOfBounds {
        field: "classification",
        value: class_code.into(),
        min: 0,
        max: 3,
    })?;
    let flags = c.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FormatError::HeaderOutOfBounds {
            field: "flags",
            value: flags.into(),
            min: 0,
            max: KNOWN_FLAGS.into(),
        });
    }
    let integrity_only = flags & FLAG_INTEGRITY_ONLY != 0;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(c.take(SALT_LEN)?);
    let content_type = c.str8("content_type", MAX_CONTENT_TYPE_LEN)?;
    let n = c.u8()? as usize;
    bound("recipient_count", n, 1, MAX_RECIPIENTS)?;
    let mut recipients = Vec::with_capacity(n);
    for _ in 0..n {
        let key_id = c.str8("key_id", MAX_KEY_ID_LEN)?;
        let algorithm = c.str8("algorithm", MAX_ALGORITHM_LEN)?;
        let len = c.u16()? as usize;
        bound("wrapped_key_len", len, 1, MAX_WRAPPED_KEY_LEN)?;
        recipients.push(WrappedKey { key_id, algorithm, wrapped: c.take(len)?.to_vec() });
    }
    let m = c.u8()? as usize;
    bound("metadata_count", m, 0, MAX_METADATA_ENTRIES)?;
    let mut metadata = Vec::with_capacity(m);
    for _ in 0..m {
        let k = c.str8("metadata_key", MAX_METADATA_KEY_LEN)?;
        let len = c.u16()? as usize;
        bound("metadata_value", len, 0, MAX_METADATA_VALUE_LEN)?;
        let v = String::from_utf8(c.take(len)?.to_vec())
            .map_err(|_| FormatError::HeaderMalformed("metadata_value is not UTF-8"))?;
        metadata.push((k, v));
    }
    if !c.0.is_empty() {
        return Err(FormatError::HeaderMalformed("trailing bytes after the last header field"));
    }
    let header = Header { segment_size, classification, integrity_only, content_type, salt, recipients, metadata };
    header.validate()?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::new(
            Classification::Restricted,
            "application/x-fasta",
            vec![WrappedKey { key_id: "k1".into(), algorithm: "aes256-kw".into(), wrapped: vec![1; 40] }],
        )
        .unwrap()
        .with_metadata("sample", "NA12878")
        .unwrap()
    }

    #[test]
    fn encode_parse_authenticate_round_trip() {
        let key = DataKey::generate();
        let h = sample();
        let bytes = h.encode(&key);
        assert_eq!(bytes.len(), h.encoded_len());
        let (sealed, len) = SealedHeader::parse(&bytes).unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(sealed.authenticate(&key).unwrap(), h);
    }

    #[test]
    fn wrong_key_fails_mac_not_checksum() {
        let bytes = sample().encode(&DataKey::generate());
        let (sealed, _) = SealedHeader::parse(&bytes).unwrap();
        assert!(matches!(sealed.authenticate(&DataKey::generate()), Err(FormatError::HeaderAuthFailed)));
    }

    #[test]
    fn any_flipped_bit_in_header_is_caught() {
        let key = DataKey::generate();
        let bytes = sample().encode(&key);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let r = SealedHeader::parse(&b).and_then(|(s, _)| s.authenticate(&key));
            assert!(r.is_err(), "flip at byte {i} accepted");
        }
    }

    #[test]
    fn unknown_version_is_named() {
        let mut bytes = sample().encode(&DataKey::generate());
        bytes[9] = 2;
        assert!(matches!(SealedHeader::parse(&bytes), Err(FormatError::UnsupportedVersion(2))));
    }

    #[test]
    fn out_of_bounds_fields_are_refused_when_building() {
        let r = sample().with_segment_size(100);
        assert!(matches!(r, Err(FormatError::HeaderOutOfBounds { field: "segment_size", .. })));
        let r = Header::new(Classification::Public, "x", vec![]);
        assert!(matches!(r, Err(FormatError::HeaderOutOfBounds { field: "recipient_count", .. })));
        let r = sample().with_metadata("k", &"v".repeat(MAX_METADATA_VALUE_LEN + 1));
        assert!(matches!(r, Err(FormatError::HeaderOutOfBounds { field: "metadata_value", .. })));
    }

    #[test]
    fn fields_within_bounds_but_too_large_together_are_refused() {
        // Why: found by fuzzing — 32 recipients of 2 KiB each pass every
        // per-field bound but make a body no reader would accept.
        let big = WrappedKey { key_id: "k".into(), algorithm: "a".into(), wrapped: vec![0; MAX_WRAPPED_KEY_LEN] };
        let r = Header::new(Classification::Public, "x", vec![big.clone(); MAX_RECIPIENTS]);
        assert!(matches!(r, Err(FormatError::HeaderOutOfBounds { field: "header_body_len", .. })));
        let mut h = sample();
        assert!(h.set_recipients(vec![big; MAX_RECIPIENTS]).is_err());
        assert_eq!(h.recipients().len(), 1, "a refused change leaves the header as it was");
    }

    #[test]
    fn huge_body_length_is_refused_before_allocating() {
        let mut bytes = sample().encode(&DataKey::generate());
        bytes[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            SealedHeader::read_from(&mut bytes.as_slice()),
            Err(FormatError::HeaderOutOfBounds { field: "header_body_len", .. })
        ));
    }

    /// Rewrites the flags byte and fixes the checksum, as an attacker would.
    fn with_flags(bytes: &[u8], flags: u8) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b[HEADER_PREFIX_LEN + 5] = flags;
        let signed = b.len() - 2 * HEADER_DIGEST_LEN;
        let sum = digest::digest(&digest::SHA256, &b[..signed]);
        b[signed..signed + HEADER_DIGEST_LEN].copy_from_slice(sum.as_ref());
        b
    }

    #[test]
    fn integrity_only_flag_round_trips_and_is_authenticated() {
        let key = DataKey::generate();
        let plain = sample();
        let clear = sample().with_integrity_only(true);
        assert!(!plain.integrity_only() && clear.integrity_only());
        assert!(!clear.clone().with_integrity_only(false).integrity_only());
        for h in [&plain, &clear] {
            let bytes = h.encode(&key);
            assert_eq!(bytes[HEADER_PREFIX_LEN + 5], u8::from(h.integrity_only()), "flags byte");
            let (sealed, _) = SealedHeader::parse(&bytes).unwrap();
            assert_eq!(sealed.unverified().integrity_only(), h.integrity_only());
            assert_eq!(&sealed.authenticate(&key).unwrap(), h);
            // Passing one mode off as the other: the checksum can be fixed,
            // the MAC cannot.
            let flipped = with_flags(&bytes, bytes[HEADER_PREFIX_LEN + 5] ^ FLAG_INTEGRITY_ONLY);
            let (sealed, _) = SealedHeader::parse(&flipped).unwrap();
            assert_eq!(sealed.unverified().integrity_only(), !h.integrity_only());
            assert!(matches!(sealed.authenticate(&key), Err(FormatError::HeaderAuthFailed)));
        }
    }

    #[test]
    fn unknown_flag_bits_are_refused_by_name() {
        let bytes = sample().with_integrity_only(true).encode(&DataKey::generate());
        for flags in [0x02, 0x03, 0x80, 0xff] {
            match SealedHeader::parse(&with_flags(&bytes, flags)) {
                Err(FormatError::HeaderOutOfBounds { field: "flags", value, min: 0, max: 1 }) => {
                    assert_eq!(value, u64::from(flags))
                }
                other => panic!("flags {flags:#04x}: {other:?}"),
            }
        }
    }

    #[test]
    fn integrity_only_shows_in_the_serialized_header() {
        // `seqshield inspect --json` prints the unverified header as is.
        let v = serde_json::to_value(sample().with_integrity_only(true)).unwrap();
        assert_eq!(v["integrity_only"], true);
    }

    #[test]
    fn wrapped_key_debug_hides_bytes() {
        let shown = format!("{:?}", sample().recipients()[0]);
        assert!(shown.contains("wrapped_len: 40"), "{shown}");
    }
}
