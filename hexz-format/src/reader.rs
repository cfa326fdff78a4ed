//! The archive reader.
//!
//! [`Archive`] is cheap to clone and `Send + Sync`: one open archive serves many
//! threads. Opening reads the tail once (twice when the directory does not fit in
//! the first [`OPEN_TAIL_LEN`] bytes). Index pages and decompressed chunks live in
//! two bounded, sharded caches; sequential reads prefetch ahead on rayon, and reads
//! spanning several uncached chunks decompress them in parallel. Every blob read is
//! checked against its CRC32 and every page against its BLAKE3 hash before use.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use quick_cache::sync::{Cache, DefaultLifecycle, GuardResult};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};
use rayon::prelude::*;

use crate::codec::{CodecProvider, Compressor};
use crate::columns::{ColumnSchema, Value};
use crate::crypto::envelope::Envelope;
use crate::crypto::seal::{BlobRole, Place, Sealer};
use crate::crypto::{ArchiveKeys, ChunkHasher, KdfLimits, Unlock};
use crate::error::{Error, Excerpt, Hash32, Result};
use crate::hints::ParentPolicy;
use crate::layout::{
    BLOB_DELTA, BLOB_RAW, CHUNK_DELTA, CHUNK_RAW, ChunkRecord, Directory, Entry, FLAG_ENCRYPTED,
    HEADER_LEN, OPEN_TAIL_LEN, PageRef, SECTION_COLUMNS, Stats, TRAILER_LEN, Trailer, TreeRoot,
    check_header, decode_header,
};
use crate::page::{Key, Page, TreeKind, decode_page};
use crate::parents::ParentLinks;
use crate::sign::TrustPolicy;
use crate::source::{FileSource, PrimedSource, ReadAt, read_vec};

mod batch;
mod preload;
mod ranges;
mod snapshot;
mod verify;

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Bytes of decompressed chunks kept in memory.
    pub chunk_cache_bytes: u64,
    /// Bytes of decoded index pages kept in memory.
    pub page_cache_bytes: u64,
    /// How far ahead of a sequential reader to fetch (0 disables read-ahead).
    pub readahead_bytes: u64,
    /// Check every chunk's BLAKE3 id after decompression (CRC32 is always checked).
    pub verify_chunks: bool,
    /// Keys for encrypted archives (passphrases, key files, X25519 identities).
    pub unlock: Unlock,
    /// Require a valid signature by a trusted key at open, and check every chunk
    /// against the signed tree before returning its bytes. For an encrypted
    /// archive the signature is checked before any key slot is tried, so a forged
    /// or unsigned archive costs no key derivation.
    pub trust: Option<TrustPolicy>,
    /// The most key-derivation work spent on passphrase slots (their Argon2id
    /// parameters are not covered by any signature).
    pub kdf_limits: KdfLimits,
    /// Which parents of a thin child are opened: where its location hints may
    /// lead, and parents named by the reader ([`crate::hints`]).
    pub parents: ParentPolicy,
}

impl Default for ReadOptions {
    /// 64 MiB chunk cache, 16 MiB page cache, 8 MiB read-ahead: a reader streaming
    /// any archive stays well under 150 MB of memory.
    fn default() -> Self {
        Self {
            chunk_cache_bytes: 64 << 20,
            page_cache_bytes: 16 << 20,
            readahead_bytes: 8 << 20,
            verify_chunks: false,
            unlock: Unlock::default(),
            trust: None,
            kdf_limits: KdfLimits::default(),
            parents: ParentPolicy::default(),
        }
    }
}

#[derive(Debug, Clone)]
struct PageWeight;

impl Weighter<u64, Arc<Page>> for PageWeight {
    fn weight(&self, _: &u64, page: &Arc<Page>) -> u64 {
        page.weight()
    }
}

#[derive(Debug, Clone)]
struct ChunkWeight;

/// Chunk records a read handles at once (one batched load): 16 384 records, 1 MiB
/// of 64-byte chunks (the smallest a writer cuts but for a stream's last); a
/// read over more is done a group at a time, so what it holds does not follow
/// the number of chunks an index packs into a range.
pub(crate) const READ_STEP_RECORDS: usize = 16 * 1024;

/// How long a task on the rayon pool waits for a chunk another thread is
/// loading before it loads the chunk itself (see `Inner::chunk`).
const POOL_CLAIM_WAIT: Duration = Duration::from_secs(1);

/// A decompressed chunk. `Arc<Vec<u8>>` rather than `Arc<[u8]>`: the reference
/// count lives in a small allocation apart from the data (a cache hit does not
/// touch the data's cache lines), and no copy is made when a chunk is loaded.
pub(crate) type ChunkData = Arc<Vec<u8>>;

/// Chunk cache key: (source, blob offset). Source 0 is this archive, *k* its
/// *k*-th parent (thin snapshots), whose blob offsets are another file's.
type ChunkKey = (u16, u64);

impl Weighter<ChunkKey, ChunkData> for ChunkWeight {
    fn weight(&self, _: &ChunkKey, data: &ChunkData) -> u64 {
        data.len() as u64 + 64
    }
}

/// An open archive.
#[derive(Debug, Clone)]
pub struct Archive {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) source: Arc<dyn ReadAt>,
    /// The same source, with the bytes it keeps in memory (see
    /// [`PrimedSource`]).
    primed: Arc<PrimedSource>,
    trailer: Trailer,
    pub(crate) directory: Directory,
    root_hash: Hash32,
    pub(crate) codec: Arc<dyn Compressor>,
    pages: Cache<u64, Arc<Page>, PageWeight>,
    chunks: Cache<ChunkKey, ChunkData, ChunkWeight>,
    pub(crate) options: ReadOptions,
    /// End of the last read (for detecting sequential access).
    last_end: AtomicU64,
    /// Read-ahead has been issued up to this logical offset.
    prefetched_to: AtomicU64,
    /// The decoded column schema, once loaded (`None`: the archive has none).
    schema: OnceLock<Option<Arc<ColumnSchema>>>,
    /// Parents of a thin child (see [`crate::parents`]).
    pub(crate) parents: ParentLinks,
    /// The envelope (key slots, signatures), when the archive has one.
    envelope: Option<Envelope>,
    /// Encrypted archives: the keys unwrapped from a key slot.
    keys: Option<ArchiveKeys>,
    /// Encrypted archives: opens sealed blobs.
    sealer: Option<Sealer>,
    /// How chunk ids are computed.
    hasher: ChunkHasher,
}

