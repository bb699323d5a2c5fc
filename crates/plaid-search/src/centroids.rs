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

/// The union over query tokens of each token's `n_probe` best centroids,
/// minus those whose best score over all tokens is below `threshold`.
/// Returns a flag per centroid. Ties go to the lower centroid id; NaN scores
/// are never probed.
pub(crate) fn probe(st: &[f32], nq: usize, n_probe: usize, threshold: Option<f32>) -> Vec<bool> {
    let k = st.len().checked_div(nq).unwrap_or(0);
    let mut probed = vec![false; k];
    if k == 0 {
        return probed;
    }
    let n_probe = n_probe.min(k);
    // Per query token, the current best n_probe (score, centroid), sorted
    // descending by score then ascending by id.
    let mut tops: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(n_probe + 1); nq];
    for (c, row) in st.chunks_exact(nq).enumerate() {
        for (top, &s) in tops.iter_mut().zip(row) {
            if s.is_nan() {
                continue;
            }
            if top.len() == n_probe {
                // Full: only a strictly better score enters (a tie with the
                // last keeps the lower id, which is already there).
                match top.last() {
                    Some(&(worst, _)) if s > worst => {
                        top.pop();
                    }
                    _ => continue,
                }
            }
            let pos = top.partition_point(|&(v, _)| v >= s);
            top.insert(pos, (s, c as u32));
        }
    }
    for top in &tops {
        for &(_, c) in top {
            probed[c as usize] = true;
        }
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
        // token 0 top2: c1, c2; token 1 top2: c0, c1; c2's best is 0.5 < 0.6.
        assert_eq!(p, vec![true, true, false, false]);
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
