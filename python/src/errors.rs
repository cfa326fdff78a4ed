//! The one place Rust errors become Python exceptions.
//!
//! Every exception derives from `hexz.HexzError`:
//!
//! | exception | raised for |
//! |---|---|
//! | `NotFoundError` | a missing entry, archive file or remote object |
//! | `CorruptError` | damaged or hostile archive bytes (CRC32, BLAKE3, structure, limits, unsupported version) |
//! | `BadKeyError` | a wrong or missing key or passphrase for an encrypted archive |
//! | `SignatureError` | a missing, invalid or untrusted signature |
//! | `StorageError` | local I/O, S3 or HTTP failures (after retries) |
//! | `RecipeError` | an invalid recipe (the message names file, line and column) |
//! | `InvalidInputError` | bad arguments: names, settings, codecs, columns, shards, destinations hexz may not replace |
//! | `UnsupportedError` | a feature this build of hexz does not implement |
//! | `ConflictError` | a volume flush lost to another writer (`.expected`, `.found` versions) |

use std::io;

use hexz_pipeline::PipelineError;
use hexz_pipeline::volume::VolumeError;
use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    hexz,
    HexzError,
    PyException,
    "Base class of every error hexz raises."
);
create_exception!(
    hexz,
    NotFoundError,
    HexzError,
    "A missing entry, archive file or remote object."
);
create_exception!(
    hexz,
    CorruptError,
    HexzError,
    "The archive's bytes are damaged or hostile (failed CRC32/BLAKE3 check, bad structure)."
);
create_exception!(
    hexz,
    BadKeyError,
    HexzError,
    "A wrong or missing key or passphrase for an encrypted archive."
);
create_exception!(
    hexz,
    SignatureError,
    HexzError,
    "A missing, invalid or untrusted signature."
);
create_exception!(
    hexz,
    StorageError,
    HexzError,
    "Reading or writing storage failed: local I/O, S3 or HTTP (after retries)."
);
create_exception!(
    hexz,
    RecipeError,
    HexzError,
    "The recipe is invalid; the message names the file, line, column and fix."
);
create_exception!(
    hexz,
    InvalidInputError,
    HexzError,
    "An argument hexz cannot use: entry name, setting, codec, column, shard."
);
create_exception!(
    hexz,
    UnsupportedError,
    HexzError,
    "A feature this build of hexz does not implement."
);

create_exception!(
    hexz,
    ConflictError,
    HexzError,
    "Another writer committed a version of the volume first: nothing was committed. The \
     unflushed writes stay readable through the handle, in memory only (lost when the process \
     exits) unless the volume was opened with a write-ahead log (wal=), which keeps them. \
     Attributes: volume, expected (the version these writes apply to), found (the version now \
     current)."
);

/// A Rust error on its way to Python. Functions return `Result<T, Error>`; PyO3
/// converts through `From<Error> for PyErr`.
#[derive(Debug)]
pub enum Error {
    /// From the pipeline (which wraps the format layer's errors); boxed, so
    /// results stay small.
    Pipeline(Box<PipelineError>),
    /// From the format layer; shared, so a prefetcher can report its first
    /// failure again on every later call (same class, same message).
    Format(std::sync::Arc<hexz_format::Error>),
    /// An argument rejected by the bindings themselves.
    Invalid(String),
    /// A feature not built yet.
    Unsupported(String),
    /// An operation on a closed object (Python's `ValueError`, as for files).
    Closed(String),
    /// From a writable volume; boxed, so results stay small.
    Volume(Box<VolumeError>),
}

impl From<VolumeError> for Error {
    fn from(e: VolumeError) -> Self {
        Self::Volume(Box::new(e))
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        Self::Pipeline(Box::new(e))
    }
}

impl From<hexz_format::Error> for Error {
    fn from(e: hexz_format::Error) -> Self {
        Self::Format(std::sync::Arc::new(e))
    }
}

/// Result alias of the bindings.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Pipeline(e) => pipeline(*e),
            Error::Format(e) => format(&e),
            Error::Invalid(m) => InvalidInputError::new_err(m),
            Error::Unsupported(m) => UnsupportedError::new_err(m),
            Error::Closed(m) => pyo3::exceptions::PyValueError::new_err(m),
            Error::Volume(e) => volume(*e),
        }
    }
}

fn io_error(kind: io::ErrorKind, message: String) -> PyErr {
    if kind == io::ErrorKind::NotFound {
        NotFoundError::new_err(message)
    } else {
        StorageError::new_err(message)
    }
}

