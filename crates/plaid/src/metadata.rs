//! Document metadata on [`Index`]: storing it, filtering by it, and
//! filtered search.
//!
//! The metadata lives in `metadata.db` ([`plaid_meta::DB_FILE`]) in the
//! index directory, one row per document id. The index manifest is the
//! source of truth for which documents exist; the database records, in the
//! same SQLite transaction as every change to its rows, the manifest
//! generation its rows follow (its *stamp*).
//!
//! # Crash consistency
//! One invariant makes every crash harmless: **when the stamp equals the
//! manifest's generation, every row belongs to a live document.** Every
//! write keeps it:
//! - [`Index::create_with_metadata`] writes `metadata.db` (stamped with
//!   generation 1) into the staging directory of the new index, so the index
//!   and its metadata appear in one rename, or neither does.
//! - [`Index::add_with_metadata`] writes the new documents' rows, stamped
//!   with the generation its commit *will* have, before the manifest commit.
//!   If the commit lands, stamp and manifest agree and every row is live; if
//!   the process dies first, the stamp is ahead of the manifest.
//! - [`Index::delete`] removes the deleted documents' rows after its commit,
//!   stamping the new generation in the same transaction; if the process
//!   dies in between, the stamp is behind the manifest.
//! - Other commits (a plain [`Index::add`], compaction, rebuild) leave every
//!   row live; they stamp the new generation after the commit when the stamp
//!   was current before it.
//! - Every writer, when it takes the write lock and before it writes
//!   anything, repairs a stamp that differs from the manifest's: it deletes
//!   the rows of ids that are not live and stamps the manifest's generation
//!   ([`plaid_meta::MetaStore::repair`]; deterministic, and
//!   [`Index::repair_metadata`] does the same on demand). So rows left by an
//!   interrupted add are gone before a later add could be given the same ids
//!   (an interrupted add consumes no ids) or the same generation.
//!
//! Readers ([`Index::metadata`], [`Index::filter_ids`],
//! [`Index::filter_count`], [`Index::search_filtered`]) read the stamp and
//! the rows in one SQLite read transaction; they trust the rows when the
//! stamp equals their snapshot's generation and otherwise keep only ids live
//! in their snapshot. A filtered read therefore only ever returns live ids
//! of the snapshot it searches. (A reader whose snapshot is older than the
//! database may miss documents deleted since: their rows are gone.)
//!
//! A writer killed inside an SQLite transaction leaves SQLite's journal;
//! SQLite rolls it back on the next read-write access, and a read-only
//! reader that finds it lets SQLite do that first
//! ([`plaid_meta::MetaStore::open_read_only`]).
//!
//! Documents added without metadata (a plain [`Index::add`]) have no row
//! and match no filter.

use crate::{Documents, Error, Index, IndexConfig, Snapshot};
use ndarray::ArrayView2;
use plaid_codec::types::{DocId, EmbeddingsView};
use plaid_meta::{Filter, MetaStore, RepairReport};
use plaid_search::{FilterPlan, Hits, SearchParams};
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

impl Index {
    fn metadata_path(&self) -> PathBuf {
        self.dir().join(plaid_meta::DB_FILE)
    }

    fn meta_store(&self) -> Result<MetaStore, Error> {
        Ok(MetaStore::open(self.metadata_path())?)
    }

    /// Readers open the database read-only: like opening an index, looking
    /// up metadata never writes to the directory.
    fn meta_reader(&self) -> Result<MetaStore, Error> {
        Ok(MetaStore::open_read_only(self.metadata_path())?)
    }

    /// Builds an index of `docs` as [`Index::create`] does and stores
    /// `metadata[i]` (a JSON object) as the metadata of document `i`. The
    /// metadata database is written into the new index's staging directory,
    /// so a crash leaves either no index or the index with all its metadata.
    ///
    /// # Errors
    /// [`Error::MetadataCount`] when `metadata` and `docs` differ in length,
    /// [`plaid_meta::Error::NotAnObject`] or [`plaid_meta::Error::BadKey`]
    /// (as [`Error::Meta`]) for a bad entry, all checked before anything is
    /// written; then the errors of [`Index::create`]. Nothing is left at
    /// `dir` on error.
    pub fn create_with_metadata(
        docs: Documents<'_>,
        dir: impl AsRef<Path>,
        config: &IndexConfig,
        metadata: &[Json],
    ) -> Result<Self, Error> {
        check_entries(docs, metadata)?;
        Self::create_staged(
            docs,
            dir.as_ref(),
            config,
            &mut |_| {},
            &mut |staging, manifest| {
                let ids: Vec<DocId> = (0..metadata.len()).map(|i| DocId::new(i as u32)).collect();
                let mut store = MetaStore::open_or_create(staging.join(plaid_meta::DB_FILE))?;
                store.add(&ids, metadata, manifest.generation)?;
                // Dropping closes the database (its journal is already gone:
                // SQLite synced and deleted it at the commit).
                drop(store);
                Ok(())
            },
        )
    }

