//! Building a new index: sample, train the codebook, encode, write.

use crate::device::Backend;
use crate::docs::FlatDocs;
use crate::{Error, IndexConfig};
use plaid_codec::Codebook;
use plaid_codec::types::EmbeddingsView;
use plaid_kmeans::{KMeansConfig, heuristics};
use plaid_storage::layout::{CodesBuf, SegmentData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The stage a long operation has reached, for progress reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Validating and copying the input.
    Reading,
    /// Training centroids with k-means.
    Kmeans,
    /// Training the residual quantiser.
    Codec,
    /// Assigning codes and packing residuals (`done`/`total` in tokens).
    Encoding,
    /// Writing files.
    Writing,
}

/// A progress event: `done` of `total` units of `stage`.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Units done.
    pub done: u64,
    /// Units in the stage.
    pub total: u64,
}

/// Rows per encoding chunk: bounds the working memory of code assignment and
/// gives progress events at a useful rate.
const ENCODE_CHUNK_TOKENS: usize = 1 << 16;

/// Rows per encoding chunk on a GPU (fewer, larger transfers).
#[cfg(feature = "cuda")]
const GPU_ENCODE_CHUNK_TOKENS: usize = 1 << 20;

/// Largest held-out set for codec training (next-plaid's cap).
const MAX_HELDOUT_TOKENS: usize = 50_000;

/// Trains a codebook and encodes every document into one segment.
pub(crate) fn build_segment(
    docs: &FlatDocs<'_>,
    config: &IndexConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Codebook, SegmentData), Error> {
    let nbits = config.validate()?;
    let backend = Backend::open(config.device)?;
    let n = docs.num_docs();
    let dim = docs.dim;
    let total_tokens = docs.num_tokens();

    // Document sample for k-means, then held-out documents for the codec.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let n_sample = config
        .sample_docs
        .unwrap_or_else(|| heuristics::kmeans_sample_docs(n))
        .clamp(1, n);
    let (sample_docs, rest) = order.split_at(n_sample);
    let mut sample = Vec::new();
    for &d in sample_docs {
        sample.extend_from_slice(docs.doc(d));
    }
    let sample_tokens = sample.len() / dim;
    let k = match config.num_centroids {
        Some(k) => k,
        None => {
            let est = sample_tokens as f64 / n_sample as f64 * n as f64;
            heuristics::num_partitions(est)
        }
    }
    .min(sample_tokens)
    .max(1);

    progress(Progress {
        stage: Stage::Kmeans,
        done: 0,
        total: config.kmeans_iters as u64,
    });
    let mut km = KMeansConfig::new(k);
    km.max_iters = config.kmeans_iters;
    km.seed = config.seed;
    km.max_points_per_centroid = config.max_points_per_centroid;
    let centroids = fit_kmeans(&backend, &sample, dim, &km)?;
    drop(sample);
    progress(Progress {
        stage: Stage::Kmeans,
        done: config.kmeans_iters as u64,
        total: config.kmeans_iters as u64,
    });

    // Held-out tokens: from documents outside the k-means sample when there
    // are any (an honest estimate of the residuals of unseen documents),
    // otherwise from the sample walked backwards.
    progress(Progress {
        stage: Stage::Codec,
        done: 0,
        total: 1,
    });
    let heldout_target = ((total_tokens as f64 * 0.05) as usize).clamp(1, MAX_HELDOUT_TOKENS);
    let mut heldout = Vec::with_capacity(heldout_target * dim);
    let pool: Vec<usize> = if rest.is_empty() {
        sample_docs.iter().rev().copied().collect()
    } else {
        rest.iter()
            .copied()
            .chain(sample_docs.iter().rev().copied())
            .collect()
    };
    for d in pool {
        if heldout.len() >= heldout_target * dim {
            break;
        }
        let need = heldout_target * dim - heldout.len();
        let doc = docs.doc(d);
        heldout.extend_from_slice(&doc[..need.min(doc.len())]);
    }
    let heldout_view = EmbeddingsView::try_new(&heldout, dim).map_err(|_| Error::NoDocuments)?;
    // Centroids are stored as int8 (4× smaller; residuals absorb the rounding).
    let codebook = Codebook::train_int8(&centroids, dim, heldout_view, nbits, config.quantizer)?;
    drop(heldout);
    progress(Progress {
        stage: Stage::Codec,
        done: 1,
        total: 1,
    });

    // Encode in chunks so progress is visible and memory stays bounded.
    let (codes, residuals) = encode_with_progress(&backend, &codebook, docs, progress)?;
    let kc = codebook.num_centroids();
    let segment = SegmentData {
        doc_ids: (0..n as u32).collect(),
        doclens: docs.lens.clone(),
        codes: CodesBuf::for_codebook(codes, kc),
        residuals,
    };
    Ok((codebook, segment))
}

