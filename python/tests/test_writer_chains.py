"""`hexz.Writer(parent=, encrypt=, sign=)`: thin children, encrypted chains and
signatures, read back with `hexz.open(passphrase=, key=, trusted_public_keys=)`."""

from __future__ import annotations

import os

import pytest

import hexz
from conftest import S3_KEYS, s3_upload

KEYS = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "keys")
# Cheap Argon2id costs for tests (the default is 64 MiB, 3 passes).
FAST_KDF = {"memory": "64KiB", "iterations": 1}
CHUNKS = dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384)


def noise(n: int, seed: int) -> bytes:
    x = seed * 2654435761 + 1
    out = bytearray(n)
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out[i] = x >> 56
    return bytes(out)


BASE = [noise(150_000, s) for s in range(4)]  # ~600 KB of incompressible data


def version(k: int):
    """Version k of a small dataset: the base files, one of them edited, plus a new file."""
    files = {f"f{i}.bin": b for i, b in enumerate(BASE)}
    edited = bytearray(files["f1.bin"])
    edited[5000 : 5000 + 100] = bytes([k]) * 100
    files["f1.bin"] = bytes(edited)
    files[f"new{k}.txt"] = f"version {k}\n".encode() * 50
    return files


def write(path, files, **options):
    with hexz.Writer(path, **CHUNKS, **options) as w:
        for name, data in files.items():
            w.add_bytes(name, data)
    return w.summary


def check(path, files, **open_options):
    with hexz.open(path, **open_options) as r:
        assert sorted(r.namelist()) == sorted(files)
        for name, data in files.items():
            assert r.read(name) == data, name


def test_thin_chain_stores_only_what_changed(tmp_path):
    v1, v2, v3 = version(1), version(2), version(3)
    full = write(tmp_path / "full3.hxz", v3)
    s1 = write(tmp_path / "v1.hxz", v1)
    s2 = write(tmp_path / "v2.hxz", v2, parent=tmp_path / "v1.hxz")
    # A parent given as an open Reader, and a chain three deep.
    with hexz.open(tmp_path / "v2.hxz") as parent:
        s3 = write(tmp_path / "v3.hxz", v3, parent=parent)
    assert not s1["thin"] and s2["thin"] and s3["thin"]
    # The child stores the edit and the new file, not the 600 KB it shares.
    assert s3["archive_size"] < full["archive_size"] / 5, (s3, full)
    assert s3["stored_chunk_bytes"] < 40_000, s3
    check(tmp_path / "v3.hxz", v3)
    check(tmp_path / "v2.hxz", v2)
    # Same bytes as the self-contained build of the same data.
    with hexz.open(tmp_path / "v3.hxz") as thin, hexz.open(tmp_path / "full3.hxz") as whole:
        assert thin.read() == whole.read()
    # The chain resolves through its hints: move it as a whole.
    moved = tmp_path / "moved"
    moved.mkdir()
    for n in ("v1.hxz", "v2.hxz", "v3.hxz"):
        os.rename(tmp_path / n, moved / n)
    check(moved / "v3.hxz", v3)
    # A missing ancestor is an error naming it, never zeros.
    os.remove(moved / "v1.hxz")
    with hexz.open(moved / "v3.hxz") as r:
        with pytest.raises(hexz.NotFoundError, match="v1.hxz"):
            r.read("f0.bin")


def test_parent_errors_leave_no_file(tmp_path):
    with pytest.raises(hexz.NotFoundError, match="missing.hxz"):
        hexz.Writer(tmp_path / "c.hxz", parent=tmp_path / "missing.hxz")
    write(tmp_path / "p.hxz", version(1))
    with pytest.raises(hexz.InvalidInputError, match="parent"):
        hexz.Writer(tmp_path / "p.hxz", parent=tmp_path / "p.hxz")
    with pytest.raises(hexz.InvalidInputError, match="parent"):
        hexz.Writer(tmp_path / "c.hxz", parent=12)
    assert sorted(os.listdir(tmp_path)) == ["p.hxz"]


