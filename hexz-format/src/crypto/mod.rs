//! Encryption of archives: the data key, sealed blobs, key slots.
//!
//! An encrypted archive has one random 32-byte **data key** (AES-256-GCM) and one
//! random 32-byte **dedup key** (keyed BLAKE3 chunk ids), generated per archive.
//! Every chunk blob, index page, section and the directory is *sealed*: compressed
//! first, then encrypted with the data key, the 16-byte GCM tag appended
//! ([`seal`]). The two keys, 64 bytes together, are wrapped in **key slots**
//! ([`keyslot`]) kept in the clear envelope before the trailer ([`envelope`]):
//! a passphrase (Argon2id), a raw 32-byte key file, or an X25519 recipient.
//!
//! Chunk ids are [`ChunkHasher`] outputs: unkeyed BLAKE3 in plain archives,
//! BLAKE3 keyed with the dedup key in encrypted ones, so equal plaintext cannot be
//! recognized without the key.
//!
//! **Thin children of an encrypted parent** deduplicate against it only if they
//! compute the same chunk ids, so a child is built with the parent's dedup key
//! (open the parent with its key, take [`crate::Archive::chunk_hasher`] and pass
//! it to [`Encryption::with_hasher`]). The child still gets a fresh data key of its
//! own: sealing nonces are derived from blob offsets and chunk ids, so two
//! archives must never share a data key. A reader of the child opens each parent
//! with the parent's own key slots (the same passphrase or key, typically).

pub mod envelope;
pub mod kdf_limits;
pub mod keyfile;
pub mod keyslot;
pub mod manage;
pub mod seal;

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::layout::{HASH_BLAKE3, HASH_BLAKE3_KEYED};

pub use kdf_limits::{KdfLimits, KdfParameter};
pub use keyfile::{PublicKey, PublicKeyKind, SecretKeyFile};
pub use keyslot::{KdfParams, SlotSpec, Unlock};
pub use seal::{BlobRole, Sealer, TAG_LEN};

/// Fill `buf` from the operating system's CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::InvalidSetting {
        setting: "random number generator",
        detail: e.to_string(),
    })
}

/// 32 random bytes, wiped on drop.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    random_bytes(k.as_mut())?;
    Ok(k)
}

/// How chunk ids are computed: the one place that decides it, for the writer
/// (dedup), the reader (verification) and thin snapshots (dedup against parents).
#[derive(Clone, Default)]
pub enum ChunkHasher {
    /// Unkeyed BLAKE3 (hash kind 1): plain archives.
    #[default]
    Plain,
    /// BLAKE3 keyed with the archive's dedup key (hash kind 2): encrypted archives.
    Keyed(Arc<Zeroizing<[u8; 32]>>),
}

impl ChunkHasher {
    /// A keyed hasher.
    pub fn keyed(key: [u8; 32]) -> Self {
        Self::Keyed(Arc::new(Zeroizing::new(key)))
    }

    /// The id of a chunk's raw bytes.
    #[inline]
    pub fn id(&self, data: &[u8]) -> [u8; 32] {
        match self {
            Self::Plain => *blake3::hash(data).as_bytes(),
            Self::Keyed(key) => *blake3::keyed_hash(key, data).as_bytes(),
        }
    }

    /// The directory's hash kind for ids made by this hasher.
    pub fn hash_kind(&self) -> u8 {
        match self {
            Self::Plain => HASH_BLAKE3,
            Self::Keyed(_) => HASH_BLAKE3_KEYED,
        }
    }

    /// Whether both hashers give every chunk the same id (both plain, or keyed
    /// with the same key; compared in constant time).
    pub fn same_ids(&self, other: &Self) -> bool {
        match (self.key_bytes(), other.key_bytes()) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                use subtle::ConstantTimeEq;
                bool::from(a.ct_eq(b))
            }
            _ => false,
        }
    }

    pub(crate) fn key_bytes(&self) -> Option<&[u8; 32]> {
        match self {
            Self::Plain => None,
            Self::Keyed(k) => Some(k),
        }
    }
}

