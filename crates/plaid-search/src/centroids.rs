//! Stage 1: query × centroid scores and probing.

use crate::Error;
use crate::kernels::Kernel;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use plaid_codec::{Codebook, types::EmbeddingsView};
use rayon::prelude::*;

/// A row-major `nrows × ncols` matrix whose rows start `stride` floats apart.
///
/// Built as the transpose of a column-major view: faer 0.24's
/// `from_row_major_slice_with_stride_mut` swaps the two strides.
pub(crate) fn row_major_strided_mut(
    slice: &mut [f32],
    nrows: usize,
    ncols: usize,
    stride: usize,
) -> MatMut<'_, f32> {
    MatMut::from_column_major_slice_with_stride_mut(slice, ncols, nrows, stride).transpose_mut()
}

/// Centroid-major scores `st[c * stride + q] = centroid_c · query_q` (`K`
/// rows of `stride ≥ nq` floats; the padding columns are 0), computed as one
/// GEMM per block of centroid rows, in at most `threads` blocks on the rayon
/// pool. The padding lets the per-document kernels work on whole vectors.
pub(crate) fn centroid_scores(
    query: &[f32],
    centroids: &[f32],
    dim: usize,
    stride: usize,
    threads: usize,
) -> Vec<f32> {
    let nq = query.len() / dim.max(1);
    let k = centroids.len() / dim.max(1);
    let stride = stride.max(nq);
    let mut st = vec![0.0f32; k * stride];
    if nq == 0 || k == 0 {
        return st;
    }
    let q = MatRef::from_row_major_slice(query, nq, dim);
    // One GEMM per block of centroid rows, the blocks spread over the rayon
    // pool: a single query still uses every thread. Each block's rows are
    // computed alone, so the result does not depend on the thread count.
    let rows = k.div_ceil(threads.max(1)).max(GEMM_MIN_ROWS);
    st.par_chunks_mut(rows * stride)
        .zip(centroids.par_chunks(rows * dim))
        .for_each(|(out, cents)| {
            let n = cents.len() / dim;
            let c = MatRef::from_row_major_slice(cents, n, dim);
            let dst = row_major_strided_mut(out, n, nq, stride);
            matmul(dst, Accum::Replace, c, q.transpose(), 1.0f32, Par::Seq);
        });
    st
}

/// One query's scores against every centroid of a codebook (stage 1 of the
/// search) and the probing rule over them (stage 2): the pieces of
/// [`crate::Searcher::search`] that pick where to look, for callers that
/// generate candidates themselves or want to time these stages alone.
///
/// # Example
/// ```
/// use plaid_codec::{Codebook, Nbits, QuantizerKind, types::EmbeddingsView};
/// use plaid_search::CentroidScores;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dim = 4;
/// let centroids = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
/// let sample = EmbeddingsView::try_new(&centroids, dim)?;
/// let codebook = Codebook::train(centroids.clone(), dim, sample, Nbits::Two, QuantizerKind::Global)?;
/// let query = [0.0f32, 0.8, 0.6, 0.0];
/// let scores = CentroidScores::compute(&codebook, EmbeddingsView::try_new(&query, dim)?, 1)?;
/// assert_eq!(scores.ranked(1, 1), vec![vec![1]]);
/// assert_eq!(scores.probe(1, None, 1), vec![false, true]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CentroidScores {
    st: Vec<f32>,
    nq: usize,
    stride: usize,
    kernel: Kernel,
}

impl CentroidScores {
    /// `centroid · token` for every centroid of `codebook` and every token
    /// of `query`, as one GEMM per block of centroids, in at most `threads`
    /// blocks on the current rayon pool.
    ///
    /// # Errors
    /// [`Error::EmptyQuery`], [`Error::QueryDim`], [`Error::NonFiniteQuery`].
    pub fn compute(
        codebook: &Codebook,
        query: EmbeddingsView<'_>,
        threads: usize,
    ) -> Result<Self, Error> {
        check_query(codebook.dim(), &query)?;
        let nq = query.num_rows();
        let stride = score_stride(nq);
        let st = centroid_scores(
            query.as_slice(),
            codebook.centroids(),
            codebook.dim(),
            stride,
            threads,
        );
        Ok(Self {
            st,
            nq,
            stride,
            kernel: Kernel::best(),
        })
    }

