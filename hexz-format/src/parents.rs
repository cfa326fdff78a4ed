//! Thin snapshots: an archive whose chunks may live in its parent archives.
//!
//! A *thin child* stores only the chunks its parent chain lacks. Its chunk records
//! say where each blob is: `source` 0 is the child itself, `source` *k* ≥ 1 is the
//! *k*-th entry of the child's **parents section** (section kind
//! [`SECTION_PARENTS`], critical). That list is flattened: it names every ancestor,
//! nearest first (`parents[0]` is the direct parent, `parents[i + 1]` the direct
//! parent of `parents[i]`), each by root hash plus a location hint, and a record
//! always points at the ancestor that physically stores the blob — one hop, whatever
//! the depth of the chain.
//!
//! ```text
//! parents section (raw bytes; compressed like any section)
//! 0   4   u32   parent count n (1..=65535)
//! 4   4   –     reserved, zero
//! 8   …   parent[n], back to back
//!
//! parent record (64 + L bytes)
//! 0   32  bytes root hash of the parent (BLAKE3 of its directory)
//! 32  8   u64   archive size in bytes when the child was built (informational)
//! 40  8   u64   chunk records of the child with source = this parent
//! 48  8   u64   raw bytes of those records
//! 56  2   u16   hint length L (1..=4096)
//! 58  6   –     reserved, zero
//! 64  L   UTF-8 location hint: a URL, an absolute path, or a path relative to the
//!               child's own location (its folder, or its URL's "folder")
//! ```
//!
//! Readers find a parent by [`resolve_hint`] and a [`ParentResolver`] (the pipeline
//! implements one over its transports, so hints may be paths or `s3://`/`http://`
//! URLs), and accept it only when its root hash is the recorded one: a missing or
//! different parent is an error that names it ([`Error::ParentUnavailable`],
//! [`Error::ParentMismatch`]), never zeros or other bytes. Parents are opened
//! lazily, on the first chunk read from them ([`Archive::check_parents`] opens
//! them all at once).
//!
//! Writers dedup against the chain through a [`ParentSet`]: a table, sorted by
//! chunk id, of every blob stored in any ancestor — 56 bytes per distinct stored
//! chunk of the chain (about 0.9 MB per GiB of distinct parent data at the default
//! 64 KiB average chunk), built by reading each ancestor's chunk index once.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::bytes::{Cursor, PutLe};
use crate::crypto::ChunkHasher;
use crate::error::{Error, Excerpt, Hash32, Result};
use crate::layout::{CHUNK_DELTA, ChunkRecord, MAX_PAGE_LEN, SECTION_PARENTS};
use crate::page::{Page, TreeKind};
use crate::reader::{Archive, Inner, VerifyReport};

/// Most parents a child can name (`source` is a u16 and 0 is the child itself).
pub const MAX_PARENTS: usize = u16::MAX as usize;
/// Fixed part of a parent record.
pub const PARENT_RECORD_FIXED_LEN: usize = 64;
/// Longest location hint.
pub const MAX_HINT_LEN: usize = 4096;

/// Boxed error a resolver returns (the transport's own error).
pub type ResolveError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One ancestor as a thin child names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// The parent's root hash: its identity, checked when it is opened.
    pub root_hash: Hash32,
    /// Its file size when the child was built (informational: signing may grow a
    /// file without changing its root hash, so readers do not check it).
    pub archive_size: u64,
    /// Chunk records of the child read from this parent.
    pub chunks: u64,
    /// Raw bytes of those records.
    pub bytes: u64,
    /// Where to look: URL, absolute path, or path relative to the child's location.
    pub hint: String,
}

