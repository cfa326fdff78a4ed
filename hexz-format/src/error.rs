//! The error type of the archive layer.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::codec::{CodecError, UnknownCodec};
use crate::columns::ColumnError;

/// A 32-byte BLAKE3 hash, displayed as hex in errors.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash32(pub [u8; 32]);

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({self})")
    }
}

/// Every error the format layer returns. Variants carry the structure a caller needs
/// (what, where, expected, actual); `Display` turns it into one line for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the underlying source failed.
    #[error("{source_name}: read of {len} bytes at offset {offset} failed: {error}")]
    SourceRead {
        /// The source (path or URL).
        source_name: String,
        /// Where the read started.
        offset: u64,
        /// How many bytes were asked for.
        len: u64,
        /// The I/O error.
        #[source]
        error: io::Error,
    },
    /// Writing or creating a local file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: io::Error,
    },
    /// A destination the caller may not write to (see [`crate::destination`]).
    #[error(transparent)]
    Destination(#[from] crate::destination::DestinationError),
    /// An input handed to the writer could not be read.
    #[error("reading input `{name}` failed: {error}")]
    Input {
        /// The entry being added.
        name: String,
        /// The I/O error.
        #[source]
        error: io::Error,
    },
    /// The file is shorter than a structure it must contain.
    #[error(
        "truncated archive: {what} needs bytes {offset}..{end} but the archive is {size} bytes"
    )]
    Truncated {
        /// The structure that does not fit.
        what: &'static str,
        /// Its first byte.
        offset: u64,
        /// One past its last byte.
        end: u64,
        /// The archive's size.
        size: u64,
    },
    /// A magic number did not match: not a hexz archive, or not this structure.
    #[error(
        "{what} at offset {offset}: bad magic {found:02x?}, expected {expected:02x?} (not a hexz archive?)"
    )]
    BadMagic {
        /// The structure checked.
        what: &'static str,
        /// Where it was read.
        offset: u64,
        /// The bytes found.
        found: Vec<u8>,
        /// The bytes expected.
        expected: Vec<u8>,
    },
    /// The archive was written by a format version this reader does not support.
    #[error("archive format version {major}.{minor} is not supported: this hexz reads {oldest_major}.x to {newest_major}.x{}", if *major > *newest_major { " (upgrade hexz)" } else { "" })]
    UnsupportedVersion {
        /// Version found.
        major: u16,
        /// Minor version found.
        minor: u16,
        /// Oldest major version supported.
        oldest_major: u16,
        /// Newest major version supported.
        newest_major: u16,
    },
    /// A CRC32 check failed.
    #[error(
        "{what} at offset {offset}: CRC32 mismatch (stored {expected:08x}, computed {actual:08x})"
    )]
    Checksum {
        /// The blob checked.
        what: &'static str,
        /// Its offset in the archive.
        offset: u64,
        /// CRC recorded in the archive.
        expected: u32,
        /// CRC of the bytes read.
        actual: u32,
    },
    /// A BLAKE3 hash check failed.
    #[error("{what} at offset {offset}: BLAKE3 mismatch (expected {expected}, got {actual})")]
    HashMismatch {
        /// The blob checked.
        what: &'static str,
        /// Its offset in the archive.
        offset: u64,
        /// Hash recorded in the archive.
        expected: Hash32,
        /// Hash of the bytes read.
        actual: Hash32,
    },
    /// A structure is malformed.
    #[error("corrupt archive: {what} at offset {offset}: {detail}")]
    Corrupt {
        /// The structure.
        what: &'static str,
        /// Where it is.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// A length or count read from the archive exceeds what the format allows.
    #[error("corrupt archive: {what} at offset {offset} is {value}, above the limit {limit}")]
    LimitExceeded {
        /// The field.
        what: &'static str,
        /// Where the structure holding it is.
        offset: u64,
        /// The value found.
        value: u64,
        /// The largest value allowed.
        limit: u64,
    },
    /// The archive names a codec no plugin provides.
    #[error(transparent)]
    UnknownCodec(#[from] UnknownCodec),
    /// A codec failed to compress or decompress a blob.
    #[error("{codec} failed on {what} at offset {offset}: {error}")]
    Codec {
        /// The codec name.
        codec: String,
        /// The blob.
        what: &'static str,
        /// The blob's offset in the archive (0 while writing).
        offset: u64,
        /// The codec's error.
        #[source]
        error: CodecError,
    },
    /// No entry has this name.
    #[error("no entry named `{name}` in the archive")]
    EntryNotFound {
        /// The name asked for.
        name: String,
    },
    /// A read past the end of an entry or of the logical stream.
    #[error("range {offset}+{len} is outside {what} of {size} bytes")]
    OutOfRange {
        /// What was read (`"the logical stream"`, `"entry `a.txt`"`).
        what: String,
        /// Start of the read.
        offset: u64,
        /// Length of the read.
        len: u64,
        /// Size of what was read.
        size: u64,
    },
    /// An entry name is not acceptable.
    #[error("invalid entry name {name:?}: {reason}")]
    InvalidName {
        /// The name (lossily decoded if it was not UTF-8).
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Two entries have the same name.
    #[error("duplicate entry name `{name}`")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A writer or reader setting is out of range.
    #[error("invalid setting {setting}: {detail}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The archive uses a feature this reader does not implement.
    #[error("{source_name}: {feature} is not supported by this reader")]
    Unsupported {
        /// The archive.
        source_name: String,
        /// The feature (`"encrypted archives"`, `"parent archives"`).
        feature: &'static str,
    },
    /// The archive's column schema, or an entry's column values, are malformed.
    #[error("corrupt archive: {context}: {error}")]
    CorruptColumns {
        /// What was decoded (`"column schema"`, `"columns of entry `a`"`).
        context: String,
        /// What is wrong, with the byte offset inside the schema or row.
        #[source]
        error: ColumnError,
    },
    /// A column schema or row handed to the writer is invalid.
    #[error("invalid user columns ({context}): {error}")]
    InvalidColumns {
        /// What was being written (`"schema"`, `"entry `a`"`).
        context: String,
        /// What is wrong.
        #[source]
        error: ColumnError,
    },
    /// A thin child's parent cannot be opened (missing, unreachable, unreadable).
    #[error(
        "{archive}: parent {index} (root hash {root_hash}) is not available at `{location}`: {error}"
    )]
    ParentUnavailable {
        /// The child (path or URL).
        archive: String,
        /// The parent's 1-based position in the child's parents list.
        index: u16,
        /// The root hash the child expects.
        root_hash: Hash32,
        /// Where it was looked for (the hint resolved against the child).
        location: String,
        /// Why it could not be opened.
        #[source]
        error: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The archive found at a parent's location is another archive.
    #[error(
        "{archive}: parent {index} at `{location}` has root hash {actual}, but the archive was built on {expected}"
    )]
    ParentMismatch {
        /// The child (path or URL).
        archive: String,
        /// The parent's 1-based position in the child's parents list.
        index: u16,
        /// Where it was found.
        location: String,
        /// The root hash the child expects.
        expected: Hash32,
        /// The root hash of the archive found there.
        actual: Hash32,
    },
    /// A chunk lives in a parent, but the archive was opened without a way to open
    /// parents (see `Archive::with_parent_resolver`).
    #[error(
        "{archive}: data is stored in parent {index} (`{hint}`, root hash {root_hash}) and no parent resolver is attached"
    )]
    ParentNotAttached {
        /// The child.
        archive: String,
        /// The parent's 1-based position.
        index: u16,
        /// Its root hash.
        root_hash: Hash32,
        /// Its location hint.
        hint: String,
    },
    /// The archive is encrypted (or a key file is protected) and no key was given.
    #[error("{source_name}: {what}")]
    KeyRequired {
        /// The archive (or key file).
        source_name: String,
        /// What is needed (`"the archive is encrypted; give a passphrase, key file or identity"`).
        what: &'static str,
    },
    /// None of the offered keys opens a key slot: wrong passphrase or key. (A
    /// damaged envelope is reported as corruption instead: it has its own CRC.)
    #[error(
        "{source_name}: wrong key: no key slot opens with the given {offered} ({slots} slot(s) tried)"
    )]
    WrongKey {
        /// The archive (or key file).
        source_name: String,
        /// The kinds of keys offered (`"passphrase"`).
        offered: String,
        /// Slots tried.
        slots: usize,
    },
    /// A key (file, argument or recipe value) is malformed or of the wrong kind.
    #[error("invalid key ({what}): {detail}")]
    InvalidKey {
        /// Which key.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A sealed blob does not open although the archive key is right: the blob was
    /// altered, truncated or moved.
    #[error("{what} at offset {offset}: authentication failed (sealed blob altered or moved)")]
    SealBroken {
        /// The blob.
        what: &'static str,
        /// Its offset.
        offset: u64,
    },
    /// A signature was required and the archive has none (embedded or detached).
    #[error("{source_name}: the archive is not signed")]
    Unsigned {
        /// The archive.
        source_name: String,
    },
    /// A signature does not check out.
    #[error("{source_name}: bad signature: {problem}")]
    BadSignature {
        /// The archive.
        source_name: String,
        /// What is wrong.
        problem: crate::sign::SignatureProblem,
    },
    /// The entry is not a regular file or record (it has no bytes to read).
    #[error("entry `{name}` is a {kind}, not a file")]
    NotAFile {
        /// The entry.
        name: String,
        /// Its kind.
        kind: &'static str,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the error means the archive bytes are damaged or hostile (as opposed to
    /// I/O failures, missing entries or bad arguments).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Truncated { .. }
                | Error::BadMagic { .. }
                | Error::Checksum { .. }
                | Error::HashMismatch { .. }
                | Error::Corrupt { .. }
                | Error::LimitExceeded { .. }
                | Error::Codec { .. }
                | Error::CorruptColumns { .. }
                | Error::SealBroken { .. }
        )
    }
}
