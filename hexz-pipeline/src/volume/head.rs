//! The head pointer: `<volume>/HEAD`, a small JSON object naming the current
//! version (see docs/FORMAT.md, "Writable volumes").

use serde::{Deserialize, Serialize};

use hexz_format::Hash32;

/// The `format` value of every head object.
pub const HEAD_FORMAT: &str = "hexz-volume-head/1";

/// One version of a volume, as the head names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Always [`HEAD_FORMAT`].
    pub format: String,
    /// Version number: 1 for the snapshot `create` wrote, +1 per flush.
    pub version: u64,
    /// Root hash (hex) of the version's snapshot: its identity.
    pub root: String,
    /// Key of the snapshot object, relative to the volume: `snapshots/<root>.hxz`.
    pub snapshot: String,
    /// Volume length in bytes at this version.
    pub size: u64,
}

impl Head {
    /// The head for snapshot `root` at `version`.
    pub fn new(version: u64, root: Hash32, size: u64) -> Self {
        Self {
            format: HEAD_FORMAT.to_string(),
            version,
            root: root.to_string(),
            snapshot: snapshot_key(&root),
            size,
        }
    }

    /// The object's bytes (compact JSON plus a newline).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parse and check a head object.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > 64 * 1024 {
            return Err(format!("{} bytes is too large for a head", bytes.len()));
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if head.format != HEAD_FORMAT {
            return Err(format!(
                "format {:?}, expected {HEAD_FORMAT:?}",
                head.format
            ));
        }
        let root = parse_root(&head.root)?;
        if head.version == 0 {
            return Err("version 0 (versions start at 1)".into());
        }
        if head.snapshot != snapshot_key(&root) {
            return Err(format!(
                "snapshot key {:?} is not {:?}",
                head.snapshot,
                snapshot_key(&root)
            ));
        }
        Ok(head)
    }

    /// The root hash.
    pub fn root_hash(&self) -> Hash32 {
        parse_root(&self.root).unwrap_or(Hash32([0; 32]))
    }
}

/// `snapshots/<root hex>.hxz`.
pub fn snapshot_key(root: &Hash32) -> String {
    format!("snapshots/{}", snapshot_name(root))
}

/// `<root hex>.hxz`.
pub fn snapshot_name(root: &Hash32) -> String {
    format!("{root}.hxz")
}

/// A root hash from 64 hex digits.
pub fn parse_root(hex: &str) -> Result<Hash32, String> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("root {hex:?} is not 64 hex digits"));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = h << 4 | l,
            _ => return Err(format!("root {hex:?} is not lower-case hex")),
        }
    }
    Ok(Hash32(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_heads() {
        let head = Head::new(3, Hash32([0xab; 32]), 4096);
        let bytes = head.encode();
        assert_eq!(Head::decode(&bytes).unwrap(), head);
        assert_eq!(head.root_hash(), Hash32([0xab; 32]));
        let text = String::from_utf8(bytes).unwrap();
        assert!(Head::decode(text.replace("hexz-volume-head/1", "x").as_bytes()).is_err());
        assert!(Head::decode(text.replace("\"version\":3", "\"version\":0").as_bytes()).is_err());
        assert!(Head::decode(text.replace("snapshots/", "other/").as_bytes()).is_err());
        assert!(Head::decode(b"{}").is_err());
    }
}