/// What a full verification checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Index and catalog pages checked.
    pub pages: u64,
    /// Distinct chunk blobs checked.
    pub chunks: u64,
    /// Stored bytes read.
    pub stored_bytes: u64,
    /// Entries checked.
    pub entries: u64,
}

impl Archive {
    /// Open the archive in `source`, resolving its codec through `codecs`.
    pub fn open(
        source: Arc<dyn ReadAt>,
        codecs: &dyn CodecProvider,
        options: ReadOptions,
    ) -> Result<Self> {
        Self::open_primed(source, Vec::new(), codecs, options)
    }

    /// Open `source` with the byte ranges `primed` (stored bytes of the archive,
    /// see [`PrimedSource`]) already in memory: reads inside them cost no
    /// request, and are checked like any other.
    fn open_primed(
        source: Arc<dyn ReadAt>,
        primed: Vec<(u64, Vec<u8>)>,
        codecs: &dyn CodecProvider,
        options: ReadOptions,
    ) -> Result<Self> {
        let size = source.size();
        let min = (HEADER_LEN + TRAILER_LEN) as u64;
        if size < min {
            return Err(Error::Truncated {
                what: "archive (header and trailer)",
                offset: 0,
                end: min,
                size,
            });
        }
        let mut primed = PrimedSource::new(source, primed);
        let tail_len = size.min(OPEN_TAIL_LEN);
        let tail_start = size - tail_len;
        let tail = read_vec(&primed, "archive tail", tail_start, tail_len as usize)?;
        if tail_start == 0 {
            decode_header(&tail)?;
        }
        let mut trailer_bytes = [0; TRAILER_LEN];
        trailer_bytes.copy_from_slice(&tail[tail.len() - TRAILER_LEN..]);
        let trailer_offset = size - TRAILER_LEN as u64;
        let trailer = Trailer::decode(&trailer_bytes, trailer_offset)?;
        if tail_start == 0 {
            check_header(&tail, &trailer)?;
        }
        // The tail stays in memory: the directory and envelope usually lie in
        // it, and so do the pages written last (tree roots).
        primed.keep(vec![(tail_start, tail)]);
        let source: Arc<PrimedSource> = Arc::new(primed);
        let from_tail = |what, start: u64, len: usize| -> Result<Vec<u8>> {
            read_vec(source.as_ref(), what, start, len)
        };
        let envelope = match trailer.envelope_len {
            0 => None,
            len => Some(Envelope::decode(
                &from_tail("envelope", trailer.envelope_offset, len as usize)?,
                trailer.envelope_offset,
            )?),
        };
        let keys = if trailer.flags & FLAG_ENCRYPTED != 0 {
            if let Some(policy) = &options.trust {
                // Before any key slot is tried: a trusted signature must name this
                // archive (root hash, version, encryption flag), so a forged or
                // unsigned archive costs no key derivation. The full manifest is
                // checked once the archive is open.
                let directory = from_tail(
                    "directory",
                    trailer.directory_offset,
                    trailer.directory_len as usize,
                )?;
                crate::sign::check_before_unlock(
                    &source.name(),
                    &trailer,
                    &directory,
                    envelope.as_ref(),
                    policy,
                )?;
            }
            Some(crate::crypto::keyslot::unlock_archive(
                &source.name(),
                envelope.as_ref(),
                &options.unlock,
                &options.kdf_limits,
            )?)
        } else {
            None
        };
        let sealer = keys.as_ref().map(ArchiveKeys::sealer);
        let hasher = keys
            .as_ref()
            .map(ArchiveKeys::chunk_hasher)
            .unwrap_or_default();
        let dir_start = trailer.directory_offset;
        let dir_len = trailer.directory_len as usize;
        let directory_bytes = from_tail("directory", dir_start, dir_len)?;
        let crc = crc32fast::hash(&directory_bytes);
        if crc != trailer.directory_crc {
            return Err(Error::Checksum {
                what: "directory",
                offset: dir_start,
                expected: trailer.directory_crc,
                actual: crc,
            });
        }
        let root_hash = Hash32(*blake3::hash(&directory_bytes).as_bytes());
        let mut directory_bytes = directory_bytes;
        if let Some(sealer) = &sealer {
            sealer
                .open(
                    Place::At(BlobRole::Directory, dir_start),
                    &mut directory_bytes,
                )
                .map_err(|_| Error::SealBroken {
                    what: "directory",
                    offset: dir_start,
                })?;
        }
        let directory = Directory::decode(&directory_bytes, dir_start)?;
        if (directory.major, directory.minor) != (trailer.major, trailer.minor) {
            return Err(Error::Corrupt {
                what: "directory",
                offset: dir_start,
                detail: format!(
                    "version {}.{} differs from the trailer's {}.{}",
                    directory.major, directory.minor, trailer.major, trailer.minor
                ),
            });
        }
        if directory.hash != hasher.hash_kind() {
            // Keyed chunk ids exist exactly in encrypted archives.
            return Err(Error::Corrupt {
                what: "directory",
                offset: dir_start + 13,
                detail: format!(
                    "hash kind {} in an {} archive",
                    directory.hash,
                    if sealer.is_some() {
                        "encrypted"
                    } else {
                        "unencrypted"
                    }
                ),
            });
        }
        let mut options = options;
        if options.trust.is_some() {
            options.verify_chunks = true;
        }
        let codec = codecs.decompressor(&directory.codec)?;
        let pages = Cache::with_weighter(
            (options.page_cache_bytes / 8192).max(16) as usize,
            options.page_cache_bytes.max(1),
            PageWeight,
        );
        // Half the chunk cache admits new entries (quick_cache's default keeps 97%
        // for entries hit twice), so read-ahead is not evicted before it is read.
        let chunk_options = OptionsBuilder::new()
            .estimated_items_capacity((options.chunk_cache_bytes / 65536).max(16) as usize)
            .weight_capacity(options.chunk_cache_bytes.max(1))
            .hot_allocation(0.5)
            .build()
            .map_err(|e| Error::InvalidSetting {
                setting: "chunk cache",
                detail: e.to_string(),
            })?;
        let chunks = Cache::with_options(
            chunk_options,
            ChunkWeight,
            DefaultHashBuilder::default(),
            DefaultLifecycle::default(),
        );
        let archive = Self {
            inner: Arc::new(Inner {
                source: source.clone(),
                primed: source,
                trailer,
                directory,
                root_hash,
                codec,
                pages,
                chunks,
                options,
                last_end: AtomicU64::new(u64::MAX),
                prefetched_to: AtomicU64::new(0),
                schema: OnceLock::new(),
                parents: ParentLinks::default(),
                envelope,
                keys,
                sealer,
                hasher,
            }),
        };
        if let Some(policy) = &archive.inner.options.trust {
            archive.check_trust(policy, tail_start == 0)?;
        }
        Ok(archive)
    }

