//! [`Index`]: create, open, search and change an index directory.

use crate::build::{Progress, Stage, build_segment};
use crate::snapshot::Snapshot;
use crate::{Documents, Error, IndexConfig};
use ndarray::{Array2, ArrayView2};
use plaid_codec::types::DocId;
use plaid_search::{Hits, SearchParams, StageProfile};
use plaid_storage::layout;
use plaid_storage::live::{WriteLock, remove_unreferenced};
use plaid_storage::verify::VerifyReport;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

/// When writes compact segments on their own (see [`Index::compact`]).
///
/// After every [`Index::add`] and [`Index::delete`], in the same commit:
/// - a segment of which at least `max_dead_fraction` of the documents are
///   deleted is rewritten without them;
/// - while there are more than `max_segments` segments, the two neighbouring
///   segments (in id order) with the fewest live documents together are
///   merged into one.
///
/// A segment whose documents are all deleted is always dropped. Rewriting
/// copies codes and residuals; it never re-encodes a vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactionPolicy {
    /// Fraction of deleted documents that triggers a rewrite (default 0.25).
    pub max_dead_fraction: f64,
    /// Segment count above which neighbours are merged (default 8).
    pub max_segments: usize,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            max_dead_fraction: 0.25,
            max_segments: 8,
        }
    }
}

/// An open plaid index.
///
/// Reads go to the current [`Snapshot`], one committed generation; a search
/// takes the snapshot once, so it sees one consistent state even while a
/// writer commits. [`Index`] is `Send + Sync`: share it between threads with
/// an `Arc` (or by reference), search from any number of them and write from
/// any one.
///
/// Writes ([`Index::add`], [`Index::delete`], [`Index::compact`]) are atomic
/// commits: new files first, then the manifest is replaced. The first write
/// through a handle takes the directory's write lock and keeps it until the
/// handle is dropped; a second handle, in this process or another, gets
/// [`Error::Storage`] with `LayoutFault::Locked` from its first write.
/// Writes through one handle are serialised.
///
/// Commits made by another process become visible to this handle after
/// [`Index::reload`]; nothing is reloaded automatically.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    in_memory: bool,
    current: RwLock<Arc<Snapshot>>,
    writer: Mutex<Option<WriteLock>>,
    policy: CompactionPolicy,
    grow_codebook: bool,
}

