//! Token-held signing keys ([`Pkcs11Signer`]) against SoftHSM2. A module of
//! the `pkcs11` test binary so that it shares its token directory (see the
//! parent's docs for why there is one per process).

use std::fs;
use std::process::Command;

use seqshield_keys::pkcs11::cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use seqshield_keys::pkcs11::{Pkcs11Config, Pkcs11Kek, Pkcs11KeyKind};
use seqshield_keys::sign::DEFAULT_SIGNING_KEY_LABEL;
use seqshield_keys::{KeyError, Pkcs11Signer, Signer, VerifyingKey};
use zeroize::Zeroizing;

use super::{aes_kek, cfg, find_one, flags, hsm, serial, test_session, Hsm, AES_LABEL, IDLE_TOKEN, PIN, TOKEN};

const MSG: &[u8] = b"seqshield tree head: size=7 root=feed";

fn signing_cfg(hsm: &Hsm) -> Pkcs11Config {
    cfg(hsm, DEFAULT_SIGNING_KEY_LABEL)
}

/// The signer under the default signing label, made once.
fn signer() -> Option<&'static Pkcs11Signer> {
    static SIGNER: std::sync::OnceLock<Pkcs11Signer> = std::sync::OnceLock::new();
    let hsm = hsm()?;
    Some(SIGNER.get_or_init(|| Pkcs11Signer::init(&signing_cfg(hsm)).unwrap()))
}

#[test]
fn token_signer_signs_and_reopens_with_the_same_key() {
    let _serial = serial();
    let (Some(hsm), Some(signer)) = (hsm(), signer()) else {
        return;
    };
    let key = signer.verifying_key();
    assert!(key.key_id().starts_with("ec-") && key.key_id().len() == 19, "{}", key.key_id());
    let signature = signer.sign(MSG).unwrap();
    assert_eq!(signature[0], 0x30);
    key.verify(MSG, &signature).unwrap();
    assert!(matches!(key.verify(b"another tree head", &signature), Err(KeyError::BadSignature { .. })));
    let mut bad = signature.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(matches!(key.verify(MSG, &bad), Err(KeyError::BadSignature { .. })));

    let reopened = Pkcs11Signer::open(&signing_cfg(hsm)).unwrap();
    assert_eq!(reopened.verifying_key().key_id(), key.key_id());
    assert_eq!(reopened.verifying_key(), key);
    key.verify(MSG, &reopened.sign(MSG).unwrap()).unwrap();
    assert_eq!(
        reopened.location(),
        format!("token={TOKEN} key={DEFAULT_SIGNING_KEY_LABEL} module={}", hsm.module.display())
    );

    // The software key a verifier builds from the PEM checks the token's
    // signatures, and has the same key id (the id does not depend on where
    // the private key lives).
    let from_pem = VerifyingKey::from_pem(&key.to_pem()).unwrap();
    assert_eq!(from_pem.key_id(), key.key_id());
    from_pem.verify(MSG, &signature).unwrap();
    // Many signatures: r and s with and without leading zeros or high
    // bits all come through the r||s to DER conversion.
    for i in 0..32u8 {
        let msg = [i; 5];
        from_pem.verify(&msg, &signer.sign(&msg).unwrap()).unwrap();
    }
}

/// OpenSSL is the independent judge of the token's signatures as we encode
/// them (skipped without openssl, a failure without it in CI).
#[test]
fn openssl_verifies_token_signatures() {
    let _serial = serial();
    let Some(signer) = signer() else { return };
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "openssl is required when CI is set");
        eprintln!("skipping: openssl not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).display().to_string();
    fs::write(p("pub.pem"), signer.verifying_key().to_pem()).unwrap();
    fs::write(p("msg"), MSG).unwrap();
    fs::write(p("other"), b"x").unwrap();
    fs::write(p("sig.der"), signer.sign(MSG).unwrap()).unwrap();
    let verify = |msg: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha384", "-verify", &p("pub.pem"), "-signature", &p("sig.der"), msg])
            .output()
            .unwrap()
    };
    let out = verify(&p("msg"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    assert!(!verify(&p("other")).status.success());
}

#[test]
fn signing_key_is_sensitive_never_extractable_and_sign_only() {
    let _serial = serial();
    let (Some(hsm), Some(_)) = (hsm(), signer()) else {
        return;
    };
    let session = test_session(hsm, false);
    let private = find_one(&session, ObjectClass::PRIVATE_KEY, DEFAULT_SIGNING_KEY_LABEL);
    let expected = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::AlwaysSensitive(true),
        Attribute::NeverExtractable(true),
    ];
    assert_eq!(format!("{:?}", flags(&session, private)), format!("{expected:?}"));
    let usage = session
        .get_attributes(
            private,
            &[AttributeType::Sign, AttributeType::Decrypt, AttributeType::Unwrap, AttributeType::Derive],
        )
        .unwrap();
    let expected =
        [Attribute::Sign(true), Attribute::Decrypt(false), Attribute::Unwrap(false), Attribute::Derive(false)];
    assert_eq!(format!("{usage:?}"), format!("{expected:?}"));
    // The private scalar itself is refused.
    let hidden = session.get_attribute_info(private, &[AttributeType::Value]).unwrap();
    assert!(matches!(hidden[..], [AttributeInfo::Sensitive]), "{hidden:?}");
    // The public half: P-384, verify only.
    let public = find_one(&session, ObjectClass::PUBLIC_KEY, DEFAULT_SIGNING_KEY_LABEL);
    let attrs = session
        .get_attributes(public, &[AttributeType::Token, AttributeType::Verify, AttributeType::EcParams])
        .unwrap();
    let expected =
        [Attribute::Token(true), Attribute::Verify(true), Attribute::EcParams(vec![6, 5, 0x2b, 0x81, 4, 0, 0x22])];
    assert_eq!(format!("{attrs:?}"), format!("{expected:?}"));
}

