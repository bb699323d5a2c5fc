//! `cargo xtask gen-data`: a synthetic corpus in debian-5k's file layout, for
//! measuring how costs grow with the corpus.
//!
//! The model is `plaid::synth`'s (unit vectors clustered around topics, each
//! document mixing three topics, queries made from a source document), with
//! what a scale benchmark needs on top:
//!
//! - document lengths drawn from debian-5k's own length histogram (25–71
//!   tokens, mean 55), query lengths from its plain queries' (5–26 tokens);
//! - skewed topic popularity (topic `⌊n·u^1.5⌋` for uniform `u`) and 10 % of
//!   tokens from 64 corpus-wide "common" topics, so inverted lists have the
//!   uneven lengths of real data instead of a flattering uniform spread;
//! - each query token is, with odds 1 in 5, a (strongly) perturbed token of
//!   the source document, else a fresh token of one "focus" topic of the
//!   document (a paraphrase), so the source document competes with every
//!   document sharing that topic instead of winning every query outright (the
//!   exact ranking puts it first for about 90 % of queries; debian-5k's exact
//!   MRR@10 is 0.83);
//! - it streams: documents are generated one at a time straight into the one
//!   float16 copy of the corpus, which is written once; the exact ground truth
//!   for the first `gt_queries` queries is computed over that copy in blocks of
//!   documents with a faer GEMM, so memory stays near one copy of the data;
//! - every random choice comes from ChaCha8 streams of one seed, so the files
//!   are identical for a seed (the ground truth up to float summation order).
//!
//! Files: `embeddings.npy` f16 `[T, 128]`, `doclens.npy` i64 `[N]`,
//! `queries.npy` f16 `[sum(query_lens), 128]`, `query_lens.npy` i64 `[Q]`,
//! `qrels.tsv` (query, source document), `gt_ids.npy` i64 / `gt_scores.npy`
//! f32 `[G, 100]` for the first G queries (exact MaxSim, ties to the lower
//! document id), and `gen.json` (the parameters, written last).

use anyhow::{Context, Result, bail};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use half::f16;
use half::slice::HalfFloatSliceExt;
use plaid_storage::npy::{Element, write_npy};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The default seed.
pub(crate) const SEED: u64 = 7;

/// debian-5k's document lengths: how many of its 5,000 documents have 25, 26, …, 71 tokens.
const DOC_LEN_HIST: [u32; 47] = [
    1, 1, 3, 2, 10, 10, 24, 29, 44, 39, 55, 76, 67, 97, 67, 92, 86, 76, 81, 98, 78, 103, 74, 78,
    93, 92, 97, 107, 97, 85, 147, 134, 176, 198, 201, 255, 248, 303, 284, 325, 274, 248, 184, 99,
    51, 10, 1,
];
const DOC_LEN_MIN: usize = 25;
/// debian-5k's plain queries: how many of its 1,000 have 5, 6, …, 26 tokens.
const QUERY_LEN_HIST: [u32; 22] = [
    8, 20, 63, 90, 104, 107, 107, 116, 88, 86, 72, 46, 30, 24, 15, 15, 1, 2, 4, 1, 0, 1,
];
const QUERY_LEN_MIN: usize = 5;
const DIM: usize = 128;
const GT_K: usize = 100;
const COMMON_TOPICS: usize = 64;
const COMMON_SHARE: f64 = 0.10;
/// Per-coordinate noise of document tokens around their topic, times `1/sqrt(dim)`.
const DOC_NOISE: f32 = 0.9;
/// Per-coordinate noise of common tokens around their topic (they vary less).
const COMMON_NOISE: f32 = 0.5;
/// Per-coordinate noise of query tokens around their source token.
const QUERY_NOISE: f32 = 1.5;
/// Share of query tokens copied (with noise) from the source document; the
/// rest are fresh tokens of the document's topics.
const QUERY_FROM_DOC: f64 = 0.2;
/// Document tokens per GEMM block of the ground truth.
const GT_BLOCK: usize = 4096;

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct GenConfig {
    pub(crate) tokens: usize,
    pub(crate) out: PathBuf,
    pub(crate) seed: u64,
    pub(crate) queries: usize,
    pub(crate) gt_queries: usize,
}

