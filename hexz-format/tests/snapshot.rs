//! Metadata snapshots: `Archive::metadata_snapshot` on one handle,
//! `Archive::open_with_metadata` on another (a loader's worker process).

use std::io;
use std::sync::{Arc, Mutex};

use crate::common::{build, codecs, noise, small_options};
use hexz_format::crypto::keyfile::PublicKeyKind;
use hexz_format::sign::SignatureProblem;
use hexz_format::{
    Archive, Error, MemorySource, ReadAt, ReadOptions, SecretKeyFile, Signing, TrustPolicy,
};

/// Records every range the reader asks its source for.
#[derive(Debug)]
struct Recording {
    inner: MemorySource,
    reads: Mutex<Vec<(u64, usize)>>,
}

impl Recording {
    fn new(bytes: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            inner: MemorySource::new(bytes.to_vec(), "mem"),
            reads: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Vec<(u64, usize)> {
        std::mem::take(&mut self.reads.lock().unwrap())
    }
}

impl ReadAt for Recording {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        self.inner.read_exact_at(offset, buf)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

fn archive_bytes() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("s/{i:05}"),
                noise(i, 200 + (i as usize * 53) % 1500),
            )
        })
        .collect();
    let (bytes, _) = build(
        &files,
        small_options(Arc::new(hexz_lz4::Lz4Compressor::new())),
    );
    (bytes, files)
}

/// Where each entry's bytes are in the logical stream (what a dataset hands to
/// its workers along with the snapshot).
fn entry_ranges(a: &Archive) -> Vec<(String, u64, usize)> {
    a.entries()
        .map(|e| {
            let e = e.unwrap();
            (e.name, e.offset, e.size as usize)
        })
        .collect()
}

#[test]
fn a_primed_open_reads_no_metadata() {
    let (bytes, files) = archive_bytes();
    let parent_source = Recording::new(&bytes);
    let parent = Archive::open(parent_source.clone(), &codecs(), ReadOptions::default()).unwrap();
    let ranges = entry_ranges(&parent);
    parent_source.take();
    let snapshot = parent.metadata_snapshot(u64::MAX).unwrap();
    assert!(
        parent.directory().chunk_tree.depth >= 2,
        "a tree of several levels"
    );
    // The parent fetched the chunk index a level per request; its pages are now
    // cached there too.
    let fetched = parent_source.take();
    assert!(fetched.len() <= usize::from(parent.directory().chunk_tree.depth));
    parent.chunk_records(0, parent.len()).unwrap();
    assert!(parent_source.take().is_empty());

    // A worker: the open and every chunk-index lookup come from the snapshot.
    let source = Recording::new(&bytes);
    let worker =
        Archive::open_with_metadata(source.clone(), &codecs(), ReadOptions::default(), &snapshot)
            .unwrap();
    assert_eq!(worker.root_hash(), parent.root_hash());
    assert_eq!(source.take(), []);
    let records = worker.chunk_records(0, worker.len()).unwrap();
    assert_eq!(source.take(), [], "no index page fetched");
    // Sample reads fetch chunk blobs only.
    let blobs: Vec<(u64, usize)> = records
        .iter()
        .filter(|r| !r.is_zero())
        .map(|r| (r.blob_offset, r.stored_len as usize))
        .collect();
    for ((name, offset, size), (file, data)) in ranges.iter().zip(&files) {
        assert_eq!(name, file);
        assert_eq!(&worker.read_range(*offset, *size).unwrap(), data);
    }
    let reads = source.take();
    assert!(!reads.is_empty());
    assert!(reads.iter().all(|r| blobs.contains(r)), "{reads:?}");

    // Without room for the index, the snapshot is the tail: the worker loads
    // the pages outside it itself.
    let small = parent.metadata_snapshot(0).unwrap();
    assert!(small.len() < snapshot.len());
    let source = Recording::new(&bytes);
    let worker =
        Archive::open_with_metadata(source.clone(), &codecs(), ReadOptions::default(), &small)
            .unwrap();
    assert_eq!(source.take(), []);
    worker.chunk_records(0, worker.len()).unwrap();
    assert!(!source.take().is_empty());
}

