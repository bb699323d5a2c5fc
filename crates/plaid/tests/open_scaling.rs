//! `Index::open` reads only the small arrays (manifest, codebook, per-document
//! and per-centroid arrays) and maps the per-token ones (codes, residuals,
//! inverted lists), so what opening costs does not grow with the tokens.
//!
//! Two indexes with the same 64 centroids and dimension, one with ten times
//! the tokens of the other, are opened and compared on:
//! - bytes read through `read(2)` (`rchar` in `/proc/self/io`), which is
//!   exact and catches arrays read eagerly even when the allocator reuses
//!   memory that is already resident;
//! - the growth of the resident set (`VmRSS`), which catches mapped
//!   per-token pages being touched while opening.
//!
//! Reading an npy header from a mapped file touches its first page, and
//! recent kernels then map the whole page-cache folio around it, up to a PMD
//! (2 MiB on x86-64) for files written moments ago. So the resident-set bound
//! allows one such folio per mapped file; the large index is big enough that
//! touching all its per-token pages would still exceed the bound.
//!
//! Each measurement is checked for sensitivity: `open_in_memory` must read
//! the per-token files, and an exhaustive search after `open` (which touches
//! every code and residual) must exceed the resident-set bound.
//!
//! Linux only; elsewhere the test prints why it skips. One test function, so
//! nothing else in this binary runs while it measures.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use ndarray::Array2;
use plaid::{Documents, Index, IndexConfig, synth};
use std::path::Path;
use std::time::Instant;

const DIM: usize = 32;
const MIB: u64 = 1 << 20;
const PER_TOKEN: [&str; 3] = [".codes.npy", ".residuals.npy", ".ivf.npy"];

/// Sizes of an index's files.
struct Built {
    tokens: usize,
    /// Bytes of the per-token files.
    per_token: u64,
    /// Bytes of the per-token files that are mapped, each capped at `folio`.
    folio_slack: u64,
}

/// Builds an index of `num_docs` generated documents.
fn build(dir: &Path, num_docs: usize, folio: u64) -> Built {
    let cfg = synth::SynthConfig::new(num_docs)
        .dim(DIM)
        .lens(120, 220)
        .seed(3);
    let corpus = synth::corpus(&cfg);
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: DIM,
        lens: &corpus.doclens,
    };
    let config = IndexConfig::default().num_centroids(Some(64));
    let index = Index::create(docs, dir, &config).unwrap();
    assert_eq!(index.num_centroids(), 64);
    let tokens = index.num_tokens();
    drop(index);
    let (mut per_token, mut folio_slack) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let len = e.metadata().unwrap().len();
        let name = e.file_name().into_string().unwrap();
        if PER_TOKEN.iter().any(|suffix| name.ends_with(suffix)) {
            per_token += len;
            folio_slack += len.min(folio);
        }
    }
    Built {
        tokens,
        per_token,
        folio_slack,
    }
}

/// The value of the first `key` line of a `/proc` file, as a number.
fn proc_value(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes this process has read through `read(2)`, if the kernel accounts them.
fn rchar() -> Option<u64> {
    proc_value("/proc/self/io", "rchar:")
}

/// Resident set size in bytes.
fn rss() -> Option<u64> {
    Some(proc_value("/proc/self/status", "VmRSS:")? * 1024)
}

/// What one open (and whatever `then` does with the index) reads and makes resident.
struct Cost {
    read: u64,
    rss: i64,
    secs: f64,
}

fn measure(dir: &Path, open: fn(&Path) -> Result<Index, plaid::Error>, then: fn(&Index)) -> Cost {
    let (rss0, read0) = (rss().unwrap(), rchar().unwrap());
    let t = Instant::now();
    let index = open(dir).unwrap();
    let secs = t.elapsed().as_secs_f64();
    then(&index);
    let (read1, rss1) = (rchar().unwrap(), rss().unwrap());
    drop(index);
    Cost {
        read: read1 - read0,
        rss: rss1 as i64 - rss0 as i64,
        secs,
    }
}

fn open(dir: &Path) -> Result<Index, plaid::Error> {
    Index::open(dir)
}

fn open_in_memory(dir: &Path) -> Result<Index, plaid::Error> {
    Index::open_in_memory(dir)
}

fn nothing(_: &Index) {}

/// Decompresses every document: touches every code and residual.
fn search_everything(index: &Index) {
    let query = Array2::from_elem((1, DIM), 1.0 / (DIM as f32).sqrt());
    let hits = index.exhaustive(query.view(), 1).unwrap();
    assert_eq!(hits.ids.len(), 1);
}

#[test]
fn open_cost_does_not_grow_with_tokens() {
    if !cfg!(target_os = "linux") || rchar().is_none() || rss().is_none() {
        println!("skipped: needs rchar in /proc/self/io and VmRSS in /proc/self/status (Linux)");
        return;
    }
    // The largest folio the kernel maps at once: a PMD, the huge page size.
    let folio = proc_value("/proc/meminfo", "Hugepagesize:").map_or(2 * MIB, |kb| kb * 1024);
    let tmp = tempfile::tempdir().unwrap();
    let (small_dir, large_dir) = (tmp.path().join("small"), tmp.path().join("large"));
    let t = Instant::now();
    let small = build(&small_dir, 300, folio);
    let large = build(&large_dir, 3000, folio);
    println!(
        "built in {:.2} s: {} and {} tokens, {} B and {} B of per-token files",
        t.elapsed().as_secs_f64(),
        small.tokens,
        large.tokens,
        small.per_token,
        large.per_token
    );
    assert!(large.tokens >= 9 * small.tokens);
    assert!(large.per_token > 5 * MIB);

    // A warm-up open pays one-time costs (code pages, lazily initialised
    // state); then the large index is measured before the small one.
    measure(&small_dir, open, nothing);
    let large_cost = measure(&large_dir, open, nothing);
    let small_cost = measure(&small_dir, open, nothing);
    let eager = measure(&large_dir, open_in_memory, nothing);
    let touched = measure(&large_dir, open, search_everything);
    for (name, c) in [
        ("open small", &small_cost),
        ("open large", &large_cost),
        ("open_in_memory large", &eager),
        ("open large + exhaustive search", &touched),
    ] {
        println!(
            "{name}: {:.3} ms, read {} B, resident set {:+} KiB",
            c.secs * 1e3,
            c.read,
            c.rss / 1024
        );
    }

    // Reads: opening reads no per-token array, and the measurement would see it.
    assert!(
        eager.read >= large.per_token,
        "open_in_memory read {} B, less than the per-token files ({} B)",
        eager.read,
        large.per_token
    );
    assert!(
        large_cost.read < small_cost.read + MIB,
        "opening read {} B for {} tokens but {} B for {}",
        large_cost.read,
        large.tokens,
        small_cost.read,
        small.tokens
    );

    // Resident set: opening touches no per-token page beyond each file's
    // header, and the measurement would see it if it did.
    if folio > 2 * MIB {
        println!("resident-set check skipped: {folio} B huge pages make its bound too loose");
        return;
    }
    let bound = small_cost.rss + (MIB + large.folio_slack) as i64;
    assert!(
        touched.rss > bound,
        "touching every code and residual grew the resident set by only {} B (bound {bound} B)",
        touched.rss
    );
    assert!(
        large_cost.rss < bound,
        "opening grew the resident set by {} B for {} tokens but {} B for {} \
         (bound {bound} B, allowing one {folio} B folio per mapped file)",
        large_cost.rss,
        large.tokens,
        small_cost.rss,
        small.tokens
    );
}
