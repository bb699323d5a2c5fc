//! Centroids stored as int8 with one scale per row.
//!
//! A centroid row `c` is stored as `q_i = round(c_i / s)` with
//! `s = max_i |c_i| / 127`, and read back as `s · q_i`. The codebook then
//! uses the dequantised rows everywhere (assignment, residuals, scores), so
//! residuals absorb the rounding and decompression is exact with respect to
//! what is stored. The table is 4× smaller than `f32` on disk and in cache.

use crate::Error;

/// Int8 centroid rows with one `f32` scale per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Centroids {
    values: Vec<i8>,
    scales: Vec<f32>,
    dim: usize,
}

impl Int8Centroids {
    /// Quantises `K × dim` row-major `centroids`.
    ///
    /// # Errors
    /// [`Error::ZeroDim`], [`Error::EmptyCodebook`], [`Error::Shape`] when
    /// the length is not whole rows, [`Error::NonFinite`] for a NaN or
    /// infinite value.
    pub fn quantize(centroids: &[f32], dim: usize) -> Result<Self, Error> {
        // The same checks as any codebook's centroids (shape, finiteness).
        crate::codebook::check_centroids(centroids, dim)?;
        let k = centroids.len() / dim;
        let mut values = Vec::with_capacity(centroids.len());
        let mut scales = Vec::with_capacity(k);
        for c in centroids.chunks_exact(dim) {
            let max = c.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = max / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            // |v · inv| ≤ 127 up to rounding, so the clamp only guards ties.
            values.extend(
                c.iter()
                    .map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8),
            );
            scales.push(scale);
        }
        Ok(Self {
            values,
            scales,
            dim,
        })
    }

    /// Assembles stored parts: `K × dim` values and `K` scales.
    ///
    /// # Errors
    /// [`Error::ZeroDim`], [`Error::EmptyCodebook`], [`Error::Shape`] when the
    /// lengths disagree, [`Error::NonFinite`] for a scale that is NaN,
    /// infinite or negative.
    pub fn from_parts(values: Vec<i8>, scales: Vec<f32>, dim: usize) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::ZeroDim);
        }
        if scales.is_empty() {
            return Err(Error::EmptyCodebook);
        }
        if Some(values.len()) != scales.len().checked_mul(dim) {
            return Err(Error::Shape {
                what: "int8 centroid values (scales × dim)",
                expected: scales.len().saturating_mul(dim),
                found: values.len(),
            });
        }
        if let Some(row) = scales.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(Error::NonFinite {
                what: "centroid scales",
                row,
            });
        }
        Ok(Self {
            values,
            scales,
            dim,
        })
    }

    /// The `f32` rows the codebook works with: `scale_k · q_ki`.
    pub fn dequantize(&self) -> Vec<f32> {
        self.values
            .chunks_exact(self.dim)
            .zip(&self.scales)
            .flat_map(|(row, &s)| row.iter().map(move |&q| f32::from(q) * s))
            .collect()
    }

    /// The int8 values, `K × dim` row-major.
    pub fn values(&self) -> &[i8] {
        &self.values
    }

    /// One scale per row.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Whether there are no rows (never true for a valid table).
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        let dim = 7;
        let c: Vec<f32> = (0..5 * dim)
            .map(|i| ((i as f32) * 0.71).sin() * 0.4)
            .collect();
        let q = Int8Centroids::quantize(&c, dim).unwrap();
        let d = q.dequantize();
        for (row, (a, b)) in c.chunks(dim).zip(d.chunks(dim)).enumerate() {
            let s = q.scales()[row];
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= s * 0.5 + 1e-7, "row {row}: {x} vs {y}");
            }
        }
        // Dequantising the stored parts again gives the same rows.
        let again = Int8Centroids::from_parts(q.values().to_vec(), q.scales().to_vec(), dim)
            .unwrap()
            .dequantize();
        assert_eq!(again, d);
    }

    #[test]
    fn zero_rows_and_bad_parts() {
        let q = Int8Centroids::quantize(&[0.0; 4], 2).unwrap();
        assert_eq!(q.dequantize(), vec![0.0; 4]);
        assert!(matches!(
            Int8Centroids::quantize(&[f32::NAN, 0.0], 2),
            Err(Error::NonFinite { row: 0, .. })
        ));
        assert!(matches!(
            Int8Centroids::from_parts(vec![0; 3], vec![1.0], 2),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            Int8Centroids::from_parts(vec![0; 2], vec![-1.0], 2),
            Err(Error::NonFinite { .. })
        ));
    }
}
