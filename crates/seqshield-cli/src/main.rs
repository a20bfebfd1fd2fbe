//! `seqshield`: the command-line tool.

#![forbid(unsafe_code)]
// A binary: `pub` marks each module's interface to its siblings; nothing is exported.
#![allow(unreachable_pub)]

mod client;
mod cmd;
mod exit;
mod io;
mod kek;

/// Every heap block freed while an inference runs is zeroed first
/// (`seqshield_annotate::secmem`): activations do not linger in freed memory.
#[global_allocator]
static ALLOC: seqshield_annotate::secmem::WipeOnFree = seqshield_annotate::secmem::WipeOnFree::SYSTEM;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

/// Set when a command streams data to stdout, so reports go to stderr.
static DATA_ON_STDOUT: AtomicBool = AtomicBool::new(false);

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure
  2  bad command line or invalid input values (nothing was changed)
  3  a file could not be read or written
  4  key problem: wrong key, passphrase or PIN, no matching recipient
  5  integrity failure: the object is damaged, tampered with or malformed
  6  the gateway refused who you are or what you asked: not logged in, token
     expired, revoked or invalid, scope or clearance too low, access denied
  7  no usable GPU: no CUDA driver, no device at that index, or a build
     without CUDA (`seqshield gpu`)

With --json, results and errors are one JSON object on stdout (on stderr
when the data itself goes to stdout). Errors look like
  {\"ok\":false,\"error\":{\"code\":\"segment_auth_failed\",\"segment\":3,...}}";

/// seqshield: encrypted, tamper-evident containers for genomic data.
#[derive(Parser, Debug)]
#[command(name = "seqshield", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print machine-readable JSON results and errors.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bar.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Worker threads for encryption and decryption (default: all cores).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Segments per parallel batch (tuning; memory is about 2 × threads × N × segment size).
    #[arg(long, global = true, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    batch_segments: u16,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create, list and export key-encryption keys.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Encrypt a file into a seqshield object.
    Encrypt(cmd::crypt::EncryptArgs),
    /// Decrypt an object (output appears only once it has fully authenticated).
    Decrypt(cmd::crypt::DecryptArgs),
    /// Authenticate every segment, the Merkle root and the trailer: of a
    /// local object file, or (given an object id, `obj_…`) of an object in
    /// the gateway's store, re-read there.
    Verify(cmd::crypt::VerifyArgs),
    /// Re-wrap an object's data key for another KEK, rewriting only the header.
    Rewrap(cmd::crypt::RewrapArgs),
    /// Show an object's header (unauthenticated; no keys needed or shown).
    Inspect(cmd::crypt::InspectArgs),
    /// Convert an object to GA4GH Crypt4GH v1 for a Crypt4GH recipient.
    #[command(name = "export-c4gh")]
    ExportC4gh(cmd::c4gh::ExportArgs),
    /// Convert a GA4GH Crypt4GH v1 file into a seqshield object.
    #[command(name = "import-c4gh")]
    ImportC4gh(cmd::c4gh::ImportArgs),
    /// The whole story against a real `serve` on embedded defaults: TOTP login through PKCE,
    /// encrypted upload, the variant-calling pipeline as a TES task (and bare, for the
    /// overhead), the fetched call set scored against the planted truth, the verified audit log.
    Demo(cmd::demo::DemoArgs),
    /// Run the gateway: the token service and API behind strict TLS 1.3.
    Serve(cmd::serve::ServeArgs),
    /// Check the gateway's settings as `serve` loads them, or print their schema.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// List every setting or default of a gateway weaker than production,
    /// with how to fix it (changes nothing).
    Doctor(cmd::doctor::DoctorArgs),
    /// Manage login accounts of a gateway's data directory.
    #[command(subcommand)]
    User(cmd::admin::UserCommand),
    /// Manage OAuth clients of a gateway's data directory.
    #[command(subcommand)]
    Client(cmd::admin::ClientCommand),
    /// Load generators against a running gateway.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Verify, prove, follow, export and checkpoint a gateway's audit log (read-only).
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Log in to a gateway in the browser (OAuth 2.0 + PKCE, loopback
    /// redirect) and save the token client commands use.
    #[command(after_help = client::CONVENTION_HELP)]
    Login(cmd::login::LoginArgs),
    /// Revoke the saved token at the gateway and delete it.
    #[command(after_help = client::CONVENTION_HELP)]
    Logout(cmd::login::LogoutArgs),
    /// Show the claims of the token client commands would use, as the
    /// gateway verifies them.
    #[command(after_help = client::CONVENTION_HELP)]
    Whoami(cmd::login::WhoamiArgs),
    /// Annotate a VCF (or single variants) at the gateway: consequences,
    /// HGVS, and literature evidence from the protected model.
    #[command(after_help = client::CONVENTION_HELP)]
    Annotate(cmd::annotate::AnnotateArgs),
    /// Pack and verify encrypted, signed model bundles for the annotation service.
    #[command(subcommand)]
    Model(cmd::model::ModelCommand),
    /// Upload a file into the gateway's store, encrypted per its
    /// classification, in verified parts; resumes when run again.
    Put(cmd::store::PutArgs),
    /// Download an object, checking every part against its Merkle subtree
    /// root; resumes when run again.
    Get(cmd::store::GetArgs),
    /// List the objects the token may see.
    Ls(cmd::store::LsArgs),
    /// Delete an object by crypto-shredding: its wrapped keys are destroyed,
    /// then its blobs.
    Rm(cmd::store::RmArgs),
    /// Copy objects to a replica (cloud) store, re-wrapped for its KEK, with
    /// the Merkle root compared end to end.
    Sync(cmd::store::SyncArgs),
    /// Run one pipeline step isolated: namespaces, landlock, no capabilities, limits, seccomp.
    #[command(subcommand)]
    Sandbox(cmd::sandbox::SandboxCommand),
    /// Run a task's step from its signed manifest (started by the gateway's executors).
    #[command(subcommand, after_help = client::CONVENTION_HELP)]
    Worker(cmd::worker::WorkerCommand),
    /// GPU memory hygiene: check for a GPU, and scan for what device memory
    /// leaks between processes.
    #[command(subcommand)]
    Gpu(cmd::gpu::GpuCommand),
    /// Replay a job trace through the placement policy: queue waits with and
    /// without bursting to the cloud partition, and cloud core-hours spent.
    #[command(name = "burst-sim")]
    BurstSim(cmd::burst::BurstSimArgs),
}

/// Options every command sees.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// JSON output.
    pub json: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Crypto worker threads.
    pub threads: usize,
    /// Segments per batch.
    pub batch_segments: usize,
}

