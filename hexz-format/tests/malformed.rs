//! Malformed input: damaged or hostile archives give a typed error naming the
//! structure and its offset. Never a panic, never an allocation sized by a length
//! nobody checked, never `Ok` with wrong data.
//!
//! Hostile cases are crafted by re-encoding: a field is changed and every CRC and
//! hash above it is recomputed, so only the check under test can catch it.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, LazyLock, Mutex};

use hexz_format::codec::{CodecProvider, Compressor, NoCompression};
use hexz_format::layout::{
    BLOB_RAW, CHUNK_ZERO, Directory, HEADER_LEN, MAGIC, MAX_CHUNK_LEN, MAX_DIRECTORY_LEN,
    MAX_ENVELOPE_LEN, MAX_PAGE_LEN, MAX_SECTIONS, MAX_STORED_CHUNK_LEN, MAX_STORED_PAGE_LEN,
    OPEN_TAIL_LEN, SECTION_CRITICAL, SECTION_PROVENANCE, TRAILER_LEN, Trailer, TreeRoot,
    VERSION_MAJOR, VERSION_MINOR,
};
use hexz_format::{
    Archive, ArchiveWriter, EntryKind, EntryMeta, Error, ReadAt, ReadOptions, UnknownCodec,
};

use crate::common::{build, codecs, noise, open, sample_files, small_options};

// ---------------------------------------------------------------------------
// The sample archive and how to exercise it.

/// What one entry of the sample reads back as.
struct Expect {
    name: &'static str,
    kind: EntryKind,
    data: Vec<u8>,
    target: Option<&'static str>,
}

impl Expect {
    fn file(name: &'static str, data: Vec<u8>) -> Self {
        Self {
            name,
            kind: EntryKind::File,
            data,
            target: None,
        }
    }

    fn dir(name: &'static str) -> Self {
        Self {
            name,
            kind: EntryKind::Dir,
            data: Vec::new(),
            target: None,
        }
    }

    fn symlink(name: &'static str, target: &'static str) -> Self {
        Self {
            name,
            kind: EntryKind::Symlink,
            data: Vec::new(),
            target: Some(target),
        }
    }
}

/// A few KB: text, noise, a duplicate, zeros, an empty file, a directory, a
/// symlink. The last entry is a non-empty file.
fn sample_entries() -> Vec<Expect> {
    let text: Vec<u8> = (0..100)
        .flat_map(|i| format!("line {i}: pack my box with five dozen liquor jugs\n").into_bytes())
        .collect();
    vec![
        Expect::dir("docs"),
        Expect::file("docs/a.txt", text.clone()),
        Expect::file("bin/noise.bin", noise(3, 1500)),
        Expect::file("docs/copy-of-a.txt", text),
        Expect::symlink("docs/latest", "a.txt"),
        Expect::file("zeros", vec![0; 6000]),
        Expect::file("empty", Vec::new()),
        Expect::file("tail.txt", b"the end\n".to_vec()),
    ]
}

const PROVENANCE: &[u8] = br#"{"tool":"hexz-format malformed tests"}"#;

/// The sample archive, with a provenance section.
pub(crate) fn sample(codec: Arc<dyn Compressor>) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), small_options(codec)).unwrap();
    for (i, e) in sample_entries().iter().enumerate() {
        let meta = EntryMeta {
            mode: match e.kind {
                EntryKind::Dir => 0o040755,
                EntryKind::Symlink => 0o120777,
                _ => 0o100644,
            },
            mtime: 1_600_000_000 + i as i64,
            mtime_nsec: 0,
            owner: None,
            columns: Vec::new(),
        };
        match e.kind {
            EntryKind::Dir => w.add_dir(e.name, meta).unwrap(),
            EntryKind::Symlink => w.add_symlink(e.name, e.target.unwrap(), meta).unwrap(),
            _ => w.add_bytes(e.name, &e.data, meta).unwrap(),
        }
    }
    w.add_section(SECTION_PROVENANCE, false, PROVENANCE.to_vec())
        .unwrap();
    w.finish().unwrap().0
}

pub(crate) fn lz4() -> Arc<dyn Compressor> {
    Arc::new(hexz_lz4::Lz4Compressor::new())
}

pub(crate) fn zstd() -> Arc<dyn Compressor> {
    Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap())
}

pub(crate) fn none() -> Arc<dyn Compressor> {
    Arc::new(NoCompression)
}

/// How an archive fared.
#[derive(Debug)]
enum Outcome {
    /// Some step returned this error (the first one).
    Rejected(Error),
    /// Every step succeeded and every entry read back as written.
    Accepted,
    /// Every step succeeded but something read back wrong.
    WrongData(String),
}

