//! Residual compression for PLAID indexes: centroid codes, bucket cutoffs and weights,
//! next-plaid-compatible bit packing, and decompression.
//!
//! # Should I use this crate?
//!
//! Most applications want the `plaid` facade, which trains the codebook, compresses
//! documents and searches for you. Use `plaid-codec` directly to read or write
//! next-plaid/fast-plaid residual files yourself, to build a backend (`plaid-cuda` tests
//! against [`reference`](mod@reference)), or to experiment with quantisers.
//!
//! # What is here
//!
//! - [`Codebook`]: centroids plus a [`ResidualQuantizer`]; [`Codebook::train`] follows
//!   next-plaid's codec training (spec §1.2), [`Codebook::compress`] gives codes and
//!   packed residuals, [`Codebook::decompress_into`] rebuilds unit-norm tokens (§1.4).
//! - [`ResidualQuantizer`]: bucket cutoffs and weights, either
//!   [`QuantizerKind::Global`] (next-plaid compatible) or [`QuantizerKind::PerDim`]
//!   (per-dimension Lloyd–Max, lower error, ours).
//! - [`pack`]: the exact bit layout of next-plaid residual rows (§1.3), byte-identical.
//! - [`DecodeTable`]: the byte-at-a-time lookup table behind fast decoding.
//! - [`reference`](mod@reference): scalar, obviously correct versions of every kernel; the test oracle.
//! - [`types`]: ids and borrowed views shared by every plaid crate.
//!
//! Decoders never panic on any residual bytes. Functions that take caller-sized output
//! slices come in pairs: `f` panics on a length mismatch (documented under *Panics*),
//! `try_f` returns [`Error::Shape`] instead.
//!
//! # Example
//!
//! ```
//! use plaid_codec::types::EmbeddingsView;
//! use plaid_codec::{Codebook, Nbits, QuantizerKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dim = 4;
//! // Two unit-norm centroids and a few held-out token embeddings.
//! let centroids = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
//! let tokens = [
//!     0.9, 0.1, 0.0, 0.1, 0.8, -0.2, 0.1, 0.0, 0.1, 0.9, 0.2, 0.0, -0.1, 0.7, 0.0, 0.3,
//! ];
//! let view = EmbeddingsView::try_new(&tokens, dim)?;
//! let codebook = Codebook::train(centroids, dim, view, Nbits::Four, QuantizerKind::Global)?;
//!
//! let compressed = codebook.compress(view)?;
//! assert_eq!(compressed.codes, [0, 0, 1, 1]);
//! assert_eq!(compressed.residuals.len(), 4 * codebook.packed_len()); // 2 bytes per token
//!
//! let mut token = vec![0.0; dim];
//! let first_row = &compressed.residuals[..codebook.packed_len()];
//! codebook.decompress_into(compressed.codes[0], first_row, &mut token)?;
//! let norm: f32 = token.iter().map(|v| v * v).sum::<f32>().sqrt();
//! assert!((norm - 1.0).abs() < 1e-5);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! None.
// No SIMD unpacker yet, so nothing here needs `unsafe` (STYLE §2.5).
#![forbid(unsafe_code)]

mod codebook;
mod error;
mod int8;
mod nbits;
pub mod pack;
mod quantile;
mod quantizer;
pub mod reference;
mod table;
pub mod types;

pub use codebook::{Codebook, Compressed};
pub use error::Error;
pub use int8::Int8Centroids;
pub use nbits::Nbits;
pub use quantizer::{QuantizerKind, ResidualQuantizer};
pub use table::DecodeTable;
