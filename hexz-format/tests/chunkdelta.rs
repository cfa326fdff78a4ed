//! Delta chunks (FORMAT.md §14.3.6): a thin child's new chunks compressed against
//! the parent's chunk at the same place of the same file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hexz_format::chunkdelta::{ChunkBase, decode_chunk_bases};
use hexz_format::codec::{CodecError, Compressor};
use hexz_format::layout::{CHUNK_DELTA, ChunkRecord, SECTION_CHUNK_BASES};
use hexz_format::parents::ResolveError;
use hexz_format::{
    Archive, ArchiveWriter, ChunkParams, Encryption, EntryMeta, Error, Hash32, MemorySource,
    ParentArchive, ParentResolver, ParentSet, ReadAt, ReadOptions, SlotSpec, StaticCodecs, Unlock,
    WriterOptions,
};
use zeroize::Zeroizing;

use crate::common::{Files, codecs};

/// Archives by name, opened with one set of read options (keys).
#[derive(Debug)]
struct Store {
    files: Mutex<HashMap<String, Vec<u8>>>,
    options: ReadOptions,
    /// The codecs archives are opened with.
    codecs: StaticCodecs,
    /// An object whose reads take this long.
    slow: Mutex<Option<(String, std::time::Duration)>>,
    /// Reads of one range (`read_exact_at`) and batched reads (`read_ranges`)
    /// made by the archives opened from this store.
    singles: AtomicU64,
    batches: AtomicU64,
    /// Bytes those reads returned.
    fetched: AtomicU64,
}

/// A store's object, counting the reads made of it.
#[derive(Debug)]
struct Counted {
    inner: MemorySource,
    store: Arc<Store>,
}

impl Counted {
    /// Wait, when this is the store's slow object.
    fn lag(&self) {
        let slow = self.store.slow.lock().unwrap().clone();
        if let Some((name, lag)) = slow
            && name == self.inner.name()
        {
            std::thread::sleep(lag);
        }
    }
}

impl ReadAt for Counted {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.store.singles.fetch_add(1, Ordering::SeqCst);
        self.store
            .fetched
            .fetch_add(buf.len() as u64, Ordering::SeqCst);
        self.lag();
        self.inner.read_exact_at(offset, buf)
    }
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> std::io::Result<Vec<Vec<u8>>> {
        self.store.batches.fetch_add(1, Ordering::SeqCst);
        let bytes: usize = ranges.iter().map(|r| r.1).sum();
        self.store.fetched.fetch_add(bytes as u64, Ordering::SeqCst);
        self.lag();
        self.inner.read_ranges(ranges)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

impl Store {
    fn new(options: ReadOptions) -> Arc<Self> {
        Self::with_codecs(options, codecs())
    }
    fn with_codecs(options: ReadOptions, codecs: StaticCodecs) -> Arc<Self> {
        Arc::new(Self {
            files: Mutex::new(HashMap::new()),
            options,
            codecs,
            slow: Mutex::new(None),
            singles: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
        })
    }
    fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_string(), bytes);
    }
    fn get(&self, name: &str) -> Vec<u8> {
        self.files.lock().unwrap()[name].clone()
    }
}

#[derive(Debug)]
struct Resolver(Arc<Store>);

impl ParentResolver for Resolver {
    fn open_parent(&self, location: &str, _: &Hash32) -> Result<Archive, ResolveError> {
        Ok(open(&self.0, location)?)
    }
}

fn open(store: &Arc<Store>, name: &str) -> hexz_format::Result<Archive> {
    let bytes = store
        .files
        .lock()
        .unwrap()
        .get(name)
        .cloned()
        .ok_or_else(|| Error::Io {
            path: name.into(),
            error: std::io::Error::other("no such object"),
        })?;
    let source = Counted {
        inner: MemorySource::new(bytes, name),
        store: store.clone(),
    };
    Ok(
        Archive::open(Arc::new(source), &store.codecs, store.options.clone())?
            .with_parent_resolver(Arc::new(Resolver(store.clone()))),
    )
}

