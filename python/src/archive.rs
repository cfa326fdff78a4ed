//! `hexz._hexz.Archive`: an open archive, read from any thread with the GIL
//! released. The Python `hexz.Reader` wraps it with file-like state.

use std::sync::Arc;

use hexz_format::{Archive as RsArchive, Entry, ReadOptions, Value};
use hexz_pipeline::batches::{BatchOptions, EntryBatches};
use hexz_pipeline::sampler::{self, Shard};
use hexz_pipeline::{OpendalTransport, Registry};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::arrow::ArrowStream;
use crate::errors::{Error, Result};
use crate::options::{KeyOptions, TrustLimits, s3_options};
use crate::pool;
use crate::prefetch::Prefetcher;
use crate::raw_buffer;

/// An open archive (local path, `file://`, `s3://`, `http(s)://`, `memory://`).
#[pyclass(module = "hexz._hexz", frozen)]
#[derive(Debug)]
pub struct Archive {
    pub(crate) inner: RsArchive,
}

fn entry_dict<'py>(py: Python<'py>, e: &Entry) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", e.id)?;
    d.set_item("name", &e.name)?;
    d.set_item("kind", e.kind.as_str())?;
    d.set_item("size", e.size)?;
    d.set_item("offset", e.offset)?;
    d.set_item("mode", e.mode)?;
    d.set_item("mtime", e.mtime)?;
    d.set_item("mtime_nsec", e.mtime_nsec)?;
    d.set_item("target", e.target.as_deref())?;
    match e.owner {
        Some(o) => d.set_item("owner", (o.uid, o.gid))?,
        None => d.set_item("owner", py.None())?,
    }
    Ok(d)
}

pub(crate) fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Int64(i) => i.into_pyobject(py)?.into_any(),
        Value::Float64(f) => f.into_pyobject(py)?.into_any(),
        Value::Utf8(s) => s.into_pyobject(py)?.into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        _ => py.None().into_bound(py),
    })
}

/// Check `offset + length` against `size` before allocating `length` bytes.
fn checked(what: &str, offset: u64, length: u64, size: u64) -> Result<usize> {
    match offset.checked_add(length) {
        Some(end) if end <= size => usize::try_from(length)
            .map_err(|_| Error::Invalid(format!("length {length} does not fit in memory"))),
        _ => Err(Error::from(hexz_format::Error::OutOfRange {
            what: what.to_string(),
            offset,
            len: length,
            size,
        })),
    }
}

impl Archive {
    fn data_entry(&self, name: &str) -> Result<Entry> {
        let e = self.inner.entry(name)?;
        if !e.kind.has_data() {
            return Err(Error::from(hexz_format::Error::NotAFile {
                name: e.name,
                kind: e.kind.as_str(),
            }));
        }
        Ok(e)
    }

    /// A new `bytes` of `len` filled from the logical stream at `offset`.
    fn stream_bytes<'py>(
        &self,
        py: Python<'py>,
        offset: u64,
        len: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let archive = &self.inner;
        PyBytes::new_with(py, len, |buf| {
            pool::run(py, || archive.read_at(offset, buf)).map_err(|e| Error::from(e).into())
        })
    }
}

