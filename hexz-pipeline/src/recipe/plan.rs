//! The checked plan: what the pipeline stages receive and may trust.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::error::SourceLocation;

/// A validated recipe.
///
/// Every path is absolute, every default is filled in, and every bound listed
/// in the [module docs](super) holds. Inputs existed when the recipe was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The recipe file as the caller named it (used in messages).
    pub recipe_path: PathBuf,
    /// The absolute folder of the recipe; relative paths were resolved against it.
    pub recipe_dir: PathBuf,
    /// What to archive, in recipe order; never empty.
    pub inputs: Vec<InputPlan>,
    /// The absolute path of the archive to write.
    pub output: PathBuf,
    /// Content-defined chunking bounds.
    pub chunking: ChunkingPlan,
    /// Chunk compression.
    pub compression: CompressionPlan,
    /// Where the recipe wrote the compression settings, for errors found when the
    /// codec is resolved against a plugin registry (see [`crate::build::compressor`]).
    pub compression_at: CompressionSpans,
    /// Where to upload the archive after building it (not part of the
    /// provenance: publishing elsewhere does not change the archive).
    pub publish: Option<super::publish::PublishPlan>,
    /// Thin snapshot: the parent archive, a URL or an absolute path (a relative
    /// path in the recipe is resolved against the recipe's folder). `hexz build
    /// --parent` replaces it.
    pub parent: Option<String>,
    /// The `encrypt:` stage, when the recipe has one.
    pub encrypt: Option<super::crypto::EncryptPlan>,
    /// The `sign:` stage, when the recipe has one.
    pub sign: Option<super::crypto::SignPlan>,
    /// Canonical JSON of the validated recipe, for provenance: compact, keys sorted,
    /// sizes as plain integers, defaults filled in, paths as written in the recipe
    /// (before `${VAR}` interpolation and resolution, so no environment values leak).
    pub normalized: String,
}

/// One input: a directory to walk or a single file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPlan {
    /// The absolute path, after interpolation and resolution against the recipe's folder.
    pub path: PathBuf,
    /// The path as written in the recipe.
    pub written: String,
    /// Directory inputs: globs (valid `globset` syntax, `*` not crossing `/`) an
    /// entry name must match, any of them, to be archived. Empty: everything.
    pub include: Vec<String>,
    /// Directory inputs: globs whose matches are left out; a matching folder is
    /// left out with everything in it. Exclusion wins over inclusion.
    pub exclude: Vec<String>,
    /// Directory inputs: what to do with symbolic links.
    pub symlinks: SymlinkPolicy,
    /// Set when the input is a record source (a file whose records become entries).
    pub records: Option<super::records::RecordsPlan>,
}

/// What a directory walk does with a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SymlinkPolicy {
    /// Archive the link itself (its target as text). The default.
    #[default]
    Keep,
    /// Archive what the link points to, under the link's name; a link to a
    /// folder is walked. Loops and dangling links are errors.
    Follow,
    /// Leave links out.
    Skip,
}

impl SymlinkPolicy {
    /// Every policy, in the order messages list them.
    pub const ALL: [SymlinkPolicy; 3] = [Self::Keep, Self::Follow, Self::Skip];

    /// The name written in recipes: `keep`, `follow`, `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Follow => "follow",
            Self::Skip => "skip",
        }
    }
}

impl fmt::Display for SymlinkPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// FastCDC chunk-size bounds in bytes, with `min <= avg <= max`, all even: the
/// format's own parameters (defaults and accepted ranges are defined there).
pub type ChunkingPlan = hexz_format::ChunkParams;

/// Chunk compression settings.
///
/// `codec` is only checked against the codecs this module knows the level rules
/// of (`none`, `lz4`, `zstd`); other names pass through and are resolved
/// against the codec registry by the stage that builds the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionPlan {
    /// Codec name as written, e.g. `zstd`.
    pub codec: String,
    /// Codec level: always `Some` for `zstd`, always `None` for `none` and `lz4`,
    /// as written for other codecs.
    pub level: Option<i32>,
    /// Thin children: store a new chunk as a delta against the parent's chunk
    /// at the same place of the same file when that is smaller (codecs with a
    /// delta form, zstd; FORMAT.md §14.3.6). `false`: every chunk whole (reads
    /// of the child then read no base chunks). Default `true`.
    pub deltas: bool,
}

impl CompressionPlan {
    /// Codec used when the recipe names none.
    pub const DEFAULT_CODEC: &'static str = "zstd";
    /// zstd level used when the recipe gives none.
    pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
    /// Accepted zstd levels.
    pub const ZSTD_LEVELS: RangeInclusive<i32> = 1..=22;
    /// Codecs that take no level.
    pub const LEVELLESS_CODECS: &'static [&'static str] = &["none", "lz4"];
}

/// Where the recipe set `compression.codec` and `compression.level`; `None` when
/// the value is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompressionSpans {
    /// Location of the `codec` value.
    pub codec: Option<SourceLocation>,
    /// Location of the `level` value.
    pub level: Option<SourceLocation>,
}

impl Default for CompressionPlan {
    fn default() -> Self {
        Self {
            codec: Self::DEFAULT_CODEC.to_owned(),
            level: Some(Self::DEFAULT_ZSTD_LEVEL),
            deltas: true,
        }
    }
}
