//! The checked plan: what the pipeline stages receive and may trust.

use std::ops::RangeInclusive;
use std::path::PathBuf;

const KIB: u32 = 1024;
const MIB: u32 = 1024 * 1024;

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
}

/// FastCDC chunk-size bounds in bytes, with `min <= avg <= max`, all even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkingPlan {
    /// Smallest chunk, except at the end of a file.
    pub min: u32,
    /// Target average chunk size.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

impl ChunkingPlan {
    /// Default `min`: 16 KiB.
    pub const DEFAULT_MIN: u32 = 16 * KIB;
    /// Default `avg`: 64 KiB.
    pub const DEFAULT_AVG: u32 = 64 * KIB;
    /// Default `max`: 256 KiB.
    pub const DEFAULT_MAX: u32 = 256 * KIB;
    /// Accepted `min`: 64 bytes to 1 MiB (FastCDC's limits).
    pub const MIN_RANGE: RangeInclusive<u32> = 64..=MIB;
    /// Accepted `avg`: 256 bytes to 4 MiB.
    pub const AVG_RANGE: RangeInclusive<u32> = 256..=4 * MIB;
    /// Accepted `max`: 1 KiB to 16 MiB.
    pub const MAX_RANGE: RangeInclusive<u32> = KIB..=16 * MIB;
}

impl Default for ChunkingPlan {
    fn default() -> Self {
        Self {
            min: Self::DEFAULT_MIN,
            avg: Self::DEFAULT_AVG,
            max: Self::DEFAULT_MAX,
        }
    }
}

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

impl Default for CompressionPlan {
    fn default() -> Self {
        Self {
            codec: Self::DEFAULT_CODEC.to_owned(),
            level: Some(Self::DEFAULT_ZSTD_LEVEL),
        }
    }
}
