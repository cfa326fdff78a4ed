"""PyTorch datasets over hexz archives (``pip install 'hexz[torch]'``).

* :class:`Dataset` — map-style (``len``, ``ds[i]``); use with any sampler, e.g.
  ``DistributedSampler``.
* :class:`IterableDataset` — streams an epoch in a deterministic order from
  ``(seed, epoch)``, sharded so that every sample is read exactly once across all
  DDP ranks × DataLoader workers, for any world size; reads run ahead on Rust
  threads; ``state_dict``/``load_state_dict`` resume mid-epoch.

Sharding (``hexz_pipeline::sampler``): the epoch's order is dealt to ranks
round-robin (rank ``r`` takes positions ``r, r + world, ...``) and each rank's list to
its workers in blocks of ``batch_size`` samples. With ``DataLoader(ds,
batch_size=B, num_workers=W)`` and ``IterableDataset(..., batch_size=B)`` a rank
therefore receives its list in order, whatever ``W`` is. Ranks differ by at most
one sample; ``drop_last=True`` makes them equal (what DDP's collectives need) by
leaving out ``n % world`` samples of the epoch.

With ``shuffle_block > 1`` (``hexz_pipeline::sampler::block_shard_samples``) a
rank takes a contiguous piece of the epoch order and each worker whole runs of
neighbouring samples, so the rank's list depends on ``W`` too
(:meth:`IterableDataset.rank_order`): resume with the same ``num_workers``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, Optional

from ._extras import require

torch = require("torch", "torch")

from . import _hexz  # noqa: E402
from .dataset import Dataset as _MapDataset  # noqa: E402

__all__ = ["Dataset", "IterableDataset"]

# Largest span of the archive one prefetch read covers under a block shuffle.
_SPAN_BYTES = 16 << 20


class Dataset(_MapDataset, torch.utils.data.Dataset):
    """Map-style: ``ds[i]`` is the bytes of the archive's ``i``-th file or record
    (stream order), or ``transform(bytes)``."""


class IterableDataset(torch.utils.data.IterableDataset):
    """Streams the archive's files and records for training.

    ``shuffle``/``seed``: the epoch order is a permutation fixed by ``(seed,
    epoch)``; call :meth:`set_epoch` before each epoch. ``batch_size``: the
    DataLoader's batch size (blocks dealt to workers, see the module docs).
    ``rank``/``world_size``: default from ``torch.distributed`` when initialised,
    else 0/1. ``prefetch``: samples read ahead per worker on Rust threads.
    ``prefetch_bytes``: at most this many bytes of samples read ahead per worker
    (at least one fetch group). ``transform``: applied to each sample's bytes.
    ``with_names``: yield ``(name, sample)`` pairs. ``shuffle_block``: shuffle
    runs of this many neighbouring samples and the samples within each run
    instead of the whole epoch at once (``hexz_pipeline::sampler::block_order``)
    — still every sample once per epoch. Each DataLoader worker then reads whole
    runs (``hexz_pipeline::sampler::block_shard_samples``; each rank a
    contiguous piece of the epoch), and fetches each run with one batched read
    before its first sample is needed: on remote storage a few large requests
    per run instead of one per sample (use it for ``s3://``/``http(s)://``).
    Other keyword options as ``hexz.open``.
    """

    def __init__(
        self,
        url: Any,
        *,
        shuffle: bool = True,
        seed: int = 0,
        batch_size: int = 1,
        transform: Optional[Callable[[bytes], Any]] = None,
        drop_last: bool = False,
        prefetch: int = 64,
        prefetch_bytes: int = 64 << 20,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        with_names: bool = False,
        shuffle_block: int = 1,
        **options: Any,
    ) -> None:
        super().__init__()
        self._index = _MapDataset(url, **options)
        self.shuffle = shuffle
        self.seed = seed
        self.batch_size = max(1, int(batch_size))
        self.transform = transform
        self.drop_last = drop_last
        self.prefetch = max(1, int(prefetch))
        self.prefetch_bytes = max(1, int(prefetch_bytes))
        self._rank = rank
        self._world = world_size
        self.with_names = with_names
        self.shuffle_block = max(1, int(shuffle_block))
        self.epoch = 0
        # Resume point: samples of this rank's list already consumed in `_resume_epoch`.
        self._resume = 0
        self._resume_epoch = 0
        # Samples yielded by iterators of this object in this process, this epoch.
        self._yielded = 0

    @property
    def url(self) -> str:
        return self._index.url

    def _ranks(self) -> tuple:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        else:
            # A spawned DataLoader worker has no process group: it uses what the
            # parent saw when it pickled the dataset (see __getstate__).
            rank, world = getattr(self, "_parent_ranks", None) or (0, 1)
        if self._rank is not None:
            rank = self._rank
        if self._world is not None:
            world = self._world
        return rank, world

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration follows."""
        if epoch != self.epoch:
            self._yielded = 0
        self.epoch = int(epoch)

    def __len__(self) -> int:
        rank, world = self._ranks()
        total = _hexz.rank_len(len(self._index), rank, world, self.drop_last)
        return max(0, total - self._skip())

    def _skip(self) -> int:
        return self._resume if self._resume_epoch == self.epoch else 0

    def state_dict(self, consumed: Optional[int] = None) -> Dict[str, Any]:
        """Where this rank is: ``consumed`` is how many samples of the current
        epoch the training loop has received on this rank (count them from the
        DataLoader; without workers it defaults to what this object yielded)."""
        if consumed is None:
            consumed = self._skip() + self._yielded
        return {"epoch": self.epoch, "seed": self.seed, "shuffle": self.shuffle, "consumed": int(consumed)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resume: the next iteration of ``state["epoch"]`` skips the samples
        already consumed, so the rest of the epoch comes out exactly as it would
        have."""
        self.seed = int(state["seed"])
        self.shuffle = bool(state.get("shuffle", self.shuffle))
        self.epoch = int(state["epoch"])
        self._resume_epoch = self.epoch
        self._resume = int(state["consumed"])
        self._yielded = 0

    def indices(self, worker: int = 0, workers: int = 1) -> list:
        """The sample indexes a worker of this rank reads this epoch, in order."""
        rank, world = self._ranks()
        return _hexz.shard_indices(
            len(self._index),
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
            rank=rank,
            world=world,
            worker=worker,
            workers=workers,
            block=self.batch_size,
            consumed=self._skip(),
            drop_last=self.drop_last,
            shuffle_block=self.shuffle_block,
        )

    def rank_order(self, workers: int = 1) -> list:
        """The sample indexes this rank receives this epoch, in order, from a
        ``DataLoader(batch_size=self.batch_size, num_workers=workers)`` (one
        batch from each worker in turn) — with ``shuffle_block > 1`` the list
        depends on ``workers``, as each worker reads whole runs."""
        per = [self.indices(w, workers) for w in range(max(1, workers))]
        out: list = []
        at, step = 0, self.batch_size
        while any(at < len(p) for p in per):
            for p in per:
                out.extend(p[at : at + step])
            at += step
        return out

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        ids = self.indices(worker, workers)
        # A new iteration restarts the epoch after the resume point: what an
        # earlier, abandoned iteration yielded no longer counts.
        self._yielded = 0
        index = self._index
        archive = index._archive()
        offsets = [index._offsets[i] for i in ids]
        sizes = [index._sizes[i] for i in ids]
        # Block shuffles visit runs of neighbouring samples: fetch each run with
        # one batched read (a few large requests on remote storage).
        span = _SPAN_BYTES if self.shuffle_block > 1 else 0
        stream = archive.prefetch(offsets, sizes, self.prefetch, span, self.prefetch_bytes)
        transform = self.transform
        names = [index.names[i] for i in ids] if self.with_names else None
        # Samples cross from Rust a list at a time (one call per batch).
        step = max(self.batch_size, 64)
        pos = 0
        while True:
            batch = stream.next_batch(step)
            if not batch:
                return
            for data in batch:
                self._yielded += 1
                sample = transform(data) if transform is not None else data
                yield (names[pos], sample) if names is not None else sample
                pos += 1

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_parent_ranks"] = self._ranks()
        return state

    def __repr__(self) -> str:
        return f"hexz.torch.IterableDataset({self.url!r}, entries={len(self._index)}, epoch={self.epoch})"
