//! Blocked nearest-centroid assignment.
//!
//! Scores for a block of rows against a block of centroids come from one
//! sequential faer GEMM into a bounded scratch buffer; row blocks run in
//! parallel on the caller's rayon pool. The block partition is fixed by
//! [`Blocks`], never by the thread count, so results do not depend on it.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::{Error, check_assign};

/// Block sizes of the assignment kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocks {
    /// Rows per block (the unit of parallel work).
    pub(crate) rows: usize,
    /// Centroids per GEMM inside a row block.
    pub(crate) centroids: usize,
}

impl Blocks {
    /// 512 rows × 2048 centroids: a 4 MiB score buffer per rayon job whatever
    /// `n` and `k`, and GEMMs large enough to run near peak.
    pub(crate) const DEFAULT: Blocks = Blocks {
        rows: 512,
        centroids: 2048,
    };
}

/// The rows being assigned: either all of `data`, or the rows named by `index`.
#[derive(Debug)]
pub(crate) struct Points<'a> {
    data: &'a [f32],
    dim: usize,
    index: Option<Vec<usize>>,
}

impl<'a> Points<'a> {
    /// Every row of `data`.
    pub(crate) fn all(data: &'a [f32], dim: usize) -> Self {
        Points {
            data,
            dim,
            index: None,
        }
    }

    /// The rows of `data` named by `index` (each `< data.len() / dim`).
    pub(crate) fn subset(data: &'a [f32], dim: usize, index: Vec<usize>) -> Self {
        Points {
            data,
            dim,
            index: Some(index),
        }
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        match &self.index {
            Some(index) => index.len(),
            None => self.data.len() / self.dim,
        }
    }

    /// Point `i`.
    pub(crate) fn row(&self, i: usize) -> &'a [f32] {
        let r = match &self.index {
            Some(index) => index[i],
            None => i,
        };
        &self.data[r * self.dim..(r + 1) * self.dim]
    }
}

/// Index of the centroid with the largest dot product for each row.
///
/// Ties go to the lowest centroid index and NaN scores never win; a row whose
/// scores are all NaN or `-inf` gets index 0. This computes the same thing as
/// [`crate::reference::nearest_by_dot`], up to float rounding.
///
/// `data` is `n × dim` and `centroids` is `k × dim`, both row-major; `out` has
/// length `n`. Work is spread over the current rayon pool.
///
/// # Errors
/// - [`Error::Shape`] when `dim` is zero or a slice is not a whole number of rows.
/// - [`Error::LengthMismatch`] when `out.len() != n`.
/// - [`Error::EmptyInput`] when there are rows but no centroids.
/// - [`Error::TooManyCentroids`] when `k` does not fit in `u32`.
pub fn nearest_by_dot(
    data: &[f32],
    centroids: &[f32],
    dim: usize,
    out: &mut [u32],
) -> Result<(), Error> {
    let (n, _) = check_assign(data, centroids, dim, out)?;
    if n > 0 {
        assign(
            &Points::all(data, dim),
            centroids,
            None,
            out,
            Blocks::DEFAULT,
        );
    }
    Ok(())
}

/// Index of the centroid nearest in squared L2 distance for each row.
///
/// The distance is ranked as `‖c‖² − 2·x·c` (the `‖x‖²` term does not change
/// the ranking). Ties go to the lowest centroid index and NaN distances
/// never win. This computes the same thing as
/// [`crate::reference::nearest_by_l2`], up to float rounding.
///
/// Shapes are as in [`nearest_by_dot`].
///
/// # Errors
/// The same as [`nearest_by_dot`].
pub fn nearest_by_l2(
    data: &[f32],
    centroids: &[f32],
    dim: usize,
    out: &mut [u32],
) -> Result<(), Error> {
    let (n, _) = check_assign(data, centroids, dim, out)?;
    if n > 0 {
        let norms = squared_norms(centroids, dim);
        assign(
            &Points::all(data, dim),
            centroids,
            Some(&norms),
            out,
            Blocks::DEFAULT,
        );
    }
    Ok(())
}

/// `‖c‖²` of each row, summed in f32 in dimension order.
pub(crate) fn squared_norms(centroids: &[f32], dim: usize) -> Vec<f32> {
    centroids
        .chunks_exact(dim)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect()
}

