//! Delta chunks: a thin child's new chunks compressed against its parent's.
//!
//! A small edit in a file changes the chunk around it, and a new chunk costs its
//! whole compressed size although most of its bytes are in the parent's chunk at
//! the same place of the same file. A thin child's writer therefore compresses
//! each new chunk twice — alone, and with that parent chunk as a raw-content
//! dictionary ([`Compressor::compress_with_base`], the mechanism of delta pages,
//! [`crate::delta`]) — and keeps the delta when it is smaller by more than its
//! record. Such a chunk record has the flag [`CHUNK_DELTA`]; its id is still the
//! (keyed) BLAKE3 of the chunk's raw bytes, so deduplication, `diff` and
//! verification see it as any chunk.
//!
//! The child's **chunk-bases sections** (kind
//! [`SECTION_CHUNK_BASES`](crate::layout::SECTION_CHUNK_BASES), critical)
//! say, for every delta blob the child's chunk index reads — stored in the child
//! (source 0) or in an ancestor (a delta blob the child deduplicates against) —
//! which chunk is its base, in the child's own parents numbering:
//!
//! ```text
//! chunk-bases section (raw bytes; compressed like any section)
//! 0   4   u32   record count n (≥ 1)
//! 4   4   –     reserved, zero
//! 8   …   record[n]; across all the sections of this kind, in directory
//!               order, strictly increasing (source, blob offset)
//!
//! record (80 bytes)
//! 0   8   u64   blob offset of the delta blob
//! 8   2   u16   source of the delta blob: 0 this archive, k its k-th parent
//! 10  6   –     reserved, zero
//! 16  64  chunk record of the base (FORMAT.md §6.2): logical offset 0, source
//!         the parent storing it (greater than the delta's source), flags 0 or
//!         CHUNK_RAW (never a delta or a zero chunk)
//! ```
//!
//! A base is always a chunk stored whole in an ancestor: when the parent's chunk
//! is itself a delta, the child takes that chunk's base. Reading a delta chunk
//! costs one extra chunk read (its base, loaded and checked by the archive that
//! stores it), whatever the depth of the chain, and never follows an ancestor's
//! own parents.
//!
//! [`Compressor::compress_with_base`]: crate::codec::Compressor::compress_with_base

use crate::bytes::{Cursor, PutLe};
use crate::codec::Compressor;
use crate::error::{Error, Excerpt, Result};
use crate::layout::{CHUNK_DELTA, CHUNK_RAW, CHUNK_RECORD_LEN, ChunkRecord, MAX_PAGE_LEN};
use crate::parents::{MAX_PARENTS, ParentRef, ParentSet};
use crate::reader::{Archive, ChunkData, Inner};

/// Bytes per chunk-bases record.
pub const CHUNK_BASE_RECORD_LEN: usize = 16 + CHUNK_RECORD_LEN;

/// Most records one chunk-bases section holds (its raw bytes stay a page).
pub const MAX_CHUNK_BASES_PER_SECTION: usize = (MAX_PAGE_LEN as usize - 8) / CHUNK_BASE_RECORD_LEN;

/// One delta blob and its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBase {
    /// Where the delta blob lies: 0 this archive, *k* its *k*-th parent.
    pub source: u16,
    /// The delta blob's offset there.
    pub blob_offset: u64,
    /// The base chunk (logical offset 0; `source` ≥ 1, the parent storing it).
    pub base: ChunkRecord,
}

impl ChunkBase {
    fn key(&self) -> (u16, u64) {
        (self.source, self.blob_offset)
    }
}

/// Encode one chunk-bases section (layout in the module docs); `list` sorted by
/// (source, blob offset), at most [`MAX_CHUNK_BASES_PER_SECTION`] records.
pub fn encode_chunk_bases(list: &[ChunkBase]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + list.len() * CHUNK_BASE_RECORD_LEN);
    out.put_u32(list.len() as u32);
    out.put_zeros(4);
    for r in list {
        out.put_u64(r.blob_offset);
        out.put_u16(r.source);
        out.put_zeros(6);
        r.base.encode(&mut out);
    }
    out
}

