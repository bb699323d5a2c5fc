//! Changing a committed index: the write lock, commits that add, replace and
//! remove segments or record deletions, and removal of files that no
//! manifest lists.
//!
//! # Commit protocol
//!
//! A [`Commit`] starts from the current manifest. Every new file is written
//! with [`crate::atomic::write_atomic`] (temporary file, `fsync`, rename,
//! directory `fsync`) under a name no committed file has: segment files carry
//! a fresh segment id (`seg-<id>.*`, ids never reused), tombstone files the
//! new generation (`seg-<id>.del-<generation>.npy`). [`Commit::finish`]
//! writes the new manifest, with `generation` one higher, the same way; its
//! rename is the commit point. A crash before it leaves the old manifest,
//! which does not list the new files; a crash after it leaves the new one.
//!
//! Files the new manifest no longer lists (the segments a compaction
//! replaced, superseded tombstones) are removed by the writer after the
//! commit ([`remove_files`]). Files left by an interrupted commit are removed
//! by the next writer when it takes the lock ([`remove_unreferenced`]).
//! Readers never remove anything.
//!
//! # Locking
//!
//! One writer at a time: [`WriteLock::acquire`] takes an OS advisory lock
//! (`flock` on Unix, `LockFileEx` on Windows) on the file `write.lock` in the
//! index directory, without blocking. A second writer, in another process or
//! through another handle in the same process, gets [`LayoutFault::Locked`].
//! The lock is released when the [`WriteLock`] is dropped or the process
//! dies, so a killed writer never leaves a stale lock behind. Readers do not
//! lock.

use crate::atomic::fsync_dir;
use crate::layout::{SegmentData, put, write_segment};
use crate::manifest::{MANIFEST_FILE, Manifest, SegmentEntry};
use crate::{Error, LayoutFault};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Name of the lock file inside an index directory. Not listed in the
/// manifest and never removed; it holds no data.
pub const LOCK_FILE: &str = "write.lock";

/// The index directory's write lock, held until dropped.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
    path: PathBuf,
}

