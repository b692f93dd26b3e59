//! `pullgate`: the command-line entry point. It only wires adapters to the
//! domain and the router.

mod generate;
mod map;
mod refresh;
mod replay;
mod report;

use clap::{Parser, Subcommand};

/// Events are allocated on worker threads and freed on the writer thread;
/// glibc's arenas handle that cross-thread traffic poorly (malloc_consolidate
/// showed in profiles), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pullgate",
    version,
    about = "Your own download address for container images, Helm charts and release files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway locally (embedded example mappings unless --config).
    Serve(Box<pullgate_server::ServeArgs>),
    /// Re-send events to Firehose (event lines, or logged undelivered ones).
    Replay(replay::ReplayArgs),
    /// Fetch the cloud and CI providers' published IP ranges into a directory.
    RefreshRanges(refresh::RefreshArgs),
    /// Add, remove, list, show, import or export mappings (DynamoDB table or local file).
    Map(map::MapArgs),
    /// Adoption report over local event files, or Athena with --athena.
    Report(Box<report::ReportArgs>),
    /// Write synthetic events (realistic mixes) for demos and benchmarks.
    Generate(generate::GenerateArgs),
    /// Check a mapping file and print what it maps.
    CheckMappings {
        /// Mapping file (TOML).
        file: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => pullgate_server::run(*args),
        Command::CheckMappings { file } => pullgate_server::check_mappings(&file),
        Command::Replay(args) => replay::run(args),
        Command::RefreshRanges(args) => refresh::run(args),
        Command::Report(args) => report::run(*args),
        Command::Generate(args) => generate::run(args),
        Command::Map(args) => map::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pullgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}