/// Encode a parents section (layout in the module docs).
pub fn encode_parents(list: &[ParentRef]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        8 + list
            .iter()
            .map(|p| PARENT_RECORD_FIXED_LEN + p.hint.len())
            .sum::<usize>(),
    );
    out.put_u32(list.len() as u32);
    out.put_zeros(4);
    for p in list {
        out.extend_from_slice(&p.root_hash.0);
        out.put_u64(p.archive_size);
        out.put_u64(p.chunks);
        out.put_u64(p.bytes);
        out.put_u16(p.hint.len() as u16);
        out.put_zeros(6);
        out.extend_from_slice(p.hint.as_bytes());
    }
    out
}

/// Decode a parents section; `offset` is the section blob's archive offset (for
/// errors). Every rule of the layout is checked; counts are bounded by the bytes
/// present before anything is allocated.
pub fn decode_parents(bytes: &[u8], offset: u64) -> Result<Vec<ParentRef>> {
    let mut c = Cursor::new(bytes, "parents section", offset);
    let count = c.u32()? as usize;
    c.reserved(4)?;
    if count == 0 || count > MAX_PARENTS {
        return Err(c.corrupt(format!("parent count {count} outside 1..={MAX_PARENTS}")));
    }
    if count > c.remaining() / PARENT_RECORD_FIXED_LEN {
        return Err(c.corrupt(format!(
            "{count} parents do not fit in {} bytes",
            c.remaining()
        )));
    }
    let mut list = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::with_capacity(count);
    for _ in 0..count {
        let root_hash = Hash32(c.array()?);
        let archive_size = c.u64()?;
        let chunks = c.u64()?;
        let bytes = c.u64()?;
        let hint_len = c.u16()? as usize;
        c.reserved(6)?;
        if hint_len == 0 || hint_len > MAX_HINT_LEN {
            return Err(c.corrupt(format!(
                "location hint of {hint_len} bytes outside 1..={MAX_HINT_LEN}"
            )));
        }
        let hint = c.utf8(hint_len, "location hint")?;
        if hint.contains('\0') {
            return Err(c.corrupt("location hint contains NUL"));
        }
        if !seen.insert(root_hash.0) {
            return Err(c.corrupt(format!("parent {root_hash} is listed twice")));
        }
        list.push(ParentRef {
            root_hash,
            archive_size,
            chunks,
            bytes,
            hint: hint.to_string(),
        });
    }
    c.finish()?;
    Ok(list)
}

pub use crate::hints::resolve_hint;

/// Opens the parents of thin children.
///
/// Who calls: the reader, the first time a chunk stored in a parent is read (or
/// from [`Archive::check_parents`]), once per parent, with the location that
/// [`resolve_hint`] made of the parent's hint — only when the child's
/// [`ParentPolicy`](crate::hints::ParentPolicy) lets it be opened — and the root
/// hash the child expects; and once per parent the reader names
/// ([`ParentPolicy::explicit`](crate::hints::ParentPolicy::explicit)), with the
/// root hash of the first parent needed.
/// The archive returned serves only chunk blobs (its index is not consulted), so it
/// may be opened with small caches. The reader checks its root hash itself; a
/// resolver may also use the hash (a content-addressed cache, say). An error means
/// the parent cannot be reached; the reader reports it with the parent's identity.
pub trait ParentResolver: Send + Sync + fmt::Debug {
    /// Open the archive at `location`.
    fn open_parent(
        &self,
        location: &str,
        expected_root: &Hash32,
    ) -> std::result::Result<Archive, ResolveError>;
}

/// The reader's side: the parsed parents section and the parents opened so far.
#[derive(Debug, Default)]
pub(crate) struct ParentLinks {
    resolver: OnceLock<Arc<dyn ParentResolver>>,
    table: OnceLock<Arc<ParentTable>>,
    /// The page-bases section (delta pages, [`crate::delta`]), once decoded.
    page_bases: OnceLock<crate::delta::PageBases>,
    /// The chunk-bases sections (delta chunks, [`crate::chunkdelta`]), once checked
    /// (by one thread: the others wait for it rather than read them again).
    chunk_bases: std::sync::Mutex<Option<Arc<crate::chunkbases::ChunkBaseIndex>>>,
    /// The parents the reader named (`ReadOptions::parents.explicit`), opened on
    /// first need.
    explicit: OnceLock<Vec<Archive>>,
}

