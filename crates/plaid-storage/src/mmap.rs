//! Read-only memory maps of committed files.
//!
//! This is the only module of the crate allowed to use `unsafe`: mapping a
//! file is unsafe because the mapped bytes change, or become inaccessible
//! (`SIGBUS` on Unix), if another process modifies or truncates the file
//! while it is mapped. The constructors are therefore `unsafe fn`s whose
//! callers promise that this does not happen; everything after construction
//! is safe. Plaid never modifies a committed file in place: new contents are
//! written to a new file and renamed over the old one
//! ([`crate::atomic::write_atomic`]), which leaves existing maps of the old
//! file intact.
//!
//! Callers that cannot make that promise should use
//! [`crate::npy::read_npy`], which reads into memory.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::npy::{DType, Element, NpyHeader, check_len, parse_header};
use crate::{Error, NpyErrorKind};

/// A file mapped read-only into memory.
pub struct MappedFile {
    path: PathBuf,
    /// `None` for an empty file, which is not mapped (mapping zero bytes is an
    /// error on some platforms).
    map: Option<Mmap>,
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("len", &self.as_bytes().len())
            .finish()
    }
}

impl MappedFile {
    /// Maps the file at `path` read-only.
    ///
    /// An empty file gives an empty slice without calling `mmap`.
    ///
    /// # Safety
    ///
    /// The caller promises that, for as long as the returned value (or
    /// anything borrowed from it) lives, the file is neither modified nor
    /// truncated, by this process or any other. Plaid upholds this for the
    /// files of a committed index: they are never written in place, only
    /// replaced by renaming a new file over them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be opened, its metadata read, or the
    /// map created.
    pub unsafe fn map(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the caller promised (see `# Safety`) that the file is not
            // modified or truncated while mapped; we only pass that promise on.
            // The map is read-only, so we never write through it.
            Some(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
        })
    }

    /// The path the file was mapped from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Hints that the map will be read in random order (`MADV_RANDOM`), which
    /// disables read-ahead. A no-op on non-Unix platforms and empty files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel rejects the hint.
    pub fn advise_random(&self) -> Result<(), Error> {
        self.advise(Hint::Random)
    }

    /// Hints that the map will be read sequentially (`MADV_SEQUENTIAL`).
    /// A no-op on non-Unix platforms and empty files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel rejects the hint.
    pub fn advise_sequential(&self) -> Result<(), Error> {
        self.advise(Hint::Sequential)
    }

    /// Hints that the whole map will be needed soon (`MADV_WILLNEED`), which
    /// starts reading it in. A no-op on non-Unix platforms and empty files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel rejects the hint.
    pub fn advise_will_need(&self) -> Result<(), Error> {
        self.advise(Hint::WillNeed)
    }

    #[cfg(unix)]
    fn advise(&self, hint: Hint) -> Result<(), Error> {
        use memmap2::Advice;
        let Some(map) = &self.map else {
            return Ok(());
        };
        let advice = match hint {
            Hint::Random => Advice::Random,
            Hint::Sequential => Advice::Sequential,
            Hint::WillNeed => Advice::WillNeed,
        };
        map.advise(advice).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    #[cfg(not(unix))]
    fn advise(&self, _hint: Hint) -> Result<(), Error> {
        Ok(())
    }
}

/// An access-pattern hint, mapped to `memmap2::Advice` on Unix.
#[derive(Clone, Copy)]
enum Hint {
    Random,
    Sequential,
    WillNeed,
}

/// A memory-mapped npy file whose header has been parsed and checked.
///
/// Guarantees, established by [`NpyMap::open`] and [`NpyMap::from_mapped`]:
/// the file is exactly header plus `product(shape) × itemsize` bytes, and the
/// data offset is a multiple of the element's alignment, so
/// [`NpyMap::as_slice`] views the data in place without copying.
#[derive(Debug)]
pub struct NpyMap {
    file: MappedFile,
    header: NpyHeader,
}

impl NpyMap {
    /// Maps the npy file at `path` and validates it.
    ///
    /// # Safety
    ///
    /// The same promise as [`MappedFile::map`]: the file is neither modified
    /// nor truncated while the returned value (or anything borrowed from it)
    /// lives.
    ///
    /// # Errors
    ///
    /// The errors of [`MappedFile::map`] and [`NpyMap::from_mapped`].
    pub unsafe fn open(path: &Path) -> Result<Self, Error> {
        // SAFETY: the caller makes the promise `MappedFile::map` needs (see
        // `# Safety` above, which repeats it).
        let file = unsafe { MappedFile::map(path) }?;
        Self::from_mapped(file)
    }

