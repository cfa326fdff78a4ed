//! Retention: dropping old versions so that their storage is really freed.
//!
//! A version's snapshot stores only the chunks it changed; unchanged chunks are
//! read from the ancestor that stored them, however old. So dropping versions
//! older than *V* frees nothing unless the versions kept stop needing them: gc
//! **compacts** the chain. It rewrites version *V* as a self-contained snapshot
//! (its bytes read through the old chain, chunked, hashed and compressed again)
//! and every later version, in order, as a thin child of the rewritten one
//! before it: chunks whose bytes did not change between two versions (same
//! offset, length and chunk id) are copied as records, only the changed ones are
//! read and stored again (the incremental flush path, `volume/flush.rs`). The
//! rewritten versions keep their numbers, bytes and commit times; their root
//! hashes are new (a root hash commits to the parents list). Then one
//! conditional swing of `HEAD` (same version, new root) commits the new chain.
//! The rewritten root holds the whole volume: it is written to a temporary file
//! (in the snapshots folder of a local volume, renamed into place; else uploaded
//! from it a part at a time), never built in memory.
//!
//! Safety: until the swing nothing the head reaches changes, and a crash leaves
//! unreferenced new snapshots that a later gc removes. A writer that flushed in
//! between makes the swing fail ([`VolumeError::Conflict`]; run gc again). After
//! the swing the old snapshots are unreferenced but kept for the grace period,
//! counted from the compaction (the rewritten oldest snapshot, the chain's root,
//! is written last, right before the swing, and its date is the compaction's):
//! readers still open on old roots keep working that long. A writer (or a
//! write-ahead log) opened before the compaction on a version the compaction
//! rewrote moves onto the rewrite at its next flush (same version, same chunks,
//! checked); on anything else it gets [`VolumeError::Conflict`] and keeps its
//! writes.

use std::io::BufWriter;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hexz_format::layout::ChunkRecord;
use hexz_format::{
    Archive, ArchiveWriter, EntryMeta, FileSource, Hash32, MemorySource, ReadAt, ReadOptions,
};
use serde::Serialize;

use super::flush::{Change, write_child};
use super::store::{HeadToken, Store};
use super::{
    ENTRY_NAME, Head, Result, VolumeError, VolumeOptions, check_snapshot, head, open_snapshot,
    read_head, snapshot_meta, writer_options,
};
use crate::registry::Registry;
use crate::thin::RegistryResolver;

/// Which versions `gc` keeps. The head is always kept; a version is kept when any
/// rule keeps it, and so is every version after it (versions are a chain: time
/// travel covers the oldest version kept up to the head). No rule: every version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// Keep the newest *N* versions (at least 1: the head).
    pub keep_last: Option<u64>,
    /// Keep the versions committed within this long before now.
    pub keep_within: Option<Duration>,
}

impl Retention {
    /// Whether any rule is set.
    pub fn is_set(&self) -> bool {
        self.keep_last.is_some() || self.keep_within.is_some()
    }
}

/// A version rewritten by a compaction.
#[derive(Debug, Clone, Serialize)]
pub struct Rewritten {
    /// Its number (unchanged).
    pub version: u64,
    /// Root hash before.
    pub old_root: String,
    /// Root hash now.
    pub new_root: String,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Compaction {
    /// Versions dropped (no longer reachable): `first..=last`.
    pub dropped: Option<(u64, u64)>,
    /// The versions kept, each rewritten.
    pub rewritten: Vec<Rewritten>,
    /// Bytes of the new snapshots written.
    pub written_bytes: u64,
}

/// The commit time of `version` (the mtime of its `volume.img`; the snapshot's
/// date where that is 0, as in volumes written before it was recorded).
fn commit_time(archive: &Archive, entry: &hexz_format::Entry) -> Option<SystemTime> {
    if entry.mtime > 0 {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(entry.mtime as u64))
    } else {
        archive.modified()
    }
}

/// The chain of the head: `(version, root)`, newest first.
fn chain(head: &Head, archive: &Archive) -> Result<Vec<(u64, Hash32)>> {
    let mut out = vec![(head.version, head.root_hash())];
    let parents = archive.parents()?;
    for (k, p) in parents.iter().enumerate() {
        // A head of version v has at most v - 1 ancestors; more is a damaged or
        // foreign snapshot, not a reason to wrap around.
        let Some(version) = head.version.checked_sub(1 + k as u64).filter(|v| *v >= 1) else {
            return Err(VolumeError::BadHead {
                volume: archive.source_name(),
                detail: format!(
                    "version {} names {} ancestors (at most {})",
                    head.version,
                    parents.len(),
                    head.version.saturating_sub(1)
                ),
            });
        };
        out.push((version, p.root_hash));
    }
    Ok(out)
}