/// Build `files` into the store as `name`, a child of `parent` (with its chain).
fn build(
    store: &Arc<Store>,
    name: &str,
    files: &Files,
    parent: Option<&str>,
    options: WriterOptions,
) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), options).unwrap();
    if let Some(parent) = parent {
        let p = open(store, parent).unwrap();
        let mut chain = vec![ParentArchive {
            archive: p.clone(),
            hint: parent.to_string(),
        }];
        for (i, r) in p.parents().unwrap().iter().enumerate() {
            chain.push(ParentArchive {
                archive: p.parent((i + 1) as u16).unwrap(),
                hint: r.hint.clone(),
            });
        }
        w.set_parents(ParentSet::new(chain).unwrap()).unwrap();
    }
    for (n, data) in files {
        let meta = EntryMeta {
            mode: 0o100644,
            mtime: 1_700_000_000,
            ..EntryMeta::default()
        };
        w.add_bytes(n, data, meta).unwrap();
    }
    let (bytes, _) = w.finish().unwrap();
    store.put(name, bytes.clone());
    bytes
}

/// zstd as some tests need it: `deltas` false hides its delta form (the same
/// child as without delta chunks, and without delta pages); `lag` makes every
/// decode take that long (so that parallel decodes overlap).
#[derive(Debug)]
struct TestZstd {
    zstd: hexz_zstd::ZstdCompressor,
    deltas: bool,
    lag: std::time::Duration,
}

impl TestZstd {
    fn whole() -> Self {
        Self {
            zstd: hexz_zstd::ZstdCompressor::new(3).unwrap(),
            deltas: false,
            lag: std::time::Duration::ZERO,
        }
    }
    fn slow(lag: std::time::Duration) -> Self {
        Self {
            deltas: true,
            lag,
            ..Self::whole()
        }
    }
}

impl Compressor for TestZstd {
    fn name(&self) -> &str {
        self.zstd.name()
    }
    fn level(&self) -> i32 {
        self.zstd.level()
    }
    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.zstd.compress(input, out)
    }
    fn decompress(
        &self,
        input: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        std::thread::sleep(self.lag);
        self.zstd.decompress(input, raw_len, out)
    }
    fn compress_with_base(
        &self,
        input: &[u8],
        base: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        if !self.deltas {
            return Ok(false);
        }
        self.zstd.compress_with_base(input, base, out)
    }
    fn decompress_with_base(
        &self,
        input: &[u8],
        base: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if !self.deltas {
            return Err("no delta form".into());
        }
        std::thread::sleep(self.lag);
        self.zstd.decompress_with_base(input, base, raw_len, out)
    }
}

fn options(codec: Arc<dyn Compressor>) -> WriterOptions {
    let mut o = WriterOptions::new(codec);
    o.chunking = ChunkParams {
        min: 2048,
        avg: 8192,
        max: 32768,
    };
    o.page_size = 4096;
    o.batch_bytes = 64 * 1024;
    o
}

fn zstd() -> WriterOptions {
    options(Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()))
}

/// Source-like text: lines of words drawn from a small vocabulary (compresses
/// about 3:1, like code), deterministic per seed.
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "self", "return", "value", "import", "django", "def", "class", "if", "else", "None",
        "request", "model", "field", "query", "for", "in", "not", "and", "True", "False", "args",
        "kwargs", "name", "path",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = 3 + (x >> 61) as usize;
        for k in 0..n {
            let w = WORDS[((x >> (8 + 6 * k)) % WORDS.len() as u64) as usize];
            out.extend_from_slice(w.as_bytes());
            out.push(if k + 1 == n { b'\n' } else { b' ' });
        }
        out.extend_from_slice(format!("    # {}\n", x % 100_000).as_bytes());
    }
    out.truncate(len);
    out
}

