//! The residual bit width.

use crate::Error;
use std::fmt;

/// How many bits each residual dimension is quantised to.
///
/// next-plaid also accepts 8 (untested there); we support the widths that divide a byte
/// into at least two groups: 1, 2 and 4 (next-plaid's default is 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nbits {
    /// 1 bit per dimension, 2 buckets.
    One,
    /// 2 bits per dimension, 4 buckets.
    Two,
    /// 4 bits per dimension, 16 buckets.
    Four,
}

impl Nbits {
    /// The width for `bits` bits.
    ///
    /// # Errors
    /// [`Error::UnsupportedNbits`] unless `bits` is 1, 2 or 4.
    pub fn new(bits: u8) -> Result<Nbits, Error> {
        match bits {
            1 => Ok(Nbits::One),
            2 => Ok(Nbits::Two),
            4 => Ok(Nbits::Four),
            _ => Err(Error::UnsupportedNbits { nbits: bits }),
        }
    }

    /// Bits per dimension: 1, 2 or 4.
    #[inline]
    pub fn bits(self) -> u8 {
        match self {
            Nbits::One => 1,
            Nbits::Two => 2,
            Nbits::Four => 4,
        }
    }

    /// Number of quantisation buckets, `2^bits`.
    #[inline]
    pub fn num_buckets(self) -> usize {
        1 << self.bits()
    }

    /// Dimensions stored in one packed byte, `8 / bits`.
    #[inline]
    pub fn dims_per_byte(self) -> usize {
        8 / usize::from(self.bits())
    }

    /// The mask that keeps the low `bits` bits of a bucket index.
    #[inline]
    pub fn mask(self) -> u8 {
        // bits ≤ 4, so the shift cannot overflow.
        (1u8 << self.bits()) - 1
    }

    /// Bytes in one packed row of `dim` dimensions: `dim × bits / 8`.
    ///
    /// This rounds down; [`Nbits::check_dim`] rejects dimensions that do not fill whole bytes.
    #[inline]
    pub fn packed_len(self, dim: usize) -> usize {
        dim * usize::from(self.bits()) / 8
    }

    /// Checks that rows of `dim` dimensions pack into whole bytes, and returns the packed length.
    ///
    /// # Errors
    /// [`Error::ZeroDim`] when `dim` is 0, and [`Error::DimNotMultiple`] when `dim × bits`
    /// is not a multiple of 8.
    pub fn check_dim(self, dim: usize) -> Result<usize, Error> {
        if dim == 0 {
            return Err(Error::ZeroDim);
        }
        if !dim.is_multiple_of(self.dims_per_byte()) {
            return Err(Error::DimNotMultiple {
                dim,
                nbits: self.bits(),
            });
        }
        Ok(self.packed_len(dim))
    }
}

impl TryFrom<u8> for Nbits {
    type Error = Error;

    fn try_from(bits: u8) -> Result<Self, Error> {
        Nbits::new(bits)
    }
}

impl From<Nbits> for u8 {
    fn from(n: Nbits) -> u8 {
        n.bits()
    }
}

impl fmt::Display for Nbits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bits())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests unwrap freely.
mod tests {
    use super::*;

    #[test]
    fn nbits_properties() {
        for (bits, buckets, per_byte, packed_128) in [(1, 2, 8, 16), (2, 4, 4, 32), (4, 16, 2, 64)]
        {
            let n = Nbits::new(bits).unwrap();
            assert_eq!(n.bits(), bits);
            assert_eq!(n.num_buckets(), buckets);
            assert_eq!(n.dims_per_byte(), per_byte);
            assert_eq!(n.packed_len(128), packed_128);
            assert_eq!(n.check_dim(128).unwrap(), packed_128);
            assert_eq!(usize::from(n.mask()), buckets - 1);
        }
    }

    #[test]
    fn rejects_unsupported_nbits() {
        for bits in [0u8, 3, 5, 8, 255] {
            assert!(
                matches!(Nbits::new(bits), Err(Error::UnsupportedNbits { nbits }) if nbits == bits)
            );
        }
    }

    #[test]
    fn rejects_dim_not_multiple() {
        assert!(matches!(
            Nbits::One.check_dim(12),
            Err(Error::DimNotMultiple { dim: 12, nbits: 1 })
        ));
        assert!(matches!(
            Nbits::Two.check_dim(6),
            Err(Error::DimNotMultiple { dim: 6, nbits: 2 })
        ));
        assert!(matches!(
            Nbits::Four.check_dim(3),
            Err(Error::DimNotMultiple { dim: 3, nbits: 4 })
        ));
        assert!(matches!(Nbits::Four.check_dim(0), Err(Error::ZeroDim)));
        assert_eq!(Nbits::Four.check_dim(2).unwrap(), 1);
    }
}
