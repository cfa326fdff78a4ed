//! `hexz publish` and the library's `publish` against moto (through the fault
//! proxy, which also counts requests) and to local files.

use std::fs;
use std::sync::Arc;

use hexz_pipeline::{OpendalTransport, PublishOptions, PutOptions, Registry, publish};

use super::proxy::{Fault, Proxy};
use super::{create_bucket, env, hexz_bin, kill_while_writing, noise, s3_options};

/// An archive of about 13 MiB (incompressible), so 5 MiB parts make three.
fn big_archive() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("data")).unwrap();
    fs::write(dir.path().join("data/big.bin"), noise(13 << 20, 3)).unwrap();
    fs::write(dir.path().join("data/a.txt"), b"hello").unwrap();
    fs::write(
        dir.path().join("recipe.yaml"),
        "inputs:\n  - path: data/\noutput: out/big.hxz\ncompression: { codec: lz4 }\n",
    )
    .unwrap();
    let plan = hexz_pipeline::recipe::load_recipe(&dir.path().join("recipe.yaml")).unwrap();
    let options = hexz_pipeline::BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    };
    let out = hexz_pipeline::build(&plan, &Registry::default(), &options)
        .unwrap()
        .output;
    (dir, out)
}

/// A key no earlier run used (the servers may outlive a test run).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}.hxz", std::process::id())
}

fn registry_via(endpoint: &str, retries: usize) -> Registry {
    let mut s3 = s3_options(endpoint);
    s3.retries = Some(retries);
    s3.timeout = Some(std::time::Duration::from_secs(5));
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3)));
    registry
}

fn options() -> PublishOptions {
    PublishOptions {
        quiet: true,
        put: PutOptions {
            part_size: 5 << 20,
            concurrency: 3,
        },
        ..PublishOptions::default()
    }
}

#[test]
fn publishes_in_parallel_parts_and_skips_an_identical_archive() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-publish");
    let proxy = Proxy::start(&endpoint);
    let registry = registry_via(&proxy.url, 2);
    let (_tmp, local) = big_archive();
    let url = &unique("s3://hexz-publish/a/big");
    let report = publish(&local, url, &registry, &options()).unwrap();
    assert!(report.uploaded);
    assert_eq!(report.parts, 3);
    assert_eq!(report.bytes, fs::metadata(&local).unwrap().len());
    let log = proxy.take_log();
    let parts = log.iter().filter(|l| l.contains("partNumber=")).count();
    assert_eq!(parts, 3, "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST") && l.contains("uploads")),
        "{log:?}"
    );
    super::compare_with_local(&registry, &local, url);
    proxy.take_log();

    // Same archive again: a stat and a tail read, no upload.
    let again = publish(&local, url, &registry, &options()).unwrap();
    assert!(!again.uploaded);
    assert_eq!(again.bytes, 0);
    let log = proxy.take_log();
    assert!(
        log.iter()
            .all(|l| l.starts_with("HEAD") || l.starts_with("GET")),
        "{log:?}"
    );
    assert!(log.len() <= 2, "{log:?}");
}

#[test]
fn an_interrupted_publish_leaves_nothing_and_a_rerun_completes() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-publish");
    let proxy = Proxy::start(&endpoint);
    let registry = registry_via(&proxy.url, 1);
    let (_tmp, local) = big_archive();
    let url = &unique("s3://hexz-publish/interrupted");
    // The upload starts (the multipart upload is created, one part goes
    // through), then every further upload request fails.
    proxy.set(Fault::FailUploadsAfter(1));
    let err = publish(&local, url, &registry, &options()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(url) && text.contains("500"), "{text}");
    proxy.set(Fault::Pass);
    let log = proxy.take_log();
    assert!(log.iter().any(|l| l.contains("partNumber=")), "{log:?}");
    // Nothing visible at the key.
    let missing = registry.open_source(url).unwrap_err();
    assert!(
        matches!(missing, hexz_pipeline::PipelineError::NotFound { .. }),
        "{missing}"
    );
    // A re-run completes it.
    let report = publish(&local, url, &registry, &options()).unwrap();
    assert!(report.uploaded);
    super::compare_with_local(&registry, &local, url);
}

