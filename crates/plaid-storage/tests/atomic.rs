//! Crash-safe writes.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

use std::io::{self, Write};
use std::path::Path;

use plaid_storage::atomic::{crc32_of_file, fsync_dir, write_atomic, write_npy_atomic};
use plaid_storage::npy::read_npy;
use plaid_storage::{Error, NpyErrorKind};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn replaces_target_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data.bin");
    std::fs::write(&target, b"old contents").unwrap();
    let len = write_atomic(dir.path(), "data.bin", |w| w.write_all(b"new")).unwrap();
    assert_eq!(len, 3);
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert_eq!(names(dir.path()), ["data.bin"]);
}

#[test]
fn creates_missing_target_and_counts_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![7u8; 200_000];
    let len = write_atomic(dir.path(), "big", |w| {
        w.write_all(&data[..100_000])?;
        w.write_all(&data[100_000..])
    })
    .unwrap();
    assert_eq!(len, 200_000);
    assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), data);
    assert_eq!(names(dir.path()), ["big"]);
}

#[test]
fn failed_write_leaves_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data.bin");
    std::fs::write(&target, b"old").unwrap();
    let result = write_atomic(dir.path(), "data.bin", |w| {
        w.write_all(&[1; 10_000])?;
        Err(io::Error::other("disk on fire"))
    });
    match result {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, target);
            assert_eq!(source.to_string(), "disk on fire");
        }
        other => panic!("expected the closure's error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["data.bin"]);
}

#[test]
fn panicking_write_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let result = std::panic::catch_unwind(|| {
        write_atomic(dir.path(), "data.bin", |w| {
            w.write_all(b"partial")?;
            panic!("writer panicked on purpose");
        })
    });
    assert!(result.is_err());
    assert!(names(dir.path()).is_empty());
}

#[test]
fn rejects_invalid_file_names() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["", ".", "..", "a/b", "/abs", "a\\b", "nul\0"] {
        match write_atomic(dir.path(), name, |_| Ok(())) {
            Err(Error::InvalidFileName { name: n }) => assert_eq!(n, name),
            other => panic!("expected InvalidFileName for {name:?}, got {other:?}"),
        }
    }
    assert!(names(dir.path()).is_empty());
}

#[test]
fn rejects_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    match write_atomic(&missing, "x", |_| Ok(())) {
        Err(Error::Io { path, source }) => {
            assert!(path.starts_with(&missing), "{}", path.display());
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(fsync_dir(&missing), Err(Error::Io { path, .. }) if path == missing));
    fsync_dir(dir.path()).unwrap();
}

#[test]
fn roundtrip_write_npy_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<f32> = (0..12).map(|i| i as f32 / 4.0).collect();
    let len = write_npy_atomic(dir.path(), "x.npy", &[3, 4], &data).unwrap();
    let path = dir.path().join("x.npy");
    assert_eq!(len, std::fs::metadata(&path).unwrap().len());
    assert_eq!(len, 128 + 48);
    let array = read_npy(&path).unwrap();
    assert_eq!(array.dims::<2>().unwrap(), [3, 4]);
    assert_eq!(array.as_slice::<f32>().unwrap(), data.as_slice());
}

#[test]
fn rejects_element_count_mismatch_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    match write_npy_atomic(dir.path(), "x.npy", &[3, 4], &[0u8; 11]) {
        Err(Error::Npy { path, kind }) => {
            assert_eq!(path, dir.path().join("x.npy"));
            assert_eq!(
                kind,
                NpyErrorKind::ElementCount {
                    expected: 12,
                    found: 11
                }
            );
        }
        other => panic!("expected ElementCount, got {other:?}"),
    }
    assert!(names(dir.path()).is_empty());
}

#[test]
fn crc32_of_file_matches_in_memory_hash() {
    let dir = tempfile::tempdir().unwrap();
    for len in [0usize, 1, 65_536, 65_537, 300_001] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let path = dir.path().join(format!("f{len}"));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            crc32_of_file(&path).unwrap(),
            crc32fast::hash(&bytes),
            "len {len}"
        );
    }
    // The standard check value of CRC-32/ISO-HDLC.
    let path = dir.path().join("check");
    std::fs::write(&path, b"123456789").unwrap();
    assert_eq!(crc32_of_file(&path).unwrap(), 0xCBF4_3926);
}
