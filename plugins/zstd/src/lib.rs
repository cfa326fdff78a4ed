//! # hexz-zstd
//!
//! The `"zstd"` codec for hexz archives: each blob is one standard zstd frame
//! (content size recorded, no checksum, no dictionary ID), made with the
//! `zstd` crate's bulk API at a level from 1 to 22.
//!
//! Compression contexts are cached per thread and per level, so the archive
//! writer's worker threads do not allocate a fresh context for every 64 KiB
//! blob. zstd always runs single-threaded here, and output only depends on the
//! input and the level, never on which thread or context produced it.
//!
//! ```
//! use hexz_format::Compressor;
//! use hexz_zstd::{ZstdCompressor, DEFAULT_LEVEL};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let codec = ZstdCompressor::new(19)?;
//! assert_eq!(codec.level(), 19);
//! assert_eq!(ZstdCompressor::default().level(), DEFAULT_LEVEL);
//!
//! let data = b"hexz hexz hexz hexz hexz hexz hexz hexz".repeat(100);
//! let mut packed = Vec::new();
//! codec.compress(&data, &mut packed)?;
//! assert!(packed.len() < data.len());
//!
//! let mut unpacked = Vec::new();
//! codec.decompress(&packed, data.len(), &mut unpacked)?;
//! assert_eq!(unpacked, data);
//!
//! // Levels outside 1–22 are rejected.
//! assert!(ZstdCompressor::new(0).is_err());
//! # Ok(())
//! # }
//! ```

use std::cell::RefCell;
use std::io;

use hexz_format::{CodecError, Compressor};
use zstd::zstd_safe;

/// The registered codec name.
pub const NAME: &str = "zstd";

/// The level [`ZstdCompressor::default`] uses.
pub const DEFAULT_LEVEL: i32 = 3;

/// The lowest accepted level.
pub const MIN_LEVEL: i32 = 1;

/// The highest accepted level.
pub const MAX_LEVEL: i32 = 22;

/// The magic number every zstd frame starts with, little-endian on disk.
const FRAME_MAGIC: [u8; 4] = 0xFD2F_B528_u32.to_le_bytes();

/// A zstd level outside [`MIN_LEVEL`]`..=`[`MAX_LEVEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid zstd level {level}: levels range over 1–22")]
pub struct ZstdLevelError {
    /// The level that was asked for.
    pub level: i32,
}

/// zstd compression (`"zstd"`) at a fixed level.
///
/// One instance can be shared by any number of threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZstdCompressor {
    level: i32,
}

impl ZstdCompressor {
    /// A zstd codec at `level`, which must be in 1–22.
    pub fn new(level: i32) -> Result<Self, ZstdLevelError> {
        if (MIN_LEVEL..=MAX_LEVEL).contains(&level) {
            Ok(Self { level })
        } else {
            Err(ZstdLevelError { level })
        }
    }
}

impl Default for ZstdCompressor {
    /// Level [`DEFAULT_LEVEL`].
    fn default() -> Self {
        Self {
            level: DEFAULT_LEVEL,
        }
    }
}

impl Compressor for ZstdCompressor {
    fn name(&self) -> &str {
        NAME
    }

    fn level(&self) -> i32 {
        self.level
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        out.resize(start + zstd_safe::compress_bound(input.len()), 0);
        match compress_cached(self.level, input, &mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(format!(
                    "zstd: compressing {} bytes at level {} failed: {e}",
                    input.len(),
                    self.level
                )
                .into())
            }
        }
    }

    fn decompress(
        &self,
        input: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        check_frame(input, raw_len)?;
        let start = out.len();
        // Exactly `raw_len` bytes of room: zstd fails rather than write past it,
        // whatever the frame claims.
        out.resize(start + raw_len, 0);
        match decompress_cached(input, &mut out[start..]) {
            Ok(written) if written == raw_len => Ok(()),
            Ok(written) => {
                out.truncate(start);
                Err(
                    format!("zstd: frame decompressed to {written} bytes, expected {raw_len}")
                        .into(),
                )
            }
            Err(e) => {
                out.truncate(start);
                Err(format!(
                    "zstd: corrupt frame ({} bytes, expected {raw_len} raw bytes): {e}",
                    input.len()
                )
                .into())
            }
        }
    }

    fn has_base_form(&self) -> bool {
        true
    }

    fn compress_with_base(
        &self,
        input: &[u8],
        base: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        if base.is_empty() || base.starts_with(&DICT_MAGIC) {
            return Ok(false);
        }
        out.extend_from_slice(&compress_with_dict(self.level, input, base)?);
        Ok(true)
    }

    fn decompress_with_base(
        &self,
        input: &[u8],
        base: &[u8],
        raw_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        check_frame(input, raw_len)?;
        if base.is_empty() || base.starts_with(&DICT_MAGIC) {
            return Err("zstd: a delta base must not be empty or a trained dictionary".into());
        }
        let start = out.len();
        out.resize(start + raw_len, 0);
        let mut dctx = zstd_safe::DCtx::create();
        match dctx.decompress_using_dict(&mut out[start..], input, base) {
            Ok(written) if written == raw_len => Ok(()),
            Ok(written) => {
                out.truncate(start);
                Err(
                    format!("zstd: delta frame decoded to {written} bytes, expected {raw_len}")
                        .into(),
                )
            }
            Err(code) => {
                out.truncate(start);
                Err(format!(
                    "zstd: corrupt delta frame ({} bytes): {}",
                    input.len(),
                    zstd_safe::get_error_name(code)
                )
                .into())
            }
        }
    }
}

