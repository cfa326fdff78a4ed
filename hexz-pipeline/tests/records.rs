//! Record inputs (`records:`): round trips per format, schema merging, and the
//! errors for malformed record files and record options.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, DictionaryArray, Float32Array, Int64Array, LargeStringArray,
    RecordBatch, UInt64Array, types::Int32Type,
};
use hexz_format::columns::{Column, ColumnType, Value};
use hexz_format::{Archive, EntryKind, ReadOptions};
use hexz_pipeline::recipe::parse_recipe;
use hexz_pipeline::{BuildOptions, Registry, build, open_archive_path};

/// Build `recipe` (written in `dir`) and open the archive.
fn build_in(dir: &Path, recipe: &str) -> Result<Archive, String> {
    let path = dir.join("recipe.yaml");
    std::fs::write(&path, recipe).unwrap();
    let plan = parse_recipe(recipe, &path, &|_| None).map_err(|e| e.to_string())?;
    let options = BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    };
    build(&plan, &Registry::default(), &options).map_err(|e| e.to_string())?;
    Ok(open_archive_path(&plan.output, &Registry::default(), ReadOptions::default()).unwrap())
}

fn records(a: &Archive) -> Vec<(String, Vec<u8>, Vec<Value>)> {
    a.entries()
        .map(Result::unwrap)
        .filter(|e| e.kind == EntryKind::Record)
        .map(|e| {
            let values = a.entry_columns(&e).unwrap().unwrap();
            (e.name.clone(), a.read_entry(&e).unwrap(), values)
        })
        .collect()
}

fn columns(a: &Archive) -> Vec<Column> {
    a.columns().unwrap().unwrap().columns().to_vec()
}

fn s(v: &str) -> Value {
    Value::Utf8(v.into())
}

#[test]
fn jsonl_and_csv_share_one_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        concat!(
            r#"{"id":"x","img":"aGVsbG8=","label":1,"tags":["n"],"note":null}"#,
            "\n\n",
            r#"{"id":7,"img":{"k":[1,2]},"label":2.5,"ok":true}"#,
            "\r\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.csv"),
        "text,label,when,empty\n\"hi, there\",3,007,\nbye,,x,\n",
    )
    .unwrap();
    let a = build_in(
        dir.path(),
        "inputs:\n  - path: a.jsonl\n    records: { data: img, name: id }\n\
         \x20 - path: b.csv\n    records: { data: text, encoding: utf8, prefix: csv/ }\n\
         output: out.hxz\n",
    )
    .unwrap();
    // label: int64 (JSONL line 1) + float64 (line 2) + int64 (CSV) → float64;
    // `note` only null and `empty` only empty: no column; `when` text.
    assert_eq!(
        columns(&a),
        [
            Column::new("label", ColumnType::Float64),
            Column::new("ok", ColumnType::Bool),
            Column::new("when", ColumnType::Utf8),
        ]
    );
    let got = records(&a);
    let want = vec![
        (
            "x".into(),
            b"hello".to_vec(),
            vec![Value::Float64(1.0), Value::Null, Value::Null],
        ),
        (
            "7".into(),
            br#"{"k":[1,2]}"#.to_vec(),
            vec![Value::Float64(2.5), Value::Bool(true), Value::Null],
        ),
        (
            "csv/00000000".into(),
            b"hi, there".to_vec(),
            vec![Value::Float64(3.0), Value::Null, s("007")],
        ),
        (
            "csv/00000001".into(),
            b"bye".to_vec(),
            vec![Value::Null, Value::Null, s("x")],
        ),
    ];
    assert_eq!(got, want);
    a.verify().unwrap();
    let prov: serde_json::Value = serde_json::from_slice(
        &a.section(hexz_format::layout::SECTION_PROVENANCE)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(prov["inputs"]["records"], 4);
    assert_eq!(prov["recipe"]["inputs"][1]["records"]["encoding"], "utf8");
}