impl WriteLock {
    /// Takes the write lock of the index at `dir` without waiting.
    ///
    /// # Errors
    /// [`Error::Layout`] with [`LayoutFault::Locked`] when another writer
    /// holds it; [`Error::Io`] when the lock file cannot be created (for
    /// example a read-only directory).
    pub fn acquire(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(Error::Layout {
                path,
                fault: LayoutFault::Locked,
            }),
            Err(TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The name of segment `id`'s tombstone file written by `generation`.
pub fn tombstone_name(segment: u64, generation: u64) -> String {
    format!("seg-{segment:06}.del-{generation:06}.npy")
}

/// One commit in progress: new files are written as they are added; the
/// manifest only by [`Commit::finish`]. Dropping an unfinished commit removes
/// the files it wrote (best effort; the next writer removes what is left).
#[derive(Debug)]
pub struct Commit<'a> {
    dir: &'a Path,
    base_files: Vec<String>,
    next: Manifest,
    written: Vec<String>,
    finished: bool,
}

impl<'a> Commit<'a> {
    /// Starts the commit that follows `base`, the manifest currently
    /// committed at `dir`.
    pub fn begin(dir: &'a Path, base: &Manifest) -> Self {
        let mut next = base.clone();
        next.generation = base.generation + 1;
        next.next_segment_id = base.new_segment_id();
        next.writer = concat!("plaid ", env!("CARGO_PKG_VERSION")).to_string();
        Self {
            dir,
            base_files: base.files.keys().cloned().collect(),
            next,
            written: Vec::new(),
            finished: false,
        }
    }

    /// The manifest as it will be committed.
    pub fn manifest(&self) -> &Manifest {
        &self.next
    }

    /// Writes `segment` as a new segment with a fresh id and lists it (kept
    /// in ascending id order). `next_doc_id` becomes at least its largest id
    /// plus one. Returns the segment's id.
    ///
    /// # Errors
    /// [`Error::Layout`] with [`LayoutFault::Shape`] when the code width does
    /// not match the index's; [`Error::Npy`] or [`Error::Io`] from writing.
    pub fn add_segment(&mut self, segment: &SegmentData) -> Result<u64, Error> {
        let code_bytes = match segment.codes {
            crate::layout::CodesBuf::U16(_) => 2,
            crate::layout::CodesBuf::U32(_) => 4,
        };
        if code_bytes != self.next.code_bytes {
            return Err(Error::Layout {
                path: self.dir.to_path_buf(),
                fault: LayoutFault::Shape {
                    what: "code bytes",
                    expected: usize::from(self.next.code_bytes),
                    found: usize::from(code_bytes),
                },
            });
        }
        let id = self.next.new_segment_id();
        let packed_len = (self.next.dim as usize) * usize::from(self.next.nbits) / 8;
        let mut files = BTreeMap::new();
        let entry = write_segment(self.dir, &mut files, id, segment, packed_len);
        self.written.extend(files.keys().cloned());
        let entry = entry?;
        self.next.files.extend(files);
        if let Some(&last) = segment.doc_ids.last() {
            self.next.next_doc_id = self.next.next_doc_id.max(u64::from(last) + 1);
        }
        self.next.next_segment_id = id + 1;
        self.next.segments.push(entry);
        self.next.segments.sort_by_key(|s| s.id);
        Ok(id)
    }

    /// Records `deleted`, the strictly ascending local indices of *all*
    /// deleted documents of segment `id` (earlier deletions included), in a
    /// new tombstone file that replaces the segment's previous one.
    ///
    /// # Errors
    /// [`LayoutFault::BadEntry`] when `id` is not a listed segment or
    /// `deleted` is not strictly ascending below its `num_docs`; write errors.
    pub fn set_deleted(&mut self, id: u64, deleted: &[u32]) -> Result<(), Error> {
        let generation = self.next.generation;
        let pos = self.segment_pos(id)?;
        let num_docs = self.next.segments[pos].num_docs;
        let bad = deleted
            .windows(2)
            .position(|w| w[1] <= w[0])
            .map(|i| i + 1)
            .or_else(|| deleted.iter().position(|&d| u64::from(d) >= num_docs));
        if let Some(i) = bad {
            return Err(Error::Layout {
                path: self.dir.join(tombstone_name(id, generation)),
                fault: LayoutFault::BadEntry {
                    what: "tombstone (ascending local index below num_docs)",
                    index: i as u64,
                    value: u64::from(deleted[i]),
                },
            });
        }
        let mut files = BTreeMap::new();
        let name = tombstone_name(id, generation);
        self.written.push(name.clone());
        put(
            self.dir,
            &mut files,
            name.clone(),
            &[deleted.len()],
            deleted,
        )?;
        let seg = &mut self.next.segments[pos];
        if let Some(old) = seg.tombstones.replace(name) {
            self.next.files.remove(&old);
        }
        seg.num_deleted = deleted.len() as u64;
        self.next.files.extend(files);
        Ok(())
    }

    /// Writes `codebook` as the codebook of the new generation
    /// (`<name>.<generation>.npy` files) and makes the manifest's codebook
    /// fields describe it. Every segment must be removed first: their codes
    /// belong to the old codebook.
    ///
    /// # Errors
    /// [`LayoutFault::Shape`] when segments are still listed or the
    /// dimension differs; write errors.
    pub fn replace_codebook(&mut self, codebook: &plaid_codec::Codebook) -> Result<(), Error> {
        self.write_codebook(codebook, false)
    }

    /// Writes `codebook`, which must be the current codebook with centroids
    /// appended (same first `num_centroids` rows, quantiser, `nbits` and code
    /// width), as the codebook of the new generation. Existing segments stay
    /// valid: their codes still mean the same centroids, and the inverted
    /// lists of the new centroids are empty in them.
    ///
    /// # Errors
    /// [`LayoutFault::Shape`] when `codebook` has fewer centroids, another
    /// dimension, `nbits` or code width; write errors.
    pub fn extend_codebook(&mut self, codebook: &plaid_codec::Codebook) -> Result<(), Error> {
        self.write_codebook(codebook, true)
    }

    fn write_codebook(
        &mut self,
        codebook: &plaid_codec::Codebook,
        extend: bool,
    ) -> Result<(), Error> {
        let shape = |what, expected: usize, found: usize| Error::Layout {
            path: self.dir.join(MANIFEST_FILE),
            fault: LayoutFault::Shape {
                what,
                expected,
                found,
            },
        };
        if !extend && !self.next.segments.is_empty() {
            return Err(shape(
                "segments left when replacing the codebook",
                0,
                self.next.segments.len(),
            ));
        }
        if codebook.dim() != self.next.dim as usize {
            return Err(shape("dim", self.next.dim as usize, codebook.dim()));
        }
        let k = codebook.num_centroids();
        let code_bytes = if k <= usize::from(u16::MAX) + 1 { 2 } else { 4 };
        if extend {
            let old_k = self.next.num_centroids as usize;
            if k < old_k {
                return Err(shape("centroids of an extended codebook", old_k, k));
            }
            if code_bytes != self.next.code_bytes {
                return Err(shape(
                    "code bytes of an extended codebook",
                    usize::from(self.next.code_bytes),
                    usize::from(code_bytes),
                ));
            }
            if codebook.nbits().bits() != self.next.nbits {
                return Err(shape(
                    "nbits of an extended codebook",
                    usize::from(self.next.nbits),
                    usize::from(codebook.nbits().bits()),
                ));
            }
        }
        let generation = self.next.generation;
        let mut files = BTreeMap::new();
        let cb = crate::layout::write_codebook(self.dir, &mut files, codebook, generation);
        self.written.extend(files.keys().cloned());
        let cb = cb?;
        let old = std::mem::replace(&mut self.next.codebook, cb);
        for name in old.file_names() {
            self.next.files.remove(name);
        }
        self.next.files.extend(files);
        self.next.num_centroids = k as u32;
        self.next.code_bytes = code_bytes;
        self.next.nbits = codebook.nbits().bits();
        self.next.quantizer = crate::layout::quantizer_of(codebook);
        self.next.outlier_radius = codebook.outlier_radius();
        Ok(())
    }

    /// Unlists segment `id` and its files (they are removed after the commit).
    ///
    /// # Errors
    /// [`LayoutFault::BadEntry`] when `id` is not a listed segment.
    pub fn remove_segment(&mut self, id: u64) -> Result<(), Error> {
        let pos = self.segment_pos(id)?;
        let seg = self.next.segments.remove(pos);
        for name in seg.file_names() {
            self.next.files.remove(name);
        }
        Ok(())
    }

    fn segment_pos(&self, id: u64) -> Result<usize, Error> {
        self.next
            .segments
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| Error::Layout {
                path: self.dir.join(MANIFEST_FILE),
                fault: LayoutFault::BadEntry {
                    what: "segment id (listed in the manifest)",
                    index: 0,
                    value: id,
                },
            })
    }

    /// Writes the new manifest (the commit point) and returns it with the
    /// names of the files the old manifest listed and the new one does not,
    /// for [`remove_files`] once no reader of this process needs them.
    ///
    /// # Errors
    /// Write errors; the old manifest then stays committed.
    pub fn finish(mut self) -> Result<(Manifest, Vec<String>), Error> {
        // From here on the new files must stay: if writing the manifest fails
        // after its rename (syncing the directory), the new manifest may
        // already be the committed one and list them. If it fails before,
        // they are unlisted leftovers that the next writer removes.
        self.finished = true;
        crate::layout::write_manifest(self.dir, &self.next)?;
        let obsolete = self
            .base_files
            .iter()
            .filter(|n| !self.next.files.contains_key(*n))
            .cloned()
            .collect();
        Ok((self.next.clone(), obsolete))
    }
}

impl Drop for Commit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            for name in &self.written {
                // Best effort: the next writer removes what is left.
                let _ = fs::remove_file(self.dir.join(name));
            }
        }
    }
}

