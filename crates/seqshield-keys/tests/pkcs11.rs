//! PKCS#11 KEKs against SoftHSM2.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a process
//! initialises a module once; so every PKCS#11 test lives in this one
//! binary, which sets up one token directory (through
//! `scripts/softhsm-token`) before the first test touches the module, and
//! each test uses its own key labels. RSA-4096 generation takes seconds, so
//! the RSA key is made once and shared.
//!
//! Token-held signing keys are tested in the `sign` module
//! (`tests/pkcs11/sign.rs`), part of this binary for the same reason.
//!
//! SoftHSM2 2.6 does RSA-OAEP only with SHA-1, so the token is tested with
//! OAEP-SHA-1 and AES key wrap; SHA-256 is checked to fail cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use seqshield_format::{DataKey, WrappedKey};
use seqshield_keys::pkcs11::cryptoki::error::{Error, RvError};
use seqshield_keys::pkcs11::cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use seqshield_keys::pkcs11::cryptoki::session::{Session, UserType};
use seqshield_keys::pkcs11::cryptoki::types::AuthPin;
use seqshield_keys::pkcs11::{self, Pkcs11Config, Pkcs11Kek, Pkcs11KeyKind};
use seqshield_keys::rsa::{key_id_for_spki, OaepHash, RsaRecipient};
use seqshield_keys::{Kek, KeyError, Recipient};
use zeroize::Zeroizing;

// A crate root looks for modules beside itself, where tests/sign.rs is
// the file-signer test binary; hence the explicit path.
#[path = "pkcs11/sign.rs"]
mod sign;

const TOKEN: &str = "seqshield-test";
/// A token no test logs in to, for the wrong-PIN test (a login anywhere in
/// the process counts for every session of that token).
const IDLE_TOKEN: &str = "seqshield-idle";
const PIN: &str = "246810";
const RSA_LABEL: &str = "rsa-sha1";
const AES_LABEL: &str = "aes-kw";

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct Hsm {
    _dir: tempfile::TempDir,
    module: PathBuf,
}

/// SoftHSM2 is an outside part. Without it these tests print why and pass
/// on a developer machine, but in CI (`CI` set) that is a failure: CI must
/// install it, or the PKCS#11 backend would go untested unnoticed.
fn missing(why: &str) -> Option<Hsm> {
    assert!(std::env::var_os("CI").is_none(), "SoftHSM2 is required when CI is set: {why}");
    eprintln!("skipping PKCS#11 tests: {why} (install softhsm2)");
    None
}

/// The SoftHSM2 token directory, set up once per test binary.
/// SoftHSM2's file-backed token is not safe against concurrent object
/// creation and deletion from several threads of one process (it can answer
/// `CKR_GENERAL_ERROR`), so the tests take turns.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn hsm() -> Option<&'static Hsm> {
    static HSM: OnceLock<Option<Hsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let Some(module) = MODULE_CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists()) else {
            return missing("no libsofthsm2.so found");
        };
        if Command::new("softhsm2-util").arg("--version").output().is_err() {
            return missing("softhsm2-util not found");
        }
        let dir = tempfile::Builder::new().prefix("softhsm-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/softhsm-token");
        let mut conf = None;
        for label in [TOKEN, IDLE_TOKEN] {
            let out = Command::new(&script).arg("init").arg(dir.path()).args([label, PIN]).output().unwrap();
            assert!(out.status.success(), "softhsm-token init: {}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8(out.stdout).unwrap();
            conf = stdout.trim().strip_prefix("export SOFTHSM2_CONF=").map(str::to_owned);
        }
        // Before any C_Initialize in this process (see the module docs).
        std::env::set_var("SOFTHSM2_CONF", conf.expect("script prints the export line"));
        Some(Hsm { _dir: dir, module })
    })
    .as_ref()
}

fn cfg(hsm: &Hsm, label: &str) -> Pkcs11Config {
    Pkcs11Config::new(&hsm.module, TOKEN, Zeroizing::new(PIN.to_owned())).with_key_label(label)
}

fn rsa_kek() -> Option<&'static Pkcs11Kek> {
    static KEK: OnceLock<Pkcs11Kek> = OnceLock::new();
    let hsm = hsm()?;
    Some(KEK.get_or_init(|| Pkcs11Kek::init(&cfg(hsm, RSA_LABEL), Pkcs11KeyKind::RsaOaep(OaepHash::Sha1)).unwrap()))
}

