//! Churn keeps quality: build with half of a corpus, add the other half in
//! ten batches, delete a random 10 %, and compare recall@10 against exact
//! MaxSim over the live documents with a fresh build of the same live set.
//!
//! ```text
//! cargo run --release -p plaid --example churn -- ../shared/data/debian-5k [no-growth]
//! ```
//!
//! `no-growth` turns off codebook growth on add (on by default).
//!
//! The data directory holds `embeddings.npy`, `doclens.npy`, `queries.npy`,
//! `query_lens.npy` and `gt_ids.npy` (exact MaxSim top-100 over every
//! document, ties to the lower id). The exact top-10 over the live documents
//! is the first ten live ids of that list (checked to exist for every query).
//! Indexes are written to a temporary directory and removed.

// A command-line tool: it reports on stdout.
#![allow(clippy::print_stdout)]

use ndarray::ArrayView2;
use plaid::storage::npy::read_npy;
use plaid::types::DocId;
use plaid::{Documents, Index, IndexConfig, SearchParams};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

fn f32s(p: &std::path::Path) -> Result<(Vec<f32>, usize), Box<dyn Error>> {
    let a = read_npy(p)?;
    let dim = a.shape().get(1).copied().unwrap_or(1);
    Ok((a.to_f32_vec()?, dim))
}

fn usizes(p: &std::path::Path) -> Result<Vec<usize>, Box<dyn Error>> {
    Ok(read_npy(p)?
        .to_i64_vec()?
        .into_iter()
        .map(|v| v as usize)
        .collect())
}

fn main() -> Result<(), Box<dyn Error>> {
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: churn DATA_DIR [no-growth]")?,
    );
    let growth = std::env::args().nth(2).as_deref() != Some("no-growth");
    let (emb, dim) = f32s(&data.join("embeddings.npy"))?;
    let lens = usizes(&data.join("doclens.npy"))?;
    let (qemb, qdim) = f32s(&data.join("queries.npy"))?;
    let qlens = usizes(&data.join("query_lens.npy"))?;
    let gt = read_npy(&data.join("gt_ids.npy"))?.to_i64_vec()?;
    let gt_k = gt.len() / qlens.len();
    let n = lens.len();
    let offs: Vec<usize> = std::iter::once(0)
        .chain(lens.iter().scan(0, |a, &l| {
            *a += l;
            Some(*a)
        }))
        .collect();
    let docs = |a: usize, b: usize| Documents::Flat {
        data: &emb[offs[a] * dim..offs[b] * dim],
        dim,
        lens: &lens[a..b],
    };
    let tmp = tempfile::tempdir()?;
    let config = IndexConfig::default();

    // Churned index: half, ten batches, 10 % deleted.
    let half = n / 2;
    let t = Instant::now();
    let churned = Index::create(docs(0, half), tmp.path().join("churned"), &config)?
        .with_codebook_growth(growth);
    println!(
        "create {half} docs: {:.2} s, {} centroids",
        t.elapsed().as_secs_f64(),
        churned.num_centroids()
    );
    let batch = (n - half).div_ceil(10);
    let mut add_s = Vec::new();
    let mut a = half;
    while a < n {
        let b = (a + batch).min(n);
        let t = Instant::now();
        churned.add(docs(a, b))?;
        add_s.push(t.elapsed().as_secs_f64());
        a = b;
    }
    println!(
        "10 adds of {batch} docs (codebook growth {}): {add_s:.3?} s; {} centroids now",
        if growth { "on" } else { "off" },
        churned.num_centroids()
    );
    let mut ids: Vec<u32> = (0..n as u32).collect();
    ids.shuffle(&mut ChaCha8Rng::seed_from_u64(42));
    let victims: Vec<DocId> = ids[..n / 10].iter().map(|&d| DocId::new(d)).collect();
    let t = Instant::now();
    churned.delete(&victims)?;
    println!(
        "delete {} docs: {:.3} s; {} segments, {} deleted docs still stored",
        victims.len(),
        t.elapsed().as_secs_f64(),
        churned.snapshot().manifest().segments.len(),
        churned.snapshot().num_deleted()
    );
    churned.verify()?;
    let dead: BTreeSet<u32> = victims.iter().map(|d| d.as_u32()).collect();
    let live: Vec<u32> = (0..n as u32).filter(|d| !dead.contains(d)).collect();
    assert_eq!(
        churned
            .doc_ids()
            .iter()
            .map(|d| d.as_u32())
            .collect::<Vec<_>>(),
        live
    );

    // Fresh build of the same live set; its ids are positions in `live`.
    let mut fl = Vec::new();
    let mut fe = Vec::new();
    for &d in &live {
        let d = d as usize;
        fl.push(lens[d]);
        fe.extend_from_slice(&emb[offs[d] * dim..offs[d + 1] * dim]);
    }
    let t = Instant::now();
    let fresh = Index::create(
        Documents::Flat {
            data: &fe,
            dim,
            lens: &fl,
        },
        tmp.path().join("fresh"),
        &config,
    )?;
    println!(
        "fresh build of {} live docs: {:.2} s, {} centroids",
        live.len(),
        t.elapsed().as_secs_f64(),
        fresh.num_centroids()
    );

    // Exact top-10 over the live documents.
    let params = SearchParams::with_k(10);
    let (mut hit_c, mut hit_f, mut qoff) = (0usize, 0usize, 0usize);
    for (qi, &ql) in qlens.iter().enumerate() {
        let truth: Vec<u32> = gt[qi * gt_k..(qi + 1) * gt_k]
            .iter()
            .map(|&d| d as u32)
            .filter(|d| !dead.contains(d))
            .take(10)
            .collect();
        assert_eq!(
            truth.len(),
            10,
            "query {qi}: fewer than 10 live in the top {gt_k}"
        );
        let q = ArrayView2::from_shape((ql, qdim), &qemb[qoff * qdim..(qoff + ql) * qdim])?;
        qoff += ql;
        let c = churned.search(q, &params)?;
        hit_c += c.ids.iter().filter(|d| truth.contains(&d.as_u32())).count();
        let f = fresh.search(q, &params)?;
        hit_f += f
            .ids
            .iter()
            .filter(|d| truth.contains(&live[d.as_usize()]))
            .count();
    }
    let total = (qlens.len() * 10) as f64;
    let (rc, rf) = (hit_c as f64 / total, hit_f as f64 / total);
    println!(
        "recall@10 vs exact MaxSim over the {} live docs, {} queries: churned {rc:.4}, fresh {rf:.4}, difference {:+.4}",
        live.len(),
        qlens.len(),
        rc - rf
    );
    Ok(())
}
