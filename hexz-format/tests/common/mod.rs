//! Helpers shared by the format tests.

use std::sync::Arc;

use hexz_format::codec::{Compressor, StaticCodecs};
use hexz_format::{
    Archive, ArchiveWriter, ChunkParams, EntryMeta, MemorySource, ReadOptions, Summary,
    WriterOptions,
};

/// Codecs every test reader knows.
pub fn codecs() -> StaticCodecs {
    StaticCodecs::new(vec![
        Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()),
        Arc::new(hexz_lz4::Lz4Compressor::new()),
    ])
}

/// Small chunks and pages so that trees get several levels on small inputs.
pub fn small_options(codec: Arc<dyn Compressor>) -> WriterOptions {
    let mut o = WriterOptions::new(codec);
    o.chunking = ChunkParams {
        min: 256,
        avg: 1024,
        max: 4096,
    };
    o.page_size = 4096;
    o.batch_bytes = 64 * 1024;
    o
}

/// A test file: name and content.
pub type Files = Vec<(String, Vec<u8>)>;

/// Build an archive in memory.
pub fn build(files: &Files, options: WriterOptions) -> (Vec<u8>, Summary) {
    let mut w = ArchiveWriter::new(Vec::new(), options).unwrap();
    for (i, (name, data)) in files.iter().enumerate() {
        let meta = EntryMeta {
            mode: 0o100644,
            mtime: 1_700_000_000 + i as i64,
            mtime_nsec: 0,
            owner: None,
            columns: Vec::new(),
        };
        w.add_bytes(name, data, meta).unwrap();
    }
    w.finish().unwrap()
}

/// Open an in-memory archive.
pub fn open(bytes: &[u8]) -> hexz_format::Result<Archive> {
    Archive::open(
        Arc::new(MemorySource::new(bytes.to_vec(), "test.hxz")),
        &codecs(),
        ReadOptions::default(),
    )
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
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

/// A mixed set of files: text, noise, zeros, duplicates.
pub fn sample_files() -> Files {
    let text: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i} of some text\n").into_bytes())
        .collect();
    let noise = noise(7, 50_000);
    vec![
        ("a.txt".into(), text.clone()),
        ("b/noise.bin".into(), noise.clone()),
        ("b/zeros.bin".into(), vec![0; 100_000]),
        ("c/copy-of-a.txt".into(), text),
        ("c/copy-of-noise.bin".into(), noise),
        ("empty".into(), Vec::new()),
        ("tiny".into(), b"x".to_vec()),
    ]
}
