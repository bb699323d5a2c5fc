//! Flags, then typed configuration, then calls into the facade.

mod commands;
mod flags;
#[cfg(feature = "cuda")]
mod gpu;
mod io;
mod live;

use clap::Parser;

/// Parses the command line and runs the command.
pub(crate) fn run() -> anyhow::Result<()> {
    let args = flags::Cli::parse();
    let threads = args.command.threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?;
    pool.install(|| commands::dispatch(args.command))
}
