//! `hexz._hexz.Writer`: builds an archive entry by entry. Nothing appears at the
//! path until `finish()` succeeds; a writer dropped or aborted before that
//! leaves no file.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hexz_format::columns::{Column, ColumnSchema, ColumnType, Value};
use hexz_format::destination::Writes;
use hexz_format::{ArchiveWriter, ChunkParams, Encryption, EntryMeta, PendingFile, WriterOptions};
use hexz_pipeline::{OpendalTransport, PipelineError, Registry, thin};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyString};

use crate::archive::Archive;
use crate::errors::{Error, Result};
use crate::keys;
use crate::options::s3_options;

/// Regular file, rw-r--r--.
const BYTES_MODE: u32 = 0o100_644;

#[derive(Debug)]
struct State {
    writer: ArchiveWriter<PendingFile>,
    schema: Option<ColumnSchema>,
    entries: u64,
    /// Write the signature to `<path>.sig` after `finish`.
    detached: bool,
    /// Replace files at the path (and `.sig`) that hexz did not write.
    force: bool,
    /// The signer's public key line.
    signer: Option<String>,
    encrypted: bool,
    /// A thin child (written with a parent chain).
    thin: bool,
}

/// `parent=`: where to open it, or an archive already open.
enum ParentArg {
    Location(String),
    Open(hexz_format::Archive),
}

const MIXED_PLAIN_CHILD: &str = "the parent is encrypted: its thin children must be encrypted \
     too; pass encrypt= with the parent's keys (a chain shares its dedup key)";

/// A plain child of an encrypted parent is refused as a mixed chain (the
/// parent cannot even be opened without keys): an `InvalidInputError`, not a
/// missing key.
fn mixed_chain(e: PipelineError, encrypted: bool) -> Error {
    let key_required = |e: &PipelineError| {
        matches!(
            e,
            PipelineError::Format(hexz_format::Error::KeyRequired { .. })
        )
    };
    match &e {
        PipelineError::Parent { location, error } if !encrypted && key_required(error) => {
            Error::Invalid(format!("parent {location}: {MIXED_PLAIN_CHILD}"))
        }
        _ => e.into(),
    }
}

/// The writer's refusal of a chain whose dedup keys differ, named as such.
fn mixed_chain_format(e: hexz_format::Error) -> Error {
    match e {
        hexz_format::Error::InvalidSetting { detail, .. } => {
            Error::Invalid(format!("mixed chain: {detail}"))
        }
        other => other.into(),
    }
}

/// An archive being written.
#[pyclass(module = "hexz._hexz", frozen)]
#[derive(Debug)]
pub struct Writer {
    state: Mutex<Option<State>>,
    path: PathBuf,
}

fn column_type(name: &str) -> Result<ColumnType> {
    ColumnType::ALL
        .into_iter()
        .find(|t| t.as_str() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = ColumnType::ALL.iter().map(|t| t.as_str()).collect();
            Error::Invalid(format!(
                "unknown column type `{name}`; known: {}",
                known.join(", ")
            ))
        })
}

fn value(column: &str, v: &Bound<'_, PyAny>) -> Result<Value> {
    let bad = || {
        Error::Invalid(format!(
            "column `{column}`: {} values are not supported (bool, int, float, str, bytes or None)",
            v.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    };
    Ok(if v.is_none() {
        Value::Null
    } else if let Ok(b) = v.cast::<PyBool>() {
        Value::Bool(b.is_true())
    } else if v.is_instance_of::<PyInt>() {
        Value::Int64(
            v.extract().map_err(|_| {
                Error::Invalid(format!("column `{column}`: {v} does not fit in int64"))
            })?,
        )
    } else if v.is_instance_of::<PyFloat>() {
        Value::Float64(v.extract().map_err(|_| bad())?)
    } else if let Ok(s) = v.cast::<PyString>() {
        Value::Utf8(s.to_cow().map_err(|_| bad())?.into_owned())
    } else if let Ok(b) = v.cast::<PyBytes>() {
        Value::Bytes(b.as_bytes().to_vec())
    } else if let Ok(b) = v.cast::<PyByteArray>() {
        Value::Bytes(b.to_vec())
    } else {
        return Err(bad());
    })
}

impl Writer {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut State) -> Result<T> + Send,
    ) -> Result<T> {
        py.detach(|| {
            let mut slot = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let state = slot.as_mut().ok_or_else(|| {
                Error::Invalid(format!(
                    "the writer of {} is closed (finished or aborted)",
                    self.path.display()
                ))
            })?;
            f(state)
        })
    }
}

