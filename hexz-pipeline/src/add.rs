//! Adding files and directory trees from disk to an open writer, the way a
//! recipe input is ingested (sorted walk, symlinks kept, mode, mtime and owner
//! recorded) — for callers that build archives programmatically (Python's
//! `Writer.add`).
//!
//! ```no_run
//! use hexz_format::{ArchiveWriter, WriterOptions};
//! use hexz_pipeline::{Registry, add::add_path};
//! let registry = Registry::default();
//! let options = WriterOptions::new(registry.compressor("zstd", Some(3))?);
//! let mut writer = ArchiveWriter::create("out.hxz", options)?;
//! add_path(&mut writer, "photos/".as_ref(), Some("photos"))?; // photos/a.jpg, ...
//! writer.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use hexz_format::destination::{self, DestinationError};
use hexz_format::{ArchiveWriter, Sink};
use indicatif::ProgressBar;

use crate::build::{InputCount, add_found, tally};
use crate::digest::InputDigest;
use crate::error::{PipelineError, Result};
use crate::recipe::{ChunkingPlan, CompressionPlan, InputPlan, Plan, SymlinkPolicy};
use crate::walk::{absolute, walk};

/// Add the file or directory tree at `path` to `writer`.
///
/// A file becomes one entry named `name` (default: its file name). A directory's
/// contents are named by their path relative to it (`a.txt`, `sub/b.bin`),
/// under `name/` when `name` is given; the directory itself is not an entry.
/// Returns what was added. A folder that holds the archive being written (a
/// file writer's destination) is refused, as a recipe's input folder is: the
/// archive would be replaced and left out.
pub fn add_path<W: Sink>(
    writer: &mut ArchiveWriter<W>,
    path: &Path,
    name: Option<&str>,
) -> Result<InputCount> {
    let path = absolute(path);
    let meta = std::fs::metadata(&path).map_err(PipelineError::io(&path))?;
    let dest = writer.destination();
    // Sinks that are not files describe themselves as `<memory>`, `<file>`.
    if !dest.as_os_str().as_encoded_bytes().starts_with(b"<") {
        let role = if destination::same_file(dest, &path) {
            Some("the file being added")
        } else if meta.is_dir() && destination::inside(dest, &path).is_some() {
            Some("inside the folder being added")
        } else {
            None
        };
        if let Some(role) = role {
            return Err(hexz_format::Error::from(DestinationError::Overlaps {
                path: dest.to_path_buf(),
                other: path,
                role,
            })
            .into());
        }
    }
    let prefix = name
        .map(|n| n.trim_end_matches('/'))
        .filter(|n| !n.is_empty());
    let plan = Plan {
        recipe_path: path.clone(),
        recipe_dir: path.parent().unwrap_or(&path).to_path_buf(),
        inputs: vec![InputPlan {
            path: path.clone(),
            written: path.display().to_string(),
            include: Vec::new(),
            exclude: Vec::new(),
            symlinks: SymlinkPolicy::Keep,
            records: None,
        }],
        // Nothing is written to this path; the walk only skips it.
        output: path.join(".hexz-add-no-output"),
        chunking: ChunkingPlan::default(),
        compression: CompressionPlan::default(),
        compression_at: Default::default(),
        normalized: String::new(),
        publish: None,
        parent: None,
        encrypt: None,
        sign: None,
    };
    let bar = ProgressBar::hidden();
    let mut digest = InputDigest::new();
    let mut count = InputCount::default();
    let is_dir = meta.is_dir();
    count.excluded = walk(&plan, &mut |mut found| {
        found.name = match (is_dir, prefix) {
            (true, Some(p)) => format!("{p}/{}", found.name),
            (false, Some(p)) => p.to_string(),
            (_, None) => found.name,
        };
        tally(&mut count, &found.meta);
        add_found(writer, &found, &bar, &mut digest)
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use hexz_format::{Archive, MemorySource, ReadOptions, WriterOptions};

    use super::*;
    use crate::Registry;

    #[test]
    fn adds_trees_and_files_under_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), b"alpha").unwrap();
        std::fs::write(root.join("sub/b.bin"), b"beta").unwrap();
        let registry = Registry::default();
        let mut w = ArchiveWriter::new(
            Vec::new(),
            WriterOptions::new(registry.compressor("lz4", None).unwrap()),
        )
        .unwrap();
        let c = add_path(&mut w, &root, Some("t")).unwrap();
        assert_eq!((c.files, c.dirs), (2, 1));
        add_path(&mut w, &root.join("a.txt"), None).unwrap();
        let (bytes, _) = w.finish().unwrap();
        let a = Archive::open(
            Arc::new(MemorySource::new(bytes, "m")),
            &registry,
            ReadOptions::default(),
        )
        .unwrap();
        let names: Vec<String> = a.entries().map(|e| e.unwrap().name).collect();
        assert_eq!(names, ["t/a.txt", "t/sub", "t/sub/b.bin", "a.txt"]);
        let e = a.entry("t/sub/b.bin").unwrap();
        assert_eq!(a.read_entry(&e).unwrap(), b"beta");
        assert!(
            add_path(
                &mut ArchiveWriter::new(
                    Vec::new(),
                    WriterOptions::new(registry.compressor("lz4", None).unwrap())
                )
                .unwrap(),
                &root.join("missing"),
                None
            )
            .is_err()
        );
    }
}
