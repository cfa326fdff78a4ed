//! Writable volumes against the local file system and a real S3-compatible server
//! (moto, started by `tests/run.sh`, `HEXZ_TEST_S3_ENDPOINT`; the S3 half skips
//! without it): writes at any offset, flushes as thin snapshots, two writers
//! (the second gets a typed conflict), time travel, gc, and a writer killed
//! between acknowledged writes and the flush (the write-ahead log replays them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{create_bucket, env, hexz_bin, noise, s3_options, succeed};
use hexz_pipeline::volume::{self, Volume, VolumeError, VolumeOptions};
use hexz_pipeline::{OpendalTransport, Registry};

/// A unique name per test run (moto keeps its state between tests of one run).
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// (url, registry, options, env for the CLI) of one store under test.
type Target = (String, Registry, VolumeOptions, Vec<(String, String)>);

/// Each store under test.
fn stores(tag: &str) -> Vec<Target> {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut out = vec![(
        dir.join(unique(tag)).display().to_string(),
        Registry::default(),
        VolumeOptions::default(),
        Vec::new(),
    )];
    if let Some(endpoint) = env("HEXZ_TEST_S3_ENDPOINT") {
        create_bucket(&endpoint, "hexz-volumes");
        let mut registry = Registry::default();
        registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(&endpoint))));
        let options = VolumeOptions {
            s3: Some(s3_options(&endpoint)),
            ..VolumeOptions::default()
        };
        let cli_env = [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        out.push((
            format!("s3://hexz-volumes/{}", unique(tag)),
            registry,
            options,
            cli_env,
        ));
    }
    out
}

#[test]
fn random_writes_flush_as_thin_snapshots_and_travel_in_time() {
    for (url, registry, options, _) in stores("rw") {
        let size = 2 << 20;
        let mut v = Volume::create(&url, size, &registry, options.clone()).unwrap();
        let mut model = vec![0u8; size as usize];
        let base = noise(size as usize, 5);
        v.write_at(0, &base).unwrap();
        model.copy_from_slice(&base);
        v.flush().unwrap();
        // Small unaligned writes here and there, then one flush.
        let mut x = 77u64;
        for i in 0..20 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let at = (x >> 20) % (size - 5000);
            let data = noise(1 + (x >> 50) as usize % 4000, i + 1);
            v.write_at(at, &data).unwrap();
            model[at as usize..at as usize + data.len()].copy_from_slice(&data);
        }
        assert_eq!(
            v.read(0, model.len()).unwrap(),
            model,
            "{url}: before flush"
        );
        let root = v.flush().unwrap();
        assert_eq!(v.version(), 3);
        let again = Volume::open(&url, &registry, options.clone()).unwrap();
        assert_eq!(again.root(), root);
        assert_eq!(
            again.read(0, model.len()).unwrap(),
            model,
            "{url}: reopened"
        );
        // Version 3 stores only the chunks the 20 writes touched, not 2 MiB.
        let versions = volume::log(&url, &registry, &options).unwrap();
        assert_eq!(versions.len(), 3);
        let own = versions[0].own_chunk_bytes.unwrap();
        assert!(own < size / 2, "{url}: version 3 stores {own} bytes");
        // Time travel: version 2 is the noise, version 1 zeros.
        let v2 = Volume::open_version(&url, 2, &registry, &options).unwrap();
        assert_eq!(v2.read(0, base.len()).unwrap(), base);
        let v1 = Volume::open_version(&url, 1, &registry, &options).unwrap();
        assert!(v1.read(0, 4096).unwrap().iter().all(|&b| b == 0));
    }
}

#[test]
fn two_writers_the_second_flush_is_a_typed_conflict() {
    for (url, registry, options, _) in stores("conflict") {
        Volume::create(&url, 100_000, &registry, options.clone()).unwrap();
        let mut a = Volume::open(&url, &registry, options.clone()).unwrap();
        let mut b = Volume::open(&url, &registry, options.clone()).unwrap();
        a.write_at(10, b"from a").unwrap();
        b.write_at(20, b"from b").unwrap();
        a.flush().unwrap();
        let err = b.flush().unwrap_err();
        assert!(
            matches!(
                err,
                VolumeError::Conflict {
                    expected: 1,
                    found: 2,
                    ..
                }
            ),
            "{url}: {err}"
        );
        // Nothing of b was committed, a's write is there, and b still holds its
        // own write (not lost: a new open can redo it).
        let now = Volume::open(&url, &registry, options.clone()).unwrap();
        assert_eq!(now.version(), 2);
        assert_eq!(now.read(10, 6).unwrap(), b"from a");
        assert_eq!(now.read(20, 6).unwrap(), vec![0; 6]);
        assert_eq!(b.read(20, 6).unwrap(), b"from b");
        // Garbage: b's snapshot. A reader open on version 1 keeps reading after gc.
        let reader = Volume::open_version(&url, 1, &registry, &options).unwrap();
        let young = volume::gc(&url, &registry, &options, Duration::from_secs(3600)).unwrap();
        assert_eq!((young.removed.len(), young.young), (0, 1), "{url}");
        let report = volume::gc(&url, &registry, &options, Duration::ZERO).unwrap();
        assert_eq!((report.kept, report.removed.len()), (2, 1), "{url}");
        assert_eq!(reader.read(0, 100_000).unwrap(), vec![0; 100_000]);
        let v2 = Volume::open_version(&url, 2, &registry, &options).unwrap();
        assert_eq!(v2.read(10, 6).unwrap(), b"from a");
    }
}

