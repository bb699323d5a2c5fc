//! Parsing and length-checking of npy headers.
//!
//! Everything here works on borrowed bytes, never panics and never allocates
//! more than the shape vector (bounded by the header's length, itself bounded
//! by [`MAX_HEADER_LEN`]) and, for an unsupported dtype, a copy of its
//! descriptor.

use super::{DType, MAGIC, MAX_HEADER_LEN, NpyHeader};
use crate::{HeaderFault, NpyErrorKind};

/// Length of the preamble of a version 1.0 file: magic, version, `u16` length.
const PREAMBLE_V1: usize = 10;
/// Length of the preamble of a version 2.0 or 3.0 file (`u32` length).
const PREAMBLE_V2: usize = 12;

/// Parses the npy header at the start of `bytes`.
///
/// `bytes` needs to hold the preamble and the whole header; anything after the
/// header (the data) is ignored, so a prefix of a file is enough. The header's
/// claims are not checked against the data: call [`check_len`] for that.
///
/// This function never panics, whatever the bytes.
///
/// # Errors
///
/// - [`NpyErrorKind::BadMagic`] if `bytes` does not start with [`MAGIC`].
/// - [`NpyErrorKind::UnsupportedVersion`] for versions other than 1.0, 2.0, 3.0.
/// - [`NpyErrorKind::HeaderTooLarge`] if `HEADER_LEN` exceeds [`MAX_HEADER_LEN`].
/// - [`NpyErrorKind::Truncated`] if `bytes` ends before the header does.
/// - [`NpyErrorKind::MalformedHeader`] if the header is not the dictionary
///   literal the format prescribes.
/// - [`NpyErrorKind::ShapeOverflow`] if a dimension does not fit in `usize`.
/// - [`NpyErrorKind::UnsupportedDtype`] if `descr` is not one of [`DType`]'s.
/// - [`NpyErrorKind::FortranOrder`] if `fortran_order` is `True`.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyErrorKind> {
    let (start, len) = preamble(bytes)?;
    // Cannot overflow: `len <= MAX_HEADER_LEN` and `start <= PREAMBLE_V2`.
    let data_offset = start + len;
    let text = bytes
        .get(start..data_offset)
        .ok_or(NpyErrorKind::Truncated {
            expected: data_offset as u64,
            found: bytes.len() as u64,
        })?;
    let dict = parse_dict(text)?;
    let descr = dict.descr.ok_or(HeaderFault::MissingKey("descr"))?;
    let fortran_order = dict
        .fortran_order
        .ok_or(HeaderFault::MissingKey("fortran_order"))?;
    let shape = dict.shape.ok_or(HeaderFault::MissingKey("shape"))?;
    let dtype = DType::from_descr(descr).ok_or_else(|| NpyErrorKind::UnsupportedDtype {
        descr: String::from_utf8_lossy(descr).into_owned(),
    })?;
    if fortran_order {
        return Err(NpyErrorKind::FortranOrder);
    }
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset,
    })
}

/// Checks that a file of `file_len` bytes holds exactly the data `header`
/// describes.
///
/// Uses checked arithmetic throughout and allocates nothing; call it before
/// allocating anything sized by the header.
///
/// # Errors
///
/// - [`NpyErrorKind::ShapeOverflow`] if the data length overflows `u64` or
///   `usize`.
/// - [`NpyErrorKind::Truncated`] if the file is shorter than header plus data.
/// - [`NpyErrorKind::TrailingBytes`] if it is longer.
pub fn check_len(header: &NpyHeader, file_len: u64) -> Result<(), NpyErrorKind> {
    let expected = (header.data_offset as u64)
        .checked_add(header.data_len_bytes()?)
        .ok_or(NpyErrorKind::ShapeOverflow)?;
    if file_len < expected {
        Err(NpyErrorKind::Truncated {
            expected,
            found: file_len,
        })
    } else if file_len > expected {
        Err(NpyErrorKind::TrailingBytes {
            expected,
            found: file_len,
        })
    } else {
        Ok(())
    }
}

