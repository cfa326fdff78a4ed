//! The envelope: the clear region between the directory and the trailer that holds
//! key slots and embedded signatures.
//!
//! ```text
//! 0  4  magic "HXZE"
//! 4  2  envelope version (1)
//! 6  2  record count (≤ 256)
//! 8  4  CRC32 of bytes 12..end
//! 12 4  reserved, zero
//! 16 …  records, back to back:
//!       0 2 kind (1 passphrase slot, 2 key-file slot, 3 X25519 slot, 16 signature)
//!       2 2 reserved, zero
//!       4 4 body length
//!       8 … body (see `keyslot` and `crate::sign`)
//! ```
//!
//! The envelope is not covered by the root hash: key slots can be added and
//! removed, and signatures embedded, without changing the archive's identity.
//! Its CRC tells a damaged envelope (corruption) from a key that does not fit.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::keyslot::{KeySlot, SLOT_KEY_FILE, SLOT_PASSPHRASE, SLOT_RECIPIENT};
use crate::bytes::{Cursor, PutLe};
use crate::destination::Writes;
use crate::error::{Error, Result};
use crate::layout::{FLAG_SIGNED, MAX_ENVELOPE_LEN, TRAILER_LEN, Trailer};
use crate::sign::SignatureBlock;
use crate::writer::{PendingFile, Sink};

/// Envelope magic.
pub const ENVELOPE_MAGIC: [u8; 4] = *b"HXZE";
/// Envelope version written and read.
pub const ENVELOPE_VERSION: u16 = 1;
/// Record kind: an embedded signature.
pub const RECORD_SIGNATURE: u16 = 16;
/// Most records in one envelope.
pub const MAX_RECORDS: usize = 256;
const HEADER_LEN: usize = 16;

/// Decoded envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Key slots, in order (slot numbers in `hexz keys` count from 0).
    pub slots: Vec<KeySlot>,
    /// Embedded signatures.
    pub signatures: Vec<SignatureBlock>,
}

impl Envelope {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.signatures.is_empty()
    }

    /// Encode (empty envelopes are not written at all: callers check `is_empty`).
    /// Refuses what a reader would refuse: more than [`MAX_RECORDS`] records or
    /// more than [`MAX_ENVELOPE_LEN`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let records = self.slots.len() + self.signatures.len();
        if records > MAX_RECORDS {
            return Err(Error::InvalidSetting {
                setting: "envelope",
                detail: format!(
                    "{records} key slots and signatures, above the limit {MAX_RECORDS}"
                ),
            });
        }
        let mut out = Vec::new();
        out.extend_from_slice(&ENVELOPE_MAGIC);
        out.put_u16(ENVELOPE_VERSION);
        out.put_u16(records as u16);
        out.put_u32(0);
        out.put_u32(0);
        let mut body = Vec::new();
        for s in &self.slots {
            body.clear();
            s.encode(&mut body);
            record(&mut out, s.kind(), &body);
        }
        for s in &self.signatures {
            body.clear();
            s.encode(&mut body);
            record(&mut out, RECORD_SIGNATURE, &body);
        }
        if out.len() > MAX_ENVELOPE_LEN as usize {
            return Err(Error::InvalidSetting {
                setting: "envelope",
                detail: format!("{} bytes, above the limit {MAX_ENVELOPE_LEN}", out.len()),
            });
        }
        let crc = crc32fast::hash(&out[12..]);
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decode the envelope read at archive `offset`.
    pub fn decode(bytes: &[u8], offset: u64) -> Result<Self> {
        if bytes.len() < HEADER_LEN || bytes[..4] != ENVELOPE_MAGIC {
            return Err(Error::BadMagic {
                what: "envelope",
                offset,
                found: bytes.iter().take(4).copied().collect(),
                expected: ENVELOPE_MAGIC.to_vec(),
            });
        }
        let mut c = Cursor::new(bytes, "envelope", offset);
        c.bytes(4)?;
        let version = c.u16()?;
        if version != ENVELOPE_VERSION {
            return Err(c.corrupt(format!("envelope version {version} is not 1")));
        }
        let count = c.u16()? as usize;
        let stored = c.u32()?;
        let actual = crc32fast::hash(&bytes[12..]);
        if stored != actual {
            return Err(Error::Checksum {
                what: "envelope",
                offset,
                expected: stored,
                actual,
            });
        }
        c.reserved(4)?;
        if count > MAX_RECORDS {
            return Err(Error::LimitExceeded {
                what: "envelope records",
                offset: offset + 6,
                value: count as u64,
                limit: MAX_RECORDS as u64,
            });
        }
        let mut env = Envelope::default();
        for _ in 0..count {
            let kind = c.u16()?;
            c.reserved(2)?;
            let len = c.u32()? as usize;
            if len > c.remaining() {
                return Err(c.corrupt(format!("record of {len} bytes runs past the envelope")));
            }
            let body_start = offset + c.pos() as u64;
            let body = c.bytes(len)?;
            let mut b = Cursor::new(body, "envelope record", body_start);
            match kind {
                SLOT_PASSPHRASE | SLOT_KEY_FILE | SLOT_RECIPIENT => {
                    env.slots.push(KeySlot::decode(kind, &mut b)?);
                }
                RECORD_SIGNATURE => env.signatures.push(SignatureBlock::decode_body(&mut b)?),
                other => return Err(b.corrupt(format!("unknown envelope record kind {other}"))),
            }
            b.finish()?;
        }
        c.finish()?;
        Ok(env)
    }
}

