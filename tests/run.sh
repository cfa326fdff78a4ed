#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's unit, integration, golden
# and end-to-end tests, and the doc examples. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Real servers for the remote tests (tests/tests/remote.rs and others): nginx with
# Range support, moto as S3, and s3s-fs as a second S3 server (it checks SigV4 and
# keeps connections alive, as real S3 does; the S3 tests run again against it
# below), on free loopback ports (tests/servers.sh).
step "test servers (nginx, moto, s3s-fs)"
source tests/servers.sh
start_test_servers
start_s3s_server testing testing

step "cargo nextest run (unit, integration, golden, end-to-end)"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --doc --locked

# The Python package (python/): a virtualenv with maturin, pytest and the optional
# packages the tests use (numpy, pyarrow, polars, torch — torch is ~2.8 GB, about a
# minute from pip's cache), the extension built into it with `maturin develop`, then
# pytest (reads from the same moto server through HEXZ_TEST_S3_ENDPOINT).
step "python: build the extension (maturin) and run pytest"
PY_VENV=$(realpath -m "${HEXZ_PY_VENV:-target/pyvenv}")
if [ ! -x "$PY_VENV/bin/python" ]; then
  python3 -m venv "$PY_VENV"
fi
"$PY_VENV/bin/python" -m pip install -q --disable-pip-version-check \
  "maturin>=1.16,<2" pytest numpy pyarrow polars torch
(cd python && VIRTUAL_ENV="$PY_VENV" PATH="$PY_VENV/bin:$PATH" maturin develop --locked)
(cd python && "$PY_VENV/bin/python" -m pytest -q tests)

# The S3 tests again, against s3s-fs: the Rust remote and volume tests (hexz-tests)
# and the Python tests that read and write S3.
step "S3 tests against s3s-fs"
HEXZ_TEST_S3_ENDPOINT=$HEXZ_TEST_S3S_ENDPOINT cargo nextest run -p hexz-tests --locked --no-fail-fast
(cd python && HEXZ_TEST_S3_ENDPOINT=$HEXZ_TEST_S3S_ENDPOINT "$PY_VENV/bin/python" -m pytest -q \
  tests/test_s3.py tests/test_volume.py tests/test_writer_chains.py)
