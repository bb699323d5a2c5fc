//! Reading inputs and writing outputs for the CLI.

use anyhow::{Context, Result, bail};
use plaid::storage::npy;
use std::path::Path;

/// A `[rows, dim]` float matrix from a float16/float32 npy file.
pub(crate) fn read_matrix(path: &Path) -> Result<(Vec<f32>, usize)> {
    let arr = npy::read_npy(path)?;
    let shape = arr.shape().to_vec();
    if shape.len() != 2 {
        bail!(
            "{}: expected a 2-D array [rows, dim], found shape {:?}",
            path.display(),
            shape
        );
    }
    let data = arr
        .to_f32_vec()
        .map_err(|kind| plaid::storage::Error::Npy {
            path: path.to_path_buf(),
            kind,
        })?;
    Ok((data, shape[1]))
}

/// A 1-D array of non-negative lengths from an int32/int64 npy file.
pub(crate) fn read_lengths(path: &Path) -> Result<Vec<usize>> {
    let arr = npy::read_npy(path)?;
    if arr.shape().len() != 1 {
        bail!(
            "{}: expected a 1-D array of lengths, found shape {:?}",
            path.display(),
            arr.shape()
        );
    }
    let v = arr
        .to_i64_vec()
        .map_err(|kind| plaid::storage::Error::Npy {
            path: path.to_path_buf(),
            kind,
        })?;
    v.iter()
        .enumerate()
        .map(|(i, &l)| {
            usize::try_from(l)
                .with_context(|| format!("{}: entry {i} is negative ({l})", path.display()))
        })
        .collect()
}

/// One JSON value per non-empty line (the `--metadata` files of `index` and
/// `add`).
pub(crate) fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}", path.display(), i + 1))
        })
        .collect()
}

/// Writes an npy file (plainly: outputs are not part of an index).
pub(crate) fn write_array<T: npy::Element>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = npy::npy_bytes(shape, data).with_context(|| format!("{}", path.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Peak resident set size of this process in KiB (VmHWM), where the OS reports it.
pub(crate) fn peak_rss_kb() -> Option<u64> {
    status_kb("VmHWM:")
}

/// A KiB field of `/proc/self/status` (for example `RssAnon:`: memory the
/// process allocated, as opposed to `RssFile:`, pages of mapped files such
/// as an index), where the OS reports it.
pub(crate) fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Total bytes of the regular files in `dir` (not recursive).
pub(crate) fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let m = e?.metadata()?;
        if m.is_file() {
            total += m.len();
        }
    }
    Ok(total)
}