fn record(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.put_u16(kind);
    out.put_u16(0);
    out.put_u32(body.len() as u32);
    out.extend_from_slice(body);
}

/// Replace the envelope of the archive at `path` (key slots, signatures), leaving
/// every other byte — hence the root hash — unchanged. The new file is written
/// beside the old one ([`PendingFile`]: unnamed until whole, the old file's mode)
/// and renamed over it, so a failure or a kill leaves the old archive.
/// The archive's trailer and directory must already have been checked (open it
/// first); the envelope, if any, must lie between the directory and the trailer.
/// A symbolic link is followed (the archive it names is rewritten, the link
/// stays); a read-only archive is not rewritten
/// ([`DestinationError::ReadOnly`](crate::destination::DestinationError)).
pub fn rewrite_envelope(path: &Path, trailer: &Trailer, envelope: &Envelope) -> Result<()> {
    let io_err = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let path = &std::fs::canonicalize(path).map_err(io_err)?;
    let dir_end = trailer.directory_offset + u64::from(trailer.directory_len);
    if trailer.envelope_len > 0 && trailer.envelope_offset != dir_end {
        return Err(Error::Corrupt {
            what: "envelope",
            offset: trailer.envelope_offset,
            detail: "the envelope does not follow the directory; cannot rewrite it".into(),
        });
    }
    let bytes = if envelope.is_empty() {
        Vec::new()
    } else {
        envelope.encode()?
    };
    // The same bytes up to the envelope (copy_file_range where the file system
    // can) and the same mode, in a file named over the archive only when whole.
    let src = File::open(path).map_err(io_err)?;
    let mut out = PendingFile::replacing(path, Writes::Archive, false)?;
    out.set_permissions(src.metadata().map_err(io_err)?.permissions())
        .map_err(io_err)?;
    out.copy_from(&src, dir_end).map_err(io_err)?;
    let mut t = *trailer;
    t.envelope_offset = if bytes.is_empty() { 0 } else { dir_end };
    t.envelope_len = bytes.len() as u32;
    t.flags = (t.flags & !FLAG_SIGNED)
        | if envelope.signatures.is_empty() {
            0
        } else {
            FLAG_SIGNED
        };
    out.write_all(&bytes).map_err(io_err)?;
    let encoded: [u8; TRAILER_LEN] = t.encode();
    out.write_all(&encoded).map_err(io_err)?;
    out.commit().map_err(io_err)?;
    Ok(())
}

/// The envelope, trailer flags and signature of an archive the writer is
/// finishing: its key slots when encrypted, its signature when signing is set and
/// not detached. A plain, unsigned archive gets no envelope (and stays byte-identical
/// to archives written before envelopes existed).
pub(crate) fn for_new_archive(
    options: &crate::writer::WriterOptions,
    root: crate::error::Hash32,
    catalog: crate::error::Hash32,
    sections: &[(u16, u16, Vec<u8>)],
) -> Result<(Vec<u8>, u32, Option<SignatureBlock>)> {
    let mut env = Envelope::default();
    let mut flags = 0;
    if let Some(enc) = &options.encryption {
        env.slots = enc.slots.as_ref().clone();
        flags |= crate::layout::FLAG_ENCRYPTED;
    }
    let signature = options.signing.as_ref().map(|signing| {
        let provenance = sections
            .iter()
            .find(|(kind, _, _)| *kind == crate::layout::SECTION_PROVENANCE)
            .map(|(_, _, data)| crate::error::Hash32(*blake3::hash(data).as_bytes()))
            .unwrap_or(crate::error::Hash32([0; 32]));
        let manifest = crate::sign::Manifest {
            major: crate::layout::VERSION_MAJOR,
            minor: crate::layout::VERSION_MINOR,
            encrypted: options.encryption.is_some(),
            root,
            catalog,
            provenance,
            parents: sections
                .iter()
                .find(|(kind, _, _)| *kind == crate::layout::SECTION_PARENTS)
                .and_then(|(_, _, data)| crate::parents::decode_parents(data, 0).ok())
                .map(|refs| refs.iter().map(|r| r.root_hash).collect())
                .unwrap_or_default(),
        };
        let block = SignatureBlock::sign(&signing.key, &manifest);
        if !signing.detached {
            env.signatures.push(block.clone());
            flags |= FLAG_SIGNED;
        }
        block
    });
    let bytes = if env.is_empty() {
        Vec::new()
    } else {
        env.encode()?
    };
    Ok((bytes, flags, signature))
}