/// How many times opening retries when a concurrent commit removed a file
/// between reading the manifest and opening the file.
const OPEN_ATTEMPTS: usize = 8;

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
        Self::create_staged(docs, dir.as_ref(), config, progress, &mut |_, _| Ok(()))
    }

    /// [`Index::create_with_progress`], calling `extra` with the staging
    /// directory and its manifest before the new index is renamed into
    /// place (see [`layout::create_with`]): what `extra` writes there
    /// appears together with the index or not at all.
    pub(crate) fn create_staged(
        docs: Documents<'_>,
        dir: &Path,
        config: &IndexConfig,
        progress: &mut dyn FnMut(Progress),
        extra: &mut dyn FnMut(&Path, &plaid_storage::manifest::Manifest) -> Result<(), Error>,
    ) -> Result<Self, Error> {
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
        layout::create_with(dir, &codebook, &segment, extra)?;
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

    /// Adds `docs` to the index at `dir`, creating the index (with `config`)
    /// when `dir` holds none yet. Returns the index and the new documents'
    /// ids. `config` is only used to create; an existing index keeps its
    /// codebook.
    ///
    /// # Errors
    /// As [`Index::create`] or [`Index::add`].
    pub fn update_or_create(
        dir: impl AsRef<Path>,
        docs: Documents<'_>,
        config: &IndexConfig,
    ) -> Result<(Self, Vec<DocId>), Error> {
        let dir = dir.as_ref();
        if dir.join(plaid_storage::manifest::MANIFEST_FILE).exists() {
            let index = Self::open(dir)?;
            let ids = index.add(docs)?;
            Ok((index, ids))
        } else {
            let index = Self::create(docs, dir, config)?;
            let ids = index.doc_ids();
            Ok((index, ids))
        }
    }

    /// Opens the index at `dir`, memory-mapping the per-token arrays.
    ///
    /// plaid never modifies a committed file in place, so the maps stay valid
    /// while other plaid handles commit; changing the index's files with other
    /// tools while it is open is not supported (see ARCHITECTURE.md).
    /// Opening never writes.
    ///
    /// # Errors
    /// A missing or damaged manifest, files of the wrong length, shape or
    /// dtype, or IO failures.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_mode(dir.as_ref(), false)
    }

    /// Opens the index at `dir`, reading every array into memory.
    ///
    /// # Errors
    /// As [`Index::open`].
    pub fn open_in_memory(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_mode(dir.as_ref(), true)
    }

    fn open_mode(dir: &Path, in_memory: bool) -> Result<Self, Error> {
        let snap = open_snapshot(dir, in_memory, None)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            in_memory,
            current: RwLock::new(Arc::new(snap)),
            writer: Mutex::new(None),
            policy: CompactionPolicy::default(),
            grow_codebook: true,
        })
    }

    /// Uses `policy` for the automatic compaction after each write.
    pub fn with_compaction_policy(mut self, policy: CompactionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Whether [`Index::add`] appends centroids for added tokens that lie
    /// outside the codebook's outlier radius (default `true`; see
    /// `docs/format.md`, "Codebook growth").
    pub fn with_codebook_growth(mut self, grow: bool) -> Self {
        self.grow_codebook = grow;
        self
    }

    /// Whether adds grow the codebook.
    pub fn grows_codebook(&self) -> bool {
        self.grow_codebook
    }

    /// The automatic compaction policy in use.
    pub fn compaction_policy(&self) -> CompactionPolicy {
        self.policy
    }

    /// The current committed generation. Cheap: clones an `Arc`. Hold it to
    /// run several reads against one state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            // A panic elsewhere cannot leave the Arc half-written.
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    pub(crate) fn install(&self, snap: Arc<Snapshot>) {
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(p) => *p.into_inner() = snap,
        }
    }

    /// Reads the manifest again and, when another process committed since
    /// this handle last looked, switches to the new generation. Searches in
    /// flight finish on the old one. Returns whether the generation changed.
    ///
    /// # Errors
    /// A damaged new generation or IO failures; the handle then keeps its
    /// current snapshot.
    pub fn reload(&self) -> Result<bool, Error> {
        let generation = layout::read_manifest(&self.dir)?.generation;
        if generation == self.snapshot().generation() {
            return Ok(false);
        }
        let snap = open_snapshot(&self.dir, self.in_memory, Some(&self.snapshot()))?;
        self.install(Arc::new(snap));
        Ok(true)
    }

    /// Takes this handle's writer: the directory's write lock (on first use,
    /// when files left by interrupted commits are also removed). Every write
    /// then starts from the committed manifest: the handle reloads if it is
    /// behind (commits made before it held the lock, or a commit whose new
    /// generation it failed to open).
    ///
    /// Then, when the index has metadata that does not follow the committed
    /// manifest (an interrupted write), repairs it (see [`crate::metadata`])
    /// before anything else is written.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Option<WriteLock>>, Error> {
        let guard = self.lock_writer()?;
        self.repair_stale_metadata()?;
        Ok(guard)
    }

    /// [`Index::writer`] without the metadata repair.
    pub(crate) fn lock_writer(&self) -> Result<MutexGuard<'_, Option<WriteLock>>, Error> {
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            let lock = WriteLock::acquire(&self.dir)?;
            self.reload()?;
            remove_unreferenced(&self.dir, self.snapshot().manifest(), &lock)?;
            *guard = Some(lock);
        } else {
            self.reload()?;
        }
        Ok(guard)
    }

    /// Opens the generation just committed and makes it current.
    pub(crate) fn publish_current(&self) -> Result<Arc<Snapshot>, Error> {
        let snap = Arc::new(open_snapshot(
            &self.dir,
            self.in_memory,
            Some(&self.snapshot()),
        )?);
        self.install(Arc::clone(&snap));
        Ok(snap)
    }

    /// Checks every invariant of the index's files (see
    /// [`plaid_storage::verify::verify`]); reads every byte.
    ///
    /// # Errors
    /// The first violation found, naming the file.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        Ok(plaid_storage::verify::verify(&self.dir)?)
    }

    /// The top `params.k` live documents for `query` (`[tokens, dim]`).
    ///
    /// # Errors
    /// An empty query, a wrong dimension, non-finite values, `k = 0`, other
    /// bad parameters, or a damaged index.
    pub fn search(&self, query: ArrayView2<'_, f32>, params: &SearchParams) -> Result<Hits, Error> {
        self.snapshot().search(query, params)
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
        self.snapshot().search_profiled(query, params)
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
        self.snapshot().search_within(query, params, ids)
    }

    /// Searches many queries in parallel on the current rayon pool, all
    /// against one snapshot.
    ///
    /// # Errors
    /// The first error of any query.
    pub fn search_batch(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<Vec<Hits>, Error> {
        self.snapshot().search_batch(queries, params)
    }

    /// Exact MaxSim against every live document's decompressed vectors: the
    /// quality ceiling of this index.
    ///
    /// # Errors
    /// As [`Index::search`].
    pub fn exhaustive(&self, query: ArrayView2<'_, f32>, k: usize) -> Result<Hits, Error> {
        self.snapshot().exhaustive(query, k)
    }

    /// The decompressed vectors of each document in `ids`, `[tokens, dim]` each.
    ///
    /// # Errors
    /// [`Error::UnknownDoc`] for an id the index does not hold (or deleted).
    pub fn reconstruct(&self, ids: &[DocId]) -> Result<Vec<Array2<f32>>, Error> {
        self.snapshot().reconstruct(ids)
    }

    /// Every live document id, ascending.
    pub fn doc_ids(&self) -> Vec<DocId> {
        self.snapshot().doc_ids()
    }

    /// The manifest generation of the current snapshot (1 for a new index,
    /// +1 on every commit).
    pub fn generation(&self) -> u64 {
        self.snapshot().generation()
    }

    /// Number of live documents.
    pub fn num_docs(&self) -> usize {
        self.snapshot().num_docs()
    }

    /// Number of tokens of the live documents.
    pub fn num_tokens(&self) -> usize {
        self.snapshot().num_tokens()
    }

    /// Number of centroids.
    pub fn num_centroids(&self) -> usize {
        self.snapshot().num_centroids()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.snapshot().dim()
    }

    /// Residual bits per dimension.
    pub fn nbits(&self) -> u8 {
        self.snapshot().nbits()
    }

    /// The directory the index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total bytes of the files the current manifest lists.
    pub fn index_bytes(&self) -> u64 {
        self.snapshot().index_bytes()
    }
}

/// Opens the generation committed at `dir`, retrying when a concurrent
/// writer replaced the manifest (and removed files it no longer lists)
/// between our reading the manifest and opening a file.
fn open_snapshot(
    dir: &Path,
    in_memory: bool,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, Error> {
    let mut attempt = 0;
    loop {
        let before = layout::read_manifest(dir)?.generation;
        match Snapshot::open(dir, in_memory, previous) {
            Ok(s) => return Ok(s),
            Err(e) => {
                attempt += 1;
                let now = layout::read_manifest(dir)?.generation;
                if now == before || attempt >= OPEN_ATTEMPTS {
                    return Err(e);
                }
            }
        }
    }
}