/// Encodes every token of `docs` with `codebook`, in chunks: the codes and
/// the packed residual rows.
pub(crate) fn encode_docs(
    codebook: &Codebook,
    docs: &FlatDocs<'_>,
) -> Result<(Vec<u32>, Vec<u8>), Error> {
    encode_with_progress(&Backend::Cpu, codebook, docs, &mut |_| {})
}

/// k-means on the backend: the CPU's [`plaid_kmeans::fit`], or the same
/// recipe with the assignment step on the GPU.
fn fit_kmeans(
    backend: &Backend,
    sample: &[f32],
    dim: usize,
    km: &plaid_kmeans::KMeansConfig,
) -> Result<Vec<f32>, Error> {
    match backend {
        Backend::Cpu => Ok(plaid_kmeans::fit(sample, dim, km)?.into_centroids()),
        #[cfg(feature = "cuda")]
        Backend::Cuda(dev) => {
            let mut assigner = plaid_cuda::GpuAssigner::new(dev);
            match plaid_kmeans::fit_with(sample, dim, km, &mut assigner) {
                Ok(m) => Ok(m.into_centroids()),
                Err(plaid_kmeans::FitWithError::KMeans(e)) => Err(e.into()),
                Err(plaid_kmeans::FitWithError::Assigner(e)) => Err(e.into()),
            }
        }
    }
}

/// One chunk's codes and residuals on the backend.
fn compress_chunk(
    backend: &Backend,
    codebook: &Codebook,
    view: EmbeddingsView<'_>,
) -> Result<plaid_codec::Compressed, Error> {
    match backend {
        Backend::Cpu => Ok(codebook.compress(view)?),
        #[cfg(feature = "cuda")]
        Backend::Cuda(dev) => Ok(dev.compress(codebook, view)?),
    }
}

/// [`encode_docs`], reporting [`Stage::Encoding`] after every chunk.
fn encode_with_progress(
    backend: &Backend,
    codebook: &Codebook,
    docs: &FlatDocs<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<u32>, Vec<u8>), Error> {
    let dim = docs.dim;
    let total_tokens = docs.num_tokens();
    let packed_len = codebook.nbits().packed_len(dim);
    let mut codes = Vec::with_capacity(total_tokens);
    let mut residuals = Vec::with_capacity(total_tokens * packed_len);
    let mut done = 0usize;
    #[cfg(feature = "cuda")]
    let chunk = if backend.is_gpu() {
        GPU_ENCODE_CHUNK_TOKENS
    } else {
        ENCODE_CHUNK_TOKENS
    };
    #[cfg(not(feature = "cuda"))]
    let chunk = ENCODE_CHUNK_TOKENS;
    while done < total_tokens {
        let end = (done + chunk).min(total_tokens);
        let view = EmbeddingsView::try_new(&docs.data[done * dim..end * dim], dim)
            .map_err(|_| Error::NoDocuments)?;
        let c = compress_chunk(backend, codebook, view)?;
        codes.extend_from_slice(&c.codes);
        residuals.extend_from_slice(&c.residuals);
        done = end;
        progress(Progress {
            stage: Stage::Encoding,
            done: done as u64,
            total: total_tokens as u64,
        });
    }
    Ok((codes, residuals))
}
