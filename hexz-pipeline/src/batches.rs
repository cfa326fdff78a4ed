//! An archive's entries as Arrow record batches: the catalog (names, sizes,
//! kinds, user columns) and the entries' bytes in a binary `data` column. Both are
//! [`RecordBatchReader`]s, so they export through Arrow's C stream interface
//! (Python's `Reader.catalog()` and `Reader.to_arrow()`) and feed any arrow-rs
//! consumer directly.
//!
//! Output columns, by name:
//!
//! | column | Arrow type | value |
//! |---|---|---|
//! | `name` | `Utf8` | entry name |
//! | `kind` | `Utf8` | `file`, `dir`, `symlink`, `record` |
//! | `size` | `UInt64` | bytes |
//! | `offset` | `UInt64` | offset in the logical stream |
//! | `mode` | `UInt32` | mode bits |
//! | `mtime` | `Int64` | seconds since the epoch |
//! | user column | `Boolean`, `Int64`, `Float64`, `Utf8`, `Binary` | the entry's value (null when absent) |
//! | `data` | `LargeBinary` | the entry's bytes |
//!
//! A batch holds at most `batch_size` rows and, with a `data` column, stops
//! early once it holds [`BatchOptions::max_batch_bytes`] of data (a single entry
//! larger than that is a batch of its own). Entries that sit back to back in the
//! stream — the usual case — are read with one ranged read per batch, and the
//! `data` column's values buffer is that read's buffer (no copy).
//!
//! ```no_run
//! use arrow_array::RecordBatchReader;
//! use hexz_pipeline::batches::{BatchOptions, EntryBatches};
//! # let archive: hexz_format::Archive = unimplemented!();
//! let batches = EntryBatches::new(&archive, &BatchOptions::data(None, 256))?;
//! println!("{:?}", batches.schema());
//! for batch in batches {
//!     let batch = batch?;
//!     println!("{} rows", batch.num_rows());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, LargeBinaryArray, RecordBatch, RecordBatchReader};
use arrow_buffer::{Buffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use hexz_format::columns::{ColumnSchema, ColumnType, Value};
use hexz_format::{Archive, Entries, Entry};

use crate::error::{PipelineError, Result};

/// Default data bytes per batch.
pub const DEFAULT_BATCH_BYTES: u64 = 64 << 20;

/// Which batches to produce.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Output columns in order (see the module table); `None`: the default set.
    pub columns: Option<Vec<String>>,
    /// Most rows per batch (at least 1).
    pub batch_size: usize,
    /// Only entries with bytes (files and records), and a `data` column by
    /// default.
    pub data: bool,
    /// With a `data` column: data bytes after which a batch ends.
    pub max_batch_bytes: u64,
}