    /// Ranks with `kernel` instead of the best one this CPU runs (an
    /// unavailable kernel falls back to the scalar code); results do not
    /// depend on it.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Query tokens.
    pub fn num_tokens(&self) -> usize {
        self.nq
    }

    /// Centroids.
    pub fn num_centroids(&self) -> usize {
        self.st.len() / self.stride.max(1)
    }

    /// The score of `centroid` for query token `token`.
    pub fn get(&self, centroid: usize, token: usize) -> Option<f32> {
        if token >= self.nq {
            return None;
        }
        self.st.get(centroid * self.stride + token).copied()
    }

    /// Each query token's best `depth` centroids, best first, ties to the
    /// lower id, ranked in at most `threads` parts on the current pool.
    pub fn ranked(&self, depth: usize, threads: usize) -> Vec<Vec<u32>> {
        ranked_all(self.kernel, &self.st, self.nq, self.stride, depth, threads)
    }

    /// The centroids to probe, a flag per centroid: `n_probe` distinct
    /// centroids per query token taken round-robin by rank, then those whose
    /// best score is below `threshold` dropped (see
    /// [`crate::Searcher::search`]).
    pub fn probe(&self, n_probe: usize, threshold: Option<f32>, threads: usize) -> Vec<bool> {
        probe(
            self.kernel,
            &self.st,
            self.nq,
            self.stride,
            n_probe,
            threshold,
            threads,
        )
    }
}

/// Row width of the centroid scores of a query of `nq` tokens: whole
/// vectors of [`Kernel::LANES`], at least one.
pub(crate) fn score_stride(nq: usize) -> usize {
    nq.div_ceil(Kernel::LANES).max(1) * Kernel::LANES
}

/// The query checks of every search: tokens present, of the index's
/// dimension, finite.
pub(crate) fn check_query(dim: usize, query: &EmbeddingsView<'_>) -> Result<(), Error> {
    if query.is_empty() {
        return Err(Error::EmptyQuery);
    }
    if query.dim() != dim {
        return Err(Error::QueryDim {
            expected: dim,
            found: query.dim(),
        });
    }
    for (token, row) in query.rows().enumerate() {
        if let Some(dim) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteQuery { token, dim });
        }
    }
    Ok(())
}

/// Fewest centroid rows per GEMM block: below this, splitting costs more
/// than it saves.
const GEMM_MIN_ROWS: usize = 1024;

/// Best first: higher score, then lower id.
fn better_first(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// `(score, id)` as one integer whose ascending order is [`better_first`]:
/// the score's bits mapped to an unsigned order (total order of floats),
/// inverted so that higher scores come first, above the id. Sorting and
/// selecting plain integers is several times cheaper than comparing tuples
/// through a closure, and the ranked scan spends most of its time there.
#[inline(always)]
fn rank_key(score: f32, id: u32) -> u64 {
    let bits = score.to_bits();
    let ord = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(!ord) << 32) | u64::from(id)
}

/// The score of a [`rank_key`].
#[inline(always)]
fn key_score(key: u64) -> f32 {
    let ord = !((key >> 32) as u32);
    let bits = if ord & 0x8000_0000 != 0 {
        ord & 0x7fff_ffff
    } else {
        !ord
    };
    f32::from_bits(bits)
}

/// Keeps the best `depth` of `buf` ([`rank_key`]s) and returns the worst
/// score kept: the new entry bar.
fn trim(buf: &mut Vec<u64>, depth: usize) -> f32 {
    if buf.len() > depth {
        buf.select_nth_unstable(depth - 1);
        buf.truncate(depth);
    }
    buf.iter().max().map_or(f32::INFINITY, |&k| key_score(k))
}

