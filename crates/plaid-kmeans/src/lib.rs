//! Deterministic Lloyd k-means for PLAID codebooks.
//!
//! Most users want the `plaid` facade, which trains the codebook for you.
//! Use this crate directly to cluster `f32` rows yourself.
#![forbid(unsafe_code)]

/// Errors from k-means and nearest-centroid assignment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flat slice is not a whole number of rows.
    #[error("{what}: slice of {len} floats is not a whole number of rows of dim {dim}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The row width.
        dim: usize,
    },
}

/// For each row of `data` (`n × dim`), the index of the centroid (`k × dim`)
/// with the largest dot product, written to `out` (length `n`).
///
/// # Errors
/// [`Error::Shape`] when a slice is not a whole number of rows or `out` has the wrong length.
pub fn nearest_by_dot(
    data: &[f32],
    centroids: &[f32],
    dim: usize,
    out: &mut [u32],
) -> Result<(), Error> {
    // Placeholder naive implementation; replaced by the blocked GEMM.
    if dim == 0 || data.len() % dim != 0 || data.len() / dim != out.len() {
        return Err(Error::Shape { what: "data", len: data.len(), dim });
    }
    if centroids.len() % dim != 0 {
        return Err(Error::Shape { what: "centroids", len: centroids.len(), dim });
    }
    for (row, o) in data.chunks_exact(dim).zip(out.iter_mut()) {
        let mut best = (f32::NEG_INFINITY, 0u32);
        for (j, c) in centroids.chunks_exact(dim).enumerate() {
            let s: f32 = row.iter().zip(c).map(|(a, b)| a * b).sum();
            if s > best.0 {
                best = (s, j as u32);
            }
        }
        *o = best.1;
    }
    Ok(())
}
