//! Residual quantisation: bucket cutoffs, reconstruction weights, encode and decode.

use crate::pack::pack_with;
use crate::quantile;
use crate::table::DecodeTable;
use crate::types::EmbeddingsView;
use crate::{Error, Nbits};
use rayon::prelude::*;

/// How bucket cutoffs and weights are shared between dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantizerKind {
    /// next-plaid compatible: one set of `B − 1` cutoffs and `B` weights for every
    /// dimension, from quantiles of all residual values pooled (spec §1.2).
    Global,
    /// Ours: each dimension has its own `B − 1` cutoffs and `B` weights, from that
    /// dimension's quantiles refined by Lloyd–Max iterations. Never worse than `Global`
    /// on the training set (see [`ResidualQuantizer::train`]). Not readable by next-plaid.
    PerDim,
}

/// Upper bound on Lloyd–Max refinement steps per dimension for [`QuantizerKind::PerDim`].
const LLOYD_MAX_ITERS: usize = 32;

/// Quantises residual values (`embedding − centroid`) to `nbits` per dimension.
///
/// With `B = 2^nbits` buckets, a value's bucket is the number of cutoffs strictly below
/// it, so a value equal to a cutoff goes to the lower bucket; bucket `b` decodes to
/// weight `b`. Cutoffs and weights are stored flat: `B − 1` and `B` values for
/// [`QuantizerKind::Global`], or `dim × (B − 1)` and `dim × B` values, row-major by
/// dimension, for [`QuantizerKind::PerDim`].
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualQuantizer {
    kind: QuantizerKind,
    nbits: Nbits,
    dim: usize,
    cutoffs: Vec<f32>,
    weights: Vec<f32>,
    table: DecodeTable,
}

/// The bucket of `v`: how many of `cutoffs` are strictly below it.
#[inline]
fn count_above(cutoffs: &[f32], v: f32) -> u8 {
    cutoffs.iter().map(|&c| u8::from(v > c)).sum()
}

/// The first non-finite value of a `dim`-wide row-major matrix, reported by row.
pub(crate) fn check_finite(data: &[f32], dim: usize, what: &'static str) -> Result<(), Error> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFinite {
            what,
            row: i / dim.max(1),
        }),
        None => Ok(()),
    }
}

impl ResidualQuantizer {
    /// Trains a quantizer on residual rows.
    ///
    /// - [`QuantizerKind::Global`] (spec §1.2): all values pooled; cutoffs are the
    ///   quantiles at `i / B` (`i = 1..B`), weights at `(i + 0.5) / B` (`i = 0..B`), with
    ///   numpy "linear" interpolation.
    /// - [`QuantizerKind::PerDim`]: for each dimension, up to 32 Lloyd–Max steps (weights
    ///   become bucket means, keeping the old weight of an empty bucket; cutoffs become
    ///   midpoints of adjacent weights) from two starts: that dimension's quantiles, and
    ///   the Global parameters. The dimension keeps whichever of those two results or the
    ///   Global parameters has the lowest squared error on its training values, so the
    ///   total training error is never above Global's.
    ///
    /// Every trained quantizer has non-decreasing weights with weight `b` inside bucket
    /// `b`'s interval `[cutoff_{b−1}, cutoff_b]`, and its edge weights inside the range
    /// of all training values (every dimension pooled). So a training value in an interior
    /// bucket decodes with an error of at most that bucket's cutoff spacing, and one in an
    /// edge bucket with at most the distance from the edge cutoff to the pooled min or max.
    ///
    /// # Errors
    /// [`Error::ZeroDim`]/[`Error::DimNotMultiple`] when rows do not pack into whole
    /// bytes, [`Error::EmptyTrainingSet`] without rows, and [`Error::NonFinite`] when a
    /// residual is NaN or infinite.
    pub fn train(
        residuals: EmbeddingsView<'_>,
        nbits: Nbits,
        kind: QuantizerKind,
    ) -> Result<Self, Error> {
        let dim = residuals.dim();
        nbits.check_dim(dim)?;
        if residuals.is_empty() {
            return Err(Error::EmptyTrainingSet);
        }
        check_finite(residuals.as_slice(), dim, "residuals")?;
        let b = nbits.num_buckets();
        let (cq, wq) = quantile::bucket_positions(b);
        let mut pooled = residuals.as_slice().to_vec();
        let mut global_cutoffs =
            quantile::quantiles(&mut pooled, &[cq.clone(), wq.clone()].concat());
        drop(pooled);
        let global_weights = global_cutoffs.split_off(b - 1);
        match kind {
            QuantizerKind::Global => {
                Self::from_parts(kind, nbits, dim, global_cutoffs, global_weights)
            }
            QuantizerKind::PerDim => {
                let n = residuals.num_rows();
                let mut columns = vec![0.0f32; dim * n];
                for (i, row) in residuals.rows().enumerate() {
                    for (d, &v) in row.iter().enumerate() {
                        columns[d * n + i] = v;
                    }
                }
                let per_dim: Vec<(Vec<f32>, Vec<f32>)> = columns
                    .par_chunks(n)
                    .map(|col| train_dim(col, &cq, &wq, &global_cutoffs, &global_weights))
                    .collect();
                let mut cutoffs = Vec::with_capacity(dim * (b - 1));
                let mut weights = Vec::with_capacity(dim * b);
                for (c, w) in per_dim {
                    cutoffs.extend(c);
                    weights.extend(w);
                }
                Self::from_parts(kind, nbits, dim, cutoffs, weights)
            }
        }
    }

