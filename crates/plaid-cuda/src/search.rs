//! Batched PLAID search on the GPU.
//!
//! Per batch of queries: centroid scores by one f32 GEMM (cuBLAS), each
//! query token's best centroids by a warp-per-token ranking kernel, probing
//! and candidate generation on the host (the CPU's own rule and inverted
//! lists), approximate scores from the centroid scores (warp per candidate),
//! selection of the documents to score exactly on the host, exact MaxSim over
//! decompressed vectors (warp per document, query in shared memory), and the
//! final top-k on the host.
//!
//! The exact stage is the CPU's float one ([`plaid_search::ExactScoring::Float`]);
//! the CPU's default integer scoring rounds the query and the residual
//! weights to bytes, so its scores differ from these in the last digits.

use std::time::Instant;

use cudarc::driver::CudaSlice;
use plaid_codec::types::{DocId, EmbeddingsView};
use plaid_search::reference::rank_order;
use plaid_search::{CodesView, Hits, SearchParams, Searcher, probe_from_lists};
use rayon::prelude::*;

use crate::assign::check_i32;
use crate::device::Device;
use crate::encode::expanded_weights;
use crate::error::{Error, drv};
use crate::ffi::{self, ApproxArgs, ExactArgs};

/// Most query tokens a GPU search handles (one warp lane per token).
pub const MAX_QUERY_TOKENS: usize = 32;
/// Widest embeddings a GPU search handles (shared-memory budget).
pub const MAX_DIM: usize = 256;
/// Bytes of centroid scores per batch: bounds device memory.
const SCORE_BUDGET_BYTES: usize = 1 << 30;
/// Ranked-list lengths the `topd_*` kernels produce.
const DEPTHS: [usize; 4] = [32, 64, 128, 256];

/// Time spent in each stage of [`GpuIndex::search_batch_profiled`], in
/// seconds of wall time summed over the batches (each stage ends with the
/// copy that brings its results to the host, so GPU time is included).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuSearchProfile {
    /// Queries searched.
    pub queries: usize,
    /// Query upload, centroid-score GEMM and per-token ranking.
    pub centroids_s: f64,
    /// Probing and candidate generation (host).
    pub candidates_s: f64,
    /// Approximate scores (GPU) and the choice of exact documents (host).
    pub approximate_s: f64,
    /// Exact MaxSim (GPU).
    pub exact_s: f64,
    /// Final top-k (host).
    pub topk_s: f64,
    /// Candidates over all queries.
    pub candidates: usize,
    /// Documents scored exactly over all queries.
    pub exact_docs: usize,
}

/// An index's segments on the device, ready for batched search.
///
/// Built from a CPU [`Searcher`] (which keeps the inverted lists and ids on
/// the host): the centroids, every token's code and residual bytes, and the
/// document offsets are copied to the device once.
#[derive(Debug)]
pub struct GpuIndex<'a> {
    device: &'a Device,
    searcher: &'a Searcher<'a>,
    cent: CudaSlice<f32>,
    codes: CudaSlice<u32>,
    residuals: CudaSlice<u8>,
    doc_off: CudaSlice<u64>,
    weights: CudaSlice<f32>,
    /// First global document index of each segment.
    seg_base: Vec<u32>,
    /// Stable id of each global document.
    ids: Vec<u32>,
    /// Live global documents, ascending.
    live: Vec<u32>,
    k: usize,
    dim: usize,
    bits: i32,
}

/// One batch's query data on the device.
struct QueryBatch {
    q: CudaSlice<f32>,
    nq: CudaSlice<i32>,
    len: usize,
}

