//! Publishing: put a built archive at a URL (`s3://bucket/key`, `file:///path`,
//! any transport that can write).
//!
//! [`publish`] opens the local archive (its tail must check out), then asks the
//! destination what is there: an object of the same size whose archive has the
//! same root hash is the same archive, and nothing is uploaded. Otherwise the
//! transport uploads it ([`Transport::put`](crate::Transport::put): in parts, in
//! parallel, retried, visible only when complete), and the published object is
//! opened again to check its size and root hash.
//!
//! ```no_run
//! use hexz_pipeline::{PublishOptions, Registry, publish};
//! let report = publish(
//!     "out/data.hxz".as_ref(),
//!     "s3://bucket/datasets/data.hxz",
//!     &Registry::default(),
//!     &PublishOptions::default(),
//! )?;
//! println!("{} bytes uploaded: {}", report.bytes, report.uploaded);
//! # Ok::<(), hexz_pipeline::PipelineError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hexz_format::crypto::envelope::read_tail;
use hexz_format::destination::{self, Writes};
use hexz_format::{Archive, FileSource, Hash32, ReadAt, ReadOptions};

use crate::build::{BuildOptions, BuildReport};
use crate::error::{PipelineError, Result};
use crate::recipe::{Plan, RecipeError};
use crate::registry::{PutOptions, Registry, url_scheme};

/// How to publish.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// No progress bar.
    pub quiet: bool,
    /// Part size and parallelism of the upload.
    pub put: PutOptions,
    /// Keys that open the archive. Root hashes come from the tails, which need
    /// no key, but an encrypted archive's parents list is sealed: without a key
    /// that opens it, publishing it fails with `KeyRequired` unless the caller
    /// knows it has no parents (`self_contained`).
    pub unlock: hexz_format::crypto::Unlock,
    /// Key-derivation limits for opening the archive with `unlock`.
    pub kdf_limits: hexz_format::KdfLimits,
    /// The caller knows the archive is not a thin child (a recipe without
    /// `parent:`): the parents check at the destination is skipped, so an
    /// archive sealed only to X25519 recipients publishes from a machine that
    /// cannot open it.
    pub self_contained: bool,
    /// Places a parent's location hint may lead to besides the destination's
    /// folder (URL or path prefixes, as [`hexz_format::ParentPolicy::allowed`]):
    /// a needed parent is looked for only where the published child's readers
    /// will follow its hint, so a hint naming another host or bucket is refused
    /// (nothing is sent there) unless allowed here.
    pub allow_parent_urls: Vec<String>,
    /// A local destination (`file://`, a path) that holds a file other than a
    /// hexz archive is replaced (`--force`); never a read-only one.
    pub force: bool,
}

/// What [`publish`] did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// The local archive.
    pub archive: PathBuf,
    /// Where it was published (a plain destination path becomes a `file://` URL).
    pub url: String,
    /// The archive's root hash (checked on the published object).
    pub root_hash: Hash32,
    /// The archive's size in bytes.
    pub size: u64,
    /// Bytes uploaded (0 when the destination already held this archive).
    pub bytes: u64,
    /// Parts uploaded.
    pub parts: u64,
    /// Whether anything was uploaded.
    pub uploaded: bool,
    /// Incomplete multipart uploads of the key (left by killed publishes)
    /// aborted before uploading, and why they could not be checked, if they
    /// could not ([`hexz_opendal::multipart`]).
    pub stale_uploads: hexz_opendal::StaleUploads,
    /// Wall time.
    pub elapsed: Duration,
}

/// What the destination holds before publishing.
enum Remote {
    /// Nothing.
    Missing,
    /// This very archive (same size and root hash).
    Same,
    /// Something else, to be replaced.
    Different,
}

