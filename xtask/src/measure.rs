//! Measuring helpers for `bench`: running a child that prints one JSON line,
//! the machine's load around it, and the quality metrics of a ranking.
//!
//! Quality metrics follow `shared/tools/eval.py` exactly: recall@k =
//! |ours top-k ∩ exact top-k| / min(k, |exact top-k|), averaged over queries
//! whose exact row has a valid id; MRR@10 = mean over the queries that have a
//! relevant document in the qrels of 1/rank of the first relevant document in
//! our top 10 (0 if none).

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// What one measured child process left behind.
#[derive(Debug)]
pub(crate) struct StepOut {
    /// The last non-empty line of its stdout, parsed as JSON.
    pub(crate) json: Value,
    /// Wall-clock seconds from spawn to exit, as seen by xtask.
    pub(crate) wall_s: f64,
    /// CPU seconds (user + system) of the child and its children.
    pub(crate) cpu_s: f64,
    /// Cores other processes kept busy during the step (machine busy time minus the child's).
    pub(crate) other_cores: f64,
    /// Its stderr.
    pub(crate) stderr: String,
}

/// A command line as one copy-pasteable string (environment first).
pub(crate) fn show(cmd: &Command) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut parts = Vec::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            parts.push(format!(
                "{}={}",
                k.to_string_lossy(),
                quote(&v.to_string_lossy())
            ));
        }
    }
    parts.push(quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

/// Runs `cmd` to completion, capturing its output, and measures it. Fails
/// with the child's stderr when it exits unsuccessfully or prints no JSON.
pub(crate) fn run_json(cmd: &mut Command) -> Result<StepOut> {
    let shown = show(cmd);
    let tick = clock_ticks();
    let cpu0 = children_cpu_ticks()?;
    let busy0 = machine_busy_ticks()?;
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    let wall_s = t.elapsed().as_secs_f64();
    let busy1 = machine_busy_ticks()?;
    let cpu1 = children_cpu_ticks()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{shown} failed ({}):\n{stderr}", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{shown} printed nothing on stdout; stderr:\n{stderr}"))?;
    let json: Value = serde_json::from_str(line)
        .with_context(|| format!("{shown}: last stdout line is not JSON: {line}"))?;
    let cpu_s = cpu1.saturating_sub(cpu0) as f64 / tick;
    let busy_s = busy1.saturating_sub(busy0) as f64 / tick;
    let other_cores = ((busy_s - cpu_s) / wall_s.max(1e-9)).max(0.0);
    Ok(StepOut {
        json,
        wall_s,
        cpu_s,
        other_cores,
        stderr,
    })
}

/// Clock ticks per second of /proc's counters (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// `cutime + cstime` of this process: the CPU time of the children it has
/// waited for (fields 16 and 17 of /proc/self/stat).
fn children_cpu_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("/proc/self/stat: no ')'")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): field n is f[n - 3].
    let get = |n: usize| -> Result<u64> {
        f.get(n - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("/proc/self/stat: field {n}"))
    };
    Ok(get(16)? + get(17)?)
}

/// Busy ticks of the whole machine (all CPUs) from the `cpu` line of /proc/stat.
fn machine_busy_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("/proc/stat: no cpu line")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// Waits until the machine is quiet (under 0.2 busy cores over a 1 s window)
/// or `max_s` has passed; returns the busy cores of the last window (0 when
/// `max_s` is 0 and nothing was sampled).
pub(crate) fn wait_quiet(max_s: f64) -> Result<f64> {
    if max_s <= 0.0 {
        return Ok(0.0);
    }
    let tick = clock_ticks();
    let start = Instant::now();
    loop {
        let b0 = machine_busy_ticks()?;
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let busy =
            machine_busy_ticks()?.saturating_sub(b0) as f64 / tick / t.elapsed().as_secs_f64();
        if busy < 0.2 || start.elapsed().as_secs_f64() >= max_s {
            return Ok(busy);
        }
    }
}

/// Total bytes of every regular file under `dir`, recursively.
pub(crate) fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let m = e.metadata()?;
        if m.is_dir() {
            total += dir_bytes(&e.path())?;
        } else if m.is_file() {
            total += m.len();
        }
    }
    Ok(total)
}

/// A `[rows, cols]` integer matrix (ids) from an npy file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ids {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<i64>,
}

