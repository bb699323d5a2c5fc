//! Shared vocabulary: ids and borrowed views used by every plaid crate.
//!
//! This module holds no logic beyond construction and checked access.
//! It is re-exported by the facade as `plaid::types`.

use std::fmt;

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(u32);

        impl $name {
            /// Wraps a raw id.
            #[inline]
            pub const fn new(raw: u32) -> Self {
                Self(raw)
            }

            /// The raw id.
            #[inline]
            pub const fn as_u32(self) -> u32 {
                self.0
            }

            /// The raw id as an index.
            #[inline]
            pub const fn as_usize(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<$name> for u32 {
            fn from(id: $name) -> u32 {
                id.0
            }
        }
    };
}

id_newtype!(
    /// A stable document id: assigned once when a document is added, never reused.
    DocId
);
id_newtype!(
    /// The index of a centroid in the codebook.
    CentroidId
);

/// A borrowed row-major matrix of `f32` token embeddings, `num_rows × dim`.
///
/// Construct it with [`EmbeddingsView::try_new`], which checks that the slice
/// length is a multiple of `dim`.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingsView<'a> {
    data: &'a [f32],
    dim: usize,
}

/// Why an [`EmbeddingsView`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewShapeError {
    /// Length of the slice that was given.
    pub len: usize,
    /// The requested row width.
    pub dim: usize,
}

impl fmt::Display for ViewShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dim == 0 {
            write!(f, "embedding dimension must be positive")
        } else {
            write!(
                f,
                "slice of {} floats is not a whole number of rows of dim {}",
                self.len, self.dim
            )
        }
    }
}

impl std::error::Error for ViewShapeError {}

impl<'a> EmbeddingsView<'a> {
    /// A view over `data` with rows of width `dim`.
    ///
    /// # Errors
    /// [`ViewShapeError`] when `dim` is zero or `data.len()` is not a multiple of `dim`.
    pub fn try_new(data: &'a [f32], dim: usize) -> Result<Self, ViewShapeError> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(ViewShapeError {
                len: data.len(),
                dim,
            });
        }
        Ok(Self { data, dim })
    }

    /// Row width.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    #[inline]
    pub fn num_rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether the view has no rows.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The flat row-major data.
    #[inline]
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`, or `None` when out of range.
    #[inline]
    pub fn row(&self, i: usize) -> Option<&'a [f32]> {
        self.data.get(i * self.dim..(i + 1) * self.dim)
    }

    /// Iterator over the rows.
    pub fn rows(&self) -> std::slice::ChunksExact<'a, f32> {
        self.data.chunks_exact(self.dim)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests unwrap freely.
mod tests {
    use super::*;

    #[test]
    fn rejects_ragged_view() {
        let data = [0.0f32; 10];
        assert!(EmbeddingsView::try_new(&data, 3).is_err());
        assert!(EmbeddingsView::try_new(&data, 0).is_err());
        let v = EmbeddingsView::try_new(&data, 5).unwrap();
        assert_eq!(v.num_rows(), 2);
        assert_eq!(v.row(1).unwrap().len(), 5);
        assert!(v.row(2).is_none());
    }

    #[test]
    fn ids_roundtrip() {
        let d = DocId::new(7);
        assert_eq!(d.as_usize(), 7);
        assert_eq!(u32::from(d), 7);
        assert_eq!(format!("{d:?}"), "DocId(7)");
    }
}
