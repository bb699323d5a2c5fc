//! Reading npy files into owned, aligned memory.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytemuck::{Pod, Zeroable};
use half::slice::HalfFloatSliceExt;

use super::header::{check_len, parse_header, preamble};
use super::{DATA_ALIGN, DType, Element, NpyHeader, dims};
use crate::{Error, NpyErrorKind};

/// One 64-byte, 64-aligned unit of an [`NpyArray`]'s buffer.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct AlignedBlock([u8; DATA_ALIGN]);

/// An npy array read into memory.
///
/// The data lives in a buffer aligned to 64 bytes, so it can be viewed as a
/// slice of any [`Element`] type without copying, whatever the data offset
/// in the file was.
#[derive(Clone)]
pub struct NpyArray {
    dtype: DType,
    shape: Vec<usize>,
    blocks: Vec<AlignedBlock>,
    len_bytes: usize,
}

impl fmt::Debug for NpyArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NpyArray")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("len_bytes", &self.len_bytes)
            .finish_non_exhaustive()
    }
}

impl NpyArray {
    /// A zeroed array for `header`, whose data length has been checked.
    fn zeroed(header: NpyHeader, len_bytes: usize) -> Self {
        let blocks = vec![AlignedBlock::zeroed(); len_bytes.div_ceil(DATA_ALIGN)];
        Self {
            dtype: header.dtype,
            shape: header.shape,
            blocks,
            len_bytes,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let all: &mut [u8] = bytemuck::cast_slice_mut(&mut self.blocks);
        // `blocks` holds `len_bytes` rounded up to whole blocks.
        &mut all[..self.len_bytes]
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dimensions, outermost first (C order).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The shape as an array of exactly `N` dimensions.
    ///
    /// # Errors
    ///
    /// [`NpyErrorKind::RankMismatch`] if the array's rank is not `N`.
    pub fn dims<const N: usize>(&self) -> Result<[usize; N], NpyErrorKind> {
        dims(&self.shape)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        // The length was checked to be a whole number of elements.
        self.len_bytes / self.dtype.itemsize()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    /// The raw little-endian data bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let all: &[u8] = bytemuck::cast_slice(&self.blocks);
        &all[..self.len_bytes]
    }

    /// The data as a slice of `T`, without copying.
    ///
    /// # Errors
    ///
    /// [`NpyErrorKind::DtypeMismatch`] if the array does not hold `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], NpyErrorKind> {
        if T::DTYPE != self.dtype {
            return Err(NpyErrorKind::DtypeMismatch {
                expected: T::DTYPE,
                found: self.dtype,
            });
        }
        // Cannot fail: the buffer is 64-aligned and its length a whole number
        // of `T`; report it as misalignment rather than panic if it ever did.
        bytemuck::try_cast_slice(self.as_bytes()).map_err(|_| NpyErrorKind::Misaligned {
            offset: 0,
            align: std::mem::align_of::<T>(),
        })
    }

    /// The data converted to `f32`: exact for F16 and F32, rounded for F64.
    ///
    /// # Errors
    ///
    /// [`NpyErrorKind::DtypeMismatch`] (with `expected: F32`) if the array
    /// does not hold floats.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, NpyErrorKind> {
        match self.dtype {
            DType::F16 => {
                let halves = self.as_slice::<half::f16>()?;
                let mut out = vec![0.0; halves.len()];
                halves.convert_to_f32_slice(&mut out);
                Ok(out)
            }
            DType::F32 => Ok(self.as_slice::<f32>()?.to_vec()),
            DType::F64 => Ok(self.as_slice::<f64>()?.iter().map(|&x| x as f32).collect()),
            found => Err(NpyErrorKind::DtypeMismatch {
                expected: DType::F32,
                found,
            }),
        }
    }

