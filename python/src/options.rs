//! Options that come from Python keyword arguments.

use hexz_opendal::S3Options;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{Error, Result};

/// Key material for encrypted and signed archives, gathered in one place so the
/// reader's key slots and signature checks (issue 4) plug in here: `passphrase`
/// and `key` unlock a key slot, `trusted_public_keys` (Ed25519, raw 32 bytes)
/// are the signers a reader accepts.
#[derive(Default)]
pub struct KeyOptions {
    /// Passphrase of a passphrase key slot.
    pub passphrase: Option<String>,
    /// Raw key of a key-file slot.
    pub key: Option<Vec<u8>>,
    /// Signers to trust.
    pub trusted_public_keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for KeyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOptions")
            .field("passphrase", &self.passphrase.as_ref().map(|_| "***"))
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("trusted_public_keys", &self.trusted_public_keys.len())
            .finish()
    }
}

impl KeyOptions {
    /// This build's reader has no key slots or signature checks yet: refuse key
    /// material rather than ignore it (a caller who asks for a signature check
    /// must not get unchecked bytes).
    pub fn check_supported(&self) -> Result<()> {
        if self.passphrase.is_some() || self.key.is_some() || !self.trusted_public_keys.is_empty() {
            return Err(Error::Unsupported(
                "passphrase, key and trusted_public_keys need encryption and signature \
                 support in the reader, which this build of hexz does not have yet"
                    .into(),
            ));
        }
        Ok(())
    }
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
