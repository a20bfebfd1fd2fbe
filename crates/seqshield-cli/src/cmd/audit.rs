//! `seqshield audit …`: read-only tools for the gateway's tamper-evident
//! audit log (`DATA/audit/`, see `seqshield-audit`): verify it, prove an
//! entry's inclusion or the log's consistency, follow it, export it for a
//! SIEM, and write a witness checkpoint.
//!
//! The gateway holds the log open (an exclusive `flock`) while it runs, so
//! nothing here opens it as an `AuditLog`: every command only reads the
//! log's files, checking every record's checksum and chain value as it
//! goes, and writes nothing but its own output.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use seqshield_audit::head::{read_heads, HEADS_FILE, KEY_FILE};
use seqshield_audit::log::LOG_FILE;
use seqshield_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion, CompactTree, Hash, StoredTree};
use seqshield_audit::record::{chain_hash, Damage, Scanner, Step, GENESIS, MAGIC};
use seqshield_audit::verify::{leaf_hashes, KeySource};
use seqshield_audit::{verify_log, Checkpoint, Event, Problem, Report, SignedTreeHead, VerifyOptions};
use seqshield_keys::sign::VerifyingKey;
use serde_json::{json, Map, Value};

use crate::exit::{bad_input, integrity, Integrity};
use crate::io::Output;
use crate::{data_on_stdout, Ctx};

/// How often `tail --follow` looks for new records.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Most events `tail -n` prints (it remembers where each of them starts:
/// about 50 MB at this bound); `export` has no bound.
const MAX_TAIL_LINES: u64 = 1_000_000;

/// Read and write buffer.
const BUFFER: usize = 1 << 20;

/// Exit-code 5 error code of a log that fails `verify` (or that `checkpoint`
/// refuses).
const VERIFY_FAILED: &str = "audit_verify_failed";

/// Exit-code 5 error code of a damaged record, broken chain or entry that
/// is not an event, found while reading.
const DAMAGED: &str = "audit_log_damaged";

/// `seqshield audit`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify every record, the chain, the tree and the signed tree heads
    /// (against a witness checkpoint or a pinned key if given).
    Verify(VerifyArgs),
    /// Print an inclusion proof of one entry (--index) or a consistency
    /// proof between two tree sizes (--from), checked before printing.
    Prove(ProveArgs),
    /// Print the last events as JSON lines; with --follow, new ones as
    /// they are written.
    Tail(TailArgs),
    /// Export every event as JSON lines (for a SIEM), checking chain and
    /// checksums while reading.
    Export(ExportArgs),
    /// Write a witness checkpoint of the latest signed tree head (keep it
    /// where the operator cannot rewrite it; use with `verify --witness`).
    Checkpoint(CheckpointArgs),
}

/// Where the log is: exactly one of `--data-dir` and `--log`.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct LogArgs {
    /// The gateway's data directory (the log is DIR/audit).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// An audit log directory, or its events.sqa file.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
}

/// `seqshield audit verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    log: LogArgs,
    /// A witness checkpoint (from `audit checkpoint`) the log must extend;
    /// it also pins the head-signing key.
    #[arg(long, value_name = "FILE")]
    witness: Option<PathBuf>,
    /// The head-signing public key (PEM) to trust, instead of the key file
    /// in the log directory.
    #[arg(long, value_name = "PEM")]
    key: Option<PathBuf>,
    /// Skip decoding every entry as a canonical event (faster).
    #[arg(long)]
    no_events: bool,
}

/// `seqshield audit prove`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("proof").required(true).args(["index", "from"])))]
pub struct ProveArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Inclusion proof of entry N.
    #[arg(long, value_name = "N")]
    index: Option<u64>,
    /// Consistency proof from tree size M.
    #[arg(long, value_name = "M")]
    from: Option<u64>,
    /// The tree size to prove against (default: the latest signed tree head).
    #[arg(long, value_name = "S")]
    size: Option<u64>,
}

/// `seqshield audit tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    log: LogArgs,
    /// How many of the last events to print.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TAIL_LINES))]
    lines: u64,
    /// Keep printing new events as they are written (until interrupted).
    #[arg(long)]
    follow: bool,
}

