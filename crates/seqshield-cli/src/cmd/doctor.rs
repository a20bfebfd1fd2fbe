//! `seqshield doctor`: every setting or default of a gateway that is weaker
//! than production, each with an id, a severity, what it is and how to fix
//! it. [`findings`] is the one check: `doctor` prints its result and
//! `seqshield serve` logs each finding at start through
//! `seqshield_server::logging::weak_default`.
//!
//! Nothing is created or changed: no KEK, certificate, database or
//! directory. On a data directory that does not exist yet, the findings say
//! what `serve` would generate there. The exit code is 0 whenever the checks
//! ran (findings are not errors) and 2 when the configuration is invalid.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use seqshield_auth::policy::{Policy, ScopePattern};
use seqshield_keys::file::PRIVATE_KEY_FILE;
use seqshield_server::config::Config;
use serde::Serialize;
use serde_json::json;

use super::config::{source_json, source_text, SourceArgs};
use super::serve::{EMBEDDED_PASSPHRASE_FILE, KEK_DIR};
use crate::kek::KekArgs;
use crate::Ctx;

/// The rule of the embedded access policy whose scopes are the
/// administrative ones (never delegated by token exchange).
const ADMIN_SCOPES_RULE: &str = "exchange-never-delegates-admin";
/// Variable holding the file KEK's passphrase (as `serve` reads it).
const ENV_PASSPHRASE: &str = "SEQSHIELD_PASSPHRASE";

/// `seqshield doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Where the settings come from, as for `serve`.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The KEK, as `serve` takes it: a file KEK (default DIR/kek) or a PKCS#11 token.
    #[command(flatten)]
    pub kek: KekArgs,
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Weaker than production: fix before real data.
    Warn,
    /// Worth knowing; may be right for this site.
    Info,
}

/// One setting or default weaker than production.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, also the `weak_default` field of `serve`'s log line.
    pub id: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// What it is.
    pub summary: String,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    fn new(id: &'static str, severity: Severity, summary: String, fix: impl Into<String>) -> Self {
        Self { id, severity, summary, fix: fix.into() }
    }

    /// The finding as one log message.
    pub fn message(&self) -> String {
        format!("{}. Fix: {}", self.summary, self.fix)
    }
}

/// Runs `seqshield doctor`.
pub fn run(ctx: &Ctx, a: DoctorArgs) -> Result<()> {
    let cfg = super::config::load(&a.source.data_dir, a.source.config.as_deref(), a.source.listen)?;
    let found = findings(&cfg, &a.source.data_dir, &a.kek);
    ctx.report(
        json!({
            "ok": true,
            "data_dir": a.source.data_dir,
            "config_source": source_json(&cfg),
            "findings": found,
        }),
        || {
            let mut s = format!(
                "{} finding{} for {} (configuration: {})",
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                a.source.data_dir.display(),
                source_text(&cfg)
            );
            for f in &found {
                let sev = match f.severity {
                    Severity::Warn => "warn",
                    Severity::Info => "info",
                };
                s.push_str(&format!("\n{sev:<5} {}: {}\n      fix: {}", f.id, f.summary, f.fix));
            }
            s
        },
    );
    Ok(())
}

/// Every setting or default of the gateway in `data_dir` with settings
/// `cfg` and KEK `kek` that is weaker than production. Reads only.
pub fn findings(cfg: &Config, data_dir: &Path, kek: &KekArgs) -> Vec<Finding> {
    let mut out = Vec::new();
    kek_findings(data_dir, kek, explicit_passphrase(kek), &mut out);
    certificate(cfg, data_dir, &mut out);
    listen(cfg, &mut out);
    emulators(cfg, &mut out);
    admins(data_dir, &mut out);
    sandbox(&seqshield_sandbox::check_features(), &mut out);
    executor(cfg, on_path("sbatch"), &mut out);
    if !cfg.jobs.strict {
        out.push(Finding::new(
            "jobs_not_strict",
            Severity::Info,
            "jobs.strict is off: task members TES does not define are ignored instead of refused".into(),
            "set jobs.strict = true (the default)",
        ));
    }
    out
}

