//! Importing next-plaid and fast-plaid indexes.
//!
//! [`import`] reads an index directory written by next-plaid (tested with
//! 1.1.2 and 1.8.5) or fast-plaid (1.6.0, 1.7.0) and writes the same index as a plaid index through
//! [`crate::layout::create`]. The source directory is opened read-only and is
//! never written to (next-plaid's own loader, by contrast, writes merged
//! files and converts fast-plaid indexes in place).
//!
//! # What is carried over
//!
//! - The codebook: `centroids.npy` (f32, or f16 as fast-plaid writes it,
//!   widened exactly to f32), `bucket_cutoffs.npy` and `bucket_weights.npy`
//!   as a [`plaid_codec::QuantizerKind::Global`] quantizer (next-plaid's),
//!   `avg_residual.npy`, and `cluster_threshold.npy` as the outlier radius.
//! - Per token, the centroid code (i64 on disk; checked to name a centroid
//!   and narrowed) and the packed residual bytes, **copied unchanged**: the
//!   bit packing of next-plaid and fast-plaid is the one plaid uses
//!   (`plaid_codec`'s packing tests hold the worked examples of both).
//! - Per document, its token count. Documents keep their order: the source's
//!   document `i` becomes plaid document id `i`.
//!
//! The inverted lists are rebuilt from the codes; the source's `ivf.npy` and
//! `ivf_lengths.npy` (i32 or i64) are only compared with them, and the result
//! is reported in [`ImportReport::source_ivf_matches`].
//!
//! # Layouts read
//!
//! - Chunked files `{i}.codes.npy`, `{i}.residuals.npy`, `doclens.{i}.json`
//!   for `i` in `0..num_chunks`, with or without the merged duplicates
//!   (`merged_codes.npy`, `merged_residuals.npy`), which are then ignored.
//! - Merged files only (fast-plaid 1.7): the padding rows after the last
//!   real token are dropped.
//! - Residual descriptors `'|u1'` (next-plaid) and `'<u1'` (fast-plaid);
//!   npy headers of any length, including data at odd offsets (next-plaid's
//!   merged files start their data at byte 129), as everything is read into
//!   owned, aligned memory.
//!
//! Files that carry nothing plaid needs are listed in
//! [`ImportReport::skipped`] with the reason: next-plaid 1.8's inverse-norm
//! sidecars (plaid recomputes norms), the SQLite `metadata.db` (plaid has no
//! metadata store yet), raw embedding copies, and pickled object arrays such
//! as fast-plaid's `embeddings.npy`, which are recognised from their npy
//! header and **never unpickled**.
//!
//! # Errors and atomicity
//!
//! Everything is read and checked before anything is written; a damaged
//! source gives an [`Error::Import`] or [`Error::Npy`] naming the file, and
//! nothing appears at the output path.
//!
//! # Example
//!
//! ```no_run
//! use plaid_storage::import::{SourceFormat, import};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), plaid_storage::Error> {
//! let report = import(Path::new("plaid-index"), Path::new("next-plaid-index"), None)?;
//! assert_eq!(report.format, SourceFormat::NextPlaid);
//! # Ok(())
//! # }
//! ```

mod detect;
mod read;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use plaid_codec::Codebook;

use crate::layout::{self, SegmentData};
use crate::{Error, ImportFault};

pub use detect::{Evidence, detect};

/// The library that wrote an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceFormat {
    /// next-plaid (Rust); tested with 1.1.2 and 1.8.5.
    NextPlaid,
    /// fast-plaid (Python/PyTorch); tested with 1.6.0 and 1.7.0.
    FastPlaid,
}