fn format(e: &hexz_format::Error) -> PyErr {
    use hexz_format::Error as F;
    let message = e.to_string();
    if e.is_corruption() {
        return CorruptError::new_err(message);
    }
    match e {
        F::EntryNotFound { .. } => NotFoundError::new_err(message),
        F::UnsupportedVersion { .. } => CorruptError::new_err(message),
        F::SourceRead { error, .. } | F::Io { error, .. } | F::Input { error, .. } => {
            io_error(error.kind(), message)
        }
        // A destination hexz may not write to (not its file, read-only, an input).
        F::Destination(hexz_format::destination::DestinationError::Io { error, .. }) => {
            io_error(error.kind(), message)
        }
        F::Destination(_) => InvalidInputError::new_err(message),
        F::Unsupported { .. } => UnsupportedError::new_err(message),
        F::KeyRequired { .. } | F::WrongKey { .. } | F::InvalidKey { .. } | F::KdfLimit { .. } => {
            BadKeyError::new_err(message)
        }
        F::Unsigned { .. } | F::BadSignature { .. } => SignatureError::new_err(message),
        // A parent not looked for (its hint leads outside the child's store or
        // folder) is reported like a missing one, the message saying why.
        F::ParentUnavailable { .. } | F::ParentNotAttached { .. } | F::ParentRefused { .. } => {
            NotFoundError::new_err(message)
        }
        // Another archive where a parent should be: wrong bytes, as the CLI's
        // exit 3 says.
        F::ParentMismatch { .. } => CorruptError::new_err(message),
        F::OutOfRange { .. }
        | F::InvalidName { .. }
        | F::DuplicateName { .. }
        | F::InvalidSetting { .. }
        | F::InvalidColumns { .. }
        | F::NotAFile { .. }
        | F::UnknownCodec(_) => InvalidInputError::new_err(message),
        _ => HexzError::new_err(message),
    }
}

fn pipeline(e: PipelineError) -> PyErr {
    use PipelineError as P;
    let message = e.to_string();
    match e {
        P::Format(e) => format(&e),
        // A parent that cannot be opened: the class of the cause (missing, wrong
        // key, corrupt...), the message naming the parent.
        P::Parent { error, .. } => {
            let cause = pipeline(*error);
            Python::attach(|py| PyErr::from_type(cause.get_type(py), message))
        }
        P::Recipe(_) => RecipeError::new_err(message),
        P::Transport { error, .. } => {
            let kind = error
                .downcast_ref::<hexz_opendal::OpendalError>()
                .map(hexz_opendal::OpendalError::io_kind)
                .unwrap_or(io::ErrorKind::Other);
            io_error(kind, message)
        }
        P::Io { error, .. } => io_error(error.kind(), message),
        P::NotFound { .. } => NotFoundError::new_err(message),
        P::UnknownPlugin { .. }
        | P::PluginSettings { .. }
        | P::UnsupportedInput { .. }
        | P::UnsafePath { .. }
        | P::UnknownColumn { .. }
        | P::Shard(_)
        | P::Exists { .. }
        | P::ParentIsOutput { .. }
        | P::SymlinkLoop { .. }
        | P::DanglingSymlink { .. } => InvalidInputError::new_err(message),
        P::Records(_) => InvalidInputError::new_err(message),
        _ => HexzError::new_err(message),
    }
}

fn volume(e: VolumeError) -> PyErr {
    use VolumeError as V;
    let message = e.to_string();
    match e {
        V::Conflict {
            volume,
            expected,
            found,
            ..
        } => conflict(message, volume, expected, found),
        V::WalConflict {
            volume,
            wal_base,
            head,
            ..
        } => conflict(message, volume, wal_base, head),
        V::NotFound { .. } | V::NoSuchVersion { .. } => NotFoundError::new_err(message),
        V::BadHead { .. }
        | V::SnapshotMismatch { .. }
        | V::NotASnapshot { .. }
        | V::BadWal { .. } => CorruptError::new_err(message),
        V::Exists { .. }
        | V::ReadOnly { .. }
        | V::OutOfRange { .. }
        | V::Overflow { .. }
        | V::TooLarge { .. }
        | V::WalMismatch { .. } => InvalidInputError::new_err(message),
        V::Io { error, .. } => io_error(error.kind(), message),
        V::Store { error, .. } => io_error(error.io_kind(), message),
        V::Archive(e) => format(&e),
        V::Pipeline(e) => pipeline(*e),
    }
}

/// A `ConflictError` carrying the versions.
fn conflict(message: String, volume: String, expected: u64, found: u64) -> PyErr {
    Python::attach(|py| {
        let err = ConflictError::new_err(message);
        let value = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail short of
        // memory exhaustion; the message carries the same facts anyway.
        let _ = value.setattr("volume", volume);
        let _ = value.setattr("expected", expected);
        let _ = value.setattr("found", found);
        err
    })
}
