//! Remote read benchmark: random 4 KiB reads and a sequential scan of one archive
//! read locally (FileSource, the baseline), through the OpenDAL transport's
//! `file://` path (pread) and OpenDAL's generic fs service, from nginx (HTTP) and
//! from moto (S3), in one run; ratios against local, and requests per read.
//!
//! Run by `bench/remote.sh` (which starts nginx and moto); needs
//! HEXZ_TEST_HTTP_URL, HEXZ_TEST_HTTP_DIR and HEXZ_TEST_S3_ENDPOINT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
use common::{create_bucket, noise, s3_options};

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hexz_format::{Archive, FileSource, ReadAt, ReadOptions};
use hexz_pipeline::{OpendalTransport, Registry};

#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ReadAt>,
    calls: AtomicU64,
    requests: AtomicU64,
}

impl ReadAt for Counting {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let pieces = (buf.len() as u64)
            .div_ceil(hexz_opendal::PARALLEL_PIECE)
            .max(1);
        self.requests.fetch_add(pieces, Ordering::Relaxed);
        self.inner.read_exact_at(offset, buf)
    }
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> std::io::Result<Vec<Vec<u8>>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // What the OpenDAL source sends: merged groups, split into pieces.
        let mut sorted: Vec<(u64, u64)> = ranges
            .iter()
            .filter(|r| r.1 > 0)
            .map(|&(o, l)| (o, o + l as u64))
            .collect();
        sorted.sort();
        let mut groups: Vec<(u64, u64)> = Vec::new();
        for (s, e) in sorted {
            match groups.last_mut() {
                Some(g)
                    if s <= g.1 + hexz_opendal::COALESCE_GAP
                        && e.max(g.1) - g.0 <= hexz_opendal::COALESCE_MAX =>
                {
                    g.1 = g.1.max(e)
                }
                _ => groups.push((s, e)),
            }
        }
        let n: u64 = groups
            .iter()
            .map(|g| (g.1 - g.0).div_ceil(hexz_opendal::PARALLEL_PIECE))
            .sum();
        self.requests.fetch_add(n, Ordering::Relaxed);
        self.inner.read_ranges(ranges)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

struct Row {
    name: &'static str,
    random_us: f64,
    random_requests: f64,
    scan_mbs: f64,
    scan_requests: u64,
}