/// Removes `names` from `dir` (files a commit made obsolete); missing files
/// are fine. Returns how many were removed.
///
/// # Errors
/// [`Error::Io`] for a failure other than "not found".
pub fn remove_files(dir: &Path, names: &[String]) -> Result<usize, Error> {
    let mut removed = 0;
    for name in names {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    if removed > 0 {
        fsync_dir(dir)?;
    }
    Ok(removed)
}

/// Whether `name` is a file plaid writes into an index directory: codebook
/// and segment files, tombstones, the manifest and their temporaries.
fn is_ours(name: &str) -> bool {
    let codebook = [
        "centroids.",
        "bucket_cutoffs.",
        "bucket_weights.",
        "avg_residual.",
        "centroid_scales.",
    ];
    let plain = name.ends_with(".npy")
        && (name.starts_with("seg-") || codebook.iter().any(|p| name.starts_with(p)));
    let temp = name.starts_with('.') && name.contains(".tmp-");
    plain || temp
}

/// Removes what interrupted commits left in `dir`: files matching plaid's
/// name patterns that `manifest` (the committed one) does not list,
/// temporary files, and stale `.<name>.creating-*` staging directories next
/// to `dir`. Only a writer holding the [`WriteLock`] may call this. Returns
/// the names removed.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed or a file removed.
pub fn remove_unreferenced(
    dir: &Path,
    manifest: &Manifest,
    _lock: &WriteLock,
) -> Result<Vec<String>, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut stale = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name != MANIFEST_FILE && !manifest.files.contains_key(&name) && is_ours(&name) {
            stale.push(name);
        }
    }
    stale.sort();
    remove_files(dir, &stale)?;
    // Staging directories of an interrupted `create` of this directory.
    if let (Some(parent), Some(base)) = (dir.parent(), dir.file_name()) {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let prefix = format!(".{}.creating-", base.to_string_lossy());
        if let Ok(entries) = fs::read_dir(parent) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) {
                    let path = entry.path();
                    fs::remove_dir_all(&path).map_err(io(&path))?;
                    stale.push(name);
                }
            }
        }
    }
    Ok(stale)
}

