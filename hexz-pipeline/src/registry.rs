//! The plugin registry: compressors by name, transports by URL scheme.
//!
//! [`Registry::default`] holds the built-in plugins (compressors `none`, `lz4`,
//! `zstd`; the OpenDAL transport for `file`, `s3`, `http`, `https`, `memory`);
//! [`Registry::empty`] holds none. Out-of-tree plugins register a
//! [`CompressorFactory`] or a [`Transport`] explicitly — there is no global,
//! link-time registration.
//! The registry is also the [`CodecProvider`] readers use to resolve the codec
//! name written in an archive.
//!
//! ```
//! use hexz_pipeline::Registry;
//! let registry = Registry::default();
//! let zstd = registry.compressor("zstd", Some(3)).unwrap();
//! assert_eq!(zstd.name(), "zstd");
//! assert!(registry.compressor("brotli", None).is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use hexz_format::ReadAt;
use hexz_format::codec::{CodecProvider, Compressor, NoCompression, UnknownCodec};

use crate::error::{PipelineError, Result};

/// Builds a compressor from a level. One per codec name.
pub trait CompressorFactory: Send + Sync {
    /// The codec name, as written in recipes and archives.
    fn name(&self) -> &str;

    /// A compressor at `level` (`None`: the codec's default). Errors say which
    /// levels are valid.
    fn build(&self, level: Option<i32>) -> Result<Arc<dyn Compressor>, String>;
}

/// A factory from a plain function.
pub struct FnFactory<F> {
    name: String,
    build: F,
}

impl<F> fmt::Debug for FnFactory<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnFactory")
            .field("name", &self.name)
            .finish()
    }
}

impl<F> FnFactory<F>
where
    F: Fn(Option<i32>) -> Result<Arc<dyn Compressor>, String> + Send + Sync,
{
    /// A factory called `name` that builds with `build`.
    pub fn new(name: impl Into<String>, build: F) -> Self {
        Self {
            name: name.into(),
            build,
        }
    }
}

impl<F> CompressorFactory for FnFactory<F>
where
    F: Fn(Option<i32>) -> Result<Arc<dyn Compressor>, String> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, level: Option<i32>) -> Result<Arc<dyn Compressor>, String> {
        (self.build)(level)
    }
}

/// Opens byte sources for URLs of some schemes.
///
/// Who calls: [`Registry::open_source`] (and so [`crate::open_archive`]), once per
/// archive opened, with the whole URL as the user gave it. The source it returns
/// serves every read of that archive, from many threads. Opening may cost requests
/// (a `stat` for the size); it must not read the object's content.
pub trait Transport: Send + Sync + fmt::Debug {
    /// The plugin's name, for listings and errors.
    fn name(&self) -> &str;

    /// The URL schemes served, lower case, without `://` (e.g. `["s3"]`).
    fn schemes(&self) -> Vec<String>;

    /// Open `url`. Errors name the URL. A missing object is reported as an
    /// [`std::io::Error`] of kind `NotFound` (wrapping the transport's own error),
    /// so callers can tell "absent" from "failed".
    fn open(&self, url: &str) -> Result<Arc<dyn ReadAt>, BoxError>;

    /// Open `url`, whose size in bytes is known already (from a metadata
    /// snapshot another handle on the same object took): transports that ask
    /// the server for the size at open (an HTTP `HEAD`) skip that request.
    /// The default opens as [`Transport::open`] does.
    fn open_sized(&self, url: &str, size: u64) -> Result<Arc<dyn ReadAt>, BoxError> {
        let _ = size;
        self.open(url)
    }