/// `seqshield audit export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    log: LogArgs,
    /// JSON lines, one event a line: {"index":…,"leaf_hash":…,"event":{…}}
    /// (the only format for now).
    #[arg(long, required = true)]
    jsonl: bool,
    /// Output file, written atomically (default or -: stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// `seqshield audit checkpoint`.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Where to write the checkpoint. If FILE already holds one, the log
    /// must extend it before it is replaced.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// The head-signing public key (PEM) to trust, instead of the key file
    /// in the log directory.
    #[arg(long, value_name = "PEM")]
    key: Option<PathBuf>,
}

/// Runs `seqshield audit`.
pub fn run(ctx: &Ctx, c: AuditCommand) -> Result<()> {
    match c {
        AuditCommand::Verify(a) => verify(ctx, a),
        AuditCommand::Prove(a) => prove(ctx, a),
        AuditCommand::Tail(a) => tail(a),
        AuditCommand::Export(a) => export(ctx, a),
        AuditCommand::Checkpoint(a) => checkpoint(ctx, a),
    }
}

/// A located log: its directory and its file.
struct Log {
    dir: PathBuf,
    file: PathBuf,
}

impl LogArgs {
    fn locate(&self) -> Result<Log> {
        let need_file = |dir: PathBuf, flag: &str, given: &Path| -> Result<Log> {
            let file = dir.join(LOG_FILE);
            if !file.is_file() {
                return Err(bad_input(format!(
                    "{flag} {}: no audit log there ({} is missing)",
                    given.display(),
                    file.display()
                )));
            }
            Ok(Log { dir, file })
        };
        match (&self.data_dir, &self.log) {
            (Some(data), None) => {
                let dir = data.join("audit");
                if !dir.is_dir() {
                    return Err(bad_input(format!(
                        "--data-dir {}: no audit log there ({} is not a directory)",
                        data.display(),
                        dir.display()
                    )));
                }
                need_file(dir, "--data-dir", data)
            }
            (None, Some(p)) if p.is_dir() => need_file(p.clone(), "--log", p),
            (None, Some(p)) if p.is_file() => {
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
                Ok(Log { dir, file: p.clone() })
            }
            (None, Some(p)) => Err(bad_input(format!("--log {}: no such file or directory", p.display()))),
            _ => Err(bad_input("give exactly one of --data-dir and --log")),
        }
    }
}

/// Checks that a file named by `flag` exists before anything reads it.
fn existing(flag: &str, path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(bad_input(format!("{flag} {}: no such file", path.display())));
    }
    Ok(())
}

fn read_key(path: &Path) -> Result<VerifyingKey> {
    existing("--key", path)?;
    VerifyingKey::read(path).with_context(|| format!("cannot use --key {}", path.display()))
}

fn read_witness(flag: &str, path: &Path) -> Result<Checkpoint> {
    existing(flag, path)?;
    Checkpoint::read(path).map_err(|e| audit_error(e, &format!("{flag} {}", path.display())))
}

/// Translates a library error once: damage and bad signed state become
/// integrity failures (exit 5); I/O keeps its `io::Error` (exit 3).
fn audit_error(e: seqshield_audit::Error, what: &str) -> anyhow::Error {
    use seqshield_audit::Error as E;
    match e {
        E::Corrupt { .. } | E::NotAuditLog { .. } | E::BadEntry { .. } | E::HeadBeyondLog { .. } => {
            integrity(DAMAGED, format!("{what}: {e}"))
        }
        E::BadHead { .. } | E::HeadMismatch { .. } => integrity(VERIFY_FAILED, format!("{what}: {e}")),
        E::BadCheckpoint(_) => integrity("bad_checkpoint", format!("{what}: {e}")),
        e => anyhow::Error::new(e).context(what.to_owned()),
    }
}

// ---------------------------------------------------------------- reading

/// Where a reader stands: all it needs to go on from there.
#[derive(Clone, Copy, Debug)]
struct Position {
    /// File offset of the next record.
    offset: u64,
    /// Chain value of the record before it.
    chain: Hash,
    /// Index of the next record.
    index: u64,
}

impl Position {
    const START: Position = Position { offset: MAGIC.len() as u64, chain: GENESIS, index: 0 };
}

