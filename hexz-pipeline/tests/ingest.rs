//! Directory ingest: include/exclude globs, symlink policies, owners, and the
//! per-input digests recorded in provenance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use hexz_format::layout::SECTION_PROVENANCE;
use hexz_format::{Archive, EntryKind, Owner, ReadOptions};
use hexz_pipeline::recipe::{Plan, RecipeError, SymlinkPolicy, parse_recipe};
use hexz_pipeline::{
    BuildOptions, PipelineError, Registry, build, count_inputs, open_archive_path,
};

/// A scratch folder with `data/`:
///
/// ```text
/// a.txt  b.log  docs/{x.md, y.txt, drafts/z.md}  .git/{HEAD, objects/o}
/// cache/{c.txt}  empty/  link-a -> a.txt  link-docs -> docs
/// ```
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    for (name, body) in [
        ("a.txt", "a\n"),
        ("b.log", "log\n"),
        ("docs/x.md", "# x\n"),
        ("docs/y.txt", "y\n"),
        ("docs/drafts/z.md", "# z\n"),
        (".git/HEAD", "ref\n"),
        (".git/objects/o", "obj\n"),
        ("cache/c.txt", "cached\n"),
    ] {
        let path = d.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    fs::create_dir_all(d.join("empty")).unwrap();
    symlink("a.txt", d.join("link-a")).unwrap();
    symlink("docs", d.join("link-docs")).unwrap();
    dir
}

fn plan(dir: &Path, input_options: &str) -> Result<Plan, RecipeError> {
    let text = format!(
        "inputs:\n  - path: data/\n{input_options}output: out/a.hxz\ncompression: {{ codec: none }}\n"
    );
    parse_recipe(&text, &dir.join("recipe.yaml"), &|_| None)
}

fn quiet(threads: usize) -> BuildOptions {
    BuildOptions {
        quiet: true,
        threads: Some(threads),
        ..Default::default()
    }
}

/// Build `plan` and return the archive's (name, kind) list.
fn built(plan: &Plan) -> (Archive, Vec<(String, EntryKind)>) {
    build(plan, &Registry::default(), &quiet(2)).unwrap();
    let archive =
        open_archive_path(&plan.output, &Registry::default(), ReadOptions::default()).unwrap();
    let names = archive
        .entries()
        .map(|e| e.unwrap())
        .map(|e| (e.name, e.kind))
        .collect();
    (archive, names)
}

fn names_of(plan: &Plan) -> Vec<String> {
    built(plan).1.into_iter().map(|(n, _)| n).collect()
}

mod globs {
    use super::*;

    #[test]
    fn no_options_archive_everything_in_walk_order() {
        let dir = tree();
        let p = plan(dir.path(), "").unwrap();
        assert_eq!(p.inputs[0].symlinks, SymlinkPolicy::Keep);
        assert_eq!(
            names_of(&p),
            [
                ".git",
                ".git/HEAD",
                ".git/objects",
                ".git/objects/o",
                "a.txt",
                "b.log",
                "cache",
                "cache/c.txt",
                "docs",
                "docs/drafts",
                "docs/drafts/z.md",
                "docs/x.md",
                "docs/y.txt",
                "empty",
                "link-a",
                "link-docs",
            ]
        );
    }

    #[test]
    fn exclude_prunes_folders_and_wins_over_include() {
        let dir = tree();
        let p = plan(
            dir.path(),
            "    exclude: [\".git\", \"**/drafts\", \"*.log\", \"link-*\"]\n",
        )
        .unwrap();
        assert_eq!(
            names_of(&p),
            [
                "a.txt",
                "cache",
                "cache/c.txt",
                "docs",
                "docs/x.md",
                "docs/y.txt",
                "empty"
            ]
        );
        let count = count_inputs(&p).unwrap();
        // .git, b.log, docs/drafts, link-a, link-docs; nothing inside .git is visited.
        assert_eq!(count.excluded, 5);
        assert_eq!((count.files, count.dirs, count.symlinks), (4, 3, 0));

        // A name both included and excluded is excluded.
        let p = plan(
            dir.path(),
            "    include: [\"**/*.md\"]\n    exclude: [\"docs/x.md\"]\n",
        )
        .unwrap();
        assert_eq!(names_of(&p), ["docs", "docs/drafts", "docs/drafts/z.md"]);
    }

