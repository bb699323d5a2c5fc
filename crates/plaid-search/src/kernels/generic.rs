//! The kernels written once, with 16 explicit lane accumulators so that the
//! compiler vectorises them for whatever `target_feature` the caller was
//! compiled with. `FMA` selects fused multiply-add, which is only fast when
//! the target has it; the scalar kernel uses separate multiply and add.

pub(crate) const LANES: usize = 16;

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, acc: f32) -> f32 {
    if FMA { a.mul_add(b, acc) } else { acc + a * b }
}

/// Pairwise sum of the lane accumulators (the same order on every ISA).
#[inline(always)]
fn reduce_lanes(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Dot product over the common length of `a` and `b`.
#[inline(always)]
pub(crate) fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail = madd::<FMA>(*x, *y, tail);
    }
    reduce_lanes(acc) + tail
}

/// Raises `best[q]` to `max_t query_q · doc_t` (see [`super::Kernel::max_dots`]).
#[inline(always)]
pub(crate) fn max_dots<const FMA: bool>(query: &[f32], doc: &[f32], dim: usize, best: &mut [f32]) {
    for t in doc.chunks_exact(dim) {
        for (q, b) in query.chunks_exact(dim).zip(best.iter_mut()) {
            let s = dot::<FMA>(q, t);
            // NaN never wins: `s > b` is false for NaN.
            if s > *b {
                *b = s;
            }
        }
    }
}

/// `acc[i] = max(acc[i], row[i])`; NaN in `row` never wins.
#[inline(always)]
pub(crate) fn max_into(acc: &mut [f32], row: &[f32]) {
    for (a, r) in acc.iter_mut().zip(row) {
        *a = if *r > *a { *r } else { *a };
    }
}

/// `acc[j] = max(acc[j], rows[t * acc.len() + j])` for every whole row `t`.
#[inline(always)]
pub(crate) fn max_rows_into(acc: &mut [f32], rows: &[f32]) {
    let w = acc.len();
    if w == 0 {
        return;
    }
    for row in rows.chunks_exact(w) {
        max_into(acc, row);
    }
}

/// For each code, `acc[j] = max(acc[j], table[code * acc.len() + j])`: the
/// approximate-score kernel, one document at a time. `acc.len()` is a
/// multiple of [`LANES`] (the caller pads), so every row is whole vectors.
/// Codes whose row is out of range are skipped (the caller checked them).
#[inline(always)]
pub(crate) fn gather_max(table: &[f32], codes: &[u32], acc: &mut [f32]) {
    let w = acc.len();
    if w == 0 || !w.is_multiple_of(LANES) {
        return;
    }
    for &code in codes {
        let start = code as usize * w;
        let Some(row) = table.get(start..start + w) else {
            continue;
        };
        for (a, r) in acc.chunks_exact_mut(LANES).zip(row.chunks_exact(LANES)) {
            for l in 0..LANES {
                a[l] = if r[l] > a[l] { r[l] } else { a[l] };
            }
        }
    }
}

/// Exact-stage combine for one document: for token `t` with centroid
/// `codes[t]`, `acc[j] = max(acc[j], (st[codes[t] * w + j] + g[t * w + j]) * inv[t])`
/// where `w = acc.len()`, a multiple of [`LANES`]. `st` holds centroid·query
/// scores, `g` residual·query scores and `inv` the reciprocal norm of each
/// decompressed token, so the value is the query's dot product with the
/// normalised decompressed token.
#[inline(always)]
pub(crate) fn combine_max(st: &[f32], codes: &[u32], g: &[f32], inv: &[f32], acc: &mut [f32]) {
    let w = acc.len();
    if w == 0 || !w.is_multiple_of(LANES) {
        return;
    }
    for ((&code, grow), &s) in codes.iter().zip(g.chunks_exact(w)).zip(inv) {
        let start = code as usize * w;
        let Some(row) = st.get(start..start + w) else {
            continue;
        };
        let lanes = acc
            .chunks_exact_mut(LANES)
            .zip(row.chunks_exact(LANES))
            .zip(grow.chunks_exact(LANES));
        for ((a, r), gr) in lanes {
            for l in 0..LANES {
                let v = (r[l] + gr[l]) * s;
                a[l] = if v > a[l] { v } else { a[l] };
            }
        }
    }
}