    /// Validates the npy file held by an existing map.
    ///
    /// # Errors
    ///
    /// [`Error::Npy`] with the errors of [`parse_header`] and [`check_len`],
    /// or [`NpyErrorKind::Misaligned`] if the data offset is not a multiple of
    /// the element's alignment. Files written by [`crate::npy::write_npy`]
    /// and by NumPy start their data at a multiple of 64.
    pub fn from_mapped(file: MappedFile) -> Result<Self, Error> {
        let npy = |kind| Error::Npy {
            path: file.path.clone(),
            kind,
        };
        let bytes = file.as_bytes();
        let header = parse_header(bytes).map_err(npy)?;
        check_len(&header, bytes.len() as u64).map_err(npy)?;
        let align = header.dtype.itemsize();
        if !header.data_offset.is_multiple_of(align) {
            return Err(npy(NpyErrorKind::Misaligned {
                offset: header.data_offset,
                align,
            }));
        }
        Ok(Self { file, header })
    }

    /// The path the file was mapped from.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The parsed header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.header.dtype
    }

    /// The dimensions, outermost first (C order).
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// The shape as an array of exactly `N` dimensions.
    ///
    /// # Errors
    ///
    /// [`Error::Npy`] with [`NpyErrorKind::RankMismatch`] if the rank is not `N`.
    pub fn dims<const N: usize>(&self) -> Result<[usize; N], Error> {
        self.header.dims().map_err(|kind| self.npy_error(kind))
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data_bytes().len() / self.header.dtype.itemsize()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data_bytes().is_empty()
    }

    /// The raw little-endian data bytes (the file after the header).
    pub fn data_bytes(&self) -> &[u8] {
        // Validated in `from_mapped`: data_offset <= file length.
        self.file
            .as_bytes()
            .get(self.header.data_offset..)
            .unwrap_or(&[])
    }

    /// The data as a slice of `T`, in place.
    ///
    /// # Errors
    ///
    /// [`Error::Npy`] with [`NpyErrorKind::DtypeMismatch`] if the file does
    /// not hold `T`, or [`NpyErrorKind::Misaligned`] if the mapped data is not
    /// aligned for `T` (impossible for a map created by this module, which
    /// starts on a page boundary, once `from_mapped` checked the offset).
    pub fn as_slice<T: Element>(&self) -> Result<&[T], Error> {
        if T::DTYPE != self.header.dtype {
            return Err(self.npy_error(NpyErrorKind::DtypeMismatch {
                expected: T::DTYPE,
                found: self.header.dtype,
            }));
        }
        bytemuck::try_cast_slice(self.data_bytes()).map_err(|_| {
            self.npy_error(NpyErrorKind::Misaligned {
                offset: self.header.data_offset,
                align: std::mem::align_of::<T>(),
            })
        })
    }

    /// The underlying map, for example to give access hints.
    pub fn mapped_file(&self) -> &MappedFile {
        &self.file
    }

    fn npy_error(&self, kind: NpyErrorKind) -> Error {
        Error::Npy {
            path: self.file.path.clone(),
            kind,
        }
    }
}

/// Opens the plaid index at `dir`, memory-mapping its per-token arrays
/// (codes, residuals, inverted lists) and reading the small ones.
///
/// This function is safe to call because of an invariant of the plaid
/// format, not of the operating system: plaid never modifies or truncates a
/// file after the manifest lists it (every commit writes new files and
/// replaces the manifest by rename), so the mapped bytes cannot change under
/// a plaid reader. Other programs that modify an index's files while it is
/// open break that invariant; ARCHITECTURE.md records it, and
/// [`crate::layout::open_in_memory`] is the alternative that maps nothing.
///
/// # Errors
/// As [`crate::layout::open_with`].
pub fn open_index(dir: &Path) -> Result<crate::layout::OpenedIndex, Error> {
    open_index_reusing(dir, None)
}

/// [`open_index`], reusing what `previous` derived at open for unchanged
/// segments (see [`crate::layout::open_reusing`]).
///
/// # Errors
/// As [`open_index`].
pub fn open_index_reusing(
    dir: &Path,
    previous: Option<&crate::layout::OpenedIndex>,
) -> Result<crate::layout::OpenedIndex, Error> {
    crate::layout::open_reusing(
        dir,
        &|path: &Path| {
            // SAFETY: `path` is a file listed in a committed manifest, which plaid
            // never modifies or truncates (see this function's docs and the
            // "Unsafe" section of ARCHITECTURE.md).
            let map = unsafe { NpyMap::open(path) }?;
            Ok(crate::layout::Backing::Mapped(map))
        },
        previous,
    )
}