/// Publish the archive at `archive` to `url` through `registry`'s transports.
pub fn publish(
    archive: &Path,
    url: &str,
    registry: &Registry,
    options: &PublishOptions,
) -> Result<PublishReport> {
    let started = Instant::now();
    let url = destination_url(url)?;
    let source: Arc<dyn ReadAt> = Arc::new(FileSource::open(archive)?);
    let root_hash = read_tail(source.as_ref())?.root;
    let size = source.size();
    let transport = registry
        .transport_for(&url)?
        .ok_or_else(|| PipelineError::Publish {
            archive: archive.to_path_buf(),
            url: url.clone(),
            error: "the destination must be a URL".into(),
        })?;
    let mut report = PublishReport {
        archive: archive.to_path_buf(),
        url: url.clone(),
        root_hash,
        size,
        bytes: 0,
        parts: 0,
        uploaded: false,
        stale_uploads: hexz_opendal::StaleUploads::default(),
        elapsed: Duration::ZERO,
    };
    if !options.self_contained {
        check_remote_parents(&source, archive, &url, registry, options)?;
    }
    match remote_state(registry, &url, size, root_hash)? {
        Remote::Same => {
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        Remote::Missing | Remote::Different => {}
    }
    // A local destination replaces a hexz archive, never another file or a
    // read-only one (hexz_format::destination).
    if let Ok(hexz_opendal::Location::Fs { path }) = hexz_opendal::Location::parse(&url) {
        destination::check(Path::new(&path), Writes::Archive, options.force)
            .map_err(hexz_format::Error::from)?;
    }
    let bar = crate::progress::bytes_bar(size, options.quiet, "publish");
    let put = transport
        .put(&url, source.as_ref(), &options.put, &mut |sent| {
            bar.set_position(sent)
        })
        .map_err(|error| PipelineError::Publish {
            archive: archive.to_path_buf(),
            url: url.clone(),
            error,
        });
    bar.finish_and_clear();
    let put = put?;
    // Read back what the store now holds: size and root hash must match.
    match remote_state(registry, &url, size, root_hash)? {
        Remote::Same => {}
        Remote::Missing | Remote::Different => {
            return Err(PipelineError::Publish {
                archive: archive.to_path_buf(),
                url: url.clone(),
                error: "the published object does not match the archive (size or root hash)".into(),
            });
        }
    }
    report.bytes = put.bytes;
    report.parts = put.parts;
    report.stale_uploads = put.stale;
    report.uploaded = true;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The recipe's `publish:` transport, resolved before anything is built; an
/// unknown scheme is an error at the recipe's `publish.url`.
pub fn check_publish_stage(plan: &Plan, registry: &Registry) -> Result<()> {
    let Some(p) = &plan.publish else {
        return Ok(());
    };
    match registry.transport_for(&p.url) {
        Ok(_) => Ok(()),
        Err(PipelineError::UnknownPlugin { name, known, .. }) => {
            Err(RecipeError::UnknownTransport {
                at: p.url_at.clone(),
                field: "publish.url",
                scheme: name,
                known,
            }
            .into())
        }
        Err(e) => Err(e),
    }
}

/// Run a recipe: build the archive, then, when the recipe has a `publish:`
/// stage, publish it there (nothing is uploaded if the URL already holds it).
pub fn build_and_publish(
    plan: &Plan,
    registry: &Registry,
    options: &BuildOptions,
) -> Result<(BuildReport, Option<PublishReport>)> {
    check_publish_stage(plan, registry)?;
    let report = crate::build(plan, registry, options)?;
    let published = match &plan.publish {
        Some(p) => Some(publish(
            &report.output,
            &p.url,
            registry,
            &PublishOptions {
                quiet: options.quiet,
                put: PutOptions {
                    part_size: p.part_size,
                    concurrency: p.concurrency,
                },
                unlock: crate::crypto::unlock(plan)?,
                kdf_limits: crate::crypto::kdf_limits(plan),
                self_contained: plan.parent.is_none(),
                // The recipe names its parent: that place is the user's choice.
                allow_parent_urls: plan
                    .parent
                    .iter()
                    .filter(|p| url_scheme(p).is_some())
                    .cloned()
                    .collect(),
                force: options.force,
            },
        )?),
        None => None,
    };
    Ok((report, published))
}

/// A URL for the destination: URLs as they are, plain paths as absolute
/// `file://` URLs.
fn destination_url(dest: &str) -> Result<String> {
    if url_scheme(dest).is_some() {
        return Ok(dest.to_string());
    }
    let abs = std::path::absolute(dest).map_err(PipelineError::io(dest))?;
    Ok(format!("file://{}", abs.display()))
}

/// A thin child publishes only itself: each parent it reads chunks from must
/// already be where readers of the published child will look (its location hint
/// resolved against `url`, within the parent-hint policy), with the size and
/// root hash the child names. One `stat` and one tail read per parent (no key
/// needed for the parents); a hint the policy refuses is an error before any
/// request is sent.
fn check_remote_parents(
    source: &Arc<dyn ReadAt>,
    archive: &Path,
    url: &str,
    registry: &Registry,
    publish: &PublishOptions,
) -> Result<()> {
    let options = ReadOptions {
        chunk_cache_bytes: 1 << 20,
        page_cache_bytes: 1 << 20,
        readahead_bytes: 0,
        verify_chunks: false,
        unlock: publish.unlock.clone(),
        kdf_limits: publish.kdf_limits,
        ..ReadOptions::default()
    };
    let policy = hexz_format::ParentPolicy {
        allowed: publish.allow_parent_urls.clone(),
        ..hexz_format::ParentPolicy::default()
    };
    // An encrypted archive's parents list is sealed: opening it needs a key
    // (`KeyRequired` / `WrongKey` name the archive and say so).
    let local = Archive::open(Arc::clone(source), registry, options)?;
    let parents = local.parents()?;
    for index in local.needed_parents()? {
        let Some(parent) = parents.get(usize::from(index) - 1) else {
            continue;
        };
        let location = policy.locate(url, &parent.hint).map_err(|reason| {
            PipelineError::PublishParentRefused {
                archive: archive.to_path_buf(),
                url: url.to_string(),
                root: Box::new(parent.root_hash),
                location: hexz_format::parents::resolve_hint(url, &parent.hint),
                reason,
            }
        })?;
        let reason = match remote_state(registry, &location, parent.archive_size, parent.root_hash)?
        {
            Remote::Same => continue,
            Remote::Missing => "nothing there".to_string(),
            Remote::Different => format!(
                "another archive is there (not {} bytes with root {})",
                parent.archive_size, parent.root_hash
            ),
        };
        return Err(PipelineError::PublishParent {
            archive: archive.to_path_buf(),
            url: url.to_string(),
            root: Box::new(parent.root_hash),
            location,
            reason,
        });
    }
    Ok(())
}

/// What `url` holds compared with an archive of `size` bytes and `root_hash`.
/// Costs one `stat`, plus a tail read (no key needed) when the sizes agree.
fn remote_state(registry: &Registry, url: &str, size: u64, root_hash: Hash32) -> Result<Remote> {
    let source = match registry.open_source(url) {
        Ok(source) => source,
        Err(PipelineError::NotFound { .. }) => return Ok(Remote::Missing),
        Err(e) => return Err(e),
    };
    if source.size() != size {
        return Ok(Remote::Different);
    }
    // A different archive of the same size (or, on an object store, not an
    // archive at all) is replaced, not an error.
    match read_tail(source.as_ref()) {
        Ok(tail) if tail.root == root_hash => Ok(Remote::Same),
        _ => Ok(Remote::Different),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_destinations_become_file_urls() {
        let url = destination_url("out/a.hxz").unwrap();
        assert!(
            url.starts_with("file:///") && url.ends_with("/out/a.hxz"),
            "{url}"
        );
        assert_eq!(destination_url("s3://b/k").unwrap(), "s3://b/k");
    }
}
