//! Integer exact scoring: MaxSim of a query against compressed document
//! tokens without decoding them to floats.
//!
//! A decompressed token is `y = (c + r) / ‖c + r‖` for its centroid `c` and
//! decoded residual `r`, so a query token scores
//! `q·y = (q·c + q·r) / ‖c + r‖`. `q·c` is already in the centroid scores.
//! This module computes the rest in integers:
//! - every residual weight `w` (one per dimension and stored bit field) is
//!   rounded to a byte level `v = round(w / s)` with one scale `s` for the
//!   codebook ([`Levels`]), stored as `v + 128`;
//! - every query token is rounded to `i8` with its own scale ([`QueryI8`]);
//! - the centroid is the codebook's int8 row `c = s_c · c₈`;
//! - `q·r`, `c₈·v`, `c₈·c₈` and `v·v` are exact `i32` sums of `u8 × i8`
//!   products, the shape of x86's VNNI `vpdpbusd` instruction.
//!
//! [`score_doc_scalar`] is the definition and the test oracle. The AVX-512
//! path (`vnni`) computes the same integers and then the same float
//! expressions in the same order, so the two agree bit for bit.

use plaid_codec::DecodeTable;

/// Query tokens per block: one 512-bit register of `i32` sums.
pub(crate) const BLOCK: usize = 16;

/// Residual weights as byte levels, and what the SIMD decoder needs.
#[derive(Clone, Debug)]
pub(crate) struct Levels {
    /// Bits per stored field.
    pub(crate) bits: u32,
    /// Embedding dimension.
    pub(crate) dim: usize,
    /// `table[d · F + f] = round(w(d, f) / scale) + 128` for dimension `d` and
    /// raw stored field `f` (`F = 2^bits`), so every entry is in `1..=255`.
    pub(crate) table: Vec<u8>,
    /// Level scale `s`: a level `v` stands for the residual weight `v · s`.
    pub(crate) scale: f32,
}

impl Levels {
    /// Rounds `decode`'s weights to byte levels.
    pub(crate) fn new(decode: &DecodeTable) -> Self {
        let nbits = decode.nbits();
        let bits = u32::from(nbits.bits());
        let per = nbits.dims_per_byte();
        let fields = 1usize << bits;
        let dim = decode.dim();
        let mut weights = Vec::with_capacity(dim * fields);
        for d in 0..dim {
            let (pos, slot) = (d / per, d % per);
            for f in 0..fields {
                // Field `slot` of a byte sits `8 − bits·(slot + 1)` bits up.
                let byte = (f << (8 - bits * (slot as u32 + 1))) as u8;
                let w = decode
                    .lookup(pos, byte)
                    .and_then(|ws| ws.get(slot))
                    .copied()
                    .unwrap_or(0.0);
                weights.push(w);
            }
        }
        let max = weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 && max.is_finite() {
            max / 127.0
        } else {
            0.0
        };
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let table = weights
            .iter()
            .map(|w| ((w * inv).round().clamp(-127.0, 127.0) as i32 + 128) as u8)
            .collect();
        Self {
            bits,
            dim,
            table,
            scale,
        }
    }

    /// Stored bytes per token.
    pub(crate) fn packed_len(&self) -> usize {
        self.dim * self.bits as usize / 8
    }

    /// The level (`v + 128`) of every dimension of one packed row.
    pub(crate) fn decode_row(&self, row: &[u8], out: &mut [u8]) {
        let bits = self.bits;
        let per = (8 / bits) as usize;
        let mask = (1u8 << bits) - 1;
        let fields = 1usize << bits;
        for (d, o) in out.iter_mut().enumerate().take(self.dim) {
            let slot = (d % per) as u32;
            let byte = row.get(d / per).copied().unwrap_or(0);
            let f = (byte >> (8 - bits * (slot + 1))) & mask;
            *o = self.table[d * fields + usize::from(f)];
        }
    }

    /// Whether the SIMD decoder handles this shape (whole 64-dimension
    /// chunks; 1, 2 or 4 bits).
    pub(crate) fn simd_shape(&self) -> bool {
        self.dim > 0 && self.dim.is_multiple_of(64) && matches!(self.bits, 1 | 2 | 4)
    }
}

