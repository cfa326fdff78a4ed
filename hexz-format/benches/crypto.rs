//! Cost of encryption, signatures and verified reads, as ratios against plain
//! archives measured in the same run (issue #4 targets: encrypted+signed build
//! ≤ 1.2× plain; verified read ≤ 1.3× plain).
//!
//! ~32 MiB of the shared mixed corpus, default chunking, zstd-3 and lz4:
//!
//! * build: plain vs sealed (AES-256-GCM, one key-file slot) and signed (Ed25519);
//! * read: the whole logical stream in 1 MiB reads, cold caches, plain vs the same
//!   plain archive read under a trust policy (signature checked at open, every
//!   chunk's BLAKE3 id checked) vs sealed + trust (decrypt and keyed-id check).
//!
//! Criterion reports each row; the ratios are timed again below, alternating the
//! two sides of each ratio (median of 15 runs each) so both see the same machine load;
//! wall time and process CPU time (all threads) are both given.
//!
//! Run: `cargo bench -p hexz-format --bench crypto`
//! (quick: `cargo bench -p hexz-format --bench crypto -- --quick`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use hexz_format::crypto::keyfile::PublicKeyKind;
use hexz_format::{
    Archive, ArchiveWriter, Compressor, Encryption, MemorySource, ReadOptions, SecretKeyFile,
    Signing, SlotSpec, StaticCodecs, TrustPolicy, Unlock, WriterOptions,
};
use zeroize::Zeroizing;

mod common;

use common::{File, corpus, meta};

const INPUT_BYTES: usize = 32 << 20;
const KEY: [u8; 32] = [0x42; 32];

fn signer() -> SecretKeyFile {
    SecretKeyFile::from_seed(PublicKeyKind::Ed25519, [7; 32])
}

fn options(codec: &Arc<dyn Compressor>, sealed: bool) -> WriterOptions {
    let mut o = WriterOptions::new(Arc::clone(codec));
    if sealed {
        o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new(KEY))]).unwrap());
        o.signing = Some(Signing {
            key: Arc::new(signer().signing_key().unwrap()),
            detached: false,
        });
    }
    o
}

fn build(data: &[u8], files: &[File], options: WriterOptions) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::with_capacity(data.len()), options).unwrap();
    for (i, f) in files.iter().enumerate() {
        w.add_bytes(&f.name, &data[f.start..f.end], meta(i))
            .unwrap();
    }
    w.finish().unwrap().0
}

fn codecs() -> StaticCodecs {
    StaticCodecs::new(vec![
        Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        Arc::new(hexz_lz4::Lz4Compressor::new()),
    ])
}

fn read_options(trusted: bool, sealed: bool) -> ReadOptions {
    let mut o = ReadOptions::default();
    if sealed {
        o.unlock = Unlock::default().key_file(KEY);
    }
    if trusted {
        o.trust = Some(TrustPolicy {
            keys: vec![signer().public()],
            detached: None,
        });
    }
    o
}

