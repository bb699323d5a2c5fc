//! [`Index`]: create, open and search an index directory.

use crate::build::{Progress, Stage, build_segment};
use crate::{Documents, Error, IndexConfig};
use ndarray::{Array2, ArrayView2};
use plaid_codec::types::{DocId, EmbeddingsView};
use plaid_search::{
    CodesView, Hits, IvfView, SearchParams, Searcher, SegmentParts, SegmentView, StageProfile,
};
use plaid_storage::layout::{self, OpenedIndex, StoredCodes, StoredIvf};
use std::path::Path;

/// An open plaid index.
///
/// Opening reads the manifest, the codebook and the per-document arrays; the
/// per-token arrays (codes, residuals, inverted lists) are memory-mapped, so
/// open time and memory do not grow with the number of tokens. Opening never
/// writes to the directory.
#[derive(Debug)]
pub struct Index {
    inner: OpenedIndex,
}

impl Index {
    /// Builds an index of `docs` at `dir` (which must not exist or be empty)
    /// and opens it. Documents get ids `0..N` in input order.
    ///
    /// # Errors
    /// Bad input ([`Error::NoDocuments`], [`Error::EmptyDocument`],
    /// [`Error::DimMismatch`], [`Error::NonFinite`], [`Error::LengthsMismatch`]),
    /// bad configuration, a non-empty target directory, or IO failures.
    /// Nothing is written when the input or configuration is refused.
    pub fn create(
        docs: Documents<'_>,
        dir: impl AsRef<Path>,
        config: &IndexConfig,
    ) -> Result<Self, Error> {
        Self::create_with_progress(docs, dir, config, &mut |_| {})
    }

    /// [`Index::create`], calling `progress` as the build advances.
    ///
    /// # Errors
    /// As [`Index::create`].
    pub fn create_with_progress(
        docs: Documents<'_>,
        dir: impl AsRef<Path>,
        config: &IndexConfig,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Self, Error> {
        let dir = dir.as_ref();
        config.validate()?;
        layout::check_target(dir)?;
        progress(Progress {
            stage: Stage::Reading,
            done: 0,
            total: 1,
        });
        let flat = docs.flatten(None)?;
        progress(Progress {
            stage: Stage::Reading,
            done: 1,
            total: 1,
        });
        let (codebook, segment) = build_segment(&flat, config, progress)?;
        drop(flat);
        progress(Progress {
            stage: Stage::Writing,
            done: 0,
            total: 1,
        });
        layout::create(dir, &codebook, &segment)?;
        drop(segment);
        progress(Progress {
            stage: Stage::Writing,
            done: 1,
            total: 1,
        });
        Self::open(dir)
    }

    /// Imports the next-plaid or fast-plaid index at `src` into a new index at
    /// `dir` (which must not exist or be empty) and opens it. `from` names the
    /// source format; `None` detects it. The source is only read; document `i`
    /// of the source gets id `i`. See [`plaid_storage::import`] for what is
    /// carried over and what is skipped.
    ///
    /// # Errors
    /// The errors of [`plaid_storage::import::import`] (an unknown or ambiguous
    /// layout, a damaged source, a non-empty `dir`), as [`Error::Storage`];
    /// nothing is written at `dir` when the source is refused.
    pub fn import(
        dir: impl AsRef<Path>,
        src: impl AsRef<Path>,
        from: Option<plaid_storage::import::SourceFormat>,
    ) -> Result<(Self, plaid_storage::import::ImportReport), Error> {
        let report = plaid_storage::import::import(dir.as_ref(), src.as_ref(), from)?;
        Ok((Self::open(dir)?, report))
    }

    /// Opens the index at `dir`, memory-mapping the per-token arrays.
    ///
    /// plaid never modifies a committed file in place, so the maps stay valid
    /// while other plaid handles commit; changing the index's files with other
    /// tools while it is open is not supported (see ARCHITECTURE.md).
    ///
    /// # Errors
    /// A missing or damaged manifest, files of the wrong length, shape or
    /// dtype, or IO failures.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let inner = plaid_storage::mmap::open_index(dir.as_ref())?;
        let index = Self { inner };
        // Validate every segment's lengths and offsets once.
        index.searcher()?;
        Ok(index)
    }

    /// Opens the index at `dir`, reading every array into memory.
    ///
    /// # Errors
    /// As [`Index::open`].
    pub fn open_in_memory(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let inner = layout::open_in_memory(dir.as_ref())?;
        let index = Self { inner };
        index.searcher()?;
        Ok(index)
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
                live: None,
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

    /// [`Index::search`], also returning the time spent in each stage of the
    /// pipeline (centroid scores, probing, candidates, approximate and exact
    /// scoring, top-k).
    ///
    /// # Errors
    /// As [`Index::search`].
    pub fn search_profiled(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
    ) -> Result<(Hits, StageProfile), Error> {
        let (data, dim) = self.view(&query)?;
        let q = query_view(&data, dim)?;
        Ok(self.searcher()?.search_profiled(q, params)?)
    }

    /// [`Index::search`] restricted to the documents in `ids`.
    ///
    /// # Errors
    /// As [`Index::search`].
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
    /// As [`Index::search`].
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
            let (si, seg, local) = self
                .inner
                .segments
                .iter()
                .enumerate()
                .find_map(|(si, s)| {
                    s.doc_ids()
                        .binary_search(&id.as_u32())
                        .ok()
                        .map(|l| (si, s, l))
                })
                .ok_or(Error::UnknownDoc { id: id.as_u32() })?;
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

    /// Every document id, ascending.
    pub fn doc_ids(&self) -> Vec<DocId> {
        let mut ids: Vec<DocId> = self
            .inner
            .segments
            .iter()
            .flat_map(|s| s.doc_ids().iter().map(|&d| DocId::new(d)))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The manifest generation this handle was opened at (1 for a new
    /// index, +1 on every commit).
    pub fn generation(&self) -> u64 {
        self.inner.manifest.generation
    }

    /// Number of documents.
    pub fn num_docs(&self) -> usize {
        self.inner.manifest.num_docs() as usize
    }

    /// Number of stored tokens.
    pub fn num_tokens(&self) -> usize {
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
