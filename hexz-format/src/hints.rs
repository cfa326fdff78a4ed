//! Parent location hints: how a thin child's hint becomes a place to open
//! ([`resolve_hint`]), and which places a reader opens without being told
//! ([`ParentPolicy`]).
//!
//! A hint is untrusted input: whoever wrote the child chose it, and nothing in an
//! unsigned archive vouches for it. A reader therefore follows a hint only to the
//! child's own store, and only to a regular file there (the source refuses FIFOs,
//! devices and folders), and never echoes what it finds:
//!
//! | the child is read from | a hint is followed when it resolves to |
//! |---|---|
//! | a local path or a `file://` URL | a local path or `file://` URL (anywhere: `..` and absolute paths too) |
//! | a URL of another scheme (`s3://bucket/…`, `http(s)://host/…`, `memory://…`) | a URL of the same scheme and the same authority (bucket, or host and port), whose path lies under the child's folder (everything up to the last `/` of the child's path), after `.` and `..` segments are removed; no percent-encoded `.`, `/` or `\` |
//!
//! Anything else — a local child naming a URL, a remote child naming a local file,
//! another host or bucket, a sibling folder of a remote child — is refused with
//! [`crate::Error::ParentRefused`] unless the reader allows it: by naming the
//! parent ([`ParentPolicy::explicit`], matched by root hash, wherever the hint
//! points) or by allowing a place ([`ParentPolicy::allowed`], URL or path
//! prefixes). docs/SECURITY.md ("Parent hints") gives the reasons.
//!
//! ```
//! use hexz_format::hints::{ParentPolicy, HintRefusal};
//! let strict = ParentPolicy::default();
//! assert_eq!(strict.locate("s3://b/v/2.hxz", "1.hxz").unwrap(), "s3://b/v/1.hxz");
//! assert_eq!(strict.locate("out/2.hxz", "../v1/1.hxz").unwrap(), "out/../v1/1.hxz");
//! assert!(matches!(strict.locate("s3://b/v/2.hxz", "s3://other/1.hxz"), Err(HintRefusal::OtherAuthority { .. })));
//! assert!(matches!(strict.locate("out/2.hxz", "http://host/1.hxz"), Err(HintRefusal::LocalChildNamesUrl)));
//! assert!(matches!(strict.locate("s3://b/v/2.hxz", "../1.hxz"), Err(HintRefusal::OutsideFolder { .. })));
//! let allowed = ParentPolicy { allowed: vec!["s3://b/".into()], ..ParentPolicy::default() };
//! assert_eq!(allowed.locate("s3://b/v/2.hxz", "../1.hxz").unwrap(), "s3://b/1.hxz");
//! ```

use std::fmt;

/// Where the parent hinted `hint` of the archive at `child` lives.
///
/// A hint that is a URL (`scheme://…`) or an absolute path is used as is. A relative
/// hint is joined to the child's folder: for a URL child, everything up to its last
/// `/`, with `.` and `..` segments of the path removed (object stores do not
/// normalize keys); for a local child, its parent folder (the file system resolves
/// `..`). Whether the result may be opened is [`ParentPolicy::locate`]'s question.
///
/// ```
/// use hexz_format::parents::resolve_hint;
/// assert_eq!(resolve_hint("s3://b/v/2.hxz", "1.hxz"), "s3://b/v/1.hxz");
/// assert_eq!(resolve_hint("http://h/a/b/3.hxz", "../1.hxz"), "http://h/a/1.hxz");
/// assert_eq!(resolve_hint("out/2.hxz", "../1.hxz"), "out/../1.hxz");
/// assert_eq!(resolve_hint("2.hxz", "1.hxz"), "1.hxz");
/// assert_eq!(resolve_hint("out/2.hxz", "https://h/1.hxz"), "https://h/1.hxz");
/// ```
pub fn resolve_hint(child: &str, hint: &str) -> String {
    if has_scheme(hint) || hint.starts_with('/') {
        return hint.to_string();
    }
    if let Some(url) = Url::parse(child) {
        let dir = match url.path.rfind('/') {
            Some(i) => &url.path[..=i],
            None => "/",
        };
        return format!(
            "{}://{}{}",
            url.scheme,
            url.authority,
            normalize_segments(&format!("{dir}{hint}"))
        );
    }
    match child.rfind('/') {
        Some(i) => format!("{}{hint}", &child[..=i]),
        None => hint.to_string(),
    }
}

