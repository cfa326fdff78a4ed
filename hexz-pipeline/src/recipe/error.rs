//! The one error type of the recipe loader, and the location it points at.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hexz_format::error::Excerpt;

use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};

/// Where in a recipe file an error was found.
///
/// `line` and `column` are 1-based; `column` counts characters, not bytes. Both
/// are 0 when the YAML parser could not tell (for example, input that is not
/// UTF-8); [`Display`](fmt::Display) then prints only the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// The recipe file, as the caller named it.
    pub file: PathBuf,
    /// 1-based line, or 0 when unknown.
    pub line: u64,
    /// 1-based character column, or 0 when unknown.
    pub column: u64,
}

impl SourceLocation {
    pub(crate) fn new(file: &Path, location: &serde_saphyr::Location) -> Self {
        Self {
            file: file.to_path_buf(),
            line: location.line(),
            column: location.column(),
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", Excerpt::path(&self.file))
        } else {
            write!(
                f,
                "{}:{}:{}",
                Excerpt::path(&self.file),
                self.line,
                self.column
            )
        }
    }
}

/// A malformed `$` in a string value that is subject to `${VAR}` interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterpolationProblem {
    /// `${` without a closing `}`.
    Unterminated,
    /// `${}`.
    EmptyName,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidName {
        /// The text between the braces.
        name: String,
    },
    /// A `$` followed by neither `{` nor `$`.
    LoneDollar,
}

impl fmt::Display for InterpolationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated => f.write_str("`${` is not closed; write `${NAME}`"),
            Self::EmptyName => f.write_str("`${}` names no variable; write `${NAME}`"),
            Self::InvalidName { name } => write!(
                f,
                "`${{{}}}` is not a valid variable name; use letters, digits and `_`, \
                 not starting with a digit",
                Excerpt(name)
            ),
            Self::LoneDollar => {
                f.write_str("a `$` must start `${NAME}`; write `$$` for a literal `$`")
            }
        }
    }
}

