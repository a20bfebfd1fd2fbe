//! Time-based one-time passwords (RFC 6238) on top of HOTP (RFC 4226):
//! HMAC-SHA1, 6 digits, 30-second steps, one step of drift either way.
//!
//! [`verify`] returns the step a code matched; the caller must then call
//! `Store::use_totp_step` so that the same code cannot be used twice
//! (RFC 6238 §5.2).

use std::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// Secret length generated for new enrolments, in bytes (RFC 4226 §4 R6
/// recommends 160 bits).
pub const SECRET_LEN: usize = 20;
/// Shortest secret accepted, in bytes (RFC 4226 §4 R6: at least 128 bits).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 64;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Seconds per step (RFC 6238 §5.2 recommends 30).
pub const STEP_SECS: u64 = 30;
/// Steps of clock drift accepted on either side (RFC 6238 §5.2 / §6).
pub const WINDOW_STEPS: u64 = 1;
/// Longest `otpauth://` URI [`qr_svg`] and [`qr_terminal`] will encode.
pub const MAX_URI_LEN: usize = 1024;

/// Why a TOTP operation failed. Never carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A secret outside [`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`] bytes.
    #[error("TOTP secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes, got {0}")]
    BadLength(usize),
    /// Base32 text with a character outside RFC 4648 §6's alphabet.
    #[error("TOTP secret is not valid base32")]
    BadBase32,
    /// The URI is too long for a QR code.
    #[error("enrolment URI is longer than {MAX_URI_LEN} bytes")]
    UriTooLong,
    /// The QR encoder refused the data.
    #[error("QR encoding failed: {0}")]
    Qr(qrcode::types::QrError),
}

/// A shared TOTP secret. Zeroed on drop, redacted in `Debug`; reading the
/// bytes is an explicit [`TotpSecret::expose_bytes`] call.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A fresh random [`SECRET_LEN`]-byte secret.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TotpError::Random)?;
        Ok(Self(bytes))
    }

    /// Wraps existing secret bytes ([`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(TotpError::BadLength(bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// Parses the base32 form found in `otpauth://` URIs (RFC 4648 §6,
    /// case-insensitive, padding and spaces ignored).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let bytes = base32_decode(text).ok_or(TotpError::BadBase32)?;
        Self::from_bytes(&bytes)
    }

    /// The raw secret. Handle with care: it is the second factor.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as unpadded base32, as authenticator apps expect. Handle
    /// with care: it is the second factor.
    pub fn expose_base32(&self) -> Zeroizing<String> {
        base32_encode(&self.0)
    }
}

/// HOTP (RFC 4226 §5.3) with `digits` digits; SHA-1 as RFC 6238 §1.2 defaults.
fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation, RFC 4226 §5.4.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    let value = bin % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// The step containing `now` (RFC 6238 §4.2, T0 = 0).
pub fn step_at(now: u64) -> u64 {
    now / STEP_SECS
}

/// The 6-digit code for `step`.
pub fn code_at(secret: &TotpSecret, step: u64) -> String {
    hotp(secret.expose_bytes(), step, DIGITS)
}

/// Checks `code` against the steps around `now` ([`WINDOW_STEPS`] either
/// way) and returns the step it matched. Every candidate is computed and
/// compared in constant time, whatever matches. Anything other than exactly
/// [`DIGITS`] ASCII digits is refused.
///
/// The caller must then record the step with `Store::use_totp_step`, which
/// refuses a step at or before the last one used (RFC 6238 §5.2).
pub fn verify(secret: &TotpSecret, code: &str, now: u64) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut matched = None;
    for step in current.saturating_sub(WINDOW_STEPS)..=current.saturating_add(WINDOW_STEPS) {
        let expected = code_at(secret, step);
        let equal = aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok();
        if equal && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The Key URI Format enrolment URI (`otpauth://totp/ISSUER:ACCOUNT?...`)
/// that authenticator apps scan. It contains the secret: show it once, to
/// the user being enrolled, and never log it.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let issuer_enc = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer_enc}:{}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent_encode(account),
        secret.expose_base32().as_str(),
    )
}

/// An inline SVG QR code for `uri` (only `<svg>`, `<rect>` and `<path>`; no
/// scripts or external references).
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = qr(uri)?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