/// Whether `s` starts with `scheme://` (letters, digits, `+ - .`).
pub(crate) fn has_scheme(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Remove `.` and `..` segments from an absolute URL path (`..` at the root stays
/// at the root, as RFC 3986 says).
fn normalize_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let trailing = path.ends_with('/');
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut joined = format!("/{}", out.join("/"));
    if trailing && joined.len() > 1 {
        joined.push('/');
    }
    joined
}

/// A URL cut into the parts the policy compares.
struct Url<'a> {
    scheme: &'a str,
    authority: &'a str,
    /// From the first `/` after the authority (empty when there is none).
    path: &'a str,
}

impl<'a> Url<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        if !has_scheme(s) {
            return None;
        }
        let (scheme, rest) = s.split_once("://")?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        Some(Self {
            scheme,
            authority,
            path,
        })
    }
}

/// A local file: no scheme, or `file://`.
fn is_local(location: &str) -> bool {
    Url::parse(location).is_none_or(|u| u.scheme.eq_ignore_ascii_case("file"))
}

/// Which parents a reader opens, besides those the policy lets hints reach.
///
/// The default follows hints only within the child's own store (module docs).
/// Both lists come from the user (CLI `--parent` and `--allow-parent-url`, Python
/// `parents=` and `allow_parent_urls=`), never from an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentPolicy {
    /// Parent archives named by the reader (paths or URLs). When a parent is first
    /// needed, each is opened once; a parent whose root hash one of them has is
    /// served by it, wherever its hint points.
    pub explicit: Vec<String>,
    /// Places hints may point to besides the child's own: URL prefixes
    /// (`s3://bucket/datasets/`, `https://host/`) or local path prefixes. A
    /// location is allowed when, after `.` and `..` segments are removed, it
    /// equals a prefix or continues it at a `/` (so `s3://b/data` allows
    /// `s3://b/data/x.hxz`, not `s3://b/data-private/x.hxz`).
    pub allowed: Vec<String>,
}

/// Why a hint is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HintRefusal {
    /// A child read from the local file system names a URL.
    LocalChildNamesUrl,
    /// A child read from a URL names a local file.
    RemoteChildNamesLocalFile,
    /// The hint names another scheme than the child's.
    OtherScheme {
        /// The child's scheme.
        child: String,
    },
    /// The hint names another bucket or host than the child's.
    OtherAuthority {
        /// The child's bucket or host (and port).
        child: String,
    },
    /// The hint leaves the child's folder.
    OutsideFolder {
        /// The folder (URL up to the last `/` of the child's path).
        folder: String,
    },
    /// The hint holds a percent-encoded `.`, `/` or `\`, which a server might
    /// decode into a path that leaves the child's folder.
    EncodedSeparator,
}

impl fmt::Display for HintRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalChildNamesUrl => f.write_str("a URL named by a local archive"),
            Self::RemoteChildNamesLocalFile => {
                f.write_str("a local file named by a remote archive")
            }
            Self::OtherScheme { child } => {
                write!(f, "another scheme than the child's `{child}://`")
            }
            Self::OtherAuthority { child } => {
                write!(f, "another bucket or host than the child's `{child}`")
            }
            Self::OutsideFolder { folder } => write!(f, "outside the child's folder `{folder}`"),
            Self::EncodedSeparator => f.write_str("a percent-encoded `.`, `/` or `\\` in the hint"),
        }
    }
}

