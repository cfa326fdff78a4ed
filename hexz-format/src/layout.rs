//! The v1 byte layout: constants, fixed structures and their encoders/decoders.
//!
//! ```text
//!  offset 0                                                          EOF-64     EOF
//!  ┌────────┬──────────────────────────────┬─────────┬───────────┬──────────┬───────┐
//!  │ header │ chunk blobs and pages,        │directory│ envelope  │ trailer  │       │
//!  │ 16 B   │ interleaved as written        │ (fixed  │ (optional │ 64 B     │       │
//!  │        │ (each: codec output, CRC32 +  │  + N×64)│  TLVs:    │ locates  │       │
//!  │        │  BLAKE3 held by its referrer) │         │  key slots│ dir+env  │       │
//!  └────────┴──────────────────────────────┴─────────┴───────────┴──────────┴───────┘
//!
//!  trailer ──► directory ──► tree roots ──► internal pages ──► leaf pages ──► chunks
//!              root hash = BLAKE3(directory bytes as stored)
//! ```
//!
//! All integers are little-endian. `docs/FORMAT.md` is the prose version of this
//! module; keep them in step.

use crate::bytes::{Cursor, PutLe};
use crate::error::{Error, Result};

/// File magic, at offset 0 and in the last 8 bytes of the trailer.
pub const MAGIC: [u8; 8] = *b"\x89HXZ\r\n\x1a\n";
/// Directory magic.
pub const DIRECTORY_MAGIC: [u8; 4] = *b"HXZD";
/// Major version this crate writes.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version this crate writes.
pub const VERSION_MINOR: u16 = 0;
/// Oldest major version this crate reads.
pub const OLDEST_SUPPORTED_MAJOR: u16 = 1;
/// Newest major version this crate reads (any minor of it).
pub const NEWEST_SUPPORTED_MAJOR: u16 = 1;

/// Header size (offset 0).
pub const HEADER_LEN: usize = 16;
/// Trailer size (at EOF).
pub const TRAILER_LEN: usize = 64;
/// Fixed part of the directory.
pub const DIRECTORY_FIXED_LEN: usize = 352;
/// One section descriptor in the directory.
pub const SECTION_LEN: usize = 64;
/// Encoded [`PageRef`].
pub const PAGE_REF_LEN: usize = 56;
/// Page header.
pub const PAGE_HEADER_LEN: usize = 16;
/// Encoded [`ChunkRecord`].
pub const CHUNK_RECORD_LEN: usize = 64;
/// Encoded chunk-index internal record.
pub const CHUNK_INTERNAL_LEN: usize = 64;
/// Encoded catalog internal record.
pub const CATALOG_INTERNAL_LEN: usize = 72;
/// Fixed part of an encoded catalog entry.
pub const ENTRY_FIXED_LEN: usize = 56;

/// Bytes the reader fetches from the end at open: trailer, envelope and directory
/// usually fit, so an open is one read (two when they do not).
pub const OPEN_TAIL_LEN: u64 = 64 * 1024;

/// Largest directory accepted as stored: fixed part plus [`MAX_SECTIONS`]
/// descriptors, plus the 16-byte tag of a sealed (encrypted) directory.
pub const MAX_DIRECTORY_LEN: u32 =
    (DIRECTORY_FIXED_LEN + MAX_SECTIONS * SECTION_LEN + crate::crypto::TAG_LEN) as u32;
/// Most sections a directory may list.
pub const MAX_SECTIONS: usize = 1024;
/// Largest envelope accepted.
pub const MAX_ENVELOPE_LEN: u32 = 1 << 20;
/// Largest decoded page (and section) accepted.
pub const MAX_PAGE_LEN: u32 = 16 << 20;
/// Largest stored page: a codec may expand incompressible input a little.
pub const MAX_STORED_PAGE_LEN: u32 = MAX_PAGE_LEN + (MAX_PAGE_LEN >> 4) + 4096;
/// Largest chunk accepted (FastCDC's largest maximum).
pub const MAX_CHUNK_LEN: u32 = 16 << 20;
/// Largest stored chunk.
pub const MAX_STORED_CHUNK_LEN: u32 = MAX_CHUNK_LEN + (MAX_CHUNK_LEN >> 4) + 4096;
/// Deepest tree accepted.
pub const MAX_TREE_DEPTH: u8 = 8;
/// Longest entry name, in bytes.
pub const MAX_NAME_LEN: usize = 4096;
/// Longest symlink target, in bytes.
pub const MAX_TARGET_LEN: usize = 4096;
/// Largest user-column blob of one entry.
pub const MAX_COLUMNS_LEN: usize = 1 << 20;
/// Longest codec name.
pub const MAX_CODEC_NAME_LEN: usize = 32;

/// Trailer flag: the directory and every blob are sealed (encryption, reserved).
pub const FLAG_ENCRYPTED: u32 = 1;
/// Trailer flag: the envelope holds a signature (reserved).
pub const FLAG_SIGNED: u32 = 1 << 1;
/// Flags this version understands.
pub const KNOWN_TRAILER_FLAGS: u32 = FLAG_ENCRYPTED | FLAG_SIGNED;

