//! The live index: add and delete with stable ids, compaction, the write
//! lock, reload, verify, and searches running while a writer commits.
#![allow(clippy::unwrap_used)]

use ndarray::{Array2, ArrayView2};
use plaid::storage::LayoutFault;
use plaid::types::DocId;
use plaid::{CompactionPolicy, Documents, Error, Index, IndexConfig, SearchParams, synth};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const DIM: usize = 16;

fn corpus(n: usize, seed: u64) -> synth::SynthCorpus {
    synth::corpus(&synth::SynthConfig::new(n).dim(DIM).lens(3, 12).seed(seed))
}

/// Documents `range` of `c` as flat input (lens borrowed from `lens`).
fn flat<'a>(c: &'a synth::SynthCorpus, lens: &'a [usize], first: usize) -> Documents<'a> {
    let start: usize = c.doclens[..first].iter().sum();
    let tokens: usize = lens.iter().sum();
    Documents::Flat {
        data: &c.embeddings[start * DIM..(start + tokens) * DIM],
        dim: DIM,
        lens,
    }
}

fn create(dir: &Path, c: &synth::SynthCorpus, n: usize) -> Index {
    Index::create(flat(c, &c.doclens[..n], 0), dir, &IndexConfig::default()).unwrap()
}

fn ids(v: &[u32]) -> Vec<DocId> {
    v.iter().map(|&d| DocId::new(d)).collect()
}

fn raw(v: &[DocId]) -> Vec<u32> {
    v.iter().map(|d| d.as_u32()).collect()
}

/// Names and contents of every file in `dir`, to prove nothing changed.
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn query(c: &synth::SynthCorpus, doc: usize) -> Array2<f32> {
    let start: usize = c.doclens[..doc].iter().sum();
    let len = c.doclens[doc];
    Array2::from_shape_vec(
        (len, DIM),
        c.embeddings[start * DIM..(start + len) * DIM].to_vec(),
    )
    .unwrap()
}

#[test]
fn index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Index>();
    check::<plaid::Snapshot>();
}