/// `Σ_i (c_i + r_i)²` over the common length: the squared norm of a
/// decompressed token before normalisation.
#[inline(always)]
pub(crate) fn sq_norm_sum<const FMA: bool>(c: &[f32], r: &[f32]) -> f32 {
    let n = c.len().min(r.len());
    let (c, r) = (&c[..n], &r[..n]);
    let mut acc = [0.0f32; LANES];
    let mut cc = c.chunks_exact(LANES);
    let mut cr = r.chunks_exact(LANES);
    for (x, y) in (&mut cc).zip(&mut cr) {
        for l in 0..LANES {
            let v = x[l] + y[l];
            acc[l] = madd::<FMA>(v, v, acc[l]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in cc.remainder().iter().zip(cr.remainder()) {
        let v = x + y;
        tail = madd::<FMA>(v, v, tail);
    }
    reduce_lanes(acc) + tail
}

/// [`sq_norm_sum`] with an int8 centroid row: `c_i = scale · q_i`.
#[inline(always)]
pub(crate) fn sq_norm_sum_i8<const FMA: bool>(q: &[i8], scale: f32, r: &[f32]) -> f32 {
    let n = q.len().min(r.len());
    let (q, r) = (&q[..n], &r[..n]);
    let mut acc = [0.0f32; LANES];
    let mut cq = q.chunks_exact(LANES);
    let mut cr = r.chunks_exact(LANES);
    for (x, y) in (&mut cq).zip(&mut cr) {
        for l in 0..LANES {
            let v = madd::<FMA>(f32::from(x[l]), scale, y[l]);
            acc[l] = madd::<FMA>(v, v, acc[l]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in cq.remainder().iter().zip(cr.remainder()) {
        let v = madd::<FMA>(f32::from(*x), scale, *y);
        tail = madd::<FMA>(v, v, tail);
    }
    reduce_lanes(acc) + tail
}

/// Byte lanes of [`gather_max_u8`]: one 256-bit vector.
pub(crate) const LANES_U8: usize = 32;

/// [`gather_max`] over a table of quantised scores (`u8`): for each code,
/// `acc[j] = max(acc[j], table[code * acc.len() + j])`. `acc.len()` is a
/// multiple of [`LANES_U8`]; codes whose row is out of range are skipped.
#[inline(always)]
pub(crate) fn gather_max_u8<C: Copy + Into<u32>>(table: &[u8], codes: &[C], acc: &mut [u8]) {
    let w = acc.len();
    if w == 0 || !w.is_multiple_of(LANES_U8) {
        return;
    }
    for &code in codes {
        let start = code.into() as usize * w;
        let Some(row) = table.get(start..start + w) else {
            continue;
        };
        for (a, r) in acc
            .chunks_exact_mut(LANES_U8)
            .zip(row.chunks_exact(LANES_U8))
        {
            for l in 0..LANES_U8 {
                a[l] = a[l].max(r[l]);
            }
        }
    }
}

/// Centroid scores as the search lays them out: rows of `stride` floats
/// of which the first `nq` are scores (the rest is padding).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScoreRows<'a> {
    /// The rows.
    pub(crate) st: &'a [f32],
    /// Floats per row.
    pub(crate) stride: usize,
    /// Scores per row.
    pub(crate) nq: usize,
}

/// Smallest and largest of the first `nq` values of every row of `st` (rows
/// of `stride` floats), as `(lo, hi)`; `(+∞, −∞)` when there are none. NaN
/// values are ignored. Written as plain comparisons over 16 lanes, which
/// compile to vector min/max (`f32::min` must order NaN and does not).
#[inline(always)]
pub(crate) fn min_max_cols(rows: ScoreRows<'_>) -> (f32, f32) {
    let ScoreRows { st, stride, nq } = rows;
    let mut lo16 = [f32::INFINITY; 16];
    let mut hi16 = [f32::NEG_INFINITY; 16];
    if stride == 0 || nq > stride {
        return (f32::INFINITY, f32::NEG_INFINITY);
    }
    let mut step = |c: &[f32; 16]| {
        for ((l, h), &v) in lo16.iter_mut().zip(hi16.iter_mut()).zip(c) {
            *l = if v < *l { v } else { *l };
            *h = if v > *h { v } else { *h };
        }
    };
    for row in st.chunks_exact(stride) {
        let mut chunks = row[..nq].chunks_exact(16);
        for c in &mut chunks {
            if let Ok(c) = <&[f32; 16]>::try_from(c) {
                step(c);
            }
        }
        // The tail padded with a copy of its first value, which changes
        // neither extreme; a whole chunk keeps the lanes in registers.
        let rest = chunks.remainder();
        if let Some(&first) = rest.first() {
            let mut c = [first; 16];
            c[..rest.len()].copy_from_slice(rest);
            step(&c);
        }
    }
    let lo = lo16.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = hi16.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (lo, hi)
}

/// Quantises the first `nq` values of each row of `st` (rows of `stride`
/// floats) to bytes, `round_half_up((v − lo) · scale)` clamped to 0..=255
/// (NaN to 0), into the rows of `out` (`out_stride` bytes; the rest of each
/// row is left as it is). The clamps are comparisons and the conversion a
/// float add, so the loop vectorises.
#[inline(always)]
pub(crate) fn quantize_u8(
    rows: ScoreRows<'_>,
    lo: f32,
    scale: f32,
    out: &mut [u8],
    out_stride: usize,
) {
    let ScoreRows { st, stride, nq } = rows;
    if stride == 0 || out_stride == 0 || nq > stride || nq > out_stride {
        return;
    }
    for (o, row) in out
        .chunks_exact_mut(out_stride)
        .zip(st.chunks_exact(stride))
    {
        for (o, &v) in o[..nq].iter_mut().zip(&row[..nq]) {
            // Adding ½ and truncating rounds half up, unlike `round`.
            let x = (v - lo) * scale + 0.5;
            let x = if x > 0.0 { x } else { 0.0 };
            let x = if x < 255.0 { x } else { 255.0 };
            // x is in 0..=255, so floor(x) + 2^23 is exact and its low
            // mantissa byte is floor(x): a conversion that vectorises, where
            // the saturating `as` is done one value at a time.
            *o = (x.floor() + 8_388_608.0).to_bits() as u8;
        }
    }
}
