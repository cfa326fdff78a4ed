#!/usr/bin/env bash
# versions.sh
#
# Thin snapshots on a real versioned corpus: consecutive source releases (sdists)
# of a PyPI package, each archived by `hexz build --parent <previous>`, against
# restic and borg backing the same trees up into one repository each (one
# snapshot per version). Reports total stored bytes and total time, as ratios
# against hexz, plus hexz without parents (each version self-contained) and hexz
# chains whose children store every chunk whole (recipe `deltas: false`, no
# delta chunks, FORMAT.md §14.3.6), with the time to extract the newest child
# of each chain.
# Everything goes to bench/work/versions/ (git-ignored).
#
# Environment:
#   PKG=name           PyPI package (default django)
#   VERSIONS="a b ..." versions, oldest first (default: django 5.0 .. 5.0.9)
#   HEXZ=path          hexz binary (default: <repo>/target/release/hexz)
#   INSTALL=0|1        apt-get install restic/borgbackup when missing (default 1)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
WORK=$here/work/versions
PKG=${PKG:-django}
VERSIONS=${VERSIONS:-"5.0 5.0.1 5.0.2 5.0.3 5.0.4 5.0.5 5.0.6 5.0.7 5.0.8 5.0.9"}
HEXZ=${HEXZ:-$root/target/release/hexz}
INSTALL=${INSTALL:-1}

log() { echo "versions: $*" >&2; }
die() { echo "versions: ERROR: $*" >&2; exit 1; }

[[ -x $HEXZ ]] || die "no hexz binary at $HEXZ (cargo build --release -p hexz-cli)"
for tool in restic borg; do
    if ! command -v "$tool" >/dev/null; then
        [[ $INSTALL == 1 ]] || die "$tool is not installed"
        apt-get update -qq && apt-get install -y -qq restic borgbackup >/dev/null
    fi
