//! Size heuristics from next-plaid: how many centroids, and how many documents to sample.
//!
//! These match next-plaid's `compute_kmeans` (see the workspace's spec, §1.1).

/// Number of centroids for an index of about `estimated_tokens` embeddings:
/// `2^floor(log2(16 · sqrt(T)))`, at least 1.
///
/// NaN and inputs below 1/64 give 1; the result is capped at `2^(usize::BITS − 1)`.
///
/// ```
/// use plaid_kmeans::heuristics::num_partitions;
/// assert_eq!(num_partitions(276_127.0), 8192);
/// assert_eq!(num_partitions(1e7), 32768);
/// ```
pub fn num_partitions(estimated_tokens: f64) -> usize {
    let x = 16.0 * estimated_tokens.sqrt();
    if x.is_nan() || x < 2.0 {
        return 1;
    }
    const MAX_EXP: i32 = usize::BITS as i32 - 1;
    let mut e = (x.log2().floor() as i32).clamp(0, MAX_EXP);
    // `log2` may be off by one ulp next to a power of two; fix up exactly.
    while e < MAX_EXP && 2f64.powi(e + 1) <= x {
        e += 1;
    }
    while e > 0 && 2f64.powi(e) > x {
        e -= 1;
    }
    1usize << e
}

/// Number of documents to sample for k-means out of `num_docs`:
/// `min(floor(1 + 16 · sqrt(120 · N)), N)`.
///
/// ```
/// use plaid_kmeans::heuristics::kmeans_sample_docs;
/// assert_eq!(kmeans_sample_docs(5000), 5000);
/// assert_eq!(kmeans_sample_docs(100_000), 55_426);
/// ```
pub fn kmeans_sample_docs(num_docs: usize) -> usize {
    let n = num_docs as f64;
    let sample = (1.0 + 16.0 * (120.0 * n).sqrt()).floor();
    // `sample` is finite and non-negative; the cast saturates for huge values.
    (sample as usize).min(num_docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_partitions_matches_spec_examples() {
        let cases = [
            (276_127.0, 8192),
            (1e6, 8192),
            (1e7, 32768),
            // 16 · sqrt(2^18) = 2^13 exactly.
            (262_144.0, 8192),
            (262_143.0, 4096),
            (0.0, 1),
            (-5.0, 1),
            (f64::NAN, 1),
            (1.0 / 256.0, 1),
            (1.0, 16),
            (f64::INFINITY, 1 << (usize::BITS - 1)),
        ];
        for (t, k) in cases {
            assert_eq!(num_partitions(t), k, "T = {t}");
        }
    }

    #[test]
    fn kmeans_sample_docs_matches_spec_examples() {
        for (n, s) in [
            (0, 0),
            (1, 1),
            (5000, 5000),
            (12_000, 12_000),
            (100_000, 55_426),
            (1_000_000, 175_272),
        ] {
            assert_eq!(kmeans_sample_docs(n), s, "N = {n}");
        }
    }
}
