#!/usr/bin/env bash
# bench/python/dataloader.py against a second S3-compatible server: s3s-fs (Rust,
# files on disk, ranged reads of just the bytes asked for, keep-alive connections,
# SigV4 checked), beside moto's run in run.sh. Installs s3s-fs with cargo when
# missing (~2 min; 0.14.1 builds with this toolchain), runs it on a free loopback
# port over a temporary folder, and uses run.sh's virtualenv (run that first).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=$(realpath -m "${HEXZ_BENCH_VENV:-target/pyvenv-bench}")
[ -x "$VENV/bin/python" ] || { echo "run bench/python/run.sh first (it builds $VENV)" >&2; exit 2; }
command -v s3s-fs >/dev/null 2>&1 || cargo install s3s-fs@0.14.1 --locked --features binary
ROOT=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
s3s-fs --host 127.0.0.1 --port "$PORT" --access-key test --secret-key test "$ROOT" >"$ROOT.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$ROOT" "$ROOT.log"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$VENV/bin/python" bench/python/dataloader.py bench/work/images "http://127.0.0.1:$PORT" "$@"
