//! The error type of `plaid-search`.

/// Errors from building search views and running searches.
///
/// Variants carry the offending values; the message is built from them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query has no tokens.
    #[error("the query has no tokens")]
    EmptyQuery,
    /// The query's row width differs from the index's.
    #[error("query dimension {found} does not match the index dimension {expected}")]
    QueryDim {
        /// Index dimension.
        expected: usize,
        /// Query row width.
        found: usize,
    },
    /// A query value is NaN or infinite.
    #[error("query token {token} has a non-finite value at dimension {dim}")]
    NonFiniteQuery {
        /// Token (row) of the query.
        token: usize,
        /// Dimension within the row.
        dim: usize,
    },
    /// `k` is zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// A search parameter is out of its range.
    #[error("search parameter {name} = {value} is out of range ({expected})")]
    BadParam {
        /// Parameter name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
    /// Two arrays of a segment disagree in length.
    #[error("segment {segment}: {what} has length {found}, expected {expected}")]
    SegmentShape {
        /// Segment position in the list given to the searcher.
        segment: usize,
        /// Which array.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// An offsets array is not non-decreasing or does not end at the data length.
    #[error(
        "segment {segment}: {what} offsets are not monotone or do not cover the data (at entry {at})"
    )]
    BadOffsets {
        /// Segment position.
        segment: usize,
        /// Which offsets.
        what: &'static str,
        /// First bad entry.
        at: usize,
    },
    /// Document ids of a segment are not strictly ascending.
    #[error("segment {segment}: document ids are not strictly ascending at position {at}")]
    UnsortedDocIds {
        /// Segment position.
        segment: usize,
        /// First position out of order.
        at: usize,
    },
    /// A stored centroid code is not below the number of centroids.
    #[error(
        "segment {segment}: token {token} has code {code} but the codebook has {num_centroids} centroids"
    )]
    CodeOutOfRange {
        /// Segment position.
        segment: usize,
        /// Token index within the segment.
        token: usize,
        /// The stored code.
        code: u32,
        /// Number of centroids.
        num_centroids: usize,
    },
    /// An inverted-list entry names a document the segment does not have.
    #[error(
        "segment {segment}: inverted list of centroid {centroid} names document {doc}, but the segment has {num_docs}"
    )]
    IvfOutOfRange {
        /// Segment position.
        segment: usize,
        /// Centroid whose list is bad.
        centroid: usize,
        /// The stored local document index.
        doc: u32,
        /// Documents in the segment.
        num_docs: usize,
    },
    /// The segment's dimension or packing disagrees with the codebook.
    #[error("segment {segment}: residual rows are {found} bytes, the codebook needs {expected}")]
    ResidualWidth {
        /// Segment position.
        segment: usize,
        /// Bytes per row the codebook implies.
        expected: usize,
        /// Bytes per row found.
        found: usize,
    },
    /// A document's residual bytes are not one packed row per code.
    #[error("a document of {tokens} tokens has {found} residual bytes, expected {expected}")]
    DocumentShape {
        /// Codes (tokens) given.
        tokens: usize,
        /// Residual bytes expected: tokens × packed row width.
        expected: usize,
        /// Residual bytes given.
        found: usize,
    },
    /// Integer exact scoring needs the codebook's int8 centroids.
    #[error("the codebook has no int8 centroids, which integer exact scoring needs")]
    NoInt8Centroids,
    /// Decoding a stored token failed.
    #[error("decoding failed: {0}")]
    Codec(#[from] plaid_codec::Error),
}
