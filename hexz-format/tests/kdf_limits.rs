//! Key slots from an unauthenticated envelope: the key-derivation work a reader
//! does is bounded before Argon2id runs, and under a trust policy the signature
//! is checked before any slot is tried.

use std::sync::Arc;

use hexz_format::crypto::envelope::{Envelope, read_tail};
use hexz_format::crypto::keyfile::PublicKeyKind;
use hexz_format::crypto::keyslot::KeySlot;
use hexz_format::{
    Archive, Encryption, Error, KdfLimits, KdfParameter, KdfParams, MemorySource, ReadOptions,
    SecretKeyFile, Signing, SlotSpec, TrustPolicy, Unlock,
};
use zeroize::Zeroizing;

use crate::common::{build, codecs, sample_files, small_options};

const CHEAP: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    lanes: 1,
};

/// Above the default reader limit (256 MiB), within the format's bound (1 GiB).
const COSTLY: KdfParams = KdfParams {
    memory_kib: 300 * 1024,
    iterations: 1,
    lanes: 1,
};

fn passphrase(p: &str) -> SlotSpec {
    SlotSpec::Passphrase {
        passphrase: Zeroizing::new(p.as_bytes().to_vec()),
        kdf: CHEAP,
    }
}

fn signer(seed: u8) -> SecretKeyFile {
    SecretKeyFile::from_seed(PublicKeyKind::Ed25519, [seed; 32])
}

/// An encrypted archive with `slots`, signed (embedded) by `signed_by` if given.
fn archive(slots: &[SlotSpec], signed_by: Option<u8>) -> Vec<u8> {
    let mut o = small_options(Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap()));
    o.encryption = Some(Encryption::new(slots).unwrap());
    o.signing = signed_by.map(|seed| Signing {
        key: Arc::new(signer(seed).signing_key().unwrap()),
        detached: false,
    });
    build(&sample_files(), o).0
}

/// `bytes` with its envelope edited by `edit` (as a mirror could: the envelope
/// is outside the root hash and the signature).
fn with_envelope(bytes: &[u8], edit: impl FnOnce(&mut Envelope)) -> Vec<u8> {
    let tail = read_tail(&MemorySource::new(bytes.to_vec(), "a.hxz")).unwrap();
    let mut env = tail.envelope.unwrap();
    edit(&mut env);
    let mut trailer = tail.trailer;
    let dir_end = trailer.directory_offset + u64::from(trailer.directory_len);
    assert_eq!(trailer.envelope_offset, dir_end);
    let encoded = env.encode().unwrap();
    trailer.envelope_len = encoded.len() as u32;
    let mut out = bytes[..dir_end as usize].to_vec();
    out.extend_from_slice(&encoded);
    out.extend_from_slice(&trailer.encode());
    out
}

/// Give passphrase slot `n` Argon2id parameters `kdf` (its wrapped keys stay).
fn set_kdf(env: &mut Envelope, n: usize, kdf: KdfParams) {
    if let KeySlot::Passphrase { kdf: k, .. } = &mut env.slots[n] {
        *k = kdf;
    }
}

fn open(bytes: &[u8], options: ReadOptions) -> hexz_format::Result<Archive> {
    Archive::open(
        Arc::new(MemorySource::new(bytes.to_vec(), "a.hxz")),
        &codecs(),
        options,
    )
}

fn with_passphrase(p: &str) -> ReadOptions {
    ReadOptions {
        unlock: Unlock::default().passphrase(p),
        ..ReadOptions::default()
    }
}

fn trusting(seed: u8, p: &str) -> ReadOptions {
    ReadOptions {
        trust: Some(TrustPolicy {
            keys: vec![signer(seed).public()],
            detached: None,
        }),
        ..with_passphrase(p)
    }
}

