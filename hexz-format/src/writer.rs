//! The archive writer.
//!
//! Entries are appended in the order the caller adds them; their bytes form the
//! logical stream. The caller's thread only copies input into batches; a worker
//! thread cuts each batch with FastCDC, hashes and compresses the chunks on rayon,
//! deduplicates them in stream order and writes blobs and index pages. At most
//! [`WriterOptions::batch_bytes`] × 3 bytes of input are in flight, whatever the
//! input size; the result is byte-identical for any thread count.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;

use crate::chunkdelta::{
    CHUNK_BASE_RECORD_LEN, ChunkBase, MAX_CHUNK_BASES_PER_SECTION, encode_chunk_bases,
};
use crate::codec::Compressor;
use crate::columns::ColumnSchema;
use crate::crypto::ChunkHasher;
use crate::crypto::seal::{BlobRole, Place, Sealer};
use crate::delta::{BaseCandidates, PageBase, encode_page_bases};
use crate::destination::{self, Writes};
use crate::error::{Error, Hash32, Result};
use crate::layout::{
    BLOB_DELTA, BLOB_RAW, CHUNK_DELTA, CHUNK_RAW, CHUNK_ZERO, CHUNKER_FASTCDC_2020, ChunkParams,
    ChunkRecord, Directory, Entry, EntryKind, MAX_CODEC_NAME_LEN, MAX_COLUMNS_LEN, MAX_NAME_LEN,
    MAX_PAGE_LEN, MAX_SECTIONS, MAX_TARGET_LEN, Owner, PageRef, SECTION_CHUNK_BASES,
    SECTION_CRITICAL, SECTION_PAGE_BASES, SECTION_PARENTS, Section, Stats, Trailer, VERSION_MAJOR,
    VERSION_MINOR, encode_header,
};
use crate::page::{Key, PageSink, TreeBuilder, TreeKind};
use crate::parents::ParentSet;

/// A snapshot of a writer's progress (see [`ArchiveWriter::progress`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteProgress {
    /// Bytes of the logical stream cut into chunks and stored so far.
    pub chunked_bytes: u64,
    /// Raw bytes of the distinct non-zero chunks among them.
    pub unique_bytes: u64,
    /// Stored (compressed) bytes of those chunks.
    pub stored_bytes: u64,
}

impl WriteProgress {
    /// Chunked bytes per distinct byte (zero runs count as deduplicated); 1.0 at
    /// the start.
    pub fn dedup_ratio(&self) -> f64 {
        if self.unique_bytes == 0 {
            1.0
        } else {
            self.chunked_bytes as f64 / self.unique_bytes as f64
        }
    }
}

#[derive(Debug, Default)]
struct ProgressCounters {
    chunked: AtomicU64,
    unique: AtomicU64,
    stored: AtomicU64,
}

/// Where a finished archive goes. `commit` runs once everything is written and
/// flushed; a sink that is dropped without a commit must leave nothing behind.
pub trait Sink: Write + Send + 'static {
    /// Where the archive goes, for error messages.
    fn describe(&self) -> PathBuf {
        PathBuf::from("<memory>")
    }

    /// Make the written archive visible (rename into place, ...).
    fn commit(&mut self) -> io::Result<()> {
        self.flush()
    }
}

impl Sink for Vec<u8> {}

/// A file the caller owns (a temporary file, say): written through, flushed by
/// `commit`, not renamed.
impl Sink for BufWriter<File> {
    fn describe(&self) -> PathBuf {
        PathBuf::from("<file>")
    }
}

/// A file written toward a destination that appears there, whole, only at
/// `commit`.
///
/// On Linux the bytes go to an unnamed file in the destination's folder
/// (`O_TMPFILE`): a process killed while writing (even by `SIGKILL`) leaves
/// nothing behind, as the kernel frees a file without a name. `commit` syncs it,
/// gives it a temporary name (`linkat` through `/proc/self/fd`) and renames that
/// over the destination, then syncs the folder. Where the file system has no
/// `O_TMPFILE`, the file is written under a temporary name
/// (`.<name>.XXXXXX.tmp`) from the start, which only a clean exit removes.
/// Dropped uncommitted, nothing remains either way.
///
/// [`PendingFile::replacing`] checks the destination first
/// ([`destination::check`]: what may be replaced there) and again at `commit`,
/// so a file that appeared there meanwhile is not replaced either.
#[derive(Debug)]
pub struct PendingFile {
    out: BufWriter<File>,
    temp: Option<Temp>,
    dir: PathBuf,
    dest: PathBuf,
    /// What is written and whether anything there may be replaced, for files
    /// made with [`PendingFile::replacing`].
    policy: Option<(Writes, bool)>,
}

#[derive(Debug)]
enum Temp {
    /// Unnamed (`O_TMPFILE`); `out` writes to it.
    Unnamed,
    /// Named from the start.
    Named(tempfile::NamedTempFile),
}

impl PendingFile {
    /// Start writing toward `dest` (mode 0o666 less the umask, like any new
    /// file).
    pub fn create(dest: &Path) -> io::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (file, temp) = match open_unnamed(&dir) {
            Some(file) => (file, Temp::Unnamed),
            None => {
                let temp = named_temp(&dir, dest)?;
                (temp.as_file().try_clone()?, Temp::Named(temp))
            }
        };
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            temp: Some(temp),
            dir,
            dest: dest.to_path_buf(),
            policy: None,
        })
    }

    /// Start writing a file of kind `writes` toward `dest`, a path a user named:
    /// refused unless [`destination::check`] allows replacing what is there (with
    /// `force`, anything but a folder, a special file or a read-only file), now
    /// and again at `commit`.
    pub fn replacing(
        dest: &Path,
        writes: Writes,
        force: bool,
    ) -> std::result::Result<Self, destination::DestinationError> {
        destination::check(dest, writes, force)?;
        let mut file = Self::create(dest).map_err(|error| destination::DestinationError::Io {
            path: dest.to_path_buf(),
            error,
        })?;
        file.policy = Some((writes, force));
        Ok(file)
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Append the first `len` bytes of `src` (with `copy_file_range` where the
    /// file system can).
    pub fn copy_from(&mut self, src: &File, len: u64) -> io::Result<()> {
        self.out.flush()?;
        let copied = io::copy(&mut Read::take(src, len), self.out.get_mut())?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("copied {copied} of {len} bytes"),
            ));
        }
        Ok(())
    }

    /// Set the file's permissions (they stay when it is named at `commit`).
    pub fn set_permissions(&self, permissions: std::fs::Permissions) -> io::Result<()> {
        self.out.get_ref().set_permissions(permissions)
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Sink for PendingFile {
    fn describe(&self) -> PathBuf {
        self.dest.clone()
    }

    fn commit(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let file = self.out.get_ref();
        file.sync_all()?;
        if let Some((writes, force)) = self.policy {
            // Something may have appeared there while this file was written.
            destination::check(&self.dest, writes, force).map_err(|e| match e {
                destination::DestinationError::Io { error, .. } => error,
                other => io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("changed while writing: {other}"),
                ),
            })?;
        }
        let temp = match self
            .temp
            .take()
            .ok_or_else(|| io::Error::other("archive already committed"))?
        {
            Temp::Named(temp) => temp.into_temp_path(),
            Temp::Unnamed => match name_unnamed(file, &self.dir, &self.dest) {
                Ok(named) => named,
                // No /proc to link through: copy to a named file.
                Err(_) => {
                    let mut temp = named_temp(&self.dir, &self.dest)?;
                    let mut from = file.try_clone()?;
                    std::io::Seek::seek(&mut from, io::SeekFrom::Start(0))?;
                    io::copy(&mut from, temp.as_file_mut())?;
                    temp.as_file().sync_all()?;
                    temp.into_temp_path()
                }
            },
        };
        temp.persist(&self.dest).map_err(|e| e.error)?;
        File::open(&self.dir)?.sync_all()
    }
}

