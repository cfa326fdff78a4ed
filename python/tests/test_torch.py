"""PyTorch datasets: DataLoader with 2 workers, a 2-process gloo run, exact coverage,
order determinism, any world size, resume mid-epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import hexz
import hexz.torch as htorch
from conftest import N_SAMPLES, sample_bytes

ALL = [f"train/{i:05d}.bin" for i in range(N_SAMPLES)]


def names_of(loader):
    out = []
    for batch in loader:
        out.extend(name for name, _ in batch)
    return out


def loader(ds, workers=2, batch_size=4):
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=lambda b: b)


def test_map_dataset_with_two_workers(samples_archive):
    ds = htorch.Dataset(samples_archive, transform=lambda b: b[:12])
    assert isinstance(ds, torch.utils.data.Dataset) and isinstance(ds, hexz.Dataset)
    assert len(ds) == N_SAMPLES
    assert ds[-1] == sample_bytes(N_SAMPLES - 1)[:12]
    with pytest.raises(IndexError):
        ds[N_SAMPLES]
    got = [x for batch in loader(ds) for x in batch]
    assert got == [sample_bytes(i)[:12] for i in range(N_SAMPLES)]
    # The seed spelling.
    assert hexz.Loader is hexz.Dataset
    assert hexz.Dataset(samples_archive, cache_size=1 << 20)[3] == sample_bytes(3)


def test_iterable_two_workers_exact_coverage_and_determinism(samples_archive):
    ds = htorch.IterableDataset(samples_archive, seed=7, batch_size=4, with_names=True)
    first = names_of(loader(ds))
    assert sorted(first) == ALL, "every sample exactly once"
    assert first == names_of(loader(ds)), "same seed and epoch, same order"
    # With workers and batch_size matching, the rank receives its list in order.
    assert first == [ALL[i] for i in ds.indices()]
    ds.set_epoch(1)
    second = names_of(loader(ds))
    assert sorted(second) == ALL and second != first
    other_seed = htorch.IterableDataset(samples_archive, seed=8, batch_size=4, with_names=True)
    assert names_of(loader(other_seed)) != first
    # Bytes match names, after a transform.
    ds2 = htorch.IterableDataset(samples_archive, seed=7, with_names=True, transform=len)
    pairs = [tuple(p) for p in torch.utils.data.DataLoader(ds2, batch_size=None, num_workers=2)]
    assert sorted(pairs) == sorted((ALL[i], len(sample_bytes(i))) for i in range(N_SAMPLES))


@pytest.mark.parametrize("world", [1, 2, 3, 4, 5, 7])
def test_any_world_size_disjoint_and_complete(samples_archive, world):
    per_rank = []
    for rank in range(world):
        ds = htorch.IterableDataset(samples_archive, seed=5, rank=rank, world_size=world, with_names=True)
        got = names_of(loader(ds, workers=2 if world < 4 else 0))
        assert len(got) == len(ds)
        per_rank.append(got)
    flat = [n for r in per_rank for n in r]
    assert sorted(flat) == ALL
    assert max(map(len, per_rank)) - min(map(len, per_rank)) <= 1
    even = [len(htorch.IterableDataset(samples_archive, rank=r, world_size=world, drop_last=True)) for r in range(world)]
    assert len(set(even)) == 1 and sum(even) == N_SAMPLES - N_SAMPLES % world


def test_block_shuffle_covers_everything_in_local_runs(samples_archive):
    ds = htorch.IterableDataset(samples_archive, seed=4, batch_size=4, shuffle_block=16, with_names=True)
    got = names_of(loader(ds))
    assert sorted(got) == ALL
    assert got == [ALL[i] for i in ds.rank_order(workers=2)]
    assert names_of(loader(ds)) == got, "same seed and epoch, same order"
    # Each worker reads whole runs of 16 neighbours (its fetch unit)...
    for w in range(2):
        mine = ds.indices(w, 2)
        for k in range(0, len(mine) - len(mine) % 16, 16):
            assert len({i // 16 for i in mine[k : k + 16]}) == 1, "a worker reads whole runs"
    # ...so every batch comes from one run, and the two workers' batches alternate.
    batches = [got[k : k + 4] for k in range(0, 64, 4)]
    assert all(len({ALL.index(n) // 16 for n in b}) == 1 for b in batches)
    assert ALL.index(batches[0][0]) // 16 != ALL.index(batches[1][0]) // 16
    # Without workers the rank reads its runs one after the other.
    solo = htorch.IterableDataset(samples_archive, seed=4, batch_size=4, shuffle_block=16, with_names=True)
    alone = names_of(loader(solo, workers=0))
    assert sorted(alone) == ALL and alone == [ALL[i] for i in solo.rank_order()]
    ds.set_epoch(1)
    assert names_of(loader(ds)) != got


def test_resume_mid_epoch(samples_archive):
    ds = htorch.IterableDataset(samples_archive, seed=11, with_names=True)
    ds.set_epoch(2)
    full = [n for n, _ in ds]
    # Without workers: stop after 37 samples, save, restore into a fresh object.
    ds = htorch.IterableDataset(samples_archive, seed=11, with_names=True)
    ds.set_epoch(2)
    it = iter(ds)
    head = [next(it)[0] for _ in range(37)]
    state = ds.state_dict()
    assert state == {"epoch": 2, "seed": 11, "shuffle": True, "consumed": 37}
    fresh = htorch.IterableDataset(samples_archive, seed=0, with_names=True)
    fresh.load_state_dict(state)
    assert len(fresh) == N_SAMPLES - 37
    assert head + [n for n, _ in fresh] == full
    # A new iteration of the same epoch starts over: the abandoned one no longer counts.
    again = iter(ds)
    assert next(again)[0] == full[0]
    assert ds.state_dict()["consumed"] == 1
    # With 2 workers and batches of 4: the loop counts what it received.
    ds = htorch.IterableDataset(samples_archive, seed=11, batch_size=4, with_names=True)
    ds.set_epoch(2)
    received = []
    for batch in loader(ds):
        received.extend(n for n, _ in batch)
        if len(received) >= 40:
            break
    state = ds.state_dict(consumed=len(received))
    resumed = htorch.IterableDataset(samples_archive, batch_size=4, with_names=True)
    resumed.load_state_dict(state)
    assert received + names_of(loader(resumed)) == full
    # The resume point belongs to its epoch.
    resumed.set_epoch(3)
    assert len(resumed) == N_SAMPLES


def test_prefetch_window_and_errors(samples_archive):
    r = hexz.open(samples_archive)
    offsets = [0, 10, 20]
    it = r._archive.prefetch(offsets, [5, 5, 5], window=2)
    assert len(it) == 3
    assert list(it) == [r.read_at(o, 5) for o in offsets]
    grouped = r._archive.prefetch([900, 0, 5000, 20], [100, 10, 7, 3], window=8, span_bytes=1 << 20)
    assert list(grouped) == [r.read_at(900, 100), r.read_at(0, 10), r.read_at(5000, 7), r.read_at(20, 3)]
    with pytest.raises(hexz.InvalidInputError):
        r._archive.prefetch([r.size], [1])
    with pytest.raises(hexz.InvalidInputError, match="rank"):
        list(htorch.IterableDataset(samples_archive, rank=2, world_size=2))


def test_two_process_gloo_run(samples_archive, tmp_path):
    """Two ranks (gloo), each with a DataLoader of 2 workers, two epochs: the ranks'
    lists are disjoint and complete, uneven (50/51) without a hang, and exactly the
    order computed independently from (seed, epoch, rank, world)."""
    script = os.path.join(os.path.dirname(__file__), "ddp_run.py")
    out = tmp_path / "ddp.json"
    p = subprocess.run([sys.executable, script, samples_archive, str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    seen = json.loads(out.read_text())
    for epoch in (0, 1):
        ranks = seen[str(epoch)]
        assert len(ranks) == 2
        assert not set(ranks[0]) & set(ranks[1]), "ranks are disjoint"
        assert sorted(ranks[0] + ranks[1]) == ALL, "and complete"
        assert {len(ranks[0]), len(ranks[1])} == {50, 51}, "uneven split, no hang"
        for rank in (0, 1):
            expect = htorch.IterableDataset(samples_archive, seed=1234, batch_size=4, rank=rank, world_size=2)
            expect.set_epoch(epoch)
            assert ranks[rank] == [ALL[i] for i in expect.indices()], "deterministic order"
    assert seen["0"] != seen["1"], "epochs differ"


@pytest.mark.parametrize("world", [1, 2, 3])
def test_block_shuffle_any_world_and_resume(samples_archive, world):
    """Block shuffles: ranks take contiguous pieces, workers whole runs; still
    disjoint and complete, ranks within one sample, and resumable mid-epoch."""
    per_rank = []
    for rank in range(world):
        ds = htorch.IterableDataset(
            samples_archive, seed=6, batch_size=4, shuffle_block=8, rank=rank, world_size=world, with_names=True
        )
        got = names_of(loader(ds))
        assert got == [ALL[i] for i in ds.rank_order(workers=2)]
        assert len(got) == len(ds)
        per_rank.append(got)
    assert sorted(n for r in per_rank for n in r) == ALL
    assert max(map(len, per_rank)) - min(map(len, per_rank)) <= 1
    # Resume rank 0 after 3 batches, with the same loader settings.
    ds = htorch.IterableDataset(samples_archive, seed=6, batch_size=4, shuffle_block=8, rank=0, world_size=world, with_names=True)
    received = []
    for batch in loader(ds):
        received.extend(n for n, _ in batch)
        if len(received) >= 12:
            break
    resumed = htorch.IterableDataset(samples_archive, batch_size=4, shuffle_block=8, rank=0, world_size=world, with_names=True)
    resumed.load_state_dict(ds.state_dict(consumed=len(received)))
    assert received + names_of(loader(resumed)) == per_rank[0]


def test_prefetch_batches_bounds_and_failures(samples_archive, tmp_path):
    r = hexz.open(samples_archive)
    names, offsets, sizes = r._archive.data_entries()
    # Groups bounded by bytes ahead: every sample still comes, in order.
    for span, ahead in [(0, 1), (1 << 20, 1), (1 << 20, 5000), (1 << 20, 1 << 30)]:
        it = r._archive.prefetch(offsets, sizes, window=8, span_bytes=span, ahead_bytes=ahead)
        got = []
        while batch := it.next_batch(7):
            assert len(batch) == 7 or len(got) + len(batch) == N_SAMPLES
            got.extend(batch)
        assert got == [sample_bytes(i) for i in range(N_SAMPLES)]
        assert it.next_batch(3) == [] and len(it) == 0
    # A read that fails is reported, and again on every later call.
    bad = tmp_path / "bad.hxz"
    data = bytearray(open(samples_archive, "rb").read())
    # Chunk blobs follow the header: a quarter into the file is chunk data.
    at = len(data) // 4
    data[at : at + 64] = bytes(64)
    bad.write_bytes(bytes(data))
    broken = hexz.open(str(bad))
    it = broken._archive.prefetch(offsets, sizes, window=8, span_bytes=1 << 20)
    with pytest.raises(hexz.CorruptError) as first:
        while it.next_batch(8):
            pass
    # Later calls: the same class and message (not a generic error).
    for _ in range(2):
        with pytest.raises(hexz.CorruptError) as again:
            it.next_batch(8)
        assert str(again.value) == str(first.value)
    with pytest.raises(hexz.CorruptError):
        next(it)


def test_pickled_dataset_opens_with_the_parents_metadata(samples_archive):
    """A pickled dataset (a spawned worker) carries its parent's metadata snapshot
    and opens with it; a damaged snapshot is refused, never trusted."""
    import pickle

    ds = htorch.IterableDataset(samples_archive, seed=3, batch_size=4, with_names=True)
    assert isinstance(ds._index._metadata, bytes) and len(ds._index._metadata) > 0
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._index._metadata == ds._index._metadata
    assert copy._index._archive_handle is None
    assert list(copy) == list(ds)
    assert copy._index._archive().root_hash() == ds._index._archive().root_hash()
    m = htorch.Dataset(samples_archive)
    bad = pickle.loads(pickle.dumps(m))
    bad._metadata = bad._metadata[:-1] + bytes([bad._metadata[-1] ^ 1])
    with pytest.raises(hexz.CorruptError):
        bad[0]
    bad._metadata = b"not a snapshot"
    with pytest.raises(hexz.CorruptError, match="metadata snapshot"):
        bad[0]
