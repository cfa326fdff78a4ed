//! Shared helpers: locating the `hexz` binary, generating input trees, walking
//! and comparing trees, and the shared fixture (one big tree, built once).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::sync::OnceLock;

use assert_cmd::Command;
use filetime::FileTime;
use serde_json::Value;

// ---------------------------------------------------------------------------
// The binary under test
// ---------------------------------------------------------------------------

/// Path of the `hexz` binary under test.
///
/// `hexz` is a binary of the `hexz-cli` package, and Cargo only gives an
/// integration test `CARGO_BIN_EXE_<name>` (and so `assert_cmd`'s `cargo_bin`)
/// for binaries of its *own* package. So, once per test process:
///
/// 1. if `HEXZ_BIN` is set, that file is used as is (e.g. a release build);
/// 2. otherwise `cargo build -p hexz-cli --bin hexz` runs with the profile and
///    target folder of this test binary (derived from its own path,
///    `<target>/<profile>/deps/cli-<hash>`), and the binary is taken from
///    `<target>/<profile>/hexz`. When the binary is up to date this is a no-op
///    of a fraction of a second, and it means the tests never run a stale
///    binary after a library change.
pub fn hexz_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(locate_or_build)
}

fn locate_or_build() -> PathBuf {
    if let Some(bin) = std::env::var_os("HEXZ_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "HEXZ_BIN={} is not a file", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target folder");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => panic!("cannot tell the profile from {}", exe.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let status = StdCommand::new(cargo)
        .args(["build", "--quiet", "-p", "hexz-cli", "--bin", "hexz"])
        .args(["--profile", &profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("run cargo build -p hexz-cli");
    assert!(status.success(), "cargo build -p hexz-cli failed");
    let bin = profile_dir.join("hexz");
    assert!(
        bin.is_file(),
        "{} missing after cargo build; set HEXZ_BIN to the binary",
        bin.display()
    );
    bin
}

/// A `hexz` command (stdin, stdout and stderr are not terminals).
pub fn hexz() -> Command {
    Command::new(hexz_bin())
}

/// Run `hexz args...` and return its output (never panics on failure).
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    hexz().args(args).output().expect("spawn hexz")
}

/// Exit code of a finished command (`-1` if killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Assert that `out` succeeded; show its stderr otherwise.
#[track_caller]
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "hexz failed with {:?}: {}",
        out.status.code(),
        stderr(out)
    );
}

/// Assert `out` failed with exit code `expected` and the one-line `hexz: `
/// error format; return the message.
#[track_caller]
pub fn fails_with(out: &Output, expected: i32) -> String {
    let err = stderr(out);
    assert_eq!(
        code(out),
        expected,
        "expected exit {expected}; stderr: {err}; stdout: {}",
        stdout(out)
    );
    assert_one_line_error(&err);
    err
}

/// Errors are exactly one line on stderr, starting with `hexz: `.
#[track_caller]
pub fn assert_one_line_error(err: &str) {
    assert!(
        err.starts_with("hexz: "),
        "error must start with `hexz: `: {err:?}"
    );
    assert!(
        err.ends_with('\n'),
        "error must end with a newline: {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "error must be one line: {err:?}");
}

/// Parse JSON output.
#[track_caller]
pub fn json(out: &Output) -> Value {
    ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {}", stdout(out));
    })
}

// ---------------------------------------------------------------------------
// Scratch folders
// ---------------------------------------------------------------------------

/// Cargo's scratch folder for integration tests (`target/tmp`).
pub fn target_tmp() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(&dir).expect("create CARGO_TARGET_TMPDIR");
    dir
}

/// A fresh folder, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hexz-cli-")
        .tempdir_in(target_tmp())
        .expect("create a scratch folder")
}

/// Write `recipe.yaml` in `dir` and return its path.
pub fn write_recipe(dir: &Path, text: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("recipe folder");
    let path = dir.join("recipe.yaml");
    fs::write(&path, text).expect("write recipe");
    path
}