/// Version `v` of a tree of 24 text files of 20–60 KB: in version `v` every
/// file has a line inserted at a place that depends on `v`.
fn tree(v: usize) -> Files {
    (0..24)
        .map(|i| {
            let mut data = text(i as u64, 20_000 + 2_000 * i);
            for k in 1..=v {
                let at = (data.len() * (k * 7 % 10) / 11).max(1);
                let at = data[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let line = format!("    changed = {k} * {i}  # version {k}\n");
                data.splice(at..at, line.into_bytes());
            }
            (format!("pkg/mod_{i:02}.py"), data)
        })
        .collect()
}

fn chunk_bases(a: &Archive) -> Vec<ChunkBase> {
    a.directory()
        .sections
        .iter()
        .filter(|s| s.kind == SECTION_CHUNK_BASES)
        .flat_map(|s| decode_chunk_bases(&a.section_at(s).unwrap(), 0).unwrap())
        .collect()
}

fn records(a: &Archive) -> Vec<ChunkRecord> {
    a.chunk_records(0, a.len()).unwrap()
}

fn deltas(a: &Archive) -> Vec<ChunkRecord> {
    records(a)
        .into_iter()
        .filter(|r| r.flags & CHUNK_DELTA != 0)
        .collect()
}

/// Every entry reads back byte-exact, one by one and through the batched
/// `read_ranges` path (each archive opened fresh, so nothing is cached).
fn check_reads(store: &Arc<Store>, name: &str, files: &Files) {
    let a = open(store, name).unwrap();
    assert_eq!(a.entry_count(), files.len() as u64);
    for (n, data) in files {
        let e = a.entry(n).unwrap();
        assert_eq!(&a.read_entry(&e).unwrap(), data, "{n}");
    }
    let a = open(store, name).unwrap();
    let entries: Vec<_> = files.iter().map(|(n, _)| a.entry(n).unwrap()).collect();
    let ranges: Vec<(u64, usize)> = entries
        .iter()
        .map(|e| (e.offset, e.size as usize))
        .collect();
    let got = a.read_ranges(&ranges).unwrap();
    for ((n, data), bytes) in files.iter().zip(got) {
        assert_eq!(&bytes, data, "{n} via read_ranges");
    }
}

#[test]
fn small_edits_store_delta_chunks_that_read_back_and_verify() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    let whole = || options(Arc::new(TestZstd::whole()));
    build(&store, "v1-whole.hxz", &tree(1), Some("v0.hxz"), whole());
    let child = open(&store, "v1.hxz").unwrap();
    let plain = open(&store, "v1-whole.hxz").unwrap();
    // Same chunks (ids), fewer stored bytes: every changed chunk is a delta.
    let ids = |a: &Archive| records(a).iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&child), ids(&plain));
    assert!(deltas(&plain).is_empty());
    let space = child.space().unwrap();
    let plain_space = plain.space().unwrap();
    for s in [&space, &plain_space] {
        let sections: u64 = s.sections.iter().map(|x| x.bytes).sum();
        let parts = s.chunk_blobs + s.chunk_index + s.catalog + s.name_index + sections;
        assert_eq!(parts + s.framing, s.total, "{s:?}");
    }
    assert!(space.delta_chunks >= 20, "{space:?}");
    assert!(
        space.chunk_blobs * 4 < plain_space.chunk_blobs,
        "chunk blobs with deltas {} vs whole {}",
        space.chunk_blobs,
        plain_space.chunk_blobs
    );
    assert!(child.archive_size() < plain.archive_size());
    // One base record per delta blob, each a whole chunk of the parent.
    let bases = chunk_bases(&child);
    assert_eq!(bases.len() as u64, space.delta_chunks);
    for b in &bases {
        assert_eq!((b.source, b.base.source), (0, 1));
        assert_eq!(b.base.flags & CHUNK_DELTA, 0);
    }
    check_reads(&store, "v1.hxz", &tree(1));
    let report = open(&store, "v1.hxz").unwrap().verify().unwrap();
    assert_eq!(report.entries, 24);
    // Deterministic, whatever the thread count.
    let again = build(&store, "v1-again.hxz", &tree(1), Some("v0.hxz"), {
        let mut o = zstd();
        o.threads = Some(1);
        o
    });
    assert_eq!(again, store.get("v1.hxz"));
}