/// An unnamed file in `dir` (`O_TMPFILE`), or `None` where that is not
/// available (the caller then names its file from the start).
fn open_unnamed(dir: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, Mode, OFlags};
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o666))
            .ok()
            .map(File::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        None
    }
}

/// Give the unnamed `file` a temporary name in `dir` (a fresh
/// `.<name>.XXXXXX.tmp`, removed if the caller drops it).
fn name_unnamed(file: &File, dir: &Path, dest: &Path) -> io::Result<tempfile::TempPath> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let prefix = temp_prefix(dest);
    let named = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .make_in(dir, |path| {
            rustix::fs::linkat(
                rustix::fs::CWD,
                proc_path.as_str(),
                rustix::fs::CWD,
                path,
                rustix::fs::AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(io::Error::from)
        })?;
    Ok(named.into_temp_path())
}

/// A named temporary file in `dir` for `dest` (`.<name>.XXXXXX.tmp`, 0o666
/// less the umask — tempfile's default is 0o600).
fn named_temp(dir: &Path, dest: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&temp_prefix(dest))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

fn temp_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    format!(".{name}.")
}

/// Settings of a writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// FastCDC parameters.
    pub chunking: ChunkParams,
    /// Codec for chunks and pages.
    pub compressor: Arc<dyn Compressor>,
    /// Target decoded size of an index page.
    pub page_size: usize,
    /// Bytes of input per batch handed to the worker (memory bound: about three
    /// batches plus their compressed form are alive at once).
    pub batch_bytes: usize,
    /// Threads for hashing and compression (`None`: rayon's global pool).
    pub threads: Option<usize>,
    /// Seal every blob and the directory, with these keys and key slots
    /// (see [`crate::crypto`]). `None`: a plain archive.
    pub encryption: Option<crate::crypto::Encryption>,
    /// Sign the finished archive (see [`crate::sign`]).
    pub signing: Option<crate::sign::Signing>,
    /// Thin children whose codec has a delta form: store a new chunk as a delta
    /// against its parent's chunk at the same place of the same entry when that
    /// is smaller ([`crate::chunkdelta`]). `false`: every chunk whole.
    pub chunk_deltas: bool,
}

impl WriterOptions {
    /// Defaults with the given codec: 16/64/256 KiB chunks, 64 KiB pages, 8 MiB
    /// batches.
    pub fn new(compressor: Arc<dyn Compressor>) -> Self {
        Self {
            chunking: ChunkParams::default(),
            compressor,
            page_size: 64 * 1024,
            batch_bytes: 8 << 20,
            threads: None,
            encryption: None,
            signing: None,
            chunk_deltas: true,
        }
    }

    fn validate(&self) -> Result<()> {
        self.chunking.validate()?;
        let name = self.compressor.name();
        if name.is_empty()
            || name.len() > MAX_CODEC_NAME_LEN
            || !name.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::InvalidSetting {
                setting: "codec name",
                detail: format!(
                    "{:?} must be 1..=32 printable ASCII bytes",
                    crate::error::Excerpt(name)
                ),
            });
        }
        if !(4096..=(8 << 20)).contains(&self.page_size) {
            return Err(Error::InvalidSetting {
                setting: "page size",
                detail: format!("{} outside 4096..=8388608", self.page_size),
            });
        }
        let min_batch = self.chunking.max as usize;
        if self.batch_bytes < min_batch || self.batch_bytes > (1 << 30) {
            return Err(Error::InvalidSetting {
                setting: "batch size",
                detail: format!(
                    "{} outside {min_batch} (the largest chunk)..=1 GiB",
                    self.batch_bytes
                ),
            });
        }
        Ok(())
    }
}

/// Metadata of an added entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Mode bits (permissions and file type, as `st_mode`).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Numeric owner (`None`: not recorded; readers then see no owner).
    pub owner: Option<Owner>,
    /// Encoded user columns (empty for none).
    pub columns: Vec<u8>,
}

/// Part of a file given to [`ArchiveWriter::add_file_pieces`].
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes to chunk, continuing the current segment.
    Bytes(Vec<u8>),
    /// Chunk records of the parent chain, appended as they are (ends the segment).
    Chunks(Vec<ChunkRecord>),
}

/// What a finished archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// BLAKE3 of the stored directory: the archive's identity.
    pub root_hash: Hash32,
    /// Counts.
    pub stats: Stats,
    /// Bytes written.
    pub archive_size: u64,
    /// The signature made when [`WriterOptions::signing`] was set (embedded in the
    /// archive unless detached).
    pub signature: Option<crate::sign::SignatureBlock>,
}

/// Writes one archive. See the module docs for the threading model.
#[derive(Debug)]
pub struct ArchiveWriter<W: Sink> {
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<Result<(W, Summary)>>>,
    /// The batch being filled: `headroom` spare bytes (where the worker puts the
    /// tail carried from the previous batch), then input up to `filled`.
    batch: Vec<u8>,
    /// Batches the worker has finished with, to be filled again.
    recycled: Receiver<Vec<u8>>,
    /// Counters the worker updates after each batch.
    progress: Arc<ProgressCounters>,
    filled: usize,
    headroom: usize,
    batch_bytes: usize,
    stream_pos: u64,
    next_id: u64,
    names: Vec<(String, u64)>,
    /// Entries not yet handed to the worker.
    entries: Vec<Entry>,
    sections: Vec<(u16, u16, Vec<u8>)>,
    /// The column schema every entry's columns are checked against, once set.
    schema: Option<ColumnSchema>,
    /// Whether [`ArchiveWriter::set_parents`] was called.
    has_parents: bool,
    /// How this archive's chunk ids are made (parents must make them the same way).
    hasher: ChunkHasher,
    /// The entry whose bytes are being added (name, stream offset), until it is
    /// pushed: the worker finds a new chunk's delta base by entry name.
    open: Option<(String, u64)>,
    /// [`Sink::describe`] of the sink.
    destination: PathBuf,
}

enum Msg {
    /// Entries completed since the previous batch, then input bytes at
    /// `data[headroom..]` (see [`cut_batch`]). Entries travel with the data so the
    /// caller's thread never waits on the worker for each small file; the channel
    /// bounds batches, hence memory.
    /// `ends_segment`: cut the batch to its end (see
    /// [`ArchiveWriter::end_segment`]).
    /// `open`: the entry whose bytes were still being added when the batch was
    /// sent.
    Batch {
        entries: Vec<Entry>,
        data: Vec<u8>,
        ends_segment: bool,
        open: Option<(String, u64)>,
    },
    /// Store everything sent so far, then send back the digests of the segments
    /// ended so far.
    Sync(std::sync::mpsc::Sender<Vec<Hash32>>),
    /// Dedup against these ancestors (thin snapshot); sent before any batch.
    Parents(Box<ParentSet>),
    /// Chunk records of the parent chain to append as they are (after a batch
    /// that ended a segment); see [`ArchiveWriter::append_parent_chunks`].
    Reuse(Vec<ChunkRecord>),
    Finish {
        entries: Vec<Entry>,
        names: Vec<(String, u64)>,
        sections: Vec<(u16, u16, Vec<u8>)>,
    },
}

