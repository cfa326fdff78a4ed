//! Conformance suite for [`Compressor`] implementations.
//!
//! Every codec, built in or out of tree, should pass [`check_compressor`] in its
//! tests. The suite checks the contract documented on [`Compressor`]:
//!
//! * [`Check::Name`]: `name()` is non-empty ASCII of at most [`MAX_NAME_LEN`]
//!   bytes and the same on every call.
//! * [`Check::RoundTrip`]: `decompress(compress(x), x.len())` gives back `x` for
//!   empty input, a single byte, many short lengths around typical block-format
//!   edges, 1 MiB of zeros, 256 KiB of incompressible random bytes and
//!   text-like data.
//! * [`Check::Determinism`]: compressing the same input again, after other
//!   inputs, and on other threads gives identical bytes.
//! * [`Check::Append`]: both `compress` and `decompress` append to `out` and
//!   leave the bytes already in it untouched.
//! * [`Check::WrongRawLen`]: decompressing with a `raw_len` smaller or larger
//!   than the real length returns `Err`.
//! * [`Check::CorruptInput`]: truncated, bit-flipped, overwritten, extended and
//!   random compressed input returns `Err` or appends exactly `raw_len` bytes.
//! * [`Check::OutputBound`]: a failing or hostile decompression never writes
//!   more than `raw_len` bytes to `out` and never grows `out` far beyond
//!   `raw_len`, whatever the compressed bytes claim.
//!
//! A panic inside the codec is caught and reported as a failure of the check
//! that was running (codecs must return `Err`, never panic, on bad input). The
//! panic message is still printed by the panic hook. Catching needs
//! `panic = "unwind"`, the default for tests.
//!
//! The inputs come from a small deterministic PRNG, so a failure reproduces on
//! every run and machine.
//!
//! ```
//! use hexz_format::NoCompression;
//! use hexz_format::conformance::check_compressor;
//!
//! if let Err(failure) = check_compressor(&NoCompression) {
//!     panic!("{failure}");
//! }
//! ```

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::codec::Compressor;

/// The longest codec name an archive can record, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// The property of the [`Compressor`] contract that a codec violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// `name()` is empty, not ASCII, longer than [`MAX_NAME_LEN`] bytes, or not
    /// stable across calls.
    Name,
    /// Compressing then decompressing did not give back the input (or one of the
    /// two calls failed).
    RoundTrip,
    /// The same input compressed to different bytes on another call or thread.
    Determinism,
    /// `compress` or `decompress` changed or dropped bytes already in `out`, or
    /// did not append its result after them.
    Append,
    /// `decompress` accepted a `raw_len` that differs from the real length.
    WrongRawLen,
    /// Corrupt or random input made `decompress` panic, or report success
    /// without appending exactly `raw_len` bytes.
    CorruptInput,
    /// `decompress` wrote more than `raw_len` bytes to `out`, or grew `out`'s
    /// allocation far past what `raw_len` needs.
    OutputBound,
}

