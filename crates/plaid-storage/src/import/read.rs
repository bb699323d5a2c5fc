//! Reading a next-plaid or fast-plaid index into a codebook and a segment.

use std::path::Path;

use plaid_codec::{Codebook, Nbits, QuantizerKind, ResidualQuantizer};
use serde_json::{Map, Value};

use super::detect::{list_dir, peek_header, read_json_bytes, read_metadata};
use super::{ImportReport, SkipReason, SkippedFile, SourceFormat, SourceIndex, TokenSource};
use crate::layout::{CodesBuf, SegmentData};
use crate::npy::{NpyArray, read_npy};
use crate::{ChunkPart, Error, ImportFault, NpyErrorKind};

/// Largest doclens file read: 64 MiB holds well over the 50,000 documents of
/// a next-plaid chunk.
const MAX_DOCLENS_BYTES: u64 = 64 << 20;

/// Largest number of chunks accepted (a bound on the per-chunk file probes).
const MAX_CHUNKS: u64 = 1 << 24;

fn fault(path: &Path, fault: ImportFault) -> Error {
    Error::Import {
        path: path.to_path_buf(),
        fault,
    }
}

fn npy_err(path: &Path, kind: NpyErrorKind) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        kind,
    }
}

/// Reads an npy file, reporting a missing one as [`ImportFault::MissingFile`].
fn read_array(path: &Path) -> Result<NpyArray, Error> {
    if !path.exists() {
        return Err(fault(path, ImportFault::MissingFile));
    }
    read_npy(path)
}

/// An unsigned integer field of `metadata.json`.
fn field_u64(meta: &Map<String, Value>, path: &Path, field: &'static str) -> Result<u64, Error> {
    meta.get(field).and_then(Value::as_u64).ok_or_else(|| {
        fault(
            path,
            ImportFault::BadField {
                field,
                expected: "a non-negative integer",
            },
        )
    })
}

/// An optional unsigned integer field: absent or null is `None`, another type an error.
fn opt_u64(
    meta: &Map<String, Value>,
    path: &Path,
    field: &'static str,
) -> Result<Option<u64>, Error> {
    match meta.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => field_u64(meta, path, field).map(Some),
    }
}

/// A float array of the given rank-1 length (or any shape when `len` is None).
fn read_floats(path: &Path, what: &'static str, len: Option<usize>) -> Result<Vec<f32>, Error> {
    let a = read_array(path)?;
    let v = a.to_f32_vec().map_err(|k| npy_err(path, k))?;
    if let Some(len) = len
        && (v.len() != len || a.shape().len() > 1)
    {
        return Err(fault(
            path,
            ImportFault::Shape {
                what,
                expected: len,
                found: v.len(),
            },
        ));
    }
    Ok(v)
}

/// Reads the doclens of chunk `chunk`.
fn read_doclens(src: &Path, chunk: usize) -> Result<Vec<u32>, Error> {
    let path = src.join(format!("doclens.{chunk}.json"));
    if !path.exists() {
        return Err(fault(
            &path,
            ImportFault::MissingChunk {
                chunk,
                part: ChunkPart::Doclens,
            },
        ));
    }
    let bytes = read_json_bytes(&path, MAX_DOCLENS_BYTES)?;
    let values: Vec<Value> = serde_json::from_slice(&bytes).map_err(|e| {
        fault(
            &path,
            ImportFault::BadJson {
                line: e.line(),
                column: e.column(),
            },
        )
    })?;
    values
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let bad = |value| fault(&path, ImportFault::BadDoclen { index, value });
            match v.as_i64() {
                Some(n) => u32::try_from(n).map_err(|_| bad(n)),
                None => Err(fault(
                    &path,
                    ImportFault::BadField {
                        field: "doclens",
                        expected: "a list of integers",
                    },
                )),
            }
        })
        .collect()
}

/// Converts codes to `u32`, checking every one names a centroid.
fn check_codes(path: &Path, codes: &[i64], k: usize, out: &mut Vec<u32>) -> Result<(), Error> {
    out.reserve(codes.len());
    for (position, &code) in codes.iter().enumerate() {
        match u32::try_from(code) {
            Ok(c) if (c as usize) < k => out.push(c),
            _ => {
                return Err(fault(
                    path,
                    ImportFault::CodeOutOfRange {
                        position,
                        code,
                        num_centroids: k,
                    },
                ));
            }
        }
    }
    Ok(())
}

