//! Index configuration.

use crate::{Device, Error};
use plaid_codec::{Nbits, QuantizerKind};

/// How to build an index. The defaults follow ColBERT and next-plaid
/// (4-bit residuals, seed 42, 4 k-means iterations, K from the corpus size),
/// except the residual quantiser, which is per-dimension by default because it
/// loses less at the same size.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IndexConfig {
    /// Residual bits per dimension: 1, 2 or 4.
    pub nbits: u8,
    /// Seed of every random choice (document sample, k-means init).
    pub seed: u64,
    /// Lloyd iterations.
    pub kmeans_iters: usize,
    /// Number of centroids; `None` = `2^floor(log2(16·sqrt(T)))`.
    pub num_centroids: Option<usize>,
    /// Cap on k-means training points per centroid.
    pub max_points_per_centroid: usize,
    /// Documents sampled for k-means; `None` = `min(1 + 16·sqrt(120·N), N)`.
    pub sample_docs: Option<usize>,
    /// Residual quantiser.
    pub quantizer: QuantizerKind,
    /// Where k-means assignment and encoding run (default: the CPU).
    pub device: Device,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            nbits: 4,
            seed: 42,
            kmeans_iters: 4,
            num_centroids: None,
            max_points_per_centroid: 256,
            sample_docs: None,
            quantizer: QuantizerKind::PerDim,
            device: Device::Cpu,
        }
    }
}

impl IndexConfig {
    /// Sets the residual bits.
    pub fn nbits(mut self, nbits: u8) -> Self {
        self.nbits = nbits;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the number of centroids.
    pub fn num_centroids(mut self, k: Option<usize>) -> Self {
        self.num_centroids = k;
        self
    }

    /// Sets the quantiser kind.
    pub fn quantizer(mut self, kind: QuantizerKind) -> Self {
        self.quantizer = kind;
        self
    }

    /// Sets the build device.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Codec`] for unsupported `nbits`; [`Error::BadConfig`] for a
    /// zero iteration count, points-per-centroid, centroid count or sample size.
    pub fn validate(&self) -> Result<Nbits, Error> {
        let nbits = Nbits::new(self.nbits)?;
        let positive = |name, value: usize| {
            if value == 0 {
                Err(Error::BadConfig {
                    name,
                    value: 0,
                    expected: "at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("kmeans_iters", self.kmeans_iters)?;
        positive("max_points_per_centroid", self.max_points_per_centroid)?;
        if let Some(k) = self.num_centroids {
            positive("num_centroids", k)?;
        }
        if let Some(s) = self.sample_docs {
            positive("sample_docs", s)?;
        }
        Ok(nbits)
    }
}
