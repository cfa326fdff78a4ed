//! `hexz sign`: sign an archive's manifest with an Ed25519 key, embedding the
//! signature (only the envelope and trailer are rewritten; the root hash does not
//! change) or writing a detached `<archive>.sig`. A read-only archive is not
//! rewritten; a `.sig` replaces only a hexz signature file (or, with `--force`,
//! any file but a read-only one).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use hexz_format::crypto::manage::embed_signature;
use hexz_format::{Manifest, SignatureBlock};
use hexz_pipeline::Registry;

use crate::unlock::{KeyArgs, read_secret};

/// Arguments of `hexz sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The archive (a local file).
    pub archive: PathBuf,
    /// Ed25519 secret key file (from `hexz keygen`); a protected one is opened with
    /// --passphrase-file or HEXZ_PASSPHRASE.
    #[arg(long)]
    pub key: PathBuf,
    /// Write `<archive>.sig` (or --out) instead of embedding the signature.
    #[arg(long)]
    pub detached: bool,
    /// Where to write the detached signature.
    #[arg(long, requires = "detached")]
    pub out: Option<PathBuf>,
    /// Replace a file at the signature's place that is not a hexz signature
    /// (never a read-only one).
    #[arg(long, requires = "detached")]
    pub force: bool,
    /// Keys of an encrypted archive (its manifest is read from the sealed
    /// directory), and the passphrase of a protected signing key.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `<secret>.pub`.
pub fn public_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Run `hexz sign`.
pub fn run(args: &SignArgs, registry: &Registry, out: &mut dyn Write) -> Result<()> {
    let passphrases = args.keys.passphrases()?;
    let key = read_secret(&args.key, &passphrases)?.signing_key()?;
    let options = hexz_format::ReadOptions {
        unlock: args.keys.unlock()?,
        kdf_limits: args.keys.kdf_limits()?,
        ..Default::default()
    };
    let archive = hexz_pipeline::open_archive_path(&args.archive, registry, options)?;
    let block = SignatureBlock::sign(&key, &Manifest::of(&archive)?);
    if args.detached {
        let path = match &args.out {
            Some(p) => {
                hexz_pipeline::crypto::write_signature(p, &block, args.force)?;
                p.clone()
            }
            None => hexz_pipeline::crypto::write_detached(&args.archive, &block, args.force)?,
        };
        writeln!(out, "wrote {} (signed by {})", path.display(), block.key())?;
    } else {
        let by = block.key();
        embed_signature(&archive, &args.archive, block)?;
        writeln!(
            out,
            "signed {} by {by}; root {}",
            args.archive.display(),
            archive.root_hash()
        )?;
    }
    Ok(())
}
