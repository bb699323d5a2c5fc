//! Every rejected input returns the structured error that names it.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

mod common;

use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Codebook, Error, Nbits, QuantizerKind, ResidualQuantizer, pack};

const G: QuantizerKind = QuantizerKind::Global;
const P: QuantizerKind = QuantizerKind::PerDim;

fn view(data: &[f32], dim: usize) -> EmbeddingsView<'_> {
    EmbeddingsView::try_new(data, dim).unwrap()
}

fn quantizer(dim: usize) -> ResidualQuantizer {
    ResidualQuantizer::from_parts(
        G,
        Nbits::Two,
        dim,
        vec![-0.1, 0.0, 0.1],
        vec![-0.2, -0.05, 0.05, 0.2],
    )
    .unwrap()
}

/// A 2-centroid codebook of dim 8.
fn codebook() -> Codebook {
    let centroids = common::unit_rows(&mut common::rng(1), 2, 8);
    Codebook::new(centroids, 8, quantizer(8), 0.3, vec![0.1; 8]).unwrap()
}

#[test]
fn rejects_nbits_3() {
    assert!(matches!(
        Nbits::new(3),
        Err(Error::UnsupportedNbits { nbits: 3 })
    ));
    assert!(matches!(
        Nbits::try_from(8),
        Err(Error::UnsupportedNbits { nbits: 8 })
    ));
}

#[test]
fn rejects_dim_not_multiple() {
    let data = [0.5f32; 12];
    let e = ResidualQuantizer::train(view(&data, 6), Nbits::Two, G);
    assert!(matches!(e, Err(Error::DimNotMultiple { dim: 6, nbits: 2 })));
    let e = ResidualQuantizer::from_parts(G, Nbits::One, 4, vec![0.0], vec![-1.0, 1.0]);
    assert!(matches!(e, Err(Error::DimNotMultiple { dim: 4, nbits: 1 })));
    let e = Codebook::train(vec![1.0, 0.0, 0.0], 3, view(&data, 3), Nbits::Four, P);
    assert!(matches!(e, Err(Error::DimNotMultiple { dim: 3, nbits: 4 })));
    let mut out = [0u8; 1];
    assert!(matches!(
        pack::try_pack_row(&[1, 2, 3], Nbits::Two, &mut out),
        Err(Error::DimNotMultiple { dim: 3, nbits: 2 })
    ));
}

#[test]
fn rejects_code_out_of_range() {
    let cb = codebook();
    let mut out = [0.0f32; 8];
    assert!(matches!(
        cb.decompress_into(2, &[0, 0], &mut out),
        Err(Error::CodeOutOfRange {
            index: 0,
            code: 2,
            num_centroids: 2
        })
    ));
    assert!(matches!(
        cb.decompress_into(u32::MAX, &[0, 0], &mut out),
        Err(Error::CodeOutOfRange { code: u32::MAX, .. })
    ));
    assert!(matches!(
        cb.decompress(&[0, 1, 7], &[0; 6]),
        Err(Error::CodeOutOfRange {
            index: 2,
            code: 7,
            num_centroids: 2
        })
    ));
}

#[test]
fn rejects_shape_mismatch() {
    let cb = codebook();
    let mut out = [0.0f32; 8];
    let cases: Vec<(Result<(), Error>, &str, usize, usize)> = vec![
        (cb.decompress_into(0, &[0; 3], &mut out), "packed row", 2, 3),
        (
            cb.decompress_into(0, &[0; 2], &mut out[..7]),
            "decoded row",
            8,
            7,
        ),
        (cb.decompress(&[0, 1], &[0; 3]).map(drop), "residuals", 4, 3),
        (
            cb.compress(view(&[0.0; 16], 4)).map(drop),
            "embeddings",
            8,
            4,
        ),
        (
            Codebook::train(vec![1.0; 8], 8, view(&[0.0; 8], 4), Nbits::Two, G).map(drop),
            "heldout",
            8,
            4,
        ),
        (
            ResidualQuantizer::from_parts(G, Nbits::Two, 8, vec![0.0; 2], vec![0.0; 4]).map(drop),
            "cutoffs",
            3,
            2,
        ),
        (
            ResidualQuantizer::from_parts(P, Nbits::Two, 4, vec![0.0; 12], vec![0.0; 4]).map(drop),
            "weights",
            16,
            4,
        ),
        (
            Codebook::new(vec![1.0; 8], 8, quantizer(4), 0.1, vec![0.0; 8]).map(drop),
            "quantizer dim",
            8,
            4,
        ),
        (
            Codebook::new(vec![1.0; 8], 8, quantizer(8), 0.1, vec![0.0; 7]).map(drop),
            "avg_residual",
            8,
            7,
        ),
        (
            Codebook::new(vec![1.0; 12], 8, quantizer(8), 0.1, vec![0.0; 8]).map(drop),
            "centroids (whole rows of dim)",
            16,
            12,
        ),
        (
            quantizer(8).try_encode_row(&[0.0; 9], &mut [0; 2]),
            "residual row",
            8,
            9,
        ),
        (
            quantizer(8).try_decode_row(&[0; 2], &mut [0.0; 4]),
            "decoded row",
            8,
            4,
        ),
        (
            pack::try_unpack_row(&[0; 2], Nbits::Four, &mut [0; 3]),
            "bucket row",
            4,
            3,
        ),
    ];
    for (i, (result, what, expected, found)) in cases.into_iter().enumerate() {
        match result {
            Err(Error::Shape {
                what: w,
                expected: e,
                found: f,
            }) => {
                assert_eq!((w, e, f), (what, expected, found), "case {i}");
            }
            other => panic!("case {i}: expected a Shape error for {what}, got {other:?}"),
        }
    }
}

