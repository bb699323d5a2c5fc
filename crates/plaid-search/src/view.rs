//! Borrowed views of one index segment, as the searcher reads them.
//!
//! A segment is an immutable group of documents that shares the index's
//! codebook: per-token centroid codes and packed residuals, per-document
//! lengths and stable ids, and an inverted list from centroid to the
//! segment-local documents that hold a token of that centroid.

use crate::Error;
use plaid_codec::types::DocId;

/// Per-token centroid codes, stored in 2 bytes when the codebook has at most
/// 65,536 centroids and in 4 bytes otherwise.
#[derive(Clone, Copy, Debug)]
pub enum CodesView<'a> {
    /// Codes of a codebook with at most 65,536 centroids.
    U16(&'a [u16]),
    /// Codes of a larger codebook.
    U32(&'a [u32]),
}

impl CodesView<'_> {
    /// Number of tokens.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            CodesView::U16(c) => c.len(),
            CodesView::U32(c) => c.len(),
        }
    }

    /// Whether there are no tokens.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The code of token `i`, or `None` when out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<u32> {
        match self {
            CodesView::U16(c) => c.get(i).map(|&v| u32::from(v)),
            CodesView::U32(c) => c.get(i).copied(),
        }
    }
}

/// Inverted-list entries (segment-local document indices), stored in 2 bytes
/// when the segment has at most 65,536 documents and in 4 bytes otherwise.
#[derive(Clone, Copy, Debug)]
pub enum IvfView<'a> {
    /// Entries of a segment with at most 65,536 documents.
    U16(&'a [u16]),
    /// Entries of a larger segment.
    U32(&'a [u32]),
}

impl<'a> IvfView<'a> {
    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            IvfView::U16(v) => v.len(),
            IvfView::U32(v) => v.len(),
        }
    }

    /// Whether there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries `range`, or an empty view when out of range.
    #[inline]
    fn slice(&self, range: std::ops::Range<usize>) -> IvfView<'a> {
        match self {
            IvfView::U16(v) => IvfView::U16(v.get(range).unwrap_or(&[])),
            IvfView::U32(v) => IvfView::U32(v.get(range).unwrap_or(&[])),
        }
    }

    /// Calls `f` with every entry, widened.
    #[inline]
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            IvfView::U16(v) => v.iter().for_each(|&d| f(u32::from(d))),
            IvfView::U32(v) => v.iter().for_each(|&d| f(d)),
        }
    }
}

/// Everything the searcher needs from one segment, borrowed.
///
/// Build it with [`SegmentView::try_new`], which checks every length and
/// offset in time proportional to the number of documents and centroids.
/// It does not read the per-token arrays: codes and inverted-list entries are
/// range-checked when a search reads them, so a damaged segment yields an
/// error instead of a panic.
#[derive(Clone, Copy, Debug)]
pub struct SegmentView<'a> {
    pub(crate) doc_ids: &'a [u32],
    pub(crate) doc_offsets: &'a [u64],
    pub(crate) codes: CodesView<'a>,
    pub(crate) residuals: &'a [u8],
    pub(crate) ivf_offsets: &'a [u64],
    pub(crate) ivf: IvfView<'a>,
    pub(crate) live: Option<&'a [u64]>,
    pub(crate) packed_len: usize,
}

/// The arrays of one segment, before validation.
#[derive(Clone, Copy, Debug)]
pub struct SegmentParts<'a> {
    /// Stable id of each segment-local document.
    pub doc_ids: &'a [u32],
    /// Token offsets: document `i` owns tokens `doc_offsets[i]..doc_offsets[i+1]`
    /// (length `num_docs + 1`, starting at 0).
    pub doc_offsets: &'a [u64],
    /// Centroid code of each token.
    pub codes: CodesView<'a>,
    /// Packed residuals, `num_tokens × packed_len` bytes.
    pub residuals: &'a [u8],
    /// Inverted-list offsets, length `num_centroids + 1`.
    pub ivf_offsets: &'a [u64],
    /// Concatenated inverted lists of segment-local document indices, each list ascending.
    pub ivf: IvfView<'a>,
    /// Optional bitmap of live documents (bit `i` of word `i / 64` set = live).
    /// `None` means every document is live.
    pub live: Option<&'a [u64]>,
}

