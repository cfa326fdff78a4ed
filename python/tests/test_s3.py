"""Reading from the S3 test servers tests/run.sh starts (moto, then s3s-fs), by s3:// URL."""

from __future__ import annotations

import os

import pytest
import torch

import hexz
import hexz.torch as htorch
from conftest import N_SAMPLES, S3_KEYS, s3_upload, sample_bytes


def test_s3_reader_and_dataset(samples_archive, s3_endpoint):
    url = s3_upload(s3_endpoint, samples_archive)
    local = hexz.open(samples_archive)
    with hexz.open(url, s3_endpoint=s3_endpoint, **S3_KEYS) as r:
        assert r.root_hash == local.root_hash
        assert r.namelist() == local.namelist()
        assert r.read("train/00050.bin") == sample_bytes(50)
        assert r.read_at(offset=1234, length=5000) == local.read_at(1234, 5000)
        assert r.read() == local.read()
    with pytest.raises(hexz.NotFoundError):
        hexz.open(url + ".missing", s3_endpoint=s3_endpoint, **S3_KEYS)


def test_s3_settings_from_the_environment(samples_archive, s3_endpoint, monkeypatch):
    url = s3_upload(s3_endpoint, samples_archive)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert hexz.open(url).read("train/00001.bin") == sample_bytes(1)


def test_s3_iterable_dataset_in_forked_workers(samples_archive, s3_endpoint):
    """The parent opens the archive over S3 first (its I/O runtime and thread pool
    start), then DataLoader forks two workers, which must get their own."""
    url = s3_upload(s3_endpoint, samples_archive)
    ds = htorch.IterableDataset(url, seed=3, with_names=True, s3_endpoint=s3_endpoint, **S3_KEYS)
    names = [n for n, _ in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, timeout=120)]
    assert sorted(names) == sorted(hexz.open(samples_archive).namelist())
    m = htorch.Dataset(url, s3_endpoint=s3_endpoint, **S3_KEYS)
    got = list(torch.utils.data.DataLoader(m, batch_size=None, num_workers=2, timeout=120))
    assert got == [sample_bytes(i) for i in range(N_SAMPLES)]


def test_block_shuffle_fetches_each_run_with_one_request(tmp_path, counting_s3):
    """Under a block shuffle a loader fetches each run of neighbouring samples with
    one ranged GET; a full shuffle costs about one GET per sample."""
    path = str(tmp_path / "runs.hxz")
    n, run = 256, 32
    with hexz.Writer(path, compression="none", chunk_min=256, chunk_avg=1024, chunk_max=4096) as w:
        for i in range(n):
            w.add_bytes(f"s/{i:04d}", sample_bytes(i))
    url = s3_upload(counting_s3.endpoint, path)
    counting_s3.path_part = url.split("/", 3)[3]
    opts = dict(s3_endpoint=counting_s3.endpoint, **S3_KEYS)
    every = [f"s/{i:04d}" for i in range(n)]

    def fresh(**kw):
        return htorch.IterableDataset(url, seed=1, batch_size=8, with_names=True, **opts, **kw)

    # The dataset as a loader uses it: the whole small archive is within one
    # fetch span, so after the first sample nothing more is fetched.
    ds = fresh(shuffle_block=run)
    it = iter(ds)
    first = next(it)
    before = len(counting_s3.gets)
    names = [first[0]] + [name for name, _ in it]
    assert sorted(names) == every and names == [every[i] for i in ds.rank_order()]
    assert len(counting_s3.gets) == before, counting_s3.gets[before:]

    # Fetch groups cut at each run (a span limit below two runs): one GET per run.
    ds = fresh(shuffle_block=run)
    index, ids = ds._index, ds.indices()
    offsets = [index._offsets[i] for i in ids]
    sizes = [index._sizes[i] for i in ids]
    hull = max(
        max(o + z for o, z in zip(offsets[k : k + run], sizes[k : k + run])) - min(offsets[k : k + run])
        for k in range(0, n, run)
    )
    archive = index._archive()
    archive.data_entries()
    before = len(counting_s3.gets)
    stream = archive.prefetch(offsets, sizes, window=4, span_bytes=hull)
    got = []
    while batch := stream.next_batch(16):
        got.extend(batch)
    assert got == [sample_bytes(i) for i in ids]
    per_run = len(counting_s3.gets) - before
    assert 1 <= per_run <= n // run + 2, f"{per_run} GETs for {n // run} runs"

    # A full shuffle read one sample at a time: about a GET per sample.
    ds = fresh()
    index, ids = ds._index, ds.indices()
    archive = index._archive()
    before = len(counting_s3.gets)
    single = archive.prefetch([index._offsets[i] for i in ids], [index._sizes[i] for i in ids], window=1)
    assert list(single) == [sample_bytes(i) for i in ids]
    assert len(counting_s3.gets) - before >= n // 2


