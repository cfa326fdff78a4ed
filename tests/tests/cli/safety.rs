//! Hostile archives must not make `extract` write outside the destination.
//!
//! Archives the builder would never produce are made two ways: with
//! `hexz_format::ArchiveWriter` directly (a symlink plus a file "inside" it), and
//! by patching bytes (an entry name the writer refuses, `../evil`, or an absolute
//! one), after which the integrity fields are recomputed so the reader accepts
//! the archive and the check under test is extract's own.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use hexz_format::layout::{BLOB_RAW, Directory, TRAILER_LEN, Trailer};
use hexz_format::{ArchiveWriter, EntryMeta, NoCompression, WriterOptions};

use crate::support::{assert_one_line_error, code, ok, run, scratch, stderr, stdout};

fn meta(mode: u32) -> EntryMeta {
    EntryMeta {
        mode,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        owner: None,
        columns: Vec::new(),
    }
}

const FILE: u32 = 0o100644;
const DIR: u32 = 0o040755;
const LINK: u32 = 0o120777;

/// Write an uncompressed archive built by `add` to `path`.
fn write_archive(path: &Path, add: impl FnOnce(&mut ArchiveWriter<Vec<u8>>)) {
    let options = WriterOptions::new(Arc::new(NoCompression));
    let mut w = ArchiveWriter::new(Vec::new(), options).unwrap();
    add(&mut w);
    let (bytes, _) = w.finish().unwrap();
    fs::write(path, bytes).unwrap();
}

/// Every path under `dir` (recursively, symlinks not followed).
fn contents(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = crate::support::walk(dir)
        .into_iter()
        .map(|n| n.name)
        .collect();
    out.sort();
    out
}

/// Run `hexz extract archive dest [extra]`; assert it failed with a one-line
/// `refusing to extract` error naming `entry`, and return the message.
#[track_caller]
fn refuses(archive: &Path, dest: &Path, extra: &[&str], entry: &str) -> String {
    let mut args: Vec<&OsStr> = vec![
        "extract".as_ref(),
        archive.as_os_str(),
        dest.as_os_str(),
        "-q".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let out = run(args);
    let err = stderr(&out);
    assert_ne!(code(&out), 0, "extract succeeded; stderr: {err}");
    assert_ne!(code(&out), 3, "the archive itself is valid: {err}");
    assert_one_line_error(&err);
    assert!(err.contains("refusing to extract"), "{err}");
    assert!(err.contains(&format!("`{entry}`")), "{err}");
    err
}

#[test]
fn symlink_then_file_through_it_cannot_escape() {
    let dir = scratch();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let target = outside.to_str().unwrap().to_string();

    // Both orders: link first (as a walk would list it) and file first.
    for (i, link_first) in [true, false].into_iter().enumerate() {
        let archive = dir.path().join(format!("evil-{i}.hxz"));
        write_archive(&archive, |w| {
            w.add_bytes("harmless.txt", b"ok\n", meta(FILE)).unwrap();
            if link_first {
                w.add_symlink("link", &target, meta(LINK)).unwrap();
                w.add_bytes("link/evil", b"pwned\n", meta(FILE)).unwrap();
            } else {
                w.add_bytes("link/evil", b"pwned\n", meta(FILE)).unwrap();
                w.add_symlink("link", &target, meta(LINK)).unwrap();
            }
        });
        let ls = stdout(&run(["ls".as_ref(), archive.as_os_str()]));
        assert!(ls.contains("link/evil"), "{ls}");

        let dest = dir.path().join(format!("dest-{i}"));
        refuses(&archive, &dest, &[], "link");
        assert!(
            contents(&outside).is_empty(),
            "wrote outside: {:?}",
            contents(&outside)
        );
        // Whatever was written stayed inside, and `link` is not a link to outside.
        if let Ok(t) = fs::read_link(dest.join("link")) {
            panic!("extract created link -> {}", t.display());
        }

        // --overwrite does not let the link replace the folder either.
        refuses(&archive, &dest, &["--overwrite"], "link");
        assert!(
            contents(&outside).is_empty(),
            "wrote outside: {:?}",
            contents(&outside)
        );
    }
}

#[test]
fn existing_symlink_in_dest_is_not_followed() {
    let dir = scratch();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let extract = |archive: &Path, dest: &Path, overwrite: bool| {
        let mut args: Vec<&OsStr> = vec![
            "extract".as_ref(),
            archive.as_os_str(),
            dest.as_os_str(),
            "-q".as_ref(),
        ];
        if overwrite {
            args.push("--overwrite".as_ref());
        }
        run(args)
    };

    // The archive has a folder `link` and a file in it; the destination already
    // holds `link -> outside` (say, from another archive).
    let with_dir = dir.path().join("with-dir.hxz");
    write_archive(&with_dir, |w| {
        w.add_dir("link", meta(DIR)).unwrap();
        w.add_bytes("link/evil", b"pwned\n", meta(FILE)).unwrap();
    });
    let dest = dir.path().join("dest");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("link")).unwrap();
    let out = extract(&with_dir, &dest, false);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert_one_line_error(&err);
    assert!(err.contains("already exists"), "{err}");
    assert!(
        contents(&outside).is_empty(),
        "wrote outside: {:?}",
        contents(&outside)
    );
    assert_eq!(fs::read_link(dest.join("link")).unwrap(), outside);
    // --overwrite replaces the link (not its target) with a real folder.
    ok(&extract(&with_dir, &dest, true));
    assert!(
        contents(&outside).is_empty(),
        "wrote outside: {:?}",
        contents(&outside)
    );
    assert!(fs::symlink_metadata(dest.join("link")).unwrap().is_dir());
    assert_eq!(fs::read(dest.join("link/evil")).unwrap(), b"pwned\n");

    // Without a folder entry, the existing link is a parent of `link/evil`: refused
    // even with --overwrite.
    let file_only = dir.path().join("file-only.hxz");
    write_archive(&file_only, |w| {
        w.add_bytes("link/evil", b"pwned\n", meta(FILE)).unwrap();
    });
    let dest = dir.path().join("dest2");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("link")).unwrap();
    for overwrite in [false, true] {
        refuses(
            &file_only,
            &dest,
            if overwrite { &["--overwrite"] } else { &[] },
            "link/evil",
        );
        assert!(
            contents(&outside).is_empty(),
            "wrote outside: {:?}",
            contents(&outside)
        );
        assert_eq!(fs::read_link(dest.join("link")).unwrap(), outside);
    }
}