    #[test]
    fn star_does_not_cross_slashes_but_double_star_does() {
        let dir = tree();
        let p = plan(dir.path(), "    include: [\"*.txt\"]\n").unwrap();
        assert_eq!(names_of(&p), ["a.txt"]);
        let p = plan(dir.path(), "    include: [\"**/*.txt\"]\n").unwrap();
        assert_eq!(
            names_of(&p),
            ["a.txt", "cache", "cache/c.txt", "docs", "docs/y.txt"]
        );
        let p = plan(dir.path(), "    include: [\"docs/**\", \"{a,b}.*\"]\n").unwrap();
        assert_eq!(
            names_of(&p),
            [
                "a.txt",
                "b.log",
                "docs",
                "docs/drafts",
                "docs/drafts/z.md",
                "docs/x.md",
                "docs/y.txt"
            ]
        );
    }

    #[test]
    fn include_keeps_the_folders_above_what_it_keeps() {
        let dir = tree();
        let p = plan(dir.path(), "    include: [\"docs/drafts/*.md\"]\n").unwrap();
        let (archive, names) = built(&p);
        assert_eq!(
            names,
            [
                ("docs".to_string(), EntryKind::Dir),
                ("docs/drafts".to_string(), EntryKind::Dir),
                ("docs/drafts/z.md".to_string(), EntryKind::File),
            ]
        );
        // The folders carry their own metadata.
        let docs = archive.entry("docs").unwrap();
        let meta = fs::metadata(dir.path().join("data/docs")).unwrap();
        assert_eq!(docs.mode, meta.mode());
        assert_eq!(docs.mtime, meta.mtime());
        // An empty folder matching no pattern is not kept; one matching is.
        let p = plan(dir.path(), "    include: [\"empty\"]\n").unwrap();
        assert_eq!(names_of(&p), ["empty"]);
        let p = plan(dir.path(), "    include: [\"nothing-matches\"]\n").unwrap();
        assert!(names_of(&p).is_empty());
        // 8 files, 2 links and the 6 folders, none of them kept.
        assert_eq!(count_inputs(&p).unwrap().excluded, 16);
    }
}

mod symlinks {
    use super::*;

    #[test]
    fn keep_archives_links_as_links() {
        let dir = tree();
        let (archive, _) = built(&plan(dir.path(), "    symlinks: keep\n").unwrap());
        let link = archive.entry("link-docs").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(link.target.as_deref(), Some("docs"));
        assert!(archive.entry("link-docs/x.md").is_err());
    }

    #[test]
    fn skip_leaves_links_out() {
        let dir = tree();
        let p = plan(dir.path(), "    symlinks: skip\n").unwrap();
        let names = names_of(&p);
        assert!(!names.iter().any(|n| n.starts_with("link-")), "{names:?}");
        assert_eq!(count_inputs(&p).unwrap().excluded, 2);
        assert_eq!(count_inputs(&p).unwrap().symlinks, 0);
    }

    #[test]
    fn follow_archives_what_links_point_to() {
        let dir = tree();
        let p = plan(dir.path(), "    symlinks: follow\n").unwrap();
        let (archive, names) = built(&p);
        let linked: Vec<_> = names
            .iter()
            .filter(|(n, _)| n.starts_with("link-"))
            .cloned()
            .collect();
        assert_eq!(
            linked,
            [
                ("link-a".to_string(), EntryKind::File),
                ("link-docs".to_string(), EntryKind::Dir),
                ("link-docs/drafts".to_string(), EntryKind::Dir),
                ("link-docs/drafts/z.md".to_string(), EntryKind::File),
                ("link-docs/x.md".to_string(), EntryKind::File),
                ("link-docs/y.txt".to_string(), EntryKind::File),
            ]
        );
        let a = archive.entry("link-a").unwrap();
        assert_eq!(archive.read_entry(&a).unwrap(), b"a\n");
        // Filters see the names through the link.
        let p = plan(
            dir.path(),
            "    symlinks: follow\n    exclude: [\"link-docs/drafts\"]\n",
        )
        .unwrap();
        let names = names_of(&p);
        assert!(names.contains(&"docs/drafts/z.md".to_string()));
        assert!(!names.iter().any(|n| n.starts_with("link-docs/drafts")));
    }

