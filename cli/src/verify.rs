//! `hexz verify`: check an archive's signature and its integrity tree (every page
//! and section); with `--deep`, every stored chunk blob too.
//!
//! Exit codes: 0 ok; 3 corrupt; 5 bad signature (invalid, by an untrusted key,
//! for another archive, malformed); 6 unsigned while `--key` was given; 7 the
//! archive is encrypted and the key is missing or wrong.
//!
//! An encrypted archive given `--key` but no decryption key is checked as far as
//! possible without one: the signature must name the archive's root hash (BLAKE3
//! of the stored directory); the tree is not read (`"tree_checked": false`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use hexz_format::Archive;
use hexz_format::sign::check_signatures;
use hexz_pipeline::Registry;
use serde_json::json;

use crate::unlock::{KeyArgs, ParentArgs, detached_signature, public_keys};

/// Arguments of `hexz verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive: a path, or a URL (s3://bucket/key, https://host/a.hxz, file:///a.hxz).
    pub archive: PathBuf,
    /// Require a valid signature by this Ed25519 public key (a `.pub` file or the
    /// `hexz-ed25519 …` line). Repeatable: any of them will do.
    #[arg(long, value_name = "PUB")]
    pub key: Vec<String>,
    /// Detached signature (default: `<archive>.sig` when it exists).
    #[arg(long, value_name = "FILE")]
    pub sig: Option<PathBuf>,
    /// Also read and check every stored chunk blob (CRC32, authentication tag,
    /// decompression, chunk id).
    #[arg(long)]
    pub deep: bool,
    /// Print a JSON report (also on failure).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub parents: ParentArgs,
}

/// The signature part of the report.
enum SignatureStatus {
    /// Checked against a trusted key.
    Trusted(hexz_format::SignatureReport),
    /// Valid, but no --key was given to trust.
    Unchecked(hexz_format::SignatureReport),
    /// No signature and none required.
    None,
}

/// What was checked.
enum Checked {
    /// The archive was opened: signature (if any) and tree.
    Opened(Archive, SignatureStatus, hexz_format::VerifyReport),
    /// Encrypted, no key given: the signature against the root hash only.
    SignatureOnly(hexz_format::SignatureReport, hexz_format::Hash32),
}

/// Run `hexz verify`. On failure with `--json`, the report is printed before the
/// error is returned (the caller maps it to the exit code).
pub fn run(args: &VerifyArgs, registry: &Registry, out: &mut dyn Write) -> Result<()> {
    let checked = match check(args, registry) {
        Err(e) if needs_key(&e) && !args.key.is_empty() => signature_only(args, registry),
        other => other,
    };
    match checked {
        Ok(Checked::SignatureOnly(report, root)) => report_signature_only(args, &report, root, out),
        Ok(Checked::Opened(a, sig, r)) => report_opened(args, &a, &sig, &r, out),
        Err(e) => {
            if args.json {
                let v = json!({
                    "ok": false,
                    "error": crate::message(&e),
                    "kind": kind(&e),
                    "exit_code": crate::exit_code(&e),
                });
                writeln!(out, "{v}")?;
                out.flush()?;
            }
            Err(e)
        }
    }
}

