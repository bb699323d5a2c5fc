//! The codebook: centroids plus residual quantizer; compression and decompression.

use crate::quantile;
use crate::quantizer::check_finite;
use crate::types::{CentroidId, EmbeddingsView};
use crate::{Error, Int8Centroids, Nbits, QuantizerKind, ResidualQuantizer};
use rayon::prelude::*;

/// Rows per parallel work item in [`Codebook::compress`] and [`Codebook::train`].
///
/// Fixed, so results never depend on the number of threads.
const CHUNK_ROWS: usize = 1024;

/// Centroids and the residual quantizer: everything needed to compress and decompress
/// token embeddings (spec §1.2–1.4).
#[derive(Clone, Debug, PartialEq)]
pub struct Codebook {
    centroids: Vec<f32>,
    /// The stored int8 form of `centroids`, when the codebook was built that
    /// way (`centroids` is then its dequantisation).
    int8: Option<Int8Centroids>,
    dim: usize,
    quantizer: ResidualQuantizer,
    outlier_radius: f32,
    avg_residual: Vec<f32>,
}

/// Compressed token embeddings: one centroid code and one packed residual row per token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compressed {
    /// Centroid code of each token.
    pub codes: Vec<u32>,
    /// Packed residual rows, `codes.len() × packed_len` bytes, row-major.
    pub residuals: Vec<u8>,
}

impl Compressed {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// Checks that `centroids` is a non-empty, finite, whole number of `dim`-wide rows whose
/// indices fit in a `u32` code, and returns the number of rows.
pub(crate) fn check_centroids(centroids: &[f32], dim: usize) -> Result<usize, Error> {
    if dim == 0 {
        return Err(Error::ZeroDim);
    }
    if centroids.is_empty() {
        return Err(Error::EmptyCodebook);
    }
    if !centroids.len().is_multiple_of(dim) {
        return Err(Error::Shape {
            what: "centroids (whole rows of dim)",
            expected: centroids.len().div_ceil(dim) * dim,
            found: centroids.len(),
        });
    }
    let k = centroids.len() / dim;
    if u32::try_from(k - 1).is_err() {
        return Err(Error::Shape {
            what: "number of centroids (codes are u32)",
            expected: (u32::MAX as usize).saturating_add(1),
            found: k,
        });
    }
    check_finite(centroids, dim, "centroids")?;
    Ok(k)
}

/// Checks that `view` has rows of width `dim` and only finite values.
fn check_view(view: EmbeddingsView<'_>, dim: usize, what: &'static str) -> Result<(), Error> {
    if view.dim() != dim {
        return Err(Error::Shape {
            what,
            expected: dim,
            found: view.dim(),
        });
    }
    check_finite(view.as_slice(), dim, what)
}

impl Codebook {
    /// Assembles a codebook from stored parts. Centroids are used as given (next-plaid
    /// stores them L2-normalised; this is not re-checked).
    ///
    /// # Errors
    /// [`Error::ZeroDim`]; [`Error::EmptyCodebook`] without centroids; [`Error::Shape`]
    /// when `centroids` is not whole rows of `dim`, the quantizer's dimension is not
    /// `dim`, or `avg_residual` does not hold `dim` values; [`Error::NonFinite`] for a NaN
    /// or infinite centroid or `avg_residual` value; [`Error::InvalidRadius`] when
    /// `outlier_radius` is negative or not finite.
    pub fn new(
        centroids: Vec<f32>,
        dim: usize,
        quantizer: ResidualQuantizer,
        outlier_radius: f32,
        avg_residual: Vec<f32>,
    ) -> Result<Self, Error> {
        check_centroids(&centroids, dim)?;
        if quantizer.dim() != dim {
            return Err(Error::Shape {
                what: "quantizer dim",
                expected: dim,
                found: quantizer.dim(),
            });
        }
        if !(outlier_radius.is_finite() && outlier_radius >= 0.0) {
            return Err(Error::InvalidRadius {
                radius: outlier_radius,
            });
        }
        if avg_residual.len() != dim {
            return Err(Error::Shape {
                what: "avg_residual",
                expected: dim,
                found: avg_residual.len(),
            });
        }
        check_finite(&avg_residual, 1, "avg_residual")?;
        Ok(Self {
            centroids,
            int8: None,
            dim,
            quantizer,
            outlier_radius,
            avg_residual,
        })
    }

