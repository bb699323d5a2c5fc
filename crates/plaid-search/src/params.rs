//! Search parameters.

use crate::Error;

/// Knobs of the PLAID pipeline. The defaults follow next-plaid's
/// `SearchParameters`, except that the centroid score threshold is off (as in
/// next-plaid's REST API and fast-plaid): with it on, queries that are not
/// unit-normalised can lose every candidate.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SearchParams {
    /// Number of documents to return.
    pub k: usize,
    /// Centroids probed per query token.
    pub n_probe: usize,
    /// Drop a probed centroid whose best score over all query tokens is below
    /// this value (PLAID's `t_cs`). `None` keeps every probed centroid.
    pub centroid_score_threshold: Option<f32>,
    /// Candidates kept after approximate (centroid-only) scoring; a quarter of
    /// them, and at least `k`, are scored exactly.
    pub n_full_scores: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            k: 10,
            n_probe: 8,
            centroid_score_threshold: None,
            n_full_scores: 8192,
        }
    }
}

impl SearchParams {
    /// Default parameters returning `k` documents.
    pub fn with_k(k: usize) -> Self {
        Self {
            k,
            ..Self::default()
        }
    }

    /// Sets the number of centroids probed per query token.
    pub fn n_probe(mut self, n_probe: usize) -> Self {
        self.n_probe = n_probe;
        self
    }

    /// Sets the centroid score threshold.
    pub fn centroid_score_threshold(mut self, threshold: Option<f32>) -> Self {
        self.centroid_score_threshold = threshold;
        self
    }

    /// Sets the number of candidates kept after approximate scoring.
    pub fn n_full_scores(mut self, n: usize) -> Self {
        self.n_full_scores = n;
        self
    }

    /// Number of documents that get exact MaxSim: `max(n_full_scores / 4, k)`.
    pub fn n_exact(&self) -> usize {
        (self.n_full_scores / 4).max(self.k)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::ZeroK`] when `k == 0`; [`Error::BadParam`] when `n_probe` or
    /// `n_full_scores` is zero or the threshold is not finite.
    pub fn validate(&self) -> Result<(), Error> {
        if self.k == 0 {
            return Err(Error::ZeroK);
        }
        if self.n_probe == 0 {
            return Err(Error::BadParam {
                name: "n_probe",
                value: 0.0,
                expected: "at least 1",
            });
        }
        if self.n_full_scores == 0 {
            return Err(Error::BadParam {
                name: "n_full_scores",
                value: 0.0,
                expected: "at least 1",
            });
        }
        if let Some(t) = self.centroid_score_threshold {
            if !t.is_finite() {
                return Err(Error::BadParam {
                    name: "centroid_score_threshold",
                    value: f64::from(t),
                    expected: "a finite number",
                });
            }
        }
        Ok(())
    }
}
