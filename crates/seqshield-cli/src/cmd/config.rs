//! `seqshield config check` and `seqshield config schema`: the gateway's
//! settings as `seqshield serve` loads them, and the schema they follow.
//!
//! [`load`] is the one loader `serve`, `config check` and `doctor` share:
//! the file, the environment (`SEQSHIELD_<TABLE>__<KEY>` and the named
//! variables), then `--listen`, validated. An invalid configuration is bad
//! input (exit code 2) with an error that names the key, the file and line,
//! or the variable; a file that cannot be read is an I/O error (3).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seqshield_server::config::{Config, ConfigError};
use serde_json::json;

use crate::Ctx;

/// `seqshield config`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Load and validate the settings exactly as `seqshield serve` would,
    /// and print the effective configuration as TOML (secrets omitted).
    Check(CheckArgs),
    /// Print the JSON schema of the configuration file (docs/configuration.md
    /// is generated from it).
    Schema,
}

/// Where the settings come from: the flags `serve` takes for them.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// The gateway's data directory (read only; nothing is created).
    #[arg(long, value_name = "DIR", env = "SEQSHIELD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Configuration file [default: DIR/seqshield.toml if present, else built-in defaults].
    #[arg(long, value_name = "FILE", env = "SEQSHIELD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on, overriding server.listen as `serve --listen` does.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
}

/// `seqshield config check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Where the settings come from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Runs `seqshield config`.
pub fn run(ctx: &Ctx, c: ConfigCommand) -> Result<()> {
    match c {
        ConfigCommand::Check(a) => check(ctx, &a.source),
        ConfigCommand::Schema => {
            let schema = seqshield_server::config::schema().to_value();
            let text = serde_json::to_string_pretty(&schema).context("cannot render the schema")?;
            ctx.report(schema, || text);
            Ok(())
        }
    }
}

/// Loads the settings as `seqshield serve` does: `--config FILE`, else
/// `DIR/seqshield.toml` if present, else the defaults; the environment;
/// then `--listen`; validated.
pub fn load(data_dir: &Path, file: Option<&Path>, listen: Option<SocketAddr>) -> Result<Config> {
    let mut cfg = Config::load(data_dir, file).map_err(invalid)?;
    if let Some(listen) = listen {
        cfg.server.listen = listen;
        cfg.validate().map_err(invalid)?;
    }
    Ok(cfg)
}

/// A configuration error: unreadable file → I/O error, else bad input.
fn invalid(e: ConfigError) -> anyhow::Error {
    match e {
        ConfigError::Read { .. } => anyhow::Error::new(e),
        e => crate::exit::bad_input(format!("{:#}", anyhow::Error::new(e))),
    }
}

/// Where the settings came from, as `config check` and `doctor` report it.
pub fn source_json(cfg: &Config) -> serde_json::Value {
    json!({ "file": cfg.source, "env": cfg.env_vars })
}

/// The same, in words.
pub fn source_text(cfg: &Config) -> String {
    let file = match &cfg.source {
        Some(p) => format!("file {}", p.display()),
        None => "built-in defaults (no file)".to_owned(),
    };
    if cfg.env_vars.is_empty() {
        file
    } else {
        format!("{file}, environment {}", cfg.env_vars.join(", "))
    }
}

fn check(ctx: &Ctx, a: &SourceArgs) -> Result<()> {
    let cfg = load(&a.data_dir, a.config.as_deref(), a.listen)?;
    let text = cfg.to_toml_redacted().context("cannot render the configuration as TOML")?;
    let value: toml::Value = toml::from_str(&text).context("cannot read back the rendered configuration")?;
    ctx.report(json!({ "ok": true, "config_source": source_json(&cfg), "config": value }), || {
        format!("# valid; effective configuration from {} (secrets omitted)\n{}", source_text(&cfg), text.trim_end())
    });
    Ok(())
}
