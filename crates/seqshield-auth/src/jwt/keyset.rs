//! Public verification keys by `kid`, and their JWKS form (RFC 7517).
//!
//! Each key is parsed into an aws-lc `ParsedPublicKey` once, when it enters
//! the set; verifying a token only looks the key up.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{Deserializer, SeqAccess, Visitor};

use super::header::Present;
use super::{JwtError, ALGORITHM, MAX_KID_LEN};

/// Largest JWKS document [`KeySet::from_jwks`] parses, in bytes. Real ones
/// (with `x5c` chains) are a few KiB per key.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys one JWKS may list.
pub const MAX_JWKS_KEYS: usize = 64;
/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3; NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (what aws-lc verifies).
pub const MAX_RSA_BITS: usize = 8192;
/// Longest public exponent accepted, in bytes.
const MAX_EXPONENT_BYTES: usize = 4;

/// One verification key.
pub(super) struct VerifyKey {
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
    parsed: ParsedPublicKey,
}

/// The public keys that may sign the tokens we accept, by `kid`.
///
/// Cloning is cheap (the parsed keys are shared).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
}

/// The RFC 7638 JWK thumbprint of an RSA public key: base64url of the
/// SHA-256 of `{"e":…,"kty":"RSA","n":…}` (members sorted, no whitespace,
/// §3.2). `n` and `e` are big-endian; leading zero bytes are ignored.
pub fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let json = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(strip_zeros(e)),
        URL_SAFE_NO_PAD.encode(strip_zeros(n))
    );
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, json.as_bytes()))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Checks RSA public components and parses them for RS256.
fn parse_components(n: &[u8], e: &[u8]) -> Result<(Vec<u8>, Vec<u8>, ParsedPublicKey), JwtError> {
    let bad = |reason| JwtError::BadKey { reason };
    let (n, e) = (strip_zeros(n), strip_zeros(e));
    let bits = match n.first() {
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if bits < MIN_RSA_BITS {
        return Err(bad("modulus shorter than 2048 bits"));
    }
    if bits > MAX_RSA_BITS {
        return Err(bad("modulus longer than 8192 bits"));
    }
    if n.last().is_some_and(|&b| b & 1 == 0) {
        return Err(bad("even modulus"));
    }
    // RFC 8017 §3.1: 3 <= e < n, odd; aws-lc also caps its size.
    let e_ok = !e.is_empty() && e.len() <= MAX_EXPONENT_BYTES && e[e.len() - 1] & 1 == 1 && (e.len() > 1 || e[0] >= 3);
    if !e_ok {
        return Err(bad("public exponent is not an odd number from 3 to 2^32"));
    }
    let parsed = PublicKeyComponents { n, e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| bad("aws-lc refused the key"))?;
    Ok((n.to_vec(), e.to_vec(), parsed))
}

impl KeySet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key `kid`: an aws-lc RSA public key, such as
    /// `RsaKeyPair::public_key()`. Refuses moduli outside 2048..=8192 bits.
    pub fn insert(&mut self, kid: impl Into<String>, key: &aws_lc_rs::rsa::PublicKey) -> Result<(), JwtError> {
        let n = key.modulus().big_endian_without_leading_zero();
        let e = key.exponent().big_endian_without_leading_zero();
        self.insert_components(kid, n, e)
    }

    /// Adds (or replaces) the key `kid` from its modulus and exponent
    /// (big-endian bytes).
    pub fn insert_components(&mut self, kid: impl Into<String>, n: &[u8], e: &[u8]) -> Result<(), JwtError> {
        let kid = kid.into();
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(JwtError::BadKey { reason: "kid is empty or too long" });
        }
        let (n, e, parsed) = parse_components(n, e)?;
        self.remove(&kid);
        self.keys.push(Arc::new(VerifyKey { kid, n, e, parsed }));
        Ok(())
    }

    /// Removes the key `kid`; returns whether it was there.
    pub fn remove(&mut self, kid: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.kid != kid);
        self.keys.len() != before
    }

    /// Whether the set holds a key `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.get(kid).is_some()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, in insertion order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// The key `kid`, if present.
    pub(super) fn get(&self, kid: &str) -> Option<&VerifyKey> {
        // A handful of keys: a linear scan beats hashing.
        self.keys.iter().find(|k| k.kid == kid).map(|k| &**k)
    }

    /// The set as a JWKS document (RFC 7517 §5): `{"keys":[…]}`, each key
    /// with `kty`, `use`, `alg`, `kid`, `n` and `e`.
    pub fn to_jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": ALGORITHM,
                    "kid": k.kid,
                    "n": URL_SAFE_NO_PAD.encode(&k.n),
                    "e": URL_SAFE_NO_PAD.encode(&k.e),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Parses a JWKS document (RFC 7517 §5), at most [`MAX_JWKS_BYTES`]
    /// long (checked before parsing) with at most [`MAX_JWKS_KEYS`] keys.
    ///
    /// Keys that are not for RS256 signatures are skipped: `kty` other than
    /// `RSA`, `use` other than `sig`, `alg` other than `RS256`, `key_ops`
    /// without `verify`. A key that is for RS256 must be usable, or the
    /// whole document is refused: a `kid`, valid `n` and `e` (modulus of
    /// 2048 to 8192 bits), no private members, no `kid` twice.
    pub fn from_jwks(bytes: &[u8]) -> Result<Self, JwtError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(JwtError::too_large(bytes.len(), MAX_JWKS_BYTES));
        }
        let bad = |reason| JwtError::BadJwks { reason };
        if !super::is_json_object(bytes) {
            return Err(bad("not a JSON object"));
        }
        let doc: Jwks<'_> = serde_json::from_slice(bytes).map_err(|_| bad("not a JWKS document"))?;
        let mut set = Self::new();
        for jwk in doc.keys.0 {
            if jwk.d.0 {
                return Err(bad("a key carries private members"));
            }
            let for_us = jwk.kty.as_deref() == Some("RSA")
                && jwk.use_.as_deref().is_none_or(|u| u == "sig")
                && jwk.alg.as_deref().is_none_or(|a| a == ALGORITHM)
                && jwk.key_ops.as_ref().is_none_or(|ops| ops.iter().any(|o| o == "verify"));
            if !for_us {
                continue;
            }
            let kid = jwk.kid.ok_or(bad("an RS256 key has no kid"))?;
            if set.contains(&kid) {
                return Err(bad("two keys share a kid"));
            }
            let decode = |s: Option<Cow<'_, str>>| {
                s.and_then(|s| URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()).ok_or(bad("n or e is not base64url"))
            };
            let (n, e) = (decode(jwk.n)?, decode(jwk.e)?);
            set.insert_components(kid.into_owned(), &n, &e)?;
        }
        Ok(set)
    }
}

