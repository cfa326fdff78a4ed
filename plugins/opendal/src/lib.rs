//! # hexz-opendal
//!
//! The transport plugin: [`OpendalSource`] reads an archive from a local file, S3,
//! an HTTP server or memory through [OpenDAL](https://opendal.apache.org), behind
//! hexz-format's [`ReadAt`] trait, so the archive reader does not know where the
//! bytes come from.
//!
//! Locations (see [`Location::parse`]):
//!
//! | form | service |
//! |---|---|
//! | `data/a.hxz`, `/abs/a.hxz`, `file:///abs/a.hxz` | local file |
//! | `s3://bucket/key` | S3 (settings from the AWS environment, [`S3Options`]) |
//! | `http://host/path`, `https://host/path` | anonymous HTTP(S) with Range requests |
//! | `memory://name` | the process-wide in-memory store |
//! | `gs://bucket/key` | Google Cloud Storage (feature `gcs`) |
//! | `azblob://container/path` | Azure Blob Storage (feature `azblob`) |
//!
//! Costs: opening a source costs one `stat` (an HTTP `HEAD`; none with
//! [`OpendalSource::open_with_size`]); each
//! [`ReadAt::read_exact_at`] is one ranged GET (large reads are split into
//! pieces fetched at once); [`ReadAt::read_ranges`] merges near ranges into one
//! GET and fetches the groups in parallel (at most [`MAX_IN_FLIGHT`] at once).
//! How near, and how large a piece, follows what the object's requests have
//! cost so far ([`plan`]: latency times bandwidth; [`COALESCE_GAP`] and
//! [`PARALLEL_PIECE`] until both are measured, and as floors).
//! Local files are read with `pread`. [`upload`] writes objects (multipart,
//! visible only when complete).
//! Temporary failures (5xx, timeouts, resets) are retried with exponential
//! backoff ([`location::RETRY_TIMES`]); each request has a timeout. Errors name
//! the URL and, when there is one, the HTTP status.
//!
//! ```
//! use hexz_format::ReadAt;
//! use hexz_opendal::OpendalSource;
//! hexz_opendal::write_all("memory://doc/example", b"hello, world".to_vec())?;
//! let source = OpendalSource::open("memory://doc/example")?;
//! assert_eq!(source.size(), 12);
//! let mut buf = [0; 5];
//! source.read_exact_at(7, &mut buf)?;
//! assert_eq!(&buf, b"world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod location;
pub mod multipart;
pub mod objects;
pub mod plan;
mod runtime;
pub mod upload;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use hexz_format::ReadAt;
use opendal::blocking;

pub use error::OpendalError;
pub use location::{Location, S3Options};
pub use multipart::StaleUploads;
pub use upload::{UploadOptions, UploadReport, delete, object_size, upload};

/// Ranges closer than this are fetched by one request (the gap is read and
/// dropped): a round trip (tens of ms to S3) costs more than 256 KiB of
/// transfer. The floor of [`plan::Plan::gap`], which grows to the measured
/// latency × bandwidth. The writer places index pages (up to 64 KiB each, a few in a row)
/// between batches of chunks, so a smaller gap would cut a run of neighbouring
/// chunks into several requests at each of them.
pub const COALESCE_GAP: u64 = 256 * 1024;
/// A merged request never grows past this (or past the measured piece size,
/// when that is larger).
pub const COALESCE_MAX: u64 = 16 * 1024 * 1024;
/// Reads larger than this are split into pieces of this size fetched in parallel
/// (AWS's guidance for byte-range GETs is 8 or 16 MB: below that, the per-request
/// cost dominates, and servers that copy the object per request suffer most).
/// The floor of [`plan::Plan::piece`], which grows with the measured latency ×
/// bandwidth.
pub const PARALLEL_PIECE: u64 = 8 * 1024 * 1024;
/// Requests one call keeps in flight at most (pieces of a large read, groups of
/// [`ReadAt::read_ranges`]).
pub const MAX_IN_FLIGHT: usize = 8;

