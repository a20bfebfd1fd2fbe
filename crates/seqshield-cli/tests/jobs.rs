//! The TES job service end to end on the local executor: a task on
//! encrypted inputs runs sandboxed through `seqshield worker`, its outputs
//! land encrypted in the store; bad requests are refused with TES-shaped
//! errors and change nothing; owners see only their tasks; cancel works;
//! a worker refuses a tampered manifest.

mod common;

use std::path::{Path, PathBuf};

use common::site::*;
use common::tes::{get, put, user, Api};
use serde_json::{json, Value};

fn worker_log(data: &Path, id: &str) -> String {
    std::fs::read_to_string(data.join("jobs/local").join(format!("{id}.log"))).unwrap_or_default()
}

#[test]
fn tasks_run_sandboxed_on_encrypted_inputs_and_bad_requests_change_nothing() {
    let (site, secrets) = site(&["alice", "bob"], None);
    let gw = &site.gw;
    let data = site.dir.path().join("data");
    let alice = user(&site, "alice", &secrets[0]);
    let bob = user(&site, "bob", &secrets[1]);
    let (a, b) = (Api::new(gw, alice.path()), Api::new(gw, bob.path()));

    let (s, info) = a.get("/ga4gh/tes/v1/service-info");
    assert_eq!((s, info["type"]["artifact"].as_str()), (200, Some("tes")), "{info}");

    let text = "patient 4711 sample S1\nACGTTGCAACGTGGCATTGA\n".repeat(2000);
    let input = alice.path().join("reads.txt");
    std::fs::write(&input, &text).unwrap();
    let obj = put(alice.path(), gw, &input, "reads.txt", "restricted");

    let task = json!({
        "name": "copy-and-count",
        "inputs": [{"url": format!("seqshield://{obj}"), "path": "/data/in/reads.txt"}],
        "outputs": [
            {"url": "seqshield://run1/copy.txt", "path": "/data/out/copy.txt"},
            {"url": "seqshield://run1/count.txt", "path": "/data/out/count.txt"}
        ],
        "executors": [
            {"image": "debian:bookworm", "command": ["cat", "/data/in/reads.txt"], "stdout": "/data/out/copy.txt"},
            {"image": "debian:bookworm", "command": ["wc", "-l", "/data/in/reads.txt"], "stdout": "/data/out/count.txt"},
            {"image": "debian:bookworm", "command": ["head", "-n", "3", "/data/in/reads.txt"]}
        ],
        "tags": {"project": "outbreak"}
    });
    let (s, created) = a.post("/ga4gh/tes/v1/tasks", &task);
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let done = a.finished(&id, 120);
    assert_eq!(done["state"], "COMPLETE", "{done}\nworker log:\n{}", worker_log(&data, &id));
    let log = &done["logs"][0];
    assert_eq!(log["metadata"]["seqshield.partition"], "onprem", "{done}");
    assert!(log["metadata"]["seqshield.placement_reasons"].as_str().unwrap().contains("restricted"), "{done}");
    assert_eq!(log["logs"].as_array().unwrap().len(), 3);
    for e in log["logs"].as_array().unwrap() {
        assert_eq!(e["exit_code"], 0, "{e}");
    }
    // The third executor printed input lines: the log keeps none of them.
    let stdout = log["logs"][2]["stdout"].as_str().unwrap();
    assert!(!stdout.contains("ACGTTGCAACGT") && !stdout.contains("4711"), "{stdout}");
    let outputs = log["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{done}");
    let copy_id = outputs[0]["url"].as_str().unwrap().strip_prefix("seqshield://").unwrap();
    let got = alice.path().join("copy.txt");
    get(alice.path(), gw, copy_id, &got);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), text);
    let count_id = outputs[1]["url"].as_str().unwrap().strip_prefix("seqshield://").unwrap();
    let got = alice.path().join("count.txt");
    get(alice.path(), gw, count_id, &got);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "4000 /data/in/reads.txt\n");
    // The outputs are alice's and restricted, like their input.
    let (_, o) = a.get(&format!("/api/v1/objects/{copy_id}"));
    assert_eq!(
        (o["owner"].as_str(), o["classification"].as_str(), o["encrypted"].as_bool()),
        (Some("alice"), Some("restricted"), Some(true)),
        "{o}"
    );
    // The manifest and the scratch space are gone or private.
    let manifest = data.join("jobs/manifests").join(format!("{id}.json"));
    assert_eq!(
        std::fs::metadata(&manifest)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
    assert!(!Path::new("/run/seqshield/scratch").join(&id).exists(), "scratch was left behind");

    // A worker refuses a tampered manifest, and the token service refuses
    // the genuine one once its task has finished.
    let worker = |file: &Path| {
        let mut c = sq(alice.path());
        c.args(["worker", "run"])
            .arg(file)
            .args(["--server", &gw.url, "--ca-cert"])
            .arg(&gw.cert)
            .arg("--client-secret-file")
            .arg(data.join("jobs/worker.secret"))
            .arg("--scratch-root")
            .arg(alice.path().join("scratch"));
        c.output().unwrap()
    };
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let spec = m["spec"].as_str().unwrap().replace("\"cat\"", "\"md5sum\"");
    m["spec"] = spec.into();
    let tampered = alice.path().join("tampered.json");
    std::fs::write(&tampered, m.to_string()).unwrap();
    let out = worker(&tampered);
    assert!(!out.status.success() && show(&out).contains("spec was modified"), "{}", show(&out));
    let out = worker(&manifest);
    assert!(!out.status.success() && show(&out).contains("exchange was refused"), "{}", show(&out));

    // Views and visibility.
    let (_, minimal) = a.get(&format!("/ga4gh/tes/v1/tasks/{id}"));
    assert_eq!(minimal, json!({"id": id, "state": "COMPLETE"}));
    let (_, basic) = a.get(&format!("/ga4gh/tes/v1/tasks/{id}?view=BASIC"));
    assert!(basic["logs"][0]["logs"][0].get("stdout").is_none(), "{basic}");
    let (s, e) = b.get(&format!("/ga4gh/tes/v1/tasks/{id}"));
    assert_eq!((s, e["error"].as_str()), (404, Some("not_found")), "bob cannot see alice's task: {e}");
    let (s, _) = b.post(&format!("/ga4gh/tes/v1/tasks/{id}:cancel"), &json!({}));
    assert_eq!(s, 404, "nor cancel it");
    let (_, list) = b.get("/ga4gh/tes/v1/tasks");
    assert_eq!(list["tasks"], json!([]), "{list}");

    // Bad requests: a clear 4xx in TES shape, and no task recorded.
    let big = "x".repeat(2 << 20);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("invalid JSON", b"{\"executors\": [".to_vec(), 400, "invalid_task"),
        (
            "unknown field",
            serde_json::to_vec(&json!({"executors": [{"image": "debian:bookworm", "command": ["true"], "gpu": 1}]}))
                .unwrap(),
            400,
            "invalid_task",
        ),
        (
            "forbidden image",
            serde_json::to_vec(&json!({"executors": [{"image": "ubuntu:latest", "command": ["true"]}]})).unwrap(),
            403,
            "policy_refused",
        ),
        (
            "forbidden command",
            serde_json::to_vec(&json!({"executors": [{"image": "debian:bookworm", "command": ["sh", "-c", "id"]}]}))
                .unwrap(),
            403,
            "policy_refused",
        ),
        (
            "payload over the limit",
            serde_json::to_vec(
                &json!({"description": big, "executors": [{"image": "debian:bookworm", "command": ["true"]}]}),
            )
            .unwrap(),
            413,
            "payload_too_large",
        ),
        (
            "path into the tool environment",
            serde_json::to_vec(
                &json!({"executors": [{"image": "debian:bookworm", "command": ["true"], "stdout": "/etc/passwd"}]}),
            )
            .unwrap(),
            400,
            "invalid_task",
        ),
    ];
    for (what, body, status, code) in cases {
        let (s, e) = a.call(reqwest::Method::POST, "/ga4gh/tes/v1/tasks", Some(body));
        assert_eq!(s, status, "{what}: {e}");
        assert_eq!(e["error"], code, "{what}: {e}");
        assert_eq!(e["code"], status, "{what}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{what}: {e}");
    }
    // An input the caller may not read: ivy is cleared for internal data
    // only, and alice's reads are restricted.
    let out = run_ok(
        admin()
            .args(["--json", "user", "add", "--data-dir"])
            .arg(&data)
            .arg("ivy")
            .arg("--password-file")
            .arg(site.dir.path().join("pw"))
            .args(["--scopes", SCOPES, "--clearance", "internal"]),
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let ivy = user(&site, "ivy", &uri_secret(v["otpauth_uri"].as_str().unwrap()));
    let i = Api::new(gw, ivy.path());
    let (s, e) = i.post(
        "/ga4gh/tes/v1/tasks",
        &json!({"inputs": [{"url": format!("seqshield://{obj}"), "path": "/data/x"}],
                "executors": [{"image": "debian:bookworm", "command": ["true"]}]}),
    );
    assert_eq!((s, e["error"].as_str()), (403, Some("insufficient_clearance")), "{e}");
    let (_, list) = i.get("/ga4gh/tes/v1/tasks");
    assert_eq!(list["tasks"], json!([]), "{list}");
    let (_, list) = a.get("/ga4gh/tes/v1/tasks");
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1, "refused tasks were not recorded: {list}");
    let (s, e) = a.get("/ga4gh/tes/v1/tasks?view=EVERYTHING");
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_task")), "{e}");
    let (s, e) = a.get("/ga4gh/tes/v1/tasks/task_0123456789abcdef0123456789abcdef");
    assert_eq!(s, 404, "{e}");
}

