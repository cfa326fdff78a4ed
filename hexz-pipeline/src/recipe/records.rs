//! The `records:` option of an input: the file is a record source (JSONL, CSV,
//! Parquet or Arrow IPC) whose records become entries of kind record, their
//! scalar fields typed user columns.
//!
//! ```yaml
//! inputs:
//!   - path: data/train.jsonl
//!     records:
//!       format: jsonl      # optional: jsonl | csv | parquet | arrow (default: from the extension)
//!       data: image        # required: the field holding each record's bytes; null = the whole record
//!       name: id           # optional: the field naming the entry (default: the record's index, 8 digits)
//!       encoding: base64   # optional: base64 | utf8, how a text data field becomes bytes
//!       prefix: train/     # optional: put before every entry name
//! ```

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

use super::error::{RecipeError, closest};
use super::validate::Context;

/// A record file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordFormat {
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    Jsonl,
    /// Comma-separated values with a header line (`.csv`).
    Csv,
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
    /// Arrow IPC, file or stream format (`.arrow`, `.feather`, `.ipc`, `.arrows`).
    Arrow,
}

impl RecordFormat {
    /// Every format, in the order messages list them.
    pub const ALL: [RecordFormat; 4] = [Self::Jsonl, Self::Csv, Self::Parquet, Self::Arrow];

    /// The name written in recipes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Parquet => "parquet",
            Self::Arrow => "arrow",
        }
    }

    /// The format a file extension (lower case, without the dot) stands for.
    pub fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext {
            "jsonl" | "ndjson" => Self::Jsonl,
            "csv" => Self::Csv,
            "parquet" | "pq" => Self::Parquet,
            "arrow" | "feather" | "ipc" | "arrows" => Self::Arrow,
            _ => return None,
        })
    }

    /// Whether values are text that must be typed by looking at them (JSONL and
    /// CSV), as opposed to carrying a schema (Parquet, Arrow).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Jsonl | Self::Csv)
    }
}

impl fmt::Display for RecordFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a text data field becomes the entry's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataEncoding {
    /// Standard base64 (RFC 4648 alphabet, `=` padding required).
    #[default]
    Base64,
    /// The text's UTF-8 bytes as they are.
    Utf8,
}

impl DataEncoding {
    /// Every encoding, in the order messages list them.
    pub const ALL: [DataEncoding; 2] = [Self::Base64, Self::Utf8];

    /// The name written in recipes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base64 => "base64",
            Self::Utf8 => "utf8",
        }
    }
}

/// Where each record's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataField {
    /// This field (a string, or in Parquet/Arrow a binary or string column; in
    /// JSONL an object or array is stored as compact JSON). It is not a column.
    Field(String),
    /// The record itself: a JSONL line as written, otherwise the record as a
    /// compact JSON object of its column values.
    Whole,
}

/// A checked `records:` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsPlan {
    /// The file's format (written, or from the extension).
    pub format: RecordFormat,
    /// Where the entry bytes come from.
    pub data: DataField,
    /// The field naming each entry (not a column); `None`: the record's index,
    /// zero-padded to 8 digits, counted from 0 in this input.
    pub name: Option<String>,
    /// How a text data field becomes bytes.
    pub encoding: DataEncoding,
    /// Put before every entry name (may contain `/`).
    pub prefix: String,
}

/// `records:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecords {
    #[serde(default)]
    pub(crate) format: Option<Spanned<String>>,
    pub(crate) data: Spanned<RawDataField>,
    #[serde(default)]
    pub(crate) name: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) encoding: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) prefix: Option<Spanned<String>>,
}

/// `data:` as written: a field name, or null for the whole record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawDataField {
    Field(String),
    Whole,
}