/// The URL schemes this transport serves.
/// `gs`, `gcs` and `azblob` are always routed here; without the `gcs` /
/// `azblob` features opening them says which feature to enable.
pub const SCHEMES: &[&str] = &[
    "file", "s3", "http", "https", "memory", "gs", "gcs", "azblob",
];

/// An immutable object read by positional ranged reads through OpenDAL.
///
/// Its size comes from one `stat` at [`OpendalSource::open`] and is then fixed: an
/// archive is immutable, and a changed object is caught by the archive's checksums.
///
/// Local files (`file://` and plain paths) are read with `pread` on an open
/// handle by default: the same abstraction, without a trip through the async
/// runtime per read ([`OpendalSource::open_generic`] forces the OpenDAL `fs`
/// service, for comparison).
#[derive(Debug, Clone)]
pub struct OpendalSource {
    backend: Backend,
    url: String,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

#[derive(Debug, Clone)]
struct Service {
    op: blocking::Operator,
    async_op: opendal::Operator,
    path: String,
}

#[derive(Debug, Clone)]
enum Backend {
    /// A service behind OpenDAL: the blocking operator for single reads, the
    /// async one for parallel pieces.
    Service(Box<Service>),
    /// A local file read with `pread`.
    File(Arc<File>),
}

impl OpendalSource {
    /// Open `url` (see [`Location::parse`]) with S3 settings from the environment.
    pub fn open(url: &str) -> Result<Self, OpendalError> {
        Self::open_with(url, &S3Options::from_env())
    }

    /// Open `url` with explicit S3 settings.
    pub fn open_with(url: &str, s3: &S3Options) -> Result<Self, OpendalError> {
        if let Location::Fs { path } = Location::parse(url)? {
            let local = |error| OpendalError::LocalIo {
                url: url.to_string(),
                error,
            };
            // A regular file only, opened without blocking (a FIFO named by a
            // parent hint must not hang the reader).
            let file = hexz_format::source::open_regular_file(path.as_ref()).map_err(local)?;
            let meta = file.metadata().map_err(local)?;
            return Ok(Self {
                backend: Backend::File(Arc::new(file)),
                url: url.to_string(),
                size: meta.len(),
                modified: meta.modified().ok(),
            });
        }
        Self::open_generic(url, s3)
    }

    /// Open `url` through an OpenDAL service even for local files (one `stat`).
    pub fn open_generic(url: &str, s3: &S3Options) -> Result<Self, OpendalError> {
        let service = Self::service(url, s3)?;
        let meta = service
            .op
            .stat(&service.path)
            .map_err(|e| OpendalError::backend(url, "stat", e))?;
        Ok(Self {
            backend: Backend::Service(Box::new(service)),
            url: url.to_string(),
            size: meta.content_length(),
            modified: meta.last_modified().map(std::time::SystemTime::from),
        })
    }

    /// Open `url`, whose size is known already (a metadata snapshot taken by
    /// another handle on the same object carries it), without the `stat`: a
    /// remote open costs no request. Local files are opened as by
    /// [`OpendalSource::open_with`] (their size is free). Reads past the end of an
    /// object that turns out shorter fail as short reads.
    pub fn open_with_size(url: &str, s3: &S3Options, size: u64) -> Result<Self, OpendalError> {
        if let Location::Fs { .. } = Location::parse(url)? {
            return Self::open_with(url, s3);
        }
        Ok(Self {
            backend: Backend::Service(Box::new(Self::service(url, s3)?)),
            url: url.to_string(),
            size,
            modified: None,
        })
    }

    /// The OpenDAL operators (blocking and async) for `url`.
    fn service(url: &str, s3: &S3Options) -> Result<Service, OpendalError> {
        let location = Location::parse(url)?;
        let rt = runtime::get()?;
        let (async_op, path) = {
            let _guard = rt.enter();
            location::operator(url, &location, s3)?
        };
        let op = {
            let _guard = rt.enter();
            blocking::Operator::new(async_op.clone())
                .map_err(|e| OpendalError::backend(url, "configure", e))?
        };
        Ok(Service { op, async_op, path })
    }

