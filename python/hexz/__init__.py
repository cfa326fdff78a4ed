"""hexz: seekable, deduplicated, compressed archives, read by random access.

Open an archive from a local path, ``s3://bucket/key`` or ``http(s)://...``::

    import hexz
    with hexz.open("s3://bucket/train.hxz") as r:
        header = r.read_at(0, 16)          # the logical stream
        label = r.read("labels.csv")       # one entry
        for batch in pyarrow.RecordBatchReader.from_stream(r.to_arrow()): ...

Write one::

    with hexz.open("out.hxz", mode="w", compression="lz4") as w:
        w.add("photos/")                   # a file or a directory tree
        w.add_bytes("meta.json", b"{}")

Everything that reads, decompresses or hashes runs in Rust with the GIL released.
NumPy (``hexz[numpy]``), PyTorch (``hexz[torch]``) and pyarrow (``hexz[arrow]``) are
optional; the core needs none of them.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _hexz
from ._buffer import writable_address
from ._hexz import (
    BadKeyError,
    CorruptError,
    HexzError,
    InvalidInputError,
    NotFoundError,
    RecipeError,
    SignatureError,
    StorageError,
    UnsupportedError,
)
from .dataset import Dataset, Loader

__version__: str = _hexz.__version__

__all__ = [
    "AsyncReader",
    "BadKeyError",
    "CorruptError",
    "Dataset",
    "EntryFile",
    "HexzError",
    "InvalidInputError",
    "Loader",
    "NotFoundError",
    "Reader",
    "RecipeError",
    "SignatureError",
    "StorageError",
    "UnsupportedError",
    "Writer",
    "build",
    "open",
    "read_array",
]

PathLike = Union[str, "os.PathLike[str]"]

_S3_KEYS = ("endpoint", "region", "access_key_id", "secret_access_key", "session_token", "virtual_host_style")
_OPEN_OPTIONS = (
    "cache_size",
    "page_cache_size",
    "prefetch",
    "verify",
    "s3",
    "passphrase",
    "key",
    "trusted_public_keys",
) + tuple("s3_" + k for k in _S3_KEYS)


def _open_archive(location: PathLike, options: Dict[str, Any]) -> "_hexz.Archive":
    """Map the keyword options users pass to ``hexz.open`` onto the extension."""
    unknown = sorted(set(options) - set(_OPEN_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(_OPEN_OPTIONS)}")
    s3 = dict(options.get("s3") or {})
    for k in _S3_KEYS:
        if options.get("s3_" + k) is not None:
            s3[k] = options["s3_" + k]
    prefetch = options.get("prefetch")
    if prefetch is True:
        prefetch = None
    elif prefetch is False:
        prefetch = 0
    key = options.get("key")
    if isinstance(key, (str, os.PathLike)):
        with io.open(key, "rb") as f:
            key = f.read()
    return _hexz.Archive.open(
        os.fspath(location),
        cache_bytes=options.get("cache_size"),
        page_cache_bytes=options.get("page_cache_size"),
        readahead_bytes=prefetch,
        verify_chunks=bool(options.get("verify", False)),
        s3=s3 or None,
        passphrase=options.get("passphrase"),
        key=key,
        trusted_public_keys=options.get("trusted_public_keys"),
    )


class Reader(io.RawIOBase):
    """An open archive: the logical stream as a binary file, and its entries.

    ``read(n)``, ``seek``, ``tell``, ``readinto`` and ``read_at`` address the logical
    stream (all entries back to back; for a single-file or raw-image archive, that
    file). ``namelist()``, ``open(name)``, ``read(name)``, ``info(name)`` address
    entries. Safe to share between threads for ``read_at`` and entry reads.
    """

    def __init__(self, path_or_url: PathLike, **options: Any) -> None:
        super().__init__()
        self._archive = _open_archive(path_or_url, options)
        self._pos = 0
        self.name = os.fspath(path_or_url)

    # -- the logical stream -------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes in the logical stream."""
        return self._archive.size()

    def __len__(self) -> int:
        return self._archive.size()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: Union[int, str, None] = -1) -> bytes:  # type: ignore[override]
        """``read(n)``: up to ``n`` bytes of the stream from the current position
        (all of the rest when ``n`` is -1 or None). ``read(name)``: the whole entry
        ``name``."""
        if isinstance(n, str):
            return self._archive.read_entry(n)
        self._check_open()
        size = self._archive.size()
        left = max(0, size - self._pos)
        count = left if n is None or n < 0 else min(n, left)
        data = self._archive.read_at(self._pos, count) if count else b""
        self._pos += count
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def read_at(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the logical stream at ``offset`` (does not move the
        position)."""
        return self._archive.read_at(offset, length)

    def readinto(self, buffer: Any) -> int:
        """Fill a writable buffer (bytearray, memoryview, NumPy array, ...) from
        the current position, without an intermediate copy; returns the count."""
        self._check_open()
        n = self.readinto_at(self._pos, buffer, partial=True)
        self._pos += n
        return n

    def readinto_at(self, offset: int, buffer: Any, partial: bool = False) -> int:
        """Fill ``buffer`` from the logical stream at ``offset``. Without
        ``partial``, the buffer must fit inside the stream."""
        address, nbytes, keep = writable_address(buffer)
        if partial:
            nbytes = max(0, min(nbytes, self._archive.size() - offset))
        if nbytes:
            self._archive.read_into_address(offset, address, nbytes)
        del keep
        return nbytes

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            new = pos
        elif whence == io.SEEK_CUR:
            new = self._pos + pos
        elif whence == io.SEEK_END:
            new = self._archive.size() + pos
        else:
            raise ValueError(f"invalid whence {whence!r} (0, 1 or 2)")
        if new < 0:
            raise ValueError(f"negative seek position {new}")
        self._pos = new
        return new

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed hexz.Reader")

    # -- entries ------------------------------------------------------------
    def namelist(self) -> List[str]:
        """Every entry name, in stream order (files, records, dirs, symlinks)."""
        return self._archive.names(False)

    def open(self, name: str) -> "EntryFile":
        """Entry ``name`` as a read-only binary file."""
        return EntryFile(self._archive, self._archive.entry(name))

    def entry(self, name: str) -> Dict[str, Any]:
        """Metadata of entry ``name``: id, name, kind, size, offset, mode, mtime,
        target, owner."""
        return self._archive.entry(name)

    def columns(self, name: str) -> Dict[str, Any]:
        """The typed user columns of entry ``name``."""
        return self._archive.entry_columns(name)

    def info(self, name: Optional[str] = None) -> Dict[str, Any]:
        """The archive summary (``hexz info --json``), or entry ``name``'s metadata."""
        if name is not None:
            return self._archive.entry(name)
        return json.loads(self._archive.info_json())

    @property
    def root_hash(self) -> str:
        """BLAKE3 root hash (hex): the archive's identity."""
        return self._archive.root_hash()

    def verify(self) -> Dict[str, int]:
        """Check every page and chunk (CRC32, BLAKE3, structure); raises
        ``CorruptError`` on the first failure."""
        return self._archive.verify()

    # -- Arrow --------------------------------------------------------------
    def catalog(self, columns: Optional[Sequence[str]] = None, batch_size: int = 65536) -> "_hexz.ArrowStream":
        """The entry table (name, kind, size, offset, mode, mtime, user columns) as
        an Arrow stream: ``pyarrow.table(r.catalog())``, ``polars.DataFrame(...)``."""
        return self._archive.catalog(list(columns) if columns is not None else None, batch_size)

    def to_arrow(
        self,
        columns: Optional[Sequence[str]] = None,
        batch_size: int = 1024,
        max_batch_bytes: Optional[int] = None,
    ) -> "_hexz.ArrowStream":
        """Files and records with a binary ``data`` column, as an Arrow stream of
        record batches (``__arrow_c_stream__``)."""
        return self._archive.to_arrow(list(columns) if columns is not None else None, batch_size, max_batch_bytes)

    def __repr__(self) -> str:
        return f"hexz.Reader({self.name!r}, entries={self._archive.entry_count()}, bytes={self._archive.size()})"


class EntryFile(io.RawIOBase):
    """One entry as a read-only, seekable binary file."""

    def __init__(self, archive: "_hexz.Archive", entry: Dict[str, Any]) -> None:
        super().__init__()
        if entry["kind"] not in ("file", "record"):
            raise InvalidInputError(f"entry `{entry['name']}` is a {entry['kind']}, not a file")
        self._archive = archive
        self._start = entry["offset"]
        self._size = entry["size"]
        self._pos = 0
        self.name = entry["name"]

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: Optional[int] = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on a closed entry file")
        left = max(0, self._size - self._pos)
        count = left if n is None or n < 0 else min(n, left)
        data = self._archive.read_at(self._start + self._pos, count) if count else b""
        self._pos += count
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        address, nbytes, keep = writable_address(buffer)
        count = max(0, min(nbytes, self._size - self._pos))
        if count:
            self._archive.read_into_address(self._start + self._pos, address, count)
        del keep
        self._pos += count
        return count

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence!r} (0, 1 or 2)")
        if base + pos < 0:
            raise ValueError(f"negative seek position {base + pos}")
        self._pos = base + pos
        return self._pos

    def tell(self) -> int:
        return self._pos


