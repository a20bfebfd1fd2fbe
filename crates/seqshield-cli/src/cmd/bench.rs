//! `seqshield bench …`: load generators against a running gateway.
//!
//! `seqshield bench token` is a closed-loop load generator for the token
//! endpoint: `--concurrency` workers on a multi-thread tokio runtime, each
//! on its own HTTP/1.1 keep-alive connection over the gateway's strict TLS
//! 1.3 (the certificate in `--ca-cert` is the only root of trust), each
//! sending its next `client_credentials` request as soon as the previous
//! answer has been read. Requests that start during `--warmup` (connection
//! set-up, TLS handshakes, the first argon2id secret check) are not
//! counted; then, for `--duration` seconds, every request's latency is
//! kept, and the report gives exact percentiles (nearest rank over all
//! samples, no histogram buckets).
//!
//! A request is an error when the transport fails, the status is not 200,
//! or the body is not JSON with a non-empty `access_token`. The command
//! fails when the error rate exceeds `--max-error-rate` (default 0).
//!
//! `seqshield bench tes` is the same generator for TES CreateTask: every
//! worker POSTs the task document in `--task` with the bearer token in
//! `--token-file`; a request succeeds on 200 with a task `id`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Args, Subcommand};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::json;
use zeroize::Zeroizing;

use crate::io::read_secret_file;
use crate::Ctx;

/// The form body of every request.
const TOKEN_REQUEST_BODY: &str = "grant_type=client_credentials";
/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a transport error, so a dead server is not hammered in a hot loop.
const TRANSPORT_ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Most concurrent workers.
const MAX_CONCURRENCY: u64 = 4096;
/// Percentiles reported, in hundred-thousandths (p50, p90, p99, p99.9).
const PERCENTILES: [(&str, u64); 4] = [("p50", 50_000), ("p90", 90_000), ("p99", 99_000), ("p99_9", 99_900)];

/// `seqshield bench`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Load the token endpoint with client-credentials requests and report
    /// throughput and latency percentiles.
    Token(TokenArgs),
    /// Submit TES tasks (CreateTask) as fast as the gateway accepts them and
    /// report throughput and latency percentiles.
    Tes(TesArgs),
}

/// What every load generator takes.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The gateway's base URL (as in its ready line).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The gateway's certificate (PEM), trusted as the only root.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: PathBuf,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    pub concurrency: u64,
    /// Seconds of measurement after the warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_secs)]
    pub duration: f64,
    /// Seconds of unmeasured load first (connections, TLS handshakes, caches).
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = non_negative_secs)]
    pub warmup: f64,
    /// Fail when errors / requests exceeds this fraction (0 to 1).
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = fraction)]
    pub max_error_rate: f64,
}

/// `seqshield bench token`: requests go to URL/token.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// The confidential client's client_id.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// File holding the client secret (one trailing newline is dropped).
    #[arg(long, value_name = "F")]
    pub secret_file: PathBuf,
}

/// `seqshield bench tes`: CreateTask requests to URL/ga4gh/tes/v1/tasks.
#[derive(Args, Debug)]
pub struct TesArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// File holding a bearer token with `jobs:submit` (and `data:read` for inputs).
    #[arg(long, value_name = "F")]
    pub token_file: PathBuf,
    /// The task document (JSON) every request submits.
    #[arg(long, value_name = "JSON")]
    pub task: PathBuf,
}

fn non_negative_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
        return Err("must be between 0 and 86400 seconds".into());
    }
    Ok(v)
}

fn positive_secs(s: &str) -> Result<f64, String> {
    let v = non_negative_secs(s)?;
    if v <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    Ok(v)
}

fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err("must be between 0 and 1".into());
    }
    Ok(v)
}

/// Runs `seqshield bench`.
pub fn run(ctx: &Ctx, c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::Token(a) => {
            let authorization = basic_authorization(&a.client_id, &read_secret_file(&a.secret_file)?)?;
            let extra = json!({"client_id": a.client_id, "grant_type": "client_credentials"});
            load(ctx, &a.load, Kind::Token, "/token", authorization, TOKEN_REQUEST_BODY.into(), extra)
        }
        BenchCommand::Tes(a) => {
            let token = read_secret_file(&a.token_file)?;
            let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .context("the token file does not hold a bearer token")?;
            authorization.set_sensitive(true);
            let body = std::fs::read(&a.task).with_context(|| format!("cannot read {}", a.task.display()))?;
            serde_json::from_slice::<serde_json::Value>(&body).context("--task is not JSON")?;
            load(ctx, &a.load, Kind::Tes, "/ga4gh/tes/v1/tasks", authorization, body.into(), json!({}))
        }
    }
}

