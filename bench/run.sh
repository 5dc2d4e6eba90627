#!/usr/bin/env bash
# Benchmarks wsinspect against `cat` (the page-cache read ceiling) and tshark on one generated
# capture, in one run, on this machine.
#
#   bash bench/run.sh [SIZE]        SIZE: 100M (default), 1G, 500M, ... (K/M/G = powers of 1024)
#
# Environment:
#   RUNS=3          timed runs of each wsinspect command (and of cat); the median wall time is kept
#   CONNS=1000      concurrent connections in the generated capture
#   SEED=1          generator seed
#   MAX_MESSAGE=N   generate only messages of at most N bytes (the generator's --max-message;
#                   128 gives the frame density of the issue's reference capture, about 170 bytes
#                   of capture per frame); file mixed-SIZE-mN.pcap
#   SKIP_TSHARK=1   do not run tshark (on files above ~200 MB it can take minutes and gigabytes)
#   WSINSPECT=path  time this wsinspect binary instead of target/release/wsinspect (e.g. an older build)
#   PLAIN=0         also time the text summary on an uncompressed variant of the capture
#                   (same generator, --compressed-share 0, file mixed-SIZE-plain.pcap); PLAIN=0 skips
#   GZIPPED=1       also time the capture gzipped (`gzip -1`, kept as FILE.gz), with one thread
#                   and with the default
#
# Each command runs under `/usr/bin/time -f '%e %M %U %S'` (wall, peak resident KiB, CPU), its output
# going to /dev/null; the wall time is read from bash's EPOCHREALTIME around that same run (GNU
# time's %e only has 10 ms resolution), falling back to %e on shells without it.
# Figures: MB = 10^6 bytes; MB/s = capture size / wall time.
set -euo pipefail

cd "$(dirname "$0")/.."

SIZE=${1:-100M}
RUNS=${RUNS:-3}
CONNS=${CONNS:-1000}
SEED=${SEED:-1}
MAX_MESSAGE=${MAX_MESSAGE:-}

die() { echo "bench: $*" >&2; exit 1; }

[[ $SIZE =~ ^[0-9]+(\.[0-9]+)?[KMGkmg]?$ ]] || die "bad SIZE '$SIZE' (examples: 100M, 1G)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "bad RUNS '$RUNS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "bad CONNS '$CONNS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "bad SEED '$SEED'"
[[ -z $MAX_MESSAGE || $MAX_MESSAGE =~ ^[0-9]+[KMkm]?$ ]] || die "bad MAX_MESSAGE '$MAX_MESSAGE' (examples: 128, 4K)"
PLAIN=${PLAIN:-1}
GZIPPED=${GZIPPED:-0}

TIME=/usr/bin/time
if [[ ! -x $TIME ]]; then
    die "$TIME is missing (GNU time; Debian/Ubuntu package 'time'); it measures wall time and peak memory"
fi

# --- build ---------------------------------------------------------------------------------------
echo "== building (cargo build --release, example gen_capture)"
cargo build --release --quiet || die "cargo build --release failed"
cargo build --release --quiet --example gen_capture || die "building the gen_capture example failed"
BIN=${WSINSPECT:-target/release/wsinspect}
GEN=target/release/examples/gen_capture
[[ -x $BIN ]] || die "$BIN was not built"

