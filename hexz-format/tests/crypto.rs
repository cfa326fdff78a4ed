//! Encryption, key slots, signatures and trusted reads.

use std::sync::Arc;

use hexz_format::crypto::keyfile::PublicKeyKind;
use hexz_format::crypto::manage;
use hexz_format::layout::{FLAG_ENCRYPTED, FLAG_SIGNED, HASH_BLAKE3_KEYED};
use hexz_format::sign::SignatureProblem;
use hexz_format::{
    Archive, Encryption, Error, KdfParams, MemorySource, ReadOptions, SecretKeyFile, Signing,
    SlotSpec, TrustPolicy, Unlock,
};
use zeroize::Zeroizing;

use crate::common::{Files, build, codecs, noise, sample_files, small_options};

/// Cheap Argon2id costs for tests (the default is 64 MiB, 3 passes).
const TEST_KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    lanes: 1,
};

fn passphrase(p: &str) -> SlotSpec {
    SlotSpec::Passphrase {
        passphrase: Zeroizing::new(p.as_bytes().to_vec()),
        kdf: TEST_KDF,
    }
}

fn signer(seed: u8) -> SecretKeyFile {
    SecretKeyFile::from_seed(PublicKeyKind::Ed25519, [seed; 32])
}

fn signing(seed: u8, detached: bool) -> Signing {
    Signing {
        key: Arc::new(signer(seed).signing_key().unwrap()),
        detached,
    }
}

fn zstd() -> Arc<dyn hexz_format::Compressor> {
    Arc::new(hexz_zstd::ZstdCompressor::new(3).unwrap())
}

fn open_with(bytes: &[u8], options: ReadOptions) -> hexz_format::Result<Archive> {
    Archive::open(
        Arc::new(MemorySource::new(bytes.to_vec(), "test.hxz")),
        &codecs(),
        options,
    )
}

fn unlock_opts(unlock: Unlock) -> ReadOptions {
    ReadOptions {
        unlock,
        ..ReadOptions::default()
    }
}

fn trust(seed: u8, unlock: Unlock, detached: Option<Vec<u8>>) -> ReadOptions {
    ReadOptions {
        unlock,
        trust: Some(TrustPolicy {
            keys: vec![signer(seed).public()],
            detached,
        }),
        ..ReadOptions::default()
    }
}

