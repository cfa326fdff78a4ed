//! Key slots: the archive keys (data key and dedup key, 64 bytes) wrapped with
//! AES-256-GCM under a key-encryption key (KEK) derived from a passphrase, a key
//! file, or an X25519 key agreement.
//!
//! ```text
//! slot kind 1, passphrase (124 B):
//!   0  4  Argon2id memory, KiB      4  4  Argon2id iterations
//!   8  4  Argon2id lanes           12  4  reserved, zero
//!   16 16 salt                      32 12 nonce   44 80 wrapped keys
//!   KEK = Argon2id v1.3 (passphrase, salt, m, t, p), 32 bytes
//! slot kind 2, key file (92 B):
//!   0  12 nonce   12 80 wrapped keys
//!   KEK = BLAKE3 derive_key("hexz key-file slot v1", key file's 32 bytes)
//! slot kind 3, X25519 recipient (124 B):
//!   0  32 ephemeral public key   32 12 nonce   44 80 wrapped keys
//!   KEK = BLAKE3 derive_key("hexz x25519 slot v1",
//!                           shared secret || ephemeral public || recipient public)
//! wrapped keys = AES-256-GCM(KEK, nonce, aad = "hexz-keyslot-v1" || kind,
//!                            data key || dedup key) = 64 B ciphertext || 16 B tag
//! ```

use std::fmt;

use zeroize::Zeroizing;

use super::{ArchiveKeys, KdfLimits, KdfParameter, random_bytes, seal};
use crate::bytes::{Cursor, PutLe};
use crate::error::{Error, Result};

/// Slot kind: passphrase through Argon2id.
pub const SLOT_PASSPHRASE: u16 = 1;
/// Slot kind: raw 32-byte key file.
pub const SLOT_KEY_FILE: u16 = 2;
/// Slot kind: X25519 recipient.
pub const SLOT_RECIPIENT: u16 = 3;

const WRAPPED_LEN: usize = 64 + 16;

/// Argon2id cost parameters, stored in each passphrase slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106's memory-constrained recommendation with
    /// one lane): about 0.1–0.3 s on one core.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            lanes: 1,
        }
    }
}

impl KdfParams {
    /// Largest memory a reader accepts from an archive (1 GiB).
    pub const MAX_MEMORY_KIB: u32 = 1 << 20;
    /// Most passes a reader accepts.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes a reader accepts.
    pub const MAX_LANES: u32 = 16;

    /// Set the memory cost from a size in bytes (recipes and the Python API
    /// take sizes): 8 KiB to 1 GiB; the error says what is allowed.
    pub fn set_memory_bytes(&mut self, bytes: u64) -> std::result::Result<(), String> {
        self.memory_kib = u32::try_from(bytes / 1024)
            .ok()
            .filter(|k| (8..=Self::MAX_MEMORY_KIB).contains(k))
            .ok_or_else(|| "must be a size from 8KiB to 1GiB, e.g. `64MiB`".to_string())?;
        Ok(())
    }

    /// Set the number of passes: 1 to [`MAX_ITERATIONS`](Self::MAX_ITERATIONS).
    pub fn set_iterations(&mut self, iterations: u32) -> std::result::Result<(), String> {
        if !(1..=Self::MAX_ITERATIONS).contains(&iterations) {
            return Err(format!("must be 1 to {}", Self::MAX_ITERATIONS));
        }
        self.iterations = iterations;
        Ok(())
    }

    /// Set the number of lanes: 1 to [`MAX_LANES`](Self::MAX_LANES), with at
    /// least 8 KiB of memory per lane (set the memory first).
    pub fn set_lanes(&mut self, lanes: u32) -> std::result::Result<(), String> {
        if !(1..=Self::MAX_LANES).contains(&lanes) || self.memory_kib < 8 * lanes {
            return Err(format!(
                "must be 1 to {} (and memory at least 8 KiB per lane)",
                Self::MAX_LANES
            ));
        }
        self.lanes = lanes;
        Ok(())
    }

