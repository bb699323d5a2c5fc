//! Commits, the write lock, cleanup of leftovers, and what `verify` catches.
#![allow(clippy::unwrap_used)]

use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Codebook, Nbits, QuantizerKind};
use plaid_storage::layout::{self, CodesBuf, SegmentData};
use plaid_storage::live::{Commit, WriteLock, remove_unreferenced};
use plaid_storage::verify::verify;
use plaid_storage::{Error, LayoutFault};
use std::path::Path;

const DIM: usize = 8;
const K: usize = 4;

fn codebook() -> Codebook {
    let mut centroids = vec![0.0f32; K * DIM];
    for c in 0..K {
        centroids[c * DIM + c] = 1.0;
    }
    let heldout: Vec<f32> = (0..64 * DIM)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    Codebook::train(
        centroids,
        DIM,
        EmbeddingsView::try_new(&heldout, DIM).unwrap(),
        Nbits::new(2).unwrap(),
        QuantizerKind::PerDim,
    )
    .unwrap()
}

/// A segment of `ids.len()` documents of 3 tokens each.
fn segment(cb: &Codebook, ids: &[u32]) -> SegmentData {
    let tokens = ids.len() * 3;
    let data: Vec<f32> = (0..tokens * DIM)
        .map(|i| ((i * 53 % 97) as f32 / 97.0) - 0.3)
        .collect();
    let c = cb
        .compress(EmbeddingsView::try_new(&data, DIM).unwrap())
        .unwrap();
    let doclens = vec![3u32; ids.len()];
    SegmentData {
        doc_ids: ids.to_vec(),
        doclens,
        codes: CodesBuf::for_codebook(c.codes, K),
        residuals: c.residuals,
    }
}

fn setup(dir: &Path) -> Codebook {
    let cb = codebook();
    layout::create(dir, &cb, &segment(&cb, &[0, 1, 2, 3, 4])).unwrap();
    cb
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn fault(e: &Error) -> &LayoutFault {
    match e {
        Error::Layout { fault, .. } => fault,
        other => panic!("not a layout error: {other:?}"),
    }
}

#[test]
fn an_unfinished_commit_leaves_no_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let cb = setup(&dir);
    let before = layout::read_manifest(&dir).unwrap();
    let listing = names(&dir);
    {
        let mut c = Commit::begin(&dir, &before);
        c.add_segment(&segment(&cb, &[10, 11])).unwrap();
        c.set_deleted(1, &[0, 3]).unwrap();
        assert!(names(&dir).len() > listing.len());
    }
    assert_eq!(names(&dir), listing);
    assert_eq!(layout::read_manifest(&dir).unwrap(), before);
    verify(&dir).unwrap();
}

#[test]
fn a_commit_adds_segments_and_tombstones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let cb = setup(&dir);
    let base = layout::read_manifest(&dir).unwrap();
    let mut c = Commit::begin(&dir, &base);
    assert_eq!(c.add_segment(&segment(&cb, &[7, 9])).unwrap(), 2);
    c.set_deleted(1, &[1, 4]).unwrap();
    let (m, obsolete) = c.finish().unwrap();
    assert!(obsolete.is_empty());
    assert_eq!(m.generation, 2);
    assert_eq!(m.next_doc_id, 10);
    assert_eq!(m.next_segment_id, 3);
    assert_eq!(m.num_docs(), 5);
    assert_eq!(
        m.segments[0].tombstones.as_deref(),
        Some("seg-000001.del-000002.npy")
    );
    assert_eq!(layout::read_manifest(&dir).unwrap(), m);
    let report = verify(&dir).unwrap();
    assert_eq!((report.num_docs, report.num_deleted), (5, 2));
    let opened = layout::open_in_memory(&dir).unwrap();
    assert_eq!(opened.segments[0].deleted(), &[1, 4]);

    // The next delete replaces the tombstone file; a removed segment's id is
    // never given out again.
    let mut c = Commit::begin(&dir, &m);
    c.set_deleted(1, &[1, 2, 4]).unwrap();
    c.remove_segment(2).unwrap();
    let (m, obsolete) = c.finish().unwrap();
    assert!(obsolete.contains(&"seg-000001.del-000002.npy".to_string()));
    // The old tombstone and the removed segment's four files.
    assert_eq!(obsolete.len(), 5);
    let mut c = Commit::begin(&dir, &m);
    assert_eq!(c.add_segment(&segment(&cb, &[12])).unwrap(), 3);
    drop(c);

    // Bad tombstones are refused before anything is written.
    let mut c = Commit::begin(&dir, &m);
    let e = c.set_deleted(1, &[2, 1]).unwrap_err();
    assert!(
        matches!(fault(&e), LayoutFault::BadEntry { index: 1, .. }),
        "{e:?}"
    );
    let e = c.set_deleted(1, &[5]).unwrap_err();
    assert!(
        matches!(fault(&e), LayoutFault::BadEntry { value: 5, .. }),
        "{e:?}"
    );
    let e = c.set_deleted(9, &[0]).unwrap_err();
    assert!(
        matches!(fault(&e), LayoutFault::BadEntry { value: 9, .. }),
        "{e:?}"
    );
}

