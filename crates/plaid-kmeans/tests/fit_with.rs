//! `fit_with` with an outside assigner reproduces `fit`, and its errors are typed.
#![allow(clippy::unwrap_used)]

use plaid_kmeans::{Assigner, Error, FitWithError, KMeansConfig, fit, fit_with, nearest_by_l2};

/// The CPU assignment behind `fit`, wrapped as an outside assigner.
struct CpuAssigner {
    points: Vec<f32>,
    dim: usize,
    calls: usize,
}

impl Assigner for CpuAssigner {
    type Error = Error;
    fn load_points(&mut self, points: &[f32], dim: usize) -> Result<(), Error> {
        self.points = points.to_vec();
        self.dim = dim;
        Ok(())
    }
    fn assign_l2(&mut self, centroids: &[f32], _: &[f32], labels: &mut [u32]) -> Result<(), Error> {
        self.calls += 1;
        nearest_by_l2(&self.points, centroids, self.dim, labels)
    }
}

fn data(n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim)
        .map(|i| ((i as f32) * 0.618).sin() + (i / dim % 7) as f32)
        .collect()
}

#[test]
fn fit_with_a_cpu_assigner_equals_fit() {
    let dim = 8;
    let x = data(3000, dim);
    // Subsampled (3000 > 8 * 64) and not subsampled.
    for cap in [64, 1000] {
        let mut cfg = KMeansConfig::new(8);
        cfg.max_points_per_centroid = cap;
        let want = fit(&x, dim, &cfg).unwrap();
        let mut a = CpuAssigner {
            points: Vec::new(),
            dim: 0,
            calls: 0,
        };
        let got = fit_with(&x, dim, &cfg, &mut a).unwrap();
        assert_eq!(got, want);
        assert_eq!(a.calls, want.iterations());
        assert_eq!(a.points.len(), (8 * cap).min(3000) * dim);
    }
}

struct Broken(u32);

impl Assigner for Broken {
    type Error = std::io::Error;
    fn load_points(&mut self, _: &[f32], _: usize) -> Result<(), Self::Error> {
        Ok(())
    }
    fn assign_l2(&mut self, _: &[f32], _: &[f32], labels: &mut [u32]) -> Result<(), Self::Error> {
        if self.0 == u32::MAX {
            return Err(std::io::Error::other("device lost"));
        }
        labels.fill(self.0);
        Ok(())
    }
}

#[test]
fn fit_with_reports_bad_labels_and_assigner_errors() {
    let dim = 4;
    let x = data(100, dim);
    let cfg = KMeansConfig::new(5);
    match fit_with(&x, dim, &cfg, &mut Broken(5)) {
        Err(FitWithError::KMeans(Error::LabelOutOfRange { label: 5, k: 5 })) => {}
        other => panic!("expected LabelOutOfRange, got {other:?}"),
    }
    match fit_with(&x, dim, &cfg, &mut Broken(u32::MAX)) {
        Err(FitWithError::Assigner(e)) => assert_eq!(e.to_string(), "device lost"),
        other => panic!("expected an assigner error, got {other:?}"),
    }
    match fit_with(&x, 3, &cfg, &mut Broken(0)) {
        Err(FitWithError::KMeans(Error::Shape { .. })) => {}
        other => panic!("expected a shape error, got {other:?}"),
    }
}
