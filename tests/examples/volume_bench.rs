//! Writable-volume benchmark: sequential and random write throughput and flush
//! latency of a `Volume` on the local file system and on moto (S3), against a
//! plain local file written the same way in the same run (the baseline:
//! `pwrite` + `fsync`).
//!
//! Run by `bench/volume.sh` (which starts moto); without HEXZ_TEST_S3_ENDPOINT
//! only the local rows are measured.
//! Environment: VOLUME_MIBS (volume sizes, default "64 256"), RANDOM_WRITES (4 KiB
//! writes per random round, default 2000).
//!
//! Then a *growth* round (GROW_GIB, default 64; 0 skips it): a 1 MiB volume
//! on the local folder grown by GROW_GIB GiB of zeros (`truncate`) and flushed —
//! the first flush after a grow, whose zeros are a hole (recorded as zero chunks,
//! never chunked or hashed) — and a volume created at that size.
//!
//! After the sequential and random rounds, a *small change* round writes one
//! 4 KiB block and flushes, five times: the flush latency that should depend on
//! the change, not on the volume size. For reference the same run also times the
//! whole volume written through the archive writer (FastCDC, BLAKE3, zstd), which
//! is what a flush cost before flushes became incremental.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
use common::{create_bucket, noise, s3_options};

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hexz_pipeline::volume::{Volume, VolumeOptions};
use hexz_pipeline::{OpendalTransport, Registry};

fn offsets(count: usize, size: u64) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 16) % (size / 4096)) * 4096
        })
        .collect()
}

