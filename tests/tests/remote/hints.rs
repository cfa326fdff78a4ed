//! Parent hints of remote archives: followed only on the child's own scheme,
//! host or bucket, and folder — nothing is sent elsewhere — unless the reader
//! names the parent or allows the place (docs/SECURITY.md, "Parent hints").

use std::fs;
use std::path::Path;
use std::sync::Arc;

use hexz_format::{Error, HintRefusal, ParentPolicy, ReadOptions};
use hexz_pipeline::{OpendalTransport, PipelineError, PublishOptions, Registry, open_archive};

use super::proxy::Proxy;
use super::{create_bucket, env, noise, s3_options};
use crate::common::{CountingServer, thin_pair_with_hint};

fn read_data(registry: &Registry, url: &str, options: ReadOptions) -> hexz_format::Result<Vec<u8>> {
    let a = open_archive(url, registry, options).map_err(|e| match e {
        PipelineError::Format(f) => f,
        other => panic!("{other}"),
    })?;
    a.read_entry(&a.entry("data.bin")?)
}

/// The error reading `url` gives (a success means a hint was followed).
fn read_error(registry: &Registry, url: &str, options: ReadOptions) -> Error {
    match read_data(registry, url, options) {
        Ok(_) => panic!("{url}: read through its parent hint, which should be refused"),
        Err(e) => e,
    }
}

fn refusal(err: &Error) -> Option<&HintRefusal> {
    match err {
        Error::ParentRefused { reason, .. } => Some(reason),
        _ => None,
    }
}

fn allowing(prefix: &str) -> ReadOptions {
    ReadOptions {
        parents: ParentPolicy {
            allowed: vec![prefix.to_string()],
            ..ParentPolicy::default()
        },
        ..ReadOptions::default()
    }
}

/// Served by nginx: a hint naming another host sends it nothing; one leaving the
/// child's folder or naming a local file is refused; the same folder works, and
/// an allowed prefix opens a sibling folder.
#[test]
fn an_http_archive_stays_on_its_host_and_in_its_folder() {
    let (Some(base), Some(dir)) = (env("HEXZ_TEST_HTTP_URL"), env("HEXZ_TEST_HTTP_DIR")) else {
        return;
    };
    let registry = Registry::default();
    let www = Path::new(&dir).join("hints");
    let other_host = CountingServer::start();
    let put = |sub: &str, hint: &str| -> String {
        let folder = www.join(sub);
        fs::create_dir_all(&folder).unwrap();
        thin_pair_with_hint(&folder, hint);
        format!("{base}/hints/{sub}/v2.hxz")
    };

    let url = put("host", &format!("{}/v1.hxz", other_host.url));
    let err = read_error(&registry, &url, ReadOptions::default());
    assert!(
        matches!(refusal(&err), Some(HintRefusal::OtherAuthority { .. })),
        "{err}"
    );
    assert_eq!(
        other_host.connections(),
        0,
        "a request reached the other host"
    );

    let url = put("local", "/etc/passwd");
    let err = read_error(&registry, &url, ReadOptions::default());
    assert_eq!(
        refusal(&err),
        Some(&HintRefusal::RemoteChildNamesLocalFile),
        "{err}"
    );

    // Same folder: the legitimate case.
    let url = put("same", "v1.hxz");
    assert_eq!(
        read_data(&registry, &url, ReadOptions::default()).unwrap(),
        noise(200_000, 21)
    );

    // A sibling folder: refused, then allowed by prefix.
    let url = put("sibling/v2", "../v1/v1.hxz");
    let sibling = www.join("sibling/v1");
    fs::create_dir_all(&sibling).unwrap();
    fs::rename(www.join("sibling/v2/v1.hxz"), sibling.join("v1.hxz")).unwrap();
    let err = read_error(&registry, &url, ReadOptions::default());
    assert!(
        matches!(refusal(&err), Some(HintRefusal::OutsideFolder { .. })),
        "{err}"
    );
    let prefix = format!("{base}/hints/sibling/");
    assert_eq!(
        read_data(&registry, &url, allowing(&prefix)).unwrap(),
        noise(200_000, 21)
    );
    // Or named by the reader.
    let named = ReadOptions {
        parents: ParentPolicy {
            explicit: vec![format!("{base}/hints/sibling/v1/v1.hxz")],
            ..ParentPolicy::default()
        },
        ..ReadOptions::default()
    };
    assert_eq!(
        read_data(&registry, &url, named).unwrap(),
        noise(200_000, 21)
    );
}

/// In S3: a hint naming another bucket is refused — no request for it reaches
/// the server, which the counting proxy in front of it shows — and publish does
/// not check it there either; allowed or named, the parent in the other bucket
/// is read.
#[test]
fn an_s3_archive_stays_in_its_bucket() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-hints");
    create_bucket(&endpoint, "hexz-hints-other");
    let proxy = Proxy::start(&endpoint);
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(&proxy.url))));
    let put = |url: &str, local: &Path| {
        let (op, path) = hexz_opendal::blocking_operator(url, &s3_options(&endpoint)).unwrap();
        op.write(&path, fs::read(local).unwrap()).unwrap();
    };
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = thin_pair_with_hint(tmp.path(), "s3://hexz-hints-other/v1.hxz");
    put("s3://hexz-hints-other/v1.hxz", &v1);
    put("s3://hexz-hints/a/v2.hxz", &v2);
    let child = "s3://hexz-hints/a/v2.hxz";

    proxy.take_log();
    let err = read_error(&registry, child, ReadOptions::default());
    assert!(
        matches!(refusal(&err), Some(HintRefusal::OtherAuthority { .. })),
        "{err}"
    );
    let log = proxy.take_log();
    assert!(
        !log.is_empty(),
        "the child itself was read through the proxy"
    );
    assert!(
        log.iter().all(|line| !line.contains("hexz-hints-other")),
        "a request for the other bucket was sent: {log:?}"
    );

    // Publishing the child does not contact the other bucket either.
    let err = hexz_pipeline::publish(
        &v2,
        "s3://hexz-hints/b/v2.hxz",
        &registry,
        &PublishOptions {
            quiet: true,
            ..PublishOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, PipelineError::PublishParentRefused { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-parent-url"), "{err}");
    let log = proxy.take_log();
    assert!(
        log.iter().all(|line| !line.contains("hexz-hints-other")),
        "publish sent a request for the other bucket: {log:?}"
    );

    let data = read_data(&registry, child, allowing("s3://hexz-hints-other/")).unwrap();
    assert_eq!(data, noise(200_000, 21));
    let named = ReadOptions {
        parents: ParentPolicy {
            explicit: vec!["s3://hexz-hints-other/v1.hxz".into()],
            ..ParentPolicy::default()
        },
        ..ReadOptions::default()
    };
    assert_eq!(
        read_data(&registry, child, named).unwrap(),
        noise(200_000, 21)
    );
}
