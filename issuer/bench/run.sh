#!/usr/bin/env bash
# Load benchmark of POST /v1/verify (issue 4, item 5), run apart from the
# test command:   bash issuer/bench/run.sh
#
# Installs oha (from crates.io, into .tools/cargo), builds the issuer in
# release mode, starts it on 127.0.0.1 with a fresh data directory, enrolls
# and activates CARDS cards over HTTP, then for each connection count runs
# oha against: a 404 (the HTTP stack alone: baseline), /healthz (a read and
# a writer round trip: baseline), /v1/verify with valid codes (accepted
# path) and with wrong codes (rejected path). Every verification makes a
# durable write (spent step or failure count, synchronous=FULL). Prints a
# Markdown table for docs/benchmarks.md. Stops by itself.
#
# Each connection count gets runs at full speed ("max": closed loop, as
# fast as the server answers) and at the target RATE (open loop, oha -q,
# latency corrected for coordinated omission).
#
# Knobs: CARDS (10000), REQUESTS per run (20000), CONNS ("16 64"),
# RATE (3000), OHA_THREADS (oha's worker threads, 1: the rest of the
# machine is the server's), BACKEND (sqlite | postgres: a throwaway
# cluster from pooya-testpg, fsync and synchronous_commit on), NODES
# (postgres only: 1 or 2 `serve` processes on the one database; with 2,
# each run is split over both, half the connections and requests each,
# and a row is printed per node: add their requests/s), PG_SOCKET (1:
# the nodes reach PostgreSQL through its Unix socket, not TCP), KEYS
# (file | pkcs11: the keys in a SoftHSM2 token made for the run, every
# card MAC, keyed hash and seal computed in it).
set -euo pipefail
cd "$(dirname "$0")/../.."

CARDS=${CARDS:-10000}
REQUESTS=${REQUESTS:-20000}
CONNS=${CONNS:-"16 64"}
OHA_THREADS=${OHA_THREADS:-1}
RATE=${RATE:-3000}
BACKEND=${BACKEND:-sqlite}
NODES=${NODES:-1}
KEYS=${KEYS:-file}
TOOLS="$PWD/.tools/cargo"

if [ ! -x "$TOOLS/bin/oha" ]; then
  echo "installing oha into $TOOLS" >&2
  cargo install oha --locked --root "$TOOLS"
fi
OHA="$TOOLS/bin/oha"

cargo build --release -p pooya-issuer --bin pooya-issuer --example bench_prep >&2
if [ "$BACKEND" = postgres ]; then cargo build --release -p pooya-testpg --bin pooya-testpg >&2; fi
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN="$TARGET/release/pooya-issuer"
PREP="$TARGET/release/examples/bench_prep"

