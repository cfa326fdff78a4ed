//! Recipe and usage errors surface with exit code 2 and a useful one-line
//! message; `--dry-run` prints the plan and writes nothing.

use std::fs;
use std::path::Path;

use crate::support::{Kind, code, fails_with, fixture, ok, run, scratch, stdout, write_recipe};

/// Build `text` (written as `recipe.yaml` in a scratch folder holding `data/`)
/// and return the error message, checking exit code 2 and that the message
/// names the recipe file.
fn recipe_error(text: &str) -> String {
    let err = any_recipe_error(text);
    assert!(
        err.contains("recipe.yaml:"),
        "error should name the recipe: {err}"
    );
    err
}

/// As [`recipe_error`], without requiring the recipe's location.
fn any_recipe_error(text: &str) -> String {
    let dir = scratch();
    fs::create_dir_all(dir.path().join("data")).unwrap();
    fs::write(dir.path().join("data/a.txt"), b"a").unwrap();
    let recipe = write_recipe(dir.path(), text);
    let out = run(["build".as_ref(), recipe.as_os_str(), "--quiet".as_ref()]);
    let err = fails_with(&out, 2);
    assert!(!dir.path().join("out").exists(), "output folder created");
    err
}

#[test]
fn unknown_field_suggests_the_right_one() {
    let err = recipe_error("inputs:\n  - path: data/\noutptu: out/a.hxz\n");
    assert!(err.contains("recipe.yaml:3:1"), "{err}");
    assert!(err.contains("unknown field `outptu`"), "{err}");
    assert!(err.contains("did you mean `output`"), "{err}");

    let err = recipe_error(
        "inputs:\n  - path: data/\noutput: out/a.hxz\nchunking: { min: 4KiB, avgg: 16KiB }\n",
    );
    assert!(err.contains("unknown field `avgg`"), "{err}");
    assert!(err.contains("did you mean `avg`"), "{err}");

    let err =
        recipe_error("inputs:\n  - path: data/\noutput: out/a.hxz\ncompression:\n  codex: zstd\n");
    assert!(err.contains("recipe.yaml:5:3"), "{err}");
    assert!(err.contains("did you mean `codec`"), "{err}");
}

#[test]
fn missing_input_and_other_recipe_errors_exit_2() {
    let err = recipe_error("inputs:\n  - path: missing/\noutput: out/a.hxz\n");
    assert!(err.contains("recipe.yaml:2:11"), "{err}");
    assert!(err.contains("input `missing/` does not exist"), "{err}");

    let err = recipe_error("inputs:\n  - path: data/\n");
    assert!(err.contains("missing required field `output`"), "{err}");

    let err = recipe_error("inputs: []\noutput: out/a.hxz\n");
    assert!(err.contains("`inputs` is empty"), "{err}");

    let err = recipe_error(
        "inputs:\n  - path: data/\noutput: out/a.hxz\ncompression: { codec: zstd, level: 99 }\n",
    );
    assert!(err.contains("level 99"), "{err}");

    let err = recipe_error(
        "inputs:\n  - path: data/\noutput: out/a.hxz\nchunking: { min: 64KiB, avg: 16KiB }\n",
    );
    assert!(err.contains("min"), "{err}");

    // Codec names are checked against the plugin registry after validation, and
    // still point into the recipe, at the codec's value.
    let err = recipe_error(
        "inputs:\n  - path: data/\noutput: out/a.hxz\ncompression: { codec: brotli }\n",
    );
    assert!(
        err.contains("recipe.yaml:4:23: unknown codec `brotli`; registered: lz4, none, zstd"),
        "{err}"
    );
    let err = recipe_error(
        "inputs:\n  - path: data/\noutput: out/a.hxz\ncompression:\n  level: 3\n  codec: zst\n",
    );
    assert!(
        err.contains("recipe.yaml:6:10: unknown codec `zst`"),
        "{err}"
    );
    assert!(err.contains("did you mean `zstd`?"), "{err}");
    // --dry-run resolves the codec too.
    let dir = scratch();
    fs::create_dir_all(dir.path().join("data")).unwrap();
    let recipe = write_recipe(
        dir.path(),
        "inputs:\n  - path: data/\noutput: out/a.hxz\ncompression: { codec: brotli }\n",
    );
    let out = run(["build".as_ref(), recipe.as_os_str(), "--dry-run".as_ref()]);
    let err = fails_with(&out, 2);
    assert!(
        err.contains("recipe.yaml:4:23: unknown codec `brotli`"),
        "{err}"
    );

    let err = recipe_error("inputs:\n  - path: ${HEXZ_TEST_SURELY_UNSET_VAR}\noutput: out/a.hxz\n");
    assert!(err.contains("HEXZ_TEST_SURELY_UNSET_VAR"), "{err}");

    let err = recipe_error("inputs: [ path: data/\noutput: out/a.hxz\n");
    assert!(!err.is_empty());
}

