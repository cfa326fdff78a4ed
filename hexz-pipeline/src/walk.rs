//! The ingest walk: every input of a plan, in a deterministic order, filtered by
//! the input's `include`/`exclude` globs and symlink policy.
//!
//! Directory contents are visited depth-first, sorted by file name at each
//! level, so the order (and the archive's bytes) depends only on the tree.
//! Filtering, for a directory input:
//!
//! * An entry whose name matches an `exclude` glob is left out; an excluded
//!   folder is not entered at all, so nothing beneath it is archived.
//! * With `include` globs, a file or link is kept only if its name matches one
//!   of them. Folders are always entered (a glob may match deeper names); a
//!   folder is kept if its own name matches, or if anything beneath it is kept,
//!   so extraction can restore its mode, owner and mtime. Such a folder is
//!   archived just before its first kept descendant, which keeps walk order.
//! * `symlinks: keep` archives a link as a link; `skip` leaves it out; `follow`
//!   archives what it points to under the link's name and walks linked
//!   folders, refusing loops and dangling links.

use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use crate::error::{PipelineError, Result};
use crate::recipe::{InputPlan, Plan, SymlinkPolicy};

/// One thing to add, found by the walk.
pub(crate) struct Found {
    /// Where it is on disk (for `follow`, the path through the link).
    pub(crate) path: PathBuf,
    /// The entry name.
    pub(crate) name: String,
    /// Its metadata (of the link's target under `follow`).
    pub(crate) meta: Metadata,
    /// Index of the input it came from, in `plan.inputs`.
    pub(crate) input: usize,
}

/// Walk every input of `plan` in order, calling `visit` for each entry to
/// archive. Returns how many entries the filters and the symlink policy left
/// out (an excluded folder counts once, whatever it holds).
pub(crate) fn walk(plan: &Plan, visit: &mut dyn FnMut(Found) -> Result<()>) -> Result<u64> {
    let output = absolute(&plan.output);
    let mut excluded = 0;
    for (index, input) in plan.inputs.iter().enumerate() {
        let root = &input.path;
        // An input given as a link to a folder is walked as that folder.
        let meta = fs::metadata(root).map_err(PipelineError::io(root))?;
        if meta.is_dir() {
            excluded += walk_dir(index, input, &output, visit)?;
            continue;
        }
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or(PipelineError::UnsupportedInput {
                path: root.clone(),
                reason: "file name is not valid UTF-8",
            })?
            .to_string();
        visit(Found {
            path: root.clone(),
            name,
            meta,
            input: index,
        })?;
    }
    Ok(excluded)
}

fn walk_dir(
    index: usize,
    input: &InputPlan,
    output: &Path,
    visit: &mut dyn FnMut(Found) -> Result<()>,
) -> Result<u64> {
    let root = &input.path;
    let filter = Filter::new(input)?;
    let mut excluded = 0;
    // Folders not archived yet because nothing beneath them was kept so far:
    // always a chain of ancestors of the current item, with their depths.
    let mut pending: Vec<(usize, Found)> = Vec::new();
    let mut walker = WalkDir::new(root)
        .min_depth(1)
        .follow_links(input.symlinks == SymlinkPolicy::Follow)
        .sort_by_file_name()
        .into_iter();
    while let Some(item) = walker.next() {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                // Under `follow`, loops and dangling links are reported before the
                // entry is seen: an excluded one is left out like any other.
                let name = e
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .and_then(Path::to_str);
                if name.is_some_and(|name| filter.excludes(name)) {
                    excluded += 1;
                    continue;
                }
                return Err(walk_error(e, root));
            }
        };
        let path = item.path();
        if is_own_output(path, output) {
            continue;
        }
        let is_dir = item.file_type().is_dir();
        while pending
            .last()
            .is_some_and(|(depth, _)| *depth >= item.depth())
        {
            pending.pop();
            excluded += 1;
        }
        if input.symlinks == SymlinkPolicy::Skip && item.path_is_symlink() {
            excluded += 1;
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(path);
        let name = rel
            .to_str()
            .ok_or(PipelineError::UnsupportedInput {
                path: path.to_path_buf(),
                reason: "path is not valid UTF-8; rename it or exclude it",
            })?
            .to_string();
        if filter.excludes(&name) {
            excluded += 1;
            if is_dir {
                walker.skip_current_dir();
            }
            continue;
        }
        let included = filter.includes(&name);
        if !included && !is_dir {
            excluded += 1;
            continue;
        }
        let meta = item.metadata().map_err(|e| walk_error(e, root))?;
        let found = Found {
            path: path.to_path_buf(),
            name,
            meta,
            input: index,
        };
        if included {
            for (_, dir) in pending.drain(..) {
                visit(dir)?;
            }
            visit(found)?;
        } else {
            pending.push((item.depth(), found));
        }
    }
    Ok(excluded + pending.len() as u64)
}

/// Whether the walk of the folder input `input` leaves out what is at `rel`
/// (relative to the folder): an `exclude` glob matches it or a folder above it,
/// or `include` globs are given and none matches it. A name that is not UTF-8
/// is not left out (the walk refuses it).
pub(crate) fn leaves_out(input: &InputPlan, rel: &Path) -> Result<bool> {
    let filter = Filter::new(input)?;
    let Some(name) = rel.to_str() else {
        return Ok(false);
    };
    let mut prefix = String::new();
    for part in name.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if filter.excludes(&prefix) {
            return Ok(true);
        }
    }
    Ok(!filter.includes(name))
}

/// The compiled globs of one input.
struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    fn new(input: &InputPlan) -> Result<Self> {
        Ok(Self {
            include: glob_set(input, &input.include)?,
            exclude: glob_set(input, &input.exclude)?,
        })
    }

    fn excludes(&self, name: &str) -> bool {
        self.exclude.as_ref().is_some_and(|set| set.is_match(name))
    }

    fn includes(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|set| set.is_match(name))
    }
}

fn glob_set(input: &InputPlan, patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    // Plans are validated, so this happens only for a plan built by hand.
    let invalid = |_| PipelineError::UnsupportedInput {
        path: input.path.clone(),
        reason: "an include or exclude pattern is not a valid glob",
    };
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(crate::recipe::glob(pattern).map_err(invalid)?);
    }
    set.build().map(Some).map_err(invalid)
}

/// A walk error, with symlink loops and dangling links under `follow` told
/// apart from plain I/O errors.
fn walk_error(e: walkdir::Error, root: &Path) -> PipelineError {
    let path = e
        .path()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.to_path_buf());
    if let Some(ancestor) = e.loop_ancestor() {
        return PipelineError::SymlinkLoop {
            path,
            ancestor: ancestor.to_path_buf(),
        };
    }
    let dangling = e
        .io_error()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    if dangling {
        let target = fs::read_link(&path).unwrap_or_default();
        return PipelineError::DanglingSymlink { path, target };
    }
    PipelineError::Io {
        path,
        error: e
            .into_io_error()
            .unwrap_or_else(|| std::io::Error::other("directory walk failed")),
    }
}

pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The archive being written (or its temporary file) must not archive itself.
fn is_own_output(path: &Path, output: &Path) -> bool {
    let path = absolute(path);
    if path == output {
        return true;
    }
    let (Some(dir), Some(out_dir), Some(name), Some(out_name)) = (
        path.parent(),
        output.parent(),
        path.file_name().and_then(|n| n.to_str()),
        output.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    dir == out_dir && name.starts_with(&format!(".{out_name}.")) && name.ends_with(".tmp")
}
