//! RS256 token issuance and verification with RSA-3072 keys, against raw
//! aws-lc and the `jsonwebtoken` crate (also on aws-lc):
//!
//! - `raw_sign`: `RsaKeyPair::sign` (PKCS#1 v1.5, SHA-256) of a typical
//!   signing input; `keyring_sign`: [`KeyRing::sign`] of a typical
//!   [`AccessClaims`]; `jsonwebtoken_encode`: `jsonwebtoken::encode` of the
//!   same claims.
//! - `raw_verify`: a parsed aws-lc public key verifying one signature;
//!   `verify`: [`jwt::verify`] of a whole token; `verify_access`: the same
//!   through [`Verifier`] (lock, clock, revocation);
//!   `jsonwebtoken_decode`: `jsonwebtoken::decode`.
//!
//!
//! Two cases take `jsonwebtoken` apart, to show where its time goes:
//! `jsonwebtoken_key_parse` is the `RsaKeyPair::from_der` it runs on every
//! `encode`, and `jsonwebtoken_sign_step` that parse plus the signature
//! (its whole `try_sign_rsa`). `raw_verify_components` verifies the way its
//! `decode` does with a JWK key: building the aws-lc key from `n` and `e`
//! on every call.
//!
//! `cargo bench -p seqshield-auth --bench jwt`. Targets: `keyring_sign` at
//! least 0.8× the `raw_sign` rate, `verify` at least 0.8× `raw_verify`.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use seqshield_auth::jwt::{self, AccessClaims, NoRevocations, Validation, Verifier, TYP_ACCESS};
use seqshield_auth::signing::{KeyRing, SigningConfig};
use seqshield_auth::{Clearance, ManualClock, ScopeSet};

const ISS: &str = "https://auth.seqshield.example";
const AUD: &str = "gateway";

fn claims(now: u64) -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "alice@lab.example".into(),
        aud: AUD.into(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: "6f1c2d0e-8b7a-4c55-9e0f-3a1b2c3d4e5f".into(),
        scope: ScopeSet::parse("openid read:cohort write:results").unwrap(),
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        acr: "urn:seqshield:acr:mfa".into(),
        clearance: Clearance::Restricted,
        client_id: "portal".into(),
        act: None,
        tsk: None,
    }
}

fn pem(pair: &RsaKeyPair) -> String {
    let der: Pkcs8V1Der<'static> = pair.as_der().unwrap();
    let b64 = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

fn bench(c: &mut Criterion) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = claims(now);

    // Our key ring, its key sealed under a file KEK, as the server runs it.
    let tmp = tempfile::tempdir().unwrap();
    let kek = seqshield_keys::file::FileKek::init(&tmp.path().join("kek"), b"bench passphrase").unwrap();
    let ring = KeyRing::open_or_create(&tmp.path().join("signing"), &kek, SigningConfig::default(), now).unwrap();
    assert_eq!(ring.config().bits, 3072);
    let keys = ring.keyset();
    let token = ring.sign(TYP_ACCESS, &claims).unwrap();
    let validation = Validation::access(ISS, AUD);

    // A second RSA-3072 key for the raw and jsonwebtoken cases (the ring
    // never exports its private key).
    let pair = RsaKeyPair::generate(KeySize::Rsa3072).unwrap();
    let (sig_input, _) = token.rsplit_once('.').unwrap();
    let mut raw_sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), sig_input.as_bytes(), &mut raw_sig).unwrap();
    let n = pair.public_key().modulus().big_endian_without_leading_zero();
    let e = pair.public_key().exponent().big_endian_without_leading_zero();
    let parsed = PublicKeyComponents { n, e }.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256).unwrap();

    let jwt_header = jsonwebtoken::Header {
        typ: Some(TYP_ACCESS.into()),
        kid: Some("bench".into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256)
    };
    let enc_key = jsonwebtoken::EncodingKey::from_rsa_pem(pem(&pair).as_bytes()).unwrap();
    let dec_key =
        jsonwebtoken::DecodingKey::from_rsa_components(&URL_SAFE_NO_PAD.encode(n), &URL_SAFE_NO_PAD.encode(e)).unwrap();
    let jwt_token = jsonwebtoken::encode(&jwt_header, &claims, &enc_key).unwrap();
    let mut jwt_validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    jwt_validation.set_issuer(&[ISS]);
    jwt_validation.set_audience(&[AUD]);

    let verifier = Verifier::new(
        Arc::new(RwLock::new(keys.clone())),
        Validation::new(ISS, AUD),
        Arc::new(NoRevocations),
        Arc::new(ManualClock::new(now)),
    );

    // Every case must succeed, or it measures an early error path.
    assert!(parsed.verify_sig(sig_input.as_bytes(), &raw_sig).is_ok());
    assert_eq!(jwt::verify::<AccessClaims>(&token, &keys, &validation, now).unwrap(), claims);
    assert_eq!(verifier.verify_access(&token).unwrap(), claims);
    assert_eq!(jsonwebtoken::decode::<AccessClaims>(&jwt_token, &dec_key, &jwt_validation).unwrap().claims, claims);

    let mut g = c.benchmark_group("rs3072");
    g.bench_function("raw_sign", |b| {
        let rng = SystemRandom::new();
        let mut sig = vec![0u8; pair.public_modulus_len()];
        b.iter(|| pair.sign(&RSA_PKCS1_SHA256, &rng, black_box(sig_input.as_bytes()), &mut sig).unwrap())
    });
    g.bench_function("keyring_sign", |b| b.iter(|| ring.sign(TYP_ACCESS, black_box(&claims)).unwrap()));
    g.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&jwt_header, black_box(&claims), &enc_key).unwrap())
    });
    g.bench_function("jsonwebtoken_key_parse", |b| {
        b.iter(|| RsaKeyPair::from_der(black_box(enc_key.inner())).unwrap())
    });
    g.bench_function("jsonwebtoken_sign_step", |b| {
        let rng = SystemRandom::new();
        b.iter(|| {
            let key = RsaKeyPair::from_der(black_box(enc_key.inner())).unwrap();
            let mut sig = vec![0u8; key.public_modulus_len()];
            key.sign(&RSA_PKCS1_SHA256, &rng, black_box(sig_input.as_bytes()), &mut sig).unwrap();
            sig
        })
    });
    g.bench_function("raw_verify_components", |b| {
        let components = PublicKeyComponents { n, e };
        b.iter(|| components.verify(&RSA_PKCS1_2048_8192_SHA256, black_box(sig_input.as_bytes()), &raw_sig).unwrap())
    });
    g.bench_function("raw_verify", |b| {
        b.iter(|| parsed.verify_sig(black_box(sig_input.as_bytes()), &raw_sig).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| jwt::verify::<AccessClaims>(black_box(&token), &keys, &validation, now).unwrap())
    });
    g.bench_function("verify_access", |b| b.iter(|| verifier.verify_access(black_box(&token)).unwrap()));
    g.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<AccessClaims>(black_box(&jwt_token), &dec_key, &jwt_validation).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