#[test]
fn ids_continue_after_the_largest_ever_assigned() {
    let c = corpus(120, 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = create(&dir, &c, 50);
    assert_eq!(raw(&index.doc_ids()), (0..50).collect::<Vec<_>>());

    let added = index.add(flat(&c, &c.doclens[50..60], 50)).unwrap();
    assert_eq!(raw(&added), (50..60).collect::<Vec<_>>());
    let before = index.reconstruct(&ids(&[40])).unwrap();

    // Delete the newest documents: their ids are still never reused.
    assert_eq!(index.delete(&ids(&[55, 56, 57, 58, 59, 3])).unwrap(), 6);
    let added = index.add(flat(&c, &c.doclens[60..65], 60)).unwrap();
    assert_eq!(raw(&added), (60..65).collect::<Vec<_>>());
    // A delete shifts nothing: document 40 is the same document.
    assert_eq!(index.reconstruct(&ids(&[40])).unwrap(), before);
    assert!(matches!(
        index.reconstruct(&ids(&[3])),
        Err(Error::UnknownDoc { id: 3 })
    ));

    // Deleting a whole segment drops it; the next id still moves on.
    index.delete(&ids(&[60, 61, 62, 63, 64])).unwrap();
    let added = index.add(flat(&c, &c.doclens[65..66], 65)).unwrap();
    assert_eq!(raw(&added), vec![65]);

    let mut want: Vec<u32> = (0..55).filter(|&d| d != 3).collect();
    want.push(65);
    assert_eq!(raw(&index.doc_ids()), want);
    assert_eq!(index.num_docs(), want.len());
    let tokens: usize = want.iter().map(|&d| c.doclens[d as usize]).sum();
    assert_eq!(index.num_tokens(), tokens);

    // A fresh handle sees the same; the files pass verification.
    let again = Index::open(&dir).unwrap();
    assert_eq!(raw(&again.doc_ids()), want);
    let report = again.verify().unwrap();
    assert_eq!(report.num_docs, want.len() as u64);

    // Deleted documents are never returned, even by the exhaustive oracle.
    for d in [3usize, 55, 57, 62] {
        let q = query(&c, d);
        let hits = again.search(q.view(), &SearchParams::with_k(20)).unwrap();
        assert!(!hits.ids.contains(&DocId::new(d as u32)), "{d} returned");
        let all = again.exhaustive(q.view(), 100).unwrap();
        assert_eq!(all.ids.len(), want.len());
        assert!(!all.ids.contains(&DocId::new(d as u32)));
    }
}

#[test]
fn added_documents_are_searchable() {
    let c = corpus(200, 2);
    let tmp = tempfile::tempdir().unwrap();
    let index = create(&tmp.path().join("idx"), &c, 100);
    for batch in 0..4 {
        let first = 100 + batch * 25;
        index
            .add(flat(&c, &c.doclens[first..first + 25], first))
            .unwrap();
    }
    assert_eq!(index.num_docs(), 200);
    let mut top1 = 0;
    for d in (0..200).step_by(7) {
        let hits = index
            .search(query(&c, d).view(), &SearchParams::with_k(5))
            .unwrap();
        if hits.ids[0].as_usize() == d {
            top1 += 1;
        }
        let exact = index.exhaustive(query(&c, d).view(), 5).unwrap();
        assert_eq!(exact.ids[0].as_usize(), d, "oracle finds document {d}");
    }
    // A document's own tokens as the query: it should rank first nearly always.
    assert!(top1 >= 26, "only {top1} of 29 documents ranked first");
}

#[test]
fn delete_refuses_unknown_and_deleted_ids() {
    let c = corpus(40, 3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = create(&dir, &c, 30);
    index.delete(&ids(&[4, 5])).unwrap();
    let snapshot = listing(&dir);
    let generation = index.snapshot().generation();

    let e = index.delete(&ids(&[1, 30, 999, 2])).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownDocs { ids } if ids == &[30, 999]),
        "{e:?}"
    );
    let e = index.delete(&ids(&[7, 5, 4])).unwrap_err();
    assert!(
        matches!(&e, Error::DeletedDocs { ids } if ids == &[4, 5]),
        "{e:?}"
    );
    assert_eq!(listing(&dir), snapshot);
    assert_eq!(index.snapshot().generation(), generation);
    assert_eq!(index.num_docs(), 28);
    // Nothing to delete commits nothing.
    assert_eq!(index.delete(&[]).unwrap(), 0);
    assert_eq!(listing(&dir), snapshot);
}

#[test]
fn add_refuses_bad_documents() {
    let c = corpus(40, 4);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = create(&dir, &c, 30);
    index.delete(&ids(&[0])).unwrap(); // take the lock; the listing then holds still
    let snapshot = listing(&dir);

    let wide = Array2::<f32>::ones((3, DIM + 1));
    let views = [wide.view()];
    let e = index.add(Documents::Views(&views)).unwrap_err();
    assert!(
        matches!(e, Error::DimMismatch { doc: 0, expected: DIM, found } if found == DIM + 1),
        "{e:?}"
    );
    let ok = Array2::<f32>::ones((3, DIM));
    let empty = Array2::<f32>::zeros((0, DIM));
    let views = [ok.view(), empty.view()];
    let e = index.add(Documents::Views(&views)).unwrap_err();
    assert!(matches!(e, Error::EmptyDocument { doc: 1 }), "{e:?}");
    let mut nan = Array2::<f32>::ones((2, DIM));
    nan[[1, 5]] = f32::NAN;
    let views = [ok.view(), nan.view()];
    let e = index.add(Documents::Views(&views)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                doc: 1,
                token: 1,
                dim: 5
            }
        ),
        "{e:?}"
    );
    let e = index.add(Documents::Views(&[])).unwrap_err();
    assert!(matches!(e, Error::NoDocuments), "{e:?}");
    let e = index
        .add(Documents::Flat {
            data: &c.embeddings[..4 * (DIM + 1)],
            dim: DIM + 1,
            lens: &[4],
        })
        .unwrap_err();
    assert!(matches!(e, Error::DimMismatch { .. }), "{e:?}");
    assert_eq!(listing(&dir), snapshot);
    assert_eq!(index.num_docs(), 29);
}