/// Delta form (`compress_with_base`): one standard zstd frame made by
/// `ZSTD_compress_usingDict` with the base's bytes as a raw-content dictionary
/// (content size recorded, no checksum, dictionary ID 0). The base must not start
/// with the zstd dictionary magic `37 A4 30 EC` (it would be parsed as a trained
/// dictionary): index pages never do (their first byte is a page kind, 1..=6); a
/// chunk that does is refused as a base (`Ok(false)`), and its child chunk is
/// stored whole.
const DICT_MAGIC: [u8; 4] = 0xEC30_A437_u32.to_le_bytes();

fn compress_with_dict(level: i32, input: &[u8], base: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut cctx = zstd_safe::CCtx::create();
    let mut dst = Vec::with_capacity(zstd_safe::compress_bound(input.len()));
    cctx.compress_using_dict(&mut dst, input, base, level)
        .map_err(|code| {
            format!(
                "zstd: delta-compressing {} bytes failed: {}",
                input.len(),
                zstd_safe::get_error_name(code)
            )
        })?;
    Ok(dst)
}

/// Accepts only what [`ZstdCompressor::compress`] writes: exactly one standard
/// zstd frame (no legacy or skippable frames, nothing after it) whose recorded
/// content size, if any, is `raw_len`.
fn check_frame(input: &[u8], raw_len: usize) -> Result<(), CodecError> {
    if !input.starts_with(&FRAME_MAGIC) {
        return Err(format!(
            "zstd: not a zstd frame ({} bytes, no frame magic)",
            input.len()
        )
        .into());
    }
    match zstd_safe::get_frame_content_size(input) {
        Ok(Some(size)) if size != raw_len as u64 => {
            return Err(format!("zstd: frame holds {size} bytes, expected {raw_len}").into());
        }
        Ok(_) => {}
        Err(_) => return Err("zstd: corrupt frame header".into()),
    }
    match zstd_safe::find_frame_compressed_size(input) {
        Ok(len) if len == input.len() => Ok(()),
        Ok(len) => Err(format!(
            "zstd: {} bytes after the {len}-byte frame",
            input.len() - len
        )
        .into()),
        Err(code) => {
            Err(format!("zstd: corrupt frame: {}", zstd_safe::get_error_name(code)).into())
        }
    }
}

thread_local! {
    /// This thread's compression contexts, one per level used.
    static COMPRESSORS: RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(Vec::new()) };

    /// This thread's decompression context.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// A compression context with the settings every hexz zstd frame uses.
fn new_compressor(level: i32) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_checksum(false)?;
    c.include_contentsize(true)?;
    c.include_dictid(false)?;
    c.long_distance_matching(false)?;
    Ok(c)
}

/// Compresses `input` into `dst` with this thread's cached context for `level`.
fn compress_cached(level: i32, input: &[u8], dst: &mut [u8]) -> io::Result<usize> {
    let cached = COMPRESSORS.try_with(|cell| {
        // Busy only if re-entered; fall back to a fresh context below.
        let mut cache = cell.try_borrow_mut().ok()?;
        let index = match cache.iter().position(|(l, _)| *l == level) {
            Some(index) => index,
            None => match new_compressor(level) {
                Ok(c) => {
                    cache.push((level, c));
                    cache.len() - 1
                }
                Err(e) => return Some(Err(e)),
            },
        };
        let result = cache[index].1.compress_to_buffer(input, dst);
        if result.is_err() {
            // Don't keep a context that stopped mid-frame.
            cache.swap_remove(index);
        }
        Some(result)
    });
    match cached {
        Ok(Some(result)) => result,
        // Thread-local storage is gone (thread exit) or busy.
        _ => new_compressor(level)?.compress_to_buffer(input, dst),
    }
}

