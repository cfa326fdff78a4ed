//! The `encrypt:` and `sign:` stages of a recipe.
//!
//! ```yaml
//! encrypt:                          # optional: seal the archive (AES-256-GCM)
//!   passphrase_file: secret.txt     # a key slot per key given; at least one:
//!   passphrase_env: HEXZ_PASSPHRASE #   a passphrase (file or environment variable),
//!   key_file: data.key              #   a raw 32-byte key file,
//!   recipients: [reader.pub]        #   X25519 public keys (file or `hexz-x25519 …`)
//!   kdf: { memory: 64MiB, iterations: 3, lanes: 1 }   # Argon2id costs (defaults shown)
//! sign:                             # optional: sign the manifest (Ed25519)
//!   key: signing.key                # secret key file from `hexz keygen`
//!   passphrase_file: key-pass.txt   # if the key is passphrase-protected (or passphrase_env)
//!   detached: false                 # true: write <output>.sig, leave the archive unsigned
//! ```
//!
//! Paths go through `${VAR}` interpolation and resolve against the recipe's folder.
//! Every key is read and checked when the recipe is validated, so a bad key file is
//! reported at its line and column; secrets are read again when the archive is
//! built and are never part of the plan, its provenance or any message.

use std::path::{Path, PathBuf};

use hexz_format::crypto::keyfile::{PublicKeyKind, parse_raw_key};
use hexz_format::{KdfParams, PublicKey, SecretKeyFile};
use serde::Deserialize;
use serde_saphyr::Spanned;
use zeroize::Zeroizing;

use super::error::{RecipeError, SourceLocation};
use super::raw::RawSize;
use super::validate::Context;

/// `encrypt:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEncrypt {
    #[serde(default)]
    passphrase_file: Option<Spanned<String>>,
    #[serde(default)]
    passphrase_env: Option<Spanned<String>>,
    #[serde(default)]
    key_file: Option<Spanned<String>>,
    #[serde(default)]
    recipients: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    kdf: Option<RawKdf>,
}

/// `encrypt.kdf:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKdf {
    #[serde(default)]
    memory: Option<Spanned<RawSize>>,
    #[serde(default)]
    iterations: Option<Spanned<u32>>,
    #[serde(default)]
    lanes: Option<Spanned<u32>>,
}

/// `sign:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSign {
    key: Spanned<String>,
    #[serde(default)]
    passphrase_file: Option<Spanned<String>>,
    #[serde(default)]
    passphrase_env: Option<Spanned<String>>,
    #[serde(default)]
    detached: Option<Spanned<bool>>,
}

/// Where a passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// A file: its content without one trailing newline.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl PassphraseSource {
    /// Read the passphrase.
    pub fn read(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        match self {
            Self::File(path) => {
                let bytes = Zeroizing::new(
                    std::fs::read(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                );
                let pass = strip_newline(&bytes);
                if pass.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(Zeroizing::new(pass.to_vec()))
            }
            Self::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Zeroizing::new(v.into_bytes())),
                _ => Err(format!("environment variable `{name}` is not set or empty")),
            },
        }
    }
}

/// A passphrase file's content: everything but one trailing newline.
pub fn strip_newline(bytes: &[u8]) -> &[u8] {
    let b = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// The checked `encrypt:` stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptPlan {
    /// Passphrase slots.
    pub passphrases: Vec<PassphraseSource>,
    /// Key-file slot.
    pub key_file: Option<PathBuf>,
    /// X25519 recipient slots.
    pub recipients: Vec<PublicKey>,
    /// Argon2id costs for passphrase slots.
    pub kdf: KdfParams,
}

/// The checked `sign:` stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPlan {
    /// The secret key file.
    pub key: PathBuf,
    /// Its passphrase, when protected.
    pub passphrase: Option<PassphraseSource>,
    /// Write `<output>.sig` instead of embedding.
    pub detached: bool,
    /// The signer's public key (read from the key at validation).
    pub public: PublicKey,
}

fn bad_key(at: SourceLocation, field: &str, detail: impl Into<String>) -> RecipeError {
    RecipeError::BadKey {
        at,
        field: field.to_owned(),
        detail: detail.into(),
    }
}

fn path_value(cx: &Context<'_>, field: &str, v: &Spanned<String>) -> Result<PathBuf, RecipeError> {
    Ok(cx.resolve(&cx.interpolated(field, v)?))
}

fn passphrase_source(
    cx: &Context<'_>,
    prefix: &str,
    file: Option<&Spanned<String>>,
    env: Option<&Spanned<String>>,
) -> Result<Vec<PassphraseSource>, RecipeError> {
    let mut out = Vec::new();
    if let Some(f) = file {
        let field = format!("{prefix}.passphrase_file");
        let source = PassphraseSource::File(path_value(cx, &field, f)?);
        source
            .read()
            .map_err(|d| bad_key(cx.at(&f.referenced), &field, d))?;
        out.push(source);
    }
    if let Some(e) = env {
        let field = format!("{prefix}.passphrase_env");
        match (cx.env)(&e.value) {
            Some(v) if !v.is_empty() => out.push(PassphraseSource::Env(e.value.clone())),
            _ => {
                return Err(bad_key(
                    cx.at(&e.referenced),
                    &field,
                    format!(
                        "environment variable `{}` is not set or empty; set it to the passphrase",
                        e.value
                    ),
                ));
            }
        }
    }
    Ok(out)
}