# --- capture -------------------------------------------------------------------------------------
name="mixed-$SIZE"
[[ $CONNS == 1000 && $SEED == 1 ]] || name+="-c$CONNS-s$SEED"
[[ -z $MAX_MESSAGE ]] || name+="-m$MAX_MESSAGE"
GEN_OPTS=()
[[ -z $MAX_MESSAGE ]] || GEN_OPTS=(--max-message "$MAX_MESSAGE")
FILE="bench-data/$name.pcap"
PLAIN_FILE="bench-data/$name-plain.pcap"
mkdir -p bench-data
# generate FILE [generator options...]: writes FILE unless it is already there.
generate() {
    local file=$1
    shift
    if [[ ! -s $file ]]; then
        echo "== generating $file"
        local tmp="$file.partial"
        "$GEN" --size "$SIZE" --conns "$CONNS" --seed "$SEED" --out "$tmp" "$@" || { rm -f "$tmp"; die "generating $file failed"; }
        mv "$tmp" "$file"
    else
        echo "== reusing $file (delete it to regenerate)"
    fi
}
generate "$FILE" "${GEN_OPTS[@]}"
((PLAIN == 0)) || generate "$PLAIN_FILE" --compressed-share 0 "${GEN_OPTS[@]}"
if ((GZIPPED != 0)) && [[ ! -s $FILE.gz ]]; then
    echo "== compressing $FILE.gz (gzip -1)"
    gzip -1 -c "$FILE" >"$FILE.gz.partial" && mv "$FILE.gz.partial" "$FILE.gz" || die "gzip failed"
fi
BYTES=$(stat -L -c %s "$FILE")
PLAIN_BYTES=0
((PLAIN == 0)) || PLAIN_BYTES=$(stat -L -c %s "$PLAIN_FILE")

# --- machine -------------------------------------------------------------------------------------
cpu=$(grep -m1 -E '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
if [[ -z $cpu ]] && command -v lscpu >/dev/null; then
    cpu=$(lscpu | grep -m1 -E '^Model name' | cut -d: -f2- | sed 's/^ *//' || true)
fi
echo
echo "machine:   $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr)"
echo "memory:    $(awk '/^MemTotal/ {printf "%.1f GB", $2 * 1024 / 1e9}' /proc/meminfo 2>/dev/null || echo unknown)"
echo "wsinspect: $BIN, $("$BIN" --version 2>/dev/null || echo "version ?"), commit $(git rev-parse --short HEAD 2>/dev/null || echo "?")"
# Packets and WebSocket frames in the capture, counted by wsinspect itself (NDJSON: the
# capture_end line's packet count, every connection_end's frame counts per direction).
# count FILE: prints "PACKETS FRAMES".
count() {
    "$BIN" "$1" --ndjson --payloads none | awk '
        /"event":"capture_end"/ { if (match($0, /"packets":[0-9]+/)) p = substr($0, RSTART + 10, RLENGTH - 10) }
        /"event":"connection_end"/ {
            s = $0
            while (match(s, /"frames":[0-9]+/)) { f += substr(s, RSTART + 9, RLENGTH - 9); s = substr(s, RSTART + RLENGTH) }
        }
        END { printf "%d %d\n", p, f }'
}
read -r PACKETS FRAMES < <(count "$FILE")
echo "capture:   $FILE, $(awk -v b="$BYTES" 'BEGIN {printf "%.1f MB", b / 1e6}'), $PACKETS packets, $FRAMES WebSocket frames"
if ((PLAIN != 0)); then
    read -r PLAIN_PACKETS PLAIN_FRAMES < <(count "$PLAIN_FILE")
    echo "plain:     $PLAIN_FILE, $(awk -v b="$PLAIN_BYTES" 'BEGIN {printf "%.1f MB", b / 1e6}'), $PLAIN_PACKETS packets, $PLAIN_FRAMES WebSocket frames (no permessage-deflate)"
fi
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown) (1, 5, 15 min load average before the runs)"

# --- measurements --------------------------------------------------------------------------------
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

FAILED=0
declare -a ROW_NAME ROW_WALL ROW_CPU ROW_RSS ROW_NOTE

# median: the median of its arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}