/// The QR code for `uri` drawn with Unicode half blocks, for a terminal
/// (light modules drawn, so it scans on dark backgrounds).
pub fn qr_terminal(uri: &str) -> Result<String, TotpError> {
    use qrcode::render::unicode::Dense1x2;
    let code = qr(uri)?;
    Ok(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

fn qr(uri: &str) -> Result<qrcode::QrCode, TotpError> {
    if uri.len() > MAX_URI_LEN {
        return Err(TotpError::UriTooLong);
    }
    qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).map_err(TotpError::Qr)
}

/// Percent-encodes everything but RFC 3986 §2.3 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 §6 base32 without padding.
fn base32_encode(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(5) * 8));
    let (mut buf, mut bits) = (0u16, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[usize::from((buf >> bits) & 31)]));
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[usize::from((buf << (5 - bits)) & 31)]));
    }
    out
}

fn base32_decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    let (mut buf, mut bits) = (0u16, 0u32);
    for c in text.bytes().filter(|&c| c != b'=' && c != b' ') {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: (time, 8-digit TOTP).
    const RFC6238_SHA1: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let key = b"12345678901234567890";
        for (time, expected) in RFC6238_SHA1 {
            assert_eq!(hotp(key, step_at(time), 8), expected, "T = {time}");
            // The 6-digit code is the same value mod 10^6.
            let secret = TotpSecret::from_bytes(key).unwrap();
            assert_eq!(code_at(&secret, step_at(time)), expected[2..], "T = {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *code);
        }
    }

    #[test]
    fn verify_accepts_one_step_of_drift_and_reports_the_step() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let now = 1_111_111_111;
        let s = step_at(now);
        assert_eq!(verify(&secret, &code_at(&secret, s), now), Some(s));
        assert_eq!(verify(&secret, &code_at(&secret, s - 1), now), Some(s - 1));
        assert_eq!(verify(&secret, &code_at(&secret, s + 1), now), Some(s + 1));
        assert_eq!(verify(&secret, &code_at(&secret, s - 2), now), None);
        assert_eq!(verify(&secret, &code_at(&secret, s + 2), now), None);
    }

    #[test]
    fn verify_refuses_malformed_codes() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let good = code_at(&secret, step_at(59));
        for bad in ["", "12345", "1234567", "12345a", " 12345", "１２３４５６", &format!("{good}\n")] {
            assert_eq!(verify(&secret, bad, 59), None, "{bad:?}");
        }
        assert_eq!(verify(&secret, &good, 59), Some(1));
        // Step 0 has no predecessor: no underflow.
        assert_eq!(verify(&secret, &code_at(&secret, 0), 0), Some(0));
    }

    #[test]
    fn base32_round_trip_and_rfc4648_vectors() {
        assert_eq!(base32_encode(b"foobar").as_str(), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f").as_str(), "MY");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap().as_slice(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap().as_slice(), b"foobar");
        assert!(base32_decode("MZXW1").is_none());
        let s = TotpSecret::generate().unwrap();
        assert_eq!(s.expose_bytes().len(), SECRET_LEN);
        assert_eq!(TotpSecret::from_base32(&s.expose_base32()).unwrap(), s);
    }

    #[test]
    fn secrets_are_redacted_and_bounded() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(format!("{s:?}"), "TotpSecret(<redacted>)");
        assert!(matches!(TotpSecret::from_bytes(&[0; 15]), Err(TotpError::BadLength(15))));
        assert!(TotpSecret::from_bytes(&[0; 65]).is_err());
    }

    #[test]
    fn otpauth_uri_encodes_labels() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let uri = otpauth_uri(&s, "seq shield", "alice@example.org");
        assert_eq!(
            uri,
            "otpauth://totp/seq%20shield:alice%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=seq%20shield&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn qr_renders_svg_without_scripts_and_for_terminals() {
        let svg = qr_svg("otpauth://totp/x:y?secret=AAAA").unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"));
        let term = qr_terminal("otpauth://totp/x:y?secret=AAAA").unwrap();
        assert!(term.lines().count() > 10);
        assert!(matches!(qr_svg(&"a".repeat(MAX_URI_LEN + 1)), Err(TotpError::UriTooLong)));
    }
}