/// One record whose checksum and chain value are right.
struct Record<'a> {
    index: u64,
    entry: &'a [u8],
    leaf: Hash,
}

enum Next<'a> {
    Record(Record<'a>),
    /// The clean end of the file.
    End,
    /// The file ends inside a record starting at `offset`: a write in
    /// progress, or a crash's torn tail that the gateway cuts on restart.
    Torn {
        offset: u64,
    },
}

/// Reads a log file's records in order, checking each checksum and chain
/// value; damage other than a torn tail is an integrity error that names
/// the entry.
struct Records<'p, R> {
    path: &'p Path,
    scanner: Scanner<R>,
    chain: Hash,
    index: u64,
}

/// Opens the log file at `path` and checks its magic bytes.
fn open_log(path: &Path) -> Result<File> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; MAGIC.len()];
    if f.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(integrity(
            "not_an_audit_log",
            format!("{} is not a seqshield audit log (bad magic bytes)", path.display()),
        ));
    }
    Ok(f)
}

impl<'p, R: Read> Records<'p, R> {
    /// Reads from `reader`, which stands at `at.offset` of the file at `path`.
    fn new(path: &'p Path, reader: R, at: Position) -> Self {
        Self { path, scanner: Scanner::new(reader, at.offset), chain: at.chain, index: at.index }
    }

    fn position(&self) -> Position {
        Position { offset: self.scanner.offset(), chain: self.chain, index: self.index }
    }

    fn next(&mut self) -> Result<Next<'_>> {
        let index = self.index;
        let step = self.scanner.next_record().with_context(|| format!("cannot read {}", self.path.display()))?;
        match step {
            Step::Record { offset, entry, chain } => {
                let leaf = leaf_hash(entry);
                if chain_hash(&self.chain, &leaf) != chain {
                    return Err(damaged(index, offset, self.path, Damage::BrokenChain));
                }
                self.chain = chain;
                self.index += 1;
                Ok(Next::Record(Record { index, entry, leaf }))
            }
            Step::End => Ok(Next::End),
            Step::Damaged { offset, damage: Damage::Truncated } => Ok(Next::Torn { offset }),
            Step::Damaged { offset, damage } => Err(damaged(index, offset, self.path, damage)),
        }
    }
}

fn damaged(index: u64, offset: u64, path: &Path, damage: Damage) -> anyhow::Error {
    let why = match damage {
        Damage::BrokenChain => "its chain value does not follow from the records before it \
                                (a record was edited, removed, moved or inserted)"
            .to_owned(),
        d => d.to_string(),
    };
    let mut fields = Map::new();
    fields.insert("first_bad_index".into(), json!(index));
    anyhow::Error::new(Integrity {
        code: DAMAGED,
        message: format!(
            "audit log {} is damaged at entry {index} (byte {offset}): {why}; run `seqshield audit verify`",
            path.display()
        ),
        fields,
    })
}

/// Checks that entry `index` is a canonical event.
fn check_event(index: u64, entry: &[u8]) -> Result<()> {
    Event::from_entry(entry).map(drop).map_err(|e| {
        let mut fields = Map::new();
        fields.insert("first_bad_index".into(), json!(index));
        anyhow::Error::new(Integrity {
            code: DAMAGED,
            message: format!("entry {index} is not a valid event: {e}"),
            fields,
        })
    })
}

fn note_torn(offset: u64) {
    eprintln!("note: stopped at an incomplete record at byte {offset} (a write in progress, or a crash's torn tail)");
}

/// One JSON line: `{"index":i,["leaf_hash":hex,]"event":ENTRY}`. The entry
/// is an event's canonical JSON (checked by [`check_event`]), so it is
/// written as it is.
fn write_line(out: &mut impl Write, index: u64, leaf: Option<&Hash>, entry: &[u8]) -> io::Result<()> {
    write!(out, "{{\"index\":{index},")?;
    if let Some(leaf) = leaf {
        write!(out, "\"leaf_hash\":\"{}\",", hex::encode(leaf))?;
    }
    out.write_all(b"\"event\":")?;
    out.write_all(entry)?;
    out.write_all(b"}\n")
}

// ---------------------------------------------------------------- verify

