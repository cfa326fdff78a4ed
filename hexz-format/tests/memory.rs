//! What a read holds does not follow what the index packs into a range: a 1 MiB
//! read over a million one-byte chunks handles them a group at a time
//! (`READ_STEP_RECORDS`), not as one list of a million records.
//!
//! Measured as the growth of this process's peak RSS (`VmHWM`, reset through
//! `/proc/self/clear_refs` before the read): this file is its own test binary
//! with a single test, so nothing else runs in the process meanwhile, under
//! `cargo test` as under nextest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hexz_format::layout::{CHUNK_ZERO, ChunkRecord};
use hexz_format::{
    Archive, ArchiveWriter, EntryMeta, MemorySource, Piece, ReadOptions, StaticCodecs,
    WriterOptions,
};

/// One-byte zero chunks in the archive: 1 MiB of stream.
const CHUNKS: u64 = 1 << 20;

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Reset the peak RSS to the current RSS; return it (KiB).
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (Linux ≥ 4.0)");
    status_kib("VmRSS:")
}

/// Growth of the peak RSS since `base`, in MiB.
fn peak_growth_mib(base: u64) -> u64 {
    status_kib("VmHWM:").saturating_sub(base) / 1024
}

fn archive() -> Archive {
    let codec = Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap());
    let mut w = ArchiveWriter::new(Vec::new(), WriterOptions::new(codec.clone())).unwrap();
    let zero = ChunkRecord {
        logical_offset: 0,
        blob_offset: 0,
        raw_len: 1,
        stored_len: 0,
        crc: 0,
        source: 0,
        flags: CHUNK_ZERO,
        id: [0; 32],
    };
    let mut pieces = (0..CHUNKS / 65536).map(|_| Ok(Piece::Chunks(vec![zero; 65536])));
    w.add_file_pieces("zeros", &mut pieces, EntryMeta::default())
        .unwrap();
    let (bytes, _) = w.finish().unwrap();
    Archive::open(
        Arc::new(MemorySource::new(bytes, "zeros.hxz")),
        &StaticCodecs::new(vec![codec]),
        ReadOptions {
            readahead_bytes: 0,
            ..ReadOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn reads_over_a_million_tiny_chunks_hold_a_step_of_records_at_a_time() {
    let a = archive();
    assert_eq!(a.stats().chunk_count, CHUNKS);
    let len = CHUNKS as usize;
    let mut buf = vec![1u8; len];
    // The pages, once: the page cache (16 MiB) holds what it can either way.
    a.read_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    buf.fill(1);
    // A million records are 64 MiB as one list (72 MiB with their data slots);
    // a step of them is about 1.3 MiB.
    let base = reset_peak();
    a.read_at(0, &mut buf).unwrap();
    let grew = peak_growth_mib(base);
    assert!(buf.iter().all(|&b| b == 0));
    eprintln!("read_at: peak RSS grew by {grew} MiB");
    assert!(grew < 32, "read_at: peak RSS grew by {grew} MiB");
    let base = reset_peak();
    let got = a
        .read_ranges(&[(0, len / 2), (len as u64 / 2, len / 2)])
        .unwrap();
    let grew = peak_growth_mib(base);
    assert!(got.iter().flatten().all(|&b| b == 0));
    eprintln!("read_ranges: peak RSS grew by {grew} MiB");
    assert!(grew < 32, "read_ranges: peak RSS grew by {grew} MiB");
}