#[test]
fn rejects_nan() {
    let mut data = vec![0.1f32; 8 * 5];
    data[3 * 8 + 2] = f32::NAN;
    let e = ResidualQuantizer::train(view(&data, 8), Nbits::Two, P);
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "residuals",
            row: 3
        })
    ));
    let e = codebook().compress(view(&data, 8));
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "embeddings",
            row: 3
        })
    ));
    let centroids = vec![1.0; 16];
    let e = Codebook::train(centroids, 8, view(&data, 8), Nbits::Two, G);
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "heldout",
            row: 3
        })
    ));
    let mut centroids = vec![1.0; 16];
    centroids[9] = f32::INFINITY;
    let e = Codebook::new(centroids, 8, quantizer(8), 0.1, vec![0.0; 8]);
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "centroids",
            row: 1
        })
    ));
    let e = ResidualQuantizer::from_parts(G, Nbits::Two, 8, vec![0.0, f32::NAN, 1.0], vec![0.0; 4]);
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "cutoffs",
            row: 1
        })
    ));
    let e = ResidualQuantizer::from_parts(
        G,
        Nbits::Two,
        8,
        vec![0.0; 3],
        vec![0.0, 0.0, 0.0, f32::NAN],
    );
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "weights",
            row: 3
        })
    ));
    let e = Codebook::new(vec![1.0; 8], 8, quantizer(8), f32::NAN, vec![0.0; 8]);
    assert!(matches!(e, Err(Error::InvalidRadius { .. })));
    let e = Codebook::new(vec![1.0; 8], 8, quantizer(8), 0.1, vec![f32::NAN; 8]);
    assert!(matches!(
        e,
        Err(Error::NonFinite {
            what: "avg_residual",
            row: 0
        })
    ));
}

#[test]
fn rejects_unsorted_cutoffs() {
    let e = ResidualQuantizer::from_parts(G, Nbits::Two, 8, vec![0.0, 0.2, 0.1], vec![0.0; 4]);
    assert!(matches!(e, Err(Error::UnsortedCutoffs { index: 2 })));
    // PerDim: each dimension is sorted on its own; dimension 1 starts lower than dim 0 ends.
    let mut cutoffs = vec![0.0f32; 8];
    cutoffs[0] = 5.0;
    assert!(ResidualQuantizer::from_parts(P, Nbits::One, 8, cutoffs, vec![0.0; 16]).is_ok());
    let mut cutoffs: Vec<f32> = (0..12).map(|i| (i % 3) as f32).collect();
    cutoffs[7] = -1.0;
    let e = ResidualQuantizer::from_parts(P, Nbits::Two, 4, cutoffs, vec![0.0; 16]);
    assert!(matches!(e, Err(Error::UnsortedCutoffs { index: 7 })));
}

#[test]
fn rejects_empty_inputs() {
    let e = ResidualQuantizer::train(view(&[], 8), Nbits::Two, G);
    assert!(matches!(e, Err(Error::EmptyTrainingSet)));
    let e = Codebook::train(vec![1.0; 8], 8, view(&[], 8), Nbits::Two, G);
    assert!(matches!(e, Err(Error::EmptyTrainingSet)));
    let e = Codebook::new(vec![], 8, quantizer(8), 0.1, vec![0.0; 8]);
    assert!(matches!(e, Err(Error::EmptyCodebook)));
    let e = Codebook::new(vec![1.0; 8], 0, quantizer(8), 0.1, vec![]);
    assert!(matches!(e, Err(Error::ZeroDim)));
    assert!(matches!(Nbits::Two.check_dim(0), Err(Error::ZeroDim)));
    let e = Codebook::new(vec![1.0; 8], 8, quantizer(8), -1.0, vec![0.0; 8]);
    assert!(matches!(e, Err(Error::InvalidRadius { radius }) if radius == -1.0));
    // Compressing nothing is fine.
    assert!(codebook().compress(view(&[], 8)).unwrap().is_empty());
}
