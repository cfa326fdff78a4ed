#!/usr/bin/env bash
# compare.sh [CORPUS]
#
# Times hexz against a tar+zstd baseline (and optional peers) on one corpus,
# in one run, and reports every figure as a ratio against that baseline.
# See bench/README.md.
#
# Environment:
#   HEXZ=path          hexz binary (default: <repo>/target/release/hexz)
#   RUNS=n             runs per timed command, n >= 2 (default 2). Run 1 is a
#                      warm-up; the reported time is the fastest of runs 2..n.
#   PEERS=0|1          also measure mksquashfs / borg / restic (default 1)
#   PEER_EXTRACT=0|1   also time the peers' extract/restore (default 0)
#   INSTALL=0|1        apt-get install zstd and the peers when missing (default 1)
#   BASELINE_ONLY=1    run without hexz on purpose (otherwise a missing hexz
#                      binary makes the script exit 2 after the baseline)
#   KEEP_OUTPUT=1      keep the archives and extracted trees under bench/work
#   STRICT_MODES=1     treat permission-bit differences after extract as errors
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
WORK=$here/work
CORPUS_ARG=${1:-}
HEXZ=${HEXZ:-$root/target/release/hexz}
RUNS=${RUNS:-2}
PEERS=${PEERS:-1}
PEER_EXTRACT=${PEER_EXTRACT:-0}
INSTALL=${INSTALL:-1}
BASELINE_ONLY=${BASELINE_ONLY:-0}
KEEP_OUTPUT=${KEEP_OUTPUT:-0}
STRICT_MODES=${STRICT_MODES:-0}

log()  { echo "compare: $*" >&2; }
warn() { echo "compare: WARNING: $*" >&2; }
die()  { echo "compare: ERROR: $*" >&2; exit 1; }

[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 2 ]] || die "RUNS must be an integer >= 2 (got '$RUNS')"

mkdir -p "$WORK"
if [[ -z $CORPUS_ARG ]]; then
    CORPUS=$WORK/corpus
    if [[ ! -f $CORPUS/.hexz-corpus.done ]]; then
        log "no corpus at $CORPUS yet; building it with make-corpus.sh"
        "$here/make-corpus.sh" "$CORPUS"
    fi
else
    CORPUS=$CORPUS_ARG