#[test]
fn missing_recipe_file_and_bad_usage_exit_2() {
    let dir = scratch();
    let missing = dir.path().join("nope.yaml");
    let err = fails_with(&run(["build".as_ref(), missing.as_os_str()]), 2);
    assert!(err.contains("nope.yaml"), "{err}");

    // clap usage errors.
    for args in [
        vec!["build"],
        vec!["build", "r.yaml", "--bogus"],
        vec!["frobnicate"],
        vec!["cat", "a.hxz"],
        vec!["cat", "a.hxz", "x", "--offset", "-5"],
        vec!["build", "r.yaml", "--threads", "many"],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", crate::support::stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let out = run::<[&str; 0], &str>([]);
    assert_eq!(code(&out), 2);
    ok(&run(["--version"]));
    ok(&run(["--help"]));
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let f = fixture();
    let dir = scratch();
    let recipe = write_recipe(dir.path(), &f.recipe_text);
    let out = run(["build".as_ref(), recipe.as_os_str(), "--dry-run".as_ref()]);
    ok(&out);
    assert!(out.stderr.is_empty(), "{}", crate::support::stderr(&out));
    let text = stdout(&out);
    let count = |k: Kind| f.nodes.iter().filter(|n| n.kind == k).count();
    let bytes: u64 = f.nodes.iter().map(|n| n.size).sum();
    let want = [
        format!("recipe   {}", recipe.display()),
        format!("ingest   {} ({})", f.data.display(), f.data.display()),
        format!(
            "         {} files, {} dirs, {} symlinks, {bytes} bytes",
            count(Kind::File),
            count(Kind::Dir),
            count(Kind::Symlink)
        ),
        "chunk    fastcdc-2020 min 4096 avg 16384 max 65536".to_string(),
        "compress zstd level 3".to_string(),
        format!("output   {}", dir.path().join("out/tree.hxz").display()),
    ];
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got, want);
    assert!(
        !dir.path().join("out").exists(),
        "dry run created the output folder"
    );
    assert_no_files_but(dir.path(), &["recipe.yaml"]);
}

fn assert_no_files_but(dir: &Path, allowed: &[&str]) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(allowed.contains(&name.as_ref()), "unexpected {name}");
    }
}

/// Text from files is quoted in errors only as a bounded prefix: a record named
/// by a 200 KB field, a recipe key of 200 KB, an entry name of 200 KB asked for.
#[test]
fn errors_quote_at_most_a_prefix_of_a_200_kb_name() {
    const LONG: usize = 200_000;
    let dir = scratch();
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let name = "n".repeat(LONG);
    fs::write(
        data.join("r.jsonl"),
        format!("{{\"id\": \"{name}\", \"text\": \"hello\"}}\n"),
    )
    .unwrap();
    let recipe = write_recipe(
        dir.path(),
        "inputs:\n  - path: data/r.jsonl\n    records: { data: text, name: id, encoding: utf8 }\n\
         output: out/r.hxz\n",
    );
    let check = |err: &str| {
        assert!(err.len() < 2048, "{} bytes: {:.400}", err.len(), err);
        assert!(err.contains(&format!("… ({LONG} bytes)")), "{err:.400}");
    };
    let out = run(["build".as_ref(), recipe.as_os_str(), "--quiet".as_ref()]);
    assert_ne!(code(&out), 0);
    let err = crate::support::stderr(&out);
    crate::support::assert_one_line_error(&err);
    assert!(err.contains("entry name"), "{err:.400}");
    check(&err);
    // A recipe value of 200 KB.
    let err = recipe_error(&format!(
        "inputs:\n  - path: data/\noutput: out/x.hxz\ncompression: {{ codec: {} }}\n",
        "k".repeat(LONG)
    ));
    assert!(err.contains("unknown codec"), "{err:.400}");
    check(&err);
    // An entry name asked of an archive (100 KB: one argument holds at most
    // 128 KiB).
    let recipe = write_recipe(dir.path(), "inputs:\n  - path: data/\noutput: out/d.hxz\n");
    ok(&run([
        "build".as_ref(),
        recipe.as_os_str(),
        "--quiet".as_ref(),
    ]));
    let archive = dir.path().join("out/d.hxz");
    let asked = "n".repeat(100_000);
    let err = fails_with(
        &run(["cat".as_ref(), archive.as_os_str(), asked.as_ref()]),
        4,
    );
    assert!(err.len() < 2048, "{} bytes: {:.400}", err.len(), err);
    assert!(err.contains("… (100000 bytes)"), "{err:.400}");
}
