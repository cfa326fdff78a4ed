//! No verb destroys a file it did not write (`hexz_format::destination`).
//!
//! Before: an output inside an input folder replaced that file (and left it out
//! of the archive), and `build`, `squash`, `sign --detached --out`, `keys`,
//! `volume read -o` and a local `publish` replaced any file at their output —
//! the recipe itself, an input, text, a read-only file — without a word.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{fails_with, ok, run, scratch, stderr, write_recipe};

/// A recipe folder: `data/` (a.txt, sub/b.txt), `keep.txt` next to it, and a
/// recipe with the input `data/`, then `extra` (more of the inputs list), then
/// `output`.
struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    recipe: PathBuf,
}

impl Setup {
    fn new(output: &str, extra: &str) -> Self {
        let dir = scratch();
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("data/sub")).unwrap();
        fs::write(root.join("data/a.txt"), b"alpha").unwrap();
        fs::write(root.join("data/sub/b.txt"), b"beta").unwrap();
        fs::write(root.join("keep.txt"), b"precious").unwrap();
        let recipe = write_recipe(
            &root,
            &format!("inputs:\n  - path: data/\n{extra}output: {output}\n"),
        );
        Self {
            _dir: dir,
            root,
            recipe,
        }
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn build(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["build", "-q", self.recipe.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(args)
    }
}

fn read_only(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o444)).unwrap();
}