/// Chunker kind: FastCDC 2020, normalization level 1, gear seed 0.
pub const CHUNKER_FASTCDC_2020: u8 = 1;
/// Hash kind: unkeyed BLAKE3.
pub const HASH_BLAKE3: u8 = 1;
/// Hash kind: keyed BLAKE3 (encrypted archives, reserved).
pub const HASH_BLAKE3_KEYED: u8 = 2;

/// Page-ref flag: the blob is stored without compression.
pub const BLOB_RAW: u8 = 1;
/// Page-ref flag: the blob is compressed against a base page in a parent (thin
/// children, see [`crate::delta`]); never together with [`BLOB_RAW`].
pub const BLOB_DELTA: u8 = 2;

/// Chunk flag: the chunk is all zeros and has no blob.
pub const CHUNK_ZERO: u8 = 1;
/// Chunk flag: the blob is stored without compression.
pub const CHUNK_RAW: u8 = 2;
/// Chunk flag: the blob is compressed against a base chunk stored whole in an
/// ancestor (thin children, see [`crate::chunkdelta`]); never together with
/// [`CHUNK_RAW`] or [`CHUNK_ZERO`].
pub const CHUNK_DELTA: u8 = 4;

/// Section kind: provenance, UTF-8 JSON.
pub const SECTION_PROVENANCE: u16 = 1;
/// Section kind: parent archives (thin snapshots, reserved).
pub const SECTION_PARENTS: u16 = 2;
/// Section kind: user-column schema (see [`crate::columns`]).
pub const SECTION_COLUMNS: u16 = 3;
/// Section kind: the bases of a thin child's delta pages (see [`crate::delta`]),
/// written critical.
pub const SECTION_PAGE_BASES: u16 = 4;
/// Section kind: the bases of the delta chunks a thin child reads (see
/// [`crate::chunkdelta`]), written critical.
pub const SECTION_CHUNK_BASES: u16 = 5;
/// Section flag: a reader that does not know the kind must refuse the archive.
pub const SECTION_CRITICAL: u16 = 1;

/// Entry flag: the entry records its owner (uid at offset 48, gid at 52).
pub const ENTRY_HAS_OWNER: u8 = 1;
/// Entry flags this version understands.
pub const KNOWN_ENTRY_FLAGS: u8 = ENTRY_HAS_OWNER;

/// Page kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageKind {
    /// Leaf of the chunk index: [`ChunkRecord`]s.
    ChunkLeaf = 1,
    /// Internal node of the chunk index.
    ChunkInternal = 2,
    /// Leaf of the catalog: entries.
    CatalogLeaf = 3,
    /// Internal node of the catalog.
    CatalogInternal = 4,
    /// Leaf of the name index.
    NameLeaf = 5,
    /// Internal node of the name index.
    NameInternal = 6,
}

impl PageKind {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::ChunkLeaf,
            2 => Self::ChunkInternal,
            3 => Self::CatalogLeaf,
            4 => Self::CatalogInternal,
            5 => Self::NameLeaf,
            6 => Self::NameInternal,
            _ => return None,
        })
    }
}

/// The 16-byte header at offset 0.
///
/// ```text
/// 0  8  magic 89 48 58 5A 0D 0A 1A 0A
/// 8  2  major version
/// 10 2  minor version
/// 12 4  reserved, zero
/// ```
pub fn encode_header() -> [u8; HEADER_LEN] {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    out.put_u16(VERSION_MAJOR);
    out.put_u16(VERSION_MINOR);
    out.put_u32(0);
    let mut fixed = [0; HEADER_LEN];
    fixed.copy_from_slice(&out);
    fixed
}

/// Check a header's magic and reserved bytes; return its (major, minor) version.
/// The version that governs is the trailer's; see [`check_header`].
pub fn decode_header(bytes: &[u8]) -> Result<(u16, u16)> {
    if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
        return Err(Error::BadMagic {
            what: "header",
            offset: 0,
            found: bytes.iter().take(8).copied().collect(),
            expected: MAGIC.to_vec(),
        });
    }
    let mut c = Cursor::new(&bytes[8..HEADER_LEN], "header", 8);
    let version = (c.u16()?, c.u16()?);
    c.reserved(4)?;
    Ok(version)
}

/// Check a whole header against the archive's decoded trailer: magic, reserved
/// bytes, and a version equal to the trailer's.
pub fn check_header(bytes: &[u8], trailer: &Trailer) -> Result<()> {
    let (major, minor) = decode_header(bytes)?;
    if (major, minor) != (trailer.major, trailer.minor) {
        return Err(Error::Corrupt {
            what: "header",
            offset: 8,
            detail: format!(
                "header version {major}.{minor} differs from the trailer's {}.{}",
                trailer.major, trailer.minor
            ),
        });
    }
    Ok(())
}

/// The fixed trailer in the last 64 bytes.
///
/// ```text
/// 0  8  directory offset
/// 8  4  directory stored length
/// 12 4  directory CRC32 (of the stored bytes)
/// 16 8  envelope offset (0 when there is none)
/// 24 4  envelope length
/// 28 4  flags (bit 0 encrypted, bit 1 signed)
/// 32 2  major version
/// 34 2  minor version
/// 36 12 reserved, zero
/// 48 4  CRC32 of bytes 0..48
/// 52 4  reserved, zero
/// 56 8  magic 89 48 58 5A 0D 0A 1A 0A
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailer {
    /// Where the directory starts.
    pub directory_offset: u64,
    /// Directory length as stored.
    pub directory_len: u32,
    /// CRC32 of the stored directory.
    pub directory_crc: u32,
    /// Where the envelope starts (0: none).
    pub envelope_offset: u64,
    /// Envelope length.
    pub envelope_len: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Writer's major version.
    pub major: u16,
    /// Writer's minor version.
    pub minor: u16,
}

