//! Thin snapshots in the pipeline: opening parents through the registry's
//! transports, preparing a build's parent chain, and `hexz log`.
//!
//! The format layer ([`hexz_format::parents`]) defines the parents section and asks
//! a [`ParentResolver`] to open each parent; [`RegistryResolver`] is that resolver
//! over [`Registry::open_source`], so a parent may be a local path or any URL a
//! transport serves (`s3://`, `http(s)://`, `file://`), its hint resolved against
//! the child's own location.

use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hexz_format::parents::ResolveError;
use hexz_format::{
    Archive, Hash32, KdfLimits, ParentArchive, ParentPolicy, ParentResolver, ParentSet,
    ReadOptions, Unlock,
};
use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::registry::{Registry, url_scheme};

/// Opens parents of thin children with a registry's transports and codecs.
///
/// Which locations it is asked to open is the reader's decision
/// ([`hexz_format::hints::ParentPolicy`], checked before the resolver is
/// called); the parents it opens get the same policy, keys and KDF limits for
/// their own parents.
#[derive(Debug, Clone)]
pub struct RegistryResolver {
    registry: Registry,
    /// Keys offered to encrypted parents (those of the child).
    unlock: Unlock,
    /// Key-derivation limits for encrypted parents (those of the child).
    kdf_limits: KdfLimits,
    /// The parent policy of the child, for the parents' own parents.
    parents: ParentPolicy,
    /// An archive served by root hash without asking the registry: one written
    /// but not yet stored (a compaction's new chain root, `volume/retain.rs`).
    held: Option<Archive>,
}

impl RegistryResolver {
    /// A resolver over `registry` (parents must not be encrypted).
    pub fn new(registry: Registry) -> Self {
        Self::with_unlock(registry, Unlock::default())
    }

    /// A resolver over `registry` that offers `unlock` to encrypted parents (the
    /// keys the child was opened with: a chain shares its keys).
    pub fn with_unlock(registry: Registry, unlock: Unlock) -> Self {
        Self {
            registry,
            unlock,
            kdf_limits: KdfLimits::default(),
            parents: ParentPolicy::default(),
            held: None,
        }
    }

    /// A resolver over `registry` for a child opened with `options`: its keys,
    /// KDF limits and parent policy carry over to the parents.
    pub fn for_options(registry: Registry, options: &ReadOptions) -> Self {
        Self {
            kdf_limits: options.kdf_limits,
            parents: options.parents.clone(),
            ..Self::with_unlock(registry, options.unlock.clone())
        }
    }

    /// This resolver, answering a parent of `archive`'s root hash with `archive`
    /// itself (wherever its hint points), and every other parent as before.
    pub fn holding(self, archive: Archive) -> Self {
        Self {
            held: Some(archive),
            ..self
        }
    }

    /// Parents serve chunk blobs only, read through the child's chunk cache:
    /// their own caches stay small.
    fn parent_read_options(&self) -> ReadOptions {
        ReadOptions {
            unlock: self.unlock.clone(),
            kdf_limits: self.kdf_limits,
            parents: self.parents.clone(),
            chunk_cache_bytes: 0,
            page_cache_bytes: 1 << 20,
            readahead_bytes: 0,
            verify_chunks: false,
            ..ReadOptions::default()
        }
    }
}

impl ParentResolver for RegistryResolver {
    fn open_parent(
        &self,
        location: &str,
        expected_root: &Hash32,
    ) -> std::result::Result<Archive, ResolveError> {
        if let Some(held) = self
            .held
            .as_ref()
            .filter(|a| a.root_hash() == *expected_root)
        {
            return Ok(held.clone());
        }
        let source = self
            .registry
            .open_source(location)
            .map_err(|e| Box::new(e) as ResolveError)?;
        let archive = Archive::open(source, &self.registry, self.parent_read_options())?;
        // A parent's own index leaves may be deltas against its parents (FORMAT.md
        // §14.3.5): a writer reading its chunk index follows them, one hop.
        Ok(archive.with_parent_resolver(std::sync::Arc::new(self.clone())))
    }
}

/// The parent chain a build dedups against: the archive at `parent` (a path or
/// URL) and every ancestor it names, each opened and checked against its root
/// hash, with location hints made relative to `output` where both are local.
/// `options` open the parent: its keys open encrypted parents (a chain shares
/// its keys), its KDF limits and parent policy apply to the chain.
pub fn parent_set(
    parent: &str,
    output: &Path,
    registry: &Registry,
    options: ReadOptions,
) -> Result<ParentSet> {
    if url_scheme(parent).is_none() {
        let same = match (std::fs::canonicalize(parent), std::fs::canonicalize(output)) {
            (Ok(p), Ok(o)) => p == o,
            _ => false,
        };
        if same {
            return Err(PipelineError::ParentIsOutput {
                path: PathBuf::from(parent),
            });
        }
    }
    let direct =
        crate::open_archive(parent, registry, options).map_err(|e| PipelineError::Parent {
            location: parent.to_string(),
            error: Box::new(e),
        })?;
    parent_set_of(direct, output)
}

/// [`parent_set`] for a parent already open (with the keys it needs): `direct`
/// and every ancestor it names, hints made relative to `output` where both are
/// local.
pub fn parent_set_of(direct: Archive, output: &Path) -> Result<ParentSet> {
    let location = direct.source_name();
    if url_scheme(&location).is_none()
        && let (Ok(p), Ok(o)) = (
            std::fs::canonicalize(&location),
            std::fs::canonicalize(output),
        )
        && p == o
    {
        return Err(PipelineError::ParentIsOutput {
            path: PathBuf::from(location),
        });
    }
    let ancestors = direct.parents()?;
    let mut chain = Vec::with_capacity(ancestors.len() + 1);
    chain.push(ParentArchive {
        hint: hint_for(output, &direct.source_name())?,
        archive: direct.clone(),
    });
    for i in 0..ancestors.len() {
        let archive = direct.parent((i + 1) as u16)?;
        chain.push(ParentArchive {
            hint: hint_for(output, &archive.source_name())?,
            archive,
        });
    }
    Ok(ParentSet::new(chain)?)
}