    #[test]
    fn follow_refuses_loops_with_a_clear_error() {
        let dir = tree();
        symlink("..", dir.path().join("data/docs/up")).unwrap();
        let p = plan(dir.path(), "    symlinks: follow\n").unwrap();
        let err = build(&p, &Registry::default(), &quiet(1)).unwrap_err();
        let root: PathBuf = dir.path().join("data").components().collect();
        match &err {
            PipelineError::SymlinkLoop { path, ancestor } => {
                assert!(path.ends_with("docs/up"), "{path:?}");
                assert_eq!(ancestor, &root);
            }
            other => panic!("expected a loop error, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("symbolic link loop"), "{msg}");
        assert!(msg.contains("use `symlinks: keep`"), "{msg}");
        assert!(!p.output.exists(), "no archive after a failed build");
        // The same tree builds with the default policy, or with the loop excluded.
        build(
            &plan(dir.path(), "").unwrap(),
            &Registry::default(),
            &quiet(1),
        )
        .unwrap();
        let p = plan(
            dir.path(),
            "    symlinks: follow\n    exclude: [\"**/up\"]\n",
        )
        .unwrap();
        build(&p, &Registry::default(), &quiet(1)).unwrap();
    }

    #[test]
    fn follow_refuses_dangling_links() {
        let dir = tree();
        symlink("no/such/file", dir.path().join("data/dangling")).unwrap();
        let p = plan(dir.path(), "    symlinks: follow\n").unwrap();
        let err = build(&p, &Registry::default(), &quiet(1)).unwrap_err();
        assert!(
            matches!(&err, PipelineError::DanglingSymlink { path, target }
                if path.ends_with("data/dangling") && target == Path::new("no/such/file")),
            "{err:?}"
        );
        assert!(err.to_string().contains("points to nothing"), "{err}");
    }
}

mod owners {
    use super::*;

    #[test]
    fn every_entry_records_its_owner() {
        let dir = tree();
        let (archive, _) = built(&plan(dir.path(), "").unwrap());
        for entry in archive.entries() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(dir.path().join("data").join(&entry.name)).unwrap();
            assert_eq!(
                entry.owner,
                Some(Owner {
                    uid: meta.uid(),
                    gid: meta.gid()
                }),
                "{}",
                entry.name
            );
        }
    }
}

mod errors {
    use super::*;

    fn error(input_options: &str) -> String {
        let dir = tree();
        fs::write(dir.path().join("file.bin"), b"x").unwrap();
        let text = format!(
            "inputs:\n  - path: file.bin\n  - path: data/\n{input_options}output: out/a.hxz\n"
        );
        match parse_recipe(&text, Path::new("recipe.yaml"), &|_| None) {
            Ok(_) => panic!("expected an error for {input_options:?}"),
            Err(e) => {
                assert!(e.location().is_some());
                e.to_string()
            }
        }
    }

    #[test]
    fn bad_globs_point_at_the_pattern() {
        assert_eq!(
            error("    exclude: [\"ok\", \"[a-\"]\n"),
            "recipe.yaml:4:21: inputs[1].exclude: `[a-` is not a valid glob: \
             unclosed character class; missing ']'"
        );
        assert_eq!(
            error("    include:\n      - \"/abs\"\n"),
            "recipe.yaml:5:9: inputs[1].include: `/abs` can never match: names are \
             relative to the input; write `abs`"
        );
        assert!(
            error("    exclude: [\"cache/\"]\n")
                .contains("`cache/` can never match: names do not end in `/`; write `cache`")
        );
        assert!(error("    exclude: [\"\"]\n").contains("`` is empty"));
        assert!(
            error("    exclude: \"*.tmp\"\n").starts_with("recipe.yaml:4:"),
            "a single string is not a list"
        );
    }

