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
    // Approximate stage: per document, the running byte maxima of its
    // tokens' rows in the quantised centroid-score table (K = 2^13, rows
    // of 32 and 64 query tokens), 256 documents of 56 tokens each.
    let k = 1usize << 13;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let codes: Vec<u16> = (0..256 * 56)
        .map(|_| rng.random_range(0..k) as u16)
        .collect();
    for w in [32usize, 64] {
        let table: Vec<u8> = (0..k * w).map(|_| rng.random::<u8>()).collect();
        let mut g = c.benchmark_group(format!("gather_max_u8/k2^13/w{w}/256x56"));
        for kern in Kernel::available() {
            g.bench_function(kern.name(), |b| {
                let mut acc = vec![0u8; w];
                b.iter(|| {
                    let mut total = 0u32;
                    for doc in codes.chunks_exact(56) {
                        acc.fill(0);
                        kern.gather_max_u8_u16(black_box(&table), doc, &mut acc);
                        total += acc.iter().map(|&v| u32::from(v)).sum::<u32>();
                    }
                    total
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = kernels
}
criterion_main!(benches);