#[derive(Debug)]
struct ParentTable {
    refs: Vec<ParentRef>,
    opened: Vec<OnceLock<Archive>>,
}

impl ParentLinks {
    fn table(&self, child: &Inner) -> Result<Arc<ParentTable>> {
        if let Some(t) = self.table.get() {
            return Ok(t.clone());
        }
        let refs = match child
            .directory
            .sections
            .iter()
            .find(|s| s.kind == SECTION_PARENTS)
        {
            Some(s) => decode_parents(
                &child.load_blob(&s.page, "parents section", crate::crypto::BlobRole::Section)?,
                s.page.offset,
            )?,
            None => Vec::new(),
        };
        let opened = refs.iter().map(|_| OnceLock::new()).collect();
        Ok(self
            .table
            .get_or_init(|| Arc::new(ParentTable { refs, opened }))
            .clone())
    }

    /// The child's page-bases section, decoded once (empty when it has none).
    pub(crate) fn page_bases(&self, child: &Inner) -> Result<crate::delta::PageBases> {
        if let Some(b) = self.page_bases.get() {
            return Ok(b.clone());
        }
        let list = Arc::new(child.load_page_bases()?);
        Ok(self.page_bases.get_or_init(|| list).clone())
    }

    /// The child's chunk-bases sections, checked once (empty when it has none);
    /// their records are read a section at a time, on demand.
    pub(crate) fn chunk_bases(
        &self,
        child: &Inner,
    ) -> Result<Arc<crate::chunkbases::ChunkBaseIndex>> {
        let mut slot = self
            .chunk_bases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = &*slot {
            return Ok(b.clone());
        }
        let index = Arc::new(crate::chunkbases::ChunkBaseIndex::load(child)?);
        *slot = Some(index.clone());
        Ok(index)
    }

    /// The opened parent `index` (1-based, as in chunk records).
    pub(crate) fn parent(&self, child: &Inner, index: u16) -> Result<Archive> {
        let table = self.table(child)?;
        let slot = usize::from(index)
            .checked_sub(1)
            .filter(|&i| i < table.refs.len())
            .ok_or_else(|| Error::Corrupt {
                what: "chunk index",
                offset: 0,
                detail: format!(
                    "{}: a chunk is stored in parent {index}, but the archive lists {} parents",
                    Excerpt(&child.source.name()),
                    table.refs.len()
                ),
            })?;
        if let Some(a) = table.opened[slot].get() {
            return Ok(a.clone());
        }
        let p = &table.refs[slot];
        let child_name = child.source.name();
        let Some(resolver) = self.resolver.get() else {
            return Err(Error::ParentNotAttached {
                archive: child_name,
                index,
                root_hash: p.root_hash,
                hint: p.hint.clone(),
            });
        };
        if let Some(named) = self
            .explicit(child, resolver.as_ref(), index, p)?
            .iter()
            .find(|a| a.root_hash() == p.root_hash)
        {
            return Ok(table.opened[slot].get_or_init(|| named.clone()).clone());
        }
        let location = match child.options.parents.locate(&child_name, &p.hint) {
            Ok(location) => location,
            Err(reason) => {
                return Err(Error::ParentRefused {
                    archive: child_name,
                    index,
                    root_hash: Box::new(p.root_hash),
                    hint: p.hint.clone(),
                    location: resolve_hint(&child.source.name(), &p.hint),
                    reason,
                });
            }
        };
        let archive = resolver
            .open_parent(&location, &p.root_hash)
            .map_err(|error| Error::ParentUnavailable {
                archive: child_name.clone(),
                index,
                root_hash: p.root_hash,
                location: location.clone(),
                error,
            })?;
        if archive.root_hash() != p.root_hash {
            return Err(Error::ParentMismatch {
                archive: child_name,
                index,
                location,
                expected: p.root_hash,
                actual: archive.root_hash(),
            });
        }
        Ok(table.opened[slot].get_or_init(|| archive).clone())
    }