    /// Under a trust policy: the header (not covered by the root hash) must be
    /// sound and a trusted signature must name this archive.
    fn check_trust(&self, policy: &TrustPolicy, header_checked: bool) -> Result<()> {
        if policy.keys.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "trust policy",
                detail: "no trusted public key given".into(),
            });
        }
        if !header_checked {
            let header = read_vec(self.inner.source.as_ref(), "header", 0, HEADER_LEN)?;
            check_header(&header, &self.inner.trailer)?;
        }
        crate::sign::check_signatures(self, &policy.keys, policy.detached.as_deref())?;
        Ok(())
    }

    /// The trailer (directory and envelope location, flags, version).
    pub fn trailer(&self) -> &Trailer {
        &self.inner.trailer
    }

    /// The envelope (key slots and embedded signatures), if the archive has one.
    pub fn envelope(&self) -> Result<Option<Envelope>> {
        Ok(self.inner.envelope.clone())
    }

    /// Whether the archive is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.inner.sealer.is_some()
    }

    /// Whether a trust policy was checked at open (and chunk reads are verified).
    pub fn is_trusted(&self) -> bool {
        self.inner.options.trust.is_some()
    }

    /// How this archive's chunk ids are computed. A thin child of an encrypted
    /// parent is built with it ([`crate::crypto::Encryption::with_hasher`]) so its
    /// chunk ids match the parent's and deduplicate against them.
    pub fn chunk_hasher(&self) -> ChunkHasher {
        self.inner.hasher.clone()
    }

    /// The unwrapped keys of an encrypted archive (for rewriting key slots).
    pub(crate) fn archive_keys(&self) -> Option<&ArchiveKeys> {
        self.inner.keys.as_ref()
    }

    /// Open a local file.
    pub fn open_path(
        path: impl AsRef<Path>,
        codecs: &dyn CodecProvider,
        options: ReadOptions,
    ) -> Result<Self> {
        Self::open(Arc::new(FileSource::open(path)?), codecs, options)
    }

    /// BLAKE3 of the stored directory: the archive's identity.
    pub fn root_hash(&self) -> Hash32 {
        self.inner.root_hash
    }

    /// The decoded directory (settings, counts, tree roots, sections).
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// Archive-wide counts.
    pub fn stats(&self) -> &Stats {
        &self.inner.directory.stats
    }

    /// Size of the logical stream.
    pub fn len(&self) -> u64 {
        self.inner.directory.stats.logical_size
    }

    /// Whether the logical stream is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the archive file.
    pub fn archive_size(&self) -> u64 {
        self.inner.source.size()
    }

    /// Source name (path or URL).
    pub fn source_name(&self) -> String {
        self.inner.source.name()
    }

    /// The bytes of the first section of `kind`, if there is one.
    pub fn section(&self, kind: u16) -> Result<Option<Vec<u8>>> {
        match self
            .inner
            .directory
            .sections
            .iter()
            .find(|s| s.kind == kind)
        {
            Some(s) => self
                .inner
                .load_blob(&s.page, "section", BlobRole::Section)
                .map(Some),
            None => Ok(None),
        }
    }

    /// The typed user-column schema (the first section of kind
    /// [`SECTION_COLUMNS`]), or `None` when the archive has none, in which case
    /// entries' `columns` bytes are opaque. Loaded and checked on first use, then
    /// kept.
    pub fn columns(&self) -> Result<Option<ColumnSchema>> {
        Ok(self.inner.schema()?.map(|s| (*s).clone()))
    }

    /// The values of `entry`'s user columns, one per schema column (nulls
    /// included), or `None` when the archive has no column schema.
    pub fn entry_columns(&self, entry: &Entry) -> Result<Option<Vec<Value>>> {
        let Some(schema) = self.inner.schema()? else {
            return Ok(None);
        };
        schema
            .decode_row(&entry.columns)
            .map(Some)
            .map_err(|error| Error::CorruptColumns {
                context: format!("columns of entry `{}`", Excerpt(&entry.name)),
                error,
            })
    }

    /// Number of entries.
    pub fn entry_count(&self) -> u64 {
        self.inner.directory.stats.entry_count
    }

    /// Iterate over entries in stream order.
    pub fn entries(&self) -> Entries {
        Entries {
            archive: self.clone(),
            next: 0,
            page: None,
        }
    }

    /// The entry at position `id` (stream order).
    pub fn entry_by_id(&self, id: u64) -> Result<Entry> {
        let (page, idx) = self.inner.catalog_leaf(id)?;
        match &*page {
            Page::CatalogLeaf(entries) => Ok(entries[idx].clone()),
            _ => Err(self.inner.corrupt("catalog page", "not a catalog leaf")),
        }
    }

    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Result<Entry> {
        let id = self
            .inner
            .lookup_name(name)?
            .ok_or_else(|| Error::EntryNotFound {
                name: name.to_string(),
            })?;
        let entry = self.entry_by_id(id)?;
        if entry.name != name {
            return Err(self.inner.corrupt(
                "name index",
                &format!(
                    "`{}` points at entry {id}, which is `{}`",
                    Excerpt(name),
                    Excerpt(&entry.name)
                ),
            ));
        }
        Ok(entry)
    }

    /// The chunk records covering `[offset, end)` of the logical stream, in order
    /// (for tools that inspect chunking and deduplication: `hexz diff`, benches).
    pub fn chunk_records(&self, offset: u64, end: u64) -> Result<Vec<ChunkRecord>> {
        self.inner.checked_len(
            offset,
            end.saturating_sub(offset) as usize,
            self.len(),
            "the logical stream",
        )?;
        self.inner.chunks_covering(offset, end)
    }

    /// Fill `buf` from the logical stream at `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf, "the logical stream")
    }

    /// `len` bytes of the logical stream at `offset`.
    pub fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![
            0;
            self.inner
                .checked_len(offset, len, self.len(), "the logical stream")?
        ];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Fill `buf` from `entry` at `offset` (relative to the entry).
    pub fn read_entry_at(&self, entry: &Entry, offset: u64, buf: &mut [u8]) -> Result<()> {
        let what = || format!("entry `{}`", Excerpt(&entry.name));
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > entry.size) {
            return Err(Error::OutOfRange {
                what: what(),
                offset,
                len: buf.len() as u64,
                size: entry.size,
            });
        }
        self.inner.read_at(entry.offset + offset, buf, &what())
    }

    /// The whole content of `entry`.
    pub fn read_entry(&self, entry: &Entry) -> Result<Vec<u8>> {
        if !entry.kind.has_data() {
            return Err(Error::NotAFile {
                name: entry.name.clone(),
                kind: entry.kind.as_str(),
            });
        }
        // `entry.size` comes from the catalog: check it against the stream before
        // trusting it, and grow the buffer as chunks are actually read, so that a
        // hostile size cannot ask for one huge allocation.
        if entry
            .offset
            .checked_add(entry.size)
            .is_none_or(|end| end > self.len())
        {
            return Err(self.inner.corrupt(
                "catalog",
                &format!(
                    "entry `{}` ({}+{}) extends past the logical stream of {} bytes",
                    Excerpt(&entry.name),
                    entry.offset,
                    entry.size,
                    self.len()
                ),
            ));
        }
        let len = usize::try_from(entry.size).map_err(|_| Error::OutOfRange {
            what: format!("entry `{}`", Excerpt(&entry.name)),
            offset: 0,
            len: entry.size,
            size: usize::MAX as u64,
        })?;
        const STEP: usize = 16 << 20;
        let mut buf = Vec::with_capacity(len.min(STEP));
        while buf.len() < len {
            let start = buf.len();
            buf.resize(start + (len - start).min(STEP), 0);
            self.read_entry_at(entry, start as u64, &mut buf[start..])?;
        }
        Ok(buf)
    }

    /// A `Read + Seek` view of `entry`.
    pub fn entry_reader(&self, entry: &Entry) -> EntryReader {
        EntryReader {
            archive: self.clone(),
            start: entry.offset,
            size: if entry.kind.has_data() { entry.size } else { 0 },
            pos: 0,
            name: entry.name.clone(),
        }
    }

    /// A `Read + Seek` view of the whole logical stream.
    pub fn stream_reader(&self) -> EntryReader {
        EntryReader {
            archive: self.clone(),
            start: 0,
            size: self.len(),
            pos: 0,
            name: String::new(),
        }
    }
}

