//! Recipes: the YAML file that says what to archive and how.
//!
//! A recipe is read in two steps (raw config → checked plan): the text is
//! deserialized into raw structs that reject unknown keys, then validated into a
//! [`Plan`] whose paths are absolute, defaults filled in and bounds checked, so
//! the stages can use it without checking again.
//!
//! # Schema
//!
//! ```yaml
//! inputs:                  # required, at least one
//!   - path: data/          # a directory or a single file; must exist
//! output: out/sample.hxz   # required; the archive to write
//! chunking:                # optional; FastCDC bounds, each optional
//!   min: 16KiB             # 64 B – 1 MiB,   default 16 KiB
//!   avg: 64KiB             # 256 B – 4 MiB,  default 64 KiB
//!   max: 256KiB            # 1 KiB – 16 MiB, default 256 KiB
//! compression:             # optional
//!   codec: zstd            # default zstd; `none`, `lz4`, `zstd`, or a registered plugin
//!   level: 3               # zstd: 1–22, default 3; `none` and `lz4` take no level
//! publish:                 # optional; upload the archive after building it
//!   url: s3://${BUCKET}/a.hxz  # required; a URL of a writable transport
//!   part_size: 8MiB        # 5 MiB – 4 GiB, default 8 MiB
//!   concurrency: 4         # parts in flight, 1 – 64, default 4
//! encrypt:                 # optional; see the `encrypt:`/`sign:` stages below
//!   key_file: data.key
//! sign:                    # optional
//!   key: signing.key
//! ```
//!
//! `encrypt:` takes `passphrase_file`, `passphrase_env`, `key_file` and
//! `recipients` (one key slot each, at least one) and `kdf: { memory, iterations,
//! lanes }`; `sign:` takes `key`, `passphrase_file`/`passphrase_env` for a
//! protected key, and `detached`. Keys are read and checked at validation; errors
//! point at the value.
//!
//! Flow style (`chunking: { min: 16KiB, avg: 64KiB, max: 256KiB }`) is the same
//! thing. Unknown keys are errors, with a did-you-mean suggestion for typos.
//!
//! * **Sizes** are YAML integers (bytes) or strings read by `parse-size`:
//!   `65536`, `64KiB`, `64 KiB`, `1MiB`. `KiB`/`MiB` are powers of 1024, `KB`/`MB`
//!   (and bare `K`/`M`) powers of 1000. All three sizes must be even and ordered
//!   `min <= avg <= max`.
//! * **Codecs** are kept as strings: this module only knows the level rules of
//!   `none`, `lz4` and `zstd`; whether a name exists is decided by the codec
//!   registry when the pipeline is built. Other codecs keep their level as written.
//! * **Paths** (`inputs[].path`, `output`) go through `${VAR}` interpolation
//!   (`$$` is a literal `$`; any other `$` is an error), then relative paths are
//!   resolved against the recipe's folder. `publish.url` is interpolated too
//!   (and must be a URL). Other values are not interpolated.
//!
//! # Error locations
//!
//! Errors name `file:line:column` (1-based, column in characters). YAML syntax,
//! type, unknown-key and missing-key errors take the location `serde-saphyr`
//! reports. Problems found afterwards (ranges, levels, variables, missing
//! inputs) use the position of the offending value, which the raw structs
//! capture with [`serde_saphyr::Spanned`], so no searching of the source text
//! is needed.
//!
//! # Example
//!
//! ```
//! use hexz_pipeline::recipe::parse_recipe;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("data"))?;
//! let text = "inputs:\n  - path: ${DATA}\noutput: out/sample.hxz\n\
//!             chunking: { min: 16KiB, avg: 64KiB, max: 256KiB }\n";
//! let env = |name: &str| (name == "DATA").then(|| "data/".to_owned());
//! let plan = parse_recipe(text, &dir.path().join("recipe.yaml"), &env)?;
//! assert!(plan.inputs[0].path.ends_with("data"));
//! assert_eq!(plan.chunking.avg, 64 * 1024);
//! assert_eq!(plan.compression.level, Some(3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod crypto;
mod dir_options;
mod error;
mod interpolate;
mod plan;
mod publish;
mod raw;
mod records;
mod validate;

use std::path::{Path, PathBuf};

pub use crypto::{EncryptPlan, PassphraseSource, SignPlan, read_signing_key, strip_newline};
pub(crate) use dir_options::glob;
pub(crate) use error::closest;
pub use error::{InterpolationProblem, RecipeError, SourceLocation};
pub use plan::{ChunkingPlan, CompressionPlan, CompressionSpans, InputPlan, Plan, SymlinkPolicy};
pub use publish::PublishPlan;
pub use records::{DataEncoding, DataField, RecordFormat, RecordsPlan};

/// Reads, parses and validates the recipe at `path`, interpolating `${VAR}`
/// from the process environment (a variable whose value is not UTF-8 counts
/// as unset).
///
/// # Errors
///
/// [`RecipeError::Read`] if the file cannot be read; otherwise as [`parse_recipe`].
pub fn load_recipe(path: &Path) -> Result<Plan, RecipeError> {
    let text = std::fs::read_to_string(path).map_err(|error| RecipeError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_recipe(&text, path, &|name| std::env::var(name).ok())
}

/// Parses and validates recipe `text`, as if read from `recipe_path`.
///
/// `recipe_path` names the file in error messages, and its folder (made
/// absolute against the working directory) is where relative paths resolve.
/// `env` looks up the names used in `${VAR}`; pass a closure over a map in tests.
/// Input paths are checked for existence on the filesystem.
///
/// # Errors
///
/// The first problem found, as a [`RecipeError`] pointing at its location.
pub fn parse_recipe(
    text: &str,
    recipe_path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, RecipeError> {
    let raw: raw::RawRecipe =
        serde_saphyr::from_str(text).map_err(|e| error::from_yaml(recipe_path, &e))?;
    let recipe_dir = recipe_dir(recipe_path)?;
    let cx = validate::Context {
        file: recipe_path,
        recipe_dir: &recipe_dir,
        env,
    };
    validate::validate(&raw, &cx)
}

/// The absolute folder holding `recipe_path`, with `.` components removed.
fn recipe_dir(recipe_path: &Path) -> Result<PathBuf, RecipeError> {
    let parent = recipe_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(parent)
        .map(|dir| dir.components().collect())
        .map_err(|error| RecipeError::RecipeDir {
            path: recipe_path.to_path_buf(),
            error,
        })
}