/// Whether the operator gave the file KEK's passphrase (`--passphrase-file`
/// or a non-empty `$SEQSHIELD_PASSPHRASE`), as `serve` decides it.
fn explicit_passphrase(kek: &KekArgs) -> bool {
    kek.passphrase_file.is_some() || std::env::var_os(ENV_PASSPHRASE).is_some_and(|v| !v.is_empty())
}

/// The file KEK, and the embedded passphrase stored beside it.
fn kek_findings(data_dir: &Path, kek: &KekArgs, explicit_passphrase: bool, out: &mut Vec<Finding>) {
    if kek.pkcs11_module.is_some() {
        return;
    }
    let dir = kek.kek_dir.clone().unwrap_or_else(|| data_dir.join(KEK_DIR));
    let exists = dir.join(PRIVATE_KEY_FILE).exists();
    let not_yet = if exists { "" } else { " (not there yet: serve generates it on first start)" };
    out.push(Finding::new(
        "file_kek",
        Severity::Warn,
        format!("the KEK is an RSA-4096 key file in {}{not_yet}; controlled data is refused on it", dir.display()),
        "keep the KEK in a PKCS#11 HSM: --pkcs11-module PATH --token-label L --pin-file F \
         (seqshield keys init creates it inside the token)",
    ));
    if explicit_passphrase {
        return;
    }
    let file = dir.join(EMBEDDED_PASSPHRASE_FILE);
    if file.exists() || !exists {
        let not_yet = if file.exists() { "" } else { " (not there yet: serve generates it with the KEK)" };
        out.push(Finding::new(
            "embedded_passphrase",
            Severity::Warn,
            format!(
                "the KEK passphrase is the EMBEDDED DEFAULT, stored next to the key in {}{not_yet}: anyone who \
                 can read the data directory can unwrap every data key",
                file.display()
            ),
            "give your own passphrase with --passphrase-file or $SEQSHIELD_PASSPHRASE (re-encrypt kek.pem under \
             it and delete the passphrase file, see docs/operator.md), or use a PKCS#11 HSM",
        ));
    }
}

fn certificate(cfg: &Config, data_dir: &Path, out: &mut Vec<Finding>) {
    if cfg.server.tls_cert.is_some() {
        return;
    }
    let dir = data_dir.join(seqshield_server::cert::TLS_DIR);
    let cert = dir.join(seqshield_server::cert::CERT_FILE);
    let summary = if cert.exists() {
        format!("the gateway serves the SELF-SIGNED certificate {}: clients must pin it", cert.display())
    } else {
        format!(
            "no certificate is configured: serve generates a SELF-SIGNED one in {} on first start, which clients \
             must pin",
            dir.display()
        )
    };
    out.push(Finding::new(
        "self_signed_certificate",
        Severity::Warn,
        summary,
        "set server.tls_cert and server.tls_key to a certificate chain and key from your CA",
    ));
}

fn listen(cfg: &Config, out: &mut Vec<Finding>) {
    let addr = cfg.server.listen;
    if addr.ip().is_loopback() || !cfg.server.public_hosts.is_empty() {
        return;
    }
    out.push(Finding::new(
        "public_listen_without_hosts",
        Severity::Warn,
        format!(
            "the gateway listens on {addr}, reachable from other hosts, but server.public_hosts is empty: the \
             issuer in every token and a generated certificate name only {} and loopback names, not the name \
             clients use",
            if addr.ip().is_unspecified() { "localhost".to_owned() } else { addr.ip().to_string() }
        ),
        "set server.public_hosts to the DNS names clients use (and auth.issuer behind a load balancer), \
         or listen on 127.0.0.1",
    ));
}