/// Reads a codes file as i64 values (any integer dtype), rank 1.
fn read_codes(path: &Path) -> Result<Vec<i64>, Error> {
    let a = read_array(path)?;
    if a.shape().len() != 1 {
        return Err(npy_err(
            path,
            NpyErrorKind::RankMismatch {
                expected: 1,
                found: a.shape().len(),
            },
        ));
    }
    a.to_i64_vec().map_err(|k| npy_err(path, k))
}

/// Reads a residuals file: `u8 [rows, packed_len]`; returns it and its rows.
fn read_residuals(path: &Path, packed_len: usize) -> Result<(NpyArray, usize), Error> {
    let a = read_array(path)?;
    a.as_slice::<u8>().map_err(|k| npy_err(path, k))?;
    match *a.shape() {
        [rows, width] if width == packed_len => Ok((a, rows)),
        [_, width] => Err(fault(
            path,
            ImportFault::Shape {
                what: "residual bytes per token",
                expected: packed_len,
                found: width,
            },
        )),
        _ => Err(npy_err(
            path,
            NpyErrorKind::RankMismatch {
                expected: 2,
                found: a.shape().len(),
            },
        )),
    }
}

/// Whether chunk files of `kind` exist for every chunk, none, or some (the
/// first missing one).
enum Presence {
    All,
    None,
    Partial(usize),
}

fn presence(src: &Path, num_chunks: usize, suffix: &str) -> Presence {
    let have: Vec<bool> = (0..num_chunks)
        .map(|i| src.join(format!("{i}.{suffix}")).exists())
        .collect();
    match (have.iter().all(|&h| h), have.iter().position(|&h| !h)) {
        (true, _) => Presence::All,
        (false, Some(i)) if have.iter().any(|&h| h) => Presence::Partial(i),
        _ => Presence::None,
    }
}

pub(super) fn read(src: &Path, format: SourceFormat, detected: bool) -> Result<SourceIndex, Error> {
    let meta_path = src.join("metadata.json");
    if !meta_path.exists() {
        return Err(fault(&meta_path, ImportFault::MissingFile));
    }
    let meta = read_metadata(src)?;
    if meta.get("binary").and_then(Value::as_bool) == Some(true) {
        return Err(fault(&meta_path, ImportFault::BinaryIndex));
    }
    let nbits_raw = field_u64(&meta, &meta_path, "nbits")?;
    let nbits = u8::try_from(nbits_raw)
        .ok()
        .and_then(|b| Nbits::new(b).ok())
        .ok_or_else(|| {
            fault(
                &meta_path,
                ImportFault::UnsupportedNbits { nbits: nbits_raw },
            )
        })?;
    let num_chunks_raw = field_u64(&meta, &meta_path, "num_chunks")?;
    if num_chunks_raw > MAX_CHUNKS {
        return Err(fault(
            &meta_path,
            ImportFault::TooLarge {
                what: "num_chunks",
                found: num_chunks_raw,
                limit: MAX_CHUNKS,
            },
        ));
    }
    // Bounded by MAX_CHUNKS.
    let num_chunks = num_chunks_raw as usize;
    let codebook = read_codebook(src, &meta, nbits)?;
    let (k, dim) = (codebook.num_centroids(), codebook.dim());
    let chunk_doclens = read_all_doclens(src, &meta, num_chunks)?;
    let doclens: Vec<u32> = chunk_doclens.iter().flatten().copied().collect();

    // Codes and residuals: the chunk files, or else the merged files.
    let tokens = Tokens {
        src,
        num_centroids: k,
        packed_len: nbits.packed_len(dim),
        codes: Vec::new(),
        residuals: Vec::new(),
    };
    let (tokens, tokens_from) = match presence(src, num_chunks, "codes.npy") {
        Presence::All => (
            tokens.read_chunks(&chunk_doclens)?,
            TokenSource::Chunks { num_chunks },
        ),
        Presence::Partial(i) => {
            return Err(fault(
                &src.join(format!("{i}.codes.npy")),
                ImportFault::MissingChunk {
                    chunk: i,
                    part: ChunkPart::Codes,
                },
            ));
        }
        Presence::None if !src.join("merged_codes.npy").exists() => {
            return Err(fault(
                &src.join("0.codes.npy"),
                ImportFault::MissingChunk {
                    chunk: 0,
                    part: ChunkPart::Codes,
                },
            ));
        }
        Presence::None => {
            let (tokens, padding_rows) = tokens.read_merged(&doclens)?;
            (tokens, TokenSource::Merged { padding_rows })
        }
    };
    let (codes, residuals) = (tokens.codes, tokens.residuals);

    let (ivf_lengths, ivf) = SegmentData::build_ivf(&doclens, &codes, k);
    let source_ivf_matches = compare_ivf(src, &ivf_lengths, &ivf)?;
    let skipped = classify(src, num_chunks, tokens_from)?;
    let num_docs = doclens.len();
    let report = ImportReport {
        format,
        detected,
        num_docs,
        num_tokens: codes.len(),
        num_centroids: k,
        dim,
        nbits: nbits.bits(),
        tokens_from,
        source_ivf_matches,
        skipped,
    };
    let segment = SegmentData {
        // read_all_doclens checked that the count fits in u32.
        doc_ids: (0..num_docs as u32).collect(),
        doclens,
        codes: CodesBuf::for_codebook(codes, k),
        residuals,
    };
    Ok(SourceIndex {
        codebook,
        segment,
        report,
    })
}