/// A recipe archiving `input` (absolute) into `out/<name>` next to the recipe.
pub fn recipe_text(input: &Path, name: &str, codec: &str) -> String {
    let compression = match codec {
        "zstd" => "{ codec: zstd, level: 3 }".to_string(),
        other => format!("{{ codec: {other} }}"),
    };
    format!(
        "inputs:\n  - path: '{}'\noutput: out/{name}\n\
         chunking: {{ min: 4KiB, avg: 16KiB, max: 64KiB }}\n\
         compression: {compression}\n",
        input.display()
    )
}

/// Files in `dir` whose name ends in `.tmp` (leftovers of an aborted build).
pub fn tmp_leftovers(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Deterministic pseudo-random data
// ---------------------------------------------------------------------------

/// xorshift64*: fast, deterministic, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Text-like bytes: words from a small vocabulary, in lines.
    pub fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "the",
            "archive",
            "chunk",
            "stream",
            "entry",
            "catalog",
            "index",
            "page",
            "hash",
            "root",
            "level",
            "zstd",
            "data",
            "file",
            "tree",
            "of",
            "and",
            "to",
            "a",
            "in",
            "2026-01-01T00:00:00Z",
            "INFO",
            "WARN",
            "request",
            "id=",
            "bytes",
            "ok",
        ];
        let mut out = Vec::with_capacity(len + 32);
        let mut line = 0u64;
        while out.len() < len {
            out.extend_from_slice(format!("{line:08} ").as_bytes());
            let words = 4 + self.below(12);
            for _ in 0..words {
                out.extend_from_slice(WORDS[self.below(WORDS.len() as u64) as usize].as_bytes());
                out.push(b' ');
            }
            out.push(b'\n');
            line += 1;
        }
        out.truncate(len);
        out
    }
}

// ---------------------------------------------------------------------------
// The generated tree
// ---------------------------------------------------------------------------

/// Small files in the generated tree (10 × 10 folders × 20 files).
pub const SMALL_FILES: usize = 2000;
/// Size of the large random file (and of its duplicate).
pub const RANDOM_LEN: usize = 3 << 20;
/// Size of the large text-like file.
pub const TEXT_LEN: usize = 3 << 20;
/// Size of the sparse image.
pub const SPARSE_LEN: usize = 4 << 20;
/// Where the data of the sparse image starts, and how long it is.
pub const SPARSE_DATA: (usize, usize) = (2 << 20, 8 << 10);

/// Entry names in the generated tree that tests look at.
pub mod names {
    pub const RANDOM: &str = "big/random.bin";
    pub const RANDOM_COPY: &str = "big/random copy.bin";
    pub const TEXT: &str = "big/text.log";
    pub const SPARSE: &str = "big/sparse.img";
    pub const EMPTY: &str = "empty.txt";
    pub const EMPTY_DIR: &str = "empty dir";
    pub const DEEP_EMPTY_DIR: &str = "nested/empty/deeper";
    pub const LINK_REL: &str = "links/relative";
    pub const LINK_ABS: &str = "links/absolute";
    pub const LINK_DANGLING: &str = "links/dangling";
    pub const LINK_DIR: &str = "links/to-dir";
    pub const SMALL_SAMPLE: &str = "small/g3/h7/file-0742.txt";
    pub const UNICODE: &[&str] = &[
        "names/with space.txt",
        "names/naïve café.md",
        "names/日本語/ファイル.txt",
        "names/emoji 🦀.rs",
        "names/-leading-dash",
        "names/quote'\"s",
        "names/back\\slash",
        "names/tab\there",
        "names/#hash%percent&amp;",
        "names/Ωmega ∑ sum",
    ];
}

