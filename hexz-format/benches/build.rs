//! Build throughput: `ArchiveWriter` into a `Vec<u8>` sink on ~64 MiB of mixed,
//! deterministically generated data (log-like text, binary records, incompressible
//! noise, sparse zero regions, edited copies of earlier files), default chunking
//! (16/64/256 KiB), zstd level 3 and lz4.
//!
//! Baselines in the same group, over the same bytes: plain block compression in
//! 64 KiB blocks on rayon's global pool (zstd level 3 with one reused context per
//! rayon job, and lz4_flex's block compressor). "hexz build / raw parallel
//! compression" is then the ratio of the `hexz/*` and `raw/*` rows.
//!
//! Run: `cargo bench -p hexz-format --bench build`
//! (quick: `cargo bench -p hexz-format --bench build -- --quick`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use hexz_format::{ArchiveWriter, Compressor, WriterOptions};
use rayon::prelude::*;

/// Size of the generated input.
const INPUT_BYTES: usize = 64 << 20;

/// Block size of the raw-compression baselines.
const BLOCK: usize = 64 << 10;

mod common;

use common::{File, corpus, meta};

/// Build a whole archive into memory; returns the archive bytes (dropped outside
/// the timed region).
fn build(data: &[u8], files: &[File], codec: &Arc<dyn Compressor>) -> Vec<u8> {
    let sink = Vec::with_capacity(data.len());
    let mut w = ArchiveWriter::new(sink, WriterOptions::new(Arc::clone(codec))).unwrap();
    for (i, f) in files.iter().enumerate() {
        w.add_bytes(&f.name, &data[f.start..f.end], meta(i))
            .unwrap();
    }
    let (bytes, _summary) = w.finish().unwrap();
    bytes
}

fn raw_zstd(data: &[u8]) -> Vec<Vec<u8>> {
    data.par_chunks(BLOCK)
        .map_init(
            || zstd::bulk::Compressor::new(3).unwrap(),
            |z, block| z.compress(block).unwrap(),
        )
        .collect()
}

fn raw_lz4(data: &[u8]) -> Vec<Vec<u8>> {
    data.par_chunks(BLOCK)
        .map(lz4_flex::block::compress)
        .collect()
}

fn bench_build(c: &mut Criterion) {
    let (data, files) = corpus(INPUT_BYTES, 1);
    let codecs: Vec<(&str, Arc<dyn Compressor>)> = vec![
        (
            "zstd3",
            Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        ),
        ("lz4", Arc::new(hexz_lz4::Lz4Compressor::new())),
    ];

    // One untimed build per codec: report sizes so ratios can be read in context.
    eprintln!(
        "input: {} files, {} bytes, rayon threads: {}",
        files.len(),
        data.len(),
        rayon::current_num_threads()
    );
    for (name, codec) in &codecs {
        let sink = Vec::with_capacity(data.len());
        let mut w = ArchiveWriter::new(sink, WriterOptions::new(Arc::clone(codec))).unwrap();
        for (i, f) in files.iter().enumerate() {
            w.add_bytes(&f.name, &data[f.start..f.end], meta(i))
                .unwrap();
        }
        let (_, s) = w.finish().unwrap();
        eprintln!(
            "hexz {name}: archive {} bytes ({:.3} of input); chunks {} ({} unique, {} zero), \
             unique raw {} bytes",
            s.archive_size,
            s.archive_size as f64 / data.len() as f64,
            s.stats.chunk_count,
            s.stats.unique_chunk_count,
            s.stats.zero_chunk_count,
            s.stats.unique_raw_bytes,
        );
    }
    let zstd_size: usize = raw_zstd(&data).iter().map(Vec::len).sum();
    let lz4_size: usize = raw_lz4(&data).iter().map(Vec::len).sum();
    eprintln!(
        "raw zstd3 64 KiB blocks: {zstd_size} bytes ({:.3}); raw lz4 64 KiB blocks: \
         {lz4_size} bytes ({:.3})",
        zstd_size as f64 / data.len() as f64,
        lz4_size as f64 / data.len() as f64,
    );

    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(10));
    for (name, codec) in &codecs {
        g.bench_function(format!("hexz/{name}"), |b| {
            b.iter_with_large_drop(|| build(black_box(&data), &files, codec))
        });
    }
    g.bench_function("raw/zstd3_64k_rayon", |b| {
        b.iter_with_large_drop(|| raw_zstd(black_box(&data)))
    });
    g.bench_function("raw/lz4_64k_rayon", |b| {
        b.iter_with_large_drop(|| raw_lz4(black_box(&data)))
    });
    g.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
