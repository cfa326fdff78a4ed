//! Record sources: inputs with `records:` (JSONL, CSV, Parquet, Arrow IPC) whose
//! records become entries of kind record, with their scalar fields as typed user
//! columns (see [`hexz_format::columns`]).
//!
//! A build reads record inputs in two steps, both streaming (one record, one CSV
//! row or one bounded Arrow batch in memory at a time):
//!
//! 1. **Scan** ([`scan`]), before the archive is started: the column schema.
//!    JSONL and CSV files are read once to type their fields; Parquet and Arrow
//!    files give their schema in their metadata. Every problem that can be found
//!    without the data bytes (bad JSON, a missing `data` or `name` field, a type
//!    conflict) is reported here, so a bad input fails before any output exists.
//! 2. **Ingest** ([`ingest`]), in input order with the other inputs: each record
//!    becomes one entry, its values encoded against the schema.
//!
//! # Columns and types
//!
//! Every field but the `data` and `name` fields becomes a column, in the order
//! fields are first seen (inputs in recipe order, then fields in file order).
//! One schema covers the whole archive: inputs that share a field name share the
//! column. Types:
//!
//! * JSONL: `true`/`false` → bool, integers → int64 (beyond the int64 range →
//!   float64), other numbers → float64, strings → utf8, null → null. Objects
//!   and arrays are not columns.
//! * CSV: an empty cell is null; a column whose non-empty cells are all
//!   `true`/`false` (any case) is bool, all integers (`-?(0|[1-9][0-9]*)`, so
//!   `007` stays text) int64, all numbers float64, anything else utf8 — the
//!   text as written.
//! * Parquet/Arrow: boolean → bool; signed and unsigned integers → int64 (a
//!   uint64 value above the int64 range is an error); float16/32/64 → float64;
//!   string types → utf8; binary types → bytes; dictionaries of these → the
//!   value type. Columns of other types (dates, timestamps, decimals, lists,
//!   structs, ...) are not kept.
//!
//! Conflicts: int64 and float64 in one column widen to float64 (integers are
//! converted to the nearest double). Any other mix of types in one column —
//! within a JSONL file, or between inputs — is an error naming both places.
//! A field that is null (or empty) in every record is not a column.

// `RecordError` carries two locations for type conflicts; it only travels the
// cold error path inside this module and is boxed into `PipelineError`.
#![allow(clippy::result_large_err)]

mod arrow;
mod delimited;
mod jsonl;
mod schema;

use std::fmt;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};

use base64::Engine;
use hexz_format::columns::{ColumnError, ColumnSchema, ColumnType, Value};
use hexz_format::{ArchiveWriter, EntryKind, PendingFile};
use indicatif::ProgressBar;

use crate::digest::InputDigest;
use crate::error::{PipelineError, Result};
use crate::recipe::{DataEncoding, InputPlan, Plan, RecordFormat, RecordsPlan};
use hexz_format::error::Excerpt;

use schema::RowBuilder;
pub(crate) use schema::SchemaBuilder;

/// Where a record is in its file: a line (JSONL, CSV) or a row (Parquet, Arrow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLocation {
    /// The record file.
    pub path: PathBuf,
    /// 1-based line of a text record.
    pub line: Option<u64>,
    /// 0-based index of the record in its file.
    pub row: u64,
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", Excerpt::path(&self.path)),
            None => write!(f, "{}: row {}", Excerpt::path(&self.path), self.row),
        }
    }
}

