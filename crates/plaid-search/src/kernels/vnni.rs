//! AVX-512 VNNI + VBMI version of [`super::int8::score_doc_scalar`].
//!
//! Per document token and 64-dimension chunk:
//! 1. `vpermb` spreads the chunk's packed bytes so that each 64-bit lane
//!    holds the bytes of its eight dimensions, and `vpmultishiftqb` moves
//!    each dimension's bit field into its own byte;
//! 2. each byte becomes a table index `(d mod 64/F) · F + field`, and
//!    `F` masked `vpermb`s, each over the 64 levels of `64/F` dimensions,
//!    turn indices into levels (`v + 128`);
//! 3. `vpdpbusd` accumulates the norm's sums (`c₈·v`, `c₈·c₈`, `v·v`) and,
//!    for every block of 16 query tokens, `q₈·(v + 128)` with the token's
//!    four levels of a group broadcast against four dimensions of 16 query
//!    tokens.
//!
//! The integers equal the scalar ones exactly and the float steps are the
//! same operations in the same order ([`super::int8::token_score`],
//! [`super::int8::inv_norm`]), so results are bit-identical; the tests
//! check that.

use super::int8::{BLOCK, ExactInputs, Levels, inv_norm};

/// Constant vectors of the decoder for one bit width.
#[derive(Clone, Debug)]
pub(crate) struct Decoder {
    /// Byte `8j + m` ← packed byte `bits·j + m` of the chunk.
    spread: [u8; 64],
    /// Bit offset of dimension `8j + i`'s field inside 64-bit lane `j`.
    ctrl: [u8; 64],
    /// `F − 1` in every byte.
    fmask: [u8; 64],
    /// Table offset of each position inside its two-register table:
    /// `(p mod 128/F) · F`.
    offs: [u8; 64],
}

impl Decoder {
    pub(crate) fn new(levels: &Levels) -> Self {
        let bits = levels.bits.clamp(1, 4) as usize;
        let per = 8 / bits;
        let fields = 1usize << bits;
        let dims_per_table = 128 / fields;
        let mut spread = [0u8; 64];
        let mut ctrl = [0u8; 64];
        let mut offs = [0u8; 64];
        for j in 0..8 {
            for m in 0..bits {
                spread[8 * j + m] = (bits * j + m) as u8;
            }
            for i in 0..8 {
                let (byte, slot) = (i / per, i % per);
                ctrl[8 * j + i] = (8 * byte + 8 - bits * (slot + 1)) as u8;
            }
        }
        for (p, o) in offs.iter_mut().enumerate() {
            *o = ((p % dims_per_table) * fields) as u8;
        }
        Self {
            spread,
            ctrl,
            fmask: [(fields - 1) as u8; 64],
            offs,
        }
    }
}