fn is_locked(e: &Error) -> bool {
    matches!(
        e,
        Error::Storage(plaid::storage::Error::Layout {
            fault: LayoutFault::Locked,
            ..
        })
    )
}

#[test]
fn a_second_writer_gets_the_lock_error() {
    let c = corpus(60, 5);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let a = create(&dir, &c, 40);
    let b = Index::open(&dir).unwrap();
    a.add(flat(&c, &c.doclens[40..45], 40)).unwrap();

    // Another handle in this process.
    let e = b.add(flat(&c, &c.doclens[45..50], 45)).unwrap_err();
    assert!(is_locked(&e), "{e:?}");
    let e = b.delete(&ids(&[1])).unwrap_err();
    assert!(is_locked(&e), "{e:?}");
    assert!(is_locked(&b.compact().unwrap_err()));

    // Another process: the CLI.
    #[cfg(feature = "cli")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plaid"))
            .args(["delete", dir.to_str().unwrap(), "--ids", "1"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("write lock"), "{stderr}");
    }

    // Reads are never locked out, and the lock goes with its holder.
    assert_eq!(b.num_docs(), 40);
    drop(a);
    let added = b.add(flat(&c, &c.doclens[45..50], 45)).unwrap();
    assert_eq!(raw(&added), (45..50).collect::<Vec<_>>());
    assert_eq!(b.num_docs(), 50);
}

#[test]
fn reload_shows_commits_of_other_handles() {
    let c = corpus(60, 6);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let writer = create(&dir, &c, 40);
    let reader = Index::open(&dir).unwrap();
    let held = reader.snapshot();
    writer.add(flat(&c, &c.doclens[40..60], 40)).unwrap();
    writer.delete(&ids(&[0, 1, 2])).unwrap();
    writer.compact().unwrap();
    assert_eq!(reader.num_docs(), 40);
    assert!(reader.reload().unwrap());
    assert!(!reader.reload().unwrap());
    assert_eq!(reader.num_docs(), 57);
    assert_eq!(raw(&reader.doc_ids()), (3..60).collect::<Vec<_>>());
    // The old snapshot still works although compaction removed its files.
    assert_eq!(held.num_docs(), 40);
    let hits = held
        .search(query(&c, 1).view(), &SearchParams::with_k(3))
        .unwrap();
    assert_eq!(hits.ids[0].as_u32(), 1);
}

#[test]
fn compaction_policy_bounds_segments_and_dead_documents() {
    let c = corpus(200, 7);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let policy = CompactionPolicy {
        max_dead_fraction: 0.25,
        max_segments: 4,
    };
    let index = create(&dir, &c, 100).with_compaction_policy(policy);
    for b in 0..10 {
        let first = 100 + b * 10;
        index
            .add(flat(&c, &c.doclens[first..first + 10], first))
            .unwrap();
        assert!(index.snapshot().manifest().segments.len() <= 5);
    }
    // 20 % of segment 1 dead: kept as tombstones; 30 %: rewritten.
    index.delete(&ids(&(0..20).collect::<Vec<_>>())).unwrap();
    assert_eq!(index.snapshot().num_deleted(), 20);
    index.delete(&ids(&(20..30).collect::<Vec<_>>())).unwrap();
    assert_eq!(index.snapshot().num_deleted(), 0);
    index.verify().unwrap();

    let q = query(&c, 150);
    let before = index.search(q.view(), &SearchParams::with_k(10)).unwrap();
    let report = index.compact().unwrap();
    assert!(report.committed);
    assert_eq!(report.segments_after, 1);
    let snap = index.snapshot();
    assert_eq!(snap.manifest().segments.len(), 1);
    assert_eq!(raw(&snap.doc_ids()), (30..200).collect::<Vec<_>>());
    // Codes and residuals are copied, not re-encoded: same results.
    let after = index.search(q.view(), &SearchParams::with_k(10)).unwrap();
    assert_eq!(before, after);
    assert!(!index.compact().unwrap().committed);
    index.verify().unwrap();
}

