//! Integration tests of the archive format: round trips, determinism, malformed
//! input, golden v1 archives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chunkdelta;
mod columns;
mod common;
mod crypto;
mod golden;
mod kdf_limits;
mod lies;
mod malformed;
mod ranges;
mod roundtrip;
mod snapshot;
mod thin;