impl ParentPolicy {
    /// Where to open the parent hinted `hint` of the archive at `child`, or why
    /// not: the hint resolved against the child ([`resolve_hint`], and for URLs
    /// `.`/`..` removed), if the module's rules or [`ParentPolicy::allowed`] let
    /// it be opened.
    pub fn locate(&self, child: &str, hint: &str) -> Result<String, HintRefusal> {
        let location = normalized(&resolve_hint(child, hint));
        // What is checked must be what the server sees: no separators it might
        // decode after the check (for any URL, allowed or not).
        let lower = hint.to_ascii_lowercase();
        if !is_local(&location) && ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
            return Err(HintRefusal::EncodedSeparator);
        }
        if self.allowed.iter().any(|p| within(&location, p)) {
            // A local path is opened as it was compared: absolute, `..` removed.
            return Ok(match comparable(&location) {
                Some(c) if !has_scheme(&location) => c["file://".len()..].to_string(),
                _ => location,
            });
        }
        match (is_local(child), is_local(&location)) {
            (true, true) => return Ok(location),
            (true, false) => return Err(HintRefusal::LocalChildNamesUrl),
            (false, true) => return Err(HintRefusal::RemoteChildNamesLocalFile),
            (false, false) => {}
        }
        let (Some(c), Some(l)) = (Url::parse(child), Url::parse(&location)) else {
            return Err(HintRefusal::RemoteChildNamesLocalFile);
        };
        if !c.scheme.eq_ignore_ascii_case(l.scheme) {
            return Err(HintRefusal::OtherScheme {
                child: c.scheme.to_string(),
            });
        }
        if !c.authority.eq_ignore_ascii_case(l.authority) {
            return Err(HintRefusal::OtherAuthority {
                child: c.authority.to_string(),
            });
        }
        let folder = match c.path.rfind('/') {
            Some(i) => &c.path[..=i],
            None => "/",
        };
        if !l.path.starts_with(folder) {
            return Err(HintRefusal::OutsideFolder {
                folder: format!("{}://{}{folder}", c.scheme, c.authority),
            });
        }
        Ok(location)
    }
}

/// A URL with `.` and `..` removed from its path; anything else as it is.
fn normalized(location: &str) -> String {
    match Url::parse(location) {
        Some(u) if !u.path.is_empty() => {
            format!(
                "{}://{}{}",
                u.scheme,
                u.authority,
                normalize_segments(u.path)
            )
        }
        _ => location.to_string(),
    }
}

/// The form prefixes are compared in: URLs normalized; local paths made absolute
/// (against the working folder) with `.` and `..` removed, as `file://` URLs.
fn comparable(location: &str) -> Option<String> {
    if has_scheme(location) {
        return Some(normalized(location));
    }
    let absolute = std::path::absolute(location).ok()?;
    let path = absolute.to_str()?;
    Some(format!("file://{}", normalize_segments(path)))
}

