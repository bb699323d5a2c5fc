//! Writing and opening index directories (format version 1).
//!
//! A new index is written into a fresh sibling directory and renamed into
//! place, so a crash during creation leaves no index rather than a partial
//! one. Every file is written once and never modified; the manifest, written
//! last, lists them.

use crate::atomic::{fsync_dir, write_atomic};
pub use crate::derived::{code_bits_for, inverted_lists, pack_codes, unpack_codes};
use crate::derived::{rebuilt_ivf, stored_ivf, unpacked_codes};
use crate::manifest::{
    CodebookFiles, FORMAT_NAME, FORMAT_VERSION, FileEntry, MANIFEST_FILE, MAX_MANIFEST_BYTES,
    MIN_FORMAT_VERSION, Manifest, QuantizerRepr, SegmentEntry, SegmentFiles,
};
use crate::mmap::NpyMap;
use crate::npy::{self, DType, Element, NpyArray};
use crate::{Error, LayoutFault};
use plaid_codec::{Codebook, Int8Centroids, Nbits, QuantizerKind, ResidualQuantizer};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Centroid codes of one segment, in the width the index stores them.
#[derive(Clone, Debug)]
pub enum CodesBuf {
    /// 2-byte codes (K ≤ 65,536).
    U16(Vec<u16>),
    /// 4-byte codes.
    U32(Vec<u32>),
}

impl CodesBuf {
    /// Narrows `codes` to 2 bytes when every code of a `num_centroids` codebook fits.
    pub fn for_codebook(codes: Vec<u32>, num_centroids: usize) -> Self {
        if num_centroids <= usize::from(u16::MAX) + 1 {
            // Every code is < num_centroids ≤ 65,536, so it fits in u16.
            CodesBuf::U16(codes.iter().map(|&c| c as u16).collect())
        } else {
            CodesBuf::U32(codes)
        }
    }

    fn len(&self) -> usize {
        match self {
            CodesBuf::U16(v) => v.len(),
            CodesBuf::U32(v) => v.len(),
        }
    }
}

/// Everything one new segment consists of.
#[derive(Debug)]
pub struct SegmentData {
    /// Stable ids, strictly ascending.
    pub doc_ids: Vec<u32>,
    /// Tokens per document.
    pub doclens: Vec<u32>,
    /// Code per token.
    pub codes: CodesBuf,
    /// Packed residuals, `T × packed_len`.
    pub residuals: Vec<u8>,
}

