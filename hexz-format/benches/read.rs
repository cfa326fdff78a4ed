//! Read benchmarks on an archive of ~256 MiB of mixed data (the same generator as
//! `build.rs`), built once into a temporary folder with zstd level 3 and with lz4,
//! default chunking and pages. The files stay in the OS page cache, so "cold"
//! below means "not in hexz's chunk cache", not "on disk".
//!
//! Groups (each with an in-group baseline, so results read as ratios):
//!
//! * `random_4k_warm`: 4 KiB `read_at` at random 4 KiB-aligned offsets of the
//!   logical stream, with a chunk cache big enough for every chunk and pre-warmed
//!   by one full pass. Baseline: `memcpy` of the same 4 KiB from the raw bytes in
//!   memory (the floor of any cache).
//! * `random_4k_cold_chunk`: 4 KiB `read_at` inside distinct chunks (one per
//!   distinct blob, shuffled) with a chunk cache smaller than one chunk, so every
//!   read loads a blob, while index pages stay cached (64 MiB page cache).
//!   Baselines, for the very same chunks: `pread` of the stored blob + decompress
//!   with the same codec (+ copy out 4 KiB), and the same with CRC32 of the blob
//!   (what the reader always checks). Blob offsets come from the archive's chunk
//!   index (`Archive::chunk_records`).
//! * `sequential`: the whole logical stream through `stream_reader()` in 1 MiB
//!   reads, a fresh `Archive` per iteration (open time excluded), with default
//!   `ReadOptions` (8 MiB read-ahead) and with read-ahead off; plus one row that
//!   re-reads with the same `Archive` as the previous pass (read-ahead state and
//!   chunk cache left over from it). Baseline: `std::fs::read` of a file holding
//!   the same raw bytes (from the page cache).
//!
//! Diagnostics go to stderr (indented lines), once per benchmark that runs:
//! archive sizes; per-read latency percentiles of the warm and cold 4 KiB reads
//! (criterion reports means per batch; the percentiles answer "what is p50");
//! for the sequential path, wall and CPU time and the number of `decompress`
//! calls of one pass per read-ahead mode (through a counting codec wrapper), and
//! a probe of whether read-ahead still fires after the reader jumped back.
//!
//! Run: `cargo bench -p hexz-format --bench read`
//! (quick: `cargo bench -p hexz-format --bench read -- --quick`, one group:
//! `... --bench read -- random_4k_warm`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::hint::black_box;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use hexz_format::layout::{CHUNK_RAW, ChunkRecord};
use hexz_format::{
    Archive, ArchiveWriter, CodecError, CodecProvider, Compressor, ReadOptions, StaticCodecs,
    UnknownCodec, WriterOptions,
};

/// Size of the logical stream.
const INPUT_BYTES: usize = 256 << 20;

/// Size of one random read.
const READ: usize = 4096;

/// Size of one sequential read.
const SEQ_READ: usize = 1 << 20;

mod common;

use common::{Rng, corpus, meta};

fn codecs() -> StaticCodecs {
    StaticCodecs::new(vec![
        Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        Arc::new(hexz_lz4::Lz4Compressor::new()),
    ])
}

/// One archive built from the corpus.
struct Built {
    name: &'static str,
    path: PathBuf,
    codec: Arc<dyn Compressor>,
    /// Every chunk record of the chunk index, in stream order.
    records: Vec<ChunkRecord>,
}

impl Built {
    fn open(&self, options: ReadOptions) -> Archive {
        Archive::open_path(&self.path, &codecs(), options).unwrap()
    }
}

