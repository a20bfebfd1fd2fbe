//! The Crypt4GH header (spec, "Header"): envelope, packets and their payloads.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

use super::keys::Role;
use super::{C4ghError, PublicKey, SecretKey, MAX_HEADER_PACKETS, MAX_HEADER_PACKET_LEN};
use crate::key::fill_random;

/// Magic bytes that open every Crypt4GH file.
pub(super) const MAGIC: &[u8; 8] = b"crypt4gh";
/// The only version this module reads and writes.
pub(super) const VERSION: u32 = 1;
/// `header_encryption_method` 0: X25519 + ChaCha20-IETF-Poly1305.
const METHOD_X25519_CHACHA20_POLY1305: u32 = 0;
/// Packet type 0: data encryption parameters.
const PACKET_DATA_ENC: u32 = 0;
/// Packet type 1: data edit list.
const PACKET_EDIT_LIST: u32 = 1;
/// `data_encryption_method` 0: ChaCha20-IETF-Poly1305.
const DATA_CHACHA20_POLY1305: u32 = 0;
/// ChaCha20-IETF-Poly1305 nonce length.
pub(super) const NONCE_LEN: usize = 12;
/// Poly1305 tag length.
pub(super) const TAG_LEN: usize = 16;
/// Smallest packet: its length and its encryption method.
const MIN_PACKET_LEN: u32 = 8;
/// Bytes of an X25519 packet around its payload: length, method, writer
/// key, nonce and tag.
const X25519_OVERHEAD: usize = 4 + 4 + 32 + NONCE_LEN + TAG_LEN;
/// Smallest X25519 packet without its length field: method, writer key,
/// nonce, a packet type and the tag.
const MIN_X25519_PACKET: usize = X25519_OVERHEAD - 4 + 4;

/// What the packets addressed to one reader hold.
pub(super) struct Decoded {
    /// Session keys, in header order (the reference writes one).
    pub(super) session_keys: Vec<Zeroizing<[u8; 32]>>,
    /// The edit list, if a packet held one (spec, "Data edit list").
    pub(super) edit_list: Option<Vec<u64>>,
    /// The writer key of the first session-key packet.
    pub(super) sender: PublicKey,
}

/// Writes a header with one session-key packet per recipient.
pub(super) fn write<W: Write>(
    out: &mut W,
    sender: &SecretKey,
    recipients: &[PublicKey],
    session_key: &[u8; 32],
) -> Result<(), C4ghError> {
    let mut payload = Zeroizing::new([0u8; 40]);
    payload[..4].copy_from_slice(&PACKET_DATA_ENC.to_le_bytes());
    payload[4..8].copy_from_slice(&DATA_CHACHA20_POLY1305.to_le_bytes());
    payload[8..].copy_from_slice(session_key);

    let count = u32::try_from(recipients.len())
        .map_err(|_| C4ghError::TooManyRecipients { count: recipients.len(), max: MAX_HEADER_PACKETS })?;
    let mut bytes = Vec::with_capacity(16 + recipients.len() * (X25519_OVERHEAD + 40));
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&count.to_le_bytes());
    for recipient in recipients {
        encrypt_packet(&mut bytes, sender, recipient, payload.as_ref())?;
    }
    out.write_all(&bytes)?;
    Ok(())
}

/// Appends one X25519 packet holding `payload` for `recipient`.
pub(super) fn encrypt_packet(
    out: &mut Vec<u8>,
    sender: &SecretKey,
    recipient: &PublicKey,
    payload: &[u8],
) -> Result<(), C4ghError> {
    let key = sender.packet_key(recipient, Role::Writer)?;
    let len = X25519_OVERHEAD + payload.len();
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_HEADER_PACKET_LEN)
        .ok_or(C4ghError::MalformedPacket("packet payload too long"))?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&METHOD_X25519_CHACHA20_POLY1305.to_le_bytes());
    out.extend_from_slice(sender.public_key().as_bytes());
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(payload);
    let tag = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut out[start..])
        .map_err(|_| C4ghError::MalformedPacket("packet payload too long"))?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Reads the header from `input` and decrypts the packets addressed to
