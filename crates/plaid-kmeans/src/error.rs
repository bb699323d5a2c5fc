//! The crate's error type.

/// Errors from k-means training and nearest-centroid assignment.
///
/// Every variant carries the values that caused it; the message is built
/// from those fields, so callers can match on the variant instead of text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flat slice is not a whole number of rows, or the row width is zero.
    #[error("{what}: slice of {len} floats is not a whole number of rows of dim {dim}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// Its length in floats.
        len: usize,
        /// The row width.
        dim: usize,
    },
    /// An output slice has the wrong length.
    #[error("{what}: expected length {expected}, found {found}")]
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// An input that needs at least one row has none.
    #[error("{what} has no rows")]
    EmptyInput {
        /// Which argument.
        what: &'static str,
    },
    /// k-means was asked for zero clusters.
    #[error("k-means needs at least one cluster, got k = 0")]
    ZeroClusters,
    /// There are fewer points than clusters.
    #[error("k-means with k = {k} needs at least {k} points, got {num_points}")]
    TooFewPoints {
        /// The requested number of clusters.
        k: usize,
        /// The number of input rows.
        num_points: usize,
    },
    /// A row holds NaN or an infinity.
    #[error("{what}: row {row} contains NaN or an infinity")]
    NonFinite {
        /// Which argument.
        what: &'static str,
        /// The index of the first offending row.
        row: usize,
    },
    /// There are more centroids than `u32` indices can name.
    #[error("{k} centroids do not fit in u32 indices")]
    TooManyCentroids {
        /// The number of centroids.
        k: usize,
    },
    /// `KMeansConfig::max_points_per_centroid` is zero, which would leave no sample.
    #[error("max_points_per_centroid must be at least 1")]
    ZeroMaxPointsPerCentroid,
    /// An assigner passed to [`crate::fit_with`] returned a label that names no centroid.
    #[error("assigner returned label {label}, but there are only {k} centroids")]
    LabelOutOfRange {
        /// The label.
        label: u32,
        /// The number of centroids.
        k: usize,
    },
}

/// Number of rows in `data` viewed as `dim`-wide rows.
pub(crate) fn num_rows(what: &'static str, data: &[f32], dim: usize) -> Result<usize, Error> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(Error::Shape {
            what,
            len: data.len(),
            dim,
        });
    }
    Ok(data.len() / dim)
}

/// Checks the shapes shared by the `nearest_by_*` functions and returns `(n, k)`.
pub(crate) fn check_assign(
    data: &[f32],
    centroids: &[f32],
    dim: usize,
    out: &[u32],
) -> Result<(usize, usize), Error> {
    let n = num_rows("data", data, dim)?;
    let k = num_rows("centroids", centroids, dim)?;
    if out.len() != n {
        return Err(Error::LengthMismatch {
            what: "out",
            expected: n,
            found: out.len(),
        });
    }
    if n > 0 && k == 0 {
        return Err(Error::EmptyInput { what: "centroids" });
    }
    check_k_fits(k)?;
    Ok((n, k))
}

/// Centroid indices are written as `u32`.
pub(crate) fn check_k_fits(k: usize) -> Result<(), Error> {
    if u32::try_from(k).is_err() {
        return Err(Error::TooManyCentroids { k });
    }
    Ok(())
}

/// The first row of `data` holding a non-finite value, as an error.
pub(crate) fn check_finite(what: &'static str, data: &[f32], dim: usize) -> Result<(), Error> {
    use rayon::prelude::*;
    match data
        .par_chunks(dim)
        .position_first(|row| row.iter().any(|v| !v.is_finite()))
    {
        Some(row) => Err(Error::NonFinite { what, row }),
        None => Ok(()),
    }
}