#[test]
fn along_a_chain_a_delta_of_a_delta_takes_the_base_of_its_base() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    for v in 1..4 {
        let parent = format!("v{}.hxz", v - 1);
        build(
            &store,
            &format!("v{v}.hxz"),
            &tree(v),
            Some(&parent),
            zstd(),
        );
    }
    for v in 1..4 {
        check_reads(&store, &format!("v{v}.hxz"), &tree(v));
    }
    let v3 = open(&store, "v3.hxz").unwrap();
    v3.verify().unwrap();
    // Every base is a whole chunk stored in the root: v1's and v2's changed
    // chunks are deltas themselves, so v3's take their bases (source 3).
    let bases = chunk_bases(&v3);
    assert!(bases.iter().any(|b| b.source == 0), "own delta chunks");
    assert!(
        bases.iter().any(|b| b.source == 1 || b.source == 2),
        "delta chunks of its parents it reads"
    );
    for b in &bases {
        assert_eq!(b.base.source, 3, "{b:?}");
        let holder = v3.parent(b.base.source).unwrap();
        assert!(holder.parents().unwrap().is_empty());
    }
    // Every delta record of the index has its base recorded.
    for r in deltas(&v3) {
        assert!(
            bases
                .iter()
                .any(|b| (b.source, b.blob_offset) == (r.source, r.blob_offset))
        );
    }
}

/// The child's first delta blob stored in itself, and its base.
fn first_own_delta(a: &Archive) -> (ChunkRecord, ChunkBase) {
    let r = deltas(a).into_iter().find(|r| r.source == 0).unwrap();
    let b = chunk_bases(a)
        .into_iter()
        .find(|b| (b.source, b.blob_offset) == (0, r.blob_offset))
        .unwrap();
    (r, b)
}

#[test]
fn a_damaged_delta_blob_or_base_chunk_is_corruption() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    let good_child = build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    let good_parent = store.get("v0.hxz");
    let (r, b) = first_own_delta(&open(&store, "v1.hxz").unwrap());
    let read_it = |store: &Arc<Store>| {
        let a = open(store, "v1.hxz").unwrap();
        a.read_range(r.logical_offset, r.raw_len as usize)
    };
    read_it(&store).unwrap();
    // A flipped byte in the delta blob: its CRC32 fails.
    let mut child = good_child.clone();
    child[(r.blob_offset + u64::from(r.stored_len) / 2) as usize] ^= 0x10;
    store.put("v1.hxz", child);
    let err = read_it(&store).unwrap_err();
    assert!(
        matches!(err, Error::Checksum { offset, .. } if offset == r.blob_offset),
        "{err:?}"
    );
    assert!(open(&store, "v1.hxz").unwrap().verify().is_err());
    store.put("v1.hxz", good_child.clone());
    // A flipped byte in the base chunk, in the parent: the parent's check fails.
    let mut parent = good_parent.clone();
    parent[(b.base.blob_offset + u64::from(b.base.stored_len) / 2) as usize] ^= 0x10;
    store.put("v0.hxz", parent);
    let err = read_it(&store).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        matches!(err, Error::Checksum { offset, .. } if offset == b.base.blob_offset),
        "{err:?}"
    );
    let err = open(&store, "v1.hxz").unwrap().verify().unwrap_err();
    assert!(err.is_corruption(), "{err}");
    store.put("v0.hxz", good_parent);
    read_it(&store).unwrap();
    // A flipped byte in the chunk-bases section (which the root hash covers
    // through its page ref): the section fails its checks, nothing is decoded.
    let section = open(&store, "v1.hxz")
        .unwrap()
        .directory()
        .sections
        .iter()
        .find(|s| s.kind == SECTION_CHUNK_BASES)
        .unwrap()
        .page;
    let mut child = good_child;
    child[(section.offset + u64::from(section.stored_len) / 2) as usize] ^= 0x10;
    store.put("v1.hxz", child);
    let err = read_it(&store).unwrap_err();
    assert!(
        matches!(err, Error::Checksum { offset, .. } if offset == section.offset),
        "{err:?}"
    );
}

