//! Low-level storage for plaid indexes: strict npy files, memory maps and
//! crash-safe writes.
//!
//! # Should I be using this crate?
//!
//! Probably not directly. Application authors want the `plaid` facade, which
//! opens, builds and searches indexes and re-exports this crate as
//! `plaid::storage`. Use `plaid-storage` on its own to read or write
//! individual index files, or to build tools that inspect them.
//!
//! This crate is the only one in the workspace that touches the filesystem.
//! It hands out borrowed slices and typed views; it knows nothing about
//! searching.
//!
//! # Modules
//!
//! - [`npy`]: a strict reader and writer for NumPy `.npy` files (versions
//!   1.0, 2.0 and 3.0; little-endian `f16`/`f32`/`f64`/`i32`/`i64`/`u8`/`u16`/
//!   `u32`/`u64`, C order). Decoders never panic and never allocate what a
//!   header claims before checking it against the real length.
//! - [`mmap`]: read-only memory maps (`unsafe` constructors with a stated
//!   contract, safe typed views afterwards).
//! - [`atomic`]: write-to-temporary, sync, rename, sync-directory commits,
//!   and streaming CRC-32 of files.
//! - [`layout`] and [`manifest`]: plaid index directories.
//! - [`import`]: reading next-plaid and fast-plaid indexes (read-only) and
//!   writing them as plaid indexes.
//! - [`live`]: changing a committed index: the write lock, commits that add,
//!   replace or remove segments and record deletions, and cleanup of files
//!   left by interrupted commits.
//! - [`verify`]: checking every invariant of an index directory.
//!
//! # Example
//!
//! ```
//! use plaid_storage::atomic::write_npy_atomic;
//! use plaid_storage::npy::{DType, read_npy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! write_npy_atomic(dir.path(), "x.npy", &[2, 3], &data)?;
//!
//! let array = read_npy(&dir.path().join("x.npy"))?;
//! assert_eq!(array.dtype(), DType::F32);
//! assert_eq!(array.dims::<2>()?, [2, 3]);
//! assert_eq!(array.as_slice::<f32>()?, &data);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! None.

// Unsafe code is denied, and allowed again only in `mmap`, which needs it to
// create memory maps. (`forbid` could not be relaxed there.)
#![deny(unsafe_code)]

// On-disk data is little-endian and is viewed in place (`as_slice`, `NpyMap`),
// which is only correct on little-endian hosts.
#[cfg(target_endian = "big")]
compile_error!("plaid-storage views little-endian files in place and needs a little-endian target");

pub mod atomic;
mod derived;
mod error;
pub mod import;
pub mod layout;
pub mod live;
pub mod manifest;
#[allow(unsafe_code)] // Memory maps cannot be created without `unsafe`.
pub mod mmap;
pub mod npy;
pub mod verify;

pub use error::{ChunkPart, Error, HeaderFault, ImportFault, LayoutFault, NpyErrorKind};
