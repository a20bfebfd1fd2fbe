//! `seqshield put`, `get`, `ls`, `rm`, `verify ID` and `sync`: the object
//! store's client.
//!
//! Uploads and downloads move in parts (power-of-two runs of segments),
//! several at once. The uploader seals each part with the object's data key
//! and declares its Merkle subtree root; the gateway checks every part at
//! its position as it arrives and commits the object only when the whole
//! root matches. The downloader gets the part roots (which combine to the
//! root authenticated by the trailer's MAC) and checks every part against
//! its root before writing it. Both directions resume after an interruption:
//! a small state file (no secrets: the key is fetched again) records the
//! upload, and a download keeps a `.seqshield-partial` file and its list of
//! verified parts beside the output.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use seqshield_format::part::{merkle_root, PartCodec};
use seqshield_format::{Classification, DataKey, SealedHeader};
use seqshield_store::geometry::{combine_part_roots, Geometry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{self, Client, GatewayArgs};
use crate::exit::{bad_input, integrity, Remote};
use crate::Ctx;

/// Parts in flight at once, by default.
const DEFAULT_PARALLEL: u16 = 4;
/// Tries per part before giving up on a connection-level failure.
const PART_TRIES: u32 = 4;

// ---- wire types ------------------------------------------------------------

#[derive(Deserialize, Clone, Debug)]
struct ObjectJson {
    id: String,
    name: String,
    dataset: String,
    classification: Classification,
    size: u64,
    encrypted: bool,
    state: String,
    merkle_root: Option<String>,
    segment_size: u32,
    part_segments: u32,
    part_count: u64,
}

impl ObjectJson {
    fn geometry(&self) -> Geometry {
        Geometry::new(self.size, self.segment_size, self.part_segments)
    }
}

#[derive(Deserialize)]
struct Ticket {
    object: ObjectJson,
    header: String,
    data_key: String,
    #[serde(default)]
    received: Vec<u64>,
    #[serde(default)]
    trailer: Option<String>,
    #[serde(default)]
    part_roots: Vec<String>,
}

/// The object's keys and codec, from a ticket.
struct Opened {
    codec: PartCodec,
    object: ObjectJson,
}

impl Ticket {
    fn open(&self) -> Result<Opened> {
        let mut dk =
            zeroize::Zeroizing::new(B64.decode(&self.data_key).context("the gateway sent a malformed data key")?);
        let key = DataKey::from_slice(&dk).ok_or_else(|| anyhow!("the gateway sent a data key of the wrong length"))?;
        zeroize::Zeroize::zeroize(&mut *dk);
        let header = B64.decode(&self.header).context("the gateway sent a malformed header")?;
        let (sealed, _) = SealedHeader::parse(&header).context("the gateway sent an invalid header")?;
        let header = sealed.authenticate(&key).context("the object's header does not authenticate with its key")?;
        Ok(Opened { codec: PartCodec::new(&header, &key), object: self.object.clone() })
    }
}

fn parse_root(s: &str) -> Result<[u8; 32]> {
    let mut r = [0u8; 32];
    hex::decode_to_slice(s, &mut r).map_err(|_| anyhow!("the gateway sent a malformed Merkle root"))?;
    Ok(r)
}

fn progress(ctx: &Ctx, total: u64, what: &str) -> ProgressBar {
    if ctx.quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

// ---- put -------------------------------------------------------------------

/// `seqshield put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Dataset the object belongs to.
    #[arg(long, value_name = "D")]
    dataset: Option<String>,
    /// Classification: public, internal, restricted or controlled. The
    /// gateway's storage policy decides what that means at rest.
    #[arg(long, value_name = "C", default_value = "restricted")]
    classification: Classification,
    /// Object name (default: the file's name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Content type recorded in the header.
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Parts in flight at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// The file to upload.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// What survives an interrupted upload: which object it was going into and
/// which file (by identity). No key: a resume fetches it again.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct UploadState {
    server: String,
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    dev: u64,
    ino: u64,
    object_id: String,
}

fn state_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("neither XDG_STATE_HOME nor HOME is set")?)
            .join(".local/state"),
    };
    let dir = base.join("seqshield/uploads");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

