#!/usr/bin/env bash
# Writable-volume benchmark (tests/examples/volume_bench.rs): sequential and random
# write throughput and flush latency of a Volume on the local fs and on moto (S3),
# as ratios against a plain local file written the same way in the same run.
# Then the first flush after growing a volume by GROW_GIB GiB of zeros (default 64).
# Usage: bench/volume.sh   (VOLUME_MIBS="64 256", RANDOM_WRITES=2000, GROW_GIB=64 tune the sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v moto_server >/dev/null 2>&1; then pip install -q "moto[server]"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
HEXZ_TEST_S3_ENDPOINT="http://127.0.0.1:$PORT" \
  cargo run -q --release -p hexz-tests --example volume_bench
