#!/usr/bin/env bash
# Re-record the wsinspect sample captures from real WebSocket peers.
#
#   bash samples/record.sh            # every scenario
#   bash samples/record.sh NAME...    # only these scenarios
#
# For each scenario (defined in peers/scenarios.json) it starts tcpdump on
# the loopback interface, runs the server and client peers (Node `ws`,
# Python `websockets`, optionally nginx in between or headless Chromium as
# the client), waits for them to finish, stops tcpdump with SIGINT so the
# file is complete, and merges the two peers' own event logs into
# NAME.truth.json. Output: samples/NAME.pcap + samples/NAME.truth.json.
#
# Needs: root (for tcpdump), Node.js >= 18 with npm, Python >= 3.9, and the
# Debian packages `tcpdump nginx openssl tshark` (`chromium` optionally, for
# the chromium-client scenario; tshark's editcap for the wss DSB sample). Peer libraries are pinned in
# peers/package-lock.json and peers/requirements.txt and installed on first
# use (npm ci into peers/node_modules, pip into peers/.venv).
#
# Only loopback addresses (127.0.0.1, ::1) are used; every scenario has its
# own ports.
#
# wss scenarios (a "tls" block in scenarios.json) run the same peers over
# TLS with a self-signed certificate made here by openssl for this run only.
# Both peers write their session secrets in the NSS key log format (Node:
# --tls-keylog; Python: SSLContext.keylog_filename, what SSLKEYLOGFILE sets);
# they are merged into samples/NAME.keys. These are throwaway keys of a
# loopback session, committed so that tests can decrypt the capture. A
# scenario with "dsb": true also gets NAME.dsb.pcapng, the capture with its
# keys embedded as a pcapng Decryption Secrets Block (editcap --inject-secrets).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PEERS=$HERE/peers
WORK=$(mktemp -d)
PY=$PEERS/.venv/bin/python
PIDS=()

