//! The PLAID pipeline over a list of segments that share one codebook.

use crate::centroids::{centroid_scores, probe};
use crate::kernels::ScoreRows;
use crate::kernels::int8::{DocScratch, ExactInputs, Levels, QueryI8};
use crate::kernels::vnni::Decoder;
use crate::kernels::{Kernel, prefetch};
use crate::reference::rank_order;
use crate::view::{CodesView, SegmentView};
use crate::{Error, ExactScoring, SearchParams};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatRef, Par};
use plaid_codec::Codebook;
use plaid_codec::types::{DocId, EmbeddingsView};
use rayon::prelude::*;
use std::time::Instant;

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

/// A document by position: segment index and segment-local index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocRef {
    /// Index of the segment in the searcher.
    pub segment: u32,
    /// Segment-local document index.
    pub local: u32,
}

/// Tokens per exact-scoring group: large enough for an efficient GEMM, small
/// enough that the group's decompressed vectors (`tokens × dim` floats) and
/// scores stay in L2 cache.
const EXACT_GROUP_TOKENS: usize = 1024;

/// Reused buffers of the exact stage.
struct ExactScratch {
    /// Decoded residuals of the group's tokens, `tokens × dim`.
    r: Vec<f32>,
    /// Residual · query scores, `tokens × stride`.
    g: Vec<f32>,
    /// Reciprocal norm of each decompressed token.
    inv: Vec<f32>,
    /// Centroid code of each token.
    codes: Vec<u32>,
    acc: Vec<f32>,
}

/// Per-query state shared by the stages: the query and its centroid scores.
struct QueryScores<'q> {
    /// Query tokens, `nq × dim`.
    q: &'q [f32],
    nq: usize,
    /// Row width of `st`: `nq` rounded up to whole vectors.
    stride: usize,
    /// Centroid-major scores `st[c * stride + j] = centroid_c · query_j`
    /// (padding columns 0).
    st: Vec<f32>,
    /// Parts the per-query stages split into on the rayon pool: the pool's
    /// size for one query, 1 when a batch already keeps every thread busy
    /// (a query's tables then stay in one core's cache).
    threads: usize,
}

/// Centroid scores quantised to bytes for the approximate stage: one affine
/// map `q = round((s − lo) · 255 / (hi − lo))` for the whole query, so sums
/// of per-token maxima rank documents as the float sums do, up to rounding
/// (at most half a step, `(hi − lo) / 510`, per query token). Four times
/// smaller than the float table, so the random row reads stay in cache.
struct ScoreTable {
    values: Vec<u8>,
    /// Row width: `nq` rounded up to [`Kernel::LANES_U8`].
    stride: usize,
}

/// See [`ScoreTable`]. Padding columns are 0.
fn quantize_scores(kernel: Kernel, qs: &QueryScores<'_>) -> ScoreTable {
    let nq = qs.nq;
    let stride = nq.div_ceil(Kernel::LANES_U8).max(1) * Kernel::LANES_U8;
    let k = qs.st.len() / qs.stride.max(1);
    // Blocks of rows over the rayon pool, so one query uses every thread;
    // the same blocks for the range and the bytes. The centroid scores of
    // finite queries are finite.
    let rows = k.div_ceil(qs.threads.max(1)).max(1024);
    let (lo, hi) = qs
        .st
        .par_chunks(rows * qs.stride)
        .map(|st| {
            kernel.min_max_cols(ScoreRows {
                st,
                stride: qs.stride,
                nq,
            })
        })
        .reduce(
            || (f32::INFINITY, f32::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        );
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let mut values = vec![0u8; k * stride];
    values
        .par_chunks_mut(rows * stride)
        .zip(qs.st.par_chunks(rows * qs.stride))
        .for_each(|(out, st)| {
            let rows = ScoreRows {
                st,
                stride: qs.stride,
                nq,
            };
            kernel.quantize_u8(rows, lo, scale, out, stride)
        });
    ScoreTable { values, stride }
}

/// Time spent in each stage of one or more searches, and the work done.
///
/// Returned by [`Searcher::search_profiled`]; add profiles with `+=` to
/// summarise many queries.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageProfile {
    /// Searches summed.
    pub queries: usize,
    /// Query × centroid scores (one GEMM), seconds.
    pub centroid_scores_s: f64,
    /// Choosing the centroids to probe, seconds.
    pub probe_s: f64,
    /// Collecting candidate documents from the inverted lists, seconds.
    pub candidates_s: f64,
    /// Approximate (centroid-only) scores and the cut to the exact set, seconds.
    pub approximate_s: f64,
    /// Exact MaxSim over decompressed tokens, seconds.
    pub exact_s: f64,
    /// Final top-k selection and sort, seconds.
    pub topk_s: f64,
    /// Candidate documents found by probing.
    pub candidates: usize,
    /// Documents scored exactly.
    pub exact_docs: usize,
    /// Tokens decompressed for exact scoring.
    pub exact_tokens: usize,
}

