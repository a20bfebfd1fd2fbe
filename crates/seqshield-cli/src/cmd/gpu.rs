//! `seqshield gpu check|scan`, and the gateway's GPU monitor.
//!
//! `scan` runs each half of a cycle in its own process (hidden subcommands
//! `gpu scan-writer` and `gpu scan-reader`, so each has its own CUDA
//! context and process lifetime): what the reader finds crossed a process
//! boundary through the driver, as a remnant left for the next job would.

use std::io::IsTerminal;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqshield_auth::audit::{AuditEvent, AuditSink, Outcome};
use seqshield_gpu::config::{GpuConfig, MonitorMode};
use seqshield_gpu::monitor::GpuEvent;
use seqshield_gpu::scan::{AllocatorMode, ReadOutcome, ScanReport};
use seqshield_gpu::GpuError;
use serde_json::json;

use crate::exit::{integrity, NoGpu};
use crate::Ctx;

/// GPU commands.
#[derive(Subcommand, Debug)]
pub enum GpuCommand {
    /// Describe a GPU and its driver (and what NVML reports), or say cleanly
    /// that there is none: exit 7 with `no_cuda_driver`, `no_cuda_device` or
    /// `cuda_not_built`.
    Check(CheckArgs),
    /// Measure what GPU memory leaks between processes. Each cycle, one
    /// process fills device memory with a synthetic DNA pattern and exits
    /// (freeing plainly, or through the secure allocator, which wipes);
    /// then a second process allocates as much device memory as it can and
    /// searches it for the pattern. Prints the remnant rate per allocator;
    /// exits 5 (`gpu_remnants_found`) if any secure cycle left a remnant.
    Scan(ScanArgs),
    /// One scan cycle's writer (started by `gpu scan`).
    #[command(name = "scan-writer", hide = true)]
    ScanWriter(WriterArgs),
    /// One scan cycle's reader (started by `gpu scan`); prints JSON.
    #[command(name = "scan-reader", hide = true)]
    ScanReader(ReaderArgs),
}

/// `gpu check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub device: u32,
}

/// Which allocators `gpu scan` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Allocators {
    /// Plain `cuMemAlloc`/`cuMemFree`.
    Plain,
    /// The secure pool: randomise on allocation, wipe on free.
    Secure,
    /// Plain, then secure.
    Both,
}

/// `gpu scan`.
#[derive(Args, Debug)]
pub struct ScanArgs {
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub device: u32,
    /// Cycles per allocator.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub cycles: u64,
    /// Allocators to measure.
    #[arg(long, value_enum, default_value_t = Allocators::Both)]
    pub allocator: Allocators,
    /// MiB the writer fills with the pattern.
    #[arg(long, default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub write_mib: u64,
    /// MiB the reader allocates and searches at most; 0: as much as the
    /// device gives (every cycle then copies all free device memory to the
    /// host, which takes seconds on a large GPU).
    #[arg(long, default_value_t = 0, value_name = "MIB", value_parser = clap::value_parser!(u64).range(0..=1 << 24))]
    pub read_mib: u64,
}

/// `gpu scan-writer`.
#[derive(Args, Debug)]
pub struct WriterArgs {
    #[arg(long)]
    device: u32,
    #[arg(long)]
    run_id: u64,
    #[arg(long)]
    cycle: u64,
    #[arg(long, value_enum)]
    allocator: Allocators,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 36))]
    bytes: u64,
}

/// `gpu scan-reader`.
#[derive(Args, Debug)]
pub struct ReaderArgs {
    #[arg(long)]
    device: u32,
    #[arg(long)]
    run_id: u64,
    /// 0: no limit.
    #[arg(long)]
    max_bytes: u64,
}

/// Runs `gpu`.
pub fn run(ctx: &Ctx, c: GpuCommand) -> Result<()> {
    match c {
        GpuCommand::Check(a) => check(ctx, &a),
        GpuCommand::Scan(a) => scan(ctx, &a),
        GpuCommand::ScanWriter(a) => writer(&a),
        GpuCommand::ScanReader(a) => reader(&a),
    }
}

/// Maps "there is no GPU" to exit 7 with its stable code; other errors pass.
fn no_gpu(err: GpuError) -> anyhow::Error {
    let code = match &err {
        GpuError::NotBuilt => "cuda_not_built",
        GpuError::NoDriver => "no_cuda_driver",
        GpuError::NoDevice { .. } => "no_cuda_device",
        _ => return anyhow::Error::new(err).context("the GPU could not be opened"),
    };
    anyhow::Error::new(NoGpu { code, message: err.to_string() })
}

