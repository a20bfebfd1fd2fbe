//! The store engine end to end on real backends: SQLite and the local disk
//! always; PostgreSQL and Azurite when `scripts/services` started them
//! (`SEQSHIELD_TEST_POSTGRES`, `SEQSHIELD_TEST_AZURITE`; required under CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use seqshield_auth::audit::{MemorySink, Outcome};
use seqshield_auth::ManualClock;
use seqshield_format::part::{merkle_root, PartCodec};
use seqshield_format::{Classification, DataKey, SealedHeader};
use seqshield_keys::file::FileKek;
use seqshield_keys::Kek;
use seqshield_store::blobs::BackendConfig;
use seqshield_store::geometry::{combine_part_roots, Geometry};
use seqshield_store::store::{NewObject, Principal, ReplicaConfig, Store, StoreConfig, UploadTicket};

const PASS: &[u8] = b"correct horse battery staple";

/// One RSA-4096 KEK per test process (key generation is slow).
fn kek_dir(name: &str) -> &'static Path {
    static DIRS: OnceLock<std::sync::Mutex<BTreeMap<String, &'static Path>>> = OnceLock::new();
    let mut m = DIRS.get_or_init(Default::default).lock().unwrap();
    m.entry(name.to_owned()).or_insert_with(|| {
        let dir: &'static Path = Box::leak(tempfile::tempdir().unwrap().keep().into_boxed_path());
        FileKek::init(dir, PASS).unwrap();
        dir
    })
}

fn kek() -> Arc<dyn Kek> {
    Arc::new(FileKek::open(kek_dir("gateway"), PASS).unwrap())
}

fn who(sub: &str, scopes: &str, clearance: Classification) -> Principal {
    Principal {
        subject: sub.into(),
        client: "test".into(),
        scopes: scopes.split(' ').map(str::to_owned).collect(),
        clearance,
        source: None,
        task: None,
    }
}

fn alice() -> Principal {
    who("alice", "data:read data:write", Classification::Restricted)
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    audit: Arc<MemorySink>,
    clock: Arc<ManualClock>,
    store: Store,
}

fn small_cfg() -> StoreConfig {
    // 1 KiB segments, 4 segments per part: many parts from small files.
    StoreConfig { segment_size: 1024, part_segments: 4, ..StoreConfig::default() }
}

async fn fixture_with(cfg: StoreConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let audit = Arc::new(MemorySink::new());
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let store = Store::open(cfg, &data, kek(), false, audit.clone(), clock.clone()).await.unwrap();
    Fixture { _dir: dir, data, audit, clock, store }
}

