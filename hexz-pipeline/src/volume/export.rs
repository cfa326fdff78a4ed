//! Writing a range of a volume to a local file (`hexz volume read -o`).

use std::io::Write;
use std::path::Path;

use hexz_format::destination::Writes;
use hexz_format::{PendingFile, Sink};

use super::{Result, Volume, VolumeError};

/// Bytes read from the volume per step.
const STEP: u64 = 4 << 20;

impl Volume {
    /// Write the bytes `offset..end` (within [`Volume::len`]) to the file
    /// `path`, atomically: an unnamed file named only when complete, so a failed
    /// or killed export leaves nothing there. What is at `path` is replaced only
    /// with `force`, and never a read-only file, a folder or a special file
    /// ([`hexz_format::destination::check`]: a volume image is not a hexz
    /// archive, so any existing file counts as another program's). Returns the
    /// bytes written.
    pub fn export(&self, offset: u64, end: u64, path: &Path, force: bool) -> Result<u64> {
        if end < offset || end > self.len() {
            return Err(VolumeError::OutOfRange {
                volume: self.url().to_string(),
                offset,
                len: end.saturating_sub(offset),
                size: self.len(),
            });
        }
        let io_err = |error| VolumeError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut file =
            PendingFile::replacing(path, Writes::Other, force).map_err(hexz_format::Error::from)?;
        let mut buf = Vec::new();
        let mut at = offset;
        while at < end {
            let n = (end - at).min(STEP) as usize;
            buf.resize(n, 0);
            self.read_at(at, &mut buf)?;
            file.write_all(&buf).map_err(io_err)?;
            at += n as u64;
        }
        file.commit().map_err(io_err)?;
        Ok(end - offset)
    }
}
