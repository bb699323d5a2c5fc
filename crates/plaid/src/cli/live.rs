//! The commands that change an index: add, delete, compact; and verify.

use super::flags::{AddArgs, DeleteArgs, DirArgs, RebuildArgs};
use super::io::{read_jsonl, read_lengths, read_matrix};
use anyhow::{Context, Result};
use plaid::types::DocId;
use plaid::{Documents, Index, IndexConfig};
use serde_json::json;
use std::time::Instant;

pub(crate) fn add(a: AddArgs) -> Result<()> {
    let start = Instant::now();
    let (data, dim) = read_matrix(&a.embeddings)?;
    let lens = read_lengths(&a.doclens)?;
    let index = Index::open(&a.dir)?;
    let docs = Documents::Flat {
        data: &data,
        dim,
        lens: &lens,
    };
    let ids = match &a.metadata {
        None => index.add(docs)?,
        Some(path) => index.add_with_metadata(docs, &read_jsonl(path)?)?,
    };
    let secs = start.elapsed().as_secs_f64();
    let range: Vec<u32> = match (ids.first(), ids.last()) {
        (Some(f), Some(l)) => vec![f.as_u32(), l.as_u32()],
        _ => Vec::new(),
    };
    if a.json {
        println!(
            "{}",
            json!({
                "ids": range,
                "added": ids.len(),
                "num_docs": index.num_docs(),
                "generation": index.snapshot().generation(),
                "seconds": secs,
            })
        );
    } else {
        println!(
            "added {} documents (ids {}..={}) to {}; it now holds {} documents",
            ids.len(),
            range.first().copied().unwrap_or(0),
            range.last().copied().unwrap_or(0),
            a.dir.display(),
            index.num_docs()
        );
    }
    Ok(())
}

pub(crate) fn delete(a: DeleteArgs) -> Result<()> {
    let mut ids: Vec<u32> = a.ids.clone();
    if let Some(path) = &a.ids_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            ids.push(
                line.parse()
                    .with_context(|| format!("{}:{}: not a document id", path.display(), i + 1))?,
            );
        }
    }
    let index = Index::open(&a.dir)?;
    let doc_ids: Vec<DocId> = ids.iter().map(|&d| DocId::new(d)).collect();
    let deleted = index.delete(&doc_ids)?;
    if a.json {
        ids.sort_unstable();
        ids.dedup();
        println!(
            "{}",
            json!({
                "ids": ids,
                "deleted": deleted,
                "num_docs": index.num_docs(),
                "generation": index.snapshot().generation(),
            })
        );
    } else {
        println!(
            "deleted {deleted} documents from {}; it now holds {} documents",
            a.dir.display(),
            index.num_docs()
        );
    }
    Ok(())
}

pub(crate) fn compact(a: DirArgs) -> Result<()> {
    let index = Index::open(&a.dir)?;
    let r = index.compact()?;
    if a.json {
        println!(
            "{}",
            json!({
                "segments_before": r.segments_before,
                "segments_after": r.segments_after,
                "reclaimed_docs": r.reclaimed_docs,
                "committed": r.committed,
                "index_bytes": index.index_bytes(),
            })
        );
    } else {
        println!(
            "{} segments -> {}, reclaimed {} deleted documents",
            r.segments_before, r.segments_after, r.reclaimed_docs
        );
    }
    Ok(())
}

pub(crate) fn verify(a: DirArgs) -> Result<()> {
    let r = plaid::storage::verify::verify(&a.dir)
        .with_context(|| format!("{} failed verification", a.dir.display()))?;
    if a.json {
        println!(
            "{}",
            json!({
                "ok": true,
                "generation": r.generation,
                "segments": r.segments,
                "num_docs": r.num_docs,
                "num_deleted": r.num_deleted,
                "num_tokens": r.num_tokens,
                "files": r.files,
                "bytes": r.bytes,
            })
        );
    } else {
        println!(
            "ok: generation {}, {} segments, {} live documents ({} deleted), {} files checked",
            r.generation, r.segments, r.num_docs, r.num_deleted, r.files
        );
    }
    Ok(())
}

pub(crate) fn rebuild(a: RebuildArgs) -> Result<()> {
    let start = Instant::now();
    let index = Index::open(&a.dir)?;
    let config = IndexConfig::default()
        .nbits(a.nbits.unwrap_or(index.nbits()))
        .seed(a.seed)
        .num_centroids(a.num_centroids);
    index.rebuild(&config)?;
    let secs = start.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            json!({
                "num_docs": index.num_docs(),
                "num_centroids": index.num_centroids(),
                "generation": index.snapshot().generation(),
                "seconds": secs,
            })
        );
    } else {
        println!(
            "rebuilt {} documents with {} centroids in {secs:.2} s",
            index.num_docs(),
            index.num_centroids()
        );
    }
    Ok(())
}