#[test]
fn a_base_swapped_for_another_chunk_of_the_parent_fails() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    let (r, b) = first_own_delta(&open(&store, "v1.hxz").unwrap());
    // The parent's bytes at the base's place replaced by another chunk's
    // stored bytes (the parent still opens: its root hash covers its index, not
    // its blobs): the child's record of the base (CRC32, id) refuses them.
    let parent = open(&store, "v0.hxz").unwrap();
    let other = records(&parent)
        .into_iter()
        .find(|o| o.blob_offset != b.base.blob_offset && o.stored_len >= 64)
        .unwrap();
    let mut bytes = store.get("v0.hxz");
    let stored = bytes[other.blob_offset as usize..][..other.stored_len as usize].to_vec();
    let at = b.base.blob_offset as usize;
    let n = (b.base.stored_len as usize).min(stored.len());
    bytes[at..at + n].copy_from_slice(&stored[..n]);
    store.put("v0.hxz", bytes);
    let err = open(&store, "v1.hxz")
        .unwrap()
        .read_range(r.logical_offset, r.raw_len as usize)
        .unwrap_err();
    assert!(
        matches!(err, Error::Checksum { offset, .. } if offset == b.base.blob_offset),
        "{err:?}"
    );
}

/// `bytes` (an archive whose directory ends at the trailer) with its chunk-bases
/// records replaced by `edit` of them, in one section written where the
/// directory was; every CRC and hash recomputed.
fn with_chunk_bases(bytes: &[u8], edit: impl FnOnce(&mut Vec<ChunkBase>)) -> Vec<u8> {
    use hexz_format::chunkdelta::encode_chunk_bases;
    use hexz_format::layout::{Directory, PageRef, TRAILER_LEN, Trailer};
    let at = bytes.len() - TRAILER_LEN;
    let mut t = Trailer::decode(bytes[at..].try_into().unwrap(), at as u64).unwrap();
    let start = t.directory_offset as usize;
    let mut d = Directory::decode(&bytes[start..at], t.directory_offset).unwrap();
    let a = Archive::open(
        Arc::new(MemorySource::new(bytes.to_vec(), "edit.hxz")),
        &crate::common::codecs(),
        ReadOptions::default(),
    )
    .unwrap();
    let mut list: Vec<ChunkBase> = chunk_bases(&a);
    edit(&mut list);
    let raw = encode_chunk_bases(&list);
    let mut stored = Vec::new();
    hexz_zstd::ZstdCompressor::new(3)
        .unwrap()
        .compress(&raw, &mut stored)
        .unwrap();
    let mut out = bytes[..start].to_vec();
    d.sections.retain(|s| s.kind != SECTION_CHUNK_BASES);
    d.sections.push(hexz_format::layout::Section {
        kind: SECTION_CHUNK_BASES,
        flags: hexz_format::layout::SECTION_CRITICAL,
        page: PageRef {
            offset: out.len() as u64,
            stored_len: stored.len() as u32,
            raw_len: raw.len() as u32,
            crc: crc32fast::hash(&stored),
            flags: 0,
            hash: *blake3::hash(&stored).as_bytes(),
        },
    });
    out.extend_from_slice(&stored);
    let dir = d.encode();
    t.directory_offset = out.len() as u64;
    t.directory_len = dir.len() as u32;
    t.directory_crc = crc32fast::hash(&dir);
    out.extend_from_slice(&dir);
    out.extend_from_slice(&t.encode());
    out
}

#[test]
fn verify_refuses_a_chunk_base_record_for_a_blob_that_is_no_delta() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    let good = build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    // The rewrite itself keeps a valid archive.
    store.put("v1.hxz", with_chunk_bases(&good, |_| {}));
    open(&store, "v1.hxz").unwrap().verify().unwrap();
    check_reads(&store, "v1.hxz", &tree(1));
    // One more record, for a blob of the child that no chunk record reads as a
    // delta: every rule of the section holds (keys increasing, a valid base),
    // and reads never ask for it; but a record must name a delta blob the
    // chunk index reads, and this one names none.
    let a = open(&store, "v1.hxz").unwrap();
    let whole = deltas(&a)
        .iter()
        .filter(|r| r.source == 0)
        .map(|r| r.blob_offset + 1)
        .max()
        .unwrap();
    assert!(records(&a).iter().all(|r| r.blob_offset != whole));
    store.put(
        "v1.hxz",
        with_chunk_bases(&good, |list| {
            list.push(ChunkBase {
                source: 0,
                blob_offset: whole,
                base: list[0].base,
            });
            list.sort_by_key(|b| (b.source, b.blob_offset));
        }),
    );
    check_reads(&store, "v1.hxz", &tree(1));
    for deep in [false, true] {
        let err = open(&store, "v1.hxz")
            .unwrap()
            .verify_with(deep)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { what: "chunk-bases section", offset, detail }
                if *offset == whole && detail.contains("does not read as a delta chunk")),
            "{err:?}"
        );
    }
    // One record fewer: a delta chunk without its base.
    let (r, _) = first_own_delta(&a);
    store.put(
        "v1.hxz",
        with_chunk_bases(&good, |list| {
            list.retain(|b| (b.source, b.blob_offset) != (0, r.blob_offset))
        }),
    );
    let err = open(&store, "v1.hxz").unwrap().verify().unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { what: "chunk index", offset, .. } if *offset == r.blob_offset),
        "{err:?}"
    );
}

