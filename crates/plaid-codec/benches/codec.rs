//! Codec kernels next to their scalar references, at dim 128 and nbits 1, 2 and 4:
//! bit packing, unpacking, table decoding, residual encoding (quantise + pack) and
//! full decompression (centroid + decoded residual, normalised).
//!
//! Each group times one document's worth of rows (256 tokens) so per-row overhead shows.
//! Data is seeded; run with `cargo bench -p plaid-codec`.
#![allow(missing_docs)] // criterion_group! generates undocumented items
#![allow(clippy::unwrap_used)] // bench setup on generated data

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Codebook, Nbits, QuantizerKind, ResidualQuantizer, pack, reference};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Duration;

const DIM: usize = 128;
const ROWS: usize = 256;
const ALL_NBITS: [Nbits; 3] = [Nbits::One, Nbits::Two, Nbits::Four];

fn buckets(rng: &mut ChaCha8Rng, nbits: Nbits) -> Vec<u8> {
    (0..ROWS * DIM)
        .map(|_| rng.random::<u8>() & nbits.mask())
        .collect()
}

fn quantizer(rng: &mut ChaCha8Rng, nbits: Nbits, kind: QuantizerKind) -> ResidualQuantizer {
    let data: Vec<f32> = (0..2048 * DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    let view = EmbeddingsView::try_new(&data, DIM).unwrap();
    ResidualQuantizer::train(view, nbits, kind).unwrap()
}

fn bench_pack(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut group = c.benchmark_group("pack_row");
    group.throughput(Throughput::Elements(ROWS as u64));
    for nbits in ALL_NBITS {
        let b = buckets(&mut rng, nbits);
        let plen = nbits.packed_len(DIM);
        let mut out = vec![0u8; ROWS * plen];
        group.bench_function(BenchmarkId::new("fast", nbits), |bench| {
            bench.iter(|| {
                for (row, o) in b.chunks_exact(DIM).zip(out.chunks_exact_mut(plen)) {
                    pack::pack_row(black_box(row), nbits, o);
                }
            })
        });
        group.bench_function(BenchmarkId::new("reference", nbits), |bench| {
            bench.iter(|| {
                for row in b.chunks_exact(DIM) {
                    black_box(reference::pack_row(black_box(row), nbits));
                }
            })
        });
    }
    group.finish();
}

fn bench_unpack(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut group = c.benchmark_group("unpack_row");
    group.throughput(Throughput::Elements(ROWS as u64));
    for nbits in ALL_NBITS {
        let plen = nbits.packed_len(DIM);
        let packed: Vec<u8> = (0..ROWS * plen).map(|_| rng.random()).collect();
        let mut out = vec![0u8; ROWS * DIM];
        group.bench_function(BenchmarkId::new("fast", nbits), |bench| {
            bench.iter(|| {
                for (row, o) in packed.chunks_exact(plen).zip(out.chunks_exact_mut(DIM)) {
                    pack::unpack_row(black_box(row), nbits, o);
                }
            })
        });
        group.bench_function(BenchmarkId::new("reference", nbits), |bench| {
            bench.iter(|| {
                for row in packed.chunks_exact(plen) {
                    black_box(reference::unpack_row(black_box(row), nbits));
                }
            })
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut group = c.benchmark_group("decode_row");
    group.throughput(Throughput::Elements(ROWS as u64));
    for kind in [QuantizerKind::Global, QuantizerKind::PerDim] {
        for nbits in ALL_NBITS {
            let q = quantizer(&mut rng, nbits, kind);
            let plen = q.packed_len();
            let packed: Vec<u8> = (0..ROWS * plen).map(|_| rng.random()).collect();
            let mut out = vec![0.0f32; ROWS * DIM];
            let id = format!("{kind:?}/{nbits}");
            group.bench_function(BenchmarkId::new("table", &id), |bench| {
                bench.iter(|| {
                    for (row, o) in packed.chunks_exact(plen).zip(out.chunks_exact_mut(DIM)) {
                        q.decode_row(black_box(row), o);
                    }
                })
            });
            group.bench_function(BenchmarkId::new("reference", &id), |bench| {
                bench.iter(|| {
                    for row in packed.chunks_exact(plen) {
                        black_box(reference::decode_row(&q, black_box(row)));
                    }
                })
            });
        }
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut group = c.benchmark_group("encode_row");
    group.throughput(Throughput::Elements(ROWS as u64));
    for nbits in [Nbits::Two, Nbits::Four] {
        let q = quantizer(&mut rng, nbits, QuantizerKind::PerDim);
        let residuals: Vec<f32> = (0..ROWS * DIM).map(|_| rng.random::<f32>() - 0.5).collect();
        let plen = q.packed_len();
        let mut out = vec![0u8; ROWS * plen];
        group.bench_function(BenchmarkId::new("fast", nbits), |bench| {
            bench.iter(|| {
                for (r, o) in residuals.chunks_exact(DIM).zip(out.chunks_exact_mut(plen)) {
                    q.encode_row(black_box(r), o);
                }
            })
        });
        group.bench_function(BenchmarkId::new("reference", nbits), |bench| {
            bench.iter(|| {
                for r in residuals.chunks_exact(DIM) {
                    black_box(reference::encode_row(&q, black_box(r)));
                }
            })
        });
    }
    group.finish();
}

fn bench_decompress(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut group = c.benchmark_group("decompress");
    group.throughput(Throughput::Elements(ROWS as u64));
    const CENTROIDS: usize = 1024;
    for kind in [QuantizerKind::Global, QuantizerKind::PerDim] {
        for nbits in [Nbits::Two, Nbits::Four] {
            let mut centroids: Vec<f32> = (0..CENTROIDS * DIM)
                .map(|_| rng.random::<f32>() - 0.5)
                .collect();
            for row in centroids.chunks_exact_mut(DIM) {
                let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                row.iter_mut().for_each(|x| *x /= n);
            }
            let q = quantizer(&mut rng, nbits, kind);
            let book = Codebook::new(centroids, DIM, q, 1.0, vec![0.1; DIM]).unwrap();
            let plen = book.packed_len();
            let packed: Vec<u8> = (0..ROWS * plen).map(|_| rng.random()).collect();
            let codes: Vec<u32> = (0..ROWS)
                .map(|_| rng.random_range(0..CENTROIDS as u32))
                .collect();
            let mut out = vec![0.0f32; DIM];
            let id = format!("{kind:?}/{nbits}");
            group.bench_function(BenchmarkId::new("table", &id), |bench| {
                bench.iter(|| {
                    for (&code, row) in codes.iter().zip(packed.chunks_exact(plen)) {
                        book.decompress_into(code, black_box(row), &mut out)
                            .unwrap();
                        black_box(&out);
                    }
                })
            });
            group.bench_function(BenchmarkId::new("reference", &id), |bench| {
                bench.iter(|| {
                    for (&code, row) in codes.iter().zip(packed.chunks_exact(plen)) {
                        black_box(reference::decompress(&book, code, black_box(row)));
                    }
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_pack, bench_unpack, bench_decode, bench_encode, bench_decompress
}
criterion_main!(benches);
