//! [`Snapshot`]: one committed generation of an index, searched consistently.

use crate::Error;
use ndarray::{Array2, ArrayView2};
use plaid_codec::types::{DocId, EmbeddingsView};
use plaid_search::{
    CodesView, Hits, IvfView, SearchParams, Searcher, SegmentParts, SegmentView, StageProfile,
};
use plaid_storage::layout::{self, OpenedIndex, StoredCodes, StoredIvf};
use plaid_storage::manifest::Manifest;
use std::path::Path;

/// One committed generation of an index: what a search sees.
///
/// A snapshot never changes. [`crate::Index`] hands out the current one as
/// an `Arc` ([`crate::Index::snapshot`]); a commit swaps in a new one while
/// searches on the old one finish undisturbed. The per-token arrays (codes,
/// residuals, inverted lists) are memory-mapped unless the index was opened
/// in memory, and plaid never modifies a committed file, so the maps stay
/// valid after later commits.
#[derive(Debug)]
pub struct Snapshot {
    inner: OpenedIndex,
    /// Per segment: `None` when every document is live, else a bitmap of
    /// live local documents (bit `i % 64` of word `i / 64`).
    live: Vec<Option<Vec<u64>>>,
    live_tokens: u64,
}

impl Snapshot {
    /// Opens the generation committed at `dir` now: per-token arrays
    /// memory-mapped, or read into memory when `in_memory`. Checks every
    /// segment's lengths and offsets once.
    ///
    /// Arrays that `previous` derived at open for segments that did not
    /// change (format 3's unpacked codes and inverted lists) are shared, not
    /// rebuilt, so reopening after a commit costs what the commit changed.
    pub(crate) fn open(
        dir: &Path,
        in_memory: bool,
        previous: Option<&Snapshot>,
    ) -> Result<Self, Error> {
        let prev = previous.map(|p| &p.inner);
        let inner = if in_memory {
            layout::open_reusing(dir, &layout::load_owned, prev)?
        } else {
            plaid_storage::mmap::open_index_reusing(dir, prev)?
        };
        let mut live = Vec::with_capacity(inner.segments.len());
        let mut live_tokens = 0u64;
        for s in &inner.segments {
            let n = s.doc_ids().len();
            let offs = s.doc_offsets();
            live_tokens += offs.last().copied().unwrap_or(0);
            if s.deleted().is_empty() {
                live.push(None);
                continue;
            }
            let mut bits = vec![u64::MAX; n.div_ceil(64)];
            if !n.is_multiple_of(64)
                && let Some(last) = bits.last_mut()
            {
                *last = (1u64 << (n % 64)) - 1;
            }
            for &d in s.deleted() {
                let d = d as usize;
                // Tombstones were checked to be below num_docs at open.
                if let (Some(w), Some(&a), Some(&b)) =
                    (bits.get_mut(d / 64), offs.get(d), offs.get(d + 1))
                {
                    *w &= !(1u64 << (d % 64));
                    live_tokens -= b - a;
                }
            }
            live.push(Some(bits));
        }
        let snap = Self {
            inner,
            live,
            live_tokens,
        };
        snap.searcher()?;
        Ok(snap)
    }

    /// The manifest of this generation.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The commit counter of this generation.
    pub fn generation(&self) -> u64 {
        self.inner.manifest.generation
    }

    /// The opened segments, in manifest order.
    pub(crate) fn segments(&self) -> &[layout::OpenedSegment] {
        &self.inner.segments
    }

    /// Whether local document `local` of segment `si` is live.
    pub(crate) fn is_live(&self, si: usize, local: usize) -> bool {
        match self.live.get(si) {
            Some(Some(bits)) => bits
                .get(local / 64)
                .is_some_and(|w| (w >> (local % 64)) & 1 == 1),
            Some(None) => true,
            None => false,
        }
    }

