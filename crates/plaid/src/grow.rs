//! Codebook growth: new centroids for tokens the codebook does not cover.
//!
//! An index's centroids are trained on the documents it was created with.
//! When added documents hold tokens farther from every centroid than the
//! trained outlier radius (the 0.75-quantile of the training residual
//! norms), and there are at least [`MIN_OUTLIERS`] of them,
//! [`Index::add`](crate::Index::add) clusters those tokens with k-means and
//! appends the new centroids to the codebook (next-plaid's expansion rule:
//! `k_new = 4·⌈outliers / 256⌉`). Smaller adds are encoded against the
//! existing codebook, as next-plaid's buffered appends are; otherwise many
//! one-document adds would each append centroids.
//! Existing codes keep their meaning, so no segment is rewritten; the
//! outlier tokens are then encoded against the grown codebook. The residual
//! quantiser and the outlier radius stay as trained.

use crate::Error;
use crate::docs::FlatDocs;
use plaid_codec::Codebook;
use plaid_codec::types::EmbeddingsView;
use plaid_kmeans::KMeansConfig;

/// Points per new centroid, as next-plaid's expansion uses.
const POINTS_PER_NEW_CENTROID: usize = 256;

/// Fewest outlier tokens in one add that grow the codebook.
pub(crate) const MIN_OUTLIERS: usize = 256;

/// Largest codebook growth keeps: the code width of existing segments is
/// fixed, so a codebook with 2-byte codes stays at or below 65,536 centroids.
const MAX_U16_CENTROIDS: usize = u16::MAX as usize + 1;

/// Tokens of `docs` whose squared distance to their centroid (`codes`, the
/// nearest one) exceeds the outlier radius squared.
pub(crate) fn outliers(cb: &Codebook, docs: &FlatDocs<'_>, codes: &[u32]) -> Vec<usize> {
    let dim = cb.dim();
    let r2 = cb.outlier_radius() * cb.outlier_radius();
    let cents = cb.centroids();
    let mut out = Vec::new();
    for (t, &c) in codes.iter().enumerate() {
        let (Some(x), Some(cc)) = (
            docs.data.get(t * dim..(t + 1) * dim),
            cents.get(c as usize * dim..(c as usize + 1) * dim),
        ) else {
            continue;
        };
        let d2: f32 = x.iter().zip(cc).map(|(a, b)| (a - b) * (a - b)).sum();
        if d2 > r2 {
            out.push(t);
        }
    }
    out
}

/// The codebook grown by centroids for the tokens `outliers` of `docs`, and
/// those tokens re-encoded into `codes` and `residuals`; `None` (and nothing
/// changed) when there are no outliers or no room for more centroids.
pub(crate) fn grow(
    cb: &Codebook,
    docs: &FlatDocs<'_>,
    outliers: &[usize],
    codes: &mut [u32],
    residuals: &mut [u8],
    seed: u64,
) -> Result<Option<Codebook>, Error> {
    let dim = cb.dim();
    let k = cb.num_centroids();
    let n = outliers.len();
    if n < MIN_OUTLIERS {
        return Ok(None);
    }
    let room = if k <= MAX_U16_CENTROIDS {
        MAX_U16_CENTROIDS - k
    } else {
        usize::MAX - k
    };
    let k_new = (n.div_ceil(POINTS_PER_NEW_CENTROID).max(1) * 4)
        .min(n)
        .min(room);
    if k_new == 0 {
        return Ok(None);
    }
    let mut points = Vec::with_capacity(n * dim);
    for &t in outliers {
        points.extend_from_slice(&docs.data[t * dim..(t + 1) * dim]);
    }
    let mut km = KMeansConfig::new(k_new);
    km.seed = seed;
    let new = plaid_kmeans::fit(&points, dim, &km)?.into_centroids();
    let grown = cb.with_appended_centroids(&new)?;
    let view = EmbeddingsView::try_new(&points, dim).map_err(|_| Error::NoDocuments)?;
    let c = grown.compress(view)?;
    let plen = grown.nbits().packed_len(dim);
    for (i, &t) in outliers.iter().enumerate() {
        codes[t] = c.codes[i];
        residuals[t * plen..(t + 1) * plen].copy_from_slice(&c.residuals[i * plen..(i + 1) * plen]);
    }
    Ok(Some(grown))
}
