"""Map-style datasets over an archive's files and records (``hexz.Dataset``).

No PyTorch needed; ``hexz.torch.Dataset`` is the same class registered as a
``torch.utils.data.Dataset``. Each process (DataLoader workers included) opens its
own handle on first use, so datasets can be pickled and forked. The handle the
dataset opened at construction hands its metadata to those (a snapshot of the
archive's tail and chunk index, ``Archive.metadata_snapshot``, travelling with
the pickled or forked dataset): a worker's open and its sample lookups fetch no
metadata — on remote storage its first sample costs only its data request. The
worker checks the snapshot exactly as a fresh open would (checksums, root hash,
key slots, signatures under ``trusted_public_keys``).
"""

from __future__ import annotations

import os
from array import array
from typing import Any, Callable, Dict, List, Optional

from . import _hexz

# Stored bytes of chunk-index pages a dataset hands to its worker processes at
# most (deeper levels are then loaded by each worker).
_SNAPSHOT_BYTES = 16 << 20


class Dataset:
    """The archive's files and records (stream order) as a sequence: ``len(ds)``,
    ``ds[i]`` → the bytes of entry ``i`` (or ``transform(bytes)``).

    ``url``: local path, ``s3://`` or ``http(s)://``. ``cache_size``: bytes of
    decompressed chunks kept per process. Other keyword options as ``hexz.open``.
    ``hexz.Loader`` is the same class.
    """

    def __init__(
        self,
        url: Any,
        transform: Optional[Callable[[bytes], Any]] = None,
        cache_size: Optional[int] = None,
        **options: Any,
    ) -> None:
        self.url = os.fspath(url)
        self.transform = transform
        self._options: Dict[str, Any] = dict(options)
        if cache_size is not None:
            self._options["cache_size"] = cache_size
        self._archive_pid: Optional[int] = None
        self._archive_handle: Optional[_hexz.Archive] = None
        self._metadata: Optional[bytes] = None
        archive = self._archive()
        names, offsets, sizes = archive.data_entries()
        self._metadata = archive.metadata_snapshot(_SNAPSHOT_BYTES)
        self.names: List[str] = names
        self._offsets = array("Q", offsets)
        self._sizes = array("Q", sizes)

    def _archive(self) -> "_hexz.Archive":
        """This process's handle (a forked or spawned worker opens its own)."""
        if self._archive_handle is None or self._archive_pid != os.getpid():
            from . import _open_archive

            self._archive_handle = _open_archive(self.url, self._options, self._metadata)
            self._archive_pid = os.getpid()
        return self._archive_handle

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index: int) -> Any:
        n = len(self._offsets)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} entries")
        data = self._archive().read_at(self._offsets[index], self._sizes[index])
        return self.transform(data) if self.transform is not None else data

    def name(self, index: int) -> str:
        """The entry name of sample ``index``."""
        return self.names[index]

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_archive_handle"] = None
        state["_archive_pid"] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, entries={len(self)})"


Loader = Dataset
