//! Writable volumes: a byte range on any store the transports serve, written at
//! random offsets, every flush a new immutable thin snapshot.
//!
//! A volume at `URL` (a local folder, `file:///abs`, `s3://bucket/prefix`,
//! `memory://name`) is a set of objects:
//!
//! ```text
//! URL/HEAD                    {"format":"hexz-volume-head/1","version":N,"root":"<hex>",
//!                              "snapshot":"snapshots/<hex>.hxz","size":<bytes>}
//! URL/snapshots/<root>.hxz    one archive per version: a single file entry `volume.img`
//!                             holding the whole volume; version N+1 is a thin child of
//!                             version N (it stores only chunks the chain lacks)
//! ```
//!
//! **Reads** see unflushed writes: writes land in an in-memory overlay of 64 KiB
//! blocks ([`BLOCK`]); a block not in the overlay is read from the current
//! snapshot (or is zero past a shrink). The overlay is bounded: when it holds more
//! than [`VolumeOptions::dirty_limit`] bytes, the write that crossed the limit
//! flushes before it returns.
//!
//! **Flush** ([`Volume::flush`]) writes the new version as a thin child of the
//! current one (`volume/flush.rs`): chunks of the current version that no write
//! touched are copied as chunk records (pointing where the blob is stored),
//! only dirty regions are read, chunked and stored; then it writes the snapshot
//! under its content-addressed key and swings `HEAD` with a compare-and-swap
//! (`If-Match` on S3, an `flock` plus rename locally). A crash before the swing
//! leaves the previous version current and an unreferenced snapshot that [`gc`]
//! removes. If another writer swung the head first, the flush fails with
//! [`VolumeError::Conflict`] naming both versions; the unflushed writes stay in
//! the overlay (process memory: lost when it exits) and, with a write-ahead
//! log, in the log ([`Pending`]).
//! Cost: bytes read and chunked ∝ the dirty regions (plus about a chunk either
//! side), bytes stored ∝ changed chunks, index records ∝ volume size / 16 KiB.

//! **Write-ahead log** ([`VolumeOptions::wal`]): each write is appended to a
//! local file and synced before `write_at` returns, so acknowledged writes survive
//! a crash; opening the volume with the same log replays them (see [`wal`]).
//!
//! **Time travel**: [`Volume::open_version`] opens any version of the chain,
//! read-only. **Garbage**: [`gc`]; **retention** (drop old versions and free
//! their storage): [`gc_with`], [`Volume::gc`], [`retain`].

mod export;
mod flush;
pub mod head;
pub mod retain;
mod store;
pub mod wal;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hexz_format::{
    Archive, ArchiveWriter, EntryMeta, Hash32, MemorySource, ReadOptions, WriterOptions,
};
use serde::Serialize;

pub use flush::{FlushStats, RESYNC_CHUNKS};
pub use head::{HEAD_FORMAT, Head};
pub use retain::Retention;
use store::{HeadToken, Store};
use wal::{Wal, WalOp};

use crate::error::PipelineError;
use crate::registry::Registry;
use crate::thin::RegistryResolver;

/// Bytes per overlay block.
pub const BLOCK: u64 = 64 * 1024;
/// The largest volume: 4 TiB. A write, truncate or create past it is refused
/// ([`VolumeError::TooLarge`]). Unwritten space costs no time per byte, but every
/// version's chunk index lists the whole volume (a zero chunk record per 64 KiB of
/// zeros, one per ~16 KiB of data; 64 bytes each) and a flush holds the previous
/// version's records in memory: at this size, up to ~4 GiB of records for
/// zeros, ~16 GiB for data.
pub const MAX_SIZE: u64 = 4 << 40;
/// Default [`VolumeOptions::dirty_limit`]: 64 MiB.
pub const DEFAULT_DIRTY_LIMIT: u64 = 64 << 20;
/// The one entry of every snapshot.
pub const ENTRY_NAME: &str = "volume.img";
/// Default [`VolumeOptions::chunking`]: 4 KiB min, 16 KiB average, 64 KiB max.
pub const VOLUME_CHUNKING: hexz_format::ChunkParams = hexz_format::ChunkParams {
    min: 4 * 1024,
    avg: 16 * 1024,
    max: 64 * 1024,
};
/// Default gc grace period: snapshots written less than this long ago are kept
/// even when unreferenced (a writer may be about to swing the head to them).
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(15 * 60);

