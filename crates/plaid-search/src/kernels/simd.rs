//! Per-ISA wrappers: the code of [`super::generic`], compiled with the
//! instruction set enabled. This is the only module of the crate with
//! `unsafe`: calling a `#[target_feature]` function is unsafe, and each call
//! is guarded by the matching runtime detection (cached by the standard
//! library), falling back to the scalar code when the feature is missing.

/// Asks the CPU to start loading the first `max_lines` cache lines of
/// `bytes` into L1, for data a loop will reach soon (the next candidate
/// document's codes or residuals: random reads the hardware prefetcher
/// cannot foresee). A hint only: it never faults and changes no result.
#[inline]
pub(crate) fn prefetch<T>(data: &[T], max_lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let ptr = data.as_ptr().cast::<i8>();
        let len = std::mem::size_of_val(data);
        for off in (0..len).step_by(64).take(max_lines) {
            // SAFETY: SSE is part of x86-64; a prefetch never faults, and
            // `wrapping_add` keeps the address inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (data, max_lines);
    }
}

use super::generic;

/// Defines, for one instruction set, `#[target_feature]` copies of the
/// generic kernels and safe dispatchers that check the CPU first.
macro_rules! isa {
    ($modname:ident, $feat:literal, $avail:path, $gather_u8:path) => {
        pub(super) mod $modname {
            use super::generic;

            #[target_feature(enable = $feat)]
            fn min_max_cols_tf(rows: generic::ScoreRows<'_>) -> (f32, f32) {
                generic::min_max_cols(rows)
            }

            pub(crate) fn min_max_cols(rows: generic::ScoreRows<'_>) -> (f32, f32) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { min_max_cols_tf(rows) }
                } else {
                    generic::min_max_cols(rows)
                }
            }

            #[target_feature(enable = $feat)]
            fn quantize_u8_tf(
                rows: generic::ScoreRows<'_>,
                lo: f32,
                scale: f32,
                out: &mut [u8],
                out_stride: usize,
            ) {
                generic::quantize_u8(rows, lo, scale, out, out_stride)
            }

            pub(crate) fn quantize_u8(
                rows: generic::ScoreRows<'_>,
                lo: f32,
                scale: f32,
                out: &mut [u8],
                out_stride: usize,
            ) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { quantize_u8_tf(rows, lo, scale, out, out_stride) }
                } else {
                    generic::quantize_u8(rows, lo, scale, out, out_stride)
                }
            }

            #[target_feature(enable = $feat)]
            fn dot_tf(a: &[f32], b: &[f32]) -> f32 {
                generic::dot::<true>(a, b)
            }

            #[target_feature(enable = $feat)]
            fn max_dots_tf(query: &[f32], doc: &[f32], dim: usize, best: &mut [f32]) {
                generic::max_dots::<true>(query, doc, dim, best)
            }

            #[target_feature(enable = $feat)]
            fn max_into_tf(acc: &mut [f32], row: &[f32]) {
                generic::max_into(acc, row)
            }

            #[target_feature(enable = $feat)]
            fn max_rows_into_tf(acc: &mut [f32], rows: &[f32]) {
                generic::max_rows_into(acc, rows)
            }

            #[target_feature(enable = $feat)]
            fn gather_max_tf(table: &[f32], codes: &[u32], acc: &mut [f32]) {
                generic::gather_max(table, codes, acc)
            }

            pub(crate) fn gather_max(table: &[f32], codes: &[u32], acc: &mut [f32]) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { gather_max_tf(table, codes, acc) }
                } else {
                    generic::gather_max(table, codes, acc)
                }
            }

            #[target_feature(enable = $feat)]
            fn gather_max_u8_tf(table: &[u8], codes: &[u32], acc: &mut [u8]) {
                $gather_u8(table, codes, acc)
            }

            pub(crate) fn gather_max_u8(table: &[u8], codes: &[u32], acc: &mut [u8]) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { gather_max_u8_tf(table, codes, acc) }
                } else {
                    generic::gather_max_u8(table, codes, acc)
                }
            }

            #[target_feature(enable = $feat)]
            fn ranked_cols_tf(
                st: &[f32],
                cols: std::ops::Range<usize>,
                stride: usize,
                depth: usize,
            ) -> Vec<Vec<u32>> {
                crate::centroids::ranked_cols_generic(st, cols, stride, depth)
            }

            pub(crate) fn ranked_cols(
                st: &[f32],
                cols: std::ops::Range<usize>,
                stride: usize,
                depth: usize,
            ) -> Vec<Vec<u32>> {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { ranked_cols_tf(st, cols, stride, depth) }
                } else {
                    crate::centroids::ranked_cols_generic(st, cols, stride, depth)
                }
            }

            #[target_feature(enable = $feat)]
            fn gather_max_u8_u16_tf(table: &[u8], codes: &[u16], acc: &mut [u8]) {
                $gather_u8(table, codes, acc)
            }

            pub(crate) fn gather_max_u8_u16(table: &[u8], codes: &[u16], acc: &mut [u8]) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { gather_max_u8_u16_tf(table, codes, acc) }
                } else {
                    generic::gather_max_u8(table, codes, acc)
                }
            }

            #[target_feature(enable = $feat)]
            fn combine_max_tf(st: &[f32], codes: &[u32], g: &[f32], inv: &[f32], acc: &mut [f32]) {
                generic::combine_max(st, codes, g, inv, acc)
            }

            pub(crate) fn combine_max(
                st: &[f32],
                codes: &[u32],
                g: &[f32],
                inv: &[f32],
                acc: &mut [f32],
            ) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { combine_max_tf(st, codes, g, inv, acc) }
                } else {
                    generic::combine_max(st, codes, g, inv, acc)
                }
            }

            #[target_feature(enable = $feat)]
            fn sq_norm_sum_tf(c: &[f32], r: &[f32]) -> f32 {
                generic::sq_norm_sum::<true>(c, r)
            }

            pub(crate) fn sq_norm_sum(c: &[f32], r: &[f32]) -> f32 {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { sq_norm_sum_tf(c, r) }
                } else {
                    generic::sq_norm_sum::<false>(c, r)
                }
            }

            #[target_feature(enable = $feat)]
            fn sq_norm_sum_i8_tf(q: &[i8], scale: f32, r: &[f32]) -> f32 {
                generic::sq_norm_sum_i8::<true>(q, scale, r)
            }

            pub(crate) fn sq_norm_sum_i8(q: &[i8], scale: f32, r: &[f32]) -> f32 {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { sq_norm_sum_i8_tf(q, scale, r) }
                } else {
                    generic::sq_norm_sum_i8::<false>(q, scale, r)
                }
            }

            pub(crate) fn max_rows_into(acc: &mut [f32], rows: &[f32]) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { max_rows_into_tf(acc, rows) }
                } else {
                    generic::max_rows_into(acc, rows)
                }
            }

            pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
                if $avail() {
                    // SAFETY: `dot_tf` needs exactly the features `$avail`
                    // just detected on this CPU.
                    unsafe { dot_tf(a, b) }
                } else {
                    generic::dot::<false>(a, b)
                }
            }

            pub(crate) fn max_dots(query: &[f32], doc: &[f32], dim: usize, best: &mut [f32]) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { max_dots_tf(query, doc, dim, best) }
                } else {
                    generic::max_dots::<false>(query, doc, dim, best)
                }
            }

            pub(crate) fn max_into(acc: &mut [f32], row: &[f32]) {
                if $avail() {
                    // SAFETY: the features were detected just above.
                    unsafe { max_into_tf(acc, row) }
                } else {
                    generic::max_into(acc, row)
                }
            }
        }
    };
}

