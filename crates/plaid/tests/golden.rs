//! Compatibility: indexes written by earlier releases keep opening and keep
//! returning the top-k recorded when they were written.
//!
//! Each format version has a directory `tests/data/v<N>/` holding a tiny
//! index, its queries and `expected.json`; its README gives the command that
//! wrote it. The files are committed and never regenerated, so a change that
//! breaks reading an old index fails here.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use ndarray::ArrayView2;
use plaid::storage::npy::read_npy;
use plaid::types::EmbeddingsView;
use plaid::{ExactScoring, Hits, Index, Kernel, SearchParams};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One query's recorded result.
#[derive(Debug, serde::Deserialize)]
struct Expected {
    query: usize,
    ids: Vec<u32>,
    scores: Vec<f64>,
}

fn data_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/v{version}"))
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The unit roundoff of f32, `u = 2⁻²⁴`.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// `γ_n = n·u / (1 − n·u)` (Higham §3.1).
fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U;
    nu / (1.0 - nu)
}

/// How far a recomputed score may be from the recorded one.
///
/// Same code, same data: on the machine that wrote `expected.json` the scores
/// come out bit for bit, so this is not a tolerance for noise. Scores can only
/// move when a float code path changes: another SIMD kernel (FMA, another
/// summation order) or a rewritten loop. The bound is derived, not chosen;
/// queries and decompressed documents are unit vectors.
///
/// - MaxSim: a score is a sum of `nq` maxima of `dim`-long dot products. In any
///   summation order a dot product is within `γ_dim·‖q‖·‖d‖ = γ_dim` of its
///   exact value (Higham §3.1 and Cauchy–Schwarz), a maximum adds nothing, and
///   summing `nq` terms of magnitude at most `1 + γ_dim` adds at most
///   `γ_nq·nq·(1 + γ_dim)`: in all at most `nq·γ_{dim+nq}` (Higham Lemma 3.3).
///   Two implementations each that close to the exact value differ by at most
///   `2·nq·γ_{dim+nq}`.
/// - Decompression: `C[code] + w` is one rounding whatever the order; only the
///   norm's summation order can change, and `Codebook::decompress_into`
///   promises each component within `(γ_dim/2 + 5u)·|x_i|` of the reference.
///   Two versions differ by at most twice that, which moves each dot product
///   by at most `γ_dim + 10u` and a score by `nq` times that.
fn score_bound(dim: usize, nq: usize) -> f64 {
    let nq_f = nq as f64;
    2.0 * nq_f * gamma(dim + nq) + nq_f * (gamma(dim) + 10.0 * U)
}

/// Checks `hits` against the recorded result: ids exactly, scores within
/// [`score_bound`].
fn check(hits: &Hits, expected: &Expected, bound: f64, what: &str) {
    let ids: Vec<u32> = hits.ids.iter().map(|id| id.as_u32()).collect();
    assert_eq!(ids, expected.ids, "{what}: ids of query {}", expected.query);
    assert_eq!(hits.scores.len(), expected.scores.len(), "{what}");
    for (rank, (&got, &want)) in hits.scores.iter().zip(&expected.scores).enumerate() {
        let diff = (f64::from(got) - want).abs();
        assert!(
            diff <= bound,
            "{what}: query {} rank {rank}: score {got} vs recorded {want} \
             (diff {diff:e} > bound {bound:e})",
            expected.query
        );
    }
}

#[test]
fn compat_v1_golden_index_opens_and_searches() {
    golden_index_opens_and_searches(1);
}

#[test]
fn compat_v2_golden_index_opens_and_searches() {
    golden_index_opens_and_searches(2);
}

#[test]
fn compat_v3_golden_index_opens_and_searches() {
    golden_index_opens_and_searches(3);
}

fn golden_index_opens_and_searches(version: u32) {
    let root = data_dir(version);
    let before = snapshot(&root);

    let expected: Vec<Expected> =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let rows = read_npy(&root.join("queries.npy")).unwrap();
    let [num_rows, dim] = rows.dims::<2>().unwrap();
    let rows = rows.as_slice::<f32>().unwrap();
    let lens = read_npy(&root.join("query_lens.npy"))
        .unwrap()
        .to_i64_vec()
        .unwrap();
    assert_eq!(lens.len(), expected.len());
    assert_eq!(lens.iter().sum::<i64>() as usize, num_rows);

    // Opened in place: opening and searching never write.
    let index = Index::open(root.join("index")).unwrap();
    assert_eq!(index.dim(), dim);
    let k = expected[0].ids.len();
    // The recorded scores are the float exact stage's.
    let params = SearchParams::with_k(k).exact_scoring(ExactScoring::Float);
    let int8 = SearchParams::with_k(k);
    let mut start = 0;
    for (i, (exp, &len)) in expected.iter().zip(&lens).enumerate() {
        assert_eq!(exp.query, i, "expected.json is in query order");
        let nq = len as usize;
        let q = &rows[start * dim..(start + nq) * dim];
        start += nq;
        let bound = score_bound(dim, nq);

        let view = ArrayView2::from_shape((nq, dim), q).unwrap();
        check(
            &index.search(view, &params).unwrap(),
            exp,
            bound,
            "Index::search",
        );
        // The same expectations hold for every kernel this CPU can run.
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_available()) {
            let hits = index
                .snapshot()
                .searcher()
                .unwrap()
                .with_kernel(kernel)
                .search(EmbeddingsView::try_new(q, dim).unwrap(), &params)
                .unwrap();
            check(&hits, exp, bound, &format!("{kernel:?}"));
            // Integer scoring (the default) rounds the query and the residual
            // weights to bytes: the same documents, scores within 1e-2 per
            // query token (see `plaid_search::ExactScoring::Int8`).
            let hits = index
                .snapshot()
                .searcher()
                .unwrap()
                .with_kernel(kernel)
                .search(EmbeddingsView::try_new(q, dim).unwrap(), &int8)
                .unwrap();
            check(&hits, exp, 1e-2 * nq as f64, &format!("{kernel:?} int8"));
        }
    }
    drop(index);

    assert!(
        before == snapshot(&root),
        "opening or searching the golden index changed files under {}",
        root.display()
    );
}