#[pymethods]
impl Archive {
    /// Open `location`. Cache and read-ahead sizes in bytes; `s3` holds S3
    /// settings (`endpoint`, `region`, `access_key_id`, `secret_access_key`,
    /// `session_token`, `virtual_host_style`) that replace the AWS environment.
    /// `metadata`: a snapshot from `metadata_snapshot` on a handle on the same
    /// archive (checked like fetched bytes; see `hexz_format::Archive::open_with_metadata`).
    #[staticmethod]
    /// `parents`, `allow_parent_urls`, `kdf_max_*`: see `options::TrustLimits`.
    #[pyo3(signature = (location, *, cache_bytes=None, page_cache_bytes=None, readahead_bytes=None, verify_chunks=false, s3=None, passphrase=None, key=None, trusted_public_keys=None, metadata=None, parents=None, allow_parent_urls=None, kdf_max_memory=None, kdf_max_iterations=None, kdf_max_slots=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        location: &str,
        cache_bytes: Option<u64>,
        page_cache_bytes: Option<u64>,
        readahead_bytes: Option<u64>,
        verify_chunks: bool,
        s3: Option<&Bound<'_, PyDict>>,
        passphrase: Option<KeyText>,
        key: Option<KeyText>,
        trusted_public_keys: Option<Vec<KeyText>>,
        metadata: Option<Vec<u8>>,
        parents: Option<Vec<String>>,
        allow_parent_urls: Option<Vec<String>>,
        kdf_max_memory: Option<u64>,
        kdf_max_iterations: Option<u32>,
        kdf_max_slots: Option<usize>,
    ) -> Result<Self> {
        let keys = KeyOptions {
            passphrase: passphrase.map(KeyText::into_bytes),
            key: key.map(KeyText::into_bytes),
            trusted_public_keys: trusted_public_keys
                .unwrap_or_default()
                .into_iter()
                .map(KeyText::into_bytes)
                .collect(),
        };
        let mut options = ReadOptions::default();
        if let Some(v) = cache_bytes {
            options.chunk_cache_bytes = v;
        }
        if let Some(v) = page_cache_bytes {
            options.page_cache_bytes = v;
        }
        if let Some(v) = readahead_bytes {
            options.readahead_bytes = v;
        }
        options.verify_chunks = verify_chunks;
        TrustLimits {
            parents: parents.unwrap_or_default(),
            allow_parent_urls: allow_parent_urls.unwrap_or_default(),
            kdf_max_memory,
            kdf_max_iterations,
            kdf_max_slots,
        }
        .apply(&mut options)?;
        let mut registry = Registry::default();
        if let Some(s3) = s3 {
            registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(s3)?)));
        }
        let location = location.to_string();
        let inner = pool::run(py, move || -> Result<_> {
            keys.apply(&location, &registry, &mut options)?;
            Ok(match &metadata {
                Some(snapshot) => hexz_pipeline::open_archive_with_metadata(
                    &location, &registry, options, snapshot,
                )?,
                None => hexz_pipeline::open_archive(&location, &registry, options)?,
            })
        })?;
        Ok(Self { inner })
    }

    /// Size of the logical stream.
    fn __len__(&self) -> usize {
        usize::try_from(self.inner.len()).unwrap_or(usize::MAX)
    }

    /// Size of the logical stream, as an int of any size.
    fn size(&self) -> u64 {
        self.inner.len()
    }

    fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    fn root_hash(&self) -> String {
        self.inner.root_hash().to_string()
    }

    fn source(&self) -> String {
        self.inner.source_name()
    }

    fn archive_size(&self) -> u64 {
        self.inner.archive_size()
    }

    /// `length` bytes of the logical stream at `offset`.
    fn read_at<'py>(
        &self,
        py: Python<'py>,
        offset: u64,
        length: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let len = checked("the logical stream", offset, length, self.inner.len())?;
        self.stream_bytes(py, offset, len)
    }

    /// Fill the writable buffer at `address` (`length` bytes) from the logical
    /// stream at `offset`. See `raw_buffer`.
    fn read_into_address(
        &self,
        py: Python<'_>,
        offset: u64,
        address: usize,
        length: usize,
    ) -> Result<()> {
        checked(
            "the logical stream",
            offset,
            length as u64,
            self.inner.len(),
        )?;
        let archive = &self.inner;
        pool::run(py, || {
            raw_buffer::fill_at(address, length, |buf| Ok(archive.read_at(offset, buf)?))
        })
    }

    /// The entry called `name`, as a dict.
    fn entry<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let archive = &self.inner;
        let e = pool::run(py, || archive.entry(name)).map_err(Error::from)?;
        entry_dict(py, &e)
    }

    /// The user-column values of `name` (empty without a column schema).
    fn entry_columns<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let archive = &self.inner;
        let (schema, values) = pool::run(py, || -> Result<_> {
            let e = archive.entry(name)?;
            Ok((archive.columns()?, archive.entry_columns(&e)?))
        })?;
        let d = PyDict::new(py);
        if let (Some(schema), Some(values)) = (schema, values) {
            for (c, v) in schema.columns().iter().zip(&values) {
                d.set_item(&c.name, value_to_py(py, v)?)?;
            }
        }
        Ok(d)
    }

    /// The whole content of entry `name`.
    fn read_entry<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let archive = &self.inner;
        let e = pool::run(py, || self.data_entry(name))?;
        let len = checked(
            &format!("entry `{}`", e.name),
            e.offset,
            e.size,
            archive.len(),
        )?;
        self.stream_bytes(py, e.offset, len)
    }

    /// `length` bytes of entry `name` at `offset` (relative to the entry).
    fn read_entry_at<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        offset: u64,
        length: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let archive = &self.inner;
        let e = pool::run(py, || self.data_entry(name))?;
        let len = checked(&format!("entry `{}`", e.name), offset, length, e.size)?;
        PyBytes::new_with(py, len, |buf| {
            pool::run(py, || archive.read_entry_at(&e, offset, buf))
                .map_err(|e| Error::from(e).into())
        })
    }

    /// Entry names in stream order (`data_only`: files and records only).
    #[pyo3(signature = (data_only=false))]
    fn names(&self, py: Python<'_>, data_only: bool) -> Result<Vec<String>> {
        let archive = &self.inner;
        pool::run(py, || {
            let mut out = Vec::new();
            for e in archive.entries() {
                let e = e?;
                if !data_only || e.kind.has_data() {
                    out.push(e.name);
                }
            }
            Ok(out)
        })
    }

    /// Files and records as three lists: names, stream offsets, sizes (what the
    /// datasets index by).
    fn data_entries(&self, py: Python<'_>) -> Result<(Vec<String>, Vec<u64>, Vec<u64>)> {
        let archive = &self.inner;
        pool::run(py, || {
            let (mut names, mut offsets, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
            // All the catalog's pages in a few requests (a failure here is
            // reported by the walk below, which reads what is missing).
            let _ = archive.preload_catalog();
            for e in archive.entries() {
                let e = e?;
                if e.kind.has_data() {
                    if e.offset
                        .checked_add(e.size)
                        .is_none_or(|end| end > archive.len())
                    {
                        return Err(Error::from(hexz_format::Error::Corrupt {
                            what: "catalog",
                            offset: 0,
                            detail: format!("entry `{}` extends past the logical stream", e.name),
                        }));
                    }
                    names.push(e.name);
                    offsets.push(e.offset);
                    sizes.push(e.size);
                }
            }
            Ok((names, offsets, sizes))
        })
    }

    /// The archive's tail and chunk index (at most `max_bytes` of its pages) as
    /// stored, for `open(..., metadata=)` in another process: a dataset hands it
    /// to its loader workers (see `hexz_format::Archive::metadata_snapshot`).
    #[pyo3(signature = (max_bytes=16 << 20))]
    fn metadata_snapshot<'py>(
        &self,
        py: Python<'py>,
        max_bytes: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let archive = &self.inner;
        let snapshot =
            pool::run(py, || archive.metadata_snapshot(max_bytes)).map_err(Error::from)?;
        Ok(PyBytes::new(py, &snapshot))
    }

    /// `hexz info --json`, as a JSON string.
    fn info_json(&self, py: Python<'_>) -> Result<String> {
        let archive = &self.inner;
        let info = pool::run(py, || hexz_pipeline::info(archive).map_err(Error::from))?;
        serde_json::to_string(&info).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Check every page and chunk; returns counts.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let archive = &self.inner;
        let r = pool::run(py, || archive.verify()).map_err(Error::from)?;
        let d = PyDict::new(py);
        d.set_item("pages", r.pages)?;
        d.set_item("chunks", r.chunks)?;
        d.set_item("stored_bytes", r.stored_bytes)?;
        d.set_item("entries", r.entries)?;
        Ok(d)
    }

    /// The catalog as an Arrow stream (`__arrow_c_stream__`).
    #[pyo3(signature = (columns=None, batch_size=65536))]
    fn catalog(&self, columns: Option<Vec<String>>, batch_size: usize) -> Result<ArrowStream> {
        let batches = EntryBatches::new(&self.inner, &BatchOptions::catalog(columns, batch_size))?;
        Ok(ArrowStream::new(batches))
    }

    /// Files and records with their bytes as an Arrow stream.
    #[pyo3(signature = (columns=None, batch_size=1024, max_batch_bytes=None))]
    fn to_arrow(
        &self,
        columns: Option<Vec<String>>,
        batch_size: usize,
        max_batch_bytes: Option<u64>,
    ) -> Result<ArrowStream> {
        let mut options = BatchOptions::data(columns, batch_size);
        if let Some(b) = max_batch_bytes {
            options.max_batch_bytes = b;
        }
        Ok(ArrowStream::new(EntryBatches::new(&self.inner, &options)?))
    }

    /// Read the stream ranges `(offsets[i], sizes[i])` in order on background
    /// threads, at least `window` samples ahead; iterating yields `bytes`,
    /// `next_batch(n)` a list. With `span_bytes`, each stretch of consecutive
    /// ranges whose hull fits in that many bytes is fetched with one batched
    /// read. At most `ahead_bytes` of samples wait (see `prefetch.rs`).
    #[pyo3(signature = (offsets, sizes, window=64, span_bytes=0, ahead_bytes=64 << 20))]
    fn prefetch(
        &self,
        offsets: Vec<u64>,
        sizes: Vec<u64>,
        window: usize,
        span_bytes: u64,
        ahead_bytes: u64,
    ) -> Result<Prefetcher> {
        Prefetcher::new(
            self.inner.clone(),
            offsets,
            sizes,
            window,
            span_bytes,
            ahead_bytes,
        )
    }
}

