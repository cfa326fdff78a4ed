//! JSONL: one JSON object per line; blank lines are skipped.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;

use hexz_format::columns::{ColumnSchema, ColumnType, Value};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::schema::RowBuilder;
use super::{Record, RecordError, RecordLocation, SchemaBuilder, open, text_data};
use crate::error::Result;
use crate::recipe::{DataField, RecordsPlan};

/// What a JSON value is, without keeping it (the scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    /// An integer beyond the int64 range, or a number with a fraction or exponent.
    Float,
    Str,
    Object,
    Array,
}

impl Kind {
    fn column_type(self) -> Option<ColumnType> {
        match self {
            Self::Bool => Some(ColumnType::Bool),
            Self::Int => Some(ColumnType::Int64),
            Self::Float => Some(ColumnType::Float64),
            Self::Str => Some(ColumnType::Utf8),
            Self::Null | Self::Object | Self::Array => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Int | Self::Float => "a number",
            Self::Str => "a string",
            Self::Object => "an object",
            Self::Array => "an array",
        }
    }
}

impl<'de> de::Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl<'de> Visitor<'de> for KindVisitor {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Kind, E> {
                Ok(Kind::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
                Ok(Kind::Bool)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
                Ok(Kind::Int)
            }
            fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
                Ok(if i64::try_from(v).is_ok() {
                    Kind::Int
                } else {
                    Kind::Float
                })
            }
            fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
                Ok(Kind::Float)
            }
            fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
                Ok(Kind::Str)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Kind::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Kind::Array)
            }
        }
        d.deserialize_any(KindVisitor)
    }
}