fn problem_name(p: &Problem) -> &'static str {
    match p {
        Problem::Damaged(_) => "damaged",
        Problem::BrokenChain => "broken_chain",
        Problem::BadEvent(_) => "bad_event",
        Problem::BadHead { .. } => "bad_head",
        Problem::HeadOrder { .. } => "head_order",
        Problem::HeadMismatch { .. } => "head_mismatch",
        Problem::Missing { .. } => "missing",
        Problem::WitnessKey { .. } => "witness_key",
        Problem::WitnessMismatch { .. } => "witness_mismatch",
        Problem::Unsigned => "unsigned",
        _ => "other",
    }
}

fn source_name(s: KeySource) -> &'static str {
    match s {
        KeySource::Witness => "witness",
        KeySource::Given => "given",
        KeySource::LogDirectory => "log_directory",
    }
}

/// The `--json` fields of a report (without `ok`).
fn report_fields(r: &Report) -> Map<String, Value> {
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| json!({"index": f.index, "until": f.until, "problem": problem_name(&f.problem), "message": f.message}))
        .collect();
    let v = json!({
        "size": r.size,
        "root": hex::encode(r.root),
        "heads": r.heads,
        "heads_ok": r.heads_ok,
        "key_id": r.key.as_ref().map(|(id, _)| id),
        "key_source": r.key.as_ref().map(|(_, s)| source_name(*s)),
        "unsigned_tail": r.unsigned_tail,
        "first_bad_index": r.first_bad().map(|f| f.index),
        "findings": findings,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object"),
    }
}

/// Warns when heads were checked with the key file beside the log.
fn warn_key_source(r: &Report, log: &Log) {
    if let Some((id, KeySource::LogDirectory)) = &r.key {
        eprintln!(
            "warning: signed tree heads were checked with key {id} from {}; whoever can rewrite the log can \
             replace that file too. Pin the key: --witness FILE (from `seqshield audit checkpoint`) or --key PEM.",
            log.dir.join(KEY_FILE).display()
        );
    }
}

fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    let log = a.log.locate()?;
    let witness = a.witness.as_deref().map(|p| read_witness("--witness", p)).transpose()?;
    let key = a.key.as_deref().map(read_key).transpose()?;
    if let (Some(w), Some(k)) = (&witness, &key) {
        if w.key() != k {
            return Err(bad_input(format!(
                "--key is key {} but the witness pins key {}",
                k.key_id(),
                w.key().key_id()
            )));
        }
    }
    let opts = VerifyOptions { check_events: !a.no_events, key, witness, heads: None };
    let report = verify_log(&log.file, &opts).map_err(|e| audit_error(e, &format!("{}", log.file.display())))?;
    warn_key_source(&report, &log);
    let mut fields = report_fields(&report);
    if let Some(first) = report.first_bad() {
        let at = match first.until {
            Some(until) => format!("{} (the bad entry is in {}..{until})", first.index, first.index),
            None => first.index.to_string(),
        };
        if !ctx.json {
            println!("audit log {}: FAILED", log.file.display());
            println!("first bad index: {at}");
            for f in &report.findings {
                println!("  - {}", f.message);
            }
        }
        return Err(anyhow::Error::new(Integrity {
            code: VERIFY_FAILED,
            message: format!("audit log {} does not verify: first bad index {at}", log.file.display()),
            fields,
        }));
    }
    fields.insert("ok".into(), json!(true));
    ctx.report(Value::Object(fields), || {
        let key = match &report.key {
            Some((id, s)) => format!(
                "{id} ({})",
                match s {
                    KeySource::Witness => "pinned by the witness",
                    KeySource::Given => "given with --key",
                    KeySource::LogDirectory => "from the log directory",
                }
            ),
            None => "none (no key file and no signed heads)".to_owned(),
        };
        let n = report.unsigned_tail;
        let signed = match &report.latest_ok {
            Some(h) => format!("{n} (entries after the latest signed head, size {})", h.size),
            None => format!("{n} (no signed head covers any entry)"),
        };
        format!(
            "audit log {}: OK\nentries: {}\nroot: {}\nsigned tree heads: {} checked, {} ok\n\
             key: {key}\nunsigned tail: {signed}",
            log.file.display(),
            report.size,
            hex::encode(report.root),
            report.heads,
            report.heads_ok,
        )
    });
    Ok(())
}

