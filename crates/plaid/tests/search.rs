//! End-to-end: build, open (mapped, in memory, read-only), search, compare
//! with the exhaustive oracle.
#![allow(clippy::unwrap_used)]

use ndarray::ArrayView2;
use plaid::types::DocId;
use plaid::{Documents, ExactScoring, Index, IndexConfig, QuantizerKind, SearchParams, synth};
use std::collections::BTreeMap;
use std::path::Path;

const DIM: usize = 32;

struct Fixture {
    _tmp: tempfile::TempDir,
    index: Index,
    corpus: synth::SynthCorpus,
    queries: Vec<(Vec<f32>, usize)>,
}

fn fixture(config: &IndexConfig) -> Fixture {
    let corpus = synth::corpus(&synth::SynthConfig::new(400).dim(DIM).lens(5, 30));
    let tmp = tempfile::tempdir().unwrap();
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: DIM,
        lens: &corpus.doclens,
    };
    let index = Index::create(docs, tmp.path().join("idx"), config).unwrap();
    let (rows, lens, src) = synth::queries(&corpus, 30, 8, 3);
    let mut queries = Vec::new();
    let mut off = 0;
    for (l, s) in lens.iter().zip(src) {
        queries.push((rows[off * DIM..(off + l) * DIM].to_vec(), s));
        off += l;
    }
    Fixture {
        _tmp: tmp,
        index,
        corpus,
        queries,
    }
}

fn q(data: &[f32]) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((data.len() / DIM, DIM), data).unwrap()
}

#[test]
fn finds_the_source_document() {
    for nbits in [1u8, 2, 4] {
        let f = fixture(&IndexConfig::default().nbits(nbits));
        let mut hits_at_1 = 0;
        for (data, src) in &f.queries {
            let hits = f.index.search(q(data), &SearchParams::with_k(10)).unwrap();
            assert_eq!(hits.ids.len(), 10);
            if hits.ids[0].as_usize() == *src {
                hits_at_1 += 1;
            }
        }
        // The queries are perturbed tokens of their source document.
        assert!(
            hits_at_1 >= 27,
            "nbits {nbits}: source first for only {hits_at_1}/30"
        );
    }
}

#[test]
fn matches_exhaustive_when_probing_everything() {
    let f = fixture(&IndexConfig::default());
    let k = f.index.num_centroids();
    // Exhaustive search scores in float: the float exact stage must match it
    // exactly.
    let params = SearchParams::with_k(20)
        .n_probe(k)
        .n_full_scores(1 << 20)
        .exact_scoring(ExactScoring::Float);
    let int8 = params.clone().exact_scoring(ExactScoring::Int8);
    for (data, _) in &f.queries {
        let a = f.index.search(q(data), &params).unwrap();
        let b = f.index.exhaustive(q(data), 20).unwrap();
        assert_eq!(a, b);
        // The integer stage rounds the query and the residual weights to
        // bytes: nearly the same documents, scores within 1e-2 per token.
        let c = f.index.search(q(data), &int8).unwrap();
        let same = c.ids.iter().filter(|d| b.ids.contains(d)).count();
        assert!(same >= 18, "{same}/20 of the float top-20");
        let nq = data.len() / DIM;
        for (rank, (x, y)) in c.scores.iter().zip(&b.scores).enumerate() {
            assert!((x - y).abs() <= 1e-2 * nq as f32, "rank {rank}: {x} vs {y}");
        }
    }
}

#[test]
fn default_search_is_close_to_exhaustive() {
    for kind in [QuantizerKind::PerDim, QuantizerKind::Global] {
        let f = fixture(&IndexConfig::default().quantizer(kind));
        let mut overlap = 0;
        for (data, _) in &f.queries {
            let a = f.index.search(q(data), &SearchParams::with_k(10)).unwrap();
            let b = f.index.exhaustive(q(data), 10).unwrap();
            overlap += a.ids.iter().filter(|d| b.ids.contains(d)).count();
        }
        let recall = overlap as f64 / 300.0;
        assert!(recall >= 0.95, "{kind:?}: recall@10 vs exhaustive {recall}");
    }
}

#[test]
fn scores_are_sorted_and_ties_break_by_lower_id() {
    let f = fixture(&IndexConfig::default());
    for (data, _) in &f.queries {
        let hits = f.index.search(q(data), &SearchParams::with_k(50)).unwrap();
        for w in hits
            .scores
            .iter()
            .zip(&hits.ids)
            .collect::<Vec<_>>()
            .windows(2)
        {
            let ((s0, d0), (s1, d1)) = (w[0], w[1]);
            assert!(
                s0 > s1 || (s0 == s1 && d0 < d1),
                "{s0} {d0:?} then {s1} {d1:?}"
            );
        }
    }
}

