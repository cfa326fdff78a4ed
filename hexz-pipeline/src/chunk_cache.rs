//! An on-disk cache of what remote archives were read for, so a second epoch (or
//! another process) reads only what it lacks.
//!
//! [`DiskCache`] is a folder; [`CachedSource`] wraps a remote source with it.
//! Once the archive is open, every blob read (index pages and chunks, as the
//! reader asks for them) is looked up under the archive's root hash and the
//! blob's position:
//!
//! ```text
//! <dir>/<root hash, hex>/<offset>-<len>     the bytes, then their BLAKE3 (32 bytes)
//! <dir>/tmp/                                files being written
//! ```
//!
//! * **Keyed by content**: the root hash (BLAKE3 of the archive's directory)
//!   pins every page and chunk of the archive, so entries never go stale and two
//!   URLs of one archive share them. The tail read at open time is not cached
//!   (the root hash is not known before it).
//! * **Verified on read**: an entry whose length or BLAKE3 does not check out is
//!   deleted and fetched again.
//! * **Safe for concurrent readers and processes**: entries are written to a
//!   unique file in `tmp/` and renamed into place (atomic on one filesystem);
//!   readers see a whole entry or none. Deleting an entry another process has
//!   open is harmless on Unix.
//! * **Bounded**: when the bytes written push the folder over its limit, the
//!   least recently used entries (by modification time, refreshed on each hit)
//!   are deleted until it is under 3/4 of the limit.
//!
//! ```
//! use std::sync::Arc;
//! use hexz_format::{MemorySource, ReadAt};
//! use hexz_pipeline::chunk_cache::{CachedSource, DiskCache};
//! let dir = tempfile::tempdir()?;
//! let cache = DiskCache::open(dir.path(), 1 << 20)?;
//! let source = CachedSource::new(Arc::new(MemorySource::new(vec![7u8; 100], "mem")), cache);
//! source.set_root(hexz_format::Hash32([1; 32]));
//! let mut buf = [0; 10];
//! source.read_exact_at(5, &mut buf)?; // fetched, then stored
//! source.read_exact_at(5, &mut buf)?; // from the folder
//! assert_eq!(source.stats(), (1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use hexz_format::{Hash32, ReadAt};

use crate::error::{PipelineError, Result};

/// Entries larger than this are not cached (whole-archive reads, `verify`).
pub const MAX_ENTRY: usize = 64 << 20;
const HASH_LEN: usize = 32;

/// A bounded cache folder shared by readers, threads and processes.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes in the folder (an estimate between scans: other processes write too).
    used: AtomicU64,
    /// Names temporary files uniquely within this process.
    counter: AtomicU64,
    /// One eviction at a time in this process.
    evicting: Mutex<()>,
}

