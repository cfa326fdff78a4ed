//! Golden v1 archives: files committed under `testdata/v1/` that every future
//! version of the reader must open, verify and read back exactly as
//! `expected.json` says.
//!
//! The files were written once by [`write_golden_files`] and must never change:
//! they are what a v1 archive looks like on disk. To add coverage, add new files
//! (and say so in `testdata/v1/README.md`); do not regenerate these.
//!
//! ```text
//! HEXZ_WRITE_GOLDEN=1 cargo test -p hexz-format --test format -- --ignored write_golden_files
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hexz_format::codec::{Compressor, StaticCodecs};
use hexz_format::layout::SECTION_PROVENANCE;
use hexz_format::{
    Archive, ArchiveWriter, ChunkParams, Entry, EntryKind, EntryMeta, ReadOptions, WriterOptions,
};
use serde_json::Value;

/// The golden archives: file name and codec.
fn golden_codecs() -> Vec<(&'static str, Arc<dyn Compressor>)> {
    vec![
        (
            "sample-zstd.hxz",
            Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        ),
        ("sample-lz4.hxz", Arc::new(hexz_lz4::Lz4Compressor::new())),
    ]
}

/// Largest golden archive.
const MAX_GOLDEN_LEN: u64 = 64 * 1024;

const PROVENANCE: &[u8] =
    br#"{"generator":"hexz-format/tests/golden.rs","format":"hexz v1","note":"golden sample"}"#;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/v1")
}

/// One entry of the golden archives, in stream order.
struct Golden {
    name: String,
    kind: EntryKind,
    data: Vec<u8>,
    target: Option<String>,
    meta: EntryMeta,
}

fn meta(mode: u32, mtime: i64, mtime_nsec: u32) -> EntryMeta {
    EntryMeta {
        mode,
        mtime,
        mtime_nsec,
        owner: None,
        columns: Vec::new(),
    }
}

/// Deterministic pseudo-random bytes (xorshift64), independent of other test
/// helpers so that the generator never changes.
fn prng_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The content of the golden archives. Fixed times, no clock, no file system.
fn golden_entries() -> Vec<Golden> {
    const T: i64 = 1_700_000_000;
    let file = |name: &str, data: Vec<u8>, meta: EntryMeta| Golden {
        name: name.into(),
        kind: EntryKind::File,
        data,
        target: None,
        meta,
    };
    let dir = |name: &str, meta: EntryMeta| Golden {
        name: name.into(),
        kind: EntryKind::Dir,
        data: Vec::new(),
        target: None,
        meta,
    };
    let symlink = |name: &str, target: &str, meta: EntryMeta| Golden {
        name: name.into(),
        kind: EntryKind::Symlink,
        data: Vec::new(),
        target: Some(target.into()),
        meta,
    };
    let readme: String = (0..150)
        .map(|i| {
            format!("{i:03}: hexz golden sample v1. The quick brown fox jumps over the lazy dog.\n")
        })
        .collect();
    let notes = "# Notes\n\nNested three levels deep, no directory entry for `deeper`.\n";
    let noise = prng_bytes(0x601d, 12 * 1024);
    let mut out = vec![
        dir("docs", meta(0o040755, T, 0)),
        file(
            "docs/readme.txt",
            readme.into_bytes(),
            meta(0o100644, T + 1, 500_000_000),
        ),
        dir("docs/nested", meta(0o040700, T + 2, 0)),
        file(
            "docs/nested/deeper/notes.md",
            notes.as_bytes().to_vec(),
            meta(0o100644, T + 3, 0),
        ),
        file(
            "docs/ünïcödé name.txt",
            "UTF-8 name and content: ünïcödé ✓\n".as_bytes().to_vec(),
            meta(0o100644, T + 4, 0),
        ),
        symlink("docs/latest", "readme.txt", meta(0o120777, T + 5, 0)),
        dir("bin", meta(0o040755, T + 6, 0)),
        file("bin/noise.bin", noise.clone(), meta(0o100755, T + 7, 0)),
        file("bin/noise-copy.bin", noise, meta(0o100755, T + 8, 0)),
        symlink(
            "bin/readme-link",
            "../docs/readme.txt",
            meta(0o120777, T + 9, 0),
        ),
        // Many all-zero chunks: a chunk index of more than one level.
        file("zeros.img", vec![0; 300_000], meta(0o100600, T + 10, 0)),
        file("empty", Vec::new(), meta(0o100644, T + 11, 0)),
        // A time before the epoch and the largest nanoseconds.
        file(
            "old.txt",
            b"from 1969\n".to_vec(),
            meta(0o100444, -86_400, 999_999_999),
        ),
    ];
    // Enough records with user columns for a catalog and a name index of more
    // than one level.
    for i in 0..150u32 {
        let data: Vec<u8> = format!("record {i}: value={}\n", i * 7919 % 1000)
            .repeat(1 + i as usize % 5)
            .into_bytes();
        out.push(Golden {
            name: format!("records/sample-record-{i:05}.txt"),
            kind: EntryKind::Record,
            data,
            target: None,
            meta: EntryMeta {
                mode: 0o100644,
                mtime: T + 100 + i64::from(i),
                mtime_nsec: i * 1_000,
                owner: None,
                columns: format!(
                    "label={};split={}",
                    i % 7,
                    ["train", "test"][i as usize % 2]
                )
                .into_bytes(),
            },
        });
    }
    out
}

