//! # hexz-plugin-example
//!
//! An out-of-tree compressor plugin: raw DEFLATE (RFC 1951) through
//! [`miniz_oxide`], registered under the name `deflate`. It shows everything a
//! third-party codec needs — and nothing more:
//!
//! * implement [`hexz_format::Compressor`] (this crate depends on `hexz-format`
//!   only, like the built-in plugins);
//! * pass [`hexz_format::conformance::check_compressor`] in its tests;
//! * let the application register it explicitly in its plugin registry, since
//!   there is no link-time registration:
//!
//! ```
//! use std::sync::Arc;
//! use hexz_format::Compressor;
//! use hexz_pipeline::{FnFactory, Registry};
//! use hexz_plugin_example::DeflateCompressor;
//!
//! let mut registry = Registry::default();
//! registry.register_compressor(Arc::new(FnFactory::new(
//!     hexz_plugin_example::NAME,
//!     |level: Option<i32>| {
//!         let level = level.unwrap_or(hexz_plugin_example::DEFAULT_LEVEL);
//!         DeflateCompressor::new(level)
//!             .map(|c| Arc::new(c) as Arc<dyn Compressor>)
//!             .map_err(|e| e.to_string())
//!     },
//! )));
//! assert!(registry.compressor_names().contains(&"deflate".to_string()));
//! ```
//!
//! Stored form of a compressed blob: one raw DEFLATE stream (no zlib or gzip
//! header, no checksum; the archive's CRC32 and BLAKE3 already cover every blob),
//! holding exactly the blob's raw bytes.

use std::fmt;

use hexz_format::codec::{CodecError, Compressor};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// The codec name recorded in archives.
pub const NAME: &str = "deflate";
/// The level used when a recipe gives none (zlib's default).
pub const DEFAULT_LEVEL: i32 = 6;
/// Accepted levels: 0 (stored blocks) to 10 (miniz's slowest, smallest).
pub const LEVELS: std::ops::RangeInclusive<i32> = 0..=10;

/// A level outside [`LEVELS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelOutOfRange(pub i32);

impl fmt::Display for LevelOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deflate level {} out of range {}–{}",
            self.0,
            LEVELS.start(),
            LEVELS.end()
        )
    }
}

impl std::error::Error for LevelOutOfRange {}

/// Raw DEFLATE at a fixed level.
#[derive(Debug, Clone, Copy)]
pub struct DeflateCompressor {
    level: u8,
}

impl DeflateCompressor {
    /// A compressor at `level` (see [`LEVELS`]).
    pub fn new(level: i32) -> Result<Self, LevelOutOfRange> {
        if !LEVELS.contains(&level) {
            return Err(LevelOutOfRange(level));
        }
        Ok(Self { level: level as u8 })
    }
}

impl Default for DeflateCompressor {
    fn default() -> Self {
        Self { level: 6 }
    }
}

impl Compressor for DeflateCompressor {
    fn name(&self) -> &str {
        NAME
    }

    fn level(&self) -> i32 {
        i32::from(self.level)
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(input, self.level));
        Ok(())
    }

    fn decompress(
        &self,
        input: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        // Inflate into exactly `raw_len` bytes: whatever the stream claims, no
        // more is ever written or allocated.
        out.resize(start + raw_len, 0);
        let mut state = Box::<DecompressorOxide>::default();
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        let (status, read, written) = decompress(&mut state, input, &mut out[start..], 0, flags);
        let problem = match status {
            TINFLStatus::Done if written != raw_len => {
                Some(format!("stream holds {written} bytes, expected {raw_len}"))
            }
            TINFLStatus::Done if read != input.len() => Some(format!(
                "{} bytes after the end of the stream",
                input.len() - read
            )),
            TINFLStatus::Done => None,
            TINFLStatus::HasMoreOutput => Some(format!("stream holds more than {raw_len} bytes")),
            other => Some(format!("corrupt stream ({other:?})")),
        };
        match problem {
            None => Ok(()),
            Some(problem) => {
                out.truncate(start);
                Err(format!("deflate: {problem}").into())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use hexz_format::conformance::check_compressor;

    #[test]
    fn passes_the_conformance_suite_at_every_level() {
        for level in [0, 1, DEFAULT_LEVEL, 10] {
            let codec = DeflateCompressor::new(level).unwrap();
            if let Err(failure) = check_compressor(&codec) {
                panic!("level {level}: {failure}");
            }
        }
    }

    #[test]
    fn levels_are_checked() {
        assert_eq!(DeflateCompressor::new(11).unwrap_err(), LevelOutOfRange(11));
        assert_eq!(
            DeflateCompressor::new(-1).unwrap_err().to_string(),
            "deflate level -1 out of range 0–10"
        );
        assert_eq!(DeflateCompressor::new(9).unwrap().level(), 9);
    }

    #[test]
    fn output_is_raw_deflate() {
        let data = b"hexz hexz hexz hexz hexz hexz hexz hexz".repeat(100);
        let mut packed = Vec::new();
        DeflateCompressor::default()
            .compress(&data, &mut packed)
            .unwrap();
        assert!(packed.len() < data.len() / 10);
        let plain = miniz_oxide::inflate::decompress_to_vec(&packed).unwrap();
        assert_eq!(plain, data);
    }
}
