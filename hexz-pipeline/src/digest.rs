//! Input digests for provenance: one BLAKE3 per recipe input, over the entries
//! it produced, in archive order.
//!
//! Each entry contributes one record (all integers little-endian):
//!
//! ```text
//! u8   kind (1 file, 2 dir, 3 symlink, 4 record)
//! u32  name length, then the name (UTF-8)
//! u64  size in bytes
//! u32  mode
//! i64  mtime seconds
//! u32  mtime nanoseconds
//! u8   1 if an owner is recorded, else 0
//! u32  uid, u32 gid (0 without an owner)
//! u32  symlink target length, then the target (UTF-8; length 0 for other kinds)
//! 32   BLAKE3 of the entry's content bytes (of no bytes for dirs and symlinks)
//! ```
//!
//! The content hash is computed while the bytes stream into the archive writer
//! ([`ContentHasher`] wraps the reader), so no file is read twice. The digest is
//! a function of the archived entries alone: no clock, no absolute path, no
//! thread count.

use std::io::Read;

use hexz_format::layout::EntryKind;
use hexz_format::{EntryMeta, Hash32};

/// The running digest of one input.
#[derive(Debug, Clone)]
pub struct InputDigest {
    hasher: blake3::Hasher,
    entries: u64,
    bytes: u64,
}

impl Default for InputDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl InputDigest {
    /// An empty digest (no entries).
    pub fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            entries: 0,
            bytes: 0,
        }
    }

    /// Add one archived entry: its metadata, its size, its symlink target and the
    /// BLAKE3 of its content (see [`ContentHasher`]; `blake3::hash(b"")` for
    /// entries without bytes).
    pub fn add(
        &mut self,
        kind: EntryKind,
        name: &str,
        size: u64,
        meta: &EntryMeta,
        target: Option<&str>,
        content: &blake3::Hash,
    ) {
        let h = &mut self.hasher;
        h.update(&[kind as u8]);
        h.update(&(name.len() as u32).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&size.to_le_bytes());
        h.update(&meta.mode.to_le_bytes());
        h.update(&meta.mtime.to_le_bytes());
        h.update(&meta.mtime_nsec.to_le_bytes());
        let (has_owner, uid, gid) = meta.owner.map_or((0u8, 0, 0), |o| (1, o.uid, o.gid));
        h.update(&[has_owner]);
        h.update(&uid.to_le_bytes());
        h.update(&gid.to_le_bytes());
        let target = target.unwrap_or("");
        h.update(&(target.len() as u32).to_le_bytes());
        h.update(target.as_bytes());
        h.update(content.as_bytes());
        self.entries += 1;
        self.bytes += size;
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Content bytes of the entries added so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest of the entries added so far.
    pub fn finish(&self) -> Hash32 {
        Hash32(*self.hasher.finalize().as_bytes())
    }
}

/// A reader that hashes the bytes passing through it (BLAKE3), and reports
/// their count to `progress`.
pub struct ContentHasher<'a, R> {
    inner: R,
    hasher: blake3::Hasher,
    progress: &'a dyn Fn(u64),
}

impl<R> std::fmt::Debug for ContentHasher<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentHasher").finish_non_exhaustive()
    }
}

impl<'a, R: Read> ContentHasher<'a, R> {
    /// Wrap `inner`; `progress` is called with the size of every read.
    pub fn new(inner: R, progress: &'a dyn Fn(u64)) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            progress,
        }
    }

    /// BLAKE3 of every byte read so far.
    pub fn hash(&self) -> blake3::Hash {
        self.hasher.finalize()
    }
}

impl<R: Read> Read for ContentHasher<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        (self.progress)(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use hexz_format::Owner;

    fn meta() -> EntryMeta {
        EntryMeta {
            mode: 0o100644,
            mtime: 1_700_000_000,
            mtime_nsec: 5,
            owner: Some(Owner {
                uid: 1000,
                gid: 100,
            }),
            columns: Vec::new(),
        }
    }

    #[test]
    fn record_layout_is_as_documented() {
        let content = blake3::hash(b"hello");
        let mut d = InputDigest::new();
        d.add(EntryKind::File, "a.txt", 5, &meta(), None, &content);
        let mut want = Vec::new();
        want.push(1u8);
        want.extend_from_slice(&5u32.to_le_bytes());
        want.extend_from_slice(b"a.txt");
        want.extend_from_slice(&5u64.to_le_bytes());
        want.extend_from_slice(&0o100644u32.to_le_bytes());
        want.extend_from_slice(&1_700_000_000i64.to_le_bytes());
        want.extend_from_slice(&5u32.to_le_bytes());
        want.push(1);
        want.extend_from_slice(&1000u32.to_le_bytes());
        want.extend_from_slice(&100u32.to_le_bytes());
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(content.as_bytes());
        assert_eq!(d.finish().0, *blake3::hash(&want).as_bytes());
        assert_eq!((d.entries(), d.bytes()), (1, 5));
    }

    #[test]
    fn every_field_counts() {
        let content = blake3::hash(b"x");
        let base = {
            let mut d = InputDigest::new();
            d.add(EntryKind::File, "a", 1, &meta(), None, &content);
            d.finish()
        };
        type Variant<'a> = Box<dyn Fn(&mut InputDigest) + 'a>;
        let variants: Vec<Variant> = vec![
            Box::new(|d| d.add(EntryKind::Record, "a", 1, &meta(), None, &content)),
            Box::new(|d| d.add(EntryKind::File, "b", 1, &meta(), None, &content)),
            Box::new(|d| d.add(EntryKind::File, "a", 2, &meta(), None, &content)),
            Box::new(|d| {
                let m = EntryMeta {
                    owner: None,
                    ..meta()
                };
                d.add(EntryKind::File, "a", 1, &m, None, &content)
            }),
            Box::new(|d| {
                let m = EntryMeta {
                    mtime_nsec: 6,
                    ..meta()
                };
                d.add(EntryKind::File, "a", 1, &m, None, &content)
            }),
            Box::new(|d| d.add(EntryKind::File, "a", 1, &meta(), Some("t"), &content)),
            Box::new(|d| d.add(EntryKind::File, "a", 1, &meta(), None, &blake3::hash(b"y"))),
        ];
        for (i, v) in variants.iter().enumerate() {
            let mut d = InputDigest::new();
            v(&mut d);
            assert_ne!(d.finish(), base, "variant {i}");
        }
    }

    #[test]
    fn content_hasher_hashes_what_it_reads() {
        let data = vec![7u8; 100_000];
        let seen = std::cell::Cell::new(0);
        let progress = |n| seen.set(seen.get() + n);
        let mut r = ContentHasher::new(&data[..], &progress);
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).unwrap();
        assert_eq!(r.hash(), blake3::hash(&data));
        assert_eq!(seen.get(), 100_000);
    }
}