/// What can be wrong with a record source. Messages start with the file (and
/// line or row) and end with the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A JSONL line is not valid JSON.
    #[error(
        "{at}:{column}: invalid JSON: {}; each line must hold one JSON object",
        Excerpt(detail)
    )]
    BadJson {
        /// The line.
        at: RecordLocation,
        /// 1-based column in the line.
        column: u64,
        /// The parser's description.
        detail: String,
    },
    /// A JSONL line holds JSON that is not an object.
    #[error("{at}: the line is {found}, not a JSON object; each line must hold one object")]
    NotAnObject {
        /// The line.
        at: RecordLocation,
        /// What it holds.
        found: &'static str,
    },
    /// A CSV file could not be parsed.
    #[error("{at}: invalid CSV: {}", Excerpt(detail))]
    BadCsv {
        /// Where.
        at: RecordLocation,
        /// The parser's description.
        detail: String,
    },
    /// A Parquet or Arrow file could not be read.
    #[error(
        "{}: cannot read {format} file: {}",
        Excerpt::path(path),
        Excerpt(detail)
    )]
    BadColumnar {
        /// The file.
        path: PathBuf,
        /// `parquet` or `arrow`.
        format: RecordFormat,
        /// The reader's description.
        detail: String,
    },
    /// The `data` or `name` field is not in the file (CSV header, Arrow schema).
    #[error("{}: no field `{}` (named by `records.{role}`); the file has: {}", Excerpt::path(path), Excerpt(field), Excerpt(&known.join(", ")))]
    NoSuchField {
        /// The file.
        path: PathBuf,
        /// `data` or `name`.
        role: &'static str,
        /// The field asked for.
        field: String,
        /// The fields the file has.
        known: Vec<String>,
    },
    /// A record has no value for its data or name field.
    #[error(
        "{at}: the record has no `{}` (named by `records.{role}`); give every record \
         one{}",
        Excerpt(field),
        if *role == "data" { ", or write `data: null` to store each record whole" } else { "" }
    )]
    MissingField {
        /// The record.
        at: RecordLocation,
        /// `data` or `name`.
        role: &'static str,
        /// The field.
        field: String,
    },
    /// The data or name field has a type that cannot be used for it.
    #[error(
        "{at}: `{}` (named by `records.{role}`) is {}; {expected}",
        Excerpt(field),
        Excerpt(found)
    )]
    FieldType {
        /// The record (or just the file, for a column type).
        at: RecordLocation,
        /// `data` or `name`.
        role: &'static str,
        /// The field.
        field: String,
        /// What it is.
        found: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A data field with `encoding: base64` is not base64.
    #[error(
        "{at}: `{}` is not valid base64 ({}); set `encoding: utf8` under \
         `records:` to store the text itself",
        Excerpt(field),
        Excerpt(detail)
    )]
    BadBase64 {
        /// The record.
        at: RecordLocation,
        /// The field.
        field: String,
        /// The decoder's description.
        detail: String,
    },
    /// A column holds values of two types that do not widen into one.
    #[error(
        "{at}: field `{}` is {found} here but {expected} at {first}; give the \
         field one type in every record (int64 and float64 mix as float64)",
        Excerpt(column)
    )]
    TypeConflict {
        /// Where the second type was seen.
        at: RecordLocation,
        /// The column.
        column: String,
        /// Its type so far.
        expected: ColumnType,
        /// Where that type was first seen.
        first: RecordLocation,
        /// The other type.
        found: ColumnType,
    },
    /// A value does not fit its column (a uint64 above the int64 range).
    #[error("{at}: field `{}`: {}", Excerpt(column), Excerpt(detail))]
    BadValue {
        /// The record.
        at: RecordLocation,
        /// The column.
        column: String,
        /// What is wrong.
        detail: String,
    },
    /// The fields do not make a valid column schema (too many, bad names).
    #[error(
        "{}: the record fields do not make a column schema: {error}",
        Excerpt::path(path)
    )]
    Schema {
        /// The file that added the offending field.
        path: PathBuf,
        /// What is wrong.
        #[source]
        error: ColumnError,
    },
    /// A record's entry name is not a valid name.
    #[error("{at}: entry name {:?} is not valid: {reason}", Excerpt(name))]
    BadName {
        /// The record.
        at: RecordLocation,
        /// The name (with the prefix).
        name: String,
        /// Why.
        reason: String,
    },
    /// Reading the file failed.
    #[error("{}: {error}", Excerpt::path(path))]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        error: std::io::Error,
    },
}

impl From<RecordError> for PipelineError {
    fn from(e: RecordError) -> Self {
        PipelineError::Records(Box::new(e))
    }
}

/// The result of scanning a plan's record inputs.
#[derive(Debug, Clone, Default)]
pub struct RecordScan {
    /// The archive's column schema; `None` when no record input has a column.
    pub schema: Option<ColumnSchema>,
    /// Per input (in plan order): records counted by the scan, for JSONL and CSV
    /// and Parquet inputs; `None` for other inputs and for Arrow files.
    pub records: Vec<Option<u64>>,
}

/// Scan every record input of `plan` (see the module docs): the column schema,
/// and every problem found without reading the data bytes.
pub fn scan(plan: &Plan) -> Result<RecordScan> {
    let mut builder = SchemaBuilder::default();
    let mut records = Vec::with_capacity(plan.inputs.len());
    for input in &plan.inputs {
        let count = match &input.records {
            None => None,
            Some(r) => match r.format {
                RecordFormat::Jsonl => Some(jsonl::scan(&input.path, r, &mut builder)?),
                RecordFormat::Csv => Some(delimited::scan(&input.path, r, &mut builder)?),
                RecordFormat::Parquet => arrow::scan_parquet(&input.path, r, &mut builder)?,
                RecordFormat::Arrow => arrow::scan_ipc(&input.path, r, &mut builder)?,
            },
        };
        records.push(count);
    }
    Ok(RecordScan {
        schema: builder.finish()?,
        records,
    })
}

