//! The kind record: how `Pkcs11Kek::open` learns what `init` made.
//!
//! `init` stores a `CKO_DATA` object next to the key, with
//!
//! | attribute         | value                                        |
//! |-------------------|----------------------------------------------|
//! | `CKA_LABEL`       | `<key label>.seqshield`                      |
//! | `CKA_APPLICATION` | `seqshield`                                  |
//! | `CKA_VALUE`       | `seqshield-kek/1 algorithm=<algorithm id>`   |
//! | `CKA_TOKEN`, `CKA_PRIVATE` | true (visible only after login)     |
//!
//! where the algorithm id is `rsa-oaep-sha1`, `rsa-oaep-sha256` or
//! `aes256-kw`. A key without a record (made by another tool) is taken
//! by its type: RSA as RSA-OAEP-SHA-256, AES as AES key wrap.

use super::Pkcs11KeyKind;
use crate::rsa::OaepHash;

/// Suffix of the record's label after the key label.
pub const RECORD_LABEL_SUFFIX: &str = ".seqshield";
/// `CKA_APPLICATION` of the record.
pub const RECORD_APPLICATION: &str = "seqshield";
/// Largest record value we parse.
pub const MAX_RECORD_LEN: usize = 256;

const PREFIX: &str = "seqshield-kek/1 algorithm=";

/// The record label for a key label.
pub(crate) fn label(key_label: &str) -> String {
    format!("{key_label}{RECORD_LABEL_SUFFIX}")
}

/// The record value for a kind.
pub(crate) fn encode(kind: Pkcs11KeyKind) -> Vec<u8> {
    format!("{PREFIX}{}", kind.algorithm_id()).into_bytes()
}

/// The kind in a record value, if it is one we know.
pub(crate) fn decode(value: &[u8]) -> Option<Pkcs11KeyKind> {
    if value.len() > MAX_RECORD_LEN {
        return None;
    }
    let id = std::str::from_utf8(value).ok()?.strip_prefix(PREFIX)?;
    match id {
        "aes256-kw" => Some(Pkcs11KeyKind::AesKeyWrap),
        _ => OaepHash::from_algorithm_id(id).map(Pkcs11KeyKind::RsaOaep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for kind in [
            Pkcs11KeyKind::AesKeyWrap,
            Pkcs11KeyKind::RsaOaep(OaepHash::Sha1),
            Pkcs11KeyKind::RsaOaep(OaepHash::Sha256),
        ] {
            assert_eq!(decode(&encode(kind)).map(Pkcs11KeyKind::algorithm_id), Some(kind.algorithm_id()));
        }
        assert!(decode(b"seqshield-kek/1 algorithm=des").is_none());
        assert!(decode(b"seqshield-kek/2 algorithm=aes256-kw").is_none());
        assert_eq!(label("k"), "k.seqshield");
    }
}
