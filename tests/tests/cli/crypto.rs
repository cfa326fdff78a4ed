//! Encryption and signatures through the CLI: keygen, encrypted and signed builds,
//! read verbs with keys and a trust policy, `verify --key/--deep/--json` exit
//! codes, `sign`, `keys add/remove/list`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{code, fails_with, hexz, json, ok, run, scratch, stdout, write_recipe};

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A folder with data/, keys made by `hexz keygen`, and a passphrase file.
    fn new() -> Self {
        let dir = scratch();
        let d = dir.path();
        fs::create_dir_all(d.join("data/sub")).unwrap();
        fs::write(
            d.join("data/hello.txt"),
            b"hello, encrypted hexz\n".repeat(100),
        )
        .unwrap();
        fs::write(
            d.join("data/sub/b.bin"),
            (0..20_000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        fs::write(d.join("pass.txt"), b"correct horse battery\n").unwrap();
        fs::write(d.join("wrong.txt"), b"wrong horse\n").unwrap();
        for (name, kind) in [
            ("sign.key", "ed25519"),
            ("other.key", "ed25519"),
            ("id.key", "x25519"),
            ("data.key", "raw"),
        ] {
            ok(&run([
                "keygen".as_ref(),
                "--type".as_ref(),
                kind.as_ref(),
                "--out".as_ref(),
                d.join(name).as_os_str(),
            ]));
        }
        Self { dir }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }

    /// Build `extra` (recipe stages) into out/a.hxz; return the archive path.
    fn build(&self, extra: &str) -> PathBuf {
        let recipe = write_recipe(
            self.dir.path(),
            &format!(
                "inputs:\n  - path: data/\noutput: out/a.hxz\ncompression: {{ codec: zstd }}\n{extra}"
            ),
        );
        ok(&run([
            "build".as_ref(),
            recipe.as_os_str(),
            "--quiet".as_ref(),
        ]));
        self.p("out/a.hxz")
    }

    /// Build out/a.hxz sealed with data.key and signed with sign.key.
    fn build_sealed_signed(&self) -> PathBuf {
        self.build(&format!(
            "encrypt:\n  key_file: data.key\nsign:\n  key: {}\n",
            self.s("sign.key")
        ))
    }
}

fn args<'a>(list: &'a [&'a str]) -> Vec<&'a str> {
    list.to_vec()
}

#[test]
fn keygen_writes_private_files_0600_and_a_pasteable_public_key() {
    let s = Setup::new();
    for name in ["sign.key", "id.key", "data.key"] {
        let mode = fs::metadata(s.p(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    assert_eq!(fs::metadata(s.p("data.key")).unwrap().len(), 32);
    let public = fs::read_to_string(s.p("sign.key.pub")).unwrap();
    assert!(
        public.starts_with("hexz-ed25519 ") && public.lines().count() == 1,
        "{public}"
    );
    // The public key works pasted on the command line too.
    let archive = s.build(&format!("sign:\n  key: {}\n", s.s("sign.key")));
    ok(&run(args(&[
        "verify",
        archive.to_str().unwrap(),
        "--key",
        public.trim(),
    ])));
    // An existing key is never replaced.
    fails_with(&run(args(&["keygen", "--out", &s.s("sign.key")])), 1);
    // Protected keys need their passphrase.
    let out = hexz()
        .args(["keygen", "--protect", "--out", &s.s("prot.key")])
        .env("HEXZ_PASSPHRASE", "pw")
        .output()
        .unwrap();
    ok(&out);
    let text = fs::read_to_string(s.p("prot.key")).unwrap();
    assert!(text.lines().next().unwrap().contains("argon2id"), "{text}");
    fails_with(
        &run(args(&[
            "sign",
            archive.to_str().unwrap(),
            "--key",
            &s.s("prot.key"),
        ])),
        7,
    );
}

#[test]
fn encrypted_archives_need_the_right_key_and_say_so() {
    let s = Setup::new();
    let archive = s.build(&format!(
        "encrypt:\n  passphrase_file: pass.txt\n  key_file: data.key\n  recipients: [{}]\n",
        s.s("id.key.pub")
    ));
    let a = archive.to_str().unwrap();
    let err = fails_with(&run(args(&["ls", a])), 7);
    assert!(err.contains("encrypted"), "{err}");
    let err = fails_with(
        &run(args(&["ls", a, "--passphrase-file", &s.s("wrong.txt")])),
        7,
    );
    assert!(err.contains("wrong key"), "{err}");
    let out = hexz()
        .args(["ls", a])
        .env("HEXZ_PASSPHRASE", "nope")
        .output()
        .unwrap();
    fails_with(&out, 7);
    for key in [
        ["--passphrase-file", "pass.txt"],
        ["--key-file", "data.key"],
        ["--identity", "id.key"],
    ] {
        let out = run(args(&["cat", a, "hello.txt", key[0], &s.s(key[1])]));
        ok(&out);
        assert_eq!(out.stdout, b"hello, encrypted hexz\n".repeat(100));
    }
    let out = hexz()
        .args(["cat", a, "hello.txt"])
        .env("HEXZ_PASSPHRASE", "correct horse battery")
        .output()
        .unwrap();
    ok(&out);
    // Names and contents are not in clear.
    let bytes = fs::read(&archive).unwrap();
    assert!(!bytes.windows(9).any(|w| w == b"hello.txt"));
    assert!(!bytes.windows(15).any(|w| w == b"hello, encrypte"));
    // keys list needs no key; add and remove rewrite the slots only.
    let list = stdout(&run(args(&["keys", "list", a])));
    assert_eq!(list.lines().count(), 3, "{list}");
    let root = json(&run(args(&[
        "info",
        a,
        "--json",
        "--key-file",
        &s.s("data.key"),
    ])))["root_hash"]
        .clone();
    ok(&run(args(&[
        "keys",
        "add",
        a,
        "--key-file",
        &s.s("data.key"),
        "--new-passphrase-file",
        &s.s("wrong.txt"),
    ])));
    ok(&run(args(&[
        "ls",
        a,
        "--passphrase-file",
        &s.s("wrong.txt"),
    ])));
    ok(&run(args(&[
        "keys",
        "remove",
        a,
        "--slot",
        "0",
        "--key-file",
        &s.s("data.key"),
    ])));
    fails_with(
        &run(args(&["ls", a, "--passphrase-file", &s.s("pass.txt")])),
        7,
    );
    let info = json(&run(args(&[
        "info",
        a,
        "--json",
        "--passphrase-file",
        &s.s("wrong.txt"),
    ])));
    assert_eq!(info["root_hash"], root, "the root hash must not change");
}

#[test]
fn verify_exit_codes_tell_signature_problems_apart() {
    let s = Setup::new();
    let signed = s.build_sealed_signed();
    let a = signed.to_str().unwrap();
    let kf = s.s("data.key");
    let good = s.s("sign.key.pub");
    let other = s.s("other.key.pub");
    let v = json(&run(args(&[
        "verify",
        a,
        "--key",
        &good,
        "--key-file",
        &kf,
        "--deep",
        "--json",
    ])));
    assert_eq!(v["ok"], true);
    assert_eq!(v["signature"]["status"], "trusted");
    assert_eq!(v["deep"], true);
    assert!(v["chunks"].as_u64().unwrap() > 0);
    // Signed by another key.
    let out = run(args(&["verify", a, "--key", &other, "--key-file", &kf]));
    let err = fails_with(&out, 5);
    assert!(err.contains("not a trusted key"), "{err}");
    let out = run(args(&[
        "verify",
        a,
        "--key",
        &other,
        "--key-file",
        &kf,
        "--json",
    ]));
    assert_eq!(code(&out), 5);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "bad-signature");
    // No decryption key: the signature is still checked against the root hash
    // (a mirror can do this); the tree is not.
    let v = json(&run(args(&["verify", a, "--key", &good, "--json"])));
    assert_eq!(v["tree_checked"], false);
    assert_eq!(v["signature"]["status"], "trusted");
    fails_with(&run(args(&["verify", a, "--key", &other])), 5);
    // Without --key there is nothing to check without the decryption key.
    fails_with(&run(args(&["verify", a])), 7);
    fails_with(
        &run(args(&[
            "verify",
            a,
            "--key",
            &good,
            "--passphrase-file",
            &s.s("wrong.txt"),
        ])),
        7,
    );
    // Unsigned.
    fs::remove_dir_all(s.p("out")).unwrap();
    let plain = s.build("");
    let p = plain.to_str().unwrap();
    let err = fails_with(&run(args(&["verify", p, "--key", &good])), 6);
    assert!(err.contains("not signed"), "{err}");
    ok(&run(args(&["verify", p])));
    // Detached: good, truncated, replayed from another archive.
    ok(&run(args(&[
        "sign",
        p,
        "--key",
        &s.s("sign.key"),
        "--detached",
    ])));
    let sig = s.p("out/a.hxz.sig");
    ok(&run(args(&["verify", p, "--key", &good])));
    ok(&run(args(&["cat", p, "hello.txt", "--trust", &good])));
    let full = fs::read(&sig).unwrap();
    fs::write(&sig, &full[..full.len() - 10]).unwrap();
    let err = fails_with(&run(args(&["verify", p, "--key", &good])), 5);
    assert!(err.contains("malformed"), "{err}");
    fails_with(&run(args(&["cat", p, "hello.txt", "--trust", &good])), 5);
    fs::write(s.p("data/new.txt"), b"another archive").unwrap();
    fs::write(&sig, &full).unwrap();
    let recipe2 = write_recipe(
        &s.p("two"),
        &format!("inputs:\n  - path: {}\noutput: b.hxz\n", s.s("data")),
    );
    ok(&run([
        "build".as_ref(),
        recipe2.as_os_str(),
        "--quiet".as_ref(),
    ]));
    let b = s.p("two/b.hxz");
    let err = fails_with(
        &run(args(&[
            "verify",
            b.to_str().unwrap(),
            "--key",
            &good,
            "--sig",
            sig.to_str().unwrap(),
        ])),
        5,
    );
    assert!(err.contains("another archive"), "{err}");
    // Embedding a signature later keeps the root hash.
    let before = json(&run(args(&["info", p, "--json"])))["root_hash"].clone();
    ok(&run(args(&["sign", p, "--key", &s.s("other.key")])));
    ok(&run(args(&["verify", p, "--key", &other, "--sig", "/dev/null"])).clone());
    assert_eq!(
        json(&run(args(&["info", p, "--json"])))["root_hash"],
        before
    );
}

#[test]
fn a_flipped_chunk_byte_fails_deep_verify_and_trusted_reads() {
    let s = Setup::new();
    let archive = s.build_sealed_signed();
    let a = archive.to_str().unwrap();
    let kf = s.s("data.key");
    let good = s.s("sign.key.pub");
    let mut bytes = fs::read(&archive).unwrap();
    bytes[16 + 5] ^= 1; // inside the first chunk blob
    fs::write(&archive, &bytes).unwrap();
    // The tree is intact: the fast check passes, the deep one does not.
    ok(&run(args(&[
        "verify",
        a,
        "--key",
        &good,
        "--key-file",
        &kf,
    ])));
    fails_with(
        &run(args(&[
            "verify",
            a,
            "--key",
            &good,
            "--key-file",
            &kf,
            "--deep",
        ])),
        3,
    );
    let out = run(args(&[
        "extract",
        a,
        &s.s("x"),
        "--quiet",
        "--key-file",
        &kf,
        "--trust",
        &good,
    ]));
    fails_with(&out, 3);
}

#[test]
fn the_bundled_encrypted_recipe_reads_with_its_example_keys() {
    let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let s = scratch();
    let out = s.path().join("e.hxz");
    // The recipe as shipped, its relative paths pointed at recipes/ (the copy
    // lives in a scratch folder so no other test sees it).
    let abs = |rel: &str| format!("{}/{rel}", recipes.display());
    let text = fs::read_to_string(recipes.join("encrypted-signed.yaml"))
        .unwrap()
        .replace("out/encrypted-signed.hxz", out.to_str().unwrap())
        .replace(" keys/", &format!(" {}", abs("keys/")))
        .replace("[keys/", &format!("[{}", abs("keys/")))
        .replace("path: data/", &format!("path: {}", abs("data/")));
    let recipe = write_recipe(s.path(), &text);
    ok(&run([
        "build".as_ref(),
        recipe.as_os_str(),
        "--quiet".as_ref(),
    ]));
    let keys = recipes.join("keys");
    let v = json(&run([
        "verify".as_ref(),
        out.as_os_str(),
        "--deep".as_ref(),
        "--json".as_ref(),
        "--identity".as_ref(),
        keys.join("example-reader.key").as_os_str(),
        "--key".as_ref(),
        keys.join("example-signing.key.pub").as_os_str(),
    ]));
    assert_eq!(v["signature"]["status"], "trusted");
    assert_eq!(v["encrypted"], true);
}

/// Over HTTP (nginx started by tests/run.sh; skipped without it): a trusted read
/// of a URL finds the detached signature at the URL plus `.sig`.
#[test]
fn a_remote_archive_is_read_under_trust_with_its_detached_signature() {
    let (Ok(url), Ok(dir)) = (
        std::env::var("HEXZ_TEST_HTTP_URL"),
        std::env::var("HEXZ_TEST_HTTP_DIR"),
    ) else {
        eprintln!("skipped: HEXZ_TEST_HTTP_URL/HEXZ_TEST_HTTP_DIR not set (run tests/run.sh)");
        return;
    };
    let s = Setup::new();
    let archive = s.build(&format!(
        "sign:\n  key: {}\n  detached: true\n",
        s.s("sign.key")
    ));
    let served = Path::new(&dir).join("crypto-cli-signed.hxz");
    fs::copy(&archive, &served).unwrap();
    fs::copy(
        s.p("out/a.hxz.sig"),
        Path::new(&dir).join("crypto-cli-signed.hxz.sig"),
    )
    .unwrap();
    let remote = format!("{}/crypto-cli-signed.hxz", url.trim_end_matches('/'));
    let good = s.s("sign.key.pub");
    let out = run(args(&["cat", &remote, "hello.txt", "--trust", &good]));
    ok(&out);
    assert_eq!(out.stdout, b"hello, encrypted hexz\n".repeat(100));
    ok(&run(args(&["verify", &remote, "--key", &good])));
    fs::remove_file(Path::new(&dir).join("crypto-cli-signed.hxz.sig")).unwrap();
    fails_with(
        &run(args(&["cat", &remote, "hello.txt", "--trust", &good])),
        6,
    );
    fs::remove_file(&served).unwrap();
}

#[test]
fn an_encrypted_archive_publishes_with_its_key_or_from_its_recipe() {
    let s = Setup::new();
    let archive = s.build_sealed_signed();
    let a = archive.to_str().unwrap();
    let dest = s.p("published/a.hxz");
    let d = dest.to_str().unwrap();
    // Its parents list is sealed: without a key, publish says what it needs.
    let err = fails_with(&run(args(&["publish", a, d, "--quiet"])), 7);
    assert!(err.contains("encrypted"), "{err}");
    assert!(!dest.exists());
    ok(&run(args(&[
        "publish",
        a,
        d,
        "--quiet",
        "--key-file",
        &s.s("data.key"),
    ])));
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&archive).unwrap());
    // Again: found there (root hash from the tail), nothing uploaded.
    let again = json(&run(args(&[
        "publish",
        a,
        d,
        "--json",
        "--key-file",
        &s.s("data.key"),
    ])));
    assert_eq!(again["uploaded"], false, "{again}");
    // A recipe's publish stage needs no key for an archive without parents.
    let recipe = write_recipe(
        s.dir.path(),
        &format!(
            "inputs:\n  - path: data/\noutput: out/b.hxz\nencrypt:\n  recipients: [{}]\npublish:\n  url: file://{}\n",
            s.s("id.key.pub"),
            s.s("published/b.hxz")
        ),
    );
    ok(&run([
        "build".as_ref(),
        recipe.as_os_str(),
        "--quiet".as_ref(),
    ]));
    assert_eq!(
        fs::read(s.p("published/b.hxz")).unwrap(),
        fs::read(s.p("out/b.hxz")).unwrap()
    );
}