/// Reads the centroids, the quantizer, `avg_residual` and the outlier radius.
fn read_codebook(src: &Path, meta: &Map<String, Value>, nbits: Nbits) -> Result<Codebook, Error> {
    let meta_path = src.join("metadata.json");
    let cpath = src.join("centroids.npy");
    let centroids = read_array(&cpath)?;
    let [_, dim] = centroids
        .dims::<2>()
        .map_err(|kind| npy_err(&cpath, kind))?;
    // f32, or f16 (fast-plaid), widened exactly.
    let centroids = centroids
        .to_f32_vec()
        .map_err(|kind| npy_err(&cpath, kind))?;
    if let Some(d) = opt_u64(meta, &meta_path, "embedding_dim")?
        && d != dim as u64
    {
        return Err(fault(
            &cpath,
            ImportFault::Shape {
                what: "embedding dim (metadata.json embedding_dim)",
                expected: usize::try_from(d).unwrap_or(usize::MAX),
                found: dim,
            },
        ));
    }
    let b = nbits.num_buckets();
    let cut_path = src.join("bucket_cutoffs.npy");
    let cutoffs = read_floats(&cut_path, "bucket cutoffs", Some(b - 1))?;
    let w_path = src.join("bucket_weights.npy");
    let weights = read_floats(&w_path, "bucket weights", Some(b))?;
    let avg_path = src.join("avg_residual.npy");
    let avg_residual = read_floats(&avg_path, "avg_residual", Some(dim))?;
    let t_path = src.join("cluster_threshold.npy");
    let radius = read_floats(&t_path, "cluster threshold", Some(1))?;
    let codec = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Codec { path, source }
    };
    let quantizer =
        ResidualQuantizer::from_parts(QuantizerKind::Global, nbits, dim, cutoffs, weights)
            .map_err(codec(&w_path))?;
    Codebook::new(
        centroids,
        dim,
        quantizer,
        radius.first().copied().unwrap_or(0.0),
        avg_residual,
    )
    .map_err(codec(&cpath))
}

/// Reads `doclens.{i}.json` for every chunk and checks the totals against
/// `metadata.json`.
fn read_all_doclens(
    src: &Path,
    meta: &Map<String, Value>,
    num_chunks: usize,
) -> Result<Vec<Vec<u32>>, Error> {
    let meta_path = src.join("metadata.json");
    let mut chunk_doclens = Vec::new();
    for i in 0..num_chunks {
        chunk_doclens.push(read_doclens(src, i)?);
    }
    let num_docs: usize = chunk_doclens.iter().map(Vec::len).sum();
    let num_tokens: u64 = chunk_doclens.iter().flatten().map(|&l| u64::from(l)).sum();
    if num_docs == 0 {
        return Err(fault(src, ImportFault::NoDocuments));
    }
    if u32::try_from(num_docs).is_err() {
        return Err(fault(
            src,
            ImportFault::TooLarge {
                what: "documents",
                found: num_docs as u64,
                limit: u64::from(u32::MAX),
            },
        ));
    }
    for (field, found) in [
        ("num_documents", num_docs as u64),
        ("num_embeddings", num_tokens),
    ] {
        // next-plaid infers num_documents from the doclens when it is 0.
        if let Some(recorded) = opt_u64(meta, &meta_path, field)?
            && recorded != found
            && !(field == "num_documents" && recorded == 0)
        {
            return Err(fault(
                &meta_path,
                ImportFault::CountMismatch {
                    field,
                    recorded,
                    found,
                },
            ));
        }
    }
    Ok(chunk_doclens)
}

