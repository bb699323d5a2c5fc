//! Memory-mapped files and npy arrays.
#![allow(clippy::unwrap_used)]
// Tests unwrap freely.
// Mapping is `unsafe`; these tests map files in their own temporary
// directories that nothing else touches.
#![allow(unsafe_code)]

use std::path::Path;

use half::f16;
use plaid_storage::mmap::{MappedFile, NpyMap};
use plaid_storage::npy::{DType, Element, npy_bytes, read_npy};
use plaid_storage::{Error, NpyErrorKind};

/// Maps the npy file at `path`.
fn open(path: &Path) -> Result<NpyMap, Error> {
    // SAFETY: the file lives in a test's private temporary directory and is
    // not modified while mapped.
    unsafe { NpyMap::open(path) }
}

/// Writes `data` as an npy file, maps it, and checks the mapped view against
/// the data and against the owned reader.
fn check_roundtrip<T: Element + PartialEq + std::fmt::Debug>(shape: &[usize], data: &[T]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    std::fs::write(&path, npy_bytes(shape, data).unwrap()).unwrap();
    let map = open(&path).unwrap();
    assert_eq!(map.dtype(), T::DTYPE);
    assert_eq!(map.shape(), shape);
    assert_eq!(map.len(), data.len());
    assert_eq!(map.as_slice::<T>().unwrap(), data);
    let owned = read_npy(&path).unwrap();
    assert_eq!(map.data_bytes(), owned.as_bytes());
}

/// Asserts that `result` is an npy error about `path` of the given kind.
fn assert_npy_error<T: std::fmt::Debug>(result: Result<T, Error>, path: &Path, kind: NpyErrorKind) {
    match result {
        Err(Error::Npy { path: p, kind: k }) => {
            assert_eq!(p, path);
            assert_eq!(k, kind);
        }
        other => panic!("expected {kind:?} for {}, got {other:?}", path.display()),
    }
}

#[test]
fn roundtrip_mapped_matches_owned() {
    check_roundtrip(&[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    check_roundtrip(&[3], &[f16::ONE, f16::MAX, f16::NEG_INFINITY]);
    check_roundtrip(&[2, 2], &[1.0f64, -0.0, f64::MIN, 4.0]);
    check_roundtrip(&[1, 1, 2], &[i32::MIN, 7]);
    check_roundtrip(&[2], &[i64::MIN, -1]);
    check_roundtrip(&[5], &[0u8, 1, 2, 254, 255]);
    check_roundtrip(&[1], &[u16::MAX]);
    check_roundtrip(&[], &[u32::MAX]);
    check_roundtrip(&[2], &[u64::MAX, 0]);
}

#[test]
fn maps_empty_array() {
    check_roundtrip::<f32>(&[0, 128], &[]);
    check_roundtrip::<u8>(&[0], &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.npy");
    std::fs::write(&path, npy_bytes::<i64>(&[0, 3], &[]).unwrap()).unwrap();
    let map = open(&path).unwrap();
    assert!(map.is_empty());
    assert_eq!(map.dims::<2>().unwrap(), [0, 3]);
    assert_eq!(map.as_slice::<i64>().unwrap(), &[] as &[i64]);
}

#[test]
fn maps_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    std::fs::write(&path, b"").unwrap();
    // SAFETY: private temporary file, not modified while mapped.
    let file = unsafe { MappedFile::map(&path) }.unwrap();
    assert_eq!(file.as_bytes(), b"");
    assert_eq!(file.path(), path);
    file.advise_random().unwrap();
    assert_npy_error(
        NpyMap::from_mapped(file),
        &path,
        NpyErrorKind::Truncated {
            expected: 10,
            found: 0,
        },
    );
}

#[test]
fn maps_bytes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bytes");
    let bytes: Vec<u8> = (0..=255).cycle().take(10_000).collect();
    std::fs::write(&path, &bytes).unwrap();
    // SAFETY: private temporary file, not modified while mapped.
    let file = unsafe { MappedFile::map(&path) }.unwrap();
    assert_eq!(file.as_bytes(), bytes.as_slice());
    file.advise_sequential().unwrap();
    file.advise_will_need().unwrap();
    file.advise_random().unwrap();
}

#[test]
fn rejects_misaligned_mapped_data() {
    // next-plaid 1.1.2 writes int64 arrays with the data at offset 129.
    let dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
    let mut file = b"\x93NUMPY\x01\x00\x77\x00".to_vec();
    file.extend_from_slice(dict.as_bytes());
    file.resize(128, b' ');
    file.push(b'\n');
    file.extend_from_slice(bytemuck::cast_slice(&[3i64, 4]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.npy");
    std::fs::write(&path, &file).unwrap();
    assert_npy_error(
        open(&path),
        &path,
        NpyErrorKind::Misaligned {
            offset: 129,
            align: 8,
        },
    );
    // The owned reader copies into aligned memory and accepts it.
    assert_eq!(read_npy(&path).unwrap().as_slice::<i64>().unwrap(), &[3, 4]);
}

#[test]
fn maps_unaligned_bytes() {
    // fast-plaid writes uint8 residuals with the data at offset 80: fine for
    // one-byte elements.
    let dict = "{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }";
    let mut file = b"\x93NUMPY\x01\x00\x46\x00".to_vec();
    file.extend_from_slice(dict.as_bytes());
    file.resize(79, b' ');
    file.push(b'\n');
    file.extend_from_slice(&[9, 8, 7]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("residuals.npy");
    std::fs::write(&path, &file).unwrap();
    let map = open(&path).unwrap();
    assert_eq!(map.header().data_offset, 80);
    assert_eq!(map.as_slice::<u8>().unwrap(), &[9, 8, 7]);
}

#[test]
fn rejects_wrong_dtype_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.npy");
    std::fs::write(&path, npy_bytes(&[2], &[1.0f32, 2.0]).unwrap()).unwrap();
    let map = open(&path).unwrap();
    assert_npy_error(
        map.as_slice::<i32>(),
        &path,
        NpyErrorKind::DtypeMismatch {
            expected: DType::I32,
            found: DType::F32,
        },
    );
    assert_npy_error(
        map.dims::<3>(),
        &path,
        NpyErrorKind::RankMismatch {
            expected: 3,
            found: 1,
        },
    );
}

#[test]
fn rejects_truncated_mapped_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.npy");
    let file = npy_bytes(&[4], &[1u16, 2, 3, 4]).unwrap();
    std::fs::write(&path, &file[..file.len() - 2]).unwrap();
    assert_npy_error(
        open(&path),
        &path,
        NpyErrorKind::Truncated {
            expected: file.len() as u64,
            found: file.len() as u64 - 2,
        },
    );
}

#[test]
fn rejects_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.npy");
    match open(&path) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
