//! `seqshield serve`: the gateway (token service and API) behind strict
//! TLS 1.3.
//!
//! Start-up order: settings, KEK, socket and certificate, audit log (its
//! signing key, recovery, a signed head), token service; only then the
//! readiness line on stdout:
//!
//! ```text
//! listening on https://127.0.0.1:8443 (cert sha256 HEX, spki sha256 B64)
//! ```
//!
//! or, with `--json`, `{"listen":…,"url":…,"cert_sha256":…,"spki_sha256":…,"cert_path":…}`.
//! Warnings go to stderr. SIGINT or SIGTERM stops it gracefully, after a
//! last signed tree head.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use seqshield_keys::file::{FileKek, PRIVATE_KEY_FILE};
use seqshield_server::config::Config;
use seqshield_server::logging;
use seqshield_server::Gateway;
use zeroize::Zeroizing;

use crate::io::read_secret_file;
use crate::kek::{KekArgs, LoadedKek};
use crate::Ctx;

/// Directory of the default file KEK, under the data directory.
pub const KEK_DIR: &str = "kek";
/// File holding the generated passphrase of the default file KEK.
pub const EMBEDDED_PASSPHRASE_FILE: &str = "passphrase";
/// Random bytes in a generated passphrase (hex-encoded: 64 characters).
const EMBEDDED_PASSPHRASE_BYTES: usize = 32;
/// The audit log directory, under the data directory.
pub const AUDIT_DIR: &str = "audit";
/// The file key that signs the audit log's tree heads (when the KEK is a
/// file KEK), in the audit directory, encrypted with the KEK's passphrase.
const STH_KEY_FILE: &str = "sth-key.pem";

/// `seqshield serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Data directory: certificate, KEK, token database, audit log (created 0700 if missing).
    #[arg(long, value_name = "DIR", env = "SEQSHIELD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address and port to listen on; port 0 picks a free one [default: server.listen, else 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Configuration file [default: DIR/seqshield.toml if present, else built-in defaults].
    #[arg(long, value_name = "FILE", env = "SEQSHIELD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The KEK: a file KEK (default DIR/kek, created on first start) or a PKCS#11 token.
    #[command(flatten)]
    pub kek: KekArgs,
}