    /// Where document `id` is stored: its segment's position and local
    /// index, live or not.
    pub(crate) fn locate(&self, id: u32) -> Option<(usize, usize)> {
        self.inner
            .segments
            .iter()
            .enumerate()
            .find_map(|(si, s)| s.doc_ids().binary_search(&id).ok().map(|l| (si, l)))
    }

    /// A searcher over the current segments.
    ///
    /// # Errors
    /// When a segment's arrays are inconsistent.
    pub fn searcher(&self) -> Result<Searcher<'_>, Error> {
        let cb = &self.inner.codebook;
        let k = cb.num_centroids();
        let packed_len = cb.nbits().packed_len(cb.dim());
        let mut views = Vec::with_capacity(self.inner.segments.len());
        for (i, s) in self.inner.segments.iter().enumerate() {
            let codes = match s.codes()? {
                StoredCodes::U16(c) => CodesView::U16(c),
                StoredCodes::U32(c) => CodesView::U32(c),
            };
            let parts = SegmentParts {
                doc_ids: s.doc_ids(),
                doc_offsets: s.doc_offsets(),
                codes,
                residuals: s.residuals()?,
                ivf_offsets: s.ivf_offsets(),
                ivf: match s.ivf()? {
                    StoredIvf::U16(v) => IvfView::U16(v),
                    StoredIvf::U32(v) => IvfView::U32(v),
                },
                live: self.live.get(i).and_then(|l| l.as_deref()),
            };
            views.push(SegmentView::try_new(parts, k, packed_len, i)?);
        }
        Ok(Searcher::new(cb, views))
    }

    fn view<'q>(
        &self,
        query: &'q ArrayView2<'_, f32>,
    ) -> Result<(std::borrow::Cow<'q, [f32]>, usize), Error> {
        let dim = query.ncols();
        let data = match query.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(query.iter().copied().collect()),
        };
        Ok((data, dim))
    }

    /// The top `params.k` documents for `query` (`[tokens, dim]`).
    ///
    /// # Errors
    /// An empty query, a wrong dimension, non-finite values, `k = 0`, other
    /// bad parameters, or a damaged index.
    pub fn search(&self, query: ArrayView2<'_, f32>, params: &SearchParams) -> Result<Hits, Error> {
        let (data, dim) = self.view(&query)?;
        let q = query_view(&data, dim)?;
        Ok(self.searcher()?.search(q, params)?)
    }

    /// [`Snapshot::search`], also returning the time spent in each stage.
    ///
    /// # Errors
    /// As [`Snapshot::search`].
    pub fn search_profiled(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
    ) -> Result<(Hits, StageProfile), Error> {
        let (data, dim) = self.view(&query)?;
        let q = query_view(&data, dim)?;
        Ok(self.searcher()?.search_profiled(q, params)?)
    }

    /// [`Snapshot::search`] restricted to the documents in `ids`.
    ///
    /// # Errors
    /// As [`Snapshot::search`].
    pub fn search_within(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
        ids: &[DocId],
    ) -> Result<Hits, Error> {
        let (data, dim) = self.view(&query)?;
        let q = query_view(&data, dim)?;
        Ok(self.searcher()?.search_within(q, params, ids)?)
    }

    /// Searches many queries in parallel on the current rayon pool.
    ///
    /// # Errors
    /// The first error of any query.
    pub fn search_batch(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<Vec<Hits>, Error> {
        let owned: Vec<(std::borrow::Cow<'_, [f32]>, usize)> = queries
            .iter()
            .map(|q| self.view(q))
            .collect::<Result<_, _>>()?;
        let views: Vec<EmbeddingsView<'_>> = owned
            .iter()
            .map(|(d, dim)| query_view(d, *dim))
            .collect::<Result<_, _>>()?;
        Ok(self.searcher()?.search_batch(&views, params)?)
    }

    /// Exact MaxSim against every document's decompressed vectors: the
    /// quality ceiling of this index.
    ///
    /// # Errors
    /// As [`Snapshot::search`].
    pub fn exhaustive(&self, query: ArrayView2<'_, f32>, k: usize) -> Result<Hits, Error> {
        let (data, dim) = self.view(&query)?;
        let q = query_view(&data, dim)?;
        Ok(self.searcher()?.exhaustive(q, k)?)
    }

    /// The decompressed vectors of each document in `ids`, `[tokens, dim]` each.
    ///
    /// # Errors
    /// [`Error::UnknownDoc`] for an id the index does not hold.
    pub fn reconstruct(&self, ids: &[DocId]) -> Result<Vec<Array2<f32>>, Error> {
        let cb = &self.inner.codebook;
        let dim = cb.dim();
        let packed_len = cb.nbits().packed_len(dim);
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let (si, local) = self
                .locate(id.as_u32())
                .filter(|&(si, l)| self.is_live(si, l))
                .ok_or(Error::UnknownDoc { id: id.as_u32() })?;
            let seg = &self.inner.segments[si];
            let offs = seg.doc_offsets();
            let (start, end) = (offs[local] as usize, offs[local + 1] as usize);
            // Codebook::decompress does the per-token work; it only needs
            // the codes widened to u32.
            let codes: Vec<u32> = match seg.codes()? {
                StoredCodes::U16(c) => c[start..end].iter().map(|&v| u32::from(v)).collect(),
                StoredCodes::U32(c) => c[start..end].to_vec(),
            };
            let residuals = &seg.residuals()?[start * packed_len..end * packed_len];
            let flat = cb.decompress(&codes, residuals)?;
            let found = flat.len();
            let m = Array2::from_shape_vec((end - start, dim), flat).map_err(|_| {
                Error::Search(plaid_search::Error::SegmentShape {
                    segment: si,
                    what: "reconstructed document",
                    expected: (end - start) * dim,
                    found,
                })
            })?;
            out.push(m);
        }
        Ok(out)
    }

    /// Every live document id, ascending.
    pub fn doc_ids(&self) -> Vec<DocId> {
        let mut ids: Vec<DocId> = self
            .inner
            .segments
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                s.doc_ids()
                    .iter()
                    .enumerate()
                    .filter(move |&(l, _)| self.is_live(si, l))
                    .map(|(_, &d)| DocId::new(d))
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Number of live documents.
    pub fn num_docs(&self) -> usize {
        self.inner.manifest.num_docs() as usize
    }

    /// Number of tokens of the live documents.
    pub fn num_tokens(&self) -> usize {
        self.live_tokens as usize
    }

    /// Number of deleted documents whose data is still stored (compaction
    /// reclaims it).
    pub fn num_deleted(&self) -> usize {
        self.inner.manifest.num_deleted() as usize
    }

    /// Number of tokens stored, deleted documents' included.
    pub fn stored_tokens(&self) -> usize {
        self.inner.manifest.num_tokens() as usize
    }

    /// Number of centroids.
    pub fn num_centroids(&self) -> usize {
        self.inner.codebook.num_centroids()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.inner.codebook.dim()
    }

    /// Residual bits per dimension.
    pub fn nbits(&self) -> u8 {
        self.inner.codebook.nbits().bits()
    }

    /// The codebook (centroids and residual quantiser).
    pub fn codebook(&self) -> &plaid_codec::Codebook {
        &self.inner.codebook
    }

    /// The directory the index was opened from.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Total bytes of the files the manifest lists, plus the manifest.
    pub fn index_bytes(&self) -> u64 {
        self.inner
            .manifest
            .files
            .values()
            .map(|f| f.len_bytes)
            .sum()
    }
}

fn query_view(data: &[f32], dim: usize) -> Result<EmbeddingsView<'_>, Error> {
    if data.is_empty() {
        return Err(Error::Search(plaid_search::Error::EmptyQuery));
    }
    EmbeddingsView::try_new(data, dim).map_err(|_| {
        Error::Search(plaid_search::Error::QueryDim {
            expected: dim,
            found: 0,
        })
    })
}
