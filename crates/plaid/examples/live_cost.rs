//! Cost follows the change, not the index: times `Index::add` of 1,000
//! generated documents and `Index::delete` of 10 and 1,000 ids on indexes of
//! 5,000 and 50,000 documents (same codebook size, so encoding costs the same).
//!
//! ```text
//! cargo run --release -p plaid --example live_cost [no-growth]
//! ```
//!
//! `no-growth` turns off codebook growth on add (on by default), so that an
//! add costs exactly the encoding of its documents.
//!
//! Prints one line per index size with the median of `REPEATS` runs each.
//! Indexes are written to a temporary directory and removed.

// A command-line tool: it reports on stdout.
#![allow(clippy::print_stdout)]

use plaid::types::DocId;
use plaid::{CompactionPolicy, Documents, Index, IndexConfig, synth};
use std::error::Error;
use std::time::Instant;

const REPEATS: usize = 5;
const ADD: usize = 1000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn Error>> {
    let growth = std::env::args().nth(1).as_deref() != Some("no-growth");
    let tmp = tempfile::tempdir()?;
    let extra = synth::corpus(&synth::SynthConfig::new(ADD).seed(99));
    for size in [5_000usize, 50_000] {
        let corpus = synth::corpus(&synth::SynthConfig::new(size).seed(1));
        let dim = corpus.dim;
        let t = Instant::now();
        let dir = tmp.path().join(format!("n{size}"));
        let config = IndexConfig::default().num_centroids(Some(4096));
        let index = Index::create(
            Documents::Flat {
                data: &corpus.embeddings,
                dim,
                lens: &corpus.doclens,
            },
            &dir,
            &config,
        )?
        // No automatic rewrites, so every timed call does only its own work.
        .with_compaction_policy(CompactionPolicy {
            max_dead_fraction: 1.1,
            max_segments: usize::MAX,
        })
        .with_codebook_growth(growth);
        let build_s = t.elapsed().as_secs_f64();
        drop(corpus);
        let (mut add, mut del10, mut del1000) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            let t = Instant::now();
            index.add(Documents::Flat {
                data: &extra.embeddings,
                dim,
                lens: &extra.doclens,
            })?;
            add.push(t.elapsed().as_secs_f64());
            let live = index.doc_ids();
            let ids: Vec<DocId> = live[..10].to_vec();
            let t = Instant::now();
            index.delete(&ids)?;
            del10.push(t.elapsed().as_secs_f64());
            // 1,000 ids spread over every segment.
            let live = index.doc_ids();
            let step = live.len() / 1000;
            let ids: Vec<DocId> = live.iter().step_by(step).take(1000).copied().collect();
            let t = Instant::now();
            index.delete(&ids)?;
            del1000.push(t.elapsed().as_secs_f64());
        }
        index.verify()?;
        let add_all: Vec<f64> = add.iter().map(|s| s * 1e3).collect();
        println!(
            "index of {size} docs (build {build_s:.1} s, {} tokens): add {ADD} docs median {:.1} ms (runs {add_all:.0?} ms, growth {}, 4096 -> {} centroids); delete 10 ids {:.1} ms; delete 1000 ids {:.1} ms ({REPEATS} runs each)",
            index.num_tokens(),
            median(add.clone()) * 1e3,
            if growth { "on" } else { "off" },
            index.num_centroids(),
            median(del10) * 1e3,
            median(del1000) * 1e3
        );
    }
    Ok(())
}