/// Runs `seqshield serve` until SIGINT or SIGTERM.
pub fn run(ctx: &Ctx, a: ServeArgs) -> Result<()> {
    logging::init(ctx.json);
    create_private_dir(&a.data_dir)?;
    let cfg = super::config::load(&a.data_dir, a.config.as_deref(), a.listen)?;
    // Every setting or default weaker than production, as `seqshield doctor` lists them.
    for f in super::doctor::findings(&cfg, &a.data_dir, &a.kek) {
        logging::weak_default(f.id, &f.message());
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(serve(ctx, &a, cfg))
}

async fn serve(ctx: &Ctx, a: &ServeArgs, mut cfg: Config) -> Result<()> {
    let (kek, pass) = open_kek(a)?;
    let gateway = Gateway::bind(&cfg.server, &a.data_dir)?;
    if cfg.auth.issuer.is_empty() {
        cfg.auth.issuer = gateway.public_url();
    }
    let (audit, heads) = open_audit(a, pass.as_ref())?;
    super::gpu::start_monitor(&cfg.gpu, audit.clone())?;
    let svc = seqshield_auth::service::AuthService::open(
        cfg.auth.clone(),
        &a.data_dir,
        kek.as_kek(),
        audit.clone(),
        Arc::new(seqshield_auth::SystemClock),
    )
    .context("cannot start the token service")?;
    // The KEK stays loaded for signing-key rotation and the store's data keys.
    let kek = Arc::new(kek);
    let store = open_store(&cfg, &a.data_dir, kek.clone(), audit.clone()).await?;
    tokio::spawn(maintenance(svc.clone(), kek.clone(), store.clone()));
    let max_part = max_part_bytes(&cfg.store);
    let jobs = open_jobs(&cfg, &a.data_dir, &svc, &store, audit.clone(), &gateway)?;
    jobs.start();
    let annotate = open_annotate(&cfg, &a.data_dir, &kek, audit.clone())?;
    let routes = seqshield_auth::http::router(svc.clone())
        .merge(seqshield_server::annotate::router(annotate).layer(axum::Extension(svc.clone())))
        .merge(seqshield_server::data::router(store, max_part).layer(axum::Extension(svc.clone())))
        .merge(seqshield_server::jobs::router(jobs).layer(axum::Extension(svc)))
        .merge(seqshield_server::openapi::router());
    let scrape = seqshield_server::metrics::ScrapeToken::load_or_create(&a.data_dir)?;
    let ops = seqshield_server::Operations::new().audit(audit.clone()).scrape_token(scrape);
    // Registered before the ready line: a supervisor may signal at once.
    let shutdown = seqshield_server::shutdown_signal().context("cannot install the SIGINT/SIGTERM handlers")?;
    announce(ctx, &gateway)?;
    let served = gateway.with_operations(ops).serve(routes, shutdown).await;
    // A last signed head over everything the gateway logged.
    if let Some(e) = tokio::task::spawn_blocking(move || heads.stop()).await.ok().flatten() {
        logging::warn(&format!("the last signed tree head failed: {e}"));
    }
    served?;
    logging::notice("stopped");
    Ok(())
}

/// Loads the annotation service: the configured genomes and, when a model
/// bundle is configured (or `DATA/annotate/model.bundle` exists), the model,
/// verified against the trusted signing key and decrypted in memory, with
/// its evidence index. A bundle that fails any check stops the start.
fn open_annotate(
    cfg: &Config,
    data_dir: &Path,
    kek: &LoadedKek,
    audit: Arc<dyn seqshield_auth::audit::AuditSink>,
) -> Result<Arc<seqshield_server::annotate::AnnotateState>> {
    use seqshield_annotate::bundle::SignedBundle;
    use seqshield_annotate::genome::Genome;
    use seqshield_annotate::service::{Annotator, Evidence};
    let c = &cfg.annotate;
    let mut genomes = Vec::new();
    for g in &c.genomes {
        let genome = match (&g.genbank, &g.gff3, &g.fasta) {
            (Some(gb), None, None) => Genome::from_genbank_path(gb)
                .with_context(|| format!("annotate genome {:?}: cannot load {}", g.name, gb.display()))?,
            (None, Some(gff), Some(fa)) => {
                let open = |p: &Path| std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()));
                Genome::from_gff3_fasta(std::io::BufReader::new(open(gff)?), std::io::BufReader::new(open(fa)?))
                    .with_context(|| format!("annotate genome {:?}: cannot load {}", g.name, gff.display()))?
            }
            _ => anyhow::bail!("annotate genome {:?}: give either genbank, or gff3 and fasta", g.name),
        };
        genomes.push((g.name.clone(), genome));
    }
    let mut annotator = Annotator::new(genomes);
    let default_bundle = data_dir.join(super::model::ANNOTATE_DIR).join(super::model::BUNDLE_FILE);
    let bundle = c.model_bundle.clone().or_else(|| default_bundle.exists().then_some(default_bundle));
    if let Some(path) = bundle {
        let pk = c.model_signing_key.clone().unwrap_or_else(|| super::model::default_public_key(data_dir));
        let trusted = seqshield_keys::sign::VerifyingKey::read(&pk)
            .with_context(|| format!("cannot read the trusted model-signing key {}", pk.display()))?;
        let files = SignedBundle::read(&path)
            .and_then(|b| b.open(&trusted, kek.as_kek(), c.model_version.as_deref()))
            .with_context(|| format!("the model bundle {} was refused", path.display()))?;
        let index = data_dir.join(super::model::ANNOTATE_DIR).join("evidence-index.sqsh");
        let t = std::time::Instant::now();
        let evidence = Evidence::load(files, &c.pubmed, c.pubmed_limit, &index, kek.as_kek(), false)
            .context("cannot load the model and its evidence index")?;
        let m = &evidence.model;
        logging::notice(&format!(
            "annotation model {} version {} (signed by {}) verified and loaded in memory{}, {} abstracts indexed, in {:.1} s",
            m.name,
            m.version,
            m.signer,
            if m.locked { ", pages locked" } else { "" },
            m.abstracts,
            t.elapsed().as_secs_f64()
        ));
        if !seqshield_annotate::secmem::wiping_installed() {
            logging::warn("the wipe-on-free allocator is not installed: activations are not wiped after requests");
        }
        annotator = annotator.with_evidence(evidence);
    }
    if annotator.is_enabled() {
        logging::notice(&format!("annotation genomes: {}", annotator.genome_names().join(", ")));
    }
    Ok(Arc::new(seqshield_server::annotate::AnnotateState::new(Arc::new(annotator), c.limits.clone(), audit)))
}

