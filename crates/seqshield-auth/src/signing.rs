//! The token-signing key ring: rotating RSA keys, stored encrypted under a
//! seqshield KEK, and the JWKS that publishes their public halves.
//!
//! Layout of the ring's directory (`DATA/signing/`, mode 0700; every file
//! mode 0600, written atomically: temporary file, fsync, rename, fsync of
//! the directory):
//!
//! | file          | content                                                      |
//! |---------------|--------------------------------------------------------------|
//! | `keys.json`   | metadata of the published keys: kid, bits, created, retired_at, n, e |
//! | `<kid>.key`   | the active private key: PKCS#8 DER in a seqshield container whose data key is wrapped by the KEK |
//!
//! A `kid` is the RFC 7638 JWK thumbprint of the public key. Rotation makes
//! a new active key, marks the old one retired, and deletes its private
//! key file at once; its public key stays in the JWKS until
//! `retired_at + publish_after_retire_secs`, so tokens it signed keep
//! verifying until they expire. [`KeyRing::prune`] then drops it.
//!
//! One process writes a ring at a time (the token service); others read
//! its JWKS.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use seqshield_keys::Kek;
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use crate::jwt::{self, JwtError, KeySet, MAX_ACCESS_TOKEN_LIFETIME_SECS, MAX_CLOCK_SKEW_SECS};

mod error;
mod fs;
mod meta;
mod sealed;

pub use error::SigningError;
use meta::{KeyMeta, Metadata};

/// Name of the metadata file in the ring's directory.
pub const METADATA_FILE: &str = "keys.json";
/// Suffix of a private-key file (`<kid>.key`).
pub const PRIVATE_KEY_SUFFIX: &str = ".key";
/// Default RSA modulus size, in bits.
pub const DEFAULT_BITS: u32 = 3072;
/// RSA modulus sizes a ring may generate, in bits. Nothing below 2048
/// (NIST SP 800-131A); 3072 is the 128-bit security level (SP 800-57).
pub const ALLOWED_BITS: [u32; 3] = [2048, 3072, 4096];
/// Default age at which the active key is replaced: 30 days.
pub const DEFAULT_ROTATE_AFTER_SECS: u64 = 30 * 24 * 3600;
/// Shortest rotation period accepted, so a typo cannot make every start
/// generate a key.
pub const MIN_ROTATE_AFTER_SECS: u64 = 3600;
/// Shortest time a retired key stays published: the longest access-token
/// lifetime plus the clock skew, so every token it signed can still verify.
pub const MIN_PUBLISH_AFTER_RETIRE_SECS: u64 = MAX_ACCESS_TOKEN_LIFETIME_SECS + MAX_CLOCK_SKEW_SECS;
/// Largest `keys.json` read, in bytes.
pub const MAX_METADATA_BYTES: u64 = 1024 * 1024;
/// Largest private-key file read, in bytes (an RSA-4096 PKCS#8 is ~2.4 KiB).
pub const MAX_PRIVATE_KEY_FILE_BYTES: u64 = 64 * 1024;
/// Most keys (active plus still-published retired ones) in a ring.
pub const MAX_KEYS: usize = 64;

/// Key-ring settings (the `[auth.signing]` table of the server config).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// RSA modulus size of new signing keys, in bits: 2048, 3072 or 4096.
    #[serde(deserialize_with = "de_bits")]
    #[schemars(extend("enum" = [2048, 3072, 4096]))]
    pub bits: u32,
    /// Age at which the active key is replaced by a new one, in seconds
    /// (at least 3600, [`MIN_ROTATE_AFTER_SECS`]).
    pub rotate_after_secs: u64,
    /// How long a retired key's public half stays in the JWKS, in seconds
    /// (at least 3660, the longest token lifetime plus clock skew,
    /// [`MIN_PUBLISH_AFTER_RETIRE_SECS`]).
    pub publish_after_retire_secs: u64,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self {
            bits: DEFAULT_BITS,
            rotate_after_secs: DEFAULT_ROTATE_AFTER_SECS,
            publish_after_retire_secs: MIN_PUBLISH_AFTER_RETIRE_SECS,
        }
    }
}

fn de_bits<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let bits = u32::deserialize(d)?;
    if ALLOWED_BITS.contains(&bits) {
        Ok(bits)
    } else {
        Err(serde::de::Error::custom(format_args!("bits must be 2048, 3072 or 4096, not {bits}")))
    }
}

