//! Thin snapshots through the CLI: `build --parent` / recipe `parent:`, chains of
//! ten, `log`, `diff`, `squash`, `info`, and missing or substituted parents.

use std::fs;
use std::path::Path;

use crate::support::{
    Rng, assert_same_tree, fails_with, json, ok, run, scratch, stdout, write_recipe,
};

/// A recipe in `dir` archiving `dir/data` into `out/<name>`, small chunks.
fn recipe(dir: &Path, name: &str, parent: Option<&str>) -> std::path::PathBuf {
    let parent = parent.map(|p| format!("parent: {p}\n")).unwrap_or_default();
    let text = format!(
        "inputs:\n  - path: data/\noutput: out/{name}\n{parent}\
         chunking: {{ min: 1KiB, avg: 4KiB, max: 16KiB }}\n\
         compression: {{ codec: zstd, level: 3 }}\n"
    );
    let path = dir.join(format!("{name}.yaml"));
    fs::write(&path, text).unwrap();
    path
}

/// Mostly incompressible content (so sizes measure storage, not metadata).
fn text(i: usize, lines: usize) -> Vec<u8> {
    let mut rng = Rng::new(i as u64);
    (0..lines)
        .flat_map(|l| {
            let mut line = format!("file {i} line {l}: ").into_bytes();
            line.extend(rng.bytes(40).iter().map(|b| b'a' + b % 26));
            line.push(b'\n');
            line
        })
        .collect()
}

/// The first version: twenty files.
fn first_version(dir: &Path) {
    let data = dir.join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    for i in 0..20 {
        fs::write(data.join(format!("sub/f{i:02}.txt")), text(i, 400)).unwrap();
    }
}

/// Version `v` (≥ 2): one file edited, one added.
fn next_version(dir: &Path, v: usize) {
    let data = dir.join("data");
    let edited = data.join(format!("sub/f{:02}.txt", v % 20));
    let mut bytes = fs::read(&edited).unwrap();
    bytes.extend_from_slice(format!("edited in version {v}\n").as_bytes());
    fs::write(&edited, bytes).unwrap();
    fs::write(data.join(format!("new-{v:02}.txt")), text(100 + v, 50)).unwrap();
}

fn build(recipe: &Path, parent: Option<&Path>) {
    let mut args = vec![
        "build".into(),
        recipe.as_os_str().to_owned(),
        "--quiet".into(),
    ];
    if let Some(p) = parent {
        args.push("--parent".into());
        args.push(p.as_os_str().to_owned());
    }
    ok(&run(args));
}

/// Build v1..=v10 in `dir/out`, each the parent of the next.
fn chain_of_ten(dir: &Path) {
    first_version(dir);
    build(&recipe(dir, "v01.hxz", None), None);
    for v in 2..=10 {
        next_version(dir, v);
        let parent = dir.join(format!("out/v{:02}.hxz", v - 1));
        build(&recipe(dir, &format!("v{v:02}.hxz"), None), Some(&parent));
    }
}