/// A query rounded to `i8`, packed for the integer kernels.
#[derive(Clone, Debug)]
pub(crate) struct QueryI8 {
    /// Blocks of [`BLOCK`] tokens (padding tokens are zero).
    pub(crate) blocks: usize,
    /// `packed[((b · dim/4 + g) · 16 + j) · 4 + i]` = dimension `4g + i` of
    /// token `16b + j`: four dimensions of sixteen tokens per 64 bytes.
    pub(crate) packed: Vec<i8>,
    /// `128 · Σ_d q₈[t, d]` per token: what the `+128` of the levels adds.
    pub(crate) bias: Vec<i32>,
    /// `scale_t · s` per token: turns an integer `q₈·v` into `q·r`.
    pub(crate) alpha: Vec<f32>,
}

impl QueryI8 {
    /// Rounds the `nq × dim` row-major `query` with one scale per token.
    pub(crate) fn new(query: &[f32], dim: usize, levels: &Levels) -> Self {
        let nq = query.len().checked_div(dim).unwrap_or(0);
        let blocks = nq.div_ceil(BLOCK).max(1);
        let groups = dim.div_ceil(4);
        let mut packed = vec![0i8; blocks * groups * BLOCK * 4];
        let mut bias = vec![0i32; blocks * BLOCK];
        let mut alpha = vec![0.0f32; blocks * BLOCK];
        for (t, row) in query.chunks_exact(dim.max(1)).enumerate().take(nq) {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 0.0 };
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let (b, j) = (t / BLOCK, t % BLOCK);
            let mut sum = 0i32;
            for (d, &v) in row.iter().enumerate() {
                let q = (v * inv).round().clamp(-127.0, 127.0) as i8;
                sum += i32::from(q);
                let (g, i) = (d / 4, d % 4);
                packed[((b * groups + g) * BLOCK + j) * 4 + i] = q;
            }
            bias[t] = 128 * sum;
            alpha[t] = scale * levels.scale;
        }
        Self {
            blocks,
            packed,
            bias,
            alpha,
        }
    }

    /// Token `t`'s rounded value in dimension `d`.
    fn value(&self, groups: usize, t: usize, d: usize) -> i8 {
        let (b, j) = (t / BLOCK, t % BLOCK);
        let (g, i) = (d / 4, d % 4);
        self.packed[((b * groups + g) * BLOCK + j) * 4 + i]
    }
}

/// Buffers the exact kernels reuse from one document to the next.
#[derive(Clone, Debug, Default)]
pub(crate) struct DocScratch {
    /// Levels of the document's tokens (`n × dim` in the SIMD kernel, one
    /// row in the scalar one).
    pub(crate) lv: Vec<u8>,
    /// Inverse norms of the document's tokens, padded to a multiple of 16.
    pub(crate) inv: Vec<f32>,
}

/// What scoring one document needs besides its own tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExactInputs<'a> {
    pub(crate) levels: &'a Levels,
    pub(crate) query: &'a QueryI8,
    /// Centroid-major centroid scores, rows of `query.blocks · 16` floats.
    pub(crate) st: &'a [f32],
    /// Int8 centroid rows, `K × dim`.
    pub(crate) cvals: &'a [i8],
    /// Int8 centroid scales, `K`.
    pub(crate) cscales: &'a [f32],
}

impl ExactInputs<'_> {
    /// Row width of `st` and of the `best` accumulator.
    pub(crate) fn width(&self) -> usize {
        self.query.blocks * BLOCK
    }

    /// Whether `codes` (one per token) and `residuals` (`codes.len()` packed
    /// rows) fit the tables; the kernels assume it.
    pub(crate) fn fits(&self, codes: &[u32], residuals: &[u8]) -> bool {
        let dim = self.levels.dim;
        let k = self.cscales.len();
        let w = self.width();
        residuals.len() == codes.len() * self.levels.packed_len()
            && self.cvals.len() == k * dim
            && self.st.len() >= k * w
            && self.query.packed.len() == self.query.blocks * dim.div_ceil(4) * BLOCK * 4
            && codes.iter().all(|&c| (c as usize) < k)
    }
}

/// `1 / ‖s_c · c₈ + s · v‖` from the integer sums `c₂ = c₈·c₈`,
/// `cv = c₈·v` and `v₂ = v·v`. Shared by every kernel so that all of them
/// round alike.
#[inline]
pub(crate) fn inv_norm(sc: f32, s: f32, c2: i32, cv: i32, v2: i32) -> f32 {
    let sq = sc * sc * c2 as f32 + 2.0 * sc * s * cv as f32 + s * s * v2 as f32;
    1.0 / sq.max(1e-24).sqrt()
}

