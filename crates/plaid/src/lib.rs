//! plaid: multi-vector (ColBERT-style late interaction) search.
//!
//! Give plaid one matrix of token embeddings per document; it builds a
//! compressed PLAID index (k-means centroids, quantised residuals, inverted
//! lists) in a directory and answers queries (one matrix per query) with the
//! top-k documents by MaxSim.
//!
//! This crate is the facade most applications want. It re-exports the layers
//! it is built from: [`kmeans`], [`codec`], [`storage`], [`search`] and
//! [`meta`] (document metadata and filters).
//!
//! # Example
//! ```
//! use ndarray::ArrayView2;
//! use plaid::{Documents, Index, IndexConfig, SearchParams, synth};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let corpus = synth::corpus(&synth::SynthConfig::new(200).dim(32));
//! let dir = tempfile::tempdir()?;
//! let docs = Documents::Flat { data: &corpus.embeddings, dim: 32, lens: &corpus.doclens };
//! let index = Index::create(docs, dir.path().join("idx"), &IndexConfig::default())?;
//! let query = ArrayView2::from_shape((4, 32), &corpus.embeddings[..4 * 32])?;
//! let hits = index.search(query, &SearchParams::with_k(5))?;
//! assert_eq!(hits.ids[0].as_u32(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//! - `cli` (default): the `plaid` binary (clap, anyhow, indicatif). Library
//!   users can turn it off with `default-features = false`.
//! - `cuda`: GPU index building ([`IndexConfig::device`], `--device` in the
//!   CLI) and GPU search (`plaid::cuda`, the re-export of `plaid-cuda`). Builds
//!   without CUDA installed; the libraries are loaded at run time.
#![forbid(unsafe_code)]

mod build;
mod config;
mod device;
mod docs;
mod error;
mod grow;
mod index;
mod metadata;
mod snapshot;
pub mod synth;
mod writer;

pub use build::{Progress, Stage};
pub use config::IndexConfig;
pub use device::Device;
pub use docs::Documents;
pub use error::Error;
pub use index::{CompactionPolicy, Index};
pub use plaid_codec::types;
pub use plaid_codec::{Nbits, QuantizerKind};
pub use plaid_meta::{Filter, Value};
pub use plaid_search::{ExactScoring, FilterPlan, Hits, Kernel, SearchParams, StageProfile};
pub use plaid_storage::import::{ImportReport, SkipReason, SkippedFile, SourceFormat};
pub use snapshot::Snapshot;
pub use writer::CompactReport;

pub use plaid_codec as codec;
#[cfg(feature = "cuda")]
pub use plaid_cuda as cuda;
pub use plaid_kmeans as kmeans;
pub use plaid_meta as meta;
pub use plaid_search as search;
pub use plaid_storage as storage;
