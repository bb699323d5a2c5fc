//! Byte-at-a-time decode tables: the fast path of residual decoding.

use crate::pack::{UNPACK1, UNPACK2, UNPACK4};
use crate::{Error, Nbits, QuantizerKind};
use std::fmt;

/// Maps each packed byte straight to the reconstruction weights of the dimensions it holds.
///
/// For packed byte position `p` and byte value `v`, the table holds the `8 / nbits`
/// weights of dimensions `p × (8 / nbits) ..`, in dimension order. Decoding a row is then
/// one table lookup and one small copy per byte, with no bit manipulation.
///
/// A [`QuantizerKind::Global`] quantizer uses the same weights in every dimension, so its
/// table is *shared*: one set of 256 entries serves every byte position (at most
/// 2 KiB). A [`QuantizerKind::PerDim`] table has `packed_len × 256 × (8 / nbits)` =
/// `dim × 256` entries (128 KiB at dim 128).
///
/// The table is built by [`crate::ResidualQuantizer`] and is exactly equivalent to
/// [`crate::reference::decode_row`]; tests check this bit for bit.
#[derive(Clone, PartialEq)]
pub struct DecodeTable {
    nbits: Nbits,
    dim: usize,
    shared: bool,
    entries: Vec<f32>,
}

/// The bucket of the `k`-th dimension stored in byte `v`.
fn bucket_in_byte(nbits: Nbits, v: usize, k: usize) -> u8 {
    match nbits {
        Nbits::One => UNPACK1[v][k],
        Nbits::Two => UNPACK2[v][k],
        Nbits::Four => UNPACK4[v][k],
    }
}

impl DecodeTable {
    /// Builds the table. `weights` has `B` entries (Global) or `dim × B` (PerDim); the
    /// caller (the quantizer) has validated the lengths and that `dim` fills whole bytes.
    pub(crate) fn build(kind: QuantizerKind, nbits: Nbits, dim: usize, weights: &[f32]) -> Self {
        let per = nbits.dims_per_byte();
        let b = nbits.num_buckets();
        let shared = kind == QuantizerKind::Global;
        let positions = if shared { 1 } else { nbits.packed_len(dim) };
        let mut entries = Vec::with_capacity(positions * 256 * per);
        for p in 0..positions {
            for v in 0..256 {
                for k in 0..per {
                    let bucket = usize::from(bucket_in_byte(nbits, v, k));
                    let i = if shared {
                        bucket
                    } else {
                        (p * per + k) * b + bucket
                    };
                    entries.push(weights.get(i).copied().unwrap_or(0.0));
                }
            }
        }
        Self {
            nbits,
            dim,
            shared,
            entries,
        }
    }

    /// The bit width the table decodes.
    pub fn nbits(&self) -> Nbits {
        self.nbits
    }

    /// The row dimension the table decodes.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether one 256-entry block serves every byte position (Global quantizers).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The flat table: blocks of `256 × (8 / nbits)` weights, one block per byte position
    /// (or a single block when [shared](Self::is_shared)), indexed by byte value.
    pub fn entries(&self) -> &[f32] {
        &self.entries
    }

    /// The weights of the dimensions held by byte value `byte` at packed position
    /// `position`, or `None` when `position` is past the end of a row.
    pub fn lookup(&self, position: usize, byte: u8) -> Option<&[f32]> {
        if position >= self.nbits.packed_len(self.dim) {
            return None;
        }
        let per = self.nbits.dims_per_byte();
        let block = if self.shared { 0 } else { position };
        let start = (block * 256 + usize::from(byte)) * per;
        self.entries.get(start..start + per)
    }

    /// Decodes one packed row into residual values. Any bytes are valid.
    ///
    /// # Panics
    /// When `packed.len()` is not the packed row length or `out.len()` is not `dim`.
    /// [`Self::try_decode_row`] returns an error instead.
    pub fn decode_row(&self, packed: &[u8], out: &mut [f32]) {
        if let Err(e) = self.try_decode_row(packed, out) {
            panic!("decode_row: {e}");
        }
    }

    /// Decodes one packed row into residual values, checking lengths. Any bytes are valid.
    ///
    /// # Errors
    /// [`Error::Shape`] when `packed.len()` is not the packed row length or `out.len()`
    /// is not `dim`.
    pub fn try_decode_row(&self, packed: &[u8], out: &mut [f32]) -> Result<(), Error> {
        let packed_len = self.nbits.packed_len(self.dim);
        if packed.len() != packed_len {
            return Err(Error::Shape {
                what: "packed row",
                expected: packed_len,
                found: packed.len(),
            });
        }
        if out.len() != self.dim {
            return Err(Error::Shape {
                what: "decoded row",
                expected: self.dim,
                found: out.len(),
            });
        }
        match self.nbits {
            Nbits::One => self.decode::<8>(packed, out),
            Nbits::Two => self.decode::<4>(packed, out),
            Nbits::Four => self.decode::<2>(packed, out),
        }
        Ok(())
    }

    /// The kernel: `N = 8 / nbits` weights per byte. Lengths were checked by the caller,
    /// and the table holds `256 × N` entries per block, so every slice is in range.
    #[inline]
    fn decode<const N: usize>(&self, packed: &[u8], out: &mut [f32]) {
        let stride = if self.shared { 0 } else { 256 * N };
        for (p, (&byte, chunk)) in packed.iter().zip(out.chunks_exact_mut(N)).enumerate() {
            let start = p * stride + usize::from(byte) * N;
            chunk.copy_from_slice(&self.entries[start..start + N]);
        }
    }
}

impl fmt::Debug for DecodeTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeTable")
            .field("nbits", &self.nbits)
            .field("dim", &self.dim)
            .field("shared", &self.shared)
            .field("num_entries", &self.entries.len())
            .finish()
    }
}