impl SegmentData {
    /// Builds the inverted lists from per-token codes: for each centroid,
    /// the ascending local indices of the documents with a token of it.
    pub fn build_ivf(doclens: &[u32], codes: &[u32], num_centroids: usize) -> (Vec<u32>, Vec<u32>) {
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(codes.len());
        let mut t = 0usize;
        for (doc, &len) in doclens.iter().enumerate() {
            for &c in codes.iter().skip(t).take(len as usize) {
                pairs.push((c, doc as u32));
            }
            t += len as usize;
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut lengths = vec![0u32; num_centroids];
        for &(c, _) in &pairs {
            if let Some(l) = lengths.get_mut(c as usize) {
                *l += 1;
            }
        }
        let ivf = pairs
            .iter()
            .filter(|(c, _)| (*c as usize) < num_centroids)
            .map(|&(_, d)| d)
            .collect();
        (lengths, ivf)
    }
}

fn quantizer_repr(kind: QuantizerKind) -> QuantizerRepr {
    match kind {
        QuantizerKind::Global => QuantizerRepr::Global,
        QuantizerKind::PerDim => QuantizerRepr::PerDim,
    }
}

/// Writes one npy file into `dir` and records it in `files`.
pub(crate) fn put<T: Element>(
    dir: &Path,
    files: &mut BTreeMap<String, FileEntry>,
    name: String,
    shape: &[usize],
    data: &[T],
) -> Result<String, Error> {
    let bytes = npy::npy_bytes(shape, data).map_err(|kind| Error::Npy {
        path: dir.join(&name),
        kind,
    })?;
    let crc32 = crc32fast::hash(&bytes);
    let len_bytes = write_atomic(dir, &name, |w| std::io::Write::write_all(w, &bytes))?;
    files.insert(name.clone(), FileEntry { len_bytes, crc32 });
    Ok(name)
}

pub(crate) fn write_segment(
    dir: &Path,
    files: &mut BTreeMap<String, FileEntry>,
    id: u64,
    seg: &SegmentData,
    packed_len: usize,
) -> Result<SegmentEntry, Error> {
    let p = format!("seg-{id:06}");
    let n = seg.doc_ids.len();
    let t = seg.codes.len();
    let doc_ids = put(dir, files, format!("{p}.doc_ids.npy"), &[n], &seg.doc_ids)?;
    let doclens = put(dir, files, format!("{p}.doclens.npy"), &[n], &seg.doclens)?;
    // Codes are bit-packed with just enough bits for the largest (format 3).
    let all: Vec<u32> = match &seg.codes {
        CodesBuf::U16(c) => c.iter().map(|&v| u32::from(v)).collect(),
        CodesBuf::U32(c) => c.clone(),
    };
    let bits = code_bits_for(all.iter().copied().max().unwrap_or(0));
    let packed = pack_codes(&all, bits);
    drop(all);
    let codes = put(
        dir,
        files,
        format!("{p}.codes.npy"),
        &[packed.len()],
        &packed,
    )?;
    let residuals = put(
        dir,
        files,
        format!("{p}.residuals.npy"),
        &[t, packed_len],
        &seg.residuals,
    )?;
    Ok(SegmentEntry {
        id,
        num_docs: n as u64,
        num_tokens: t as u64,
        files: SegmentFiles {
            doc_ids,
            doclens,
            codes,
            residuals,
            ivf_lengths: None,
            ivf: None,
        },
        num_deleted: 0,
        tombstones: None,
        code_bits: Some(bits),
    })
}

/// Creates a new index at `dir` holding `codebook` and one segment.
///
/// `dir` must not exist or be an empty directory. Files are written into a
/// hidden sibling directory, synced, and renamed to `dir`; on any error the
/// sibling is removed and nothing is left at `dir`.
///
/// # Errors
/// [`Error::Layout`] with [`LayoutFault::TargetNotEmpty`] when `dir` holds
/// something, [`Error::Io`] for filesystem failures.
pub fn create(dir: &Path, codebook: &Codebook, segment: &SegmentData) -> Result<Manifest, Error> {
    create_with(dir, codebook, segment, |_, _| Ok::<(), Error>(()))
}

/// [`create`], also calling `extra` with the staging directory and the
/// manifest just written there, before the directory is synced and renamed
/// to `dir`. Files `extra` writes into the staging directory (the facade's
/// `metadata.db`, for instance) therefore appear at `dir` in the same rename
/// as the index: a crash leaves both or neither. `extra` must close its
/// files and make them durable before it returns.
///
/// # Errors
/// As [`create`], and whatever `extra` returns; on any error nothing is
/// left at `dir`.
pub fn create_with<E: From<Error>>(
    dir: &Path,
    codebook: &Codebook,
    segment: &SegmentData,
    extra: impl FnOnce(&Path, &Manifest) -> Result<(), E>,
) -> Result<Manifest, E> {
    check_target(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.creating-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|source| Error::Io {
            path: staging.clone(),
            source,
        })?;
    }
    fs::create_dir_all(&staging).map_err(|source| Error::Io {
        path: staging.clone(),
        source,
    })?;
    let result = write_all(&staging, codebook, segment)
        .map_err(E::from)
        .and_then(|m| {
            extra(&staging, &m)?;
            fsync_dir(&staging)?;
            if dir.exists() {
                // An empty directory: rename(2) replaces it atomically on POSIX.
                fs::remove_dir(dir).map_err(|source| Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            fs::rename(&staging, dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            fsync_dir(&parent)?;
            Ok(m)
        });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Checks that `dir` can receive a new index: it does not exist or is an
/// empty directory.
///
/// # Errors
/// [`LayoutFault::TargetNotEmpty`] otherwise.
pub fn check_target(dir: &Path) -> Result<(), Error> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Layout {
                    path: dir.to_path_buf(),
                    fault: LayoutFault::TargetNotEmpty,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::Layout {
            path: dir.to_path_buf(),
            fault: LayoutFault::TargetNotEmpty,
        }),
        Err(source) => Err(Error::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Writes the codebook files of generation `generation` into `dir` and
/// records them in `files`.
pub(crate) fn write_codebook(
    dir: &Path,
    files: &mut BTreeMap<String, FileEntry>,
    codebook: &Codebook,
    generation: u64,
) -> Result<CodebookFiles, Error> {
    let dim = codebook.dim();
    let k = codebook.num_centroids();
    let q = codebook.quantizer();
    let b = codebook.nbits().num_buckets();
    let (cut_shape, w_shape) = match q.kind() {
        QuantizerKind::Global => (vec![b - 1], vec![b]),
        QuantizerKind::PerDim => (vec![dim, b - 1], vec![dim, b]),
    };
    let (centroids, centroid_scales) = match codebook.int8_centroids() {
        Some(q8) => (
            put(
                dir,
                files,
                format!("centroids.{generation}.npy"),
                &[k, dim],
                q8.values(),
            )?,
            Some(put(
                dir,
                files,
                format!("centroid_scales.{generation}.npy"),
                &[k],
                q8.scales(),
            )?),
        ),
        None => (
            put(
                dir,
                files,
                format!("centroids.{generation}.npy"),
                &[k, dim],
                codebook.centroids(),
            )?,
            None,
        ),
    };
    Ok(CodebookFiles {
        centroids,
        centroid_scales,
        bucket_cutoffs: put(
            dir,
            files,
            format!("bucket_cutoffs.{generation}.npy"),
            &cut_shape,
            q.cutoffs(),
        )?,
        bucket_weights: put(
            dir,
            files,
            format!("bucket_weights.{generation}.npy"),
            &w_shape,
            q.weights(),
        )?,
        avg_residual: put(
            dir,
            files,
            format!("avg_residual.{generation}.npy"),
            &[dim],
            codebook.avg_residual(),
        )?,
    })
}

/// The manifest's `quantizer` value for a codebook.
pub(crate) fn quantizer_of(codebook: &Codebook) -> QuantizerRepr {
    quantizer_repr(codebook.quantizer().kind())
}

fn write_all(dir: &Path, codebook: &Codebook, segment: &SegmentData) -> Result<Manifest, Error> {
    let dim = codebook.dim();
    let k = codebook.num_centroids();
    let nbits = codebook.nbits();
    let q = codebook.quantizer();
    let mut files = BTreeMap::new();
    let generation = 1u64;
    let cb = write_codebook(dir, &mut files, codebook, generation)?;
    let seg = write_segment(dir, &mut files, 1, segment, nbits.packed_len(dim))?;
    let next_doc_id = segment.doc_ids.last().map_or(0, |&d| u64::from(d) + 1);
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        generation,
        writer: concat!("plaid ", env!("CARGO_PKG_VERSION")).to_string(),
        dim: dim as u32,
        nbits: nbits.bits(),
        quantizer: quantizer_repr(q.kind()),
        num_centroids: k as u32,
        code_bytes: match segment.codes {
            CodesBuf::U16(_) => 2,
            CodesBuf::U32(_) => 4,
        },
        outlier_radius: codebook.outlier_radius(),
        next_doc_id,
        next_segment_id: 2,
        codebook: cb,
        segments: vec![seg],
        files,
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Atomically replaces `dir/manifest.json` with `manifest`.
///
/// # Errors
/// [`Error::Io`] when writing fails; the old manifest is then untouched.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Io {
        path: dir.join(MANIFEST_FILE),
        source: e.into(),
    })?;
    write_atomic(dir, MANIFEST_FILE, |w| std::io::Write::write_all(w, &json))?;
    Ok(())
}

/// Reads and checks `dir/manifest.json`.
///
/// # Errors
/// [`Error::Layout`] when there is no manifest, it is too large, not valid
/// JSON of the expected shape, of another format or version, or
/// inconsistent (a segment file not listed, a bad nbits or code width).
pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let path = dir.join(MANIFEST_FILE);
    let layout = |fault| Error::Layout {
        path: path.clone(),
        fault,
    };
    let file = fs::File::open(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            layout(LayoutFault::NoManifest)
        } else {
            Error::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(layout(LayoutFault::ManifestTooLarge));
    }
    // Check the version before the full schema, so that a future format
    // gets a version error rather than a schema error.
    #[derive(serde::Deserialize)]
    struct Head {
        format: String,
        format_version: u32,
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(|e| {
        layout(LayoutFault::BadManifest {
            line: e.line(),
            column: e.column(),
        })
    })?;
    if head.format != FORMAT_NAME {
        return Err(layout(LayoutFault::NotAnIndex));
    }
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&head.format_version) {
        return Err(layout(LayoutFault::VersionMismatch {
            expected: FORMAT_VERSION,
            found: head.format_version,
        }));
    }
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        layout(LayoutFault::BadManifest {
            line: e.line(),
            column: e.column(),
        })
    })?;
    if Nbits::new(m.nbits).is_err() {
        return Err(layout(LayoutFault::BadNbits { nbits: m.nbits }));
    }
    let want_code_bytes = if m.num_centroids as usize <= usize::from(u16::MAX) + 1 {
        2
    } else {
        4
    };
    if m.code_bytes != want_code_bytes {
        return Err(layout(LayoutFault::BadCodeWidth {
            code_bytes: m.code_bytes,
        }));
    }
    let mut names: Vec<&String> = m.codebook.centroid_scales.iter().collect();
    names.extend([
        &m.codebook.centroids,
        &m.codebook.bucket_cutoffs,
        &m.codebook.bucket_weights,
        &m.codebook.avg_residual,
    ]);
    for s in &m.segments {
        names.extend(s.file_names());
    }
    for n in names {
        if !m.files.contains_key(n) || n.contains('/') || n.contains('\\') || n.starts_with('.') {
            return Err(layout(LayoutFault::UnlistedFile { name: n.clone() }));
        }
    }
    Ok(m)
}

