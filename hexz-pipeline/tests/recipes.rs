//! Every recipe in `recipes/` builds and reads back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use hexz_format::EntryKind;
use hexz_pipeline::recipe::{SymlinkPolicy, load_recipe, parse_recipe};
use hexz_pipeline::{BuildOptions, Registry, build, open_archive_path};

#[path = "recipes/records.rs"]
mod records;

fn recipes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes")
}

/// `recipes/*.yaml` and `recipes/*/*.yaml` (a recipe with its data in its own
/// folder), sorted.
fn bundled_recipes() -> Vec<PathBuf> {
    let mut recipes = Vec::new();
    for e in std::fs::read_dir(recipes_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                recipes.push(e.unwrap().path());
            }
        } else {
            recipes.push(p);
        }
    }
    recipes.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    recipes.sort();
    recipes
}

#[test]
fn every_bundled_recipe_builds_and_reads_back() {
    let recipes = bundled_recipes();
    assert!(recipes.len() >= 5, "{recipes:?}");
    let registry = Registry::default();
    // Thin children after the recipes they name as parent, which are built into
    // a temporary folder: `built` maps each recipe's own output to where it went.
    let mut plans: Vec<_> = recipes
        .iter()
        .map(|r| {
            // publish-s3.yaml names its bucket through ${HEXZ_BUCKET}; `build` does
            // not publish, so any name will do here.
            let text = std::fs::read_to_string(r).unwrap();
            let env = |name: &str| {
                std::env::var(name)
                    .ok()
                    .or_else(|| (name == "HEXZ_BUCKET").then(|| "any-bucket".to_string()))
            };
            parse_recipe(&text, r, &env).unwrap_or_else(|e| panic!("{}: {e}", r.display()))
        })
        .collect();
    plans.sort_by_key(|p| p.parent.is_some());
    let out = tempfile::tempdir().unwrap();
    let mut built = std::collections::HashMap::new();
    for (i, mut plan) in plans.into_iter().enumerate() {
        let recipe = plan.recipe_path.clone();
        let planned = plan.output.clone();
        plan.output = out.path().join(format!("archive-{i}.hxz"));
        if let Some(parent) = &plan.parent {
            let moved: &PathBuf = built.get(&PathBuf::from(parent)).unwrap_or_else(|| {
                panic!(
                    "{}: parent {parent} is no bundled recipe's output",
                    recipe.display()
                )
            });
            plan.parent = Some(moved.display().to_string());
        }
        built.insert(planned, plan.output.clone());
        let report = build(
            &plan,
            &registry,
            &BuildOptions {
                quiet: true,
                threads: None,
                ..Default::default()
            },
        )
        .unwrap();
        // Encrypted and signed recipes are read with their keys, under a trust
        // policy for their signer.
        let options = hexz_pipeline::crypto::read_options(&plan, &plan.output).unwrap();
        let archive = open_archive_path(&plan.output, &registry, options).unwrap();
        assert_eq!(archive.is_encrypted(), plan.encrypt.is_some());
        assert_eq!(archive.is_trusted(), plan.sign.is_some());
        assert_eq!(archive.root_hash(), report.summary.root_hash);
        assert_eq!(
            archive.is_thin(),
            plan.parent.is_some(),
            "{}",
            recipe.display()
        );
        archive.verify().unwrap();
        // Every file of every input reads back identical.
        for input in &plan.inputs {
            if input.records.is_some() {
                records::check_input(&archive, input);
                continue;
            }
            let filtered = !input.include.is_empty()
                || !input.exclude.is_empty()
                || input.symlinks != SymlinkPolicy::Keep;
            for item in walkdir::WalkDir::new(&input.path).min_depth(1) {
                let item = item.unwrap();
                let rel = item
                    .path()
                    .strip_prefix(&input.path)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                let entry = match archive.entry(&rel) {
                    Ok(entry) => entry,
                    // Left out by the input's globs or symlink policy (which ones:
                    // tests/ingest.rs).
                    Err(_) if filtered => continue,
                    Err(e) => panic!("{rel}: {e}"),
                };
                if item.file_type().is_file() {
                    assert_eq!(entry.kind, EntryKind::File);
                    assert_eq!(
                        archive.read_entry(&entry).unwrap(),
                        std::fs::read(item.path()).unwrap(),
                        "{rel}"
                    );
                }
            }
        }
    }
}

#[test]
fn sample_recipe_is_reproducible() {
    let registry = Registry::default();
    let mut hashes = Vec::new();
    for threads in [1, 2] {
        let mut plan = load_recipe(&recipes_dir().join("sample.yaml")).unwrap();
        let out = tempfile::tempdir().unwrap();
        plan.output = out.path().join("sample.hxz");
        build(
            &plan,
            &registry,
            &BuildOptions {
                quiet: true,
                threads: Some(threads),
                ..Default::default()
            },
        )
        .unwrap();
        hashes.push(std::fs::read(&plan.output).unwrap());
    }
    assert_eq!(hashes[0], hashes[1]);
}
