//! Format 3's bit-packed codes: packing round-trips, sizes are exact, and
//! damaged byte counts are refused.
#![allow(clippy::unwrap_used)]

use plaid_storage::layout::{code_bits_for, pack_codes, unpack_codes};

#[test]
fn packing_round_trips_at_every_width() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for bits in 1..=32u8 {
        for n in [0usize, 1, 7, 8, 9, 100, 1001] {
            let mask = if bits == 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            };
            let codes: Vec<u32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x as u32) & mask
                })
                .collect();
            let packed = pack_codes(&codes, bits);
            assert_eq!(packed.len(), (n * usize::from(bits)).div_ceil(8));
            assert_eq!(
                unpack_codes(&packed, bits, n).unwrap(),
                codes,
                "bits {bits} n {n}"
            );
        }
    }
}

#[test]
fn the_bit_order_is_little_endian() {
    // 3-bit codes 1, 2, 7: stream 100 010 111 (LSB first) -> bytes 0b1101_0001, 0b0000_0001.
    assert_eq!(pack_codes(&[1, 2, 7], 3), vec![0b1101_0001, 0b0000_0001]);
    assert_eq!(code_bits_for(0), 1);
    assert_eq!(code_bits_for(1), 1);
    assert_eq!(code_bits_for(8191), 13);
    assert_eq!(code_bits_for(8192), 14);
    assert_eq!(code_bits_for(u32::MAX), 32);
}

#[test]
fn wrong_lengths_and_widths_are_refused() {
    let packed = pack_codes(&[5, 6, 7, 8], 13);
    assert!(unpack_codes(&packed, 13, 5).is_none());
    assert!(unpack_codes(&packed[..packed.len() - 1], 13, 4).is_none());
    assert!(unpack_codes(&packed, 0, 4).is_none());
    assert!(unpack_codes(&packed, 33, 4).is_none());
    assert!(unpack_codes(&[], 13, usize::MAX).is_none());
}
