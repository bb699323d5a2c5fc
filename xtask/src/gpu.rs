//! `cargo xtask gpu-check`: everything the GPU machine needs, built here.
//!
//! The GPU machine has no Rust toolchain and no network, receives at most
//! 64 MiB of working tree, and lends 15 minutes of device time per session.
//! So this task
//! 1. writes a debian-5k subset (`--docs` documents, `--queries` plain and
//!    masked queries, float16, with exact MaxSim top-100 over the subset)
//!    into `.gpu-data/`,
//! 2. builds the release `plaid` CLI with the `cuda` feature, `xtask` (for
//!    `gen-data` and `gpu-eval` there) and the plaid-cuda test binaries into
//!    `.gpu-bin/` (stripped),
//! 3. prints the one device command that runs them all
//!    (`crates/plaid-cuda/gpu/run.sh`).
//!
//! `cargo xtask gpu-eval DIR` runs on the GPU machine (from `.gpu-bin/xtask`):
//! it reads the JSON summaries and id files that `run.sh` leaves in `DIR` and
//! prints the results table with the card's name.

use crate::gendata::exact_topk;
use crate::measure::{Ids, recall_at};
use crate::{cargo, root};
use anyhow::{Context, Result, bail};
use half::f16;
use plaid_storage::npy::{read_npy, write_npy};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask gpu-check [--docs N] [--queries Q] [--data DIR]

  --docs N      debian-5k documents in the subset (default 2500)
  --queries Q   plain and masked queries in the subset (default 500 each)
  --data DIR    debian-5k folder (default ../shared/data/debian-5k)";

const DIM: usize = 128;