impl Trailer {
    /// Encode to the 64 fixed bytes.
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut out = Vec::with_capacity(TRAILER_LEN);
        out.put_u64(self.directory_offset);
        out.put_u32(self.directory_len);
        out.put_u32(self.directory_crc);
        out.put_u64(self.envelope_offset);
        out.put_u32(self.envelope_len);
        out.put_u32(self.flags);
        out.put_u16(self.major);
        out.put_u16(self.minor);
        out.put_zeros(12);
        let crc = crc32fast::hash(&out[..48]);
        out.put_u32(crc);
        out.put_u32(0);
        out.extend_from_slice(&MAGIC);
        let mut fixed = [0; TRAILER_LEN];
        fixed.copy_from_slice(&out);
        fixed
    }

    /// Decode and check the trailer found at `offset` of an archive of `size` bytes:
    /// magic, CRC, version range (an unsupported version is reported only with a
    /// valid CRC; otherwise the trailer is damaged), reserved bytes, flags, and
    /// that the regions it points to lie inside the file and before the trailer.
    pub fn decode(bytes: &[u8; TRAILER_LEN], offset: u64) -> Result<Self> {
        if bytes[56..64] != MAGIC {
            return Err(Error::BadMagic {
                what: "trailer",
                offset: offset + 56,
                found: bytes[56..64].to_vec(),
                expected: MAGIC.to_vec(),
            });
        }
        let mut c = Cursor::new(bytes, "trailer", offset);
        let t = Trailer {
            directory_offset: c.u64()?,
            directory_len: c.u32()?,
            directory_crc: c.u32()?,
            envelope_offset: c.u64()?,
            envelope_len: c.u32()?,
            flags: c.u32()?,
            major: c.u16()?,
            minor: c.u16()?,
        };
        // The CRC before the version: a damaged version byte is damage, not a
        // newer format. Every major keeps the magic, the version at 32..36 and
        // this CRC of bytes 0..48 at 48..52, so that an older reader can tell an
        // archive it cannot read from a damaged one.
        let stored = u32::from_le_bytes([bytes[48], bytes[49], bytes[50], bytes[51]]);
        let actual = crc32fast::hash(&bytes[..48]);
        if stored != actual {
            return Err(Error::Checksum {
                what: "trailer",
                offset,
                expected: stored,
                actual,
            });
        }
        if !(OLDEST_SUPPORTED_MAJOR..=NEWEST_SUPPORTED_MAJOR).contains(&t.major) {
            return Err(Error::UnsupportedVersion {
                major: t.major,
                minor: t.minor,
                oldest_major: OLDEST_SUPPORTED_MAJOR,
                newest_major: NEWEST_SUPPORTED_MAJOR,
            });
        }
        c.reserved(12)?;
        // Bytes 52..56 lie outside the CRC: check them on their own.
        if bytes[52..56] != [0; 4] {
            return Err(Error::Corrupt {
                what: "trailer",
                offset: offset + 52,
                detail: "reserved bytes are not zero".into(),
            });
        }
        if t.flags & !KNOWN_TRAILER_FLAGS != 0 {
            return Err(Error::Corrupt {
                what: "trailer",
                offset: offset + 28,
                detail: format!("unknown flags {:#x}", t.flags & !KNOWN_TRAILER_FLAGS),
            });
        }
        if t.directory_len > MAX_DIRECTORY_LEN {
            return Err(Error::LimitExceeded {
                what: "directory length",
                offset: offset + 8,
                value: t.directory_len.into(),
                limit: MAX_DIRECTORY_LEN.into(),
            });
        }
        if t.envelope_len > MAX_ENVELOPE_LEN {
            return Err(Error::LimitExceeded {
                what: "envelope length",
                offset: offset + 24,
                value: t.envelope_len.into(),
                limit: MAX_ENVELOPE_LEN.into(),
            });
        }
        let in_file = |start: u64, len: u32| {
            start >= HEADER_LEN as u64 && start.checked_add(len.into()).is_some_and(|e| e <= offset)
        };
        if !in_file(t.directory_offset, t.directory_len) {
            return Err(Error::Corrupt {
                what: "trailer",
                offset,
                detail: format!(
                    "directory {}+{} lies outside the archive body (0..{offset})",
                    t.directory_offset, t.directory_len
                ),
            });
        }
        if t.envelope_len == 0 && t.envelope_offset != 0 {
            return Err(Error::Corrupt {
                what: "trailer",
                offset: offset + 16,
                detail: "envelope offset set but its length is 0".into(),
            });
        }
        if t.envelope_len > 0 && !in_file(t.envelope_offset, t.envelope_len) {
            return Err(Error::Corrupt {
                what: "trailer",
                offset,
                detail: format!(
                    "envelope {}+{} lies outside the archive body (0..{offset})",
                    t.envelope_offset, t.envelope_len
                ),
            });
        }
        Ok(t)
    }
}