/// A large array either memory-mapped or read into memory.
#[derive(Debug)]
pub enum Backing {
    /// Memory-mapped file.
    Mapped(NpyMap),
    /// Owned copy.
    Owned(NpyArray),
    /// An array derived at open (format 3's unpacked codes and rebuilt
    /// inverted lists), shared with later snapshots of the same segment.
    Derived(std::sync::Arc<NpyArray>),
}

impl Backing {
    /// The data as `&[T]`.
    ///
    /// # Errors
    /// [`Error::Npy`] when the stored dtype is not `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], Error> {
        match self {
            Backing::Mapped(m) => m.as_slice::<T>(),
            Backing::Owned(a) => a.as_slice::<T>().map_err(|kind| Error::Npy {
                path: PathBuf::new(),
                kind,
            }),
            Backing::Derived(a) => a.as_slice::<T>().map_err(|kind| Error::Npy {
                path: PathBuf::new(),
                kind,
            }),
        }
    }

    /// Another handle on a derived array (no copy); `None` for file data.
    fn share(&self) -> Option<Backing> {
        match self {
            Backing::Derived(a) => Some(Backing::Derived(std::sync::Arc::clone(a))),
            _ => None,
        }
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Backing::Mapped(m) => m.shape(),
            Backing::Owned(a) => a.shape(),
            Backing::Derived(a) => a.shape(),
        }
    }
}