# measure LABEL RUNS CMD... : runs CMD (stdout to /dev/null) RUNS times; records the median wall
# time, the median CPU time (user + system, all threads) and the highest peak RSS, or the failure.
measure() {
    local label=$1 runs=$2
    shift 2
    local walls=() cpus=() rss_max=0 i status line wall rss usr sys
    printf '   %-62s' "$label" >&2
    for ((i = 1; i <= runs; i++)); do
        status=0
        local t0=${EPOCHREALTIME:-}
        "$TIME" -f '%e %M %U %S' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || status=$?
        local t1=${EPOCHREALTIME:-}
        if ((status != 0)); then
            local why
            why=$(grep -v -E '^\s*$|^stack backtrace|^note: |^ +[0-9]+: |^ +at ' "$WORK/err" | tail -n 3 | tr '\n' ' ' | cut -c1-160)
            [[ -n $why ]] || why=$(grep -E 'Command (exited|terminated)' "$WORK/time" | head -n1)
            ROW_NAME+=("$label")
            ROW_WALL+=("")
            ROW_CPU+=("")
            ROW_RSS+=("")
            ROW_NOTE+=("FAILED (exit $status): $why")
            FAILED=1
            echo " failed (exit $status)" >&2
            return 0
        fi
        line=$(tail -n 1 "$WORK/time")
        read -r wall rss usr sys <<<"$line"
        cpus+=("$(awk -v u="$usr" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')")
        # GNU time's %e has 10 ms resolution; bash's clock around the same run has microseconds.
        if [[ -n $t0 && -n $t1 ]]; then
            wall=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN {printf "%.3f", b - a}')
        fi
        walls+=("$wall")
        ((rss > rss_max)) && rss_max=$rss
        printf ' %ss' "$wall" >&2
    done
    echo >&2
    ROW_NAME+=("$label")
    ROW_WALL+=("$(median "${walls[@]}")")
    ROW_CPU+=("$(median "${cpus[@]}")")
    ROW_RSS+=("$rss_max")
    ROW_NOTE+=("")
}

echo
echo "== warming the page cache"
cat "$FILE" >/dev/null
((PLAIN == 0)) || cat "$PLAIN_FILE" >/dev/null

echo "== timing (wall seconds of each run)"
measure "cat FILE > /dev/null" "$RUNS" cat "$FILE"
# One thread for the rows that compare with earlier single-threaded figures; the default
# (--threads = the number of cores) gets a row of its own.
measure "wsinspect FILE --threads 1" "$RUNS" "$BIN" "$FILE" --threads 1
measure "wsinspect FILE (--threads $(nproc))" "$RUNS" "$BIN" "$FILE" --threads "$(nproc)"
measure "wsinspect FILE --json --threads 1" "$RUNS" "$BIN" "$FILE" --json --threads 1
measure "wsinspect FILE --ndjson --payloads preview --threads 1" "$RUNS" "$BIN" "$FILE" --ndjson --payloads preview --threads 1
if ((GZIPPED != 0)); then
    measure "wsinspect FILE.gz --threads 1" "$RUNS" "$BIN" "$FILE.gz" --threads 1
    measure "wsinspect FILE.gz (--threads $(nproc))" "$RUNS" "$BIN" "$FILE.gz" --threads "$(nproc)"
fi
if ((PLAIN != 0)); then
    measure "cat PLAIN > /dev/null" "$RUNS" cat "$PLAIN_FILE"
    measure "wsinspect PLAIN --threads 1 (uncompressed variant)" "$RUNS" "$BIN" "$PLAIN_FILE" --threads 1
fi

TSHARK_NOTE=""
if ! command -v tshark >/dev/null; then
    TSHARK_NOTE="tshark is not installed: no comparison (Debian/Ubuntu package 'tshark')"
elif [[ ${SKIP_TSHARK:-0} != 0 ]]; then
    TSHARK_NOTE="tshark skipped (SKIP_TSHARK=$SKIP_TSHARK)"
else
    if ((BYTES > 200000000)); then
        echo "   (tshark on a file this size can take minutes and gigabytes of memory; SKIP_TSHARK=1 skips it)" >&2
    fi
    measure "tshark -r FILE -Y websocket -T fields -e websocket.opcode" 1 \
        tshark -r "$FILE" -Y websocket -T fields -e websocket.opcode