impl ArchiveWriter<PendingFile> {
    /// Write an archive to `path` (atomically: nothing appears there until
    /// [`finish`](Self::finish) succeeds). What is at `path` is replaced only if
    /// it is a hexz archive and not read-only ([`destination::check`]);
    /// [`create_with`](Self::create_with) can replace other files too.
    pub fn create(path: impl AsRef<Path>, options: WriterOptions) -> Result<Self> {
        Self::create_with(path, options, false)
    }

    /// [`create`](Self::create); with `force` (`--force`), whatever regular
    /// file or symbolic link is at `path` is replaced too — never a folder, a
    /// special file or a read-only file.
    pub fn create_with(
        path: impl AsRef<Path>,
        options: WriterOptions,
        force: bool,
    ) -> Result<Self> {
        let path = path.as_ref();
        options.validate()?;
        let file = PendingFile::replacing(path, Writes::Archive, force)?;
        Self::new(file, options)
    }
}

impl<W: Sink> ArchiveWriter<W> {
    /// Write an archive into `sink`.
    pub fn new(sink: W, options: WriterOptions) -> Result<Self> {
        options.validate()?;
        if let Some(e) = &options.encryption {
            e.claim()?;
        }
        let batch_bytes = options.batch_bytes;
        let headroom = options.chunking.max as usize;
        let hasher = options
            .encryption
            .as_ref()
            .map(|e| e.chunk_hasher())
            .unwrap_or_default();
        let destination = sink.describe();
        let (tx, rx) = sync_channel(2);
        let (recycle_tx, recycled) = std::sync::mpsc::channel();
        let progress = Arc::new(ProgressCounters::default());
        let worker_progress = Arc::clone(&progress);
        let pool = match options.threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .thread_name(|i| format!("hexz-write-{i}"))
                    .build()
                    .map_err(|e| Error::InvalidSetting {
                        setting: "threads",
                        detail: e.to_string(),
                    })?,
            ),
            None => None,
        };
        let worker = std::thread::Builder::new()
            .name("hexz-writer".into())
            .spawn(move || {
                let state = WorkerState::new(sink, options, recycle_tx, worker_progress)?;
                match pool {
                    Some(pool) => pool.install(move || state.run(rx)),
                    None => state.run(rx),
                }
            })
            .map_err(|error| Error::Io {
                path: PathBuf::from("<writer thread>"),
                error,
            })?;
        Ok(Self {
            tx: Some(tx),
            worker: Some(worker),
            batch: vec![0; headroom + batch_bytes],
            recycled,
            progress,
            filled: headroom,
            headroom,
            batch_bytes,
            stream_pos: 0,
            next_id: 0,
            names: Vec::new(),
            entries: Vec::new(),
            sections: Vec::new(),
            schema: None,
            has_parents: false,
            hasher,
            open: None,
            destination,
        })
    }

    /// Where the archive goes ([`Sink::describe`]: a path for files).
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Add a regular file whose bytes come from `data`; returns its size.
    pub fn add_file(&mut self, name: &str, data: &mut dyn Read, meta: EntryMeta) -> Result<u64> {
        self.add_stream(name, EntryKind::File, data, meta)
    }

    /// Add a regular file whose bytes are `pieces` in order: bytes to chunk, or
    /// chunk records of the parent chain reused as they are (see
    /// [`append_parent_chunks`](Self::append_parent_chunks)); returns its size.
    pub fn add_file_pieces(
        &mut self,
        name: &str,
        pieces: &mut dyn Iterator<Item = Result<Piece>>,
        meta: EntryMeta,
    ) -> Result<u64> {
        validate_name(name)?;
        self.check_columns(name, &meta.columns)?;
        let start = self.stream_pos;
        self.open = Some((name.to_string(), start));
        for piece in pieces {
            match piece? {
                Piece::Bytes(data) => self.add_stream_bytes(name, &mut &data[..])?,
                Piece::Chunks(records) => self.append_parent_chunks(records)?,
            }
        }
        let size = self.stream_pos - start;
        self.push_entry_at(name, EntryKind::File, start, size, None, meta)?;
        Ok(size)
    }

    /// Thin children: end the current segment (see
    /// [`end_segment`](Self::end_segment)), then append `records` to the chunk
    /// index without reading or hashing anything: each must be a zero chunk
    /// (`source` 0) or point at a blob stored in the parent chain (`source` ≥ 1,
    /// numbered as in the [`ParentSet`] given to
    /// [`set_parents`](Self::set_parents), blob fields as recorded there). Their
    /// logical offsets are reassigned in stream order. For tools that know which
    /// chunks of a parent are unchanged (writable volumes).
    pub fn append_parent_chunks(&mut self, records: Vec<ChunkRecord>) -> Result<()> {
        if !self.has_parents && records.iter().any(|r| !r.is_zero()) {
            return Err(Error::InvalidSetting {
                setting: "parents",
                detail: "chunks of a parent are appended to a thin child only".into(),
            });
        }
        self.end_segment()?;
        self.stream_pos += records.iter().map(|r| u64::from(r.raw_len)).sum::<u64>();
        self.send(Msg::Reuse(records))
    }

    /// Add a regular file from memory.
    pub fn add_bytes(&mut self, name: &str, data: &[u8], meta: EntryMeta) -> Result<()> {
        self.add_stream(name, EntryKind::File, &mut &data[..], meta)
            .map(drop)
    }

    /// Add a dataset record (bytes plus user columns in `meta.columns`).
    pub fn add_record(&mut self, name: &str, data: &[u8], meta: EntryMeta) -> Result<()> {
        self.add_stream(name, EntryKind::Record, &mut &data[..], meta)
            .map(drop)
    }

    /// Add a directory.
    pub fn add_dir(&mut self, name: &str, meta: EntryMeta) -> Result<()> {
        self.push_entry(name, EntryKind::Dir, 0, None, meta)
    }

    /// Add a symbolic link to `target`.
    pub fn add_symlink(&mut self, name: &str, target: &str, meta: EntryMeta) -> Result<()> {
        if target.is_empty() || target.len() > MAX_TARGET_LEN || target.contains('\0') {
            return Err(Error::InvalidName {
                name: name.to_string(),
                reason: "symlink target is empty, contains NUL or is longer than 4096 bytes",
            });
        }
        self.push_entry(name, EntryKind::Symlink, 0, Some(target.to_string()), meta)
    }

    /// Attach a metadata section (`SECTION_*` kind). `critical` sections make
    /// readers that do not know the kind refuse the archive.
    pub fn add_section(&mut self, kind: u16, critical: bool, data: Vec<u8>) -> Result<()> {
        if data.len() > MAX_PAGE_LEN as usize || self.sections.len() >= MAX_SECTIONS {
            return Err(Error::InvalidSetting {
                setting: "section",
                detail: format!(
                    "{} bytes in section {}: at most {MAX_SECTIONS} sections of {MAX_PAGE_LEN} bytes",
                    data.len(),
                    self.sections.len()
                ),
            });
        }
        let flags = if critical { SECTION_CRITICAL } else { 0 };
        self.sections.push((kind, flags, data));
        Ok(())
    }

    /// Declare the archive's typed user columns: writes the schema as a
    /// non-critical [`SECTION_COLUMNS`](crate::layout::SECTION_COLUMNS) section
    /// and, from then on, checks that every entry's `columns` bytes are a row of
    /// it (see [`crate::columns`]; build them with
    /// [`ColumnSchema::encode_row`]). Call it once, before adding any entry.
    /// Without a schema, `columns` bytes are stored as given (opaque).
    pub fn set_columns(&mut self, schema: ColumnSchema) -> Result<()> {
        if self.schema.is_some() || self.next_id > 0 {
            return Err(Error::InvalidSetting {
                setting: "columns",
                detail: "the column schema is set once, before the first entry".into(),
            });
        }
        self.add_section(crate::layout::SECTION_COLUMNS, false, schema.encode())?;
        self.schema = Some(schema);
        Ok(())
    }

    /// Make this archive a thin child of `parents` (see [`crate::parents`]):
    /// chunks stored anywhere in the chain are referenced there instead of being
    /// stored, and the archive gets a critical parents section. Call it once,
    /// before adding any entry.
    pub fn set_parents(&mut self, parents: ParentSet) -> Result<()> {
        if self.next_id > 0 || self.stream_pos > 0 || self.has_parents {
            return Err(Error::InvalidSetting {
                setting: "parents",
                detail: "parents are set once, before the first entry".into(),
            });
        }
        if !parents.chunk_hasher().same_ids(&self.hasher) {
            return Err(Error::InvalidSetting {
                setting: "parents",
                detail: if self.hasher.key_bytes().is_some() {
                    "an encrypted thin child must use its parents' dedup key: build it with \
                     the keys of an encrypted parent (a plain parent cannot have encrypted \
                     children)"
                        .into()
                } else {
                    "the parent is encrypted: its thin children must be encrypted too, with \
                     the parent's dedup key"
                        .into()
                },
            });
        }
        self.has_parents = true;
        self.send(Msg::Parents(Box::new(parents)))
    }

    /// The column schema set by [`set_columns`](Self::set_columns).
    pub fn columns(&self) -> Option<&ColumnSchema> {
        self.schema.as_ref()
    }

    /// With a schema set, `columns` must be one of its rows. Checked before an
    /// entry's bytes enter the stream, so a refused entry leaves no trace.
    fn check_columns(&self, name: &str, columns: &[u8]) -> Result<()> {
        match &self.schema {
            Some(schema) => schema
                .check_row(columns)
                .map_err(|error| Error::InvalidColumns {
                    context: format!("entry `{}`", crate::error::Excerpt(name)),
                    error,
                }),
            None => Ok(()),
        }
    }

    /// Bytes added to the logical stream so far.
    pub fn logical_size(&self) -> u64 {
        self.stream_pos
    }

    /// How far the worker has got: bytes chunked, their distinct (deduplicated,
    /// non-zero) part, and its stored size. Cheap; for progress bars.
    pub fn progress(&self) -> WriteProgress {
        let p = &self.progress;
        WriteProgress {
            chunked_bytes: p.chunked.load(Ordering::Relaxed),
            unique_bytes: p.unique.load(Ordering::Relaxed),
            stored_bytes: p.stored.load(Ordering::Relaxed),
        }
    }

    fn add_stream(
        &mut self,
        name: &str,
        kind: EntryKind,
        data: &mut dyn Read,
        meta: EntryMeta,
    ) -> Result<u64> {
        validate_name(name)?;
        self.check_columns(name, &meta.columns)?;
        let start = self.stream_pos;
        self.open = Some((name.to_string(), start));
        self.add_stream_bytes(name, data)?;
        let size = self.stream_pos - start;
        self.push_entry_at(name, kind, start, size, None, meta)?;
        Ok(size)
    }

    /// Append `data` to the logical stream (`name` for errors).
    fn add_stream_bytes(&mut self, name: &str, data: &mut dyn Read) -> Result<()> {
        loop {
            if self.filled == self.batch.len() {
                self.send_batch()?;
            }
            let n = loop {
                match data.read(&mut self.batch[self.filled..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        return Err(Error::Input {
                            name: name.to_string(),
                            error,
                        });
                    }
                }
            };
            self.filled += n;
            self.stream_pos += n as u64;
            if n == 0 {
                return Ok(());
            }
        }
    }

    fn push_entry(
        &mut self,
        name: &str,
        kind: EntryKind,
        size: u64,
        target: Option<String>,
        meta: EntryMeta,
    ) -> Result<()> {
        validate_name(name)?;
        self.check_columns(name, &meta.columns)?;
        self.push_entry_at(name, kind, self.stream_pos, size, target, meta)
    }

    fn push_entry_at(
        &mut self,
        name: &str,
        kind: EntryKind,
        offset: u64,
        size: u64,
        target: Option<String>,
        meta: EntryMeta,
    ) -> Result<()> {
        if meta.columns.len() > MAX_COLUMNS_LEN || meta.mtime_nsec >= 1_000_000_000 {
            return Err(Error::InvalidSetting {
                setting: "entry metadata",
                detail: format!(
                    "`{}`: columns over 1 MiB or mtime nanoseconds out of range",
                    crate::error::Excerpt(name)
                ),
            });
        }
        self.open = None;
        let id = self.next_id;
        self.next_id += 1;
        self.names.push((name.to_string(), id));
        self.entries.push(Entry {
            id,
            name: name.to_string(),
            kind,
            mode: meta.mode,
            mtime: meta.mtime,
            mtime_nsec: meta.mtime_nsec,
            offset,
            size,
            target,
            owner: meta.owner,
            columns: meta.columns,
        });
        Ok(())
    }

    /// End the current *segment* of the logical stream: the next byte starts a new
    /// chunk, and FastCDC restarts there, so the chunks of a segment depend on its
    /// bytes alone — not on what precedes or follows it. Each segment gets a
    /// digest (see [`segment_digests`](Self::segment_digests)). Segment ends are
    /// part of the input: the same calls give the same bytes.
    pub fn end_segment(&mut self) -> Result<()> {
        self.send_batch_with(true)
    }

    /// The digests of the segments ended so far, in order (one per
    /// [`end_segment`](Self::end_segment) call): BLAKE3 over the segment's chunks
    /// in stream order, each as its 32-byte id then its length (`u32` LE); a zero
    /// chunk's id is 32 zero bytes. Waits until the writer has cut everything
    /// sent so far.
    pub fn segment_digests(&mut self) -> Result<Vec<Hash32>> {
        if self.filled > self.headroom {
            self.send_batch()?;
        }
        let (reply, answer) = std::sync::mpsc::channel();
        self.send(Msg::Sync(reply))?;
        match answer.recv() {
            Ok(digests) => Ok(digests),
            Err(_) => Err(self.join_worker().err().unwrap_or(Error::Io {
                path: PathBuf::from("<writer thread>"),
                error: io::Error::other("writer thread stopped"),
            })),
        }
    }

    fn send_batch(&mut self) -> Result<()> {
        self.send_batch_with(false)
    }

    fn send_batch_with(&mut self, ends_segment: bool) -> Result<()> {
        // Reuse a buffer the worker is done with (no page faults, and only the part
        // past its old length is zeroed); else a fresh zeroed allocation (calloc).
        let len = self.headroom + self.batch_bytes;
        let next = match self.recycled.try_recv() {
            Ok(mut buf) => {
                buf.resize(len, 0);
                buf
            }
            Err(_) => vec![0; len],
        };
        let mut full = std::mem::replace(&mut self.batch, next);
        full.truncate(self.filled);
        self.filled = self.headroom;
        let entries = std::mem::take(&mut self.entries);
        let open = self.open.clone();
        self.send(Msg::Batch {
            entries,
            data: full,
            ends_segment,
            open,
        })
    }

    fn send(&mut self, msg: Msg) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if sent {
            Ok(())
        } else {
            // The worker stopped: its result holds the reason.
            Err(self.join_worker().err().unwrap_or(Error::Io {
                path: PathBuf::from("<writer thread>"),
                error: io::Error::other("writer thread stopped"),
            }))
        }
    }

    fn join_worker(&mut self) -> Result<(W, Summary)> {
        self.tx = None;
        let worker = self.worker.take().ok_or_else(|| Error::Io {
            path: PathBuf::from("<writer thread>"),
            error: io::Error::other("writer already finished"),
        })?;
        worker.join().map_err(|_| Error::Io {
            path: PathBuf::from("<writer thread>"),
            error: io::Error::other("writer thread panicked"),
        })?
    }

    /// Write the index, catalog, directory and trailer, commit the sink, and return
    /// it with a summary.
    pub fn finish(mut self) -> Result<(W, Summary)> {
        if self.filled > self.headroom {
            self.send_batch()?;
        }
        let mut names = std::mem::take(&mut self.names);
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicateName {
                name: w[0].0.clone(),
            });
        }
        let sections = std::mem::take(&mut self.sections);
        let entries = std::mem::take(&mut self.entries);
        self.send(Msg::Finish {
            entries,
            names,
            sections,
        })?;
        self.join_worker()
    }
}

