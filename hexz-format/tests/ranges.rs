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
    let mut options = ReadOptions::default();
    options.readahead_bytes = 8 << 20;
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