    /// The URL this source was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetch the ranges `(offset, len)` of the object, each in one request, up to
    /// [`MAX_IN_FLIGHT`] at once; results in the order asked.
    fn fetch_all(&self, pieces: &[(u64, u64)]) -> Result<Vec<Vec<u8>>, OpendalError> {
        match &self.backend {
            Backend::File(file) => pieces
                .iter()
                .map(|&(offset, len)| {
                    let mut buf = vec![0; len as usize];
                    file.read_exact_at(&mut buf, offset).map_err(|error| {
                        if error.kind() == io::ErrorKind::UnexpectedEof {
                            OpendalError::ShortRead {
                                url: self.url.clone(),
                                offset,
                                wanted: len,
                                got: 0,
                            }
                        } else {
                            OpendalError::LocalIo {
                                url: self.url.clone(),
                                error,
                            }
                        }
                    })?;
                    Ok(buf)
                })
                .collect(),
            Backend::Service(service) => {
                let (async_op, path) = (&service.async_op, &service.path);
                let rt = runtime::get()?;
                let limit = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
                let results = rt.block_on(async {
                    let mut tasks = Vec::with_capacity(pieces.len());
                    for &(offset, len) in pieces {
                        let op = async_op.clone();
                        let path = path.clone();
                        let url = self.url.clone();
                        let limit = Arc::clone(&limit);
                        tasks.push(tokio::spawn(async move {
                            let _permit = limit.acquire_owned().await;
                            fetch_timed(&op, &path, offset, len, &url).await
                        }));
                    }
                    let mut out = Vec::with_capacity(tasks.len());
                    for task in tasks {
                        out.push(task.await);
                    }
                    out
                });
                let mut out = Vec::with_capacity(pieces.len());
                for (result, &(offset, len)) in results.into_iter().zip(pieces) {
                    let data = result.map_err(|e| OpendalError::Runtime {
                        detail: format!("{}: read task failed: {e}", self.url),
                    })?;
                    out.push(self.check_len(data, offset, len)?);
                }
                Ok(out)
            }
        }
    }

    fn check_len(
        &self,
        data: opendal::Result<Vec<u8>>,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, OpendalError> {
        let data = data.map_err(|e| OpendalError::backend(&self.url, "read", e))?;
        if data.len() as u64 != len {
            return Err(OpendalError::ShortRead {
                url: self.url.clone(),
                offset,
                wanted: len,
                got: data.len() as u64,
            });
        }
        Ok(data)
    }
}

/// One ranged request, its body read as it arrives: the time to its first
/// bytes and to its end go to [`plan::observe`].
async fn fetch_timed(
    op: &opendal::Operator,
    path: &str,
    offset: u64,
    len: u64,
    url: &str,
) -> opendal::Result<Vec<u8>> {
    use futures_core::Stream;
    let started = std::time::Instant::now();
    let mut stream = op
        .reader(path)
        .await?
        .into_stream(offset..offset + len)
        .await?;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut first_bytes = None;
    while let Some(buffer) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)).await
    {
        let buffer = buffer?;
        first_bytes.get_or_insert_with(|| started.elapsed());
        for bytes in buffer {
            out.extend_from_slice(&bytes);
        }
        if out.len() as u64 > len {
            // More than asked for (a server that ignored the range): stop here,
            // the length check reports it.
            break;
        }
    }
    let total = started.elapsed();
    plan::observe(url, len, first_bytes.unwrap_or(total), total);
    Ok(out)
}

/// Split `[offset, offset + len)` into pieces of at most `piece` bytes.
fn pieces(offset: u64, len: u64, piece: u64) -> Vec<(u64, u64)> {
    let piece = piece.max(1);
    let mut out = Vec::with_capacity(len.div_ceil(piece) as usize);
    let mut at = offset;
    let end = offset + len;
    while at < end {
        let n = (end - at).min(piece);
        out.push((at, n));
        at += n;
    }
    out
}

