//! The kernels written once, with 16 explicit lane accumulators so that the
//! compiler vectorises them for whatever `target_feature` the caller was
//! compiled with. `FMA` selects fused multiply-add, which is only fast when
//! the target has it; the scalar kernel uses separate multiply and add.

const LANES: usize = 16;

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, acc: f32) -> f32 {
    if FMA { a.mul_add(b, acc) } else { acc + a * b }
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
    // Pairwise reduction of the lanes.
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0] + tail
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