/// Reads magic, version and `HEADER_LEN`; returns where the header text
/// starts and how long it is.
///
/// Needs at most [`PREAMBLE_V2`] bytes.
pub(crate) fn preamble(bytes: &[u8]) -> Result<(usize, usize), NpyErrorKind> {
    let truncated = |expected: usize| NpyErrorKind::Truncated {
        expected: expected as u64,
        found: bytes.len() as u64,
    };
    let seen = bytes.len().min(MAGIC.len());
    if bytes[..seen] != MAGIC[..seen] {
        return Err(NpyErrorKind::BadMagic);
    }
    let (major, minor) = match bytes {
        [_, _, _, _, _, _, major, minor, ..] => (*major, *minor),
        _ => return Err(truncated(PREAMBLE_V1)),
    };
    let (start, len) = match (major, minor) {
        (1, 0) => match bytes {
            [_, _, _, _, _, _, _, _, a, b, ..] => {
                (PREAMBLE_V1, u64::from(u16::from_le_bytes([*a, *b])))
            }
            _ => return Err(truncated(PREAMBLE_V1)),
        },
        (2 | 3, 0) => match bytes {
            [_, _, _, _, _, _, _, _, a, b, c, d, ..] => {
                (PREAMBLE_V2, u64::from(u32::from_le_bytes([*a, *b, *c, *d])))
            }
            _ => return Err(truncated(PREAMBLE_V2)),
        },
        _ => return Err(NpyErrorKind::UnsupportedVersion { major, minor }),
    };
    match usize::try_from(len) {
        Ok(len) if len <= MAX_HEADER_LEN => Ok((start, len)),
        _ => Err(NpyErrorKind::HeaderTooLarge {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max: MAX_HEADER_LEN,
        }),
    }
}

/// The three values of a header dictionary, each `None` until seen.
#[derive(Default)]
struct Dict<'a> {
    descr: Option<&'a [u8]>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// Parses `{ key: value, ... }` with the three known keys.
fn parse_dict(text: &[u8]) -> Result<Dict<'_>, NpyErrorKind> {
    if !text.is_ascii() {
        return Err(HeaderFault::NotAscii.into());
    }
    let mut cur = Cursor { text, pos: 0 };
    let mut dict = Dict::default();
    cur.skip_ws();
    if !cur.eat(b'{') {
        return Err(HeaderFault::NotADict.into());
    }
    loop {
        cur.skip_ws();
        if cur.eat(b'}') {
            break;
        }
        let key = cur.string().ok_or(HeaderFault::NotADict)?;
        cur.skip_ws();
        if !cur.eat(b':') {
            return Err(HeaderFault::NotADict.into());
        }
        cur.skip_ws();
        match key {
            b"descr" => {
                let value = cur.string().ok_or(HeaderFault::BadDescr)?;
                set(&mut dict.descr, value, "descr")?;
            }
            b"fortran_order" => {
                let value = cur.boolean().ok_or(HeaderFault::BadFortranOrder)?;
                set(&mut dict.fortran_order, value, "fortran_order")?;
            }
            b"shape" => {
                let value = cur.shape()?;
                set(&mut dict.shape, value, "shape")?;
            }
            _ => return Err(HeaderFault::UnknownKey.into()),
        }
        cur.skip_ws();
        if cur.eat(b',') {
            continue;
        }
        if cur.eat(b'}') {
            break;
        }
        return Err(HeaderFault::NotADict.into());
    }
    cur.skip_ws();
    if cur.pos != text.len() {
        return Err(HeaderFault::TrailingCharacters.into());
    }
    Ok(dict)
}

/// Stores the value of `key`, rejecting a second occurrence.
fn set<T>(slot: &mut Option<T>, value: T, key: &'static str) -> Result<(), HeaderFault> {
    if slot.is_some() {
        return Err(HeaderFault::DuplicateKey(key));
    }
    *slot = Some(value);
    Ok(())
}

