#!/usr/bin/env bash
# Remote read benchmark (docs/BENCHMARKS.md, "Remote reads"): starts nginx and moto
# on loopback (as tests/run.sh does), then runs tests/examples/remote_bench.rs in
# release mode. BENCH_MB (default 64) and BENCH_READS (default 300) size it.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/servers.sh
start_test_servers off
cargo run --release -q -p hexz-tests --example remote_bench