/// Everything the groups share; the temporary folder goes away on drop.
struct Fixture {
    data: Vec<u8>,
    raw_path: PathBuf,
    archives: Vec<Built>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let t0 = Instant::now();
    let (data, files) = corpus(INPUT_BYTES, 2);
    let dir = tempfile::Builder::new()
        .prefix("hexz-read-bench.")
        .tempdir()
        .unwrap();
    let raw_path = dir.path().join("raw.bin");
    fs::write(&raw_path, &data).unwrap();
    let codecs: Vec<(&'static str, Arc<dyn Compressor>)> = vec![
        (
            "zstd3",
            Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        ),
        ("lz4", Arc::new(hexz_lz4::Lz4Compressor::new())),
    ];
    let mut archives = Vec::new();
    for (name, codec) in codecs {
        let path = dir.path().join(format!("{name}.hxz"));
        let mut w = ArchiveWriter::create(&path, WriterOptions::new(Arc::clone(&codec))).unwrap();
        for (i, f) in files.iter().enumerate() {
            w.add_bytes(&f.name, &data[f.start..f.end], meta(i))
                .unwrap();
        }
        let (_, summary) = w.finish().unwrap();
        let archive = Archive::open_path(&path, &self::codecs(), ReadOptions::default()).unwrap();
        assert_eq!(archive.len(), data.len() as u64);
        let tree = archive.directory().chunk_tree;
        let records = archive.chunk_records(0, archive.len()).unwrap();
        // The decoded index must tile the stream and point at the right blobs.
        let mut at = 0;
        for r in &records {
            assert_eq!(r.logical_offset, at);
            at = r.logical_end();
        }
        assert_eq!(at, data.len() as u64);
        let s = summary.stats;
        eprintln!(
            "{name}: {} files, archive {} bytes ({:.3} of {} raw); chunks {} ({} unique, {} zero), \
             chunk-index pages: depth {}",
            files.len(),
            summary.archive_size,
            summary.archive_size as f64 / data.len() as f64,
            data.len(),
            s.chunk_count,
            s.unique_chunk_count,
            s.zero_chunk_count,
            tree.depth,
        );
        archives.push(Built {
            name,
            path,
            codec,
            records,
        });
    }
    eprintln!("fixture built in {:.1?}", t0.elapsed());
    Fixture {
        data,
        raw_path,
        archives,
        _dir: dir,
    }
}

/// Per-call latency percentiles of `f(i)` for `i in 0..n` (after `n / 10`
/// untimed calls), printed to stderr.
fn percentiles(label: &str, n: usize, mut f: impl FnMut(usize)) {
    for i in 0..n / 10 {
        f(i);
    }
    let mut t: Vec<Duration> = (0..n)
        .map(|i| {
            let t0 = Instant::now();
            f(i);
            t0.elapsed()
        })
        .collect();
    t.sort_unstable();
    let p = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
    eprintln!(
        "  {label:<44} p50 {:>9.2?}  p90 {:>9.2?}  p99 {:>9.2?}",
        p(0.5),
        p(0.9),
        p(0.99),
    );
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(50);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
}

/// Read `[from, to)` of the logical stream in 1 MiB `read_at` calls.
fn read_span(a: &Archive, from: u64, to: u64, buf: &mut [u8]) {
    let mut at = from;
    while at < to {
        let n = (to - at).min(buf.len() as u64) as usize;
        a.read_at(at, &mut buf[..n]).unwrap();
        at += n as u64;
    }
}

