//! `hexz build`: run a validated [`Plan`] — ingest, chunk, compress — into an
//! archive.

use std::fs::{self, File, Metadata};
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hexz_format::destination::{self, DestinationError, Writes};
use hexz_format::layout::SECTION_PROVENANCE;
use hexz_format::{
    ArchiveWriter, Compressor, EntryKind, EntryMeta, Hash32, Owner, ParentSet, Summary,
    WriterOptions,
};
use indicatif::ProgressBar;

use crate::digest::{InputDigest, ProgressReader};
use crate::error::{PipelineError, Result};
use crate::progress::bytes_bar;
use crate::recipe::{Plan, RecipeError, SourceLocation};
use crate::registry::Registry;
use crate::walk::{Found, walk};

/// Settings of a build run that are not part of the recipe.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// No progress bar.
    pub quiet: bool,
    /// Worker threads for hashing and compression (`None`: all cores).
    pub threads: Option<usize>,
    /// Replace a file at the output (or its detached signature) that is not a
    /// hexz archive (`--force`); never a read-only file, a folder or an input.
    pub force: bool,
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
    /// The detached signature written next to the archive (`sign: { detached: true }`).
    pub signature_file: Option<PathBuf>,
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
    /// Entries left out by `include`/`exclude` globs or `symlinks: skip` (an
    /// excluded folder counts once, whatever it holds).
    pub excluded: u64,
    /// Records of record inputs (`records:`); [`count_inputs`] leaves it 0.
    pub records: u64,
    /// Bytes of regular files and of records' data ([`count_inputs`] counts a
    /// record file's size instead).
    pub bytes: u64,
}

/// Count the inputs of `plan` without reading file contents (used for progress
/// totals and `--dry-run`).
pub fn count_inputs(plan: &Plan) -> Result<InputCount> {
    let mut count = InputCount::default();
    count.excluded = walk(plan, &mut |found| {
        if plan.inputs[found.input].records.is_some() {
            count.bytes += found.meta.len();
            return Ok(());
        }
        tally(&mut count, &found.meta);
        Ok(())
    })?;
    Ok(count)
}