fn read_all(a: &Archive, files: &Files) -> hexz_format::Result<()> {
    for (name, data) in files {
        let e = a.entry(name)?;
        assert_eq!(&a.read_entry(&e)?, data, "{name}");
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn encrypted_archive_reads_back_with_each_slot_kind_and_hides_names_and_content() {
    let files = sample_files();
    let identity = SecretKeyFile::from_seed(PublicKeyKind::X25519, [9; 32]);
    let mut o = small_options(zstd());
    o.encryption = Some(
        Encryption::new(&[
            passphrase("correct horse"),
            SlotSpec::KeyFile(Zeroizing::new([5; 32])),
            SlotSpec::Recipient(identity.public().bytes),
        ])
        .unwrap(),
    );
    let (bytes, summary) = build(&files, o);
    for (name, data) in &files {
        assert!(!contains(&bytes, name.as_bytes()), "name {name} in clear");
        if data.len() >= 64 && data.iter().any(|&b| b != 0) {
            assert!(!contains(&bytes, &data[..64]), "content of {name} in clear");
        }
    }
    assert!(!contains(&bytes, b"HXZD"), "directory in clear");
    for unlock in [
        Unlock::default().passphrase("correct horse"),
        Unlock::default().key_file([5; 32]),
        Unlock::default().identity(*identity.seed()),
    ] {
        let a = open_with(&bytes, unlock_opts(unlock)).unwrap();
        assert!(a.is_encrypted());
        assert_eq!(a.trailer().flags & FLAG_ENCRYPTED, FLAG_ENCRYPTED);
        assert_eq!(a.directory().hash, HASH_BLAKE3_KEYED);
        assert_eq!(a.root_hash(), summary.root_hash);
        read_all(&a, &files).unwrap();
        a.verify().unwrap();
    }
}

#[test]
fn wrong_or_missing_key_is_a_key_error_not_corruption() {
    let files = sample_files();
    let mut o = small_options(zstd());
    o.encryption = Some(
        Encryption::new(&[
            passphrase("right"),
            SlotSpec::KeyFile(Zeroizing::new([1; 32])),
        ])
        .unwrap(),
    );
    let (bytes, _) = build(&files, o);
    let err = open_with(&bytes, ReadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::KeyRequired { .. }), "{err}");
    let err = open_with(&bytes, unlock_opts(Unlock::default().passphrase("wrong"))).unwrap_err();
    assert!(matches!(err, Error::WrongKey { slots: 1, .. }), "{err}");
    assert!(!err.is_corruption());
    assert!(err.to_string().contains("wrong key"), "{err}");
    let err = open_with(&bytes, unlock_opts(Unlock::default().key_file([2; 32]))).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    // A recipient key where there is no recipient slot: nothing to try.
    let err = open_with(&bytes, unlock_opts(Unlock::default().identity([3; 32]))).unwrap_err();
    assert!(matches!(err, Error::WrongKey { slots: 0, .. }), "{err}");
    // A damaged slot is corruption (the envelope has a CRC), not a wrong key.
    let mut damaged = bytes.clone();
    let env_off = {
        let a = open_with(&bytes, unlock_opts(Unlock::default().key_file([1; 32]))).unwrap();
        a.trailer().envelope_offset as usize
    };
    damaged[env_off + 40] ^= 1;
    let err = open_with(&damaged, unlock_opts(Unlock::default().passphrase("right"))).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn signing_does_not_change_plain_archives_and_embeds_a_signature() {
    let files = sample_files();
    let (plain, plain_summary) = build(&files, small_options(zstd()));
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, false));
    let (signed, summary) = build(&files, o);
    assert_eq!(summary.root_hash, plain_summary.root_hash);
    // Same body and directory; only the envelope and trailer differ.
    let dir_end = plain.len() - 64;
    assert_eq!(signed[..dir_end], plain[..dir_end]);
    let a = open_with(&signed, trust(1, Unlock::default(), None)).unwrap();
    assert!(a.is_trusted());
    assert_eq!(a.trailer().flags & FLAG_SIGNED, FLAG_SIGNED);
    read_all(&a, &files).unwrap();
    let report = hexz_format::sign::check_signatures(&a, &[signer(1).public()], None).unwrap();
    assert!(report.embedded);
    assert_eq!(report.manifest.root, a.root_hash());
}

#[test]
fn signature_errors_are_distinct() {
    let files = sample_files();
    let (plain, _) = build(&files, small_options(zstd()));
    // Missing signature.
    let err = open_with(&plain, trust(1, Unlock::default(), None)).unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");
    // Detached signature: good, by another key, truncated, replayed.
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, true));
    let (same, summary) = build(&files, o);
    assert_eq!(
        same, plain,
        "a detached signature leaves the archive as it was"
    );
    let sig = summary.signature.unwrap().to_detached();
    open_with(&plain, trust(1, Unlock::default(), Some(sig.clone()))).unwrap();
    let problem = |r: hexz_format::Result<Archive>| match r.unwrap_err() {
        Error::BadSignature { problem, .. } => problem,
        other => panic!("expected a bad signature, got {other}"),
    };
    assert!(matches!(
        problem(open_with(
            &plain,
            trust(2, Unlock::default(), Some(sig.clone()))
        )),
        SignatureProblem::Untrusted { .. }
    ));
    assert!(matches!(
        problem(open_with(
            &plain,
            trust(1, Unlock::default(), Some(sig[..sig.len() - 1].to_vec()))
        )),
        SignatureProblem::Malformed(_)
    ));
    let mut forged = sig.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        problem(open_with(&plain, trust(1, Unlock::default(), Some(forged)))),
        SignatureProblem::Invalid { .. }
    ));
    let other_files: Files = vec![("z".into(), noise(3, 5000))];
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, true));
    let (_, other) = build(&other_files, o);
    let replayed = other.signature.unwrap().to_detached();
    assert!(matches!(
        problem(open_with(
            &plain,
            trust(1, Unlock::default(), Some(replayed))
        )),
        SignatureProblem::OtherArchive { .. }
    ));
}

