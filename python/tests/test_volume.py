"""`hexz.Volume`: random writes against a bytearray model, reopen, time travel,
two writers, the write-ahead log, context manager, gc — on a local folder and on
the S3 test servers (moto and s3s-fs, HEXZ_TEST_S3_ENDPOINT)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading

import pytest

import hexz
from conftest import S3_KEYS, s3_bucket

np = pytest.importorskip("numpy")

SIZE = 300_000


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path):
    """(url, storage options) of a fresh volume location."""
    if request.param == "local":
        return str(tmp_path / "vol"), {}
    endpoint = os.environ.get("HEXZ_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("HEXZ_TEST_S3_ENDPOINT is not set (tests/run.sh starts the S3 servers and sets it)")
    return f"s3://{s3_bucket(endpoint)}/volumes/v", dict(s3_endpoint=endpoint, **S3_KEYS)


def random_ops(v: hexz.Volume, model: bytearray, rng: random.Random, n: int) -> None:
    """n random writes and truncates, applied to the volume and the model alike."""
    for _ in range(n):
        r = rng.random()
        if r < 0.8:
            off = rng.randrange(0, len(model) + 5000)
            data = rng.randbytes(rng.choice([1, 7, 4096, 65536, 70_001, rng.randrange(1, 150_000)]))
            v.write_at(off, data)
            if off > len(model):
                model.extend(bytes(off - len(model)))
            end = off + len(data)
            if end > len(model):
                model.extend(bytes(end - len(model)))
            model[off:end] = data
        else:
            size = rng.randrange(max(0, len(model) - 80_000), len(model) + 80_000)
            v.truncate(size)
            if size < len(model):
                del model[size:]
            else:
                model.extend(bytes(size - len(model)))
        assert v.size == len(model)


def check(v: hexz.Volume, model: bytes, rng: random.Random) -> None:
    assert v.size == len(model)
    assert v.read_at(0, len(model)) == model
    for _ in range(20):
        off = rng.randrange(0, len(model) + 1)
        n = rng.randrange(0, len(model) - off + 1)
        assert v.read_at(off, n) == model[off : off + n]


def test_random_writes_reopen_and_time_travel(place):
    url, storage = place
    rng = random.Random(7)
    v = hexz.Volume.create(url, SIZE, compression="lz4", **storage)
    assert (v.version, v.size, v.read_only, v.dirty) == (1, SIZE, False, False)
    model = bytearray(SIZE)
    history = {1: (v.id, bytes(model))}
    for k in range(2, 6):
        random_ops(v, model, rng, 12)
        check(v, model, rng)  # reads see unflushed writes
        assert v.dirty
        vid = v.flush()
        assert (v.version, v.id, v.dirty) == (k, vid, False)
        history[k] = (vid, bytes(model))
        check(v, model, rng)
    assert v.flush() == history[5][0]  # nothing changed: no new version
    v.close()
    # Reopen: the latest version.
    with hexz.Volume(url, **storage) as again:
        assert again.version == 5
        check(again, history[5][1], rng)
    # Time travel: every version, read-only.
    for k, (vid, data) in history.items():
        old = hexz.Volume(url, version=k, **storage)
        assert (old.version, old.id, old.read_only) == (k, vid, True)
        check(old, data, rng)
        with pytest.raises(hexz.InvalidInputError, match="read-only"):
            old.write_at(0, b"x")
        with pytest.raises(hexz.InvalidInputError, match="read-only"):
            old.truncate(1)
        old.close()
    assert hexz.Volume(url, **storage).at(2).read_at(0, 1000) == history[2][1][:1000]
    with pytest.raises(hexz.NotFoundError, match="no version 6"):
        hexz.Volume(url, version=6, **storage)
    log = hexz.Volume(url, **storage).log()
    assert [x["version"] for x in log] == [5, 4, 3, 2, 1]
    assert [x["id"] for x in log] == [history[k][0] for k in (5, 4, 3, 2, 1)]
    assert all(x["status"] == "ok" for x in log)
    assert [x["size"] for x in log] == [len(history[k][1]) for k in (5, 4, 3, 2, 1)]


def test_two_writers_conflict(place):
    url, storage = place
    hexz.Volume.create(url, SIZE, **storage).close()
    a = hexz.Volume(url, **storage)
    b = hexz.Volume(url, **storage)
    a.write_at(10, b"writer a")
    b.write_at(20, b"writer b")
    a.flush()
    with pytest.raises(hexz.ConflictError) as err:
        b.flush()
    assert isinstance(err.value, hexz.HexzError)
    assert (err.value.expected, err.value.found) == (1, 2)
    assert err.value.volume
    # Nothing of b was committed; its acknowledged write is still there to read.
    assert b.dirty and b.read_at(20, 8) == b"writer b"
    with hexz.Volume(url, **storage) as head:
        assert head.version == 2
        assert head.read_at(10, 8) == b"writer a"
        assert head.read_at(20, 8) == bytes(8)
    # b retries on top of the new head; both writes survive.
    b.discard()
    b = hexz.Volume(url, **storage)
    b.write_at(20, b"writer b")
    b.flush()
    assert hexz.Volume(url, version=3, **storage).read_at(10, 18) == b"writer a\0\0writer b"
    # The loser's snapshot is garbage: gc removes it (grace 0), keeps the chain.
    report = hexz.Volume.gc(url, grace_seconds=0, **storage)
    assert report["kept"] == 3 and len(report["removed"]) == 1, report
    for k in (1, 2, 3):
        hexz.Volume(url, version=k, **storage).read_at(0, SIZE)
    with pytest.raises(hexz.InvalidInputError, match="already exists"):
        hexz.Volume.create(url, 10, **storage)


def test_buffers_in_and_out(tmp_path):
    v = hexz.Volume.create(tmp_path / "vol", 100_000)
    arr = np.arange(1000, dtype=np.uint32)
    assert v.write_at(0, arr) == 4000
    assert v.write_at(5000, bytearray(b"bytearray")) == 9
    assert v.write_at(6000, memoryview(b"read-only view")) == 14
    assert v.write_at(7000, memoryview(bytearray(b"0123456789"))[2:6]) == 4
    assert v.write_at(8000, b"") == 0
    out = np.zeros(1000, dtype=np.uint32)
    assert v.readinto_at(0, out) == 4000
    assert (out == arr).all()
    buf = bytearray(9)
    v.readinto_at(5000, buf)
    assert buf == b"bytearray"
    assert v.read_at(6000, 14) == b"read-only view" and v.read_at(7000, 4) == b"2345"
    with pytest.raises(TypeError):
        v.readinto_at(0, b"immutable")
    with pytest.raises(hexz.InvalidInputError, match="past the end"):
        v.read_at(99_999, 2)
    with pytest.raises(hexz.InvalidInputError, match="past the end"):
        v.readinto_at(99_000, bytearray(2000))
    with pytest.raises(ValueError, match="C-contiguous"):
        v.write_at(0, np.zeros((10, 10), dtype=np.uint8)[:, 1])
    v.close()


def test_sizes_past_the_maximum_are_refused(tmp_path):
    """A volume holds at most 4 TiB: before, write_at(2**63) was taken and the next
    flush chunked 2**63 zeros."""
    v = hexz.Volume.create(tmp_path / "vol", 1000)
    with pytest.raises(hexz.InvalidInputError, match="4 TiB"):
        v.write_at(2**63, b"x")
    with pytest.raises(hexz.InvalidInputError, match="4 TiB"):
        v.truncate(2**50)
    with pytest.raises(hexz.InvalidInputError, match="4 TiB"):
        hexz.Volume.create(tmp_path / "big", 2**62)
    assert (v.size, v.dirty) == (1000, False)
    v.close()


def test_context_manager_flushes_and_discard(tmp_path):
    url = str(tmp_path / "vol")
    with hexz.Volume.create(url, 1000) as v:
        v.write_at(0, b"clean exit")
    assert v.closed
    with pytest.raises(ValueError, match="closed"):
        v.read_at(0, 1)
    v.close()  # idempotent
    with hexz.Volume(url) as v:
        assert (v.version, v.read_at(0, 10)) == (2, b"clean exit")
    # An exception does not drop acknowledged writes: they are committed.
    with pytest.raises(RuntimeError):
        with hexz.Volume(url) as v:
            v.write_at(0, b"then error")
            raise RuntimeError("boom")
    with hexz.Volume(url) as v:
        assert (v.version, v.read_at(0, 10)) == (3, b"then error")
        # discard() throws the unflushed changes away: no version is made.
        v.write_at(0, b"discarded!")
        v.truncate(10)
        v.discard()
        assert (v.size, v.read_at(0, 10), v.dirty) == (1000, b"then error", False)
    assert hexz.Volume(url).version == 3
    # Leaving the block after a lost conflict: the flush error is noted.
    other = hexz.Volume(url)
    with pytest.raises(hexz.ConflictError) as err:
        with hexz.Volume(url) as v:
            v.write_at(0, b"loser")
            other.write_at(0, b"winner")
            other.flush()
            v.flush()
    assert any("flushing on exit failed" in n for n in getattr(err.value, "__notes__", [])) or sys.version_info < (3, 11)
    assert not v.closed and v.read_at(0, 5) == b"loser"  # kept, not silently dropped
    v.discard()
    v.close()
    with pytest.raises(TypeError, match="size="):
        hexz.Volume(url, create=True)
    with pytest.raises(TypeError, match="unknown option"):
        hexz.Volume(url, colour="red")
    with pytest.raises(hexz.NotFoundError):
        hexz.Volume(tmp_path / "nothing-here")
    with pytest.raises(hexz.InvalidInputError, match="brotli"):
        hexz.Volume.create(tmp_path / "v2", 10, compression="brotli")


CRASH = """
import os, sys, hexz
v = hexz.Volume(sys.argv[1], wal=sys.argv[2])
v.write_at(int(sys.argv[3]), b"acknowledged before the crash")
os._exit(0)  # no flush, no cleanup: a crash after the write returned
"""


def test_write_ahead_log_survives_a_crash(tmp_path):
    url, wal = str(tmp_path / "vol"), str(tmp_path / "vol.wal")
    hexz.Volume.create(url, 100_000, wal=wal).close()
    subprocess.run([sys.executable, "-c", CRASH, url, wal, "12345"], check=True, timeout=120)
    with hexz.Volume(url) as plain:  # the log is not applied without it
        assert plain.version == 1 and not plain.dirty
    with hexz.Volume(url, wal=wal) as v:
        assert v.dirty and v.version == 1
        assert v.read_at(12345, 29) == b"acknowledged before the crash"
    assert hexz.Volume(url).read_at(12345, 29) == b"acknowledged before the crash"
    with pytest.raises(hexz.InvalidInputError, match="read-only"):
        hexz.Volume(url, version=1, wal=wal)


def test_a_log_overtaken_by_another_writer_is_a_conflict(tmp_path):
    """Writes logged on version 1 and not flushed (a crash), then another writer
    commits version 2: opening with the log is a ConflictError naming the volume
    and both versions; the logged writes are not applied anywhere."""
    url, wal = str(tmp_path / "vol"), str(tmp_path / "vol.wal")
    hexz.Volume.create(url, 100_000, wal=wal).close()
    subprocess.run([sys.executable, "-c", CRASH, url, wal, "500"], check=True, timeout=120)
    with hexz.Volume(url) as other:
        other.write_at(0, b"other writer")
    with pytest.raises(hexz.ConflictError) as err:
        hexz.Volume(url, wal=wal)
    assert (err.value.expected, err.value.found) == (1, 2)
    assert err.value.volume == url
    assert "write-ahead log" in str(err.value)
    with hexz.Volume(url) as head:
        assert head.version == 2 and head.read_at(500, 29) == bytes(29)


def test_concurrent_reads_and_writes(tmp_path):
    """Reads from many threads (the GIL is released, a shared read lock) while
    another thread writes elsewhere."""
    rng = random.Random(3)
    data = rng.randbytes(SIZE)
    v = hexz.Volume.create(tmp_path / "vol", SIZE * 2)
    v.write_at(0, data)
    v.flush()
    errors = []

    def reader(k):
        r = random.Random(k)
        for _ in range(100):
            off = r.randrange(0, SIZE - 5000)
            if v.read_at(off, 5000) != data[off : off + 5000]:
                errors.append(k)

    def writer():
        for i in range(100):
            v.write_at(SIZE + i * 1000, b"w" * 1000)

    def guarded(body, *args):
        # An exception in a thread only reaches threading.excepthook: record it.
        def run():
            try:
                body(*args)
            except BaseException as e:  # noqa: BLE001 - reported by the assert below
                errors.append(e)

        return threading.Thread(target=run)

    threads = [guarded(reader, k) for k in range(4)] + [guarded(writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert v.read_at(SIZE, 100_000) == b"w" * 100_000
    v.flush()
    v.close()


def test_dropping_unflushed_writes_warns(tmp_path):
    v = hexz.Volume.create(tmp_path / "vol", 1000)
    v.write_at(0, b"never flushed")
    with pytest.warns(ResourceWarning, match="unflushed writes"):
        v.__del__()
    v.discard()
    v.close()
