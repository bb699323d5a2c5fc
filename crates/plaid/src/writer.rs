//! Changing an index: [`Index::add`], [`Index::delete`], [`Index::compact`],
//! [`Index::rebuild`].
//!
//! Each is one commit (see `plaid_storage::live`): appended documents go
//! into a new segment encoded with the existing codebook, deletions into new
//! tombstone files, compaction into new segments that replace old ones.
//! Committed files are never modified. The automatic compaction of the
//! [`CompactionPolicy`] is part of the same commit as the write that
//! triggers it.
//!
//! Errors before the commit point leave the index unchanged. The only
//! errors after it are failing to open the new generation (a damaged disk,
//! for instance) and, for a delete, failing to remove the deleted documents'
//! metadata: the change is then committed although the call reports the
//! error, as a crash at that moment would; [`Index::reload`] shows it.
//!
//! Every writer first brings the metadata database, if any, in line with
//! the committed manifest; see the crash-consistency rules in `metadata.rs`.

use crate::build::{build_segment, encode_docs};
use crate::index::CompactionPolicy;
use crate::snapshot::Snapshot;
use crate::{Documents, Error, Index, IndexConfig};
use plaid_codec::types::DocId;
use plaid_storage::layout::{CodesBuf, SegmentData, StoredCodes};
use plaid_storage::live::{Commit, remove_files};
use std::collections::BTreeMap;

/// What [`Index::add_with`] runs just before its commit: given the new ids
/// and the generation the commit will have.
pub(crate) type BeforeCommit<'a> = dyn FnMut(&[DocId], u64) -> Result<(), Error> + 'a;

/// What [`Index::compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Segments before.
    pub segments_before: usize,
    /// Segments after.
    pub segments_after: usize,
    /// Deleted documents whose data was dropped.
    pub reclaimed_docs: u64,
    /// Whether anything was committed.
    pub committed: bool,
}

/// The changes of one commit, before compaction is planned.
#[derive(Debug, Default)]
struct Change {
    /// New full tombstone lists (ascending local indices), by segment position.
    deleted: BTreeMap<usize, Vec<u32>>,
    /// A segment of new documents.
    new_segment: Option<SegmentData>,
    /// Merge every segment into one (explicit compaction).
    full: bool,
    /// The codebook with centroids appended for the new segment's outliers.
    grown: Option<plaid_codec::Codebook>,
}

impl Index {
    /// Appends `docs`, encoded with the index's codebook, as a new segment,
    /// and returns their ids: consecutive, starting at one more than the
    /// largest id ever assigned (deleted ids are never reused).
    ///
    /// When at least 256 of the new tokens lie farther than the codebook's
    /// outlier radius from every centroid, centroids for them are appended to
    /// the codebook in the same commit (see [`Index::with_codebook_growth`]);
    /// existing segments are never rewritten.
    ///
    /// The new documents get no metadata (they match no filter);
    /// [`Index::add_with_metadata`] adds documents with theirs.
    ///
    /// # Errors
    /// Bad input ([`Error::NoDocuments`], [`Error::EmptyDocument`],
    /// [`Error::DimMismatch`] when a document's dimension is not the index's,
    /// [`Error::NonFinite`], [`Error::LengthsMismatch`]), [`Error::TooLarge`]
    /// when the ids would pass `u32::MAX`, a lock held by another writer, or
    /// IO failures. Nothing is committed on error.
    pub fn add(&self, docs: Documents<'_>) -> Result<Vec<DocId>, Error> {
        self.add_with(docs, &mut |_, _| Ok(()))
    }