/// Why a request did not yield a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    /// A status other than 200.
    Status(u16),
    /// 200, but not the expected JSON member (`access_token`, `id`).
    NoAccessToken,
    /// No answer in time.
    Timeout,
    /// The connection (TCP or TLS) could not be made.
    Connect,
    /// Any other transport or body error.
    Transport,
}

impl Failure {
    fn key(self) -> String {
        match self {
            Self::Status(s) => format!("http_{s}"),
            Self::NoAccessToken => "no_access_token".into(),
            Self::Timeout => "timeout".into(),
            Self::Connect => "connect".into(),
            Self::Transport => "transport".into(),
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect
        } else {
            Self::Transport
        }
    }
}

/// One worker's tally.
#[derive(Default)]
struct Tally {
    /// Latency of each measured successful request, in nanoseconds.
    latencies_ns: Vec<u64>,
    /// Measured failures by kind.
    errors: BTreeMap<Failure, u64>,
    /// Requests that started during the warm-up.
    warmup_requests: u64,
    /// Of those, failures.
    warmup_errors: u64,
}

/// Which endpoint is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `client_credentials` at the token endpoint; answers carry `access_token`.
    Token,
    /// CreateTask; answers carry `id`.
    Tes,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Tes => "tes",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Token => "application/x-www-form-urlencoded",
            Self::Tes => "application/json",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Token => "access_token",
            Self::Tes => "id",
        }
    }
}

/// What every worker shares.
struct Target {
    client: reqwest::Client,
    endpoint: String,
    authorization: HeaderValue,
    kind: Kind,
    body: bytes::Bytes,
}

fn load(
    ctx: &Ctx,
    a: &LoadArgs,
    kind: Kind,
    path: &str,
    authorization: HeaderValue,
    body: bytes::Bytes,
    extra: serde_json::Value,
) -> Result<()> {
    let base = a.url.trim_end_matches('/');
    if !base.starts_with("https://") {
        bail!("--url must be an https URL, got {base:?}");
    }
    let endpoint = format!("{base}{path}");
    let concurrency = usize::try_from(a.concurrency).context("--concurrency is too large")?;
    // The client convention's strict TLS (the certificate as the only
    // root), tuned for load: one keep-alive connection per worker.
    let client = crate::client::http_builder(&a.ca_cert)?
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;
    let target = Arc::new(Target { client, endpoint, authorization, kind, body });

    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let warmup = Duration::from_secs_f64(a.warmup);
    let duration = Duration::from_secs_f64(a.duration);
    let (tallies, window) = rt.block_on(async {
        let start = Instant::now();
        let warm_end = start + warmup;
        let end = warm_end + duration;
        let workers: Vec<_> =
            (0..concurrency).map(|_| tokio::spawn(worker(Arc::clone(&target), warm_end, end))).collect();
        let mut tallies = Vec::with_capacity(concurrency);
        for w in workers {
            tallies.push(w.await.context("a load worker panicked")?);
        }
        // Requests are counted by start time, so the window runs to the
        // last completion: what the first measured requests lose to
        // in-flight warm-up requests, the last ones gain.
        anyhow::Ok((tallies, Instant::now().saturating_duration_since(warm_end)))
    })?;
    let report = Report::new(tallies, window);
    let error_rate = report.error_rate();
    let errors_by_kind: serde_json::Map<String, serde_json::Value> =
        report.errors.iter().map(|(k, n)| (k.key(), json!(n))).collect();

    if report.requests == 0 {
        bail!("no request was started in the {:.1} s measurement window", a.duration);
    }
    if error_rate > a.max_error_rate {
        bail!(
            "error rate {:.2}% ({} of {} requests: {}) exceeds --max-error-rate {}",
            error_rate * 100.0,
            report.error_count,
            report.requests,
            kinds_text(&report.errors),
            a.max_error_rate
        );
    }

    let lat = report.latency_ms();
    let mut value = json!({
        "ok": true,
        "bench": kind.name(),
        "endpoint": target.endpoint,
        "concurrency": a.concurrency,
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "elapsed_s": round3(window.as_secs_f64()),
        "requests": report.requests,
        "ok_requests": report.ok,
        "errors": report.error_count,
        "error_rate": error_rate,
        "errors_by_kind": errors_by_kind,
        "warmup_requests": report.warmup_requests,
        "warmup_errors": report.warmup_errors,
        "throughput_rps": round3(report.throughput()),
        "latency_ms": lat.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    if let (Some(v), Some(e)) = (value.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    ctx.report(value, || {
        let mut s = format!(
            "{} endpoint {}: {} worker{}, {:.1} s measured after {:.1} s warm-up\n",
            kind.name(),
            target.endpoint,
            a.concurrency,
            if a.concurrency == 1 { "" } else { "s" },
            window.as_secs_f64(),
            a.warmup
        );
        let _ = writeln!(
            s,
            "  requests {}  errors {} ({:.2}%{})  throughput {:.1} {}/s",
            report.requests,
            report.error_count,
            error_rate * 100.0,
            if report.errors.is_empty() { String::new() } else { format!(": {}", kinds_text(&report.errors)) },
            report.throughput(),
            if kind == Kind::Token { "tokens" } else { "tasks" }
        );
        s.push_str("  latency ms:");
        for (k, v) in &lat {
            match v {
                Some(v) => {
                    let _ = write!(s, "  {} {v:.3}", k.replace('_', "."));
                }
                None => {
                    let _ = write!(s, "  {} -", k.replace('_', "."));
                }
            }
        }
        s
    });
    Ok(())
}

/// One closed-loop worker: a request, its answer read in full, the next.
async fn worker(t: Arc<Target>, warm_end: Instant, end: Instant) -> Tally {
    let mut tally = Tally::default();
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            return tally;
        }
        let outcome = request(&t).await;
        let elapsed = t0.elapsed();
        let measured = t0 >= warm_end;
        match outcome {
            Ok(()) if measured => tally.latencies_ns.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)),
            Ok(()) => tally.warmup_requests += 1,
            Err(f) => {
                if measured {
                    *tally.errors.entry(f).or_default() += 1;
                } else {
                    tally.warmup_requests += 1;
                    tally.warmup_errors += 1;
                }
                if matches!(f, Failure::Connect | Failure::Transport | Failure::Timeout) {
                    tokio::time::sleep(TRANSPORT_ERROR_PAUSE).await;
                }
            }
        }
    }
}