// ---------------------------------------------------------------- prove

/// Every leaf hash of the log (up to a torn tail), and entry `want`'s bytes.
fn read_leaves(log: &Log, want: Option<u64>) -> Result<(Vec<Hash>, Option<Vec<u8>>)> {
    let file = open_log(&log.file)?;
    let mut records = Records::new(&log.file, BufReader::with_capacity(BUFFER, file), Position::START);
    let (mut leaves, mut entry) = (Vec::new(), None);
    loop {
        match records.next()? {
            Next::Record(r) => {
                if Some(r.index) == want {
                    entry = Some(r.entry.to_vec());
                }
                leaves.push(r.leaf);
            }
            Next::End => break,
            Next::Torn { offset } => {
                note_torn(offset);
                break;
            }
        }
    }
    Ok((leaves, entry))
}

/// The signed heads whose signature verifies with the log directory's key
/// file, in file order.
fn signed_heads(log: &Log) -> Result<Vec<SignedTreeHead>> {
    let read = read_heads(&log.dir.join(HEADS_FILE)).map_err(|e| audit_error(e, "cannot read the signed heads"))?;
    if read.heads.is_empty() {
        return Ok(Vec::new());
    }
    let key_path = log.dir.join(KEY_FILE);
    let key = VerifyingKey::read(&key_path)
        .with_context(|| format!("cannot read the head-signing key {}", key_path.display()))?;
    let total = read.heads.len();
    let good: Vec<SignedTreeHead> =
        read.heads.into_iter().filter_map(|h| h.ok()).filter(|h| h.verify(&key).is_ok()).collect();
    if good.len() < total {
        eprintln!(
            "warning: {} of {total} signed tree heads do not verify with {}; run `seqshield audit verify`",
            total - good.len(),
            key_path.display()
        );
    }
    Ok(good)
}

fn hexes(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(hex::encode).collect()
}

