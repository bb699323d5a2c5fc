//! The search's stages at PLAID shapes (dim 128, 8 and 32 query tokens),
//! each fast path beside its scalar baseline: centroid scoring (one GEMM
//! against plain dot products) and probing (ranked lists per kernel) at
//! K = 2^13, 2^15 and 2^18 centroids, integer exact scoring of 4- and 2-bit
//! documents per kernel, and the top-k cut (selection, then a sort of the
//! kept, against a full sort). One thread.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use plaid_codec::{Codebook, Nbits, QuantizerKind, types::EmbeddingsView};
use plaid_search::reference::rank_order;
use plaid_search::{CentroidScores, ExactScorer, Kernel};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const DIM: usize = 128;

/// `n` unit rows, each near one of `topics` random directions: clustered
/// like real token embeddings.
fn clustered(n: usize, topics: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..topics * DIM)
        .map(|_| rng.random::<f32>() - 0.5)
        .collect();
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let t = rng.random_range(0..topics);
        let row: Vec<f32> = (0..DIM)
            .map(|d| centres[t * DIM + d] + 0.15 * (rng.random::<f32>() - 0.5))
            .collect();
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        out.extend(row.iter().map(|v| v / norm));
    }
    out
}

fn stages(c: &mut Criterion) {
    for nq in [8usize, 32] {
        shapes(c, nq);
    }
    top_k(c);
}

fn shapes(c: &mut Criterion, nq: usize) {
    let query = clustered(nq, nq.div_ceil(4), 1);
    let qv = EmbeddingsView::try_new(&query, DIM).expect("query");
    for log_k in [13u32, 15, 18] {
        let k = 1usize << log_k;
        let cents = clustered(k, 256, 2);
        let sample = EmbeddingsView::try_new(&cents[..256 * DIM], DIM).expect("sample");
        let cb = Codebook::train(
            cents.clone(),
            DIM,
            sample,
            Nbits::Four,
            QuantizerKind::Global,
        )
        .expect("codebook");
        let mut g = c.benchmark_group(format!("centroid_scores/q{nq}/dim{DIM}/k2^{log_k}"));
        g.bench_function("gemm", |b| {
            b.iter(|| CentroidScores::compute(&cb, black_box(qv), 1).expect("scores"))
        });
        if log_k == 13 {
            g.bench_function("scalar", |b| {
                b.iter(|| {
                    let mut st = vec![0.0f32; k * nq];
                    for (c, row) in cents.chunks_exact(DIM).enumerate() {
                        for (q, t) in query.chunks_exact(DIM).enumerate() {
                            st[c * nq + q] = row.iter().zip(t).map(|(a, b)| a * b).sum();
                        }
                    }
                    st
                })
            });
        }
        g.finish();
        let scores = CentroidScores::compute(&cb, qv, 1).expect("scores");
        let mut g = c.benchmark_group(format!("probe/q{nq}/n_probe16/k2^{log_k}"));
        for kern in Kernel::available() {
            let s = scores.clone().with_kernel(kern);
            g.bench_function(kern.name(), |b| b.iter(|| s.probe(black_box(16), None, 1)));
        }
        g.finish();
    }
    // Exact scoring: 64 documents of 56 tokens against 8192 centroids.
    let k = 1usize << 13;
    let cents = clustered(k, 256, 3);
    let docs = clustered(64 * 56, 256, 4);
    let dv = EmbeddingsView::try_new(&docs, DIM).expect("docs");
    for nbits in [Nbits::Four, Nbits::Two] {
        let cb = Codebook::train_int8(&cents, DIM, dv, nbits, QuantizerKind::Global).expect("cb");
        let comp = cb.compress(dv).expect("compress");
        let pl = nbits.packed_len(DIM);
        let mut scorer = ExactScorer::new(&cb, qv).expect("scorer");
        let mut g = c.benchmark_group(format!(
            "exact_i8/q{nq}/64x56/dim{DIM}/nbits{}",
            nbits.bits()
        ));
        for kern in Kernel::available() {
            g.bench_function(kern.name(), |b| {
                b.iter(|| {
                    let mut total = 0.0f32;
                    for d in 0..64 {
                        let codes = &comp.codes[d * 56..(d + 1) * 56];
                        let res = &comp.residuals[d * 56 * pl..(d + 1) * 56 * pl];
                        total += scorer.score(kern, codes, res).expect("score");
                    }
                    total
                })
            });
        }
        g.finish();
    }
}

/// The cuts of the pipeline: the best 512 of 3,000 approximate scores and
/// the best 100 of 512 exact ones, by the searcher's order (score, then
/// lower id), as it does them (selection, then a sort of what is kept)
/// beside a full sort.
fn top_k(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (n, k) in [(3000usize, 512usize), (512, 100)] {
        let entries: Vec<(f32, u32)> = (0..n)
            .map(|i| ((rng.random::<f32>() * 64.0).round() / 64.0, i as u32))
            .collect();
        let mut g = c.benchmark_group(format!("top_k/{k}_of_{n}"));
        g.bench_function("select_then_sort", |b| {
            b.iter(|| {
                let mut v = black_box(&entries).clone();
                v.select_nth_unstable_by(k - 1, |a, b| rank_order(*a, *b));
                v.truncate(k);
                v.sort_unstable_by(|a, b| rank_order(*a, *b));
                v
            })
        });
        g.bench_function("full_sort", |b| {
            b.iter(|| {
                let mut v = black_box(&entries).clone();
                v.sort_by(|a, b| rank_order(*a, *b));
                v.truncate(k);
                v
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2));
    targets = stages
}
criterion_main!(benches);