def test_loader_workers_fetch_no_metadata(tmp_path, counting_s3):
    """The dataset hands its archive's tail and chunk index (and size) to the
    DataLoader's workers: their opens send no request (no HEAD, no tail read)
    and their lookups fetch no metadata, only sample data."""
    path = str(tmp_path / "loader.hxz")
    n = 256
    with hexz.Writer(path, compression="none", chunk_min=256, chunk_avg=1024, chunk_max=4096) as w:
        for i in range(n):
            w.add_bytes(f"s/{i:04d}", sample_bytes(i))
    size = os.path.getsize(path)
    url = s3_upload(counting_s3.endpoint, path)
    counting_s3.path_part = url.split("/", 3)[3]
    opts = dict(s3_endpoint=counting_s3.endpoint, **S3_KEYS)
    ds = htorch.IterableDataset(url, seed=2, batch_size=8, shuffle_block=64, with_names=True, **opts)
    built = list(counting_s3.gets)
    heads = counting_s3.heads
    # The tail, read once by the dataset's own open.
    tail = f"bytes={max(0, size - 65536)}-{size - 1}"
    assert built.count(tail) == 1, built
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=lambda b: b, timeout=120)
    names = [name for batch in loader for name, _ in batch]
    assert sorted(names) == [f"s/{i:04d}" for i in range(n)]
    assert names == [ds._index.names[i] for i in ds.rank_order(2)]
    gets = counting_s3.gets[len(built) :]
    assert tail not in gets, gets
    assert counting_s3.heads == heads
    # Sample data only: at most one request per run of 64 samples.
    assert 2 <= len(gets) <= n // 64, gets


def test_forked_workers_do_not_reuse_the_parents_connections(tmp_path, counting_s3):
    """The parent's requests leave keep-alive connections in its HTTP client's
    pool (the proxy keeps them open, as AWS does). A forked DataLoader worker
    must not send on them: they were driven by the parent's I/O runtime, and a
    request on one waits for a reply nothing delivers (for many seconds: the
    first batch missed the loader's 8 s timeout before the fix)."""
    path = str(tmp_path / "fork.hxz")
    n = 128
    with hexz.Writer(path, compression="none", chunk_min=256, chunk_avg=1024, chunk_max=4096) as w:
        for i in range(n):
            w.add_bytes(f"s/{i:04d}", sample_bytes(i))
    url = s3_upload(counting_s3.endpoint, path)
    opts = dict(s3_endpoint=counting_s3.endpoint, **S3_KEYS)
    ds = htorch.IterableDataset(url, seed=1, batch_size=8, shuffle_block=16, with_names=True, **opts)
    # The parent reads samples too: its pool holds open connections at the fork.
    assert hexz.open(url, **opts).read("s/0000") == sample_bytes(0)
    # A stalled worker shows as a batch that does not come within the loader's
    # timeout (a healthy batch takes milliseconds).
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=lambda b: b, timeout=8)
    names = [name for batch in loader for name, _ in batch]
    assert sorted(names) == [f"s/{i:04d}" for i in range(n)]
