//! Progress output: nothing with `--quiet`; no bar (escape sequences or carriage
//! returns) when stderr is not a terminal, as in these tests.

use std::fs;
use std::path::Path;

use crate::support::{
    Kind, Rng, fixture, ok, recipe_text, run, scratch, stderr, stdout, walk, write_recipe,
};

#[track_caller]
fn assert_no_terminal_codes(text: &str) {
    assert!(
        !text.contains('\x1b'),
        "escape sequence on stderr: {text:?}"
    );
    assert!(!text.contains('\r'), "carriage return on stderr: {text:?}");
}

/// A small tree with one file big enough for the build to take a moment.
fn medium_tree(data: &Path) {
    let mut rng = Rng::new(5);
    for i in 0..40 {
        let path = data.join(format!("d{}/f{i}.txt", i % 4));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, rng.text(1000 + i * 10)).unwrap();
    }
    fs::write(data.join("big.bin"), rng.bytes(2 << 20)).unwrap();
}

#[test]
fn quiet_commands_write_nothing() {
    let dir = scratch();
    let data = dir.path().join("data");
    medium_tree(&data);
    let recipe = write_recipe(dir.path(), &recipe_text(&data, "m.hxz", "zstd"));
    let out = run(["build".as_ref(), recipe.as_os_str(), "--quiet".as_ref()]);
    ok(&out);
    assert!(out.stderr.is_empty(), "{:?}", stderr(&out));
    assert!(out.stdout.is_empty(), "{:?}", stdout(&out));

    let dest = dir.path().join("x");
    let archive = dir.path().join("out/m.hxz");
    let out = run([
        "extract".as_ref(),
        archive.as_os_str(),
        dest.as_os_str(),
        "-q".as_ref(),
    ]);
    ok(&out);
    assert!(out.stderr.is_empty(), "{:?}", stderr(&out));
    assert!(out.stdout.is_empty(), "{:?}", stdout(&out));
    crate::support::assert_same_tree(&data, &dest);

    // --json prints the summary as JSON on stdout; stderr stays empty even
    // without --quiet.
    let out = run(["build".as_ref(), recipe.as_os_str(), "--json".as_ref()]);
    ok(&out);
    assert!(out.stderr.is_empty(), "{:?}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entries"], walk(&data).len() as u64);
    assert_eq!(v["root_hash"].as_str().map(str::len), Some(64));
}

#[test]
fn without_a_terminal_only_the_summary_line_is_printed() {
    let f = fixture();
    let dir = scratch();
    let recipe = write_recipe(dir.path(), &f.recipe_text);
    let archive = dir.path().join("out/tree.hxz");

    let out = run(["build".as_ref(), recipe.as_os_str()]);
    ok(&out);
    let err = stderr(&out);
    assert_no_terminal_codes(&err);
    assert!(out.stdout.is_empty(), "{:?}", stdout(&out));
    assert_eq!(err.lines().count(), 1, "{err:?}");
    let want = format!("built {}: {} entries", archive.display(), f.nodes.len());
    assert!(err.starts_with(&want), "{err:?} should start with {want:?}");
    assert!(
        err.contains(f.build_json["root_hash"].as_str().unwrap()),
        "{err:?}"
    );

    let dest = dir.path().join("x");
    let out = run(["extract".as_ref(), archive.as_os_str(), dest.as_os_str()]);
    ok(&out);
    let err = stderr(&out);
    assert_no_terminal_codes(&err);
    assert!(out.stdout.is_empty(), "{:?}", stdout(&out));
    assert_eq!(err.lines().count(), 1, "{err:?}");
    let count = |k: Kind| f.nodes.iter().filter(|n| n.kind == k).count();
    let want = format!(
        "extracted {} files, {} dirs, {} symlinks (",
        count(Kind::File),
        count(Kind::Dir),
        count(Kind::Symlink)
    );
    assert!(err.starts_with(&want), "{err:?} should start with {want:?}");
}