    /// Adds `docs` as [`Index::add`] does and stores `objects[i]` (a JSON
    /// object) as the metadata of the `i`-th new document. Returns the new
    /// ids.
    ///
    /// The rows are written, in one SQLite transaction stamped with the
    /// generation the add will commit, before the manifest commit; a crash
    /// in between leaves rows of ids that are not live, which readers ignore
    /// and the next writer deletes (see the rules in `metadata.rs` and
    /// ARCHITECTURE.md). Creates `metadata.db` when the index has none.
    ///
    /// # Errors
    /// [`Error::MetadataCount`] when `objects` and `docs` differ in length,
    /// [`plaid_meta::Error::NotAnObject`] or [`plaid_meta::Error::BadKey`]
    /// (as [`Error::Meta`]) naming the first bad entry's position, all
    /// checked before anything is written; then the errors of
    /// [`Index::add`] and SQLite failures. Nothing is committed on error.
    pub fn add_with_metadata(
        &self,
        docs: Documents<'_>,
        objects: &[Json],
    ) -> Result<Vec<DocId>, Error> {
        check_entries(docs, objects)?;
        self.add_with(docs, &mut |ids, generation| {
            let mut store = MetaStore::open_or_create(self.metadata_path())?;
            store.add(ids, objects, generation)?;
            Ok(())
        })
    }

    /// Whether the index directory has a metadata database.
    pub fn has_metadata(&self) -> bool {
        self.metadata_path().is_file()
    }

    /// Stores `objects[i]` as the metadata of live document `ids[i]`
    /// (replacing what it had), creating `metadata.db` if needed. Takes the
    /// write lock (and so repairs the database first if it does not follow
    /// the manifest).
    ///
    /// # Errors
    /// [`Error::UnknownDoc`] for an id that is not live, bad entries (see
    /// [`plaid_meta::MetaStore::add`]), a lock held by another writer,
    /// SQLite failures. Nothing is written on error.
    pub fn set_metadata(&mut self, ids: &[DocId], objects: &[Json]) -> Result<(), Error> {
        let _guard = self.writer()?;
        let snap = self.snapshot();
        let live = snap.doc_ids();
        if let Some(id) = ids.iter().find(|id| live.binary_search(id).is_err()) {
            return Err(Error::UnknownDoc { id: id.as_u32() });
        }
        MetaStore::validate(objects)?;
        let mut store = MetaStore::open_or_create(self.metadata_path())?;
        self.repair_store(&mut store, &snap)?;
        store.add(ids, objects, snap.generation())?;
        Ok(())
    }

    /// Deletes the metadata of `ids` (the documents stay) and records the
    /// current generation. Returns the number of rows deleted. Takes the
    /// write lock.
    ///
    /// # Errors
    /// A missing database, a lock held by another writer, SQLite failures.
    pub fn delete_metadata(&mut self, ids: &[DocId]) -> Result<usize, Error> {
        let _guard = self.writer()?;
        let mut store = self.meta_store()?;
        Ok(store.delete(ids, self.generation())?)
    }

    /// After a commit from generation `before` (the caller holds the
    /// writer): deletes the rows of `deleted` and stamps the new generation,
    /// if the index has metadata whose stamp was `before` (or already is the
    /// new generation). Any other stamp is left for the next repair.
    pub(crate) fn follow_commit(&self, before: u64, deleted: &[u32]) -> Result<(), Error> {
        if !self.has_metadata() {
            return Ok(());
        }
        let now = self.generation();
        let mut store = self.meta_store()?;
        let stamp = store.generation()?;
        if stamp == Some(now) && deleted.is_empty() {
            return Ok(());
        }
        if stamp == Some(before) || stamp == Some(now) {
            let ids: Vec<DocId> = deleted.iter().map(|&d| DocId::new(d)).collect();
            store.delete(&ids, now)?;
        }
        Ok(())
    }

    /// When the index has metadata whose stamp differs from the manifest's
    /// generation, repairs it. Called by every writer once it holds the lock.
    pub(crate) fn repair_stale_metadata(&self) -> Result<(), Error> {
        if !self.has_metadata() {
            return Ok(());
        }
        let mut store = self.meta_store()?;
        self.repair_store(&mut store, &self.snapshot())?;
        Ok(())
    }

    /// Makes the metadata agree with the index: when the database belongs to
    /// another manifest generation, deletes the rows of ids that are not
    /// live and records the current generation (see the module docs). Every
    /// write does this first, so calling it is only needed to clean up
    /// without writing anything else. Takes the write lock.
    ///
    /// # Errors
    /// A missing database, a lock held by another writer, SQLite failures.
    pub fn repair_metadata(&mut self) -> Result<RepairReport, Error> {
        let _guard = self.lock_writer()?;
        let mut store = self.meta_store()?;
        self.repair_store(&mut store, &self.snapshot())
    }

