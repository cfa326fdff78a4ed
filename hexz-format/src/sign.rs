//! Signatures: an Ed25519 signature over a manifest that names the archive by its
//! root hash, embedded in the envelope or detached (`<archive>.sig`).
//!
//! Manifest (the signed bytes follow the domain string `"hexz-signature-v1\0"`):
//!
//! ```text
//! 0   16 "hexz-manifest-v1"
//! 16  2  format major        18 2  format minor
//! 20  4  flags (bit 0: the archive is encrypted)
//! 24  32 root hash (BLAKE3 of the stored directory)
//! 56  32 catalog hash (BLAKE3 of the stored catalog root page; zeros if none)
//! 88  32 provenance hash (BLAKE3 of the provenance section's bytes; zeros if none)
//! 120 4  parent count n      124 4 reserved, zero
//! 128 32·n parents' root hashes
//! ```
//!
//! Signature block (envelope record kind 16; a detached `.sig` file is
//! `"HXZS" || u16 1 || u16 0 ||` the same bytes):
//!
//! ```text
//! 0  32 Ed25519 public key   32 4 manifest length m (≤ 65 536)   36 m manifest
//! 36+m 64 signature of ("hexz-signature-v1\0" || manifest)
//! ```
//!
//! The root hash commits to every page, section and chunk (docs/FORMAT.md §9), so
//! a valid signature by a trusted key over a manifest whose root hash is the
//! archive's covers every byte a reader can be handed. The other fields are
//! checked too, so a signature names what it vouches for.

use std::fmt;

use ed25519_dalek::Signer;

use crate::bytes::{Cursor, PutLe};
use crate::crypto::PublicKey;
use crate::crypto::keyfile::PublicKeyKind;
use crate::error::{Error, Hash32, Result};
use crate::layout::{FLAG_ENCRYPTED, SECTION_PROVENANCE};
use crate::reader::Archive;

const MANIFEST_MAGIC: &[u8; 16] = b"hexz-manifest-v1";
const DOMAIN: &[u8] = b"hexz-signature-v1\0";
const DETACHED_MAGIC: &[u8; 4] = b"HXZS";
/// Largest manifest accepted.
pub const MAX_MANIFEST_LEN: usize = 1 << 16;

/// What a signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// Whether the archive is encrypted.
    pub encrypted: bool,
    /// The archive's root hash.
    pub root: Hash32,
    /// BLAKE3 of the stored catalog root page.
    pub catalog: Hash32,
    /// BLAKE3 of the provenance section.
    pub provenance: Hash32,
    /// Root hashes of the parents (thin snapshots), in order.
    pub parents: Vec<Hash32>,
}

impl Manifest {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + 32 * self.parents.len());
        out.extend_from_slice(MANIFEST_MAGIC);
        out.put_u16(self.major);
        out.put_u16(self.minor);
        out.put_u32(u32::from(self.encrypted));
        for h in [&self.root, &self.catalog, &self.provenance] {
            out.extend_from_slice(&h.0);
        }
        out.put_u32(self.parents.len() as u32);
        out.put_u32(0);
        for p in &self.parents {
            out.extend_from_slice(&p.0);
        }
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, SignatureProblem> {
        let malformed = |d: &str| SignatureProblem::Malformed(format!("manifest: {d}"));
        let mut c = Cursor::new(bytes, "manifest", 0);
        let magic: [u8; 16] = c.array().map_err(|_| malformed("truncated"))?;
        if &magic != MANIFEST_MAGIC {
            return Err(malformed("bad magic"));
        }
        let t = |e: Error| SignatureProblem::Malformed(format!("manifest: {e}"));
        let major = c.u16().map_err(t)?;
        let minor = c.u16().map_err(t)?;
        let flags = c.u32().map_err(t)?;
        if flags & !1 != 0 {
            return Err(malformed("unknown flags"));
        }
        let root = Hash32(c.array().map_err(t)?);
        let catalog = Hash32(c.array().map_err(t)?);
        let provenance = Hash32(c.array().map_err(t)?);
        let n = c.u32().map_err(t)? as usize;
        c.reserved(4).map_err(t)?;
        if n * 32 != c.remaining() {
            return Err(malformed("parent count does not match its length"));
        }
        let mut parents = Vec::with_capacity(n);
        for _ in 0..n {
            parents.push(Hash32(c.array().map_err(t)?));
        }
        Ok(Self {
            major,
            minor,
            encrypted: flags & 1 != 0,
            root,
            catalog,
            provenance,
            parents,
        })
    }

    /// The manifest of an open archive (loads its provenance section).
    pub fn of(archive: &Archive) -> Result<Self> {
        let trailer = archive.trailer();
        let dir = archive.directory();
        let provenance = match archive.section(SECTION_PROVENANCE)? {
            Some(bytes) => Hash32(*blake3::hash(&bytes).as_bytes()),
            None => Hash32([0; 32]),
        };
        Ok(Self {
            major: trailer.major,
            minor: trailer.minor,
            encrypted: trailer.flags & FLAG_ENCRYPTED != 0,
            root: archive.root_hash(),
            catalog: Hash32(dir.catalog_tree.root.hash),
            provenance,
            parents: parent_roots(archive)?,
        })
    }
}