/// Patch entry name `from` into `to` (same length) in the catalog of the
/// uncompressed archive `bytes`, then fix the catalog page's CRC32 and BLAKE3 in
/// the directory and the directory's CRC32 in the trailer.
fn patch_catalog_name(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let n = bytes.len();
    let trailer_at = n - TRAILER_LEN;
    let mut trailer =
        Trailer::decode(bytes[trailer_at..].try_into().unwrap(), trailer_at as u64).unwrap();
    let dir_at = trailer.directory_offset as usize;
    let dir_len = trailer.directory_len as usize;
    let mut dir = Directory::decode(&bytes[dir_at..dir_at + dir_len], dir_at as u64).unwrap();
    assert_eq!(
        dir.catalog_tree.depth, 1,
        "the catalog root should be its only leaf"
    );
    let page_ref = &mut dir.catalog_tree.root;
    assert_eq!(
        page_ref.flags & BLOB_RAW,
        BLOB_RAW,
        "codec none stores pages raw"
    );
    let start = page_ref.offset as usize;
    let page = &mut bytes[start..start + page_ref.stored_len as usize];
    let hits: Vec<usize> = page
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from.as_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "`{from}` should appear once in the catalog page"
    );
    page[hits[0]..hits[0] + to.len()].copy_from_slice(to.as_bytes());
    page_ref.crc = crc32fast::hash(page);
    page_ref.hash = *blake3::hash(page).as_bytes();
    let encoded = dir.encode();
    assert_eq!(encoded.len(), dir_len);
    bytes[dir_at..dir_at + dir_len].copy_from_slice(&encoded);
    trailer.directory_crc = crc32fast::hash(&encoded);
    bytes[trailer_at..].copy_from_slice(&trailer.encode());
}

#[test]
fn dot_dot_and_absolute_names_are_refused() {
    let dir = scratch();
    let base = dir.path().join("base");
    let dest = base.join("dest");
    fs::create_dir_all(&dest).unwrap();
    let abs_evil = base.join("abs-evil");
    let abs_name = abs_evil.to_str().unwrap().to_string();
    let placeholder = "x".repeat(abs_name.len());

    for (from, to) in [
        ("zz/evil", "../evil"),
        (placeholder.as_str(), abs_name.as_str()),
    ] {
        let archive = dir.path().join("hostile.hxz");
        write_archive(&archive, |w| {
            w.add_bytes("a-first.txt", b"fine\n", meta(FILE)).unwrap();
            w.add_bytes(from, b"pwned\n", meta(FILE)).unwrap();
        });
        let mut bytes = fs::read(&archive).unwrap();
        patch_catalog_name(&mut bytes, from, to);
        fs::write(&archive, &bytes).unwrap();

        // The reader accepts the patched archive: the check is extract's.
        let ls = run(["ls".as_ref(), archive.as_os_str()]);
        ok(&ls);
        assert_eq!(stdout(&ls), format!("a-first.txt\n{to}\n"));

        for extra in [&[][..], &["--overwrite"][..]] {
            refuses(&archive, &dest, extra, to);
            assert!(!base.join("evil").exists(), "../evil was written");
            assert!(!dir.path().join("evil").exists());
            assert!(!abs_evil.exists(), "absolute name was written");
            // Nothing but what the archive may put in dest: files are written in
            // batches, so the entry before the hostile one may or may not be there.
            let found = contents(&base);
            assert!(
                found.iter().all(|p| p == "dest" || p == "dest/a-first.txt"),
                "{found:?}"
            );
            let _ = fs::remove_file(dest.join("a-first.txt"));
        }
    }
}
