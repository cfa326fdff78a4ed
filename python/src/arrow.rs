//! Arrow export through the Arrow PyCapsule interface: an object with
//! `__arrow_c_stream__` that hands an `ArrowArrayStream` to pyarrow, polars,
//! DuckDB or any other consumer, which then pulls batches straight from the Rust
//! [`EntryBatches`] (no Python in between, no copy of the data column).

use std::sync::Mutex;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use hexz_pipeline::batches::EntryBatches;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::Error;
use crate::pool;

/// A one-shot Arrow stream of record batches.
#[pyclass(module = "hexz._hexz", frozen)]
#[derive(Debug)]
pub struct ArrowStream {
    batches: Mutex<Option<PooledBatches>>,
    schema: SchemaRef,
}

/// Batches produced on the bindings' pool (fork-safe, see [`pool`]), whichever
/// thread the consumer pulls from.
#[derive(Debug)]
struct PooledBatches(EntryBatches);

impl Iterator for PooledBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = &mut self.0;
        pool::in_pool(|| inner.next())
    }
}

impl RecordBatchReader for PooledBatches {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }
}

impl ArrowStream {
    pub fn new(batches: EntryBatches) -> Self {
        let schema = batches.schema();
        Self {
            batches: Mutex::new(Some(PooledBatches(batches))),
            schema,
        }
    }
}

#[pymethods]
impl ArrowStream {
    /// Export the stream (once). `requested_schema` is accepted and ignored, as
    /// the protocol allows: the consumer casts if it wants another schema.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = self
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| Error::Invalid("this Arrow stream has already been consumed".into()))?;
        let stream = FFI_ArrowArrayStream::new(Box::new(batches));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    /// Column names, in order.
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn __repr__(&self) -> String {
        let fields: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        format!("ArrowStream({})", fields.join(", "))
    }
}
