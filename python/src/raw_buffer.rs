//! Writing into a caller's buffer by address: `readinto` and `read_array`
//! without an intermediate copy.
//!
//! abi3 wheels for Python 3.9 and 3.10 cannot use the buffer protocol (it joined
//! the limited API in 3.11), so the Python side exports the buffer itself — a
//! writable, C-contiguous `memoryview` pinned by a `ctypes` array for the whole
//! call — and passes its address and length here. This is the crate's one
//! `unsafe` block (the workspace forbids unsafe code elsewhere).

use crate::errors::{Error, Result};

/// Fill the `len` bytes at `address` with `fill`.
///
/// The Python caller (`hexz._buffer.writable_address`) guarantees that
/// `address..address + len` is one writable allocation that stays exported (so it
/// cannot be freed or resized) until this returns; nothing else in this process
/// holds a Rust reference into it. The bytes may be uninitialised as far as Rust
/// is concerned only if the caller created them so — Python buffers are always
/// initialised memory.
pub fn fill_at<T>(
    address: usize,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<T>,
) -> Result<T> {
    if len == 0 {
        return fill(&mut []);
    }
    if address == 0 || address.checked_add(len).is_none() || len > isize::MAX as usize {
        return Err(Error::Invalid(format!(
            "buffer address {address:#x} with length {len} is not a valid buffer"
        )));
    }
    #[allow(unsafe_code)]
    // SAFETY: see the function docs: a live, exported, writable buffer of `len`
    // bytes at `address`, not aliased by any Rust reference.
    let buf = unsafe { std::slice::from_raw_parts_mut(address as *mut u8, len) };
    fill(buf)
}
