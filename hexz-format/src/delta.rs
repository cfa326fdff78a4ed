//! Delta pages: a thin child's index leaves compressed against its parent's.
//!
//! Consecutive versions of a tree list mostly the same names, modes and chunk ids,
//! so the *n*-th leaf of a child's catalog (name index, chunk index) is most of
//! the *n*-th leaf of its parent's. A thin child's writer compresses each leaf
//! twice — alone, and with the parent's leaf of the same tree and ordinal as a
//! raw-content dictionary ([`Compressor::compress_with_base`]) — and keeps the
//! delta when it is smaller by more than its record. Such a page ref has the flag
//! [`BLOB_DELTA`]; the child's **page-bases section** (kind
//! [`SECTION_PAGE_BASES`], critical) says, for each delta page, which parent page
//! is its base:
//!
//! ```text
//! page-bases section (raw bytes; compressed like any section)
//! 0   4   u32   record count n (≥ 1)
//! 4   4   –     reserved, zero
//! 8   …   record[n], by strictly increasing page offset
//!
//! record (72 bytes)
//! 0   8   u64   archive offset of the delta page in this archive
//! 8   2   u16   source: 1-based position of the base's archive in the parents list
//! 10  6   –     reserved, zero
//! 16  56  page ref of the base page in that archive (never a delta itself)
//! ```
//!
//! A base is always a page stored whole: when the parent's leaf is itself a delta,
//! the child takes that leaf's base (one generation further up), so decoding any
//! page costs at most one extra page read, whatever the depth of the chain. The
//! base is loaded and checked by the archive that stores it (CRC32 and BLAKE3 of
//! the base page ref recorded here, which the child's root hash covers), then the
//! delta is decoded by the child's codec. Writers only ever delta leaves; readers
//! accept the flag on any index page with a record, never on a section.
//!
//! [`Compressor::compress_with_base`]: crate::codec::Compressor::compress_with_base

use std::sync::Arc;

use crate::bytes::{Cursor, PutLe};
use crate::crypto::BlobRole;
use crate::error::{Error, Result};
use crate::layout::{BLOB_DELTA, MAX_PAGE_LEN, PageRef, SECTION_PAGE_BASES, TreeRoot};
use crate::page::{Page, TreeKind, decode_page};
use crate::parents::MAX_PARENTS;
use crate::reader::{Archive, Inner};

/// Bytes per page-bases record.
pub const PAGE_BASE_RECORD_LEN: usize = 72;

/// One delta page and its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBase {
    /// Archive offset of the delta page (in the archive holding this record).
    pub offset: u64,
    /// 1-based position of the base's archive in the parents list.
    pub source: u16,
    /// The base page in that archive.
    pub base: PageRef,
}

/// Encode a page-bases section (layout in the module docs); `list` sorted by offset.
pub fn encode_page_bases(list: &[PageBase]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + list.len() * PAGE_BASE_RECORD_LEN);
    out.put_u32(list.len() as u32);
    out.put_zeros(4);
    for r in list {
        out.put_u64(r.offset);
        out.put_u16(r.source);
        out.put_zeros(6);
        r.base.encode(&mut out);
    }
    out
}

/// Decode a page-bases section; `offset` is the section blob's archive offset (for
/// errors). Checks every rule of the layout; the count is bounded by the bytes
/// present before anything is allocated.
pub fn decode_page_bases(bytes: &[u8], offset: u64) -> Result<Vec<PageBase>> {
    let mut c = Cursor::new(bytes, "page-bases section", offset);
    let count = c.u32()? as usize;
    c.reserved(4)?;
    if count == 0 || count > c.remaining() / PAGE_BASE_RECORD_LEN {
        return Err(c.corrupt(format!(
            "{count} records do not fit in {} bytes (at least one)",
            c.remaining()
        )));
    }
    let mut list: Vec<PageBase> = Vec::with_capacity(count);
    for _ in 0..count {
        let page_offset = c.u64()?;
        let source = c.u16()?;
        c.reserved(6)?;
        let base = PageRef::decode(&mut c)?;
        if source == 0 || usize::from(source) > MAX_PARENTS {
            return Err(c.corrupt(format!("base source {source}: a parent (1..)")));
        }
        if base.flags & BLOB_DELTA != 0 {
            return Err(c.corrupt("a base page is itself a delta"));
        }
        if list.last().is_some_and(|p| p.offset >= page_offset) {
            return Err(c.corrupt("records not in increasing page offset"));
        }
        list.push(PageBase {
            offset: page_offset,
            source,
            base,
        });
    }
    c.finish()?;
    Ok(list)
}