/// The oldest version `retention` keeps (`None`: keep all).
fn oldest_kept(
    store: &Store,
    registry: &Registry,
    chain: &[(u64, Hash32)],
    retention: &Retention,
) -> Result<Option<u64>> {
    if !retention.is_set() {
        return Ok(None);
    }
    let newest = chain[0].0;
    let mut oldest = newest;
    if let Some(n) = retention.keep_last {
        oldest = oldest.min(newest.saturating_sub(n.max(1) - 1).max(1));
    }
    if let Some(within) = retention.keep_within {
        let since = SystemTime::now()
            .checked_sub(within)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // Newest first: stop at the first version committed before `since`.
        for &(version, root) in chain {
            let (archive, entry) = open_snapshot(store, registry, version, &root)?;
            match commit_time(&archive, &entry) {
                Some(t) if t >= since => oldest = oldest.min(version),
                _ => break,
            }
        }
    }
    Ok(Some(oldest))
}

/// The versions of `new` against the base: a base chunk is clean when `new`
/// has a chunk with the same offset, length and id.
struct OtherVersion {
    archive: Archive,
    entry: hexz_format::Entry,
    /// `new`'s chunks: (offset in the entry, end, id), sorted.
    chunks: Vec<(u64, u64, [u8; 32])>,
    /// Runs of `new`'s zero chunks, merged: (start, end), sorted.
    zero_runs: Vec<(u64, u64)>,
}

impl OtherVersion {
    fn open(archive: Archive, entry: hexz_format::Entry) -> Result<Self> {
        let records: Vec<ChunkRecord> = if entry.size > 0 {
            archive.chunk_records(entry.offset, entry.offset + entry.size)?
        } else {
            Vec::new()
        };
        let chunks = records
            .iter()
            .filter(|r| r.logical_offset >= entry.offset)
            .map(|r| {
                (
                    r.logical_offset - entry.offset,
                    r.logical_end() - entry.offset,
                    r.id,
                )
            })
            .collect::<Vec<_>>();
        let mut zero_runs: Vec<(u64, u64)> = Vec::new();
        for &(start, end, id) in &chunks {
            if id != [0; 32] {
                continue;
            }
            match zero_runs.last_mut() {
                Some(run) if run.1 == start => run.1 = end,
                _ => zero_runs.push((start, end)),
            }
        }
        Ok(Self {
            archive,
            entry,
            chunks,
            zero_runs,
        })
    }
}

impl Change for OtherVersion {
    fn len(&self) -> u64 {
        self.entry.size
    }

    fn clean(&self, start: u64, end: u64, id: &[u8; 32]) -> bool {
        let i = self.chunks.partition_point(|c| c.0 < start);
        self.chunks
            .get(i)
            .is_some_and(|c| c.0 == start && c.1 == end && c.2 == *id)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        Ok(self.archive.read_entry_at(&self.entry, offset, buf)?)
    }

    /// Inside a run of zero chunks (stored as nothing, so read as zeros).
    fn hole_at(&self, offset: u64) -> u64 {
        let i = self.zero_runs.partition_point(|r| r.1 <= offset);
        match self.zero_runs.get(i) {
            Some(&(start, end)) if start <= offset => end - offset,
            _ => 0,
        }
    }
}

/// An archive over bytes just written at `location`, its parents opened by
/// `resolver`.
fn open_bytes(
    bytes: Vec<u8>,
    location: &str,
    registry: &Registry,
    resolver: &RegistryResolver,
    version: u64,
    root: &Hash32,
) -> Result<(Archive, hexz_format::Entry)> {
    let source = Arc::new(MemorySource::new(bytes, location.to_string()));
    let archive = Archive::open(source, registry, ReadOptions::default())?
        .with_parent_resolver(Arc::new(resolver.clone()));
    check_snapshot(archive, location, version, root)
}

