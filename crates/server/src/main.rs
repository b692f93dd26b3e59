//! `pullgate-serve`: the gateway alone, the binary the README's first
//! command builds. The full `pullgate` command runs the same server as
//! `pullgate serve`, beside reports, `map` and `generate`.

use clap::Parser;
use std::process::ExitCode;

/// Events are allocated on worker threads and freed on the writer thread;
/// glibc's arenas handle that cross-thread traffic poorly (malloc_consolidate
/// showed in profiles), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pullgate-serve",
    version,
    about = "Serve pullgate's gateway (embedded example mappings unless --config)"
)]
struct Cli {
    #[command(flatten)]
    serve: pullgate_server::ServeArgs,
}

fn main() -> ExitCode {
    match pullgate_server::run(Cli::parse().serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pullgate-serve: {error:#}");
            ExitCode::FAILURE
        }
    }
}