/// One token's score for one query token, from the integer `q₈·(v + 128)`.
#[inline]
pub(crate) fn token_score(st: f32, alpha: f32, dot: i32, bias: i32, inv: f32) -> f32 {
    (st + alpha * (dot.wrapping_sub(bias)) as f32) * inv
}

/// The definition: raises `best[t]` (length [`ExactInputs::width`]) to the
/// document's best score for query token `t`. Callers check
/// [`ExactInputs::fits`] first; rows that do not fit are skipped.
pub(crate) fn score_doc_scalar(
    inp: &ExactInputs<'_>,
    codes: &[u32],
    residuals: &[u8],
    scratch: &mut DocScratch,
    best: &mut [f32],
) {
    let lv = &mut scratch.lv;
    let levels = inp.levels;
    let dim = levels.dim;
    let pl = levels.packed_len();
    let q = inp.query;
    let groups = dim.div_ceil(4);
    let w = inp.width();
    lv.resize(dim, 0);
    for (i, &code) in codes.iter().enumerate() {
        let code = code as usize;
        let (Some(row), Some(c), Some(&sc), Some(strow)) = (
            residuals.get(i * pl..(i + 1) * pl),
            inp.cvals.get(code * dim..(code + 1) * dim),
            inp.cscales.get(code),
            inp.st.get(code * w..(code + 1) * w),
        ) else {
            continue;
        };
        levels.decode_row(row, lv);
        let (mut c2, mut cv, mut v2) = (0i32, 0i32, 0i32);
        for (&l, &cc) in lv.iter().zip(c) {
            let v = i32::from(l) - 128;
            let cc = i32::from(cc);
            c2 += cc * cc;
            cv += cc * v;
            v2 += v * v;
        }
        let inv = inv_norm(sc, levels.scale, c2, cv, v2);
        for t in 0..q.blocks * BLOCK {
            let mut dot = 0i32;
            for (d, &l) in lv.iter().enumerate() {
                dot += i32::from(l) * i32::from(q.value(groups, t, d));
            }
            let s = token_score(strow[t], q.alpha[t], dot, q.bias[t], inv);
            // As `_mm512_max_ps(best, s)`: keep `best` only when larger.
            if best[t].partial_cmp(&s) != Some(std::cmp::Ordering::Greater) {
                best[t] = s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::centroids::centroid_scores;
    use crate::kernels::vnni;
    use plaid_codec::types::EmbeddingsView;
    use plaid_codec::{Codebook, Nbits, QuantizerKind};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn unit(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// An int8 codebook over clustered unit vectors, and those vectors
    /// compressed with it.
    fn corpus(
        nbits: Nbits,
        kind: QuantizerKind,
        dim: usize,
        seed: u64,
    ) -> (Codebook, Vec<u32>, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = 24;
        let cents: Vec<f32> = (0..k).flat_map(|_| unit(&mut rng, dim)).collect();
        let mut docs = Vec::new();
        for i in 0..300 {
            let c = &cents[(i % k) * dim..(i % k + 1) * dim];
            let noise = unit(&mut rng, dim);
            let v: Vec<f32> = c.iter().zip(&noise).map(|(a, b)| a + 0.4 * b).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            docs.extend(v.iter().map(|x| x / n));
        }
        let view = EmbeddingsView::try_new(&docs, dim).expect("whole rows");
        let cb = Codebook::train_int8(&cents, dim, view, nbits, kind).expect("trains");
        let comp = cb.compress(view).expect("compresses");
        (cb, comp.codes, comp.residuals)
    }

    /// Σ_t max_tok q_t · decompress(tok) in f64, the float definition.
    fn reference(cb: &Codebook, q: &[f32], codes: &[u32], res: &[u8]) -> f64 {
        let dim = cb.dim();
        let toks = cb.decompress(codes, res).expect("decompresses");
        q.chunks_exact(dim)
            .map(|qt| {
                toks.chunks_exact(dim)
                    .map(|y| {
                        qt.iter()
                            .zip(y)
                            .map(|(a, b)| f64::from(*a) * f64::from(*b))
                            .sum()
                    })
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .sum()
    }

    #[test]
    fn integer_scores_track_float_maxsim_and_simd_is_bit_identical() {
        let mut simd_checked = 0;
        for (case, (nbits, kind, dim)) in [
            (Nbits::Four, QuantizerKind::PerDim, 128),
            (Nbits::Two, QuantizerKind::PerDim, 128),
            (Nbits::One, QuantizerKind::Global, 64),
            (Nbits::Four, QuantizerKind::Global, 192),
            (Nbits::Two, QuantizerKind::Global, 24),
        ]
        .into_iter()
        .enumerate()
        {
            let (cb, codes, res) = corpus(nbits, kind, dim, 7 + case as u64);
            let levels = Levels::new(cb.quantizer().decode_table());
            let dec = vnni::Decoder::new(&levels);
            let int8 = cb.int8_centroids().expect("int8 codebook");
            let pl = levels.packed_len();
            let mut rng = ChaCha8Rng::seed_from_u64(99 + case as u64);
            for nq in [1usize, 5, 16, 17, 32, 40] {
                let q: Vec<f32> = (0..nq).flat_map(|_| unit(&mut rng, dim)).collect();
                let query = QueryI8::new(&q, dim, &levels);
                let w = query.blocks * BLOCK;
                let st = centroid_scores(&q, cb.centroids(), dim, w, 1);
                let inp = ExactInputs {
                    levels: &levels,
                    query: &query,
                    st: &st,
                    cvals: int8.values(),
                    cscales: int8.scales(),
                };
                // Lengths around the SIMD kernel's groups of 16 tokens and
                // its pairs of tokens, and an empty document.
                for (start, len) in [
                    (0usize, 1usize),
                    (3, 37),
                    (100, 64),
                    (250, 50),
                    (10, 2),
                    (20, 16),
                    (40, 17),
                    (7, 0),
                ] {
                    let (c, r) = (
                        &codes[start..start + len],
                        &res[start * pl..(start + len) * pl],
                    );
                    assert!(inp.fits(c, r));
                    let mut scratch = DocScratch::default();
                    let mut want = vec![f32::NEG_INFINITY; w];
                    score_doc_scalar(&inp, c, r, &mut scratch, &mut want);
                    let got: f64 = want[..nq].iter().map(|&v| f64::from(v)).sum();
                    let exact = reference(&cb, &q, c, r);
                    // Rounding the levels and the query costs at most about
                    // 1e-2 per query token on unit vectors; typically far less.
                    if len == 0 {
                        // No token raises any query token's best.
                        assert!(want.iter().all(|&v| v == f32::NEG_INFINITY));
                    } else {
                        assert!(
                            (got - exact).abs() <= 1e-2 * nq as f64,
                            "{nbits:?} {kind:?} dim {dim} nq {nq}: int8 {got} vs float {exact}"
                        );
                    }
                    let mut simd = vec![f32::NEG_INFINITY; w];
                    if vnni::score_doc(&inp, &dec, c, r, &mut scratch, &mut simd) {
                        simd_checked += 1;
                        let same = simd
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{nbits:?} dim {dim} nq {nq}: {simd:?} vs {want:?}");
                    }
                }
            }
        }
        // Without AVX-512 VNNI + VBMI only the scalar half runs.
        if vnni::available() {
            // Every shape but dim 24 (not whole 64-dimension chunks) ran.
            assert_eq!(simd_checked, 4 * 6 * 8);
        }
    }

    #[test]
    fn levels_round_every_weight_within_half_a_step() {
        for nbits in [Nbits::One, Nbits::Two, Nbits::Four] {
            let (cb, _, _) = corpus(nbits, QuantizerKind::PerDim, 64, 3);
            let table = cb.quantizer().decode_table();
            let levels = Levels::new(table);
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            for _ in 0..50 {
                let row: Vec<u8> = (0..levels.packed_len()).map(|_| rng.random()).collect();
                let mut w = vec![0.0f32; 64];
                table.decode_row(&row, &mut w);
                let mut lv = vec![0u8; 64];
                levels.decode_row(&row, &mut lv);
                for (d, (&l, &wd)) in lv.iter().zip(&w).enumerate() {
                    let back = (f32::from(l) - 128.0) * levels.scale;
                    assert!(
                        (back - wd).abs() <= levels.scale * 0.5 + 1e-7,
                        "{nbits:?} dim {d}: level {l} → {back}, weight {wd}"
                    );
                }
            }
        }
    }
}