/// Codes and residual bytes as they are read and checked.
///
/// The buffers are not preallocated from the doclens, which may lie; they
/// grow with what the files really hold.
struct Tokens<'a> {
    src: &'a Path,
    num_centroids: usize,
    packed_len: usize,
    codes: Vec<u32>,
    residuals: Vec<u8>,
}

impl Tokens<'_> {
    /// Reads `{i}.codes.npy` and `{i}.residuals.npy` for every chunk.
    fn read_chunks(mut self, chunk_doclens: &[Vec<u32>]) -> Result<Self, Error> {
        for (i, lens) in chunk_doclens.iter().enumerate() {
            let cpath = self.src.join(format!("{i}.codes.npy"));
            let rpath = self.src.join(format!("{i}.residuals.npy"));
            if !rpath.exists() {
                return Err(fault(
                    &rpath,
                    ImportFault::MissingChunk {
                        chunk: i,
                        part: ChunkPart::Residuals,
                    },
                ));
            }
            let c = read_codes(&cpath)?;
            let want: u64 = lens.iter().map(|&l| u64::from(l)).sum();
            if c.len() as u64 != want {
                return Err(fault(
                    &cpath,
                    ImportFault::DoclensMismatch {
                        chunk: i,
                        doclens_tokens: want,
                        codes: c.len() as u64,
                    },
                ));
            }
            check_codes(&cpath, &c, self.num_centroids, &mut self.codes)?;
            let (r, rows) = read_residuals(&rpath, self.packed_len)?;
            if rows != c.len() {
                return Err(fault(
                    &rpath,
                    ImportFault::Shape {
                        what: "residual rows (one per code)",
                        expected: c.len(),
                        found: rows,
                    },
                ));
            }
            self.residuals.extend_from_slice(r.as_bytes());
        }
        Ok(self)
    }

    /// Reads `merged_codes.npy` and `merged_residuals.npy`, dropping the
    /// padding rows after the `Σ doclens` real ones; returns the number of
    /// padding rows.
    fn read_merged(mut self, doclens: &[u32]) -> Result<(Self, usize), Error> {
        let tokens: u64 = doclens.iter().map(|&l| u64::from(l)).sum();
        let max_padding = doclens.iter().copied().max().map_or(0, u64::from);
        let merged_rows = |path: &Path, rows: usize| {
            let t = usize::try_from(tokens)
                .ok()
                .filter(|&t| rows >= t && (rows - t) as u64 <= max_padding);
            t.ok_or_else(|| {
                fault(
                    path,
                    ImportFault::MergedRows {
                        rows,
                        tokens,
                        max_padding,
                    },
                )
            })
        };
        let cpath = self.src.join("merged_codes.npy");
        let rpath = self.src.join("merged_residuals.npy");
        let c = read_codes(&cpath)?;
        let t = merged_rows(&cpath, c.len())?;
        // t ≤ c.len(), checked by merged_rows.
        check_codes(&cpath, &c[..t], self.num_centroids, &mut self.codes)?;
        let (r, rows) = read_residuals(&rpath, self.packed_len)?;
        merged_rows(&rpath, rows)?;
        if rows != c.len() {
            return Err(fault(
                &rpath,
                ImportFault::Shape {
                    what: "residual rows (one per code)",
                    expected: c.len(),
                    found: rows,
                },
            ));
        }
        // rows ≥ t, so the file holds t·packed_len bytes and more.
        self.residuals
            .extend_from_slice(&r.as_bytes()[..t * self.packed_len]);
        Ok((self, c.len() - t))
    }
}

