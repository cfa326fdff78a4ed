//! `hexz squash`: a self-contained copy of a thin child.
//!
//! The child's entries are written again, in stream order, with the same metadata
//! and user columns, the same chunking parameters and the same codec and level;
//! every section but the parents list is copied. The logical stream is therefore
//! the same, so are the chunk cuts and ids: squashing a child gives exactly the
//! archive its inputs would have given without a parent (same provenance
//! included). After writing, the copy is verified (every page and chunk) and its
//! chunk index is compared with the child's — same offsets, lengths and ids — and
//! its catalog entry by entry; any difference is an error and removes the copy.

use std::path::{Path, PathBuf};

use hexz_format::destination::{self, DestinationError, Writes};
use hexz_format::layout::{
    SECTION_CHUNK_BASES, SECTION_COLUMNS, SECTION_CRITICAL, SECTION_PAGE_BASES, SECTION_PARENTS,
};
use hexz_format::{Archive, ArchiveWriter, EntryKind, EntryMeta, ReadOptions, Summary};
use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::registry::Registry;

/// What [`squash`] wrote and checked.
#[derive(Debug, Clone, Serialize)]
pub struct SquashReport {
    /// The archive written.
    pub output: PathBuf,
    /// Its root hash, hex.
    pub root_hash: String,
    /// Entries copied.
    pub entries: u64,
    /// Bytes of the logical stream.
    pub logical_bytes: u64,
    /// Size of the written archive.
    pub archive_bytes: u64,
    /// Parents the child needed (now none).
    pub parents_dropped: usize,
    /// Chunk records compared with the child's (offset, length, id).
    pub chunks_checked: u64,
}

/// Write `child`'s content to `output` as an archive without parents, then verify
/// it (see the module docs). `output` may not be the child or one of its
/// parents; what is there is replaced only if it is a hexz archive, or
/// with `force` ([`hexz_format::destination::check`]).
pub fn squash(
    child: &Archive,
    output: &Path,
    registry: &Registry,
    force: bool,
) -> Result<SquashReport> {
    let unsupported = |reason: String| PipelineError::Squash {
        archive: child.source_name(),
        reason,
    };
    child.check_parents()?;
    check_output(child, output, force)?;
    let dir = child.directory();
    let codec = registry
        .compressor(&dir.codec, Some(dir.codec_level))
        .or_else(|_| registry.compressor(&dir.codec, None))?;
    let mut options = hexz_format::WriterOptions::new(codec);
    options.chunking = dir.chunking;
    if let Some(parent) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
    }
    let mut writer = ArchiveWriter::create_with(output, options, force)?;
    if let Some(schema) = child.columns()? {
        writer.set_columns(schema)?;
    }
    for entry in child.entries() {
        let e = entry?;
        if e.offset != writer.logical_size() {
            return Err(unsupported(format!(
                "entry `{}` starts at {} but the entries before it end at {} (a stream with gaps)",
                e.name,
                e.offset,
                writer.logical_size()
            )));
        }
        let meta = EntryMeta {
            mode: e.mode,
            mtime: e.mtime,
            mtime_nsec: e.mtime_nsec,
            owner: e.owner,
            columns: e.columns.clone(),
        };
        match e.kind {
            EntryKind::File => {
                writer.add_file(&e.name, &mut child.entry_reader(&e), meta)?;
            }
            EntryKind::Record => writer.add_record(&e.name, &child.read_entry(&e)?, meta)?,
            EntryKind::Dir => writer.add_dir(&e.name, meta)?,
            EntryKind::Symlink => {
                let target = e.target.clone().unwrap_or_default();
                writer.add_symlink(&e.name, &target, meta)?;
            }
        }
    }
    if writer.logical_size() != child.len() {
        return Err(unsupported(format!(
            "its stream has {} bytes after the last entry",
            child.len() - writer.logical_size()
        )));
    }
    for s in &dir.sections {
        // Parents and page and chunk bases describe the chain, which the copy
        // leaves (its chunks are all stored whole).
        if matches!(
            s.kind,
            SECTION_PARENTS | SECTION_COLUMNS | SECTION_PAGE_BASES | SECTION_CHUNK_BASES
        ) {
            continue;
        }
        let bytes = child.section_at(s)?;
        writer.add_section(s.kind, s.flags & SECTION_CRITICAL != 0, bytes)?;
    }
    let (_, summary) = writer.finish()?;
    let checked = match check_copy(child, output, registry, &summary) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(output);
            return Err(e);
        }
    };
    Ok(SquashReport {
        output: output.to_path_buf(),
        root_hash: summary.root_hash.to_string(),
        entries: summary.stats.entry_count,
        logical_bytes: summary.stats.logical_size,
        archive_bytes: summary.archive_size,
        parents_dropped: child.parents()?.len(),
        chunks_checked: checked,
    })
}

