//! Key files in the formats `crypt4gh-keygen` writes
//! (<https://crypt4gh.readthedocs.io/en/latest/keys.html>).
//!
//! Both are PEM-like: a `-----BEGIN CRYPT4GH … KEY-----` line, base64, and
//! an `-----END …` line. A public key is the 32 raw bytes. A private key is
//!
//! ```text
//! "c4gh-v1" ‖ string(kdf) ‖ [string(rounds_u32be ‖ salt) if kdf ≠ "none"]
//!           ‖ string(cipher) ‖ string(key or nonce ‖ encrypted key ‖ tag)
//!           ‖ [string(comment)]
//! ```
//!
//! where `string(x)` is a u16 big-endian length and the bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use zeroize::Zeroizing;

use super::header::{NONCE_LEN, TAG_LEN};
use super::{C4ghError, PublicKey, SecretKey, MAX_BCRYPT_ROUNDS, MAX_PBKDF2_ITERATIONS};
use crate::key::fill_random;

const PUBLIC_LABEL: &str = "CRYPT4GH PUBLIC KEY";
const PRIVATE_LABEL: &str = "CRYPT4GH PRIVATE KEY";
const MAGIC: &[u8] = b"c4gh-v1";
/// What an OpenSSH private key decodes to; the reference reads those, we
/// name them in the error.
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";
const CIPHER: &[u8] = b"chacha20_poly1305";
/// Salt length the reference uses for every KDF.
const SALT_LEN: usize = 16;
/// scrypt parameters the reference fixes (N = 2^14, r = 8, p = 1); the
/// rounds field is written as 0 and ignored.
const SCRYPT_LOG_N: u8 = 14;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// Parses a public key file (`crypt4gh-keygen --pk` output).
///
/// OpenSSH `ssh-ed25519` public keys, which the reference also reads, are
/// refused with [`C4ghError::UnsupportedKeyFormat`].
pub fn read_public_key(text: &str) -> Result<PublicKey, C4ghError> {
    if text.trim_start().starts_with("ssh-") {
        return Err(C4ghError::UnsupportedKeyFormat("OpenSSH public keys are not supported; use a Crypt4GH key"));
    }
    let bytes = unarmor(text, PUBLIC_LABEL).ok_or(C4ghError::NotAKeyFile { expected: "public" })?;
    let bytes: [u8; 32] =
        bytes.as_slice().try_into().map_err(|_| C4ghError::MalformedKey("a public key is 32 bytes"))?;
    Ok(PublicKey::from_bytes(bytes))
}

/// Writes a public key file exactly as `crypt4gh-keygen` does.
pub fn write_public_key(pk: &PublicKey) -> String {
    armor(PUBLIC_LABEL, pk.as_bytes())
}

/// Parses a Crypt4GH (`c4gh-v1`) private key file.
///
/// Supports the KDFs `scrypt`, `bcrypt` and `pbkdf2_hmac_sha256` with the
/// cipher `chacha20_poly1305`, and unencrypted keys (`none`). The bcrypt
/// and PBKDF2 work factors come from the file and are capped by
/// [`MAX_BCRYPT_ROUNDS`] and [`MAX_PBKDF2_ITERATIONS`]. The passphrase is
/// ignored when the key is not encrypted.
pub fn read_secret_key(text: &str, passphrase: Option<&[u8]>) -> Result<SecretKey, C4ghError> {
    let data = Zeroizing::new(unarmor(text, PRIVATE_LABEL).ok_or(C4ghError::NotAKeyFile { expected: "private" })?);
    if data.starts_with(OPENSSH_MAGIC) {
        return Err(C4ghError::UnsupportedKeyFormat("OpenSSH private keys are not supported; use a Crypt4GH key"));
    }
    let mut rest = data.strip_prefix(MAGIC).ok_or(C4ghError::MalformedKey("no c4gh-v1 magic"))?;
    let kdf_name = take_string(&mut rest)?;
    let kdf = match kdf_name {
        b"none" => None,
        b"scrypt" => Some(Kdf::Scrypt),
        b"bcrypt" => Some(Kdf::Bcrypt),
        b"pbkdf2_hmac_sha256" => Some(Kdf::Pbkdf2),
        other => return Err(C4ghError::UnsupportedKdf(C4ghError::sanitize_name(other))),
    };
    let kdf_options = match kdf {
        Some(_) => Some(take_string(&mut rest)?),
        None => None,
    };
    let cipher = take_string(&mut rest)?;
    let private = take_string(&mut rest)?;
    // An optional comment may follow; it is not needed.

    match (cipher, kdf.zip(kdf_options)) {
        (b"none", _) => {
            let mut key: [u8; 32] =
                private.try_into().map_err(|_| C4ghError::MalformedKey("a private key is 32 bytes"))?;
            Ok(SecretKey::from_bytes(&mut key))
        }
        (c, _) if c != CIPHER => Err(C4ghError::UnsupportedCipher(C4ghError::sanitize_name(c))),
        (_, None) => Err(C4ghError::MalformedKey("encrypted key without a key derivation function")),
        (_, Some((kdf, options))) => {
            let passphrase = passphrase.ok_or(C4ghError::PassphraseRequired)?;
            if options.len() < 4 {
                return Err(C4ghError::MalformedKey("KDF options too short"));
            }
            let rounds = u32::from_be_bytes(options[..4].try_into().expect("4 bytes"));
            let wrapping_key = kdf.derive(passphrase, &options[4..], rounds)?;
            if private.len() != NONCE_LEN + 32 + TAG_LEN {
                return Err(C4ghError::MalformedKey("encrypted private key has the wrong length"));
            }
            let (nonce, sealed) = private.split_at(NONCE_LEN);
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(&sealed[..32]);
            ChaCha20Poly1305::new(Key::from_slice(wrapping_key.as_slice()))
                .decrypt_in_place_detached(Nonce::from_slice(nonce), b"", key.as_mut(), Tag::from_slice(&sealed[32..]))
                .map_err(|_| C4ghError::WrongPassphrase)?;
            Ok(SecretKey::from_bytes(&mut key))
        }
    }
}