/// One request; `Ok` only for 200 with the expected member (an access
/// token, a task id).
async fn request(t: &Target) -> Result<(), Failure> {
    let resp = t
        .client
        .post(&t.endpoint)
        .header(AUTHORIZATION, t.authorization.clone())
        .header(CONTENT_TYPE, t.kind.content_type())
        .header(ACCEPT, "application/json")
        .body(t.body.clone())
        .send()
        .await
        .map_err(|e| Failure::from_reqwest(&e))?;
    let status = resp.status();
    // Read the whole body either way, so the connection can be reused.
    let body = resp.bytes().await.map_err(|e| Failure::from_reqwest(&e))?;
    if status != reqwest::StatusCode::OK {
        return Err(Failure::Status(status.as_u16()));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| Failure::NoAccessToken)?;
    match v.get(t.kind.field()).and_then(|x| x.as_str()) {
        Some(tok) if !tok.is_empty() => Ok(()),
        _ => Err(Failure::NoAccessToken),
    }
}

/// `Authorization: Basic …` per RFC 6749 §2.3.1: id and secret are
/// form-urlencoded, joined by `:`, then base64. Marked sensitive so it is
/// never logged by the HTTP stack.
fn basic_authorization(client_id: &str, secret: &str) -> Result<HeaderValue> {
    let mut pair = Zeroizing::new(String::with_capacity(client_id.len() + secret.len() * 3 + 1));
    form_urlencode(client_id, &mut pair);
    pair.push(':');
    form_urlencode(secret, &mut pair);
    let mut value = Zeroizing::new(String::from("Basic "));
    STANDARD.encode_string(pair.as_bytes(), &mut value);
    let mut h = HeaderValue::from_str(&value).context("the client credentials do not fit in a header")?;
    h.set_sensitive(true);
    Ok(h)
}

