//! Paged trees: the chunk index, the catalog and the name index are static B+trees
//! built bottom-up by the writer. Leaves hold records in order; each internal record
//! holds the first key of a child page and the child's [`PageRef`] (with its hash),
//! so the directory's three roots cover every page.

use crate::bytes::{Cursor, PutLe};
use crate::error::{Error, Result};
use crate::layout::{
    CATALOG_INTERNAL_LEN, CHUNK_INTERNAL_LEN, CHUNK_RECORD_LEN, ChunkRecord, ENTRY_FIXED_LEN,
    Entry, MAX_NAME_LEN, MAX_TREE_DEPTH, PAGE_HEADER_LEN, PAGE_REF_LEN, PageHeader, PageKind,
    PageRef, TreeRoot,
};

/// Which tree a builder or decoder works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeKind {
    Chunks,
    Catalog,
    Names,
}

impl TreeKind {
    fn leaf(self) -> PageKind {
        match self {
            Self::Chunks => PageKind::ChunkLeaf,
            Self::Catalog => PageKind::CatalogLeaf,
            Self::Names => PageKind::NameLeaf,
        }
    }

    fn internal(self) -> PageKind {
        match self {
            Self::Chunks => PageKind::ChunkInternal,
            Self::Catalog => PageKind::CatalogInternal,
            Self::Names => PageKind::NameInternal,
        }
    }

    pub(crate) fn what(self) -> &'static str {
        match self {
            Self::Chunks => "chunk-index page",
            Self::Catalog => "catalog page",
            Self::Names => "name-index page",
        }
    }

    /// The tree's name in messages.
    pub(crate) fn tree_name(self) -> &'static str {
        match self {
            Self::Chunks => "chunk index",
            Self::Catalog => "catalog",
            Self::Names => "name index",
        }
    }
}

/// The first key of a page, as stored in its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// Logical offset of the first chunk.
    Chunk(u64),
    /// First entry id and its stream offset.
    Catalog { id: u64, offset: u64 },
    /// First name.
    Name(String),
}

impl Key {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Key::Chunk(offset) => out.put_u64(*offset),
            Key::Catalog { id, offset } => {
                out.put_u64(*id);
                out.put_u64(*offset);
            }
            Key::Name(name) => {
                out.put_u16(name.len() as u16);
                out.extend_from_slice(name.as_bytes());
            }
        }
    }
}

/// Writes pages somewhere and returns where. The writer implements it over the
/// archive file (compressing each page with the archive codec).
pub(crate) trait PageSink {
    fn write_page(&mut self, what: &'static str, raw: &[u8]) -> Result<PageRef>;

    /// Write leaf number `ordinal` (from 0) of a `kind` tree. A thin child's sink
    /// may store it as a delta against its parent's leaf of that ordinal.
    fn write_leaf(&mut self, kind: TreeKind, _ordinal: usize, raw: &[u8]) -> Result<PageRef> {
        self.write_page(kind.what(), raw)
    }
}

/// Builds one tree bottom-up. Leaf records are appended in key order; a full leaf is
/// written at once, so memory holds one leaf plus the (small) upper levels.
#[derive(Debug)]
pub(crate) struct TreeBuilder {
    kind: TreeKind,
    page_target: usize,
    leaf: Vec<u8>,
    leaf_count: u32,
    leaf_first: Option<Key>,
    total: u64,
    /// (first key, page, ordinal of its first leaf record) for each written leaf.
    children: Vec<(Key, PageRef, u64)>,
}

impl TreeBuilder {
    pub(crate) fn new(kind: TreeKind, page_target: usize) -> Self {
        Self {
            kind,
            page_target,
            leaf: Vec::new(),
            leaf_count: 0,
            leaf_first: None,
            total: 0,
            children: Vec::new(),
        }
    }

    /// Append one encoded leaf record whose key is `key`.
    pub(crate) fn push(
        &mut self,
        key: Key,
        encode: impl FnOnce(&mut Vec<u8>),
        sink: &mut dyn PageSink,
    ) -> Result<()> {
        if self.leaf_first.is_none() {
            self.leaf_first = Some(key);
            self.leaf.clear();
            self.leaf.resize(PAGE_HEADER_LEN, 0);
        }
        encode(&mut self.leaf);
        self.leaf_count += 1;
        self.total += 1;
        if self.leaf.len() >= self.page_target {
            self.flush_leaf(sink)?;
        }
        Ok(())
    }

