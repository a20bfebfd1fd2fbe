//! Outside judges for our tokens: PyJWT and jwcrypto (`tests/judges/jwt_judge.py`).
//!
//! - Tokens a [`KeyRing`] signs (unsealed through a real file KEK) verify
//!   with both libraries against the JWKS we publish.
//! - Tokens forged with both libraries (alg `none`, HS256 keyed with our
//!   public key, wrong audience or issuer, expired, unknown kid, tampered
//!   payload, another key under our kid) are refused by our verifier, each
//!   for its own reason; correctly signed controls are accepted.
//!
//! The judge runs in the repository's `.venv` (made by `scripts/setup`).
//! Without it the tests print a note and pass, except under `CI`, where
//! they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use seqshield_auth::jwt::{self, AccessClaims, IdClaims, JwtError, KeySet, Validation, TYP_ACCESS, TYP_ID};
use seqshield_auth::signing::{KeyRing, SigningConfig};
use seqshield_auth::{Clearance, ScopeSet};
use seqshield_keys::file::FileKek;
use serde_json::{json, Value};

const ISS: &str = "https://auth.seqshield.test";
const AUD: &str = "gateway";
const SCRIPT: &str = "crates/seqshield-auth/tests/judges/jwt_judge.py";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The venv python, if it can import both judges. Under `CI` a missing
/// judge is a failure; elsewhere the test is skipped with a note.
fn judge_python() -> Option<PathBuf> {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    let usable = python.is_file()
        && Command::new(&python).args(["-c", "import jwt, jwcrypto, cryptography"]).status().is_ok_and(|s| s.success());
    if usable {
        return Some(python);
    }
    let why = format!("{} with PyJWT and jwcrypto not found; run `bash scripts/setup`", python.display());
    if std::env::var_os("CI").is_some() {
        panic!("CI: {why}");
    }
    eprintln!("note: skipping the PyJWT/jwcrypto judges: {why}");
    None
}

/// Runs `jwt_judge.py cmd` on `request`; returns its JSON output.
fn run_judge(python: &Path, dir: &Path, cmd: &str, request: &Value) -> Value {
    let req_path = dir.join(format!("{cmd}-request.json"));
    std::fs::write(&req_path, serde_json::to_vec(request).unwrap()).unwrap();
    let out = Command::new(python).current_dir(repo_root()).arg(SCRIPT).arg(cmd).arg(&req_path).output().unwrap();
    assert!(out.status.success(), "judge {cmd} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("judge output is JSON")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A key ring in `dir/signing`, its private key sealed under a file KEK.
fn key_ring(dir: &Path, now: u64) -> KeyRing {
    let kek = FileKek::init(&dir.join("kek"), b"judges passphrase").unwrap();
    KeyRing::open_or_create(&dir.join("signing"), &kek, SigningConfig::default(), now).unwrap()
}

/// Writes the ring's JWKS document, as the server would serve it.
fn write_jwks(dir: &Path, ring: &KeyRing) -> PathBuf {
    let path = dir.join("jwks.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&ring.jwks()).unwrap()).unwrap();
    path
}

fn access_claims(now: u64) -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "alice".into(),
        aud: AUD.into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "d3adb33f-0001".into(),
        scope: ScopeSet::parse("openid read:cohort write:results").unwrap(),
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        acr: "urn:seqshield:acr:mfa".into(),
        clearance: Clearance::Restricted,
        client_id: "portal".into(),
        act: None,
        tsk: None,
    }
}

#[test]
fn our_tokens_verify_with_pyjwt_and_jwcrypto() {
    let Some(python) = judge_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let now = now();
    let ring = key_ring(tmp.path(), now);

    let access = ring.sign(TYP_ACCESS, &access_claims(now)).unwrap();
    let id = IdClaims {
        iss: ISS.into(),
        sub: "alice".into(),
        aud: AUD.into(),
        exp: now + 300,
        iat: now,
        nbf: None,
        auth_time: now - 5,
        nonce: "n-0S6_WzA2Mj".into(),
        amr: vec!["pwd".into(), "otp".into()],
        acr: "urn:seqshield:acr:mfa".into(),
        jti: "id-1".into(),
    };
    let id_token = ring.sign(TYP_ID, &id).unwrap();
    // Negative control: the judges must be able to say no.
    let (h, rest) = access.split_once('.').unwrap();
    let (_, sig) = rest.rsplit_once('.').unwrap();
    let other_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&AccessClaims { sub: "mallory".into(), ..access_claims(now) }).unwrap());
    let tampered = format!("{h}.{other_payload}.{sig}");

    let jwks_path = write_jwks(tmp.path(), &ring);
    let req = json!({ "jwks_path": jwks_path, "iss": ISS, "aud": AUD, "tokens": [access, id_token, tampered] });
    let res = run_judge(&python, tmp.path(), "verify", &req);
    let results = res["results"].as_array().unwrap();
    for (i, name) in [(0, "access token"), (1, "ID token")] {
        assert_eq!(results[i]["pyjwt"], "ok", "{name}: {}", results[i]);
        assert_eq!(results[i]["jwcrypto"], "ok", "{name}: {}", results[i]);
        assert_eq!(results[i]["claims"]["sub"], "alice");
    }
    assert_eq!(results[0]["claims"]["scope"], "openid read:cohort write:results");
    assert_eq!(results[0]["claims"]["clearance"], "restricted");
    assert_eq!(results[1]["claims"]["nonce"], "n-0S6_WzA2Mj");
    assert_ne!(results[2]["pyjwt"], "ok", "PyJWT accepted a tampered token");
    assert_ne!(results[2]["jwcrypto"], "ok", "jwcrypto accepted a tampered token");
}