    /// [`Index::add`], calling `before_commit` with the new ids and the
    /// generation the commit will have, under the write lock, after
    /// everything else is checked and just before the commit; its error
    /// aborts the add.
    pub(crate) fn add_with(
        &self,
        docs: Documents<'_>,
        before_commit: &mut BeforeCommit<'_>,
    ) -> Result<Vec<DocId>, Error> {
        // Bad input is refused before the lock is taken. The dimension never
        // changes (a rebuild keeps it); the codebook may, so encoding waits
        // for the lock.
        let flat = docs.flatten(Some(self.dim()))?;
        let _guard = self.writer()?;
        let snap = self.snapshot();
        let (mut codes, mut residuals) = encode_docs(snap.codebook(), &flat)?;
        let mut grown = None;
        if self.grows_codebook() {
            let outliers = crate::grow::outliers(snap.codebook(), &flat, &codes);
            if outliers.len() >= crate::grow::MIN_OUTLIERS {
                grown = crate::grow::grow(
                    snap.codebook(),
                    &flat,
                    &outliers,
                    &mut codes,
                    &mut residuals,
                    snap.generation(),
                )?;
            }
        }
        let first = snap.manifest().next_doc_id;
        let n = flat.num_docs() as u64;
        let end = first + n;
        if end > u64::from(u32::MAX) + 1 {
            return Err(Error::TooLarge {
                what: "document ids",
                found: end - 1,
                limit: u64::from(u32::MAX),
            });
        }
        // Checked above: every id is at most u32::MAX.
        let doc_ids: Vec<u32> = (first..end).map(|d| d as u32).collect();
        let k = grown
            .as_ref()
            .map_or(snap.num_centroids(), |g| g.num_centroids());
        let segment = SegmentData {
            doc_ids: doc_ids.clone(),
            doclens: flat.lens.clone(),
            codes: CodesBuf::for_codebook(codes, k),
            residuals,
        };
        drop(flat);
        let ids: Vec<DocId> = doc_ids.into_iter().map(DocId::new).collect();
        before_commit(&ids, snap.generation() + 1)?;
        self.commit(
            &snap,
            Change {
                new_segment: Some(segment),
                grown,
                ..Change::default()
            },
        )?;
        // Best effort: the stamp only spares readers a liveness check.
        let _ = self.follow_commit(snap.generation(), &[]);
        Ok(ids)
    }

