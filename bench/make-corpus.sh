#!/usr/bin/env bash
# make-corpus.sh [DEST] [SIZE_MB]
#
# Assemble a REAL source tree of about SIZE_MB MiB (default 1024) at DEST
# (default bench/work/corpus) by copying files that already exist on this
# machine: Rust crate sources, the Rust toolchain's docs/sources, C headers,
# the Python standard library, Perl modules, /usr/share/doc.
#
# * Deterministic: sources are taken in a fixed order, files inside each source
#   in byte-wise sorted path order (LC_ALL=C), so the same machine state gives
#   the same corpus.
# * Mixed: the size budget is shared between the sources by water-filling
#   (smallest source first; a source smaller than its fair share is copied
#   whole and leaves the rest to the others), so no single kind of file
#   dominates the corpus.
# * Only regular files and symlinks are copied (symlinks kept as symlinks, never
#   followed); sockets, FIFOs and device nodes are skipped. Hard links between
#   selected files are kept by tar.
# * Idempotent: a finished corpus contains the marker file .hexz-corpus.done;
#   if it is present the script only prints the facts and exits.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=${1:-$here/work/corpus}
SIZE_MB=${2:-1024}
MARKER=.hexz-corpus.done
PARTIAL=.hexz-corpus.partial

die() { echo "make-corpus: ERROR: $*" >&2; exit 1; }
log() { echo "make-corpus: $*" >&2; }

[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -gt 0 ]] || die "SIZE_MB must be a positive integer (got '$SIZE_MB')"
for t in find sort tar du; do command -v "$t" >/dev/null || die "'$t' is required"; done

