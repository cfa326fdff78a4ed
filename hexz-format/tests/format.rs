//! Integration tests of the archive format: round trips, determinism, malformed
//! input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod malformed;
mod roundtrip;