/// A reference to a stored blob (page or section): where it is and how to check it.
///
/// ```text
/// 0  8  offset in the archive
/// 8  4  stored length
/// 12 4  raw (decoded) length
/// 16 4  CRC32 of the stored bytes
/// 20 1  flags (bit 0: stored raw, not compressed)
/// 21 3  reserved, zero
/// 24 32 BLAKE3 of the stored bytes
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageRef {
    /// Offset of the blob.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u32,
    /// Decoded length.
    pub raw_len: u32,
    /// CRC32 of the stored bytes.
    pub crc: u32,
    /// `BLOB_*` flags.
    pub flags: u8,
    /// BLAKE3 of the stored bytes.
    pub hash: [u8; 32],
}

impl PageRef {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.offset);
        out.put_u32(self.stored_len);
        out.put_u32(self.raw_len);
        out.put_u32(self.crc);
        out.put_u8(self.flags);
        out.put_zeros(3);
        out.extend_from_slice(&self.hash);
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self> {
        let r = PageRef {
            offset: c.u64()?,
            stored_len: c.u32()?,
            raw_len: c.u32()?,
            crc: c.u32()?,
            flags: c.u8()?,
            hash: {
                c.reserved(3)?;
                c.array()?
            },
        };
        if r.flags & BLOB_RAW != 0 && r.flags & BLOB_DELTA != 0 {
            return Err(c.corrupt("page ref is both raw and a delta".to_string()));
        }
        if r.flags & !(BLOB_RAW | BLOB_DELTA) != 0 {
            return Err(c.corrupt(format!("unknown page-ref flags {:#x}", r.flags)));
        }
        if r.raw_len > MAX_PAGE_LEN {
            return Err(Error::LimitExceeded {
                what: "page length",
                offset: r.offset,
                value: r.raw_len.into(),
                limit: MAX_PAGE_LEN.into(),
            });
        }
        if r.stored_len > MAX_STORED_PAGE_LEN {
            return Err(Error::LimitExceeded {
                what: "stored page length",
                offset: r.offset,
                value: r.stored_len.into(),
                limit: MAX_STORED_PAGE_LEN.into(),
            });
        }
        Ok(r)
    }
}

/// One chunk of the logical stream (a leaf record of the chunk index).
///
/// ```text
/// 0  8  logical offset of the chunk's first byte
/// 8  8  blob offset in the archive (0 for zero chunks)
/// 16 4  raw length
/// 20 4  stored length (0 for zero chunks)
/// 24 4  CRC32 of the stored bytes
/// 28 2  source: 0 = this archive, n = n-th parent (thin snapshots)
/// 30 1  flags (bit 0 all-zero, no blob; bit 1 stored raw)
/// 31 1  reserved, zero
/// 32 32 chunk id: BLAKE3 of the raw bytes (32 zero bytes for zero chunks)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Logical offset.
    pub logical_offset: u64,
    /// Blob offset.
    pub blob_offset: u64,
    /// Raw length.
    pub raw_len: u32,
    /// Stored length.
    pub stored_len: u32,
    /// CRC32 of the stored bytes.
    pub crc: u32,
    /// Which archive holds the blob.
    pub source: u16,
    /// `CHUNK_*` flags.
    pub flags: u8,
    /// BLAKE3 of the raw bytes.
    pub id: [u8; 32],
}

impl ChunkRecord {
    /// Whether this chunk is all zeros (no blob).
    pub fn is_zero(&self) -> bool {
        self.flags & CHUNK_ZERO != 0
    }

    /// One past the last logical byte.
    pub fn logical_end(&self) -> u64 {
        self.logical_offset + u64::from(self.raw_len)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.logical_offset);
        out.put_u64(self.blob_offset);
        out.put_u32(self.raw_len);
        out.put_u32(self.stored_len);
        out.put_u32(self.crc);
        out.put_u16(self.source);
        out.put_u8(self.flags);
        out.put_u8(0);
        out.extend_from_slice(&self.id);
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self> {
        let r = ChunkRecord {
            logical_offset: c.u64()?,
            blob_offset: c.u64()?,
            raw_len: c.u32()?,
            stored_len: c.u32()?,
            crc: c.u32()?,
            source: c.u16()?,
            flags: c.u8()?,
            id: {
                c.reserved(1)?;
                c.array()?
            },
        };
        if r.flags & !(CHUNK_ZERO | CHUNK_RAW | CHUNK_DELTA) != 0 {
            return Err(c.corrupt(format!("unknown chunk flags {:#x}", r.flags)));
        }
        if r.flags & CHUNK_DELTA != 0 && r.flags & (CHUNK_ZERO | CHUNK_RAW) != 0 {
            return Err(c.corrupt("a delta chunk flagged zero or raw"));
        }
        if r.raw_len == 0 {
            return Err(c.corrupt("empty chunk"));
        }
        if r.raw_len > MAX_CHUNK_LEN {
            return Err(Error::LimitExceeded {
                what: "chunk length",
                offset: r.blob_offset,
                value: r.raw_len.into(),
                limit: MAX_CHUNK_LEN.into(),
            });
        }
        if r.stored_len > MAX_STORED_CHUNK_LEN {
            return Err(Error::LimitExceeded {
                what: "stored chunk length",
                offset: r.blob_offset,
                value: r.stored_len.into(),
                limit: MAX_STORED_CHUNK_LEN.into(),
            });
        }
        // Stored raw: the stored bytes are the raw bytes, plus the 16-byte tag in
        // encrypted archives (the exact length is checked when the blob is read).
        if r.flags & CHUNK_RAW != 0
            && r.stored_len != r.raw_len
            && r.stored_len != r.raw_len + crate::crypto::TAG_LEN as u32
        {
            return Err(c.corrupt("raw chunk whose stored and raw lengths differ"));
        }
        if r.logical_offset.checked_add(r.raw_len.into()).is_none() {
            return Err(c.corrupt("chunk extends past 2^64"));
        }
        Ok(r)
    }
}