/// Everything that can go wrong turning a recipe file into a [`Plan`](super::Plan).
///
/// Every variant found inside the file carries a [`SourceLocation`] (`at`), and
/// its message reads `file:line:column: what is wrong; how to fix it`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    /// The recipe file could not be read.
    ///
    /// The I/O error is part of the message and deliberately not exposed as
    /// [`source`](std::error::Error::source), so error chains do not repeat it.
    #[error("cannot read recipe {}: {error}", Excerpt::path(path))]
    Read {
        /// The recipe path as given.
        path: PathBuf,
        /// Why reading failed.
        error: io::Error,
    },

    /// The recipe's folder could not be made absolute (the working directory is gone).
    #[error("cannot resolve the folder of recipe {}: {error}", Excerpt::path(path))]
    RecipeDir {
        /// The recipe path as given.
        path: PathBuf,
        /// Why the working directory could not be read.
        error: io::Error,
    },

    /// The text is not valid YAML, or a value has the wrong type.
    #[error("{at}: {detail_q}", detail_q = Excerpt(detail))]
    Yaml {
        /// Where the parser stopped.
        at: SourceLocation,
        /// The YAML parser's description, without its location suffix.
        detail: String,
    },

    /// A key the schema does not know (typo, or a field from a newer version).
    #[error("{at}: unknown field `{field_q}`{}", unknown_field_fix(suggestion.as_deref(), expected), field_q = Excerpt(field))]
    UnknownField {
        /// Location of the unknown key.
        at: SourceLocation,
        /// The key as written.
        field: String,
        /// The keys allowed at that place.
        expected: Vec<String>,
        /// The closest allowed key, if one is close enough to be a likely typo.
        suggestion: Option<String>,
    },

    /// A required key is absent.
    #[error("{at}: missing required field `{field_q}`; {}", missing_field_fix(field), field_q = Excerpt(field))]
    MissingField {
        /// Location of the mapping that lacks the key.
        at: SourceLocation,
        /// The missing key.
        field: String,
    },

    /// `inputs` is an empty list.
    #[error("{at}: `inputs` is empty; list at least one input, e.g. `- path: data/`")]
    NoInputs {
        /// Location of the `inputs` value.
        at: SourceLocation,
    },

    /// A string field that must not be empty is empty (after interpolation).
    #[error("{at}: `{field_q}` is empty; give it a value", field_q = Excerpt(field))]
    EmptyValue {
        /// Location of the value.
        at: SourceLocation,
        /// Key path of the field, e.g. `inputs[0].path`.
        field: String,
    },

    /// `${VAR}` names a variable that is not set.
    #[error(
        "{at}: environment variable `{variable_q}` is not set (used in `{field_q}`); \
         set it, or write `$$` for a literal `$`", field_q = Excerpt(field), variable_q = Excerpt(variable))]
    UnsetVariable {
        /// Location of the value containing the reference.
        at: SourceLocation,
        /// Key path of the field, e.g. `output`.
        field: String,
        /// The variable name.
        variable: String,
    },

    /// A `$` in an interpolated value is malformed.
    #[error("{at}: bad `$` in `{field_q}`: {problem}", field_q = Excerpt(field))]
    Interpolation {
        /// Location of the value.
        at: SourceLocation,
        /// Key path of the field.
        field: String,
        /// What is malformed.
        problem: InterpolationProblem,
    },

    /// A chunk size is neither an integer nor a size string `parse-size` understands.
    #[error(
        "{at}: {field_q}: cannot read `{written_q}` as a size; write a byte count like `65536` \
         or a size like `64KiB`", written_q = Excerpt(written), field_q = Excerpt(field))]
    InvalidSize {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `chunking.min`.
        field: &'static str,
        /// The value as written.
        written: String,
    },

    /// A chunk size is outside the range FastCDC accepts.
    #[error(
        "{at}: {field_q} ({}) is out of range {}–{}; choose a value in that range",
        human_size(*value), human_size(*min), human_size(*max), field_q = Excerpt(field))]
    SizeOutOfRange {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `chunking.min`.
        field: &'static str,
        /// The size in bytes.
        value: u64,
        /// Smallest accepted size in bytes.
        min: u64,
        /// Largest accepted size in bytes.
        max: u64,
    },

    /// A value that must be a URL (`scheme://...`) is not one.
    #[error(
        "{at}: {field_q}: `{written_q}` is not a URL; write e.g. s3://bucket/key or file:///abs/path", written_q = Excerpt(written), field_q = Excerpt(field))]
    NotAUrl {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `publish.url`.
        field: &'static str,
        /// The value after interpolation.
        written: String,
    },

    /// A URL scheme no registered transport serves.
    #[error("{at}: {field_q}: no transport for `{scheme_q}://`; registered: {}", known.join(", "), field_q = Excerpt(field), scheme_q = Excerpt(scheme))]
    UnknownTransport {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `publish.url`.
        field: &'static str,
        /// The scheme.
        scheme: String,
        /// Registered schemes.
        known: Vec<String>,
    },

    /// An integer setting is out of range.
    #[error("{at}: {field_q} ({value}) is out of range {min}–{max}", field_q = Excerpt(field))]
    OutOfRange {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `publish.concurrency`.
        field: &'static str,
        /// The value.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },

    /// A chunk size is odd.
    #[error("{at}: {field_q} ({value} bytes) must be an even number of bytes", field_q = Excerpt(field))]
    OddSize {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `chunking.avg`.
        field: &'static str,
        /// The size in bytes.
        value: u64,
    },

    /// Chunk sizes are not ordered `min <= avg <= max`.
    #[error(
        "{at}: {lower_field} ({}{}) is larger than {upper_field} ({}{}); \
         chunk sizes must satisfy min <= avg <= max",
        human_size(*lower), default_note(*lower_is_default),
        human_size(*upper), default_note(*upper_is_default)
    )]
    SizeOrder {
        /// Location of whichever of the two values the recipe sets (`lower` if both).
        at: SourceLocation,
        /// Key path of the bound that should be smaller.
        lower_field: &'static str,
        /// Its value in bytes.
        lower: u64,
        /// Whether it came from the defaults rather than the recipe.
        lower_is_default: bool,
        /// Key path of the bound that should be larger.
        upper_field: &'static str,
        /// Its value in bytes.
        upper: u64,
        /// Whether it came from the defaults rather than the recipe.
        upper_is_default: bool,
    },

    /// A compression level outside the codec's range.
    #[error("{at}: {codec_q} level {level} out of range {min}–{max}; choose a level in that range", codec_q = Excerpt(codec))]
    LevelOutOfRange {
        /// Location of the `level` value.
        at: SourceLocation,
        /// The codec name.
        codec: String,
        /// The level as written.
        level: i64,
        /// Lowest accepted level.
        min: i64,
        /// Highest accepted level.
        max: i64,
    },

    /// `compression.level` is not an integer.
    #[error(
        "{at}: compression.level: `{written_q}` is not a valid level; write an integer such as `3`", written_q = Excerpt(written))]
    InvalidLevel {
        /// Location of the `level` value.
        at: SourceLocation,
        /// The value as written.
        written: String,
    },

    /// A level was given for a codec that takes none (`none`, `lz4`).
    #[error("{at}: codec `{codec_q}` takes no level; remove `level: {level}`", codec_q = Excerpt(codec))]
    LevelNotAccepted {
        /// Location of the `level` value.
        at: SourceLocation,
        /// The codec name.
        codec: String,
        /// The level as written.
        level: String,
    },

    /// An input path does not exist.
    #[error(
        "{at}: input `{written_q}` does not exist (resolved to {}); \
         relative paths are resolved against the recipe's folder",
        Excerpt::path(resolved), written_q = Excerpt(written))]
    InputMissing {
        /// Location of the `path` value.
        at: SourceLocation,
        /// The path as written in the recipe.
        written: String,
        /// The absolute path that was checked.
        resolved: PathBuf,
    },

    /// An input path exists but could not be inspected.
    #[error("{at}: cannot access input `{written_q}` (resolved to {}): {error}", Excerpt::path(resolved), written_q = Excerpt(written))]
    InputUnreadable {
        /// Location of the `path` value.
        at: SourceLocation,
        /// The path as written in the recipe.
        written: String,
        /// The absolute path that was checked.
        resolved: PathBuf,
        /// Why it could not be inspected.
        error: io::Error,
    },

    /// An `include` or `exclude` pattern is not a valid glob, or can never match
    /// an entry name.
    #[error("{at}: {field_q}: `{pattern_q}` {problem}", field_q = Excerpt(field), pattern_q = Excerpt(pattern))]
    InvalidGlob {
        /// Location of the pattern.
        at: SourceLocation,
        /// Key path, e.g. `inputs[0].exclude`.
        field: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong and how to fix it.
        problem: String,
    },

    /// `symlinks` is not one of `keep`, `follow`, `skip`.
    #[error(
        "{at}: {field_q}: unknown symlink policy `{written_q}`{}",
        match suggestion {
            Some(s) => format!(", did you mean `{s}`?"),
            None => "; write `keep`, `follow` or `skip`".to_owned(),
        }, written_q = Excerpt(written), field_q = Excerpt(field))]
    UnknownSymlinkPolicy {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `inputs[0].symlinks`.
        field: String,
        /// The value as written.
        written: String,
        /// The closest policy, if the value looks like a typo of one.
        suggestion: Option<&'static str>,
    },

    /// `include`, `exclude` or `symlinks` on an input that is a single file.
    #[error(
        "{at}: {field_q} applies only to directory inputs, and `{written_q}` is a file; \
         remove it, or point the input at a directory", written_q = Excerpt(written), field_q = Excerpt(field))]
    DirectoryOptionOnFile {
        /// Location of the option's value.
        at: SourceLocation,
        /// Key path, e.g. `inputs[1].exclude`.
        field: String,
        /// The input path as written.
        written: String,
    },

    /// `compression.codec` names a codec the plugin registry does not have.
    #[error(
        "{at}: unknown codec `{codec_q}`; registered: {}{}",
        known.join(", "),
        match suggestion {
            Some(s) => format!("; did you mean `{s}`?"),
            None => "; use one of these, or register the plugin that provides it".to_owned(),
        }, codec_q = Excerpt(codec))]
    UnknownCodec {
        /// Location of the `codec` value (just the file when it is the default).
        at: SourceLocation,
        /// The codec name.
        codec: String,
        /// The registered codec names, sorted.
        known: Vec<String>,
        /// The registered name closest to `codec`, if it looks like a typo of it.
        suggestion: Option<String>,
    },

    /// The codec's plugin rejected the recipe's settings (usually the level).
    #[error("{at}: codec `{codec_q}` rejected its settings: {detail_q}", codec_q = Excerpt(codec), detail_q = Excerpt(detail))]
    CodecSettings {
        /// Location of the `level` value (or of `codec` when no level is written).
        at: SourceLocation,
        /// The codec name.
        codec: String,
        /// The plugin's explanation.
        detail: String,
    },

    /// A value that must be one of a few names is not (`records.format`,
    /// `records.encoding`).
    #[error("{at}: {field_q}: unknown value `{written_q}`{fix}", written_q = Excerpt(written), field_q = Excerpt(field))]
    UnknownChoice {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `inputs[0].records.format`.
        field: String,
        /// The value as written.
        written: String,
        /// `, did you mean `x`?` or `; write one of `a`, `b``.
        fix: String,
    },

    /// A record input whose format cannot be told from its extension.
    #[error(
        "{at}: cannot tell the record format of `{written_q}` from its extension; \
         add `format: jsonl`, `csv`, `parquet` or `arrow` under `records:`", written_q = Excerpt(written))]
    RecordFormatUnknown {
        /// Location of the input's `path` value.
        at: SourceLocation,
        /// The path as written.
        written: String,
    },

    /// `records.name` names the same field as `records.data`.
    #[error(
        "{at}: `{field_q}` is both the data field and the name field; name entries by \
         another field, or remove `name:` to number them", field_q = Excerpt(field))]
    SameDataAndName {
        /// Location of the `name` value.
        at: SourceLocation,
        /// The field.
        field: String,
    },

    /// `records.prefix` would make names that are absolute or hold `.`/`..`.
    #[error(
        "{at}: {field_q}: `{written_q}` cannot start entry names: no leading `/`, no `.` or \
         `..` component; write a relative folder such as `train/`", written_q = Excerpt(written), field_q = Excerpt(field))]
    BadPrefix {
        /// Location of the value.
        at: SourceLocation,
        /// Key path.
        field: String,
        /// The value as written.
        written: String,
    },

    /// `records:` on an input that is a directory.
    #[error(
        "{at}: input `{written_q}` is a directory, but `records:` reads one file; point \
         `path` at a .jsonl, .csv, .parquet or .arrow file (one input per file)", written_q = Excerpt(written))]
    RecordsNotAFile {
        /// Location of the input's `path` value.
        at: SourceLocation,
        /// The path as written.
        written: String,
    },

    /// A key, key file or passphrase named by `encrypt:` or `sign:` is unusable.
    #[error("{at}: {field_q}: {detail_q}", field_q = Excerpt(field), detail_q = Excerpt(detail))]
    BadKey {
        /// Location of the value.
        at: SourceLocation,
        /// Key path, e.g. `encrypt.key_file`.
        field: String,
        /// What is wrong (never the secret itself).
        detail: String,
    },

    /// `encrypt:` names no passphrase, key file or recipient.
    #[error(
        "{at}: `encrypt` names no key; add `passphrase_file:`, `passphrase_env:`, \
         `key_file:` or `recipients:` (one key slot each)"
    )]
    NoKeySlot {
        /// Location of the `encrypt` mapping.
        at: SourceLocation,
    },

    /// An input path is neither a directory nor a regular file (e.g. a socket).
    #[error(
        "{at}: input `{written_q}` (resolved to {}) is neither a directory nor a regular file; \
         point it at a directory or a file",
        Excerpt::path(resolved), written_q = Excerpt(written))]
    InputNotFileOrDir {
        /// Location of the `path` value.
        at: SourceLocation,
        /// The path as written in the recipe.
        written: String,
        /// The absolute path that was checked.
        resolved: PathBuf,
    },
}