use std::os::unix::fs::DirBuilderExt;

fn state_path(server: &str, file: &Path) -> Result<PathBuf> {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{server}\n{}", file.display()).as_bytes());
    Ok(state_dir()?.join(format!("{}.json", hex::encode(&d.as_ref()[..16]))))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".seqshield-state").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The gateway's error code in `e`, if it came from the gateway.
fn remote_code(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<Remote>().map(|r| r.code.as_str())
}

pub fn put(ctx: &Ctx, a: PutArgs) -> Result<()> {
    let file = std::fs::canonicalize(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let meta = std::fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        return Err(bad_input(format!("{} is not a regular file", file.display())));
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad_input("the file name is not UTF-8; give --name"))?
            .to_owned(),
    };
    client::block_on(async {
        let client = a.gateway.connect().await?;
        let server = client.base().to_string();
        let identity = UploadState {
            server: server.clone(),
            path: file.clone(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            dev: meta.dev(),
            ino: meta.ino(),
            object_id: String::new(),
        };
        let state_file = state_path(&server, &file)?;
        let ticket = start_or_resume(ctx, &client, &a, &name, &identity, &state_file).await?;
        let info = upload(ctx, &client, &file, &ticket, usize::from(a.parallel)).await?;
        let _ = std::fs::remove_file(&state_file);
        let resumed = ticket.received.len();
        ctx.report(json!({"ok": true, "object": info, "parts_already_there": resumed}), || {
            format!(
                "{}  {} ({} bytes, {}, {}), Merkle root {}",
                info["id"].as_str().unwrap_or_default(),
                info["name"].as_str().unwrap_or_default(),
                info["size"],
                info["classification"].as_str().unwrap_or_default(),
                if info["encrypted"] == json!(true) { "encrypted" } else { "integrity-only" },
                info["merkle_root"].as_str().unwrap_or_default()
            )
        });
        Ok(())
    })
}

async fn start_or_resume(
    ctx: &Ctx,
    client: &Client,
    a: &PutArgs,
    name: &str,
    identity: &UploadState,
    state_file: &Path,
) -> Result<Ticket> {
    if let Ok(text) = std::fs::read_to_string(state_file) {
        if let Ok(saved) = serde_json::from_str::<UploadState>(&text) {
            let same_file = UploadState { object_id: String::new(), ..saved };
            let id = serde_json::from_str::<UploadState>(&text).map(|s| s.object_id).unwrap_or_default();
            if seqshield_store::names::check_id(&id).is_err() {
                let _ = std::fs::remove_file(state_file);
                return Box::pin(start_or_resume(ctx, client, a, name, identity, state_file)).await;
            }
            if &same_file == identity {
                let path = format!("/api/v1/objects/{id}/upload");
                match client.post_json::<Value, Ticket>(&path, &json!({})).await {
                    Ok(t) => {
                        if !ctx.quiet {
                            eprintln!(
                                "resuming upload {id}: {} of {} parts already there",
                                t.received.len(),
                                t.object.part_count
                            );
                        }
                        return Ok(t);
                    }
                    Err(e) if remote_code(&e).is_some_and(|c| matches!(c, "not_found" | "wrong_state")) => {}
                    Err(e) => return Err(e),
                }
            } else {
                // The file changed since: that upload can never complete.
                if let Ok(url) = client.url(&format!("/api/v1/objects/{id}")) {
                    let _ = client.send(client.http().delete(url)).await;
                }
            }
        }
        let _ = std::fs::remove_file(state_file);
    }
    let body = json!({
        "name": name,
        "dataset": a.dataset,
        "classification": a.classification,
        "size": identity.size,
        "content_type": a.content_type,
    });
    let t: Ticket = client.post_json("/api/v1/objects", &body).await?;
    let state = UploadState { object_id: t.object.id.clone(), ..clone_state(identity) };
    write_atomic(state_file, &serde_json::to_vec(&state)?)?;
    Ok(t)
}

