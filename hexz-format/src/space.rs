//! Where an archive's bytes go: stored bytes by part (chunk blobs, each index
//! tree, sections by kind, directory and framing). `hexz info --json` reports it as
//! `space`; the thin-snapshot benchmark uses it to tell new data from metadata.

use crate::error::Result;
use crate::layout::{CHUNK_DELTA, SECTION_CHUNK_BASES};
use crate::page::{Page, TreeKind};
use crate::reader::{Archive, VerifyReport};

/// Stored bytes of one archive file, by part. The parts sum to the file size when
/// the writer left no gaps (every v1 writer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceReport {
    /// Chunk blobs stored in this file (a thin child's blobs in its parents are
    /// not counted).
    pub chunk_blobs: u64,
    /// Of the chunk blobs: those stored as deltas against a parent's chunk
    /// (FORMAT.md §14.3.6), how many and their stored bytes.
    pub delta_chunks: u64,
    /// Stored bytes of those delta blobs (part of `chunk_blobs`).
    pub delta_chunk_bytes: u64,
    /// Chunk-index pages.
    pub chunk_index: u64,
    /// Catalog pages.
    pub catalog: u64,
    /// Name-index pages.
    pub name_index: u64,
    /// Section blobs, by kind (ascending kind, one row per kind present).
    pub sections: Vec<SectionSpace>,
    /// Directory, envelope, header and trailer.
    pub framing: u64,
    /// The file size.
    pub total: u64,
}

/// Stored bytes of the sections of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionSpace {
    /// `SECTION_*` kind.
    pub kind: u16,
    /// How many sections of this kind.
    pub count: u64,
    /// Their stored bytes.
    pub bytes: u64,
}

impl SpaceReport {
    /// Everything but the chunk blobs: what the archive spends on finding its data.
    pub fn metadata(&self) -> u64 {
        self.total.saturating_sub(self.chunk_blobs)
    }

    /// Stored bytes of the sections of `kind` (0 when there are none).
    pub fn section_bytes(&self, kind: u16) -> u64 {
        self.sections
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.bytes)
            .sum()
    }
}

impl Archive {
    /// Stored bytes by part. Reads the internal pages of each index tree (the
    /// leaves' sizes are in their refs) and, in a thin child with delta chunks,
    /// the chunk-index leaves (to count its own delta blobs); no chunk blob is
    /// read. Pages bypass the caches and are checked as on any load.
    pub fn space(&self) -> Result<SpaceReport> {
        let inner = &self.inner;
        let dir = &inner.directory;
        let tree_bytes = |tree, kind| -> Result<u64> {
            Ok(crate::delta::tree_levels(inner, tree, kind)?
                .iter()
                .flatten()
                .map(|r| u64::from(r.stored_len))
                .sum())
        };
        // Delta blobs stored here are listed in the chunk-bases sections; only
        // then are the chunk-index leaves read (the walk sums its pages too).
        let mut deltas: Vec<(u64, u32)> = Vec::new();
        let chunk_index = if dir.sections.iter().any(|s| s.kind == SECTION_CHUNK_BASES) {
            let mut report = VerifyReport::default();
            inner.walk_tree(
                &dir.chunk_tree,
                TreeKind::Chunks,
                &mut report,
                &mut |page| {
                    if let Page::ChunkLeaf(records) = page {
                        deltas.extend(
                            records
                                .iter()
                                .filter(|r| r.source == 0 && r.flags & CHUNK_DELTA != 0)
                                .map(|r| (r.blob_offset, r.stored_len)),
                        );
                    }
                    Ok(())
                },
            )?;
            report.stored_bytes
        } else {
            tree_bytes(&dir.chunk_tree, TreeKind::Chunks)?
        };
        deltas.sort_unstable();
        deltas.dedup_by_key(|d| d.0);
        let mut sections: Vec<SectionSpace> = Vec::new();
        for s in &dir.sections {
            let bytes = u64::from(s.page.stored_len);
            match sections.iter_mut().find(|x| x.kind == s.kind) {
                Some(x) => {
                    x.count += 1;
                    x.bytes += bytes;
                }
                None => sections.push(SectionSpace {
                    kind: s.kind,
                    count: 1,
                    bytes,
                }),
            }
        }
        sections.sort_by_key(|s| s.kind);
        let trailer = self.trailer();
        Ok(SpaceReport {
            chunk_blobs: dir.stats.stored_chunk_bytes,
            delta_chunks: deltas.len() as u64,
            delta_chunk_bytes: deltas.iter().map(|d| u64::from(d.1)).sum(),
            chunk_index,
            catalog: tree_bytes(&dir.catalog_tree, TreeKind::Catalog)?,
            name_index: tree_bytes(&dir.name_tree, TreeKind::Names)?,
            framing: u64::from(trailer.directory_len)
                + u64::from(trailer.envelope_len)
                + (crate::layout::HEADER_LEN + crate::layout::TRAILER_LEN) as u64,
            sections,
            total: self.archive_size(),
        })
    }
}
