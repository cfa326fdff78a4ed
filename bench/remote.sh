#!/usr/bin/env bash
# Remote read benchmark (docs/BENCHMARKS.md, "Remote reads"): starts nginx and moto
# on loopback (as tests/run.sh does), then runs tests/examples/remote_bench.rs in
# release mode. BENCH_MB (default 64) and BENCH_READS (default 300) size it.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
S3_PORT=$(free_port)
mkdir -p "$DIR/www" "$DIR/nginx"
chmod 755 "$DIR" "$DIR/www"
cat >"$DIR/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx/body;
  proxy_temp_path $DIR/nginx/proxy;
  fastcgi_temp_path $DIR/nginx/fastcgi;
  uwsgi_temp_path $DIR/nginx/uwsgi;
  scgi_temp_path $DIR/nginx/scgi;
  server { listen 127.0.0.1:$HTTP_PORT; root $DIR/www; }
}
CONF
"$(command -v nginx || echo /usr/sbin/nginx)" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" &
PIDS+=($!)
moto_server -H 127.0.0.1 -p "$S3_PORT" >"$DIR/moto.log" 2>&1 &
PIDS+=($!)
for port in "$HTTP_PORT" "$S3_PORT"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
export HEXZ_TEST_HTTP_URL="http://127.0.0.1:$HTTP_PORT" HEXZ_TEST_HTTP_DIR="$DIR/www"
export HEXZ_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
cargo run --release -q -p hexz-tests --example remote_bench
