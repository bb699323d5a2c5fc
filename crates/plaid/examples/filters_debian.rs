//! Filtered search on debian-5k: recall against exact MaxSim over each
//! filtered subset, and latency against unfiltered search.
//!
//! ```text
//! cargo run --release -p plaid --example filters_debian -- [DATA_DIR] [--queries N] [--index DIR]
//! ```
//!
//! `DATA_DIR` defaults to `../shared/data/debian-5k` next to the workspace
//! root; when it is absent the example prints why and exits successfully.
//! It builds an index (nbits 4, defaults) of the embeddings with the
//! `section`, `priority`, `installed_size` and `package` fields of
//! `docs.jsonl` as metadata (or reuses `--index DIR` when it already holds
//! one), then for three filters selecting about 1 %, 10 % and 50 % of the
//! documents:
//! - ground truth: exact float MaxSim of each query against the original
//!   (uncompressed) embeddings of every document in the subset;
//! - recall@10 of `Index::search_filtered` against it;
//! - per-query latency (filter resolution through SQLite included) next to
//!   unfiltered `Index::search`, on one thread, median of 3 timed passes.

// A command-line tool: it reports on stdout.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use ndarray::{Array2, ArrayView2};
use plaid::storage::npy::read_npy;
use plaid::types::DocId;
use plaid::{Documents, Filter, FilterPlan, Index, IndexConfig, SearchParams, Value};
use serde_json::Value as Json;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

fn f32s(path: &Path) -> Res<(Vec<f32>, Vec<usize>)> {
    let a = read_npy(path)?;
    let shape = a.shape().to_vec();
    let v = a.to_f32_vec().map_err(|kind| plaid::storage::Error::Npy {
        path: path.to_path_buf(),
        kind,
    })?;
    Ok((v, shape))
}