cleanup() {
  # Stop anything this script started that is still running.
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[record] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- setup: pinned peer libraries ---------------------------------------------
setup() {
  command -v tcpdump >/dev/null || die "tcpdump missing (apt-get install tcpdump)"
  command -v node >/dev/null || die "node missing"
  want_ws=$(node -p "require('$PEERS/package-lock.json').packages['node_modules/ws'].version")
  have_ws=$(node -p "try { require('$PEERS/node_modules/ws/package.json').version } catch (e) { '' }")
  if [[ "$want_ws" != "$have_ws" ]]; then
    log "installing node peers (npm ci)"
    (cd "$PEERS" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  want_py=$(sed -n 's/^websockets==//p' "$PEERS/requirements.txt")
  have_py=$("$PY" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || true)
  if [[ "$want_py" != "$have_py" ]]; then
    log "installing python peers (pip install -r requirements.txt)"
    [[ -x "$PY" ]] || python3 -m venv "$PEERS/.venv"
    "$PY" -m pip install --quiet -r "$PEERS/requirements.txt" >&2
  fi
}

# Scenario settings as shell variables (PORT HOST IFACE SERVER CLIENT
# BACKEND READ_TIMEOUT).
load_scenario() {
  eval "$(python3 - "$PEERS/scenarios.json" "$1" <<'EOF'
import json, shlex, sys
sc = json.load(open(sys.argv[1]))[sys.argv[2]]
proxy = sc.get("proxy") or {}
v = {
    "PORT": sc["port"],
    "HOST": sc.get("host", "127.0.0.1"),
    "IFACE": sc.get("iface", "lo"),
    "SERVER": (sc.get("server") or {}).get("impl", "none"),
    "CLIENT": sc["client"]["impl"],
    "BACKEND": proxy.get("backend_port", ""),
    "READ_TIMEOUT": proxy.get("read_timeout", "60s"),
    "TLS": "1" if sc.get("tls") else "",
    "DSB": "1" if sc.get("dsb") else "",
}
for k, x in v.items():
    print(f"{k}={shlex.quote(str(x))}")
EOF
)"
}

# Wait until FILE exists or contains PATTERN (at most ~10 s).
wait_for() {
  local file=$1 pattern=${2:-}
  for _ in $(seq 100); do
    if [[ -z "$pattern" && -e "$file" ]] || { [[ -n "$pattern" ]] && grep -q "$pattern" "$file" 2>/dev/null; }; then
      return 0
    fi
    sleep 0.1
  done
  die "timed out waiting for $file ${pattern:+($pattern)}"
}

# Wait for PID to exit (at most SECONDS), then forget it.
wait_pid() {
  local pid=$1 secs=${2:-30}
  for _ in $(seq $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still running after ${secs}s, stopping it"
    kill "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

start_nginx() {
  local name=$1 dir=$WORK/nginx-$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
# Minimal WebSocket reverse proxy for one recording (foreground, loopback).
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 64; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:$PORT;
        location / {
            proxy_pass http://127.0.0.1:$BACKEND;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$host;
            proxy_read_timeout $READ_TIMEOUT;
        }
    }
}
EOF
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_for "$dir/nginx.pid"
}

# A self-signed certificate for localhost / 127.0.0.1, made once per run.
make_cert() {
  [[ -e "$WORK/tls/cert.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl missing (apt-get install openssl)"
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
}

# Extra peer arguments for a wss scenario: the certificate and where this
# peer writes its key log (ROLE = client or server).
node_tls() { [[ -n "$TLS" ]] && printf -- '--tls-keylog=%s' "$WORK/$1.$2.keys"; return 0; }
peer_tls() {
  if [[ -n "$TLS" ]]; then
    printf -- '--tls\n%s\n' "$WORK/tls"
    [[ "$3" == python ]] && printf -- '--keylog\n%s\n' "$WORK/$1.$2.keys"
  fi
  return 0
}

run_client() {
  local name=$1 port=$2 tls_args
  mapfile -t tls_args < <(peer_tls "$name" client "$CLIENT")
  case "$CLIENT" in
    node) node $(node_tls "$name" client) "$PEERS/node_client.js" "${tls_args[@]}" --scenario "$name" --port "$port" --host "$HOST" --log "$WORK/$name.client.json" ;;
    python) "$PY" "$PEERS/py_client.py" "${tls_args[@]}" --scenario "$name" --port "$port" --host "$HOST" --log "$WORK/$name.client.json" ;;
    chromium) run_chromium "$name" "$port" ;;
    # Both openssl peers (TLS 1.3 KeyUpdate): the driver runs them and writes their logs.
    openssl) python3 "$PEERS/openssl_keyupdate.py" --scenario "$name" --port "$port" --host "$HOST" \
               --tls "$WORK/tls" --logdir "$WORK" ;;
    *) die "unknown client $CLIENT" ;;
  esac
}

# Headless Chromium loads the page served by the Node server; the page
# runs the WebSocket client and POSTs its own event log back, after which
# the server exits and record() stops the browser.
run_chromium() {
  local name=$1 port=$2 browser profile version
  browser=$(command -v chromium || command -v chromium-browser || true)
  [[ -n "$browser" ]] || die "chromium not installed (apt-get install chromium)"
  profile=$(mktemp -d "$WORK/chromium.XXXX")
  version=$("$browser" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1)
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-extensions --disable-default-apps \
    --user-data-dir="$profile" "http://127.0.0.1:$port/page?version=$version" \
    >"$WORK/$name.chromium.log" 2>&1 &
  CHROMIUM_PID=$!
  PIDS+=("$CHROMIUM_PID")
}

record() {
  local name=$1
  load_scenario "$name"
  log "$name (port $PORT${BACKEND:+ -> $BACKEND}, $IFACE)"
  local pcap=$HERE/$name.pcap filter="tcp port $PORT"
  [[ -n "$BACKEND" ]] && filter="$filter or tcp port $BACKEND"
  rm -f "$pcap" "$HERE/$name.truth.json" "$HERE/$name.keys" "$HERE/$name.dsb.pcapng" "$WORK/$name".*

