//! Importing next-plaid and fast-plaid indexes: compared with what the source
//! libraries themselves return, on the committed fixtures of
//! `tests/data/import` (see its README), and refused cleanly when damaged.
#![allow(clippy::unwrap_used, clippy::print_stderr)] // Tests unwrap, and print the measured agreement.

use ndarray::ArrayView2;
use plaid::storage::import::{TokenSource, import, read_source};
use plaid::storage::layout::{self, StoredCodes};
use plaid::storage::npy::{self, NpyArray};
use plaid::storage::{ChunkPart, Error as StorageError, ImportFault, NpyErrorKind};
use plaid::types::DocId;
use plaid::{Error, Index, SearchParams, SkipReason, SourceFormat};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The fixtures: name, writer, the settings its search ran with.
struct Fixture {
    name: &'static str,
    format: SourceFormat,
    /// next-plaid's default `centroid_score_threshold` is 0.4; fast-plaid has none.
    threshold: Option<f32>,
    /// Largest |their value − ours| per reconstructed vector component.
    recon_tol: f32,
    /// Largest |their score − our exact MaxSim| per query token for the same
    /// document, from the precision of their scoring kernel.
    score_tol_per_token: f32,
}

/// f16's unit roundoff: fast-plaid decompresses and scores in float16.
const U16: f32 = 1.0 / 2048.0;

const FIXTURES: &[Fixture] = &[
    // next-plaid 1.8.5 scores with an int8 query × int8 weight kernel (the
    // fixtures' README measured up to 0.008 against 1.1.2's f32 scores on
    // 32-token queries); it reconstructs in f32 like us.
    Fixture {
        name: "np185-d32-nb2",
        format: SourceFormat::NextPlaid,
        threshold: Some(0.4),
        recon_tol: 1e-5,
        score_tol_per_token: 1e-3,
    },
    // next-plaid 1.1.2 decompresses to f32 and scores in f32 like us: each
    // token's dot product of 32 terms ≤ 1 is good to 32·2⁻²³.
    Fixture {
        name: "np112-d32-nb4",
        format: SourceFormat::NextPlaid,
        threshold: Some(0.4),
        recon_tol: 1e-5,
        score_tol_per_token: 32.0 / 8_388_608.0,
    },
    // fast-plaid computes in float16: every reconstructed value is an f16
    // (checked below), after an f16 add, an f16 norm and an f16 division,
    // each rounding by up to U16/2 for values of magnitude ≤ 1, so two f16
    // unit roundoffs bound the difference; scores likewise.
    Fixture {
        name: "fastplaid16-d32-nb2",
        format: SourceFormat::FastPlaid,
        threshold: None,
        recon_tol: 2.0 * U16,
        score_tol_per_token: 2.0 * U16,
    },
    Fixture {
        name: "fastplaid16-d32-nb4",
        format: SourceFormat::FastPlaid,
        threshold: None,
        recon_tol: 2.0 * U16,
        score_tol_per_token: 2.0 * U16,
    },
    Fixture {
        name: "fastplaid17-d32-nb4",
        format: SourceFormat::FastPlaid,
        threshold: None,
        recon_tol: 2.0 * U16,
        score_tol_per_token: 2.0 * U16,
    },
];

/// Whether `x` is exactly representable as an IEEE half.
fn is_f16(x: f32) -> bool {
    let a = x.abs();
    if a == 0.0 {
        return true;
    }
    if a < 6.103_515_6e-5 {
        // Subnormal halves are multiples of 2⁻²⁴.
        return (a * 16_777_216.0).fract() == 0.0;
    }
    let exp = ((a.to_bits() >> 23) & 0xff) as i32 - 127;
    exp <= 15 && a.to_bits() & 0x1fff == 0
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/import")
}

