//! CSV: a header line naming the fields, then one record per row (RFC 4180
//! quoting; every row has as many fields as the header).

use std::io::BufReader;
use std::path::Path;

use hexz_format::columns::{ColumnSchema, ColumnType, Value};

use super::schema::{RowBuilder, widen};
use super::{
    Record, RecordError, RecordLocation, SchemaBuilder, json_object, open, text_data, value_json,
};
use crate::error::Result;
use crate::recipe::{DataField, RecordsPlan};

/// The type a non-empty cell's text reads as.
fn cell_type(text: &str) -> ColumnType {
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        ColumnType::Bool
    } else if is_integer(text) && text.parse::<i64>().is_ok() {
        ColumnType::Int64
    } else if is_decimal(text) {
        ColumnType::Float64
    } else {
        ColumnType::Utf8
    }
}

/// `-?(0|[1-9][0-9]*)`: no `+`, no leading zeros, so `007` and `+1` stay text.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    match digits.as_bytes() {
        [] => false,
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// An integer part as in [`is_integer`], then an optional `.digits` and an
/// optional exponent; at least one of them (`1.5`, `-0.25`, `1e9`, `2.5E-3`).
fn is_decimal(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    is_integer(int) && frac_ok && exp_ok && (frac.is_some() || exponent.is_some())
}

/// A column's type over all its cells: equal types stay, int64 and float64
/// widen to float64, any other mix is utf8 (CSV has no types of its own).
fn merge_text(a: ColumnType, b: ColumnType) -> ColumnType {
    widen(a, b).unwrap_or(ColumnType::Utf8)
}

/// Convert a cell to a column of type `ty` (the scan guarantees it reads so).
fn cell_value(text: &str, ty: ColumnType) -> Option<Value> {
    if text.is_empty() {
        return Some(Value::Null);
    }
    Some(match ty {
        ColumnType::Bool => Value::Bool(text.eq_ignore_ascii_case("true")),
        ColumnType::Int64 => Value::Int64(text.parse().ok()?),
        ColumnType::Float64 => Value::Float64(text.parse().ok()?),
        ColumnType::Utf8 => Value::Utf8(text.to_owned()),
        _ => return None,
    })
}

/// The header and the positions of the data and name fields.
struct Layout {
    header: Vec<String>,
    data: Option<usize>,
    name: Option<usize>,
}

fn reader(path: &Path) -> Result<csv::Reader<BufReader<std::fs::File>>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 20, open(path)?)))
}

fn csv_error(path: &Path, e: &csv::Error, row: u64) -> RecordError {
    if let csv::ErrorKind::Io(io) = e.kind() {
        return RecordError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(io.kind(), io.to_string()),
        };
    }
    RecordError::BadCsv {
        at: RecordLocation {
            path: path.to_path_buf(),
            line: e.position().map(csv::Position::line),
            row,
        },
        detail: e.to_string(),
    }
}

fn layout(
    path: &Path,
    plan: &RecordsPlan,
    reader: &mut csv::Reader<BufReader<std::fs::File>>,
) -> Result<Layout> {
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(path, &e, 0))?
        .iter()
        .map(str::to_owned)
        .collect();
    let find = |role: &'static str, field: &str| {
        header
            .iter()
            .position(|h| h == field)
            .ok_or_else(|| RecordError::NoSuchField {
                path: path.to_path_buf(),
                role,
                field: field.to_owned(),
                known: header.clone(),
            })
    };
    let data = match &plan.data {
        DataField::Field(f) => Some(find("data", f)?),
        DataField::Whole => None,
    };
    let name = plan.name.as_deref().map(|n| find("name", n)).transpose()?;
    Ok(Layout { header, data, name })
}

fn location(path: &Path, record: &csv::StringRecord, row: u64) -> RecordLocation {
    RecordLocation {
        path: path.to_path_buf(),
        line: record.position().map(csv::Position::line),
        row,
    }
}