#[test]
fn a_killed_writer_loses_no_acknowledged_write_with_the_wal() {
    let hexz = hexz_bin();
    for (url, _, _, cli_env) in stores("wal") {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("volume.wal");
        let input = dir.path().join("input.bin");
        let data = noise(300_000, 11);
        std::fs::write(&input, &data).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(&hexz)
                .args(args)
                .envs(cli_env.iter().map(|(k, v)| (k, v)))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        run(&["volume", "create", &url, "--size", "1MiB"]);
        // The writer acknowledges the write, then is killed before it flushes.
        let mut child = Command::new(&hexz)
            .args(["volume", "write", &url, "--offset", "12345", "--wal"])
            .arg(&wal)
            .arg(&input)
            .arg("--pause-before-flush")
            .envs(cli_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("acknowledged 300000"), "{line:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        // Nothing was committed: version 1 is still the head, all zeros.
        let log = String::from_utf8(run(&["volume", "log", &url])).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        // Reopening with the log replays the write; the flush commits it.
        let flushed = String::from_utf8(run(&[
            "volume",
            "flush",
            &url,
            "--wal",
            wal.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(flushed.starts_with("version 2 "), "{flushed}");
        let got = run(&[
            "volume", "read", &url, "--offset", "12345", "--length", "300000",
        ]);
        assert!(got == data, "{url}: replayed bytes differ");
        // Without the log the same crash loses the unflushed write (and only it).
        let old = run(&["volume", "read", &url, "--version", "1", "--length", "100"]);
        assert_eq!(old, vec![0; 100]);
    }
}

#[test]
fn cli_missing_volume_exits_4_and_a_stale_writer_conflicts() {
    let hexz = hexz_bin();
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("v").display().to_string();
    let out = Command::new(&hexz)
        .args(["volume", "log", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no volume there"));
    let registry = Registry::default();
    Volume::create(&url, 10, &registry, VolumeOptions::default()).unwrap();
    // A writer that opened version 1, while the CLI commits version 2.
    let mut stale = Volume::open(&url, &registry, VolumeOptions::default()).unwrap();
    let mut cmd = Command::new(&hexz);
    cmd.args(["volume", "write", &url, "--offset", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"cli").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    stale.write_at(0, b"x").unwrap();
    assert!(matches!(
        stale.flush(),
        Err(VolumeError::Conflict {
            expected: 1,
            found: 2,
            ..
        })
    ));
    let out = Command::new(&hexz)
        .args(["volume", "cat", &url, "--length", "5"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"\0\0cli");
    // The stale writer's snapshot is garbage: `hexz gc` removes it, keeps the chain.
    let out = Command::new(&hexz)
        .args(["gc", &url, "--grace", "0", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kept"], 2, "{report}");
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
}

/// `hexz gc <url> <args> --json` with `env`: its report (the command must
/// succeed).
fn cli_gc(url: &str, args: &[&str], env: &[(String, String)]) -> serde_json::Value {
    let out = succeed(
        Command::new(hexz_bin())
            .arg("gc")
            .arg(url)
            .args(args)
            .arg("--json")
            .envs(env.iter().map(|(k, v)| (k, v))),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `hexz gc --keep-last` on each store: older versions are dropped, the kept
/// ones read as before (rewritten, same numbers), and once the grace period is
/// over (0 here) their storage is freed; `--keep-within` keeps recent versions.
#[test]
fn gc_keep_last_drops_old_versions_on_each_store() {
    for (url, registry, options, cli_env) in stores("retain") {
        let size = 512 * 1024;
        let mut v = Volume::create(&url, size as u64, &registry, options.clone()).unwrap();
        let mut models = vec![Vec::new(), vec![0u8; size]]; // index = version
        let mut model = vec![0u8; size];
        for (i, (at, len)) in [(0, size), (0, size), (1000, 10), (300_000, 5000)]
            .into_iter()
            .enumerate()
        {
            let data = noise(len, 50 + i as u64);
            v.write_at(at as u64, &data).unwrap();
            model[at..at + len].copy_from_slice(&data);
            v.flush().unwrap();
            models.push(model.clone());
        }
        assert_eq!(v.version(), 5);
        let gc = |args: &[&str]| cli_gc(&url, args, &cli_env);
        // Everything was committed within the hour: nothing to drop.
        let report = gc(&["--keep-within", "1h", "--grace", "0"]);
        assert!(report["compaction"].is_null(), "{url}: {report}");
        assert_eq!(report["kept"], 5, "{url}: {report}");
        // Keep the last 2: versions 1..=3 go; within the grace period the old
        // snapshots stay (a reader on the old head keeps reading).
        let reader = Volume::open_version(&url, 5, &registry, &options).unwrap();
        let report = gc(&["--keep-last", "2"]);
        assert_eq!(report["compaction"]["dropped"], serde_json::json!([1, 3]));
        assert_eq!(
            (report["kept"].as_u64(), report["young"].as_u64()),
            (Some(2), Some(5))
        );
        assert_eq!(reader.read(0, size).unwrap(), models[5], "{url}");
        let report = gc(&["--grace", "0"]);
        assert_eq!(
            report["removed"].as_array().unwrap().len(),
            5,
            "{url}: {report}"
        );
        for version in [4u64, 5] {
            let old = Volume::open_version(&url, version, &registry, &options).unwrap();
            assert_eq!(
                old.read(0, size).unwrap(),
                models[version as usize],
                "{url}"
            );
        }
        assert!(matches!(
            Volume::open_version(&url, 3, &registry, &options),
            Err(VolumeError::NoSuchVersion { oldest: 4, .. })
        ));
        let log = volume::log(&url, &registry, &options).unwrap();
        assert_eq!(log.len(), 2, "{url}");
        // The 512 KiB of noise of version 2 (overwritten by version 3) is gone:
        // what is left is about one copy of the volume.
        let stored: u64 = log.iter().map(|l| l.snapshot_bytes).sum();
        assert!(stored < size as u64 * 5 / 4, "{url}: {stored} bytes");
        // The volume goes on.
        let mut v = Volume::open(&url, &registry, options.clone()).unwrap();
        v.write_at(0, b"six").unwrap();
        v.flush().unwrap();
        assert_eq!(v.version(), 6);
    }
}

/// `hexz gc --keep-last 3` of a zstd volume whose flushes store delta chunks,
/// on each store: the third kept version is rewritten against a chain whose new
/// root is not stored yet; every kept version reads and verifies as before.
#[test]
fn gc_keep_last_3_of_a_zstd_volume_with_deltas_on_each_store() {
    let hexz = hexz_bin();
    for (url, registry, options, cli_env) in stores("retain-deltas") {
        let options = VolumeOptions {
            codec: "zstd".into(),
            ..options
        };
        let size = 512 * 1024;
        let mut model = noise(size, 90);
        let mut v = Volume::create(&url, size as u64, &registry, options.clone()).unwrap();
        v.write_at(0, &model).unwrap();
        v.flush().unwrap();
        let mut models = vec![Vec::new(), vec![0u8; size], model.clone()];
        for (i, at) in [100_000usize, 400_000, 100_020].into_iter().enumerate() {
            let data = noise(20, 91 + i as u64);
            v.write_at(at as u64, &data).unwrap();
            model[at..at + data.len()].copy_from_slice(&data);
            v.flush().unwrap();
            models.push(model.clone());
        }
        assert_eq!(v.version(), 5);
        let report = cli_gc(&url, &["--keep-last", "3", "--grace", "0"], &cli_env);
        assert_eq!(report["compaction"]["dropped"], serde_json::json!([1, 2]));
        assert_eq!(report["kept"], 3, "{url}: {report}");
        for version in 3u64..=5 {
            let old = Volume::open_version(&url, version, &registry, &options).unwrap();
            assert_eq!(
                old.read(0, size).unwrap(),
                models[version as usize],
                "{url}: version {version}"
            );
            // Every byte of the rewritten snapshot and of the chain it reads.
            let snapshot = format!("{url}/snapshots/{}.hxz", old.root());
            succeed(
                Command::new(&hexz)
                    .args(["verify", &snapshot])
                    .envs(cli_env.iter().map(|(k, v)| (k, v))),
            );
        }
        // The rewritten chain stores deltas again.
        let head = Volume::open(&url, &registry, options.clone()).unwrap();
        let archive = hexz_pipeline::open_archive(
            &format!("{url}/snapshots/{}.hxz", head.root()),
            &registry,
            hexz_format::ReadOptions::default(),
        )
        .unwrap();
        assert!(archive.space().unwrap().delta_chunks >= 1, "{url}");
    }
}

/// The names of the snapshot files of the local volume at `dir` (temporary
/// files left out).
fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hxz"))
        .collect();
    names.sort();
    names
}

/// Run `cmd` (a CLI commit of the volume at `dir`) while this test holds the
/// head's lock, so that it writes its new snapshot(s) and then blocks on the
/// swing; kill it once `new` snapshot files have appeared. The kill lands
/// between the snapshot writes and the head swing.
fn kill_before_the_swing(dir: &std::path::Path, mut cmd: Command, new: usize) {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("HEAD.lock"))
        .unwrap();
    lock.lock().unwrap();
    let before = snapshot_files(dir).len();
    let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    while snapshot_files(dir).len() < before + new {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the command ended before writing its snapshots"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no new snapshot after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // It cannot swing while the lock is held: it is still running.
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lock);
}

/// The commit protocol under a real crash: a `hexz volume write` and a `hexz gc
/// --keep-last` killed after writing their snapshots but before swinging the
/// head leave the previous versions current and readable, every version still
/// reachable by time travel, and only unreferenced snapshots, which `hexz gc`
/// removes; the volume then commits as usual.
#[test]
fn a_commit_killed_before_the_head_swing_leaves_the_previous_versions() {
    let hexz = hexz_bin();
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("v").display().to_string();
    let vol = dir.path().join("v");
    let registry = Registry::default();
    let size = 256 * 1024;
    let mut v = Volume::create(&url, size as u64, &registry, VolumeOptions::default()).unwrap();
    let mut models = vec![Vec::new(), vec![0u8; size]]; // index = version
    let mut model = vec![0u8; size];
    for (at, seed) in [(0usize, 70u64), (100_000, 71)] {
        let data = noise(50_000, seed);
        v.write_at(at as u64, &data).unwrap();
        model[at..at + data.len()].copy_from_slice(&data);
        v.flush().unwrap();
        models.push(model.clone());
    }
    drop(v);
    let head = std::fs::read(vol.join("HEAD")).unwrap();
    let check = |versions: u64| {
        assert_eq!(std::fs::read(vol.join("HEAD")).unwrap(), head);
        let v = Volume::open(&url, &registry, VolumeOptions::default()).unwrap();
        assert_eq!(
            (v.version(), v.read(0, size).unwrap()),
            (3, models[3].clone())
        );
        for version in 4 - versions..=3 {
            let old =
                Volume::open_version(&url, version, &registry, &VolumeOptions::default()).unwrap();
            assert_eq!(old.read(0, size).unwrap(), models[version as usize]);
        }
        assert_eq!(
            volume::log(&url, &registry, &VolumeOptions::default())
                .unwrap()
                .len() as u64,
            versions
        );
    };
    let gc = |args: &[&str]| cli_gc(&url, args, &[]);
    // A write killed before its swing: version 3 stays the head.
    let input = dir.path().join("input");
    std::fs::write(&input, noise(30_000, 72)).unwrap();
    let mut write = Command::new(&hexz);
    write
        .args(["volume", "write", &url, "--offset", "200000"])
        .arg(&input);
    kill_before_the_swing(&vol, write, 1);
    check(3);
    // Its snapshot is unreferenced: gc removes it and nothing else.
    let report = gc(&["--grace", "0"]);
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["kept"], 3, "{report}");
    check(3);
    // A compaction killed before its swing (the rewritten head is its only new
    // snapshot): the old chain stays current, all three versions readable.
    let mut compact = Command::new(&hexz);
    compact.args(["gc", &url, "--keep-last", "1", "--grace", "0"]);
    kill_before_the_swing(&vol, compact, 1);
    check(3);
    let report = gc(&["--grace", "0"]);
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    check(3);
    // Run to the end, the same commands commit.
    let report = gc(&["--keep-last", "1", "--grace", "0"]);
    assert_eq!(report["compaction"]["dropped"], serde_json::json!([1, 2]));
    succeed(
        Command::new(&hexz)
            .args(["volume", "write", &url, "--offset", "200000"])
            .arg(&input),
    );
    let v = Volume::open(&url, &registry, VolumeOptions::default()).unwrap();
    model[200_000..230_000].copy_from_slice(&noise(30_000, 72));
    assert_eq!((v.version(), v.read(0, size).unwrap()), (4, model));
}