/// Flip every byte of a small archive: a deep verify and a trusted read of every
/// entry must both fail — no flip passes silently.
fn every_flip_is_caught(bytes: &[u8], files: &Files, options: &ReadOptions) {
    // The unflipped archive passes both.
    let a = open_with(bytes, options.clone()).unwrap();
    a.verify().unwrap();
    read_all(&a, files).unwrap();
    for i in 0..bytes.len() {
        let mut b = bytes.to_vec();
        b[i] ^= 0x01;
        let verified = open_with(&b, options.clone()).and_then(|a| a.verify());
        assert!(
            verified.is_err(),
            "flip at {i} of {}: deep verify passed",
            bytes.len()
        );
        let read = open_with(&b, options.clone()).and_then(|a| {
            for (name, data) in files {
                let e = a.entry(name)?;
                if &a.read_entry(&e)? != data {
                    panic!("flip at {i}: a trusted read returned wrong bytes for {name}");
                }
            }
            Ok(())
        });
        assert!(
            read.is_err(),
            "flip at {i} of {}: trusted read passed",
            bytes.len()
        );
    }
}

fn small_files() -> Files {
    vec![
        ("a.txt".into(), b"hello, hexz\n".repeat(40)),
        ("dir/b.bin".into(), noise(11, 700)),
        ("c".into(), b"hello, hexz\n".repeat(40)),
    ]
}

#[test]
fn every_byte_flip_of_a_signed_archive_is_caught() {
    let files = small_files();
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, false));
    let (bytes, _) = build(&files, o);
    every_flip_is_caught(&bytes, &files, &trust(1, Unlock::default(), None));
}

#[test]
fn every_byte_flip_of_a_signed_encrypted_archive_is_caught() {
    let files = small_files();
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, false));
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([4; 32]))]).unwrap());
    let (bytes, _) = build(&files, o);
    every_flip_is_caught(
        &bytes,
        &files,
        &trust(1, Unlock::default().key_file([4; 32]), None),
    );
}

#[test]
fn keys_add_and_remove_rewrite_only_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.hxz");
    let files = sample_files();
    let mut o = small_options(zstd());
    o.encryption = Some(Encryption::new(&[passphrase("one")]).unwrap());
    o.signing = Some(signing(1, false));
    let (bytes, summary) = build(&files, o);
    std::fs::write(&path, &bytes).unwrap();
    let open_path = |unlock: Unlock| Archive::open_path(&path, &codecs(), trust(1, unlock, None));
    let a = open_path(Unlock::default().passphrase("one")).unwrap();
    let identity = SecretKeyFile::from_seed(PublicKeyKind::X25519, [8; 32]);
    let n = manage::add_key_slot(&a, &path, &SlotSpec::Recipient(identity.public().bytes)).unwrap();
    assert_eq!(n, 1);
    let b = open_path(Unlock::default().identity(*identity.seed())).unwrap();
    assert_eq!(b.root_hash(), summary.root_hash);
    read_all(&b, &files).unwrap();
    manage::remove_key_slot(&b, &path, 0).unwrap();
    let err = open_path(Unlock::default().passphrase("one")).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    let c = open_path(Unlock::default().identity(*identity.seed())).unwrap();
    assert!(
        manage::remove_key_slot(&c, &path, 0).is_err(),
        "last slot removed"
    );
    // The body and directory never moved.
    let now = std::fs::read(&path).unwrap();
    let dir_end = (c.trailer().directory_offset + u64::from(c.trailer().directory_len)) as usize;
    assert_eq!(now[..dir_end], bytes[..dir_end]);
}

#[test]
fn a_signature_can_be_embedded_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.hxz");
    let files = sample_files();
    let (bytes, summary) = build(&files, small_options(zstd()));
    std::fs::write(&path, &bytes).unwrap();
    let a = Archive::open_path(&path, &codecs(), ReadOptions::default()).unwrap();
    let manifest = hexz_format::Manifest::of(&a).unwrap();
    let block = hexz_format::SignatureBlock::sign(&signer(2).signing_key().unwrap(), &manifest);
    manage::embed_signature(&a, &path, block).unwrap();
    let b = Archive::open_path(&path, &codecs(), trust(2, Unlock::default(), None)).unwrap();
    assert_eq!(b.root_hash(), summary.root_hash);
    read_all(&b, &files).unwrap();
}