impl Check {
    /// A short stable identifier for the check (`"round-trip"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Name => "name",
            Check::RoundTrip => "round-trip",
            Check::Determinism => "determinism",
            Check::Append => "append",
            Check::WrongRawLen => "wrong-raw-len",
            Check::CorruptInput => "corrupt-input",
            Check::OutputBound => "output-bound",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first conformance violation [`check_compressor`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("codec `{codec}` fails conformance check `{check}` on {case}: {detail}")]
pub struct ConformanceFailure {
    /// The codec's `name()` (escaped if it is not printable).
    pub codec: String,
    /// Which property failed.
    pub check: Check,
    /// The input or situation that exposed it, e.g. `"all-zero 1 MiB"`.
    pub case: String,
    /// What went wrong.
    pub detail: String,
}

/// Runs the whole suite against `c` and returns the first violation.
///
/// Takes a few hundred milliseconds in a debug build for the built-in codecs
/// (it compresses and decompresses a few MiB in total).
pub fn check_compressor(c: &dyn Compressor) -> Result<(), ConformanceFailure> {
    let name = checked_name(c)?;
    let suite = Suite { c, codec: name };
    let samples = samples();

    let compressed = suite.round_trips(&samples)?;
    suite.determinism(&samples, &compressed)?;
    suite.append(&samples, &compressed)?;
    suite.wrong_raw_len(&samples, &compressed)?;
    suite.corrupt_input(&samples, &compressed)?;
    suite.random_input()?;
    Ok(())
}

/// Bytes placed in `out` before every call that checks appending.
const PREFIX: &[u8] = b"\x00hexz-prefix\xff\x7f\x80";

fn checked_name(c: &dyn Compressor) -> Result<String, ConformanceFailure> {
    let raw = catch(|| c.name().to_owned());
    let fail = |codec: String, detail: String| ConformanceFailure {
        codec,
        check: Check::Name,
        case: "name()".to_owned(),
        detail,
    };
    let name = match raw {
        Ok(name) => name,
        Err(msg) => return Err(fail("<unknown>".to_owned(), format!("panicked: {msg}"))),
    };
    let shown = name.escape_debug().to_string();
    if name.is_empty() {
        return Err(fail(shown, "name is empty".to_owned()));
    }
    if !name.is_ascii() {
        return Err(fail(shown, "name is not ASCII".to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(fail(
            shown,
            format!(
                "name is {} bytes, at most {MAX_NAME_LEN} allowed",
                name.len()
            ),
        ));
    }
    match catch(|| c.name().to_owned()) {
        Ok(again) if again == name => {}
        Ok(again) => {
            return Err(fail(
                shown,
                format!(
                    "name changed between calls (then `{}`)",
                    again.escape_debug()
                ),
            ));
        }
        Err(msg) => return Err(fail(shown, format!("panicked: {msg}"))),
    }
    Ok(shown)
}

/// One input the suite round-trips.
struct Sample {
    label: String,
    data: Vec<u8>,
}

/// How a probed `decompress` call ended, after its output was validated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Returned `Ok` and appended exactly `raw_len` bytes.
    Accepted,
    /// Returned `Err` with this message.
    Rejected(String),
}

struct Suite<'a> {
    c: &'a dyn Compressor,
    codec: String,
}

impl Suite<'_> {
    fn fail(&self, check: Check, case: &str, detail: String) -> ConformanceFailure {
        ConformanceFailure {
            codec: self.codec.clone(),
            check,
            case: case.to_owned(),
            detail,
        }
    }

