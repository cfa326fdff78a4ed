"""Exporting a writable buffer's address to the extension (see python/src/raw_buffer.rs).

abi3 wheels for Python < 3.11 cannot take the buffer protocol from Rust, so the buffer
is exported here: a ``ctypes`` array created over the ``memoryview`` holds the export
(the object cannot be resized or freed) for as long as the returned ``keep`` lives.
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Tuple


def writable_address(buffer: Any) -> Tuple[int, int, Optional[object]]:
    """``(address, nbytes, keep)`` of a writable, C-contiguous buffer; keep ``keep``
    referenced until the extension call that writes into it has returned."""
    view = memoryview(buffer)
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
    """``(address, nbytes, keep)`` of a C-contiguous buffer to read from, without a
    copy when it is writable (bytearray, NumPy array, writable memoryview). A
    read-only buffer other than ``bytes`` (which the extension takes directly) is
    copied once: ctypes cannot pin a read-only export."""
    view = memoryview(buffer)
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