fn measure(name: &'static str, source: Arc<dyn ReadAt>, registry: &Registry, reads: usize) -> Row {
    let counting = Arc::new(Counting {
        inner: source,
        calls: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    let options = ReadOptions {
        readahead_bytes: 0,
        ..ReadOptions::default()
    };
    let archive = Archive::open(counting.clone(), registry, options).unwrap();
    // Warm the index pages (one read per leaf region), then cold random reads of
    // chunks not read before.
    let len = archive.len();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut offsets = Vec::with_capacity(reads);
    for _ in 0..reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        offsets.push(x % (len - 4096));
    }
    let mut buf = vec![0; 4096];
    for &o in &offsets {
        archive.chunk_records(o, o + 4096).unwrap();
    }
    let before = counting.requests.load(Ordering::Relaxed);
    // p50 of the single reads: robust to the shared machine's load spikes.
    let mut times: Vec<f64> = offsets
        .iter()
        .map(|&o| {
            let started = Instant::now();
            archive.read_at(o, &mut buf).unwrap();
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let random_us = times[times.len() / 2];
    let random_requests =
        (counting.requests.load(Ordering::Relaxed) - before) as f64 / reads as f64;

    // Sequential scan with read-ahead, a fresh reader.
    let scan_source = Arc::new(Counting {
        inner: counting.inner.clone(),
        calls: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    let archive = Archive::open(scan_source.clone(), registry, ReadOptions::default()).unwrap();
    let started = Instant::now();
    let mut reader = archive.stream_reader();
    let mut big = vec![0; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut big).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let scan_mbs = total as f64 / 1e6 / started.elapsed().as_secs_f64();
    Row {
        name,
        random_us,
        random_requests,
        scan_mbs,
        scan_requests: scan_source.requests.load(Ordering::Relaxed),
    }
}

fn main() {
    let http = std::env::var("HEXZ_TEST_HTTP_URL").expect("HEXZ_TEST_HTTP_URL");
    let http_dir = std::env::var("HEXZ_TEST_HTTP_DIR").expect("HEXZ_TEST_HTTP_DIR");
    let s3 = std::env::var("HEXZ_TEST_S3_ENDPOINT").expect("HEXZ_TEST_S3_ENDPOINT");
    let mb: usize = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let reads: usize = std::env::var("BENCH_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    for i in 0..mb / 4 {
        std::fs::write(
            dir.path().join(format!("data/f{i:03}.bin")),
            noise(4 << 20, i as u64 + 1),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("recipe.yaml"),
        "inputs:\n  - path: data/\noutput: out/bench.hxz\n",
    )
    .unwrap();
    let plan = hexz_pipeline::recipe::load_recipe(&dir.path().join("recipe.yaml")).unwrap();
    let built = hexz_pipeline::build(
        &plan,
        &Registry::default(),
        &hexz_pipeline::BuildOptions {
            quiet: true,
            threads: None,
            ..Default::default()
        },
    )
    .unwrap();
    let local = built.output;
    let size = std::fs::metadata(&local).unwrap().len();
    std::fs::copy(&local, Path::new(&http_dir).join("bench.hxz")).unwrap();
    let s3opts = s3_options(&s3);
    create_bucket(&s3, "hexz-bench");
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3opts.clone())));
    hexz_pipeline::publish(
        &local,
        "s3://hexz-bench/bench.hxz",
        &registry,
        &hexz_pipeline::PublishOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    let file_url = format!("file://{}", local.display());
    let archive = Archive::open_path(&local, &registry, ReadOptions::default()).unwrap();
    println!(
        "archive: {} MiB logical, {} bytes stored, {} chunks; {reads} random 4 KiB reads \
         per round",
        archive.len() >> 20,
        size,
        archive.stats().chunk_count
    );

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    type Opener<'a> = Box<dyn Fn() -> Arc<dyn ReadAt> + 'a>;
    let sources: Vec<(&'static str, Opener)> = vec![
        (
            "local (FileSource, pread)",
            Box::new(|| Arc::new(FileSource::open(&local).unwrap()) as Arc<dyn ReadAt>),
        ),
        (
            "file:// (OpendalSource, pread)",
            Box::new(|| {
                Arc::new(hexz_opendal::OpendalSource::open_with(&file_url, &s3opts).unwrap())
                    as Arc<dyn ReadAt>
            }),
        ),
        (
            "file:// (OpenDAL fs service)",
            Box::new(|| {
                Arc::new(hexz_opendal::OpendalSource::open_generic(&file_url, &s3opts).unwrap())
                    as Arc<dyn ReadAt>
            }),
        ),
        (
            "http:// (nginx)",
            Box::new(|| registry.open_source(&format!("{http}/bench.hxz")).unwrap()),
        ),
        (
            "s3:// (moto)",
            Box::new(|| registry.open_source("s3://hexz-bench/bench.hxz").unwrap()),
        ),
    ];
    // Rounds interleave the sources (machine load drifts); the median round of
    // each figure is reported.
    let mut all: Vec<Vec<Row>> = (0..sources.len()).map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (name, open)) in sources.iter().enumerate() {
            all[i].push(measure(name, open(), &registry, reads));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rows: Vec<Row> = all
        .into_iter()
        .map(|runs| Row {
            name: runs[0].name,
            random_us: median(runs.iter().map(|r| r.random_us).collect()),
            random_requests: median(runs.iter().map(|r| r.random_requests).collect()),
            scan_mbs: median(runs.iter().map(|r| r.scan_mbs).collect()),
            scan_requests: runs[0].scan_requests,
        })
        .collect();
    let base = &rows[0];
    println!(
        "| source | random 4 KiB read p50 µs | ratio vs local | requests per read | scan MB/s | scan ratio vs local | scan requests |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.2} | {:.2} | {:.0} | {:.3} | {} |",
            r.name,
            r.random_us,
            r.random_us / base.random_us,
            r.random_requests,
            r.scan_mbs,
            r.scan_mbs / base.scan_mbs,
            r.scan_requests
        );
    }
}
