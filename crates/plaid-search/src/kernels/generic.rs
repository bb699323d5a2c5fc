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
