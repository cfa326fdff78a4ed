//! The per-input directory options: `include`, `exclude` and `symlinks`.
//!
//! Globs are checked here, at the recipe's location, and compiled again by the
//! walk with [`glob`], so the two always agree on the syntax.

use globset::{Glob, GlobBuilder};
use serde_saphyr::Spanned;

use super::error::{RecipeError, closest};
use super::plan::{InputPlan, SymlinkPolicy};
use super::raw::RawInput;
use super::validate::Context;

/// The options of one input, checked.
pub(crate) struct DirOptions {
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) symlinks: SymlinkPolicy,
}

/// Compiles one recipe glob the way the directory walk matches it: against the
/// entry name (`/`-separated, relative to the input), `*`, `?` and classes never
/// match `/`, `**` matches any number of whole components, `{a,b}` alternatives.
pub(crate) fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// Checks the directory options of input `index`.
pub(crate) fn dir_options(
    index: usize,
    raw: &RawInput,
    cx: &Context<'_>,
) -> Result<DirOptions, RecipeError> {
    let include = globs(
        &format!("inputs[{index}].include"),
        raw.include.as_ref(),
        cx,
    )?;
    let exclude = globs(
        &format!("inputs[{index}].exclude"),
        raw.exclude.as_ref(),
        cx,
    )?;
    let symlinks = match &raw.symlinks {
        None => SymlinkPolicy::default(),
        Some(value) => SymlinkPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == value.value)
            .ok_or_else(|| {
                let names = SymlinkPolicy::ALL.map(SymlinkPolicy::as_str);
                RecipeError::UnknownSymlinkPolicy {
                    at: cx.at(&value.referenced),
                    field: format!("inputs[{index}].symlinks"),
                    written: value.value.clone(),
                    suggestion: closest(&value.value.to_lowercase(), &names),
                }
            })?,
    };
    Ok(DirOptions {
        include,
        exclude,
        symlinks,
    })
}

/// A single-file input takes none of the directory options.
pub(crate) fn check_file_input(
    index: usize,
    raw: &RawInput,
    input: &InputPlan,
    cx: &Context<'_>,
) -> Result<(), RecipeError> {
    if input.path.is_dir() {
        return Ok(());
    }
    let set = [
        ("include", raw.include.as_ref().map(|v| &v.referenced)),
        ("exclude", raw.exclude.as_ref().map(|v| &v.referenced)),
        ("symlinks", raw.symlinks.as_ref().map(|v| &v.referenced)),
    ];
    match set.into_iter().find_map(|(key, at)| at.map(|at| (key, at))) {
        None => Ok(()),
        Some((key, at)) => Err(RecipeError::DirectoryOptionOnFile {
            at: cx.at(at),
            field: format!("inputs[{index}].{key}"),
            written: input.written.clone(),
        }),
    }
}

fn globs(
    field: &str,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    cx: &Context<'_>,
) -> Result<Vec<String>, RecipeError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(raw.value.len());
    for pattern in &raw.value {
        let invalid = |problem: String| RecipeError::InvalidGlob {
            at: cx.at(&pattern.referenced),
            field: field.to_owned(),
            pattern: pattern.value.clone(),
            problem,
        };
        let text = pattern.value.as_str();
        if text.is_empty() {
            return Err(invalid(
                "is empty; remove it, or write a pattern such as `**/*.tmp`".into(),
            ));
        }
        if text.starts_with('/') {
            return Err(invalid(format!(
                "can never match: names are relative to the input; write `{}`",
                text.trim_start_matches('/')
            )));
        }
        if text.len() > 1 && text.ends_with('/') {
            return Err(invalid(format!(
                "can never match: names do not end in `/`; write `{}` (a folder's \
                 pattern covers everything in it when excluded)",
                text.trim_end_matches('/')
            )));
        }
        glob(text).map_err(|e| invalid(format!("is not a valid glob: {}", e.kind())))?;
        out.push(pattern.value.clone());
    }
    Ok(out)
}
