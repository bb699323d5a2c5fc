//! Every kernel this CPU supports against the f64 reference.
#![allow(clippy::unwrap_used)]

use plaid_search::{Kernel, reference};
use proptest::prelude::*;

fn check_maxsim(kernel: Kernel, query: &[f32], doc: &[f32], dim: usize) {
    let got = f64::from(kernel.maxsim(query, doc, dim));
    let want = reference::maxsim(query, doc, dim);
    let bound = reference::maxsim_error_bound(query, doc, dim);
    // The f32 result is also rounded once more when stored: add half an ulp.
    let slack = bound + want.abs() * f64::from(f32::EPSILON);
    assert!(
        (got - want).abs() <= slack,
        "{kernel:?}: got {got}, want {want}, bound {slack}"
    );
}

#[test]
fn matches_reference_on_hand_picked_shapes() {
    for kernel in Kernel::available() {
        for &(nq, n, dim) in &[
            (1, 1, 1),
            (1, 1, 16),
            (3, 5, 17),
            (32, 60, 128),
            (2, 1, 31),
            (5, 7, 64),
        ] {
            let q: Vec<f32> = (0..nq * dim)
                .map(|i| ((i * 7 + 3) as f32 * 0.37).sin())
                .collect();
            let d: Vec<f32> = (0..n * dim)
                .map(|i| ((i * 5 + 1) as f32 * 0.11).cos())
                .collect();
            check_maxsim(kernel, &q, &d, dim);
        }
        assert_eq!(kernel.maxsim(&[1.0, 2.0], &[], 2), 0.0);
    }
}

#[test]
fn max_into_matches_reference() {
    for kernel in Kernel::available() {
        for len in [0usize, 1, 15, 16, 17, 33, 64] {
            let mut acc: Vec<f32> = (0..len).map(|i| (i as f32 * 0.3).sin()).collect();
            let row: Vec<f32> = (0..len).map(|i| (i as f32 * 0.7).cos()).collect();
            let want: Vec<f32> = acc.iter().zip(&row).map(|(a, b)| a.max(*b)).collect();
            kernel.max_into(&mut acc, &row);
            assert_eq!(acc, want, "{kernel:?} len {len}");
        }
        // Blocks of rows: the max over rows, for widths not divisible by lanes.
        for (w, n) in [(1usize, 3usize), (5, 4), (32, 7), (17, 0)] {
            let rows: Vec<f32> = (0..w * n)
                .map(|i| ((i * 13 % 7) as f32 * 0.9).sin())
                .collect();
            let mut acc = vec![f32::NEG_INFINITY; w];
            kernel.max_rows_into(&mut acc, &rows);
            let mut want = vec![f32::NEG_INFINITY; w];
            for r in rows.chunks_exact(w) {
                for (a, v) in want.iter_mut().zip(r) {
                    *a = a.max(*v);
                }
            }
            assert_eq!(acc, want, "{kernel:?} rows {w}x{n}");
        }
        // NaN never wins.
        let mut acc = vec![1.0f32];
        kernel.max_into(&mut acc, &[f32::NAN]);
        assert_eq!(acc, vec![1.0]);
    }
}

proptest! {
    #[test]
    fn matches_reference_on_random_shapes(
        nq in 1usize..9,
        n in 0usize..12,
        dim in 1usize..70,
        seed in any::<u64>(),
    ) {
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        };
        let q: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
        let d: Vec<f32> = (0..n * dim).map(|_| next()).collect();
        for kernel in Kernel::available() {
            check_maxsim(kernel, &q, &d, dim);
            let got = f64::from(kernel.dot(&q[..dim], &q[..dim]));
            let want = reference::dot(&q[..dim], &q[..dim]);
            // q·q: every term is non-negative, so Σ|x_i y_i| = want and the
            // Higham bound is γ_dim·want, plus the final rounding to f32.
            let u = f64::from(f32::EPSILON) / 2.0;
            let gamma = dim as f64 * u / (1.0 - dim as f64 * u);
            prop_assert!((got - want).abs() <= gamma * want + 2.0 * u * want);
        }
    }
}

/// Plain loops: the oracle of the per-document score kernels.
fn naive_gather_max(table: &[f32], codes: &[u32], w: usize) -> Vec<f32> {
    let mut acc = vec![f32::NEG_INFINITY; w];
    for &c in codes {
        for j in 0..w {
            acc[j] = acc[j].max(table[c as usize * w + j]);
        }
    }
    acc
}