impl GenConfig {
    pub(crate) fn new(tokens: usize, out: PathBuf) -> Self {
        Self {
            tokens,
            out,
            seed: SEED,
            queries: 1000,
            gt_queries: 100,
        }
    }

    fn manifest(&self) -> Value {
        json!({
            "generator": "cargo xtask gen-data",
            "version": 2,
            "tokens": self.tokens,
            "dim": DIM,
            "seed": self.seed,
            "queries": self.queries,
            "gt_queries": self.gt_queries,
            "gt_k": GT_K,
        })
    }
}

const USAGE: &str =
    "usage: cargo xtask gen-data --tokens N --out DIR [--seed S] [--queries Q] [--gt-queries G]

  --tokens N       corpus size in tokens (1m, 10m, 250k or a number)
  --out DIR        output folder (created; must not hold another corpus)
  --seed S         seed of every random choice (default 7)
  --queries Q      queries to write (default 1000)
  --gt-queries G   exact top-100 ground truth for the first G queries (default 100)";

/// `cargo xtask gen-data ...`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let (mut tokens, mut out) = (None, None);
    let mut cfg = GenConfig::new(0, PathBuf::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--tokens" => tokens = Some(crate::bench::parse_size(&val()?)?),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--seed" => cfg.seed = val()?.parse()?,
            "--queries" => cfg.queries = val()?.parse()?,
            "--gt-queries" => cfg.gt_queries = val()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    cfg.tokens = tokens.with_context(|| format!("--tokens is required\n\n{USAGE}"))?;
    cfg.out = out.with_context(|| format!("--out is required\n\n{USAGE}"))?;
    let t = std::time::Instant::now();
    let s = generate(&cfg)?;
    println!(
        "{}",
        json!({"out": cfg.out, "tokens": cfg.tokens, "docs": s.docs, "queries": cfg.queries,
               "gt_queries": s.gt_queries, "seconds": t.elapsed().as_secs_f64(),
               "gt_seconds": s.gt_seconds})
    );
    Ok(())
}