/// Type every column and add it to `builder`; returns the record count.
pub(super) fn scan(path: &Path, plan: &RecordsPlan, builder: &mut SchemaBuilder) -> Result<u64> {
    let mut reader = reader(path)?;
    let layout = layout(path, plan, &mut reader)?;
    let mut types: Vec<Option<ColumnType>> = vec![None; layout.header.len()];
    // Where each column's first non-empty cell is, for conflict messages.
    let mut first: Vec<Option<RecordLocation>> = vec![None; layout.header.len()];
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, &e, rows).into()),
        }
        let at = || location(path, &record, rows);
        for (i, cell) in record.iter().enumerate() {
            if Some(i) == layout.data || Some(i) == layout.name {
                if cell.is_empty() {
                    let (role, field) = if Some(i) == layout.data {
                        ("data", &layout.header[i])
                    } else {
                        ("name", &layout.header[i])
                    };
                    return Err(RecordError::MissingField {
                        at: at(),
                        role,
                        field: field.clone(),
                    }
                    .into());
                }
                continue;
            }
            if cell.is_empty() {
                continue;
            }
            let t = cell_type(cell);
            types[i] = Some(match types[i] {
                None => {
                    first[i] = Some(at());
                    t
                }
                Some(have) => merge_text(have, t),
            });
        }
        rows += 1;
    }
    let file_at = RecordLocation {
        path: path.to_path_buf(),
        line: Some(1),
        row: 0,
    };
    for (i, name) in layout.header.iter().enumerate() {
        if Some(i) == layout.data || Some(i) == layout.name {
            continue;
        }
        let at = || first[i].clone().unwrap_or_else(|| file_at.clone());
        builder.observe(path, name, types[i], &at)?;
    }
    Ok(rows)
}

/// Read every record, in order, and hand it to `sink`.
pub(super) fn read(
    path: &Path,
    plan: &RecordsPlan,
    schema: Option<&ColumnSchema>,
    sink: &mut dyn FnMut(Record<'_>) -> Result<()>,
) -> Result<()> {
    let mut reader = reader(path)?;
    let layout = layout(path, plan, &mut reader)?;
    let mut row = RowBuilder::new(schema);
    let columns: Vec<Option<usize>> = layout.header.iter().map(|h| row.column(h)).collect();
    let mut record = csv::StringRecord::new();
    let mut data = Vec::new();
    let mut rows = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(csv_error(path, &e, rows).into()),
        }
        let at = || location(path, &record, rows);
        row.clear();
        for (i, cell) in record.iter().enumerate() {
            if Some(i) == layout.data || Some(i) == layout.name {
                continue;
            }
            let Some(c) = columns[i] else { continue };
            let Some(ty) = row.column_type(c) else {
                continue;
            };
            let value = cell_value(cell, ty).ok_or_else(|| RecordError::BadValue {
                at: at(),
                column: layout.header[i].clone(),
                detail: format!("`{cell}` does not read as {ty}"),
            })?;
            row.set(c, value, &at)?;
        }
        match layout.data {
            Some(d) => text_data(&record[d], plan, &layout.header[d], &at, &mut data)?,
            None => json_object(
                layout
                    .header
                    .iter()
                    .zip(record.iter())
                    .enumerate()
                    .map(|(i, (h, cell))| {
                        let value = match columns[i].and_then(|c| row.column_type(c)) {
                            Some(ty) => cell_value(cell, ty).unwrap_or(Value::Null),
                            None if cell.is_empty() => Value::Null,
                            None => Value::Utf8(cell.to_owned()),
                        };
                        (h.as_str(), value_json(&value))
                    }),
                &mut data,
            ),
        }
        let at_dyn: &dyn Fn() -> RecordLocation = &at;
        sink(Record {
            at: at_dyn,
            name: layout.name.map(|n| &record[n]),
            data: &data,
            row: &row,
        })?;
        rows += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_the_narrowest_type() {
        for (text, ty) in [
            ("true", ColumnType::Bool),
            ("FALSE", ColumnType::Bool),
            ("0", ColumnType::Int64),
            ("-12", ColumnType::Int64),
            ("9223372036854775807", ColumnType::Int64),
            ("9223372036854775808", ColumnType::Utf8),
            ("007", ColumnType::Utf8),
            ("+1", ColumnType::Utf8),
            ("1.5", ColumnType::Float64),
            ("-0.25", ColumnType::Float64),
            ("1e9", ColumnType::Float64),
            ("2.5E-3", ColumnType::Float64),
            ("1.", ColumnType::Utf8),
            (".5", ColumnType::Utf8),
            ("nan", ColumnType::Utf8),
            ("inf", ColumnType::Utf8),
            ("cat", ColumnType::Utf8),
        ] {
            assert_eq!(cell_type(text), ty, "{text}");
        }
        assert_eq!(
            merge_text(ColumnType::Int64, ColumnType::Float64),
            ColumnType::Float64
        );
        assert_eq!(
            merge_text(ColumnType::Bool, ColumnType::Int64),
            ColumnType::Utf8
        );
    }
}
