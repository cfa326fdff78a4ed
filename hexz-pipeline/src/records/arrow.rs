//! Parquet and Arrow IPC (file or stream format), read batch by batch through
//! arrow-rs. Only the data, name and column fields are decoded (projection).
//! Parquet batches are sized from the file's row-group statistics so that one
//! batch holds about [`BATCH_BYTES`] of decoded data.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema};
use hexz_format::columns::{ColumnSchema, ColumnType, Value};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::schema::RowBuilder;
use super::{
    Record, RecordError, RecordLocation, SchemaBuilder, json_object, open, text_data, value_json,
};
use crate::error::Result;
use crate::recipe::{DataField, RecordFormat, RecordsPlan};

/// Decoded bytes a Parquet batch aims at (memory bound of the read).
pub(crate) const BATCH_BYTES: u64 = 32 << 20;
/// Most rows in a batch.
const MAX_BATCH_ROWS: usize = 8192;

/// The column type an Arrow type maps to; `None` for types that are not kept.
fn column_type(dt: &DataType) -> Option<ColumnType> {
    Some(match dt {
        DataType::Boolean => ColumnType::Bool,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColumnType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnType::Float64,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::Utf8,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => ColumnType::Bytes,
        DataType::Dictionary(_, value) => return column_type(value),
        _ => return None,
    })
}

/// What each field of a file is for.
struct Roles {
    /// Index of the data field in the file's schema.
    data: Option<usize>,
    /// Index of the name field.
    name: Option<usize>,
    /// Fields kept as columns: (index, name, type).
    columns: Vec<(usize, String, ColumnType)>,
}

impl Roles {
    fn projection(&self) -> Vec<usize> {
        let mut p: Vec<usize> = self
            .columns
            .iter()
            .map(|c| c.0)
            .chain(self.data)
            .chain(self.name)
            .collect();
        p.sort_unstable();
        p
    }
}

fn roles(path: &Path, schema: &Schema, plan: &RecordsPlan) -> Result<Roles, RecordError> {
    let file_at = || RecordLocation {
        path: path.to_path_buf(),
        line: None,
        row: 0,
    };
    let find = |role: &'static str, field: &str| {
        schema
            .index_of(field)
            .map_err(|_| RecordError::NoSuchField {
                path: path.to_path_buf(),
                role,
                field: field.to_owned(),
                known: schema.fields().iter().map(|f| f.name().clone()).collect(),
            })
    };
    let data = match &plan.data {
        DataField::Field(f) => {
            let i = find("data", f)?;
            let dt = schema.field(i).data_type();
            if !matches!(column_type(dt), Some(ColumnType::Bytes | ColumnType::Utf8))
                || matches!(dt, DataType::Dictionary(..))
            {
                return Err(RecordError::FieldType {
                    at: file_at(),
                    role: "data",
                    field: f.clone(),
                    found: format!("of Arrow type {dt}"),
                    expected: "the data field must be a binary or string column",
                });
            }
            Some(i)
        }
        DataField::Whole => None,
    };
    let name = match &plan.name {
        Some(n) => {
            let i = find("name", n)?;
            let dt = schema.field(i).data_type();
            if !matches!(column_type(dt), Some(ColumnType::Utf8 | ColumnType::Int64))
                || matches!(dt, DataType::Dictionary(..))
            {
                return Err(RecordError::FieldType {
                    at: file_at(),
                    role: "name",
                    field: n.clone(),
                    found: format!("of Arrow type {dt}"),
                    expected: "the name field must be a string or integer column",
                });
            }
            Some(i)
        }
        None => None,
    };
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != data && Some(*i) != name)
        .filter_map(|(i, f)| column_type(f.data_type()).map(|t| (i, f.name().clone(), t)))
        .collect();
    Ok(Roles {
        data,
        name,
        columns,
    })
}

fn observe(path: &Path, roles: &Roles, builder: &mut SchemaBuilder) -> Result<(), RecordError> {
    let at = || RecordLocation {
        path: path.to_path_buf(),
        line: None,
        row: 0,
    };
    for (_, name, ty) in &roles.columns {
        builder.observe(path, name, Some(*ty), &at)?;
    }
    Ok(())
}

fn bad(path: &Path, format: RecordFormat, e: impl ToString) -> RecordError {
    RecordError::BadColumnar {
        path: path.to_path_buf(),
        format,
        detail: e.to_string(),
    }
}

