//! `plaid search --device cuda|auto`: the same passes as the CPU path, on a GPU.

use super::commands::{Runs, median};
use super::flags::SearchArgs;
use anyhow::{Context, Result, bail};
use ndarray::ArrayView2;
use plaid::cuda::{Device as Gpu, GpuIndex};
use plaid::types::EmbeddingsView;
use plaid::{Device, Index, SearchParams};
use serde_json::json;
use std::time::Instant;

/// The GPU to search on: `None` for `cpu`, and for `auto` without a usable GPU.
pub(super) fn open(device: Device, filtered: bool) -> Result<Option<Gpu>> {
    if device == Device::Cpu {
        return Ok(None);
    }
    match Gpu::open() {
        Ok(d) if !filtered => Ok(Some(d)),
        Ok(_) if device == Device::Auto => Ok(None),
        Ok(_) => bail!("--filter runs on the CPU; use --device cpu or auto"),
        Err(plaid::cuda::Error::Unavailable(_)) if device == Device::Auto => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One-at-a-time latency (a batch of one per query), batch throughput and
/// the stage profile, on the GPU.
pub(super) fn run(
    a: &SearchArgs,
    index: &Index,
    views: &[ArrayView2<'_, f32>],
    params: &SearchParams,
    dev: &Gpu,
) -> Result<Runs> {
    let snap = index.snapshot();
    let searcher = snap.searcher()?;
    let gpu = GpuIndex::new(dev, &searcher)?;
    let qs: Vec<EmbeddingsView<'_>> = views
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = v
                .as_slice()
                .with_context(|| format!("query {i} is not contiguous"))?;
            EmbeddingsView::try_new(s, v.ncols()).with_context(|| format!("query {i}"))
        })
        .collect::<Result<_>>()?;
    let batch = |q: &[EmbeddingsView<'_>]| -> Result<Vec<plaid::Hits>> {
        Ok(if a.exhaustive {
            gpu.exhaustive_batch(q, a.k)?
        } else {
            gpu.search_batch(q, params)?
        })
    };
    // Warm-up pass: the results we write.
    let results = batch(&qs)?;
    let mut latencies = Vec::new();
    let mut pass_qps = Vec::new();
    for _ in 0..a.repeats.max(1) {
        let pass = Instant::now();
        for q in &qs {
            let t = Instant::now();
            batch(std::slice::from_ref(q))?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
        }
        pass_qps.push(qs.len() as f64 / pass.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    let mut batch_qps = None;
    if a.batch {
        let mut passes = Vec::new();
        for _ in 0..a.repeats.max(1) {
            let t = Instant::now();
            let again = batch(&qs)?;
            passes.push(qs.len() as f64 / t.elapsed().as_secs_f64());
            if again != results {
                bail!("repeated GPU batch results differ");
            }
        }
        batch_qps = Some(median(&mut passes));
    }
    let mut profile = None;
    if a.profile && !a.exhaustive {
        let (_, p) = gpu.search_batch_profiled(&qs, params)?;
        let n = p.queries.max(1) as f64;
        let ms = |s: f64| s * 1e3 / n;
        profile = Some(json!({
            "centroid_scores_ms": ms(p.centroids_s),
            "candidates_ms": ms(p.candidates_s),
            "approximate_ms": ms(p.approximate_s),
            "exact_ms": ms(p.exact_s),
            "topk_ms": ms(p.topk_s),
            "candidates": p.candidates as f64 / n,
            "exact_docs": p.exact_docs as f64 / n,
        }));
    }
    Ok(Runs {
        results,
        latencies,
        qps: median(&mut pass_qps),
        batch_qps,
        profile,
        kernel: format!("cuda: {}", dev.info().name),
    })
}