    /// Write all of `data` as the object at `url`, replacing any object there.
    ///
    /// Who calls: [`crate::publish`], once per archive published, from one thread.
    /// Contract: the object must appear at `url` only once it is complete (a
    /// multipart upload completed after its last part, a temporary file renamed
    /// into place), never truncated; on error nothing new is visible at `url`.
    /// `progress` is called with the bytes handed over so far. Transports that
    /// cannot write keep this default, which refuses.
    fn put(
        &self,
        url: &str,
        data: &dyn ReadAt,
        options: &PutOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PutReport, BoxError> {
        let _ = (data, options, progress);
        Err(format!("{url}: transport `{}` cannot write", self.name()).into())
    }
}

/// A transport's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How [`Transport::put`] uploads: part size and parts in flight, for stores that
/// upload in parts (others ignore them).
pub type PutOptions = hexz_opendal::UploadOptions;

/// What [`Transport::put`] did: bytes written and parts sent.
pub type PutReport = hexz_opendal::UploadReport;

/// The OpenDAL transport ([`hexz_opendal`]): `file`, `s3`, `http`, `https`,
/// `memory`. S3 settings come from the AWS environment variables at each open
/// ([`hexz_opendal::S3Options::from_env`]) unless given with
/// [`OpendalTransport::with_s3`].
#[derive(Debug, Default, Clone)]
pub struct OpendalTransport {
    s3: Option<hexz_opendal::S3Options>,
}

impl OpendalTransport {
    /// A transport with fixed S3 settings instead of the environment's.
    pub fn with_s3(s3: hexz_opendal::S3Options) -> Self {
        Self { s3: Some(s3) }
    }
}

impl Transport for OpendalTransport {
    fn name(&self) -> &str {
        "opendal"
    }