impl<'a> SegmentView<'a> {
    /// Validates the lengths and offsets of `parts` against a codebook of
    /// `num_centroids` centroids with residual rows of `packed_len` bytes.
    /// `segment` is only used to name the segment in errors.
    ///
    /// # Errors
    /// [`Error::SegmentShape`], [`Error::BadOffsets`] or [`Error::ResidualWidth`]
    /// naming the first inconsistency.
    pub fn try_new(
        parts: SegmentParts<'a>,
        num_centroids: usize,
        packed_len: usize,
        segment: usize,
    ) -> Result<Self, Error> {
        let num_docs = parts.doc_ids.len();
        let shape = |what, expected, found| Error::SegmentShape {
            segment,
            what,
            expected,
            found,
        };
        if parts.doc_offsets.len() != num_docs + 1 {
            return Err(shape("doc_offsets", num_docs + 1, parts.doc_offsets.len()));
        }
        check_offsets(parts.doc_offsets, parts.codes.len(), segment, "document")?;
        if let Some(i) = parts.doc_ids.windows(2).position(|w| w[1] <= w[0]) {
            return Err(Error::UnsortedDocIds { segment, at: i + 1 });
        }
        if packed_len == 0 {
            return Err(Error::ResidualWidth {
                segment,
                expected: 1,
                found: 0,
            });
        }
        let expected_res = parts.codes.len().checked_mul(packed_len);
        if expected_res != Some(parts.residuals.len()) {
            return Err(Error::ResidualWidth {
                segment,
                expected: packed_len,
                found: parts.residuals.len() / parts.codes.len().max(1),
            });
        }
        if parts.ivf_offsets.len() != num_centroids + 1 {
            return Err(shape(
                "ivf_offsets",
                num_centroids + 1,
                parts.ivf_offsets.len(),
            ));
        }
        check_offsets(parts.ivf_offsets, parts.ivf.len(), segment, "inverted-list")?;
        if let Some(live) = parts.live {
            let words = num_docs.div_ceil(64);
            if live.len() != words {
                return Err(shape("live bitmap", words, live.len()));
            }
        }
        if let CodesView::U16(_) = parts.codes
            && num_centroids > usize::from(u16::MAX) + 1
        {
            return Err(shape(
                "u16 code range",
                usize::from(u16::MAX) + 1,
                num_centroids,
            ));
        }
        Ok(Self {
            doc_ids: parts.doc_ids,
            doc_offsets: parts.doc_offsets,
            codes: parts.codes,
            residuals: parts.residuals,
            ivf_offsets: parts.ivf_offsets,
            ivf: parts.ivf,
            live: parts.live,
            packed_len,
        })
    }

    /// Stable ids of the stored documents, ascending.
    pub fn doc_ids(&self) -> &'a [u32] {
        self.doc_ids
    }

    /// Token offsets: document `i` holds tokens `doc_offsets[i]..doc_offsets[i + 1]`.
    pub fn doc_offsets(&self) -> &'a [u64] {
        self.doc_offsets
    }

    /// Centroid code of every token.
    pub fn codes(&self) -> CodesView<'a> {
        self.codes
    }

    /// Packed residual rows of every token, row-major.
    pub fn residuals(&self) -> &'a [u8] {
        self.residuals
    }

    /// Number of documents stored in the segment (live or not).
    #[inline]
    pub fn num_docs(&self) -> usize {
        self.doc_ids.len()
    }

    /// Number of tokens stored in the segment.
    #[inline]
    pub fn num_tokens(&self) -> usize {
        self.codes.len()
    }

    /// Whether segment-local document `local` is live.
    #[inline]
    pub fn is_live(&self, local: usize) -> bool {
        match self.live {
            None => local < self.doc_ids.len(),
            Some(bits) => bits
                .get(local / 64)
                .is_some_and(|w| (w >> (local % 64)) & 1 == 1),
        }
    }

    /// The stable id of segment-local document `local`.
    #[inline]
    pub fn doc_id(&self, local: usize) -> Option<DocId> {
        self.doc_ids.get(local).map(|&d| DocId::new(d))
    }

    /// Token range of segment-local document `local`.
    #[inline]
    pub(crate) fn token_range(&self, local: usize) -> std::ops::Range<usize> {
        // try_new checked that offsets are monotone and end at num_tokens,
        // so these conversions and indexes are in range for local < num_docs.
        let start = self.doc_offsets[local] as usize;
        let end = self.doc_offsets[local + 1] as usize;
        start..end
    }

    /// The inverted list of `centroid`.
    #[inline]
    pub(crate) fn ivf_list(&self, centroid: usize) -> IvfView<'a> {
        match (
            self.ivf_offsets.get(centroid),
            self.ivf_offsets.get(centroid + 1),
        ) {
            (Some(&s), Some(&e)) => self.ivf.slice(s as usize..e as usize),
            _ => self.ivf.slice(0..0),
        }
    }

    /// The stored residual bytes of token `t`.
    #[inline]
    pub(crate) fn residual(&self, t: usize) -> &'a [u8] {
        &self.residuals[t * self.packed_len..(t + 1) * self.packed_len]
    }
}

fn check_offsets(
    offsets: &[u64],
    total: usize,
    segment: usize,
    what: &'static str,
) -> Result<(), Error> {
    let bad = |at| Error::BadOffsets { segment, what, at };
    if offsets.first() != Some(&0) {
        return Err(bad(0));
    }
    for (i, w) in offsets.windows(2).enumerate() {
        if w[1] < w[0] {
            return Err(bad(i + 1));
        }
    }
    if offsets.last().map(|&l| l as usize) != Some(total) {
        return Err(bad(offsets.len().saturating_sub(1)));
    }
    Ok(())
}