impl RecipeError {
    /// Where in the recipe the error is, for errors found inside the file.
    #[must_use]
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            Self::Read { .. } | Self::RecipeDir { .. } => None,
            Self::Yaml { at, .. }
            | Self::UnknownField { at, .. }
            | Self::MissingField { at, .. }
            | Self::NoInputs { at }
            | Self::EmptyValue { at, .. }
            | Self::UnsetVariable { at, .. }
            | Self::Interpolation { at, .. }
            | Self::InvalidSize { at, .. }
            | Self::SizeOutOfRange { at, .. }
            | Self::OddSize { at, .. }
            | Self::SizeOrder { at, .. }
            | Self::InvalidLevel { at, .. }
            | Self::LevelOutOfRange { at, .. }
            | Self::LevelNotAccepted { at, .. }
            | Self::InputMissing { at, .. }
            | Self::InputUnreadable { at, .. }
            | Self::InputNotFileOrDir { at, .. }
            | Self::UnknownChoice { at, .. }
            | Self::RecordFormatUnknown { at, .. }
            | Self::SameDataAndName { at, .. }
            | Self::BadPrefix { at, .. }
            | Self::RecordsNotAFile { at, .. }
            | Self::InvalidGlob { at, .. }
            | Self::UnknownSymlinkPolicy { at, .. }
            | Self::DirectoryOptionOnFile { at, .. }
            | Self::UnknownCodec { at, .. }
            | Self::CodecSettings { at, .. }
            | Self::NotAUrl { at, .. }
            | Self::UnknownTransport { at, .. }
            | Self::OutOfRange { at, .. }
            | Self::BadKey { at, .. }
            | Self::NoKeySlot { at } => Some(at),
        }
    }
}