/// Whether this CPU runs [`score_doc`].
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`super::int8::score_doc_scalar`] with AVX-512 VNNI; returns `false`
/// (doing nothing) when the CPU or the shape does not allow it, or when the
/// inputs do not [fit](ExactInputs::fits).
pub(crate) fn score_doc(
    inp: &ExactInputs<'_>,
    dec: &Decoder,
    codes: &[u32],
    residuals: &[u8],
    lv: &mut Vec<u8>,
    best: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !(available()
            && inp.levels.simd_shape()
            && best.len() == inp.width()
            && inp.fits(codes, residuals))
        {
            return false;
        }
        lv.resize(inp.levels.dim, 0);
        // SAFETY: the CPU features were detected above, and `fits` plus the
        // checks above establish every bound the function relies on.
        unsafe { x86::score_doc(inp, dec, codes, residuals, lv, best) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (inp, dec, codes, residuals, lv, best);
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// Tokens ahead whose table rows are prefetched.
    const PREFETCH: usize = 4;

    /// # Safety
    /// The CPU has AVX-512 F, BW, VBMI and VNNI; `levels.dim` is a positive
    /// multiple of 64; `levels.bits` is 1, 2 or 4; `lv.len() == dim`;
    /// `best.len() == inp.width()`; and [`ExactInputs::fits`] holds for
    /// `codes` and `residuals`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    pub(super) unsafe fn score_doc(
        inp: &ExactInputs<'_>,
        dec: &Decoder,
        codes: &[u32],
        residuals: &[u8],
        lv: &mut [u8],
        best: &mut [f32],
    ) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match (inp.levels.bits, inp.query.blocks) {
                (4, 1) => doc::<4, 1>(inp, dec, codes, residuals, lv, best),
                (4, 2) => doc::<4, 2>(inp, dec, codes, residuals, lv, best),
                (4, _) => doc::<4, 0>(inp, dec, codes, residuals, lv, best),
                (2, 1) => doc::<2, 1>(inp, dec, codes, residuals, lv, best),
                (2, 2) => doc::<2, 2>(inp, dec, codes, residuals, lv, best),
                (2, _) => doc::<2, 0>(inp, dec, codes, residuals, lv, best),
                (_, 1) => doc::<1, 1>(inp, dec, codes, residuals, lv, best),
                (_, 2) => doc::<1, 2>(inp, dec, codes, residuals, lv, best),
                _ => doc::<1, 0>(inp, dec, codes, residuals, lv, best),
            }
        }
    }

    /// The four level bytes of group `g` in every 32-bit lane.
    ///
    /// # Safety
    /// `lv` is readable for `4g + 4` bytes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn bcast(lv: *const u8, g: usize) -> __m512i {
        // SAFETY: the caller's bound.
        _mm512_set1_epi32(unsafe { lv.add(4 * g).cast::<i32>().read_unaligned() })
    }

    /// Query group `g` of a block: four dimensions of sixteen tokens.
    ///
    /// # Safety
    /// `q` is readable for `64 g + 64` bytes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(q: *const i8, g: usize) -> __m512i {
        // SAFETY: the caller's bound.
        unsafe { _mm512_loadu_si512(q.add(64 * g).cast()) }
    }

    /// Levels (`v + 128`) of one 64-dimension chunk of `BITS`-bit fields at
    /// `src`, using the two-register tables at `table`.
    ///
    /// # Safety
    /// AVX-512 F, BW and VBMI; `src` is readable for `8 · BITS` bytes and
    /// `table` for `64 · F` bytes (`F = 2^BITS`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn decode_chunk<const BITS: usize>(
        src: *const u8,
        table: *const u8,
        spread: __m512i,
        ctrl: __m512i,
        fmask: __m512i,
        offs: __m512i,
    ) -> __m512i {
        let fields = 1usize << BITS;
        let pairs = fields / 2; // two-register tables per chunk
        let per_pair = 128 / fields; // dimensions per table pair
        let load_mask: __mmask64 = (1u64 << (8 * BITS)) - 1;
        // SAFETY: the mask reads only the chunk's `8 · BITS` bytes.
        let packed = unsafe { _mm512_maskz_loadu_epi8(load_mask, src.cast()) };
        let x = _mm512_permutexvar_epi8(spread, packed);
        let y = _mm512_multishift_epi64_epi8(ctrl, x);
        // (y & fmask) | offs
        let idx = _mm512_ternarylogic_epi32::<0xEA>(y, fmask, offs);
        let mut parts = [_mm512_setzero_si512(); 8];
        for (j, part) in parts.iter_mut().enumerate().take(pairs) {
            // SAFETY: table pair `j` is bytes `128 j .. 128 j + 128` of the
            // chunk's `64 · F`.
            let (lo, hi) = unsafe {
                (
                    _mm512_loadu_si512(table.add(128 * j).cast()),
                    _mm512_loadu_si512(table.add(128 * j + 64).cast()),
                )
            };
            let m: __mmask64 = if per_pair >= 64 {
                !0
            } else {
                ((1u64 << per_pair) - 1) << (j * per_pair)
            };
            *part = _mm512_maskz_permutex2var_epi8(m, lo, idx, hi);
        }
        // Disjoint positions: OR the parts in a tree.
        let mut width = pairs;
        while width > 1 {
            width /= 2;
            for j in 0..width {
                parts[j] = _mm512_or_si512(parts[j], parts[j + width]);
            }
        }
        parts[0]
    }

    /// [`score_doc`] for `BITS`-bit fields and `NB` query blocks (`0`: any).
    ///
    /// # Safety
    /// As [`score_doc`], with `BITS == levels.bits` and `NB` 0 or
    /// `query.blocks`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    unsafe fn doc<const BITS: usize, const NB: usize>(
        inp: &ExactInputs<'_>,
        dec: &Decoder,
        codes: &[u32],
        residuals: &[u8],
        lv: &mut [u8],
        best: &mut [f32],
    ) {
        let levels = inp.levels;
        let dim = levels.dim;
        let pl = levels.packed_len();
        let chunks = dim / 64;
        let groups = dim / 4;
        let w = inp.width();
        let q = inp.query;
        let s = levels.scale;
        let fields = 1usize << BITS;
        // SAFETY: the four arrays are 64 bytes long.
        let (spread, ctrl, fmask, offs) = unsafe {
            (
                _mm512_loadu_si512(dec.spread.as_ptr().cast()),
                _mm512_loadu_si512(dec.ctrl.as_ptr().cast()),
                _mm512_loadu_si512(dec.fmask.as_ptr().cast()),
                _mm512_loadu_si512(dec.offs.as_ptr().cast()),
            )
        };
        let x80 = _mm512_set1_epi8(-128);
        let k128 = _mm512_set1_epi8(-128); // 128 as an unsigned byte
        let blocks = if NB == 0 { q.blocks } else { NB };
        for (i, &code) in codes.iter().enumerate() {
            if let Some(&ahead) = codes.get(i + PREFETCH) {
                let ahead = ahead as usize;
                // The centroid row and score row of a token a few steps on
                // are random reads in tables larger than L1: start them now.
                // `wrapping_add` keeps this free of `unsafe`; prefetches
                // never fault, and `fits` puts the addresses in bounds.
                let c = inp.cvals.as_ptr().wrapping_add(ahead * dim);
                let st = inp.st.as_ptr().wrapping_add(ahead * w);
                for off in (0..dim).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(off).cast());
                }
                for off in (0..w).step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(st.wrapping_add(off).cast());
                }
                _mm_prefetch::<_MM_HINT_T0>(
                    residuals.as_ptr().wrapping_add((i + PREFETCH) * pl).cast(),
                );
            }
            let code = code as usize;
            // SAFETY: `fits` says residuals hold `codes.len()` rows of `pl`
            // bytes, `code < K` and `cvals` is `K × dim`.
            let (row, crow) = unsafe {
                (
                    residuals.as_ptr().add(i * pl),
                    inp.cvals.as_ptr().add(code * dim),
                )
            };
            let mut ccv = _mm512_setzero_si512();
            let mut cc2 = _mm512_setzero_si512();
            let mut vv2 = _mm512_setzero_si512();
            let mut t_c = _mm512_setzero_si512();
            let mut t_v = _mm512_setzero_si512();
            for h in 0..chunks {
                // SAFETY: chunk `h` is `8 · BITS` bytes at `h · 8 · BITS`
                // (`pl = chunks · 8 · BITS`); its tables are the `64 · F`
                // bytes from `64 h · F` of the `dim · F`-byte table; `lv`
                // and the centroid row hold `dim` bytes.
                unsafe {
                    let l = decode_chunk::<BITS>(
                        row.add(h * 8 * BITS),
                        levels.table.as_ptr().add(h * 64 * fields),
                        spread,
                        ctrl,
                        fmask,
                        offs,
                    );
                    _mm512_storeu_si512(lv.as_mut_ptr().add(h * 64).cast(), l);
                    let c = _mm512_loadu_si512(crow.add(h * 64).cast());
                    let v = _mm512_xor_si512(l, x80);
                    let cu = _mm512_xor_si512(c, x80);
                    ccv = _mm512_dpbusd_epi32(ccv, l, c);
                    cc2 = _mm512_dpbusd_epi32(cc2, cu, c);
                    vv2 = _mm512_dpbusd_epi32(vv2, l, v);
                    t_c = _mm512_dpbusd_epi32(t_c, k128, c);
                    t_v = _mm512_dpbusd_epi32(t_v, k128, v);
                }
            }
            let cv = _mm512_reduce_add_epi32(_mm512_sub_epi32(ccv, t_c));
            let c2 = _mm512_reduce_add_epi32(_mm512_sub_epi32(cc2, t_c));
            let v2 = _mm512_reduce_add_epi32(_mm512_sub_epi32(vv2, t_v));
            let inv = inv_norm(inp.cscales[code], s, c2, cv, v2);
            let invv = _mm512_set1_ps(inv);
            let lvp = lv.as_ptr();
            let mut b = 0;
            while b < blocks {
                // Two blocks at a time share the level broadcasts.
                let two = b + 1 < blocks;
                // SAFETY: `fits` says the packed query holds
                // `blocks · groups` groups of 64 bytes; `groups` is a
                // multiple of 16, so `g + 1 < groups` below.
                let qa = unsafe { q.packed.as_ptr().add(b * groups * 64) };
                let qb = if two {
                    // SAFETY: block `b + 1` exists.
                    unsafe { q.packed.as_ptr().add((b + 1) * groups * 64) }
                } else {
                    qa
                };
                let z = _mm512_setzero_si512();
                let (mut a0, mut a1, mut b0, mut b1) = (z, z, z, z);
                let mut g = 0;
                if two {
                    while g < groups {
                        // SAFETY: level bytes `4g .. 4g + 8` are in `lv`
                        // (`4 · groups = dim`); query bytes
                        // `64 g .. 64 g + 128` are in each block.
                        unsafe {
                            let l0 = bcast(lvp, g);
                            let l1 = bcast(lvp, g + 1);
                            a0 = _mm512_dpbusd_epi32(a0, l0, load(qa, g));
                            a1 = _mm512_dpbusd_epi32(a1, l1, load(qa, g + 1));
                            b0 = _mm512_dpbusd_epi32(b0, l0, load(qb, g));
                            b1 = _mm512_dpbusd_epi32(b1, l1, load(qb, g + 1));
                        }
                        g += 2;
                    }
                } else {
                    // One block: four independent sums, so that the chain of
                    // dependent `vpdpbusd`s is a quarter of the groups long.
                    while g < groups {
                        // SAFETY: as above, for groups `g .. g + 4`
                        // (`groups` is a multiple of 16).
                        unsafe {
                            a0 = _mm512_dpbusd_epi32(a0, bcast(lvp, g), load(qa, g));
                            a1 = _mm512_dpbusd_epi32(a1, bcast(lvp, g + 1), load(qa, g + 1));
                            b0 = _mm512_dpbusd_epi32(b0, bcast(lvp, g + 2), load(qa, g + 2));
                            b1 = _mm512_dpbusd_epi32(b1, bcast(lvp, g + 3), load(qa, g + 3));
                        }
                        g += 4;
                    }
                    a0 = _mm512_add_epi32(a0, b0);
                    a1 = _mm512_add_epi32(a1, b1);
                }
                let n = if two { 2 } else { 1 };
                for (k, dot) in [_mm512_add_epi32(a0, a1), _mm512_add_epi32(b0, b1)]
                    .into_iter()
                    .take(n)
                    .enumerate()
                {
                    let off = (b + k) * BLOCK;
                    // SAFETY: `bias` and `alpha` hold `blocks · 16` values;
                    // `st` holds `K × w` floats with `w = blocks · 16`, and
                    // `best` holds `w`.
                    unsafe {
                        let bias = _mm512_loadu_si512(q.bias.as_ptr().add(off).cast());
                        let alpha = _mm512_loadu_ps(q.alpha.as_ptr().add(off));
                        let st = _mm512_loadu_ps(inp.st.as_ptr().add(code * w + off));
                        let d = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, bias));
                        let score = _mm512_mul_ps(_mm512_add_ps(st, _mm512_mul_ps(alpha, d)), invv);
                        let bp = best.as_mut_ptr().add(off);
                        _mm512_storeu_ps(bp, _mm512_max_ps(_mm512_loadu_ps(bp), score));
                    }
                }
                b += n;
            }
        }
    }
}
