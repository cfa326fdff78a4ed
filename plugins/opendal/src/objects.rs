//! Small objects under one URL prefix, with conditional writes: what a writable
//! volume needs from a store (its head pointer and snapshot objects).
//!
//! [`ObjectDir`] is a "folder" of objects (`s3://bucket/prefix/`, `memory://name/`);
//! names are joined to it with `/`. A conditional write either happens or is
//! reported as [`Written::ConditionFailed`], never silently dropped:
//!
//! * **S3**: `If-None-Match: *` for create-only writes, `If-Match: <etag>` for
//!   compare-and-swap (S3 since 2024; moto supports both).
//! * **Memory** (no `If-Match` in OpenDAL's memory service): the compare and the
//!   write run under one process-wide lock, which is exact because the memory
//!   store is process-local.
//! * Other services without conditional writes are refused when a conditional
//!   write is asked for.

use std::sync::Mutex;
use std::time::SystemTime;

use opendal::blocking;
use opendal::options::{ReadOptions, WriteOptions};

use crate::error::OpendalError;
use crate::location::{Location, S3Options};

/// Serializes compare-and-swap on stores without `If-Match` (memory).
static EMULATED_CAS: Mutex<()> = Mutex::new(());

/// A prefix in a store, holding named objects.
#[derive(Debug, Clone)]
pub struct ObjectDir {
    op: blocking::Operator,
    /// Object path of the prefix, ending in `/` (or empty).
    prefix: String,
    url: String,
    emulate_cas: bool,
    if_match: bool,
}

/// An object's bytes and its entity tag (when the store gives one).
pub type Tagged = (Vec<u8>, Option<String>);

/// How [`ObjectDir::put`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Replace whatever is there.
    None,
    /// Only if no object has the name.
    IfAbsent,
    /// Only if the object is still the one read as `etag` / `content`
    /// (the etag is used where the store checks it, the content otherwise).
    IfMatch {
        /// Entity tag from [`ObjectDir::get`].
        etag: Option<String>,
        /// The bytes read with it.
        content: Vec<u8>,
    },
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The object now holds the new bytes.
    Done,
    /// The condition did not hold; nothing was written.
    ConditionFailed,
}

/// An object found by [`ObjectDir::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Name relative to the listed folder.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last write, when the store says.
    pub modified: Option<SystemTime>,
}

impl ObjectDir {
    /// The folder at `url` (`s3://bucket/prefix`, `memory://name`). Local folders
    /// are not served here (the volume code uses the file system directly).
    pub fn open(url: &str, s3: &S3Options) -> Result<Self, OpendalError> {
        let base = url.trim_end_matches('/');
        if let Location::Fs { .. } | Location::Http { .. } = Location::parse(&format!("{base}/x"))?
        {
            return Err(OpendalError::BadUrl {
                url: url.to_string(),
                reason: "a writable object folder needs an object store (s3://, memory://, ...)"
                    .into(),
            });
        }
        let probe = format!("{base}/x");
        let (op, path) = crate::blocking_operator(&probe, s3)?;
        let prefix = path[..path.len() - 1].to_string();
        let cap = op.info().capability();
        let scheme = base.split("://").next().unwrap_or_default();
        Ok(Self {
            op,
            prefix,
            url: base.to_string(),
            emulate_cas: scheme == "memory",
            if_match: cap.write_with_if_match,
        })
    }