/// `cargo xtask gpu-check ...`.
pub(crate) fn check(args: &[String]) -> Result<()> {
    let mut docs = 2500usize;
    let mut queries = 500usize;
    let mut data = root().join("../shared/data/debian-5k");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--docs" => docs = val()?.parse()?,
            "--queries" => queries = val()?.parse()?,
            "--data" => data = PathBuf::from(val()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    let out = root().join(".gpu-data");
    subset(&data, &out, docs, queries)?;
    let bin = root().join(".gpu-bin");
    build(&bin)?;
    let size = crate::measure::dir_bytes(&out)? + crate::measure::dir_bytes(&bin)?;
    println!(
        "\n.gpu-data and .gpu-bin hold {:.1} MiB. Run on the GPU machine (device tool):\n  \
         command: set -o pipefail; bash crates/plaid-cuda/gpu/run.sh 2>&1 | tee $OUT/gpu.log\n  \
         carry:   [\".gpu-bin\", \".gpu-data\"]\n  timeout_s: 540",
        size as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn f16_rows(path: &Path) -> Result<(Vec<f16>, usize)> {
    let arr = read_npy(path)?;
    let [rows, dim] = arr
        .dims::<2>()
        .map_err(|k| anyhow::anyhow!("{}: {k}", path.display()))?;
    if dim != DIM {
        bail!("{}: dim {dim}, expected {DIM}", path.display());
    }
    let v = arr
        .as_slice::<f16>()
        .map_err(|k| anyhow::anyhow!("{}: {k}", path.display()))?
        .to_vec();
    Ok((v, rows))
}

fn lengths(path: &Path) -> Result<Vec<usize>> {
    let arr = read_npy(path)?;
    arr.to_i64_vec()
        .map_err(|k| anyhow::anyhow!("{}: {k}", path.display()))?
        .into_iter()
        .map(|v| usize::try_from(v).with_context(|| format!("{}: negative length", path.display())))
        .collect()
}

fn write<T: plaid_storage::npy::Element>(
    dir: &Path,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join(name))?);
    write_npy(&mut f, shape, data).with_context(|| format!("writing {name}"))?;
    Ok(())
}

/// Writes the debian-5k subset with its exact ground truth.
fn subset(src: &Path, out: &Path, docs: usize, nq: usize) -> Result<()> {
    let (emb, _) = f16_rows(&src.join("embeddings.npy"))?;
    let lens = lengths(&src.join("doclens.npy"))?;
    let docs = docs.min(lens.len());
    let lens = &lens[..docs];
    let tokens: usize = lens.iter().sum();
    std::fs::create_dir_all(out)?;
    write(out, "embeddings.npy", &[tokens, DIM], &emb[..tokens * DIM])?;
    let lens64: Vec<i64> = lens.iter().map(|&l| l as i64).collect();
    write(out, "doclens.npy", &[docs], &lens64)?;
    for (kind, qfile, lfile) in [
        ("plain", "queries.npy", "query_lens.npy"),
        ("masked", "queries_masked.npy", "query_masked_lens.npy"),
    ] {
        let (q, _) = f16_rows(&src.join(qfile))?;
        let ql = lengths(&src.join(lfile))?;
        let ql = &ql[..nq.min(ql.len())];
        let rows: usize = ql.iter().sum();
        write(
            out,
            &format!("queries_{kind}.npy"),
            &[rows, DIM],
            &q[..rows * DIM],
        )?;
        let ql64: Vec<i64> = ql.iter().map(|&l| l as i64).collect();
        write(out, &format!("lens_{kind}.npy"), &[ql.len()], &ql64)?;
        let qf: Vec<f32> = q[..rows * DIM].iter().map(|v| v.to_f32()).collect();
        let (ids, _) = exact_topk(&emb[..tokens * DIM], lens, &qf, ql, 100);
        let k = ids.len() / ql.len().max(1);
        write(out, &format!("gt_{kind}.npy"), &[ql.len(), k], &ids)?;
    }
    eprintln!(
        "wrote {docs} documents ({tokens} tokens) and {nq} + {nq} queries to {}",
        out.display()
    );
    Ok(())
}

fn run(cmd: &mut Command) -> Result<std::process::Output> {
    let o = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !o.status.success() {
        bail!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(o)
}

/// Builds the release binaries into `bin`, stripped.
fn build(bin: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(bin);
    std::fs::create_dir_all(bin)?;
    let target = root().join("target/release");
    eprintln!("building plaid (cuda) and xtask, release ...");
    run(Command::new(cargo())
        .args([
            "build",
            "--release",
            "-p",
            "plaid",
            "--features",
            "cuda",
            "--bin",
            "plaid",
        ])
        .current_dir(root()))?;
    run(Command::new(cargo())
        .args(["build", "--release", "-p", "xtask"])
        .current_dir(root()))?;
    std::fs::copy(target.join("plaid"), bin.join("plaid"))?;
    std::fs::copy(target.join("xtask"), bin.join("xtask"))?;
    eprintln!("building the plaid-cuda tests, release ...");
    let o = run(Command::new(cargo())
        .args([
            "test",
            "--release",
            "-p",
            "plaid-cuda",
            "--no-run",
            "--message-format=json",
        ])
        .current_dir(root()))?;
    let mut n = 0;
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" || v["profile"]["test"] != true {
            continue;
        }
        if let (Some(exe), Some(name)) = (v["executable"].as_str(), v["target"]["name"].as_str()) {
            std::fs::copy(exe, bin.join(format!("test-{name}")))?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("no plaid-cuda test binaries were built");
    }
    for e in std::fs::read_dir(bin)? {
        let p = e?.path();
        run(Command::new("strip").arg(&p))?;
    }
    Ok(())
}

/// One search run's results, read from `DIR/<name>.json` and `DIR/<name>.npy`.
struct SearchRun {
    name: String,
    summary: Value,
    ids: Option<Ids>,
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    // The CLI prints its summary as the last line.
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
}

/// Share of queries whose top-`k` ids are identical in `a` and `b`.
fn same_topk(a: &Ids, b: &Ids, k: usize) -> Option<f64> {
    if a.cols < k || b.cols < k {
        return None;
    }
    let n = a.rows.min(b.rows);
    let same = (0..n)
        .filter(|&r| a.data[r * a.cols..r * a.cols + k] == b.data[r * b.cols..r * b.cols + k])
        .count();
    (n > 0).then(|| same as f64 / n as f64)
}

fn num(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_f64) {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => "–".into(),
    }
}

