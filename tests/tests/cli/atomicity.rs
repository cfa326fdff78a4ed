//! A build that fails leaves nothing at the output path (no partial archive, no
//! `.tmp`), and an archive already there stays as it was.
//!
//! Tests may run as root, where `chmod 000` does not stop reads, so the failing
//! inputs are ones that fail for everybody: a file name that is not UTF-8 (fails
//! during the walk) and `/proc/self/mem` (a "regular file" whose first read
//! fails with EIO, after the archive has been started and other inputs written).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::kill_while_writing;
use crate::support::{
    Rng, assert_one_line_error, code, fails_with, hexz, hexz_bin, ok, recipe_text, run, scratch,
    stderr, stdout, tmp_leftovers, write_recipe,
};

fn small_tree(data: &Path) {
    for i in 0..50 {
        let path = data.join(format!("d{}/f{i}.txt", i % 5));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("file {i}\n").repeat(100 + i)).unwrap();
    }
}

#[track_caller]
fn assert_no_output(out_dir: &Path, archive: &Path) {
    assert!(
        !archive.exists(),
        "{} exists after a failed build",
        archive.display()
    );
    let left = tmp_leftovers(out_dir);
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn non_utf8_file_name_fails_the_build_and_names_the_path() {
    let dir = scratch();
    let data = dir.path().join("data");
    small_tree(&data);
    let bad = data
        .join("d2")
        .join(OsStr::from_bytes(b"bad-\xff\xfe-name.txt"));
    fs::write(&bad, b"unreadable name").unwrap();
    let recipe = write_recipe(dir.path(), &recipe_text(&data, "a.hxz", "zstd"));
    let out_dir = dir.path().join("out");
    let archive = out_dir.join("a.hxz");

    let out = run(["build".as_ref(), recipe.as_os_str(), "--quiet".as_ref()]);
    assert_ne!(code(&out), 0, "build succeeded with a non-UTF-8 name");
    let err = stderr(&out);
    assert_one_line_error(&err);
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(
        err.contains(&data.join("d2").display().to_string()),
        "{err}"
    );
    assert!(err.contains("-name.txt"), "{err}");
    assert_no_output(&out_dir, &archive);

    // --dry-run reports it the same way.
    let out = run(["build".as_ref(), recipe.as_os_str(), "--dry-run".as_ref()]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));
    assert_no_output(&out_dir, &archive);
}

/// A scratch folder with `data/` (more than one 8 MiB writer batch, so the
/// archive is well under way when the bad input comes), a good recipe
/// (`good/recipe.yaml`) and a bad one (`bad/recipe.yaml`: the same data, then
/// `/proc/self/mem`), both writing `good/out/a.hxz`. `None` without `/proc`.
fn failing_setup() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    if !Path::new("/proc/self/mem").exists() {
        eprintln!("skipped: no /proc/self/mem");
        return None;
    }
    let dir = scratch();
    let data = dir.path().join("data");
    small_tree(&data);
    fs::write(data.join("zz-big.bin"), Rng::new(7).bytes(10 << 20)).unwrap();
    let good = write_recipe(
        &dir.path().join("good"),
        &recipe_text(&data, "a.hxz", "zstd"),
    );
    let bad_text = format!(
        "inputs:\n  - path: '{}'\n  - path: /proc/self/mem\noutput: ../good/out/a.hxz\n",
        data.display()
    );
    let bad = write_recipe(&dir.path().join("bad"), &bad_text);
    Some((dir, good, bad))
}

