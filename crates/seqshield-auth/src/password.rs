//! Password hashing with argon2id (RFC 9106), parameters from the OWASP
//! Password Storage Cheat Sheet: m = 19 456 KiB, t = 2, p = 1.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so
//! stronger parameters can be introduced later without a schema change.
//! Passwords are never logged and never appear in errors.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted, in characters (NIST SP 800-63B §5.1.1.2
/// asks for at least 8; we ask for more because accounts reach controlled data).
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted, in bytes: bounds the work one login attempt
/// can cause.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Argon2 memory cost in KiB (OWASP: 19 MiB).
pub const ARGON2_M_KIB: u32 = 19_456;
/// Argon2 passes (OWASP: 2).
pub const ARGON2_T: u32 = 2;
/// Argon2 lanes (OWASP: 1).
pub const ARGON2_P: u32 = 1;
/// Largest memory cost a stored hash may ask for when verifying, in KiB:
/// a tampered row cannot make one login allocate gigabytes.
pub const MAX_VERIFY_M_KIB: u32 = 262_144;
/// Salt length in bytes (RFC 9106 §3.1 recommends 16).
const SALT_LEN: usize = 16;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Fewer than [`MIN_PASSWORD_LEN`] characters.
    #[error("password is shorter than {MIN_PASSWORD_LEN} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_LEN`] bytes.
    #[error("password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The argon2 implementation refused the input.
    #[error("argon2: {0}")]
    Argon2(argon2::password_hash::Error),
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the length rules without hashing.
pub fn check_password(pw: &[u8]) -> Result<(), PasswordError> {
    if pw.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    // Characters, not bytes: a passphrase in any script counts the same.
    let chars = String::from_utf8_lossy(pw).chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// Hashes `pw` with argon2id and a fresh random salt; returns the PHC string.
/// Refuses passwords outside [`MIN_PASSWORD_LEN`]..=[`MAX_PASSWORD_LEN`].
pub fn hash_password(pw: &[u8]) -> Result<String, PasswordError> {
    check_password(pw)?;
    hash_unchecked(pw)
}

fn hash_unchecked(pw: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Argon2)?;
    let hash = hasher().hash_password(pw, &salt).map_err(PasswordError::Argon2)?;
    Ok(hash.to_string())
}

/// Whether `pw` matches the PHC string `phc`. Anything malformed, any
/// algorithm other than argon2id, or parameters above [`MAX_VERIFY_M_KIB`]
/// give `false` (after the same work as a real check, so the answer time
/// says nothing).
pub fn verify_password(phc: &str, pw: &[u8]) -> bool {
    if pw.len() > MAX_PASSWORD_LEN {
        dummy_verify(&pw[..MAX_PASSWORD_LEN]);
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        dummy_verify(pw);
        return false;
    };
    let acceptable = hash.algorithm.as_str() == "argon2id"
        && Params::try_from(&hash).is_ok_and(|p| p.m_cost() <= MAX_VERIFY_M_KIB && p.t_cost() <= 16 && p.p_cost() <= 4);
    if !acceptable {
        dummy_verify(pw);
        return false;
    }
    // `Argon2::verify_password` uses the parameters recorded in the hash and
    // compares the output in constant time.
    Argon2::default().verify_password(pw, &hash).is_ok()
}

/// Does the work of one [`verify_password`] against a fixed hash and throws
/// the answer away. Call it for unknown or disabled users so that "no such
/// user" takes as long as "wrong password".
pub fn dummy_verify(pw: &[u8]) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_unchecked(b"seqshield dummy password for timing").ok());
    if let Some(phc) = dummy {
        if let Ok(hash) = PasswordHash::new(phc) {
            let pw = &pw[..pw.len().min(MAX_PASSWORD_LEN)];
            let _ = std::hint::black_box(Argon2::default().verify_password(pw, &hash).is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn hash_then_verify() {
        let phc = hash_password(b"correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, b"correct horse battery"));
        assert!(!verify_password(&phc, b"correct horse batterz"));
        // Fresh salt each time.
        assert_ne!(phc, hash_password(b"correct horse battery").unwrap());
    }

    #[test]
    fn length_rules() {
        assert!(matches!(hash_password(b"short"), Err(PasswordError::TooShort)));
        assert!(matches!(hash_password(&[b'a'; MAX_PASSWORD_LEN + 1]), Err(PasswordError::TooLong)));
        // 12 characters in a non-Latin script are enough even though each is several bytes.
        assert!(check_password("ゲノムゲノムゲノムゲノム".as_bytes()).is_ok());
        assert!(check_password("ゲノム".as_bytes()).is_err());
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        assert!(!verify_password("", b"whatever whatever"));
        assert!(!verify_password("$argon2id$garbage", b"whatever whatever"));
        // argon2i (not id) is refused even when the password is right.
        let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).unwrap();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(!verify_password(&argon2i, b"correct horse battery"));
        // A hash asking for 4 GiB of memory is refused without running it.
        let huge =
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify_password(huge, b"whatever whatever"));
    }

    #[test]
    fn errors_never_contain_the_password() {
        let e = hash_password(b"hunter2").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }

    /// Guards the "unknown user" timing: dummy_verify must cost about what a
    /// real verify costs (same parameters), not be a no-op.
    #[test]
    fn dummy_verify_costs_like_a_real_verify() {
        let phc = hash_password(b"correct horse battery").unwrap();
        dummy_verify(b"warm up the dummy hash");
        let t = Instant::now();
        for _ in 0..3 {
            verify_password(&phc, b"wrong password here");
        }
        let real = t.elapsed();
        let t = Instant::now();
        for _ in 0..3 {
            dummy_verify(b"wrong password here");
        }
        let dummy = t.elapsed();
        let ratio = dummy.as_secs_f64() / real.as_secs_f64();
        assert!((0.2..5.0).contains(&ratio), "dummy {dummy:?} vs real {real:?}");
    }
}