    /// Builds a quantizer from stored parameters (for example next-plaid's
    /// `bucket_cutoffs.npy` and `bucket_weights.npy`, with [`QuantizerKind::Global`]).
    ///
    /// # Errors
    /// [`Error::ZeroDim`]/[`Error::DimNotMultiple`] when rows do not pack into whole
    /// bytes; [`Error::Shape`] when `cutoffs` does not hold `B − 1` values (Global) or
    /// `dim × (B − 1)` (PerDim), or `weights` does not hold `B` or `dim × B`;
    /// [`Error::NonFinite`] for a NaN or infinite cutoff or weight (`row` is its flat
    /// index); [`Error::UnsortedCutoffs`] when the cutoffs of a dimension decrease.
    pub fn from_parts(
        kind: QuantizerKind,
        nbits: Nbits,
        dim: usize,
        cutoffs: Vec<f32>,
        weights: Vec<f32>,
    ) -> Result<Self, Error> {
        nbits.check_dim(dim)?;
        let b = nbits.num_buckets();
        let sets = match kind {
            QuantizerKind::Global => 1,
            QuantizerKind::PerDim => dim,
        };
        for (what, v, per) in [("cutoffs", &cutoffs, b - 1), ("weights", &weights, b)] {
            if v.len() != sets * per {
                return Err(Error::Shape {
                    what,
                    expected: sets * per,
                    found: v.len(),
                });
            }
            check_finite(v, 1, what)?;
        }
        for (s, set) in cutoffs.chunks_exact(b - 1).enumerate() {
            if let Some(i) = set.windows(2).position(|w| w[1] < w[0]) {
                return Err(Error::UnsortedCutoffs {
                    index: s * (b - 1) + i + 1,
                });
            }
        }
        let table = DecodeTable::build(kind, nbits, dim, &weights);
        Ok(Self {
            kind,
            nbits,
            dim,
            cutoffs,
            weights,
            table,
        })
    }

    /// Whether parameters are shared by all dimensions or per dimension.
    pub fn kind(&self) -> QuantizerKind {
        self.kind
    }

    /// Bits per dimension.
    pub fn nbits(&self) -> Nbits {
        self.nbits
    }

    /// Row dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes in one packed row, `dim × nbits / 8`.
    pub fn packed_len(&self) -> usize {
        self.nbits.packed_len(self.dim)
    }

    /// The flat cutoffs (`B − 1`, or `dim × (B − 1)` row-major by dimension).
    pub fn cutoffs(&self) -> &[f32] {
        &self.cutoffs
    }

