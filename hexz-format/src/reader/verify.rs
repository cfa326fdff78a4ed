//! Full verification (FORMAT.md §13): every page and section, and with `deep` every
//! chunk blob, checked as a read would; and every figure the directory and the
//! trailer state that can be recomputed from the tree — counts, sizes, the
//! logical size, stored bytes, the trailer's flags — recomputed and compared, so
//! that a directory that lies about its index is refused even when every
//! checksum is right.
//!
//! Memory: the distinct chunk blobs of the index (one 64-byte record per non-zero
//! chunk record, plus one per chunk-bases record, which must each name a delta
//! blob of the index) and one decoded page at a time. Names are not kept: the
//! catalog and the name index are compared through a keyed fingerprint of their
//! (id, name) pairs.

use rayon::prelude::*;

use super::{Archive, VerifyReport};
use crate::crypto::seal::BlobRole;
use crate::error::{Error, Excerpt, Result};
use crate::layout::{
    CHUNK_DELTA, ChunkRecord, FLAG_ENCRYPTED, FLAG_SIGNED, HEADER_LEN, TRAILER_LEN,
};
use crate::page::{Page, TreeKind};
use crate::source::read_vec;

/// Byte offset of `stats.<field>` in the directory, by field order.
const STATS_OFFSET: u64 = 64;