/// Open `bytes`, verify, list the entries, look each up by name, read each one and
/// the provenance section. Keeps going after a failed verify so that the read
/// paths meet the damage too. `Err` holds a panic message.
fn exercise(bytes: &[u8]) -> Result<Outcome, String> {
    panic::catch_unwind(AssertUnwindSafe(|| {
        let archive = match open_small(bytes) {
            Ok(a) => a,
            Err(e) => return Outcome::Rejected(e),
        };
        let verified = archive.verify().map(drop);
        let read = read_all(&archive);
        match (verified, read) {
            (Err(e), _) | (Ok(()), Err(e)) => Outcome::Rejected(e),
            (Ok(()), Ok(wrong)) if wrong.is_empty() => Outcome::Accepted,
            (Ok(()), Ok(wrong)) => Outcome::WrongData(wrong.join(", ")),
        }
    }))
    .map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// Open with small caches: thousands of opens of a few-KB archive.
fn open_small(bytes: &[u8]) -> hexz_format::Result<Archive> {
    let options = ReadOptions {
        chunk_cache_bytes: 1 << 20,
        page_cache_bytes: 1 << 20,
        ..ReadOptions::default()
    };
    Archive::open(
        Arc::new(hexz_format::MemorySource::new(bytes.to_vec(), "test.hxz")),
        &codecs(),
        options,
    )
}

/// Read everything; return what differs from [`sample_entries`].
fn read_all(archive: &Archive) -> Result<Vec<String>, Error> {
    static EXPECTED: LazyLock<Vec<Expect>> = LazyLock::new(sample_entries);
    let expected = &*EXPECTED;
    let listed = archive.entries().collect::<Result<Vec<_>, _>>()?;
    let mut wrong = Vec::new();
    if listed.len() != expected.len() {
        wrong.push(format!("{} entries listed", listed.len()));
    }
    for (want, e) in expected.iter().zip(&listed) {
        let by_name = archive.entry(want.name)?;
        let data = if e.kind.has_data() {
            archive.read_entry(e)?
        } else {
            Vec::new()
        };
        if e.name != want.name
            || e.kind != want.kind
            || data != want.data
            || e.target.as_deref() != want.target
            || by_name != *e
        {
            wrong.push(want.name.to_string());
        }
    }
    if archive.section(SECTION_PROVENANCE)?.as_deref() != Some(PROVENANCE) {
        wrong.push("provenance section".into());
    }
    Ok(wrong)
}

/// The error `open` must fail with.
#[track_caller]
pub(crate) fn open_err(bytes: &[u8]) -> Error {
    match open(bytes) {
        Err(e) => e,
        Ok(_) => panic!("open accepted a malformed archive"),
    }
}

/// Check an error's Display names the structure and the offset.
#[track_caller]
fn assert_names(e: &Error, what: &str, offset: u64) {
    let msg = e.to_string();
    assert!(
        msg.contains(what) && msg.contains(&format!("offset {offset}")),
        "`{msg}` should name {what} at offset {offset}"
    );
}

// ---------------------------------------------------------------------------
// Crafting helpers.

pub(crate) fn trailer_offset(bytes: &[u8]) -> usize {
    bytes.len() - TRAILER_LEN
}

pub(crate) fn trailer_of(bytes: &[u8]) -> Trailer {
    let at = trailer_offset(bytes);
    Trailer::decode(bytes[at..].try_into().unwrap(), at as u64).unwrap()
}

pub(crate) fn directory_of(bytes: &[u8]) -> Directory {
    let t = trailer_of(bytes);
    let start = t.directory_offset as usize;
    Directory::decode(
        &bytes[start..start + t.directory_len as usize],
        t.directory_offset,
    )
    .unwrap()
}

/// Edit the decoded trailer and re-encode it (CRC recomputed).
pub(crate) fn edit_trailer(bytes: &mut [u8], edit: impl FnOnce(&mut Trailer)) {
    let mut t = trailer_of(bytes);
    edit(&mut t);
    let at = trailer_offset(bytes);
    bytes[at..].copy_from_slice(&t.encode());
}

/// Edit the trailer's raw bytes, then recompute its CRC.
pub(crate) fn edit_trailer_bytes(bytes: &mut [u8], edit: impl FnOnce(&mut [u8])) {
    let at = trailer_offset(bytes);
    let t = &mut bytes[at..];
    edit(t);
    let crc = crc32fast::hash(&t[..48]);
    t[48..52].copy_from_slice(&crc.to_le_bytes());
}

/// Replace the directory's stored bytes by edited ones; fix the trailer's length and
/// CRC. (The writer puts the directory right before the trailer.)
pub(crate) fn edit_directory_bytes(bytes: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) {
    let t = trailer_of(bytes);
    let start = t.directory_offset as usize;
    assert_eq!(start + t.directory_len as usize, trailer_offset(bytes));
    let mut raw = bytes[start..start + t.directory_len as usize].to_vec();
    edit(&mut raw);
    bytes.truncate(start);
    bytes.extend_from_slice(&raw);
    let t = Trailer {
        directory_len: raw.len() as u32,
        directory_crc: crc32fast::hash(&raw),
        ..t
    };
    bytes.extend_from_slice(&t.encode());
}

/// Edit the decoded directory and re-encode it (trailer CRC recomputed).
pub(crate) fn edit_directory(bytes: &mut Vec<u8>, edit: impl FnOnce(&mut Directory)) {
    edit_directory_bytes(bytes, |raw| {
        let mut d = Directory::decode(raw, 0).unwrap();
        edit(&mut d);
        *raw = d.encode();
    });
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Tree {
    Chunks,
    Catalog,
    Names,
}

pub(crate) fn tree_mut(d: &mut Directory, t: Tree) -> &mut TreeRoot {
    match t {
        Tree::Chunks => &mut d.chunk_tree,
        Tree::Catalog => &mut d.catalog_tree,
        Tree::Names => &mut d.name_tree,
    }
}

/// How much of a page edit to paper over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fix {
    /// Leave the page ref alone: the CRC catches the edit.
    Nothing,
    /// Recompute the CRC only: the BLAKE3 hash catches the edit.
    Crc,
    /// Recompute CRC and hash: only checks on the decoded page can catch the edit.
    CrcAndHash,
}

/// Edit the stored bytes of `tree`'s root page in place and fix what `fix` says in
/// the directory (whose CRC is always fixed). Needs an archive whose pages are
/// stored raw (codec `none`); returns the page's offset.
pub(crate) fn edit_root_page(
    bytes: &mut Vec<u8>,
    tree: Tree,
    fix: Fix,
    edit: impl FnOnce(&mut [u8]),
) -> u64 {
    let mut dir = directory_of(bytes);
    let root = &mut tree_mut(&mut dir, tree).root;
    assert_ne!(root.flags & BLOB_RAW, 0, "page must be stored raw");
    let range = root.offset as usize..root.offset as usize + root.stored_len as usize;
    edit(&mut bytes[range.clone()]);
    if fix != Fix::Nothing {
        root.crc = crc32fast::hash(&bytes[range.clone()]);
    }
    if fix == Fix::CrcAndHash {
        root.hash = *blake3::hash(&bytes[range]).as_bytes();
    }
    let offset = root.offset;
    edit_directory(bytes, |d| *d = dir);
    offset
}

/// The decoded root page of `tree`.
pub(crate) fn root_page(bytes: &[u8], tree: Tree) -> Vec<u8> {
    let mut dir = directory_of(bytes);
    let codec = codecs().decompressor(&dir.codec).unwrap();
    let r = tree_mut(&mut dir, tree).root;
    let stored = &bytes[r.offset as usize..r.offset as usize + r.stored_len as usize];
    if r.flags & BLOB_RAW != 0 {
        return stored.to_vec();
    }
    let mut out = Vec::new();
    codec
        .decompress(stored, r.raw_len as usize, &mut out)
        .unwrap();
    out
}

const PAGE_HEADER: usize = 16;
const CHUNK_RECORD: usize = 64;

/// (offset in the page, blob offset, stored length) of the first stored chunk in
/// the chunk index, which must be a single leaf.
fn first_stored_chunk(bytes: &[u8]) -> (usize, u64, u32) {
    assert_eq!(
        directory_of(bytes).chunk_tree.depth,
        1,
        "want a single-leaf chunk index"
    );
    let page = root_page(bytes, Tree::Chunks);
    let count = u32_at(&page, 4) as usize;
    (0..count)
        .map(|i| PAGE_HEADER + i * CHUNK_RECORD)
        .find(|&at| page[at + 30] & CHUNK_ZERO == 0)
        .map(|at| (at, u64_at(&page, at + 8), u32_at(&page, at + 20)))
        .unwrap()
}

/// Offsets in the page of every entry of the catalog, which must be a single leaf.
fn catalog_entries(bytes: &[u8]) -> Vec<usize> {
    assert_eq!(
        directory_of(bytes).catalog_tree.depth,
        1,
        "want a single-leaf catalog"
    );
    let page = root_page(bytes, Tree::Catalog);
    let mut at = PAGE_HEADER;
    let mut out = Vec::new();
    for _ in 0..u32_at(&page, 4) {
        out.push(at);
        at += u32_at(&page, at) as usize;
    }
    assert_eq!(at, page.len());
    out
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A large file that is all zeros but for `head` at the start and `tail` at the end;
/// records every read.
#[derive(Debug)]
struct Sparse {
    size: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
    reads: Mutex<Vec<(u64, usize)>>,
}

impl Sparse {
    fn new(size: u64, head: &[u8], tail: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            size,
            head: head.to_vec(),
            tail: tail.to_vec(),
            reads: Mutex::new(Vec::new()),
        })
    }

    fn open(self: &Arc<Self>) -> hexz_format::Result<Archive> {
        Archive::open(self.clone(), &codecs(), ReadOptions::default())
    }

    fn reads(&self) -> Vec<(u64, usize)> {
        self.reads.lock().unwrap().clone()
    }
}