/// Errors of volume operations.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Another writer committed first. The unflushed writes stay in this handle
    /// (readable, and committed by nothing); only a write-ahead log keeps them
    /// past the process.
    #[error(
        "{volume}: conflict: this writer expected version {expected} to be current, but version \
         {found} was committed by another writer; nothing was committed. {}",
        pending.note(*found)
    )]
    Conflict {
        /// The volume.
        volume: String,
        /// The version this writer's changes apply to.
        expected: u64,
        /// The version found in the head.
        found: u64,
        /// Where this writer's unflushed writes are now.
        pending: Pending,
    },
    /// A volume larger than [`MAX_SIZE`].
    #[error(
        "{volume}: a volume of {size} bytes is past the largest one hexz writes ({max} bytes, 4 TiB)"
    )]
    TooLarge {
        /// The volume.
        volume: String,
        /// The size the write, truncate or create asked for (offset + length
        /// may pass 2^64).
        size: u128,
        /// [`MAX_SIZE`].
        max: u64,
    },
    /// No `HEAD`.
    #[error("{volume}: no volume there (no HEAD object); create one with `hexz volume create`")]
    NotFound {
        /// The volume.
        volume: String,
    },
    /// `create` on an existing volume.
    #[error("{volume}: a volume already exists there (version {version})")]
    Exists {
        /// The volume.
        volume: String,
        /// Its current version.
        version: u64,
    },
    /// The head object is not valid.
    #[error(
        "{volume}/HEAD: not a volume head: {}",
        hexz_format::error::Excerpt(detail)
    )]
    BadHead {
        /// The volume.
        volume: String,
        /// What is wrong.
        detail: String,
    },
    /// A snapshot is not the one the head or chain names.
    #[error("{location}: snapshot of version {version} should have root {expected}, found {found}")]
    SnapshotMismatch {
        /// Where it was read.
        location: String,
        /// The version.
        version: u64,
        /// Root hash named by the head.
        expected: String,
        /// Root hash found.
        found: String,
    },
    /// A snapshot does not hold exactly one regular file `volume.img`.
    #[error(
        "{location}: not a volume snapshot ({})",
        hexz_format::error::Excerpt(detail)
    )]
    NotASnapshot {
        /// Where.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// Writing to a version opened for reading.
    #[error("{volume}: version {version} is open read-only (time travel)")]
    ReadOnly {
        /// The volume.
        volume: String,
        /// The version.
        version: u64,
    },
    /// A read past the end.
    #[error("{volume}: read of {len} bytes at {offset} is past the end ({size} bytes)")]
    OutOfRange {
        /// The volume.
        volume: String,
        /// Offset asked.
        offset: u64,
        /// Length asked.
        len: u64,
        /// Volume length.
        size: u64,
    },
    /// An offset or length that overflows.
    #[error("{volume}: offset {offset} + length {len} overflows")]
    Overflow {
        /// The volume.
        volume: String,
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Time travel to a version that does not exist.
    #[error(
        "{volume}: no version {version} (versions {oldest}..={latest}; versions before \
         {oldest}, if any, were dropped by gc's retention policy)"
    )]
    NoSuchVersion {
        /// The volume.
        volume: String,
        /// Asked.
        version: u64,
        /// Oldest version kept.
        oldest: u64,
        /// Latest.
        latest: u64,
    },
    /// The log belongs to another volume or a later version.
    #[error("{path}: write-ahead log does not match {volume}: {detail}")]
    WalMismatch {
        /// The log.
        path: PathBuf,
        /// The volume opened.
        volume: String,
        /// What differs.
        detail: String,
    },
    /// The log holds writes based on a version another writer has replaced.
    #[error(
        "{path}: write-ahead log holds unflushed writes based on version {wal_base} of {volume}, \
         but another writer committed version {head}; they were not applied (move the log aside to discard \
         them, or read it to recover them)"
    )]
    WalConflict {
        /// The log.
        path: PathBuf,
        /// The volume opened.
        volume: String,
        /// Its base version.
        wal_base: u64,
        /// The head's version.
        head: u64,
    },
    /// A damaged log.
    #[error("{path}: bad write-ahead log: {}", hexz_format::error::Excerpt(detail))]
    BadWal {
        /// The log.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A local file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        error: io::Error,
    },
    /// A store operation failed.
    #[error("{location}: {error}")]
    Store {
        /// The object.
        location: String,
        /// The store's error.
        #[source]
        error: Box<hexz_opendal::OpendalError>,
    },
    /// Reading or writing a snapshot failed.
    #[error(transparent)]
    Archive(Box<hexz_format::Error>),
    /// Opening a snapshot failed.
    #[error(transparent)]
    Pipeline(Box<PipelineError>),
}

/// Where the writes of a flush that lost a conflict are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// There were none (a gc compaction lost the race).
    Nothing,
    /// Only in the writer's memory: still readable through its handle, lost when
    /// the process ends.
    InMemory,
    /// Also in this write-ahead log, which keeps them across processes.
    Logged(PathBuf),
}

