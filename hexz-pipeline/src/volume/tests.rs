#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::store::Store;
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

/// A volume URL in a fresh local folder (kept: some tests leave readers open
/// past the end of the scope) and one in memory, for tests run on both.
fn local_and_memory(name: &str) -> [String; 2] {
    [
        tempfile::tempdir()
            .unwrap()
            .keep()
            .join("v")
            .display()
            .to_string(),
        format!("memory://{name}-{}", std::process::id()),
    ]
}

#[test]
fn local_volume_files_get_the_umask_mode_like_any_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("vol").display().to_string();
    let mut v = Volume::create(&url, 1000, &registry(), small()).unwrap();
    v.write_at(0, b"shared").unwrap();
    v.flush().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // What 0o666 becomes under this process's umask.
    let plain = dir.path().join("plain");
    std::fs::File::create(&plain).unwrap();
    let expected = mode(&plain);
    let vol = dir.path().join("vol");
    assert_eq!(mode(&vol.join("HEAD")), expected);
    for snapshot in std::fs::read_dir(vol.join("snapshots")).unwrap() {
        assert_eq!(mode(&snapshot.unwrap().path()), expected);
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
        Err(VolumeError::NoSuchVersion {
            latest: 3,
            oldest: 1,
            ..
        })
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
    for url in local_and_memory("volume-conflict") {
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
        // Without a log the writes are in memory only, and the message says so
        // (before, it said they "are kept" — not past the process).
        assert!(
            err.to_string()
                .contains("held only in this process's memory (still readable through this handle) and are lost when it exits"),
            "{err}"
        );
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
    // A logged writer that loses a flush: its writes are in its log, and the
    // conflict says so and names it.
    let other_wal = dir.path().join("other.wal");
    let logged = VolumeOptions {
        wal: Some(other_wal.clone()),
        ..small()
    };
    let mut winner = Volume::open(&url, &r, small()).unwrap();
    let mut loser = Volume::open(&url, &r, logged.clone()).unwrap();
    loser.write_at(2, b"loser").unwrap();
    winner.write_at(3, b"winner").unwrap();
    winner.flush().unwrap();
    let err = loser.flush().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("kept in the write-ahead log") && text.contains("other.wal"),
        "{text}"
    );
    assert!(
        matches!(&err, VolumeError::Conflict { pending: Pending::Logged(p), .. } if *p == other_wal)
    );
    drop(loser);
    let err = Volume::open(&url, &r, logged).unwrap_err();
    assert!(matches!(err, VolumeError::WalConflict { .. }), "{err}");
}