/// Root hashes of an archive's parents (thin snapshots, nearest first), for its
/// manifest; none for a self-contained archive.
pub fn parent_roots(archive: &Archive) -> Result<Vec<Hash32>> {
    Ok(archive.parents()?.iter().map(|p| p.root_hash).collect())
}

/// What is wrong with a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The signature bytes are truncated or malformed.
    Malformed(String),
    /// The Ed25519 signature does not verify under its key.
    Invalid {
        /// The key.
        key: String,
    },
    /// The signature is valid but by a key the policy does not trust.
    Untrusted {
        /// The signer.
        key: String,
    },
    /// The signature is for another archive (replayed).
    OtherArchive {
        /// Root hash in the signed manifest.
        signed: Hash32,
        /// This archive's root hash.
        actual: Hash32,
    },
    /// The manifest's root matches but another field does not.
    Mismatch {
        /// Which field.
        field: &'static str,
    },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(d) => write!(f, "malformed signature ({d})"),
            Self::Invalid { key } => write!(f, "signature by {key} does not verify"),
            Self::Untrusted { key } => write!(f, "signed by {key}, which is not a trusted key"),
            Self::OtherArchive { signed, actual } => write!(
                f,
                "the signature is for another archive (signed root {signed}, this archive's root {actual})"
            ),
            Self::Mismatch { field } => {
                write!(
                    f,
                    "the signed manifest's {field} differs from the archive's"
                )
            }
        }
    }
}

/// One signature: key, manifest, Ed25519 signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureBlock {
    /// Signer's public key.
    pub public: [u8; 32],
    /// The manifest bytes signed.
    pub manifest: Vec<u8>,
    /// The signature.
    pub signature: [u8; 64],
}

impl fmt::Debug for SignatureBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBlock(by {})", self.key())
    }
}

impl SignatureBlock {
    /// Sign `manifest` with `key`.
    pub fn sign(key: &ed25519_dalek::SigningKey, manifest: &Manifest) -> Self {
        let manifest = manifest.encode();
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&manifest);
        Self {
            public: key.verifying_key().to_bytes(),
            signature: key.sign(&msg).to_bytes(),
            manifest,
        }
    }

    /// The signer's key.
    pub fn key(&self) -> PublicKey {
        PublicKey {
            kind: PublicKeyKind::Ed25519,
            bytes: self.public,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.public);
        out.put_u32(self.manifest.len() as u32);
        out.extend_from_slice(&self.manifest);
        out.extend_from_slice(&self.signature);
    }

    pub(crate) fn decode_body(c: &mut Cursor<'_>) -> Result<Self> {
        let public = c.array()?;
        let len = c.u32()? as usize;
        if len > MAX_MANIFEST_LEN || len + 64 > c.remaining() {
            return Err(c.corrupt(format!("signature manifest of {len} bytes does not fit")));
        }
        let manifest = c.bytes(len)?.to_vec();
        let signature = c.array()?;
        Ok(Self {
            public,
            manifest,
            signature,
        })
    }

    /// The detached form (`.sig` file).
    pub fn to_detached(&self) -> Vec<u8> {
        let mut out = DETACHED_MAGIC.to_vec();
        out.put_u16(1);
        out.put_u16(0);
        self.encode(&mut out);
        out
    }

    /// Parse a detached `.sig` file.
    pub fn from_detached(bytes: &[u8]) -> std::result::Result<Self, SignatureProblem> {
        if bytes.len() < 8 || &bytes[..4] != DETACHED_MAGIC {
            return Err(SignatureProblem::Malformed(
                "not a hexz signature file".into(),
            ));
        }
        if bytes[4..8] != [1, 0, 0, 0] {
            return Err(SignatureProblem::Malformed(
                "unknown signature file version".into(),
            ));
        }
        let mut c = Cursor::new(&bytes[8..], "signature file", 8);
        let block = Self::decode_body(&mut c)
            .map_err(|e| SignatureProblem::Malformed(format!("truncated or damaged: {e}")))?;
        c.finish()
            .map_err(|_| SignatureProblem::Malformed("trailing bytes".into()))?;
        Ok(block)
    }

    /// Check the Ed25519 signature (strict verification).
    pub fn verify(&self) -> std::result::Result<Manifest, SignatureProblem> {
        let invalid = || SignatureProblem::Invalid {
            key: self.key().to_string(),
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.public).map_err(|_| invalid())?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&self.manifest);
        key.verify_strict(&msg, &sig).map_err(|_| invalid())?;
        Manifest::decode(&self.manifest)
    }
}

