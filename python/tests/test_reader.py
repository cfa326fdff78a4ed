"""Reader, EntryFile, Writer, open, build and errors: the seed API forms and more."""

from __future__ import annotations

import io
import os
import threading

import pytest

import hexz
from conftest import N_SAMPLES, sample_bytes


def stream_of(path):
    return b"".join(sample_bytes(i) for i in range(N_SAMPLES))


def test_stream_is_file_like(samples_archive):
    whole = stream_of(samples_archive)
    with hexz.open(samples_archive) as r:
        assert len(r) == r.size == len(whole)
        assert r.read() == whole
        assert r.tell() == len(whole)
        assert r.read(10) == b""
        assert r.seek(5) == 5
        assert r.read(7) == whole[5:12]
        assert r.seek(-3, io.SEEK_END) == len(whole) - 3
        assert r.read() == whole[-3:]
        r.seek(10)
        r.seek(4, io.SEEK_CUR)
        assert r.tell() == 14
        buf = bytearray(100)
        assert r.readinto(buf) == 100
        assert bytes(buf) == whole[14:114]
        mv = memoryview(bytearray(50))[10:40]
        assert r.readinto(mv) == 30
        assert bytes(mv) == whole[114:144]
        r.seek(len(whole) - 5)
        assert r.readinto(bytearray(10)) == 5
    assert r.closed
    with pytest.raises(ValueError):
        r.read(1)


def test_read_at_positional_and_keyword(samples_archive):
    whole = stream_of(samples_archive)
    r = hexz.open(samples_archive)
    assert r.read_at(100, 50) == whole[100:150]
    assert r.read_at(offset=100, length=50) == whole[100:150]
    assert r.read_at(len(whole) - 1, 1) == whole[-1:]
    assert r.tell() == 0, "read_at does not move the position"
    with pytest.raises(hexz.InvalidInputError, match="outside"):
        r.read_at(len(whole) - 1, 2)
    with pytest.raises(hexz.HexzError):
        r.read_at(2**63, 2**62)  # no huge allocation: checked first


def test_readinto_rejects_read_only_buffers(samples_archive):
    r = hexz.open(samples_archive)
    with pytest.raises(TypeError, match="writable"):
        r.readinto(b"immutable")


def test_entries(samples_archive):
    r = hexz.open(samples_archive)
    names = r.namelist()
    assert names == [f"train/{i:05d}.bin" for i in range(N_SAMPLES)]
    assert r.read("train/00007.bin") == sample_bytes(7)
    assert r.columns("train/00007.bin") == {"label": 7}
    e = r.info("train/00007.bin")
    assert e["size"] == len(sample_bytes(7)) and e["kind"] == "record"
    info = r.info()
    assert info["entries"] == N_SAMPLES and info["root_hash"] == r.root_hash
    assert info["columns"] == [{"name": "label", "type": "int64"}]
    with r.open("train/00003.bin") as f:
        data = sample_bytes(3)
        assert f.read(5) == data[:5]
        assert f.seek(-4, io.SEEK_END) == len(data) - 4
        assert f.read() == data[-4:]
        f.seek(2)
        buf = bytearray(8)
        assert f.readinto(buf) == 8 and bytes(buf) == data[2:10]
        f.seek(0)
        assert io.BufferedReader(f).read() == data  # works under io's buffering
    assert r.verify()["entries"] == N_SAMPLES


def test_errors_share_one_base(tmp_path, samples_archive):
    for cls in (
        hexz.NotFoundError,
        hexz.CorruptError,
        hexz.BadKeyError,
        hexz.SignatureError,
        hexz.StorageError,
        hexz.RecipeError,
        hexz.InvalidInputError,
        hexz.UnsupportedError,
    ):
        assert issubclass(cls, hexz.HexzError)
    with pytest.raises(hexz.NotFoundError, match="nope"):
        hexz.open(samples_archive).read("nope")
    with pytest.raises(hexz.NotFoundError):
        hexz.open(tmp_path / "missing.hxz")
    bad = tmp_path / "bad.hxz"
    bad.write_bytes(b"not an archive at all" * 10)
    with pytest.raises(hexz.CorruptError, match="magic"):
        hexz.open(bad)
    # Flip one byte in the middle of a real archive: a chunk's CRC catches it.
    data = bytearray(open(samples_archive, "rb").read())
    data[300] ^= 0xFF
    damaged = tmp_path / "damaged.hxz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(hexz.CorruptError):
        hexz.open(damaged).read()
    with pytest.raises(TypeError, match="unknown option"):
        hexz.open(samples_archive, cache=1)
    with pytest.raises(hexz.SignatureError, match="not signed"):
        hexz.open(samples_archive, trusted_public_keys=[KEYS + "/example-signing.key.pub"])
    with pytest.raises(hexz.InvalidInputError, match="codec|compressor"):
        hexz.Writer(tmp_path / "x.hxz", compression="brotli")
    with pytest.raises(ValueError):
        hexz.open(samples_archive, mode="a")