    fn schemes(&self) -> Vec<String> {
        hexz_opendal::SCHEMES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn open(&self, url: &str) -> Result<Arc<dyn ReadAt>, BoxError> {
        let s3 = self.s3_options();
        let source = hexz_opendal::OpendalSource::open_with(url, &s3).map_err(not_found_as_io)?;
        Ok(Arc::new(source))
    }

    fn open_sized(&self, url: &str, size: u64) -> Result<Arc<dyn ReadAt>, BoxError> {
        let s3 = self.s3_options();
        let source =
            hexz_opendal::OpendalSource::open_with_size(url, &s3, size).map_err(not_found_as_io)?;
        Ok(Arc::new(source))
    }

    fn put(
        &self,
        url: &str,
        data: &dyn ReadAt,
        options: &PutOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PutReport, BoxError> {
        Ok(hexz_opendal::upload(
            url,
            &self.s3_options(),
            data,
            options,
            progress,
        )?)
    }
}

impl OpendalTransport {
    fn s3_options(&self) -> hexz_opendal::S3Options {
        self.s3
            .clone()
            .unwrap_or_else(hexz_opendal::S3Options::from_env)
    }
}

/// A missing object becomes an `io::Error` of kind `NotFound` (the transport
/// contract); other errors stay as they are.
fn not_found_as_io(error: hexz_opendal::OpendalError) -> BoxError {
    if error.io_kind() == std::io::ErrorKind::NotFound {
        Box::new(std::io::Error::new(std::io::ErrorKind::NotFound, error))
    } else {
        Box::new(error)
    }
}

/// The scheme of `location` (`s3` in `s3://b/k`), or `None` for a plain path.
pub fn url_scheme(location: &str) -> Option<String> {
    let (scheme, _) = location.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// Registered plugins.
#[derive(Clone)]
pub struct Registry {
    compressors: BTreeMap<String, Arc<dyn CompressorFactory>>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("compressors", &self.compressors.keys().collect::<Vec<_>>())
            .field("transports", &self.transports.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// A registry with no plugins at all.
    pub fn empty() -> Self {
        Self {
            compressors: BTreeMap::new(),
            transports: BTreeMap::new(),
        }
    }

    /// Register (or replace) a transport for each of its schemes.
    pub fn register_transport(&mut self, transport: Arc<dyn Transport>) -> &mut Self {
        for scheme in transport.schemes() {
            self.transports.insert(scheme, Arc::clone(&transport));
        }
        self
    }

    /// Schemes with a registered transport, sorted.
    pub fn transport_schemes(&self) -> Vec<String> {
        self.transports.keys().cloned().collect()
    }

    /// A byte source for `location`: a plain path is opened as a local file with
    /// `pread` ([`hexz_format::FileSource`]); a URL goes to the transport
    /// registered for its scheme.
    pub fn open_source(&self, location: &str) -> Result<Arc<dyn ReadAt>> {
        self.open_source_with(location, None)
    }

    /// [`Registry::open_source`] for an object whose size is known already
    /// ([`Transport::open_sized`]: no `HEAD` for remote objects).
    pub fn open_source_sized(&self, location: &str, size: u64) -> Result<Arc<dyn ReadAt>> {
        self.open_source_with(location, Some(size))
    }

    fn open_source_with(&self, location: &str, size: Option<u64>) -> Result<Arc<dyn ReadAt>> {
        let Some(scheme) = url_scheme(location) else {
            let source = hexz_format::FileSource::open(location)?;
            return Ok(Arc::new(source));
        };
        let transport =
            self.transports
                .get(&scheme)
                .ok_or_else(|| PipelineError::UnknownPlugin {
                    kind: "transport",
                    name: scheme.clone(),
                    known: self.transport_schemes(),
                })?;
        let opened = match size {
            Some(size) => transport.open_sized(location, size),
            None => transport.open(location),
        };
        opened.map_err(|error| {
            let missing = error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
            if missing {
                PipelineError::NotFound {
                    location: location.to_string(),
                    error,
                }
            } else {
                PipelineError::Transport {
                    location: location.to_string(),
                    error,
                }
            }
        })
    }

    /// The transport for URL `location` (`None` for a plain path, which is a
    /// local file).
    pub fn transport_for(&self, location: &str) -> Result<Option<Arc<dyn Transport>>> {
        let Some(scheme) = url_scheme(location) else {
            return Ok(None);
        };
        self.transports
            .get(&scheme)
            .cloned()
            .map(Some)
            .ok_or_else(|| PipelineError::UnknownPlugin {
                kind: "transport",
                name: scheme,
                known: self.transport_schemes(),
            })
    }

    /// Register (or replace) a compressor factory under its name.
    pub fn register_compressor(&mut self, factory: Arc<dyn CompressorFactory>) -> &mut Self {
        self.compressors.insert(factory.name().to_string(), factory);
        self
    }

    /// Registered compressor names, sorted.
    pub fn compressor_names(&self) -> Vec<String> {
        self.compressors.keys().cloned().collect()
    }

    /// Build the compressor `name` at `level`.
    pub fn compressor(&self, name: &str, level: Option<i32>) -> Result<Arc<dyn Compressor>> {
        let factory = self
            .compressors
            .get(name)
            .ok_or_else(|| PipelineError::UnknownPlugin {
                kind: "compressor",
                name: name.to_string(),
                known: self.compressor_names(),
            })?;
        factory
            .build(level)
            .map_err(|detail| PipelineError::PluginSettings {
                plugin: name.to_string(),
                detail,
            })
    }
}

impl Default for Registry {
    /// The built-in plugins: compressors `none`, `lz4`, `zstd`; the OpenDAL
    /// transport.
    fn default() -> Self {
        let mut r = Self::empty();
        r.register_transport(Arc::new(OpendalTransport::default()));
        r.register_compressor(Arc::new(FnFactory::new("none", |level| {
            no_level("none", level)?;
            Ok(Arc::new(NoCompression) as Arc<dyn Compressor>)
        })));
        r.register_compressor(Arc::new(FnFactory::new("lz4", |level| {
            no_level("lz4", level)?;
            Ok(Arc::new(hexz_lz4::Lz4Compressor::new()) as Arc<dyn Compressor>)
        })));
        r.register_compressor(Arc::new(FnFactory::new("zstd", |level| {
            let level = level.unwrap_or(hexz_zstd::DEFAULT_LEVEL);
            hexz_zstd::ZstdCompressor::new(level)
                .map(|c| Arc::new(c) as Arc<dyn Compressor>)
                .map_err(|e| e.to_string())
        })));
        r
    }
}

fn no_level(name: &str, level: Option<i32>) -> Result<(), String> {
    match level {
        Some(l) => Err(format!("{name} takes no level (got {l})")),
        None => Ok(()),
    }
}

impl CodecProvider for Registry {
    fn decompressor(&self, name: &str) -> Result<Arc<dyn Compressor>, UnknownCodec> {
        let unknown = || UnknownCodec {
            name: name.to_string(),
            known: self.compressor_names(),
        };
        let factory = self.compressors.get(name).ok_or_else(unknown)?;
        // Decompression does not depend on the level: build with the default.
        factory.build(None).map_err(|_| unknown())
    }
}