impl<'a> GpuIndex<'a> {
    /// Copies `searcher`'s codebook and segments to `device`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] beyond the kernels' 32-bit document indices or
    /// [`MAX_DIM`], [`Error::Search`] for a code that names no centroid,
    /// driver errors (out of device memory, say).
    pub fn new(device: &'a Device, searcher: &'a Searcher<'a>) -> Result<Self, Error> {
        let codebook = searcher.codebook();
        let (k, dim) = (codebook.num_centroids(), codebook.dim());
        if dim > MAX_DIM {
            return Err(Error::TooLarge {
                what: "embedding width",
                value: dim,
                limit: MAX_DIM,
            });
        }
        let mut codes = Vec::new();
        let mut residuals = Vec::new();
        let mut doc_off = vec![0u64];
        let (mut seg_base, mut ids, mut live) = (Vec::new(), Vec::new(), Vec::new());
        for (si, seg) in searcher.segments().iter().enumerate() {
            let base = u32::try_from(ids.len()).map_err(|_| too_many_docs(ids.len()))?;
            seg_base.push(base);
            let token_base = codes.len() as u64;
            let start = codes.len();
            match seg.codes() {
                CodesView::U16(c) => codes.extend(c.iter().map(|&v| u32::from(v))),
                CodesView::U32(c) => codes.extend_from_slice(c),
            }
            if let Some((i, &code)) = codes[start..]
                .iter()
                .enumerate()
                .find(|(_, c)| **c as usize >= k)
            {
                return Err(plaid_search::Error::CodeOutOfRange {
                    segment: si,
                    token: i,
                    code,
                    num_centroids: k,
                }
                .into());
            }
            residuals.extend_from_slice(seg.residuals());
            doc_off.extend(seg.doc_offsets()[1..].iter().map(|&o| o + token_base));
            for local in 0..seg.num_docs() {
                let g = ids.len() as u32;
                if seg.is_live(local) {
                    live.push(g);
                }
                ids.push(seg.doc_ids()[local]);
            }
        }
        if ids.len() >= u32::MAX as usize {
            return Err(too_many_docs(ids.len()));
        }
        device.bind()?;
        let s = &device.stream;
        let up_u32 =
            |v: &[u32], op| drv(op, s.clone_htod(if v.is_empty() { &[0u32][..] } else { v }));
        Ok(Self {
            device,
            searcher,
            cent: drv("upload centroids", s.clone_htod(codebook.centroids()))?,
            codes: up_u32(&codes, "upload codes")?,
            residuals: drv(
                "upload residuals",
                s.clone_htod(if residuals.is_empty() {
                    &[0u8][..]
                } else {
                    &residuals
                }),
            )?,
            doc_off: drv("upload offsets", s.clone_htod(&doc_off))?,
            weights: drv("upload weights", s.clone_htod(&expanded_weights(codebook)))?,
            seg_base,
            ids,
            live,
            k,
            dim,
            bits: i32::from(codebook.nbits().bits()),
        })
    }

    /// Number of live documents.
    pub fn num_live_docs(&self) -> usize {
        self.live.len()
    }

    /// Queries per batch: the centroid scores of a batch fill at most 1 GiB.
    fn batch_size(&self) -> usize {
        (SCORE_BUDGET_BYTES / (self.k * MAX_QUERY_TOKENS * 4)).clamp(1, 1024)
    }

    fn check_query(&self, i: usize, q: &EmbeddingsView<'_>) -> Result<(), Error> {
        if q.is_empty() {
            return Err(plaid_search::Error::EmptyQuery.into());
        }
        if q.dim() != self.dim {
            return Err(plaid_search::Error::QueryDim {
                expected: self.dim,
                found: q.dim(),
            }
            .into());
        }
        if q.num_rows() > MAX_QUERY_TOKENS {
            return Err(Error::QueryTooLong {
                query: i,
                tokens: q.num_rows(),
                max: MAX_QUERY_TOKENS,
            });
        }
        for (token, row) in q.rows().enumerate() {
            if let Some(dim) = row.iter().position(|v| !v.is_finite()) {
                return Err(plaid_search::Error::NonFiniteQuery { token, dim }.into());
            }
        }
        Ok(())
    }

