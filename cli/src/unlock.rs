//! Options every read verb shares: keys to open key slots (and the limits on
//! the work they may cost), the trust policy, and which parents of a thin
//! archive are opened.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hexz_format::crypto::keyfile::PublicKeyKind;
use hexz_format::{
    KdfLimits, ParentPolicy, PublicKey, ReadOptions, SecretKeyFile, TrustPolicy, Unlock,
};
use hexz_pipeline::Registry;
use hexz_pipeline::recipe::strip_newline;
use zeroize::Zeroizing;

/// The environment variable read as a passphrase when set.
pub const PASSPHRASE_ENV: &str = "HEXZ_PASSPHRASE";

/// Keys for encrypted archives. Passphrases come from files or `HEXZ_PASSPHRASE`,
/// never from the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// File holding a passphrase (its content without the final newline); also
    /// read: the environment variable HEXZ_PASSPHRASE. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Vec<PathBuf>,
    /// Raw 32-byte key file (32 bytes, or 64 hex digits). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub key_file: Vec<PathBuf>,
    /// X25519 identity: a secret key file from `hexz keygen --type x25519` (a
    /// protected one is opened with the passphrases given). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Largest Argon2id memory a passphrase slot may ask for, e.g. 1GiB (default
    /// 256MiB). Key slots are not covered by a signature: raise it only for
    /// archives you trust.
    #[arg(long, value_name = "SIZE", value_parser = crate::publish::parse_bytes)]
    pub kdf_max_memory: Option<u64>,
    /// Most Argon2id iterations a passphrase slot may ask for (default 8).
    #[arg(long, value_name = "N")]
    pub kdf_max_iterations: Option<u32>,
    /// Most passphrase slots tried, in order (default 4).
    #[arg(long, value_name = "N")]
    pub kdf_max_slots: Option<usize>,
}

impl KeyArgs {
    /// Every passphrase offered: files, then the environment variable.
    pub fn passphrases(&self) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        let mut out = Vec::new();
        for path in &self.passphrase_file {
            out.push(read_passphrase(path)?);
        }
        if let Ok(p) = std::env::var(PASSPHRASE_ENV)
            && !p.is_empty()
        {
            out.push(Zeroizing::new(p.into_bytes()));
        }
        Ok(out)
    }

    /// The key-derivation limits: the defaults, or what the flags raise (or
    /// lower) them to.
    pub fn kdf_limits(&self) -> Result<KdfLimits> {
        let mut limits = KdfLimits::default();
        if let Some(bytes) = self.kdf_max_memory {
            limits.memory_kib = u32::try_from(bytes / 1024)
                .ok()
                .filter(|&k| k > 0)
                .with_context(|| format!("--kdf-max-memory {bytes}: a size from 1KiB to 4TiB"))?;
        }
        if let Some(n) = self.kdf_max_iterations {
            limits.iterations = n;
        }
        if let Some(n) = self.kdf_max_slots {
            limits.passphrase_slots = n;
        }
        Ok(limits)
    }

    /// The keys as the reader takes them.
    pub fn unlock(&self) -> Result<Unlock> {
        let passphrases = self.passphrases()?;
        let mut unlock = Unlock::default();
        for p in &passphrases {
            unlock = unlock.passphrase(p.to_vec());
        }
        for path in &self.key_file {
            unlock = unlock.key_file(*read_key_file(path)?);
        }
        for path in &self.identity {
            let id = read_secret(path, &passphrases)?;
            if id.kind != PublicKeyKind::X25519 {
                anyhow::bail!(
                    "{}: an X25519 identity is needed, this is an Ed25519 signing key",
                    path.display()
                );
            }
            unlock = unlock.identity(*id.seed());
        }
        Ok(unlock)
    }
}

/// Parent options of the read verbs: which parents of a thin archive are opened
/// besides those its location hints name within its own store and folder.
#[derive(Debug, Clone, Default, Args)]
pub struct ParentArgs {
    /// A parent archive (path or URL) to use wherever the child's hint points:
    /// it serves the parent whose root hash it has. Repeatable, one per parent.
    #[arg(long = "parent", value_name = "ARCHIVE")]
    pub parent: Vec<String>,
    /// Follow parent hints that lead under this URL or path prefix (e.g.
    /// s3://bucket/datasets/, https://host/): by default a local archive's
    /// hints reach local files only, and a remote archive's only its own
    /// folder on the same host or bucket. Repeatable.
    #[arg(long = "allow-parent-url", value_name = "PREFIX")]
    pub allow_parent_url: Vec<String>,
}