def test_encrypted_thin_chain(tmp_path):
    v1, v2 = version(1), version(2)
    keys = {"passphrase": "correct horse", "kdf": FAST_KDF}
    full = write(tmp_path / "full.hxz", v2, encrypt=keys)
    s1 = write(tmp_path / "v1.hxz", v1, encrypt=keys)
    assert s1["encrypted"]
    # The child takes the parent's dedup key: it stores only what changed.
    s2 = write(tmp_path / "v2.hxz", v2, parent=tmp_path / "v1.hxz", encrypt=keys)
    assert s2["thin"] and s2["encrypted"]
    assert s2["archive_size"] < full["archive_size"] / 5, (s2, full)
    check(tmp_path / "v2.hxz", v2, passphrase="correct horse")
    # The parent as a Reader opened with the keys.
    with hexz.open(tmp_path / "v1.hxz", passphrase="correct horse") as parent:
        s2r = write(tmp_path / "v2r.hxz", v2, parent=parent, encrypt=keys)
    assert s2r["thin"] and s2r["archive_size"] < full["archive_size"] / 5
    check(tmp_path / "v2r.hxz", v2, passphrase="correct horse")
    with pytest.raises(hexz.BadKeyError):
        hexz.open(tmp_path / "v2.hxz")
    with pytest.raises(hexz.BadKeyError, match="wrong key"):
        hexz.open(tmp_path / "v2.hxz", passphrase="wrong horse")
    # Building a child with a wrong key for the parent: BadKeyError naming it.
    with pytest.raises(hexz.BadKeyError, match="v1.hxz"):
        hexz.Writer(tmp_path / "v3.hxz", parent=tmp_path / "v1.hxz", encrypt={"passphrase": "nope", "kdf": FAST_KDF})
    assert not (tmp_path / "v3.hxz").exists()


def test_mixed_chains_are_refused(tmp_path):
    keys = {"passphrase": "pw", "kdf": FAST_KDF}
    write(tmp_path / "plain.hxz", version(1))
    write(tmp_path / "sealed.hxz", version(1), encrypt=keys)
    # A plain child of an encrypted parent, by path or as an open Reader.
    with pytest.raises(hexz.InvalidInputError, match="encrypted"):
        hexz.Writer(tmp_path / "c1.hxz", parent=tmp_path / "sealed.hxz")
    with hexz.open(tmp_path / "sealed.hxz", passphrase="pw") as sealed:
        with pytest.raises(hexz.InvalidInputError, match="encrypted"):
            hexz.Writer(tmp_path / "c2.hxz", parent=sealed)
    # An encrypted child of a plain parent.
    with pytest.raises(hexz.InvalidInputError, match="plain parent"):
        hexz.Writer(tmp_path / "c3.hxz", parent=tmp_path / "plain.hxz", encrypt=keys)
    assert sorted(os.listdir(tmp_path)) == ["plain.hxz", "sealed.hxz"]


def test_key_slots_of_every_kind(tmp_path):
    files = version(1)
    key_path = os.path.join(KEYS, "example-data.key")
    raw = open(key_path, "rb").read()
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text("from a file\n")
    os.environ["HEXZ_TEST_PY_PASS"] = "from the environment"
    try:
        write(
            tmp_path / "a.hxz",
            files,
            encrypt={
                "passphrase": ["one", b"two"],
                "passphrase_file": pass_file,
                "passphrase_env": "HEXZ_TEST_PY_PASS",
                "key_file": key_path,
                "recipients": [os.path.join(KEYS, "example-reader.key.pub")],
                "kdf": FAST_KDF,
            },
        )
    finally:
        del os.environ["HEXZ_TEST_PY_PASS"]
    for opts in (
        {"passphrase": "one"},
        {"passphrase": b"two"},
        {"passphrase": "from a file"},
        {"passphrase": "from the environment"},
        {"key": raw},
        {"key": key_path},
    ):
        check(tmp_path / "a.hxz", files, **opts)
    # `key` (raw bytes or hex, as hexz.open takes it) is a key-file slot.
    write(tmp_path / "b.hxz", files, encrypt={"key": raw})
    check(tmp_path / "b.hxz", files, key=raw)
    with pytest.raises(hexz.BadKeyError):
        hexz.open(tmp_path / "b.hxz", passphrase="one")