#[test]
fn a_child_built_with_the_parents_hasher_shares_its_chunk_ids() {
    let files = sample_files();
    let mut o = small_options(zstd());
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([6; 32]))]).unwrap());
    let (parent_bytes, _) = build(&files, o);
    let parent = open_with(
        &parent_bytes,
        unlock_opts(Unlock::default().key_file([6; 32])),
    )
    .unwrap();
    let mut o = small_options(zstd());
    o.encryption = Some(
        Encryption::with_hasher(
            &[SlotSpec::KeyFile(Zeroizing::new([7; 32]))],
            &parent.chunk_hasher(),
        )
        .unwrap(),
    );
    let (child_bytes, _) = build(&files, o);
    let child = open_with(
        &child_bytes,
        unlock_opts(Unlock::default().key_file([7; 32])),
    )
    .unwrap();
    let ids = |a: &Archive| {
        a.chunk_records(0, a.len())
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&parent), ids(&child));
    // Another archive with its own dedup key has other ids for the same bytes.
    let mut o = small_options(zstd());
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([7; 32]))]).unwrap());
    let (other_bytes, _) = build(&files, o);
    let other = open_with(
        &other_bytes,
        unlock_opts(Unlock::default().key_file([7; 32])),
    )
    .unwrap();
    assert_ne!(ids(&parent), ids(&other));
    // The child's data key is its own: the parent's key does not open it.
    assert!(
        open_with(
            &child_bytes,
            unlock_opts(Unlock::default().key_file([6; 32]))
        )
        .is_err()
    );
}

#[test]
fn secret_key_files_round_trip_and_protect() {
    let k = SecretKeyFile::generate(PublicKeyKind::Ed25519).unwrap();
    let plain = k.encode(None).unwrap();
    assert!(!SecretKeyFile::is_protected(&plain));
    let back = SecretKeyFile::decode(&plain, None).unwrap();
    assert_eq!(back.public(), k.public());
    let protected = k.encode(Some((b"pw", TEST_KDF))).unwrap();
    assert!(SecretKeyFile::is_protected(&protected));
    assert!(matches!(
        SecretKeyFile::decode(&protected, None).unwrap_err(),
        Error::KeyRequired { .. }
    ));
    assert!(matches!(
        SecretKeyFile::decode(&protected, Some(b"nope")).unwrap_err(),
        Error::WrongKey { .. }
    ));
    assert_eq!(
        SecretKeyFile::decode(&protected, Some(b"pw"))
            .unwrap()
            .public(),
        k.public()
    );
    let public = k.public().to_string();
    assert!(public.starts_with("hexz-ed25519 "));
    assert_eq!(hexz_format::PublicKey::parse(&public).unwrap(), k.public());
    assert!(!format!("{k:?}").contains(&public[13..]));
}

#[test]
fn signatures_of_an_encrypted_archive_check_without_its_key() {
    let files = small_files();
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, false));
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([4; 32]))]).unwrap());
    let (bytes, summary) = build(&files, o);
    let source = MemorySource::new(bytes.clone(), "sealed.hxz");
    let report =
        hexz_format::sign::check_signatures_unopened(&source, &[signer(1).public()], None).unwrap();
    assert_eq!(report.manifest.root, summary.root_hash);
    assert!(report.manifest.encrypted);
    let err = hexz_format::sign::check_signatures_unopened(&source, &[signer(2).public()], None)
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    // A damaged directory is caught by its CRC before any signature is looked at.
    let a = open_with(&bytes, unlock_opts(Unlock::default().key_file([4; 32]))).unwrap();
    let mut damaged = bytes.clone();
    damaged[a.trailer().directory_offset as usize + 3] ^= 1;
    let source = MemorySource::new(damaged, "sealed.hxz");
    assert!(
        hexz_format::sign::check_signatures_unopened(&source, &[signer(1).public()], None)
            .unwrap_err()
            .is_corruption()
    );
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let key = [0xAB; 32];
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let spec = SlotSpec::KeyFile(Zeroizing::new(key));
    let enc = Encryption::new(std::slice::from_ref(&spec)).unwrap();
    let unlock = Unlock::default().key_file(key).passphrase("hunter2");
    let options = ReadOptions {
        unlock: unlock.clone(),
        ..ReadOptions::default()
    };
    for text in [
        format!("{spec:?}"),
        format!("{enc:?}"),
        format!("{unlock:?}"),
        format!("{options:?}"),
        format!("{:?}", enc.chunk_hasher()),
        format!("{:?}", signing(1, false)),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains(&hex), "{text}");
        assert!(!text.contains("171, 171"), "{text}");
    }
}

