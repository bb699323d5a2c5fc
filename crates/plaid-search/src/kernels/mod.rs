//! Float kernels of the search: dot products, MaxSim of one document and the
//! element-wise max used by approximate scoring.
//!
//! The algorithms are written once in `generic` with explicit lane
//! accumulators so the compiler vectorises them; `simd` compiles that same
//! code under `target_feature` for each instruction set (AVX2+FMA,
//! AVX-512, NEON) and is the only module with `unsafe`. [`Kernel`] lists the
//! implementations in order of preference; the scalar one is always available
//! and is the fallback. [`crate::reference`] holds the f64 oracle the tests
//! compare every kernel with.

pub(crate) mod generic;
pub(crate) mod int8;
#[allow(unsafe_code)]
mod simd;
#[allow(unsafe_code)]
pub(crate) mod vnni;

pub(crate) use generic::ScoreRows;
pub(crate) use simd::prefetch;

/// One implementation of the float kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable code, no FMA; always available.
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 (F, BW, VL, DQ) with FMA.
    Avx512,
    /// AArch64 NEON.
    Neon,
}

impl Kernel {
    /// Width of the vector lanes the kernels are written for; score rows
    /// given to [`Kernel::gather_max`] and [`Kernel::combine_max`] are padded
    /// to a multiple of it.
    pub const LANES: usize = generic::LANES;

    /// Byte lanes of [`Kernel::gather_max_u8`]; its rows are padded to a
    /// multiple of it.
    pub const LANES_U8: usize = generic::LANES_U8;

    /// Every kernel, most preferred first.
    pub const ALL: [Kernel; 4] = [Kernel::Avx512, Kernel::Avx2, Kernel::Neon, Kernel::Scalar];

