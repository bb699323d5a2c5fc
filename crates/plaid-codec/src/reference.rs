//! Scalar, obviously correct versions of every kernel in this crate.
//!
//! These functions are the documented definition of what the fast paths compute. They
//! favour clarity over speed: bits are moved one at a time, quantiles sort a copy, and
//! norms are accumulated in `f64`. Tests compare the fast paths with them (exactly for
//! bit and table kernels, within a derived bound for float kernels), benches time them
//! as the baseline, and other backends (`plaid-cuda`) can test against them too.
//!
//! They never panic: lengths that do not fit are reported with `None` or handled as
//! documented.

use crate::{Codebook, Nbits, QuantizerKind, ResidualQuantizer};

/// The bucket of `value` given sorted `cutoffs`: the number of cutoffs `c` with
/// `value > c` (strict), so a value equal to a cutoff goes to the lower bucket.
///
/// NaN compares false with everything and lands in bucket 0.
pub fn bucket(cutoffs: &[f32], value: f32) -> u8 {
    let mut count = 0u8;
    for &c in cutoffs {
        if value > c {
            count = count.saturating_add(1);
        }
    }
    count
}

/// Packs bucket indices bit by bit (spec §1.3): bucket `d`'s bit `j` (LSB first) is bit
/// `d × nbits + j` of the stream, and stream bit `s` is bit `7 − s % 8` of byte `s / 8`.
///
/// Returns `ceil(len × nbits / 8)` bytes; bits beyond the last bucket are zero.
pub fn pack_row(buckets: &[u8], nbits: Nbits) -> Vec<u8> {
    let bits = usize::from(nbits.bits());
    let mut out = vec![0u8; (buckets.len() * bits).div_ceil(8)];
    let mut s = 0;
    for &b in buckets {
        for j in 0..bits {
            if (b >> j) & 1 == 1 {
                out[s / 8] |= 0x80 >> (s % 8);
            }
            s += 1;
        }
    }
    out
}

/// Unpacks bit by bit: the inverse of [`pack_row`], giving `len × 8 / nbits` buckets.
pub fn unpack_row(packed: &[u8], nbits: Nbits) -> Vec<u8> {
    let bits = usize::from(nbits.bits());
    let dims = packed.len() * 8 / bits;
    let mut out = vec![0u8; dims];
    for (d, b) in out.iter_mut().enumerate() {
        for j in 0..bits {
            let s = d * bits + j;
            let bit = (packed[s / 8] >> (7 - s % 8)) & 1;
            *b |= bit << j;
        }
    }
    out
}

/// The reconstruction weight of `bucket` in dimension `dim_index`, read straight from
/// the quantizer's parameters, or `None` when either index is out of range.
pub fn weight(q: &ResidualQuantizer, dim_index: usize, bucket: u8) -> Option<f32> {
    let b = q.nbits().num_buckets();
    if dim_index >= q.dim() || usize::from(bucket) >= b {
        return None;
    }
    let i = match q.kind() {
        QuantizerKind::Global => usize::from(bucket),
        QuantizerKind::PerDim => dim_index * b + usize::from(bucket),
    };
    q.weights().get(i).copied()
}

/// The cutoffs that apply to dimension `dim_index`, or `None` when it is out of range.
pub fn cutoffs(q: &ResidualQuantizer, dim_index: usize) -> Option<&[f32]> {
    if dim_index >= q.dim() {
        return None;
    }
    let per = q.nbits().num_buckets() - 1;
    match q.kind() {
        QuantizerKind::Global => Some(q.cutoffs()),
        QuantizerKind::PerDim => q.cutoffs().get(dim_index * per..(dim_index + 1) * per),
    }
}

/// Bucketizes a residual row dimension by dimension, then packs it bit by bit.
///
/// Returns `None` when `residual.len()` is not the quantizer's dimension.
pub fn encode_row(q: &ResidualQuantizer, residual: &[f32]) -> Option<Vec<u8>> {
    if residual.len() != q.dim() {
        return None;
    }
    let mut buckets = Vec::with_capacity(residual.len());
    for (d, &v) in residual.iter().enumerate() {
        buckets.push(bucket(cutoffs(q, d)?, v));
    }
    Some(pack_row(&buckets, q.nbits()))
}

/// Decodes a packed row into residual values: unpack bit by bit, then look up each
/// dimension's weight for its bucket.
///
/// Returns `None` when `packed` is not one packed row of the quantizer's dimension.
pub fn decode_row(q: &ResidualQuantizer, packed: &[u8]) -> Option<Vec<f32>> {
    if packed.len() != q.nbits().packed_len(q.dim()) {
        return None;
    }
    unpack_row(packed, q.nbits())
        .into_iter()
        .enumerate()
        .map(|(d, b)| weight(q, d, b))
        .collect()
}

/// Decompresses one token (spec §1.4): `y = C[code] + decoded residual` (added in
/// `f32`), then `y / max(‖y‖, 1e-12)` with the norm accumulated in `f64`.
///
/// Returns `None` when `code` is out of range or `packed` has the wrong length.
pub fn decompress(codebook: &Codebook, code: u32, packed: &[u8]) -> Option<Vec<f32>> {
    let centroid = codebook.centroid(crate::types::CentroidId::new(code))?;
    let residual = decode_row(codebook.quantizer(), packed)?;
    let y: Vec<f32> = centroid.iter().zip(&residual).map(|(c, r)| c + r).collect();
    let norm = y
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    Some(y.iter().map(|&v| (f64::from(v) / norm) as f32).collect())
}

/// The `q`-quantile of `values` (numpy "linear"): sort a copy (by `f32::total_cmp`), then
/// interpolate linearly at position `q × (n − 1)`, in `f64`.
///
/// Returns `None` when `values` is empty or `q` is outside `[0, 1]`.
pub fn quantile(values: &[f32], q: f64) -> Option<f32> {
    if values.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    if frac == 0.0 || a == b {
        return Some(a);
    }
    Some((f64::from(a) + (f64::from(b) - f64::from(a)) * frac) as f32)
}
