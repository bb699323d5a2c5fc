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
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format version this library reads. Version 1 differs only in
/// always storing `f32` centroids and 4-byte inverted-list entries, version
/// 2 in storing the inverted lists (version 3 rebuilds them from the codes
/// when a segment is opened); readers accept all three.
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

impl CodebookFiles {
    /// Every file of the codebook.
    pub fn file_names(&self) -> Vec<&String> {
        let mut out = vec![
            &self.centroids,
            &self.bucket_cutoffs,
            &self.bucket_weights,
            &self.avg_residual,
        ];
        out.extend(self.centroid_scales.iter());
        out
    }
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
    /// `u32 [K]` inverted-list lengths. Written by format versions 1 and 2
    /// only: version 3 rebuilds the lists from the codes at open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ivf_lengths: Option<String>,
    /// `u16 [Σ lengths]` or `u32 [Σ lengths]` segment-local document indices
    /// per centroid, ascending. Versions 1 and 2 only, as `ivf_lengths`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ivf: Option<String>,
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
    /// Documents of the segment that are deleted (listed in `tombstones`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_deleted: u64,
    /// The segment's tombstone file, `u32 [num_deleted]`: the strictly
    /// ascending segment-local indices of its deleted documents. Absent when
    /// no document of the segment is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<String>,
    /// Bits per code when the codes file is bit-packed (format 3): `|u1`
    /// bytes holding `num_tokens` codes of this many bits each. Absent when
    /// codes are stored as `code_bytes`-wide integers (formats 1–2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_bits: Option<u8>,
}

impl SegmentEntry {
    /// Documents of the segment that are not deleted.
    pub fn num_live(&self) -> u64 {
        self.num_docs.saturating_sub(self.num_deleted)
    }

    /// Every file of the segment, tombstones included.
    pub fn file_names(&self) -> Vec<&String> {
        let f = &self.files;
        let mut names = vec![&f.doc_ids, &f.doclens, &f.codes, &f.residuals];
        names.extend(f.ivf_lengths.as_ref());
        names.extend(f.ivf.as_ref());
        names.extend(self.tombstones.as_ref());
        names
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
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
    /// The id the next new segment gets: one more than the largest segment id
    /// ever used, so that a segment id (and so a file name) is never reused,
    /// even after compaction removed the segment. 0 (or absent) in indexes
    /// written before live updates: then one more than the largest listed id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_segment_id: u64,
    /// Segments in id order.
    pub segments: Vec<SegmentEntry>,
    /// Every file the index consists of, with its length and checksum.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// Live documents stored in all segments (stored minus deleted).
    pub fn num_docs(&self) -> u64 {
        self.segments.iter().map(SegmentEntry::num_live).sum()
    }

    /// Deleted documents still stored in some segment.
    pub fn num_deleted(&self) -> u64 {
        self.segments.iter().map(|s| s.num_deleted).sum()
    }

    /// The id a new segment gets (see [`Manifest::next_segment_id`]).
    pub fn new_segment_id(&self) -> u64 {
        let listed = self.segments.iter().map(|s| s.id + 1).max().unwrap_or(1);
        self.next_segment_id.max(listed)
    }

    /// Tokens stored in all segments.
    pub fn num_tokens(&self) -> u64 {
        self.segments.iter().map(|s| s.num_tokens).sum()
    }
}