/// Decode one chunk-bases section; `offset` is the section blob's archive offset
/// (for errors). Checks every rule of the layout but the order across sections;
/// the count is bounded by the bytes present before anything is allocated.
pub fn decode_chunk_bases(bytes: &[u8], offset: u64) -> Result<Vec<ChunkBase>> {
    let mut c = Cursor::new(bytes, "chunk-bases section", offset);
    let count = c.u32()? as usize;
    c.reserved(4)?;
    if count == 0 || count > c.remaining() / CHUNK_BASE_RECORD_LEN {
        return Err(c.corrupt(format!(
            "{count} records do not fit in {} bytes (at least one)",
            c.remaining()
        )));
    }
    let mut list: Vec<ChunkBase> = Vec::with_capacity(count);
    for _ in 0..count {
        let blob_offset = c.u64()?;
        let source = c.u16()?;
        c.reserved(6)?;
        let base = ChunkRecord::decode(&mut c)?;
        if base.logical_offset != 0 {
            return Err(c.corrupt("a base record with a logical offset"));
        }
        if base.flags & !CHUNK_RAW != 0 {
            return Err(c.corrupt("a base chunk is a delta or a zero chunk"));
        }
        if base.source <= source || usize::from(base.source) > MAX_PARENTS {
            return Err(c.corrupt(format!(
                "base in source {} for a delta in source {source}: a parent further up",
                base.source
            )));
        }
        let r = ChunkBase {
            source,
            blob_offset,
            base,
        };
        if list.last().is_some_and(|p| p.key() >= r.key()) {
            return Err(c.corrupt("records not in increasing (source, blob offset)"));
        }
        list.push(r);
    }
    c.finish()?;
    Ok(list)
}

/// The record for the delta blob (`source`, `blob_offset`) in `list`.
pub(crate) fn find(list: &[ChunkBase], source: u16, blob_offset: u64) -> Option<&ChunkBase> {
    list.binary_search_by_key(&(source, blob_offset), ChunkBase::key)
        .ok()
        .map(|i| &list[i])
}

impl Inner {
    /// The decoded bytes of the base of delta chunk `r` (a record of this
    /// archive's index): its record in the chunk-bases sections, the base chunk
    /// loaded (through the chunk cache) from the parent that stores it, with that
    /// parent's checks.
    pub(crate) fn delta_base(&self, r: &ChunkRecord) -> Result<ChunkData> {
        self.chunk(&self.delta_base_record(r)?)
    }

    /// The record of the base of delta chunk `r` (a record of this archive's
    /// index), from the chunk-bases sections.
    pub(crate) fn delta_base_record(&self, r: &ChunkRecord) -> Result<ChunkRecord> {
        let bases = self.parents.chunk_bases(self)?;
        let record = bases.find(self, r.source, r.blob_offset)?;
        let record = record.ok_or_else(|| Error::Corrupt {
            what: "chunk",
            offset: r.blob_offset,
            detail: format!(
                "{}: a delta chunk (source {}) without a record in the chunk-bases section",
                Excerpt(&self.source.name()),
                r.source
            ),
        })?;
        Ok(record.base)
    }
}

/// The writer's side: where a thin child's new chunks find their bases.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkBaseSource {
    /// The chain's archives, nearest first, as far as they were opened (at least
    /// the direct parent, which reaches the others through its own parents).
    archives: Vec<Archive>,
    /// Bases of the delta blobs the child may reference, in the child's
    /// numbering, sorted by (source, blob offset).
    bases: Vec<ChunkBase>,
}

impl ChunkBaseSource {
    /// From the whole chain (`chain` nearest first, as the child lists it): the
    /// bases of `deltas`, the chain's delta blobs in the child's numbering
    /// (source *k* + 1 = `chain[k]`, where the blob is stored), each found in its
    /// ancestor's own chunk-bases sections when that ancestor's parents list is
    /// the rest of `chain` (else it has no base here, and the child does not
    /// reference it). Only the bases of `deltas` are kept, so memory follows the
    /// chain's chunk indexes, not what their sections claim. `deltas` is sorted.
    pub(crate) fn from_chain(chain: &[Archive], deltas: &[(u16, u64)]) -> Result<Self> {
        let mut bases = Vec::new();
        for (k, a) in chain.iter().enumerate() {
            let source = (k + 1) as u16;
            let from = deltas.partition_point(|d| d.0 < source);
            let to = deltas.partition_point(|d| d.0 <= source);
            if from == to {
                continue;
            }
            let own = a.inner.parents.chunk_bases(&a.inner)?;
            if own.is_empty() || !parents_are(a, &chain[k + 1..])? {
                continue;
            }
            for &(_, blob_offset) in &deltas[from..to] {
                let Some(b) = own.find(&a.inner, 0, blob_offset)? else {
                    continue;
                };
                if let Some(base_source) = b.base.source.checked_add(source) {
                    bases.push(ChunkBase {
                        source,
                        blob_offset,
                        base: ChunkRecord {
                            source: base_source,
                            ..b.base
                        },
                    });
                }
            }
        }
        bases.sort_unstable_by_key(ChunkBase::key);
        bases.dedup_by_key(|b| b.key());
        Ok(Self {
            archives: chain.to_vec(),
            bases,
        })
    }