#[test]
fn malformed_envelopes_and_signature_files_are_errors_not_panics() {
    use hexz_format::crypto::envelope::Envelope;
    let mut o = small_options(zstd());
    o.signing = Some(signing(1, false));
    o.encryption = Some(
        Encryption::new(&[
            passphrase("p"),
            SlotSpec::KeyFile(Zeroizing::new([4; 32])),
            SlotSpec::Recipient([9; 32]),
        ])
        .unwrap(),
    );
    let (bytes, summary) = build(&small_files(), o);
    let a = open_with(&bytes, unlock_opts(Unlock::default().key_file([4; 32]))).unwrap();
    let (at, len) = (
        a.trailer().envelope_offset as usize,
        a.trailer().envelope_len as usize,
    );
    let env = &bytes[at..at + len];
    let decoded = Envelope::decode(env, at as u64).unwrap();
    assert_eq!(decoded.slots.len(), 3);
    assert_eq!(decoded.signatures.len(), 1);
    assert_eq!(decoded.encode().unwrap(), env);
    for cut in 0..env.len() {
        assert!(
            Envelope::decode(&env[..cut], 0).is_err(),
            "truncated at {cut}"
        );
    }
    for i in 0..env.len() {
        let mut e = env.to_vec();
        e[i] ^= 0x80;
        assert!(Envelope::decode(&e, 0).is_err(), "flip at {i}");
    }
    // A writer refuses an envelope no reader would accept.
    let mut crowded = decoded.clone();
    let limit = hexz_format::crypto::envelope::MAX_RECORDS;
    crowded.signatures = vec![decoded.signatures[0].clone(); limit - crowded.slots.len()];
    assert!(crowded.encode().is_ok());
    crowded.signatures.push(decoded.signatures[0].clone());
    let err = crowded.encode().unwrap_err();
    assert!(err.to_string().contains("above the limit 256"), "{err}");
    let sig = hexz_format::SignatureBlock::sign(
        &signer(1).signing_key().unwrap(),
        &hexz_format::Manifest::of(&a).unwrap(),
    )
    .to_detached();
    assert_eq!(
        hexz_format::Manifest::of(&a).unwrap().root,
        summary.root_hash
    );
    for cut in 0..sig.len() {
        assert!(hexz_format::SignatureBlock::from_detached(&sig[..cut]).is_err());
    }
    for i in 0..sig.len() {
        let mut s = sig.clone();
        s[i] ^= 0x01;
        let bad = hexz_format::SignatureBlock::from_detached(&s).and_then(|b| b.verify());
        assert!(bad.is_err(), "flip at {i} of the signature file");
    }
}

#[test]
fn an_encrypted_archive_with_the_most_sections_opens() {
    let mut o = small_options(zstd());
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([4; 32]))]).unwrap());
    let mut w = hexz_format::ArchiveWriter::new(Vec::new(), o).unwrap();
    w.add_bytes("a", b"abc", hexz_format::EntryMeta::default())
        .unwrap();
    for i in 0..hexz_format::layout::MAX_SECTIONS {
        w.add_section(100 + (i % 50) as u16, false, vec![i as u8; 8])
            .unwrap();
    }
    let (bytes, _) = w.finish().unwrap();
    let a = open_with(&bytes, unlock_opts(Unlock::default().key_file([4; 32]))).unwrap();
    assert_eq!(
        a.trailer().directory_len,
        hexz_format::layout::MAX_DIRECTORY_LEN
    );
    a.verify().unwrap();
    assert_eq!(a.section(149).unwrap().unwrap(), vec![49u8; 8]);
}

/// The golden sealed and signed archive (`testdata/v1/sealed-signed.hxz`): its keys,
/// content and expectations are fixed here; the file is written once by
/// `write_golden_sealed_signed` and must never change.
mod golden {
    use super::*;

