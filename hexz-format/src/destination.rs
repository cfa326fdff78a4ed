//! Where hexz writes a local file, and what it may replace there.
//!
//! Every verb that writes a file the user names — `build` and `squash`
//! (archives), `sign` (the archive itself, or a detached `.sig`), `keys` (the
//! archive itself), `volume read -o`, a publish to a local path, `extract
//! --overwrite` — asks [`check`] first (and [`crate::PendingFile`] asks again
//! right before naming its file):
//!
//! * nothing there: fine;
//! * a file of the kind being written — a hexz archive (its magic at both ends)
//!   or a detached signature (`HXZS`) — is replaced: it is hexz's own output;
//! * any other file, or a symbolic link, only with `force` (`--force`); a link is
//!   replaced itself, never followed;
//! * a folder, FIFO, socket or device: never;
//! * a read-only file — no write permission bit, or one this user may not open
//!   for writing — never, not even with `force`: make it writable or remove it.
//!
//! [`resolve`], [`same_file`] and [`inside`] let a verb refuse an output that is
//! one of its own inputs (a recipe's input or the recipe itself, the archive a
//! squash reads), which no `force` allows.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::layout::{HEADER_LEN, MAGIC, TRAILER_LEN};

/// The first bytes of a detached signature file (`SignatureBlock::to_detached`).
pub const SIGNATURE_MAGIC: [u8; 4] = *b"HXZS";

/// What a verb writes at a destination: which existing files it may replace
/// without `force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// A hexz archive: an existing archive is replaced.
    Archive,
    /// A detached signature: an existing signature file is replaced.
    Signature,
    /// Bytes of another kind (an extracted file, a volume image): any existing
    /// file needs `force`.
    Other,
}

impl Writes {
    fn describe(self) -> &'static str {
        match self {
            Writes::Archive => "a hexz archive",
            Writes::Signature => "a hexz signature file",
            Writes::Other => "the new file",
        }
    }
}

/// Why a destination is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// Something hexz did not write is there, and `force` was not given.
    #[error(
        "{}: {found} is there; not replacing it with {} (--force, or force=True from \
         Python, replaces it)",
        path.display(),
        writes.describe()
    )]
    NotOurs {
        /// The destination.
        path: PathBuf,
        /// What is there ("a file that is not a hexz archive", "a symbolic link").
        found: &'static str,
        /// What would have been written.
        writes: Writes,
    },
    /// A read-only file is there.
    #[error(
        "{}: the file there is read-only; not replacing it (make it writable or remove it \
         first)",
        path.display()
    )]
    ReadOnly {
        /// The destination.
        path: PathBuf,
    },
    /// A folder, FIFO, socket or device is there.
    #[error("{}: is a {kind}; cannot write a file there", path.display())]
    NotAFile {
        /// The destination.
        path: PathBuf,
        /// "folder", "FIFO", "socket", "device".
        kind: &'static str,
    },
    /// The destination is one of the verb's inputs.
    #[error(
        "{}: is {role}: {}; refusing to write the output there",
        path.display(),
        other.display()
    )]
    Overlaps {
        /// The destination.
        path: PathBuf,
        /// The input it would replace (or the folder it is in).
        other: PathBuf,
        /// What that input is: "an input of the recipe", "inside the input folder"...
        role: &'static str,
    },
    /// Looking at the destination failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The destination.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: io::Error,
    },
}

/// Whether a file of `writes` may be written at `path` (see the module docs).
/// `Ok` when nothing is there or when what is there may be replaced.
pub fn check(path: &Path, writes: Writes, force: bool) -> Result<(), DestinationError> {
    let io_err = |error| DestinationError::Io {
        path: path.to_path_buf(),
        error,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(e)),
    };
    let kind = meta.file_type();
    let not_a_file = |kind| DestinationError::NotAFile {
        path: path.to_path_buf(),
        kind,
    };
    if kind.is_dir() {
        return Err(not_a_file("folder"));
    }
    if kind.is_fifo() {
        return Err(not_a_file("FIFO"));
    }
    if kind.is_socket() {
        return Err(not_a_file("socket"));
    }
    if kind.is_block_device() || kind.is_char_device() {
        return Err(not_a_file("device"));
    }
    let not_ours = |found| DestinationError::NotOurs {
        path: path.to_path_buf(),
        found,
        writes,
    };
    if kind.is_symlink() {
        // Replacing it replaces the link (a rename), never what it points to.
        return if force {
            Ok(())
        } else {
            Err(not_ours("a symbolic link"))
        };
    }
    if read_only(path, &meta) {
        return Err(DestinationError::ReadOnly {
            path: path.to_path_buf(),
        });
    }
    if force || is_kind(path, writes).map_err(io_err)? {
        return Ok(());
    }
    Err(not_ours(match writes {
        Writes::Archive => "a file that is not a hexz archive",
        Writes::Signature => "a file that is not a hexz signature",
        Writes::Other => "a file",
    }))
}

/// No write permission bit at all, or (for a user other than root, who may
/// write anything) none that lets this user open it for writing.
fn read_only(path: &Path, meta: &fs::Metadata) -> bool {
    if meta.permissions().mode() & 0o222 == 0 {
        return true;
    }
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    matches!(
        accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS),
        Err(e) if e == rustix::io::Errno::ACCESS || e == rustix::io::Errno::ROFS
    )
}