    /// Trains the residual codec on a held-out sample (spec §1.2).
    ///
    /// Each held-out row gets the code of the centroid with the largest dot product
    /// ([`plaid_kmeans::nearest_by_dot`]); its residual is `x − C[code]`. The outlier
    /// radius is the 0.75-quantile of the residual L2 norms, `avg_residual` the per-dim
    /// mean of `|residual|`, and the quantizer is [`ResidualQuantizer::train`] on the
    /// residuals.
    ///
    /// # Errors
    /// Those of [`Codebook::new`] and [`ResidualQuantizer::train`], plus
    /// [`Error::Shape`] when `heldout` rows are not `dim` wide, [`Error::NonFinite`]
    /// for a NaN or infinite held-out value, and [`Error::Kmeans`] if assignment fails.
    pub fn train(
        centroids: Vec<f32>,
        dim: usize,
        heldout: EmbeddingsView<'_>,
        nbits: Nbits,
        kind: QuantizerKind,
    ) -> Result<Self, Error> {
        check_centroids(&centroids, dim)?;
        nbits.check_dim(dim)?;
        check_view(heldout, dim, "heldout")?;
        if heldout.is_empty() {
            return Err(Error::EmptyTrainingSet);
        }
        let n = heldout.num_rows();
        let mut residuals = vec![0.0f32; n * dim];
        let mut norms = vec![0.0f32; n];
        let partial_abs_sums: Vec<Vec<f64>> = heldout
            .as_slice()
            .par_chunks(CHUNK_ROWS * dim)
            .zip(residuals.par_chunks_mut(CHUNK_ROWS * dim))
            .zip(norms.par_chunks_mut(CHUNK_ROWS))
            .enumerate()
            .map(|(chunk, ((x, r), norms))| {
                let mut codes = vec![0u32; norms.len()];
                plaid_kmeans::nearest_by_dot(x, &centroids, dim, &mut codes)?;
                let mut abs_sum = vec![0.0f64; dim];
                let rows = x.chunks_exact(dim).zip(r.chunks_exact_mut(dim));
                for (i, ((x, r), (&code, norm))) in rows.zip(codes.iter().zip(norms)).enumerate() {
                    let c = centroid_row(&centroids, dim, code, chunk * CHUNK_ROWS + i)?;
                    let mut sq = 0.0f64;
                    for (((r, &x), &c), s) in r.iter_mut().zip(x).zip(c).zip(&mut abs_sum) {
                        *r = x - c;
                        sq += f64::from(*r) * f64::from(*r);
                        *s += f64::from(r.abs());
                    }
                    *norm = sq.sqrt() as f32;
                }
                Ok(abs_sum)
            })
            .collect::<Result<_, Error>>()?;
        let mut avg = vec![0.0f64; dim];
        for part in &partial_abs_sums {
            for (a, p) in avg.iter_mut().zip(part) {
                *a += p;
            }
        }
        let avg_residual = avg.iter().map(|&s| (s / n as f64) as f32).collect();
        let outlier_radius = quantile::quantiles(&mut norms, &[0.75])
            .first()
            .copied()
            .unwrap_or(0.0);
        let view = EmbeddingsView::try_new(&residuals, dim).map_err(|e| Error::Shape {
            what: "residuals",
            expected: n * dim,
            found: e.len,
        })?;
        let quantizer = ResidualQuantizer::train(view, nbits, kind)?;
        Self::new(centroids, dim, quantizer, outlier_radius, avg_residual)
    }

    /// Assembles a codebook whose centroids are stored as int8 (see
    /// [`Int8Centroids`]); the working `f32` centroids are their
    /// dequantisation.
    ///
    /// # Errors
    /// As [`Codebook::new`], plus [`Error::Shape`] when the table's row width
    /// is not `dim`.
    pub fn from_int8(
        centroids: Int8Centroids,
        dim: usize,
        quantizer: ResidualQuantizer,
        outlier_radius: f32,
        avg_residual: Vec<f32>,
    ) -> Result<Self, Error> {
        if centroids.dim() != dim {
            return Err(Error::Shape {
                what: "int8 centroid row width",
                expected: dim,
                found: centroids.dim(),
            });
        }
        let mut cb = Self::new(
            centroids.dequantize(),
            dim,
            quantizer,
            outlier_radius,
            avg_residual,
        )?;
        cb.int8 = Some(centroids);
        Ok(cb)
    }