/// Writes a private key file the way `crypt4gh-keygen` does: with a
/// passphrase, the key is encrypted with ChaCha20-Poly1305 under an scrypt
/// key (N = 2^14, r = 8, p = 1, 16-byte salt); without one it is written in
/// the clear.
///
/// Like the reference, an empty passphrase counts as none and writes an
/// UNENCRYPTED key: callers that want a protected key must refuse an empty
/// passphrase themselves. The returned text holds the key (encrypted or
/// not); write it to a file only the owner can read.
pub fn write_secret_key(sk: &SecretKey, passphrase: Option<&[u8]>) -> String {
    let mut blob = Zeroizing::new(MAGIC.to_vec());
    match passphrase.filter(|p| !p.is_empty()) {
        None => {
            put_string(&mut blob, b"none");
            put_string(&mut blob, b"none");
            put_string(&mut blob, sk.expose_secret());
        }
        Some(passphrase) => {
            let mut salt = [0u8; SALT_LEN];
            fill_random(&mut salt);
            let wrapping_key =
                Kdf::Scrypt.derive(passphrase, &salt, 0).expect("scrypt with fixed parameters cannot fail");
            let mut sealed = Zeroizing::new([0u8; NONCE_LEN + 32 + TAG_LEN]);
            let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
            fill_random(nonce);
            let (key, tag) = rest.split_at_mut(32);
            key.copy_from_slice(sk.expose_secret());
            let t = ChaCha20Poly1305::new(Key::from_slice(wrapping_key.as_slice()))
                .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", key)
                .expect("32 bytes cannot exceed the ChaCha20 length limit");
            tag.copy_from_slice(&t);
            let mut options = 0u32.to_be_bytes().to_vec(); // rounds: unused by scrypt
            options.extend_from_slice(&salt);
            put_string(&mut blob, b"scrypt");
            put_string(&mut blob, &options);
            put_string(&mut blob, CIPHER);
            put_string(&mut blob, sealed.as_ref());
        }
    }
    armor(PRIVATE_LABEL, &blob)
}

/// The key derivation functions of the private key format.
#[derive(Clone, Copy)]
enum Kdf {
    Scrypt,
    Bcrypt,
    Pbkdf2,
}

impl Kdf {
    /// The 32-byte key that wraps the private key.
    fn derive(self, passphrase: &[u8], salt: &[u8], rounds: u32) -> Result<Zeroizing<[u8; 32]>, C4ghError> {
        let mut out = Zeroizing::new([0u8; 32]);
        match self {
            Self::Scrypt => {
                let params =
                    scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32).expect("valid scrypt parameters");
                scrypt::scrypt(passphrase, salt, &params, out.as_mut()).expect("32-byte output is valid");
            }
            Self::Bcrypt => {
                check_work("bcrypt", rounds, MAX_BCRYPT_ROUNDS)?;
                // Fails only on an empty passphrase or salt; the reference
                // (python bcrypt) refuses those too.
                bcrypt_pbkdf::bcrypt_pbkdf(passphrase, salt, rounds, out.as_mut()).map_err(|_| {
                    if passphrase.is_empty() {
                        C4ghError::WrongPassphrase
                    } else {
                        C4ghError::MalformedKey("bcrypt KDF needs a salt")
                    }
                })?;
            }
            Self::Pbkdf2 => {
                check_work("PBKDF2", rounds, MAX_PBKDF2_ITERATIONS)?;
                let iterations = std::num::NonZeroU32::new(rounds).expect("checked above");
                aws_lc_rs::pbkdf2::derive(
                    aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
                    iterations,
                    salt,
                    passphrase,
                    out.as_mut(),
                );
            }
        }
        Ok(out)
    }
}