    fn upload_queries(&self, queries: &[EmbeddingsView<'_>]) -> Result<QueryBatch, Error> {
        let (b, dim) = (queries.len(), self.dim);
        let mut q = vec![0.0f32; b * MAX_QUERY_TOKENS * dim];
        let mut nq = vec![0i32; b];
        for (i, query) in queries.iter().enumerate() {
            let src = query.as_slice();
            q[i * MAX_QUERY_TOKENS * dim..][..src.len()].copy_from_slice(src);
            nq[i] = query.num_rows() as i32;
        }
        let s = &self.device.stream;
        Ok(QueryBatch {
            q: drv("upload queries", s.clone_htod(&q))?,
            nq: drv("upload query lengths", s.clone_htod(&nq))?,
            len: b,
        })
    }

    /// The top `params.k` live documents of every query by the PLAID
    /// pipeline (see the module docs). Ties go to the lower id.
    ///
    /// # Errors
    /// Bad queries or parameters (as [`Searcher::search`], plus
    /// [`Error::QueryTooLong`] beyond [`MAX_QUERY_TOKENS`] tokens and
    /// [`Error::Unsupported`] for a centroid score threshold), driver and
    /// cuBLAS errors.
    pub fn search_batch(
        &self,
        queries: &[EmbeddingsView<'_>],
        params: &SearchParams,
    ) -> Result<Vec<Hits>, Error> {
        self.search_batch_profiled(queries, params).map(|(h, _)| h)
    }

    /// [`GpuIndex::search_batch`], also returning the time of each stage.
    ///
    /// # Errors
    /// As [`GpuIndex::search_batch`].
    pub fn search_batch_profiled(
        &self,
        queries: &[EmbeddingsView<'_>],
        params: &SearchParams,
    ) -> Result<(Vec<Hits>, GpuSearchProfile), Error> {
        params.validate()?;
        if params.centroid_score_threshold.is_some() {
            return Err(Error::Unsupported {
                what: "centroid_score_threshold",
            });
        }
        for (i, q) in queries.iter().enumerate() {
            self.check_query(i, q)?;
        }
        self.device.bind()?;
        let mut profile = GpuSearchProfile {
            queries: queries.len(),
            ..Default::default()
        };
        let mut out = Vec::with_capacity(queries.len());
        for batch in queries.chunks(self.batch_size()) {
            out.extend(self.search_chunk(batch, params, &mut profile)?);
        }
        Ok((out, profile))
    }

    fn search_chunk(
        &self,
        queries: &[EmbeddingsView<'_>],
        params: &SearchParams,
        profile: &mut GpuSearchProfile,
    ) -> Result<Vec<Hits>, Error> {
        let dev = self.device;
        let s = &dev.stream;
        let mut t = Instant::now();
        let qb = self.upload_queries(queries)?;
        let b = qb.len;
        let nrows = b * MAX_QUERY_TOKENS;
        let mut scores = ffi::alloc_out::<f32>(s, self.k * nrows)?;
        ffi::gemm_centroid_scores(
            &dev.blas,
            s,
            &qb.q,
            &self.cent,
            &mut scores,
            nrows,
            self.k,
            self.dim,
        )?;
        let n_probe = params.effective_n_probe();
        // Ranked lists twice as deep as the CPU's first probing depth
        // (2 · n_probe); queries whose probe budget is not met within them
        // (many near-duplicate tokens) get a second, deeper ranking, up to
        // the budget of the longest query or 256 ranks, as the CPU deepens.
        let k = self.k;
        let depth_index = |want: usize| {
            DEPTHS
                .iter()
                .position(|&d| d >= want.min(k))
                .unwrap_or(DEPTHS.len() - 1)
        };
        let rank = |which: usize| -> Result<Vec<u32>, Error> {
            let depth = DEPTHS[which];
            let mut ranked = ffi::alloc_out::<u32>(s, nrows * depth)?;
            ffi::topd(
                s,
                &dev.kernels.topd[which],
                depth,
                &mut ranked,
                &scores,
                b,
                k,
                &qb.nq,
            )?;
            drv("download ranked lists", s.clone_dtoh(&ranked))
        };
        let probe = |qi: usize, nq: usize, ranked: &[u32], depth: usize| {
            let lists: Vec<&[u32]> = (0..nq)
                .map(|tk| {
                    let l = &ranked[(qi * MAX_QUERY_TOKENS + tk) * depth..][..depth];
                    let valid = l.iter().position(|&c| c as usize >= k).unwrap_or(depth);
                    &l[..valid]
                })
                .collect();
            probe_from_lists(&lists, n_probe, k)
        };
        let first = depth_index(n_probe.saturating_mul(4));
        let ranked = rank(first)?;
        let mut probes: Vec<Vec<bool>> = queries
            .par_iter()
            .enumerate()
            .map(|(qi, q)| probe(qi, q.num_rows(), &ranked, DEPTHS[first]))
            .collect();
        let short: Vec<usize> = (0..b)
            .filter(|&qi| {
                let budget = n_probe.saturating_mul(queries[qi].num_rows()).min(k);
                let count = probes[qi].iter().filter(|&&p| p).count();
                count < budget && DEPTHS[first] < budget
            })
            .collect();
        if !short.is_empty() {
            let longest = short
                .iter()
                .map(|&qi| queries[qi].num_rows())
                .max()
                .unwrap_or(1);
            let deep = depth_index(n_probe.saturating_mul(longest));
            if deep > first {
                let ranked = rank(deep)?;
                let redo: Vec<(usize, Vec<bool>)> = short
                    .par_iter()
                    .map(|&qi| (qi, probe(qi, queries[qi].num_rows(), &ranked, DEPTHS[deep])))
                    .collect();
                for (qi, p) in redo {
                    probes[qi] = p;
                }
            }
        }
        profile.centroids_s += lap(&mut t);

        // Candidates on the host, in parallel over queries.
        let cands: Vec<Vec<u32>> = probes
            .par_iter()
            .map(|probed| {
                let docs = self.searcher.probed_docs(probed)?;
                Ok(docs
                    .iter()
                    .map(|d| self.seg_base[d.segment as usize] + d.local)
                    .collect())
            })
            .collect::<Result<_, Error>>()?;
        profile.candidates_s += lap(&mut t);
        profile.candidates += cands.iter().map(Vec::len).sum::<usize>();

        // Approximate scores for the candidates of queries with more than
        // n_exact of them (flattened per query, in parallel).
        let n_exact = params.n_exact();
        let mut off = Vec::with_capacity(cands.len() + 1);
        off.push(0usize);
        for c in &cands {
            let n = if c.len() > n_exact { c.len() } else { 0 };
            off.push(off[off.len() - 1] + n);
        }
        let total = off[cands.len()];
        let approx = if total == 0 {
            Vec::new()
        } else {
            let cand_doc: Vec<u32> = cands
                .par_iter()
                .filter(|c| c.len() > n_exact)
                .flat_map_iter(|c| c.iter().copied())
                .collect();
            let off32: Vec<u32> = off
                .iter()
                .map(|&o| u32::try_from(o).map_err(|_| too_many_docs(o)))
                .collect::<Result<_, _>>()?;
            let n_cand = check_i32("candidates", total)?;
            let cd = drv("upload candidates", s.clone_htod(&cand_doc))?;
            let co = drv("upload candidate offsets", s.clone_htod(&off32))?;
            let mut range = ffi::alloc_out::<f32>(s, 2 * b)?;
            ffi::score_range(
                s,
                &dev.kernels.score_range,
                &mut range,
                &scores,
                b,
                self.k,
                &qb.nq,
            )?;
            let mut out = ffi::alloc_out::<f32>(s, total)?;
            ffi::approx_scores(
                s,
                &dev.kernels.approx_scores,
                &mut out,
                &ApproxArgs {
                    cand_doc: &cd,
                    cand_off: &co,
                    n_queries: check_i32("queries", b)?,
                    n_cand,
                    s: &scores,
                    ld: check_i32("score rows", nrows)?,
                    codes: &self.codes,
                    doc_off: &self.doc_off,
                    nq: &qb.nq,
                    range: &range,
                },
            )?;
            drv("download approximate scores", s.clone_dtoh(&out))?
        };
        drop(scores);
        let chosen: Vec<Vec<u32>> = cands
            .into_par_iter()
            .enumerate()
            .map(|(qi, c)| {
                if c.len() <= n_exact {
                    return c;
                }
                let sc = &approx[off[qi]..off[qi + 1]];
                let mut v: Vec<(f32, u32, u32)> = c
                    .iter()
                    .zip(sc)
                    .map(|(&g, &sv)| (sv, self.ids[g as usize], g))
                    .collect();
                v.select_nth_unstable_by(n_exact - 1, |a, b| rank_order((a.0, a.1), (b.0, b.1)));
                v.truncate(n_exact);
                let mut g: Vec<u32> = v.into_iter().map(|x| x.2).collect();
                g.sort_unstable();
                g
            })
            .collect();
        profile.approximate_s += lap(&mut t);

        let exact = self.exact(&qb, &chosen)?;
        profile.exact_s += lap(&mut t);
        profile.exact_docs += chosen.iter().map(Vec::len).sum::<usize>();
        let hits = self.rank(&chosen, &exact, params.k);
        profile.topk_s += lap(&mut t);
        Ok(hits)
    }

    /// Exact MaxSim of each query's documents (`docs[q]`, global indices),
    /// flattened in the same order.
    fn exact(&self, qb: &QueryBatch, docs: &[Vec<u32>]) -> Result<Vec<f32>, Error> {
        let s = &self.device.stream;
        let mut off = Vec::with_capacity(docs.len() + 1);
        off.push(0u32);
        let mut flat = Vec::new();
        for d in docs {
            flat.extend_from_slice(d);
            let end = u32::try_from(flat.len()).map_err(|_| too_many_docs(flat.len()))?;
            off.push(end);
        }
        if flat.is_empty() {
            return Ok(Vec::new());
        }
        let max_per_query = docs.iter().map(Vec::len).max().unwrap_or(0);
        let d_docs = drv("upload exact documents", s.clone_htod(&flat))?;
        let d_off = drv("upload exact offsets", s.clone_htod(&off))?;
        let mut out = ffi::alloc_out::<f32>(s, flat.len())?;
        ffi::exact_scores(
            s,
            &self.device.kernels.exact_scores,
            &mut out,
            &ExactArgs {
                docs: &d_docs,
                off: &d_off,
                queries: qb.len,
                max_per_query,
                q: &qb.q,
                nq: &qb.nq,
                cent: &self.cent,
                codes: &self.codes,
                residuals: &self.residuals,
                doc_off: &self.doc_off,
                weights: &self.weights,
                dim: check_i32("dim", self.dim)?,
                bits: self.bits,
            },
        )?;
        drv("download exact scores", s.clone_dtoh(&out))
    }

    /// The best `k` of each query's scored documents.
    fn rank(&self, docs: &[Vec<u32>], scores: &[f32], k: usize) -> Vec<Hits> {
        let mut starts = Vec::with_capacity(docs.len());
        let mut at = 0;
        for d in docs {
            starts.push(at);
            at += d.len();
        }
        docs.par_iter()
            .zip(starts)
            .map(|(d, at)| {
                let sc = &scores[at..at + d.len()];
                let mut v: Vec<(f32, u32)> = d
                    .iter()
                    .zip(sc)
                    .map(|(&g, &s)| (s, self.ids[g as usize]))
                    .collect();
                if v.len() > k {
                    v.select_nth_unstable_by(k - 1, |a, b| rank_order(*a, *b));
                    v.truncate(k);
                }
                v.sort_by(|a, b| rank_order(*a, *b));
                Hits {
                    ids: v.iter().map(|x| DocId::new(x.1)).collect(),
                    scores: v.iter().map(|x| x.0).collect(),
                }
            })
            .collect()
    }

    /// Exact MaxSim of every query against every live document's
    /// decompressed vectors, on the GPU: the honest baseline for small
    /// corpora (its cost grows with the whole corpus per query).
    ///
    /// # Errors
    /// Bad queries ([`Error::QueryTooLong`] and those of
    /// [`Searcher::search`]), `k == 0`, driver errors.
    pub fn exhaustive_batch(
        &self,
        queries: &[EmbeddingsView<'_>],
        k: usize,
    ) -> Result<Vec<Hits>, Error> {
        if k == 0 {
            return Err(plaid_search::Error::ZeroK.into());
        }
        for (i, q) in queries.iter().enumerate() {
            self.check_query(i, q)?;
        }
        self.device.bind()?;
        // Keep the replicated document list near 64 MiB per batch.
        let per = ((1usize << 24) / self.live.len().max(1)).clamp(1, self.batch_size());
        let mut out = Vec::with_capacity(queries.len());
        for batch in queries.chunks(per) {
            let qb = self.upload_queries(batch)?;
            let docs = vec![self.live.clone(); batch.len()];
            let scores = self.exact(&qb, &docs)?;
            out.extend(self.rank(&docs, &scores, k));
        }
        Ok(out)
    }
}

fn too_many_docs(n: usize) -> Error {
    Error::TooLarge {
        what: "documents",
        value: n,
        limit: u32::MAX as usize - 1,
    }
}

fn lap(t: &mut Instant) -> f64 {
    let now = Instant::now();
    let d = now.duration_since(*t).as_secs_f64();
    *t = now;
    d
}

#[cfg(test)]
impl Device {
    /// Runs the `topd_*` kernel `which` on host scores `s` (`k × 32·queries`,
    /// centroid-major) and returns the lists (`queries × 32 × depth`).
    pub(crate) fn rank_tokens(
        &self,
        s: &[f32],
        queries: usize,
        k: usize,
        nq: &[i32],
        which: usize,
    ) -> Result<Vec<u32>, Error> {
        let depth = DEPTHS[which];
        let st = &self.stream;
        let sd = drv("upload scores", st.clone_htod(s))?;
        let nqd = drv("upload lengths", st.clone_htod(nq))?;
        let mut out = drv("alloc lists", st.alloc_zeros::<u32>(queries * 32 * depth))?;
        ffi::topd(
            st,
            &self.kernels.topd[which],
            depth,
            &mut out,
            &sd,
            queries,
            k,
            &nqd,
        )?;
        drv("download lists", st.clone_dtoh(&out))
    }
}