impl DiskCache {
    /// Open (creating it if needed) the cache folder `dir`, holding at most
    /// `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Arc<Self>> {
        fs::create_dir_all(dir.join("tmp")).map_err(PipelineError::io(dir))?;
        let cache = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            used: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            evicting: Mutex::new(()),
        };
        let used = cache.entries().iter().map(|e| e.1).sum();
        cache.used.store(used, Ordering::Relaxed);
        Ok(Arc::new(cache))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size limit in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes currently held (as of the last scan plus what this process wrote).
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn path(&self, root: &Hash32, offset: u64, len: usize) -> PathBuf {
        self.dir
            .join(root.to_string())
            .join(format!("{offset}-{len}"))
    }

    /// The cached bytes of `root`'s `[offset, offset + len)`, if present and intact.
    pub fn get(&self, root: &Hash32, offset: u64, len: usize) -> Option<Vec<u8>> {
        let path = self.path(root, offset, len);
        let mut bytes = fs::read(&path).ok()?;
        let intact = bytes.len() == len + HASH_LEN
            && blake3::hash(&bytes[..len]).as_bytes()[..] == bytes[len..];
        if !intact {
            let _ = fs::remove_file(&path);
            return None;
        }
        // Recently used: eviction goes by modification time.
        let _ = filetime::set_file_mtime(&path, filetime::FileTime::now());
        bytes.truncate(len);
        Some(bytes)
    }

    /// Store `data` as `root`'s bytes at `offset`. Failures (full disk, a
    /// read-only folder) only mean the entry is not cached.
    pub fn put(&self, root: &Hash32, offset: u64, data: &[u8]) {
        if data.len() > MAX_ENTRY || data.len() as u64 > self.max_bytes / 4 {
            return;
        }
        let path = self.path(root, offset, data.len());
        if path.exists() {
            return;
        }
        let tmp = self.dir.join("tmp").join(format!(
            "{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| -> io::Result<()> {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut f = fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.write_all(blake3::hash(data).as_bytes())?;
            drop(f);
            fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        let used = self
            .used
            .fetch_add((data.len() + HASH_LEN) as u64, Ordering::Relaxed);
        if used + (data.len() + HASH_LEN) as u64 > self.max_bytes {
            self.evict();
        }
    }

    /// Every entry: (path, size, modification time).
    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        let Ok(archives) = fs::read_dir(&self.dir) else {
            return out;
        };
        for archive in archives.flatten() {
            if archive.file_name() == "tmp" {
                continue;
            }
            let Ok(files) = fs::read_dir(archive.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Ok(meta) = f.metadata()
                    && meta.is_file()
                {
                    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    out.push((f.path(), meta.len(), mtime));
                }
            }
        }
        out
    }

    /// Delete least recently used entries until the folder is under 3/4 of the
    /// limit; also recounts what the folder holds.
    fn evict(&self) {
        let Ok(_one) = self.evicting.try_lock() else {
            return;
        };
        let mut entries = self.entries();
        let mut used: u64 = entries.iter().map(|e| e.1).sum();
        let target = self.max_bytes / 4 * 3;
        if used > self.max_bytes {
            entries.sort_by_key(|e| e.2);
            for (path, size, _) in entries {
                if used <= target {
                    break;
                }
                if fs::remove_file(&path).is_ok() {
                    used = used.saturating_sub(size);
                }
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}

/// A source whose reads go through a [`DiskCache`] once the archive's root hash
/// is known ([`CachedSource::set_root`]); before that, reads pass through.
#[derive(Debug)]
pub struct CachedSource {
    inner: Arc<dyn ReadAt>,
    cache: Arc<DiskCache>,
    root: OnceLock<Hash32>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachedSource {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn ReadAt>, cache: Arc<DiskCache>) -> Self {
        Self {
            inner,
            cache,
            root: OnceLock::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Start caching under `root` (the archive's root hash). Later calls are
    /// ignored.
    pub fn set_root(&self, root: Hash32) {
        let _ = self.root.set(root);
    }

    /// (hits, misses) of cached reads so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn lookup(&self, root: &Hash32, offset: u64, len: usize) -> Option<Vec<u8>> {
        let hit = self.cache.get(root, offset, len);
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }
}

impl ReadAt for CachedSource {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let Some(root) = self.root.get().filter(|_| buf.len() <= MAX_ENTRY) else {
            return self.inner.read_exact_at(offset, buf);
        };
        if let Some(data) = self.lookup(root, offset, buf.len()) {
            buf.copy_from_slice(&data);
            return Ok(());
        }
        self.inner.read_exact_at(offset, buf)?;
        self.cache.put(root, offset, buf);
        Ok(())
    }

    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        let Some(root) = self.root.get() else {
            return self.inner.read_ranges(ranges);
        };
        let mut out: Vec<Option<Vec<u8>>> = ranges
            .iter()
            .map(|&(offset, len)| {
                if len > MAX_ENTRY {
                    None
                } else {
                    self.lookup(root, offset, len)
                }
            })
            .collect();
        let missing: Vec<usize> = (0..ranges.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let wanted: Vec<(u64, usize)> = missing.iter().map(|&i| ranges[i]).collect();
            let fetched = self.inner.read_ranges(&wanted)?;
            for (&i, data) in missing.iter().zip(fetched) {
                self.cache.put(root, ranges[i].0, &data);
                out[i] = Some(data);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn name(&self) -> String {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hexz_format::MemorySource;

    fn source(cache: &Arc<DiskCache>) -> CachedSource {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let s = CachedSource::new(Arc::new(MemorySource::new(bytes, "mem")), Arc::clone(cache));
        s.set_root(Hash32([9; 32]));
        s
    }

    #[test]
    fn second_read_comes_from_the_folder_and_a_damaged_entry_is_refetched() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20).unwrap();
        let s = source(&cache);
        let got = s.read_ranges(&[(10, 100), (5000, 7)]).unwrap();
        assert_eq!(got[1], (5000..5007).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!(s.stats(), (0, 2));
        // Another source (another process, a second epoch) finds them.
        let t = source(&cache);
        assert_eq!(t.read_ranges(&[(10, 100), (5000, 7)]).unwrap(), got);
        assert_eq!(t.stats(), (2, 0));
        // Damage an entry: it is dropped and fetched again, bytes still right.
        let entry = dir.path().join(Hash32([9; 32]).to_string()).join("10-100");
        let mut bytes = fs::read(&entry).unwrap();
        bytes[3] ^= 1;
        fs::write(&entry, bytes).unwrap();
        let mut buf = vec![0; 100];
        t.read_exact_at(10, &mut buf).unwrap();
        assert_eq!(buf, got[0]);
        assert_eq!(t.stats(), (2, 1));
    }

    #[test]
    fn the_folder_stays_under_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 64 * 1024).unwrap();
        let s = source(&cache);
        for i in 0..40u64 {
            let mut buf = vec![0; 4000];
            s.read_exact_at(i * 2000, &mut buf).unwrap();
        }
        let on_disk: u64 = cache.entries().iter().map(|e| e.1).sum();
        assert!(on_disk <= 64 * 1024, "{on_disk} bytes on disk");
        assert!(on_disk > 0);
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }
}
