//! Typed user columns through the writer and the reader: schema section, rows,
//! nulls, verification, and archives whose columns are malformed.

use hexz_format::columns::{Column, ColumnSchema, ColumnType, Value};
use hexz_format::layout::SECTION_COLUMNS;
use hexz_format::{ArchiveWriter, EntryKind, EntryMeta, Error, NoCompression};
use std::sync::Arc;

use crate::common::{open, small_options};

fn schema() -> ColumnSchema {
    ColumnSchema::new(vec![
        Column::new("label", ColumnType::Int64),
        Column::new("score", ColumnType::Float64),
        Column::new("split", ColumnType::Utf8),
        Column::new("ok", ColumnType::Bool),
        Column::new("thumb", ColumnType::Bytes),
    ])
    .unwrap()
}

fn rows() -> Vec<Vec<Value>> {
    (0..300)
        .map(|i: i64| {
            vec![
                Value::Int64(i % 10),
                if i % 3 == 0 {
                    Value::Null
                } else {
                    Value::Float64(i as f64 / 4.0)
                },
                Value::Utf8(if i % 5 == 0 { "test" } else { "train" }.into()),
                Value::Bool(i % 2 == 0),
                if i % 7 == 0 {
                    Value::Bytes(vec![i as u8; 3])
                } else {
                    Value::Null
                },
            ]
        })
        .collect()
}

fn meta(columns: Vec<u8>) -> EntryMeta {
    EntryMeta {
        mode: 0o100644,
        columns,
        ..EntryMeta::default()
    }
}

/// A dir, then 300 records with columns, then a file without.
fn build_with_columns() -> Vec<u8> {
    let s = schema();
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.set_columns(s.clone()).unwrap();
    assert_eq!(w.columns(), Some(&s));
    w.add_dir("records", meta(Vec::new())).unwrap();
    for (i, row) in rows().iter().enumerate() {
        let bytes = s.encode_row(row).unwrap();
        w.add_record(
            &format!("records/{i:08}"),
            format!("record {i}").as_bytes(),
            meta(bytes),
        )
        .unwrap();
    }
    w.add_bytes("README", b"no columns here", meta(Vec::new()))
        .unwrap();
    w.finish().unwrap().0
}

#[test]
fn rows_round_trip_with_the_schema() {
    let bytes = build_with_columns();
    assert_eq!(bytes, build_with_columns(), "deterministic");
    let archive = open(&bytes).unwrap();
    assert_eq!(archive.columns().unwrap(), Some(schema()));
    let section = archive.section(SECTION_COLUMNS).unwrap().unwrap();
    assert_eq!(section, schema().encode());
    assert!(
        archive
            .directory()
            .sections
            .iter()
            .all(|s| s.kind != SECTION_COLUMNS || s.flags == 0),
        "the schema section is not critical"
    );
    let want = rows();
    let mut records = 0;
    for entry in archive.entries() {
        let entry = entry.unwrap();
        let values = archive.entry_columns(&entry).unwrap().unwrap();
        match entry.kind {
            EntryKind::Record => {
                let i: usize = entry.name["records/".len()..].parse().unwrap();
                assert_eq!(values, want[i], "{}", entry.name);
                assert_eq!(
                    archive.read_entry(&entry).unwrap(),
                    format!("record {i}").as_bytes()
                );
                records += 1;
            }
            _ => {
                assert!(entry.columns.is_empty());
                assert!(values.iter().all(Value::is_null), "{}", entry.name);
            }
        }
    }
    assert_eq!(records, 300);
    assert_eq!(archive.verify().unwrap().entries, 302);
}

#[test]
fn archives_without_a_schema_keep_columns_opaque() {
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.add_record("r", b"x", meta(b"\xffanything".to_vec()))
        .unwrap();
    let bytes = w.finish().unwrap().0;
    let archive = open(&bytes).unwrap();
    assert_eq!(archive.columns().unwrap(), None);
    let entry = archive.entry("r").unwrap();
    assert_eq!(entry.columns, b"\xffanything");
    assert_eq!(archive.entry_columns(&entry).unwrap(), None);
    archive.verify().unwrap();
}

