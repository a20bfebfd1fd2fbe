//! Compact JWS tokens signed with RS256 (RFC 7515, RFC 7519, RFC 8725).
//!
//! The verifier accepts exactly one algorithm, RS256, with keys from a
//! [`KeySet`] only. [`verify`] checks, in this order:
//!
//! 1. the token is at most [`MAX_TOKEN_BYTES`] long, has three parts, and
//!    its header part at most [`MAX_HEADER_BYTES`] — before any decoding;
//! 2. the header: `alg` exactly `RS256` (so `none` and the HS256
//!    key-confusion attack fail), none of [`FORBIDDEN_HEADERS`], a `kid`;
//! 3. the `kid` is in the key set, and the signature verifies;
//! 4. the `typ` header, if the [`Validation`] names one;
//! 5. the registered claims: `iss`, `aud`, `exp`, `nbf`, `iat` (clock skew
//!    at most [`MAX_CLOCK_SKEW_SECS`]);
//! 6. the caller's claims type deserialises from the payload.
//!
//! [`Verifier::verify_access`] adds revocation of `jti`. Nothing here
//! panics on any input; token text never reaches an error message.
//!
//! ```
//! use aws_lc_rs::rsa::{KeyPair, KeySize};
//! use aws_lc_rs::signature::KeyPair as _;
//! use seqshield_auth::jwt::{self, KeySet, Validation};
//!
//! let key = KeyPair::generate(KeySize::Rsa2048)?;
//! let mut keys = KeySet::new();
//! keys.insert("k1", key.public_key())?;
//! let claims = serde_json::json!({"iss": "https://auth", "aud": "gw", "exp": 2_000, "sub": "alice"});
//! let token = jwt::sign(&key, "k1", jwt::TYP_ID, &claims)?;
//! let got: serde_json::Value = jwt::verify(&token, &keys, &Validation::id_token("https://auth", "gw"), 1_000)?;
//! assert_eq!(got["sub"], "alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod claims;
mod error;
mod header;
mod keyset;
mod validation;
mod verifier;

pub use claims::{AccessClaims, Actor, IdClaims, TaskBinding};
pub use error::JwtError;
pub use header::{JwsHeader, FORBIDDEN_HEADERS};
pub use keyset::{thumbprint, KeySet, MAX_JWKS_BYTES, MAX_JWKS_KEYS, MAX_RSA_BITS, MIN_RSA_BITS};
pub use validation::{Validation, MAX_AUDIENCES};
pub use verifier::{NoRevocations, RevocationList, Verifier};

/// The only algorithm we sign or accept (RFC 7518 §3.3).
pub const ALGORITHM: &str = "RS256";
/// Longest compact token accepted, in bytes; longer ones are refused before
/// anything is decoded. Our access tokens are about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Longest base64url header part accepted, in bytes (768 bytes of JSON);
/// checked before decoding.
pub const MAX_HEADER_BYTES: usize = 1024;
/// Longest `kid` accepted, in bytes (an RFC 7638 thumbprint is 43).
pub const MAX_KID_LEN: usize = 128;
/// Largest clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// Longest lifetime (`exp - iat`) of an access token, in seconds.
pub const MAX_ACCESS_TOKEN_LIFETIME_SECS: u64 = 3600;
/// `typ` of an access token (RFC 9068 §2.1).
pub const TYP_ACCESS: &str = "at+jwt";
/// `typ` of an ID token.
pub const TYP_ID: &str = "JWT";

/// Largest RS256 signature (an 8192-bit modulus), in bytes.
const MAX_SIGNATURE_BYTES: usize = MAX_RSA_BITS / 8;
/// Largest decoded header, in bytes.
const MAX_HEADER_JSON: usize = MAX_HEADER_BYTES / 4 * 3;

/// The three parts of a compact JWS, still encoded.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`: what the signature covers (RFC 7515 §5.2).
    signing_input: &'a str,
}

/// Applies the size bounds and splits on the two dots; decodes nothing.
fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::too_large(token.len(), MAX_TOKEN_BYTES));
    }
    let (header, rest) = token.split_once('.').ok_or(JwtError::malformed("not three dot-separated parts"))?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(JwtError::too_large(header.len(), MAX_HEADER_BYTES));
    }
    let (payload, signature) = rest.split_once('.').ok_or(JwtError::malformed("not three dot-separated parts"))?;
    if signature.contains('.') {
        // Five parts would be a JWE (RFC 7516 §7.1); we take JWS only.
        return Err(JwtError::malformed("not three dot-separated parts"));
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(Parts { header, payload, signature, signing_input })
}

