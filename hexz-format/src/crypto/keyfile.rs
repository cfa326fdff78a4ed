//! Key files: Ed25519 signing keys and X25519 identities (secret, optionally
//! passphrase-protected; public, one pasteable line), and raw 32-byte key files.
//!
//! ```text
//! public key (one line):      hexz-ed25519 <base64 of 32 bytes>
//!                             hexz-x25519 <base64 of 32 bytes>
//! secret key, plain:          hexz-ed25519-secret-v1
//!                             <base64 of the 32-byte seed>
//! secret key, protected:      hexz-ed25519-secret-v1 argon2id m=<KiB> t=<n> p=<n>
//!                             <base64 of salt (16) || nonce (12) || AES-256-GCM(seed) (48)>
//! raw key file:               exactly 32 bytes, or 64 hex digits (and a newline)
//! ```
//! (`x25519` in place of `ed25519` for identities.) The protected form derives the
//! wrapping key with Argon2id from the passphrase and salt.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use zeroize::Zeroizing;

use super::keyslot::KdfParams;
use super::{random_bytes, random_key, seal};
use crate::error::{Error, Result};

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

fn bad(what: &str, detail: impl Into<String>) -> Error {
    Error::InvalidKey {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// Which algorithm a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKeyKind {
    /// Ed25519: signatures.
    Ed25519,
    /// X25519: encryption to a recipient.
    X25519,
}

impl PublicKeyKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::X25519 => "x25519",
        }
    }
}

/// A public key, written as one line: `hexz-ed25519 <base64>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// Algorithm.
    pub kind: PublicKeyKind,
    /// The 32 key bytes.
    pub bytes: [u8; 32],
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hexz-{} {}", self.kind.tag(), b64(&self.bytes))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl PublicKey {
    /// Parse the one-line form (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let (tag, rest) = text.split_once(char::is_whitespace).ok_or_else(|| {
            bad(
                "public key",
                "expected `hexz-ed25519 <base64>` or `hexz-x25519 <base64>`",
            )
        })?;
        let kind = match tag {
            "hexz-ed25519" => PublicKeyKind::Ed25519,
            "hexz-x25519" => PublicKeyKind::X25519,
            other => {
                return Err(bad(
                    "public key",
                    format!("unknown key type `{other}`; expected hexz-ed25519 or hexz-x25519"),
                ));
            }
        };
        let bytes: [u8; 32] = unb64(rest)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("public key", "the key is not 32 bytes of base64"))?;
        if kind == PublicKeyKind::Ed25519 {
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad("public key", "not a valid Ed25519 point"))?;
        }
        Ok(Self { kind, bytes })
    }

    /// A key given on the command line or in a recipe: the path of a file holding
    /// it, or the key itself.
    pub fn load(arg: &str) -> Result<Self> {
        let path = Path::new(arg);
        if !arg.starts_with("hexz-") && path.exists() {
            let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
                path: path.to_path_buf(),
                error,
            })?;
            return Self::parse(&text).map_err(|e| match e {
                Error::InvalidKey { detail, .. } => bad(&path.display().to_string(), detail),
                other => other,
            });
        }
        Self::parse(arg)
    }

    /// Require a kind.
    pub fn expect(self, kind: PublicKeyKind) -> Result<Self> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(bad(
                "public key",
                format!(
                    "a hexz-{} key is needed, got hexz-{}",
                    kind.tag(),
                    self.kind.tag()
                ),
            ))
        }
    }
}

/// A secret key file (Ed25519 signing key or X25519 identity). The seed is wiped
/// on drop and never printed.
#[derive(Clone)]
pub struct SecretKeyFile {
    /// Algorithm.
    pub kind: PublicKeyKind,
    seed: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for SecretKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKeyFile({:?}, <redacted>)", self.kind)
    }
}

impl SecretKeyFile {
    /// A new random key.
    pub fn generate(kind: PublicKeyKind) -> Result<Self> {
        Ok(Self {
            kind,
            seed: random_key()?,
        })
    }

    /// From a seed.
    pub fn from_seed(kind: PublicKeyKind, seed: [u8; 32]) -> Self {
        Self {
            kind,
            seed: Zeroizing::new(seed),
        }
    }