/// Whether the regular file at `path` is a hexz file of kind `writes`: a hexz
/// archive has [`MAGIC`] in its first and last 8 bytes, a signature file starts
/// with [`SIGNATURE_MAGIC`]. Reads at most 16 bytes.
pub fn is_kind(path: &Path, writes: Writes) -> io::Result<bool> {
    let mut file = File::options()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    let len = file.metadata()?.len();
    match writes {
        Writes::Archive => {
            if len < (HEADER_LEN + TRAILER_LEN) as u64 {
                return Ok(false);
            }
            let mut head = [0u8; 8];
            file.read_exact(&mut head)?;
            let mut tail = [0u8; 8];
            file.seek(SeekFrom::End(-8))?;
            file.read_exact(&mut tail)?;
            Ok(head == MAGIC && tail == MAGIC)
        }
        Writes::Signature => {
            let mut head = [0u8; 4];
            Ok(len >= 8 && file.read_exact(&mut head).is_ok() && head == SIGNATURE_MAGIC)
        }
        Writes::Other => Ok(false),
    }
}

/// `path` made absolute with symbolic links resolved in the part of it that
/// exists (a destination, or its folders, may not exist yet).
pub fn resolve(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component<'_>> = abs.components().collect();
    for n in (1..=parts.len()).rev() {
        let Ok(mut out) = fs::canonicalize(parts[..n].iter().collect::<PathBuf>()) else {
            continue;
        };
        // The rest does not exist, so it holds no link: `..` is lexical there.
        for part in &parts[n..] {
            match part {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => out.push(name),
                _ => {}
            }
        }
        return out;
    }
    abs
}

/// Whether `a` and `b` are the same existing file (device and inode, links
/// followed).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// `path` relative to the folder `dir` when it lies inside it (both
/// [`resolve`]d), else `None`.
pub fn inside(path: &Path, dir: &Path) -> Option<PathBuf> {
    let (path, dir) = (resolve(path), resolve(dir));
    let rel = path.strip_prefix(&dir).ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn archive_bytes() -> Vec<u8> {
        let options = crate::WriterOptions::new(std::sync::Arc::new(crate::NoCompression));
        let w = crate::ArchiveWriter::new(Vec::new(), options).unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn what_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        // Nothing there.
        check(&at("new.hxz"), Writes::Archive, false).unwrap();
        // An archive: replaced as an archive, not as a signature or other bytes.
        fs::write(at("a.hxz"), archive_bytes()).unwrap();
        check(&at("a.hxz"), Writes::Archive, false).unwrap();
        for writes in [Writes::Signature, Writes::Other] {
            let err = check(&at("a.hxz"), writes, false).unwrap_err();
            assert!(matches!(err, DestinationError::NotOurs { .. }), "{err}");
            check(&at("a.hxz"), writes, true).unwrap();
        }
        // An archive cut short is not one; nor is text.
        let bytes = archive_bytes();
        fs::write(at("cut.hxz"), &bytes[..bytes.len() - 1]).unwrap();
        fs::write(at("recipe.yaml"), "inputs: []\n").unwrap();
        for name in ["cut.hxz", "recipe.yaml"] {
            let err = check(&at(name), Writes::Archive, false).unwrap_err();
            assert!(err.to_string().contains("not a hexz archive"), "{err}");
            assert!(err.to_string().contains("--force"), "{err}");
            check(&at(name), Writes::Archive, true).unwrap();
        }
        // Signatures.
        fs::write(at("a.hxz.sig"), b"HXZS\x01\0\0\0rest").unwrap();
        check(&at("a.hxz.sig"), Writes::Signature, false).unwrap();
        assert!(check(&at("recipe.yaml"), Writes::Signature, false).is_err());
        // A symbolic link: only with force (the link is replaced, not followed).
        std::os::unix::fs::symlink(at("a.hxz"), at("link.hxz")).unwrap();
        let err = check(&at("link.hxz"), Writes::Archive, false).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        check(&at("link.hxz"), Writes::Archive, true).unwrap();
        // Read-only: never, even forced.
        fs::set_permissions(at("a.hxz"), fs::Permissions::from_mode(0o444)).unwrap();
        for force in [false, true] {
            let err = check(&at("a.hxz"), Writes::Archive, force).unwrap_err();
            assert!(matches!(err, DestinationError::ReadOnly { .. }), "{err}");
            assert!(err.to_string().contains("read-only"), "{err}");
        }
        // Folders and FIFOs: never (and a FIFO is not opened: no hang).
        fs::create_dir(at("dir.hxz")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            at("fifo.hxz"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        for name in ["dir.hxz", "fifo.hxz"] {
            let err = check(&at(name), Writes::Archive, true).unwrap_err();
            assert!(matches!(err, DestinationError::NotAFile { .. }), "{err}");
        }
    }

    #[test]
    fn paths_inside_folders_and_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(data.join("a.txt"), b"a").unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("alias")).unwrap();
        // Through a link, and for paths that do not exist yet.
        assert_eq!(
            inside(&dir.path().join("alias/sub/new/out.hxz"), &data),
            Some(PathBuf::from("sub/new/out.hxz"))
        );
        assert_eq!(
            inside(&data.join("./sub/../a.txt"), &dir.path().join("alias")),
            Some(PathBuf::from("a.txt"))
        );
        assert_eq!(inside(&dir.path().join("out.hxz"), &data), None);
        assert_eq!(inside(&data.join("missing/../../out.hxz"), &data), None);
        assert_eq!(inside(&data, &data), None);
        assert!(same_file(
            &data.join("a.txt"),
            &dir.path().join("alias/a.txt")
        ));
        assert!(!same_file(&data.join("a.txt"), &data.join("missing")));
    }
}
