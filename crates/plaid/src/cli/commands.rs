//! The commands: each turns typed arguments into library calls and prints.

use super::flags::{
    Command, DemoArgs, FilterArgs, ImportArgs, IndexArgs, InfoArgs, MetaArgs, SearchArgs,
};
use super::io::{
    dir_bytes, peak_rss_kb, read_jsonl, read_lengths, read_matrix, status_kb, write_array,
};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::ArrayView2;
use plaid::storage::import::TokenSource;
use plaid::types::DocId;
use plaid::{
    Documents, Filter, Hits, Index, IndexConfig, Progress, QuantizerKind, SearchParams,
    SourceFormat, Stage, StageProfile, Value,
};
use serde_json::json;
use std::time::Instant;

pub(crate) fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Index(a) => index(a),
        Command::Search(a) => search(a),
        Command::Info(a) => info(a),
        Command::Import(a) => import(a),
        Command::Demo(a) => demo(a),
        Command::Add(a) => super::live::add(a),
        Command::Delete(a) => super::live::delete(a),
        Command::Compact(a) => super::live::compact(a),
        Command::Verify(a) => super::live::verify(a),
        Command::Rebuild(a) => super::live::rebuild(a),
        Command::Meta(a) => meta(a),
    }
}

/// A progress callback that draws one bar per stage on stderr (hidden when
/// stderr is not a terminal).
fn progress_bar() -> impl FnMut(Progress) {
    let bar = ProgressBar::new(1);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg:<10} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut last: Option<Stage> = None;
    move |p: Progress| {
        if last != Some(p.stage) {
            bar.reset();
            bar.set_message(format!("{:?}", p.stage).to_lowercase());
            last = Some(p.stage);
        }
        bar.set_length(p.total.max(1));
        bar.set_position(p.done);
        if p.stage == Stage::Writing && p.done == p.total {
            bar.finish_and_clear();
        }
    }
}

fn quantizer(name: &str) -> Result<QuantizerKind> {
    match name {
        "per-dim" => Ok(QuantizerKind::PerDim),
        "global" => Ok(QuantizerKind::Global),
        other => bail!("unknown quantizer {other:?} (expected per-dim or global)"),
    }
}

