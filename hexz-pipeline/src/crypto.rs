//! The `encrypt:` and `sign:` stages at build time, and the matching read
//! options: turn a plan's key references into writer settings (reading the
//! secrets only now), write a detached signature next to the archive.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hexz_format::crypto::ChunkHasher;
use hexz_format::crypto::keyfile::parse_raw_key;
use hexz_format::destination::Writes;
use hexz_format::{
    Encryption, KdfLimits, PendingFile, ReadOptions, SignatureBlock, Signing, SlotSpec,
    TrustPolicy, Unlock,
};
use zeroize::Zeroizing;

use crate::error::{PipelineError, Result};
use crate::recipe::{EncryptPlan, Plan, RecipeError, SignPlan, SourceLocation, read_signing_key};
use crate::registry::Registry;

fn key_error(plan: &Plan, field: &str, detail: String) -> PipelineError {
    RecipeError::BadKey {
        at: SourceLocation {
            file: plan.recipe_path.clone(),
            line: 0,
            column: 0,
        },
        field: field.to_owned(),
        detail,
    }
    .into()
}

/// The key slots `encrypt` asks for, secrets read now.
pub fn slot_specs(plan: &Plan, encrypt: &EncryptPlan) -> Result<Vec<SlotSpec>> {
    let mut slots = Vec::new();
    for p in &encrypt.passphrases {
        let passphrase = p
            .read()
            .map_err(|d| key_error(plan, "encrypt.passphrase", d))?;
        slots.push(SlotSpec::Passphrase {
            passphrase,
            kdf: encrypt.kdf,
        });
    }
    if let Some(path) = &encrypt.key_file {
        slots.push(SlotSpec::KeyFile(
            read_key_file(path).map_err(|e| key_error(plan, "encrypt.key_file", e.to_string()))?,
        ));
    }
    slots.extend(
        encrypt
            .recipients
            .iter()
            .map(|r| SlotSpec::Recipient(r.bytes)),
    );
    Ok(slots)
}

/// A raw key file's 32 bytes.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(PipelineError::io(path))?);
    Ok(parse_raw_key(&bytes, &path.display().to_string())?)
}

/// Writer encryption for `plan` (`None` without `encrypt:`).
pub fn encryption(plan: &Plan) -> Result<Option<Encryption>> {
    encryption_with(plan, None)
}

/// [`encryption`] with the dedup key of `hasher` (a thin child takes its
/// parents': see `Encryption::with_hasher`).
pub fn encryption_with(plan: &Plan, hasher: Option<&ChunkHasher>) -> Result<Option<Encryption>> {
    match (&plan.encrypt, hasher) {
        (Some(e), Some(h)) => Ok(Some(Encryption::with_hasher(&slot_specs(plan, e)?, h)?)),
        (Some(e), None) => Ok(Some(Encryption::new(&slot_specs(plan, e)?)?)),
        (None, _) => Ok(None),
    }
}

/// Writer signing for `plan` (`None` without `sign:`).
pub fn signing(plan: &Plan) -> Result<Option<Signing>> {
    let Some(s) = &plan.sign else {
        return Ok(None);
    };
    let key = read_signing_key(&s.key, s.passphrase.as_ref())
        .map_err(|d| key_error(plan, "sign.key", d))?
        .signing_key()?;
    Ok(Some(Signing {
        key: Arc::new(key),
        detached: s.detached,
    }))
}

/// Largest detached signature read (a manifest is at most 64 KiB).
pub const MAX_SIG_LEN: u64 = 1 << 17;

/// The detached signature of the archive at `location` (a path or URL), if there
/// is one: `<location>.sig`, read from disk or fetched through `registry`'s
/// transports. A missing file or object is no signature; any other failure
/// (permissions, a transport error, one too large to be a signature) is an error
/// naming the `.sig` location, so a trust check never runs as if unsigned because
/// the signature could not be read.
pub fn default_detached_signature(location: &str, registry: &Registry) -> Result<Option<Vec<u8>>> {
    let sig = format!("{location}.sig");
    let source = match registry.open_source(&sig) {
        Ok(source) => source,
        Err(PipelineError::NotFound { .. }) => return Ok(None),
        Err(PipelineError::Format(hexz_format::Error::Io { error, .. }))
            if error.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let size = source.size();
    if size > MAX_SIG_LEN {
        return Err(PipelineError::from(hexz_format::Error::Corrupt {
            what: "detached signature",
            offset: 0,
            detail: format!("{sig}: {size} bytes is too large for a signature"),
        }));
    }
    let mut buf = vec![0; size as usize];
    source
        .read_exact_at(0, &mut buf)
        .map_err(PipelineError::io(&sig))?;
    Ok(Some(buf))
}

/// Where a detached signature of `archive` goes: `<archive>.sig`.
pub fn signature_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Write `block` as `<archive>.sig` (see [`write_signature`]).
pub fn write_detached(archive: &Path, block: &SignatureBlock, force: bool) -> Result<PathBuf> {
    let path = signature_path(archive);
    write_signature(&path, block, force)?;
    Ok(path)
}

/// Write `block` as the detached signature file `path`, atomically (an
/// unnamed file renamed into place when complete, mode 0o666 less the umask:
/// a signature is public and is served next to the archive). What is there is
/// replaced only if it is a hexz signature file, or with `force` anything but a
/// folder, a special file or a read-only file
/// ([`hexz_format::destination::check`]).
pub fn write_signature(path: &Path, block: &SignatureBlock, force: bool) -> Result<()> {
    use hexz_format::Sink;
    use std::io::Write;
    let mut file =
        PendingFile::replacing(path, Writes::Signature, force).map_err(hexz_format::Error::from)?;
    file.write_all(&block.to_detached())
        .and_then(|()| file.commit())
        .map_err(PipelineError::io(path))
}

/// The keys of `plan`'s `encrypt:` stage (its key file and passphrases) as
/// keys a reader offers; none without the stage.
pub fn unlock(plan: &Plan) -> Result<Unlock> {
    let mut unlock = Unlock::default();
    if let Some(e) = &plan.encrypt {
        for p in &e.passphrases {
            unlock = unlock.passphrase(
                p.read()
                    .map_err(|d| key_error(plan, "encrypt.passphrase", d))?
                    .to_vec(),
            );
        }
        if let Some(path) = &e.key_file {
            unlock = unlock.key_file(*read_key_file(path)?);
        }
    }
    Ok(unlock)
}

/// The reader's KDF limits, raised to admit the Argon2id parameters `plan`
/// writes with (its own chain, and what it builds, must open).
pub fn kdf_limits(plan: &Plan) -> KdfLimits {
    let limits = KdfLimits::default();
    match &plan.encrypt {
        Some(e) => limits.admitting(&e.kdf),
        None => limits,
    }
}

/// Read options that open what `plan` builds: its key file and passphrases as
/// keys (with KDF limits that admit its own parameters), and, when it signs, a
/// trust policy for its signer (with the detached signature next to `archive`
/// when signatures are detached).
pub fn read_options(plan: &Plan, archive: &Path) -> Result<ReadOptions> {
    let mut options = ReadOptions {
        unlock: unlock(plan)?,
        kdf_limits: kdf_limits(plan),
        ..ReadOptions::default()
    };
    if let Some(SignPlan {
        public, detached, ..
    }) = &plan.sign
    {
        let detached = if *detached {
            let p = signature_path(archive);
            Some(std::fs::read(&p).map_err(PipelineError::io(&p))?)
        } else {
            None
        };
        options.trust = Some(TrustPolicy {
            keys: vec![*public],
            detached,
        });
    }
    Ok(options)
}
