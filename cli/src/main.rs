//! `hexz`: the command-line tool. Parses arguments, calls one library function per
//! verb, prints the result, and maps errors to exit codes.

mod cache;
mod publish;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod keygen;
mod keys;
mod sign;
mod unlock;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};
use hexz_format::{Archive, EntryKind, ReadOptions};
use hexz_pipeline::recipe::load_recipe;
use hexz_pipeline::{BuildOptions, ExtractOptions, PipelineError, Registry};
use unlock::{KeyArgs, ParentArgs, TrustArgs};

mod thin;
mod volume;

/// Build, inspect and read hexz archives.
#[derive(Debug, Parser)]
#[command(name = "hexz", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Keep pages and chunks read from remote archives in this folder and read
    /// them from there next time (also HEXZ_CACHE_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Size limit of the cache folder, e.g. 10GiB (also HEXZ_CACHE_SIZE).
    #[arg(long, global = true, value_name = "SIZE", value_parser = publish::parse_bytes)]
    cache_size: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an archive from a recipe.
    Build {
        /// The recipe (YAML).
        recipe: PathBuf,
        /// Validate the recipe and print the plan without building.
        #[arg(long)]
        dry_run: bool,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Build a thin child of this archive (path or URL): store only the chunks
        /// its chain lacks. Replaces the recipe's `parent:`.
        #[arg(long, value_name = "ARCHIVE")]
        parent: Option<String>,
        /// Replace a file at the output that is not a hexz archive (or a detached
        /// signature there that is not one). Never a read-only file, an input or
        /// a file inside an input folder.
        #[arg(long)]
        force: bool,
    },
    /// Show a thin archive's chain: itself and every parent, with sizes, dates and
    /// root hashes.
    Log {
        /// The archive: a path or URL.
        archive: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keys: unlock::KeyArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// Compare two archives: entries added, removed and changed; chunks and bytes
    /// shared and unique.
    Diff {
        /// The older archive: a path or URL.
        a: PathBuf,
        /// The newer archive: a path or URL.
        b: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keys: unlock::KeyArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// Write a self-contained copy of a thin archive (no parents needed), verified
    /// against it.
    Squash {
        /// The thin archive: a path or URL.
        archive: PathBuf,
        /// The archive to write (not the thin archive or one of its parents).
        output: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Replace a file at the output that is not a hexz archive (never a
        /// read-only one).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        keys: unlock::KeyArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// List the entries of an archive.
    Ls {
        /// The archive: a path, or a URL (s3://bucket/key, https://host/a.hxz, file:///a.hxz).
        archive: PathBuf,
        /// Show kind, mode, owner (uid/gid), size and mtime.
        #[arg(short, long)]
        long: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// Write an entry's bytes (or a range of them) to standard output.
    Cat {
        /// The archive: a path, or a URL (s3://bucket/key, https://host/a.hxz, file:///a.hxz).
        archive: PathBuf,
        /// The entry name.
        entry: String,
        /// First byte to write.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Bytes to write (default: to the end of the entry).
        #[arg(long)]
        length: Option<u64>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// Restore the entries of an archive into a folder.
    Extract {
        /// The archive: a path, or a URL (s3://bucket/key, https://host/a.hxz, file:///a.hxz).
        archive: PathBuf,
        /// Destination folder (created if missing).
        dest: PathBuf,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
        /// Replace existing files and links (a link itself, never its target;
        /// read-only files too, with a warning; never a folder).
        #[arg(long)]
        overwrite: bool,
        /// Do not restore recorded owners (by default they are restored when
        /// running as root, like tar).
        #[arg(long)]
        no_same_owner: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// Describe an archive: counts, sizes, ratios, settings, root hash.
    Info {
        /// The archive: a path, or a URL (s3://bucket/key, https://host/a.hxz, file:///a.hxz).
        archive: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also break the stored bytes down by part (chunk blobs, each index,
        /// sections); reads every index page.
        #[arg(long)]
        space: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        parents: ParentArgs,
    },
    /// Upload an archive to a URL (s3://bucket/key, file:///path); it appears there
    /// only once complete, and nothing is uploaded if the URL already holds it.
    Publish(publish::PublishArgs),
    /// Check an archive's signature and integrity tree (with --deep, every chunk).
    /// Exit codes: 0 ok, 3 corrupt, 5 bad signature, 6 unsigned, 7 key missing or wrong.
    Verify(verify::VerifyArgs),
    /// Make a key: Ed25519 signing key pair, X25519 identity, or raw key file.
    Keygen(keygen::KeygenArgs),
    /// Sign an archive (embedded, or a detached `.sig`).
    Sign(sign::SignArgs),
    /// List, add or remove the key slots of an encrypted archive.
    Keys(keys::KeysArgs),
    /// Writable volumes: create, write at any offset, read, log, time travel, gc.
    Volume(volume::VolumeArgs),
    /// Remove a volume's snapshots that no retained version needs (= `hexz volume gc`).
    Gc(volume::GcArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`hexz cat ... | head`) is not a failure, however
            // deep in the chain the io::Error sits (`copy_entry` wraps it).
            if err.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("hexz: {}", message(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The error and its causes on one line, `: `-separated. A cause that the
/// message already ends with is not repeated: several error types print their
/// source in their own message and also expose it as `source()`.
pub(crate) fn message(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !msg.ends_with(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    msg
}

/// The format error in `err`'s chain, if any.
pub(crate) fn format_error(err: &anyhow::Error) -> Option<&hexz_format::Error> {
    err.chain().find_map(|cause| {
        cause.downcast_ref::<hexz_format::Error>().or_else(|| {
            match cause.downcast_ref::<PipelineError>() {
                Some(PipelineError::Format(f)) => Some(f),
                _ => None,
            }
        })
    })
}

/// 1: generic failure; 2: bad usage or recipe; 3: corrupt archive; 4: not found
/// (also a thin child's parent missing, or not looked for because its hint leads
/// outside the child's store); 5: bad signature; 6: unsigned (a signature was
/// required); 7: the archive is encrypted and no key, or a wrong one, was given
/// (or the only slots that might open it ask for more key-derivation work than
/// allowed); 8: a volume conflict (another writer committed first).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(code) = volume::exit_code(err) {
        return code;
    }
    if let Some(f) = format_error(err) {
        if f.is_corruption() {
            return 3;
        }
        match f {
            hexz_format::Error::EntryNotFound { .. } => return 4,
            hexz_format::Error::BadSignature { .. } => return 5,
            hexz_format::Error::Unsigned { .. } => return 6,
            hexz_format::Error::KeyRequired { .. }
            | hexz_format::Error::WrongKey { .. }
            | hexz_format::Error::KdfLimit { .. } => {
                return 7;
            }
            hexz_format::Error::InvalidKey { .. } => return 2,
            _ => {}
        }
        // A thin child's parent: another archive at its place is an integrity
        // failure; a missing one is "not found".
        if matches!(f, hexz_format::Error::ParentMismatch { .. }) {
            return 3;
        }
        if matches!(
            f,
            hexz_format::Error::ParentUnavailable { .. }
                | hexz_format::Error::ParentNotAttached { .. }
                | hexz_format::Error::ParentRefused { .. }
        ) {
            return 4;
        }
    }
    if let Some(PipelineError::NotFound { .. }) = err.downcast_ref::<PipelineError>() {
        return 4;
    }
    // `load_recipe` returns a bare `RecipeError` (not wrapped in `PipelineError`).
    if err
        .downcast_ref::<hexz_pipeline::recipe::RecipeError>()
        .is_some()
    {
        return 2;
    }
    if let Some(
        PipelineError::Recipe(_)
        | PipelineError::UnknownPlugin { .. }
        | PipelineError::PluginSettings { .. },
    ) = err.downcast_ref::<PipelineError>()
    {
        return 2;
    }
    1
}

/// Open a path or URL: URLs go to the registry's transports, other arguments are
/// local paths (kept as paths, so names that are not UTF-8 still work).
fn open(
    archive: &Path,
    registry: &Registry,
    keys: &KeyArgs,
    trust: &TrustArgs,
    parents: &ParentArgs,
) -> Result<Archive> {
    open_with(
        archive,
        registry,
        unlock::read_options(keys, trust, parents, archive, registry)?,
    )
}

/// Open a path or URL with `options`.
pub(crate) fn open_with(
    archive: &Path,
    registry: &Registry,
    options: ReadOptions,
) -> Result<Archive> {
    let url = archive
        .to_str()
        .filter(|s| hexz_pipeline::registry::url_scheme(s).is_some());
    Ok(match (url, cache::get()) {
        (Some(url), Some(cache)) => {
            hexz_pipeline::open_archive_cached(url, registry, options, cache)?
        }
        (Some(url), None) => hexz_pipeline::open_archive(url, registry, options)?,
        (None, _) => hexz_pipeline::open_archive_path(archive, registry, options)?,
    })
}

fn run(cli: Cli) -> Result<()> {
    cache::configure(cli.cache_dir, cli.cache_size)?;
    let registry = Registry::default();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match cli.command {
        Command::Build {
            recipe,
            dry_run,
            quiet,
            threads,
            json,
            parent,
            force,
        } => {
            let mut plan = load_recipe(&recipe)?;
            if parent.is_some() {
                plan.parent = parent;
            }
            if dry_run {
                hexz_pipeline::build::check_output(&plan, force)?;
                let count = hexz_pipeline::count_inputs(&plan)?;
                // Resolving the codec checks the plugin exists and takes the level;
                // its errors point at the recipe.
                hexz_pipeline::build::compressor(&plan, &registry)?;
                writeln!(out, "recipe   {}", plan.recipe_path.display())?;
                for input in &plan.inputs {
                    writeln!(out, "ingest   {} ({})", input.written, input.path.display())?;
                }
                writeln!(
                    out,
                    "         {} files, {} dirs, {} symlinks, {} bytes{}{}",
                    count.files,
                    count.dirs,
                    count.symlinks,
                    count.bytes,
                    if count.skipped > 0 {
                        format!(", {} special files skipped", count.skipped)
                    } else {
                        String::new()
                    },
                    if count.excluded > 0 {
                        format!(", {} excluded", count.excluded)
                    } else {
                        String::new()
                    }
                )?;
                writeln!(
                    out,
                    "chunk    fastcdc-2020 min {} avg {} max {}",
                    plan.chunking.min, plan.chunking.avg, plan.chunking.max
                )?;
                writeln!(
                    out,
                    "compress {}{}",
                    plan.compression.codec,
                    plan.compression
                        .level
                        .map(|l| format!(" level {l}"))
                        .unwrap_or_default()
                )?;
                if let Some(parent) = &plan.parent {
                    writeln!(out, "parent   {parent}")?;
                }
                if let Some(e) = &plan.encrypt {
                    let slots = e.passphrases.len()
                        + usize::from(e.key_file.is_some())
                        + e.recipients.len();
                    writeln!(out, "encrypt  aes-256-gcm, {slots} key slot(s)")?;
                }
                if let Some(s) = &plan.sign {
                    let how = if s.detached { "detached" } else { "embedded" };
                    writeln!(out, "sign     {} ({how})", s.public)?;
                }
                writeln!(out, "output   {}", plan.output.display())?;
                if let Some(p) = &plan.publish {
                    hexz_pipeline::publish::check_publish_stage(&plan, &registry)?;
                    writeln!(
                        out,
                        "publish  {} (parts of {} bytes, {} at once)",
                        p.url, p.part_size, p.concurrency
                    )?;
                }
                out.flush()?;
                return Ok(());
            }
            let (report, published) = hexz_pipeline::build_and_publish(
                &plan,
                &registry,
                &BuildOptions {
                    quiet,
                    threads,
                    force,
                },
            )?;
            let s = &report.summary.stats;
            if json {
                let v = serde_json::json!({
                    "output": report.output,
                    "root_hash": report.summary.root_hash.to_string(),
                    "entries": s.entry_count,
                    "logical_bytes": s.logical_size,
                    "stored_bytes": report.summary.archive_size,
                    "unique_bytes": s.unique_raw_bytes,
                    "seconds": report.elapsed.as_secs_f64(),
                    "published": published.as_ref().map(publish::summary_json),
                });
                let mut v = v;
                if let Some(sig) = &report.signature_file {
                    v["signature_file"] = serde_json::json!(sig);
                }
                writeln!(out, "{v}")?;
            } else if !quiet {
                let secs = report.elapsed.as_secs_f64();
                eprintln!(
                    "built {}: {} entries, {} -> {} ({:.2}x), {:.1} MB/s, root {}",
                    report.output.display(),
                    s.entry_count,
                    human(s.logical_size),
                    human(report.summary.archive_size),
                    s.logical_size as f64 / report.summary.archive_size.max(1) as f64,
                    s.logical_size as f64 / 1e6 / secs.max(1e-9),
                    report.summary.root_hash
                );
                if let Some(p) = &published {
                    publish::print_line(p);
                }
                if let Some(sig) = &report.signature_file {
                    eprintln!("wrote detached signature {}", sig.display());
                }
            }
        }
        Command::Ls {
            archive,
            long,
            json,
            keys,
            trust,
            parents,
        } => {
            let a = open(&archive, &registry, &keys, &trust, &parents)?;
            let schema = if json { a.columns()? } else { None };
            for entry in a.entries() {
                let e = entry?;
                if json {
                    let columns = match &schema {
                        Some(s) => a
                            .entry_columns(&e)?
                            .map(|values| hexz_pipeline::records::columns_json(s, &values)),
                        None => None,
                    };
                    let v = serde_json::json!({
                        "name": e.name,
                        "kind": e.kind.as_str(),
                        "size": e.size,
                        "mode": e.mode & 0o7777,
                        "mtime": e.mtime,
                        "uid": e.owner.map(|o| o.uid),
                        "gid": e.owner.map(|o| o.gid),
                        "target": e.target,
                        "columns": columns,
                    });
                    writeln!(out, "{v}")?;
                } else if long {
                    let kind = match e.kind {
                        EntryKind::File => '-',
                        EntryKind::Dir => 'd',
                        EntryKind::Symlink => 'l',
                        EntryKind::Record => 'r',
                    };
                    let link = e
                        .target
                        .as_deref()
                        .map(|t| format!(" -> {t}"))
                        .unwrap_or_default();
                    let owner = e
                        .owner
                        .map(|o| format!("{}/{}", o.uid, o.gid))
                        .unwrap_or_else(|| "-".to_string());
                    writeln!(
                        out,
                        "{kind}{:04o} {owner:>11} {:>12} {:>12} {}{link}",
                        e.mode & 0o7777,
                        e.size,
                        e.mtime,
                        e.name
                    )?;
                } else {
                    writeln!(out, "{}", e.name)?;
                }
            }
        }
        Command::Cat {
            archive,
            entry,
            offset,
            length,
            keys,
            trust,
            parents,
        } => {
            let a = open(&archive, &registry, &keys, &trust, &parents)?;
            let e = a.entry(&entry)?;
            hexz_pipeline::copy_entry(&a, &e, offset, length, &mut out)?;
        }
        Command::Extract {
            archive,
            dest,
            quiet,
            overwrite,
            no_same_owner,
            keys,
            trust,
            parents,
        } => {
            let a = open(&archive, &registry, &keys, &trust, &parents)?;
            // A thin child's parents are checked before anything is written.
            a.check_parents()?;
            let options = ExtractOptions {
                quiet,
                overwrite,
                no_same_owner,
            };
            let report = hexz_pipeline::extract(&a, &dest, &options)?;
            // Said even with --quiet: --overwrite replaced files marked read-only.
            if let Some(first) = &report.first_read_only_replaced {
                eprintln!(
                    "hexz: warning: --overwrite replaced {} read-only file(s), the first {}",
                    report.read_only_replaced,
                    first.display()
                );
            }
            if !quiet {
                eprintln!(
                    "extracted {} files, {} dirs, {} symlinks ({}) to {} in {:.2}s",
                    report.files,
                    report.dirs,
                    report.symlinks,
                    human(report.bytes),
                    dest.display(),
                    report.elapsed.as_secs_f64()
                );
            }
        }
        Command::Info {
            archive,
            json,
            space,
            keys,
            trust,
            parents,
        } => {
            let a = open(&archive, &registry, &keys, &trust, &parents)?;
            let mut i = hexz_pipeline::info(&a)?;
            if space {
                hexz_pipeline::with_space(&a, &mut i)?;
            }
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&i)?)?;
            } else {
                writeln!(out, "archive       {}", i.source)?;
                writeln!(out, "format        v{}", i.format_version)?;
                writeln!(out, "root hash     {}", i.root_hash)?;
                writeln!(out, "entries       {}", i.entries)?;
                writeln!(
                    out,
                    "logical       {} ({} bytes)",
                    human(i.logical_bytes),
                    i.logical_bytes
                )?;
                writeln!(
                    out,
                    "stored        {} ({} bytes)",
                    human(i.stored_bytes),
                    i.stored_bytes
                )?;
                writeln!(
                    out,
                    "chunks        {} ({} unique, {} zero)",
                    i.chunks, i.unique_chunks, i.zero_chunks
                )?;
                writeln!(out, "dedup         {:.2}x", i.dedup_ratio)?;
                writeln!(out, "compression   {:.2}x", i.compression_ratio)?;
                writeln!(out, "overall       {:.2}x", i.total_ratio)?;
                writeln!(
                    out,
                    "chunking      {} min {} avg {} max {}",
                    i.chunking.algorithm, i.chunking.min, i.chunking.avg, i.chunking.max
                )?;
                writeln!(
                    out,
                    "codec         {} (level {})",
                    i.codec.name, i.codec.level
                )?;
                if let Some(slots) = &i.key_slots {
                    writeln!(
                        out,
                        "encrypted     AES-256-GCM, {} key slot(s)",
                        slots.len()
                    )?;
                    for (n, slot) in slots.iter().enumerate() {
                        writeln!(out, "key slot {n:<4} {slot}")?;
                    }
                }
                for key in &i.signed_by {
                    writeln!(out, "signed by     {key} (check: hexz verify --key)")?;
                }
                if let Some(columns) = &i.columns {
                    let list: Vec<String> = columns
                        .iter()
                        .map(|c| format!("{} {}", c.name, c.ty))
                        .collect();
                    writeln!(out, "columns       {}", list.join(", "))?;
                }
                for (k, p) in i.parents.iter().enumerate() {
                    writeln!(
                        out,
                        "parent {:<6} {} root {} ({} chunks, {} read from it)",
                        k + 1,
                        p.hint,
                        p.root_hash,
                        p.chunks,
                        human(p.bytes)
                    )?;
                }
                if let Some(s) = &i.space {
                    writeln!(
                        out,
                        "space         chunks {} ({} deltas: {}) / chunk index {} / catalog {} / names {} / sections {} / framing {} (metadata {})",
                        s.chunk_blobs,
                        s.delta_chunks,
                        s.delta_chunk_bytes,
                        s.chunk_index,
                        s.catalog,
                        s.name_index,
                        s.sections.iter().map(|x| x.bytes).sum::<u64>(),
                        s.framing,
                        s.metadata
                    )?;
                }
                if let Some(p) = &i.provenance {
                    if let Some(tool) = p.get("tool").and_then(|t| t.as_str()) {
                        writeln!(out, "built by      {tool}")?;
                    }
                    if let Some(recipe) = p.get("recipe") {
                        writeln!(out, "recipe        {recipe}")?;
                    }
                    let digests = p.get("input_digests").and_then(|d| d.as_array());
                    for d in digests.into_iter().flatten() {
                        let text = |key: &str| d.get(key).and_then(|v| v.as_str()).unwrap_or("?");
                        let number = |key: &str| d.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
                        writeln!(
                            out,
                            "input         {} blake3 {} ({} entries, {} bytes)",
                            text("path"),
                            text("blake3"),
                            number("entries"),
                            number("bytes")
                        )?;
                    }
                }
            }
        }
        Command::Publish(args) => publish::run(args, &registry, &mut out)?,
        Command::Volume(args) => volume::run(args, &registry, &mut out)?,
        Command::Gc(args) => volume::gc(args, &registry, &mut out)?,
        Command::Log {
            archive,
            json,
            keys,
            parents,
        } => {
            let a = open(&archive, &registry, &keys, &TrustArgs::default(), &parents)?;
            let links = hexz_pipeline::log(&a)?;
            thin::print_log(&mut out, &links, json)?;
        }
        Command::Diff {
            a,
            b,
            json,
            keys,
            parents,
        } => {
            let none = TrustArgs::default();
            let (a, b) = (
                open(&a, &registry, &keys, &none, &parents)?,
                open(&b, &registry, &keys, &none, &parents)?,
            );
            let report = hexz_pipeline::diff(&a, &b)?;
            thin::print_diff(&mut out, &report, json)?;
        }
        Command::Squash {
            archive,
            output,
            json,
            force,
            keys,
            parents,
        } => {
            let a = open(&archive, &registry, &keys, &TrustArgs::default(), &parents)?;
            let report = hexz_pipeline::squash(&a, &output, &registry, force)?;
            thin::print_squash(&mut out, &report, json)?;
        }
        Command::Verify(args) => verify::run(&args, &registry, &mut out)?,
        Command::Keygen(args) => keygen::run(&args, &mut out)?,
        Command::Sign(args) => sign::run(&args, &registry, &mut out)?,
        Command::Keys(args) => keys::run(&args, &registry, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
