//! Compression codecs: the [`Compressor`] trait every codec plugin implements.
//!
//! The archive writer calls [`Compressor::compress`] once per stored blob (chunk or
//! page), from several threads at once; the reader calls
//! [`Compressor::decompress`] with the exact raw length recorded in the index, so a
//! codec never has to guess an output size. The codec's [`Compressor::name`] is
//! recorded in the archive's directory; a reader resolves it back to an
//! implementation through a [`CodecProvider`] (the plugin registry of
//! `hexz-pipeline` is one).
//!
//! The only codec built into this crate is [`NoCompression`] (`"none"`); lz4 and
//! zstd live in their own plugin crates.

use std::fmt::Debug;
use std::sync::Arc;

/// Error returned by a codec. Kept as a boxed source so plugins can use their own
/// error types; the archive layer wraps it with the blob's location.
pub type CodecError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A block compressor: compresses one blob independently of every other blob.
///
/// Contract:
/// * `compress` appends the compressed form of `input` to `out` (which may already
///   hold bytes; never truncate it). It must be deterministic: the same input and
///   settings give the same output on every call and thread, because archives
///   are byte-reproducible.
/// * `decompress` appends exactly `raw_len` bytes to `out` or returns an error. It
///   must never allocate more than `raw_len` bytes of output from what `input`
///   claims, since `input` may be hostile.
/// * Implementations are `Send + Sync`; one instance is shared by all threads.
pub trait Compressor: Send + Sync + Debug {
    /// The registered name written to the archive (`"zstd"`, `"lz4"`, ...). At most
    /// 32 ASCII bytes.
    fn name(&self) -> &str;

    /// The level the codec was built with, recorded for `hexz info` (0 if the codec
    /// has no levels).
    fn level(&self) -> i32 {
        0
    }

    /// Compress `input`, appending to `out`.
    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decompress `input`, appending exactly `raw_len` bytes to `out`.
    fn decompress(&self, input: &[u8], raw_len: usize, out: &mut Vec<u8>)
    -> Result<(), CodecError>;

    /// Whether [`compress_with_base`](Self::compress_with_base) has a delta form
    /// (`false`, the default: writers then load no base at all).
    fn has_base_form(&self) -> bool {
        false
    }

    /// Compress `input` against `base` (bytes the reader will hold when it decodes:
    /// a thin child's index page or chunk against its parent's, FORMAT.md
    /// §14.3.5 and §14.3.6),
    /// appending to `out`. `Ok(false)` (the default) means the codec has no such
    /// form; nothing is appended then. Deterministic like [`compress`](Self::compress).
    fn compress_with_base(
        &self,
        input: &[u8],
        base: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        let _ = (input, base, out);
        Ok(false)
    }

    /// Decode what [`compress_with_base`](Self::compress_with_base) wrote, given the
    /// same `base`: append exactly `raw_len` bytes to `out` or fail.
    fn decompress_with_base(
        &self,
        input: &[u8],
        base: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let _ = (input, base, raw_len, out);
        Err(format!("codec `{}` has no delta form", self.name()).into())
    }
}

/// Resolves a codec name read from an archive to an implementation.
///
/// Who calls: the reader, once per open archive. `Err` carries the names that are
/// known so the user sees what is available.
pub trait CodecProvider: Send + Sync {
    /// The decompressor registered under `name`.
    fn decompressor(&self, name: &str) -> Result<Arc<dyn Compressor>, UnknownCodec>;
}

/// A codec name that no registered plugin provides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec `{}` (known: {})", crate::error::Excerpt(name), known.join(", "))]
pub struct UnknownCodec {
    /// The name that was asked for.
    pub name: String,
    /// The names that are registered.
    pub known: Vec<String>,
}

/// The identity codec, `"none"`: stores blobs as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCompression;

impl Compressor for NoCompression {
    fn name(&self) -> &str {
        "none"
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(input);
        Ok(())
    }

    fn decompress(
        &self,
        input: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if input.len() != raw_len {
            return Err(format!(
                "stored length {} differs from raw length {raw_len}",
                input.len()
            )
            .into());
        }
        out.extend_from_slice(input);
        Ok(())
    }
}

/// A [`CodecProvider`] that knows only the codecs handed to it (plus `"none"`).
/// Useful in tests and for embedding with a fixed codec set.
#[derive(Debug, Clone, Default)]
pub struct StaticCodecs {
    codecs: Vec<Arc<dyn Compressor>>,
}

impl StaticCodecs {
    /// A provider over `codecs`; `"none"` is always available.
    pub fn new(codecs: Vec<Arc<dyn Compressor>>) -> Self {
        Self { codecs }
    }
}

impl CodecProvider for StaticCodecs {
    fn decompressor(&self, name: &str) -> Result<Arc<dyn Compressor>, UnknownCodec> {
        if name == "none" {
            return Ok(Arc::new(NoCompression));
        }
        self.codecs
            .iter()
            .find(|c| c.name() == name)
            .cloned()
            .ok_or_else(|| UnknownCodec {
                name: name.to_string(),
                known: std::iter::once("none".to_string())
                    .chain(self.codecs.iter().map(|c| c.name().to_string()))
                    .collect(),
            })
    }
}
