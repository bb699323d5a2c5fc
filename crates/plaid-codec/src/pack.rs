//! next-plaid-compatible residual bit packing (spec §1.3).
//!
//! Each dimension's bucket index is written as `nbits` bits, **least-significant bit
//! first**, into one bit stream; the stream is packed **MSB-first** into bytes (numpy
//! `packbits` order). Dimension 0 therefore lands in the high bits of byte 0, and inside
//! one dimension's group the bits appear reversed relative to ordinary binary:
//!
//! ```text
//! nbits 2, buckets [0, 1, 2, 3]:  stream 00 10 01 11  ->  0x27
//! nbits 4, buckets [1, 14]:       stream 1000 0111    ->  0x87
//! ```
//!
//! A packed row of `dim` dimensions is exactly `dim × nbits / 8` bytes. Bucket values are
//! masked to `nbits` bits, so packing never fails on values, and unpacking accepts any
//! bytes. [`crate::reference::pack_row`] is the bit-by-bit definition these functions are
//! tested against.

use crate::{Error, Nbits};

/// Reverses the low `bits` bits of `v`.
const fn reverse_low_bits(v: u8, bits: u32) -> u8 {
    let mut r = 0u8;
    let mut j = 0;
    while j < bits {
        r |= ((v >> j) & 1) << (bits - 1 - j);
        j += 1;
    }
    r
}

/// `REV[v]` = the low `bits` bits of `v` reversed, for `v < 16`.
const fn reverse_table(bits: u32) -> [u8; 16] {
    let mut t = [0u8; 16];
    let mut v = 0;
    while v < 16 {
        t[v] = reverse_low_bits(v as u8 & ((1 << bits) - 1), bits);
        v += 1;
    }
    t
}

const REV1: [u8; 16] = reverse_table(1);
const REV2: [u8; 16] = reverse_table(2);
const REV4: [u8; 16] = reverse_table(4);

/// `table[byte][k]` = the bucket of the `k`-th dimension stored in `byte`, `N = 8 / bits`.
const fn unpack_table<const N: usize>(bits: u32) -> [[u8; N]; 256] {
    let mut t = [[0u8; N]; 256];
    let mask = (1u32 << bits) - 1;
    let mut byte = 0;
    while byte < 256 {
        let mut k = 0;
        while k < N {
            let shift = 8 - bits * (k as u32 + 1);
            let group = ((byte as u32 >> shift) & mask) as u8;
            t[byte][k] = reverse_low_bits(group, bits);
            k += 1;
        }
        byte += 1;
    }
    t
}

pub(crate) const UNPACK1: [[u8; 8]; 256] = unpack_table::<8>(1);
pub(crate) const UNPACK2: [[u8; 4]; 256] = unpack_table::<4>(2);
pub(crate) const UNPACK4: [[u8; 2]; 256] = unpack_table::<2>(4);

/// Packs `out.len() × dims_per_byte` buckets, asking `bucket_of(d)` for dimension `d`.
///
/// This is the kernel behind [`pack_row`] and the quantizer's `encode_row`; callers
/// check lengths first.
#[inline]
pub(crate) fn pack_with(nbits: Nbits, out: &mut [u8], mut bucket_of: impl FnMut(usize) -> u8) {
    let bits = u32::from(nbits.bits());
    let per = nbits.dims_per_byte();
    let mask = nbits.mask();
    let rev = match nbits {
        Nbits::One => &REV1,
        Nbits::Two => &REV2,
        Nbits::Four => &REV4,
    };
    for (p, byte) in out.iter_mut().enumerate() {
        let mut acc = 0u8;
        for k in 0..per {
            // Masked to < 16, so the index is in range.
            let b = bucket_of(p * per + k) & mask;
            acc = (acc << bits) | rev[usize::from(b)];
        }
        *byte = acc;
    }
}

/// Checks that `num_buckets` dimensions pack into exactly `packed_len` bytes.
fn check_lengths(nbits: Nbits, num_buckets: usize, packed_len: usize) -> Result<(), Error> {
    if !num_buckets.is_multiple_of(nbits.dims_per_byte()) {
        return Err(Error::DimNotMultiple {
            dim: num_buckets,
            nbits: nbits.bits(),
        });
    }
    let expected = nbits.packed_len(num_buckets);
    if packed_len != expected {
        return Err(Error::Shape {
            what: "packed row",
            expected,
            found: packed_len,
        });
    }
    Ok(())
}

/// Packs one row of bucket indices (one per dimension) into `out`.
///
/// Each bucket is masked to `nbits` bits first.
///
/// # Panics
/// When `out.len()` is not `buckets.len() × nbits / 8`, or `buckets.len() × nbits` is not
/// a multiple of 8. [`try_pack_row`] returns an error instead.
pub fn pack_row(buckets: &[u8], nbits: Nbits, out: &mut [u8]) {
    if let Err(e) = try_pack_row(buckets, nbits, out) {
        panic!("pack_row: {e}");
    }
}

