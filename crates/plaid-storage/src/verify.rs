//! Checking every invariant of an index directory.
//!
//! Opening an index checks what it must to be safe (versions, file lengths,
//! shapes, offsets); [`verify`] checks everything the format promises, reading
//! every byte: CRC-32s, ids, codes, inverted lists and tombstones. It is what
//! `plaid verify` runs, and what the crash tests run after every kill.

use crate::layout::{SegmentData, StoredCodes, open_in_memory, read_manifest};
use crate::manifest::MANIFEST_FILE;
use crate::{Error, LayoutFault};
use std::collections::BTreeSet;
use std::path::Path;

/// What [`verify`] found in a sound index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The committed generation.
    pub generation: u64,
    /// Number of segments.
    pub segments: usize,
    /// Live (not deleted) documents.
    pub num_docs: u64,
    /// Deleted documents still stored.
    pub num_deleted: u64,
    /// Stored tokens, deleted documents' included.
    pub num_tokens: u64,
    /// Files listed by the manifest (the manifest itself excluded).
    pub files: usize,
    /// Their total length in bytes.
    pub bytes: u64,
}

fn bad(path: &Path, what: &'static str, index: usize, value: u64) -> Error {
    Error::Layout {
        path: path.to_path_buf(),
        fault: LayoutFault::BadEntry {
            what,
            index: index as u64,
            value,
        },
    }
}

