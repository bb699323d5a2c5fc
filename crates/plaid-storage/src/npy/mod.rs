//! A strict reader and writer for NumPy's `.npy` format.
//!
//! # What is accepted
//!
//! The format is specified by NumPy (`numpy.lib.format`). A file is:
//!
//! ```text
//! ┌────────────┬───────┬───────┬────────────┬──────────────────┬──────────┐
//! │ \x93NUMPY  │ major │ minor │ HEADER_LEN │ header dict + \n │ data ... │
//! │ 6 bytes    │ u8    │ u8    │ u16 or u32 │ HEADER_LEN bytes │          │
//! └────────────┴───────┴───────┴────────────┴──────────────────┴──────────┘
//! ```
//!
//! - Versions 1.0 (`HEADER_LEN` is a little-endian `u16`), 2.0 and 3.0
//!   (`u32`) are read. The writer emits 1.0 unless the header needs more
//!   than 65535 bytes, then 2.0.
//! - `HEADER_LEN` is capped at [`MAX_HEADER_LEN`]; the header must be ASCII.
//! - The header is a Python dictionary literal with exactly the keys
//!   `'descr'`, `'fortran_order'` and `'shape'` in any order, with optional
//!   trailing comma and whitespace padding (see [`HeaderFault`] for the rules).
//! - `descr` must be one of the little-endian descriptors of [`DType`]
//!   (`'|u1'` and `'<u1'` both mean [`DType::U8`]); anything else, including
//!   big-endian, object and structured dtypes, is rejected.
//! - `fortran_order` must be `False`.
//! - `shape` is a tuple of non-negative decimal integers (`()`, `(3,)`,
//!   `(3, 2)`, `(3,2,)`); Python 2's `3L` suffix is tolerated.
//! - The file must hold exactly `product(shape) × itemsize` bytes after the
//!   header: [`check_len`] verifies this with checked arithmetic before any
//!   data buffer is allocated, so a header cannot make the reader allocate
//!   more than the file's real length.
//!
//! The writer pads the header with spaces and a final `\n` so that the data
//! starts at a multiple of [`DATA_ALIGN`] (64) bytes, which lets
//! [`crate::mmap::NpyMap`] view it in place. Readers accept any data offset;
//! only the memory-mapped path requires the offset to be a multiple of the
//! element's alignment.
//!
//! Multi-byte elements are little-endian on disk and are viewed in place, so
//! this crate only builds for little-endian targets.
//!
//! [`HeaderFault`]: crate::HeaderFault

mod header;
mod read;
mod write;

use std::fmt;

use crate::NpyErrorKind;

pub use header::{check_len, parse_header};
pub use read::{NpyArray, read_npy, read_npy_from_bytes};
pub(crate) use write::check_count;
pub use write::{encode_header, npy_bytes, write_npy};

/// The magic string every npy file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The largest `HEADER_LEN` the reader accepts, in bytes (1 MiB).
///
/// NumPy never writes headers longer than a few hundred bytes for arrays of
/// sane rank; the cap bounds the memory a hostile header can make the reader
/// use before the file's length has been checked.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// The alignment, in bytes, of the data offset in files this crate writes.
pub const DATA_ALIGN: usize = 64;

/// The element types this crate reads and writes, all little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// IEEE 754 half precision, `'<f2'`.
    F16,
    /// IEEE 754 single precision, `'<f4'`.
    F32,
    /// IEEE 754 double precision, `'<f8'`.
    F64,
    /// Signed 32-bit integer, `'<i4'`.
    I32,
    /// Signed 64-bit integer, `'<i8'`.
    I64,
    /// Signed byte, `'|i1'` (also read as `'<i1'`).
    I8,
    /// Unsigned byte, `'|u1'` (also read as `'<u1'`).
    U8,
    /// Unsigned 16-bit integer, `'<u2'`.
    U16,
    /// Unsigned 32-bit integer, `'<u4'`.
    U32,
    /// Unsigned 64-bit integer, `'<u8'`.
    U64,
}