impl<W: Sink> Drop for ArchiveWriter<W> {
    /// A writer dropped before `finish` (an error, a panic) stops its worker and
    /// waits for it, so the uncommitted output (a temporary file) is removed before
    /// the caller goes on — or exits.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Check an entry name: relative, `/`-separated, no empty, `.` or `..` components,
/// no NUL, at most 4096 bytes.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty name");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 4096 bytes");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    if name.starts_with('/') {
        return bad("absolute path");
    }
    for part in name.split('/') {
        match part {
            "" => return bad("empty path component"),
            "." | ".." => return bad("`.` or `..` component"),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct BlobLoc {
    offset: u64,
    stored_len: u32,
    crc: u32,
    flags: u8,
}

/// Where blobs and pages go: the sink and the write position.
struct BlobOut<W: Sink> {
    out: W,
    pos: u64,
    compressor: Arc<dyn Compressor>,
    scratch: Vec<u8>,
    /// Encrypted archives: seals pages, sections and the directory at their offset.
    sealer: Option<Arc<Sealer>>,
    /// Thin children: the parent's leaves to compress leaves against
    /// ([`crate::delta`]), and the delta pages written so far.
    bases: Option<Arc<BaseCandidates>>,
    deltas: Vec<PageBase>,
}

impl<W: Sink> BlobOut<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(error) = self.out.write_all(bytes) {
            return Err(Error::Io {
                path: self.out.describe(),
                error,
            });
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

impl<W: Sink> BlobOut<W> {
    /// Seal (encrypted archives) and write a prepared page or section.
    fn write_prepared(
        &mut self,
        mut prepared: Prepared,
        raw_len: usize,
        flags: u8,
        role: BlobRole,
    ) -> Result<PageRef> {
        seal_prepared(
            &mut prepared,
            self.sealer.as_deref(),
            Place::At(role, self.pos),
        );
        let r = PageRef {
            offset: self.pos,
            stored_len: prepared.stored.len() as u32,
            raw_len: raw_len as u32,
            crc: prepared.crc,
            flags,
            hash: *blake3::hash(&prepared.stored).as_bytes(),
        };
        self.write(&prepared.stored)?;
        self.scratch = prepared.stored;
        Ok(r)
    }
}

impl<W: Sink> PageSink for BlobOut<W> {
    fn write_page(&mut self, what: &'static str, raw: &[u8]) -> Result<PageRef> {
        let codec = self.compressor.clone();
        let raw_codec = codec.name() == "none";
        let scratch = std::mem::take(&mut self.scratch);
        let prepared = prepare_blob_into(codec.as_ref(), raw, raw_codec, what, scratch)?;
        let role = if what == "section" {
            BlobRole::Section
        } else {
            BlobRole::Page
        };
        let flags = if prepared.raw { BLOB_RAW } else { 0 };
        self.write_prepared(prepared, raw.len(), flags, role)
    }

    fn write_leaf(&mut self, kind: TreeKind, ordinal: usize, raw: &[u8]) -> Result<PageRef> {
        let what = kind.what();
        if !self.compressor.has_base_form() {
            return self.write_page(what, raw);
        }
        let Some((bases, (source, base))) = self
            .bases
            .clone()
            .and_then(|b| b.base(kind, ordinal).map(|x| (b, x)))
        else {
            return self.write_page(what, raw);
        };
        let codec = self.compressor.clone();
        let base_raw = bases.load(source, &base)?;
        let mut delta = Vec::new();
        let codec_error = |error| Error::Codec {
            codec: codec.name().to_string(),
            what,
            offset: 0,
            error,
        };
        if !codec
            .compress_with_base(raw, &base_raw, &mut delta)
            .map_err(codec_error)?
        {
            return self.write_page(what, raw);
        }
        let scratch = std::mem::take(&mut self.scratch);
        let whole = prepare_blob_into(codec.as_ref(), raw, codec.name() == "none", what, scratch)?;
        // The delta also costs its record in the page-bases section.
        if delta.len() + crate::delta::PAGE_BASE_RECORD_LEN >= whole.stored.len() {
            let flags = if whole.raw { BLOB_RAW } else { 0 };
            return self.write_prepared(whole, raw.len(), flags, BlobRole::Page);
        }
        self.scratch = whole.stored;
        let prepared = Prepared {
            crc: crc32fast::hash(&delta),
            stored: delta,
            raw: false,
        };
        let offset = self.pos;
        let r = self.write_prepared(prepared, raw.len(), BLOB_DELTA, BlobRole::Page)?;
        self.deltas.push(PageBase {
            offset,
            source,
            base,
        });
        Ok(r)
    }
}

/// The worker: owns the output, the chunk index and the dedup table.
struct WorkerState<W: Sink> {
    blobs: BlobOut<W>,
    options: WriterOptions,
    carry: Vec<u8>,
    logical: u64,
    dedup: HashMap<[u8; 32], BlobLoc>,
    /// Chunk ids: plain or keyed BLAKE3.
    hasher: ChunkHasher,
    chunks: TreeBuilder,
    catalog: TreeBuilder,
    stats: Stats,
    /// Where processed batch buffers go back to the caller's thread.
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
    /// Shared with the caller's thread for progress reports.
    progress: Arc<ProgressCounters>,
    /// The chunks of the current segment (see [`ArchiveWriter::end_segment`]).
    segment: blake3::Hasher,
    /// Digests of the segments ended so far.
    segments: Vec<Hash32>,
    /// Thin snapshot: the ancestors' blobs, and (chunk records, raw bytes) taken
    /// from each (index = source).
    parents: Option<(Box<ParentSet>, ParentUse)>,
    /// Thin child with a codec that has a delta form: new chunks are tried as
    /// deltas against the parent's chunk at the same place of the same entry.
    chunk_deltas: bool,
    /// Entries with bytes not yet all chunked: (start, end, name), in stream order.
    spans: VecDeque<(u64, u64, Arc<str>)>,
    /// The entry still open when the last batch was sent: (name, start).
    open: Option<(Arc<str>, u64)>,
    /// Every delta blob the chunk index reads, (source, blob offset) → its base:
    /// the chunk-bases sections.
    delta_chunks: BTreeMap<(u16, u64), ChunkRecord>,
}

/// Per source (index 0 unused): chunk records and raw bytes taken from each parent.
type ParentUse = Vec<(u64, u64)>;

/// A batch cut into chunks: `cuts` are `(start, end)` in `buf`; bytes from
/// `consumed` on are carried into the next batch.
struct Cut {
    buf: Vec<u8>,
    cuts: Vec<(usize, usize)>,
    /// Per chunk: BLAKE3 id and whether it is all zeros (id then all zeros).
    ids: Vec<([u8; 32], bool)>,
    consumed: usize,
    /// The batch ends a segment: it was cut to its end.
    ends_segment: bool,
}

/// Cut a batch with FastCDC. `buf` holds `headroom` (= the largest chunk) spare
/// bytes, then the batch's input; the tail carried from the previous batch (always
/// shorter than the largest chunk) is copied into the end of the headroom, so the
/// input itself is never copied. Unless `last`, stop before the final window
/// shorter than the largest chunk, so cut points are the same as for one
/// continuous stream whatever the batch size.
fn cut_batch(
    carry: &[u8],
    mut buf: Vec<u8>,
    params: ChunkParams,
    last: bool,
    hasher: &ChunkHasher,
) -> Cut {
    let headroom = params.max as usize;
    let begin = headroom - carry.len();
    buf[begin..headroom].copy_from_slice(carry);
    let (min, avg, max) = (
        params.min as usize,
        params.avg as usize,
        params.max as usize,
    );
    let cdc = fastcdc::v2020::FastCDC::new(&buf[begin..], min, avg, max);
    let mut cuts = Vec::new();
    let mut start = 0;
    let len = buf.len() - begin;
    while start < len {
        let remaining = len - start;
        if !last && remaining < max {
            break;
        }
        let (_, end) = cdc.cut(start, remaining);
        cuts.push((begin + start, begin + end));
        start = end;
    }
    // Hashing here, on the cutting thread, keeps it off the compression path.
    let ids = cuts
        .iter()
        .map(|&(s, e)| {
            let data = &buf[s..e];
            if is_zero(data) {
                ([0; 32], true)
            } else {
                (hasher.id(data), false)
            }
        })
        .collect();
    Cut {
        buf,
        cuts,
        ids,
        consumed: begin + start,
        ends_segment: last,
    }
}

struct Prepared {
    stored: Vec<u8>,
    crc: u32,
    raw: bool,
}

impl<W: Sink> WorkerState<W> {
    fn new(
        out: W,
        options: WriterOptions,
        recycle: std::sync::mpsc::Sender<Vec<u8>>,
        progress: Arc<ProgressCounters>,
    ) -> Result<Self> {
        let page_size = options.page_size;
        let encryption = options.encryption.as_ref();
        let mut blobs = BlobOut {
            out,
            pos: 0,
            compressor: options.compressor.clone(),
            scratch: Vec::new(),
            sealer: encryption.map(|e| Arc::new(e.keys.sealer())),
            bases: None,
            deltas: Vec::new(),
        };
        let hasher = encryption.map(|e| e.chunk_hasher()).unwrap_or_default();
        blobs.write(&encode_header())?;
        Ok(Self {
            blobs,
            options,
            carry: Vec::new(),
            logical: 0,
            dedup: HashMap::new(),
            hasher,
            chunks: TreeBuilder::new(TreeKind::Chunks, page_size),
            catalog: TreeBuilder::new(TreeKind::Catalog, page_size),
            stats: Stats::default(),
            recycle,
            progress,
            segment: blake3::Hasher::new(),
            segments: Vec::new(),
            parents: None,
            chunk_deltas: false,
            spans: VecDeque::new(),
            open: None,
            delta_chunks: BTreeMap::new(),
        })
    }

    fn run(mut self, rx: Receiver<Msg>) -> Result<(W, Summary)> {
        // Cutting batch N+1 (serial FastCDC) overlaps with hashing, compressing and
        // writing batch N; message order alone decides the output, so the bytes do
        // not depend on timing or thread count.
        let mut pending: Option<Cut> = None;
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Batch {
                    entries,
                    data,
                    ends_segment,
                    open,
                } => {
                    self.add_entries(entries)?;
                    if self.chunk_deltas {
                        self.open = open.map(|(name, start)| (Arc::from(name), start));
                    }
                    let carry = std::mem::take(&mut self.carry);
                    let params = self.options.chunking;
                    let hasher = self.hasher.clone();
                    let next = match pending.take() {
                        Some(cut) => {
                            let (stored, next) = rayon::join(
                                || self.store_chunks(&cut),
                                || cut_batch(&carry, data, params, ends_segment, &hasher),
                            );
                            stored?;
                            let _ = self.recycle.send(cut.buf);
                            next
                        }
                        None => cut_batch(&carry, data, params, ends_segment, &hasher),
                    };
                    self.carry = next.buf[next.consumed..].to_vec();
                    pending = Some(next);
                }
                Msg::Sync(reply) => {
                    if let Some(cut) = pending.take() {
                        self.store_chunks(&cut)?;
                        let _ = self.recycle.send(cut.buf);
                    }
                    let _ = reply.send(self.segments.clone());
                }
                Msg::Reuse(records) => {
                    if let Some(cut) = pending.take() {
                        self.store_chunks(&cut)?;
                        let _ = self.recycle.send(cut.buf);
                    }
                    self.append_records(records)?;
                }
                Msg::Parents(set) => {
                    self.blobs.bases = Some(set.page_bases.clone());
                    let used = vec![(0, 0); set.parents().len() + 1];
                    self.parents = Some((set, used));
                    self.chunk_deltas =
                        self.options.chunk_deltas && self.options.compressor.has_base_form();
                }
                Msg::Finish {
                    entries,
                    names,
                    mut sections,
                } => {
                    self.add_entries(entries)?;
                    self.open = None;
                    if let Some(cut) = pending.take() {
                        self.store_chunks(&cut)?;
                    }
                    let carry = std::mem::take(&mut self.carry);
                    let tail = vec![0; self.options.chunking.max as usize];
                    let last = cut_batch(&carry, tail, self.options.chunking, true, &self.hasher);
                    self.store_chunks(&last)?;
                    if let Some((set, used)) = &self.parents {
                        let section = set.encode_section(used);
                        sections.push((SECTION_PARENTS, SECTION_CRITICAL, section));
                    }
                    return self.finish(names, sections);
                }
            }
        }
        // The caller dropped the writer without finishing: nothing is committed.
        Err(Error::Io {
            path: self.blobs.out.describe(),
            error: io::Error::other("writer dropped before finish"),
        })
    }

    fn in_parents(&self, id: &[u8; 32]) -> bool {
        self.parents
            .as_ref()
            .is_some_and(|(set, _)| set.lookup(id).is_some())
    }

    /// The entry holding most of stream bytes `start..end` (the first such): its
    /// name and those of its bytes within the range, relative to the entry.
    fn span_for(&self, start: u64, end: u64) -> Option<(Arc<str>, u64, u64)> {
        let mut best: Option<(u64, Arc<str>, u64, u64)> = None;
        let mut consider = |from: u64, to: u64, entry_start: u64, name: &Arc<str>| {
            if to > from && best.as_ref().is_none_or(|b| to - from > b.0) {
                best = Some((
                    to - from,
                    name.clone(),
                    from - entry_start,
                    to - entry_start,
                ));
            }
        };
        let first = self.spans.partition_point(|s| s.1 <= start);
        for (s, e, name) in self.spans.range(first..) {
            if *s >= end {
                break;
            }
            consider(start.max(*s), end.min(*e), *s, name);
        }
        if let Some((name, s)) = &self.open {
            consider(start.max(*s), end, *s, name);
        }
        best.map(|(_, name, from, to)| (name, from, to))
    }

    fn add_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        for entry in entries {
            if self.chunk_deltas && entry.kind.has_data() && entry.size > 0 {
                self.spans.push_back((
                    entry.offset,
                    entry.offset + entry.size,
                    Arc::from(entry.name.as_str()),
                ));
            }
            self.stats.entry_count += 1;
            let key = Key::Catalog {
                id: entry.id,
                offset: entry.offset,
            };
            self.catalog
                .push(key, |out| entry.encode(out), &mut self.blobs)?;
        }
        Ok(())
    }

    /// Append chunk records of the parent chain (see
    /// [`ArchiveWriter::append_parent_chunks`]); the segment before them was cut
    /// to its end, so nothing is carried.
    fn append_records(&mut self, records: Vec<ChunkRecord>) -> Result<()> {
        let parents = self
            .parents
            .as_ref()
            .map_or(0, |(set, _)| set.parents().len());
        for r in records {
            let bad = |detail: String| Error::InvalidSetting {
                setting: "parent chunk",
                detail,
            };
            if !self.carry.is_empty() {
                return Err(bad("appended inside a segment".into()));
            }
            let zero = r.is_zero();
            if zero != (r.source == 0) || usize::from(r.source) > parents || r.raw_len == 0 {
                return Err(bad(format!(
                    "record at {} (source {}, {} bytes) is not a zero chunk nor one of the                      {parents} parents",
                    r.logical_offset, r.source, r.raw_len
                )));
            }
            let record = ChunkRecord {
                logical_offset: self.logical,
                ..r
            };
            if zero {
                self.stats.zero_chunk_count += 1;
                self.stats.zero_bytes += u64::from(r.raw_len);
            } else if let Some((set, used)) = &mut self.parents {
                if r.flags & CHUNK_DELTA != 0 {
                    let base = set.chunk_base(r.source, r.blob_offset).ok_or_else(|| {
                        bad(format!(
                            "record at {} is a delta chunk of parent {} whose base the \
                             parent set does not know",
                            r.logical_offset, r.source
                        ))
                    })?;
                    self.delta_chunks
                        .insert((r.source, r.blob_offset), base.base);
                }
                let u = &mut used[usize::from(r.source)];
                u.0 += 1;
                u.1 += u64::from(r.raw_len);
            }
            self.segment.update(&record.id);
            self.segment.update(&r.raw_len.to_le_bytes());
            self.stats.chunk_count += 1;
            self.logical += u64::from(r.raw_len);
            self.chunks.push(
                Key::Chunk(record.logical_offset),
                |out| record.encode(out),
                &mut self.blobs,
            )?;
        }
        self.progress.chunked.store(self.logical, Ordering::Relaxed);
        Ok(())
    }

    /// Deduplicate, compress (in parallel) and write the chunks of a cut batch, in
    /// stream order.
    fn store_chunks(&mut self, cut: &Cut) -> Result<()> {
        let (buf, cuts, ids) = (&cut.buf, &cut.cuts, &cut.ids);
        // 2. Decide in stream order which chunks are new (first occurrence).
        let mut seen_in_batch = std::collections::HashSet::new();
        let new_chunks: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, (id, zero))| {
                !*zero
                    && !self.dedup.contains_key(id)
                    && !self.in_parents(id)
                    && seen_in_batch.insert(*id)
            })
            .map(|(i, _)| i)
            .collect();
        // Thin children: which entry (name, bytes) each new chunk mostly holds,
        // to find its delta base in the parent.
        let targets: Vec<Option<(Arc<str>, u64, u64)>> = if self.chunk_deltas {
            let first = cuts.first().map_or(0, |c| c.0);
            new_chunks
                .iter()
                .map(|&i| {
                    let (s, e) = cuts[i];
                    let start = self.logical + (s - first) as u64;
                    self.span_for(start, start + (e - s) as u64)
                })
                .collect()
        } else {
            Vec::new()
        };
        // 3. Compress the new ones in parallel (and, with a target, as a delta
        // against their base: kept when smaller by more than its base record).
        let compressor = &self.options.compressor;
        let raw_codec = compressor.name() == "none";
        let sealer = self.blobs.sealer.as_deref();
        let set = self.parents.as_ref().map(|(set, _)| &**set);
        let prepared: Vec<Result<(Prepared, Option<ChunkRecord>)>> = new_chunks
            .par_iter()
            .enumerate()
            .map(|(k, &i)| {
                let (s, e) = cuts[i];
                let data = &buf[s..e];
                let mut blob =
                    prepare_blob_into(compressor.as_ref(), data, raw_codec, "chunk", Vec::new())?;
                let mut base = None;
                if let (Some(set), Some(Some((name, from, to)))) = (set, targets.get(k))
                    && let Some((delta, b)) =
                        set.chunk_delta(compressor.as_ref(), data, name, *from, *to)?
                    && delta.len() + CHUNK_BASE_RECORD_LEN < blob.stored.len()
                {
                    blob = Prepared {
                        crc: crc32fast::hash(&delta),
                        stored: delta,
                        raw: false,
                    };
                    base = Some(b);
                }
                seal_prepared(&mut blob, sealer, Place::Chunk(&ids[i].0));
                Ok((blob, base))
            })
            .collect();
        // 4. Write in order.
        let mut prepared = prepared.into_iter();
        let mut next_new = new_chunks.iter().peekable();
        for (i, (&(s, e), (id, zero))) in cuts.iter().zip(ids.iter()).enumerate() {
            let raw_len = (e - s) as u32;
            let mut record = ChunkRecord {
                logical_offset: self.logical,
                blob_offset: 0,
                raw_len,
                stored_len: 0,
                crc: 0,
                source: 0,
                flags: 0,
                id: *id,
            };
            if *zero {
                record.flags = CHUNK_ZERO;
                self.stats.zero_chunk_count += 1;
                self.stats.zero_bytes += u64::from(raw_len);
            } else {
                if next_new.peek() == Some(&&i) {
                    next_new.next();
                    if let Some(blob) = prepared.next() {
                        let (blob, base) = blob?;
                        let loc = BlobLoc {
                            offset: self.blobs.pos,
                            stored_len: blob.stored.len() as u32,
                            crc: blob.crc,
                            flags: match (&base, blob.raw) {
                                (Some(_), _) => CHUNK_DELTA,
                                (None, true) => CHUNK_RAW,
                                (None, false) => 0,
                            },
                        };
                        if let Some(base) = base {
                            self.delta_chunks.insert((0, loc.offset), base);
                        }
                        self.blobs.write(&blob.stored)?;
                        self.dedup.insert(*id, loc);
                        self.stats.unique_chunk_count += 1;
                        self.stats.unique_raw_bytes += u64::from(raw_len);
                        self.stats.stored_chunk_bytes += u64::from(loc.stored_len);
                    }
                }
                // Every non-zero id is in the table (just written or earlier) or
                // stored in an ancestor.
                if let Some(loc) = self.dedup.get(id) {
                    record.blob_offset = loc.offset;
                    record.stored_len = loc.stored_len;
                    record.crc = loc.crc;
                    record.flags = loc.flags;
                } else if let Some((set, used)) = &mut self.parents
                    && let Some(p) = set.lookup(id)
                {
                    record.source = p.source;
                    record.blob_offset = p.blob_offset;
                    record.stored_len = p.stored_len;
                    record.crc = p.crc;
                    record.flags = p.flags;
                    if p.flags & CHUNK_DELTA != 0 {
                        // The set keeps only delta blobs whose base it knows.
                        let base = set.chunk_base(p.source, p.blob_offset).ok_or_else(|| {
                            Error::InvalidSetting {
                                setting: "parents",
                                detail: format!(
                                    "delta chunk at {} of parent {} without a base",
                                    p.blob_offset, p.source
                                ),
                            }
                        })?;
                        self.delta_chunks
                            .insert((p.source, p.blob_offset), base.base);
                    }
                    let u = &mut used[usize::from(p.source)];
                    u.0 += 1;
                    u.1 += u64::from(raw_len);
                }
            }
            self.segment.update(id);
            self.segment.update(&raw_len.to_le_bytes());
            self.stats.chunk_count += 1;
            self.logical += u64::from(raw_len);
            self.chunks.push(
                Key::Chunk(record.logical_offset),
                |out| record.encode(out),
                &mut self.blobs,
            )?;
        }
        // Entries wholly chunked no longer give delta targets.
        while self.spans.front().is_some_and(|s| s.1 <= self.logical) {
            self.spans.pop_front();
        }
        if cut.ends_segment {
            let digest = std::mem::replace(&mut self.segment, blake3::Hasher::new()).finalize();
            self.segments.push(Hash32(*digest.as_bytes()));
        }
        let p = &self.progress;
        p.chunked.store(self.logical, Ordering::Relaxed);
        p.unique
            .store(self.stats.unique_raw_bytes, Ordering::Relaxed);
        p.stored
            .store(self.stats.stored_chunk_bytes, Ordering::Relaxed);
        Ok(())
    }

    fn finish(
        mut self,
        names: Vec<(String, u64)>,
        mut sections: Vec<(u16, u16, Vec<u8>)>,
    ) -> Result<(W, Summary)> {
        self.stats.logical_size = self.logical;
        let page_size = self.options.page_size;
        let blobs = &mut self.blobs;
        let chunk_tree = self.chunks.finish(blobs)?;
        let catalog_tree = self.catalog.finish(blobs)?;
        let mut name_builder = TreeBuilder::new(TreeKind::Names, page_size);
        for (name, id) in &names {
            name_builder.push(
                Key::Name(name.clone()),
                |out| {
                    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(&id.to_le_bytes());
                },
                blobs,
            )?;
        }
        let name_tree = name_builder.finish(blobs)?;
        // Thin children with delta pages: their bases, the last section.
        if !blobs.deltas.is_empty() {
            let bases = encode_page_bases(&blobs.deltas);
            sections.push((SECTION_PAGE_BASES, SECTION_CRITICAL, bases));
        }
        // ... and with delta chunks, their bases (as many sections as needed).
        let chunk_bases: Vec<ChunkBase> = self
            .delta_chunks
            .iter()
            .map(|(&(source, blob_offset), &base)| ChunkBase {
                source,
                blob_offset,
                base,
            })
            .collect();
        for part in chunk_bases.chunks(MAX_CHUNK_BASES_PER_SECTION) {
            sections.push((
                SECTION_CHUNK_BASES,
                SECTION_CRITICAL,
                encode_chunk_bases(part),
            ));
        }
        if sections.len() > MAX_SECTIONS {
            return Err(Error::InvalidSetting {
                setting: "section",
                detail: format!("{} sections: at most {MAX_SECTIONS}", sections.len()),
            });
        }
        let mut section_list = Vec::with_capacity(sections.len());
        for (kind, flags, data) in &sections {
            let page = blobs.write_page("section", data)?;
            section_list.push(Section {
                kind: *kind,
                flags: *flags,
                page,
            });
        }
        let directory = Directory {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            chunker: CHUNKER_FASTCDC_2020,
            hash: self.hasher.hash_kind(),
            chunking: self.options.chunking,
            codec: self.options.compressor.name().to_string(),
            codec_level: self.options.compressor.level(),
            stats: self.stats,
            chunk_tree,
            catalog_tree,
            name_tree,
            sections: section_list,
        }
        .encode();
        let catalog_hash = Hash32(catalog_tree.root.hash);
        // Encrypted archives store the directory sealed; the root hash is BLAKE3 of
        // the directory as stored either way.
        let directory_offset = blobs.pos;
        let mut directory = directory;
        if let Some(sealer) = &blobs.sealer {
            sealer.seal(
                Place::At(BlobRole::Directory, directory_offset),
                &mut directory,
            );
        }
        let root_hash = Hash32(*blake3::hash(&directory).as_bytes());
        blobs.write(&directory)?;
        let (envelope, flags, signature) = crate::crypto::envelope::for_new_archive(
            &self.options,
            root_hash,
            catalog_hash,
            &sections,
        )?;
        let envelope_offset = if envelope.is_empty() { 0 } else { blobs.pos };
        blobs.write(&envelope)?;
        let trailer = Trailer {
            directory_offset,
            directory_len: directory.len() as u32,
            directory_crc: crc32fast::hash(&directory),
            envelope_offset,
            envelope_len: envelope.len() as u32,
            flags,
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
        };
        blobs.write(&trailer.encode())?;
        let archive_size = blobs.pos;
        let mut out = self.blobs.out;
        if let Err(error) = out.commit() {
            return Err(Error::Io {
                path: out.describe(),
                error,
            });
        }
        Ok((
            out,
            Summary {
                root_hash,
                stats: self.stats,
                archive_size,
                signature,
            },
        ))
    }
}

