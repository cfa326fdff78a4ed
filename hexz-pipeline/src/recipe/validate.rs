//! Raw recipe → [`Plan`]: defaults, bounds, interpolation, path resolution.
//!
//! Checks run in this order and the first failure is returned: inputs and
//! output (interpolation, emptiness), chunking, compression, and last the
//! filesystem check that every input exists. Locations come from the
//! [`Spanned`] wrappers of the raw structs, so they point at the offending value.

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_saphyr::{Location, Spanned};

use super::dir_options::{check_file_input, dir_options};
use super::error::{RecipeError, SourceLocation};
use super::interpolate::{InterpolationError, interpolate};
use super::plan::{
    ChunkingPlan, CompressionPlan, CompressionSpans, InputPlan, Plan, SymlinkPolicy,
};
use super::raw::{RawChunking, RawCompression, RawLevel, RawRecipe, RawSize};
use super::records::{DataField, check_records_file, records_plan};

/// What validation needs besides the raw recipe.
pub(crate) struct Context<'a> {
    /// The recipe file as named by the caller; used in locations.
    pub(crate) file: &'a Path,
    /// Absolute folder of the recipe.
    pub(crate) recipe_dir: &'a Path,
    /// Looks up `${VAR}` names.
    pub(crate) env: &'a dyn Fn(&str) -> Option<String>,
}

impl Context<'_> {
    pub(crate) fn at(&self, location: &Location) -> SourceLocation {
        SourceLocation::new(self.file, location)
    }

    /// Interpolates a string value; `field` names it in messages.
    pub(crate) fn interpolated(
        &self,
        field: &str,
        value: &Spanned<String>,
    ) -> Result<String, RecipeError> {
        let text = interpolate(&value.value, self.env).map_err(|e| match e {
            InterpolationError::Unset(variable) => RecipeError::UnsetVariable {
                at: self.at(&value.referenced),
                field: field.to_owned(),
                variable,
            },
            InterpolationError::Syntax(problem) => RecipeError::Interpolation {
                at: self.at(&value.referenced),
                field: field.to_owned(),
                problem,
            },
        })?;
        if text.trim().is_empty() {
            return Err(RecipeError::EmptyValue {
                at: self.at(&value.referenced),
                field: field.to_owned(),
            });
        }
        Ok(text)
    }

    /// Makes `path` absolute against the recipe folder, dropping `.` components.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        self.recipe_dir.join(path).components().collect()
    }
}

