//! Lloyd's algorithm with deterministic sampling, init and empty-cluster reseeding.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::assign::{Blocks, Points, assign, squared_norms};
use crate::error::{Error, check_finite, check_k_fits, num_rows};
use crate::{KMeans, KMeansConfig};

/// Trains `config.k` centroids on the `n × dim` row-major `data` with Lloyd's algorithm.
///
/// The steps, all driven by one `ChaCha8Rng` seeded with `config.seed`:
/// 1. If `n > k · max_points_per_centroid`, shuffle `0..n`, keep the first
///    `k · max_points_per_centroid` indices and sort them: that is the sample.
/// 2. Initialise with `k` distinct sample points chosen at random (not k-means++).
/// 3. Up to `max_iters` times: assign each sample point to its nearest centroid
///    (squared L2), replace each centroid by the mean of its points (summed in
///    f64), reseed each empty cluster (in index order) with a random sample
///    point, and stop once the total squared centroid shift is below `tol`.
/// 4. If `normalize`, scale each centroid to unit L2 norm (norm floored at 1e-12).
///
/// The result is bit-identical for a given input and config whatever the size
/// of the rayon pool it runs on: blocks are fixed-size and every sum runs in a
/// fixed order. It may differ between CPUs with different SIMD widths.
///
/// # Errors
/// - [`Error::Shape`] when `dim` is zero or `data` is not a whole number of rows.
/// - [`Error::EmptyInput`] when `data` has no rows.
/// - [`Error::ZeroClusters`] when `k` is zero.
/// - [`Error::TooManyCentroids`] when `k` does not fit in `u32`.
/// - [`Error::ZeroMaxPointsPerCentroid`] when `max_points_per_centroid` is zero.
/// - [`Error::TooFewPoints`] when `k` exceeds the number of rows.
/// - [`Error::NonFinite`] naming the first row holding NaN or an infinity.
pub fn fit(data: &[f32], dim: usize, config: &KMeansConfig) -> Result<KMeans, Error> {
    let n = check_fit(data, dim, config)?;
    let k = config.k;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let cap = k.saturating_mul(config.max_points_per_centroid);
    let points = if n > cap {
        let mut index: Vec<usize> = (0..n).collect();
        index.shuffle(&mut rng);
        index.truncate(cap);
        index.sort_unstable();
        Points::subset(data, dim, index)
    } else {
        Points::all(data, dim)
    };
    let m = points.len();

    let mut centroids = Vec::with_capacity(k * dim);
    for i in rand::seq::index::sample(&mut rng, m, k) {
        centroids.extend_from_slice(points.row(i));
    }

    let mut labels = vec![0u32; m];
    let mut next = vec![0.0f32; k * dim];
    let mut iterations = 0;
    let mut reseeded = 0;
    for _ in 0..config.max_iters {
        let norms = squared_norms(&centroids, dim);
        assign(
            &points,
            &centroids,
            Some(&norms),
            &mut labels,
            Blocks::DEFAULT,
        );
        let empty = update_means(&points, &labels, dim, &mut next);
        for &j in &empty {
            let r = rng.random_range(0..m);
            next[j * dim..(j + 1) * dim].copy_from_slice(points.row(r));
        }
        reseeded += empty.len();
        let shift = squared_shift(&centroids, &next);
        std::mem::swap(&mut centroids, &mut next);
        iterations += 1;
        if shift < config.tol {
            break;
        }
    }
    if config.normalize {
        normalize_rows(&mut centroids, dim);
    }
    Ok(KMeans {
        centroids,
        dim,
        k,
        iterations,
        reseeded,
    })
}

/// Validates the inputs of `fit` and returns the number of rows.
pub(crate) fn check_fit(data: &[f32], dim: usize, config: &KMeansConfig) -> Result<usize, Error> {
    let n = num_rows("data", data, dim)?;
    if n == 0 {
        return Err(Error::EmptyInput { what: "data" });
    }
    if config.k == 0 {
        return Err(Error::ZeroClusters);
    }
    check_k_fits(config.k)?;
    if config.max_points_per_centroid == 0 {
        return Err(Error::ZeroMaxPointsPerCentroid);
    }
    if config.k > n {
        return Err(Error::TooFewPoints {
            k: config.k,
            num_points: n,
        });
    }
    check_finite("data", data, dim)?;
    Ok(n)
}

/// Writes the mean of each cluster's points into `next` (`k × dim`) and
/// returns the empty clusters in ascending order (their rows are left as they were).
///
/// Each cluster sums its points in ascending point order in f64, so the result
/// does not depend on how rayon splits the clusters.
fn update_means(points: &Points<'_>, labels: &[u32], dim: usize, next: &mut [f32]) -> Vec<usize> {
    let k = next.len() / dim;
    // Counting sort of point indices by label: `order[start[j]..start[j + 1]]`
    // lists cluster j's points in ascending order.
    let mut start = vec![0usize; k + 1];
    for &l in labels {
        start[l as usize + 1] += 1;
    }
    for j in 0..k {
        start[j + 1] += start[j];
    }
    let mut fill = start.clone();
    let mut order = vec![0usize; labels.len()];
    for (i, &l) in labels.iter().enumerate() {
        order[fill[l as usize]] = i;
        fill[l as usize] += 1;
    }
    next.par_chunks_mut(dim).enumerate().for_each_init(
        || vec![0.0f64; dim],
        |acc, (j, out)| {
            let members = &order[start[j]..start[j + 1]];
            if members.is_empty() {
                return;
            }
            acc.fill(0.0);
            for &i in members {
                for (a, &v) in acc.iter_mut().zip(points.row(i)) {
                    *a += f64::from(v);
                }
            }
            let count = members.len() as f64;
            for (o, &a) in out.iter_mut().zip(acc.iter()) {
                *o = (a / count) as f32;
            }
        },
    );
    (0..k).filter(|&j| start[j] == start[j + 1]).collect()
}

/// `Σ (a − b)²` over all entries, in f64, in index order.
pub(crate) fn squared_shift(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum()
}

/// Scales each row to unit L2 norm; the norm (computed in f64) is floored at 1e-12.
pub(crate) fn normalize_rows(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        for v in row.iter_mut() {
            *v = (f64::from(*v) / norm) as f32;
        }
    }
}
