//! The blocked `nearest_by_*` kernels against the plain-loop oracles.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

use plaid_kmeans::{Error, nearest_by_dot, nearest_by_l2, reference};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Higham's `γ_n = n·u / (1 − n·u)`: the relative error bound of an
/// `n`-term f32 sum of products, whatever the order and with or without FMA.
fn gamma(n: usize) -> f64 {
    let nu = n as f64 * f64::from(f32::EPSILON) / 2.0;
    nu / (1.0 - nu)
}

/// Exact (f64) score of row `x` against centroid `c`, and its error bound
/// for any f32 evaluation the fast or reference kernel may use.
fn dot_exact(x: &[f32], c: &[f32]) -> (f64, f64) {
    let s: f64 = x
        .iter()
        .zip(c)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let abs: f64 = x
        .iter()
        .zip(c)
        .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
        .sum();
    (s, gamma(x.len()) * abs)
}

/// Exact `‖x − c‖²` and an error bound covering both `2x·c − ‖c‖²` in f32
/// (fast kernel) and the direct f32 `Σ (x − c)²` (oracle). Each is a sum of
/// `dim` terms with at most three more roundings per term (difference,
/// square, final subtraction), so `γ_{dim+3}` times the sum of the magnitudes
/// of all terms of both forms bounds either error.
fn l2_exact(x: &[f32], c: &[f32]) -> (f64, f64) {
    let (mut d2, mut mags) = (0.0, 0.0);
    for (&a, &b) in x.iter().zip(c) {
        let (a, b) = (f64::from(a), f64::from(b));
        d2 += (a - b) * (a - b);
        mags += b * b + 2.0 * (a * b).abs() + (a - b) * (a - b);
    }
    (d2, gamma(x.len() + 3) * mags)
}

/// Checks `fast` against `slow` row by row: equal indices, or two centroids
/// whose exact scores are within the sum of their error bounds (a near-tie
/// that float rounding may break either way). Returns how many near-ties.
fn check(data: &[f32], cents: &[f32], dim: usize, fast: &[u32], slow: &[u32], l2: bool) -> usize {
    let mut near_ties = 0;
    let score = |x: &[f32], j: u32| {
        let c = &cents[j as usize * dim..(j as usize + 1) * dim];
        if l2 { l2_exact(x, c) } else { dot_exact(x, c) }
    };
    for (i, (&a, &b)) in fast.iter().zip(slow).enumerate() {
        if a != b {
            let x = &data[i * dim..(i + 1) * dim];
            let ((sa, ea), (sb, eb)) = (score(x, a), score(x, b));
            assert!(
                (sa - sb).abs() <= ea + eb,
                "row {i}: fast {a} ({sa}) vs reference {b} ({sb}), bound {}",
                ea + eb
            );
            near_ties += 1;
        }
    }
    near_ties
}

fn run_both(data: &[f32], cents: &[f32], dim: usize) {
    let n = data.len() / dim;
    for l2 in [false, true] {
        let (mut fast, mut slow) = (vec![0u32; n], vec![0u32; n]);
        if l2 {
            nearest_by_l2(data, cents, dim, &mut fast).unwrap();
            reference::nearest_by_l2(data, cents, dim, &mut slow).unwrap();
        } else {
            nearest_by_dot(data, cents, dim, &mut fast).unwrap();
            reference::nearest_by_dot(data, cents, dim, &mut slow).unwrap();
        }
        let ties = check(data, cents, dim, &fast, &slow, l2);
        // Near-ties are rare on random data; many would mean a real bug hidden by the bound.
        assert!(ties * 50 <= n.max(50), "{ties} near-ties in {n} rows");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn matches_reference_random_shapes(n in 1usize..300, k in 1usize..300, dim in 1usize..40, seed: u64) {
        run_both(&random(seed, n * dim), &random(seed ^ 1, k * dim), dim);
    }
}

#[test]
fn matches_reference_edge_shapes() {
    // n = 1, k = 1, dims around SIMD widths, and more rows and centroids
    // than one block (512 rows × 2048 centroids).
    for (seed, &(n, k, dim)) in [
        (1, 1, 1),
        (1, 5, 7),
        (9, 1, 13),
        (3, 3, 8),
        (2, 2, 9),
        (1100, 70, 19),
        (40, 4200, 5),
    ]
    .iter()
    .enumerate()
    {
        run_both(
            &random(seed as u64, n * dim),
            &random(seed as u64 + 100, k * dim),
            dim,
        );
    }
}

#[test]
fn matches_reference_ties_and_nan() {
    // Duplicate centroids tie exactly: the lowest index wins in both.
    let dim = 3;
    let cents = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let data = [2.0, 0.0, 0.0, 0.0, 3.0, 0.0, f32::NAN, 0.0, 0.0];
    for l2 in [false, true] {
        let (mut fast, mut slow) = ([9u32; 3], [9u32; 3]);
        if l2 {
            nearest_by_l2(&data, &cents, dim, &mut fast).unwrap();
            reference::nearest_by_l2(&data, &cents, dim, &mut slow).unwrap();
        } else {
            nearest_by_dot(&data, &cents, dim, &mut fast).unwrap();
            reference::nearest_by_dot(&data, &cents, dim, &mut slow).unwrap();
        }
        assert_eq!(fast, [0, 1, 0], "l2 {l2}");
        assert_eq!(slow, fast, "l2 {l2}");
    }
}

#[test]
fn empty_data_is_fine() {
    let mut out: [u32; 0] = [];
    nearest_by_dot(&[], &[], 4, &mut out).unwrap();
    nearest_by_l2(&[], &[1.0; 4], 4, &mut out).unwrap();
}

/// Both fast kernels and both oracles reject the input with `expected`.
fn check_rejects(data: &[f32], cents: &[f32], dim: usize, out_len: usize, expected: Error) {
    let mut out = vec![0u32; out_len];
    assert_eq!(
        nearest_by_dot(data, cents, dim, &mut out),
        Err(expected.clone())
    );
    assert_eq!(
        nearest_by_l2(data, cents, dim, &mut out),
        Err(expected.clone())
    );
    assert_eq!(
        reference::nearest_by_dot(data, cents, dim, &mut out),
        Err(expected.clone())
    );
    assert_eq!(
        reference::nearest_by_l2(data, cents, dim, &mut out),
        Err(expected)
    );
}

#[test]
fn rejects_bad_shapes() {
    check_rejects(
        &[1.0; 6],
        &[1.0; 3],
        0,
        2,
        Error::Shape {
            what: "data",
            len: 6,
            dim: 0,
        },
    );
    check_rejects(
        &[1.0; 5],
        &[1.0; 3],
        3,
        2,
        Error::Shape {
            what: "data",
            len: 5,
            dim: 3,
        },
    );
    check_rejects(
        &[1.0; 6],
        &[1.0; 4],
        3,
        2,
        Error::Shape {
            what: "centroids",
            len: 4,
            dim: 3,
        },
    );
    check_rejects(
        &[1.0; 6],
        &[1.0; 3],
        3,
        3,
        Error::LengthMismatch {
            what: "out",
            expected: 2,
            found: 3,
        },
    );
    check_rejects(
        &[1.0; 6],
        &[],
        3,
        2,
        Error::EmptyInput { what: "centroids" },
    );
}