/// Packs one row of bucket indices into `out`, checking lengths.
///
/// # Errors
/// [`Error::DimNotMultiple`] when `buckets.len() × nbits` is not a multiple of 8, and
/// [`Error::Shape`] when `out.len()` is not `buckets.len() × nbits / 8`.
pub fn try_pack_row(buckets: &[u8], nbits: Nbits, out: &mut [u8]) -> Result<(), Error> {
    check_lengths(nbits, buckets.len(), out.len())?;
    pack_with(nbits, out, |d| buckets[d]);
    Ok(())
}

/// Unpacks one packed row into bucket indices (one per dimension). Any bytes are valid.
///
/// # Panics
/// When `out.len()` is not `packed.len() × 8 / nbits`. [`try_unpack_row`] returns an
/// error instead.
pub fn unpack_row(packed: &[u8], nbits: Nbits, out: &mut [u8]) {
    if let Err(e) = try_unpack_row(packed, nbits, out) {
        panic!("unpack_row: {e}");
    }
}

/// Unpacks one packed row into bucket indices, checking lengths. Any bytes are valid.
///
/// # Errors
/// [`Error::Shape`] when `out.len()` is not `packed.len() × 8 / nbits`.
pub fn try_unpack_row(packed: &[u8], nbits: Nbits, out: &mut [u8]) -> Result<(), Error> {
    let expected = packed.len() * nbits.dims_per_byte();
    if out.len() != expected {
        return Err(Error::Shape {
            what: "bucket row",
            expected,
            found: out.len(),
        });
    }
    fn go<const N: usize>(packed: &[u8], out: &mut [u8], table: &[[u8; N]; 256]) {
        for (&byte, chunk) in packed.iter().zip(out.chunks_exact_mut(N)) {
            chunk.copy_from_slice(&table[usize::from(byte)]);
        }
    }
    match nbits {
        Nbits::One => go(packed, out, &UNPACK1),
        Nbits::Two => go(packed, out, &UNPACK2),
        Nbits::Four => go(packed, out, &UNPACK4),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests unwrap freely.
mod tests {
    use super::*;
    use crate::reference;

    /// Packs `buckets` with both the fast and the reference packer, compares with
    /// `expected`, and checks that unpacking gives the buckets back.
    fn check(bits: u8, buckets: &[u8], expected: &[u8]) {
        let nbits = Nbits::new(bits).unwrap();
        let mut out = vec![0xAAu8; nbits.packed_len(buckets.len())];
        pack_row(buckets, nbits, &mut out);
        assert_eq!(
            out, expected,
            "fast pack, nbits {bits}, buckets {buckets:?}"
        );
        assert_eq!(
            reference::pack_row(buckets, nbits),
            expected,
            "reference pack"
        );
        let mut back = vec![0xFFu8; buckets.len()];
        unpack_row(&out, nbits, &mut back);
        assert_eq!(back, buckets, "fast unpack");
        assert_eq!(
            reference::unpack_row(&out, nbits),
            buckets,
            "reference unpack"
        );
    }

    #[test]
    fn matches_spec_examples() {
        // The worked examples of spec §1.3, verified against next-plaid.
        check(2, &[1, 2, 3, 0], &[0x9C]);
        check(2, &[0, 1, 2, 3], &[0x27]);
        check(4, &[1, 14], &[0x87]);
        check(4, &[1, 2], &[0x84]);
        check(
            1,
            &[1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1],
            &[0x81, 0x69],
        );
        check(1, &[1, 0, 1, 1, 0, 0, 0, 1], &[0xB1]);
        check(2, &[0, 1, 2, 3, 3, 2, 1, 0], &[0x27, 0xD8]);
        check(2, &[1, 0, 0, 0, 2, 0, 0, 0], &[0x80, 0x40]);
        check(4, &[1, 2, 0, 15, 8, 3, 12, 5], &[0x84, 0x0F, 0x1C, 0x3A]);
        check(4, &[], &[]);
    }

    #[test]
    fn masks_out_of_range_buckets() {
        let mut out = [0u8; 1];
        pack_row(&[0x11, 0xFE], Nbits::Four, &mut out);
        assert_eq!(out, [0x87]);
        pack_row(&[0xFF, 0, 2, 4], Nbits::Two, &mut out);
        assert_eq!(out, [0xC4]);
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut out = [0u8; 2];
        assert!(matches!(
            try_pack_row(&[0; 3], Nbits::Four, &mut out),
            Err(Error::DimNotMultiple { dim: 3, nbits: 4 })
        ));
        assert!(matches!(
            try_pack_row(&[0; 2], Nbits::Four, &mut out),
            Err(Error::Shape {
                expected: 1,
                found: 2,
                ..
            })
        ));
        let mut buckets = [0u8; 7];
        assert!(matches!(
            try_unpack_row(&[0], Nbits::One, &mut buckets),
            Err(Error::Shape {
                expected: 8,
                found: 7,
                ..
            })
        ));
    }
}
