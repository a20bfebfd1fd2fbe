//! File KEK: init, open, wrap/unwrap, file modes, refusals and OpenSSL
//! interop. RSA-4096 generation is slow-ish, so one key is made per test
//! binary and copied into fresh directories where a test needs its own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use seqshield_format::{DataKey, WrappedKey};
use seqshield_keys::file::{FileKek, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE};
use seqshield_keys::rsa::{OaepHash, RsaRecipient};
use seqshield_keys::{Kek, KeyError, Recipient};

const PASSPHRASE: &[u8] = b"correct horse battery staple";

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    kek: FileKek,
}

/// One key directory for the whole binary (`<tmp>/keys`, created by init).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let kek = FileKek::init(&dir, PASSPHRASE).unwrap();
        Fixture { _tmp: tmp, dir, kek }
    })
}

/// A copy of the fixture's key directory, with the same modes.
fn copy_of_fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    for name in [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE] {
        fs::copy(fixture().dir.join(name), dir.join(name)).unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o600)).unwrap();
    }
    (tmp, dir)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn init_writes_private_files_and_directory() {
    let f = fixture();
    assert_eq!(mode(&f.dir), 0o700);
    assert_eq!(mode(&f.dir.join(PRIVATE_KEY_FILE)), 0o600);
    assert_eq!(mode(&f.dir.join(PUBLIC_KEY_FILE)), 0o600);
    let names: Vec<_> = fs::read_dir(&f.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "no temporary files left behind: {names:?}");
    let pem = fs::read_to_string(f.dir.join(PRIVATE_KEY_FILE)).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"), "{pem}");
    let info = f.kek.info();
    assert_eq!(info.backend, "file");
    assert_eq!(info.algorithm, "rsa-oaep-sha256");
    assert_eq!(info.bits, 4096);
    assert_eq!(info.key_id, f.kek.key_id());
    assert_eq!(info.location, f.dir.display().to_string());
}

#[test]
fn wrap_unwrap_round_trip_through_open() {
    let f = fixture();
    let key = DataKey::generate();
    let entry = f.kek.wrap(&key).unwrap();
    assert_eq!(entry.algorithm, "rsa-oaep-sha256");
    assert_eq!(entry.key_id, f.kek.key_id());
    assert_eq!(entry.wrapped.len(), 512);

    let reopened = FileKek::open(&f.dir, PASSPHRASE).unwrap();
    assert_eq!(reopened.key_id(), f.kek.key_id());
    assert_eq!(reopened.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());
    // And the other way round.
    let entry = reopened.wrap(&key).unwrap();
    assert_eq!(f.kek.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());
}

#[test]
fn public_key_file_wraps_for_the_kek_with_either_hash() {
    let f = fixture();
    let public = RsaRecipient::read(&f.dir.join(PUBLIC_KEY_FILE)).unwrap();
    assert_eq!(public.key_id(), f.kek.key_id());
    assert_eq!(public.oaep_hash(), OaepHash::Sha256);
    assert_eq!(public.bits(), 4096);
    assert_eq!(public.to_pem(), f.kek.public().to_pem());
    let key = DataKey::generate();
    for hash in [OaepHash::Sha256, OaepHash::Sha1] {
        let recipient = RsaRecipient::from_pem(&public.to_pem(), hash).unwrap();
        let entry = recipient.wrap(&key).unwrap();
        assert_eq!(entry.algorithm, hash.algorithm_id());
        assert_eq!(f.kek.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());
    }
}

#[test]
fn sha1_header_line_is_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sha1.pub.pem");
    let recipient = fixture().kek.public().with_oaep_hash(OaepHash::Sha1);
    fs::write(&path, recipient.to_pem()).unwrap();
    let read = RsaRecipient::read(&path).unwrap();
    assert_eq!(read.oaep_hash(), OaepHash::Sha1);
    assert_eq!(read.key_id(), recipient.key_id());
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let f = fixture();
    let err = FileKek::open(&f.dir, b"not the passphrase").unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("wrong passphrase") && msg.contains(PRIVATE_KEY_FILE), "{msg}");
}

#[test]
fn group_readable_key_is_refused_with_path_and_mode() {
    let (_tmp, dir) = copy_of_fixture();
    let path = dir.join(PRIVATE_KEY_FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = FileKek::open(&dir, PASSPHRASE).unwrap_err();
    assert!(matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()) && msg.contains("0644"), "{msg}");
    // Once fixed, it opens.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    FileKek::open(&dir, PASSPHRASE).unwrap();
}

#[test]
fn existing_key_is_not_overwritten() {
    let (_tmp, dir) = copy_of_fixture();
    let before = fs::read(dir.join(PRIVATE_KEY_FILE)).unwrap();
    let err = FileKek::init(&dir, PASSPHRASE).unwrap_err();
    assert!(matches!(err, KeyError::KeyExists { .. }), "{err:?}");
    assert_eq!(fs::read(dir.join(PRIVATE_KEY_FILE)).unwrap(), before);

    // A lone public key file also blocks init (before any key is generated).
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(PUBLIC_KEY_FILE), "x").unwrap();
    let err = FileKek::init(tmp.path(), PASSPHRASE).unwrap_err();
    assert!(matches!(err, KeyError::KeyExists { .. }), "{err:?}");
}

#[test]
fn empty_passphrase_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = FileKek::init(tmp.path(), b"").unwrap_err();
    assert!(matches!(err, KeyError::EmptyPassphrase), "{err:?}");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Guards the scrypt bound: a planted key file asking for N = 2^21