#[test]
fn forgeries_from_pyjwt_and_jwcrypto_are_refused() {
    let Some(python) = judge_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let now = now();
    let ring = key_ring(tmp.path(), now);

    // A second, trusted key the judge may sign with, so that forgeries
    // needing a valid signature (wrong aud/iss, expired) have one.
    let test_key = KeyPair::generate(KeySize::Rsa3072).unwrap();
    let pkcs8: Pkcs8V1Der<'static> = test_key.as_der().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD
            .encode(pkcs8.as_ref())
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let pem_path = tmp.path().join("test-key.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let test_kid = "judge-test-key";
    let mut keys: KeySet = ring.keyset();
    keys.insert(test_kid, test_key.public_key()).unwrap();

    let claims = access_claims(now);
    let our_token = ring.sign(TYP_ACCESS, &claims).unwrap();
    let req = json!({
        "jwks_path": write_jwks(tmp.path(), &ring),
        "ring_kid": ring.active_kid(),
        "test_kid": test_kid,
        "test_pem": pem_path,
        "claims": claims,
        "now": now,
        "our_token": our_token,
    });
    let res = run_judge(&python, tmp.path(), "forge", &req);
    let validation = Validation::access(ISS, AUD);
    let check = |token: &Value| jwt::verify::<AccessClaims>(token.as_str().unwrap(), &keys, &validation, now);

    for (name, token) in res["controls"].as_object().unwrap() {
        assert_eq!(check(token).as_ref(), Ok(&claims), "control {name} must verify");
    }
    let expected: &[(&str, &str)] = &[
        ("alg_none_pyjwt", "bad_algorithm"),
        ("hs256_public_pem_jwcrypto", "bad_algorithm"),
        ("hs256_public_pem_hmac", "bad_algorithm"),
        ("wrong_aud_pyjwt", "wrong_audience"),
        ("wrong_aud_jwcrypto", "wrong_audience"),
        ("wrong_iss_pyjwt", "wrong_issuer"),
        ("wrong_iss_jwcrypto", "wrong_issuer"),
        ("expired_pyjwt", "expired"),
        ("expired_jwcrypto", "expired"),
        ("unknown_kid_pyjwt", "unknown_kid"),
        ("unknown_kid_jwcrypto", "unknown_kid"),
        ("tampered_payload", "bad_signature"),
        ("other_key_pyjwt", "bad_signature"),
        ("other_key_jwcrypto", "bad_signature"),
    ];
    let forgeries = res["forgeries"].as_object().unwrap();
    assert_eq!(forgeries.len(), expected.len(), "every forgery is checked");
    for (name, code) in expected {
        let token = &forgeries[*name];
        let got: Result<AccessClaims, JwtError> = check(token);
        assert_eq!(got.as_ref().err().map(JwtError::code), Some(*code), "forgery {name}: {got:?}");
    }
    // And through the Verifier every route uses.
    let verifier = jwt::Verifier::new(
        std::sync::Arc::new(std::sync::RwLock::new(keys.clone())),
        Validation::new(ISS, AUD),
        std::sync::Arc::new(jwt::NoRevocations),
        std::sync::Arc::new(seqshield_auth::ManualClock::new(now)),
    );
    for (name, token) in forgeries {
        assert!(verifier.verify_access(token.as_str().unwrap()).is_err(), "Verifier accepted {name}");
    }
}
