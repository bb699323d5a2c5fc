//! `cargo xtask ci`: fmt check, clippy with warnings denied, every test
//! (property tests and the crash test included), tests without default
//! features, docs with warnings denied, benches compiled. Ends with a summary
//! of what ran and what was skipped, and why.

use crate::{cargo, root};
use anyhow::{Result, bail};
use std::process::Command;
use std::time::Instant;

struct Step {
    name: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
}

fn step(name: &'static str, args: &[&'static str]) -> Step {
    Step {
        name,
        args: args.to_vec(),
        env: Vec::new(),
    }
}

pub(crate) fn run(_args: &[String]) -> Result<()> {
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
        step(
            "tests",
            &[
                "test",
                "--workspace",
                "--all-targets",
                "--exclude",
                "plaid-cuda",
            ],
        ),
        step("doc tests", &["test", "--workspace", "--doc"]),
        step(
            "plaid without default features",
            &["test", "-p", "plaid", "--no-default-features", "--lib"],
        ),
        Step {
            name: "docs",
            args: vec!["doc", "--workspace", "--no-deps"],
            env: vec![("RUSTDOCFLAGS", "-D warnings")],
        },
        step("benches compile", &["bench", "--workspace", "--no-run"]),
    ];
    let mut summary: Vec<(String, String)> = Vec::new();
    let mut failed = Vec::new();
    for s in &steps {
        let t = Instant::now();
        eprintln!("==> {} (cargo {})", s.name, s.args.join(" "));
        let mut cmd = Command::new(cargo());
        cmd.args(&s.args).current_dir(root());
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
    // plaid-cuda's tests: they skip (printing `SKIP <test>: <why>`) where no
    // GPU or NVRTC is usable; count those lines so a skip is never silent.
    let t = Instant::now();
    eprintln!("==> plaid-cuda tests (cargo test -p plaid-cuda -- --nocapture)");
    let out = Command::new(cargo())
        .args(["test", "-p", "plaid-cuda", "--", "--nocapture"])
        .current_dir(root())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{text}");
    let skips: Vec<&str> = text.lines().filter(|l| l.starts_with("SKIP ")).collect();
    let mut reasons: Vec<&str> = skips
        .iter()
        .filter_map(|l| l.split_once(": ").map(|(_, why)| why))
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    let ok = out.status.success();
    summary.push((
        "plaid-cuda tests".into(),
        format!(
            "{} in {:.0} s; {} skipped ({})",
            if ok { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64(),
            skips.len(),
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join("; ")
            }
        ),
    ));
    if !ok {
        failed.push("plaid-cuda tests");
    }
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
