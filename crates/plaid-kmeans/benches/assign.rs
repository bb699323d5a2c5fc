//! Nearest-centroid assignment: the blocked GEMM kernel next to the plain-loop
//! oracle, at ColBERT-like sizes (dim 128, 4096 points, K = 2^13, 2^16 and 2^18
//! centroids: the range PLAID picks for 10^5 to 10^8 tokens).
//!
//! The oracle runs on fewer rows (it is over an order of magnitude slower);
//! compare the two through the rows/s throughput criterion reports.
#![allow(missing_docs)] // criterion's macros generate undocumented items.
#![allow(clippy::unwrap_used)] // Benches unwrap freely.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use plaid_kmeans::{nearest_by_dot, reference};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 128;
const ROWS: usize = 4096;

fn random(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn assign(c: &mut Criterion) {
    let data = random(2, ROWS * DIM);
    for log_k in [13u32, 16, 18] {
        let k = 1usize << log_k;
        let centroids = random(1, k * DIM);
        let mut group = c.benchmark_group(format!("nearest_by_dot/dim128/k2^{log_k}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let mut out = vec![0u32; ROWS];
        group.throughput(Throughput::Elements(ROWS as u64));
        group.bench_with_input(BenchmarkId::new("blocked", ROWS), &ROWS, |b, _| {
            b.iter(|| {
                nearest_by_dot(black_box(&data), black_box(&centroids), DIM, &mut out).unwrap()
            });
        });
        // The oracle's cost grows with K: keep one iteration well under a second.
        let rows = (256 >> (log_k - 13).min(4)).max(8);
        let x = &data[..rows * DIM];
        let mut out = vec![0u32; rows];
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("reference", rows), &rows, |b, _| {
            b.iter(|| {
                reference::nearest_by_dot(black_box(x), black_box(&centroids), DIM, &mut out)
                    .unwrap()
            });
        });
        group.finish();
    }
}

criterion_group!(benches, assign);
criterion_main!(benches);
