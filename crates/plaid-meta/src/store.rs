//! [`MetaStore`]: the SQLite database of one index's document metadata.
//!
//! # Schema (version [`SCHEMA_VERSION`])
//! - `plaid_meta_info(key TEXT PRIMARY KEY, value INTEGER)`: `schema_version`
//!   and `generation`, the index manifest generation the rows correspond to.
//! - `plaid_meta_columns(position INTEGER PRIMARY KEY, name TEXT UNIQUE
//!   COLLATE NOCASE, kind TEXT)`: the known columns, in order of first
//!   appearance, with the kind inferred from their first non-null value.
//! - `plaid_meta_docs("_plaid_id" INTEGER PRIMARY KEY, <columns>...)`: one row
//!   per document. Columns are declared without a type, so each value keeps
//!   the type it had in JSON (integer, real, text; booleans as 0/1; arrays
//!   and objects as JSON text); a missing key and `null` are both `NULL`.
//!
//! # Consistency with the index
//! The index manifest is the source of truth for which documents exist.
//! Every write records the manifest generation it belongs to, in the same
//! SQLite transaction as the rows. Writers order their steps so that a
//! crash can only leave rows for documents that are not live: metadata of
//! new documents is written before the manifest that makes them live, and
//! metadata of deleted documents is removed after the manifest that deletes
//! them, and metadata of new documents is stamped with the generation of
//! the manifest that will make them live. So when the recorded generation
//! equals the manifest's, every row belongs to a live document; when it
//! differs, readers use only ids that are live in the index, and the next
//! writer calls [`MetaStore::repair`], which deletes exactly the rows of ids
//! that are not live and records the manifest generation. Readers read the
//! generation and the rows in one transaction ([`MetaStore::read`]).

use crate::filter::parse_quote_ident as quote_ident;
use crate::{Error, Filter, KeyProblem, Value};
use plaid_codec::types::DocId;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

/// File name of the metadata database inside an index directory.
pub const DB_FILE: &str = "metadata.db";
/// Version of the tables described in the module docs.
pub const SCHEMA_VERSION: i64 = 1;
/// Longest JSON key accepted as a column name, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Most metadata columns (SQLite allows 2,000 per table).
pub const MAX_COLUMNS: usize = 1000;
/// Name of the document id column (a JSON key may not use it).
pub const ID_COLUMN: &str = "_plaid_id";

/// What a column's first non-null value was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnKind {
    /// No non-null value seen yet.
    Null,
    /// Integers (and booleans).
    Integer,
    /// Floats.
    Real,
    /// Strings.
    Text,
    /// Arrays or objects, stored as JSON text.
    Json,
}

impl ColumnKind {
    fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Integer => "integer",
            Self::Real => "real",
            Self::Text => "text",
            Self::Json => "json",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "integer" => Self::Integer,
            "real" => Self::Real,
            "text" => Self::Text,
            "json" => Self::Json,
            _ => Self::Null,
        }
    }

    fn of(v: &Json) -> Self {
        match v {
            Json::Null => Self::Null,
            Json::Bool(_) => Self::Integer,
            Json::Number(n) if n.is_i64() => Self::Integer,
            Json::Number(_) => Self::Real,
            Json::String(_) => Self::Text,
            Json::Array(_) | Json::Object(_) => Self::Json,
        }
    }
}

/// A known metadata column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name (the JSON key as first seen).
    pub name: String,
    /// The kind of its first non-null value.
    pub kind: ColumnKind,
}

/// What [`MetaStore::repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// The generation recorded before.
    pub from_generation: Option<u64>,
    /// The generation recorded now.
    pub to_generation: u64,
    /// Ids whose rows were deleted because they are not live, ascending.
    pub removed: Vec<DocId>,
}

/// An open metadata database.
pub struct MetaStore {
    conn: Connection,
    path: PathBuf,
    columns: Vec<Column>,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore")
            .field("path", &self.path)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

fn scalar_to_sql(v: &Json) -> Value {
    Value::from_json(v).unwrap_or_else(|| Value::Text(v.to_string()))
}

impl MetaStore {
    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens the database at `path`, creating it (and its tables) if absent.
    ///
    /// # Errors
    /// SQLite failures, or a file written by a different schema version.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(e)?;
        let tx = conn.transaction().map_err(e)?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS plaid_meta_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO plaid_meta_info VALUES ('schema_version', {SCHEMA_VERSION});
             CREATE TABLE IF NOT EXISTS plaid_meta_columns (
                 position INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                 kind TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS plaid_meta_docs (\"{ID_COLUMN}\" INTEGER PRIMARY KEY);"
        ))
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Self::finish_open(conn, path)
    }

