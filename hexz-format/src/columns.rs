//! Typed user columns: the column schema (section kind 3, [`SECTION_COLUMNS`]) and
//! the per-entry values kept in an entry's `columns` bytes.
//!
//! An archive with a schema section gives every entry one value per column, each
//! either null or of the column's type; `hexz ls --json` and the Arrow readers
//! return them. Without a schema section the `columns` bytes are opaque (as in
//! v1.0 archives) and [`Archive::entry_columns`](crate::Archive::entry_columns)
//! returns `None`.
//!
//! Schema blob (the section's raw bytes):
//!
//! ```text
//! 0  4  u32 column count n, 1..=1024
//! 4  4  reserved, zero
//! 8  .. n column descriptors, back to back:
//!       0 1 u8  type: 1 bool, 2 int64, 3 float64, 4 utf8, 5 bytes
//!       1 1 u8  reserved, zero
//!       2 2 u16 name length L, 1..=255
//!       4 L     name: UTF-8, no control characters, unique in the schema
//! (no bytes after the last descriptor)
//! ```
//!
//! Row (an entry's `columns` bytes), against a schema of n columns:
//!
//! ```text
//! empty                 every value is null (entries without columns, e.g. files)
//! otherwise:
//! 0      ceil(n/8)      validity bitmap: bit (i mod 8) of byte (i div 8) set = column i
//!                       has a value; bits for i >= n are zero; at least one bit is set
//! ..     values of the columns whose bit is set, in schema order, back to back:
//!          bool     1 byte, 0 or 1
//!          int64    8 bytes, i64 little-endian
//!          float64  8 bytes, IEEE 754 binary64 bits, little-endian (any bit pattern)
//!          utf8     u32 length, then that many bytes of UTF-8
//!          bytes    u32 length, then that many bytes
//! (no bytes after the last value; the whole row is at most 1 MiB)
//! ```
//!
//! Fixed-width values keep the encoding canonical (one byte string per row) and
//! cheap to walk; catalog pages are compressed, so the zero bytes of small
//! integers cost little on disk.
//!
//! ```
//! use hexz_format::columns::{Column, ColumnSchema, ColumnType, Value};
//!
//! let schema = ColumnSchema::new(vec![
//!     Column::new("label", ColumnType::Int64),
//!     Column::new("split", ColumnType::Utf8),
//! ])?;
//! let row = schema.encode_row(&[Value::Int64(7), Value::Null])?;
//! assert_eq!(row, [0b01, 7, 0, 0, 0, 0, 0, 0, 0]);
//! assert_eq!(schema.decode_row(&row)?, vec![Value::Int64(7), Value::Null]);
//! assert_eq!(ColumnSchema::decode(&schema.encode())?, schema);
//! # Ok::<(), hexz_format::columns::ColumnError>(())
//! ```

use std::fmt;

use crate::layout::MAX_COLUMNS_LEN;
#[cfg(doc)]
use crate::layout::SECTION_COLUMNS;

/// Most columns a schema may declare.
pub const MAX_SCHEMA_COLUMNS: usize = 1024;
/// Longest column name, in bytes.
pub const MAX_COLUMN_NAME_LEN: usize = 255;
/// Fixed header of the schema blob.
pub const SCHEMA_HEADER_LEN: usize = 8;
/// Fixed part of one column descriptor.
pub const COLUMN_DESCRIPTOR_LEN: usize = 4;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ColumnType {
    /// `true` or `false`.
    Bool = 1,
    /// A signed 64-bit integer.
    Int64 = 2,
    /// An IEEE 754 double.
    Float64 = 3,
    /// A UTF-8 string.
    Utf8 = 4,
    /// A byte string.
    Bytes = 5,
}

impl ColumnType {
    /// All types, in code order.
    pub const ALL: [ColumnType; 5] = [
        Self::Bool,
        Self::Int64,
        Self::Float64,
        Self::Utf8,
        Self::Bytes,
    ];

    /// The type with code `v`.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as u8 == v)
    }

    /// Lower-case name: `bool`, `int64`, `float64`, `utf8`, `bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int64 => "int64",
            Self::Float64 => "float64",
            Self::Utf8 => "utf8",
            Self::Bytes => "bytes",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column: a name and a type. Every column accepts nulls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Name, 1..=255 bytes of UTF-8 without control characters.
    pub name: String,
    /// Type of its non-null values.
    pub ty: ColumnType,
}

