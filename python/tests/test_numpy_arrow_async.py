"""NumPy without copies, Arrow through the PyCapsule stream interface (pyarrow and
polars), and asyncio without blocking the event loop."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import hexz
from conftest import N_SAMPLES, sample_bytes


def test_read_array(tmp_path):
    values = np.arange(100_000, dtype="<f4").reshape(100, 1000)
    out = tmp_path / "arr.hxz"
    with hexz.Writer(out, compression="lz4") as w:
        w.add_bytes("header", b"H" * 64)
        w.add_bytes("x.f32", values.tobytes())
    r = hexz.open(out)
    a = hexz.read_array(r, offset=64, shape=(100, 1000), dtype="<f4")
    assert a.dtype == np.float32 and a.shape == (100, 1000)
    np.testing.assert_array_equal(a, values)
    assert a.flags.owndata and a.flags.writeable and a.flags.c_contiguous
    # Positional form, and the rest of the stream without a shape.
    tail = hexz.read_array(r, 64, None, np.float32)
    assert tail.shape == (100_000,)
    # Entry-relative, through Reader.open.
    row = hexz.read_array(r.open("x.f32"), offset=4000 * 3, shape=(1000,), dtype="<f4")
    np.testing.assert_array_equal(row, values[3])
    with pytest.raises(hexz.InvalidInputError):
        hexz.read_array(r, offset=64, shape=(101, 1000), dtype="<f4")
    # readinto straight into an existing array.
    dst = np.zeros(10, dtype="<f4")
    r.seek(64)
    assert r.readinto(dst) == 40
    np.testing.assert_array_equal(dst, values.ravel()[:10])


def test_catalog_with_pyarrow_and_polars(samples_archive):
    r = hexz.open(samples_archive)
    t = pa.table(r.catalog())
    assert t.num_rows == N_SAMPLES
    assert t.column_names == ["name", "kind", "size", "offset", "mode", "mtime", "label"]
    assert t["label"].to_pylist() == [i % 10 for i in range(N_SAMPLES)]
    assert t["size"].to_pylist() == [len(sample_bytes(i)) for i in range(N_SAMPLES)]
    df = pl.DataFrame(r.catalog(columns=["name", "label"]))
    assert df.columns == ["name", "label"] and df.height == N_SAMPLES
    assert df.filter(pl.col("label") == 3).height == 10
    with pytest.raises(hexz.InvalidInputError, match="unknown column `nope`"):
        r.catalog(columns=["nope"])


def test_to_arrow_streams_batches_with_data(samples_archive):
    r = hexz.open(samples_archive)
    reader = pa.RecordBatchReader.from_stream(r.to_arrow(batch_size=16))
    assert reader.schema.names == ["name", "label", "data"]
    assert reader.schema.field("data").type == pa.large_binary()
    batches = list(reader)
    assert [b.num_rows for b in batches] == [16] * 6 + [5]
    data = [v for b in batches for v in b.column("data").to_pylist()]
    assert data == [sample_bytes(i) for i in range(N_SAMPLES)]
    df = pl.DataFrame(r.to_arrow(columns=["name", "data"], batch_size=1000))
    assert df["data"].to_list()[42] == sample_bytes(42)
    # Byte budget: small batches, same rows.
    small = pa.table(r.to_arrow(batch_size=1000, max_batch_bytes=10_000))
    assert small.num_rows == N_SAMPLES
    assert max(len(b) for b in small.to_batches()) < N_SAMPLES
    stream = r.to_arrow()
    pa.table(stream)
    with pytest.raises(hexz.InvalidInputError, match="already been consumed"):
        pa.table(stream)


def test_async_reader_does_not_block_the_loop(samples_archive):
    whole = b"".join(sample_bytes(i) for i in range(N_SAMPLES))

    async def main():
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        async with hexz.AsyncReader(samples_archive) as r:
            results = await asyncio.gather(*(r.read_at(off, 1000) for off in range(0, 50_000, 1000)))
            assert results == [whole[off : off + 1000] for off in range(0, 50_000, 1000)]
            assert await r.read("train/00002.bin") == sample_bytes(2)
            assert len(await r.namelist()) == N_SAMPLES
            assert r.size == len(whole)
        stop = True
        await t
        return ticks

    assert asyncio.run(main()) > 0
