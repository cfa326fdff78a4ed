//! Incremental flush: a new version built from what changed.
//!
//! A version's snapshot is a thin child of the previous one (the *base*) whose
//! parents list is the base itself followed by the base's own parents. The base's
//! chunk records already point at the ancestor that stores each blob, so a chunk
//! of the base that is still part of the volume is copied into the child with its
//! `source` moved one place down the list (0 → 1, *k* → *k* + 1) — nothing read,
//! hashed or compressed. Only *dirty* regions go through the archive writer:
//! overlay blocks, bytes past a shrink, the grown tail. A dirty region starts at a
//! chunk boundary of the base and runs, chunk by chunk (the writer's FastCDC, cut
//! here the same way to decide where to stop), until a cut of the new bytes lands
//! on a base boundary followed by a clean base chunk: from there on the base's cuts
//! are the new cuts, so the result is the chunking a full rebuild would give
//! (FastCDC cut points depend only on the bytes since the previous cut). If the
//! cuts do not meet again within [`RESYNC_CHUNKS`] clean base chunks (a volume
//! whose chunking parameters changed), the region ends at the next base boundary
//! anyway.
//!
//! Unwritten space — bytes a grow or a write past the end added and nothing
//! wrote since, or bytes past a shrink point — reads as zeros and is a *hole*:
//! from a cut of the new chunking, while at least a largest chunk of hole lies
//! ahead, FastCDC would cut the zeros into chunks of one fixed length
//! ([`zero_chunk_len`]: the cut of a window of zeros depends on nothing else),
//! so those chunks go to the writer as zero chunk records directly — nothing
//! read, chunked or hashed, whatever the hole's size. The rest of the hole (less
//! than a largest chunk) is chunked with the bytes after it.
//!
//! The dedup table handed to the writer is the base's chunks (its whole view of
//! the volume), so a rewritten region that repeats bytes the volume already holds
//! stores nothing. Cost: bytes read and chunked ∝ the dirty regions (plus about a
//! chunk either side); chunk records copied ∝ volume size / average chunk (the
//! new snapshot's index lists every chunk: 64 bytes per record before
//! compression); no ancestor is opened, but for one read per new chunk: with a
//! codec that has a delta form (zstd), the writer stores a new chunk as a delta
//! against the base's chunk at the same offset (or that chunk's own base), read
//! through the base (FORMAT.md §14.3.6), which opens the ancestor that stores it.

use hexz_format::layout::{CHUNK_ZERO, ChunkRecord};
use hexz_format::parents::ParentChunk;
use hexz_format::{
    Archive, ArchiveWriter, ChunkParams, Entry, EntryMeta, ParentRef, ParentSet, Piece, Summary,
    WriterOptions,
};

use super::{BLOCK, ENTRY_NAME, Result, Volume, VolumeError, head};

/// Clean base chunks a dirty region may run past waiting for the cuts to meet
/// again before it is ended at a base boundary.
pub const RESYNC_CHUNKS: usize = 4;
/// Dirty bytes handed to the writer per piece at most (bounds memory).
const PIECE_BYTES: usize = 4 << 20;
/// Base chunk records per reused piece at most.
const PIECE_RECORDS: usize = 1 << 14;

/// What a flush did, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Bytes of the volume chunked again (dirty regions and their extension).
    pub rechunked_bytes: u64,
    /// Bytes covered by base chunks reused as they are.
    pub reused_bytes: u64,
    /// Base chunk records reused.
    pub reused_chunks: u64,
    /// Bytes of unwritten space (grown, or past a shrink) recorded as zero
    /// chunks without being read, chunked or hashed.
    pub hole_bytes: u64,
}

/// New content of a volume, described against the base version's bytes.
pub(super) trait Change {
    /// Its length.
    fn len(&self) -> u64;
    /// Whether the base's chunk `id` at `[start, end)` is still there unchanged.
    fn clean(&self, start: u64, end: u64, id: &[u8; 32]) -> bool;
    /// Fill `buf` with the new bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// How many bytes from `offset` on are unwritten space, known to read as
    /// zeros without looking (0 if `offset` is not in such a run).
    fn hole_at(&self, offset: u64) -> u64;
}

impl Change for Volume {
    fn len(&self) -> u64 {
        self.len
    }