    /// The parents the reader named, each opened once (when parent `index`,
    /// `p`, is the first one needed). One that cannot be opened is an error: the
    /// reader asked for it.
    fn explicit(
        &self,
        child: &Inner,
        resolver: &dyn ParentResolver,
        index: u16,
        p: &ParentRef,
    ) -> Result<&[Archive]> {
        if let Some(list) = self.explicit.get() {
            return Ok(list);
        }
        let mut list = Vec::with_capacity(child.options.parents.explicit.len());
        for location in &child.options.parents.explicit {
            let archive = resolver
                .open_parent(location, &p.root_hash)
                .map_err(|error| Error::ParentUnavailable {
                    archive: child.source.name(),
                    index,
                    root_hash: p.root_hash,
                    location: location.clone(),
                    error,
                })?;
            list.push(archive);
        }
        Ok(self.explicit.get_or_init(|| list))
    }

    /// Read a chunk stored in a parent (`r.source ≥ 1`): the parent's own blob,
    /// checked against the CRC32 (and id) the child recorded; a delta blob is
    /// decoded with `base`, which the child found (the parent's own parents are
    /// not followed).
    pub(crate) fn load_chunk(
        &self,
        child: &Inner,
        r: &ChunkRecord,
        base: Option<&[u8]>,
        verify_id: bool,
    ) -> Result<Vec<u8>> {
        let parent = self.parent(child, r.source)?;
        let local = ChunkRecord { source: 0, ..*r };
        parent.inner.load_stored_chunk(&local, base, verify_id)
    }
}

impl Archive {
    /// Open a thin child (or any archive) whose parents `resolver` will open when
    /// needed. [`Archive::open`] gives an archive whose parent chunks fail with
    /// [`Error::ParentNotAttached`] until a resolver is attached.
    pub fn with_parent_resolver(self, resolver: Arc<dyn ParentResolver>) -> Self {
        let _ = self.inner.parents.resolver.set(resolver);
        self
    }

    /// The parents this archive names (nearest first), empty for a self-contained
    /// archive. Reads and checks the parents section on first use.
    pub fn parents(&self) -> Result<Vec<ParentRef>> {
        Ok(self.inner.parents.table(&self.inner)?.refs.clone())
    }

    /// The bytes of one section of the directory (any kind), checked and
    /// decompressed.
    pub fn section_at(&self, section: &crate::layout::Section) -> Result<Vec<u8>> {
        self.inner
            .load_blob(&section.page, "section", crate::crypto::BlobRole::Section)
    }