#[test]
fn a_slot_above_the_memory_limit_is_refused_and_can_be_allowed() {
    let bytes = with_envelope(&archive(&[passphrase("pw")], None), |e| {
        set_kdf(e, 0, COSTLY);
    });
    let err = open(&bytes, with_passphrase("pw")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KdfLimit {
                slot: 0,
                parameter: KdfParameter::Memory,
                value: 307_200,
                limit: 262_144,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_corruption());
    let text = err.to_string();
    for needle in [
        "key slot 0",
        "Argon2id memory",
        "--kdf-max-memory",
        "kdf_max_memory=",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // Iterations too.
    let bytes = with_envelope(&archive(&[passphrase("pw")], None), |e| {
        set_kdf(
            e,
            0,
            KdfParams {
                iterations: 9,
                ..CHEAP
            },
        );
    });
    let err = open(&bytes, with_passphrase("pw")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KdfLimit {
                parameter: KdfParameter::Iterations,
                value: 9,
                limit: 8,
                ..
            }
        ),
        "{err}"
    );
    // A reader that raises the limit derives with the slot's parameters (the
    // edited slot then does not open: it was wrapped with other ones).
    let raised = ReadOptions {
        kdf_limits: KdfLimits {
            iterations: 9,
            ..KdfLimits::default()
        },
        ..with_passphrase("pw")
    };
    let err = open(&bytes, raised).unwrap_err();
    assert!(matches!(err, Error::WrongKey { slots: 1, .. }), "{err}");
}

#[test]
fn at_most_four_passphrase_slots_are_tried() {
    let slots: Vec<SlotSpec> = (0..10).map(|i| passphrase(&format!("pw{i}"))).collect();
    let bytes = archive(&slots, None);
    let err = open(&bytes, with_passphrase("none of them")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KdfLimit {
                slot: 4,
                parameter: KdfParameter::PassphraseSlots,
                value: 10,
                limit: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--kdf-max-slots"), "{err}");
    // Slot 3's passphrase opens; slot 7's needs the limit raised.
    open(&bytes, with_passphrase("pw3")).unwrap();
    assert!(open(&bytes, with_passphrase("pw7")).is_err());
    let raised = ReadOptions {
        kdf_limits: KdfLimits {
            passphrase_slots: 10,
            ..KdfLimits::default()
        },
        ..with_passphrase("pw7")
    };
    open(&bytes, raised).unwrap();
    // A key file is not limited by passphrase slots.
    let mut slots = slots;
    slots.push(SlotSpec::KeyFile(Zeroizing::new([4; 32])));
    let bytes = archive(&slots, None);
    let key = ReadOptions {
        unlock: Unlock::default().key_file([4; 32]),
        ..ReadOptions::default()
    };
    open(&bytes, key).unwrap();
}

#[test]
fn a_costly_slot_added_in_front_does_not_block_the_real_one() {
    let bytes = with_envelope(&archive(&[passphrase("pw")], None), |e| {
        let mut hostile = e.slots[0].clone();
        if let KeySlot::Passphrase { kdf, .. } = &mut hostile {
            *kdf = COSTLY;
        }
        e.slots.insert(0, hostile);
    });
    open(&bytes, with_passphrase("pw")).unwrap();
}

#[test]
fn under_a_trust_policy_the_signature_is_checked_before_any_kdf() {
    // Unsigned, with a slot above the limits: `Unsigned`, not the KDF's error.
    let unsigned = with_envelope(&archive(&[passphrase("pw")], None), |e| {
        set_kdf(e, 0, COSTLY);
    });
    let err = open(&unsigned, trusting(1, "pw")).unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");
    // Signed by another key: `BadSignature`.
    let other = with_envelope(&archive(&[passphrase("pw")], Some(2)), |e| {
        set_kdf(e, 0, COSTLY);
    });
    let err = open(&other, trusting(1, "pw")).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    // A signature of another archive moved onto this one: `BadSignature`.
    let donor = archive(&[passphrase("pw")], Some(1));
    let signature = read_tail(&MemorySource::new(donor, "d"))
        .unwrap()
        .envelope
        .unwrap()
        .signatures;
    let replayed = with_envelope(&unsigned, |e| e.signatures = signature);
    let err = open(&replayed, trusting(1, "pw")).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    // Signed by the trusted key: the signature passes, then the limit applies.
    let trusted = with_envelope(&archive(&[passphrase("pw")], Some(1)), |e| {
        set_kdf(e, 0, COSTLY);
    });
    let err = open(&trusted, trusting(1, "pw")).unwrap_err();
    assert!(matches!(err, Error::KdfLimit { .. }), "{err}");
    // And the untouched archive opens under the policy.
    open(&archive(&[passphrase("pw")], Some(1)), trusting(1, "pw")).unwrap();
}