WORK=$(mktemp -d)
SERVER_PIDS=""
PG_PID=""
cleanup() {
  for pid in $SERVER_PIDS; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_PID" ]; then exec 7>&-; wait "$PG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$BACKEND" = postgres ]; then
  # The cluster lives while fd 7 (its stdin) is open.
  mkfifo "$WORK/pg.in"
  "$TARGET/release/pooya-testpg" < "$WORK/pg.in" > "$WORK/pg.out" 2> "$WORK/pg.log" &
  PG_PID=$!
  exec 7> "$WORK/pg.in"
  for _ in $(seq 300); do grep -q '^ready' "$WORK/pg.out" 2>/dev/null && break; sleep 0.1; done
  export POOYA_DATABASE_URL=$(sed -n 's/^database=//p' "$WORK/pg.out")
  [ -n "$POOYA_DATABASE_URL" ] || { cat "$WORK/pg.log" >&2; exit 1; }
  if [ "${PG_SOCKET:-0}" = 1 ]; then
    # The same cluster through its Unix socket instead of TCP on 127.0.0.1.
    PG_DIR=$(sed -n 's/^dir=//p' "$WORK/pg.out")
    PG_PORT=$(sed -n 's|^database=postgres://[^:]*@[^:]*:\([0-9]*\)/.*|\1|p' "$WORK/pg.out")
    PG_DB=${POOYA_DATABASE_URL##*/}
    export POOYA_DATABASE_URL="postgres://pooya@${PG_DIR//\//%2F}:$PG_PORT/$PG_DB"
  fi
else
  unset POOYA_DATABASE_URL
  NODES=1
fi

if [ "$KEYS" = pkcs11 ]; then
  mkdir -p "$WORK/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" > "$WORK/softhsm2.conf"
  export SOFTHSM2_CONF="$WORK/softhsm2.conf" POOYA_PKCS11_PIN=1234-5678
  softhsm2-util --init-token --free --label bench --so-pin 8765-4321 --pin "$POOYA_PKCS11_PIN" >&2
  "$BIN" init --json --data "$WORK/data" --keys pkcs11 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so \
    --pkcs11-token bench > "$WORK/init.json"
else
  "$BIN" init --json --data "$WORK/data" > "$WORK/init.json"
fi
ATM=$("$PREP" get "$WORK/init.json" /tokens/atm)
GW=$("$PREP" get "$WORK/init.json" /tokens/gateway)
OPS=$("$PREP" get "$WORK/init.json" /tokens/ops)
KEY=$("$PREP" get "$WORK/init.json" /issuer_public_key)
AKEY=$("$PREP" get "$WORK/init.json" /activation_public_key)
# Wrong codes must stay on the rejected path: a card blocks after 20
# consecutive failures here instead of 5 (same work per request).
echo '{"max_failures": 20, "sms": {"sender": "dev_recorder"}}' > "$WORK/settings.json"

URLS=()
for n in $(seq "$NODES"); do
  RUST_LOG=warn "$BIN" serve --data "$WORK/data" --listen 127.0.0.1:0 --config "$WORK/settings.json" \
    > "$WORK/serve$n.out" 2> "$WORK/serve$n.log" &
  SERVER_PIDS="$SERVER_PIDS $!"
  for _ in $(seq 100); do
    grep -q "listening on" "$WORK/serve$n.out" 2>/dev/null && break
    sleep 0.1
  done
  URLS+=("http://$(sed -n 's/^listening on //p' "$WORK/serve$n.out")")
done
URL=${URLS[0]}
echo "issuer ($BACKEND, $NODES node(s), keys: $KEYS) at ${URLS[*]}" >&2

"$PREP" enroll "$URL" "$ATM" "$OPS" "$KEY" "$AKEY" "$CARDS" "$WORK/cards.json"

metrics() { curl -s -H "Authorization: Bearer $OPS" "$URL/metrics" > "$1"; }

# oha RUN_LABEL ARGS...: one run, one table row (one row per node with
# two nodes, each taking half the connections and requests; the URL is
# the last argument, and "@" in it stands for the node's address).
run() {
  local label=$1; shift
  local args=("$@")
  local last=$((${#args[@]} - 1))
  if [ "$NODES" = 1 ]; then
    metrics "$WORK/before.txt"
    "$OHA" --no-tui --worker-threads "$OHA_THREADS" --output-format json -n "$REQUESTS" "${args[@]/#@/$URL}" > "$WORK/oha.json"
    metrics "$WORK/after.txt"
    "$PREP" summary "$label" "$WORK/oha.json" "$WORK/before.txt" "$WORK/after.txt" "$(cut -d' ' -f1 /proc/loadavg)"
    return
  fi
  local pids=() i
  for i in "${!URLS[@]}"; do
    local node_args=("${args[@]}")
    node_args[$last]=${node_args[$last]/#@/${URLS[$i]}}
    # Half the connections and requests on each node.
    for j in "${!node_args[@]}"; do
      if [ "${node_args[$j]}" = "-c" ]; then node_args[$((j + 1))]=$(( ${node_args[$((j + 1))]} / 2 )); fi
      if [ "${node_args[$j]}" = "-q" ]; then node_args[$((j + 1))]=$(( ${node_args[$((j + 1))]} / 2 )); fi
    done
    URL=${URLS[$i]} metrics "$WORK/before$i.txt"
    "$OHA" --no-tui --worker-threads "$OHA_THREADS" --output-format json -n $((REQUESTS / 2)) "${node_args[@]}" > "$WORK/oha$i.json" &
    pids+=($!)
  done
  wait "${pids[@]}"
  for i in "${!URLS[@]}"; do
    URL=${URLS[$i]} metrics "$WORK/after$i.txt"
    "$PREP" summary "$label (node $((i + 1)) of 2)" "$WORK/oha$i.json" "$WORK/before$i.txt" "$WORK/after$i.txt" "$(cut -d' ' -f1 /proc/loadavg)"
  done
}

echo
echo "$(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $CARDS cards, $REQUESTS requests per run, oha worker threads $OHA_THREADS"
echo
echo "backend: $BACKEND, nodes: $NODES, keys: $KEYS"
echo
echo "| run | requests/s | p50 ms | p99 ms | p99.9 ms | success % | HTTP statuses | verdicts | load |"
echo "|---|---|---|---|---|---|---|---|---|"
NEXT_STEP=0
# Fresh valid codes: the codes of the previous accepted run are spent, so
# wait until its steps have left the window.
fresh_codes() {
  "$PREP" wait-step "$NEXT_STEP"
  STEP=$("$PREP" bodies "$WORK/cards.json" accept "$WORK/accept.txt" 2>/dev/null)
  NEXT_STEP=$((STEP + 2))
}
"$PREP" bodies "$WORK/cards.json" reject "$WORK/reject.txt" > /dev/null 2>&1
VERIFY=(-m POST -H "Authorization: Bearer $GW" -T application/json "@/v1/verify")
for C in $CONNS; do
  run "baseline: 404, $C conns, max" -c "$C" "@/nowhere"
  run "baseline: /healthz, $C conns, max" -c "$C" "@/healthz"
  fresh_codes
  run "verify, valid codes, $C conns, max" -c "$C" -Z "$WORK/accept.txt" "${VERIFY[@]}"
  run "verify, wrong codes, $C conns, max" -c "$C" -Z "$WORK/reject.txt" "${VERIFY[@]}"
  # At the target rate, latency corrected for coordinated omission.
  fresh_codes
  run "verify, valid codes, $C conns, $RATE/s" -c "$C" -q "$RATE" --latency-correction -Z "$WORK/accept.txt" "${VERIFY[@]}"
  run "verify, wrong codes, $C conns, $RATE/s" -c "$C" -q "$RATE" --latency-correction -Z "$WORK/reject.txt" "${VERIFY[@]}"
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "writer: $(grep -E '^pooya_issuer_writer_(commits|jobs)_total' <(metrics /dev/stdout) | tr '\n' ' ')"