fn emulators(cfg: &Config, out: &mut Vec<Finding>) {
    let stores = std::iter::once(("the store backend".to_owned(), &cfg.store.backend))
        .chain(cfg.store.replicas.iter().map(|(name, r)| (format!("replica store {name}"), &r.backend)));
    for (what, backend) in stores {
        if backend.is_insecure() {
            out.push(Finding::new(
                "insecure_emulator",
                Severity::Warn,
                format!("{what} is {}: the emulator's public key over plain HTTP", backend.describe()),
                "never put real data there: use a real Azure account over https (insecure_emulator = false, \
                 access_key_file)",
            ));
        }
    }
}

/// The administrative scopes: those the embedded access policy never lets
/// token exchange delegate.
fn admin_patterns() -> Vec<ScopePattern> {
    Policy::embedded_default()
        .rules()
        .iter()
        .find(|r| r.id == ADMIN_SCOPES_RULE)
        .and_then(|r| r.when.scopes_any.clone())
        .unwrap_or_default()
}

/// Enabled users holding an administrative scope without a confirmed
/// TOTP authenticator, read from `DIR/auth.db` without changing it.
fn admins(data_dir: &Path, out: &mut Vec<Finding>) {
    let path = data_dir.join(seqshield_auth::store::DB_FILE);
    if !path.exists() {
        return;
    }
    let users = match seqshield_auth::store::Store::open_read_only(&path).and_then(|s| s.list_users()) {
        Ok(users) => users,
        Err(e) => {
            out.push(Finding::new(
                "auth_database_unreadable",
                Severity::Warn,
                format!("cannot check the users for MFA: {e}"),
                "make sure the auth database is readable by this user and written by this version of seqshield",
            ));
            return;
        }
    };
    let patterns = admin_patterns();
    for u in users.iter().filter(|u| !u.disabled && !u.totp_confirmed) {
        let admin: Vec<&str> = u.scopes.iter().filter(|s| patterns.iter().any(|p| p.matches(s))).collect();
        if admin.is_empty() {
            continue;
        }
        out.push(Finding::new(
            "admin_without_mfa",
            Severity::Warn,
            format!(
                "user {} holds administrative scopes ({}) but has no confirmed TOTP authenticator",
                u.name,
                admin.join(", ")
            ),
            format!(
                "have {} sign in once with a code from the authenticator enrolled by `seqshield user add` (the first \
                 good code confirms it), or take the administrative scopes away",
                u.name
            ),
        ));
    }
}

/// The sandbox's kernel features that this host lacks.
fn sandbox(features: &seqshield_sandbox::Features, out: &mut Vec<Finding>) {
    for f in features.features.iter().filter(|f| !f.ok) {
        let id = match f.name.as_str() {
            "user namespaces" => "sandbox_user_namespaces",
            "landlock" => "sandbox_landlock",
            "seccomp filters with user notification" => "sandbox_seccomp",
            "cgroups" => "sandbox_cgroups",
            "idmapped mounts" => "sandbox_idmapped_mounts",
            _ => "sandbox_kernel_feature",
        };
        let (severity, what) =
            if f.required { (Severity::Warn, "cannot run pipeline steps without") } else { (Severity::Info, "lacks") };
        out.push(Finding::new(id, severity, format!("the sandbox {what} {}: {}", f.name, f.detail), f.meaning.clone()));
    }
}

fn executor(cfg: &Config, slurm_available: bool, out: &mut Vec<Finding>) {
    if cfg.jobs.executor.kind == seqshield_jobs::executor::Kind::Local && slurm_available {
        out.push(Finding::new(
            "local_executor",
            Severity::Info,
            "jobs run as child processes on the gateway's own host although Slurm (sbatch) is available here".into(),
            "set jobs.executor.kind = \"slurm\" (SEQSHIELD_JOBS__EXECUTOR__KIND=slurm) with the partitions \
             placement maps to",
        ));
    }
}