/// Decodes unpadded base64url (RFC 7515 §2) into `buf`; refuses padding,
/// other alphabets, and non-canonical trailing bits.
fn decode_into<'b>(part: &str, buf: &'b mut [u8]) -> Result<&'b [u8], JwtError> {
    match URL_SAFE_NO_PAD.decode_slice(part.as_bytes(), buf) {
        Ok(n) => Ok(&buf[..n]),
        Err(_) => Err(JwtError::malformed("a part is not unpadded base64url or is too long")),
    }
}

/// Whether `json` starts (after whitespace) with `{`: serde would also read
/// a struct from an array, which a JOSE header or claims set never is.
fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

/// Reads and checks the header of `token` without verifying its signature:
/// the size bounds, `alg` RS256, no forbidden parameter, a `kid`. For
/// choosing a key set (e.g. refreshing a federated issuer's JWKS on an
/// unknown `kid`); never act on the result otherwise.
pub fn peek_header(token: &str) -> Result<JwsHeader, JwtError> {
    let parts = split(token)?;
    let mut hbuf = [0u8; MAX_HEADER_JSON];
    let json = decode_into(parts.header, &mut hbuf)?;
    header::check(json).map(JwsHeader::from)
}

/// Verifies a compact RS256 token and returns its claims as `T`. See the
/// [module documentation](self) for the checks and their order. `now` is
/// seconds since the Unix epoch.
pub fn verify<T: DeserializeOwned>(token: &str, keys: &KeySet, v: &Validation, now: u64) -> Result<T, JwtError> {
    let parts = split(token)?;
    let mut hbuf = [0u8; MAX_HEADER_JSON];
    let header = header::check(decode_into(parts.header, &mut hbuf)?)?;
    let key = keys.get(&header.kid).ok_or_else(|| JwtError::UnknownKid { kid: header.kid.clone().into_owned() })?;
    let mut sbuf = [0u8; MAX_SIGNATURE_BYTES];
    let signature = decode_into(parts.signature, &mut sbuf)?;
    if !key.verify(parts.signing_input.as_bytes(), signature) {
        return Err(JwtError::BadSignature);
    }
    if let Some(expected) = v.typ {
        if !header::typ_matches(header.typ.as_deref(), expected) {
            return Err(JwtError::BadTyp);
        }
    }
    // Sized to this payload (a few hundred bytes), not to the bound.
    let mut pbuf = vec![0u8; base64::decoded_len_estimate(parts.payload.len())];
    let payload = decode_into(parts.payload, &mut pbuf)?;
    v.check_registered(payload, now)?;
    serde_json::from_slice(payload).map_err(|_| JwtError::BadClaims { reason: "claims do not have the expected shape" })
}

/// Signs `claims` as a compact RS256 token with header
/// `{"alg":"RS256","typ":typ,"kid":kid}`. Refuses to produce a token that
/// [`verify`] would refuse for its size.
pub fn sign<T: Serialize + ?Sized>(key: &RsaKeyPair, kid: &str, typ: &str, claims: &T) -> Result<String, JwtError> {
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Err(JwtError::Sign { reason: "kid is empty or too long" });
    }
    let header = header::encode(typ, kid)?;
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Sign { reason: "claims do not serialise" })?;
    let sig_len = key.public_modulus_len();
    if sig_len > MAX_SIGNATURE_BYTES {
        return Err(JwtError::Sign { reason: "key longer than 8192 bits" });
    }
    let b64 = |n: usize| n.div_ceil(3) * 4 - (3 - n % 3) % 3;
    let (h, p, s) = (b64(header.len()), b64(payload.len()), b64(sig_len));
    if h > MAX_HEADER_BYTES {
        return Err(JwtError::too_large(h, MAX_HEADER_BYTES));
    }
    let total = h + 1 + p + 1 + s;
    if total > MAX_TOKEN_BYTES {
        return Err(JwtError::too_large(total, MAX_TOKEN_BYTES));
    }
    let mut token = String::with_capacity(total);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let mut sbuf = [0u8; MAX_SIGNATURE_BYTES];
    let signature = &mut sbuf[..sig_len];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), token.as_bytes(), signature)
        .map_err(|_| JwtError::Sign { reason: "RSA signing failed" })?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    debug_assert_eq!(token.len(), total);
    Ok(token)
}