fn size(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

#[test]
fn a_chain_of_ten_builds_reads_and_logs() {
    let dir = scratch();
    let d = dir.path();
    chain_of_ten(d);
    let out = d.join("out");
    // Each child holds its edit and its new file, far less than the first version.
    for v in 2..=10 {
        let child = size(&out.join(format!("v{v:02}.hxz")));
        assert!(
            child * 4 < size(&out.join("v01.hxz")),
            "v{v}: {child} bytes"
        );
    }
    // The newest reads back the current tree exactly, through nine parents.
    let v10 = out.join("v10.hxz");
    ok(&run(["verify".as_ref(), v10.as_os_str()]));
    let dest = d.join("restored");
    ok(&run([
        "extract".as_ref(),
        v10.as_os_str(),
        dest.as_os_str(),
        "--quiet".as_ref(),
    ]));
    assert_same_tree(&d.join("data"), &dest);
    // log: ten links, newest first, with their real root hashes and sizes.
    let log = json(&run(["log".as_ref(), v10.as_os_str(), "--json".as_ref()]));
    let chain = log["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 10);
    for (k, link) in chain.iter().enumerate() {
        let path = out.join(format!("v{:02}.hxz", 10 - k));
        let info = json(&run(["info".as_ref(), path.as_os_str(), "--json".as_ref()]));
        assert_eq!(link["position"], k);
        assert_eq!(link["status"], "ok");
        assert_eq!(link["root_hash"], info["root_hash"]);
        assert_eq!(link["archive_bytes"], size(&path));
        assert!(link["date"].as_str().unwrap().ends_with('Z'));
        assert!(
            link["location"]
                .as_str()
                .unwrap()
                .ends_with(&format!("v{:02}.hxz", 10 - k))
        );
    }
    let text = stdout(&run(["log".as_ref(), v10.as_os_str()]));
    assert!(text.starts_with("archive  "), "{text}");
    assert!(text.contains("parent 9 "), "{text}");
    // info lists the parents the child records, nearest first, hints relative.
    let info = json(&run(["info".as_ref(), v10.as_os_str(), "--json".as_ref()]));
    let parents = info["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 9);
    assert_eq!(parents[0]["hint"], "v09.hxz");
    assert_eq!(parents[8]["hint"], "v01.hxz");
    // A root archive has no `parents` key at all (its JSON is unchanged).
    let root = json(&run([
        "info".as_ref(),
        out.join("v01.hxz").as_os_str(),
        "--json".as_ref(),
    ]));
    assert!(root.get("parents").is_none());
    // The whole chain moves as one folder: relative hints still resolve.
    let moved = d.join("elsewhere");
    fs::rename(&out, &moved).unwrap();
    let cat = run([
        "cat".as_ref(),
        moved.join("v10.hxz").as_os_str(),
        "sub/f00.txt".as_ref(),
    ]);
    ok(&cat);
    assert_eq!(cat.stdout, fs::read(d.join("data/sub/f00.txt")).unwrap());
}

#[test]
fn a_child_build_is_deterministic() {
    let dir = scratch();
    let d = dir.path();
    first_version(d);
    build(&recipe(d, "v1.hxz", None), None);
    next_version(d, 2);
    let r = recipe(d, "v2.hxz", None);
    let parent = d.join("out/v1.hxz");
    build(&r, Some(&parent));
    let first = fs::read(d.join("out/v2.hxz")).unwrap();
    fs::remove_file(d.join("out/v2.hxz")).unwrap();
    ok(&run([
        "build".as_ref(),
        r.as_os_str(),
        "--quiet".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--parent".as_ref(),
        parent.as_os_str(),
    ]));
    assert_eq!(first, fs::read(d.join("out/v2.hxz")).unwrap());
}

#[test]
fn a_missing_parent_is_named_and_never_read_as_zeros() {
    let dir = scratch();
    let d = dir.path();
    first_version(d);
    build(&recipe(d, "v1.hxz", None), None);
    next_version(d, 2);
    build(&recipe(d, "v2.hxz", None), Some(&d.join("out/v1.hxz")));
    let v2 = d.join("out/v2.hxz");
    fs::rename(d.join("out/v1.hxz"), d.join("gone.hxz")).unwrap();
    // The child's index leaves are deltas against the parent's (FORMAT.md
    // §14.3.5): listing needs the parent too, and names it.
    let err = fails_with(&run(["ls".as_ref(), v2.as_os_str()]), 4);
    assert!(err.contains("v1.hxz"), "{err}");
    let err = fails_with(
        &run(["cat".as_ref(), v2.as_os_str(), "sub/f05.txt".as_ref()]),
        4,
    );
    assert!(err.contains("parent 1"), "{err}");
    assert!(err.contains("v1.hxz"), "{err}");
    assert!(err.contains("not available"), "{err}");
    let dest = d.join("x");
    fails_with(
        &run(["extract".as_ref(), v2.as_os_str(), dest.as_os_str()]),
        4,
    );
    assert!(!dest.exists(), "extract wrote before checking the parents");
    fails_with(&run(["verify".as_ref(), v2.as_os_str()]), 4);
    fails_with(
        &run([
            "squash".as_ref(),
            v2.as_os_str(),
            d.join("s.hxz").as_os_str(),
        ]),
        4,
    );
    assert!(!d.join("s.hxz").exists());
    // log still shows the chain, with the parent marked missing.
    let log = json(&run(["log".as_ref(), v2.as_os_str(), "--json".as_ref()]));
    assert_eq!(log["chain"][1]["status"], "missing");
    // A child built on a missing parent is refused up front.
    next_version(d, 3);
    let err = fails_with(
        &run([
            "build".as_ref(),
            recipe(d, "v3.hxz", None).as_os_str(),
            "--quiet".as_ref(),
            "--parent".as_ref(),
            d.join("out/v1.hxz").as_os_str(),
        ]),
        1,
    );
    assert!(err.contains("v1.hxz"), "{err}");
    assert!(!d.join("out/v3.hxz").exists());
}

#[test]
fn a_parent_replaced_by_another_archive_is_refused() {
    let dir = scratch();
    let d = dir.path();
    first_version(d);
    build(&recipe(d, "v1.hxz", None), None);
    let expected = json(&run([
        "info".as_ref(),
        d.join("out/v1.hxz").as_os_str(),
        "--json".as_ref(),
    ]))["root_hash"]
        .clone();
    next_version(d, 2);
    build(&recipe(d, "v2.hxz", None), Some(&d.join("out/v1.hxz")));
    // Replace the parent file by another archive (the current tree) under its name.
    build(&recipe(d, "v1.hxz", None), None);
    let v2 = d.join("out/v2.hxz");
    let err = fails_with(
        &run(["cat".as_ref(), v2.as_os_str(), "sub/f05.txt".as_ref()]),
        3,
    );
    assert!(err.contains(expected.as_str().unwrap()), "{err}");
    assert!(err.contains("parent 1"), "{err}");
    let log = json(&run(["log".as_ref(), v2.as_os_str(), "--json".as_ref()]));
    assert_eq!(log["chain"][1]["status"], "mismatch");
    assert_eq!(log["chain"][1]["root_hash"], expected);
}

#[test]
fn diff_reports_entries_and_chunks() {
    let dir = scratch();
    let d = dir.path();
    first_version(d);
    build(&recipe(d, "v1.hxz", None), None);
    let data = d.join("data");
    fs::remove_file(data.join("sub/f03.txt")).unwrap();
    fs::write(data.join("added.txt"), b"new file\n").unwrap();
    let mut edited = fs::read(data.join("sub/f10.txt")).unwrap();
    edited[100] ^= 1;
    fs::write(data.join("sub/f10.txt"), edited).unwrap();
    build(&recipe(d, "v2.hxz", None), Some(&d.join("out/v1.hxz")));
    let (a, b) = (d.join("out/v1.hxz"), d.join("out/v2.hxz"));
    let j = json(&run([
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--json".as_ref(),
    ]));
    assert_eq!(j["added"], serde_json::json!(["added.txt"]));
    assert_eq!(j["removed"], serde_json::json!(["sub/f03.txt"]));
    // The folder lost a file (its mtime changed) and one file was edited.
    let changed = j["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(changed[0]["name"], "sub");
    assert_eq!(changed[0]["what"], serde_json::json!(["mtime"]));
    assert_eq!(changed[1]["name"], "sub/f10.txt");
    assert_eq!(changed[1]["what"], serde_json::json!(["content", "mtime"]));
    // 20 files + the folder in both: 18 files unchanged.
    assert_eq!(j["unchanged"], 18);
    let c = &j["chunks"];
    assert!(c["shared"].as_u64().unwrap() > 0);
    assert!(c["only_a"].as_u64().unwrap() > 0 && c["only_b"].as_u64().unwrap() > 0);
    assert!(c["shared_bytes"].as_u64().unwrap() > c["only_b_bytes"].as_u64().unwrap());
    let t = stdout(&run(["diff".as_ref(), a.as_os_str(), b.as_os_str()]));
    assert!(
        t.contains("- sub/f03.txt\n+ added.txt\nM sub (mtime)\nM sub/f10.txt (content, mtime)\n"),
        "{t}"
    );
    assert!(
        t.contains("entries: 1 added, 1 removed, 2 changed, 18 unchanged"),
        "{t}"
    );
    // An archive against itself: nothing differs.
    let same = json(&run([
        "diff".as_ref(),
        b.as_os_str(),
        b.as_os_str(),
        "--json".as_ref(),
    ]));
    assert_eq!(same["chunks"]["only_a"], 0);
    assert!(same["changed"].as_array().unwrap().is_empty());
}

#[test]
fn squash_gives_the_archive_a_plain_build_gives() {
    let dir = scratch();
    let d = dir.path();
    first_version(d);
    build(&recipe(d, "v1.hxz", None), None);
    next_version(d, 2);
    let r = recipe(d, "v2.hxz", None);
    // The plain build of the same recipe, moved aside.
    build(&r, None);
    fs::rename(d.join("out/v2.hxz"), d.join("plain.hxz")).unwrap();
    build(&r, Some(&d.join("out/v1.hxz")));
    let thin = d.join("out/v2.hxz");
    assert!(size(&thin) * 4 < size(&d.join("plain.hxz")));
    let squashed = d.join("squashed.hxz");
    let j = json(&run([
        "squash".as_ref(),
        thin.as_os_str(),
        squashed.as_os_str(),
        "--json".as_ref(),
    ]));
    assert_eq!(j["parents_dropped"], 1);
    assert!(j["chunks_checked"].as_u64().unwrap() > 10);
    // Byte for byte the archive the inputs give without a parent.
    assert_eq!(
        fs::read(&squashed).unwrap(),
        fs::read(d.join("plain.hxz")).unwrap()
    );
    // And it needs no parent any more.
    fs::remove_file(d.join("out/v1.hxz")).unwrap();
    let info = json(&run([
        "info".as_ref(),
        squashed.as_os_str(),
        "--json".as_ref(),
    ]));
    assert!(info.get("parents").is_none());
    let dest = d.join("x");
    ok(&run([
        "extract".as_ref(),
        squashed.as_os_str(),
        dest.as_os_str(),
        "--quiet".as_ref(),
    ]));
    assert_same_tree(&d.join("data"), &dest);
}

#[test]
fn recipe_parent_is_relative_to_the_recipe() {
    let dir = scratch();
    let d = dir.path();
    first_version(d);
    build(&recipe(d, "v1.hxz", None), None);
    next_version(d, 2);
    // Run from another working directory: `parent:` resolves against the recipe.
    let r = recipe(d, "v2.hxz", Some("out/v1.hxz"));
    let dry = run(["build".as_ref(), r.as_os_str(), "--dry-run".as_ref()]);
    ok(&dry);
    assert!(stdout(&dry).contains(&format!("parent   {}", d.join("out/v1.hxz").display())));
    build(&r, None);
    let info = json(&run([
        "info".as_ref(),
        d.join("out/v2.hxz").as_os_str(),
        "--json".as_ref(),
    ]));
    assert_eq!(info["parents"][0]["hint"], "v1.hxz");
    assert_eq!(info["provenance"]["recipe"]["parent"], "out/v1.hxz");
    // The output cannot be its own parent.
    let own = write_recipe(
        &d.join("own"),
        &format!(
            "inputs:\n  - path: '{}'\noutput: ../out/v2.hxz\nparent: ../out/v2.hxz\n",
            d.join("data").display()
        ),
    );
    let err = fails_with(
        &run(["build".as_ref(), own.as_os_str(), "--quiet".as_ref()]),
        1,
    );
    assert!(err.contains("the output is the parent itself"), "{err}");
    assert!(d.join("out/v2.hxz").exists());
}

/// A tree of `n` small files with long names; file `changed` (if any) differs in
/// one byte (same size, so no entry after it moves).
fn many_files(dir: &Path, n: usize, changed: Option<usize>) {
    for i in 0..n {
        let sub = dir.join(format!("data/pkg{:02}/sub", i % 30));
        fs::create_dir_all(&sub).unwrap();
        let mut body =
            format!("# module {i}\nimport os\n\ndef f():\n    return {i}\n").into_bytes();
        if changed == Some(i) {
            body[0] = b'%';
        }
        let path = sub.join(format!("module_with_a_descriptive_name_{i:05}.py"));
        fs::write(&path, body).unwrap();
        // Same mtime in every version, as an rsync'd or checked-out tree keeps.
        filetime::set_file_mtime(&path, filetime::FileTime::from_unix_time(1_700_000_000, 0))
            .unwrap();
    }
}

/// One changed file among thousands: the child's index costs a small fraction
/// of the parent's (`info --space`), reads back identically, and a flipped byte
/// in a parent page the child's delta pages are built on fails `verify`.
#[test]
fn a_child_with_one_changed_file_stores_index_deltas_that_verify_checks() {
    let dir = scratch();
    let d = dir.path();
    many_files(d, 3000, None);
    build(&recipe(d, "v1.hxz", None), None);
    many_files(d, 3000, Some(1234));
    build(&recipe(d, "v2.hxz", None), Some(&d.join("out/v1.hxz")));
    let (v1, v2) = (d.join("out/v1.hxz"), d.join("out/v2.hxz"));
    let space = |p: &Path| {
        json(&run([
            "info".as_ref(),
            p.as_os_str(),
            "--space".as_ref(),
            "--json".as_ref(),
        ]))["space"]
            .clone()
    };
    let (parent, child) = (space(&v1), space(&v2));
    let index = |s: &serde_json::Value| {
        ["chunk_index", "catalog", "name_index"]
            .iter()
            .map(|k| s[*k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(
        index(&child) * 10 < index(&parent),
        "child index {child} vs parent {parent}"
    );
    assert_eq!(child["total"].as_u64().unwrap(), size(&v2));
    // The page-bases section (kind 4) is listed among the child's sections.
    assert!(
        child["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == 4),
        "{child}"
    );
    let text = stdout(&run(["info".as_ref(), v2.as_os_str(), "--space".as_ref()]));
    assert!(text.contains("space         chunks "), "{text}");
    ok(&run(["verify".as_ref(), "--deep".as_ref(), v2.as_os_str()]));
    let dest = d.join("restored");
    ok(&run([
        "extract".as_ref(),
        v2.as_os_str(),
        dest.as_os_str(),
        "--quiet".as_ref(),
    ]));
    assert_same_tree(&d.join("data"), &dest);
    // diff sees exactly the one changed file.
    let diff = json(&run([
        "diff".as_ref(),
        v1.as_os_str(),
        v2.as_os_str(),
        "--json".as_ref(),
    ]));
    let changed = diff["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{diff}");
    assert!(diff["added"].as_array().unwrap().is_empty(), "{diff}");
    // Flip one byte inside a parent page that a delta page of the child is built
    // on (the parent's first catalog leaf: the first page after its chunks).
    let registry = hexz_pipeline::Registry::default();
    let child_archive =
        hexz_pipeline::open_archive_path(&v2, &registry, Default::default()).unwrap();
    let bases = hexz_format::delta::decode_page_bases(
        &child_archive
            .section(hexz_format::layout::SECTION_PAGE_BASES)
            .unwrap()
            .unwrap(),
        0,
    )
    .unwrap();
    let base = bases[0].base;
    let mut bytes = fs::read(&v1).unwrap();
    bytes[(base.offset + u64::from(base.stored_len) / 2) as usize] ^= 0x10;
    fs::write(&v1, bytes).unwrap();
    let err = fails_with(
        &run(["verify".as_ref(), "--deep".as_ref(), v2.as_os_str()]),
        3,
    );
    assert!(err.contains("delta base page"), "{err}");
    assert!(err.contains("CRC32 mismatch"), "{err}");
}

/// Small edits in files of a few KiB: the child stores its changed chunks as
/// deltas against the parent's (`info --space` counts them), unless the recipe
/// says `deltas: false`; either child verifies, extracts and squashes to the
/// same tree.
#[test]
fn changed_chunks_are_stored_as_deltas_unless_the_recipe_says_no() {
    let dir = scratch();
    let d = dir.path();
    let write = |changed: Option<usize>| {
        for i in 0..40 {
            let mut body = text(i, 120);
            if changed == Some(i % 4) {
                body[3000..3010].copy_from_slice(b"CHANGED!!!");
            }
            fs::write(d.join(format!("data/f{i:02}.txt")), body).unwrap();
        }
    };
    fs::create_dir_all(d.join("data")).unwrap();
    write(None);
    build(&recipe(d, "v1.hxz", None), None);
    write(Some(1));
    build(&recipe(d, "v2.hxz", None), Some(&d.join("out/v1.hxz")));
    let whole = d.join("whole.yaml");
    fs::write(
        &whole,
        fs::read_to_string(d.join("v2.hxz.yaml"))
            .unwrap()
            .replace("out/v2.hxz", "out/v2-whole.hxz")
            .replace("level: 3 }", "level: 3, deltas: false }"),
    )
    .unwrap();
    build(&whole, Some(&d.join("out/v1.hxz")));
    let space = |p: &Path| {
        json(&run([
            "info".as_ref(),
            p.as_os_str(),
            "--space".as_ref(),
            "--json".as_ref(),
        ]))["space"]
            .clone()
    };
    let (delta, plain) = (
        space(&d.join("out/v2.hxz")),
        space(&d.join("out/v2-whole.hxz")),
    );
    assert!(delta["delta_chunks"].as_u64().unwrap() >= 10, "{delta}");
    assert_eq!(plain["delta_chunks"].as_u64().unwrap(), 0, "{plain}");
    assert!(
        delta["chunk_blobs"].as_u64().unwrap() * 5 < plain["chunk_blobs"].as_u64().unwrap(),
        "{delta} vs {plain}"
    );
    // The chunk-bases section (kind 5) is listed among the child's sections.
    assert!(
        delta["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == 5),
        "{delta}"
    );
    for name in ["v2.hxz", "v2-whole.hxz"] {
        let child = d.join("out").join(name);
        ok(&run([
            "verify".as_ref(),
            "--deep".as_ref(),
            child.as_os_str(),
        ]));
        let dest = d.join(format!("restored-{name}"));
        ok(&run([
            "extract".as_ref(),
            child.as_os_str(),
            dest.as_os_str(),
            "--quiet".as_ref(),
        ]));
        assert_same_tree(&d.join("data"), &dest);
    }
    let squashed = d.join("squashed.hxz");
    ok(&run([
        "squash".as_ref(),
        d.join("out/v2.hxz").as_os_str(),
        squashed.as_os_str(),
    ]));
    assert_eq!(space(&squashed)["delta_chunks"].as_u64().unwrap(), 0);
    // Without its parent the child's delta chunks are unreadable, and say why.
    fs::rename(d.join("out/v1.hxz"), d.join("v1-moved.hxz")).unwrap();
    let err = fails_with(
        &run([
            "extract".as_ref(),
            d.join("out/v2.hxz").as_os_str(),
            d.join("nowhere").as_os_str(),
            "--quiet".as_ref(),
        ]),
        4,
    );
    assert!(err.contains("v1.hxz"), "{err}");
}
