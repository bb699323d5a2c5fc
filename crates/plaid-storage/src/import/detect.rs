//! Telling next-plaid and fast-plaid indexes apart.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::SourceFormat;
use crate::npy::{DType, NpyHeader, parse_header};
use crate::{Error, ImportFault, NpyErrorKind};

/// Names listed in [`ImportFault::UnknownLayout`] before the rest are counted.
const MAX_LISTED: usize = 32;

/// Bytes read to parse an npy header without reading the data (the headers
/// of both libraries are a few hundred bytes).
const HEADER_PEEK: u64 = 64 << 10;

/// Largest `metadata.json` read (both libraries write a few hundred bytes).
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// One mark of the library that wrote an index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// A key of `metadata.json` that only this library writes.
    MetadataKey(&'static str),
    /// A file that only this library writes.
    File(String),
    /// The element type of `centroids.npy` (fast-plaid stores f16).
    CentroidDtype(DType),
    /// The element type of `ivf_lengths.npy` (older fast-plaid stores i64).
    IvfLengthsDtype(DType),
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MetadataKey(k) => write!(f, "metadata.json key {k:?}"),
            Self::File(name) => write!(f, "file {name}"),
            Self::CentroidDtype(d) => write!(f, "{d} centroids"),
            Self::IvfLengthsDtype(d) => write!(f, "{d} ivf_lengths"),
        }
    }
}

/// Detects which library wrote the index at `src`.
///
/// next-plaid marks: the `metadata.json` keys `embedding_dim`,
/// `next_plaid_compatible` and `binary`, and the files
/// `embeddings_lengths.json`, `merged_*.lock` and `*.inv_norms.npy`.
/// fast-plaid marks: the keys `compress_only`, `frozen` and `mutable`, the
/// file `plaid.lock`, f16 centroids and i64 `ivf_lengths`. Exactly one library's marks must be present.
///
/// # Errors
/// [`ImportFault::UnknownLayout`] (listing the directory's files) when there
/// is no `metadata.json` or no mark at all; [`ImportFault::AmbiguousLayout`]
/// when both libraries' marks are present (a fast-plaid index that
/// next-plaid converted in place); [`ImportFault::BadJson`] for a
/// `metadata.json` that is not a JSON object; [`Error::Io`] when the
/// directory cannot be listed.
pub fn detect(src: &Path) -> Result<SourceFormat, Error> {
    let names = list_dir(src)?;
    let unknown = || {
        let mut found: Vec<String> = names.iter().take(MAX_LISTED).cloned().collect();
        if names.len() > MAX_LISTED {
            found.push(format!("{} more", names.len() - MAX_LISTED));
        }
        Error::Import {
            path: src.to_path_buf(),
            fault: ImportFault::UnknownLayout { found },
        }
    };
    if !names.iter().any(|n| n == "metadata.json") {
        return Err(unknown());
    }
    let meta = read_metadata(src)?;
    let mut np = Vec::new();
    let mut fp = Vec::new();
    for key in ["embedding_dim", "next_plaid_compatible", "binary"] {
        if meta.contains_key(key) {
            np.push(Evidence::MetadataKey(key));
        }
    }
    for key in ["compress_only", "frozen", "mutable"] {
        if meta.contains_key(key) {
            fp.push(Evidence::MetadataKey(key));
        }
    }
    for name in &names {
        if name == "embeddings_lengths.json"
            || (name.starts_with("merged_") && name.ends_with(".lock"))
            || name.ends_with(".inv_norms.npy")
        {
            np.push(Evidence::File(name.clone()));
        }
        if name == "plaid.lock" {
            fp.push(Evidence::File(name.clone()));
        }
    }
    if let Ok(Ok(h)) = peek_header(&src.join("centroids.npy"))
        && h.dtype == DType::F16
    {
        fp.push(Evidence::CentroidDtype(h.dtype));
    }
    if let Ok(Ok(h)) = peek_header(&src.join("ivf_lengths.npy"))
        && h.dtype == DType::I64
    {
        fp.push(Evidence::IvfLengthsDtype(h.dtype));
    }
    match (np.is_empty(), fp.is_empty()) {
        (false, true) => Ok(SourceFormat::NextPlaid),
        (true, false) => Ok(SourceFormat::FastPlaid),
        (true, true) => Err(unknown()),
        (false, false) => Err(Error::Import {
            path: src.to_path_buf(),
            fault: ImportFault::AmbiguousLayout {
                next_plaid: np,
                fast_plaid: fp,
            },
        }),
    }
}

/// The names in `dir`, sorted (names that are not UTF-8 are shown lossily).
pub(super) fn list_dir(dir: &Path) -> Result<Vec<String>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        names.push(
            entry
                .map_err(io)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    Ok(names)
}

/// Reads `src/metadata.json` as a JSON object.
pub(super) fn read_metadata(src: &Path) -> Result<Map<String, Value>, Error> {
    let path = src.join("metadata.json");
    let bytes = read_json_bytes(&path, MAX_METADATA_BYTES)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Import {
            path,
            fault: ImportFault::BadJson { line: 1, column: 1 },
        }),
        Err(e) => Err(Error::Import {
            path,
            fault: ImportFault::BadJson {
                line: e.line(),
                column: e.column(),
            },
        }),
    }
}

/// Reads a JSON file of at most `max` bytes (a larger one is reported as
/// bad JSON at its start rather than read).
pub(super) fn read_json_bytes(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let file = fs::File::open(path).map_err(|source| missing_or_io(path, source))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(Error::Import {
            path: path.to_path_buf(),
            fault: ImportFault::BadJson { line: 1, column: 1 },
        });
    }
    Ok(bytes)
}

/// [`ImportFault::MissingFile`] for a file that does not exist, else [`Error::Io`].
pub(super) fn missing_or_io(path: &Path, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::Import {
            path: path.to_path_buf(),
            fault: ImportFault::MissingFile,
        }
    } else {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Parses the npy header of `path` from its first bytes, without reading
/// the data. The outer error is IO; the inner one what the header parser
/// found (an object array gives `UnsupportedDtype` with descr `"|O"`).
pub(super) fn peek_header(path: &Path) -> std::io::Result<Result<NpyHeader, NpyErrorKind>> {
    let file = fs::File::open(path)?;
    let mut head = Vec::new();
    file.take(HEADER_PEEK).read_to_end(&mut head)?;
    Ok(parse_header(&head))
}