/// The sample indexes one loader worker reads in an epoch (see
/// `hexz_pipeline::sampler`).
#[pyfunction]
#[pyo3(signature = (n, *, seed, epoch, shuffle, rank, world, worker, workers, block, consumed, drop_last, shuffle_block=1))]
#[allow(clippy::too_many_arguments)]
pub fn shard_indices(
    py: Python<'_>,
    n: u64,
    seed: u64,
    epoch: u64,
    shuffle: bool,
    rank: u64,
    world: u64,
    worker: u64,
    workers: u64,
    block: u64,
    consumed: u64,
    drop_last: bool,
    shuffle_block: u64,
) -> Result<Vec<u64>> {
    let shard = Shard {
        rank,
        world,
        worker,
        workers,
        block,
    };
    py.detach(|| {
        if shuffle && shuffle_block > 1 {
            sampler::block_shard_samples(n, seed, epoch, shuffle_block, &shard, consumed, drop_last)
        } else {
            let order = sampler::epoch_order(n, seed, epoch, shuffle);
            sampler::shard_samples(&order, &shard, consumed, drop_last)
        }
        .map_err(|e| Error::from(hexz_pipeline::PipelineError::from(e)))
    })
}

/// Samples rank `rank` of `world` reads in an epoch of `n`.
#[pyfunction]
#[pyo3(signature = (n, rank, world, drop_last=false))]
pub fn rank_len(n: u64, rank: u64, world: u64, drop_last: bool) -> u64 {
    sampler::rank_len(n, rank, world, drop_last)
}

/// A key argument: `str` (UTF-8) or bytes.
#[derive(FromPyObject)]
pub enum KeyText {
    /// Text: a passphrase, a public-key line or a path.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl KeyText {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Text(s) => s.into_bytes(),
            Self::Bytes(b) => b,
        }
    }
}