/// A volume holds at most `MAX_SIZE` bytes: a write, truncate or create past it
/// is refused with a typed error, an offset near 2^64 included. Before, a
/// `write_at(2**63)` was taken and the next flush chunked 2^63 zeros.
#[test]
fn sizes_past_the_maximum_are_refused() {
    let url = format!("memory://volume-max-{}", std::process::id());
    let r = registry();
    let mut v = Volume::create(&url, 1000, &r, small()).unwrap();
    let too_large = |e: VolumeError, want: u128| {
        assert!(
            matches!(e, VolumeError::TooLarge { size, max: MAX_SIZE, .. } if size == want),
            "{e}"
        );
        assert!(e.to_string().contains("4 TiB"), "{e}");
    };
    too_large(v.write_at(1 << 63, b"x").unwrap_err(), (1 << 63) + 1);
    too_large(
        v.write_at(MAX_SIZE, b"x").unwrap_err(),
        u128::from(MAX_SIZE) + 1,
    );
    too_large(
        v.write_at(u64::MAX, b"xy").unwrap_err(),
        u128::from(u64::MAX) + 2,
    );
    too_large(
        v.truncate(MAX_SIZE + 1).unwrap_err(),
        u128::from(MAX_SIZE) + 1,
    );
    let other = format!("memory://volume-max-create-{}", std::process::id());
    too_large(
        Volume::create(&other, u64::MAX, &r, small()).unwrap_err(),
        u128::from(u64::MAX),
    );
    // Nothing was applied; the largest size itself is fine.
    assert_eq!((v.len(), v.is_dirty()), (1000, false));
    v.write_at(MAX_SIZE - 2, b"ok").unwrap();
    assert_eq!(v.len(), MAX_SIZE);
    assert_eq!(v.read(MAX_SIZE - 3, 3).unwrap(), b"\0ok");
    v.discard().unwrap();
    // A write-ahead log is a local file: one whose write ends past the maximum
    // (here past 2^64, which used to overflow) is a bad log, not applied.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.wal");
    let mut log = wal::Wal::reset(&path, v.version(), &v.root(), &v.url).unwrap();
    log.append(&WalOp::Write {
        offset: u64::MAX - 1,
        data: b"xyz".to_vec(),
    })
    .unwrap();
    drop(log);
    let logged = VolumeOptions {
        wal: Some(path),
        ..small()
    };
    let err = Volume::open(&url, &r, logged).unwrap_err();
    assert!(
        matches!(err, VolumeError::BadWal { .. }) && err.to_string().contains("4 TiB"),
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

/// Growing a volume costs nothing per byte of zeros: unwritten space is a hole
/// recorded as zero chunks, never read, chunked or hashed (`hole_bytes`).
/// Before, the first flush after a grow chunked every zero (~1.3 s per GiB in
/// release builds): `rechunked_bytes` was the whole growth.
#[test]
fn growth_is_a_hole_not_chunked() {
    let url = format!("memory://volume-grow-{}", std::process::id());
    let r = registry();
    let mut v = Volume::create(&url, 0, &r, small()).unwrap();
    let head = noise(300_000, 5);
    v.write_at(0, &head).unwrap();
    v.flush().unwrap();
    // Grown by 4 GiB, then a write 1 GiB past the end: two holes.
    v.truncate(4 << 30).unwrap();
    v.write_at((5 << 30) + 17, b"tail").unwrap();
    let len = (5u64 << 30) + 21;
    v.flush().unwrap();
    let stats = v.last_flush();
    assert!(stats.rechunked_bytes < 1 << 20, "{stats:?}");
    assert_eq!(
        stats.rechunked_bytes + stats.reused_bytes + stats.hole_bytes,
        len,
        "{stats:?}"
    );
    let again = Volume::open(&url, &r, small()).unwrap();
    assert_eq!(again.len(), len);
    assert_eq!(again.read(0, head.len()).unwrap(), head);
    assert_eq!(again.read((4 << 30) - 8, 16).unwrap(), vec![0; 16]);
    assert_eq!(again.read((5 << 30) + 13, 8).unwrap(), b"\0\0\0\0tail");
    // A small volume grown the same way is chunked exactly as a full rebuild of
    // its bytes: the holes' zero chunks are the ones FastCDC would cut.
    let url = format!("memory://volume-grow-small-{}", std::process::id());
    let mut v = Volume::create(&url, 0, &r, small()).unwrap();
    v.write_at(0, &head).unwrap();
    v.flush().unwrap();
    v.truncate(3_000_123).unwrap();
    v.write_at(3_500_000, &head[..1000]).unwrap();
    v.flush().unwrap();
    assert!(
        v.last_flush().hole_bytes > 2_500_000,
        "{:?}",
        v.last_flush()
    );
    let mut model = head.clone();
    model.resize(3_500_000, 0);
    model.extend_from_slice(&head[..1000]);
    let again = Volume::open(&url, &r, small()).unwrap();
    assert_eq!(again.read(0, model.len()).unwrap(), model);
    assert_eq!(chunking(&again.base), chunking(&rebuilt(&model)));
}

/// A new volume's zeros are zero chunk records from the start, chunked as
/// FastCDC would chunk them.
#[test]
fn a_new_volume_is_chunked_like_its_zeros() {
    let r = registry();
    for size in [0u64, 100, 65_536, 65_537, 5_000_123] {
        let url = format!("memory://volume-new-{size}-{}", std::process::id());
        let v = Volume::create(&url, size, &r, small()).unwrap();
        assert_eq!(v.len(), size);
        assert_eq!(
            chunking(&v.base),
            chunking(&rebuilt(&vec![0; size as usize])),
            "{size}"
        );
    }
    // 64 GiB: a million zero records, no byte chunked.
    let url = format!("memory://volume-new-huge-{}", std::process::id());
    let v = Volume::create(&url, 64 << 30, &r, small()).unwrap();
    assert_eq!(v.read((64 << 30) - 4, 4).unwrap(), vec![0; 4]);
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
        // Incremental flushes chunk the volume as a full rebuild would — except
        // across a run of zeros longer than the largest chunk: FastCDC cuts such
        // a run by length alone, so its cuts depend on where chunking started and
        // the flush's cuts need not meet the old ones (it then restarts at an old
        // boundary, FORMAT.md §14.6; the bytes are the same, zero chunks store
        // nothing).
        let max = small().chunking.max as usize;
        let longest_zero_run = model
            .split(|&b| b != 0)
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        if longest_zero_run <= max {
            prop_assert!(chunking(&again.base) == chunking(&rebuilt(&model)));
        }
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

/// A `memory://` transport that counts the bytes read through it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn crate::registry::Transport>,
    read: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Debug)]
struct CountingSource {
    inner: Arc<dyn hexz_format::ReadAt>,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl hexz_format::ReadAt for CountingSource {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::SeqCst);
        self.inner.read_exact_at(offset, buf)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

impl crate::registry::Transport for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn schemes(&self) -> Vec<String> {
        vec!["memory".into()]
    }
    fn open(
        &self,
        url: &str,
    ) -> std::result::Result<Arc<dyn hexz_format::ReadAt>, crate::registry::BoxError> {
        Ok(Arc::new(CountingSource {
            inner: self.inner.open(url)?,
            read: Arc::clone(&self.read),
        }))
    }
}

/// Chunk boundaries and ids of the whole volume, as (offset, length, id).
fn chunking(a: &Archive) -> Vec<(u64, u32, [u8; 32])> {
    a.chunk_records(0, a.len())
        .unwrap()
        .iter()
        .map(|r| (r.logical_offset, r.raw_len, r.id))
        .collect()
}

/// The same bytes written from scratch (no parents), opened.
fn rebuilt(bytes: &[u8]) -> Archive {
    let r = registry();
    let mut w = ArchiveWriter::new(Vec::new(), writer_options(&r, &small()).unwrap()).unwrap();
    w.add_bytes(ENTRY_NAME, bytes, snapshot_meta()).unwrap();
    let (out, _) = w.finish().unwrap();
    Archive::open(
        Arc::new(MemorySource::new(out, "rebuilt")),
        &r,
        ReadOptions::default(),
    )
    .unwrap()
}

#[test]
fn a_small_write_reads_and_stores_only_around_it() {
    let url = format!("memory://volume-small-write-{}", std::process::id());
    let size = 8 << 20;
    let mut model = noise(size, 21);
    {
        let mut v = Volume::create(&url, size as u64, &registry(), small()).unwrap();
        v.write_at(0, &model).unwrap();
        v.flush().unwrap();
    }
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut r = registry();
    let memory = r.transport_for("memory://x").unwrap().unwrap();
    r.register_transport(Arc::new(Counting {
        inner: memory,
        read: Arc::clone(&read),
    }));
    // Everything read from the store, from opening to the end of the flush:
    // the snapshot's tail and index pages, the chunks under the two writes
    // (64 KiB blocks are completed from the snapshot) and the chunks next to
    // them the flush chunks again.
    let mut v = Volume::open(&url, &r, small()).unwrap();
    for (at, data) in [(3_000_000usize, &b"a small change"[..]), (6_500_001, b"!")] {
        v.write_at(at as u64, data).unwrap();
        model[at..at + data.len()].copy_from_slice(data);
    }
    v.flush().unwrap();
    let during = read.load(std::sync::atomic::Ordering::SeqCst);
    let stats = v.last_flush();
    // Two dirty 64 KiB blocks, extended to chunk boundaries: well under 1 MiB
    // read (chunk index pages included) and rechunked; the rest reused.
    assert!(during < 1 << 20, "flush read {during} bytes: {stats:?}");
    assert!(stats.rechunked_bytes < 600_000, "{stats:?}");
    assert_eq!(stats.rechunked_bytes + stats.reused_bytes, size as u64);
    assert!(stats.reused_chunks > 300, "{stats:?}");
    let versions = log(&url, &r, &small()).unwrap();
    assert!(
        versions[0].own_chunk_bytes.unwrap() < 300_000,
        "{versions:?}"
    );
    // Byte-identical to the model, and chunked exactly as a full rebuild.
    let again = Volume::open(&url, &registry(), small()).unwrap();
    assert_eq!(again.read(0, size).unwrap(), model);
    assert_eq!(chunking(&again.base), chunking(&rebuilt(&model)));
}

#[test]
fn flushed_chains_verify_squash_diff_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("v").display().to_string();
    let r = registry();
    let mut v = Volume::create(&url, 600_000, &r, small()).unwrap();
    let mut model = vec![0u8; 600_000];
    let edits: [(usize, usize, u64); 5] = [
        (0, 600_000, 5),
        (100_000, 10, 6),
        (599_990, 30_000, 7), // grows
        (65_536, 65_536, 8),  // one whole block
        (300_000, 1, 9),
    ];
    for (at, len, seed) in edits {
        let data = noise(len, seed);
        v.write_at(at as u64, &data).unwrap();
        if model.len() < at + len {
            model.resize(at + len, 0);
        }
        model[at..at + len].copy_from_slice(&data);
        v.flush().unwrap();
    }
    v.truncate(400_000).unwrap();
    model.truncate(400_000);
    v.flush().unwrap();
    assert_eq!(v.version(), 7);
    let head = crate::open_archive(
        &format!("{url}/snapshots/{}.hxz", v.root()),
        &r,
        ReadOptions::default(),
    )
    .unwrap();
    let report = head.verify_with(true).unwrap();
    assert!(report.chunks > 0, "{report:?}");
    assert_eq!(
        head.read_entry(&head.entry(ENTRY_NAME).unwrap()).unwrap(),
        model
    );
    assert_eq!(chunking(&head), chunking(&rebuilt(&model)));
    // Every version verifies and reads back.
    for version in 1..=7 {
        let old = Volume::open_version(&url, version, &r, &small()).unwrap();
        old.base.verify_with(true).unwrap();
        assert_eq!(
            old.read(0, old.len() as usize).unwrap().len() as u64,
            old.len()
        );
    }
    let out = dir.path().join("squashed.hxz");
    crate::squash(&head, &out, &r, false).unwrap();
    let squashed = crate::open_archive_path(&out, &r, ReadOptions::default()).unwrap();
    assert!(!squashed.is_thin());
    assert_eq!(
        squashed
            .read_entry(&squashed.entry(ENTRY_NAME).unwrap())
            .unwrap(),
        model
    );
    let v6 = Volume::open_version(&url, 6, &r, &small()).unwrap();
    let d = crate::diff(&v6.base, &head).unwrap();
    assert!(serde_json::to_string(&d).unwrap().contains("volume.img"));
    let links = crate::thin::log(&head).unwrap();
    assert_eq!(links.len(), 7);
    assert!(links.iter().all(|l| l.status == "ok"), "{links:?}");
}