#[test]
fn leftovers_are_removed_by_the_next_writer_only() {
    let c = corpus(40, 8);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    drop(create(&dir, &c, 30));
    let stray = [
        "seg-000077.codes.npy",
        "seg-000001.del-000009.npy",
        "centroids.5.npy",
        ".manifest.json.tmp-1-2",
    ];
    for s in stray {
        std::fs::write(dir.join(s), b"partial").unwrap();
    }
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let staging = tmp.path().join(".idx.creating-12345");
    std::fs::create_dir(&staging).unwrap();

    let index = Index::open(&dir).unwrap();
    index
        .search(query(&c, 0).view(), &SearchParams::with_k(3))
        .unwrap();
    for s in stray {
        assert!(dir.join(s).exists(), "a reader removed {s}");
    }
    index.delete(&ids(&[0])).unwrap();
    for s in stray {
        assert!(!dir.join(s).exists(), "the writer left {s}");
    }
    assert!(!staging.exists());
    assert!(dir.join("notes.txt").exists());
    index.verify().unwrap();
}

#[test]
fn verify_and_open_report_damage() {
    let c = corpus(40, 9);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = create(&dir, &c, 30);
    index.delete(&ids(&[2, 9])).unwrap();
    let m = index.snapshot().manifest().clone();
    drop(index);
    plaid::storage::verify::verify(&dir).unwrap();

    // A flipped byte: same length, so only the checksum catches it.
    let residuals = dir.join(&m.segments[0].files.residuals);
    let good = std::fs::read(&residuals).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    std::fs::write(&residuals, &bad).unwrap();
    let e = plaid::storage::verify::verify(&dir).unwrap_err();
    assert!(
        matches!(
            e,
            plaid::storage::Error::Layout {
                fault: LayoutFault::Checksum { .. },
                ..
            }
        ),
        "{e:?}"
    );
    std::fs::write(&residuals, &good).unwrap();

    // A manifest pointing at a missing file (the tombstones).
    let del = dir.join(m.segments[0].tombstones.as_ref().unwrap());
    let kept = std::fs::read(&del).unwrap();
    std::fs::remove_file(&del).unwrap();
    let e = Index::open(&dir).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Storage(plaid::storage::Error::Layout {
                fault: LayoutFault::MissingFile,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(plaid::storage::verify::verify(&dir).is_err());
    std::fs::write(&del, &kept).unwrap();

    // The CLI exits non-zero and names the file.
    #[cfg(feature = "cli")]
    check_cli_verify(&dir, &residuals, &good, &bad);
}

#[cfg(feature = "cli")]
fn check_cli_verify(dir: &Path, residuals: &Path, good: &[u8], bad: &[u8]) {
    let plaid = env!("CARGO_BIN_EXE_plaid");
    std::fs::write(residuals, bad).unwrap();
    let out = std::process::Command::new(plaid)
        .args(["verify", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("residuals") && stderr.contains("CRC"),
        "{stderr}"
    );
    std::fs::write(residuals, good).unwrap();
    let out = std::process::Command::new(plaid)
        .args(["verify", dir.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["num_docs"], 28);
    assert_eq!(v["num_deleted"], 2);
}

/// Several threads search while one adds and deletes. Every search must
/// succeed, return only documents added by a commit that had at least
/// started, and never a document whose delete had committed before the
/// search started.
#[test]
fn searches_see_committed_states_while_a_writer_commits() {
    let c = corpus(400, 10);
    let tmp = tempfile::tempdir().unwrap();
    let index = Arc::new(create(&tmp.path().join("idx"), &c, 200));
    // Deleted ids, published after their delete committed.
    let deleted: Arc<std::sync::RwLock<BTreeSet<u32>>> = Arc::default();
    // Largest id whose add has started.
    let started = Arc::new(std::sync::atomic::AtomicU32::new(199));
    let stop = Arc::new(AtomicBool::new(false));
    let queries: Arc<Vec<Array2<f32>>> = Arc::new((0..400).map(|d| query(&c, d)).collect());

    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (index, deleted, started, stop, queries) = (
                Arc::clone(&index),
                Arc::clone(&deleted),
                Arc::clone(&started),
                Arc::clone(&stop),
                Arc::clone(&queries),
            );
            std::thread::spawn(move || {
                let mut n = 0usize;
                let mut i = t;
                while !stop.load(Ordering::Acquire) || n < 20 {
                    let gone: BTreeSet<u32> = deleted.read().unwrap().clone();
                    let q: ArrayView2<'_, f32> = queries[i % 400].view();
                    let hits = index.search(q, &SearchParams::with_k(10)).unwrap();
                    let max = started.load(Ordering::Acquire);
                    for id in &hits.ids {
                        assert!(!gone.contains(&id.as_u32()), "deleted {id} returned");
                        assert!(id.as_u32() <= max, "{id} returned before its add");
                    }
                    n += 1;
                    i += 7;
                }
                n
            })
        })
        .collect();

    // Another handle (as another process would) reloads and searches while
    // the writer commits and compaction removes files: opening a new
    // generation must retry, never fail.
    let other = {
        let (dir, stop, queries) = (
            index.dir().to_path_buf(),
            Arc::clone(&stop),
            Arc::clone(&queries),
        );
        std::thread::spawn(move || {
            let handle = Index::open(&dir).unwrap();
            let (mut reloads, mut i) = (0usize, 0usize);
            while !stop.load(Ordering::Acquire) {
                if handle.reload().unwrap() {
                    reloads += 1;
                }
                let snap = handle.snapshot();
                let hits = snap
                    .search(queries[i % 400].view(), &SearchParams::with_k(10))
                    .unwrap();
                let live: BTreeSet<u32> = snap.doc_ids().iter().map(|d| d.as_u32()).collect();
                assert!(hits.ids.iter().all(|d| live.contains(&d.as_u32())));
                i += 5;
            }
            reloads
        })
    };

    let mut rng_state = 12345u64;
    let mut next = || {
        rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1);
        (rng_state >> 33) as usize
    };
    let mut live: Vec<u32> = (0..200).collect();
    for b in 0..10 {
        let first = 200 + b * 20;
        started.store(first as u32 + 19, Ordering::Release);
        let added = index
            .add(flat(&c, &c.doclens[first..first + 20], first))
            .unwrap();
        live.extend(raw(&added));
        let victims: Vec<u32> = (0..8)
            .map(|_| live.swap_remove(next() % live.len()))
            .collect();
        index.delete(&ids(&victims)).unwrap();
        deleted.write().unwrap().extend(victims);
        if b % 3 == 2 {
            index.compact().unwrap();
        }
    }
    stop.store(true, Ordering::Release);
    let searches: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(other.join().unwrap() >= 1);
    assert!(searches >= 60);
    live.sort_unstable();
    assert_eq!(raw(&index.doc_ids()), live);
    index.verify().unwrap();
}

#[test]
fn an_index_can_be_emptied_and_refilled() {
    let c = corpus(30, 11);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = create(&dir, &c, 20);
    index.delete(&ids(&(0..20).collect::<Vec<_>>())).unwrap();
    assert_eq!(index.num_docs(), 0);
    assert_eq!(index.snapshot().manifest().segments.len(), 0);
    let hits = index
        .search(query(&c, 3).view(), &SearchParams::with_k(5))
        .unwrap();
    assert!(hits.ids.is_empty());
    index.verify().unwrap();
    let reopened = Index::open(&dir).unwrap();
    assert_eq!(reopened.num_docs(), 0);
    drop(reopened);
    let added = index.add(flat(&c, &c.doclens[20..30], 20)).unwrap();
    assert_eq!(raw(&added), (20..30).collect::<Vec<_>>());
    let hits = index
        .search(query(&c, 25).view(), &SearchParams::with_k(5))
        .unwrap();
    assert_eq!(hits.ids[0].as_u32(), 25);
    index.verify().unwrap();
}

#[test]
fn update_or_create_creates_then_appends() {
    let c = corpus(30, 12);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let config = IndexConfig::default();
    let (index, first) =
        Index::update_or_create(&dir, flat(&c, &c.doclens[..20], 0), &config).unwrap();
    assert_eq!(raw(&first), (0..20).collect::<Vec<_>>());
    drop(index);
    let (index, more) =
        Index::update_or_create(&dir, flat(&c, &c.doclens[20..30], 20), &config).unwrap();
    assert_eq!(raw(&more), (20..30).collect::<Vec<_>>());
    assert_eq!(index.num_docs(), 30);
}

#[test]
fn rebuild_retrains_the_codebook_and_keeps_ids() {
    let c = corpus(120, 13);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = create(&dir, &c, 40);
    index.add(flat(&c, &c.doclens[40..120], 40)).unwrap();
    index.delete(&ids(&[5, 50, 90])).unwrap();
    let before_ids = index.doc_ids();
    let old_centroids = index.snapshot().manifest().codebook.centroids.clone();
    index
        .rebuild(&IndexConfig::default().num_centroids(Some(64)))
        .unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.doc_ids(), before_ids);
    assert_eq!(snap.num_centroids(), 64);
    assert_eq!(snap.manifest().segments.len(), 1);
    assert_eq!(snap.num_deleted(), 0);
    let new_centroids = &snap.manifest().codebook.centroids;
    assert_ne!(new_centroids, &old_centroids);
    assert!(!dir.join(&old_centroids).exists());
    index.verify().unwrap();
    for d in [0usize, 60, 119] {
        let hits = index
            .search(query(&c, d).view(), &SearchParams::with_k(3))
            .unwrap();
        assert_eq!(hits.ids[0].as_usize(), d);
    }
    // Adds after a rebuild use the new codebook.
    drop(snap);
    let c2 = corpus(10, 14);
    let added = index.add(flat(&c2, &c2.doclens, 0)).unwrap();
    assert_eq!(added[0].as_u32(), 120);
    index.verify().unwrap();
    assert!(index.num_centroids() >= 64);
    assert_eq!(
        Index::open(&dir).unwrap().num_centroids(),
        index.num_centroids()
    );
}