/// application/x-www-form-urlencoded (the WHATWG URL serializer's byte set).
fn form_urlencode(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// All workers' tallies, merged.
struct Report {
    /// Sorted latencies of measured successful requests, in nanoseconds.
    sorted_ns: Vec<u64>,
    errors: BTreeMap<Failure, u64>,
    ok: u64,
    error_count: u64,
    requests: u64,
    warmup_requests: u64,
    warmup_errors: u64,
    window: Duration,
}

impl Report {
    fn new(tallies: Vec<Tally>, window: Duration) -> Self {
        let mut sorted_ns = Vec::with_capacity(tallies.iter().map(|t| t.latencies_ns.len()).sum());
        let mut errors = BTreeMap::new();
        let (mut warmup_requests, mut warmup_errors) = (0, 0);
        for t in tallies {
            sorted_ns.extend_from_slice(&t.latencies_ns);
            for (k, n) in t.errors {
                *errors.entry(k).or_default() += n;
            }
            warmup_requests += t.warmup_requests;
            warmup_errors += t.warmup_errors;
        }
        sorted_ns.sort_unstable();
        let ok = sorted_ns.len() as u64;
        let error_count = errors.values().sum();
        Self { sorted_ns, errors, ok, error_count, requests: ok + error_count, warmup_requests, warmup_errors, window }
    }

    fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.error_count as f64 / self.requests as f64
        }
    }

    /// Tokens per second over the measurement window.
    fn throughput(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// p50, p90, p99, p99.9, max and mean of the successful requests, in
    /// milliseconds (`None` without samples).
    fn latency_ms(&self) -> Vec<(&'static str, Option<f64>)> {
        let ms = |ns: u64| round3(ns as f64 / 1e6);
        let mut out: Vec<(&'static str, Option<f64>)> =
            PERCENTILES.iter().map(|&(name, q)| (name, percentile(&self.sorted_ns, q).map(ms))).collect();
        out.push(("max", self.sorted_ns.last().copied().map(ms)));
        let mean = (!self.sorted_ns.is_empty())
            .then(|| self.sorted_ns.iter().map(|&n| u128::from(n)).sum::<u128>() / self.sorted_ns.len() as u128);
        out.push(("mean", mean.map(|n| ms(u64::try_from(n).unwrap_or(u64::MAX)))));
        out
    }
}

/// The nearest-rank percentile of `sorted` (ascending): the smallest sample
/// with at least `q` hundred-thousandths of all samples at or below it.
fn percentile(sorted: &[u64], q: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u128;
    let rank = (n * u128::from(q)).div_ceil(100_000).max(1);
    let idx = usize::try_from(rank - 1).unwrap_or(usize::MAX).min(sorted.len() - 1);
    Some(sorted[idx])
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn kinds_text(errors: &BTreeMap<Failure, u64>) -> String {
    errors.iter().map(|(k, n)| format!("{} ×{n}", k.key())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50_000), Some(500));
        assert_eq!(percentile(&v, 90_000), Some(900));
        assert_eq!(percentile(&v, 99_000), Some(990));
        assert_eq!(percentile(&v, 99_900), Some(999));
        assert_eq!(percentile(&[7], 99_900), Some(7));
        assert_eq!(percentile(&[1, 2], 50_000), Some(1));
        assert_eq!(percentile(&[1, 2], 50_001), Some(2));
        assert_eq!(percentile(&[], 50_000), None);
    }

    #[test]
    fn basic_credentials_are_form_encoded_then_base64() {
        let h = basic_authorization("my:client", "p@ss word").unwrap();
        assert!(h.is_sensitive());
        let b64 = h.to_str().unwrap().strip_prefix("Basic ").unwrap();
        assert_eq!(STANDARD.decode(b64).unwrap(), b"my%3Aclient:p%40ss+word");
    }

    #[test]
    fn report_merges_and_rates() {
        let mut a = Tally { latencies_ns: vec![3_000_000, 1_000_000], ..Default::default() };
        a.errors.insert(Failure::Status(401), 1);
        let b = Tally { latencies_ns: vec![2_000_000], warmup_requests: 4, warmup_errors: 1, ..Default::default() };
        let r = Report::new(vec![a, b], Duration::from_secs(1));
        assert_eq!((r.requests, r.ok, r.error_count, r.warmup_requests), (4, 3, 1, 4));
        assert!((r.error_rate() - 0.25).abs() < 1e-12);
        assert!((r.throughput() - 3.0).abs() < 1e-12);
        let lat: BTreeMap<_, _> = r.latency_ms().into_iter().collect();
        assert_eq!(lat["p50"], Some(2.0));
        assert_eq!(lat["max"], Some(3.0));
        assert_eq!(kinds_text(&r.errors), "http_401 ×1");
    }
}