#[cfg(test)]
pub(crate) mod testkit {
    //! A shared RSA-2048 test key (generation takes a moment).

    use std::sync::OnceLock;

    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;

    use super::*;

    pub(crate) const ISS: &str = "https://auth.test";
    pub(crate) const AUD: &str = "gateway";
    pub(crate) const NOW: u64 = 1_800_000_000;

    /// Two key pairs and their kids.
    pub(crate) fn keys() -> &'static [(KeyPair, String); 2] {
        static KEYS: OnceLock<[(KeyPair, String); 2]> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mk = || {
                let k = KeyPair::generate(KeySize::Rsa2048).unwrap();
                let kid = thumbprint(
                    k.public_key().modulus().big_endian_without_leading_zero(),
                    k.public_key().exponent().big_endian_without_leading_zero(),
                );
                (k, kid)
            };
            [mk(), mk()]
        })
    }

    /// A key set holding the first key only.
    pub(crate) fn keyset() -> KeySet {
        let (k, kid) = &keys()[0];
        let mut set = KeySet::new();
        set.insert(kid.clone(), k.public_key()).unwrap();
        set
    }

    pub(crate) fn access_claims() -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "alice".into(),
            aud: AUD.into(),
            exp: NOW + 600,
            iat: NOW,
            nbf: NOW,
            jti: "jti-1".into(),
            scope: crate::ScopeSet::parse("read write").unwrap(),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            acr: "mfa".into(),
            clearance: crate::Clearance::Restricted,
            client_id: "cli".into(),
            act: None,
            tsk: None,
        }
    }

    /// An access token signed with the first key.
    pub(crate) fn access_token(claims: &AccessClaims) -> String {
        let (k, kid) = &keys()[0];
        sign(k, kid, TYP_ACCESS, claims).unwrap()
    }

    /// A token with arbitrary header and payload JSON and a real signature
    /// from key `which`.
    pub(crate) fn raw_token(which: usize, header: &str, payload: &str) -> String {
        let mut t = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let mut sig = vec![0u8; keys()[which].0.public_modulus_len()];
        keys()[which].0.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), t.as_bytes(), &mut sig).unwrap();
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(sig));
        t
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::hmac;
    use aws_lc_rs::signature::KeyPair as _;

    use super::testkit::*;
    use super::*;

    fn access_validation() -> Validation {
        Validation::access(ISS, AUD)
    }

    fn check(token: &str) -> Result<AccessClaims, JwtError> {
        verify(token, &keyset(), &access_validation(), NOW)
    }

    fn kid() -> &'static str {
        &keys()[0].1
    }

    fn payload() -> String {
        serde_json::to_string(&access_claims()).unwrap()
    }

    #[test]
    fn round_trip() {
        let c = access_claims();
        assert_eq!(check(&access_token(&c)), Ok(c));
    }

    #[test]
    fn alg_none_is_refused() {
        // RFC 8725 §2.1: an unsigned token must never verify.
        let h = format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#, kid());
        let t = format!("{}.{}.", URL_SAFE_NO_PAD.encode(&h), URL_SAFE_NO_PAD.encode(payload()));
        assert_eq!(check(&t), Err(JwtError::BadAlgorithm));
        let signed = raw_token(0, &h, &payload());
        assert_eq!(check(&signed), Err(JwtError::BadAlgorithm));
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        // RFC 8725 §2.1 key confusion: HMAC keyed with public key bytes
        // anyone can fetch from the JWKS.
        let public = keys()[0].0.public_key().as_ref().to_vec();
        let h = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#, kid());
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(payload()));
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &public), input.as_bytes());
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(check(&t), Err(JwtError::BadAlgorithm));
    }

    #[test]
    fn unknown_kid_is_refused() {
        // Only keys we published may sign; no fallback to "try every key".
        let h = r#"{"alg":"RS256","typ":"at+jwt","kid":"someone-else"}"#;
        assert_eq!(check(&raw_token(0, h, &payload())), Err(JwtError::UnknownKid { kid: "someone-else".into() }));
    }

    #[test]
    fn embedded_jwk_jku_x5u_x5c_crit_headers_are_refused() {
        // A key shipped in the token would let its author choose the key.
        for (name, value) in [
            ("jwk", r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#),
            ("jku", r#""https://evil/jwks""#),
            ("x5u", r#""https://evil/cert""#),
            ("x5c", r#"["MIIB"]"#),
            ("crit", r#"["exp"]"#),
        ] {
            let h = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}","{name}":{value}}}"#, kid());
            assert_eq!(check(&raw_token(0, &h, &payload())), Err(JwtError::ForbiddenHeader { name }), "{name}");
        }
    }

    #[test]
    fn signature_from_another_key_is_refused() {
        // Knowing our kid is not enough: the signature must be ours.
        let h = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, kid());
        assert_eq!(check(&raw_token(1, &h, &payload())), Err(JwtError::BadSignature));
    }

    #[test]
    fn tampered_payload_is_refused() {
        // Raising one's own clearance must break the signature.
        let t = access_token(&access_claims());
        let mut c = access_claims();
        c.clearance = crate::Clearance::Controlled;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(check(&forged), Err(JwtError::BadSignature));
    }

    #[test]
    fn wrong_issuer_is_refused() {
        // A token from another issuer, even one sharing our keys, is not ours.
        let mut c = access_claims();
        c.iss = "https://evil".into();
        assert_eq!(check(&access_token(&c)), Err(JwtError::WrongIssuer));
    }

    #[test]
    fn wrong_audience_is_refused() {
        // A token for another service must not be replayable here.
        let mut c = access_claims();
        c.aud = "other-service".into();
        assert_eq!(check(&access_token(&c)), Err(JwtError::WrongAudience));
    }

    #[test]
    fn expired_token_is_refused() {
        // Stolen tokens stop working at exp (plus at most 60 s of skew).
        let mut c = access_claims();
        c.exp = NOW - MAX_CLOCK_SKEW_SECS;
        assert_eq!(check(&access_token(&c)), Err(JwtError::Expired));
        c.exp = NOW - MAX_CLOCK_SKEW_SECS + 1;
        assert!(check(&access_token(&c)).is_ok(), "within the skew");
    }

    #[test]
    fn future_nbf_is_refused() {
        // A token minted for later must not work now.
        let mut c = access_claims();
        c.nbf = NOW + MAX_CLOCK_SKEW_SECS + 1;
        assert_eq!(check(&access_token(&c)), Err(JwtError::NotYetValid));
    }

    #[test]
    fn wrong_typ_is_refused() {
        // An ID token must not pass as an access token (RFC 8725 §3.11).
        let (k, kid) = &keys()[0];
        let t = sign(k, kid, TYP_ID, &access_claims()).unwrap();
        assert_eq!(check(&t), Err(JwtError::BadTyp));
        let no_typ = raw_token(0, &format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#), &payload());
        assert_eq!(check(&no_typ), Err(JwtError::BadTyp));
        let long_form =
            raw_token(0, &format!(r#"{{"alg":"RS256","typ":"application/at+jwt","kid":"{kid}"}}"#), &payload());
        assert!(check(&long_form).is_ok());
    }

    #[test]
    fn oversized_token_is_refused_before_parsing() {
        // Not even valid base64: only the length can have refused it.
        let t = "!".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(check(&t), Err(JwtError::TooLarge { len: MAX_TOKEN_BYTES + 1, max: MAX_TOKEN_BYTES }));
        assert_eq!(peek_header(&t).err().map(|e| e.code()), Some("too_large"));
    }

    #[test]
    fn oversized_header_is_refused_before_parsing() {
        // A huge header would cost base64 and JSON work before any check.
        let t = format!("{}.e30.AA", "!".repeat(MAX_HEADER_BYTES + 1));
        assert_eq!(check(&t), Err(JwtError::TooLarge { len: MAX_HEADER_BYTES + 1, max: MAX_HEADER_BYTES }));
    }

    #[test]
    fn sign_refuses_tokens_verify_would_refuse_for_size() {
        let (k, kid) = &keys()[0];
        let big = serde_json::json!({ "x": "a".repeat(MAX_TOKEN_BYTES) });
        assert_eq!(sign(k, kid, TYP_ACCESS, &big).err().map(|e| e.code()), Some("too_large"));
    }

    #[test]
    fn wrong_part_count_and_bad_base64_are_malformed() {
        let t = access_token(&access_claims());
        let code = |s: &str| check(s).err().map(|e| e.code());
        assert_eq!(code(""), Some("malformed"));
        assert_eq!(code("a.b"), Some("malformed"));
        assert_eq!(code(&format!("{t}.x.y")), Some("malformed"));
        assert_eq!(code(&format!("{t}=")), Some("malformed"), "padding");
        assert_eq!(code(&t.replacen('.', "+.", 1)), Some("malformed"), "standard alphabet");
        let sig_start = t.rfind('.').unwrap() + 1;
        assert_eq!(code(&t[..sig_start + 12]), Some("bad_signature"), "truncated signature");
    }

    #[test]
    fn largest_parts_decode_into_their_buffers() {
        // An RSA-8192 signature fills the signature buffer exactly; base64
        // must not refuse it for a conservative length estimate.
        let sig = URL_SAFE_NO_PAD.encode([0xa5u8; MAX_SIGNATURE_BYTES]);
        assert_eq!(decode_into(&sig, &mut [0u8; MAX_SIGNATURE_BYTES]).unwrap().len(), MAX_SIGNATURE_BYTES);
        let header = URL_SAFE_NO_PAD.encode([b' '; MAX_HEADER_JSON]);
        assert_eq!(header.len(), MAX_HEADER_BYTES);
        assert_eq!(decode_into(&header, &mut [0u8; MAX_HEADER_JSON]).unwrap().len(), MAX_HEADER_JSON);
        let too_long = URL_SAFE_NO_PAD.encode([0u8; MAX_SIGNATURE_BYTES + 1]);
        assert!(decode_into(&too_long, &mut [0u8; MAX_SIGNATURE_BYTES]).is_err());
    }

    #[test]
    fn peek_header_reads_without_a_key() {
        let t = access_token(&access_claims());
        let h = peek_header(&t).unwrap();
        assert_eq!((h.alg.as_str(), h.typ.as_deref(), h.kid.as_str()), ("RS256", Some("at+jwt"), kid()));
        let none = format!("{}.e30.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#));
        assert_eq!(peek_header(&none), Err(JwtError::BadAlgorithm));
    }

    #[test]
    fn claims_of_the_wrong_shape_are_bad_claims() {
        let h = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, kid());
        let p = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{}}}"#, NOW + 10);
        assert_eq!(check(&raw_token(0, &h, &p)).err().map(|e| e.code()), Some("bad_claims"));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn any_check(t: &str) {
            // Must return (not panic), and never Ok: none of these was
            // signed by us as it stands.
            assert!(check(t).is_err());
            let _ = peek_header(t);
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn random_strings_never_panic_and_never_verify(s in "\\PC{0,300}") {
                any_check(&s);
            }

            #[test]
            fn random_three_part_tokens_never_verify(
                h in "[A-Za-z0-9_-]{0,200}", p in "[A-Za-z0-9_-]{0,400}", s in "[A-Za-z0-9_-]{0,400}",
            ) {
                any_check(&format!("{h}.{p}.{s}"));
            }

            #[test]
            fn garbled_header_json_never_verifies(json in "\\PC{0,200}") {
                let h = URL_SAFE_NO_PAD.encode(json.as_bytes());
                any_check(&format!("{h}.{}.AAAA", URL_SAFE_NO_PAD.encode(payload())));
            }

            #[test]
            fn any_single_byte_change_is_refused(pos in any::<proptest::sample::Index>(), byte in 0x21u8..0x7f) {
                let t = access_token(&access_claims());
                let mut b = t.clone().into_bytes();
                let i = pos.index(b.len());
                prop_assume!(b[i] != byte);
                b[i] = byte;
                let s = String::from_utf8(b).unwrap();
                // A change in the signature's last character can leave the
                // decoded bytes equal only if the base64 were lenient; ours
                // is strict, so every change must fail.
                prop_assert!(check(&s).is_err(), "{s}");
            }
        }
    }
}
