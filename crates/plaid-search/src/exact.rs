//! The integer exact kernel on its own: one query against one compressed
//! document at a time.

use crate::Error;
use crate::centroids::{centroid_scores, check_query};
use crate::kernels::Kernel;
use crate::kernels::int8::{BLOCK, DocScratch, ExactInputs, Levels, QueryI8};
use crate::kernels::vnni::Decoder;
use plaid_codec::{Codebook, types::EmbeddingsView};

/// Exact MaxSim of one query against compressed documents (centroid codes
/// and packed residual rows) by the integer kernels of
/// [`crate::ExactScoring::Int8`], without the rest of the pipeline: for
/// callers that hold documents outside a [`crate::SegmentView`], and for
/// benchmarks that compare the kernels (every kernel gives the same bits).
///
/// # Example
/// ```
/// use plaid_codec::{Codebook, Nbits, QuantizerKind, types::EmbeddingsView};
/// use plaid_search::{ExactScorer, Kernel};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dim = 64;
/// let mut docs: Vec<f32> = (0..4 * dim).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
/// for row in docs.chunks_exact_mut(dim) {
///     let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
///     row.iter_mut().for_each(|v| *v /= norm);
/// }
/// let view = EmbeddingsView::try_new(&docs, dim)?;
/// let codebook = Codebook::train_int8(&docs[..2 * dim], dim, view, Nbits::Four, QuantizerKind::Global)?;
/// let doc = codebook.compress(view)?;
/// // One query token equal to the document's first token: MaxSim about 1.
/// let mut scorer = ExactScorer::new(&codebook, EmbeddingsView::try_new(&docs[..dim], dim)?)?;
/// let score = scorer.score(Kernel::best(), &doc.codes, &doc.residuals)?;
/// assert!((score - 1.0).abs() < 0.05, "{score}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ExactScorer<'a> {
    levels: Levels,
    decoder: Decoder,
    query: QueryI8,
    st: Vec<f32>,
    nq: usize,
    cvals: &'a [i8],
    cscales: &'a [f32],
    scratch: DocScratch,
    best: Vec<f32>,
}

impl<'a> ExactScorer<'a> {
    /// Prepares `query` (rounded to `i8`, scored against every centroid).
    ///
    /// # Errors
    /// [`Error::NoInt8Centroids`] when the codebook was trained without
    /// them; [`Error::EmptyQuery`], [`Error::QueryDim`],
    /// [`Error::NonFiniteQuery`] for a bad query.
    pub fn new(codebook: &'a Codebook, query: EmbeddingsView<'_>) -> Result<Self, Error> {
        let cents = codebook.int8_centroids().ok_or(Error::NoInt8Centroids)?;
        check_query(codebook.dim(), &query)?;
        let dim = codebook.dim();
        let nq = query.num_rows();
        let levels = Levels::new(codebook.quantizer().decode_table());
        let decoder = Decoder::new(&levels);
        let q = QueryI8::new(query.as_slice(), dim, &levels);
        let stride = q.blocks * BLOCK;
        let st = centroid_scores(query.as_slice(), codebook.centroids(), dim, stride, 1);
        Ok(Self {
            levels,
            decoder,
            query: q,
            st,
            nq,
            cvals: cents.values(),
            cscales: cents.scales(),
            scratch: DocScratch::default(),
            best: Vec::new(),
        })
    }

    /// MaxSim of the query against one document by `kernel` (an unavailable
    /// one runs the scalar definition): `Σ_q max_t q·t` over the document's
    /// decompressed tokens; an empty document scores 0.
    ///
    /// # Errors
    /// [`Error::DocumentShape`] when `residuals` is not one packed row per
    /// code, [`Error::CodeOutOfRange`] (segment 0) for a code past the
    /// codebook.
    pub fn score(&mut self, kernel: Kernel, codes: &[u32], residuals: &[u8]) -> Result<f32, Error> {
        let k = self.cscales.len();
        if let Some((token, &code)) = codes.iter().enumerate().find(|(_, c)| **c as usize >= k) {
            return Err(Error::CodeOutOfRange {
                segment: 0,
                token,
                code,
                num_centroids: k,
            });
        }
        let expected = codes.len() * self.levels.packed_len();
        if residuals.len() != expected {
            return Err(Error::DocumentShape {
                tokens: codes.len(),
                expected,
                found: residuals.len(),
            });
        }
        if codes.is_empty() {
            return Ok(0.0);
        }
        let inp = ExactInputs {
            levels: &self.levels,
            query: &self.query,
            st: &self.st,
            cvals: self.cvals,
            cscales: self.cscales,
        };
        self.best.clear();
        self.best.resize(inp.width(), f32::NEG_INFINITY);
        kernel.score_doc_i8(
            &inp,
            &self.decoder,
            codes,
            residuals,
            &mut self.scratch,
            &mut self.best,
        );
        Ok(self.best[..self.nq].iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaid_codec::{Nbits, QuantizerKind};

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        let mut v: Vec<f32> = (0..n * dim)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        for r in v.chunks_exact_mut(dim) {
            let n = r.iter().map(|a| a * a).sum::<f32>().sqrt();
            r.iter_mut().for_each(|a| *a /= n);
        }
        v
    }

    #[test]
    fn every_kernel_gives_the_same_bits_and_the_float_maxsim() {
        let dim = 128;
        let data = unit_rows(400, dim, 7);
        let view = EmbeddingsView::try_new(&data, dim).expect("view");
        for nbits in [Nbits::One, Nbits::Two, Nbits::Four] {
            let cb =
                Codebook::train_int8(&data[..32 * dim], dim, view, nbits, QuantizerKind::Global)
                    .expect("codebook");
            let comp = cb.compress(view).expect("compress");
            let dec = cb
                .decompress(&comp.codes, &comp.residuals)
                .expect("decompress");
            let pl = nbits.packed_len(dim);
            let q = unit_rows(13, dim, 11);
            let mut scorer = ExactScorer::new(&cb, EmbeddingsView::try_new(&q, dim).expect("q"))
                .expect("scorer");
            // Documents of 0, 1, 17 and 56 tokens.
            for (start, n) in [(0usize, 0usize), (3, 1), (10, 17), (100, 56)] {
                let codes = &comp.codes[start..start + n];
                let res = &comp.residuals[start * pl..(start + n) * pl];
                let want = scorer.score(Kernel::Scalar, codes, res).expect("scalar");
                for kernel in Kernel::available() {
                    let got = scorer.score(kernel, codes, res).expect("kernel");
                    assert_eq!(got.to_bits(), want.to_bits(), "{kernel:?} {nbits:?} n {n}");
                }
                let doc = &dec[start * dim..(start + n) * dim];
                let float = Kernel::Scalar.maxsim(&q, doc, dim);
                // Integer rounding of query and levels: close, not equal.
                assert!(
                    (want - float).abs() < 0.02 * 13.0,
                    "{nbits:?} n {n}: {want} vs {float}"
                );
            }
            // Bad documents are errors.
            assert!(matches!(
                scorer.score(Kernel::best(), &comp.codes[..2], &comp.residuals[..pl]),
                Err(Error::DocumentShape { tokens: 2, .. })
            ));
            let bad = [0u32, cb.num_centroids() as u32];
            assert!(matches!(
                scorer.score(Kernel::best(), &bad, &comp.residuals[..2 * pl]),
                Err(Error::CodeOutOfRange { token: 1, .. })
            ));
        }
    }
}