fn golden_options(codec: Arc<dyn Compressor>) -> WriterOptions {
    let mut o = WriterOptions::new(codec);
    o.chunking = ChunkParams {
        min: 256,
        avg: 1024,
        max: 4096,
    };
    o.page_size = 4096;
    o.batch_bytes = 64 * 1024;
    o.threads = Some(2);
    o
}

/// Build one golden archive in memory.
fn build_golden(codec: Arc<dyn Compressor>) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), golden_options(codec)).unwrap();
    for g in golden_entries() {
        match g.kind {
            EntryKind::File => w.add_bytes(&g.name, &g.data, g.meta).unwrap(),
            EntryKind::Record => w.add_record(&g.name, &g.data, g.meta).unwrap(),
            EntryKind::Dir => w.add_dir(&g.name, g.meta).unwrap(),
            EntryKind::Symlink => w
                .add_symlink(&g.name, g.target.as_deref().unwrap(), g.meta)
                .unwrap(),
        }
    }
    w.add_section(SECTION_PROVENANCE, false, PROVENANCE.to_vec())
        .unwrap();
    w.finish().unwrap().0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The BLAKE3 that `expected.json` records for an entry: of the content for files
/// and records, of the target for symlinks, of nothing for directories.
fn content_hash(archive: &Archive, e: &Entry) -> String {
    match e.kind {
        EntryKind::File | EntryKind::Record => b3(&archive.read_entry(e).unwrap()),
        EntryKind::Symlink => b3(e.target.as_deref().unwrap().as_bytes()),
        EntryKind::Dir => b3(b""),
    }
}

/// `expected.json` for archives already written (one entry per line, keys in a
/// fixed order, so diffs stay readable).
fn expected_json(archives: &[(&str, &str, Vec<u8>)]) -> String {
    let first = open_bytes(&archives[0].2);
    let s = first.stats();
    let mut j = String::new();
    j.push_str("{\n  \"format\": \"hexz v1\",\n");
    j.push_str("  \"note\": \"Golden files: written once by hexz-format/tests/golden.rs, never to change.\",\n");
    j.push_str("  \"archives\": [\n");
    for (i, (file, codec, bytes)) in archives.iter().enumerate() {
        let a = open_bytes(bytes);
        let _ = writeln!(
            j,
            "    {{\"file\": {}, \"codec\": {}, \"size\": {}, \"blake3\": \"{}\", \"root_hash\": \"{}\"}}{}",
            json_str(file),
            json_str(codec),
            bytes.len(),
            b3(bytes),
            a.root_hash(),
            if i + 1 < archives.len() { "," } else { "" }
        );
    }
    j.push_str("  ],\n");
    let _ = writeln!(
        j,
        "  \"stats\": {{\"entry_count\": {}, \"chunk_count\": {}, \"logical_size\": {}, \"unique_chunk_count\": {}, \"unique_raw_bytes\": {}, \"zero_chunk_count\": {}, \"zero_bytes\": {}}},",
        s.entry_count,
        s.chunk_count,
        s.logical_size,
        s.unique_chunk_count,
        s.unique_raw_bytes,
        s.zero_chunk_count,
        s.zero_bytes
    );
    let _ = writeln!(
        j,
        "  \"sections\": [{{\"kind\": {SECTION_PROVENANCE}, \"critical\": false, \"blake3\": \"{}\"}}],",
        b3(PROVENANCE)
    );
    j.push_str("  \"entries\": [\n");
    let entries: Vec<Entry> = first.entries().map(|e| e.unwrap()).collect();
    for (i, e) in entries.iter().enumerate() {
        let target = match &e.target {
            Some(t) => json_str(t),
            None => "null".into(),
        };
        let _ = writeln!(
            j,
            "    {{\"name\": {}, \"kind\": \"{}\", \"size\": {}, \"offset\": {}, \"mode\": {}, \"mtime\": {}, \"mtime_nsec\": {}, \"target\": {target}, \"columns\": \"{}\", \"blake3\": \"{}\"}}{}",
            json_str(&e.name),
            e.kind.as_str(),
            e.size,
            e.offset,
            e.mode,
            e.mtime,
            e.mtime_nsec,
            hex(&e.columns),
            content_hash(&first, e),
            if i + 1 < entries.len() { "," } else { "" }
        );
    }
    j.push_str("  ]\n}\n");
    j
}

