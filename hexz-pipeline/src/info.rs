//! `hexz info`: what an archive holds, for people and for `--json`.

use hexz_format::Archive;
use hexz_format::layout::SECTION_PROVENANCE;
use serde::Serialize;

use crate::error::Result;

/// Summary of an archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInfo {
    /// Path or URL.
    pub source: String,
    /// `major.minor` of the writer.
    pub format_version: String,
    /// BLAKE3 of the directory, hex.
    pub root_hash: String,
    /// Entries in the catalog.
    pub entries: u64,
    /// Bytes in the logical stream.
    pub logical_bytes: u64,
    /// Size of the archive file.
    pub stored_bytes: u64,
    /// Raw bytes of distinct non-zero chunks.
    pub unique_bytes: u64,
    /// Stored (compressed) bytes of the distinct chunks.
    pub chunk_bytes_stored: u64,
    /// Chunks in the stream.
    pub chunks: u64,
    /// Distinct stored chunks.
    pub unique_chunks: u64,
    /// All-zero chunks (not stored).
    pub zero_chunks: u64,
    /// Logical bytes / unique bytes (zeros count as deduplicated).
    pub dedup_ratio: f64,
    /// Unique bytes / their stored size.
    pub compression_ratio: f64,
    /// Logical bytes / archive size.
    pub total_ratio: f64,
    /// FastCDC parameters.
    pub chunking: Chunking,
    /// Codec.
    pub codec: Codec,
    /// Typed user columns (name and type, in order), if the archive has a schema.
    pub columns: Option<Vec<ColumnInfo>>,
    /// Provenance recorded at build time, if any (and not larger than
    /// [`MAX_PARSED_PROVENANCE`]).
    pub provenance: Option<serde_json::Value>,
    /// Thin snapshot: the parents it names, nearest first (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<ParentInfo>,
    /// Encrypted archives: one line per key slot (kind and parameters, nothing secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_slots: Option<Vec<String>>,
    /// Public keys of the embedded signatures (not checked here: `hexz verify --key`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<String>,
    /// Stored bytes by part, when asked for ([`with_space`]: reads every index page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<Space>,
}

/// Stored bytes of the archive file by part (see [`hexz_format::SpaceReport`]).
#[derive(Debug, Clone, Serialize)]
pub struct Space {
    /// Chunk blobs stored in this file.
    pub chunk_blobs: u64,
    /// Of those, the blobs stored as deltas against a parent's chunk.
    pub delta_chunks: u64,
    /// Their stored bytes (part of `chunk_blobs`).
    pub delta_chunk_bytes: u64,
    /// Chunk-index pages.
    pub chunk_index: u64,
    /// Catalog pages.
    pub catalog: u64,
    /// Name-index pages.
    pub name_index: u64,
    /// Section blobs by kind: `{kind, count, bytes}`.
    pub sections: Vec<SectionSpace>,
    /// Directory, envelope, header and trailer.
    pub framing: u64,
    /// Everything but the chunk blobs.
    pub metadata: u64,
    /// The file size.
    pub total: u64,
}

/// Stored bytes of the sections of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct SectionSpace {
    /// Section kind (1 provenance, 2 parents, 3 column schema, 4 page bases, 5
    /// chunk bases).
    pub kind: u16,
    /// Sections of this kind.
    pub count: u64,
    /// Their stored bytes.
    pub bytes: u64,
}

/// Fill [`ArchiveInfo::space`]: reads every index page of `archive` once (no chunk).
pub fn with_space(archive: &Archive, info: &mut ArchiveInfo) -> Result<()> {
    let r = archive.space()?;
    info.space = Some(Space {
        chunk_blobs: r.chunk_blobs,
        delta_chunks: r.delta_chunks,
        delta_chunk_bytes: r.delta_chunk_bytes,
        chunk_index: r.chunk_index,
        catalog: r.catalog,
        name_index: r.name_index,
        metadata: r.metadata(),
        sections: r
            .sections
            .iter()
            .map(|s| SectionSpace {
                kind: s.kind,
                count: s.count,
                bytes: s.bytes,
            })
            .collect(),
        framing: r.framing,
        total: r.total,
    });
    Ok(())
}

/// One parent of a thin child, as the child records it (nothing is opened).
#[derive(Debug, Clone, Serialize)]
pub struct ParentInfo {
    /// Root hash, hex.
    pub root_hash: String,
    /// Location hint as recorded (relative to the child's location, a URL or an
    /// absolute path).
    pub hint: String,
    /// The archive's size when the child was built.
    pub archive_bytes: u64,
    /// Chunk records of the child read from it.
    pub chunks: u64,
    /// Logical bytes of the child read from it.
    pub bytes: u64,
}

