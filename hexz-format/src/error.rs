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

/// Longest part of a name, path or other text taken from a file (an archive, an
/// input, a recipe) that an error message quotes, in bytes.
pub const MAX_QUOTED_LEN: usize = 256;

/// A string from a file as error messages quote it: at most [`MAX_QUOTED_LEN`]
/// bytes of it (cut at a character boundary, then `…` and its length), control
/// characters escaped (`\n`, `\u{1b}`), so a message stays one short line
/// whatever the file holds. Every error that shows a name, path, hint or other
/// text from a file shows it through this.
///
/// ```
/// use hexz_format::error::Excerpt;
/// assert_eq!(Excerpt("a.txt").to_string(), "a.txt");
/// assert_eq!(Excerpt("line\nbreak").to_string(), "line\\nbreak");
/// let long = "x".repeat(200_000);
/// assert_eq!(Excerpt(&long).to_string(), format!("{}… (200000 bytes)", "x".repeat(256)));
/// ```
#[derive(Clone, Copy)]
pub struct Excerpt<'a>(pub &'a str);

impl Excerpt<'_> {
    /// A path, lossily decoded, as [`Excerpt`] shows it.
    pub fn path(path: &std::path::Path) -> String {
        Excerpt(&path.to_string_lossy()).to_string()
    }
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut end = s.len().min(MAX_QUOTED_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        for c in s[..end].chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        if end < s.len() {
            write!(f, "… ({} bytes)", s.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Every error the format layer returns. Variants carry the structure a caller needs
/// (what, where, expected, actual); `Display` turns it into one line for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the underlying source failed.
    #[error(
        "{}: read of {len} bytes at offset {offset} failed: {error}",
        Excerpt(source_name)
    )]
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
    #[error("{}: {error}", Excerpt::path(path))]
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
    #[error("reading input `{}` failed: {error}", Excerpt(name))]
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
    /// The message does not show the bytes found: the file may be anything (a
    /// parent hint can name any file), and its content is not echoed.
    #[error("{what} at offset {offset}: bad magic, expected {expected:02x?} (not a hexz archive?)")]
    BadMagic {
        /// The structure checked.
        what: &'static str,
        /// Where it was read.
        offset: u64,
        /// The bytes found (kept for callers; not part of the message).
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
    #[error("no entry named `{}` in the archive", Excerpt(name))]
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
    #[error("invalid entry name {:?}: {reason}", Excerpt(name))]
    InvalidName {
        /// The name (lossily decoded if it was not UTF-8).
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Two entries have the same name.
    #[error("duplicate entry name `{}`", Excerpt(name))]
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
    #[error("{}: {feature} is not supported by this reader", Excerpt(source_name))]
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
        "{}: parent {index} (root hash {root_hash}) is not available at `{}`: {error}",
        Excerpt(archive),
        Excerpt(location)
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
        "{}: parent {index} at `{}` has root hash {actual}, but the archive was built on {expected}",
        Excerpt(archive),
        Excerpt(location)
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
    /// A parent's location hint names a place the reader does not open without
    /// being told (see [`crate::hints`]): nothing was sent or read there.
    #[error(
        "{archive}: parent {index} (root hash {root_hash}) was not looked for: its location hint {} resolves to `{location}`, {reason}; hints are followed only within the child's own store and folder. Name the parent (hexz --parent LOCATION, Python parents=[...], ReadOptions::parents) or allow the place (hexz --allow-parent-url PREFIX, Python allow_parent_urls=[...])",
        crate::hints::quoted(hint)
    )]
    ParentRefused {
        /// The child (path or URL).
        archive: String,
        /// The parent's 1-based position in the child's parents list.
        index: u16,
        /// The root hash the child expects (boxed: keeps `Error` small).
        root_hash: Box<Hash32>,
        /// The hint as the child records it.
        hint: String,
        /// The hint resolved against the child.
        location: String,
        /// Why it is not followed.
        reason: crate::hints::HintRefusal,
    },
    /// A passphrase key slot asks for more key-derivation work than the reader
    /// allows (the envelope is not signed: anyone on the way can add slots). The
    /// slot was skipped without running Argon2id; no other slot opened.
    #[error("{source_name}: key slot {slot} was not tried: {}", crate::crypto::kdf_limits::limit_message(*parameter, *value, *limit))]
    KdfLimit {
        /// The archive.
        source_name: String,
        /// The slot's number (from 0, as `hexz keys list` shows).
        slot: usize,
        /// The limit that was reached.
        parameter: crate::crypto::KdfParameter,
        /// The slot's value (memory in KiB, iterations, or the number of
        /// passphrase slots).
        value: u64,
        /// The reader's limit ([`crate::crypto::KdfLimits`]).
        limit: u64,
    },
    /// A chunk lives in a parent, but the archive was opened without a way to open
    /// parents (see `Archive::with_parent_resolver`).
    #[error(
        "{}: data is stored in parent {index} (`{}`, root hash {root_hash}) and no parent resolver is attached",
        Excerpt(archive),
        Excerpt(hint)
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
    #[error("{}: {what}", Excerpt(source_name))]
    KeyRequired {
        /// The archive (or key file).
        source_name: String,
        /// What is needed (`"the archive is encrypted; give a passphrase, key file or identity"`).
        what: &'static str,
    },
    /// None of the offered keys opens a key slot: wrong passphrase or key. (A
    /// damaged envelope is reported as corruption instead: it has its own CRC.)
    #[error(
        "{}: wrong key: no key slot opens with the given {offered} ({slots} slot(s) tried)",
        Excerpt(source_name)
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
    #[error("invalid key ({}): {detail}", Excerpt(what))]
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
    #[error("{}: the archive is not signed", Excerpt(source_name))]
    Unsigned {
        /// The archive.
        source_name: String,
    },
    /// A signature does not check out.
    #[error("{}: bad signature: {problem}", Excerpt(source_name))]
    BadSignature {
        /// The archive.
        source_name: String,
        /// What is wrong.
        problem: crate::sign::SignatureProblem,
    },
    /// The entry is not a regular file or record (it has no bytes to read).
    #[error("entry `{}` is a {kind}, not a file", Excerpt(name))]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant that shows a name, path or other text from a file shows at
    /// most a bounded prefix of it: a 200 KB name is not echoed.
    #[test]
    fn errors_quote_a_bounded_prefix_of_file_text() {
        let long = "n".repeat(200_000);
        let io = || io::Error::other("boom");
        let errors = [
            Error::SourceRead {
                source_name: long.clone(),
                offset: 0,
                len: 1,
                error: io(),
            },
            Error::Io {
                path: PathBuf::from(&long),
                error: io(),
            },
            Error::Input {
                name: long.clone(),
                error: io(),
            },
            Error::EntryNotFound { name: long.clone() },
            Error::InvalidName {
                name: long.clone(),
                reason: "too long",
            },
            Error::DuplicateName { name: long.clone() },
            Error::Unsupported {
                source_name: long.clone(),
                feature: "x",
            },
            Error::ParentUnavailable {
                archive: long.clone(),
                index: 1,
                root_hash: Hash32([0; 32]),
                location: long.clone(),
                error: Box::new(io()),
            },
            Error::ParentMismatch {
                archive: long.clone(),
                index: 1,
                location: long.clone(),
                expected: Hash32([0; 32]),
                actual: Hash32([1; 32]),
            },
            Error::ParentNotAttached {
                archive: long.clone(),
                index: 1,
                root_hash: Hash32([0; 32]),
                hint: long.clone(),
            },
            Error::KeyRequired {
                source_name: long.clone(),
                what: "a key",
            },
            Error::WrongKey {
                source_name: long.clone(),
                offered: "passphrase".into(),
                slots: 1,
            },
            Error::InvalidKey {
                what: long.clone(),
                detail: "bad".into(),
            },
            Error::Unsigned {
                source_name: long.clone(),
            },
            Error::NotAFile {
                name: long.clone(),
                kind: "dir",
            },
            Error::UnknownCodec(UnknownCodec {
                name: long.clone(),
                known: vec!["zstd".into()],
            }),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.len() < 1200, "{} bytes: {:.300}", msg.len(), msg);
            assert!(msg.contains("… (200000 bytes)"), "{msg:.300}");
        }
    }

    #[test]
    fn excerpts_cut_at_a_character_boundary_and_escape_controls() {
        let s = format!("{}é{}", "a".repeat(MAX_QUOTED_LEN - 1), "b".repeat(10));
        let shown = Excerpt(&s).to_string();
        assert!(shown.starts_with(&"a".repeat(MAX_QUOTED_LEN - 1)));
        assert!(
            shown.ends_with(&format!("… ({} bytes)", s.len())),
            "{shown}"
        );
        assert_eq!(Excerpt("a\u{1b}[31mred").to_string(), "a\\u{1b}[31mred");
        assert_eq!(format!("{:?}", Excerpt("x\ny")), "\"x\\ny\"");
        assert_eq!(Excerpt::path(std::path::Path::new("a/b")), "a/b");
    }
}
