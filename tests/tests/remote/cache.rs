//! The on-disk chunk cache, counted at nginx: a second epoch reads only what it
//! lacks.

use std::fs;
use std::path::Path;
use std::process::Command;

use hexz_format::ReadOptions;
use hexz_pipeline::chunk_cache::DiskCache;
use hexz_pipeline::{Registry, open_archive_cached, open_archive_path};

use super::{build_archive, env, hexz_bin};

/// Requests for this test's object in nginx's access log (other tests run at the
/// same time and log there too).
fn lines(log: &str) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/cached.hxz "))
        .count()
}

#[test]
fn a_second_epoch_reads_only_what_it_lacks() {
    let (Some(base), Some(dir), Some(log)) = (
        env("HEXZ_TEST_HTTP_URL"),
        env("HEXZ_TEST_HTTP_DIR"),
        env("HEXZ_TEST_HTTP_LOG"),
    ) else {
        return;
    };
    let (tmp, local) = build_archive();
    fs::copy(&local, Path::new(&dir).join("cached.hxz")).unwrap();
    let url = format!("{base}/cached.hxz");
    let registry = Registry::default();
    let cache = DiskCache::open(&tmp.path().join("cache"), 1 << 30).unwrap();
    let reference = open_archive_path(&local, &registry, ReadOptions::default()).unwrap();
    let entries: Vec<_> = reference.entries().map(|e| e.unwrap()).collect();
    let files: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == hexz_format::EntryKind::File)
        .collect();
    // Epoch 1 reads half the files (not `sub/big.bin`, the first: the rest then
    // has bytes outside the tail the open keeps in memory): they come from the
    // server.
    let before = lines(&log);
    let a = open_archive_cached(&url, &registry, ReadOptions::default(), &cache).unwrap();
    for e in files.iter().skip(1).step_by(2) {
        assert_eq!(a.read_entry(e).unwrap(), reference.read_entry(e).unwrap());
    }
    let first = lines(&log) - before;
    assert!(cache.used_bytes() > 0);
    // Epoch 2 (a new reader, empty memory caches) reads the same half: only the
    // open reaches the server.
    let before = lines(&log);
    let b = open_archive_cached(&url, &registry, ReadOptions::default(), &cache).unwrap();
    for e in files.iter().skip(1).step_by(2) {
        assert_eq!(b.read_entry(e).unwrap(), reference.read_entry(e).unwrap());
    }
    let second = lines(&log) - before;
    assert!(
        second <= 2,
        "second epoch cost {second} requests (first {first})"
    );
    // Then all files: only what is missing is fetched.
    let before = lines(&log);
    for e in &files {
        assert_eq!(b.read_entry(e).unwrap(), reference.read_entry(e).unwrap());
    }
    let rest = lines(&log) - before;
    assert!(rest >= 1 && rest < first + 2, "rest {rest}, first {first}");
    eprintln!("nginx requests: epoch 1 {first}, epoch 2 {second}, rest {rest}");

    // The CLI: `cat` with --cache-dir twice; the second run only opens.
    let cat = |cache_dir: &Path| {
        let out = Command::new(hexz_bin())
            .arg("--cache-dir")
            .arg(cache_dir)
            .args(["cat", &url, "sub/big.bin"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let cli_cache = tmp.path().join("cli-cache");
    let before = lines(&log);
    let one = cat(&cli_cache);
    let cold = lines(&log) - before;
    let before = lines(&log);
    let two = cat(&cli_cache);
    let warm = lines(&log) - before;
    assert_eq!(one, two);
    assert_eq!(one, super::noise(3 << 20, 7));
    assert!(warm <= 2 && cold > warm, "cold {cold}, warm {warm}");
}