/// The hint a child written at `output` records for the parent at `location`: a
/// URL as is; a local path relative to the child's folder.
fn hint_for(output: &Path, location: &str) -> Result<String> {
    if url_scheme(location).is_some() {
        return Ok(location.to_string());
    }
    let absolute = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .map_err(PipelineError::io(p))
    };
    let target = absolute(Path::new(location))?;
    let out_dir = match output.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => absolute(d)?,
        None => absolute(Path::new("."))?,
    };
    let rel = relative_path(&out_dir, &target);
    rel.to_str()
        .map(str::to_string)
        .ok_or(PipelineError::UnsupportedInput {
            path: target,
            reason: "a parent's path must be valid UTF-8 to be recorded as its location hint",
        })
}

/// `target` relative to the folder `from` (both absolute).
fn relative_path(from: &Path, target: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    rel
}

/// One archive of a chain, for `hexz log`.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    /// 0 for the archive itself, *k* for its *k*-th parent (nearest first).
    pub position: usize,
    /// Where it was found (or looked for).
    pub location: String,
    /// Root hash, hex: the archive's identity (for a parent: the one the child
    /// expects).
    pub root_hash: String,
    /// `ok`, `missing` (cannot be opened), `mismatch` (another archive is there)
    /// or `refused` (its hint leads outside the child's store or folder: not
    /// looked for, see [`hexz_format::hints`]).
    pub status: &'static str,
    /// Why it is missing or mismatched.
    pub error: Option<String>,
    /// When the file or object was last written (UTC, RFC 3339), if the store says.
    pub date: Option<String>,
    /// Archive size in bytes (as recorded by the child when the archive cannot be
    /// opened).
    pub archive_bytes: u64,
    /// Stored bytes of the chunks this archive holds itself.
    pub own_chunk_bytes: Option<u64>,
    /// Bytes of its logical stream.
    pub logical_bytes: Option<u64>,
    /// Entries.
    pub entries: Option<u64>,
    /// Parents: logical bytes of the head archive read from this one.
    pub serves_bytes: Option<u64>,
    /// Parents: chunk records of the head archive read from this one.
    pub serves_chunks: Option<u64>,
}

/// The chain of `archive`: itself, then every parent it names, nearest first.
/// Parents that cannot be opened or have another root hash are reported in their
/// link's status, not as an error.
pub fn log(archive: &Archive) -> Result<Vec<ChainLink>> {
    let mut links = vec![link(0, archive, None)];
    for (i, p) in archive.parents()?.iter().enumerate() {
        let position = i + 1;
        let mut l = match archive.parent(position as u16) {
            Ok(parent) => link(position, &parent, Some((p.chunks, p.bytes))),
            Err(e) => {
                let (status, location) = match &e {
                    hexz_format::Error::ParentMismatch { location, .. } => {
                        ("mismatch", location.clone())
                    }
                    hexz_format::Error::ParentUnavailable { location, .. } => {
                        ("missing", location.clone())
                    }
                    hexz_format::Error::ParentRefused { location, .. } => {
                        ("refused", location.clone())
                    }
                    _ => ("missing", p.hint.clone()),
                };
                ChainLink {
                    position,
                    location,
                    root_hash: p.root_hash.to_string(),
                    status,
                    error: Some(e.to_string()),
                    date: None,
                    archive_bytes: p.archive_size,
                    own_chunk_bytes: None,
                    logical_bytes: None,
                    entries: None,
                    serves_bytes: Some(p.bytes),
                    serves_chunks: Some(p.chunks),
                }
            }
        };
        l.root_hash = p.root_hash.to_string();
        links.push(l);
    }
    Ok(links)
}

fn link(position: usize, a: &Archive, serves: Option<(u64, u64)>) -> ChainLink {
    let s = a.stats();
    ChainLink {
        position,
        location: a.source_name(),
        root_hash: a.root_hash().to_string(),
        status: "ok",
        error: None,
        date: a.modified().and_then(rfc3339),
        archive_bytes: a.archive_size(),
        own_chunk_bytes: Some(s.stored_chunk_bytes),
        logical_bytes: Some(s.logical_size),
        entries: Some(s.entry_count),
        serves_bytes: serves.map(|(_, bytes)| bytes),
        serves_chunks: serves.map(|(chunks, _)| chunks),
    }
}

/// `2026-11-22T03:04:05Z` (UTC, whole seconds); `None` before 1970.
pub fn rfc3339(t: SystemTime) -> Option<String> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn relative_paths_between_folders() {
        let r = |a: &str, b: &str| relative_path(Path::new(a), Path::new(b));
        assert_eq!(r("/a/b", "/a/b/c.hxz"), PathBuf::from("c.hxz"));
        assert_eq!(r("/a/b", "/a/c.hxz"), PathBuf::from("../c.hxz"));
        assert_eq!(r("/a/b", "/x/y/c.hxz"), PathBuf::from("../../x/y/c.hxz"));
    }

    #[test]
    fn dates_are_utc_rfc3339() {
        let t = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s)).unwrap();
        assert_eq!(t(0), "1970-01-01T00:00:00Z");
        assert_eq!(t(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(t(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }
}