impl VerifyKey {
    /// Whether `signature` is a valid RS256 signature of `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        // RFC 8017 §8.2.2 step 1: the signature is exactly k bytes.
        signature.len() == self.n.len() && self.parsed.verify_sig(message, signature).is_ok()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.kids().collect::<Vec<_>>()).finish()
    }
}

#[derive(serde::Deserialize)]
struct Jwks<'a> {
    #[serde(borrow)]
    keys: Bounded<Jwk<'a>>,
}

#[derive(serde::Deserialize)]
struct Jwk<'a> {
    #[serde(borrow)]
    kty: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "use")]
    use_: Option<Cow<'a, str>>,
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key_ops: Option<Bounded<Cow<'a, str>>>,
    #[serde(default)]
    d: Present,
}

/// A JSON array of at most [`MAX_JWKS_KEYS`] items, refused as it is read.
struct Bounded<T>(Vec<T>);

impl<T> Bounded<T> {
    fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Bounded<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {MAX_JWKS_KEYS} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if out.len() == MAX_JWKS_KEYS {
                        return Err(serde::de::Error::custom("too many items"));
                    }
                    out.push(item);
                }
                Ok(Bounded(out))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;

    /// RFC 7638 §3.1's example key and thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let n = URL_SAFE_NO_PAD.decode(RFC7638_N).unwrap();
        assert_eq!(thumbprint(&n, &[1, 0, 1]), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        // Leading zeros do not change the thumbprint.
        let mut padded = vec![0];
        padded.extend_from_slice(&n);
        assert_eq!(thumbprint(&padded, &[0, 1, 0, 1]), thumbprint(&n, &[1, 0, 1]));
    }

    fn jwks_with(members: &str) -> String {
        format!(r#"{{"keys":[{{"kty":"RSA","kid":"k1","n":"{RFC7638_N}","e":"AQAB"{members}}}]}}"#)
    }

    #[test]
    fn jwks_round_trips() {
        let set = KeySet::from_jwks(jwks_with("").as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains("k1"));
        let out = set.to_jwks();
        assert_eq!(out["keys"][0]["n"], RFC7638_N);
        assert_eq!(out["keys"][0]["alg"], "RS256");
        let again = KeySet::from_jwks(out.to_string().as_bytes()).unwrap();
        assert_eq!(again.kids().collect::<Vec<_>>(), ["k1"]);
    }

    #[test]
    fn jwks_skips_keys_not_for_rs256_signatures() {
        for members in [r#","use":"enc""#, r#","alg":"PS256""#, r#","key_ops":["encrypt"]"#] {
            assert!(KeySet::from_jwks(jwks_with(members).as_bytes()).unwrap().is_empty(), "{members}");
        }
        let ec = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AA","y":"AA"}]}"#;
        assert!(KeySet::from_jwks(ec.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn jwks_refuses_private_keys_weak_keys_and_missing_kids() {
        let code = |s: &str| KeySet::from_jwks(s.as_bytes()).err().map(|e| e.code());
        assert_eq!(code(&jwks_with(r#","d":"AQAB""#)), Some("bad_jwks"));
        let weak = format!(r#"{{"keys":[{{"kty":"RSA","kid":"w","n":"{}","e":"AQAB"}}]}}"#, &RFC7638_N[..172]);
        assert_eq!(code(&weak), Some("bad_key"));
        let no_kid = format!(r#"{{"keys":[{{"kty":"RSA","n":"{RFC7638_N}","e":"AQAB"}}]}}"#);
        assert_eq!(code(&no_kid), Some("bad_jwks"));
        let twice = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"k","n":"{RFC7638_N}","e":"AQAB"}},{{"kty":"RSA","kid":"k","n":"{RFC7638_N}","e":"AQAB"}}]}}"#
        );
        assert_eq!(code(&twice), Some("bad_jwks"));
        assert_eq!(code(&jwks_with("").replace("AQAB", "AQAB=")), Some("bad_jwks"));
        assert_eq!(code(&jwks_with("").replace("AQAB", "AQA")), Some("bad_key"));
        assert_eq!(code("[]"), Some("bad_jwks"));
    }

    #[test]
    fn jwks_size_and_count_are_bounded() {
        let big = vec![b' '; MAX_JWKS_BYTES + 1];
        assert_eq!(KeySet::from_jwks(&big).err().map(|e| e.code()), Some("too_large"));
        let many = format!(r#"{{"keys":[{}]}}"#, vec!["{}"; MAX_JWKS_KEYS + 1].join(","));
        assert_eq!(KeySet::from_jwks(many.as_bytes()).err().map(|e| e.code()), Some("bad_jwks"));
    }

    #[test]
    fn insert_takes_an_aws_lc_public_key_and_refuses_short_moduli() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let mut set = KeySet::new();
        set.insert("a", pair.public_key()).unwrap();
        assert!(set.contains("a") && !set.contains("b"));
        set.insert("a", pair.public_key()).unwrap();
        assert_eq!(set.len(), 1, "insert replaces a key with the same kid");
        let n = pair.public_key().modulus().big_endian_without_leading_zero().to_vec();
        assert_eq!(set.insert_components("s", &n[..n.len() - 1], &[1, 0, 1]).err().map(|e| e.code()), Some("bad_key"));
        assert!(set.remove("a") && set.is_empty());
    }
}