/// Scratch space of one rayon job (reused across the row blocks it runs).
struct Scratch {
    /// Rows of the current block when they must be gathered.
    gathered: Vec<f32>,
    /// `rows × centroids` scores of one GEMM, row-major.
    scores: Vec<f32>,
    /// Best key seen so far per row of the block.
    best: Vec<f32>,
}

/// Assigns every point to the centroid with the largest key (see
/// [`argmax_first`]): `x·c` when `norms` is `None`, `2·x·c − ‖c‖²` when it is given.
///
/// Preconditions (checked by callers): `points.len() == out.len() > 0`,
/// `centroids` is a non-empty whole number of rows, `norms` has one entry per centroid.
pub(crate) fn assign(
    points: &Points<'_>,
    centroids: &[f32],
    norms: Option<&[f32]>,
    out: &mut [u32],
    blocks: Blocks,
) {
    let dim = points.dim;
    let k = centroids.len() / dim;
    let cb = blocks.centroids.min(k);
    let rb = blocks.rows;
    out.par_chunks_mut(rb).enumerate().for_each_init(
        || Scratch {
            gathered: Vec::new(),
            scores: vec![0.0; rb.min(points.len()) * cb],
            best: Vec::new(),
        },
        |scratch, (b, out_block)| {
            let start = b * rb;
            let rows = out_block.len();
            let x: &[f32] = match &points.index {
                None => &points.data[start * dim..(start + rows) * dim],
                Some(_) => {
                    scratch.gathered.clear();
                    for i in start..start + rows {
                        scratch.gathered.extend_from_slice(points.row(i));
                    }
                    &scratch.gathered
                }
            };
            assign_block(
                x,
                dim,
                centroids,
                norms,
                cb,
                &mut scratch.scores,
                &mut scratch.best,
                out_block,
            );
        },
    );
}

/// Assigns one block of rows `x` (`out.len() × dim`), one centroid block at a time.
#[allow(clippy::too_many_arguments)] // Internal kernel: the scratch buffers are passed in to be reused.
fn assign_block(
    x: &[f32],
    dim: usize,
    centroids: &[f32],
    norms: Option<&[f32]>,
    cb: usize,
    scores: &mut [f32],
    best: &mut Vec<f32>,
    out: &mut [u32],
) {
    let rows = out.len();
    best.clear();
    best.resize(rows, f32::NEG_INFINITY);
    out.fill(0);
    let xm = MatRef::from_row_major_slice(x, rows, dim);
    for (block, cblock) in centroids.chunks(cb * dim).enumerate() {
        let first = block * cb;
        let ncent = cblock.len() / dim;
        let cm = MatRef::from_row_major_slice(cblock, ncent, dim);
        let buf = &mut scores[..rows * ncent];
        let sm = MatMut::from_row_major_slice_mut(buf, rows, ncent);
        matmul(sm, Accum::Replace, xm, cm.transpose(), 1.0f32, Par::Seq);
        for ((row, b), o) in buf
            .chunks_exact(ncent)
            .zip(best.iter_mut())
            .zip(out.iter_mut())
        {
            let (v, j) = match norms {
                None => argmax_first::<false>(row, row),
                Some(norms) => argmax_first::<true>(row, &norms[first..first + ncent]),
            };
            // Strictly greater: an equal key in a later block loses to the earlier index.
            if v > *b {
                *b = v;
                *o = (first + j) as u32;
            }
        }
    }
}

/// Lanes of the argmax scan; the per-lane loop vectorises to compare + blend.
const LANES: usize = 16;

