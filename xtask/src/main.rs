//! Project automation: `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks; if it passes locally, CI is green.
//! - `bench`: the end-to-end benchmark against next-plaid (see `bench.rs`),
//!   on debian-5k or, with `--scale`, on a generated corpus.
//! - `gen-data`: a synthetic corpus in debian-5k's layout (see `gendata.rs`).
//! - `gpu-check`: builds what the GPU machine runs and prints the command;
//!   `gpu-eval` reads that run's outputs there (see `gpu.rs`).
//!
//! xtask only orchestrates: it runs `$CARGO` so timed code is built with the
//! release profile, never with xtask's own debug build.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

mod bench;
mod ci;
mod gendata;
mod gpu;
mod machine;
mod measure;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "ci" => ci::run(&rest),
        "bench" => bench::run(&rest),
        "gen-data" => gendata::run(&rest),
        "gpu-check" => gpu::check(&rest),
        "gpu-eval" => gpu::eval(&rest),
        "" | "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <task> [options]\n\n  \
                 ci        fmt, clippy, tests, docs, benches compiled; prints a summary\n  \
                 bench     plaid vs next-plaid 1.8.5 side by side (debian-5k, or --scale 1m|10m); --help\n  \
                 gen-data  a synthetic corpus in debian-5k's layout; --help\n  \
                 gpu-check build the GPU machine's binaries and data, print its command; --help\n  \
                 gpu-eval  (on the GPU machine) the results table of crates/plaid-cuda/gpu/run.sh"
            );
            Ok(())
        }
        other => bail!("unknown task {other:?}; try `cargo xtask help`"),
    }
}

/// The cargo that invoked us (or `cargo`).
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The workspace root (xtask's parent directory).
pub(crate) fn root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(|p| p.to_path_buf()).unwrap_or(here)
}