    /// Wholly before any shrink point and no overlay block over it.
    fn clean(&self, start: u64, end: u64, _id: &[u8; 32]) -> bool {
        end <= self.clean_limit
            && end <= self.len
            && self
                .blocks
                .range(start / BLOCK..=(end - 1) / BLOCK)
                .next()
                .is_none()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        Volume::read_at(self, offset, buf)
    }

    /// Past the clean limit (grown, or shrunk then grown) and up to the next
    /// overlay block or the end.
    fn hole_at(&self, offset: u64) -> u64 {
        if offset < self.clean_limit || offset >= self.len {
            return 0;
        }
        let block = offset / BLOCK;
        match self.blocks.range(block..).next() {
            Some((&b, _)) if b == block => 0,
            Some((&b, _)) => (b * BLOCK).min(self.len) - offset,
            None => self.len - offset,
        }
    }
}

/// The length of the chunk FastCDC cuts from a window of `params.max` zero
/// bytes: every chunk of a run of zeros that starts at a cut and holds at least
/// that window has this length (the cut depends only on the bytes).
pub(super) fn zero_chunk_len(params: ChunkParams) -> u32 {
    let max = params.max as usize;
    let zeros = vec![0u8; max];
    let cdc = fastcdc::v2020::FastCDC::new(&zeros, params.min as usize, params.avg as usize, max);
    // `cut` returns an end in 1..=max for a window of `max` bytes.
    cdc.cut(0, max).1 as u32
}

/// A zero chunk record of `len` bytes (the writer assigns its offset).
fn zero_record(len: u32) -> ChunkRecord {
    ChunkRecord {
        logical_offset: 0,
        blob_offset: 0,
        raw_len: len,
        stored_len: 0,
        crc: 0,
        source: 0,
        flags: CHUNK_ZERO,
        id: [0; 32],
    }
}

/// `len` zero bytes as writer pieces, chunked as FastCDC would chunk them from
/// offset 0: zero chunk records while a largest chunk of zeros lies ahead, then
/// the short rest as bytes. Nothing is hashed, whatever `len`.
pub(super) fn zero_pieces(
    len: u64,
    params: ChunkParams,
) -> impl Iterator<Item = hexz_format::Result<Piece>> {
    let chunk = zero_chunk_len(params);
    let max = u64::from(params.max);
    let mut left = len;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        if left < max {
            let tail = std::mem::take(&mut left) as usize;
            return Some(Ok(Piece::Bytes(vec![0; tail])));
        }
        let mut run = Vec::new();
        while left >= max && run.len() < PIECE_RECORDS {
            run.push(zero_record(chunk));
            left -= u64::from(chunk);
        }
        Some(Ok(Piece::Chunks(run)))
    })
}

/// Write the child of `base` (a volume snapshot holding `entry`) whose
/// `volume.img` is `change`, as version `version`.
pub(super) fn write_child(
    base: &Archive,
    entry: &Entry,
    change: &dyn Change,
    writer: WriterOptions,
    meta: EntryMeta,
    version: u64,
) -> Result<(Vec<u8>, Summary, FlushStats)> {
    let chunking = writer.chunking;
    let records = if entry.size > 0 {
        base.chunk_records(entry.offset, entry.offset + entry.size)?
    } else {
        Vec::new()
    };
    // Offsets relative to the entry; a base whose records do not tile the entry
    // exactly (not written by a volume) is simply not reused.
    let mut old: Vec<ChunkRecord> = Vec::with_capacity(records.len());
    let mut at = entry.offset;
    for r in records {
        if r.logical_offset != at {
            old.clear();
            break;
        }
        at = r.logical_end();
        old.push(ChunkRecord {
            logical_offset: r.logical_offset - entry.offset,
            ..r
        });
    }
    if at != entry.offset + entry.size {
        old.clear();
    }
    let ancestors = base.parents()?;
    let depth = ancestors.len() + 1;
    if depth > hexz_format::parents::MAX_PARENTS {
        return Err(VolumeError::Archive(Box::new(
            hexz_format::Error::InvalidSetting {
                setting: "parents",
                detail: format!(
                    "version {version} would have {depth} ancestors (at most {})",
                    hexz_format::parents::MAX_PARENTS
                ),
            },
        )));
    }
    let mut refs = Vec::with_capacity(depth);
    refs.push(ParentRef {
        root_hash: base.root_hash(),
        archive_size: base.archive_size(),
        chunks: 0,
        bytes: 0,
        hint: head::snapshot_name(&base.root_hash()),
    });
    refs.extend(ancestors.into_iter().map(|p| ParentRef {
        chunks: 0,
        bytes: 0,
        hint: head::snapshot_name(&p.root_hash),
        ..p
    }));
    let table = old
        .iter()
        .filter(|r| !r.is_zero())
        .map(|r| ParentChunk {
            id: r.id,
            blob_offset: r.blob_offset,
            stored_len: r.stored_len,
            crc: r.crc,
            source: r.source.saturating_add(1),
            flags: r.flags,
        })
        .collect();
    let set = ParentSet::from_parts(refs, table, base.chunk_hasher(), base)?;
    let mut writer = ArchiveWriter::new(Vec::new(), writer)?;
    writer.set_parents(set)?;
    let mut pieces = Pieces {
        change,
        old: &old,
        old_size: entry.size,
        zero_chunk: zero_chunk_len(chunking),
        chunking,
        pos: 0,
        buf: Vec::new(),
        cut_here: false,
        failed: false,
        stats: FlushStats::default(),
    };
    writer.add_file_pieces(ENTRY_NAME, &mut pieces, meta)?;
    let stats = pieces.stats;
    let (bytes, summary) = writer.finish()?;
    Ok((bytes, summary, stats))
}