#[test]
fn the_cli_publishes_to_s3_and_to_files_with_a_json_summary() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-publish");
    let (tmp, local) = super::build_archive();
    let run = |dest: &str| {
        let out = std::process::Command::new(hexz_bin())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(["publish", "--json"])
            .arg(&local)
            .arg(dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let size = fs::metadata(&local).unwrap().len();
    for dest in [
        unique("s3://hexz-publish/cli/remote"),
        format!("file://{}/pub/remote.hxz", tmp.path().display()),
    ] {
        let first = run(&dest);
        assert_eq!(first["uploaded"], true, "{first}");
        assert_eq!(first["uploaded_bytes"], size);
        let second = run(&dest);
        assert_eq!(second["uploaded"], false, "{second}");
        assert_eq!(second["root_hash"], first["root_hash"]);
    }
    assert_eq!(
        fs::read(tmp.path().join("pub/remote.hxz")).unwrap(),
        fs::read(&local).unwrap()
    );
    // Publishing over HTTP (read-only) fails with a message naming the URL.
    let out = std::process::Command::new(hexz_bin())
        .args(["publish", "-q"])
        .arg(&local)
        .arg("http://127.0.0.1:9/x.hxz")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://127.0.0.1:9/x.hxz"));
}

#[test]
fn the_publish_s3_recipe_builds_and_publishes_to_moto() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    // A bucket of its own, so a re-run against the same server uploads again.
    let bucket = unique("hexz-recipe").trim_end_matches(".hxz").to_string();
    create_bucket(&endpoint, &bucket);
    let key = format!("s3://{bucket}/datasets/sample.hxz");
    // A copy of the bundled recipe and its data, so the output lands in a
    // temporary folder.
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    fs::copy(
        root.join("publish-s3.yaml"),
        tmp.path().join("publish-s3.yaml"),
    )
    .unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(root.join("data"))
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let run = || {
        let out = std::process::Command::new(hexz_bin())
            .env("HEXZ_BUCKET", &bucket)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(["build", "--json"])
            .arg(tmp.path().join("publish-s3.yaml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first["published"]["uploaded"], true, "{first}");
    assert_eq!(first["published"]["url"], key.as_str());
    let second = run();
    assert_eq!(second["published"]["uploaded"], false, "{second}");
    let registry = {
        let mut r = Registry::default();
        r.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(&endpoint))));
        r
    };
    super::compare_with_local(&registry, &tmp.path().join("out/publish-s3.hxz"), &key);

    // Recipe errors point at the `publish` values.
    let bad = tmp.path().join("bad.yaml");
    for (text, expect) in [
        (
            "publish:\n  url: not-a-url\n",
            "bad.yaml:4:8: publish.url: `not-a-url` is not a URL",
        ),
        (
            "publish:\n  url: gopher://x/y\n",
            "bad.yaml:4:8: publish.url: no transport for `gopher://`",
        ),
        (
            "publish:\n  url: s3://b/k\n  part_size: 1MiB\n",
            "bad.yaml:5:14: publish.part_size",
        ),
        (
            "publish:\n  url: s3://b/k\n  concurrency: 0\n",
            "bad.yaml:5:16: publish.concurrency (0) is out of range",
        ),
        ("publish:\n  url: s3://b/k\n  parts: 3\n", "bad.yaml:5:3"),
    ] {
        fs::write(
            &bad,
            format!("inputs:\n  - path: data/\n{text}output: out/bad.hxz\n"),
        )
        .unwrap();
        let out = std::process::Command::new(hexz_bin())
            .args(["build", "-q"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{text}: {stderr}");
    }
}

/// The incomplete multipart uploads of exactly `key` in `bucket`, listed with a
/// request signed by curl (SigV4, the tests' keys): their upload ids, or the
/// server's error (s3s-fs does not implement the listing).
fn incomplete_uploads(endpoint: &str, bucket: &str, key: &str) -> Result<Vec<String>, String> {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "testing:testing",
        ])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        // Query parameters sorted, as curl signs them.
        .arg(format!(
            "{endpoint}/{bucket}?prefix={}&uploads=",
            key.replace('/', "%2F")
        ))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    if !body.contains("<ListMultipartUploadsResult") {
        return Err(body);
    }
    let field = |text: &str, name: &str| -> String {
        let open = format!("<{name}>");
        let start = text.find(&open).map(|i| i + open.len()).unwrap_or(0);
        let end = text[start..].find('<').map_or(text.len(), |i| start + i);
        text[start..end].to_string()
    };
    Ok(body
        .split("<Upload>")
        .skip(1)
        .filter(|upload| field(upload, "Key") == key)
        .map(|upload| field(upload, "UploadId"))
        .collect())
}

