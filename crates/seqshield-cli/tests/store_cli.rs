//! `seqshield put | get | ls | rm | verify ID | sync` against a real
//! gateway, with real tokens from `seqshield login`: round trips, refusals,
//! 100 kill -9s of the client or the server mid-upload, a full disk, and
//! the sync to Azurite.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::site::*;
use serde_json::Value;

/// Small segments and parts, so that small files have many parts.
const SMALL_PARTS: &str = "[store]\nsegment_size = 4096\npart_segments = 4\n";

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"ACGT"[(x & 3) as usize]
        })
        .collect()
}

/// `seqshield --json CMD ARGS… --server --ca-cert` as the logged-in user.
fn run(home: &Path, gw: &common::Gateway, cmd: &str, args: &[&str]) -> Output {
    let mut c = client_cmd(home, gw, cmd, &gw.cert);
    c.args(args).env("XDG_STATE_HOME", home.join("state"));
    c.output().unwrap()
}

fn ok(out: Output) -> Value {
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
}

fn refused(out: &Output, code: &str) -> Value {
    assert!(!out.status.success(), "{}", show(out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(out)));
    assert_eq!(v["error"]["code"], code, "{v}");
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

struct User {
    home: tempfile::TempDir,
}

fn user(site: &Site, name: &str, secret: &seqshield_auth::totp::TotpSecret) -> User {
    let home = tempfile::tempdir().unwrap();
    login(home.path(), &site.gw, name, secret);
    User { home }
}

#[test]
fn put_get_ls_verify_rm_end_to_end() {
    let (site, secrets) = site(&["alice", "bob"], Some(SMALL_PARTS));
    let alice = user(&site, "alice", &secrets[0]);
    let bob = user(&site, "bob", &secrets[1]);
    let gw = &site.gw;
    let (a, b) = (alice.home.path(), bob.home.path());
    let plain = data(300_000, 1);
    let file = write(a, "reads.fq", &plain);

    let put = ok(run(a, gw, "put", &["--dataset", "ecoli", "--classification", "restricted", file.to_str().unwrap()]));
    let id = put["object"]["id"].as_str().unwrap().to_owned();
    assert_eq!(put["object"]["state"], "available");
    assert_eq!(put["object"]["encrypted"], true);
    let public = ok(run(a, gw, "put", &["--classification", "public", "--name", "ref.fa", file.to_str().unwrap()]));
    assert_eq!(public["object"]["encrypted"], false);

    let ls = ok(run(b, gw, "ls", &["--dataset", "ecoli"]));
    let objects = ls["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{ls}");
    assert_eq!(objects[0]["name"], "reads.fq");

    // Bob reads it (same clearance, data:read), verified part by part.
    let out = b.join("copy.fq");
    let got = ok(run(b, gw, "get", &[&id, "-o", out.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out).unwrap(), plain);
    assert_eq!(got["merkle_root"], put["object"]["merkle_root"]);
    refused(&run(b, gw, "get", &[&id, "-o", out.to_str().unwrap()]), "bad_input");
    let v = ok(run(b, gw, "verify", &[&id]));
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["parts"].as_u64().unwrap() >= 18, "{v}");

    // Only the owner deletes; then the object is gone for everyone.
    refused(&run(b, gw, "rm", &[&id]), "not_owner");
    let rm = ok(run(a, gw, "rm", &[&id]));
    assert_eq!(rm["wrapped_keys_destroyed"], 1);
    refused(&run(b, gw, "get", &[&id, "-o", b.join("again").to_str().unwrap()]), "not_found");
    refused(&run(a, gw, "verify", &["obj_0123456789abcdef0123456789abcdef"]), "not_found");
    assert!(!b.join("again").exists() && !b.join("again.seqshield-partial").exists());

    // Bad input is refused before anything is sent or stored.
    let traversal = run(a, gw, "put", &["--name", "../../etc/passwd", file.to_str().unwrap()]);
    refused(&traversal, "invalid_request");
    let ctl = run(a, gw, "put", &["--name", "evil\u{202e}gpj.exe", file.to_str().unwrap()]);
    refused(&ctl, "invalid_request");
    let v = refused(
        &run(a, gw, "put", &["--classification", "controlled", file.to_str().unwrap()]),
        "insufficient_clearance",
    );
    assert_eq!(v["error"]["exit_code"], 6, "{v}");
    let ls = ok(run(a, gw, "ls", &[]));
    assert_eq!(ls["objects"].as_array().unwrap().len(), 1, "only ref.fa is left: {ls}");

    // DRS 1.5 shape, with the same token.
    let token = saved_token(a, gw);
    let http = browser(gw);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pid = public["object"]["id"].as_str().unwrap();
    let drs: Value = rt.block_on(async {
        let r = http.get(format!("{}/ga4gh/drs/v1/objects/{pid}", gw.url)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    });
    assert_eq!(drs["id"], pid);
    assert_eq!(drs["size"], plain.len() as u64);
    assert_eq!(drs["checksums"][0]["checksum"], public["object"]["merkle_root"]);
    assert_eq!(drs["access_methods"][0]["access_id"], "seqshield-parts");
    let status = rt
        .block_on(async { http.get(format!("{}/ga4gh/drs/v1/objects/{pid}", gw.url)).send().await.unwrap().status() });
    assert_eq!(status, 401);
}

fn saved_token(home: &Path, gw: &common::Gateway) -> String {
    let port = reqwest::Url::parse(&gw.url).unwrap().port().unwrap();
    let f = home.join("seqshield").join("tokens").join(format!("127.0.0.1_{port}.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// Kills a `seqshield put` (or the gateway under it) at random points,
/// `ROUNDS` times; after each kill nothing partial is visible, the same
/// command resumes and completes, and the bytes come back identical.
#[test]
fn uploads_survive_kill_9_of_the_client_or_the_server() {
    const ROUNDS: u64 = 100;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let (mut site, secrets) = site(&["alice", "bob"], Some(SMALL_PARTS));
    let data_dir = site.dir.path().join("data");
    // Restart on a fixed port: the saved token and upload state name it.
    site.gw.kill();
    site.gw = common::serve_on(&data_dir, PASS, &listen);
    let alice = user(&site, "alice", &secrets[0]);
    let bob = user(&site, "bob", &secrets[1]);
    let (a, b) = (alice.home.path(), bob.home.path());
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut resumed, mut server_kills) = (0, 0);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let plain = data(200_000 + (next() % 600_000) as usize, round);
        let file = write(a, "in.bin", &plain);
        let kill_server = round % 2 == 1;
        let mut child = Reap(
            client_cmd(a, &site.gw, "put", &site.gw.cert)
                .arg(&file)
                .env("XDG_STATE_HOME", a.join("state"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(5 + next() % 150));
        if kill_server {
            server_kills += 1;
            site.gw.kill();
            let _ = child.0.wait();
            site.gw = common::serve_on(&data_dir, PASS, &listen);
        } else {
            let _ = child.0.kill();
            let _ = child.0.wait();
        }
        // Nothing half-uploaded is visible to anyone else.
        for o in ok(run(b, &site.gw, "ls", &[]))["objects"].as_array().unwrap() {
            assert_eq!(o["state"], "available", "round {round}: {o}");
        }
        // The same command resumes (or starts over if the kill came first) and completes.
        let put = ok(run(a, &site.gw, "put", &[file.to_str().unwrap()]));
        if put["parts_already_there"].as_u64().unwrap() > 0 {
            resumed += 1;
        }
        let id = put["object"]["id"].as_str().unwrap().to_owned();
        let back = b.join("back.bin");
        let _ = std::fs::remove_file(&back);
        ok(run(b, &site.gw, "get", &[&id, "-o", back.to_str().unwrap()]));
        assert!(std::fs::read(&back).unwrap() == plain, "round {round}: bytes differ");
        ok(run(a, &site.gw, "rm", &[&id]));
        // Uploads the kill left behind (a kill before the first part) stay
        // invisible; they are shredded when they expire.
    }
    eprintln!(
        "{ROUNDS} rounds ({server_kills} server kills) in {:.0?}; {resumed} resumed an interrupted upload",
        started.elapsed()
    );
    assert!(resumed >= ROUNDS / 4, "too few kills landed mid-upload ({resumed}); the test is not testing resume");
}

/// A local backend on a 1 MiB tmpfs: a larger upload gets a clear
/// `no_space` error, and the store frees what the upload held.
#[test]
fn a_full_disk_is_a_clear_error_and_the_upload_is_cleaned_up() {
    let mnt = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(mnt.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root and must be able to mount a tmpfs");
        eprintln!("skipped: cannot mount a tmpfs (not root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.path().to_path_buf());
    let cfg = format!("{SMALL_PARTS}[store.backend]\nkind = \"local\"\npath = \"{}\"\n", mnt.path().display());
    let (site, secrets) = site(&["alice"], Some(&cfg));
    let alice = user(&site, "alice", &secrets[0]);
    let a = alice.home.path();
    let file = write(a, "big.bin", &data(3 << 20, 5));
    let out = run(a, &site.gw, "put", &[file.to_str().unwrap()]);
    let v = refused(&out, "no_space");
    assert!(v["error"]["message"].as_str().unwrap().contains("removed"), "{v}");
    let used: u64 = walk_size(mnt.path());
    assert!(used < 64 * 1024, "the failed upload still holds {used} bytes");
    assert!(ok(run(a, &site.gw, "ls", &[]))["objects"].as_array().unwrap().is_empty());
    // A file that fits still goes in afterwards.
    let small = write(a, "small.bin", &data(100_000, 6));
    ok(run(a, &site.gw, "put", &[small.to_str().unwrap()]));
}

fn walk_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() { walk_size(&e.path()) } else { m.len() };
    }
    n
}

#[test]
fn sync_to_azurite_from_the_cli() {
    let Some(endpoint) = std::env::var("SEQSHIELD_TEST_AZURITE").ok().filter(|v| !v.is_empty()) else {
        assert!(std::env::var_os("CI").is_none(), "CI needs Azurite: run the suite through scripts/test");
        eprintln!("skipped: SEQSHIELD_TEST_AZURITE is not set (scripts/services starts Azurite)");
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let kek_dir = keys.path().join("cloud-kek");
    let st = admin().args(["keys", "init", "--kek-dir"]).arg(&kek_dir).output().unwrap();
    assert!(st.status.success(), "{}", show(&st));
    let cfg = format!(
        "{SMALL_PARTS}[store.replicas.cloud]\nkek_public_key = \"{}\"\n[store.replicas.cloud.backend]\n\
         kind = \"azure\"\naccount = \"devstoreaccount1\"\ncontainer = \"seqshield\"\nendpoint = \"{endpoint}\"\n\
         insecure_emulator = true\n",
        kek_dir.join("kek.pub.pem").display()
    );
    let (site, secrets) = site(&["alice"], Some(&cfg));
    let home = tempfile::tempdir().unwrap();
    let a = home.path();
    login_with(a, &site.gw, "alice", &secrets[0], &["--scope", "openid data:read data:write data:admin"]);
    let plain = data(123_456, 9);
    let file = write(a, "burst.fq", &plain);
    let put = ok(run(a, &site.gw, "put", &["--classification", "internal", file.to_str().unwrap()]));
    let id = put["object"]["id"].as_str().unwrap().to_owned();
    ok(run(a, &site.gw, "put", &["--classification", "restricted", "--name", "stays.vcf", file.to_str().unwrap()]));

    let out = run(a, &site.gw, "sync", &["--to", "cloud"]);
    assert!(out.status.success(), "{}", show(&out));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["copied"], 1, "{summary}");
    assert_eq!(summary["skipped"], 1, "restricted stays on-premises: {summary}");
    assert!(lines.iter().any(|l| l["event"] == "copied" && l["id"] == id && l["rewrapped"] == true));
    refused(&run(a, &site.gw, "sync", &["--to", "nowhere"]), "invalid_request");

    // An outside judge: the Azure SDK lists what landed in the container.
    let listing = std::process::Command::new(repo_root().join(".venv/bin/python"))
        .arg("-c")
        .arg(format!(
            "from azure.storage.blob import BlobServiceClient\n\
             k='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='\n\
             c=BlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey='+k+';BlobEndpoint={endpoint};')\n\
             print('\\n'.join(b.name for b in c.get_container_client('seqshield').list_blobs(name_starts_with='data/{id}/')))"
        ))
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", show(&listing));
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|l| l.ends_with("/header")) && names.lines().any(|l| l.ends_with("/trailer")), "{names}");
    assert!(names.lines().filter(|l| l.ends_with("0000000000")).count() == 1, "{names}");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
