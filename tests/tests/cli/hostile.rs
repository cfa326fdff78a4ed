//! Hostile archives: well-formed enough to reach the deep parsers (every checksum
//! right), lying about their size. The reader's memory stays within its documented
//! bound (docs/SECURITY.md, "Hard limits") whatever they say — measured as the
//! peak RSS of the `hexz` process (`peak-rss`, getrusage of its only child:
//! deterministic) — and they are refused as corrupt (exit 3) wherever the lie can
//! be seen.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use hexz_format::chunkdelta::{
    ChunkBase, MAX_CHUNK_BASES_PER_SECTION, decode_chunk_bases, encode_chunk_bases,
};
use hexz_format::layout::{
    CHUNK_DELTA, Directory, PageRef, SECTION_CHUNK_BASES, SECTION_CRITICAL, Section, TRAILER_LEN,
    Trailer,
};
use hexz_format::{
    Archive, ArchiveWriter, ChunkParams, Compressor, EntryMeta, ParentArchive, ParentSet,
    ReadOptions, WriterOptions,
};

use crate::support::{Rng, fails_with, hexz_bin, ok, scratch, stderr};

/// The documented bound on a reader's peak RSS with the default settings, on
/// any archive (docs/SECURITY.md, "Hard limits"): a fixed part (caches, the
/// sections a reader keeps, the process itself) and, per thread reading at
/// once, one blob or page in flight. `hexz` runs here with one rayon worker
/// (`RAYON_NUM_THREADS=1`), so two threads read: the main one and the worker.
const READER_RSS_FIXED_MIB: u64 = 180;
const READER_RSS_PER_THREAD_MIB: u64 = 128;
const READER_THREADS: u64 = 2;

/// Bogus chunk-bases sections added to the child: 32 full sections claim
/// 32 × 209 715 records, 512 MiB decoded, in about 10 MB of file; the reader
/// before the bound held them all (~570 MiB of RSS, above the bound).
const BOGUS_SECTIONS: usize = 32;

/// Run `hexz args…` under `peak-rss`: its output and its peak RSS in MiB.
fn run_measured(dir: &Path, args: &[&std::ffi::OsStr]) -> (Output, u64) {
    let peak = dir.join("peak-rss.txt");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peak-rss"))
        .env(
            "RAYON_NUM_THREADS",
            READER_THREADS.saturating_sub(1).to_string(),
        )
        .arg(&peak)
        .arg(hexz_bin())
        .args(args)
        .output()
        .expect("run peak-rss");
    let kib: u64 = fs::read_to_string(&peak)
        .expect("peak-rss wrote its report")
        .trim()
        .parse()
        .expect("a number of KiB");
    fs::remove_file(&peak).unwrap();
    eprintln!("hexz {args:?}: peak RSS {kib} KiB");
    (out, kib / 1024)
}

/// Lines of text with a per-line counter: compresses like source code.
fn text(seed: u64, lines: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for l in 0..lines {
        out.extend_from_slice(format!("line {l}: ").as_bytes());
        out.extend(rng.bytes(30).iter().map(|b| b'a' + b % 8));
        out.push(b'\n');
    }
    out
}

fn writer_options() -> WriterOptions {
    let mut o = WriterOptions::new(Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()));
    o.chunking = ChunkParams {
        min: 2048,
        avg: 8192,
        max: 32768,
    };
    o
}

fn meta() -> EntryMeta {
    EntryMeta {
        mode: 0o100644,
        mtime: 1_700_000_000,
        ..EntryMeta::default()
    }
}

/// `dir/v0.hxz` (one file) and its thin child `dir/v1.hxz` (the file with a
/// line inserted: stored as delta chunks against v0's). Returns the child's
/// path and its file's bytes.
fn thin_child_with_delta_chunks(dir: &Path) -> (PathBuf, Vec<u8>) {
    let v0 = text(1, 6000);
    let mut w = ArchiveWriter::new(Vec::new(), writer_options()).unwrap();
    w.add_bytes("data.txt", &v0, meta()).unwrap();
    let (bytes, _) = w.finish().unwrap();
    fs::write(dir.join("v0.hxz"), bytes).unwrap();
    let registry = hexz_pipeline::Registry::default();
    let parent = Archive::open_path(dir.join("v0.hxz"), &registry, ReadOptions::default()).unwrap();
    let mut v1 = v0.clone();
    v1.splice(100_000..100_000, b"an inserted line\n".iter().copied());
    let mut w = ArchiveWriter::new(Vec::new(), writer_options()).unwrap();
    w.set_parents(
        ParentSet::new(vec![ParentArchive {
            archive: parent,
            hint: "v0.hxz".into(),
        }])
        .unwrap(),
    )
    .unwrap();
    w.add_bytes("data.txt", &v1, meta()).unwrap();
    let (bytes, _) = w.finish().unwrap();
    let child = dir.join("v1.hxz");
    fs::write(&child, bytes).unwrap();
    // The premise: reading the file reads a delta chunk, hence its base record.
    let a = Archive::open_path(&child, &registry, ReadOptions::default())
        .unwrap()
        .with_parent_resolver(Arc::new(hexz_pipeline::RegistryResolver::new(registry)));
    let deltas = a
        .chunk_records(0, a.len())
        .unwrap()
        .iter()
        .filter(|r| r.flags & CHUNK_DELTA != 0)
        .count();
    assert!(deltas > 0, "the child has no delta chunk");
    (child, v1)
}