impl DType {
    /// The descriptor the writer puts in the header, for example `"<f4"`.
    pub fn descr(self) -> &'static str {
        match self {
            Self::F16 => "<f2",
            Self::F32 => "<f4",
            Self::F64 => "<f8",
            Self::I32 => "<i4",
            Self::I64 => "<i8",
            Self::I8 => "|i1",
            Self::U8 => "|u1",
            Self::U16 => "<u2",
            Self::U32 => "<u4",
            Self::U64 => "<u8",
        }
    }

    /// The type a header descriptor names, or `None` if it is not supported.
    ///
    /// Both `"|u1"` and `"<u1"` map to [`DType::U8`] (and `"|i1"`/`"<i1"` to [`DType::I8`]); big-endian (`">f4"`),
    /// native-order (`"=f4"`) and all other descriptors give `None`.
    pub fn from_descr(descr: &[u8]) -> Option<Self> {
        Some(match descr {
            b"<f2" => Self::F16,
            b"<f4" => Self::F32,
            b"<f8" => Self::F64,
            b"<i4" => Self::I32,
            b"<i8" => Self::I64,
            b"|i1" | b"<i1" => Self::I8,
            b"|u1" | b"<u1" => Self::U8,
            b"<u2" => Self::U16,
            b"<u4" => Self::U32,
            b"<u8" => Self::U64,
            _ => return None,
        })
    }

    /// Size of one element in bytes (also its alignment).
    pub fn itemsize(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::F16 | Self::U16 => 2,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::I8 => "i8",
            Self::U8 => "u8",
            Self::U16 => "u16",
            Self::U32 => "u32",
            Self::U64 => "u64",
        })
    }
}

mod sealed {
    /// Keeps [`super::Element`] implemented for exactly the types [`super::DType`] names.
    #[allow(unreachable_pub)] // Public in a private module: the sealed-trait pattern.
    pub trait Sealed {}
}

/// A Rust type that is stored in npy files as one [`DType`].
///
/// Implemented for `half::f16`, `f32`, `f64`, `i32`, `i64`, `i8`, `u8`, `u16`,
/// `u32` and `u64`; sealed, so that `DTYPE` always describes the type's bytes.
pub trait Element: bytemuck::Pod + sealed::Sealed {
    /// The element type this Rust type is stored as.
    const DTYPE: DType;
}

macro_rules! element {
    ($($ty:ty => $dtype:ident),* $(,)?) => {$(
        impl sealed::Sealed for $ty {}
        impl Element for $ty {
            const DTYPE: DType = DType::$dtype;
        }
    )*};
}

element! {
    half::f16 => F16,
    f32 => F32,
    f64 => F64,
    i32 => I32,
    i64 => I64,
    i8 => I8,
    u8 => U8,
    u16 => U16,
    u32 => U32,
    u64 => U64,
}

/// A parsed and validated npy header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: DType,
    /// The dimensions, outermost first (C order). Empty for a 0-d array.
    pub shape: Vec<usize>,
    /// Byte offset of the first data byte: preamble plus `HEADER_LEN`.
    pub data_offset: usize,
}

impl NpyHeader {
    /// The number of elements, the product of the shape.
    ///
    /// # Errors
    ///
    /// [`NpyErrorKind::ShapeOverflow`] if the product overflows `u64`.
    pub fn num_elements(&self) -> Result<u64, NpyErrorKind> {
        num_elements(&self.shape)
    }

    /// The length of the data in bytes, `num_elements × itemsize`.
    ///
    /// # Errors
    ///
    /// [`NpyErrorKind::ShapeOverflow`] if it overflows `u64` or `usize`.
    pub fn data_len_bytes(&self) -> Result<u64, NpyErrorKind> {
        let len = self
            .num_elements()?
            .checked_mul(self.dtype.itemsize() as u64)
            .ok_or(NpyErrorKind::ShapeOverflow)?;
        usize::try_from(len).map_err(|_| NpyErrorKind::ShapeOverflow)?;
        Ok(len)
    }

    /// The shape as an array of exactly `N` dimensions.
    ///
    /// # Errors
    ///
    /// [`NpyErrorKind::RankMismatch`] if the array's rank is not `N`.
    pub fn dims<const N: usize>(&self) -> Result<[usize; N], NpyErrorKind> {
        dims(&self.shape)
    }
}

/// The product of `shape`, 0 if any dimension is 0.
pub(crate) fn num_elements(shape: &[usize]) -> Result<u64, NpyErrorKind> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape.iter().try_fold(1u64, |acc, &dim| {
        acc.checked_mul(dim as u64)
            .ok_or(NpyErrorKind::ShapeOverflow)
    })
}

/// `shape` as a fixed-size array, or [`NpyErrorKind::RankMismatch`].
pub(crate) fn dims<const N: usize>(shape: &[usize]) -> Result<[usize; N], NpyErrorKind> {
    <[usize; N]>::try_from(shape).map_err(|_| NpyErrorKind::RankMismatch {
        expected: N,
        found: shape.len(),
    })
}