    /// The flat weights (`B`, or `dim × B` row-major by dimension).
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The decode table behind [`Self::decode_row`].
    pub fn decode_table(&self) -> &DecodeTable {
        &self.table
    }

    /// The cutoffs of dimension `dim_index` (for Global, the shared ones). The caller
    /// guarantees `dim_index < dim`.
    #[inline]
    fn cutoffs_of(&self, dim_index: usize) -> &[f32] {
        match self.kind {
            QuantizerKind::Global => &self.cutoffs,
            QuantizerKind::PerDim => {
                let per = self.nbits.num_buckets() - 1;
                &self.cutoffs[dim_index * per..(dim_index + 1) * per]
            }
        }
    }

    /// The bucket of `value` in dimension `dim_index`: the number of cutoffs `c` with
    /// `value > c`. A value equal to a cutoff goes to the lower bucket; NaN goes to 0.
    ///
    /// # Panics
    /// When `dim_index >= self.dim()`.
    pub fn bucket(&self, dim_index: usize, value: f32) -> u8 {
        assert!(
            dim_index < self.dim,
            "bucket: dim_index {dim_index} out of range for dim {}",
            self.dim
        );
        count_above(self.cutoffs_of(dim_index), value)
    }

    /// Bucketizes and packs one residual row into `out`.
    ///
    /// # Panics
    /// When `residual.len() != dim` or `out.len() != packed_len`.
    /// [`Self::try_encode_row`] returns an error instead.
    pub fn encode_row(&self, residual: &[f32], out: &mut [u8]) {
        if let Err(e) = self.try_encode_row(residual, out) {
            panic!("encode_row: {e}");
        }
    }

    /// Bucketizes and packs one residual row into `out`, checking lengths.
    ///
    /// # Errors
    /// [`Error::Shape`] when `residual.len() != dim` or `out.len() != packed_len`.
    pub fn try_encode_row(&self, residual: &[f32], out: &mut [u8]) -> Result<(), Error> {
        self.check_row(residual.len(), out.len())?;
        self.encode_unchecked(residual, None, out);
        Ok(())
    }

    /// Checks the lengths of a `dim`-wide float row and its packed form.
    pub(crate) fn check_row(&self, row_len: usize, packed_len: usize) -> Result<(), Error> {
        if row_len != self.dim {
            return Err(Error::Shape {
                what: "residual row",
                expected: self.dim,
                found: row_len,
            });
        }
        if packed_len != self.packed_len() {
            return Err(Error::Shape {
                what: "packed row",
                expected: self.packed_len(),
                found: packed_len,
            });
        }
        Ok(())
    }

    /// Encodes `x − centroid` (or `x` when `centroid` is `None`) without materialising
    /// the residual. Lengths were checked by the caller.
    pub(crate) fn encode_unchecked(&self, x: &[f32], centroid: Option<&[f32]>, out: &mut [u8]) {
        let value = |d: usize| match centroid {
            Some(c) => x[d] - c[d],
            None => x[d],
        };
        match self.kind {
            QuantizerKind::Global => {
                let cutoffs = &self.cutoffs[..];
                pack_with(self.nbits, out, |d| count_above(cutoffs, value(d)));
            }
            QuantizerKind::PerDim => {
                pack_with(self.nbits, out, |d| {
                    count_above(self.cutoffs_of(d), value(d))
                });
            }
        }
    }

    /// Decodes one packed row into residual values (no centroid added) through the
    /// [`DecodeTable`]. Any bytes are valid.
    ///
    /// # Panics
    /// When `packed.len() != packed_len` or `out.len() != dim`.
    /// [`Self::try_decode_row`] returns an error instead.
    pub fn decode_row(&self, packed: &[u8], out: &mut [f32]) {
        self.table.decode_row(packed, out);
    }

    /// Decodes one packed row into residual values, checking lengths. Any bytes are valid.
    ///
    /// # Errors
    /// [`Error::Shape`] when `packed.len() != packed_len` or `out.len() != dim`.
    pub fn try_decode_row(&self, packed: &[u8], out: &mut [f32]) -> Result<(), Error> {
        self.table.try_decode_row(packed, out)
    }
}