fn clone_state(s: &UploadState) -> UploadState {
    UploadState {
        server: s.server.clone(),
        path: s.path.clone(),
        size: s.size,
        mtime_ns: s.mtime_ns,
        dev: s.dev,
        ino: s.ino,
        object_id: s.object_id.clone(),
    }
}

/// Seals part `part` of `file` into `out`; returns its subtree root.
fn seal_part(file: &File, codec: &PartCodec, g: &Geometry, part: u64, out: &mut Vec<u8>) -> Result<[u8; 32]> {
    let len = usize::try_from(g.part_plaintext_len(part))?;
    let mut pt = vec![0u8; len];
    file.read_exact_at(&mut pt, g.part_offset(part))
        .with_context(|| format!("cannot read part {part} of the file (did it shrink?)"))?;
    out.clear();
    let (first, _) = g.part_segments_of(part);
    let leaves = codec.seal_part(first, g.segments(), &pt, out).context("cannot seal the part")?;
    Ok(merkle_root(&leaves))
}

async fn upload(ctx: &Ctx, client: &Client, file: &Path, ticket: &Ticket, parallel: usize) -> Result<Value> {
    let opened = Arc::new(ticket.open()?);
    let g = opened.object.geometry();
    let fh = Arc::new(File::open(file).with_context(|| format!("cannot read {}", file.display()))?);
    if fh.metadata()?.len() != g.size {
        bail!("{} changed size since the upload started", file.display());
    }
    let received: BTreeSet<u64> = ticket.received.iter().copied().collect();
    let missing: Vec<u64> = (0..g.parts()).filter(|p| !received.contains(p)).collect();
    let done_bytes: u64 = received.iter().map(|&p| g.part_plaintext_len(p)).sum();
    let pb = progress(ctx, g.size, "put");
    pb.set_position(done_bytes);
    let roots: Arc<std::sync::Mutex<Vec<Option<[u8; 32]>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; usize::try_from(g.parts())?]));
    // Roots of parts sent earlier: sealed again here (deterministic nonces),
    // so the root we declare at commit is our own, not the gateway's.
    for &part in &received {
        let (fh, o) = (fh.clone(), opened.clone());
        let r = tokio::task::spawn_blocking(move || seal_part(&fh, &o.codec, &g, part, &mut Vec::new())).await??;
        roots.lock().expect("roots")[part as usize] = Some(r);
    }
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let missing = Arc::new(missing);
    let mut workers = Vec::new();
    for _ in 0..parallel.min(missing.len().max(1)) {
        let (client, fh, o, next, missing, roots, pb, stop) = (
            client.clone(),
            fh.clone(),
            opened.clone(),
            next.clone(),
            missing.clone(),
            roots.clone(),
            pb.clone(),
            stop.clone(),
        );
        let id = opened.object.id.clone();
        workers.push(tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&part) = missing.get(i) else { return Ok::<(), anyhow::Error>(()) };
                let (fh2, o2) = (fh.clone(), o.clone());
                let (root, wire) = tokio::task::spawn_blocking(move || {
                    let r = seal_part(&fh2, &o2.codec, &g, part, &mut buf);
                    r.map(|r| (r, buf))
                })
                .await??;
                let wire = bytes::Bytes::from(wire);
                if let Err(e) = send_part(&client, &id, part, &root, wire.clone()).await {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                buf = Vec::from(wire);
                roots.lock().expect("roots")[part as usize] = Some(root);
                pb.inc(g.part_plaintext_len(part));
            }
        }));
    }
    if let Some(e) = first_error(workers).await {
        pb.abandon();
        if remote_code(&e) == Some("no_space") {
            return Err(e);
        }
        return Err(e.context("the upload stopped; run the same command again to resume"));
    }
    pb.finish_and_clear();
    let roots: Vec<[u8; 32]> = roots.lock().expect("roots").iter().map(|r| r.expect("every part sealed")).collect();
    let root = combine_part_roots(&roots);
    let info: Value = client
        .post_json(
            &format!("/api/v1/objects/{}/commit", opened.object.id),
            &json!({ "merkle_root": hex::encode(root) }),
        )
        .await?;
    Ok(info)
}

