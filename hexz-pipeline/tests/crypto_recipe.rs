//! The `encrypt:` and `sign:` recipe stages: validation errors located in the
//! recipe, and builds that read back with their keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hexz_format::crypto::keyfile::{PublicKeyKind, write_raw_key};
use hexz_format::{KdfParams, SecretKeyFile};
use hexz_pipeline::recipe::{RecipeError, parse_recipe};
use hexz_pipeline::{BuildOptions, Registry, build, open_archive_path};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("data")).unwrap();
        std::fs::write(d.join("data/a.txt"), b"secret content of a").unwrap();
        std::fs::write(d.join("data/b.txt"), b"more secret content").unwrap();
        write_raw_key(&d.join("data.key")).unwrap();
        let signer = SecretKeyFile::generate(PublicKeyKind::Ed25519).unwrap();
        signer.write_new(&d.join("sign.key"), None).unwrap();
        signer
            .write_new(
                &d.join("sign-protected.key"),
                Some((
                    b"pw",
                    KdfParams {
                        memory_kib: 64,
                        iterations: 1,
                        lanes: 1,
                    },
                )),
            )
            .unwrap();
        std::fs::write(d.join("pw.txt"), b"pw\n").unwrap();
        let id = SecretKeyFile::generate(PublicKeyKind::X25519).unwrap();
        id.write_new(&d.join("id.key"), None).unwrap();
        std::fs::write(d.join("id.pub"), id.public().to_string()).unwrap();
        std::fs::write(d.join("sign.pub"), signer.public().to_string()).unwrap();
        Self { dir }
    }

    fn parse(&self, text: &str) -> Result<hexz_pipeline::recipe::Plan, RecipeError> {
        let env = |name: &str| (name == "SET").then(|| "value".to_owned());
        parse_recipe(text, &self.dir.path().join("recipe.yaml"), &env)
    }

    fn error(&self, text: &str) -> String {
        self.parse(text).unwrap_err().to_string()
    }
}

const HEAD: &str = "inputs:\n  - path: data/\noutput: out/a.hxz\n";

#[test]
fn key_problems_point_at_the_value() {
    let f = Fixture::new();
    let err = f.error(&format!("{HEAD}encrypt:\n  key_file: missing.key\n"));
    assert!(
        err.contains("recipe.yaml:5:13: encrypt.key_file: cannot read"),
        "{err}"
    );
    let err = f.error(&format!("{HEAD}encrypt:\n  kdf: {{ iterations: 2 }}\n"));
    assert!(
        err.contains("recipe.yaml:5:3: `encrypt` names no key"),
        "{err}"
    );
    let err = f.error(&format!("{HEAD}encrypt:\n  recipients: [sign.pub]\n"));
    assert!(
        err.contains("recipe.yaml:5:16: encrypt.recipients[0]:"),
        "{err}"
    );
    assert!(err.contains("hexz-x25519 key is needed"), "{err}");
    let err = f.error(&format!("{HEAD}encrypt:\n  passphrase_env: UNSET_VAR\n"));
    assert!(
        err.contains("recipe.yaml:5:19: encrypt.passphrase_env:"),
        "{err}"
    );
    let err = f.error(&format!("{HEAD}sign:\n  key: id.key\n"));
    assert!(err.contains("recipe.yaml:5:8: sign.key:"), "{err}");
    assert!(err.contains("Ed25519"), "{err}");
    let err = f.error(&format!("{HEAD}sign:\n  key: sign-protected.key\n"));
    assert!(err.contains("passphrase-protected"), "{err}");
    let err = f.error(&format!(
        "{HEAD}sign:\n  key: sign-protected.key\n  passphrase_file: data/a.txt\n"
    ));
    assert!(err.contains("wrong key"), "{err}");
    let err = f.error(&format!(
        "{HEAD}encrypt:\n  key_file: data.key\n  kdf: {{ memory: 1KiB }}\n"
    ));
    assert!(
        err.contains("recipe.yaml:6:18: encrypt.kdf.memory"),
        "{err}"
    );
    let err = f.error(&format!("{HEAD}sign:\n  key: sign.key\n  detach: true\n"));
    assert!(err.contains("did you mean `detached`"), "{err}");
    // A good one: secrets do not enter the plan's provenance.
    let plan = f
        .parse(&format!(
            "{HEAD}encrypt:\n  passphrase_env: SET\n  key_file: data.key\n  recipients: [id.pub]\n\
             sign:\n  key: sign-protected.key\n  passphrase_file: pw.txt\n"
        ))
        .unwrap();
    assert!(!plan.normalized.contains("value"), "{}", plan.normalized);
    assert!(!plan.normalized.contains("data.key"), "{}", plan.normalized);
    assert!(
        plan.normalized
            .contains("\"sign\":{\"detached\":false,\"key\":\"hexz-ed25519 ")
    );
}