impl Column {
    /// A column called `name` of type `ty` (checked by [`ColumnSchema::new`]).
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// No value.
    Null,
    /// A `bool` value.
    Bool(bool),
    /// An `int64` value.
    Int64(i64),
    /// A `float64` value.
    Float64(f64),
    /// A `utf8` value.
    Utf8(String),
    /// A `bytes` value.
    Bytes(Vec<u8>),
}

impl Value {
    /// The type of a non-null value.
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Self::Null => return None,
            Self::Bool(_) => ColumnType::Bool,
            Self::Int64(_) => ColumnType::Int64,
            Self::Float64(_) => ColumnType::Float64,
            Self::Utf8(_) => ColumnType::Utf8,
            Self::Bytes(_) => ColumnType::Bytes,
        })
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
}

/// A malformed schema or row, or a row that does not fit its schema. Offsets
/// (`at`) count from the first byte of the schema blob or of the row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnError {
    /// A field runs past the end of the bytes.
    #[error("{what} at byte {at} needs {need} bytes but {have} remain")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Where it starts.
        at: usize,
        /// Bytes it needs.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// Bytes follow the last field.
    #[error("{count} trailing bytes at byte {at}")]
    TrailingBytes {
        /// Where they start.
        at: usize,
        /// How many.
        count: usize,
    },
    /// Reserved bytes are not zero.
    #[error("reserved bytes at byte {at} are not zero")]
    Reserved {
        /// Where they are.
        at: usize,
    },
    /// The schema declares no column, or too many.
    #[error("column count {count} outside 1..={MAX_SCHEMA_COLUMNS}")]
    ColumnCount {
        /// The count found or given.
        count: u64,
    },
    /// A type code no version defines.
    #[error("unknown column type {code} at byte {at}")]
    UnknownType {
        /// Where it is.
        at: usize,
        /// The code.
        code: u8,
    },
    /// A column name of the wrong length.
    #[error("column name length {len} at byte {at} outside 1..={MAX_COLUMN_NAME_LEN}")]
    NameLength {
        /// Where the name (or its length field) is.
        at: usize,
        /// The length.
        len: usize,
    },
    /// A column name that is not UTF-8 or holds a control character.
    #[error(
        "column name at byte {at} is not UTF-8 without control characters: {:?}",
        crate::error::Excerpt(name)
    )]
    BadName {
        /// Where the name starts.
        at: usize,
        /// The name, lossily decoded.
        name: String,
    },
    /// Two columns share a name.
    #[error("duplicate column name `{}`", crate::error::Excerpt(name))]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Validity bits are set for columns past the last one.
    #[error("validity bits past column {columns} are set (byte {at})")]
    PaddingBits {
        /// Where the last bitmap byte is.
        at: usize,
        /// Columns in the schema.
        columns: usize,
    },
    /// A non-empty row has no value (an all-null row is encoded as no bytes).
    #[error("a row without values must be empty, found {len} bytes")]
    EmptyBitmap {
        /// The row's length.
        len: usize,
    },
    /// A `bool` byte other than 0 or 1.
    #[error("column `{column}`: bool byte {byte} at byte {at} is neither 0 nor 1")]
    BadBool {
        /// The column.
        column: String,
        /// Where it is.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A `utf8` value that is not UTF-8.
    #[error("column `{column}`: utf8 value at byte {at} is not valid UTF-8")]
    BadUtf8 {
        /// The column.
        column: String,
        /// Where the value's bytes start.
        at: usize,
    },
    /// A row given for encoding has the wrong number of values.
    #[error("row has {found} values, the schema {expected} columns")]
    ValueCount {
        /// Columns in the schema.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A value given for encoding does not have its column's type.
    #[error("column `{column}` is {expected}, the value is {found}")]
    TypeMismatch {
        /// The column.
        column: String,
        /// The column's type.
        expected: ColumnType,
        /// The value's type.
        found: ColumnType,
    },
    /// A row longer than an entry's columns may be.
    #[error("row of {len} bytes is over the {MAX_COLUMNS_LEN}-byte limit")]
    RowTooLong {
        /// Its length (or a lower bound).
        len: usize,
    },
}

/// The columns of an archive, in order. At least one, at most
/// [`MAX_SCHEMA_COLUMNS`], names unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnSchema {
    columns: Vec<Column>,
}

