//! `encrypt=` and `sign=` of `hexz.Writer`: the recipe's `encrypt:` and `sign:`
//! stages (docs/RECIPES.md) as dicts, with the same keys, turned into writer
//! settings by the same code (`hexz_pipeline::crypto`, `hexz_format::crypto`).
//!
//! ```python
//! encrypt={"passphrase": "...", "passphrase_file": p, "passphrase_env": "VAR",
//!          "key_file": p, "key": raw_or_hex, "recipients": [p_or_line, ...],
//!          "kdf": {"memory": "64MiB", "iterations": 3, "lanes": 1}}
//! sign={"key": p, "passphrase": "...", "passphrase_file": p,
//!       "passphrase_env": "VAR", "detached": False}
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use hexz_format::crypto::keyfile::{PublicKeyKind, parse_raw_key};
use hexz_format::{KdfParams, PublicKey, SecretKeyFile, Signing, SlotSpec, Unlock};
use hexz_pipeline::PipelineError;
use hexz_pipeline::recipe::PassphraseSource;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use zeroize::Zeroizing;

use crate::errors::{Error, Result};

const ENCRYPT_KEYS: [&str; 7] = [
    "passphrase",
    "passphrase_file",
    "passphrase_env",
    "key_file",
    "key",
    "recipients",
    "kdf",
];
const SIGN_KEYS: [&str; 5] = [
    "key",
    "passphrase",
    "passphrase_file",
    "passphrase_env",
    "detached",
];
const KDF_KEYS: [&str; 3] = ["memory", "iterations", "lanes"];

/// The key slots of `encrypt=`, and the same keys as a reader offers them (to
/// open an encrypted parent: a chain shares its keys).
pub struct EncryptKeys {
    /// One slot per key given.
    pub slots: Vec<SlotSpec>,
    /// The passphrases and raw keys among them.
    pub unlock: Unlock,
}

impl std::fmt::Debug for EncryptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptKeys")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

fn invalid(field: &str, detail: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{field}: {detail}"))
}

/// The dict's items with string keys, each checked against `known`.
fn items<'py>(
    what: &str,
    d: &Bound<'py, PyAny>,
    known: &[&str],
) -> Result<Vec<(String, Bound<'py, PyAny>)>> {
    let d = d.cast::<PyDict>().map_err(|_| {
        invalid(
            what,
            format!("a dict is needed, with keys {}", known.join(", ")),
        )
    })?;
    let mut out = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        let k: String = k
            .extract()
            .map_err(|_| invalid(what, "option names must be strings"))?;
        if !known.contains(&k.as_str()) {
            return Err(invalid(
                what,
                format!("unknown option `{k}`; known: {}", known.join(", ")),
            ));
        }
        if !v.is_none() {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// `str` (UTF-8) or bytes, as secret bytes.
fn secret(field: &str, v: &Bound<'_, PyAny>) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = if let Ok(s) = v.cast::<PyString>() {
        Zeroizing::new(
            s.to_cow()
                .map_err(|_| invalid(field, "not valid UTF-8"))?
                .as_bytes()
                .to_vec(),
        )
    } else if let Ok(b) = v.cast::<PyBytes>() {
        Zeroizing::new(b.as_bytes().to_vec())
    } else {
        return Err(invalid(field, "a str or bytes is needed"));
    };
    if bytes.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    Ok(bytes)
}

fn path(field: &str, v: &Bound<'_, PyAny>) -> Result<PathBuf> {
    v.extract::<PathBuf>()
        .map_err(|_| invalid(field, "a path (str or os.PathLike) is needed"))
}

fn text(field: &str, v: &Bound<'_, PyAny>) -> Result<String> {
    v.extract::<String>()
        .map_err(|_| invalid(field, "a str is needed"))
}

/// One value or a list/tuple of them.
fn one_or_many<'py>(v: &Bound<'py, PyAny>) -> Vec<Bound<'py, PyAny>> {
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        v.try_iter()
            .map(|it| it.filter_map(std::result::Result::ok).collect())
            .unwrap_or_default()
    } else {
        vec![v.clone()]
    }
}