/// Renders a size for messages: `8 KiB`, `1 MiB`, or `65537 bytes`.
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn default_note(is_default: bool) -> &'static str {
    if is_default { ", the default" } else { "" }
}

fn unknown_field_fix(suggestion: Option<&str>, expected: &[String]) -> String {
    match suggestion {
        Some(s) => format!(", did you mean `{s}`?"),
        None if expected.is_empty() => "; remove it".to_owned(),
        None => {
            let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
            format!("; expected one of {}", list.join(", "))
        }
    }
}

fn missing_field_fix(field: &str) -> &'static str {
    match field {
        "inputs" => "add `inputs:` with at least one `- path: <directory or file>`",
        "output" => "add `output: <archive>.hxz`",
        "path" => "each input needs `path: <directory or file>`",
        "data" => {
            "name the field holding each record's bytes, e.g. `data: image`, or write \
             `data: null` to store each record whole"
        }
        _ => "add it",
    }
}

/// Converts a `serde-saphyr` error into a [`RecipeError`], keeping its location.
pub(crate) fn from_yaml(file: &Path, err: &YamlError) -> RecipeError {
    let at = match err.location() {
        Some(loc) => SourceLocation::new(file, &loc),
        None => SourceLocation {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
        },
    };
    let mut inner = err.without_snippet();
    while let YamlError::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    match inner {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => RecipeError::UnknownField {
            at,
            suggestion: closest(field, expected).map(str::to_owned),
            field: field.clone(),
            expected: expected.iter().map(|e| (*e).to_owned()).collect(),
        },
        YamlError::SerdeMissingField { field, .. } => RecipeError::MissingField {
            at,
            field: (*field).to_owned(),
        },
        other => RecipeError::Yaml {
            at,
            detail: printable(&UserMessageFormatter.format_message(other)),
        },
    }
}

/// The allowed key most similar to `field`, if it is similar enough to be a typo.
pub(crate) fn closest<'a>(field: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|candidate| (strsim::jaro_winkler(field, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Escapes control characters, so parser text cannot disturb a terminal.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}