#[test]
fn the_write_lock_admits_one_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    setup(&dir);
    let first = WriteLock::acquire(&dir).unwrap();
    let e = WriteLock::acquire(&dir).unwrap_err();
    assert_eq!(fault(&e), &LayoutFault::Locked);
    drop(first);
    WriteLock::acquire(&dir).unwrap();
}

#[test]
fn cleanup_removes_only_our_unlisted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    setup(&dir);
    let m = layout::read_manifest(&dir).unwrap();
    let listing = names(&dir);
    let ours = [
        "seg-000002.codes.npy",
        "seg-000001.del-000004.npy",
        "bucket_weights.3.npy",
        ".seg-000002.ivf.npy.tmp-77-0",
    ];
    for n in ours {
        std::fs::write(dir.join(n), b"x").unwrap();
    }
    for n in ["notes.txt", "seg-data.csv"] {
        std::fs::write(dir.join(n), b"keep").unwrap();
    }
    let lock = WriteLock::acquire(&dir).unwrap();
    let mut removed = remove_unreferenced(&dir, &m, &lock).unwrap();
    removed.sort();
    let mut want: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(removed, want);
    let mut expected = listing.clone();
    expected.extend(["notes.txt", "seg-data.csv", "write.lock"].map(String::from));
    expected.sort();
    assert_eq!(names(&dir), expected);
    verify(&dir).unwrap();
}

#[test]
fn verify_catches_broken_invariants() {
    let check = |ids: &[u32], edit: &dyn Fn(&mut SegmentData), what: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        let cb = setup(&dir);
        let base = layout::read_manifest(&dir).unwrap();
        let mut seg = segment(&cb, ids);
        edit(&mut seg);
        let mut c = Commit::begin(&dir, &base);
        c.add_segment(&seg).unwrap();
        c.finish().unwrap();
        let e = verify(&dir).unwrap_err();
        match fault(&e) {
            LayoutFault::BadEntry { what: w, .. } => assert!(w.contains(what), "{e}"),
            other => panic!("{other:?}"),
        }
    };
    check(&[3, 8], &|_| {}, "unique across segments");
    check(&[8, 6], &|_| {}, "strictly ascending");
    check(
        &[8, 9],
        &|s| {
            if let CodesBuf::U16(c) = &mut s.codes {
                c[0] = K as u16 + 3;
            }
        },
        "code",
    );
}

#[test]
fn reopening_after_a_commit_shares_what_unchanged_segments_derived() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let cb = setup(&dir);
    let m = layout::read_manifest(&dir).unwrap();
    let mut c = Commit::begin(&dir, &m);
    c.add_segment(&segment(&cb, &[7, 9])).unwrap();
    let (m, _) = c.finish().unwrap();
    let first = layout::open_in_memory(&dir).unwrap();
    // A delete in the first segment and a new segment.
    let first_id = m.segments[0].id;
    let mut c = Commit::begin(&dir, &m);
    c.set_deleted(first_id, &[0]).unwrap();
    c.add_segment(&segment(&cb, &[11])).unwrap();
    c.finish().unwrap();
    let fresh = layout::open_in_memory(&dir).unwrap();
    let reused = layout::open_reusing(&dir, &layout::load_owned, Some(&first)).unwrap();
    assert_eq!(reused.segments.len(), fresh.segments.len());
    for (r, f) in reused.segments.iter().zip(&fresh.segments) {
        assert_eq!(r.entry(), f.entry());
        assert_eq!(r.deleted(), f.deleted());
        assert_eq!(r.ivf_offsets(), f.ivf_offsets());
        assert_eq!(r.ivf().unwrap().to_vec(), f.ivf().unwrap().to_vec());
        let (rc, fc) = (r.codes().unwrap(), f.codes().unwrap());
        match (rc, fc) {
            (layout::StoredCodes::U16(a), layout::StoredCodes::U16(b)) => assert_eq!(a, b),
            (layout::StoredCodes::U32(a), layout::StoredCodes::U32(b)) => assert_eq!(a, b),
            _ => panic!("code widths differ"),
        }
    }
    // Segments present in `first` share its arrays; the new one does not.
    let ptr = |s: &layout::OpenedSegment| match s.codes().unwrap() {
        layout::StoredCodes::U16(c) => c.as_ptr() as usize,
        layout::StoredCodes::U32(c) => c.as_ptr() as usize,
    };
    for s in &reused.segments {
        let old = first.segments.iter().find(|o| o.entry().id == s.entry().id);
        match old {
            Some(o) => assert_eq!(ptr(s), ptr(o), "segment {} rebuilt", s.entry().id),
            None => assert!(first.segments.iter().all(|o| ptr(o) != ptr(s))),
        }
    }
}