/// Random 4 KiB reads, everything in the chunk cache.
fn random_4k_warm(c: &mut Criterion, fx: &Fixture) {
    let len = fx.data.len() as u64;
    let mut rng = Rng::new(3);
    let offsets: Vec<u64> = (0..1 << 14)
        .map(|_| rng.below((len - READ as u64) / READ as u64) * READ as u64)
        .collect();
    let mask = offsets.len() - 1;
    let mut buf = vec![0u8; READ];
    let mut g = c.benchmark_group("random_4k_warm");
    configure(&mut g);
    for b in &fx.archives {
        // Opened, pre-warmed and checked on first use (skipped when filtered out).
        let mut warm: Option<Archive> = None;
        let mut i = 0;
        g.bench_function(format!("hexz/{}", b.name), |bench| {
            let a = warm.get_or_insert_with(|| {
                let a = b.open(ReadOptions {
                    // Twice the data: the cache is sharded, keep every shard roomy.
                    chunk_cache_bytes: 2 * len + (64 << 20),
                    page_cache_bytes: 64 << 20,
                    readahead_bytes: 0,
                    verify_chunks: false,
                    ..ReadOptions::default()
                });
                read_span(&a, 0, len, &mut vec![0; SEQ_READ]);
                for &o in offsets.iter().take(64) {
                    a.read_at(o, &mut buf).unwrap();
                    assert_eq!(buf[..], fx.data[o as usize..][..READ]);
                }
                percentiles(&format!("random_4k_warm/hexz/{}", b.name), 200_000, |i| {
                    a.read_at(offsets[i & mask], &mut buf).unwrap();
                });
                a
            });
            bench.iter(|| {
                a.read_at(offsets[i & mask], &mut buf).unwrap();
                i += 1;
                black_box(&buf);
            })
        });
    }
    let mut first = true;
    let mut i = 0;
    g.bench_function("baseline/memcpy", |bench| {
        if std::mem::take(&mut first) {
            percentiles("random_4k_warm/baseline/memcpy", 200_000, |i| {
                let o = offsets[i & mask] as usize;
                buf.copy_from_slice(&fx.data[o..o + READ]);
                black_box(&buf);
            });
        }
        bench.iter(|| {
            let o = offsets[i & mask] as usize;
            buf.copy_from_slice(&fx.data[o..o + READ]);
            i += 1;
            black_box(&buf);
        })
    });
    g.finish();
}

/// A 4 KiB read inside one chunk: the logical offset, and the record.
struct ColdRead {
    offset: u64,
    inner: usize,
    record: ChunkRecord,
}