fn check_work(kdf: &'static str, value: u32, max: u32) -> Result<(), C4ghError> {
    if value == 0 || value > max {
        return Err(C4ghError::KdfWorkFactor { kdf, value, max });
    }
    Ok(())
}

/// Takes one `string` (u16 BE length, bytes) off the front of `rest`.
fn take_string<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], C4ghError> {
    let truncated = C4ghError::MalformedKey("truncated private key");
    let (len, tail) = rest.split_first_chunk::<2>().ok_or(truncated)?;
    let len = u16::from_be_bytes(*len) as usize;
    if tail.len() < len {
        return Err(C4ghError::MalformedKey("truncated private key"));
    }
    let (s, tail) = tail.split_at(len);
    *rest = tail;
    Ok(s)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).expect("key file fields are short");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

/// `-----BEGIN label-----`, the base64 of `bytes` on one line (as the
/// reference writes it), `-----END label-----`.
fn armor(label: &str, bytes: &[u8]) -> String {
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(bytes))
}

/// The bytes inside `-----BEGIN label-----` … `-----END label-----`.
/// Blank lines, surrounding whitespace and CRLF line ends are tolerated, and
/// the base64 may span several lines.
fn unarmor(text: &str, label: &str) -> Option<Vec<u8>> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next()? != format!("-----BEGIN {label}-----") {
        return None;
    }
    let mut body = Zeroizing::new(String::new());
    for line in lines.by_ref() {
        if line == format!("-----END {label}-----") {
            return if lines.next().is_none() { STANDARD.decode(body.as_bytes()).ok() } else { None };
        }
        body.push_str(line);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &[u8] = b"correct horse";

    /// Spec vectors made by the reference implementation; see
    /// `testdata/regenerate.sh`.
    mod vectors {
        pub(super) const ALICE_PUB: &str = include_str!("testdata/alice.pub");
        pub(super) const ALICE_NOCRYPT: &str = include_str!("testdata/alice.nocrypt.sec");
        pub(super) const ALICE_SCRYPT: &str = include_str!("testdata/alice.scrypt.sec");
        pub(super) const ALICE_BCRYPT: &str = include_str!("testdata/alice.bcrypt.sec");
        pub(super) const ALICE_PBKDF2: &str = include_str!("testdata/alice.pbkdf2.sec");
    }
    use vectors::*;

    #[test]
    fn reference_key_files_load_under_every_kdf() {
        let pk = read_public_key(ALICE_PUB).unwrap();
        let clear = read_secret_key(ALICE_NOCRYPT, None).unwrap();
        assert_eq!(clear.public_key(), pk);
        for text in [ALICE_SCRYPT, ALICE_BCRYPT, ALICE_PBKDF2] {
            let sk = read_secret_key(text, Some(PASS)).unwrap();
            assert_eq!(sk.public_key(), pk);
            assert_eq!(sk.expose_secret(), clear.expose_secret());
        }
    }

    #[test]
    fn public_key_file_round_trips_byte_for_byte() {
        let pk = read_public_key(ALICE_PUB).unwrap();
        assert_eq!(write_public_key(&pk), ALICE_PUB);
    }

    #[test]
    fn unencrypted_secret_key_round_trips_byte_for_byte() {
        let sk = read_secret_key(ALICE_NOCRYPT, None).unwrap();
        assert_eq!(write_secret_key(&sk, None), ALICE_NOCRYPT);
        assert_eq!(write_secret_key(&sk, Some(b"")), ALICE_NOCRYPT, "empty passphrase = none, like keygen");
    }

    #[test]
    fn encrypted_secret_key_round_trips() {
        let sk = SecretKey::generate();
        let text = write_secret_key(&sk, Some(PASS));
        assert!(text.starts_with("-----BEGIN CRYPT4GH PRIVATE KEY-----\n"));
        let back = read_secret_key(&text, Some(PASS)).unwrap();
        assert_eq!(back.expose_secret(), sk.expose_secret());
        // Layout as keygen writes it: scrypt, rounds 0, 16-byte salt.
        let blob = unarmor(&text, PRIVATE_LABEL).unwrap();
        assert!(blob.starts_with(b"c4gh-v1\x00\x06scrypt\x00\x14\x00\x00\x00\x00"));
    }

    #[test]
    fn passphrase_errors() {
        assert!(matches!(read_secret_key(ALICE_SCRYPT, None), Err(C4ghError::PassphraseRequired)));
        for text in [ALICE_SCRYPT, ALICE_BCRYPT, ALICE_PBKDF2] {
            assert!(matches!(read_secret_key(text, Some(b"wrong")), Err(C4ghError::WrongPassphrase)));
        }
        // A passphrase for a clear key is ignored.
        assert!(read_secret_key(ALICE_NOCRYPT, Some(b"anything")).is_ok());
    }

    #[test]
    fn errors_never_show_the_passphrase() {
        let err = read_secret_key(ALICE_SCRYPT, Some(b"hunter2")).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }

    /// Rebuilds a key file with other KDF fields.
    fn forged(kdf: &[u8], rounds: u32, cipher: &[u8]) -> String {
        let mut blob = MAGIC.to_vec();
        put_string(&mut blob, kdf);
        let mut options = rounds.to_be_bytes().to_vec();
        options.extend_from_slice(&[1; SALT_LEN]);
        put_string(&mut blob, &options);
        put_string(&mut blob, cipher);
        put_string(&mut blob, &[0; NONCE_LEN + 32 + TAG_LEN]);
        armor(PRIVATE_LABEL, &blob)
    }

    // A hostile key file must not make us spin: work factors are capped
    // before any work is done.
    #[test]
    fn kdf_work_factors_are_bounded() {
        for (kdf, rounds) in [
            (&b"bcrypt"[..], MAX_BCRYPT_ROUNDS + 1),
            (b"bcrypt", u32::MAX),
            (b"bcrypt", 0),
            (b"pbkdf2_hmac_sha256", MAX_PBKDF2_ITERATIONS + 1),
            (b"pbkdf2_hmac_sha256", 0),
        ] {
            let err = read_secret_key(&forged(kdf, rounds, CIPHER), Some(PASS)).unwrap_err();
            assert!(matches!(err, C4ghError::KdfWorkFactor { value, .. } if value == rounds), "{err}");
        }
    }

    #[test]
    fn unsupported_kdf_and_cipher_are_named() {
        let err = read_secret_key(&forged(b"argon2\n", 1, CIPHER), Some(PASS)).unwrap_err();
        assert!(matches!(&err, C4ghError::UnsupportedKdf(n) if n == "argon2\\n"), "{err}");
        let err = read_secret_key(&forged(b"scrypt", 0, b"aes256_gcm"), Some(PASS)).unwrap_err();
        assert!(matches!(&err, C4ghError::UnsupportedCipher(n) if n == "aes256_gcm"), "{err}");
    }

    #[test]
    fn malformed_files_are_rejected() {
        assert!(matches!(read_public_key("hello"), Err(C4ghError::NotAKeyFile { .. })));
        assert!(matches!(read_public_key(ALICE_NOCRYPT), Err(C4ghError::NotAKeyFile { .. })));
        assert!(matches!(read_secret_key(ALICE_PUB, None), Err(C4ghError::NotAKeyFile { .. })));
        assert!(matches!(read_public_key("ssh-ed25519 AAAA x"), Err(C4ghError::UnsupportedKeyFormat(_))));
        let short = armor(PUBLIC_LABEL, &[1; 31]);
        assert!(matches!(read_public_key(&short), Err(C4ghError::MalformedKey(_))));
        let ssh = armor(PRIVATE_LABEL, b"openssh-key-v1\0rest");
        assert!(matches!(read_secret_key(&ssh, None), Err(C4ghError::UnsupportedKeyFormat(_))));
        let blob = unarmor(ALICE_SCRYPT, PRIVATE_LABEL).unwrap();
        // The last 7 bytes are the optional comment ("alice").
        for cut in [0, 5, 9, 20, 60, blob.len() - 8] {
            let text = armor(PRIVATE_LABEL, &blob[..cut]);
            assert!(matches!(read_secret_key(&text, Some(PASS)), Err(C4ghError::MalformedKey(_))), "{cut}");
        }
    }

    #[test]
    fn armour_tolerates_crlf_and_wrapped_base64() {
        let b64 = STANDARD.encode(read_public_key(ALICE_PUB).unwrap().as_bytes());
        let text = format!(
            "\r\n-----BEGIN CRYPT4GH PUBLIC KEY-----\r\n{}\r\n{}\r\n-----END CRYPT4GH PUBLIC KEY-----\r\n\r\n",
            &b64[..20],
            &b64[20..]
        );
        assert_eq!(read_public_key(&text).unwrap(), read_public_key(ALICE_PUB).unwrap());
        let trailing = format!("{ALICE_PUB}junk\n");
        assert!(read_public_key(&trailing).is_err());
    }
}
