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
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let points = sample_points(data, dim, n, config, &mut rng);
    lloyd(
        &points,
        dim,
        config,
        rng,
        &mut |points, centroids, norms, labels| {
            assign(points, centroids, Some(norms), labels, Blocks::DEFAULT);
            Ok::<(), std::convert::Infallible>(())
        },
    )
    .map_err(|e| match e {
        FitWithError::KMeans(e) => e,
        FitWithError::Assigner(never) => match never {},
    })
}

/// Nearest-centroid assignment in squared L2 distance, supplied by the
/// caller of [`fit_with`] (for example a GPU).
///
/// [`fit_with`] calls [`Assigner::load_points`] once with the training
/// sample, then [`Assigner::assign_l2`] once per Lloyd iteration.
pub trait Assigner {
    /// The assigner's own error.
    type Error;
    /// Receives the training points (`m × dim`, row-major), once.
    ///
    /// # Errors
    /// Whatever the assigner cannot do (out of memory, say).
    fn load_points(&mut self, points: &[f32], dim: usize) -> Result<(), Self::Error>;
    /// Writes into `labels[i]` the index of the centroid nearest in squared
    /// L2 distance to loaded point `i` (`centroids` is `k × dim`, `norms` its
    /// squared row norms). Ties should go to the lowest index, as in
    /// [`crate::nearest_by_l2`].
    ///
    /// # Errors
    /// Whatever the assigner cannot do.
    fn assign_l2(
        &mut self,
        centroids: &[f32],
        norms: &[f32],
        labels: &mut [u32],
    ) -> Result<(), Self::Error>;
}

/// An error of [`fit_with`]: from the inputs, or from the caller's assigner.
#[derive(Debug)]
pub enum FitWithError<E> {
    /// The inputs were refused (as by [`fit`]).
    KMeans(Error),
    /// The assigner failed.
    Assigner(E),
}

impl<E: std::fmt::Display> std::fmt::Display for FitWithError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitWithError::KMeans(e) => write!(f, "{e}"),
            FitWithError::Assigner(e) => write!(f, "assigner failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for FitWithError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FitWithError::KMeans(e) => Some(e),
            FitWithError::Assigner(e) => Some(e),
        }
    }
}

/// [`fit`] with the assignment step done by `assigner`: the same sample,
/// initialisation, mean updates, reseeding and normalisation (all on the
/// CPU, in the same order), so with an exact assigner the result is
/// [`fit`]'s. The sample is gathered into one contiguous buffer first.
///
/// # Errors
/// [`FitWithError::KMeans`] for the input errors of [`fit`];
/// [`FitWithError::Assigner`] when the assigner fails.
pub fn fit_with<A: Assigner>(
    data: &[f32],
    dim: usize,
    config: &KMeansConfig,
    assigner: &mut A,
) -> Result<KMeans, FitWithError<A::Error>> {
    let n = check_fit(data, dim, config).map_err(FitWithError::KMeans)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let sampled = sample_points(data, dim, n, config, &mut rng);
    let mut gathered = Vec::with_capacity(sampled.len() * dim);
    for i in 0..sampled.len() {
        gathered.extend_from_slice(sampled.row(i));
    }
    drop(sampled);
    assigner
        .load_points(&gathered, dim)
        .map_err(FitWithError::Assigner)?;
    let points = Points::all(&gathered, dim);
    lloyd(
        &points,
        dim,
        config,
        rng,
        &mut |_, centroids, norms, labels| assigner.assign_l2(centroids, norms, labels),
    )
}

/// Step 1 of [`fit`]: all rows, or `k · max_points_per_centroid` of them
/// chosen at random and sorted.
fn sample_points<'a>(
    data: &'a [f32],
    dim: usize,
    n: usize,
    config: &KMeansConfig,
    rng: &mut ChaCha8Rng,
) -> Points<'a> {
    let cap = config.k.saturating_mul(config.max_points_per_centroid);
    if n > cap {
        let mut index: Vec<usize> = (0..n).collect();
        index.shuffle(rng);
        index.truncate(cap);
        index.sort_unstable();
        Points::subset(data, dim, index)
    } else {
        Points::all(data, dim)
    }
}

/// A labelling step of [`lloyd`]: points, centroids, their squared norms, labels out.
type AssignStep<'s, E> = dyn FnMut(&Points<'_>, &[f32], &[f32], &mut [u32]) -> Result<(), E> + 's;

/// Steps 2–4 of [`fit`] on the sampled `points`.
fn lloyd<E>(
    points: &Points<'_>,
    dim: usize,
    config: &KMeansConfig,
    mut rng: ChaCha8Rng,
    assign_step: &mut AssignStep<'_, E>,
) -> Result<KMeans, FitWithError<E>> {
    let k = config.k;
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
        assign_step(points, &centroids, &norms, &mut labels).map_err(FitWithError::Assigner)?;
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= k) {
            return Err(FitWithError::KMeans(Error::LabelOutOfRange {
                label: bad,
                k,
            }));
        }
        let empty = update_means(points, &labels, dim, &mut next);
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
