//! Request counts of the read path, at the server (nginx's access log): a cold
//! one-chunk read is one GET once its index page is cached, a sequential scan
//! and a large read fetch many chunks per request.

use std::fs;
use std::io::Read;
use std::path::Path;

use hexz_format::ReadOptions;
use hexz_pipeline::{Registry, open_archive};

use super::{build_archive, env};

/// The GETs of `/reads.hxz` in the log (other tests share the server).
fn gets(log: &str) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"GET /reads.hxz "))
        .map(str::to_string)
        .collect()
}

#[test]
fn reads_cost_few_requests_at_the_server() {
    let (Some(base), Some(dir), Some(log)) = (
        env("HEXZ_TEST_HTTP_URL"),
        env("HEXZ_TEST_HTTP_DIR"),
        env("HEXZ_TEST_HTTP_LOG"),
    ) else {
        return;
    };
    let (_tmp, local) = build_archive();
    fs::copy(&local, Path::new(&dir).join("reads.hxz")).unwrap();
    let url = format!("{base}/reads.hxz");
    let registry = Registry::default();
    let no_readahead = ReadOptions {
        readahead_bytes: 0,
        ..ReadOptions::default()
    };

    // Cold random read of one chunk, index page cached: exactly one GET. (In
    // the middle of the stream: the last chunks may lie in the tail the open
    // keeps in memory, and cost none.)
    let a = open_archive(&url, &registry, no_readahead.clone()).unwrap();
    let mut byte = [0; 1];
    a.read_at(0, &mut byte).unwrap();
    let before = gets(&log).len();
    a.read_at(a.len() / 2, &mut byte).unwrap();
    assert_eq!(gets(&log).len() - before, 1);

    // A large read (every chunk of big.bin, ~200 chunks): adjacent blobs are
    // merged, then fetched as a few parallel pieces.
    let big = a.entry("sub/big.bin").unwrap();
    let chunks = a
        .chunk_records(big.offset, big.offset + big.size)
        .unwrap()
        .len();
    let before = gets(&log).len();
    let data = a.read_entry(&big).unwrap();
    let large = gets(&log).len() - before;
    assert_eq!(data, super::noise(3 << 20, 7));
    assert!(large * 10 <= chunks, "{large} GETs for {chunks} chunks");

    // A sequential scan with read-ahead, 64 KiB at a time.
    let s = open_archive(&url, &registry, ReadOptions::default()).unwrap();
    let total = s.stats().chunk_count as usize;
    let before = gets(&log).len();
    let mut reader = s.stream_reader();
    let mut buf = vec![0; 64 << 10];
    let mut n = 0u64;
    loop {
        let got = reader.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        n += got as u64;
    }
    assert_eq!(n, s.len());
    let scan = gets(&log).len() - before;
    assert!(scan * 4 <= total, "{scan} GETs for {total} chunks");
    eprintln!("nginx GETs: large read {large} for {chunks} chunks; scan {scan} for {total} chunks");
}
