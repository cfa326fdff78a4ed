//! `hexz diff`: what two archives share, chunk by chunk and entry by entry.
//!
//! Chunks are compared by id (BLAKE3 of the raw bytes), read from the chunk
//! indexes only. Entries are matched by name; a pair is *changed* when any of kind,
//! size, mode, mtime, owner, symlink target, user columns or content differ.
//! Content is compared without reading bytes when both entries lie on the same
//! chunk ids at the same place in their first chunk; otherwise the bytes are read
//! and compared.

use std::collections::{HashMap, HashSet};

use hexz_format::{Archive, Entry};
use serde::Serialize;

use crate::error::Result;

/// Distinct non-zero chunks of two archives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChunkDiff {
    /// Chunk ids in both.
    pub shared: u64,
    /// Raw bytes of the shared chunks.
    pub shared_bytes: u64,
    /// Ids only in the first archive.
    pub only_a: u64,
    /// Their raw bytes.
    pub only_a_bytes: u64,
    /// Ids only in the second archive.
    pub only_b: u64,
    /// Their raw bytes.
    pub only_b_bytes: u64,
}

/// An entry present in both archives with differences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedEntry {
    /// Its name.
    pub name: String,
    /// What differs: `kind`, `size`, `content`, `mode`, `mtime`, `owner`,
    /// `target`, `columns`.
    pub what: Vec<&'static str>,
}

/// The result of [`diff`].
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// The first archive (path or URL).
    pub a: String,
    /// The second archive.
    pub b: String,
    /// Chunk-level comparison.
    pub chunks: ChunkDiff,
    /// Entries only in `b`, in `b`'s order.
    pub added: Vec<String>,
    /// Entries only in `a`, in `a`'s order.
    pub removed: Vec<String>,
    /// Entries in both that differ, in `b`'s order.
    pub changed: Vec<ChangedEntry>,
    /// Entries in both that are identical.
    pub unchanged: u64,
}

/// Compare `a` (old) with `b` (new).
pub fn diff(a: &Archive, b: &Archive) -> Result<DiffReport> {
    let ids_a = chunk_ids(a)?;
    let ids_b = chunk_ids(b)?;
    let mut chunks = ChunkDiff::default();
    for (id, len) in &ids_a {
        if ids_b.contains_key(id) {
            chunks.shared += 1;
            chunks.shared_bytes += u64::from(*len);
        } else {
            chunks.only_a += 1;
            chunks.only_a_bytes += u64::from(*len);
        }
    }
    for (id, len) in &ids_b {
        if !ids_a.contains_key(id) {
            chunks.only_b += 1;
            chunks.only_b_bytes += u64::from(*len);
        }
    }
    let mut old: HashMap<String, Entry> = HashMap::new();
    let mut old_order = Vec::new();
    for e in a.entries() {
        let e = e?;
        old_order.push(e.name.clone());
        old.insert(e.name.clone(), e);
    }
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut seen = HashSet::new();
    let mut unchanged = 0;
    for e in b.entries() {
        let new = e?;
        let Some(prev) = old.get(&new.name) else {
            added.push(new.name.clone());
            continue;
        };
        seen.insert(new.name.clone());
        let what = differences(a, prev, b, &new)?;
        if what.is_empty() {
            unchanged += 1;
        } else {
            changed.push(ChangedEntry {
                name: new.name.clone(),
                what,
            });
        }
    }
    let removed = old_order
        .into_iter()
        .filter(|n| !seen.contains(n))
        .collect();
    Ok(DiffReport {
        a: a.source_name(),
        b: b.source_name(),
        chunks,
        added,
        removed,
        changed,
        unchanged,
    })
}

/// Distinct non-zero chunk ids and their raw lengths.
fn chunk_ids(a: &Archive) -> Result<HashMap<[u8; 32], u32>> {
    let mut ids = HashMap::new();
    // Bounded windows of the stream keep the record lists small.
    const WINDOW: u64 = 1 << 30;
    let mut at = 0;
    while at < a.len() {
        let end = (at + WINDOW).min(a.len());
        let records = a.chunk_records(at, end)?;
        for r in &records {
            if !r.is_zero() {
                ids.insert(r.id, r.raw_len);
            }
        }
        at = records.last().map_or(end, |r| r.logical_end());
    }
    Ok(ids)
}

fn differences(a: &Archive, x: &Entry, b: &Archive, y: &Entry) -> Result<Vec<&'static str>> {
    let mut what = Vec::new();
    if x.kind != y.kind {
        what.push("kind");
    }
    if x.size != y.size {
        what.push("size");
    }
    if x.kind == y.kind
        && x.size == y.size
        && x.kind.has_data()
        && x.size > 0
        && !same_content(a, x, b, y)?
    {
        what.push("content");
    }
    if x.mode != y.mode {
        what.push("mode");
    }
    if (x.mtime, x.mtime_nsec) != (y.mtime, y.mtime_nsec) {
        what.push("mtime");
    }
    if x.owner != y.owner {
        what.push("owner");
    }
    if x.target != y.target {
        what.push("target");
    }
    if x.columns != y.columns {
        what.push("columns");
    }
    Ok(what)
}

/// Whether two entries of the same size hold the same bytes.
fn same_content(a: &Archive, x: &Entry, b: &Archive, y: &Entry) -> Result<bool> {
    let rx = a.chunk_records(x.offset, x.offset + x.size)?;
    let ry = b.chunk_records(y.offset, y.offset + y.size)?;
    let lead =
        |r: &[hexz_format::layout::ChunkRecord], at: u64| r.first().map(|c| at - c.logical_offset);
    let same_chunks = rx.len() == ry.len()
        && lead(&rx, x.offset) == lead(&ry, y.offset)
        && rx
            .iter()
            .zip(&ry)
            .all(|(p, q)| p.id == q.id && p.raw_len == q.raw_len && p.is_zero() == q.is_zero());
    if same_chunks {
        return Ok(true);
    }
    // Chunk boundaries differ (neighbouring entries changed): compare bytes.
    const STEP: u64 = 1 << 20;
    let mut at = 0;
    let mut bx = vec![0; STEP.min(x.size) as usize];
    let mut by = bx.clone();
    while at < x.size {
        let n = STEP.min(x.size - at) as usize;
        a.read_entry_at(x, at, &mut bx[..n])?;
        b.read_entry_at(y, at, &mut by[..n])?;
        if bx[..n] != by[..n] {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}