pub(crate) fn encrypt_plan(
    raw: &Spanned<RawEncrypt>,
    cx: &Context<'_>,
) -> Result<EncryptPlan, RecipeError> {
    let r = &raw.value;
    let passphrases = passphrase_source(
        cx,
        "encrypt",
        r.passphrase_file.as_ref(),
        r.passphrase_env.as_ref(),
    )?;
    let key_file = match &r.key_file {
        Some(k) => {
            let path = path_value(cx, "encrypt.key_file", k)?;
            let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| {
                bad_key(
                    cx.at(&k.referenced),
                    "encrypt.key_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?);
            parse_raw_key(&bytes, &k.value)
                .map_err(|e| bad_key(cx.at(&k.referenced), "encrypt.key_file", e.to_string()))?;
            Some(path)
        }
        None => None,
    };
    let mut recipients = Vec::new();
    for (i, rec) in r.recipients.iter().flat_map(|l| l.value.iter()).enumerate() {
        let field = format!("encrypt.recipients[{i}]");
        let at = cx.at(&rec.referenced);
        let text = cx.interpolated(&field, rec)?;
        let arg = if text.starts_with("hexz-") {
            text
        } else {
            cx.resolve(&text).to_string_lossy().into_owned()
        };
        let key = PublicKey::load(&arg)
            .and_then(|k| k.expect(PublicKeyKind::X25519))
            .map_err(|e| bad_key(at, &field, e.to_string()))?;
        recipients.push(key);
    }
    if passphrases.is_empty() && key_file.is_none() && recipients.is_empty() {
        return Err(RecipeError::NoKeySlot {
            at: cx.at(&raw.referenced),
        });
    }
    let mut kdf = KdfParams::default();
    if let Some(k) = &r.kdf {
        if let Some(m) = &k.memory {
            let bytes = match &m.value {
                RawSize::Bytes(b) => Some(*b),
                RawSize::Text(t) => parse_size::parse_size(t).ok(),
            };
            bytes
                .map_or(Err(String::new()), |b| kdf.set_memory_bytes(b))
                .map_err(|_| {
                    bad_key(
                        cx.at(&m.referenced),
                        "encrypt.kdf.memory",
                        "must be a size from 8KiB to 1GiB, e.g. `64MiB`",
                    )
                })?;
        }
        if let Some(t) = &k.iterations {
            kdf.set_iterations(t.value)
                .map_err(|d| bad_key(cx.at(&t.referenced), "encrypt.kdf.iterations", d))?;
        }
        if let Some(p) = &k.lanes {
            kdf.set_lanes(p.value)
                .map_err(|d| bad_key(cx.at(&p.referenced), "encrypt.kdf.lanes", d))?;
        }
    }
    Ok(EncryptPlan {
        passphrases,
        key_file,
        recipients,
        kdf,
    })
}

pub(crate) fn sign_plan(raw: &RawSign, cx: &Context<'_>) -> Result<SignPlan, RecipeError> {
    let key = path_value(cx, "sign.key", &raw.key)?;
    let at = cx.at(&raw.key.referenced);
    let passphrase = passphrase_source(
        cx,
        "sign",
        raw.passphrase_file.as_ref(),
        raw.passphrase_env.as_ref(),
    )?
    .into_iter()
    .next();
    let secret = read_signing_key(&key, passphrase.as_ref())
        .map_err(|d| bad_key(at.clone(), "sign.key", d))?;
    if secret.kind != PublicKeyKind::Ed25519 {
        return Err(bad_key(
            at,
            "sign.key",
            "an Ed25519 signing key is needed (hexz keygen), this is an X25519 identity",
        ));
    }
    Ok(SignPlan {
        public: secret.public(),
        key,
        passphrase,
        detached: raw.detached.as_ref().is_some_and(|d| d.value),
    })
}

/// Read a secret key file, with its passphrase when it is protected.
pub fn read_signing_key(
    path: &Path,
    passphrase: Option<&PassphraseSource>,
) -> Result<SecretKeyFile, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let pass = match passphrase {
        Some(p) => Some(p.read()?),
        None => None,
    };
    if SecretKeyFile::is_protected(&text) && pass.is_none() {
        return Err(format!(
            "{} is passphrase-protected; add `passphrase_file:` or `passphrase_env:` under `sign:`",
            path.display()
        ));
    }
    SecretKeyFile::decode(&text, pass.as_deref().map(Vec::as_slice)).map_err(|e| e.to_string())
}
