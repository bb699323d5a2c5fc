//! Property tests: every fast path against `plaid_codec::reference`.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

mod common;

use common::{nbits_and_dim, unit_rows};
use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Codebook, Nbits, QuantizerKind, ResidualQuantizer, pack, reference};
use proptest::collection::vec;
use proptest::prelude::*;

fn any_kind() -> impl Strategy<Value = QuantizerKind> {
    prop_oneof![Just(QuantizerKind::Global), Just(QuantizerKind::PerDim)]
}

/// A quantizer with random sorted cutoffs and random weights in `[-1, 1)`.
fn any_quantizer(max_bytes: usize) -> impl Strategy<Value = ResidualQuantizer> {
    (any_kind(), nbits_and_dim(max_bytes)).prop_flat_map(|(kind, (nbits, dim))| {
        let b = nbits.num_buckets();
        let sets = if kind == QuantizerKind::Global {
            1
        } else {
            dim
        };
        (
            vec(-1.0f32..1.0, sets * (b - 1)),
            vec(-1.0f32..1.0, sets * b),
        )
            .prop_map(move |(mut cutoffs, weights)| {
                for set in cutoffs.chunks_mut((b - 1).max(1)) {
                    set.sort_by(f32::total_cmp);
                }
                ResidualQuantizer::from_parts(kind, nbits, dim, cutoffs, weights).unwrap()
            })
    })
}

/// A quantizer and one random packed row for it.
fn quantizer_and_row(max_bytes: usize) -> impl Strategy<Value = (ResidualQuantizer, Vec<u8>)> {
    any_quantizer(max_bytes).prop_flat_map(|q| {
        let len = q.packed_len();
        (Just(q), vec(any::<u8>(), len))
    })
}