/// The largest key of a row of scores and its first index, where the key of
/// score `s` at `j` is `s`, or `2·s − norms[j]` when `L2` (the ranked L2
/// distance, negated exactly: `fl(2s − n) = −fl(n − 2s)`). NaN never wins; a
/// row with no key above `-inf` gives `(-inf, 0)`. `norms` has the length of
/// `scores` (callers pass `scores` itself when `L2` is false).
pub(crate) fn argmax_first<const L2: bool>(scores: &[f32], norms: &[f32]) -> (f32, usize) {
    debug_assert_eq!(scores.len(), norms.len());
    let key = |s: f32, n: f32| if L2 { 2.0 * s - n } else { s };
    let mut best_v = [f32::NEG_INFINITY; LANES];
    let mut best_i = [0usize; LANES];
    let chunks = scores.chunks_exact(LANES);
    let tail = chunks.remainder();
    for (c, (chunk, nchunk)) in chunks.zip(norms.chunks_exact(LANES)).enumerate() {
        for l in 0..LANES {
            let v = key(chunk[l], nchunk[l]);
            // Strict `>` keeps each lane's first maximum and skips NaN.
            if v > best_v[l] {
                best_v[l] = v;
                best_i[l] = c * LANES + l;
            }
        }
    }
    let mut v = f32::NEG_INFINITY;
    let mut i = 0;
    for l in 0..LANES {
        if best_v[l] > v || (best_v[l] == v && best_i[l] < i) {
            v = best_v[l];
            i = best_i[l];
        }
    }
    let base = scores.len() - tail.len();
    for (t, (&s, &n)) in tail.iter().zip(&norms[base..]).enumerate() {
        let k = key(s, n);
        if k > v {
            v = k;
            i = base + t;
        }
    }
    (v, i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests unwrap freely.
mod tests {
    use super::*;
    use crate::reference;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn matches_reference_argmax_first() {
        let cases: &[(&[f32], (f32, usize))] = &[
            (&[], (f32::NEG_INFINITY, 0)),
            (&[f32::NAN, f32::NAN], (f32::NEG_INFINITY, 0)),
            (&[f32::NEG_INFINITY, -1.0], (-1.0, 1)),
            (&[1.0; 40], (1.0, 0)),
            (&[0.0, f32::NAN, 3.0, 3.0, f32::NAN], (3.0, 2)),
        ];
        for (row, expected) in cases {
            assert_eq!(argmax_first::<false>(row, row), *expected, "row {row:?}");
        }
        // The maximum in each position, repeated later in another lane.
        for n in 1..50 {
            for p in 0..n {
                let mut row = vec![0.0f32; n];
                row[p] = 2.0;
                if p + 17 < n {
                    row[p + 17] = 2.0;
                }
                assert_eq!(argmax_first::<false>(&row, &row), (2.0, p), "n {n} p {p}");
                // As L2 keys with zero norms: 2·2 − 0.
                assert_eq!(
                    argmax_first::<true>(&row, &vec![0.0; n]),
                    (4.0, p),
                    "n {n} p {p}"
                );
            }
        }
    }

    /// Tiny blocks exercise every partial-block path against the oracle.
    /// Integer-valued data makes every dot product exact, so indices must match.
    #[test]
    fn matches_reference_small_blocks_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(n, k, dim) in &[(1, 1, 1), (13, 11, 3), (40, 23, 9), (7, 64, 17)] {
            let data: Vec<f32> = (0..n * dim)
                .map(|_| rng.random_range(-4i32..5) as f32)
                .collect();
            let cents: Vec<f32> = (0..k * dim)
                .map(|_| rng.random_range(-4i32..5) as f32)
                .collect();
            for blocks in [
                Blocks {
                    rows: 4,
                    centroids: 5,
                },
                Blocks {
                    rows: 1,
                    centroids: 1,
                },
                Blocks::DEFAULT,
            ] {
                for l2 in [false, true] {
                    let mut fast = vec![0u32; n];
                    let mut slow = vec![0u32; n];
                    let norms = squared_norms(&cents, dim);
                    let norms = l2.then_some(norms.as_slice());
                    assign(&Points::all(&data, dim), &cents, norms, &mut fast, blocks);
                    if l2 {
                        reference::nearest_by_l2(&data, &cents, dim, &mut slow).unwrap();
                    } else {
                        reference::nearest_by_dot(&data, &cents, dim, &mut slow).unwrap();
                    }
                    assert_eq!(fast, slow, "n {n} k {k} dim {dim} {blocks:?} l2 {l2}");
                }
            }
        }
    }

    #[test]
    fn gathered_subset_matches_contiguous_copy() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, k, dim) = (50, 9, 6);
        let data = random(&mut rng, n * dim);
        let cents = random(&mut rng, k * dim);
        let index: Vec<usize> = (0..n).filter(|i| i % 3 != 1).collect();
        let copy: Vec<f32> = index
            .iter()
            .flat_map(|&i| data[i * dim..(i + 1) * dim].to_vec())
            .collect();
        let blocks = Blocks {
            rows: 4,
            centroids: 4,
        };
        let mut a = vec![0u32; index.len()];
        let mut b = vec![0u32; index.len()];
        assign(
            &Points::subset(&data, dim, index),
            &cents,
            None,
            &mut a,
            blocks,
        );
        assign(&Points::all(&copy, dim), &cents, None, &mut b, blocks);
        assert_eq!(a, b);
    }
}