#[test]
fn whole_records_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.jsonl"),
        "{\"b\":1, \"a\":\"z\"}\n{\"a\":\"y\"}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("r.csv"), "a,b\nz,1\ny,\n").unwrap();
    let recipe = "inputs:\n  - path: r.jsonl\n    records: { data: null, prefix: j/ }\n\
                  \x20 - path: r.csv\n    records: { data: ~, prefix: c/ }\noutput: out.hxz\n";
    let a = build_in(dir.path(), recipe).unwrap();
    let got = records(&a);
    // JSONL: the line as written; CSV: the typed record as JSON, header order.
    assert_eq!(got[0].1, b"{\"b\":1, \"a\":\"z\"}");
    assert_eq!(got[2].1, br#"{"a":"z","b":1}"#);
    assert_eq!(got[3].1, br#"{"a":"y","b":null}"#);
    assert_eq!(got[1].2, vec![Value::Null, s("y")]);
    let first = std::fs::read(dir.path().join("out.hxz")).unwrap();
    build_in(dir.path(), recipe).unwrap();
    assert_eq!(first, std::fs::read(dir.path().join("out.hxz")).unwrap());
}

fn batch() -> RecordBatch {
    let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
    RecordBatch::try_from_iter(vec![
        (
            "n",
            Arc::new(Int64Array::from(vec![10, 11, 12])) as ArrayRef,
        ),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![&b"\x00\x01"[..], b"", b"\xff"])),
        ),
        (
            "big",
            Arc::new(UInt64Array::from(vec![Some(1), None, Some(3)])),
        ),
        ("f", Arc::new(Float32Array::from(vec![0.5, 1.5, -2.0]))),
        ("t", Arc::new(LargeStringArray::from(vec!["x", "y", "z"]))),
        ("cat", Arc::new(dict)),
    ])
    .unwrap()
}

fn check_columnar(a: &Archive) {
    assert_eq!(
        columns(a),
        [
            Column::new("big", ColumnType::Int64),
            Column::new("f", ColumnType::Float64),
            Column::new("t", ColumnType::Utf8),
            Column::new("cat", ColumnType::Utf8),
        ]
    );
    let got = records(a);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "10");
    assert_eq!(got[0].1, b"\x00\x01");
    assert_eq!(got[1].1, b"");
    assert_eq!(
        got[1].2,
        vec![Value::Null, Value::Float64(1.5), s("y"), s("b")]
    );
    assert_eq!(got[2].2[0], Value::Int64(3));
    a.verify().unwrap();
}

#[test]
fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("t.parquet")).unwrap();
    let b = batch();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let a = build_in(
        dir.path(),
        "inputs:\n  - path: t.parquet\n    records: { data: blob, name: n }\noutput: out.hxz\n",
    )
    .unwrap();
    check_columnar(&a);
}

#[test]
fn arrow_ipc_file_and_stream_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let b = batch();
    let file = std::fs::File::create(dir.path().join("t.arrow")).unwrap();
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, &b.schema()).unwrap();
    w.write(&b).unwrap();
    w.finish().unwrap();
    let file = std::fs::File::create(dir.path().join("s.arrows")).unwrap();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(file, &b.schema()).unwrap();
    w.write(&b).unwrap();
    w.finish().unwrap();
    for name in ["t.arrow", "s.arrows"] {
        let a = build_in(
            dir.path(),
            &format!("inputs:\n  - path: {name}\n    records: {{ data: blob, name: n }}\noutput: out.hxz\n"),
        )
        .unwrap();
        check_columnar(&a);
    }
}

/// Build a one-input recipe over `file` holding `content`; return the error.
fn error(file: &str, content: &str, records: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), content).unwrap();
    let recipe = format!("inputs:\n  - path: {file}\n    records: {records}\noutput: out.hxz\n");
    let e = build_in(dir.path(), &recipe).unwrap_err();
    assert!(!dir.path().join("out.hxz").exists(), "{e}");
    e
}