/// A top-level JSON value: an object's fields in file order, or what else it is.
enum Line<V> {
    Object(Vec<(String, V)>),
    Other(&'static str),
}

/// Deserializes a [`Line`] whose field values are `V`.
struct LineSeed<V>(std::marker::PhantomData<V>);

impl<'de, V: de::Deserialize<'de>> DeserializeSeed<'de> for LineSeed<V> {
    type Value = Line<V>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Line<V>, D::Error> {
        struct LineVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: de::Deserialize<'de>> Visitor<'de> for LineVisitor<V> {
            type Value = Line<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line<V>, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    fields.push((k, v));
                }
                Ok(Line::Object(fields))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Line<V>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Line::Other("an array"))
            }
            fn visit_unit<E>(self) -> Result<Line<V>, E> {
                Ok(Line::Other("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Line<V>, E> {
                Ok(Line::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Line<V>, E> {
                Ok(Line::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Line<V>, E> {
                Ok(Line::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Line<V>, E> {
                Ok(Line::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Line<V>, E> {
                Ok(Line::Other("a string"))
            }
        }
        d.deserialize_any(LineVisitor(std::marker::PhantomData))
    }
}

/// Parse one line; `Ok(None)` for a blank line.
fn parse<'a, V: de::Deserialize<'a>>(
    line: &'a [u8],
    at: &dyn Fn() -> RecordLocation,
) -> Result<Option<Vec<(String, V)>>, RecordError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed = LineSeed::<V>(std::marker::PhantomData)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(Line::Object(fields)) => Ok(Some(fields)),
        Ok(Line::Other(found)) => Err(RecordError::NotAnObject { at: at(), found }),
        Err(e) => {
            let text = e.to_string();
            let detail = match text.rfind(" at line ") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            Err(RecordError::BadJson {
                at: at(),
                column: e.column() as u64,
                detail,
            })
        }
    }
}

/// Calls `each(line_number, bytes)` for every line (without its `\n` or `\r\n`).
fn lines(path: &Path, mut each: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, open(path)?);
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|error| RecordError::Io {
                path: path.to_path_buf(),
                error,
            })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let mut line = buf.as_slice();
        if let Some(rest) = line.strip_suffix(b"\n") {
            line = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        each(number, line)?;
    }
}

fn location(path: &Path, line: u64, row: u64) -> RecordLocation {
    RecordLocation {
        path: path.to_path_buf(),
        line: Some(line),
        row,
    }
}

/// Check every line and add its fields to `builder`; returns the record count.
pub(super) fn scan(path: &Path, plan: &RecordsPlan, builder: &mut SchemaBuilder) -> Result<u64> {
    let mut rows = 0u64;
    let data_field = match &plan.data {
        DataField::Field(f) => Some(f.as_str()),
        DataField::Whole => None,
    };
    lines(path, |number, line| {
        let at = || location(path, number, rows);
        let Some(fields) = parse::<Kind>(line, &at)? else {
            return Ok(());
        };
        let mut has_data = data_field.is_none();
        let mut has_name = plan.name.is_none();
        for (key, kind) in &fields {
            if Some(key.as_str()) == data_field {
                check_data(*kind, key, &at)?;
                has_data = true;
            } else if Some(key) == plan.name.as_ref() {
                check_name(*kind, key, &at)?;
                has_name = true;
            } else {
                builder.observe(path, key, kind.column_type(), &at)?;
            }
        }
        if !has_data {
            return Err(missing("data", data_field.unwrap_or_default(), &at).into());
        }
        if !has_name {
            return Err(missing("name", plan.name.as_deref().unwrap_or_default(), &at).into());
        }
        rows += 1;
        Ok(())
    })?;
    Ok(rows)
}

fn missing(role: &'static str, field: &str, at: &dyn Fn() -> RecordLocation) -> RecordError {
    RecordError::MissingField {
        at: at(),
        role,
        field: field.to_owned(),
    }
}

fn check_data(kind: Kind, field: &str, at: &dyn Fn() -> RecordLocation) -> Result<(), RecordError> {
    match kind {
        Kind::Str | Kind::Object | Kind::Array => Ok(()),
        Kind::Null => Err(missing("data", field, at)),
        other => Err(RecordError::FieldType {
            at: at(),
            role: "data",
            field: field.to_owned(),
            found: other.describe().to_owned(),
            expected: "the data field must be a string (decoded per `encoding`), or an \
                       object or array (stored as JSON)",
        }),
    }
}

fn check_name(kind: Kind, field: &str, at: &dyn Fn() -> RecordLocation) -> Result<(), RecordError> {
    match kind {
        Kind::Str | Kind::Int => Ok(()),
        Kind::Null => Err(missing("name", field, at)),
        other => Err(RecordError::FieldType {
            at: at(),
            role: "name",
            field: field.to_owned(),
            found: other.describe().to_owned(),
            expected: "the name field must be a string or an integer",
        }),
    }
}

/// Read every record, in order, and hand it to `sink`.
pub(super) fn read(
    path: &Path,
    plan: &RecordsPlan,
    schema: Option<&ColumnSchema>,
    sink: &mut dyn FnMut(Record<'_>) -> Result<()>,
) -> Result<()> {
    let mut row = RowBuilder::new(schema);
    let mut data = Vec::new();
    let mut name = String::new();
    let mut rows = 0u64;
    lines(path, |number, line| {
        let at = || location(path, number, rows);
        let Some(fields) = parse::<serde_json::Value>(line, &at)? else {
            return Ok(());
        };
        row.clear();
        data.clear();
        name.clear();
        if plan.data == DataField::Whole {
            data.extend_from_slice(line);
        }
        for (key, value) in fields {
            if let DataField::Field(f) = &plan.data
                && *f == key
            {
                match value {
                    serde_json::Value::String(text) => text_data(&text, plan, f, &at, &mut data)?,
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        data.clear();
                        let _ = serde_json::to_writer(&mut data, &value);
                    }
                    other => {
                        check_data(kind_of(&other), f, &at)?;
                    }
                }
            } else if Some(&key) == plan.name.as_ref() {
                match value {
                    serde_json::Value::String(s) => name = s,
                    serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                        name = n.to_string();
                    }
                    other => check_name(kind_of(&other), &key, &at)?,
                }
            } else if let Some(i) = row.column(&key) {
                let v = match value {
                    serde_json::Value::Bool(b) => Value::Bool(b),
                    serde_json::Value::Number(n) => match n.as_i64() {
                        Some(i) => Value::Int64(i),
                        None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
                    },
                    serde_json::Value::String(s) => Value::Utf8(s),
                    _ => Value::Null,
                };
                row.set(i, v, &at)?;
            }
        }
        let at_dyn: &dyn Fn() -> RecordLocation = &at;
        sink(Record {
            at: at_dyn,
            name: plan.name.as_ref().map(|_| name.as_str()),
            data: &data,
            row: &row,
        })?;
        rows += 1;
        Ok(())
    })
}

fn kind_of(v: &serde_json::Value) -> Kind {
    match v {
        serde_json::Value::Null => Kind::Null,
        serde_json::Value::Bool(_) => Kind::Bool,
        serde_json::Value::Number(n) if n.is_i64() => Kind::Int,
        serde_json::Value::Number(_) => Kind::Float,
        serde_json::Value::String(_) => Kind::Str,
        serde_json::Value::Object(_) => Kind::Object,
        serde_json::Value::Array(_) => Kind::Array,
    }
}
