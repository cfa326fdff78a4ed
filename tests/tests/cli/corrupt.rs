//! Damaged archives: exit code 3, with a one-line message, from every verb that
//! reads the damaged part; undamaged parts stay readable.

use std::fs;
use std::path::{Path, PathBuf};

use hexz_format::layout::HEADER_LEN;

use crate::support::{Rng, fails_with, ok, recipe_text, run, scratch, stdout, write_recipe};

/// Build `data` (two 1 MiB random files) with `codec`; return (archive, a, b).
fn build_two_files(dir: &Path, codec: &str) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    let mut rng = Rng::new(99);
    let a = rng.bytes(1 << 20);
    let b = rng.bytes(1 << 20);
    fs::write(data.join("a.bin"), &a).unwrap();
    fs::write(data.join("b.bin"), &b).unwrap();
    let recipe = write_recipe(dir, &recipe_text(&data, "c.hxz", codec));
    ok(&run([
        "build".as_ref(),
        recipe.as_os_str(),
        "--quiet".as_ref(),
    ]));
    (dir.join("out/c.hxz"), a, b)
}

fn find(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn flipped_byte_in_a_chunk_blob_gives_exit_3() {
    let dir = scratch();
    let (archive, a, b) = build_two_files(dir.path(), "none");
    ok(&run(["verify".as_ref(), archive.as_os_str()]));

    // With codec `none` chunk blobs are the raw bytes: find the middle of b.bin.
    let mut bytes = fs::read(&archive).unwrap();
    let at = find(&bytes, &b[512 << 10..(512 << 10) + 64]);
    assert_eq!(at.len(), 1, "b.bin's bytes should be stored once");
    bytes[at[0] + 10] ^= 0x40;
    fs::write(&archive, &bytes).unwrap();
    let arc = archive.as_os_str();

    // The tree is intact: the fast check passes; --deep reads every chunk.
    ok(&run(["verify".as_ref(), arc]));
    let err = fails_with(&run(["verify".as_ref(), arc, "--deep".as_ref()]), 3);
    assert!(err.contains("verification"), "{err}");
    fails_with(
        &run(["verify".as_ref(), arc, "--deep".as_ref(), "--json".as_ref()]),
        3,
    );
    let out = run(["cat".as_ref(), arc, "b.bin".as_ref()]);
    fails_with(&out, 3);
    let out = run([
        "cat".as_ref(),
        arc,
        "b.bin".as_ref(),
        "--offset".as_ref(),
        "524300".as_ref(),
        "--length".as_ref(),
        "10".as_ref(),
    ]);
    fails_with(&out, 3);
    assert!(
        out.stdout.is_empty(),
        "corrupt bytes were written to stdout"
    );
    let x = dir.path().join("x");
    fails_with(
        &run(["extract".as_ref(), arc, x.as_os_str(), "-q".as_ref()]),
        3,
    );

    // The catalog and the untouched chunks are still fine.
    ok(&run(["info".as_ref(), arc]));
    assert_eq!(stdout(&run(["ls".as_ref(), arc])), "a.bin\nb.bin\n");
    let out = run([
        "cat".as_ref(),
        arc,
        "a.bin".as_ref(),
        "--length".as_ref(),
        "100000".as_ref(),
    ]);
    ok(&out);
    assert!(out.stdout == a[..100_000]);
}

#[test]
fn flipped_byte_in_a_compressed_chunk_gives_exit_3() {
    let dir = scratch();
    let (archive, _, _) = build_two_files(dir.path(), "zstd");
    // Chunk blobs come first, right after the header: the first blob is a.bin's.
    let mut bytes = fs::read(&archive).unwrap();
    bytes[HEADER_LEN + 100] ^= 0x01;
    fs::write(&archive, &bytes).unwrap();
    let arc = archive.as_os_str();
    fails_with(&run(["verify".as_ref(), arc, "--deep".as_ref()]), 3);
    fails_with(&run(["cat".as_ref(), arc, "a.bin".as_ref()]), 3);
}

#[test]
fn truncated_or_foreign_files_give_exit_3() {
    let dir = scratch();
    let (archive, _, _) = build_two_files(dir.path(), "lz4");
    let bytes = fs::read(&archive).unwrap();

    let truncated = dir.path().join("truncated.hxz");
    fs::write(&truncated, &bytes[..bytes.len() - 1]).unwrap();
    let tail_flip = dir.path().join("trailer.hxz");
    let mut t = bytes.clone();
    let n = t.len();
    t[n - 40] ^= 0xff; // inside the trailer's CRC-covered bytes
    fs::write(&tail_flip, &t).unwrap();
    let foreign = dir.path().join("foreign.hxz");
    fs::write(
        &foreign,
        b"this is not an archive, just some text\n".repeat(100),
    )
    .unwrap();
    let empty = dir.path().join("empty.hxz");
    fs::write(&empty, b"").unwrap();

    for path in [&truncated, &tail_flip, &foreign, &empty] {
        for verb in ["info", "ls", "verify"] {
            let out = run([verb.as_ref(), path.as_os_str()]);
            fails_with(&out, 3);
        }
    }

    // A missing archive is not corruption.
    let missing = dir.path().join("missing.hxz");
    let out = run(["info".as_ref(), missing.as_os_str()]);
    let err = fails_with(&out, 1);
    assert!(err.contains("missing.hxz"), "{err}");
    // The OS error is given once, not repeated by the cause chain.
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

/// `bytes` with its trailer decoded, edited and re-encoded (CRC recomputed).
fn edit_trailer(bytes: &mut [u8], edit: impl FnOnce(&mut hexz_format::layout::Trailer)) {
    use hexz_format::layout::{TRAILER_LEN, Trailer};
    let at = bytes.len() - TRAILER_LEN;
    let mut t = Trailer::decode(bytes[at..].try_into().unwrap(), at as u64).unwrap();
    edit(&mut t);
    bytes[at..].copy_from_slice(&t.encode());
}

/// `bytes` with its directory (which ends at the trailer) decoded, edited and
/// re-encoded, the trailer's length and CRC fixed.
fn edit_directory(bytes: &mut Vec<u8>, edit: impl FnOnce(&mut hexz_format::layout::Directory)) {
    use hexz_format::layout::{Directory, TRAILER_LEN, Trailer};
    let at = bytes.len() - TRAILER_LEN;
    let mut t = Trailer::decode(bytes[at..].try_into().unwrap(), at as u64).unwrap();
    let start = t.directory_offset as usize;
    assert_eq!(start + t.directory_len as usize, at);
    let mut d = Directory::decode(&bytes[start..at], t.directory_offset).unwrap();
    edit(&mut d);
    let raw = d.encode();
    bytes.truncate(start);
    bytes.extend_from_slice(&raw);
    t.directory_len = raw.len() as u32;
    t.directory_crc = crc32fast::hash(&raw);
    bytes.extend_from_slice(&t.encode());
}

#[test]
fn a_flipped_trailer_version_byte_is_corruption_not_a_newer_version() {
    let dir = scratch();
    let (archive, _, _) = build_two_files(dir.path(), "lz4");
    let good = fs::read(&archive).unwrap();
    let at = good.len() - 64 + 32; // the trailer's major version
    for flip in [0x01u8, 0x02, 0x80] {
        let mut bytes = good.clone();
        bytes[at] ^= flip;
        fs::write(&archive, &bytes).unwrap();
        for verb in ["info", "ls", "verify"] {
            let err = fails_with(&run([verb.as_ref(), archive.as_os_str()]), 3);
            assert!(err.contains("CRC32 mismatch"), "{verb}: {err}");
            assert!(!err.contains("upgrade"), "{verb}: {err}");
        }
    }
    // A trailer that checks out and names a newer major: "upgrade hexz" (exit 1).
    let mut bytes = good;
    edit_trailer(&mut bytes, |t| t.major += 1);
    fs::write(&archive, &bytes).unwrap();
    let err = fails_with(&run(["info".as_ref(), archive.as_os_str()]), 1);
    assert!(err.contains("upgrade hexz"), "{err}");
}

#[test]
fn verify_refuses_what_the_directory_and_trailer_state_falsely() {
    let dir = scratch();
    let (archive, _, b) = build_two_files(dir.path(), "lz4");
    let good = fs::read(&archive).unwrap();
    let arc = archive.as_os_str();
    type Lie = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Lie)> = vec![
        (
            "chunk index holds",
            Box::new(|bytes| {
                edit_directory(bytes, |d| {
                    d.stats.chunk_count = 1 << 63;
                    d.chunk_tree.count = 1 << 63;
                })
            }),
        ),
        (
            "stats.unique_raw_bytes",
            Box::new(|bytes| edit_directory(bytes, |d| d.stats.unique_raw_bytes = 1 << 63)),
        ),
        (
            "stats.unique_chunk_count",
            Box::new(|bytes| {
                edit_directory(bytes, |d| {
                    let keep = (
                        d.stats.entry_count,
                        d.stats.chunk_count,
                        d.stats.logical_size,
                    );
                    d.stats = hexz_format::Stats {
                        entry_count: keep.0,
                        chunk_count: keep.1,
                        logical_size: keep.2,
                        ..Default::default()
                    };
                })
            }),
        ),
        (
            "flagged signed",
            Box::new(|bytes| edit_trailer(bytes, |t| t.flags |= hexz_format::layout::FLAG_SIGNED)),
        ),
    ];
    for (expected, lie) in cases {
        let mut bytes = good.clone();
        lie(&mut bytes);
        fs::write(&archive, &bytes).unwrap();
        // The data still reads: nothing a read uses is wrong.
        let out = run(["cat".as_ref(), arc, "b.bin".as_ref()]);
        ok(&out);
        assert!(out.stdout == b);
        for deep in [false, true] {
            let mut args = vec!["verify".as_ref(), arc];
            if deep {
                args.push("--deep".as_ref());
            }
            let err = fails_with(&run(&args), 3);
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let out = run(["verify".as_ref(), arc, "--json".as_ref()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false, "{expected}");
        assert_eq!(v["kind"], "corrupt", "{expected}");
    }
}