/// The `depth` best centroids of every query token (ids, best first; ties to
/// the lower id; NaN scores never included), in one pass over the scores.
///
/// Most rows beat no token's current bar, so a row is first compared as a
/// whole. A token's winners go to a buffer that is cut back to the best
/// `depth` whenever it reaches `2 · depth`, which raises the bar: amortised
/// constant work per winner, where a heap paid a logarithmic sift.
fn ranked_all(
    kernel: Kernel,
    st: &[f32],
    nq: usize,
    stride: usize,
    depth: usize,
    threads: usize,
) -> Vec<Vec<u32>> {
    // With at least 16 tokens per thread, tokens are split into groups of
    // whole 16s (a row's compare covers sixteen at once), each part scanning
    // every row for its own columns. With fewer, a column split would save
    // nothing per row, so rows are split instead, each part ranking its own
    // centroids for every token, and the parts' lists are merged.
    let threads = threads.max(1);
    if threads > 1 && nq >= 16 * threads {
        let part = nq.div_ceil(threads).div_ceil(16) * 16;
        let starts: Vec<usize> = (0..nq).step_by(part).collect();
        return starts
            .into_par_iter()
            .flat_map_iter(|s| kernel.ranked_cols(st, s..(s + part).min(nq), stride, depth))
            .collect();
    }
    let k = st.len().checked_div(stride).unwrap_or(0);
    let parts = threads.min(k / RANK_MIN_ROWS).max(1);
    if parts == 1 {
        return kernel.ranked_cols(st, 0..nq, stride, depth);
    }
    let rows = k.div_ceil(parts);
    let lists: Vec<Vec<Vec<u32>>> = (0..parts)
        .into_par_iter()
        .map(|p| {
            let (r0, r1) = (p * rows, ((p + 1) * rows).min(k));
            let mut l = kernel.ranked_cols(&st[r0 * stride..r1 * stride], 0..nq, stride, depth);
            l.iter_mut()
                .flat_map(|l| l.iter_mut())
                .for_each(|id| *id += r0 as u32);
            l
        })
        .collect();
    (0..nq)
        .map(|q| {
            let heads: Vec<&[u32]> = lists
                .iter()
                .filter_map(|l| l.get(q))
                .map(|l| &l[..])
                .collect();
            merge_ranked(st, stride, q, &heads, depth)
        })
        .collect()
}

/// The best `depth` of several ranked lists of column `q` (each best first
/// by [`better_first`]), merged by that order.
fn merge_ranked(st: &[f32], stride: usize, q: usize, lists: &[&[u32]], depth: usize) -> Vec<u32> {
    let score = |id: u32| st[id as usize * stride + q];
    let mut pos = vec![0usize; lists.len()];
    let mut out = Vec::with_capacity(depth);
    while out.len() < depth {
        let mut best: Option<(usize, (f32, u32))> = None;
        for (i, l) in lists.iter().enumerate() {
            if let Some(&id) = l.get(pos[i]) {
                let e = (score(id), id);
                if best.is_none_or(|(_, b)| better_first(&e, &b).is_lt()) {
                    best = Some((i, e));
                }
            }
        }
        let Some((i, (_, id))) = best else { break };
        pos[i] += 1;
        out.push(id);
    }
    out
}

/// Fewest centroids per part of [`ranked_all`].
const RANK_MIN_ROWS: usize = 256;

/// Bit `j` set where `s[j] > b[j]` (false for NaN), for up to 64 entries.
/// Written over fixed groups of 16 so that it compiles to vector compares
/// and mask moves where the instruction set has them.
#[inline(always)]
fn gt_mask(s: &[f32], b: &[f32]) -> u64 {
    let mut mask = 0u64;
    let mut sc = s.chunks_exact(16);
    let mut bc = b.chunks_exact(16);
    let mut shift = 0;
    for (s16, b16) in (&mut sc).zip(&mut bc) {
        let mut m = 0u16;
        for j in 0..16 {
            m |= u16::from(s16[j] > b16[j]) << j;
        }
        mask |= u64::from(m) << shift;
        shift += 16;
    }
    // The tail, padded with entries that never pass.
    let (sr, br) = (sc.remainder(), bc.remainder());
    if !sr.is_empty() && shift < 64 {
        let mut s16 = [f32::NEG_INFINITY; 16];
        let mut b16 = [f32::INFINITY; 16];
        let n = sr.len().min(br.len());
        s16[..n].copy_from_slice(&sr[..n]);
        b16[..n].copy_from_slice(&br[..n]);
        let mut m = 0u16;
        for j in 0..16 {
            m |= u16::from(s16[j] > b16[j]) << j;
        }
        mask |= u64::from(m) << shift;
    }
    mask
}