#[test]
fn an_lz4_child_has_no_delta_chunks() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(
        &store,
        "v1.hxz",
        &tree(1),
        Some("v0.hxz"),
        options(Arc::new(hexz_lz4::Lz4Compressor::new())),
    );
    let child = open(&store, "v1.hxz").unwrap();
    assert!(deltas(&child).is_empty());
    assert!(chunk_bases(&child).is_empty());
    assert_eq!(child.space().unwrap().delta_chunks, 0);
    check_reads(&store, "v1.hxz", &tree(1));
}

#[test]
fn an_encrypted_chain_with_delta_chunks_reads_back() {
    let keys = Unlock::default()
        .key_file([1; 32])
        .key_file([2; 32])
        .key_file([3; 32]);
    let store = Store::new(ReadOptions {
        unlock: keys,
        ..ReadOptions::default()
    });
    let mut o = zstd();
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([1; 32]))]).unwrap());
    build(&store, "v0.hxz", &tree(0), None, o);
    for v in 1..3u8 {
        let parent = open(&store, &format!("v{}.hxz", v - 1)).unwrap();
        let mut o = zstd();
        o.encryption = Some(
            Encryption::with_hasher(
                &[SlotSpec::KeyFile(Zeroizing::new([v + 1; 32]))],
                &parent.chunk_hasher(),
            )
            .unwrap(),
        );
        build(
            &store,
            &format!("v{v}.hxz"),
            &tree(v.into()),
            Some(&format!("v{}.hxz", v - 1)),
            o,
        );
    }
    let v2 = open(&store, "v2.hxz").unwrap();
    assert!(v2.is_encrypted());
    assert!(!deltas(&v2).is_empty());
    assert!(chunk_bases(&v2).iter().all(|b| b.base.source == 2));
    check_reads(&store, "v2.hxz", &tree(2));
    v2.verify().unwrap();
}

#[test]
fn appending_a_parent_delta_chunk_whose_base_is_unknown_is_refused() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    let v1 = open(&store, "v1.hxz").unwrap();
    let own = first_own_delta(&v1).0;
    let chain = vec![
        ParentArchive {
            archive: v1.clone(),
            hint: "v1.hxz".into(),
        },
        ParentArchive {
            archive: v1.parent(1).unwrap(),
            hint: "v0.hxz".into(),
        },
    ];
    let append = |r: ChunkRecord| {
        let mut w = ArchiveWriter::new(Vec::new(), zstd()).unwrap();
        w.set_parents(ParentSet::new(chain.clone()).unwrap())
            .unwrap();
        let pieces = vec![Ok(hexz_format::Piece::Chunks(vec![r]))];
        w.add_file_pieces("f", &mut pieces.into_iter(), EntryMeta::default())
            .and_then(|_| w.finish().map(drop))
    };
    // v1's own delta chunk, as v2 would reference it: its base is known.
    append(ChunkRecord { source: 1, ..own }).unwrap();
    // The same flag on a blob the chain does not know as a delta: refused.
    let err = append(ChunkRecord {
        source: 1,
        blob_offset: own.blob_offset + 1,
        ..own
    })
    .unwrap_err();
    assert!(matches!(err, Error::InvalidSetting { .. }), "{err:?}");
}

