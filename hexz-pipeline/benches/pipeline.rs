//! Pipeline overhead: `hexz build` of a recipe (parse, plan, walk, progress,
//! provenance, atomic output) against calling the writer directly on the same files,
//! in the same group, so the report reads as a ratio. Target: ≤ 1.05×.
//!
//! Input: a generated tree of ~96 MiB (2,000 small text files in nested folders,
//! a few large text and binary files, duplicates), built once into a temporary
//! folder; both rows write to a temporary file with zstd level 3.
//!
//! Run: `cargo bench -p hexz-pipeline --bench pipeline`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::hint::black_box;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use hexz_format::{ArchiveWriter, EntryMeta, WriterOptions};
use hexz_pipeline::recipe::parse_recipe;
use hexz_pipeline::{BuildOptions, Registry, build};

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "fn ",
        "let ",
        "archive",
        "chunk",
        "index",
        "=> ",
        "{\n",
        "}\n",
        "return ",
        "self.",
        "0x1f",
        "// note\n",
    ];
    let mut out = Vec::with_capacity(len);
    let mut x = seed | 1;
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(WORDS[(x >> 60) as usize % WORDS.len()].as_bytes());
    }
    out.truncate(len);
    out
}

fn make_tree(root: &Path) -> u64 {
    let mut total = 0u64;
    for i in 0..2000u64 {
        let dir = root.join(format!("src/m{:02}/s{:02}", i % 37, i % 11));
        fs::create_dir_all(&dir).unwrap();
        let data = text(i, 2_000 + (i as usize * 7919) % 30_000);
        total += data.len() as u64;
        fs::write(dir.join(format!("f{i:04}.rs")), data).unwrap();
    }
    fs::create_dir_all(root.join("big")).unwrap();
    for i in 0..3u64 {
        let t = text(100 + i, 12 << 20);
        let n = noise(200 + i, 8 << 20);
        total += (t.len() + 2 * n.len()) as u64;
        fs::write(root.join(format!("big/text{i}.log")), &t).unwrap();
        fs::write(root.join(format!("big/blob{i}.bin")), &n).unwrap();
        fs::write(root.join(format!("big/blob{i}-copy.bin")), &n).unwrap();
    }
    total
}

/// What the pipeline does at its core, without recipe, plan, progress or
/// provenance: walk in the same order and feed the writer.
fn direct(root: &Path, out: &Path) {
    let codec = Registry::default().compressor("zstd", Some(3)).unwrap();
    let mut w = ArchiveWriter::create(out, WriterOptions::new(Arc::clone(&codec))).unwrap();
    for item in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let item = item.unwrap();
        let name = item.path().strip_prefix(root).unwrap().to_str().unwrap();
        let m = item.metadata().unwrap();
        let meta = EntryMeta {
            mode: m.mode(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec() as u32,
            ..EntryMeta::default()
        };
        if m.is_dir() {
            w.add_dir(name, meta).unwrap();
        } else {
            w.add_file(name, &mut File::open(item.path()).unwrap(), meta)
                .unwrap();
        }
    }
    black_box(w.finish().unwrap());
}

fn bench_pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let bytes = make_tree(&root);
    let recipe_path = dir.path().join("recipe.yaml");
    let recipe = "inputs:\n  - path: tree/\noutput: out/pipeline.hxz\ncompression: { codec: zstd, level: 3 }\n";
    fs::write(&recipe_path, recipe).unwrap();
    let plan = parse_recipe(recipe, &recipe_path, &|_| None).unwrap();
    let registry = Registry::default();
    let options = BuildOptions {
        quiet: true,
        ..BuildOptions::default()
    };
    let direct_out = dir.path().join("direct.hxz");

    let mut g = c.benchmark_group("pipeline_overhead");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("hexz_build_recipe", |b| {
        b.iter(|| black_box(build(&plan, &registry, &options).unwrap()))
    });
    g.bench_function("writer_direct", |b| b.iter(|| direct(&root, &direct_out)));
    g.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