/// Kind of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A regular file: bytes in the stream.
    File = 1,
    /// A directory: no bytes.
    Dir = 2,
    /// A symbolic link: the target is in the catalog, no bytes.
    Symlink = 3,
    /// A record of a dataset: bytes in the stream, usually with user columns.
    Record = 4,
}

impl EntryKind {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::File,
            2 => Self::Dir,
            3 => Self::Symlink,
            4 => Self::Record,
            _ => return None,
        })
    }

    /// Lower-case name (`file`, `dir`, `symlink`, `record`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Record => "record",
        }
    }

    /// Whether entries of this kind have bytes in the stream.
    pub fn has_data(self) -> bool {
        matches!(self, Self::File | Self::Record)
    }
}

/// One entry of the catalog.
///
/// ```text
/// 0  4  record length (this whole record, fixed part included)
/// 4  1  kind (1 file, 2 dir, 3 symlink, 4 record)
/// 5  1  flags (bit 0: has owner; other bits zero)
/// 6  2  name length
/// 8  4  mode (Unix permission bits and file-type bits as in st_mode)
/// 12 4  mtime nanoseconds (0..1e9)
/// 16 8  mtime seconds since the Unix epoch (signed)
/// 24 8  offset of the entry's first byte in the logical stream
/// 32 8  size in bytes
/// 40 2  symlink target length
/// 42 2  reserved, zero
/// 44 4  user-columns length
/// 48 4  owner uid (zero without the has-owner flag)
/// 52 4  owner gid (zero without the has-owner flag)
/// 56 .. name (UTF-8), target (UTF-8), user columns
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the catalog (stream order), from 0.
    pub id: u64,
    /// Path-like name, `/`-separated, relative.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Mode bits.
    pub mode: u32,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Offset in the logical stream.
    pub offset: u64,
    /// Size in bytes (0 for dirs and symlinks).
    pub size: u64,
    /// Symlink target.
    pub target: Option<String>,
    /// Numeric owner, when the writer recorded one.
    pub owner: Option<Owner>,
    /// Encoded user columns (empty in archives without columns).
    pub columns: Vec<u8>,
}

/// The numeric owner of an entry (Unix user and group ids, as in `st_uid` and
/// `st_gid`). Names are not recorded: ids are what `chown` restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Entry {
    pub(crate) fn encoded_len(&self) -> usize {
        ENTRY_FIXED_LEN
            + self.name.len()
            + self.target.as_ref().map_or(0, String::len)
            + self.columns.len()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let target = self.target.as_deref().unwrap_or("");
        out.put_u32(self.encoded_len() as u32);
        out.put_u8(self.kind as u8);
        out.put_u8(if self.owner.is_some() {
            ENTRY_HAS_OWNER
        } else {
            0
        });
        out.put_u16(self.name.len() as u16);
        out.put_u32(self.mode);
        out.put_u32(self.mtime_nsec);
        out.put_i64(self.mtime);
        out.put_u64(self.offset);
        out.put_u64(self.size);
        out.put_u16(target.len() as u16);
        out.put_u16(0);
        out.put_u32(self.columns.len() as u32);
        let owner = self.owner.unwrap_or(Owner { uid: 0, gid: 0 });
        out.put_u32(owner.uid);
        out.put_u32(owner.gid);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(&self.columns);
    }

    pub(crate) fn decode(c: &mut Cursor<'_>, id: u64) -> Result<Self> {
        let start = c.pos();
        let len = c.u32()? as usize;
        let kind_byte = c.u8()?;
        let kind = EntryKind::from_u8(kind_byte)
            .ok_or_else(|| c.corrupt(format!("unknown entry kind {kind_byte}")))?;
        let flags = c.u8()?;
        if flags & !KNOWN_ENTRY_FLAGS != 0 {
            return Err(c.corrupt(format!("unknown entry flags {flags:#x}")));
        }
        let name_len = c.u16()? as usize;
        let mode = c.u32()?;
        let mtime_nsec = c.u32()?;
        let mtime = c.i64()?;
        let offset = c.u64()?;
        let size = c.u64()?;
        let target_len = c.u16()? as usize;
        c.reserved(2)?;
        let columns_len = c.u32()? as usize;
        let owner = if flags & ENTRY_HAS_OWNER != 0 {
            Some(Owner {
                uid: c.u32()?,
                gid: c.u32()?,
            })
        } else {
            // Without the flag the owner bytes are reserved: zero.
            c.reserved(8)?;
            None
        };
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(c.corrupt(format!(
                "entry name length {name_len} outside 1..={MAX_NAME_LEN}"
            )));
        }
        if target_len > MAX_TARGET_LEN || columns_len > MAX_COLUMNS_LEN {
            return Err(c.corrupt("entry target or columns too long"));
        }
        if len != ENTRY_FIXED_LEN + name_len + target_len + columns_len {
            return Err(c.corrupt(format!(
                "entry record length {len} does not match its fields"
            )));
        }
        if mtime_nsec >= 1_000_000_000 {
            return Err(c.corrupt(format!("mtime nanoseconds {mtime_nsec} out of range")));
        }
        if offset.checked_add(size).is_none() {
            return Err(c.corrupt("entry extends past 2^64"));
        }
        let name = c.utf8(name_len, "entry name")?.to_string();
        let target = c.utf8(target_len, "symlink target")?.to_string();
        let columns = c.bytes(columns_len)?.to_vec();
        debug_assert_eq!(c.pos() - start, len);
        if kind == EntryKind::Symlink && target.is_empty() {
            return Err(c.corrupt(format!(
                "symlink `{}` has no target",
                crate::error::Excerpt(&name)
            )));
        }
        if !kind.has_data() && size != 0 {
            return Err(c.corrupt(format!(
                "{} `{}` has size {size}",
                kind.as_str(),
                crate::error::Excerpt(&name)
            )));
        }
        if kind != EntryKind::Symlink && !target.is_empty() {
            return Err(c.corrupt(format!(
                "{} `{}` has a symlink target",
                kind.as_str(),
                crate::error::Excerpt(&name)
            )));
        }
        Ok(Entry {
            id,
            name,
            kind,
            mode,
            mtime,
            mtime_nsec,
            offset,
            size,
            target: (kind == EntryKind::Symlink).then_some(target),
            owner,
            columns,
        })
    }
}