#[test]
fn gather_and_combine_match_plain_loops() {
    let k = 9usize;
    for kernel in Kernel::available() {
        for w in [16usize, 32, 48, 80] {
            let table: Vec<f32> = (0..k * w)
                .map(|i| ((i * 31 % 17) as f32 * 0.37).sin())
                .collect();
            for n in [0usize, 1, 5, 40] {
                let codes: Vec<u32> = (0..n).map(|t| ((t * 7 + 3) % k) as u32).collect();
                let mut acc = vec![f32::NEG_INFINITY; w];
                kernel.gather_max(&table, &codes, &mut acc);
                // Max is exact: no rounding, so equality.
                assert_eq!(
                    acc,
                    naive_gather_max(&table, &codes, w),
                    "{kernel:?} w {w} n {n}"
                );

                let g: Vec<f32> = (0..n * w)
                    .map(|i| ((i * 11 % 13) as f32 * 0.21).cos())
                    .collect();
                let inv: Vec<f32> = (0..n).map(|t| 0.9 + t as f32 * 0.01).collect();
                let mut acc = vec![f32::NEG_INFINITY; w];
                kernel.combine_max(&table, &codes, &g, &inv, &mut acc);
                let mut want = vec![f32::NEG_INFINITY; w];
                for t in 0..n {
                    for j in 0..w {
                        let v = (table[codes[t] as usize * w + j] + g[t * w + j]) * inv[t];
                        want[j] = want[j].max(v);
                    }
                }
                // One add and one multiply, each rounded the same way.
                assert_eq!(acc, want, "{kernel:?} combine w {w} n {n}");
            }
            // The byte table: same maxima as plain loops.
            let t8: Vec<u8> = table.iter().map(|v| ((v + 1.0) * 100.0) as u8).collect();
            for n in [0usize, 3, 7, 40] {
                // Every code in range but one past the table's last row
                // (skipped) when n is 7; the running maxima start above 0.
                let codes: Vec<u32> = (0..n)
                    .map(|t| {
                        if n == 7 && t == 2 {
                            k as u32
                        } else {
                            ((t * 5 + 1) % k) as u32
                        }
                    })
                    .collect();
                let w8 = w.div_ceil(32) * 32;
                let start: Vec<u8> = (0..w8).map(|j| (j * 13 % 90) as u8).collect();
                let mut acc = start.clone();
                let t8w: Vec<u8> = (0..k * w8).map(|i| t8[i % t8.len()]).collect();
                kernel.gather_max_u8(&t8w, &codes, &mut acc);
                let mut want = start.clone();
                for &c in codes.iter().filter(|&&c| (c as usize) < k) {
                    for j in 0..w8 {
                        want[j] = want[j].max(t8w[c as usize * w8 + j]);
                    }
                }
                assert_eq!(acc, want, "{kernel:?} u8 w {w8} n {n}");
                // The same over 16-bit codes.
                let narrow: Vec<u16> = codes.iter().map(|&c| c as u16).collect();
                let mut acc16 = start.clone();
                kernel.gather_max_u8_u16(&t8w, &narrow, &mut acc16);
                assert_eq!(acc16, want, "{kernel:?} u8 u16 w {w8} n {n}");
            }
            // A width that is not whole vectors is refused (left untouched).
            let mut acc = vec![f32::NEG_INFINITY; 5];
            kernel.gather_max(&table, &[0], &mut acc);
            assert!(acc.iter().all(|v| *v == f32::NEG_INFINITY));
        }
    }
}

#[test]
fn decompressed_norms_match_f64() {
    for kernel in Kernel::available() {
        for dim in [1usize, 16, 17, 128] {
            let c: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.13).sin() * 0.3).collect();
            let r: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.71).cos() * 0.05).collect();
            let want: f64 = c
                .iter()
                .zip(&r)
                .map(|(&a, &b)| (f64::from(a) + f64::from(b)).powi(2))
                .sum();
            // Each term is within 3u of exact, the sum adds γ_dim.
            let u = f64::from(f32::EPSILON) / 2.0;
            let bound = want * (3.0 * u + dim as f64 * u / (1.0 - dim as f64 * u)) + 1e-30;
            let got = f64::from(kernel.sq_norm_sum(&c, &r));
            assert!(
                (got - want).abs() <= bound,
                "{kernel:?} dim {dim}: {got} vs {want}"
            );

            let q: Vec<i8> = (0..dim)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect();
            let scale = 0.003f32;
            let want: f64 = q
                .iter()
                .zip(&r)
                .map(|(&a, &b)| (f64::from(a) * f64::from(scale) + f64::from(b)).powi(2))
                .sum();
            let bound = want * (4.0 * u + dim as f64 * u / (1.0 - dim as f64 * u)) + 1e-30;
            let got = f64::from(kernel.sq_norm_sum_i8(&q, scale, &r));
            assert!(
                (got - want).abs() <= bound,
                "{kernel:?} i8 dim {dim}: {got} vs {want}"
            );
        }
    }
}
