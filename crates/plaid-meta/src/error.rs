//! The crate's error type.

use crate::FilterError;
use std::path::PathBuf;

/// Everything that can go wrong with metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed on the metadata database.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database file does not exist.
    #[error("{path}: no metadata database")]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file is an SQLite database but not one this crate wrote, or a
    /// newer schema.
    #[error("{path}: metadata schema version {found:?}, expected {expected}")]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The version this library reads and writes.
        expected: i64,
        /// The version found (`None`: no plaid metadata tables).
        found: Option<i64>,
    },
    /// A filter was refused.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A metadata entry is not a JSON object.
    #[error("metadata entry {index} is not a JSON object")]
    NotAnObject {
        /// Position of the entry in the input.
        index: usize,
    },
    /// A JSON key cannot be a column.
    #[error("metadata entry {index}: key {key:?} {problem}")]
    BadKey {
        /// Position of the entry in the input.
        index: usize,
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// Ids and objects differ in number.
    #[error("{ids} document ids but {objects} metadata entries")]
    CountMismatch {
        /// Number of ids.
        ids: usize,
        /// Number of objects.
        objects: usize,
    },
    /// More distinct keys than columns allowed.
    #[error("more than {max} metadata columns")]
    TooManyColumns {
        /// The limit.
        max: usize,
    },
}

/// Why a JSON key cannot name a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// Longer than [`crate::store::MAX_KEY_BYTES`].
    #[error("is too long")]
    TooLong,
    /// Contains a NUL character.
    #[error("contains a NUL character")]
    Nul,
    /// The document id column's name.
    #[error("is reserved for the document id")]
    Reserved,
    /// Another key of the same object differs from it only in ASCII case
    /// (SQLite column names are case-insensitive).
    #[error("differs only in case from another key of the same object")]
    CaseDuplicate,
}
