//! Document metadata on [`Index`]: storing it, filtering by it, and
//! filtered search.
//!
//! The metadata lives in `metadata.db` ([`plaid_meta::DB_FILE`]) in the
//! index directory. The index manifest is the source of truth for which
//! documents exist; the database records the manifest generation its rows
//! belong to (see [`plaid_meta::store`] for the full rule):
//! - readers trust the rows when the generations agree and otherwise keep
//!   only ids that are live in the index;
//! - writers first [`Index::repair_metadata`] when they differ, which deletes
//!   the rows of ids that are not live.
//!
//! [`Index::create_with_metadata`] writes the metadata after the index; if
//! the process dies in between, the index has no `metadata.db`
//! ([`Index::has_metadata`] is false) and [`Index::set_metadata`] can be
//! run again.

use crate::{Documents, Error, Index, IndexConfig};
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
    /// `metadata[i]` (a JSON object) as the metadata of document `i`.
    ///
    /// # Errors
    /// [`Error::MetadataCount`] when `metadata` and `docs` differ in length,
    /// [`plaid_meta::Error::NotAnObject`] or [`plaid_meta::Error::BadKey`]
    /// (as [`Error::Meta`]) for a bad entry, all checked before anything is
    /// written; then the errors of [`Index::create`].
    pub fn create_with_metadata(
        docs: Documents<'_>,
        dir: impl AsRef<Path>,
        config: &IndexConfig,
        metadata: &[Json],
    ) -> Result<Self, Error> {
        let num_docs = match docs {
            Documents::Views(v) => v.len(),
            Documents::Flat { lens, .. } => lens.len(),
        };
        if metadata.len() != num_docs {
            return Err(Error::MetadataCount {
                docs: num_docs,
                entries: metadata.len(),
            });
        }
        MetaStore::validate(metadata)?;
        let mut index = Self::create(docs, dir, config)?;
        let ids = index.doc_ids();
        index.set_metadata(&ids, metadata)?;
        Ok(index)
    }

    /// Whether the index directory has a metadata database.
    pub fn has_metadata(&self) -> bool {
        self.metadata_path().is_file()
    }

    /// Stores `objects[i]` as the metadata of live document `ids[i]`
    /// (replacing what it had), creating `metadata.db` if needed. Repairs
    /// the database first if it belongs to another generation.
    ///
    /// # Errors
    /// [`Error::UnknownDoc`] for an id that is not live, bad entries (see
    /// [`plaid_meta::MetaStore::add`]), SQLite failures. Nothing is
    /// written on error.
    pub fn set_metadata(&mut self, ids: &[DocId], objects: &[Json]) -> Result<(), Error> {
        let live = self.doc_ids();
        if let Some(id) = ids.iter().find(|id| live.binary_search(id).is_err()) {
            return Err(Error::UnknownDoc { id: id.as_u32() });
        }
        MetaStore::validate(objects)?;
        let mut store = MetaStore::open_or_create(self.metadata_path())?;
        self.repair_store(&mut store, &live)?;
        store.add(ids, objects, self.generation())?;
        Ok(())
    }

    /// Deletes the metadata of `ids` (for documents being deleted) and
    /// records the current generation. Returns the number of rows deleted.
    ///
    /// # Errors
    /// A missing database, SQLite failures.
    pub fn delete_metadata(&mut self, ids: &[DocId]) -> Result<usize, Error> {
        let mut store = self.meta_store()?;
        Ok(store.delete(ids, self.generation())?)
    }

    /// After a delete has committed: removes the deleted documents' rows, if
    /// the index has metadata. A crash before this leaves rows of dead ids,
    /// which readers ignore and the next repair removes.
    pub(crate) fn drop_deleted_metadata(&self, ids: &[u32]) -> Result<(), Error> {
        if !self.has_metadata() {
            return Ok(());
        }
        let ids: Vec<DocId> = ids.iter().map(|&d| DocId::new(d)).collect();
        self.meta_store()?.delete(&ids, self.generation())?;
        Ok(())
    }

    /// Makes the metadata agree with the index: when the database belongs to
    /// another manifest generation, deletes the rows of ids that are not
    /// live and records the current generation (see the module docs).
    ///
    /// # Errors
    /// A missing database, SQLite failures.
    pub fn repair_metadata(&mut self) -> Result<RepairReport, Error> {
        let mut store = self.meta_store()?;
        let live = self.doc_ids();
        self.repair_store(&mut store, &live)
    }

    fn repair_store(&self, store: &mut MetaStore, live: &[DocId]) -> Result<RepairReport, Error> {
        let from = store.generation()?;
        if from == Some(self.generation()) {
            return Ok(RepairReport {
                from_generation: from,
                to_generation: self.generation(),
                removed: Vec::new(),
            });
        }
        Ok(store.repair(live, self.generation())?)
    }

    /// The metadata of each id; `None` for ids that are not live or have
    /// none.
    ///
    /// # Errors
    /// A missing database, SQLite failures.
    pub fn metadata(&self, ids: &[DocId]) -> Result<Vec<Option<Map<String, Json>>>, Error> {
        let store = self.meta_reader()?;
        let mut out = store.get(ids)?;
        if store.generation()? != Some(self.generation()) {
            let live = self.doc_ids();
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
        let store = self.meta_reader()?;
        let mut ids = store.ids(filter)?;
        if store.generation()? != Some(self.generation()) {
            let live = self.doc_ids();
            ids.retain(|id| live.binary_search(id).is_ok());
        }
        Ok(ids)
    }

    /// Number of live documents whose metadata matches `filter`.
    ///
    /// # Errors
    /// As [`Index::filter_ids`].
    pub fn filter_count(&self, filter: &Filter) -> Result<usize, Error> {
        let store = self.meta_reader()?;
        if store.generation()? == Some(self.generation()) {
            return Ok(store.count(filter)?);
        }
        drop(store);
        Ok(self.filter_ids(filter)?.len())
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
        let ids = self.filter_ids(filter)?;
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
        let snap = self.snapshot();
        Ok(snap.searcher()?.search_filtered(q, params, &ids)?)
    }
}