impl Pending {
    /// What the conflict message says about them.
    fn note(&self, found: u64) -> String {
        match self {
            Pending::Nothing => "Nothing was pending; run it again.".to_string(),
            Pending::InMemory => format!(
                "The unflushed writes are held only in this process's memory (still readable \
                 through this handle) and are lost when it exits: write them again on version \
                 {found}, or use a write-ahead log (--wal) to keep them on disk."
            ),
            Pending::Logged(path) => format!(
                "The unflushed writes are kept in the write-ahead log {}; opening the volume \
                 with it reports this conflict (move the log aside to discard them).",
                path.display()
            ),
        }
    }
}

impl From<hexz_format::Error> for VolumeError {
    fn from(e: hexz_format::Error) -> Self {
        VolumeError::Archive(Box::new(e))
    }
}

impl From<PipelineError> for VolumeError {
    fn from(e: PipelineError) -> Self {
        VolumeError::Pipeline(Box::new(e))
    }
}

impl VolumeError {
    fn store(location: &str, error: hexz_opendal::OpendalError) -> Self {
        VolumeError::Store {
            location: location.to_string(),
            error: Box::new(error),
        }
    }
}

/// Result of volume operations.
pub type Result<T, E = VolumeError> = std::result::Result<T, E>;

/// How a volume is opened.
#[derive(Debug, Clone)]
pub struct VolumeOptions {
    /// Codec of new snapshots (a name in the registry).
    pub codec: String,
    /// Its level (`None`: the codec's default).
    pub level: Option<i32>,
    /// Unflushed bytes (whole overlay blocks) held in memory at most; a write
    /// that goes past it flushes before returning.
    pub dirty_limit: u64,
    /// Write-ahead log file (local), for writable opens.
    pub wal: Option<PathBuf>,
    /// Content-defined chunking of snapshots. Default 4/16/64 KiB: smaller than
    /// archives' default, since a small write re-stores the chunks it touches.
    pub chunking: hexz_format::ChunkParams,
    /// S3 settings for the head and snapshot objects (`None`: from the AWS
    /// environment). Snapshots are read through the registry's transports.
    pub s3: Option<hexz_opendal::S3Options>,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        Self {
            codec: "zstd".into(),
            level: None,
            dirty_limit: DEFAULT_DIRTY_LIMIT,
            wal: None,
            chunking: VOLUME_CHUNKING,
            s3: None,
        }
    }
}

/// A writable (or, at an older version, read-only) volume.
pub struct Volume {
    store: Store,
    url: String,
    registry: Registry,
    options: VolumeOptions,
    head: Head,
    /// The head as read (what the next swing compares against); `None` read-only.
    token: Option<HeadToken>,
    base: Archive,
    entry: hexz_format::Entry,
    len: u64,
    /// Bytes at or past this offset that are not in the overlay read as zero.
    clean_limit: u64,
    blocks: BTreeMap<u64, Box<[u8]>>,
    wal: Option<Wal>,
    /// What the last flush did.
    last_flush: FlushStats,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("url", &self.url)
            .field("version", &self.head.version)
            .field("len", &self.len)
            .field("dirty_blocks", &self.blocks.len())
            .field("read_only", &self.token.is_none())
            .finish()
    }
}

/// One version, for [`log`].
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// Version number.
    pub version: u64,
    /// Root hash (hex).
    pub root: String,
    /// `ok`, `missing` or `mismatch` (see [`crate::ChainLink`]).
    pub status: &'static str,
    /// Volume length at this version.
    pub size: Option<u64>,
    /// Bytes of the snapshot object.
    pub snapshot_bytes: u64,
    /// Stored chunk bytes the snapshot holds itself (what this version added).
    pub own_chunk_bytes: Option<u64>,
    /// When the snapshot was written (UTC), when the store says.
    pub date: Option<String>,
}

/// What [`gc`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Snapshots kept (referenced by the head's chain).
    pub kept: u64,
    /// Objects removed.
    pub removed: Vec<String>,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Unreferenced objects kept because they are younger than the grace period.
    pub young: u64,
    /// The oldest version kept (time travel reaches it).
    pub oldest_version: u64,
    /// Versions dropped and rewritten by the retention policy, if any.
    pub compaction: Option<retain::Compaction>,
}

fn writer_options(registry: &Registry, options: &VolumeOptions) -> Result<WriterOptions> {
    let compressor = registry.compressor(&options.codec, options.level)?;
    let mut w = WriterOptions::new(compressor);
    w.chunking = options.chunking;
    Ok(w)
}

fn read_head(store: &Store) -> Result<(Head, HeadToken)> {
    let token = store.read_head()?.ok_or_else(|| VolumeError::NotFound {
        volume: store.url(),
    })?;
    let head = Head::decode(&token.bytes).map_err(|detail| VolumeError::BadHead {
        volume: store.url(),
        detail,
    })?;
    Ok((head, token))
}

