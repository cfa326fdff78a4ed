//! `hexz extract`: restore an archive's entries under a folder.
//!
//! Safety: every name is re-validated (a hostile archive may hold `../x` or
//! `/etc/x`); no write ever goes through a symbolic link — parents are checked
//! component by component, files are created with `create_new`, and symlink
//! entries are created last, so an archived link cannot redirect a later write.
//! With `--overwrite`, an existing file or link is removed first (a link
//! itself, never what it points to); a read-only file too, as `tar` does, but
//! never silently: [`ExtractReport::read_only_replaced`] counts them and names
//! the first, for the caller to say so. A folder or a special file in the way
//! is never replaced ([`hexz_format::destination`]).
//!
//! Ownership: like `tar`, entries that record an owner get it back when the
//! extraction runs as root (effective uid 0), unless
//! [`ExtractOptions::no_same_owner`] is set; otherwise files belong to the user
//! running the extraction. Owners are set before modes, since `chown` clears
//! set-uid and set-gid bits.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{PermissionsExt, fchown, lchown, symlink};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use filetime::FileTime;
use hexz_format::destination::{self, DestinationError, Writes};
use hexz_format::writer::validate_name;
use hexz_format::{Archive, Entry, EntryKind, Owner};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::error::{PipelineError, Result};
use crate::progress::bytes_bar;

/// Extraction settings.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// No progress bar.
    pub quiet: bool,
    /// Replace existing files and links (never directories).
    pub overwrite: bool,
    /// Never restore recorded owners, even when running as root.
    pub no_same_owner: bool,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Regular files and records written.
    pub files: u64,
    /// Directories created or updated.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Read-only files (and links in the way of folders) that `overwrite`
    /// replaced: callers should say so.
    pub read_only_replaced: u64,
    /// The first of them.
    pub first_read_only_replaced: Option<PathBuf>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Read-only files replaced so far (files are written in parallel).
#[derive(Default)]
struct ReadOnlyReplaced {
    count: AtomicU64,
    first: Mutex<Option<PathBuf>>,
}

impl ReadOnlyReplaced {
    fn note(&self, path: &Path) {
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            *first = Some(path.to_path_buf());
        }
    }
}

