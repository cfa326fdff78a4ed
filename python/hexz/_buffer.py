"""Exporting a buffer's address to the extension (see python/src/raw_buffer.rs).

abi3 wheels for Python < 3.11 cannot take the buffer protocol from Rust, so the buffer
is exported here: a ``ctypes`` array created over the ``memoryview`` holds the export
(the object cannot be resized or freed) for as long as the returned ``keep`` lives.

Only buffers of plain bytes and numbers are taken (:func:`plain_view`): the extension
reads and writes raw bytes, and the bytes of an array of Python objects are pointers
(written into, they crash the interpreter; read from, they store addresses).
"""

from __future__ import annotations

import ctypes
import re
from typing import Any, Optional, Tuple

from ._hexz import InvalidInputError

# The buffer-protocol formats (``struct`` syntax, PEP 3118) of plain bytes and
# numbers: an optional byte-order prefix, then one integer, float or bool code,
# or a complex ``Z`` + float code (NumPy's complex64/complex128/clongdouble).
# Everything else is refused: ``O`` (object pointers), ``P`` (void pointers),
# structures ``T{...}``, strings, padding, counts.
_PLAIN_FORMAT = re.compile(r"[@=<>!]?(?:[bBchHiIlLqQnNef?dg]|Z[efdg])")


class BufferFormatError(InvalidInputError, ValueError):
    """A buffer whose items are not plain bytes or numbers (an array of Python
    objects, a structure, pointers...). Also a ``ValueError``."""


def plain_view(buffer: Any) -> memoryview:
    """A ``memoryview`` of ``buffer``, whose items must be plain bytes or
    numbers; raises :class:`BufferFormatError` otherwise."""
    try:
        view = memoryview(buffer)
    except ValueError as e:  # NumPy: "cannot include dtype 'M' in a buffer", ...
        raise BufferFormatError(f"cannot use this {type(buffer).__name__} as a buffer: {e}") from e
    if _PLAIN_FORMAT.fullmatch(view.format) is None:
        hint = " (an array of Python objects)" if "O" in view.format else ""
        raise BufferFormatError(
            f"a buffer of plain bytes or numbers is needed, not one of format "
            f"{view.format[:40]!r}{hint} from a {type(buffer).__name__}; for an array of "
            "records or structures, pass a view of its bytes (numpy: arr.view(numpy.uint8))"
        )
    return view


def writable_address(buffer: Any) -> Tuple[int, int, Optional[object]]:
    """``(address, nbytes, keep)`` of a writable, C-contiguous buffer of plain bytes or
    numbers; keep ``keep`` referenced until the extension call that writes into it has
    returned."""
    view = plain_view(buffer)
    if view.readonly:
        raise TypeError(f"a writable buffer is needed, not a read-only {type(buffer).__name__}")
    if not view.c_contiguous:
        raise ValueError("the buffer must be C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    nbytes = view.nbytes
    if nbytes == 0:
        return 0, 0, None
    holder = (ctypes.c_char * nbytes).from_buffer(view)
    return ctypes.addressof(holder), nbytes, (holder, view)


def readable_address(buffer: Any) -> Tuple[int, int, Optional[object]]:
    """``(address, nbytes, keep)`` of a C-contiguous buffer of plain bytes or numbers to
    read from, without a copy when it is writable (bytearray, NumPy array, writable
    memoryview). A read-only buffer other than ``bytes`` (which the extension takes
    directly) is copied once: ctypes cannot pin a read-only export."""
    view = plain_view(buffer)
    if not view.c_contiguous:
        raise ValueError("the buffer must be C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    nbytes = view.nbytes
    if nbytes == 0:
        return 0, 0, None
    if view.readonly:
        holder = (ctypes.c_char * nbytes).from_buffer_copy(view)
        return ctypes.addressof(holder), nbytes, (holder,)
    holder = (ctypes.c_char * nbytes).from_buffer(view)
    return ctypes.addressof(holder), nbytes, (holder, view)


def plain_bytes(buffer: Any) -> bytes:
    """``buffer``'s bytes (a copy), which must be plain bytes or numbers."""
    if isinstance(buffer, bytes):
        return buffer
    return plain_view(buffer).tobytes()
