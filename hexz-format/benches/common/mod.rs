//! The deterministic mixed corpus both benches run on: log-like text, binary
//! records, incompressible noise, sparse zero regions and edited copies of earlier
//! files, laid out as files of one logical stream.

#![allow(dead_code)]

use hexz_format::EntryMeta;

/// xorshift64*.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

/// One generated file: name and byte range in the corpus.
pub struct File {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

fn push_num(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width.max(1) {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Log-like lines over a skewed vocabulary (zstd-3 gets ~3-4x on these).
fn gen_text(rng: &mut Rng, vocab: &[Vec<u8>], out: &mut Vec<u8>, len: usize) {
    const LEVELS: [&[u8]; 4] = [b" INFO ", b" DEBUG ", b" WARN ", b" ERROR "];
    let end = out.len() + len;
    let mut t = rng.below(86_400_000);
    while out.len() < end {
        t += rng.below(5_000);
        out.extend_from_slice(b"2025-03-14T");
        push_num(out, (t / 3_600_000) % 24, 2);
        out.push(b':');
        push_num(out, (t / 60_000) % 60, 2);
        out.push(b':');
        push_num(out, (t / 1000) % 60, 2);
        out.push(b'.');
        push_num(out, t % 1000, 3);
        out.push(b'Z');
        out.extend_from_slice(LEVELS[(rng.below(16) as usize).min(3)]);
        let n = vocab.len() as u64;
        out.extend_from_slice(&vocab[rng.below(32) as usize]);
        out.extend_from_slice(b": ");
        for w in 0..4 + rng.below(11) {
            if w > 0 {
                out.push(b' ');
            }
            // Zipf-like: small indices are much more frequent.
            let i = rng.below(n) * rng.below(n) / n;
            out.extend_from_slice(&vocab[i as usize]);
        }
        if rng.below(3) == 0 {
            out.extend_from_slice(b" id=");
            push_num(out, rng.below(1 << 31), 1);
        }
        out.push(b'\n');
    }
    out.truncate(end);
}

/// 32-byte little-endian records: id, timestamp, random-walk f64, category, flags.
fn gen_records(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    let mut id = rng.below(1 << 20);
    let mut ts = 1_700_000_000_000u64 + rng.below(1 << 30);
    let mut value = 100.0f64;
    while out.len() < end {
        id += 1;
        ts += rng.below(1000);
        value += (rng.below(2001) as f64 - 1000.0) / 1000.0;
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
        out.extend_from_slice(&(rng.below(16) as u32).to_le_bytes());
        out.extend_from_slice(&(if rng.below(8) == 0 { 1u32 } else { 0 }).to_le_bytes());
    }
    out.truncate(end);
}

/// Incompressible bytes (already-compressed media, encrypted blobs).
fn gen_noise(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    while out.len() < end {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(end);
}

/// Mostly zeros (long runs that become zero chunks) with scattered 4 KiB blocks
/// of data, like a sparse disk image.
fn gen_sparse(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    while out.len() < end {
        let zeros = (64 << 10) + rng.below(1 << 20) as usize;
        out.resize((out.len() + zeros).min(end), 0);
        for _ in 0..1 + rng.below(4) {
            if out.len() < end {
                gen_noise(rng, out, 4096.min(end - out.len()));
            }
        }
    }
    out.truncate(end);
}

/// `total` bytes of mixed content cut into files of 16 KiB to 2 MiB: about 40 %
/// text, 25 % binary records, 15 % noise, 15 % edited copies of earlier files,
/// 5 % sparse.
pub fn corpus(total: usize, seed: u64) -> (Vec<u8>, Vec<File>) {
    let mut rng = Rng::new(seed);
    let vocab: Vec<Vec<u8>> = (0..512)
        .map(|_| {
            (0..2 + rng.below(9))
                .map(|_| b'a' + rng.below(26) as u8)
                .collect()
        })
        .collect();
    let mut data = Vec::with_capacity(total);
    let mut files: Vec<File> = Vec::new();
    let mut kinds: Vec<(&str, usize, usize)> = Vec::new();
    while data.len() < total {
        let base = (16usize << 10) << rng.below(7);
        let len = (base + rng.below(base as u64) as usize).min(total - data.len());
        let start = data.len();
        let kind = rng.below(100);
        let ext = match kind {
            0..40 => {
                gen_text(&mut rng, &vocab, &mut data, len);
                "log"
            }
            40..65 => {
                gen_records(&mut rng, &mut data, len);
                "bin"
            }
            65..80 => {
                gen_noise(&mut rng, &mut data, len);
                "jpg"
            }
            80..95 if !files.is_empty() => {
                // An edited copy of an earlier file: same bytes with a few patched.
                let src = &files[rng.below(files.len() as u64) as usize];
                let (s, e) = (src.start, src.end.min(src.start + total - start));
                data.extend_from_within(s..e);
                let copied = e - s;
                for _ in 0..1 + copied / (1 << 20) {
                    let at = start + rng.below(copied as u64) as usize;
                    data[at] = data[at].wrapping_add(1);
                }
                "copy"
            }
            _ => {
                gen_sparse(&mut rng, &mut data, len);
                "img"
            }
        };
        match kinds.iter_mut().find(|(k, _, _)| *k == ext) {
            Some((_, n, bytes)) => {
                *n += 1;
                *bytes += data.len() - start;
            }
            None => kinds.push((ext, 1, data.len() - start)),
        }
        let i = files.len();
        files.push(File {
            name: format!("d{:02}/f{i:05}.{ext}", i % 16),
            start,
            end: data.len(),
        });
    }
    eprint!("corpus: {} files, {} bytes:", files.len(), data.len());
    for (ext, n, bytes) in &kinds {
        eprint!(
            " .{ext} {n} files {:.1} MiB;",
            *bytes as f64 / (1 << 20) as f64
        );
    }
    eprintln!();
    (data, files)
}

// ---------------------------------------------------------------------------

pub fn meta(i: usize) -> EntryMeta {
    EntryMeta {
        mode: 0o100644,
        mtime: 1_700_000_000 + i as i64,
        mtime_nsec: 0,
        owner: None,
        columns: Vec::new(),
    }
}
