//! `hexz._hexz.Volume`: a writable volume ([`hexz_pipeline::volume::Volume`]) —
//! random reads and writes on a byte range stored as a chain of thin snapshots,
//! each flush a new version. The Python `hexz.Volume` wraps it with the context
//! manager, buffer handling and `log`/`gc`.
//!
//! Every call runs with the GIL released. Reads share a read lock (any number of
//! threads at once); writes, truncates and flushes take the write lock.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hexz_pipeline::volume::{self, Volume as RsVolume, VolumeOptions};
use hexz_pipeline::{OpendalTransport, Registry};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::errors::{Error, Result};
use crate::options::s3_options;
use crate::{pool, raw_buffer};

/// An open volume (latest version, writable; or an older one, read-only).
#[pyclass(module = "hexz._hexz", frozen)]
#[derive(Debug)]
pub struct Volume {
    inner: RwLock<Option<RsVolume>>,
    url: String,
}

/// Volume options and the registry its snapshots are read through.
fn settings(
    compression: &str,
    level: Option<i32>,
    dirty_limit: Option<u64>,
    wal: Option<PathBuf>,
    s3: Option<&Bound<'_, PyDict>>,
) -> Result<(VolumeOptions, Registry)> {
    let mut registry = Registry::default();
    let mut options = VolumeOptions {
        codec: compression.to_string(),
        level,
        wal,
        ..VolumeOptions::default()
    };
    if let Some(limit) = dirty_limit {
        options.dirty_limit = limit;
    }
    if let Some(s3) = s3 {
        let s3 = s3_options(s3)?;
        registry.register_transport(Arc::new(OpendalTransport::with_s3(s3.clone())));
        options.s3 = Some(s3);
    }
    // An unknown codec or level is refused now, not at the first flush.
    registry.compressor(&options.codec, options.level)?;
    Ok((options, registry))
}

impl Volume {
    fn closed_error(&self) -> Error {
        Error::Closed(format!("the volume {} is closed", self.url))
    }

    // The lock is taken on the calling thread (GIL released), never inside the
    // pool: a pool thread that waits in a parallel read steals other queued
    // calls, and one of them blocking on this lock behind a waiting writer
    // would deadlock the pool (seen with readers and a writer on 5 threads).
    fn read<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&RsVolume) -> Result<T> + Send,
    ) -> Result<T> {
        py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
            let v = guard.as_ref().ok_or_else(|| self.closed_error())?;
            pool::in_pool(|| f(v))
        })
    }

    fn write<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut RsVolume) -> Result<T> + Send,
    ) -> Result<T> {
        py.detach(|| {
            let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
            let v = guard.as_mut().ok_or_else(|| self.closed_error())?;
            pool::in_pool(|| f(v))
        })
    }

    fn wrap(v: RsVolume) -> Self {
        Self {
            url: v.url().to_string(),
            inner: RwLock::new(Some(v)),
        }
    }
}

/// `length` as a buffer size, after checking the range against the volume.
fn checked(v: &RsVolume, offset: u64, length: u64) -> Result<usize> {
    match offset.checked_add(length) {
        Some(end) if end <= v.len() => usize::try_from(length)
            .map_err(|_| Error::Invalid(format!("length {length} does not fit in memory"))),
        _ => Err(volume::VolumeError::OutOfRange {
            volume: v.url().to_string(),
            offset,
            len: length,
            size: v.len(),
        }
        .into()),
    }
}

