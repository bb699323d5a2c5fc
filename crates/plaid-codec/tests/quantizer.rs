//! Quantizer behaviour: bucket boundaries, training against the reference quantile,
//! and the Global vs PerDim reconstruction error.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

mod common;

use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Nbits, QuantizerKind, ResidualQuantizer, reference};

/// Checks `bucket` for each `(value, expected bucket)` against both the quantizer and the
/// reference.
fn check_buckets(q: &ResidualQuantizer, dim_index: usize, cases: &[(f32, u8)]) {
    for &(v, expected) in cases {
        assert_eq!(q.bucket(dim_index, v), expected, "value {v}");
        let cut = reference::cutoffs(q, dim_index).unwrap();
        assert_eq!(reference::bucket(cut, v), expected, "reference, value {v}");
    }
}

#[test]
fn bucket_boundary_goes_to_lower_bucket() {
    let q = ResidualQuantizer::from_parts(
        QuantizerKind::Global,
        Nbits::Two,
        4,
        vec![-0.5, 0.0, 0.5],
        vec![-0.75, -0.25, 0.25, 0.75],
    )
    .unwrap();
    check_buckets(
        &q,
        3,
        &[
            (-1.0, 0),
            (-0.5, 0),
            (f32::from_bits((-0.5f32).to_bits() - 1), 1), // just above -0.5
            (0.0, 1),
            (-0.0, 1),
            (0.25, 2),
            (0.5, 2),
            (f32::from_bits(0.5f32.to_bits() + 1), 3),
            (f32::INFINITY, 3),
            (f32::NEG_INFINITY, 0),
            (f32::NAN, 0),
        ],
    );
    let mut packed = [0u8];
    q.encode_row(&[-0.5, 0.0, 0.5, 0.6], &mut packed);
    assert_eq!(reference::unpack_row(&packed, Nbits::Two), [0, 1, 2, 3]);
    assert_eq!(packed, [0x27]);
    let mut out = [0.0f32; 4];
    q.decode_row(&packed, &mut out);
    assert_eq!(out, [-0.75, -0.25, 0.25, 0.75]);
}

#[test]
fn per_dim_cutoffs_apply_per_dimension() {
    // Dimension 0 splits at 0, dimension 1 at 10.
    let q = ResidualQuantizer::from_parts(
        QuantizerKind::PerDim,
        Nbits::One,
        8,
        vec![0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        vec![
            -1.0, 1.0, 9.0, 11.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
    )
    .unwrap();
    check_buckets(&q, 0, &[(0.0, 0), (5.0, 1)]);
    check_buckets(&q, 1, &[(5.0, 0), (10.0, 0), (10.5, 1)]);
    let mut packed = [0u8];
    q.encode_row(&[5.0, 5.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &mut packed);
    assert_eq!(packed, [0b1010_0001]);
    let mut out = [0.0f32; 8];
    q.decode_row(&packed, &mut out);
    assert_eq!(out[..2], [1.0, 9.0]);
    assert!(!q.decode_table().is_shared());
}

#[test]
fn matches_reference_global_training() {
    let mut rng = common::rng(11);
    let data = common::gaussian(&mut rng, 257, &[0.1, 0.5, 1.0, 2.0, 0.3, 0.2, 0.7, 1.5]);
    let view = EmbeddingsView::try_new(&data, 8).unwrap();
    for nbits in [Nbits::One, Nbits::Two, Nbits::Four] {
        let q = ResidualQuantizer::train(view, nbits, QuantizerKind::Global).unwrap();
        let b = nbits.num_buckets();
        let cut: Vec<f32> = (1..b)
            .map(|i| reference::quantile(&data, i as f64 / b as f64).unwrap())
            .collect();
        let w: Vec<f32> = (0..b)
            .map(|i| reference::quantile(&data, (i as f64 + 0.5) / b as f64).unwrap())
            .collect();
        assert_eq!(q.cutoffs(), &cut[..], "nbits {nbits}");
        assert_eq!(q.weights(), &w[..], "nbits {nbits}");
        assert!(q.decode_table().is_shared());
    }
}

/// Sum of squared encode → decode errors, per dimension in row order, then over
/// dimensions: the same summation order training uses, so comparisons are exact.
fn sse(q: &ResidualQuantizer, data: &[f32]) -> f64 {
    let dim = q.dim();
    let mut per_dim = vec![0.0f64; dim];
    let mut packed = vec![0u8; q.packed_len()];
    let mut decoded = vec![0.0f32; dim];
    for row in data.chunks_exact(dim) {
        q.encode_row(row, &mut packed);
        q.decode_row(&packed, &mut decoded);
        for ((acc, &v), &w) in per_dim.iter_mut().zip(row).zip(&decoded) {
            let e = v - w;
            *acc += f64::from(e) * f64::from(e);
        }
    }
    per_dim.iter().sum()
}

/// Trains both kinds on `data` and returns their mean squared errors (Global, PerDim).
fn mse_pair(data: &[f32], dim: usize, nbits: Nbits) -> (f64, f64) {
    let view = EmbeddingsView::try_new(data, dim).unwrap();
    let g = ResidualQuantizer::train(view, nbits, QuantizerKind::Global).unwrap();
    let p = ResidualQuantizer::train(view, nbits, QuantizerKind::PerDim).unwrap();
    let n = data.len() as f64;
    (sse(&g, data) / n, sse(&p, data) / n)
}

#[allow(clippy::print_stderr)] // reports the figures under `--nocapture`
fn check_perdim_not_worse(name: &str, sigma: &[f32], rows: usize, seed: u64) {
    let data = common::gaussian(&mut common::rng(seed), rows, sigma);
    for nbits in [Nbits::One, Nbits::Two, Nbits::Four] {
        let (g, p) = mse_pair(&data, sigma.len(), nbits);
        eprintln!(
            "{name}, nbits {nbits}: MSE Global {g:.4e}, PerDim {p:.4e} ({:.1}%)",
            100.0 * p / g
        );
        assert!(p <= g, "{name}, nbits {nbits}: PerDim {p} > Global {g}");
    }
}

#[test]
fn perdim_mse_not_above_global_unequal_variances() {
    // Standard deviations spread over a factor of 16 across dimensions.
    let sigma: Vec<f32> = (0..128)
        .map(|d| 0.01 * 2f32.powf(4.0 * d as f32 / 127.0))
        .collect();
    check_perdim_not_worse("unequal variances", &sigma, 2000, 1);
}

#[test]
fn perdim_mse_not_above_global_equal_variances() {
    check_perdim_not_worse("equal variances", &[0.05; 128], 2000, 2);
}

#[test]
fn perdim_mse_not_above_global_small_samples() {
    // Few rows per dimension, where quantiles and means are noisy.
    for seed in 0..20 {
        let sigma: Vec<f32> = (0..8).map(|d| 0.1 + 0.1 * (d % 3) as f32).collect();
        let data = common::gaussian(&mut common::rng(seed), 1 + seed as usize, &sigma);
        for nbits in [Nbits::One, Nbits::Two, Nbits::Four] {
            let (g, p) = mse_pair(&data, 8, nbits);
            assert!(
                p <= g,
                "seed {seed}, nbits {nbits}: PerDim {p} > Global {g}"
            );
        }
    }
}
