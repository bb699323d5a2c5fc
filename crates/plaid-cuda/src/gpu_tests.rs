//! GPU kernels against their CPU oracles. Each test prints `SKIP <test>: ...`
//! and returns when no device is there, unless `PLAID_CUDA_REQUIRE=1`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Codebook, Nbits, QuantizerKind};
use plaid_kmeans::KMeansConfig;
use plaid_search::{
    CodesView, ExactScoring, IvfView, SearchParams, Searcher, SegmentParts, SegmentView,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Device, GpuAssigner, GpuIndex};

#[path = "../tests/common/skip.rs"]
mod skip;

fn device_or_skip(test: &str) -> Option<Device> {
    match Device::open() {
        Ok(d) => Some(d),
        Err(e) => {
            let required = std::env::var_os("PLAID_CUDA_REQUIRE").is_some_and(|v| v == "1");
            assert!(!required, "{test}: PLAID_CUDA_REQUIRE=1 but no GPU: {e}");
            skip::report(test, &format_args!("no CUDA device: {e}"));
            None
        }
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller.
    let u: f32 = rng.random_range(1e-7f32..1.0);
    let v: f32 = rng.random_range(0.0f32..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// `n` unit rows of width `dim` around `topics` random centres.
fn clustered(n: usize, dim: usize, topics: usize, noise: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centres = vec![0.0f32; topics * dim];
    for c in centres.chunks_exact_mut(dim) {
        c.iter_mut().for_each(|x| *x = normal(&mut rng));
        unit(c);
    }
    let mut out = vec![0.0f32; n * dim];
    for row in out.chunks_exact_mut(dim) {
        let t = rng.random_range(0..topics);
        for (x, c) in row.iter_mut().zip(&centres[t * dim..(t + 1) * dim]) {
            *x = c + noise * normal(&mut rng) / (dim as f32).sqrt();
        }
        unit(row);
    }
    out
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Counts label mismatches and checks each is a near-tie of the true scores.
fn check_labels(
    data: &[f32],
    cents: &[f32],
    dim: usize,
    cpu: &[u32],
    gpu: &[u32],
    l2: bool,
) -> usize {
    let score = |x: &[f32], c: u32| {
        let c = &cents[c as usize * dim..(c as usize + 1) * dim];
        let d = dot64(x, c);
        if l2 { d - 0.5 * dot64(c, c) } else { d }
    };
    let mut bad = 0;
    for (i, (&a, &b)) in cpu.iter().zip(gpu).enumerate() {
        if a != b {
            bad += 1;
            let x = &data[i * dim..(i + 1) * dim];
            let gap = (score(x, a) - score(x, b)).abs();
            assert!(
                gap < 2e-3,
                "row {i}: cpu {a} gpu {b} differ by {gap}, not a near-tie"
            );
        }
    }
    bad
}

#[test]
fn gpu_assignment_matches_cpu_up_to_near_ties() {
    let Some(dev) = device_or_skip("gpu_assignment_matches_cpu_up_to_near_ties") else {
        return;
    };
    let dim = 128;
    let data = clustered(20_000, dim, 300, 0.6, 1);
    let cents = clustered(1024, dim, 300, 0.3, 2);
    let mut failures = Vec::new();
    for l2 in [false, true] {
        let mut cpu = vec![0u32; 20_000];
        if l2 {
            plaid_kmeans::nearest_by_l2(&data, &cents, dim, &mut cpu).unwrap();
        } else {
            plaid_kmeans::nearest_by_dot(&data, &cents, dim, &mut cpu).unwrap();
        }
        let gpu = if l2 {
            dev.nearest_by_l2(&data, &cents, dim).unwrap()
        } else {
            dev.nearest_by_dot(&data, &cents, dim).unwrap()
        };
        let bad = check_labels(&data, &cents, dim, &cpu, &gpu, l2);
        eprintln!("assignment l2={l2}: {bad} of 20000 codes differ (all near-ties)");
        if bad > 20 {
            failures.push(format!("l2={l2}: {bad} mismatches"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    // Ragged input is a typed error.
    assert!(dev.nearest_by_dot(&data[..dim + 1], &cents, dim).is_err());
}

#[test]
fn gpu_compress_matches_cpu_bytes() {
    let Some(dev) = device_or_skip("gpu_compress_matches_cpu_bytes") else {
        return;
    };
    let dim = 128;
    let data = clustered(30_000, dim, 200, 0.6, 3);
    let view = EmbeddingsView::try_new(&data, dim).unwrap();
    let km = plaid_kmeans::fit(&data, dim, &KMeansConfig::new(512)).unwrap();
    let mut failures = Vec::new();
    for (nbits, kind) in [
        (Nbits::Four, QuantizerKind::PerDim),
        (Nbits::Two, QuantizerKind::Global),
    ] {
        let cb = Codebook::train_int8(km.centroids(), dim, view, nbits, kind).unwrap();
        let cpu = cb.compress(view).unwrap();
        let gpu = dev.compress(&cb, view).unwrap();
        let plen = cb.packed_len();
        let bad = check_labels(&data, cb.centroids(), dim, &cpu.codes, &gpu.codes, false);
        let mut byte_diff = 0;
        for i in 0..cpu.codes.len() {
            if cpu.codes[i] == gpu.codes[i]
                && cpu.residuals[i * plen..(i + 1) * plen]
                    != gpu.residuals[i * plen..(i + 1) * plen]
            {
                byte_diff += 1;
            }
        }
        eprintln!(
            "compress nbits {}: {bad} of 30000 codes differ (near-ties), {byte_diff} residual rows differ",
            nbits.bits()
        );
        if byte_diff > 0 || bad > 30 {
            failures.push(format!(
                "nbits {}: {bad} codes, {byte_diff} rows",
                nbits.bits()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn gpu_kmeans_matches_cpu() {
    let Some(dev) = device_or_skip("gpu_kmeans_matches_cpu") else {
        return;
    };
    let dim = 128;
    let data = clustered(40_000, dim, 500, 0.5, 4);
    let mut cfg = KMeansConfig::new(256);
    cfg.max_points_per_centroid = 100;
    let cpu = plaid_kmeans::fit(&data, dim, &cfg).unwrap();
    let gpu = plaid_kmeans::fit_with(&data, dim, &cfg, &mut GpuAssigner::new(&dev)).unwrap();
    assert_eq!(cpu.iterations(), gpu.iterations());
    let inertia = |c: &[f32]| {
        let mut lab = vec![0u32; 40_000];
        plaid_kmeans::nearest_by_dot(&data, c, dim, &mut lab).unwrap();
        lab.iter()
            .enumerate()
            .map(|(i, &l)| {
                1.0 - dot64(
                    &data[i * dim..(i + 1) * dim],
                    &c[l as usize * dim..(l as usize + 1) * dim],
                )
            })
            .sum::<f64>()
    };
    let (a, b) = (inertia(cpu.centroids()), inertia(gpu.centroids()));
    let same = cpu.centroids() == gpu.centroids();
    eprintln!("kmeans: cpu loss {a:.3}, gpu loss {b:.3}, identical centroids: {same}");
    assert!((a - b).abs() <= 0.01 * a, "losses {a} vs {b}");
}

/// A one-segment index over synthetic documents.
struct Synthetic {
    codebook: Codebook,
    doc_ids: Vec<u32>,
    doc_offsets: Vec<u64>,
    codes: Vec<u32>,
    residuals: Vec<u8>,
    ivf_offsets: Vec<u64>,
    ivf: Vec<u32>,
    live: Vec<u64>,
    queries: Vec<Vec<f32>>,
}

impl Synthetic {
    fn new(n_docs: usize, k: usize, seed: u64) -> Self {
        let dim = 128;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lens: Vec<usize> = (0..n_docs).map(|_| rng.random_range(8..60)).collect();
        let total: usize = lens.iter().sum();
        let data = clustered(total, dim, 150, 0.7, seed + 1);
        let view = EmbeddingsView::try_new(&data, dim).unwrap();
        let km = plaid_kmeans::fit(&data, dim, &KMeansConfig::new(k)).unwrap();
        let codebook = Codebook::train_int8(
            km.centroids(),
            dim,
            view,
            Nbits::Four,
            QuantizerKind::PerDim,
        )
        .unwrap();
        let c = codebook.compress(view).unwrap();
        let mut doc_offsets = vec![0u64];
        for &l in &lens {
            doc_offsets.push(doc_offsets.last().unwrap() + l as u64);
        }
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (d, w) in doc_offsets.windows(2).enumerate() {
            for t in w[0]..w[1] {
                pairs.push((c.codes[t as usize], d as u32));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut ivf_offsets = vec![0u64; k + 1];
        for &(cc, _) in &pairs {
            ivf_offsets[cc as usize + 1] += 1;
        }
        for i in 0..k {
            ivf_offsets[i + 1] += ivf_offsets[i];
        }
        // Every 7th document is deleted; ids are sparse (3 · local + 1).
        let mut live = vec![0u64; n_docs.div_ceil(64)];
        for d in 0..n_docs {
            if d % 7 != 3 {
                live[d / 64] |= 1 << (d % 64);
            }
        }
        let mut queries = Vec::new();
        for _ in 0..60 {
            let d = rng.random_range(0..n_docs);
            let nq = rng.random_range(4..=32);
            let mut q = Vec::new();
            for _ in 0..nq {
                let t = rng.random_range(doc_offsets[d]..doc_offsets[d + 1]) as usize;
                let mut row: Vec<f32> = data[t * dim..(t + 1) * dim]
                    .iter()
                    .map(|&x| x + 0.3 * normal(&mut rng) / (dim as f32).sqrt())
                    .collect();
                unit(&mut row);
                q.extend_from_slice(&row);
            }
            queries.push(q);
        }
        Self {
            codebook,
            doc_ids: (0..n_docs as u32).map(|d| 3 * d + 1).collect(),
            doc_offsets,
            codes: c.codes,
            residuals: c.residuals,
            ivf_offsets,
            ivf: pairs.iter().map(|p| p.1).collect(),
            live,
            queries,
        }
    }

    fn searcher(&self) -> Searcher<'_> {
        let seg = SegmentView::try_new(
            SegmentParts {
                doc_ids: &self.doc_ids,
                doc_offsets: &self.doc_offsets,
                codes: CodesView::U32(&self.codes),
                residuals: &self.residuals,
                ivf_offsets: &self.ivf_offsets,
                ivf: IvfView::U32(&self.ivf),
                live: Some(&self.live),
            },
            self.codebook.num_centroids(),
            self.codebook.packed_len(),
            0,
        )
        .unwrap();
        Searcher::new(&self.codebook, vec![seg])
    }

    fn views(&self) -> Vec<EmbeddingsView<'_>> {
        self.queries
            .iter()
            .map(|q| EmbeddingsView::try_new(q, 128).unwrap())
            .collect()
    }
}

#[test]
fn gpu_search_matches_cpu_search() {
    let Some(dev) = device_or_skip("gpu_search_matches_cpu_search") else {
        return;
    };
    let syn = Synthetic::new(1500, 512, 7);
    let searcher = syn.searcher();
    let gpu = GpuIndex::new(&dev, &searcher).unwrap();
    let views = syn.views();
    let mut failures = Vec::new();
    // Default parameters (every candidate scored exactly at this size), a
    // deep probe, and a small exact budget that exercises approximate scoring.
    for (name, params, min_equal) in [
        ("k10", SearchParams::with_k(10), 0.98),
        ("k100", SearchParams::with_k(100), 0.95),
        ("k10-n64", SearchParams::with_k(10).n_full_scores(64), 0.9),
    ] {
        let got = gpu.search_batch(&views, &params).unwrap();
        // The GPU reproduces the CPU's float exact stage.
        let params = params.exact_scoring(ExactScoring::Float);
        let mut equal = 0;
        let mut max_diff = 0f32;
        for (q, g) in views.iter().zip(&got) {
            let want = searcher.search(*q, &params).unwrap();
            assert_eq!(g.ids.len(), want.ids.len());
            if g.ids == want.ids {
                equal += 1;
            }
            for (id, s) in g.ids.iter().zip(&g.scores) {
                assert_eq!(id.as_u32() % 3, 1, "id {id:?} is not a stored id");
                assert!(
                    ((id.as_u32() - 1) / 3) % 7 != 3,
                    "deleted document {id:?} returned"
                );
                if let Some(p) = want.ids.iter().position(|w| w == id) {
                    max_diff = max_diff.max((want.scores[p] - s).abs());
                }
            }
        }
        let share = equal as f64 / views.len() as f64;
        eprintln!(
            "search {name}: {equal}/{} queries with identical top-k; max score diff {max_diff:e}",
            views.len()
        );
        if max_diff >= 1e-4 || share < min_equal {
            failures.push(format!("{name}: share {share}, max diff {max_diff}"));
        }
    }
    // Exhaustive mode against the CPU's exhaustive MaxSim: same scores, rank by rank.
    let got = gpu.exhaustive_batch(&views, 10).unwrap();
    let mut worst = 0f32;
    for (q, g) in views.iter().zip(&got) {
        let want = searcher.exhaustive(*q, 10).unwrap();
        assert_eq!(g.scores.len(), want.scores.len());
        for (a, b) in g.scores.iter().zip(&want.scores) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!("exhaustive: max score diff rank by rank {worst:e}");
    if worst >= 1e-4 {
        failures.push(format!("exhaustive: max diff {worst}"));
    }
    // Bad queries are typed errors, not panics.
    let long = vec![0.1f32; 33 * 128];
    let long = EmbeddingsView::try_new(&long, 128).unwrap();
    assert!(matches!(
        gpu.search_batch(&[long], &SearchParams::with_k(10)),
        Err(crate::Error::QueryTooLong {
            query: 0,
            tokens: 33,
            ..
        })
    ));
    let bad = SearchParams::with_k(10).centroid_score_threshold(Some(0.5));
    assert!(matches!(
        gpu.search_batch(&views, &bad),
        Err(crate::Error::Unsupported { .. })
    ));
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn gpu_ranked_lists_match_a_sort() {
    let Some(dev) = device_or_skip("gpu_ranked_lists_match_a_sort") else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (queries, k) = (3usize, 1000usize);
    let ld = 32 * queries;
    // Scores rounded to a coarse grid (many exact ties), plus NaN and -inf.
    let mut s = vec![0.0f32; k * ld];
    for v in s.iter_mut() {
        *v = (rng.random_range(0..200) as f32) / 50.0 - 2.0;
    }
    s[5 * ld] = f32::NAN;
    s[6 * ld + 1] = f32::NEG_INFINITY;
    let nq = [32i32, 7, 1];
    for (which, depth) in [32usize, 64, 128, 256].into_iter().enumerate() {
        let got = dev.rank_tokens(&s, queries, k, &nq, which).unwrap();
        for b in 0..queries {
            for t in 0..nq[b] as usize {
                let col = 32 * b + t;
                let mut all: Vec<(f32, u32)> = (0..k as u32)
                    .map(|c| (s[c as usize * ld + col], c))
                    .filter(|x| x.0.is_finite())
                    .collect();
                all.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                let want: Vec<u32> = all.iter().take(depth).map(|x| x.1).collect();
                assert_eq!(
                    &got[(b * 32 + t) * depth..][..depth],
                    &want[..],
                    "depth {depth} query {b} token {t}"
                );
            }
        }
    }
}