    /// From the direct parent alone, for a child whose parents list is `refs`
    /// (`refs[0]` the parent, then the parent's own list): the bases of `deltas`
    /// (delta blobs the child may reference, in its numbering: source ≥ 1), found
    /// in the parent's chunk-bases sections one place up the list.
    pub(crate) fn from_direct(
        parent: &Archive,
        refs: &[ParentRef],
        deltas: &[(u16, u64)],
    ) -> Result<Self> {
        let own = parent.inner.parents.chunk_bases(&parent.inner)?;
        let agrees = !own.is_empty()
            && parent
                .parents()?
                .iter()
                .map(|p| p.root_hash)
                .eq(refs.iter().skip(1).map(|r| r.root_hash));
        let mut bases = Vec::new();
        if agrees {
            for &(source, blob_offset) in deltas {
                let Some(in_parent) = source.checked_sub(1) else {
                    continue;
                };
                let Some(b) = own.find(&parent.inner, in_parent, blob_offset)? else {
                    continue;
                };
                if let Some(base_source) = b.base.source.checked_add(1) {
                    bases.push(ChunkBase {
                        source,
                        blob_offset,
                        base: ChunkRecord {
                            source: base_source,
                            ..b.base
                        },
                    });
                }
            }
        }
        bases.sort_unstable_by_key(ChunkBase::key);
        bases.dedup_by_key(|b| b.key());
        Ok(Self {
            archives: vec![parent.clone()],
            bases,
        })
    }

    /// The base of the delta blob (`source`, `blob_offset`) of the chain.
    pub(crate) fn base_of(&self, source: u16, blob_offset: u64) -> Option<&ChunkBase> {
        find(&self.bases, source, blob_offset)
    }

    /// The direct parent.
    pub(crate) fn parent(&self) -> Option<&Archive> {
        self.archives.first()
    }

    /// The decoded bytes of `base` (child numbering, `source` ≥ 1), read through
    /// the holding archive's chunk cache and checks.
    pub(crate) fn load(&self, base: &ChunkRecord) -> Result<ChunkData> {
        let i = usize::from(base.source)
            .checked_sub(1)
            .ok_or_else(|| Error::InvalidSetting {
                setting: "parents",
                detail: "a chunk base in the child itself".into(),
            })?;
        match self.archives.get(i) {
            Some(a) => a.inner.chunk(&ChunkRecord { source: 0, ..*base }),
            None => {
                let parent = self.parent().ok_or_else(|| Error::InvalidSetting {
                    setting: "parents",
                    detail: "chunk bases without a parent".into(),
                })?;
                parent.inner.chunk(&ChunkRecord {
                    source: base.source - 1,
                    ..*base
                })
            }
        }
    }
}

/// Whether `a`'s parents list names exactly `rest` (by root hash, in order).
fn parents_are(a: &Archive, rest: &[Archive]) -> Result<bool> {
    Ok(a.parents()?
        .iter()
        .map(|p| p.root_hash)
        .eq(rest.iter().map(Archive::root_hash)))
}