fi
[[ -d $CORPUS ]] || die "corpus directory '$CORPUS' does not exist (make one with bench/make-corpus.sh)"
CORPUS=$(cd "$CORPUS" && pwd -P)
case "$CORPUS/" in
    "$WORK"/out-*|"$WORK"/peers/*) die "corpus must not live inside the benchmark's scratch directories" ;;
esac

# ------------------------------------------------------------------ tools ----
apt_updated=0
apt_install() { # pkg... ; best effort, returns non-zero on failure
    [[ $INSTALL == 1 ]] || return 1
    [[ $(id -u) == 0 ]] || { warn "not root; cannot apt-get install $*"; return 1; }
    command -v apt-get >/dev/null || return 1
    if [[ $apt_updated == 0 ]]; then
        log "apt-get update"
        timeout 300 apt-get update -qq >/dev/null 2>&1 || warn "apt-get update failed"
        apt_updated=1
    fi
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

for t in tar find sort sha256sum xargs awk du stat; do
    command -v "$t" >/dev/null || die "'$t' is required"
done
if ! command -v zstd >/dev/null; then
    apt_install zstd || die "zstd is missing; install it: apt-get update && apt-get install -y zstd"
fi

have_hexz=0
if [[ -x $HEXZ ]]; then
    have_hexz=1
elif [[ $BASELINE_ONLY == 1 ]]; then
    log "BASELINE_ONLY=1: hexz is not measured"
else
    warn "hexz binary not found at '$HEXZ' (build it: cargo build --release -p hexz-cli, or set HEXZ=...)"
    warn "continuing with the baseline only; the script will exit 2 at the end"
fi
[[ $BASELINE_ONLY == 1 ]] && have_hexz=0

have_sq=0 have_borg=0 have_restic=0
if [[ $PEERS == 1 ]]; then
    missing=()
    command -v mksquashfs >/dev/null || missing+=(squashfs-tools)
    command -v borg       >/dev/null || missing+=(borgbackup)
    command -v restic     >/dev/null || missing+=(restic)
    if (( ${#missing[@]} )); then
        apt_install "${missing[@]}" || warn "could not install ${missing[*]}; those peers are skipped"
    fi
    command -v mksquashfs >/dev/null && have_sq=1
    command -v borg       >/dev/null && have_borg=1
    command -v restic     >/dev/null && have_restic=1
fi

# ---------------------------------------------------------------- helpers ----
LOGS=$WORK/logs
TRASH=$WORK/trash
rm -rf -- "$LOGS" "$TRASH" "$WORK/hexz-info.json" "$WORK/results.md"; mkdir -p "$LOGS"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hexz-compare.XXXXXX")
cleanup() {
    rm -rf -- "$tmp" "$TRASH"
    if [[ $KEEP_OUTPUT != 1 ]]; then
        rm -rf -- "$WORK"/out-* "$WORK/peers" "$WORK/A.tar.zst" "$WORK/corpus.hxz"
    fi
}
trap cleanup EXIT

bytes_of() { # file or directory -> apparent bytes
    if [[ -d $1 ]]; then du -sb -- "$1" | cut -f1; else stat -c %s -- "$1"; fi
}
now() { date +%s.%N; }

# Deleting a 100k-file tree is slow here (ext4 mounted with 'discard') and
# slows the file system down for a while afterwards. So a previous run's
# extracted tree is only renamed out of the way (instant) before a timed run,
# and the trash is emptied only once everything is measured: emptying it between
# tools made the next tool's extract run during the discards of the previous
# tool's trees, a bias against whichever tool comes second. Set
# TRASH_BETWEEN_TOOLS=1 to empty it between tools (needs less free disk).
trash() { # PATH...: move out of the way if present
    local p; mkdir -p -- "$TRASH"
    for p; do [[ -e $p ]] && mv -- "$p" "$(mktemp -d "$TRASH/t.XXXXXX")/" || true; done
}
empty_trash() { [[ ${TRASH_BETWEEN_TOOLS:-0} == 1 ]] && { rm -rf -- "$TRASH"; sync; } || true; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'; }
fmin() { awk -v a="$1" -v b="$2" 'BEGIN {print (a + 0 < b + 0) ? a : b}'; }

# timed KEY PREP CMD...: run PREP then CMD, RUNS times. Sets T_BEST (fastest
# of runs 2..RUNS, seconds), T_RUN1, T_RSS (peak RSS KiB of the best run, or
# "n/a"). CMD output goes to $LOGS/KEY.runN.log. Returns CMD's exit status.
timed() {
    local key=$1 prep=$2; shift 2
    local r t0 t1 s rc lf rss
    T_BEST="" T_RUN1="" T_RSS="n/a"
    for ((r = 1; r <= RUNS; r++)); do
        "$prep" || { warn "$key: preparation failed"; return 1; }
        lf=$LOGS/$key.run$r.log
        log "  $key run $r/$RUNS"
        # Flush dirty pages (e.g. the previous run's output, just deleted or
        # written) so their write-back does not land inside this measurement.
        sync
        t0=$(now)
        if [[ -x /usr/bin/time ]]; then
            /usr/bin/time -f '%M' -o "$tmp/rss" "$@" >"$lf" 2>&1 && rc=0 || rc=$?
        else
            "$@" >"$lf" 2>&1 && rc=0 || rc=$?
        fi
        t1=$(now)
        if (( rc != 0 )); then
            warn "$key failed (exit $rc) on run $r; output ($lf):"
            tail -20 "$lf" | sed 's/^/    | /' >&2
            return "$rc"
        fi
        s=$(fsub "$t1" "$t0")
        rss=n/a
        [[ -x /usr/bin/time && -s $tmp/rss ]] && rss=$(tail -1 "$tmp/rss")
        if (( r == 1 )); then
            T_RUN1=$s
        elif [[ -z $T_BEST ]] || [[ $(fmin "$s" "$T_BEST") == "$s" ]]; then
            T_BEST=$s; T_RSS=$rss
        fi
    done
}

# Result rows (parallel arrays). KIND is create|extract; BYTES "-" if none.
R_TOOL=() R_OP=() R_KIND=() R_SECS=() R_RUN1=() R_BYTES=() R_RSS=() R_NOTE=()
add_row() { # tool op kind secs run1 bytes rss note
    R_TOOL+=("$1") R_OP+=("$2") R_KIND+=("$3") R_SECS+=("$4") R_RUN1+=("$5")
    R_BYTES+=("$6") R_RSS+=("$7") R_NOTE+=("${8:-}")
}
failures=()
fail() { failures+=("$*"); echo "compare: *** FAILURE: $* ***" >&2; }

# manifest DIR PREFIX: PREFIX.types (type, path, symlink target), PREFIX.sha
# (sha256 of each regular file), PREFIX.modes (permission bits).
manifest() {
    local dir=$1 out=$2
    (cd "$dir" && find . -mindepth 1 -printf '%y %p -> %l\n' | LC_ALL=C sort) >"$out.types"
    (cd "$dir" && find . -type f -print0 | xargs -0 -r -n 256 -P 2 sha256sum | LC_ALL=C sort) >"$out.sha"
    (cd "$dir" && find . -mindepth 1 ! -type l -printf '%m %p\n' | LC_ALL=C sort) >"$out.modes"
}
corpus_manifest_done=0
verify() { # LABEL DIR ; compares DIR with the corpus, records a failure if different
    local label=$1 dir=$2 bad=0 what
    if [[ $corpus_manifest_done == 0 ]]; then
        log "computing the corpus manifest (types, symlink targets, sha256 of every file)"
        manifest "$CORPUS" "$tmp/corpus"
        corpus_manifest_done=1
    fi
    log "verifying $label extraction in $dir"
    manifest "$dir" "$tmp/$label"
    for what in types sha; do
        if ! cmp -s "$tmp/corpus.$what" "$tmp/$label.$what"; then
            bad=1
            echo "compare: *** $label: extracted tree differs from the corpus ($what); first differences (< corpus, > extracted):" >&2
            diff "$tmp/corpus.$what" "$tmp/$label.$what" | grep '^[<>]' | head -20 | sed 's/^/    /' >&2 || true
            diff "$tmp/corpus.$what" "$tmp/$label.$what" > "$LOGS/verify-$label.$what.diff" || true
        fi
    done
    if ! cmp -s "$tmp/corpus.modes" "$tmp/$label.modes"; then
        local n
        n=$(diff "$tmp/corpus.modes" "$tmp/$label.modes" | grep -c '^>' || true)
        diff "$tmp/corpus.modes" "$tmp/$label.modes" > "$LOGS/verify-$label.modes.diff" || true
        if [[ $STRICT_MODES == 1 ]]; then
            bad=1; echo "compare: *** $label: $n entries have different permission bits" >&2
        else
            warn "$label: $n entries have different permission bits (see $LOGS/verify-$label.modes.diff; STRICT_MODES=1 makes this an error)"
            VERIFY_NOTE[$label]="modes differ ($n)"
        fi
    fi
    if (( bad )); then
        fail "VERIFY FAILED: $label extraction does not equal the corpus (details in $LOGS/verify-$label.*.diff)"
        return 1
    fi
    log "$label extraction verified: identical to the corpus"
}
declare -A VERIFY_NOTE=()

# ----------------------------------------------------------------- facts ----
corpus_bytes=$(find "$CORPUS" -mindepth 1 \( -type f -o -type l \) -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')
corpus_files=$(find "$CORPUS" -mindepth 1 -type f | wc -l)
corpus_links=$(find "$CORPUS" -mindepth 1 -type l | wc -l)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)
ver() { "$@" 2>&1 | head -1 || true; }

log "corpus $CORPUS: $corpus_bytes bytes, $corpus_files files, $corpus_links symlinks"
log "each timed command runs $RUNS times; run 1 warms the page cache and is reported only as 'run 1'"

A=$WORK/A.tar.zst
OUT_A=$WORK/out-A
H=$WORK/corpus.hxz
OUT_H=$WORK/out-H
RECIPE=$WORK/recipe.yaml

# ------------------------------------------------------- baseline: tar+zstd ----
log "baseline A: tar | zstd -3 -T2"
prep_A() { rm -f -- "$A"; }
base_create=""
if timed tar-zstd.create prep_A bash -c 'set -o pipefail; tar -cf - -C "$1" . | zstd -3 -T2 -q -o "$2"' _ "$CORPUS" "$A"; then
    base_create=$T_BEST base_bytes=$(bytes_of "$A")
    add_row "tar + zstd -3 -T2" create create "$T_BEST" "$T_RUN1" "$base_bytes" "$T_RSS" baseline
else
    die "the baseline (tar | zstd) failed; nothing to compare against"
fi

prep_outA() { trash "$OUT_A"; mkdir -p -- "$OUT_A"; }
if timed tar-zstd.extract prep_outA bash -c 'set -o pipefail; zstd -d -q -c "$1" | tar -x -C "$2"' _ "$A" "$OUT_A"; then
    base_extract=$T_BEST
    add_row "tar + zstd -3 -T2" extract extract "$T_BEST" "$T_RUN1" - "$T_RSS" baseline
    verify tar-zstd "$OUT_A" || true
    [[ $KEEP_OUTPUT == 1 ]] || trash "$OUT_A"
    empty_trash
else
    die "the baseline extraction (zstd -d | tar -x) failed"
fi

# ------------------------------------------------------------------- hexz ----
hexz_version=n/a hexz_info=""
if [[ $have_hexz == 1 ]]; then
    hexz_version=$(ver "$HEXZ" --version)
    # YAML double-quoted string; hexz interpolates ${VAR} in paths, so a
    # literal '$' is written '$$'.
    yq() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "${s//\$/\$\$}"; }
    cat >"$RECIPE" <<EOF
inputs:
  - path: $(yq "$CORPUS")
output: $(yq "$H")
chunking: { min: 16KiB, avg: 64KiB, max: 256KiB }
compression: { codec: zstd, level: 3 }
EOF
    log "hexz build (recipe $RECIPE)"
    prep_H() { rm -f -- "$H"; }
    if timed hexz.build prep_H "$HEXZ" build --quiet "$RECIPE"; then
        [[ -f $H ]] || fail "hexz build succeeded but $H was not written"
    else
        fail "hexz build failed (logs in $LOGS/hexz.build.run*.log)"
    fi
    if [[ -f $H ]]; then
        add_row hexz build create "$T_BEST" "$T_RUN1" "$(bytes_of "$H")" "$T_RSS"
        if hexz_info=$("$HEXZ" info --json "$H" 2>"$LOGS/hexz.info.err"); then
            printf '%s\n' "$hexz_info" >"$WORK/hexz-info.json"
        else
            warn "hexz info --json failed (see $LOGS/hexz.info.err)"; hexz_info=""
        fi
        log "hexz extract"
        prep_outH() { trash "$OUT_H"; }  # hexz extract creates DEST itself
        if timed hexz.extract prep_outH "$HEXZ" extract --quiet "$H" "$OUT_H"; then
            add_row hexz extract extract "$T_BEST" "$T_RUN1" - "$T_RSS"
            if verify hexz "$OUT_H"; then
                [[ -n ${VERIFY_NOTE[hexz]:-} ]] && R_NOTE[-1]=${VERIFY_NOTE[hexz]}
            else
                R_NOTE[-1]="VERIFY FAILED"
            fi
            [[ $KEEP_OUTPUT == 1 ]] || trash "$OUT_H"
        else
            fail "hexz extract failed (logs in $LOGS/hexz.extract.run*.log)"
        fi
        empty_trash
    fi
fi

# ------------------------------------------------------------------ peers ----
P=$WORK/peers
peer_failed() { warn "$1 failed; skipped (logs in $LOGS)"; }
if [[ $PEERS == 1 ]]; then
    mkdir -p "$P"
    if [[ $have_sq == 1 ]]; then
        log "peer: mksquashfs -comp zstd -Xcompression-level 3 -processors 2"
        SQ=$P/corpus.sqsh
        prep_sq() { rm -f -- "$SQ"; }
        if timed squashfs.create prep_sq mksquashfs "$CORPUS" "$SQ" -comp zstd -Xcompression-level 3 -processors 2 -noappend -no-progress; then
            add_row "mksquashfs (zstd 3)" create create "$T_BEST" "$T_RUN1" "$(bytes_of "$SQ")" "$T_RSS"
            if [[ $PEER_EXTRACT == 1 ]]; then
                prep_sqx() { trash "$P/out-sq"; }
                if timed squashfs.extract prep_sqx unsquashfs -d "$P/out-sq" -processors 2 -no-progress "$SQ"; then
                    add_row "mksquashfs (zstd 3)" "extract (unsquashfs)" extract "$T_BEST" "$T_RUN1" - "$T_RSS"
                    verify squashfs "$P/out-sq" || R_NOTE[-1]="VERIFY FAILED"
                    trash "$P/out-sq"
                else peer_failed unsquashfs; fi
                empty_trash
            fi
        else peer_failed mksquashfs; fi
    else
        add_row "mksquashfs" create create - - - - "skipped: not installed"
    fi

    if [[ $have_borg == 1 ]]; then
        log "peer: borg create --compression zstd,3 (fresh repository each run)"
        export BORG_BASE_DIR=$P/borg-home BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
               BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_PASSPHRASE=""
        BR=$P/borg-repo
        # Fresh repository AND fresh cache each run, so run 2 cannot reuse borg's
        # files cache or chunk index from run 1 (only the OS page cache is warm).
        prep_borg() { rm -rf -- "$BR" "$BORG_BASE_DIR" && borg init -e none "$BR" >/dev/null 2>&1; }
        if timed borg.create prep_borg bash -c 'cd "$1" && borg create --compression zstd,3 "$2::bench" .' _ "$CORPUS" "$BR"; then
            add_row "borg $(ver borg --version | awk '{print $2}') (zstd,3)" create create "$T_BEST" "$T_RUN1" "$(bytes_of "$BR")" "$T_RSS" "single-threaded"
            if [[ $PEER_EXTRACT == 1 ]]; then
                prep_borgx() { trash "$P/out-borg"; mkdir -p -- "$P/out-borg"; }
                if timed borg.extract prep_borgx bash -c 'cd "$1" && borg extract "$2::bench"' _ "$P/out-borg" "$BR"; then
                    add_row "borg (zstd,3)" extract extract "$T_BEST" "$T_RUN1" - "$T_RSS"
                    verify borg "$P/out-borg" || R_NOTE[-1]="VERIFY FAILED"
                    trash "$P/out-borg"
                else peer_failed "borg extract"; fi
                empty_trash
            fi
        else peer_failed "borg create"; fi
    else
        add_row "borg" create create - - - - "skipped: not installed"
    fi

    if [[ $have_restic == 1 ]]; then
        log "peer: restic backup --compression auto (fresh repository each run, --no-cache)"
        export RESTIC_PASSWORD=hexz-bench
        RR=$P/restic-repo
        prep_restic() { rm -rf -- "$RR" && restic init --repo "$RR" --repository-version 2 >/dev/null 2>&1; }
        if timed restic.create prep_restic bash -c 'cd "$1" && restic backup --repo "$2" --no-cache --compression auto --quiet .' _ "$CORPUS" "$RR"; then
            add_row "restic $(ver restic version | awk '{print $2}') (zstd auto)" create create "$T_BEST" "$T_RUN1" "$(bytes_of "$RR")" "$T_RSS" "encrypted"
            if [[ $PEER_EXTRACT == 1 ]]; then
                prep_resticx() { trash "$P/out-restic"; }
                if timed restic.extract prep_resticx restic restore latest --repo "$RR" --no-cache --target "$P/out-restic"; then
                    add_row "restic (zstd auto)" restore extract "$T_BEST" "$T_RUN1" - "$T_RSS"
                    verify restic "$P/out-restic" || R_NOTE[-1]="VERIFY FAILED"
                    trash "$P/out-restic"
                else peer_failed "restic restore"; fi
                empty_trash
            fi
        else peer_failed "restic backup"; fi
    else
        add_row "restic" create create - - - - "skipped: not installed"
    fi
fi

if [[ $have_hexz == 0 ]]; then
    if [[ $BASELINE_ONLY == 1 ]]; then
        add_row hexz "build / extract" create - - - - "not run (BASELINE_ONLY=1)"
    else
        add_row hexz "build / extract" create - - - - "SKIPPED: binary not found at $HEXZ"
    fi
fi

# ----------------------------------------------------------------- report ----
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)
ratio() { # value base -> "x.xx" or "-"
    [[ $1 == - || -z $2 || $2 == - ]] && { echo -; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
mib() { [[ $1 == - || $1 == n/a ]] && { echo "$1"; return; }; awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
fmt_s() { [[ $1 == - || -z $1 ]] && { echo -; return; }; awk -v s="$1" 'BEGIN {printf "%.2f", s}'; }
git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit yet")

report() {
    echo "# hexz comparison benchmark"
    echo
    echo "## Machine and inputs"
    echo
    echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- host: nproc=$(nproc), memory $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    echo "- load average (1/5/15 min): before $load_before, after $load_after"
    echo "- hexz: $HEXZ ($hexz_version), repo revision $git_rev"
    echo "- tar: $(ver tar --version); zstd: $(ver zstd --version | sed 's/^\*\*\* *//; s/ *\*\*\*$//')"
    [[ $have_sq == 1 ]] && echo "- mksquashfs: $(ver mksquashfs -version)"
    [[ $have_borg == 1 ]] && echo "- borg: $(ver borg --version)"
    [[ $have_restic == 1 ]] && echo "- restic: $(ver restic version)"
    echo "- corpus: \`$CORPUS\`: $corpus_bytes bytes ($(awk -v b="$corpus_bytes" 'BEGIN {printf "%.1f", b/1048576}') MiB), $corpus_files files, $corpus_links symlinks"
    echo
    echo "## Method"
    echo
    echo "The page cache cannot be dropped reliably here, so every timed command is run $RUNS times after"
    echo "the same preparation (outputs deleted, peer repositories and caches re-created). Run 1 warms the"
    echo "page cache and is shown only for reference; **seconds** is the fastest of the warm runs 2..$RUNS."
    echo "The machine is shared and noisy: read the **ratios** against the tar + zstd baseline measured in"
    echo "this same run, not the absolute seconds. time ratio < 1 = faster than the baseline; size ratio"
    echo "< 1 = smaller than A.tar.zst. Create rows are compared with the baseline's create, extract rows"
    echo "with the baseline's extract. Every extracted tree was checked against the corpus (file types,"
    echo "symlink targets, SHA-256 of every regular file)."
    echo
    echo "## Results"
    echo
    echo "| tool | operation | seconds (warm) | run 1 s | bytes | time ratio vs tar+zstd | size ratio vs tar+zstd | bytes / corpus | peak RSS MiB | note |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    local i base_t
    for i in "${!R_TOOL[@]}"; do
        if [[ ${R_KIND[i]} == create ]]; then base_t=$base_create; else base_t=${base_extract:-}; fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "${R_TOOL[i]}" "${R_OP[i]}" "$(fmt_s "${R_SECS[i]}")" "$(fmt_s "${R_RUN1[i]}")" "${R_BYTES[i]}" \
            "$(ratio "${R_SECS[i]}" "$base_t")" "$(ratio "${R_BYTES[i]}" "$base_bytes")" \
            "$(ratio "${R_BYTES[i]}" "$corpus_bytes")" "$(mib "${R_RSS[i]}")" "${R_NOTE[i]}"
    done
    if (( ${#failures[@]} )); then
        echo
        echo "## FAILURES"
        echo
        local f; for f in "${failures[@]}"; do echo "- $f"; done
    fi
    if [[ -n $hexz_info ]]; then
        echo
        echo "## hexz info --json"
        echo
        echo '```json'
        printf '%s\n' "$hexz_info" | head -80
        echo '```'
    fi
    echo
    echo "Logs of every run: \`$LOGS\`."
}
report | tee "$WORK/results.md"
log "results written to $WORK/results.md"

if (( ${#failures[@]} )); then
    echo "compare: *** ${#failures[@]} FAILURE(S):" >&2
    printf 'compare: ***   %s\n' "${failures[@]}" >&2
    exit 1
fi
if [[ $have_hexz == 0 && $BASELINE_ONLY != 1 ]]; then
    warn "hexz was not measured (binary not found at $HEXZ); exiting 2"
    exit 2
fi
