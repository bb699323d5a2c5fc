//! The crate's error type.

/// Everything that can go wrong in `plaid-codec`.
///
/// Every variant carries the values that caused it; the message is built from them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `nbits` is not 1, 2 or 4.
    #[error("nbits must be 1, 2 or 4, got {nbits}")]
    UnsupportedNbits {
        /// The rejected bit width.
        nbits: u8,
    },
    /// `dim × nbits` is not a whole number of bytes, so rows cannot be packed.
    #[error("dim {dim} × nbits {nbits} is not a multiple of 8 bits")]
    DimNotMultiple {
        /// The embedding dimension.
        dim: usize,
        /// The bit width.
        nbits: u8,
    },
    /// The embedding dimension is zero.
    #[error("embedding dimension must be positive")]
    ZeroDim,
    /// A slice or parameter has the wrong length.
    #[error("{what}: expected length {expected}, found {found}")]
    Shape {
        /// Which argument or field.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// Training was given no rows.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// A codebook needs at least one centroid.
    #[error("the codebook has no centroids")]
    EmptyCodebook,
    /// A value is NaN or infinite.
    #[error("{what}: non-finite value in row {row}")]
    NonFinite {
        /// Which argument or field.
        what: &'static str,
        /// The row that holds it; for flat parameter vectors (cutoffs, weights,
        /// `avg_residual`) the element index.
        row: usize,
    },
    /// Bucket cutoffs decrease somewhere (within one dimension for per-dim quantizers).
    #[error("bucket cutoffs must be non-decreasing: cutoff {index} is below its predecessor")]
    UnsortedCutoffs {
        /// Flat index of the first cutoff that is smaller than the one before it.
        index: usize,
    },
    /// The outlier radius is negative, NaN or infinite.
    #[error("outlier radius must be finite and non-negative, got {radius}")]
    InvalidRadius {
        /// The rejected radius.
        radius: f32,
    },
    /// A centroid code does not name a centroid of this codebook.
    #[error("code {code} at position {index} is out of range for {num_centroids} centroids")]
    CodeOutOfRange {
        /// Position of the code in the batch (0 for single-row calls).
        index: usize,
        /// The code.
        code: u32,
        /// How many centroids the codebook has.
        num_centroids: usize,
    },
    /// Nearest-centroid assignment failed.
    #[error("nearest-centroid assignment failed")]
    Kmeans(#[from] plaid_kmeans::Error),
}