/// `cargo xtask gpu-eval DIR DATA [G10]`: the results table of a GPU run.
pub(crate) fn eval(args: &[String]) -> Result<()> {
    let [dir, data, rest @ ..] = args else {
        bail!("usage: xtask gpu-eval DIR DATA [G10M_DIR]");
    };
    let (dir, data) = (PathBuf::from(dir), PathBuf::from(data));
    let g10 = rest.first().map(PathBuf::from);
    let card = std::fs::read_to_string(dir.join("card.txt")).unwrap_or_default();
    println!("# GPU results\n\ncard: {}", card.trim());
    println!(
        "\n## Builds\n\n| build | seconds | tokens | centroids | bytes | peak RSS MiB |\n|---|---|---|---|---|---|"
    );
    for b in [
        "build_sub_cpu",
        "build_sub_gpu",
        "build_g10_gpu",
        "build_g10_cpu",
    ] {
        if let Some(v) = read_json(&dir.join(format!("{b}.json"))) {
            println!(
                "| {b} | {} | {} | {} | {} | {:.0} |",
                num(&v, "build_s"),
                num(&v, "num_tokens"),
                num(&v, "num_centroids"),
                num(&v, "index_bytes"),
                v["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0
            );
        } else if let Ok(t) = std::fs::read_to_string(dir.join(format!("{b}.timeout"))) {
            println!("| {b} | > {} (stopped) | | | | |", t.trim());
        }
    }
    let mut runs = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("s_") && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    names.sort();
    for name in names {
        let Some(summary) = read_json(&dir.join(format!("{name}.json"))) else {
            continue;
        };
        let ids = Ids::read(&dir.join(format!("{name}.npy"))).ok();
        runs.push(SearchRun { name, summary, ids });
    }
    println!(
        "\n## Searches (k = 100)\n\n| run | queries | qps (one at a time) | p50 ms | p95 ms | batch qps | R@10 | R@100 | same top-10 as CPU |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &runs {
        // s_<index>_<queries>_<device>[_exh]
        let parts: Vec<&str> = r.name.split('_').collect();
        let gt = match (parts.get(1), parts.get(2)) {
            (Some(&"g10"), _) => g10
                .as_ref()
                .and_then(|g| Ids::read(&g.join("gt_ids.npy")).ok()),
            (_, Some(q)) => Ids::read(&data.join(format!("gt_{q}.npy"))).ok(),
            _ => None,
        };
        let recall = |k| match (&r.ids, &gt) {
            (Some(o), Some(g)) => recall_at(o, g, k).map_or("–".into(), |x| format!("{x:.4}")),
            _ => "–".into(),
        };
        // The CPU run of the same index and queries (exhaustive with exhaustive).
        let twin = match parts.as_slice() {
            ["s", idx, qs, "cuda", extra @ ..] => {
                let exh = if extra.contains(&"exh") { "_exh" } else { "" };
                format!("s_{idx}_{qs}_cpu{exh}")
            }
            _ => r.name.clone(),
        };
        let same = if twin != r.name {
            runs.iter()
                .find(|o| o.name == twin)
                .and_then(|o| match (&r.ids, &o.ids) {
                    (Some(a), Some(b)) => same_topk(a, b, 10),
                    _ => None,
                })
                .map_or("–".into(), |x| format!("{:.1} %", 100.0 * x))
        } else {
            "–".into()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            num(&r.summary, "num_queries"),
            num(&r.summary, "qps"),
            num(&r.summary, "p50_ms"),
            num(&r.summary, "p95_ms"),
            num(&r.summary, "batch_qps"),
            recall(10),
            recall(100),
            same
        );
    }
    for r in &runs {
        if !r.summary["profile"].is_null() {
            println!("\nprofile {}: {}", r.name, r.summary["profile"]);
        }
    }
    Ok(())
}