fn aes_kek() -> Option<&'static Pkcs11Kek> {
    static KEK: OnceLock<Pkcs11Kek> = OnceLock::new();
    let hsm = hsm()?;
    Some(KEK.get_or_init(|| Pkcs11Kek::init(&cfg(hsm, AES_LABEL), Pkcs11KeyKind::AesKeyWrap).unwrap()))
}

/// A session of our own on the test token, for looking at (or, read-write,
/// changing) objects.
fn test_session(hsm: &Hsm, read_write: bool) -> Session {
    let ctx = pkcs11::context(&hsm.module).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|&s| ctx.get_token_info(s).unwrap().label() == TOKEN)
        .unwrap();
    let session = if read_write { ctx.open_rw_session(slot) } else { ctx.open_ro_session(slot) }.unwrap();
    match session.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    session
}

fn find_one(session: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let found = session.find_objects(&[Attribute::Class(class), Attribute::Label(label.into())]).unwrap();
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

fn flags(session: &Session, object: ObjectHandle) -> Vec<Attribute> {
    use AttributeType::*;
    session
        .get_attributes(object, &[Token, Private, Sensitive, Extractable, AlwaysSensitive, NeverExtractable])
        .unwrap()
}

fn assert_round_trip(kek: &dyn Kek, algorithm: &str, wrapped_len: usize) {
    let key = DataKey::generate();
    let entry = kek.wrap(&key).unwrap();
    assert_eq!(entry.key_id, kek.key_id());
    assert_eq!(entry.algorithm, algorithm);
    assert_eq!(entry.wrapped.len(), wrapped_len);
    assert_ne!(&entry.wrapped[..32], key.expose_secret());
    assert_eq!(kek.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());
}

#[test]
fn rsa_oaep_sha1_round_trip_and_reopen() {
    let _serial = serial();
    let (Some(hsm), Some(kek)) = (hsm(), rsa_kek()) else {
        return;
    };
    assert_eq!(kek.kind(), Pkcs11KeyKind::RsaOaep(OaepHash::Sha1));
    assert!(kek.key_id().starts_with("rsa-"));
    assert_round_trip(kek, "rsa-oaep-sha1", 512);

    // open() finds the kind in the token's record.
    let reopened = Pkcs11Kek::open(&cfg(hsm, RSA_LABEL)).unwrap();
    assert_eq!(reopened.kind(), Pkcs11KeyKind::RsaOaep(OaepHash::Sha1));
    assert_eq!(reopened.key_id(), kek.key_id());
    let key = DataKey::generate();
    let entry = kek.wrap(&key).unwrap();
    assert_eq!(reopened.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());

    let info = reopened.info();
    assert_eq!((info.backend, info.algorithm.as_str(), info.bits), ("pkcs11", "rsa-oaep-sha1", 4096));
    assert_eq!(info.location, format!("token={TOKEN} key={RSA_LABEL} module={}", hsm.module.display()));
}

#[test]
fn aes_key_wrap_round_trip_and_reopen() {
    let _serial = serial();
    let (Some(hsm), Some(kek)) = (hsm(), aes_kek()) else {
        return;
    };
    assert!(kek.public().is_none());
    let id = kek.key_id().strip_prefix("p11-aes-").unwrap();
    assert!(id.len() == 16 && id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    // RFC 3394: 32 bytes wrap to 40.
    assert_round_trip(kek, "aes256-kw", 40);

    let reopened = Pkcs11Kek::open(&cfg(hsm, AES_LABEL)).unwrap();
    assert_eq!(reopened.kind(), Pkcs11KeyKind::AesKeyWrap);
    assert_eq!(reopened.key_id(), kek.key_id());
    let key = DataKey::generate();
    assert_eq!(reopened.unwrap(&kek.wrap(&key).unwrap()).unwrap().expose_secret(), key.expose_secret());
    let info = reopened.info();
    assert_eq!((info.algorithm.as_str(), info.bits), ("aes256-kw", 256));
}

#[test]
fn public_key_from_token_wraps_and_token_unwraps() {
    let _serial = serial();
    let Some(kek) = rsa_kek() else { return };
    let public = kek.public().unwrap();
    assert_eq!(public.oaep_hash(), OaepHash::Sha1);
    assert_eq!(public.key_id(), kek.key_id());
    assert_eq!(key_id_for_spki(public.spki_der()), kek.key_id());
    assert_eq!(public.bits(), 4096);

    // Through a PEM file, as a recipient elsewhere would get it: the
    // header line carries the SHA-1 choice.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("token.pub.pem");
    std::fs::write(&path, public.to_pem()).unwrap();
    let recipient = RsaRecipient::read(&path).unwrap();
    assert_eq!(recipient.oaep_hash(), OaepHash::Sha1);
    let key = DataKey::generate();
    let entry = recipient.wrap(&key).unwrap();
    assert_eq!(entry.algorithm, "rsa-oaep-sha1");
    assert_eq!(kek.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());
}

#[test]
fn token_keys_are_sensitive_and_never_extractable() {
    let _serial = serial();
    let (Some(hsm), Some(rsa), Some(aes)) = (hsm(), rsa_kek(), aes_kek()) else {
        return;
    };
    let _ = (rsa, aes);
    let session = test_session(hsm, false);
    let private = find_one(&session, ObjectClass::PRIVATE_KEY, RSA_LABEL);
    let secret = find_one(&session, ObjectClass::SECRET_KEY, AES_LABEL);
    for object in [private, secret] {
        let expected = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
        ];
        assert_eq!(format!("{:?}", flags(&session, object)), format!("{expected:?}"));
    }
    // The secrets themselves are refused.
    let hidden = session
        .get_attribute_info(private, &[AttributeType::PrivateExponent, AttributeType::Prime1, AttributeType::Prime2])
        .unwrap();
    assert!(hidden.iter().all(|i| matches!(i, AttributeInfo::Sensitive)), "{hidden:?}");
    let hidden = session.get_attribute_info(secret, &[AttributeType::Value]).unwrap();
    assert!(matches!(hidden[..], [AttributeInfo::Sensitive]), "{hidden:?}");
    // The public half is public, and wraps only.
    let public = find_one(&session, ObjectClass::PUBLIC_KEY, RSA_LABEL);
    let attrs = session.get_attributes(public, &[AttributeType::Token, AttributeType::Wrap]).unwrap();
    assert_eq!(format!("{attrs:?}"), format!("{:?}", [Attribute::Token(true), Attribute::Wrap(true)]));
    // The kind record.
    let record = find_one(&session, ObjectClass::DATA, &format!("{RSA_LABEL}.seqshield"));
    let value = session.get_attributes(record, &[AttributeType::Value]).unwrap();
    assert_eq!(
        format!("{value:?}"),
        format!("{:?}", [Attribute::Value(b"seqshield-kek/1 algorithm=rsa-oaep-sha1".to_vec())])
    );
    // No ephemeral session keys are left behind by wraps and unwraps.
    assert_round_trip(rsa, "rsa-oaep-sha1", 512);
    assert_round_trip(aes, "aes256-kw", 40);
    // Session objects of other tests running right now are visible too, so
    // wait for a moment with none rather than expect one at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !session.find_objects(&[Attribute::Token(false)]).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "session objects left behind");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn garbage_entries_fail_to_unwrap() {
    let _serial = serial();
    let (Some(rsa), Some(aes)) = (rsa_kek(), aes_kek()) else {
        return;
    };
    for (kek, len) in [(rsa, 512), (aes, 40)] {
        let algorithm = kek.info().algorithm;
        let mut garbage = vec![0u8; len];
        seqshield_format::key::fill_random(&mut garbage);
        let entry = WrappedKey { key_id: kek.key_id().to_owned(), algorithm: algorithm.clone(), wrapped: garbage };
        let err = kek.unwrap(&entry).unwrap_err();
        assert!(matches!(err, KeyError::UnwrapFailed { .. }), "{algorithm}: {err:?}");
        // A flipped bit in a real entry.
        let mut entry = kek.wrap(&DataKey::generate()).unwrap();
        entry.wrapped[len / 2] ^= 1;
        assert!(matches!(kek.unwrap(&entry), Err(KeyError::UnwrapFailed { .. })), "{algorithm}");
        let short = WrappedKey { wrapped: vec![1; len - 1], ..entry.clone() };
        assert!(matches!(kek.unwrap(&short), Err(KeyError::UnwrapFailed { .. })), "{algorithm}");
        let other = WrappedKey { algorithm: "rsa-oaep-sha256".into(), ..entry };
        assert!(matches!(kek.unwrap(&other), Err(KeyError::UnsupportedAlgorithm { .. })), "{algorithm}");
    }
}

/// SoftHSM2 2.6 rejects OAEP with SHA-256 (`CKR_ARGUMENTS_BAD`). init must
/// say so plainly and leave nothing behind, rather than panic or keep a key
/// that cannot unwrap; a SoftHSM2 that has learnt SHA-256 must round-trip.
#[test]
fn rsa_oaep_sha256_on_softhsm_fails_cleanly() {
    let _serial = serial();
    let Some(hsm) = hsm() else { return };
    let cfg = cfg(hsm, "rsa-sha256");
    match Pkcs11Kek::init(&cfg, Pkcs11KeyKind::RsaOaep(OaepHash::Sha256)) {
        Err(err @ KeyError::Pkcs11Unsupported { algorithm: "rsa-oaep-sha256", .. }) => {
            eprintln!("as expected: {err}");
            assert!(err.to_string().contains("SHA-1"), "{err}");
            let session = test_session(hsm, false);
            for label in ["rsa-sha256", "rsa-sha256.seqshield"] {
                assert!(session.find_objects(&[Attribute::Label(label.into())]).unwrap().is_empty(), "{label} left");
            }
        }
        Ok(kek) => assert_round_trip(&kek, "rsa-oaep-sha256", 512),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn existing_label_is_refused() {
    let _serial = serial();
    let (Some(hsm), Some(_)) = (hsm(), aes_kek()) else {
        return;
    };
    for kind in [Pkcs11KeyKind::AesKeyWrap, Pkcs11KeyKind::RsaOaep(OaepHash::Sha1)] {
        let err = Pkcs11Kek::init(&cfg(hsm, AES_LABEL), kind).unwrap_err();
        assert!(matches!(err, KeyError::KeyExists { .. }), "{err:?}");
    }
}

#[test]
fn kind_is_inferred_without_a_record() {
    let _serial = serial();
    let Some(hsm) = hsm() else { return };
    let cfg = cfg(hsm, "aes-no-record");
    let kek = Pkcs11Kek::init(&cfg, Pkcs11KeyKind::AesKeyWrap).unwrap();
    let rw = test_session(hsm, true);
    rw.destroy_object(find_one(&rw, ObjectClass::DATA, "aes-no-record.seqshield")).unwrap();
    let reopened = Pkcs11Kek::open(&cfg).unwrap();
    assert_eq!(reopened.kind(), Pkcs11KeyKind::AesKeyWrap);
    assert_eq!(reopened.key_id(), kek.key_id());
}

#[test]
fn wrong_pin_unknown_token_and_missing_key_are_clear_errors() {
    let _serial = serial();
    let Some(hsm) = hsm() else { return };
    let wrong_pin = Pkcs11Config::new(&hsm.module, IDLE_TOKEN, Zeroizing::new("000000".into()));
    let err = Pkcs11Kek::open(&wrong_pin).unwrap_err();
    assert!(matches!(err, KeyError::WrongPin { .. }), "{err:?}");
    assert!(!err.to_string().contains("000000"));

    let nowhere = Pkcs11Config::new(&hsm.module, "no-such-token", Zeroizing::new(PIN.into()));
    let err = Pkcs11Kek::open(&nowhere).unwrap_err();
    assert!(matches!(err, KeyError::TokenLabel { count: 0, .. }), "{err:?}");

    for bad_label in ["", "tab\there", &"x".repeat(65)] {
        let err = Pkcs11Kek::open(&cfg(hsm, bad_label)).unwrap_err();
        assert!(matches!(err, KeyError::Pkcs11Key { .. }), "{err:?}");
    }

    let err = Pkcs11Kek::open(&cfg(hsm, "no-such-key")).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs11Key { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-key"), "{err}");
}

#[test]
fn debug_output_holds_no_secrets() {
    let _serial = serial();
    let (Some(hsm), Some(rsa), Some(aes)) = (hsm(), rsa_kek(), aes_kek()) else {
        return;
    };
    let config = cfg(hsm, RSA_LABEL);
    let key = DataKey::generate();
    let unwrapped = rsa.unwrap(&rsa.wrap(&key).unwrap()).unwrap();
    for shown in [
        format!("{config:?}"),
        format!("{rsa:?}"),
        format!("{aes:?}"),
        format!("{:?}", rsa.public().unwrap()),
        format!("{:?}", rsa.info()),
        format!("{unwrapped:?}"),
        format!("{:?}", rsa.wrap(&key).unwrap()),
    ] {
        assert!(!shown.contains(PIN), "{shown}");
        for window in key.expose_secret().windows(4) {
            let as_hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
            assert!(!shown.contains(&as_hex), "key bytes visible in {shown}");
        }
        assert!(shown.len() < 400, "{shown}");
    }
}