    /// Deletes the documents `ids` and returns how many were deleted
    /// (duplicates in `ids` count once). Search skips them from the commit
    /// on; their ids are never reused. Their data stays on disk until their
    /// segment is compacted.
    ///
    /// Costs time in proportion to the ids given and the earlier deletions
    /// of the segments they are in, not to the index.
    ///
    /// # Errors
    /// [`Error::UnknownDocs`] naming every id the index never held,
    /// [`Error::DeletedDocs`] naming every id already deleted, a lock held by
    /// another writer, or IO failures. Nothing is committed on error.
    pub fn delete(&self, ids: &[DocId]) -> Result<usize, Error> {
        let mut sorted: Vec<u32> = ids.iter().map(|d| d.as_u32()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let _guard = self.writer()?;
        let snap = self.snapshot();
        let mut unknown = Vec::new();
        let mut already = Vec::new();
        let mut by_segment: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for &id in &sorted {
            match snap.locate(id) {
                None => unknown.push(id),
                Some((si, local)) if !snap.is_live(si, local) => already.push(id),
                // Local indices fit u32: segments hold at most u32::MAX docs.
                Some((si, local)) => by_segment.entry(si).or_default().push(local as u32),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownDocs { ids: unknown });
        }
        if !already.is_empty() {
            return Err(Error::DeletedDocs { ids: already });
        }
        if sorted.is_empty() {
            return Ok(0);
        }
        let segments = snap.segments();
        let mut change = Change::default();
        for (si, mut new) in by_segment {
            // Both lists are ascending and disjoint (new ones are live).
            new.extend_from_slice(segments[si].deleted());
            new.sort_unstable();
            change.deleted.insert(si, new);
        }
        self.commit(&snap, change)?;
        // Metadata follows the manifest (the manifest is the truth): a crash
        // here leaves rows of deleted ids, which readers ignore and the next
        // writer removes.
        self.follow_commit(snap.generation(), &sorted)?;
        Ok(sorted.len())
    }

    /// Rewrites the index as one segment holding only live documents,
    /// reclaiming the space of deleted ones. Codes and residuals are copied,
    /// not re-encoded; ids do not change. Does nothing (and commits nothing)
    /// when there is at most one segment and nothing is deleted.
    ///
    /// # Errors
    /// A lock held by another writer, or IO failures. Nothing is committed on
    /// error.
    pub fn compact(&self) -> Result<CompactReport, Error> {
        let _guard = self.writer()?;
        let snap = self.snapshot();
        let before = snap.segments().len();
        let reclaimed = snap.manifest().num_deleted();
        if before <= 1 && reclaimed == 0 {
            return Ok(CompactReport {
                segments_before: before,
                segments_after: before,
                reclaimed_docs: 0,
                committed: false,
            });
        }
        let after = self.commit(
            &snap,
            Change {
                full: true,
                ..Change::default()
            },
        )?;
        let _ = self.follow_commit(snap.generation(), &[]);
        Ok(CompactReport {
            segments_before: before,
            segments_after: after.segments().len(),
            reclaimed_docs: reclaimed,
            committed: true,
        })
    }

    /// Plans compaction on top of `change`, commits everything as one new
    /// generation, makes it current and removes the files it replaced.
    /// The caller holds the writer.
    fn commit(&self, snap: &Snapshot, change: Change) -> Result<std::sync::Arc<Snapshot>, Error> {
        let segments = snap.segments();
        let deleted_of = |si: usize| -> &[u32] {
            match change.deleted.get(&si) {
                Some(d) => d,
                None => segments[si].deleted(),
            }
        };
        let groups = plan(
            &self.compaction_policy(),
            &segments
                .iter()
                .enumerate()
                .map(|(si, s)| (s.doc_ids().len() as u64, deleted_of(si).len() as u64))
                .collect::<Vec<_>>(),
            change.full,
        );
        let mut in_group = vec![false; segments.len()];
        for g in &groups {
            for &si in g {
                in_group[si] = true;
            }
        }
        let dir = self.dir().to_path_buf();
        let mut commit = Commit::begin(&dir, snap.manifest());
        if let Some(cb) = &change.grown {
            commit.extend_codebook(cb)?;
        }
        let num_centroids = commit.manifest().num_centroids as usize;
        for (si, s) in segments.iter().enumerate() {
            let id = s.entry().id;
            let dead = deleted_of(si);
            if dead.len() == s.doc_ids().len() {
                commit.remove_segment(id)?;
            } else if !in_group[si] && change.deleted.contains_key(&si) {
                commit.set_deleted(id, dead)?;
            }
        }
        for g in &groups {
            let members: Vec<(usize, &[u32])> = g.iter().map(|&si| (si, deleted_of(si))).collect();
            let merged = merge(snap, &members, num_centroids)?;
            for &si in g {
                if deleted_of(si).len() != segments[si].doc_ids().len() {
                    commit.remove_segment(segments[si].entry().id)?;
                }
            }
            if let Some(m) = merged {
                commit.add_segment(&m)?;
            }
        }
        if let Some(seg) = &change.new_segment {
            commit.add_segment(seg)?;
        }
        self.finish(commit)
    }

    /// Commits, makes the new generation current, and removes the files it
    /// no longer lists.
    fn finish(&self, commit: Commit<'_>) -> Result<std::sync::Arc<Snapshot>, Error> {
        let (_, obsolete) = commit.finish()?;
        let current = self.publish_current()?;
        // Old snapshots of this process keep their maps of removed files
        // (Unix unlink semantics); a failure leaves files the next writer
        // removes.
        let _ = remove_files(self.dir(), &obsolete);
        Ok(current)
    }

    /// Retrains the codebook from the decompressed vectors of the live
    /// documents (k-means and quantiser as [`Index::create`] does, with
    /// `config`) and re-encodes them into one segment, in one commit. Ids do
    /// not change. Use it when documents added since the index was created
    /// no longer resemble the ones its codebook was trained on.
    ///
    /// # Errors
    /// [`Error::NoDocuments`] when no document is live, bad configuration, a
    /// lock held by another writer, or IO failures. Nothing is committed on
    /// error.
    pub fn rebuild(&self, config: &IndexConfig) -> Result<(), Error> {
        config.validate()?;
        let _guard = self.writer()?;
        let snap = self.snapshot();
        let ids = snap.doc_ids();
        if ids.is_empty() {
            return Err(Error::NoDocuments);
        }
        let (codebook, mut segment) = {
            let mats = snap.reconstruct(&ids)?;
            let views: Vec<ndarray::ArrayView2<'_, f32>> = mats.iter().map(|m| m.view()).collect();
            let flat = Documents::Views(&views).flatten(Some(snap.dim()))?;
            build_segment(&flat, config, &mut |_| {})?
        };
        segment.doc_ids = ids.iter().map(|d| d.as_u32()).collect();
        let dir = self.dir().to_path_buf();
        let mut commit = Commit::begin(&dir, snap.manifest());
        for s in snap.segments() {
            commit.remove_segment(s.entry().id)?;
        }
        commit.replace_codebook(&codebook)?;
        commit.add_segment(&segment)?;
        self.finish(commit)?;
        let _ = self.follow_commit(snap.generation(), &[]);
        Ok(())
    }
}

/// Groups of segment positions to rewrite into one new segment each, given
/// each segment's `(stored, deleted)` documents after the change.
fn plan(policy: &CompactionPolicy, segs: &[(u64, u64)], full: bool) -> Vec<Vec<usize>> {
    // Segments that survive the change (fully deleted ones are dropped).
    let alive: Vec<usize> = (0..segs.len()).filter(|&i| segs[i].1 < segs[i].0).collect();
    if full {
        return if alive.is_empty() {
            Vec::new()
        } else {
            vec![alive]
        };
    }
    // Units of neighbouring segments; each starts as one segment.
    let mut units: Vec<Vec<usize>> = alive.iter().map(|&i| vec![i]).collect();
    let live = |u: &Vec<usize>| -> u64 { u.iter().map(|&i| segs[i].0 - segs[i].1).sum() };
    while units.len() > policy.max_segments.max(1) {
        let best = (0..units.len() - 1)
            .min_by_key(|&j| live(&units[j]) + live(&units[j + 1]))
            .unwrap_or(0);
        let next = units.remove(best + 1);
        units[best].extend(next);
    }
    units
        .into_iter()
        .filter(|u| {
            u.len() > 1
                || u.iter().any(|&i| {
                    let (n, d) = segs[i];
                    d > 0 && d as f64 >= policy.max_dead_fraction * n as f64
                })
        })
        .collect()
}

/// The live documents of `members` (segment position, its deleted local
/// indices) as one new segment, in ascending id order; `None` when none is
/// live.
fn merge(
    snap: &Snapshot,
    members: &[(usize, &[u32])],
    num_centroids: usize,
) -> Result<Option<SegmentData>, Error> {
    let segments = snap.segments();
    let packed_len = snap.codebook().nbits().packed_len(snap.dim());
    // (id, member, local) of every live document.
    let mut docs: Vec<(u32, usize, usize)> = Vec::new();
    for (m, &(si, dead)) in members.iter().enumerate() {
        let mut dead = dead.iter().peekable();
        for (local, &id) in segments[si].doc_ids().iter().enumerate() {
            if dead.peek().is_some_and(|&&d| d as usize == local) {
                dead.next();
                continue;
            }
            docs.push((id, m, local));
        }
    }
    if docs.is_empty() {
        return Ok(None);
    }
    docs.sort_unstable();
    let mut doc_ids = Vec::with_capacity(docs.len());
    let mut doclens = Vec::with_capacity(docs.len());
    let mut codes: Vec<u32> = Vec::new();
    let mut residuals: Vec<u8> = Vec::new();
    let stored: Vec<(StoredCodes<'_>, &[u8])> = members
        .iter()
        .map(|&(si, _)| Ok((segments[si].codes()?, segments[si].residuals()?)))
        .collect::<Result<_, Error>>()?;
    for &(id, m, local) in &docs {
        let seg = &segments[members[m].0];
        let offs = seg.doc_offsets();
        let (start, end) = (offs[local] as usize, offs[local + 1] as usize);
        let (c, r) = &stored[m];
        match c {
            StoredCodes::U16(c) => codes.extend(c[start..end].iter().map(|&v| u32::from(v))),
            StoredCodes::U32(c) => codes.extend_from_slice(&c[start..end]),
        }
        residuals.extend_from_slice(&r[start * packed_len..end * packed_len]);
        doc_ids.push(id);
        doclens.push((end - start) as u32);
    }
    Ok(Some(SegmentData {
        doc_ids,
        doclens,
        codes: CodesBuf::for_codebook(codes, num_centroids),
        residuals,
    }))
}
