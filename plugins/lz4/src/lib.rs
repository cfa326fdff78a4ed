//! # hexz-lz4
//!
//! The `"lz4"` codec for hexz archives: raw LZ4 blocks (no frame, no size
//! prefix) produced and read by [`lz4_flex`]'s block API. The archive index
//! records each blob's raw length, so nothing else is stored with a block.
//!
//! LZ4 has no levels; [`Compressor::level`] is 0.
//!
//! ```
//! use hexz_format::Compressor;
//! use hexz_lz4::Lz4Compressor;
//!
//! # fn main() -> Result<(), hexz_format::CodecError> {
//! let codec = Lz4Compressor::new();
//! let data = b"hexz hexz hexz hexz hexz hexz hexz hexz".repeat(100);
//!
//! let mut packed = Vec::new();
//! codec.compress(&data, &mut packed)?;
//! assert!(packed.len() < data.len());
//!
//! let mut unpacked = Vec::new();
//! codec.decompress(&packed, data.len(), &mut unpacked)?;
//! assert_eq!(unpacked, data);
//!
//! // The raw length must be exact.
//! assert!(codec.decompress(&packed, data.len() + 1, &mut Vec::new()).is_err());
//! # Ok(())
//! # }
//! ```

use hexz_format::{CodecError, Compressor};

/// The registered codec name.
pub const NAME: &str = "lz4";

/// LZ4 block compression (`"lz4"`), via `lz4_flex`.
///
/// Stateless, so one instance can be shared by any number of threads. Build it
/// with [`Lz4Compressor::new`] or [`Default`]; the private field leaves room for
/// settings (such as an acceleration factor) without breaking callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lz4Compressor {
    _private: (),
}

impl Lz4Compressor {
    /// The LZ4 codec.
    pub fn new() -> Self {
        Self { _private: () }
    }
}

impl Compressor for Lz4Compressor {
    fn name(&self) -> &str {
        NAME
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        let bound = lz4_flex::block::get_maximum_output_size(input.len());
        out.resize(start + bound, 0);
        match lz4_flex::block::compress_into(input, &mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(format!("lz4: compressing {} bytes failed: {e}", input.len()).into())
            }
        }
    }

    fn decompress(
        &self,
        input: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        // The output buffer is exactly `raw_len` long: `lz4_flex` fails rather
        // than write past it, whatever the block's sequences claim.
        out.resize(start + raw_len, 0);
        let result = lz4_flex::block::decompress_into(input, &mut out[start..]);
        match result {
            Ok(written) if written == raw_len => Ok(()),
            Ok(written) => {
                out.truncate(start);
                Err(
                    format!("lz4: block decompressed to {written} bytes, expected {raw_len}")
                        .into(),
                )
            }
            Err(e) => {
                out.truncate(start);
                Err(format!(
                    "lz4: corrupt block ({} bytes, expected {raw_len} raw bytes): {e}",
                    input.len()
                )
                .into())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn name_and_level() {
        let c = Lz4Compressor::new();
        assert_eq!(c.name(), "lz4");
        assert_eq!(c.level(), 0);
        assert_eq!(c, Lz4Compressor::default());
    }

    #[test]
    fn short_output_is_an_error_and_out_is_restored() {
        let c = Lz4Compressor::new();
        let data = vec![7u8; 1000];
        let mut packed = Vec::new();
        c.compress(&data, &mut packed).unwrap();

        let mut out = b"keep".to_vec();
        assert!(c.decompress(&packed, 999, &mut out).is_err());
        assert_eq!(out, b"keep");
        assert!(c.decompress(&packed, 1001, &mut out).is_err());
        assert_eq!(out, b"keep");
        c.decompress(&packed, 1000, &mut out).unwrap();
        assert_eq!(&out[..4], b"keep");
        assert_eq!(&out[4..], &data[..]);
    }
}
