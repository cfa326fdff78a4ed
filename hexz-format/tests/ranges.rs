//! `Archive::read_ranges`: many ranges read with one batched fetch.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{build, codecs, noise, small_options};
use hexz_format::{Archive, MemorySource, ReadAt, ReadOptions};

/// Counts the calls the reader makes on its source.
#[derive(Debug)]
struct Counting {
    inner: MemorySource,
    singles: AtomicUsize,
    batches: AtomicUsize,
}

impl ReadAt for Counting {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.singles.fetch_add(1, Ordering::Relaxed);
        self.inner.read_exact_at(offset, buf)
    }
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        ranges
            .iter()
            .map(|&(o, l)| {
                let mut b = vec![0; l];
                self.inner.read_exact_at(o, &mut b)?;
                Ok(b)
            })
            .collect()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

#[test]
fn read_ranges_fetches_all_chunks_with_one_batch() {
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| {
            (
                format!("s/{i:04}"),
                noise(i, 700 + (i as usize * 37) % 3000),
            )
        })
        .collect();
    let (bytes, _) = build(
        &files,
        small_options(Arc::new(hexz_lz4::Lz4Compressor::new())),
    );
    let source = Arc::new(Counting {
        inner: MemorySource::new(bytes, "mem"),
        singles: AtomicUsize::new(0),
        batches: AtomicUsize::new(0),
    });
    let options = ReadOptions {
        readahead_bytes: 8 << 20,
        ..ReadOptions::default()
    };
    let archive = Archive::open(source.clone(), &codecs(), options).unwrap();
    let entries: Vec<_> = archive.entries().map(|e| e.unwrap()).collect();
    // A shuffled run of neighbouring entries, as a loader reads them.
    let ranges: Vec<(u64, usize)> = (40..120)
        .rev()
        .step_by(3)
        .chain((41..120).step_by(3))
        .map(|i| (entries[i].offset, entries[i].size as usize))
        .collect();
    // Load the index pages first: what is counted below is the chunk fetches.
    for &(o, l) in &ranges {
        archive.chunk_records(o, o + l as u64).unwrap();
    }
    let (singles, batches) = (
        source.singles.load(Ordering::Relaxed),
        source.batches.load(Ordering::Relaxed),
    );
    let got = archive.read_ranges(&ranges).unwrap();
    assert_eq!(
        source.batches.load(Ordering::Relaxed) - batches,
        1,
        "one batched fetch"
    );
    assert_eq!(
        source.singles.load(Ordering::Relaxed),
        singles,
        "no chunk read one by one"
    );
    for (&(o, l), data) in ranges.iter().zip(&got) {
        assert_eq!(data, &archive.read_range(o, l).unwrap());
    }
    // Everything is cached now, and nothing read ahead: no further fetch.
    let again = archive.read_ranges(&ranges).unwrap();
    assert_eq!(again, got);
    assert_eq!(source.batches.load(Ordering::Relaxed) - batches, 1);
    // Empty and out-of-range inputs.
    assert_eq!(archive.read_ranges(&[]).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(
        archive.read_ranges(&[(3, 0)]).unwrap(),
        vec![Vec::<u8>::new()]
    );
    assert!(archive.read_ranges(&[(0, 1), (archive.len(), 1)]).is_err());
}

#[test]
fn preloading_an_index_takes_one_batch_per_level() {
    let files: Vec<(String, Vec<u8>)> = (0..400)
        .map(|i| (format!("dir/{i:05}.bin"), noise(i, 300)))
        .collect();
    let (bytes, _) = build(
        &files,
        small_options(Arc::new(hexz_lz4::Lz4Compressor::new())),
    );
    let open = || {
        let source = Arc::new(Counting {
            inner: MemorySource::new(bytes.clone(), "mem"),
            singles: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
        });
        let archive = Archive::open(source.clone(), &codecs(), ReadOptions::default()).unwrap();
        (source, archive)
    };
    // Without preloading, listing reads the catalog's leaves one by one.
    let (walked, archive) = open();
    let before = walked.singles.load(Ordering::Relaxed);
    let names: Vec<String> = archive.entries().map(|e| e.unwrap().name).collect();
    let walk_singles = walked.singles.load(Ordering::Relaxed) - before;
    assert!(walk_singles >= 4, "{walk_singles} page reads");
    // Preloaded: a batch per level, then the walk reads nothing.
    let (loaded, archive) = open();
    let before = loaded.singles.load(Ordering::Relaxed);
    archive.preload_catalog().unwrap();
    archive.preload_chunk_index().unwrap();
    let batches = loaded.batches.load(Ordering::Relaxed);
    assert!((1..=6).contains(&batches), "{batches} batches");
    let again: Vec<String> = archive.entries().map(|e| e.unwrap().name).collect();
    assert_eq!(again, names);
    for e in archive.entries().map(|e| e.unwrap()).step_by(37) {
        archive.chunk_records(e.offset, e.offset + e.size).unwrap();
    }
    assert_eq!(
        loaded.singles.load(Ordering::Relaxed),
        before,
        "no page read one by one"
    );
    // Preloading twice fetches nothing more.
    archive.preload_catalog().unwrap();
    assert_eq!(loaded.batches.load(Ordering::Relaxed), batches);
}