facts() {
    local bytes files links
    bytes=$(find "$DEST" -mindepth 1 \( -type f -o -type l \) -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')
    files=$(find "$DEST" -mindepth 1 -type f | wc -l)
    links=$(find "$DEST" -mindepth 1 -type l | wc -l)
    echo "corpus: $DEST"
    echo "size:   $bytes bytes ($(awk -v b="$bytes" 'BEGIN {printf "%.1f", b/1048576}') MiB apparent, $(du -sh "$DEST" | cut -f1) on disk)"
    echo "files:  $files regular files, $links symlinks, $(find "$DEST" -mindepth 1 -type d | wc -l) directories"
}

if [[ -f $DEST/$MARKER ]]; then
    log "corpus already present (marker $DEST/$MARKER found), nothing to do"
    facts
    exit 0
fi

if [[ -e $DEST ]]; then
    # Only remove what we created ourselves (an interrupted earlier run).
    if [[ -f $DEST/$PARTIAL ]] || [[ -d $DEST && -z $(ls -A "$DEST") ]]; then
        log "removing incomplete corpus left by an interrupted run: $DEST"
        rm -rf -- "$DEST"
    else
        die "$DEST exists but is not a corpus made by this script (no $MARKER); remove it or choose another DEST"
    fi
fi

# ---------------------------------------------------------------- sources ----
# label=path, in a fixed order. Missing paths are skipped. Globs are expanded
# (sorted) here; add or reorder entries to change the mix.
sysroot=$(rustc --print sysroot 2>/dev/null || true)
declare -a SOURCES=()
add_source() { [[ -d $2 && -r $2 ]] && SOURCES+=("$1=$2") || true; }

add_source cargo-registry-src "${CARGO_HOME:-$HOME/.cargo}/registry/src"
if [[ -n $sysroot ]]; then
    add_source rust-src  "$sysroot/lib/rustlib/src"
    add_source rust-docs "$sysroot/share/doc"
fi
add_source usr-include /usr/include
shopt -s nullglob
for d in /root/.pyenv/versions/*/lib/python3.11; do
    v=${d#/root/.pyenv/versions/}; v=${v%%/*}
    add_source "pyenv-$v-stdlib" "$d"
done
for d in /usr/lib/python3 /usr/lib/python3.*; do
    add_source "usr-lib-$(basename "$d")" "$d"
done
shopt -u nullglob
add_source usr-share-perl  /usr/share/perl
add_source usr-share-perl5 /usr/share/perl5
add_source usr-share-doc   /usr/share/doc

(( ${#SOURCES[@]} > 0 )) || die "no source directories found on this machine"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-corpus.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

# ------------------------------------------------------- list + measure ----
# For each source: a NUL-separated "path<TAB>size" list, sorted byte-wise, and
# the total apparent size of its regular files + symlinks.
log "listing ${#SOURCES[@]} sources..."
declare -a LABELS=() PATHS=() TOTALS=()
i=0
for s in "${SOURCES[@]}"; do
    label=${s%%=*}; path=${s#*=}
    find "$path" -mindepth 1 \( -type f -o -type l \) -printf '%P\t%s\0' 2>/dev/null \
        | LC_ALL=C sort -z > "$tmp/list.$i" || true
    total=$(tr '\0' '\n' < "$tmp/list.$i" | awk -F'\t' '{s+=$NF} END {printf "%d", s}')
    LABELS+=("$label"); PATHS+=("$path"); TOTALS+=("$total")
    log "  $(printf '%-26s %8.1f MiB  %s' "$label" "$(awk -v b="$total" 'BEGIN {print b/1048576}')" "$path")"
    i=$((i + 1))
done

# ----------------------------------------------------------- water-fill ----
target=$((SIZE_MB * 1024 * 1024))
n=${#LABELS[@]}
# indices sorted by total size ascending (ties: original order)
mapfile -t order < <(for ((k = 0; k < n; k++)); do echo "${TOTALS[k]} $k"; done | sort -k1,1n -k2,2n | cut -d' ' -f2)
declare -a BUDGET=()
remaining=$target
left=$n
for k in "${order[@]}"; do
    share=$((remaining / left))
    if (( TOTALS[k] <= share )); then b=${TOTALS[k]}; else b=$share; fi
    BUDGET[k]=$b
    remaining=$((remaining - b))
    left=$((left - 1))
done
grand=0; for t in "${TOTALS[@]}"; do grand=$((grand + t)); done
if (( grand < target )); then
    log "WARNING: all sources together hold only $((grand / 1048576)) MiB < $SIZE_MB MiB; copying everything"
fi

# ---------------------------------------------------------------- copy ----
mkdir -p -- "$DEST"
: > "$DEST/$PARTIAL"
for ((k = 0; k < n; k++)); do
    label=${LABELS[k]}; path=${PATHS[k]}; budget=${BUDGET[k]}
    (( budget > 0 )) || continue
    # Take files in sorted order while the running total is below the budget.
    sel="$tmp/sel.$k"
    acc=0; cnt=0
    while IFS= read -r -d '' rec; do
        (( acc < budget )) || break
        size=${rec##*$'\t'}
        printf '%s\0' "${rec%$'\t'*}"
        acc=$((acc + size)); cnt=$((cnt + 1))
    done < "$tmp/list.$k" > "$sel"
    log "copying $label: $cnt entries, $((acc / 1048576)) MiB of $((TOTALS[k] / 1048576)) MiB"
    mkdir -p -- "$DEST/$label"
    # tar keeps symlinks as symlinks, hard links as hard links, modes and
    # mtimes; --no-recursion because the list names every entry explicitly.
    tar -C "$path" --null --verbatim-files-from --no-recursion --ignore-failed-read -T "$sel" -cf - 2>"$tmp/tar.err" \
        | tar -C "$DEST/$label" -xpf -
    if [[ -s $tmp/tar.err ]]; then
        log "  (tar warnings for $label, files that vanished or were unreadable are skipped:)"
        head -5 "$tmp/tar.err" | sed 's/^/    /' >&2
    fi
done

# Directories that tar created implicitly get default modes; that is fine.
{
    echo "hexz benchmark corpus (made by bench/make-corpus.sh)"
    echo "size_mb_target=$SIZE_MB"
    echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for ((k = 0; k < n; k++)); do echo "source ${LABELS[k]} ${PATHS[k]} budget=${BUDGET[k]}"; done
} > "$DEST/$MARKER"
rm -f -- "$DEST/$PARTIAL"
log "done"
facts
