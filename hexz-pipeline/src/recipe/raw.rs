//! The recipe exactly as written: serde structs that reject unknown keys.
//!
//! Every leaf that validation may complain about is wrapped in
//! [`Spanned`], so errors found after deserialization can point at the value's
//! own line and column. Optional sections are `Option` so validation knows what
//! the recipe set and what it left to the defaults.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

/// The top-level mapping of a recipe file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecipe {
    pub(crate) inputs: Spanned<Vec<RawInput>>,
    pub(crate) output: Spanned<String>,
    #[serde(default)]
    pub(crate) chunking: Option<RawChunking>,
    #[serde(default)]
    pub(crate) compression: Option<RawCompression>,
    /// Upload the built archive (see `recipe/publish.rs`).
    #[serde(default)]
    pub(crate) publish: Option<super::publish::RawPublish>,
    /// Thin snapshot: the archive (path or URL) this one is a child of.
    #[serde(default)]
    pub(crate) parent: Option<Spanned<String>>,
    /// Seal the archive (see `recipe/crypto.rs`).
    #[serde(default)]
    pub(crate) encrypt: Option<Spanned<super::crypto::RawEncrypt>>,
    /// Sign the archive (see `recipe/crypto.rs`).
    #[serde(default)]
    pub(crate) sign: Option<super::crypto::RawSign>,
}

/// One entry of `inputs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
    pub(crate) path: Spanned<String>,
    /// Directory inputs: globs an entry name must match (any of them) to be kept.
    #[serde(default)]
    pub(crate) include: Option<Spanned<Vec<Spanned<String>>>>,
    /// Directory inputs: globs whose matches are left out (folders with their contents).
    #[serde(default)]
    pub(crate) exclude: Option<Spanned<Vec<Spanned<String>>>>,
    /// Directory inputs: `keep`, `follow` or `skip`.
    #[serde(default)]
    pub(crate) symlinks: Option<Spanned<String>>,
    /// The file is a record source (see `recipe/records.rs`).
    #[serde(default)]
    pub(crate) records: Option<super::records::RawRecords>,
}

/// The `chunking` mapping; absent keys take the defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChunking {
    #[serde(default)]
    pub(crate) min: Option<Spanned<RawSize>>,
    #[serde(default)]
    pub(crate) avg: Option<Spanned<RawSize>>,
    #[serde(default)]
    pub(crate) max: Option<Spanned<RawSize>>,
}

/// The `compression` mapping; absent keys take the defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCompression {
    #[serde(default)]
    pub(crate) codec: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) level: Option<Spanned<RawLevel>>,
    #[serde(default)]
    pub(crate) deltas: Option<bool>,
}

/// A byte size as written: a YAML integer, or a string for `parse-size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawSize {
    /// A non-negative YAML integer: a count of bytes.
    Bytes(u64),
    /// Any other scalar (`64KiB`, `1 MiB`, a negative number, `true`); parsed during
    /// validation, so a bad value is reported at its own location.
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size such as 65536 or \"64KiB\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(u64::try_from(v).map_or_else(|_| RawSize::Text(v.to_string()), RawSize::Bytes))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A compression level as written. Non-integers are kept as text so validation
/// can report them at the value's own location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawLevel {
    /// A YAML integer that fits `i64`.
    Int(i64),
    /// Any other scalar, e.g. `fast` or `3.5`.
    Other(String),
}

impl<'de> Deserialize<'de> for RawLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LevelVisitor;

        impl Visitor<'_> for LevelVisitor {
            type Value = RawLevel;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer compression level")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawLevel, E> {
                Ok(RawLevel::Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawLevel, E> {
                Ok(i64::try_from(v).map_or_else(|_| RawLevel::Other(v.to_string()), RawLevel::Int))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawLevel, E> {
                Ok(RawLevel::Other(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawLevel, E> {
                Ok(RawLevel::Other(v.to_string()))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawLevel, E> {
                Ok(RawLevel::Other(v.to_owned()))
            }
        }

        deserializer.deserialize_any(LevelVisitor)
    }
}
