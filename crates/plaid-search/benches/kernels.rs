//! Float kernels at PLAID shapes: each available implementation beside the
//! scalar one (dim 128, 32 query tokens, documents of 60 tokens).
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use plaid_search::Kernel;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

fn kernels(c: &mut Criterion) {
    let dim = 128;
    let query = data(32 * dim, 1);
    let doc = data(60 * dim, 2);
    let block = data(60 * 32, 3);
    let mut g = c.benchmark_group("maxsim/q32/doc60/dim128");
    for k in Kernel::available() {
        g.bench_function(k.name(), |b| {
            b.iter(|| k.maxsim(black_box(&query), black_box(&doc), dim))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("max_rows_into/60x32");
    for k in Kernel::available() {
        g.bench_function(k.name(), |b| {
            b.iter(|| {
                let mut acc = vec![f32::NEG_INFINITY; 32];
                k.max_rows_into(&mut acc, black_box(&block));
                acc
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = kernels
}
criterion_main!(benches);
