//! `hexz build`: run a validated [`Plan`] — ingest, chunk, compress — into an
//! archive.

use std::fs::{self, File, Metadata};
use std::io::{IsTerminal, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hexz_format::layout::SECTION_PROVENANCE;
use hexz_format::{ArchiveWriter, ChunkParams, EntryMeta, PendingFile, Summary, WriterOptions};
use indicatif::ProgressBar;
use walkdir::WalkDir;

use crate::error::{PipelineError, Result};
use crate::progress::bytes_bar;
use crate::recipe::Plan;
use crate::registry::Registry;

/// Settings of a build run that are not part of the recipe.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// No progress bar.
    pub quiet: bool,
    /// Worker threads for hashing and compression (`None`: all cores).
    pub threads: Option<usize>,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The archive written.
    pub output: PathBuf,
    /// Root hash and counts.
    pub summary: Summary,
    /// Input files, directories and symlinks seen.
    pub inputs: InputCount,
    /// Wall time.
    pub elapsed: Duration,
}

/// Counts of an ingest walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputCount {
    /// Regular files.
    pub files: u64,
    /// Directories (inputs' roots excluded).
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Sockets, FIFOs and devices, which are skipped.
    pub skipped: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

/// One thing to add, found by the walk.
struct Found {
    path: PathBuf,
    name: String,
    meta: Metadata,
}

/// Count the inputs of `plan` without reading file contents (used for progress
/// totals and `--dry-run`).
pub fn count_inputs(plan: &Plan) -> Result<InputCount> {
    let mut count = InputCount::default();
    walk(plan, &mut |found| {
        tally(&mut count, &found.meta);
        Ok(())
    })?;
    Ok(count)
}

fn tally(count: &mut InputCount, meta: &Metadata) {
    let t = meta.file_type();
    if t.is_file() {
        count.files += 1;
        count.bytes += meta.len();
    } else if t.is_dir() {
        count.dirs += 1;
    } else if t.is_symlink() {
        count.symlinks += 1;
    } else {
        count.skipped += 1;
    }
}

/// Walk every input in a deterministic order (directory contents sorted by file
/// name), calling `visit` for each entry to archive.
fn walk(plan: &Plan, visit: &mut dyn FnMut(Found) -> Result<()>) -> Result<()> {
    let output = absolute(&plan.output);
    for input in &plan.inputs {
        let root = &input.path;
        let meta = fs::symlink_metadata(root).map_err(PipelineError::io(root))?;
        if !meta.is_dir() {
            let name = root
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or(PipelineError::UnsupportedInput {
                    path: root.clone(),
                    reason: "file name is not valid UTF-8",
                })?
                .to_string();
            let meta = fs::metadata(root).map_err(PipelineError::io(root))?;
            visit(Found {
                path: root.clone(),
                name,
                meta,
            })?;
            continue;
        }
        let walker = WalkDir::new(root)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name();
        for item in walker {
            let item = item.map_err(|e| {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.clone());
                PipelineError::Io {
                    path,
                    error: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
                }
            })?;
            let path = item.path();
            if is_own_output(path, &output) {
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
            let meta = item.metadata().map_err(|e| PipelineError::Io {
                path: path.to_path_buf(),
                error: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("metadata")),
            })?;
            visit(Found {
                path: path.to_path_buf(),
                name,
                meta,
            })?;
        }
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
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

fn entry_meta(meta: &Metadata) -> EntryMeta {
    EntryMeta {
        mode: meta.mode(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
        columns: Vec::new(),
    }
}

/// Writer settings for `plan`, with the compressor resolved in `registry`.
pub fn writer_options(
    plan: &Plan,
    registry: &Registry,
    threads: Option<usize>,
) -> Result<WriterOptions> {
    let compressor = registry.compressor(&plan.compression.codec, plan.compression.level)?;
    let mut options = WriterOptions::new(compressor);
    options.chunking = ChunkParams {
        min: plan.chunking.min,
        avg: plan.chunking.avg,
        max: plan.chunking.max,
    };
    options.threads = threads;
    Ok(options)
}

/// Run `plan`: walk the inputs, write the archive atomically to `plan.output`.
pub fn build(plan: &Plan, registry: &Registry, options: &BuildOptions) -> Result<BuildReport> {
    let started = Instant::now();
    let writer_options = writer_options(plan, registry, options.threads)?;
    if let Some(dir) = plan.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(PipelineError::io(dir))?;
    }
    // The counting walk only feeds the progress bar's total and ETA: skip it when
    // nothing is drawn.
    let total = if options.quiet || !std::io::stderr().is_terminal() {
        0
    } else {
        count_inputs(plan)?.bytes
    };
    let bar = bytes_bar(total, options.quiet, "building");
    let mut writer = ArchiveWriter::create(&plan.output, writer_options)?;
    let mut seen = InputCount::default();
    walk(plan, &mut |found| {
        tally(&mut seen, &found.meta);
        add_found(&mut writer, &found, &bar)?;
        if seen.files % 64 == 0 {
            bar.set_message(format!(
                "{} entries",
                seen.files + seen.dirs + seen.symlinks
            ));
        }
        Ok(())
    })?;
    writer.add_section(SECTION_PROVENANCE, false, provenance(plan, &seen))?;
    let (_, summary) = writer.finish()?;
    bar.finish_and_clear();
    Ok(BuildReport {
        output: plan.output.clone(),
        summary,
        inputs: seen,
        elapsed: started.elapsed(),
    })
}

fn add_found(
    writer: &mut ArchiveWriter<PendingFile>,
    found: &Found,
    bar: &ProgressBar,
) -> Result<()> {
    let t = found.meta.file_type();
    let meta = entry_meta(&found.meta);
    if t.is_file() {
        let file = File::open(&found.path).map_err(PipelineError::io(&found.path))?;
        let mut counted = CountingReader { inner: file, bar };
        writer
            .add_file(&found.name, &mut counted, meta)
            .map_err(|e| match e {
                hexz_format::Error::Input { error, .. } => PipelineError::Io {
                    path: found.path.clone(),
                    error,
                },
                other => other.into(),
            })?;
    } else if t.is_dir() {
        writer.add_dir(&found.name, meta)?;
    } else if t.is_symlink() {
        let target = fs::read_link(&found.path).map_err(PipelineError::io(&found.path))?;
        let target = target.to_str().ok_or(PipelineError::UnsupportedInput {
            path: found.path.clone(),
            reason: "symlink target is not valid UTF-8",
        })?;
        writer.add_symlink(&found.name, target, meta)?;
    }
    Ok(())
}

struct CountingReader<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The provenance section: tool, normalized recipe, input counts. No clock times
/// and no absolute paths, so rebuilding gives the same bytes.
fn provenance(plan: &Plan, seen: &InputCount) -> Vec<u8> {
    let recipe: serde_json::Value = serde_json::from_str(&plan.normalized)
        .unwrap_or(serde_json::Value::String(plan.normalized.clone()));
    let value = serde_json::json!({
        "tool": format!("hexz {}", env!("CARGO_PKG_VERSION")),
        "recipe": recipe,
        "inputs": {
            "files": seen.files,
            "dirs": seen.dirs,
            "symlinks": seen.symlinks,
            "skipped": seen.skipped,
            "bytes": seen.bytes,
        },
    });
    serde_json::to_vec(&value).unwrap_or_default()
}
