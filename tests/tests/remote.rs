//! Reading archives from real servers: nginx over HTTP and an S3 server (moto,
//! then again s3s-fs).
//!
//! `tests/run.sh` starts them and exports `HEXZ_TEST_HTTP_URL` (nginx root URL),
//! `HEXZ_TEST_HTTP_DIR` (the folder it serves), `HEXZ_TEST_HTTP_LOG` (its access
//! log) and `HEXZ_TEST_S3_ENDPOINT` (moto; s3s-fs in the second pass). Without them each test prints why and
//! passes as skipped, so a plain `cargo test` works offline.
//!
//! Themes in `tests/remote/*.rs`: `reads` (request counts at nginx), `publish`,
//! `cache` (the on-disk chunk cache), `faults` (500s and stalls through the
//! fault-injecting `proxy`), `conformance` (the transport suite on s3 and http),
//! `hints` (parent hints of remote archives stay on their host or bucket and folder).
//!
//! Each test builds one archive locally, uploads it, opens it by URL and compares
//! listings, whole entries and random ranges byte for byte with the local copy, and
//! counts requests with a counting [`ReadAt`] decorator (and nginx's access log).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "remote/cache.rs"]
mod cache;
#[path = "remote/conformance.rs"]
mod conformance;
#[path = "remote/faults.rs"]
mod faults;
#[path = "remote/hints.rs"]
mod hints;
#[path = "remote/proxy.rs"]
mod proxy;
#[path = "remote/publish.rs"]
mod publish;
#[path = "remote/publish_thin.rs"]
mod publish_thin;
#[path = "remote/reads.rs"]
mod reads;

#[path = "common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{create_bucket, env, hexz_bin, kill_while_writing, noise, s3_options};
use hexz_format::{Archive, ReadAt, ReadOptions};
use hexz_pipeline::recipe::load_recipe;
use hexz_pipeline::{
    BuildOptions, OpendalTransport, Registry, build, open_archive, open_archive_path,
};

/// Counts the reads (= requests, for a remote source) that reach the source.
#[derive(Debug)]
struct CountingSource {
    inner: Arc<dyn ReadAt>,
    reads: AtomicU64,
}

impl ReadAt for CountingSource {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_exact_at(offset, buf)
    }
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> std::io::Result<Vec<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_ranges(ranges)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

/// Build an archive of a few hundred KiB to a few MiB; returns (tempdir, archive).
fn build_archive() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    for i in 0..40 {
        let text: Vec<u8> = (0..200 + i * 50)
            .flat_map(|j| format!("file {i} line {j}: some text\n").into_bytes())
            .collect();
        fs::write(data.join(format!("text-{i:02}.txt")), text).unwrap();
    }
    fs::write(data.join("sub/big.bin"), noise(3 << 20, 7)).unwrap();
    fs::write(data.join("sub/small.bin"), noise(5000, 9)).unwrap();
    fs::write(
        dir.path().join("recipe.yaml"),
        "inputs:\n  - path: data/\noutput: out/remote.hxz\n\
         chunking: { min: 4KiB, avg: 16KiB, max: 64KiB }\ncompression: { codec: zstd }\n",
    )
    .unwrap();
    let plan = load_recipe(&dir.path().join("recipe.yaml")).unwrap();
    let options = BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    };
    let report = build(&plan, &Registry::default(), &options).unwrap();
    (dir, report.output)
}

fn no_readahead() -> ReadOptions {
    ReadOptions {
        readahead_bytes: 0,
        ..ReadOptions::default()
    }
}

