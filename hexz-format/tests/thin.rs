//! Thin snapshots at the format level: chains of children over an in-memory
//! store, missing and substituted parents, determinism, verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hexz_format::parents::ResolveError;
use hexz_format::{
    Archive, ArchiveWriter, EntryMeta, Error, Hash32, MemorySource, ParentArchive, ParentResolver,
    ParentSet, ReadOptions, WriterOptions,
};

use crate::common::{Files, codecs, noise, small_options};

/// Archives by name: a stand-in for a bucket.
#[derive(Debug, Default)]
struct Store {
    files: Mutex<HashMap<String, Vec<u8>>>,
}

impl Store {
    fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_string(), bytes);
    }
    fn remove(&self, name: &str) {
        self.files.lock().unwrap().remove(name);
    }
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.files.lock().unwrap().get(name).cloned()
    }
    /// Open without a resolver.
    fn open_flat(&self, name: &str) -> Result<Archive, ResolveError> {
        let bytes = self
            .get(name)
            .ok_or_else(|| format!("{name}: no such object"))?;
        Ok(Archive::open(
            Arc::new(MemorySource::new(bytes, name)),
            &codecs(),
            ReadOptions::default(),
        )?)
    }
}

#[derive(Debug)]
struct StoreResolver(Arc<Store>);

impl ParentResolver for StoreResolver {
    fn open_parent(&self, location: &str, _: &Hash32) -> Result<Archive, ResolveError> {
        // Like the pipeline's resolver: a parent's own delta leaves resolve too.
        Ok(self
            .0
            .open_flat(location)?
            .with_parent_resolver(Arc::new(StoreResolver(self.0.clone()))))
    }
}

fn open(store: &Arc<Store>, name: &str) -> hexz_format::Result<Archive> {
    let a = store.open_flat(name).map_err(|e| Error::Io {
        path: name.into(),
        error: std::io::Error::other(e),
    })?;
    Ok(a.with_parent_resolver(Arc::new(StoreResolver(store.clone()))))
}

fn meta() -> EntryMeta {
    EntryMeta {
        mode: 0o100644,
        mtime: 1_700_000_000,
        ..EntryMeta::default()
    }
}

/// Version `v` of a small tree: shared files, one file that changes every
/// version, one file added per version.
fn version(v: usize) -> Files {
    let mut files: Files = (0..6)
        .map(|i| (format!("shared/{i}.bin"), noise(i as u64, 20_000)))
        .collect();
    let mut changing = noise(100, 30_000);
    changing[15_000..15_010].copy_from_slice(&[v as u8; 10]);
    files.push(("changing.bin".into(), changing));
    for i in 0..=v {
        files.push((format!("added/{i}.bin"), noise(1000 + i as u64, 8_000)));
    }
    files
}

/// Build `files` as a child of `parent` (with its chain) into the store.
fn build_child(
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
        w.add_bytes(n, data, meta()).unwrap();
    }
    let (bytes, _) = w.finish().unwrap();
    store.put(name, bytes.clone());
    bytes
}

fn check_reads(a: &Archive, files: &Files) {
    assert_eq!(a.entry_count(), files.len() as u64);
    for (n, data) in files {
        let e = a.entry(n).unwrap();
        assert_eq!(&a.read_entry(&e).unwrap(), data, "{n}");
    }
}

fn zstd() -> WriterOptions {
    small_options(Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()))
}

fn lz4() -> WriterOptions {
    small_options(Arc::new(hexz_lz4::Lz4Compressor::new()))
}

