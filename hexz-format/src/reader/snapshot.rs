//! Metadata snapshots: what one open handle hands to another process opening the
//! same archive (a DataLoader's workers), so that the new handle finds any
//! sample's chunks without fetching the archive's tail or index pages again.
//!
//! A snapshot holds stored bytes only — the tail the handle read at open and the
//! chunk index's pages, as they lie in the archive — never decoded or trusted
//! state: [`Archive::open_with_metadata`] serves reads inside them from memory
//! ([`PrimedSource`]) and checks them exactly as a normal open and page load
//! do (trailer and directory CRC, root hash, key slots and seals, signatures
//! under a trust policy, page CRC32 and BLAKE3, tree keys). A snapshot from a
//! different object is caught by those checks like a replaced object would be;
//! one from an object of another size is refused when the source knows its own
//! size (a remote source opened with the snapshot's size,
//! [`Archive::metadata_snapshot_size`], saves its `HEAD` instead, and reads past
//! the object's end fail).
//!
//! Encoding (in memory, never in an archive; all integers little-endian):
//! the magic `HXZMETA1`, the archive size (u64), the range count (u32), then
//! per range its offset (u64), length (u32) and bytes, in increasing offset
//! order without overlap.

use std::sync::Arc;

use super::{Archive, Result};
use crate::codec::CodecProvider;
use crate::error::Error;
use crate::page::TreeKind;
use crate::source::{PrimedSource, ReadAt};

use super::ReadOptions;

const MAGIC: &[u8; 8] = b"HXZMETA1";
/// Bytes of a range's header (offset, length).
const RANGE_HEADER: usize = 12;

impl Archive {
    /// A snapshot of this archive's metadata for another process to open it
    /// with ([`Archive::open_with_metadata`]): the ranges this handle keeps in
    /// memory (the tail read at open) and the chunk index's pages, level by
    /// level while their stored size fits in `max_bytes` (deeper levels are
    /// then left to the new handle's reads). The pages are fetched with one
    /// batched read per level and checked, which also loads them into this
    /// handle's page cache.
    pub fn metadata_snapshot(&self, max_bytes: u64) -> Result<Vec<u8>> {
        let inner = &self.inner;
        let mut pages = Vec::new();
        let tree = inner.directory.chunk_tree;
        inner.preload_tree(&tree, TreeKind::Chunks, max_bytes, Some(&mut pages))?;
        // Merged with the kept ranges (a page in the tail is stored once).
        let kept: Vec<(u64, Vec<u8>)> = inner
            .primed
            .kept()
            .map(|(o, b)| (o, b.to_vec()))
            .chain(pages)
            .collect();
        let merged = PrimedSource::new(Arc::clone(inner.primed.inner()), kept);
        let ranges: Vec<(u64, &[u8])> = merged.kept().collect();
        let total: usize = ranges.iter().map(|(_, b)| RANGE_HEADER + b.len()).sum();
        let mut out = Vec::with_capacity(MAGIC.len() + 12 + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.archive_size().to_le_bytes());
        out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
        for (offset, bytes) in ranges {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    /// Open the archive in `source` primed with `snapshot` (from
    /// [`Archive::metadata_snapshot`] on a handle on the same archive): reads
    /// of the tail and of the snapshot's pages are served from it and checked
    /// as if fetched — no check is skipped. A malformed snapshot is an error
    /// ([`Error::Corrupt`] naming the snapshot), as is one taken from an archive
    /// of another size ([`Error::InvalidSetting`]).
    pub fn open_with_metadata(
        source: Arc<dyn ReadAt>,
        codecs: &dyn CodecProvider,
        options: ReadOptions,
        snapshot: &[u8],
    ) -> Result<Self> {
        let ranges = decode(snapshot, source.as_ref())?;
        Self::open_primed(source, ranges, codecs, options)
    }
}

impl Archive {
    /// The size of the archive `snapshot` was taken from (what a transport
    /// would otherwise ask the server for at open). The rest of the snapshot is
    /// checked by [`Archive::open_with_metadata`].
    pub fn metadata_snapshot_size(snapshot: &[u8]) -> Result<u64> {
        header(snapshot).map(|(size, _)| size)
    }
}

/// The archive size and range count of `snapshot`, after its magic.
fn header(snapshot: &[u8]) -> Result<(u64, u32)> {
    if snapshot.len() < MAGIC.len() + 12 || &snapshot[..MAGIC.len()] != MAGIC {
        return Err(malformed(
            0,
            format!(
                "{} bytes without the {:?} header",
                snapshot.len(),
                std::str::from_utf8(MAGIC).unwrap_or_default()
            ),
        ));
    }
    let mut size = [0; 8];
    size.copy_from_slice(&snapshot[MAGIC.len()..MAGIC.len() + 8]);
    let mut count = [0; 4];
    count.copy_from_slice(&snapshot[MAGIC.len() + 8..MAGIC.len() + 12]);
    Ok((u64::from_le_bytes(size), u32::from_le_bytes(count)))
}

fn malformed(offset: usize, detail: String) -> Error {
    Error::Corrupt {
        what: "metadata snapshot",
        offset: offset as u64,
        detail,
    }
}

/// The ranges of `snapshot`, checked against `source`'s size. Lengths are
/// checked against the bytes present before anything is copied.
fn decode(snapshot: &[u8], source: &dyn ReadAt) -> Result<Vec<(u64, Vec<u8>)>> {
    let head = MAGIC.len() + 12;
    let (size, count) = header(snapshot)?;
    let u64_at = |at: usize| {
        let mut b = [0; 8];
        b.copy_from_slice(&snapshot[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |at: usize| {
        let mut b = [0; 4];
        b.copy_from_slice(&snapshot[at..at + 4]);
        u32::from_le_bytes(b)
    };
    if size != source.size() {
        return Err(Error::InvalidSetting {
            setting: "metadata snapshot",
            detail: format!(
                "taken from an archive of {size} bytes, but {} has {} bytes (a different object)",
                crate::error::Excerpt(&source.name()),
                source.size()
            ),
        });
    }
    let count = count as usize;
    // Each range takes at least its header: a count the bytes cannot hold is
    // refused before anything is allocated for it.
    if count > (snapshot.len() - head) / RANGE_HEADER {
        return Err(malformed(
            MAGIC.len() + 8,
            format!("{count} ranges in {} bytes", snapshot.len()),
        ));
    }
    let mut ranges = Vec::with_capacity(count);
    let mut at = head;
    let mut end_of_previous = 0u64;
    for i in 0..count {
        if snapshot.len() - at < RANGE_HEADER {
            return Err(malformed(at, format!("range {i} header cut short")));
        }
        let offset = u64_at(at);
        let len = u32_at(at + 8) as usize;
        let data = at + RANGE_HEADER;
        if snapshot.len() - data < len {
            return Err(malformed(
                at,
                format!("range {i} of {len} bytes, {} left", snapshot.len() - data),
            ));
        }
        let end = offset.checked_add(len as u64);
        if len == 0 || offset < end_of_previous || end.is_none_or(|e| e > size) {
            return Err(malformed(
                at,
                format!(
                    "range {i} ({offset}+{len}) is empty, overlaps the previous one or ends past the archive's {size} bytes"
                ),
            ));
        }
        end_of_previous = offset + len as u64;
        ranges.push((offset, snapshot[data..data + len].to_vec()));
        at = data + len;
    }
    if at != snapshot.len() {
        return Err(malformed(
            at,
            format!("{} bytes after the last range", snapshot.len() - at),
        ));
    }
    Ok(ranges)
}