/// `recipient`, skipping the others. Leaves `input` at the first segment.
pub(super) fn read<R: Read>(input: &mut R, recipient: &SecretKey) -> Result<Decoded, C4ghError> {
    let mut fixed = [0u8; 16];
    read_exact(input, &mut fixed)?;
    if &fixed[..8] != MAGIC {
        return Err(C4ghError::NotCrypt4gh);
    }
    let version = le32(&fixed[8..12]);
    if version != VERSION {
        return Err(C4ghError::UnsupportedVersion(version));
    }
    let count = le32(&fixed[12..16]);
    if count == 0 || count > MAX_HEADER_PACKETS {
        return Err(C4ghError::PacketCount { count, max: MAX_HEADER_PACKETS });
    }

    let mut session_keys = Vec::new();
    let mut edit_list = None;
    let mut sender = None;
    // Holds each packet's plaintext after decryption: wiped after use and
    // on every early return.
    let mut packet = Zeroizing::new(Vec::new());
    for index in 0..count {
        let mut len = [0u8; 4];
        read_exact(input, &mut len)?;
        let len = u32::from_le_bytes(len);
        if !(MIN_PACKET_LEN..=MAX_HEADER_PACKET_LEN).contains(&len) {
            return Err(C4ghError::PacketLength { index, len, min: MIN_PACKET_LEN, max: MAX_HEADER_PACKET_LEN });
        }
        packet.resize(len as usize - 4, 0);
        read_exact(input, &mut packet)?;
        let Some((writer, plain)) = decrypt_packet(&mut packet, recipient) else {
            continue; // for another recipient, or a method we do not have
        };
        match le32(&plain[..4]) {
            PACKET_DATA_ENC => {
                session_keys.push(parse_data_enc(&plain[4..])?);
                sender.get_or_insert(writer);
            }
            PACKET_EDIT_LIST => {
                if edit_list.replace(parse_edit_list(&plain[4..])?).is_some() {
                    return Err(C4ghError::DuplicateEditList);
                }
            }
            other => return Err(C4ghError::UnsupportedPacketType(other)),
        }
        // Wipe before the buffer can be reallocated (which would leave a
        // copy of this plaintext behind).
        packet.zeroize();
    }
    match sender {
        Some(sender) => Ok(Decoded { session_keys, edit_list, sender }),
        None if edit_list.is_some() => Err(C4ghError::NoSessionKey),
        None => Err(C4ghError::NoPacketForKey),
    }
}

