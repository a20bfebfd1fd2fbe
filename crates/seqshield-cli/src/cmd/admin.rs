//! `seqshield user …` and `seqshield client …`: login accounts and OAuth
//! clients in a gateway's data directory (`DIR/auth.db`).
//!
//! Every input is checked before anything is written; bad input exits with
//! code 2 and leaves the data directory as it was.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seqshield_auth::store::{self, NewClient, NewUser, Store, StoreError};
use seqshield_auth::totp::{self, TotpSecret};
use seqshield_auth::{password, Clearance, ScopeSet};
use serde_json::json;

use crate::Ctx;

/// Shortest client secret accepted, in bytes (RFC 6749 §10.10: guessing
/// must be computationally infeasible; 32 random bytes is 256 bits).
pub const MIN_CLIENT_SECRET_LEN: usize = 32;
/// Issuer shown in authenticator apps.
const TOTP_ISSUER: &str = "seqshield";

/// `seqshield user`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a login account and print its TOTP enrolment URI (shown once).
    Add(UserAddArgs),
    /// List login accounts (no secrets).
    List(ListArgs),
}

/// `seqshield client`.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register an OAuth client: public (PKCE code flow) unless given a
    /// secret or a JWKS.
    Add(ClientAddArgs),
    /// List OAuth clients (no secrets).
    List(ListArgs),
}

/// `seqshield user list` / `seqshield client list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// The gateway's data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// `seqshield user add`.
#[derive(Args, Debug)]
pub struct UserAddArgs {
    /// The gateway's data directory (created, mode 0700, if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Login name: 1 to 64 of A-Z a-z 0-9 . _ @ -
    #[arg(value_name = "NAME")]
    pub name: String,
    /// File holding the password (one trailing newline is dropped).
    #[arg(long, value_name = "F")]
    pub password_file: PathBuf,
    /// Scopes the user's tokens may carry, comma-separated.
    #[arg(long, value_name = "S,..", default_value = "openid")]
    pub scopes: String,
    /// Most sensitive data the user may reach: public, internal, restricted or controlled.
    #[arg(long, value_name = "C", default_value = "internal")]
    pub clearance: String,
}

/// `seqshield client add`.
#[derive(Args, Debug)]
pub struct ClientAddArgs {
    /// The gateway's data directory (created, mode 0700, if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The client_id: 1 to 64 of A-Z a-z 0-9 . _ @ -
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Exact redirect URI (repeat for several): https, http on loopback
    /// only, or a reverse-DNS private-use scheme (RFC 8252 §7).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uri: Vec<String>,
    /// File holding the client secret (at least 32 bytes): a confidential client.
    #[arg(long, value_name = "F")]
    pub secret_file: Option<PathBuf>,
    /// File holding the client's public keys as a JWKS: a confidential
    /// client using private_key_jwt (RFC 7523).
    #[arg(long, value_name = "F")]
    pub jwks_file: Option<PathBuf>,
    /// Scopes the client's tokens may carry, comma-separated.
    #[arg(long, value_name = "S,..", default_value = "openid")]
    pub scopes: String,
    /// Clearance cap for the client's own (client-credentials) tokens.
    #[arg(long, value_name = "C", default_value = "internal")]
    pub clearance: String,
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    crate::exit::bad_input(msg)
}

/// Runs `seqshield user`.
pub fn user(ctx: &Ctx, c: UserCommand) -> Result<()> {
    match c {
        UserCommand::Add(a) => user_add(ctx, a),
        UserCommand::List(a) => user_list(ctx, a),
    }
}

/// Runs `seqshield client`.
pub fn client(ctx: &Ctx, c: ClientCommand) -> Result<()> {
    match c {
        ClientCommand::Add(a) => client_add(ctx, a),
        ClientCommand::List(a) => client_list(ctx, a),
    }
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join(store::DB_FILE)
}

fn parse_scopes(s: &str) -> Result<ScopeSet> {
    let scopes = ScopeSet::parse_comma(s).map_err(|e| bad(format!("--scopes: {e}")))?;
    if scopes.is_empty() {
        return Err(bad("--scopes: give at least one scope"));
    }
    Ok(scopes)
}

