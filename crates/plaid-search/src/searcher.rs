//! The PLAID pipeline over a list of segments that share one codebook.

use crate::centroids::{centroid_scores, probe};
use crate::kernels::Kernel;
use crate::reference::rank_order;
use crate::view::SegmentView;
use crate::{Error, SearchParams};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use plaid_codec::Codebook;
use plaid_codec::types::{DocId, EmbeddingsView};
use rayon::prelude::*;

/// The top documents of one query, best first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hits {
    /// Document ids, best first.
    pub ids: Vec<DocId>,
    /// Their MaxSim scores over the decompressed vectors.
    pub scores: Vec<f32>,
}

/// Which plan [`Searcher::search_filtered`] chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterPlan {
    /// Every allowed live document was scored (no more of them than probed candidates).
    Subset {
        /// Allowed live documents.
        allowed: usize,
    },
    /// Probed as usual, then kept only the allowed candidates.
    Probe {
        /// Probed candidates before filtering.
        candidates: usize,
    },
}

/// A document the pipeline is considering: where it lives and its score so far.
#[derive(Clone, Copy, Debug)]
struct Cand {
    score: f32,
    id: u32,
    segment: u32,
    local: u32,
}

/// Tokens per exact-scoring group: large enough for an efficient GEMM, small
/// enough that the group's decompressed vectors (`tokens × dim` floats) and
/// scores stay in L2 cache.
const EXACT_GROUP_TOKENS: usize = 1024;

/// Reused buffers of the exact stage.
struct ExactScratch {
    x: Vec<f32>,
    scores: Vec<f32>,
    acc: Vec<f32>,
}

impl Cand {
    /// Segment-local document `local` of segment `si`, not yet scored.
    fn unscored(seg: &SegmentView<'_>, si: usize, local: usize) -> Self {
        Self {
            score: 0.0,
            id: seg.doc_ids[local],
            segment: si as u32,
            local: local as u32,
        }
    }
}

/// Minimum items per rayon task in the per-document stages, so that small
/// searches stay on one thread.
const PAR_MIN_DOCS: usize = 64;

/// Runs searches over borrowed segments. Cheap to build; holds no per-query
/// state, so one searcher serves many threads.
#[derive(Debug)]
pub struct Searcher<'a> {
    codebook: &'a Codebook,
    segments: Vec<SegmentView<'a>>,
    kernel: Kernel,
}

impl<'a> Searcher<'a> {
    /// A searcher over `segments`, all encoded with `codebook`, using the best
    /// kernel of this CPU.
    pub fn new(codebook: &'a Codebook, segments: Vec<SegmentView<'a>>) -> Self {
        Self {
            codebook,
            segments,
            kernel: Kernel::best(),
        }
    }

    /// Uses `kernel` for the float work. Tests and benches use this to compare
    /// implementations; a kernel the CPU lacks falls back to scalar code.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Number of live documents over all segments.
    pub fn num_live_docs(&self) -> usize {
        self.segments
            .iter()
            .map(|s| (0..s.num_docs()).filter(|&i| s.is_live(i)).count())
            .sum()
    }

