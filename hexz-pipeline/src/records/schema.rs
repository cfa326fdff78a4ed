//! Column inference across records and inputs, and rows against the result.

use std::collections::HashMap;
use std::path::Path;

use hexz_format::columns::{Column, ColumnError, ColumnSchema, ColumnType, Value};

use super::{RecordError, RecordLocation};

/// One field seen by the scan.
struct Slot {
    name: String,
    /// `None` while only nulls were seen.
    ty: Option<ColumnType>,
    /// Where `ty` was first seen (or widened).
    first: Option<RecordLocation>,
    /// The file that first named the field (for schema errors).
    file: std::path::PathBuf,
}

/// Collects field names and types over every record input, in first-seen order.
#[derive(Default)]
pub(crate) struct SchemaBuilder {
    slots: Vec<Slot>,
    index: HashMap<String, usize>,
}

/// `a` and `b` as one column type: equal types, or int64 and float64 as float64.
pub(crate) fn widen(a: ColumnType, b: ColumnType) -> Option<ColumnType> {
    use ColumnType::{Float64, Int64};
    match (a, b) {
        _ if a == b => Some(a),
        (Int64, Float64) | (Float64, Int64) => Some(Float64),
        _ => None,
    }
}

impl SchemaBuilder {
    /// Field `name` was seen with a value of type `ty` (`None`: null). `at` is
    /// called only when a location is needed.
    pub(crate) fn observe(
        &mut self,
        file: &Path,
        name: &str,
        ty: Option<ColumnType>,
        at: &dyn Fn() -> RecordLocation,
    ) -> Result<(), RecordError> {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.index.insert(name.to_owned(), self.slots.len());
                self.slots.push(Slot {
                    name: name.to_owned(),
                    ty: None,
                    first: None,
                    file: file.to_path_buf(),
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[i];
        let Some(ty) = ty else {
            return Ok(());
        };
        match slot.ty {
            None => {
                slot.ty = Some(ty);
                slot.first = Some(at());
            }
            Some(have) if have == ty => {}
            Some(have) => match widen(have, ty) {
                Some(wide) => {
                    if wide != have {
                        slot.ty = Some(wide);
                    }
                }
                None => {
                    return Err(RecordError::TypeConflict {
                        at: at(),
                        column: slot.name.clone(),
                        expected: have,
                        first: slot.first.clone().unwrap_or_else(at),
                        found: ty,
                    });
                }
            },
        }
        Ok(())
    }

    /// The schema: every field with a type (fields only ever null are dropped);
    /// `None` when there is none.
    pub(crate) fn finish(self) -> Result<Option<ColumnSchema>, RecordError> {
        let typed: Vec<&Slot> = self.slots.iter().filter(|s| s.ty.is_some()).collect();
        if typed.is_empty() {
            return Ok(None);
        }
        let columns = typed
            .iter()
            .filter_map(|s| s.ty.map(|ty| Column::new(s.name.clone(), ty)))
            .collect();
        ColumnSchema::new(columns).map(Some).map_err(|error| {
            // Name the file that brought in the offending field.
            let path = match &error {
                ColumnError::NameLength { .. } | ColumnError::BadName { .. } => typed
                    .iter()
                    .find(|s| {
                        s.name.is_empty()
                            || s.name.len() > hexz_format::columns::MAX_COLUMN_NAME_LEN
                            || s.name.chars().any(char::is_control)
                    })
                    .map(|s| s.file.clone()),
                _ => typed.last().map(|s| s.file.clone()),
            }
            .unwrap_or_default();
            RecordError::Schema { path, error }
        })
    }
}

/// The values of one record, in schema order, filled field by field.
pub(crate) struct RowBuilder<'s> {
    schema: Option<&'s ColumnSchema>,
    index: HashMap<&'s str, usize>,
    values: Vec<Value>,
}

impl<'s> RowBuilder<'s> {
    pub(crate) fn new(schema: Option<&'s ColumnSchema>) -> Self {
        let index = schema
            .map(|s| {
                s.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name.as_str(), i))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            schema,
            index,
            values: vec![Value::Null; schema.map_or(0, ColumnSchema::len)],
        }
    }

    /// Position of the column called `name`.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The type of column `i`.
    pub(crate) fn column_type(&self, i: usize) -> Option<ColumnType> {
        self.schema.map(|s| s.columns()[i].ty)
    }

    /// Every value null again.
    pub(crate) fn clear(&mut self) {
        for v in &mut self.values {
            *v = Value::Null;
        }
    }

    /// Set column `i`, converting an int64 for a float64 column. A value of any
    /// other type means the scan and the read disagree: an error, not a panic.
    pub(crate) fn set(
        &mut self,
        i: usize,
        value: Value,
        at: &dyn Fn() -> RecordLocation,
    ) -> Result<(), RecordError> {
        let Some(want) = self.column_type(i) else {
            return Ok(());
        };
        let value = match (want, value) {
            (ColumnType::Float64, Value::Int64(n)) => Value::Float64(n as f64),
            (_, v) if v.column_type().is_none_or(|t| t == want) => v,
            (_, v) => {
                let found = v.column_type().unwrap_or(want);
                return Err(RecordError::TypeConflict {
                    at: at(),
                    column: self
                        .schema
                        .map(|s| s.columns()[i].name.clone())
                        .unwrap_or_default(),
                    expected: want,
                    first: at(),
                    found,
                });
            }
        };
        self.values[i] = value;
        Ok(())
    }

    /// The values, in schema order.
    pub(crate) fn values(&self) -> &[Value] {
        &self.values
    }

    /// The row's bytes for the entry (empty without a schema).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, ColumnError> {
        match self.schema {
            Some(s) => s.encode_row(&self.values),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at() -> RecordLocation {
        RecordLocation {
            path: "f.jsonl".into(),
            line: Some(1),
            row: 0,
        }
    }

    #[test]
    fn fields_widen_or_conflict() {
        let mut b = SchemaBuilder::default();
        let f = Path::new("f.jsonl");
        b.observe(f, "a", None, &at).unwrap();
        b.observe(f, "b", Some(ColumnType::Int64), &at).unwrap();
        b.observe(f, "a", Some(ColumnType::Utf8), &at).unwrap();
        b.observe(f, "b", Some(ColumnType::Float64), &at).unwrap();
        b.observe(f, "b", Some(ColumnType::Int64), &at).unwrap();
        b.observe(f, "never", None, &at).unwrap();
        let e = b.observe(f, "a", Some(ColumnType::Bool), &at).unwrap_err();
        assert!(matches!(
            e,
            RecordError::TypeConflict {
                expected: ColumnType::Utf8,
                found: ColumnType::Bool,
                ..
            }
        ));
        let s = b.finish().unwrap().unwrap();
        assert_eq!(
            s.columns(),
            [
                Column::new("a", ColumnType::Utf8),
                Column::new("b", ColumnType::Float64)
            ]
        );
        let mut row = RowBuilder::new(Some(&s));
        row.set(1, Value::Int64(3), &at).unwrap();
        assert_eq!(row.values(), [Value::Null, Value::Float64(3.0)]);
        assert!(row.set(0, Value::Int64(3), &at).is_err());
        assert!(SchemaBuilder::default().finish().unwrap().is_none());
    }
}