#[test]
fn batch_equals_one_at_a_time() {
    let f = fixture(&IndexConfig::default());
    let views: Vec<_> = f.queries.iter().map(|(d, _)| q(d)).collect();
    let params = SearchParams::with_k(10);
    let batch = f.index.search_batch(&views, &params).unwrap();
    for (v, b) in views.iter().zip(&batch) {
        assert_eq!(&f.index.search(v.view(), &params).unwrap(), b);
    }
}

#[test]
fn in_memory_and_mapped_agree() {
    let f = fixture(&IndexConfig::default());
    let mem = Index::open_in_memory(f.index.dir()).unwrap();
    let params = SearchParams::with_k(10);
    for (data, _) in &f.queries {
        assert_eq!(
            f.index.search(q(data), &params).unwrap(),
            mem.search(q(data), &params).unwrap()
        );
    }
}

#[test]
fn search_within_stays_inside_the_subset() {
    let f = fixture(&IndexConfig::default());
    let allowed: Vec<DocId> = (0..400).filter(|i| i % 7 == 3).map(DocId::new).collect();
    for (data, _) in &f.queries {
        let hits = f
            .index
            .search_within(
                q(data),
                &SearchParams::with_k(10).exact_scoring(ExactScoring::Float),
                &allowed,
            )
            .unwrap();
        assert_eq!(hits.ids.len(), 10);
        assert!(hits.ids.iter().all(|d| allowed.contains(d)));
        // With a small subset every member is scored exactly: it must equal
        // the exhaustive ranking restricted to the subset.
        let all = f.index.exhaustive(q(data), 400).unwrap();
        let want: Vec<DocId> = all
            .ids
            .iter()
            .copied()
            .filter(|d| allowed.contains(d))
            .take(10)
            .collect();
        assert_eq!(hits.ids, want);
    }
}

#[test]
fn reconstruct_is_close_to_the_input() {
    let f = fixture(&IndexConfig::default());
    let ids: Vec<DocId> = (0..20).map(DocId::new).collect();
    let rec = f.index.reconstruct(&ids).unwrap();
    let mut off = 0;
    let mut worst = 1.0f32;
    for (i, m) in rec.iter().enumerate() {
        assert_eq!(m.nrows(), f.corpus.doclens[i]);
        for r in 0..m.nrows() {
            let orig = &f.corpus.embeddings[(off + r) * DIM..(off + r + 1) * DIM];
            let cos: f32 = orig.iter().zip(m.row(r)).map(|(a, b)| a * b).sum();
            worst = worst.min(cos);
        }
        off += m.nrows();
    }
    assert!(worst > 0.9, "worst cosine {worst}");
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn read_only_copy_opens_and_searches_unchanged() {
    let f = fixture(&IndexConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ro");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(f.index.dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let before = snapshot(&copy);
    let mut perms = std::fs::metadata(&copy).unwrap().permissions();
    for e in std::fs::read_dir(&copy).unwrap() {
        let p = e.unwrap().path();
        let mut fp = std::fs::metadata(&p).unwrap().permissions();
        fp.set_readonly(true);
        std::fs::set_permissions(&p, fp).unwrap();
    }
    perms.set_readonly(true);
    std::fs::set_permissions(&copy, perms.clone()).unwrap();

    let ro = Index::open(&copy).unwrap();
    let params = SearchParams::with_k(10);
    for (data, _) in &f.queries {
        assert_eq!(
            ro.search(q(data), &params).unwrap(),
            f.index.search(q(data), &params).unwrap()
        );
    }
    drop(ro);
    assert_eq!(snapshot(&copy), before);
    // Let the temp dir be cleaned up.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn every_kernel_gives_the_same_ranking() {
    let f = fixture(&IndexConfig::default());
    let snap = f.index.snapshot();
    let base = snap.searcher().unwrap().with_kernel(plaid::Kernel::Scalar);
    for kernel in plaid::Kernel::available() {
        let s = snap.searcher().unwrap().with_kernel(kernel);
        for (data, _) in &f.queries {
            let v = plaid::types::EmbeddingsView::try_new(data, DIM).unwrap();
            let a = s.search(v, &SearchParams::with_k(10)).unwrap();
            let b = base.search(v, &SearchParams::with_k(10)).unwrap();
            // Kernels differ only in rounding (FMA, summation order). Query and
            // decompressed tokens are unit vectors, so Σ|q_i t_i| ≤ 1 per token
            // and each score is within γ_{dim+nq}·nq of the exact value
            // (Higham §3.1); two kernels differ by at most twice that.
            let nq = (data.len() / DIM) as f32;
            let u = f32::EPSILON / 2.0;
            let n = DIM as f32 + nq;
            let tol = 2.0 * (n * u / (1.0 - n * u)) * nq;
            for (x, y) in a.scores.iter().zip(&b.scores) {
                assert!((x - y).abs() <= tol, "{kernel:?}: {x} vs {y} (tol {tol})");
            }
        }
    }
}