#[test]
fn a_chain_of_ten_reads_back_and_stores_only_what_changed() {
    let store = Arc::new(Store::default());
    let full = build_child(&store, "v0.hxz", &version(0), None, zstd());
    let mut sizes = Vec::new();
    for v in 1..10 {
        // Mixed codecs along the chain: blobs are decoded by their own archive.
        let options = if v % 2 == 0 { zstd() } else { lz4() };
        let bytes = build_child(
            &store,
            &format!("v{v}.hxz"),
            &version(v),
            Some(&format!("v{}.hxz", v - 1)),
            options,
        );
        sizes.push(bytes.len());
    }
    for v in 0..10 {
        let a = open(&store, &format!("v{v}.hxz")).unwrap();
        check_reads(&a, &version(v));
        let report = a.verify().unwrap();
        assert_eq!(report.entries, version(v).len() as u64);
        assert_eq!(a.parents().unwrap().len(), v);
        assert_eq!(a.is_thin(), v > 0);
        a.check_parents().unwrap();
    }
    // A child stores its new file and the changed chunk, not the 150 KB shared.
    for (v, size) in sizes.iter().enumerate() {
        assert!(
            *size < full.len() / 4,
            "v{}: {size} vs {}",
            v + 1,
            full.len()
        );
    }
    // The parents list of v9 is the chain, nearest first, with per-parent counts
    // that add up with the local chunks to the whole stream.
    let v9 = open(&store, "v9.hxz").unwrap();
    let parents = v9.parents().unwrap();
    let hints: Vec<&str> = parents.iter().map(|p| p.hint.as_str()).collect();
    assert_eq!(hints[0], "v8.hxz");
    assert_eq!(hints[8], "v0.hxz");
    for (i, p) in parents.iter().enumerate() {
        let parent = v9.parent((i + 1) as u16).unwrap();
        assert_eq!(parent.root_hash(), p.root_hash);
        assert_eq!(parent.archive_size(), p.archive_size);
    }
    let records = v9.chunk_records(0, v9.len()).unwrap();
    let from_parents: u64 = parents.iter().map(|p| p.bytes).sum();
    let local: u64 = records
        .iter()
        .filter(|r| r.source == 0)
        .map(|r| u64::from(r.raw_len))
        .sum();
    assert_eq!(from_parents + local, v9.len());
    assert!(parents[8].bytes > 100_000, "shared files come from v0");
    // Every record points at the ancestor that stores the blob: one hop.
    for r in records.iter().filter(|r| r.source > 0) {
        let holder = v9.parent(r.source).unwrap();
        let there = holder
            .chunk_records(0, holder.len())
            .unwrap()
            .into_iter()
            .find(|h| h.id == r.id)
            .unwrap();
        assert_eq!((there.source, there.blob_offset), (0, r.blob_offset));
    }
}

#[test]
fn a_child_is_deterministic() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &version(0), None, zstd());
    let a = build_child(&store, "v1.hxz", &version(1), Some("v0.hxz"), zstd());
    let b = build_child(&store, "v1b.hxz", &version(1), Some("v0.hxz"), {
        let mut o = zstd();
        o.threads = Some(1);
        o
    });
    assert_eq!(a, b);
}

#[test]
fn a_missing_parent_is_an_error_that_names_it() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &version(0), None, zstd());
    build_child(&store, "v1.hxz", &version(1), Some("v0.hxz"), zstd());
    let root = store.open_flat("v0.hxz").unwrap().root_hash();
    let e = open(&store, "v1.hxz")
        .unwrap()
        .entry("shared/0.bin")
        .unwrap();
    store.remove("v0.hxz");
    let a = open(&store, "v1.hxz").unwrap();
    // The child's index leaves are deltas against the parent's (FORMAT.md
    // §14.3.5): listing needs the parent too, and says which one is missing.
    let listed = a.entries().next().unwrap();
    assert!(
        matches!(listed, Err(Error::ParentUnavailable { index: 1, .. })),
        "{listed:?}"
    );
    let err = a.read_entry(&e).unwrap_err();
    match &err {
        Error::ParentUnavailable {
            archive,
            index,
            root_hash,
            location,
            ..
        } => {
            assert_eq!(archive, "v1.hxz");
            assert_eq!(*index, 1);
            assert_eq!(*root_hash, root);
            assert_eq!(location, "v0.hxz");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("v0.hxz"), "{err}");
    assert!(matches!(
        a.check_parents(),
        Err(Error::ParentUnavailable { .. })
    ));
    assert!(matches!(a.verify(), Err(Error::ParentUnavailable { .. })));
    // Without a resolver: a typed error too, never zeros.
    let flat = store.open_flat("v1.hxz").unwrap();
    let err = flat.read_entry(&e).unwrap_err();
    assert!(
        matches!(&err, Error::ParentNotAttached { index: 1, hint, .. } if hint == "v0.hxz"),
        "{err}"
    );
}