fn prove(ctx: &Ctx, a: ProveArgs) -> Result<()> {
    let log = a.log.locate()?;
    let (leaves, entry) = read_leaves(&log, a.index)?;
    let tree = StoredTree::from_leaves(leaves);
    let heads = signed_heads(&log)?;
    let size = match a.size {
        Some(s) => s,
        None => {
            let latest = heads.iter().max_by_key(|h| (h.size, h.timestamp_ms)).ok_or_else(|| {
                bad_input(
                    "the log has no signed tree head (that verifies) yet: \
                     give --size S to prove against an unsigned root",
                )
            })?;
            latest.size
        }
    };
    if size > tree.len() {
        if a.size.is_some() {
            return Err(bad_input(format!("--size {size}: the log has {} entries", tree.len())));
        }
        return Err(integrity(
            VERIFY_FAILED,
            format!(
                "a signed tree head covers {size} entries but the log has {}; run `seqshield audit verify`",
                tree.len()
            ),
        ));
    }
    let root = tree.root_at(size)?;
    let signed = heads.iter().filter(|h| h.size == size).max_by_key(|h| h.timestamp_ms);
    if let Some(h) = signed {
        if h.root != root {
            return Err(integrity(
                VERIFY_FAILED,
                format!("the log does not match its signed tree head at size {size}; run `seqshield audit verify`"),
            ));
        }
    }
    let signed_head = signed.map(serde_json::to_value).transpose()?.unwrap_or(Value::Null);

    if let Some(index) = a.index {
        if index >= size {
            return Err(bad_input(format!("--index {index}: the tree of size {size} has entries 0..{size}")));
        }
        let entry = entry.ok_or_else(|| anyhow!("entry {index} was not read"))?;
        check_event(index, &entry)?;
        let event: Value = serde_json::from_slice(&entry).context("an event is JSON")?;
        let leaf = tree.leaves()[index as usize];
        let proof = tree.inclusion_proof(index, size)?;
        if !verify_inclusion(&leaf, index, size, &proof, &root) {
            bail!("internal error: the inclusion proof of entry {index} in size {size} does not verify");
        }
        let v = json!({
            "ok": true, "index": index, "size": size, "leaf_hash": hex::encode(leaf), "entry": event,
            "proof": hexes(&proof), "root": hex::encode(root), "signed_head": signed_head,
        });
        ctx.report(v, || {
            format!(
                "index: {index}\nsize: {size}\nleaf_hash: {}\nentry: {}\nproof:{}\nroot: {}\nsigned_head: {}",
                hex::encode(leaf),
                String::from_utf8_lossy(&entry),
                proof.iter().map(|h| format!("\n  {}", hex::encode(h))).collect::<String>(),
                hex::encode(root),
                if signed_head.is_null() {
                    "none (size is not a signed head's)".to_owned()
                } else {
                    signed_head.to_string()
                },
            )
        });
    } else if let Some(from) = a.from {
        if from > size {
            return Err(bad_input(format!("--from {from}: larger than the tree size {size}")));
        }
        let from_root = tree.root_at(from)?;
        let proof = tree.consistency_proof(from, size)?;
        if !verify_consistency(from, size, &from_root, &root, &proof) {
            bail!("internal error: the consistency proof from {from} to {size} does not verify");
        }
        let v = json!({
            "ok": true, "from": from, "to": size, "from_root": hex::encode(from_root), "to_root": hex::encode(root),
            "proof": hexes(&proof), "signed_head": signed_head,
        });
        ctx.report(v, || {
            format!(
                "from: {from}\nto: {size}\nfrom_root: {}\nto_root: {}\nproof:{}\nsigned_head: {}",
                hex::encode(from_root),
                hex::encode(root),
                proof.iter().map(|h| format!("\n  {}", hex::encode(h))).collect::<String>(),
                if signed_head.is_null() {
                    "none (size is not a signed head's)".to_owned()
                } else {
                    signed_head.to_string()
                },
            )
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- tail

/// Whether a write failed because the reader went away (`| head`).
fn gone(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn tail(a: TailArgs) -> Result<()> {
    match tail_inner(a) {
        Err(e) if gone(&e) => Ok(()),
        r => r,
    }
}

fn tail_inner(a: TailArgs) -> Result<()> {
    let log = a.log.locate()?;
    let path = &log.file;
    let mut file = open_log(path)?;
    // First pass: where each of the last N records starts.
    let mut last: VecDeque<Position> = VecDeque::new();
    let mut end = {
        let mut records = Records::new(path, BufReader::with_capacity(BUFFER, &file), Position::START);
        loop {
            let at = records.position();
            match records.next()? {
                Next::Record(_) => {
                    if a.lines > 0 {
                        if last.len() as u64 == a.lines {
                            last.pop_front();
                        }
                        last.push_back(at);
                    }
                }
                Next::End => break,
                Next::Torn { offset } => {
                    if !a.follow {
                        note_torn(offset);
                    }
                    break;
                }
            }
        }
        records.position()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(BUFFER, stdout.lock());
    // Second pass: print them, checked again.
    if let Some(&first) = last.front() {
        file.seek(SeekFrom::Start(first.offset)).with_context(|| format!("cannot seek in {}", path.display()))?;
        let mut records = Records::new(path, BufReader::with_capacity(BUFFER, &file), first);
        while records.position().index < end.index {
            match records.next()? {
                Next::Record(r) => {
                    check_event(r.index, r.entry)?;
                    write_line(&mut out, r.index, None, r.entry)?;
                }
                _ => bail!("{} changed under us", path.display()),
            }
        }
    }
    out.flush()?;
    if !a.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let len = file.metadata().with_context(|| format!("cannot stat {}", path.display()))?.len();
        if len < end.offset {
            return Err(integrity(
                DAMAGED,
                format!(
                    "{} is shorter than when it was read ({len} < {} bytes): it was cut or replaced",
                    path.display(),
                    end.offset
                ),
            ));
        }
        if len == end.offset {
            continue;
        }
        file.seek(SeekFrom::Start(end.offset)).with_context(|| format!("cannot seek in {}", path.display()))?;
        let mut records = Records::new(path, BufReader::with_capacity(BUFFER, &file), end);
        // The end or a torn record stops this round; a torn one is read
        // again (and printed once whole) by a later poll.
        while let Next::Record(r) = records.next()? {
            check_event(r.index, r.entry)?;
            write_line(&mut out, r.index, None, r.entry)?;
        }
        end = records.position();
        out.flush()?;
    }
}

// ---------------------------------------------------------------- export

fn export(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    debug_assert!(a.jsonl, "clap requires --jsonl");
    let log = a.log.locate()?;
    let dest = a.output.clone().unwrap_or_else(|| PathBuf::from("-"));
    let file = open_log(&log.file)?;
    data_on_stdout(&dest);
    // Nothing reaches FILE unless every record read checks out: a failure
    // drops the temporary file.
    let mut out = BufWriter::with_capacity(BUFFER, Output::create(&dest, a.force)?);
    let mut records = Records::new(&log.file, BufReader::with_capacity(BUFFER, file), Position::START);
    let mut tree = CompactTree::new();
    loop {
        match records.next()? {
            Next::Record(r) => {
                check_event(r.index, r.entry)?;
                write_line(&mut out, r.index, Some(&r.leaf), r.entry)
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                tree.push(r.leaf);
            }
            Next::End => break,
            Next::Torn { offset } => {
                note_torn(offset);
                break;
            }
        }
    }
    let out =
        out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("cannot write {}", dest.display()))?;
    out.commit()?;
    let (n, root) = (tree.len(), hex::encode(tree.root()));
    ctx.report(json!({"ok": true, "entries": n, "root": root, "output": dest}), || {
        format!(
            "exported {n} events (root {root}) to {}",
            if dest == Path::new("-") { "stdout".into() } else { dest.display().to_string() }
        )
    });
    Ok(())
}

// ---------------------------------------------------------------- checkpoint

fn checkpoint(ctx: &Ctx, a: CheckpointArgs) -> Result<()> {
    let log = a.log.locate()?;
    let key = a.key.as_deref().map(read_key).transpose()?;
    if a.output.is_dir() {
        return Err(bad_input(format!("-o {}: is a directory", a.output.display())));
    }
    // Replacing a checkpoint: the log must still extend the old one.
    let previous = if a.output.exists() {
        Some(Checkpoint::read(&a.output).map_err(|e| {
            bad_input(format!("-o {} exists and is not a checkpoint ({e}); remove it first", a.output.display()))
        })?)
    } else {
        None
    };
    if let (Some(w), Some(k)) = (&previous, &key) {
        if w.key() != k {
            return Err(bad_input(format!(
                "--key is key {} but the checkpoint being replaced pins key {}; remove it first to change keys",
                k.key_id(),
                w.key().key_id()
            )));
        }
    }
    let opts = VerifyOptions { check_events: true, key: key.clone(), witness: previous.clone(), heads: None };
    let report = verify_log(&log.file, &opts).map_err(|e| audit_error(e, &format!("{}", log.file.display())))?;
    if let Some(first) = report.first_bad() {
        return Err(anyhow::Error::new(Integrity {
            code: VERIFY_FAILED,
            message: format!(
                "refusing to write a checkpoint: audit log {} does not verify: first bad index {}: {}",
                log.file.display(),
                first.index,
                first.message
            ),
            fields: report_fields(&report),
        }));
    }
    warn_key_source(&report, &log);
    let head = report
        .latest_ok
        .clone()
        .ok_or_else(|| anyhow!("the audit log {} has no signed tree head yet", log.file.display()))?;
    let key = match (previous, key) {
        (Some(w), _) => w.key().clone(),
        (None, Some(k)) => k,
        (None, None) => {
            let path = log.dir.join(KEY_FILE);
            VerifyingKey::read(&path).with_context(|| format!("cannot read the head-signing key {}", path.display()))?
        }
    };
    let leaves = leaf_hashes(&log.file, head.size).map_err(|e| audit_error(e, &format!("{}", log.file.display())))?;
    let cp = Checkpoint::new(head, key, &leaves).map_err(|e| audit_error(e, "cannot make the checkpoint"))?;
    cp.write(&a.output).map_err(|e| audit_error(e, "cannot write the checkpoint"))?;
    let (size, root, key_id) = (cp.head().size, hex::encode(cp.head().root), cp.key().key_id().to_owned());
    ctx.report(json!({"ok": true, "size": size, "root": root, "key_id": key_id, "path": a.output}), || {
        format!("checkpoint of size {size} (root {root}, key {key_id}) written to {}", a.output.display())
    });
    Ok(())
}
