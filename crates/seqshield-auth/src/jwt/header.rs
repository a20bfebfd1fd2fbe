//! The JOSE header of a compact JWS (RFC 7515 §4): parsed without trusting
//! it, and written for the tokens we sign.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, IgnoredAny};

use super::{JwtError, ALGORITHM, MAX_KID_LEN};

/// Header parameters we refuse whatever their value (even `null`):
///
/// - `jwk`, `jku`, `x5u`, `x5c`: a key, or where to fetch one, chosen by the
///   token's author. Trusting them lets anyone sign with their own key
///   (RFC 8725 §3.10 and §2.6); our keys come only from our key set.
/// - `crit` (RFC 7515 §4.1.11): extensions we would be required to
///   understand; we understand none.
/// - `b64` (RFC 7797): changes what the signature covers.
pub const FORBIDDEN_HEADERS: [&str; 6] = ["jwk", "jku", "x5u", "x5c", "crit", "b64"];

/// The header fields a verifier acts on, from [`super::peek_header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwsHeader {
    /// The algorithm; always `RS256` in a header that passed the checks.
    pub alg: String,
    /// The media type of the whole token (`at+jwt`, `JWT`), if present.
    pub typ: Option<String>,
    /// The signing key's id.
    pub kid: String,
}

/// A member whose presence alone matters: deserialises from any JSON value.
#[derive(Default)]
pub(super) struct Present(pub(super) bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Self(true))
    }
}

/// The header as sent. serde's derived struct refuses duplicate members, so
/// `{"alg":"RS256","alg":"none"}` cannot mean two things.
#[derive(serde::Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    jwk: Present,
    #[serde(default)]
    jku: Present,
    #[serde(default)]
    x5u: Present,
    #[serde(default)]
    x5c: Present,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    b64: Present,
}

/// A checked header, borrowing from the decoded header bytes.
pub(super) struct Checked<'a> {
    pub(super) typ: Option<Cow<'a, str>>,
    pub(super) kid: Cow<'a, str>,
}

/// Parses decoded header JSON and applies every header rule: `alg` exactly
/// `RS256`, no forbidden parameter, a `kid` of at most [`MAX_KID_LEN`] bytes.
pub(super) fn check(json: &[u8]) -> Result<Checked<'_>, JwtError> {
    // RFC 7515 §4: the header is a JSON object (serde would also take an
    // array for a struct).
    if !super::is_json_object(json) {
        return Err(JwtError::malformed("header is not a JSON object"));
    }
    let raw: RawHeader<'_> =
        serde_json::from_slice(json).map_err(|_| JwtError::malformed("header is not a JSON object we accept"))?;
    // RFC 8725 §3.1: one algorithm, compared exactly; `none` and HMAC with
    // the public key as secret (key confusion) fall here.
    if raw.alg.as_deref() != Some(ALGORITHM) {
        return Err(JwtError::BadAlgorithm);
    }
    let flags = [raw.jwk.0, raw.jku.0, raw.x5u.0, raw.x5c.0, raw.crit.0, raw.b64.0];
    if let Some(i) = flags.iter().position(|&p| p) {
        return Err(JwtError::ForbiddenHeader { name: FORBIDDEN_HEADERS[i] });
    }
    let kid = raw.kid.ok_or(JwtError::malformed("header has no kid"))?;
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Err(JwtError::malformed("header kid is empty or too long"));
    }
    Ok(Checked { typ: raw.typ, kid })
}

/// Whether a `typ` header value names `expected` (RFC 7515 §4.1.9: media
/// types compare case-insensitively and may omit `application/`).
pub(super) fn typ_matches(typ: Option<&str>, expected: &str) -> bool {
    let Some(t) = typ else { return false };
    let t = match t.get(..12) {
        Some(p) if p.eq_ignore_ascii_case("application/") => &t[12..],
        _ => t,
    };
    t.eq_ignore_ascii_case(expected)
}

/// The JSON header of a token we sign: `{"alg":"RS256","typ":…,"kid":…}`.
pub(super) fn encode(typ: &str, kid: &str) -> Result<Vec<u8>, JwtError> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        alg: &'a str,
        typ: &'a str,
        kid: &'a str,
    }
    serde_json::to_vec(&Out { alg: ALGORITHM, typ, kid }).map_err(|_| JwtError::Sign { reason: "header encoding" })
}

impl From<Checked<'_>> for JwsHeader {
    fn from(c: Checked<'_>) -> Self {
        Self { alg: ALGORITHM.to_owned(), typ: c.typ.map(Cow::into_owned), kid: c.kid.into_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_alg_none_and_hs256_and_lowercase() {
        for alg in ["none", "HS256", "rs256", "RS384", "PS256", "RS256 "] {
            let json = format!(r#"{{"alg":"{alg}","kid":"k"}}"#);
            assert_eq!(check(json.as_bytes()).err(), Some(JwtError::BadAlgorithm), "{alg}");
        }
        assert_eq!(check(br#"{"kid":"k"}"#).err(), Some(JwtError::BadAlgorithm));
        assert_eq!(check(br#"{"alg":null,"kid":"k"}"#).err(), Some(JwtError::BadAlgorithm));
    }

    #[test]
    fn refuses_duplicate_alg() {
        // Parsers that keep the first or the last member disagree on what
        // such a header means.
        assert_eq!(check(br#"{"alg":"RS256","alg":"none","kid":"k"}"#).err().map(|e| e.code()), Some("malformed"));
    }

    #[test]
    fn refuses_every_forbidden_header_even_null() {
        for name in FORBIDDEN_HEADERS {
            let json = format!(r#"{{"alg":"RS256","kid":"k","{name}":null}}"#);
            assert_eq!(check(json.as_bytes()).err(), Some(JwtError::ForbiddenHeader { name }), "{name}");
        }
    }

    #[test]
    fn refuses_a_header_that_is_an_array() {
        assert_eq!(check(br#"["RS256",null,"k"]"#).err().map(|e| e.code()), Some("malformed"));
    }

    #[test]
    fn requires_a_bounded_kid() {
        assert_eq!(check(br#"{"alg":"RS256"}"#).err().map(|e| e.code()), Some("malformed"));
        assert_eq!(check(br#"{"alg":"RS256","kid":""}"#).err().map(|e| e.code()), Some("malformed"));
        let long = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(MAX_KID_LEN + 1));
        assert_eq!(check(long.as_bytes()).err().map(|e| e.code()), Some("malformed"));
        assert_eq!(check(br#"{"alg":"RS256","kid":7}"#).err().map(|e| e.code()), Some("malformed"));
    }

    #[test]
    fn typ_compares_as_a_media_type() {
        assert!(typ_matches(Some("at+jwt"), "at+jwt"));
        assert!(typ_matches(Some("application/AT+JWT"), "at+jwt"));
        assert!(!typ_matches(Some("JWT"), "at+jwt"));
        assert!(!typ_matches(None, "at+jwt"));
        assert!(!typ_matches(Some("é"), "at+jwt"));
    }

    #[test]
    fn encodes_the_three_members() {
        let h = encode("at+jwt", "abc").unwrap();
        assert_eq!(h, br#"{"alg":"RS256","typ":"at+jwt","kid":"abc"}"#);
        let c = check(&h).unwrap();
        assert_eq!(c.kid, "abc");
    }
}