    /// The 32 secret bytes.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        let bytes = match self.kind {
            PublicKeyKind::Ed25519 => ed25519_dalek::SigningKey::from_bytes(&self.seed)
                .verifying_key()
                .to_bytes(),
            PublicKeyKind::X25519 => {
                x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*self.seed))
                    .to_bytes()
            }
        };
        PublicKey {
            kind: self.kind,
            bytes,
        }
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> Result<ed25519_dalek::SigningKey> {
        if self.kind != PublicKeyKind::Ed25519 {
            return Err(bad(
                "secret key",
                "an Ed25519 (signing) key is needed, got an X25519 identity",
            ));
        }
        Ok(ed25519_dalek::SigningKey::from_bytes(&self.seed))
    }

    /// The text form, protected with `passphrase` when given.
    pub fn encode(&self, passphrase: Option<(&[u8], KdfParams)>) -> Result<Zeroizing<String>> {
        let header = format!("hexz-{}-secret-v1", self.kind.tag());
        Ok(Zeroizing::new(match passphrase {
            None => format!("{header}\n{}\n", b64(self.seed.as_ref())),
            Some((pass, kdf)) => {
                let mut blob = Zeroizing::new(vec![0u8; 16 + 12]);
                random_bytes(&mut blob)?;
                let kek = kdf.derive(pass, &blob[..16])?;
                let nonce: [u8; 12] = blob[16..28].try_into().unwrap_or_default();
                let mut ct = Zeroizing::new(self.seed.to_vec());
                let tag = seal::seal_detached(
                    &seal::gcm_key(&kek),
                    nonce,
                    header.as_bytes(),
                    ct.as_mut_slice(),
                )
                .ok_or_else(|| bad("secret key", "AES-GCM refused to protect the key"))?;
                blob.extend_from_slice(&ct);
                blob.extend_from_slice(&tag);
                format!(
                    "{header} argon2id m={} t={} p={}\n{}\n",
                    kdf.memory_kib,
                    kdf.iterations,
                    kdf.lanes,
                    b64(&blob)
                )
            }
        }))
    }

    /// Whether the text form needs a passphrase.
    pub fn is_protected(text: &str) -> bool {
        text.lines()
            .next()
            .is_some_and(|l| l.contains(" argon2id "))
    }

    /// Parse the text form; `passphrase` is needed for a protected key.
    pub fn decode(text: &str, passphrase: Option<&[u8]>) -> Result<Self> {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("").trim();
        let body = lines.next().unwrap_or("");
        let mut words = first.split_whitespace();
        let kind = match words.next() {
            Some("hexz-ed25519-secret-v1") => PublicKeyKind::Ed25519,
            Some("hexz-x25519-secret-v1") => PublicKeyKind::X25519,
            _ => {
                return Err(bad(
                    "secret key",
                    "not a hexz secret key (expected a first line `hexz-ed25519-secret-v1` or `hexz-x25519-secret-v1`)",
                ));
            }
        };
        let blob = Zeroizing::new(
            unb64(body).ok_or_else(|| bad("secret key", "second line is not base64"))?,
        );
        let seed: [u8; 32] = match words.next() {
            None => blob
                .as_slice()
                .try_into()
                .map_err(|_| bad("secret key", "the key is not 32 bytes"))?,
            Some("argon2id") => {
                let mut kdf = KdfParams::default();
                for w in words {
                    let (k, v) = w
                        .split_once('=')
                        .ok_or_else(|| bad("secret key", format!("bad parameter `{w}`")))?;
                    let v: u32 = v
                        .parse()
                        .map_err(|_| bad("secret key", format!("bad parameter `{w}`")))?;
                    match k {
                        "m" => kdf.memory_kib = v,
                        "t" => kdf.iterations = v,
                        "p" => kdf.lanes = v,
                        _ => return Err(bad("secret key", format!("unknown parameter `{w}`"))),
                    }
                }
                let Some(pass) = passphrase else {
                    return Err(Error::KeyRequired {
                        source_name: "secret key".into(),
                        what: "this secret key is passphrase-protected; give its passphrase",
                    });
                };
                if blob.len() != 16 + 12 + 32 + 16 {
                    return Err(bad("secret key", "protected key has the wrong length"));
                }
                let kek = kdf.derive(pass, &blob[..16])?;
                let nonce: [u8; 12] = blob[16..28].try_into().unwrap_or_default();
                let mut seed = Zeroizing::new([0u8; 32]);
                seed.copy_from_slice(&blob[28..60]);
                let tag: [u8; seal::TAG_LEN] = blob[60..76]
                    .try_into()
                    .map_err(|_| bad("secret key", "bad tag"))?;
                let header = format!("hexz-{}-secret-v1", kind.tag());
                seal::open_detached(
                    &seal::gcm_key(&kek),
                    nonce,
                    header.as_bytes(),
                    seed.as_mut_slice(),
                    &tag,
                )
                .map_err(|_| Error::WrongKey {
                    source_name: "secret key".into(),
                    offered: "passphrase".into(),
                    slots: 1,
                })?;
                *seed
            }
            Some(other) => return Err(bad("secret key", format!("unknown protection `{other}`"))),
        };
        Ok(Self::from_seed(kind, seed))
    }

    /// Write the text form to a new file readable only by its owner (0600);
    /// an existing file is not replaced.
    pub fn write_new(&self, path: &Path, passphrase: Option<(&[u8], KdfParams)>) -> Result<()> {
        let text = self.encode(passphrase)?;
        write_private(path, text.as_bytes())
    }
}

/// Create `path` with mode 0600 (refusing to replace a file) and write `bytes`.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    f.write_all(bytes).map_err(io_err)?;
    f.sync_all().map_err(io_err)
}

/// A raw key file's 32 bytes: the file is exactly 32 bytes, or 64 hex digits
/// optionally followed by a newline.
pub fn parse_raw_key(bytes: &[u8], what: &str) -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() == 32 {
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let text = std::str::from_utf8(bytes)
        .unwrap_or("")
        .trim_end_matches(['\n', '\r']);
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        return Ok(key);
    }
    Err(bad(
        what,
        format!(
            "a key file holds exactly 32 bytes or 64 hex digits, this one has {} bytes",
            bytes.len()
        ),
    ))
}

/// A new random raw key file (32 bytes, mode 0600).
pub fn write_raw_key(path: &Path) -> Result<()> {
    let key = random_key()?;
    write_private(path, key.as_ref())
}