/// Documents from other topics than the index was trained on: with growth
/// on, their outlier tokens get new centroids (existing segments untouched)
/// and they are found; the files verify.
#[test]
fn adds_grow_the_codebook_for_new_topics() {
    let old = corpus(150, 15);
    let new = corpus(60, 16); // other random topics
    let top1 = |grow: bool| -> (usize, usize, usize, f32) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        let index = Index::create(
            flat(&old, &old.doclens, 0),
            &dir,
            &IndexConfig::default().num_centroids(Some(32)),
        )
        .unwrap()
        .with_codebook_growth(grow);
        let k0 = index.num_centroids();
        let seg1 = index.snapshot().manifest().segments[0].clone();
        let added = index.add(flat(&new, &new.doclens, 0)).unwrap();
        assert_eq!(added.len(), 60);
        index.verify().unwrap();
        // The first segment's files are the same files.
        assert_eq!(index.snapshot().manifest().segments[0], seg1);
        let k1 = Index::open(&dir).unwrap().num_centroids();
        assert_eq!(k1, index.num_centroids());
        let mut found = 0;
        for d in 0..60 {
            let hits = index
                .search(query(&new, d).view(), &SearchParams::with_k(1))
                .unwrap();
            if hits.ids[0].as_usize() == 150 + d {
                found += 1;
            }
        }
        // How well the new documents' vectors survive compression: mean
        // cosine between each token and its decompressed vector.
        let rec = index
            .reconstruct(&added)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(d, m)| (query(&new, d) * m).sum())
            .sum::<f32>()
            / new.doclens.iter().sum::<usize>() as f32;
        (k0, k1, found, rec)
    };
    let (k0, k1, with, rec_with) = top1(true);
    assert!(k1 > k0, "no centroids added: {k0} -> {k1}");
    let (k0b, k1b, without, rec_without) = top1(false);
    assert_eq!((k0b, k1b), (k0, k0));
    assert!(with >= without, "growth found {with}, without {without}");
    assert!(
        rec_with > rec_without,
        "growth: cosine {rec_with} vs {rec_without} without"
    );
    assert!(with >= 55, "only {with} of 60 new documents ranked first");
}