def open(path_or_url: PathLike, mode: str = "r", **options: Any) -> Union[Reader, "Writer"]:
    """Open an archive for reading (``mode="r"``: a local path, ``file://``,
    ``s3://bucket/key``, ``http(s)://``) or writing (``mode="w"``: a local path).

    Reading options: ``cache_size`` (bytes of decompressed chunks kept, default
    64 MiB), ``page_cache_size``, ``prefetch`` (read-ahead bytes; False turns it
    off), ``verify`` (check every chunk's BLAKE3), ``s3={...}`` or ``s3_endpoint=``,
    ``s3_region=``, ``s3_access_key_id=``, ``s3_secret_access_key=``,
    ``s3_session_token=``, ``s3_virtual_host_style=`` (default: the AWS
    environment variables), ``passphrase``, ``key``, ``trusted_public_keys``.
    Writing options: those of :class:`Writer`.
    """
    if mode in ("r", "rb"):
        return Reader(path_or_url, **options)
    if mode in ("w", "wb"):
        return Writer(path_or_url, **options)
    raise ValueError(f"invalid mode {mode!r}: 'r' or 'w'")


class Writer:
    """Writes an archive; a context manager that finishes on success and leaves no
    file on error. Nothing appears at ``path`` until :meth:`finish`.

    ``compression``: ``"zstd"`` (``level`` 1-22, default 3), ``"lz4"`` or ``"none"``.
    ``columns``: ``[(name, type), ...]`` with types ``bool``, ``int64``, ``float64``,
    ``utf8``, ``bytes`` (otherwise inferred from the first ``add_bytes`` with
    columns). ``chunk_min``/``chunk_avg``/``chunk_max``: FastCDC bounds in bytes.
    """

    def __init__(
        self,
        path: PathLike,
        compression: str = "zstd",
        level: Optional[int] = None,
        *,
        columns: Optional[Sequence[Tuple[str, str]]] = None,
        **options: Any,
    ) -> None:
        self.path = os.fspath(path)
        self._w = _hexz.Writer(
            self.path,
            compression,
            level,
            columns=list(columns) if columns is not None else None,
            **options,
        )
        self.summary: Optional[Dict[str, Any]] = None

    def add(self, path: PathLike, name: Optional[str] = None) -> None:
        """Add a file (named ``name``, default its file name) or a directory tree
        (its contents named relative to it, under ``name/`` when given)."""
        self._w.add_path(os.fspath(path), name)

    def add_file(self, path: PathLike, name: Optional[str] = None) -> None:
        """Add one regular file, named ``name`` (default: its file name)."""
        if not os.path.isfile(path):
            raise InvalidInputError(f"{os.fspath(path)} is not a regular file")
        self._w.add_path(os.fspath(path), name)

    def add_dir(self, path: PathLike, name: Optional[str] = None) -> None:
        """Add a directory tree, its contents named relative to it (under
        ``name/`` when given)."""
        if not os.path.isdir(path):
            raise InvalidInputError(f"{os.fspath(path)} is not a directory")
        self._w.add_path(os.fspath(path), name)

    def add_bytes(self, *args: Any, **columns: Any) -> None:
        """``add_bytes(data)`` or ``add_bytes(name, data, **columns)``: add bytes as
        an entry (unnamed data gets its sequence number, ``00000000``, ...).
        Keyword arguments become the entry's typed user columns."""
        if len(args) == 1:
            name, data = columns.pop("name", None), args[0]
        elif len(args) == 2:
            name, data = args
        else:
            raise TypeError("add_bytes(data) or add_bytes(name, data, **columns)")
        if name is None:
            name = f"{self._w.entry_count():08d}"
        if not isinstance(data, bytes):
            data = bytes(memoryview(data))
        self._w.add_bytes(name, data, columns or None)

    def finish(self) -> Dict[str, Any]:
        """Complete the archive and move it into place; returns a summary
        (path, root_hash, entries, logical_bytes, archive_size)."""
        self.summary = self._w.finish()
        return self.summary

    close = finish

    def abort(self) -> None:
        """Discard the archive being written."""
        self._w.abort()

    @property
    def closed(self) -> bool:
        return self._w.closed

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._w.closed:
            return
        if exc_type is None:
            self.finish()
        else:
            self.abort()


