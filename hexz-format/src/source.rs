//! Byte sources the reader pulls from: the [`ReadAt`] trait and its local
//! implementations. Remote backends (OpenDAL) implement the same trait in their own
//! crate.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Positional reads from an immutable byte source.
///
/// Who calls: the archive reader, from many threads at once, for the tail at open
/// time, for index pages and for chunk blobs. Each call names an exact range; a
/// source returns exactly those bytes or an error (a short source is an error, not a
/// short read). Implementations must be `Send + Sync` and must not keep a cursor.
pub trait ReadAt: Send + Sync + std::fmt::Debug {
    /// Total size in bytes.
    fn size(&self) -> u64;

    /// Fill `buf` with the bytes at `offset..offset + buf.len()`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Read several ranges. Sources that can merge adjacent ranges into one request
    /// (remote stores) override this; the default reads them one by one.
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        ranges
            .iter()
            .map(|&(offset, len)| {
                let mut buf = vec![0; len];
                self.read_exact_at(offset, &mut buf)?;
                Ok(buf)
            })
            .collect()
    }

    /// A name for error messages: a path or URL.
    fn name(&self) -> String;

    /// When the object was last written, as its store reports it (file mtime,
    /// HTTP `Last-Modified`, S3 `LastModified`); `None` when unknown. Shown by
    /// `hexz log`; nothing in the format depends on it.
    fn modified(&self) -> Option<std::time::SystemTime> {
        None
    }
}

/// Read `len` bytes at `offset`, bounds-checked against the source size, with the
/// error naming what was being read.
pub(crate) fn read_vec(
    source: &dyn ReadAt,
    what: &'static str,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>> {
    let size = source.size();
    let end = offset.saturating_add(len as u64);
    if end > size {
        return Err(Error::Truncated {
            what,
            offset,
            end,
            size,
        });
    }
    let mut buf = vec![0; len];
    source
        .read_exact_at(offset, &mut buf)
        .map_err(|error| Error::SourceRead {
            source_name: source.name(),
            offset,
            len: len as u64,
            error,
        })?;
    Ok(buf)
}

/// Open the local file at `path` for reading, refusing anything but a regular
/// file (a FIFO, device, socket or folder named by an archive's parent hint, or
/// given by mistake).
///
/// The type is checked before opening (following symbolic links), and again on
/// the open handle; the open itself is non-blocking (`O_NONBLOCK`, no controlling
/// terminal), so a FIFO swapped in between cannot make it wait for a writer. The
/// error is [`io::ErrorKind::InvalidInput`] wrapping [`NotRegularFile`].
pub fn open_regular_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    check_regular(&std::fs::metadata(path)?.file_type())?;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    check_regular(&file.metadata()?.file_type())?;
    Ok(file)
}

/// A local path that is not a regular file was given as an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a regular file but a {kind}: hexz reads archives from regular files only")]
pub struct NotRegularFile {
    /// `FIFO`, `character device`, `block device`, `socket`, `folder`, `special file`.
    pub kind: &'static str,
}

fn check_regular(t: &std::fs::FileType) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        return Ok(());
    }
    let kind = if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else if t.is_dir() {
        "folder"
    } else {
        "special file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        NotRegularFile { kind },
    ))
}

/// A local file read with `pread`.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    size: u64,
    path: String,
    modified: Option<std::time::SystemTime>,
}

impl FileSource {
    /// Open `path` for reading: a regular file only ([`open_regular_file`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |error| Error::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = open_regular_file(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        Ok(Self {
            file,
            size: meta.len(),
            path: path.display().to_string(),
            modified: meta.modified().ok(),
        })
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn name(&self) -> String {
        self.path.clone()
    }

    fn modified(&self) -> Option<std::time::SystemTime> {
        self.modified
    }
}

/// An archive held in memory.
#[derive(Debug, Clone)]
pub struct MemorySource {
    bytes: Arc<[u8]>,
    name: String,
}

impl MemorySource {
    /// A source over `bytes`, called `name` in errors.
    pub fn new(bytes: impl Into<Arc<[u8]>>, name: impl Into<String>) -> Self {
        Self {
            bytes: bytes.into(),
            name: name.into(),
        }
    }
}

impl ReadAt for MemorySource {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .filter(|&end| end <= self.bytes.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self.bytes[start..end]);
        Ok(())
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A source with some of its byte ranges already in memory: a read that lies
/// inside one of them is served from there, any other goes to the wrapped
/// source.
///
/// The archive reader keeps the tail it fetched at open this way (pages written
/// near the end, such as tree roots, then cost no request), and a metadata
/// snapshot taken by another handle on the same archive
/// ([`Archive::metadata_snapshot`](crate::Archive::metadata_snapshot)) primes a
/// new open with the pages it needs. Either way the reader checks the bytes
/// (CRC32, BLAKE3, seals, signatures) exactly as if they had been fetched.
#[derive(Debug)]
pub struct PrimedSource {
    inner: Arc<dyn ReadAt>,
    /// Kept ranges by first byte; they do not overlap.
    kept: BTreeMap<u64, Arc<[u8]>>,
}

impl PrimedSource {
    /// `inner` with `ranges` (`(offset, bytes)`, each within `inner`'s size) in
    /// memory. Overlapping ranges are merged (where they overlap, the earlier
    /// range's bytes are kept).
    pub fn new(inner: Arc<dyn ReadAt>, ranges: Vec<(u64, Vec<u8>)>) -> Self {
        let mut source = Self {
            inner,
            kept: BTreeMap::new(),
        };
        source.keep(ranges);
        source
    }