async fn fixture() -> Fixture {
    fixture_with(small_cfg()).await
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

fn codec(t: &UploadTicket) -> PartCodec {
    let (sealed, _) = SealedHeader::parse(&t.header).unwrap();
    let header = sealed.authenticate(&t.data_key).unwrap();
    PartCodec::new(&header, &t.data_key)
}

fn geometry(t: &UploadTicket) -> Geometry {
    Geometry::new(t.info.size, t.info.segment_size, t.info.part_segments)
}

/// The wire bytes and subtree root of `part`, sealed as an uploader would.
fn seal(t: &UploadTicket, plain: &[u8], part: u64) -> (Bytes, [u8; 32]) {
    let g = geometry(t);
    let off = g.part_offset(part) as usize;
    let pt = &plain[off..off + g.part_plaintext_len(part) as usize];
    let mut out = Vec::new();
    let leaves = codec(t).seal_part(g.part_segments_of(part).0, g.segments(), pt, &mut out).unwrap();
    (Bytes::from(out), merkle_root(&leaves))
}

fn new(name: &str, class: Classification, size: usize) -> NewObject {
    NewObject {
        name: name.into(),
        dataset: Some("ecoli".into()),
        classification: class,
        size: size as u64,
        content_type: None,
    }
}

/// Uploads `plain` part by part (last part first, to show order within the
/// window is free) and commits.
async fn upload(s: &Store, p: &Principal, name: &str, class: Classification, plain: &[u8]) -> (String, [u8; 32]) {
    let t = s.create_upload(p, new(name, class, plain.len())).await.unwrap();
    let g = geometry(&t);
    let mut roots = vec![[0u8; 32]; g.parts() as usize];
    let order: Vec<u64> = (0..g.parts()).rev().collect();
    for part in order {
        let (wire, root) = seal(&t, plain, part);
        s.put_part(p, &t.info.id, part, wire, Some(root)).await.unwrap();
        roots[part as usize] = root;
    }
    let root = combine_part_roots(&roots);
    let info = s.commit(p, &t.info.id, root).await.unwrap();
    assert_eq!(info.state, "available");
    (t.info.id, root)
}

async fn download(s: &Store, p: &Principal, id: &str) -> Vec<u8> {
    let t = s.open_read(p, id).await.unwrap();
    let (sealed, _) = SealedHeader::parse(&t.header).unwrap();
    let header = sealed.authenticate(&t.data_key).unwrap();
    let c = PartCodec::new(&header, &t.data_key);
    let trailer = c.open_trailer(&t.trailer).unwrap();
    assert_eq!(combine_part_roots(&t.part_roots), trailer.merkle_root);
    let g = Geometry::new(t.info.size, t.info.segment_size, t.info.part_segments);
    let mut out = Vec::new();
    for part in 0..g.parts() {
        let wire = s.read_part(p, id, part).await.unwrap();
        let leaves = c.open_part(g.part_segments_of(part).0, g.segments(), &wire, &mut out).unwrap();
        assert_eq!(merkle_root(&leaves), t.part_roots[part as usize]);
    }
    out
}

#[tokio::test]
async fn round_trip_matches_the_format_tree_for_every_size() {
    let f = fixture().await;
    for size in [0usize, 1, 1023, 1024, 4096, 4097, 5 * 4096 + 17, 9 * 4096] {
        let plain = data(size, size as u8);
        let (id, root) = upload(&f.store, &alice(), &format!("f{size}.bin"), Classification::Restricted, &plain).await;
        assert_eq!(download(&f.store, &alice(), &id).await, plain, "size {size}");
        // The part roots combine to the same root a whole-object writer computes.
        let t = f.store.open_read(&alice(), &id).await.unwrap();
        let (sealed, _) = SealedHeader::parse(&t.header).unwrap();
        let header = sealed.authenticate(&t.data_key).unwrap();
        let g = Geometry::new(size as u64, 1024, 4);
        let mut wire = Vec::new();
        let leaves = PartCodec::new(&header, &t.data_key).seal_part(0, g.segments(), &plain, &mut wire).unwrap();
        assert_eq!(merkle_root(&leaves), root, "size {size}");
        let report = f.store.verify(&alice(), &id).await.unwrap();
        assert!(report.ok, "{report:?}");
    }
}

#[tokio::test]
async fn public_objects_are_stored_in_the_clear_and_still_verified() {
    let f = fixture().await;
    let plain = b"ACGT reference genome, published".repeat(300);
    let (id, _) = upload(&f.store, &alice(), "ref.fa", Classification::Public, &plain).await;
    let info = f.store.info(&alice(), &id).await.unwrap();
    assert!(!info.encrypted);
    let blob = std::fs::read(f.data.join(format!("objects/data/{id}/0000000000"))).unwrap();
    assert_eq!(&blob[..1024], &plain[..1024], "integrity-only parts hold the plaintext");
    let (id2, _) = upload(&f.store, &alice(), "secret.fa", Classification::Restricted, &plain).await;
    let blob2 = std::fs::read(f.data.join(format!("objects/data/{id2}/0000000000"))).unwrap();
    assert!(!blob2.windows(32).any(|w| w == &plain[..32]), "restricted parts are encrypted");
    assert_eq!(download(&f.store, &alice(), &id).await, plain);
}

async fn part_count(s: &Store, id: &str) -> usize {
    s.meta().parts(id).await.unwrap().len()
}

async fn denials(f: &Fixture) -> usize {
    f.audit.events().iter().filter(|e| e.outcome == Outcome::Deny).count()
}

#[tokio::test]
async fn bad_parts_are_refused_with_specific_errors_and_change_nothing() {
    let f = fixture().await;
    let p = alice();
    let plain = data(100 * 4096, 7);
    let t = f.store.create_upload(&p, new("reads.fq", Classification::Restricted, plain.len())).await.unwrap();
    let id = t.info.id.clone();
    let (w0, r0) = seal(&t, &plain, 0);
    f.store.put_part(&p, &id, 0, w0.clone(), Some(r0)).await.unwrap();
    let expect = |code: &str, e: seqshield_store::StoreError| assert_eq!(e.code(), code, "{e}");
    let before = denials(&f).await;

    // Duplicate.
    expect("part_duplicate", f.store.put_part(&p, &id, 0, w0.clone(), Some(r0)).await.unwrap_err());
    // Out of range, and too far ahead of the first missing part.
    expect("part_out_of_range", f.store.put_part(&p, &id, 100, w0.clone(), None).await.unwrap_err());
    let (w90, _) = seal(&t, &plain, 90);
    expect("part_out_of_order", f.store.put_part(&p, &id, 90, w90, None).await.unwrap_err());
    // Part 2's bytes sent as part 1 (a reordering): authenticates nowhere but at 2.
    let (w2, _) = seal(&t, &plain, 2);
    let e = f.store.put_part(&p, &id, 1, w2.clone(), None).await.unwrap_err();
    expect("part_rejected", e);
    // One flipped bit.
    let mut bad = w2.to_vec();
    bad[100] ^= 1;
    expect("part_rejected", f.store.put_part(&p, &id, 2, Bytes::from(bad), None).await.unwrap_err());
    // A part of another object (another data key).
    let t2 = f.store.create_upload(&p, new("other.fq", Classification::Restricted, plain.len())).await.unwrap();
    let (foreign, _) = seal(&t2, &plain, 1);
    expect("part_rejected", f.store.put_part(&p, &id, 1, foreign, None).await.unwrap_err());
    // Wrong declared subtree root.
    let (w1, _) = seal(&t, &plain, 1);
    expect("part_root_mismatch", f.store.put_part(&p, &id, 1, w1.clone(), Some([7; 32])).await.unwrap_err());
    // Too short, and larger than any part.
    expect("part_length", f.store.put_part(&p, &id, 1, w1.slice(..100), None).await.unwrap_err());
    let huge = Bytes::from(vec![0u8; 4 * (1024 + 16) + 1]);
    expect("part_too_large", f.store.put_part(&p, &id, 1, huge, None).await.unwrap_err());
    // Unknown and malformed ids; somebody else's upload.
    expect(
        "not_found",
        f.store.put_part(&p, "obj_00000000000000000000000000000000", 1, w1.clone(), None).await.unwrap_err(),
    );
    expect("invalid_id", f.store.put_part(&p, "../../etc/passwd", 1, w1.clone(), None).await.unwrap_err());
    let bob = who("bob", "data:read data:write", Classification::Controlled);
    expect("not_found", f.store.put_part(&bob, &id, 1, w1.clone(), None).await.unwrap_err());
    // Commit before every part is there, or with another root.
    expect("incomplete", f.store.commit(&p, &id, [0; 32]).await.unwrap_err());

    assert_eq!(part_count(&f.store, &id).await, 1, "no refused part was recorded");
    assert!(!f.data.join(format!("objects/data/{id}/0000000001")).exists(), "no refused part was stored");
    assert!(denials(&f).await >= before + 13, "every refusal is an audit event");
    // Nothing is visible yet, to anyone.
    expect("wrong_state", f.store.open_read(&p, &id).await.err().unwrap());
    assert!(f.store.list(&bob, None).await.unwrap().iter().all(|o| o.id != id));

    // The rest goes through, and a wrong root at commit is refused.
    let g = geometry(&t);
    let mut roots = vec![r0];
    for part in 1..g.parts() {
        let (w, r) = seal(&t, &plain, part);
        f.store.put_part(&p, &id, part, w, Some(r)).await.unwrap();
        roots.push(r);
    }
    expect("root_mismatch", f.store.commit(&p, &id, [9; 32]).await.unwrap_err());
    f.store.commit(&p, &id, combine_part_roots(&roots)).await.unwrap();
    expect("wrong_state", f.store.commit(&p, &id, combine_part_roots(&roots)).await.unwrap_err());
    assert_eq!(download(&f.store, &p, &id).await, plain);
}

#[tokio::test]
async fn names_scopes_clearance_and_policy_are_enforced() {
    let f = fixture().await;
    let p = alice();
    for name in ["../x", "a/../b", "/etc/passwd", "tab\tname", "bidi\u{202e}txt", ""] {
        let e = f.store.create_upload(&p, new(name, Classification::Public, 1)).await.err().unwrap();
        assert_eq!(e.code(), "invalid_request", "{name:?}");
    }
    let reader = who("rita", "data:read", Classification::Controlled);
    assert_eq!(
        f.store.create_upload(&reader, new("x", Classification::Public, 1)).await.err().unwrap().code(),
        "insufficient_scope"
    );
    assert_eq!(
        f.store.create_upload(&p, new("x", Classification::Controlled, 1)).await.err().unwrap().code(),
        "insufficient_clearance"
    );
    let boss = who("boss", "data:read data:write", Classification::Controlled);
    let e = f.store.create_upload(&boss, new("genome.vcf", Classification::Controlled, 1)).await.err().unwrap();
    assert_eq!(e.code(), "policy_refused", "controlled data needs an HSM KEK: {e}");

    let (id, _) = upload(&f.store, &p, "outbreak.vcf", Classification::Restricted, &data(5000, 1)).await;
    let low = who("lou", "data:read", Classification::Internal);
    assert_eq!(f.store.open_read(&low, &id).await.err().unwrap().code(), "insufficient_clearance");
    assert_eq!(f.store.read_part(&low, &id, 0).await.err().unwrap().code(), "insufficient_clearance");
    assert!(f.store.list(&low, None).await.unwrap().is_empty(), "listing hides objects above the clearance");
    let other = who("otto", "data:read data:write", Classification::Restricted);
    assert_eq!(f.store.delete(&other, &id).await.err().unwrap().code(), "not_owner");
    let events = f.audit.events();
    assert!(events.iter().any(|e| e.kind == "store.read" && e.outcome == Outcome::Deny));
    assert!(events.iter().any(|e| e.kind == "store.upload.create" && e.outcome == Outcome::Allow));
}

#[tokio::test]
async fn a_task_bound_token_reaches_only_its_inputs_and_outputs() {
    let f = fixture().await;
    let p = alice();
    let (input, _) = upload(&f.store, &p, "reads.fq", Classification::Restricted, &data(3000, 2)).await;
    let (other, _) = upload(&f.store, &p, "other.fq", Classification::Restricted, &data(3000, 3)).await;
    let worker = Principal {
        task: Some(seqshield_auth::jwt::TaskBinding {
            id: "task_1".into(),
            read: vec![input.clone()],
            write: vec!["calls.vcf".into()],
        }),
        ..alice()
    };
    assert_eq!(download(&f.store, &worker, &input).await, data(3000, 2));
    for e in [
        f.store.open_read(&worker, &other).await.err().unwrap(),
        f.store.read_part(&worker, &other, 0).await.err().unwrap(),
        f.store.info(&worker, &other).await.err().unwrap(),
        f.store.create_upload(&worker, new("elsewhere.vcf", Classification::Restricted, 10)).await.err().unwrap(),
        f.store.delete(&worker, &input).await.err().unwrap(),
    ] {
        assert_eq!(e.code(), "outside_task", "{e}");
        assert!(e.to_string().contains("task_1"), "{e}");
    }
    let listed: Vec<String> = f.store.list(&worker, None).await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(listed, vec![input.clone()]);
    let (out, _) = upload(&f.store, &worker, "calls.vcf", Classification::Restricted, &data(100, 4)).await;
    assert_eq!(f.store.info(&p, &out).await.unwrap().owner, "alice", "outputs belong to the task's owner");
    // The owner's own upload of another name cannot be continued by the worker.
    let t = f.store.create_upload(&p, new("mine.vcf", Classification::Restricted, 10)).await.unwrap();
    assert_eq!(f.store.resume_upload(&worker, &t.info.id).await.err().unwrap().code(), "outside_task");
}

#[tokio::test]
async fn delete_crypto_shreds_the_wrapped_key_out_of_the_database_files() {
    let f = fixture().await;
    let p = alice();
    let plain = data(20_000, 3);
    let (id, _) = upload(&f.store, &p, "patient.bam", Classification::Restricted, &plain).await;
    let row = f.store.meta().get(&id).await.unwrap().unwrap();
    let (sealed, _) = SealedHeader::parse(row.header.as_ref().unwrap()).unwrap();
    let wrapped = sealed.recipients()[0].wrapped.clone();
    let report = f.store.delete(&p, &id).await.unwrap();
    assert_eq!(report.wrapped_keys_destroyed, 1);
    assert!(report.blobs_deleted >= 5);
    assert!(f.store.meta().get(&id).await.unwrap().is_none());
    assert!(!f.data.join(format!("objects/data/{id}")).exists());
    for file in ["store.db", "store.db-wal"] {
        if let Ok(bytes) = std::fs::read(f.data.join(file)) {
            assert!(!bytes.windows(64).any(|w| w == &wrapped[..64]), "the wrapped key survives in {file}");
        }
    }
    assert_eq!(f.store.open_read(&p, &id).await.err().unwrap().code(), "not_found");
}

#[tokio::test]
async fn a_delete_cut_short_is_finished_and_stale_uploads_expire() {
    let f = fixture().await;
    let p = alice();
    let (id, _) = upload(&f.store, &p, "a.bin", Classification::Internal, &data(9000, 9)).await;
    // The crash: keys destroyed, blobs and rows still there.
    assert!(f.store.meta().shred(&id, 1).await.unwrap());
    let t = f.store.create_upload(&p, new("stale.bin", Classification::Internal, 9000)).await.unwrap();
    let (w, r) = seal(&t, &data(9000, 9), 0);
    f.store.put_part(&p, &t.info.id, 0, w, Some(r)).await.unwrap();
    f.clock.advance(25 * 3600);
    let Fixture { _dir, data, audit, clock, store } = f;
    drop(store);
    let store = Store::open(small_cfg(), &data, kek(), false, audit.clone(), clock).await.unwrap();
    assert!(store.meta().get(&id).await.unwrap().is_none());
    assert!(!data.join(format!("objects/data/{id}")).exists());
    assert!(store.meta().get(&t.info.id).await.unwrap().is_none(), "the idle upload was shredded");
    assert!(!data.join(format!("objects/data/{}", t.info.id)).exists());
    assert!(audit.events().iter().any(|e| e.kind == "store.upload.expire"));
}

#[tokio::test]
async fn the_data_key_comes_back_on_resume_only_to_the_uploader() {
    let f = fixture().await;
    let p = alice();
    let plain = data(30_000, 5);
    let t = f.store.create_upload(&p, new("r.fq", Classification::Restricted, plain.len())).await.unwrap();
    let (w, r) = seal(&t, &plain, 0);
    f.store.put_part(&p, &t.info.id, 0, w, Some(r)).await.unwrap();
    let again = f.store.resume_upload(&p, &t.info.id).await.unwrap();
    assert_eq!(again.received, vec![0]);
    assert_eq!(again.data_key.expose_secret(), t.data_key.expose_secret());
    assert_eq!(again.header, t.header);
    // Re-sealing with the returned key gives identical bytes: resumable.
    assert_eq!(seal(&again, &plain, 1), seal(&t, &plain, 1));
    let bob = who("bob", "data:read data:write", Classification::Controlled);
    assert_eq!(f.store.resume_upload(&bob, &t.info.id).await.err().unwrap().code(), "not_found");
    let _unused: Option<DataKey> = None;
}

#[tokio::test]
async fn the_schema_works_on_postgresql() {
    let Some(url) = std::env::var("SEQSHIELD_TEST_POSTGRES").ok().filter(|v| !v.is_empty()) else {
        assert!(std::env::var_os("CI").is_none(), "CI needs PostgreSQL: run the suite through scripts/test");
        eprintln!("skipped: SEQSHIELD_TEST_POSTGRES is not set (scripts/services starts PostgreSQL)");
        return;
    };
    // A fresh database per run, so reruns and parallel suites never collide.
    let db = format!("seqshield_test_{}", seqshield_store::names::new_id().trim_start_matches("obj_"));
    let admin = seqshield_store::meta::Meta::open(&url).await.unwrap();
    let _ = admin.dialect();
    admin.execute_raw(&format!("CREATE DATABASE {db}")).await.unwrap();
    let base = url.rsplit_once('/').unwrap().0;
    let cfg = StoreConfig { database: Some(format!("{base}/{db}")), ..small_cfg() };
    let f = fixture_with(cfg.clone()).await;
    assert_eq!(f.store.meta().dialect(), seqshield_store::meta::Dialect::Postgres);
    let plain = data(50_000, 11);
    let (id, _) = upload(&f.store, &alice(), "pg.bin", Classification::Restricted, &plain).await;
    assert_eq!(download(&f.store, &alice(), &id).await, plain);
    assert_eq!(f.store.list(&alice(), Some("ecoli")).await.unwrap().len(), 1);
    f.store.delete(&alice(), &id).await.unwrap();
    assert!(f.store.list(&alice(), None).await.unwrap().is_empty());
    // Migrations are idempotent: opening again applies nothing new.
    seqshield_store::meta::Meta::open(cfg.database.as_deref().unwrap()).await.unwrap();
}

#[tokio::test]
async fn sync_to_azurite_rewraps_for_the_cloud_kek_and_checks_roots_end_to_end() {
    let Some(endpoint) = std::env::var("SEQSHIELD_TEST_AZURITE").ok().filter(|v| !v.is_empty()) else {
        assert!(std::env::var_os("CI").is_none(), "CI needs Azurite: run the suite through scripts/test");
        eprintln!("skipped: SEQSHIELD_TEST_AZURITE is not set (scripts/services starts Azurite)");
        return;
    };
    let cloud_dir = kek_dir("cloud");
    let mut cfg = small_cfg();
    cfg.replicas.insert(
        "cloud".into(),
        ReplicaConfig {
            backend: BackendConfig::Azure {
                account: "devstoreaccount1".into(),
                container: "seqshield".into(),
                access_key_file: None,
                endpoint: Some(endpoint),
                insecure_emulator: true,
            },
            kek_public_key: Some(cloud_dir.join(seqshield_keys::file::PUBLIC_KEY_FILE)),
        },
    );
    let f = fixture_with(cfg).await;
    assert!(f.audit.events().iter().any(|e| e.kind == "store.insecure_backend"), "the emulator switch is audited");
    let p = alice();
    let admin = who("ops", "data:read data:admin", Classification::Restricted);
    let plain = data(40_000, 21);
    let (id, root) = upload(&f.store, &p, "burst.fq", Classification::Internal, &plain).await;
    let (kept, _) = upload(&f.store, &p, "stays.vcf", Classification::Restricted, &data(100, 1)).await;

    assert_eq!(f.store.sync(&p, "cloud", &|_| {}).await.err().unwrap().code(), "insufficient_scope");
    let events = std::sync::Mutex::new(Vec::new());
    let summary = f.store.sync(&admin, "cloud", &|e| events.lock().unwrap().push(e)).await.unwrap();
    assert_eq!((summary.copied, summary.failed), (1, 0), "{summary:?}");
    assert!(summary.skipped >= 1, "restricted data stays on-premises by policy");
    let events = events.into_inner().unwrap();
    assert!(events.iter().any(|e| matches!(e, seqshield_store::SyncEvent::Skipped { id, .. } if id == &kept)));

    // The cloud copy is a complete object for the cloud KEK, read back
    // through object_store and opened with the format's reader.
    let cloud = f.store.replica_store("cloud").unwrap();
    let get = |path: object_store::path::Path| {
        let cloud = cloud.clone();
        async move { cloud.get(&path).await.unwrap().bytes().await.unwrap() }
    };
    let mut whole = get(seqshield_store::blobs::header_path(&id)).await.to_vec();
    let g = Geometry::new(plain.len() as u64, 1024, 4);
    for part in 0..g.parts() {
        whole.extend_from_slice(&get(seqshield_store::blobs::part_path(&id, part)).await);
    }
    whole.extend_from_slice(&get(seqshield_store::blobs::trailer_path(&id)).await);
    let cloud_kek = FileKek::open(cloud_dir, PASS).unwrap();
    let (sealed, _) = SealedHeader::parse(&whole).unwrap();
    assert!(seqshield_keys::unlock(sealed.clone(), &[kek().as_ref()]).is_err(), "only the cloud KEK opens the copy");
    let (dk, header) = seqshield_keys::unlock(sealed.clone(), &[&cloud_kek]).unwrap();
    let body = &whole[sealed.encoded_len()..];
    let mut reader = seqshield_format::StreamReader::new(std::io::Cursor::new(body), &header, &dk);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut out).unwrap();
    assert_eq!(out, plain);
    let replicas = f.store.replicas_of(&id).await.unwrap();
    assert_eq!(replicas[0].merkle_root, hex::encode(root));

    // Again: nothing to do. Then a delete shreds the cloud copy too.
    let again = f.store.sync(&admin, "cloud", &|_| {}).await.unwrap();
    assert_eq!((again.copied, again.already), (0, 1));
    f.store.delete(&p, &id).await.unwrap();
    let left: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(cloud.list(Some(&seqshield_store::blobs::object_prefix(&id))))
            .await
            .unwrap();
    assert!(left.is_empty(), "cloud blobs left after delete: {left:?}");
}