#[test]
fn a_parent_with_another_root_hash_is_refused() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &version(0), None, zstd());
    build_child(&store, "v1.hxz", &version(1), Some("v0.hxz"), zstd());
    let expected = store.open_flat("v0.hxz").unwrap().root_hash();
    // Another archive under the parent's name (same files but one: every blob the
    // child wants is at the same place in the impostor, for all the child knows).
    let mut other = version(0);
    other[0].1[0] ^= 1;
    build_child(&store, "v0.hxz", &other, None, zstd());
    let actual = store.open_flat("v0.hxz").unwrap().root_hash();
    let a = open(&store, "v1.hxz").unwrap();
    let err = a
        .entry("shared/1.bin")
        .and_then(|e| a.read_entry(&e))
        .unwrap_err();
    assert!(
        matches!(&err, Error::ParentMismatch { index: 1, location, expected: x, actual: y, .. }
            if location == "v0.hxz" && *x == expected && *y == actual),
        "{err}"
    );
}

#[test]
fn a_parents_section_that_lies_about_counts_fails_verify() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &version(0), None, zstd());
    build_child(&store, "v1.hxz", &version(1), Some("v0.hxz"), zstd());
    let a = open(&store, "v1.hxz").unwrap();
    // A root archive handed a bogus parents section: records do not use it.
    let p = a.parents().unwrap();
    let mut w = ArchiveWriter::new(Vec::new(), zstd()).unwrap();
    w.add_section(
        hexz_format::layout::SECTION_PARENTS,
        true,
        hexz_format::parents::encode_parents(&p),
    )
    .unwrap();
    w.add_bytes("x", b"hello", meta()).unwrap();
    let (bytes, _) = w.finish().unwrap();
    store.put("bogus.hxz", bytes);
    let bogus = open(&store, "bogus.hxz").unwrap();
    assert_eq!(
        bogus.read_entry(&bogus.entry("x").unwrap()).unwrap(),
        b"hello"
    );
    assert!(bogus.verify().unwrap_err().is_corruption());
}

#[test]
fn set_parents_after_an_entry_is_refused() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &version(0), None, zstd());
    let p = open(&store, "v0.hxz").unwrap();
    let set = ParentSet::new(vec![ParentArchive {
        archive: p,
        hint: "v0.hxz".into(),
    }])
    .unwrap();
    assert!(set.chunk_count() > 0);
    let mut w = ArchiveWriter::new(Vec::new(), zstd()).unwrap();
    w.add_bytes("x", b"x", meta()).unwrap();
    assert!(matches!(
        w.set_parents(set),
        Err(Error::InvalidSetting { .. })
    ));
}

/// Version `v` of a tree of many small files with long names: file `changed`
/// (if any) differs by a few bytes (same size), everything else is the same.
fn many_files(changed: Option<usize>) -> Files {
    (0..3000)
        .map(|i| {
            let mut data = format!("file {i} of a large tree, version-independent text\n")
                .repeat(1 + i % 5)
                .into_bytes();
            if changed == Some(i) {
                data[0] = b'F';
            }
            (
                format!(
                    "project/src/package_{:02}/module_{i:05}_with_a_long_name.py",
                    i % 40
                ),
                data,
            )
        })
        .collect()
}

fn default_pages() -> WriterOptions {
    let mut o = WriterOptions::new(Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()));
    o.batch_bytes = 1 << 20;
    o
}

fn delta_bases(a: &Archive) -> Vec<hexz_format::delta::PageBase> {
    let section = a
        .section(hexz_format::layout::SECTION_PAGE_BASES)
        .unwrap()
        .expect("a page-bases section");
    hexz_format::delta::decode_page_bases(&section, 0).unwrap()
}