  # 1. capture, and wait until tcpdump really listens. --immediate-mode:
  # without it libpcap hands packets over in ring-buffer blocks (up to 1 s
  # late) and a short scenario could be cut off when tcpdump is stopped.
  tcpdump -i "$IFACE" -U --immediate-mode -s 0 -Z "$(id -un)" -w "$pcap" "$filter" \
    2>"$WORK/$name.tcpdump.log" &
  local tcpdump_pid=$!
  PIDS+=("$tcpdump_pid")
  wait_for "$WORK/$name.tcpdump.log" "listening on"

  # 2. server (on the backend port when there is a proxy), then proxy
  local server_port=${BACKEND:-$PORT} server_pid="" tls_args
  [[ -n "$TLS" ]] && make_cert
  mapfile -t tls_args < <(peer_tls "$name" server "$SERVER")
  case "$SERVER" in
    node) node $(node_tls "$name" server) "$PEERS/node_server.js" "${tls_args[@]}" --scenario "$name" --port "$server_port" --host "$HOST" \
            --log "$WORK/$name.server.json" --ready "$WORK/$name.ready" & ;;
    python) "$PY" "$PEERS/py_server.py" "${tls_args[@]}" --scenario "$name" --port "$server_port" --host "$HOST" \
            --log "$WORK/$name.server.json" --ready "$WORK/$name.ready" & ;;
    none | openssl) ;;  # a proxy whose backend is down; openssl: started with the client
    *) die "unknown server $SERVER" ;;
  esac
  if [[ "$SERVER" != none && "$SERVER" != openssl ]]; then
    server_pid=$!
    PIDS+=("$server_pid")
    wait_for "$WORK/$name.ready"
  fi
  [[ -n "$BACKEND" ]] && start_nginx "$name"

  # 3. client; then wait for the server to finish its side
  CHROMIUM_PID=""
  run_client "$name" "$PORT"
  [[ -n "$server_pid" ]] && wait_pid "$server_pid" 20
  if [[ -n "$CHROMIUM_PID" ]]; then
    kill -TERM "$CHROMIUM_PID" 2>/dev/null || true
    wait_pid "$CHROMIUM_PID" 10
  fi
  if [[ -n "$BACKEND" ]]; then
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    wait_pid "$NGINX_PID" 10
  fi

  # 4. let the last FIN/ACKs through, then stop the capture cleanly
  sleep 1
  kill -INT "$tcpdump_pid"
  wait_pid "$tcpdump_pid" 10
  # (On -i any the kernel may count drops of unrelated packets seen before
  # the filter was attached; the verify step below is the real check.)
  grep -q '^0 packets dropped by kernel' "$WORK/$name.tcpdump.log" ||
    log "  note: $(grep 'dropped by kernel' "$WORK/$name.tcpdump.log")"
  [[ $(stat -c %s "$pcap") -gt 24 ]] || die "$name: empty capture"

  # 5. wss: the peers' key logs, merged (both sides log the same secrets);
  # optionally the capture again with the keys embedded
  if [[ -n "$TLS" ]]; then
    cat "$WORK/$name".*.keys | grep -v '^#' | sort -u >"$HERE/$name.keys"
    [[ -s "$HERE/$name.keys" ]] || die "$name: the peers wrote no key log"
    if [[ -n "$DSB" ]]; then
      editcap --inject-secrets "tls,$HERE/$name.keys" "$pcap" "$HERE/$name.dsb.pcapng"
    fi
  fi

  # 6. truth file from the peers' own logs, checked against the capture
  "$PY" "$PEERS/merge_truth.py" "$name" "$WORK" "$HERE"
  "$PY" "$PEERS/verify.py" "$HERE/$name.truth.json" >&2 || die "$name: capture and truth disagree"
  log "  -> $(basename "$pcap") ($(stat -c %s "$pcap") bytes), $name.truth.json"
}

main() {
  [[ $(id -u) -eq 0 ]] || die "run as root (tcpdump needs it)"
  setup
  local names=("$@")
  if [[ ${#names[@]} -eq 0 ]]; then
    mapfile -t names < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))))' "$PEERS/scenarios.json")
  fi
  for name in "${names[@]}"; do
    if [[ "$name" == chromium-client ]] && ! command -v chromium >/dev/null; then
      log "skipping chromium-client: chromium is not installed"
      continue
    fi
    record "$name"
  done
}

main "$@"
