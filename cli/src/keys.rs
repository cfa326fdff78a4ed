//! `hexz keys list|add|remove`: the key slots of an encrypted archive. Adding and
//! removing rewrite only the envelope (slots and signatures) and the trailer.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use hexz_format::crypto::keyfile::PublicKeyKind;
use hexz_format::crypto::manage::{add_key_slot, remove_key_slot};
use hexz_format::{KdfParams, PublicKey, SlotSpec};
use hexz_pipeline::Registry;

use crate::unlock::{KeyArgs, read_key_file, read_passphrase};

/// `hexz keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the key slots (kinds only; nothing secret).
    List {
        /// The archive.
        archive: PathBuf,
    },
    /// Add a key slot; the archive is opened with the keys given (--passphrase-file,
    /// --key-file, --identity).
    Add {
        /// The archive (a local file).
        archive: PathBuf,
        /// New passphrase slot: a file holding the new passphrase.
        #[arg(long, value_name = "FILE", group = "new")]
        new_passphrase_file: Option<PathBuf>,
        /// New key-file slot: a raw 32-byte key file.
        #[arg(long, value_name = "FILE", group = "new")]
        new_key_file: Option<PathBuf>,
        /// New recipient slot: an X25519 public key (file or `hexz-x25519 …`).
        #[arg(long, value_name = "KEY", group = "new")]
        recipient: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Remove key slot N (as `hexz keys list` numbers them); the last slot stays.
    Remove {
        /// The archive (a local file).
        archive: PathBuf,
        /// Slot number, from 0.
        #[arg(long)]
        slot: usize,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

/// Arguments of `hexz keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// Run `hexz keys …`.
pub fn run(args: &KeysArgs, registry: &Registry, out: &mut dyn Write) -> Result<()> {
    match &args.command {
        KeysCommand::List { archive } => {
            // Slots are in clear: listing needs no key. Open without decrypting.
            let source = hexz_format::FileSource::open(archive)?;
            let env = hexz_format::crypto::envelope::read_envelope(&source)?;
            match env {
                Some(env) if !env.slots.is_empty() => {
                    for (i, s) in env.slots.iter().enumerate() {
                        writeln!(out, "slot {i}: {}", s.describe())?;
                    }
                }
                _ => writeln!(
                    out,
                    "{} has no key slots (not encrypted)",
                    archive.display()
                )?,
            }
        }
        KeysCommand::Add {
            archive,
            new_passphrase_file,
            new_key_file,
            recipient,
            keys,
        } => {
            let spec = if let Some(p) = new_passphrase_file {
                SlotSpec::Passphrase {
                    passphrase: read_passphrase(p)?,
                    kdf: KdfParams::default(),
                }
            } else if let Some(k) = new_key_file {
                SlotSpec::KeyFile(read_key_file(k)?)
            } else if let Some(r) = recipient {
                SlotSpec::Recipient(PublicKey::load(r)?.expect(PublicKeyKind::X25519)?.bytes)
            } else {
                anyhow::bail!(
                    "say what to add: --new-passphrase-file, --new-key-file or --recipient"
                );
            };
            let a = open(archive, keys, registry)?;
            let n = add_key_slot(&a, archive, &spec)?;
            writeln!(out, "added slot {n} to {}", archive.display())?;
        }
        KeysCommand::Remove {
            archive,
            slot,
            keys,
        } => {
            let a = open(archive, keys, registry)?;
            remove_key_slot(&a, archive, *slot)?;
            writeln!(out, "removed slot {slot} from {}", archive.display())?;
        }
    }
    Ok(())
}

fn open(
    archive: &std::path::Path,
    keys: &KeyArgs,
    registry: &Registry,
) -> Result<hexz_format::Archive> {
    let options = hexz_format::ReadOptions {
        unlock: keys.unlock()?,
        kdf_limits: keys.kdf_limits()?,
        ..Default::default()
    };
    Ok(hexz_pipeline::open_archive_path(
        archive, registry, options,
    )?)
}
