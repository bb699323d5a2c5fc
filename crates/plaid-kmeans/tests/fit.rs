//! `fit` against `reference::fit`, determinism across thread counts, and errors.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

use plaid_kmeans::{Error, KMeans, KMeansConfig, fit, reference};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` points in `blobs` blobs: centres uniform in [-1, 1)^dim, points within
/// ±0.25 of their centre in each dimension.
///
/// Why this shape: the fast kernel ranks `‖c‖² − 2x·c`, whose rounding error
/// scales with `‖c‖²`, while the oracle sums `(x − c)²` directly. Data near
/// the origin keeps that error around 1e-6, far below typical distance gaps,
/// so the two assignments agree on every point (the seeds below are fixed, so
/// this is checked, not hoped for). Tight blobs far from the origin would
/// not do: two initial centroids in one blob make its points near-ties.
fn blobs(seed: u64, n: usize, blobs: usize, dim: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centers: Vec<f32> = (0..blobs * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    for i in 0..n {
        let b = i % blobs;
        for d in 0..dim {
            data.push(centers[b * dim + d] + rng.random_range(-0.25f32..0.25));
        }
    }
    data
}

fn uniform(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn bits(model: &KMeans) -> Vec<u32> {
    model.centroids().iter().map(|v| v.to_bits()).collect()
}

/// Fast and reference agree: same iterations and reseeds, centroids within
/// f32 rounding of f64 means: a few ulps of the data's magnitude (at most 1.25),
/// plus one rounding in normalisation.
fn check_matches_reference(data: &[f32], dim: usize, config: &KMeansConfig) {
    let fast = fit(data, dim, config).unwrap();
    let slow = reference::fit(data, dim, config).unwrap();
    assert_eq!((fast.k(), fast.dim()), (config.k, dim));
    assert_eq!(fast.iterations(), slow.iterations(), "{config:?}");
    assert_eq!(
        fast.reseeded_clusters(),
        slow.reseeded_clusters(),
        "{config:?}"
    );
    let tol = 4.0 * f32::EPSILON;
    for (i, (a, b)) in fast.centroids().iter().zip(slow.centroids()).enumerate() {
        assert!((a - b).abs() <= tol, "entry {i}: {a} vs {b} ({config:?})");
    }
}

#[test]
fn matches_reference_on_blobs() {
    let dim = 12;
    let data = blobs(1, 600, 8, dim);
    for (k, seed, normalize) in [
        (8, 42, true),
        (8, 7, false),
        (5, 3, true),
        (20, 42, false),
        (1, 1, true),
    ] {
        let config = KMeansConfig {
            seed,
            normalize,
            ..KMeansConfig::new(k)
        };
        check_matches_reference(&data, dim, &config);
    }
}

#[test]
fn matches_reference_with_subsampling() {
    let dim = 7;
    let data = blobs(2, 2000, 6, dim);
    // 6 · 50 = 300 of 2000 points are kept.
    let config = KMeansConfig {
        max_points_per_centroid: 50,
        max_iters: 10,
        ..KMeansConfig::new(6)
    };
    check_matches_reference(&data, dim, &config);
}

/// Sum of squared distances from each point to its nearest centroid, in f64.
fn inertia(data: &[f32], dim: usize, centroids: &[f32]) -> f64 {
    data.chunks(dim)
        .map(|x| {
            centroids
                .chunks(dim)
                .map(|c| {
                    x.iter()
                        .zip(c)
                        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .sum()
}

#[test]
fn lloyd_iterations_reduce_inertia() {
    // Lloyd's steps never increase the inertia (no cluster goes empty here).
    let (dim, k) = (16, 6);
    let data = blobs(3, 400, k, dim);
    let mut last = f64::INFINITY;
    for max_iters in 0..6 {
        let config = KMeansConfig {
            max_iters,
            normalize: false,
            tol: 0.0,
            ..KMeansConfig::new(k)
        };
        let model = fit(&data, dim, &config).unwrap();
        assert_eq!(model.reseeded_clusters(), 0);
        let now = inertia(&data, dim, model.centroids());
        assert!(
            now <= last * (1.0 + 1e-6),
            "iters {max_iters}: {now} > {last}"
        );
        last = now;
    }
    // Within-blob spread bounds the optimum: 400 points · 16 dims · E[u²] for u ~ U(−¼, ¼).
    assert!(
        last < 400.0 * 16.0 * (0.25f64 * 0.25 / 3.0) * 4.0,
        "inertia {last}"
    );
}

#[test]
fn deterministic_across_thread_counts() {
    // Several row blocks, subsampling and reseeding (k close to the number of
    // distinct points makes empty clusters likely).
    let dim = 24;
    let mut data = uniform(9, 1500 * dim);
    data.extend_from_within(..200 * dim);
    let configs = [
        KMeansConfig {
            max_iters: 6,
            ..KMeansConfig::new(37)
        },
        KMeansConfig {
            max_points_per_centroid: 30,
            ..KMeansConfig::new(40)
        },
        KMeansConfig {
            seed: 11,
            ..KMeansConfig::new(1690)
        },
    ];
    for config in configs {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| fit(&data, dim, &config).unwrap())
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(bits(&one), bits(&two), "{config:?}");
        assert_eq!(one.iterations(), two.iterations());
        assert_eq!(bits(&one), bits(&run(3)), "{config:?}");
    }
}

#[test]
fn reseeds_empty_clusters_with_duplicated_points() {
    // 30 copies of `a` and one `b`: at least two of the three initial
    // centroids are copies of `a`, so all `a` points go to the lowest such
    // index and the other cluster is empty and must be reseeded.
    let (a, b) = ([1.0f32, 2.0, 3.0], [-4.0f32, 0.5, 1.0]);
    let mut data: Vec<f32> = a.repeat(30);
    data.extend_from_slice(&b);
    let config = KMeansConfig {
        k: 3,
        normalize: false,
        ..KMeansConfig::new(3)
    };
    let model = fit(&data, 3, &config).unwrap();
    assert!(model.reseeded_clusters() > 0);
    for c in model.centroids().chunks(3) {
        assert!(c == a || c == b, "centroid {c:?} is neither point");
    }
    assert_eq!(model, fit(&data, 3, &config).unwrap());
    assert_eq!(model, reference::fit(&data, 3, &config).unwrap());

    // All points equal: every cluster but one is empty in every iteration.
    let same = [0.5f32, -0.5].repeat(10);
    let model = fit(&same, 2, &KMeansConfig::new(4)).unwrap();
    assert!(model.centroids().iter().all(|v| v.is_finite()));
    assert_eq!(model.reseeded_clusters(), 3);
    // The shift after the first iteration is 0, below `tol`.
    assert_eq!(model.iterations(), 1);
}

#[test]
fn normalizes_centroids() {
    let dim = 5;
    let mut data = uniform(4, 300 * dim);
    data[..dim].fill(0.0);
    let model = fit(&data, dim, &KMeansConfig::new(9)).unwrap();
    for c in model.centroids().chunks(dim) {
        let norm: f32 = c.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() <= 4.0 * f32::EPSILON, "norm {norm}");
    }
    // A zero centroid stays zero (the norm is floored, not divided by 0).
    let zeros = [0.0f32; 8];
    let model = fit(&zeros, 2, &KMeansConfig::new(2)).unwrap();
    assert_eq!(model.into_centroids(), vec![0.0; 4]);
}

#[test]
fn zero_iterations_returns_initial_points() {
    let dim = 3;
    let data = uniform(5, 20 * dim);
    let config = KMeansConfig {
        max_iters: 0,
        normalize: false,
        ..KMeansConfig::new(4)
    };
    let model = fit(&data, dim, &config).unwrap();
    assert_eq!(model.iterations(), 0);
    for c in model.centroids().chunks(dim) {
        assert!(data.chunks(dim).any(|row| row == c));
    }
    assert_eq!(model, reference::fit(&data, dim, &config).unwrap());
}

#[test]
fn rejects_invalid_inputs() {
    let ok = uniform(6, 12);
    let mut nan = ok.clone();
    nan[7] = f32::NAN;
    let mut inf = ok.clone();
    inf[11] = f32::NEG_INFINITY;
    let cfg = KMeansConfig::new;
    let cases: Vec<(&[f32], usize, KMeansConfig, Error)> = vec![
        (
            &ok,
            0,
            cfg(2),
            Error::Shape {
                what: "data",
                len: 12,
                dim: 0,
            },
        ),
        (
            &ok,
            5,
            cfg(2),
            Error::Shape {
                what: "data",
                len: 12,
                dim: 5,
            },
        ),
        (&[], 3, cfg(2), Error::EmptyInput { what: "data" }),
        (&ok, 3, cfg(0), Error::ZeroClusters),
        (
            &ok,
            3,
            cfg(5),
            Error::TooFewPoints {
                k: 5,
                num_points: 4,
            },
        ),
        (
            &ok,
            3,
            KMeansConfig {
                max_points_per_centroid: 0,
                ..cfg(2)
            },
            Error::ZeroMaxPointsPerCentroid,
        ),
        (
            &nan,
            3,
            cfg(2),
            Error::NonFinite {
                what: "data",
                row: 2,
            },
        ),
        (
            &inf,
            3,
            cfg(2),
            Error::NonFinite {
                what: "data",
                row: 3,
            },
        ),
    ];
    for (data, dim, config, expected) in cases {
        assert_eq!(fit(data, dim, &config), Err(expected.clone()), "{config:?}");
        assert_eq!(
            reference::fit(data, dim, &config),
            Err(expected),
            "{config:?}"
        );
    }
    let huge = KMeansConfig::new(u32::MAX as usize + 1);
    assert_eq!(
        fit(&ok, 3, &huge),
        Err(Error::TooManyCentroids {
            k: u32::MAX as usize + 1
        })
    );
}