    /// When the archive's file or object was last written, if its source says
    /// (see [`crate::ReadAt::modified`]).
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        self.inner.source.modified()
    }

    /// Whether the archive names parents (reads nothing).
    pub fn is_thin(&self) -> bool {
        self.inner
            .directory
            .sections
            .iter()
            .any(|s| s.kind == SECTION_PARENTS)
    }

    /// Open parent `index` (1-based, `parents()[index - 1]`) through the attached
    /// resolver, checking its root hash.
    pub fn parent(&self, index: u16) -> Result<Archive> {
        self.inner.parents.parent(&self.inner, index)
    }

    /// Open every parent that serves chunks of this archive (those with a non-zero
    /// chunk count) or holds the base of one of its delta pages, so a missing or
    /// wrong parent is reported before any read.
    pub fn check_parents(&self) -> Result<()> {
        for index in self.needed_parents()? {
            self.parent(index)?;
        }
        Ok(())
    }

    /// The positions (1-based) of the parents this archive reads: those that
    /// serve chunks, and those that hold the base of one of its delta pages or
    /// delta chunks. Reads the parents and bases sections, opens nothing.
    pub fn needed_parents(&self) -> Result<Vec<u16>> {
        let pages = self.inner.parents.page_bases(&self.inner)?;
        let chunks = self.inner.parents.chunk_bases(&self.inner)?;
        let bases: std::collections::HashSet<u16> = pages
            .iter()
            .map(|b| b.source)
            .chain(chunks.base_sources().iter().copied())
            .collect();
        Ok(self
            .parents()?
            .iter()
            .enumerate()
            .map(|(i, p)| ((i + 1) as u16, p))
            .filter(|(index, p)| p.chunks > 0 || bases.contains(index))
            .map(|(index, _)| index)
            .collect())
    }

    /// Check that the per-parent counts of the parents section match the chunk
    /// index: part of [`Archive::verify`] for thin children.
    pub(crate) fn verify_parent_counts(&self, per_source: &[(u64, u64)]) -> Result<()> {
        let refs = self.parents()?;
        let listed: Vec<(u64, u64)> = refs.iter().map(|p| (p.chunks, p.bytes)).collect();
        let used = per_source.get(1..).unwrap_or(&[]);
        let mismatch = used.len() > listed.len()
            || listed
                .iter()
                .enumerate()
                .any(|(i, l)| used.get(i).copied().unwrap_or((0, 0)) != *l);
        if mismatch {
            return Err(Error::Corrupt {
                what: "parents section",
                offset: 0,
                detail: format!(
                    "{}: per-parent chunk counts differ from the chunk index",
                    Excerpt(&self.source_name())
                ),
            });
        }
        Ok(())
    }
}

/// One blob stored in an ancestor, as the writer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentChunk {
    /// Chunk id (BLAKE3 of the raw bytes).
    pub id: [u8; 32],
    /// Blob offset in that ancestor.
    pub blob_offset: u64,
    /// Stored length.
    pub stored_len: u32,
    /// CRC32 of the stored bytes.
    pub crc: u32,
    /// 1-based index in the child's parents list.
    pub source: u16,
    /// `CHUNK_RAW`, `CHUNK_DELTA` (the base: [`ParentSet::chunk_base`]) or 0.
    pub flags: u8,
}

/// What a writer dedups against: the flattened parent list of the child to be
/// written and every blob stored in those ancestors, sorted by id.
#[derive(Debug, Clone)]
pub struct ParentSet {
    refs: Vec<ParentRef>,
    chunks: Vec<ParentChunk>,
    /// How the chain's chunk ids were made: a child must use the same.
    hasher: ChunkHasher,
    /// The direct parent's index leaves, the bases of the child's delta pages.
    pub(crate) page_bases: Arc<crate::delta::BaseCandidates>,
    /// Where the child's new chunks find their bases, and the bases of the
    /// chain's delta chunks ([`crate::chunkdelta`]).
    pub(crate) chunk_bases: Arc<crate::chunkdelta::ChunkBaseSource>,
}

/// An ancestor handed to [`ParentSet::new`]: the opened archive and the hint the
/// child will record for it (relative to where the child will live).
#[derive(Debug, Clone)]
pub struct ParentArchive {
    /// The opened ancestor.
    pub archive: Archive,
    /// Location hint to record.
    pub hint: String,
}