/// Open the snapshot of `head` (checking its root hash) and its entry.
fn open_snapshot(
    store: &Store,
    registry: &Registry,
    version: u64,
    root: &Hash32,
) -> Result<(Archive, hexz_format::Entry)> {
    let location = store.location_of(&head::snapshot_key(root));
    let archive = crate::open_archive(&location, registry, ReadOptions::default())?;
    check_snapshot(archive, &location, version, root)
}

fn check_snapshot(
    archive: Archive,
    location: &str,
    version: u64,
    root: &Hash32,
) -> Result<(Archive, hexz_format::Entry)> {
    if archive.root_hash() != *root {
        return Err(VolumeError::SnapshotMismatch {
            location: location.to_string(),
            version,
            expected: root.to_string(),
            found: archive.root_hash().to_string(),
        });
    }
    let not = |detail: &str| VolumeError::NotASnapshot {
        location: location.to_string(),
        detail: detail.to_string(),
    };
    if archive.entry_count() != 1 {
        return Err(not("it does not hold exactly one entry"));
    }
    let entry = archive
        .entry(ENTRY_NAME)
        .map_err(|_| not("no entry volume.img"))?;
    if entry.kind != hexz_format::EntryKind::File {
        return Err(not("volume.img is not a regular file"));
    }
    Ok((archive, entry))
}

impl Volume {
    /// Create a volume of `size` zero bytes at `url` (version 1). Fails with
    /// [`VolumeError::Exists`] if there is one.
    pub fn create(
        url: &str,
        size: u64,
        registry: &Registry,
        options: VolumeOptions,
    ) -> Result<Self> {
        let store = Store::open(url, options.s3.as_ref())?;
        check_size(&store.url(), u128::from(size))?;
        if let Some(token) = store.read_head()? {
            let version = Head::decode(&token.bytes).map(|h| h.version).unwrap_or(0);
            return Err(VolumeError::Exists {
                volume: store.url(),
                version,
            });
        }
        let mut writer = ArchiveWriter::new(Vec::new(), writer_options(registry, &options)?)?;
        let meta = EntryMeta {
            mtime: now_secs(),
            ..snapshot_meta()
        };
        // Zero chunk records, not zeros to chunk: the cost does not grow with `size`.
        let mut zeros = flush::zero_pieces(size, options.chunking);
        writer.add_file_pieces(ENTRY_NAME, &mut zeros, meta)?;
        let (bytes, summary) = writer.finish()?;
        store.put_snapshot(&head::snapshot_name(&summary.root_hash), bytes)?;
        let head = Head::new(1, summary.root_hash, size);
        if !store.swing_head(None, head.encode())? {
            let found = read_head(&store).map(|(h, _)| h.version).unwrap_or(0);
            return Err(VolumeError::Exists {
                volume: store.url(),
                version: found,
            });
        }
        Self::open(url, registry, options)
    }

    /// Open the latest version of the volume at `url` for reading and writing.
    /// With [`VolumeOptions::wal`], writes logged there and not yet flushed are
    /// replayed (see [`VolumeError::WalConflict`] when that is not possible).
    pub fn open(url: &str, registry: &Registry, options: VolumeOptions) -> Result<Self> {
        let store = Store::open(url, options.s3.as_ref())?;
        let (head, token) = read_head(&store)?;
        let (base, entry) = open_snapshot(&store, registry, head.version, &head.root_hash())?;
        let mut volume = Self::assemble(store, registry, options, head, Some(token), base, entry);
        volume.attach_wal()?;
        Ok(volume)
    }

    /// Open version `version` of the volume at `url`, read-only.
    pub fn open_version(
        url: &str,
        version: u64,
        registry: &Registry,
        options: &VolumeOptions,
    ) -> Result<Self> {
        let store = Store::open(url, options.s3.as_ref())?;
        let (head, _) = read_head(&store)?;
        let (latest, _) = open_snapshot(&store, registry, head.version, &head.root_hash())?;
        let parents = latest.parents()?;
        let oldest = head.version.saturating_sub(parents.len() as u64);
        if version < oldest || version > head.version {
            return Err(VolumeError::NoSuchVersion {
                volume: store.url(),
                version,
                oldest,
                latest: head.version,
            });
        }
        let back = head.version - version;
        let root = match back {
            0 => head.root_hash(),
            _ => parents[back as usize - 1].root_hash,
        };
        let (base, entry) = open_snapshot(&store, registry, version, &root)?;
        let old = Head::new(version, root, entry.size);
        Ok(Self::assemble(
            store,
            registry,
            options.clone(),
            old,
            None,
            base,
            entry,
        ))
    }

    fn assemble(
        store: Store,
        registry: &Registry,
        options: VolumeOptions,
        head: Head,
        token: Option<HeadToken>,
        base: Archive,
        entry: hexz_format::Entry,
    ) -> Self {
        let len = entry.size;
        Self {
            url: store.url(),
            store,
            registry: registry.clone(),
            options,
            head,
            token,
            base,
            entry,
            len,
            clean_limit: len,
            blocks: BTreeMap::new(),
            wal: None,
            last_flush: FlushStats::default(),
        }
    }

