#!/usr/bin/env bash
# Run bench/python/dataloader.py end to end: images (fetch-images.sh), a virtualenv
# with the release build of hexz, torch, mosaicml-streaming, webdataset and boto3
# (target/pyvenv-bench), and a moto S3 server on a loopback port for the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench/python/fetch-images.sh
VENV=$(realpath -m "${HEXZ_BENCH_VENV:-target/pyvenv-bench}")
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.16,<2" torch mosaicml-streaming webdataset boto3 "moto[server]"
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release --locked)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO' EXIT
sleep 2
"$VENV/bin/python" bench/python/dataloader.py bench/work/images "http://127.0.0.1:$PORT" "$@"