fn parquet_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, RecordError> {
    ParquetRecordBatchReaderBuilder::try_new(open(path)?)
        .map_err(|e| bad(path, RecordFormat::Parquet, e))
}

/// The Parquet file's fields as columns; returns its row count.
pub(super) fn scan_parquet(
    path: &Path,
    plan: &RecordsPlan,
    builder: &mut SchemaBuilder,
) -> Result<Option<u64>> {
    let b = parquet_builder(path)?;
    let roles = roles(path, b.schema(), plan)?;
    observe(path, &roles, builder)?;
    Ok(Some(b.metadata().file_metadata().num_rows().max(0) as u64))
}

/// Read every Parquet record, in order.
pub(super) fn read_parquet(
    path: &Path,
    plan: &RecordsPlan,
    schema: Option<&ColumnSchema>,
    sink: &mut dyn FnMut(Record<'_>) -> Result<()>,
) -> Result<()> {
    let b = parquet_builder(path)?;
    let roles = roles(path, b.schema(), plan)?;
    let meta = b.metadata();
    let rows: i64 = meta.row_groups().iter().map(|g| g.num_rows()).sum();
    let bytes: i64 = meta.row_groups().iter().map(|g| g.total_byte_size()).sum();
    let per_row = (bytes.max(1) as u64).div_ceil(rows.max(1) as u64).max(1);
    let batch = (BATCH_BYTES / per_row).clamp(1, MAX_BATCH_ROWS as u64) as usize;
    let mask = ProjectionMask::roots(b.parquet_schema(), roles.projection());
    let reader = b
        .with_projection(mask)
        .with_batch_size(batch)
        .build()
        .map_err(|e| bad(path, RecordFormat::Parquet, e))?;
    read_batches(path, RecordFormat::Parquet, plan, schema, reader, sink)
}

/// An Arrow IPC reader: file format (random access) or stream format.
enum IpcReader {
    File(arrow_ipc::reader::FileReader<BufReader<File>>),
    Stream(arrow_ipc::reader::StreamReader<BufReader<File>>),
}

impl IpcReader {
    fn open(path: &Path, projection: Option<Vec<usize>>) -> Result<Self, RecordError> {
        let mut file = open(path)?;
        let mut magic = [0u8; 6];
        let is_file = file.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
        file.rewind().map_err(|error| RecordError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let err = |e: ArrowError| bad(path, RecordFormat::Arrow, e);
        Ok(if is_file {
            Self::File(
                arrow_ipc::reader::FileReader::try_new_buffered(file, projection).map_err(err)?,
            )
        } else {
            Self::Stream(
                arrow_ipc::reader::StreamReader::try_new_buffered(file, projection).map_err(err)?,
            )
        })
    }

    fn schema(&self) -> Arc<Schema> {
        match self {
            Self::File(r) => r.schema(),
            Self::Stream(r) => r.schema(),
        }
    }
}

impl Iterator for IpcReader {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::File(r) => r.next(),
            Self::Stream(r) => r.next(),
        }
    }
}

/// The Arrow file's fields as columns (the row count is not known without
/// reading the batches: `None`).
pub(super) fn scan_ipc(
    path: &Path,
    plan: &RecordsPlan,
    builder: &mut SchemaBuilder,
) -> Result<Option<u64>> {
    let reader = IpcReader::open(path, None)?;
    let roles = roles(path, &reader.schema(), plan)?;
    observe(path, &roles, builder)?;
    Ok(None)
}