impl Ctx {
    /// Writer/reader tuning for this run.
    pub fn options(&self) -> seqshield_format::WriterOptions {
        seqshield_format::WriterOptions { threads: self.threads, batch_segments: self.batch_segments }
    }

    /// Prints a command's result: JSON or a human line.
    pub fn report(&self, value: serde_json::Value, human: impl FnOnce() -> String) {
        let text = if self.json { value.to_string() } else { human() };
        if text.is_empty() {
            return;
        }
        if DATA_ON_STDOUT.load(Ordering::Relaxed) {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// Marks that command data is being written to stdout.
pub fn data_on_stdout(output: &std::path::Path) {
    if output == std::path::Path::new("-") {
        DATA_ON_STDOUT.store(true, Ordering::Relaxed);
    }
}

/// An input file and an output file (`-` for stdin/stdout).
#[derive(Args, Debug, Clone)]
pub struct InOut {
    /// Input file, or - for stdin.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output file, or - for stdout.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let ctx =
        Ctx { json: cli.json, quiet: cli.quiet || cli.json, threads, batch_segments: usize::from(cli.batch_segments) };
    let command = match cli.command {
        // The tool's exit status passes through `sandbox run` unchanged.
        Command::Sandbox(c) => return cmd::sandbox::run(&ctx, c),
        other => other,
    };
    let result = match command {
        Command::Keys(c) => cmd::keys::run(&ctx, c),
        Command::Encrypt(a) => cmd::crypt::encrypt(&ctx, a),
        Command::Decrypt(a) => cmd::crypt::decrypt(&ctx, a),
        Command::Verify(a) => cmd::crypt::verify(&ctx, a),
        Command::Rewrap(a) => cmd::crypt::rewrap(&ctx, a),
        Command::Inspect(a) => cmd::crypt::inspect(&ctx, a),
        Command::ExportC4gh(a) => cmd::c4gh::export(&ctx, a),
        Command::ImportC4gh(a) => cmd::c4gh::import(&ctx, a),
        Command::Demo(a) => cmd::demo::run(&ctx, a),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
        Command::Config(c) => cmd::config::run(&ctx, c),
        Command::Doctor(a) => cmd::doctor::run(&ctx, a),
        Command::User(c) => cmd::admin::user(&ctx, c),
        Command::Client(c) => cmd::admin::client(&ctx, c),
        Command::Bench(c) => cmd::bench::run(&ctx, c),
        Command::Audit(c) => cmd::audit::run(&ctx, c),
        Command::Login(a) => cmd::login::login(&ctx, a),
        Command::Logout(a) => cmd::login::logout(&ctx, a),
        Command::Whoami(a) => cmd::login::whoami(&ctx, a),
        Command::Annotate(a) => cmd::annotate::run(&ctx, a),
        Command::Model(c) => cmd::model::run(&ctx, c),
        Command::Put(a) => cmd::store::put(&ctx, a),
        Command::Get(a) => cmd::store::get(&ctx, a),
        Command::Ls(a) => cmd::store::ls(&ctx, a),
        Command::Rm(a) => cmd::store::rm(&ctx, a),
        Command::Sync(a) => cmd::store::sync(&ctx, a),
        Command::Worker(c) => cmd::worker::run(&ctx, c),
        Command::BurstSim(a) => cmd::burst::run(&ctx, a),
        Command::Gpu(c) => cmd::gpu::run(&ctx, c),
        Command::Sandbox(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::from(exit::Exit::Ok as u8),
        Err(err) => {
            let (code, value) = exit::classify(&err);
            if ctx.json && !DATA_ON_STDOUT.load(Ordering::Relaxed) {
                println!("{value}");
            } else if ctx.json {
                eprintln!("{value}");
            } else {
                eprintln!("seqshield: error: {err:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}
