//! `seqshield demo`: the whole story against a real `seqshield serve`.
//!
//! 1. A fresh data directory on embedded defaults (file KEK generated on
//!    first start, self-signed P-384 certificate, SQLite and the local disk,
//!    the local sandbox executor); a demo user with a password and TOTP, and
//!    the CLI's public client, provisioned with `seqshield user add` and
//!    `seqshield client add`.
//! 2. `seqshield serve` started as a child process; `seqshield login` runs
//!    the OAuth code flow with PKCE, and the demo plays the browser on the
//!    gateway's pages, computing the TOTP code ([`signin`]).
//! 3. The reference and the ART-simulated read pairs of a truth set
//!    (`scripts/truthset`: the real E. coli 536 genome with planted
//!    variants) uploaded encrypted with `seqshield put` (restricted).
//! 4. The variant-calling pipeline submitted as a GA4GH TES task and
//!    followed to COMPLETE; the call set fetched back with `seqshield get`
//!    (every part verified against the object's Merkle root).
//! 5. The gateway stopped gracefully and its audit log verified with
//!    `seqshield audit verify`.
//!
//! The same pipeline runs bare too, in the same run: the same argv on the
//! plaintext files in a scratch directory, with no gateway, no encryption,
//! no sandbox, no log filter. The report gives both wall times and the
//! overhead, the variant counts with recall and precision against the
//! planted truth, the controls in effect, the defaults weaker than
//! production the gateway warned about, and where data, keys and log live.

mod science;
mod signin;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Args;
use reqwest::Url;
use serde_json::{json, Value};

use crate::client::{GatewayArgs, TokenSource};
use crate::Ctx;

/// Where `scripts/demo` builds the whole-genome truth set.
pub const DEFAULT_DATA: &str = "/var/tmp/seqshield-truthset/ecoli";
/// The demo's account.
const USER: &str = "demo";
/// The demo user's and client's scopes.
const SCOPES: &str = "openid,data:read,data:write,jobs:submit,jobs:read";
/// The CLI's public client (what `seqshield login` uses).
const CLIENT: &str = "seqshield-cli";
/// Longest the task may take.
const TASK_TIMEOUT: Duration = Duration::from_secs(3 * 3600);
/// Longest the gateway may take to announce itself, or to stop.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the task's state is read.
const POLL: Duration = Duration::from_millis(50);

/// `seqshield demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Truth set made by scripts/truthset: ref.fa, reads_1.fq, reads_2.fq,
    /// truth.vcf.gz (scripts/demo builds the whole E. coli 536 genome's).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Keep everything (data directory, logs, call sets) here instead of a
    /// temporary directory removed on exit; it must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Threads for bwa mem and samtools sort, the same in both runs.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Runs of the pipeline each way (bare, then through seqshield, in
    /// turn); the report gives the median of each.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    repeat: u32,
}

/// The gateway as a child process.
struct Gateway {
    child: Option<Child>,
    url: Url,
    cert: PathBuf,
    cert_sha256: String,
}

