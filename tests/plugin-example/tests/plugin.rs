//! The out-of-tree `deflate` plugin, end to end: registered explicitly, it builds
//! a recipe and reads the archive back; a registry without it refuses both the
//! recipe (at the codec's location) and the archive, listing the known codecs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::sync::Arc;

use hexz_format::{Compressor, ReadOptions};
use hexz_pipeline::recipe::{RecipeError, load_recipe};
use hexz_pipeline::{BuildOptions, FnFactory, PipelineError, Registry, build, open_archive_path};
use hexz_plugin_example::{DEFAULT_LEVEL, DeflateCompressor, NAME};

/// The default registry plus `deflate`.
fn registry_with_deflate() -> Registry {
    let mut registry = Registry::default();
    registry.register_compressor(Arc::new(FnFactory::new(NAME, |level: Option<i32>| {
        DeflateCompressor::new(level.unwrap_or(DEFAULT_LEVEL))
            .map(|c| Arc::new(c) as Arc<dyn Compressor>)
            .map_err(|e| e.to_string())
    })));
    registry
}

/// A folder with `data/` (text that compresses, noise that does not, a
/// duplicate) and `recipe.yaml` using `compression`.
fn workspace(compression: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("record {i}: the quick brown fox\n").into_bytes())
        .collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(data.join("text.log"), &text).unwrap();
    fs::write(data.join("sub/noise.bin"), &noise).unwrap();
    fs::write(data.join("sub/noise-copy.bin"), &noise).unwrap();
    fs::write(
        dir.path().join("recipe.yaml"),
        format!(
            "inputs:\n  - path: data/\noutput: out/deflate.hxz\n\
             chunking: {{ min: 4KiB, avg: 16KiB, max: 64KiB }}\n{compression}\n"
        ),
    )
    .unwrap();
    dir
}

fn quiet() -> BuildOptions {
    BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    }
}

#[test]
fn builds_and_reads_back_through_a_registry_that_has_it() {
    let dir = workspace("compression: { codec: deflate }");
    let registry = registry_with_deflate();
    let plan = load_recipe(&dir.path().join("recipe.yaml")).unwrap();
    let report = build(&plan, &registry, &quiet()).unwrap();

    let archive = open_archive_path(&report.output, &registry, ReadOptions::default()).unwrap();
    assert_eq!(archive.root_hash(), report.summary.root_hash);
    assert_eq!(archive.directory().codec, "deflate");
    assert_eq!(archive.directory().codec_level, DEFAULT_LEVEL);
    archive.verify().unwrap();
    let data = dir.path().join("data");
    for name in ["text.log", "sub/noise.bin", "sub/noise-copy.bin"] {
        let entry = archive.entry(name).unwrap();
        assert_eq!(
            archive.read_entry(&entry).unwrap(),
            fs::read(data.join(name)).unwrap(),
            "{name}"
        );
    }
    // The codec did compress: the text shrinks, the duplicate is stored once.
    let stats = archive.stats();
    assert!(stats.stored_chunk_bytes < stats.unique_raw_bytes);
    assert!(stats.unique_raw_bytes < stats.logical_size);

    // Same recipe, same registry: the same bytes.
    let first = fs::read(&report.output).unwrap();
    build(&plan, &registry, &quiet()).unwrap();
    assert_eq!(fs::read(&report.output).unwrap(), first);
}

#[test]
fn the_recipe_level_reaches_the_plugin() {
    let dir = workspace("compression: { codec: deflate, level: 9 }");
    let registry = registry_with_deflate();
    let plan = load_recipe(&dir.path().join("recipe.yaml")).unwrap();
    let report = build(&plan, &registry, &quiet()).unwrap();
    let archive = open_archive_path(&report.output, &registry, ReadOptions::default()).unwrap();
    assert_eq!(archive.directory().codec_level, 9);

    // A level the plugin rejects is reported at the level's location.
    let dir = workspace("compression:\n  codec: deflate\n  level: 12");
    let recipe = dir.path().join("recipe.yaml");
    let plan = load_recipe(&recipe).unwrap();
    let err = build(&plan, &registry, &quiet()).unwrap_err();
    assert!(
        matches!(&err, PipelineError::Recipe(RecipeError::CodecSettings { at, codec, .. })
            if at.line == 7 && at.column == 10 && codec == "deflate"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}:7:10: codec `deflate` rejected its settings: deflate level 12 out of range 0–10",
            recipe.display()
        )
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn the_default_registry_refuses_it_and_lists_the_known_codecs() {
    let dir = workspace("compression: { codec: deflate }");
    let recipe = dir.path().join("recipe.yaml");
    let plan = load_recipe(&recipe).unwrap();

    // Building: a recipe error at `compression.codec` (line 5, column 23).
    let err = build(&plan, &Registry::default(), &quiet()).unwrap_err();
    match &err {
        PipelineError::Recipe(RecipeError::UnknownCodec {
            at, codec, known, ..
        }) => {
            assert_eq!((at.line, at.column), (5, 23));
            assert_eq!(codec, "deflate");
            assert_eq!(known, &["lz4", "none", "zstd"]);
        }
        other => panic!("expected an unknown-codec recipe error, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "{}:5:23: unknown codec `deflate`; registered: lz4, none, zstd",
            recipe.display()
        )),
        "{err}"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");

    // Reading an archive written with it: the codec name is refused at open.
    let report = build(&plan, &registry_with_deflate(), &quiet()).unwrap();
    let err = open_archive_path(&report.output, &Registry::default(), ReadOptions::default())
        .expect_err("the default registry has no deflate");
    let text = err.to_string();
    assert!(
        text.contains("unknown codec `deflate` (known: lz4, none, zstd)"),
        "{text}"
    );
}
