//! Per-document metadata for plaid indexes, and filters over it.
//!
//! Each document of an index can carry a JSON object (source, date,
//! language, tenant, ...). This crate stores those objects in SQLite
//! (`metadata.db` in the index directory), one row per stable document id,
//! one column per JSON key, and answers [`Filter`]s: a condition with `?`
//! placeholders over the columns, checked against a small grammar before
//! SQLite sees anything.
//!
//! Most applications should use the `plaid` facade (`Index::search_filtered`,
//! `Index::set_metadata`), which keeps the metadata consistent with the
//! index. Use this crate directly to validate filters or to inspect a
//! `metadata.db` on its own.
//!
//! # Example
//! ```
//! use plaid_meta::{Filter, MetaStore, Value};
//! use plaid_codec::types::DocId;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut store = MetaStore::open_or_create(dir.path().join("metadata.db"))?;
//! let docs = [json!({"section": "libs", "size": 10}), json!({"section": "net", "size": 3})];
//! store.add(&[DocId::new(0), DocId::new(1)], &docs, 1)?;
//! let f = Filter::new("section = ? AND size > ?", vec!["libs".into(), Value::Integer(5)]);
//! assert_eq!(store.ids(&f)?, vec![DocId::new(0)]);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//! None. SQLite is compiled in (`rusqlite` with `bundled`).
#![forbid(unsafe_code)]

mod error;
pub mod filter;
pub mod store;
mod value;

pub use error::{Error, KeyProblem};
pub use filter::{Filter, FilterError, FilterErrorKind};
pub use store::{Column, ColumnKind, DB_FILE, MetaStore, RepairReport, SCHEMA_VERSION};
pub use value::Value;
