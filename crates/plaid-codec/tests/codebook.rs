//! Codebook training, compression and decompression end to end.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

mod common;

use plaid_codec::types::{CentroidId, EmbeddingsView};
use plaid_codec::{Codebook, Nbits, QuantizerKind, reference};

/// Tokens near a few unit centroids: `centroid + noise`, not normalised.
fn clustered(seed: u64, k: usize, n: usize, dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = common::rng(seed);
    let centroids = common::unit_rows(&mut rng, k, dim);
    let noise = common::gaussian(&mut rng, n, &vec![0.05; dim]);
    let tokens = noise
        .chunks_exact(dim)
        .enumerate()
        .flat_map(|(i, row)| {
            let c = &centroids[(i % k) * dim..(i % k + 1) * dim];
            row.iter().zip(c).map(|(a, b)| a + b).collect::<Vec<_>>()
        })
        .collect();
    (centroids, tokens)
}

#[test]
fn train_matches_definition() {
    let dim = 32;
    let (centroids, tokens) = clustered(7, 6, 2500, dim);
    let view = EmbeddingsView::try_new(&tokens, dim).unwrap();
    let cb = Codebook::train(
        centroids.clone(),
        dim,
        view,
        Nbits::Four,
        QuantizerKind::Global,
    )
    .unwrap();
    assert_eq!(
        (cb.num_centroids(), cb.dim(), cb.nbits(), cb.packed_len()),
        (6, 32, Nbits::Four, 16)
    );
    assert_eq!(
        cb.centroid(CentroidId::new(5)).unwrap(),
        &centroids[5 * dim..]
    );
    assert!(cb.centroid(CentroidId::new(6)).is_none());

    // Straightforward recomputation: codes, residuals, norms and |residual| means.
    let mut codes = vec![0u32; 2500];
    plaid_kmeans::nearest_by_dot(&tokens, &centroids, dim, &mut codes).unwrap();
    let mut residuals = Vec::new();
    let mut norms = Vec::new();
    let mut abs_sum = vec![0.0f64; dim];
    for (row, &code) in tokens.chunks_exact(dim).zip(&codes) {
        let c = &centroids[code as usize * dim..(code as usize + 1) * dim];
        let r: Vec<f32> = row.iter().zip(c).map(|(x, c)| x - c).collect();
        norms.push(r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt() as f32);
        abs_sum
            .iter_mut()
            .zip(&r)
            .for_each(|(s, v)| *s += f64::from(v.abs()));
        residuals.extend(r);
    }
    assert_eq!(
        cb.outlier_radius(),
        reference::quantile(&norms, 0.75).unwrap()
    );
    for (got, s) in cb.avg_residual().iter().zip(&abs_sum) {
        // Partial sums in chunks of 1024 rows vs one running sum, both f64 over ≤ 2500
        // terms of magnitude ≤ 1: they differ by far less than one f32 ulp of the mean.
        let want = (s / 2500.0) as f32;
        assert!((got - want).abs() <= want * f32::EPSILON, "{got} vs {want}");
    }
    let b = 16;
    let cut: Vec<f32> = (1..b)
        .map(|i| reference::quantile(&residuals, i as f64 / 16.0).unwrap())
        .collect();
    assert_eq!(cb.quantizer().cutoffs(), &cut[..]);
}

#[test]
fn compress_matches_reference_and_is_deterministic() {
    let dim = 16;
    let (centroids, tokens) = clustered(9, 5, 3000, dim);
    let view = EmbeddingsView::try_new(&tokens, dim).unwrap();
    for kind in [QuantizerKind::Global, QuantizerKind::PerDim] {
        for nbits in [Nbits::One, Nbits::Two, Nbits::Four] {
            let cb = Codebook::train(centroids.clone(), dim, view, nbits, kind).unwrap();
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| cb.compress(view).unwrap())
            };
            let one = run(1);
            assert_eq!(one, run(3), "{kind:?} nbits {nbits}");
            assert_eq!(one.len(), 3000);
            assert_eq!(one.residuals.len(), 3000 * cb.packed_len());
            let plen = cb.packed_len();
            for (i, (row, &code)) in tokens.chunks_exact(dim).zip(&one.codes).enumerate() {
                assert_eq!(code as usize, i % 5, "clustered data keeps its centroid");
                let c = cb.centroid(CentroidId::new(code)).unwrap();
                let r: Vec<f32> = row.iter().zip(c).map(|(x, c)| x - c).collect();
                let want = reference::encode_row(cb.quantizer(), &r).unwrap();
                assert_eq!(&one.residuals[i * plen..(i + 1) * plen], &want[..]);
            }
        }
    }
}

#[test]
fn roundtrip_compress_decompress_is_close() {
    // At nbits 4 with noise σ = 0.05 the reconstruction keeps cosine similarity high.
    let dim = 64;
    let (centroids, tokens) = clustered(13, 4, 1000, dim);
    let view = EmbeddingsView::try_new(&tokens, dim).unwrap();
    let cb = Codebook::train(centroids, dim, view, Nbits::Four, QuantizerKind::PerDim).unwrap();
    let c = cb.compress(view).unwrap();
    let out = cb.decompress(&c.codes, &c.residuals).unwrap();
    for (x, y) in tokens.chunks_exact(dim).zip(out.chunks_exact(dim)) {
        let nx = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let cos = x.iter().zip(y).map(|(a, b)| a * b).sum::<f32>() / nx;
        assert!(cos > 0.99, "cosine {cos}");
    }
}
