"""Reading from the S3 server tests/run.sh starts (moto), by s3:// URL."""

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
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
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
