//! Checks a record input of a bundled recipe against its source file, read here
//! independently of the pipeline's readers: serde_json for JSONL, the csv crate
//! for CSV, parquet's row API (not arrow) for Parquet; Arrow IPC files are
//! checked for names, counts and self-consistency of `data: null` bytes.

use std::collections::BTreeMap;

use base64::Engine;
use hexz_format::columns::{ColumnType, Value};
use hexz_format::{Archive, EntryKind};
use hexz_pipeline::recipe::{DataEncoding, DataField, InputPlan, RecordFormat, RecordsPlan};
use serde_json::Value as Json;

/// What one record should have become.
struct Expected {
    name: String,
    bytes: Option<Vec<u8>>,
    /// Column values as JSON, by column name (absent = null).
    columns: BTreeMap<String, Json>,
}

pub fn check_input(archive: &Archive, input: &InputPlan) {
    let plan = input.records.as_ref().unwrap();
    let expected = match plan.format {
        RecordFormat::Jsonl => jsonl(input, plan),
        RecordFormat::Csv => csv(input, plan, archive),
        RecordFormat::Parquet => parquet(input, plan),
        RecordFormat::Arrow => arrow_names(input, plan),
    };
    let schema = archive
        .columns()
        .unwrap()
        .expect("record inputs with columns");
    let records: Vec<_> = archive
        .entries()
        .map(Result::unwrap)
        .filter(|e| e.kind == EntryKind::Record && e.name.starts_with(&plan.prefix))
        .collect();
    assert_eq!(
        records.len(),
        expected.len(),
        "{}: record count",
        input.written
    );
    for (entry, want) in records.iter().zip(&expected) {
        let ctx = format!("{} {}", input.written, entry.name);
        assert_eq!(entry.name, want.name, "{ctx}: name");
        let bytes = archive.read_entry(entry).unwrap();
        if let Some(b) = &want.bytes {
            assert_eq!(&bytes, b, "{ctx}: bytes");
        }
        let values = archive.entry_columns(entry).unwrap().unwrap();
        let got: BTreeMap<String, Json> = schema
            .columns()
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_null())
            .map(|(c, v)| (c.name.clone(), json(&v)))
            .collect();
        if plan.format == RecordFormat::Arrow {
            // `data: null`: the bytes are the record's columns as JSON.
            if plan.data == DataField::Whole {
                let whole: BTreeMap<String, Json> = serde_json::from_slice(&bytes).unwrap();
                let whole: BTreeMap<String, Json> =
                    whole.into_iter().filter(|(_, v)| !v.is_null()).collect();
                same_columns(&got, &whole, &format!("{ctx}: columns vs data"));
            }
            continue;
        }
        same_columns(&got, &want.columns, &ctx);
    }
}

/// Equal maps, floats within a relative 1e-6 (float32 sources, JSON text).
fn same_columns(got: &BTreeMap<String, Json>, want: &BTreeMap<String, Json>, ctx: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{ctx}: {got:?} vs {want:?}"
    );
    for (name, want_value) in want {
        let got_value = &got[name];
        match (got_value.as_f64(), want_value.as_f64()) {
            (Some(g), Some(w)) if got_value.is_f64() || want_value.is_f64() => {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{ctx}: {name} {g} vs {w}"
                );
            }
            _ => assert_eq!(got_value, want_value, "{ctx}: column {name}"),
        }
    }
}

fn json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => Json::from(*b),
        Value::Int64(n) => Json::from(*n),
        Value::Float64(f) => Json::from(*f),
        Value::Utf8(s) => Json::from(s.as_str()),
        Value::Bytes(b) => Json::from(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => Json::Null,
    }
}

fn decode(text: &str, plan: &RecordsPlan) -> Vec<u8> {
    match plan.encoding {
        DataEncoding::Utf8 => text.as_bytes().to_vec(),
        DataEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    }
}

fn entry_name(plan: &RecordsPlan, name: Option<String>, index: usize) -> String {
    format!(
        "{}{}",
        plan.prefix,
        name.unwrap_or_else(|| format!("{index:08}"))
    )
}

