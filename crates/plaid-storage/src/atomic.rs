//! Crash-safe file writes.
//!
//! A file is written under a temporary name in its final directory, flushed
//! and synced to disk, renamed over its final name, and then the directory is
//! synced so the rename itself is durable. A reader (or a crash) therefore
//! sees either the complete old file or the complete new one, never a mix,
//! and existing memory maps of the old file stay valid.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;
use crate::npy::{Element, check_count, encode_header};

/// Distinguishes temporary files of concurrent writes within one process.
///
/// Only affects temporary file names, never what ends up on disk.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many temporary names to try before giving up, should stale temporary
/// files from a crashed process with the same pid be in the way.
const TEMP_ATTEMPTS: u32 = 16;

/// Removes the temporary file on drop unless disarmed: on error, on early
/// return and on panic in the caller's write closure.
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: the original error matters more than a failed cleanup.
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes the file `dir/name` atomically and durably; returns its length in
/// bytes.
///
/// `write` receives a buffered writer on a new temporary file
/// `dir/.{name}.tmp-{pid}-{counter}` (created with `create_new`, so nothing is
/// ever overwritten). Afterwards the writer is flushed, the file synced
/// (`sync_all`), renamed over `dir/name`, and `dir` synced ([`fsync_dir`]).
///
/// If `write` or any step before the rename fails (or `write` panics), the
/// temporary file is removed and `dir/name` is untouched.
///
/// # Errors
///
/// - [`Error::InvalidFileName`] if `name` is not a single plain path component.
/// - [`Error::Io`] naming `dir/name` if `write`, the flush, the sync or the
///   rename fails, naming the temporary file if it cannot be created, and
///   naming `dir` if syncing the directory fails. In the last case `dir/name`
///   already holds the new contents but the rename may not survive a crash.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<u64, Error> {
    check_name(name)?;
    let target = dir.join(name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };

    let (temp_path, file) = create_temp(dir, name)?;
    let mut guard = TempGuard {
        path: Some(temp_path.clone()),
    };
    let mut writer = BufWriter::new(file);
    write(&mut writer).map_err(io(&target))?;
    let file = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io(&target))?;
    file.sync_all().map_err(io(&target))?;
    let len = file.metadata().map_err(io(&target))?.len();
    drop(file);
    fs::rename(&temp_path, &target).map_err(io(&target))?;
    guard.path = None;
    fsync_dir(dir)?;
    Ok(len)
}

/// Creates a fresh temporary file for `name` in `dir`.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), Error> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.tmp-{pid}-{counter}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
}

/// Rejects names that are not a single plain path component.
fn check_name(name: &str) -> Result<(), Error> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name() == Some(name.as_ref());
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidFileName {
            name: name.to_owned(),
        })
    }
}

/// Syncs the directory `dir`, making renames and file creations in it durable.
///
/// On Unix this opens the directory and calls `fsync` on it; failures are
/// reported. Other platforms (Windows) cannot open a directory as a file to
/// sync it, and this function does nothing there.
///
/// # Errors
///
/// [`Error::Io`] naming `dir` if it cannot be opened or synced.
pub fn fsync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Writes `data` with the given `shape` as the npy file `dir/name`,
/// atomically (see [`write_atomic`]); returns the file's length in bytes.
///
/// The data starts at a multiple of 64 bytes, so the file can be mapped with
/// [`crate::mmap::NpyMap`].
///
/// # Errors
///
/// - [`Error::Npy`] naming `dir/name` with
///   [`NpyErrorKind::ElementCount`](crate::NpyErrorKind::ElementCount) if the
///   product of `shape` is not `data.len()`, or the errors of
///   [`encode_header`]; nothing is written then.
/// - The errors of [`write_atomic`].
pub fn write_npy_atomic<T: Element>(
    dir: &Path,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> Result<u64, Error> {
    check_name(name)?;
    let npy = |kind| Error::Npy {
        path: dir.join(name),
        kind,
    };
    check_count(shape, data.len()).map_err(npy)?;
    let header = encode_header(T::DTYPE, shape).map_err(npy)?;
    write_atomic(dir, name, |w| {
        w.write_all(&header)?;
        w.write_all(bytemuck::cast_slice(data))
    })
}

/// The CRC-32 (IEEE, as `crc32fast` and zlib compute it) of the file at
/// `path`, read in 64 KiB chunks.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be opened or read.
pub fn crc32_of_file(path: &Path) -> Result<u32, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
}