impl SigningConfig {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), SigningError> {
        let bad = |field, reason| Err(SigningError::BadConfig { field, reason });
        if !ALLOWED_BITS.contains(&self.bits) {
            return bad("bits", "must be 2048, 3072 or 4096");
        }
        if self.rotate_after_secs < MIN_ROTATE_AFTER_SECS {
            return bad("rotate_after_secs", "must be at least 3600");
        }
        if self.publish_after_retire_secs < MIN_PUBLISH_AFTER_RETIRE_SECS {
            return bad("publish_after_retire_secs", "must cover the longest token lifetime plus clock skew (3660)");
        }
        Ok(())
    }

    fn key_size(&self) -> Result<KeySize, SigningError> {
        match self.bits {
            2048 => Ok(KeySize::Rsa2048),
            3072 => Ok(KeySize::Rsa3072),
            4096 => Ok(KeySize::Rsa4096),
            _ => Err(SigningError::BadConfig { field: "bits", reason: "must be 2048, 3072 or 4096" }),
        }
    }
}

/// The signing keys: one active private key (parsed once, kept in memory)
/// and the published public keys.
pub struct KeyRing {
    dir: PathBuf,
    cfg: SigningConfig,
    meta: Metadata,
    active_kid: String,
    pair: RsaKeyPair,
    keyset: KeySet,
}

fn key_file(kid: &str) -> String {
    format!("{kid}{PRIVATE_KEY_SUFFIX}")
}

fn components(pair: &RsaKeyPair) -> (&[u8], &[u8]) {
    let public = pair.public_key();
    (public.modulus().big_endian_without_leading_zero(), public.exponent().big_endian_without_leading_zero())
}

impl KeyRing {
    /// Opens the ring in `dir` (created, mode 0700, if missing), unsealing
    /// the active private key with `kek`; creates the first key if there is
    /// none. Then rotates if the active key is older than
    /// `rotate_after_secs` (or smaller than `bits`), prunes retired keys
    /// whose publish window has passed, and removes leftovers of an
    /// interrupted write.
    pub fn open_or_create(dir: &Path, kek: &dyn Kek, cfg: SigningConfig, now: u64) -> Result<Self, SigningError> {
        cfg.validate()?;
        fs::create_private_dir(dir)?;
        let meta_path = dir.join(METADATA_FILE);
        let mut ring = match fs::read_bounded(&meta_path, MAX_METADATA_BYTES, true) {
            Ok(bytes) => Self::load(dir, kek, cfg, &meta_path, &bytes)?,
            Err(SigningError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Self::create(dir, kek, cfg, now)?
            }
            Err(e) => return Err(e),
        };
        if ring.needs_rotation(now) {
            ring.rotate(kek, now)?;
        }
        ring.prune(now)?;
        ring.remove_leftovers()?;
        Ok(ring)
    }

    fn create(dir: &Path, kek: &dyn Kek, cfg: SigningConfig, now: u64) -> Result<Self, SigningError> {
        let (entry, pair) = generate(dir, kek, &cfg, now)?;
        let meta = Metadata { version: meta::VERSION, keys: vec![entry] };
        let keyset = keyset_of(dir, &meta)?;
        write_metadata(dir, &meta)?;
        let active_kid = meta.keys[0].kid.clone();
        Ok(Self { dir: dir.to_owned(), cfg, meta, active_kid, pair, keyset })
    }

    fn load(dir: &Path, kek: &dyn Kek, cfg: SigningConfig, path: &Path, bytes: &[u8]) -> Result<Self, SigningError> {
        let meta: Metadata = serde_json::from_slice(bytes)
            .map_err(|source| SigningError::MetadataParse { path: path.to_owned(), source })?;
        let active = meta
            .validate(MAX_KEYS)
            .map_err(|reason| SigningError::MetadataInvalid { path: path.to_owned(), reason })?;
        let active_kid = meta.keys[active].kid.clone();
        let pair = load_private(dir, kek, &active_kid)?;
        let keyset = keyset_of(dir, &meta)?;
        Ok(Self { dir: dir.to_owned(), cfg, meta, active_kid, pair, keyset })
    }

    fn active(&self) -> &KeyMeta {
        // `validate` and every update keep exactly one active entry whose
        // kid is `active_kid`.
        self.meta.keys.iter().find(|k| k.kid == self.active_kid).unwrap_or(&self.meta.keys[0])
    }