/// Opens the audit log in `DATA/audit` with its tree-head signing key and
/// starts signing heads (every 1,000 entries or 10 s, and on stop). The key
/// sits beside the KEK: a file key `DATA/audit/sth-key.pem` under the KEK's
/// passphrase, or an EC P-384 key labelled `seqshield-audit-sth` in the
/// KEK's PKCS#11 token; either is created on first start.
fn open_audit(
    a: &ServeArgs,
    pass: Option<&Zeroizing<String>>,
) -> Result<(Arc<seqshield_audit::AuditLog>, seqshield_audit::HeadTimer)> {
    use seqshield_keys::sign::{FileSigner, Pkcs11Signer, Signer, DEFAULT_SIGNING_KEY_LABEL};
    let dir = a.data_dir.join(AUDIT_DIR);
    create_private_dir(&dir)?;
    let signer: Arc<dyn Signer> = if let Some(cfg) = a.kek.pkcs11_config()? {
        let cfg = cfg.with_key_label(DEFAULT_SIGNING_KEY_LABEL);
        match Pkcs11Signer::open(&cfg) {
            Ok(s) => Arc::new(s),
            Err(open_err) => {
                logging::notice("no audit signing key in the token: generating an EC P-384 key");
                Arc::new(Pkcs11Signer::init(&cfg).with_context(|| {
                    format!("cannot open ({open_err}) or create the audit signing key in the PKCS#11 token")
                })?)
            }
        }
    } else {
        let pass = pass.context("the file KEK's passphrase is needed for the audit signing key")?;
        let path = dir.join(STH_KEY_FILE);
        if path.exists() {
            Arc::new(
                FileSigner::open(&path, pass.as_bytes())
                    .with_context(|| format!("cannot open the audit signing key {}", path.display()))?,
            )
        } else {
            logging::notice(&format!("no audit signing key in {}: generating an EC P-384 key", dir.display()));
            Arc::new(
                FileSigner::init(&path, pass.as_bytes())
                    .with_context(|| format!("cannot create the audit signing key {}", path.display()))?,
            )
        }
    };
    let log = seqshield_audit::AuditLog::open_signed(&dir, signer, seqshield_audit::HeadPolicy::default())
        .with_context(|| format!("cannot open the audit log in {}", dir.display()))?;
    if let Some(torn) = log.torn_tail() {
        logging::warn(&format!(
            "the audit log ended in a torn record (a crash): {} bytes at offset {} saved to {} and cut",
            torn.len,
            torn.offset,
            torn.saved_as.display()
        ));
    }
    let log = Arc::new(log);
    let heads = log.start_head_timer()?;
    Ok((log, heads))
}

/// How often the token service does its upkeep (key rotation when due,
/// pruning, revocations from other processes).
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

async fn open_store(
    cfg: &Config,
    data_dir: &Path,
    kek: Arc<LoadedKek>,
    audit: Arc<seqshield_audit::AuditLog>,
) -> Result<Arc<seqshield_store::Store>> {
    let in_hsm = kek.in_hsm();
    let store = seqshield_store::Store::open(
        cfg.store.clone(),
        data_dir,
        kek,
        in_hsm,
        audit,
        Arc::new(seqshield_auth::SystemClock),
    )
    .await
    .context("cannot open the object store")?;
    Ok(Arc::new(store))
}