/// Checks the index at `dir` against every invariant of the format: the
/// manifest lists exactly the files the codebook and segments use, each has
/// its recorded length and CRC-32, shapes agree, every document has at least
/// one token, ids are strictly ascending within a segment, unique across
/// segments and below `next_doc_id`, segment ids are unique and below
/// `next_segment_id`, every code is below `K`, every inverted list is
/// strictly ascending and is exactly what the codes imply, and tombstones are
/// strictly ascending local indices that match `num_deleted`. Reads every
/// file once; writes nothing.
///
/// # Errors
/// The first violation found: [`Error::Layout`] naming the file with
/// [`LayoutFault::BadEntry`], [`LayoutFault::Checksum`],
/// [`LayoutFault::FileLength`], [`LayoutFault::MissingFile`],
/// [`LayoutFault::Shape`] or [`LayoutFault::UnlistedFile`]; [`Error::Npy`] or
/// [`Error::Io`] from reading.
pub fn verify(dir: &Path) -> Result<VerifyReport, Error> {
    let m = read_manifest(dir)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let cb = &m.codebook;
    let mut used: BTreeSet<&str> = cb.file_names().into_iter().map(String::as_str).collect();
    for s in &m.segments {
        for name in s.file_names() {
            if !used.insert(name.as_str()) {
                return Err(Error::Layout {
                    path: manifest_path.clone(),
                    fault: LayoutFault::UnlistedFile { name: name.clone() },
                });
            }
        }
    }
    let mut bytes = 0u64;
    for (name, entry) in &m.files {
        let path = dir.join(name);
        if !used.contains(name.as_str()) {
            return Err(Error::Layout {
                path,
                fault: LayoutFault::UnlistedFile { name: name.clone() },
            });
        }
        let len = std::fs::metadata(&path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    Error::Layout {
                        path: path.clone(),
                        fault: LayoutFault::MissingFile,
                    }
                } else {
                    Error::Io {
                        path: path.clone(),
                        source,
                    }
                }
            })?
            .len();
        if len != entry.len_bytes {
            return Err(Error::Layout {
                path,
                fault: LayoutFault::FileLength {
                    expected: entry.len_bytes,
                    found: len,
                },
            });
        }
        let crc = crate::atomic::crc32_of_file(&path)?;
        if crc != entry.crc32 {
            return Err(Error::Layout {
                path,
                fault: LayoutFault::Checksum {
                    expected: entry.crc32,
                    found: crc,
                },
            });
        }
        bytes += len;
    }

    // Shapes, offsets and tombstones are checked by opening.
    let index = open_in_memory(dir)?;
    let k = m.num_centroids as usize;
    let next_seg = m.new_segment_id();
    let mut seg_ids = BTreeSet::new();
    let mut all_ids: Vec<u32> = Vec::with_capacity(m.num_docs() as usize);
    for seg in &index.segments {
        let e = seg.entry();
        let f = &e.files;
        if !seg_ids.insert(e.id) || e.id >= next_seg || e.id == 0 {
            return Err(bad(
                &manifest_path,
                "segment id (unique, from 1, below next_segment_id)",
                seg_ids.len(),
                e.id,
            ));
        }
        let ids = seg.doc_ids();
        let doc_ids_path = dir.join(&f.doc_ids);
        for (i, w) in ids.windows(2).enumerate() {
            if w[1] <= w[0] {
                return Err(bad(
                    &doc_ids_path,
                    "doc id (strictly ascending)",
                    i + 1,
                    u64::from(w[1]),
                ));
            }
        }
        if let Some((i, &id)) = ids
            .iter()
            .enumerate()
            .find(|(_, id)| u64::from(**id) >= m.next_doc_id)
        {
            return Err(bad(
                &doc_ids_path,
                "doc id (below next_doc_id)",
                i,
                u64::from(id),
            ));
        }
        all_ids.extend_from_slice(ids);
        let offs = seg.doc_offsets();
        let mut doclens = Vec::with_capacity(ids.len());
        for (i, w) in offs.windows(2).enumerate() {
            if w[1] <= w[0] {
                return Err(bad(&dir.join(&f.doclens), "doclen (at least 1)", i, 0));
            }
            doclens.push((w[1] - w[0]) as u32);
        }
        let codes: Vec<u32> = match seg.codes()? {
            StoredCodes::U16(c) => c.iter().map(|&v| u32::from(v)).collect(),
            StoredCodes::U32(c) => c.to_vec(),
        };
        if let Some((t, &c)) = codes.iter().enumerate().find(|(_, c)| **c as usize >= k) {
            return Err(bad(
                &dir.join(&f.codes),
                "code (below num_centroids)",
                t,
                u64::from(c),
            ));
        }
        let (want_lengths, want_ivf) = SegmentData::build_ivf(&doclens, &codes, k);
        // Format 3 stores no lists (they are rebuilt from the codes at open);
        // errors then name the codes file they come from.
        let lengths_path = dir.join(f.ivf_lengths.as_ref().unwrap_or(&f.codes));
        let lists_path = dir.join(f.ivf.as_ref().unwrap_or(&f.codes));
        let ivf_offs = seg.ivf_offsets();
        for (c, &want) in want_lengths.iter().enumerate() {
            let found = ivf_offs[c + 1] - ivf_offs[c];
            if found != u64::from(want) {
                return Err(bad(
                    &lengths_path,
                    "inverted-list length (documents with a token of the centroid)",
                    c,
                    found,
                ));
            }
        }
        let ivf = seg.ivf()?.to_vec();
        if ivf.len() != want_ivf.len() {
            return Err(bad(
                &lists_path,
                "inverted-list entries (sum of the lengths)",
                0,
                ivf.len() as u64,
            ));
        }
        if let Some((i, &d)) = ivf
            .iter()
            .zip(&want_ivf)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, _))| (i, a))
        {
            return Err(bad(
                &lists_path,
                "inverted-list entry (ascending local documents with a token of the centroid)",
                i,
                u64::from(d),
            ));
        }
    }
    all_ids.sort_unstable();
    if let Some(w) = all_ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(
            &manifest_path,
            "doc id (unique across segments)",
            0,
            u64::from(w[0]),
        ));
    }
    Ok(VerifyReport {
        generation: m.generation,
        segments: m.segments.len(),
        num_docs: m.num_docs(),
        num_deleted: m.num_deleted(),
        num_tokens: m.num_tokens(),
        files: m.files.len(),
        bytes,
    })
}
