//! Round trips: what goes in comes out, by entry and by any byte range.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use hexz_format::codec::{Compressor, NoCompression};
use hexz_format::{ArchiveWriter, EntryMeta};
use proptest::prelude::*;

use crate::common::*;

fn codecs_under_test() -> Vec<Arc<dyn Compressor>> {
    vec![
        Arc::new(NoCompression),
        Arc::new(hexz_lz4::Lz4Compressor::new()),
        Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
    ]
}

#[test]
fn entries_and_ranges_round_trip_with_every_codec() {
    let files = sample_files();
    let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.clone()).collect();
    for codec in codecs_under_test() {
        let (bytes, summary) = build(&files, small_options(codec.clone()));
        let archive = open(&bytes).unwrap();
        assert_eq!(archive.root_hash(), summary.root_hash);
        assert_eq!(archive.len(), stream.len() as u64);
        assert_eq!(archive.entry_count(), files.len() as u64);
        assert!(
            archive.directory().chunk_tree.depth >= 2,
            "want a multi-level index"
        );
        let listed: Vec<String> = archive.entries().map(|e| e.unwrap().name).collect();
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(listed, names);
        for (name, data) in &files {
            let e = archive.entry(name).unwrap();
            assert_eq!(
                &archive.read_entry(&e).unwrap(),
                data,
                "{name} via {}",
                codec.name()
            );
        }
        for (off, len) in [
            (0, 1),
            (1000, 5000),
            (39_999, 70_000),
            (stream.len() - 3, 3),
        ] {
            assert_eq!(
                archive.read_range(off as u64, len).unwrap(),
                stream[off..off + len]
            );
        }
        archive.verify().unwrap();
    }
}

#[test]
fn duplicates_and_zeros_are_stored_once() {
    let files = sample_files();
    let (bytes, summary) = build(&files, small_options(Arc::new(NoCompression)));
    let s = summary.stats;
    assert!(s.zero_chunk_count > 0);
    let logical: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(s.logical_size, logical);
    // The copies and the zeros add (almost) nothing: unique bytes are close to
    // text + noise.
    assert!(s.unique_raw_bytes < logical - 150_000, "{s:?}");
    assert!((bytes.len() as u64) < logical - 150_000);
}

#[test]
fn archives_are_deterministic_across_thread_counts() {
    let files = sample_files();
    let mut outputs = Vec::new();
    for threads in [1, 2, 4] {
        let mut o = small_options(Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()));
        o.threads = Some(threads);
        outputs.push(build(&files, o).0);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn chunking_does_not_depend_on_batch_size() {
    let files = sample_files();
    let mut a = small_options(Arc::new(NoCompression));
    a.batch_bytes = 4096;
    let mut b = small_options(Arc::new(NoCompression));
    b.batch_bytes = 1 << 20;
    assert_eq!(build(&files, a).0, build(&files, b).0);
}

#[test]
fn entry_reader_reads_and_seeks() {
    let files = sample_files();
    let (bytes, _) = build(
        &files,
        small_options(Arc::new(hexz_lz4::Lz4Compressor::new())),
    );
    let archive = open(&bytes).unwrap();
    let e = archive.entry("a.txt").unwrap();
    let mut r = archive.entry_reader(&e);
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, files[0].1);
    r.seek(SeekFrom::End(-10)).unwrap();
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, files[0].1[files[0].1.len() - 10..]);
}

#[test]
fn owners_round_trip_and_are_optional() {
    use hexz_format::{ArchiveWriter, EntryKind, EntryMeta, Owner};
    let owner = |uid, gid| Some(Owner { uid, gid });
    let meta = |owner| EntryMeta {
        mode: 0o100640,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        owner,
        columns: Vec::new(),
    };
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.add_dir("d", meta(owner(0, 0))).unwrap();
    w.add_bytes("d/f", b"data", meta(owner(1000, 100))).unwrap();
    w.add_symlink("d/l", "f", meta(owner(u32::MAX, 7))).unwrap();
    w.add_bytes("g", b"", meta(None)).unwrap();
    let (bytes, _) = w.finish().unwrap();
    let archive = open(&bytes).unwrap();
    archive.verify().unwrap();
    let got: Vec<(String, EntryKind, Option<Owner>)> = archive
        .entries()
        .map(|e| e.unwrap())
        .map(|e| (e.name, e.kind, e.owner))
        .collect();
    assert_eq!(
        got,
        vec![
            ("d".into(), EntryKind::Dir, owner(0, 0)),
            ("d/f".into(), EntryKind::File, owner(1000, 100)),
            ("d/l".into(), EntryKind::Symlink, owner(u32::MAX, 7)),
            ("g".into(), EntryKind::File, None),
        ]
    );
}

