//! Document input: per-document matrices or one flat matrix with lengths.

use crate::Error;
use ndarray::ArrayView2;

/// The documents to index, in id order.
#[derive(Clone, Copy, Debug)]
pub enum Documents<'a> {
    /// One `[tokens, dim]` matrix per document.
    Views(&'a [ArrayView2<'a, f32>]),
    /// All tokens in one row-major `[T, dim]` matrix, documents concatenated,
    /// with the number of tokens of each document.
    Flat {
        /// Row-major data, `T × dim` floats.
        data: &'a [f32],
        /// Row width.
        dim: usize,
        /// Tokens per document; they must add up to `T`.
        lens: &'a [usize],
    },
}

/// Validated documents as one contiguous matrix.
#[derive(Debug)]
pub(crate) struct FlatDocs<'a> {
    pub(crate) data: std::borrow::Cow<'a, [f32]>,
    pub(crate) dim: usize,
    pub(crate) lens: Vec<u32>,
    pub(crate) offsets: Vec<usize>,
}

impl FlatDocs<'_> {
    pub(crate) fn num_docs(&self) -> usize {
        self.lens.len()
    }
    pub(crate) fn num_tokens(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }
    pub(crate) fn doc(&self, i: usize) -> &[f32] {
        &self.data[self.offsets[i] * self.dim..self.offsets[i + 1] * self.dim]
    }
}

fn check_rows(doc: usize, data: &[f32], dim: usize) -> Result<(), Error> {
    if let Some(p) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            doc,
            token: p / dim,
            dim: p % dim,
        });
    }
    Ok(())
}

impl<'a> Documents<'a> {
    /// Checks the input and returns it as one contiguous matrix (borrowed when
    /// it already is one). `expected_dim` is the index's dimension, if any.
    pub(crate) fn flatten(self, expected_dim: Option<usize>) -> Result<FlatDocs<'a>, Error> {
        match self {
            Documents::Views(views) => {
                let first = views.first().ok_or(Error::NoDocuments)?;
                let dim = expected_dim.unwrap_or(first.ncols());
                if dim == 0 {
                    return Err(Error::DimMismatch {
                        doc: 0,
                        expected: 1,
                        found: 0,
                    });
                }
                let total: usize = views.iter().map(|v| v.nrows()).sum();
                let mut data = Vec::with_capacity(total * dim);
                let mut lens = Vec::with_capacity(views.len());
                let mut offsets = Vec::with_capacity(views.len() + 1);
                offsets.push(0);
                for (i, v) in views.iter().enumerate() {
                    if v.nrows() == 0 {
                        return Err(Error::EmptyDocument { doc: i });
                    }
                    if v.ncols() != dim {
                        return Err(Error::DimMismatch {
                            doc: i,
                            expected: dim,
                            found: v.ncols(),
                        });
                    }
                    let start = data.len();
                    data.extend(v.iter().copied());
                    check_rows(i, &data[start..], dim)?;
                    lens.push(len_u32(v.nrows())?);
                    offsets.push(offsets[i] + v.nrows());
                }
                check_counts(lens.len())?;
                Ok(FlatDocs {
                    data: data.into(),
                    dim,
                    lens,
                    offsets,
                })
            }
            Documents::Flat { data, dim, lens } => {
                if lens.is_empty() {
                    return Err(Error::NoDocuments);
                }
                if let Some(e) = expected_dim.filter(|&e| e != dim) {
                    return Err(Error::DimMismatch {
                        doc: 0,
                        expected: e,
                        found: dim,
                    });
                }
                if dim == 0 || !data.len().is_multiple_of(dim) {
                    return Err(Error::DimMismatch {
                        doc: 0,
                        expected: dim.max(1),
                        found: data.len() % dim.max(1),
                    });
                }
                let rows = data.len() / dim;
                let sum: u64 = lens.iter().map(|&l| l as u64).sum();
                if sum != rows as u64 {
                    return Err(Error::LengthsMismatch { sum, rows });
                }
                let mut offsets = Vec::with_capacity(lens.len() + 1);
                offsets.push(0);
                let mut lens32 = Vec::with_capacity(lens.len());
                for (i, &l) in lens.iter().enumerate() {
                    if l == 0 {
                        return Err(Error::EmptyDocument { doc: i });
                    }
                    let start = offsets[i];
                    check_rows(i, &data[start * dim..(start + l) * dim], dim)?;
                    lens32.push(len_u32(l)?);
                    offsets.push(start + l);
                }
                check_counts(lens.len())?;
                Ok(FlatDocs {
                    data: data.into(),
                    dim,
                    lens: lens32,
                    offsets,
                })
            }
        }
    }
}

fn len_u32(l: usize) -> Result<u32, Error> {
    u32::try_from(l).map_err(|_| Error::TooLarge {
        what: "tokens in one document",
        found: l as u64,
        limit: u64::from(u32::MAX),
    })
}

fn check_counts(docs: usize) -> Result<(), Error> {
    if docs as u64 > u64::from(u32::MAX) {
        return Err(Error::TooLarge {
            what: "documents",
            found: docs as u64,
            limit: u64::from(u32::MAX),
        });
    }
    Ok(())
}