/// `ls`, every entry, and random ranges of the logical stream read through `url`
/// equal the local archive's.
fn compare_with_local(registry: &Registry, local: &Path, url: &str) {
    let a = open_archive_path(local, registry, ReadOptions::default()).unwrap();
    let b = open_archive(url, registry, ReadOptions::default()).unwrap();
    assert_eq!(a.root_hash(), b.root_hash());
    let la: Vec<_> = a.entries().map(|e| e.unwrap()).collect();
    let lb: Vec<_> = b.entries().map(|e| e.unwrap()).collect();
    assert_eq!(la, lb);
    for e in la.iter().filter(|e| e.kind == hexz_format::EntryKind::File) {
        assert_eq!(
            a.read_entry(e).unwrap(),
            b.read_entry(e).unwrap(),
            "{}",
            e.name
        );
    }
    let len = a.len();
    let mut x = 0x1234_5678u64;
    for _ in 0..50 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let offset = (x >> 11) % len;
        let n = ((x >> 40) % 70_000).min(len - offset) as usize;
        let (mut ba, mut bb) = (vec![0; n], vec![0; n]);
        a.read_at(offset, &mut ba).unwrap();
        b.read_at(offset, &mut bb).unwrap();
        assert!(ba == bb, "range {offset}+{n} differs");
    }
    assert!(b.verify().is_ok());
}

/// Open `url` through a counting source; returns (requests to open, requests for a
/// cold chunk read once its index page is cached).
fn request_counts(registry: &Registry, url: &str) -> (u64, u64) {
    let counting = Arc::new(CountingSource {
        inner: registry.open_source(url).unwrap(),
        reads: AtomicU64::new(0),
    });
    let archive = Archive::open(counting.clone(), registry, no_readahead()).unwrap();
    let open = counting.reads.load(Ordering::SeqCst);
    // The first read loads the index page (and a chunk); a far-away chunk covered
    // by the same page then costs exactly one ranged read. (The middle of the
    // stream: the last chunks may lie in the tail the open keeps in memory.)
    let mut byte = [0; 1];
    archive.read_at(0, &mut byte).unwrap();
    let before = counting.reads.load(Ordering::SeqCst);
    archive.read_at(archive.len() / 2, &mut byte).unwrap();
    let cold = counting.reads.load(Ordering::SeqCst) - before;
    eprintln!("{url}: open = {open} reads (+1 stat), cold chunk = {cold} read");
    (open, cold)
}

#[test]
fn reads_over_http_from_nginx() {
    let (Some(base), Some(dir), Some(log)) = (
        env("HEXZ_TEST_HTTP_URL"),
        env("HEXZ_TEST_HTTP_DIR"),
        env("HEXZ_TEST_HTTP_LOG"),
    ) else {
        return;
    };
    let (_tmp, local) = build_archive();
    fs::copy(&local, Path::new(&dir).join("remote.hxz")).unwrap();
    let url = format!("{base}/remote.hxz");
    let registry = Registry::default();
    compare_with_local(&registry, &local, &url);

    let (open, cold) = request_counts(&registry, &url);
    assert!(open <= 1, "open read {open} times");
    assert_eq!(cold, 1);

    // The server's own count: one HEAD (stat) and the tail GET for an open.
    let lines = |log: &str| {
        fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("/remote.hxz "))
            .count()
    };
    let before = lines(&log);
    open_archive(&url, &Registry::default(), no_readahead()).unwrap();
    let requests = lines(&log) - before;
    assert!(requests <= 2, "open cost {requests} HTTP requests");
    eprintln!("nginx access log: open = {requests} requests");

    // The CLI lists by URL what it lists locally.
    let ls = |a: &str| {
        Command::new(hexz_bin())
            .args(["ls", "-l", a])
            .output()
            .unwrap()
    };
    let (l, r) = (ls(local.to_str().unwrap()), ls(&url));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(l.stdout, r.stdout);

    let err = open_archive(
        &format!("{base}/missing.hxz"),
        &Registry::default(),
        no_readahead(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing.hxz") && err.contains("404"), "{err}");
}

#[test]
fn reads_over_s3_from_moto_and_the_cli_reads_urls() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-test");
    let (_tmp, local) = build_archive();
    let url = "s3://hexz-test/dir/remote.hxz".to_string();
    let (op, path) = hexz_opendal::blocking_operator(&url, &s3_options(&endpoint)).unwrap();
    op.write(&path, fs::read(&local).unwrap()).unwrap();

    // In process: a registry whose transport has the settings; the CLI below takes
    // the same ones from the AWS environment variables.
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(&endpoint))));
    compare_with_local(&registry, &local, &url);
    let (open, cold) = request_counts(&registry, &url);
    assert!(open <= 1, "open read {open} times");
    assert_eq!(cold, 1);

    // The CLI: ls and cat by URL match the local archive.
    let hexz = hexz_bin();
    let hexz_cmd = || {
        let mut c = Command::new(&hexz);
        c.env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
        c
    };
    let ls = |a: &str| hexz_cmd().args(["ls", a]).output().unwrap();
    let (l, r) = (ls(local.to_str().unwrap()), ls(&url));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(l.stdout, r.stdout);
    let cat = hexz_cmd()
        .args(["cat", &url, "sub/small.bin"])
        .output()
        .unwrap();
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    assert_eq!(cat.stdout, noise(5000, 9));
    for verb in ["info", "verify"] {
        let out = hexz_cmd().args([verb, &url]).output().unwrap();
        assert!(
            out.status.success(),
            "{verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dest = tempfile::tempdir().unwrap();
    let out = hexz_cmd()
        .args(["extract", &url])
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(dest.path().join("sub/big.bin")).unwrap(),
        noise(3 << 20, 7)
    );

    let missing = hexz_cmd()
        .args(["ls", "s3://hexz-test/nope.hxz"])
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(4),
        "a missing object exits with 4"
    );
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("s3://hexz-test/nope.hxz"), "{stderr}");
}