#[test]
fn changed_chunking_parameters_still_flush_correctly() {
    let url = format!("memory://volume-rechunk-{}", std::process::id());
    let r = registry();
    let mut model = noise(2 << 20, 31);
    let mut v = Volume::create(&url, 0, &r, small()).unwrap();
    v.write_at(0, &model).unwrap();
    v.flush().unwrap();
    let other = VolumeOptions {
        chunking: hexz_format::ChunkParams {
            min: 8 * 1024,
            avg: 32 * 1024,
            max: 128 * 1024,
        },
        ..small()
    };
    let mut v = Volume::open(&url, &r, other).unwrap();
    v.write_at(1_000_000, b"cuts no longer meet").unwrap();
    model[1_000_000..1_000_019].copy_from_slice(b"cuts no longer meet");
    v.flush().unwrap();
    let stats = v.last_flush();
    // The region is ended at a base boundary after RESYNC_CHUNKS clean chunks.
    assert!(stats.rechunked_bytes < 1 << 20, "{stats:?}");
    assert_eq!(
        Volume::open(&url, &r, small())
            .unwrap()
            .read(0, 2 << 20)
            .unwrap(),
        model
    );
}

/// Bytes of the snapshots the store holds.
fn stored_bytes(url: &str) -> u64 {
    let store = Store::open(url, None).unwrap();
    store.list_snapshots().unwrap().iter().map(|o| o.size).sum()
}