/// Root of one paged tree.
///
/// ```text
/// 0  1  depth: 0 = empty tree (root is all zeros), 1 = root is a leaf, ...
/// 1  7  reserved, zero
/// 8  8  number of leaf records
/// 16 56 root page ref
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeRoot {
    /// Levels in the tree (0: empty).
    pub depth: u8,
    /// Leaf records.
    pub count: u64,
    /// Root page.
    pub root: PageRef,
}

impl TreeRoot {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.depth);
        out.put_zeros(7);
        out.put_u64(self.count);
        self.root.encode(out);
    }

    fn decode(c: &mut Cursor<'_>) -> Result<Self> {
        let depth = c.u8()?;
        c.reserved(7)?;
        let count = c.u64()?;
        let root = PageRef::decode(c)?;
        if depth > MAX_TREE_DEPTH {
            return Err(c.corrupt(format!("tree depth {depth} above {MAX_TREE_DEPTH}")));
        }
        if (depth == 0) != (count == 0) {
            return Err(c.corrupt("tree depth and record count disagree"));
        }
        Ok(Self { depth, count, root })
    }
}

/// Archive-wide counts kept in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Entries in the catalog.
    pub entry_count: u64,
    /// Chunks in the logical stream (with repeats and zero chunks).
    pub chunk_count: u64,
    /// Bytes in the logical stream.
    pub logical_size: u64,
    /// Distinct stored chunk blobs.
    pub unique_chunk_count: u64,
    /// Raw bytes of the distinct stored chunks.
    pub unique_raw_bytes: u64,
    /// Stored bytes of the distinct chunk blobs.
    pub stored_chunk_bytes: u64,
    /// All-zero chunks (not stored).
    pub zero_chunk_count: u64,
    /// Bytes of all-zero chunks.
    pub zero_bytes: u64,
}

/// One section descriptor: an optional blob of metadata.
///
/// ```text
/// 0  2  kind (1 provenance, 2 parents, 3 column schema)
/// 2  2  flags (bit 0 critical: refuse the archive if the kind is unknown)
/// 4  4  reserved, zero
/// 8  56 page ref of the section blob
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// `SECTION_*` kind.
    pub kind: u16,
    /// `SECTION_CRITICAL` or 0.
    pub flags: u16,
    /// The blob.
    pub page: PageRef,
}

/// Chunking parameters recorded in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkParams {
    /// Smallest chunk (except the last).
    pub min: u32,
    /// Target average chunk.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

impl Default for ChunkParams {
    fn default() -> Self {
        Self {
            min: Self::DEFAULT_MIN,
            avg: Self::DEFAULT_AVG,
            max: Self::DEFAULT_MAX,
        }
    }
}

impl ChunkParams {
    /// Default `min`: 16 KiB.
    pub const DEFAULT_MIN: u32 = 16 * 1024;
    /// Default `avg`: 64 KiB.
    pub const DEFAULT_AVG: u32 = 64 * 1024;
    /// Default `max`: 256 KiB.
    pub const DEFAULT_MAX: u32 = 256 * 1024;
    /// Accepted `min`: 64 bytes to 1 MiB (FastCDC 2020's limits).
    pub const MIN_RANGE: std::ops::RangeInclusive<u32> =
        fastcdc::v2020::MINIMUM_MIN as u32..=fastcdc::v2020::MINIMUM_MAX as u32;
    /// Accepted `avg`: 256 bytes to 4 MiB.
    pub const AVG_RANGE: std::ops::RangeInclusive<u32> =
        fastcdc::v2020::AVERAGE_MIN as u32..=fastcdc::v2020::AVERAGE_MAX as u32;
    /// Accepted `max`: 1 KiB to 16 MiB.
    pub const MAX_RANGE: std::ops::RangeInclusive<u32> =
        fastcdc::v2020::MAXIMUM_MIN as u32..=fastcdc::v2020::MAXIMUM_MAX as u32;