    fn check_query(&self, query: &EmbeddingsView<'_>) -> Result<(), Error> {
        if query.is_empty() {
            return Err(Error::EmptyQuery);
        }
        if query.dim() != self.codebook.dim() {
            return Err(Error::QueryDim {
                expected: self.codebook.dim(),
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

    /// The top `params.k` live documents for `query` by the PLAID pipeline:
    /// centroid scores, `n_probe` centroids per query token, candidates from
    /// the inverted lists, approximate scores from centroid scores alone, and
    /// exact MaxSim over the decompressed vectors of the best
    /// `params.n_exact()` candidates. Ties go to the lower id.
    ///
    /// # Errors
    /// Bad queries or parameters ([`Error::EmptyQuery`], [`Error::QueryDim`],
    /// [`Error::NonFiniteQuery`], [`Error::ZeroK`], [`Error::BadParam`]) and
    /// damaged segments ([`Error::CodeOutOfRange`], [`Error::IvfOutOfRange`]).
    pub fn search(&self, query: EmbeddingsView<'_>, params: &SearchParams) -> Result<Hits, Error> {
        self.run(query, params, None)
    }

    /// Like [`Searcher::search`], restricted to the documents in `allowed`
    /// (unknown or deleted ids are ignored). Every allowed document gets an
    /// approximate score, so a selective subset loses no recall to probing.
    ///
    /// # Errors
    /// As [`Searcher::search`].
    pub fn search_within(
        &self,
        query: EmbeddingsView<'_>,
        params: &SearchParams,
        allowed: &[DocId],
    ) -> Result<Hits, Error> {
        self.run(query, params, Some(allowed))
    }

    /// [`Searcher::search`] restricted to the documents in `allowed` (unknown
    /// or deleted ids are ignored), choosing between two plans by cost.
    ///
    /// Both plans give every document they consider an approximate score,
    /// so the cost is the number of documents considered. After the usual
    /// probing, let `C` be the probed candidates and `A` the allowed set:
    /// - [`FilterPlan::Subset`] when `|A| ≤ |C|`: score every allowed
    ///   document, as [`Searcher::search_within`]. It considers no more
    ///   documents than an unfiltered search and loses nothing to probing,
    ///   which matters most for selective filters.
    /// - [`FilterPlan::Probe`] otherwise: keep the candidates of `C` that are
    ///   allowed. `A` is then large (a good part of the corpus), so the probed
    ///   centroids reach allowed documents as they reach any documents.
    ///
    /// # Errors
    /// As [`Searcher::search`].
    pub fn search_filtered(
        &self,
        query: EmbeddingsView<'_>,
        params: &SearchParams,
        allowed: &[DocId],
    ) -> Result<(Hits, FilterPlan), Error> {
        self.check_query(&query)?;
        params.validate()?;
        let dim = self.codebook.dim();
        let nq = query.num_rows();
        let st = centroid_scores(query.as_slice(), self.codebook.centroids(), dim);
        let probed = probe(
            &st,
            nq,
            params.effective_n_probe(),
            params.centroid_score_threshold,
        );
        let probed = self.candidates(&probed)?;
        let mut sorted: Vec<u32> = allowed.iter().map(|d| d.as_u32()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let (mut cands, plan) = if sorted.len() <= probed.len() {
            let cands = self.allowed_candidates(allowed);
            let plan = FilterPlan::Subset {
                allowed: cands.len(),
            };
            (cands, plan)
        } else {
            let candidates = probed.len();
            let cands: Vec<Cand> = probed
                .into_iter()
                .filter(|c| sorted.binary_search(&c.id).is_ok())
                .collect();
            (cands, FilterPlan::Probe { candidates })
        };
        let n_exact = params.n_exact();
        if cands.len() > n_exact {
            self.approximate(&st, nq, &mut cands)?;
            let cmp = |a: &Cand, b: &Cand| rank_order((a.score, a.id), (b.score, b.id));
            cands.select_nth_unstable_by(n_exact - 1, cmp);
            cands.truncate(n_exact);
        }
        Ok((self.exact_and_rank(query, cands, params.k)?, plan))
    }

    /// [`Searcher::search`] for many queries, in parallel on the current rayon pool.
    ///
    /// # Errors
    /// The first error of any query.
    pub fn search_batch(
        &self,
        queries: &[EmbeddingsView<'_>],
        params: &SearchParams,
    ) -> Result<Vec<Hits>, Error> {
        queries
            .par_iter()
            .map(|q| self.search(*q, params))
            .collect()
    }

    /// Exact MaxSim of `query` against every live document's decompressed
    /// vectors: the quality ceiling of the index, and a test oracle.
    ///
    /// # Errors
    /// As [`Searcher::search`].
    pub fn exhaustive(&self, query: EmbeddingsView<'_>, k: usize) -> Result<Hits, Error> {
        self.check_query(&query)?;
        if k == 0 {
            return Err(Error::ZeroK);
        }
        let mut all = Vec::new();
        for (si, seg) in self.segments.iter().enumerate() {
            for local in 0..seg.num_docs() {
                if seg.is_live(local) {
                    all.push(Cand::unscored(seg, si, local));
                }
            }
        }
        self.exact_and_rank(query, all, k)
    }

    fn run(
        &self,
        query: EmbeddingsView<'_>,
        params: &SearchParams,
        allowed: Option<&[DocId]>,
    ) -> Result<Hits, Error> {
        self.check_query(&query)?;
        params.validate()?;
        let dim = self.codebook.dim();
        let nq = query.num_rows();
        let st = centroid_scores(query.as_slice(), self.codebook.centroids(), dim);
        let mut cands = match allowed {
            None => {
                let probed = probe(
                    &st,
                    nq,
                    params.effective_n_probe(),
                    params.centroid_score_threshold,
                );
                self.candidates(&probed)?
            }
            Some(ids) => self.allowed_candidates(ids),
        };
        let n_exact = params.n_exact();
        if cands.len() > n_exact {
            self.approximate(&st, nq, &mut cands)?;
            let cmp = |a: &Cand, b: &Cand| rank_order((a.score, a.id), (b.score, b.id));
            cands.select_nth_unstable_by(n_exact - 1, cmp);
            cands.truncate(n_exact);
        }
        self.exact_and_rank(query, cands, params.k)
    }

    /// Live documents with a token in a probed centroid, per segment in
    /// ascending local order.
    fn candidates(&self, probed: &[bool]) -> Result<Vec<Cand>, Error> {
        let mut out = Vec::new();
        for (si, seg) in self.segments.iter().enumerate() {
            let n = seg.num_docs();
            let mut seen = vec![0u64; n.div_ceil(64)];
            for (c, _) in probed.iter().enumerate().filter(|(_, p)| **p) {
                for &d in seg.ivf_list(c) {
                    let word = seen.get_mut(d as usize / 64).filter(|_| (d as usize) < n);
                    match word {
                        Some(w) => *w |= 1 << (d % 64),
                        None => {
                            return Err(Error::IvfOutOfRange {
                                segment: si,
                                centroid: c,
                                doc: d,
                                num_docs: n,
                            });
                        }
                    }
                }
            }
            for (wi, &w) in seen.iter().enumerate() {
                let mut bits = w;
                while bits != 0 {
                    let local = wi * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if seg.is_live(local) {
                        out.push(Cand::unscored(seg, si, local));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Live documents among `ids`, found by binary search in each segment's
    /// ascending id list.
    fn allowed_candidates(&self, ids: &[DocId]) -> Vec<Cand> {
        let mut sorted: Vec<u32> = ids.iter().map(|d| d.as_u32()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out = Vec::new();
        for (si, seg) in self.segments.iter().enumerate() {
            for &id in &sorted {
                if let Ok(local) = seg.doc_ids.binary_search(&id) {
                    if seg.is_live(local) {
                        out.push(Cand::unscored(seg, si, local));
                    }
                }
            }
        }
        out
    }

    /// Approximate score of each candidate: `Σ_q max_t st[code(t), q]`.
    fn approximate(&self, st: &[f32], nq: usize, cands: &mut [Cand]) -> Result<(), Error> {
        let k = self.codebook.num_centroids();
        let kernel = self.kernel;
        cands
            .par_iter_mut()
            .with_min_len(PAR_MIN_DOCS * 4)
            .try_for_each_init(
                || vec![f32::NEG_INFINITY; nq],
                |acc, cand| {
                    let seg = &self.segments[cand.segment as usize];
                    acc.fill(f32::NEG_INFINITY);
                    for t in seg.token_range(cand.local as usize) {
                        let code = seg.codes.get(t).unwrap_or(u32::MAX) as usize;
                        if code >= k {
                            return Err(Error::CodeOutOfRange {
                                segment: cand.segment as usize,
                                token: t,
                                code: code as u32,
                                num_centroids: k,
                            });
                        }
                        kernel.max_into(acc, &st[code * nq..(code + 1) * nq]);
                    }
                    cand.score = acc.iter().sum();
                    Ok(())
                },
            )
    }

    /// Exact MaxSim of one group of candidates (see [`Self::exact_and_rank`]).
    fn exact_group(
        &self,
        q: &[f32],
        nq: usize,
        dim: usize,
        kernel: Kernel,
        scratch: &mut ExactScratch,
        group: &mut [Cand],
    ) -> Result<(), Error> {
        let total: usize = group
            .iter()
            .map(|c| {
                self.segments[c.segment as usize]
                    .token_range(c.local as usize)
                    .len()
            })
            .sum();
        scratch.x.resize(total * dim, 0.0);
        let mut rows = scratch.x.chunks_exact_mut(dim);
        for cand in group.iter() {
            let seg = &self.segments[cand.segment as usize];
            for t in seg.token_range(cand.local as usize) {
                let code = seg.codes.get(t).unwrap_or(u32::MAX);
                let Some(row) = rows.next() else {
                    unreachable!("rows were sized to the group's token count");
                };
                self.codebook
                    .decompress_into(code, seg.residual(t), row)
                    .map_err(|e| match e {
                        plaid_codec::Error::CodeOutOfRange { .. } => Error::CodeOutOfRange {
                            segment: cand.segment as usize,
                            token: t,
                            code,
                            num_centroids: self.codebook.num_centroids(),
                        },
                        other => Error::Codec(other),
                    })?;
            }
        }
        // scores[t * nq + j] = x_t · q_j
        scratch.scores.resize(total * nq, 0.0);
        if total > 0 {
            let xm = MatRef::from_row_major_slice(&scratch.x, total, dim);
            let qm = MatRef::from_row_major_slice(q, nq, dim);
            let dst = MatMut::from_row_major_slice_mut(&mut scratch.scores, total, nq);
            matmul(dst, Accum::Replace, xm, qm.transpose(), 1.0f32, Par::Seq);
        }
        let mut row = 0usize;
        for cand in group.iter_mut() {
            let n = self.segments[cand.segment as usize]
                .token_range(cand.local as usize)
                .len();
            scratch.acc.fill(f32::NEG_INFINITY);
            kernel.max_rows_into(&mut scratch.acc, &scratch.scores[row * nq..(row + n) * nq]);
            row += n;
            cand.score = if n == 0 {
                0.0
            } else {
                scratch.acc.iter().sum()
            };
        }
        Ok(())
    }

    /// Exact MaxSim of each candidate over its decompressed tokens, then the
    /// top `k` by [`rank_order`].
    ///
    /// Candidates are scored in groups of about [`EXACT_GROUP_TOKENS`]
    /// tokens: the group's tokens are decompressed into one matrix `X` and
    /// `X·Qᵀ` is one GEMM, so the multiply runs at GEMM speed instead of one
    /// dot product per (query token, document token) pair. Each document's
    /// score depends only on its own rows, whatever group it lands in.
    fn exact_and_rank(
        &self,
        query: EmbeddingsView<'_>,
        mut cands: Vec<Cand>,
        k: usize,
    ) -> Result<Hits, Error> {
        let dim = self.codebook.dim();
        let nq = query.num_rows();
        let kernel = self.kernel;
        let q = query.as_slice();
        // Split the candidates into groups of roughly equal token counts.
        let mut bounds = vec![0usize];
        let mut tokens = 0usize;
        for (i, c) in cands.iter().enumerate() {
            tokens += self.segments[c.segment as usize]
                .token_range(c.local as usize)
                .len();
            if tokens >= EXACT_GROUP_TOKENS {
                bounds.push(i + 1);
                tokens = 0;
            }
        }
        if *bounds.last().unwrap_or(&0) != cands.len() {
            bounds.push(cands.len());
        }
        let mut groups: Vec<&mut [Cand]> = Vec::with_capacity(bounds.len());
        let mut rest: &mut [Cand] = &mut cands;
        for w in bounds.windows(2) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            groups.push(head);
            rest = tail;
        }
        groups.into_par_iter().try_for_each_init(
            || ExactScratch {
                x: Vec::new(),
                scores: Vec::new(),
                acc: vec![0.0f32; nq],
            },
            |scratch, group| self.exact_group(q, nq, dim, kernel, scratch, group),
        )?;
        let cmp = |a: &Cand, b: &Cand| rank_order((a.score, a.id), (b.score, b.id));
        if cands.len() > k {
            cands.select_nth_unstable_by(k - 1, cmp);
            cands.truncate(k);
        }
        cands.sort_unstable_by(cmp);
        Ok(Hits {
            ids: cands.iter().map(|c| DocId::new(c.id)).collect(),
            scores: cands.iter().map(|c| c.score).collect(),
        })
    }
}