#[test]
fn empty_archive_opens() {
    let (bytes, _) = build(&Vec::new(), small_options(Arc::new(NoCompression)));
    let archive = open(&bytes).unwrap();
    assert_eq!(archive.entry_count(), 0);
    assert!(archive.is_empty());
    assert!(matches!(
        archive.entry("x"),
        Err(hexz_format::Error::EntryNotFound { .. })
    ));
    archive.verify().unwrap();
}

#[test]
fn out_of_range_reads_are_errors() {
    let (bytes, _) = build(&sample_files(), small_options(Arc::new(NoCompression)));
    let archive = open(&bytes).unwrap();
    let e = archive.entry("tiny").unwrap();
    let mut buf = [0; 2];
    assert!(matches!(
        archive.read_entry_at(&e, 0, &mut buf),
        Err(hexz_format::Error::OutOfRange { .. })
    ));
    assert!(archive.read_range(archive.len(), 1).is_err());
    assert!(archive.read_range(u64::MAX, 2).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_files_round_trip(
        contents in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..20_000),
                (0usize..30_000).prop_map(|n| vec![0u8; n]),
                (0u64..4, 0usize..30_000).prop_map(|(s, n)| noise(s, n)),
            ],
            0..12,
        ),
        reads in proptest::collection::vec((any::<u64>(), 0usize..50_000), 1..8),
    ) {
        let files: Files = contents.into_iter().enumerate().map(|(i, d)| (format!("f{i:02}"), d)).collect();
        let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.clone()).collect();
        let (bytes, _) = build(&files, small_options(Arc::new(hexz_lz4::Lz4Compressor::new())));
        let archive = open(&bytes).unwrap();
        for (name, data) in &files {
            let e = archive.entry(name).unwrap();
            prop_assert_eq!(&archive.read_entry(&e).unwrap(), data);
        }
        if !stream.is_empty() {
            for (off, len) in reads {
                let off = (off % stream.len() as u64) as usize;
                let len = len.min(stream.len() - off);
                prop_assert_eq!(archive.read_range(off as u64, len).unwrap(), &stream[off..off + len]);
            }
        }
    }
}

/// Segments: a chunk boundary at each `end_segment`, chunking restarted there (so a
/// segment's chunks and digest depend on its bytes alone), whatever the batch
/// size; the content still reads back as one stream.
#[test]
fn segments_cut_independently_and_have_digests() {
    let meta = || EntryMeta {
        mode: 0o100644,
        mtime: 0,
        mtime_nsec: 0,
        owner: None,
        columns: Vec::new(),
    };
    let write = |first: &[u8], second: &[u8], batch: usize| {
        let mut options = small_options(Arc::new(NoCompression));
        options.batch_bytes = batch;
        let mut w = ArchiveWriter::new(Vec::new(), options).unwrap();
        w.add_bytes("a", first, meta()).unwrap();
        w.end_segment().unwrap();
        w.end_segment().unwrap(); // an empty segment
        w.add_bytes("b", second, meta()).unwrap();
        w.end_segment().unwrap();
        let digests = w.segment_digests().unwrap();
        let (bytes, _) = w.finish().unwrap();
        (bytes, digests)
    };
    let (a, b) = (noise(1, 50_001), noise(2, 70_000));
    let (bytes, digests) = write(&a, &b, 64 * 1024);
    assert_eq!(digests.len(), 3);
    let archive = open(&bytes).unwrap();
    let mut stream = a.clone();
    stream.extend_from_slice(&b);
    assert_eq!(archive.read_range(0, stream.len()).unwrap(), stream);
    // A chunk ends exactly where the first segment ends.
    let records = archive.chunk_records(0, archive.len()).unwrap();
    assert!(records.iter().any(|r| r.logical_offset == a.len() as u64));
    // Each digest is BLAKE3 over the segment's (id, length) pairs.
    let digest_of = |from: u64, to: u64| {
        let mut h = blake3::Hasher::new();
        for r in records
            .iter()
            .filter(|r| r.logical_offset >= from && r.logical_offset < to)
        {
            h.update(&r.id);
            h.update(&r.raw_len.to_le_bytes());
        }
        *h.finalize().as_bytes()
    };
    let len = stream.len() as u64;
    assert_eq!(digests[0].0, digest_of(0, a.len() as u64));
    assert_eq!(digests[1].0, *blake3::hash(b"").as_bytes());
    assert_eq!(digests[2].0, digest_of(a.len() as u64, len));
    // The second segment's digest does not depend on the first segment's bytes,
    // nor on the batch size.
    let (_, other) = write(&noise(3, 12_345), &b, 4096 * 3);
    assert_eq!(other[2], digests[2]);
    assert_ne!(other[0], digests[0]);
}