#[test]
fn read_error_midway_leaves_no_archive_and_keeps_the_old_one() {
    let Some((dir, good, bad)) = failing_setup() else {
        return;
    };
    let archive = dir.path().join("good/out/a.hxz");

    // No archive yet: the failed build must not create one.
    for _ in 0..2 {
        let out = run(["build".as_ref(), bad.as_os_str(), "--quiet".as_ref()]);
        let err = fails_with(&out, 1);
        assert!(err.contains("/proc/self/mem"), "{err}");
        assert_eq!(err.matches("(os error 5)").count(), 1, "{err}");
        assert!(!archive.exists(), "archive exists after a failed build");
    }

    // With a good archive in place, a failed rebuild leaves it untouched.
    ok(&run([
        "build".as_ref(),
        good.as_os_str(),
        "--quiet".as_ref(),
    ]));
    let before = fs::read(&archive).unwrap();
    for _ in 0..2 {
        let out = run(["build".as_ref(), bad.as_os_str(), "--quiet".as_ref()]);
        fails_with(&out, 1);
        assert!(fs::read(&archive).unwrap() == before, "old archive changed");
    }
    ok(&run(["verify".as_ref(), archive.as_os_str()]));
}

/// A build that fails after batches are in flight leaves neither the archive nor
/// its temporary file: dropping the writer joins its worker, which removes it.
#[test]
fn read_error_midway_leaves_no_temporary_file() {
    let Some((dir, _, bad)) = failing_setup() else {
        return;
    };
    let out_dir = dir.path().join("good/out");
    let archive = out_dir.join("a.hxz");
    for _ in 0..3 {
        let out = run(["build".as_ref(), bad.as_os_str(), "--quiet".as_ref()]);
        fails_with(&out, 1);
        assert_no_output(&out_dir, &archive);
    }
}

#[test]
fn special_files_are_skipped_not_read() {
    let dir = scratch();
    let data = dir.path().join("data");
    small_tree(&data);
    let fifo = data.join("d1/a-fifo");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo unavailable");
        return;
    }
    let recipe = write_recipe(dir.path(), &recipe_text(&data, "a.hxz", "zstd"));
    // A FIFO must not block the build (nobody ever writes to it).
    let dry = hexz()
        .args(["build".as_ref(), recipe.as_os_str(), "--dry-run".as_ref()])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    ok(&dry);
    assert!(
        stdout(&dry).contains("1 special files skipped"),
        "{}",
        stdout(&dry)
    );
    let out = hexz()
        .args(["build".as_ref(), recipe.as_os_str(), "--quiet".as_ref()])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    ok(&out);
    let archive = dir.path().join("out/a.hxz");
    let ls = stdout(&run(["ls".as_ref(), archive.as_os_str()]));
    assert!(!ls.contains("a-fifo"), "{ls}");
    assert_eq!(ls.lines().count(), 55);
}

/// A build killed (SIGKILL) while it writes its archive leaves nothing in the
/// output folder — no partial archive, no temporary file: the archive has no
/// name until it is complete (`PendingFile`, `O_TMPFILE`). Before, the killed
/// build left `.a.hxz.XXXXXX.tmp` there.
#[test]
fn a_build_killed_while_writing_leaves_nothing_in_the_output_folder() {
    if !Path::new("/proc/self/fd").exists() {
        eprintln!("skipped: no /proc");
        return;
    }
    let dir = scratch();
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let mut rng = Rng::new(41);
    for i in 0..4 {
        fs::write(data.join(format!("r{i}.bin")), rng.bytes(8 << 20)).unwrap();
    }
    // zstd level 19 on random bytes: seconds of work after the archive is opened.
    let recipe = write_recipe(
        dir.path(),
        &format!(
            "inputs:\n  - path: '{}'\noutput: out/a.hxz\ncompression: {{ codec: zstd, level: 19 }}\n",
            data.display()
        ),
    );
    let out_dir = dir.path().join("out");
    let child = std::process::Command::new(hexz_bin())
        .args(["build".as_ref(), recipe.as_os_str(), "--quiet".as_ref()])
        .spawn()
        .unwrap();
    let left = kill_while_writing(child, &out_dir, "the build");
    assert!(left.is_empty(), "left behind by the killed build: {left:?}");
}
