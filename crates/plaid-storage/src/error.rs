//! The error type of `plaid-storage`.
//!
//! [`Error`] is the crate's one error enum: every variant that comes from a
//! file names that file. Problems with the *contents* of an npy file are
//! described by [`NpyErrorKind`], which the byte-level functions in
//! [`crate::npy`] return on their own (they have no path to report) and which
//! [`Error::Npy`] wraps together with the path.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::import::Evidence;
use crate::npy::DType;

/// Errors from reading, mapping and writing plaid files.
///
/// Variants carry the offending values and the file involved; the message is
/// built from them. Match on the variant, never on the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on `path` failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was made on.
        path: PathBuf,
        /// The error the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The npy file at `path` is invalid or does not hold what was asked for.
    #[error("{}: {kind}", path.display())]
    Npy {
        /// The npy file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        kind: NpyErrorKind,
    },
    /// The index directory at `path` is not a valid plaid index, or cannot hold a new one.
    #[error("{}: {fault}", path.display())]
    Layout {
        /// The directory or file at fault.
        path: PathBuf,
        /// What is wrong.
        fault: LayoutFault,
    },
    /// The codebook stored at `path` is inconsistent.
    #[error("{}: {source}", path.display())]
    Codec {
        /// The file at fault.
        path: PathBuf,
        /// What the codec found.
        #[source]
        source: plaid_codec::Error,
    },
    /// The next-plaid or fast-plaid index at `path` cannot be imported
    /// (see [`crate::import`]).
    #[error("{}: {fault}", path.display())]
    Import {
        /// The source file or directory at fault (or the output directory,
        /// for [`ImportFault::OutputInsideSource`]).
        path: PathBuf,
        /// What is wrong.
        fault: ImportFault,
    },
    /// A file name given to [`crate::atomic`] is not a single, plain path
    /// component (it is empty, `.`/`..`, or contains a separator or NUL).
    #[error("{name:?} is not a plain file name")]
    InvalidFileName {
        /// The rejected name.
        name: String,
    },
}

/// What is wrong with the bytes of an npy file.
///
/// Returned directly by the functions of [`crate::npy`] that work on bytes,
/// and wrapped with the file's path in [`Error::Npy`] by those that work on
/// files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyErrorKind {
    /// The file does not start with the npy magic string `\x93NUMPY`.
    #[error("not an npy file (bad magic string)")]
    BadMagic,
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported npy format version {major}.{minor}")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header length field exceeds what this reader accepts.
    #[error("npy header of {len} bytes exceeds the limit of {max} bytes")]
    HeaderTooLarge {
        /// Header length claimed by the file.
        len: usize,
        /// The limit, [`crate::npy::MAX_HEADER_LEN`].
        max: usize,
    },
    /// The input ends before the header or the data it describes.
    #[error("npy file is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes needed (header, or header plus data).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The input continues past the end of the data the header describes.
    #[error("npy file has trailing bytes: expected {expected} bytes, found {found}")]
    TrailingBytes {
        /// Bytes the header accounts for.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The header is not the dictionary literal the format prescribes.
    #[error("malformed npy header: {reason}")]
    MalformedHeader {
        /// Which rule the header breaks.
        reason: HeaderFault,
    },
    /// The header's `descr` names a type this crate does not read.
    #[error("unsupported npy dtype {descr:?}")]
    UnsupportedDtype {
        /// The descriptor found in the file, for example `"<c8"` or `">f4"`.
        descr: String,
    },
    /// The array holds a different element type than the one requested.
    #[error("expected an array of {expected}, found {found}")]
    DtypeMismatch {
        /// The element type requested.
        expected: DType,
        /// The element type stored.
        found: DType,
    },
    /// The header says `'fortran_order': True`; only C order is supported.
    #[error("Fortran-order arrays are not supported")]
    FortranOrder,
    /// A dimension, the element count or the byte length does not fit in
    /// 64 bits (or in the address space).
    #[error("npy shape is too large: its byte length overflows")]
    ShapeOverflow,
    /// The array has a different number of dimensions than requested.
    #[error("expected an array of rank {expected}, found rank {found}")]
    RankMismatch {
        /// Rank requested.
        expected: usize,
        /// Rank stored.
        found: usize,
    },
    /// The data does not start at a multiple of the element alignment, so it
    /// cannot be viewed in place (only the memory-mapped path needs this).
    #[error("npy data offset {offset} is not a multiple of the element alignment {align}")]
    Misaligned {
        /// Byte offset of the data in the file.
        offset: usize,
        /// Alignment the element type needs.
        align: usize,
    },
    /// The number of elements given to the writer does not match the shape.
    #[error("shape describes {expected} elements but {found} were given")]
    ElementCount {
        /// Product of the shape.
        expected: u64,
        /// Elements supplied.
        found: u64,
    },
    /// A `u64` value does not fit in `i64` during conversion.
    #[error("element {index} ({value}) does not fit in i64")]
    ValueOutOfRange {
        /// Position of the element in C order.
        index: usize,
        /// The value.
        value: u64,
    },
}

