//! Stage 1: query × centroid scores and probing.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Centroid-major scores `st[c * nq + q] = centroid_c · query_q` (`K × nq`),
/// computed as one GEMM on the calling thread.
pub(crate) fn centroid_scores(query: &[f32], centroids: &[f32], dim: usize) -> Vec<f32> {
    let nq = query.len() / dim;
    let k = centroids.len() / dim;
    let mut st = vec![0.0f32; k * nq];
    if nq == 0 || k == 0 {
        return st;
    }
    let c = MatRef::from_row_major_slice(centroids, k, dim);
    let q = MatRef::from_row_major_slice(query, nq, dim);
    let dst = MatMut::from_row_major_slice_mut(&mut st, k, nq);
    matmul(dst, Accum::Replace, c, q.transpose(), 1.0f32, Par::Seq);
    st
}

/// The `depth` best centroids of query token `q` (ids, best first; ties to
/// the lower id; NaN scores never included).
fn ranked(st: &[f32], nq: usize, q: usize, depth: usize) -> Vec<u32> {
    let k = st.len() / nq;
    let depth = depth.min(k);
    let better = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let mut out: Vec<(f32, u32)>;
    if depth <= 64 {
        // Insertion into a short sorted list: most scores fail the first compare.
        out = Vec::with_capacity(depth + 1);
        for c in 0..k {
            let s = st[c * nq + q];
            if s.is_nan() {
                continue;
            }
            if out.len() == depth {
                match out.last() {
                    Some(&(worst, _)) if s > worst => {
                        out.pop();
                    }
                    _ => continue,
                }
            }
            let pos = out.partition_point(|&(v, _)| v >= s);
            out.insert(pos, (s, c as u32));
        }
    } else {
        out = (0..k)
            .map(|c| (st[c * nq + q], c as u32))
            .filter(|(s, _)| !s.is_nan())
            .collect();
        if out.len() > depth {
            out.select_nth_unstable_by(depth - 1, better);
            out.truncate(depth);
        }
        out.sort_unstable_by(better);
    }
    out.into_iter().map(|(_, c)| c).collect()
}

/// Chooses the centroids to probe.
///
/// Every query token gets the same budget: `n_probe` distinct centroids per
/// token, `n_probe · nq` in all (at most K). Centroids are taken round-robin
/// over the tokens by rank (every token's best, then every token's second
/// best, ...), skipping centroids already chosen. When the tokens are
/// distinct this is the usual union of each token's `n_probe` best; when
/// several tokens are near-duplicates (ColBERT's `[MASK]` padding), their
/// shared centroids are counted once and the budget goes deeper into their
/// lists instead of being wasted on repeats.
///
/// Afterwards, centroids whose best score over all tokens is below
/// `threshold` are dropped (PLAID's `t_cs`). Returns a flag per centroid.
pub(crate) fn probe(st: &[f32], nq: usize, n_probe: usize, threshold: Option<f32>) -> Vec<bool> {
    let k = st.len().checked_div(nq).unwrap_or(0);
    let mut probed = vec![false; k];
    if k == 0 {
        return probed;
    }
    let budget = n_probe.saturating_mul(nq).min(k);
    // Usually the budget is met within twice n_probe ranks; go deeper only
    // when it is not (many duplicated tokens).
    let mut depth = n_probe.saturating_mul(2).min(k);
    loop {
        let lists: Vec<Vec<u32>> = (0..nq).map(|q| ranked(st, nq, q, depth)).collect();
        probed.iter_mut().for_each(|p| *p = false);
        let mut count = 0;
        'fill: for r in 0..depth {
            for list in &lists {
                if let Some(&c) = list.get(r) {
                    let p = &mut probed[c as usize];
                    if !*p {
                        *p = true;
                        count += 1;
                        if count == budget {
                            break 'fill;
                        }
                    }
                }
            }
        }
        if count == budget || depth >= budget.min(k) {
            break;
        }
        depth = budget.min(k);
    }
    if let Some(t) = threshold {
        for (c, row) in st.chunks_exact(nq).enumerate() {
            if probed[c] {
                let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                if best < t {
                    probed[c] = false;
                }
            }
        }
    }
    probed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_picks_top_per_token_with_ties_to_lower_id() {
        // K = 4 centroids, nq = 2 tokens; st is centroid-major.
        let st = [
            0.1, 0.9, //
            0.5, 0.9, //
            0.5, 0.0, //
            0.2, 0.3,
        ];
        let p = probe(&st, 2, 1, None);
        // token 0: best 0.5 at c1 and c2 -> c1; token 1: 0.9 at c0 and c1 -> c0.
        assert_eq!(p, vec![true, true, false, false]);
        let p = probe(&st, 2, 2, Some(0.6));
        // Budget 4: rank 0 gives c1, c0; rank 1 gives c2 (token 0) and c1
        // again (token 1, skipped); rank 2: token 0's c0 (taken), token 1's c3.
        // Then the threshold drops c2 (best 0.5) and c3 (best 0.3).
        assert_eq!(p, vec![true, true, false, false]);
    }

    #[test]
    fn probe_spends_the_budget_of_duplicated_tokens_deeper() {
        // Three identical query tokens: the budget 3 * 1 covers their top 3.
        let k = 10;
        let mut st = Vec::new();
        for c in 0..k {
            let s = 1.0 - c as f32 * 0.05;
            st.extend_from_slice(&[s, s, s]);
        }
        let p = probe(&st, 3, 1, None);
        let chosen: Vec<usize> = (0..k).filter(|&c| p[c]).collect();
        assert_eq!(chosen, vec![0, 1, 2]);
    }

    #[test]
    fn centroid_scores_match_naive() {
        let dim = 5;
        let q: Vec<f32> = (0..3 * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..7 * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        let st = centroid_scores(&q, &c, dim);
        for ci in 0..7 {
            for qi in 0..3 {
                let want = crate::reference::dot(&q[qi * dim..][..dim], &c[ci * dim..][..dim]);
                assert!((f64::from(st[ci * 3 + qi]) - want).abs() < 1e-5);
            }
        }
    }
}