/// A reader's trust policy: archives must carry a valid signature by one of
/// `keys`; with it set, every chunk read is checked against the signed tree.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Trusted Ed25519 public keys (at least one).
    pub keys: Vec<PublicKey>,
    /// A detached signature (`.sig` file bytes), checked besides embedded ones.
    pub detached: Option<Vec<u8>>,
}

impl fmt::Debug for TrustPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustPolicy")
            .field("keys", &self.keys)
            .field("detached", &self.detached.is_some())
            .finish()
    }
}

/// A signature that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReport {
    /// The signer.
    pub key: PublicKey,
    /// What was signed.
    pub manifest: Manifest,
    /// Embedded (true) or detached.
    pub embedded: bool,
}

/// Check `archive`'s signatures against `keys` (empty: any valid signature is
/// accepted and reported; callers that need trust pass keys). Embedded signatures
/// and `detached` are tried; the first that verifies, by a trusted key, over this
/// archive's manifest wins.
pub fn check_signatures(
    archive: &Archive,
    keys: &[PublicKey],
    detached: Option<&[u8]>,
) -> Result<SignatureReport> {
    let embedded = archive
        .envelope()?
        .map(|e| e.signatures)
        .unwrap_or_default();
    let actual = if embedded.is_empty() && detached.is_none() {
        None
    } else {
        Some(Manifest::of(archive)?)
    };
    pick(
        archive.source_name(),
        embedded,
        detached,
        keys,
        actual.as_ref(),
        true,
    )
}

/// Check the signatures of the archive in `source` without opening it — no key is
/// needed, even for an encrypted archive (a mirror or a build machine that only
/// holds recipients' public keys can run it). The trailer and directory CRCs are
/// checked and the root hash computed; a signature must verify under one of `keys`
/// and name this root hash, format version and encryption flag. The catalog and
/// provenance hashes are not compared and no page or chunk is read: this proves
/// which archive was signed, not that its pages are intact (open it with a key and
/// a trust policy, or `verify_with`, for that).
pub fn check_signatures_unopened(
    source: &dyn crate::source::ReadAt,
    keys: &[PublicKey],
    detached: Option<&[u8]>,
) -> Result<SignatureReport> {
    let tail = crate::crypto::envelope::read_tail(source)?;
    let actual = Manifest {
        major: tail.trailer.major,
        minor: tail.trailer.minor,
        encrypted: tail.trailer.flags & FLAG_ENCRYPTED != 0,
        root: tail.root,
        catalog: Hash32([0; 32]),
        provenance: Hash32([0; 32]),
        parents: Vec::new(),
    };
    let embedded = tail.envelope.map(|e| e.signatures).unwrap_or_default();
    pick(
        source.name(),
        embedded,
        detached,
        keys,
        Some(&actual),
        false,
    )
}

