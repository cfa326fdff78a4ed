#!/usr/bin/env bash
# hexz.Volume from Python (bench/python/volume.py) next to the Rust volume bench
# (tests/examples/volume_bench.rs) in one run: both release builds, one moto server
# (tests/servers.sh).
# Usage: bench/python/volume.sh   (VOLUME_MIB, RANDOM_WRITES tune the sizes)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=$(realpath -m "${HEXZ_BENCH_VENV:-target/pyvenv-volume}")
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.16,<2"
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release --locked)
cargo build -q --release -p hexz-tests --example volume_bench
source tests/servers.sh
start_test_servers off
OUT=$(mktemp)
trap 'stop_test_servers; rm -f "$OUT"' EXIT
target/release/examples/volume_bench | tee "$OUT"
echo
"$VENV/bin/python" bench/python/volume.py --rust-table "$OUT"
