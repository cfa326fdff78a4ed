//! Recipe loader: parsing, defaults, sizes, interpolation, paths and every error message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use hexz_pipeline::recipe::{
    ChunkingPlan, CompressionPlan, Plan, RecipeError, SourceLocation, load_recipe, parse_recipe,
};

/// The recipe from the project brief, verbatim.
const SAMPLE: &str = "\
inputs:
  - path: data/            # a directory (or a single file); relative to the recipe's folder
output: out/sample.hxz
chunking: { min: 16KiB, avg: 64KiB, max: 256KiB }
compression: { codec: zstd, level: 3 }   # codec: none | lz4 | zstd
";

fn no_env(_: &str) -> Option<String> {
    None
}

/// A temporary folder holding `data/` (with one file) and `file.bin`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("data")).unwrap();
    fs::write(dir.path().join("data/a.txt"), b"hello").unwrap();
    fs::write(dir.path().join("file.bin"), b"bytes").unwrap();
    dir
}

/// Parses `text` as `<dir>/recipe.yaml` with no environment.
fn parse_in(dir: &Path, text: &str) -> Result<Plan, RecipeError> {
    parse_recipe(text, &dir.join("recipe.yaml"), &no_env)
}

/// The message of the error from parsing `text` as `recipe.yaml` (relative, so messages
/// start with `recipe.yaml:`). Only for recipes that fail before inputs are checked.
fn error(text: &str) -> String {
    match parse_recipe(text, Path::new("recipe.yaml"), &no_env) {
        Ok(plan) => panic!("expected an error, got {plan:?}"),
        Err(err) => err.to_string(),
    }
}

/// `SAMPLE`-like recipe with the given `chunking` and `compression` lines.
fn recipe(chunking: &str, compression: &str) -> String {
    format!("inputs:\n  - path: data/\noutput: out/sample.hxz\n{chunking}\n{compression}\n")
}

mod parsing {
    use super::*;

    #[test]
    fn sample_recipe_parses() {
        let dir = workspace();
        let plan = parse_in(dir.path(), SAMPLE).unwrap();
        let root: PathBuf = dir.path().components().collect();
        assert_eq!(plan.recipe_path, dir.path().join("recipe.yaml"));
        assert_eq!(plan.recipe_dir, root);
        assert_eq!(plan.inputs.len(), 1);
        assert_eq!(plan.inputs[0].path, root.join("data"));
        assert_eq!(plan.inputs[0].written, "data/");
        assert_eq!(plan.output, root.join("out/sample.hxz"));
        assert_eq!(
            plan.chunking,
            ChunkingPlan {
                min: 16384,
                avg: 65536,
                max: 262_144
            }
        );
        assert_eq!(
            plan.compression,
            CompressionPlan {
                codec: "zstd".into(),
                level: Some(3),
                deltas: true,
            }
        );
        assert_eq!(
            plan.normalized,
            r#"{"chunking":{"avg":65536,"max":262144,"min":16384},"compression":{"codec":"zstd","level":3},"inputs":[{"path":"data/"}],"output":"out/sample.hxz"}"#
        );
    }

    #[test]
    fn load_recipe_reads_the_file() {
        let dir = workspace();
        let path = dir.path().join("recipe.yaml");
        fs::write(&path, SAMPLE).unwrap();
        let plan = load_recipe(&path).unwrap();
        assert_eq!(plan, parse_in(dir.path(), SAMPLE).unwrap());
    }

    #[test]
    fn block_style_and_several_inputs() {
        let dir = workspace();
        let text = "\
inputs:
  - path: data
  - path: file.bin
output: sample.hxz
chunking:
  min: 4KiB
  avg: 16KiB
  max: 64KiB
compression:
  codec: lz4
";
        let plan = parse_in(dir.path(), text).unwrap();
        assert_eq!(plan.inputs.len(), 2);
        assert!(plan.inputs[1].path.ends_with("file.bin"));
        assert_eq!((plan.chunking.min, plan.chunking.max), (4096, 65536));
        assert_eq!(plan.compression.codec, "lz4");
        assert_eq!(plan.compression.level, None);
    }

