//! Plain-loop oracles: the documented definition of what the fast paths compute.
//!
//! Everything here is written for obviousness, not speed: one row against one
//! centroid at a time, sequential sums, no blocking and no threads. Tests and
//! benches compare the fast functions at the crate root with these. The fast
//! and reference functions reject the same inputs with the same errors.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, check_assign};
use crate::lloyd::{check_fit, normalize_rows, squared_shift};
use crate::{KMeans, KMeansConfig};

/// `Σ x_i · c_i`, summed in f32 in dimension order.
fn dot(x: &[f32], c: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for i in 0..x.len() {
        s += x[i] * c[i];
    }
    s
}

/// `Σ (x_i − c_i)²`, summed in f32 in dimension order.
fn squared_l2(x: &[f32], c: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for i in 0..x.len() {
        let d = x[i] - c[i];
        s += d * d;
    }
    s
}

/// Reference for [`crate::nearest_by_dot`]: for each row, the first centroid
/// index with the largest `x·c` (NaN never wins; all-NaN rows get 0).
///
/// # Errors
/// The same as [`crate::nearest_by_dot`].
pub fn nearest_by_dot(
    data: &[f32],
    centroids: &[f32],
    dim: usize,
    out: &mut [u32],
) -> Result<(), Error> {
    check_assign(data, centroids, dim, out)?;
    for (x, o) in data.chunks_exact(dim).zip(out.iter_mut()) {
        let mut best = f32::NEG_INFINITY;
        *o = 0;
        for (j, c) in centroids.chunks_exact(dim).enumerate() {
            let s = dot(x, c);
            if s > best {
                best = s;
                *o = j as u32;
            }
        }
    }
    Ok(())
}

/// Reference for [`crate::nearest_by_l2`]: for each row, the first centroid
/// index with the smallest `‖x − c‖²`, computed directly (NaN never wins).
///
/// # Errors
/// The same as [`crate::nearest_by_l2`].
pub fn nearest_by_l2(
    data: &[f32],
    centroids: &[f32],
    dim: usize,
    out: &mut [u32],
) -> Result<(), Error> {
    check_assign(data, centroids, dim, out)?;
    for (x, o) in data.chunks_exact(dim).zip(out.iter_mut()) {
        let mut best = f32::INFINITY;
        *o = 0;
        for (j, c) in centroids.chunks_exact(dim).enumerate() {
            let d = squared_l2(x, c);
            if d < best {
                best = d;
                *o = j as u32;
            }
        }
    }
    Ok(())
}

/// Reference for [`crate::fit`]: the same random choices (sample, init,
/// reseeding) from the same seed, with [`nearest_by_l2`] for assignment and
/// plain loops for the means. On data without near-ties it gives the same
/// clusters as [`crate::fit`]; centroids then agree to float rounding.
///
/// # Errors
/// The same as [`crate::fit`].
pub fn fit(data: &[f32], dim: usize, config: &KMeansConfig) -> Result<KMeans, Error> {
    let n = check_fit(data, dim, config)?;
    let k = config.k;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);

    // 1. Sample.
    let cap = k.saturating_mul(config.max_points_per_centroid);
    let mut sample: Vec<f32> = Vec::new();
    if n > cap {
        let mut index: Vec<usize> = (0..n).collect();
        index.shuffle(&mut rng);
        index.truncate(cap);
        index.sort_unstable();
        for i in index {
            sample.extend_from_slice(&data[i * dim..(i + 1) * dim]);
        }
    } else {
        sample.extend_from_slice(data);
    }
    let m = sample.len() / dim;

    // 2. Init with k distinct random points.
    let mut centroids = Vec::new();
    for i in rand::seq::index::sample(&mut rng, m, k) {
        centroids.extend_from_slice(&sample[i * dim..(i + 1) * dim]);
    }

    // 3. Lloyd iterations.
    let mut labels = vec![0u32; m];
    let mut iterations = 0;
    let mut reseeded = 0;
    for _ in 0..config.max_iters {
        nearest_by_l2(&sample, &centroids, dim, &mut labels)?;
        let mut sums = vec![0.0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            let l = l as usize;
            counts[l] += 1;
            for d in 0..dim {
                sums[l * dim + d] += f64::from(sample[i * dim + d]);
            }
        }
        let mut next = vec![0.0f32; k * dim];
        for j in 0..k {
            if counts[j] == 0 {
                let r = rng.random_range(0..m);
                next[j * dim..(j + 1) * dim].copy_from_slice(&sample[r * dim..(r + 1) * dim]);
                reseeded += 1;
            } else {
                for d in 0..dim {
                    next[j * dim + d] = (sums[j * dim + d] / counts[j] as f64) as f32;
                }
            }
        }
        let shift = squared_shift(&centroids, &next);
        centroids = next;
        iterations += 1;
        if shift < config.tol {
            break;
        }
    }

    // 4. Normalise.
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