/// Random 4 KiB reads whose chunk is never cached.
fn random_4k_cold_chunk(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("random_4k_cold_chunk");
    configure(&mut g);
    for b in &fx.archives {
        // One read per distinct blob (at least 4 KiB long), in shuffled order.
        let mut rng = Rng::new(4);
        let mut recs: Vec<ChunkRecord> = b
            .records
            .iter()
            .filter(|r| !r.is_zero() && r.raw_len as usize >= READ)
            .copied()
            .collect();
        recs.sort_unstable_by_key(|r| r.blob_offset);
        recs.dedup_by_key(|r| r.blob_offset);
        for i in (1..recs.len()).rev() {
            recs.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let reads: Vec<ColdRead> = recs
            .into_iter()
            .map(|record| {
                let slots = (record.raw_len as usize - READ) / READ + 1;
                let inner = rng.below(slots as u64) as usize * READ;
                ColdRead {
                    offset: record.logical_offset + inner as u64,
                    inner,
                    record,
                }
            })
            .collect();
        let n = reads.len();

        let archive = b.open(ReadOptions {
            chunk_cache_bytes: 0,
            page_cache_bytes: 64 << 20,
            readahead_bytes: 0,
            verify_chunks: false,
            ..ReadOptions::default()
        });
        let file = fs::File::open(&b.path).unwrap();
        let codec = Arc::clone(&b.codec);
        let mut stored = vec![0u8; 1 << 20];
        let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut buf = vec![0u8; READ];
        // The same read through the codec, by hand.
        let mut by_hand = |r: &ColdRead, crc: bool, buf: &mut [u8]| {
            let rec = &r.record;
            let s = &mut stored[..rec.stored_len as usize];
            file.read_exact_at(s, rec.blob_offset).unwrap();
            if crc {
                assert_eq!(crc32fast::hash(s), rec.crc);
            }
            if rec.flags & CHUNK_RAW != 0 {
                buf.copy_from_slice(&s[r.inner..r.inner + READ]);
            } else {
                out.clear();
                codec.decompress(s, rec.raw_len as usize, &mut out).unwrap();
                buf.copy_from_slice(&out[r.inner..r.inner + READ]);
            }
        };

        let mut first = true;
        let mut i = 0;
        g.bench_function(format!("hexz/{}", b.name), |bench| {
            if std::mem::take(&mut first) {
                let raw = reads
                    .iter()
                    .filter(|r| r.record.flags & CHUNK_RAW != 0)
                    .count();
                let mean = |f: fn(&ChunkRecord) -> u32| {
                    reads.iter().map(|r| f(&r.record) as f64).sum::<f64>() / n as f64
                };
                eprintln!(
                    "  {}: {n} distinct chunks, mean raw {:.0} B, mean stored {:.0} B, {raw} \
                     stored uncompressed",
                    b.name,
                    mean(|r| r.raw_len),
                    mean(|r| r.stored_len),
                );
                // Both paths return the bytes of the raw corpus.
                for r in reads.iter().take(64) {
                    let want = &fx.data[r.offset as usize..][..READ];
                    archive.read_at(r.offset, &mut buf).unwrap();
                    assert_eq!(&buf[..], want);
                    by_hand(r, true, &mut buf);
                    assert_eq!(&buf[..], want);
                }
                percentiles(
                    &format!("random_4k_cold_chunk/hexz/{}", b.name),
                    4 * n,
                    |i| archive.read_at(reads[i % n].offset, &mut buf).unwrap(),
                );
                percentiles(
                    &format!("random_4k_cold_chunk/baseline/{}/pread+decompress", b.name),
                    4 * n,
                    |i| by_hand(&reads[i % n], false, &mut buf),
                );
            }
            bench.iter(|| {
                archive.read_at(reads[i % n].offset, &mut buf).unwrap();
                i += 1;
                black_box(&buf);
            })
        });
        for (label, crc) in [
            ("pread+decompress", false),
            ("pread+crc32+decompress", true),
        ] {
            let mut i = 0;
            g.bench_function(format!("baseline/{}/{label}", b.name), |bench| {
                bench.iter(|| {
                    by_hand(&reads[i % n], crc, &mut buf);
                    i += 1;
                    black_box(&buf);
                })
            });
        }
    }
    g.finish();
}

/// Read the whole stream in 1 MiB reads.
fn read_all(archive: &Archive, buf: &mut [u8]) -> u64 {
    let mut r = archive.stream_reader();
    let mut total = 0;
    loop {
        let n = r.read(buf).unwrap();
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

/// A codec that counts `decompress` calls (to see how often chunks are loaded).
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Compressor>,
    calls: Arc<AtomicU64>,
}

impl Compressor for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.inner.compress(input, out)
    }

    fn decompress(
        &self,
        input: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.decompress(input, raw_len, out)
    }
}

struct CountingCodecs {
    inner: StaticCodecs,
    calls: Arc<AtomicU64>,
}

impl CodecProvider for CountingCodecs {
    fn decompressor(&self, name: &str) -> Result<Arc<dyn Compressor>, UnknownCodec> {
        Ok(Arc::new(Counting {
            inner: self.inner.decompressor(name)?,
            calls: Arc::clone(&self.calls),
        }))
    }
}

