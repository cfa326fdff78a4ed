#!/usr/bin/env bash
# hexz.Volume from Python (bench/python/volume.py) next to the Rust volume bench
# (tests/examples/volume_bench.rs) in one run: both release builds, one moto server.
# Usage: bench/python/volume.sh   (VOLUME_MIB, RANDOM_WRITES tune the sizes)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=$(realpath -m "${HEXZ_BENCH_VENV:-target/pyvenv-volume}")
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.16,<2"
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release --locked)
cargo build -q --release -p hexz-tests --example volume_bench
if ! command -v moto_server >/dev/null 2>&1; then pip install -q "moto[server]"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
OUT=$(mktemp)
trap 'kill $MOTO 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
export HEXZ_TEST_S3_ENDPOINT="http://127.0.0.1:$PORT"
target/release/examples/volume_bench | tee "$OUT"
echo
"$VENV/bin/python" bench/python/volume.py --rust-table "$OUT"