/// Extract every entry of `archive` under `dest` (created if missing).
pub fn extract(archive: &Archive, dest: &Path, options: &ExtractOptions) -> Result<ExtractReport> {
    let started = Instant::now();
    fs::create_dir_all(dest).map_err(PipelineError::io(dest))?;
    let root = fs::canonicalize(dest).map_err(PipelineError::io(dest))?;
    let bar = bytes_bar(archive.len(), options.quiet, "extracting");
    let mut report = ExtractReport::default();
    let restore_owner = !options.no_same_owner && rustix::process::geteuid().is_root();
    let owner_of = |entry: &Entry| entry.owner.filter(|_| restore_owner);
    let mut dirs: Vec<(PathBuf, Entry)> = Vec::new();
    let mut links: Vec<(PathBuf, Entry)> = Vec::new();
    let mut batch: Vec<(PathBuf, Entry)> = Vec::new();
    let mut batch_bytes = 0u64;
    // Folders this run created or checked (never symlinks): their children skip the
    // per-component checks. No symlink is created before all files are written.
    let mut known_dirs: HashSet<PathBuf> = HashSet::new();
    let replaced = ReadOnlyReplaced::default();
    for entry in archive.entries() {
        let entry = entry?;
        validate_name(&entry.name).map_err(|_| PipelineError::UnsafePath {
            name: entry.name.clone(),
            reason: "the name is absolute or has an empty, `.` or `..` component",
        })?;
        let path = prepare_parent(&root, &entry.name, &mut known_dirs)?;
        match entry.kind {
            EntryKind::File | EntryKind::Record => {
                // Files are written in parallel batches (file creation is mostly
                // kernel time); their parents exist already, created above.
                batch_bytes += entry.size;
                batch.push((path, entry));
                if batch.len() >= 256 || batch_bytes >= 32 << 20 {
                    let files = Files {
                        archive,
                        options,
                        restore_owner,
                        bar: &bar,
                        replaced: &replaced,
                    };
                    write_files(&files, &batch, &mut report)?;
                    batch.clear();
                    batch_bytes = 0;
                }
            }
            EntryKind::Dir => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    // A file or link in the way: replaced with --overwrite (removing
                    // a symlink removes the link, never its target).
                    Ok(_) => {
                        replace_existing(&path, &entry.name, options.overwrite, &replaced)?;
                        fs::create_dir(&path).map_err(PipelineError::io(&path))?;
                    }
                    Err(_) => fs::create_dir(&path).map_err(PipelineError::io(&path))?,
                }
                known_dirs.insert(path.clone());
                dirs.push((path, entry));
            }
            EntryKind::Symlink => links.push((path, entry)),
        }
    }
    let files = Files {
        archive,
        options,
        restore_owner,
        bar: &bar,
        replaced: &replaced,
    };
    write_files(&files, &batch, &mut report)?;
    for (path, entry) in links {
        let target = entry.target.as_deref().unwrap_or_default();
        // Check the parents again, without the cache, before creating a link.
        prepare_parent(&root, &entry.name, &mut HashSet::new())?;
        replace_existing(&path, &entry.name, options.overwrite, &replaced)?;
        symlink(target, &path).map_err(PipelineError::io(&path))?;
        if let Some(owner) = owner_of(&entry) {
            lchown(&path, Some(owner.uid), Some(owner.gid)).map_err(chown_error(&path, owner))?;
        }
        let t = FileTime::from_unix_time(entry.mtime, entry.mtime_nsec);
        filetime::set_symlink_file_times(&path, t, t).map_err(PipelineError::io(&path))?;
        report.symlinks += 1;
    }
    // Children first, so setting a directory's mtime is not undone by its children.
    for (path, entry) in dirs.iter().rev() {
        if let Some(owner) = owner_of(entry) {
            // lchown: never through a link that replaced the folder meanwhile.
            lchown(path, Some(owner.uid), Some(owner.gid)).map_err(chown_error(path, owner))?;
        }
        set_mode(path, entry.mode)?;
        set_mtime(path, entry)?;
        report.dirs += 1;
    }
    bar.finish_and_clear();
    report.read_only_replaced = replaced.count.into_inner();
    report.first_read_only_replaced = replaced
        .first
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What writing a batch of files needs.
struct Files<'a> {
    archive: &'a Archive,
    options: &'a ExtractOptions,
    restore_owner: bool,
    bar: &'a ProgressBar,
    replaced: &'a ReadOnlyReplaced,
}

/// Write a batch of files (their parents exist) on rayon, in parallel.
fn write_files(
    files: &Files<'_>,
    batch: &[(PathBuf, Entry)],
    report: &mut ExtractReport,
) -> Result<()> {
    batch.par_iter().try_for_each_init(
        || vec![0u8; 1 << 20],
        |buf, (path, entry)| write_file(files, path, entry, buf),
    )?;
    report.files += batch.len() as u64;
    report.bytes += batch.iter().map(|(_, e)| e.size).sum::<u64>();
    Ok(())
}

/// Create one file and give it its content, owner, mode and mtime.
fn write_file(files: &Files<'_>, path: &Path, entry: &Entry, buf: &mut [u8]) -> Result<()> {
    let Files {
        archive,
        options,
        restore_owner,
        bar,
        replaced,
    } = *files;
    let mut out = create_file(path, &entry.name, options.overwrite, replaced)?;
    let mut reader = archive.entry_reader(entry);
    loop {
        let n = reader
            .read(buf)
            .map_err(|e| match e.downcast::<hexz_format::Error>() {
                Ok(format) => PipelineError::Format(format),
                Err(e) => PipelineError::Io {
                    path: PathBuf::from(archive.source_name()),
                    error: e,
                },
            })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(PipelineError::io(path))?;
        bar.inc(n as u64);
    }
    // Through the handle: no second path lookup. Owner first: chown clears
    // set-uid/set-gid bits.
    if let Some(owner) = entry.owner.filter(|_| restore_owner) {
        fchown(&out, Some(owner.uid), Some(owner.gid)).map_err(chown_error(path, owner))?;
    }
    out.set_permissions(fs::Permissions::from_mode(entry.mode & 0o7777))
        .map_err(PipelineError::io(path))?;
    let t = FileTime::from_unix_time(entry.mtime, entry.mtime_nsec);
    filetime::set_file_handle_times(&out, None, Some(t)).map_err(PipelineError::io(path))?;
    Ok(())
}