def test_bad_encrypt_and_sign_options(tmp_path):
    out = tmp_path / "x.hxz"
    cases = [
        ({"encrypt": {}}, "names no key"),
        ({"encrypt": {"passphrase": "p", "colour": 1}}, "unknown option `colour`"),
        ({"encrypt": "secret"}, "a dict is needed"),
        ({"encrypt": {"passphrase": ""}}, "empty"),
        ({"encrypt": {"passphrase": "p", "kdf": {"memory": "1KiB"}}}, "kdf.memory"),
        ({"encrypt": {"passphrase": "p", "kdf": {"iterations": "3"}}}, "kdf.iterations: must be 1 to 64"),
        # Lanes are checked against the memory whatever the dict's order.
        ({"encrypt": {"passphrase": "p", "kdf": {"lanes": 2, "memory": "8KiB"}}}, "kdf.lanes: .*8 KiB per lane"),
        ({"encrypt": {"passphrase_env": "HEXZ_SURELY_UNSET_VAR"}}, "HEXZ_SURELY_UNSET_VAR"),
        ({"encrypt": {"recipients": [os.path.join(KEYS, "example-signing.key.pub")]}}, "x25519"),
        ({"sign": {"detached": True}}, "`key`"),
        ({"sign": {"key": os.path.join(KEYS, "example-reader.key")}}, "Ed25519"),
        ({"sign": True}, "path"),
        ({"parent": True}, "parent"),
    ]
    for options, message in cases:
        with pytest.raises(hexz.InvalidInputError, match=message):
            hexz.Writer(out, **options)
    with pytest.raises(hexz.BadKeyError):
        hexz.Writer(out, encrypt={"key": b"short"})
    with pytest.raises(hexz.NotFoundError):
        hexz.Writer(out, encrypt={"key_file": tmp_path / "missing.key"})
    assert os.listdir(tmp_path) == []


def random_signer_key() -> bytes:
    return os.urandom(32)


def test_signed_embedded_and_detached(tmp_path):
    files = version(1)
    signing_key = os.path.join(KEYS, "example-signing.key")
    trusted = open(os.path.join(KEYS, "example-signing.key.pub")).read()
    s = write(tmp_path / "e.hxz", files, sign={"key": signing_key})
    assert s["signed_by"].startswith("hexz-ed25519 ") and s["signature_file"] is None
    check(tmp_path / "e.hxz", files, trusted_public_keys=[trusted])
    check(tmp_path / "e.hxz", files)  # signatures are checked only when asked for
    with pytest.raises(hexz.SignatureError):
        hexz.open(tmp_path / "e.hxz", trusted_public_keys=[random_signer_key()])
    # Detached: <path>.sig, found next to the archive.
    s = write(tmp_path / "d.hxz", files, sign={"key": signing_key, "detached": True})
    assert os.fspath(s["signature_file"]) == os.fspath(tmp_path / "d.hxz.sig")
    check(tmp_path / "d.hxz", files, trusted_public_keys=[trusted])
    with pytest.raises(hexz.SignatureError):
        hexz.open(tmp_path / "d.hxz", trusted_public_keys=[random_signer_key()])
    os.remove(tmp_path / "d.hxz.sig")
    with pytest.raises(hexz.SignatureError):
        hexz.open(tmp_path / "d.hxz", trusted_public_keys=[trusted])
    # The short form: the key's path.
    write(tmp_path / "short.hxz", files, sign=signing_key)
    check(tmp_path / "short.hxz", files, trusted_public_keys=[trusted])
    # An aborted signed writer leaves neither archive nor signature.
    with pytest.raises(RuntimeError):
        with hexz.Writer(tmp_path / "gone.hxz", sign={"key": signing_key, "detached": True}) as w:
            w.add_bytes("a", b"x")
            raise RuntimeError("boom")
    assert not (tmp_path / "gone.hxz").exists() and not (tmp_path / "gone.hxz.sig").exists()


def test_signed_with_a_passphrase_protected_key(tmp_path, monkeypatch):
    """A signing key made by `hexz keygen --protect` (Argon2id): the passphrase
    given, from a file or from a variable; none is an InvalidInputError that
    says so, a wrong one a BadKeyError; neither leaves anything behind."""
    files = version(1)
    protected = os.path.join(KEYS, "example-signing-protected.key")
    trusted = open(protected + ".pub").read()
    passphrase_file = os.path.join(KEYS, "example.passphrase")
    passphrase = open(passphrase_file).read().strip()
    monkeypatch.setenv("HEXZ_TEST_SIGNING_PASSPHRASE", passphrase)
    for i, how in enumerate(
        [
            {"passphrase": passphrase},
            {"passphrase_file": passphrase_file},
            {"passphrase_env": "HEXZ_TEST_SIGNING_PASSPHRASE"},
        ]
    ):
        out = tmp_path / f"p{i}.hxz"
        s = write(out, files, sign={"key": protected, **how})
        assert s["signed_by"] == trusted.strip()
        check(out, files, trusted_public_keys=[trusted])
    out = tmp_path / "bad.hxz"
    with pytest.raises(hexz.InvalidInputError, match="passphrase-protected"):
        hexz.Writer(out, sign={"key": protected})
    with pytest.raises(hexz.BadKeyError):
        hexz.Writer(out, sign={"key": protected, "passphrase": "not the passphrase"})
    assert not out.exists()