    /// Check the parameters against FastCDC's limits.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Error::InvalidSetting {
            setting: "chunking",
            detail,
        };
        for (name, value, range) in [
            ("min", self.min, Self::MIN_RANGE),
            ("avg", self.avg, Self::AVG_RANGE),
            ("max", self.max, Self::MAX_RANGE),
        ] {
            if !range.contains(&value) {
                return Err(bad(format!(
                    "{name} {value} outside {}..={}",
                    range.start(),
                    range.end()
                )));
            }
        }
        let (min, avg, max) = (self.min, self.avg, self.max);
        if !(min <= avg && avg <= max) {
            return Err(bad(format!(
                "need min <= avg <= max, got {min}, {avg}, {max}"
            )));
        }
        if min % 2 != 0 || avg % 2 != 0 || max % 2 != 0 {
            return Err(bad("min, avg and max must be even".into()));
        }
        Ok(())
    }
}

/// The directory: everything needed to navigate the archive. Its stored bytes hash
/// to the archive's root hash.
///
/// ```text
/// 0   4   magic "HXZD"
/// 4   2   major version
/// 6   2   minor version
/// 8   4   flags (reserved, zero)
/// 12  1   chunker kind (1 = FastCDC 2020, normalization 1)
/// 13  1   hash kind (1 = BLAKE3, 2 = keyed BLAKE3)
/// 14  2   reserved, zero
/// 16  4   chunk min
/// 20  4   chunk avg
/// 24  4   chunk max
/// 28  4   codec level (signed, informational)
/// 32  32  codec name, ASCII, zero-padded
/// 64  64  stats: 8 × u64 (see `Stats`, in field order)
/// 128 72  chunk-index tree root
/// 200 72  catalog tree root
/// 272 72  name-index tree root
/// 344 4   section count (<= 1024)
/// 348 4   reserved, zero
/// 352 64×n section descriptors
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Writer's major version.
    pub major: u16,
    /// Writer's minor version.
    pub minor: u16,
    /// Chunker kind.
    pub chunker: u8,
    /// Hash kind.
    pub hash: u8,
    /// Chunking parameters.
    pub chunking: ChunkParams,
    /// Codec name.
    pub codec: String,
    /// Codec level.
    pub codec_level: i32,
    /// Counts.
    pub stats: Stats,
    /// Chunk index.
    pub chunk_tree: TreeRoot,
    /// Catalog.
    pub catalog_tree: TreeRoot,
    /// Name index.
    pub name_tree: TreeRoot,
    /// Metadata sections.
    pub sections: Vec<Section>,
}