#[test]
fn a_child_with_one_changed_file_among_thousands_stores_metadata_for_the_change() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &many_files(None), None, default_pages());
    build_child(
        &store,
        "v1.hxz",
        &many_files(Some(1500)),
        Some("v0.hxz"),
        default_pages(),
    );
    let parent = open(&store, "v0.hxz").unwrap().space().unwrap();
    let child_archive = open(&store, "v1.hxz").unwrap();
    let child = child_archive.space().unwrap();
    // Every index leaf of the child is a delta against its parent's: the child's
    // trees cost a small fraction of the parent's (each page a few dozen bytes).
    let trees = |s: &hexz_format::SpaceReport| s.chunk_index + s.catalog + s.name_index;
    // The parts (the trees' sizes taken from their internal pages' refs) add up
    // to the file, byte for byte.
    for s in [&parent, &child] {
        let sections: u64 = s.sections.iter().map(|x| x.bytes).sum();
        assert_eq!(
            s.chunk_blobs + trees(s) + sections + s.framing,
            s.total,
            "{s:?}"
        );
    }
    assert!(
        trees(&child) * 10 < trees(&parent),
        "child index {} vs parent {}",
        trees(&child),
        trees(&parent)
    );
    assert!(
        child.metadata() * 4 < parent.metadata(),
        "child metadata {} vs parent {}",
        child.metadata(),
        parent.metadata()
    );
    assert!(!delta_bases(&child_archive).is_empty());
    check_reads(&child_archive, &many_files(Some(1500)));
    assert_eq!(child_archive.verify().unwrap().entries, 3000);
    assert_eq!(
        child_archive
            .entries()
            .map(|e| e.unwrap().name)
            .collect::<Vec<_>>(),
        open(&store, "v0.hxz")
            .unwrap()
            .entries()
            .map(|e| e.unwrap().name)
            .collect::<Vec<_>>()
    );
}

#[test]
fn delta_pages_take_their_base_one_hop_away_along_a_chain() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &many_files(None), None, default_pages());
    for v in 1..6 {
        build_child(
            &store,
            &format!("v{v}.hxz"),
            &many_files(Some(v * 400)),
            Some(&format!("v{}.hxz", v - 1)),
            default_pages(),
        );
    }
    let v5 = open(&store, "v5.hxz").unwrap();
    check_reads(&v5, &many_files(Some(2000)));
    v5.verify().unwrap();
    // Bases are whole pages stored somewhere up the chain (here all in v0: every
    // child's leaves are deltas), never deltas themselves.
    for b in delta_bases(&v5) {
        assert_eq!(b.source, 5, "base in v0");
        let holder = v5.parent(b.source).unwrap();
        assert_eq!(holder.parents().unwrap().len(), 0);
        assert_eq!(b.base.flags & hexz_format::layout::BLOB_DELTA, 0);
    }
    // Opening a child without its parents reads nothing of them until a page is
    // needed; then the error names the missing parent.
    store.remove("v0.hxz");
    let v5 = open(&store, "v5.hxz").unwrap();
    let err = v5.entry("project/src/package_00/module_00000_with_a_long_name.py");
    assert!(
        matches!(err, Err(Error::ParentUnavailable { index: 5, .. })),
        "{err:?}"
    );
}

#[test]
fn verify_catches_a_flipped_byte_in_a_shared_base_page() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &many_files(None), None, default_pages());
    build_child(
        &store,
        "v1.hxz",
        &many_files(Some(7)),
        Some("v0.hxz"),
        default_pages(),
    );
    let child = open(&store, "v1.hxz").unwrap();
    child.verify().unwrap();
    let base = delta_bases(&child)[0].base;
    let mut parent = store.get("v0.hxz").unwrap();
    parent[base.offset as usize + base.stored_len as usize / 2] ^= 0x40;
    store.put("v0.hxz", parent);
    // The parent's root hash covers the directory, not this page: it still opens.
    let child = open(&store, "v1.hxz").unwrap();
    let err = child.verify().unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        matches!(err, Error::Checksum { .. } | Error::HashMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn a_child_without_delta_support_in_its_codec_stores_whole_pages() {
    let store = Arc::new(Store::default());
    build_child(&store, "v0.hxz", &many_files(None), None, default_pages());
    let mut lz = default_pages();
    lz.compressor = Arc::new(hexz_lz4::Lz4Compressor::new());
    build_child(&store, "v1.hxz", &many_files(Some(3)), Some("v0.hxz"), lz);
    let child = open(&store, "v1.hxz").unwrap();
    assert!(
        child
            .section(hexz_format::layout::SECTION_PAGE_BASES)
            .unwrap()
            .is_none()
    );
    check_reads(&child, &many_files(Some(3)));
}
