//! `audit-appender`: a load generator for the audit log, and the process
//! the kill -9 crash test (`tests/crash.rs`) kills.
//!
//! ```text
//! audit-appender --dir DIR [--threads N] [--count M] [--batch K] [--tag TAG]
//! ```
//!
//! Opens the log in `DIR` and runs `N` threads (default 4), each appending
//! `M` synthetic events (default 1000; 0 appends until the process is
//! killed). Every fourth call of a thread is one `append_all` of `K` events
//! (default 8; 1 means single appends only), the others are `append`s. Each
//! event's object and request id is an id unique within the run,
//! `t<thread>-<n>`, or `<TAG>-t<thread>-<n>` with `--tag` (so that runs on
//! the same log stay distinct).
//!
//! Only once an append has returned (a sync covered its events) does the
//! thread write `ack <index> <id>`, one line per event, to stdout, in one
//! write of the locked stdout, flushed. Nothing else goes to stdout: what
//! was opened, and the rate at the end, go to stderr.
//!
//! Exit status: 0 when every thread is done, 1 on a log or output error,
//! 2 on a usage error.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use seqshield_audit::{AuditLog, Decision, Event, Timestamp};

const USAGE: &str = "usage: audit-appender --dir DIR [--threads N] [--count M] [--batch K] [--tag TAG]

  --dir DIR      the log directory (created if missing)
  --threads N    appending threads, 1 to 1024 (default 4)
  --count M      events per thread; 0 appends until killed (default 1000)
  --batch K      events in every fourth call, one append_all (default 8;
                 1 = single appends only), 1 to 4096
  --tag TAG      prefix for the event ids, [A-Za-z0-9_-]{1,64}

Writes `ack <index> <id>` to stdout for each event, after its append
returned.";

/// Longest `--tag`: keeps ids far below the event's id bound.
const MAX_TAG_LEN: usize = 64;

/// Every fourth call of a thread is an `append_all`.
const BATCH_EVERY: u64 = 4;

/// What the command line asked for.
#[derive(Debug)]
struct Config {
    dir: PathBuf,
    threads: u64,
    /// Events per thread; 0 = no end.
    count: u64,
    batch: u64,
    tag: Option<String>,
}

/// Why the command line was refused.
#[derive(Debug)]
enum Usage {
    Help,
    Bad(String),
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, Usage> {
    let (mut dir, mut threads, mut count, mut batch, mut tag) = (None, 4, 1000, 8, None);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(Usage::Help);
        }
        let mut value = || args.next().ok_or_else(|| Usage::Bad(format!("{arg} needs a value")));
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--threads" => threads = number(&arg, &value()?, 1, 1024)?,
            "--count" => count = number(&arg, &value()?, 0, u64::MAX)?,
            "--batch" => batch = number(&arg, &value()?, 1, 4096)?,
            "--tag" => {
                let t = value()?;
                let ok = (1..=MAX_TAG_LEN).contains(&t.len())
                    && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !ok {
                    return Err(Usage::Bad(format!("--tag must match [A-Za-z0-9_-]{{1,{MAX_TAG_LEN}}}")));
                }
                tag = Some(t);
            }
            _ => return Err(Usage::Bad(format!("unknown argument {arg:?}"))),
        }
    }
    let dir = dir.ok_or_else(|| Usage::Bad("--dir is required".into()))?;
    Ok(Config { dir, threads, count, batch, tag })
}

fn number(flag: &str, value: &str, min: u64, max: u64) -> Result<u64, Usage> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Usage::Bad(format!("{flag} takes a whole number from {min} to {max}, not {value:?}"))),
    }
}

fn id(tag: Option<&str>, thread: u64, n: u64) -> String {
    match tag {
        Some(tag) => format!("{tag}-t{thread}-{n}"),
        None => format!("t{thread}-{n}"),
    }
}

fn event(id: &str, thread: u64, n: u64) -> Result<Event, seqshield_audit::EventError> {
    Event::builder(Timestamp::now(), "load.synthetic", Decision::Allow)
        .subject("audit-appender")
        .object(id)
        .request_id(id)
        .detail("thread", thread)
        .detail("n", n)
        .build()
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One thread: appends its events and acknowledges each after its append
/// returned. Returns how many it appended.
fn append_loop(log: &AuditLog, cfg: &Config, thread: u64) -> Result<u64, Failure> {
    let (mut n, mut call) = (0u64, 0u64);
    let mut lines = String::new();
    while cfg.count == 0 || n < cfg.count {
        let left = if cfg.count == 0 { u64::MAX } else { cfg.count - n };
        let k = if call % BATCH_EVERY == BATCH_EVERY - 1 { cfg.batch.min(left) } else { 1 };
        let ids: Vec<String> = (n..n + k).map(|i| id(cfg.tag.as_deref(), thread, i)).collect();
        let events = ids.iter().zip(n..).map(|(id, i)| event(id, thread, i)).collect::<Result<Vec<_>, _>>()?;
        let indices = match events.as_slice() {
            [one] => {
                let i = log.append(one)?;
                i..i + 1
            }
            many => log.append_all(many)?,
        };
        // On disk now: only from here on may anyone be told.
        lines.clear();
        for (index, id) in indices.zip(&ids) {
            writeln!(lines, "ack {index} {id}")?;
        }
        let mut out = io::stdout().lock();
        out.write_all(lines.as_bytes())?;
        out.flush()?;
        drop(out);
        n += k;
        call += 1;
    }
    Ok(n)
}

fn main() -> ExitCode {
    let cfg = match parse(std::env::args().skip(1)) {
        Ok(cfg) => Arc::new(cfg),
        Err(Usage::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Usage::Bad(why)) => {
            eprintln!("audit-appender: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let log = match AuditLog::open(&cfg.dir) {
        Ok(log) => Arc::new(log),
        Err(e) => {
            eprintln!("audit-appender: {e}");
            return ExitCode::FAILURE;
        }
    };
    let torn = match log.torn_tail() {
        Some(t) => format!(
            "; cut a torn tail of {} bytes at {} ({}), saved as {}",
            t.len,
            t.offset,
            t.damage,
            t.saved_as.display()
        ),
        None => String::new(),
    };
    let count = match cfg.count {
        0 => "until killed".to_owned(),
        n => format!("{n} events each"),
    };
    eprintln!(
        "audit-appender: {}: {} entries{torn}; {} threads appending {count}, batch {}",
        log.path().display(),
        log.len(),
        cfg.threads,
        cfg.batch,
    );

    let start = Instant::now();
    let threads: Vec<_> = (0..cfg.threads)
        .map(|t| {
            let (log, cfg) = (log.clone(), cfg.clone());
            std::thread::spawn(move || match append_loop(&log, &cfg, t) {
                Ok(n) => n,
                Err(e) => {
                    // Fail fast: the other threads must not go on as if
                    // nothing happened.
                    eprintln!("audit-appender: thread {t}: {e}");
                    std::process::exit(1);
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        match t.join() {
            Ok(n) => total += n,
            Err(_) => return ExitCode::FAILURE,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("audit-appender: appended {total} events in {secs:.3} s ({:.0}/s)", total as f64 / secs);
    ExitCode::SUCCESS
}