impl ReadAt for Sparse {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        let tail_start = self.size - self.tail.len() as u64;
        for (i, b) in buf.iter_mut().enumerate() {
            let pos = offset + i as u64;
            *b = if pos < self.head.len() as u64 {
                self.head[pos as usize]
            } else if pos >= tail_start {
                self.tail[(pos - tail_start) as usize]
            } else {
                0
            };
        }
        Ok(())
    }

    fn name(&self) -> String {
        "sparse.hxz".into()
    }
}

/// A valid header.
fn header() -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    h.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

// ---------------------------------------------------------------------------
// Short and foreign files.

#[test]
fn the_sample_is_accepted() {
    for codec in [none(), lz4(), zstd()] {
        let bytes = sample(codec);
        assert!(bytes.len() < 16 * 1024, "{} bytes", bytes.len());
        assert!(matches!(exercise(&bytes), Ok(Outcome::Accepted)));
    }
}

#[test]
fn empty_file_is_truncated() {
    let e = open_err(&[]);
    assert!(
        matches!(
            e,
            Error::Truncated {
                offset: 0,
                end: 80,
                size: 0,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("archive is 0 bytes"), "{e}");
}

#[test]
fn file_shorter_than_header_and_trailer_is_truncated() {
    let bytes = sample(lz4());
    for len in [1, HEADER_LEN, HEADER_LEN + TRAILER_LEN - 1] {
        let e = open_err(&bytes[..len]);
        assert!(
            matches!(e, Error::Truncated { end: 80, size, .. } if size == len as u64),
            "{len}: {e:?}"
        );
    }
    // A valid header and a valid trailer, overlapping: still too short.
    let mut short = header();
    short.extend_from_slice(&bytes[bytes.len() - TRAILER_LEN + 1..]);
    assert!(matches!(open_err(&short), Error::Truncated { .. }));
}

#[test]
fn every_truncation_is_rejected() {
    for codec in [lz4(), zstd()] {
        let bytes = sample(codec);
        for len in 0..bytes.len() {
            let e = match exercise(&bytes[..len]) {
                Ok(Outcome::Rejected(e)) => e,
                other => panic!("truncated to {len} of {} bytes: {other:?}", bytes.len()),
            };
            if len < HEADER_LEN + TRAILER_LEN {
                assert!(matches!(e, Error::Truncated { .. }), "{len}: {e:?}");
            } else {
                // The last 8 bytes are no longer the trailer's magic.
                let at = len as u64 - 8;
                assert!(
                    matches!(e, Error::BadMagic { what: "trailer", offset, .. } if offset == at),
                    "{len}: {e:?}"
                );
                assert_names(&e, "trailer", at);
            }
        }
    }
}

#[test]
fn cutting_bytes_off_the_front_is_rejected() {
    // Large enough that open does not see the header: verify must.
    let (bytes, _) = build(&sample_files(), small_options(lz4()));
    assert!(bytes.len() as u64 > 2 * OPEN_TAIL_LEN);
    for cut in [1, 8, HEADER_LEN, 1000] {
        let e = match exercise_any(&bytes[cut..]) {
            Some(e) => e,
            None => panic!("cut {cut}: accepted"),
        };
        assert!(e.is_corruption(), "cut {cut}: {e:?}");
    }
}

/// Open, verify and read every entry of any archive; the first error.
fn exercise_any(bytes: &[u8]) -> Option<Error> {
    let archive = match open(bytes) {
        Ok(a) => a,
        Err(e) => return Some(e),
    };
    if let Err(e) = archive.verify() {
        return Some(e);
    }
    for e in archive.entries() {
        match e.and_then(|e| {
            if e.kind.has_data() {
                archive.read_entry(&e).map(drop)
            } else {
                Ok(())
            }
        }) {
            Ok(()) => {}
            Err(e) => return Some(e),
        }
    }
    None
}

#[test]
fn random_garbage_is_rejected() {
    for (seed, len) in [
        0usize, 1, 15, 16, 79, 80, 81, 200, 4096, 65_536, 65_537, 300_000,
    ]
    .into_iter()
    .enumerate()
    {
        let garbage = noise(100 + seed as u64, len);
        let e = match exercise(&garbage) {
            Ok(Outcome::Rejected(e)) => e,
            other => panic!("{len} random bytes: {other:?}"),
        };
        if len < HEADER_LEN + TRAILER_LEN {
            assert!(
                matches!(e, Error::Truncated { size, .. } if size == len as u64),
                "{len}: {e:?}"
            );
        } else if len as u64 <= OPEN_TAIL_LEN {
            // The header is in the first read and is checked first.
            assert!(
                matches!(
                    e,
                    Error::BadMagic {
                        what: "header",
                        offset: 0,
                        ..
                    }
                ),
                "{len}: {e:?}"
            );
            assert!(e.to_string().contains("not a hexz archive"), "{e}");
        } else {
            let at = len as u64 - 8;
            assert!(
                matches!(e, Error::BadMagic { what: "trailer", offset, .. } if offset == at),
                "{len}: {e:?}"
            );
        }
    }
}

#[test]
fn garbage_between_valid_magics_is_rejected() {
    for len in [80usize, 1000, 70_000] {
        let mut bytes = noise(len as u64, len);
        bytes[..HEADER_LEN].copy_from_slice(&header());
        bytes[len - 8..].copy_from_slice(&MAGIC);
        let e = open_err(&bytes);
        let at = (len - TRAILER_LEN) as u64;
        // The CRC (checked before the version: garbage is damage, never "a newer
        // version").
        assert!(
            matches!(e, Error::Checksum { what: "trailer", offset, .. } if offset == at),
            "{len}: {e:?}"
        );
        // With a valid major version the CRC is what catches it.
        bytes[len - TRAILER_LEN + 32..len - TRAILER_LEN + 34]
            .copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        let e = open_err(&bytes);
        assert!(
            matches!(e, Error::Checksum { what: "trailer", offset, .. } if offset == at),
            "{len}: {e:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Trailer.

#[test]
fn bad_trailer_magic() {
    let mut bytes = sample(lz4());
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let e = open_err(&bytes);
    let at = (bytes.len() - 8) as u64;
    assert!(
        matches!(&e, Error::BadMagic { what: "trailer", offset, found, expected }
            if *offset == at && found[..7] == MAGIC[..7] && *expected == MAGIC),
        "{e:?}"
    );
    assert_names(&e, "trailer", at);
}

#[test]
fn trailer_crc_mismatch() {
    let mut bytes = sample(lz4());
    let at = trailer_offset(&bytes);
    // directory length and offset, envelope, flags: every field under the CRC.
    for field in [0, 8, 12, 16, 24, 28, 34, 40, 48] {
        let mut b = bytes.clone();
        b[at + field] ^= 0x01;
        let e = open_err(&b);
        assert!(
            matches!(e, Error::Checksum { what: "trailer", offset, expected, actual }
                if offset == at as u64 && expected != actual),
            "byte {field}: {e:?}"
        );
        assert_names(&e, "trailer", at as u64);
        assert!(e.to_string().contains("CRC32 mismatch"), "{e}");
    }
    // Fixing the CRC makes the same archive acceptable again.
    edit_trailer(&mut bytes, |_| {});
    assert!(matches!(exercise(&bytes), Ok(Outcome::Accepted)));
}

#[test]
fn newer_major_in_trailer_is_unsupported_even_with_a_valid_crc() {
    let bytes = sample(lz4());
    let at = trailer_offset(&bytes);
    let newer = VERSION_MAJOR + 1;
    // CRC recomputed: only the version check can refuse it.
    let mut b = bytes.clone();
    edit_trailer(&mut b, |t| t.major = newer);
    let e = open_err(&b);
    assert!(
        matches!(e, Error::UnsupportedVersion { major, minor: 0, oldest_major: 1, newest_major: 1 } if major == newer),
        "{e:?}"
    );
    assert!(e.to_string().contains("upgrade hexz"), "{e}");
    // CRC not recomputed: a changed version byte is damage, not a newer format
    // (every major keeps the CRC of bytes 0..48 where it is), so the CRC is what
    // refuses it, as corruption.
    for major in [newer, 0, u16::MAX] {
        let mut b = bytes.clone();
        b[at + 32..at + 34].copy_from_slice(&major.to_le_bytes());
        let e = open_err(&b);
        assert!(
            matches!(e, Error::Checksum { what: "trailer", offset, .. } if offset == at as u64),
            "major {major}: {e:?}"
        );
        assert!(e.is_corruption(), "{e}");
        assert!(!e.to_string().contains("upgrade"), "{e}");
    }
    // Older than supported.
    let mut b = bytes.clone();
    edit_trailer(&mut b, |t| t.major = 0);
    let e = open_err(&b);
    assert!(
        matches!(e, Error::UnsupportedVersion { major: 0, .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains("upgrade"), "{e}");
    // A newer minor of a supported major is fine as far as the trailer goes, but
    // the header must agree.
    let mut b = bytes;
    edit_trailer(&mut b, |t| t.minor = 7);
    let e = open_err(&b);
    assert!(matches!(e, Error::Corrupt { what: "header", .. }), "{e:?}");
    b[10..12].copy_from_slice(&7u16.to_le_bytes());
    // ... and so must the directory, which still says 1.0.
    let e = open_err(&b);
    assert!(
        matches!(
            e,
            Error::Corrupt {
                what: "directory",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn unknown_trailer_flags() {
    let original = sample(lz4());
    let mut bytes = original.clone();
    edit_trailer(&mut bytes, |t| t.flags = 1 << 7);
    let at = trailer_offset(&bytes) as u64;
    let e = open_err(&bytes);
    assert!(
        matches!(e, Error::Corrupt { what: "trailer", offset, .. } if offset == at + 28),
        "{e:?}"
    );
    // The encrypted flag without an envelope of key slots is corruption.
    let mut bytes = original;
    edit_trailer(&mut bytes, |t| t.flags = 1);
    let e = open_err(&bytes);
    assert!(
        matches!(&e, Error::Corrupt { what: "envelope", detail, .. } if detail.contains("without key slots")),
        "{e:?}"
    );
}

#[test]
fn directory_length_above_the_limit_errors_before_reading_it() {
    // A 1 TiB file whose trailer claims a 4 GiB directory at offset 16.
    let size = 1u64 << 40;
    let t = Trailer {
        directory_offset: HEADER_LEN as u64,
        directory_len: u32::MAX,
        major: VERSION_MAJOR,
        minor: VERSION_MINOR,
        ..Trailer::default()
    };
    let source = Sparse::new(size, &header(), &t.encode());
    let e = source.open().unwrap_err();
    let at = size - TRAILER_LEN as u64;
    assert!(
        matches!(e, Error::LimitExceeded { what: "directory length", offset, value, limit }
            if offset == at + 8 && value == u64::from(u32::MAX) && limit == u64::from(MAX_DIRECTORY_LEN)),
        "{e:?}"
    );
    assert_names(&e, "directory length", at + 8);
    // Nothing but the fixed-size tail was read (and so allocated).
    assert_eq!(
        source.reads(),
        [(size - OPEN_TAIL_LEN, OPEN_TAIL_LEN as usize)]
    );

    // One byte above the limit is refused too; at the limit, the directory is read
    // (and its CRC fails), and no read is larger than the limit.
    let over = Trailer {
        directory_len: MAX_DIRECTORY_LEN + 1,
        ..t
    };
    let source = Sparse::new(size, &header(), &over.encode());
    assert!(matches!(
        source.open().unwrap_err(),
        Error::LimitExceeded { .. }
    ));
    let at_limit = Trailer {
        directory_offset: 1 << 30,
        directory_len: MAX_DIRECTORY_LEN,
        ..t
    };
    let source = Sparse::new(size, &header(), &at_limit.encode());
    let e = source.open().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Checksum {
                what: "directory",
                offset: 0x4000_0000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        source.reads(),
        [
            (size - OPEN_TAIL_LEN, OPEN_TAIL_LEN as usize),
            (1 << 30, MAX_DIRECTORY_LEN as usize)
        ]
    );
}

#[test]
fn envelope_length_above_the_limit() {
    let mut bytes = sample(lz4());
    edit_trailer(&mut bytes, |t| {
        t.envelope_offset = HEADER_LEN as u64;
        t.envelope_len = MAX_ENVELOPE_LEN + 1;
    });
    let e = open_err(&bytes);
    assert!(
        matches!(e, Error::LimitExceeded { what: "envelope length", value, .. } if value == u64::from(MAX_ENVELOPE_LEN) + 1),
        "{e:?}"
    );
}

#[test]
fn directory_offset_outside_the_file() {
    let bytes = sample(lz4());
    let t = trailer_of(&bytes);
    let at = trailer_offset(&bytes) as u64;
    let len = u64::from(t.directory_len);
    for (case, offset) in [
        ("past the end", bytes.len() as u64 + 100),
        ("at the trailer", at),
        ("overlapping the trailer", at - len + 1),
        ("in the header", 0),
        ("in the header, ending in the body", HEADER_LEN as u64 - 1),
        ("overflowing", u64::MAX - 2),
    ] {
        let mut b = bytes.clone();
        edit_trailer(&mut b, |t| t.directory_offset = offset);
        let e = open_err(&b);
        assert!(
            matches!(&e, Error::Corrupt { what: "trailer", offset: o, detail } if *o == at && detail.contains("outside")),
            "{case}: {e:?}"
        );
        assert_names(&e, "trailer", at);
    }
}

#[test]
fn directory_crc_mismatch() {
    let bytes = sample(lz4());
    let t = trailer_of(&bytes);
    for i in [0, 40, t.directory_len as usize - 1] {
        let mut b = bytes.clone();
        b[t.directory_offset as usize + i] ^= 0x10;
        let e = open_err(&b);
        assert!(
            matches!(e, Error::Checksum { what: "directory", offset, expected, .. }
                if offset == t.directory_offset && expected == t.directory_crc),
            "{e:?}"
        );
        assert_names(&e, "directory", t.directory_offset);
    }
    // The trailer's CRC of the directory is checked too.
    let mut b = bytes;
    edit_trailer(&mut b, |t| t.directory_crc ^= 1);
    assert!(matches!(
        open_err(&b),
        Error::Checksum {
            what: "directory",
            ..
        }
    ));
}

// ---------------------------------------------------------------------------
// Directory.

#[test]
fn newer_major_in_the_directory_is_unsupported() {
    let bytes = sample(lz4());
    for (major, upgrade) in [(VERSION_MAJOR + 1, true), (u16::MAX, true), (0, false)] {
        let mut b = bytes.clone();
        edit_directory(&mut b, |d| d.major = major);
        // The trailer still says 1 and both CRCs are right.
        assert_eq!(trailer_of(&b).major, VERSION_MAJOR);
        let e = open_err(&b);
        assert!(
            matches!(e, Error::UnsupportedVersion { major: m, .. } if m == major),
            "{e:?}"
        );
        assert_eq!(e.to_string().contains("upgrade hexz"), upgrade, "{e}");
    }
}

#[test]
fn unknown_codec_lists_the_known_ones() {
    let mut bytes = sample(lz4());
    edit_directory(&mut bytes, |d| d.codec = "brotli".into());
    match open_err(&bytes) {
        Error::UnknownCodec(UnknownCodec { name, known }) => {
            assert_eq!(name, "brotli");
            assert_eq!(known, ["none", "zstd", "lz4"]);
        }
        e => panic!("{e:?}"),
    }
    let e = open_err(&bytes);
    assert_eq!(
        e.to_string(),
        "unknown codec `brotli` (known: none, zstd, lz4)"
    );
    assert!(!e.is_corruption());
}

#[test]
fn critical_unknown_section_kind_is_refused() {
    let build_with = |kind: u16, critical: bool| {
        let mut w = ArchiveWriter::new(Vec::new(), small_options(lz4())).unwrap();
        w.add_bytes("a", b"hello", EntryMeta::default()).unwrap();
        w.add_section(kind, critical, b"future stuff".to_vec())
            .unwrap();
        w.finish().unwrap().0
    };
    let bytes = build_with(777, true);
    let dir_offset = trailer_of(&bytes).directory_offset;
    let e = open_err(&bytes);
    assert!(
        matches!(&e, Error::Corrupt { what: "directory", offset, detail }
            if *offset > dir_offset && detail.contains("critical section kind 777")),
        "{e:?}"
    );
    // Not critical: ignored by readers that do not know it, still verified.
    let bytes = build_with(778, false);
    let archive = open(&bytes).unwrap();
    assert_eq!(archive.verify().unwrap().entries, 1);
    assert_eq!(archive.section(778).unwrap().unwrap(), b"future stuff");
    // A known kind marked critical is fine.
    let bytes = build_with(SECTION_PROVENANCE, true);
    open(&bytes).unwrap().verify().unwrap();
    // Crafted: the sample's provenance section turned into an unknown critical one,
    // and one with flags this version does not know.
    let mut b = sample(lz4());
    edit_directory(&mut b, |d| {
        d.sections[0].kind = 999;
        d.sections[0].flags = SECTION_CRITICAL;
    });
    assert!(matches!(
        open_err(&b),
        Error::Corrupt {
            what: "directory",
            ..
        }
    ));
    let mut b = sample(lz4());
    edit_directory(&mut b, |d| d.sections[0].flags = 1 << 5);
    let e = open_err(&b);
    assert!(
        matches!(&e, Error::Corrupt { what: "directory", detail, .. } if detail.contains("unknown section flags")),
        "{e:?}"
    );
}

#[test]
fn section_count_above_the_limit() {
    let mut bytes = sample(lz4());
    edit_directory_bytes(&mut bytes, |raw| put_u32(raw, 344, MAX_SECTIONS as u32 + 1));
    let e = open_err(&bytes);
    assert!(
        matches!(e, Error::LimitExceeded { what: "section count", value, .. } if value == MAX_SECTIONS as u64 + 1),
        "{e:?}"
    );
    // A count that disagrees with the directory length.
    let mut bytes = sample(lz4());
    edit_directory_bytes(&mut bytes, |raw| put_u32(raw, 344, 2));
    assert!(matches!(
        open_err(&bytes),
        Error::Corrupt {
            what: "directory",
            ..
        }
    ));
}

#[test]
fn page_ref_lengths_over_the_limits() {
    let bytes = sample(lz4());
    type Edit = fn(&mut Directory);
    let cases: [(&str, u64, Edit); 5] = [
        ("page length", u64::from(MAX_PAGE_LEN) + 1, |d| {
            d.chunk_tree.root.raw_len = MAX_PAGE_LEN + 1
        }),
        ("page length", u64::from(u32::MAX), |d| {
            d.catalog_tree.root.raw_len = u32::MAX
        }),
        (
            "stored page length",
            u64::from(MAX_STORED_PAGE_LEN) + 1,
            |d| d.name_tree.root.stored_len = MAX_STORED_PAGE_LEN + 1,
        ),
        ("page length", u64::from(MAX_PAGE_LEN) + 1, |d| {
            d.sections[0].page.raw_len = MAX_PAGE_LEN + 1
        }),
        ("stored page length", u64::from(u32::MAX), |d| {
            d.sections[0].page.stored_len = u32::MAX
        }),
    ];
    for (what, value, edit) in cases {
        let mut b = bytes.clone();
        edit_directory(&mut b, edit);
        let e = open_err(&b);
        assert!(
            matches!(e, Error::LimitExceeded { what: w, value: v, .. } if w == what && v == value),
            "{what}: {e:?}"
        );
        assert!(e.to_string().contains(what), "{e}");
    }
}

#[test]
fn page_ref_length_over_the_limit_in_an_internal_page() {
    let (mut bytes, _) = build(&sample_files(), small_options(none()));
    assert!(directory_of(&bytes).chunk_tree.depth >= 2);
    // The root is internal: records are an 8-byte key and a 56-byte page ref
    // (raw length at +12).
    edit_root_page(&mut bytes, Tree::Chunks, Fix::CrcAndHash, |p| {
        put_u32(p, PAGE_HEADER + 8 + 12, MAX_PAGE_LEN + 1)
    });
    let archive = open(&bytes).unwrap();
    for e in [
        archive.verify().unwrap_err(),
        archive.read_range(0, 1).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::LimitExceeded { what: "page length", value, .. } if value == u64::from(MAX_PAGE_LEN) + 1),
            "{e:?}"
        );
    }
}

#[test]
fn chunk_lengths_over_the_limits() {
    let bytes = sample(none());
    let (record, _, _) = first_stored_chunk(&bytes);
    for (what, field, value, limit) in [
        ("chunk length", 16, MAX_CHUNK_LEN + 1, MAX_CHUNK_LEN),
        ("chunk length", 16, u32::MAX, MAX_CHUNK_LEN),
        (
            "stored chunk length",
            20,
            MAX_STORED_CHUNK_LEN + 1,
            MAX_STORED_CHUNK_LEN,
        ),
    ] {
        let mut b = bytes.clone();
        edit_root_page(&mut b, Tree::Chunks, Fix::CrcAndHash, |p| {
            put_u32(p, record + field, value)
        });
        let archive = open(&b).unwrap();
        let entry = archive.entry("docs/a.txt").unwrap();
        for e in [
            archive.verify().unwrap_err(),
            archive.read_entry(&entry).unwrap_err(),
        ] {
            assert!(
                matches!(e, Error::LimitExceeded { what: w, value: v, limit: l, .. }
                    if w == what && v == u64::from(value) && l == u64::from(limit)),
                "{what}: {e:?}"
            );
        }
    }
    // A zero-length chunk is corrupt, not over a limit.
    let mut b = bytes;
    edit_root_page(&mut b, Tree::Chunks, Fix::CrcAndHash, |p| {
        put_u32(p, record + 16, 0)
    });
    let e = open(&b).unwrap().verify().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Corrupt {
                what: "chunk-index page",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn page_record_count_above_what_the_page_holds() {
    for (tree, what) in [
        (Tree::Chunks, "chunk-index page"),
        (Tree::Catalog, "catalog page"),
        (Tree::Names, "name-index page"),
    ] {
        let mut bytes = sample(none());
        let offset = edit_root_page(&mut bytes, tree, Fix::CrcAndHash, |p| {
            put_u32(p, 4, u32::MAX)
        });
        let e = open(&bytes).unwrap().verify().unwrap_err();
        assert!(
            matches!(e, Error::LimitExceeded { what: "page record count", offset: o, value, .. }
                if o == offset && value == u64::from(u32::MAX)),
            "{what}: {e:?}"
        );
    }
}

#[test]
fn hostile_entry_size_is_refused_before_allocating() {
    let bytes = sample(none());
    let entries = catalog_entries(&bytes);
    let last = *entries.last().unwrap();
    for size in [1u64 << 62, u64::MAX / 2, 9] {
        // `tail.txt` is 8 bytes and ends the stream: 9 is one past it.
        let mut b = bytes.clone();
        edit_root_page(&mut b, Tree::Catalog, Fix::CrcAndHash, |p| {
            put_u64(p, last + 32, size)
        });
        let archive = open(&b).unwrap();
        let e = archive.entry("tail.txt").unwrap();
        assert_eq!(e.size, size);
        let err = archive.read_entry(&e).unwrap_err();
        assert!(err.is_corruption(), "{size}: {err:?}");
        assert!(err.to_string().contains("tail.txt"), "{err}");
        let err = archive.verify().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corrupt {
                    what: "catalog",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Pages and blobs.

#[test]
fn flipped_byte_in_an_index_page() {
    let bytes = sample(none());
    for (tree, what) in [
        (Tree::Chunks, "chunk-index page"),
        (Tree::Catalog, "catalog page"),
        (Tree::Names, "name-index page"),
    ] {
        for fix in [Fix::Nothing, Fix::Crc] {
            let mut b = bytes.clone();
            let offset = edit_root_page(&mut b, tree, fix, |p| p[PAGE_HEADER + 3] ^= 0x20);
            let archive = open(&b).unwrap();
            // The read path that first meets the page.
            let read = match tree {
                Tree::Chunks => archive.read_range(0, 1).map(drop),
                Tree::Catalog => archive.entries().next().unwrap().map(drop),
                Tree::Names => archive.entry("docs/a.txt").map(drop),
            };
            for e in [read.unwrap_err(), archive.verify().unwrap_err()] {
                match fix {
                    Fix::Nothing => assert!(
                        matches!(e, Error::Checksum { what: w, offset: o, .. } if w == what && o == offset),
                        "{what}: {e:?}"
                    ),
                    _ => assert!(
                        matches!(e, Error::HashMismatch { what: w, offset: o, .. } if w == what && o == offset),
                        "{what}: {e:?}"
                    ),
                }
                assert_names(&e, what, offset);
            }
        }
    }
}

#[test]
fn flipped_byte_in_a_compressed_index_page() {
    let bytes = sample(lz4());
    let r = directory_of(&bytes).catalog_tree.root;
    assert_eq!(r.flags & BLOB_RAW, 0, "want a compressed page");
    let mut b = bytes.clone();
    b[r.offset as usize + r.stored_len as usize / 2] ^= 0x01;
    let archive = open(&b).unwrap();
    let e = archive.entries().next().unwrap().unwrap_err();
    assert!(
        matches!(e, Error::Checksum { what: "catalog page", offset, .. } if offset == r.offset),
        "{e:?}"
    );
}

#[test]
fn flipped_byte_in_a_chunk_blob() {
    for codec in [lz4(), none()] {
        let bytes = sample(codec.clone());
        let (_, blob, stored_len) = first_stored_chunk(&bytes);
        for i in [0, stored_len as usize / 2, stored_len as usize - 1] {
            let mut b = bytes.clone();
            b[blob as usize + i] ^= 0x04;
            let archive = open(&b).unwrap();
            let entry = archive.entry("docs/a.txt").unwrap();
            for e in [
                archive.read_entry(&entry).unwrap_err(),
                archive.verify().unwrap_err(),
            ] {
                assert!(
                    matches!(e, Error::Checksum { what: "chunk", offset, .. } if offset == blob),
                    "{}: {e:?}",
                    codec.name()
                );
                assert_names(&e, "chunk", blob);
            }
        }
    }
}

#[test]
fn chunk_with_a_wrong_id_is_caught_by_verify() {
    // CRC right, content right, but the BLAKE3 id in the record is not the
    // content's: only verify (or `verify_chunks`) can tell.
    let bytes = sample(none());
    let (record, blob, _) = first_stored_chunk(&bytes);
    let mut b = bytes.clone();
    edit_root_page(&mut b, Tree::Chunks, Fix::CrcAndHash, |p| {
        p[record + 32] ^= 1
    });
    let e = open(&b).unwrap().verify().unwrap_err();
    assert!(
        matches!(e, Error::HashMismatch { what: "chunk", offset, .. } if offset == blob),
        "{e:?}"
    );
    let options = ReadOptions {
        verify_chunks: true,
        ..ReadOptions::default()
    };
    let archive = Archive::open(
        Arc::new(hexz_format::MemorySource::new(b, "test.hxz")),
        &codecs(),
        options,
    )
    .unwrap();
    let entry = archive.entry("docs/a.txt").unwrap();
    assert!(matches!(
        archive.read_entry(&entry),
        Err(Error::HashMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------
// Reserved bytes.

#[test]
fn reserved_bytes_in_the_header() {
    let small = sample(lz4());
    let (large, _) = build(&sample_files(), small_options(lz4()));
    for bytes in [small, large] {
        let large = bytes.len() as u64 > OPEN_TAIL_LEN;
        for i in 12..16 {
            let mut b = bytes.clone();
            b[i] = 1;
            let e = if large {
                // Open reads only the tail; verify reads the header.
                open(&b).unwrap().verify().unwrap_err()
            } else {
                open_err(&b)
            };
            assert!(
                matches!(e, Error::Corrupt { what: "header", .. }),
                "{i}: {e:?}"
            );
        }
        // Version bytes that disagree with the trailer's.
        for i in 8..12 {
            let mut b = bytes.clone();
            b[i] ^= 1;
            let e = if large {
                open(&b).unwrap().verify().unwrap_err()
            } else {
                open_err(&b)
            };
            assert!(
                matches!(&e, Error::Corrupt { what: "header", detail, .. } if detail.contains("version")),
                "{i}: {e:?}"
            );
        }
    }
}

#[test]
fn reserved_bytes_in_the_trailer() {
    let bytes = sample(lz4());
    let at = trailer_offset(&bytes) as u64;
    for i in 36..48 {
        let mut b = bytes.clone();
        edit_trailer_bytes(&mut b, |t| t[i] = 0x80);
        let e = open_err(&b);
        assert!(
            matches!(&e, Error::Corrupt { what: "trailer", offset, detail }
                if (at + 36..=at + 48).contains(offset) && detail.contains("reserved")),
            "{i}: {e:?}"
        );
    }
    // After the CRC, before the magic: not under the CRC, checked on its own.
    for i in 52..56 {
        let mut b = bytes.clone();
        b[at as usize + i] = 1;
        let e = open_err(&b);
        assert!(
            matches!(&e, Error::Corrupt { what: "trailer", offset, detail }
                if *offset == at + 52 && detail.contains("reserved")),
            "{i}: {e:?}"
        );
    }
}

#[test]
fn reserved_bytes_in_the_directory() {
    let bytes = sample(lz4());
    let dir_offset = trailer_of(&bytes).directory_offset;
    // flags, after hash kind, each tree root's padding and page-ref padding, after
    // the section count, in the section descriptor.
    let mut positions = vec![8, 11, 14, 15, 348, 351, 352 + 4, 352 + 7, 352 + 8 + 21];
    for root in [128, 200, 272] {
        positions.extend([root + 1, root + 7, root + 16 + 21, root + 16 + 23]);
    }
    for i in positions {
        let mut b = bytes.clone();
        edit_directory_bytes(&mut b, |raw| raw[i] = 0x01);
        let e = open_err(&b);
        assert!(
            matches!(&e, Error::Corrupt { what: "directory", offset, detail }
                if *offset > dir_offset && *offset <= dir_offset + i as u64 + 8 && detail.contains("reserved")),
            "{i}: {e:?}"
        );
    }
}

#[test]
fn reserved_bytes_in_pages() {
    let bytes = sample(none());
    let (record, _, _) = first_stored_chunk(&bytes);
    let entry = catalog_entries(&bytes)[1];
    let cases: Vec<(Tree, usize, &str)> = vec![
        (Tree::Chunks, 2, "chunk-index page"),
        (Tree::Catalog, 3, "catalog page"),
        (Tree::Names, 2, "name-index page"),
        (Tree::Chunks, record + 31, "chunk-index page"),
        (Tree::Catalog, entry + 43, "catalog page"),
        (Tree::Catalog, entry + 48, "catalog page"),
        (Tree::Catalog, entry + 55, "catalog page"),
    ];
    for (tree, at, what) in cases {
        let mut b = bytes.clone();
        edit_root_page(&mut b, tree, Fix::CrcAndHash, |p| p[at] = 0x02);
        let e = open(&b).unwrap().verify().unwrap_err();
        assert!(
            matches!(&e, Error::Corrupt { what: w, detail, .. } if *w == what && detail.contains("reserved")),
            "{what} byte {at}: {e:?}"
        );
    }
}

#[test]
fn entry_flags_and_owner() {
    let bytes = sample(none());
    let entry = catalog_entries(&bytes)[1];
    // An unknown flag bit.
    let mut b = bytes.clone();
    edit_root_page(&mut b, Tree::Catalog, Fix::CrcAndHash, |p| {
        p[entry + 5] = 0x02
    });
    let e = open(&b).unwrap().verify().unwrap_err();
    assert!(
        matches!(&e, Error::Corrupt { what: "catalog page", detail, .. } if detail.contains("unknown entry flags 0x2")),
        "{e:?}"
    );
    // The has-owner flag makes bytes 48..56 the uid and gid.
    let mut b = bytes.clone();
    edit_root_page(&mut b, Tree::Catalog, Fix::CrcAndHash, |p| {
        p[entry + 5] = 0x01;
        p[entry + 48..entry + 52].copy_from_slice(&1000u32.to_le_bytes());
        p[entry + 52..entry + 56].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    let archive = open(&b).unwrap();
    archive.verify().unwrap();
    let owned = archive.entry_by_id(1).unwrap();
    assert_eq!(
        owned.owner,
        Some(hexz_format::Owner {
            uid: 1000,
            gid: u32::MAX
        })
    );
    assert_eq!(open(&bytes).unwrap().entry_by_id(1).unwrap().owner, None);
}

// ---------------------------------------------------------------------------
// Every byte.

#[test]
fn every_flipped_byte_is_caught() {
    // lz4 with three flips per byte; stored-raw blobs with one.
    for (codec, masks) in [(lz4(), &[0x01u8, 0x80, 0xff][..]), (none(), &[0xff][..])] {
        let bytes = sample(codec.clone());
        assert!(matches!(exercise(&bytes), Ok(Outcome::Accepted)));
        let mut failures = Vec::new();
        for pos in 0..bytes.len() {
            for &mask in masks {
                let mut b = bytes.clone();
                b[pos] ^= mask;
                match exercise(&b) {
                    Ok(Outcome::Rejected(e)) => {
                        // A flipped version byte too: damage, not "upgrade hexz".
                        if !e.is_corruption() {
                            failures.push(format!(
                                "{pos} ^ {mask:#04x}: not a corruption error: {e:?}"
                            ));
                        }
                    }
                    Ok(Outcome::Accepted) => {
                        failures.push(format!("{pos} ^ {mask:#04x}: accepted"))
                    }
                    Ok(Outcome::WrongData(d)) => failures.push(format!(
                        "{pos} ^ {mask:#04x}: accepted with wrong data in {d}"
                    )),
                    Err(panic) => failures.push(format!("{pos} ^ {mask:#04x}: panicked: {panic}")),
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} ({} bytes): {} failures:\n{}",
            codec.name(),
            bytes.len(),
            failures.len(),
            failures.join("\n")
        );
    }
}