    /// [`Codebook::train`] with the centroids first rounded to int8 (one
    /// scale per row), so that residuals are taken from the centroids as
    /// they will be stored.
    ///
    /// # Errors
    /// As [`Codebook::train`].
    pub fn train_int8(
        centroids: &[f32],
        dim: usize,
        heldout: EmbeddingsView<'_>,
        nbits: Nbits,
        kind: QuantizerKind,
    ) -> Result<Self, Error> {
        let q = Int8Centroids::quantize(centroids, dim)?;
        let mut cb = Self::train(q.dequantize(), dim, heldout, nbits, kind)?;
        cb.int8 = Some(q);
        Ok(cb)
    }

    /// This codebook with `new` (`dim`-wide rows) appended as centroids
    /// `K..`: existing codes keep their meaning. An int8 codebook stays int8
    /// (the new rows are rounded the same way).
    ///
    /// # Errors
    /// As [`Codebook::new`] for the new rows.
    pub fn with_appended_centroids(&self, new: &[f32]) -> Result<Self, Error> {
        match &self.int8 {
            Some(q) => {
                let add = Int8Centroids::quantize(new, self.dim)?;
                let mut values = q.values().to_vec();
                values.extend_from_slice(add.values());
                let mut scales = q.scales().to_vec();
                scales.extend_from_slice(add.scales());
                Self::from_int8(
                    Int8Centroids::from_parts(values, scales, self.dim)?,
                    self.dim,
                    self.quantizer.clone(),
                    self.outlier_radius,
                    self.avg_residual.clone(),
                )
            }
            None => {
                let mut all = self.centroids.clone();
                all.extend_from_slice(new);
                Self::new(
                    all,
                    self.dim,
                    self.quantizer.clone(),
                    self.outlier_radius,
                    self.avg_residual.clone(),
                )
            }
        }
    }

    /// The int8 form of the centroids, when they are stored that way.
    pub fn int8_centroids(&self) -> Option<&Int8Centroids> {
        self.int8.as_ref()
    }