proptest! {
    #[test]
    fn roundtrip_pack_unpack(
        (nbits, dim, buckets) in nbits_and_dim(40)
            .prop_flat_map(|(n, d)| (Just(n), Just(d), vec(any::<u8>(), d)))
    ) {
        let mut packed = vec![0u8; nbits.packed_len(dim)];
        pack::pack_row(&buckets, nbits, &mut packed);
        // Exact length: dim × nbits / 8, with dim × nbits a multiple of 8.
        prop_assert_eq!(packed.len() * 8, dim * usize::from(nbits.bits()));
        prop_assert_eq!(&packed, &reference::pack_row(&buckets, nbits));
        let mut back = vec![0u8; dim];
        pack::unpack_row(&packed, nbits, &mut back);
        let masked: Vec<u8> = buckets.iter().map(|b| b & nbits.mask()).collect();
        prop_assert_eq!(&back, &masked);
        prop_assert_eq!(reference::unpack_row(&packed, nbits), masked);
    }

    #[test]
    fn matches_reference_unpack_any_bytes(nbits in common::any_nbits(), packed in vec(any::<u8>(), 0..64)) {
        let mut out = vec![0u8; packed.len() * nbits.dims_per_byte()];
        pack::unpack_row(&packed, nbits, &mut out);
        prop_assert_eq!(&out, &reference::unpack_row(&packed, nbits));
        let mut again = vec![0u8; packed.len()];
        pack::pack_row(&out, nbits, &mut again);
        prop_assert_eq!(again, packed);
    }

    #[test]
    fn matches_reference_decode_row((q, packed) in quantizer_and_row(24)) {
        // A table lookup: the fast path must equal the reference bit for bit.
        let mut fast = vec![f32::NAN; q.dim()];
        q.decode_row(&packed, &mut fast);
        let slow = reference::decode_row(&q, &packed).unwrap();
        prop_assert_eq!(
            fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        for (p, &byte) in packed.iter().enumerate() {
            let per = q.nbits().dims_per_byte();
            prop_assert_eq!(q.decode_table().lookup(p, byte).unwrap(), &fast[p * per..(p + 1) * per]);
        }
        prop_assert!(q.decode_table().lookup(packed.len(), 0).is_none());
    }

    #[test]
    fn matches_reference_encode_row(
        (q, row) in any_quantizer(24).prop_flat_map(|q| {
            let dim = q.dim();
            (Just(q), vec(-1.5f32..1.5, dim))
        })
    ) {
        let mut fast = vec![0u8; q.packed_len()];
        q.encode_row(&row, &mut fast);
        prop_assert_eq!(&fast, &reference::encode_row(&q, &row).unwrap());
        for (d, &v) in row.iter().enumerate() {
            prop_assert_eq!(q.bucket(d, v), reference::bucket(reference::cutoffs(&q, d).unwrap(), v));
        }
    }

    /// Encode → decode error bound on the training values.
    ///
    /// A trained quantizer puts weight `b` inside bucket `b`'s interval
    /// `[c_{b−1}, c_b]`, where the edge buckets are closed by the minimum and maximum of
    /// all training values. A training value `v` in bucket `b` lies in the same
    /// interval, so `|v − w_b| ≤ c_b − c_{b−1}` (the cutoff spacing for interior buckets,
    /// the distance to the data's extreme for edge ones). Both sides are differences of
    /// `f32` values in that interval and rounding is monotone, so the bound holds exactly.
    #[test]
    fn roundtrip_encode_decode_error_bound(
        kind in any_kind(),
        (nbits, dim) in nbits_and_dim(3),
        rows in 1usize..60,
        seed in any::<u64>(),
    ) {
        let mut rng = common::rng(seed);
        let sigma: Vec<f32> = (0..dim).map(|d| 0.01 + 0.2 * d as f32).collect();
        let data = common::gaussian(&mut rng, rows, &sigma);
        let view = EmbeddingsView::try_new(&data, dim).unwrap();
        let q = ResidualQuantizer::train(view, nbits, kind).unwrap();
        let (min, max) = data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let b = nbits.num_buckets();
        let mut packed = vec![0u8; q.packed_len()];
        let mut decoded = vec![0.0f32; dim];
        for row in view.rows() {
            q.encode_row(row, &mut packed);
            q.decode_row(&packed, &mut decoded);
            for (d, (&v, &w)) in row.iter().zip(&decoded).enumerate() {
                let cut = reference::cutoffs(&q, d).unwrap();
                let bucket = usize::from(q.bucket(d, v));
                let lo = if bucket == 0 { min } else { cut[bucket - 1] };
                let hi = if bucket == b - 1 { max } else { cut[bucket] };
                prop_assert!(lo <= w && w <= hi, "weight {w} outside [{lo}, {hi}]");
                prop_assert!((v - w).abs() <= hi - lo, "value {v} weight {w} region [{lo}, {hi}]");
            }
        }
    }

    /// Fast decompression against the f64 reference.
    ///
    /// Both compute `y = c + w` identically in `f32`. The fast path then sums `y_i²` in
    /// `f32` (`n` roundings on non-negative terms: relative error ≤ γ_n =
    /// n·u/(1 − n·u), u = 2⁻²⁴; Higham, Accuracy and Stability, §3.1), takes the square
    /// root (halves it, +u), the reciprocal (+u) and the product (+u); the reference
    /// rounds its f64 quotient once (+u). So
    /// `|fast_i − ref_i| ≤ (γ_n / 2 + 4u + O(u²)) · |y_i| / ‖y‖`; we allow `5u` to cover
    /// the `O(u²)` and f64 terms. (No underflow: `|y_i|` here is 0 or ≫ 1e-19.)
    #[test]
    fn matches_reference_decompress(
        (q, codes, packed) in any_quantizer(16).prop_flat_map(|q| {
            let len = q.packed_len();
            (Just(q), vec(0u32..6, 1..5), vec(any::<u8>(), len * 4))
        }),
        seed in any::<u64>(),
    ) {
        let dim = q.dim();
        let centroids = unit_rows(&mut common::rng(seed), 5, dim);
        let codebook = Codebook::new(centroids, dim, q, 0.1, vec![0.0; dim]).unwrap();
        let plen = codebook.packed_len();
        let u = f64::from(f32::EPSILON) / 2.0;
        let n = dim as f64;
        let coeff = (n * u / (1.0 - n * u)) / 2.0 + 5.0 * u;
        for (i, &code) in codes.iter().enumerate() {
            let row = &packed[(i % 4) * plen..(i % 4 + 1) * plen];
            let mut fast = vec![0.0f32; dim];
            let got = codebook.decompress_into(code, row, &mut fast);
            let Some(slow) = reference::decompress(&codebook, code, row) else {
                let rejected = matches!(
                    got,
                    Err(plaid_codec::Error::CodeOutOfRange { code: c, num_centroids: 5, .. }) if c == code
                );
                prop_assert!(rejected);
                continue;
            };
            prop_assert!(got.is_ok());
            let c = codebook.centroid(plaid_codec::types::CentroidId::new(code)).unwrap();
            let w = reference::decode_row(codebook.quantizer(), row).unwrap();
            let y: Vec<f32> = c.iter().zip(&w).map(|(c, w)| c + w).collect();
            let norm = y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            for ((&f, &s), &yi) in fast.iter().zip(&slow).zip(&y) {
                let tol = coeff * f64::from(yi).abs() / norm.max(1e-12);
                prop_assert!((f64::from(f) - f64::from(s)).abs() <= tol, "fast {f} ref {s} tol {tol}");
            }
        }
    }
}

#[test]
fn decompress_batch_matches_single_rows() {
    let mut rng = common::rng(3);
    let dim = 16;
    let centroids = unit_rows(&mut rng, 8, dim);
    let data = common::gaussian(&mut rng, 300, &[0.3; 16]);
    let view = EmbeddingsView::try_new(&data, dim).unwrap();
    for kind in [QuantizerKind::Global, QuantizerKind::PerDim] {
        let cb = Codebook::train(centroids.clone(), dim, view, Nbits::Two, kind).unwrap();
        let c = cb.compress(view).unwrap();
        let all = cb.decompress(&c.codes, &c.residuals).unwrap();
        let plen = cb.packed_len();
        for (i, &code) in c.codes.iter().enumerate() {
            let mut one = vec![0.0; dim];
            cb.decompress_into(code, &c.residuals[i * plen..(i + 1) * plen], &mut one)
                .unwrap();
            assert_eq!(&all[i * dim..(i + 1) * dim], &one[..]);
        }
    }
}