    fn check(&self) -> std::result::Result<(), String> {
        if !(8..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib)
            || !(1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            || !(1..=Self::MAX_LANES).contains(&self.lanes)
            || self.memory_kib < 8 * self.lanes
        {
            return Err(format!(
                "Argon2id parameters m={} KiB t={} p={} outside m 8..={} (and ≥ 8·p), t 1..={}, p 1..={}",
                self.memory_kib,
                self.iterations,
                self.lanes,
                Self::MAX_MEMORY_KIB,
                Self::MAX_ITERATIONS,
                Self::MAX_LANES
            ));
        }
        Ok(())
    }

    /// Derive a 32-byte key from `passphrase` and `salt`.
    pub(crate) fn derive(&self, passphrase: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        self.check().map_err(|detail| Error::InvalidSetting {
            setting: "Argon2id parameters",
            detail,
        })?;
        #[cfg(test)]
        tests::KDF_RUNS.with(|n| n.set(n.get() + 1));
        let params = argon2::Params::new(self.memory_kib, self.iterations, self.lanes, Some(32))
            .map_err(|e| Error::InvalidSetting {
                setting: "Argon2id parameters",
                detail: e.to_string(),
            })?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, salt, out.as_mut())
            .map_err(|e| Error::InvalidSetting {
                setting: "Argon2id",
                detail: e.to_string(),
            })?;
        Ok(out)
    }
}

/// How to make a key slot (writer side).
#[derive(Clone)]
pub enum SlotSpec {
    /// A passphrase, stretched with Argon2id.
    Passphrase {
        /// The passphrase bytes.
        passphrase: Zeroizing<Vec<u8>>,
        /// Cost parameters (stored in the slot).
        kdf: KdfParams,
    },
    /// A raw 32-byte key (a key file).
    KeyFile(Zeroizing<[u8; 32]>),
    /// An X25519 public key: its holder can read the archive, the writer cannot
    /// (unless it has another slot).
    Recipient([u8; 32]),
}

impl fmt::Debug for SlotSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase { kdf, .. } => write!(f, "Passphrase(<redacted>, {kdf:?})"),
            Self::KeyFile(_) => f.write_str("KeyFile(<redacted>)"),
            Self::Recipient(p) => write!(f, "Recipient({})", super::keyfile::b64(p)),
        }
    }
}

/// Keys a reader offers to open key slots: every passphrase, key file and X25519
/// identity is tried against every slot of its kind.
#[derive(Clone, Default)]
pub struct Unlock {
    passphrases: Vec<Zeroizing<Vec<u8>>>,
    key_files: Vec<Zeroizing<[u8; 32]>>,
    identities: Vec<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Unlock({} passphrases, {} key files, {} identities, <redacted>)",
            self.passphrases.len(),
            self.key_files.len(),
            self.identities.len()
        )
    }
}

impl Unlock {
    /// Offer a passphrase.
    pub fn passphrase(mut self, p: impl Into<Vec<u8>>) -> Self {
        self.passphrases.push(Zeroizing::new(p.into()));
        self
    }

    /// Offer a raw 32-byte key.
    pub fn key_file(mut self, key: [u8; 32]) -> Self {
        self.key_files.push(Zeroizing::new(key));
        self
    }

    /// Offer an X25519 secret key (for recipient slots).
    pub fn identity(mut self, secret: [u8; 32]) -> Self {
        self.identities.push(Zeroizing::new(secret));
        self
    }

    /// Whether nothing is offered.
    pub fn is_empty(&self) -> bool {
        self.passphrases.is_empty() && self.key_files.is_empty() && self.identities.is_empty()
    }

    /// Kinds offered, for messages (`"passphrase, key file"`).
    pub fn describe(&self) -> String {
        let mut kinds = Vec::new();
        if !self.passphrases.is_empty() {
            kinds.push("passphrase");
        }
        if !self.key_files.is_empty() {
            kinds.push("key file");
        }
        if !self.identities.is_empty() {
            kinds.push("X25519 identity");
        }
        if kinds.is_empty() {
            "no key".into()
        } else {
            kinds.join(", ")
        }
    }
}