/// A root file system holding `cat` and the libraries it loads, copied
/// from the host: an image that has `cat` and nothing else.
fn cat_rootfs(dir: &Path) {
    let out = std::process::Command::new("ldd").arg("/usr/bin/cat").output().unwrap();
    let mut files = vec!["/usr/bin/cat".to_owned()];
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(p.to_owned());
        }
    }
    for f in files {
        let real = std::fs::canonicalize(&f).unwrap();
        let dest = dir.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&real, &dest).unwrap();
    }
}

/// An image policy under `root` approving `local/cat:1`, a rootfs holding
/// only `cat` and its libraries, for the `commands` (a TOML array).
fn cat_image_policy(root: &Path, commands: &str) -> PathBuf {
    let rootfs = root.join("cat-image");
    cat_rootfs(&rootfs);
    let policy = root.join("images.toml");
    std::fs::write(
        &policy,
        format!(
            "version = 1\n[[image]]\nname = \"local/cat:1\"\nreason = \"test: cat and its libraries only\"\nkind = \"rootfs\"\npath = \"{}\"\ncommands = {commands}\n",
            rootfs.display()
        ),
    )
    .unwrap();
    policy
}

#[test]
fn a_rootfs_image_runs_only_what_it_holds() {
    let root = tempfile::tempdir().unwrap();
    let policy = cat_image_policy(root.path(), r#"["cat", "wc"]"#);
    let (site, secrets) = site(&["alice"], Some(&format!("[jobs]\nimages = \"{}\"\n", policy.display())));
    let gw = &site.gw;
    let alice = user(&site, "alice", &secrets[0]);
    let a = Api::new(gw, alice.path());
    let input = alice.path().join("in.txt");
    std::fs::write(&input, "from the rootfs\n").unwrap();
    let obj = put(alice.path(), gw, &input, "in.txt", "internal");
    let task = |cmd: &str| {
        json!({"inputs": [{"url": obj, "path": "/data/in.txt"}],
               "outputs": [{"url": "seqshield://r/out.txt", "path": "/data/out.txt"}],
               "executors": [{"image": "local/cat:1", "command": [cmd, "/data/in.txt"], "stdout": "/data/out.txt"}]})
    };
    let done = a.finished(&a.submit(&task("cat")), 120);
    assert_eq!(done["state"], "COMPLETE", "{done}");
    let out_id =
        done["logs"][0]["outputs"][0]["url"].as_str().unwrap().strip_prefix("seqshield://").unwrap().to_owned();
    let got = alice.path().join("out.txt");
    get(alice.path(), gw, &out_id, &got);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "from the rootfs\n");
    // `wc` is allowed by the policy but the image does not hold it (the
    // host's is not visible): the worker says so.
    let done = a.finished(&a.submit(&task("wc")), 120);
    assert_eq!(done["state"], "SYSTEM_ERROR", "{done}");
    assert!(done.to_string().contains("not installed there"), "{done}");
    // The host image is not approved here at all.
    let (s, e) =
        a.post("/ga4gh/tes/v1/tasks", &json!({"executors": [{"image": "debian:bookworm", "command": ["cat"]}]}));
    assert_eq!((s, e["error"].as_str()), (403, Some("policy_refused")), "{e}");
}

