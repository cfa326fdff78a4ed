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
from ._buffer import BufferFormatError, plain_bytes, readable_address, writable_address
from ._hexz import (
    BadKeyError,
    ConflictError,
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
    "BufferFormatError",
    "ConflictError",
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
    "Volume",
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
    "parents",
    "allow_parent_urls",
    "kdf_max_memory",
    "kdf_max_iterations",
    "kdf_max_slots",
) + tuple("s3_" + k for k in _S3_KEYS)


def _take_s3(options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Remove ``s3=`` and the ``s3_*`` keys from ``options``; the S3 settings dict
    they make (None when there are none)."""
    s3 = dict(options.pop("s3", None) or {})
    for k in _S3_KEYS:
        v = options.pop("s3_" + k, None)
        if v is not None:
            s3[k] = v
    return s3 or None


def _open_archive(
    location: PathLike, options: Dict[str, Any], metadata: Optional[bytes] = None
) -> "_hexz.Archive":
    """Map the keyword options users pass to ``hexz.open`` onto the extension.
    ``metadata``: a snapshot from ``Archive.metadata_snapshot`` on another handle
    on the same archive (see ``hexz.Dataset``)."""
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
        metadata=metadata,
        parents=_locations(options.get("parents"), "parents"),
        allow_parent_urls=_locations(options.get("allow_parent_urls"), "allow_parent_urls"),
        kdf_max_memory=options.get("kdf_max_memory"),
        kdf_max_iterations=options.get("kdf_max_iterations"),
        kdf_max_slots=options.get("kdf_max_slots"),
    )


def _locations(value: Any, name: str) -> Optional[List[str]]:
    """A list of paths or URLs (one alone is taken as a list of one)."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    try:
        return [os.fspath(v) for v in value]
    except TypeError:
        raise TypeError(f"{name} must be a path, a URL or a list of them, not {value!r}") from None


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
    Thin archives: ``parents`` (parent archives to use, paths or URLs, matched by
    root hash wherever the child's hints point) and ``allow_parent_urls`` (URL or
    path prefixes a parent hint may lead to besides the child's own store and
    folder; docs/SECURITY.md, "Parent hints"). Key slots: ``kdf_max_memory``
    (bytes, default 256 MiB), ``kdf_max_iterations`` (default 8) and
    ``kdf_max_slots`` (passphrase slots tried, default 4) raise the limits on the
    Argon2id work an archive may ask for (raise them only for archives you trust).
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

    The recipe stages ``parent:``, ``encrypt:`` and ``sign:`` (docs/RECIPES.md), with
    the same keys:

    - ``parent``: a path, a URL (``s3://``, ``https://``, ``file://``) or an open
      :class:`Reader`: write a *thin child* that stores only the chunks the
      parent's chain lacks (it records each ancestor by root hash plus a location
      hint; readers open them when needed). Keep the parent's chunk sizes to
      share chunks. ``s3=``/``s3_*`` settings (as for :func:`open`) reach S3
      parents.
    - ``encrypt``: ``{"passphrase": str|bytes (or a list), "passphrase_file": path,
      "passphrase_env": "VAR", "key_file": path, "key": 32 bytes or 64 hex digits,
      "recipients": [X25519 public key line, .pub path or 32 bytes, ...],
      "kdf": {"memory": "64MiB", "iterations": 3, "lanes": 1}}``: one key slot
      per key given; any one opens the archive (``hexz.open(..., passphrase=,
      key=)``). A thin child of an encrypted parent must be encrypted with the
      parent's keys (the chain shares its dedup key); a plain child of an
      encrypted parent, or the reverse, raises ``InvalidInputError``.
    - ``sign``: ``{"key": path of an Ed25519 secret key (hexz keygen),
      "passphrase"/"passphrase_file"/"passphrase_env": for a protected key,
      "detached": False}`` (or just the key's path): sign the manifest, embedded,
      or with ``detached`` written to ``<path>.sig`` next to the archive (which
      ``hexz.open(..., trusted_public_keys=[...])`` finds).

    What is at ``path`` (and ``<path>.sig``) is replaced only if it is a hexz archive
    (a hexz signature), or with ``force=True`` any file but a read-only one; otherwise
    ``InvalidInputError`` is raised before anything is written. :meth:`add` refuses a
    folder that holds ``path``.
    """

    def __init__(
        self,
        path: PathLike,
        compression: str = "zstd",
        level: Optional[int] = None,
        *,
        columns: Optional[Sequence[Tuple[str, str]]] = None,
        parent: Union[PathLike, "Reader", None] = None,
        **options: Any,
    ) -> None:
        self.path = os.fspath(path)
        s3 = _take_s3(options)
        if isinstance(parent, Reader):
            parent_arg: Any = parent._archive
        elif isinstance(parent, (str, os.PathLike)):
            parent_arg = os.fspath(parent)
        else:
            parent_arg = parent  # None, or refused by the extension
        self._w = _hexz.Writer(
            self.path,
            compression,
            level,
            columns=list(columns) if columns is not None else None,
            parent=parent_arg,
            s3=s3,
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
        self._w.add_bytes(name, plain_bytes(data), columns or None)

    def finish(self) -> Dict[str, Any]:
        """Complete the archive and move it into place (and its detached signature
        next to it); returns a summary (path, root_hash, entries, logical_bytes,
        archive_size, stored_chunk_bytes, thin, encrypted, signed_by,
        signature_file)."""
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


def build(recipe_path: PathLike, *, threads: Optional[int] = None, force: bool = False) -> Dict[str, Any]:
    """Build the archive a recipe describes (as ``hexz build``); returns a summary
    (path, root_hash, entries, logical_bytes, archive_size, seconds). Raises
    ``RecipeError`` for an invalid recipe, ``InvalidInputError`` for an output that
    is the recipe, an input or inside an input folder, a read-only file, or (unless
    ``force``) a file that is not a hexz archive."""
    return _hexz.build(os.fspath(recipe_path), threads=threads, force=force)


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
    if dt.hasobject:
        # Its bytes would be pointers: filled from the archive, they crash the interpreter.
        raise BufferFormatError(f"read_array needs a dtype of plain bytes or numbers, not {dt}")
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
        # NumPy vouches for the dtype (no objects, checked above): its bytes, whatever
        # the dtype (records, datetimes) exports as.
        address, nbytes, keep = writable_address(arr.reshape(-1).view(np.uint8))
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


_VOLUME_OPTIONS = ("compression", "level", "dirty_limit", "wal")


class Volume:
    """A writable volume: a byte range on a local folder or any store hexz reads
    (``s3://bucket/prefix``, ``file:///abs``, ``memory://name``), written at any
    offset and length, every :meth:`flush` an immutable version (a thin snapshot
    whose parent is the previous one; see ``hexz volume`` in the README).

    ``hexz.Volume(url)`` opens the latest version for reading and writing;
    ``hexz.Volume(url, create=True, size=N)`` (or :meth:`Volume.create`) makes a
    new one of ``N`` zero bytes; ``hexz.Volume(url, version=K)`` (or :meth:`at`)
    opens version ``K`` read-only (time travel).

    Options: ``wal=path`` (a local write-ahead log: every write is synced there
    before :meth:`write_at` returns and replayed when the volume is opened again
    with the same log, so acknowledged writes survive a crash), ``dirty_limit``
    (unflushed bytes kept in memory before an automatic flush, default 64 MiB),
    ``compression``/``level`` (of new snapshots), and the storage options of
    :func:`open` (``s3={...}`` or ``s3_endpoint=``, ``s3_region=``, ...).

    Reads see unflushed writes. :meth:`flush` commits them atomically and returns
    the new version's id (its root hash). If another writer committed first, it
    raises :class:`ConflictError` (``.expected``, ``.found``): nothing is
    committed and the writes stay in this object — in memory only, lost when the
    process exits, unless the volume was opened with ``wal=`` (the log keeps them).
    A volume holds at most 4 TiB (a larger write, truncate or size raises
    :class:`InvalidInputError`).

    As a context manager, and on :meth:`close`, the volume behaves like a file:
    leaving the block flushes, **also when an exception is propagating** (writes
    that were acknowledged are committed, never silently dropped; every earlier
    version stays readable by time travel). Call :meth:`discard` first to throw
    unflushed changes away instead. If that flush fails, its error is added to the
    propagating exception as a note and the volume stays open.
    """

    def __init__(
        self,
        url: PathLike,
        *,
        create: bool = False,
        size: Optional[int] = None,
        version: Optional[int] = None,
        **options: Any,
    ) -> None:
        self.url = os.fspath(url)
        self._storage = {k: v for k, v in options.items() if k == "s3" or k.startswith("s3_")}
        s3 = _take_s3(options)
        unknown = sorted(set(options) - set(_VOLUME_OPTIONS))
        if unknown:
            known = _VOLUME_OPTIONS + ("s3",) + tuple("s3_" + k for k in _S3_KEYS)
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        wal = options.get("wal")
        settings = dict(
            compression=options.get("compression", "zstd"),
            level=options.get("level"),
            dirty_limit=options.get("dirty_limit"),
            wal=os.fspath(wal) if wal is not None else None,
            s3=s3,
        )
        if create:
            if size is None:
                raise TypeError("Volume(create=True) needs size= (bytes)")
            if version is not None:
                raise TypeError("a new volume has only version 1; do not pass version= with create=True")
            self._v = _hexz.Volume.create(self.url, size, **settings)
        else:
            if size is not None:
                raise TypeError("size= is for create=True; resize an existing volume with truncate()")
            self._v = _hexz.Volume.open(self.url, version=version, **settings)

    @classmethod
    def create(cls, url: PathLike, size: int, **options: Any) -> "Volume":
        """Create a volume of ``size`` zero bytes (version 1) at ``url`` and open
        it; ``InvalidInputError`` if there is one already."""
        return cls(url, create=True, size=size, **options)

    @classmethod
    def open(cls, url: PathLike, version: Optional[int] = None, **options: Any) -> "Volume":
        """Open the latest version (writable), or ``version`` read-only."""
        return cls(url, version=version, **options)

    def at(self, version: int) -> "Volume":
        """Version ``version`` of this volume, read-only (time travel), opened with
        the same storage options."""
        return Volume(self.url, version=version, **self._storage)

    # -- data ----------------------------------------------------------------
    def read_at(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; the range must lie within :attr:`size`."""
        return self._v.read_at(offset, length)

    def readinto_at(self, offset: int, buffer: Any) -> int:
        """Fill a writable buffer (bytearray, memoryview, NumPy array) from
        ``offset`` without an intermediate copy; returns its length."""
        address, nbytes, keep = writable_address(buffer)
        if nbytes:
            self._v.read_into_address(offset, address, nbytes)
        del keep
        return nbytes

    def write_at(self, offset: int, data: Any) -> int:
        """Write ``data`` (bytes or any buffer: bytearray, memoryview, NumPy array)
        at ``offset``; past the end the volume grows, with zeros in any gap.
        Returns the byte count. The buffer is read in place (bytes and writable
        buffers are not copied). Acknowledged when this returns (synced to the
        write-ahead log first, if there is one). When the unflushed bytes pass
        ``dirty_limit``, the write flushes before returning (and can raise
        :class:`ConflictError` like :meth:`flush`; the write is kept then)."""
        if isinstance(data, bytes):
            self._v.write_at(offset, data)
            return len(data)
        address, nbytes, keep = readable_address(data)
        if nbytes:
            self._v.write_from_address(offset, address, nbytes)
        del keep
        return nbytes

    def truncate(self, size: int) -> None:
        """Set the length: shrink (the bytes past ``size`` are dropped) or grow
        with zeros (sparse: they cost nothing)."""
        self._v.truncate(size)

    def flush(self) -> str:
        """Commit the unflushed changes as a new version; returns its id (root
        hash, hex), the current one when nothing changed. Raises
        :class:`ConflictError` when another writer committed first."""
        return self._v.flush()

    def discard(self) -> None:
        """Throw the unflushed changes away (and empty the write-ahead log): the
        volume reads as its current version again."""
        self._v.discard()

    def close(self) -> None:
        """Flush (see the class docs) and release the volume. Idempotent."""
        if self._v.closed:
            return
        if not self._v.read_only():
            self._v.flush()
        self._v.close()

    @property
    def closed(self) -> bool:
        return self._v.closed

    # -- state ---------------------------------------------------------------
    @property
    def size(self) -> int:
        """Length in bytes (unflushed writes and truncates included)."""
        return self._v.size()

    def __len__(self) -> int:
        return self._v.size()

    @property
    def version(self) -> int:
        """The version opened, or the one unflushed changes apply to."""
        return self._v.version()

    @property
    def id(self) -> str:
        """That version's id: the root hash (hex) of its snapshot."""
        return self._v.root()

    @property
    def read_only(self) -> bool:
        """True for an older version opened by number."""
        return self._v.read_only()

    @property
    def dirty(self) -> bool:
        """Whether there are unflushed changes."""
        return self._v.dirty()

    @property
    def dirty_bytes(self) -> int:
        """Unflushed bytes held in memory (whole 64 KiB blocks)."""
        return self._v.dirty_bytes()

    def log(self) -> List[Dict[str, Any]]:
        """Every version, newest first: version, id, status (``ok``, ``missing``,
        ``mismatch``), size, snapshot_bytes, own_chunk_bytes (what the version
        stored itself), date."""
        return _hexz.volume_log(self.url, s3=_take_s3(dict(self._storage)))

    @staticmethod
    def gc(url: PathLike, grace_seconds: float = 900.0, **storage: Any) -> Dict[str, Any]:
        """Remove the snapshots no version reachable from the head needs (left by a
        crash before a commit, or by a writer that lost a conflict), once older
        than ``grace_seconds``; safe while readers have versions open. Returns
        kept, removed (names), removed_bytes, young."""
        s3 = _take_s3(storage)
        if storage:
            raise TypeError(f"unknown option(s) {', '.join(sorted(storage))}")
        return _hexz.volume_gc(os.fspath(url), grace_seconds=grace_seconds, s3=s3)

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> "Volume":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._v.closed:
            return
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except HexzError as flush_error:
            if hasattr(exc, "add_note"):
                exc.add_note(f"hexz.Volume: flushing on exit failed too: {flush_error}")

    def __del__(self) -> None:
        v = getattr(self, "_v", None)
        try:
            if v is not None and not v.closed and v.dirty():
                import warnings

                warnings.warn(
                    f"hexz.Volume {self.url!r} was dropped with unflushed writes, which are lost "
                    "(unless a write-ahead log keeps them); call flush() or close(), or use `with`",
                    ResourceWarning,
                    stacklevel=2,
                )
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._v.closed:
            return f"hexz.Volume({self.url!r}, closed)"
        ro = ", read-only" if self._v.read_only() else ""
        return f"hexz.Volume({self.url!r}, version={self._v.version()}, size={self._v.size()}{ro})"