    #[test]
    fn normalized_fills_defaults_and_omits_absent_level() {
        let dir = workspace();
        let text = "inputs: [{ path: ./data }]\noutput: a.hxz\ncompression: { codec: none }\n";
        let plan = parse_in(dir.path(), text).unwrap();
        assert_eq!(
            plan.normalized,
            r#"{"chunking":{"avg":65536,"max":262144,"min":16384},"compression":{"codec":"none"},"inputs":[{"path":"./data"}],"output":"a.hxz"}"#
        );
    }
}

mod defaults {
    use super::*;

    #[test]
    fn chunking_and_compression_default() {
        let dir = workspace();
        let plan = parse_in(dir.path(), "inputs:\n  - path: data\noutput: o.hxz\n").unwrap();
        assert_eq!(plan.chunking, ChunkingPlan::default());
        assert_eq!(
            (plan.chunking.min, plan.chunking.avg, plan.chunking.max),
            (16 * 1024, 64 * 1024, 256 * 1024)
        );
        assert_eq!(plan.compression, CompressionPlan::default());
        assert_eq!(plan.compression.codec, "zstd");
        assert_eq!(plan.compression.level, Some(3));
    }

    #[test]
    fn empty_sections_take_defaults() {
        let dir = workspace();
        let text = "inputs:\n  - path: data\noutput: o.hxz\nchunking:\ncompression: {}\n";
        let plan = parse_in(dir.path(), text).unwrap();
        assert_eq!(plan.chunking, ChunkingPlan::default());
        assert_eq!(plan.compression, CompressionPlan::default());
    }

    #[test]
    fn partial_sections_keep_other_defaults() {
        let dir = workspace();
        let text = recipe("chunking: { avg: 32KiB }", "compression: { level: 19 }");
        let plan = parse_in(dir.path(), &text).unwrap();
        assert_eq!(
            plan.chunking,
            ChunkingPlan {
                min: 16384,
                avg: 32768,
                max: 262_144
            }
        );
        assert_eq!(plan.compression.codec, "zstd");
        assert_eq!(plan.compression.level, Some(19));
    }

    #[test]
    fn codecs_and_levels() {
        let dir = workspace();
        let level = |compression: &str| {
            let plan = parse_in(dir.path(), &recipe("", compression)).unwrap();
            (plan.compression.codec, plan.compression.level)
        };
        assert_eq!(
            level("compression: { codec: zstd }"),
            ("zstd".into(), Some(3))
        );
        assert_eq!(level("compression: { codec: lz4 }"), ("lz4".into(), None));
        assert_eq!(level("compression: { codec: none }"), ("none".into(), None));
        // Unknown codecs are the registry's business; their level is kept as written.
        assert_eq!(
            level("compression: { codec: brotli, level: -5 }"),
            ("brotli".into(), Some(-5))
        );
        assert_eq!(
            level("compression: { codec: brotli }"),
            ("brotli".into(), None)
        );
    }
}

mod sizes {
    use super::*;

    fn chunking(line: &str) -> ChunkingPlan {
        let dir = workspace();
        parse_in(dir.path(), &recipe(line, "")).unwrap().chunking
    }

    #[test]
    fn size_forms() {
        assert_eq!(
            chunking("chunking: { min: 16KiB, avg: 64 KiB, max: 1MiB }"),
            ChunkingPlan {
                min: 16384,
                avg: 65536,
                max: 1_048_576
            }
        );
        assert_eq!(
            chunking("chunking: { min: 8192, avg: \"65536\", max: '2 MiB' }"),
            ChunkingPlan {
                min: 8192,
                avg: 65536,
                max: 2_097_152
            }
        );
        // parse-size: KB is decimal, KiB binary.
        assert_eq!(chunking("chunking: { min: 16KB }").min, 16000);
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(
            chunking("chunking: { min: 64, avg: 256, max: 1024 }"),
            ChunkingPlan {
                min: 64,
                avg: 256,
                max: 1024
            }
        );
        assert_eq!(
            chunking("chunking: { min: 1MiB, avg: 4MiB, max: 16MiB }"),
            ChunkingPlan {
                min: 1 << 20,
                avg: 4 << 20,
                max: 16 << 20
            }
        );
        assert_eq!(
            chunking("chunking: { min: 64KiB, avg: 64KiB, max: 64KiB }"),
            ChunkingPlan {
                min: 65536,
                avg: 65536,
                max: 65536
            }
        );
    }
}

