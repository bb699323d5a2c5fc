//! Seeded data generators shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use plaid_codec::Nbits;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded RNG.
pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// One standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `n` rows of independent Gaussians, dimension `d` with standard deviation `sigma[d]`.
pub(crate) fn gaussian(rng: &mut ChaCha8Rng, n: usize, sigma: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * sigma.len());
    for _ in 0..n {
        for &s in sigma {
            out.push(normal(rng) * s);
        }
    }
    out
}

/// `k` random unit-norm rows of width `dim`.
pub(crate) fn unit_rows(rng: &mut ChaCha8Rng, k: usize, dim: usize) -> Vec<f32> {
    let mut out = gaussian(rng, k, &vec![1.0; dim]);
    for row in out.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

/// Any supported bit width.
pub(crate) fn any_nbits() -> impl Strategy<Value = Nbits> {
    prop_oneof![Just(Nbits::One), Just(Nbits::Two), Just(Nbits::Four)]
}

/// A bit width and a dimension that packs into `1..=max_bytes` whole bytes.
pub(crate) fn nbits_and_dim(max_bytes: usize) -> impl Strategy<Value = (Nbits, usize)> {
    (any_nbits(), 1..=max_bytes).prop_map(|(n, bytes)| (n, bytes * n.dims_per_byte()))
}