/// A killed publish leaves its multipart upload incomplete on the server (parts
/// stored, nothing at the key); the next publish of the key aborts it. Before,
/// the re-run completed a new upload and the killed one stayed, listed and
/// billed, forever. s3s-fs does not list multipart uploads: there the re-run
/// says it could not check (and a lifecycle rule is the remedy).
#[test]
fn a_publish_killed_mid_upload_leaves_nothing_and_a_rerun_completes() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-publish");
    let proxy = Proxy::start(&endpoint);
    let (_tmp, local) = big_archive();
    let url = &unique("s3://hexz-publish/killed");
    let cli = |endpoint: &str| {
        let mut c = std::process::Command::new(hexz_bin());
        c.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(["publish", "-q", "--part-size", "5MiB", "--jobs", "2"])
            .arg(&local)
            .arg(url);
        c
    };
    // One part goes through, the next ones hang; the process is killed there.
    proxy.set(Fault::StallUploadsAfter(
        1,
        std::time::Duration::from_secs(30),
    ));
    let mut child = cli(&proxy.url).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("partNumber=2") || l.contains("partNumber=3"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no second part: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        seen.extend(proxy.take_log());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.iter().any(|l| l.contains("partNumber=")), "{seen:?}");
    let registry = registry_via(&endpoint, 1);
    let missing = registry.open_source(url).unwrap_err();
    assert!(
        matches!(missing, hexz_pipeline::PipelineError::NotFound { .. }),
        "{missing}"
    );
    // The killed upload is there, incomplete (where the server lists them).
    let key = url.trim_start_matches("s3://hexz-publish/");
    let before = incomplete_uploads(&endpoint, "hexz-publish", key);
    if let Ok(ids) = &before {
        assert_eq!(ids.len(), 1, "the killed upload: {ids:?}");
    }
    // A re-run (straight to the server) completes it and aborts the killed one.
    let out = cli(&endpoint).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    super::compare_with_local(&registry, &local, url);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    match before {
        Ok(_) => {
            assert_eq!(summary["stale_uploads_aborted"], 1, "{summary}");
            assert!(summary["stale_uploads_unchecked"].is_null(), "{summary}");
            let after = incomplete_uploads(&endpoint, "hexz-publish", key).unwrap();
            assert!(after.is_empty(), "left incomplete: {after:?}");
        }
        Err(listing) => {
            assert!(listing.contains("NotImplemented"), "{listing}");
            let why = summary["stale_uploads_unchecked"]
                .as_str()
                .unwrap_or_default();
            assert!(
                why.contains("ListMultipartUploads") && why.contains("NotImplemented"),
                "{summary}"
            );
        }
    }
}

/// A publish to a local file whose process is killed (SIGKILL) mid-write leaves
/// nothing in the target's folder: the file has no name until it is complete
/// (`PendingFile`). Before, OpenDAL's atomic write left `a.hxz.XXXXXXXX` there.
/// The test runs itself again as the child that uploads, from a source that
/// takes half a second per part.
#[test]
fn a_local_publish_killed_mid_write_leaves_nothing() {
    const CHILD: &str = "HEXZ_TEST_UPLOAD_TARGET";
    if let Some(target) = std::env::var_os(CHILD) {
        #[derive(Debug)]
        struct Slow;
        impl hexz_format::ReadAt for Slow {
            fn size(&self) -> u64 {
                64 << 20
            }
            fn read_exact_at(&self, _offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
                std::thread::sleep(std::time::Duration::from_millis(500));
                buf.fill(7);
                Ok(())
            }
            fn name(&self) -> String {
                "slow".into()
            }
        }
        let target = target.to_string_lossy().into_owned();
        let s3 = hexz_opendal::S3Options::default();
        let options = hexz_opendal::UploadOptions::default();
        let _ = hexz_opendal::upload(&target, &s3, &Slow, &options, &mut |_| {});
        return;
    }
    if !std::path::Path::new("/proc/self/fd").exists() {
        eprintln!("skipped: no /proc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "publish::a_local_publish_killed_mid_write_leaves_nothing",
        ])
        .env(CHILD, dir.path().join("a.hxz"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let left = kill_while_writing(child, dir.path(), "the upload");
    assert!(
        left.is_empty(),
        "left behind by the killed upload: {left:?}"
    );
}
