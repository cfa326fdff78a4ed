//! `hexz publish <archive> <url>`: upload an archive so that it appears at the URL
//! only when complete; nothing is uploaded when the URL already holds it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use hexz_pipeline::{PublishOptions, PublishReport, PutOptions, Registry};

/// Arguments of the `publish` verb.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The local archive.
    pub archive: std::path::PathBuf,
    /// Where to put it: s3://bucket/key, file:///abs/path.hxz (or a plain path).
    pub url: String,
    /// Upload part size (S3 needs at least 5 MiB), e.g. 8MiB.
    #[arg(long, default_value = "8MiB", value_parser = parse_bytes)]
    pub part_size: u64,
    /// Parts uploaded at once.
    #[arg(long, default_value_t = hexz_pipeline::PutOptions::default().concurrency)]
    pub jobs: usize,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// A local destination: replace a file there that is not a hexz archive
    /// (never a read-only one).
    #[arg(long)]
    pub force: bool,
    /// Keys that open an encrypted thin child, whose sealed parents list is
    /// checked at the destination (other archives publish without a key).
    #[command(flatten)]
    pub keys: crate::unlock::KeyArgs,
    /// Check a parent whose hint (resolved against the URL) leads under this
    /// URL prefix, outside the destination's folder (its readers will need the
    /// same flag). Repeatable.
    #[arg(long = "allow-parent-url", value_name = "PREFIX")]
    pub allow_parent_url: Vec<String>,
}

pub fn parse_bytes(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text).map_err(|e| format!("{text}: {e}"))
}

/// Publish and print the summary.
pub fn run(args: PublishArgs, registry: &Registry, out: &mut dyn Write) -> Result<()> {
    let options = PublishOptions {
        quiet: args.quiet || args.json,
        put: PutOptions {
            part_size: usize::try_from(args.part_size).context("--part-size is too large")?,
            concurrency: args.jobs,
        },
        unlock: args.keys.unlock()?,
        kdf_limits: args.keys.kdf_limits()?,
        self_contained: false,
        allow_parent_urls: args.allow_parent_url.clone(),
        force: args.force,
    };
    let report = hexz_pipeline::publish(Path::new(&args.archive), &args.url, registry, &options)?;
    if args.json {
        writeln!(out, "{}", summary_json(&report))?;
    } else if !args.quiet {
        print_line(&report);
    }
    Ok(())
}

/// The JSON summary of a publish (also under `published` in `build --json`).
pub fn summary_json(report: &PublishReport) -> serde_json::Value {
    serde_json::json!({
        "archive": report.archive,
        "url": report.url,
        "root_hash": report.root_hash.to_string(),
        "size": report.size,
        "uploaded": report.uploaded,
        "uploaded_bytes": report.bytes,
        "parts": report.parts,
        "stale_uploads_aborted": report.stale_uploads.aborted,
        "stale_uploads_unchecked": report.stale_uploads.unchecked,
        "seconds": report.elapsed.as_secs_f64(),
    })
}

/// One line on stderr saying what was published.
pub fn print_line(report: &PublishReport) {
    let secs = report.elapsed.as_secs_f64();
    if report.uploaded {
        eprintln!(
            "published {} to {}: {} bytes in {} part(s), {:.1} MB/s, root {}",
            report.archive.display(),
            report.url,
            report.bytes,
            report.parts,
            report.bytes as f64 / 1e6 / secs.max(1e-9),
            report.root_hash
        );
        if report.stale_uploads.aborted > 0 {
            eprintln!(
                "aborted {} incomplete upload(s) of {} left by an earlier publish",
                report.stale_uploads.aborted, report.url
            );
        }
        if let Some(why) = &report.stale_uploads.unchecked {
            eprintln!("hexz: warning: {why} (a bucket lifecycle rule can remove them)");
        }
    } else {
        eprintln!(
            "{} already holds this archive (root {}); nothing uploaded",
            report.url, report.root_hash
        );
    }
}