/// Reads and checks the tombstones of segment `entry` of the index at `dir`:
/// strictly ascending local indices below `num_docs`, `num_deleted` of them
/// (empty when the segment has no tombstone file).
///
/// # Errors
/// [`Error::Layout`] with [`LayoutFault::Shape`] or
/// [`LayoutFault::BadEntry`] naming the file; [`Error::Npy`] or [`Error::Io`]
/// from reading it.
pub fn read_tombstones(dir: &Path, entry: &SegmentEntry) -> Result<Vec<u32>, Error> {
    let Some(name) = &entry.tombstones else {
        if entry.num_deleted != 0 {
            return Err(Error::Layout {
                path: dir.join(MANIFEST_FILE),
                fault: LayoutFault::Shape {
                    what: "deleted documents without a tombstone file",
                    expected: 0,
                    found: entry.num_deleted as usize,
                },
            });
        }
        return Ok(Vec::new());
    };
    let path = dir.join(name);
    let arr = crate::npy::read_npy(&path)?;
    let dead = arr
        .as_slice::<u32>()
        .map_err(|kind| Error::Npy {
            path: path.clone(),
            kind,
        })?
        .to_vec();
    if dead.len() as u64 != entry.num_deleted || arr.shape().len() != 1 {
        return Err(Error::Layout {
            path,
            fault: LayoutFault::Shape {
                what: "deleted documents",
                expected: entry.num_deleted as usize,
                found: dead.len(),
            },
        });
    }
    let bad = dead
        .windows(2)
        .position(|w| w[1] <= w[0])
        .map(|i| i + 1)
        .or_else(|| dead.iter().position(|&d| u64::from(d) >= entry.num_docs));
    if let Some(i) = bad {
        return Err(Error::Layout {
            path,
            fault: LayoutFault::BadEntry {
                what: "tombstone (ascending local index below num_docs)",
                index: i as u64,
                value: u64::from(dead[i]),
            },
        });
    }
    Ok(dead)
}

/// The segment entry of `manifest` with id `id`.
pub fn segment(manifest: &Manifest, id: u64) -> Option<&SegmentEntry> {
    manifest.segments.iter().find(|s| s.id == id)
}
