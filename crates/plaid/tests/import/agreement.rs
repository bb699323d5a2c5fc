//! The imported fixtures against the source libraries' own answers.

use crate::{Source, data, read};
use ndarray::ArrayView2;
use plaid::storage::import::import;
use plaid::storage::layout::{self, StoredCodes};
use plaid::types::DocId;
use plaid::{Index, SearchParams, SkipReason, SourceFormat};
use std::collections::BTreeSet;
use std::path::Path;

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
        let report = import(&s.out(), &s.src(), None).unwrap();
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
