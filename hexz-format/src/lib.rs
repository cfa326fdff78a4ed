//! # hexz-format
//!
//! The hexz archive format (`.hxz`): one immutable, seekable file holding a logical
//! stream of entries cut into content-defined chunks, deduplicated, compressed blob
//! by blob, with a paged chunk index and entry catalog and an integrity tree that
//! hashes into one root hash. See `docs/FORMAT.md` for the byte layout; the
//! constants and encoders live in [`layout`].
//!
//! Archives may be encrypted ([`crypto`]: AES-256-GCM sealed blobs, key slots,
//! keyed chunk ids) and signed ([`sign`]: Ed25519 over a manifest naming the root
//! hash); [`ReadOptions::unlock`] and [`ReadOptions::trust`] open and verify them.
//!
//! This crate has no network and no CLI code. Readers take any [`ReadAt`] source;
//! codecs come in through the [`Compressor`] trait.

pub mod codec;
pub mod columns;
pub mod conformance;
pub mod crypto;
pub mod sign;

pub use codec::{CodecError, CodecProvider, Compressor, NoCompression, StaticCodecs, UnknownCodec};

mod bytes;
pub mod chunkbases;
pub mod chunkdelta;
pub mod delta;
pub mod destination;
pub mod error;
pub mod hints;
pub mod layout;
mod page;
pub mod parents;
pub mod reader;
pub mod source;
pub mod space;
pub mod writer;

pub use columns::{Column, ColumnSchema, ColumnType, Value};
pub use crypto::{
    ChunkHasher, Encryption, KdfLimits, KdfParameter, KdfParams, PublicKey, SecretKeyFile,
    SlotSpec, Unlock,
};
pub use error::{Error, Hash32, Result};
pub use hints::{HintRefusal, ParentPolicy};
pub use layout::{ChunkParams, Entry, EntryKind, Owner, Stats};
pub use parents::{ParentArchive, ParentRef, ParentResolver, ParentSet};
pub use reader::{Archive, Entries, EntryReader, ReadOptions, VerifyReport};
pub use sign::{Manifest, SignatureBlock, SignatureReport, Signing, TrustPolicy};
pub use source::{FileSource, MemorySource, PrimedSource, ReadAt};
pub use space::{SectionSpace, SpaceReport};
pub use writer::{
    ArchiveWriter, EntryMeta, PendingFile, Piece, Sink, Summary, WriteProgress, WriterOptions,
};