/// Whether `location` equals `prefix` or continues it at a `/`.
fn within(location: &str, prefix: &str) -> bool {
    let (Some(location), Some(prefix)) = (comparable(location), comparable(prefix)) else {
        return false;
    };
    match location.strip_prefix(&prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// `text` for an error message: quoted and escaped (no control characters reach
/// a terminal), at most 256 characters of it (a hint may be 4 KiB).
pub(crate) fn quoted(text: &str) -> String {
    const MAX: usize = 256;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}… ({} bytes)", &text[..end], text.len()),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hints_resolve_against_the_child() {
        assert_eq!(resolve_hint("/a/b/c.hxz", "p.hxz"), "/a/b/p.hxz");
        assert_eq!(resolve_hint("/a/b/c.hxz", "/x/p.hxz"), "/x/p.hxz");
        assert_eq!(resolve_hint("s3://b/c.hxz", "../p.hxz"), "s3://b/p.hxz");
        assert_eq!(resolve_hint("s3://b", "p.hxz"), "s3://b/p.hxz");
        assert_eq!(
            resolve_hint("file:///t/v/c.hxz", "./old/p.hxz"),
            "file:///t/v/old/p.hxz"
        );
    }

    #[test]
    fn local_children_follow_local_hints_only() {
        let p = ParentPolicy::default();
        assert_eq!(p.locate("/a/b/c.hxz", "p.hxz").unwrap(), "/a/b/p.hxz");
        assert_eq!(
            p.locate("/a/b/c.hxz", "../../x/p.hxz").unwrap(),
            "/a/b/../../x/p.hxz"
        );
        assert_eq!(p.locate("/a/b/c.hxz", "/x/p.hxz").unwrap(), "/x/p.hxz");
        assert_eq!(
            p.locate("c.hxz", "file:///x/p.hxz").unwrap(),
            "file:///x/p.hxz"
        );
        assert_eq!(
            p.locate("file:///t/v/c.hxz", "../p.hxz").unwrap(),
            "file:///t/p.hxz"
        );
        for url in ["http://evil/p.hxz", "s3://bucket/p.hxz", "memory://m/p.hxz"] {
            assert_eq!(
                p.locate("/a/b/c.hxz", url),
                Err(HintRefusal::LocalChildNamesUrl),
                "{url}"
            );
        }
    }

    #[test]
    fn remote_children_stay_in_their_folder() {
        let p = ParentPolicy::default();
        let child = "s3://bucket/data/v2/c.hxz";
        assert_eq!(
            p.locate(child, "p.hxz").unwrap(),
            "s3://bucket/data/v2/p.hxz"
        );
        assert_eq!(
            p.locate(child, "old/./p.hxz").unwrap(),
            "s3://bucket/data/v2/old/p.hxz"
        );
        assert_eq!(
            p.locate(child, "s3://bucket/data/v2/p.hxz").unwrap(),
            "s3://bucket/data/v2/p.hxz"
        );
        assert_eq!(
            p.locate(child, "sub/../p.hxz").unwrap(),
            "s3://bucket/data/v2/p.hxz"
        );
        let outside = |hint: &str| p.locate(child, hint).unwrap_err();
        assert!(matches!(
            outside("../v1/p.hxz"),
            HintRefusal::OutsideFolder { .. }
        ));
        assert!(matches!(
            outside("s3://bucket/data/v2/../v1/p.hxz"),
            HintRefusal::OutsideFolder { .. }
        ));
        assert!(matches!(
            outside("s3://other/data/v2/p.hxz"),
            HintRefusal::OtherAuthority { .. }
        ));
        assert!(matches!(
            outside("http://bucket/data/v2/p.hxz"),
            HintRefusal::OtherScheme { .. }
        ));
        assert_eq!(
            outside("/etc/passwd"),
            HintRefusal::RemoteChildNamesLocalFile
        );
        assert_eq!(
            outside("file:///etc/passwd"),
            HintRefusal::RemoteChildNamesLocalFile
        );
        assert_eq!(
            outside("x/%2E%2E/%2e%2e/p.hxz"),
            HintRefusal::EncodedSeparator
        );
        // Hosts: port and user info are part of the authority.
        let web = "http://host:8080/a/c.hxz";
        assert_eq!(p.locate(web, "p.hxz").unwrap(), "http://host:8080/a/p.hxz");
        assert_eq!(
            p.locate(web, "http://HOST:8080/a/p.hxz").unwrap(),
            "http://HOST:8080/a/p.hxz"
        );
        for hint in [
            "http://host/a/p.hxz",
            "http://host:8080@evil/a/p.hxz",
            "http://evil:8080/a/p.hxz",
        ] {
            assert!(
                matches!(p.locate(web, hint), Err(HintRefusal::OtherAuthority { .. })),
                "{hint}"
            );
        }
    }

    #[test]
    fn allowed_prefixes_end_at_a_segment() {
        let p = ParentPolicy {
            allowed: vec!["s3://bucket/data".into(), "http://mirror/".into()],
            ..ParentPolicy::default()
        };
        let child = "s3://bucket/data/v2/c.hxz";
        assert_eq!(
            p.locate(child, "../v1/p.hxz").unwrap(),
            "s3://bucket/data/v1/p.hxz"
        );
        assert!(p.locate(child, "../../data-private/p.hxz").is_err());
        assert!(
            p.locate(child, "s3://bucket/data/../private/p.hxz")
                .is_err()
        );
        assert_eq!(
            p.locate("/a/c.hxz", "http://mirror/x/p.hxz").unwrap(),
            "http://mirror/x/p.hxz"
        );
        assert!(p.locate("/a/c.hxz", "http://mirror.evil/x/p.hxz").is_err());
        assert!(p.locate("/a/c.hxz", "http://mirror@evil/x/p.hxz").is_err());
        assert_eq!(
            p.locate("/a/c.hxz", "http://mirror/x/%2E%2E/p.hxz"),
            Err(HintRefusal::EncodedSeparator)
        );
        // A local prefix lets a remote child name a local file under it.
        let cwd = std::env::current_dir().unwrap();
        let local = ParentPolicy {
            allowed: vec![cwd.join("cache").display().to_string()],
            ..ParentPolicy::default()
        };
        let inside = cwd.join("cache/p.hxz").display().to_string();
        assert_eq!(local.locate(child, &inside).unwrap(), inside);
        let escape = cwd.join("cache/../secret.hxz").display().to_string();
        assert!(local.locate(child, &escape).is_err());
    }
}