fn codecs() -> StaticCodecs {
    StaticCodecs::new(golden_codecs().into_iter().map(|(_, c)| c).collect())
}

fn open_bytes(bytes: &[u8]) -> Archive {
    Archive::open(
        Arc::new(hexz_format::MemorySource::new(bytes.to_vec(), "golden.hxz")),
        &codecs(),
        ReadOptions::default(),
    )
    .unwrap()
}

/// (Re)write `testdata/v1/`. Never run this to "fix" a failing golden test: the
/// failure means the reader no longer reads v1 archives.
#[test]
#[ignore = "writes testdata/v1; run with HEXZ_WRITE_GOLDEN=1"]
fn write_golden_files() {
    if std::env::var("HEXZ_WRITE_GOLDEN").as_deref() != Ok("1") {
        eprintln!(
            "set HEXZ_WRITE_GOLDEN=1 to (re)write {}",
            golden_dir().display()
        );
        return;
    }
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut archives = Vec::new();
    for (file, codec) in golden_codecs() {
        let name = codec.name().to_string();
        let bytes = build_golden(codec.clone());
        assert_eq!(
            bytes,
            build_golden(codec),
            "the generator must be deterministic"
        );
        assert!(
            bytes.len() as u64 <= MAX_GOLDEN_LEN,
            "{file}: {} bytes",
            bytes.len()
        );
        std::fs::write(dir.join(file), &bytes).unwrap();
        archives.push((file, name, bytes));
    }
    let refs: Vec<(&str, &str, Vec<u8>)> = archives
        .iter()
        .map(|(f, c, b)| (*f, c.as_str(), b.clone()))
        .collect();
    std::fs::write(dir.join("expected.json"), expected_json(&refs)).unwrap();
}

fn load_expected() -> Value {
    let path = golden_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (see testdata/v1/README.md)", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v} is not an unsigned integer"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a string"))
}