impl fmt::Debug for ChunkHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain => f.write_str("ChunkHasher::Plain"),
            Self::Keyed(_) => f.write_str("ChunkHasher::Keyed(<redacted>)"),
        }
    }
}

/// The secrets of one encrypted archive: what a key slot wraps.
#[derive(Clone)]
pub struct ArchiveKeys {
    pub(crate) data: Zeroizing<[u8; 32]>,
    pub(crate) dedup: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for ArchiveKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArchiveKeys(<redacted>)")
    }
}

impl ArchiveKeys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self> {
        Ok(Self {
            data: random_key()?,
            dedup: random_key()?,
        })
    }

    /// The 64-byte slot payload: data key then dedup key.
    pub(crate) fn payload(&self) -> Zeroizing<[u8; 64]> {
        let mut p = Zeroizing::new([0u8; 64]);
        p[..32].copy_from_slice(self.data.as_ref());
        p[32..].copy_from_slice(self.dedup.as_ref());
        p
    }

    pub(crate) fn from_payload(p: &[u8; 64]) -> Self {
        let mut data = Zeroizing::new([0u8; 32]);
        let mut dedup = Zeroizing::new([0u8; 32]);
        data.copy_from_slice(&p[..32]);
        dedup.copy_from_slice(&p[32..]);
        Self { data, dedup }
    }

    /// The sealer for this archive's blobs.
    pub fn sealer(&self) -> Sealer {
        Sealer::new(&self.data)
    }

    /// The chunk-id hasher (keyed with the dedup key).
    pub fn chunk_hasher(&self) -> ChunkHasher {
        ChunkHasher::keyed(*self.dedup)
    }
}

/// Encryption settings of a writer: the archive's keys and its key slots, already
/// wrapped. Cheap to clone, but one archive per value: clones share the data key,
/// and a second writer started with it (or a clone) is refused, since nonces are
/// derived from offsets and two archives under one data key would reuse them.
#[derive(Clone)]
pub struct Encryption {
    pub(crate) keys: ArchiveKeys,
    pub(crate) slots: Arc<Vec<keyslot::KeySlot>>,
    /// Set by the first writer that seals with these keys.
    used: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryption")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Encryption {
    /// New random keys, wrapped in one slot per spec (at least one).
    pub fn new(slots: &[SlotSpec]) -> Result<Self> {
        Self::from_keys(ArchiveKeys::generate()?, slots)
    }

    /// As [`new`](Self::new), but chunk ids keyed with `hasher`'s key (a thin
    /// child of an encrypted parent passes the parent's
    /// [`chunk_hasher`](crate::Archive::chunk_hasher) to keep deduplicating against
    /// it). The data key is still fresh.
    pub fn with_hasher(slots: &[SlotSpec], hasher: &ChunkHasher) -> Result<Self> {
        let mut keys = ArchiveKeys::generate()?;
        if let Some(k) = hasher.key_bytes() {
            keys.dedup = Zeroizing::new(*k);
        }
        Self::from_keys(keys, slots)
    }

    /// Wrap existing keys. Crate-private on purpose: nonces are derived from blob
    /// offsets, so two archives written with one data key would reuse nonces.
    pub(crate) fn from_keys(keys: ArchiveKeys, slots: &[SlotSpec]) -> Result<Self> {
        if slots.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "encryption",
                detail: "an encrypted archive needs at least one key slot".into(),
            });
        }
        let wrapped = slots
            .iter()
            .map(|s| keyslot::KeySlot::wrap(s, &keys))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            keys,
            slots: Arc::new(wrapped),
            used: Arc::default(),
        })
    }

    /// Claim the data key for one archive; fails if a writer already used it.
    pub(crate) fn claim(&self) -> Result<()> {
        if self.used.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::InvalidSetting {
                setting: "encryption",
                detail: "these encryption settings already sealed an archive; make new ones \
                         (Encryption::new) for each archive, so that no two share a data key"
                    .into(),
            });
        }
        Ok(())
    }

    /// The chunk-id hasher of archives written with these settings.
    pub fn chunk_hasher(&self) -> ChunkHasher {
        self.keys.chunk_hasher()
    }
}