    /// The data converted to `i64`, exactly.
    ///
    /// # Errors
    ///
    /// - [`NpyErrorKind::DtypeMismatch`] (with `expected: I64`) if the array
    ///   holds floats.
    /// - [`NpyErrorKind::ValueOutOfRange`] if a U64 value exceeds `i64::MAX`.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, NpyErrorKind> {
        fn widen<T: Element + Into<i64>>(a: &NpyArray) -> Result<Vec<i64>, NpyErrorKind> {
            Ok(a.as_slice::<T>()?.iter().map(|&x| x.into()).collect())
        }
        match self.dtype {
            DType::I32 => widen::<i32>(self),
            DType::I64 => Ok(self.as_slice::<i64>()?.to_vec()),
            DType::U8 => widen::<u8>(self),
            DType::U16 => widen::<u16>(self),
            DType::U32 => widen::<u32>(self),
            DType::U64 => self
                .as_slice::<u64>()?
                .iter()
                .enumerate()
                .map(|(index, &value)| {
                    i64::try_from(value).map_err(|_| NpyErrorKind::ValueOutOfRange { index, value })
                })
                .collect(),
            found => Err(NpyErrorKind::DtypeMismatch {
                expected: DType::I64,
                found,
            }),
        }
    }
}

/// Parses a whole npy file held in memory and copies its data into an
/// aligned buffer.
///
/// Never panics, and allocates at most `bytes.len()` for the data whatever
/// the header claims.
///
/// # Errors
///
/// The errors of [`parse_header`] and [`check_len`] (with `bytes.len()` as
/// the file length).
pub fn read_npy_from_bytes(bytes: &[u8]) -> Result<NpyArray, NpyErrorKind> {
    let header = parse_header(bytes)?;
    check_len(&header, bytes.len() as u64)?;
    let data = bytes
        .get(header.data_offset..)
        .ok_or(NpyErrorKind::Truncated {
            expected: header.data_offset as u64,
            found: bytes.len() as u64,
        })?;
    let mut array = NpyArray::zeroed(header, data.len());
    array.bytes_mut().copy_from_slice(data);
    Ok(array)
}

/// Reads the npy file at `path` into memory.
///
/// The preamble and header are read and validated against the file's length
/// (from its metadata) before the data buffer is allocated, so the buffer is
/// never larger than the file, whatever the header claims.
///
/// # Errors
///
/// - [`Error::Io`] if the file cannot be opened or read, or changes length
///   while being read.
/// - [`Error::Npy`] with the errors of [`parse_header`] and [`check_len`].
pub fn read_npy(path: &Path) -> Result<NpyArray, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let npy = |kind| Error::Npy {
        path: path.to_path_buf(),
        kind,
    };
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();

    let mut head = [0u8; 12];
    // At most 12, so the cast is lossless.
    let head_len = file_len.min(head.len() as u64) as usize;
    file.read_exact(&mut head[..head_len]).map_err(io)?;
    let (start, len) = preamble(&head[..head_len]).map_err(npy)?;
    // Bounded by MAX_HEADER_LEN + 12.
    let data_offset = start + len;
    if data_offset as u64 > file_len {
        return Err(npy(NpyErrorKind::Truncated {
            expected: data_offset as u64,
            found: file_len,
        }));
    }
    let mut header_bytes = vec![0u8; data_offset];
    // A version 1.0 header can end before the 12 bytes already read.
    let have = head_len.min(data_offset);
    header_bytes[..have].copy_from_slice(&head[..have]);
    if data_offset > have {
        file.read_exact(&mut header_bytes[have..]).map_err(io)?;
    }
    let header = parse_header(&header_bytes).map_err(npy)?;
    check_len(&header, file_len).map_err(npy)?;

    // check_len proved data_offset + data length == file_len and that the
    // data length fits in usize.
    let data_len = header.data_len_bytes().map_err(npy)? as usize;
    let mut array = NpyArray::zeroed(header, data_len);
    file.seek(SeekFrom::Start(data_offset as u64)).map_err(io)?;
    file.read_exact(array.bytes_mut()).map_err(io)?;
    Ok(array)
}