impl ParentSet {
    /// A new chunk of the child holding bytes `from..to` of entry `name`: its
    /// delta against the base the chain offers for that place, with the base
    /// (child numbering), or `None` (no such entry or chunk in the direct parent,
    /// or the codec has no delta form for this base).
    pub(crate) fn chunk_delta(
        &self,
        codec: &dyn Compressor,
        data: &[u8],
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Option<(Vec<u8>, ChunkRecord)>> {
        let Some(base) = self.chunk_base_candidate(name, from, to)? else {
            return Ok(None);
        };
        let bytes = self.chunk_bases.load(&base)?;
        let mut out = Vec::new();
        let made = codec
            .compress_with_base(data, &bytes, &mut out)
            .map_err(|error| Error::Codec {
                codec: codec.name().to_string(),
                what: "chunk",
                offset: 0,
                error,
            })?;
        Ok(made.then_some((out, base)))
    }

    /// The base for bytes `from..to` of entry `name`: the direct parent's chunk
    /// that overlaps most the same bytes of its entry of that name (the first
    /// such, on a tie), as stored whole in the chain — that chunk itself, or its
    /// own base when it is a delta.
    fn chunk_base_candidate(&self, name: &str, from: u64, to: u64) -> Result<Option<ChunkRecord>> {
        let Some(parent) = self.chunk_bases.parent() else {
            return Ok(None);
        };
        let entry = match parent.entry(name) {
            Ok(e) => e,
            Err(Error::EntryNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !entry.kind.has_data() || entry.size == 0 {
            return Ok(None);
        }
        // Past the end of a file that shrank: its last bytes.
        let start = entry.offset + from.min(entry.size - 1);
        let end = entry.offset + to.min(entry.size).max(from.min(entry.size - 1) + 1);
        let records = parent.chunk_records(start, end)?;
        let overlap = |r: &ChunkRecord| r.logical_end().min(end) - r.logical_offset.max(start);
        let Some(best) = records
            .iter()
            .filter(|r| !r.is_zero())
            .max_by_key(|r| (overlap(r), std::cmp::Reverse(r.logical_offset)))
        else {
            return Ok(None);
        };
        let Some(p) = self.lookup(&best.id) else {
            return Ok(None);
        };
        if p.flags & CHUNK_DELTA != 0 {
            return Ok(self.chunk_base(p.source, p.blob_offset).map(|b| b.base));
        }
        Ok(Some(ChunkRecord {
            logical_offset: 0,
            blob_offset: p.blob_offset,
            raw_len: best.raw_len,
            stored_len: p.stored_len,
            crc: p.crc,
            source: p.source,
            flags: p.flags,
            id: p.id,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base(source: u16, offset: u64) -> ChunkRecord {
        ChunkRecord {
            logical_offset: 0,
            blob_offset: offset,
            raw_len: 1000,
            stored_len: 400,
            crc: 7,
            source,
            flags: 0,
            id: [5; 32],
        }
    }

    fn sample() -> Vec<ChunkBase> {
        vec![
            ChunkBase {
                source: 0,
                blob_offset: 100,
                base: base(1, 16),
            },
            ChunkBase {
                source: 1,
                blob_offset: 50,
                base: base(3, 900),
            },
        ]
    }

    #[test]
    fn section_round_trips_with_the_documented_layout() {
        let bytes = encode_chunk_bases(&sample());
        assert_eq!(bytes.len(), 8 + 2 * CHUNK_BASE_RECORD_LEN);
        assert_eq!(CHUNK_BASE_RECORD_LEN, 80);
        assert_eq!(&bytes[0..8], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &100u64.to_le_bytes());
        assert_eq!(&bytes[16..18], &0u16.to_le_bytes());
        assert_eq!(&bytes[18..24], &[0; 6]);
        // The base's chunk record: logical offset 0, blob offset, lengths, CRC,
        // source, flags, reserved, id.
        assert_eq!(&bytes[24..32], &[0; 8]);
        assert_eq!(&bytes[32..40], &16u64.to_le_bytes());
        assert_eq!(&bytes[40..44], &1000u32.to_le_bytes());
        assert_eq!(&bytes[44..48], &400u32.to_le_bytes());
        assert_eq!(&bytes[52..54], &1u16.to_le_bytes());
        assert_eq!(&bytes[56..88], &[5; 32]);
        assert_eq!(&bytes[88 + 8..88 + 10], &1u16.to_le_bytes());
        assert_eq!(decode_chunk_bases(&bytes, 0).unwrap(), sample());
        assert_eq!(find(&sample(), 1, 50).unwrap().base.source, 3);
        assert!(find(&sample(), 0, 50).is_none());
    }

    #[test]
    fn malformed_sections_are_corrupt() {
        let good = encode_chunk_bases(&sample());
        let corrupt = |b: &[u8]| decode_chunk_bases(b, 0).unwrap_err().is_corruption();
        assert!(corrupt(&[0; 8]));
        assert!(corrupt(&good[..good.len() - 1]));
        let mut long = good.clone();
        long.push(0);
        assert!(corrupt(&long));
        let mut b = good.clone();
        b[4] = 1; // reserved
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[20] = 1; // reserved after the source
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[24] = 1; // base logical offset
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[54] = CHUNK_DELTA; // a base that is a delta
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[54] = crate::layout::CHUNK_ZERO; // a base that is zeros
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[52..54].copy_from_slice(&0u16.to_le_bytes()); // base in the archive itself
        assert!(corrupt(&b));
        let mut b = good.clone();
        b[88 + 8..88 + 10].copy_from_slice(&3u16.to_le_bytes()); // base not further up
        assert!(corrupt(&b));
        let mut b = good;
        b[88..96].copy_from_slice(&100u64.to_le_bytes()); // (1, 100) after (0, 100): fine
        assert!(decode_chunk_bases(&b, 0).is_ok());
        b[88 + 8..88 + 10].copy_from_slice(&0u16.to_le_bytes()); // (0, 100) twice
        assert!(corrupt(&b));
    }
}
