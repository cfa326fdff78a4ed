//! `${VAR}` substitution in recipe string values.
//!
//! Syntax: `${NAME}` is replaced by the variable's value, where `NAME` matches
//! `[A-Za-z_][A-Za-z0-9_]*`; `$$` is a literal `$`. Any other `$` is an error,
//! so a shell-style `$HOME` is reported instead of being kept literally.

use super::error::InterpolationProblem;

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolationError {
    /// `${NAME}` where `env(NAME)` is `None`.
    Unset(String),
    /// Malformed `$` syntax.
    Syntax(InterpolationProblem),
}

/// Replaces every `${NAME}` in `text` with `env(NAME)` and every `$$` with `$`.
pub(crate) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let close = braced.find('}').ok_or(InterpolationError::Syntax(
                InterpolationProblem::Unterminated,
            ))?;
            let name = &braced[..close];
            check_name(name).map_err(InterpolationError::Syntax)?;
            let value = env(name).ok_or_else(|| InterpolationError::Unset(name.to_owned()))?;
            out.push_str(&value);
            rest = &braced[close + 1..];
        } else {
            return Err(InterpolationError::Syntax(InterpolationProblem::LoneDollar));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn check_name(name: &str) -> Result<(), InterpolationProblem> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err(InterpolationProblem::EmptyName),
        Some(first)
            if (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok(())
        }
        Some(_) => Err(InterpolationProblem::InvalidName {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DATA" => Some("/srv/data".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_escapes() {
        assert_eq!(interpolate("plain/path", &env), Ok("plain/path".to_owned()));
        assert_eq!(interpolate("${DATA}/x", &env), Ok("/srv/data/x".to_owned()));
        assert_eq!(interpolate("a${EMPTY}b", &env), Ok("ab".to_owned()));
        assert_eq!(interpolate("cost$$5", &env), Ok("cost$5".to_owned()));
        assert_eq!(interpolate("$${DATA}", &env), Ok("${DATA}".to_owned()));
        assert_eq!(interpolate("é${DATA}é", &env), Ok("é/srv/dataé".to_owned()));
    }

    #[test]
    fn reports_problems() {
        assert_eq!(
            interpolate("${NOPE}", &env),
            Err(InterpolationError::Unset("NOPE".to_owned()))
        );
        assert_eq!(
            interpolate("${DATA", &env),
            Err(InterpolationError::Syntax(
                InterpolationProblem::Unterminated
            ))
        );
        assert_eq!(
            interpolate("${}", &env),
            Err(InterpolationError::Syntax(InterpolationProblem::EmptyName))
        );
        assert_eq!(
            interpolate("${1X}", &env),
            Err(InterpolationError::Syntax(
                InterpolationProblem::InvalidName {
                    name: "1X".to_owned()
                }
            ))
        );
        assert_eq!(
            interpolate("$HOME", &env),
            Err(InterpolationError::Syntax(InterpolationProblem::LoneDollar))
        );
        assert_eq!(
            interpolate("end$", &env),
            Err(InterpolationError::Syntax(InterpolationProblem::LoneDollar))
        );
    }
}