#[test]
fn batched_reads_fetch_parent_chunks_and_bases_with_one_request_per_archive() {
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    build(&store, "v2.hxz", &tree(2), Some("v1.hxz"), zstd());
    let a = open(&store, "v2.hxz").unwrap();
    let files = tree(2);
    let entries: Vec<_> = files.iter().map(|(n, _)| a.entry(n).unwrap()).collect();
    let ranges: Vec<(u64, usize)> = entries
        .iter()
        .map(|e| (e.offset, e.size as usize))
        .collect();
    a.preload_chunk_index().unwrap();
    // Parents opened (their tails read) and bases sections loaded beforehand.
    a.check_parents().unwrap();
    let all = records(&a);
    assert!(all.iter().filter(|r| r.source > 0).count() > 50);
    assert!(
        all.iter()
            .any(|r| r.flags & CHUNK_DELTA != 0 && r.source == 1)
    );
    let (singles, batches) = (
        store.singles.load(Ordering::SeqCst),
        store.batches.load(Ordering::SeqCst),
    );
    let got = a.read_ranges(&ranges).unwrap();
    for ((n, data), bytes) in files.iter().zip(got) {
        assert_eq!(&bytes, data, "{n}");
    }
    // Chunks from v2, v1 and v0, bases from v0 and v1: a handful of batched
    // requests, and no chunk fetched on its own.
    let singles = store.singles.load(Ordering::SeqCst) - singles;
    let batches = store.batches.load(Ordering::SeqCst) - batches;
    assert_eq!(singles, 0, "{batches} batched reads");
    assert!((2..=6).contains(&batches), "{batches} batched reads");
}

/// Many readers at once on the rayon pool — batched reads (which claim chunks
/// and decode them in parallel while holding the claims), sequential readers
/// with read-ahead, and whole-archive verification — over a chain whose chunks
/// are deltas of shared bases, all on the same few files, with a chunk cache so
/// small that chunks and bases are claimed again all the time. Pool tasks never
/// wait for a claim without bound: they leave the chunk to the caller, or load
/// it again without the cache after a bounded wait; every read must still
/// return the right bytes (and none may hang).
#[test]
fn readers_on_the_rayon_pool_never_wait_on_each_others_claims() {
    use rayon::prelude::*;
    let options = ReadOptions {
        readahead_bytes: 64 * 1024,
        chunk_cache_bytes: 128 * 1024,
        ..ReadOptions::default()
    };
    let slow = StaticCodecs::new(vec![Arc::new(TestZstd::slow(
        std::time::Duration::from_millis(2),
    ))]);
    let store = Store::with_codecs(options, slow);
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    build(&store, "v2.hxz", &tree(2), Some("v1.hxz"), zstd());
    let files = tree(2);
    let (done, finished) = std::sync::mpsc::channel();
    let worker = {
        let store = store.clone();
        let files = files.clone();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(8)
                .build()
                .unwrap();
            for round in 0..30 {
                // Fresh archives: nothing cached, every chunk claimed anew.
                let a = open(&store, "v2.hxz").unwrap();
                let entries: Vec<_> = files.iter().map(|(n, _)| a.entry(n).unwrap()).collect();
                pool.install(|| {
                    (0..48usize).into_par_iter().for_each(|k| {
                        // Four files at a time, each read by a dozen tasks.
                        let i = (round * 4 + k % 4) % entries.len();
                        let e = &entries[i];
                        let got = match k % 3 {
                            // Whole entries: several chunks, the batched path.
                            0 => a.read_entry(e).unwrap(),
                            // Small sequential reads: read-ahead on the pool.
                            1 => {
                                let mut out = vec![0u8; e.size as usize];
                                for (n, piece) in out.chunks_mut(3000).enumerate() {
                                    a.read_entry_at(e, (n * 3000) as u64, piece).unwrap();
                                }
                                out
                            }
                            _ => {
                                let ranges = [(e.offset, e.size as usize)];
                                a.read_ranges(&ranges).unwrap().remove(0)
                            }
                        };
                        assert_eq!(got, files[i].1, "{} (round {round})", files[i].0);
                    });
                    if round % 10 == 0 {
                        a.verify().unwrap();
                    }
                });
            }
            done.send(()).unwrap();
        })
    };
    // A panic in the worker drops the sender: joined, it fails the test as is.
    if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        finished.recv_timeout(std::time::Duration::from_secs(300))
    {
        panic!("concurrent reads on the rayon pool hung for 5 minutes");
    }
    worker.join().unwrap();
}