/// The OAuth client compute workers authenticate as to exchange manifests.
pub const WORKER_CLIENT: &str = "seqshield-worker";
/// Its secret, beside the job service's state (0600).
const WORKER_SECRET_FILE: &str = "jobs/worker.secret";

/// Opens the job service. Registers the workers' OAuth client on first
/// start, with a random secret in `DATA/jobs/worker.secret` that the
/// executors hand to the workers they start (the workers' only credential:
/// it can exchange a signed manifest and nothing else).
fn open_jobs(
    cfg: &Config,
    data_dir: &Path,
    svc: &Arc<seqshield_auth::service::AuthService>,
    store: &Arc<seqshield_store::Store>,
    audit: Arc<seqshield_audit::AuditLog>,
    gateway: &Gateway,
) -> Result<Arc<seqshield_jobs::JobService>> {
    use seqshield_auth::store::{NewClient, StoreError};
    let secret_file = data_dir.join(WORKER_SECRET_FILE);
    create_private_dir(&data_dir.join("jobs"))?;
    let registered = svc.store().client(WORKER_CLIENT).context("cannot read the auth database")?.is_some();
    if !registered || !secret_file.exists() {
        if registered {
            bail!(
                "the {WORKER_CLIENT} client is registered but its secret {} is gone: restore it from a backup of the data directory",
                secret_file.display()
            );
        }
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("no system randomness"))?;
        let secret = Zeroizing::new(hex::encode(raw));
        seqshield_jobs::service::write_private(&secret_file, secret.as_bytes()).map_err(|e| anyhow::anyhow!(e))?;
        let new = NewClient {
            id: WORKER_CLIENT.to_owned(),
            redirect_uris: Vec::new(),
            secret_hash: Some(
                seqshield_auth::password::hash_password(secret.as_bytes()).context("cannot hash the worker secret")?,
            ),
            jwks: None,
            scopes: seqshield_auth::ScopeSet::parse("data:read data:write jobs:report").expect("valid scopes"),
            clearance: seqshield_auth::Clearance::Controlled,
        };
        match svc.store().add_client(&new) {
            Ok(()) | Err(StoreError::Exists) => {}
            Err(e) => return Err(e).context("cannot register the workers' client"),
        }
        logging::notice(&format!("registered the {WORKER_CLIENT} client; its secret is in {}", secret_file.display()));
    }
    let launch = seqshield_jobs::executor::Launch {
        program: std::env::current_exe().context("cannot find the seqshield binary for workers")?,
        server: gateway.url(),
        ca_cert: gateway.certificate().cert_path.clone(),
        secret_file,
        images: cfg.jobs.images.as_ref().map(|p| if p.is_relative() { data_dir.join(p) } else { p.clone() }),
    };
    seqshield_jobs::JobService::open(cfg.jobs.clone(), data_dir, svc.clone(), store.clone(), audit, launch)
        .map_err(|e| anyhow::anyhow!("cannot open the job service: {e}"))
}

/// The largest part body the data routes read: one part of the configured
/// geometry, tags included.
fn max_part_bytes(s: &seqshield_store::StoreConfig) -> usize {
    let seg = u64::from(s.segment_size) + 16;
    usize::try_from(seg * u64::from(s.part_segments)).unwrap_or(usize::MAX)
}

async fn maintenance(
    svc: Arc<seqshield_auth::service::AuthService>,
    kek: Arc<LoadedKek>,
    store: Arc<seqshield_store::Store>,
) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.tick().await; // the first tick is immediate; open() just did the work
    loop {
        tick.tick().await;
        let (svc, kek) = (svc.clone(), kek.clone());
        match tokio::task::spawn_blocking(move || svc.maintain(kek.as_kek())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => logging::warn(&format!("token-service upkeep failed: {e:#}")),
            Err(e) => logging::warn(&format!("token-service upkeep stopped: {e}")),
        }
        if let Err(e) = store.recover().await {
            logging::warn(&format!("object-store upkeep failed: {e}"));
        }
    }
}