impl ParentSet {
    /// Build the set from the whole chain, nearest first (`chain[0]` is the direct
    /// parent, `chain[i + 1]` the parent of `chain[i]`). Reads each ancestor's chunk
    /// index once (in parallel) and keeps the blobs stored in it (`source` 0 there).
    /// A chunk stored in several ancestors is taken from the nearest.
    pub fn new(chain: Vec<ParentArchive>) -> Result<Self> {
        if chain.is_empty() || chain.len() > MAX_PARENTS {
            return Err(Error::InvalidSetting {
                setting: "parents",
                detail: format!(
                    "a chain of {} archives: between 1 and {MAX_PARENTS}",
                    chain.len()
                ),
            });
        }
        let mut refs: Vec<ParentRef> = Vec::with_capacity(chain.len());
        for p in &chain {
            if p.hint.is_empty() || p.hint.len() > MAX_HINT_LEN || p.hint.contains('\0') {
                return Err(Error::InvalidSetting {
                    setting: "parent location hint",
                    detail: format!("{:?}: 1..={MAX_HINT_LEN} bytes, no NUL", Excerpt(&p.hint)),
                });
            }
            // Chunk ids only match along a chain built with one dedup key (or
            // none): encrypted children take their parent's (see FORMAT.md §14.3).
            if !p
                .archive
                .chunk_hasher()
                .same_ids(&chain[0].archive.chunk_hasher())
            {
                return Err(Error::InvalidSetting {
                    setting: "parents",
                    detail: format!(
                        "{} and {} do not share a dedup key (one is encrypted, or they \
                         were built with different keys)",
                        Excerpt(&chain[0].archive.source_name()),
                        Excerpt(&p.archive.source_name())
                    ),
                });
            }
            let root_hash = p.archive.root_hash();
            if refs.iter().any(|r| r.root_hash == root_hash) {
                return Err(Error::InvalidSetting {
                    setting: "parents",
                    detail: format!("archive {root_hash} appears twice in the chain"),
                });
            }
            refs.push(ParentRef {
                root_hash,
                archive_size: p.archive.archive_size(),
                chunks: 0,
                bytes: 0,
                hint: p.hint.clone(),
            });
        }
        let section_len = 8 + refs
            .iter()
            .map(|r| PARENT_RECORD_FIXED_LEN + r.hint.len())
            .sum::<usize>();
        if section_len > MAX_PAGE_LEN as usize {
            return Err(Error::InvalidSetting {
                setting: "parents",
                detail: format!("the parents section would be {section_len} bytes"),
            });
        }
        let per_parent: Vec<Vec<ParentChunk>> = chain
            .par_iter()
            .enumerate()
            .map(|(i, p)| stored_chunks(&p.archive, (i + 1) as u16))
            .collect::<Result<_>>()?;
        let mut chunks: Vec<ParentChunk> = per_parent.into_iter().flatten().collect();
        let hasher = chain[0].archive.chunk_hasher();
        let archives: Vec<Archive> = chain.iter().map(|p| p.archive.clone()).collect();
        // `chunks` is in (source, blob offset) order: each ancestor's blobs, sorted.
        let deltas: Vec<(u16, u64)> = chunks
            .iter()
            .filter(|c| c.flags & CHUNK_DELTA != 0)
            .map(|c| (c.source, c.blob_offset))
            .collect();
        debug_assert!(deltas.is_sorted());
        let chunk_bases = crate::chunkdelta::ChunkBaseSource::from_chain(&archives, &deltas)?;
        // A delta blob is referenced only with its base known.
        chunks.retain(|c| {
            c.flags & CHUNK_DELTA == 0 || chunk_bases.base_of(c.source, c.blob_offset).is_some()
        });
        chunks.par_sort_unstable_by(|a, b| (a.id, a.source).cmp(&(b.id, b.source)));
        chunks.dedup_by(|later, first| later.id == first.id);
        let page_bases = Arc::new(crate::delta::BaseCandidates::from_chain(&archives)?);
        Ok(Self {
            refs,
            chunks,
            hasher,
            page_bases,
            chunk_bases: Arc::new(chunk_bases),
        })
    }