fn check(ctx: &Ctx, a: &CheckArgs) -> Result<()> {
    let info = seqshield_gpu::check(a.device).map_err(no_gpu)?;
    let nvml = nvml_summary(a.device);
    let value = json!({ "ok": true, "device": info, "nvml": nvml });
    ctx.report(value, || {
        let (major, minor) = info.compute_capability;
        let mut text = format!(
            "GPU {}: {} (compute {major}.{minor}), {} MiB, CUDA driver {}.{}",
            info.ordinal,
            info.name,
            info.total_memory_bytes >> 20,
            info.driver_version / 1000,
            info.driver_version % 1000 / 10
        );
        match &nvml {
            Ok(s) => text.push_str(&format!(
                "\nNVML: {} compute processes, {} MiB in use, ECC {}",
                s.processes.len(),
                s.memory_used_bytes >> 20,
                s.ecc.map_or("off or unsupported".to_owned(), |e| format!(
                    "{} corrected, {} uncorrected",
                    e.corrected, e.uncorrected
                ))
            )),
            Err(e) => text.push_str(&format!("\nNVML: {e}")),
        }
        text
    });
    Ok(())
}

/// What NVML says about a device, or why it says nothing.
fn nvml_summary(device: u32) -> std::result::Result<seqshield_gpu::monitor::GpuSnapshot, String> {
    #[cfg(feature = "cuda")]
    {
        seqshield_gpu::nvml::Monitor::open().and_then(|m| m.snapshot(device)).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = device;
        Err(GpuError::NotBuilt.to_string())
    }
}

fn scan(ctx: &Ctx, a: &ScanArgs) -> Result<()> {
    let info = seqshield_gpu::check(a.device).map_err(no_gpu)?;
    let exe = std::env::current_exe().context("cannot find the seqshield executable to start scan processes")?;
    let modes: &[AllocatorMode] = match a.allocator {
        Allocators::Plain => &[AllocatorMode::Plain],
        Allocators::Secure => &[AllocatorMode::Secure],
        Allocators::Both => &[AllocatorMode::Plain, AllocatorMode::Secure],
    };
    let write_bytes = a.write_mib << 20;
    let read_bytes = a.read_mib << 20;
    let progress = cycle_progress(a.cycles * modes.len() as u64, ctx.quiet);
    let mut reports = Vec::new();
    for &mode in modes {
        // A fresh run id per allocator: markers of the other run never count.
        let run_id = random_u64()?;
        let mut report = ScanReport::new(mode);
        for cycle in 0..a.cycles {
            run_writer(&exe, a.device, run_id, cycle, mode, write_bytes)?;
            let found = run_reader(&exe, a.device, run_id, read_bytes)?;
            report.record(cycle, found.bytes_scanned, &found.hits);
            progress.inc(1);
        }
        reports.push(report);
    }
    progress.finish_and_clear();
    let rows: Vec<_> = reports
        .iter()
        .map(|r| {
            json!({
                "allocator": r.mode, "cycles": r.cycles, "cycles_with_remnants": r.cycles_with_remnants,
                "cycles_with_own_remnant": r.cycles_with_own_remnant, "markers_found": r.total_hits,
                "bytes_scanned": r.bytes_scanned, "remnant_rate": r.rate(),
            })
        })
        .collect();
    let value = json!({ "ok": true, "device": info, "write_bytes": write_bytes, "read_bytes_limit": read_bytes, "reports": rows });
    ctx.report(value, || {
        let mut text = format!("GPU {}: {}; writer {} MiB per cycle\n", info.ordinal, info.name, a.write_mib);
        for r in &reports {
            text.push_str(&format!(
                "{:<7} {:>6} cycles, {:>6} with remnants ({:.2} %), {} markers, {} MiB searched\n",
                format!("{:?}", r.mode).to_lowercase(),
                r.cycles,
                r.cycles_with_remnants,
                100.0 * r.rate(),
                r.total_hits,
                r.bytes_scanned >> 20
            ));
        }
        text.trim_end().to_owned()
    });
    if let Some(r) = reports.iter().find(|r| r.mode == AllocatorMode::Secure && r.cycles_with_remnants > 0) {
        return Err(integrity(
            "gpu_remnants_found",
            format!("the secure allocator left remnants in {} of {} cycles", r.cycles_with_remnants, r.cycles),
        ));
    }
    Ok(())
}

fn cycle_progress(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let style = indicatif::ProgressStyle::with_template("scan [{bar:30}] {pos}/{len} cycles eta {eta}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    indicatif::ProgressBar::new(total).with_style(style)
}

fn random_u64() -> Result<u64> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(u64::from_le_bytes(b))
}

fn mode_arg(mode: AllocatorMode) -> &'static str {
    match mode {
        AllocatorMode::Secure => "secure",
        _ => "plain",
    }
}