/// The writer's side: for each tree of the direct parent, leaf by leaf, the page a
/// child's leaf of the same ordinal is compressed against (source, page ref), and
/// the chain's archives to load them from.
#[derive(Debug, Clone, Default)]
pub(crate) struct BaseCandidates {
    /// The chain, nearest first (index = source − 1).
    archives: Vec<Archive>,
    /// Per tree (chunks, catalog, names): the bases, by leaf ordinal.
    trees: [Vec<(u16, PageRef)>; 3],
}

fn tree_index(kind: TreeKind) -> usize {
    match kind {
        TreeKind::Chunks => 0,
        TreeKind::Catalog => 1,
        TreeKind::Names => 2,
    }
}

impl BaseCandidates {
    /// Bases from `chain[0]`'s leaves (`chain` nearest first, as the child will list
    /// it). A parent leaf that is a delta gives its own base, one source further
    /// up, when the parent's parents list is the rest of `chain`; otherwise that
    /// ordinal gets no base.
    pub(crate) fn from_chain(chain: &[Archive]) -> Result<Self> {
        let Some(parent) = chain.first() else {
            return Ok(Self::default());
        };
        let inner = &parent.inner;
        let dir = &inner.directory;
        let own = inner.parents.page_bases(inner)?;
        let grand: Vec<_> = if own.is_empty() {
            Vec::new()
        } else {
            parent.parents()?
        };
        let chain_agrees = grand.len() + 1 == chain.len()
            && grand
                .iter()
                .zip(&chain[1..])
                .all(|(p, a)| p.root_hash == a.root_hash());
        let mut trees: [Vec<(u16, PageRef)>; 3] = Default::default();
        for (i, (tree, kind)) in [
            (&dir.chunk_tree, TreeKind::Chunks),
            (&dir.catalog_tree, TreeKind::Catalog),
            (&dir.name_tree, TreeKind::Names),
        ]
        .into_iter()
        .enumerate()
        {
            for leaf in leaf_refs(inner, tree, kind)? {
                if leaf.flags & BLOB_DELTA == 0 {
                    trees[i].push((1, leaf));
                    continue;
                }
                let found = own
                    .binary_search_by_key(&leaf.offset, |b| b.offset)
                    .ok()
                    .map(|k| own[k]);
                match found {
                    Some(b) if chain_agrees && usize::from(b.source) < chain.len() => {
                        trees[i].push((b.source + 1, b.base));
                    }
                    // No usable base for this ordinal: an impossible source (a
                    // page ref of length 0 is never a base, see `base`).
                    _ => trees[i].push((0, PageRef::default())),
                }
            }
        }
        Ok(Self {
            archives: chain.to_vec(),
            trees,
        })
    }

    /// The base for leaf `ordinal` of `kind`, if the parent has one.
    pub(crate) fn base(&self, kind: TreeKind, ordinal: usize) -> Option<(u16, PageRef)> {
        self.trees[tree_index(kind)]
            .get(ordinal)
            .copied()
            .filter(|(source, _)| *source >= 1)
    }

    /// The raw bytes of base page `r` of parent `source`.
    pub(crate) fn load(&self, source: u16, r: &PageRef) -> Result<Vec<u8>> {
        let archive = usize::from(source)
            .checked_sub(1)
            .and_then(|i| self.archives.get(i))
            .ok_or_else(|| Error::InvalidSetting {
                setting: "parents",
                detail: format!("delta base in parent {source}, outside the chain"),
            })?;
        archive
            .inner
            .load_blob(r, "delta base page", BlobRole::Page)
    }
}

/// The leaf page refs of `tree`, in key order (reads its internal pages).
fn leaf_refs(inner: &Inner, tree: &TreeRoot, kind: TreeKind) -> Result<Vec<PageRef>> {
    Ok(tree_levels(inner, tree, kind)?.pop().unwrap_or_default())
}

