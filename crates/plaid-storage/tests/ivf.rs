//! Inverted lists rebuilt at open (format 3) equal the ones formats 1–2 stored.
#![allow(clippy::unwrap_used)]

use plaid_storage::layout::{SegmentData, StoredCodes, inverted_lists};

/// A small deterministic generator (xorshift), values below `n`.
struct Gen(u64);
impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn offsets(lens: &[u32]) -> Vec<u64> {
    let mut o = vec![0u64];
    for &l in lens {
        o.push(o[o.len() - 1] + u64::from(l));
    }
    o
}

#[test]
fn rebuilt_lists_equal_the_stored_ones() {
    let mut rng = Gen(0x9E37_79B9_7F4A_7C15);
    for (docs, k) in [(0usize, 4usize), (1, 1), (50, 7), (400, 300), (3000, 64)] {
        // Some empty documents, repeated codes within a document.
        let lens: Vec<u32> = (0..docs).map(|_| rng.below(12) as u32).collect();
        let t: usize = lens.iter().map(|&l| l as usize).sum();
        let codes: Vec<u32> = (0..t).map(|_| rng.below(k as u64) as u32).collect();
        let (want_len, want) = SegmentData::build_ivf(&lens, &codes, k);
        let narrow: Vec<u16> = codes.iter().map(|&c| c as u16).collect();
        for stored in [StoredCodes::U32(&codes), StoredCodes::U16(&narrow)] {
            let (off, lists) = inverted_lists(&offsets(&lens), stored, k);
            assert_eq!(off.len(), k + 1);
            let lengths: Vec<u32> = off.windows(2).map(|w| (w[1] - w[0]) as u32).collect();
            assert_eq!(lengths, want_len, "{docs} docs, k {k}");
            assert_eq!(lists, want, "{docs} docs, k {k}");
        }
    }
}

#[test]
fn codes_out_of_range_are_left_out() {
    let lens = [2u32, 2];
    let codes = [0u32, 9, 1, 1];
    let (off, lists) = inverted_lists(&offsets(&lens), StoredCodes::U32(&codes), 2);
    assert_eq!(off, vec![0, 1, 2]);
    assert_eq!(lists, vec![0, 1]);
    // Offsets that run past the codes never panic.
    let (off, _) = inverted_lists(&[0, 5], StoredCodes::U32(&codes[..2]), 2);
    assert_eq!(off.len(), 3);
}