/// One wrapped slot as stored in the envelope.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySlot {
    /// Kind 1.
    Passphrase {
        /// Argon2id costs.
        kdf: KdfParams,
        /// Argon2id salt.
        salt: [u8; 16],
        /// Wrapping nonce.
        nonce: [u8; 12],
        /// Wrapped keys.
        wrapped: [u8; WRAPPED_LEN],
    },
    /// Kind 2.
    KeyFile {
        /// Wrapping nonce.
        nonce: [u8; 12],
        /// Wrapped keys.
        wrapped: [u8; WRAPPED_LEN],
    },
    /// Kind 3.
    Recipient {
        /// The writer's one-time X25519 public key.
        ephemeral: [u8; 32],
        /// Wrapping nonce.
        nonce: [u8; 12],
        /// Wrapped keys.
        wrapped: [u8; WRAPPED_LEN],
    },
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn key_file_kek(key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key("hexz key-file slot v1", key))
}

fn recipient_kek(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(shared);
    material[32..64].copy_from_slice(ephemeral);
    material[64..].copy_from_slice(recipient);
    Zeroizing::new(blake3::derive_key("hexz x25519 slot v1", material.as_ref()))
}

fn wrap(kek: &[u8; 32], kind: u16, keys: &ArchiveKeys) -> Result<([u8; 12], [u8; WRAPPED_LEN])> {
    let mut nonce = [0u8; 12];
    random_bytes(&mut nonce)?;
    let mut buf = keys.payload();
    let tag = seal::seal_detached(&seal::gcm_key(kek), nonce, &aad(kind), buf.as_mut_slice())
        .ok_or_else(|| Error::InvalidSetting {
            setting: "key slot",
            detail: "AES-GCM refused to wrap the key".into(),
        })?;
    let mut wrapped = [0u8; WRAPPED_LEN];
    wrapped[..64].copy_from_slice(buf.as_ref());
    wrapped[64..].copy_from_slice(&tag);
    Ok((nonce, wrapped))
}

fn unwrap(
    kek: &[u8; 32],
    kind: u16,
    nonce: &[u8; 12],
    wrapped: &[u8; WRAPPED_LEN],
) -> Option<ArchiveKeys> {
    let mut buf = Zeroizing::new([0u8; 64]);
    buf.copy_from_slice(&wrapped[..64]);
    let tag: [u8; seal::TAG_LEN] = wrapped[64..].try_into().ok()?;
    seal::open_detached(
        &seal::gcm_key(kek),
        *nonce,
        &aad(kind),
        buf.as_mut_slice(),
        &tag,
    )
    .ok()?;
    Some(ArchiveKeys::from_payload(&buf))
}

fn aad(kind: u16) -> Vec<u8> {
    let mut a = b"hexz-keyslot-v1".to_vec();
    a.push(kind as u8);
    a
}

impl KeySlot {
    /// Wrap `keys` as `spec` says.
    pub fn wrap(spec: &SlotSpec, keys: &ArchiveKeys) -> Result<Self> {
        Ok(match spec {
            SlotSpec::Passphrase { passphrase, kdf } => {
                let mut salt = [0u8; 16];
                random_bytes(&mut salt)?;
                let kek = kdf.derive(passphrase, &salt)?;
                let (nonce, wrapped) = wrap(&kek, SLOT_PASSPHRASE, keys)?;
                Self::Passphrase {
                    kdf: *kdf,
                    salt,
                    nonce,
                    wrapped,
                }
            }
            SlotSpec::KeyFile(key) => {
                let (nonce, wrapped) = wrap(&key_file_kek(key), SLOT_KEY_FILE, keys)?;
                Self::KeyFile { nonce, wrapped }
            }
            SlotSpec::Recipient(public) => {
                let secret = x25519_dalek::StaticSecret::from(*super::random_key()?);
                let ephemeral = x25519_dalek::PublicKey::from(&secret).to_bytes();
                let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
                if !shared.was_contributory() {
                    return Err(Error::InvalidKey {
                        what: "X25519 recipient".into(),
                        detail: "low-order public key".into(),
                    });
                }
                let kek = recipient_kek(shared.as_bytes(), &ephemeral, public);
                let (nonce, wrapped) = wrap(&kek, SLOT_RECIPIENT, keys)?;
                Self::Recipient {
                    ephemeral,
                    nonce,
                    wrapped,
                }
            }
        })
    }