/// Versions 2..=5 of a 1 MiB volume: v2 writes A over all of it, v3 writes B
/// over all of it, v4 and v5 change a few bytes. Returns each version's bytes
/// (index = version).
fn four_versions(url: &str, r: &Registry) -> Vec<Vec<u8>> {
    let size = 1 << 20;
    let mut v = Volume::create(url, size as u64, r, small()).unwrap();
    let mut models = vec![Vec::new(), vec![0u8; size]];
    let mut model = vec![0u8; size];
    for (at, data) in [
        (0usize, noise(size, 41)),
        (0, noise(size, 42)),
        (500_000, b"four".to_vec()),
        (900_000, b"five".to_vec()),
    ] {
        v.write_at(at as u64, &data).unwrap();
        model[at..at + data.len()].copy_from_slice(&data);
        v.flush().unwrap();
        models.push(model.clone());
    }
    assert_eq!(v.version(), 5);
    models
}

#[test]
fn keep_last_drops_old_versions_and_frees_their_storage() {
    for url in local_and_memory("volume-keep-last") {
        let r = registry();
        let models = four_versions(&url, &r);
        let before = stored_bytes(&url);
        // A reader on the head and a writer, both opened before the gc.
        let reader = Volume::open_version(&url, 5, &r, &small()).unwrap();
        let mut writer = Volume::open(&url, &r, small()).unwrap();
        let retention = Retention {
            keep_last: Some(2),
            keep_within: None,
        };
        let report = gc_with(&url, &r, &small(), DEFAULT_GC_GRACE, &retention).unwrap();
        let compaction = report.compaction.clone().unwrap();
        assert_eq!(compaction.dropped, Some((1, 3)), "{url}");
        assert_eq!(
            compaction
                .rewritten
                .iter()
                .map(|w| w.version)
                .collect::<Vec<_>>(),
            vec![4, 5]
        );
        // Within the grace period nothing old is deleted: the reader goes on.
        assert_eq!((report.kept, report.removed.len()), (2, 0), "{report:?}");
        assert_eq!(report.young, 5);
        assert_eq!(reader.read(0, 1 << 20).unwrap(), models[5]);
        // The writer opened before the compaction: its version was rewritten
        // with the same bytes, so its flush moves onto the new chain.
        writer.write_at(0, b"late").unwrap();
        writer.flush().unwrap();
        assert_eq!(writer.version(), 6);
        let mut six = models[5].clone();
        six[..4].copy_from_slice(b"late");
        // Same versions, same bytes, new chain; older versions are gone.
        for version in [4, 5] {
            let old = Volume::open_version(&url, version, &r, &small()).unwrap();
            assert_eq!(old.read(0, 1 << 20).unwrap(), models[version as usize]);
            old.base.verify_with(true).unwrap();
        }
        assert!(matches!(
            Volume::open_version(&url, 3, &r, &small()),
            Err(VolumeError::NoSuchVersion {
                oldest: 4,
                latest: 6,
                ..
            })
        ));
        let versions = log(&url, &r, &small()).unwrap();
        assert_eq!(
            versions.iter().map(|x| x.version).collect::<Vec<_>>(),
            vec![6, 5, 4]
        );
        assert!(versions.iter().all(|x| x.status == "ok"), "{versions:?}");
        // After the grace period the 5 old snapshots go (and the one the late
        // writer's first attempt wrote): A (1 MiB of noise, needed by no kept
        // version) is freed.
        let report = gc(&url, &r, &small(), Duration::ZERO).unwrap();
        assert_eq!((report.kept, report.removed.len()), (3, 6), "{report:?}");
        let after = stored_bytes(&url);
        assert!(
            after < before - 900_000 && after < 1_300_000,
            "{url}: {before} -> {after}"
        );
        assert_eq!(
            Volume::open(&url, &r, small())
                .unwrap()
                .read(0, 1 << 20)
                .unwrap(),
            six
        );
        // Version 6 pushes version 4 out; then there is nothing to drop.
        let report = gc_with(&url, &r, &small(), Duration::ZERO, &retention).unwrap();
        assert_eq!(report.compaction.unwrap().dropped, Some((4, 4)));
        let report = gc_with(&url, &r, &small(), Duration::ZERO, &retention).unwrap();
        assert!(report.compaction.is_none(), "{report:?}");
        assert_eq!((report.kept, report.oldest_version), (2, 5));
        assert_eq!(
            Volume::open_version(&url, 5, &r, &small())
                .unwrap()
                .read(0, 1 << 20)
                .unwrap(),
            models[5]
        );
    }
}