/// A thin child whose parent is served by nginx: built against the parent's URL,
/// read locally and by URL, with relative hints resolved against the child's URL,
/// and a parent removed from the server reported by name.
#[test]
fn thin_child_reads_its_parent_over_http() {
    let (Some(base), Some(dir)) = (env("HEXZ_TEST_HTTP_URL"), env("HEXZ_TEST_HTTP_DIR")) else {
        return;
    };
    let registry = Registry::default();
    let (tmp, parent) = build_archive();
    let www = Path::new(&dir).join("thin");
    fs::create_dir_all(&www).unwrap();
    fs::copy(&parent, www.join("v1.hxz")).unwrap();
    let parent_url = format!("{base}/thin/v1.hxz");
    // The next version: one file edited, one added.
    let data = tmp.path().join("data");
    fs::write(data.join("text-03.txt"), b"edited\n").unwrap();
    fs::write(data.join("added.bin"), noise(100_000, 11)).unwrap();
    let mut plan = load_recipe(&tmp.path().join("recipe.yaml")).unwrap();
    let options = BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    };
    // The same version built without a parent, for comparison.
    plan.output = tmp.path().join("out/plain.hxz");
    build(&plan, &registry, &options).unwrap();
    plan.output = tmp.path().join("out/v2-url.hxz");
    plan.parent = Some(parent_url.clone());
    build(&plan, &registry, &options).unwrap();
    let plain = open_archive_path(
        &tmp.path().join("out/plain.hxz"),
        &registry,
        ReadOptions::default(),
    )
    .unwrap();
    // A local child whose hint is a URL: followed only where the reader allows
    // (docs/SECURITY.md, "Parent hints").
    let refused = open_archive_path(&plan.output, &registry, ReadOptions::default()).unwrap();
    assert!(
        matches!(
            refused.check_parents(),
            Err(hexz_format::Error::ParentRefused { .. })
        ),
        "a local archive's URL hint was followed"
    );
    let allowed = ReadOptions {
        parents: hexz_format::ParentPolicy {
            allowed: vec![format!("{base}/thin/")],
            ..Default::default()
        },
        ..ReadOptions::default()
    };
    let child = open_archive_path(&plan.output, &registry, allowed).unwrap();
    assert_eq!(child.parents().unwrap()[0].hint, parent_url);
    assert!(fs::metadata(&plan.output).unwrap().len() * 4 < fs::metadata(&parent).unwrap().len());
    for e in plain.entries().map(|e| e.unwrap()) {
        if e.kind == hexz_format::EntryKind::File {
            let got = child.read_entry(&child.entry(&e.name).unwrap()).unwrap();
            assert_eq!(got, plain.read_entry(&e).unwrap(), "{}", e.name);
        }
    }
    child.verify().unwrap();
    let log = hexz_pipeline::log(&child).unwrap();
    assert_eq!(log[1].location, parent_url);
    assert_eq!(log[1].status, "ok");

    // Built against the local copy (relative hint `v1.hxz`), then both uploaded:
    // the child opened by URL finds its parent next to it on the server.
    let local_dir = tmp.path().join("chain");
    fs::create_dir_all(&local_dir).unwrap();
    fs::copy(&parent, local_dir.join("v1.hxz")).unwrap();
    plan.output = local_dir.join("v2.hxz");
    plan.parent = Some(local_dir.join("v1.hxz").display().to_string());
    build(&plan, &registry, &options).unwrap();
    fs::copy(&plan.output, www.join("v2.hxz")).unwrap();
    let by_url = open_archive(
        &format!("{base}/thin/v2.hxz"),
        &registry,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(by_url.parents().unwrap()[0].hint, "v1.hxz");
    by_url.check_parents().unwrap();
    assert_eq!(hexz_pipeline::log(&by_url).unwrap()[1].location, parent_url);
    let big = by_url.entry("sub/big.bin").unwrap();
    assert_eq!(
        by_url.read_entry(&big).unwrap(),
        plain
            .read_entry(&plain.entry("sub/big.bin").unwrap())
            .unwrap()
    );

    // The parent gone from the server: a typed error that names it (HTTP 404).
    fs::remove_file(www.join("v1.hxz")).unwrap();
    let again = open_archive(
        &format!("{base}/thin/v2.hxz"),
        &registry,
        ReadOptions::default(),
    )
    .unwrap();
    let err = again.read_entry(&big).unwrap_err();
    assert!(
        matches!(&err, hexz_format::Error::ParentUnavailable { location, .. } if *location == parent_url),
        "{err}"
    );
    assert!(err.to_string().contains("404"), "{err}");
}