impl BatchOptions {
    /// The catalog: every entry; default columns `name`, `kind`, `size`, `offset`,
    /// `mode`, `mtime`, then the user columns.
    pub fn catalog(columns: Option<Vec<String>>, batch_size: usize) -> Self {
        Self {
            columns,
            batch_size,
            data: false,
            max_batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }

    /// Entries with bytes; default columns `name`, the user columns, `data`.
    pub fn data(columns: Option<Vec<String>>, batch_size: usize) -> Self {
        Self {
            columns,
            batch_size,
            data: true,
            max_batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Col {
    Name,
    Kind,
    Size,
    Offset,
    Mode,
    Mtime,
    User(usize, ColumnType),
    Data,
}

const BUILTIN: [&str; 7] = ["name", "kind", "size", "offset", "mode", "mtime", "data"];

/// Batches of entries (see the module docs); an iterator of
/// `Result<RecordBatch, ArrowError>` and a [`RecordBatchReader`]. Archive errors
/// met while reading come out as [`ArrowError::ExternalError`] holding the
/// [`hexz_format::Error`], and end the stream.
#[derive(Debug)]
pub struct EntryBatches {
    archive: Archive,
    entries: Entries,
    cols: Vec<Col>,
    schema: SchemaRef,
    user: Option<Arc<ColumnSchema>>,
    options: BatchOptions,
    /// An entry read ahead that did not fit the previous batch.
    pending: Option<Entry>,
    done: bool,
}

impl EntryBatches {
    /// Batches of `archive`'s entries. Unknown column names are an error that
    /// lists the known ones.
    pub fn new(archive: &Archive, options: &BatchOptions) -> Result<Self> {
        let user = archive.columns()?.map(Arc::new);
        let user_cols: Vec<(String, usize, ColumnType)> = user
            .as_ref()
            .map(|s| {
                s.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name.clone(), i, c.ty))
                    .collect()
            })
            .unwrap_or_default();
        let names: Vec<String> = match &options.columns {
            Some(c) => c.clone(),
            None => {
                let head: &[&str] = if options.data {
                    &["name"]
                } else {
                    &["name", "kind", "size", "offset", "mode", "mtime"]
                };
                let mut v: Vec<String> = head.iter().map(|s| s.to_string()).collect();
                v.extend(
                    user_cols
                        .iter()
                        .filter(|(n, ..)| !BUILTIN.contains(&n.as_str()))
                        .map(|(n, ..)| n.clone()),
                );
                if options.data {
                    v.push("data".into());
                }
                v
            }
        };
        let mut cols = Vec::with_capacity(names.len());
        let mut fields = Vec::with_capacity(names.len());
        for name in &names {
            // Built-in names win over user columns of the same name.
            let col = match name.as_str() {
                "name" => Col::Name,
                "kind" => Col::Kind,
                "size" => Col::Size,
                "offset" => Col::Offset,
                "mode" => Col::Mode,
                "mtime" => Col::Mtime,
                "data" => Col::Data,
                other => match user_cols.iter().find(|(n, ..)| n == other) {
                    Some((_, i, ty)) => Col::User(*i, *ty),
                    None => {
                        let mut known: Vec<String> =
                            BUILTIN.iter().map(|s| s.to_string()).collect();
                        known.extend(user_cols.iter().map(|(n, ..)| n.clone()));
                        return Err(PipelineError::UnknownColumn {
                            name: other.to_string(),
                            known,
                        });
                    }
                },
            };
            let (dt, nullable) = match col {
                Col::Name | Col::Kind => (DataType::Utf8, false),
                Col::Size | Col::Offset => (DataType::UInt64, false),
                Col::Mode => (DataType::UInt32, false),
                Col::Mtime => (DataType::Int64, false),
                Col::User(_, ty) => (arrow_type(ty), true),
                Col::Data => (DataType::LargeBinary, false),
            };
            cols.push(col);
            fields.push(Field::new(name, dt, nullable));
        }
        let mut options = options.clone();
        options.batch_size = options.batch_size.max(1);
        // A data column implies entries that have data.
        options.data |= cols.iter().any(|c| matches!(c, Col::Data));
        Ok(Self {
            archive: archive.clone(),
            entries: archive.entries(),
            cols,
            schema: Arc::new(Schema::new(fields)),
            user,
            options,
            pending: None,
            done: false,
        })
    }

    fn next_entry(&mut self) -> Option<Result<Entry, ArrowError>> {
        if let Some(e) = self.pending.take() {
            return Some(Ok(e));
        }
        loop {
            match self.entries.next()? {
                Ok(e) if self.options.data && !e.kind.has_data() => continue,
                Ok(e) => return Some(Ok(e)),
                Err(e) => return Some(Err(external(e))),
            }
        }
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let with_data = self.cols.iter().any(|c| matches!(c, Col::Data));
        let mut rows: Vec<Entry> = Vec::new();
        let mut bytes = 0u64;
        while rows.len() < self.options.batch_size {
            let Some(entry) = self.next_entry().transpose()? else {
                break;
            };
            if with_data && !rows.is_empty() && bytes + entry.size > self.options.max_batch_bytes {
                self.pending = Some(entry);
                break;
            }
            bytes += entry.size;
            rows.push(entry);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len());
        let values = match &self.user {
            Some(schema) if self.cols.iter().any(|c| matches!(c, Col::User(..))) => rows
                .iter()
                .map(|e| {
                    schema.decode_row(&e.columns).map_err(|error| {
                        external(hexz_format::Error::CorruptColumns {
                            context: format!(
                                "columns of entry `{}`",
                                hexz_format::error::Excerpt(&e.name)
                            ),
                            error,
                        })
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        for col in &self.cols {
            arrays.push(match *col {
                Col::Name => {
                    let mut b = StringBuilder::new();
                    rows.iter().for_each(|e| b.append_value(&e.name));
                    Arc::new(b.finish())
                }
                Col::Kind => {
                    let mut b = StringBuilder::new();
                    rows.iter().for_each(|e| b.append_value(e.kind.as_str()));
                    Arc::new(b.finish())
                }
                Col::Size => {
                    let mut b = UInt64Builder::with_capacity(rows.len());
                    rows.iter().for_each(|e| b.append_value(e.size));
                    Arc::new(b.finish())
                }
                Col::Offset => {
                    let mut b = UInt64Builder::with_capacity(rows.len());
                    rows.iter().for_each(|e| b.append_value(e.offset));
                    Arc::new(b.finish())
                }
                Col::Mode => {
                    let mut b = UInt32Builder::with_capacity(rows.len());
                    rows.iter().for_each(|e| b.append_value(e.mode));
                    Arc::new(b.finish())
                }
                Col::Mtime => {
                    let mut b = Int64Builder::with_capacity(rows.len());
                    rows.iter().for_each(|e| b.append_value(e.mtime));
                    Arc::new(b.finish())
                }
                Col::User(i, ty) => user_array(&values, i, ty),
                Col::Data => self.data_array(&rows)?,
            });
        }
        RecordBatch::try_new(Arc::clone(&self.schema), arrays).map(Some)
    }

    /// The bytes of `rows` as one `LargeBinary` array. Entries back to back in the
    /// stream are fetched with one read whose buffer becomes the array's values.
    fn data_array(&self, rows: &[Entry]) -> Result<ArrayRef, ArrowError> {
        let mut offsets: Vec<i64> = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let contiguous = rows.windows(2).all(|w| {
            w[0].offset
                .checked_add(w[0].size)
                .is_some_and(|end| end == w[1].offset)
        });
        let values = if contiguous {
            let start = rows[0].offset;
            let mut end = start;
            for e in rows {
                end = e.offset.checked_add(e.size).ok_or_else(|| too_big(e))?;
                offsets.push(i64::try_from(end - start).map_err(|_| too_big(e))?);
            }
            let len = usize::try_from(end - start).map_err(|_| too_big(&rows[0]))?;
            self.archive.read_range(start, len).map_err(external)?
        } else {
            let mut values = Vec::new();
            for e in rows {
                values.extend_from_slice(&self.archive.read_entry(e).map_err(external)?);
                offsets.push(i64::try_from(values.len()).map_err(|_| too_big(e))?);
            }
            values
        };
        let offsets = OffsetBuffer::new(offsets.into());
        let array = LargeBinaryArray::try_new(offsets, Buffer::from_vec(values), None)?;
        Ok(Arc::new(array))
    }
}

impl Iterator for EntryBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl RecordBatchReader for EntryBatches {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Utf8 => DataType::Utf8,
        _ => DataType::Binary,
    }
}

fn user_array(rows: &[Vec<Value>], i: usize, ty: ColumnType) -> ArrayRef {
    let cell = |r: &Vec<Value>| r.get(i).cloned().unwrap_or(Value::Null);
    match ty {
        ColumnType::Bool => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for r in rows {
                match cell(r) {
                    Value::Bool(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for r in rows {
                match cell(r) {
                    Value::Int64(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float64 => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for r in rows {
                match cell(r) {
                    Value::Float64(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Utf8 => {
            let mut b = StringBuilder::new();
            for r in rows {
                match cell(r) {
                    Value::Utf8(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = BinaryBuilder::new();
            for r in rows {
                match cell(r) {
                    Value::Bytes(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

fn external(e: hexz_format::Error) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

fn too_big(e: &Entry) -> ArrowError {
    ArrowError::ExternalError(Box::new(hexz_format::Error::OutOfRange {
        what: format!("entry `{}`", hexz_format::error::Excerpt(&e.name)),
        offset: e.offset,
        len: e.size,
        size: i64::MAX as u64,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt64Type};
    use hexz_format::columns::Column;
    use hexz_format::{ArchiveWriter, EntryMeta, MemorySource, ReadOptions, WriterOptions};

    use crate::Registry;

    fn archive(n: usize) -> Archive {
        let registry = Registry::default();
        let mut options = WriterOptions::new(registry.compressor("lz4", None).unwrap());
        options.threads = Some(1);
        let mut w = ArchiveWriter::new(Vec::new(), options).unwrap();
        let schema = ColumnSchema::new(vec![
            Column::new("label", ColumnType::Int64),
            Column::new("split", ColumnType::Utf8),
        ])
        .unwrap();
        w.set_columns(schema.clone()).unwrap();
        w.add_dir("d", EntryMeta::default()).unwrap();
        for i in 0..n {
            let row = schema
                .encode_row(&[
                    Value::Int64(i as i64),
                    if i % 2 == 0 {
                        Value::Utf8("train".into())
                    } else {
                        Value::Null
                    },
                ])
                .unwrap();
            let data: Vec<u8> = (0..(100 + i * 37)).map(|j| (j * 7 + i) as u8).collect();
            let meta = EntryMeta {
                columns: row,
                ..EntryMeta::default()
            };
            w.add_record(&format!("d/{i:04}"), &data, meta).unwrap();
        }
        let (bytes, _) = w.finish().unwrap();
        Archive::open(
            Arc::new(MemorySource::new(bytes, "mem")),
            &registry,
            ReadOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn data_batches_hold_every_entry_once() {
        let a = archive(50);
        let batches: Vec<RecordBatch> = EntryBatches::new(&a, &BatchOptions::data(None, 16))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            vec![16, 16, 16, 2]
        );
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["name", "label", "split", "data"]);
        let mut i = 0;
        for b in &batches {
            let data = b.column(3).as_binary::<i64>();
            let label = b.column(1).as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                let expect: Vec<u8> = (0..(100 + i * 37)).map(|j| (j * 7 + i) as u8).collect();
                assert_eq!(data.value(r), &expect[..]);
                assert_eq!(label.value(r), i as i64);
                assert_eq!(b.column(2).is_null(r), i % 2 == 1);
                i += 1;
            }
        }
        assert_eq!(i, 50);
    }

    #[test]
    fn batches_stop_at_the_byte_budget() {
        let a = archive(10);
        let mut o = BatchOptions::data(Some(vec!["data".into()]), 100);
        o.max_batch_bytes = 300;
        let rows: Vec<usize> = EntryBatches::new(&a, &o)
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .collect();
        assert_eq!(rows.iter().sum::<usize>(), 10);
        assert!(rows.iter().all(|&r| r <= 2), "{rows:?}");
    }

    #[test]
    fn catalog_lists_all_entries_and_rejects_unknown_columns() {
        let a = archive(3);
        let b: Vec<RecordBatch> = EntryBatches::new(&a, &BatchOptions::catalog(None, 100))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].num_rows(), 4);
        assert_eq!(b[0].column(2).as_primitive::<UInt64Type>().value(0), 0);
        let err = EntryBatches::new(&a, &BatchOptions::catalog(Some(vec!["nope".into()]), 1))
            .unwrap_err();
        assert!(err.to_string().contains("label"), "{err}");
    }
}
