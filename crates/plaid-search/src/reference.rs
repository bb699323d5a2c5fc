//! Plain, obviously correct versions of what the fast paths compute. They
//! are the documented definition of the search's scores and the oracle of the
//! tests; they accumulate in `f64`.

/// `Σ_i a_i b_i` in f64 over the common length.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// ColBERT MaxSim: `Σ_q max_t q·t` of a query (`nq × dim`) against a document
/// (`n × dim`), in f64. An empty document scores 0.
pub fn maxsim(query: &[f32], doc: &[f32], dim: usize) -> f64 {
    if dim == 0 || doc.len() < dim {
        return 0.0;
    }
    query
        .chunks_exact(dim)
        .map(|q| {
            doc.chunks_exact(dim)
                .map(|t| dot(q, t))
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum()
}

/// A bound on `|fl(maxsim) − maxsim|` for an f32 evaluation with any
/// summation order (Higham, *Accuracy and Stability of Numerical Algorithms*,
/// §3.1: `|fl(Σ x_i y_i) − Σ x_i y_i| ≤ γ_n Σ|x_i y_i|`, `γ_n = n·u/(1 − n·u)`,
/// `u = 2⁻²⁴`). The per-token dot products carry `γ_dim`; summing the
/// `nq` maxima adds `γ_nq` of their absolute sum. We bound every `|q·t|` term by
/// `Σ|q_i||t_i|` of the worst token.
pub fn maxsim_error_bound(query: &[f32], doc: &[f32], dim: usize) -> f64 {
    if dim == 0 || doc.len() < dim {
        return 0.0;
    }
    let u = f64::from(f32::EPSILON) / 2.0;
    let gamma = |n: usize| {
        let nu = n as f64 * u;
        nu / (1.0 - nu)
    };
    let mut total = 0.0;
    for q in query.chunks_exact(dim) {
        let worst = doc
            .chunks_exact(dim)
            .map(|t| {
                q.iter()
                    .zip(t)
                    .map(|(a, b)| f64::from(a.abs()) * f64::from(b.abs()))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        total += worst;
    }
    let nq = query.len() / dim;
    // Each max is off by at most γ_dim·worst; the final sum of nq terms adds γ_nq.
    (gamma(dim) + gamma(nq.max(1)) * (1.0 + gamma(dim))) * total
}

/// The ranking rule of every search path: higher score first, ties broken
/// by the lower document id; NaN scores rank last.
pub fn rank_order(a: (f32, u32), b: (f32, u32)) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.0.is_nan(), b.0.is_nan()) {
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    b.0.partial_cmp(&a.0)
        .unwrap_or(Ordering::Equal)
        .then(a.1.cmp(&b.1))
}