/// (2 GiB of memory at r = 8) must be refused before any derivation.
#[test]
fn costly_scrypt_parameters_are_refused_before_deriving() {
    use pkcs8::der::{Decode, Encode};
    use pkcs8::EncryptedPrivateKeyInfo;

    let (_tmp, dir) = copy_of_fixture();
    let path = dir.join(PRIVATE_KEY_FILE);
    let pem = fs::read_to_string(&path).unwrap();
    let (_, doc) = pkcs8::Document::from_pem(&pem).unwrap();
    let mut info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
    let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = &mut info.encryption_algorithm else {
        panic!("not PBES2");
    };
    let pkcs8::pkcs5::pbes2::Kdf::Scrypt(scrypt) = &mut params.kdf else { panic!("not scrypt") };
    assert_eq!(scrypt.cost_parameter, 1 << 14);
    scrypt.cost_parameter = 1 << 21;
    let der = info.to_der().unwrap();
    let pem = pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF, &der).unwrap();
    fs::write(&path, pem).unwrap();

    let err = FileKek::open(&dir, PASSPHRASE).unwrap_err();
    assert!(matches!(err, KeyError::KdfTooCostly { param: "log_n", value: 21, max: 20, .. }), "{err:?}");
}

#[test]
fn unencrypted_or_foreign_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(PRIVATE_KEY_FILE);
    fs::write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let err = FileKek::open(tmp.path(), PASSPHRASE).unwrap_err();
    assert!(matches!(err, KeyError::KeyFileInvalid { .. }), "{err:?}");
    let err = FileKek::open(&tmp.path().join("missing"), PASSPHRASE).unwrap_err();
    assert!(matches!(err, KeyError::Io { op: "open", .. }), "{err:?}");
}

#[test]
fn unwrap_rejects_garbage_foreign_ids_and_algorithms() {
    let kek = &fixture().kek;
    let garbage =
        WrappedKey { key_id: kek.key_id().to_owned(), algorithm: "rsa-oaep-sha256".into(), wrapped: vec![7; 512] };
    assert!(matches!(kek.unwrap(&garbage), Err(KeyError::UnwrapFailed { .. })));
    let short = WrappedKey { wrapped: vec![7; 40], ..garbage.clone() };
    assert!(matches!(kek.unwrap(&short), Err(KeyError::UnwrapFailed { .. })));
    // A real entry unwrapped with the wrong hash fails too.
    let mut entry = kek.wrap(&DataKey::generate()).unwrap();
    entry.algorithm = "rsa-oaep-sha1".into();
    assert!(matches!(kek.unwrap(&entry), Err(KeyError::UnwrapFailed { .. })));
    let aes = WrappedKey { algorithm: "aes256-kw".into(), ..garbage.clone() };
    assert!(matches!(kek.unwrap(&aes), Err(KeyError::UnsupportedAlgorithm { .. })));
    let other = WrappedKey { key_id: "rsa-0000000000000000".into(), ..garbage };
    assert!(matches!(kek.unwrap(&other), Err(KeyError::NoMatchingRecipient { .. })));
}

#[test]
fn debug_output_holds_no_key_material() {
    let f = fixture();
    let pem = fs::read_to_string(f.dir.join(PRIVATE_KEY_FILE)).unwrap();
    let public_pem = f.kek.public().to_pem();
    for shown in [
        format!("{:?}", f.kek),
        format!("{:#?}", f.kek),
        format!("{:?}", f.kek.public()),
        format!("{:?}", f.kek.info()),
    ] {
        assert!(shown.contains(f.kek.key_id()), "{shown}");
        for line in pem.lines().chain(public_pem.lines()).filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line), "{shown}");
        }
        assert!(shown.len() < 300, "{shown}");
    }
}

/// OpenSSL is the reference implementation for PKCS#8/PBES2-scrypt and
/// RSA-OAEP; it is optional here, so the test passes quietly without it.
#[test]
fn openssl_reads_the_key_and_wraps_for_it() {
    if Command::new("openssl").arg("version").output().is_err() {
        return;
    }
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let private = f.dir.join(PRIVATE_KEY_FILE).display().to_string();
    let public = f.dir.join(PUBLIC_KEY_FILE).display().to_string();
    let pass = format!("pass:{}", std::str::from_utf8(PASSPHRASE).unwrap());
    // openssl decrypts the key and derives the same public key.
    let derived = run(&["pkey", "-in", &private, "-passin", &pass, "-pubout"]);
    assert_eq!(String::from_utf8(derived).unwrap(), f.kek.public().to_pem());
    let bad =
        Command::new("openssl").args(["pkey", "-in", &private, "-passin", "pass:wrong", "-noout"]).output().unwrap();
    assert!(!bad.status.success());

    // openssl wraps a data key with OAEP-SHA-256 for kek.pub.pem; we unwrap it.
    let key = DataKey::generate();
    let plain = tmp.path().join("key.bin");
    let wrapped = tmp.path().join("key.wrapped");
    fs::write(&plain, key.expose_secret()).unwrap();
    run(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &public,
        "-in",
        &plain.display().to_string(),
        "-out",
        &wrapped.display().to_string(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    let entry = WrappedKey {
        key_id: f.kek.key_id().to_owned(),
        algorithm: "rsa-oaep-sha256".into(),
        wrapped: fs::read(&wrapped).unwrap(),
    };
    assert_eq!(f.kek.unwrap(&entry).unwrap().expose_secret(), key.expose_secret());
}