impl ReadAt for OpendalSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Backend::File(file) = &self.backend {
            return file.read_exact_at(buf, offset);
        }
        // A large read is fetched as several ranged requests at once.
        let parts = pieces(offset, buf.len() as u64, plan::plan(&self.url).piece);
        let data = self.fetch_all(&parts)?;
        let mut at = 0;
        for piece in data {
            buf[at..at + piece.len()].copy_from_slice(&piece);
            at += piece.len();
        }
        Ok(())
    }

    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); ranges.len()];
        if let Backend::File(file) = &self.backend {
            for (slot, &(offset, len)) in out.iter_mut().zip(ranges) {
                let mut buf = vec![0; len];
                file.read_exact_at(&mut buf, offset)?;
                *slot = buf;
            }
            return Ok(out);
        }
        // Merge near ranges into groups, split big groups into pieces, and fetch
        // every piece at once (bounded by MAX_IN_FLIGHT).
        let plan = plan::plan(&self.url);
        let groups = coalesce(ranges, &plan);
        let mut all = Vec::new();
        let mut spans = Vec::with_capacity(groups.len());
        for g in &groups {
            let p = pieces(g.start, g.end - g.start, plan.piece);
            spans.push(all.len()..all.len() + p.len());
            all.extend(p);
        }
        let fetched = self.fetch_all(&all)?;
        for (group, span) in groups.iter().zip(spans) {
            let data: Vec<u8> = if span.len() == 1 {
                fetched[span.start].clone()
            } else {
                fetched[span].concat()
            };
            for &i in &group.members {
                let (offset, len) = ranges[i];
                let from = (offset - group.start) as usize;
                out[i] = data[from..from + len].to_vec();
            }
        }
        Ok(out)
    }

    fn name(&self) -> String {
        self.url.clone()
    }

    fn modified(&self) -> Option<std::time::SystemTime> {
        self.modified
    }
}

/// One request serving several ranges.
#[derive(Debug, PartialEq, Eq)]
struct Group {
    start: u64,
    end: u64,
    /// Indexes into the caller's range list.
    members: Vec<usize>,
}

/// Sort ranges by offset and merge those within `plan.gap` of each other, up to
/// `plan.max_group` bytes per request. Empty ranges get no request.
fn coalesce(ranges: &[(u64, usize)], plan: &plan::Plan) -> Vec<Group> {
    let mut order: Vec<usize> = (0..ranges.len()).filter(|&i| ranges[i].1 > 0).collect();
    order.sort_by_key(|&i| ranges[i].0);
    let mut groups: Vec<Group> = Vec::new();
    for i in order {
        let (start, len) = ranges[i];
        let end = start + len as u64;
        if let Some(g) = groups.last_mut()
            && start <= g.end.saturating_add(plan.gap)
            && end.max(g.end) - g.start <= plan.max_group
        {
            g.end = g.end.max(end);
            g.members.push(i);
            continue;
        }
        groups.push(Group {
            start,
            end,
            members: vec![i],
        });
    }
    groups
}

/// A blocking operator for `url` and the object path inside it. Enters the shared
/// runtime while building it, as OpenDAL's blocking API requires.
pub fn blocking_operator(
    url: &str,
    s3: &S3Options,
) -> Result<(blocking::Operator, String), OpendalError> {
    let location = Location::parse(url)?;
    let rt = runtime::get()?;
    let _guard = rt.enter();
    let (op, path) = location::operator(url, &location, s3)?;
    let op = blocking::Operator::new(op).map_err(|e| OpendalError::backend(url, "configure", e))?;
    Ok((op, path))
}