/// Read every Arrow IPC record, in order.
pub(super) fn read_ipc(
    path: &Path,
    plan: &RecordsPlan,
    schema: Option<&ColumnSchema>,
    sink: &mut dyn FnMut(Record<'_>) -> Result<()>,
) -> Result<()> {
    let full = IpcReader::open(path, None)?;
    let roles = roles(path, &full.schema(), plan)?;
    drop(full);
    let reader = IpcReader::open(path, Some(roles.projection()))?;
    read_batches(path, RecordFormat::Arrow, plan, schema, reader, sink)
}

/// One column of a batch, with dictionary keys resolved once per batch.
struct View {
    array: ArrayRef,
    /// For a dictionary column: its values, and each row's index into them.
    dictionary: Option<(ArrayRef, Vec<usize>)>,
}

impl View {
    fn new(array: &ArrayRef) -> Self {
        let dictionary = matches!(array.data_type(), DataType::Dictionary(..)).then(|| {
            let d = array.as_any_dictionary();
            (d.values().clone(), d.normalized_keys())
        });
        Self {
            array: array.clone(),
            dictionary,
        }
    }

    /// The value at `row` (null when the row is null).
    fn value(
        &self,
        row: usize,
        at: &dyn Fn() -> RecordLocation,
        column: &str,
    ) -> Result<Value, RecordError> {
        if self.array.is_null(row) {
            return Ok(Value::Null);
        }
        match &self.dictionary {
            Some((values, keys)) => scalar(values.as_ref(), keys[row], at, column),
            None => scalar(self.array.as_ref(), row, at, column),
        }
    }
}

/// The value of a non-dictionary array at `i`.
fn scalar(
    array: &dyn Array,
    i: usize,
    at: &dyn Fn() -> RecordLocation,
    column: &str,
) -> Result<Value, RecordError> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::Int64(array.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Value::Int64(array.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Value::Int64(array.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Value::Int64(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::Int64(array.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Value::Int64(array.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Value::Int64(array.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(i);
            Value::Int64(i64::try_from(v).map_err(|_| RecordError::BadValue {
                at: at(),
                column: column.to_owned(),
                detail: format!("uint64 value {v} is above the int64 range of the column"),
            })?)
        }
        DataType::Float16 => Value::Float64(array.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => Value::Float64(array.as_primitive::<Float32Type>().value(i).into()),
        DataType::Float64 => Value::Float64(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::Utf8(array.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Value::Utf8(array.as_string::<i64>().value(i).to_owned()),
        DataType::Utf8View => Value::Utf8(array.as_string_view().value(i).to_owned()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Value::Bytes(array.as_binary_view().value(i).to_vec()),
        DataType::FixedSizeBinary(_) => {
            Value::Bytes(array.as_fixed_size_binary().value(i).to_vec())
        }
        _ => Value::Null,
    })
}

fn read_batches(
    path: &Path,
    format: RecordFormat,
    plan: &RecordsPlan,
    schema: Option<&ColumnSchema>,
    batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
    sink: &mut dyn FnMut(Record<'_>) -> Result<()>,
) -> Result<()> {
    let mut row = RowBuilder::new(schema);
    let mut data = Vec::new();
    let mut name = String::new();
    let mut done = 0u64;
    for batch in batches {
        let batch = batch.map_err(|e| bad(path, format, e))?;
        let bs = batch.schema();
        let roles = roles(path, &bs, plan)?;
        let views: Vec<View> = batch.columns().iter().map(View::new).collect();
        // (view index, schema column, name) of the kept columns.
        let kept: Vec<(usize, usize, &str)> = roles
            .columns
            .iter()
            .filter_map(|(i, n, _)| row.column(n).map(|c| (*i, c, n.as_str())))
            .collect();
        for r in 0..batch.num_rows() {
            let at = || RecordLocation {
                path: path.to_path_buf(),
                line: None,
                row: done,
            };
            row.clear();
            for &(v, c, n) in &kept {
                let value = views[v].value(r, &at, n)?;
                row.set(c, value, &at)?;
            }
            if let Some(n) = roles.name {
                name.clear();
                match views[n].value(r, &at, bs.field(n).name())? {
                    Value::Utf8(s) => name = s,
                    Value::Int64(i) => name = i.to_string(),
                    _ => {
                        return Err(RecordError::MissingField {
                            at: at(),
                            role: "name",
                            field: bs.field(n).name().clone(),
                        }
                        .into());
                    }
                }
            }
            match roles.data {
                Some(d) => {
                    let field = bs.field(d).name();
                    match views[d].value(r, &at, field)? {
                        Value::Bytes(b) => data = b,
                        Value::Utf8(s) => text_data(&s, plan, field, &at, &mut data)?,
                        _ => {
                            return Err(RecordError::MissingField {
                                at: at(),
                                role: "data",
                                field: field.clone(),
                            }
                            .into());
                        }
                    }
                }
                None => json_object(
                    kept.iter()
                        .map(|&(_, c, n)| (n, value_json(&row.values()[c]))),
                    &mut data,
                ),
            }
            let at_dyn: &dyn Fn() -> RecordLocation = &at;
            sink(Record {
                at: at_dyn,
                name: roles.name.map(|_| name.as_str()),
                data: &data,
                row: &row,
            })?;
            done += 1;
        }
    }
    Ok(())
}