/// Waits for every worker; the error that explains the failure best: a
/// full store over the refusals it causes in the other workers, else the
/// first.
/// Stores `file` as a new object in one go (no resume state: for callers
/// that own the file's whole life, like the worker); returns its info.
pub(crate) async fn put_file(
    ctx: &Ctx,
    client: &Client,
    file: &Path,
    name: &str,
    dataset: &str,
    classification: &str,
) -> Result<Value> {
    let size = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    let body = json!({"name": name, "dataset": dataset, "classification": classification, "size": size});
    let t: Ticket = client.post_json("/api/v1/objects", &body).await?;
    upload(ctx, client, file, &t, 4).await
}

async fn first_error(workers: Vec<tokio::task::JoinHandle<Result<()>>>) -> Option<anyhow::Error> {
    let mut errors = Vec::new();
    for w in workers {
        if let Err(e) = w.await.map_err(anyhow::Error::from).and_then(|r| r) {
            errors.push(e);
        }
    }
    let i = errors.iter().position(|e| remote_code(e) == Some("no_space")).unwrap_or(0);
    (!errors.is_empty()).then(|| errors.swap_remove(i))
}

async fn send_part(client: &Client, id: &str, part: u64, root: &[u8; 32], wire: bytes::Bytes) -> Result<()> {
    let url = client.url(&format!("/api/v1/objects/{id}/parts/{part}"))?;
    let mut tries = 0;
    loop {
        tries += 1;
        let req = client
            .auth(client.http().put(url.clone()))
            .header("seqshield-part-root", hex::encode(root))
            .header("content-type", "application/octet-stream")
            .body(wire.clone());
        match req.send().await {
            Ok(res) => {
                return match client.check(res).await {
                    Ok(_) => Ok(()),
                    // A retry after a lost response: the part is there.
                    Err(e) if tries > 1 && remote_code(&e) == Some("part_duplicate") => Ok(()),
                    Err(e) => Err(e.context(format!("part {part} was refused"))),
                };
            }
            Err(e) if tries < PART_TRIES && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                tokio::time::sleep(std::time::Duration::from_millis(200 << tries)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot send part {part}"))),
        }
    }
}

// ---- get -------------------------------------------------------------------

/// `seqshield get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Object id.
    #[arg(value_name = "ID")]
    id: String,
    /// Output file (written as FILE.seqshield-partial, renamed when complete and verified).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Parts in flight at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
}

#[derive(Serialize, Deserialize)]
struct DownloadState {
    object_id: String,
    merkle_root: String,
    done: BTreeSet<u64>,
}

fn partial_paths(out: &Path) -> (PathBuf, PathBuf) {
    let mut p = out.as_os_str().to_owned();
    p.push(".seqshield-partial");
    let data = PathBuf::from(&p);
    p.push(".json");
    (data, PathBuf::from(p))
}

pub fn get(ctx: &Ctx, a: GetArgs) -> Result<()> {
    seqshield_store::names::check_id(&a.id).map_err(|e| bad_input(e.to_string()))?;
    if a.output.exists() && !a.force {
        return Err(bad_input(format!("{} exists; use --force to replace it", a.output.display())));
    }
    client::block_on(async {
        let client = a.gateway.connect().await?;
        let (size, root_hex) = fetch(ctx, &client, &a.id, &a.output, usize::from(a.parallel)).await?;
        ctx.report(json!({"ok": true, "id": a.id, "output": a.output, "size": size, "merkle_root": root_hex}), || {
            format!("{}: {size} bytes, every part verified, Merkle root {root_hex}", a.output.display())
        });
        Ok(())
    })
}

