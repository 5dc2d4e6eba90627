#!/usr/bin/env bash
# The floor under a one-thread run on a capture with permessage-deflate: how long zlib-rs alone
# takes to inflate the capture's messages, and how long wsinspect takes with inflation switched
# off, next to wsinspect itself, in one run.
#
#   bash bench/floor.sh FILE [RUNS]      RUNS: timed runs of each command (default 3)
#   TSHARK=1 bash bench/floor.sh FILE    also time tshark once on FILE, in the same run, and give
#                                        each figure as a multiple of tshark's time
#
# It builds, from the committed tree (HEAD) with bench/floor/measure.patch applied and into
# target/floor/ (the repository's own build is untouched):
#   - a wsinspect that records every piece of compressed input its inflaters get, with the
#     direction and each message's end, to a file (WSI_FLOOR_DUMP=FILE), or that skips inflation
#     (WSI_FLOOR_NO_INFLATE=1);
#   - bench/floor/replay.rs, which reads that file and inflates the messages with zlib-rs and
#     nothing else, in capture order and grouped by direction.
# The recorded file is about a third of the capture's size; it is deleted at the end.
# Requirements: a Rust toolchain, git, GNU time at /usr/bin/time.
set -euo pipefail

cd "$(dirname "$0")/.."

FILE=${1:?usage: bash bench/floor.sh FILE [RUNS]}
RUNS=${2:-3}
[[ -r $FILE ]] || { echo "floor: cannot read $FILE" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "floor: bad RUNS '$RUNS'" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "floor: needs GNU time at /usr/bin/time" >&2; exit 1; }

root=$PWD
work=$root/target/floor
tree=$work/tree
dump=$work/inflater-input.bin
rm -rf "$tree"
mkdir -p "$tree"
trap 'rm -f "$dump"' EXIT

echo "== building (the committed tree with bench/floor/measure.patch, and the repository's own)"
# The patched build is of HEAD; the wsinspect it is timed against is the working tree's.
if ! git diff --quiet HEAD -- src Cargo.toml Cargo.lock; then
    echo "   note: src/ or the manifests differ from HEAD: the two wsinspect builds are not the same code"
fi
git archive HEAD | tar -x -C "$tree"
# A repository of its own, so that `git apply` patches this tree (inside the checkout it would
# take the paths as the checkout's and skip them).
(cd "$tree" && git init --quiet && git apply "$root/bench/floor/measure.patch")
cp bench/floor/replay.rs "$tree/examples/floor_replay.rs"
(cd "$tree" && CARGO_TARGET_DIR=$work/target cargo build --quiet --release --bin wsinspect --example floor_replay)
cargo build --quiet --release
measured=$work/target/release/wsinspect
replay=$work/target/release/examples/floor_replay
normal=target/release/wsinspect

echo "== $FILE, $(($(stat -c %s "$FILE") / 1000000)) MB; load: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$FILE" > /dev/null

echo "== recording the inflaters' input (one thread)"
WSI_FLOOR_DUMP=$dump "$measured" "$FILE" --threads 1 > /dev/null
[[ -s $dump ]] || { echo "floor: nothing recorded (no compressed message in $FILE?)" >&2; exit 1; }
echo "   $(($(stat -c %s "$dump") / 1000000)) MB recorded"

echo "== zlib-rs alone"
"$replay" "$dump" "$RUNS" | tee "$work/replay.txt"
rm -f "$dump"

# One timed run: prints "wall cpu rss_mb".
timed() {
    /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "$@" > /dev/null
    awk '{ printf "%.2f %.2f %.1f\n", $1, $2 + $3, $4 * 1024 / 1e6 }' "$work/time.txt"
}

echo "== wsinspect without inflation and wsinspect, alternating (wall s, CPU s, peak RSS MB)"
no=() full=()
for ((i = 1; i <= RUNS; i++)); do
    no+=("$(WSI_FLOOR_NO_INFLATE=1 timed "$measured" "$FILE" --threads 1)")
    full+=("$(timed "$normal" "$FILE" --threads 1)")
    echo "   run $i: without inflation ${no[-1]}   wsinspect ${full[-1]}"
done
median() { printf '%s\n' "$@" | sort -n -k1,1 | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }
alone=$(median $(awk '/capture order/ { print $7 }' "$work/replay.txt"))
no_med=$(median "${no[@]}")
full_med=$(median "${full[@]}")
echo "   median wall: without inflation ${no_med%% *} s, wsinspect ${full_med%% *} s"

if [[ ${TSHARK:-0} == 1 ]] && command -v tshark > /dev/null; then
    echo "== tshark -r FILE -Y websocket -T fields -e websocket.opcode (once)"
    ts=$(timed tshark -r "$FILE" -Y websocket -T fields -e websocket.opcode 2> >(grep -v '^Running as user' >&2))
    echo "   $ts"
    awk -v t="${ts%% *}" -v a="$alone" -v n="${no_med%% *}" -v w="${full_med%% *}" 'BEGIN {
        printf "   50x tshark is %.2f s for the whole run\n", t / 50
        printf "   zlib-rs alone, capture order (median) %6.2f s  %5.1fx tshark\n", a, t / a
        printf "   wsinspect without inflation (median)  %6.2f s  %5.1fx tshark\n", n, t / n
        printf "   the two together                      %6.2f s  %5.1fx tshark\n", a + n, t / (a + n)
        printf "   wsinspect (median)                    %6.2f s  %5.1fx tshark\n", w, t / w
    }'
fi