/// The definition of [`Kernel::ranked_cols`] ([`ranked_all`] for the query
/// tokens in `cols`), inlined into each instruction set's
/// copy by [`Kernel::ranked_cols`].
#[inline(always)]
pub(crate) fn ranked_cols_generic(
    st: &[f32],
    cols: std::ops::Range<usize>,
    stride: usize,
    depth: usize,
) -> Vec<Vec<u32>> {
    let nq = cols.len();
    let k = st.len().checked_div(stride).unwrap_or(0);
    let depth = depth.min(k);
    if depth == 0 || stride < cols.end {
        return vec![Vec::new(); nq];
    }
    let cap = 2 * depth;
    let mut bufs: Vec<Vec<u64>> = vec![Vec::with_capacity(cap); nq];
    // Read whole groups of 16 columns where the row has them (score rows
    // are padded), with bars of +inf on the extra columns so they never
    // enter; this keeps `gt_mask` off its slower tail.
    let padded = nq.div_ceil(16) * 16;
    let width = if cols.start + padded <= stride {
        padded
    } else {
        nq
    };
    let cols = cols.start..cols.start + width;
    // Current entry bar of each token: -inf until its buffer first fills.
    let mut bar = vec![f32::INFINITY; width];
    bar[..nq].fill(f32::NEG_INFINITY);
    for (c, row) in st.chunks_exact(stride).enumerate() {
        // 64 tokens at a time: one branch-free pass builds the mask of
        // tokens whose bar this row beats (NaN fails every comparison, so it
        // never enters), and only those are visited. A branch per token
        // would mispredict often once the bars are deep.
        for (base, (srow, brow)) in row[cols.clone()]
            .chunks(64)
            .zip(bar.chunks_mut(64))
            .enumerate()
        {
            let mut mask = gt_mask(srow, brow);
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                // Ids arrive in increasing order, so a score equal to the bar
                // ranks after every kept entry with that score: only
                // strictly better scores enter.
                let buf = &mut bufs[base * 64 + j];
                buf.push(rank_key(srow[j], c as u32));
                if buf.len() == cap {
                    brow[j] = trim(buf, depth);
                }
            }
        }
    }
    bufs.into_iter()
        .map(|mut b| {
            trim(&mut b, depth);
            b.sort_unstable();
            b.into_iter().map(|k| k as u32).collect()
        })
        .collect()
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
/// `threshold` are dropped (PLAID's `t_cs`). `st` has rows of `stride`
/// floats of which the first `nq` are scores. The ranking runs in at most
/// `threads` parts. Returns a flag per centroid.
pub(crate) fn probe(
    kernel: Kernel,
    st: &[f32],
    nq: usize,
    stride: usize,
    n_probe: usize,
    threshold: Option<f32>,
    threads: usize,
) -> Vec<bool> {
    let k = st.len().checked_div(stride).unwrap_or(0);
    let mut probed = vec![false; k];
    if k == 0 || nq == 0 || stride < nq {
        return probed;
    }
    let budget = n_probe.saturating_mul(nq).min(k);
    // Usually the budget is met within twice n_probe ranks; go deeper only
    // when it is not (many duplicated tokens, as in padded queries). Any
    // depth at which the budget is met gives the same centroids, so the next
    // depth is extrapolated from how many distinct ones this one gave (with
    // a margin), which needs one or two scans where doubling needed several.
    let mut depth = n_probe.saturating_mul(2).min(k);
    loop {
        let lists = ranked_all(kernel, st, nq, stride, depth, threads);
        let count = fill_round_robin(&lists, depth, budget, &mut probed);
        if count == budget || depth >= budget.min(k) {
            break;
        }
        let guess = depth.saturating_mul(budget).saturating_mul(3) / (2 * count.max(1));
        depth = guess.max(depth.saturating_mul(2)).min(budget).min(k);
    }
    if let Some(t) = threshold {
        for (c, row) in st.chunks_exact(stride).enumerate() {
            if probed[c] {
                let best = row[..nq].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                if best < t {
                    probed[c] = false;
                }
            }
        }
    }
    probed
}

/// Marks centroids round-robin over the tokens' ranked `lists` (ranks below
/// `depth`), skipping repeats, until `budget` are marked; returns how many
/// were. `probed` is cleared first.
fn fill_round_robin<L: AsRef<[u32]>>(
    lists: &[L],
    depth: usize,
    budget: usize,
    probed: &mut [bool],
) -> usize {
    probed.iter_mut().for_each(|p| *p = false);
    let mut count = 0;
    for r in 0..depth {
        for list in lists {
            if let Some(p) = list
                .as_ref()
                .get(r)
                .and_then(|&c| probed.get_mut(c as usize))
                && !*p
            {
                *p = true;
                count += 1;
                if count == budget {
                    return count;
                }
            }
        }
    }
    count
}

