//! Writes the golden index of the current format version and the search
//! results it must keep returning.
//!
//! ```text
//! cargo run -p plaid --example make_golden -- crates/plaid/tests/data/v1
//! ```
//!
//! Writes, under the given directory (created if needed):
//!
//! - `index/`: a tiny index (40 synthetic documents of 3–12 tokens, dim 16,
//!   2-bit residuals, the default per-dimension quantiser);
//! - `queries.npy` (`f32 [rows, 16]`) and `query_lens.npy` (`i64 [5]`):
//!   five 4-token queries drawn from the corpus;
//! - `expected.json`: for each query, the top-5 ids and scores.
//!
//! `crates/plaid/tests/golden.rs` opens the committed copy and checks that
//! search still returns `expected.json`. Every input is seeded, so running
//! this again on the same machine gives the same files; the index directory
//! must not exist yet (nothing is overwritten). Committed golden data is never
//! regenerated: a format change gets a new `v<N>` directory instead.

// A command-line tool: it reports what it wrote on stdout.
#![allow(clippy::print_stdout)]

use ndarray::ArrayView2;
use plaid::storage::npy::npy_bytes;
use plaid::{Documents, Index, IndexConfig, SearchParams, synth};
use std::error::Error;
use std::path::PathBuf;

/// Documents in the corpus.
const NUM_DOCS: usize = 40;
/// Embedding dimension.
const DIM: usize = 16;
/// Shortest and longest document, in tokens.
const DOC_LENS: (usize, usize) = (3, 12);
/// Residual bits per dimension.
const NBITS: u8 = 2;
/// Queries, tokens per query and the query seed.
const NUM_QUERIES: usize = 5;
const QUERY_TOKENS: usize = 4;
const QUERY_SEED: u64 = 99;
/// Documents returned per query.
const K: usize = 5;

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: make_golden OUT_DIR")?;

    // The corpus seed is SynthConfig's default (7) and the index seed
    // IndexConfig's default (42); the README records both.
    let cfg = synth::SynthConfig::new(NUM_DOCS)
        .dim(DIM)
        .lens(DOC_LENS.0, DOC_LENS.1);
    let corpus = synth::corpus(&cfg);
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: DIM,
        lens: &corpus.doclens,
    };
    std::fs::create_dir_all(&out)?;
    let index = Index::create(
        docs,
        out.join("index"),
        &IndexConfig::default().nbits(NBITS),
    )?;

    let (rows, lens, _sources) = synth::queries(&corpus, NUM_QUERIES, QUERY_TOKENS, QUERY_SEED);
    let params = SearchParams::with_k(K);
    let mut expected = Vec::with_capacity(lens.len());
    let mut start = 0;
    for (query, &len) in lens.iter().enumerate() {
        let view = ArrayView2::from_shape((len, DIM), &rows[start * DIM..(start + len) * DIM])?;
        start += len;
        let hits = index.search(view, &params)?;
        let ids: Vec<u32> = hits.ids.iter().map(|id| id.as_u32()).collect();
        // Widened to f64, whose shortest decimal form reads back exactly: the
        // JSON holds the f32 scores bit for bit.
        let scores: Vec<f64> = hits.scores.iter().map(|&s| f64::from(s)).collect();
        expected.push(serde_json::json!({ "query": query, "ids": ids, "scores": scores }));
    }

    let mut json = serde_json::to_string_pretty(&expected)?;
    json.push('\n');
    std::fs::write(out.join("expected.json"), json)?;
    std::fs::write(
        out.join("queries.npy"),
        npy_bytes(&[rows.len() / DIM, DIM], &rows)?,
    )?;
    let lens_i64: Vec<i64> = lens.iter().map(|&l| l as i64).collect();
    std::fs::write(
        out.join("query_lens.npy"),
        npy_bytes(&[lens_i64.len()], &lens_i64)?,
    )?;
    println!(
        "wrote {}: {} documents, {} tokens, {} centroids, {} index bytes, {} queries",
        out.display(),
        index.num_docs(),
        index.num_tokens(),
        index.num_centroids(),
        index.index_bytes(),
        lens.len()
    );
    Ok(())
}