fn build_and_open(f: &Fixture, text: &str) -> (hexz_format::Archive, std::path::PathBuf) {
    let plan = f.parse(text).unwrap();
    let report = build(
        &plan,
        &Registry::default(),
        &BuildOptions {
            quiet: true,
            threads: None,
            ..Default::default()
        },
    )
    .unwrap();
    let options = hexz_pipeline::crypto::read_options(&plan, &plan.output).unwrap();
    let a = open_archive_path(&plan.output, &Registry::default(), options).unwrap();
    assert_eq!(a.root_hash(), report.summary.root_hash);
    (a, plan.output)
}

#[test]
fn encrypted_signed_builds_read_back_under_trust() {
    let f = Fixture::new();
    let (a, out) = build_and_open(
        &f,
        &format!("{HEAD}encrypt:\n  key_file: data.key\nsign:\n  key: sign.key\n"),
    );
    assert!(a.is_encrypted() && a.is_trusted());
    let e = a.entry("a.txt").unwrap();
    assert_eq!(a.read_entry(&e).unwrap(), b"secret content of a");
    let bytes = std::fs::read(&out).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"secret"));
    assert!(!bytes.windows(5).any(|w| w == b"a.txt"));
}

#[test]
fn detached_signature_is_written_next_to_the_archive() {
    let f = Fixture::new();
    let (a, out) = build_and_open(
        &f,
        &format!("{HEAD}sign:\n  key: sign.key\n  detached: true\n"),
    );
    assert!(a.is_trusted());
    assert!(hexz_pipeline::crypto::signature_path(&out).exists());
    // The archive itself is unsigned.
    assert!(a.envelope().unwrap().is_none());
    assert!(Path::new(&format!("{}.sig", out.display())).exists());
}

/// `<archive>.sig` that is absent means unsigned; one that is there but cannot be
/// read is an error naming it (a trust check must not go on as if unsigned).
#[test]
fn an_unreadable_detached_signature_is_an_error_not_absent() {
    use hexz_pipeline::crypto::default_detached_signature;
    let f = Fixture::new();
    let archive = f.dir.path().join("x.hxz");
    let location = archive.to_string_lossy().into_owned();
    let registry = Registry::default();
    assert_eq!(
        default_detached_signature(&location, &registry).unwrap(),
        None
    );
    std::fs::create_dir(f.dir.path().join("x.hxz.sig")).unwrap();
    let err = default_detached_signature(&location, &registry).unwrap_err();
    assert!(err.to_string().contains("x.hxz.sig"), "{err}");
    std::fs::remove_dir(f.dir.path().join("x.hxz.sig")).unwrap();
    std::fs::write(f.dir.path().join("x.hxz.sig"), b"sig bytes").unwrap();
    assert_eq!(
        default_detached_signature(&location, &registry).unwrap(),
        Some(b"sig bytes".to_vec())
    );
}

