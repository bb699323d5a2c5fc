//! Layout variants and damaged sources, on writable copies of a fixture.

use crate::{copy_dir, data, read, snapshot};
use plaid::storage::import::{TokenSource, import, read_source};
use plaid::storage::layout;
use plaid::storage::npy;
use plaid::storage::{ChunkPart, Error as StorageError, ImportFault, NpyErrorKind};
use plaid::{Error, Index, SkipReason, SourceFormat};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const BASE: &str = "np185-d32-nb2";
const T: usize = 1289;
const K: usize = 512;
/// Packed residual bytes per token at dim 32, nbits 2.
const PACKED: usize = 8;

/// A writable copy of a fixture's index at `<tmp>/src`.
fn work(fixture: &str) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_dir(&data().join(fixture).join("index"), &src);
    (tmp, src)
}

fn write_npy<T: npy::Element>(path: &Path, shape: &[usize], data: &[T]) {
    std::fs::write(path, npy::npy_bytes(shape, data).unwrap()).unwrap();
}

fn set_meta(src: &Path, key: &str, value: serde_json::Value) {
    let path = src.join("metadata.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m[key] = value;
    std::fs::write(path, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn doclens_json(src: &Path, chunk: usize) -> Vec<u32> {
    serde_json::from_slice(&std::fs::read(src.join(format!("doclens.{chunk}.json"))).unwrap())
        .unwrap()
}

/// Splits the one chunk of `src` into two (documents 0..30 and 30..60), as
/// next-plaid writes an index with `batch_size` 30, without merged files.
fn split_in_two(src: &Path) {
    let lens = doclens_json(src, 0);
    let t0: usize = lens[..30].iter().map(|&l| l as usize).sum();
    let codes = read(&src.join("0.codes.npy")).to_i64_vec().unwrap();
    let res = read(&src.join("0.residuals.npy")).as_bytes().to_vec();
    for f in [
        "merged_codes.npy",
        "merged_residuals.npy",
        "merged_inv_norms.npy",
        "0.inv_norms.npy",
    ] {
        std::fs::remove_file(src.join(f)).unwrap();
    }
    for (i, (docs, toks)) in [(0..30, 0..t0), (30..60, t0..T)].into_iter().enumerate() {
        write_npy(
            &src.join(format!("{i}.codes.npy")),
            &[toks.len()],
            &codes[toks.clone()],
        );
        let bytes = &res[toks.start * PACKED..toks.end * PACKED];
        write_npy(
            &src.join(format!("{i}.residuals.npy")),
            &[toks.len(), PACKED],
            bytes,
        );
        std::fs::write(
            src.join(format!("doclens.{i}.json")),
            serde_json::to_vec(&lens[docs]).unwrap(),
        )
        .unwrap();
    }
    set_meta(src, "num_chunks", 2.into());
}

/// What an import carries over, for comparing layouts.
#[derive(Debug, PartialEq)]
struct Imported {
    codebook: plaid::codec::Codebook,
    doclens: Vec<u32>,
    codes: Vec<u32>,
    residuals: Vec<u8>,
    ivf_lengths: Vec<u32>,
    ivf: Vec<u32>,
}

fn imported(src: &Path, from: Option<SourceFormat>) -> (Imported, plaid::ImportReport) {
    let s = read_source(src, from).unwrap();
    let codes = match s.segment.codes {
        layout::CodesBuf::U16(c) => c.iter().map(|&x| u32::from(x)).collect(),
        layout::CodesBuf::U32(c) => c,
    };
    assert_eq!(s.segment.doc_ids, (0..60).collect::<Vec<u32>>());
    let k = s.codebook.num_centroids();
    let (ivf_lengths, ivf) = layout::SegmentData::build_ivf(&s.segment.doclens, &codes, k);
    (
        Imported {
            codebook: s.codebook,
            doclens: s.segment.doclens,
            codes,
            residuals: s.segment.residuals,
            ivf_lengths,
            ivf,
        },
        s.report,
    )
}

/// Rewrites an npy file's header with `descr` in place of its own (same length).
fn replace_descr(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap();
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn every_layout_variant_imports_the_same_index() {
    let (_t, base_src) = work(BASE);
    let (base, report) = imported(&base_src, None);
    assert_eq!(report.tokens_from, TokenSource::Chunks { num_chunks: 1 });

    type Mutation = fn(&Path);
    let variants: &[(&str, Mutation, TokenSource)] = &[
        (
            // The directory right after next-plaid's create, before its first load.
            "chunk files only",
            |src| {
                let keep =
                    std::fs::read_to_string(data().join(BASE).join("files_before_first_load.txt"))
                        .unwrap();
                let keep: BTreeSet<&str> = keep.lines().collect();
                for e in std::fs::read_dir(src).unwrap() {
                    let e = e.unwrap();
                    if !keep.contains(e.file_name().to_str().unwrap()) {
                        std::fs::remove_file(e.path()).unwrap();
                    }
                }
            },
            TokenSource::Chunks { num_chunks: 1 },
        ),
        (
            // Like fast-plaid 1.7; next-plaid's merged files start their data
            // at byte 129, misaligned for i64.
            "merged files only",
            |src| {
                std::fs::remove_file(src.join("0.codes.npy")).unwrap();
                std::fs::remove_file(src.join("0.residuals.npy")).unwrap();
            },
            TokenSource::Merged { padding_rows: 18 },
        ),
        (
            "two chunks",
            split_in_two,
            TokenSource::Chunks { num_chunks: 2 },
        ),
        (
            // Older fast-plaid releases store i64 ivf_lengths.
            "i64 ivf_lengths",
            |src| {
                let l = read(&src.join("ivf_lengths.npy")).to_i64_vec().unwrap();
                write_npy(&src.join("ivf_lengths.npy"), &[l.len()], &l);
            },
            TokenSource::Chunks { num_chunks: 1 },
        ),
        (
            "'<u1' residuals and i32 codes",
            |src| {
                replace_descr(&src.join("0.residuals.npy"), "'|u1'", "'<u1'");
                let c = read(&src.join("0.codes.npy")).to_i64_vec().unwrap();
                let c: Vec<i32> = c.iter().map(|&x| x as i32).collect();
                write_npy(&src.join("0.codes.npy"), &[c.len()], &c);
            },
            TokenSource::Chunks { num_chunks: 1 },
        ),
        (
            "side files",
            |src| {
                std::fs::write(src.join("metadata.db"), b"SQLite format 3\0").unwrap();
                let mut pickled = npy::encode_header(npy::DType::U8, &[3]).unwrap();
                let at = pickled.windows(5).position(|w| w == b"'|u1'").unwrap();
                pickled[at..at + 5].copy_from_slice(b"'|O' ");
                pickled.extend_from_slice(b"\x80\x04N.");
                std::fs::write(src.join("buffer.npy"), pickled).unwrap();
                std::fs::write(src.join("notes.txt"), b"hello").unwrap();
                // A chunk beyond num_chunks is not read.
                std::fs::copy(src.join("0.codes.npy"), src.join("5.codes.npy")).unwrap();
            },
            TokenSource::Chunks { num_chunks: 1 },
        ),
    ];
    for (name, mutate, tokens_from) in variants {
        let (_t, src) = work(BASE);
        mutate(&src);
        // i64 ivf_lengths mark fast-plaid, so next to next-plaid's marks the
        // layout is ambiguous and has to be named.
        let from = (*name == "i64 ivf_lengths").then_some(SourceFormat::NextPlaid);
        let (got, report) = imported(&src, from);
        assert_eq!(report.tokens_from, *tokens_from, "{name}");
        assert_eq!(report.source_ivf_matches, Some(true), "{name}");
        assert!(got == base, "{name}: imports differently");
        if *name == "side files" {
            let reason = |n: &str| {
                report
                    .skipped
                    .iter()
                    .find(|f| f.name == n)
                    .map(|f| f.reason)
            };
            assert_eq!(reason("metadata.db"), Some(SkipReason::MetadataDb));
            assert_eq!(reason("buffer.npy"), Some(SkipReason::Pickled));
            assert_eq!(reason("notes.txt"), Some(SkipReason::Unrecognised));
            assert_eq!(reason("5.codes.npy"), Some(SkipReason::Unrecognised));
            assert_eq!(reason("0.codes.npy"), None);
            assert_eq!(reason("embeddings.npy"), None); // not in the committed copy
            assert_eq!(reason("merged_codes.npy"), Some(SkipReason::Duplicate));
            assert_eq!(reason("0.inv_norms.npy"), Some(SkipReason::Derived));
        }
    }
}

/// Runs an import of a damaged copy of [`BASE`]: it must fail as `expect`
/// says, name `file`, leave the source as it was and write nothing.
fn check_refused(name: &str, mutate: fn(&Path), file: &str, expect: fn(&StorageError) -> bool) {
    let (tmp, src) = work(BASE);
    mutate(&src);
    let before = snapshot(&src);
    let out = tmp.path().join("out");
    let err = import(&out, &src, Some(SourceFormat::NextPlaid)).unwrap_err();
    assert!(expect(&err), "{name}: {err:?}");
    let path = match &err {
        StorageError::Import { path, .. }
        | StorageError::Npy { path, .. }
        | StorageError::Codec { path, .. } => path,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(path, &src.join(file), "{name}: {err}");
    assert!(err.to_string().contains(file), "{name}: {err}");
    assert!(!out.exists(), "{name}: output written");
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["src"], "{name}: stray files");
    assert_eq!(snapshot(&src), before, "{name}: source changed");
    // The facade reports it as a storage error.
    let err = Index::import(&out, &src, Some(SourceFormat::NextPlaid)).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{name}");
}

fn rewrite_codes(src: &Path, at: usize, code: i64) {
    let mut c = read(&src.join("0.codes.npy")).to_i64_vec().unwrap();
    c[at] = code;
    write_npy(&src.join("0.codes.npy"), &[c.len()], &c);
}

fn truncate(path: &Path, by: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - by).unwrap();
}

fn fault(e: &StorageError) -> Option<&ImportFault> {
    match e {
        StorageError::Import { fault, .. } => Some(fault),
        _ => None,
    }
}

#[test]
fn damaged_sources_are_refused_with_the_file_named() {
    check_refused(
        "missing chunk",
        |s| {
            split_in_two(s);
            std::fs::remove_file(s.join("1.codes.npy")).unwrap();
        },
        "1.codes.npy",
        |e| {
            fault(e)
                == Some(&ImportFault::MissingChunk {
                    chunk: 1,
                    part: ChunkPart::Codes,
                })
        },
    );
    check_refused(
        "missing residual chunk",
        |s| {
            std::fs::remove_file(s.join("0.residuals.npy")).unwrap();
        },
        "0.residuals.npy",
        |e| {
            fault(e)
                == Some(&ImportFault::MissingChunk {
                    chunk: 0,
                    part: ChunkPart::Residuals,
                })
        },
    );
    check_refused(
        "missing doclens chunk",
        |s| set_meta(s, "num_chunks", 2.into()),
        "doclens.1.json",
        |e| {
            fault(e)
                == Some(&ImportFault::MissingChunk {
                    chunk: 1,
                    part: ChunkPart::Doclens,
                })
        },
    );
    check_refused(
        "doclens do not match the codes",
        |s| {
            split_in_two(s);
            // Move one token from chunk 1's first document to chunk 0's last:
            // the total is unchanged, each chunk's sum is not.
            let (mut a, mut b) = (doclens_json(s, 0), doclens_json(s, 1));
            *a.last_mut().unwrap() += 1;
            b[0] -= 1;
            std::fs::write(s.join("doclens.0.json"), serde_json::to_vec(&a).unwrap()).unwrap();
            std::fs::write(s.join("doclens.1.json"), serde_json::to_vec(&b).unwrap()).unwrap();
        },
        "0.codes.npy",
        |e| matches!(fault(e), Some(ImportFault::DoclensMismatch { chunk: 0, doclens_tokens, codes }) if doclens_tokens == &(codes + 1)),
    );
    check_refused(
        "metadata count",
        |s| set_meta(s, "num_embeddings", 1290.into()),
        "metadata.json",
        |e| {
            fault(e)
                == Some(&ImportFault::CountMismatch {
                    field: "num_embeddings",
                    recorded: 1290,
                    found: T as u64,
                })
        },
    );
    check_refused(
        "code = K",
        |s| rewrite_codes(s, 100, K as i64),
        "0.codes.npy",
        |e| {
            fault(e)
                == Some(&ImportFault::CodeOutOfRange {
                    position: 100,
                    code: K as i64,
                    num_centroids: K,
                })
        },
    );
    check_refused(
        "negative code",
        |s| rewrite_codes(s, 7, -1),
        "0.codes.npy",
        |e| {
            fault(e)
                == Some(&ImportFault::CodeOutOfRange {
                    position: 7,
                    code: -1,
                    num_centroids: K,
                })
        },
    );
    check_refused(
        "code ≥ K in merged file",
        |s| {
            std::fs::remove_file(s.join("0.codes.npy")).unwrap();
            std::fs::remove_file(s.join("0.residuals.npy")).unwrap();
            let mut c = read(&s.join("merged_codes.npy")).to_i64_vec().unwrap();
            c[T - 1] = 1 << 40;
            write_npy(&s.join("merged_codes.npy"), &[c.len()], &c);
        },
        "merged_codes.npy",
        |e| {
            fault(e)
                == Some(&ImportFault::CodeOutOfRange {
                    position: T - 1,
                    code: 1 << 40,
                    num_centroids: K,
                })
        },
    );
    check_refused(
        "truncated residuals",
        |s| truncate(&s.join("0.residuals.npy"), 5),
        "0.residuals.npy",
        |e| {
            matches!(
                e,
                StorageError::Npy {
                    kind: NpyErrorKind::Truncated { .. },
                    ..
                }
            )
        },
    );
    check_refused(
        "truncated header",
        |s| truncate(&s.join("centroids.npy"), 65_600),
        "centroids.npy",
        |e| {
            matches!(
                e,
                StorageError::Npy {
                    kind: NpyErrorKind::Truncated { .. },
                    ..
                }
            )
        },
    );
    check_refused(
        "truncated merged codes",
        |s| {
            std::fs::remove_file(s.join("0.codes.npy")).unwrap();
            std::fs::remove_file(s.join("0.residuals.npy")).unwrap();
            truncate(&s.join("merged_codes.npy"), 8);
        },
        "merged_codes.npy",
        |e| {
            matches!(
                e,
                StorageError::Npy {
                    kind: NpyErrorKind::Truncated { .. },
                    ..
                }
            )
        },
    );
    check_refused(
        "merged file too short",
        |s| {
            std::fs::remove_file(s.join("0.codes.npy")).unwrap();
            std::fs::remove_file(s.join("0.residuals.npy")).unwrap();
            write_npy(&s.join("merged_codes.npy"), &[1000], &vec![0i64; 1000]);
        },
        "merged_codes.npy",
        |e| matches!(fault(e), Some(ImportFault::MergedRows { rows: 1000, .. })),
    );
    check_refused(
        "residual width",
        |s| write_npy(&s.join("0.residuals.npy"), &[T, 4], &vec![0u8; T * 4]),
        "0.residuals.npy",
        |e| {
            fault(e)
                == Some(&ImportFault::Shape {
                    what: "residual bytes per token",
                    expected: PACKED,
                    found: 4,
                })
        },
    );
    check_refused(
        "pickled codes",
        |s| replace_descr(&s.join("0.codes.npy"), "'<i8'", "'|O' "),
        "0.codes.npy",
        |e| {
            matches!(
                e,
                StorageError::Npy {
                    kind: NpyErrorKind::UnsupportedDtype { .. },
                    ..
                }
            )
        },
    );
    check_refused(
        "float codes",
        |s| replace_descr(&s.join("0.codes.npy"), "'<i8'", "'<f8'"),
        "0.codes.npy",
        |e| {
            matches!(
                e,
                StorageError::Npy {
                    kind: NpyErrorKind::DtypeMismatch { .. },
                    ..
                }
            )
        },
    );
    check_refused(
        "missing centroids",
        |s| std::fs::remove_file(s.join("centroids.npy")).unwrap(),
        "centroids.npy",
        |e| fault(e) == Some(&ImportFault::MissingFile),
    );
    check_refused(
        "bad doclens JSON",
        |s| std::fs::write(s.join("doclens.0.json"), b"[1, 2,").unwrap(),
        "doclens.0.json",
        |e| matches!(fault(e), Some(ImportFault::BadJson { .. })),
    );
    check_refused(
        "negative doclen",
        |s| std::fs::write(s.join("doclens.0.json"), b"[3, -2]").unwrap(),
        "doclens.0.json",
        |e| {
            fault(e)
                == Some(&ImportFault::BadDoclen {
                    index: 1,
                    value: -2,
                })
        },
    );
    check_refused(
        "nbits 8",
        |s| set_meta(s, "nbits", 8.into()),
        "metadata.json",
        |e| fault(e) == Some(&ImportFault::UnsupportedNbits { nbits: 8 }),
    );
    check_refused(
        "binary index",
        |s| set_meta(s, "binary", true.into()),
        "metadata.json",
        |e| fault(e) == Some(&ImportFault::BinaryIndex),
    );
    check_refused(
        "no nbits",
        |s| set_meta(s, "nbits", "two".into()),
        "metadata.json",
        |e| matches!(fault(e), Some(ImportFault::BadField { field: "nbits", .. })),
    );
    check_refused(
        "embedding_dim",
        |s| set_meta(s, "embedding_dim", 64.into()),
        "centroids.npy",
        |e| {
            matches!(
                fault(e),
                Some(ImportFault::Shape {
                    expected: 64,
                    found: 32,
                    ..
                })
            )
        },
    );
    check_refused(
        "unsorted cutoffs",
        |s| write_npy(&s.join("bucket_cutoffs.npy"), &[3], &[0.1f32, -0.1, 0.2]),
        "bucket_weights.npy",
        |e| matches!(e, StorageError::Codec { .. }),
    );
    check_refused(
        "NaN centroid",
        |s| {
            let mut c = read(&s.join("centroids.npy")).to_f32_vec().unwrap();
            c[5] = f32::NAN;
            write_npy(&s.join("centroids.npy"), &[K, 32], &c);
        },
        "centroids.npy",
        |e| matches!(e, StorageError::Codec { .. }),
    );
}

#[test]
fn detection_names_what_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Nothing at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = import(&out, &empty, None).unwrap_err();
    assert!(
        matches!(fault(&err), Some(ImportFault::UnknownLayout { found }) if found.is_empty()),
        "{err}"
    );
    // Files, but no metadata.json: the message lists them.
    std::fs::write(empty.join("centroids.npy"), b"x").unwrap();
    let err = import(&out, &empty, None).unwrap_err();
    assert!(
        matches!(fault(&err), Some(ImportFault::UnknownLayout { found }) if found == &["centroids.npy"])
    );
    assert!(err.to_string().contains("centroids.npy"), "{err}");
    // metadata.json without any library's marks.
    let (_t, src) = work(BASE);
    for key in ["embedding_dim", "next_plaid_compatible", "binary"] {
        let path = src.join("metadata.json");
        let mut m: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        m.remove(key);
        std::fs::write(path, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_str().unwrap().to_owned();
        if n.ends_with(".lock") || n.contains("inv_norms") || n == "embeddings_lengths.json" {
            std::fs::remove_file(p).unwrap();
        }
    }
    let err = import(&out, &src, None).unwrap_err();
    assert!(
        matches!(fault(&err), Some(ImportFault::UnknownLayout { found }) if found.iter().any(|f| f == "metadata.json")),
        "{err}"
    );
    // …which an explicit format still imports.
    assert!(import(&out, &src, Some(SourceFormat::NextPlaid)).is_ok());
    std::fs::remove_dir_all(&out).unwrap();

    // A fast-plaid index that next-plaid converted in place carries both marks.
    let (_t2, fp) = work("fastplaid16-d32-nb4");
    set_meta(&fp, "next_plaid_compatible", true.into());
    let err = import(&out, &fp, None).unwrap_err();
    match fault(&err) {
        Some(ImportFault::AmbiguousLayout {
            next_plaid,
            fast_plaid,
        }) => {
            assert!(
                next_plaid.contains(&plaid::storage::import::Evidence::MetadataKey(
                    "next_plaid_compatible"
                ))
            );
            assert!(
                fast_plaid.contains(&plaid::storage::import::Evidence::MetadataKey(
                    "compress_only"
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("compress_only"), "{err}");
    assert!(!out.exists());
    let report = import(&out, &fp, Some(SourceFormat::FastPlaid)).unwrap();
    assert!(!report.detected);
    assert_eq!(report.format, SourceFormat::FastPlaid);

    // The output may not lie inside the source, nor be a non-empty directory.
    let err = import(&fp.join("out"), &fp, None).unwrap_err();
    assert_eq!(fault(&err), Some(&ImportFault::OutputInsideSource));
    let err = import(&out, &fp, Some(SourceFormat::FastPlaid)).unwrap_err();
    assert!(matches!(err, StorageError::Layout { .. }), "{err}");
}
