//! Where a volume's objects live: a local folder or an object store.
//!
//! Both give the same three operations the commit protocol needs: read the head
//! pointer (with a token to compare against), swing it only if it is still the one
//! read (compare-and-swap), and put / list / delete snapshot objects.
//!
//! * **Local folder** (a plain path or `file:///abs`): snapshots are written to a
//!   temporary file, synced and renamed into place; the head is swung under an
//!   exclusive `flock` on `HEAD.lock` (released by the kernel if the process
//!   dies): read, compare, write `HEAD` to a temporary file, sync, rename over
//!   `HEAD`, sync the folder.
//! * **Object store** (`s3://`, `memory://`, ...): [`hexz_opendal::objects::ObjectDir`]
//!   with `If-None-Match: *` to create and `If-Match: <etag>` to swing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hexz_format::{PendingFile, Sink};
use hexz_opendal::objects::{Condition, ObjectDir, Written};

use super::VolumeError;
use crate::registry::url_scheme;

/// The head as read: its bytes and what a compare-and-swap compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadToken {
    pub(crate) bytes: Vec<u8>,
    pub(crate) etag: Option<String>,
}

/// A stored object, for gc.
#[derive(Debug, Clone)]
pub(crate) struct StoredObject {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) modified: Option<SystemTime>,
}

/// A volume's store.
#[derive(Debug)]
pub(crate) enum Store {
    Local { dir: PathBuf, url: String },
    Remote(Box<ObjectDir>),
}

pub(crate) const HEAD: &str = "HEAD";
const LOCK: &str = "HEAD.lock";
pub(crate) const SNAPSHOTS: &str = "snapshots";

impl Store {
    /// The store of the volume at `url`.
    pub(crate) fn open(
        url: &str,
        s3: Option<&hexz_opendal::S3Options>,
    ) -> Result<Self, VolumeError> {
        let url = url.trim_end_matches('/').to_string();
        let local = match url_scheme(&url).as_deref() {
            None => Some(PathBuf::from(&url)),
            Some("file") => Some(PathBuf::from(url.trim_start_matches("file://"))),
            Some(_) => None,
        };
        match local {
            Some(dir) => Ok(Store::Local { dir, url }),
            None => {
                let s3 = s3
                    .cloned()
                    .unwrap_or_else(hexz_opendal::S3Options::from_env);
                let dir = ObjectDir::open(&url, &s3).map_err(|e| VolumeError::store(&url, e))?;
                Ok(Store::Remote(Box::new(dir)))
            }
        }
    }

    /// The volume's URL (as given, without a trailing `/`).
    pub(crate) fn url(&self) -> String {
        match self {
            Store::Local { url, .. } => url.clone(),
            Store::Remote(d) => d.url_of("").trim_end_matches('/').to_string(),
        }
    }

    /// Where object `name` is, as a path or URL the registry opens.
    pub(crate) fn location_of(&self, name: &str) -> String {
        match self {
            Store::Local { dir, .. } => dir.join(name).display().to_string(),
            Store::Remote(d) => d.url_of(name),
        }
    }

    fn local_err(&self, path: &Path, error: io::Error) -> VolumeError {
        VolumeError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// The head, or `None` when the volume does not exist.
    pub(crate) fn read_head(&self) -> Result<Option<HeadToken>, VolumeError> {
        match self {
            Store::Local { dir, .. } => {
                let path = dir.join(HEAD);
                match fs::read(&path) {
                    Ok(bytes) => Ok(Some(HeadToken { bytes, etag: None })),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.local_err(&path, e)),
                }
            }
            Store::Remote(d) => Ok(d
                .get(HEAD)
                .map_err(|e| VolumeError::store(&d.url_of(HEAD), e))?
                .map(|(bytes, etag)| HeadToken { bytes, etag })),
        }
    }