pub(crate) fn tally(count: &mut InputCount, meta: &Metadata) {
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

/// Mode, mtime and owner of a file, as entry metadata (no columns).
pub(crate) fn entry_meta(meta: &Metadata) -> EntryMeta {
    EntryMeta {
        mode: meta.mode(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
        owner: Some(Owner {
            uid: meta.uid(),
            gid: meta.gid(),
        }),
        columns: Vec::new(),
    }
}

/// The compressor `plan` asks for, resolved in `registry`. A codec the registry
/// does not have, or settings its plugin rejects, is a recipe error located at
/// `compression.codec` (or `compression.level`) in the recipe file.
pub fn compressor(plan: &Plan, registry: &Registry) -> Result<Arc<dyn Compressor>> {
    let codec = &plan.compression.codec;
    let file_only = || SourceLocation {
        file: plan.recipe_path.clone(),
        line: 0,
        column: 0,
    };
    let codec_at = plan.compression_at.codec.clone();
    registry
        .compressor(codec, plan.compression.level)
        .map_err(|e| match e {
            PipelineError::UnknownPlugin { known, .. } => {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                RecipeError::UnknownCodec {
                    at: codec_at.unwrap_or_else(file_only),
                    codec: codec.clone(),
                    suggestion: crate::recipe::closest(&codec.to_lowercase(), &names)
                        .map(str::to_owned),
                    known,
                }
                .into()
            }
            PipelineError::PluginSettings { detail, .. } => RecipeError::CodecSettings {
                at: plan
                    .compression_at
                    .level
                    .clone()
                    .or(codec_at)
                    .unwrap_or_else(file_only),
                codec: codec.clone(),
                detail,
            }
            .into(),
            other => other,
        })
}

/// Writer settings for `plan`, with the compressor resolved in `registry` (see
/// [`compressor`] for its errors).
pub fn writer_options(
    plan: &Plan,
    registry: &Registry,
    threads: Option<usize>,
) -> Result<WriterOptions> {
    writer_options_on(plan, registry, threads, None)
}

/// [`writer_options`] for a thin child of `parents`: an encrypted child takes the
/// chain's dedup key, so its chunk ids match its parents'.
fn writer_options_on(
    plan: &Plan,
    registry: &Registry,
    threads: Option<usize>,
    parents: Option<&ParentSet>,
) -> Result<WriterOptions> {
    let compressor = compressor(plan, registry)?;
    let mut options = WriterOptions::new(compressor);
    options.chunking = plan.chunking;
    options.chunk_deltas = plan.compression.deltas;
    options.threads = threads;
    options.encryption =
        crate::crypto::encryption_with(plan, parents.map(ParentSet::chunk_hasher))?;
    options.signing = crate::crypto::signing(plan)?;
    Ok(options)
}

/// Whether `plan.output` may be written, checked before anything is read or
/// written: it is not the recipe, not an input, and not inside an input folder
/// unless that input's globs leave it out (no `force` allows these: the file
/// would be replaced and missing from the archive); then what is there may be
/// replaced ([`hexz_format::destination::check`]: a hexz archive; with `force`
/// any regular file or link; never a read-only file), and the same for the
/// detached signature next to it when the recipe signs that way.
pub fn check_output(plan: &Plan, force: bool) -> Result<()> {
    let out = &plan.output;
    let overlaps = |other: &Path, role| -> PipelineError {
        hexz_format::Error::from(DestinationError::Overlaps {
            path: out.clone(),
            other: other.to_path_buf(),
            role,
        })
        .into()
    };
    if destination::same_file(out, &plan.recipe_path) {
        return Err(overlaps(&plan.recipe_path, "the recipe"));
    }
    for input in &plan.inputs {
        if destination::resolve(out) == destination::resolve(&input.path)
            || destination::same_file(out, &input.path)
        {
            return Err(overlaps(&input.path, "an input of the recipe"));
        }
        if let Some(rel) = destination::inside(out, &input.path)
            && !crate::walk::leaves_out(input, &rel)?
        {
            return Err(overlaps(
                &input.path,
                "inside an input folder of the recipe that does not exclude it",
            ));
        }
    }
    destination::check(out, Writes::Archive, force).map_err(hexz_format::Error::from)?;
    if plan.sign.as_ref().is_some_and(|s| s.detached) {
        let sig = crate::crypto::signature_path(out);
        destination::check(&sig, Writes::Signature, force).map_err(hexz_format::Error::from)?;
    }
    Ok(())
}

/// Run `plan`: walk the inputs, write the archive atomically to `plan.output`
/// (after [`check_output`]).
pub fn build(plan: &Plan, registry: &Registry, options: &BuildOptions) -> Result<BuildReport> {
    let started = Instant::now();
    check_output(plan, options.force)?;
    // Thin snapshot: read the parent chain's chunk ids before writing anything
    // (opened with the recipe's keys: an encrypted chain shares them).
    let parents = match &plan.parent {
        Some(parent) => {
            let options = hexz_format::ReadOptions {
                unlock: crate::crypto::unlock(plan)?,
                kdf_limits: crate::crypto::kdf_limits(plan),
                ..hexz_format::ReadOptions::default()
            };
            Some(crate::thin::parent_set(
                parent,
                &plan.output,
                registry,
                options,
            )?)
        }
        None => None,
    };
    let writer_options = writer_options_on(plan, registry, options.threads, parents.as_ref())?;
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
    // Record inputs are scanned for their column schema before anything is written.
    let scan = crate::records::scan(plan)?;
    let mut writer = ArchiveWriter::create_with(&plan.output, writer_options, options.force)?;
    if let Some(parents) = parents {
        writer.set_parents(parents)?;
    }
    if let Some(schema) = &scan.schema {
        writer.set_columns(schema.clone())?;
    }
    let mut seen = InputCount::default();
    let mut digests = vec![InputDigest::new(); plan.inputs.len()];
    // Each input is one segment of the stream (its own chunks, see
    // `ArchiveWriter::end_segment`): `ended` inputs are closed so far.
    let mut ended = 0;
    seen.excluded = walk(plan, &mut |found| {
        while ended < found.input {
            writer.end_segment()?;
            ended += 1;
        }
        // A record input is one file, visited like a single-file input.
        let input = &plan.inputs[found.input];
        if input.records.is_some() {
            let done = crate::records::ingest(
                &mut writer,
                scan.schema.as_ref(),
                input,
                &found.meta,
                &bar,
                &mut digests[found.input],
            )?;
            seen.records += done.records;
            seen.bytes += done.bytes;
            return Ok(());
        }
        tally(&mut seen, &found.meta);
        add_found(&mut writer, &found, &bar, &mut digests[found.input])?;
        if seen.files % 64 == 0 {
            bar.set_message(crate::progress::build_message(
                seen.files + seen.dirs + seen.symlinks,
                "entries",
                writer.progress(),
            ));
        }
        Ok(())
    })?;
    while ended < plan.inputs.len() {
        writer.end_segment()?;
        ended += 1;
    }
    let contents = writer.segment_digests()?;
    writer.add_section(
        SECTION_PROVENANCE,
        false,
        provenance(plan, &seen, &digests, &contents),
    )?;
    let (_, summary) = writer.finish()?;
    bar.finish_and_clear();
    let signature_file = match (&summary.signature, &plan.sign) {
        (Some(block), Some(sign)) if sign.detached => Some(crate::crypto::write_detached(
            &plan.output,
            block,
            options.force,
        )?),
        _ => None,
    };
    Ok(BuildReport {
        output: plan.output.clone(),
        summary,
        inputs: seen,
        elapsed: started.elapsed(),
        signature_file,
    })
}

pub(crate) fn add_found<W: hexz_format::Sink>(
    writer: &mut ArchiveWriter<W>,
    found: &Found,
    bar: &ProgressBar,
    digest: &mut InputDigest,
) -> Result<()> {
    let t = found.meta.file_type();
    let meta = entry_meta(&found.meta);
    // The digest needs the metadata after the writer took it; columns are empty.
    let digest_meta = meta.clone();
    if t.is_file() {
        let file = File::open(&found.path).map_err(PipelineError::io(&found.path))?;
        let progress = |n| bar.inc(n);
        let mut counted = ProgressReader::new(file, &progress);
        let size = writer
            .add_file(&found.name, &mut counted, meta)
            .map_err(|e| match e {
                hexz_format::Error::Input { error, .. } => PipelineError::Io {
                    path: found.path.clone(),
                    error,
                },
                other => other.into(),
            })?;
        digest.add(EntryKind::File, &found.name, size, &digest_meta, None);
    } else if t.is_dir() {
        writer.add_dir(&found.name, meta)?;
        digest.add(EntryKind::Dir, &found.name, 0, &digest_meta, None);
    } else if t.is_symlink() {
        let target = fs::read_link(&found.path).map_err(PipelineError::io(&found.path))?;
        let target = target.to_str().ok_or(PipelineError::UnsupportedInput {
            path: found.path.clone(),
            reason: "symlink target is not valid UTF-8",
        })?;
        writer.add_symlink(&found.name, target, meta)?;
        digest.add(
            EntryKind::Symlink,
            &found.name,
            0,
            &digest_meta,
            Some(target),
        );
    }
    Ok(())
}

/// The provenance section: tool, normalized recipe, input counts and one digest
/// per input (see [`crate::digest`]). No clock times and no absolute paths
/// (inputs are named as written in the recipe), so rebuilding gives the same
/// bytes.
fn provenance(
    plan: &Plan,
    seen: &InputCount,
    digests: &[InputDigest],
    contents: &[Hash32],
) -> Vec<u8> {
    let recipe: serde_json::Value = serde_json::from_str(&plan.normalized)
        .unwrap_or(serde_json::Value::String(plan.normalized.clone()));
    let input_digests: Vec<serde_json::Value> = plan
        .inputs
        .iter()
        .zip(digests.iter().zip(contents))
        .map(|(input, (d, content))| {
            serde_json::json!({
                "path": input.written,
                "entries": d.entries(),
                "bytes": d.bytes(),
                "blake3": d.finish(content).to_string(),
            })
        })
        .collect();
    let mut inputs = serde_json::json!({
        "files": seen.files,
        "dirs": seen.dirs,
        "symlinks": seen.symlinks,
        "skipped": seen.skipped,
        "excluded": seen.excluded,
        "bytes": seen.bytes,
    });
    // Only archives with record inputs say how many records they hold, so the
    // provenance of a plain directory build does not change with the feature.
    if seen.records > 0 {
        inputs["records"] = seen.records.into();
    }
    let value = serde_json::json!({
        "tool": format!("hexz {}", env!("CARGO_PKG_VERSION")),
        "recipe": recipe,
        "inputs": inputs,
        "input_digests": input_digests,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}