/// Check an open archive against `expected.json`'s stats, sections and entries.
fn check_against_expected(archive: &Archive, expected: &Value, label: &str) {
    let st = archive.stats();
    let want = &expected["stats"];
    for (key, got) in [
        ("entry_count", st.entry_count),
        ("chunk_count", st.chunk_count),
        ("logical_size", st.logical_size),
        ("unique_chunk_count", st.unique_chunk_count),
        ("unique_raw_bytes", st.unique_raw_bytes),
        ("zero_chunk_count", st.zero_chunk_count),
        ("zero_bytes", st.zero_bytes),
    ] {
        assert_eq!(got, u(&want[key]), "{label}: stats.{key}");
    }
    for section in expected["sections"].as_array().unwrap() {
        let kind = u16::try_from(u(&section["kind"])).unwrap();
        let data = archive.section(kind).unwrap().unwrap();
        assert_eq!(b3(&data), s(&section["blake3"]), "{label}: section {kind}");
    }
    let want_entries = expected["entries"].as_array().unwrap();
    let entries: Vec<Entry> = archive.entries().map(|e| e.unwrap()).collect();
    assert_eq!(entries.len(), want_entries.len(), "{label}: entry count");
    for (i, (e, w)) in entries.iter().zip(want_entries).enumerate() {
        let name = s(&w["name"]);
        let ctx = format!("{label}: entry {i} `{name}`");
        assert_eq!(e.id, i as u64, "{ctx}");
        assert_eq!(e.name, name, "{ctx}");
        assert_eq!(e.kind.as_str(), s(&w["kind"]), "{ctx}");
        assert_eq!(e.size, u(&w["size"]), "{ctx}: size");
        assert_eq!(e.offset, u(&w["offset"]), "{ctx}: offset");
        assert_eq!(u64::from(e.mode), u(&w["mode"]), "{ctx}: mode");
        assert_eq!(Some(e.mtime), w["mtime"].as_i64(), "{ctx}: mtime");
        assert_eq!(
            u64::from(e.mtime_nsec),
            u(&w["mtime_nsec"]),
            "{ctx}: mtime_nsec"
        );
        assert_eq!(e.target.as_deref(), w["target"].as_str(), "{ctx}: target");
        assert_eq!(hex(&e.columns), s(&w["columns"]), "{ctx}: columns");
        assert_eq!(content_hash(archive, e), s(&w["blake3"]), "{ctx}: content");
        assert_eq!(&archive.entry(name).unwrap(), e, "{ctx}: lookup by name");
        if e.kind.has_data() {
            // The entry reader and the stream agree with read_entry.
            let mut via_reader = Vec::new();
            std::io::Read::read_to_end(&mut archive.entry_reader(e), &mut via_reader).unwrap();
            assert_eq!(b3(&via_reader), s(&w["blake3"]), "{ctx}: entry reader");
            let range = archive.read_range(e.offset, e.size as usize).unwrap();
            assert_eq!(b3(&range), s(&w["blake3"]), "{ctx}: stream range");
        }
    }
}

#[test]
fn golden_v1_archives_read_back_exactly() {
    let expected = load_expected();
    let archives = expected["archives"].as_array().unwrap();
    assert_eq!(archives.len(), golden_codecs().len());
    for a in archives {
        let file = s(&a["file"]);
        let path = golden_dir().join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes.len() as u64, u(&a["size"]), "{file}: size");
        assert!(bytes.len() as u64 <= MAX_GOLDEN_LEN);
        // Byte-exact: catches a checkout that rewrote the file (line endings, LFS).
        assert_eq!(b3(&bytes), s(&a["blake3"]), "{file}: file BLAKE3");
        let archive = Archive::open_path(&path, &codecs(), ReadOptions::default()).unwrap();
        assert_eq!(
            archive.root_hash().to_string(),
            s(&a["root_hash"]),
            "{file}: root hash"
        );
        assert_eq!(archive.directory().codec, s(&a["codec"]), "{file}: codec");
        assert_eq!(archive.directory().major, 1);
        assert_eq!(archive.archive_size(), bytes.len() as u64);
        // What the sample is meant to cover.
        let d = archive.directory();
        assert!(d.chunk_tree.depth >= 2, "{file}: multi-level chunk index");
        assert!(d.catalog_tree.depth >= 2, "{file}: multi-level catalog");
        assert!(d.name_tree.depth >= 2, "{file}: multi-level name index");
        let report = archive.verify().unwrap();
        assert_eq!(
            report.entries,
            u(&expected["stats"]["entry_count"]),
            "{file}"
        );
        check_against_expected(&archive, &expected, file);
    }
}

#[test]
fn golden_generator_is_deterministic_and_matches_expected_json() {
    // Today's writer, given the golden content, produces archives that read back
    // as expected.json says (their bytes may differ if a codec's output changes).
    let expected = load_expected();
    for (file, codec) in golden_codecs() {
        let bytes = build_golden(codec.clone());
        assert_eq!(
            bytes,
            build_golden(codec),
            "{file}: generator not deterministic"
        );
        let archive = open_bytes(&bytes);
        archive.verify().unwrap();
        check_against_expected(&archive, &expected, &format!("rebuilt {file}"));
    }
}
