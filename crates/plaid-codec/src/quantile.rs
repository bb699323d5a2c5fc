//! Fast quantiles of large inputs by recursive multi-selection.
//!
//! [`crate::reference::quantile`] (sort, then interpolate) is the definition; these
//! functions give the same results bit for bit, in `O(n log m)` for `m` quantiles
//! instead of a full sort.

use std::cmp::Ordering;

/// Where quantile `q` falls among `n` sorted values: `(lo, hi, frac)` with
/// `position = q × (n − 1) = lo + frac` and `hi = min(lo + 1, n − 1)` (numpy "linear").
///
/// `n` must be positive and `q` in `[0, 1]`.
pub(crate) fn position(n: usize, q: f64) -> (usize, usize, f64) {
    let pos = q * (n - 1) as f64;
    // `pos` is in [0, n − 1], so the truncation is a floor and in range.
    let lo = (pos.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    (lo, hi, pos - lo as f64)
}

/// Linear interpolation between two order statistics, computed in `f64`.
///
/// When `frac` is 0 this returns `a` exactly; it is monotone in `frac`.
pub(crate) fn interpolate(a: f32, b: f32, frac: f64) -> f32 {
    if frac == 0.0 || a == b {
        return a;
    }
    let a64 = f64::from(a);
    (a64 + (f64::from(b) - a64) * frac) as f32
}

fn cmp(a: &f32, b: &f32) -> Ordering {
    a.total_cmp(b)
}

/// Places the order statistic of every rank in `ranks` (sorted, unique, relative to
/// the start of `values`) at its index, as a full sort would.
fn multi_select(values: &mut [f32], ranks: &[usize]) {
    if ranks.is_empty() || values.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let r = ranks[mid];
    let (left, _, right) = values.select_nth_unstable_by(r, cmp);
    multi_select(left, &ranks[..mid]);
    let right_ranks: Vec<usize> = ranks[mid + 1..].iter().map(|&x| x - r - 1).collect();
    multi_select(right, &right_ranks);
}

/// The quantiles `qs` (each in `[0, 1]`) of `values`, which are reordered.
///
/// Returns an empty vector when `values` is empty. Uses the `f32::total_cmp` order, so
/// callers must reject NaN first if NaN matters to them.
pub(crate) fn quantiles(values: &mut [f32], qs: &[f64]) -> Vec<f32> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let positions: Vec<_> = qs.iter().map(|&q| position(n, q.clamp(0.0, 1.0))).collect();
    let mut ranks: Vec<usize> = positions.iter().flat_map(|&(lo, hi, _)| [lo, hi]).collect();
    ranks.sort_unstable();
    ranks.dedup();
    multi_select(values, &ranks);
    positions
        .iter()
        .map(|&(lo, hi, frac)| interpolate(values[lo], values[hi], frac))
        .collect()
}

/// The quantiles `qs` of already sorted `values`.
pub(crate) fn quantiles_sorted(sorted: &[f32], qs: &[f64]) -> Vec<f32> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    qs.iter()
        .map(|&q| {
            let (lo, hi, frac) = position(n, q.clamp(0.0, 1.0));
            interpolate(sorted[lo], sorted[hi], frac)
        })
        .collect()
}

/// The positions next-plaid takes its cutoffs and weights at, for `b` buckets:
/// cutoffs at `i / b` for `i = 1..b`, weights at `(i + 0.5) / b` for `i = 0..b`.
pub(crate) fn bucket_positions(b: usize) -> (Vec<f64>, Vec<f64>) {
    let bf = b as f64;
    let cutoffs = (1..b).map(|i| i as f64 / bf).collect();
    let weights = (0..b).map(|i| (i as f64 + 0.5) / bf).collect();
    (cutoffs, weights)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests unwrap freely.
mod tests {
    use super::*;
    use crate::reference;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_reference_quantiles(
            values in proptest::collection::vec(-100.0f32..100.0, 1..300),
            qs in proptest::collection::vec(0.0f64..=1.0, 0..20),
        ) {
            let mut work = values.clone();
            let fast = quantiles(&mut work, &qs);
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            let from_sorted = quantiles_sorted(&sorted, &qs);
            for (i, &q) in qs.iter().enumerate() {
                let r = reference::quantile(&values, q).unwrap();
                prop_assert_eq!(fast[i].to_bits(), r.to_bits());
                prop_assert_eq!(from_sorted[i].to_bits(), r.to_bits());
            }
        }
    }

    #[test]
    fn numpy_linear_examples() {
        // numpy.quantile([1, 2, 3, 4], [0, 0.25, 0.5, 1]) == [1, 1.75, 2.5, 4]
        let mut v = [4.0f32, 1.0, 3.0, 2.0];
        assert_eq!(
            quantiles(&mut v, &[0.0, 0.25, 0.5, 1.0]),
            [1.0, 1.75, 2.5, 4.0]
        );
        assert!(quantiles(&mut [], &[0.5]).is_empty());
    }
}