def build(recipe_path: PathLike, *, threads: Optional[int] = None) -> Dict[str, Any]:
    """Build the archive a recipe describes (as ``hexz build``); returns a summary
    (path, root_hash, entries, logical_bytes, archive_size, seconds). Raises
    ``RecipeError`` for an invalid recipe."""
    return _hexz.build(os.fspath(recipe_path), threads=threads)


def read_array(
    reader: Union[Reader, EntryFile],
    offset: int = 0,
    shape: Union[int, Sequence[int], None] = None,
    dtype: Any = "uint8",
) -> Any:
    """A NumPy array of ``dtype`` and ``shape`` read from the logical stream (or an
    entry opened with ``Reader.open``) at ``offset``. The bytes are decompressed
    straight into the array's memory: no intermediate copy. Without ``shape``, the
    array runs to the end. Needs ``hexz[numpy]``."""
    from ._extras import require

    np = require("numpy", "numpy")
    dt = np.dtype(dtype)
    if isinstance(reader, EntryFile):
        base, size = reader._start, reader.size
        archive = reader._archive
    elif isinstance(reader, Reader):
        base, size = 0, reader.size
        archive = reader._archive
    else:
        raise TypeError(f"read_array needs a hexz.Reader or EntryFile, not {type(reader).__name__}")
    if shape is None:
        shape = (max(0, size - offset) // dt.itemsize,)
    arr = np.empty(shape, dtype=dt)
    if offset < 0 or offset + arr.nbytes > size:
        raise InvalidInputError(f"range {offset}+{arr.nbytes} is outside the {size} bytes read from")
    if arr.nbytes:
        address, nbytes, keep = writable_address(arr)
        archive.read_into_address(base + offset, address, nbytes)
        del keep
    return arr


class AsyncReader:
    """A reader for asyncio: ``async with hexz.AsyncReader(url) as r: await
    r.read_at(offset, length)``. Opening and every read run on a worker thread
    with the GIL released, so the event loop keeps running."""

    def __init__(self, path_or_url: PathLike, **options: Any) -> None:
        self._location = path_or_url
        self._options = options
        self._reader: Optional[Reader] = None

    async def open(self) -> "AsyncReader":
        if self._reader is None:
            loop = asyncio.get_running_loop()
            self._reader = await loop.run_in_executor(None, lambda: Reader(self._location, **self._options))
        return self

    async def __aenter__(self) -> "AsyncReader":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self.open()
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def read_at(self, offset: int, length: int) -> bytes:
        await self.open()
        assert self._reader is not None
        return await self._call(self._reader.read_at, offset, length)

    async def read(self, name: str) -> bytes:
        """The whole entry ``name``."""
        await self.open()
        assert self._reader is not None
        return await self._call(self._reader._archive.read_entry, name)

    async def namelist(self) -> List[str]:
        await self.open()
        assert self._reader is not None
        return await self._call(self._reader.namelist)

    @property
    def size(self) -> int:
        if self._reader is None:
            raise ValueError("AsyncReader is not open yet (use `async with` or `await r.open()`)")
        return self._reader.size
