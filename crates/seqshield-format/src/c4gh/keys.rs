//! X25519 key pairs and the header-packet key agreement.

use blake2::{Blake2b512, Digest};
use zeroize::{Zeroize, Zeroizing};

use super::C4ghError;
use crate::key::fill_random;

/// A Crypt4GH public key: an X25519 point, 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey(x25519_dalek::PublicKey);

impl PublicKey {
    /// Wraps raw X25519 public key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

/// A Crypt4GH secret key: an X25519 scalar. Zeroed on drop, never printed.
///
/// The scalar is kept as stored in key files (unclamped, like libsodium);
/// clamping happens at each X25519 operation.
pub struct SecretKey {
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut());
        Self::from_bytes(&mut bytes)
    }

    /// Takes ownership of raw secret key bytes, zeroing the source.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        let secret = x25519_dalek::StaticSecret::from(*bytes);
        bytes.zeroize();
        let public = x25519_dalek::PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.public)
    }

    /// The raw scalar, for writing a key file.
    pub(super) fn expose_secret(&self) -> &[u8; 32] {
        self.secret.as_bytes()
    }

    /// The ChaCha20-Poly1305 key shared with `peer` for one header packet,
    /// as libsodium's `crypto_kx` computes it (which the reference uses):
    /// the first 32 bytes of BLAKE2b-512(X25519(sk, peer) ‖ reader_pk ‖
    /// writer_pk). The reader is the `crypto_kx` client, the writer the
    /// server; both hash the reader's key first.
    ///
    /// Fails on a low-order `peer` (libsodium refuses an all-zero secret).
    pub(super) fn packet_key(&self, peer: &PublicKey, role: Role) -> Result<Zeroizing<[u8; 32]>, C4ghError> {
        let shared = self.secret.diffie_hellman(&peer.0);
        if !shared.was_contributory() {
            return Err(C4ghError::WeakPublicKey);
        }
        let (reader, writer) = match role {
            Role::Reader => (self.public.as_bytes(), peer.as_bytes()),
            Role::Writer => (peer.as_bytes(), self.public.as_bytes()),
        };
        let mut hash =
            Blake2b512::new().chain_update(shared.as_bytes()).chain_update(reader).chain_update(writer).finalize();
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&hash[..32]);
        hash.as_mut_slice().zeroize();
        Ok(key)
    }
}

/// Which side of a header packet we are on.
#[derive(Clone, Copy, Debug)]
pub(super) enum Role {
    /// We encrypt the packet for a recipient.
    Writer,
    /// We decrypt a packet a writer made for us.
    Reader,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let sk = SecretKey::from_bytes(&mut [0xab; 32]);
        let shown = format!("{sk:?}");
        assert_eq!(shown, "SecretKey(<redacted>)");
    }

    #[test]
    fn from_bytes_zeroes_the_source() {
        let mut raw = [7u8; 32];
        let sk = SecretKey::from_bytes(&mut raw);
        assert_eq!(raw, [0; 32]);
        assert_eq!(sk.expose_secret(), &[7; 32], "stored unclamped, like libsodium");
    }

    #[test]
    fn both_sides_agree_on_the_packet_key() {
        let (reader, writer) = (SecretKey::generate(), SecretKey::generate());
        let w = writer.packet_key(&reader.public_key(), Role::Writer).unwrap();
        let r = reader.packet_key(&writer.public_key(), Role::Reader).unwrap();
        assert_eq!(*w, *r);
        // The hash is ordered: the writer computing as a reader gets another key.
        let wrong = writer.packet_key(&reader.public_key(), Role::Reader).unwrap();
        assert_ne!(*w, *wrong);
    }

    // libsodium's crypto_kx fails on low-order points; so must we, or a
    // hostile recipient key would make every packet key public.
    #[test]
    fn low_order_peer_is_rejected() {
        let sk = SecretKey::generate();
        let zero = PublicKey::from_bytes([0; 32]);
        assert!(matches!(sk.packet_key(&zero, Role::Writer), Err(C4ghError::WeakPublicKey)));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(SecretKey::generate().public_key(), SecretKey::generate().public_key());
    }
}
