//! Deterministic Lloyd k-means and nearest-centroid assignment for PLAID codebooks.
//!
//! This crate turns `f32` rows into centroids ([`fit`]) and rows into centroid
//! indices ([`nearest_by_dot`], [`nearest_by_l2`]). It follows the k-means
//! recipe of next-plaid (ChaCha8-seeded sampling and init, 4 Lloyd iterations,
//! at most 256 points per centroid, L2-normalised centroids) and knows nothing
//! about ColBERT, documents or indexes.
//!
//! # Should I use this crate?
//!
//! Application authors should use the `plaid` facade, which samples documents,
//! picks `k` with [`heuristics`] and trains the codebook for you. Use this
//! crate directly to cluster rows yourself or to assign rows to centroids.
//!
//! # How it works
//!
//! Assignment is a blocked GEMM: fixed blocks of rows × fixed blocks of
//! centroids are scored with a sequential [faer] matrix product into a
//! bounded buffer, and row blocks run in parallel on the caller's rayon pool
//! (use `ThreadPool::install` to choose one). Because the partition into
//! blocks never depends on the thread count and every reduction runs in a
//! fixed order, results are bit-identical for a given seed whatever the number
//! of threads. [`reference`](mod@reference) holds plain-loop oracles for every fast path.
//!
//! # Example
//!
//! ```
//! use plaid_kmeans::{KMeansConfig, fit, nearest_by_dot};
//!
//! # fn main() -> Result<(), plaid_kmeans::Error> {
//! let dim = 2;
//! // Two groups of two points each.
//! let data = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9];
//! let model = fit(&data, dim, &KMeansConfig::new(2))?;
//! assert_eq!((model.k(), model.dim()), (2, 2));
//!
//! let mut codes = [0u32; 4];
//! nearest_by_dot(&data, model.centroids(), dim, &mut codes)?;
//! assert_eq!(codes[0], codes[1]);
//! assert_eq!(codes[2], codes[3]);
//! assert_ne!(codes[0], codes[2]);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! None.
// This crate has no reason to use `unsafe`; faer and rayon hold the unsafe code.
#![forbid(unsafe_code)]

mod assign;
mod error;
pub mod heuristics;
mod lloyd;
pub mod reference;

pub use assign::{nearest_by_dot, nearest_by_l2};
pub use error::Error;
pub use lloyd::{Assigner, FitWithError, fit, fit_with};

/// Settings for [`fit`]. Build with [`KMeansConfig::new`] and change fields as needed.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansConfig {
    /// Number of centroids.
    pub k: usize,
    /// Maximum number of Lloyd iterations (default 4). Zero returns the
    /// (normalised) initial centroids.
    pub max_iters: usize,
    /// Seed of the ChaCha8 RNG behind sampling, init and reseeding (default 42).
    pub seed: u64,
    /// At most `k · max_points_per_centroid` rows are used (default 256); more
    /// are subsampled at random.
    pub max_points_per_centroid: usize,
    /// Stop early once the total squared centroid shift of an iteration
    /// (summed over all centroids and dimensions) is below this (default 1e-8).
    pub tol: f64,
    /// L2-normalise the final centroids, with the norm floored at 1e-12 (default true).
    pub normalize: bool,
}

impl KMeansConfig {
    /// A config for `k` centroids with next-plaid's defaults for every other field.
    pub fn new(k: usize) -> Self {
        KMeansConfig {
            k,
            max_iters: 4,
            seed: 42,
            max_points_per_centroid: 256,
            tol: 1e-8,
            normalize: true,
        }
    }
}

/// Trained centroids, from [`fit`] or [`reference::fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    centroids: Vec<f32>,
    dim: usize,
    k: usize,
    iterations: usize,
    reseeded: usize,
}

impl KMeans {
    /// The centroids, row-major `k × dim`.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Width of each centroid.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of Lloyd iterations that ran (at most `max_iters`).
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// How many times an empty cluster was reseeded with a random point,
    /// summed over all iterations.
    pub fn reseeded_clusters(&self) -> usize {
        self.reseeded
    }

    /// The centroids, row-major `k × dim`, without copying.
    pub fn into_centroids(self) -> Vec<f32> {
        self.centroids
    }
}
