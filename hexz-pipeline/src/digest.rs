//! Input digests for provenance: one BLAKE3 per recipe input, over the entries
//! it produced, in archive order, then over their content.
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
//! ```
//!
//! After the last record come the 32 bytes of the input's *content digest*: each
//! input is one segment of the archive's logical stream (the writer cuts a chunk
//! boundary at its end and restarts FastCDC there, see
//! [`ArchiveWriter::end_segment`](hexz_format::ArchiveWriter::end_segment)), and
//! the content digest is BLAKE3 over the segment's chunks in order, each as its
//! 32-byte chunk id then its length (`u32`). The chunk ids are computed by the
//! writer anyway, so no byte is hashed twice. The digest is a function of the
//! input alone (its entries, their bytes and the chunk parameters): no clock, no
//! absolute path, no thread count, and not the other inputs.

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

    /// Add one archived entry: its metadata, its size and its symlink target.
    pub fn add(
        &mut self,
        kind: EntryKind,
        name: &str,
        size: u64,
        meta: &EntryMeta,
        target: Option<&str>,
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

    /// The digest of the entries added so far, whose bytes form the stream
    /// segment with the writer's digest `content`.
    pub fn finish(&self, content: &Hash32) -> Hash32 {
        let mut h = self.hasher.clone();
        h.update(&content.0);
        Hash32(*h.finalize().as_bytes())
    }
}

/// A reader that reports the count of the bytes passing through it to
/// `progress`.
pub struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Fn(u64),
}

impl<R> std::fmt::Debug for ProgressReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader").finish_non_exhaustive()
    }
}

impl<'a, R: Read> ProgressReader<'a, R> {
    /// Wrap `inner`; `progress` is called with the size of every read.
    pub fn new(inner: R, progress: &'a dyn Fn(u64)) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
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

    const CONTENT: Hash32 = Hash32([7; 32]);

    #[test]
    fn record_layout_is_as_documented() {
        let mut d = InputDigest::new();
        d.add(EntryKind::File, "a.txt", 5, &meta(), None);
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
        want.extend_from_slice(&CONTENT.0);
        assert_eq!(d.finish(&CONTENT).0, *blake3::hash(&want).as_bytes());
        assert_eq!((d.entries(), d.bytes()), (1, 5));
    }

    #[test]
    fn every_field_counts() {
        let base = {
            let mut d = InputDigest::new();
            d.add(EntryKind::File, "a", 1, &meta(), None);
            d.finish(&CONTENT)
        };
        type Variant<'a> = Box<dyn Fn(&mut InputDigest) + 'a>;
        let variants: Vec<Variant> = vec![
            Box::new(|d| d.add(EntryKind::Record, "a", 1, &meta(), None)),
            Box::new(|d| d.add(EntryKind::File, "b", 1, &meta(), None)),
            Box::new(|d| d.add(EntryKind::File, "a", 2, &meta(), None)),
            Box::new(|d| {
                let m = EntryMeta {
                    owner: None,
                    ..meta()
                };
                d.add(EntryKind::File, "a", 1, &m, None)
            }),
            Box::new(|d| {
                let m = EntryMeta {
                    mtime_nsec: 6,
                    ..meta()
                };
                d.add(EntryKind::File, "a", 1, &m, None)
            }),
            Box::new(|d| d.add(EntryKind::File, "a", 1, &meta(), Some("t"))),
        ];
        for (i, v) in variants.iter().enumerate() {
            let mut d = InputDigest::new();
            v(&mut d);
            assert_ne!(d.finish(&CONTENT), base, "variant {i}");
        }
        let mut d = InputDigest::new();
        d.add(EntryKind::File, "a", 1, &meta(), None);
        assert_ne!(d.finish(&Hash32([8; 32])), base, "content digest");
    }

    #[test]
    fn progress_reader_counts_what_it_reads() {
        let data = vec![7u8; 100_000];
        let seen = std::cell::Cell::new(0);
        let progress = |n| seen.set(seen.get() + n);
        let mut r = ProgressReader::new(&data[..], &progress);
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).unwrap();
        assert_eq!(sink, data);
        assert_eq!(seen.get(), 100_000);
    }
}