/// `output` is not the child nor one of its parents (by file identity, for
/// local files), and may be replaced.
fn check_output(child: &Archive, output: &Path, force: bool) -> Result<()> {
    let mut read = vec![(child.source_name(), "the archive being squashed")];
    // Every parent in the chain that opens (the ones it reads were checked
    // before): replacing one would break this child, and others.
    for index in 1..=child.parents()?.len() {
        let Ok(parent) = child.parent(index as u16) else {
            continue;
        };
        read.push((
            parent.source_name(),
            "a parent of the archive being squashed",
        ));
    }
    for (name, role) in read {
        let local = match name.strip_prefix("file://") {
            Some(path) => PathBuf::from(path),
            None if crate::registry::url_scheme(&name).is_none() => PathBuf::from(&name),
            None => continue,
        };
        if destination::same_file(output, &local) {
            return Err(hexz_format::Error::from(DestinationError::Overlaps {
                path: output.to_path_buf(),
                other: local,
                role,
            })
            .into());
        }
    }
    destination::check(output, Writes::Archive, force).map_err(hexz_format::Error::from)?;
    Ok(())
}

/// Verify the copy and compare it with the child; returns the chunk records
/// compared.
fn check_copy(child: &Archive, output: &Path, registry: &Registry, s: &Summary) -> Result<u64> {
    let copy = crate::open_archive_path(output, registry, ReadOptions::default())?;
    let differs = |what: &str| PipelineError::Squash {
        archive: child.source_name(),
        reason: format!("the copy differs from it: {what}"),
    };
    if copy.root_hash() != s.root_hash || copy.is_thin() {
        return Err(differs("root hash or parents"));
    }
    copy.verify()?;
    if copy.len() != child.len() || copy.entry_count() != child.entry_count() {
        return Err(differs("size or entry count"));
    }
    for (x, y) in child.entries().zip(copy.entries()) {
        let (x, y) = (x?, y?);
        if x != y {
            return Err(differs(&format!(
                "entry `{}`",
                hexz_format::error::Excerpt(&x.name)
            )));
        }
    }
    // Same stream, same chunking: same cuts and ids. Compared a window at a time.
    const WINDOW: u64 = 1 << 30;
    let mut at = 0;
    let mut checked = 0u64;
    while at < child.len() {
        let end = (at + WINDOW).min(child.len());
        let a = child.chunk_records(at, end)?;
        let b = copy.chunk_records(at, end)?;
        let same = a.len() == b.len()
            && a.iter().zip(&b).all(|(p, q)| {
                (p.logical_offset, p.raw_len, p.id, p.is_zero())
                    == (q.logical_offset, q.raw_len, q.id, q.is_zero())
            });
        if !same {
            return Err(differs(&format!("chunks in bytes {at}..{end}")));
        }
        checked += a.len() as u64;
        at = a.last().map_or(end, |r| r.logical_end());
    }
    Ok(checked)
}