    pub const FILE: &str = "sealed-signed.hxz";
    pub const KEY_FILE: [u8; 32] = [0x11; 32];
    pub const IDENTITY: [u8; 32] = [0x22; 32];
    pub const SIGNER: [u8; 32] = [0x33; 32];
    pub const PASSPHRASE: &str = "golden passphrase";

    pub fn path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/v1")
            .join(FILE)
    }

    pub fn files() -> Files {
        vec![
            ("readme.txt".into(), b"sealed and signed\n".repeat(30)),
            ("data/noise.bin".into(), noise(21, 6000)),
            ("data/copy.bin".into(), noise(21, 6000)),
            ("zeros".into(), vec![0; 9000]),
        ]
    }

    pub fn signer() -> SecretKeyFile {
        SecretKeyFile::from_seed(PublicKeyKind::Ed25519, SIGNER)
    }
}

#[test]
#[ignore = "writes testdata/v1/sealed-signed.hxz; run once with HEXZ_WRITE_GOLDEN=1"]
fn write_golden_sealed_signed() {
    if std::env::var("HEXZ_WRITE_GOLDEN").as_deref() != Ok("1") {
        return;
    }
    assert!(!golden::path().exists(), "golden files are never rewritten");
    let identity = SecretKeyFile::from_seed(PublicKeyKind::X25519, golden::IDENTITY);
    let mut o = small_options(zstd());
    o.encryption = Some(
        Encryption::new(&[
            SlotSpec::Passphrase {
                passphrase: Zeroizing::new(golden::PASSPHRASE.as_bytes().to_vec()),
                kdf: TEST_KDF,
            },
            SlotSpec::KeyFile(Zeroizing::new(golden::KEY_FILE)),
            SlotSpec::Recipient(identity.public().bytes),
        ])
        .unwrap(),
    );
    o.signing = Some(Signing {
        key: Arc::new(golden::signer().signing_key().unwrap()),
        detached: false,
    });
    let (bytes, _) = build(&golden::files(), o);
    std::fs::write(golden::path(), bytes).unwrap();
}

#[test]
fn golden_sealed_signed_archive_reads_with_each_key_under_trust() {
    let bytes = std::fs::read(golden::path()).unwrap();
    let identity = SecretKeyFile::from_seed(PublicKeyKind::X25519, golden::IDENTITY);
    let trust = Some(TrustPolicy {
        keys: vec![golden::signer().public()],
        detached: None,
    });
    let mut roots = Vec::new();
    for unlock in [
        Unlock::default().passphrase(golden::PASSPHRASE),
        Unlock::default().key_file(golden::KEY_FILE),
        Unlock::default().identity(*identity.seed()),
    ] {
        let options = ReadOptions {
            unlock,
            trust: trust.clone(),
            ..ReadOptions::default()
        };
        let a = open_with(&bytes, options).unwrap();
        assert!(a.is_encrypted() && a.is_trusted());
        read_all(&a, &golden::files()).unwrap();
        a.verify().unwrap();
        roots.push(a.root_hash());
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    // Without a key the signature still names the archive.
    let source = MemorySource::new(bytes, golden::FILE);
    let report =
        hexz_format::sign::check_signatures_unopened(&source, &[golden::signer().public()], None)
            .unwrap();
    assert_eq!(report.manifest.root, roots[0]);
}

#[test]
fn one_encryption_value_seals_one_archive() {
    // Nonces come from offsets: a second archive under the same data key would
    // reuse them, so a second writer with the same settings (or a clone) is refused.
    let mut o = small_options(zstd());
    o.encryption = Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([5; 32]))]).unwrap());
    let again = o.clone();
    let _first = build(&sample_files(), o);
    let err = hexz_format::ArchiveWriter::new(Vec::new(), again).unwrap_err();
    assert!(
        matches!(
            err,
            hexz_format::Error::InvalidSetting {
                setting: "encryption",
                ..
            }
        ),
        "{err}"
    );
    // Fresh settings are fine.
    let mut fresh = small_options(zstd());
    fresh.encryption =
        Some(Encryption::new(&[SlotSpec::KeyFile(Zeroizing::new([5; 32]))]).unwrap());
    let _second = build(&sample_files(), fresh);
}