    /// Replay and open the write-ahead log, if one is configured.
    fn attach_wal(&mut self) -> Result<()> {
        let Some(path) = self.options.wal.clone() else {
            return Ok(());
        };
        let Some(contents) = wal::read(&path)? else {
            self.reset_wal()?;
            return Ok(());
        };
        let mismatch = |detail: String| VolumeError::WalMismatch {
            path: path.clone(),
            volume: self.url.clone(),
            detail,
        };
        if contents.volume != self.url {
            return Err(mismatch(format!("the log is for {}", contents.volume)));
        }
        if contents.base_version > self.head.version {
            return Err(mismatch(format!(
                "the log is based on version {}, the volume is at {}",
                contents.base_version, self.head.version
            )));
        }
        if contents.base_version == self.head.version {
            // Another root at the same version: a compaction by gc rewrote it,
            // fine while the log's base is still there to show the same bytes.
            let rewritten = contents.base_root != self.head.root_hash();
            if rewritten && !self.same_bytes_as(contents.base_version, &contents.base_root) {
                return Err(mismatch(format!(
                    "version {} has root {}, the log expects {}",
                    self.head.version, self.head.root, contents.base_root
                )));
            }
            for op in &contents.ops {
                // A log is a local file: its offsets are checked like a caller's.
                let end = match op {
                    WalOp::Write { offset, data } => u128::from(*offset) + data.len() as u128,
                    WalOp::Truncate(len) => u128::from(*len),
                    WalOp::Committing(_) => 0,
                };
                check_size(&self.url, end).map_err(|e| VolumeError::BadWal {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                match op {
                    WalOp::Write { offset, data } => self.apply_write(*offset, data)?,
                    WalOp::Truncate(len) => self.apply_truncate(*len),
                    WalOp::Committing(_) => {}
                }
            }
            self.wal = Some(if rewritten {
                Wal::replace(
                    &path,
                    self.head.version,
                    &self.head.root_hash(),
                    &self.url,
                    &contents.ops,
                )?
            } else {
                Wal::append_to(&path)?
            });
            return Ok(());
        }
        // The head moved on: fine only if the next version is the one this log
        // was committing (the crash came after the swing, before the log reset).
        let committing = contents.ops.iter().rev().find_map(|op| match op {
            WalOp::Committing(root) => Some(*root),
            _ => None,
        });
        let next = self.root_of_version(contents.base_version + 1)?;
        let has_writes = contents
            .ops
            .iter()
            .any(|op| !matches!(op, WalOp::Committing(_)));
        if has_writes && committing != Some(next) {
            return Err(VolumeError::WalConflict {
                path,
                volume: self.store.url(),
                wal_base: contents.base_version,
                head: self.head.version,
            });
        }
        self.reset_wal()?;
        Ok(())
    }

    /// Whether the snapshot `root` of `version` (still in the store) holds the
    /// same bytes as this volume's base.
    fn same_bytes_as(&self, version: u64, root: &Hash32) -> bool {
        open_snapshot(&self.store, &self.registry, version, root)
            .and_then(|(a, e)| retain::same_bytes(&self.base, &self.entry, &a, &e))
            .unwrap_or(false)
    }

    /// The head was swung by someone else. When gc's compaction rewrote the
    /// version this writer is based on (same version, same bytes, new root),
    /// move onto the rewritten one — the unflushed changes apply to it as they
    /// are — and return `true`; otherwise `false` (a real conflict).
    fn rebase_on_rewrite(&mut self) -> Result<bool> {
        let (found, token) = read_head(&self.store)?;
        if found.version != self.head.version || found.root == self.head.root {
            return Ok(false);
        }
        let (archive, entry) = open_snapshot(
            &self.store,
            &self.registry,
            found.version,
            &found.root_hash(),
        )?;
        if !retain::same_bytes(&self.base, &self.entry, &archive, &entry)? {
            return Ok(false);
        }
        self.base = archive;
        self.entry = entry;
        self.head = found;
        self.token = Some(token);
        if let Some(path) = self.options.wal.clone() {
            // The log again, based on the rewritten version: the overlay's state.
            let mut ops = vec![WalOp::Truncate(self.clean_limit), WalOp::Truncate(self.len)];
            for (&block, data) in &self.blocks {
                let start = block * BLOCK;
                let n = (self.len.saturating_sub(start)).min(BLOCK) as usize;
                ops.push(WalOp::Write {
                    offset: start,
                    data: data[..n].to_vec(),
                });
            }
            self.wal = Some(Wal::replace(
                &path,
                self.head.version,
                &self.head.root_hash(),
                &self.url,
                &ops,
            )?);
        }
        Ok(true)
    }

    /// The root hash of `version` (at most the current one), from the chain.
    fn root_of_version(&self, version: u64) -> Result<Hash32> {
        let back = self.head.version.saturating_sub(version);
        if back == 0 {
            return Ok(self.head.root_hash());
        }
        let parents = self.base.parents()?;
        parents
            .get(back as usize - 1)
            .map(|p| p.root_hash)
            .ok_or(VolumeError::NoSuchVersion {
                volume: self.url.clone(),
                version,
                oldest: self.head.version.saturating_sub(parents.len() as u64),
                latest: self.head.version,
            })
    }

    /// The volume's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Current length in bytes (including unflushed writes and truncates).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the length is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The version the volume is at (unflushed writes apply on top of it).
    pub fn version(&self) -> u64 {
        self.head.version
    }

    /// Root hash of that version's snapshot: its id.
    pub fn root(&self) -> Hash32 {
        self.head.root_hash()
    }

    /// Whether this is a read-only open of an older version.
    pub fn is_read_only(&self) -> bool {
        self.token.is_none()
    }

    /// Unflushed bytes held in memory (whole blocks).
    pub fn dirty_bytes(&self) -> u64 {
        self.blocks.len() as u64 * BLOCK
    }

    /// Flush, then apply `retention` to this volume ([`gc_with`]: versions it
    /// does not keep are dropped, the kept ones rewritten) and go on from the
    /// new head, which holds the same bytes.
    pub fn gc(&mut self, grace: Duration, retention: &Retention) -> Result<GcReport> {
        self.check_writable()?;
        self.flush()?;
        let report = gc_with(&self.url, &self.registry, &self.options, grace, retention)?;
        let (head, token) = read_head(&self.store)?;
        if head.version == self.head.version && head.root != self.head.root {
            // Rewritten by the compaction: same version, same bytes.
            let (base, entry) =
                open_snapshot(&self.store, &self.registry, head.version, &head.root_hash())?;
            self.base = base;
            self.entry = entry;
            self.head = head;
            self.token = Some(token);
            self.reset_wal()?;
        }
        Ok(report)
    }

    /// What the last [`flush`](Self::flush) of this handle did (zeros before one).
    pub fn last_flush(&self) -> FlushStats {
        self.last_flush
    }

    /// Whether there are unflushed changes.
    pub fn is_dirty(&self) -> bool {
        !self.blocks.is_empty() || self.len != self.entry.size || self.clean_limit != self.len
    }

    fn check_writable(&self) -> Result<()> {
        if self.token.is_none() {
            return Err(VolumeError::ReadOnly {
                volume: self.url.clone(),
                version: self.head.version,
            });
        }
        Ok(())
    }

    /// Fill `buf` from `offset`; the whole range must lie within [`Volume::len`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len() as u64;
        let end = offset.checked_add(len).ok_or(VolumeError::Overflow {
            volume: self.url.clone(),
            offset,
            len,
        })?;
        if end > self.len {
            return Err(VolumeError::OutOfRange {
                volume: self.url.clone(),
                offset,
                len,
                size: self.len,
            });
        }
        let mut pos = offset;
        while pos < end {
            let at = (pos - offset) as usize;
            let block = pos / BLOCK;
            if let Some(data) = self.blocks.get(&block) {
                let from = (pos % BLOCK) as usize;
                let n = ((BLOCK - pos % BLOCK).min(end - pos)) as usize;
                buf[at..at + n].copy_from_slice(&data[from..from + n]);
                pos += n as u64;
                continue;
            }
            // A run of blocks not in the overlay: one read from the snapshot.
            let run_end = self
                .blocks
                .range(block + 1..)
                .next()
                .map_or(end, |(b, _)| (b * BLOCK).min(end));
            let base_end = run_end.min(self.clean_limit).max(pos);
            let n_base = (base_end - pos) as usize;
            if n_base > 0 {
                self.base
                    .read_entry_at(&self.entry, pos, &mut buf[at..at + n_base])?;
            }
            let n = (run_end - pos) as usize;
            buf[at + n_base..at + n].fill(0);
            pos = run_end;
        }
        Ok(())
    }

    /// `len` bytes from `offset` (within [`Volume::len`]).
    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Write `data` at `offset` (any offset and length; past the end the volume
    /// grows, with zeros in any gap). Logged first when there is a log; flushes
    /// before returning when the overlay passes [`VolumeOptions::dirty_limit`].
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        check_size(&self.url, u128::from(offset) + data.len() as u128)?;
        if data.is_empty() {
            return Ok(());
        }
        if let Some(wal) = &mut self.wal {
            wal.append(&WalOp::Write {
                offset,
                data: data.to_vec(),
            })?;
        }
        self.apply_write(offset, data)?;
        if self.dirty_bytes() > self.options.dirty_limit {
            self.flush()?;
        }
        Ok(())
    }

    fn load_block(&mut self, block: u64) -> Result<&mut Box<[u8]>> {
        if !self.blocks.contains_key(&block) {
            let mut data = vec![0u8; BLOCK as usize].into_boxed_slice();
            let start = block * BLOCK;
            let base_end = (start + BLOCK).min(self.clean_limit);
            if base_end > start {
                self.base.read_entry_at(
                    &self.entry,
                    start,
                    &mut data[..(base_end - start) as usize],
                )?;
            }
            self.blocks.insert(block, data);
        }
        self.blocks.get_mut(&block).ok_or_else(|| VolumeError::Io {
            path: PathBuf::from(&self.url),
            error: io::Error::other("overlay block vanished"),
        })
    }

    fn apply_write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let block = pos / BLOCK;
            let from = (pos % BLOCK) as usize;
            let n = ((BLOCK - pos % BLOCK).min(end - pos)) as usize;
            let at = (pos - offset) as usize;
            if from == 0 && n == BLOCK as usize && !self.blocks.contains_key(&block) {
                // A whole block: no need to read the old one.
                self.blocks
                    .insert(block, data[at..at + n].to_vec().into_boxed_slice());
            } else {
                let b = self.load_block(block)?;
                b[from..from + n].copy_from_slice(&data[at..at + n]);
            }
            pos += n as u64;
        }
        self.len = self.len.max(end);
        Ok(())
    }

    /// Set the length: shrinking drops the bytes past `len`, growing adds zeros
    /// (sparse: nothing is stored for them).
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        self.check_writable()?;
        check_size(&self.url, u128::from(len))?;
        if let Some(wal) = &mut self.wal {
            wal.append(&WalOp::Truncate(len))?;
        }
        self.apply_truncate(len);
        Ok(())
    }

    fn apply_truncate(&mut self, len: u64) {
        if len < self.len {
            let first_gone = len.div_ceil(BLOCK);
            self.blocks.split_off(&first_gone);
            if !len.is_multiple_of(BLOCK)
                && let Some(b) = self.blocks.get_mut(&(len / BLOCK))
            {
                b[(len % BLOCK) as usize..].fill(0);
            }
            self.clean_limit = self.clean_limit.min(len);
        }
        self.len = len;
    }

    /// Commit the unflushed changes as a new version and return its root hash
    /// (the current one when nothing changed). See the module docs for the
    /// protocol and [`VolumeError::Conflict`].
    pub fn flush(&mut self) -> Result<Hash32> {
        self.check_writable()?;
        if !self.is_dirty() {
            return Ok(self.head.root_hash());
        }
        let meta = EntryMeta {
            mtime: now_secs(),
            ..snapshot_meta()
        };
        let (bytes, summary, stats) = flush::write_child(
            &self.base,
            &self.entry,
            self,
            writer_options(&self.registry, &self.options)?,
            meta,
            self.head.version + 1,
        )?;
        self.last_flush = stats;
        let root = summary.root_hash;
        let key = head::snapshot_key(&root);
        let location = self.store.location_of(&key);
        self.store
            .put_snapshot(&head::snapshot_name(&root), bytes.clone())?;
        if let Some(wal) = &mut self.wal {
            wal.append(&WalOp::Committing(root))?;
        }
        let new_head = Head::new(self.head.version + 1, root, self.len);
        let encoded = new_head.encode();
        if !self
            .store
            .swing_head(self.token.as_ref(), encoded.clone())?
        {
            if self.rebase_on_rewrite()? {
                return self.flush();
            }
            let found = read_head(&self.store).map(|(h, _)| h.version).unwrap_or(0);
            return Err(VolumeError::Conflict {
                volume: self.url.clone(),
                expected: self.head.version,
                found,
                pending: match (&self.wal, &self.options.wal) {
                    (Some(_), Some(path)) => Pending::Logged(path.clone()),
                    _ => Pending::InMemory,
                },
            });
        }
        // Committed. The new base is read from the bytes just written.
        let source = Arc::new(MemorySource::new(bytes, location.clone()));
        let archive = Archive::open(source, &self.registry, ReadOptions::default())?
            .with_parent_resolver(Arc::new(RegistryResolver::new(self.registry.clone())));
        let (base, entry) = check_snapshot(archive, &location, new_head.version, &root)?;
        self.base = base;
        self.entry = entry;
        self.token = Some(match self.store.read_head()? {
            // The etag of what we wrote (stores without etags compare bytes).
            Some(t) if t.bytes == encoded => t,
            _ => HeadToken {
                bytes: encoded,
                etag: None,
            },
        });
        self.head = new_head;
        self.blocks.clear();
        self.clean_limit = self.len;
        debug_assert_eq!(self.head.root_hash(), root);
        self.reset_wal()?;
        Ok(root)
    }
}