    /// Opens an existing database at `path` without creating anything.
    ///
    /// # Errors
    /// [`Error::Missing`] when there is no file, SQLite failures, or a file
    /// that is not a plaid metadata database of this schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::Missing { path });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::Sqlite {
            path: path.clone(),
            source,
        })?;
        Self::finish_open(conn, path)
    }

    /// Opens an existing database at `path` for reading only (what
    /// searches and lookups use: they never write to the index directory).
    ///
    /// # Errors
    /// As [`MetaStore::open`]; writes through this handle fail with
    /// [`Error::Sqlite`].
    ///
    /// A writer killed inside a transaction leaves SQLite's journal next to
    /// the database (a "hot journal"), which only a read-write connection
    /// may roll back. When it finds one, this opens the database read-write
    /// once so that SQLite restores the last committed state, then reopens
    /// it read-only. That rollback is the only write a reader ever causes.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::Missing { path });
        }
        match Self::open_read_only_once(&path) {
            Err(Error::Sqlite { source, .. }) if is_hot_journal(&source) => {
                drop(Self::open(&path)?);
                Self::open_read_only_once(&path)
            }
            r => r,
        }
    }

    fn open_read_only_once(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Self::finish_open(conn, path.to_path_buf())
    }

    fn finish_open(conn: Connection, path: PathBuf) -> Result<Self, Error> {
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        // The first read takes SQLite's shared lock, and with it finds (or
        // rolls back) a hot journal: its errors are real errors.
        let has_info: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'plaid_meta_info'",
                [],
                |r| r.get(0),
            )
            .map_err(e)?;
        let version: Option<i64> = if has_info == 0 {
            None
        } else {
            conn.query_row(
                "SELECT value FROM plaid_meta_info WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?
        };
        if version != Some(SCHEMA_VERSION) {
            return Err(Error::SchemaVersion {
                path,
                expected: SCHEMA_VERSION,
                found: version,
            });
        }
        let mut store = Self {
            conn,
            path,
            columns: Vec::new(),
        };
        store.columns = store.load_columns()?;
        Ok(store)
    }

    fn load_columns(&self) -> Result<Vec<Column>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, kind FROM plaid_meta_columns ORDER BY position")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    kind: ColumnKind::parse(&r.get::<_, String>(1)?),
                })
            })
            .map_err(self.sql_err())?;
        rows.collect::<Result<_, _>>().map_err(self.sql_err())
    }

    /// Runs `f` inside one SQLite read transaction, so that everything it
    /// reads (the [`MetaStore::generation`] and rows, say) comes from one
    /// committed state even while another process writes.
    ///
    /// # Errors
    /// SQLite failures, and whatever `f` returns.
    pub fn read<T>(&self, f: impl FnOnce(&Self) -> Result<T, Error>) -> Result<T, Error> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql_err())?;
        let out = f(self)?;
        // Nothing was written; ending the transaction releases the lock.
        tx.rollback().map_err(self.sql_err())?;
        Ok(out)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The known columns, in order of first appearance.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The index manifest generation the rows correspond to (`None` before
    /// the first write).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn generation(&self) -> Result<Option<u64>, Error> {
        let g: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM plaid_meta_info WHERE key = 'generation'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql_err())?;
        Ok(g.map(|g| g as u64))
    }

    fn column_index(&self, key: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(key))
    }

    /// Stores `objects[i]` as the metadata of `ids[i]` (replacing any row the
    /// id had) and records `generation`, in one transaction. New keys become
    /// new columns. Everything is checked before anything is written.
    ///
    /// # Errors
    /// [`Error::CountMismatch`], [`Error::NotAnObject`], [`Error::BadKey`],
    /// [`Error::TooManyColumns`], SQLite failures. On error nothing changes.
    pub fn add(&mut self, ids: &[DocId], objects: &[Json], generation: u64) -> Result<(), Error> {
        if ids.len() != objects.len() {
            return Err(Error::CountMismatch {
                ids: ids.len(),
                objects: objects.len(),
            });
        }
        Self::validate(objects)?;
        // Plan the new columns first.
        let mut new_cols: Vec<Column> = Vec::new();
        let mut kind_updates: Vec<(String, ColumnKind)> = Vec::new();
        for obj in objects {
            let Some(map) = obj.as_object() else {
                unreachable!("validate checked that every entry is an object");
            };
            for (key, v) in map {
                let kind = ColumnKind::of(v);
                match self.column_index(key) {
                    Some(i) => {
                        if self.columns[i].kind == ColumnKind::Null && kind != ColumnKind::Null {
                            let name = self.columns[i].name.clone();
                            if !kind_updates.iter().any(|(n, _)| *n == name) {
                                kind_updates.push((name, kind));
                            }
                        }
                    }
                    None => match new_cols
                        .iter_mut()
                        .find(|c| c.name.eq_ignore_ascii_case(key))
                    {
                        Some(c) if c.kind == ColumnKind::Null => c.kind = kind,
                        Some(_) => {}
                        None => new_cols.push(Column {
                            name: key.clone(),
                            kind,
                        }),
                    },
                }
            }
        }
        if self.columns.len() + new_cols.len() > MAX_COLUMNS {
            return Err(Error::TooManyColumns { max: MAX_COLUMNS });
        }
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        for c in &new_cols {
            let mut sql = String::from("ALTER TABLE plaid_meta_docs ADD COLUMN ");
            quote_ident(&c.name, &mut sql);
            tx.execute(&sql, []).map_err(e)?;
            tx.execute(
                "INSERT INTO plaid_meta_columns (name, kind) VALUES (?, ?)",
                params![c.name, c.kind.name()],
            )
            .map_err(e)?;
        }
        for (name, kind) in &kind_updates {
            tx.execute(
                "UPDATE plaid_meta_columns SET kind = ? WHERE name = ?",
                params![kind.name(), name],
            )
            .map_err(e)?;
        }
        let mut all: Vec<Column> = self.columns.clone();
        for (name, kind) in &kind_updates {
            if let Some(c) = all.iter_mut().find(|c| c.name == *name) {
                c.kind = *kind;
            }
        }
        all.extend(new_cols);
        for (id, obj) in ids.iter().zip(objects) {
            let Some(map) = obj.as_object() else {
                unreachable!("every entry was checked to be an object above");
            };
            let mut sql = format!("INSERT OR REPLACE INTO plaid_meta_docs (\"{ID_COLUMN}\"");
            let mut values: Vec<Value> = vec![Value::Integer(i64::from(id.as_u32()))];
            for (key, v) in map {
                let Some(c) = all.iter().find(|c| c.name.eq_ignore_ascii_case(key)) else {
                    unreachable!("every key was planned as a column above");
                };
                sql.push_str(", ");
                quote_ident(&c.name, &mut sql);
                values.push(scalar_to_sql(v));
            }
            sql.push_str(") VALUES (?");
            sql.push_str(&", ?".repeat(values.len() - 1));
            sql.push(')');
            let mut stmt = tx.prepare_cached(&sql).map_err(e)?;
            stmt.execute(rusqlite::params_from_iter(values.iter()))
                .map_err(e)?;
        }
        set_generation(&tx, generation).map_err(e)?;
        tx.commit().map_err(e)?;
        self.columns = all;
        Ok(())
    }

    /// Checks that every entry is a JSON object whose keys can be columns,
    /// without touching any database.
    ///
    /// # Errors
    /// [`Error::NotAnObject`] or [`Error::BadKey`] for the first bad entry.
    pub fn validate(objects: &[Json]) -> Result<(), Error> {
        for (index, obj) in objects.iter().enumerate() {
            let map = obj.as_object().ok_or(Error::NotAnObject { index })?;
            check_keys(index, map)?;
        }
        Ok(())
    }

    /// The metadata of each id (`None` for an id without a row). `NULL`
    /// values are left out of the objects.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn get(&self, ids: &[DocId]) -> Result<Vec<Option<Map<String, Json>>>, Error> {
        let mut sql = format!("SELECT \"{ID_COLUMN}\"");
        for c in &self.columns {
            sql.push_str(", ");
            quote_ident(&c.name, &mut sql);
        }
        sql.push_str(&format!(" FROM plaid_meta_docs WHERE \"{ID_COLUMN}\" = ?"));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.sql_err())?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = stmt
                .query_row([i64::from(id.as_u32())], |r| {
                    let mut map = Map::new();
                    for (i, c) in self.columns.iter().enumerate() {
                        use rusqlite::types::ValueRef;
                        let v = match r.get_ref(i + 1)? {
                            ValueRef::Null => continue,
                            ValueRef::Integer(n) => Json::from(n),
                            ValueRef::Real(f) => Json::from(f),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                let s = String::from_utf8_lossy(t).into_owned();
                                if c.kind == ColumnKind::Json {
                                    serde_json::from_str(&s).unwrap_or(Json::String(s))
                                } else {
                                    Json::String(s)
                                }
                            }
                        };
                        map.insert(c.name.clone(), v);
                    }
                    Ok(map)
                })
                .optional()
                .map_err(self.sql_err())?;
            out.push(row);
        }
        Ok(out)
    }

    fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Number of rows matching `filter`.
    ///
    /// # Errors
    /// [`Error::Filter`] when the filter is refused; SQLite failures.
    pub fn count(&self, filter: &Filter) -> Result<usize, Error> {
        let c = filter.compile(&self.column_names())?;
        let sql = format!("SELECT count(*) FROM plaid_meta_docs WHERE {}", c.sql);
        let n: i64 = self
            .conn
            .query_row(&sql, rusqlite::params_from_iter(c.binds.iter()), |r| {
                r.get(0)
            })
            .map_err(self.sql_err())?;
        Ok(n as usize)
    }

    /// Ids of the rows matching `filter`, ascending.
    ///
    /// # Errors
    /// [`Error::Filter`] when the filter is refused; SQLite failures.
    pub fn ids(&self, filter: &Filter) -> Result<Vec<DocId>, Error> {
        let c = filter.compile(&self.column_names())?;
        let sql = format!(
            "SELECT \"{ID_COLUMN}\" FROM plaid_meta_docs WHERE {} ORDER BY 1",
            c.sql
        );
        self.collect_ids(&sql, rusqlite::params_from_iter(c.binds.iter()))
    }

    /// Every id that has a row, ascending.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn all_ids(&self) -> Result<Vec<DocId>, Error> {
        self.collect_ids(
            &format!("SELECT \"{ID_COLUMN}\" FROM plaid_meta_docs ORDER BY 1"),
            [],
        )
    }

    fn collect_ids(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<DocId>, Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.sql_err())?;
        let rows = stmt
            .query_map(p, |r| r.get::<_, i64>(0))
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for r in rows {
            let id = r.map_err(self.sql_err())?;
            // Rows are only ever written with u32 ids.
            if let Ok(id) = u32::try_from(id) {
                out.push(DocId::new(id));
            }
        }
        Ok(out)
    }

    /// Deletes the rows of `ids` (ids without a row are ignored) and records
    /// `generation`, in one transaction. Returns the number deleted.
    ///
    /// # Errors
    /// SQLite failures; on error nothing changes.
    pub fn delete(&mut self, ids: &[DocId], generation: u64) -> Result<usize, Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "DELETE FROM plaid_meta_docs WHERE \"{ID_COLUMN}\" = ?"
                ))
                .map_err(e)?;
            for id in ids {
                n += stmt.execute([i64::from(id.as_u32())]).map_err(e)?;
            }
        }
        set_generation(&tx, generation).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(n)
    }

    /// Brings the rows in line with an index whose live ids are `live` at
    /// manifest `generation`: deletes every row whose id is not in `live` and
    /// records `generation`, in one transaction. Deterministic: the result
    /// depends only on the rows and `live`. Running it again is a no-op.
    ///
    /// # Errors
    /// SQLite failures; on error nothing changes.
    pub fn repair(&mut self, live: &[DocId], generation: u64) -> Result<RepairReport, Error> {
        let from_generation = self.generation()?;
        let mut live_sorted: Vec<DocId> = live.to_vec();
        live_sorted.sort_unstable();
        let removed: Vec<DocId> = self
            .all_ids()?
            .into_iter()
            .filter(|id| live_sorted.binary_search(id).is_err())
            .collect();
        self.delete(&removed, generation)?;
        Ok(RepairReport {
            from_generation,
            to_generation: generation,
            removed,
        })
    }
}

/// Whether `e` says that a read-only connection found a hot journal it may
/// not roll back (`SQLITE_READONLY_ROLLBACK`).
fn is_hot_journal(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

fn set_generation(tx: &rusqlite::Transaction<'_>, generation: u64) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT OR REPLACE INTO plaid_meta_info VALUES ('generation', ?)",
        [generation as i64],
    )
}

fn check_keys(index: usize, map: &Map<String, Json>) -> Result<(), Error> {
    let bad = |key: &str, problem| Error::BadKey {
        index,
        key: key.to_owned(),
        problem,
    };
    let mut seen: Vec<String> = Vec::with_capacity(map.len());
    for key in map.keys() {
        if key.is_empty() {
            return Err(bad(key, KeyProblem::Empty));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(bad(key, KeyProblem::TooLong));
        }
        if key.contains('\0') {
            return Err(bad(key, KeyProblem::Nul));
        }
        if key.eq_ignore_ascii_case(ID_COLUMN) {
            return Err(bad(key, KeyProblem::Reserved));
        }
        let lower = key.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(bad(key, KeyProblem::CaseDuplicate));
        }
        seen.push(lower);
    }
    Ok(())
}