/// Decompresses `input` into `dst` with this thread's cached context.
fn decompress_cached(input: &[u8], dst: &mut [u8]) -> io::Result<usize> {
    let cached = DECOMPRESSOR.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let d = match &mut *slot {
            Some(d) => d,
            empty => match zstd::bulk::Decompressor::new() {
                Ok(d) => empty.insert(d),
                Err(e) => return Some(Err(e)),
            },
        };
        Some(d.decompress_to_buffer(input, dst))
    });
    match cached {
        Ok(Some(result)) => result,
        _ => zstd::bulk::decompress_to_buffer(input, dst),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn delta_form_round_trips_against_its_base_only() {
        let codec = ZstdCompressor::default();
        let base: Vec<u8> = (0..2_000u32)
            .flat_map(|i| {
                let id = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                format!("entry {i} name/of/a/file_{id:016x}.py\n").into_bytes()
            })
            .collect();
        let mut page = base.clone();
        page[1000] ^= 1;
        page.extend_from_slice(b"one more entry");
        let mut delta = Vec::new();
        assert!(codec.compress_with_base(&page, &base, &mut delta).unwrap());
        let mut whole = Vec::new();
        codec.compress(&page, &mut whole).unwrap();
        assert!(
            delta.len() * 20 < whole.len(),
            "{} vs {}",
            delta.len(),
            whole.len()
        );
        // A standard frame: deterministic, content size recorded.
        let mut again = Vec::new();
        codec.compress_with_base(&page, &base, &mut again).unwrap();
        assert_eq!(again, delta);
        let mut out = vec![7];
        codec
            .decompress_with_base(&delta, &base, page.len(), &mut out)
            .unwrap();
        assert_eq!(&out[1..], &page[..]);
        // Another base, another length, or no base: an error or other bytes, never
        // a silent success with the same bytes.
        let mut other = base.clone();
        other[5000] ^= 0xff;
        let mut out = Vec::new();
        let decoded = codec.decompress_with_base(&delta, &other, page.len(), &mut out);
        assert!(decoded.is_err() || out != page);
        assert!(
            codec
                .decompress_with_base(&delta, &base, page.len() + 1, &mut Vec::new())
                .is_err()
        );
        assert!(
            codec
                .decompress(&delta, page.len(), &mut Vec::new())
                .is_err()
        );
        // A base that would be read as a trained dictionary is not used.
        let mut magic = DICT_MAGIC.to_vec();
        magic.extend_from_slice(&base);
        let mut none = Vec::new();
        assert!(!codec.compress_with_base(&page, &magic, &mut none).unwrap());
        assert!(none.is_empty());
        assert!(
            codec
                .decompress_with_base(&delta, &magic, page.len(), &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn levels() {
        assert_eq!(ZstdCompressor::default().level(), 3);
        assert_eq!(ZstdCompressor::new(1).unwrap().level(), 1);
        assert_eq!(ZstdCompressor::new(22).unwrap().level(), 22);
        assert_eq!(ZstdCompressor::new(-1), Err(ZstdLevelError { level: -1 }));
        assert_eq!(ZstdCompressor::new(23), Err(ZstdLevelError { level: 23 }));
    }

    #[test]
    fn frames_carry_content_size_and_no_checksum() {
        let data = b"abcdefgh".repeat(1000);
        let mut packed = Vec::new();
        ZstdCompressor::default()
            .compress(&data, &mut packed)
            .unwrap();
        assert!(matches!(
            zstd_safe::get_frame_content_size(&packed),
            Ok(Some(n)) if n == data.len() as u64
        ));
        // Frame header descriptor: bit 2 is the checksum flag, bits 0-1 the
        // dictionary ID size.
        assert_eq!(packed[4] & 0b111, 0);
    }

    #[test]
    fn levels_share_threads_without_mixing_up() {
        let data = b"some text, some text, some more text. ".repeat(2000);
        let fast = ZstdCompressor::new(1).unwrap();
        let slow = ZstdCompressor::new(19).unwrap();
        let mut a1 = Vec::new();
        let mut b1 = Vec::new();
        let mut a2 = Vec::new();
        fast.compress(&data, &mut a1).unwrap();
        slow.compress(&data, &mut b1).unwrap();
        fast.compress(&data, &mut a2).unwrap();
        assert_eq!(a1, a2);
        assert_eq!(a1, zstd::bulk::compress(&data, 1).unwrap());
        assert_eq!(b1, zstd::bulk::compress(&data, 19).unwrap());
    }

    #[test]
    fn rejects_foreign_and_trailing_frames() {
        let c = ZstdCompressor::default();
        let data = vec![1u8; 500];
        let mut packed = Vec::new();
        c.compress(&data, &mut packed).unwrap();

        let mut two = packed.clone();
        two.extend_from_slice(&packed);
        let mut out = b"keep".to_vec();
        assert!(c.decompress(&two, 1000, &mut out).is_err());
        assert_eq!(out, b"keep");

        // A skippable frame in front.
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        skippable.extend_from_slice(&packed);
        assert!(c.decompress(&skippable, 500, &mut out).is_err());
        assert_eq!(out, b"keep");

        c.decompress(&packed, 500, &mut out).unwrap();
        assert_eq!(&out[4..], &data[..]);
    }
}