mod paths {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_recipe_folder() {
        let dir = workspace();
        fs::create_dir(dir.path().join("recipes")).unwrap();
        let absolute = dir.path().join("file.bin");
        let text = format!(
            "inputs:\n  - path: ../data\n  - path: {}\noutput: ./out/../a.hxz\n",
            absolute.display()
        );
        let plan = parse_recipe(&text, &dir.path().join("recipes/r.yaml"), &no_env).unwrap();
        let root: PathBuf = dir.path().components().collect();
        assert_eq!(plan.recipe_dir, root.join("recipes"));
        assert_eq!(plan.inputs[0].path, root.join("recipes/../data"));
        assert_eq!(plan.inputs[0].written, "../data");
        assert_eq!(plan.inputs[1].path, absolute);
        assert_eq!(plan.output, root.join("recipes/out/../a.hxz"));
    }

    #[test]
    fn relative_recipe_path_resolves_against_the_working_directory() {
        let dir = workspace();
        let text = format!(
            "inputs:\n  - path: {}\noutput: a.hxz\n",
            dir.path().display()
        );
        let plan = parse_recipe(&text, Path::new("recipe.yaml"), &no_env).unwrap();
        let cwd: PathBuf = std::env::current_dir().unwrap().components().collect();
        assert_eq!(plan.recipe_path, Path::new("recipe.yaml"));
        assert_eq!(plan.recipe_dir, cwd);
        assert_eq!(plan.output, cwd.join("a.hxz"));
    }

    #[test]
    fn missing_input_is_reported_with_its_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let root: PathBuf = dir.path().components().collect();
        let err = parse_in(dir.path(), SAMPLE).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2:11: input `data/` does not exist (resolved to {}); \
                 relative paths are resolved against the recipe's folder",
                dir.path().join("recipe.yaml").display(),
                root.join("data").display()
            )
        );
        let RecipeError::InputMissing {
            at,
            written,
            resolved,
        } = err
        else {
            panic!("wrong variant: {err:?}");
        };
        assert_eq!((at.line, at.column), (2, 11));
        assert_eq!(written, "data/");
        assert_eq!(resolved, root.join("data"));
    }
}

