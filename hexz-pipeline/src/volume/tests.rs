#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

fn registry() -> Registry {
    Registry::default()
}

fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn small() -> VolumeOptions {
    VolumeOptions {
        codec: "lz4".into(),
        ..VolumeOptions::default()
    }
}

#[test]
fn writes_reads_flushes_and_travels_in_time_on_a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("vol").display().to_string();
    let r = registry();
    let mut v = Volume::create(&url, 300_000, &r, small()).unwrap();
    assert_eq!((v.version(), v.len()), (1, 300_000));
    assert_eq!(v.read(0, 10).unwrap(), vec![0; 10]);
    let data = noise(200_000, 1);
    v.write_at(50_000, &data).unwrap();
    // Unaligned, overlapping a block edge.
    v.write_at(65_530, b"hello, volume").unwrap();
    let mut model = vec![0u8; 300_000];
    model[50_000..250_000].copy_from_slice(&data);
    model[65_530..65_543].copy_from_slice(b"hello, volume");
    assert_eq!(v.read(0, 300_000).unwrap(), model);
    let root2 = v.flush().unwrap();
    assert_eq!(v.version(), 2);
    assert_eq!(v.read(0, 300_000).unwrap(), model);
    // Reopen: the flushed state.
    let v2 = Volume::open(&url, &r, small()).unwrap();
    assert_eq!(v2.root(), root2);
    assert_eq!(v2.read(0, 300_000).unwrap(), model);
    // A small change stores little.
    v.write_at(100_000, b"x").unwrap();
    v.flush().unwrap();
    let versions = log(&url, &r, &small()).unwrap();
    assert_eq!(
        versions.iter().map(|x| x.version).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert!(
        versions[0].own_chunk_bytes.unwrap() < 150_000,
        "{versions:?}"
    );
    // Time travel.
    let old = Volume::open_version(&url, 1, &r, &small()).unwrap();
    assert_eq!(old.read(0, 300_000).unwrap(), vec![0; 300_000]);
    let old = Volume::open_version(&url, 2, &r, &small()).unwrap();
    assert_eq!(old.read(0, 300_000).unwrap(), model);
    assert!(old.is_read_only());
    let mut old = old;
    assert!(matches!(
        old.write_at(0, b"x"),
        Err(VolumeError::ReadOnly { version: 2, .. })
    ));
    assert!(matches!(
        Volume::open_version(&url, 4, &r, &small()),
        Err(VolumeError::NoSuchVersion { latest: 3, .. })
    ));
    assert!(matches!(
        v.read(299_999, 2),
        Err(VolumeError::OutOfRange { .. })
    ));
    assert!(matches!(
        Volume::create(&url, 1, &r, small()),
        Err(VolumeError::Exists { version: 3, .. })
    ));
}

#[test]
fn second_writer_gets_a_conflict_and_keeps_its_writes() {
    for url in [
        tempfile::tempdir()
            .unwrap()
            .keep()
            .join("v")
            .display()
            .to_string(),
        format!("memory://volume-conflict-{}", std::process::id()),
    ] {
        let r = registry();
        Volume::create(&url, 1000, &r, small()).unwrap();
        let mut a = Volume::open(&url, &r, small()).unwrap();
        let mut b = Volume::open(&url, &r, small()).unwrap();
        a.write_at(0, b"aaaa").unwrap();
        b.write_at(10, b"bbbb").unwrap();
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
        assert!(err.to_string().contains("expected version 1"), "{err}");
        // b's write is still visible to b; a's is committed.
        assert_eq!(b.read(10, 4).unwrap(), b"bbbb");
        let now = Volume::open(&url, &r, small()).unwrap();
        assert_eq!(now.read(0, 4).unwrap(), b"aaaa");
        assert_eq!(now.read(10, 4).unwrap(), vec![0; 4]);
        // The loser's snapshot is garbage; gc removes it (no grace) and keeps
        // the chain.
        let report = gc(&url, &r, &small(), Duration::ZERO).unwrap();
        assert_eq!((report.kept, report.removed.len()), (2, 1), "{url}");
        let again = Volume::open_version(&url, 1, &r, &small()).unwrap();
        assert_eq!(again.read(0, 4).unwrap(), vec![0; 4]);
        let report = gc(&url, &r, &small(), Duration::ZERO).unwrap();
        assert_eq!((report.kept, report.removed.len()), (2, 0));
    }
}