/// The page refs of `tree`, a level at a time from the root's (each in key
/// order; the last level is the leaves'): its internal pages are read, its
/// leaves are not. Empty for an empty tree.
pub(crate) fn tree_levels(
    inner: &Inner,
    tree: &TreeRoot,
    kind: TreeKind,
) -> Result<Vec<Vec<PageRef>>> {
    if tree.depth == 0 {
        return Ok(Vec::new());
    }
    let mut levels = vec![vec![tree.root]];
    for depth in (1..tree.depth).rev() {
        let mut next = Vec::new();
        for r in levels.last().into_iter().flatten() {
            let raw = inner.load_blob(r, kind.what(), BlobRole::Page)?;
            if let Page::Internal(children) = decode_page(&raw, r.offset, kind, depth, None)? {
                next.extend(children.iter().map(|(_, child)| *child));
            }
        }
        levels.push(next);
    }
    Ok(levels)
}

impl Inner {
    /// Decode the delta page `r` whose stored bytes (opened) are `stored`: find its
    /// record in the page-bases section, load the base from its parent (checked
    /// there), and decode with this archive's codec.
    pub(crate) fn decode_delta(
        &self,
        r: &PageRef,
        stored: Vec<u8>,
        what: &'static str,
        role: BlobRole,
    ) -> Result<Vec<u8>> {
        let corrupt = |detail: String| Error::Corrupt {
            what,
            offset: r.offset,
            detail,
        };
        if role != BlobRole::Page {
            return Err(corrupt("only index pages can be deltas".into()));
        }
        let bases = self.parents.page_bases(self)?;
        let record = bases
            .binary_search_by_key(&r.offset, |b| b.offset)
            .ok()
            .map(|k| bases[k])
            .ok_or_else(|| {
                corrupt("a delta page without a record in the page-bases section".into())
            })?;
        let parent = self.parents.parent(self, record.source)?;
        let base = parent
            .inner
            .load_blob(&record.base, "delta base page", BlobRole::Page)?;
        if r.raw_len > MAX_PAGE_LEN {
            return Err(corrupt(format!("raw length {} too large", r.raw_len)));
        }
        self.decode_blob(stored, false, Some(&base), r.raw_len, what, r.offset)
    }

    /// The page-bases section, decoded (empty when the archive has none).
    pub(crate) fn load_page_bases(&self) -> Result<Vec<PageBase>> {
        match self
            .directory
            .sections
            .iter()
            .find(|s| s.kind == SECTION_PAGE_BASES)
        {
            Some(s) => decode_page_bases(
                &self.load_blob(&s.page, "page-bases section", BlobRole::Section)?,
                s.page.offset,
            ),
            None => Ok(Vec::new()),
        }
    }
}

/// Shared, decoded page bases.
pub(crate) type PageBases = Arc<Vec<PageBase>>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Vec<PageBase> {
        vec![
            PageBase {
                offset: 100,
                source: 1,
                base: PageRef {
                    offset: 16,
                    stored_len: 30,
                    raw_len: 60,
                    crc: 7,
                    flags: 0,
                    hash: [9; 32],
                },
            },
            PageBase {
                offset: 200,
                source: 2,
                base: PageRef {
                    offset: 46,
                    stored_len: 40,
                    raw_len: 40,
                    crc: 8,
                    flags: 1,
                    hash: [3; 32],
                },
            },
        ]
    }

    #[test]
    fn section_round_trips_with_the_documented_layout() {
        let bytes = encode_page_bases(&sample());
        assert_eq!(bytes.len(), 8 + 2 * PAGE_BASE_RECORD_LEN);
        assert_eq!(&bytes[0..8], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &100u64.to_le_bytes());
        assert_eq!(&bytes[16..18], &1u16.to_le_bytes());
        assert_eq!(&bytes[18..24], &[0; 6]);
        assert_eq!(&bytes[24..32], &16u64.to_le_bytes());
        assert_eq!(&bytes[48..80], &[9; 32]);
        assert_eq!(decode_page_bases(&bytes, 0).unwrap(), sample());
    }

    #[test]
    fn malformed_sections_are_corrupt() {
        let good = encode_page_bases(&sample());
        let corrupt = |b: &[u8]| decode_page_bases(b, 0).unwrap_err().is_corruption();
        assert!(corrupt(&[0; 8]));
        assert!(corrupt(&good[..good.len() - 1]));
        let mut long = good.clone();
        long.push(0);
        assert!(corrupt(&long));
        let mut b = good.clone();
        b[4] = 1; // reserved
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[16] = 0; // source 0
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[18] = 1; // reserved
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[24 + 20] = BLOB_DELTA; // a base that is a delta
        assert!(corrupt(&b));
        let mut b = good;
        b[80..88].copy_from_slice(&100u64.to_le_bytes()); // offsets not increasing
        assert!(corrupt(&b));
    }
}
