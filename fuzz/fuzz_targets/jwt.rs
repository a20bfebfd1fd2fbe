//! cargo-fuzz target: the token parsers an attacker reaches before any
//! signature is checked — compact JWS verification, header peeking, JWKS
//! documents (fetched from federated issuers), scope strings and HTTP Basic
//! client credentials. None may panic, and nothing random may verify.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::signature::KeyPair as _;

use seqshield_auth::jwt::{self, KeySet, Validation};

fn keys() -> &'static KeySet {
    static K: OnceLock<KeySet> = OnceLock::new();
    K.get_or_init(|| {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("keygen");
        let mut ks = KeySet::new();
        ks.insert("k1", kp.public_key()).expect("insert");
        ks
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = KeySet::from_jwks(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let v = Validation::access("https://gateway.test", "seqshield");
    let r: Result<serde_json::Value, _> = jwt::verify(text, keys(), &v, 1_900_000_000);
    assert!(r.is_err(), "a fuzzed token verified");
    let _ = jwt::peek_header(text);
    let _ = seqshield_auth::ScopeSet::parse(text);
    let _ = seqshield_auth::service::token::BasicAuth::parse(text);
});
