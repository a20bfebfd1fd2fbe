//! Just enough X.509 (RFC 5280 §4.1) to judge a certificate before we serve
//! it: validity, public-key type and size, subject alternative names, and
//! the SubjectPublicKeyInfo that clients pin.
//!
//! Nothing here trusts the certificate: rustls and the client's verifier do
//! that. This only refuses what we do not want to offer.

use std::fmt;
use std::net::IpAddr;

use spki::der::asn1::{AnyRef, GeneralizedTime, ObjectIdentifier, UintRef, UtcTime};
use spki::der::{Decode, Encode, SliceReader, Tag, TagNumber, Tagged};
use spki::SubjectPublicKeyInfoRef;

/// id-ecPublicKey (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (RFC 5480 §2.1.1.1).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (RFC 5480 §2.1.1.1).
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// secp521r1 (RFC 5480 §2.1.1.1).
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
/// rsaEncryption (RFC 8017 Appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-RSASSA-PSS (RFC 8017 Appendix C).
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-Ed25519 (RFC 8410 §3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-ce-subjectAltName (RFC 5280 §4.2.1.6).
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// The public-key type of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// ECDSA on NIST P-521.
    EcP521,
    /// RSA with this many modulus bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// RSASSA-PSS-only RSA key.
    RsaPss,
    /// Ed25519.
    Ed25519,
    /// Something else, by algorithm OID.
    Other(String),
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcP256 => f.write_str("ECDSA P-256"),
            Self::EcP384 => f.write_str("ECDSA P-384"),
            Self::EcP521 => f.write_str("ECDSA P-521"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::RsaPss => f.write_str("RSASSA-PSS"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Other(oid) => write!(f, "key algorithm {oid}"),
        }
    }
}

/// What we read from a certificate.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    /// notBefore, seconds since the Unix epoch.
    pub(crate) not_before: u64,
    /// notAfter, seconds since the Unix epoch.
    pub(crate) not_after: u64,
    /// The public key's type.
    pub(crate) key: KeyKind,
    /// The DER SubjectPublicKeyInfo.
    pub(crate) spki_der: Vec<u8>,
    /// dNSName entries of the subjectAltName extension, lowercased.
    pub(crate) dns_names: Vec<String>,
    /// iPAddress entries of the subjectAltName extension.
    pub(crate) ip_addrs: Vec<IpAddr>,
}