impl Ids {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let arr = plaid_storage::npy::read_npy(path)?;
        let [rows, cols] = arr
            .dims::<2>()
            .map_err(|kind| anyhow::anyhow!("{}: {kind}", path.display()))?;
        let data = arr
            .to_i64_vec()
            .map_err(|kind| anyhow::anyhow!("{}: {kind}", path.display()))?;
        Ok(Self { rows, cols, data })
    }

    fn row(&self, r: usize) -> &[i64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// recall@k of `ours` against `gt` over the first `min(rows)` queries, or
/// `None` when either side has fewer than `k` columns or no query counts.
pub(crate) fn recall_at(ours: &Ids, gt: &Ids, k: usize) -> Option<f64> {
    if ours.cols < k || gt.cols < k {
        return None;
    }
    let mut sum = 0.0;
    let mut n = 0usize;
    for r in 0..ours.rows.min(gt.rows) {
        let g: HashSet<i64> = gt.row(r)[..k].iter().copied().filter(|&x| x >= 0).collect();
        if g.is_empty() {
            continue;
        }
        let o: HashSet<i64> = ours.row(r)[..k]
            .iter()
            .copied()
            .filter(|&x| x >= 0)
            .collect();
        sum += o.intersection(&g).count() as f64 / k.min(g.len()) as f64;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Relevant documents per query (`qid docid [rel]` or TREC `qid iter docid rel`
/// lines; unparsable lines are skipped, `rel > 0` is relevant).
pub(crate) fn read_qrels(path: &Path) -> Result<BTreeMap<usize, HashSet<i64>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rel: BTreeMap<usize, HashSet<i64>> = BTreeMap::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_whitespace().collect();
        let (q, d, r) = match p.len() {
            0 | 1 => continue,
            2 => (p[0], p[1], "1"),
            3 => (p[0], p[1], p[2]),
            _ => (p[0], p[2], p[3]),
        };
        let (Ok(q), Ok(d), Ok(r)) = (q.parse::<usize>(), d.parse::<i64>(), r.parse::<f64>()) else {
            continue;
        };
        if r > 0.0 {
            rel.entry(q).or_default().insert(d);
        }
    }
    Ok(rel)
}

/// MRR@k of `ours` against the qrels (queries beyond `ours.rows` are ignored).
pub(crate) fn mrr_at(ours: &Ids, rel: &BTreeMap<usize, HashSet<i64>>, k: usize) -> Option<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for (&q, docs) in rel {
        if q >= ours.rows {
            continue;
        }
        let row = ours.row(q);
        if let Some(rank) = row[..k.min(row.len())]
            .iter()
            .position(|d| docs.contains(d))
        {
            sum += 1.0 / (rank + 1) as f64;
        }
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rows: usize, cols: usize, data: &[i64]) -> Ids {
        Ids {
            rows,
            cols,
            data: data.to_vec(),
        }
    }

    #[test]
    fn recall_counts_overlap_ignoring_order_and_padding() {
        let gt = ids(2, 2, &[1, 2, 3, 4]);
        let ours = ids(2, 2, &[2, 1, 3, -1]);
        assert_eq!(recall_at(&ours, &gt, 2), Some(0.75));
        assert_eq!(recall_at(&ours, &gt, 1), Some(0.5));
        assert_eq!(recall_at(&ours, &gt, 3), None);
    }

    #[test]
    fn recall_uses_only_rows_with_ground_truth() {
        // Ground truth for the first query only (a sample), padded gt row skipped.
        let gt = ids(2, 2, &[5, -1, -1, -1]);
        let ours = ids(3, 2, &[5, 6, 7, 8, 9, 10]);
        assert_eq!(recall_at(&ours, &gt, 2), Some(1.0));
    }

    #[test]
    fn mrr_uses_first_relevant_rank() {
        let dir = std::env::temp_dir().join(format!("xtask-qrels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qrels.tsv");
        std::fs::write(&path, "qid\tdocid\n0\t7\n1\t0\t9\t1\n2 3 0\n").unwrap();
        let rel = read_qrels(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rel.len(), 2, "header and rel=0 lines are skipped");
        let ours = ids(2, 3, &[1, 7, 2, 9, 0, 4]);
        // Query 0: relevant at rank 2; query 1: doc 9 at rank 1.
        assert_eq!(mrr_at(&ours, &rel, 10), Some(0.75));
        assert_eq!(mrr_at(&ours, &rel, 1), Some(0.5));
    }
}