/// Under `policy`, before an encrypted archive's key slots are tried: a trusted
/// signature (embedded in `envelope` or the policy's detached one) must name the
/// archive whose trailer and stored `directory` are given — its root hash,
/// format version and encryption flag. The directory's CRC is checked first (a
/// damaged directory is corruption, not a bad signature).
pub(crate) fn check_before_unlock(
    source_name: &str,
    trailer: &crate::layout::Trailer,
    directory: &[u8],
    envelope: Option<&crate::crypto::envelope::Envelope>,
    policy: &TrustPolicy,
) -> Result<()> {
    if policy.keys.is_empty() {
        return Err(Error::InvalidSetting {
            setting: "trust policy",
            detail: "no trusted public key given".into(),
        });
    }
    let crc = crc32fast::hash(directory);
    if crc != trailer.directory_crc {
        return Err(Error::Checksum {
            what: "directory",
            offset: trailer.directory_offset,
            expected: trailer.directory_crc,
            actual: crc,
        });
    }
    let actual = Manifest {
        major: trailer.major,
        minor: trailer.minor,
        encrypted: trailer.flags & FLAG_ENCRYPTED != 0,
        root: Hash32(*blake3::hash(directory).as_bytes()),
        catalog: Hash32([0; 32]),
        provenance: Hash32([0; 32]),
        parents: Vec::new(),
    };
    let embedded = envelope.map(|e| e.signatures.clone()).unwrap_or_default();
    pick(
        source_name.to_string(),
        embedded,
        policy.detached.as_deref(),
        &policy.keys,
        Some(&actual),
        false,
    )?;
    Ok(())
}

/// The first candidate signature that is well-formed, verifies, is by a trusted key
/// and matches `actual` (every field when `full`, else root, version and
/// encryption flag); otherwise the most telling problem.
fn pick(
    source_name: String,
    embedded: Vec<SignatureBlock>,
    detached: Option<&[u8]>,
    keys: &[PublicKey],
    actual: Option<&Manifest>,
    full: bool,
) -> Result<SignatureReport> {
    let mut candidates: Vec<(std::result::Result<SignatureBlock, SignatureProblem>, bool)> =
        Vec::new();
    if let Some(bytes) = detached {
        candidates.push((SignatureBlock::from_detached(bytes), false));
    }
    candidates.extend(embedded.into_iter().map(|s| (Ok(s), true)));
    let Some(actual) = actual.filter(|_| !candidates.is_empty()) else {
        return Err(Error::Unsigned { source_name });
    };
    let mut first_problem: Option<(u8, SignatureProblem)> = None;
    let mut note = |rank: u8, p: SignatureProblem| {
        if first_problem.as_ref().is_none_or(|(r, _)| rank > *r) {
            first_problem = Some((rank, p));
        }
    };
    for (candidate, embedded) in candidates {
        let block = match candidate {
            Ok(b) => b,
            Err(p) => {
                note(3, p);
                continue;
            }
        };
        let key = block.key();
        let trusted = keys.is_empty() || keys.contains(&key);
        let manifest = match block.verify() {
            Ok(m) => m,
            Err(p) => {
                note(if trusted { 4 } else { 1 }, p);
                continue;
            }
        };
        if !trusted {
            note(
                2,
                SignatureProblem::Untrusted {
                    key: key.to_string(),
                },
            );
            continue;
        }
        if manifest.root != actual.root {
            note(
                5,
                SignatureProblem::OtherArchive {
                    signed: manifest.root,
                    actual: actual.root,
                },
            );
            continue;
        }
        let field = if (manifest.major, manifest.minor) != (actual.major, actual.minor) {
            Some("format version")
        } else if manifest.encrypted != actual.encrypted {
            Some("encryption flag")
        } else if full && manifest.catalog != actual.catalog {
            Some("catalog hash")
        } else if full && manifest.provenance != actual.provenance {
            Some("provenance hash")
        } else if full && manifest.parents != actual.parents {
            Some("parents")
        } else {
            None
        };
        if let Some(field) = field {
            note(5, SignatureProblem::Mismatch { field });
            continue;
        }
        return Ok(SignatureReport {
            key,
            manifest,
            embedded,
        });
    }
    Err(Error::BadSignature {
        source_name,
        problem: first_problem
            .map(|(_, p)| p)
            .unwrap_or(SignatureProblem::Malformed("no signature".into())),
    })
}

/// Signing settings of a writer: sign the finished archive's manifest with `key`,
/// embedding the signature in the envelope unless `detached` (then it is only
/// returned in the [`Summary`](crate::Summary), for a `.sig` file).
#[derive(Clone)]
pub struct Signing {
    /// The Ed25519 key.
    pub key: std::sync::Arc<ed25519_dalek::SigningKey>,
    /// Leave the archive unsigned and return the signature only.
    pub detached: bool,
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signing(by {}, detached: {}, <redacted>)",
            PublicKey {
                kind: PublicKeyKind::Ed25519,
                bytes: self.key.verifying_key().to_bytes()
            },
            self.detached
        )
    }
}