    fn flush_leaf(&mut self, sink: &mut dyn PageSink) -> Result<()> {
        let Some(first_key) = self.leaf_first.take() else {
            return Ok(());
        };
        let first = self.total - u64::from(self.leaf_count);
        let mut header = Vec::with_capacity(PAGE_HEADER_LEN);
        PageHeader {
            kind: self.kind.leaf(),
            level: 0,
            count: self.leaf_count,
            first,
        }
        .encode(&mut header);
        self.leaf[..PAGE_HEADER_LEN].copy_from_slice(&header);
        let page = sink.write_leaf(self.kind, self.children.len(), &self.leaf)?;
        self.children.push((first_key, page, first));
        self.leaf_count = 0;
        Ok(())
    }

    /// Write the remaining leaf and every internal level; return the root.
    pub(crate) fn finish(mut self, sink: &mut dyn PageSink) -> Result<TreeRoot> {
        self.flush_leaf(sink)?;
        if self.children.is_empty() {
            return Ok(TreeRoot::default());
        }
        let mut level = self.children;
        let mut depth = 1u8;
        while level.len() > 1 {
            let mut next = Vec::new();
            let mut page = Vec::new();
            let mut count = 0u32;
            let mut first: Option<(Key, u64)> = None;
            let mut flush = |page: &mut Vec<u8>,
                             count: &mut u32,
                             first: &mut Option<(Key, u64)>,
                             next: &mut Vec<(Key, PageRef, u64)>|
             -> Result<()> {
                if let Some((key, ordinal)) = first.take() {
                    let mut header = Vec::with_capacity(PAGE_HEADER_LEN);
                    PageHeader {
                        kind: self.kind.internal(),
                        level: depth,
                        count: *count,
                        first: ordinal,
                    }
                    .encode(&mut header);
                    page[..PAGE_HEADER_LEN].copy_from_slice(&header);
                    let r = sink.write_page(self.kind.what(), page)?;
                    next.push((key, r, ordinal));
                    *count = 0;
                }
                Ok(())
            };
            for (key, child, ordinal) in level {
                if first.is_none() {
                    first = Some((key.clone(), ordinal));
                    page.clear();
                    page.resize(PAGE_HEADER_LEN, 0);
                }
                key.encode(&mut page);
                child.encode(&mut page);
                count += 1;
                if page.len() >= self.page_target {
                    flush(&mut page, &mut count, &mut first, &mut next)?;
                }
            }
            flush(&mut page, &mut count, &mut first, &mut next)?;
            level = next;
            depth += 1;
            if depth > MAX_TREE_DEPTH {
                return Err(Error::InvalidSetting {
                    setting: "page size",
                    detail: format!("tree deeper than {MAX_TREE_DEPTH} levels; use larger pages"),
                });
            }
        }
        let (_, root, _) = level.remove(0);
        Ok(TreeRoot {
            depth,
            count: self.total,
            root,
        })
    }
}

/// Bytes a heap allocation of `n` bytes takes (header and rounding to 16, at
/// least 32, as glibc's malloc does); 0 for none.
fn heap_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8).div_ceil(16) * 16).max(32)
    }
}

/// A decoded page.
#[derive(Debug)]
pub(crate) enum Page {
    ChunkLeaf(Vec<ChunkRecord>),
    CatalogLeaf(Vec<Entry>),
    NameLeaf(Vec<(String, u64)>),
    /// Internal page of any tree: first keys and children.
    Internal(Vec<(Key, PageRef)>),
}

impl Page {
    /// Records in the page (leaf records, or children of an internal page).
    pub(crate) fn records(&self) -> usize {
        match self {
            Page::ChunkLeaf(v) => v.len(),
            Page::CatalogLeaf(v) => v.len(),
            Page::NameLeaf(v) => v.len(),
            Page::Internal(v) => v.len(),
        }
    }

    /// Heap size, for the cache's weigher: the records and every string they
    /// own, each allocation counted as the allocator rounds it (so that the
    /// page cache's budget is what it holds, even for pages of short names).
    pub(crate) fn weight(&self) -> u64 {
        use std::mem::size_of;
        let n = match self {
            Page::ChunkLeaf(v) => v.len() * size_of::<ChunkRecord>(),
            Page::CatalogLeaf(v) => v
                .iter()
                .map(|e| {
                    size_of::<Entry>()
                        + heap_len(e.name.len())
                        + heap_len(e.target.as_ref().map_or(0, String::len))
                        + heap_len(e.columns.len())
                })
                .sum(),
            Page::NameLeaf(v) => v
                .iter()
                .map(|(n, _)| size_of::<(String, u64)>() + heap_len(n.len()))
                .sum(),
            Page::Internal(v) => v
                .iter()
                .map(|(k, _)| {
                    size_of::<(Key, PageRef)>()
                        + match k {
                            Key::Name(n) => heap_len(n.len()),
                            _ => 0,
                        }
                })
                .sum(),
        };
        (heap_len(n) + size_of::<Page>()) as u64
    }
}

