//! Changing an existing archive's envelope: add and remove key slots, embed a
//! signature. Only the envelope and the trailer are rewritten; every other byte,
//! and so the root hash, stays the same.

use std::path::Path;

use super::envelope::{Envelope, rewrite_envelope};
use super::keyslot::{KeySlot, SlotSpec};
use crate::error::{Error, Result};
use crate::reader::Archive;
use crate::sign::SignatureBlock;

/// Add a key slot to the encrypted archive at `path`, opened (with a key that
/// fits one of its slots) as `archive`. Returns the new slot's number.
pub fn add_key_slot(archive: &Archive, path: &Path, spec: &SlotSpec) -> Result<usize> {
    let keys = archive
        .archive_keys()
        .ok_or_else(|| not_encrypted(archive))?;
    let mut env = archive.envelope()?.unwrap_or_default();
    env.slots.push(KeySlot::wrap(spec, keys)?);
    rewrite_envelope(path, archive.trailer(), &env)?;
    Ok(env.slots.len() - 1)
}

/// Remove slot number `index` (from 0, as `hexz keys list` shows) of the encrypted
/// archive at `path`, opened as `archive`. The last slot cannot be removed.
///
/// Removing a slot stops its key from opening this file; whoever already read the
/// data key (any earlier holder of that key) still can decrypt the file's blobs.
pub fn remove_key_slot(archive: &Archive, path: &Path, index: usize) -> Result<()> {
    if archive.archive_keys().is_none() {
        return Err(not_encrypted(archive));
    }
    let mut env = archive.envelope()?.unwrap_or_default();
    if index >= env.slots.len() {
        return Err(Error::InvalidSetting {
            setting: "key slot",
            detail: format!(
                "no slot {index}: the archive has {} (numbered from 0)",
                env.slots.len()
            ),
        });
    }
    if env.slots.len() == 1 {
        return Err(Error::InvalidSetting {
            setting: "key slot",
            detail: "refusing to remove the last key slot (the archive could never be read again)"
                .into(),
        });
    }
    env.slots.remove(index);
    rewrite_envelope(path, archive.trailer(), &env)
}

/// Embed `block` in the archive at `path` (opened as `archive`), replacing an
/// earlier signature by the same key.
pub fn embed_signature(archive: &Archive, path: &Path, block: SignatureBlock) -> Result<()> {
    let mut env: Envelope = archive.envelope()?.unwrap_or_default();
    env.signatures.retain(|s| s.public != block.public);
    env.signatures.push(block);
    rewrite_envelope(path, archive.trailer(), &env)
}

fn not_encrypted(archive: &Archive) -> Error {
    Error::InvalidSetting {
        setting: "key slots",
        detail: format!(
            "{} is not encrypted",
            crate::error::Excerpt(&archive.source_name())
        ),
    }
}
