//! The reader's view of a thin child's chunk-bases sections (FORMAT.md §14.3.6),
//! in bounded memory.
//!
//! A child may list up to [`MAX_SECTIONS`](crate::layout::MAX_SECTIONS) chunk-bases
//! sections of up to [`MAX_PAGE_LEN`](crate::layout::MAX_PAGE_LEN) raw bytes each —
//! 16 GiB of records if they were held at once, from a file of a few megabytes
//! (records compress well). The reader never holds them all. On first need it reads
//! every section once, in directory order, checking each record
//! ([`decode_chunk_bases`]), the order across sections and the running total
//! against the directory's chunk count, and keeps only each section's first and last
//! key and the set of parents holding bases. A lookup then decodes the one section
//! whose key range holds the key; the most recently used decoded sections are kept
//! up to [`CHUNK_BASES_CACHE_BYTES`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::chunkdelta::{ChunkBase, decode_chunk_bases, find};
use crate::crypto::BlobRole;
use crate::error::{Error, Result};
use crate::layout::{PageRef, SECTION_CHUNK_BASES};
use crate::reader::Inner;

/// Decoded chunk-bases records a reader keeps in memory at most (besides the one
/// section it may be decoding): two full sections.
pub const CHUNK_BASES_CACHE_BYTES: u64 = 32 << 20;

/// Key of a record: where the delta blob lies (source, blob offset).
type Key = (u16, u64);

/// One chunk-bases section: where it is and the keys it spans.
#[derive(Debug, Clone, Copy)]
struct Span {
    page: PageRef,
    first: Key,
    last: Key,
}

/// The chunk-bases sections of one archive, checked, with a bounded cache of
/// decoded sections.
#[derive(Debug, Default)]
pub(crate) struct ChunkBaseIndex {
    /// The sections, in directory order (hence in key order).
    spans: Vec<Span>,
    /// Parents (1-based) that hold a base.
    base_sources: Vec<u16>,
    /// Records in all sections.
    records: u64,
    /// Decoded sections (index in `spans`, records), most recently used first.
    cache: Mutex<Vec<(usize, Arc<Vec<ChunkBase>>)>>,
}

fn key(b: &ChunkBase) -> Key {
    (b.source, b.blob_offset)
}

fn weight(list: &[ChunkBase]) -> u64 {
    std::mem::size_of_val(list) as u64
}

impl ChunkBaseIndex {
    /// Read and check every chunk-bases section of `inner`, one at a time: the
    /// records of each ([`decode_chunk_bases`]), keys increasing across sections,
    /// and at most the directory's chunk count in all (one record per distinct
    /// delta blob the chunk index reads).
    pub(crate) fn load(inner: &Inner) -> Result<Self> {
        let mut spans: Vec<Span> = Vec::new();
        let mut sources = BTreeSet::new();
        let mut records = 0u64;
        let limit = inner.directory.stats.chunk_count;
        for s in inner
            .directory
            .sections
            .iter()
            .filter(|s| s.kind == SECTION_CHUNK_BASES)
        {
            let list = decode_section(inner, &s.page)?;
            let corrupt = |detail: String| Error::Corrupt {
                what: "chunk-bases section",
                offset: s.page.offset,
                detail,
            };
            let (Some(first), Some(last)) = (list.first(), list.last()) else {
                return Err(corrupt("no records".into()));
            };
            if spans.last().is_some_and(|p| p.last >= key(first)) {
                return Err(corrupt(
                    "records not in increasing (source, blob offset) across sections".into(),
                ));
            }
            records += list.len() as u64;
            if records > limit {
                return Err(corrupt(format!(
                    "more records than the archive's {limit} chunk records"
                )));
            }
            sources.extend(list.iter().map(|b| b.base.source));
            spans.push(Span {
                page: s.page,
                first: key(first),
                last: key(last),
            });
        }
        Ok(Self {
            spans,
            base_sources: sources.into_iter().collect(),
            records,
            cache: Mutex::new(Vec::new()),
        })
    }

    /// Whether the archive has no chunk-bases record.
    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The parents (1-based positions) that hold the base of some delta chunk.
    pub(crate) fn base_sources(&self) -> &[u16] {
        &self.base_sources
    }

    /// The record for the delta blob (`source`, `blob_offset`), if there is one.
    pub(crate) fn find(
        &self,
        inner: &Inner,
        source: u16,
        blob_offset: u64,
    ) -> Result<Option<ChunkBase>> {
        let k = (source, blob_offset);
        let i = self.spans.partition_point(|s| s.last < k);
        match self.spans.get(i) {
            Some(span) if span.first <= k => {
                Ok(find(&self.section(inner, i)?, source, blob_offset).copied())
            }
            _ => Ok(None),
        }
    }

    /// Call `visit` on every record, in key order, a section at a time.
    pub(crate) fn for_each(
        &self,
        inner: &Inner,
        visit: &mut dyn FnMut(&ChunkBase) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.spans.len() {
            for b in self.section(inner, i)?.iter() {
                visit(b)?;
            }
        }
        Ok(())
    }

    /// Section `i`, decoded: from the cache, or read, decoded and cached (one
    /// section is decoded at a time; the lock is held while it is).
    fn section(&self, inner: &Inner, i: usize) -> Result<Arc<Vec<ChunkBase>>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = cache.iter().position(|(k, _)| *k == i) {
            let hit = cache.remove(pos);
            let list = Arc::clone(&hit.1);
            cache.insert(0, hit);
            return Ok(list);
        }
        let span = self.spans[i];
        let list = Arc::new(decode_section(inner, &span.page)?);
        // The bytes are the ones checked at load (CRC32 and BLAKE3 of the ref).
        if list.first().map(key) != Some(span.first) || list.last().map(key) != Some(span.last) {
            return Err(Error::Corrupt {
                what: "chunk-bases section",
                offset: span.page.offset,
                detail: "the section changed since it was first read".into(),
            });
        }
        cache.insert(0, (i, Arc::clone(&list)));
        let mut total = 0u64;
        let mut keep = 0;
        for (_, l) in cache.iter() {
            total += weight(l);
            if keep > 0 && total > CHUNK_BASES_CACHE_BYTES {
                break;
            }
            keep += 1;
        }
        cache.truncate(keep);
        Ok(list)
    }
}

/// One chunk-bases section of `inner`, loaded (checked, opened, decompressed) and
/// decoded.
fn decode_section(inner: &Inner, page: &PageRef) -> Result<Vec<ChunkBase>> {
    let raw = inner.load_blob(page, "chunk-bases section", BlobRole::Section)?;
    decode_chunk_bases(&raw, page.offset)
}