impl Inner {
    /// The column schema, decoded once. Errors are not kept: a failed load is
    /// retried by the next call.
    fn schema(&self) -> Result<Option<Arc<ColumnSchema>>> {
        if let Some(schema) = self.schema.get() {
            return Ok(schema.clone());
        }
        let section = self
            .directory
            .sections
            .iter()
            .find(|s| s.kind == SECTION_COLUMNS);
        let schema = match section {
            Some(s) => {
                let bytes = self.load_blob(&s.page, "column schema", BlobRole::Section)?;
                let schema =
                    ColumnSchema::decode(&bytes).map_err(|error| Error::CorruptColumns {
                        context: format!("column schema (section at offset {})", s.page.offset),
                        error,
                    })?;
                Some(Arc::new(schema))
            }
            None => None,
        };
        Ok(self.schema.get_or_init(|| schema).clone())
    }

    fn corrupt(&self, what: &'static str, detail: &str) -> Error {
        Error::Corrupt {
            what,
            offset: 0,
            detail: format!("{}: {detail}", Excerpt(&self.source.name())),
        }
    }

    fn checked_len(&self, offset: u64, len: usize, size: u64, what: &str) -> Result<usize> {
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(Error::OutOfRange {
                what: what.to_string(),
                offset,
                len: len as u64,
                size,
            });
        }
        Ok(len)
    }

    /// Read a page or section blob: fetch, check CRC32 and BLAKE3, open (decrypt),
    /// decompress.
    pub(crate) fn load_blob(
        &self,
        r: &PageRef,
        what: &'static str,
        role: BlobRole,
    ) -> Result<Vec<u8>> {
        let stored = read_vec(self.source.as_ref(), what, r.offset, r.stored_len as usize)?;
        self.blob_from_stored(r, stored, what, role)
    }

    /// Check (CRC32, BLAKE3), open and decode the stored bytes of blob `r`.
    pub(crate) fn blob_from_stored(
        &self,
        r: &PageRef,
        stored: Vec<u8>,
        what: &'static str,
        role: BlobRole,
    ) -> Result<Vec<u8>> {
        let crc = crc32fast::hash(&stored);
        if crc != r.crc {
            return Err(Error::Checksum {
                what,
                offset: r.offset,
                expected: r.crc,
                actual: crc,
            });
        }
        let hash = blake3::hash(&stored);
        if hash.as_bytes() != &r.hash {
            return Err(Error::HashMismatch {
                what,
                offset: r.offset,
                expected: Hash32(r.hash),
                actual: Hash32(*hash.as_bytes()),
            });
        }
        let opened = self.open_sealed(stored, Place::At(role, r.offset), what, r.offset)?;
        if r.flags & BLOB_DELTA != 0 {
            return self.decode_delta(r, opened, what, role);
        }
        self.decode_blob(
            opened,
            r.flags & BLOB_RAW != 0,
            None,
            r.raw_len,
            what,
            r.offset,
        )
    }

    /// The "open" step of every blob read (fetch → check → open → decompress):
    /// in encrypted archives, check the GCM tag and decrypt; otherwise the stored
    /// bytes as they are.
    fn open_sealed(
        &self,
        mut stored: Vec<u8>,
        place: Place<'_>,
        what: &'static str,
        offset: u64,
    ) -> Result<Vec<u8>> {
        if let Some(sealer) = &self.sealer {
            sealer
                .open(place, &mut stored)
                .map_err(|_| Error::SealBroken { what, offset })?;
        }
        Ok(stored)
    }

    /// Decode opened blob bytes: as they are (`raw`), with the codec, or — with
    /// `base` — as a delta against the base's raw bytes; always to exactly
    /// `raw_len` bytes.
    pub(crate) fn decode_blob(
        &self,
        stored: Vec<u8>,
        raw: bool,
        base: Option<&[u8]>,
        raw_len: u32,
        what: &'static str,
        offset: u64,
    ) -> Result<Vec<u8>> {
        if raw {
            if stored.len() != raw_len as usize {
                return Err(Error::Corrupt {
                    what,
                    offset,
                    detail: format!("raw blob of {} bytes, expected {raw_len}", stored.len()),
                });
            }
            return Ok(stored);
        }
        let mut out = Vec::with_capacity(raw_len as usize);
        match base {
            Some(base) => {
                self.codec
                    .decompress_with_base(&stored, base, raw_len as usize, &mut out)
            }
            None => self.codec.decompress(&stored, raw_len as usize, &mut out),
        }
        .map_err(|error| Error::Codec {
            codec: self.codec.name().to_string(),
            what,
            offset,
            error,
        })?;
        if out.len() != raw_len as usize {
            return Err(Error::Corrupt {
                what,
                offset,
                detail: format!("decompressed to {} bytes, expected {raw_len}", out.len()),
            });
        }
        Ok(out)
    }

    fn page(
        &self,
        r: &PageRef,
        kind: TreeKind,
        level: u8,
        expected_first: Option<u64>,
    ) -> Result<Arc<Page>> {
        self.pages.get_or_insert_with(&r.offset, || {
            let raw = self.load_blob(r, kind.what(), BlobRole::Page)?;
            decode_page(&raw, r.offset, kind, level, expected_first).map(Arc::new)
        })
    }

    /// Descend `tree` to the leaf holding `target`; `pick` chooses the child index
    /// in an internal page (None: target is before the first key).
    fn descend(
        &self,
        tree: &TreeRoot,
        kind: TreeKind,
        pick: impl Fn(&[(Key, PageRef)]) -> Option<usize>,
    ) -> Result<Option<Arc<Page>>> {
        if tree.depth == 0 {
            return Ok(None);
        }
        let mut r = tree.root;
        let mut level = tree.depth - 1;
        let mut expected: Option<Key> = None;
        loop {
            let first = match &expected {
                Some(Key::Catalog { id, .. }) => Some(*id),
                _ => None,
            };
            let page = self.page(&r, kind, level, first)?;
            if let Some(key) = &expected {
                check_first_key(&page, key).map_err(|d| self.corrupt(kind.what(), d))?;
            }
            if level == 0 {
                return Ok(Some(page));
            }
            let Page::Internal(children) = &*page else {
                return Err(self.corrupt(kind.what(), "internal page expected"));
            };
            let Some(i) = pick(children) else {
                return Ok(None);
            };
            expected = Some(children[i].0.clone());
            r = children[i].1;
            level -= 1;
        }
    }

    /// The chunk-index leaf holding logical `offset`, and the record's index.
    fn chunk_leaf(&self, offset: u64) -> Result<(Arc<Page>, usize)> {
        let page = self
            .descend(&self.directory.chunk_tree, TreeKind::Chunks, |children| {
                let i =
                    children.partition_point(|(k, _)| matches!(k, Key::Chunk(o) if *o <= offset));
                i.checked_sub(1)
            })?
            .ok_or_else(|| self.corrupt("chunk index", "no chunk covers the offset"))?;
        let Page::ChunkLeaf(records) = &*page else {
            return Err(self.corrupt("chunk index", "leaf expected"));
        };
        let i = records.partition_point(|r| r.logical_offset <= offset);
        match i.checked_sub(1) {
            Some(i) if records[i].logical_end() > offset => Ok((page.clone(), i)),
            _ => Err(self.corrupt("chunk index", "no chunk covers the offset")),
        }
    }

    fn catalog_leaf(&self, id: u64) -> Result<(Arc<Page>, usize)> {
        if id >= self.directory.stats.entry_count {
            return Err(Error::OutOfRange {
                what: "the catalog".into(),
                offset: id,
                len: 1,
                size: self.directory.stats.entry_count,
            });
        }
        let page = self
            .descend(
                &self.directory.catalog_tree,
                TreeKind::Catalog,
                |children| {
                    let i = children.partition_point(
                        |(k, _)| matches!(k, Key::Catalog { id: first, .. } if *first <= id),
                    );
                    i.checked_sub(1)
                },
            )?
            .ok_or_else(|| self.corrupt("catalog", "entry missing"))?;
        let Page::CatalogLeaf(entries) = &*page else {
            return Err(self.corrupt("catalog", "leaf expected"));
        };
        let first = entries.first().map_or(0, |e| e.id);
        let idx = id.checked_sub(first).map(|i| i as usize);
        match idx {
            Some(i) if i < entries.len() => Ok((page.clone(), i)),
            _ => Err(self.corrupt("catalog", "entry missing from its page")),
        }
    }

    fn lookup_name(&self, name: &str) -> Result<Option<u64>> {
        let page = self.descend(&self.directory.name_tree, TreeKind::Names, |children| {
            let i =
                children.partition_point(|(k, _)| matches!(k, Key::Name(n) if n.as_str() <= name));
            i.checked_sub(1)
        })?;
        let Some(page) = page else {
            return Ok(None);
        };
        let Page::NameLeaf(names) = &*page else {
            return Err(self.corrupt("name index", "leaf expected"));
        };
        Ok(names
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| names[i].1))
    }

    /// Chunk records covering `[offset, end)`.
    fn chunks_covering(&self, offset: u64, end: u64) -> Result<Vec<ChunkRecord>> {
        self.chunks_covering_at_most(offset, end, usize::MAX)
    }

    /// The first chunk records covering `[offset, end)`, at most `max` of them
    /// (at least one when the range is not empty).
    fn chunks_covering_at_most(
        &self,
        offset: u64,
        end: u64,
        max: usize,
    ) -> Result<Vec<ChunkRecord>> {
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end && out.len() < max.max(1) {
            let (page, mut i) = self.chunk_leaf(pos)?;
            let Page::ChunkLeaf(records) = &*page else {
                return Err(self.corrupt("chunk index", "leaf expected"));
            };
            while i < records.len() && pos < end && out.len() < max.max(1) {
                out.push(records[i]);
                pos = records[i].logical_end();
                i += 1;
            }
        }
        Ok(out)
    }

    /// Read one chunk (no cache): fetch, check CRC32, open (decrypt), decompress
    /// (a delta chunk with its base, found through this archive's chunk-bases
    /// sections), and with `verify_id` check its id. Every chunk read goes
    /// through here.
    pub(crate) fn load_chunk(&self, r: &ChunkRecord, verify_id: bool) -> Result<Vec<u8>> {
        let base = if r.flags & CHUNK_DELTA != 0 {
            Some(self.delta_base(r)?)
        } else {
            None
        };
        self.load_chunk_on(r, base.as_deref().map(Vec::as_slice), verify_id)
    }

    /// [`load_chunk`](Self::load_chunk) with the base of a delta chunk given.
    fn load_chunk_on(
        &self,
        r: &ChunkRecord,
        base: Option<&[u8]>,
        verify_id: bool,
    ) -> Result<Vec<u8>> {
        if r.source != 0 {
            return self.parents.load_chunk(self, r, base, verify_id);
        }
        self.load_stored_chunk(r, base, verify_id)
    }

    /// Read chunk `r` stored in this archive (`source` 0), decoding a delta blob
    /// with `base`.
    pub(crate) fn load_stored_chunk(
        &self,
        r: &ChunkRecord,
        base: Option<&[u8]>,
        verify_id: bool,
    ) -> Result<Vec<u8>> {
        let stored = read_vec(
            self.source.as_ref(),
            "chunk",
            r.blob_offset,
            r.stored_len as usize,
        )?;
        self.chunk_from_stored(r, stored, base, verify_id)
    }

    /// Check (CRC32) and decompress the stored bytes of chunk `r` (a delta chunk
    /// with `base`, its base's raw bytes); with `verify_id`, and always for a
    /// delta chunk, check the BLAKE3 id too.
    fn chunk_from_stored(
        &self,
        r: &ChunkRecord,
        stored: Vec<u8>,
        base: Option<&[u8]>,
        verify_id: bool,
    ) -> Result<Vec<u8>> {
        if (r.flags & CHUNK_DELTA != 0) != base.is_some() {
            return Err(Error::Corrupt {
                what: "chunk",
                offset: r.blob_offset,
                detail: "a delta chunk without its base, or a base for a whole chunk".into(),
            });
        }
        let crc = crc32fast::hash(&stored);
        if crc != r.crc {
            return Err(Error::Checksum {
                what: "chunk",
                offset: r.blob_offset,
                expected: r.crc,
                actual: crc,
            });
        }
        let opened = self.open_sealed(stored, Place::Chunk(&r.id), "chunk", r.blob_offset)?;
        let data = self.decode_blob(
            opened,
            r.flags & CHUNK_RAW != 0,
            base,
            r.raw_len,
            "chunk",
            r.blob_offset,
        )?;
        // A delta decoded against the wrong base does not fail to decode: its id
        // is always checked.
        if verify_id || r.flags & CHUNK_DELTA != 0 {
            let id = self.hasher.id(&data);
            if id != r.id {
                return Err(Error::HashMismatch {
                    what: "chunk",
                    offset: r.blob_offset,
                    expected: Hash32(r.id),
                    actual: Hash32(id),
                });
            }
        }
        Ok(data)
    }

    /// Chunk `r`, from the cache or loaded into it. Off the rayon pool, a chunk
    /// another thread is loading is waited for. On the pool the wait is bounded
    /// ([`POOL_CLAIM_WAIT`]), then the chunk is loaded again, uncached: the
    /// thread holding the claim may need this very pool thread to finish (it
    /// may be off the pool, its decode queued behind us, or below us on this
    /// thread's stack, rayon having stolen this task while it waited for its own
    /// parallel work). A read that catches up with its read-ahead thus waits
    /// for it rather than fetching the same chunks twice.
    pub(crate) fn chunk(&self, r: &ChunkRecord) -> Result<ChunkData> {
        if rayon::current_thread_index().is_none() {
            let data = self
                .chunks
                .get_or_insert_with(&(r.source, r.blob_offset), || {
                    self.load_chunk(r, self.options.verify_chunks).map(Arc::new)
                })?;
            self.check_shared_blob(r, &data)?;
            return Ok(data);
        }
        let key = (r.source, r.blob_offset);
        let data = match self.chunks.get_value_or_guard(&key, Some(POOL_CLAIM_WAIT)) {
            GuardResult::Value(data) => data,
            GuardResult::Guard(guard) => {
                let data = Arc::new(self.load_chunk(r, self.options.verify_chunks)?);
                let _ = guard.insert(Arc::clone(&data));
                data
            }
            // Its base, for a delta chunk, again through this bounded wait.
            GuardResult::Timeout => Arc::new(self.load_chunk(r, self.options.verify_chunks)?),
        };
        self.check_shared_blob(r, &data)?;
        Ok(data)
    }

    /// Chunk `r` from the cache, or loaded and cached when no other thread is
    /// loading it (nor its base); `None` when one is. Never waits for another
    /// thread's load: safe on the rayon pool. (Finding a delta's base may wait
    /// for a chunk-bases section another thread is reading, a read that needs no
    /// other thread.)
    pub(crate) fn chunk_no_wait(&self, r: &ChunkRecord) -> Result<Option<ChunkData>> {
        let key = (r.source, r.blob_offset);
        let data = match self.chunks.get_value_or_guard(&key, Some(Duration::ZERO)) {
            GuardResult::Value(data) => data,
            GuardResult::Timeout => return Ok(None),
            GuardResult::Guard(guard) => {
                let base = if r.flags & CHUNK_DELTA != 0 {
                    // Dropping the guard releases the claim.
                    match self.chunk_no_wait(&self.delta_base_record(r)?)? {
                        Some(base) => Some(base),
                        None => return Ok(None),
                    }
                } else {
                    None
                };
                let data = Arc::new(self.load_chunk_on(
                    r,
                    base.as_deref().map(Vec::as_slice),
                    self.options.verify_chunks,
                )?);
                let _ = guard.insert(Arc::clone(&data));
                data
            }
        };
        self.check_shared_blob(r, &data)?;
        Ok(Some(data))
    }

    /// Blobs are cached by offset: a hostile index could give two records of
    /// different lengths the same blob.
    fn check_shared_blob(&self, r: &ChunkRecord, data: &[u8]) -> Result<()> {
        if data.len() != r.raw_len as usize {
            return Err(Error::Corrupt {
                what: "chunk index",
                offset: r.blob_offset,
                detail: format!(
                    "records of {} and {} bytes share one blob",
                    data.len(),
                    r.raw_len
                ),
            });
        }
        Ok(())
    }

    /// Copy the part of chunk `r` that falls in `[offset, end)` into `buf` (which
    /// starts at `offset`).
    fn copy_chunk(
        &self,
        r: &ChunkRecord,
        data: Option<&[u8]>,
        offset: u64,
        end: u64,
        buf: &mut [u8],
    ) {
        let from = offset.max(r.logical_offset);
        let to = end.min(r.logical_end());
        let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
        match data {
            Some(d) => {
                let s = (from - r.logical_offset) as usize;
                dst.copy_from_slice(&d[s..s + dst.len()]);
            }
            None => dst.fill(0),
        }
    }

    fn read_at(self: &Arc<Self>, offset: u64, buf: &mut [u8], what: &str) -> Result<()> {
        let size = self.directory.stats.logical_size;
        self.checked_len(offset, buf.len(), size, what)?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let sequential = self.last_end.swap(end, Ordering::Relaxed) == offset;
        let (page, i) = self.chunk_leaf(offset)?;
        let first = match &*page {
            Page::ChunkLeaf(records) => records[i],
            _ => return Err(self.corrupt("chunk index", "leaf expected")),
        };
        if first.logical_end() >= end {
            // Fast path: the read lies in one chunk.
            let data = if first.is_zero() {
                None
            } else {
                Some(self.chunk(&first)?)
            };
            self.copy_chunk(&first, data.as_deref().map(Vec::as_slice), offset, end, buf);
        } else {
            self.fill(offset, buf)?;
        }
        if sequential {
            self.readahead(end);
        }
        Ok(())
    }

    /// Fill `buf` from logical `offset`, [`READ_STEP_RECORDS`] chunk records at a
    /// time: each group's uncached chunks fetched with one batched load and
    /// decompressed in parallel. (A group's memory is bounded whatever the chunk
    /// sizes: an index of one-byte chunks does not make a 1 MiB read hold a
    /// million records.)
    fn fill(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let records = self.chunks_covering_at_most(pos, end, READ_STEP_RECORDS)?;
            let Some(last) = records.last() else {
                return Err(self.corrupt("chunk index", "no chunk covers the offset"));
            };
            pos = last.logical_end();
            let uncached = records
                .iter()
                .filter(|r| !r.is_zero() && !self.chunks.contains_key(&(r.source, r.blob_offset)))
                .count();
            let load = |r: &ChunkRecord| {
                if r.is_zero() {
                    Ok(None)
                } else {
                    self.chunk(r).map(Some)
                }
            };
            // Several chunks to fetch: one batched request set (adjacent blobs
            // merged), decompressed in parallel.
            if uncached >= 2 {
                self.load_batch(&records);
            }
            let data: Vec<Option<ChunkData>> = if uncached >= 2 {
                // In parallel, on the pool: never waiting for another thread's
                // load; those chunks are waited for after, here.
                let found: Vec<Option<ChunkData>> = records
                    .par_iter()
                    .map(|r| {
                        if r.is_zero() {
                            Ok(None)
                        } else {
                            self.chunk_no_wait(r)
                        }
                    })
                    .collect::<Result<_>>()?;
                records
                    .iter()
                    .zip(found)
                    .map(|(r, d)| d.map_or_else(|| load(r), |d| Ok(Some(d))))
                    .collect::<Result<_>>()?
            } else {
                records.iter().map(load).collect::<Result<_>>()?
            };
            for (r, d) in records.iter().zip(&data) {
                self.copy_chunk(r, d.as_deref().map(Vec::as_slice), offset, end, buf);
            }
        }
        Ok(())
    }

    /// Fetch chunks after `end` in the background so a sequential reader finds them
    /// decompressed.
    fn readahead(self: &Arc<Self>, end: u64) {
        let window = self.options.readahead_bytes;
        let size = self.directory.stats.logical_size;
        if window == 0 || end >= size {
            return;
        }
        let issued = self.prefetched_to.load(Ordering::Relaxed);
        let ahead = (end..=end + window).contains(&issued);
        if ahead && issued > end + window / 2 {
            return;
        }
        // After a jump (backwards or far ahead) start again from the reader.
        let from = if ahead { issued } else { end };
        let to = (end + window).min(size);
        if from >= to {
            return;
        }
        self.prefetched_to.store(to, Ordering::Relaxed);
        let inner = Arc::clone(self);
        rayon::spawn(move || {
            if let Ok(records) = inner.chunks_covering_at_most(from, to, READ_STEP_RECORDS) {
                inner.load_batch(&records);
            }
        });
    }

    /// Visit every page of `tree` (depth-first, in key order), bypassing the cache.
    /// Checks, beyond each page's own checks, that every page header's `first` is
    /// the number of leaf records before it and that the leaves hold exactly the
    /// root's record count (so a directory cannot state another count).
    pub(crate) fn walk_tree(
        &self,
        tree: &TreeRoot,
        kind: TreeKind,
        report: &mut VerifyReport,
        visit: &mut dyn FnMut(&Page) -> Result<()>,
    ) -> Result<()> {
        if tree.depth == 0 {
            return Ok(());
        }
        let mut stack = vec![(tree.root, tree.depth - 1, None::<Key>)];
        // Leaf records visited so far: pages are visited in key order, each
        // before the leaves under it.
        let mut records = 0u64;
        while let Some((r, level, expected)) = stack.pop() {
            let raw = self.load_blob(&r, kind.what(), BlobRole::Page)?;
            report.pages += 1;
            report.stored_bytes += u64::from(r.stored_len);
            let first = match &expected {
                Some(Key::Catalog { id, .. }) => Some(*id),
                _ => None,
            };
            let page = decode_page(&raw, r.offset, kind, level, first)?;
            if let Some(key) = &expected {
                check_first_key(&page, key).map_err(|d| self.corrupt(kind.what(), d))?;
            }
            let header_first = crate::page::header_first(&raw);
            if header_first != records {
                return Err(Error::Corrupt {
                    what: kind.what(),
                    offset: r.offset,
                    detail: format!(
                        "{}: the page header says its first record is {header_first}, but \
                         {records} records come before it",
                        Excerpt(&self.source.name())
                    ),
                });
            }
            match &page {
                Page::Internal(children) => {
                    for (key, child) in children.iter().rev() {
                        stack.push((*child, level - 1, Some(key.clone())));
                    }
                }
                leaf => records += leaf.records() as u64,
            }
            visit(&page)?;
        }
        if records != tree.count {
            // The count field of the tree's root in the directory.
            let root_at = match kind {
                TreeKind::Chunks => 128,
                TreeKind::Catalog => 200,
                TreeKind::Names => 272,
            };
            return Err(Error::Corrupt {
                what: "directory",
                offset: self.trailer.directory_offset + root_at + 8,
                detail: format!(
                    "{}: the {} holds {records} records, the directory says {}",
                    Excerpt(&self.source.name()),
                    kind.tree_name(),
                    tree.count
                ),
            });
        }
        Ok(())
    }
}