/// Open (cold caches) and read the whole stream in 1 MiB pieces.
fn read_all(bytes: &Arc<Vec<u8>>, options: ReadOptions) -> u64 {
    let source = Arc::new(MemorySource::new(bytes.as_ref().clone(), "bench.hxz"));
    let a = Archive::open(source, &codecs(), options).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    let mut sum = 0u64;
    while pos < a.len() {
        let n = (a.len() - pos).min(buf.len() as u64) as usize;
        a.read_at(pos, &mut buf[..n]).unwrap();
        sum = sum.wrapping_add(u64::from(buf[n / 2]));
        pos += n as u64;
    }
    sum
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time of this process (all threads) so far.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// One side of a ratio: median wall time and median CPU time (all threads).
#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

/// Time `a` and `b` alternately, `RUNS` times each (after one warm-up each).
/// Wall time is what a user waits; CPU time (summed over threads) is the work
/// done, and is less disturbed by other processes on a shared machine.
fn ratio(mut a: impl FnMut(), mut b: impl FnMut()) -> (Cost, Cost) {
    const RUNS: usize = 15;
    let mut samples = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    a();
    b();
    for _ in 0..RUNS {
        for (side, f) in [&mut a as &mut dyn FnMut(), &mut b].into_iter().enumerate() {
            let (w, c) = (Instant::now(), cpu_time());
            f();
            samples[side].1.push(cpu_time() - c);
            samples[side].0.push(w.elapsed());
        }
    }
    let [(wa, ca), (wb, cb)] = samples;
    (
        Cost {
            wall: median(wa),
            cpu: median(ca),
        },
        Cost {
            wall: median(wb),
            cpu: median(cb),
        },
    )
}

fn describe(what: &str, base: Cost, other: Cost, target: f64) -> String {
    let r = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    format!(
        "{what}: wall {:.1?} vs {:.1?} = {:.3}x, cpu {:.1?} vs {:.1?} = {:.3}x (target <= {target}x)",
        other.wall,
        base.wall,
        r(base.wall, other.wall),
        other.cpu,
        base.cpu,
        r(base.cpu, other.cpu)
    )
}

fn bench_crypto(c: &mut Criterion) {
    let (data, files) = corpus(INPUT_BYTES, 4);
    let codecs: Vec<(&str, Arc<dyn Compressor>)> = vec![
        (
            "zstd3",
            Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        ),
        ("lz4", Arc::new(hexz_lz4::Lz4Compressor::new())),
    ];
    eprintln!(
        "input: {} files, {} bytes, rayon threads: {}",
        files.len(),
        data.len(),
        rayon::current_num_threads()
    );
    let mut ratios = Vec::new();
    for (name, codec) in &codecs {
        let plain = Arc::new(build(&data, &files, options(codec, false)));
        let mut signed_options = options(codec, false);
        signed_options.signing = options(codec, true).signing;
        let signed = Arc::new(build(&data, &files, signed_options));
        let sealed = Arc::new(build(&data, &files, options(codec, true)));
        eprintln!(
            "{name}: plain {} bytes, sealed+signed {} bytes (+{:.3}%)",
            plain.len(),
            sealed.len(),
            (sealed.len() as f64 / plain.len() as f64 - 1.0) * 100.0
        );

        let mut g = c.benchmark_group(format!("crypto_build/{name}"));
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(8));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("plain", |b| {
            b.iter(|| black_box(build(&data, &files, options(codec, false))))
        });
        g.bench_function("sealed_signed", |b| {
            b.iter(|| black_box(build(&data, &files, options(codec, true))))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("crypto_read/{name}"));
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(6));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("plain", |b| {
            b.iter(|| black_box(read_all(&plain, read_options(false, false))))
        });
        g.bench_function("signed_trusted", |b| {
            b.iter(|| black_box(read_all(&signed, read_options(true, false))))
        });
        g.bench_function("sealed_trusted", |b| {
            b.iter(|| black_box(read_all(&sealed, read_options(true, true))))
        });
        g.finish();

        let (p, s) = ratio(
            || drop(black_box(build(&data, &files, options(codec, false)))),
            || drop(black_box(build(&data, &files, options(codec, true)))),
        );
        ratios.push(describe(
            &format!("{name} build, sealed+signed vs plain"),
            p,
            s,
            1.2,
        ));
        let (p, s) = ratio(
            || {
                black_box(read_all(&plain, read_options(false, false)));
            },
            || {
                black_box(read_all(&signed, read_options(true, false)));
            },
        );
        ratios.push(describe(
            &format!("{name} read, signed+trusted vs plain"),
            p,
            s,
            1.3,
        ));
        let (p, s) = ratio(
            || {
                black_box(read_all(&plain, read_options(false, false)));
            },
            || {
                black_box(read_all(&sealed, read_options(true, true)));
            },
        );
        ratios.push(describe(
            &format!("{name} read, sealed+trusted vs plain"),
            p,
            s,
            1.3,
        ));
    }
    eprintln!("\nratios (medians of 15 alternating runs each; other / plain):");
    for r in &ratios {
        eprintln!("  {r}");
    }
}

criterion_group!(benches, bench_crypto);
criterion_main!(benches);