fn run_writer(
    exe: &std::path::Path,
    device: u32,
    run_id: u64,
    cycle: u64,
    mode: AllocatorMode,
    bytes: u64,
) -> Result<()> {
    let out = Command::new(exe)
        .args(["gpu", "scan-writer", "--device", &device.to_string(), "--run-id", &run_id.to_string()])
        .args(["--cycle", &cycle.to_string(), "--allocator", mode_arg(mode), "--bytes", &bytes.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot start the scan writer")?;
    if !out.status.success() {
        anyhow::bail!("the scan writer of cycle {cycle} failed ({}): {}", out.status, last_line(&out.stderr));
    }
    Ok(())
}

fn run_reader(exe: &std::path::Path, device: u32, run_id: u64, max_bytes: u64) -> Result<ReadOutcome> {
    let out = Command::new(exe)
        .args(["gpu", "scan-reader", "--device", &device.to_string(), "--run-id", &run_id.to_string()])
        .args(["--max-bytes", &max_bytes.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot start the scan reader")?;
    if !out.status.success() {
        anyhow::bail!("the scan reader failed ({}): {}", out.status, last_line(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("the scan reader's report is malformed")
}

fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines().last().unwrap_or("").chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(feature = "cuda")]
fn writer(a: &WriterArgs) -> Result<()> {
    use seqshield_gpu::device::DeviceContext;
    use seqshield_gpu::scan::{write_pattern, WriterPlan};
    let bytes = usize::try_from(a.bytes).context("--bytes does not fit this machine")?;
    let mode = if a.allocator == Allocators::Secure { AllocatorMode::Secure } else { AllocatorMode::Plain };
    let mut device = seqshield_gpu::cuda::CudaDevice::create_for_job(a.device).map_err(no_gpu)?;
    let plan = WriterPlan { run_id: a.run_id, cycle: a.cycle, writer: std::process::id(), bytes, mode };
    write_pattern(&device, &plan).context("writing the pattern failed")?;
    device.destroy().context("destroying the writer's context failed")?;
    Ok(())
}

#[cfg(feature = "cuda")]
fn reader(a: &ReaderArgs) -> Result<()> {
    use seqshield_gpu::device::DeviceContext;
    use seqshield_gpu::scan::{read_remnants, ReaderPlan};
    let mut device = seqshield_gpu::cuda::CudaDevice::create_for_job(a.device).map_err(no_gpu)?;
    let max_bytes = if a.max_bytes == 0 { u64::MAX } else { a.max_bytes };
    let plan = ReaderPlan { run_id: a.run_id, max_bytes, block_bytes: 1 << 30 };
    let found = read_remnants(&device, &plan).context("searching device memory failed")?;
    device.destroy().context("destroying the reader's context failed")?;
    println!("{}", serde_json::to_string(&found)?);
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn writer(_: &WriterArgs) -> Result<()> {
    Err(no_gpu(GpuError::NotBuilt))
}

#[cfg(not(feature = "cuda"))]
fn reader(_: &ReaderArgs) -> Result<()> {
    Err(no_gpu(GpuError::NotBuilt))
}

/// Starts the gateway's GPU monitor per `[gpu]`: a thread that takes an
/// NVML snapshot of each watched device every `interval_secs` and records
/// each anomaly ([`GpuEvent`]) in the audit log. With `monitor = "auto"`
/// and no NVML, it notes once (log and audit) that monitoring is off; with
/// `"on"` it refuses, so `serve` does not start.
pub fn start_monitor(cfg: &GpuConfig, audit: Arc<dyn AuditSink>) -> Result<()> {
    if cfg.monitor == MonitorMode::Off {
        return Ok(());
    }
    let opened = open_nvml(cfg);
    let (nvml, devices) = match opened {
        Ok(ok) => ok,
        Err(why) if cfg.monitor == MonitorMode::Auto => {
            seqshield_server::logging::notice(&format!("GPU monitoring is off: {why}"));
            let ev = AuditEvent::new(crate::client::now(), "gpu.monitor", Outcome::Allow, "GPU monitoring is off")
                .with("why", why);
            audit.record(&ev).context("the audit log refused the GPU monitor's event")?;
            return Ok(());
        }
        Err(why) => anyhow::bail!("gpu.monitor = \"on\" but GPU monitoring cannot start: {why}"),
    };
    let ev = AuditEvent::new(crate::client::now(), "gpu.monitor", Outcome::Allow, "GPU monitoring started")
        .with("devices", devices.clone())
        .with("interval_secs", cfg.interval_secs);
    audit.record(&ev).context("the audit log refused the GPU monitor's event")?;
    let rule = seqshield_gpu::procs::JobRule::for_current_exe().context("cannot resolve the seqshield executable")?;
    let interval = Duration::from_secs(cfg.interval_secs);
    let slack = cfg.memory_slack_bytes;
    std::thread::Builder::new()
        .name("gpu-monitor".into())
        .spawn(move || watch_loop(&nvml, &devices, &rule, slack, interval, audit.as_ref()))
        .context("cannot start the GPU monitor thread")?;
    Ok(())
}

#[cfg(feature = "cuda")]
type Nvml = seqshield_gpu::nvml::Monitor;
#[cfg(not(feature = "cuda"))]
type Nvml = std::convert::Infallible;

#[cfg(feature = "cuda")]
fn open_nvml(cfg: &GpuConfig) -> std::result::Result<(Nvml, Vec<u32>), String> {
    let nvml = Nvml::open().map_err(|e| e.to_string())?;
    let count = nvml.device_count().map_err(|e| e.to_string())?;
    if let Some(missing) = cfg.devices.iter().find(|&&d| d >= count) {
        return Err(format!("gpu.devices lists device {missing}, but NVML sees {count}"));
    }
    let devices = if cfg.devices.is_empty() { (0..count).collect() } else { cfg.devices.clone() };
    if devices.is_empty() {
        return Err("NVML sees no device".into());
    }
    Ok((nvml, devices))
}

#[cfg(not(feature = "cuda"))]
fn open_nvml(_: &GpuConfig) -> std::result::Result<(Nvml, Vec<u32>), String> {
    Err(GpuError::NotBuilt.to_string())
}

fn watch_loop(
    nvml: &Nvml,
    devices: &[u32],
    rule: &seqshield_gpu::procs::JobRule,
    slack: u64,
    interval: Duration,
    audit: &dyn AuditSink,
) {
    let mut watches: Vec<_> = devices.iter().map(|_| seqshield_gpu::monitor::Watch::new(slack)).collect();
    let mut failing = vec![false; devices.len()];
    loop {
        for ((&device, watch), failing) in devices.iter().zip(&mut watches).zip(&mut failing) {
            match snapshot(nvml, device) {
                Ok(snap) => {
                    *failing = false;
                    for event in watch.observe(snap, |pid| rule.is_job_pid(pid)) {
                        if let Err(e) = audit.record(&audit_event(&event)) {
                            seqshield_server::logging::warn(&format!("audit: {e}"));
                        }
                    }
                }
                // Logged once per failing spell, not every interval.
                Err(e) if !*failing => {
                    *failing = true;
                    seqshield_server::logging::warn(&format!("GPU {device}: NVML snapshot failed: {e}"));
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(interval);
    }
}

#[cfg(feature = "cuda")]
fn snapshot(nvml: &Nvml, device: u32) -> std::result::Result<seqshield_gpu::monitor::GpuSnapshot, GpuError> {
    nvml.snapshot(device)
}

#[cfg(not(feature = "cuda"))]
fn snapshot(nvml: &Nvml, _: u32) -> std::result::Result<seqshield_gpu::monitor::GpuSnapshot, GpuError> {
    match *nvml {}
}

/// The audit record of an anomaly: `gpu.foreign_process`,
/// `gpu.memory_not_released` or `gpu.ecc_errors`, outcome deny (the
/// device's state breaks the policy), with the event's fields as details.
pub fn audit_event(event: &GpuEvent) -> AuditEvent {
    let (kind, reason) = match event {
        GpuEvent::ForeignProcess { .. } => {
            ("gpu.foreign_process", "a process that is not a seqshield job uses the GPU")
        }
        GpuEvent::MemoryNotReleased { .. } => {
            ("gpu.memory_not_released", "device memory was not released after the jobs on it ended")
        }
        GpuEvent::EccErrors { .. } => ("gpu.ecc_errors", "the GPU's ECC error count rose"),
        _ => ("gpu.anomaly", "GPU anomaly"),
    };
    let mut ev = AuditEvent::new(crate::client::now(), kind, Outcome::Deny, reason);
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(event) {
        for (k, v) in fields.into_iter().filter(|(k, _)| k != "kind") {
            ev = ev.with(&k, v);
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_become_deny_events_with_their_fields() {
        let ev = audit_event(&GpuEvent::ForeignProcess { device: 1, pid: 4242, used_bytes: Some(1 << 20) });
        assert_eq!((ev.kind, ev.outcome), ("gpu.foreign_process", Outcome::Deny));
        assert_eq!(ev.detail.get("pid"), Some(&json!(4242)));
        assert_eq!(ev.detail.get("device"), Some(&json!(1)));
        assert!(!ev.detail.contains_key("kind"));
    }
}