/// A volume of `size` bytes is within [`MAX_SIZE`].
fn check_size(volume: &str, size: u128) -> Result<()> {
    if size > u128::from(MAX_SIZE) {
        return Err(VolumeError::TooLarge {
            volume: volume.to_string(),
            size,
            max: MAX_SIZE,
        });
    }
    Ok(())
}

/// Seconds since 1970 (0 if the clock is before it): a version's commit time,
/// recorded as the mtime of its `volume.img`.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Volume {
    /// Start an empty write-ahead log on the current version (when one is
    /// configured): nothing unflushed is left to replay.
    fn reset_wal(&mut self) -> Result<()> {
        if let Some(path) = self.options.wal.clone() {
            self.wal = Some(Wal::reset(
                &path,
                self.head.version,
                &self.head.root_hash(),
                &self.url,
            )?);
        }
        Ok(())
    }

    /// Drop the unflushed writes and truncates: the volume reads as its current
    /// version again, and the write-ahead log (if any) is emptied. For a caller
    /// that decided not to commit what it wrote.
    pub fn discard(&mut self) -> Result<()> {
        self.check_writable()?;
        self.blocks.clear();
        self.len = self.entry.size;
        self.clean_limit = self.len;
        self.reset_wal()?;
        Ok(())
    }
}