/// A thin child built on a parent in S3 (moto), read in process and by the CLI
/// (`log`, `cat`, `verify`) with both in the bucket.
#[test]
fn thin_child_of_an_s3_parent() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-thin");
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(&endpoint))));
    let put = |url: &str, local: &Path| {
        let (op, path) = hexz_opendal::blocking_operator(url, &s3_options(&endpoint)).unwrap();
        op.write(&path, fs::read(local).unwrap()).unwrap();
    };
    let (tmp, parent) = build_archive();
    let parent_url = "s3://hexz-thin/v/v1.hxz";
    put(parent_url, &parent);
    let data = tmp.path().join("data");
    fs::write(data.join("text-07.txt"), b"edited\n").unwrap();
    let mut plan = load_recipe(&tmp.path().join("recipe.yaml")).unwrap();
    plan.output = tmp.path().join("out/v2.hxz");
    plan.parent = Some(parent_url.to_string());
    let options = BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    };
    build(&plan, &registry, &options).unwrap();
    let child_url = "s3://hexz-thin/v/v2.hxz";
    put(child_url, &plan.output);
    let child = open_archive(child_url, &registry, ReadOptions::default()).unwrap();
    child.verify().unwrap();
    assert_eq!(
        child
            .read_entry(&child.entry("sub/big.bin").unwrap())
            .unwrap(),
        noise(3 << 20, 7)
    );
    let cli = |args: &[&str]| {
        Command::new(hexz_bin())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(args)
            .output()
            .unwrap()
    };
    let log = cli(&["log", child_url, "--json"]);
    assert!(
        log.status.success(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    let log: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(log["chain"][1]["location"], parent_url);
    assert_eq!(log["chain"][1]["status"], "ok");
    let cat = cli(&["cat", child_url, "text-07.txt"]);
    assert_eq!(cat.stdout, b"edited\n");
    let cat = cli(&["cat", child_url, "sub/small.bin"]);
    assert_eq!(cat.stdout, noise(5000, 9));
    assert!(cli(&["verify", child_url]).status.success());
}