#[test]
fn a_logged_writer_survives_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("v").display().to_string();
    let wal = dir.path().join("v.wal");
    let r = registry();
    let models = four_versions(&url, &r);
    let with_wal = VolumeOptions {
        wal: Some(wal.clone()),
        ..small()
    };
    {
        let mut v = Volume::open(&url, &r, with_wal.clone()).unwrap();
        v.write_at(7, b"logged").unwrap();
        v.truncate(900_000).unwrap();
        // Crash: nothing flushed.
    }
    let keep_one = Retention {
        keep_last: Some(1),
        keep_within: None,
    };
    let report = gc_with(&url, &r, &small(), DEFAULT_GC_GRACE, &keep_one).unwrap();
    assert_eq!(report.compaction.unwrap().dropped, Some((1, 4)));
    // The log is based on the old root of version 5, still in the store: the
    // writes apply to the rewritten version 5 and the log moves onto it.
    let v = Volume::open(&url, &r, with_wal.clone()).unwrap();
    let mut model = models[5][..900_000].to_vec();
    model[7..13].copy_from_slice(b"logged");
    assert_eq!(
        (v.version(), v.read(0, 900_000).unwrap()),
        (5, model.clone())
    );
    drop(v);
    let report = gc(&url, &r, &small(), Duration::ZERO).unwrap();
    assert_eq!(report.removed.len(), 5);
    let mut v = Volume::open(&url, &r, with_wal).unwrap();
    assert_eq!(v.read(0, 900_000).unwrap(), model);
    v.flush().unwrap();
    assert_eq!(
        Volume::open(&url, &r, small())
            .unwrap()
            .read(0, 900_000)
            .unwrap(),
        model
    );
}