#[test]
fn the_writer_checks_schema_and_rows() {
    let s = schema();
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.set_columns(s.clone()).unwrap();
    assert!(matches!(
        w.set_columns(s.clone()),
        Err(Error::InvalidSetting {
            setting: "columns",
            ..
        })
    ));
    // A row that is not one of the schema's is refused before its bytes are taken.
    let e = w
        .add_record("bad", b"payload", meta(vec![0b1000_0000]))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidColumns { context, .. } if context == "entry `bad`"),
        "{e:?}"
    );
    assert!(!e.is_corruption());
    assert_eq!(w.logical_size(), 0);
    w.add_record("good", b"payload", meta(s.encode_row(&rows()[1]).unwrap()))
        .unwrap();
    let bytes = w.finish().unwrap().0;
    let archive = open(&bytes).unwrap();
    assert_eq!(archive.entry_count(), 1);
    archive.verify().unwrap();

    // The schema comes before the entries.
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.add_bytes("a", b"a", meta(Vec::new())).unwrap();
    assert!(w.set_columns(s).is_err());
}

#[test]
fn a_critical_schema_section_is_understood() {
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.add_section(SECTION_COLUMNS, true, schema().encode())
        .unwrap();
    w.add_record("r", b"x", meta(schema().encode_row(&rows()[2]).unwrap()))
        .unwrap();
    let bytes = w.finish().unwrap().0;
    let archive = open(&bytes).unwrap();
    assert_eq!(archive.columns().unwrap(), Some(schema()));
    archive.verify().unwrap();
}

/// Sections added by hand bypass the writer's checks: what a hostile or buggy
/// writer could produce.
fn crafted(schema_blob: &[u8], columns: &[u8]) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), small_options(Arc::new(NoCompression))).unwrap();
    w.add_section(SECTION_COLUMNS, false, schema_blob.to_vec())
        .unwrap();
    w.add_record("r", b"x", meta(columns.to_vec())).unwrap();
    w.finish().unwrap().0
}

#[test]
fn a_malformed_schema_is_reported_as_corruption() {
    // Opening does not read the section; using it does.
    let bytes = crafted(&[0; 8], &[]);
    let archive = open(&bytes).unwrap();
    let e = archive.columns().unwrap_err();
    assert!(
        matches!(&e, Error::CorruptColumns { context, .. } if context.starts_with("column schema")),
        "{e:?}"
    );
    assert!(e.is_corruption());
    let entry = archive.entry("r").unwrap();
    assert!(archive.entry_columns(&entry).unwrap_err().is_corruption());
    assert!(archive.verify().unwrap_err().is_corruption());
}

#[test]
fn a_row_that_does_not_fit_the_schema_fails_verification() {
    // bool column, byte 2.
    let s = ColumnSchema::new(vec![Column::new("ok", ColumnType::Bool)]).unwrap();
    let bytes = crafted(&s.encode(), &[1, 2]);
    let archive = open(&bytes).unwrap();
    let entry = archive.entry("r").unwrap();
    let e = archive.entry_columns(&entry).unwrap_err();
    assert!(
        matches!(&e, Error::CorruptColumns { context, .. } if context == "columns of entry `r`"),
        "{e:?}"
    );
    assert!(e.to_string().contains("neither 0 nor 1"), "{e}");
    let e = archive.verify().unwrap_err();
    assert!(matches!(e, Error::CorruptColumns { .. }), "{e:?}");
    // The same bytes with a good row verify.
    let archive = open(&crafted(&s.encode(), &[1, 1])).unwrap();
    archive.verify().unwrap();
    assert_eq!(
        archive.entry_columns(&archive.entry("r").unwrap()).unwrap(),
        Some(vec![Value::Bool(true)])
    );
}
