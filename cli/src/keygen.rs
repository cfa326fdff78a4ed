//! `hexz keygen`: write a new key: an Ed25519 signing key pair, an X25519
//! identity (for encrypting to a recipient), or a raw 32-byte key file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use hexz_format::crypto::keyfile::{PublicKeyKind, write_raw_key};
use hexz_format::{KdfParams, SecretKeyFile};

use crate::unlock::{KeyArgs, PASSPHRASE_ENV};

/// What key to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// Ed25519 key pair for `sign`/`verify` (secret file + `.pub`).
    Ed25519,
    /// X25519 identity: others encrypt to the `.pub`, the secret file reads.
    X25519,
    /// Raw 32-byte key file for a key-file slot (no public part).
    Raw,
}

/// Arguments of `hexz keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Secret key file to create (mode 0600; the public key goes to `<out>.pub`).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Key type.
    #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
    pub kind: KeyType,
    /// Protect the secret key with a passphrase (from --passphrase-file or
    /// HEXZ_PASSPHRASE), stretched with Argon2id.
    #[arg(long)]
    pub protect: bool,
    /// File holding the passphrase for --protect (default: HEXZ_PASSPHRASE).
    #[arg(long, value_name = "FILE", requires = "protect")]
    pub passphrase_file: Option<PathBuf>,
}

/// Run `hexz keygen`; prints the public key (or the raw key's path).
pub fn run(args: &KeygenArgs, out: &mut dyn Write) -> Result<()> {
    let kind = match args.kind {
        KeyType::Raw => {
            if args.protect {
                anyhow::bail!(
                    "--protect applies to ed25519 and x25519 keys; a raw key file is the key itself"
                );
            }
            write_raw_key(&args.out)?;
            writeln!(
                out,
                "wrote key file {} (32 bytes, mode 0600)",
                args.out.display()
            )?;
            return Ok(());
        }
        KeyType::Ed25519 => PublicKeyKind::Ed25519,
        KeyType::X25519 => PublicKeyKind::X25519,
    };
    let key = SecretKeyFile::generate(kind)?;
    let passphrase = if args.protect {
        let keys = KeyArgs {
            passphrase_file: args.passphrase_file.iter().cloned().collect(),
            ..KeyArgs::default()
        };
        let mut p = keys.passphrases()?;
        if p.is_empty() {
            anyhow::bail!(
                "--protect needs a passphrase: give --passphrase-file or set {PASSPHRASE_ENV}"
            );
        }
        Some(p.swap_remove(0))
    } else {
        None
    };
    let public_path = crate::sign::public_path(&args.out);
    if public_path.exists() {
        anyhow::bail!("{} already exists; not replacing it", public_path.display());
    }
    key.write_new(
        &args.out,
        passphrase
            .as_ref()
            .map(|p| (p.as_slice(), KdfParams::default())),
    )?;
    let public = key.public().to_string();
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", public_path.display()))?;
    writeln!(out, "{public}")?;
    Ok(())
}