#[pymethods]
impl Volume {
    /// Create a volume of `size` zero bytes at `url` (version 1) and open it.
    #[staticmethod]
    #[pyo3(signature = (url, size, *, compression="zstd", level=None, dirty_limit=None, wal=None, s3=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        url: &str,
        size: u64,
        compression: &str,
        level: Option<i32>,
        dirty_limit: Option<u64>,
        wal: Option<PathBuf>,
        s3: Option<&Bound<'_, PyDict>>,
    ) -> Result<Self> {
        let (options, registry) = settings(compression, level, dirty_limit, wal, s3)?;
        let v = pool::run(py, || RsVolume::create(url, size, &registry, options))?;
        Ok(Self::wrap(v))
    }

    /// Open the latest version of the volume at `url` for reading and writing
    /// (replaying the write-ahead log `wal`), or, with `version`, that version
    /// read-only.
    #[staticmethod]
    #[pyo3(signature = (url, *, version=None, compression="zstd", level=None, dirty_limit=None, wal=None, s3=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        url: &str,
        version: Option<u64>,
        compression: &str,
        level: Option<i32>,
        dirty_limit: Option<u64>,
        wal: Option<PathBuf>,
        s3: Option<&Bound<'_, PyDict>>,
    ) -> Result<Self> {
        if version.is_some() && wal.is_some() {
            return Err(Error::Invalid(
                "a version opened by number is read-only: it takes no write-ahead log".into(),
            ));
        }
        let (options, registry) = settings(compression, level, dirty_limit, wal, s3)?;
        let v = pool::run(py, || match version {
            Some(n) => RsVolume::open_version(url, n, &registry, &options),
            None => RsVolume::open(url, &registry, options),
        })?;
        Ok(Self::wrap(v))
    }

    /// `length` bytes at `offset` (unflushed writes included).
    fn read_at<'py>(
        &self,
        py: Python<'py>,
        offset: u64,
        length: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let len = self.read(py, |v| checked(v, offset, length))?;
        PyBytes::new_with(py, len, |buf| {
            self.read(py, |v| Ok(v.read_at(offset, buf)?))
                .map_err(PyErr::from)
        })
    }

    /// Fill the `length` bytes at `address` (a pinned writable buffer, see
    /// `raw_buffer`) from `offset`.
    fn read_into_address(
        &self,
        py: Python<'_>,
        offset: u64,
        address: usize,
        length: usize,
    ) -> Result<()> {
        self.read(py, |v| {
            checked(v, offset, length as u64)?;
            raw_buffer::fill_at(address, length, |buf| Ok(v.read_at(offset, buf)?))
        })
    }

    /// Write `data` at `offset` (the volume grows past its end). Acknowledged
    /// when this returns: synced to the write-ahead log if there is one.
    fn write_at(&self, py: Python<'_>, offset: u64, data: &[u8]) -> Result<()> {
        self.write(py, |v| Ok(v.write_at(offset, data)?))
    }

    /// `write_at` from the `length` bytes at `address` (a pinned buffer, see
    /// `raw_buffer`): no copy of the caller's buffer.
    fn write_from_address(
        &self,
        py: Python<'_>,
        offset: u64,
        address: usize,
        length: usize,
    ) -> Result<()> {
        self.write(py, |v| {
            raw_buffer::read_at(address, length, |data| Ok(v.write_at(offset, data)?))
        })
    }

    /// Set the length (grow with zeros, or shrink).
    fn truncate(&self, py: Python<'_>, size: u64) -> Result<()> {
        self.write(py, |v| Ok(v.truncate(size)?))
    }

    /// Commit the unflushed changes as a new version; returns its id (root hash,
    /// hex) — the current one when nothing changed.
    fn flush(&self, py: Python<'_>) -> Result<String> {
        self.write(py, |v| Ok(v.flush()?.to_string()))
    }

    /// Drop the unflushed changes (and empty the write-ahead log).
    fn discard(&self, py: Python<'_>) -> Result<()> {
        self.write(py, |v| Ok(v.discard()?))
    }

    /// Release the volume without flushing.
    fn close(&self, py: Python<'_>) {
        let v = py.detach(|| self.inner.write().unwrap_or_else(|p| p.into_inner()).take());
        py.detach(move || drop(v));
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Length in bytes (unflushed writes and truncates included).
    fn size(&self, py: Python<'_>) -> Result<u64> {
        self.read(py, |v| Ok(v.len()))
    }

    /// The version unflushed changes apply to (or the version opened).
    fn version(&self, py: Python<'_>) -> Result<u64> {
        self.read(py, |v| Ok(v.version()))
    }

    /// That version's id: its snapshot's root hash (hex).
    fn root(&self, py: Python<'_>) -> Result<String> {
        self.read(py, |v| Ok(v.root().to_string()))
    }

    fn read_only(&self, py: Python<'_>) -> Result<bool> {
        self.read(py, |v| Ok(v.is_read_only()))
    }

    /// Whether there are unflushed changes.
    fn dirty(&self, py: Python<'_>) -> Result<bool> {
        self.read(py, |v| Ok(v.is_dirty()))
    }

    /// Unflushed bytes held in memory (whole 64 KiB blocks).
    fn dirty_bytes(&self, py: Python<'_>) -> Result<u64> {
        self.read(py, |v| Ok(v.dirty_bytes()))
    }
}

/// The versions of the volume at `url`, newest first.
#[pyfunction]
#[pyo3(signature = (url, *, s3=None))]
pub fn volume_log<'py>(
    py: Python<'py>,
    url: &str,
    s3: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyList>> {
    let (options, registry) = settings("zstd", None, None, None, s3)?;
    let versions = pool::run(py, || volume::log(url, &registry, &options)).map_err(Error::from)?;
    let list = PyList::empty(py);
    for x in versions {
        let d = PyDict::new(py);
        d.set_item("version", x.version)?;
        d.set_item("id", &x.root)?;
        d.set_item("status", x.status)?;
        d.set_item("size", x.size)?;
        d.set_item("snapshot_bytes", x.snapshot_bytes)?;
        d.set_item("own_chunk_bytes", x.own_chunk_bytes)?;
        d.set_item("date", x.date)?;
        list.append(d)?;
    }
    Ok(list)
}

/// Remove the snapshots of the volume at `url` that no retained version needs
/// (unreferenced ones older than `grace_seconds`).
#[pyfunction]
#[pyo3(signature = (url, *, grace_seconds=volume::DEFAULT_GC_GRACE.as_secs_f64(), s3=None))]
pub fn volume_gc<'py>(
    py: Python<'py>,
    url: &str,
    grace_seconds: f64,
    s3: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let grace = Duration::try_from_secs_f64(grace_seconds).map_err(|_| {
        Error::Invalid(format!(
            "grace_seconds must be a non-negative number, not {grace_seconds}"
        ))
    })?;
    let (options, registry) = settings("zstd", None, None, None, s3)?;
    let report =
        pool::run(py, || volume::gc(url, &registry, &options, grace)).map_err(Error::from)?;
    let d = PyDict::new(py);
    d.set_item("kept", report.kept)?;
    d.set_item("removed", report.removed)?;
    d.set_item("removed_bytes", report.removed_bytes)?;
    d.set_item("young", report.young)?;
    Ok(d)
}