/// Downloads object `id` into `output` (through `OUTPUT.seqshield-partial`
/// and a list of verified parts, so a second run resumes), checking the
/// trailer MAC, the part roots against the trailer's Merkle root, and each
/// part's tags and root. Returns the size and the hex Merkle root.
pub(crate) async fn fetch(
    ctx: &Ctx,
    client: &Client,
    id: &str,
    output: &Path,
    parallel: usize,
) -> Result<(u64, String)> {
    {
        let ticket: Ticket = client.post_json(&format!("/api/v1/objects/{id}/read"), &json!({})).await?;
        let opened = Arc::new(ticket.open()?);
        let g = opened.object.geometry();
        let trailer = B64.decode(ticket.trailer.as_deref().unwrap_or_default()).context("malformed trailer")?;
        let trailer = opened.codec.open_trailer(&trailer).map_err(|e| {
            integrity("trailer_auth_failed", format!("the object's trailer does not authenticate: {e}"))
        })?;
        let roots: Vec<[u8; 32]> = ticket.part_roots.iter().map(|r| parse_root(r)).collect::<Result<_>>()?;
        if roots.len() as u64 != g.parts() || combine_part_roots(&roots) != trailer.merkle_root {
            return Err(integrity(
                "root_mismatch",
                "the part roots do not combine to the trailer's authenticated Merkle root",
            ));
        }
        if trailer.plaintext_len != g.size || trailer.segment_count != g.segments() {
            return Err(integrity("trailer_mismatch", "the trailer's length disagrees with the object's metadata"));
        }
        let root_hex = hex::encode(trailer.merkle_root);
        let (data_path, state_path) = partial_paths(output);
        let mut state = match std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<DownloadState>(&b).ok())
        {
            Some(s) if s.object_id == id && s.merkle_root == root_hex && data_path.exists() => {
                if !ctx.quiet {
                    eprintln!("resuming download of {}: {} of {} parts already verified", id, s.done.len(), g.parts());
                }
                s
            }
            _ => DownloadState { object_id: id.to_owned(), merkle_root: root_hex.clone(), done: BTreeSet::new() },
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&data_path)
            .with_context(|| format!("cannot write {}", data_path.display()))?;
        if state.done.is_empty() {
            out.set_len(0)?;
        }
        out.set_len(g.size)?;
        let out = Arc::new(out);
        let pb = progress(ctx, g.size, "get");
        pb.set_position(state.done.iter().map(|&p| g.part_plaintext_len(p)).sum());
        let todo: Arc<Vec<u64>> = Arc::new((0..g.parts()).filter(|p| !state.done.contains(p)).collect());
        let next = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let roots = Arc::new(roots);
        let mut workers = Vec::new();
        for _ in 0..parallel.min(todo.len().max(1)) {
            let (client, o, out, todo, next, tx, roots, pb) = (
                client.clone(),
                opened.clone(),
                out.clone(),
                todo.clone(),
                next.clone(),
                tx.clone(),
                roots.clone(),
                pb.clone(),
            );
            let id = id.to_owned();
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&part) = todo.get(i) else { return Ok::<(), anyhow::Error>(()) };
                    let res = client
                        .auth(client.http().get(client.url(&format!("/api/v1/objects/{id}/parts/{part}"))?))
                        .send()
                        .await
                        .with_context(|| format!("cannot fetch part {part}"))?;
                    let wire =
                        client.check(res).await?.bytes().await.with_context(|| format!("part {part} was cut off"))?;
                    let (o2, out2, expect) = (o.clone(), out.clone(), roots[part as usize]);
                    tokio::task::spawn_blocking(move || -> Result<()> {
                        let (first, _) = g.part_segments_of(part);
                        let mut pt = Vec::with_capacity(wire.len());
                        let leaves = o2
                            .codec
                            .open_part(first, g.segments(), &wire, &mut pt)
                            .map_err(|e| integrity("part_rejected", format!("part {part} failed verification: {e}")))?;
                        if merkle_root(&leaves) != expect {
                            return Err(integrity(
                                "part_root_mismatch",
                                format!("part {part} does not match its Merkle subtree root"),
                            ));
                        }
                        out2.write_all_at(&pt, g.part_offset(part))
                            .with_context(|| format!("cannot write part {part}"))?;
                        Ok(())
                    })
                    .await??;
                    pb.inc(g.part_plaintext_len(part));
                    let _ = tx.send(part);
                }
            }));
        }
        drop(tx);
        while let Some(part) = rx.recv().await {
            state.done.insert(part);
            write_atomic(&state_path, &serde_json::to_vec(&state)?)?;
        }
        if let Some(e) = first_error(workers).await {
            pb.abandon();
            return Err(e.context("the download stopped; run the same command again to resume"));
        }
        pb.finish_and_clear();
        out.sync_all()?;
        std::fs::rename(&data_path, output).with_context(|| format!("cannot create {}", output.display()))?;
        let _ = std::fs::remove_file(&state_path);
        Ok((g.size, root_hex))
    }
}