#[test]
fn wal_replays_unflushed_writes_and_detects_superseded_logs() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("v").display().to_string();
    let wal = dir.path().join("v.wal");
    let r = registry();
    Volume::create(&url, 5000, &r, small()).unwrap();
    let with_wal = VolumeOptions {
        wal: Some(wal.clone()),
        ..small()
    };
    {
        let mut v = Volume::open(&url, &r, with_wal.clone()).unwrap();
        v.write_at(100, b"durable").unwrap();
        v.truncate(4000).unwrap();
        // Dropped without a flush: a crash.
    }
    let mut v = Volume::open(&url, &r, with_wal.clone()).unwrap();
    assert_eq!(
        (v.len(), v.read(100, 7).unwrap()),
        (4000, b"durable".to_vec())
    );
    v.flush().unwrap();
    drop(v);
    // After a flush the log is empty: reopening changes nothing.
    let v = Volume::open(&url, &r, with_wal.clone()).unwrap();
    assert!(!v.is_dirty());
    assert_eq!(v.version(), 2);
    drop(v);
    // Unflushed writes in the log, then another writer commits: a typed error.
    {
        let mut v = Volume::open(&url, &r, with_wal.clone()).unwrap();
        v.write_at(0, b"lost?").unwrap();
    }
    let mut other = Volume::open(&url, &r, small()).unwrap();
    other.write_at(1, b"other").unwrap();
    other.flush().unwrap();
    let err = Volume::open(&url, &r, with_wal).unwrap_err();
    assert!(
        matches!(
            err,
            VolumeError::WalConflict {
                wal_base: 2,
                head: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncate_shrinks_then_grows_with_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("v").display());
    let r = registry();
    let mut v = Volume::create(&url, 0, &r, small()).unwrap();
    assert!(v.is_empty());
    v.write_at(0, &noise(200_000, 3)).unwrap();
    v.flush().unwrap();
    v.truncate(70_000).unwrap();
    v.truncate(150_000).unwrap();
    let got = v.read(0, 150_000).unwrap();
    assert_eq!(&got[..70_000], &noise(200_000, 3)[..70_000]);
    assert!(got[70_000..].iter().all(|&b| b == 0));
    v.flush().unwrap();
    let again = Volume::open(&url, &r, small()).unwrap();
    assert_eq!(again.read(0, 150_000).unwrap(), got);
    // Unflushed truncate alone is a change.
    v.truncate(10).unwrap();
    assert!(v.is_dirty());
    v.flush().unwrap();
    assert_eq!(Volume::open(&url, &r, small()).unwrap().len(), 10);
}

#[test]
fn a_small_dirty_limit_flushes_by_itself() {
    let url = format!("memory://volume-limit-{}", std::process::id());
    let r = registry();
    let options = VolumeOptions {
        dirty_limit: 2 * BLOCK,
        ..small()
    };
    let mut v = Volume::create(&url, 0, &r, options).unwrap();
    v.write_at(0, &noise(5 * BLOCK as usize, 9)).unwrap();
    assert_eq!(v.version(), 2);
    assert_eq!(v.dirty_bytes(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Write(u64, Vec<u8>),
    Truncate(u64),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..400_000, 1usize..70_000, any::<u64>())
            .prop_map(|(at, len, seed)| Op::Write(at, noise(len, seed | 1))),
        1 => (0u64..450_000).prop_map(Op::Truncate),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random writes, truncates and flushes behave like a Vec<u8>, before and
    /// after each flush and after reopening.
    #[test]
    fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 1..12)) {
        let url = format!(
            "memory://volume-prop-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let r = registry();
        let mut v = Volume::create(&url, 1000, &r, small()).unwrap();
        let mut model = vec![0u8; 1000];
        for op in ops {
            match op {
                Op::Write(at, data) => {
                    v.write_at(at, &data).unwrap();
                    let end = at as usize + data.len();
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[at as usize..end].copy_from_slice(&data);
                }
                Op::Truncate(len) => {
                    v.truncate(len).unwrap();
                    model.resize(len as usize, 0);
                }
                Op::Flush => {
                    v.flush().unwrap();
                }
            }
            prop_assert_eq!(v.len(), model.len() as u64);
            prop_assert!(v.read(0, model.len()).unwrap() == model);
        }
        v.flush().unwrap();
        let again = Volume::open(&url, &r, small()).unwrap();
        prop_assert!(again.read(0, model.len()).unwrap() == model);
    }
}

/// Bindings (the Python `hexz.Volume`) hold a volume behind a lock and move it
/// between threads.
#[test]
fn a_volume_can_be_sent_and_shared() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Volume>();
    send_sync::<VolumeError>();
}

#[test]
fn discard_drops_unflushed_changes_and_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("vol").display().to_string();
    let wal = dir.path().join("vol.wal");
    let r = registry();
    let options = VolumeOptions {
        wal: Some(wal.clone()),
        ..small()
    };
    let mut v = Volume::create(&url, 100_000, &r, options.clone()).unwrap();
    v.write_at(10, b"kept").unwrap();
    v.flush().unwrap();
    v.write_at(70_000, &noise(50_000, 7)).unwrap();
    v.truncate(90_000).unwrap();
    assert!(v.is_dirty());
    v.discard().unwrap();
    assert!(!v.is_dirty());
    assert_eq!(v.len(), 100_000);
    let mut model = vec![0u8; 100_000];
    model[10..14].copy_from_slice(b"kept");
    assert_eq!(v.read(0, 100_000).unwrap(), model);
    drop(v);
    // Nothing is replayed from the log.
    let v = Volume::open(&url, &r, options).unwrap();
    assert!(!v.is_dirty());
    assert_eq!((v.version(), v.read(0, 100_000).unwrap()), (2, model));
    let mut old = Volume::open_version(&url, 1, &r, &small()).unwrap();
    assert!(matches!(old.discard(), Err(VolumeError::ReadOnly { .. })));
}
