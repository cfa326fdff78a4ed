//! The plugin registry: compressors by name.
//!
//! [`Registry::default`] holds the built-in plugins (`none`, `lz4`, `zstd`);
//! [`Registry::empty`] holds none. Out-of-tree plugins register a
//! [`CompressorFactory`] explicitly — there is no global, link-time registration.
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

/// Registered plugins.
#[derive(Clone)]
pub struct Registry {
    compressors: BTreeMap<String, Arc<dyn CompressorFactory>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("compressors", &self.compressors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// A registry with no plugins at all.
    pub fn empty() -> Self {
        Self {
            compressors: BTreeMap::new(),
        }
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
    /// The built-in plugins: `none`, `lz4`, `zstd`.
    fn default() -> Self {
        let mut r = Self::empty();
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