fn write(path: &Path, data: &[u8]) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create parent");
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Generate the test tree under `root` (which must not exist yet).
///
/// Contents: [`SMALL_FILES`] small files in nested folders (a few empty), a
/// large random file and an exact copy (dedup), a large text-like file, a
/// sparse image (zeros with a little data in the middle), more duplicates,
/// empty files and folders, relative / absolute / dangling / folder symlinks,
/// unusual UTF-8 names, various modes, and deterministic varied mtimes
/// (including one before 1970 and one in 2100).
pub fn make_tree(root: &Path) {
    let mut rng = Rng::new(42);
    fs::create_dir_all(root).expect("create tree root");

    for k in 0..SMALL_FILES {
        let (g, h) = (k / 200, (k / 20) % 10);
        let path = root.join(format!("small/g{g}/h{h}/file-{k:04}.txt"));
        let data = if k % 97 == 0 {
            Vec::new()
        } else {
            let mut d = format!("small file {k}\n").into_bytes();
            let extra = (k * 37) % 700;
            d.extend(rng.text(extra));
            d
        };
        write(&path, &data);
    }

    let random = rng.bytes(RANDOM_LEN);
    write(&root.join(names::RANDOM), &random);
    write(&root.join(names::RANDOM_COPY), &random);
    write(&root.join(names::TEXT), &rng.text(TEXT_LEN));
    let mut sparse = vec![0u8; SPARSE_LEN];
    let (at, len) = SPARSE_DATA;
    sparse[at..at + len].copy_from_slice(&rng.bytes(len));
    write(&root.join(names::SPARSE), &sparse);

    let dup = rng.text(40 << 10);
    for name in ["dups/a.txt", "dups/b.txt", "dups/nested/c.txt"] {
        write(&root.join(name), &dup);
    }

    write(&root.join(names::EMPTY), b"");
    write(&root.join("nested/empty.bin"), b"");
    fs::create_dir_all(root.join(names::EMPTY_DIR)).expect("empty dir");
    fs::create_dir_all(root.join(names::DEEP_EMPTY_DIR)).expect("deep empty dir");

    fs::create_dir_all(root.join("links")).expect("links dir");
    symlink("../big/text.log", root.join(names::LINK_REL)).expect("relative link");
    symlink(root.join(names::EMPTY), root.join(names::LINK_ABS)).expect("absolute link");
    symlink("no/such/target", root.join(names::LINK_DANGLING)).expect("dangling link");
    symlink("../small", root.join(names::LINK_DIR)).expect("folder link");

    for (i, name) in names::UNICODE.iter().enumerate() {
        write(
            &root.join(name),
            format!("unicode {i}: {name}\n").as_bytes(),
        );
    }

    write(&root.join("modes/script.sh"), b"#!/bin/sh\necho hi\n");
    write(&root.join("modes/secret"), b"s3cr3t\n");
    write(&root.join("modes/readonly"), b"read only\n");
    write(&root.join("modes/private/inner.txt"), b"inner\n");
    for (name, mode) in [
        ("modes/script.sh", 0o755),
        ("modes/secret", 0o600),
        ("modes/readonly", 0o444),
        ("modes/private", 0o700),
    ] {
        fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).expect("chmod");
    }

    write(&root.join("mtimes/1969.txt"), b"before the epoch\n");
    write(&root.join("mtimes/2100.txt"), b"far future\n");

    // Deterministic mtimes for everything, children before parents.
    let mut all = walk(root);
    all.reverse();
    for node in &all {
        let t = match node.name.as_str() {
            "mtimes/1969.txt" => FileTime::from_unix_time(-1_000_000, 0),
            "mtimes/2100.txt" => FileTime::from_unix_time(4_102_444_800, 0),
            _ => FileTime::from_unix_time(
                1_500_000_000 + rng.below(200_000_000) as i64,
                rng.below(1_000_000_000) as u32,
            ),
        };
        if node.kind == Kind::Symlink {
            filetime::set_symlink_file_times(&node.path, t, t).expect("symlink mtime");
        } else {
            filetime::set_file_mtime(&node.path, t).expect("mtime");
        }
    }
}

// ---------------------------------------------------------------------------
// Walking and comparing trees
// ---------------------------------------------------------------------------

/// Kind of a node, as `hexz ls --json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
        }
    }
}

/// One node of a walked tree.
#[derive(Debug, Clone)]
pub struct Node {
    /// `/`-separated path relative to the root.
    pub name: String,
    pub path: PathBuf,
    pub kind: Kind,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
    pub target: Option<String>,
    /// Numeric owner.
    pub uid: u32,
    pub gid: u32,
}