/// Decrypts one packet (without its length field) in place. `None` when it
/// is not for us: another method, another recipient, or a damaged packet
/// (which the reference skips the same way). The plaintext is at least 4
/// bytes (a packet type).
fn decrypt_packet<'p>(packet: &'p mut [u8], recipient: &SecretKey) -> Option<(PublicKey, &'p [u8])> {
    if le32(&packet[..4]) != METHOD_X25519_CHACHA20_POLY1305 || packet.len() < MIN_X25519_PACKET {
        return None;
    }
    let body = &mut packet[4..];
    let writer = PublicKey::from_bytes(body[..32].try_into().expect("32 bytes"));
    let (head, rest) = body.split_at_mut(32 + NONCE_LEN);
    let nonce = Nonce::from_slice(&head[32..]);
    let (ciphertext, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let key = recipient.packet_key(&writer, Role::Reader).ok()?;
    ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
        .decrypt_in_place_detached(nonce, b"", ciphertext, Tag::from_slice(tag))
        .ok()?;
    Some((writer, ciphertext))
}

/// Parses a data-encryption-parameters payload (after its type).
fn parse_data_enc(payload: &[u8]) -> Result<Zeroizing<[u8; 32]>, C4ghError> {
    if payload.len() < 4 {
        return Err(C4ghError::MalformedPacket("data encryption packet too short"));
    }
    let method = le32(&payload[..4]);
    if method != DATA_CHACHA20_POLY1305 {
        return Err(C4ghError::UnsupportedDataEncryption(method));
    }
    let key: &[u8; 32] =
        payload[4..].try_into().map_err(|_| C4ghError::MalformedPacket("session key is not 32 bytes"))?;
    Ok(Zeroizing::new(*key))
}

/// Parses an edit-list payload (after its type): a u32 count, then that many
/// u64 lengths, all little-endian.
fn parse_edit_list(payload: &[u8]) -> Result<Vec<u64>, C4ghError> {
    if payload.len() < 4 {
        return Err(C4ghError::MalformedPacket("edit list packet too short"));
    }
    let count = le32(&payload[..4]) as usize;
    if count == 0 {
        // The reference fails on an empty list too.
        return Err(C4ghError::MalformedPacket("empty edit list"));
    }
    let lengths = &payload[4..];
    if lengths.len() / 8 != count || lengths.len() % 8 != 0 {
        return Err(C4ghError::MalformedPacket("edit list length does not match its count"));
    }
    Ok(lengths.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// A packet payload holding an edit list, for tests that build such headers.
#[cfg(test)]
pub(super) fn edit_list_payload(lengths: &[u64]) -> Vec<u8> {
    let mut p = PACKET_EDIT_LIST.to_le_bytes().to_vec();
    p.extend_from_slice(&(lengths.len() as u32).to_le_bytes());
    for l in lengths {
        p.extend_from_slice(&l.to_le_bytes());
    }
    p
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn read_exact<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<(), C4ghError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => C4ghError::HeaderTruncated,
        _ => C4ghError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_for(recipients: &[PublicKey]) -> (Vec<u8>, SecretKey) {
        let sender = SecretKey::generate();
        let mut out = Vec::new();
        write(&mut out, &sender, recipients, &[9; 32]).unwrap();
        (out, sender)
    }

    #[test]
    fn one_packet_is_108_bytes() {
        let bob = SecretKey::generate();
        let (bytes, _) = header_for(&[bob.public_key()]);
        assert_eq!(bytes.len(), 16 + 108);
        assert_eq!(&bytes[16..20], &108u32.to_le_bytes());
    }

    #[test]
    fn packets_for_others_are_skipped() {
        let (alice, bob, carol) = (SecretKey::generate(), SecretKey::generate(), SecretKey::generate());
        let (bytes, sender) = header_for(&[alice.public_key(), bob.public_key()]);
        let decoded = read(&mut bytes.as_slice(), &bob).unwrap();
        assert_eq!(*decoded.session_keys[0], [9; 32]);
        assert_eq!(decoded.sender, sender.public_key());
        assert!(decoded.edit_list.is_none());
        assert!(matches!(read(&mut bytes.as_slice(), &carol), Err(C4ghError::NoPacketForKey)));
    }

    #[test]
    fn envelope_errors() {
        let bob = SecretKey::generate();
        let (bytes, _) = header_for(&[bob.public_key()]);
        let mut bad = bytes.clone();
        bad[0] = b'C';
        assert!(matches!(read(&mut bad.as_slice(), &bob), Err(C4ghError::NotCrypt4gh)));
        let mut bad = bytes.clone();
        bad[8] = 2;
        assert!(matches!(read(&mut bad.as_slice(), &bob), Err(C4ghError::UnsupportedVersion(2))));
        for cut in [3, 15, 19, 100] {
            assert!(matches!(read(&mut &bytes[..cut], &bob), Err(C4ghError::HeaderTruncated)), "{cut}");
        }
    }

    // A hostile header must not make us allocate or loop beyond the bounds.
    #[test]
    fn packet_count_and_length_are_bounded() {
        let bob = SecretKey::generate();
        let (bytes, _) = header_for(&[bob.public_key()]);
        for count in [0, MAX_HEADER_PACKETS + 1, u32::MAX] {
            let mut bad = bytes.clone();
            bad[12..16].copy_from_slice(&count.to_le_bytes());
            assert!(matches!(read(&mut bad.as_slice(), &bob), Err(C4ghError::PacketCount { .. })), "{count}");
        }
        for len in [0, 7, MAX_HEADER_PACKET_LEN + 1, u32::MAX] {
            let mut bad = bytes.clone();
            bad[16..20].copy_from_slice(&len.to_le_bytes());
            assert!(matches!(read(&mut bad.as_slice(), &bob), Err(C4ghError::PacketLength { .. })), "{len}");
        }
    }

    #[test]
    fn edit_list_without_session_key_is_rejected() {
        let (bob, sender) = (SecretKey::generate(), SecretKey::generate());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        encrypt_packet(&mut bytes, &sender, &bob.public_key(), &edit_list_payload(&[1, 2])).unwrap();
        assert!(matches!(read(&mut bytes.as_slice(), &bob), Err(C4ghError::NoSessionKey)));
    }

    #[test]
    fn unknown_packet_type_is_rejected() {
        let (bob, sender) = (SecretKey::generate(), SecretKey::generate());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        encrypt_packet(&mut bytes, &sender, &bob.public_key(), &7u32.to_le_bytes()).unwrap();
        assert!(matches!(read(&mut bytes.as_slice(), &bob), Err(C4ghError::UnsupportedPacketType(7))));
    }

    #[test]
    fn edit_list_parsing() {
        assert_eq!(parse_edit_list(&edit_list_payload(&[5, 1 << 40])[4..]).unwrap(), vec![5, 1 << 40]);
        let mut short = edit_list_payload(&[5, 6]);
        short.pop();
        assert!(parse_edit_list(&short[4..]).is_err());
        let mut lying = edit_list_payload(&[5]);
        lying[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_edit_list(&lying[4..]).is_err());
        assert!(parse_edit_list(&edit_list_payload(&[])[4..]).is_err());
    }
}