/// Whether an executable `name` is in `$PATH`.
fn on_path(name: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).map(|d: PathBuf| d.join(name)).any(|p| is_executable(&p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek_args(dir: Option<&Path>) -> KekArgs {
        KekArgs {
            kek_dir: dir.map(Path::to_owned),
            passphrase_file: None,
            pkcs11_module: None,
            token_label: None,
            pin_file: None,
            key_label: "seqshield-kek".into(),
        }
    }

    fn ids(out: &[Finding]) -> Vec<&'static str> {
        out.iter().map(|f| f.id).collect()
    }

    #[test]
    fn admin_scopes_come_from_the_policy() {
        let p = admin_patterns();
        for s in ["data:admin", "jobs:admin", "admin", "users:add"] {
            assert!(p.iter().any(|p| p.matches(s)), "{s} is administrative");
        }
        for s in ["data:read", "jobs:submit", "openid"] {
            assert!(!p.iter().any(|p| p.matches(s)), "{s} is not administrative");
        }
    }

    #[test]
    fn file_kek_and_embedded_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        kek_findings(dir.path(), &kek_args(None), false, &mut out);
        assert_eq!(ids(&out), ["file_kek", "embedded_passphrase"]);
        assert!(out[0].summary.contains("not there yet"), "{}", out[0].summary);
        // An operator's passphrase: only the file KEK remains.
        out.clear();
        kek_findings(dir.path(), &kek_args(None), true, &mut out);
        assert_eq!(ids(&out), ["file_kek"]);
        // A KEK made with an operator passphrase (no passphrase file beside it).
        let kek = dir.path().join("k");
        std::fs::create_dir(&kek).unwrap();
        std::fs::write(kek.join(PRIVATE_KEY_FILE), "x").unwrap();
        out.clear();
        kek_findings(dir.path(), &kek_args(Some(&kek)), false, &mut out);
        assert_eq!(ids(&out), ["file_kek"]);
        // An HSM: nothing.
        out.clear();
        let hsm = KekArgs { pkcs11_module: Some("/m.so".into()), ..kek_args(None) };
        kek_findings(dir.path(), &hsm, false, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn listen_beyond_loopback_needs_public_hosts() {
        let mut cfg = Config::default();
        let mut out = Vec::new();
        listen(&cfg, &mut out);
        assert!(out.is_empty(), "loopback");
        cfg.server.listen = "0.0.0.0:8443".parse().unwrap();
        listen(&cfg, &mut out);
        assert_eq!(ids(&out), ["public_listen_without_hosts"]);
        out.clear();
        cfg.server.public_hosts = vec!["gw.example.org".into()];
        listen(&cfg, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn emulator_backends_and_replicas() {
        let cfg = Config::from_toml(
            "[store.replicas.burst.backend]\nkind = \"azure\"\naccount = \"devstoreaccount1\"\n\
             container = \"c\"\ninsecure_emulator = true\n",
        )
        .unwrap();
        let mut out = Vec::new();
        emulators(&cfg, &mut out);
        assert_eq!(ids(&out), ["insecure_emulator"]);
        assert!(out[0].summary.starts_with("replica store burst is Azure Blob"), "{}", out[0].summary);
    }

    #[test]
    fn missing_sandbox_features_are_listed_each() {
        let feature = |name: &str, ok, required| seqshield_sandbox::Feature {
            name: name.into(),
            ok,
            required,
            detail: "d".into(),
            meaning: "m".into(),
        };
        let f = seqshield_sandbox::Features {
            kernel: "6.1".into(),
            features: vec![
                feature("user namespaces", true, true),
                feature("landlock", false, true),
                feature("cgroups", false, false),
            ],
            landlock_abi: 0,
        };
        let mut out = Vec::new();
        sandbox(&f, &mut out);
        assert_eq!(ids(&out), ["sandbox_landlock", "sandbox_cgroups"]);
        assert_eq!(out[0].severity, Severity::Warn);
        assert_eq!(out[1].severity, Severity::Info);
    }

    #[test]
    fn local_executor_only_where_slurm_is() {
        let mut out = Vec::new();
        executor(&Config::default(), false, &mut out);
        assert!(out.is_empty());
        executor(&Config::default(), true, &mut out);
        assert_eq!(ids(&out), ["local_executor"]);
    }
}
