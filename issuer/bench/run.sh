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
# machine is the server's).
set -euo pipefail
cd "$(dirname "$0")/../.."

CARDS=${CARDS:-10000}
REQUESTS=${REQUESTS:-20000}
CONNS=${CONNS:-"16 64"}
OHA_THREADS=${OHA_THREADS:-1}
RATE=${RATE:-3000}
TOOLS="$PWD/.tools/cargo"

if [ ! -x "$TOOLS/bin/oha" ]; then
  echo "installing oha into $TOOLS" >&2
  cargo install oha --locked --root "$TOOLS"
fi
OHA="$TOOLS/bin/oha"

cargo build --release -p pooya-issuer --bin pooya-issuer --example bench_prep >&2
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN="$TARGET/release/pooya-issuer"
PREP="$TARGET/release/examples/bench_prep"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" init --json --data "$WORK/data" > "$WORK/init.json"
ATM=$("$PREP" get "$WORK/init.json" /tokens/atm)
GW=$("$PREP" get "$WORK/init.json" /tokens/gateway)
OPS=$("$PREP" get "$WORK/init.json" /tokens/ops)
KEY=$("$PREP" get "$WORK/init.json" /issuer_public_key)
AKEY=$("$PREP" get "$WORK/init.json" /activation_public_key)
# Wrong codes must stay on the rejected path: a card blocks after 20
# consecutive failures here instead of 5 (same work per request).
echo '{"max_failures": 20}' > "$WORK/settings.json"

RUST_LOG=warn "$BIN" serve --data "$WORK/data" --listen 127.0.0.1:0 --config "$WORK/settings.json" \
  > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
ADDR=$(sed -n 's/^listening on //p' "$WORK/serve.out")
URL="http://$ADDR"
echo "issuer at $URL (pid $SERVER_PID)" >&2

"$PREP" enroll "$URL" "$ATM" "$OPS" "$KEY" "$AKEY" "$CARDS" "$WORK/cards.json"

metrics() { curl -s -H "Authorization: Bearer $OPS" "$URL/metrics" > "$1"; }

# oha RUN_LABEL ARGS...: one run, one table row.
run() {
  local label=$1; shift
  metrics "$WORK/before.txt"
  "$OHA" --no-tui --worker-threads "$OHA_THREADS" --output-format json -n "$REQUESTS" "$@" > "$WORK/oha.json"
  metrics "$WORK/after.txt"
  "$PREP" summary "$label" "$WORK/oha.json" "$WORK/before.txt" "$WORK/after.txt" "$(cut -d' ' -f1 /proc/loadavg)"
}

echo
echo "$(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $CARDS cards, $REQUESTS requests per run, oha worker threads $OHA_THREADS"
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
VERIFY=(-m POST -H "Authorization: Bearer $GW" -T application/json "$URL/v1/verify")
for C in $CONNS; do
  run "baseline: 404, $C conns, max" -c "$C" "$URL/nowhere"
  run "baseline: /healthz, $C conns, max" -c "$C" "$URL/healthz"
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