fn entries(archive: &Path) -> Vec<String> {
    let out = run(["ls", archive.to_str().unwrap()]);
    ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn build_refuses_an_output_inside_an_input_folder_unless_excluded() {
    let s = Setup::new("data/sub/b.txt", "");
    // The output is an input file: refused, --force or not; nothing changes.
    for extra in [&[][..], &["--force"]] {
        let err = fails_with(&s.build(extra), 1);
        assert!(err.contains("inside an input folder"), "{err}");
        assert_eq!(fs::read(s.at("data/sub/b.txt")).unwrap(), b"beta");
    }
    // A new file inside the folder: refused as well (it would be left out of the
    // archive, and replaced by the next build).
    let s = Setup::new("data/out.hxz", "");
    let err = fails_with(&s.build(&[]), 1);
    assert!(err.contains("inside an input folder"), "{err}");
    assert!(!s.at("data/out.hxz").exists());
    // `--dry-run` says so too.
    let err = fails_with(&run(["build", "--dry-run", s.recipe.to_str().unwrap()]), 1);
    assert!(err.contains("inside an input folder"), "{err}");
    // Left out by an exclude glob (of the file or of a folder above it): fine.
    for exclude in ["'*.hxz'", "'out'"] {
        let output = if exclude == "'out'" {
            "data/out/x.hxz"
        } else {
            "data/out.hxz"
        };
        let s = Setup::new(output, &format!("    exclude: [{exclude}]\n"));
        ok(&s.build(&[]));
        ok(&s.build(&[])); // again, over its own archive
        assert_eq!(entries(&s.at(output)), ["a.txt", "sub", "sub/b.txt"]);
    }
}

#[test]
fn build_never_replaces_the_recipe_or_an_input_file() {
    let s = Setup::new("recipe.yaml", "");
    let before = fs::read(&s.recipe).unwrap();
    for extra in [&[][..], &["--force"]] {
        let err = fails_with(&s.build(extra), 1);
        assert!(err.contains("is the recipe"), "{err}");
        assert_eq!(fs::read(&s.recipe).unwrap(), before);
    }
    let s = Setup::new("keep.txt", "  - path: keep.txt\n");
    for extra in [&[][..], &["--force"]] {
        let err = fails_with(&s.build(extra), 1);
        assert!(err.contains("is an input of the recipe"), "{err}");
        assert_eq!(fs::read(s.at("keep.txt")).unwrap(), b"precious");
    }
}

#[test]
fn build_replaces_only_archives_unless_forced_and_never_read_only_files() {
    let s = Setup::new("keep.txt", "");
    let err = fails_with(&s.build(&[]), 1);
    assert!(
        err.contains("not a hexz archive") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(fs::read(s.at("keep.txt")).unwrap(), b"precious");
    // --force replaces it.
    ok(&s.build(&["--force"]));
    assert_eq!(entries(&s.at("keep.txt")), ["a.txt", "sub", "sub/b.txt"]);
    // Now an archive: rebuilt over without --force.
    ok(&s.build(&[]));
    // Read-only: not replaced, even forced; the message says so.
    read_only(&s.at("keep.txt"));
    let before = fs::read(s.at("keep.txt")).unwrap();
    for extra in [&[][..], &["--force"]] {
        let err = fails_with(&s.build(extra), 1);
        assert!(err.contains("read-only"), "{err}");
        assert_eq!(fs::read(s.at("keep.txt")).unwrap(), before);
    }
    // A symbolic link at the output: only with --force, and the link is
    // replaced, not the file it names.
    let s = Setup::new("link.hxz", "");
    std::os::unix::fs::symlink(s.at("keep.txt"), s.at("link.hxz")).unwrap();
    let err = fails_with(&s.build(&[]), 1);
    assert!(err.contains("symbolic link"), "{err}");
    ok(&s.build(&["--force"]));
    assert!(!fs::symlink_metadata(s.at("link.hxz")).unwrap().is_symlink());
    assert_eq!(fs::read(s.at("keep.txt")).unwrap(), b"precious");
}

#[test]
fn a_detached_signature_is_checked_before_building() {
    let s = Setup::new("out.hxz", "");
    let key = s.at("sign.key");
    ok(&run(["keygen", "--out", key.to_str().unwrap()]));
    write_recipe(
        &s.root,
        &format!(
            "inputs:\n  - path: data/\noutput: out.hxz\nsign: {{ key: '{}', detached: true }}\n",
            key.display()
        ),
    );
    fs::write(s.at("out.hxz.sig"), b"not a signature").unwrap();
    let err = fails_with(&s.build(&[]), 1);
    assert!(err.contains("not a hexz signature"), "{err}");
    assert!(!s.at("out.hxz").exists(), "nothing is built first");
    assert_eq!(fs::read(s.at("out.hxz.sig")).unwrap(), b"not a signature");
    ok(&s.build(&["--force"]));
    ok(&s.build(&[])); // its own signature is replaced
    // `hexz sign --detached --out`: the same rule (it used to write through
    // whatever was there).
    let archive = s.at("out.hxz");
    let sign = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "sign",
            archive.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--detached",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        run(args)
    };
    let keep = s.at("keep.txt");
    let err = fails_with(&sign(keep.to_str().unwrap(), &[]), 1);
    assert!(err.contains("not a hexz signature"), "{err}");
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    read_only(&keep);
    let err = fails_with(&sign(keep.to_str().unwrap(), &["--force"]), 1);
    assert!(err.contains("read-only"), "{err}");
    let fresh = s.at("fresh.sig");
    ok(&sign(fresh.to_str().unwrap(), &[]));
    ok(&sign(fresh.to_str().unwrap(), &[]));
}

#[test]
fn sign_and_keys_leave_read_only_archives_alone_and_follow_links() {
    let s = Setup::new("out.hxz", "");
    let key = s.at("sign.key");
    ok(&run(["keygen", "--out", key.to_str().unwrap()]));
    let data_key = s.at("data.key");
    ok(&run([
        "keygen",
        "--type",
        "raw",
        "--out",
        data_key.to_str().unwrap(),
    ]));
    write_recipe(
        &s.root,
        &format!(
            "inputs:\n  - path: data/\noutput: out.hxz\nencrypt: {{ key_file: '{}' }}\n",
            data_key.display()
        ),
    );
    ok(&s.build(&[]));
    let archive = s.at("out.hxz");
    // Through a symbolic link: the archive it names is rewritten, the link stays.
    let link = s.at("link.hxz");
    std::os::unix::fs::symlink(&archive, &link).unwrap();
    ok(&run([
        "sign",
        link.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--key-file",
        data_key.to_str().unwrap(),
    ]));
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    let info = run([
        "info",
        archive.to_str().unwrap(),
        "--key-file",
        data_key.to_str().unwrap(),
    ]);
    ok(&info);
    assert!(String::from_utf8_lossy(&info.stdout).contains("signed by"));
    // Read-only: neither `sign` nor `keys add` rewrites it.
    read_only(&archive);
    let before = fs::read(&archive).unwrap();
    let err = fails_with(
        &run([
            "sign",
            archive.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--key-file",
            data_key.to_str().unwrap(),
        ]),
        1,
    );
    assert!(err.contains("read-only"), "{err}");
    let other_key = s.at("other.key");
    ok(&run([
        "keygen",
        "--type",
        "raw",
        "--out",
        other_key.to_str().unwrap(),
    ]));
    let err = fails_with(
        &run([
            "keys",
            "add",
            archive.to_str().unwrap(),
            "--new-key-file",
            other_key.to_str().unwrap(),
            "--key-file",
            data_key.to_str().unwrap(),
        ]),
        1,
    );
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(fs::read(&archive).unwrap(), before);
}

#[test]
fn squash_refuses_its_own_input_and_other_files() {
    let s = Setup::new("v1.hxz", "");
    ok(&s.build(&[]));
    fs::write(s.at("data/a.txt"), b"alpha, changed").unwrap();
    let v1 = s.at("v1.hxz");
    write_recipe(
        &s.root,
        &format!(
            "inputs:\n  - path: data/\noutput: v2.hxz\nparent: '{}'\n",
            v1.display()
        ),
    );
    ok(&s.build(&[]));
    let v2 = s.at("v2.hxz");
    let squash = |out: &Path, extra: &[&str]| {
        let mut args = vec!["squash", v2.to_str().unwrap(), out.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(args)
    };
    for (target, what) in [(&v2, "the archive being squashed"), (&v1, "a parent")] {
        let before = fs::read(target).unwrap();
        let err = fails_with(&squash(target, &["--force"]), 1);
        assert!(err.contains(what), "{err}");
        assert_eq!(&fs::read(target).unwrap(), &before);
    }
    let keep = s.at("keep.txt");
    let err = fails_with(&squash(&keep, &[]), 1);
    assert!(err.contains("not a hexz archive"), "{err}");
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    ok(&squash(&keep, &["--force"]));
    ok(&squash(&keep, &[])); // now a hexz archive
}

#[test]
fn volume_read_to_a_file_is_atomic_and_does_not_clobber() {
    let s = Setup::new("out.hxz", "");
    let vol = s.at("vol");
    ok(&run([
        "volume",
        "create",
        vol.to_str().unwrap(),
        "--size",
        "4096",
    ]));
    let data = s.at("data/a.txt");
    ok(&run([
        "volume",
        "write",
        vol.to_str().unwrap(),
        data.to_str().unwrap(),
        "--offset",
        "10",
    ]));
    let read = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "volume",
            "read",
            vol.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(args)
    };
    let img = s.at("v.img");
    ok(&read(&img, &[]));
    assert_eq!(fs::read(&img).unwrap().len(), 4096);
    assert_eq!(&fs::read(&img).unwrap()[10..15], b"alpha");
    // It exists now: only --force replaces it.
    let keep = s.at("keep.txt");
    let err = fails_with(&read(&keep, &[]), 1);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    ok(&read(&img, &["--force"]));
    read_only(&img);
    let err = fails_with(&read(&img, &["--force"]), 1);
    assert!(err.contains("read-only"), "{err}");
    // A range past the end fails and leaves no file (it used to leave an empty one).
    let partial = s.at("partial.img");
    let out = run([
        "volume",
        "read",
        vol.to_str().unwrap(),
        "--offset",
        "4000",
        "--length",
        "200",
        "-o",
        partial.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!partial.exists());
}

#[test]
fn a_local_publish_replaces_only_archives() {
    let s = Setup::new("out.hxz", "");
    ok(&s.build(&[]));
    let archive = s.at("out.hxz");
    let keep = s.at("keep.txt");
    let publish = |dest: &Path, extra: &[&str]| {
        let mut args = vec![
            "publish",
            "-q",
            archive.to_str().unwrap(),
            dest.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(args)
    };
    let err = fails_with(&publish(&keep, &[]), 1);
    assert!(err.contains("not a hexz archive"), "{err}");
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    ok(&publish(&keep, &["--force"]));
    assert_eq!(fs::read(&keep).unwrap(), fs::read(&archive).unwrap());
}

#[test]
fn extract_overwrite_replaces_links_not_their_targets_and_says_so_for_read_only_files() {
    let s = Setup::new("out.hxz", "");
    ok(&s.build(&[]));
    let archive = s.at("out.hxz");
    let dest = s.at("dest");
    fs::create_dir_all(dest.join("sub")).unwrap();
    // A link where a file goes, pointing outside the destination.
    let outside = s.at("keep.txt");
    std::os::unix::fs::symlink(&outside, dest.join("a.txt")).unwrap();
    // A read-only file where another goes.
    fs::write(dest.join("sub/b.txt"), b"old").unwrap();
    read_only(&dest.join("sub/b.txt"));
    let extract = |extra: &[&str]| {
        let mut args = vec![
            "extract",
            "-q",
            archive.to_str().unwrap(),
            dest.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(args)
    };
    let err = fails_with(&extract(&[]), 1);
    assert!(err.contains("--overwrite"), "{err}");
    let out = extract(&["--overwrite"]);
    ok(&out);
    assert_eq!(
        fs::read(&outside).unwrap(),
        b"precious",
        "the link was followed"
    );
    assert!(
        !fs::symlink_metadata(dest.join("a.txt"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(fs::read(dest.join("sub/b.txt")).unwrap(), b"beta");
    // Replacing the read-only file was said, even with -q.
    let err = stderr(&out);
    assert!(
        err.contains("replaced 1 read-only file") && err.contains("sub/b.txt"),
        "{err}"
    );
}