/// Whether AVX2 and FMA are available.
#[cfg(target_arch = "x86_64")]
pub(super) fn avx2_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether AVX-512 F/BW/VL/DQ and FMA are available.
#[cfg(target_arch = "x86_64")]
pub(super) fn avx512_available() -> bool {
    // One cached answer instead of five feature lookups: kernels are called
    // once per document, hundreds of thousands of times a second.
    use std::sync::atomic::{AtomicU8, Ordering};
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("fma");
            CACHE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Whether NEON is available.
#[cfg(target_arch = "aarch64")]
pub(super) fn neon_available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

#[cfg(target_arch = "x86_64")]
isa!(
    avx2,
    "avx2,fma",
    super::avx2_available,
    super::x86_u8::gather_max_u8
);
#[cfg(target_arch = "x86_64")]
isa!(
    avx512,
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma",
    super::avx512_available,
    super::x86_u8::gather_max_u8
);
#[cfg(target_arch = "aarch64")]
isa!(neon, "neon", super::neon_available, generic::gather_max_u8);

/// x86-64 version of [`generic::gather_max_u8`] for rows of one or two
/// 256-bit vectors (queries of up to 64 tokens): four running maxima, one
/// per code of a group of four, stay in registers, so a code costs a load
/// and a max instead of a load, a max and a store that the next code must
/// wait for (what the compiler makes of the generic loop). Wider rows take
/// the generic loop. Same result: `max` is exact, in any order.
#[cfg(target_arch = "x86_64")]
mod x86_u8 {
    use super::generic;
    use std::arch::x86_64::{
        __m256i, _mm256_loadu_si256, _mm256_max_epu8, _mm256_setzero_si256, _mm256_storeu_si256,
    };

    #[target_feature(enable = "avx2")]
    pub(super) fn gather_max_u8<C: Copy + Into<u32>>(table: &[u8], codes: &[C], acc: &mut [u8]) {
        match acc.len() {
            32 => rows::<1, C>(table, codes, acc),
            64 => rows::<2, C>(table, codes, acc),
            _ => generic::gather_max_u8(table, codes, acc),
        }
    }

    /// Rows of `V` vectors; `acc.len()` is `32 · V`.
    #[target_feature(enable = "avx2")]
    fn rows<const V: usize, C: Copy + Into<u32>>(table: &[u8], codes: &[C], acc: &mut [u8]) {
        let w = 32 * V;
        if acc.len() != w {
            return;
        }
        // An out-of-range code reads zeros, the identity of `max` on bytes:
        // the same as skipping it, as the generic loop does.
        let zero = [0u8; 64];
        let row = |code: C| -> *const u8 {
            let start = code.into() as usize * w;
            match table.get(start..start + w) {
                Some(r) => r.as_ptr(),
                None => zero.as_ptr(),
            }
        };
        let load = |p: *const u8, v: usize| -> __m256i {
            // SAFETY: `p` points at `w = 32·V` readable bytes (a table row,
            // `zero` or `acc`) and `v < V`; `loadu` needs no alignment.
            unsafe { _mm256_loadu_si256(p.add(32 * v).cast()) }
        };
        let mut m = [[_mm256_setzero_si256(); V]; 4];
        let mut groups = codes.chunks_exact(4);
        for g in &mut groups {
            for (mj, &code) in m.iter_mut().zip(g) {
                let p = row(code);
                for (v, mv) in mj.iter_mut().enumerate() {
                    *mv = _mm256_max_epu8(*mv, load(p, v));
                }
            }
        }
        for &code in groups.remainder() {
            let p = row(code);
            for (v, mv) in m[0].iter_mut().enumerate() {
                *mv = _mm256_max_epu8(*mv, load(p, v));
            }
        }
        let [m0, m1, m2, m3] = m;
        for v in 0..V {
            let a = _mm256_max_epu8(m0[v], m1[v]);
            let b = _mm256_max_epu8(m2[v], m3[v]);
            let r = _mm256_max_epu8(_mm256_max_epu8(a, b), load(acc.as_ptr(), v));
            // SAFETY: `acc` holds `32·V` bytes and `v < V`.
            unsafe { _mm256_storeu_si256(acc.as_mut_ptr().add(32 * v).cast(), r) };
        }
    }
}

/// Stand-ins on other architectures: never available, scalar code if called.
#[cfg(not(target_arch = "x86_64"))]
mod absent_x86 {
    pub(in super::super) fn avx2_available() -> bool {
        false
    }
    pub(in super::super) fn avx512_available() -> bool {
        false
    }
}
#[cfg(not(target_arch = "x86_64"))]
pub(super) use absent_x86::{avx2_available, avx512_available};
#[cfg(not(target_arch = "x86_64"))]
pub(super) use scalar as avx2;
#[cfg(not(target_arch = "x86_64"))]
pub(super) use scalar as avx512;

#[cfg(not(target_arch = "aarch64"))]
pub(super) fn neon_available() -> bool {
    false
}
#[cfg(not(target_arch = "aarch64"))]
pub(super) use scalar as neon;

/// The scalar kernels under the same names, for unavailable instruction sets.
#[allow(dead_code)] // Only used on architectures that lack an ISA above.
pub(super) mod scalar {
    use super::generic;

    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
        generic::dot::<false>(a, b)
    }
    pub(crate) fn max_dots(query: &[f32], doc: &[f32], dim: usize, best: &mut [f32]) {
        generic::max_dots::<false>(query, doc, dim, best)
    }
    pub(crate) fn max_into(acc: &mut [f32], row: &[f32]) {
        generic::max_into(acc, row)
    }
    pub(crate) fn max_rows_into(acc: &mut [f32], rows: &[f32]) {
        generic::max_rows_into(acc, rows)
    }
    pub(crate) fn gather_max(table: &[f32], codes: &[u32], acc: &mut [f32]) {
        generic::gather_max(table, codes, acc)
    }
    pub(crate) fn combine_max(st: &[f32], codes: &[u32], g: &[f32], inv: &[f32], acc: &mut [f32]) {
        generic::combine_max(st, codes, g, inv, acc)
    }
    pub(crate) fn gather_max_u8(table: &[u8], codes: &[u32], acc: &mut [u8]) {
        generic::gather_max_u8(table, codes, acc)
    }
    pub(crate) fn gather_max_u8_u16(table: &[u8], codes: &[u16], acc: &mut [u8]) {
        generic::gather_max_u8(table, codes, acc)
    }
    pub(crate) fn ranked_cols(
        st: &[f32],
        cols: std::ops::Range<usize>,
        stride: usize,
        depth: usize,
    ) -> Vec<Vec<u32>> {
        crate::centroids::ranked_cols_generic(st, cols, stride, depth)
    }
    pub(crate) fn sq_norm_sum(c: &[f32], r: &[f32]) -> f32 {
        generic::sq_norm_sum::<false>(c, r)
    }
    pub(crate) fn sq_norm_sum_i8(q: &[i8], scale: f32, r: &[f32]) -> f32 {
        generic::sq_norm_sum_i8::<false>(q, scale, r)
    }
    pub(crate) fn min_max_cols(rows: generic::ScoreRows<'_>) -> (f32, f32) {
        generic::min_max_cols(rows)
    }
    pub(crate) fn quantize_u8(
        rows: generic::ScoreRows<'_>,
        lo: f32,
        scale: f32,
        out: &mut [u8],
        out_stride: usize,
    ) {
        generic::quantize_u8(rows, lo, scale, out, out_stride)
    }
}