/// Thin children of an encrypted parent: built with the parent's keys they take
/// its dedup key (same chunk ids, so they store only what changed), read back
/// through the parent with the same keys, and their signed manifest names the
/// parent. A plain child of an encrypted parent, and an encrypted child of a
/// plain one, are refused.
#[test]
fn an_encrypted_chain_deduplicates_and_reads_back() {
    let f = Fixture::new();
    let d = f.dir.path();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(d.join("data/big.bin"), &big).unwrap();
    // Enough entries that the index leaves are worth storing as deltas.
    std::fs::create_dir_all(d.join("data/many")).unwrap();
    for i in 0..400 {
        std::fs::write(
            d.join(format!("data/many/file-with-a-longish-name-{i:04}.txt")),
            format!("{i}"),
        )
        .unwrap();
    }
    let registry = Registry::default();
    let quiet = BuildOptions {
        quiet: true,
        threads: Some(2),
        ..Default::default()
    };
    let recipe = |output: &str, parent: Option<&str>, sealed: bool| {
        let mut text = format!("inputs:\n  - path: data/\noutput: {output}\n");
        if let Some(p) = parent {
            text.push_str(&format!("parent: {p}\n"));
        }
        if sealed {
            // Detached: the child's build must not look for its own `.sig`.
            text.push_str(
                "encrypt:\n  key_file: data.key\nsign:\n  key: sign.key\n  detached: true\n",
            );
        }
        f.parse(&text).unwrap()
    };
    let parent = recipe("out/v1.hxz", None, true);
    build(&parent, &registry, &quiet).unwrap();
    std::fs::write(d.join("data/c.txt"), b"new in version two").unwrap();
    let child = recipe("out/v2.hxz", Some("out/v1.hxz"), true);
    build(&child, &registry, &quiet).unwrap();
    let size = |p: &str| std::fs::metadata(d.join(p)).unwrap().len();
    assert!(
        size("out/v2.hxz") * 10 < size("out/v1.hxz"),
        "child {} bytes, parent {}",
        size("out/v2.hxz"),
        size("out/v1.hxz")
    );
    // Read back through the parent, with the recipe's keys and trust policy.
    let options = hexz_pipeline::crypto::read_options(&child, &d.join("out/v2.hxz")).unwrap();
    let a = open_archive_path(&d.join("out/v2.hxz"), &registry, options).unwrap();
    assert!(a.is_thin());
    assert_eq!(a.read_entry(&a.entry("big.bin").unwrap()).unwrap(), big);
    assert_eq!(
        a.read_entry(&a.entry("c.txt").unwrap()).unwrap(),
        b"new in version two"
    );
    a.verify().unwrap();
    // Its index leaves are sealed deltas against the parent's (opened with the
    // parent's own keys): listed in the page-bases section.
    assert!(
        a.section(hexz_format::layout::SECTION_PAGE_BASES)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        a.entries().filter(|e| e.is_ok()).count() as u64,
        a.entry_count()
    );
    assert!(a.entry_count() > 400);
    // A grandchild: its bases are whole pages up the chain, decoded one hop away.
    std::fs::write(d.join("data/many/file-with-a-longish-name-0007.txt"), b"7!").unwrap();
    let grandchild = recipe("out/v3.hxz", Some("out/v2.hxz"), true);
    build(&grandchild, &registry, &quiet).unwrap();
    let options = hexz_pipeline::crypto::read_options(&grandchild, &d.join("out/v3.hxz")).unwrap();
    let g = open_archive_path(&d.join("out/v3.hxz"), &registry, options).unwrap();
    g.verify().unwrap();
    assert_eq!(
        g.read_entry(&g.entry("many/file-with-a-longish-name-0007.txt").unwrap())
            .unwrap(),
        b"7!"
    );
    assert_eq!(g.read_entry(&g.entry("big.bin").unwrap()).unwrap(), big);
    // The signed manifest covers the parent's root hash.
    let roots = hexz_format::sign::parent_roots(&a).unwrap();
    let v1 = open_archive_path(
        &d.join("out/v1.hxz"),
        &registry,
        hexz_pipeline::crypto::read_options(&parent, &d.join("out/v1.hxz")).unwrap(),
    )
    .unwrap();
    assert_eq!(roots, vec![v1.root_hash()]);
    // Without keys the child does not open.
    assert!(open_archive_path(&d.join("out/v2.hxz"), &registry, Default::default()).is_err());

    // A plain child of the encrypted parent: refused (and nothing written).
    let plain_child = recipe("out/plain-child.hxz", Some("out/v1.hxz"), false);
    let err = build(&plain_child, &registry, &quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("encrypted"), "{err}");
    assert!(!d.join("out/plain-child.hxz").exists());
    // An encrypted child of a plain parent: refused.
    let plain = recipe("out/plain.hxz", None, false);
    build(&plain, &registry, &quiet).unwrap();
    let sealed_child = recipe("out/sealed-child.hxz", Some("out/plain.hxz"), true);
    let err = build(&sealed_child, &registry, &quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dedup key"), "{err}");
    assert!(!d.join("out/sealed-child.hxz").exists());
}