    #[test]
    fn unknown_symlink_policy_suggests_one() {
        assert_eq!(
            error("    symlinks: folow\n"),
            "recipe.yaml:4:15: inputs[1].symlinks: unknown symlink policy `folow`, \
             did you mean `follow`?"
        );
        assert_eq!(
            error("    symlinks: yes\n"),
            "recipe.yaml:4:15: inputs[1].symlinks: unknown symlink policy `yes`; \
             write `keep`, `follow` or `skip`"
        );
    }

    #[test]
    fn directory_options_on_a_file_input() {
        let dir = tree();
        fs::write(dir.path().join("file.bin"), b"x").unwrap();
        let text = "inputs:\n  - path: file.bin\n    symlinks: skip\noutput: out/a.hxz\n";
        let err = parse_recipe(text, Path::new("recipe.yaml"), &|_| None);
        // Relative to the working directory, `file.bin` does not exist: use the folder.
        assert!(err.is_err());
        let err = parse_recipe(text, &dir.path().join("recipe.yaml"), &|_| None).unwrap_err();
        assert!(
            err.to_string().ends_with(
                ":3:15: inputs[0].symlinks applies only to directory inputs, and \
                 `file.bin` is a file; remove it, or point the input at a directory"
            ),
            "{err}"
        );
    }

    #[test]
    fn normalized_recipe_records_options_but_not_defaults() {
        let dir = tree();
        let p = plan(dir.path(), "    symlinks: keep\n    include: []\n").unwrap();
        assert!(
            p.normalized.contains(r#""inputs":[{"path":"data/"}]"#),
            "{}",
            p.normalized
        );
        let p = plan(
            dir.path(),
            "    symlinks: follow\n    include: [\"**/*.md\"]\n    exclude: [\".git\"]\n",
        )
        .unwrap();
        assert!(
            p.normalized.contains(
                r#""inputs":[{"exclude":[".git"],"include":["**/*.md"],"path":"data/","symlinks":"follow"}]"#
            ),
            "{}",
            p.normalized
        );
    }
}

mod digests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn provenance(archive: &Archive) -> serde_json::Value {
        serde_json::from_slice(&archive.section(SECTION_PROVENANCE).unwrap().unwrap()).unwrap()
    }

    /// The digest of `input`, recomputed from the file system with the encoding
    /// documented in docs/RECIPES.md, independently of the pipeline's code.
    /// The documented digest, computed independently: one record per entry, then
    /// the content digest (BLAKE3 over FastCDC chunks of the input's bytes, each
    /// as id then u32 length; all-zero chunks have a zero id).
    fn expected_digest(
        root: &Path,
        names: &[String],
        (min, avg, max): (usize, usize, usize),
    ) -> String {
        let mut h = blake3::Hasher::new();
        let mut stream = Vec::new();
        for name in names {
            let path = root.join(name);
            let meta = fs::symlink_metadata(&path).unwrap();
            let t = meta.file_type();
            let (kind, size, target) = if t.is_symlink() {
                let target = fs::read_link(&path).unwrap().to_str().unwrap().to_string();
                (3u8, 0u64, target)
            } else if t.is_dir() {
                (2, 0, String::new())
            } else {
                let data = fs::read(&path).unwrap();
                stream.extend_from_slice(&data);
                (1, data.len() as u64, String::new())
            };
            h.update(&[kind]);
            h.update(&(name.len() as u32).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&size.to_le_bytes());
            h.update(&meta.mode().to_le_bytes());
            h.update(&meta.mtime().to_le_bytes());
            h.update(&(meta.mtime_nsec() as u32).to_le_bytes());
            h.update(&[1]);
            h.update(&meta.uid().to_le_bytes());
            h.update(&meta.gid().to_le_bytes());
            h.update(&(target.len() as u32).to_le_bytes());
            h.update(target.as_bytes());
        }
        let mut content = blake3::Hasher::new();
        for chunk in fastcdc::v2020::FastCDC::new(&stream, min, avg, max) {
            let data = &stream[chunk.offset..chunk.offset + chunk.length];
            let id = if data.iter().all(|&b| b == 0) {
                [0; 32]
            } else {
                *blake3::hash(data).as_bytes()
            };
            content.update(&id);
            content.update(&(chunk.length as u32).to_le_bytes());
        }
        h.update(content.finalize().as_bytes());
        h.finalize().to_hex().to_string()
    }

