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

# Real servers for the remote tests (tests/tests/remote.rs): nginx serving a temp
# folder over HTTP with Range support, and moto as an S3 server. Installed when
# missing, started on free loopback ports, stopped on exit. The tests read the URLs
# from HEXZ_TEST_HTTP_URL / HEXZ_TEST_HTTP_DIR / HEXZ_TEST_HTTP_LOG and
# HEXZ_TEST_S3_ENDPOINT; without them (plain `cargo test`) they skip.
step "test servers (nginx, moto)"
SERVERS_DIR=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$SERVERS_DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
if ! command -v moto_server >/dev/null 2>&1; then
  pip install -q "moto[server]"
fi
HTTP_PORT=$(free_port)
mkdir -p "$SERVERS_DIR/www" "$SERVERS_DIR/nginx"
chmod 755 "$SERVERS_DIR" "$SERVERS_DIR/www"  # nginx workers run unprivileged
cat >"$SERVERS_DIR/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $SERVERS_DIR/nginx/nginx.pid;
error_log $SERVERS_DIR/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $SERVERS_DIR/nginx/access.log;
  client_body_temp_path $SERVERS_DIR/nginx/body;
  proxy_temp_path $SERVERS_DIR/nginx/proxy;
  fastcgi_temp_path $SERVERS_DIR/nginx/fastcgi;
  uwsgi_temp_path $SERVERS_DIR/nginx/uwsgi;
  scgi_temp_path $SERVERS_DIR/nginx/scgi;
  server {
    listen 127.0.0.1:$HTTP_PORT;
    root $SERVERS_DIR/www;
  }
}
EOF
"$NGINX" -c "$SERVERS_DIR/nginx/nginx.conf" -e "$SERVERS_DIR/nginx/error.log" &
SERVER_PIDS+=($!)
S3_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$S3_PORT" >"$SERVERS_DIR/moto.log" 2>&1 &
SERVER_PIDS+=($!)
wait_port "$HTTP_PORT"
wait_port "$S3_PORT"
export HEXZ_TEST_HTTP_URL="http://127.0.0.1:$HTTP_PORT"
export HEXZ_TEST_HTTP_DIR="$SERVERS_DIR/www"
export HEXZ_TEST_HTTP_LOG="$SERVERS_DIR/nginx/access.log"
export HEXZ_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
echo "nginx $HEXZ_TEST_HTTP_URL, moto $HEXZ_TEST_S3_ENDPOINT"

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