/// Turns the raw recipe into a plan, or reports the first problem.
pub(crate) fn validate(raw: &RawRecipe, cx: &Context<'_>) -> Result<Plan, RecipeError> {
    if raw.inputs.value.is_empty() {
        return Err(RecipeError::NoInputs {
            at: cx.at(&raw.inputs.referenced),
        });
    }
    let mut inputs = Vec::with_capacity(raw.inputs.value.len());
    for (index, input) in raw.inputs.value.iter().enumerate() {
        let path = cx.interpolated(&format!("inputs[{index}].path"), &input.path)?;
        let options = dir_options(index, input, cx)?;
        let resolved = cx.resolve(&path);
        let records = match &input.records {
            Some(raw) => Some(records_plan(
                index,
                raw,
                &resolved,
                &input.path.value,
                &input.path.referenced,
                cx,
            )?),
            None => None,
        };
        inputs.push(InputPlan {
            path: resolved,
            written: input.path.value.clone(),
            include: options.include,
            exclude: options.exclude,
            symlinks: options.symlinks,
            records,
        });
    }
    let output = cx.resolve(&cx.interpolated("output", &raw.output)?);
    let chunking = chunking(raw.chunking.as_ref(), cx)?;
    let compression = compression(raw.compression.as_ref(), cx)?;
    let publish = match &raw.publish {
        Some(p) => Some(super::publish::publish_plan(p, cx)?),
        None => None,
    };
    for (index, (input, raw_input)) in inputs.iter().zip(&raw.inputs.value).enumerate() {
        check_exists(input, cx.at(&raw_input.path.referenced))?;
        check_file_input(index, raw_input, input, cx)?;
        if input.records.is_some() {
            check_records_file(&input.path, &input.written, &raw_input.path.referenced, cx)?;
        }
    }
    let parent = match &raw.parent {
        Some(p) => {
            let text = cx.interpolated("parent", p)?;
            Some(if crate::registry::url_scheme(&text).is_some() {
                text
            } else {
                cx.resolve(&text).to_string_lossy().into_owned()
            })
        }
        None => None,
    };
    let encrypt = match &raw.encrypt {
        Some(e) => Some(super::crypto::encrypt_plan(e, cx)?),
        None => None,
    };
    let sign = match &raw.sign {
        Some(s) => Some(super::crypto::sign_plan(s, cx)?),
        None => None,
    };
    let mut normalized = normalized(raw, &inputs, &chunking, &compression);
    if encrypt.is_some() || sign.is_some() {
        normalized = with_crypto(&normalized, encrypt.as_ref(), sign.as_ref());
    }
    let compression_at = CompressionSpans {
        codec: raw
            .compression
            .as_ref()
            .and_then(|c| c.codec.as_ref())
            .map(|c| cx.at(&c.referenced)),
        level: raw
            .compression
            .as_ref()
            .and_then(|c| c.level.as_ref())
            .map(|l| cx.at(&l.referenced)),
    };
    Ok(Plan {
        recipe_path: cx.file.to_path_buf(),
        recipe_dir: cx.recipe_dir.to_path_buf(),
        inputs,
        output,
        chunking,
        compression,
        compression_at,
        publish,
        parent,
        encrypt,
        sign,
        normalized,
    })
}

