//! The write-ahead log: a local file that makes acknowledged, unflushed writes
//! survive a crash.
//!
//! ```text
//! header (56 + U bytes)
//! 0   8   "HEXZWAL1"
//! 8   8   u64  base version (the version the logged writes apply to)
//! 16  32  root hash of that version
//! 48  4   u32  U, length of the volume URL
//! 52  U   the volume URL (UTF-8)
//! 52+U 4  u32  CRC-32 of bytes 0..52+U
//!
//! record (17 + L bytes), appended and synced before the call returns
//! 0   1   kind: 1 write, 2 truncate, 3 committing
//! 1   8   u64  write: offset; truncate: new length; committing: 0
//! 9   4   u32  L, payload length
//! 13  L   write: the bytes; committing: the 32-byte root hash being committed
//! 13+L 4  u32  CRC-32 of bytes 0..13+L
//! ```
//! All integers little-endian. A torn or corrupt record at the end (a crash in
//! the middle of an append, never acknowledged) ends the log; the rest is kept.
//! After a successful flush the log is replaced (atomically) by an empty one
//! based on the new version.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hexz_format::{Hash32, PendingFile, Sink};

const MAGIC: &[u8; 8] = b"HEXZWAL1";
/// Largest payload of one record (a larger write is logged in pieces).
pub const MAX_RECORD: usize = 16 << 20;

/// One logged operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalOp {
    /// `write_at(offset, data)`.
    Write {
        /// Volume offset.
        offset: u64,
        /// Bytes written.
        data: Vec<u8>,
    },
    /// `truncate(len)`.
    Truncate(u64),
    /// A flush is about to swing the head to this snapshot.
    Committing(Hash32),
}

/// What a log file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalContents {
    /// Version the operations apply to.
    pub base_version: u64,
    /// Its root hash.
    pub base_root: Hash32,
    /// The volume the log belongs to.
    pub volume: String,
    /// Operations, in order.
    pub ops: Vec<WalOp>,
}

/// An open log, appended to.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> super::VolumeError + '_ {
    move |error| super::VolumeError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn header(base_version: u64, base_root: &Hash32, volume: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(56 + volume.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&base_version.to_le_bytes());
    h.extend_from_slice(&base_root.0);
    h.extend_from_slice(&(volume.len() as u32).to_le_bytes());
    h.extend_from_slice(volume.as_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

impl Wal {
    /// Replace the log at `path` with an empty one based on `base_version`.
    pub fn reset(
        path: &Path,
        base_version: u64,
        base_root: &Hash32,
        volume: &str,
    ) -> Result<Self, super::VolumeError> {
        Self::replace(path, base_version, base_root, volume, &[])
    }

    /// Replace the log at `path`, atomically, with one based on `base_version`
    /// holding `ops` (a log moved to a rewritten base, see [`super::retain`]).
    pub fn replace(
        path: &Path,
        base_version: u64,
        base_root: &Hash32,
        volume: &str,
        ops: &[WalOp],
    ) -> Result<Self, super::VolumeError> {
        let err = io_err(path);
        // Written whole before it has a name (a kill leaves nothing), private
        // to its owner: it holds the volume's unflushed writes.
        let mut temp = PendingFile::create(path).map_err(&err)?;
        temp.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(&err)?;
        let mut bytes = header(base_version, base_root, volume);
        for op in ops {
            encode_op(&mut bytes, op);
        }
        temp.write_all(&bytes).map_err(&err)?;
        temp.commit().map_err(&err)?;
        let file = OpenOptions::new().append(true).open(path).map_err(&err)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Open an existing log for appending (after [`read`]).
    pub fn append_to(path: &Path) -> Result<Self, super::VolumeError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Append `op` and sync it to disk.
    pub fn append(&mut self, op: &WalOp) -> Result<(), super::VolumeError> {
        let mut rec = Vec::new();
        encode_op(&mut rec, op);
        let err = io_err(&self.path);
        self.file.write_all(&rec).map_err(&err)?;
        self.file.sync_data().map_err(&err)
    }
}

fn encode_op(out: &mut Vec<u8>, op: &WalOp) {
    match op {
        WalOp::Write { offset, data } => {
            for (i, piece) in data.chunks(MAX_RECORD).enumerate() {
                encode(out, 1, offset + (i * MAX_RECORD) as u64, piece);
            }
        }
        WalOp::Truncate(len) => encode(out, 2, *len, &[]),
        WalOp::Committing(root) => encode(out, 3, 0, &root.0),
    }
}

fn encode(out: &mut Vec<u8>, kind: u8, value: u64, payload: &[u8]) {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Read the log at `path`; `None` when there is no file.
pub fn read(path: &Path) -> Result<Option<WalContents>, super::VolumeError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let bad = |detail: String| super::VolumeError::BadWal {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() < 56 || &bytes[..8] != MAGIC {
        return Err(bad(
            "not a hexz write-ahead log (bad magic or too short)".into()
        ));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let base_version = u64_at(8);
    let mut root = [0u8; 32];
    root.copy_from_slice(&bytes[16..48]);
    let url_len = u32_at(48) as usize;
    if url_len > 8192 || bytes.len() < 56 + url_len {
        return Err(bad(format!("header names a {url_len}-byte URL")));
    }
    let volume = String::from_utf8(bytes[52..52 + url_len].to_vec())
        .map_err(|_| bad("the volume URL is not UTF-8".into()))?;
    if crc32fast::hash(&bytes[..52 + url_len]) != u32_at(52 + url_len) {
        return Err(bad("header checksum mismatch".into()));
    }
    let mut ops = Vec::new();
    let mut at = 56 + url_len;
    while at + 17 <= bytes.len() {
        let kind = bytes[at];
        let value = u64_at(at + 1);
        let len = u32_at(at + 9) as usize;
        if len > MAX_RECORD || at + 17 + len > bytes.len() {
            break; // torn tail
        }
        let end = at + 13 + len;
        if crc32fast::hash(&bytes[at..end]) != u32_at(end) {
            break; // torn or corrupt tail: never acknowledged
        }
        let payload = &bytes[at + 13..end];
        ops.push(match kind {
            1 => WalOp::Write {
                offset: value,
                data: payload.to_vec(),
            },
            2 => WalOp::Truncate(value),
            3 if len == 32 => {
                let mut r = [0u8; 32];
                r.copy_from_slice(payload);
                WalOp::Committing(Hash32(r))
            }
            _ => return Err(bad(format!("unknown record kind {kind} at byte {at}"))),
        });
        at = end + 4;
    }
    Ok(Some(WalContents {
        base_version,
        base_root: Hash32(root),
        volume,
        ops,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn logs_replay_and_torn_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.wal");
        let mut wal = Wal::reset(&path, 7, &Hash32([1; 32]), "s3://b/v").unwrap();
        // Private to its owner, and nothing else left in the folder.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let ops = vec![
            WalOp::Write {
                offset: 10,
                data: b"hello".to_vec(),
            },
            WalOp::Truncate(3),
            WalOp::Committing(Hash32([2; 32])),
        ];
        for op in &ops {
            wal.append(op).unwrap();
        }
        let read_back = read(&path).unwrap().unwrap();
        assert_eq!(read_back.base_version, 7);
        assert_eq!(read_back.volume, "s3://b/v");
        assert_eq!(read_back.ops, ops);
        // A torn last record is dropped, the others kept.
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().ops, ops[..2]);
        // A damaged header is an error, not an empty log.
        bytes[20] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(read(&path).is_err());
    }
}