fi

# --- table ---------------------------------------------------------------------------------------
tshark_wall=""
cat_wall=""
plain_cat_wall=""
for i in "${!ROW_NAME[@]}"; do
    case ${ROW_NAME[$i]} in
    tshark*) tshark_wall=${ROW_WALL[$i]} ;;
    "cat FILE"*) cat_wall=${ROW_WALL[$i]} ;;
    "cat PLAIN"*) plain_cat_wall=${ROW_WALL[$i]} ;;
    esac
done

echo
printf '%-52s %8s %7s %7s %10s %10s %8s %9s %8s\n' "command" "wall s" "CPU s" "MB/s" "packets/s" "frames/s" "RSS MB" "vs tshark" "vs cat"
printf '%-52s %8s %7s %7s %10s %10s %8s %9s %8s\n' "-------" "------" "-----" "----" "---------" "--------" "------" "---------" "------"
for i in "${!ROW_NAME[@]}"; do
    if [[ -n ${ROW_NOTE[$i]} ]]; then
        printf '%-52s %s\n' "${ROW_NAME[$i]}" "${ROW_NOTE[$i]}"
        continue
    fi
    # Rows on the uncompressed variant compare with its own size, counts and cat.
    bytes=$BYTES packets=$PACKETS frames=$FRAMES cw=$cat_wall tw=$tshark_wall
    if [[ ${ROW_NAME[$i]} == *PLAIN* ]]; then
        bytes=$PLAIN_BYTES packets=$PLAIN_PACKETS frames=$PLAIN_FRAMES cw=$plain_cat_wall tw=""
    fi
    awk -v name="${ROW_NAME[$i]}" -v wall="${ROW_WALL[$i]}" -v cpu="${ROW_CPU[$i]}" -v rss="${ROW_RSS[$i]}" \
        -v bytes="$bytes" -v packets="$packets" -v frames="$frames" -v tw="$tw" -v cw="$cw" 'BEGIN {
        w = wall + 0
        mbs = (w > 0) ? sprintf("%.0f", bytes / 1e6 / w) : "-"
        pps = (w > 0) ? sprintf("%.0fk", packets / w / 1e3) : "-"
        fps = (w > 0) ? sprintf("%.0fk", frames / w / 1e3) : "-"
        ratio = "-"
        if (tw != "" && name !~ /^tshark/) ratio = (w > 0) ? sprintf("%.1fx", tw / w) : "-"
        ceil = "-"
        if (cw != "" && name !~ /^cat/) ceil = (cw > 0 && w > 0) ? sprintf("%.1f%%", 100 * cw / w) : "-"
        printf "%-52s %8.3f %7.2f %7s %10s %10s %8.1f %9s %8s\n", name, w, cpu, mbs, pps, fps, rss * 1024 / 1e6, ratio, ceil
    }'
done
[[ -z $TSHARK_NOTE ]] || echo "$TSHARK_NOTE"
echo
echo "wall s: median of $RUNS runs (tshark: 1 run); CPU s: median user + system time, all threads;"
echo "peak RSS: highest of the runs; MB = 10^6 bytes. A one-thread run whose CPU time is well below"
echo "its wall time was waiting (for the CPU, with other load on the machine, or for the disk)."
echo "packets/s, frames/s: the capture's packets and WebSocket frames (counted by wsinspect) / wall time."
((GZIPPED == 0)) || echo "FILE.gz rows: MB/s of the capture as decompressed."

echo "vs tshark: tshark's wall time divided by this command's (higher = faster than tshark)."
echo "vs cat: cat's wall time as a share of this command's (100% = as fast as reading the file at all)."

if ((FAILED)); then
    echo
    echo "bench: some commands failed; their figures are left out" >&2
    exit 1
fi