/// Write `bytes` as the whole object at `url` (S3 settings from the environment).
/// For tests and small objects; archives are published with [`upload`].
pub fn write_all(url: &str, bytes: Vec<u8>) -> Result<(), OpendalError> {
    let (op, path) = blocking_operator(url, &S3Options::from_env())?;
    op.write(&path, bytes)
        .map_err(|e| OpendalError::backend(url, "write", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn coalesces_near_ranges_and_keeps_far_ones_apart() {
        let far = 10 * COALESCE_GAP;
        let groups = coalesce(
            &[(100, 10), (0, 50), (far, 5), (60, 10), (7, 0)],
            &plan::Plan::default(),
        );
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].start, groups[0].end), (0, 110));
        assert_eq!(groups[0].members, vec![1, 3, 0]);
        assert_eq!((groups[1].start, groups[1].end), (far, far + 5));
    }

    #[test]
    fn read_ranges_returns_each_range_in_caller_order() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        write_all("memory://unit/ranges", bytes.clone()).unwrap();
        let source = OpendalSource::open("memory://unit/ranges").unwrap();
        let ranges = [(250_000, 100), (10, 20), (30, 5), (0, 0)];
        let got = source.read_ranges(&ranges).unwrap();
        for (&(o, l), g) in ranges.iter().zip(&got) {
            assert_eq!(g.as_slice(), &bytes[o as usize..o as usize + l]);
        }
    }

    #[test]
    fn a_sized_open_reads_without_a_stat() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        write_all("memory://unit/sized", bytes.clone()).unwrap();
        let s3 = S3Options::default();
        let source = OpendalSource::open_with_size("memory://unit/sized", &s3, 5000).unwrap();
        assert_eq!(source.size(), 5000);
        let mut buf = [0; 10];
        source.read_exact_at(4990, &mut buf).unwrap();
        assert_eq!(&buf, &bytes[4990..]);
        // A missing object is found at the first read, not at open.
        let missing = OpendalSource::open_with_size("memory://unit/none", &s3, 10).unwrap();
        let err = missing.read_exact_at(0, &mut buf).unwrap_err();
        assert!(err.to_string().contains("memory://unit/none"), "{err}");
        // A size larger than the object: reads past its end fail as short reads.
        let long = OpendalSource::open_with_size("memory://unit/sized", &s3, 6000).unwrap();
        assert!(long.read_exact_at(4995, &mut buf).is_err());
    }

    #[test]
    fn errors_name_the_url() {
        let err = OpendalSource::open("memory://unit/missing").unwrap_err();
        assert!(err.to_string().contains("memory://unit/missing"), "{err}");
        let err = OpendalSource::open("ftp://host/x").unwrap_err();
        assert!(
            err.to_string().contains("unsupported scheme `ftp`"),
            "{err}"
        );
        let err = OpendalSource::open("s3://bucket-only").unwrap_err();
        assert!(err.to_string().contains("s3://bucket/key"), "{err}");
        let source = {
            write_all("memory://unit/short", vec![1; 10]).unwrap();
            OpendalSource::open("memory://unit/short").unwrap()
        };
        let mut buf = [0; 8];
        let err = source.read_exact_at(5, &mut buf).unwrap_err();
        assert!(err.to_string().contains("memory://unit/short"), "{err}");
    }

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("s3://b/dir/a.hxz").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                key: "dir/a.hxz".into()
            }
        );
        assert_eq!(
            Location::parse("http://127.0.0.1:8080/x/a.hxz").unwrap(),
            Location::Http {
                endpoint: "http://127.0.0.1:8080".into(),
                path: "/x/a.hxz".into()
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/a.hxz").unwrap(),
            Location::Fs {
                path: "/tmp/a.hxz".into()
            }
        );
        assert_eq!(
            Location::parse("gs://b/x/a.hxz").unwrap(),
            Location::Gcs {
                bucket: "b".into(),
                key: "x/a.hxz".into()
            }
        );
        assert_eq!(
            Location::parse("azblob://c/a.hxz").unwrap(),
            Location::Azblob {
                container: "c".into(),
                path: "a.hxz".into()
            }
        );
        assert!(Location::parse("gs://bucket-only").is_err());
        #[cfg(not(feature = "gcs"))]
        {
            let err = OpendalSource::open("gs://b/a.hxz").unwrap_err().to_string();
            assert!(err.contains("`gcs` feature"), "{err}");
        }
        assert!(Location::parse("file://relative").is_err());
        assert!(Location::parse("http://host/").is_err());
    }

    #[test]
    fn reads_local_files_by_path_and_file_url() {
        let dir = std::env::temp_dir().join(format!("hexz-opendal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.bin");
        std::fs::write(&file, b"0123456789").unwrap();
        for url in [
            file.display().to_string(),
            format!("file://{}", file.display()),
        ] {
            let source = OpendalSource::open(&url).unwrap();
            assert_eq!(source.size(), 10);
            let mut buf = [0; 3];
            source.read_exact_at(4, &mut buf).unwrap();
            assert_eq!(&buf, b"456");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
