#!/usr/bin/env bash
# Memory bounds, measured: a build's peak RSS must not grow with input size, and a
# reader streaming a multi-GB archive with default settings stays under 150 MB.
#
#   bench/make-corpus.sh && cargo build --release -p hexz-cli && bench/memory.sh
#
# Inputs: a quarter-size subset of the corpus, the whole corpus (~1 GiB), and one
# ~3.3 GB file (the corpus as a tar, three times over). Peak RSS comes from
# /usr/bin/time (%M, KiB). Output: a Markdown table on stdout and in
# bench/work/memory.md.
set -euo pipefail
cd "$(dirname "$0")/.."
HEXZ=${HEXZ:-target/release/hexz}
CORPUS=${CORPUS:-bench/work/corpus}
W=bench/work/memory
[ -x "$HEXZ" ] || { echo "memory: $HEXZ missing: cargo build --release -p hexz-cli" >&2; exit 2; }
[ -d "$CORPUS" ] || { echo "memory: $CORPUS missing: run bench/make-corpus.sh" >&2; exit 2; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
mkdir -p "$W"
abs() { (cd "$(dirname "$1")" && echo "$PWD/$(basename "$1")"); }

# The quarter subset: the corpus's first top-level folders up to ~256 MiB.
SUBSET="$W/subset"
if [ ! -e "$SUBSET/.done" ]; then
  rm -rf "$SUBSET"; mkdir -p "$SUBSET"
  total=0
  for d in $(ls "$CORPUS"); do
    size=$(du -sb "$CORPUS/$d" | cut -f1)
    if [ $((total + size)) -le $((300 * 1024 * 1024)) ]; then
      cp -a "$CORPUS/$d" "$SUBSET/"; total=$((total + size))
    fi
  done
  touch "$SUBSET/.done"
fi
BIG="$W/big.bin"
if [ ! -e "$BIG" ]; then
  tar -cf "$W/corpus.tar" -C "$CORPUS" .
  cat "$W/corpus.tar" "$W/corpus.tar" "$W/corpus.tar" > "$BIG"
  rm "$W/corpus.tar"
fi

recipe() { # name input
  cat > "$W/$1.yaml" <<YAML
inputs:
  - path: $(abs "$2")
output: $(abs "$W")/$1.hxz
chunking: { min: 16KiB, avg: 64KiB, max: 256KiB }
compression: { codec: zstd, level: 3 }
YAML
}
peak() { # label command...
  local label=$1; shift
  local out
  out=$( { /usr/bin/time -f '%M %e' "$@" >/dev/null; } 2>&1 | tail -1)
  printf '| %s | %s | %s |\n' "$label" "$((${out% *} / 1024))" "${out#* }"
}

recipe subset "$SUBSET"; recipe corpus "$CORPUS"; recipe big "$BIG"
{
  echo "# hexz memory bounds ($(date -u +%Y-%m-%dT%H:%M:%SZ), nproc=$(nproc))"
  echo
  echo "| run | peak RSS MiB | seconds |"
  echo "|---|---:|---:|"
  for r in subset corpus big; do
    bytes=$( (du -sb --apparent-size "$( [ $r = subset ] && echo "$SUBSET" || { [ $r = corpus ] && echo "$CORPUS" || echo "$BIG"; })" ) | cut -f1)
    peak "build $r ($((bytes / 1048576)) MiB input)" "$HEXZ" build --quiet "$W/$r.yaml"
  done
  peak "cat: stream the 3.3 GB entry to /dev/null" sh -c "'$HEXZ' cat '$W/big.hxz' big.bin > /dev/null"
  rm -rf "$W/out"
  peak "extract the ~1 GiB corpus" "$HEXZ" extract --quiet "$W/corpus.hxz" "$W/out"
  rm -rf "$W/out"
  peak "verify the 3.3 GB archive" "$HEXZ" verify "$W/big.hxz"
} | tee "$W/../memory.md"