/// Codes of an opened segment.
#[derive(Clone, Copy, Debug)]
pub enum StoredCodes<'a> {
    /// 2-byte codes.
    U16(&'a [u16]),
    /// 4-byte codes.
    U32(&'a [u32]),
}

/// A segment's inverted-list entries as stored: 2 bytes per entry for
/// segments of at most 65,536 documents (format 2), else 4.
#[derive(Clone, Copy, Debug)]
pub enum StoredIvf<'a> {
    /// 2-byte entries.
    U16(&'a [u16]),
    /// 4-byte entries.
    U32(&'a [u32]),
}

impl StoredIvf<'_> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, widened.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            Self::U16(v) => v.iter().map(|&d| u32::from(d)).collect(),
            Self::U32(v) => v.to_vec(),
        }
    }

    /// Entry `i`, widened.
    pub fn get(&self, i: usize) -> Option<u32> {
        match self {
            Self::U16(v) => v.get(i).map(|&d| u32::from(d)),
            Self::U32(v) => v.get(i).copied(),
        }
    }
}

/// One opened segment: small arrays in memory, large ones behind [`Backing`].
#[derive(Debug)]
pub struct OpenedSegment {
    entry: SegmentEntry,
    doc_ids: Vec<u32>,
    deleted: Vec<u32>,
    doc_offsets: Vec<u64>,
    ivf_offsets: Vec<u64>,
    codes: Backing,
    residuals: Backing,
    ivf: Backing,
}