fn field_name(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn jsonl(input: &InputPlan, plan: &RecordsPlan) -> Vec<Expected> {
    let text = std::fs::read_to_string(&input.path).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let obj: serde_json::Map<String, Json> = serde_json::from_str(line).unwrap();
            let bytes = match &plan.data {
                DataField::Field(f) => decode(obj[f].as_str().unwrap(), plan),
                DataField::Whole => line.as_bytes().to_vec(),
            };
            let name = plan.name.as_ref().map(|n| field_name(&obj[n]));
            let columns = obj
                .iter()
                .filter(|(k, v)| {
                    Some(*k) != plan.name.as_ref()
                        && DataField::Field((*k).clone()) != plan.data
                        && !v.is_null()
                        && !v.is_object()
                        && !v.is_array()
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Expected {
                name: entry_name(plan, name, i),
                bytes: Some(bytes),
                columns,
            }
        })
        .collect()
}

fn csv(input: &InputPlan, plan: &RecordsPlan, archive: &Archive) -> Vec<Expected> {
    let schema = archive.columns().unwrap().unwrap();
    let mut reader = csv::Reader::from_path(&input.path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.unwrap();
            let cell = |f: &str| r[header.iter().position(|h| h == f).unwrap()].to_owned();
            let bytes = match &plan.data {
                DataField::Field(f) => Some(decode(&cell(f), plan)),
                _ => None,
            };
            let name = plan.name.as_deref().map(cell);
            let columns = header
                .iter()
                .zip(r.iter())
                .filter(|(h, c)| {
                    !c.is_empty()
                        && Some(*h) != plan.name.as_ref()
                        && DataField::Field((*h).clone()) != plan.data
                })
                .map(|(h, c)| {
                    let ty = schema.columns()[schema.index_of(h).unwrap()].ty;
                    let v = match ty {
                        ColumnType::Bool => Json::from(c.eq_ignore_ascii_case("true")),
                        ColumnType::Int64 => Json::from(c.parse::<i64>().unwrap()),
                        ColumnType::Float64 => Json::from(c.parse::<f64>().unwrap()),
                        _ => Json::from(c),
                    };
                    (h.clone(), v)
                })
                .collect();
            Expected {
                name: entry_name(plan, name, i),
                bytes,
                columns,
            }
        })
        .collect()
}

fn parquet(input: &InputPlan, plan: &RecordsPlan) -> Vec<Expected> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(&input.path).unwrap()).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .enumerate()
        .map(|(i, row)| {
            let obj: serde_json::Map<String, Json> = row
                .unwrap()
                .get_column_iter()
                .map(|(k, f)| (k.clone(), field_json(f)))
                .collect();
            let bytes = match &plan.data {
                // Binary columns come as base64 from the row API.
                DataField::Field(f) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(obj[f].as_str().unwrap())
                        .unwrap(),
                ),
                _ => None,
            };
            let name = plan.name.as_ref().map(|n| field_name(&obj[n]));
            let columns = obj
                .into_iter()
                .filter(|(k, v)| {
                    Some(k) != plan.name.as_ref()
                        && DataField::Field(k.clone()) != plan.data
                        && !v.is_null()
                })
                .collect();
            Expected {
                name: entry_name(plan, name, i),
                bytes,
                columns,
            }
        })
        .collect()
}

/// Parquet's own value model (no arrow involved) as JSON; bytes as base64,
/// types that are not columns as null.
fn field_json(f: &parquet::record::Field) -> Json {
    use parquet::record::Field as F;
    match f {
        F::Bool(b) => Json::from(*b),
        F::Byte(n) => Json::from(*n),
        F::Short(n) => Json::from(*n),
        F::Int(n) => Json::from(*n),
        F::Long(n) => Json::from(*n),
        F::UByte(n) => Json::from(*n),
        F::UShort(n) => Json::from(*n),
        F::UInt(n) => Json::from(*n),
        F::ULong(n) => Json::from(*n),
        F::Float(x) => Json::from(f64::from(*x)),
        F::Double(x) => Json::from(*x),
        F::Str(s) => Json::from(s.as_str()),
        F::Bytes(b) => Json::from(base64::engine::general_purpose::STANDARD.encode(b.data())),
        _ => Json::Null,
    }
}

fn arrow_names(input: &InputPlan, plan: &RecordsPlan) -> Vec<Expected> {
    use arrow_array::cast::AsArray;
    let file = std::fs::File::open(&input.path).unwrap();
    let reader = arrow_ipc::reader::FileReader::try_new(file, None).unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let names = plan
            .name
            .as_ref()
            .map(|n| batch.column_by_name(n).unwrap().as_string::<i32>().clone());
        for r in 0..batch.num_rows() {
            let name = names.as_ref().map(|a| a.value(r).to_owned());
            out.push(Expected {
                name: entry_name(plan, name, out.len()),
                bytes: None,
                columns: BTreeMap::new(),
            });
        }
    }
    out
}