    /// Try every key of `unlock` that fits this slot's kind. A passphrase slot
    /// runs its KDF once per passphrase: callers check its parameters against the
    /// reader's [`KdfLimits`] first ([`unlock_archive`]).
    pub(crate) fn open(&self, unlock: &Unlock) -> Result<Option<ArchiveKeys>> {
        match self {
            Self::Passphrase {
                kdf,
                salt,
                nonce,
                wrapped,
            } => {
                for p in &unlock.passphrases {
                    let kek = kdf.derive(p, salt)?;
                    if let Some(k) = unwrap(&kek, SLOT_PASSPHRASE, nonce, wrapped) {
                        return Ok(Some(k));
                    }
                }
            }
            Self::KeyFile { nonce, wrapped } => {
                for key in &unlock.key_files {
                    if let Some(k) = unwrap(&key_file_kek(key), SLOT_KEY_FILE, nonce, wrapped) {
                        return Ok(Some(k));
                    }
                }
            }
            Self::Recipient {
                ephemeral,
                nonce,
                wrapped,
            } => {
                for id in &unlock.identities {
                    let secret = x25519_dalek::StaticSecret::from(**id);
                    let me = x25519_dalek::PublicKey::from(&secret).to_bytes();
                    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*ephemeral));
                    let kek = recipient_kek(shared.as_bytes(), ephemeral, &me);
                    if let Some(k) = unwrap(&kek, SLOT_RECIPIENT, nonce, wrapped) {
                        return Ok(Some(k));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The envelope record kind.
    pub fn kind(&self) -> u16 {
        match self {
            Self::Passphrase { .. } => SLOT_PASSPHRASE,
            Self::KeyFile { .. } => SLOT_KEY_FILE,
            Self::Recipient { .. } => SLOT_RECIPIENT,
        }
    }

    /// One line for people (`passphrase (Argon2id m=65536 KiB t=3 p=1)`).
    pub fn describe(&self) -> String {
        match self {
            Self::Passphrase { kdf, .. } => format!(
                "passphrase (Argon2id m={} KiB t={} p={})",
                kdf.memory_kib, kdf.iterations, kdf.lanes
            ),
            Self::KeyFile { .. } => "key file (32-byte key)".into(),
            Self::Recipient { .. } => "X25519 recipient".into(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Passphrase {
                kdf,
                salt,
                nonce,
                wrapped,
            } => {
                out.put_u32(kdf.memory_kib);
                out.put_u32(kdf.iterations);
                out.put_u32(kdf.lanes);
                out.put_u32(0);
                out.extend_from_slice(salt);
                out.extend_from_slice(nonce);
                out.extend_from_slice(wrapped);
            }
            Self::KeyFile { nonce, wrapped } => {
                out.extend_from_slice(nonce);
                out.extend_from_slice(wrapped);
            }
            Self::Recipient {
                ephemeral,
                nonce,
                wrapped,
            } => {
                out.extend_from_slice(ephemeral);
                out.extend_from_slice(nonce);
                out.extend_from_slice(wrapped);
            }
        }
    }

    /// Decode a slot record body of `kind` (the caller checked the kind is a slot).
    pub(crate) fn decode(kind: u16, c: &mut Cursor<'_>) -> Result<Self> {
        Ok(match kind {
            SLOT_PASSPHRASE => {
                let kdf = KdfParams {
                    memory_kib: c.u32()?,
                    iterations: c.u32()?,
                    lanes: c.u32()?,
                };
                c.reserved(4)?;
                kdf.check().map_err(|d| c.corrupt(d))?;
                Self::Passphrase {
                    kdf,
                    salt: c.array()?,
                    nonce: c.array()?,
                    wrapped: c.array()?,
                }
            }
            SLOT_KEY_FILE => Self::KeyFile {
                nonce: c.array()?,
                wrapped: c.array()?,
            },
            _ => Self::Recipient {
                ephemeral: c.array()?,
                nonce: c.array()?,
                wrapped: c.array()?,
            },
        })
    }
}

/// Unwrap an encrypted archive's keys with the first slot that `unlock` opens.
///
/// Passphrase slots are bounded by `limits` before any KDF runs: a slot whose
/// Argon2id parameters exceed them, and every passphrase slot after the first
/// `limits.passphrase_slots`, is skipped. If no slot opens and one was skipped,
/// the error is [`Error::KdfLimit`] for the first skipped slot (the key may be
/// in it); otherwise [`Error::WrongKey`].
pub(crate) fn unlock_archive(
    source_name: &str,
    envelope: Option<&super::envelope::Envelope>,
    unlock: &Unlock,
    limits: &KdfLimits,
) -> Result<ArchiveKeys> {
    let slots = envelope.map(|e| e.slots.as_slice()).unwrap_or_default();
    if slots.is_empty() {
        return Err(Error::Corrupt {
            what: "envelope",
            offset: 0,
            detail: format!("{source_name}: encrypted archive without key slots"),
        });
    }
    if unlock.is_empty() {
        return Err(Error::KeyRequired {
            source_name: source_name.to_string(),
            what: "the archive is encrypted; give a passphrase, key file or X25519 identity",
        });
    }
    let passphrase_slots = slots
        .iter()
        .filter(|s| matches!(s, KeySlot::Passphrase { .. }))
        .count();
    let mut tried = 0;
    let mut passphrase_seen = 0;
    let mut skipped: Option<Error> = None;
    for (number, slot) in slots.iter().enumerate() {
        let fits = match slot {
            KeySlot::Passphrase { .. } => !unlock.passphrases.is_empty(),
            KeySlot::KeyFile { .. } => !unlock.key_files.is_empty(),
            KeySlot::Recipient { .. } => !unlock.identities.is_empty(),
        };
        if !fits {
            continue;
        }
        if let KeySlot::Passphrase { kdf, .. } = slot {
            passphrase_seen += 1;
            let over = if passphrase_seen > limits.passphrase_slots {
                Some((
                    KdfParameter::PassphraseSlots,
                    passphrase_slots as u64,
                    limits.passphrase_slots as u64,
                ))
            } else {
                limits.exceeded_by(kdf)
            };
            if let Some((parameter, value, limit)) = over {
                skipped.get_or_insert(Error::KdfLimit {
                    source_name: source_name.to_string(),
                    slot: number,
                    parameter,
                    value,
                    limit,
                });
                continue;
            }
        }
        tried += 1;
        if let Some(keys) = slot.open(unlock)? {
            return Ok(keys);
        }
    }
    Err(skipped.unwrap_or_else(|| Error::WrongKey {
        source_name: source_name.to_string(),
        offered: unlock.describe(),
        slots: tried,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::envelope::Envelope;
    use std::cell::Cell;

    thread_local! {
        /// Argon2id runs on this thread (tests run each on their own thread).
        pub(super) static KDF_RUNS: Cell<usize> = const { Cell::new(0) };
    }

    const SMALL: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };

    fn runs() -> usize {
        KDF_RUNS.with(Cell::get)
    }

    /// An envelope of passphrase slots wrapping `keys`, one per passphrase, then
    /// the slots' parameters replaced by `kdf` (without deriving with them).
    fn envelope(keys: &ArchiveKeys, passphrases: &[&str], kdf: &[KdfParams]) -> Envelope {
        let slots = passphrases
            .iter()
            .zip(kdf)
            .map(|(p, k)| {
                let spec = SlotSpec::Passphrase {
                    passphrase: Zeroizing::new(p.as_bytes().to_vec()),
                    kdf: SMALL,
                };
                match KeySlot::wrap(&spec, keys).unwrap() {
                    KeySlot::Passphrase {
                        salt,
                        nonce,
                        wrapped,
                        ..
                    } => KeySlot::Passphrase {
                        kdf: *k,
                        salt,
                        nonce,
                        wrapped,
                    },
                    other => other,
                }
            })
            .collect();
        Envelope {
            slots,
            signatures: Vec::new(),
        }
    }

    #[test]
    fn a_slot_above_the_limits_is_refused_without_running_the_kdf() {
        let keys = ArchiveKeys::generate().unwrap();
        let huge = KdfParams {
            memory_kib: KdfParams::MAX_MEMORY_KIB,
            ..SMALL
        };
        let env = envelope(&keys, &["pw"], &[huge]);
        let unlock = Unlock::default().passphrase("pw");
        let before = runs();
        let err = unlock_archive("a.hxz", Some(&env), &unlock, &KdfLimits::default()).unwrap_err();
        assert_eq!(runs(), before, "no Argon2id run");
        assert!(
            matches!(
                err,
                Error::KdfLimit {
                    slot: 0,
                    parameter: KdfParameter::Memory,
                    value: 1_048_576,
                    limit: 262_144,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("--kdf-max-memory"), "{text}");
        assert!(text.contains("kdf_max_memory="), "{text}");
        let slow = KdfParams {
            iterations: 64,
            ..SMALL
        };
        let env = envelope(&keys, &["pw"], &[slow]);
        let before = runs();
        let err = unlock_archive("a.hxz", Some(&env), &unlock, &KdfLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::KdfLimit {
                    parameter: KdfParameter::Iterations,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(runs(), before, "no Argon2id run");
    }

    #[test]
    fn a_raised_limit_opens_the_slot() {
        let keys = ArchiveKeys::generate().unwrap();
        // Within the format's bounds, above the default reader limit of 8.
        let slow = KdfParams {
            iterations: 9,
            ..SMALL
        };
        let spec = SlotSpec::Passphrase {
            passphrase: Zeroizing::new(b"pw".to_vec()),
            kdf: slow,
        };
        let env = Envelope {
            slots: vec![KeySlot::wrap(&spec, &keys).unwrap()],
            signatures: Vec::new(),
        };
        let unlock = Unlock::default().passphrase("pw");
        assert!(unlock_archive("a", Some(&env), &unlock, &KdfLimits::default()).is_err());
        let raised = KdfLimits {
            iterations: 9,
            ..KdfLimits::default()
        };
        let opened = unlock_archive("a", Some(&env), &unlock, &raised).unwrap();
        assert_eq!(opened.payload().as_ref(), keys.payload().as_ref());
    }

    #[test]
    fn only_the_first_passphrase_slots_are_tried() {
        let keys = ArchiveKeys::generate().unwrap();
        let names: Vec<String> = (0..12).map(|i| format!("pw{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let env = envelope(&keys, &refs, &[SMALL; 12]);
        let limits = KdfLimits::default();
        // A wrong passphrase: 4 slots derived, not 12; the error says why.
        let before = runs();
        let err = unlock_archive(
            "a",
            Some(&env),
            &Unlock::default().passphrase("no"),
            &limits,
        )
        .unwrap_err();
        assert_eq!(runs() - before, KdfLimits::DEFAULT_PASSPHRASE_SLOTS);
        assert!(
            matches!(
                err,
                Error::KdfLimit {
                    slot: 4,
                    parameter: KdfParameter::PassphraseSlots,
                    value: 12,
                    limit: 4,
                    ..
                }
            ),
            "{err}"
        );
        // The passphrase of slot 3 opens; that of slot 8 is never tried.
        assert!(
            unlock_archive(
                "a",
                Some(&env),
                &Unlock::default().passphrase("pw3"),
                &limits
            )
            .is_ok()
        );
        let before = runs();
        assert!(
            unlock_archive(
                "a",
                Some(&env),
                &Unlock::default().passphrase("pw8"),
                &limits
            )
            .is_err()
        );
        assert_eq!(runs() - before, 4);
        let more = KdfLimits {
            passphrase_slots: 12,
            ..limits
        };
        assert!(
            unlock_archive("a", Some(&env), &Unlock::default().passphrase("pw8"), &more).is_ok()
        );
    }

    #[test]
    fn a_costly_slot_does_not_hide_a_good_one() {
        let keys = ArchiveKeys::generate().unwrap();
        let huge = KdfParams {
            memory_kib: KdfParams::MAX_MEMORY_KIB,
            ..SMALL
        };
        // A hostile slot first, the real one after it: the real one opens.
        let env = envelope(&keys, &["x", "pw"], &[huge, SMALL]);
        let before = runs();
        let opened = unlock_archive(
            "a",
            Some(&env),
            &Unlock::default().passphrase("pw"),
            &KdfLimits::default(),
        )
        .unwrap();
        assert_eq!(runs() - before, 1);
        assert_eq!(opened.payload().as_ref(), keys.payload().as_ref());
    }
}
