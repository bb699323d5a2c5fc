//! Importing next-plaid and fast-plaid indexes, on the committed fixtures of
//! `tests/data/import` (see its README): compared with what the source
//! libraries themselves return (`agreement`), and every layout variant and
//! damaged source (`layouts`).
#![allow(clippy::unwrap_used, clippy::print_stderr)] // Tests unwrap, and print the measured agreement.

mod agreement;
mod layouts;

use plaid::storage::npy::{self, NpyArray};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub(crate) fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/import")
}

pub(crate) fn read(path: &Path) -> NpyArray {
    npy::read_npy(path).unwrap()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn set_readonly(dir: &Path, readonly: bool) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        perm.set_readonly(readonly);
        std::fs::set_permissions(&p, perm).unwrap();
    }
    let mut perm = std::fs::metadata(dir).unwrap().permissions();
    perm.set_readonly(readonly);
    std::fs::set_permissions(dir, perm).unwrap();
}

/// Every name in `dir` with its bytes, sorted.
pub(crate) fn snapshot(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// A fixture's index copied to a temporary directory and made read-only
/// (`chmod a-w` on the files and the directory); the bytes are recorded so
/// that `Source::assert_unchanged` can prove nothing was written.
pub(crate) struct Source {
    tmp: TempDir,
    before: Vec<(std::ffi::OsString, Vec<u8>)>,
}

impl Source {
    pub(crate) fn new(fixture: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        copy_dir(&data().join(fixture).join("index"), &src);
        set_readonly(&src, true);
        let before = snapshot(&src);
        Source { tmp, before }
    }

    pub(crate) fn src(&self) -> PathBuf {
        self.tmp.path().join("src")
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    pub(crate) fn assert_unchanged(&self) {
        assert_eq!(snapshot(&self.src()), self.before, "the source changed");
        let names: Vec<_> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| n == "src" || n == "out"),
            "stray files next to the source: {names:?}"
        );
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if self.src().exists() {
            set_readonly(&self.src(), false);
        }
    }
}