/// The rule of the npy header grammar that a header breaks.
///
/// The header is a Python dictionary literal with exactly the keys
/// `'descr'`, `'fortran_order'` and `'shape'`; see [`crate::npy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderFault {
    /// The header contains a byte outside printable ASCII and whitespace.
    NotAscii,
    /// The header is not a `{...}` dictionary literal, or has a syntax error
    /// between entries.
    NotADict,
    /// A required key is absent.
    MissingKey(&'static str),
    /// A key appears twice.
    DuplicateKey(&'static str),
    /// A key other than `descr`, `fortran_order` or `shape` appears.
    UnknownKey,
    /// The `descr` value is not a plain string literal.
    BadDescr,
    /// The `shape` value is not a tuple of non-negative decimal integers.
    BadShape,
    /// The `fortran_order` value is not `True` or `False`.
    BadFortranOrder,
    /// Something other than whitespace follows the closing `}`.
    TrailingCharacters,
}

impl fmt::Display for HeaderFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAscii => f.write_str("header is not ASCII"),
            Self::NotADict => f.write_str("header is not a dictionary literal"),
            Self::MissingKey(key) => write!(f, "key {key:?} is missing"),
            Self::DuplicateKey(key) => write!(f, "key {key:?} appears twice"),
            Self::UnknownKey => f.write_str("unknown key"),
            Self::BadDescr => f.write_str("'descr' is not a string literal"),
            Self::BadShape => f.write_str("'shape' is not a tuple of non-negative integers"),
            Self::BadFortranOrder => f.write_str("'fortran_order' is not True or False"),
            Self::TrailingCharacters => f.write_str("characters after the closing brace"),
        }
    }
}

impl From<HeaderFault> for NpyErrorKind {
    fn from(reason: HeaderFault) -> Self {
        Self::MalformedHeader { reason }
    }
}

/// What is wrong with an index directory (see [`Error::Layout`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutFault {
    /// A new index was asked for in a directory that already holds something.
    #[error("the target directory is not empty")]
    TargetNotEmpty,
    /// There is no `manifest.json`.
    #[error("no manifest.json: not a plaid index")]
    NoManifest,
    /// The manifest is larger than any plaid writes.
    #[error("the manifest is too large")]
    ManifestTooLarge,
    /// The manifest is not valid JSON of the expected shape.
    #[error("malformed manifest at line {line}, column {column}")]
    BadManifest {
        /// 1-based line of the first problem.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The manifest's `format` is not `plaid-index`.
    #[error("the manifest is not a plaid index manifest")]
    NotAnIndex,
    /// The format version is not the one this library reads.
    #[error("format version {found} is not supported (this library reads version {expected})")]
    VersionMismatch {
        /// Version this library reads.
        expected: u32,
        /// Version found.
        found: u32,
    },
    /// `nbits` is not 1, 2 or 4.
    #[error("nbits {nbits} is not supported")]
    BadNbits {
        /// The value found.
        nbits: u8,
    },
    /// The code width does not match the number of centroids.
    #[error("code width of {code_bytes} bytes does not match the number of centroids")]
    BadCodeWidth {
        /// The value found.
        code_bytes: u8,
    },
    /// A file the index needs is not listed in the manifest, or its name is not plain.
    #[error("file {name:?} is not listed in the manifest or is not a plain name")]
    UnlistedFile {
        /// The name.
        name: String,
    },
    /// A listed file is missing.
    #[error("the file is missing")]
    MissingFile,
    /// A listed file's length differs from the manifest's record.
    #[error("the file has {found} bytes, the manifest records {expected}")]
    FileLength {
        /// Recorded length.
        expected: u64,
        /// Actual length.
        found: u64,
    },
    /// An entry of an array breaks an invariant of the format (found by
    /// opening or by [`crate::verify`]).
    #[error("entry {index} ({value}) breaks the rule: {what}")]
    BadEntry {
        /// The rule, for example "doc id (strictly ascending)".
        what: &'static str,
        /// Position of the entry in its array (or list).
        index: u64,
        /// The offending value.
        value: u64,
    },
    /// A listed file's CRC-32 differs from the manifest's record.
    #[error("the file's CRC-32 is {found:08x}, the manifest records {expected:08x}")]
    Checksum {
        /// Recorded CRC-32.
        expected: u32,
        /// CRC-32 of the file's bytes.
        found: u32,
    },
    /// Another writer (process or index handle) holds the index's write lock.
    #[error("another writer holds the index's write lock")]
    Locked,
    /// An array's shape disagrees with the manifest or another array.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// Which quantity.
        what: &'static str,
        /// Expected value.
        expected: usize,
        /// Found value.
        found: usize,
    },
}

