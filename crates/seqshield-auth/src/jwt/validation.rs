//! What a verifier expects of a token, and the registered-claim checks
//! (RFC 7519 §4.1) run once the signature holds.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};

use super::{JwtError, MAX_CLOCK_SKEW_SECS, TYP_ACCESS, TYP_ID};

/// Most entries an `aud` array may have.
pub const MAX_AUDIENCES: usize = 16;

/// What a token must say to be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// The exact `iss` expected.
    pub issuer: String,
    /// The audience that `aud` must be (or, as an array, contain).
    pub audience: String,
    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds; values
    /// above [`MAX_CLOCK_SKEW_SECS`] are treated as that.
    pub leeway_secs: u64,
    /// The `typ` header expected (RFC 8725 §3.11), or `None` to accept any.
    pub typ: Option<&'static str>,
}

impl Validation {
    /// Expects `issuer` and `audience`, any `typ`, and the largest allowed
    /// clock skew.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), audience: audience.into(), leeway_secs: MAX_CLOCK_SKEW_SECS, typ: None }
    }

    /// An access token (`typ` [`TYP_ACCESS`], RFC 9068 §4) for `audience`.
    pub fn access(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { typ: Some(TYP_ACCESS), ..Self::new(issuer, audience) }
    }

    /// An ID token (`typ` [`TYP_ID`]) for the client `client_id`.
    pub fn id_token(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self { typ: Some(TYP_ID), ..Self::new(issuer, client_id) }
    }

    /// The clock skew actually allowed: `leeway_secs`, at most
    /// [`MAX_CLOCK_SKEW_SECS`].
    pub fn leeway(&self) -> u64 {
        self.leeway_secs.min(MAX_CLOCK_SKEW_SECS)
    }

    /// Checks the registered claims of a decoded payload, in order: `iss`,
    /// `aud`, `exp` (required), `nbf`, `iat`.
    pub(super) fn check_registered(&self, payload: &[u8], now: u64) -> Result<(), JwtError> {
        if !super::is_json_object(payload) {
            return Err(JwtError::BadClaims { reason: "payload is not a JSON object" });
        }
        let r: Registered<'_> = serde_json::from_slice(payload)
            .map_err(|_| JwtError::BadClaims { reason: "registered claims are missing or mistyped" })?;
        if r.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(JwtError::WrongIssuer);
        }
        let aud_ok = match &r.aud {
            Some(Audience::One(a)) => a == &self.audience,
            Some(Audience::Many(all)) => all.iter().any(|a| a == &self.audience),
            None => false,
        };
        if !aud_ok {
            return Err(JwtError::WrongAudience);
        }
        let leeway = self.leeway();
        let exp = r.exp.ok_or(JwtError::BadClaims { reason: "no exp" })?;
        // RFC 7519 §4.1.4: now must be before exp (plus skew).
        if exp.saturating_add(leeway) <= now {
            return Err(JwtError::Expired);
        }
        // RFC 7519 §4.1.5: now must be at or after nbf (minus skew).
        if r.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(JwtError::NotYetValid);
        }
        if r.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(JwtError::IssuedInFuture);
        }
        Ok(())
    }
}

/// The registered claims we check. Other members are skipped; a member
/// given twice is refused (serde's derive), so `aud` cannot mean two things.
#[derive(serde::Deserialize)]
struct Registered<'a> {
    #[serde(borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aud: Option<Audience<'a>>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
}