/// Check that a child page starts with the key its parent recorded.
fn check_first_key(page: &Page, key: &Key) -> std::result::Result<(), &'static str> {
    let ok = match (page, key) {
        (Page::Internal(c), k) => c.first().is_some_and(|(first, _)| first == k),
        (Page::ChunkLeaf(r), Key::Chunk(o)) => r.first().is_some_and(|r| r.logical_offset == *o),
        (Page::CatalogLeaf(e), Key::Catalog { id, offset }) => e
            .first()
            .is_some_and(|e| e.id == *id && e.offset == *offset),
        (Page::NameLeaf(n), Key::Name(name)) => n.first().is_some_and(|(first, _)| first == name),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("page does not start with the key its parent records")
    }
}

/// Iterator over entries in stream order.
#[derive(Debug)]
pub struct Entries {
    archive: Archive,
    next: u64,
    page: Option<(Arc<Page>, usize)>,
}

impl Iterator for Entries {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.archive.entry_count() {
            return None;
        }
        if let Some((page, i)) = &mut self.page
            && let Page::CatalogLeaf(entries) = &**page
            && let Some(e) = entries.get(*i)
        {
            *i += 1;
            self.next += 1;
            return Some(Ok(e.clone()));
        }
        match self.archive.inner.catalog_leaf(self.next) {
            Ok((page, i)) => {
                self.page = Some((page, i));
                self.next()
            }
            Err(e) => {
                self.next = u64::MAX;
                Some(Err(e))
            }
        }
    }
}

/// `Read + Seek` over an entry or the logical stream.
#[derive(Debug, Clone)]
pub struct EntryReader {
    archive: Archive,
    start: u64,
    size: u64,
    pos: u64,
    name: String,
}

impl EntryReader {
    /// Size of what this reader reads.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for EntryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let what = if self.name.is_empty() {
            "the logical stream".to_string()
        } else {
            format!("entry `{}`", Excerpt(&self.name))
        };
        self.archive
            .inner
            .read_at(self.start + self.pos, &mut buf[..n], &what)
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for EntryReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}