/// User + system CPU time of this process so far (all threads), from
/// `/proc/self/stat` (clock ticks, assumed 100 Hz).
fn cpu_time() -> Duration {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

/// Untimed-by-criterion diagnostics of the sequential path, printed to stderr:
/// wall and CPU time of one pass per mode, and whether read-ahead still fires
/// after the reader jumped back behind what was prefetched.
fn sequential_diagnostics(b: &Built, len: u64, buf: &mut [u8]) {
    let no_readahead = ReadOptions {
        readahead_bytes: 0,
        ..ReadOptions::default()
    };
    // The last mode tells read-ahead's own cost from the cost of chunk-cache
    // evictions: with a cache larger than the stream nothing prefetched is evicted
    // before the reader gets to it.
    let big_cache = ReadOptions {
        chunk_cache_bytes: 2 * len,
        ..ReadOptions::default()
    };
    for (label, options) in [
        ("readahead", ReadOptions::default()),
        ("no_readahead", no_readahead),
        ("readahead, chunk cache > stream", big_cache),
    ] {
        let calls = Arc::new(AtomicU64::new(0));
        let codecs = CountingCodecs {
            inner: codecs(),
            calls: Arc::clone(&calls),
        };
        let a = Archive::open_path(&b.path, &codecs, options).unwrap();
        let (w0, c0) = (Instant::now(), cpu_time());
        read_all(&a, buf);
        let (wall, cpu) = (w0.elapsed(), cpu_time() - c0);
        // Let read-ahead still in flight finish before counting.
        drop(a);
        std::thread::sleep(Duration::from_millis(100));
        eprintln!(
            "  sequential/{}/{label}: one pass {wall:.2?} wall, {cpu:.2?} CPU ({:.2} cores), \
             {} decompressions",
            b.name,
            cpu.as_secs_f64() / wall.as_secs_f64(),
            calls.load(Ordering::Relaxed),
        );
    }
    // Read-ahead after a jump back: read two sequential MiB at the end, then two
    // at the start, give read-ahead time to run, and time the third MiB. With
    // working read-ahead it is already decompressed (a memcpy); without, the
    // read decompresses it. A fresh archive doing only the start is the control.
    let mut probe = |jump_back: bool| {
        let a = b.open(ReadOptions::default());
        let mib = SEQ_READ as u64;
        if jump_back {
            read_span(&a, len - 3 * mib, len - mib, buf);
        }
        read_span(&a, 0, 2 * mib, buf);
        std::thread::sleep(Duration::from_millis(500));
        let t0 = Instant::now();
        read_span(&a, 2 * mib, 3 * mib, buf);
        t0.elapsed()
    };
    let (fresh, jumped) = (probe(false), probe(true));
    eprintln!(
        "  sequential/{}: 3rd MiB after 2 sequential MiB: fresh archive {fresh:.2?}, after \
         reading near the end first {jumped:.2?}{}",
        b.name,
        if jumped > fresh * 4 {
            " (read-ahead did not fire after the jump back)"
        } else {
            ""
        }
    );
}

fn sequential(c: &mut Criterion, fx: &Fixture) {
    let len = fx.data.len() as u64;
    let mut g = c.benchmark_group("sequential");
    g.throughput(Throughput::Bytes(len));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));
    let mut buf = vec![0u8; SEQ_READ];
    let no_readahead = ReadOptions {
        readahead_bytes: 0,
        ..ReadOptions::default()
    };
    for b in &fx.archives {
        let mut first = true;
        for (label, options) in [
            ("readahead", ReadOptions::default()),
            ("no_readahead", no_readahead.clone()),
        ] {
            g.bench_function(format!("hexz/{}/{label}", b.name), |bench| {
                if std::mem::take(&mut first) {
                    sequential_diagnostics(b, len, &mut buf);
                }
                bench.iter_batched(
                    || b.open(options.clone()),
                    |archive| {
                        assert_eq!(read_all(&archive, &mut buf), len);
                        // Dropped (with its cache) outside the timed region.
                        archive
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        // Same archive for every pass: what read-ahead does after a rewind.
        let archive = b.open(ReadOptions::default());
        g.bench_function(
            format!("hexz/{}/readahead_reused_archive", b.name),
            |bench| bench.iter(|| assert_eq!(read_all(&archive, &mut buf), len)),
        );
    }
    g.bench_function("baseline/fs_read", |bench| {
        bench.iter_with_large_drop(|| fs::read(&fx.raw_path).unwrap())
    });
    g.bench_function("baseline/file_read_1m", |bench| {
        bench.iter(|| {
            let mut f = fs::File::open(&fx.raw_path).unwrap();
            let mut total = 0;
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            assert_eq!(total, len);
        })
    });
    g.finish();
}

fn bench_read(c: &mut Criterion) {
    let fx = fixture();
    random_4k_warm(c, &fx);
    random_4k_cold_chunk(c, &fx);
    sequential(c, &fx);
}

criterion_group!(benches, bench_read);
criterion_main!(benches);
