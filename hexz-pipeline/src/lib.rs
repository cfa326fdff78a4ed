//! # hexz-pipeline
//!
//! Recipes, the build stages, the plugin registry, and the read-side verbs
//! (`extract`, `info`) the CLI and Python call.
//!
//! ```no_run
//! use hexz_pipeline::{BuildOptions, Registry, build, recipe::load_recipe};
//! let plan = load_recipe("recipes/sample.yaml".as_ref())?;
//! let report = build(&plan, &Registry::default(), &BuildOptions::default())?;
//! println!("{} -> root {}", report.output.display(), report.summary.root_hash);
//! # Ok::<(), hexz_pipeline::PipelineError>(())
//! ```

pub mod add;
pub mod batches;
pub mod build;
pub mod chunk_cache;
pub mod crypto;
pub mod diff;
pub mod digest;
pub mod error;
pub mod extract;
pub mod info;
mod progress;
pub mod publish;
pub mod recipe;
pub mod records;
pub mod registry;
pub mod sampler;
pub mod squash;
pub mod thin;
pub mod transport_conformance;
pub mod volume;
mod walk;

use std::path::Path;

pub use build::{BuildOptions, BuildReport, InputCount, build, count_inputs};
pub use diff::{DiffReport, diff};
pub use error::{PipelineError, Result};
pub use extract::{ExtractOptions, ExtractReport, copy_entry, extract};
pub use info::{ArchiveInfo, info, with_space};
pub use publish::{PublishOptions, PublishReport, build_and_publish, publish};
pub use registry::{
    CompressorFactory, FnFactory, OpendalTransport, PutOptions, PutReport, Registry, Transport,
};
pub use squash::{SquashReport, squash};
pub use thin::{ChainLink, RegistryResolver, log};
pub use volume::{Volume, VolumeError, VolumeOptions};

use hexz_format::{Archive, ReadOptions};

/// Open the archive at `location` — a local path, or a URL served by one of the
/// `registry`'s transports (`s3://bucket/key`, `https://host/a.hxz`, ...) — with
/// the codecs of `registry`. The parents of a thin child are opened the same way
/// when first needed ([`RegistryResolver`]).
pub fn open_archive(location: &str, registry: &Registry, options: ReadOptions) -> Result<Archive> {
    let source = registry.open_source(location)?;
    let resolver = resolver(registry, &options);
    Ok(Archive::open(source, registry, options)?.with_parent_resolver(resolver))
}

/// [`open_archive`] primed with `snapshot`, taken by
/// [`Archive::metadata_snapshot`] on another handle on the same archive (a
/// loader's parent process): the tail and index pages it holds are not
/// fetched again, and are checked as a normal open checks them. The archive's
/// size comes from the snapshot too, so a remote open sends no request
/// ([`Registry::open_source_sized`]).
pub fn open_archive_with_metadata(
    location: &str,
    registry: &Registry,
    options: ReadOptions,
    snapshot: &[u8],
) -> Result<Archive> {
    let size = Archive::metadata_snapshot_size(snapshot)?;
    let source = registry.open_source_sized(location, size)?;
    let resolver = resolver(registry, &options);
    Ok(
        Archive::open_with_metadata(source, registry, options, snapshot)?
            .with_parent_resolver(resolver),
    )
}

/// [`open_archive`] with an on-disk cache for remote archives: pages and chunks
/// read from a URL are kept in `cache` (keyed by the archive's root hash) and
/// read from there next time. Plain paths are opened as in [`open_archive`],
/// without the cache.
pub fn open_archive_cached(
    location: &str,
    registry: &Registry,
    options: ReadOptions,
    cache: &std::sync::Arc<chunk_cache::DiskCache>,
) -> Result<Archive> {
    if registry::url_scheme(location).is_none() {
        return open_archive(location, registry, options);
    }
    let source = registry.open_source(location)?;
    let cached = std::sync::Arc::new(chunk_cache::CachedSource::new(
        source,
        std::sync::Arc::clone(cache),
    ));
    let resolver = resolver(registry, &options);
    let archive = Archive::open(cached.clone(), registry, options)?;
    cached.set_root(archive.root_hash());
    Ok(archive.with_parent_resolver(resolver))
}

/// [`open_archive`] for a local path (read with `pread`, whatever its characters).
pub fn open_archive_path(
    path: &Path,
    registry: &Registry,
    options: ReadOptions,
) -> Result<Archive> {
    let resolver = resolver(registry, &options);
    Ok(Archive::open_path(path, registry, options)?.with_parent_resolver(resolver))
}

/// Opens a child's parents with the child's transports, keys, KDF limits and
/// parent policy.
fn resolver(registry: &Registry, options: &ReadOptions) -> std::sync::Arc<RegistryResolver> {
    std::sync::Arc::new(RegistryResolver::for_options(registry.clone(), options))
}

/// The README's Rust examples compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