/// Which per-chunk file of a next-plaid or fast-plaid index is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkPart {
    /// `doclens.{i}.json`, the token counts of the chunk's documents.
    Doclens,
    /// `{i}.codes.npy`, the centroid code of each token.
    Codes,
    /// `{i}.residuals.npy`, the packed residual of each token.
    Residuals,
}

impl fmt::Display for ChunkPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Doclens => "doclens",
            Self::Codes => "codes",
            Self::Residuals => "residuals",
        })
    }
}

/// What is wrong with a next-plaid or fast-plaid index being imported
/// (see [`Error::Import`], whose `path` names the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportFault {
    /// The source format could not be detected: nothing marks the directory
    /// as written by next-plaid or by fast-plaid.
    #[error(
        "not a recognised next-plaid or fast-plaid index (found: {}); name the source format explicitly",
        list(found)
    )]
    UnknownLayout {
        /// The names in the directory (sorted; at most 32, then a count).
        found: Vec<String>,
    },
    /// The directory carries marks of both next-plaid and fast-plaid (for
    /// example a fast-plaid index that next-plaid converted in place).
    #[error(
        "the layout is ambiguous: next-plaid marks ({}) and fast-plaid marks ({}); name the source format explicitly",
        list(next_plaid),
        list(fast_plaid)
    )]
    AmbiguousLayout {
        /// What points to next-plaid.
        next_plaid: Vec<Evidence>,
        /// What points to fast-plaid.
        fast_plaid: Vec<Evidence>,
    },
    /// A file every index has is missing.
    #[error("the file is missing")]
    MissingFile,
    /// A per-chunk file is missing (and no merged file can stand in for it).
    #[error("chunk {chunk}: the {part} file is missing")]
    MissingChunk {
        /// The chunk number.
        chunk: usize,
        /// Which file of the chunk.
        part: ChunkPart,
    },
    /// A JSON file does not parse.
    #[error("malformed JSON at line {line}, column {column}")]
    BadJson {
        /// 1-based line of the first problem.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A field of `metadata.json` is missing or has the wrong type.
    #[error("field {field:?} is missing or is not {expected}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `nbits` is not 1, 2 or 4 (next-plaid also allows 8, which plaid does not read).
    #[error("nbits {nbits} is not supported (plaid reads 1, 2 and 4)")]
    UnsupportedNbits {
        /// The value found.
        nbits: u64,
    },
    /// next-plaid 1.8's binary (sign-bit) indexes have no residual codec.
    #[error("binary (sign-bit) indexes cannot be imported: they have no residual codec")]
    BinaryIndex,
    /// A token count in a doclens file is negative or too large.
    #[error("document {index} has {value} tokens")]
    BadDoclen {
        /// Position of the document in the file.
        index: usize,
        /// The value.
        value: i64,
    },
    /// The doclens of a chunk do not add up to its number of codes.
    #[error(
        "chunk {chunk}: the doclens add up to {doclens_tokens} tokens but there are {codes} codes"
    )]
    DoclensMismatch {
        /// The chunk number.
        chunk: usize,
        /// Sum of the chunk's doclens.
        doclens_tokens: u64,
        /// Number of codes in the chunk's codes file.
        codes: u64,
    },
    /// A code names no centroid.
    #[error("code {code} at position {position} is out of range for {num_centroids} centroids")]
    CodeOutOfRange {
        /// Position of the code in the file.
        position: usize,
        /// The code.
        code: i64,
        /// Rows of `centroids.npy`.
        num_centroids: usize,
    },
    /// An array's shape disagrees with the index.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// Which quantity.
        what: &'static str,
        /// Expected value.
        expected: usize,
        /// Found value.
        found: usize,
    },
    /// A merged file has fewer rows than the index has tokens, or more
    /// padding rows than its longest document.
    #[error("{rows} rows for {tokens} tokens (at most {max_padding} padding rows allowed)")]
    MergedRows {
        /// Rows in the file.
        rows: usize,
        /// Tokens in the index (sum of all doclens).
        tokens: u64,
        /// The longest document's length.
        max_padding: u64,
    },
    /// A count recorded in `metadata.json` disagrees with the doclens files.
    #[error("{field} is {recorded} but the doclens files hold {found}")]
    CountMismatch {
        /// The field of `metadata.json`.
        field: &'static str,
        /// Its value.
        recorded: u64,
        /// What the doclens files add up to.
        found: u64,
    },
    /// More documents or tokens than a plaid index holds.
    #[error("{what}: {found} exceeds the limit of {limit}")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// The number found.
        found: u64,
        /// Largest supported.
        limit: u64,
    },
    /// The doclens files list no documents (plaid indexes are never empty).
    #[error("the index holds no documents")]
    NoDocuments,
    /// The output directory lies inside the source directory, which an
    /// import never writes to.
    #[error("the output directory is inside the source index, which is never written to")]
    OutputInsideSource,
}

/// `items` joined with ", ", or "nothing".
fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "nothing".to_string();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