    fn repair_store(&self, store: &mut MetaStore, snap: &Snapshot) -> Result<RepairReport, Error> {
        let from = store.generation()?;
        if from == Some(snap.generation()) {
            return Ok(RepairReport {
                from_generation: from,
                to_generation: snap.generation(),
                removed: Vec::new(),
            });
        }
        Ok(store.repair(&snap.doc_ids(), snap.generation())?)
    }

    /// The metadata of each id; `None` for ids that are not live or have
    /// none.
    ///
    /// # Errors
    /// A missing database, SQLite failures.
    pub fn metadata(&self, ids: &[DocId]) -> Result<Vec<Option<Map<String, Json>>>, Error> {
        let snap = self.snapshot();
        let store = self.meta_reader()?;
        let (stamp, mut out) = store.read(|s| Ok((s.generation()?, s.get(ids)?)))?;
        if stamp != Some(snap.generation()) {
            let live = snap.doc_ids();
            for (id, m) in ids.iter().zip(out.iter_mut()) {
                if live.binary_search(id).is_err() {
                    *m = None;
                }
            }
        }
        Ok(out)
    }

    /// Live documents whose metadata matches `filter`, ascending.
    ///
    /// # Errors
    /// A refused filter ([`plaid_meta::Error::Filter`] as [`Error::Meta`]),
    /// a missing database, SQLite failures.
    pub fn filter_ids(&self, filter: &Filter) -> Result<Vec<DocId>, Error> {
        self.filter_ids_in(&self.snapshot(), filter)
    }

    /// [`Index::filter_ids`] against the snapshot `snap`.
    fn filter_ids_in(&self, snap: &Snapshot, filter: &Filter) -> Result<Vec<DocId>, Error> {
        let store = self.meta_reader()?;
        let (stamp, mut ids) = store.read(|s| Ok((s.generation()?, s.ids(filter)?)))?;
        if stamp != Some(snap.generation()) {
            let live = snap.doc_ids();
            ids.retain(|id| live.binary_search(id).is_ok());
        }
        Ok(ids)
    }

    /// Number of live documents whose metadata matches `filter`.
    ///
    /// # Errors
    /// As [`Index::filter_ids`].
    pub fn filter_count(&self, filter: &Filter) -> Result<usize, Error> {
        let snap = self.snapshot();
        let store = self.meta_reader()?;
        let (stamp, n) = store.read(|s| Ok((s.generation()?, s.count(filter)?)))?;
        if stamp == Some(snap.generation()) {
            return Ok(n);
        }
        drop(store);
        Ok(self.filter_ids_in(&snap, filter)?.len())
    }

    /// The top `params.k` live documents for `query` among those whose
    /// metadata matches `filter`. The filter is resolved to ids through
    /// SQLite, then [`plaid_search::Searcher::search_filtered`] scores
    /// either every matching document or the probed candidates that match,
    /// whichever set is smaller.
    ///
    /// # Errors
    /// As [`Index::search`] and [`Index::filter_ids`].
    pub fn search_filtered(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
        filter: &Filter,
    ) -> Result<Hits, Error> {
        Ok(self.search_filtered_with_plan(query, params, filter)?.0)
    }

    /// [`Index::search_filtered`], also saying which plan was used.
    ///
    /// # Errors
    /// As [`Index::search_filtered`].
    pub fn search_filtered_with_plan(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
        filter: &Filter,
    ) -> Result<(Hits, FilterPlan), Error> {
        let snap = self.snapshot();
        let ids = self.filter_ids_in(&snap, filter)?;
        let data: std::borrow::Cow<'_, [f32]> = match query.as_slice() {
            Some(s) => s.into(),
            None => query.iter().copied().collect::<Vec<f32>>().into(),
        };
        if data.is_empty() {
            return Err(Error::Search(plaid_search::Error::EmptyQuery));
        }
        let q = EmbeddingsView::try_new(&data, query.ncols()).map_err(|_| {
            Error::Search(plaid_search::Error::QueryDim {
                expected: self.dim(),
                found: query.ncols(),
            })
        })?;
        Ok(snap.searcher()?.search_filtered(q, params, &ids)?)
    }
}

/// Checks `objects` against `docs` before anything is written: one JSON
/// object per document, with keys that can be columns.
fn check_entries(docs: Documents<'_>, objects: &[Json]) -> Result<(), Error> {
    let num_docs = match docs {
        Documents::Views(v) => v.len(),
        Documents::Flat { lens, .. } => lens.len(),
    };
    if objects.len() != num_docs {
        return Err(Error::MetadataCount {
            docs: num_docs,
            entries: objects.len(),
        });
    }
    MetaStore::validate(objects)?;
    Ok(())
}