    const SMALL: (usize, usize, usize) = (4096, 16384, 65536);

    #[test]
    fn one_digest_per_input_matching_the_documented_encoding() {
        let dir = tree();
        fs::write(dir.path().join("single.bin"), vec![9u8; 300_000]).unwrap();
        let text = "inputs:\n  - path: data/\n    exclude: [\".git\"]\n  - path: single.bin\n\
                    output: out/a.hxz\nchunking: { min: 4KiB, avg: 16KiB, max: 64KiB }\n";
        let p = parse_recipe(text, &dir.path().join("recipe.yaml"), &|_| None).unwrap();
        let (archive, names) = built(&p);
        let v = provenance(&archive);
        let digests = v["input_digests"].as_array().unwrap();
        assert_eq!(digests.len(), 2);
        let data_names: Vec<String> = names[..names.len() - 1]
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(digests[0]["path"], "data/");
        assert_eq!(digests[0]["entries"], data_names.len() as u64);
        assert_eq!(
            digests[0]["blake3"],
            expected_digest(&dir.path().join("data"), &data_names, SMALL)
        );
        assert_eq!(digests[1]["path"], "single.bin");
        assert_eq!(digests[1]["entries"], 1);
        assert_eq!(digests[1]["bytes"], 300_000);
        assert_eq!(
            digests[1]["blake3"],
            expected_digest(dir.path(), &["single.bin".to_string()], SMALL)
        );
        assert_eq!(v["inputs"]["excluded"], 1);

        // An input's digest depends on that input alone: editing the first input
        // leaves the second one's digest (and its chunks) as they were.
        fs::write(dir.path().join("data/extra.bin"), vec![3u8; 123_457]).unwrap();
        let (archive, _) = built(&p);
        let again = provenance(&archive);
        let again = again["input_digests"].as_array().unwrap();
        assert_ne!(again[0]["blake3"], digests[0]["blake3"]);
        assert_eq!(again[1]["blake3"], digests[1]["blake3"]);
    }

    #[test]
    fn digests_are_reproducible_and_track_every_change() {
        let dir = tree();
        let p = plan(dir.path(), "").unwrap();
        let digest = |threads| {
            build(&p, &Registry::default(), &quiet(threads)).unwrap();
            let archive =
                open_archive_path(&p.output, &Registry::default(), ReadOptions::default()).unwrap();
            let bytes = fs::read(&p.output).unwrap();
            let d = provenance(&archive)["input_digests"][0]["blake3"]
                .as_str()
                .unwrap()
                .to_string();
            (d, bytes)
        };
        let (first, bytes) = digest(1);
        let (again, bytes_again) = digest(2);
        assert_eq!(first, again);
        assert_eq!(bytes, bytes_again, "byte-identical across thread counts");
        // Content.
        fs::write(dir.path().join("data/docs/x.md"), "# X\n").unwrap();
        let (changed, _) = digest(2);
        assert_ne!(changed, first);
        // Mode.
        let y = dir.path().join("data/docs/y.txt");
        fs::set_permissions(&y, fs::Permissions::from_mode(0o600)).unwrap();
        let (moded, _) = digest(2);
        assert_ne!(moded, changed);
        // Mtime (nanoseconds only).
        let m = fs::metadata(&y).unwrap();
        let t = filetime::FileTime::from_unix_time(
            m.mtime(),
            (m.mtime_nsec() as u32 + 1) % 1_000_000_000,
        );
        filetime::set_file_mtime(&y, t).unwrap();
        let (timed, _) = digest(2);
        assert_ne!(timed, moded);
        // Symlink target.
        fs::remove_file(dir.path().join("data/link-a")).unwrap();
        symlink("b.log", dir.path().join("data/link-a")).unwrap();
        let (relinked, _) = digest(2);
        assert_ne!(relinked, timed);
    }
}