#[test]
fn malformed_jsonl() {
    let e = error(
        "d.jsonl",
        "{\"x\":\"aA==\"}\n\n{\"x\": tru}\n",
        "{ data: x }",
    );
    assert!(
        e.contains("d.jsonl:3:") && e.contains("invalid JSON"),
        "{e}"
    );
    assert!(e.contains("each line must hold one JSON object"), "{e}");
    let e = error("d.jsonl", "[1]\n", "{ data: x }");
    assert!(
        e.contains("d.jsonl:1: the line is an array, not a JSON object"),
        "{e}"
    );
    let e = error("d.jsonl", "{\"x\":\"aA==\"}\n{\"y\":1}\n", "{ data: x }");
    assert!(e.contains("d.jsonl:2: the record has no `x`"), "{e}");
    assert!(e.contains("`data: null`"), "{e}");
    let e = error("d.jsonl", "{\"x\":5}\n", "{ data: x }");
    assert!(
        e.contains("d.jsonl:1: `x` (named by `records.data`) is a number"),
        "{e}"
    );
    let e = error(
        "d.jsonl",
        "{\"x\":\"aA\",\"id\":[1]}\n",
        "{ data: x, name: id }",
    );
    assert!(e.contains("is an array; the name field must be"), "{e}");
    let e = error("d.jsonl", "{\"x\":\"not base64!\"}\n", "{ data: x }");
    assert!(e.contains("d.jsonl:1: `x` is not valid base64"), "{e}");
    assert!(e.contains("encoding: utf8"), "{e}");
    // Types: int64 then utf8 in one field is a conflict naming both lines.
    let e = error(
        "d.jsonl",
        "{\"x\":\"\",\"l\":1}\n{\"x\":\"\",\"l\":2.5}\n{\"x\":\"\",\"l\":\"a\"}\n",
        "{ data: x }",
    );
    assert!(
        e.contains("d.jsonl:3: field `l` is utf8 here but float64 at") && e.contains("d.jsonl:1;"),
        "{e}"
    );
    let e = error(
        "d.jsonl",
        "{\"x\":\"\",\"a/b\":1}\n{\"x\":\"\",\"../n\":1}\n",
        "{ data: x, name: n }",
    );
    assert!(e.contains("the record has no `n`"), "{e}");
    let e = error(
        "d.jsonl",
        "{\"x\":\"\",\"n\":\"../up\"}\n",
        "{ data: x, name: n }",
    );
    assert!(
        e.contains("d.jsonl:1: entry name \"../up\" is not valid"),
        "{e}"
    );
}

#[test]
fn malformed_csv() {
    let e = error("d.csv", "a,b\n1,2\n", "{ data: img }");
    assert!(
        e.contains("no field `img` (named by `records.data`); the file has: a, b"),
        "{e}"
    );
    let e = error("d.csv", "a,b\n1,2\n3\n", "{ data: a }");
    assert!(e.contains("d.csv:3: invalid CSV"), "{e}");
    let e = error("d.csv", "a,b\naGk=,2\n,3\n", "{ data: a }");
    assert!(e.contains("d.csv:3: the record has no `a`"), "{e}");
}

#[test]
fn malformed_columnar() {
    let e = error("d.parquet", "not parquet at all", "{ data: a }");
    assert!(e.contains("d.parquet: cannot read parquet file"), "{e}");
    let e = error("d.arrow", "not arrow", "{ data: a }");
    assert!(e.contains("d.arrow: cannot read arrow file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let b = batch();
    let file = std::fs::File::create(dir.path().join("t.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let e = build_in(
        dir.path(),
        "inputs:\n  - path: t.parquet\n    records: { data: \"n\" }\noutput: out.hxz\n",
    )
    .unwrap_err();
    assert!(
        e.contains("`n` (named by `records.data`) is of Arrow type Int64"),
        "{e}"
    );
    let e = build_in(
        dir.path(),
        "inputs:\n  - path: t.parquet\n    records: { data: blob, name: f }\noutput: out.hxz\n",
    )
    .unwrap_err();
    assert!(
        e.contains("the name field must be a string or integer column"),
        "{e}"
    );
}

#[test]
fn record_options_are_checked_in_the_recipe() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.jsonl"), "{}\n").unwrap();
    std::fs::write(dir.path().join("d.txt"), "{}\n").unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let check = |records: &str, path: &str, want: &[&str]| {
        let recipe =
            format!("inputs:\n  - path: {path}\n    records: {records}\noutput: out.hxz\n");
        let e = build_in(dir.path(), &recipe).unwrap_err();
        for w in want {
            assert!(e.contains(w), "{recipe}\n{e}");
        }
    };
    check(
        "{ data: x, format: jsnl }",
        "d.jsonl",
        &["recipe.yaml:3:", "did you mean `jsonl`"],
    );
    check(
        "{ data: x, encoding: hex }",
        "d.jsonl",
        &["write one of `base64`, `utf8`"],
    );
    check(
        "{ data: x }",
        "d.txt",
        &["recipe.yaml:2:11", "add `format: jsonl`"],
    );
    check("{ data: x, format: jsonl }", "folder", &["is a directory"]);
    check(
        "{ name: id }",
        "d.jsonl",
        &["missing required field `data`", "data: null"],
    );
    check(
        "{ data: x, nme: id }",
        "d.jsonl",
        &["unknown field `nme`", "did you mean `name`"],
    );
    check(
        "{ data: x, name: x }",
        "d.jsonl",
        &["both the data field and the name field"],
    );
    check(
        "{ data: x, prefix: ../up }",
        "d.jsonl",
        &["cannot start entry names"],
    );
    check(
        "{ data: '' }",
        "d.jsonl",
        &["`inputs[0].records.data` is empty"],
    );
}