    /// `url/name`.
    pub fn url_of(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The object `name` and its entity tag, or `None` when there is none.
    /// The bytes are those of the etag (a change between stat and read is
    /// retried).
    pub fn get(&self, name: &str) -> Result<Option<Tagged>, OpendalError> {
        let path = self.path(name);
        let failed = |op, e| OpendalError::backend(&self.url_of(name), op, e);
        for _ in 0..8 {
            let meta = match self.op.stat(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(failed("stat", e)),
            };
            let etag = meta.etag().map(str::to_string);
            let options = ReadOptions {
                if_match: etag.clone().filter(|_| self.if_match),
                ..Default::default()
            };
            match self.op.read_options(&path, options) {
                Ok(buf) => return Ok(Some((buf.to_vec(), etag))),
                Err(e)
                    if matches!(
                        e.kind(),
                        opendal::ErrorKind::ConditionNotMatch | opendal::ErrorKind::NotFound
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(failed("read", e)),
            }
        }
        Err(OpendalError::Runtime {
            detail: format!("{}: object kept changing while read", self.url_of(name)),
        })
    }

    /// Write the bytes of `data` as `name` (unconditionally), read and sent a
    /// part at a time (a multipart upload where the store has one), so that an
    /// object of any size is never held in memory. Returns the bytes written. On
    /// failure nothing is completed at `name`.
    pub fn put_from(
        &self,
        name: &str,
        data: &dyn hexz_format::ReadAt,
        options: &crate::upload::UploadOptions,
    ) -> Result<u64, OpendalError> {
        let url = self.url_of(name);
        let failed = |e| OpendalError::backend(&url, "write", e);
        let mut writer = self
            .op
            .writer_options(
                &self.path(name),
                WriteOptions {
                    chunk: Some(options.part_size),
                    concurrent: options.concurrency,
                    ..Default::default()
                },
            )
            .map_err(failed)?;
        // Dropped unclosed on error: the upload is not completed.
        let sent = crate::upload::for_each_part(data, options.part_size, |part| {
            writer.write(part).map_err(failed)
        })?;
        writer.close().map_err(failed)?;
        Ok(sent)
    }

    /// Write `bytes` as `name` if `condition` holds.
    pub fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: &Condition,
    ) -> Result<Written, OpendalError> {
        let path = self.path(name);
        let url = self.url_of(name);
        let write =
            |options: WriteOptions| match self.op.write_options(&path, bytes.clone(), options) {
                Ok(_) => Ok(Written::Done),
                Err(e) if e.kind() == opendal::ErrorKind::ConditionNotMatch => {
                    Ok(Written::ConditionFailed)
                }
                Err(e) => Err(OpendalError::backend(&url, "write", e)),
            };
        match condition {
            Condition::None => write(WriteOptions::default()),
            Condition::IfAbsent if !self.emulate_cas => write(WriteOptions {
                if_not_exists: true,
                ..Default::default()
            }),
            Condition::IfMatch {
                etag: Some(etag), ..
            } if self.if_match && !self.emulate_cas => write(WriteOptions {
                if_match: Some(etag.clone()),
                ..Default::default()
            }),
            Condition::IfAbsent | Condition::IfMatch { .. } if self.emulate_cas => {
                let _held = EMULATED_CAS.lock().unwrap_or_else(|p| p.into_inner());
                let current = match self.op.read(&path) {
                    Ok(b) => Some(b.to_vec()),
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => None,
                    Err(e) => return Err(OpendalError::backend(&url, "read", e)),
                };
                let holds = match condition {
                    Condition::IfMatch { content, .. } => current.as_ref() == Some(content),
                    _ => current.is_none(),
                };
                if !holds {
                    return Ok(Written::ConditionFailed);
                }
                write(WriteOptions::default())
            }
            _ => Err(OpendalError::BadSetting {
                setting: "conditional write",
                detail: format!("{url}: the store does not support conditional writes"),
            }),
        }
    }

    /// Objects directly under `folder` (a name relative to this prefix).
    pub fn list(&self, folder: &str) -> Result<Vec<Listed>, OpendalError> {
        let dir = format!("{}{}/", self.prefix, folder.trim_end_matches('/'));
        let entries = match self.op.list(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(OpendalError::backend(&self.url_of(folder), "list", e)),
        };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let path = entry.path();
            let Some(name) = path.strip_prefix(&dir) else {
                continue;
            };
            if name.is_empty() || name.ends_with('/') {
                continue;
            }
            let mut meta = entry.metadata().clone();
            if meta.last_modified().is_none() {
                // Some services list names only: ask for the rest.
                if let Ok(m) = self.op.stat(path) {
                    meta = m;
                }
            }
            out.push(Listed {
                name: name.to_string(),
                size: meta.content_length(),
                modified: meta.last_modified().map(SystemTime::from),
            });
        }
        Ok(out)
    }

    /// Delete `name` (a missing object is not an error).
    pub fn delete(&self, name: &str) -> Result<(), OpendalError> {
        self.op
            .delete(&self.path(name))
            .map_err(|e| OpendalError::backend(&self.url_of(name), "delete", e))
    }
}