/// RFC 7519 §4.1.3: one string, or an array of strings.
enum Audience<'a> {
    One(Cow<'a, str>),
    Many(Vec<String>),
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Audience<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Audience<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string or an array of at most {MAX_AUDIENCES} strings")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Audience::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience::One(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(a) = seq.next_element::<String>()? {
                    if all.len() == MAX_AUDIENCES {
                        return Err(serde::de::Error::custom("too many audiences"));
                    }
                    all.push(a);
                }
                Ok(Audience::Many(all))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn v() -> Validation {
        Validation::new("https://iss", "gw")
    }

    fn check(json: &str) -> Result<(), JwtError> {
        v().check_registered(json.as_bytes(), NOW)
    }

    fn claims(iss: &str, aud: &str, exp: u64, extra: &str) -> String {
        format!(r#"{{"iss":"{iss}","aud":{aud},"exp":{exp}{extra}}}"#)
    }

    #[test]
    fn accepts_good_claims_and_audience_arrays() {
        assert_eq!(check(&claims("https://iss", r#""gw""#, NOW + 10, "")), Ok(()));
        assert_eq!(check(&claims("https://iss", r#"["x","gw"]"#, NOW + 10, "")), Ok(()));
    }

    #[test]
    fn wrong_issuer_is_refused() {
        assert_eq!(check(&claims("https://evil", r#""gw""#, NOW + 10, "")), Err(JwtError::WrongIssuer));
        assert_eq!(check(&format!(r#"{{"aud":"gw","exp":{}}}"#, NOW + 10)), Err(JwtError::WrongIssuer));
    }

    #[test]
    fn wrong_audience_is_refused() {
        assert_eq!(check(&claims("https://iss", r#""gateway""#, NOW + 10, "")), Err(JwtError::WrongAudience));
        assert_eq!(check(&claims("https://iss", r#"["x"]"#, NOW + 10, "")), Err(JwtError::WrongAudience));
        assert_eq!(check(&claims("https://iss", "[]", NOW + 10, "")), Err(JwtError::WrongAudience));
        let many = format!("[{}]", vec![r#""gw""#; MAX_AUDIENCES + 1].join(","));
        assert_eq!(check(&claims("https://iss", &many, NOW + 10, "")).err().map(|e| e.code()), Some("bad_claims"));
    }

    #[test]
    fn duplicate_audience_member_is_refused() {
        // One parser would read "evil", another "gw".
        let json = format!(r#"{{"iss":"https://iss","aud":"evil","aud":"gw","exp":{}}}"#, NOW + 10);
        assert_eq!(check(&json).err().map(|e| e.code()), Some("bad_claims"));
    }

    #[test]
    fn expired_is_refused_after_the_skew() {
        let leeway = MAX_CLOCK_SKEW_SECS;
        assert_eq!(check(&claims("https://iss", r#""gw""#, NOW - leeway + 1, "")), Ok(()));
        assert_eq!(check(&claims("https://iss", r#""gw""#, NOW - leeway, "")), Err(JwtError::Expired));
        assert_eq!(check(&claims("https://iss", r#""gw""#, 0, "")), Err(JwtError::Expired));
        let missing = r#"{"iss":"https://iss","aud":"gw"}"#;
        assert_eq!(check(missing).err().map(|e| e.code()), Some("bad_claims"));
    }

    #[test]
    fn future_nbf_is_refused_after_the_skew() {
        let ok = format!(r#","nbf":{}"#, NOW + MAX_CLOCK_SKEW_SECS);
        assert_eq!(check(&claims("https://iss", r#""gw""#, NOW + 999, &ok)), Ok(()));
        let bad = format!(r#","nbf":{}"#, NOW + MAX_CLOCK_SKEW_SECS + 1);
        assert_eq!(check(&claims("https://iss", r#""gw""#, NOW + 999, &bad)), Err(JwtError::NotYetValid));
    }

    #[test]
    fn future_iat_is_refused_after_the_skew() {
        let bad = format!(r#","iat":{}"#, NOW + MAX_CLOCK_SKEW_SECS + 1);
        assert_eq!(check(&claims("https://iss", r#""gw""#, NOW + 999, &bad)), Err(JwtError::IssuedInFuture));
    }

    #[test]
    fn clock_skew_is_clamped_to_sixty_seconds() {
        let mut v = v();
        v.leeway_secs = 3600;
        assert_eq!(v.leeway(), MAX_CLOCK_SKEW_SECS);
        let json = claims("https://iss", r#""gw""#, NOW - MAX_CLOCK_SKEW_SECS - 1, "");
        assert_eq!(v.check_registered(json.as_bytes(), NOW), Err(JwtError::Expired));
    }

    #[test]
    fn mistyped_or_non_object_claims_are_refused() {
        for json in [r#"["https://iss","gw",9999999999]"#, r#"{"iss":1,"aud":"gw","exp":1}"#, r#"{"exp":-1}"#, "{"] {
            assert_eq!(check(json).err().map(|e| e.code()), Some("bad_claims"), "{json}");
        }
        let float = format!(r#"{{"iss":"https://iss","aud":"gw","exp":{}.5}}"#, NOW + 10);
        assert_eq!(check(&float).err().map(|e| e.code()), Some("bad_claims"));
    }

    #[test]
    fn constructors_pin_typ() {
        assert_eq!(Validation::access("i", "a").typ, Some(TYP_ACCESS));
        assert_eq!(Validation::id_token("i", "c").typ, Some(TYP_ID));
        assert_eq!(Validation::new("i", "a").typ, None);
    }
}