/// Where the bogus sections go relative to the child's own chunk-bases section.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// Before it in directory order, with larger keys: the order across
    /// sections breaks at the child's own section, the last.
    Before,
    /// After it, with larger keys: every rule a reader can check without the
    /// chunk index holds; only the count (one record per delta chunk of the
    /// index, at most the chunk count) is a lie.
    After,
}

/// Rewrite the thin child at `path` with [`BOGUS_SECTIONS`] full chunk-bases
/// sections of made-up records (valid one by one, keys increasing), and a
/// directory whose chunk count (2^40) lets them all in; every CRC and hash is
/// recomputed, so the reader gets as far as the sections.
fn add_bogus_chunk_bases(path: &Path, placement: Placement) {
    let bytes = fs::read(path).unwrap();
    let trailer_at = bytes.len() - TRAILER_LEN;
    let mut t =
        Trailer::decode(bytes[trailer_at..].try_into().unwrap(), trailer_at as u64).unwrap();
    let dir_at = t.directory_offset as usize;
    let mut d = Directory::decode(
        &bytes[dir_at..dir_at + t.directory_len as usize],
        dir_at as u64,
    )
    .unwrap();
    let real = d
        .sections
        .iter()
        .position(|s| s.kind == SECTION_CHUNK_BASES)
        .expect("the child has a chunk-bases section");
    let codec = hexz_zstd::ZstdCompressor::new(3).unwrap();
    // The child's own record, copied with made-up blob offsets past its own.
    let section = &d.sections[real].page;
    let stored = &bytes[section.offset as usize..][..section.stored_len as usize];
    let mut raw = Vec::new();
    codec
        .decompress(stored, section.raw_len as usize, &mut raw)
        .unwrap();
    let own = decode_chunk_bases(&raw, section.offset).unwrap();
    let template = own[0];
    let mut out = bytes[..dir_at].to_vec();
    let mut bogus = Vec::new();
    let mut next = 1u64 << 40;
    for _ in 0..BOGUS_SECTIONS {
        let records: Vec<ChunkBase> = (0..MAX_CHUNK_BASES_PER_SECTION)
            .map(|_| {
                next += 1;
                ChunkBase {
                    source: 0,
                    blob_offset: next,
                    ..template
                }
            })
            .collect();
        let raw = encode_chunk_bases(&records);
        let mut stored = Vec::new();
        codec.compress(&raw, &mut stored).unwrap();
        bogus.push(Section {
            kind: SECTION_CHUNK_BASES,
            flags: SECTION_CRITICAL,
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
    }
    let at = match placement {
        Placement::Before => real,
        Placement::After => real + 1,
    };
    d.sections.splice(at..at, bogus);
    d.stats.chunk_count = 1 << 40;
    d.chunk_tree.count = 1 << 40;
    let dir_bytes = d.encode();
    t.directory_offset = out.len() as u64;
    t.directory_len = dir_bytes.len() as u32;
    t.directory_crc = crc32fast::hash(&dir_bytes);
    out.extend_from_slice(&dir_bytes);
    out.extend_from_slice(&t.encode());
    fs::write(path, out).unwrap();
}

#[track_caller]
fn assert_bounded(what: &str, out: &Output, peak_mib: u64) {
    let bound = READER_RSS_FIXED_MIB + READER_THREADS * READER_RSS_PER_THREAD_MIB;
    assert!(
        peak_mib < bound,
        "{what}: peak RSS {peak_mib} MiB, above the bound of {bound} MiB (exit {:?}: {})",
        out.status.code(),
        stderr(out)
    );
}

#[test]
fn bogus_chunk_bases_sections_out_of_order_are_corrupt_in_bounded_memory() {
    let dir = scratch();
    let (child, _) = thin_child_with_delta_chunks(dir.path());
    add_bogus_chunk_bases(&child, Placement::Before);
    let (out, peak) = run_measured(
        dir.path(),
        &["cat".as_ref(), child.as_os_str(), "data.txt".as_ref()],
    );
    assert_bounded("cat", &out, peak);
    let err = fails_with(&out, 3);
    assert!(err.contains("chunk-bases section"), "{err}");
    for deep in [false, true] {
        let mut args = vec!["verify".as_ref(), child.as_os_str()];
        if deep {
            args.push("--deep".as_ref());
        }
        let (out, peak) = run_measured(dir.path(), &args);
        assert_bounded("verify", &out, peak);
        fails_with(&out, 3);
    }
}

#[test]
fn bogus_chunk_bases_sections_in_order_read_in_bounded_memory_and_fail_verify() {
    let dir = scratch();
    let (child, data) = thin_child_with_delta_chunks(dir.path());
    add_bogus_chunk_bases(&child, Placement::After);
    // Nothing a read can check is wrong: the file reads back, in bounded memory.
    let (out, peak) = run_measured(
        dir.path(),
        &["cat".as_ref(), child.as_os_str(), "data.txt".as_ref()],
    );
    assert_bounded("cat", &out, peak);
    ok(&out);
    assert!(out.stdout == data, "cat returned other bytes");
    // Verification recomputes the chunk count from the index: the directory lies.
    for deep in [false, true] {
        let mut args = vec!["verify".as_ref(), child.as_os_str()];
        if deep {
            args.push("--deep".as_ref());
        }
        let (out, peak) = run_measured(dir.path(), &args);
        assert_bounded("verify", &out, peak);
        let err = fails_with(&out, 3);
        assert!(err.contains("chunk index holds"), "{err}");
    }
}
