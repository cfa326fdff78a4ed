//! A caller's buffer by address: `readinto` and `read_array` write into it,
//! `Volume.write_at` reads from it, without an intermediate copy.
//!
//! abi3 wheels for Python 3.9 and 3.10 cannot use the buffer protocol (it joined
//! the limited API in 3.11), so the Python side exports the buffer itself — a
//! writable, C-contiguous `memoryview` pinned by a `ctypes` array for the whole
//! call — and passes its address and length here. These are the crate's only
//! `unsafe` blocks (the workspace forbids unsafe code elsewhere).

use crate::errors::{Error, Result};

fn check(address: usize, len: usize) -> Result<()> {
    if address == 0 || address.checked_add(len).is_none() || len > isize::MAX as usize {
        return Err(Error::Invalid(format!(
            "buffer address {address:#x} with length {len} is not a valid buffer"
        )));
    }
    Ok(())
}

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
    check(address, len)?;
    #[allow(unsafe_code)]
    // SAFETY: see the function docs: a live, exported, writable buffer of `len`
    // bytes at `address`, not aliased by any Rust reference.
    let buf = unsafe { std::slice::from_raw_parts_mut(address as *mut u8, len) };
    fill(buf)
}

/// Call `read` with the `len` bytes at `address`.
///
/// The Python caller (`hexz._buffer.pinned_address`) guarantees that
/// `address..address + len` is one initialised allocation that stays exported
/// (so it cannot be freed or resized) until this returns. Another Python thread
/// could still write into it meanwhile (like any buffer passed to a `write`
/// call); `read` then sees some mix of old and new bytes, never freed memory.
pub fn read_at<T>(address: usize, len: usize, read: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
    if len == 0 {
        return read(&[]);
    }
    check(address, len)?;
    #[allow(unsafe_code)]
    // SAFETY: see the function docs: a live, exported, initialised buffer of
    // `len` bytes at `address`.
    let buf = unsafe { std::slice::from_raw_parts(address as *const u8, len) };
    read(buf)
}