struct Row {
    name: String,
    seq_write: Duration,
    seq_flush: Duration,
    rand_write: Duration,
    rand_flush: Duration,
    /// Median of the small-change flushes (write included).
    small_flush: Duration,
    /// Chunk bytes the last small-change version stored.
    small_stored: u64,
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn main() {
    let sizes: Vec<u64> = std::env::var("VOLUME_MIBS")
        .unwrap_or_else(|_| "64 256".into())
        .split_whitespace()
        .map(|v| v.parse().expect("VOLUME_MIBS: sizes in MiB"))
        .collect();
    let randoms: usize = std::env::var("RANDOM_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for mib in sizes {
        run(mib, randoms);
    }
    let grow: u64 = std::env::var("GROW_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    if grow > 0 {
        growth(grow);
    }
}

/// The growth round: the first flush after growing a volume by `gib` GiB of
/// zeros, and a volume created at that size.
fn growth(gib: u64) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::default();
    let url = dir.path().join("grown").display().to_string();
    let mut v = Volume::create(&url, 0, &registry, VolumeOptions::default()).unwrap();
    v.write_at(0, &noise(1 << 20, 7)).unwrap();
    v.flush().unwrap();
    v.truncate((1 << 20) + (gib << 30)).unwrap();
    let t = Instant::now();
    v.flush().unwrap();
    let flush = t.elapsed();
    let stats = v.last_flush();
    let url = dir.path().join("created").display().to_string();
    let t = Instant::now();
    let created = Volume::create(&url, gib << 30, &registry, VolumeOptions::default()).unwrap();
    let create = t.elapsed();
    let versions = hexz_pipeline::volume::log(&url, &registry, &VolumeOptions::default()).unwrap();
    println!(
        "growth: a 1 MiB volume grown by {gib} GiB of zeros, first flush {:.2} s ({stats:?}); \
         created at {gib} GiB: {:.2} s, snapshot {} bytes ({} bytes of volume)\n",
        flush.as_secs_f64(),
        create.as_secs_f64(),
        versions[0].snapshot_bytes,
        created.len()
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Offsets of the small-change round.
const SMALL_CHANGES: [u64; 5] = [3 << 20, 17 << 20, 29 << 20, 41 << 20, 53 << 20];

fn run(mib: u64, randoms: usize) {
    let size = mib << 20;
    let data = noise(size as usize, 1);
    let small = noise(4096, 2);
    let offs = offsets(randoms, size);
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();

    // Baseline: a plain local file, written with pwrite, durable with fsync.
    {
        let path = dir.path().join("plain.img");
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let t = Instant::now();
        for (i, piece) in data.chunks(1 << 20).enumerate() {
            file.write_all_at(piece, (i as u64) << 20).unwrap();
        }
        let seq_write = t.elapsed();
        let t = Instant::now();
        file.sync_all().unwrap();
        let seq_flush = t.elapsed();
        let t = Instant::now();
        for &o in &offs {
            file.write_all_at(&small, o).unwrap();
        }
        let rand_write = t.elapsed();
        let t = Instant::now();
        file.sync_all().unwrap();
        let rand_flush = t.elapsed();
        let mut smalls = Vec::new();
        for &o in &SMALL_CHANGES {
            let t = Instant::now();
            file.write_all_at(&small, o).unwrap();
            file.sync_all().unwrap();
            smalls.push(t.elapsed());
        }
        rows.push(Row {
            name: "local file (pwrite + fsync)".into(),
            seq_write,
            seq_flush,
            rand_write,
            rand_flush,
            small_flush: median(smalls),
            small_stored: 4096,
        });
    }

    let mut targets = vec![(
        "volume, local folder".to_string(),
        dir.path().join("vol").display().to_string(),
        Registry::default(),
        VolumeOptions::default(),
    )];
    if let Ok(endpoint) = std::env::var("HEXZ_TEST_S3_ENDPOINT") {
        let s3 = s3_options(&endpoint);
        create_bucket(&endpoint, "hexz-volume-bench");
        let mut registry = Registry::default();
        registry.register_transport(Arc::new(OpendalTransport::with_s3(s3.clone())));
        targets.push((
            "volume, S3 (moto)".into(),
            format!("s3://hexz-volume-bench/v-{}-{mib}", std::process::id()),
            registry,
            VolumeOptions {
                s3: Some(s3),
                ..VolumeOptions::default()
            },
        ));
    }
    for (name, url, registry, options) in targets {
        let options = VolumeOptions {
            // Hold the whole sequential round: one flush at the end.
            dirty_limit: size + (1 << 20),
            ..options
        };
        let mut v = Volume::create(&url, size, &registry, options.clone()).unwrap();
        let t = Instant::now();
        for (i, piece) in data.chunks(1 << 20).enumerate() {
            v.write_at((i as u64) << 20, piece).unwrap();
        }
        let seq_write = t.elapsed();
        let t = Instant::now();
        v.flush().unwrap();
        let seq_flush = t.elapsed();
        let t = Instant::now();
        for &o in &offs {
            v.write_at(o, &small).unwrap();
        }
        let rand_write = t.elapsed();
        let t = Instant::now();
        v.flush().unwrap();
        let rand_flush = t.elapsed();
        let mut smalls = Vec::new();
        for &o in &SMALL_CHANGES {
            let t = Instant::now();
            v.write_at(o, &small).unwrap();
            v.flush().unwrap();
            smalls.push(t.elapsed());
        }
        // Check: the content is what was written.
        let again = Volume::open(&url, &registry, options).unwrap();
        let mut expect = data.clone();
        for &o in offs.iter().chain(&SMALL_CHANGES) {
            expect[o as usize..o as usize + 4096].copy_from_slice(&small);
        }
        assert!(again.read(0, size as usize).unwrap() == expect, "{name}");
        let log = hexz_pipeline::volume::log(
            &url,
            &registry,
            &VolumeOptions {
                s3: again_s3(&url),
                ..VolumeOptions::default()
            },
        );
        let log = log.unwrap();
        let random_version = log.iter().find(|l| l.version == 3).unwrap();
        eprintln!(
            "{name}: version 3 stores {} of chunks for {randoms} random 4 KiB writes",
            random_version.own_chunk_bytes.unwrap_or(0)
        );
        rows.push(Row {
            name,
            seq_write,
            seq_flush,
            rand_write,
            rand_flush,
            small_flush: median(smalls),
            small_stored: log[0].own_chunk_bytes.unwrap_or(0),
        });
    }

    // Reference: the whole volume through the archive writer (the floor of a
    // flush that re-chunks everything).
    let full = {
        let registry = Registry::default();
        let mut w = hexz_format::WriterOptions::new(registry.compressor("zstd", None).unwrap());
        w.chunking = hexz_pipeline::volume::VOLUME_CHUNKING;
        let t = Instant::now();
        let mut writer = hexz_format::ArchiveWriter::new(Vec::new(), w).unwrap();
        writer
            .add_bytes("volume.img", &data, hexz_format::EntryMeta::default())
            .unwrap();
        writer.finish().unwrap();
        t.elapsed()
    };

    let base = &rows[0];
    let seq_total = |r: &Row| r.seq_write + r.seq_flush;
    let rand_total = |r: &Row| r.rand_write + r.rand_flush;
    println!(
        "volume {mib} MiB; sequential = {mib} MiB in 1 MiB writes then flush; \
         random = {randoms} x 4 KiB writes then flush\n"
    );
    println!(
        "| target | seq MiB/s (incl. flush) | vs baseline | seq flush | random writes/s (incl. flush) | vs baseline | random flush | small change: write + flush (median of 5) | vs baseline | stored |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let seq = mib_s(size, seq_total(r));
        let rand = randoms as f64 / rand_total(r).as_secs_f64();
        println!(
            "| {} | {:.1} | {:.3}x | {:.0} ms | {:.0} | {:.3}x | {:.0} ms | {:.1} ms | {:.1}x | {} B |",
            r.name,
            seq,
            seq / mib_s(size, seq_total(base)),
            r.seq_flush.as_secs_f64() * 1000.0,
            rand,
            rand / (randoms as f64 / rand_total(base).as_secs_f64()),
            r.rand_flush.as_secs_f64() * 1000.0,
            r.small_flush.as_secs_f64() * 1000.0,
            r.small_flush.as_secs_f64() / base.small_flush.as_secs_f64(),
            r.small_stored,
        );
    }
    println!(
        "\nreference: the whole {mib} MiB volume through the archive writer (FastCDC + \
         BLAKE3 + zstd, the floor of a full re-chunk): {:.0} ms\n",
        full.as_secs_f64() * 1000.0
    );
}

/// The S3 settings for `url` again (the log call needs them for s3:// URLs).
fn again_s3(url: &str) -> Option<hexz_opendal::S3Options> {
    let endpoint = std::env::var("HEXZ_TEST_S3_ENDPOINT").ok()?;
    url.starts_with("s3://").then(|| s3_options(&endpoint))
}
