//! Every bad input is refused with an error that names it, and nothing is written.
#![allow(clippy::unwrap_used)]

use ndarray::{Array2, ArrayView2};
use plaid::{Documents, Error, Index, IndexConfig, SearchParams, synth};
use std::path::Path;

fn small_corpus() -> synth::SynthCorpus {
    synth::corpus(&synth::SynthConfig::new(60).dim(16).lens(3, 9))
}

fn assert_nothing_written(dir: &Path) {
    assert!(!dir.exists(), "{} was created", dir.display());
    let parent = dir.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn create_err(docs: Documents<'_>, config: &IndexConfig) -> (Error, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let err = Index::create(docs, &dir, config).unwrap_err();
    assert_nothing_written(&dir);
    (err, tmp)
}

#[test]
fn rejects_empty_document() {
    let c = small_corpus();
    let mut lens = c.doclens.clone();
    lens.insert(3, 0);
    let (e, _t) = create_err(
        Documents::Flat {
            data: &c.embeddings,
            dim: 16,
            lens: &lens,
        },
        &IndexConfig::default(),
    );
    assert!(matches!(e, Error::EmptyDocument { doc: 3 }), "{e:?}");

    let a = Array2::<f32>::zeros((0, 16));
    let b = Array2::<f32>::ones((2, 16));
    let views = [b.view(), a.view()];
    let (e, _t) = create_err(Documents::Views(&views), &IndexConfig::default());
    assert!(matches!(e, Error::EmptyDocument { doc: 1 }), "{e:?}");
}

#[test]
fn rejects_no_documents() {
    let (e, _t) = create_err(Documents::Views(&[]), &IndexConfig::default());
    assert!(matches!(e, Error::NoDocuments), "{e:?}");
}

#[test]
fn rejects_non_finite_values() {
    let c = small_corpus();
    let mut data = c.embeddings.clone();
    let row = c.doclens[0] + 1; // document 1, token 1
    data[row * 16 + 5] = f32::NAN;
    let (e, _t) = create_err(
        Documents::Flat {
            data: &data,
            dim: 16,
            lens: &c.doclens,
        },
        &IndexConfig::default(),
    );
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
    data[row * 16 + 5] = f32::INFINITY;
    let (e, _t) = create_err(
        Documents::Flat {
            data: &data,
            dim: 16,
            lens: &c.doclens,
        },
        &IndexConfig::default(),
    );
    assert!(matches!(e, Error::NonFinite { doc: 1, .. }), "{e:?}");
}

#[test]
fn rejects_wrong_dimension() {
    let a = Array2::<f32>::ones((3, 16));
    let b = Array2::<f32>::ones((3, 15));
    let views = [a.view(), a.view(), b.view()];
    let (e, _t) = create_err(Documents::Views(&views), &IndexConfig::default());
    assert!(
        matches!(
            e,
            Error::DimMismatch {
                doc: 2,
                expected: 16,
                found: 15
            }
        ),
        "{e:?}"
    );
}

#[test]
fn rejects_lengths_that_do_not_add_up() {
    let c = small_corpus();
    let mut lens = c.doclens.clone();
    lens[0] += 1;
    let (e, _t) = create_err(
        Documents::Flat {
            data: &c.embeddings,
            dim: 16,
            lens: &lens,
        },
        &IndexConfig::default(),
    );
    assert!(matches!(e, Error::LengthsMismatch { .. }), "{e:?}");
}

#[test]
fn rejects_nbits_3() {
    let c = small_corpus();
    let (e, _t) = create_err(
        Documents::Flat {
            data: &c.embeddings,
            dim: 16,
            lens: &c.doclens,
        },
        &IndexConfig::default().nbits(3),
    );
    assert!(
        matches!(
            e,
            Error::Codec(plaid::codec::Error::UnsupportedNbits { nbits: 3 })
        ),
        "{e:?}"
    );
}

#[test]
fn rejects_non_empty_target_directory() {
    let c = small_corpus();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), b"keep me").unwrap();
    let e = Index::create(
        Documents::Flat {
            data: &c.embeddings,
            dim: 16,
            lens: &c.doclens,
        },
        &dir,
        &IndexConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Storage(plaid::storage::Error::Layout {
                fault: plaid::storage::LayoutFault::TargetNotEmpty,
                ..
            })
        ),
        "{e:?}"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("precious.txt")]);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

fn built() -> (Index, tempfile::TempDir, synth::SynthCorpus) {
    let c = small_corpus();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(
        Documents::Flat {
            data: &c.embeddings,
            dim: 16,
            lens: &c.doclens,
        },
        tmp.path().join("idx"),
        &IndexConfig::default(),
    )
    .unwrap();
    (index, tmp, c)
}

#[test]
fn rejects_bad_queries() {
    let (index, _t, c) = built();
    let params = SearchParams::with_k(5);
    // Empty query.
    let empty = Array2::<f32>::zeros((0, 16));
    let e = index.search(empty.view(), &params).unwrap_err();
    assert!(
        matches!(e, Error::Search(plaid::search::Error::EmptyQuery)),
        "{e:?}"
    );
    // Wrong dimension.
    let wrong = Array2::<f32>::ones((2, 8));
    let e = index.search(wrong.view(), &params).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Search(plaid::search::Error::QueryDim {
                expected: 16,
                found: 8
            })
        ),
        "{e:?}"
    );
    // NaN.
    let mut q = ArrayView2::from_shape((3, 16), &c.embeddings[..48])
        .unwrap()
        .to_owned();
    q[[2, 7]] = f32::NAN;
    let e = index.search(q.view(), &params).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Search(plaid::search::Error::NonFiniteQuery { token: 2, dim: 7 })
        ),
        "{e:?}"
    );
    // k = 0.
    let ok = ArrayView2::from_shape((3, 16), &c.embeddings[..48]).unwrap();
    let e = index.search(ok, &SearchParams::with_k(0)).unwrap_err();
    assert!(
        matches!(e, Error::Search(plaid::search::Error::ZeroK)),
        "{e:?}"
    );
    let e = index.exhaustive(ok, 0).unwrap_err();
    assert!(
        matches!(e, Error::Search(plaid::search::Error::ZeroK)),
        "{e:?}"
    );
    let e = index
        .search(ok, &SearchParams::with_k(3).n_probe(0))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Search(plaid::search::Error::BadParam {
                name: "n_probe",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn rejects_unknown_id_in_reconstruct() {
    let (index, _t, _c) = built();
    let e = index
        .reconstruct(&[plaid::types::DocId::new(60)])
        .unwrap_err();
    assert!(matches!(e, Error::UnknownDoc { id: 60 }), "{e:?}");
}