// ---- ls, rm, verify, sync --------------------------------------------------

/// `seqshield ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Only this dataset.
    #[arg(long, value_name = "D")]
    dataset: Option<String>,
}

pub fn ls(ctx: &Ctx, a: LsArgs) -> Result<()> {
    client::block_on(async {
        let client = a.gateway.connect().await?;
        let path = match &a.dataset {
            Some(d) => {
                seqshield_store::names::check_dataset(d).map_err(|e| bad_input(e.to_string()))?;
                format!("/api/v1/objects?dataset={d}")
            }
            None => "/api/v1/objects".to_owned(),
        };
        let v: Value = client.get_json(&path).await?;
        let objects: Vec<ObjectJson> = serde_json::from_value(v["objects"].clone()).context("malformed listing")?;
        ctx.report(v.clone(), || {
            let mut s = format!(
                "{:<36}  {:<10}  {:<14}  {:>14}  {:<9}  {:<16}  NAME\n",
                "ID", "CLASS", "DATASET", "SIZE", "STATE", "ROOT"
            );
            for o in &objects {
                let root = o.merkle_root.as_deref().map_or("-", |r| &r[..16.min(r.len())]).to_owned();
                let class = format!("{}{}", o.classification, if o.encrypted { "" } else { "*" });
                s.push_str(&format!(
                    "{:<36}  {:<10}  {:<14}  {:>14}  {:<9}  {:<16}  {}\n",
                    o.id, class, o.dataset, o.size, o.state, root, o.name
                ));
            }
            s.push_str(&format!("{} objects (* = stored in the clear with integrity tags)", objects.len()));
            s
        });
        Ok(())
    })
}

/// `seqshield rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Object id.
    #[arg(value_name = "ID")]
    id: String,
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> Result<()> {
    seqshield_store::names::check_id(&a.id).map_err(|e| bad_input(e.to_string()))?;
    client::block_on(async {
        let client = a.gateway.connect().await?;
        let url = client.url(&format!("/api/v1/objects/{}", a.id))?;
        let v: Value = client.send(client.http().delete(url)).await?.json().await.map_err(client::transport_error)?;
        ctx.report(v.clone(), || {
            format!(
                "{}: crypto-shredded ({} wrapped keys destroyed, {} blobs deleted)",
                a.id, v["wrapped_keys_destroyed"], v["blobs_deleted"]
            )
        });
        Ok(())
    })
}