/// Decode page `raw` (stored at `offset`) expected at `level` of a `kind` tree.
/// `expected_first` is the ordinal the parent says this page starts at.
pub(crate) fn decode_page(
    raw: &[u8],
    offset: u64,
    kind: TreeKind,
    level: u8,
    expected_first: Option<u64>,
) -> Result<Page> {
    let what = kind.what();
    let mut c = Cursor::new(raw, what, offset);
    let header = PageHeader::decode(&mut c)?;
    let want = if level == 0 {
        kind.leaf()
    } else {
        kind.internal()
    };
    if header.kind != want || header.level != level {
        return Err(Error::Corrupt {
            what,
            offset,
            detail: format!(
                "expected a {want:?} page at level {level}, found {:?} at level {}",
                header.kind, header.level
            ),
        });
    }
    if let Some(first) = expected_first
        && header.first != first
    {
        return Err(Error::Corrupt {
            what,
            offset,
            detail: format!(
                "page starts at record {} but its parent says {first}",
                header.first
            ),
        });
    }
    let count = header.count as usize;
    let min_record = match (kind, level) {
        (TreeKind::Chunks, 0) => CHUNK_RECORD_LEN,
        (TreeKind::Catalog, 0) => ENTRY_FIXED_LEN + 1,
        (TreeKind::Names, 0) => 2 + 1 + 8,
        (TreeKind::Chunks, _) => CHUNK_INTERNAL_LEN,
        (TreeKind::Catalog, _) => CATALOG_INTERNAL_LEN,
        (TreeKind::Names, _) => 2 + 1 + PAGE_REF_LEN,
    };
    if count > c.remaining() / min_record {
        return Err(Error::LimitExceeded {
            what: "page record count",
            offset,
            value: count as u64,
            limit: (c.remaining() / min_record) as u64,
        });
    }
    let page = if level == 0 {
        match kind {
            TreeKind::Chunks => {
                let mut v: Vec<ChunkRecord> = Vec::with_capacity(count);
                for _ in 0..count {
                    let r = ChunkRecord::decode(&mut c)?;
                    if let Some(prev) = v.last()
                        && prev.logical_end() != r.logical_offset
                    {
                        return Err(c.corrupt("chunk records are not contiguous"));
                    }
                    v.push(r);
                }
                Page::ChunkLeaf(v)
            }
            TreeKind::Catalog => {
                let mut v: Vec<Entry> = Vec::with_capacity(count);
                for i in 0..count {
                    let e = Entry::decode(&mut c, header.first + i as u64)?;
                    if let Some(prev) = v.last()
                        && e.offset < prev.offset + prev.size
                    {
                        return Err(c.corrupt("entries overlap in the stream"));
                    }
                    v.push(e);
                }
                Page::CatalogLeaf(v)
            }
            TreeKind::Names => {
                let mut v: Vec<(String, u64)> = Vec::with_capacity(count);
                for _ in 0..count {
                    let name = decode_name(&mut c)?;
                    let id = c.u64()?;
                    if v.last()
                        .is_some_and(|(prev, _)| prev.as_str() >= name.as_str())
                    {
                        return Err(c.corrupt("names are not in strictly increasing order"));
                    }
                    v.push((name, id));
                }
                Page::NameLeaf(v)
            }
        }
    } else {
        let mut v: Vec<(Key, PageRef)> = Vec::with_capacity(count);
        for _ in 0..count {
            let key = match kind {
                TreeKind::Chunks => Key::Chunk(c.u64()?),
                TreeKind::Catalog => Key::Catalog {
                    id: c.u64()?,
                    offset: c.u64()?,
                },
                TreeKind::Names => Key::Name(decode_name(&mut c)?),
            };
            let child = PageRef::decode(&mut c)?;
            if let Some((prev, _)) = v.last() {
                let ordered = match (prev, &key) {
                    (Key::Chunk(a), Key::Chunk(b)) => a < b,
                    (Key::Catalog { id: a, .. }, Key::Catalog { id: b, .. }) => a < b,
                    (Key::Name(a), Key::Name(b)) => a < b,
                    _ => false,
                };
                if !ordered {
                    return Err(c.corrupt("internal keys are not in increasing order"));
                }
            }
            v.push((key, child));
        }
        Page::Internal(v)
    };
    c.finish()?;
    Ok(page)
}

/// The `first` field of a page's header (bytes 8..16 of its raw bytes; 0 when
/// they are too short, which [`decode_page`] refuses).
pub(crate) fn header_first(raw: &[u8]) -> u64 {
    raw.get(8..PAGE_HEADER_LEN)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

fn decode_name(c: &mut Cursor<'_>) -> Result<String> {
    let len = c.u16()? as usize;
    if len == 0 || len > MAX_NAME_LEN {
        return Err(c.corrupt(format!("name length {len} outside 1..={MAX_NAME_LEN}")));
    }
    Ok(c.utf8(len, "name")?.to_string())
}
