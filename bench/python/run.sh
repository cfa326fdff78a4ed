#!/usr/bin/env bash
# Run bench/python/dataloader.py end to end: images (fetch-images.sh), a virtualenv
# with the release build of hexz, torch, mosaicml-streaming, webdataset and boto3
# (target/pyvenv-bench), and two loopback S3 servers (tests/servers.sh): moto, whose
# request log counts each system's requests, and s3s-fs. Extra arguments go to
# dataloader.py (e.g. --epochs 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
bench/python/fetch-images.sh
VENV=$(realpath -m "${HEXZ_BENCH_VENV:-target/pyvenv-bench}")
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.16,<2" torch mosaicml-streaming webdataset boto3 "moto[server]"
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release --locked)
export PATH="$VENV/bin:$PATH"  # the venv's moto_server
source tests/servers.sh
start_test_servers off
start_s3s_server test test
"$VENV/bin/python" bench/python/dataloader.py bench/work/images \
  "moto=$HEXZ_TEST_S3_ENDPOINT" "s3s-fs=$HEXZ_TEST_S3S_ENDPOINT" --s3-log "moto=$HEXZ_TEST_S3_LOG" "$@"