/// One user column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// `bool`, `int64`, `float64`, `utf8` or `bytes`.
    #[serde(rename = "type")]
    pub ty: &'static str,
}

/// FastCDC parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Chunking {
    /// Algorithm.
    pub algorithm: &'static str,
    /// Smallest chunk.
    pub min: u32,
    /// Average chunk.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

/// Codec name and level.
#[derive(Debug, Clone, Serialize)]
pub struct Codec {
    /// Name.
    pub name: String,
    /// Level (0 if the codec has none).
    pub level: i32,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Largest provenance section [`info`] parses (1 MiB; `hexz build` writes a few
/// KiB, a recipe's text and one digest per input).
pub const MAX_PARSED_PROVENANCE: usize = 1 << 20;

/// Gather [`ArchiveInfo`] (reads the provenance and parents sections, nothing else).
pub fn info(archive: &Archive) -> Result<ArchiveInfo> {
    let d = archive.directory();
    let s = &d.stats;
    let envelope = archive.envelope()?;
    // A parsed JSON value can take many times its text (16 times for a list of
    // small numbers): a provenance larger than any build writes is not parsed.
    let provenance = archive
        .section(SECTION_PROVENANCE)?
        .filter(|bytes| bytes.len() <= MAX_PARSED_PROVENANCE)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    Ok(ArchiveInfo {
        source: archive.source_name(),
        format_version: format!("{}.{}", d.major, d.minor),
        root_hash: archive.root_hash().to_string(),
        entries: s.entry_count,
        logical_bytes: s.logical_size,
        stored_bytes: archive.archive_size(),
        unique_bytes: s.unique_raw_bytes,
        chunk_bytes_stored: s.stored_chunk_bytes,
        chunks: s.chunk_count,
        unique_chunks: s.unique_chunk_count,
        zero_chunks: s.zero_chunk_count,
        dedup_ratio: ratio(s.logical_size, s.unique_raw_bytes),
        compression_ratio: ratio(s.unique_raw_bytes, s.stored_chunk_bytes),
        total_ratio: ratio(s.logical_size, archive.archive_size()),
        chunking: Chunking {
            algorithm: "fastcdc-2020",
            min: d.chunking.min,
            avg: d.chunking.avg,
            max: d.chunking.max,
        },
        codec: Codec {
            name: d.codec.clone(),
            level: d.codec_level,
        },
        columns: archive.columns()?.map(|s| {
            s.columns()
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name.clone(),
                    ty: c.ty.as_str(),
                })
                .collect()
        }),
        provenance,
        parents: archive
            .parents()?
            .into_iter()
            .map(|p| ParentInfo {
                root_hash: p.root_hash.to_string(),
                hint: p.hint,
                archive_bytes: p.archive_size,
                chunks: p.chunks,
                bytes: p.bytes,
            })
            .collect(),
        key_slots: if archive.is_encrypted() {
            Some(
                envelope
                    .iter()
                    .flat_map(|e| &e.slots)
                    .map(|s| s.describe())
                    .collect(),
            )
        } else {
            None
        },
        signed_by: envelope
            .iter()
            .flat_map(|e| &e.signatures)
            .map(|s| s.key().to_string())
            .collect(),
        space: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use hexz_format::{ArchiveWriter, MemorySource, NoCompression, ReadOptions, WriterOptions};

    use super::*;

    fn with_provenance(json: Vec<u8>) -> Archive {
        let mut w =
            ArchiveWriter::new(Vec::new(), WriterOptions::new(Arc::new(NoCompression))).unwrap();
        w.add_section(SECTION_PROVENANCE, false, json).unwrap();
        let (bytes, _) = w.finish().unwrap();
        Archive::open(
            Arc::new(MemorySource::new(bytes, "p.hxz")),
            &crate::Registry::default(),
            ReadOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_provenance_larger_than_any_build_writes_is_not_parsed() {
        let small = with_provenance(br#"{"tool":"hexz test"}"#.to_vec());
        assert_eq!(
            info(&small).unwrap().provenance.unwrap()["tool"],
            "hexz test"
        );
        // A list of small numbers takes 16 times its text once parsed: 2 MiB of
        // it would be 32 MiB of values (16 MiB, the largest section, 256 MiB).
        let mut list = b"[0".to_vec();
        while list.len() < 2 << 20 {
            list.extend_from_slice(b",0");
        }
        list.push(b']');
        let big = with_provenance(list);
        assert!(big.section(SECTION_PROVENANCE).unwrap().is_some());
        assert!(info(&big).unwrap().provenance.is_none());
    }
}