/// Add the `encrypt` and `sign` stages to the normalized recipe: which kinds of
/// key slots, the recipients' and the signer's public keys — never a secret, a
/// passphrase or the path of one. Recipes without them normalize as before.
fn with_crypto(
    normalized: &str,
    encrypt: Option<&super::crypto::EncryptPlan>,
    sign: Option<&super::crypto::SignPlan>,
) -> String {
    let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_str(normalized) else {
        return normalized.to_owned();
    };
    if let Some(e) = encrypt {
        doc.insert(
            "encrypt".into(),
            serde_json::json!({
                "key_file": e.key_file.is_some(),
                "passphrases": e.passphrases.len(),
                "recipients": e.recipients.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        );
    }
    if let Some(s) = sign {
        doc.insert(
            "sign".into(),
            serde_json::json!({ "detached": s.detached, "key": s.public.to_string() }),
        );
    }
    // Sorted keys whatever serde_json's map type is.
    let sorted: std::collections::BTreeMap<String, serde_json::Value> = doc.into_iter().collect();
    serde_json::to_string(&sorted).unwrap_or_else(|_| normalized.to_owned())
}

fn check_exists(input: &InputPlan, at: SourceLocation) -> Result<(), RecipeError> {
    match std::fs::metadata(&input.path) {
        Ok(meta) if meta.is_dir() || meta.is_file() => Ok(()),
        Ok(_) => Err(RecipeError::InputNotFileOrDir {
            at,
            written: input.written.clone(),
            resolved: input.path.clone(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(RecipeError::InputMissing {
            at,
            written: input.written.clone(),
            resolved: input.path.clone(),
        }),
        Err(error) => Err(RecipeError::InputUnreadable {
            at,
            written: input.written.clone(),
            resolved: input.path.clone(),
            error,
        }),
    }
}

/// One chunk-size setting after parsing; `at` is `None` when it is the default.
struct Size {
    field: &'static str,
    value: u32,
    at: Option<SourceLocation>,
}

fn chunking(raw: Option<&RawChunking>, cx: &Context<'_>) -> Result<ChunkingPlan, RecipeError> {
    let (min, avg, max) = raw.map_or((None, None, None), |c| {
        (c.min.as_ref(), c.avg.as_ref(), c.max.as_ref())
    });
    let min = size(
        "chunking.min",
        min,
        ChunkingPlan::DEFAULT_MIN,
        ChunkingPlan::MIN_RANGE,
        cx,
    )?;
    let avg = size(
        "chunking.avg",
        avg,
        ChunkingPlan::DEFAULT_AVG,
        ChunkingPlan::AVG_RANGE,
        cx,
    )?;
    let max = size(
        "chunking.max",
        max,
        ChunkingPlan::DEFAULT_MAX,
        ChunkingPlan::MAX_RANGE,
        cx,
    )?;
    check_order(&min, &avg, cx)?;
    check_order(&avg, &max, cx)?;
    Ok(ChunkingPlan {
        min: min.value,
        avg: avg.value,
        max: max.value,
    })
}

fn size(
    field: &'static str,
    raw: Option<&Spanned<RawSize>>,
    default: u32,
    range: RangeInclusive<u32>,
    cx: &Context<'_>,
) -> Result<Size, RecipeError> {
    let Some(raw) = raw else {
        return Ok(Size {
            field,
            value: default,
            at: None,
        });
    };
    let at = cx.at(&raw.referenced);
    let bytes = match &raw.value {
        RawSize::Bytes(bytes) => *bytes,
        RawSize::Text(text) => {
            parse_size::parse_size(text).map_err(|_| RecipeError::InvalidSize {
                at: at.clone(),
                field,
                written: text.clone(),
            })?
        }
    };
    let value = u32::try_from(bytes)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| RecipeError::SizeOutOfRange {
            at: at.clone(),
            field,
            value: bytes,
            min: u64::from(*range.start()),
            max: u64::from(*range.end()),
        })?;
    if !value.is_multiple_of(2) {
        return Err(RecipeError::OddSize {
            at,
            field,
            value: bytes,
        });
    }
    Ok(Size {
        field,
        value,
        at: Some(at),
    })
}

fn check_order(lower: &Size, upper: &Size, cx: &Context<'_>) -> Result<(), RecipeError> {
    if lower.value <= upper.value {
        return Ok(());
    }
    // The defaults are ordered, so at least one side was written in the recipe.
    let at = lower
        .at
        .clone()
        .or_else(|| upper.at.clone())
        .unwrap_or_else(|| SourceLocation {
            file: cx.file.to_path_buf(),
            line: 0,
            column: 0,
        });
    Err(RecipeError::SizeOrder {
        at,
        lower_field: lower.field,
        lower: u64::from(lower.value),
        lower_is_default: lower.at.is_none(),
        upper_field: upper.field,
        upper: u64::from(upper.value),
        upper_is_default: upper.at.is_none(),
    })
}

fn compression(
    raw: Option<&RawCompression>,
    cx: &Context<'_>,
) -> Result<CompressionPlan, RecipeError> {
    let codec_raw = raw.and_then(|c| c.codec.as_ref());
    let level_raw = raw.and_then(|c| c.level.as_ref());
    let codec = match codec_raw {
        Some(codec) if codec.value.trim().is_empty() => {
            return Err(RecipeError::EmptyValue {
                at: cx.at(&codec.referenced),
                field: "compression.codec".to_owned(),
            });
        }
        Some(codec) => codec.value.clone(),
        None => CompressionPlan::DEFAULT_CODEC.to_owned(),
    };
    let level = match (codec.as_str(), level_raw) {
        (name, Some(level)) if CompressionPlan::LEVELLESS_CODECS.contains(&name) => {
            return Err(RecipeError::LevelNotAccepted {
                at: cx.at(&level.referenced),
                codec,
                level: level_text(&level.value),
            });
        }
        (name, Some(level)) => Some(checked_level(name, level, cx)?),
        ("zstd", None) => Some(CompressionPlan::DEFAULT_ZSTD_LEVEL),
        (_, None) => None,
    };
    let deltas = raw.and_then(|c| c.deltas).unwrap_or(true);
    Ok(CompressionPlan {
        codec,
        level,
        deltas,
    })
}

/// Range-checks a written level: zstd's own range, or `i32` for other codecs.
fn checked_level(
    codec: &str,
    level: &Spanned<RawLevel>,
    cx: &Context<'_>,
) -> Result<i32, RecipeError> {
    let range = if codec == "zstd" {
        CompressionPlan::ZSTD_LEVELS
    } else {
        i32::MIN..=i32::MAX
    };
    let written = match &level.value {
        RawLevel::Int(written) => *written,
        RawLevel::Other(text) => {
            return Err(RecipeError::InvalidLevel {
                at: cx.at(&level.referenced),
                written: text.clone(),
            });
        }
    };
    i32::try_from(written)
        .ok()
        .filter(|l| range.contains(l))
        .ok_or_else(|| RecipeError::LevelOutOfRange {
            at: cx.at(&level.referenced),
            codec: codec.to_owned(),
            level: written,
            min: i64::from(*range.start()),
            max: i64::from(*range.end()),
        })
}

fn level_text(level: &RawLevel) -> String {
    match level {
        RawLevel::Int(level) => level.to_string(),
        RawLevel::Other(text) => text.clone(),
    }
}

/// Provenance JSON. Struct fields are declared in alphabetical order, so the
/// keys come out sorted whatever `serde_json` features the build enables.
#[derive(Serialize)]
struct NormalizedRecipe<'a> {
    chunking: NormalizedChunking,
    compression: NormalizedCompression<'a>,
    inputs: Vec<NormalizedInput<'a>>,
    output: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
}

#[derive(Serialize)]
struct NormalizedChunking {
    avg: u32,
    max: u32,
    min: u32,
}

#[derive(Serialize)]
struct NormalizedCompression<'a> {
    codec: &'a str,
    /// Only when off (the default, on, leaves the normalized recipe as before).
    #[serde(skip_serializing_if = "is_true")]
    deltas: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<i32>,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Directory options appear only when they differ from the defaults (no
/// patterns, `symlinks: keep`), so writing a default out changes nothing.
#[derive(Serialize)]
struct NormalizedInput<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    exclude: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    include: &'a [String],
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<NormalizedRecords<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    symlinks: Option<&'static str>,
}

/// A record input's options, defaults filled in (`data: null` for the whole record).
#[derive(Serialize)]
struct NormalizedRecords<'a> {
    data: Option<&'a str>,
    encoding: &'static str,
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    prefix: &'a str,
}

fn normalized(
    raw: &RawRecipe,
    inputs: &[InputPlan],
    chunking: &ChunkingPlan,
    compression: &CompressionPlan,
) -> String {
    let doc = NormalizedRecipe {
        chunking: NormalizedChunking {
            avg: chunking.avg,
            max: chunking.max,
            min: chunking.min,
        },
        compression: NormalizedCompression {
            codec: &compression.codec,
            deltas: compression.deltas,
            level: compression.level,
        },
        inputs: raw
            .inputs
            .value
            .iter()
            .zip(inputs)
            .map(|(input, plan)| NormalizedInput {
                exclude: &plan.exclude,
                include: &plan.include,
                path: &input.path.value,
                records: plan.records.as_ref().map(|r| NormalizedRecords {
                    data: match &r.data {
                        DataField::Field(f) => Some(f.as_str()),
                        DataField::Whole => None,
                    },
                    encoding: r.encoding.as_str(),
                    format: r.format.as_str(),
                    name: r.name.as_deref(),
                    prefix: &r.prefix,
                }),
                symlinks: (plan.symlinks != SymlinkPolicy::Keep).then_some(plan.symlinks.as_str()),
            })
            .collect(),
        output: &raw.output.value,
        parent: raw.parent.as_ref().map(|p| p.value.as_str()),
    };
    // Serializing plain structs with string keys into a String cannot fail.
    serde_json::to_string(&doc).unwrap_or_default()
}