/// Create the parents of `name` under `root` (refusing any that is a symlink or not
/// a directory) and return the entry's full path. Parents in `known` were checked
/// before; the ones checked now are added.
fn prepare_parent(root: &Path, name: &str, known: &mut HashSet<PathBuf>) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    let mut parts = name.split('/').peekable();
    while let Some(part) = parts.next() {
        path.push(part);
        if parts.peek().is_none() {
            break;
        }
        if known.contains(&path) {
            continue;
        }
        known.insert(path.clone());
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(PipelineError::UnsafePath {
                    name: name.to_string(),
                    reason: "a parent folder is a symbolic link",
                });
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(PipelineError::UnsafePath {
                    name: name.to_string(),
                    reason: "a parent is not a folder",
                });
            }
            Err(_) => fs::create_dir(&path).map_err(PipelineError::io(&path))?,
        }
    }
    Ok(path)
}

/// Create a new file at `path`; an existing file or link is replaced only with
/// `overwrite` (the link itself, never its target), a folder never.
fn create_file(
    path: &Path,
    name: &str,
    overwrite: bool,
    replaced: &ReadOnlyReplaced,
) -> Result<File> {
    let open = || OpenOptions::new().write(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            replace_existing(path, name, overwrite, replaced)?;
            open().map_err(PipelineError::io(path))
        }
        other => other.map_err(PipelineError::io(path)),
    }
}

/// Make way for a new file at `path` ([`destination::check`] with `overwrite`
/// as the force): nothing there is fine; a file or link is removed with
/// `overwrite` (a link itself, never what it points to) — a read-only one too,
/// like `tar` does, but noted in `replaced` so the caller says so; a folder or a
/// special file never.
fn replace_existing(
    path: &Path,
    name: &str,
    overwrite: bool,
    replaced: &ReadOnlyReplaced,
) -> Result<()> {
    let remove = || match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(PipelineError::io(path)),
    };
    match destination::check(path, Writes::Other, overwrite) {
        Ok(()) => remove(),
        Err(DestinationError::ReadOnly { .. }) if overwrite => {
            replaced.note(path);
            remove()
        }
        Err(DestinationError::NotOurs { .. }) => Err(PipelineError::Exists {
            path: path.to_path_buf(),
        }),
        Err(DestinationError::NotAFile { kind: "folder", .. }) => Err(PipelineError::UnsafePath {
            name: name.to_string(),
            reason: "a folder is in the way",
        }),
        Err(other) => Err(hexz_format::Error::from(other).into()),
    }
}

fn chown_error(path: &Path, owner: Owner) -> impl FnOnce(io::Error) -> PipelineError {
    let path = path.to_path_buf();
    move |error| PipelineError::Chown {
        path,
        uid: owner.uid,
        gid: owner.gid,
        error,
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    let perms = fs::Permissions::from_mode(mode & 0o7777);
    fs::set_permissions(path, perms).map_err(PipelineError::io(path))
}

fn set_mtime(path: &Path, entry: &Entry) -> Result<()> {
    let t = FileTime::from_unix_time(entry.mtime, entry.mtime_nsec);
    filetime::set_file_mtime(path, t).map_err(PipelineError::io(path))
}

/// Write one entry's content to `out` (for `hexz cat`).
pub fn copy_entry(
    archive: &Archive,
    entry: &Entry,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64> {
    if !entry.kind.has_data() {
        return Err(hexz_format::Error::NotAFile {
            name: entry.name.clone(),
            kind: entry.kind.as_str(),
        }
        .into());
    }
    let end = match length {
        Some(len) => offset.saturating_add(len),
        None => entry.size.max(offset),
    };
    if offset > entry.size || end > entry.size {
        return Err(hexz_format::Error::OutOfRange {
            what: format!("entry `{}`", hexz_format::error::Excerpt(&entry.name)),
            offset,
            len: end - offset,
            size: entry.size,
        }
        .into());
    }
    let mut buf = vec![0u8; (1 << 20).min((end - offset) as usize)];
    let mut pos = offset;
    while pos < end {
        let n = buf.len().min((end - pos) as usize);
        archive.read_entry_at(entry, pos, &mut buf[..n])?;
        out.write_all(&buf[..n])
            .map_err(PipelineError::io("<stdout>"))?;
        pos += n as u64;
    }
    Ok(end - offset)
}