    /// Add `ranges` to the kept ones (see [`PrimedSource::new`]).
    pub(crate) fn keep(&mut self, mut ranges: Vec<(u64, Vec<u8>)>) {
        let size = self.inner.size();
        ranges.retain(|(o, b)| {
            !b.is_empty() && o.checked_add(b.len() as u64).is_some_and(|e| e <= size)
        });
        let mut all: Vec<(u64, Vec<u8>)> = std::mem::take(&mut self.kept)
            .into_iter()
            .map(|(o, b)| (o, b.to_vec()))
            .collect();
        all.extend(ranges);
        all.sort_by_key(|(o, _)| *o);
        let mut merged: Vec<(u64, Vec<u8>)> = Vec::with_capacity(all.len());
        for (offset, bytes) in all {
            if let Some((start, last)) = merged.last_mut() {
                let end = *start + last.len() as u64;
                if offset <= end {
                    let new_end = offset + bytes.len() as u64;
                    if new_end > end {
                        let skip = (end - offset) as usize;
                        last.extend_from_slice(&bytes[skip..]);
                    }
                    continue;
                }
            }
            merged.push((offset, bytes));
        }
        self.kept = merged.into_iter().map(|(o, b)| (o, b.into())).collect();
    }

    /// The wrapped source.
    pub fn inner(&self) -> &Arc<dyn ReadAt> {
        &self.inner
    }

    /// The kept ranges, in offset order.
    pub fn kept(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.kept.iter().map(|(o, b)| (*o, &b[..]))
    }

    /// The kept bytes of `[offset, offset + len)`, when one range holds them all.
    fn lookup(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let (start, bytes) = self.kept.range(..=offset).next_back()?;
        let from = usize::try_from(offset - start).ok()?;
        bytes.get(from..from.checked_add(len)?)
    }
}

impl ReadAt for PrimedSource {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self.lookup(offset, buf.len()) {
            Some(kept) => {
                buf.copy_from_slice(kept);
                Ok(())
            }
            None => self.inner.read_exact_at(offset, buf),
        }
    }

    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        let mut out: Vec<Option<Vec<u8>>> = ranges
            .iter()
            .map(|&(o, l)| self.lookup(o, l).map(<[u8]>::to_vec))
            .collect();
        let missing: Vec<usize> = (0..ranges.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let asked: Vec<(u64, usize)> = missing.iter().map(|&i| ranges[i]).collect();
            let fetched = self.inner.read_ranges(&asked)?;
            if fetched.len() != asked.len() {
                return Err(io::Error::other(format!(
                    "{}: {} ranges asked, {} returned",
                    self.inner.name(),
                    asked.len(),
                    fetched.len()
                )));
            }
            for (i, bytes) in missing.into_iter().zip(fetched) {
                out[i] = Some(bytes);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn name(&self) -> String {
        self.inner.name()
    }

    fn modified(&self) -> Option<std::time::SystemTime> {
        self.inner.modified()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    fn kind(e: &Error) -> Option<&'static str> {
        match e {
            Error::Io { error, .. } => error
                .get_ref()
                .and_then(|e| e.downcast_ref::<NotRegularFile>())
                .map(|n| n.kind),
            _ => None,
        }
    }

    #[test]
    fn only_regular_files_are_opened() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileSource::open(dir.path()).unwrap_err();
        assert_eq!(kind(&err), Some("folder"), "{err}");
        let err = FileSource::open("/dev/null").unwrap_err();
        assert_eq!(kind(&err), Some("character device"), "{err}");
        assert!(err.to_string().contains("regular files only"), "{err}");
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("f"), dir.path().join("link")).unwrap();
        assert_eq!(FileSource::open(dir.path().join("link")).unwrap().size(), 1);
    }

    /// A FIFO is refused without waiting for a writer. Should the open block (as a
    /// plain `File::open` does), the loop below opens the write end as soon as a
    /// reader waits, which releases it: the test then fails on the error's kind,
    /// it never hangs.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.hxz");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let path = fifo.clone();
        let opener = std::thread::spawn(move || FileSource::open(&path).map(|_| ()));
        let mut writer = None;
        while !opener.is_finished() && writer.is_none() {
            writer = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&fifo)
                .ok();
            std::thread::yield_now();
        }
        let err = opener.join().unwrap().unwrap_err();
        assert!(writer.is_none(), "the open waited for a writer");
        assert_eq!(kind(&err), Some("FIFO"), "{err}");
    }
}
