//! Faults between the reader and the server: 500s, stalls and delays, injected
//! by the loopback proxy in front of nginx and moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hexz_format::ReadOptions;
use hexz_pipeline::{OpendalTransport, Registry, open_archive, open_archive_path};

use super::proxy::{Fault, Proxy};
use super::{build_archive, create_bucket, env, noise, s3_options};

fn registry(endpoint: Option<&str>, timeout: Duration, retries: usize) -> Registry {
    let mut s3 = match endpoint {
        Some(e) => s3_options(e),
        None => hexz_opendal::S3Options::default(),
    };
    s3.timeout = Some(timeout);
    s3.retries = Some(retries);
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3)));
    registry
}

/// Read every entry of `url` and compare with the local archive.
fn read_all_equal(registry: &Registry, local: &std::path::Path, url: &str) {
    let a = open_archive_path(local, registry, ReadOptions::default()).unwrap();
    let b = open_archive(url, registry, ReadOptions::default()).unwrap();
    for e in a.entries().map(|e| e.unwrap()) {
        if e.kind == hexz_format::EntryKind::File {
            assert_eq!(a.read_entry(&e).unwrap(), b.read_entry(&e).unwrap());
        }
    }
}

#[test]
fn http_reads_retry_500s_and_stalls_then_succeed() {
    let (Some(base), Some(dir)) = (env("HEXZ_TEST_HTTP_URL"), env("HEXZ_TEST_HTTP_DIR")) else {
        return;
    };
    let (_tmp, local) = build_archive();
    std::fs::copy(&local, std::path::Path::new(&dir).join("faults.hxz")).unwrap();
    let proxy = Proxy::start(&base);
    let url = format!("{}/faults.hxz", proxy.url);
    let registry = registry(None, Duration::from_millis(500), 4);
    // Two 500s: the stat and the tail read are retried.
    proxy.set(Fault::Fail(2));
    read_all_equal(&registry, &local, &url);
    let log = proxy.take_log();
    assert!(log.len() > 2, "{log:?}");
    // A stalled request times out after 0.5 s and is sent again.
    proxy.set(Fault::Stall(1, Duration::from_secs(3)));
    let started = Instant::now();
    read_all_equal(&registry, &local, &url);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn s3_reads_retry_500s() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-faults");
    let (_tmp, local) = build_archive();
    let url = "s3://hexz-faults/r.hxz";
    let direct = registry(Some(&endpoint), Duration::from_secs(5), 0);
    hexz_pipeline::publish(
        &local,
        url,
        &direct,
        &hexz_pipeline::PublishOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    let proxy = Proxy::start(&endpoint);
    let registry = registry(Some(&proxy.url), Duration::from_secs(2), 4);
    proxy.set(Fault::Fail(3));
    read_all_equal(&registry, &local, url);
}

#[test]
fn a_stalled_server_fails_with_a_timeout_naming_the_url() {
    let (Some(base), Some(dir)) = (env("HEXZ_TEST_HTTP_URL"), env("HEXZ_TEST_HTTP_DIR")) else {
        return;
    };
    let (_tmp, local) = build_archive();
    std::fs::copy(&local, std::path::Path::new(&dir).join("stalled.hxz")).unwrap();
    let proxy = Proxy::start(&base);
    let url = format!("{}/stalled.hxz", proxy.url);
    proxy.set(Fault::Stall(1000, Duration::from_secs(5)));
    let started = Instant::now();
    let err = open_archive(
        &url,
        &registry(None, Duration::from_millis(300), 1),
        ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains(&url), "{err}");
    assert!(err.to_lowercase().contains("timeout"), "{err}");
    // The CLI says the same, with the settings from the environment.
    let out = std::process::Command::new(super::hexz_bin())
        .env("HEXZ_TIMEOUT", "0.3")
        .env("HEXZ_RETRIES", "0")
        .args(["ls", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&url) && stderr.to_lowercase().contains("timeout"),
        "{stderr}"
    );
    proxy.set(Fault::Pass);
}

/// Behind a store whose every request costs 80 ms more (nginx through a
/// delaying proxy), two ranges 2 MiB apart are fetched by two requests while
/// the source knows only the latency, and by one once a large read has shown
/// the bandwidth: 2 MiB cost less time than a request there
/// (`hexz_opendal::plan`).
#[test]
fn near_ranges_share_a_request_once_the_store_is_known_to_be_latency_bound() {
    use hexz_format::ReadAt;
    let (Some(base), Some(dir)) = (env("HEXZ_TEST_HTTP_URL"), env("HEXZ_TEST_HTTP_DIR")) else {
        return;
    };
    let bytes = noise(16 << 20, 77);
    std::fs::write(std::path::Path::new(&dir).join("plan.bin"), &bytes).unwrap();
    let proxy = Proxy::start(&base);
    proxy.set(Fault::Delay(Duration::from_millis(80)));
    let url = format!("{}/plan.bin", proxy.url);
    let source =
        hexz_opendal::OpendalSource::open_with(&url, &hexz_opendal::S3Options::default()).unwrap();
    let gets = |log: Vec<String>| log.iter().filter(|l| l.starts_with("GET")).count();
    let far = [(4096u64, 4096usize), ((2 << 20) + 4096, 4096)];
    let check = |got: Vec<Vec<u8>>| {
        for (&(o, l), g) in far.iter().zip(&got) {
            assert_eq!(g.as_slice(), &bytes[o as usize..o as usize + l]);
        }
    };
    proxy.take_log();
    check(source.read_ranges(&far).unwrap());
    assert_eq!(
        gets(proxy.take_log()),
        2,
        "{:?}",
        hexz_opendal::plan::costs(&url)
    );
    // A 4 MiB read: ≈ 80 ms, as long as a small one, so the bytes flow fast.
    let mut big = vec![0; 4 << 20];
    source.read_exact_at(8 << 20, &mut big).unwrap();
    assert_eq!(big.as_slice(), &bytes[8 << 20..12 << 20]);
    let plan = hexz_opendal::plan::plan(&url);
    assert!(
        plan.gap >= 2 << 20,
        "{plan:?} from {:?}",
        hexz_opendal::plan::costs(&url)
    );
    proxy.take_log();
    check(source.read_ranges(&far).unwrap());
    assert_eq!(gets(proxy.take_log()), 1);
    proxy.set(Fault::Pass);
}