/// Two threads off the rayon pool (as a loader's prefetch threads) read the
/// same files of a child, one shortly after the other, with a two-thread
/// global pool and a slow parent. The first claims the bases of the files'
/// delta chunks and fetches them; the second, finding the bases claimed,
/// loads the deltas. Its decoding tasks must not wait on the pool for the
/// bases: the first thread can decode them only on that same pool.
#[test]
fn deltas_never_wait_on_the_pool_for_bases_another_thread_is_fetching() {
    // Each nextest test is its own process; under `cargo test` the global pool
    // may exist already and the test runs on it as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
    let store = Store::new(ReadOptions::default());
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    let files = tree(1);
    let a = open(&store, "v1.hxz").unwrap();
    // Parents opened and sections loaded before the parent turns slow.
    a.check_parents().unwrap();
    a.preload_chunk_index().unwrap();
    let ranges: Vec<(u64, usize)> = files
        .iter()
        .map(|(n, _)| {
            let e = a.entry(n).unwrap();
            (e.offset, e.size as usize)
        })
        .collect();
    assert!(deltas(&a).iter().filter(|r| r.source == 0).count() >= 4);
    *store.slow.lock().unwrap() = Some(("v0.hxz".into(), std::time::Duration::from_millis(300)));
    let (done, finished) = std::sync::mpsc::channel();
    let readers: Vec<_> = [0u64, 100]
        .into_iter()
        .map(|delay| {
            let (a, done, ranges) = (a.clone(), done.clone(), ranges.clone());
            let want: Vec<Vec<u8>> = files.iter().map(|(_, d)| d.clone()).collect();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(delay));
                assert_eq!(a.read_ranges(&ranges).unwrap(), want);
                done.send(()).unwrap();
            })
        })
        .collect();
    drop(done);
    for _ in 0..2 {
        // A panic in a reader drops its sender: joined below, it fails the test.
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            finished.recv_timeout(std::time::Duration::from_secs(60))
        {
            panic!("reads hung: pool tasks wait for bases only the pool can decode");
        }
    }
    for r in readers {
        r.join().unwrap();
    }
}

/// A sequential reader on a rayon pool (as every call of the Python bindings
/// is) catches up with its own read-ahead on a slow source: it waits for the
/// chunks the read-ahead is fetching instead of fetching them a second time.
#[test]
fn a_reader_on_the_pool_waits_for_its_read_ahead_instead_of_fetching_again() {
    let options = ReadOptions {
        readahead_bytes: 256 * 1024,
        ..ReadOptions::default()
    };
    let store = Store::new(options);
    build(&store, "v0.hxz", &tree(0), None, zstd());
    build(&store, "v1.hxz", &tree(1), Some("v0.hxz"), zstd());
    let a = open(&store, "v1.hxz").unwrap();
    a.check_parents().unwrap();
    a.preload_chunk_index().unwrap();
    let stored: u64 = a
        .chunk_records(0, a.len())
        .unwrap()
        .iter()
        .filter(|r| !r.is_zero())
        .map(|r| u64::from(r.stored_len))
        .sum();
    let lag = std::time::Duration::from_millis(30);
    *store.slow.lock().unwrap() = Some(("v1.hxz".into(), lag));
    let before = store.fetched.load(Ordering::SeqCst);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut got = vec![0u8; a.len() as usize];
    pool.install(|| {
        // Small reads, as a file-like object's.
        let mut reader = a.stream_reader();
        for piece in got.chunks_mut(4096) {
            std::io::Read::read_exact(&mut reader, piece).unwrap();
        }
    });
    let mut want = Vec::new();
    for (_, data) in tree(1) {
        want.extend_from_slice(&data);
    }
    assert_eq!(got, want);
    // Every chunk (and base) fetched about once: the bases are a few chunks of
    // the parent's, nothing is fetched twice.
    let fetched = store.fetched.load(Ordering::SeqCst) - before;
    assert!(
        fetched < stored + stored / 4,
        "{fetched} bytes fetched for {stored} bytes of chunks"
    );
}
