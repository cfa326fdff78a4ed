//! End-to-end tests of the `hexz` command-line tool.
//!
//! One test harness; the themes live in `tests/cli/*.rs`:
//!
//! * `support`     — locating the binary, generating trees, walking/comparing trees,
//!   the shared fixture (one generated tree of 2,000+ entries, built once);
//! * `roundtrip`   — build → ls / ls -l / ls --json / info --json / verify / cat /
//!   extract;
//! * `determinism` — byte-identical rebuilds, whatever the thread count;
//! * `owners`      — owners in `ls`, restored by `extract` as root,
//!   `--no-same-owner`; include/exclude/symlink options through the CLI;
//! * `atomicity`   — a failed or killed build leaves nothing at the output (and no
//!   `.tmp`);
//! * `progress`    — `--quiet` and non-terminal stderr;
//! * `safety`      — hostile archives cannot write outside the extraction folder;
//! * `clobber`     — no verb replaces a file it did not write: outputs inside
//!   inputs, the recipe, other files, read-only files, links;
//! * `recipes`     — recipe and usage errors, `--dry-run`;
//! * `corrupt`     — damaged archives give exit code 3;
//! * `parent_hints` — a thin archive's parent hints: FIFOs, other hosts, no
//!   echo, `--parent` and `--allow-parent-url`;
//! * `hostile`     — archives that lie about their size: refused as corrupt, in
//!   bounded memory (peak RSS measured with the `peak-rss` helper);
//! * `thin`        — thin snapshots: `--parent`, chains of ten, `log`, `diff`,
//!   `squash`, missing and substituted parents.
//! * `crypto`      — keygen, encrypted and signed builds, keys and trust on read
//!   verbs, `verify` exit codes, `sign`, `keys`.
//!
//! The binary: `hexz` belongs to the `hexz-cli` package, and Cargo only exposes
//! `CARGO_BIN_EXE_*` to tests of the same package, so `support::hexz_bin` runs
//! `cargo build -p hexz-cli --bin hexz` once per run (same profile and target
//! folder as this test binary) and uses `<target>/<profile>/hexz`; set
//! `HEXZ_BIN=/path/to/hexz` to test another build instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "cli/support.rs"]
mod support;

#[path = "cli/atomicity.rs"]
mod atomicity;
#[path = "cli/clobber.rs"]
mod clobber;
#[path = "cli/corrupt.rs"]
mod corrupt;
#[path = "cli/crypto.rs"]
mod crypto;
#[path = "cli/determinism.rs"]
mod determinism;
#[path = "cli/hostile.rs"]
mod hostile;
#[path = "cli/owners.rs"]
mod owners;
#[path = "cli/parent_hints.rs"]
mod parent_hints;
#[path = "cli/progress.rs"]
mod progress;
#[path = "cli/recipes.rs"]
mod recipes;
#[path = "cli/roundtrip.rs"]
mod roundtrip;
#[path = "cli/safety.rs"]
mod safety;
#[path = "cli/thin.rs"]
mod thin;
