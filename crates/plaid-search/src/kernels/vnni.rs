//! AVX-512 VNNI + VBMI version of [`super::int8::score_doc_scalar`].
//!
//! A document is scored in two passes. The first decodes every token to
//! levels (kept in scratch) and computes its norm sums; sixteen tokens' sums
//! are reduced together and their inverse norms computed in one vector.
//! 4-bit fields, the usual case and the costliest to look up (16 levels per
//! dimension), are decoded eight tokens at a time instead (`norms4`), so
//! that every byte of a table lookup is used. The
//! second multiplies the levels by the query, two tokens at a time so each
//! query load serves both. Splitting the passes keeps the long chain from
//! a token's bytes to its norm off the multiply's path.
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

use super::int8::{BLOCK, DocScratch, ExactInputs, Levels};

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
    /// 4-bit fields, eight tokens at a time: bit offset of dimension
    /// `8h + i` of a 64-bit word, at byte `8t + i` of `ctrl8[h]`.
    ctrl8: [[u8; 64]; 2],
    /// Table offset `16 i` of dimension `i` of eight, at byte `8t + i`.
    offs8: [u8; 64],
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
        let mut ctrl8 = [[0u8; 64]; 2];
        let mut offs8 = [0u8; 64];
        for t in 0..8 {
            for i in 0..8 {
                for (h, c) in ctrl8.iter_mut().enumerate() {
                    // Dimension `k = 8h + i` of the word is in byte k / 2,
                    // in the high nibble when k is even.
                    c[8 * t + i] = (8 * ((8 * h + i) / 2) + 4 * (1 - i % 2)) as u8;
                }
                offs8[8 * t + i] = (16 * i) as u8;
            }
        }
        Self {
            spread,
            ctrl,
            fmask: [(fields - 1) as u8; 64],
            offs,
            ctrl8,
            offs8,
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
    scratch: &mut DocScratch,
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
        let n = codes.len();
        scratch.lv.resize(n.div_ceil(8) * 8 * inp.levels.dim, 0);
        scratch.inv.resize(n.div_ceil(16) * 16, 0.0);
        // SAFETY: the CPU features were detected above, and `fits` plus the
        // checks above establish every bound the function relies on.
        unsafe { x86::score_doc(inp, dec, codes, residuals, scratch, best) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (inp, dec, codes, residuals, scratch, best);
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
    /// multiple of 64; `levels.bits` is 1, 2 or 4; `scratch.lv` holds
    /// `codes.len()` rounded up to 8 rows of `dim` bytes and `scratch.inv`
    /// `codes.len()` rounded up to 16 floats; `best.len() == inp.width()`; and [`ExactInputs::fits`]
    /// holds for `codes` and `residuals`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    pub(super) unsafe fn score_doc(
        inp: &ExactInputs<'_>,
        dec: &Decoder,
        codes: &[u32],
        residuals: &[u8],
        scratch: &mut DocScratch,
        best: &mut [f32],
    ) {
        let (lv, inv) = (&mut scratch.lv[..], &mut scratch.inv[..]);
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match inp.levels.bits {
                4 => norms4(inp, dec, codes, residuals, lv, inv),
                2 => norms::<2>(inp, dec, codes, residuals, lv, inv),
                _ => norms::<1>(inp, dec, codes, residuals, lv, inv),
            }
            match (inp.levels.bits == 4, inp.query.blocks) {
                (true, 1) => dots::<1, true>(inp, codes, lv, inv, best),
                (true, 2) => dots::<2, true>(inp, codes, lv, inv, best),
                (true, _) => dots::<0, true>(inp, codes, lv, inv, best),
                (false, 1) => dots::<1, false>(inp, codes, lv, inv, best),
                (false, 2) => dots::<2, false>(inp, codes, lv, inv, best),
                (false, _) => dots::<0, false>(inp, codes, lv, inv, best),
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

    /// Lane `j` of the result is the sum of the sixteen `i32` lanes of
    /// `rows[j]`: a transpose-and-add tree, about three instructions per row
    /// instead of a full horizontal reduction each.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce16(rows: &[__m512i; 16]) -> __m512i {
        // Within each 128-bit lane, pair rows: the even and odd halves of
        // rows 2k and 2k + 1, interleaved.
        let mut x = [_mm512_setzero_si512(); 8];
        for (k, x) in x.iter_mut().enumerate() {
            let (a, b) = (rows[2 * k], rows[2 * k + 1]);
            *x = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        }
        // Each 128-bit lane of y[m] now holds rows 4m .. 4m + 4, summed over
        // that lane's four elements.
        let mut y = [_mm512_setzero_si512(); 4];
        for (m, y) in y.iter_mut().enumerate() {
            let (a, b) = (x[2 * m], x[2 * m + 1]);
            *y = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
        }
        // Add 128-bit lanes pairwise, twice: lane q ends with rows
        // 4q .. 4q + 4, in order.
        let fold = |u: __m512i, v: __m512i| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b10_00_10_00>(u, v),
                _mm512_shuffle_i32x4::<0b11_01_11_01>(u, v),
            )
        };
        let z0 = fold(y[0], y[1]);
        let z1 = fold(y[2], y[3]);
        fold(z0, z1)
    }

    /// Pass 1: every token's levels into `lv` (row `i` at `i · dim`) and its
    /// inverse norm into `inv[i]`, computed as
    /// [`super::int8::inv_norm`] computes it, sixteen tokens at a time.
    ///
    /// # Safety
    /// As [`score_doc`], with `BITS == levels.bits`, `lv` and `inv` of the
    /// lengths it names.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    unsafe fn norms<const BITS: usize>(
        inp: &ExactInputs<'_>,
        dec: &Decoder,
        codes: &[u32],
        residuals: &[u8],
        lv: &mut [u8],
        inv: &mut [f32],
    ) {
        let levels = inp.levels;
        let dim = levels.dim;
        let pl = levels.packed_len();
        let chunks = dim / 64;
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
        let s = _mm512_set1_ps(levels.scale);
        let two = _mm512_set1_ps(2.0);
        let zero = _mm512_setzero_si512();
        let n = codes.len();
        let mut start = 0;
        while start < n {
            let m = (n - start).min(16);
            let (mut c2s, mut cvs, mut v2s) = ([zero; 16], [zero; 16], [zero; 16]);
            let mut sc = [0.0f32; 16];
            for j in 0..m {
                let i = start + j;
                if let Some(&ahead) = codes.get(i + PREFETCH) {
                    // The centroid row of a token a few steps on is a random
                    // read in a table larger than L1, and its residuals may
                    // not be cached: start both now. `wrapping_add` keeps
                    // this free of `unsafe`; prefetches never fault, and
                    // `fits` puts the addresses in bounds.
                    let c = inp.cvals.as_ptr().wrapping_add(ahead as usize * dim);
                    for off in (0..dim).step_by(64) {
                        _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(off).cast());
                    }
                    let r = residuals.as_ptr().wrapping_add((i + PREFETCH) * pl);
                    for off in (0..pl).step_by(64) {
                        _mm_prefetch::<_MM_HINT_T0>(r.wrapping_add(off).cast());
                    }
                }
                let code = codes[i] as usize;
                sc[j] = inp.cscales[code];
                // SAFETY: `fits` says residuals hold `n` rows of `pl` bytes,
                // `code < K` and `cvals` is `K × dim`; `lv` holds `n` rows
                // of `dim` bytes.
                let (row, crow, out) = unsafe {
                    (
                        residuals.as_ptr().add(i * pl),
                        inp.cvals.as_ptr().add(code * dim),
                        lv.as_mut_ptr().add(i * dim),
                    )
                };
                let (mut ccv, mut cc2, mut vv2, mut t_c, mut t_v) = (zero, zero, zero, zero, zero);
                for h in 0..chunks {
                    // SAFETY: chunk `h` is `8 · BITS` bytes at `h · 8 · BITS`
                    // (`pl = chunks · 8 · BITS`); its tables are the `64 · F`
                    // bytes from `64 h · F` of the `dim · F`-byte table; the
                    // level row and the centroid row hold `dim` bytes.
                    unsafe {
                        let l = decode_chunk::<BITS>(
                            row.add(h * 8 * BITS),
                            levels.table.as_ptr().add(h * 64 * fields),
                            spread,
                            ctrl,
                            fmask,
                            offs,
                        );
                        _mm512_storeu_si512(out.add(h * 64).cast(), l);
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
                cvs[j] = _mm512_sub_epi32(ccv, t_c);
                c2s[j] = _mm512_sub_epi32(cc2, t_c);
                v2s[j] = _mm512_sub_epi32(vv2, t_v);
            }
            let c2 = _mm512_cvtepi32_ps(reduce16(&c2s));
            let cv = _mm512_cvtepi32_ps(reduce16(&cvs));
            let v2 = _mm512_cvtepi32_ps(reduce16(&v2s));
            // SAFETY: `sc` is 16 floats long.
            let scv = unsafe { _mm512_loadu_ps(sc.as_ptr()) };
            let r = inv_norms(scv, s, two, c2, cv, v2);
            // SAFETY: `inv` holds `n` rounded up to 16 floats and `start`
            // is a multiple of 16 below `n`.
            unsafe { _mm512_storeu_ps(inv.as_mut_ptr().add(start), r) };
            start += 16;
        }
    }

    /// [`super::int8::inv_norm`] on sixteen lanes, operation for operation:
    /// `sc·sc·c2 + 2·sc·s·cv + s·s·v2`, then `1 / √max(·, 1e-24)`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn inv_norms(sc: __m512, s: __m512, two: __m512, c2: __m512, cv: __m512, v2: __m512) -> __m512 {
        let a = _mm512_mul_ps(_mm512_mul_ps(sc, sc), c2);
        let b = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(two, sc), s), cv);
        let c = _mm512_mul_ps(_mm512_mul_ps(s, s), v2);
        let sq = _mm512_add_ps(_mm512_add_ps(a, b), c);
        _mm512_div_ps(
            _mm512_set1_ps(1.0),
            _mm512_sqrt_ps(_mm512_max_ps(sq, _mm512_set1_ps(1e-24))),
        )
    }
    /// Pass 1 for 4-bit fields, eight tokens at a time: one `vpermi2b`
    /// looks up eight dimensions of all eight tokens, where the row-by-row
    /// decoder needs one per eight dimensions of a single token.
    ///
    /// Gathers put the eight tokens' packed bytes for 16 dimensions in the
    /// eight 64-bit lanes (token `t` in lane `t`); `vpmultishiftqb` moves
    /// each field into its own byte, and the 128-entry table of those eight
    /// dimensions maps fields to levels. Levels are stored blocked: for the
    /// group of tokens `8b .. 8b + 8`, dimension `d` of token `8b + t` is
    /// byte `8b · dim + (d / 8) · 64 + 8t + d mod 8` of `lv`. The centroid
    /// rows are gathered into the same layout for the norm sums, whose two
    /// 32-bit halves per lane are added at the end.
    ///
    /// # Safety
    /// As [`score_doc`], with `levels.bits == 4`, `lv` holding `codes.len()`
    /// rounded up to 8 rows of `dim` bytes and `inv` `codes.len()` rounded
    /// up to 16 floats.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    unsafe fn norms4(
        inp: &ExactInputs<'_>,
        dec: &Decoder,
        codes: &[u32],
        residuals: &[u8],
        lv: &mut [u8],
        inv: &mut [f32],
    ) {
        let levels = inp.levels;
        let dim = levels.dim;
        let pl = levels.packed_len();
        let words = dim / 16; // 64-bit words per packed row
        // SAFETY: the arrays are 64 bytes long.
        let (ctrl0, ctrl1, offs) = unsafe {
            (
                _mm512_loadu_si512(dec.ctrl8[0].as_ptr().cast()),
                _mm512_loadu_si512(dec.ctrl8[1].as_ptr().cast()),
                _mm512_loadu_si512(dec.offs8.as_ptr().cast()),
            )
        };
        let nib = _mm512_set1_epi8(0x0f);
        let x80 = _mm512_set1_epi8(-128);
        let k128 = _mm512_set1_epi8(-128); // 128 as an unsigned byte
        let s = _mm512_set1_ps(levels.scale);
        let two = _mm512_set1_ps(2.0);
        let zero = _mm512_setzero_si512();
        let n = codes.len();
        let mut start = 0;
        while start < n {
            let m = (n - start).min(8);
            let mask: __mmask8 = ((1u16 << m) - 1) as u8;
            let mut roff = [0i64; 8];
            let mut coff = [0i64; 8];
            let mut sc = [0.0f32; 16];
            for t in 0..m {
                let code = codes[start + t] as usize;
                roff[t] = ((start + t) * pl) as i64;
                coff[t] = (code * dim) as i64;
                sc[t] = inp.cscales[code];
            }
            // The next group's rows: residuals in a run, centroids at random.
            if start + 8 < n {
                let r = residuals.as_ptr().wrapping_add((start + 8) * pl);
                for off in (0..8 * pl).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(r.wrapping_add(off).cast());
                }
                for &c in codes.iter().skip(start + 8).take(8) {
                    let c = inp.cvals.as_ptr().wrapping_add(c as usize * dim);
                    for off in (0..dim).step_by(64) {
                        _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(off).cast());
                    }
                }
            }
            // SAFETY: the arrays are eight 64-bit values.
            let (mut rv, mut cv_idx) = unsafe {
                (
                    _mm512_loadu_si512(roff.as_ptr().cast()),
                    _mm512_loadu_si512(coff.as_ptr().cast()),
                )
            };
            let eight = _mm512_set1_epi64(8);
            let (mut ccv, mut cc2, mut vv2, mut t_c, mut t_v) = (zero, zero, zero, zero, zero);
            // SAFETY: the group's level block is `8 · dim` bytes at
            // `start · dim` (`lv` holds `n` rounded up to 8 rows).
            let out = unsafe { lv.as_mut_ptr().add(start * dim) };
            for w in 0..words {
                // SAFETY: for the `m` live lanes, byte offsets `(start + t)
                // · pl + 8w .. + 8` lie in the token's packed row (`fits`:
                // residuals hold `n` rows of `pl = 8 · words` bytes); masked
                // lanes are not read.
                let packed = unsafe {
                    _mm512_mask_i64gather_epi64::<1>(zero, mask, rv, residuals.as_ptr().cast())
                };
                rv = _mm512_add_epi64(rv, eight);
                for (h, ctrl) in [ctrl0, ctrl1].into_iter().enumerate() {
                    let g = 2 * w + h; // eight-dimension group
                    let idx = _mm512_ternarylogic_epi32::<0xEA>(
                        _mm512_multishift_epi64_epi8(ctrl, packed),
                        nib,
                        offs,
                    );
                    // SAFETY: the table of dimensions `8g .. 8g + 8` is the
                    // 128 bytes at `128 g` of the `dim · 16`-byte table; the
                    // level block holds `dim / 8` slices of 64 bytes; for
                    // live lanes, centroid bytes `code · dim + 8g .. + 8`
                    // are in `cvals` (`fits`: `code < K`, `K × dim` bytes).
                    unsafe {
                        let tab = levels.table.as_ptr().add(128 * g);
                        let l = _mm512_permutex2var_epi8(
                            _mm512_loadu_si512(tab.cast()),
                            idx,
                            _mm512_loadu_si512(tab.add(64).cast()),
                        );
                        _mm512_storeu_si512(out.add(64 * g).cast(), l);
                        let c = _mm512_mask_i64gather_epi64::<1>(
                            zero,
                            mask,
                            cv_idx,
                            inp.cvals.as_ptr().cast(),
                        );
                        cv_idx = _mm512_add_epi64(cv_idx, eight);
                        let v = _mm512_xor_si512(l, x80);
                        let cu = _mm512_xor_si512(c, x80);
                        ccv = _mm512_dpbusd_epi32(ccv, l, c);
                        cc2 = _mm512_dpbusd_epi32(cc2, cu, c);
                        vv2 = _mm512_dpbusd_epi32(vv2, l, v);
                        t_c = _mm512_dpbusd_epi32(t_c, k128, c);
                        t_v = _mm512_dpbusd_epi32(t_v, k128, v);
                    }
                }
            }
            // Lane t's two 32-bit halves belong to token t: add them, and
            // keep the low halves as eight floats.
            let fold = |x: __m512i| {
                let sum = _mm512_add_epi32(x, _mm512_srli_epi64::<32>(x));
                _mm512_cvtepi32_ps(_mm512_zextsi256_si512(_mm512_cvtepi64_epi32(sum)))
            };
            let cv = fold(_mm512_sub_epi32(ccv, t_c));
            let c2 = fold(_mm512_sub_epi32(cc2, t_c));
            let v2 = fold(_mm512_sub_epi32(vv2, t_v));
            // SAFETY: `sc` is 16 floats long.
            let scv = unsafe { _mm512_loadu_ps(sc.as_ptr()) };
            let r = inv_norms(scv, s, two, c2, cv, v2);
            // SAFETY: `inv` holds `n` rounded up to 16 floats and `start`
            // is a multiple of 8 below `n`, so 8 floats fit.
            unsafe { _mm512_mask_storeu_ps(inv.as_mut_ptr().add(start), 0xff, r) };
            start += 8;
        }
    }

    /// Pass 2: raises `best` by every token's scores against the query,
    /// from the levels and inverse norms of pass 1. Two tokens go together,
    /// so each query load feeds two `vpdpbusd`s.
    ///
    /// # Safety
    /// As [`score_doc`], with `NB` 0 or `query.blocks`, and `lv`, `inv`
    /// filled by [`norms`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dots<const NB: usize, const BLOCKED: bool>(
        inp: &ExactInputs<'_>,
        codes: &[u32],
        lv: &[u8],
        inv: &[f32],
        best: &mut [f32],
    ) {
        let dim = inp.levels.dim;
        let groups = dim / 4;
        let w = inp.width();
        let q = inp.query;
        let blocks = if NB == 0 { q.blocks } else { NB };
        let n = codes.len();
        let z = _mm512_setzero_si512();
        let mut i = 0;
        while i < n {
            if let Some(&ahead) = codes.get(i + 2 * PREFETCH) {
                // The score row of a token a few steps on: a random read.
                let st = inp.st.as_ptr().wrapping_add(ahead as usize * w);
                for off in (0..w).step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(st.wrapping_add(off).cast());
                }
            }
            // With an odd count the last token goes alone (as both halves
            // of the pair; the copy's scores are not used).
            let pair = i + 1 < n;
            let j = if pair { i + 1 } else { i };
            let toks = [(codes[i] as usize, i), (codes[j] as usize, j)];
            // Where token `t`'s levels start, and how far apart the level
            // bytes of groups `g` and `g + 2` are, in either layout.
            let at = |t: usize| {
                if BLOCKED {
                    (t / 8) * 8 * dim + (t % 8) * 8
                } else {
                    t * dim
                }
            };
            let step = if BLOCKED { 64 } else { 8 };
            // SAFETY: `lv` holds `n` rows of `dim` bytes (rounded up to 8
            // rows when blocked) and `i, j < n`.
            let (la, lb) = unsafe { (lv.as_ptr().add(at(i)), lv.as_ptr().add(at(j))) };
            let mut b = 0;
            while b < blocks {
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
                // acc[t][k][e]: token t of the pair, block b + k, even or
                // odd groups (two chains each, to hide vpdpbusd latency).
                let mut acc = [[[z; 2]; 2]; 2];
                let mut g = 0;
                while g < groups {
                    // SAFETY: the eight level bytes of groups `g, g + 1`
                    // are at `(g / 2) · step` from the token's start in
                    // either layout, inside its `dim` bytes (`4 · groups =
                    // dim`); query bytes `64 g .. 64 g + 128` are in each
                    // block.
                    unsafe {
                        let (pa, pb) = (la.add(g / 2 * step), lb.add(g / 2 * step));
                        let a0 = bcast(pa, 0);
                        let a1 = bcast(pa, 1);
                        let b0 = bcast(pb, 0);
                        let b1 = bcast(pb, 1);
                        let q0 = load(qa, g);
                        let q1 = load(qa, g + 1);
                        acc[0][0][0] = _mm512_dpbusd_epi32(acc[0][0][0], a0, q0);
                        acc[0][0][1] = _mm512_dpbusd_epi32(acc[0][0][1], a1, q1);
                        acc[1][0][0] = _mm512_dpbusd_epi32(acc[1][0][0], b0, q0);
                        acc[1][0][1] = _mm512_dpbusd_epi32(acc[1][0][1], b1, q1);
                        if two {
                            let p0 = load(qb, g);
                            let p1 = load(qb, g + 1);
                            acc[0][1][0] = _mm512_dpbusd_epi32(acc[0][1][0], a0, p0);
                            acc[0][1][1] = _mm512_dpbusd_epi32(acc[0][1][1], a1, p1);
                            acc[1][1][0] = _mm512_dpbusd_epi32(acc[1][1][0], b0, p0);
                            acc[1][1][1] = _mm512_dpbusd_epi32(acc[1][1][1], b1, p1);
                        }
                    }
                    g += 2;
                }
                let nb = if two { 2 } else { 1 };
                let nt = if pair { 2 } else { 1 };
                // Token order within each lane, as the scalar loop's.
                for (&(code, tok), acc) in toks.iter().zip(&acc).take(nt) {
                    let invv = _mm512_set1_ps(inv[tok]);
                    for (k, [even, odd]) in acc.iter().enumerate().take(nb) {
                        let dot = _mm512_add_epi32(*even, *odd);
                        let off = (b + k) * BLOCK;
                        // SAFETY: `bias` and `alpha` hold `blocks · 16`
                        // values; `st` holds `K × w` floats with
                        // `w = blocks · 16` and `code < K`; `best` holds `w`.
                        unsafe {
                            let bias = _mm512_loadu_si512(q.bias.as_ptr().add(off).cast());
                            let alpha = _mm512_loadu_ps(q.alpha.as_ptr().add(off));
                            let st = _mm512_loadu_ps(inp.st.as_ptr().add(code * w + off));
                            let d = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, bias));
                            let score =
                                _mm512_mul_ps(_mm512_add_ps(st, _mm512_mul_ps(alpha, d)), invv);
                            let bp = best.as_mut_ptr().add(off);
                            _mm512_storeu_ps(bp, _mm512_max_ps(_mm512_loadu_ps(bp), score));
                        }
                    }
                }
                b += nb;
            }
            i += if pair { 2 } else { 1 };
        }
    }
}
