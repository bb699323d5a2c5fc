//! The facade's error type: wraps each crate's error and adds input checks.

use std::path::PathBuf;

/// Everything that can go wrong in the facade.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No documents were given.
    #[error("no documents were given")]
    NoDocuments,
    /// A document has no tokens.
    #[error("document {doc} has no tokens")]
    EmptyDocument {
        /// Position of the document in the input.
        doc: usize,
    },
    /// A document's row width differs from the first document's (or the index's).
    #[error("document {doc} has dimension {found}, expected {expected}")]
    DimMismatch {
        /// Position of the document in the input.
        doc: usize,
        /// Expected dimension.
        expected: usize,
        /// Its dimension.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("document {doc}, token {token}, dimension {dim}: value is not finite")]
    NonFinite {
        /// Position of the document in the input.
        doc: usize,
        /// Token within the document.
        token: usize,
        /// Dimension within the token.
        dim: usize,
    },
    /// Flat input: the lengths do not add up to the number of rows.
    #[error("document lengths add up to {sum} tokens but the matrix has {rows} rows")]
    LengthsMismatch {
        /// Sum of the lengths.
        sum: u64,
        /// Rows in the matrix.
        rows: usize,
    },
    /// A configuration value is out of range.
    #[error("config {name} = {value} is out of range ({expected})")]
    BadConfig {
        /// Field name.
        name: &'static str,
        /// Value given.
        value: u64,
        /// What is allowed.
        expected: &'static str,
    },
    /// More documents or tokens than the format can hold.
    #[error("{what}: {found} exceeds the limit of {limit}")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// Number given.
        found: u64,
        /// Largest supported.
        limit: u64,
    },
    /// A document id that the index does not hold.
    #[error("document id {id} is not in the index")]
    UnknownDoc {
        /// The id.
        id: u32,
    },
    /// Ids given to [`crate::Index::delete`] that the index never held.
    #[error("document ids {ids:?} are not in the index")]
    UnknownDocs {
        /// The ids, ascending.
        ids: Vec<u32>,
    },
    /// Ids given to [`crate::Index::delete`] that are already deleted.
    #[error("document ids {ids:?} are already deleted")]
    DeletedDocs {
        /// The ids, ascending.
        ids: Vec<u32>,
    },
    /// The index directory could not be created or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Metadata entries and documents differ in number.
    #[error("{entries} metadata entries for {docs} documents")]
    MetadataCount {
        /// Documents given.
        docs: usize,
        /// Metadata entries given.
        entries: usize,
    },
    /// The device asked for cannot be used.
    #[error("device {device} is unavailable: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: &'static str,
        /// Why (from the driver or this build).
        reason: String,
    },
    /// A device name that is none of `cpu`, `cuda`, `auto`.
    #[error("unknown device {name:?} (expected cpu, cuda or auto)")]
    UnknownDevice {
        /// The name given.
        name: String,
    },
    /// From `plaid-cuda`.
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Cuda(#[from] plaid_cuda::Error),
    /// From `plaid-meta`.
    #[error(transparent)]
    Meta(#[from] plaid_meta::Error),
    /// From `plaid-storage`.
    #[error(transparent)]
    Storage(#[from] plaid_storage::Error),
    /// From `plaid-search`.
    #[error(transparent)]
    Search(#[from] plaid_search::Error),
    /// From `plaid-codec`.
    #[error(transparent)]
    Codec(#[from] plaid_codec::Error),
    /// From `plaid-kmeans`.
    #[error(transparent)]
    Kmeans(#[from] plaid_kmeans::Error),
}
