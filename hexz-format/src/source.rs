//! Byte sources the reader pulls from: the [`ReadAt`] trait and its local
//! implementations. Remote backends (OpenDAL) implement the same trait in their own
//! crate.

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

/// A local file read with `pread`.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    size: u64,
    path: String,
    modified: Option<std::time::SystemTime>,
}

impl FileSource {
    /// Open `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |error| Error::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = File::open(path).map_err(io_err)?;
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