/// What lies at the end of an archive, read without opening it.
#[derive(Debug)]
pub struct Tail {
    /// The checked trailer.
    pub trailer: Trailer,
    /// The root hash: BLAKE3 of the stored directory (its CRC checked).
    pub root: crate::error::Hash32,
    /// The envelope, if any.
    pub envelope: Option<Envelope>,
}

/// The last [`OPEN_TAIL_LEN`](crate::layout::OPEN_TAIL_LEN) bytes of an archive,
/// fetched with one read (as `Archive::open` does): the trailer, and usually the
/// directory and envelope, come from it without another request.
struct TailRead<'a> {
    source: &'a dyn crate::source::ReadAt,
    start: u64,
    bytes: Vec<u8>,
}

impl<'a> TailRead<'a> {
    fn new(source: &'a dyn crate::source::ReadAt) -> Result<Self> {
        let size = source.size();
        let min = (crate::layout::HEADER_LEN + TRAILER_LEN) as u64;
        if size < min {
            return Err(Error::Truncated {
                what: "archive (header and trailer)",
                offset: 0,
                end: min,
                size,
            });
        }
        let len = size.min(crate::layout::OPEN_TAIL_LEN);
        let start = size - len;
        let bytes = crate::source::read_vec(source, "archive tail", start, len as usize)?;
        Ok(Self {
            source,
            start,
            bytes,
        })
    }

    /// `len` bytes at `at`: from the tail when they lie in it, else read.
    fn get(&self, what: &'static str, at: u64, len: usize) -> Result<Vec<u8>> {
        if at >= self.start {
            let from = (at - self.start) as usize;
            if let Some(b) = self.bytes.get(from..from.saturating_add(len)) {
                return Ok(b.to_vec());
            }
        }
        crate::source::read_vec(self.source, what, at, len)
    }

    fn trailer(&self) -> Result<Trailer> {
        let mut fixed = [0u8; TRAILER_LEN];
        fixed.copy_from_slice(&self.bytes[self.bytes.len() - TRAILER_LEN..]);
        Trailer::decode(&fixed, self.source.size() - TRAILER_LEN as u64)
    }

    fn envelope(&self, trailer: &Trailer) -> Result<Option<Envelope>> {
        if trailer.envelope_len == 0 {
            return Ok(None);
        }
        let env = self.get(
            "envelope",
            trailer.envelope_offset,
            trailer.envelope_len as usize,
        )?;
        Envelope::decode(&env, trailer.envelope_offset).map(Some)
    }
}

/// Read the trailer, the stored directory (CRC checked, hashed into the root hash,
/// not decrypted or decoded) and the envelope of the archive in `source`: one
/// read of the tail when the directory and envelope lie in its last 64 KiB.
pub fn read_tail(source: &dyn crate::source::ReadAt) -> Result<Tail> {
    let tail = TailRead::new(source)?;
    let trailer = tail.trailer()?;
    let dir = tail.get(
        "directory",
        trailer.directory_offset,
        trailer.directory_len as usize,
    )?;
    let crc = crc32fast::hash(&dir);
    if crc != trailer.directory_crc {
        return Err(Error::Checksum {
            what: "directory",
            offset: trailer.directory_offset,
            expected: trailer.directory_crc,
            actual: crc,
        });
    }
    Ok(Tail {
        root: crate::error::Hash32(*blake3::hash(&dir).as_bytes()),
        envelope: tail.envelope(&trailer)?,
        trailer,
    })
}

/// Read just the envelope of the archive in `source` (trailer, then envelope),
/// without opening the archive: key slots are listed without any key.
pub fn read_envelope(source: &dyn crate::source::ReadAt) -> Result<Option<Envelope>> {
    let tail = TailRead::new(source)?;
    tail.envelope(&tail.trailer()?)
}