impl SourceFormat {
    /// The name used on the command line: `next-plaid` or `fast-plaid`.
    pub fn name(self) -> &'static str {
        match self {
            Self::NextPlaid => "next-plaid",
            Self::FastPlaid => "fast-plaid",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is neither `next-plaid` nor `fast-plaid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source format {name:?} (expected next-plaid or fast-plaid)")]
pub struct UnknownFormatName {
    /// The name given.
    pub name: String,
}

impl FromStr for SourceFormat {
    type Err = UnknownFormatName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "next-plaid" => Ok(Self::NextPlaid),
            "fast-plaid" => Ok(Self::FastPlaid),
            other => Err(UnknownFormatName {
                name: other.to_string(),
            }),
        }
    }
}

/// Where the per-token codes and residuals were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// The per-chunk files `{i}.codes.npy` and `{i}.residuals.npy`.
    Chunks {
        /// Number of chunks.
        num_chunks: usize,
    },
    /// `merged_codes.npy` and `merged_residuals.npy` (no chunk files).
    Merged {
        /// Padding rows dropped after the last real token.
        padding_rows: usize,
    },
}

/// Why a file of the source was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// `metadata.db`: plaid has no metadata store yet.
    MetadataDb,
    /// An npy file holding a pickled object array (`'|O'`); never unpickled.
    Pickled,
    /// A raw copy of the input embeddings (or its lengths), which a
    /// compressed index does not need.
    RawEmbeddings,
    /// A duplicate of data read from other files (the merged files when the
    /// chunk files were read).
    Duplicate,
    /// Data plaid derives itself (next-plaid 1.8's inverse norms).
    Derived,
    /// Bookkeeping of the source library: lock files, merge manifests,
    /// `plan.json`, per-chunk metadata.
    Bookkeeping,
    /// A file this importer does not know.
    Unrecognised,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MetadataDb => "metadata database (plaid has no metadata store yet)",
            Self::Pickled => "pickled object array (never unpickled)",
            Self::RawEmbeddings => "raw embeddings (not needed)",
            Self::Duplicate => "duplicate of the chunk files",
            Self::Derived => "derived data (recomputed by plaid)",
            Self::Bookkeeping => "bookkeeping of the source library",
            Self::Unrecognised => "not recognised",
        })
    }
}

/// A file of the source that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Its name in the source directory.
    pub name: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// What an import read and what it left out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ImportReport {
    /// The library that wrote the source.
    pub format: SourceFormat,
    /// Whether `format` was detected (rather than given).
    pub detected: bool,
    /// Documents imported (ids `0..num_docs`).
    pub num_docs: usize,
    /// Tokens imported.
    pub num_tokens: usize,
    /// Centroids of the codebook.
    pub num_centroids: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Residual bits per dimension.
    pub nbits: u8,
    /// Where codes and residuals came from.
    pub tokens_from: TokenSource,
    /// Whether the source's `ivf.npy`/`ivf_lengths.npy` equal the inverted
    /// lists rebuilt from the codes; `None` when the source has none.
    pub source_ivf_matches: Option<bool>,
    /// Files left out, sorted by name.
    pub skipped: Vec<SkippedFile>,
}

/// A source index read into memory, checked and ready to be written.
#[derive(Debug)]
pub struct SourceIndex {
    /// The codebook.
    pub codebook: Codebook,
    /// All documents, as one segment with ids `0..N`.
    pub segment: SegmentData,
    /// What was read.
    pub report: ImportReport,
}

/// Reads and checks the next-plaid or fast-plaid index at `src` without
/// writing anything. `from` names the source format; `None` detects it
/// ([`detect`]).
///
/// # Errors
/// - [`Error::Import`] naming the file for a layout that is unknown or
///   ambiguous (with `from: None`), a missing file or chunk, bad JSON or
///   `metadata.json` fields, an unsupported `nbits` or a binary index,
///   doclens that do not add up to the codes, a code that names no centroid,
///   or arrays of the wrong shape.
/// - [`Error::Npy`] for an npy file that is truncated, malformed, or of the
///   wrong element type; [`Error::Codec`] for an invalid codebook;
///   [`Error::Io`] for filesystem failures.
pub fn read_source(src: &Path, from: Option<SourceFormat>) -> Result<SourceIndex, Error> {
    let (format, detected) = match from {
        Some(f) => (f, false),
        None => (detect(src)?, true),
    };
    read::read(src, format, detected)
}

/// Imports the next-plaid or fast-plaid index at `src` into a new plaid
/// index at `dst` (which must not exist or be empty, and must not lie inside
/// `src`). `from` names the source format; `None` detects it. The arguments
/// are in the order of `plaid import DIR SRC` and [`layout::create`]: the
/// new index first.
///
/// The reader accepts every layout variant whichever format is named; naming
/// one only replaces detection (and is recorded in the report).
///
/// The source is only read. The whole source is read and checked before the
/// output is written, and the output is written as [`layout::create`] does
/// (staged in a sibling directory, then renamed), so on any error nothing is
/// left at `dst`.
///
/// # Errors
/// [`Error::Import`] with [`ImportFault::OutputInsideSource`];
/// [`Error::Layout`] when `dst` is not empty; the errors of [`read_source`]
/// and [`layout::create`].
pub fn import(dst: &Path, src: &Path, from: Option<SourceFormat>) -> Result<ImportReport, Error> {
    check_outside(src, dst)?;
    layout::check_target(dst)?;
    let source = read_source(src, from)?;
    layout::create(dst, &source.codebook, &source.segment)?;
    Ok(source.report)
}

/// Refuses a `dst` equal to or inside `src`: writing the output (or its
/// staging directory) there would change the source.
fn check_outside(src: &Path, dst: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let src_real = std::fs::canonicalize(src).map_err(io(src))?;
    // The nearest existing ancestor of dst (dst itself may not exist yet).
    let mut probe: PathBuf = if dst.is_absolute() {
        dst.to_path_buf()
    } else {
        std::env::current_dir().map_err(io(dst))?.join(dst)
    };
    loop {
        match std::fs::canonicalize(&probe) {
            Ok(real) => {
                if real.starts_with(&src_real) {
                    return Err(Error::Import {
                        path: dst.to_path_buf(),
                        fault: ImportFault::OutputInsideSource,
                    });
                }
                return Ok(());
            }
            Err(_) => {
                if !probe.pop() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in [SourceFormat::NextPlaid, SourceFormat::FastPlaid] {
            assert_eq!(f.name().parse::<SourceFormat>(), Ok(f));
        }
        assert!("colbert".parse::<SourceFormat>().is_err());
    }

    #[test]
    fn rejects_output_inside_source() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let src = tmp.path().join("src");
        std::fs::create_dir(&src)?;
        for dst in [
            src.clone(),
            src.join("a/b"),
            src.join("..").join("src").join("x"),
        ] {
            assert!(
                matches!(
                    check_outside(&src, &dst),
                    Err(Error::Import {
                        fault: ImportFault::OutputInsideSource,
                        ..
                    })
                ),
                "{}",
                dst.display()
            );
        }
        for dst in [tmp.path().join("out"), src.join("..").join("out")] {
            assert!(check_outside(&src, &dst).is_ok(), "{}", dst.display());
        }
        Ok(())
    }
}