fn lens(path: &Path) -> Res<Vec<usize>> {
    let a = read_npy(path)?;
    let v = a.to_i64_vec().map_err(|kind| plaid::storage::Error::Npy {
        path: path.to_path_buf(),
        kind,
    })?;
    Ok(v.into_iter().map(|x| x as usize).collect())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Exact float MaxSim of `q` (`[nq, dim]`) against each document of the
/// subset whose token rows are stacked in `sub` with `bounds`; top `k` ids.
fn exact_top(
    q: ArrayView2<'_, f32>,
    sub: &Array2<f32>,
    docs: &[(DocId, usize, usize)],
    k: usize,
) -> Vec<DocId> {
    let s = sub.dot(&q.t()); // [T_sub, nq]
    let mut scored: Vec<(f32, DocId)> = docs
        .iter()
        .map(|&(id, a, b)| {
            let mut total = 0.0f32;
            for j in 0..q.nrows() {
                let mut m = f32::NEG_INFINITY;
                for t in a..b {
                    m = m.max(s[[t, j]]);
                }
                total += m;
            }
            (total, id)
        })
        .collect();
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut data: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian-5k");
    let mut nqueries = usize::MAX;
    let mut index_dir: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--queries" => nqueries = it.next().ok_or("--queries N")?.parse()?,
            "--index" => index_dir = Some(it.next().ok_or("--index DIR")?.into()),
            other => data = other.into(),
        }
    }
    if !data.join("docs.jsonl").is_file() {
        println!("skipped: no debian-5k data at {}", data.display());
        return Ok(());
    }
    let (emb, eshape) = f32s(&data.join("embeddings.npy"))?;
    let dim = eshape[1];
    let doclens = lens(&data.join("doclens.npy"))?;
    let (qemb, _) = f32s(&data.join("queries.npy"))?;
    let qlens = lens(&data.join("query_lens.npy"))?;
    let metadata: Vec<Json> = std::fs::read_to_string(data.join("docs.jsonl"))?
        .lines()
        .map(|l| -> Res<Json> {
            let v: Json = serde_json::from_str(l)?;
            Ok(serde_json::json!({
                "section": v["section"], "priority": v["priority"],
                "installed_size": v["installed_size"], "package": v["package"],
            }))
        })
        .collect::<Res<_>>()?;

    let tmp = tempfile::tempdir()?;
    let dir = index_dir.unwrap_or_else(|| tmp.path().join("idx"));
    let index = if dir.join("manifest.json").is_file() {
        Index::open(&dir)?
    } else {
        let t = Instant::now();
        let docs = Documents::Flat {
            data: &emb,
            dim,
            lens: &doclens,
        };
        let index = Index::create_with_metadata(docs, &dir, &IndexConfig::default(), &metadata)?;
        println!(
            "built {} docs with metadata in {:.1} s",
            index.num_docs(),
            t.elapsed().as_secs_f64()
        );
        index
    };

    let mut offs = vec![0usize];
    for l in &doclens {
        offs.push(offs.last().unwrap() + l);
    }
    let mut queries = Vec::new();
    let mut off = 0;
    for &l in qlens.iter().take(nqueries) {
        queries.push(ArrayView2::from_shape(
            (l, dim),
            &qemb[off * dim..(off + l) * dim],
        )?);
        off += l;
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let params = SearchParams::with_k(10);
    let passes = 3;

    // Unfiltered baseline.
    let mut pass_medians = Vec::new();
    for _ in 0..passes {
        let mut lat = Vec::new();
        for q in &queries {
            let t = Instant::now();
            pool.install(|| index.search(q.view(), &params))?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        pass_medians.push(median(&mut lat));
    }
    let base_ms = median(&mut pass_medians);
    println!(
        "{} queries, k = 10, 1 thread; unfiltered search: median {:.3} ms/query",
        queries.len(),
        base_ms
    );
    println!(
        "| filter | docs | share | plans (subset/probe) | recall@10 vs exact over subset | median ms/query | vs unfiltered | filter_ids median ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");

    let filters: Vec<(&str, Vec<Value>)> = vec![
        (
            "section = ? AND installed_size < ?",
            vec!["libs".into(), 60.into()],
        ),
        (
            "section IN (?, ?) OR priority <> ?",
            vec!["libdevel".into(), "haskell".into(), "optional".into()],
        ),
        (
            "package LIKE ? OR installed_size >= ?",
            vec!["lib%".into(), 2000.into()],
        ),
    ];
    for (cond, p) in filters {
        let filter = Filter::new(cond, p.clone());
        let ids = index.filter_ids(&filter)?;
        // The subset's original vectors, stacked.
        let mut rows = Vec::new();
        let mut docs = Vec::new();
        for &id in &ids {
            let (a, b) = (offs[id.as_usize()], offs[id.as_usize() + 1]);
            let start = rows.len() / dim;
            rows.extend_from_slice(&emb[a * dim..b * dim]);
            docs.push((id, start, start + (b - a)));
        }
        let sub = Array2::from_shape_vec((rows.len() / dim, dim), rows)?;
        let (mut hit, mut plans) = (0usize, [0usize; 2]);
        for q in &queries {
            let gt = exact_top(q.view(), &sub, &docs, 10);
            let (hits, plan) =
                pool.install(|| index.search_filtered_with_plan(q.view(), &params, &filter))?;
            plans[usize::from(matches!(plan, FilterPlan::Probe { .. }))] += 1;
            hit += hits.ids.iter().filter(|d| gt.contains(d)).count();
        }
        let recall = hit as f64 / (queries.len() * 10) as f64;
        let (mut pass_medians, mut filt) = (Vec::new(), Vec::new());
        for _ in 0..passes {
            let mut lat = Vec::new();
            for q in &queries {
                let t = Instant::now();
                pool.install(|| index.search_filtered(q.view(), &params, &filter))?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            pass_medians.push(median(&mut lat));
            let t = Instant::now();
            index.filter_ids(&filter)?;
            filt.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let ms = median(&mut pass_medians);
        let shown: Vec<String> = p.iter().map(|v| format!("{v:?}")).collect();
        println!(
            "| `{cond}` [{}] | {} | {:.1} % | {}/{} | {:.4} | {:.3} | {:.2}x | {:.3} |",
            shown.join(", "),
            ids.len(),
            100.0 * ids.len() as f64 / index.num_docs() as f64,
            plans[0],
            plans[1],
            recall,
            ms,
            ms / base_ms,
            median(&mut filt),
        );
    }
    Ok(())
}