impl OpenedSegment {
    /// The manifest entry.
    pub fn entry(&self) -> &SegmentEntry {
        &self.entry
    }
    /// Stable ids, ascending.
    pub fn doc_ids(&self) -> &[u32] {
        &self.doc_ids
    }
    /// Segment-local indices of the deleted documents, strictly ascending
    /// (empty when the segment has no tombstones).
    pub fn deleted(&self) -> &[u32] {
        &self.deleted
    }
    /// Token offsets, `num_docs + 1` entries from 0.
    pub fn doc_offsets(&self) -> &[u64] {
        &self.doc_offsets
    }
    /// Inverted-list offsets, `K + 1` entries from 0.
    pub fn ivf_offsets(&self) -> &[u64] {
        &self.ivf_offsets
    }
    /// Per-token codes.
    ///
    /// # Errors
    /// Never for a segment that opened; the dtype was checked at open.
    pub fn codes(&self) -> Result<StoredCodes<'_>, Error> {
        match self.codes.as_slice::<u16>() {
            Ok(c) => Ok(StoredCodes::U16(c)),
            Err(_) => Ok(StoredCodes::U32(self.codes.as_slice::<u32>()?)),
        }
    }
    /// Packed residual bytes, `T × packed_len`.
    ///
    /// # Errors
    /// Never for a segment that opened.
    pub fn residuals(&self) -> Result<&[u8], Error> {
        self.residuals.as_slice::<u8>()
    }
    /// Concatenated inverted lists.
    ///
    /// # Errors
    /// Never for a segment that opened.
    pub fn ivf(&self) -> Result<StoredIvf<'_>, Error> {
        match self.ivf.as_slice::<u16>() {
            Ok(c) => Ok(StoredIvf::U16(c)),
            Err(_) => Ok(StoredIvf::U32(self.ivf.as_slice::<u32>()?)),
        }
    }
}

/// An opened index directory.
#[derive(Debug)]
pub struct OpenedIndex {
    /// The directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The codebook, in memory.
    pub codebook: Codebook,
    /// The segments, in manifest order.
    pub segments: Vec<OpenedSegment>,
}

/// How an opener gets at a large array.
pub type Loader<'a> = &'a dyn Fn(&Path) -> Result<Backing, Error>;

/// Reads a whole array into memory (small arrays, and the in-memory mode).
pub fn load_owned(path: &Path) -> Result<Backing, Error> {
    Ok(Backing::Owned(npy::read_npy(path)?))
}

/// Opens `dir`, reading every array into memory. Nothing is written.
///
/// # Errors
/// As [`open_with`].
pub fn open_in_memory(dir: &Path) -> Result<OpenedIndex, Error> {
    open_with(dir, &load_owned)
}

/// Opens `dir`: reads the manifest, checks that every listed file has its
/// recorded length, reads the small arrays (codebook, ids, lengths) and gets
/// the large ones (codes, residuals, inverted lists) through `large`. Opening
/// never writes, so read-only directories open fine.
///
/// # Errors
/// [`Error::Layout`] for a missing or bad manifest, a file of the wrong
/// length, or arrays whose shapes or dtypes disagree; [`Error::Npy`] and
/// [`Error::Io`] from reading files.
pub fn open_with(dir: &Path, large: Loader<'_>) -> Result<OpenedIndex, Error> {
    open_reusing(dir, large, None)
}