/// `seqshield verify ID`: the gateway re-checks the stored object.
pub fn verify_remote(ctx: &Ctx, gateway: &GatewayArgs, id: &str) -> Result<()> {
    client::block_on(async {
        let client = gateway.connect().await?;
        // No JSON timeout: the gateway re-reads the whole object.
        let url = client.url(&format!("/api/v1/objects/{id}/verify"))?;
        let v: Value = client
            .send(client.http().post(url).json(&json!({})))
            .await?
            .json()
            .await
            .map_err(client::transport_error)?;
        if v["ok"] != json!(true) {
            let problems: Vec<String> = serde_json::from_value(v["problems"].clone()).unwrap_or_default();
            let mut fields = serde_json::Map::new();
            fields.insert("report".into(), v.clone());
            return Err(anyhow::Error::new(crate::exit::Integrity {
                code: "object_damaged",
                message: format!("{id} failed verification: {}", problems.join("; ")),
                fields,
            }));
        }
        ctx.report(v.clone(), || {
            format!(
                "OK: {id}: {} parts, {} segments, {} bytes re-read and authenticated, Merkle root {}",
                v["parts"],
                v["segments"],
                v["bytes"],
                v["merkle_root"].as_str().unwrap_or_default()
            )
        });
        Ok(())
    })
}

/// `seqshield sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// The replica store to copy to, as named in the gateway's `[store.replicas]`.
    #[arg(long, value_name = "NAME")]
    to: String,
}

pub fn sync(ctx: &Ctx, a: SyncArgs) -> Result<()> {
    client::block_on(async {
        let client = a.gateway.connect().await?;
        let url = client.url("/api/v1/sync")?;
        let mut res = client.send(client.http().post(url).json(&json!({ "to": a.to }))).await?;
        let pb = progress(ctx, 0, &format!("sync → {}", a.to));
        let mut buf = Vec::new();
        let mut done_before = 0u64;
        let mut summary = None;
        let mut failures = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(client::transport_error)? {
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let ev: Value = serde_json::from_slice(&line).context("malformed progress line")?;
                match ev["event"].as_str() {
                    Some("plan") => pb.set_length(ev["bytes"].as_u64().unwrap_or(0)),
                    Some("progress") => {
                        let (d, t) = (ev["done"].as_u64().unwrap_or(0), ev["total"].as_u64().unwrap_or(0));
                        pb.set_position(done_before + d);
                        if d == t {
                            done_before += t;
                        }
                    }
                    Some("copied") | Some("skipped") => {
                        if ctx.json {
                            println!("{ev}");
                        } else if !ctx.quiet {
                            pb.suspend(|| match ev["event"].as_str() {
                                Some("copied") => eprintln!(
                                    "copied {} (root {} matches end to end{})",
                                    ev["id"].as_str().unwrap_or_default(),
                                    ev["merkle_root"].as_str().unwrap_or_default(),
                                    if ev["rewrapped"] == json!(true) {
                                        ", re-wrapped for the replica's KEK"
                                    } else {
                                        ""
                                    }
                                ),
                                _ => eprintln!(
                                    "kept {}: {}",
                                    ev["id"].as_str().unwrap_or_default(),
                                    ev["reason"].as_str().unwrap_or_default()
                                ),
                            });
                        }
                    }
                    Some("failed") => failures.push(ev),
                    Some("summary") => summary = Some(ev),
                    Some("error") => {
                        pb.abandon();
                        let code = ev["error"].as_str().unwrap_or("sync_failed");
                        let msg = ev["error_description"].as_str().unwrap_or("the sync was refused");
                        return Err(crate::exit::remote(code, format!("the gateway refused the sync: {msg}")));
                    }
                    _ => {}
                }
            }
        }
        pb.finish_and_clear();
        let summary = summary.ok_or_else(|| anyhow!("the gateway ended the sync without a summary"))?;
        if !failures.is_empty() {
            bail!(
                "{} objects failed to sync: {}",
                failures.len(),
                failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ")
            );
        }
        ctx.report(summary.clone(), || {
            format!(
                "sync to {}: {} copied ({} bytes), {} already there, {} kept by policy",
                a.to, summary["copied"], summary["bytes"], summary["already"], summary["skipped"]
            )
        });
        Ok(())
    })
}