fn kdf(v: &Bound<'_, PyAny>) -> Result<KdfParams> {
    let mut kdf = KdfParams::default();
    let mut lanes = None;
    for (k, v) in items("encrypt.kdf", v, &KDF_KEYS)? {
        let field = format!("encrypt.kdf.{k}");
        match k.as_str() {
            "memory" => {
                let bytes = match v.extract::<u64>() {
                    Ok(b) => Some(b),
                    Err(_) => parse_size::parse_size(text(&field, &v)?).ok(),
                };
                bytes
                    .map_or(Err(String::new()), |b| kdf.set_memory_bytes(b))
                    .map_err(|_| {
                        invalid(&field, "must be a size from 8KiB to 1GiB, e.g. \"64MiB\"")
                    })?;
            }
            "iterations" => {
                let t = v.extract::<u32>().unwrap_or(0);
                kdf.set_iterations(t).map_err(|d| invalid(&field, d))?;
            }
            _ => lanes = Some((field, v.extract::<u32>().unwrap_or(0))),
        }
    }
    // Lanes last: their bound depends on the memory, whatever the dict's order.
    if let Some((field, p)) = lanes {
        kdf.set_lanes(p).map_err(|d| invalid(&field, d))?;
    }
    Ok(kdf)
}

/// A passphrase: given, or read from a file or variable when the keys load.
enum Passphrase {
    Given(Zeroizing<Vec<u8>>),
    From(String, PassphraseSource),
}

impl Passphrase {
    fn read(self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Self::Given(p) => Ok(p),
            Self::From(field, source) => source.read().map_err(|d| invalid(&field, d)),
        }
    }
}

/// An X25519 recipient: 32 raw bytes, or a `hexz-x25519 …` line or `.pub` path.
enum Recipient {
    Raw([u8; 32]),
    Load(String, String),
}

/// `encrypt=` as given: files are read (and keys checked) by [`EncryptSpec::load`],
/// which runs without the GIL.
pub struct EncryptSpec {
    passphrases: Vec<Passphrase>,
    key_files: Vec<PathBuf>,
    keys: Vec<(String, Zeroizing<Vec<u8>>)>,
    recipients: Vec<Recipient>,
    kdf: KdfParams,
}

impl std::fmt::Debug for EncryptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptSpec")
            .field("passphrases", &self.passphrases.len())
            .field("key_files", &self.key_files)
            .field("keys", &self.keys.len())
            .field("recipients", &self.recipients.len())
            .field("kdf", &self.kdf)
            .finish()
    }
}

fn recipient(field: &str, v: &Bound<'_, PyAny>) -> Result<Recipient> {
    if let Ok(b) = v.cast::<PyBytes>()
        && let Ok(raw) = <[u8; 32]>::try_from(b.as_bytes())
    {
        return Ok(Recipient::Raw(raw));
    }
    match v.extract::<PathBuf>() {
        Ok(p) => Ok(Recipient::Load(
            field.to_string(),
            p.to_string_lossy().into_owned(),
        )),
        Err(_) => Err(invalid(field, "a key line, a .pub path or 32 raw bytes")),
    }
}

/// `encrypt=`: its keys, checked for shape (at least one key slot).
pub fn encrypt_spec(v: &Bound<'_, PyAny>) -> Result<EncryptSpec> {
    let given = items("encrypt", v, &ENCRYPT_KEYS)?;
    let mut spec = EncryptSpec {
        passphrases: Vec::new(),
        key_files: Vec::new(),
        keys: Vec::new(),
        recipients: Vec::new(),
        kdf: KdfParams::default(),
    };
    for (k, v) in &given {
        let field = format!("encrypt.{k}");
        match k.as_str() {
            "passphrase" => {
                for (i, p) in one_or_many(v).iter().enumerate() {
                    let p = secret(&format!("{field}[{i}]"), p)?;
                    spec.passphrases.push(Passphrase::Given(p));
                }
            }
            "passphrase_file" => spec.passphrases.push(Passphrase::From(
                field.clone(),
                PassphraseSource::File(path(&field, v)?),
            )),
            "passphrase_env" => spec.passphrases.push(Passphrase::From(
                field.clone(),
                PassphraseSource::Env(text(&field, v)?),
            )),
            "key_file" => spec.key_files.push(path(&field, v)?),
            "key" => {
                let raw = secret(&field, v)?;
                spec.keys.push((field, raw));
            }
            "recipients" => {
                for (i, r) in one_or_many(v).iter().enumerate() {
                    spec.recipients
                        .push(recipient(&format!("{field}[{i}]"), r)?);
                }
            }
            _ => spec.kdf = kdf(v)?,
        }
    }
    if spec.passphrases.is_empty()
        && spec.key_files.is_empty()
        && spec.keys.is_empty()
        && spec.recipients.is_empty()
    {
        return Err(invalid(
            "encrypt",
            "names no key; give `passphrase`, `passphrase_file`, `passphrase_env`, `key_file`, \
             `key` or `recipients` (one key slot each)",
        ));
    }
    Ok(spec)
}