impl Archive {
    /// Check the header, every page, every stored chunk (CRC32, decompression,
    /// BLAKE3 id) and the agreement of catalog and name index. Bypasses the caches.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(true)
    }

    /// [`verify`](Self::verify); with `deep` false the chunk blobs are skipped (the
    /// tree — every page and section — is still checked, and so is every figure
    /// of the directory and flag of the trailer).
    pub fn verify_with(&self, deep: bool) -> Result<VerifyReport> {
        let inner = &self.inner;
        let mut report = VerifyReport::default();
        // Open reads the header only when it lies in the tail it fetched.
        let header = read_vec(inner.source.as_ref(), "header", 0, HEADER_LEN)?;
        crate::layout::check_header(&header, &inner.trailer)?;
        self.check_envelope_flags()?;
        let dir = &inner.directory;
        // Chunk index: walk every leaf (the walk checks the record count against
        // the directory's), collect the non-zero records.
        let mut blobs: Vec<ChunkRecord> = Vec::new();
        let mut expected_offset = 0u64;
        let (mut zero_chunks, mut zero_bytes) = (0u64, 0u64);
        inner.walk_tree(
            &dir.chunk_tree,
            TreeKind::Chunks,
            &mut report,
            &mut |page| {
                if let Page::ChunkLeaf(records) = page {
                    for r in records {
                        if r.logical_offset != expected_offset {
                            return Err(
                                inner.corrupt("chunk index", "chunks do not tile the stream")
                            );
                        }
                        expected_offset = r.logical_end();
                        if r.is_zero() {
                            zero_chunks += 1;
                            zero_bytes += u64::from(r.raw_len);
                        } else {
                            blobs.push(*r);
                        }
                    }
                }
                Ok(())
            },
        )?;
        if expected_offset != dir.stats.logical_size {
            return Err(inner.corrupt("chunk index", "chunks do not cover the logical stream"));
        }
        // Raw bytes per source (0: this archive, k: parent k), for the parents
        // section's counts.
        let mut per_source: Vec<(u64, u64)> = Vec::new();
        for r in &blobs {
            let i = usize::from(r.source);
            if per_source.len() <= i {
                per_source.resize(i + 1, (0, 0));
            }
            per_source[i].0 += 1;
            per_source[i].1 += u64::from(r.raw_len);
        }
        if per_source.len() > 1 || self.is_thin() {
            self.verify_parent_counts(&per_source)?;
            // Even the fast check opens every parent that serves chunks: a missing
            // or substituted parent is an error, never a pass.
            self.check_parents()?;
        }
        self.check_chunk_bases(&mut blobs)?;
        blobs.sort_unstable_by_key(|r| (r.source, r.blob_offset));
        // Records sharing a blob must agree on everything about it.
        let same_blob = |a: &ChunkRecord, b: &ChunkRecord| {
            (a.raw_len, a.stored_len, a.crc, a.flags, a.id)
                == (b.raw_len, b.stored_len, b.crc, b.flags, b.id)
        };
        if blobs.windows(2).any(|w| {
            (w[0].source, w[0].blob_offset) == (w[1].source, w[1].blob_offset)
                && !same_blob(&w[0], &w[1])
        }) {
            return Err(inner.corrupt(
                "chunk index",
                "records sharing a blob disagree (index or chunk-bases records)",
            ));
        }
        blobs.dedup_by_key(|r| (r.source, r.blob_offset));
        // The directory's counts of what this archive stores, recomputed. (Base
        // records always lie in a parent: source ≥ 1.)
        let own = blobs.iter().filter(|r| r.source == 0);
        let stats = &dir.stats;
        self.check_stat(3, "unique_chunk_count", stats.unique_chunk_count, {
            own.clone().count() as u64
        })?;
        self.check_stat(4, "unique_raw_bytes", stats.unique_raw_bytes, {
            own.clone().map(|r| u64::from(r.raw_len)).sum()
        })?;
        self.check_stat(5, "stored_chunk_bytes", stats.stored_chunk_bytes, {
            own.map(|r| u64::from(r.stored_len)).sum()
        })?;
        self.check_stat(6, "zero_chunk_count", stats.zero_chunk_count, zero_chunks)?;
        self.check_stat(7, "zero_bytes", stats.zero_bytes, zero_bytes)?;
        if deep {
            report.chunks = blobs.len() as u64;
            report.stored_bytes += blobs.iter().map(|r| u64::from(r.stored_len)).sum::<u64>();
            blobs
                .par_iter()
                .try_for_each(|r| inner.load_chunk(r, true).map(drop))?;
        }
        drop(blobs);
        report.entries = self.verify_catalog(&mut report)?;
        for s in &dir.sections {
            inner.load_blob(&s.page, "section", BlobRole::Section)?;
            report.pages += 1;
            report.stored_bytes += u64::from(s.page.stored_len);
        }
        Ok(report)
    }

    /// `stats.<name>` (field `index` of the directory's stats) must be `actual`.
    fn check_stat(&self, index: u64, name: &str, stated: u64, actual: u64) -> Result<()> {
        if stated == actual {
            return Ok(());
        }
        Err(Error::Corrupt {
            what: "directory",
            offset: self.inner.trailer.directory_offset + STATS_OFFSET + 8 * index,
            detail: format!(
                "{}: stats.{name} is {stated}, but the chunk index gives {actual}",
                Excerpt(&self.source_name())
            ),
        })
    }

    /// The trailer's flags must say what the envelope holds: "signed" exactly
    /// when it holds a signature; key slots only in an encrypted archive; no
    /// envelope without a record (writers leave it out).
    fn check_envelope_flags(&self) -> Result<()> {
        let t = &self.inner.trailer;
        let at = self.archive_size() - TRAILER_LEN as u64 + 28;
        let corrupt = |detail: &str| Error::Corrupt {
            what: "trailer",
            offset: at,
            detail: format!("{}: {detail}", Excerpt(&self.source_name())),
        };
        let (signatures, slots) = match &self.inner.envelope {
            Some(e) if e.is_empty() => {
                return Err(corrupt("the envelope holds no key slot and no signature"));
            }
            Some(e) => (e.signatures.len(), e.slots.len()),
            None => (0, 0),
        };
        match (t.flags & FLAG_SIGNED != 0, signatures > 0) {
            (true, false) => {
                return Err(corrupt(
                    "flagged signed, but the envelope holds no signature",
                ));
            }
            (false, true) => {
                return Err(corrupt(
                    "the envelope holds a signature, but the signed flag is clear",
                ));
            }
            _ => {}
        }
        if t.flags & FLAG_ENCRYPTED == 0 && slots > 0 {
            return Err(corrupt("key slots in an archive that is not encrypted"));
        }
        Ok(())
    }

    /// Every delta blob the chunk index reads has exactly one record in the
    /// chunk-bases sections, and every record names one (read a section at a
    /// time); the base records join `blobs` (each base is then checked like a
    /// chunk, and must agree with any index record of the same blob).
    fn check_chunk_bases(&self, blobs: &mut Vec<ChunkRecord>) -> Result<()> {
        let inner = &self.inner;
        let mut deltas: Vec<(u16, u64)> = blobs
            .iter()
            .filter(|r| r.flags & CHUNK_DELTA != 0)
            .map(|r| (r.source, r.blob_offset))
            .collect();
        deltas.sort_unstable();
        deltas.dedup();
        let missing = |(source, offset): (u16, u64)| Error::Corrupt {
            what: "chunk index",
            offset,
            detail: format!(
                "{}: a delta chunk (source {source}) without a record in the chunk-bases section",
                Excerpt(&self.source_name())
            ),
        };
        let bases = inner.parents.chunk_bases(inner)?;
        let mut next = 0;
        bases.for_each(inner, &mut |b| {
            let key = (b.source, b.blob_offset);
            match deltas.get(next) {
                Some(&d) if d == key => {
                    next += 1;
                    blobs.push(b.base);
                    Ok(())
                }
                Some(&d) if d < key => Err(missing(d)),
                _ => Err(Error::Corrupt {
                    what: "chunk-bases section",
                    offset: b.blob_offset,
                    detail: format!(
                        "{}: a record for a blob (source {}) that the chunk index does not \
                         read as a delta chunk",
                        Excerpt(&self.source_name()),
                        b.source
                    ),
                }),
            }
        })?;
        match deltas.get(next) {
            Some(&d) => Err(missing(d)),
            None => Ok(()),
        }
    }

    /// The catalog and the name index (FORMAT.md §13, steps 4 to 6, and 8): entry
    /// ids in order, entries in stream order within the logical stream, columns
    /// rows valid, names strictly increasing, and the same (id, name) pairs in
    /// both trees. Returns the number of entries.
    fn verify_catalog(&self, report: &mut VerifyReport) -> Result<u64> {
        let inner = &self.inner;
        let dir = &inner.directory;
        let schema = inner.schema()?;
        let fingerprint = PairFingerprint::new()?;
        let mut from_catalog = 0u128;
        let mut entries = 0u64;
        let mut stream_end = 0u64;
        inner.walk_tree(&dir.catalog_tree, TreeKind::Catalog, report, &mut |page| {
            if let Page::CatalogLeaf(list) = page {
                for e in list {
                    if e.id != entries || e.offset < stream_end {
                        return Err(inner.corrupt("catalog", "entries out of order"));
                    }
                    stream_end = e.offset + e.size;
                    if let Some(schema) = &schema {
                        schema
                            .check_row(&e.columns)
                            .map_err(|error| Error::CorruptColumns {
                                context: format!("columns of entry `{}`", Excerpt(&e.name)),
                                error,
                            })?;
                    }
                    entries += 1;
                    from_catalog ^= fingerprint.of(e.id, &e.name);
                }
            }
            Ok(())
        })?;
        if stream_end > dir.stats.logical_size {
            return Err(inner.corrupt("catalog", "an entry extends past the logical stream"));
        }
        let mut from_names = 0u128;
        let mut names = 0u64;
        let mut previous: Option<String> = None;
        inner.walk_tree(&dir.name_tree, TreeKind::Names, report, &mut |page| {
            if let Page::NameLeaf(list) = page {
                for (name, id) in list {
                    if previous.as_ref().is_some_and(|p| p >= name) {
                        return Err(inner.corrupt("name index", "names out of order"));
                    }
                    previous = Some(name.clone());
                    from_names ^= fingerprint.of(*id, name);
                    names += 1;
                }
            }
            Ok(())
        })?;
        if entries != dir.stats.entry_count || names != dir.stats.entry_count {
            return Err(inner.corrupt("catalog", "entry counts disagree"));
        }
        if from_catalog != from_names {
            return Err(inner.corrupt(
                "name index",
                "a name points at another entry (the name index and the catalog list \
                 different names)",
            ));
        }
        Ok(entries)
    }
}

/// A fingerprint of (id, name) pairs: BLAKE3 keyed with a key drawn for this
/// verification, 128 bits, XORed over a set. Two sets of distinct pairs (catalog
/// ids are distinct, as are the name index's names) that differ give different
/// sums but with probability 2^-128, whatever the archive holds: its writer
/// cannot know the key.
struct PairFingerprint {
    key: [u8; 32],
}

impl PairFingerprint {
    fn new() -> Result<Self> {
        let mut key = [0; 32];
        crate::crypto::random_bytes(&mut key)?;
        Ok(Self { key })
    }

    fn of(&self, id: u64, name: &str) -> u128 {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&id.to_le_bytes());
        h.update(name.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        u128::from_le_bytes(out)
    }
}