impl Gateway {
    /// Starts `seqshield --json serve` on a free loopback port with no
    /// configuration but the data directory: the embedded defaults.
    fn start(exe: &Path, data: &Path, log: &Path) -> Result<Self> {
        let mut cmd = Command::new(exe);
        cmd.args(["--json", "serve", "--data-dir"]).arg(data).args(["--listen", "127.0.0.1:0"]);
        // Nothing from the caller's environment configures this gateway.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("SEQSHIELD_") && k != "SEQSHIELD_LOG") {
                cmd.env_remove(k);
            }
        }
        let err = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .context("cannot start seqshield serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut g = Self {
            child: Some(child),
            url: Url::parse("https://127.0.0.1/")?,
            cert: PathBuf::new(),
            cert_sha256: String::new(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(GATEWAY_TIMEOUT).unwrap_or_default();
        let ready: Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(_) => {
                g.stop().ok();
                bail!("seqshield serve did not start: {}", last_lines(log, 20));
            }
        };
        g.url = Url::parse(&format!("{}/", ready["url"].as_str().context("no url in the readiness line")?))?;
        g.cert = PathBuf::from(ready["cert_path"].as_str().context("no cert_path in the readiness line")?);
        g.cert_sha256 = ready["cert_sha256"].as_str().unwrap_or_default().to_owned();
        Ok(g)
    }

    fn args(&self) -> GatewayArgs {
        GatewayArgs { server: self.url.clone(), ca_cert: self.cert.clone() }
    }

    /// SIGTERM, then waits for the graceful stop (a last signed tree head).
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM);
        let deadline = Instant::now() + GATEWAY_TIMEOUT;
        loop {
            if let Some(st) = child.try_wait()? {
                return if st.success() { Ok(()) } else { bail!("seqshield serve exited with {st}") };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("seqshield serve did not stop within {GATEWAY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn last_lines(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs one of our own commands; its JSON report.
fn sq(exe: &Path, env: &[(&str, &Path)], args: &[&std::ffi::OsStr]) -> Result<Value> {
    let mut cmd = Command::new(exe);
    cmd.arg("--json").args(args).stdin(Stdio::null()).env_remove("SEQSHIELD_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().with_context(|| format!("cannot run seqshield {:?}", args))?;
    if !out.status.success() {
        bail!(
            "seqshield {} failed ({}): {}{}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("seqshield {:?} printed no JSON report", args))
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The claims of a JWT, decoded for display only (the gateway verified it).
fn jwt_parts(token: &str) -> Option<(Value, Value)> {
    let mut it = token.split('.');
    let dec = |s: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(s).ok()?).ok();
    Some((dec(it.next()?)?, dec(it.next()?)?))
}

/// The defaults weaker than production that the gateway warned about at
/// start (its `weak_default` log events).
fn weak_defaults(log: &Path) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let f = &v["fields"];
            let id = f["weak_default"].as_str()?.to_owned();
            seen.insert(id.clone()).then(|| json!({"id": id, "message": f["message"]}))
        })
        .collect()
}

fn check_inputs(data: &Path) -> Result<()> {
    let mut missing: Vec<String> = science::INPUTS
        .iter()
        .map(|(f, _)| *f)
        .chain(["truth.vcf.gz"])
        .filter(|f| !data.join(f).is_file())
        .map(str::to_owned)
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(crate::exit::bad_input(format!(
            "the truth set {} lacks {}: build it with scripts/truthset --out {} (scripts/demo does)",
            data.display(),
            missing.join(", "),
            data.display()
        )));
    }
    let tools: Vec<&str> = science::TOOLS
        .iter()
        .copied()
        .filter(|t| !science::TOOL_PATH.split(':').any(|d| Path::new(d).join(t).is_file()))
        .collect();
    if !tools.is_empty() {
        return Err(crate::exit::bad_input(format!(
            "missing tools: {} (Debian packages bwa samtools bcftools; scripts/setup installs them)",
            tools.join(", ")
        )));
    }
    Ok(())
}

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<()> {
    check_inputs(&a.data)?;
    let data_set = a.data.canonicalize()?;
    let tmp;
    let work = match &a.work_dir {
        Some(d) => {
            if d.exists() && fs::read_dir(d)?.next().is_some() {
                return Err(crate::exit::bad_input(format!("--work-dir {} is not empty", d.display())));
            }
            fs::create_dir_all(d)?;
            d.canonicalize()?
        }
        None => {
            tmp = tempfile::Builder::new().prefix("seqshield-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let exe = std::env::current_exe().context("cannot find the seqshield binary")?;
    let data = work.join("data");
    let home = work.join("home");
    fs::create_dir_all(&home)?;
    let client_env: Vec<(&str, &Path)> = vec![("XDG_CONFIG_HOME", &home), ("XDG_STATE_HOME", &home), ("HOME", &home)];
    let t_all = Instant::now();
    let mut timings = serde_json::Map::new();
    let note = |s: &str| {
        if !ctx.json {
            eprintln!("demo: {s}");
        }
    };

    // 1. Provision the demo user (password + TOTP) and the CLI's client.
    note("provisioning the demo user and the CLI's client");
    let mut pw = [0u8; 18];
    aws_lc_rs::rand::fill(&mut pw).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let password = zeroize::Zeroizing::new(format!("demo-{}", hex::encode(pw)));
    let pw_file = work.join("demo.password");
    seqshield_jobs::service::write_private(&pw_file, password.as_bytes()).map_err(|e| anyhow::anyhow!(e))?;
    let user = sq(
        &exe,
        &[],
        os![
            "user",
            "add",
            "--data-dir",
            &data,
            USER,
            "--password-file",
            &pw_file,
            "--scopes",
            SCOPES,
            "--clearance",
            "restricted"
        ],
    )?;
    let uri = user["otpauth_uri"].as_str().context("user add printed no otpauth URI")?;
    let secret = totp_secret(uri)?;
    sq(
        &exe,
        &[],
        os![
            "client",
            "add",
            "--data-dir",
            &data,
            CLIENT,
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scopes",
            SCOPES
        ],
    )?;

    // 2. The gateway, and a login through PKCE with TOTP.
    note("starting seqshield serve on embedded defaults");
    let serve_log = work.join("serve.log");
    let t0 = Instant::now();
    let mut gw = Gateway::start(&exe, &data, &serve_log)?;
    timings.insert("gateway_start_seconds".into(), json!(t0.elapsed().as_secs_f64()));
    note(&format!("gateway at {} (certificate sha256 {}); signing in as {USER}", gw.url, gw.cert_sha256));
    let t0 = Instant::now();
    signin::login(&exe, &client_env, &gw.url, &gw.cert, USER, &password, &secret)?;
    timings.insert("login_seconds".into(), json!(t0.elapsed().as_secs_f64()));
    let token_path = crate::client::TokenFile::under(&home.join("seqshield"), &gw.url).path().to_owned();
    let saved: Value = serde_json::from_slice(&fs::read(&token_path).context("login saved no token")?)?;
    let access = zeroize::Zeroizing::new(saved["access_token"].as_str().context("no access token saved")?.to_owned());
    let (jwt_header, claims) = jwt_parts(&access).context("the access token is not a JWT")?;
    // A witness of the log as it stands: the end must extend it.
    let witness = work.join("audit-witness.json");
    sq(&exe, &[], os!["audit", "checkpoint", "--data-dir", &data, "-o", &witness])?;

    // 3. Upload the inputs, encrypted.
    let mut inputs = Vec::new();
    let t0 = Instant::now();
    let mut in_bytes = 0u64;
    for (file, _) in science::INPUTS {
        note(&format!("uploading {file} (restricted: encrypted at rest)"));
        let path = data_set.join(file);
        in_bytes += fs::metadata(&path)?.len();
        let v = sq(
            &exe,
            &client_env,
            os![
                "put",
                "--server",
                gw.url.as_str(),
                "--ca-cert",
                &gw.cert,
                "--classification",
                "restricted",
                "--dataset",
                "demo",
                &path
            ],
        )?;
        inputs.push(v["object"].clone());
    }
    let upload_secs = t0.elapsed().as_secs_f64();
    timings.insert("upload_seconds".into(), json!(upload_secs));
    let ids: Vec<String> = inputs
        .iter()
        .map(|o| o["id"].as_str().map(str::to_owned).context("put printed no id"))
        .collect::<Result<_>>()?;

    // 4. The pipeline, bare and through seqshield, in turn.
    let api = gw.args().connect_anonymous()?.with_bearer(&access, TokenSource::Saved(token_path.clone()))?;
    let (mut bare, mut protected) = (Vec::new(), Vec::new());
    let mut last_task = Value::Null;
    let mut calls_ids = Vec::new();
    let bare_root = work.join("bare");
    for round in 0..a.repeat {
        note(&format!("round {}/{}: the pipeline bare (controls off)", round + 1, a.repeat));
        prepare_bare(&bare_root, &data_set)?;
        bare.push(science::run_bare(&bare_root, a.threads)?);
        note(&format!("round {}/{}: the pipeline as a TES task through seqshield (controls on)", round + 1, a.repeat));
        let (task, secs) = run_task(&api, &science::tes_task(&ids, a.threads))?;
        protected.push(secs);
        let url = task["logs"][0]["outputs"][0]["url"].as_str().context("the task recorded no output")?;
        calls_ids.push(url.strip_prefix("seqshield://").context("output URL is not seqshield://")?.to_owned());
        last_task = task;
    }
    let calls_id = calls_ids.last().cloned().context("no run")?;

    // Fetch the call set: every part checked against the Merkle root.
    note("fetching the call set");
    let calls = work.join("calls.vcf");
    let t0 = Instant::now();
    let fetched =
        sq(&exe, &client_env, os!["get", "--server", gw.url.as_str(), "--ca-cert", &gw.cert, &calls_id, "-o", &calls])?;
    timings.insert("fetch_seconds".into(), json!(t0.elapsed().as_secs_f64()));
    let object = sq(&exe, &client_env, os!["ls", "--server", gw.url.as_str(), "--ca-cert", &gw.cert])?;
    let calls_object = object["objects"]
        .as_array()
        .and_then(|objs| objs.iter().find(|o| o["id"] == calls_id.as_str()))
        .cloned()
        .unwrap_or(Value::Null);

    // 5. Stop the gateway (a last signed tree head) and verify its log.
    note("stopping the gateway and verifying the audit log");
    gw.stop()?;
    let audit = sq(&exe, &[], os!["audit", "verify", "--data-dir", &data, "--witness", &witness])?;
    let events = work.join("audit.jsonl");
    sq(&exe, &[], os!["audit", "export", "--jsonl", "--data-dir", &data, "-o", &events])?;
    let mut actions = std::collections::BTreeMap::<String, u64>::new();
    for line in fs::read_to_string(&events)?.lines() {
        let v: Value = serde_json::from_str(line).context("audit export printed a malformed line")?;
        *actions.entry(v["event"]["action"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }

    // The science: both call sets identical, scored against the truth.
    let bare_calls = bare_root.join(science::OUTPUT);
    let (rb, rp) = (science::records(&bare_calls)?, science::records(&calls)?);
    if rb != rp {
        bail!("the call set through seqshield differs from the bare one ({} vs {} records)", rp.len(), rb.len());
    }
    let reference = data_set.join("ref.fa");
    let truth: BTreeSet<science::Key> =
        science::variants(&reference, &data_set.join("truth.vcf.gz"))?.into_iter().map(|(k, _)| k).collect();
    let score = science::score(&truth, &science::variants(&reference, &calls)?);

    let bare_secs = median(&mut bare.clone());
    let protected_secs = median(&mut protected.clone());
    let overhead = (protected_secs / bare_secs - 1.0) * 100.0;
    let weak = weak_defaults(&serve_log);
    let meta = &last_task["logs"][0]["metadata"];
    let features = seqshield_sandbox::check_features();
    let controls = json!({
        "transport": format!("TLS 1.3 only (TLS13_AES_256_GCM_SHA384, secp384r1); clients pin the gateway's certificate sha256 {}", gw.cert_sha256),
        "login": format!(
            "OAuth 2.0 authorization code with PKCE S256 for {CLIENT}; password then TOTP (RFC 6238); token {} {}s, audience {}, scopes {}",
            jwt_header["alg"].as_str().unwrap_or("?"),
            claims["exp"].as_u64().unwrap_or(0).saturating_sub(claims["iat"].as_u64().unwrap_or(0)),
            claims["aud"],
            claims["scope"].as_str().unwrap_or("?")
        ),
        "storage": format!(
            "{} inputs restricted: AES-256-GCM segments, data keys wrapped by the KEK, Merkle roots {}; every part verified on upload and download",
            inputs.len(),
            inputs.iter().map(|o| o["merkle_root"].as_str().map_or("?".into(), |r| format!("{}…", &r[..16.min(r.len())]))).collect::<Vec<_>>().join(", ")
        ),
        "job": format!(
            "TES task on the {} executor, partition {}; a signed manifest, a worker token bound to the task's inputs and outputs, each step in the sandbox (namespaces, seccomp, Landlock ABI {}, no capabilities), executor logs filtered",
            meta["seqshield.executor"].as_str().and_then(|e| e.split(':').next()).unwrap_or("local"),
            meta["seqshield.partition"].as_str().unwrap_or("?"),
            features.landlock_abi
        ),
        "audit": format!(
            "{} events ({} actions), {} signed tree heads, root {}…; every head's signature and the extension of a witness taken after login verified",
            audit["size"], actions.len(), audit["heads"], audit["root"].as_str().map_or("?", |r| &r[..16.min(r.len())])
        ),
    });
    let report = json!({
        "ok": true,
        "command": "demo",
        "data_set": data_set,
        "threads": a.threads,
        "repeat": a.repeat,
        "controls": controls,
        "weak_defaults": weak,
        "pipeline": {
            "bare_seconds": bare_secs,
            "seqshield_seconds": protected_secs,
            "overhead_percent": overhead,
            "bare_runs": bare,
            "seqshield_runs": protected,
            "what_is_timed": "bare: the six steps on plaintext files; seqshield: TES submit to COMPLETE (dispatch, token exchange, staging and decrypting inputs, the sandboxed steps, encrypting and committing the output)",
        },
        "variants": score,
        "min_qual": science::MIN_QUAL,
        "identical_to_bare": true,
        "records": rp.len(),
        "input_bytes": in_bytes,
        "timings": timings,
        "task": {"id": last_task["id"], "state": last_task["state"], "metadata": meta},
        "calls": {"object": calls_object, "fetched": fetched},
        "audit": audit,
        "audit_actions": actions,
        "where": {
            "work_dir": work,
            "data_dir": data,
            "kek": data.join("kek"),
            "tls": data.join("tls"),
            "objects": data.join("objects"),
            "audit_log": data.join("audit"),
            "audit_witness": witness,
            "audit_export": events,
            "jobs": data.join("jobs"),
            "calls": calls,
            "serve_log": serve_log,
            "kept": a.work_dir.is_some(),
        },
        "total_seconds": t_all.elapsed().as_secs_f64(),
    });
    ctx.report(report.clone(), || human(&report));
    Ok(())
}

fn totp_secret(uri: &str) -> Result<seqshield_auth::totp::TotpSecret> {
    let url = Url::parse(uri).context("malformed otpauth URI")?;
    let b32 = url.query_pairs().find(|(k, _)| k == "secret").context("otpauth URI without a secret")?.1;
    seqshield_auth::totp::TotpSecret::from_base32(&b32).map_err(|e| anyhow::anyhow!("bad TOTP secret: {e}"))
}

/// A fresh bare root with the plaintext inputs copied in.
fn prepare_bare(root: &Path, data_set: &Path) -> Result<()> {
    if root.exists() {
        fs::remove_dir_all(root)?;
    }
    for d in ["ref", "reads", "work", "out"] {
        fs::create_dir_all(root.join(d))?;
    }
    for (file, at) in science::INPUTS {
        fs::copy(data_set.join(file), root.join(at)).with_context(|| format!("cannot copy {file}"))?;
    }
    Ok(())
}

/// Submits `task` and follows it to the end: the FULL view and the time
/// from submission to COMPLETE.
fn run_task(api: &crate::client::Client, task: &Value) -> Result<(Value, f64)> {
    crate::client::block_on(async {
        let t0 = Instant::now();
        let created: Value = api.post_json("ga4gh/tes/v1/tasks", task).await?;
        let id = created["id"].as_str().context("CreateTask returned no id")?.to_owned();
        loop {
            let t: Value = api.get_json(&format!("ga4gh/tes/v1/tasks/{id}?view=MINIMAL")).await?;
            let state = t["state"].as_str().unwrap_or_default().to_owned();
            match state.as_str() {
                "COMPLETE" => {
                    let secs = t0.elapsed().as_secs_f64();
                    let full: Value = api.get_json(&format!("ga4gh/tes/v1/tasks/{id}?view=FULL")).await?;
                    return Ok((full, secs));
                }
                "EXECUTOR_ERROR" | "SYSTEM_ERROR" | "CANCELED" | "PREEMPTED" => {
                    let full: Value = api.get_json(&format!("ga4gh/tes/v1/tasks/{id}?view=FULL")).await?;
                    bail!("the task {id} ended {state}: {}", full["logs"]);
                }
                _ if t0.elapsed() > TASK_TIMEOUT => bail!("the task {id} is still {state} after {TASK_TIMEOUT:?}"),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    })
}

fn human(r: &Value) -> String {
    let p = &r["pipeline"];
    let v = &r["variants"];
    let w = &r["where"];
    let mut s = format!("seqshield demo on {}\n\ncontrols in effect\n", r["data_set"].as_str().unwrap_or_default());
    for (k, c) in r["controls"].as_object().into_iter().flatten() {
        s += &format!("  {k:<10} {}\n", c.as_str().unwrap_or_default());
    }
    let weak = r["weak_defaults"].as_array().cloned().unwrap_or_default();
    if !weak.is_empty() {
        s += "\nweaker than production (embedded defaults; `seqshield doctor` explains each)\n";
        for x in weak {
            s += &format!(
                "  {:<22} {}\n",
                x["id"].as_str().unwrap_or_default(),
                x["message"].as_str().unwrap_or_default()
            );
        }
    }
    s += &format!(
        "\npipeline (median of {}, {} threads)\n  controls off (bare)  {:>9.2} s\n  controls on          {:>9.2} s\n  overhead             {:>+9.2} %\n",
        r["repeat"],
        r["threads"],
        p["bare_seconds"].as_f64().unwrap_or(0.0),
        p["seqshield_seconds"].as_f64().unwrap_or(0.0),
        p["overhead_percent"].as_f64().unwrap_or(0.0)
    );
    s += &format!(
        "\nvariants (QUAL >= {}; call sets identical bare and through seqshield, {} records)\n  planted {}  called {} ({} SNPs, {} indels)  TP {}  FP {}  FN {}\n  recall {:.4}  precision {:.4}\n",
        r["min_qual"],
        r["records"],
        v["truth"],
        v["calls"],
        v["snps"],
        v["indels"],
        v["true_positives"],
        v["false_positives"],
        v["false_negatives"],
        v["recall"].as_f64().unwrap_or(0.0),
        v["precision"].as_f64().unwrap_or(0.0)
    );
    s += &format!(
        "\nwhere things live{}\n  data directory  {}\n  KEK             {}\n  certificate     {}\n  objects         {}\n  audit log       {}\n  call set        {}\n  gateway log     {}",
        if w["kept"] == json!(true) { "" } else { " (a temporary directory, removed on exit; keep it with --work-dir)" },
        w["data_dir"].as_str().unwrap_or_default(),
        w["kek"].as_str().unwrap_or_default(),
        w["tls"].as_str().unwrap_or_default(),
        w["objects"].as_str().unwrap_or_default(),
        w["audit_log"].as_str().unwrap_or_default(),
        w["calls"].as_str().unwrap_or_default(),
        w["serve_log"].as_str().unwrap_or_default(),
    );
    s
}