/// The new volume as writer pieces: runs of reused base records and dirty bytes.
struct Pieces<'a> {
    change: &'a dyn Change,
    /// The base's chunk records, offsets relative to its entry.
    old: &'a [ChunkRecord],
    /// The base's length.
    old_size: u64,
    /// [`zero_chunk_len`] of `chunking`.
    zero_chunk: u32,
    chunking: ChunkParams,
    /// Volume offset reached (a cut of the new chunking).
    pos: u64,
    /// Dirty bytes read from `pos` on, not yet handed out.
    buf: Vec<u8>,
    /// Whether the writer must end its segment at `pos` before more dirty bytes
    /// (a region was ended at a base boundary the new cuts did not reach).
    cut_here: bool,
    failed: bool,
    stats: FlushStats,
}

impl Pieces<'_> {
    /// Whether base record `i` still holds the volume's bytes, and is not the
    /// base's last chunk when the length changed (that cut was the end of the
    /// stream, not a content-defined one).
    fn reusable(&self, i: usize) -> bool {
        let Some(r) = self.old.get(i) else {
            return false;
        };
        let (start, end) = (r.logical_offset, r.logical_end());
        let len = self.change.len();
        !(end == self.old_size && len != self.old_size)
            && end <= len
            && self.change.clean(start, end, &r.id)
    }

    /// The base record starting exactly at `offset`.
    fn record_at(&self, offset: u64) -> Option<usize> {
        let i = self.old.partition_point(|r| r.logical_offset < offset);
        (self.old.get(i)?.logical_offset == offset).then_some(i)
    }

    /// Base records from `i` on that can be reused, as the child's records.
    fn reuse_run(&mut self, i: usize) -> Vec<ChunkRecord> {
        let mut run = Vec::new();
        let mut j = i;
        while j < self.old.len() && run.len() < PIECE_RECORDS && self.reusable(j) {
            let r = self.old[j];
            run.push(ChunkRecord {
                source: if r.is_zero() { 0 } else { r.source + 1 },
                ..r
            });
            j += 1;
        }
        let bytes: u64 = run.iter().map(|r| u64::from(r.raw_len)).sum();
        self.pos += bytes;
        self.stats.reused_bytes += bytes;
        self.stats.reused_chunks += run.len() as u64;
        run
    }

    /// Whether a hole of at least a largest chunk starts at `offset` (a cut).
    fn hole_ahead(&self, offset: u64) -> bool {
        self.change.hole_at(offset) >= u64::from(self.chunking.max)
    }

    /// Zero chunk records from `pos` (a cut) while a largest chunk of hole lies
    /// ahead; the read-ahead bytes they cover are dropped.
    fn hole_run(&mut self) -> Vec<ChunkRecord> {
        let mut run = Vec::new();
        let mut bytes = 0u64;
        while run.len() < PIECE_RECORDS && self.hole_ahead(self.pos + bytes) {
            run.push(zero_record(self.zero_chunk));
            bytes += u64::from(self.zero_chunk);
        }
        let covered = (bytes as usize).min(self.buf.len());
        self.buf.drain(..covered);
        self.pos += bytes;
        self.stats.hole_bytes += bytes;
        run
    }

    /// Whether the region must end at `cut`, a cut of the new chunking inside
    /// the volume: it is a base boundary with a clean chunk after it, or the
    /// cuts have run [`RESYNC_CHUNKS`] clean base chunks without meeting.
    fn ends_region(&self, cut: u64) -> Option<u64> {
        if let Some(i) = self.record_at(cut)
            && self.reusable(i)
        {
            return Some(cut);
        }
        // The base record holding `cut`, and whether it and the ones before it
        // are clean.
        let i = self.old.partition_point(|r| r.logical_end() <= cut);
        if i < RESYNC_CHUNKS || i >= self.old.len() {
            return None;
        }
        let clean = (i - RESYNC_CHUNKS..=i).all(|j| self.reusable(j));
        let end = self.old[i].logical_end();
        (clean && self.reusable(i + 1)).then_some(end)
    }

    /// The next dirty piece from `pos`: bytes up to where the region ends, or
    /// up to [`PIECE_BYTES`] (at a cut).
    fn dirty(&mut self) -> Result<Vec<u8>> {
        let v = self.change;
        let params = self.chunking;
        let (min, avg, max) = (
            params.min as usize,
            params.avg as usize,
            params.max as usize,
        );
        let left = v.len() - self.pos;
        let mut start = 0usize;
        loop {
            // Enough bytes to cut the next chunk as the writer will.
            let want = ((start + max) as u64).min(left) as usize;
            if self.buf.len() < want {
                let grow = ((want - self.buf.len()).max(max) as u64)
                    .min(left - self.buf.len() as u64) as usize;
                let at = self.buf.len();
                self.buf.resize(at + grow, 0);
                v.read_at(self.pos + at as u64, &mut self.buf[at..])?;
            }
            let remaining = want - start;
            let cdc = fastcdc::v2020::FastCDC::new(&self.buf[..want], min, avg, max);
            let (_, end) = cdc.cut(start, remaining);
            start = end;
            let cut = self.pos + start as u64;
            if cut >= v.len() {
                self.buf.truncate(start);
                break;
            }
            if let Some(stop) = self.ends_region(cut) {
                if stop > cut {
                    // Up to the base boundary; the writer must restart there.
                    let extra = (stop - cut) as usize;
                    if self.buf.len() < start + extra {
                        let at = self.buf.len();
                        self.buf.resize(start + extra, 0);
                        v.read_at(self.pos + at as u64, &mut self.buf[at..])?;
                    }
                    start += extra;
                    self.cut_here = true;
                }
                // Bytes read past the region's end are not part of it.
                self.buf.truncate(start);
                break;
            }
            if start >= PIECE_BYTES || self.hole_ahead(cut) {
                break;
            }
        }
        let rest = self.buf.split_off(start);
        let piece = std::mem::replace(&mut self.buf, rest);
        self.pos += piece.len() as u64;
        self.stats.rechunked_bytes += piece.len() as u64;
        Ok(piece)
    }

    fn next_piece(&mut self) -> Result<Option<Piece>> {
        if self.pos >= self.change.len() {
            return Ok(None);
        }
        if let Some(i) = self.record_at(self.pos)
            && self.reusable(i)
        {
            self.cut_here = false;
            return Ok(Some(Piece::Chunks(self.reuse_run(i))));
        }
        if std::mem::take(&mut self.cut_here) {
            return Ok(Some(Piece::Chunks(Vec::new())));
        }
        if self.hole_ahead(self.pos) {
            return Ok(Some(Piece::Chunks(self.hole_run())));
        }
        Ok(Some(Piece::Bytes(self.dirty()?)))
    }
}

impl Iterator for Pieces<'_> {
    type Item = hexz_format::Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_piece() {
            Ok(p) => p.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(match e {
                    VolumeError::Archive(e) => *e,
                    other => hexz_format::Error::Input {
                        name: ENTRY_NAME.to_string(),
                        error: std::io::Error::other(other),
                    },
                }))
            }
        }
    }
}
