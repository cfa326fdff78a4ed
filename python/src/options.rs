//! Options that come from Python keyword arguments.

use hexz_format::crypto::keyfile::{PublicKeyKind, parse_raw_key};
use hexz_format::{KdfLimits, ParentPolicy, PublicKey, ReadOptions, TrustPolicy, Unlock};
use hexz_opendal::S3Options;
use hexz_pipeline::Registry;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{Error, Result};

/// Key material for encrypted and signed archives: `passphrase` and `key` unlock a
/// key slot, `trusted_public_keys` are the signers a reader accepts (each a
/// `hexz-ed25519 ...` line, the path of a `.pub` file, or the 32 raw key bytes).
#[derive(Default)]
pub struct KeyOptions {
    /// Passphrase of a passphrase key slot.
    pub passphrase: Option<Vec<u8>>,
    /// A key-file slot's key: 32 raw bytes or 64 hex digits (a key file's content).
    pub key: Option<Vec<u8>>,
    /// Signers to trust.
    pub trusted_public_keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for KeyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOptions")
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("trusted_public_keys", &self.trusted_public_keys.len())
            .finish()
    }
}

impl KeyOptions {
    /// Put the keys and the trust policy into `options` for the archive at
    /// `location` (a detached `<location>.sig` is used when there is one).
    pub fn apply(
        &self,
        location: &str,
        registry: &Registry,
        options: &mut ReadOptions,
    ) -> Result<()> {
        let mut unlock = Unlock::default();
        if let Some(p) = &self.passphrase {
            unlock = unlock.passphrase(p.clone());
        }
        if let Some(k) = &self.key {
            let key = parse_raw_key(k, "key").map_err(hexz_pipeline::PipelineError::from)?;
            unlock = unlock.key_file(*key);
        }
        options.unlock = unlock;
        if !self.trusted_public_keys.is_empty() {
            let keys = self
                .trusted_public_keys
                .iter()
                .map(|k| public_key(k))
                .collect::<Result<Vec<_>>>()?;
            options.trust = Some(TrustPolicy {
                keys,
                detached: hexz_pipeline::crypto::default_detached_signature(location, registry)?,
            });
        }
        Ok(())
    }
}

/// Which parents of a thin archive are opened, and how much key-derivation work
/// its passphrase slots may cost: `parents=` (archives named by the reader),
/// `allow_parent_urls=` (prefixes hints may lead to), `kdf_max_memory=` (bytes),
/// `kdf_max_iterations=`, `kdf_max_slots=` (see `hexz_format::hints` and
/// `hexz_format::KdfLimits`).
#[derive(Debug, Default)]
pub struct TrustLimits {
    /// Parent archives (paths or URLs), matched by root hash.
    pub parents: Vec<String>,
    /// URL or path prefixes a hint may lead to.
    pub allow_parent_urls: Vec<String>,
    /// Largest Argon2id memory, bytes.
    pub kdf_max_memory: Option<u64>,
    /// Most Argon2id iterations.
    pub kdf_max_iterations: Option<u32>,
    /// Most passphrase slots tried.
    pub kdf_max_slots: Option<usize>,
}

impl TrustLimits {
    /// Put the parent policy and KDF limits into `options`.
    pub fn apply(&self, options: &mut ReadOptions) -> Result<()> {
        options.parents = ParentPolicy {
            explicit: self.parents.clone(),
            allowed: self.allow_parent_urls.clone(),
        };
        let mut limits = KdfLimits::default();
        if let Some(bytes) = self.kdf_max_memory {
            limits.memory_kib = u32::try_from(bytes / 1024)
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| {
                    Error::Invalid(format!("kdf_max_memory={bytes}: 1 KiB to 4 TiB, in bytes"))
                })?;
        }
        if let Some(n) = self.kdf_max_iterations {
            limits.iterations = n;
        }
        if let Some(n) = self.kdf_max_slots {
            limits.passphrase_slots = n;
        }
        options.kdf_limits = limits;
        Ok(())
    }
}

/// An Ed25519 public key: 32 raw bytes, or text (a key line or a `.pub` path).
fn public_key(k: &[u8]) -> Result<PublicKey> {
    let key = if k.len() == 32 {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(k);
        PublicKey {
            kind: PublicKeyKind::Ed25519,
            bytes,
        }
    } else {
        let text = std::str::from_utf8(k).map_err(|_| {
            Error::Invalid("a trusted public key is 32 bytes, a key line or a path".into())
        })?;
        PublicKey::load(text).map_err(hexz_pipeline::PipelineError::from)?
    };
    Ok(key
        .expect(PublicKeyKind::Ed25519)
        .map_err(hexz_pipeline::PipelineError::from)?)
}

/// S3 settings from a dict (`endpoint`, `region`, `access_key_id`,
/// `secret_access_key`, `session_token`, `virtual_host_style`); unknown keys are
/// an error that lists the known ones.
pub fn s3_options(d: &Bound<'_, PyDict>) -> Result<S3Options> {
    const KNOWN: [&str; 6] = [
        "endpoint",
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "virtual_host_style",
    ];
    let mut o = S3Options::default();
    for (k, v) in d.iter() {
        let k: String = k
            .extract()
            .map_err(|_| Error::Invalid("S3 option names must be strings".into()))?;
        let text = || -> Result<Option<String>> {
            if v.is_none() {
                return Ok(None);
            }
            v.extract::<String>()
                .map(Some)
                .map_err(|_| Error::Invalid(format!("S3 option `{k}` must be a string")))
        };
        match k.as_str() {
            "endpoint" => o.endpoint = text()?,
            "region" => o.region = text()?,
            "access_key_id" => o.access_key_id = text()?,
            "secret_access_key" => o.secret_access_key = text()?,
            "session_token" => o.session_token = text()?,
            "virtual_host_style" => {
                o.virtual_host_style = v.is_truthy().map_err(|e| Error::Invalid(e.to_string()))?
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unknown S3 option `{other}`; known: {}",
                    KNOWN.join(", ")
                )));
            }
        }
    }
    Ok(o)
}