/// [`open_with`], taking the arrays derived at open (format 3's unpacked
/// codes and rebuilt inverted lists) from `previous` for every segment that
/// is unchanged in it (same id, same files, same number of centroids), so
/// a commit costs what it changes, not the size of the index. Every file is
/// still checked as [`open_with`] checks it.
///
/// # Errors
/// As [`open_with`].
pub fn open_reusing(
    dir: &Path,
    large: Loader<'_>,
    previous: Option<&OpenedIndex>,
) -> Result<OpenedIndex, Error> {
    let manifest = read_manifest(dir)?;
    for (name, entry) in &manifest.files {
        let path = dir.join(name);
        let meta = fs::metadata(&path).map_err(|source| {
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
        })?;
        if meta.len() != entry.len_bytes {
            return Err(Error::Layout {
                path,
                fault: LayoutFault::FileLength {
                    expected: entry.len_bytes,
                    found: meta.len(),
                },
            });
        }
    }
    let dim = manifest.dim as usize;
    let k = manifest.num_centroids as usize;
    let nbits = Nbits::new(manifest.nbits).map_err(|_| Error::Layout {
        path: dir.join(MANIFEST_FILE),
        fault: LayoutFault::BadNbits {
            nbits: manifest.nbits,
        },
    })?;
    let small = |name: &str| npy::read_npy(&dir.join(name));
    let shape_err = |name: &str, what: &'static str, expected: usize, found: usize| {
        shape_fault(dir, name, what, expected, found)
    };
    let cb = &manifest.codebook;
    let centroids = small(&cb.centroids)?;
    if centroids.shape() != [k, dim] {
        return Err(shape_err(
            &cb.centroids,
            "centroids rows",
            k,
            centroids.shape().first().copied().unwrap_or(0),
        ));
    }
    let int8 = match (centroids.dtype(), &cb.centroid_scales) {
        (DType::I8, Some(scales_name)) => {
            let values = centroids
                .as_slice::<i8>()
                .map_err(|kind| Error::Npy {
                    path: dir.join(&cb.centroids),
                    kind,
                })?
                .to_vec();
            let scales = small(scales_name)?;
            if scales.shape() != [k] {
                return Err(shape_err(
                    scales_name,
                    "centroid scales",
                    k,
                    scales.shape().first().copied().unwrap_or(0),
                ));
            }
            let scales = scales
                .as_slice::<f32>()
                .map_err(|kind| Error::Npy {
                    path: dir.join(scales_name),
                    kind,
                })?
                .to_vec();
            Some(
                Int8Centroids::from_parts(values, scales, dim).map_err(|source| Error::Codec {
                    path: dir.join(scales_name),
                    source,
                })?,
            )
        }
        (DType::I8, None) => {
            return Err(Error::Layout {
                path: dir.join(MANIFEST_FILE),
                fault: LayoutFault::UnlistedFile {
                    name: "centroid_scales".to_string(),
                },
            });
        }
        _ => None,
    };
    let centroids = match &int8 {
        Some(_) => Vec::new(),
        None => centroids.to_f32_vec().map_err(|kind| Error::Npy {
            path: dir.join(&cb.centroids),
            kind,
        })?,
    };
    let to_f32 = |name: &str| -> Result<Vec<f32>, Error> {
        small(name)?.to_f32_vec().map_err(|kind| Error::Npy {
            path: dir.join(name),
            kind,
        })
    };
    let cutoffs = to_f32(&cb.bucket_cutoffs)?;
    let weights = to_f32(&cb.bucket_weights)?;
    let avg_residual = to_f32(&cb.avg_residual)?;
    let kind = match manifest.quantizer {
        QuantizerRepr::Global => QuantizerKind::Global,
        QuantizerRepr::PerDim => QuantizerKind::PerDim,
    };
    let codec_err = |name: &str, source: plaid_codec::Error| Error::Codec {
        path: dir.join(name),
        source,
    };
    let quantizer = ResidualQuantizer::from_parts(kind, nbits, dim, cutoffs, weights)
        .map_err(|e| codec_err(&cb.bucket_weights, e))?;
    let codebook = match int8 {
        Some(q) => Codebook::from_int8(q, dim, quantizer, manifest.outlier_radius, avg_residual),
        None => Codebook::new(
            centroids,
            dim,
            quantizer,
            manifest.outlier_radius,
            avg_residual,
        ),
    }
    .map_err(|e| codec_err(&cb.centroids, e))?;
    let packed_len = nbits.packed_len(dim);
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for entry in &manifest.segments {
        let f = &entry.files;
        let n = entry.num_docs as usize;
        let t = entry.num_tokens as usize;
        let doc_ids = small(&f.doc_ids)?;
        let doc_ids: Vec<u32> = doc_ids
            .as_slice::<u32>()
            .map_err(|kind| Error::Npy {
                path: dir.join(&f.doc_ids),
                kind,
            })?
            .to_vec();
        if doc_ids.len() != n {
            return Err(shape_err(&f.doc_ids, "documents", n, doc_ids.len()));
        }
        let doclens = small(&f.doclens)?;
        let doclens = doclens.as_slice::<u32>().map_err(|kind| Error::Npy {
            path: dir.join(&f.doclens),
            kind,
        })?;
        if doclens.len() != n {
            return Err(shape_err(&f.doclens, "documents", n, doclens.len()));
        }
        let mut doc_offsets = Vec::with_capacity(n + 1);
        let mut acc = 0u64;
        doc_offsets.push(0);
        for &l in doclens {
            acc += u64::from(l);
            doc_offsets.push(acc);
        }
        if acc != t as u64 {
            return Err(shape_err(&f.doclens, "tokens", t, acc as usize));
        }
        // The same segment in the previous snapshot, when nothing it was
        // derived from changed.
        let same = previous
            .and_then(|p| p.segments.iter().find(|s| s.entry.id == entry.id))
            .filter(|s| {
                s.entry.files == entry.files
                    && s.entry.code_bits == entry.code_bits
                    && s.entry.num_tokens == entry.num_tokens
                    && s.ivf_offsets.len() == k + 1
            });
        let codes = match (entry.code_bits, same.and_then(|s| s.codes.share())) {
            (None, _) => large(&dir.join(&f.codes))?,
            (Some(_), Some(shared)) => shared,
            (Some(bits), None) => unpacked_codes(dir, &f.codes, bits, t, manifest.code_bytes)?,
        };
        let code_ok = match manifest.code_bytes {
            2 => codes.as_slice::<u16>().map(|c| c.len()),
            _ => codes.as_slice::<u32>().map(|c| c.len()),
        };
        let code_len = code_ok.map_err(|e| match e {
            Error::Npy { kind, .. } => Error::Npy {
                path: dir.join(&f.codes),
                kind,
            },
            other => other,
        })?;
        if code_len != t || codes.shape().len() != 1 {
            return Err(shape_err(&f.codes, "tokens", t, code_len));
        }
        let residuals = large(&dir.join(&f.residuals))?;
        if residuals.shape() != [t, packed_len] {
            return Err(shape_err(
                &f.residuals,
                "residual row bytes",
                packed_len,
                residuals.shape().get(1).copied().unwrap_or(0),
            ));
        }
        residuals.as_slice::<u8>().map_err(|e| match e {
            Error::Npy { kind, .. } => Error::Npy {
                path: dir.join(&f.residuals),
                kind,
            },
            other => other,
        })?;
        let (ivf_offsets, ivf) = match (&f.ivf_lengths, &f.ivf) {
            (Some(lengths), Some(lists)) => stored_ivf(dir, large, lengths, lists, k)?,
            (None, None) if same.is_some_and(|s| s.ivf.share().is_some()) => {
                let prev = same.and_then(|s| s.ivf.share().map(|b| (s.ivf_offsets.clone(), b)));
                prev.ok_or_else(|| shape_err(&f.codes, "inverted lists", 1, 0))?
            }
            (None, None) => {
                let stored = match codes.as_slice::<u16>() {
                    Ok(c) => StoredCodes::U16(c),
                    Err(_) => StoredCodes::U32(codes.as_slice::<u32>()?),
                };
                rebuilt_ivf(&doc_offsets, stored, k)?
            }
            _ => {
                let name = f.ivf.as_ref().or(f.ivf_lengths.as_ref());
                return Err(shape_err(
                    name.map_or("ivf", String::as_str),
                    "inverted-list files (both or neither)",
                    2,
                    1,
                ));
            }
        };
        let deleted = crate::live::read_tombstones(dir, entry)?;
        segments.push(OpenedSegment {
            entry: entry.clone(),
            doc_ids,
            deleted,
            doc_offsets,
            ivf_offsets,
            codes,
            residuals,
            ivf,
        });
    }
    Ok(OpenedIndex {
        dir: dir.to_path_buf(),
        manifest,
        codebook,
        segments,
    })
}

/// The error for a file at `dir/name` whose `what` has `found` where
/// `expected` was due.
pub(crate) fn shape_fault(
    dir: &Path,
    name: &str,
    what: &'static str,
    expected: usize,
    found: usize,
) -> Error {
    Error::Layout {
        path: dir.join(name),
        fault: LayoutFault::Shape {
            what,
            expected,
            found,
        },
    }
}
