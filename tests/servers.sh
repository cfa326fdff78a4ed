# Real servers for the remote tests and benchmarks, sourced by tests/run.sh and
# bench/remote.sh: nginx serving a temp folder over HTTP with Range support, and
# moto as an S3 server. Installed when missing, started on free loopback ports,
# stopped (and the folder removed) on exit.
#
#   source tests/servers.sh
#   start_test_servers [access-log|off]     # default: an access log (the tests count requests)
#
# exports HEXZ_TEST_HTTP_URL, HEXZ_TEST_HTTP_DIR, HEXZ_TEST_HTTP_LOG,
# HEXZ_TEST_S3_ENDPOINT and HEXZ_TEST_S3_LOG (moto's request log); tests without
# them (plain `cargo test`) skip.

SERVERS_DIR=$(mktemp -d)
SERVER_PIDS=()
stop_test_servers() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$SERVERS_DIR"
}
trap stop_test_servers EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}

start_test_servers() {
  local access_log=${1:-$SERVERS_DIR/nginx/access.log}
  local nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  if [ ! -x "$nginx" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
  fi
  if ! command -v moto_server >/dev/null 2>&1; then
    pip install -q "moto[server]"
  fi
  local http_port s3_port
  http_port=$(free_port)
  mkdir -p "$SERVERS_DIR/www" "$SERVERS_DIR/nginx"
  chmod 755 "$SERVERS_DIR" "$SERVERS_DIR/www"  # nginx workers run unprivileged
  cat >"$SERVERS_DIR/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $SERVERS_DIR/nginx/nginx.pid;
error_log $SERVERS_DIR/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $access_log;
  client_body_temp_path $SERVERS_DIR/nginx/body;
  proxy_temp_path $SERVERS_DIR/nginx/proxy;
  fastcgi_temp_path $SERVERS_DIR/nginx/fastcgi;
  uwsgi_temp_path $SERVERS_DIR/nginx/uwsgi;
  scgi_temp_path $SERVERS_DIR/nginx/scgi;
  server {
    listen 127.0.0.1:$http_port;
    root $SERVERS_DIR/www;
  }
}
EOF
  "$nginx" -c "$SERVERS_DIR/nginx/nginx.conf" -e "$SERVERS_DIR/nginx/error.log" &
  SERVER_PIDS+=($!)
  s3_port=$(free_port)
  moto_server -H 127.0.0.1 -p "$s3_port" >"$SERVERS_DIR/moto.log" 2>&1 &
  SERVER_PIDS+=($!)
  wait_port "$http_port"
  wait_port "$s3_port"
  export HEXZ_TEST_HTTP_URL="http://127.0.0.1:$http_port"
  export HEXZ_TEST_HTTP_DIR="$SERVERS_DIR/www"
  export HEXZ_TEST_HTTP_LOG="$access_log"
  export HEXZ_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
  export HEXZ_TEST_S3_LOG="$SERVERS_DIR/moto.log"
  echo "nginx $HEXZ_TEST_HTTP_URL, moto $HEXZ_TEST_S3_ENDPOINT"
}

# A second S3 server: s3s-fs (Rust; objects as files, ranged reads of just the bytes
# asked for, keep-alive connections, SigV4 checked against the keys below — closer
# to a real object store than moto, which reads the whole object for every ranged
# GET). Installed with cargo when missing (~2 min; 0.14.1 builds with this
# toolchain, newer needs rustc 1.96).
#
#   start_s3s_server ACCESS_KEY SECRET_KEY   # exports HEXZ_TEST_S3S_ENDPOINT
start_s3s_server() {
  if ! command -v s3s-fs >/dev/null 2>&1; then
    cargo install s3s-fs@0.14.1 --locked --features binary
  fi
  local port
  port=$(free_port)
  mkdir -p "$SERVERS_DIR/s3s"
  s3s-fs --host 127.0.0.1 --port "$port" --access-key "$1" --secret-key "$2" "$SERVERS_DIR/s3s" \
    >"$SERVERS_DIR/s3s.log" 2>&1 &
  SERVER_PIDS+=($!)
  wait_port "$port"
  export HEXZ_TEST_S3S_ENDPOINT="http://127.0.0.1:$port"
  echo "s3s-fs $HEXZ_TEST_S3S_ENDPOINT"
}