    /// Whether the active key is due for rotation at `now`: older than
    /// `rotate_after_secs`, or smaller than the configured `bits`.
    pub fn needs_rotation(&self, now: u64) -> bool {
        let a = self.active();
        now >= a.created.saturating_add(self.cfg.rotate_after_secs) || a.bits < self.cfg.bits
    }

    /// Replaces the active key with a new one; returns its kid. The old
    /// private key file is deleted; its public key stays published until
    /// `now + publish_after_retire_secs`.
    ///
    /// Crash-safe: the new key file is written first, then `keys.json`
    /// (the commit point), then the old key file is removed.
    pub fn rotate(&mut self, kek: &dyn Kek, now: u64) -> Result<String, SigningError> {
        self.prune(now)?;
        if self.meta.keys.len() >= MAX_KEYS {
            return Err(SigningError::TooManyKeys { max: MAX_KEYS });
        }
        let (entry, pair) = generate(&self.dir, kek, &self.cfg, now)?;
        let new_kid = entry.kid.clone();
        let mut meta = self.meta.clone();
        for k in meta.keys.iter_mut().filter(|k| k.retired_at.is_none()) {
            k.retired_at = Some(now);
        }
        meta.keys.push(entry);
        let committed = keyset_of(&self.dir, &meta).and_then(|ks| write_metadata(&self.dir, &meta).map(|()| ks));
        let keyset = match committed {
            Ok(ks) => ks,
            Err(e) => {
                let _ = fs::remove(&self.dir.join(key_file(&new_kid)));
                return Err(e);
            }
        };
        let old_kid = std::mem::replace(&mut self.active_kid, new_kid.clone());
        self.pair = pair;
        self.meta = meta;
        self.keyset = keyset;
        fs::remove(&self.dir.join(key_file(&old_kid)))?;
        fs::sync_dir(&self.dir)?;
        Ok(new_kid)
    }

    /// Drops retired keys whose publish window has passed at `now` from
    /// `keys.json` and the JWKS; returns how many.
    pub fn prune(&mut self, now: u64) -> Result<usize, SigningError> {
        let window = self.cfg.publish_after_retire_secs;
        let keys: Vec<KeyMeta> = self.meta.keys.iter().filter(|k| k.published(now, window)).cloned().collect();
        let removed = self.meta.keys.len() - keys.len();
        if removed == 0 {
            return Ok(0);
        }
        let meta = Metadata { version: meta::VERSION, keys };
        let keyset = keyset_of(&self.dir, &meta)?;
        write_metadata(&self.dir, &meta)?;
        self.meta = meta;
        self.keyset = keyset;
        Ok(removed)
    }

    /// Removes private-key files other than the active one and temporary
    /// files: what a crash between the steps of a write leaves behind.
    fn remove_leftovers(&self) -> Result<(), SigningError> {
        let active = key_file(&self.active_kid);
        let mut removed = false;
        for (name, path) in fs::file_names(&self.dir)? {
            let stale_key = name.ends_with(PRIVATE_KEY_SUFFIX) && name != active;
            let temporary = name.starts_with('.') && name.ends_with(fs::TMP_SUFFIX);
            if stale_key || temporary {
                fs::remove(&path)?;
                removed = true;
            }
        }
        if removed {
            fs::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The kid of the key new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The ring's settings.
    pub fn config(&self) -> &SigningConfig {
        &self.cfg
    }

    /// The ring's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signs `claims` with the active key: header
    /// `{"alg":"RS256","typ":typ,"kid":active_kid}`.
    pub fn sign<T: Serialize + ?Sized>(&self, typ: &str, claims: &T) -> Result<String, JwtError> {
        jwt::sign(&self.pair, &self.active_kid, typ, claims)
    }

    /// The published public keys (the active one and retired ones still in
    /// their window), for verifying our own tokens.
    pub fn keyset(&self) -> KeySet {
        self.keyset.clone()
    }

    /// The published public keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.keyset.to_jwks()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .field("active_kid", &self.active_kid)
            .field("published", &self.keyset)
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Generates a key, seals it under `kek` and writes `<kid>.key`.
fn generate(dir: &Path, kek: &dyn Kek, cfg: &SigningConfig, now: u64) -> Result<(KeyMeta, RsaKeyPair), SigningError> {
    let pair = RsaKeyPair::generate(cfg.key_size()?).map_err(|_| SigningError::Crypto { op: "RSA key generation" })?;
    let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| SigningError::Crypto { op: "PKCS#8 encoding" })?;
    let pkcs8 = Zeroizing::new(der.as_ref().to_vec());
    drop(der);
    let (n, e) = components(&pair);
    let entry = KeyMeta::new(n, e, cfg.bits, now);
    let name = key_file(&entry.kid);
    let sealed = sealed::seal(kek, &entry.kid, &pkcs8, &dir.join(&name))?;
    fs::write_atomic(dir, &name, &sealed)?;
    Ok((entry, pair))
}

/// Reads and unseals `<kid>.key`, checking it holds the key named `kid`.
fn load_private(dir: &Path, kek: &dyn Kek, kid: &str) -> Result<RsaKeyPair, SigningError> {
    let path = dir.join(key_file(kid));
    let bytes = fs::read_bounded(&path, MAX_PRIVATE_KEY_FILE_BYTES, true)?;
    let pkcs8 = sealed::open(kek, kid, &bytes, &path)?;
    let mismatch = || SigningError::KeyMismatch { path: path.clone(), kid: kid.to_owned() };
    let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| mismatch())?;
    let (n, e) = components(&pair);
    if jwt::thumbprint(n, e) != kid {
        return Err(mismatch());
    }
    Ok(pair)
}

fn keyset_of(dir: &Path, meta: &Metadata) -> Result<KeySet, SigningError> {
    meta.keyset().map_err(|reason| SigningError::MetadataInvalid { path: dir.join(METADATA_FILE), reason })
}

fn write_metadata(dir: &Path, meta: &Metadata) -> Result<(), SigningError> {
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|source| SigningError::MetadataParse { path: dir.join(METADATA_FILE), source })?;
    fs::write_atomic(dir, METADATA_FILE, &json)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use seqshield_format::{DataKey, WrappedKey};
    use seqshield_keys::{KeyError, Recipient};