    /// Replace the head with `new` if it is still `expected` (`None`: if there is
    /// no head yet). `Ok(false)`: it changed, nothing was written.
    pub(crate) fn swing_head(
        &self,
        expected: Option<&HeadToken>,
        new: Vec<u8>,
    ) -> Result<bool, VolumeError> {
        match self {
            Store::Local { dir, .. } => {
                fs::create_dir_all(dir).map_err(|e| self.local_err(dir, e))?;
                let lock_path = dir.join(LOCK);
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| self.local_err(&lock_path, e))?;
                lock.lock().map_err(|e| self.local_err(&lock_path, e))?;
                let head_path = dir.join(HEAD);
                let current = match fs::read(&head_path) {
                    Ok(b) => Some(b),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(self.local_err(&head_path, e)),
                };
                if current.as_deref() != expected.map(|t| t.bytes.as_slice()) {
                    return Ok(false);
                }
                write_file_atomic(dir, HEAD, &new).map_err(|e| self.local_err(&head_path, e))?;
                drop(lock);
                Ok(true)
            }
            Store::Remote(d) => {
                let condition = match expected {
                    None => Condition::IfAbsent,
                    Some(t) => Condition::IfMatch {
                        etag: t.etag.clone(),
                        content: t.bytes.clone(),
                    },
                };
                let written = d
                    .put(HEAD, new, &condition)
                    .map_err(|e| VolumeError::store(&d.url_of(HEAD), e))?;
                Ok(written == Written::Done)
            }
        }
    }

    /// Store a snapshot object (content-addressed: rewriting it is harmless).
    pub(crate) fn put_snapshot(&self, name: &str, bytes: Vec<u8>) -> Result<(), VolumeError> {
        let key = format!("{SNAPSHOTS}/{name}");
        match self {
            Store::Local { dir, .. } => {
                let folder = dir.join(SNAPSHOTS);
                fs::create_dir_all(&folder).map_err(|e| self.local_err(&folder, e))?;
                write_file_atomic(&folder, name, &bytes)
                    .map_err(|e| self.local_err(&folder.join(name), e))
            }
            Store::Remote(d) => d
                .put(&key, bytes, &Condition::None)
                .map(|_| ())
                .map_err(|e| VolumeError::store(&d.url_of(&key), e)),
        }
    }

    /// The snapshot objects (and, locally, leftover temporary files).
    pub(crate) fn list_snapshots(&self) -> Result<Vec<StoredObject>, VolumeError> {
        match self {
            Store::Local { dir, .. } => {
                let folder = dir.join(SNAPSHOTS);
                let entries = match fs::read_dir(&folder) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(self.local_err(&folder, e)),
                };
                let mut out = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|e| self.local_err(&folder, e))?;
                    let meta = entry
                        .metadata()
                        .map_err(|e| self.local_err(&entry.path(), e))?;
                    if !meta.is_file() {
                        continue;
                    }
                    out.push(StoredObject {
                        name: entry.file_name().to_string_lossy().into_owned(),
                        size: meta.len(),
                        modified: meta.modified().ok(),
                    });
                }
                Ok(out)
            }
            Store::Remote(d) => Ok(d
                .list(SNAPSHOTS)
                .map_err(|e| VolumeError::store(&d.url_of(SNAPSHOTS), e))?
                .into_iter()
                .map(|l| StoredObject {
                    name: l.name,
                    size: l.size,
                    modified: l.modified,
                })
                .collect()),
        }
    }

    /// Delete a snapshot object.
    pub(crate) fn delete_snapshot(&self, name: &str) -> Result<(), VolumeError> {
        let key = format!("{SNAPSHOTS}/{name}");
        match self {
            Store::Local { dir, .. } => {
                let path = dir.join(&key);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(self.local_err(&path, e)),
                }
            }
            Store::Remote(d) => d
                .delete(&key)
                .map_err(|e| VolumeError::store(&d.url_of(&key), e)),
        }
    }
}

impl Store {
    /// A temporary file to write a snapshot too large to build in memory: in the
    /// snapshots folder of a local volume (stored by a rename; left behind by a
    /// crash, it is an unreferenced object that gc removes), else in the system's
    /// temporary folder.
    pub(crate) fn scratch_file(&self) -> Result<tempfile::NamedTempFile, VolumeError> {
        match self {
            Store::Local { dir, .. } => {
                let folder = dir.join(SNAPSHOTS);
                fs::create_dir_all(&folder).map_err(|e| self.local_err(&folder, e))?;
                temp_file_in(&folder, "snapshot").map_err(|e| self.local_err(&folder, e))
            }
            Store::Remote(_) => {
                tempfile::NamedTempFile::new().map_err(|e| self.local_err(&std::env::temp_dir(), e))
            }
        }
    }

    /// Store the snapshot written to `file` (from [`Store::scratch_file`]) as
    /// `name`: renamed into place locally, uploaded a part at a time otherwise.
    pub(crate) fn put_snapshot_file(
        &self,
        name: &str,
        file: tempfile::NamedTempFile,
    ) -> Result<(), VolumeError> {
        match self {
            Store::Local { dir, .. } => {
                let folder = dir.join(SNAPSHOTS);
                persist_synced(file, &folder, name)
                    .map_err(|e| self.local_err(&folder.join(name), e))
            }
            Store::Remote(d) => {
                let key = format!("{SNAPSHOTS}/{name}");
                let source = hexz_format::FileSource::open(file.path())?;
                d.put_from(
                    &key,
                    &source,
                    &hexz_opendal::upload::UploadOptions::default(),
                )
                .map(drop)
                .map_err(|e| VolumeError::store(&d.url_of(&key), e))
            }
        }
    }
}

/// Write `name` in `dir` through a [`PendingFile`] (unnamed until complete,
/// synced, renamed into place, folder synced): after a crash or a kill the name
/// holds the old or the new bytes, and nothing else is left.
fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut file = PendingFile::create(&dir.join(name))?;
    file.write_all(bytes)?;
    file.commit()
}

/// A temporary file in `dir` (`.<name>.XXXXXX.tmp`), 0o666 less the umask like an
/// archive `hexz build` writes (tempfile's default is 0o600, which would hide a
/// volume from the other readers of a shared folder).
fn temp_file_in(dir: &Path, name: &str) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
}

/// Sync `temp` (a file in `dir`), rename it to `name` and sync the folder.
fn persist_synced(temp: tempfile::NamedTempFile, dir: &Path, name: &str) -> io::Result<()> {
    temp.as_file().sync_all()?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}
