//! Writing npy files.

use std::fmt::Write as _;
use std::io;

use super::{DATA_ALIGN, DType, Element, MAGIC, MAX_HEADER_LEN, num_elements};
use crate::NpyErrorKind;

/// Builds the preamble and header of an npy file holding `shape` elements of
/// `dtype`, padded with spaces and a final `\n` so its length (the data
/// offset) is a multiple of [`DATA_ALIGN`].
///
/// The header is the one NumPy writes, for example
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`. The format
/// version is 1.0 unless the header is longer than 65535 bytes, then 2.0.
/// Useful for streaming writers that append the data themselves.
///
/// # Errors
///
/// - [`NpyErrorKind::ShapeOverflow`] if the shape's byte length overflows.
/// - [`NpyErrorKind::HeaderTooLarge`] if the header would exceed
///   [`MAX_HEADER_LEN`] (the reader would refuse the file).
pub fn encode_header(dtype: DType, shape: &[usize]) -> Result<Vec<u8>, NpyErrorKind> {
    num_elements(shape)?
        .checked_mul(dtype.itemsize() as u64)
        .ok_or(NpyErrorKind::ShapeOverflow)?;
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': (",
        dtype.descr()
    );
    for (i, dim) in shape.iter().enumerate() {
        if i > 0 {
            dict.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(dict, "{dim}");
    }
    if shape.len() == 1 {
        dict.push(',');
    }
    dict.push_str("), }");

    // Room for the terminating newline.
    let unpadded = dict.len() + 1;
    let (version, preamble) = if (10 + unpadded).next_multiple_of(DATA_ALIGN) - 10 <= 0xffff {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let header_len = (preamble + unpadded).next_multiple_of(DATA_ALIGN) - preamble;
    if header_len > MAX_HEADER_LEN {
        return Err(NpyErrorKind::HeaderTooLarge {
            len: header_len,
            max: MAX_HEADER_LEN,
        });
    }

    let mut out = Vec::with_capacity(preamble + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        // Checked above: header_len <= 0xffff.
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        // Checked above: header_len <= MAX_HEADER_LEN < u32::MAX.
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(preamble + header_len - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

/// Checks that `shape` describes exactly `data_len` elements.
pub(crate) fn check_count(shape: &[usize], data_len: usize) -> Result<(), NpyErrorKind> {
    let expected = num_elements(shape)?;
    if expected != data_len as u64 {
        return Err(NpyErrorKind::ElementCount {
            expected,
            found: data_len as u64,
        });
    }
    Ok(())
}

/// Writes `data`, in C order with the given `shape`, as an npy file to `w`.
///
/// The data starts at a multiple of [`DATA_ALIGN`] bytes from the start of
/// what is written (see [`encode_header`]), so the file can be memory-mapped.
/// `w` is not flushed.
///
/// # Errors
///
/// Errors from `w`, and an error of kind [`io::ErrorKind::InvalidInput`]
/// wrapping an [`NpyErrorKind`] (retrievable with [`io::Error::get_ref`] and
/// `downcast_ref`) if the product of `shape` is not `data.len()`
/// ([`NpyErrorKind::ElementCount`]) or the header cannot be encoded; nothing is
/// written in that case. Use [`npy_bytes`] or [`encode_header`] to get these
/// as typed errors.
pub fn write_npy<T: Element, W: io::Write>(
    w: &mut W,
    shape: &[usize],
    data: &[T],
) -> io::Result<()> {
    let header = check_count(shape, data.len())
        .and_then(|()| encode_header(T::DTYPE, shape))
        .map_err(|kind| io::Error::new(io::ErrorKind::InvalidInput, kind))?;
    w.write_all(&header)?;
    w.write_all(bytemuck::cast_slice(data))
}

/// Encodes `data`, in C order with the given `shape`, as the bytes of an npy
/// file.
///
/// # Errors
///
/// [`NpyErrorKind::ElementCount`] if the product of `shape` is not
/// `data.len()`, and the errors of [`encode_header`].
pub fn npy_bytes<T: Element>(shape: &[usize], data: &[T]) -> Result<Vec<u8>, NpyErrorKind> {
    check_count(shape, data.len())?;
    let mut out = encode_header(T::DTYPE, shape)?;
    out.extend_from_slice(bytemuck::cast_slice(data));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_numpy() {
        // What `np.save` writes for `np.zeros((3, 2), '<f2')`, minus NumPy's
        // extra growth padding.
        let header = encode_header(DType::F16, &[3, 2]).unwrap_or_default();
        let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        expected.extend_from_slice(b"{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }");
        expected.resize(127, b' ');
        expected.push(b'\n');
        assert_eq!(header, expected);
        let one_d = encode_header(DType::U8, &[5]).unwrap_or_default();
        assert!(one_d.windows(7).any(|w| w == b"(5,), }"));
        let zero_d = encode_header(DType::I64, &[]).unwrap_or_default();
        assert!(zero_d.windows(5).any(|w| w == b"(), }"));
    }

    #[test]
    fn rejects_element_count_mismatch() {
        assert_eq!(
            npy_bytes(&[2, 3], &[0u8; 5]),
            Err(NpyErrorKind::ElementCount {
                expected: 6,
                found: 5
            })
        );
        let mut sink = Vec::new();
        let err = write_npy(&mut sink, &[4], &[0u8; 5]).err();
        let kind = err
            .as_ref()
            .and_then(|e| e.get_ref()?.downcast_ref::<NpyErrorKind>());
        assert_eq!(
            kind,
            Some(&NpyErrorKind::ElementCount {
                expected: 4,
                found: 5
            })
        );
        assert!(sink.is_empty());
    }

    #[test]
    fn rejects_overflowing_shape() {
        assert_eq!(
            encode_header(DType::F64, &[usize::MAX / 4]),
            Err(NpyErrorKind::ShapeOverflow)
        );
    }
}