mod interpolation {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DATA_DIR" => Some("data".to_owned()),
            "NAME" => Some("nightly".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_substituted_in_paths() {
        let dir = workspace();
        let text = "inputs:\n  - path: ${DATA_DIR}/a.txt\noutput: out/${NAME}-$$1.hxz\n";
        let plan = parse_recipe(text, &dir.path().join("recipe.yaml"), &env).unwrap();
        let root: PathBuf = dir.path().components().collect();
        assert_eq!(plan.inputs[0].path, root.join("data/a.txt"));
        assert_eq!(plan.inputs[0].written, "${DATA_DIR}/a.txt");
        assert_eq!(plan.output, root.join("out/nightly-$1.hxz"));
        // Provenance keeps the text as written, not the environment's values.
        assert!(
            plan.normalized
                .contains(r#""output":"out/${NAME}-$$1.hxz""#)
        );
    }

    #[test]
    fn unset_variable_names_variable_field_and_location() {
        let text = "inputs:\n  - path: data/\noutput: \"${OUT_DIR}/a.hxz\"\n";
        assert_eq!(
            parse_recipe(text, Path::new("recipe.yaml"), &env)
                .unwrap_err()
                .to_string(),
            "recipe.yaml:3:9: environment variable `OUT_DIR` is not set (used in `output`); \
             set it, or write `$$` for a literal `$`"
        );
        let text = "inputs:\n  - path: data/\n  - path: ${MISSING}\noutput: a.hxz\n";
        let err = parse_recipe(text, Path::new("recipe.yaml"), &env).unwrap_err();
        assert!(matches!(
            &err,
            RecipeError::UnsetVariable { field, variable, .. }
                if field == "inputs[1].path" && variable == "MISSING"
        ));
        assert!(
            err.to_string()
                .starts_with("recipe.yaml:3:11: environment variable `MISSING`")
        );
    }

    #[test]
    fn malformed_dollar() {
        assert_eq!(
            error("inputs:\n  - path: $HOME/data\noutput: a.hxz\n"),
            "recipe.yaml:2:11: bad `$` in `inputs[0].path`: a `$` must start `${NAME}`; \
             write `$$` for a literal `$`"
        );
        assert_eq!(
            error("inputs:\n  - path: data\noutput: ${OUT\n"),
            "recipe.yaml:3:9: bad `$` in `output`: `${` is not closed; write `${NAME}`"
        );
    }
}

mod errors {
    use super::*;

    #[test]
    fn unknown_field_suggests_the_closest() {
        let text = "inputs:\n  - path: data/\noutput: out/sample.hxz\n\
                    compresion: { codec: zstd, level: 3 }\n";
        assert_eq!(
            error(text),
            "recipe.yaml:4:1: unknown field `compresion`, did you mean `compression`?"
        );
        assert_eq!(
            error(&recipe("chunking: { min: 16KiB, avrg: 64KiB }", "")),
            "recipe.yaml:4:25: unknown field `avrg`, did you mean `avg`?"
        );
        assert_eq!(
            error("inputs:\n  - path: data/\n    pth: x\noutput: a\n"),
            "recipe.yaml:3:5: unknown field `pth`, did you mean `path`?"
        );
    }

    #[test]
    fn unknown_field_without_a_close_match_lists_the_fields() {
        let err = parse_recipe(
            "inputs: []\noutput: a\nfrobnicate: 1\n",
            Path::new("recipe.yaml"),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "recipe.yaml:3:1: unknown field `frobnicate`; expected one of \
             `inputs`, `output`, `chunking`, `compression`, `publish`, `parent`, `encrypt`, `sign`"
        );
        assert_eq!(
            err.location(),
            Some(&SourceLocation {
                file: "recipe.yaml".into(),
                line: 3,
                column: 1
            })
        );
    }

    #[test]
    fn missing_required_fields() {
        assert_eq!(
            error("inputs:\n  - path: data/\n"),
            "recipe.yaml:1:1: missing required field `output`; add `output: <archive>.hxz`"
        );
        assert_eq!(
            error("output: a.hxz\n"),
            "recipe.yaml:1:1: missing required field `inputs`; \
             add `inputs:` with at least one `- path: <directory or file>`"
        );
        assert_eq!(
            error("inputs:\n  - {}\noutput: a.hxz\n"),
            "recipe.yaml:2:5: missing required field `path`; \
             each input needs `path: <directory or file>`"
        );
    }

    #[test]
    fn empty_values() {
        assert_eq!(
            error("inputs: []\noutput: a.hxz\n"),
            "recipe.yaml:1:9: `inputs` is empty; list at least one input, e.g. `- path: data/`"
        );
        assert_eq!(
            error("inputs:\n  - path: data\noutput: ''\n"),
            "recipe.yaml:3:9: `output` is empty; give it a value"
        );
        assert_eq!(
            error(&recipe("", "compression: { codec: '' }")),
            "recipe.yaml:5:23: `compression.codec` is empty; give it a value"
        );
    }

    #[test]
    fn zstd_level_out_of_range() {
        let text = recipe("", "compression: { codec: zstd, level: 40 }");
        assert_eq!(
            error(&text),
            "recipe.yaml:5:36: zstd level 40 out of range 1–22; choose a level in that range"
        );
        assert!(
            error(&recipe("", "compression: { level: 0 }"))
                .starts_with("recipe.yaml:5:23: zstd level 0 out of range 1–22")
        );
    }

    #[test]
    fn level_must_be_an_integer() {
        assert_eq!(
            error(&recipe("", "compression: { level: fast }")),
            "recipe.yaml:5:23: compression.level: `fast` is not a valid level; \
             write an integer such as `3`"
        );
        assert!(
            error(&recipe("", "compression: { level: 2.5 }"))
                .starts_with("recipe.yaml:5:23: compression.level: `2.5` is not a valid level")
        );
    }

    #[test]
    fn levelless_codecs_reject_a_level() {
        assert_eq!(
            error(&recipe("", "compression: { codec: lz4, level: 1 }")),
            "recipe.yaml:5:35: codec `lz4` takes no level; remove `level: 1`"
        );
        assert_eq!(
            error(&recipe("", "compression:\n  codec: none\n  level: 3")),
            "recipe.yaml:7:10: codec `none` takes no level; remove `level: 3`"
        );
    }

    #[test]
    fn chunk_size_out_of_range() {
        assert_eq!(
            error(&recipe("chunking: { min: 8, avg: 64KiB, max: 256KiB }", "")),
            "recipe.yaml:4:18: chunking.min (8 bytes) is out of range 64 bytes–1 MiB; \
             choose a value in that range"
        );
        assert_eq!(
            error(&recipe("chunking: { max: 32MiB }", "")),
            "recipe.yaml:4:18: chunking.max (32 MiB) is out of range 1 KiB–16 MiB; \
             choose a value in that range"
        );
        // Far beyond u32 still reports the value as written.
        assert!(
            error(&recipe("chunking: { avg: 8GiB }", ""))
                .starts_with("recipe.yaml:4:18: chunking.avg (8192 MiB) is out of range")
        );
    }

    #[test]
    fn chunk_size_must_be_even() {
        assert_eq!(
            error(&recipe("chunking: { avg: 65537 }", "")),
            "recipe.yaml:4:18: chunking.avg (65537 bytes) must be an even number of bytes"
        );
    }

    #[test]
    fn chunk_sizes_must_be_ordered() {
        assert_eq!(
            error(&recipe(
                "chunking: { min: 8KiB, avg: 4KiB, max: 256KiB }",
                ""
            )),
            "recipe.yaml:4:18: chunking.min (8 KiB) is larger than chunking.avg (4 KiB); \
             chunk sizes must satisfy min <= avg <= max"
        );
        // Only `max` is written: the error points at it and says the other is the default.
        assert_eq!(
            error(&recipe("chunking:\n  max: 32KiB", "")),
            "recipe.yaml:5:8: chunking.avg (64 KiB, the default) is larger than \
             chunking.max (32 KiB); chunk sizes must satisfy min <= avg <= max"
        );
    }

    #[test]
    fn unparsable_sizes() {
        assert_eq!(
            error(&recipe("chunking: { min: 16 KX }", "")),
            "recipe.yaml:4:18: chunking.min: cannot read `16 KX` as a size; \
             write a byte count like `65536` or a size like `64KiB`"
        );
        assert!(
            error(&recipe("chunking: { min: -4096 }", ""))
                .starts_with("recipe.yaml:4:18: chunking.min: cannot read `-4096` as a size")
        );
    }

    #[test]
    fn yaml_syntax_and_type_errors() {
        assert_eq!(
            error("inputs: [\n"),
            "recipe.yaml:1:9: unclosed bracket '['"
        );
        let err = error(&recipe("chunking: { min: [1] }", ""));
        assert!(err.starts_with("recipe.yaml:4:"), "{err}");
        assert!(err.contains("a byte size such as 65536"), "{err}");
        assert_eq!(
            error("inputs:\n  - path: data\noutput: a\noutput: b\n"),
            "recipe.yaml:4:1: duplicate mapping key `output` is not allowed here"
        );
    }

    #[test]
    fn unreadable_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipe.yaml");
        let err = load_recipe(&path).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot read recipe {}: No such file",
                path.display()
            )),
            "{message}"
        );
        assert!(matches!(err, RecipeError::Read { .. }));
        assert_eq!(err.location(), None);
    }
}
