//! # hexz-python
//!
//! The `hexz._hexz` extension module behind the `hexz` Python package. It only
//! converts: archives are read by [`hexz_format::Archive`], written by
//! [`hexz_format::ArchiveWriter`], opened by URL through the
//! [`hexz_pipeline::Registry`], built from recipes by [`hexz_pipeline::build`],
//! batched for Arrow by [`hexz_pipeline::batches`] and sharded for loaders by
//! [`hexz_pipeline::sampler`]; writable volumes are
//! [`hexz_pipeline::volume::Volume`]. Every call that reads, decompresses or hashes
//! releases the GIL. The Python-facing API (`hexz.open`, `Reader`, `Writer`,
//! datasets) lives in `python/hexz/*.py` on top of this module.

mod archive;
mod arrow;
mod errors;
mod keys;
mod options;
mod pool;
mod prefetch;
mod raw_buffer;
mod volume;
mod writer;

use std::path::PathBuf;

use hexz_pipeline::{BuildOptions, Registry};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use errors::Error;

/// Build the archive a recipe describes; returns a summary dict.
#[pyfunction]
#[pyo3(signature = (recipe_path, *, threads=None, force=false))]
fn build<'py>(
    py: Python<'py>,
    recipe_path: PathBuf,
    threads: Option<usize>,
    force: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let report = py.detach(|| -> errors::Result<_> {
        let plan = hexz_pipeline::recipe::load_recipe(&recipe_path)
            .map_err(|e| Error::from(hexz_pipeline::PipelineError::from(e)))?;
        let options = BuildOptions {
            quiet: true,
            // A pool of its own, never rayon's global one (see `pool`).
            threads: Some(threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
            })),
            force,
        };
        Ok(hexz_pipeline::build(&plan, &Registry::default(), &options)?)
    })?;
    let d = PyDict::new(py);
    d.set_item("path", &report.output)?;
    d.set_item("root_hash", report.summary.root_hash.to_string())?;
    d.set_item("entries", report.summary.stats.entry_count)?;
    d.set_item("logical_bytes", report.summary.stats.logical_size)?;
    d.set_item("archive_size", report.summary.archive_size)?;
    d.set_item("seconds", report.elapsed.as_secs_f64())?;
    Ok(d)
}

#[pymodule]
fn _hexz(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<archive::Archive>()?;
    m.add_class::<writer::Writer>()?;
    m.add_class::<volume::Volume>()?;
    m.add_function(wrap_pyfunction!(volume::volume_log, m)?)?;
    m.add_function(wrap_pyfunction!(volume::volume_gc, m)?)?;
    m.add_class::<arrow::ArrowStream>()?;
    m.add_class::<prefetch::Prefetcher>()?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(archive::shard_indices, m)?)?;
    m.add_function(wrap_pyfunction!(archive::rank_len, m)?)?;
    m.add("HexzError", py.get_type::<errors::HexzError>())?;
    m.add("NotFoundError", py.get_type::<errors::NotFoundError>())?;
    m.add("CorruptError", py.get_type::<errors::CorruptError>())?;
    m.add("BadKeyError", py.get_type::<errors::BadKeyError>())?;
    m.add("SignatureError", py.get_type::<errors::SignatureError>())?;
    m.add("StorageError", py.get_type::<errors::StorageError>())?;
    m.add("RecipeError", py.get_type::<errors::RecipeError>())?;
    m.add(
        "InvalidInputError",
        py.get_type::<errors::InvalidInputError>(),
    )?;
    m.add(
        "UnsupportedError",
        py.get_type::<errors::UnsupportedError>(),
    )?;
    m.add("ConflictError", py.get_type::<errors::ConflictError>())?;
    Ok(())
}
