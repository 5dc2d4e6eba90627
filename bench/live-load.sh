#!/usr/bin/env bash
# Live capture under load: `wsinspect -i lo` runs while a loopback WebSocket load generator
# (bench/live-load.js: one ws server, CONNS ws clients, binary messages both ways as fast as the
# sockets drain) pushes traffic for DURATION seconds; reports the packets/s and MB/s wsinspect
# analysed, libpcap's drop counters and wsinspect's own (packets its analysis queue had no room for).
#
#   sudo bash bench/live-load.sh
#
# Environment:
#   DURATION=30      seconds of load
#   CONNS=4          WebSocket connections
#   SIZE=1024        bytes per message
#   DEFLATE=0        1: permessage-deflate on (wsinspect then inflates every message)
#   MODES="text ndjson"  output forms to measure, one run each: text (the per-connection summary)
#                    and ndjson (an event per message, flushed per event, to /dev/null)
#   BUFFER=          --buffer-size for wsinspect (default: wsinspect's)
#   QUEUE=           --queue-size for wsinspect (default: wsinspect's)
#   WSINSPECT=path   measure this binary instead of target/release/wsinspect (nothing is built)
#
# Needs root (or CAP_NET_RAW), Node.js with the ws library of samples/peers (the script runs
# `npm ci` there if it is missing), GNU time at /usr/bin/time, and libpcap-dev to build.
# Figures: MB = 10^6 bytes of captured packets (headers included); rates are over the seconds the
# generator ran (wsinspect starts before and stops a second after). The generator and wsinspect share
# the machine's cores, so the figures are those of this machine under this load.
set -euo pipefail

cd "$(dirname "$0")/.."

DURATION=${DURATION:-30}
CONNS=${CONNS:-4}
SIZE=${SIZE:-1024}
DEFLATE=${DEFLATE:-0}
MODES=${MODES:-text ndjson}
BUFFER=${BUFFER:-}
QUEUE=${QUEUE:-}

die() { echo "live-load: $*" >&2; exit 1; }

[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "bad DURATION '$DURATION'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "bad CONNS '$CONNS'"
[[ $SIZE =~ ^[1-9][0-9]*$ ]] || die "bad SIZE '$SIZE'"
TIME=/usr/bin/time
[[ -x $TIME ]] || die "$TIME is missing (GNU time; Debian/Ubuntu package 'time')"
command -v node >/dev/null || die "node is missing"
[[ $(id -u) -eq 0 ]] || echo "live-load: not root; capturing needs CAP_NET_RAW on the binary" >&2

if [[ -z ${WSINSPECT:-} ]]; then
    echo "== building (cargo build --release --features live)"
    cargo build --release --quiet --features live || die "cargo build --release --features live failed (libpcap-dev installed?)"
fi
BIN=${WSINSPECT:-target/release/wsinspect}
[[ -x $BIN ]] || die "no binary at $BIN"
if [[ ! -d samples/peers/node_modules/ws ]]; then
    echo "== installing the ws library (npm ci in samples/peers)"
    (cd samples/peers && npm ci --no-audit --no-fund --loglevel=error)
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    # wsinspect is the child of GNU time: stop it too, not only time.
    for pid in "${PIDS[@]}"; do
        pkill -INT -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One run: wsinspect captures while the generator runs; prints one row.
run() {
    local mode=$1 port out args
    port=$(free_port)
    out=$WORK/$mode
    args=(-i lo --bpf "tcp port $port" --stats-interval 0s)
    [[ -n $BUFFER ]] && args+=(--buffer-size "$BUFFER")
    [[ -n $QUEUE ]] && args+=(--queue-size "$QUEUE")
    case $mode in
        text) args+=(-o /dev/null) ;;
        ndjson) args+=(--ndjson --payloads none -o /dev/null) ;;
        *) die "unknown mode $mode" ;;
    esac
    "$TIME" -f '%e %U %S %M' -o "$out.time" "$BIN" "${args[@]}" 2>"$out.err" &
    local timer=$!
    PIDS+=("$timer")
    for _ in $(seq 100); do
        grep -q "capturing on" "$out.err" 2>/dev/null && break
        kill -0 "$timer" 2>/dev/null || die "wsinspect did not start: $(cat "$out.err")"
        sleep 0.1
    done
    node bench/live-load.js --port "$port" --conns "$CONNS" --size "$SIZE" --seconds "$DURATION" \
        --deflate "$DEFLATE" >"$out.load" || die "the load generator failed"
    sleep 1
    # SIGINT to wsinspect itself (the only child of time, whatever WSINSPECT names it), which
    # stops cleanly and prints its counters.
    local ws
    ws=$(pgrep -P "$timer" || true)
    [[ -n $ws ]] || die "wsinspect is not running: $(cat "$out.err")"
    kill -INT "$ws"
    wait "$timer" || die "wsinspect failed: $(cat "$out.err")"
    python3 - "$mode" "$out.err" "$out.time" "$out.load" <<'EOF'
import json, re, sys
mode, err, tim, load = sys.argv[1:]
text = open(err).read()
m = re.search(r"(\d+) packets analysed \((\d+) bytes\) in ([\d.]+) s; (\d+) received by filter, "
              r"(\d+) dropped by kernel, (\d+) dropped by interface"
              r"(?:, (\d+) dropped by the analysis queue)?", text)
if not m:
    sys.exit(f"no counters in wsinspect's output: {text}")
pk, by, secs, rcv, dk, di = (float(x) for x in m.groups()[:6])
# A build from before the analysis queue has no such counter.
dq = "-" if m.group(7) is None else f"{int(m.group(7)):,}"
wall, user, sys_, rss = open(tim).read().split()[-4:]
g = json.loads(open(load).read())
msgs = g["sent_messages"]
window = g["seconds"]  # the load ran this long; the capture's idle edges are left out
print(f"{mode:<7} {pk / window:>12,.0f} {by / window / 1e6:>9.1f} {int(pk):>12,} {int(rcv):>12,} "
      f"{int(dk):>9,} {int(di):>8,} {dq:>10} {(float(user) + float(sys_)) / float(wall) * 100:>6.0f}% "
      f"{int(rss) / 1000:>8.1f} {msgs / g['seconds']:>12,.0f}")
EOF
}

echo "== load: $CONNS connections, $SIZE-byte binary messages both ways, deflate=$DEFLATE, ${DURATION}s per run"
echo "== $(nproc) cores; other processes on the machine compete for them"
printf '%-7s %12s %9s %12s %12s %9s %8s %10s %7s %8s %12s\n' mode "packets/s" "MB/s" packets \
    "received" "drop:kern" "drop:if" "drop:queue" "cpu" "RSS MB" "load msg/s"
for mode in $MODES; do
    run "$mode"
done
cat <<'EOF'
packets/s, MB/s: what wsinspect analysed per second of load (MB = 10^6 captured bytes).
received: libpcap's ps_recv (on lo each packet is counted twice, once per direction of the
  loopback hop; wsinspect analyses one copy). drop:kern: ps_drop, packets the kernel dropped
  because wsinspect read too slowly. drop:if: ps_ifdrop. drop:queue: packets wsinspect read but
  had no room for in its queue to the analysis (--queue-size); "-" for a build without one.
cpu: wsinspect's user+system time over its wall time. load msg/s: messages the generator sent.
EOF