    /// Compresses `input` into a fresh `Vec`.
    fn compress(
        &self,
        check: Check,
        case: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, ConformanceFailure> {
        let mut out = Vec::new();
        match catch(|| self.c.compress(input, &mut out)) {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(self.fail(check, case, format!("compress returned an error: {e}"))),
            Err(msg) => Err(self.fail(check, case, format!("compress panicked: {msg}"))),
        }
    }

    /// Decompresses `input` into a fresh `Vec`, requiring success.
    fn decompress(
        &self,
        check: Check,
        case: &str,
        input: &[u8],
        raw_len: usize,
    ) -> Result<Vec<u8>, ConformanceFailure> {
        let mut out = Vec::new();
        match catch(|| self.c.decompress(input, raw_len, &mut out)) {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(self.fail(check, case, format!("decompress returned an error: {e}"))),
            Err(msg) => Err(self.fail(check, case, format!("decompress panicked: {msg}"))),
        }
    }

    /// Decompresses `input` after [`PREFIX`] and validates everything except
    /// the content: no panic, prefix intact, exactly `raw_len` bytes appended on
    /// success, at most `raw_len` on failure, and a bounded allocation.
    fn probe(
        &self,
        check: Check,
        case: &str,
        input: &[u8],
        raw_len: usize,
    ) -> Result<(Outcome, Vec<u8>), ConformanceFailure> {
        let mut out = Vec::with_capacity(PREFIX.len());
        out.extend_from_slice(PREFIX);
        let cap_before = out.capacity();
        let result = catch(|| self.c.decompress(input, raw_len, &mut out));
        let outcome = match result {
            Ok(Ok(())) => Outcome::Accepted,
            Ok(Err(e)) => Outcome::Rejected(e.to_string()),
            Err(msg) => {
                return Err(self.fail(
                    check,
                    case,
                    format!(
                        "decompress of {} bytes with raw_len {raw_len} panicked instead of \
                         returning Err: {msg}",
                        input.len()
                    ),
                ));
            }
        };
        if !out.starts_with(PREFIX) {
            return Err(self.fail(
                Check::Append,
                case,
                "decompress modified bytes that were already in `out`".to_owned(),
            ));
        }
        let appended = out.len() - PREFIX.len();
        match outcome {
            Outcome::Accepted if appended != raw_len => {
                return Err(self.fail(
                    check,
                    case,
                    format!(
                        "decompress returned Ok but appended {appended} bytes, raw_len is {raw_len}"
                    ),
                ));
            }
            Outcome::Rejected(_) if appended > raw_len => {
                return Err(self.fail(
                    Check::OutputBound,
                    case,
                    format!("failed decompress left {appended} bytes in `out`, more than raw_len {raw_len}"),
                ));
            }
            _ => {}
        }
        // Growing `out` to hold `raw_len` bytes may double the allocation; anything
        // far beyond that means the codec sized its output from the input.
        let bound = cap_before
            .max(PREFIX.len().saturating_add(raw_len))
            .saturating_mul(2)
            .saturating_add(4096);
        if out.capacity() > bound {
            return Err(self.fail(
                Check::OutputBound,
                case,
                format!(
                    "decompress with raw_len {raw_len} grew `out` to a capacity of {} bytes \
                     (at most {bound} expected)",
                    out.capacity()
                ),
            ));
        }
        Ok((outcome, out.split_off(PREFIX.len())))
    }

    /// Round-trips every sample; returns the compressed forms.
    fn round_trips(&self, samples: &[Sample]) -> Result<Vec<Vec<u8>>, ConformanceFailure> {
        let mut all = Vec::with_capacity(samples.len());
        for s in samples {
            let compressed = self.compress(Check::RoundTrip, &s.label, &s.data)?;
            let restored =
                self.decompress(Check::RoundTrip, &s.label, &compressed, s.data.len())?;
            if let Some(detail) = mismatch(&s.data, &restored) {
                return Err(self.fail(
                    Check::RoundTrip,
                    &s.label,
                    format!("decompressed data differs from the input: {detail}"),
                ));
            }
            all.push(compressed);
        }
        Ok(all)
    }

    fn determinism(
        &self,
        samples: &[Sample],
        compressed: &[Vec<u8>],
    ) -> Result<(), ConformanceFailure> {
        // Again, in reverse order, so any state carried between calls differs.
        for (s, first) in samples.iter().zip(compressed).rev() {
            let again = self.compress(Check::Determinism, &s.label, &s.data)?;
            if &again != first {
                return Err(self.fail(
                    Check::Determinism,
                    &s.label,
                    format!(
                        "second compress gave different bytes ({} vs {} bytes{})",
                        again.len(),
                        first.len(),
                        mismatch(first, &again)
                            .map(|d| format!("; {d}"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }

        // On other threads, each going through the samples in its own order.
        let picked: Vec<usize> = samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.data.len() >= 1024 && s.data.len() <= 256 * 1024)
            .map(|(i, _)| i)
            .collect();
        let results: Vec<Result<(), ConformanceFailure>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .map(|t| {
                    let picked = &picked;
                    scope.spawn(move || {
                        for k in 0..picked.len() {
                            let i = picked[(k + t) % picked.len()];
                            let s = &samples[i];
                            let case = format!("{} (thread {t})", s.label);
                            let again = self.compress(Check::Determinism, &case, &s.data)?;
                            if again != compressed[i] {
                                return Err(self.fail(
                                    Check::Determinism,
                                    &case,
                                    "compress on another thread gave different bytes".to_owned(),
                                ));
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|payload| {
                        Err(self.fail(
                            Check::Determinism,
                            "compress on another thread",
                            format!("thread panicked: {}", panic_message(payload.as_ref())),
                        ))
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }

    fn append(&self, samples: &[Sample], compressed: &[Vec<u8>]) -> Result<(), ConformanceFailure> {
        for (s, expected) in samples.iter().zip(compressed) {
            // Compress after existing bytes, with and without spare capacity.
            for spare in [0, expected.len() + 4096] {
                let mut out = Vec::with_capacity(PREFIX.len() + spare);
                out.extend_from_slice(PREFIX);
                match catch(|| self.c.compress(&s.data, &mut out)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(self.fail(
                            Check::Append,
                            &s.label,
                            format!("compress after existing bytes returned an error: {e}"),
                        ));
                    }
                    Err(msg) => {
                        return Err(self.fail(
                            Check::Append,
                            &s.label,
                            format!("compress after existing bytes panicked: {msg}"),
                        ));
                    }
                }
                if !out.starts_with(PREFIX) {
                    return Err(self.fail(
                        Check::Append,
                        &s.label,
                        "compress modified or dropped bytes already in `out`".to_owned(),
                    ));
                }
                if out[PREFIX.len()..] != expected[..] {
                    return Err(self.fail(
                        Check::Append,
                        &s.label,
                        "compress after existing bytes did not append the same bytes as into an \
                         empty `out`"
                            .to_owned(),
                    ));
                }
            }

            // Decompress after existing bytes.
            let (outcome, restored) =
                self.probe(Check::Append, &s.label, expected, s.data.len())?;
            if let Outcome::Rejected(e) = outcome {
                return Err(self.fail(
                    Check::Append,
                    &s.label,
                    format!("decompress after existing bytes returned an error: {e}"),
                ));
            }
            if let Some(detail) = mismatch(&s.data, &restored) {
                return Err(self.fail(
                    Check::Append,
                    &s.label,
                    format!("decompress after existing bytes appended wrong data: {detail}"),
                ));
            }
        }
        Ok(())
    }

    fn wrong_raw_len(
        &self,
        samples: &[Sample],
        compressed: &[Vec<u8>],
    ) -> Result<(), ConformanceFailure> {
        for (s, blob) in samples.iter().zip(compressed) {
            let len = s.data.len();
            let mut wrong = vec![len + 1, len + 4096];
            if len > 0 {
                wrong.extend([len - 1, len / 2, 0]);
            }
            wrong.sort_unstable();
            wrong.dedup();
            for raw_len in wrong.into_iter().filter(|&n| n != len) {
                let case = format!("{} with raw_len {raw_len} instead of {len}", s.label);
                let (outcome, _) = self.probe(Check::WrongRawLen, &case, blob, raw_len)?;
                if outcome == Outcome::Accepted {
                    return Err(self.fail(
                        Check::WrongRawLen,
                        &case,
                        "decompress returned Ok for a raw_len that differs from the real length"
                            .to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn corrupt_input(
        &self,
        samples: &[Sample],
        compressed: &[Vec<u8>],
    ) -> Result<(), ConformanceFailure> {
        let mut rng = Prng::new(0x00c0_ff11_c0de);
        for (s, blob) in samples.iter().zip(compressed) {
            let raw_len = s.data.len();
            let n = blob.len();
            // Full treatment for small and medium blobs, a lighter one for the
            // large ones so a debug build stays quick.
            let heavy = raw_len <= 64 * 1024;
            let mut variants: Vec<(String, Vec<u8>)> = Vec::new();

            // Truncations.
            let mut cuts: Vec<usize> = if n <= 64 {
                (0..n).collect()
            } else {
                vec![
                    0,
                    1,
                    2,
                    3,
                    4,
                    5,
                    6,
                    8,
                    12,
                    16,
                    n / 4,
                    n / 2,
                    3 * n / 4,
                    n - 16,
                    n - 4,
                    n - 2,
                    n - 1,
                ]
            };
            cuts.sort_unstable();
            cuts.dedup();
            for k in cuts.into_iter().filter(|&k| k < n) {
                variants.push((format!("truncated to {k} of {n} bytes"), blob[..k].to_vec()));
            }

            // Trailing bytes.
            let mut extended = blob.clone();
            extended.push(0);
            variants.push(("with a trailing zero byte".to_owned(), extended));
            let mut extended = blob.clone();
            let mut tail = [0u8; 16];
            rng.fill(&mut tail);
            extended.extend_from_slice(&tail);
            variants.push(("with 16 trailing random bytes".to_owned(), extended));

            if n > 0 {
                // Every bit of the first bytes (headers live there), then random bits.
                let header_bits = if heavy { n.min(8) * 8 } else { n.min(2) * 8 };
                let random_bits = if heavy { 64 } else { 8 };
                let mut bits: Vec<usize> = (0..header_bits).collect();
                bits.extend((0..random_bits).map(|_| rng.below(n * 8)));
                bits.push(n * 8 - 1);
                for bit in bits {
                    let mut flipped = blob.clone();
                    flipped[bit / 8] ^= 1 << (bit % 8);
                    variants.push((format!("bit {bit} of {} flipped", n * 8), flipped));
                }

                // Overwritten runs.
                let runs = if heavy { 12 } else { 3 };
                for r in 0..runs {
                    let start = rng.below(n);
                    let len = (1 + rng.below(16)).min(n - start);
                    let mut damaged = blob.clone();
                    match r % 3 {
                        0 => damaged[start..start + len].fill(0xff),
                        1 => damaged[start..start + len].fill(0),
                        _ => rng.fill(&mut damaged[start..start + len]),
                    }
                    variants.push((
                        format!("bytes {start}..{} overwritten", start + len),
                        damaged,
                    ));
                }
            }

            for (what, input) in variants {
                let case = format!("{} {what}", s.label);
                self.probe(Check::CorruptInput, &case, &input, raw_len)?;
            }
        }
        Ok(())
    }

    /// Random bytes that were never compressed, with assorted `raw_len`s.
    fn random_input(&self) -> Result<(), ConformanceFailure> {
        let mut rng = Prng::new(0x0bad_5eed);
        for input_len in [0usize, 1, 2, 4, 7, 16, 64, 1000, 4096] {
            for raw_len in [0usize, 1, 100, 4096, 70_000] {
                for attempt in 0..2 {
                    let mut input = vec![0u8; input_len];
                    rng.fill(&mut input);
                    if attempt == 1 {
                        // Mostly-0xff input: maximal length fields in many formats.
                        for b in input.iter_mut().skip(1) {
                            *b |= 0xf0;
                        }
                    }
                    let case = format!(
                        "{input_len} random bytes (variant {attempt}) with raw_len {raw_len}"
                    );
                    self.probe(Check::CorruptInput, &case, &input, raw_len)?;
                }
            }
        }
        Ok(())
    }
}

/// The inputs every codec must round-trip.
fn samples() -> Vec<Sample> {
    let mut rng = Prng::new(0x6865_787a);
    let mut samples = vec![
        Sample {
            label: "empty input".to_owned(),
            data: Vec::new(),
        },
        Sample {
            label: "1 byte".to_owned(),
            data: vec![0x5a],
        },
    ];

    // Short lengths around block-format edges (LZ4's 12/13-byte minimum match
    // window, 64 KiB windows, power-of-two boundaries), text-like content.
    let text = text_like(&mut rng, 96 * 1024);
    for len in [
        2usize, 3, 4, 5, 8, 11, 12, 13, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 4095, 4096,
        4097,
    ] {
        samples.push(Sample {
            label: format!("text-like {len} bytes"),
            data: text[..len].to_vec(),
        });
    }
    samples.push(Sample {
        label: "repeated byte 4097 bytes".to_owned(),
        data: vec![b'a'; 4097],
    });

    samples.push(Sample {
        label: "all-zero 1 MiB".to_owned(),
        data: vec![0; 1 << 20],
    });

    let mut random = vec![0u8; 256 * 1024];
    rng.fill(&mut random);
    samples.push(Sample {
        label: "random 256 KiB".to_owned(),
        data: random,
    });

    // A typical 64 KiB blob: text, a random stretch, a run of zeros, text again.
    let mut mixed = Vec::with_capacity(64 * 1024);
    mixed.extend_from_slice(&text[..24 * 1024]);
    let mut noise = vec![0u8; 8 * 1024];
    rng.fill(&mut noise);
    mixed.extend_from_slice(&noise);
    mixed.resize(mixed.len() + 8 * 1024, 0);
    mixed.extend_from_slice(&text[40 * 1024..64 * 1024]);
    samples.push(Sample {
        label: "mixed 64 KiB".to_owned(),
        data: mixed,
    });

    samples.push(Sample {
        label: "text-like 96 KiB".to_owned(),
        data: text,
    });
    samples
}

/// Pseudo-English: words, punctuation, numbers and line breaks.
fn text_like(rng: &mut Prng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "archive",
        "of",
        "and",
        "chunk",
        "index",
        "a",
        "to",
        "is",
        "stream",
        "page",
        "in",
        "data",
        "block",
        "entry",
        "with",
        "hash",
        "root",
        "for",
        "reader",
        "writer",
        "codec",
        "compressed",
        "file",
        "offset",
        "length",
        "that",
        "tree",
        "each",
        "one",
        "on",
        "by",
        "are",
        "from",
        "catalog",
        "integrity",
        "directory",
        "bytes",
        "seekable",
        "immutable",
    ];
    let mut out = Vec::with_capacity(len + 32);
    let mut capitalize = true;
    let mut words_on_line = 0;
    while out.len() < len {
        let word = WORDS[rng.below(WORDS.len())];
        if rng.below(25) == 0 {
            out.extend_from_slice((rng.next_u64() % 100_000).to_string().as_bytes());
        } else if capitalize {
            let mut bytes = word.as_bytes().to_vec();
            bytes[0] = bytes[0].to_ascii_uppercase();
            out.extend_from_slice(&bytes);
        } else {
            out.extend_from_slice(word.as_bytes());
        }
        capitalize = false;
        words_on_line += 1;
        match rng.below(16) {
            0 => {
                out.extend_from_slice(b".");
                capitalize = true;
            }
            1 => out.extend_from_slice(b","),
            _ => {}
        }
        if words_on_line >= 12 && rng.below(3) == 0 {
            out.push(b'\n');
            words_on_line = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

/// Describes how `actual` differs from `expected`, or `None` if equal.
fn mismatch(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    Some(format!(
        "{} bytes expected, {} bytes produced, first difference at offset {first}",
        expected.len(),
        actual.len()
    ))
}

/// Runs `f`, turning a panic into its message.
fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(payload.as_ref()))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// SplitMix64: tiny, deterministic, good enough for test data.
struct Prng(u64);

impl Prng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; `n` must be non-zero.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{CodecError, NoCompression};
    use std::sync::atomic::{AtomicU8, Ordering};

    #[test]
    fn no_compression_conforms() {
        if let Err(failure) = check_compressor(&NoCompression) {
            panic!("{failure}");
        }
    }

    fn failed_check(c: &dyn Compressor) -> Check {
        match check_compressor(c) {
            Ok(()) => panic!("{c:?} unexpectedly passed the conformance suite"),
            Err(failure) => {
                // The message names the codec and the check.
                let text = failure.to_string();
                assert!(text.contains(failure.check.as_str()), "{text}");
                assert!(text.contains(&failure.codec), "{text}");
                failure.check
            }
        }
    }

    /// `NoCompression` with one behaviour swapped out per test.
    #[derive(Debug, Default)]
    struct Broken {
        name: &'static str,
        clears_out: bool,
        ignores_raw_len: bool,
        panics_on_bad_len: bool,
        counter: Option<AtomicU8>,
        over_allocates: bool,
    }

    impl Compressor for Broken {
        fn name(&self) -> &str {
            self.name
        }

        fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
            if self.clears_out {
                out.clear();
            }
            if let Some(counter) = &self.counter {
                out.push(counter.fetch_add(1, Ordering::Relaxed));
            } else {
                out.push(0);
            }
            out.extend_from_slice(input);
            Ok(())
        }

        fn decompress(
            &self,
            input: &[u8],
            raw_len: usize,
            out: &mut Vec<u8>,
        ) -> Result<(), CodecError> {
            if self.over_allocates {
                out.reserve(input.len().saturating_mul(64));
            }
            let body = input.get(1..).ok_or("missing tag byte")?;
            if body.len() != raw_len && !self.ignores_raw_len {
                if self.panics_on_bad_len {
                    panic!("length mismatch (deliberate test panic)");
                }
                return Err("length mismatch".into());
            }
            out.extend_from_slice(body);
            Ok(())
        }
    }

    #[test]
    fn baseline_broken_codec_conforms_when_nothing_is_broken() {
        let c = Broken {
            name: "tagged",
            ..Broken::default()
        };
        if let Err(failure) = check_compressor(&c) {
            panic!("{failure}");
        }
    }

    #[test]
    fn detects_bad_names() {
        assert_eq!(
            failed_check(&Broken {
                name: "",
                ..Broken::default()
            }),
            Check::Name
        );
        assert_eq!(
            failed_check(&Broken {
                name: "zstd\u{e9}",
                ..Broken::default()
            }),
            Check::Name
        );
        assert_eq!(
            failed_check(&Broken {
                name: "a-name-that-is-much-longer-than-32-bytes",
                ..Broken::default()
            }),
            Check::Name
        );
    }

    #[test]
    fn detects_nondeterminism() {
        let c = Broken {
            name: "counter",
            counter: Some(AtomicU8::new(0)),
            ..Broken::default()
        };
        assert_eq!(failed_check(&c), Check::Determinism);
    }

    #[test]
    fn detects_truncating_out() {
        let c = Broken {
            name: "clears",
            clears_out: true,
            ..Broken::default()
        };
        assert_eq!(failed_check(&c), Check::Append);
    }

    #[test]
    fn detects_ignored_raw_len() {
        let c = Broken {
            name: "lenient",
            ignores_raw_len: true,
            ..Broken::default()
        };
        assert_eq!(failed_check(&c), Check::WrongRawLen);
    }

    #[test]
    fn detects_panics() {
        let c = Broken {
            name: "panicky",
            panics_on_bad_len: true,
            ..Broken::default()
        };
        let failure = check_compressor(&c).err().map(|f| (f.check, f.detail));
        match failure {
            Some((Check::WrongRawLen, detail)) => assert!(detail.contains("panicked"), "{detail}"),
            other => panic!("unexpected result {other:?}"),
        }
    }

    #[test]
    fn detects_over_allocation() {
        let c = Broken {
            name: "greedy",
            over_allocates: true,
            ..Broken::default()
        };
        assert_eq!(failed_check(&c), Check::OutputBound);
    }

    #[test]
    fn samples_are_deterministic_and_sized() {
        let a = samples();
        let b = samples();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.label, y.label);
            assert_eq!(x.data, y.data);
        }
        let find = |label: &str| a.iter().find(|s| s.label == label).map(|s| s.data.len());
        assert_eq!(find("empty input"), Some(0));
        assert_eq!(find("1 byte"), Some(1));
        assert_eq!(find("all-zero 1 MiB"), Some(1 << 20));
        assert_eq!(find("random 256 KiB"), Some(256 * 1024));
        assert_eq!(find("mixed 64 KiB"), Some(64 * 1024));
    }
}
