"""Buffers of Python objects are refused, never read or written as raw bytes.

Before, ``read_array(dtype=object)`` and ``readinto_at`` into an object array wrote
archive bytes over the array's object pointers (the interpreter crashed), and
``Volume.write_at`` / ``Writer.add_bytes`` of an object array stored the pointers.
Each case runs in a child interpreter, so a crash fails the test instead of
killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

np = pytest.importorskip("numpy")

import hexz

SETUP = """
import os, sys, numpy as np, hexz
d = sys.argv[1]
path = os.path.join(d, "a.hxz")
if not os.path.exists(path):
    with hexz.Writer(path) as w:
        w.add_bytes("x", bytes(range(256)) * 64)
r = hexz.open(path)
"""


def run_child(tmp_path, body: str) -> str:
    """Run SETUP + body in a new interpreter; it must exit normally. Returns its stdout."""
    code = SETUP + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    return out.stdout


REFUSED = """
try:
    {call}
except hexz.InvalidInputError as e:
    assert isinstance(e, ValueError), type(e).__mro__
    assert isinstance(e, hexz.BufferFormatError)
    print("refused:", e)
else:
    print("accepted")
"""


@pytest.mark.parametrize("call", [
    "hexz.read_array(r, 0, shape=(4,), dtype=object)",
    "hexz.read_array(r, 0, shape=(2,), dtype=[('a', 'i8'), ('o', 'O')])",
    "r.readinto_at(0, np.empty(4, dtype=object))",
    "r.readinto(np.empty(4, dtype=object))",
    "r.open('x').readinto(np.empty(4, dtype=object))",
    "hexz.Volume.create(os.path.join(d, 'vol'), size=1024).write_at(0, np.array([object(), 'x'], dtype=object))",
    "hexz.Volume.create(os.path.join(d, 'vol2'), size=1024).readinto_at(0, np.empty(2, dtype=object))",
    "hexz.Writer(os.path.join(d, 'b.hxz')).add_bytes('o', np.array([object()], dtype=object))",
])
def test_object_buffers_are_refused(tmp_path, call):
    out = run_child(tmp_path, REFUSED.format(call=call))
    assert out.startswith("refused:"), out
    assert "plain bytes or numbers" in out, out


def test_structures_and_pointers_are_refused(tmp_path):
    """Only plain bytes and numbers: a structure's format or a pointer array is refused
    (a view of its bytes is taken)."""
    out = run_child(tmp_path, """
        import ctypes
        recs = np.zeros(4, dtype=[('a', '<i4'), ('b', '<f8')])
        pointers = (ctypes.c_void_p * 4)()
        for buf in (recs, pointers):
            try:
                r.readinto_at(0, buf)
            except hexz.BufferFormatError as e:
                print("refused", memoryview(buf).format)
        r.readinto_at(0, recs.view(np.uint8))
        print("bytes view ok")
    """)
    assert out.count("refused") == 2, out
    assert "bytes view ok" in out


def test_plain_numbers_still_work(tmp_path):
    """Every plain format: integers, floats, bools, complex, either byte order."""
    out = run_child(tmp_path, """
        import array
        data = (bytes(range(256)) * 64)
        for dt in ["u1", "i1", "<u2", ">i2", "<i4", ">u8", "<f2", ">f4", "<f8", "?", "<c8", ">c16"]:
            a = np.empty(8, dtype=dt)
            r.readinto_at(0, a)
            assert a.tobytes() == data[: a.nbytes], dt
            b = hexz.read_array(r, 0, shape=(8,), dtype=dt)
            assert b.tobytes() == data[: b.nbytes], dt
        # NumPy vouches for plain structured and datetime dtypes in read_array.
        rec = hexz.read_array(r, 0, shape=(2,), dtype=[('a', '<i4'), ('b', '<u2')])
        assert rec.tobytes() == data[:12]
        assert hexz.read_array(r, 8, shape=(1,), dtype="M8[s]").tobytes() == data[8:16]
        a = array.array("d", [0.0] * 4)
        r.readinto_at(0, a)
        assert a.tobytes() == data[:32]
        v = hexz.Volume.create(os.path.join(d, "vol"), size=64)
        v.write_at(0, np.arange(4, dtype="<u4"))
        v.write_at(16, memoryview(b"abcd"))
        assert v.read_at(0, 20) == np.arange(4, dtype="<u4").tobytes() + b"abcd"
        print("ok")
    """)
    assert out.strip() == "ok", out