#[pymethods]
impl Writer {
    #[new]
    #[pyo3(signature = (path, compression="zstd", level=None, *, chunk_min=None, chunk_avg=None, chunk_max=None, threads=None, columns=None, parent=None, encrypt=None, sign=None, s3=None, force=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        compression: &str,
        level: Option<i32>,
        chunk_min: Option<u32>,
        chunk_avg: Option<u32>,
        chunk_max: Option<u32>,
        threads: Option<usize>,
        columns: Option<Vec<(String, String)>>,
        parent: Option<Bound<'_, PyAny>>,
        encrypt: Option<Bound<'_, PyAny>>,
        sign: Option<Bound<'_, PyAny>>,
        s3: Option<Bound<'_, PyDict>>,
        force: bool,
    ) -> Result<Self> {
        let mut registry = Registry::default();
        if let Some(s3) = &s3 {
            registry.register_transport(Arc::new(OpendalTransport::with_s3(s3_options(s3)?)));
        }
        let compressor = registry.compressor(compression, level)?;
        let mut options = WriterOptions::new(compressor);
        let d = ChunkParams::default();
        options.chunking = ChunkParams {
            min: chunk_min.unwrap_or(d.min),
            avg: chunk_avg.unwrap_or(d.avg),
            max: chunk_max.unwrap_or(d.max),
        };
        // A pool of its own, never rayon's global one (see `pool`).
        options.threads = Some(threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        }));
        let schema = match columns {
            Some(cols) => Some(
                ColumnSchema::new(
                    cols.iter()
                        .map(|(n, t)| Ok(Column::new(n.clone(), column_type(t)?)))
                        .collect::<Result<Vec<_>>>()?,
                )
                .map_err(|e| Error::Invalid(format!("columns: {e}")))?,
            ),
            None => None,
        };
        let encrypt = encrypt
            .filter(|e| !e.is_none())
            .map(|e| keys::encrypt_spec(&e))
            .transpose()?;
        let sign = sign
            .filter(|s| !s.is_none())
            .map(|s| keys::sign_spec(&s))
            .transpose()?;
        let parent = match parent.filter(|p| !p.is_none()) {
            None => None,
            Some(p) => Some(match p.cast::<Archive>() {
                Ok(a) => ParentArg::Open(a.get().inner.clone()),
                Err(_) => ParentArg::Location(
                    p.extract::<PathBuf>()
                        .map_err(|_| {
                            Error::Invalid(
                                "parent: a path, a URL or an open hexz.Reader is needed".into(),
                            )
                        })?
                        .to_string_lossy()
                        .into_owned(),
                ),
            }),
        };
        let dest = path.clone();
        let encrypted = encrypt.is_some();
        let detached = sign.as_ref().is_some_and(|s| s.detached);
        let state = py.detach(move || -> Result<State> {
            // Key files are read, passphrase-protected signing keys decrypted
            // (Argon2id), here without the GIL.
            let encrypt = encrypt.map(keys::EncryptSpec::load).transpose()?;
            let signing = sign.map(keys::SignSpec::load).transpose()?;
            let signer = signing.as_ref().map(|(_, public)| public.to_string());
            // Thin child: the parent chain's chunk ids, read before anything is
            // written (an encrypted parent opened with the child's keys).
            let parent_options = hexz_format::ReadOptions {
                unlock: encrypt
                    .as_ref()
                    .map(|e| e.unlock.clone())
                    .unwrap_or_default(),
                // The chain opens with the child's own Argon2id parameters.
                kdf_limits: encrypt.iter().flat_map(|e| &e.slots).fold(
                    hexz_format::KdfLimits::default(),
                    |limits, slot| match slot {
                        hexz_format::SlotSpec::Passphrase { kdf, .. } => limits.admitting(kdf),
                        _ => limits,
                    },
                ),
                ..hexz_format::ReadOptions::default()
            };
            let parents = match parent {
                None => None,
                Some(ParentArg::Open(archive)) => Some(thin::parent_set_of(archive, &dest)?),
                Some(ParentArg::Location(location)) => Some(
                    thin::parent_set(&location, &dest, &registry, parent_options)
                        .map_err(|e| mixed_chain(e, encrypted))?,
                ),
            };
            options.encryption = match (&encrypt, &parents) {
                (Some(e), Some(p)) => Some(Encryption::with_hasher(&e.slots, p.chunk_hasher())?),
                (Some(e), None) => Some(Encryption::new(&e.slots)?),
                (None, _) => None,
            };
            options.signing = signing.map(|(s, _)| s);
            if detached {
                // Refused now, not after the archive is written.
                let sig = hexz_pipeline::crypto::signature_path(&dest);
                hexz_format::destination::check(&sig, Writes::Signature, force)
                    .map_err(hexz_format::Error::from)?;
            }
            let mut writer = ArchiveWriter::create_with(&dest, options, force)?;
            let thin = parents.is_some();
            if let Some(p) = parents {
                writer.set_parents(p).map_err(mixed_chain_format)?;
            }
            if let Some(s) = &schema {
                writer.set_columns(s.clone())?;
            }
            Ok(State {
                writer,
                schema,
                entries: 0,
                detached,
                force,
                signer,
                encrypted,
                thin,
            })
        })?;
        Ok(Self {
            state: Mutex::new(Some(state)),
            path,
        })
    }

    /// Add `data` as entry `name`; `columns` (a dict) become the entry's typed
    /// user columns. The first entry with columns fixes the schema (names and
    /// types, from the Python values) unless `columns=` was given to the writer.
    #[pyo3(signature = (name, data, columns=None))]
    fn add_bytes(
        &self,
        py: Python<'_>,
        name: &str,
        data: &[u8],
        columns: Option<&Bound<'_, PyDict>>,
    ) -> Result<()> {
        let mut given: Vec<(String, Value)> = Vec::new();
        if let Some(d) = columns {
            for (k, v) in d.iter() {
                let k: String = k
                    .extract()
                    .map_err(|_| Error::Invalid("column names must be strings".into()))?;
                let v = value(&k, &v)?;
                given.push((k, v));
            }
        }
        self.with(py, |s| {
            if s.schema.is_none() && !given.is_empty() {
                if s.entries > 0 {
                    return Err(Error::Invalid(format!(
                        "entry `{name}` has columns but earlier entries have none; declare them \
                         up front with Writer(..., columns=[(name, type), ...])"
                    )));
                }
                let cols = given
                    .iter()
                    .map(|(n, v)| {
                        let ty = v.column_type().ok_or_else(|| {
                            Error::Invalid(format!(
                                "column `{n}` is None in the first entry, so its type is unknown; \
                                 declare it with Writer(..., columns=[(name, type), ...])"
                            ))
                        })?;
                        Ok(Column::new(n.clone(), ty))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let schema =
                    ColumnSchema::new(cols).map_err(|e| Error::Invalid(format!("columns: {e}")))?;
                s.writer.set_columns(schema.clone())?;
                s.schema = Some(schema);
            }
            let row = match &s.schema {
                Some(schema) => {
                    let mut row = vec![Value::Null; schema.len()];
                    for (n, v) in given {
                        let i = schema.index_of(&n).ok_or_else(|| {
                            let known: Vec<&str> =
                                schema.columns().iter().map(|c| c.name.as_str()).collect();
                            Error::Invalid(format!(
                                "entry `{name}`: unknown column `{n}`; the archive's columns are: {}",
                                known.join(", ")
                            ))
                        })?;
                        row[i] = v;
                    }
                    schema
                        .encode_row(&row)
                        .map_err(|e| Error::Invalid(format!("entry `{name}`: {e}")))?
                }
                None => Vec::new(),
            };
            let meta = EntryMeta {
                mode: BYTES_MODE,
                columns: row,
                ..EntryMeta::default()
            };
            if s.schema.is_some() {
                s.writer.add_record(name, data, meta)?;
            } else {
                s.writer.add_bytes(name, data, meta)?;
            }
            s.entries += 1;
            Ok(())
        })
    }

    /// Add the file or directory tree at `path` (see `hexz_pipeline::add`).
    /// Returns `(files, dirs, symlinks)` added.
    #[pyo3(signature = (path, name=None))]
    fn add_path(
        &self,
        py: Python<'_>,
        path: PathBuf,
        name: Option<String>,
    ) -> Result<(u64, u64, u64)> {
        self.with(py, |s| {
            let c = hexz_pipeline::add::add_path(&mut s.writer, &path, name.as_deref())?;
            s.entries += c.files + c.dirs + c.symlinks;
            Ok((c.files, c.dirs, c.symlinks))
        })
    }

    /// Number of entries added.
    fn entry_count(&self, py: Python<'_>) -> Result<u64> {
        self.with(py, |s| Ok(s.entries))
    }

    /// Write the index and trailer and move the archive into place. Returns a
    /// summary dict.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the writer of {} is already closed",
                    self.path.display()
                ))
            })?;
        let State {
            writer,
            detached,
            force,
            signer,
            encrypted,
            thin,
            ..
        } = state;
        let path = &self.path;
        let (summary, signature_file) = py.detach(|| -> Result<_> {
            let (_, summary) = writer.finish()?;
            let signature_file = match (&summary.signature, detached) {
                (Some(block), true) => {
                    match hexz_pipeline::crypto::write_detached(path, block, force) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            // Signing was asked for: no unsigned archive is left.
                            let _ = std::fs::remove_file(path);
                            return Err(e.into());
                        }
                    }
                }
                _ => None,
            };
            Ok((summary, signature_file))
        })?;
        let d = PyDict::new(py);
        d.set_item("path", &self.path)?;
        d.set_item("root_hash", summary.root_hash.to_string())?;
        d.set_item("entries", summary.stats.entry_count)?;
        d.set_item("logical_bytes", summary.stats.logical_size)?;
        d.set_item("archive_size", summary.archive_size)?;
        d.set_item("stored_chunk_bytes", summary.stats.stored_chunk_bytes)?;
        d.set_item("thin", thin)?;
        d.set_item("encrypted", encrypted)?;
        d.set_item("signed_by", signer)?;
        d.set_item("signature_file", signature_file)?;
        Ok(d)
    }

    /// Drop everything written so far; no file is left at the path.
    fn abort(&self, py: Python<'_>) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner()).take();
        py.detach(move || drop(state));
    }

    /// Whether `finish` or `abort` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}
