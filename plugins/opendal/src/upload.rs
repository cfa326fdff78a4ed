//! The write side: put a whole object so that it appears at its key only when
//! complete.
//!
//! * **S3** (and other object stores): the object is written in parts of
//!   [`UploadOptions::part_size`], up to [`UploadOptions::concurrency`] parts in
//!   flight, as one multipart upload that is completed only after the last part;
//!   an object that fits one part is one `PUT`. Until completion nothing is
//!   visible at the key, and a failed upload is aborted.
//! * **Local files**: written through [`PendingFile`] — an unnamed file in the
//!   target's folder (`O_TMPFILE`), synced, named and renamed over the target
//!   when complete, so even a killed process leaves nothing next to it.
//! * **Memory**: the object is stored on close.
//!
//! Every request goes through the retry and timeout layers, so a part that
//! fails with a 5xx or times out is sent again (OpenDAL's part tasks retry
//! temporary errors themselves as well).

use std::io::Write;

use hexz_format::{PendingFile, ReadAt, Sink};
use opendal::options::WriteOptions;

use crate::error::OpendalError;
use crate::location::{self, Location, S3Options};
use crate::multipart::{self, StaleUploads};
use crate::runtime;

/// Default part size: 8 MiB (S3 needs at least 5 MiB for all parts but the last).
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// Default number of parts in flight.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Parts smaller than this are refused (S3's minimum part size).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// How to upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// Bytes per part (at least [`MIN_PART_SIZE`]).
    pub part_size: usize,
    /// Parts uploaded at once (at least 1).
    pub concurrency: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            part_size: DEFAULT_PART_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadReport {
    /// Bytes written.
    pub bytes: u64,
    /// Parts handed to the store (1 for a single `PUT`).
    pub parts: u64,
    /// S3: incomplete multipart uploads of the key, left by killed publishes,
    /// aborted before this one (see [`crate::multipart`]).
    pub stale: StaleUploads,
}

/// The size of the object at `url`, or `None` when there is none. One `stat`.
pub fn object_size(url: &str, s3: &S3Options) -> Result<Option<u64>, OpendalError> {
    let location = Location::parse(url)?;
    if let Location::Fs { path } = &location {
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(OpendalError::BadUrl {
                url: url.to_string(),
                reason: "not a regular file".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(OpendalError::LocalIo {
                url: url.to_string(),
                error,
            }),
        };
    }
    let (op, path) = crate::blocking_operator(url, s3)?;
    match op.stat(&path) {
        Ok(meta) => Ok(Some(meta.content_length())),
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OpendalError::backend(url, "stat", e)),
    }
}

/// Write all of `data` as the object at `url`. `progress` is called with the
/// bytes handed over so far after each part. On error the partial upload is
/// aborted (best effort) and nothing appears at `url`.
pub fn upload(
    url: &str,
    s3: &S3Options,
    data: &dyn ReadAt,
    options: &UploadOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<UploadReport, OpendalError> {
    if options.part_size < MIN_PART_SIZE || options.concurrency == 0 {
        return Err(OpendalError::BadSetting {
            setting: "upload",
            detail: format!(
                "part size must be at least {MIN_PART_SIZE} bytes and concurrency at least 1 \
                 (got {} and {})",
                options.part_size, options.concurrency
            ),
        });
    }
    let location = Location::parse(url)?;
    if let Location::Fs { path } = &location {
        return write_local(url, path.as_ref(), data, options, progress);
    }
    // The parts of earlier uploads of this key that never completed (a killed
    // publish) are aborted first.
    let stale = match &location {
        Location::S3 { bucket, key } => multipart::abort_stale(url, bucket, key, s3),
        _ => StaleUploads::default(),
    };
    let rt = runtime::get()?;
    let (op, path) = {
        let _guard = rt.enter();
        location::operator(url, &location, s3)?
    };
    let failed = |e| OpendalError::backend(url, "write", e);
    let write_options = WriteOptions {
        concurrent: options.concurrency,
        chunk: Some(options.part_size),
        ..Default::default()
    };
    let mut writer = rt
        .block_on(op.writer_options(&path, write_options))
        .map_err(failed)?;
    let mut report = UploadReport {
        stale,
        ..UploadReport::default()
    };
    let mut sent = 0u64;
    let result = (|| {
        for_each_part(data, options.part_size, |part| {
            let n = part.len() as u64;
            rt.block_on(writer.write(part)).map_err(failed)?;
            sent += n;
            report.parts += 1;
            progress(sent);
            Ok(())
        })?;
        rt.block_on(writer.close()).map_err(failed)?;
        Ok(())
    })();
    if let Err(e) = result {
        // The multipart upload is dropped; nothing was completed at the key.
        let _ = rt.block_on(writer.abort());
        return Err(e);
    }
    report.bytes = sent;
    report.parts = report.parts.max(1);
    Ok(report)
}

/// A local file: written through [`PendingFile`] (unnamed until complete, so
/// even a killed process leaves nothing next to the target), a part at a time.
fn write_local(
    url: &str,
    path: &std::path::Path,
    data: &dyn ReadAt,
    options: &UploadOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<UploadReport, OpendalError> {
    let local = |error| OpendalError::LocalIo {
        url: url.to_string(),
        error,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(local)?;
    }
    let mut file = PendingFile::create(path).map_err(local)?;
    let (mut parts, mut sent) = (0u64, 0u64);
    let bytes = for_each_part(data, options.part_size, |part| {
        file.write_all(&part).map_err(local)?;
        parts += 1;
        sent += part.len() as u64;
        progress(sent);
        Ok(())
    })?;
    file.commit().map_err(local)?;
    Ok(UploadReport {
        bytes,
        parts: parts.max(1),
        stale: StaleUploads::default(),
    })
}

/// Hand the bytes of `data` to `send` in order, `part_size` bytes at a time (the
/// last part shorter), each read into a buffer of its own: the whole is never in
/// memory. Returns the bytes sent.
pub(crate) fn for_each_part(
    data: &dyn ReadAt,
    part_size: usize,
    mut send: impl FnMut(Vec<u8>) -> Result<(), OpendalError>,
) -> Result<u64, OpendalError> {
    let size = data.size();
    let mut sent = 0u64;
    while sent < size {
        let n = (size - sent).min(part_size as u64) as usize;
        let mut buf = vec![0; n];
        data.read_exact_at(sent, &mut buf)
            .map_err(|error| OpendalError::LocalIo {
                url: data.name(),
                error,
            })?;
        send(buf)?;
        sent += n as u64;
    }
    Ok(sent)
}

/// Delete the object at `url` (missing objects are not an error).
pub fn delete(url: &str, s3: &S3Options) -> Result<(), OpendalError> {
    let (op, path) = crate::blocking_operator(url, s3)?;
    op.delete(&path)
        .map_err(|e| OpendalError::backend(url, "delete", e))
}
