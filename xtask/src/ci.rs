//! `cargo xtask ci`: fmt check, clippy with warnings denied, every test
//! (property tests, the crash test, the GPU tests and the benches in test mode
//! included), lints without default features, docs with warnings denied. Ends
//! with a summary of what ran and what was skipped, and why.

use crate::{cargo, root};
use anyhow::{Result, bail};
use std::process::Command;
use std::time::Instant;

/// Where the GPU tests log their skips, relative to the workspace root.
const SKIP_LOG: &str = "target/ci-gpu-skips.log";

struct Step {
    name: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
}

fn step(name: &'static str, args: &[&'static str]) -> Step {
    Step {
        name,
        args: args.to_vec(),
        env: Vec::new(),
    }
}

pub(crate) fn run(_args: &[String]) -> Result<()> {
    // The GPU tests skip where no device or NVRTC is usable and log each skip
    // to this file, so the summary can say how many and why.
    let skip_log = root().join(SKIP_LOG);
    if let Err(e) = std::fs::remove_file(&skip_log)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        bail!("cannot clear {}: {e}", skip_log.display());
    }
    let steps = vec![
        step("fmt", &["fmt", "--all", "--", "--check"]),
        step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        Step {
            name: "tests",
            args: vec!["test", "--workspace", "--all-targets"],
            env: vec![("PLAID_SKIP_LOG", skip_log.display().to_string())],
        },
        step("doc tests", &["test", "--workspace", "--doc"]),
        // Without the CLI feature: type-checked with lints (a full test build
        // would compile the dependency tree a third time for its feature set).
        step(
            "plaid without default features",
            &[
                "clippy",
                "-p",
                "plaid",
                "--no-default-features",
                "--lib",
                "--tests",
                "--",
                "-D",
                "warnings",
            ],
        ),
        Step {
            name: "docs",
            args: vec!["doc", "--workspace", "--no-deps"],
            env: vec![("RUSTDOCFLAGS", "-D warnings".into())],
        },
    ];
    let mut summary: Vec<(String, String)> = Vec::new();
    let mut failed = Vec::new();
    for s in &steps {
        let t = Instant::now();
        eprintln!("==> {} (cargo {})", s.name, s.args.join(" "));
        let mut cmd = Command::new(cargo());
        // Incremental caches only cost disk on a one-off build.
        cmd.args(&s.args)
            .current_dir(root())
            .env("CARGO_INCREMENTAL", "0");
        for (k, v) in &s.env {
            cmd.env(k, v);
        }
        let ok = cmd.status()?.success();
        let secs = t.elapsed().as_secs_f64();
        summary.push((
            s.name.to_string(),
            format!("{} in {secs:.0} s", if ok { "ok" } else { "FAILED" }),
        ));
        if !ok {
            failed.push(s.name);
        }
    }
    let skipped = std::fs::read_to_string(&skip_log).unwrap_or_default();
    let skips: Vec<&str> = skipped.lines().collect();
    let mut reasons: Vec<&str> = skips
        .iter()
        .filter_map(|l| l.split_once(": ").map(|(_, why)| why))
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    summary.push((
        "GPU tests (in tests)".into(),
        format!(
            "{} skipped{}",
            skips.len(),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join("; "))
            }
        ),
    ));
    // What we cannot run here, and why.
    let has_miri = Command::new(cargo())
        .args(["miri", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    summary.push((
        "miri".into(),
        if has_miri {
            "skipped: run `cargo miri test -p plaid-codec` by hand (slow)".into()
        } else {
            "skipped: cargo-miri is not installed on this machine".into()
        },
    ));
    summary.push((
        "msrv build".into(),
        "skipped: only the machine's toolchain is available; rust-version is declared in Cargo.toml".into(),
    ));
    eprintln!("\nsummary:");
    for (name, result) in &summary {
        eprintln!("  {name:<34} {result}");
    }
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
