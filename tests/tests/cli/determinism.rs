//! Same inputs and settings give byte-identical archives, whatever the thread
//! count and wherever the recipe lives.

use std::fs;

use crate::support::{fixture, ok, run, scratch, stderr, stdout, write_recipe};

#[test]
fn rebuilds_are_byte_identical_across_runs_and_thread_counts() {
    let f = fixture();
    // The fixture's archive was built with the default thread count.
    let reference = fs::read(&f.archive).unwrap();
    let dir = scratch();
    // Same recipe text in another folder: the output path is relative and the
    // input absolute, so the provenance (hence the bytes) must not change.
    let recipe = write_recipe(dir.path(), &f.recipe_text);
    let output = dir.path().join("out/tree.hxz");
    for threads in ["1", "2"] {
        let out = run([
            "build".as_ref(),
            recipe.as_os_str(),
            "--quiet".as_ref(),
            "--threads".as_ref(),
            threads.as_ref(),
        ]);
        ok(&out);
        assert!(
            out.stderr.is_empty(),
            "--quiet build wrote {:?}",
            stderr(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "--quiet build wrote {:?}",
            stdout(&out)
        );
        let bytes = fs::read(&output).unwrap();
        assert!(
            bytes == reference,
            "build with --threads {threads} differs from the reference ({} vs {} bytes)",
            bytes.len(),
            reference.len()
        );
    }
}