/// `[jobs.timing]`: a task at or above `pad_from` completes on a bucket
/// bound, sends no progress, and its executor times are withheld; the
/// worker says so in the system log without saying the real runtime.
#[test]
fn classified_tasks_complete_on_padded_bucket_bounds() {
    let root = tempfile::tempdir().unwrap();
    let policy = cat_image_policy(root.path(), r#"["cat"]"#);
    let config = format!(
        "[jobs]\nimages = \"{}\"\n[jobs.timing]\npad_from = \"internal\"\nrounding = \"multiple\"\nbase_secs = 6\n",
        policy.display()
    );
    let (site, secrets) = site(&["alice"], Some(&config));
    let gw = &site.gw;
    let alice = user(&site, "alice", &secrets[0]);
    let a = Api::new(gw, alice.path());
    let input = alice.path().join("in.txt");
    std::fs::write(&input, "padded\n").unwrap();
    let obj = put(alice.path(), gw, &input, "in.txt", "internal");
    let task = json!({"inputs": [{"url": obj, "path": "/data/in.txt"}],
           "outputs": [{"url": "seqshield://r/out.txt", "path": "/data/out.txt"}],
           "executors": [{"image": "local/cat:1", "command": ["cat", "/data/in.txt"], "stdout": "/data/out.txt"}]});
    let id = a.submit(&task);
    let done = a.finished(&id, 180);
    assert_eq!(done["state"], "COMPLETE", "{done}");
    let log = &done["logs"][0];
    // Seconds of the day of an RFC 3339 time `YYYY-MM-DDThh:mm:ss…`.
    let secs = |k: &str| {
        let t = log[k].as_str().unwrap_or_else(|| panic!("no {k}: {done}"));
        let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
        n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
    };
    // `cat` takes milliseconds; the report came only once 6 s had passed.
    let took = (secs("end_time") - secs("start_time")).rem_euclid(86_400);
    assert!((6..=9).contains(&took), "runtime {took} s is not padded to the 6 s bucket: {done}");
    let exec = &log["logs"][0];
    assert!(exec.get("start_time").is_none_or(Value::is_null), "executor times leak: {exec}");
    assert!(exec.get("end_time").is_none_or(Value::is_null), "executor times leak: {exec}");
    let system = log["system_logs"].to_string();
    assert!(system.contains("completion time padded to a multiple bucket of 6 s"), "{done}");
}