/// Drop the versions `retention` does not keep by rewriting the kept ones (see
/// the module docs) and swinging the head to the new chain. `Ok(None)` when no
/// version is dropped.
pub(super) fn compact(
    store: &Store,
    registry: &Registry,
    options: &VolumeOptions,
    retention: &Retention,
) -> Result<Option<Compaction>> {
    let (head, token) = read_head(store)?;
    let (archive, _) = open_snapshot(store, registry, head.version, &head.root_hash())?;
    let chain = chain(&head, &archive)?;
    let Some(keep_from) = oldest_kept(store, registry, &chain, retention)? else {
        return Ok(None);
    };
    let chain_oldest = chain.last().map_or(head.version, |c| c.0);
    if keep_from <= chain_oldest {
        return Ok(None);
    }
    let mut report = Compaction {
        dropped: Some((chain_oldest, keep_from - 1)),
        ..Compaction::default()
    };
    // Oldest kept first.
    let kept: Vec<(u64, Hash32)> = chain
        .iter()
        .rev()
        .filter(|c| c.0 >= keep_from)
        .copied()
        .collect();
    // The new root of the chain: the oldest kept version, self-contained. Put
    // last, just before the swing (its date marks the compaction for gc's grace).
    let (first_version, first_root) = kept[0];
    let (old_archive, old_entry) = open_snapshot(store, registry, first_version, &first_root)?;
    // Written to a temporary file, not memory: it holds the whole volume.
    let scratch = store.scratch_file()?;
    let scratch_err = |error| VolumeError::Io {
        path: scratch.path().to_path_buf(),
        error,
    };
    let sink = BufWriter::with_capacity(1 << 20, scratch.reopen().map_err(scratch_err)?);
    let mut writer = ArchiveWriter::new(sink, writer_options(registry, options)?)?;
    let meta = EntryMeta {
        mtime: old_entry.mtime,
        mtime_nsec: old_entry.mtime_nsec,
        ..snapshot_meta()
    };
    let mut reader = old_archive.entry_reader(&old_entry);
    writer.add_file(ENTRY_NAME, &mut reader, meta)?;
    let (sink, summary) = writer.finish()?;
    drop(sink.into_inner().map_err(|e| scratch_err(e.into_error()))?);
    let root_name = head::snapshot_name(&summary.root_hash);
    let location = store.location_of(&head::snapshot_key(&summary.root_hash));
    let source = Arc::new(FileSource::open(scratch.path())?);
    report.written_bytes += source.size();
    report.rewritten.push(Rewritten {
        version: first_version,
        old_root: first_root.to_string(),
        new_root: summary.root_hash.to_string(),
    });
    let (mut base, mut base_entry) = check_snapshot(
        Archive::open(source, registry, ReadOptions::default())?,
        &location,
        first_version,
        &summary.root_hash,
    )?;
    // The new root is stored last: until then the rewritten versions find it
    // here (from the third kept version on, writing a child opens the chain's
    // root through its parent).
    let resolver = RegistryResolver::new(registry.clone()).holding(base.clone());
    for &(version, root) in &kept[1..] {
        let (old_archive, old_entry) = open_snapshot(store, registry, version, &root)?;
        let meta = EntryMeta {
            mtime: old_entry.mtime,
            mtime_nsec: old_entry.mtime_nsec,
            ..snapshot_meta()
        };
        let other = OtherVersion::open(old_archive, old_entry)?;
        let (bytes, summary, _) = write_child(
            &base,
            &base_entry,
            &other,
            writer_options(registry, options)?,
            meta,
            version,
        )?;
        let new_root = summary.root_hash;
        report.written_bytes += bytes.len() as u64;
        report.rewritten.push(Rewritten {
            version,
            old_root: root.to_string(),
            new_root: new_root.to_string(),
        });
        store.put_snapshot(&head::snapshot_name(&new_root), bytes.clone())?;
        (base, base_entry) = open_bytes(
            bytes,
            &store.location_of(&head::snapshot_key(&new_root)),
            registry,
            &resolver,
            version,
            &new_root,
        )?;
    }
    store.put_snapshot_file(&root_name, scratch)?;
    let new_head = Head::new(head.version, base.root_hash(), head.size);
    swing(store, &token, &head, new_head)?;
    Ok(Some(report))
}

fn swing(store: &Store, token: &HeadToken, old: &Head, new: Head) -> Result<()> {
    if store.swing_head(Some(token), new.encode())? {
        return Ok(());
    }
    let found = read_head(store).map(|(h, _)| h.version).unwrap_or(0);
    Err(VolumeError::Conflict {
        volume: store.url(),
        expected: old.version,
        found,
        pending: super::Pending::Nothing,
    })
}

/// Whether two volume snapshots hold the same bytes: the same chunks (offset,
/// length, id) — as a version and its rewrite by a compaction do.
pub(super) fn same_bytes(
    a: &Archive,
    a_entry: &hexz_format::Entry,
    b: &Archive,
    b_entry: &hexz_format::Entry,
) -> Result<bool> {
    if a_entry.size != b_entry.size {
        return Ok(false);
    }
    let chunks = |archive: &Archive, entry: &hexz_format::Entry| -> Result<Vec<_>> {
        Ok(OtherVersion::open(archive.clone(), entry.clone())?.chunks)
    };
    Ok(chunks(a, a_entry)? == chunks(b, b_entry)?)
}