impl<'de> Deserialize<'de> for RawDataField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor;

        impl Visitor<'_> for DataVisitor {
            type Value = RawDataField;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name, or null for the whole record")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDataField, E> {
                Ok(RawDataField::Field(v.to_owned()))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawDataField, E> {
                Ok(RawDataField::Whole)
            }

            fn visit_none<E: de::Error>(self) -> Result<RawDataField, E> {
                Ok(RawDataField::Whole)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDataField, E> {
                Ok(RawDataField::Field(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDataField, E> {
                Ok(RawDataField::Field(v.to_string()))
            }
        }

        deserializer.deserialize_any(DataVisitor)
    }
}

/// Checks `inputs[index].records` for the input at `path` (already resolved).
pub(crate) fn records_plan(
    index: usize,
    raw: &RawRecords,
    path: &Path,
    written: &str,
    path_at: &serde_saphyr::Location,
    cx: &Context<'_>,
) -> Result<RecordsPlan, RecipeError> {
    let field = |key: &str| format!("inputs[{index}].records.{key}");
    let format = match &raw.format {
        Some(value) => RecordFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == value.value)
            .ok_or_else(|| {
                let names = RecordFormat::ALL.map(RecordFormat::as_str);
                unknown_choice(field("format"), value, &names, cx)
            })?,
        None => path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(|e| RecordFormat::from_extension(&e.to_ascii_lowercase()))
            .ok_or_else(|| RecipeError::RecordFormatUnknown {
                at: cx.at(path_at),
                written: written.to_owned(),
            })?,
    };
    let data = match &raw.data.value {
        RawDataField::Whole => DataField::Whole,
        RawDataField::Field(name) if name.is_empty() => {
            return Err(RecipeError::EmptyValue {
                at: cx.at(&raw.data.referenced),
                field: field("data"),
            });
        }
        RawDataField::Field(name) => DataField::Field(name.clone()),
    };
    let name = match &raw.name {
        Some(value) if value.value.is_empty() => {
            return Err(RecipeError::EmptyValue {
                at: cx.at(&value.referenced),
                field: field("name"),
            });
        }
        Some(value) => {
            if data == DataField::Field(value.value.clone()) {
                return Err(RecipeError::SameDataAndName {
                    at: cx.at(&value.referenced),
                    field: value.value.clone(),
                });
            }
            Some(value.value.clone())
        }
        None => None,
    };
    let encoding = match &raw.encoding {
        Some(value) => DataEncoding::ALL
            .into_iter()
            .find(|e| e.as_str() == value.value)
            .ok_or_else(|| {
                let names = DataEncoding::ALL.map(DataEncoding::as_str);
                unknown_choice(field("encoding"), value, &names, cx)
            })?,
        None => DataEncoding::default(),
    };
    let prefix = match &raw.prefix {
        Some(value) => {
            let p = value.value.as_str();
            if p.starts_with('/') || p.split('/').any(|c| c == "." || c == "..") {
                return Err(RecipeError::BadPrefix {
                    at: cx.at(&value.referenced),
                    field: field("prefix"),
                    written: value.value.clone(),
                });
            }
            value.value.clone()
        }
        None => String::new(),
    };
    Ok(RecordsPlan {
        format,
        data,
        name,
        encoding,
        prefix,
    })
}

/// `value` is none of `names`: suggest the closest, or list them.
fn unknown_choice(
    field: String,
    value: &Spanned<String>,
    names: &[&str],
    cx: &Context<'_>,
) -> RecipeError {
    let fix = match closest(&value.value.to_lowercase(), names) {
        Some(s) => format!(", did you mean `{s}`?"),
        None => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("; write one of {}", list.join(", "))
        }
    };
    RecipeError::UnknownChoice {
        at: cx.at(&value.referenced),
        field,
        written: value.value.clone(),
        fix,
    }
}

/// A record source must be a file.
pub(crate) fn check_records_file(
    path: &Path,
    written: &str,
    at: &serde_saphyr::Location,
    cx: &Context<'_>,
) -> Result<(), RecipeError> {
    if path.is_dir() {
        return Err(RecipeError::RecordsNotAFile {
            at: cx.at(at),
            written: written.to_owned(),
        });
    }
    Ok(())
}