fn snapshot_meta() -> EntryMeta {
    EntryMeta {
        mode: 0o100_644,
        ..EntryMeta::default()
    }
}

/// The versions of the volume at `url`, newest first.
pub fn log(url: &str, registry: &Registry, options: &VolumeOptions) -> Result<Vec<VersionInfo>> {
    let store = Store::open(url, options.s3.as_ref())?;
    let (head, _) = read_head(&store)?;
    let (archive, _) = open_snapshot(&store, registry, head.version, &head.root_hash())?;
    let links = crate::thin::log(&archive)?;
    Ok(links
        .into_iter()
        .map(|l| VersionInfo {
            version: head.version.saturating_sub(l.position as u64),
            root: l.root_hash,
            status: l.status,
            size: l.logical_bytes,
            snapshot_bytes: l.archive_bytes,
            own_chunk_bytes: l.own_chunk_bytes,
            date: l.date,
        })
        .collect())
}

/// Remove the snapshots of the volume at `url` that no version needs: every
/// version is kept ([`gc_with`] applies a retention policy).
pub fn gc(
    url: &str,
    registry: &Registry,
    options: &VolumeOptions,
    grace: Duration,
) -> Result<GcReport> {
    gc_with(url, registry, options, grace, &Retention::default())
}

/// Drop the versions `retention` does not keep and remove the snapshots no kept
/// version needs.
///
/// Kept: the versions `retention` keeps (all of them when it has no rule): the
/// head's snapshot and its ancestors down to the oldest kept version. When
/// versions are dropped, the kept ones are first rewritten so that they no
/// longer need the dropped ones ([`retain`]: the oldest kept version becomes
/// self-contained; one conditional head swing commits). Removed: snapshots
/// outside the head's chain — dropped or rewritten versions, snapshots left by
/// a crash before a head swing or by a writer that lost a conflict, and stray
/// temporary files — once unreferenced for longer than `grace`: their own age,
/// or the time since the last compaction when that is shorter (a writer may be
/// between writing its snapshot and swinging the head; a reader may still be
/// reading a version a compaction rewrote).
pub fn gc_with(
    url: &str,
    registry: &Registry,
    options: &VolumeOptions,
    grace: Duration,
    retention: &Retention,
) -> Result<GcReport> {
    let store = Store::open(url, options.s3.as_ref())?;
    let compaction = retain::compact(&store, registry, options, retention)?;
    let (head, _) = read_head(&store)?;
    let (archive, _) = open_snapshot(&store, registry, head.version, &head.root_hash())?;
    let mut keep: Vec<String> = vec![head::snapshot_name(&archive.root_hash())];
    keep.extend(
        archive
            .parents()?
            .iter()
            .map(|p| head::snapshot_name(&p.root_hash)),
    );
    let objects = store.list_snapshots()?;
    // The chain's root was written by the last compaction (or by `create`):
    // nothing became unreferenced before it.
    let chain_root = keep.last().cloned().unwrap_or_default();
    let compacted_at = objects
        .iter()
        .find(|o| o.name == chain_root)
        .and_then(|o| o.modified);
    let now = SystemTime::now();
    let mut report = GcReport {
        oldest_version: head.version.saturating_sub(keep.len() as u64 - 1),
        compaction,
        ..GcReport::default()
    };
    for object in objects {
        if keep.contains(&object.name) {
            report.kept += 1;
            continue;
        }
        let since = match (object.modified, compacted_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let age = since
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        if age < grace {
            report.young += 1;
            continue;
        }
        store.delete_snapshot(&object.name)?;
        report.removed_bytes += object.size;
        report.removed.push(object.name);
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