fn parse_clearance(s: &str) -> Result<Clearance> {
    s.parse::<Clearance>().map_err(|e| bad(format!("--clearance: {e}")))
}

fn check_name(kind: &str, name: &str) -> Result<()> {
    store::validate_name(name).map_err(|e| bad(format!("{kind} name {name:?}: {e}")))
}

/// Reads a secret file; an empty file is bad input, an unreadable one an I/O error.
fn read_secret(path: &Path, what: &str) -> Result<zeroize::Zeroizing<String>> {
    crate::io::read_secret_file(path).map_err(|e| {
        if e.chain().any(|c| c.is::<std::io::Error>()) {
            e.context(format!("cannot read the {what}"))
        } else {
            bad(format!("{what}: {e:#}"))
        }
    })
}

fn opened(dir: &Path) -> Result<Store> {
    Store::open(&db_path(dir)).with_context(|| format!("cannot open the auth database in {}", dir.display()))
}

fn opened_existing(dir: &Path) -> Result<Store> {
    Store::open_existing(&db_path(dir))
        .with_context(|| format!("no usable auth database in {} (add a user or client first)", dir.display()))
}

fn user_add(ctx: &Ctx, a: UserAddArgs) -> Result<()> {
    check_name("user", &a.name)?;
    let scopes = parse_scopes(&a.scopes)?;
    let clearance = parse_clearance(&a.clearance)?;
    let pw = read_secret(&a.password_file, "password file")?;
    password::check_password(pw.as_bytes()).map_err(|e| bad(format!("password file: {e}")))?;

    let password_hash = password::hash_password(pw.as_bytes()).context("cannot hash the password")?;
    drop(pw);
    let totp_secret = TotpSecret::generate().context("cannot generate a TOTP secret")?;
    let uri = zeroize::Zeroizing::new(totp::otpauth_uri(&totp_secret, TOTP_ISSUER, &a.name));
    let new = NewUser { name: a.name.clone(), password_hash, totp_secret, scopes: scopes.clone(), clearance };

    let store = opened(&a.data_dir)?;
    match store.add_user(&new) {
        Err(StoreError::Exists) => return Err(bad(format!("user {:?} already exists", a.name))),
        r => r.with_context(|| format!("cannot add user {:?}", a.name))?,
    }

    let qr = (!ctx.json && std::io::stdout().is_terminal()).then(|| totp::qr_terminal(&uri).ok()).flatten();
    ctx.report(
        json!({
            "ok": true,
            "user": a.name,
            "scopes": scopes.to_string(),
            "clearance": clearance.as_str(),
            "otpauth_uri": uri.as_str(),
        }),
        || {
            let mut s = format!(
                "added user {} (scopes: {scopes}; clearance: {clearance})\n\
                 Enrol an authenticator app now (shown only once; the first good code confirms it):\n",
                a.name
            );
            if let Some(qr) = qr {
                s.push_str(&qr);
                s.push('\n');
            }
            s.push_str(&uri);
            s
        },
    );
    Ok(())
}