impl Directory {
    /// Encode to bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DIRECTORY_FIXED_LEN + self.sections.len() * SECTION_LEN);
        out.extend_from_slice(&DIRECTORY_MAGIC);
        out.put_u16(self.major);
        out.put_u16(self.minor);
        out.put_u32(0);
        out.put_u8(self.chunker);
        out.put_u8(self.hash);
        out.put_u16(0);
        out.put_u32(self.chunking.min);
        out.put_u32(self.chunking.avg);
        out.put_u32(self.chunking.max);
        out.put_i32(self.codec_level);
        let mut name = [0u8; MAX_CODEC_NAME_LEN];
        let n = self.codec.len().min(MAX_CODEC_NAME_LEN);
        name[..n].copy_from_slice(&self.codec.as_bytes()[..n]);
        out.extend_from_slice(&name);
        let s = &self.stats;
        for v in [
            s.entry_count,
            s.chunk_count,
            s.logical_size,
            s.unique_chunk_count,
            s.unique_raw_bytes,
            s.stored_chunk_bytes,
            s.zero_chunk_count,
            s.zero_bytes,
        ] {
            out.put_u64(v);
        }
        self.chunk_tree.encode(&mut out);
        self.catalog_tree.encode(&mut out);
        self.name_tree.encode(&mut out);
        out.put_u32(self.sections.len() as u32);
        out.put_u32(0);
        for s in &self.sections {
            out.put_u16(s.kind);
            out.put_u16(s.flags);
            out.put_u32(0);
            s.page.encode(&mut out);
        }
        out
    }

    /// Decode a directory read at `offset`.
    pub fn decode(bytes: &[u8], offset: u64) -> Result<Self> {
        let mut c = Cursor::new(bytes, "directory", offset);
        let magic: [u8; 4] = c.array()?;
        if magic != DIRECTORY_MAGIC {
            return Err(Error::BadMagic {
                what: "directory",
                offset,
                found: magic.to_vec(),
                expected: DIRECTORY_MAGIC.to_vec(),
            });
        }
        let major = c.u16()?;
        let minor = c.u16()?;
        if !(OLDEST_SUPPORTED_MAJOR..=NEWEST_SUPPORTED_MAJOR).contains(&major) {
            return Err(Error::UnsupportedVersion {
                major,
                minor,
                oldest_major: OLDEST_SUPPORTED_MAJOR,
                newest_major: NEWEST_SUPPORTED_MAJOR,
            });
        }
        c.reserved(4)?;
        let chunker = c.u8()?;
        let hash = c.u8()?;
        if chunker != CHUNKER_FASTCDC_2020 {
            return Err(c.corrupt(format!("unknown chunker kind {chunker}")));
        }
        if hash != HASH_BLAKE3 && hash != HASH_BLAKE3_KEYED {
            return Err(c.corrupt(format!("unknown hash kind {hash}")));
        }
        c.reserved(2)?;
        let chunking = ChunkParams {
            min: c.u32()?,
            avg: c.u32()?,
            max: c.u32()?,
        };
        if chunking.max > MAX_CHUNK_LEN || chunking.min > chunking.max {
            return Err(c.corrupt(format!("chunking parameters {chunking:?} out of range")));
        }
        let codec_level = c.i32()?;
        let name: [u8; MAX_CODEC_NAME_LEN] = c.array()?;
        let len = name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_CODEC_NAME_LEN);
        if len == 0
            || !name[..len].iter().all(|b| b.is_ascii_graphic())
            || name[len..].iter().any(|&b| b != 0)
        {
            return Err(c.corrupt("codec name is empty or not printable ASCII"));
        }
        let codec = String::from_utf8_lossy(&name[..len]).into_owned();
        let stats = Stats {
            entry_count: c.u64()?,
            chunk_count: c.u64()?,
            logical_size: c.u64()?,
            unique_chunk_count: c.u64()?,
            unique_raw_bytes: c.u64()?,
            stored_chunk_bytes: c.u64()?,
            zero_chunk_count: c.u64()?,
            zero_bytes: c.u64()?,
        };
        let chunk_tree = TreeRoot::decode(&mut c)?;
        let catalog_tree = TreeRoot::decode(&mut c)?;
        let name_tree = TreeRoot::decode(&mut c)?;
        let count = c.u32()? as usize;
        c.reserved(4)?;
        if count > MAX_SECTIONS {
            return Err(Error::LimitExceeded {
                what: "section count",
                offset: offset + 344,
                value: count as u64,
                limit: MAX_SECTIONS as u64,
            });
        }
        if c.remaining() != count * SECTION_LEN {
            return Err(c.corrupt(format!(
                "{} bytes left for {count} section descriptors",
                c.remaining()
            )));
        }
        let mut sections = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = c.u16()?;
            let flags = c.u16()?;
            c.reserved(4)?;
            let page = PageRef::decode(&mut c)?;
            if flags & !SECTION_CRITICAL != 0 {
                return Err(c.corrupt(format!("unknown section flags {flags:#x}")));
            }
            // This reader implements provenance, the column schema and the
            // parents of thin snapshots.
            let known = matches!(
                kind,
                SECTION_PROVENANCE
                    | SECTION_PARENTS
                    | SECTION_COLUMNS
                    | SECTION_PAGE_BASES
                    | SECTION_CHUNK_BASES
            );
            if !known && flags & SECTION_CRITICAL != 0 {
                return Err(c.corrupt(format!(
                    "critical section kind {kind} is not understood by this version"
                )));
            }
            sections.push(Section { kind, flags, page });
        }
        c.finish()?;
        if catalog_tree.count != stats.entry_count || name_tree.count != stats.entry_count {
            return Err(Error::Corrupt {
                what: "directory",
                offset,
                detail: "catalog, name index and entry count disagree".into(),
            });
        }
        if chunk_tree.count != stats.chunk_count {
            return Err(Error::Corrupt {
                what: "directory",
                offset,
                detail: "chunk index and chunk count disagree".into(),
            });
        }
        Ok(Self {
            major,
            minor,
            chunker,
            hash,
            chunking,
            codec,
            codec_level,
            stats,
            chunk_tree,
            catalog_tree,
            name_tree,
            sections,
        })
    }
}

/// The 16-byte header of every index page.
///
/// ```text
/// 0  1  page kind (1..6, see `PageKind`)
/// 1  1  level (0 = leaf)
/// 2  2  reserved, zero
/// 4  4  record count
/// 8  8  ordinal of the first record among all leaf records of the tree
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Kind.
    pub kind: PageKind,
    /// Level above the leaves.
    pub level: u8,
    /// Records in the page.
    pub count: u32,
    /// Ordinal of the first leaf record covered.
    pub first: u64,
}

impl PageHeader {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.kind as u8);
        out.put_u8(self.level);
        out.put_u16(0);
        out.put_u32(self.count);
        out.put_u64(self.first);
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self> {
        let kind_byte = c.u8()?;
        let kind = PageKind::from_u8(kind_byte)
            .ok_or_else(|| c.corrupt(format!("unknown page kind {kind_byte}")))?;
        let level = c.u8()?;
        c.reserved(2)?;
        let count = c.u32()?;
        let first = c.u64()?;
        if count == 0 {
            return Err(c.corrupt("empty page"));
        }
        Ok(Self {
            kind,
            level,
            count,
            first,
        })
    }
}