#[test]
fn keep_within_and_the_volume_handle() {
    let url = format!("memory://volume-keep-within-{}", std::process::id());
    let r = registry();
    let models = four_versions(&url, &r);
    // Everything was committed within the last hour: nothing dropped.
    let hour = Retention {
        keep_last: None,
        keep_within: Some(Duration::from_secs(3600)),
    };
    let report = gc_with(&url, &r, &small(), Duration::ZERO, &hour).unwrap();
    assert!(report.compaction.is_none());
    assert_eq!((report.kept, report.oldest_version), (5, 1));
    // Through the handle, with a write pending: it is flushed, then only the
    // head is kept (nothing is within 0 s but the head), and the handle writes on.
    let mut v = Volume::open(&url, &r, small()).unwrap();
    v.write_at(10, b"pending").unwrap();
    let now = Retention {
        keep_last: None,
        keep_within: Some(Duration::ZERO),
    };
    let report = v.gc(Duration::ZERO, &now).unwrap();
    assert_eq!(report.compaction.unwrap().dropped, Some((1, 5)));
    assert_eq!((report.kept, report.oldest_version), (1, 6));
    assert_eq!(v.version(), 6);
    let mut six = models[5].clone();
    six[10..17].copy_from_slice(b"pending");
    assert_eq!(v.read(0, 1 << 20).unwrap(), six);
    assert!(!v.base.is_thin());
    v.write_at(20, b"more").unwrap();
    v.flush().unwrap();
    six[20..24].copy_from_slice(b"more");
    let again = Volume::open(&url, &r, small()).unwrap();
    assert_eq!((again.version(), again.read(0, 1 << 20).unwrap()), (7, six));
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

#[test]
fn zstd_flushes_store_changed_chunks_as_deltas_through_flush_squash_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("v").display().to_string();
    let r = registry();
    let zstd = VolumeOptions {
        codec: "zstd".into(),
        ..VolumeOptions::default()
    };
    let size = 2 << 20;
    let mut model = noise(size, 61);
    let mut v = Volume::create(&url, size as u64, &r, zstd.clone()).unwrap();
    v.write_at(0, &model).unwrap();
    v.flush().unwrap();
    let mut models = vec![Vec::new(), vec![0; size], model.clone()];
    // Small writes, some at places an earlier version changed (a delta of a
    // delta), while unchanged delta chunks of the base are copied as records.
    for (at, data) in [
        (300_000usize, &b"first"[..]),
        (1_500_000, b"second"),
        (300_010, b"third"),
        (1_000_000, b"fourth"),
    ] {
        v.write_at(at as u64, data).unwrap();
        model[at..at + data.len()].copy_from_slice(data);
        v.flush().unwrap();
        models.push(model.clone());
    }
    assert_eq!(v.version(), 6);
    let open_head = |root: &Hash32| {
        crate::open_archive(
            &format!("{url}/snapshots/{root}.hxz"),
            &r,
            ReadOptions::default(),
        )
        .unwrap()
    };
    let head = open_head(&v.root());
    let space = head.space().unwrap();
    // Each changed chunk (noise: stored raw when whole) is a delta of a few
    // hundred bytes.
    assert!(space.delta_chunks >= 1, "{space:?}");
    assert!(
        space.chunk_blobs < 4_000,
        "{} bytes of chunks for one small write: {space:?}",
        space.chunk_blobs
    );
    let delta_records = |a: &Archive| {
        a.chunk_records(0, a.len())
            .unwrap()
            .iter()
            .filter(|r| r.flags & hexz_format::layout::CHUNK_DELTA != 0)
            .map(|r| r.source)
            .collect::<Vec<_>>()
    };
    // The head reads delta chunks stored in its ancestors too.
    assert!(delta_records(&head).iter().any(|&s| s > 0));
    for version in 1..=6 {
        let old = Volume::open_version(&url, version, &r, &zstd).unwrap();
        old.base.verify_with(true).unwrap();
        assert_eq!(old.read(0, size).unwrap(), models[version as usize]);
    }
    let out = dir.path().join("squashed.hxz");
    crate::squash(&head, &out, &r, false).unwrap();
    let squashed = crate::open_archive_path(&out, &r, ReadOptions::default()).unwrap();
    assert!(delta_records(&squashed).is_empty());
    assert_eq!(
        squashed
            .read_entry(&squashed.entry(ENTRY_NAME).unwrap())
            .unwrap(),
        model
    );
    // A compaction rewrites the kept versions: the new chain reads the same.
    let retention = Retention {
        keep_last: Some(2),
        keep_within: None,
    };
    let report = gc_with(&url, &r, &zstd, Duration::ZERO, &retention).unwrap();
    assert_eq!(report.compaction.unwrap().dropped, Some((1, 4)));
    for version in [5, 6] {
        let kept = Volume::open_version(&url, version, &r, &zstd).unwrap();
        kept.base.verify_with(true).unwrap();
        assert_eq!(kept.read(0, size).unwrap(), models[version as usize]);
    }
    let head = open_head(&Volume::open(&url, &r, zstd.clone()).unwrap().root());
    assert!(head.space().unwrap().delta_chunks >= 1);
}

