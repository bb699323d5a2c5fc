//! The manifest: the one file that says what an index is.
//!
//! `manifest.json` lists the codebook files, the segments and every file's
//! length and CRC-32. It is replaced atomically on every commit, so a reader
//! sees either the old or the new list, never a mix; files it does not list
//! are ignored by readers and removed by the next writer.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the index directory format this library reads and writes.
/// Keep in sync with `docs/format.md` (a tidy test checks it).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this library reads. Version 1 differs only in
/// always storing `f32` centroids and 4-byte inverted-list entries, both of
/// which version 2 readers still accept.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// The value of the manifest's `format` field.
pub const FORMAT_NAME: &str = "plaid-index";

/// File name of the manifest inside an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Largest manifest we read; a larger file is refused before it is read.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// How residuals are quantised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantizerRepr {
    /// One set of bucket cutoffs and weights for all dimensions (next-plaid compatible).
    Global,
    /// Per-dimension cutoffs and weights.
    PerDim,
}

/// Files of the shared codebook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodebookFiles {
    /// `f32 [K, dim]` centroids, or `i8 [K, dim]` with one scale per row in
    /// `centroid_scales` (format 2).
    pub centroids: String,
    /// `f32 [K]` row scales of int8 centroids; absent for `f32` centroids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centroid_scales: Option<String>,
    /// `f32 [B-1]` (global) or `[dim, B-1]` (per-dim) bucket cutoffs.
    pub bucket_cutoffs: String,
    /// `f32 [B]` (global) or `[dim, B]` (per-dim) bucket weights.
    pub bucket_weights: String,
    /// `f32 [dim]` mean absolute residual per dimension (informational).
    pub avg_residual: String,
}

/// Files of one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentFiles {
    /// `u32 [n]` stable document ids, strictly ascending.
    pub doc_ids: String,
    /// `u32 [n]` tokens per document.
    pub doclens: String,
    /// `u16 [T]` or `u32 [T]` centroid code per token.
    pub codes: String,
    /// `u8 [T, dim·nbits/8]` packed residuals.
    pub residuals: String,
    /// `u32 [K]` inverted-list lengths.
    pub ivf_lengths: String,
    /// `u32 [Σ lengths]` segment-local document indices per centroid, ascending.
    pub ivf: String,
}

/// One immutable segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Segment number, unique within the index, never reused.
    pub id: u64,
    /// Documents stored in the segment.
    pub num_docs: u64,
    /// Tokens stored in the segment.
    pub num_tokens: u64,
    /// Its files.
    pub files: SegmentFiles,
}

/// Length and checksum of one file, recorded when it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Exact length in bytes.
    pub len_bytes: u64,
    /// CRC-32 (IEEE) of the whole file.
    pub crc32: u32,
}

/// The parsed `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Format version, [`FORMAT_VERSION`] for files this library writes.
    pub format_version: u32,
    /// Commit counter: 1 for a new index, +1 on every commit.
    pub generation: u64,
    /// The library that wrote this generation (informational).
    pub writer: String,
    /// Embedding dimension.
    pub dim: u32,
    /// Residual bits per dimension (1, 2 or 4).
    pub nbits: u8,
    /// Residual quantiser kind.
    pub quantizer: QuantizerRepr,
    /// Number of centroids K.
    pub num_centroids: u32,
    /// Bytes per stored centroid code (2 when K ≤ 65,536, else 4).
    pub code_bytes: u8,
    /// 75th percentile of training residual norms (outlier radius).
    pub outlier_radius: f32,
    /// The id the next added document gets (one more than the largest ever assigned).
    pub next_doc_id: u64,
    /// Codebook files.
    pub codebook: CodebookFiles,
    /// Segments in id order.
    pub segments: Vec<SegmentEntry>,
    /// Every file the index consists of, with its length and checksum.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// Live documents stored in all segments.
    pub fn num_docs(&self) -> u64 {
        self.segments.iter().map(|s| s.num_docs).sum()
    }

    /// Tokens stored in all segments.
    pub fn num_tokens(&self) -> u64 {
        self.segments.iter().map(|s| s.num_tokens).sum()
    }
}