/// Compares the source's inverted lists with the ones rebuilt from the
/// codes; `None` when the source has none.
fn compare_ivf(src: &Path, lengths: &[u32], ivf: &[u32]) -> Result<Option<bool>, Error> {
    let lpath = src.join("ivf_lengths.npy");
    let ipath = src.join("ivf.npy");
    if !lpath.exists() || !ipath.exists() {
        return Ok(None);
    }
    let theirs_len = read_array(&lpath)?
        .to_i64_vec()
        .map_err(|k| npy_err(&lpath, k))?;
    let theirs = read_array(&ipath)?
        .to_i64_vec()
        .map_err(|k| npy_err(&ipath, k))?;
    let same = |a: &[i64], b: &[u32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| x == i64::from(y))
    };
    Ok(Some(same(&theirs_len, lengths) && same(&theirs, ivf)))
}

/// The chunk number of a file named `{i}.{rest}`.
fn chunk_file(name: &str, rest: &str) -> Option<usize> {
    let i = name.strip_suffix(rest)?.strip_suffix('.')?;
    if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    i.parse().ok()
}

/// The files of `src` that are not imported, with the reason.
fn classify(
    src: &Path,
    num_chunks: usize,
    tokens_from: TokenSource,
) -> Result<Vec<SkippedFile>, Error> {
    let used_chunks = matches!(tokens_from, TokenSource::Chunks { .. });
    let read_chunk = |i: Option<usize>| i.is_some_and(|i| i < num_chunks);
    let mut skipped = Vec::new();
    for name in list_dir(src)? {
        let reason = match name.as_str() {
            "metadata.json"
            | "centroids.npy"
            | "bucket_cutoffs.npy"
            | "bucket_weights.npy"
            | "avg_residual.npy"
            | "cluster_threshold.npy"
            | "ivf.npy"
            | "ivf_lengths.npy" => {
                continue;
            }
            "merged_codes.npy" | "merged_residuals.npy" => {
                if used_chunks {
                    SkipReason::Duplicate
                } else {
                    continue;
                }
            }
            n if read_chunk(
                n.strip_prefix("doclens.")
                    .and_then(|n| chunk_file(n, "json")),
            ) =>
            {
                continue;
            }
            n if used_chunks
                && (read_chunk(chunk_file(n, "codes.npy"))
                    || read_chunk(chunk_file(n, "residuals.npy"))) =>
            {
                continue;
            }
            "metadata.db" | "metadata.db-wal" | "metadata.db-shm" | "metadata.db-journal" => {
                SkipReason::MetadataDb
            }
            "embeddings.npy" | "buffer.npy" => npy_kind(&src.join(&name)),
            "embeddings_lengths.json" | "buffer_lengths.json" | "buffer_info.json" => {
                SkipReason::RawEmbeddings
            }
            "merged_inv_norms.npy" => SkipReason::Derived,
            n if chunk_file(n, "inv_norms.npy").is_some() => SkipReason::Derived,
            "plan.json" => SkipReason::Bookkeeping,
            n if n.ends_with(".lock") || n.ends_with(".manifest.json") => SkipReason::Bookkeeping,
            n if chunk_file(n, "metadata.json").is_some() => SkipReason::Bookkeeping,
            n if n.ends_with(".npy") && npy_kind(&src.join(n)) == SkipReason::Pickled => {
                SkipReason::Pickled
            }
            _ => SkipReason::Unrecognised,
        };
        skipped.push(SkippedFile { name, reason });
    }
    Ok(skipped)
}

/// [`SkipReason::Pickled`] for an npy file holding Python objects (its
/// header names the `'|O'` dtype), else [`SkipReason::RawEmbeddings`].
/// Only the header is read.
fn npy_kind(path: &Path) -> SkipReason {
    match peek_header(path) {
        Ok(Err(NpyErrorKind::UnsupportedDtype { descr })) if descr.contains('O') => {
            SkipReason::Pickled
        }
        _ => SkipReason::RawEmbeddings,
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_file;

    #[test]
    fn chunk_file_names() {
        assert_eq!(chunk_file("0.codes.npy", "codes.npy"), Some(0));
        assert_eq!(chunk_file("12.residuals.npy", "residuals.npy"), Some(12));
        assert_eq!(chunk_file("3.json", "json"), Some(3));
        for bad in [
            ".codes.npy",
            "codes.npy",
            "x.codes.npy",
            "1x.codes.npy",
            "-1.codes.npy",
        ] {
            assert_eq!(chunk_file(bad, "codes.npy"), None, "{bad}");
        }
        assert_eq!(
            chunk_file("99999999999999999999999.codes.npy", "codes.npy"),
            None
        );
    }
}