    /// Number of centroids, `K`.
    pub fn num_centroids(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Residual bit width.
    pub fn nbits(&self) -> Nbits {
        self.quantizer.nbits()
    }

    /// Bytes in one packed residual row.
    pub fn packed_len(&self) -> usize {
        self.quantizer.packed_len()
    }

    /// The centroids, `K × dim` row-major.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Centroid `id`, or `None` when out of range.
    pub fn centroid(&self, id: CentroidId) -> Option<&[f32]> {
        let start = id.as_usize().checked_mul(self.dim)?;
        self.centroids.get(start..start.checked_add(self.dim)?)
    }

    /// The residual quantizer.
    pub fn quantizer(&self) -> &ResidualQuantizer {
        &self.quantizer
    }

    /// next-plaid's `cluster_threshold`: the 0.75-quantile of held-out residual norms.
    pub fn outlier_radius(&self) -> f32 {
        self.outlier_radius
    }

    /// Per-dimension mean of `|residual|` on the held-out set (stored, not used in decoding).
    pub fn avg_residual(&self) -> &[f32] {
        &self.avg_residual
    }

    /// Compresses token embeddings: each row gets the code of its max-dot-product
    /// centroid and the packed quantised residual `x − C[code]`.
    ///
    /// Rows are processed in parallel (on the current rayon pool) in fixed chunks, so the
    /// output does not depend on the number of threads.
    ///
    /// # Errors
    /// [`Error::Shape`] when rows are not `dim` wide, [`Error::NonFinite`] for a NaN or
    /// infinite value, and [`Error::Kmeans`] if assignment fails.
    pub fn compress(&self, embeddings: EmbeddingsView<'_>) -> Result<Compressed, Error> {
        check_view(embeddings, self.dim, "embeddings")?;
        let (dim, plen) = (self.dim, self.packed_len());
        let n = embeddings.num_rows();
        let mut codes = vec![0u32; n];
        let mut residuals = vec![0u8; n * plen];
        embeddings
            .as_slice()
            .par_chunks(CHUNK_ROWS * dim)
            .zip(codes.par_chunks_mut(CHUNK_ROWS))
            .zip(residuals.par_chunks_mut(CHUNK_ROWS * plen))
            .enumerate()
            .try_for_each(|(chunk, ((x, codes), packed))| {
                plaid_kmeans::nearest_by_dot(x, &self.centroids, dim, codes)?;
                let rows = x.chunks_exact(dim).zip(packed.chunks_exact_mut(plen));
                for (i, ((x, out), &code)) in rows.zip(codes.iter()).enumerate() {
                    let c = centroid_row(&self.centroids, dim, code, chunk * CHUNK_ROWS + i)?;
                    self.quantizer.encode_unchecked(x, Some(c), out);
                }
                Ok::<(), Error>(())
            })?;
        Ok(Compressed { codes, residuals })
    }

    /// Decompresses one token into `out` (spec §1.4): `y = C[code] + decoded residual`,
    /// then `y / max(‖y‖, 1e-12)`. Any residual bytes are valid.
    ///
    /// The norm is summed in `f32` and applied as a reciprocal; the result is within
    /// `(γ_dim / 2 + 5u) · |y_i| / ‖y‖` of [`crate::reference::decompress`] (`u = 2⁻²⁴`,
    /// `γ_n = n·u / (1 − n·u)`), as the tests check.
    ///
    /// # Errors
    /// [`Error::CodeOutOfRange`] (with `index` 0) when `code` names no centroid, and
    /// [`Error::Shape`] when `packed` is not one packed row or `out` is not `dim` long.
    pub fn decompress_into(&self, code: u32, packed: &[u8], out: &mut [f32]) -> Result<(), Error> {
        let c = centroid_row(&self.centroids, self.dim, code, 0)?;
        self.quantizer.try_decode_row(packed, out)?;
        // Add the centroid and accumulate the squared norm in 16 independent
        // lanes so the compiler vectorises the loop (a single running sum
        // would serialise it); the lanes are then summed pairwise.
        const LANES: usize = 16;
        let mut acc = [0.0f32; LANES];
        let mut oc = out.chunks_exact_mut(LANES);
        let mut cc = c.chunks_exact(LANES);
        for (o, c) in (&mut oc).zip(&mut cc) {
            for l in 0..LANES {
                o[l] += c[l];
                acc[l] += o[l] * o[l];
            }
        }
        let mut tail = 0.0f32;
        for (o, &c) in oc.into_remainder().iter_mut().zip(cc.remainder()) {
            *o += c;
            tail += *o * *o;
        }
        let mut width = LANES / 2;
        while width > 0 {
            for l in 0..width {
                acc[l] += acc[l + width];
            }
            width /= 2;
        }
        let sq = acc[0] + tail;
        let inv = 1.0 / sq.sqrt().max(1e-12);
        for o in out.iter_mut() {
            *o *= inv;
        }
        Ok(())
    }

    /// Decompresses many tokens (`codes.len()` rows, `dim` floats each), row by row as
    /// [`Self::decompress_into`].
    ///
    /// # Errors
    /// [`Error::CodeOutOfRange`] with the position of the first bad code, and
    /// [`Error::Shape`] when `residuals` is not `codes.len()` packed rows.
    pub fn decompress(&self, codes: &[u32], residuals: &[u8]) -> Result<Vec<f32>, Error> {
        let plen = self.packed_len();
        if residuals.len() != codes.len() * plen {
            return Err(Error::Shape {
                what: "residuals",
                expected: codes.len() * plen,
                found: residuals.len(),
            });
        }
        let mut out = vec![0.0f32; codes.len() * self.dim];
        let rows = out
            .chunks_exact_mut(self.dim)
            .zip(residuals.chunks_exact(plen));
        for (index, ((out, packed), &code)) in rows.zip(codes).enumerate() {
            self.decompress_into(code, packed, out)
                .map_err(|e| match e {
                    Error::CodeOutOfRange {
                        code,
                        num_centroids,
                        ..
                    } => Error::CodeOutOfRange {
                        index,
                        code,
                        num_centroids,
                    },
                    other => other,
                })?;
        }
        Ok(out)
    }
}

/// Row `code` of `centroids`, or [`Error::CodeOutOfRange`] reporting position `index`.
fn centroid_row(centroids: &[f32], dim: usize, code: u32, index: usize) -> Result<&[f32], Error> {
    let start = (code as usize).saturating_mul(dim);
    centroids
        .get(start..start.saturating_add(dim))
        .ok_or(Error::CodeOutOfRange {
            index,
            code,
            num_centroids: centroids.len() / dim.max(1),
        })
}
