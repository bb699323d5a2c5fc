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
    /// Centroids probed per query token when `k ≤ 10`; see
    /// [`SearchParams::effective_n_probe`] for larger `k`.
    pub n_probe: usize,
    /// Probe deeper for larger `k` (on by default): the probe budget is
    /// multiplied by 2 for `10 < k ≤ 100` and by 4 for `k > 100`, as
    /// ColBERT's searcher scales `ncells` with `k` (1, 2, 4). More results
    /// need more of the corpus to be reachable.
    pub scale_probe_with_k: bool,
    /// Drop a probed centroid whose best score over all query tokens is below
    /// this value (PLAID's `t_cs`). `None` keeps every probed centroid.
    pub centroid_score_threshold: Option<f32>,
    /// Candidates kept after approximate (centroid-only) scoring; a quarter of
    /// them, and at least `k`, are scored exactly. The default, 2048, scores
    /// 512 documents exactly: the exact stage is most of a query's cost, and
    /// on debian-5k (k = 100) quadrupling it raised recall@10 by < 0.001 on
    /// plain queries and by 0.04 on `[MASK]`-padded ones (see
    /// `bench/results/`); raise it when recall@100 matters more than speed.
    pub n_full_scores: usize,
    /// How the exact stage scores documents (default
    /// [`ExactScoring::Int8`]).
    pub exact_scoring: ExactScoring,
}

/// How the exact stage computes MaxSim over compressed tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExactScoring {
    /// Integer scoring (the default): residual weights rounded to byte
    /// levels (one scale per codebook), query tokens rounded to `i8` (one
    /// scale per token) and `u8 × i8` dot products, which x86 VNNI runs 64
    /// at a time. Centroid scores stay in `f32`. Needs the codebook's int8
    /// centroids; without them the float path runs.
    #[default]
    Int8,
    /// Float scoring: residuals decoded to `f32` and multiplied by the
    /// `f32` query in one GEMM per group of documents. Slower; what the GPU
    /// backend reproduces.
    Float,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            k: 10,
            n_probe: 8,
            scale_probe_with_k: true,
            centroid_score_threshold: None,
            n_full_scores: 2048,
            exact_scoring: ExactScoring::Int8,
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

    /// Sets how the exact stage scores documents.
    pub fn exact_scoring(mut self, scoring: ExactScoring) -> Self {
        self.exact_scoring = scoring;
        self
    }

    /// Sets the number of centroids probed per query token.
    pub fn n_probe(mut self, n_probe: usize) -> Self {
        self.n_probe = n_probe;
        self
    }

    /// Turns the scaling of the probe budget with `k` on or off.
    pub fn scale_probe_with_k(mut self, on: bool) -> Self {
        self.scale_probe_with_k = on;
        self
    }

    /// Centroids probed per query token for this `k`: `n_probe`, times 2
    /// when `10 < k ≤ 100` and times 4 when `k > 100` (unless
    /// `scale_probe_with_k` is off).
    pub fn effective_n_probe(&self) -> usize {
        let factor = match (self.scale_probe_with_k, self.k) {
            (false, _) | (true, 0..=10) => 1,
            (true, 11..=100) => 2,
            (true, _) => 4,
        };
        self.n_probe.saturating_mul(factor)
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
        if let Some(t) = self.centroid_score_threshold
            && !t.is_finite()
        {
            return Err(Error::BadParam {
                name: "centroid_score_threshold",
                value: f64::from(t),
                expected: "a finite number",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_budget_scales_with_k_like_colbert() {
        let p = |k| SearchParams::with_k(k).effective_n_probe();
        assert_eq!(
            (p(1), p(10), p(11), p(100), p(101), p(1000)),
            (8, 8, 16, 16, 32, 32)
        );
        let fixed = SearchParams::with_k(100).scale_probe_with_k(false);
        assert_eq!(fixed.effective_n_probe(), 8);
    }
}
