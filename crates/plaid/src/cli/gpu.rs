//! `plaid search --device cuda|auto`: the same passes as the CPU path, on a GPU.

use super::commands::{Runs, batch_passes, one_at_a_time};
use super::flags::SearchArgs;
use anyhow::{Context, Result, bail};
use ndarray::ArrayView2;
use plaid::cuda::{Device as Gpu, GpuIndex};
use plaid::types::EmbeddingsView;
use plaid::{Device, Index, SearchParams};
use serde_json::json;

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
    // One at a time = a batch of one per query.
    let (latencies, qps) = one_at_a_time(a.repeats, &qs, |q| {
        batch(std::slice::from_ref(q)).map(|_| ())
    })?;
    let batch_qps = if a.batch {
        Some(batch_passes(a.repeats, &results, || batch(&qs))?)
    } else {
        None
    };
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
        qps,
        batch_qps,
        profile,
        kernel: format!("cuda: {}", dev.info().name),
    })
}
