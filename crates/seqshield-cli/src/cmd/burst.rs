//! `seqshield burst-sim TRACE`: replays a job trace through the placement
//! policy the gateway uses, against simulated on-prem capacity, and reports
//! queue waits with and without bursting and the cloud core-hours spent.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use seqshield_jobs::placement::PlacementPolicy;
use seqshield_jobs::sim::{self, SimConfig};

use crate::Ctx;

const HELP: &str = "\
The trace is CSV with the header `arrival_s,cores,runtime_s,classification`
(`#` lines are comments); docs/jobs-placement.md describes it and the model.
The same policy code as the gateway decides each placement; each job's true
runtime is its requested time. Without --policy the embedded placement
policy is used. A trace ships in crates/seqshield-jobs/traces/.

Example:
  seqshield burst-sim --onprem-cores 256 crates/seqshield-jobs/traces/sequencing-week.csv";

/// `burst-sim`.
#[derive(Args, Debug)]
#[command(after_help = HELP)]
pub struct BurstSimArgs {
    /// The job trace (CSV).
    pub trace: PathBuf,
    /// Placement policy file (default: the embedded one).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Cores of the simulated on-prem partition.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub onprem_cores: u32,
    /// Cores of the cloud partition (default: unbounded).
    #[arg(long, value_name = "N")]
    pub cloud_cores: Option<u32>,
    /// Seconds a cloud node takes to start.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub cloud_startup_secs: u64,
    /// Replace the policy's daily cloud budget (core-hours).
    #[arg(long, value_name = "H")]
    pub budget: Option<f64>,
}

/// Runs `burst-sim`.
pub fn run(ctx: &Ctx, a: BurstSimArgs) -> Result<()> {
    let mut policy = match &a.policy {
        Some(p) => PlacementPolicy::load(p)?,
        None => PlacementPolicy::embedded(),
    };
    if let Some(b) = a.budget {
        policy = policy.with_cloud_budget(b)?;
    }
    let trace = sim::load_trace(&a.trace).with_context(|| format!("cannot use the trace {}", a.trace.display()))?;
    let cfg = SimConfig {
        onprem_cores: a.onprem_cores,
        cloud_cores: a.cloud_cores,
        cloud_startup_secs: a.cloud_startup_secs,
    };
    let report = sim::simulate(&trace, &policy, &cfg);
    ctx.report(serde_json::to_value(&report)?, || report.render_text());
    Ok(())
}