impl ColumnSchema {
    /// A schema of `columns`, checked: count, name length and characters, unique
    /// names.
    pub fn new(columns: Vec<Column>) -> Result<Self, ColumnError> {
        if columns.is_empty() || columns.len() > MAX_SCHEMA_COLUMNS {
            return Err(ColumnError::ColumnCount {
                count: columns.len() as u64,
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(columns.len());
        for c in &columns {
            check_name(c.name.as_bytes(), 0)?;
            if !seen.insert(c.name.as_str()) {
                return Err(ColumnError::DuplicateName {
                    name: c.name.clone(),
                });
            }
        }
        Ok(Self { columns })
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Number of columns (at least 1).
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Always `false`: a schema has at least one column.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Position of the column called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The schema blob (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let names: usize = self.columns.iter().map(|c| c.name.len()).sum();
        let mut out = Vec::with_capacity(
            SCHEMA_HEADER_LEN + self.columns.len() * COLUMN_DESCRIPTOR_LEN + names,
        );
        out.extend_from_slice(&(self.columns.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for c in &self.columns {
            out.push(c.ty as u8);
            out.push(0);
            out.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
            out.extend_from_slice(c.name.as_bytes());
        }
        out
    }

    /// Decode and check a schema blob.
    pub fn decode(bytes: &[u8]) -> Result<Self, ColumnError> {
        let mut r = Reader::new(bytes);
        let count = r.u32("column count")?;
        if count == 0 || count as usize > MAX_SCHEMA_COLUMNS {
            return Err(ColumnError::ColumnCount {
                count: count.into(),
            });
        }
        r.reserved(4)?;
        let mut columns = Vec::with_capacity(count as usize);
        let mut seen = std::collections::HashSet::with_capacity(count as usize);
        for _ in 0..count {
            let at = r.pos;
            let code = r.u8("column type")?;
            let ty = ColumnType::from_u8(code).ok_or(ColumnError::UnknownType { at, code })?;
            r.reserved(1)?;
            let len_at = r.pos;
            let len = r.u16("column name length")? as usize;
            if len == 0 || len > MAX_COLUMN_NAME_LEN {
                return Err(ColumnError::NameLength { at: len_at, len });
            }
            let name_at = r.pos;
            let name = check_name(r.take("column name", len)?, name_at)?;
            if !seen.insert(name) {
                return Err(ColumnError::DuplicateName {
                    name: name.to_string(),
                });
            }
            columns.push(Column::new(name, ty));
        }
        r.finish()?;
        Ok(Self { columns })
    }

    /// Encode one row: `values[i]` is column `i`'s value, null or of its type.
    /// An all-null row is encoded as no bytes.
    pub fn encode_row(&self, values: &[Value]) -> Result<Vec<u8>, ColumnError> {
        let mut out = Vec::new();
        self.encode_row_into(values, &mut out)?;
        Ok(out)
    }

    /// As [`encode_row`](Self::encode_row), appending to `out` (cleared first).
    pub fn encode_row_into(&self, values: &[Value], out: &mut Vec<u8>) -> Result<(), ColumnError> {
        out.clear();
        if values.len() != self.columns.len() {
            return Err(ColumnError::ValueCount {
                expected: self.columns.len(),
                found: values.len(),
            });
        }
        if values.iter().all(Value::is_null) {
            return Ok(());
        }
        let bitmap_len = self.columns.len().div_ceil(8);
        out.resize(bitmap_len, 0);
        for (i, (column, value)) in self.columns.iter().zip(values).enumerate() {
            let Some(found) = value.column_type() else {
                continue;
            };
            if found != column.ty {
                out.clear();
                return Err(ColumnError::TypeMismatch {
                    column: column.name.clone(),
                    expected: column.ty,
                    found,
                });
            }
            out[i / 8] |= 1 << (i % 8);
            match value {
                Value::Null => {}
                Value::Bool(v) => out.push(u8::from(*v)),
                Value::Int64(v) => out.extend_from_slice(&v.to_le_bytes()),
                Value::Float64(v) => out.extend_from_slice(&v.to_bits().to_le_bytes()),
                Value::Utf8(v) => put_var(out, v.as_bytes())?,
                Value::Bytes(v) => put_var(out, v)?,
            }
        }
        if out.len() > MAX_COLUMNS_LEN {
            let len = out.len();
            out.clear();
            return Err(ColumnError::RowTooLong { len });
        }
        Ok(())
    }

    /// Decode and check one row: one value per column, in order.
    pub fn decode_row(&self, bytes: &[u8]) -> Result<Vec<Value>, ColumnError> {
        let mut values = vec![Value::Null; self.columns.len()];
        self.walk_row(bytes, |i, v| {
            values[i] = match v {
                RawValue::Bool(b) => Value::Bool(b),
                RawValue::Int64(n) => Value::Int64(n),
                RawValue::Float64(f) => Value::Float64(f),
                RawValue::Utf8(s) => Value::Utf8(s.to_string()),
                RawValue::Bytes(b) => Value::Bytes(b.to_vec()),
            }
        })?;
        Ok(values)
    }

    /// Check one row without building its values.
    pub fn check_row(&self, bytes: &[u8]) -> Result<(), ColumnError> {
        self.walk_row(bytes, |_, _| {})
    }

    /// Walk the non-null values of a row, checking every rule of the encoding.
    fn walk_row<'a>(
        &self,
        bytes: &'a [u8],
        mut visit: impl FnMut(usize, RawValue<'a>),
    ) -> Result<(), ColumnError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if bytes.len() > MAX_COLUMNS_LEN {
            return Err(ColumnError::RowTooLong { len: bytes.len() });
        }
        let n = self.columns.len();
        let mut r = Reader::new(bytes);
        let bitmap = r.take("validity bitmap", n.div_ceil(8))?;
        let spare = bitmap.len() * 8 - n;
        if let Some(&last) = bitmap.last()
            && spare > 0
            && last >> (8 - spare) != 0
        {
            return Err(ColumnError::PaddingBits {
                at: bitmap.len() - 1,
                columns: n,
            });
        }
        if bitmap.iter().all(|&b| b == 0) {
            return Err(ColumnError::EmptyBitmap { len: bytes.len() });
        }
        for (i, column) in self.columns.iter().enumerate() {
            if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                continue;
            }
            let at = r.pos;
            let value = match column.ty {
                ColumnType::Bool => match r.u8("bool value")? {
                    0 => RawValue::Bool(false),
                    1 => RawValue::Bool(true),
                    byte => {
                        return Err(ColumnError::BadBool {
                            column: column.name.clone(),
                            at,
                            byte,
                        });
                    }
                },
                ColumnType::Int64 => RawValue::Int64(i64::from_le_bytes(r.array("int64 value")?)),
                ColumnType::Float64 => RawValue::Float64(f64::from_bits(u64::from_le_bytes(
                    r.array("float64 value")?,
                ))),
                ColumnType::Utf8 => {
                    let len = r.u32("utf8 length")? as usize;
                    let data_at = r.pos;
                    let data = r.take("utf8 value", len)?;
                    let s = std::str::from_utf8(data).map_err(|_| ColumnError::BadUtf8 {
                        column: column.name.clone(),
                        at: data_at,
                    })?;
                    RawValue::Utf8(s)
                }
                ColumnType::Bytes => {
                    let len = r.u32("bytes length")? as usize;
                    RawValue::Bytes(r.take("bytes value", len)?)
                }
            };
            visit(i, value);
        }
        r.finish()
    }
}

/// A decoded value borrowing from the row.
enum RawValue<'a> {
    Bool(bool),
    Int64(i64),
    Float64(f64),
    Utf8(&'a str),
    Bytes(&'a [u8]),
}

fn put_var(out: &mut Vec<u8>, data: &[u8]) -> Result<(), ColumnError> {
    // Checked before the u32 cast: a longer value could not fit a row anyway.
    if data.len() > MAX_COLUMNS_LEN {
        return Err(ColumnError::RowTooLong {
            len: out.len() + 4 + data.len(),
        });
    }
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    Ok(())
}

/// A column name: 1..=255 bytes, UTF-8, no control characters.
fn check_name(bytes: &[u8], at: usize) -> Result<&str, ColumnError> {
    if bytes.is_empty() || bytes.len() > MAX_COLUMN_NAME_LEN {
        return Err(ColumnError::NameLength {
            at,
            len: bytes.len(),
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(name) if !name.chars().any(char::is_control) => Ok(name),
        _ => Err(ColumnError::BadName {
            at,
            name: String::from_utf8_lossy(bytes).into_owned(),
        }),
    }
}

/// Bounds-checked little-endian reads; positions are relative to the blob.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], ColumnError> {
        let have = self.buf.len() - self.pos;
        if n > have {
            return Err(ColumnError::Truncated {
                what,
                at: self.pos,
                need: n,
                have,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ColumnError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(what, N)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ColumnError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ColumnError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ColumnError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn reserved(&mut self, n: usize) -> Result<(), ColumnError> {
        let at = self.pos;
        if self.take("reserved bytes", n)?.iter().any(|&b| b != 0) {
            return Err(ColumnError::Reserved { at });
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), ColumnError> {
        let count = self.buf.len() - self.pos;
        if count != 0 {
            return Err(ColumnError::TrailingBytes {
                at: self.pos,
                count,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn schema() -> ColumnSchema {
        ColumnSchema::new(vec![
            Column::new("ok", ColumnType::Bool),
            Column::new("label", ColumnType::Int64),
            Column::new("score", ColumnType::Float64),
            Column::new("split", ColumnType::Utf8),
            Column::new("thumb", ColumnType::Bytes),
        ])
        .unwrap()
    }

    fn full_row() -> Vec<Value> {
        vec![
            Value::Bool(true),
            Value::Int64(-2),
            Value::Float64(0.5),
            Value::Utf8("tr".into()),
            Value::Bytes(vec![0xff]),
        ]
    }

    #[test]
    fn schema_bytes_are_as_documented() {
        let s = ColumnSchema::new(vec![
            Column::new("id", ColumnType::Int64),
            Column::new("é", ColumnType::Utf8),
        ])
        .unwrap();
        let bytes = s.encode();
        assert_eq!(
            bytes,
            [
                2, 0, 0, 0, 0, 0, 0, 0, // count 2, reserved
                2, 0, 2, 0, b'i', b'd', // int64 "id"
                4, 0, 2, 0, 0xc3, 0xa9, // utf8 "é"
            ]
        );
        assert_eq!(ColumnSchema::decode(&bytes).unwrap(), s);
    }

    #[test]
    fn row_bytes_are_as_documented() {
        let bytes = schema().encode_row(&full_row()).unwrap();
        let mut want = vec![0b1_1111, 1];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&0.5f64.to_bits().to_le_bytes());
        want.extend_from_slice(&[2, 0, 0, 0, b't', b'r']);
        want.extend_from_slice(&[1, 0, 0, 0, 0xff]);
        assert_eq!(bytes, want);
        assert_eq!(schema().decode_row(&bytes).unwrap(), full_row());
    }

    #[test]
    fn every_null_pattern_round_trips() {
        let s = schema();
        for mask in 0u32..32 {
            let row: Vec<Value> = full_row()
                .into_iter()
                .enumerate()
                .map(|(i, v)| if mask & (1 << i) != 0 { v } else { Value::Null })
                .collect();
            let bytes = s.encode_row(&row).unwrap();
            assert_eq!(bytes.is_empty(), mask == 0);
            if mask != 0 {
                assert_eq!(u32::from(bytes[0]), mask);
            }
            assert_eq!(s.decode_row(&bytes).unwrap(), row, "mask {mask:b}");
            s.check_row(&bytes).unwrap();
        }
    }

    #[test]
    fn extreme_values_round_trip() {
        let s = schema();
        for row in [
            vec![
                Value::Bool(false),
                Value::Int64(i64::MIN),
                Value::Float64(f64::NEG_INFINITY),
                Value::Utf8(String::new()),
                Value::Bytes(Vec::new()),
            ],
            vec![
                Value::Null,
                Value::Int64(i64::MAX),
                Value::Float64(-0.0),
                Value::Utf8("x".repeat(70_000)),
                Value::Null,
            ],
        ] {
            let bytes = s.encode_row(&row).unwrap();
            assert_eq!(s.decode_row(&bytes).unwrap(), row);
        }
        // NaN keeps its bits.
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        let bytes = s
            .encode_row(&[
                Value::Null,
                Value::Null,
                Value::Float64(nan),
                Value::Null,
                Value::Null,
            ])
            .unwrap();
        match &s.decode_row(&bytes).unwrap()[2] {
            Value::Float64(f) => assert_eq!(f.to_bits(), nan.to_bits()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bitmap_spans_several_bytes() {
        let cols: Vec<Column> = (0..MAX_SCHEMA_COLUMNS)
            .map(|i| Column::new(format!("c{i}"), ColumnType::Bool))
            .collect();
        let s = ColumnSchema::new(cols).unwrap();
        assert_eq!(ColumnSchema::decode(&s.encode()).unwrap(), s);
        let mut row = vec![Value::Null; MAX_SCHEMA_COLUMNS];
        row[9] = Value::Bool(true);
        row[1023] = Value::Bool(false);
        let bytes = s.encode_row(&row).unwrap();
        assert_eq!(bytes.len(), 128 + 2);
        assert_eq!(bytes[1], 0b10);
        assert_eq!(bytes[127], 0x80);
        assert_eq!(s.decode_row(&bytes).unwrap(), row);
    }

    #[test]
    fn invalid_schemas_are_refused_by_new() {
        let one = |name: &str| ColumnSchema::new(vec![Column::new(name, ColumnType::Bool)]);
        assert_eq!(
            ColumnSchema::new(Vec::new()),
            Err(ColumnError::ColumnCount { count: 0 })
        );
        let many = (0..=MAX_SCHEMA_COLUMNS)
            .map(|i| Column::new(format!("c{i}"), ColumnType::Bool))
            .collect();
        assert_eq!(
            ColumnSchema::new(many),
            Err(ColumnError::ColumnCount { count: 1025 })
        );
        assert!(matches!(
            one(""),
            Err(ColumnError::NameLength { len: 0, .. })
        ));
        assert!(matches!(
            one(&"n".repeat(256)),
            Err(ColumnError::NameLength { len: 256, .. })
        ));
        one(&"n".repeat(255)).unwrap();
        assert!(matches!(one("a\nb"), Err(ColumnError::BadName { .. })));
        assert!(matches!(one("nul\0"), Err(ColumnError::BadName { .. })));
        assert_eq!(
            ColumnSchema::new(vec![
                Column::new("a", ColumnType::Bool),
                Column::new("a", ColumnType::Utf8)
            ]),
            Err(ColumnError::DuplicateName { name: "a".into() })
        );
    }

    #[test]
    fn malformed_schema_blobs() {
        let good = schema().encode();
        let err = |bytes: &[u8]| ColumnSchema::decode(bytes).unwrap_err();
        // Every truncation fails, none panics.
        for n in 0..good.len() {
            assert!(
                matches!(err(&good[..n]), ColumnError::Truncated { .. }),
                "{n}"
            );
        }
        let edit = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            b
        };
        assert_eq!(err(&[0; 8]), ColumnError::ColumnCount { count: 0 });
        assert_eq!(
            err(&[1, 4, 0, 0, 0, 0, 0, 0]),
            ColumnError::ColumnCount { count: 1025 }
        );
        assert_eq!(
            err(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            ColumnError::ColumnCount {
                count: u32::MAX.into()
            }
        );
        assert_eq!(err(&edit(4, 1)), ColumnError::Reserved { at: 4 });
        assert_eq!(err(&edit(7, 1)), ColumnError::Reserved { at: 4 });
        assert_eq!(
            err(&edit(8, 0)),
            ColumnError::UnknownType { at: 8, code: 0 }
        );
        assert_eq!(
            err(&edit(8, 6)),
            ColumnError::UnknownType { at: 8, code: 6 }
        );
        assert_eq!(err(&edit(9, 1)), ColumnError::Reserved { at: 9 });
        assert_eq!(
            err(&edit(10, 0)),
            ColumnError::NameLength { at: 10, len: 0 }
        );
        // "ok" → "o\n", "o\xff"
        assert!(matches!(
            err(&edit(13, b'\n')),
            ColumnError::BadName { at: 12, .. }
        ));
        assert!(matches!(
            err(&edit(13, 0xff)),
            ColumnError::BadName { at: 12, .. }
        ));
        // Name length 256 (0x0100).
        let mut long = edit(11, 1);
        long[10] = 0;
        assert_eq!(err(&long), ColumnError::NameLength { at: 10, len: 256 });
        // Declared length longer than what is left.
        assert!(matches!(
            err(&edit(10, 200)),
            ColumnError::Truncated {
                what: "column name",
                ..
            }
        ));
        // Trailing bytes.
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            err(&trailing),
            ColumnError::TrailingBytes {
                at: good.len(),
                count: 1
            }
        );
        // Duplicate names: rename "label" (5 bytes) to... two columns named "ok".
        let dup = ColumnSchema {
            columns: vec![
                Column::new("ok", ColumnType::Bool),
                Column::new("ok", ColumnType::Int64),
            ],
        }
        .encode();
        assert_eq!(err(&dup), ColumnError::DuplicateName { name: "ok".into() });
    }

    #[test]
    fn malformed_rows() {
        let s = schema();
        let good = s.encode_row(&full_row()).unwrap();
        let err = |bytes: &[u8]| s.decode_row(bytes).unwrap_err();
        for n in 1..good.len() {
            assert!(
                matches!(err(&good[..n]), ColumnError::Truncated { .. }),
                "{n}"
            );
            assert!(s.check_row(&good[..n]).is_err());
        }
        let edit = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            b
        };
        // Bits for columns 5..8 must be zero.
        assert_eq!(
            err(&edit(0, 0b0010_0001)),
            ColumnError::PaddingBits { at: 0, columns: 5 }
        );
        assert_eq!(err(&[0]), ColumnError::EmptyBitmap { len: 1 });
        assert_eq!(
            err(&edit(1, 2)),
            ColumnError::BadBool {
                column: "ok".into(),
                at: 1,
                byte: 2
            }
        );
        // utf8 "tr" → "t\xff"
        assert_eq!(
            err(&edit(23, 0xff)),
            ColumnError::BadUtf8 {
                column: "split".into(),
                at: 22
            }
        );
        // A huge declared length is refused before anything is allocated.
        let mut huge = good.clone();
        huge[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            err(&huge),
            ColumnError::Truncated { what: "utf8 value", need, .. } if need == u32::MAX as usize
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            err(&trailing),
            ColumnError::TrailingBytes {
                at: good.len(),
                count: 1
            }
        );
        assert_eq!(
            err(&vec![1; MAX_COLUMNS_LEN + 1]),
            ColumnError::RowTooLong {
                len: MAX_COLUMNS_LEN + 1
            }
        );
    }

    #[test]
    fn encoding_checks_the_values() {
        let s = schema();
        assert_eq!(
            s.encode_row(&[Value::Null]),
            Err(ColumnError::ValueCount {
                expected: 5,
                found: 1
            })
        );
        let mut row = full_row();
        row[1] = Value::Float64(1.0);
        assert_eq!(
            s.encode_row(&row),
            Err(ColumnError::TypeMismatch {
                column: "label".into(),
                expected: ColumnType::Int64,
                found: ColumnType::Float64
            })
        );
        let mut row = vec![Value::Null; 5];
        row[4] = Value::Bytes(vec![0; MAX_COLUMNS_LEN]);
        assert!(matches!(
            s.encode_row(&row),
            Err(ColumnError::RowTooLong { .. })
        ));
        row[4] = Value::Bytes(vec![0; MAX_COLUMNS_LEN - 5]);
        assert_eq!(s.encode_row(&row).unwrap().len(), MAX_COLUMNS_LEN);
    }

    #[test]
    fn hostile_rows_never_panic() {
        // A cheap deterministic fuzz: random bytes against a mixed schema.
        let s = schema();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 * 5) & 0xff) as u8)
                .collect();
            if let Ok(row) = s.decode_row(&bytes) {
                assert_eq!(s.encode_row(&row).unwrap(), bytes, "canonical");
            }
            let _ = ColumnSchema::decode(&bytes);
        }
    }
}