/// Prints the readiness line and flushes it: tests and supervisors wait for it.
fn announce(ctx: &Ctx, gateway: &Gateway) -> Result<()> {
    let c = gateway.certificate();
    let line = if ctx.json {
        serde_json::json!({
            "listen": gateway.local_addr().to_string(),
            "url": gateway.url(),
            "cert_sha256": c.cert_sha256,
            "spki_sha256": c.spki_sha256,
            "cert_path": c.cert_path,
        })
        .to_string()
    } else {
        format!("listening on {} (cert sha256 {}, spki sha256 {})", gateway.url(), c.cert_sha256, c.spki_sha256)
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).context("cannot write to stdout")
}

/// The KEK: PKCS#11 when `--pkcs11-module` is given, else the file KEK in
/// `--kek-dir` (default `DATA/kek`), created on first start, with its
/// passphrase (the audit signing key file uses it too).
fn open_kek(a: &ServeArgs) -> Result<(LoadedKek, Option<Zeroizing<String>>)> {
    open_kek_at(&a.data_dir, &a.kek)
}

/// The gateway's KEK as `serve` opens it (creating the default file KEK
/// under `data_dir` on first use), with its passphrase when it is a file KEK.
pub(crate) fn open_kek_at(data_dir: &Path, k: &KekArgs) -> Result<(LoadedKek, Option<Zeroizing<String>>)> {
    if k.pkcs11_module.is_some() {
        return Ok((k.load()?, None));
    }
    let dir = k.kek_dir.clone().unwrap_or_else(|| data_dir.join(KEK_DIR));
    let exists = dir.join(PRIVATE_KEY_FILE).exists();
    let pass = match explicit_passphrase(k)? {
        Some(p) => p,
        None => embedded_passphrase(&dir, exists)?,
    };
    let kek = if exists {
        FileKek::open(&dir, pass.as_bytes()).with_context(|| format!("cannot open the KEK in {}", dir.display()))?
    } else {
        logging::notice(&format!("no KEK in {}: generating an RSA-4096 file KEK", dir.display()));
        FileKek::init(&dir, pass.as_bytes()).with_context(|| format!("cannot create a KEK in {}", dir.display()))?
    };
    Ok((LoadedKek::File(kek), Some(pass)))
}

/// The operator's passphrase, if one was given (`--passphrase-file` or a
/// non-empty `$SEQSHIELD_PASSPHRASE`).
fn explicit_passphrase(k: &KekArgs) -> Result<Option<Zeroizing<String>>> {
    let from_env = std::env::var_os("SEQSHIELD_PASSPHRASE").is_some_and(|v| !v.is_empty());
    if k.passphrase_file.is_some() || from_env {
        k.passphrase().map(Some)
    } else {
        Ok(None)
    }
}

/// The embedded default: a random passphrase kept in `DIR/passphrase`
/// (0600), generated together with a new KEK. A KEK that exists without
/// that file was made with an operator's passphrase, which is then required.
fn embedded_passphrase(dir: &Path, kek_exists: bool) -> Result<Zeroizing<String>> {
    let path = dir.join(EMBEDDED_PASSPHRASE_FILE);
    if path.exists() {
        refuse_shared(&path)?;
        return read_secret_file(&path);
    }
    if kek_exists {
        bail!("the KEK in {} needs its passphrase: set SEQSHIELD_PASSPHRASE or pass --passphrase-file", dir.display());
    }
    create_private_dir(dir)?;
    let mut raw = Zeroizing::new([0u8; EMBEDDED_PASSPHRASE_BYTES]);
    aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let pass = Zeroizing::new(hex::encode(raw.as_ref()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".passphrase-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(pass.as_bytes()).and_then(|()| tmp.as_file().sync_all()).context("cannot write the passphrase")?;
    // Never replace a passphrase another process wrote meanwhile.
    tmp.persist_noclobber(&path).map_err(|e| e.error).with_context(|| format!("cannot create {}", path.display()))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(pass)
}

/// Refuses a secret file that group or others may read.
fn refuse_shared(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!("{} is readable by group or others (mode {:o}); chmod 600 it", path.display(), mode & 0o777);
        }
    }
    Ok(())
}

/// Creates `dir` (and parents) with mode 0700 if missing.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).with_context(|| format!("cannot create {}", dir.display()))
}
