//! PLAID search over borrowed index views.
//!
//! This crate is the engine's search core: given a codebook
//! ([`plaid_codec::Codebook`]) and the arrays of one or more segments
//! ([`SegmentView`]), it answers queries with the top-k documents by ColBERT
//! MaxSim. It does no IO, reads no environment and spawns no threads of its
//! own: parallel work runs on the caller's rayon pool.
//!
//! Most applications should use the `plaid` facade, which opens index
//! directories and builds these views for you. Use this crate directly when
//! you hold the arrays yourself (for example from your own storage).
//!
//! # Pipeline
//! 1. `S = C·Qᵀ`: every centroid against every query token (one GEMM).
//! 2. Probing: each query token's `n_probe` best centroids, optionally
//!    thresholded (PLAID's `t_cs`).
//! 3. Candidates: the union of the probed centroids' inverted lists.
//! 4. Approximate score: `Σ_q max_t S[q, code(t)]` per candidate.
//! 5. Exact MaxSim over the decompressed vectors of the best candidates.
//! 6. Top-k, ties broken by the lower document id.
//!
//! # Example
//! ```
//! use plaid_codec::{Codebook, Nbits, QuantizerKind, types::EmbeddingsView};
//! use plaid_search::{CodesView, IvfView, SearchParams, Searcher, SegmentParts, SegmentView};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dim = 8;
//! // Two unit centroids and two one-token documents.
//! let mut centroids = vec![0.0f32; 2 * dim];
//! centroids[0] = 1.0;
//! centroids[dim + 1] = 1.0;
//! let docs = centroids.clone();
//! let heldout = EmbeddingsView::try_new(&docs, dim)?;
//! let codebook = Codebook::train(centroids, dim, heldout, Nbits::Two, QuantizerKind::Global)?;
//! let compressed = codebook.compress(heldout)?;
//! let codes: Vec<u16> = compressed.codes.iter().map(|&c| c as u16).collect();
//! let ivf_offsets = [0u64, 1, 2];
//! let ivf = [0u32, 1];
//! let segment = SegmentView::try_new(
//!     SegmentParts {
//!         doc_ids: &[0, 1],
//!         doc_offsets: &[0, 1, 2],
//!         codes: CodesView::U16(&codes),
//!         residuals: &compressed.residuals,
//!         ivf_offsets: &ivf_offsets,
//!         ivf: IvfView::U32(&ivf),
//!         live: None,
//!     },
//!     codebook.num_centroids(),
//!     codebook.nbits().packed_len(dim),
//!     0,
//! )?;
//! let searcher = Searcher::new(&codebook, vec![segment]);
//! let query = EmbeddingsView::try_new(&docs[dim..], dim)?;
//! let hits = searcher.search(query, &SearchParams::with_k(1))?;
//! assert_eq!(hits.ids[0].as_u32(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//! None.
#![deny(unsafe_code)]

mod centroids;
mod error;
mod exact;
pub mod kernels;
mod params;
pub mod reference;
mod searcher;
mod view;

pub use centroids::{CentroidScores, probe_from_lists};
pub use error::Error;
pub use exact::ExactScorer;
pub use kernels::Kernel;
pub use params::{ExactScoring, SearchParams};
pub use searcher::{DocRef, FilterPlan, Hits, Searcher, StageProfile};
pub use view::{CodesView, IvfView, SegmentParts, SegmentView};
