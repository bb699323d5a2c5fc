//! Format 3's derived arrays: bit-packed codes and the inverted lists that
//! readers rebuild from them (and the stored lists of formats 1–2).

use crate::layout::{Backing, Loader, StoredCodes, shape_fault};
use crate::npy;
use crate::{Error, LayoutFault};
use std::path::{Path, PathBuf};

/// Bits needed for codes up to `max` (at least 1).
pub fn code_bits_for(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()).max(1) as u8
}

/// Packs `codes` at `bits` each (1..=32): code `i` is bits `i·bits ..
/// (i+1)·bits` of a little-endian bit stream (least significant bits first),
/// `ceil(len·bits / 8)` bytes. Bits above `bits` are dropped.
pub fn pack_codes(codes: &[u32], bits: u8) -> Vec<u8> {
    let bits = u32::from(bits.clamp(1, 32));
    let mask = if bits == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << bits) - 1
    };
    let mut out = Vec::with_capacity((codes.len() * bits as usize).div_ceil(8));
    let (mut acc, mut have) = (0u64, 0u32);
    for &c in codes {
        acc |= (u64::from(c) & mask) << have;
        have += bits;
        while have >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            have -= 8;
        }
    }
    if have > 0 {
        out.push(acc as u8);
    }
    out
}

/// The inverse of [`pack_codes`]: `n` codes of `bits` each, or `None` when
/// `bytes` is not exactly `ceil(n·bits / 8)` long or `bits` is not 1..=32.
pub fn unpack_codes(bytes: &[u8], bits: u8, n: usize) -> Option<Vec<u32>> {
    if !(1..=32).contains(&bits) || n.checked_mul(usize::from(bits))?.div_ceil(8) != bytes.len() {
        return None;
    }
    let bits = u32::from(bits);
    let mask = if bits == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << bits) - 1
    };
    let mut out = Vec::with_capacity(n);
    let (mut acc, mut have) = (0u64, 0u32);
    let mut it = bytes.iter();
    while out.len() < n {
        while have < bits {
            acc |= u64::from(*it.next()?) << have;
            have += 8;
        }
        out.push((acc & mask) as u32);
        acc >>= bits;
        have -= bits;
    }
    Some(out)
}

/// The inverted lists of a format 1–2 segment, read from its files.
pub(crate) fn stored_ivf(
    dir: &Path,
    large: Loader<'_>,
    lengths_name: &str,
    lists_name: &str,
    k: usize,
) -> Result<(Vec<u64>, Backing), Error> {
    let shape_err = |name: &str, what: &'static str, expected: usize, found: usize| {
        shape_fault(dir, name, what, expected, found)
    };
    let ivf_lengths = npy::read_npy(&dir.join(lengths_name))?;
    let ivf_lengths = ivf_lengths.as_slice::<u32>().map_err(|kind| Error::Npy {
        path: dir.join(lengths_name),
        kind,
    })?;
    // A segment written before centroids were appended to the codebook
    // has fewer lists; the lists of the newer centroids are empty.
    if ivf_lengths.len() > k {
        return Err(shape_err(lengths_name, "centroids", k, ivf_lengths.len()));
    }
    let mut ivf_offsets = Vec::with_capacity(k + 1);
    let mut acc = 0u64;
    ivf_offsets.push(0);
    for &l in ivf_lengths {
        acc += u64::from(l);
        ivf_offsets.push(acc);
    }
    ivf_offsets.resize(k + 1, acc);
    let ivf = large(&dir.join(lists_name))?;
    let ivf_len = match ivf.as_slice::<u16>() {
        Ok(v) => Ok(v.len()),
        Err(_) => ivf.as_slice::<u32>().map(|s| s.len()),
    }
    .map_err(|e| match e {
        Error::Npy { kind, .. } => Error::Npy {
            path: dir.join(lists_name),
            kind,
        },
        other => other,
    })?;
    if ivf_len as u64 != acc {
        return Err(shape_err(
            lists_name,
            "inverted-list entries",
            acc as usize,
            ivf_len,
        ));
    }
    Ok((ivf_offsets, ivf))
}