/// One record read from a source, its values already in schema order.
pub(crate) struct Record<'a> {
    pub(crate) at: &'a dyn Fn() -> RecordLocation,
    /// The name field's value, if the input has a name field.
    pub(crate) name: Option<&'a str>,
    pub(crate) data: &'a [u8],
    pub(crate) row: &'a RowBuilder<'a>,
}

/// What ingesting one input added.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ingested {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

/// Add every record of the record input `input` to `writer`, in file order.
/// `schema` is the one [`scan`] returned (and the writer was given).
pub(crate) fn ingest(
    writer: &mut ArchiveWriter<PendingFile>,
    schema: Option<&ColumnSchema>,
    input: &InputPlan,
    meta: &Metadata,
    bar: &ProgressBar,
    digest: &mut InputDigest,
) -> Result<Ingested> {
    let Some(plan) = &input.records else {
        return Ok(Ingested::default());
    };
    let template = crate::build::entry_meta(meta);
    let mut done = Ingested::default();
    let mut name_buf = String::new();
    let mut sink = |record: Record<'_>| -> Result<()> {
        name_buf.clear();
        name_buf.push_str(&plan.prefix);
        match record.name {
            Some(name) => name_buf.push_str(name),
            None => {
                use std::fmt::Write;
                let _ = write!(name_buf, "{:08}", done.records);
            }
        }
        let mut entry_meta = template.clone();
        entry_meta.columns = record.row.encode().map_err(|error| RecordError::Schema {
            path: input.path.clone(),
            error,
        })?;
        let digest_meta = entry_meta.clone();
        writer
            .add_record(&name_buf, record.data, entry_meta)
            .map_err(|e| match e {
                hexz_format::Error::InvalidName { reason, .. } => RecordError::BadName {
                    at: (record.at)(),
                    name: name_buf.clone(),
                    reason: reason.to_owned(),
                }
                .into(),
                other => PipelineError::from(other),
            })?;
        digest.add(
            EntryKind::Record,
            &name_buf,
            record.data.len() as u64,
            &digest_meta,
            None,
        );
        done.records += 1;
        done.bytes += record.data.len() as u64;
        bar.inc(record.data.len() as u64);
        if done.records % 256 == 0 {
            bar.set_message(crate::progress::build_message(
                done.records,
                "records",
                writer.progress(),
            ));
        }
        Ok(())
    };
    match plan.format {
        RecordFormat::Jsonl => jsonl::read(&input.path, plan, schema, &mut sink)?,
        RecordFormat::Csv => delimited::read(&input.path, plan, schema, &mut sink)?,
        RecordFormat::Parquet => arrow::read_parquet(&input.path, plan, schema, &mut sink)?,
        RecordFormat::Arrow => arrow::read_ipc(&input.path, plan, schema, &mut sink)?,
    }
    Ok(done)
}

/// Open a record file.
fn open(path: &Path) -> Result<File, RecordError> {
    File::open(path).map_err(|error| RecordError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// The bytes of a text data field, per `encoding`.
fn text_data(
    text: &str,
    plan: &RecordsPlan,
    field: &str,
    at: &dyn Fn() -> RecordLocation,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    out.clear();
    match plan.encoding {
        DataEncoding::Utf8 => out.extend_from_slice(text.as_bytes()),
        DataEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode_vec(text.trim_ascii(), out)
            .map_err(|e| RecordError::BadBase64 {
                at: at(),
                field: field.to_owned(),
                detail: e.to_string(),
            })?,
    }
    Ok(())
}

/// A value as JSON, for `data: null` records (non-finite floats become null,
/// bytes base64).
fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int64(n) => (*n).into(),
        Value::Float64(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Utf8(s) => s.as_str().into(),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b).into(),
        _ => serde_json::Value::Null,
    }
}

/// One entry's column values as a JSON object `{"column": value, ...}` (for
/// `hexz ls --json`): nulls as `null`, non-finite floats as `null`, bytes as
/// base64 strings.
pub fn columns_json(schema: &ColumnSchema, values: &[Value]) -> serde_json::Value {
    schema
        .columns()
        .iter()
        .zip(values)
        .map(|(c, v)| (c.name.clone(), value_json(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A JSON object of `fields` in the given order (serde_json's map would sort
/// the keys).
fn json_object<'a>(fields: impl Iterator<Item = (&'a str, serde_json::Value)>, out: &mut Vec<u8>) {
    out.clear();
    out.push(b'{');
    for (i, (key, value)) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, &value);
    }
    out.push(b'}');
}
