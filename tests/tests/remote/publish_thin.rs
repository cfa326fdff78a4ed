//! A thin child publishes only itself: its parents must already be where the
//! child's readers will look (the hint resolved against the destination URL).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hexz_format::ReadOptions;
use hexz_pipeline::{
    BuildOptions, OpendalTransport, PipelineError, PublishOptions, Registry, build, open_archive,
    publish,
};

use super::{create_bucket, env, noise, s3_options};

/// `parent.hxz` and its thin child `child.hxz` (which adds one file), side by
/// side in `dir/out`, and a third, unrelated archive `other.hxz`.
fn chain(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("base.bin"), noise(2 << 20, 11)).unwrap();
    let build_one = |name: &str, parent: Option<&Path>| {
        let recipe = dir.join(format!("{name}.yaml"));
        fs::write(
            &recipe,
            format!(
                "inputs:\n  - path: data/\noutput: out/{name}.hxz\ncompression: {{ codec: lz4 }}\n"
            ),
        )
        .unwrap();
        let mut plan = hexz_pipeline::recipe::load_recipe(&recipe).unwrap();
        plan.parent = parent.map(|p| p.display().to_string());
        let options = BuildOptions {
            quiet: true,
            threads: Some(2),
            ..Default::default()
        };
        build(&plan, &Registry::default(), &options).unwrap().output
    };
    let parent = build_one("parent", None);
    fs::write(data.join("new.bin"), noise(300_000, 12)).unwrap();
    let child = build_one("child", Some(&parent));
    fs::write(data.join("base.bin"), noise(1 << 20, 13)).unwrap();
    let other = build_one("other", None);
    (parent, child, other)
}

fn quiet() -> PublishOptions {
    PublishOptions {
        quiet: true,
        ..PublishOptions::default()
    }
}

/// Publish the child before, with a wrong, and with the right parent at `base`.
fn check(registry: &Registry, base: &str, dir: &Path) {
    let (parent, child, other) = chain(dir);
    let child_url = format!("{base}/child.hxz");
    let parent_url = format!("{base}/parent.hxz");
    let err = publish(&child, &child_url, registry, &quiet()).unwrap_err();
    assert!(
        matches!(&err, PipelineError::PublishParent { location, .. } if *location == parent_url),
        "{err}"
    );
    assert!(
        err.to_string().contains("publish the parent there first"),
        "{err}"
    );
    assert!(open_archive(&child_url, registry, ReadOptions::default()).is_err());

    // Another archive at the parent's place is refused too.
    publish(&other, &parent_url, registry, &quiet()).unwrap();
    let err = publish(&child, &child_url, registry, &quiet()).unwrap_err();
    assert!(err.to_string().contains("another archive"), "{err}");

    publish(&parent, &parent_url, registry, &quiet()).unwrap();
    let report = publish(&child, &child_url, registry, &quiet()).unwrap();
    assert!(report.uploaded);
    assert!(report.size < fs::metadata(&parent).unwrap().len() / 4);
    let remote = open_archive(&child_url, registry, ReadOptions::default()).unwrap();
    let local = open_archive(
        &child.display().to_string(),
        registry,
        ReadOptions::default(),
    )
    .unwrap();
    for entry in local.entries() {
        let entry = entry.unwrap();
        let theirs = remote.entry(&entry.name).unwrap();
        assert_eq!(
            remote.read_entry(&theirs).unwrap(),
            local.read_entry(&entry).unwrap(),
            "{}",
            entry.name
        );
    }
}

#[test]
fn a_thin_child_publishes_after_its_parent_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("published");
    fs::create_dir_all(&dest).unwrap();
    check(
        &Registry::default(),
        &format!("file://{}", dest.display()),
        dir.path(),
    );
}

#[test]
fn a_thin_child_publishes_after_its_parent_to_s3() {
    let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") else {
        return;
    };
    create_bucket(&endpoint, "hexz-thin-publish");
    let mut registry = Registry::default();
    registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(&endpoint))));
    let dir = tempfile::tempdir().unwrap();
    check(&registry, "s3://hexz-thin-publish/v", dir.path());
}