/// Walk `root` the way `hexz build` documents it: depth first, parents before
/// children, each folder's entries sorted by file name (bytes), symlinks not
/// followed, the root itself excluded. Written independently of the
/// implementation (no walkdir) so the test checks the order, not a copy of it.
pub fn walk(root: &Path) -> Vec<Node> {
    fn visit(dir: &Path, prefix: &str, out: &mut Vec<Node>) {
        let mut items: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry"))
            .collect();
        items.sort_by_key(|e| e.file_name());
        for item in items {
            let path = item.path();
            let file_name = item.file_name();
            let file_name = file_name.to_str().expect("walked names are UTF-8");
            let name = if prefix.is_empty() {
                file_name.to_string()
            } else {
                format!("{prefix}/{file_name}")
            };
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let t = meta.file_type();
            let kind = if t.is_symlink() {
                Kind::Symlink
            } else if t.is_dir() {
                Kind::Dir
            } else {
                Kind::File
            };
            let target = (kind == Kind::Symlink).then(|| {
                fs::read_link(&path)
                    .expect("readlink")
                    .to_str()
                    .expect("UTF-8 target")
                    .to_string()
            });
            out.push(Node {
                name: name.clone(),
                path: path.clone(),
                kind,
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
                size: if kind == Kind::File { meta.len() } else { 0 },
                target,
                uid: meta.uid(),
                gid: meta.gid(),
            });
            if kind == Kind::Dir {
                visit(&path, &name, out);
            }
        }
    }
    let mut out = Vec::new();
    visit(root, "", &mut out);
    out
}

/// Assert that `actual` holds the same tree as `expected`: names (and order),
/// kinds, permission bits, mtimes to the second, file contents, symlink targets,
/// owners (the trees the tests extract belong to the user running them, or are
/// extracted by root, which restores owners).
#[track_caller]
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let want = walk(expected);
    let got = walk(actual);
    let want_names: Vec<&str> = want.iter().map(|n| n.name.as_str()).collect();
    let got_names: Vec<&str> = got.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(want_names.len(), got_names.len(), "entry count differs");
    assert_eq!(want_names, got_names, "names differ");
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.kind, g.kind, "kind of {}", w.name);
        if w.kind != Kind::Symlink {
            assert_eq!(
                w.mode, g.mode,
                "mode of {}: {:o} vs {:o}",
                w.name, w.mode, g.mode
            );
        }
        assert_eq!(w.mtime, g.mtime, "mtime of {}", w.name);
        assert_eq!(w.size, g.size, "size of {}", w.name);
        assert_eq!(w.target, g.target, "target of {}", w.name);
        assert_eq!((w.uid, w.gid), (g.uid, g.gid), "owner of {}", w.name);
        if w.kind == Kind::File {
            let a = fs::read(&w.path).expect("read expected");
            let b = fs::read(&g.path).expect("read actual");
            assert!(a == b, "content of {} differs", w.name);
        }
    }
}

// ---------------------------------------------------------------------------
// The shared fixture
// ---------------------------------------------------------------------------

/// The generated tree and its archive, built once per test process and only
/// read by the tests (each writes its own outputs elsewhere).
#[derive(Debug)]
pub struct Fixture {
    /// Input tree.
    pub data: PathBuf,
    /// Recipe text (absolute input path, relative output `out/tree.hxz`).
    pub recipe_text: String,
    /// The archive built from it.
    pub archive: PathBuf,
    /// `build --json` output.
    pub build_json: Value,
    /// The tree as walked.
    pub nodes: Vec<Node>,
}

/// The shared fixture. It lives in `target/tmp/hexz-cli-shared-<pid>`; folders
/// left by earlier test processes that are gone are removed first (statics are
/// never dropped, so a `TempDir` would leak).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tmp = target_tmp();
        for entry in fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("hexz-cli-shared-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let root = tmp.join(format!("hexz-cli-shared-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let data = root.join("data");
        make_tree(&data);
        let text = recipe_text(&data, "tree.hxz", "zstd");
        let recipe = write_recipe(&root.join("work"), &text);
        let out = run([
            "build".as_ref(),
            recipe.as_os_str(),
            "--json".as_ref(),
            "--quiet".as_ref(),
        ]);
        let build_json = json(&out);
        assert!(
            out.stderr.is_empty(),
            "build --quiet wrote to stderr: {}",
            stderr(&out)
        );
        let archive = root.join("work/out/tree.hxz");
        assert!(archive.is_file(), "no archive at {}", archive.display());
        Fixture {
            nodes: walk(&data),
            data,
            recipe_text: text,
            archive,
            build_json,
        }
    })
}