fn user_list(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let users = opened_existing(&a.data_dir)?.list_users().context("cannot list users")?;
    ctx.report(json!({ "ok": true, "users": users }), || {
        if users.is_empty() {
            return "no users".to_owned();
        }
        users
            .iter()
            .map(|u| {
                format!(
                    "{}\tclearance={}\ttotp={}{}\tscopes={}",
                    u.name,
                    u.clearance,
                    if u.totp_confirmed { "confirmed" } else { "pending" },
                    if u.disabled { "\tDISABLED" } else { "" },
                    u.scopes
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// Reads a JWKS file and checks its shape: a JSON object whose `keys` is a
/// non-empty array of objects with a `kty`. (Key material is checked again
/// when the server loads it.)
fn read_jwks(path: &Path) -> Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(store::MAX_JWKS_BYTES as u64 + 1).read_to_string(&mut text))
        .with_context(|| format!("cannot read JWKS file {}", path.display()))?;
    if text.len() > store::MAX_JWKS_BYTES {
        return Err(bad(format!("--jwks-file: larger than {} bytes", store::MAX_JWKS_BYTES)));
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("--jwks-file: not JSON: {e}")))?;
    let keys = v.get("keys").and_then(serde_json::Value::as_array);
    let ok = keys.is_some_and(|k| !k.is_empty() && k.iter().all(|k| k.get("kty").is_some_and(|t| t.is_string())));
    if !ok {
        return Err(bad("--jwks-file: expected {\"keys\": [ {\"kty\": …}, … ]} with at least one key"));
    }
    Ok(text)
}

fn client_add(ctx: &Ctx, a: ClientAddArgs) -> Result<()> {
    check_name("client", &a.name)?;
    let scopes = parse_scopes(&a.scopes)?;
    let clearance = parse_clearance(&a.clearance)?;
    if a.redirect_uri.len() > store::MAX_REDIRECT_URIS {
        return Err(bad(format!("at most {} redirect URIs", store::MAX_REDIRECT_URIS)));
    }
    for uri in &a.redirect_uri {
        store::validate_redirect_uri(uri).map_err(|e| bad(format!("--redirect-uri: {e}")))?;
    }
    if a.secret_file.is_some() && a.jwks_file.is_some() {
        return Err(bad("give --secret-file or --jwks-file, not both"));
    }
    if a.secret_file.is_none() && a.jwks_file.is_none() && a.redirect_uri.is_empty() {
        return Err(bad("a public client (no --secret-file or --jwks-file) needs at least one --redirect-uri"));
    }
    let jwks = a.jwks_file.as_deref().map(read_jwks).transpose()?;
    let secret_hash = match &a.secret_file {
        None => None,
        Some(f) => {
            let secret = read_secret(f, "secret file")?;
            if secret.len() < MIN_CLIENT_SECRET_LEN || secret.len() > password::MAX_PASSWORD_LEN {
                return Err(bad(format!(
                    "secret file: the client secret must be {MIN_CLIENT_SECRET_LEN} to {} bytes",
                    password::MAX_PASSWORD_LEN
                )));
            }
            Some(password::hash_password(secret.as_bytes()).context("cannot hash the client secret")?)
        }
    };

    let new = NewClient {
        id: a.name.clone(),
        redirect_uris: a.redirect_uri.clone(),
        secret_hash,
        jwks,
        scopes: scopes.clone(),
        clearance,
    };
    let store = opened(&a.data_dir)?;
    match store.add_client(&new) {
        Err(StoreError::Exists) => return Err(bad(format!("client {:?} already exists", a.name))),
        Err(e @ (StoreError::BadRedirectUri { .. } | StoreError::InvalidClient(_) | StoreError::BadName)) => {
            return Err(bad(e.to_string()))
        }
        r => r.with_context(|| format!("cannot add client {:?}", a.name))?,
    }
    let (kind, method) = match (&new.secret_hash, &new.jwks) {
        (Some(_), _) => ("confidential", "client_secret_basic"),
        (None, Some(_)) => ("confidential", "private_key_jwt"),
        (None, None) => ("public", "none"),
    };
    ctx.report(
        json!({
            "ok": true,
            "client": a.name,
            "type": kind,
            "auth_method": method,
            "redirect_uris": a.redirect_uri,
            "scopes": scopes.to_string(),
            "clearance": clearance.as_str(),
        }),
        || {
            let flow = if kind == "public" { "authorization code with PKCE only" } else { method };
            let uris = if a.redirect_uri.is_empty() { "none".to_owned() } else { a.redirect_uri.join(" ") };
            format!(
                "added {kind} client {} ({flow}; scopes: {scopes}; clearance: {clearance})\nredirect URIs: {uris}",
                a.name
            )
        },
    );
    Ok(())
}

fn client_list(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let clients = opened_existing(&a.data_dir)?.list_clients().context("cannot list clients")?;
    ctx.report(json!({ "ok": true, "clients": clients }), || {
        if clients.is_empty() {
            return "no clients".to_owned();
        }
        clients
            .iter()
            .map(|c| {
                format!(
                    "{}\tauth={}\tclearance={}\tscopes={}\tredirect_uris={}",
                    c.id,
                    c.auth_method,
                    c.clearance,
                    c.scopes,
                    c.redirect_uris.join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