    /// Whether this CPU can run the kernel. Detection is cached by the
    /// standard library; the answer depends only on the hardware.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => simd::avx2_available(),
            Kernel::Avx512 => simd::avx512_available(),
            Kernel::Neon => simd::neon_available(),
        }
    }

    /// The most preferred kernel this CPU can run.
    pub fn best() -> Kernel {
        Self::ALL
            .into_iter()
            .find(|k| k.is_available())
            .unwrap_or(Kernel::Scalar)
    }

    /// The kernels this CPU can run, most preferred first.
    pub fn available() -> Vec<Kernel> {
        Self::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    /// A short lowercase name (`scalar`, `avx2`, `avx512`, `neon`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::Neon => "neon",
        }
    }

    /// Dot product of two equal-length slices (the shorter length is used).
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Kernel::Avx2 => simd::avx2::dot(a, b),
            Kernel::Avx512 => simd::avx512::dot(a, b),
            Kernel::Neon => simd::neon::dot(a, b),
            Kernel::Scalar => generic::dot::<false>(a, b),
        }
    }

    /// For each of the `best.len()` query rows of `query` (row width `dim`),
    /// raises `best[q]` to the largest dot product with any row of `doc`.
    ///
    /// Used for exact MaxSim: start `best` at `-inf`, feed every document
    /// token block, and sum `best`.
    pub fn max_dots(self, query: &[f32], doc: &[f32], dim: usize, best: &mut [f32]) {
        if dim == 0 {
            return;
        }
        match self {
            Kernel::Avx2 => simd::avx2::max_dots(query, doc, dim, best),
            Kernel::Avx512 => simd::avx512::max_dots(query, doc, dim, best),
            Kernel::Neon => simd::neon::max_dots(query, doc, dim, best),
            Kernel::Scalar => generic::max_dots::<false>(query, doc, dim, best),
        }
    }

    /// Element-wise `acc[i] = max(acc[i], row[i])` over the common length.
    pub fn max_into(self, acc: &mut [f32], row: &[f32]) {
        match self {
            Kernel::Avx2 => simd::avx2::max_into(acc, row),
            Kernel::Avx512 => simd::avx512::max_into(acc, row),
            Kernel::Neon => simd::neon::max_into(acc, row),
            Kernel::Scalar => generic::max_into(acc, row),
        }
    }

    /// For every whole row of `rows` (rows of `acc.len()` floats),
    /// `acc[j] = max(acc[j], row[j])`: the max over a document's tokens of a
    /// token-major score block, in one call.
    pub fn max_rows_into(self, acc: &mut [f32], rows: &[f32]) {
        match self {
            Kernel::Avx2 => simd::avx2::max_rows_into(acc, rows),
            Kernel::Avx512 => simd::avx512::max_rows_into(acc, rows),
            Kernel::Neon => simd::neon::max_rows_into(acc, rows),
            Kernel::Scalar => generic::max_rows_into(acc, rows),
        }
    }

    /// Approximate scoring of one document: for each code,
    /// `acc[j] = max(acc[j], table[code · acc.len() + j])`. `acc.len()` must be
    /// a multiple of [`Kernel::LANES`]; otherwise nothing is done. Codes whose
    /// row lies outside `table` are skipped.
    pub fn gather_max(self, table: &[f32], codes: &[u32], acc: &mut [f32]) {
        match self {
            Kernel::Avx2 => simd::avx2::gather_max(table, codes, acc),
            Kernel::Avx512 => simd::avx512::gather_max(table, codes, acc),
            Kernel::Neon => simd::neon::gather_max(table, codes, acc),
            Kernel::Scalar => generic::gather_max(table, codes, acc),
        }
    }

    /// [`Kernel::gather_max`] over quantised (`u8`) scores; `acc.len()` must
    /// be a multiple of [`Kernel::LANES_U8`] (otherwise nothing is done).
    pub fn gather_max_u8(self, table: &[u8], codes: &[u32], acc: &mut [u8]) {
        match self {
            Kernel::Avx2 => simd::avx2::gather_max_u8(table, codes, acc),
            Kernel::Avx512 => simd::avx512::gather_max_u8(table, codes, acc),
            Kernel::Neon => simd::neon::gather_max_u8(table, codes, acc),
            Kernel::Scalar => generic::gather_max_u8(table, codes, acc),
        }
    }

    /// [`Kernel::gather_max_u8`] over 16-bit codes (an index's usual width),
    /// so that callers need not widen them first.
    pub fn gather_max_u8_u16(self, table: &[u8], codes: &[u16], acc: &mut [u8]) {
        match self {
            Kernel::Avx2 => simd::avx2::gather_max_u8_u16(table, codes, acc),
            Kernel::Avx512 => simd::avx512::gather_max_u8_u16(table, codes, acc),
            Kernel::Neon => simd::neon::gather_max_u8_u16(table, codes, acc),
            Kernel::Scalar => generic::gather_max_u8(table, codes, acc),
        }
    }

    /// Smallest and largest score of `rows`, NaN ignored; `(+∞, −∞)` when
    /// there are none.
    pub(crate) fn min_max_cols(self, rows: ScoreRows<'_>) -> (f32, f32) {
        match self {
            Kernel::Avx2 => simd::avx2::min_max_cols(rows),
            Kernel::Avx512 => simd::avx512::min_max_cols(rows),
            Kernel::Neon => simd::neon::min_max_cols(rows),
            Kernel::Scalar => generic::min_max_cols(rows),
        }
    }

    /// Quantises the scores of `rows` to `round_half_up((v − lo) · scale)`
    /// clamped to 0..=255, NaN to 0, into the rows of `out` (rows of
    /// `out_stride` bytes).
    pub(crate) fn quantize_u8(
        self,
        rows: ScoreRows<'_>,
        lo: f32,
        scale: f32,
        out: &mut [u8],
        out_stride: usize,
    ) {
        match self {
            Kernel::Avx2 => simd::avx2::quantize_u8(rows, lo, scale, out, out_stride),
            Kernel::Avx512 => simd::avx512::quantize_u8(rows, lo, scale, out, out_stride),
            Kernel::Neon => simd::neon::quantize_u8(rows, lo, scale, out, out_stride),
            Kernel::Scalar => generic::quantize_u8(rows, lo, scale, out, out_stride),
        }
    }

    /// Each query token's (column's) best `depth` centroids among the rows
    /// of `st` (rows of `stride` floats), best first, ties to the lower id:
    /// the ranked lists of probing, compiled for this instruction set.
    pub(crate) fn ranked_cols(
        self,
        st: &[f32],
        cols: std::ops::Range<usize>,
        stride: usize,
        depth: usize,
    ) -> Vec<Vec<u32>> {
        match self {
            Kernel::Avx2 => simd::avx2::ranked_cols(st, cols, stride, depth),
            Kernel::Avx512 => simd::avx512::ranked_cols(st, cols, stride, depth),
            Kernel::Neon => simd::neon::ranked_cols(st, cols, stride, depth),
            Kernel::Scalar => crate::centroids::ranked_cols_generic(st, cols, stride, depth),
        }
    }

    /// Exact scoring of one document from its parts: for token `t`,
    /// `acc[j] = max(acc[j], (st[codes[t] · w + j] + g[t · w + j]) · inv[t])`
    /// with `w = acc.len()`, a multiple of [`Kernel::LANES`] (otherwise
    /// nothing is done). Tokens whose row lies outside `st` are skipped.
    pub fn combine_max(self, st: &[f32], codes: &[u32], g: &[f32], inv: &[f32], acc: &mut [f32]) {
        match self {
            Kernel::Avx2 => simd::avx2::combine_max(st, codes, g, inv, acc),
            Kernel::Avx512 => simd::avx512::combine_max(st, codes, g, inv, acc),
            Kernel::Neon => simd::neon::combine_max(st, codes, g, inv, acc),
            Kernel::Scalar => generic::combine_max(st, codes, g, inv, acc),
        }
    }

    /// `Σ_i (c_i + r_i)²` over the common length.
    pub fn sq_norm_sum(self, c: &[f32], r: &[f32]) -> f32 {
        match self {
            Kernel::Avx2 => simd::avx2::sq_norm_sum(c, r),
            Kernel::Avx512 => simd::avx512::sq_norm_sum(c, r),
            Kernel::Neon => simd::neon::sq_norm_sum(c, r),
            Kernel::Scalar => generic::sq_norm_sum::<false>(c, r),
        }
    }

    /// `Σ_i (scale · q_i + r_i)²` over the common length (an int8 centroid row).
    pub fn sq_norm_sum_i8(self, q: &[i8], scale: f32, r: &[f32]) -> f32 {
        match self {
            Kernel::Avx2 => simd::avx2::sq_norm_sum_i8(q, scale, r),
            Kernel::Avx512 => simd::avx512::sq_norm_sum_i8(q, scale, r),
            Kernel::Neon => simd::neon::sq_norm_sum_i8(q, scale, r),
            Kernel::Scalar => generic::sq_norm_sum_i8::<false>(q, scale, r),
        }
    }

    /// Integer exact scoring of one document (see [`int8`]): raises
    /// `best[t]` to the document's best score for query token `t`. The
    /// AVX-512 kernel uses VNNI when the CPU has it; every other kernel (and
    /// any shape VNNI does not cover) runs the scalar definition, which
    /// gives bit-identical results.
    pub(crate) fn score_doc_i8(
        self,
        inp: &int8::ExactInputs<'_>,
        dec: &vnni::Decoder,
        codes: &[u32],
        residuals: &[u8],
        scratch: &mut int8::DocScratch,
        best: &mut [f32],
    ) {
        if self == Kernel::Avx512 && vnni::score_doc(inp, dec, codes, residuals, scratch, best) {
            return;
        }
        int8::score_doc_scalar(inp, codes, residuals, scratch, best)
    }

    /// Exact MaxSim: `Σ_q max_t q·t` of a query (`nq × dim`) against a
    /// decompressed document (`n × dim`). An empty document scores 0.
    pub fn maxsim(self, query: &[f32], doc: &[f32], dim: usize) -> f32 {
        if dim == 0 || doc.len() < dim {
            return 0.0;
        }
        let nq = query.len() / dim;
        let mut best = vec![f32::NEG_INFINITY; nq];
        self.max_dots(query, doc, dim, &mut best);
        best.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{Kernel, ScoreRows};

    /// Plain loops: the oracle of [`Kernel::min_max_cols`] and
    /// [`Kernel::quantize_u8`] (the saturating `as` maps NaN to 0).
    fn naive(st: &[f32], stride: usize, nq: usize, out_stride: usize) -> (f32, f32, Vec<u8>) {
        let vals = || {
            st.chunks_exact(stride)
                .flat_map(|r| r[..nq].iter().copied())
        };
        let lo = vals().filter(|v| !v.is_nan()).fold(f32::INFINITY, f32::min);
        let hi = vals()
            .filter(|v| !v.is_nan())
            .fold(f32::NEG_INFINITY, f32::max);
        let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
        let mut out = vec![7u8; st.len() / stride * out_stride];
        for (o, row) in out
            .chunks_exact_mut(out_stride)
            .zip(st.chunks_exact(stride))
        {
            for (o, &v) in o.iter_mut().zip(&row[..nq]) {
                *o = ((v - lo) * scale + 0.5) as u8;
            }
        }
        (lo, hi, out)
    }

    #[test]
    fn score_quantisation_matches_plain_loops() {
        for kernel in Kernel::available() {
            for (nq, stride) in [
                (1usize, 16usize),
                (5, 16),
                (16, 16),
                (21, 32),
                (32, 32),
                (40, 48),
            ] {
                let rows = 37;
                let mut st: Vec<f32> = (0..rows * stride)
                    .map(|i| ((i * 7919 % 1009) as f32 * 0.173).sin() * 0.9)
                    .collect();
                // Padding columns hold values outside the range, which
                // must not count; exact half steps and a NaN are mixed in.
                for (i, row) in st.chunks_exact_mut(stride).enumerate() {
                    row[nq..].iter_mut().for_each(|v| *v = 50.0);
                    if i == 3 {
                        row[0] = f32::NAN;
                    }
                    if i == 5 {
                        row[nq - 1] = 0.0;
                    }
                }
                let out_stride = nq.div_ceil(32) * 32;
                let (lo, hi, want) = naive(&st, stride, nq, out_stride);
                let view = ScoreRows {
                    st: &st,
                    stride,
                    nq,
                };
                let got = kernel.min_max_cols(view);
                assert_eq!(got, (lo, hi), "{kernel:?} nq {nq}");
                let scale = 255.0 / (hi - lo);
                let mut out = vec![7u8; rows * out_stride];
                kernel.quantize_u8(view, lo, scale, &mut out, out_stride);
                assert_eq!(out, want, "{kernel:?} nq {nq}");
                // Values past the range saturate.
                let (lo2, scale2) = (lo + 0.5, scale * 3.0);
                let mut out = vec![0u8; rows * out_stride];
                kernel.quantize_u8(view, lo2, scale2, &mut out, out_stride);
                for (o, row) in out.chunks_exact(out_stride).zip(st.chunks_exact(stride)) {
                    for (&b, &v) in o.iter().zip(&row[..nq]) {
                        assert_eq!(b, ((v - lo2) * scale2 + 0.5) as u8, "{kernel:?}");
                    }
                }
            }
        }
    }
}