impl EncryptSpec {
    /// Read the secrets (files, variables) and check the keys: the key slots.
    pub fn load(self) -> Result<EncryptKeys> {
        let mut slots = Vec::new();
        let mut unlock = Unlock::default();
        for p in self.passphrases {
            let passphrase = p.read()?;
            unlock = unlock.passphrase(passphrase.to_vec());
            slots.push(SlotSpec::Passphrase {
                passphrase,
                kdf: self.kdf,
            });
        }
        let mut keys = Vec::new();
        for path in &self.key_files {
            keys.push(hexz_pipeline::crypto::read_key_file(path)?);
        }
        for (field, raw) in &self.keys {
            keys.push(parse_raw_key(raw, field).map_err(PipelineError::from)?);
        }
        for key in keys {
            unlock = unlock.key_file(*key);
            slots.push(SlotSpec::KeyFile(key));
        }
        for r in self.recipients {
            slots.push(SlotSpec::Recipient(match r {
                Recipient::Raw(raw) => raw,
                Recipient::Load(field, arg) => {
                    PublicKey::load(&arg)
                        .and_then(|k| k.expect(PublicKeyKind::X25519))
                        .map_err(|e| invalid(&field, e))?
                        .bytes
                }
            }));
        }
        Ok(EncryptKeys { slots, unlock })
    }
}

/// `sign=` as given; [`SignSpec::load`] reads and decrypts the key (no GIL).
pub struct SignSpec {
    key: PathBuf,
    passphrase: Option<Passphrase>,
    /// Write `<path>.sig` instead of embedding the signature.
    pub detached: bool,
}

impl std::fmt::Debug for SignSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignSpec")
            .field("key", &self.key)
            .field("passphrase", &self.passphrase.is_some())
            .field("detached", &self.detached)
            .finish()
    }
}

/// `sign=`: a dict (see the module docs) or just the secret key's path.
pub fn sign_spec(v: &Bound<'_, PyAny>) -> Result<SignSpec> {
    let given = if v.is_instance_of::<PyDict>() {
        items("sign", v, &SIGN_KEYS)?
    } else {
        vec![("key".to_string(), v.clone())]
    };
    let mut key = None;
    let mut passphrase = None;
    let mut detached = false;
    for (k, v) in &given {
        let field = format!("sign.{k}");
        match k.as_str() {
            "key" => key = Some(path(&field, v)?),
            "passphrase" => passphrase = Some(Passphrase::Given(secret(&field, v)?)),
            "passphrase_file" => {
                let source = PassphraseSource::File(path(&field, v)?);
                passphrase = Some(Passphrase::From(field, source));
            }
            "passphrase_env" => {
                let source = PassphraseSource::Env(text(&field, v)?);
                passphrase = Some(Passphrase::From(field, source));
            }
            _ => {
                detached = v
                    .is_truthy()
                    .map_err(|_| invalid(&field, "a bool is needed"))?;
            }
        }
    }
    Ok(SignSpec {
        key: key.ok_or_else(|| invalid("sign", "`key` (the secret key file) is needed"))?,
        passphrase,
        detached,
    })
}

impl SignSpec {
    /// Read (and, when protected, decrypt) the Ed25519 key: the writer's signing
    /// settings and the signer's public key.
    pub fn load(self) -> Result<(Signing, PublicKey)> {
        let key = self.key;
        let text =
            Zeroizing::new(
                std::fs::read_to_string(&key).map_err(|error| PipelineError::Io {
                    path: key.clone(),
                    error,
                })?,
            );
        let pass = self.passphrase.map(Passphrase::read).transpose()?;
        if SecretKeyFile::is_protected(&text) && pass.is_none() {
            return Err(invalid(
                "sign.key",
                format!(
                    "{} is passphrase-protected; add `passphrase` (or `passphrase_file`, \
                     `passphrase_env`) to sign=",
                    key.display()
                ),
            ));
        }
        let secret = SecretKeyFile::decode(&text, pass.as_deref().map(Vec::as_slice))
            .map_err(PipelineError::from)?;
        if secret.kind != PublicKeyKind::Ed25519 {
            return Err(invalid(
                "sign.key",
                format!(
                    "{}: an Ed25519 signing key is needed (hexz keygen), this is an X25519 \
                     identity",
                    key.display()
                ),
            ));
        }
        let public = secret.public();
        let signing_key = secret.signing_key().map_err(PipelineError::from)?;
        Ok((
            Signing {
                key: Arc::new(signing_key),
                detached: self.detached,
            },
            public,
        ))
    }
}