fn index(a: IndexArgs) -> Result<()> {
    let start = Instant::now();
    let (data, dim) = read_matrix(&a.embeddings)?;
    let lens = read_lengths(&a.doclens)?;
    let mut config = IndexConfig::default()
        .nbits(a.nbits)
        .seed(a.seed)
        .num_centroids(a.num_centroids)
        .device(a.device.parse()?);
    config.quantizer = quantizer(&a.quantizer)?;
    let docs = Documents::Flat {
        data: &data,
        dim,
        lens: &lens,
    };
    let mut bar = progress_bar();
    let index = match &a.metadata {
        None => Index::create_with_progress(docs, &a.dir, &config, &mut bar)?,
        Some(path) => {
            let metadata = read_jsonl(path)?;
            Index::create_with_metadata(docs, &a.dir, &config, &metadata)?
        }
    };
    let build_s = start.elapsed().as_secs_f64();
    let bytes = dir_bytes(&a.dir)?;
    let summary = json!({
        "build_s": build_s,
        "num_docs": index.num_docs(),
        "num_tokens": index.num_tokens(),
        "num_centroids": index.num_centroids(),
        "nbits": index.nbits(),
        "index_bytes": bytes,
        "peak_rss_kb": peak_rss_kb(),
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "indexed {} documents ({} tokens, {} centroids) into {} in {:.2} s, {} bytes",
            index.num_docs(),
            index.num_tokens(),
            index.num_centroids(),
            a.dir.display(),
            build_s,
            bytes
        );
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn search(a: SearchArgs) -> Result<()> {
    let t0 = Instant::now();
    let index = Index::open(&a.dir)?;
    let load_s = t0.elapsed().as_secs_f64();
    let (qdata, dim) = read_matrix(&a.queries)?;
    let mut qlens = read_lengths(&a.query_lens)?;
    let total: usize = qlens.iter().sum();
    if total * dim != qdata.len() {
        bail!(
            "query lengths add up to {total} rows but {} has {}",
            a.queries.display(),
            qdata.len() / dim.max(1)
        );
    }
    if let Some(m) = a.max_queries {
        qlens.truncate(m);
    }
    let mut views = Vec::with_capacity(qlens.len());
    let mut off = 0;
    for (i, &l) in qlens.iter().enumerate() {
        let v = ArrayView2::from_shape((l, dim), &qdata[off * dim..(off + l) * dim])
            .with_context(|| format!("query {i}"))?;
        views.push(v);
        off += l;
    }
    let params = SearchParams::with_k(a.k)
        .n_probe(a.n_probe)
        .scale_probe_with_k(!a.fixed_probe)
        .n_full_scores(a.n_full_scores)
        .centroid_score_threshold(a.centroid_score_threshold)
        .exact_scoring(match a.exact_scoring.as_str() {
            "float" => plaid::ExactScoring::Float,
            _ => plaid::ExactScoring::Int8,
        });
    let filter = a.filter.to_filter();
    if filter.is_some() && (a.exhaustive || a.batch || a.profile) {
        bail!("--filter cannot be combined with --exhaustive, --batch or --profile");
    }
    let device: plaid::Device = a.device.parse()?;
    #[cfg(feature = "cuda")]
    let gpu = super::gpu::open(device, filter.is_some())?;
    #[cfg(not(feature = "cuda"))]
    if device == plaid::Device::Cuda {
        return Err(plaid::Error::DeviceUnavailable {
            device: "cuda",
            reason: "this build of plaid lacks the `cuda` feature".into(),
        }
        .into());
    }
    #[cfg(feature = "cuda")]
    let runs = match &gpu {
        Some(dev) => super::gpu::run(&a, &index, &views, &params, dev)?,
        None => run_cpu(&a, &index, &views, &params, filter.as_ref())?,
    };
    #[cfg(not(feature = "cuda"))]
    let runs = run_cpu(&a, &index, &views, &params, filter.as_ref())?;
    let Runs {
        results,
        latencies,
        qps,
        batch_qps,
        profile,
        kernel,
    } = runs;
    let k = a.k;
    if let Some(path) = &a.output {
        let mut ids = vec![-1i64; results.len() * k];
        for (r, hits) in results.iter().enumerate() {
            for (j, id) in hits.ids.iter().enumerate().take(k) {
                ids[r * k + j] = i64::from(id.as_u32());
            }
        }
        write_array(path, &[results.len(), k], &ids)?;
    }
    if let Some(path) = &a.scores {
        let mut scores = vec![f32::NEG_INFINITY; results.len() * k];
        for (r, hits) in results.iter().enumerate() {
            for (j, s) in hits.scores.iter().enumerate().take(k) {
                scores[r * k + j] = *s;
            }
        }
        write_array(path, &[results.len(), k], &scores)?;
    }
    let summary = json!({
        "num_queries": views.len(),
        "k": k,
        "threads": rayon::current_num_threads(),
        "load_s": load_s,
        "qps": qps,
        "p50_ms": percentile(&latencies, 0.50),
        "p95_ms": percentile(&latencies, 0.95),
        "p99_ms": percentile(&latencies, 0.99),
        "batch_qps": batch_qps,
        "exhaustive": a.exhaustive,
        "filter": a.filter.filter,
        "kernel": kernel,
        "exact_scoring": a.exact_scoring,
        "peak_rss_kb": peak_rss_kb(),
        "rss_anon_kb": status_kb("RssAnon:"),
        "rss_file_kb": status_kb("RssFile:"),
        "profile": profile,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "{} queries, k = {k}: {:.1} qps, p50 {:.3} ms, p99 {:.3} ms",
            views.len(),
            qps,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    Ok(())
}

/// What a search pass measured.
pub(super) struct Runs {
    pub(super) results: Vec<Hits>,
    /// Per-query milliseconds, sorted.
    pub(super) latencies: Vec<f64>,
    pub(super) qps: f64,
    pub(super) batch_qps: Option<f64>,
    pub(super) profile: Option<serde_json::Value>,
    pub(super) kernel: String,
}

/// `repeats` timed passes over `queries`, one query at a time: per-query
/// milliseconds (sorted) and the median pass's queries per second.
pub(super) fn one_at_a_time<Q>(
    repeats: usize,
    queries: &[Q],
    mut run: impl FnMut(&Q) -> Result<()>,
) -> Result<(Vec<f64>, f64)> {
    let mut latencies = Vec::with_capacity(queries.len() * repeats.max(1));
    let mut pass_qps = Vec::new();
    for _ in 0..repeats.max(1) {
        let pass = Instant::now();
        for q in queries {
            let t = Instant::now();
            run(q)?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
        }
        pass_qps.push(queries.len() as f64 / pass.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, median(&mut pass_qps)))
}

/// `repeats` timed batch calls over all queries: the median pass's queries
/// per second. Each pass must return `expected` (the one-at-a-time results).
pub(super) fn batch_passes(
    repeats: usize,
    expected: &[Hits],
    mut run: impl FnMut() -> Result<Vec<Hits>>,
) -> Result<f64> {
    let mut passes = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let batch = run()?;
        passes.push(expected.len() as f64 / t.elapsed().as_secs_f64());
        if batch != expected {
            bail!("batch results differ from one-at-a-time results");
        }
    }
    Ok(median(&mut passes))
}

/// Median of `v` (sorted in place).
pub(super) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn run_cpu(
    a: &SearchArgs,
    index: &Index,
    views: &[ArrayView2<'_, f32>],
    params: &SearchParams,
    filter: Option<&Filter>,
) -> Result<Runs> {
    let run_one = |q: &ArrayView2<'_, f32>| -> Result<Hits> {
        if let Some(f) = filter {
            Ok(index.search_filtered(q.view(), params, f)?)
        } else if a.exhaustive {
            Ok(index.exhaustive(q.view(), a.k)?)
        } else {
            Ok(index.search(q.view(), params)?)
        }
    };
    // Warm-up pass (also the results we write).
    let mut results = Vec::with_capacity(views.len());
    for (i, q) in views.iter().enumerate() {
        results.push(run_one(q).with_context(|| format!("query {i}"))?);
    }
    let (latencies, qps) = one_at_a_time(a.repeats, views, |q| run_one(q).map(|_| ()))?;
    let mut batch_qps = None;
    if a.batch && !a.exhaustive {
        batch_qps = Some(batch_passes(a.repeats, &results, || {
            Ok(index.search_batch(views, params)?)
        })?);
    }
    let mut profile = None;
    if a.profile && !a.exhaustive {
        let mut sum = StageProfile::default();
        for q in views {
            sum += index.search_profiled(q.view(), params)?.1;
        }
        profile = Some(profile_json(&sum));
    }
    Ok(Runs {
        results,
        latencies,
        qps,
        batch_qps,
        profile,
        kernel: index.snapshot().searcher()?.kernel().name().to_string(),
    })
}

/// Mean milliseconds per query of each stage, and the mean work done.
fn profile_json(p: &StageProfile) -> serde_json::Value {
    let n = p.queries.max(1) as f64;
    let ms = |s: f64| s * 1e3 / n;
    json!({
        "centroid_scores_ms": ms(p.centroid_scores_s),
        "probe_ms": ms(p.probe_s),
        "candidates_ms": ms(p.candidates_s),
        "approximate_ms": ms(p.approximate_s),
        "exact_ms": ms(p.exact_s),
        "topk_ms": ms(p.topk_s),
        "candidates": p.candidates as f64 / n,
        "exact_docs": p.exact_docs as f64 / n,
        "exact_tokens": p.exact_tokens as f64 / n,
    })
}

fn info(a: InfoArgs) -> Result<()> {
    let index = Index::open(&a.dir)?;
    let bytes = dir_bytes(&a.dir)?;
    let snap = index.snapshot();
    let summary = json!({
        "num_docs": snap.num_docs(),
        "num_tokens": snap.num_tokens(),
        "num_deleted": snap.num_deleted(),
        "stored_tokens": snap.stored_tokens(),
        "next_doc_id": snap.manifest().next_doc_id,
        "generation": snap.generation(),
        "segments": snap.manifest().segments.len(),
        "num_centroids": index.num_centroids(),
        "dim": index.dim(),
        "nbits": index.nbits(),
        "quantizer": match snap.codebook().quantizer().kind() {
            QuantizerKind::Global => "global",
            _ => "per_dim",
        },
        "index_bytes": bytes,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

fn import(a: ImportArgs) -> Result<()> {
    let start = Instant::now();
    let from = a
        .from
        .as_deref()
        .map(str::parse::<SourceFormat>)
        .transpose()?;
    let (index, report) = Index::import(&a.dir, &a.src, from)?;
    let import_s = start.elapsed().as_secs_f64();
    let bytes = dir_bytes(&a.dir)?;
    let tokens_from = match report.tokens_from {
        TokenSource::Chunks { .. } => "chunks",
        _ => "merged",
    };
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|f| json!({"name": f.name, "reason": f.reason.to_string()}))
        .collect();
    let summary = json!({
        "import_s": import_s,
        "from": report.format.name(),
        "detected": report.detected,
        "num_docs": index.num_docs(),
        "num_tokens": index.num_tokens(),
        "num_centroids": index.num_centroids(),
        "dim": index.dim(),
        "nbits": index.nbits(),
        "tokens_from": tokens_from,
        "source_ivf_matches": report.source_ivf_matches,
        "skipped": skipped,
        "index_bytes": bytes,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "imported {} documents ({} tokens, {} centroids) from the {} index {} into {} in {:.2} s, {} bytes",
            index.num_docs(),
            index.num_tokens(),
            index.num_centroids(),
            report.format,
            a.src.display(),
            a.dir.display(),
            import_s,
            bytes
        );
        for f in &report.skipped {
            println!("skipped {}: {}", f.name, f.reason);
        }
    }
    Ok(())
}

fn demo(a: DemoArgs) -> Result<()> {
    use plaid::synth;
    let dir = std::env::temp_dir().join(format!("plaid-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let corpus = synth::corpus(&synth::SynthConfig::new(a.docs));
    let (qrows, qlens, src) = synth::queries(&corpus, 100, 16, 11);
    let t = Instant::now();
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: corpus.dim,
        lens: &corpus.doclens,
    };
    let mut bar = progress_bar();
    let index = Index::create_with_progress(docs, &dir, &IndexConfig::default(), &mut bar)?;
    let build_s = t.elapsed().as_secs_f64();
    if !a.json {
        println!(
            "built an index of {} generated documents ({} tokens, {} centroids) in {:.2} s",
            index.num_docs(),
            index.num_tokens(),
            index.num_centroids(),
            build_s
        );
    }
    let params = SearchParams::with_k(10);
    let (mut overlap, mut found_src, mut off) = (0usize, 0usize, 0usize);
    let t = Instant::now();
    for (i, &l) in qlens.iter().enumerate() {
        let q = ArrayView2::from_shape(
            (l, corpus.dim),
            &qrows[off * corpus.dim..(off + l) * corpus.dim],
        )?;
        off += l;
        let hits = index.search(q.view(), &params)?;
        let exact = index.exhaustive(q.view(), 10)?;
        overlap += hits.ids.iter().filter(|d| exact.ids.contains(d)).count();
        if hits.ids.first().map(|d| d.as_usize()) == Some(src[i]) {
            found_src += 1;
        }
        if i < 3 && !a.json {
            let top: Vec<String> = hits
                .ids
                .iter()
                .zip(&hits.scores)
                .take(3)
                .map(|(d, s)| format!("{d} ({s:.3})"))
                .collect();
            println!("query {i} (from document {}): {}", src[i], top.join(", "));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let recall = overlap as f64 / (qlens.len() * 10) as f64;
    let _ = std::fs::remove_dir_all(&dir);
    if a.json {
        println!(
            "{}",
            json!({"num_docs": a.docs, "build_s": build_s, "recall_at_10_vs_exhaustive": recall,
                   "source_doc_at_1": found_src as f64 / qlens.len() as f64})
        );
    } else {
        println!(
            "{} queries: recall@10 against exhaustive MaxSim {:.3}; source document ranked first for {:.1}% ({:.1} ms per query incl. exhaustive)",
            qlens.len(),
            recall,
            100.0 * found_src as f64 / qlens.len() as f64,
            secs * 1e3 / qlens.len() as f64
        );
    }
    Ok(())
}

impl FilterArgs {
    fn to_filter(&self) -> Option<Filter> {
        let params = self.params.iter().map(|p| Value::parse_param(p)).collect();
        self.filter.as_ref().map(|c| Filter::new(c.clone(), params))
    }
}

fn meta(a: MetaArgs) -> Result<()> {
    let index = Index::open(&a.dir)?;
    let filter = a.filter.to_filter();
    if a.count {
        let Some(f) = &filter else {
            bail!("--count needs --filter");
        };
        let n = index.filter_count(f)?;
        if a.json {
            println!("{}", json!({ "count": n }));
        } else {
            println!("{n}");
        }
        return Ok(());
    }
    let mut ids: Vec<DocId> = a.ids.iter().map(|&i| DocId::new(i)).collect();
    if let Some(f) = &filter {
        let matching = index.filter_ids(f)?;
        if ids.is_empty() {
            ids = matching;
        } else {
            ids.retain(|id| matching.binary_search(id).is_ok());
        }
    } else if ids.is_empty() {
        bail!("give --ids or --filter");
    }
    let rows = index.metadata(&ids)?;
    for (id, m) in ids.iter().zip(rows) {
        println!("{}", json!({ "id": id.as_u32(), "metadata": m }));
    }
    if a.json {
        println!("{}", json!({ "num_docs": ids.len() }));
    }
    Ok(())
}