#[test]
fn snapshot_bytes_are_checked_like_fetched_ones() {
    let (bytes, _) = archive_bytes();
    let parent = crate::common::open(&bytes).unwrap();
    let snapshot = parent.metadata_snapshot(u64::MAX).unwrap();
    let open = |snap: &[u8]| {
        Archive::open_with_metadata(
            Arc::new(MemorySource::new(bytes.clone(), "mem")),
            &codecs(),
            ReadOptions::default(),
            snap,
        )
    };
    let use_all = |a: Archive| {
        a.chunk_records(0, a.len())?;
        a.read_range(0, a.len() as usize).map(drop)
    };
    // Flip bytes of the snapshot: the open, an index lookup or a chunk read
    // fails; what passes never changes what is read.
    let mut caught = 0;
    for i in (20..snapshot.len()).step_by(61) {
        let mut bad = snapshot.clone();
        bad[i] ^= 0x20;
        match open(&bad).and_then(use_all) {
            Err(_) => caught += 1,
            Ok(()) => {
                // Only a byte the reader never uses may change without effect.
                let changed = open(&bad).unwrap();
                assert_eq!(changed.root_hash(), parent.root_hash(), "flip at {i}");
                assert_eq!(
                    changed.read_range(0, changed.len() as usize).unwrap(),
                    parent.read_range(0, parent.len() as usize).unwrap()
                );
            }
        }
    }
    assert!(caught > 0);

    // Malformed snapshots are errors naming the snapshot, wherever cut.
    for cut in (0..64).chain((64..snapshot.len()).step_by(97)) {
        let e = open(&snapshot[..cut]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Corrupt {
                    what: "metadata snapshot",
                    ..
                }
            ),
            "cut at {cut}: {e}"
        );
    }
    let mut bad = snapshot.clone();
    bad[0] = b'X';
    assert!(matches!(
        open(&bad).unwrap_err(),
        Error::Corrupt {
            what: "metadata snapshot",
            offset: 0,
            ..
        }
    ));
    // Another archive size: a different object.
    let mut bad = snapshot.clone();
    bad[8] ^= 1;
    assert!(matches!(
        open(&bad).unwrap_err(),
        Error::InvalidSetting {
            setting: "metadata snapshot",
            ..
        }
    ));
    // A count the bytes cannot hold is refused before allocating.
    let mut bad = snapshot.clone();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        open(&bad).unwrap_err(),
        Error::Corrupt {
            what: "metadata snapshot",
            offset: 16,
            ..
        }
    ));
    // A range past the end of the archive.
    let mut bad = snapshot.clone();
    bad[20..28].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    assert!(matches!(
        open(&bad).unwrap_err(),
        Error::Corrupt {
            what: "metadata snapshot",
            offset: 20,
            ..
        }
    ));
    // Trailing bytes.
    let mut bad = snapshot.clone();
    bad.push(0);
    assert!(matches!(
        open(&bad).unwrap_err(),
        Error::Corrupt {
            what: "metadata snapshot",
            ..
        }
    ));
}

#[test]
fn a_primed_open_checks_signatures_as_an_open_does() {
    let (_, files) = archive_bytes();
    let signer = |seed: u8| SecretKeyFile::from_seed(PublicKeyKind::Ed25519, [seed; 32]);
    let mut o = small_options(Arc::new(hexz_lz4::Lz4Compressor::new()));
    o.signing = Some(Signing {
        key: Arc::new(signer(1).signing_key().unwrap()),
        detached: false,
    });
    let (bytes, _) = build(&files, o);
    let trusting = |seed: u8| ReadOptions {
        trust: Some(TrustPolicy {
            keys: vec![signer(seed).public()],
            detached: None,
        }),
        ..ReadOptions::default()
    };
    let open = |options: ReadOptions, snap: &[u8]| {
        Archive::open_with_metadata(
            Arc::new(MemorySource::new(bytes.clone(), "mem")),
            &codecs(),
            options,
            snap,
        )
    };
    let parent = crate::common::open(&bytes).unwrap();
    let snapshot = parent.metadata_snapshot(u64::MAX).unwrap();
    let worker = open(trusting(1), &snapshot).unwrap();
    assert!(worker.is_trusted());
    assert_eq!(worker.root_hash(), parent.root_hash());
    let e = open(trusting(2), &snapshot).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::BadSignature {
                problem: SignatureProblem::Untrusted { .. },
                ..
            }
        ),
        "{e:?}"
    );
}