fn read(path: &Path) -> NpyArray {
    npy::read_npy(path).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
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
fn snapshot(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
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
struct Source {
    tmp: TempDir,
    before: Vec<(std::ffi::OsString, Vec<u8>)>,
}

impl Source {
    fn new(fixture: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        copy_dir(&data().join(fixture).join("index"), &src);
        set_readonly(&src, true);
        let before = snapshot(&src);
        Source { tmp, before }
    }

    fn src(&self) -> PathBuf {
        self.tmp.path().join("src")
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn assert_unchanged(&self) {
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

/// The fixture queries as `[tokens, 32]` matrices.
fn queries() -> Vec<Vec<f32>> {
    let dir = data().join("inputs/d32");
    let rows = read(&dir.join("queries.npy"));
    let rows = rows.as_slice::<f32>().unwrap();
    let lens = read(&dir.join("query_lens.npy")).to_i64_vec().unwrap();
    let mut out = Vec::new();
    let mut off = 0;
    for l in lens {
        let l = l as usize;
        out.push(rows[off * 32..(off + l) * 32].to_vec());
        off += l;
    }
    out
}

fn q(data: &[f32]) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((data.len() / 32, 32), data).unwrap()
}

/// The library's own top-10 for each query (ids, scores), without the -1 padding.
fn their_top10(fixture: &str) -> Vec<(Vec<u32>, Vec<f32>)> {
    let dir = data().join(fixture);
    let ids = read(&dir.join("top10_ids.npy")).to_i64_vec().unwrap();
    let scores = read(&dir.join("top10_scores.npy")).to_f32_vec().unwrap();
    ids.chunks(10)
        .zip(scores.chunks(10))
        .map(|(i, s)| {
            let n = i.iter().take_while(|&&x| x >= 0).count();
            (i[..n].iter().map(|&x| x as u32).collect(), s[..n].to_vec())
        })
        .collect()
}

/// Source codes (first `t`, dropping merged padding) and residual bytes.
fn source_tokens(src: &Path, t: usize, packed_len: usize) -> (Vec<i64>, Vec<u8>) {
    let (c, r) = if src.join("0.codes.npy").exists() {
        ("0.codes.npy", "0.residuals.npy")
    } else {
        ("merged_codes.npy", "merged_residuals.npy")
    };
    let mut codes = read(&src.join(c)).to_i64_vec().unwrap();
    codes.truncate(t);
    let mut res = read(&src.join(r)).as_bytes().to_vec();
    res.truncate(t * packed_len);
    (codes, res)
}

#[test]
fn import_preserves_codes_residuals_and_reconstructions() {
    for f in FIXTURES {
        let s = Source::new(f.name);
        let report = import(&s.src(), &s.out(), None).unwrap();
        s.assert_unchanged();
        assert_eq!(report.format, f.format, "{}", f.name);
        assert!(report.detected);
        assert_eq!(report.source_ivf_matches, Some(true), "{}", f.name);
        assert_eq!((report.num_docs, report.num_tokens), (60, 1289));
        // fast-plaid's embeddings.npy is a pickled object array: reported, not read.
        if f.name == "fastplaid16-d32-nb4" {
            assert!(
                report
                    .skipped
                    .iter()
                    .any(|x| x.name == "embeddings.npy" && x.reason == SkipReason::Pickled)
            );
        }

        // Exact codes and residual bytes.
        let opened = layout::open_in_memory(&s.out()).unwrap();
        let seg = &opened.segments[0];
        let packed_len = opened.codebook.packed_len();
        let (codes, res) = source_tokens(&s.src(), 1289, packed_len);
        let ours: Vec<i64> = match seg.codes().unwrap() {
            StoredCodes::U16(c) => c.iter().map(|&x| i64::from(x)).collect(),
            StoredCodes::U32(c) => c.iter().map(|&x| i64::from(x)).collect(),
        };
        assert_eq!(ours, codes, "{}: codes", f.name);
        assert_eq!(
            seg.residuals().unwrap(),
            &res[..],
            "{}: residual bytes",
            f.name
        );
        // Centroids: exactly the stored values (f16 widens exactly).
        let centroids = read(&s.src().join("centroids.npy")).to_f32_vec().unwrap();
        assert_eq!(opened.codebook.centroids(), &centroids[..], "{}", f.name);

        // Decompressed vectors vs the library's own reconstructions.
        let index = Index::open(s.out()).unwrap();
        let ids: Vec<DocId> = (0..60).map(DocId::new).collect();
        let docs = index.reconstruct(&ids).unwrap();
        let dir = data().join(f.name);
        let theirs = read(&dir.join("reconstructed.npy")).to_f32_vec().unwrap();
        let lens = read(&dir.join("reconstructed_lens.npy"))
            .to_i64_vec()
            .unwrap();
        let ours: Vec<f32> = docs.iter().flat_map(|d| d.iter().copied()).collect();
        let our_lens: Vec<i64> = docs.iter().map(|d| d.nrows() as i64).collect();
        assert_eq!(our_lens, lens, "{}: doclens", f.name);
        assert_eq!(ours.len(), theirs.len());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{}: max |reconstruction diff| = {worst:e}", f.name);
        assert!(worst <= f.recon_tol, "{}: {worst}", f.name);
        if f.format == SourceFormat::FastPlaid {
            assert!(theirs.iter().all(|&x| is_f16(x)), "{}", f.name);
        }
    }
}

/// MaxSim of `query` against `doc` (both row-major, dim 32), in f64: the
/// oracle for exact scoring.
fn maxsim(query: &[f32], doc: &[f32]) -> f64 {
    query
        .chunks(32)
        .map(|qt| {
            doc.chunks(32)
                .map(|dt| {
                    qt.iter()
                        .zip(dt)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                })
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum()
}

/// Checks that `ours` ranks the documents of `theirs` (ids with scores, best
/// first) the same way up to ties: every pair whose reference scores differ
/// by more than `2·tol` keeps its order, and every shared score agrees
/// within `tol`.
fn assert_same_ranking(what: &str, ours: &[(u32, f32)], theirs: &[(u32, f32)], tol: f32) {
    let ids = |v: &[(u32, f32)]| v.iter().map(|x| x.0).collect::<BTreeSet<_>>();
    assert_eq!(ids(ours), ids(theirs), "{what}: different documents");
    let pos = |id: u32| ours.iter().position(|x| x.0 == id).unwrap();
    for (i, &(a, sa)) in theirs.iter().enumerate() {
        let ours_a = ours[pos(a)].1;
        assert!(
            (ours_a - sa).abs() <= tol,
            "{what}: doc {a}: ours {ours_a}, theirs {sa}, tol {tol}"
        );
        for &(b, sb) in &theirs[i + 1..] {
            if sa - sb > 2.0 * tol {
                assert!(pos(a) < pos(b), "{what}: {a} ({sa}) and {b} ({sb}) swapped");
            }
        }
    }
}

#[test]
fn search_agrees_with_the_source_library() {
    let queries = queries();
    for f in FIXTURES {
        let s = Source::new(f.name);
        let (index, _) = Index::import(s.out(), s.src(), Some(f.format)).unwrap();
        s.assert_unchanged();
        // Their settings: n_ivf_probe 8, n_full_scores 4096 (a quarter,
        // 1024, scored exactly, as ours), next-plaid's t_cs 0.4.
        let params = SearchParams::with_k(10)
            .n_probe(8)
            .n_full_scores(4096)
            .centroid_score_threshold(f.threshold);
        let recon = read(&data().join(f.name).join("reconstructed.npy"))
            .to_f32_vec()
            .unwrap();
        let lens = read(&data().join(f.name).join("reconstructed_lens.npy"))
            .to_i64_vec()
            .unwrap();
        let mut offsets = vec![0usize];
        for l in &lens {
            offsets.push(offsets.last().unwrap() + *l as usize * 32);
        }
        let (mut common, mut total) = (0, 0);
        for (qi, (query, (their_ids, their_scores))) in
            queries.iter().zip(their_top10(f.name)).enumerate()
        {
            let what = format!("{} query {qi}", f.name);
            let nq = (query.len() / 32) as f32;
            let tol = f.score_tol_per_token * nq;
            // 1. The PLAID pipeline at their settings: top-10 overlap.
            let hits = index.search(q(query), &params).unwrap();
            let ours: BTreeSet<u32> = hits.ids.iter().map(|d| d.as_u32()).collect();
            let c = their_ids.iter().filter(|i| ours.contains(i)).count();
            assert!(
                c * 10 >= 9 * their_ids.len(),
                "{what}: overlap {c}/{}",
                their_ids.len()
            );
            common += c;
            total += their_ids.len();

            // 2. Exact MaxSim over the same candidates: ours over the
            //    documents they returned vs the scores they returned.
            let allowed: Vec<DocId> = their_ids.iter().map(|&i| DocId::new(i)).collect();
            let within = index.search_within(q(query), &params, &allowed).unwrap();
            let ours: Vec<(u32, f32)> = within
                .ids
                .iter()
                .map(|d| d.as_u32())
                .zip(within.scores)
                .collect();
            let theirs: Vec<(u32, f32)> = their_ids.iter().copied().zip(their_scores).collect();
            assert_same_ranking(&format!("{what}, their candidates"), &ours, &theirs, tol);

            // 3. Exhaustive: our exact MaxSim over every document vs MaxSim
            //    (in f64) over their own reconstructions of every document:
            //    the same ten documents in the same order. Per query token,
            //    the reconstructions differ by at most recon_tol per
            //    component against a unit query (‖q‖₁ ≤ √32), plus our f32 dot.
            let ex = index.exhaustive(q(query), 10).unwrap();
            let mut oracle: Vec<(u32, f64)> = (0..lens.len())
                .map(|d| (d as u32, maxsim(query, &recon[offsets[d]..offsets[d + 1]])))
                .collect();
            oracle.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let oracle_ids: Vec<u32> = oracle[..10].iter().map(|x| x.0).collect();
            let ex_ids: Vec<u32> = ex.ids.iter().map(|d| d.as_u32()).collect();
            assert_eq!(ex_ids, oracle_ids, "{what}: exhaustive");
            let tol = nq * (32f32.sqrt() * f.recon_tol + 32.0 / 8_388_608.0);
            for (ours, (_, theirs)) in ex.scores.iter().zip(&oracle) {
                assert!(
                    (f64::from(*ours) - theirs).abs() <= f64::from(tol),
                    "{what}: {ours} vs {theirs}"
                );
            }
        }
        eprintln!(
            "{}: top-10 overlap with the library {common}/{total}",
            f.name
        );
        assert!(common * 10 >= 9 * total);
    }
}

// ---------------------------------------------------------------------------
// Layout variants and damaged sources, on writable copies of np185-d32-nb2.

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
    (
        Imported {
            codebook: s.codebook,
            doclens: s.segment.doclens,
            codes,
            residuals: s.segment.residuals,
            ivf_lengths: s.segment.ivf_lengths,
            ivf: s.segment.ivf,
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
    let err = import(&src, &out, Some(SourceFormat::NextPlaid)).unwrap_err();
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
    let err = import(&empty, &out, None).unwrap_err();
    assert!(
        matches!(fault(&err), Some(ImportFault::UnknownLayout { found }) if found.is_empty()),
        "{err}"
    );
    // Files, but no metadata.json: the message lists them.
    std::fs::write(empty.join("centroids.npy"), b"x").unwrap();
    let err = import(&empty, &out, None).unwrap_err();
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
    let err = import(&src, &out, None).unwrap_err();
    assert!(
        matches!(fault(&err), Some(ImportFault::UnknownLayout { found }) if found.iter().any(|f| f == "metadata.json")),
        "{err}"
    );
    // …which an explicit format still imports.
    assert!(import(&src, &out, Some(SourceFormat::NextPlaid)).is_ok());
    std::fs::remove_dir_all(&out).unwrap();

    // A fast-plaid index that next-plaid converted in place carries both marks.
    let (_t2, fp) = work("fastplaid16-d32-nb4");
    set_meta(&fp, "next_plaid_compatible", true.into());
    let err = import(&fp, &out, None).unwrap_err();
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
    let report = import(&fp, &out, Some(SourceFormat::FastPlaid)).unwrap();
    assert!(!report.detected);
    assert_eq!(report.format, SourceFormat::FastPlaid);

    // The output may not lie inside the source, nor be a non-empty directory.
    let err = import(&fp, &fp.join("out"), None).unwrap_err();
    assert_eq!(fault(&err), Some(&ImportFault::OutputInsideSource));
    let err = import(&fp, &out, Some(SourceFormat::FastPlaid)).unwrap_err();
    assert!(matches!(err, StorageError::Layout { .. }), "{err}");
}