impl std::ops::AddAssign for StageProfile {
    fn add_assign(&mut self, o: Self) {
        self.queries += o.queries;
        self.centroid_scores_s += o.centroid_scores_s;
        self.probe_s += o.probe_s;
        self.candidates_s += o.candidates_s;
        self.approximate_s += o.approximate_s;
        self.exact_s += o.exact_s;
        self.topk_s += o.topk_s;
        self.candidates += o.candidates;
        self.exact_docs += o.exact_docs;
        self.exact_tokens += o.exact_tokens;
    }
}

/// Seconds since `t`, restarting `t`.
fn lap(t: &mut Instant) -> f64 {
    let now = Instant::now();
    let d = now.duration_since(*t).as_secs_f64();
    *t = now;
    d
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

/// Threads of the current rayon pool: how far one query's stages split.
fn pool_threads() -> usize {
    rayon::current_num_threads().max(1)
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
    levels: Levels,
    decoder: Decoder,
}

impl<'a> Searcher<'a> {
    /// A searcher over `segments`, all encoded with `codebook`, using the best
    /// kernel of this CPU.
    pub fn new(codebook: &'a Codebook, segments: Vec<SegmentView<'a>>) -> Self {
        let levels = Levels::new(codebook.quantizer().decode_table());
        let decoder = Decoder::new(&levels);
        Self {
            codebook,
            segments,
            kernel: Kernel::best(),
            levels,
            decoder,
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

    /// The codebook the segments are encoded with.
    pub fn codebook(&self) -> &'a Codebook {
        self.codebook
    }

    /// The segments searched, in order.
    pub fn segments(&self) -> &[SegmentView<'a>] {
        &self.segments
    }

    /// The live documents that hold a token of a centroid flagged in
    /// `probed` (stage 3 of the pipeline), per segment in ascending local
    /// order: for backends that run the other stages elsewhere.
    ///
    /// # Errors
    /// [`Error::IvfOutOfRange`] when an inverted list names a document the
    /// segment does not have.
    pub fn probed_docs(&self, probed: &[bool]) -> Result<Vec<DocRef>, Error> {
        Ok(self
            .candidates(probed)?
            .into_iter()
            .map(|c| DocRef {
                segment: c.segment,
                local: c.local,
            })
            .collect())
    }

    /// Number of live documents over all segments.
    pub fn num_live_docs(&self) -> usize {
        self.segments
            .iter()
            .map(|s| (0..s.num_docs()).filter(|&i| s.is_live(i)).count())
            .sum()
    }

    fn check_query(&self, query: &EmbeddingsView<'_>) -> Result<(), Error> {
        crate::centroids::check_query(self.codebook.dim(), query)
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
        self.run(query, params, None, pool_threads())
            .map(|(h, _)| h)
    }

    /// [`Searcher::search`], also returning the time spent in each stage.
    ///
    /// # Errors
    /// As [`Searcher::search`].
    pub fn search_profiled(
        &self,
        query: EmbeddingsView<'_>,
        params: &SearchParams,
    ) -> Result<(Hits, StageProfile), Error> {
        self.run(query, params, None, pool_threads())
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
        self.run(query, params, Some(allowed), pool_threads())
            .map(|(h, _)| h)
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
        let qs = self.query_scores(query, pool_threads());
        let probed = self.probed_candidates(&qs, params)?;
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
        self.keep_best_approximate(&qs, &mut cands, params.n_exact())?;
        let mut profile = StageProfile::default();
        let hits = self.exact_and_rank(&qs, cands, params, &mut profile)?;
        Ok((hits, plan))
    }

    /// [`Searcher::search`] for many queries, in parallel on the current rayon
    /// pool. With at least as many queries as threads, each query runs on
    /// one thread (its stages are not split further), which keeps its
    /// score tables in that core's cache; results are the same either way.
    ///
    /// # Errors
    /// The first error of any query.
    pub fn search_batch(
        &self,
        queries: &[EmbeddingsView<'_>],
        params: &SearchParams,
    ) -> Result<Vec<Hits>, Error> {
        let pool = pool_threads();
        let threads = if queries.len() >= pool { 1 } else { pool };
        queries
            .par_iter()
            .map(|q| self.run(*q, params, None, threads).map(|(h, _)| h))
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
        let qs = self.query_scores(query, pool_threads());
        let mut profile = StageProfile::default();
        // The ceiling and oracle: float scoring, the closest to the vectors.
        let params = SearchParams::with_k(k).exact_scoring(ExactScoring::Float);
        self.exact_and_rank(&qs, all, &params, &mut profile)
    }

    /// The query with its centroid scores.
    fn query_scores<'q>(&self, query: EmbeddingsView<'q>, threads: usize) -> QueryScores<'q> {
        let dim = self.codebook.dim();
        let nq = query.num_rows();
        let stride = crate::centroids::score_stride(nq);
        let st = centroid_scores(
            query.as_slice(),
            self.codebook.centroids(),
            dim,
            stride,
            threads,
        );
        QueryScores {
            q: query.as_slice(),
            nq,
            stride,
            st,
            threads,
        }
    }

    fn run(
        &self,
        query: EmbeddingsView<'_>,
        params: &SearchParams,
        allowed: Option<&[DocId]>,
        threads: usize,
    ) -> Result<(Hits, StageProfile), Error> {
        self.check_query(&query)?;
        params.validate()?;
        let mut profile = StageProfile {
            queries: 1,
            ..StageProfile::default()
        };
        let mut t = Instant::now();
        let qs = self.query_scores(query, threads);
        profile.centroid_scores_s = lap(&mut t);
        let mut cands = match allowed {
            None => {
                let probed = probe(
                    self.kernel,
                    &qs.st,
                    qs.nq,
                    qs.stride,
                    params.effective_n_probe(),
                    params.centroid_score_threshold,
                    qs.threads,
                );
                profile.probe_s = lap(&mut t);
                let c = self.candidates(&probed)?;
                profile.candidates_s = lap(&mut t);
                c
            }
            Some(ids) => {
                let c = self.allowed_candidates(ids);
                profile.candidates_s = lap(&mut t);
                c
            }
        };
        profile.candidates = cands.len();
        self.keep_best_approximate(&qs, &mut cands, params.n_exact())?;
        profile.approximate_s = lap(&mut t);
        let hits = self.exact_and_rank(&qs, cands, params, &mut profile)?;
        Ok((hits, profile))
    }

    /// Stage 2–3: the probed centroids' live documents.
    fn probed_candidates(
        &self,
        qs: &QueryScores<'_>,
        params: &SearchParams,
    ) -> Result<Vec<Cand>, Error> {
        let probed = probe(
            self.kernel,
            &qs.st,
            qs.nq,
            qs.stride,
            params.effective_n_probe(),
            params.centroid_score_threshold,
            qs.threads,
        );
        self.candidates(&probed)
    }

    /// Stage 4: when there are more than `n_exact` candidates, scores them
    /// approximately and keeps the best `n_exact` (ties to the lower id).
    fn keep_best_approximate(
        &self,
        qs: &QueryScores<'_>,
        cands: &mut Vec<Cand>,
        n_exact: usize,
    ) -> Result<(), Error> {
        if cands.len() > n_exact {
            self.approximate(qs, cands)?;
            let cmp = |a: &Cand, b: &Cand| rank_order((a.score, a.id), (b.score, b.id));
            cands.select_nth_unstable_by(n_exact - 1, cmp);
            cands.truncate(n_exact);
        }
        Ok(())
    }

    /// Live documents with a token in a probed centroid, per segment in
    /// ascending local order.
    fn candidates(&self, probed: &[bool]) -> Result<Vec<Cand>, Error> {
        let mut out = Vec::new();
        for (si, seg) in self.segments.iter().enumerate() {
            let n = seg.num_docs();
            let mut seen = vec![0u64; n.div_ceil(64)];
            for (c, _) in probed.iter().enumerate().filter(|(_, p)| **p) {
                let mut bad = None;
                seg.ivf_list(c).for_each(|d| {
                    match seen.get_mut(d as usize / 64).filter(|_| (d as usize) < n) {
                        Some(w) => *w |= 1 << (d % 64),
                        None => bad = bad.or(Some(d)),
                    }
                });
                if let Some(d) = bad {
                    return Err(Error::IvfOutOfRange {
                        segment: si,
                        centroid: c,
                        doc: d,
                        num_docs: n,
                    });
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
                if let Ok(local) = seg.doc_ids.binary_search(&id)
                    && seg.is_live(local)
                {
                    out.push(Cand::unscored(seg, si, local));
                }
            }
        }
        out
    }

    /// Copies the codes of candidate `cand`'s tokens into `out`, checking
    /// each against the number of centroids.
    fn doc_codes(&self, cand: &Cand, out: &mut Vec<u32>) -> Result<(), Error> {
        let k = self.codebook.num_centroids();
        let seg = &self.segments[cand.segment as usize];
        let range = seg.token_range(cand.local as usize);
        let start = out.len();
        // try_new checked that document offsets end at the number of codes.
        match seg.codes {
            CodesView::U16(c) => out.extend(c[range.clone()].iter().map(|&v| u32::from(v))),
            CodesView::U32(c) => out.extend_from_slice(&c[range.clone()]),
        }
        // One vectorisable pass for the common case; find the culprit only
        // when there is one.
        if out[start..].iter().any(|&c| c as usize >= k) {
            let (i, &code) = out[start..]
                .iter()
                .enumerate()
                .find(|(_, c)| **c as usize >= k)
                .unwrap_or((0, &0));
            return Err(Error::CodeOutOfRange {
                segment: cand.segment as usize,
                token: range.start + i,
                code,
                num_centroids: k,
            });
        }
        Ok(())
    }

    /// Approximate score of each candidate: `Σ_q max_t st[code(t), q]`.
    fn approximate(&self, qs: &QueryScores<'_>, cands: &mut [Cand]) -> Result<(), Error> {
        let kernel = self.kernel;
        let k = self.codebook.num_centroids();
        let table = quantize_scores(kernel, qs);
        let w = table.stride;
        // One chunk for a query that must stay on its thread.
        let chunk = if qs.threads > 1 {
            PAR_MIN_DOCS * 4
        } else {
            cands.len().max(1)
        };
        cands.par_chunks_mut(chunk).try_for_each_init(
            || (vec![0u8; w], Vec::new()),
            |(acc, codes), chunk| {
                for ci in 0..chunk.len() {
                    if let Some(ahead) = chunk.get(ci + 4) {
                        // Candidates are random documents: fetch the codes
                        // of one a few steps on.
                        self.prefetch_doc(ahead, 0);
                    }
                    let cand = &mut chunk[ci];
                    // Read the stored codes in place: one vectorised range
                    // check, and the culprit is looked for only on failure.
                    let seg = &self.segments[cand.segment as usize];
                    let range = seg.token_range(cand.local as usize);
                    acc.fill(0);
                    match seg.codes {
                        CodesView::U16(c) => {
                            let c = &c[range];
                            if c.iter().any(|&v| usize::from(v) >= k) {
                                return self.doc_codes(cand, codes);
                            }
                            kernel.gather_max_u8_u16(&table.values, c, acc);
                        }
                        CodesView::U32(c) => {
                            let c = &c[range];
                            if c.iter().any(|&v| v as usize >= k) {
                                return self.doc_codes(cand, codes);
                            }
                            kernel.gather_max_u8(&table.values, c, acc);
                        }
                    }
                    // Padding columns are 0 and every level is ≥ 0, so they
                    // add nothing; an empty document scores 0.
                    let sum: u32 = acc.iter().map(|&v| u32::from(v)).sum();
                    cand.score = sum as f32;
                }
                Ok(())
            },
        )
    }

    /// Exact MaxSim of one group of candidates (see [`Self::exact_and_rank`]).
    ///
    /// A decompressed token is `y = (c + r) / ‖c + r‖` for centroid `c` and
    /// decoded residual `r`, so `q·y = (q·c + q·r) / ‖c + r‖`: `q·c` is
    /// already in the centroid scores, and only the residuals are decoded
    /// and multiplied (one GEMM), never the centroids.
    fn exact_group(
        &self,
        qs: &QueryScores<'_>,
        kernel: Kernel,
        scratch: &mut ExactScratch,
        group: &mut [Cand],
    ) -> Result<(), Error> {
        let dim = self.codebook.dim();
        let w = qs.stride;
        scratch.codes.clear();
        for cand in group.iter() {
            self.doc_codes(cand, &mut scratch.codes)?;
        }
        let total = scratch.codes.len();
        scratch.r.resize(total * dim, 0.0);
        scratch.inv.resize(total, 0.0);
        let table = self.codebook.quantizer().decode_table();
        let centroids = self.codebook.centroids();
        let int8 = self.codebook.int8_centroids();
        let mut t_all = 0usize;
        for cand in group.iter() {
            let seg = &self.segments[cand.segment as usize];
            for t in seg.token_range(cand.local as usize) {
                let row = &mut scratch.r[t_all * dim..(t_all + 1) * dim];
                table.try_decode_row(seg.residual(t), row)?;
                let code = scratch.codes[t_all] as usize;
                // The int8 table is 4× smaller than the f32 one, so the
                // random row fetches mostly hit cache.
                let sq = match int8 {
                    Some(q) => kernel.sq_norm_sum_i8(
                        &q.values()[code * dim..(code + 1) * dim],
                        q.scales()[code],
                        row,
                    ),
                    None => kernel.sq_norm_sum(&centroids[code * dim..(code + 1) * dim], row),
                };
                scratch.inv[t_all] = 1.0 / sq.sqrt().max(1e-12);
                t_all += 1;
            }
        }
        // g[t * w + j] = r_t · q_j; the padding columns stay 0.
        scratch.g.clear();
        scratch.g.resize(total * w, 0.0);
        if total > 0 {
            let rm = MatRef::from_row_major_slice(&scratch.r, total, dim);
            let qm = MatRef::from_row_major_slice(qs.q, qs.nq, dim);
            let dst = crate::centroids::row_major_strided_mut(&mut scratch.g, total, qs.nq, w);
            matmul(dst, Accum::Replace, rm, qm.transpose(), 1.0f32, Par::Seq);
        }
        let mut row = 0usize;
        for cand in group.iter_mut() {
            let n = self.segments[cand.segment as usize]
                .token_range(cand.local as usize)
                .len();
            scratch.acc.clear();
            scratch.acc.resize(w, f32::NEG_INFINITY);
            kernel.combine_max(
                &qs.st,
                &scratch.codes[row..row + n],
                &scratch.g[row * w..(row + n) * w],
                &scratch.inv[row..row + n],
                &mut scratch.acc,
            );
            row += n;
            cand.score = if n == 0 {
                0.0
            } else {
                scratch.acc.iter().sum()
            };
        }
        Ok(())
    }

    /// Hints the CPU to fetch candidate `cand`'s codes and the first
    /// `residual_lines` cache lines of its residuals.
    fn prefetch_doc(&self, cand: &Cand, residual_lines: usize) {
        let seg = &self.segments[cand.segment as usize];
        let range = seg.token_range(cand.local as usize);
        match seg.codes {
            CodesView::U16(c) => prefetch(c.get(range.clone()).unwrap_or_default(), 4),
            CodesView::U32(c) => prefetch(c.get(range.clone()).unwrap_or_default(), 4),
        }
        let pl = self.levels.packed_len();
        if let Some(r) = seg.residuals.get(range.start * pl..range.end * pl) {
            prefetch(r, residual_lines);
        }
    }

    /// Integer exact MaxSim of one group of candidates ([`ExactScoring::Int8`]).
    fn exact_group_i8(
        &self,
        inp: &ExactInputs<'_>,
        nq: usize,
        codes: &mut Vec<u32>,
        scratch: &mut DocScratch,
        best: &mut Vec<f32>,
        group: &mut [Cand],
    ) -> Result<(), Error> {
        let pl = self.levels.packed_len();
        for ci in 0..group.len() {
            if let Some(next) = group.get(ci + 1) {
                // The kernel prefetches within a document; start the next
                // one's first rows and its codes now.
                self.prefetch_doc(next, 8);
            }
            let cand = &mut group[ci];
            codes.clear();
            self.doc_codes(cand, codes)?;
            let seg = &self.segments[cand.segment as usize];
            let range = seg.token_range(cand.local as usize);
            let residuals = &seg.residuals[range.start * pl..range.end * pl];
            best.clear();
            best.resize(inp.width(), f32::NEG_INFINITY);
            self.kernel
                .score_doc_i8(inp, &self.decoder, codes, residuals, scratch, best);
            cand.score = if codes.is_empty() {
                0.0
            } else {
                best[..nq].iter().sum()
            };
        }
        Ok(())
    }

    /// Exact MaxSim of each candidate over its decompressed tokens, then the
    /// top `k` by [`rank_order`].
    ///
    /// Candidates are scored in groups of about [`EXACT_GROUP_TOKENS`]
    /// tokens: the group's residuals are decoded into one matrix `R` and
    /// `R·Qᵀ` is one GEMM, so the multiply runs at GEMM speed instead of one
    /// dot product per (query token, document token) pair. Each document's
    /// score depends only on its own rows, whatever group it lands in.
    fn exact_and_rank(
        &self,
        qs: &QueryScores<'_>,
        mut cands: Vec<Cand>,
        params: &SearchParams,
        profile: &mut StageProfile,
    ) -> Result<Hits, Error> {
        let k = params.k;
        let mut t = Instant::now();
        let kernel = self.kernel;
        // Split the candidates into groups of roughly equal token counts.
        let mut bounds = vec![0usize];
        let mut tokens = 0usize;
        let mut all_tokens = 0usize;
        for (i, c) in cands.iter().enumerate() {
            let n = self.segments[c.segment as usize]
                .token_range(c.local as usize)
                .len();
            tokens += n;
            all_tokens += n;
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
        // One task for a query that must stay on its thread.
        let min_len = if qs.threads > 1 { 1 } else { usize::MAX };
        let int8 = match (params.exact_scoring, self.codebook.int8_centroids()) {
            (ExactScoring::Int8, Some(c)) => {
                let query = QueryI8::new(qs.q, self.codebook.dim(), &self.levels);
                (query.blocks * crate::kernels::int8::BLOCK == qs.stride).then_some((query, c))
            }
            _ => None,
        };
        match &int8 {
            Some((query, cents)) => {
                let inp = ExactInputs {
                    levels: &self.levels,
                    query,
                    st: &qs.st,
                    cvals: cents.values(),
                    cscales: cents.scales(),
                };
                groups
                    .into_par_iter()
                    .with_min_len(min_len)
                    .try_for_each_init(
                        || (Vec::new(), DocScratch::default(), Vec::new()),
                        |(codes, scratch, best), group| {
                            self.exact_group_i8(&inp, qs.nq, codes, scratch, best, group)
                        },
                    )?;
            }
            None => groups
                .into_par_iter()
                .with_min_len(min_len)
                .try_for_each_init(
                    || ExactScratch {
                        r: Vec::new(),
                        g: Vec::new(),
                        inv: Vec::new(),
                        codes: Vec::new(),
                        acc: Vec::new(),
                    },
                    |scratch, group| self.exact_group(qs, kernel, scratch, group),
                )?,
        }
        profile.exact_docs = cands.len();
        profile.exact_tokens = all_tokens;
        profile.exact_s = lap(&mut t);
        let cmp = |a: &Cand, b: &Cand| rank_order((a.score, a.id), (b.score, b.id));
        if cands.len() > k {
            cands.select_nth_unstable_by(k - 1, cmp);
            cands.truncate(k);
        }
        cands.sort_unstable_by(cmp);
        profile.topk_s = lap(&mut t);
        Ok(Hits {
            ids: cands.iter().map(|c| DocId::new(c.id)).collect(),
            scores: cands.iter().map(|c| c.score).collect(),
        })
    }
}