def test_encrypted_signed_thin_child(tmp_path):
    """All three stages at once, as a recipe would combine them."""
    keys = {"key_file": os.path.join(KEYS, "example-data.key")}
    sign = {"key": os.path.join(KEYS, "example-signing.key"), "detached": True}
    trusted = [open(os.path.join(KEYS, "example-signing.key.pub")).read()]
    key = os.path.join(KEYS, "example-data.key")
    write(tmp_path / "v1.hxz", version(1), encrypt=keys, sign=sign)
    s = write(tmp_path / "v2.hxz", version(2), parent=tmp_path / "v1.hxz", encrypt=keys, sign=sign)
    assert s["thin"] and s["encrypted"] and s["signature_file"]
    check(tmp_path / "v2.hxz", version(2), key=key, trusted_public_keys=trusted)


def test_thin_child_of_a_parent_on_s3(tmp_path, s3_endpoint):
    write(tmp_path / "v1.hxz", version(1))
    url = s3_upload(s3_endpoint, str(tmp_path / "v1.hxz"))
    s3 = dict(s3_endpoint=s3_endpoint, **S3_KEYS)
    full = write(tmp_path / "full.hxz", version(2))
    s = write(tmp_path / "v2.hxz", version(2), parent=url, **s3)
    assert s["thin"] and s["archive_size"] < full["archive_size"] / 5
    # The child names its parent by URL: a local archive's hint is not followed
    # to a URL unless the reader allows the place (or names the parent).
    with hexz.open(tmp_path / "v2.hxz", **s3) as r:
        with pytest.raises(hexz.NotFoundError, match="allow_parent_urls"):
            r.read("f0.bin")
    bucket = url.split("/")[2]
    check(tmp_path / "v2.hxz", version(2), allow_parent_urls=[f"s3://{bucket}/"], **s3)
    check(tmp_path / "v2.hxz", version(2), parents=[url], **s3)


def test_parents_names_a_parent_its_hint_does_not_find(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a" / "v1.hxz", version(1))
    write(tmp_path / "a" / "v2.hxz", version(2), parent=tmp_path / "a" / "v1.hxz")
    os.rename(tmp_path / "a" / "v1.hxz", tmp_path / "b" / "elsewhere.hxz")
    with hexz.open(tmp_path / "a" / "v2.hxz") as r:
        with pytest.raises(hexz.NotFoundError, match="v1.hxz"):
            r.read("f0.bin")
    check(tmp_path / "a" / "v2.hxz", version(2), parents=tmp_path / "b" / "elsewhere.hxz")
    check(tmp_path / "a" / "v2.hxz", version(2), parents=[str(tmp_path / "b" / "elsewhere.hxz")])
    with pytest.raises(TypeError, match="parents"):
        hexz.open(tmp_path / "a" / "v2.hxz", parents=3)


def test_key_derivation_limits(tmp_path):
    # Iterations above the reader's default limit (8): refused before Argon2id
    # runs, with the option that raises it named; raised, it opens.
    costly = {"passphrase": "pw", "kdf": {"memory": "64KiB", "iterations": 9}}
    write(tmp_path / "c.hxz", version(1), encrypt=costly)
    with pytest.raises(hexz.BadKeyError, match="kdf_max_iterations"):
        hexz.open(tmp_path / "c.hxz", passphrase="pw")
    check(tmp_path / "c.hxz", version(1), passphrase="pw", kdf_max_iterations=9)
    # Six passphrase slots: the first four are tried.
    many = {"passphrase": [f"pw{i}" for i in range(6)], "kdf": FAST_KDF}
    write(tmp_path / "m.hxz", version(1), encrypt=many)
    check(tmp_path / "m.hxz", version(1), passphrase="pw3")
    with pytest.raises(hexz.BadKeyError, match="kdf_max_slots"):
        hexz.open(tmp_path / "m.hxz", passphrase="pw5")
    check(tmp_path / "m.hxz", version(1), passphrase="pw5", kdf_max_slots=6)
