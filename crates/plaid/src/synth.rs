//! Deterministic synthetic corpora with the shape of real ColBERT data:
//! unit vectors clustered around topics, each document mixing a few topics,
//! and queries made from the tokens of a source document. Used by `plaid
//! demo`, the tests and the benches.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Shape of a synthetic corpus.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SynthConfig {
    /// Number of documents.
    pub num_docs: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Number of topic centres.
    pub num_topics: usize,
    /// Topics mixed in each document.
    pub topics_per_doc: usize,
    /// Shortest document (tokens).
    pub min_len: usize,
    /// Longest document (tokens).
    pub max_len: usize,
    /// Standard deviation of the per-token noise, relative to `1/sqrt(dim)`.
    pub noise: f32,
    /// Seed.
    pub seed: u64,
}

impl SynthConfig {
    /// `num_docs` documents of dim 128 with lengths like debian-5k's (25–71 tokens).
    pub fn new(num_docs: usize) -> Self {
        Self {
            num_docs,
            dim: 128,
            num_topics: (num_docs / 4).max(8),
            topics_per_doc: 3,
            min_len: 25,
            max_len: 71,
            noise: 0.9,
            seed: 7,
        }
    }

    /// Sets the dimension.
    pub fn dim(mut self, dim: usize) -> Self {
        self.dim = dim;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the document length range.
    pub fn lens(mut self, min_len: usize, max_len: usize) -> Self {
        self.min_len = min_len.max(1);
        self.max_len = max_len.max(self.min_len);
        self
    }
}

/// A generated corpus: documents concatenated row-major with their lengths.
#[derive(Clone, Debug)]
pub struct SynthCorpus {
    /// `T × dim` unit vectors.
    pub embeddings: Vec<f32>,
    /// Tokens per document.
    pub doclens: Vec<usize>,
    /// Dimension.
    pub dim: usize,
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller; u1 in (0, 1] so the log is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Generates a corpus.
pub fn corpus(cfg: &SynthConfig) -> SynthCorpus {
    let dim = cfg.dim.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut topics = vec![0.0f32; cfg.num_topics.max(1) * dim];
    for t in topics.chunks_exact_mut(dim) {
        t.iter_mut().for_each(|x| *x = gaussian(&mut rng));
        normalize(t);
    }
    let nt = topics.len() / dim;
    let scale = cfg.noise / (dim as f32).sqrt();
    let mut embeddings = Vec::new();
    let mut doclens = Vec::with_capacity(cfg.num_docs);
    let mut tok = vec![0.0f32; dim];
    for _ in 0..cfg.num_docs {
        let len = rng.random_range(cfg.min_len..=cfg.max_len.max(cfg.min_len));
        let mine: Vec<usize> = (0..cfg.topics_per_doc.max(1))
            .map(|_| rng.random_range(0..nt))
            .collect();
        for _ in 0..len {
            let t = mine[rng.random_range(0..mine.len())];
            for (d, x) in tok.iter_mut().enumerate() {
                *x = topics[t * dim + d] + scale * gaussian(&mut rng);
            }
            normalize(&mut tok);
            embeddings.extend_from_slice(&tok);
        }
        doclens.push(len);
    }
    SynthCorpus {
        embeddings,
        doclens,
        dim,
    }
}

/// Queries drawn from the corpus: each takes `tokens` random tokens of a
/// random source document and perturbs them. Returns the concatenated query
/// rows, the query lengths and each query's source document.
pub fn queries(
    corpus: &SynthCorpus,
    num_queries: usize,
    tokens: usize,
    seed: u64,
) -> (Vec<f32>, Vec<usize>, Vec<usize>) {
    let dim = corpus.dim;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut offs = Vec::with_capacity(corpus.doclens.len() + 1);
    offs.push(0usize);
    for &l in &corpus.doclens {
        offs.push(offs[offs.len() - 1] + l);
    }
    let scale = 0.3 / (dim as f32).sqrt();
    let (mut rows, mut lens, mut src) = (Vec::new(), Vec::new(), Vec::new());
    if corpus.doclens.is_empty() {
        return (rows, lens, src);
    }
    for _ in 0..num_queries {
        let d = rng.random_range(0..corpus.doclens.len());
        let mut idx: Vec<usize> = (offs[d]..offs[d + 1]).collect();
        idx.shuffle(&mut rng);
        let n = tokens.max(1);
        for i in 0..n {
            let t = idx[i % idx.len()];
            let mut q: Vec<f32> = corpus.embeddings[t * dim..(t + 1) * dim]
                .iter()
                .map(|x| x + scale * gaussian(&mut rng))
                .collect();
            normalize(&mut q);
            rows.extend_from_slice(&q);
        }
        lens.push(n);
        src.push(d);
    }
    (rows, lens, src)
}