#[test]
fn existing_labels_are_refused_both_ways() {
    let _serial = serial();
    let (Some(hsm), Some(_), Some(_)) = (hsm(), signer(), aes_kek()) else {
        return;
    };
    // Our own label, a KEK's label, and the other way round.
    for label in [DEFAULT_SIGNING_KEY_LABEL, AES_LABEL] {
        let err = Pkcs11Signer::init(&cfg(hsm, label)).unwrap_err();
        assert!(matches!(err, KeyError::KeyExists { .. }), "{label}: {err:?}");
    }
    let err = Pkcs11Kek::init(&signing_cfg(hsm), Pkcs11KeyKind::AesKeyWrap).unwrap_err();
    assert!(matches!(err, KeyError::KeyExists { .. }), "{err:?}");
    let session = test_session(hsm, false);
    assert_eq!(
        session.find_objects(&[Attribute::Label(DEFAULT_SIGNING_KEY_LABEL.into())]).unwrap().len(),
        2,
        "the refused inits left no objects"
    );
}

/// A signing key and a KEK are told apart by their key type, whatever the
/// labels say.
#[test]
fn kek_and_signing_key_are_not_mistaken_for_each_other() {
    let _serial = serial();
    let (Some(hsm), Some(_), Some(_)) = (hsm(), signer(), aes_kek()) else {
        return;
    };
    let err = Pkcs11Signer::open(&cfg(hsm, AES_LABEL)).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs11Key { reason: "no private key", .. }), "{err:?}");
    let err = Pkcs11Kek::open(&signing_cfg(hsm)).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs11Key { .. }), "{err:?}");

    // An RSA KEK's pair under a label: the signer sees an RSA key.
    let rsa = super::rsa_kek();
    if rsa.is_some() {
        let err = Pkcs11Signer::open(&cfg(hsm, super::RSA_LABEL)).unwrap_err();
        assert!(matches!(err, KeyError::Pkcs11Key { reason, .. } if reason.contains("not an EC key")), "{err:?}");
    }
}

#[test]
fn missing_objects_and_wrong_pin_are_clear_errors() {
    let _serial = serial();
    let Some(hsm) = hsm() else { return };
    let err = Pkcs11Signer::open(&cfg(hsm, "no-such-signer")).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs11Key { reason: "no private key", .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-signer"), "{err}");

    // A pair whose public object is gone cannot be opened: the point is
    // read from it.
    let cfg = cfg(hsm, "signer-no-public");
    let signer = Pkcs11Signer::init(&cfg).unwrap();
    let rw = test_session(hsm, true);
    rw.destroy_object(find_one(&rw, ObjectClass::PUBLIC_KEY, "signer-no-public")).unwrap();
    let err = Pkcs11Signer::open(&cfg).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs11Key { reason, .. } if reason.starts_with("no public key object")), "{err:?}");
    // The signer made before still signs.
    signer.verifying_key().verify(MSG, &signer.sign(MSG).unwrap()).unwrap();

    let wrong_pin = Pkcs11Config::new(&hsm.module, IDLE_TOKEN, Zeroizing::new("000000".into()))
        .with_key_label(DEFAULT_SIGNING_KEY_LABEL);
    let err = Pkcs11Signer::open(&wrong_pin).unwrap_err();
    assert!(matches!(err, KeyError::WrongPin { .. }), "{err:?}");
}

#[test]
fn signer_debug_holds_no_secrets() {
    let _serial = serial();
    let Some(signer) = signer() else { return };
    let shown = format!("{signer:?}");
    assert!(shown.contains(signer.verifying_key().key_id()) && shown.contains(DEFAULT_SIGNING_KEY_LABEL), "{shown}");
    assert!(!shown.contains(PIN), "{shown}");
    assert!(shown.len() < 200, "{shown}");
}