/// Reads `der` (one certificate). Any structural surprise is an error.
pub(crate) fn inspect(der: &[u8]) -> spki::der::Result<Summary> {
    let cert = AnyRef::from_der(der)?;
    cert.tag().assert_eq(Tag::Sequence)?;
    let parts = elements(cert.value())?;
    let tbs = parts.first().ok_or_else(missing)?;
    tbs.tag().assert_eq(Tag::Sequence)?;
    let fields = elements(tbs.value())?;
    // version [0] EXPLICIT is optional (absent means v1).
    let skip = usize::from(fields.first().is_some_and(|f| f.tag() == context(0, true)));
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
    let validity = fields.get(skip + 3).ok_or_else(missing)?;
    let spki_any = fields.get(skip + 5).ok_or_else(missing)?;

    validity.tag().assert_eq(Tag::Sequence)?;
    let times = elements(validity.value())?;
    let [not_before, not_after] = times.as_slice() else { return Err(missing()) };
    let (not_before, not_after) = (time(*not_before)?, time(*not_after)?);

    let spki_der = spki_any.to_der()?;
    let key = key_kind(&SubjectPublicKeyInfoRef::from_der(&spki_der)?)?;

    let mut dns_names = Vec::new();
    let mut ip_addrs = Vec::new();
    // issuerUniqueID [1], subjectUniqueID [2], extensions [3] EXPLICIT.
    if let Some(ext) = fields.iter().skip(skip + 6).find(|f| f.tag() == context(3, true)) {
        let seq = AnyRef::from_der(ext.value())?;
        seq.tag().assert_eq(Tag::Sequence)?;
        for e in elements(seq.value())? {
            e.tag().assert_eq(Tag::Sequence)?;
            let items = elements(e.value())?;
            let oid: ObjectIdentifier = items.first().ok_or_else(missing)?.decode_as()?;
            if oid != SUBJECT_ALT_NAME {
                continue;
            }
            // extnValue is the last item (critical BOOLEAN DEFAULT FALSE may precede it).
            let value = items.last().ok_or_else(missing)?;
            value.tag().assert_eq(Tag::OctetString)?;
            let names = AnyRef::from_der(value.value())?;
            names.tag().assert_eq(Tag::Sequence)?;
            for name in elements(names.value())? {
                if name.tag() == context(2, false) {
                    if let Ok(s) = std::str::from_utf8(name.value()) {
                        dns_names.push(s.to_ascii_lowercase());
                    }
                } else if name.tag() == context(7, false) {
                    match name.value().len() {
                        4 => ip_addrs.extend(<[u8; 4]>::try_from(name.value()).ok().map(IpAddr::from)),
                        16 => ip_addrs.extend(<[u8; 16]>::try_from(name.value()).ok().map(IpAddr::from)),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(Summary { not_before, not_after, key, spki_der, dns_names, ip_addrs })
}

fn key_kind(spki: &SubjectPublicKeyInfoRef<'_>) -> spki::der::Result<KeyKind> {
    let oid = spki.algorithm.oid;
    Ok(if oid == EC_PUBLIC_KEY {
        let curve: Option<ObjectIdentifier> = spki.algorithm.parameters.map(|p| p.decode_as()).transpose()?;
        match curve {
            Some(c) if c == SECP256R1 => KeyKind::EcP256,
            Some(c) if c == SECP384R1 => KeyKind::EcP384,
            Some(c) if c == SECP521R1 => KeyKind::EcP521,
            Some(c) => KeyKind::Other(format!("{oid} on curve {c}")),
            None => KeyKind::Other(format!("{oid} without a named curve")),
        }
    } else if oid == RSA_ENCRYPTION {
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1)
        let bytes = spki.subject_public_key.as_bytes().ok_or_else(missing)?;
        let key = AnyRef::from_der(bytes)?;
        key.tag().assert_eq(Tag::Sequence)?;
        let items = elements(key.value())?;
        let modulus: UintRef<'_> = items.first().ok_or_else(missing)?.decode_as()?;
        let m = modulus.as_bytes();
        let bits = m.first().map_or(0, |b| m.len() * 8 - b.leading_zeros() as usize);
        KeyKind::Rsa { bits }
    } else if oid == RSA_PSS {
        KeyKind::RsaPss
    } else if oid == ED25519 {
        KeyKind::Ed25519
    } else {
        KeyKind::Other(oid.to_string())
    })
}

/// Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime } (RFC 5280 §4.1.2.5).
fn time(t: AnyRef<'_>) -> spki::der::Result<u64> {
    let d = match t.tag() {
        Tag::UtcTime => t.decode_as::<UtcTime>()?.to_unix_duration(),
        Tag::GeneralizedTime => t.decode_as::<GeneralizedTime>()?.to_unix_duration(),
        other => return Err(other.value_error()),
    };
    Ok(d.as_secs())
}

/// The TLV items in a constructed value's content.
fn elements(content: &[u8]) -> spki::der::Result<Vec<AnyRef<'_>>> {
    let mut r = SliceReader::new(content)?;
    let mut out = Vec::new();
    while !spki::der::Reader::is_finished(&r) {
        out.push(AnyRef::decode(&mut r)?);
    }
    Ok(out)
}

fn context(number: u8, constructed: bool) -> Tag {
    Tag::ContextSpecific { constructed, number: TagNumber::new(number) }
}

fn missing() -> spki::der::Error {
    spki::der::ErrorKind::Failed.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm, names: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 2);
        params.not_after = rcgen::date_time_ymd(2060, 3, 4);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_validity_key_and_names() {
        let s = inspect(&cert(&rcgen::PKCS_ECDSA_P384_SHA384, &["Gw.Example.org", "127.0.0.1", "::1"])).unwrap();
        assert_eq!(s.key, KeyKind::EcP384);
        assert_eq!(s.not_before, 1_577_923_200); // 2020-01-02T00:00:00Z
        assert_eq!(s.not_after, 2_845_584_000); // 2060-03-04T00:00:00Z, a GeneralizedTime
        assert_eq!(s.dns_names, ["gw.example.org"]);
        assert_eq!(s.ip_addrs, ["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
    }

    #[test]
    fn tells_key_types_apart() {
        assert_eq!(inspect(&cert(&rcgen::PKCS_ECDSA_P256_SHA256, &["a"])).unwrap().key, KeyKind::EcP256);
        assert_eq!(inspect(&cert(&rcgen::PKCS_ED25519, &["a"])).unwrap().key, KeyKind::Ed25519);
        assert_eq!(inspect(&cert(&rcgen::PKCS_RSA_SHA256, &["a"])).unwrap().key, KeyKind::Rsa { bits: 2048 });
    }

    /// The parser sees attacker-shaped files only from the operator, but it
    /// must still fail cleanly, never panic.
    #[test]
    fn truncated_or_garbled_input_is_an_error() {
        let der = cert(&rcgen::PKCS_ECDSA_P384_SHA384, &["a"]);
        for n in 0..der.len() {
            assert!(inspect(&der[..n]).is_err(), "truncated at {n}");
        }
        let mut flipped = der.clone();
        for i in (0..der.len()).step_by(7) {
            flipped[i] ^= 0x55;
            let _ = inspect(&flipped);
            flipped[i] ^= 0x55;
        }
    }
}