/// Whether `cfg.out` holds a complete corpus generated with `cfg`.
pub(crate) fn is_generated(cfg: &GenConfig) -> bool {
    std::fs::read(cfg.out.join("gen.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v == cfg.manifest())
}

/// What [`generate`] made.
#[derive(Debug)]
pub(crate) struct GenSummary {
    pub(crate) docs: usize,
    pub(crate) gt_queries: usize,
    pub(crate) gt_seconds: f64,
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Standard normal deviates by Box–Muller, both halves used.
struct Gauss {
    rng: ChaCha8Rng,
    spare: Option<f32>,
}

impl Gauss {
    fn new(rng: ChaCha8Rng) -> Self {
        Self { rng, spare: None }
    }

    fn next(&mut self) -> f32 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        // u1 in (0, 1] so the log is finite.
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some((r * s) as f32);
        (r * c) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Draws an index with probability proportional to `hist[i]`.
fn draw(rng: &mut ChaCha8Rng, hist: &[u32]) -> usize {
    let total: u32 = hist.iter().sum();
    let mut u = rng.random_range(0..total);
    for (i, &h) in hist.iter().enumerate() {
        if u < h {
            return i;
        }
        u -= h;
    }
    hist.len() - 1
}

/// Document lengths like debian-5k's, adding up to exactly `tokens` (the last
/// document is cut short).
fn doc_lengths(tokens: usize, seed: u64) -> Vec<usize> {
    let mut r = rng(seed, 1);
    let mut lens = Vec::with_capacity(tokens / 50 + 1);
    let mut sum = 0;
    while sum < tokens {
        let l = (DOC_LEN_MIN + draw(&mut r, &DOC_LEN_HIST)).min(tokens - sum);
        lens.push(l);
        sum += l;
    }
    lens
}

fn write_file<T: Element>(dir: &Path, name: &str, shape: &[usize], data: &[T]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    write_npy(&mut w, shape, data).with_context(|| format!("writing {}", tmp.display()))?;
    w.into_inner()?.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

/// Generates the corpus described by `cfg` into `cfg.out`.
pub(crate) fn generate(cfg: &GenConfig) -> Result<GenSummary> {
    if cfg.tokens == 0 {
        bail!("--tokens must be positive");
    }
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let _ = std::fs::remove_file(cfg.out.join("gen.json"));
    let lens = doc_lengths(cfg.tokens, cfg.seed);
    let docs = lens.len();

    // Topics: per-document ones (skewed popularity) and corpus-wide common ones.
    let num_topics = (docs / 4).max(8);
    let mut g = Gauss::new(rng(cfg.seed, 2));
    let mut topics = vec![0.0f32; (num_topics + COMMON_TOPICS) * DIM];
    for t in topics.chunks_exact_mut(DIM) {
        t.iter_mut().for_each(|x| *x = g.next());
        normalize(t);
    }

    // Queries: a source document and a length each, generated with their document.
    let mut qr = rng(cfg.seed, 3);
    let plan: Vec<(usize, usize)> = (0..cfg.queries)
        .map(|_| {
            let d = qr.random_range(0..docs);
            (d, QUERY_LEN_MIN + draw(&mut qr, &QUERY_LEN_HIST))
        })
        .collect();
    let mut by_doc: Vec<(usize, usize)> =
        plan.iter().enumerate().map(|(q, &(d, _))| (d, q)).collect();
    by_doc.sort_unstable();
    let mut qrows: Vec<Vec<f16>> = vec![Vec::new(); cfg.queries];

    let mut emb: Vec<f16> = Vec::new();
    emb.try_reserve_exact(cfg.tokens * DIM)
        .context("not enough memory for one float16 copy of the corpus")?;
    let mut r = rng(cfg.seed, 4);
    let mut g = Gauss::new(rng(cfg.seed, 5));
    let mut gq = Gauss::new(rng(cfg.seed, 6));
    let mut qsel = rng(cfg.seed, 7);
    let (scale, cscale, qscale) = {
        let s = 1.0 / (DIM as f32).sqrt();
        (DOC_NOISE * s, COMMON_NOISE * s, QUERY_NOISE * s)
    };
    let mut doc = Vec::new();
    let mut tok16 = [f16::ZERO; DIM];
    let mut next_q = 0;
    for (d, &len) in lens.iter().enumerate() {
        let mine: [usize; 3] = std::array::from_fn(|_| {
            let u: f64 = r.random();
            ((num_topics as f64 * u.powf(1.5)) as usize).min(num_topics - 1)
        });
        doc.clear();
        for _ in 0..len {
            let (t, sc) = if r.random::<f64>() < COMMON_SHARE {
                (num_topics + r.random_range(0..COMMON_TOPICS), cscale)
            } else {
                (mine[r.random_range(0..3)], scale)
            };
            let start = doc.len();
            doc.extend(
                topics[t * DIM..(t + 1) * DIM]
                    .iter()
                    .map(|&x| x + sc * g.next()),
            );
            normalize(&mut doc[start..]);
            tok16.convert_from_f32_slice(&doc[start..]);
            emb.extend_from_slice(&tok16);
        }
        while next_q < by_doc.len() && by_doc[next_q].0 == d {
            let q = by_doc[next_q].1;
            let n = plan[q].1;
            // A random subset of the document's tokens (all of them, repeated, if n > len).
            let mut idx: Vec<usize> = (0..len).collect();
            for i in 0..n.min(len) {
                let j = qsel.random_range(i..len);
                idx.swap(i, j);
            }
            // Fresh tokens are about one of the document's topics, which it
            // shares with other documents.
            let focus = qsel.random_range(0..3);
            let mut rows = Vec::with_capacity(n * DIM);
            let mut qt = [0.0f32; DIM];
            for i in 0..n {
                if qsel.random::<f64>() < QUERY_FROM_DOC {
                    let t = idx[i % len];
                    for (x, &v) in qt.iter_mut().zip(&doc[t * DIM..(t + 1) * DIM]) {
                        *x = v + qscale * gq.next();
                    }
                } else {
                    let t = mine[focus];
                    for (x, &v) in qt.iter_mut().zip(&topics[t * DIM..(t + 1) * DIM]) {
                        *x = v + scale * gq.next();
                    }
                }
                normalize(&mut qt);
                tok16.convert_from_f32_slice(&qt);
                rows.extend_from_slice(&tok16);
            }
            qrows[q] = rows;
            next_q += 1;
        }
    }

    let out = &cfg.out;
    write_file(out, "embeddings.npy", &[cfg.tokens, DIM], &emb)?;
    let lens64: Vec<i64> = lens.iter().map(|&l| l as i64).collect();
    write_file(out, "doclens.npy", &[docs], &lens64)?;
    let qlens: Vec<usize> = plan.iter().map(|&(_, n)| n).collect();
    let qflat: Vec<f16> = qrows.concat();
    write_file(out, "queries.npy", &[qflat.len() / DIM, DIM], &qflat)?;
    let qlens64: Vec<i64> = qlens.iter().map(|&l| l as i64).collect();
    write_file(out, "query_lens.npy", &[cfg.queries], &qlens64)?;
    let mut qrels = String::new();
    for (q, &(d, _)) in plan.iter().enumerate() {
        qrels.push_str(&format!("{q}\t{d}\t1\n"));
    }
    std::fs::write(out.join("qrels.tsv"), qrels)?;

    let g_n = cfg.gt_queries.min(cfg.queries);
    let t = std::time::Instant::now();
    let gt_rows: usize = qlens[..g_n].iter().sum();
    let mut q32 = vec![0.0f32; gt_rows * DIM];
    qflat[..gt_rows * DIM].convert_to_f32_slice(&mut q32);
    let (ids, scores) = exact_topk(&emb, &lens, &q32, &qlens[..g_n], GT_K);
    let gt_seconds = t.elapsed().as_secs_f64();
    let k = GT_K.min(docs);
    write_file(out, "gt_ids.npy", &[g_n, k], &ids)?;
    write_file(out, "gt_scores.npy", &[g_n, k], &scores)?;
    let mut f = std::fs::File::create(out.join("gen.json"))?;
    writeln!(f, "{}", cfg.manifest())?;
    f.sync_all()?;
    Ok(GenSummary {
        docs,
        gt_queries: g_n,
        gt_seconds,
    })
}

/// Exact MaxSim top-`k` (`min(k, docs)` columns) of each query over the
/// float16 corpus, in float32; ties go to the lower document id.
pub(crate) fn exact_topk(
    emb: &[f16],
    doclens: &[usize],
    queries: &[f32],
    qlens: &[usize],
    k: usize,
) -> (Vec<i64>, Vec<f32>) {
    let docs = doclens.len();
    let qrows = queries.len() / DIM;
    let nq = qlens.len();
    let mut all = vec![0.0f32; nq * docs];
    let qm = MatRef::from_row_major_slice(queries, qrows, DIM);
    let mut x = Vec::new();
    let mut s = Vec::new();
    let mut mx = vec![0.0f32; qrows];
    let (mut d0, mut row0) = (0usize, 0usize);
    while d0 < docs {
        let mut d1 = d0;
        let mut rows = 0;
        while d1 < docs && (rows == 0 || rows + doclens[d1] <= GT_BLOCK) {
            rows += doclens[d1];
            d1 += 1;
        }
        x.resize(rows * DIM, 0.0);
        emb[row0 * DIM..(row0 + rows) * DIM].convert_to_f32_slice(&mut x);
        s.resize(rows * qrows, 0.0);
        let xm = MatRef::from_row_major_slice(&x, rows, DIM);
        let sm = MatMut::from_row_major_slice_mut(&mut s, rows, qrows);
        matmul(
            sm,
            Accum::Replace,
            xm,
            qm.transpose(),
            1.0f32,
            Par::rayon(0),
        );
        let mut r = 0;
        for d in d0..d1 {
            mx.fill(f32::NEG_INFINITY);
            for row in s[r * qrows..(r + doclens[d]) * qrows].chunks_exact(qrows) {
                for (m, &v) in mx.iter_mut().zip(row) {
                    *m = m.max(v);
                }
            }
            r += doclens[d];
            let mut c = 0;
            for (qi, &ql) in qlens.iter().enumerate() {
                all[qi * docs + d] = mx[c..c + ql].iter().sum();
                c += ql;
            }
        }
        row0 += rows;
        d0 = d1;
    }
    let k = k.min(docs);
    let mut ids = Vec::with_capacity(nq * k);
    let mut scores = Vec::with_capacity(nq * k);
    let mut order: Vec<u32> = Vec::with_capacity(docs);
    for qi in 0..nq {
        let sc = &all[qi * docs..(qi + 1) * docs];
        order.clear();
        order.extend(0..docs as u32);
        let cmp = |a: &u32, b: &u32| sc[*b as usize].total_cmp(&sc[*a as usize]).then(a.cmp(b));
        if k < docs {
            order.select_nth_unstable_by(k, cmp);
            order.truncate(k);
        }
        order.sort_unstable_by(cmp);
        ids.extend(order.iter().map(|&d| i64::from(d)));
        scores.extend(order.iter().map(|&d| sc[d as usize]));
    }
    (ids, scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-gen-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn lengths_add_up_and_look_like_debian() {
        let lens = doc_lengths(100_000, 3);
        assert_eq!(lens.iter().sum::<usize>(), 100_000);
        let full = &lens[..lens.len() - 1];
        assert!(full.iter().all(|&l| (25..=71).contains(&l)));
        let mean = full.iter().sum::<usize>() as f64 / full.len() as f64;
        assert!((53.0..58.0).contains(&mean), "mean length {mean}");
    }

    #[test]
    fn corpus_is_deterministic_with_exact_ground_truth() {
        let (a, b) = (tmpdir("a"), tmpdir("b"));
        let mut cfg = GenConfig::new(6000, a.clone());
        cfg.queries = 12;
        cfg.gt_queries = 5;
        generate(&cfg).unwrap();
        assert!(is_generated(&cfg));
        cfg.out = b.clone();
        generate(&cfg).unwrap();
        for f in [
            "embeddings.npy",
            "queries.npy",
            "doclens.npy",
            "gt_ids.npy",
            "qrels.tsv",
        ] {
            assert_eq!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
                "{f} differs between two runs with one seed"
            );
        }
        let read = |f: &str| plaid_storage::npy::read_npy(&a.join(f)).unwrap();
        let emb = read("embeddings.npy").to_f32_vec().unwrap();
        assert_eq!(emb.len(), 6000 * DIM);
        for row in emb.chunks_exact(DIM).step_by(97) {
            let n: f32 = row.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-2, "token norm² {n}");
        }
        let lens: Vec<usize> = read("doclens.npy")
            .to_i64_vec()
            .unwrap()
            .iter()
            .map(|&l| l as usize)
            .collect();
        let q = read("queries.npy").to_f32_vec().unwrap();
        let ql: Vec<usize> = read("query_lens.npy")
            .to_i64_vec()
            .unwrap()
            .iter()
            .map(|&l| l as usize)
            .collect();
        assert_eq!(ql.len(), 12);
        assert!(ql.iter().all(|&l| (5..=26).contains(&l)));
        let gt = read("gt_ids.npy");
        assert_eq!(gt.shape(), &[5, 100]);
        let gt = gt.to_i64_vec().unwrap();
        // Brute force in plain loops, one query at a time.
        let mut qoff = 0;
        for qi in 0..5 {
            let qrows = &q[qoff * DIM..(qoff + ql[qi]) * DIM];
            qoff += ql[qi];
            let mut off = 0;
            let mut best: Vec<(f32, usize)> = Vec::new();
            for (d, &l) in lens.iter().enumerate() {
                let mut total = 0.0f32;
                for qt in qrows.chunks_exact(DIM) {
                    let mut m = f32::NEG_INFINITY;
                    for dt in emb[off * DIM..(off + l) * DIM].chunks_exact(DIM) {
                        m = m.max(qt.iter().zip(dt).map(|(a, b)| a * b).sum());
                    }
                    total += m;
                }
                best.push((total, d));
                off += l;
            }
            best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(gt[qi * 100] as usize, best[0].1, "query {qi}: top-1");
            let mine: std::collections::HashSet<i64> =
                gt[qi * 100..qi * 100 + 10].iter().copied().collect();
            let exact = best[..10]
                .iter()
                .filter(|(_, d)| mine.contains(&(*d as i64)))
                .count();
            assert!(
                exact >= 9,
                "query {qi}: only {exact} of the brute-force top 10"
            );
        }
        // Queries come from their qrels document: it should rank near the top.
        let qrels = std::fs::read_to_string(a.join("qrels.tsv")).unwrap();
        let hits = qrels
            .lines()
            .take(5)
            .enumerate()
            .filter(|(qi, l)| {
                let src = l.split('\t').nth(1).unwrap().parse::<i64>().unwrap();
                gt[qi * 100..qi * 100 + 10].contains(&src)
            })
            .count();
        assert!(
            hits >= 4,
            "source document in the top 10 for {hits} of 5 queries"
        );
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }
}