    use super::*;
    use crate::jwt::{AccessClaims, Validation, TYP_ACCESS};

    const NOW: u64 = 1_800_000_000;

    /// A KEK for tests: XOR with a secret (RSA-4096 file KEKs take seconds
    /// to generate; one test below uses the real one).
    struct TestKek {
        id: &'static str,
        secret: [u8; 32],
    }

    impl Recipient for TestKek {
        fn key_id(&self) -> &str {
            self.id
        }
        fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
            let wrapped = key.expose_secret().iter().zip(self.secret).map(|(a, b)| a ^ b).collect();
            Ok(WrappedKey { key_id: self.id.into(), algorithm: "test-xor".into(), wrapped })
        }
    }

    impl Kek for TestKek {
        fn unwrap(&self, entry: &WrappedKey) -> Result<DataKey, KeyError> {
            let plain: Vec<u8> = entry.wrapped.iter().zip(self.secret).map(|(a, b)| a ^ b).collect();
            DataKey::from_slice(&plain).ok_or(KeyError::UnwrapFailed { key_id: entry.key_id.clone() })
        }
    }

    const KEK: TestKek = TestKek { id: "test-kek", secret: [7; 32] };

    fn cfg() -> SigningConfig {
        SigningConfig { bits: 2048, ..SigningConfig::default() }
    }

    fn claims(iat: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://auth".into(),
            sub: "alice".into(),
            aud: "gw".into(),
            exp: iat + 600,
            iat,
            nbf: iat,
            jti: "j".into(),
            scope: crate::ScopeSet::parse("read").unwrap(),
            amr: vec!["pwd".into()],
            acr: "pwd".into(),
            clearance: crate::Clearance::Internal,
            client_id: "c".into(),
            act: None,
            tsk: None,
        }
    }

    fn verifies(token: &str, keys: &KeySet, now: u64) -> bool {
        jwt::verify::<AccessClaims>(token, keys, &Validation::access("https://auth", "gw"), now).is_ok()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_then_reopens_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("signing");
        let ring = KeyRing::open_or_create(&d, &KEK, cfg(), NOW).unwrap();
        let kid = ring.active_kid().to_owned();
        let token = ring.sign(TYP_ACCESS, &claims(NOW)).unwrap();
        drop(ring);
        let again = KeyRing::open_or_create(&d, &KEK, cfg(), NOW + 10).unwrap();
        assert_eq!(again.active_kid(), kid);
        assert!(verifies(&token, &again.keyset(), NOW));
        assert_eq!(again.jwks()["keys"][0]["kid"], kid.as_str());
    }

    #[test]
    fn files_are_private_and_kid_is_the_rfc7638_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("signing");
        let ring = KeyRing::open_or_create(&d, &KEK, cfg(), NOW).unwrap();
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join(METADATA_FILE)), 0o600);
        assert_eq!(mode(&d.join(key_file(ring.active_kid()))), 0o600);
        let names: Vec<String> = fs::file_names(&d).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let (n, e) = components(&ring.pair);
        assert_eq!(ring.active_kid(), jwt::thumbprint(n, e));
        assert_eq!(ring.active_kid().len(), 43);
    }

    #[test]
    fn private_key_file_holds_no_plaintext_key() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW).unwrap();
        let der: Pkcs8V1Der<'static> = ring.pair.as_der().unwrap();
        let file = std::fs::read(dir.path().join(key_file(ring.active_kid()))).unwrap();
        assert!(!file.windows(32).any(|w| w == &der.as_ref()[der.as_ref().len() - 32..]));
    }

    #[test]
    fn rotation_deletes_the_old_private_key_and_keeps_publishing_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut ring = KeyRing::open_or_create(d, &KEK, cfg(), NOW).unwrap();
        let old = ring.active_kid().to_owned();
        let old_token = ring.sign(TYP_ACCESS, &claims(NOW)).unwrap();
        let new = ring.rotate(&KEK, NOW + 100).unwrap();
        assert_ne!(new, old);
        assert_eq!(ring.active_kid(), new);
        assert!(!d.join(key_file(&old)).exists(), "retired private key removed");
        assert!(d.join(key_file(&new)).exists());
        let keys = ring.keyset();
        assert!(keys.contains(&old) && keys.contains(&new));
        assert!(verifies(&old_token, &keys, NOW + 100), "tokens of the retired key still verify");
        let new_token = ring.sign(TYP_ACCESS, &claims(NOW + 100)).unwrap();
        assert_eq!(jwt::peek_header(&new_token).unwrap().kid, new);

        // Still published just before the window ends, gone after.
        let window = ring.config().publish_after_retire_secs;
        assert_eq!(ring.prune(NOW + 100 + window - 1).unwrap(), 0);
        assert_eq!(ring.prune(NOW + 100 + window).unwrap(), 1);
        assert!(!ring.keyset().contains(&old));
        let reopened = KeyRing::open_or_create(d, &KEK, cfg(), NOW + 100 + window).unwrap();
        assert_eq!(reopened.keyset().len(), 1);
        assert_eq!(reopened.active_kid(), new);
    }

    #[test]
    fn open_rotates_an_old_key_and_prunes_later() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let first = KeyRing::open_or_create(d, &KEK, cfg(), NOW).unwrap().active_kid().to_owned();
        let later = NOW + DEFAULT_ROTATE_AFTER_SECS;
        let ring = KeyRing::open_or_create(d, &KEK, cfg(), later).unwrap();
        assert_ne!(ring.active_kid(), first);
        assert!(ring.keyset().contains(&first));
        let ring = KeyRing::open_or_create(d, &KEK, cfg(), later + MIN_PUBLISH_AFTER_RETIRE_SECS).unwrap();
        assert!(!ring.keyset().contains(&first));
    }

    #[test]
    fn wrong_kek_cannot_open_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW).unwrap();
        let other = TestKek { id: "other", secret: [9; 32] };
        let err = KeyRing::open_or_create(dir.path(), &other, cfg(), NOW).unwrap_err();
        assert!(matches!(err, SigningError::Kek { .. }), "{err}");
        let same_id = TestKek { id: "test-kek", secret: [9; 32] };
        assert!(KeyRing::open_or_create(dir.path(), &same_id, cfg(), NOW).is_err());
    }

    #[test]
    fn tampered_or_swapped_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ring = KeyRing::open_or_create(d, &KEK, cfg(), NOW).unwrap();
        let path = d.join(key_file(ring.active_kid()));
        let good = std::fs::read(&path).unwrap();
        let mut bad = good.clone();
        let last = bad.len() - 40;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            KeyRing::open_or_create(d, &KEK, cfg(), NOW),
            Err(SigningError::Container { .. } | SigningError::Kek { .. })
        ));
        // A valid container for another kid under this key's name.
        let other = tempfile::tempdir().unwrap();
        let ring2 = KeyRing::open_or_create(other.path(), &KEK, cfg(), NOW).unwrap();
        std::fs::copy(other.path().join(key_file(ring2.active_kid())), &path).unwrap();
        assert!(matches!(KeyRing::open_or_create(d, &KEK, cfg(), NOW), Err(SigningError::KeyMismatch { .. })));
    }

    #[test]
    fn loose_permissions_on_the_private_key_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW).unwrap();
        let path = dir.path().join(key_file(ring.active_kid()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW),
            Err(SigningError::InsecurePermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn edited_metadata_is_refused() {
        // A kid that is not the thumbprint of its key, e.g. an attacker's
        // public key published under our active kid.
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW).unwrap();
        let path = dir.path().join(METADATA_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let kid = ring.active_kid();
        // Change the last character (to one it is not: a fixed replacement
        // left 1 kid in 64 unchanged and the test flaky).
        let last = if kid.ends_with('A') { 'B' } else { 'A' };
        let edited = text.replace(kid, &format!("{}{last}", &kid[..42]));
        assert_ne!(edited, text);
        std::fs::write(&path, edited).unwrap();
        assert!(matches!(
            KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW),
            Err(SigningError::MetadataInvalid { .. })
        ));
        std::fs::write(&path, r#"{"version":1,"keys":[],"extra":1}"#).unwrap();
        assert!(matches!(
            KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW),
            Err(SigningError::MetadataParse { .. })
        ));
    }

    #[test]
    fn leftovers_of_an_interrupted_rotation_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ring = KeyRing::open_or_create(d, &KEK, cfg(), NOW).unwrap();
        std::fs::write(d.join("stale.key"), b"x").unwrap();
        std::fs::write(d.join(".keys.json.0011.tmp"), b"x").unwrap();
        let ring2 = KeyRing::open_or_create(d, &KEK, cfg(), NOW).unwrap();
        assert_eq!(ring2.active_kid(), ring.active_kid());
        assert_eq!(fs::file_names(d).unwrap().len(), 2);
    }

    #[test]
    fn key_sizes_below_2048_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let weak = SigningConfig { bits: 1024, ..SigningConfig::default() };
        assert!(matches!(
            KeyRing::open_or_create(dir.path(), &KEK, weak, NOW),
            Err(SigningError::BadConfig { field: "bits", .. })
        ));
        assert!(toml::from_str::<SigningConfig>("bits = 1024").is_err());
        assert!(toml::from_str::<SigningConfig>("bits = 4097").is_err());
        assert_eq!(toml::from_str::<SigningConfig>("bits = 4096").unwrap().bits, 4096);
    }

    #[test]
    fn config_defaults_and_bounds() {
        let d: SigningConfig = toml::from_str("").unwrap();
        assert_eq!(d, SigningConfig::default());
        assert_eq!(d.bits, 3072);
        assert_eq!(d.rotate_after_secs, 30 * 24 * 3600);
        assert_eq!(d.publish_after_retire_secs, 3660);
        assert!(toml::from_str::<SigningConfig>("bitz = 3072").is_err(), "unknown fields are refused");
        let short = SigningConfig { publish_after_retire_secs: 60, ..d.clone() };
        assert!(matches!(short.validate(), Err(SigningError::BadConfig { field: "publish_after_retire_secs", .. })));
        let fast = SigningConfig { rotate_after_secs: 1, ..d };
        assert!(matches!(fast.validate(), Err(SigningError::BadConfig { field: "rotate_after_secs", .. })));
    }

    #[test]
    fn too_many_keys_refuses_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW).unwrap();
        // Fake a full ring without generating 64 keys.
        let filler = ring.meta.keys[0].clone();
        ring.meta.keys.extend((1..MAX_KEYS).map(|_| KeyMeta { retired_at: Some(NOW), ..filler.clone() }));
        assert!(matches!(ring.rotate(&KEK, NOW), Err(SigningError::TooManyKeys { .. })));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open_or_create(dir.path(), &KEK, cfg(), NOW).unwrap();
        let text = format!("{ring:?}");
        assert!(text.contains(ring.active_kid()));
        assert!(!text.contains("PRIVATE") && text.len() < 1000, "{text}");
    }

    #[test]
    fn works_with_the_file_kek() {
        let dir = tempfile::tempdir().unwrap();
        let kek = seqshield_keys::file::FileKek::init(&dir.path().join("kek"), b"correct horse").unwrap();
        let d = dir.path().join("signing");
        let kid = KeyRing::open_or_create(&d, &kek, cfg(), NOW).unwrap().active_kid().to_owned();
        let kek = seqshield_keys::file::FileKek::open(&dir.path().join("kek"), b"correct horse").unwrap();
        assert_eq!(KeyRing::open_or_create(&d, &kek, cfg(), NOW).unwrap().active_kid(), kid);
    }
}