/// The inverted lists of a format 3 segment, built from its codes: for each
/// centroid, the ascending local indices of the documents with a token of
/// it (codes `>= k` are left out; search reports them). Entries are 2 bytes
/// when the segment has at most 65,536 documents.
pub(crate) fn rebuilt_ivf(
    doc_offsets: &[u64],
    codes: StoredCodes<'_>,
    k: usize,
) -> Result<(Vec<u64>, Backing), Error> {
    let (offsets, lists) = inverted_lists(doc_offsets, codes, k);
    let n = doc_offsets.len().saturating_sub(1);
    let bytes = if n <= usize::from(u16::MAX) + 1 {
        let narrow: Vec<u16> = lists
            .iter()
            .map(|&d| u16::try_from(d).unwrap_or(u16::MAX))
            .collect();
        npy::npy_bytes(&[narrow.len()], &narrow)
    } else {
        npy::npy_bytes(&[lists.len()], &lists)
    };
    let parse = |kind| Error::Npy {
        path: PathBuf::from("(inverted lists built at open)"),
        kind,
    };
    let array = npy::read_npy_from_bytes(&bytes.map_err(parse)?).map_err(parse)?;
    Ok((offsets, Backing::Derived(std::sync::Arc::new(array))))
}

/// For each centroid `< k`, the ascending documents (indices into
/// `doc_offsets`) that hold a token of it: `K + 1` offsets and the
/// concatenated lists. Linear in the tokens: each document's codes are
/// deduplicated once, then counted and placed.
pub fn inverted_lists(
    doc_offsets: &[u64],
    codes: StoredCodes<'_>,
    k: usize,
) -> (Vec<u64>, Vec<u32>) {
    let n = doc_offsets.len().saturating_sub(1);
    let code = |t: usize| match codes {
        StoredCodes::U16(c) => c.get(t).map(|&v| u32::from(v)),
        StoredCodes::U32(c) => c.get(t).copied(),
    };
    let mut uniq: Vec<u32> = Vec::new();
    let mut per_doc: Vec<u32> = Vec::with_capacity(n);
    let mut counts = vec![0u64; k + 1];
    for d in 0..n {
        let start = uniq.len();
        let (a, b) = (doc_offsets[d] as usize, doc_offsets[d + 1] as usize);
        uniq.extend((a..b).filter_map(code).filter(|&c| (c as usize) < k));
        uniq[start..].sort_unstable();
        let mut w = start;
        for r in start..uniq.len() {
            if r == start || uniq[r] != uniq[w - 1] {
                uniq[w] = uniq[r];
                w += 1;
            }
        }
        uniq.truncate(w);
        per_doc.push((w - start) as u32);
        for &c in &uniq[start..] {
            counts[c as usize + 1] += 1;
        }
    }
    for c in 0..k {
        counts[c + 1] += counts[c];
    }
    let mut fill = counts.clone();
    let mut lists = vec![0u32; uniq.len()];
    let mut at = 0usize;
    for (d, &m) in per_doc.iter().enumerate() {
        for &c in &uniq[at..at + m as usize] {
            let slot = &mut fill[c as usize];
            lists[*slot as usize] = d as u32;
            *slot += 1;
        }
        at += m as usize;
    }
    (counts, lists)
}

/// A format 3 segment's bit-packed codes, read and widened to the index's
/// `code_bytes` (2 or 4) in memory.
pub(crate) fn unpacked_codes(
    dir: &Path,
    name: &str,
    bits: u8,
    t: usize,
    code_bytes: u8,
) -> Result<Backing, Error> {
    let path = dir.join(name);
    let bad = |expected: usize, found: usize| Error::Layout {
        path: path.clone(),
        fault: LayoutFault::Shape {
            what: "bit-packed code bytes",
            expected,
            found,
        },
    };
    let raw = npy::read_npy(&path)?;
    let bytes = raw.as_slice::<u8>().map_err(|kind| Error::Npy {
        path: path.clone(),
        kind,
    })?;
    let want = t.saturating_mul(usize::from(bits)).div_ceil(8);
    let max_bits = if code_bytes == 2 { 16 } else { 32 };
    if bits == 0 || bits > max_bits {
        return Err(bad(max_bits as usize, usize::from(bits)));
    }
    let codes = unpack_codes(bytes, bits, t).ok_or_else(|| bad(want, bytes.len()))?;
    let encoded = if code_bytes == 2 {
        let narrow: Vec<u16> = codes.iter().map(|&c| c as u16).collect();
        npy::npy_bytes(&[t], &narrow)
    } else {
        npy::npy_bytes(&[t], &codes)
    };
    let parse = |kind| Error::Npy {
        path: path.clone(),
        kind,
    };
    let array = npy::read_npy_from_bytes(&encoded.map_err(parse)?).map_err(parse)?;
    Ok(Backing::Derived(std::sync::Arc::new(array)))
}