impl ParentArgs {
    /// The parent policy these flags ask for.
    pub fn policy(&self) -> ParentPolicy {
        ParentPolicy {
            explicit: self.parent.clone(),
            allowed: self.allow_parent_url.clone(),
        }
    }
}

/// Signature options of the read verbs.
#[derive(Debug, Clone, Default, Args)]
pub struct TrustArgs {
    /// Require a signature by this Ed25519 public key (a `.pub` file or the
    /// `hexz-ed25519 …` line); every chunk read is then checked against the signed
    /// tree. Repeatable: any of the keys will do.
    #[arg(long = "trust", value_name = "KEY")]
    pub trust: Vec<String>,
    /// Detached signature (default: `<archive>.sig` when it exists, next to a
    /// local archive or at the archive's URL plus `.sig`).
    #[arg(long, value_name = "FILE")]
    pub sig: Option<PathBuf>,
}

impl TrustArgs {
    /// The trust policy, if any key is given.
    pub fn policy(&self, archive: &Path, registry: &Registry) -> Result<Option<TrustPolicy>> {
        if self.trust.is_empty() {
            return Ok(None);
        }
        Ok(Some(TrustPolicy {
            keys: public_keys(&self.trust)?,
            detached: detached_signature(self.sig.as_deref(), archive, registry)?,
        }))
    }
}

/// Parse Ed25519 public keys given on the command line.
pub fn public_keys(args: &[String]) -> Result<Vec<PublicKey>> {
    args.iter()
        .map(|k| {
            PublicKey::load(k)
                .and_then(|k| k.expect(PublicKeyKind::Ed25519))
                .with_context(|| format!("reading public key `{k}`"))
        })
        .collect()
}

/// The detached signature: `--sig`, else `<archive>.sig` next to a local archive
/// or at its URL (see [`hexz_pipeline::crypto::default_detached_signature`]).
pub fn detached_signature(
    sig: Option<&Path>,
    archive: &Path,
    registry: &Registry,
) -> Result<Option<Vec<u8>>> {
    if let Some(p) = sig {
        let read = || -> std::io::Result<Vec<u8>> {
            use std::io::Read;
            // No more than a signature can be: a larger file is refused by its
            // parser, not read whole.
            let mut bytes = Vec::new();
            std::fs::File::open(p)?
                .take(hexz_pipeline::crypto::MAX_SIG_LEN + 1)
                .read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        return Ok(Some(
            read().with_context(|| format!("reading signature {}", p.display()))?,
        ));
    }
    Ok(hexz_pipeline::crypto::default_detached_signature(
        &archive.to_string_lossy(),
        registry,
    )?)
}

/// Read options with these keys, trust policy and parent policy.
pub fn read_options(
    keys: &KeyArgs,
    trust: &TrustArgs,
    parents: &ParentArgs,
    archive: &Path,
    registry: &Registry,
) -> Result<ReadOptions> {
    Ok(ReadOptions {
        unlock: keys.unlock()?,
        kdf_limits: keys.kdf_limits()?,
        trust: trust.policy(archive, registry)?,
        parents: parents.policy(),
        ..ReadOptions::default()
    })
}

/// A passphrase file's content, without the final newline; empty is refused.
pub fn read_passphrase(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("reading passphrase file {}", path.display()))?,
    );
    let pass = strip_newline(&bytes);
    if pass.is_empty() {
        anyhow::bail!("passphrase file {} is empty", path.display());
    }
    Ok(Zeroizing::new(pass.to_vec()))
}

/// A raw key file (32 bytes, or 64 hex digits): the recipe's reader, so the CLI
/// and recipes accept the same files.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    Ok(hexz_pipeline::crypto::read_key_file(path)?)
}

/// A secret key file, opened with the first of `passphrases` that fits when it is
/// protected.
pub fn read_secret(path: &Path, passphrases: &[Zeroizing<Vec<u8>>]) -> Result<SecretKeyFile> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    if !SecretKeyFile::is_protected(&text) {
        return SecretKeyFile::decode(&text, None)
            .with_context(|| format!("reading {}", path.display()));
    }
    let mut last = None;
    for p in passphrases {
        match SecretKeyFile::decode(&text, Some(p)) {
            Ok(k) => return Ok(k),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => anyhow::Error::from(e),
        None => anyhow::Error::from(hexz_format::Error::KeyRequired {
            source_name: path.display().to_string(),
            what: "this secret key is passphrase-protected; give --passphrase-file or set HEXZ_PASSPHRASE",
        }),
    }
    .context(format!("reading {}", path.display())))
}
