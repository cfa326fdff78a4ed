//! Owners: recorded at build, listed by `ls -l`/`ls --json`, restored by
//! `extract` when it runs as root (unless `--no-same-owner`); directory ingest
//! options seen through the CLI.

use std::fs;
use std::os::unix::fs::{MetadataExt, lchown, symlink};
use std::path::Path;

use crate::support::{ok, run, scratch, stdout, write_recipe};

const OWNER: (u32, u32) = (4321, 8765);

/// Whether the tests run as root (they can then chown files to anyone).
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn owner_of(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

/// `data/` with a file, a folder and a link; as root, all three (and only they)
/// get [`OWNER`]. Returns the recipe.
fn owned_tree(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/owned.txt"), b"owned\n").unwrap();
    fs::write(data.join("mine.txt"), b"mine\n").unwrap();
    symlink("mine.txt", data.join("link")).unwrap();
    if running_as_root() {
        for name in ["sub", "sub/owned.txt", "link"] {
            lchown(data.join(name), Some(OWNER.0), Some(OWNER.1)).unwrap();
        }
    }
    write_recipe(
        dir,
        "inputs:\n  - path: data/\noutput: out/owned.hxz\ncompression: { codec: lz4 }\n",
    )
}

#[test]
fn owners_are_listed_and_restored_when_root() {
    let dir = scratch();
    let recipe = owned_tree(dir.path());
    ok(&run(["build".as_ref(), recipe.as_os_str(), "-q".as_ref()]));
    let archive = dir.path().join("out/owned.hxz");
    let data = dir.path().join("data");

    let out = run(["ls".as_ref(), archive.as_os_str(), "--json".as_ref()]);
    ok(&out);
    for line in stdout(&out).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = v["name"].as_str().unwrap();
        let (uid, gid) = owner_of(&data.join(name));
        assert_eq!(
            (v["uid"].as_u64(), v["gid"].as_u64()),
            (Some(uid.into()), Some(gid.into())),
            "{name}"
        );
    }
    let out = run(["ls".as_ref(), "-l".as_ref(), archive.as_os_str()]);
    ok(&out);
    let (uid, gid) = owner_of(&data.join("sub/owned.txt"));
    let want = format!("-0644 {:>11} ", format!("{uid}/{gid}"));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with(&want) && l.ends_with(" sub/owned.txt")),
        "{}",
        stdout(&out)
    );

    // Default: owners come back when running as root (else the files are ours).
    let restored = dir.path().join("restored");
    ok(&run([
        "extract".as_ref(),
        "-q".as_ref(),
        archive.as_os_str(),
        restored.as_os_str(),
    ]));
    for name in ["sub", "sub/owned.txt", "link", "mine.txt"] {
        assert_eq!(
            owner_of(&restored.join(name)),
            owner_of(&data.join(name)),
            "{name}"
        );
    }
    // --no-same-owner: everything belongs to whoever extracts.
    let mine = dir.path().join("mine");
    ok(&run([
        "extract".as_ref(),
        "-q".as_ref(),
        "--no-same-owner".as_ref(),
        archive.as_os_str(),
        mine.as_os_str(),
    ]));
    let me = owner_of(&dir.path().join("out"));
    for name in ["sub", "sub/owned.txt", "link", "mine.txt"] {
        assert_eq!(owner_of(&mine.join(name)).0, me.0, "{name}");
    }
    if running_as_root() {
        assert_eq!(owner_of(&restored.join("sub/owned.txt")), OWNER);
        assert_eq!(owner_of(&restored.join("link")), OWNER);
        assert_ne!(owner_of(&mine.join("sub/owned.txt")), OWNER);
    }
}

#[test]
fn dry_run_counts_what_the_filters_leave_out() {
    let dir = scratch();
    let data = dir.path().join("data");
    fs::create_dir_all(data.join(".git/objects")).unwrap();
    fs::write(data.join(".git/HEAD"), b"ref").unwrap();
    fs::write(data.join("keep.txt"), b"keep").unwrap();
    fs::write(data.join("drop.tmp"), b"drop").unwrap();
    symlink("keep.txt", data.join("link")).unwrap();
    let recipe = write_recipe(
        dir.path(),
        "inputs:\n  - path: data/\n    exclude: [\".git\", \"**/*.tmp\"]\n    symlinks: skip\n\
         output: out/f.hxz\n",
    );
    let out = run(["build".as_ref(), recipe.as_os_str(), "--dry-run".as_ref()]);
    ok(&out);
    assert!(
        stdout(&out).contains("         1 files, 0 dirs, 0 symlinks, 4 bytes, 3 excluded\n"),
        "{}",
        stdout(&out)
    );
    ok(&run(["build".as_ref(), recipe.as_os_str(), "-q".as_ref()]));
    let out = run(["ls".as_ref(), dir.path().join("out/f.hxz").as_os_str()]);
    ok(&out);
    assert_eq!(stdout(&out), "keep.txt\n");
}
