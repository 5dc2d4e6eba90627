#!/usr/bin/env bash
# Times `wsinspect FILE --threads 1` against `--threads N` on the same capture, alternating the
# two so that whatever else loads the machine hits both alike, and prints wall time, CPU time
# and peak RSS of each run, then the medians and the speed-up.
#
#   bash bench/threads.sh [FILE] [N]     # default: bench-data/mixed-100M.pcap, N = 2
#
# Environment: RUNS (5), WSINSPECT (target/release/wsinspect), ARGS (extra wsinspect arguments,
# e.g. "--ndjson"). Needs GNU time at /usr/bin/time. Build first: cargo build --release.
set -euo pipefail

file=${1:-bench-data/mixed-100M.pcap}
n=${2:-2}
runs=${RUNS:-5}
bin=${WSINSPECT:-target/release/wsinspect}
read -r -a extra <<<"${ARGS:-}"

[[ -x /usr/bin/time ]] || { echo "needs GNU time at /usr/bin/time" >&2; exit 1; }
[[ -x $bin ]] || { echo "no $bin: cargo build --release" >&2; exit 1; }
[[ -r $file ]] || { echo "no $file (bash bench/run.sh generates it)" >&2; exit 1; }

size=$(stat -c %s "$file")
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $file ($size bytes), runs: $runs, extra args: ${extra[*]:-none}"
cat "$file" >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A walls
for ((r = 1; r <= runs; r++)); do
    for t in 1 "$n"; do
        /usr/bin/time -o "$tmp/time" -f '%e %U %S %M' \
            "$bin" --no-tui -q "$file" --threads "$t" "${extra[@]}" >"$tmp/out-$t"
        read -r wall user sys rss <"$tmp/time"
        printf 'run %d  --threads %-2s  wall %6.2f s  cpu %6.2f s  peak RSS %5d MB\n' \
            "$r" "$t" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1000))
        walls[$t]+="$wall "
    done
    cmp -s "$tmp/out-1" "$tmp/out-$n" || { echo "outputs differ" >&2; exit 1; }
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m1=$(echo "${walls[1]}" | median)
mn=$(echo "${walls[$n]}" | median)
echo "median wall: --threads 1 ${m1} s ($(echo "scale=0; $size / 1000000 / $m1" | bc) MB/s)," \
    "--threads $n ${mn} s ($(echo "scale=0; $size / 1000000 / $mn" | bc) MB/s)," \
    "speed-up $(echo "scale=2; $m1 / $mn" | bc)x; outputs identical"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