/// A position in the header text.
struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_str(&mut self, s: &[u8]) -> bool {
        let hit = self
            .text
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(s));
        if hit {
            self.pos += s.len();
        }
        hit
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A `'...'` or `"..."` literal of printable characters without escapes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let quote = self.peek().filter(|q| matches!(q, b'\'' | b'"'))?;
        let start = self.pos + 1;
        let rest = self.text.get(start..)?;
        let len = rest.iter().position(|&b| b == quote)?;
        let body = rest.get(..len)?;
        if !body
            .iter()
            .all(|&b| (b' '..=b'~').contains(&b) && b != b'\\')
        {
            return None;
        }
        self.pos = start + len + 1;
        Some(body)
    }

    /// `True` or `False`, not followed by an identifier character.
    fn boolean(&mut self) -> Option<bool> {
        let value = if self.eat_str(b"True") {
            true
        } else if self.eat_str(b"False") {
            false
        } else {
            return None;
        };
        match self.peek() {
            Some(b) if b.is_ascii_alphanumeric() || b == b'_' => None,
            _ => Some(value),
        }
    }

    /// A tuple of dimensions: `()`, `(3,)`, `(3, 2)`, `(3, 2,)`.
    ///
    /// `(3)` is an integer in Python, not a tuple, and is rejected.
    fn shape(&mut self) -> Result<Vec<usize>, NpyErrorKind> {
        if !self.eat(b'(') {
            return Err(HeaderFault::BadShape.into());
        }
        let mut dims = Vec::new();
        self.skip_ws();
        if self.eat(b')') {
            return Ok(dims);
        }
        loop {
            dims.push(self.dim()?);
            self.skip_ws();
            if self.eat(b',') {
                self.skip_ws();
                if self.eat(b')') {
                    return Ok(dims);
                }
            } else if self.eat(b')') && dims.len() > 1 {
                return Ok(dims);
            } else {
                return Err(HeaderFault::BadShape.into());
            }
        }
    }

    /// A non-negative decimal integer without leading zeros, with an optional
    /// Python 2 `L` suffix.
    fn dim(&mut self) -> Result<usize, NpyErrorKind> {
        let start = self.pos;
        let mut value: u64 = 0;
        let mut overflow = false;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            self.pos += 1;
            match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            {
                Some(v) => value = v,
                None => overflow = true,
            }
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && self.text.get(start) == Some(&b'0')) {
            return Err(HeaderFault::BadShape.into());
        }
        self.eat(b'L');
        if overflow {
            return Err(NpyErrorKind::ShapeOverflow);
        }
        usize::try_from(value).map_err(|_| NpyErrorKind::ShapeOverflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The dictionary grammar is tested through the public API in tests/npy.rs.

    #[test]
    fn preamble_needs_at_most_twelve_bytes() {
        let truncated = |expected, found| Err(NpyErrorKind::Truncated { expected, found });
        type Case = (&'static [u8], Result<(usize, usize), NpyErrorKind>);
        let cases: &[Case] = &[
            (b"\x93NUMPY\x01\x00\x76\x00", Ok((10, 0x76))),
            (b"\x93NUMPY\x03\x00\x00\x01\x00\x00", Ok((12, 0x100))),
            (b"\x93NUMPY\x02\x00\x00\x00", truncated(12, 10)),
            (b"\x93NUMPY\x01\x00\x76", truncated(10, 9)),
            (b"\x93NUM", truncated(10, 4)),
            (b"", truncated(10, 0)),
            (b"\x93NUX", Err(NpyErrorKind::BadMagic)),
            (
                b"\x93NUMPY\x02\x00\xff\xff\xff\xff",
                Err(NpyErrorKind::HeaderTooLarge {
                    len: 0xffff_ffff,
                    max: MAX_HEADER_LEN,
                }),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(&preamble(bytes), expected, "preamble {bytes:?}");
        }
    }
}
