//! The error type of the pipeline.

use std::io;
use std::path::PathBuf;

use hexz_format::Hash32;
use hexz_format::error::Excerpt;

use crate::recipe::RecipeError;

/// Everything building, reading or extracting through the pipeline can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The recipe is invalid.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// The archive layer failed (corrupt archive, I/O, missing entry, ...).
    #[error(transparent)]
    Format(#[from] hexz_format::Error),
    /// A plugin name that is not registered.
    #[error("unknown {kind} `{}`; registered: {}", Excerpt(name), known.join(", "))]
    UnknownPlugin {
        /// `"compressor"` or `"transport"`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The registered names.
        known: Vec<String>,
    },
    /// A transport could not open a location (bad URL, missing object, network or
    /// server error after retries).
    #[error("{error}")]
    Transport {
        /// The path or URL.
        location: String,
        /// The transport's error; its message names the location.
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object at a URL does not exist (HTTP 404, no such key).
    #[error("{error}")]
    NotFound {
        /// The URL.
        location: String,
        /// The transport's error; its message names the location.
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Publishing a thin child whose parent is not where the child's readers will
    /// look for it (its hint, resolved against the destination URL).
    #[error(
        "cannot publish {} to {}: its parent {root} is not at {} ({reason}); \
         publish the parent there first",
        Excerpt::path(archive),
        Excerpt(url),
        Excerpt(location)
    )]
    PublishParent {
        /// The local archive (a thin child).
        archive: PathBuf,
        /// The destination URL.
        url: String,
        /// The parent's root hash.
        root: Box<Hash32>,
        /// Where readers of the published child will open the parent.
        location: String,
        /// What is there instead: nothing, or another archive.
        reason: String,
    },
    /// Publishing a thin child whose parent hint, resolved against the
    /// destination, leads where its readers do not look by default (another
    /// host or bucket, outside the destination's folder): nothing was sent there.
    #[error(
        "cannot publish {} to {url}: its parent {root} would be looked for at {location}, \
         {reason}, which readers do not follow by default; allow the place (hexz publish \
         --allow-parent-url PREFIX; readers then need it too) or publish a self-contained \
         copy (hexz squash)",
        archive.display()
    )]
    PublishParentRefused {
        /// The local archive (a thin child).
        archive: PathBuf,
        /// The destination URL.
        url: String,
        /// The parent's root hash.
        root: Box<Hash32>,
        /// The hint resolved against the destination.
        location: String,
        /// Why it is not followed.
        reason: hexz_format::HintRefusal,
    },
    /// Publishing failed: the upload was aborted and nothing new is visible at
    /// the destination.
    #[error(
        "publishing {} to {} failed: {error}",
        Excerpt::path(archive),
        Excerpt(url)
    )]
    Publish {
        /// The local archive.
        archive: PathBuf,
        /// The destination URL.
        url: String,
        /// Why.
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A plugin rejected its settings.
    #[error("{}: {}", Excerpt(plugin), Excerpt(detail))]
    PluginSettings {
        /// The plugin.
        plugin: String,
        /// What it rejected.
        detail: String,
    },
    /// A local file operation failed.
    #[error("{}: {error}", Excerpt::path(path))]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        #[source]
        error: io::Error,
    },
    /// An input path cannot be represented as an entry name.
    #[error("{}: {reason}", Excerpt::path(path))]
    UnsupportedInput {
        /// The input file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// An archive entry would be written outside the extraction folder, or through
    /// a symbolic link.
    #[error("refusing to extract `{}`: {reason}", Excerpt(name))]
    UnsafePath {
        /// The entry.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// `symlinks: follow` met a link that leads back to a folder containing it.
    #[error(
        "{}: symbolic link loop: it leads back to {}, which contains it; \
         exclude it, or use `symlinks: keep`",
        Excerpt::path(path),
        Excerpt::path(ancestor)
    )]
    SymlinkLoop {
        /// The link.
        path: PathBuf,
        /// The folder it leads back to.
        ancestor: PathBuf,
    },
    /// `symlinks: follow` met a link whose target does not exist.
    #[error(
        "{}: symbolic link to `{}` points to nothing, so it cannot be followed; \
         exclude it, or use `symlinks: keep`",
        Excerpt::path(path),
        Excerpt::path(target)
    )]
    DanglingSymlink {
        /// The link.
        path: PathBuf,
        /// Its target, as stored in the link.
        target: PathBuf,
    },
    /// Extraction could not give an entry its recorded owner.
    #[error(
        "cannot give {} the owner {uid}:{gid}: {error}; use --no-same-owner to keep \
         the extracting user as owner",
        Excerpt::path(path)
    )]
    Chown {
        /// The extracted path.
        path: PathBuf,
        /// Recorded user id.
        uid: u32,
        /// Recorded group id.
        gid: u32,
        /// Why it failed (part of the message, not a `source`).
        error: io::Error,
    },
    /// A record source (JSONL, CSV, Parquet, Arrow) is malformed or does not
    /// fit its `records:` options.
    #[error(transparent)]
    Records(Box<crate::records::RecordError>),
    /// A thin build's parent cannot be opened.
    #[error("parent `{}`: {error}", Excerpt(location))]
    Parent {
        /// The parent as given (recipe `parent:` or `--parent`).
        location: String,
        /// Why it cannot be opened.
        #[source]
        error: Box<PipelineError>,
    },
    /// A thin build would replace its own parent.
    #[error(
        "{}: the output is the parent itself; write the child elsewhere",
        Excerpt::path(path)
    )]
    ParentIsOutput {
        /// The path given as both parent and output.
        path: PathBuf,
    },
    /// `hexz squash` found something it cannot copy faithfully.
    #[error("cannot squash {}: {}", Excerpt(archive), Excerpt(reason))]
    Squash {
        /// The archive.
        archive: String,
        /// What is wrong.
        reason: String,
    },
    /// A column asked of [`crate::batches`] that neither the catalog nor the
    /// archive's user columns have.
    #[error("unknown column `{}`; known: {}", Excerpt(name), Excerpt(&known.join(", ")))]
    UnknownColumn {
        /// The name asked for.
        name: String,
        /// Built-in and user column names.
        known: Vec<String>,
    },
    /// A loader shard that cannot be served (see [`crate::sampler`]).
    #[error(transparent)]
    Shard(#[from] crate::sampler::ShardError),
    /// An extraction target exists and overwriting was not allowed.
    #[error(
        "{} already exists (use --overwrite to replace it)",
        Excerpt::path(path)
    )]
    Exists {
        /// The path.
        path: PathBuf,
    },
}

impl PipelineError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |error| Self::Io { path, error }
    }
}

/// Result alias of this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