/// Compress `raw`; keep it uncompressed when the codec is `none` or does not make
/// it smaller.
fn prepare_blob_into(
    codec: &dyn Compressor,
    raw: &[u8],
    store_raw: bool,
    what: &'static str,
    mut out: Vec<u8>,
) -> Result<Prepared> {
    out.clear();
    let raw_stored = store_raw || {
        out.reserve(raw.len() / 2 + 64);
        codec
            .compress(raw, &mut out)
            .map_err(|error| Error::Codec {
                codec: codec.name().to_string(),
                what,
                offset: 0,
                error,
            })?;
        out.len() >= raw.len()
    };
    if raw_stored {
        out.clear();
        out.extend_from_slice(raw);
    }
    Ok(Prepared {
        crc: crc32fast::hash(&out),
        stored: out,
        raw: raw_stored,
    })
}

/// Encrypted archives: seal a prepared blob for `place` (its CRC then covers the
/// sealed bytes). Plain archives: nothing to do.
fn seal_prepared(blob: &mut Prepared, sealer: Option<&Sealer>, place: Place<'_>) {
    if let Some(sealer) = sealer {
        sealer.seal(place, &mut blob.stored);
        blob.crc = crc32fast::hash(&blob.stored);
    }
}

fn is_zero(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(64);
    blocks
        .by_ref()
        .all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0)
        && blocks.remainder().iter().all(|&b| b == 0)
}