/// Squared reconstruction error of one dimension's values, summed in row order.
fn sum_squared_error(col: &[f32], cutoffs: &[f32], weights: &[f32]) -> f64 {
    col.iter()
        .map(|&v| {
            let e = v - weights[usize::from(count_above(cutoffs, v))];
            f64::from(e) * f64::from(e)
        })
        .sum()
}

/// Trains one dimension of a PerDim quantizer (see [`ResidualQuantizer::train`]).
fn train_dim(
    col: &[f32],
    cq: &[f64],
    wq: &[f64],
    global_cutoffs: &[f32],
    global_weights: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let mut sorted = col.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let mut prefix = Vec::with_capacity(sorted.len() + 1);
    let mut acc = 0.0f64;
    prefix.push(acc);
    for &v in &sorted {
        acc += f64::from(v);
        prefix.push(acc);
    }
    let own = lloyd_max(
        &sorted,
        &prefix,
        quantile::quantiles_sorted(&sorted, cq),
        quantile::quantiles_sorted(&sorted, wq),
    );
    let from_global = lloyd_max(
        &sorted,
        &prefix,
        global_cutoffs.to_vec(),
        global_weights.to_vec(),
    );
    let global = (global_cutoffs.to_vec(), global_weights.to_vec());
    let mut best = global;
    let mut best_err = sum_squared_error(col, &best.0, &best.1);
    for cand in [from_global, own] {
        let err = sum_squared_error(col, &cand.0, &cand.1);
        if err < best_err {
            best_err = err;
            best = cand;
        }
    }
    best
}

/// Midpoint of `a ≤ b`, rounded to `f32`; lies in `[a, b]` and is monotone in both.
fn midpoint(a: f32, b: f32) -> f32 {
    ((f64::from(a) + f64::from(b)) * 0.5) as f32
}

/// Lloyd–Max refinement of one dimension on its sorted values (with `f64` prefix sums).
///
/// Each step sets every non-empty bucket's weight to the mean of its values (an empty
/// bucket keeps its weight, clamped between its neighbours so the weights stay sorted),
/// then every cutoff to the midpoint of the adjacent weights. Neither half-step raises
/// the squared error (up to rounding, which the caller's final comparison absorbs).
fn lloyd_max(
    sorted: &[f32],
    prefix: &[f64],
    mut cutoffs: Vec<f32>,
    mut weights: Vec<f32>,
) -> (Vec<f32>, Vec<f32>) {
    let b = weights.len();
    for _ in 0..LLOYD_MAX_ITERS {
        // Bucket i holds sorted[bounds[i]..bounds[i + 1]]: values in (c_{i−1}, c_i].
        let mut bounds = Vec::with_capacity(b + 1);
        bounds.push(0);
        bounds.extend(cutoffs.iter().map(|&c| sorted.partition_point(|&v| v <= c)));
        bounds.push(sorted.len());
        let means: Vec<Option<f32>> = bounds
            .windows(2)
            .map(|w| {
                (w[1] > w[0]).then(|| ((prefix[w[1]] - prefix[w[0]]) / (w[1] - w[0]) as f64) as f32)
            })
            .collect();
        let mut next = weights.clone();
        let mut lower = f32::NEG_INFINITY;
        for i in 0..b {
            let w = match means[i] {
                Some(m) => m,
                None => {
                    let upper = means[i + 1..]
                        .iter()
                        .flatten()
                        .next()
                        .copied()
                        .unwrap_or(f32::INFINITY);
                    weights[i].min(upper)
                }
            };
            next[i] = w.max(lower);
            lower = next[i];
        }
        let next_cutoffs: Vec<f32> = next.windows(2).map(|w| midpoint(w[0], w[1])).collect();
        let converged = next == weights && next_cutoffs == cutoffs;
        weights = next;
        cutoffs = next_cutoffs;
        if converged {
            break;
        }
    }
    (cutoffs, weights)
}