/// Keeping three or more versions: from the third kept version on, a rewritten
/// version is written against a chain whose new root is not stored yet.
#[test]
fn keep_last_three_and_four_of_a_zstd_volume_with_deltas() {
    let zstd = VolumeOptions {
        codec: "zstd".into(),
        ..VolumeOptions::default()
    };
    for keep in [3u64, 4] {
        for url in local_and_memory(&format!("volume-keep-{keep}")) {
            let r = registry();
            let size = 1 << 20;
            let mut model = noise(size, 71);
            let mut v = Volume::create(&url, size as u64, &r, zstd.clone()).unwrap();
            v.write_at(0, &model).unwrap();
            v.flush().unwrap();
            let mut models = vec![Vec::new(), vec![0; size], model.clone()];
            for (i, at) in [200_000usize, 600_000, 200_010, 900_000]
                .into_iter()
                .enumerate()
            {
                let data = format!("version {}", i + 3);
                v.write_at(at as u64, data.as_bytes()).unwrap();
                model[at..at + data.len()].copy_from_slice(data.as_bytes());
                v.flush().unwrap();
                models.push(model.clone());
            }
            assert_eq!(v.version(), 6);
            let retention = Retention {
                keep_last: Some(keep),
                keep_within: None,
            };
            let report = gc_with(&url, &r, &zstd, Duration::ZERO, &retention).unwrap();
            let compaction = report.compaction.unwrap();
            assert_eq!(compaction.dropped, Some((1, 6 - keep)), "{url}");
            assert_eq!(compaction.rewritten.len() as u64, keep, "{url}");
            // The old snapshots are gone (no grace): the new chain stands alone.
            assert_eq!(report.kept, keep, "{url}");
            for version in 7 - keep..=6 {
                let kept = Volume::open_version(&url, version, &r, &zstd).unwrap();
                kept.base.verify_with(true).unwrap();
                assert_eq!(
                    kept.read(0, size).unwrap(),
                    models[version as usize],
                    "{url}: version {version}"
                );
            }
            let mut v = Volume::open(&url, &r, zstd.clone()).unwrap();
            v.write_at(5, b"after").unwrap();
            v.flush().unwrap();
            model[5..10].copy_from_slice(b"after");
            let again = Volume::open(&url, &r, zstd.clone()).unwrap();
            assert_eq!((again.version(), again.read(0, size).unwrap()), (7, model));
        }
    }
}