done
read -r -a versions <<<"$VERSIONS"
(( ${#versions[@]} >= 2 )) || die "need at least two versions"

mkdir -p "$WORK/sdists" "$WORK/trees"
# ---------------------------------------------------------------- corpus ----
for v in "${versions[@]}"; do
    tree=$WORK/trees/$v
    [[ -f $tree/.done ]] && continue
    if ! ls "$WORK/sdists/"*"-$v.tar.gz" >/dev/null 2>&1; then
        log "downloading $PKG==$v (sdist)"
        pip download --no-binary :all: --no-deps -q -d "$WORK/sdists" "$PKG==$v" >&2
    fi
    sdist=$(ls "$WORK/sdists/"*"-$v.tar.gz" | head -n1)
    rm -rf -- "$tree" && mkdir -p "$tree/src"
    # Same layout for every version (the top folder's name holds the version).
    tar -xzf "$sdist" -C "$tree/src" --strip-components=1
    touch "$tree/.done"
done

bytes_of() { if [[ -d $1 ]]; then du -sb -- "$1" | cut -f1; else stat -c %s -- "$1"; fi; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

OUT=$WORK/out
rm -rf -- "$OUT" && mkdir -p "$OUT"
total_input=0
for v in "${versions[@]}"; do
    total_input=$((total_input + $(du -sb --exclude=.done "$WORK/trees/$v/src" | cut -f1)))
done

# Warm the page cache with every tree, so the first tool timed is not the one
# that reads them from disk.
find "$WORK/trees" -type f -exec cat {} + >/dev/null

# ------------------------------------------------------------------ hexz -----
# Chunk sizes: 16 KiB average for source trees (many small files; a change costs
# about one chunk), and the defaults (64 KiB) for comparison.
SMALL="{ min: 4KiB, avg: 16KiB, max: 64KiB }"
DEFAULT="{ min: 16KiB, avg: 64KiB, max: 256KiB }"
recipe() { # version output chunking [deltas]
    printf 'inputs:\n  - path: %s\noutput: %s\nchunking: %s\ncompression: { codec: zstd, level: 3, deltas: %s }\n' \
        "$WORK/trees/$1/src" "$2" "$3" "${4:-true}" > "$OUT/recipe-$1.yaml"
    echo "$OUT/recipe-$1.yaml"
}
thin_chain() { # folder chunking [deltas]
    local prev= v r
    for v in "${versions[@]}"; do
        r=$(recipe "$v" "$OUT/$1/$v.hxz" "$2" "${3:-true}")
        if [[ -z $prev ]]; then "$HEXZ" build "$r" --quiet
        else "$HEXZ" build "$r" --quiet --parent "$OUT/$1/$prev.hxz"; fi
        prev=$v
    done
}
log "hexz: thin chain (each version's parent is the previous one), 16 KiB chunks"
t0=$(now); thin_chain thin "$SMALL"
t_thin=$(since "$t0"); b_thin=$(bytes_of "$OUT/thin")
log "hexz: thin chain, default 64 KiB chunks"
t0=$(now); thin_chain thin64 "$DEFAULT"
t_thin64=$(since "$t0"); b_thin64=$(bytes_of "$OUT/thin64")
log "hexz: thin chains with every chunk whole (deltas: false), 16 KiB and default chunks"
t0=$(now); thin_chain thin-whole "$SMALL" false
t_thinw=$(since "$t0"); b_thinw=$(bytes_of "$OUT/thin-whole")
t0=$(now); thin_chain thin64-whole "$DEFAULT" false
t_thin64w=$(since "$t0"); b_thin64w=$(bytes_of "$OUT/thin64-whole")

log "hexz: every version self-contained (no parent), 16 KiB chunks"
t0=$(now)
for v in "${versions[@]}"; do
    "$HEXZ" build "$(recipe "$v" "$OUT/full/$v.hxz" "$SMALL")" --quiet
done
t_full=$(since "$t0"); b_full=$(bytes_of "$OUT/full")

log "hexz: checking the newest child reads back (extract, diff -r) and squash"
last=${versions[-1]}
# Read cost: extract the newest child of each chain; five rounds, the chains
# interleaved in each (so a burst of other load hits them alike), best time kept.
declare -A xbest=()
for round in 1 2 3 4 5; do
    for c in thin thin-whole thin64 thin64-whole; do
        rm -rf -- "$OUT/x-$c"
        t0=$(now); "$HEXZ" extract "$OUT/$c/$last.hxz" "$OUT/x-$c" --quiet; t=$(since "$t0")
        if [[ -z ${xbest[$c]:-} ]] || (( $(echo "$t < ${xbest[$c]}" | bc) )); then xbest[$c]=$t; fi
        (( round < 5 )) && continue
        diff -r "$WORK/trees/$last/src" "$OUT/x-$c" >/dev/null || die "extracted $c differs"
        rm -rf -- "$OUT/x-$c"
    done
done
x_thin=${xbest[thin]} x_thinw=${xbest[thin-whole]}
x_thin64=${xbest[thin64]} x_thin64w=${xbest[thin64-whole]}
"$HEXZ" verify "$OUT/thin/$last.hxz" >/dev/null
"$HEXZ" extract "$OUT/thin/$last.hxz" "$OUT/check" --quiet
diff -r "$WORK/trees/$last/src" "$OUT/check" >/dev/null || die "extracted tree differs"
"$HEXZ" squash "$OUT/thin/$last.hxz" "$OUT/squashed.hxz" >/dev/null
"$HEXZ" log "$OUT/thin/$last.hxz" > "$OUT/log.txt"

# ----------------------------------------------------------------- peers -----
log "borg: one repository, one archive per version (zstd,3)"
export BORG_BASE_DIR=$OUT/borg-home BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
borg init -e none "$OUT/borg-repo" >/dev/null 2>&1
t0=$(now)
for v in "${versions[@]}"; do
    (cd "$WORK/trees/$v/src" && borg create --compression zstd,3 "$OUT/borg-repo::$v" .)
done
t_borg=$(since "$t0"); b_borg=$(bytes_of "$OUT/borg-repo")

log "restic: one repository, one snapshot per version (compression auto)"
export RESTIC_PASSWORD=hexz-bench
restic init --repo "$OUT/restic-repo" --repository-version 2 >/dev/null 2>&1
t0=$(now)
for v in "${versions[@]}"; do
    (cd "$WORK/trees/$v/src" && restic backup --repo "$OUT/restic-repo" --no-cache \
        --compression auto --quiet --host bench .)
done
t_restic=$(since "$t0"); b_restic=$(bytes_of "$OUT/restic-repo")

# ---------------------------------------------------------------- report -----
ratio() { echo "scale=3; $1 / $2" | bc; }
mib() { echo "scale=2; $1 / 1048576" | bc; }
{
    echo "## $PKG ${versions[0]} .. $last (${#versions[@]} sdists, $(mib "$total_input") MiB of trees in all)"
    echo
    echo "| tool | stored bytes | MiB | vs hexz thin | time (s) | vs hexz thin |"
    echo "|---|---:|---:|---:|---:|---:|"
    row() { echo "| $1 | $2 | $(mib "$2") | $(ratio "$2" "$b_thin")x | $(printf '%.2f' "$3") | $(ratio "$3" "$t_thin")x |"; }
    row "hexz, thin chain (--parent previous), 16 KiB chunks" "$b_thin" "$t_thin"
    row "hexz, thin chain, default 64 KiB chunks" "$b_thin64" "$t_thin64"
    row "hexz, thin chain, 16 KiB chunks, no delta chunks" "$b_thinw" "$t_thinw"
    row "hexz, thin chain, default 64 KiB chunks, no delta chunks" "$b_thin64w" "$t_thin64w"
    row "hexz, each version self-contained, 16 KiB chunks" "$b_full" "$t_full"
    row "borg $(borg --version | awk '{print $2}') (zstd,3; one repo)" "$b_borg" "$t_borg"
    row "restic $(restic version | awk '{print $2}') (auto; one repo)" "$b_restic" "$t_restic"
    echo
    echo "Extract the newest child ($last), best of 5 (s): 16 KiB $(printf '%.3f' "$x_thin") with delta chunks, $(printf '%.3f' "$x_thinw") without ($(ratio "$x_thin" "$x_thinw")x); default $(printf '%.3f' "$x_thin64") with, $(printf '%.3f' "$x_thin64w") without ($(ratio "$x_thin64" "$x_thin64w")x)"
    echo
    echo "Per version (hexz thin child, bytes): $(for v in "${versions[@]}"; do printf '%s=%s ' "$v" "$(bytes_of "$OUT/thin/$v.hxz")"; done)"
    echo
    # Where each child's bytes go (hexz info --space): new chunk blobs vs the rest
    # (chunk index, catalog, name index, sections, directory).
    for chain in thin thin64; do
        echo "Space by part, $chain (chunks / metadata; metadata = chunk index + catalog + names + sections + framing):"
        echo
        echo "| version | chunks | of which delta chunks (count: bytes) | chunk index | catalog | names | sections | metadata |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for v in "${versions[@]}"; do
            "$HEXZ" info --space --json "$OUT/$chain/$v.hxz" | python3 -c '
import json, sys
s = json.load(sys.stdin)["space"]
sec = sum(x["bytes"] for x in s["sections"])
print("| %s | %d | %d: %d | %d | %d | %d | %d | %d |" % (sys.argv[1], s["chunk_blobs"],
      s["delta_chunks"], s["delta_chunk_bytes"], s["chunk_index"],
      s["catalog"], s["name_index"], sec, s["metadata"]))' "$v"
        done
        echo
    done
} | tee "$WORK/results.md"