    /// Build the set from parts already known, opening nothing: the flattened
    /// parent list (nearest first; counts are filled in by the writer) and the
    /// blobs a child may reference (any order; one per id is kept, the nearest).
    /// For writers that derive both from the direct parent alone (a writable
    /// volume: its parents section plus its own chunk records). `direct_parent`,
    /// the opened archive of `refs[0]`, lends the child its whole index leaves as
    /// delta bases (FORMAT.md §14.3.5); its own delta leaves give none (that would
    /// need the ancestors opened), so those child leaves are stored whole.
    pub fn from_parts(
        refs: Vec<ParentRef>,
        mut chunks: Vec<ParentChunk>,
        hasher: ChunkHasher,
        direct_parent: &Archive,
    ) -> Result<Self> {
        let bad = |detail: String| Error::InvalidSetting {
            setting: "parents",
            detail,
        };
        if refs.is_empty() || refs.len() > MAX_PARENTS {
            return Err(bad(format!(
                "a chain of {} archives: between 1 and {MAX_PARENTS}",
                refs.len()
            )));
        }
        for (i, r) in refs.iter().enumerate() {
            if r.hint.is_empty() || r.hint.len() > MAX_HINT_LEN || r.hint.contains('\0') {
                return Err(bad(format!(
                    "hint {:?}: 1..={MAX_HINT_LEN} bytes, no NUL",
                    Excerpt(&r.hint)
                )));
            }
            if refs[..i].iter().any(|o| o.root_hash == r.root_hash) {
                return Err(bad(format!(
                    "archive {} appears twice in the chain",
                    r.root_hash
                )));
            }
        }
        let section_len = 8 + refs
            .iter()
            .map(|r| PARENT_RECORD_FIXED_LEN + r.hint.len())
            .sum::<usize>();
        if section_len > MAX_PAGE_LEN as usize {
            return Err(bad(format!(
                "the parents section would be {section_len} bytes"
            )));
        }
        if let Some(c) = chunks
            .iter()
            .find(|c| c.source == 0 || usize::from(c.source) > refs.len())
        {
            return Err(bad(format!(
                "a chunk is in source {}, not one of the {} parents",
                c.source,
                refs.len()
            )));
        }
        if refs[0].root_hash != direct_parent.root_hash() {
            return Err(bad(format!(
                "the direct parent is {}, the parents list starts with {}",
                direct_parent.root_hash(),
                refs[0].root_hash
            )));
        }
        let mut deltas: Vec<(u16, u64)> = chunks
            .iter()
            .filter(|c| c.flags & CHUNK_DELTA != 0)
            .map(|c| (c.source, c.blob_offset))
            .collect();
        deltas.sort_unstable();
        deltas.dedup();
        let chunk_bases =
            crate::chunkdelta::ChunkBaseSource::from_direct(direct_parent, &refs, &deltas)?;
        // A delta blob is referenced only with its base known.
        chunks.retain(|c| {
            c.flags & CHUNK_DELTA == 0 || chunk_bases.base_of(c.source, c.blob_offset).is_some()
        });
        chunks.sort_unstable_by_key(|c| (c.id, c.source));
        chunks.dedup_by(|later, first| later.id == first.id);
        let page_bases = Arc::new(crate::delta::BaseCandidates::from_chain(
            std::slice::from_ref(direct_parent),
        )?);
        Ok(Self {
            refs,
            chunks,
            hasher,
            page_bases,
            chunk_bases: Arc::new(chunk_bases),
        })
    }

    /// How the chain's chunk ids are computed: a child built on this set must
    /// compute its ids the same way (an encrypted child: with the parent's dedup
    /// key, `Encryption::with_hasher`).
    pub fn chunk_hasher(&self) -> &ChunkHasher {
        &self.hasher
    }

    /// The parents, nearest first (chunk counts are filled in by the writer).
    pub fn parents(&self) -> &[ParentRef] {
        &self.refs
    }

    /// Distinct chunks stored in the chain.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The ancestor blob with chunk id `id`, if any.
    pub fn lookup(&self, id: &[u8; 32]) -> Option<&ParentChunk> {
        self.chunks
            .binary_search_by(|c| c.id.cmp(id))
            .ok()
            .map(|i| &self.chunks[i])
    }