/// The probing rule of the search pipeline (see [`crate::Searcher::search`])
/// applied to precomputed ranked lists: `lists[q]` holds query token `q`'s
/// best centroids, best first, ties to the lower id (for example from a
/// GPU). Each token gets `n_probe` distinct centroids, taken round-robin by
/// rank; the rank depth starts at `2 · n_probe` and doubles while the budget
/// is not met, as on the CPU. Lists shorter than the depth the CPU would
/// reach give fewer centroids; ids `≥ num_centroids` are ignored. Returns a
/// flag per centroid.
pub fn probe_from_lists<L: AsRef<[u32]>>(
    lists: &[L],
    n_probe: usize,
    num_centroids: usize,
) -> Vec<bool> {
    let k = num_centroids;
    let mut probed = vec![false; k];
    let nq = lists.len();
    if k == 0 || nq == 0 {
        return probed;
    }
    let budget = n_probe.saturating_mul(nq).min(k);
    let longest = lists.iter().map(|l| l.as_ref().len()).max().unwrap_or(0);
    let mut depth = n_probe.saturating_mul(2).min(k);
    loop {
        let count = fill_round_robin(lists, depth, budget, &mut probed);
        if count == budget || depth >= budget.min(k) || depth >= longest {
            break;
        }
        depth = depth.saturating_mul(2).min(budget).min(k);
    }
    probed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each token's best `depth` ids by a full sort: higher score, then lower id.
    fn naive(st: &[f32], nq: usize, stride: usize, depth: usize) -> Vec<Vec<u32>> {
        (0..nq)
            .map(|q| {
                let mut col: Vec<(f32, u32)> = st
                    .chunks_exact(stride)
                    .enumerate()
                    .map(|(c, r)| (r[q], c as u32))
                    .filter(|e| !e.0.is_nan())
                    .collect();
                col.sort_by(better_first);
                col.into_iter().take(depth).map(|e| e.1).collect()
            })
            .collect()
    }

    #[test]
    fn rank_keys_sort_like_better_first() {
        let scores = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            0.25,
            0.25,
            7.0,
            f32::INFINITY,
        ];
        let mut entries: Vec<(f32, u32)> = Vec::new();
        for (i, &s) in scores.iter().enumerate() {
            entries.push((s, (i * 37 % 11) as u32));
            entries.push((s, 5));
        }
        let mut want = entries.clone();
        want.sort_by(better_first);
        let mut keys: Vec<u64> = entries.iter().map(|&(s, i)| rank_key(s, i)).collect();
        keys.sort_unstable();
        let got: Vec<(f32, u32)> = keys.iter().map(|&k| (key_score(k), k as u32)).collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0.to_bits(), g.1), (w.0.to_bits(), w.1));
        }
    }

    #[test]
    fn ranked_lists_equal_a_full_sort_on_any_thread_count() {
        // Coarse scores make many ties; a few NaN never enter.
        let (k, nq, stride) = (700usize, 37usize, 48usize);
        let mut x = 12345u64;
        let st: Vec<f32> = (0..k * stride)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 97 == 5 {
                    f32::NAN
                } else {
                    ((x >> 40) % 50) as f32 / 10.0
                }
            })
            .collect();
        for depth in [1usize, 7, 32, 256, 700] {
            let want = naive(&st, nq, stride, depth);
            for threads in [1usize, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool");
                let got =
                    pool.install(|| ranked_all(Kernel::best(), &st, nq, stride, depth, threads));
                assert_eq!(got, want, "depth {depth}, {threads} threads");
            }
            // Every instruction set's copy, on whole and partial groups of
            // 16 columns, with and without room to read past the last.
            for kernel in Kernel::available() {
                for cols in [0..nq, 5..21, 40..48, 32..48] {
                    let got = kernel.ranked_cols(&st, cols.clone(), stride, depth);
                    let want: Vec<Vec<u32>> = {
                        let sub: Vec<f32> = st
                            .chunks_exact(stride)
                            .flat_map(|r| r[cols.clone()].to_vec())
                            .collect();
                        naive(&sub, cols.len(), cols.len(), depth)
                    };
                    assert_eq!(got, want, "{kernel:?} columns {cols:?} depth {depth}");
                }
            }
        }
    }

    #[test]
    fn probe_picks_top_per_token_with_ties_to_lower_id() {
        // K = 4 centroids, nq = 2 tokens; st is centroid-major.
        let st = [
            0.1, 0.9, //
            0.5, 0.9, //
            0.5, 0.0, //
            0.2, 0.3,
        ];
        let p = probe(Kernel::best(), &st, 2, 2, 1, None, 2);
        // token 0: best 0.5 at c1 and c2 -> c1; token 1: 0.9 at c0 and c1 -> c0.
        assert_eq!(p, vec![true, true, false, false]);
        let p = probe(Kernel::best(), &st, 2, 2, 2, Some(0.6), 2);
        // Budget 4: rank 0 gives c1, c0; rank 1 gives c2 (token 0) and c1
        // again (token 1, skipped); rank 2: token 0's c0 (taken), token 1's c3.
        // Then the threshold drops c2 (best 0.5) and c3 (best 0.3).
        assert_eq!(p, vec![true, true, false, false]);
    }

    #[test]
    fn probe_from_lists_matches_probe() {
        // Random scores with many duplicated tokens, so depth doubling runs.
        let (nq, k) = (6, 200);
        let mut st = Vec::new();
        for c in 0..k {
            for q in 0..nq {
                let base = ((c * 7919 + (q % 2) * 104_729) % 1000) as f32;
                st.push(base / 1000.0);
            }
        }
        for n_probe in [1, 3, 8, 40] {
            let want = probe(Kernel::best(), &st, nq, nq, n_probe, None, 2);
            let lists = ranked_all(Kernel::best(), &st, nq, nq, k, 2);
            assert_eq!(
                probe_from_lists(&lists, n_probe, k),
                want,
                "n_probe {n_probe}"
            );
        }
        // Short lists give at most what they hold.
        let lists = vec![vec![3u32, 9], vec![3, 500]];
        let p = probe_from_lists(&lists, 4, 10);
        let chosen: Vec<usize> = (0..10).filter(|&c| p[c]).collect();
        assert_eq!(chosen, vec![3, 9]);
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
        let p = probe(Kernel::best(), &st, 3, 3, 1, None, 2);
        let chosen: Vec<usize> = (0..k).filter(|&c| p[c]).collect();
        assert_eq!(chosen, vec![0, 1, 2]);
    }

    #[test]
    fn padded_scores_and_deep_probing_agree_with_narrow_ones() {
        let dim = 4;
        let nq = 3;
        let k = 300;
        let q: Vec<f32> = (0..nq * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..k * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        let narrow = centroid_scores(&q, &c, dim, nq, 2);
        let wide = centroid_scores(&q, &c, dim, 16, 2);
        for ci in 0..k {
            assert_eq!(
                &wide[ci * 16..ci * 16 + nq],
                &narrow[ci * nq..(ci + 1) * nq]
            );
            assert!(wide[ci * 16 + nq..(ci + 1) * 16].iter().all(|v| *v == 0.0));
        }
        // Padded and narrow score rows rank alike, and as a full sort does.
        for depth in [1, 8, 200, 257, 300] {
            let a = ranked_all(Kernel::best(), &narrow, nq, nq, depth, 2);
            let b = ranked_all(Kernel::best(), &wide, nq, 16, depth, 2);
            assert_eq!(a, b);
            for (qi, list) in a.iter().enumerate() {
                let mut all: Vec<(f32, u32)> =
                    (0..k).map(|ci| (narrow[ci * nq + qi], ci as u32)).collect();
                all.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                let want: Vec<u32> = all.iter().take(depth).map(|x| x.1).collect();
                assert_eq!(list, &want, "depth {depth} token {qi}");
            }
        }
        assert_eq!(
            probe(Kernel::best(), &narrow, nq, nq, 5, None, 2),
            probe(Kernel::best(), &wide, nq, 16, 5, None, 2)
        );
    }

    #[test]
    fn centroid_scores_match_naive() {
        let dim = 5;
        let q: Vec<f32> = (0..3 * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..7 * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        let st = centroid_scores(&q, &c, dim, 3, 2);
        for ci in 0..7 {
            for qi in 0..3 {
                let want = crate::reference::dot(&q[qi * dim..][..dim], &c[ci * dim..][..dim]);
                assert!((f64::from(st[ci * 3 + qi]) - want).abs() < 1e-5);
            }
        }
    }
}
