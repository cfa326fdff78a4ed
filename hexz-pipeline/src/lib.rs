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
pub mod digest;
pub mod error;
pub mod extract;
pub mod info;
mod progress;
pub mod recipe;
pub mod records;
pub mod registry;
pub mod sampler;
mod walk;

use std::path::Path;

pub use build::{BuildOptions, BuildReport, InputCount, build, count_inputs};
pub use error::{PipelineError, Result};
pub use extract::{ExtractOptions, ExtractReport, copy_entry, extract};
pub use info::{ArchiveInfo, info};
pub use registry::{CompressorFactory, FnFactory, OpendalTransport, Registry, Transport};

use hexz_format::{Archive, ReadOptions};

/// Open the archive at `location` — a local path, or a URL served by one of the
/// `registry`'s transports (`s3://bucket/key`, `https://host/a.hxz`, ...) — with
/// the codecs of `registry`.
pub fn open_archive(location: &str, registry: &Registry, options: ReadOptions) -> Result<Archive> {
    let source = registry.open_source(location)?;
    Ok(Archive::open(source, registry, options)?)
}

/// [`open_archive`] for a local path (read with `pread`, whatever its characters).
pub fn open_archive_path(
    path: &Path,
    registry: &Registry,
    options: ReadOptions,
) -> Result<Archive> {
    Ok(Archive::open_path(path, registry, options)?)
}

/// The README's Rust examples compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
