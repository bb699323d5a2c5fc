//! Nearest-centroid assignment: the blocked GEMM kernel next to the plain-loop
//! oracle, at ColBERT-like sizes (dim 128, K = 2^13 centroids).
//!
//! The oracle only runs on 256 rows (it is over an order of magnitude slower);
//! compare `blocked/256` with `reference/256`, or any two through the rows/s
//! throughput criterion reports.
#![allow(missing_docs)] // criterion's macros generate undocumented items.
#![allow(clippy::unwrap_used)] // Benches unwrap freely.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use plaid_kmeans::{nearest_by_dot, reference};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 128;
const K: usize = 1 << 13;

fn random(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn assign(c: &mut Criterion) {
    let centroids = random(1, K * DIM);
    let data = random(2, 4096 * DIM);
    let mut group = c.benchmark_group("nearest_by_dot/dim128/k8192");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for rows in [256, 4096] {
        let x = &data[..rows * DIM];
        let mut out = vec![0u32; rows];
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("blocked", rows), &rows, |b, _| {
            b.iter(|| nearest_by_dot(black_box(x), black_box(&centroids), DIM, &mut out).unwrap());
        });
    }
    let rows = 256;
    let x = &data[..rows * DIM];
    let mut out = vec![0u32; rows];
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_with_input(BenchmarkId::new("reference", rows), &rows, |b, _| {
        b.iter(|| {
            reference::nearest_by_dot(black_box(x), black_box(&centroids), DIM, &mut out).unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, assign);
criterion_main!(benches);