    /// The base of the chain's delta blob (`source`, `blob_offset`), in the
    /// child's numbering: known for every delta blob [`lookup`](Self::lookup)
    /// returns.
    pub fn chunk_base(
        &self,
        source: u16,
        blob_offset: u64,
    ) -> Option<crate::chunkdelta::ChunkBase> {
        self.chunk_bases.base_of(source, blob_offset).copied()
    }

    /// The parents section, with the per-parent counts of `used` (indexed by
    /// source, 0 unused).
    pub(crate) fn encode_section(&self, used: &[(u64, u64)]) -> Vec<u8> {
        let mut refs = self.refs.clone();
        for (i, r) in refs.iter_mut().enumerate() {
            let (chunks, bytes) = used.get(i + 1).copied().unwrap_or((0, 0));
            r.chunks = chunks;
            r.bytes = bytes;
        }
        encode_parents(&refs)
    }
}

/// Blobs stored in `archive` itself (chunk records with source 0, zeros excluded),
/// tagged with `source`, one per blob.
fn stored_chunks(archive: &Archive, source: u16) -> Result<Vec<ParentChunk>> {
    let inner = &archive.inner;
    let mut out = Vec::new();
    let mut report = VerifyReport::default();
    inner.walk_tree(
        &inner.directory.chunk_tree,
        TreeKind::Chunks,
        &mut report,
        &mut |page| {
            if let Page::ChunkLeaf(records) = page {
                out.extend(
                    records
                        .iter()
                        .filter(|r| r.source == 0 && !r.is_zero())
                        .map(|r| ParentChunk {
                            id: r.id,
                            blob_offset: r.blob_offset,
                            stored_len: r.stored_len,
                            crc: r.crc,
                            source,
                            flags: r.flags,
                        }),
                );
            }
            Ok(())
        },
    )?;
    out.sort_unstable_by_key(|c| c.blob_offset);
    out.dedup_by_key(|c| c.blob_offset);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Vec<ParentRef> {
        vec![
            ParentRef {
                root_hash: Hash32([1; 32]),
                archive_size: 1000,
                chunks: 3,
                bytes: 70_000,
                hint: "v1.hxz".into(),
            },
            ParentRef {
                root_hash: Hash32([2; 32]),
                archive_size: 2000,
                chunks: 0,
                bytes: 0,
                hint: "s3://bucket/v0.hxz".into(),
            },
        ]
    }

    #[test]
    fn section_round_trips_with_the_documented_layout() {
        let bytes = encode_parents(&sample());
        assert_eq!(bytes.len(), 8 + 64 + 6 + 64 + 18);
        assert_eq!(&bytes[0..8], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..40], &[1; 32]);
        assert_eq!(&bytes[40..48], &1000u64.to_le_bytes());
        assert_eq!(&bytes[48..56], &3u64.to_le_bytes());
        assert_eq!(&bytes[56..64], &70_000u64.to_le_bytes());
        assert_eq!(&bytes[64..66], &6u16.to_le_bytes());
        assert_eq!(&bytes[72..78], b"v1.hxz");
        assert_eq!(decode_parents(&bytes, 0).unwrap(), sample());
    }

    #[test]
    fn malformed_sections_are_corrupt() {
        let good = encode_parents(&sample());
        let corrupt = |b: &[u8]| decode_parents(b, 0).unwrap_err().is_corruption();
        // Zero parents, a count that does not fit, truncation, trailing bytes.
        assert!(corrupt(&[0; 8]));
        assert!(corrupt(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]));
        assert!(corrupt(&good[..good.len() - 1]));
        let mut long = good.clone();
        long.push(0);
        assert!(corrupt(&long));
        // Reserved bytes, empty hint, duplicate parent, bad UTF-8.
        let mut b = good.clone();
        b[4] = 1;
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[70] = 1;
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[64] = 0;
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[78..110].copy_from_slice(&[1; 32]);
        assert!(corrupt(&b));
        let mut b = good;
        b[72] = 0xff;
        assert!(corrupt(&b));
    }
}