fn report_opened(
    args: &VerifyArgs,
    a: &Archive,
    sig: &SignatureStatus,
    r: &hexz_format::VerifyReport,
    out: &mut dyn Write,
) -> Result<()> {
    if args.json {
        let (status, key, embedded) = match sig {
            SignatureStatus::Trusted(s) => ("trusted", Some(s.key.to_string()), Some(s.embedded)),
            SignatureStatus::Unchecked(s) => {
                ("valid-untrusted", Some(s.key.to_string()), Some(s.embedded))
            }
            SignatureStatus::None => ("unsigned", None, None),
        };
        let v = json!({
            "ok": true,
            "tree_checked": true,
            "root_hash": a.root_hash().to_string(),
            "encrypted": a.is_encrypted(),
            "signature": { "status": status, "key": key, "embedded": embedded },
            "deep": args.deep,
            "pages": r.pages,
            "chunks": r.chunks,
            "entries": r.entries,
            "stored_bytes": r.stored_bytes,
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    let signature = match sig {
        SignatureStatus::Trusted(s) => format!("; signed by {} (trusted)", s.key),
        SignatureStatus::Unchecked(s) => format!(
            "; signed by {} (valid, not checked against a trusted key: give --key)",
            s.key
        ),
        SignatureStatus::None => String::new(),
    };
    writeln!(
        out,
        "ok: {} pages, {} chunks, {} entries checked{}; root {}{signature}",
        r.pages,
        r.chunks,
        r.entries,
        if args.deep { " (deep)" } else { "" },
        a.root_hash()
    )?;
    Ok(())
}

fn needs_key(e: &anyhow::Error) -> bool {
    matches!(
        crate::format_error(e),
        Some(hexz_format::Error::KeyRequired { .. })
    )
}

/// Encrypted and no key: check the signature against the root hash.
fn signature_only(args: &VerifyArgs, registry: &Registry) -> Result<Checked> {
    let location = args.archive.to_string_lossy();
    let source: std::sync::Arc<dyn hexz_format::ReadAt> =
        if hexz_pipeline::registry::url_scheme(&location).is_some() {
            registry.open_source(&location)?
        } else {
            std::sync::Arc::new(hexz_format::FileSource::open(&args.archive)?)
        };
    let keys = public_keys(&args.key)?;
    let detached = detached_signature(args.sig.as_deref(), &args.archive, registry)?;
    let report =
        hexz_format::sign::check_signatures_unopened(source.as_ref(), &keys, detached.as_deref())?;
    let root = report.manifest.root;
    Ok(Checked::SignatureOnly(report, root))
}

fn report_signature_only(
    args: &VerifyArgs,
    s: &hexz_format::SignatureReport,
    root: hexz_format::Hash32,
    out: &mut dyn Write,
) -> Result<()> {
    if args.json {
        writeln!(
            out,
            "{}",
            json!({
                "ok": true,
                "tree_checked": false,
                "root_hash": root.to_string(),
                "encrypted": true,
                "signature": { "status": "trusted", "key": s.key.to_string(), "embedded": s.embedded },
            })
        )?;
    } else {
        writeln!(
            out,
            "signature ok: signed by {} (trusted); root {root}; encrypted: pages and chunks \
             not checked without a key (give --key-file, --passphrase-file or --identity)",
            s.key
        )?;
    }
    Ok(())
}

fn check(args: &VerifyArgs, registry: &Registry) -> Result<Checked> {
    let keys = public_keys(&args.key)?;
    let detached = detached_signature(args.sig.as_deref(), &args.archive, registry)?;
    let options = hexz_format::ReadOptions {
        unlock: args.keys.unlock()?,
        kdf_limits: args.keys.kdf_limits()?,
        parents: args.parents.policy(),
        // With --key, the open itself checks the signature first: an encrypted
        // archive's key slots are tried only once a trusted signature names it.
        trust: (!keys.is_empty()).then(|| hexz_format::TrustPolicy {
            keys: keys.clone(),
            detached: detached.clone(),
        }),
        ..Default::default()
    };
    let a = crate::open_with(&args.archive, registry, options)?;
    let signed = detached.is_some() || a.envelope()?.is_some_and(|e| !e.signatures.is_empty());
    let sig = if !keys.is_empty() {
        SignatureStatus::Trusted(check_signatures(&a, &keys, detached.as_deref())?)
    } else if signed {
        SignatureStatus::Unchecked(check_signatures(&a, &[], detached.as_deref())?)
    } else {
        SignatureStatus::None
    };
    let r = a
        .verify_with(args.deep)
        .with_context(|| format!("{} failed verification", args.archive.display()))?;
    Ok(Checked::Opened(a, sig, r))
}

fn kind(e: &anyhow::Error) -> &'static str {
    match crate::format_error(e) {
        Some(hexz_format::Error::Unsigned { .. }) => "unsigned",
        Some(hexz_format::Error::BadSignature { .. }) => "bad-signature",
        Some(
            hexz_format::Error::KeyRequired { .. }
            | hexz_format::Error::WrongKey { .. }
            | hexz_format::Error::KdfLimit { .. },
        ) => "key",
        Some(f) if f.is_corruption() => "corrupt",
        _ => "error",
    }
}