def test_writer_seed_forms(tmp_path, tree):
    out = tmp_path / "w.hxz"
    with hexz.open(out, mode="w", compression="lz4") as w:
        w.add(tree)  # a directory tree
        w.add(tree / "a.txt", "copy.txt")  # a file under a new name
    r = hexz.open(out)
    assert r.namelist() == ["a.txt", "sub", "sub/b.bin", "sub/c.txt", "copy.txt"]
    assert r.read("sub/b.bin") == (tree / "sub" / "b.bin").read_bytes()
    assert r.info("sub")["kind"] == "dir"

    out2 = tmp_path / "w2.hxz"
    with hexz.Writer(out2, compression="lz4") as w:
        w.add_file(tree / "sub" / "c.txt")
        w.add_dir(tree / "sub", "s")
        w.add_bytes(b"unnamed")
        w.add_bytes("named.bin", b"named")
        w.add_bytes(bytearray(b"from a bytearray"), name="ba.bin")
        with pytest.raises(hexz.InvalidInputError):
            w.add_file(tree / "sub")
    r = hexz.open(out2)
    assert r.namelist() == ["c.txt", "s/b.bin", "s/c.txt", "00000003", "named.bin", "ba.bin"]
    assert r.read("00000003") == b"unnamed"
    assert r.read("ba.bin") == b"from a bytearray"

    dup = tmp_path / "dup.hxz"
    w = hexz.Writer(dup)
    w.add_bytes("same", b"1")
    w.add_bytes("same", b"2")
    with pytest.raises(hexz.InvalidInputError, match="duplicate"):
        w.finish()
    assert not dup.exists()


def test_single_file_archive_reads_as_that_file(tmp_path):
    blob = os.urandom(300_000)
    out = tmp_path / "disk.hxz"
    with hexz.Writer(out, compression="zstd", level=1) as w:
        w.add_bytes(blob)
    assert hexz.open(out).read() == blob


def test_writer_columns_are_checked(tmp_path):
    with hexz.Writer(tmp_path / "c.hxz", columns=[("label", "int64"), ("caption", "utf8")]) as w:
        w.add_bytes("a", b"1", label=1)
        w.add_bytes("b", b"2", caption="two", label=None)
        with pytest.raises(hexz.InvalidInputError, match="unknown column `other`"):
            w.add_bytes("c", b"3", other=1)
        with pytest.raises(hexz.InvalidInputError):
            w.add_bytes("d", b"4", label="not an int")
    r = hexz.open(tmp_path / "c.hxz")
    assert r.columns("b") == {"label": None, "caption": "two"}
    assert r.namelist() == ["a", "b"], "refused entries leave no trace"
    with pytest.raises(hexz.InvalidInputError, match="unknown column type"):
        hexz.Writer(tmp_path / "d.hxz", columns=[("x", "int32")])


def test_failed_writer_leaves_no_file(tmp_path):
    out = tmp_path / "partial.hxz"
    with pytest.raises(RuntimeError):
        with hexz.Writer(out) as w:
            w.add_bytes("a", b"x" * 1000)
            raise RuntimeError("boom")
    assert not out.exists()
    assert os.listdir(tmp_path) == []
    w = hexz.Writer(out)
    w.add_bytes("a", b"x")
    w.abort()
    assert not out.exists() and w.closed
    with pytest.raises(hexz.InvalidInputError, match="closed"):
        w.add_bytes("b", b"y")


def test_writer_chain_options_are_checked(tmp_path):
    """parent=, encrypt= and sign= (tests in test_writer_chains.py) refuse values
    of the wrong kind, leaving no file."""
    for option in ("encrypt", "sign", "parent"):
        with pytest.raises(hexz.InvalidInputError):
            hexz.Writer(tmp_path / "x.hxz", **{option: True})
    assert os.listdir(tmp_path) == []


def test_build_recipe(tmp_path, tree):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"inputs:\n  - path: {tree}\noutput: out/r.hxz\ncompression: {{ codec: lz4 }}\n")
    summary = hexz.build(recipe)
    assert summary["entries"] == 4
    assert hexz.open(summary["path"]).read("a.txt") == b"alpha\n" * 100
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: []\noutput: x.hxz\ncolour: red\n")
    with pytest.raises(hexz.RecipeError, match="bad.yaml"):
        hexz.build(bad)


def test_reads_release_the_gil(tmp_path):
    """Many threads reading one Reader at once get the right bytes (and run in
    parallel: the GIL is released inside Rust)."""
    blob = os.urandom(4 << 20)
    out = tmp_path / "big.hxz"
    with hexz.Writer(out, compression="zstd", level=1) as w:
        w.add_bytes("big", blob)
    r = hexz.open(out, cache_size=1 << 20)
    errors = []

    def worker(k):
        for j in range(50):
            off = (k * 7919 + j * 104729) % (len(blob) - 70000)
            if r.read_at(off, 70000) != blob[off : off + 70000]:
                errors.append((k, j))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


KEYS = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "keys")


def test_encrypted_and_signed_archives(tmp_path):
    """Keys and trusted signers as `hexz.open` options; wrong ones raise the right class."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_bytes(b"secret a")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "inputs:\n  - path: data/\noutput: out/s.hxz\n"
        f"encrypt:\n  key_file: {KEYS}/example-data.key\n"
        f"  passphrase_file: {KEYS}/example.passphrase\n"
        "  kdf: { memory: 64KiB, iterations: 1 }\n"
        f"sign:\n  key: {KEYS}/example-signing.key\n"
    )
    hexz.build(str(recipe))
    path = str(tmp_path / "out" / "s.hxz")
    key = open(f"{KEYS}/example-data.key", "rb").read()
    passphrase = open(f"{KEYS}/example.passphrase").read().rstrip("\n")
    trusted = open(f"{KEYS}/example-signing.key.pub").read()
    with pytest.raises(hexz.BadKeyError):
        hexz.open(path)
    with pytest.raises(hexz.BadKeyError, match="wrong key"):
        hexz.open(path, passphrase="not the passphrase")
    for options in ({"key": key}, {"passphrase": passphrase}):
        with hexz.open(path, trusted_public_keys=[trusted], **options) as r:
            assert r.read("a.txt") == b"secret a"
    # Another signer is not trusted.
    other = open(f"{KEYS}/example-reader.key.pub").read()
    with pytest.raises(hexz.BadKeyError):
        hexz.open(path, key=key, trusted_public_keys=[other])  # an X25519 key: not a signer
